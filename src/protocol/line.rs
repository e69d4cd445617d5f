//! One text-protocol request line, split into tokens as memcached's `tokenize_command` does,
//! with what a command's argument parser needs: the tokens and the buffer (for a data block
//! after the line). Both text front ends (classic and meta) build on it.

use super::key::{Key, KeyRef};
use super::parsed::Parsed;
use super::reply::Reply;

/// memcached's MAX_TOKENS: at most 23 tokens are split off a line; the rest stays one piece.
const MAX_TOKENS: usize = 24;

/// A request line, its tokens, and where it ends in the read buffer.
#[derive(Debug)]
pub struct Line<'a> {
    /// The read buffer, from the start of this line.
    buf: &'a [u8],
    /// Bytes of `buf` up to and including the line's `\n`.
    end: usize,
    /// The line, without its `\r\n` and cut at a NUL.
    text: &'a [u8],
    toks: [&'a [u8]; MAX_TOKENS - 1],
    n: usize,
    /// Whatever follows the 23rd token, if the line had more.
    rest: Option<&'a [u8]>,
}

impl<'a> Line<'a> {
    /// Splits `text` (a line of `buf` ending `end` bytes in) on spaces.
    #[inline(always)] // once per request, in the front end: keeps the tokens in its frame
    pub(super) fn new(buf: &'a [u8], end: usize, text: &'a [u8]) -> Self {
        let mut toks: [&'a [u8]; MAX_TOKENS - 1] = [&[]; MAX_TOKENS - 1];
        let mut n = 0;
        let mut i = 0;
        let mut rest = None;
        while i < text.len() {
            while i < text.len() && text[i] == b' ' {
                i += 1;
            }
            if i == text.len() {
                break;
            }
            if n == MAX_TOKENS - 1 {
                rest = Some(&text[i..]);
                break;
            }
            let start = i;
            while i < text.len() && text[i] != b' ' {
                i += 1;
            }
            toks[n] = &text[start..i];
            n += 1;
        }
        Line {
            buf,
            end,
            text,
            toks,
            n,
            rest,
        }
    }

    /// memcached's `ntokens`: the tokens plus the terminal one.
    pub fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// Token `i` (0 is the command), empty past the last.
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n { self.toks[i] } else { &[] }
    }

    /// The line (without its `\r\n`).
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The split tokens.
    pub fn tokens(&self) -> &[&'a [u8]] {
        &self.toks[..self.n]
    }

    /// The line from token `i` on (empty past the last).
    pub fn from_token(&self, i: usize) -> &'a [u8] {
        if i >= self.n {
            return &[];
        }
        &self.text[self.offset(self.toks[i])..]
    }

    /// The line after token `i`.
    pub fn after_token(&self, i: usize) -> &'a [u8] {
        let t = self.get(i);
        &self.text[self.offset(t) + t.len()..]
    }

    /// Where token `t` (a slice of the line) starts in it.
    fn offset(&self, t: &[u8]) -> usize {
        t.as_ptr() as usize - self.text.as_ptr() as usize
    }

    /// memcached's `set_noreply_maybe`: the last real token is "noreply".
    pub fn noreply(&self) -> bool {
        self.rest.is_none() && self.n >= 1 && self.toks[self.n - 1] == b"noreply"
    }

    /// `<command> <key> <number> [noreply]` (touch, incr, decr): the key, the number as
    /// `num` reads it, and noreply; or the line's error (memcached's checks in this order:
    /// token count, key, number, whose error is `bad`).
    pub fn key_number_noreply<C, T>(
        &self,
        num: impl FnOnce(&[u8]) -> Option<T>,
        bad: Reply,
    ) -> Result<(KeyRef<'a>, T, bool), Parsed<C>> {
        let nt = self.ntokens();
        if nt != 4 && nt != 5 {
            return Err(self.error(Reply::Error, false));
        }
        let noreply = self.noreply();
        let Ok(key) = Key::parse(self.get(1)) else {
            return Err(self.error(Reply::BadFormat, noreply));
        };
        let Some(n) = num(self.get(2)) else {
            return Err(self.error(bad, noreply));
        };
        Ok((key, n, noreply))
    }

    /// The line parsed to `cmd`.
    pub fn done<C>(&self, cmd: C) -> Parsed<C> {
        Parsed::Done {
            consumed: self.end,
            req: cmd,
            swallow: 0,
        }
    }

    /// The line parsed to `cmd`, whose `swallow` data bytes that follow are to be discarded.
    pub fn done_swallowing<C>(&self, cmd: C, swallow: usize) -> Parsed<C> {
        Parsed::Done {
            consumed: self.end,
            req: cmd,
            swallow,
        }
    }

    /// The line refused with `reply` (suppressed if `noreply`).
    pub fn error<C>(&self, reply: Reply, noreply: bool) -> Parsed<C> {
        self.error_swallowing(reply, noreply, 0)
    }

    /// The line refused with `reply`, and the `swallow` data bytes that follow discarded.
    pub fn error_swallowing<C>(&self, reply: Reply, noreply: bool, swallow: usize) -> Parsed<C> {
        Parsed::Error {
            consumed: self.end,
            reply,
            noreply,
            swallow,
        }
    }

    /// The command a storage-like line makes once its `vlen`-byte data block is in:
    /// `make(data)`. Not all of it yet: incomplete. Not followed by `\r\n`: `CLIENT_ERROR
    /// bad data chunk` (suppressed by `noreply`), and, as in memcached, the `vlen + 2` bytes
    /// read are consumed all the same.
    pub fn with_data<C>(
        &self,
        vlen: usize,
        noreply: bool,
        make: impl FnOnce(&'a [u8]) -> C,
    ) -> Parsed<C> {
        let (buf, start) = (self.buf, self.end);
        let need = start + vlen + 2;
        if buf.len() < need {
            Parsed::Incomplete
        } else if &buf[start + vlen..need] != b"\r\n" {
            Parsed::Error {
                consumed: need,
                reply: Reply::BadDataChunk,
                noreply,
                swallow: 0,
            }
        } else {
            Parsed::Done {
                consumed: need,
                req: make(&buf[start..start + vlen]),
                swallow: 0,
            }
        }
    }
}
