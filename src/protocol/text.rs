//! memcached's text protocol: one tokenizer, one dispatcher, the exact error lines.
//!
//! The parser borrows from the connection's read buffer and never copies. It follows
//! memcached 1.6's `proto_text.c` decision by decision (token counts, which check comes
//! first, which error text), because clients and test suites match on those bytes.

use super::num::{strtol32, strtoul32, strtoull};
use super::{Limits, Parsed, Reply, Request, StatsKind, check_key};
use crate::store::StoreMode;

/// memcached's MAX_TOKENS: at most 23 tokens are split off a line; the rest stays one piece.
const MAX_TOKENS: usize = 24;

/// A line split on spaces as memcached's `tokenize_command` does.
struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS - 1],
    n: usize,
    /// Whatever follows the 23rd token, if the line had more.
    rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    fn new(line: &'a [u8]) -> Self {
        let mut toks: [&'a [u8]; MAX_TOKENS - 1] = [&[]; MAX_TOKENS - 1];
        let mut n = 0;
        let mut i = 0;
        let mut rest = None;
        while i < line.len() {
            while i < line.len() && line[i] == b' ' {
                i += 1;
            }
            if i == line.len() {
                break;
            }
            if n == MAX_TOKENS - 1 {
                rest = Some(&line[i..]);
                break;
            }
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            toks[n] = &line[start..i];
            n += 1;
        }
        Tokens { toks, n, rest }
    }

    /// memcached's `ntokens`: the tokens plus the terminal one.
    fn ntokens(&self) -> usize {
        self.n + 1
    }

    fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n { self.toks[i] } else { &[] }
    }

    /// memcached's `set_noreply_maybe`: the last real token is "noreply".
    fn noreply(&self) -> bool {
        self.rest.is_none() && self.n >= 1 && self.toks[self.n - 1] == b"noreply"
    }
}

/// Parses one request from the front of `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    // A TLS handshake record (a client that should have used the TLS port): no request
    // starts with byte 0x16, and waiting for a newline in a ClientHello only keeps the
    // client hanging. (memcached reads it as junk text.)
    if let [0x16, 0x03, minor, ..] = buf
        && *minor <= 0x04
    {
        return Parsed::Close;
    }
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > limits.max_line {
            // memcached: no newline in the first 2 KB means junk, unless it is a (long) get.
            let lead = buf.iter().take_while(|&&b| b == b' ').count();
            let p = &buf[lead..];
            if lead > 100 || !(p.starts_with(b"get ") || p.starts_with(b"gets ")) {
                return Parsed::Close;
            }
            if buf.len() > limits.read_buf_max {
                return Parsed::Close;
            }
        }
        return Parsed::Incomplete;
    };
    let consumed = nl + 1;
    let mut line = &buf[..nl];
    if line.len() > 1 && line[line.len() - 1] == b'\r' {
        line = &line[..line.len() - 1];
    }
    // memcached works on C strings: a NUL ends the command.
    if let Some(z) = memchr(0, line) {
        line = &line[..z];
    }
    let t = Tokens::new(line);
    let nt = t.ntokens();
    let err = |reply: Reply, noreply: bool| Parsed::Error {
        consumed,
        reply,
        noreply,
        swallow: 0,
    };
    let done = |req: Request<'a>| Parsed::Done {
        consumed,
        req,
        swallow: 0,
    };
    let cmd = t.get(0);
    if nt < 2 || cmd.len() < 2 {
        return err(Reply::Error, false);
    }
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
            if nt < 3 {
                return err(Reply::Error, false);
            }
            let touch = cmd == b"gat" || cmd == b"gats";
            let cas = cmd == b"gets" || cmd == b"gats";
            let mut keys_at = cmd.len();
            let exptime = if touch {
                let Some(e) = strtol32(t.get(1)) else {
                    return err(Reply::InvalidExptime, false);
                };
                // The keys start after the exptime token.
                let off = t.get(1).as_ptr() as usize - line.as_ptr() as usize;
                keys_at = off + t.get(1).len();
                Some(e as i64)
            } else {
                None
            };
            let keys = KeyList(&line[keys_at..]);
            for k in keys.iter() {
                if check_key(k).is_err() {
                    return err(Reply::BadFormat, false);
                }
            }
            done(Request::Get { cas, exptime, keys })
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            let mode = match cmd {
                b"set" => StoreMode::Set,
                b"add" => StoreMode::Add,
                b"replace" => StoreMode::Replace,
                b"append" => StoreMode::Append,
                b"prepend" => StoreMode::Prepend,
                _ => StoreMode::Cas,
            };
            let is_cas = mode == StoreMode::Cas;
            let (a, b) = if is_cas { (7, 8) } else { (6, 7) };
            if nt != a && nt != b {
                return err(Reply::Error, false);
            }
            let noreply = t.noreply();
            let key = t.get(1);
            if check_key(key).is_err() {
                return err(Reply::BadFormat, noreply);
            }
            let (Some(flags), Some(exptime), Some(vlen)) =
                (strtoul32(t.get(2)), strtol32(t.get(3)), strtol32(t.get(4)))
            else {
                return err(Reply::BadFormat, noreply);
            };
            let cas_in = if is_cas {
                match strtoull(t.get(5)) {
                    Some(c) => c,
                    None => return err(Reply::BadFormat, noreply),
                }
            } else {
                0
            };
            if !(0..=i32::MAX - 2).contains(&vlen) {
                return err(Reply::BadFormat, noreply);
            }
            let vlen = vlen as usize;
            if crate::store::item_total(key.len(), vlen) > limits.item_size_max {
                return Parsed::Done {
                    consumed,
                    req: Request::StoreTooLarge { mode, key, noreply },
                    swallow: vlen + 2,
                };
            }
            super::with_data_block(buf, consumed, vlen, noreply, |data| Request::Store {
                mode,
                key,
                flags,
                exptime: exptime as i64,
                data,
                cas: cas_in,
                noreply,
            })
        }
        b"incr" | b"decr" => {
            if nt != 4 && nt != 5 {
                return err(Reply::Error, false);
            }
            let noreply = t.noreply();
            let key = t.get(1);
            if check_key(key).is_err() {
                return err(Reply::BadFormat, noreply);
            }
            let Some(delta) = strtoull(t.get(2)) else {
                return err(Reply::InvalidDelta, noreply);
            };
            done(Request::Arith {
                incr: cmd == b"incr",
                key,
                delta,
                noreply,
            })
        }
        b"delete" => {
            if !(3..=5).contains(&nt) {
                return err(Reply::Error, false);
            }
            let mut noreply = false;
            if nt > 3 {
                let hold_is_zero = t.get(2) == b"0";
                noreply = t.noreply();
                let valid =
                    (nt == 4 && (hold_is_zero || noreply)) || (nt == 5 && hold_is_zero && noreply);
                if !valid {
                    return err(Reply::DeleteUsage, noreply);
                }
            }
            let key = t.get(1);
            if check_key(key).is_err() {
                return err(Reply::BadFormat, noreply);
            }
            done(Request::Delete { key, noreply })
        }
        b"touch" => {
            if nt != 4 && nt != 5 {
                return err(Reply::Error, false);
            }
            let noreply = t.noreply();
            let key = t.get(1);
            if check_key(key).is_err() {
                return err(Reply::BadFormat, noreply);
            }
            let Some(exptime) = strtol32(t.get(2)) else {
                return err(Reply::InvalidExptime, noreply);
            };
            done(Request::Touch {
                key,
                exptime: exptime as i64,
                noreply,
            })
        }
        b"flush_all" => {
            if !(2..=4).contains(&nt) {
                return err(Reply::Error, false);
            }
            let noreply = t.noreply();
            let mut delay = 0;
            if nt != if noreply { 3 } else { 2 } {
                match strtol32(t.get(1)) {
                    Some(d) => delay = d as i64,
                    None => return err(Reply::InvalidExptime, noreply),
                }
            }
            done(Request::FlushAll { delay, noreply })
        }
        b"version" => done(Request::Version),
        b"quit" => done(Request::Quit),
        b"verbosity" => {
            if nt != 3 && nt != 4 {
                return err(Reply::Error, false);
            }
            let noreply = t.noreply();
            match strtoul32(t.get(1)) {
                Some(level) => done(Request::Verbosity { level, noreply }),
                None => err(Reply::BadFormat, noreply),
            }
        }
        b"stats" => {
            let kind = match (nt, t.get(1)) {
                (2, _) => StatsKind::General,
                (_, b"reset") => StatsKind::Reset,
                (_, b"settings") => StatsKind::Settings,
                (_, b"items") => StatsKind::Items,
                (_, b"slabs") => StatsKind::Slabs,
                (_, b"conns") => StatsKind::Conns,
                (_, b"detail") => return err(Reply::StatsDetailUsage, false),
                _ => StatsKind::Other,
            };
            done(Request::Stats(kind))
        }
        b"mn" => done(Request::MetaNoop),
        b"cache_memlimit" => {
            if nt != 3 && nt != 4 {
                return err(Reply::Error, false);
            }
            let noreply = t.noreply();
            match strtoul32(t.get(1)) {
                None => err(Reply::Error, noreply),
                Some(mb) if mb < 8 => err(
                    Reply::Line(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"),
                    noreply,
                ),
                Some(mb) if mb > 1_000_000_000 => err(
                    Reply::Line(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"),
                    noreply,
                ),
                Some(mb) => done(Request::CacheMemlimit { mb, noreply }),
            }
        }
        b"shutdown" => done(Request::Shutdown {
            graceful: match (nt, t.get(1)) {
                (2, _) => Some(false),
                (3, b"graceful") => Some(true),
                _ => None,
            },
        }),
        [b'm', _] => super::meta::parse(buf, consumed, &t.toks[..t.n], line, limits),
        b"config" if limits.config_cmd => match (t.get(1), nt) {
            (b"get", 4) => done(Request::ConfigGet { key: t.get(2) }),
            (b"set", 6 | 7) => {
                let noreply = nt == 7 && t.noreply();
                if nt == 7 && !noreply {
                    return err(Reply::Error, false);
                }
                let (Some(_flags), Some(vlen)) = (strtoul32(t.get(3)), strtol32(t.get(4))) else {
                    return err(Reply::BadFormat, noreply);
                };
                let Ok(vlen) = usize::try_from(vlen) else {
                    return err(Reply::BadFormat, noreply);
                };
                if vlen > crate::cluster::MAX_PAYLOAD {
                    return Parsed::Error {
                        consumed,
                        reply: Reply::Line(b"SERVER_ERROR object too large for cache\r\n"),
                        noreply,
                        swallow: vlen + 2,
                    };
                }
                super::with_data_block(buf, consumed, vlen, noreply, |data| Request::ConfigSet {
                    key: t.get(2),
                    data,
                    noreply,
                })
            }
            _ => err(Reply::Error, false),
        },
        b"refresh_certs" => done(Request::RefreshCerts {
            noreply: t.noreply(),
        }),
        _ => {
            // memcached hangs up on HTTP requests sent to its port.
            if nt >= 2 && t.get(nt - 2).starts_with(b"HTTP/") {
                return Parsed::Close;
            }
            err(Reply::Error, false)
        }
    }
}

/// Position of `b` in `s`.
#[inline]
pub(crate) fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// The keys of a get-family command: the rest of the line, split on spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyList<'a>(pub &'a [u8]);

impl<'a> KeyList<'a> {
    /// The keys in order (duplicates kept, as memcached answers each).
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }
}
