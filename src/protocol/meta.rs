//! memcached's meta protocol: `mg ms md ma mn me`.
//!
//! A meta request is a two-letter command, a key, (for `ms`) a data length, and flags: one
//! token each, a letter optionally followed by an argument (`T30`, `Oopaque`). The parser
//! checks the flags once, records their values in [`MetaFlags`], and keeps the raw flag
//! tokens so the owner of the key can echo the requested return flags in request order.
//! Checks and error lines follow memcached's `_meta_flag_preparse` and `process_m*_command`.

pub use super::base64::{base64_decode, base64_encode};
use super::key::{KEY_MAX_LENGTH, Key, KeyRef};
use super::line::Line;
use super::num::{strtol32, strtoul32, strtoull};
use super::parsed::{Limits, Parsed};
use super::reply::Reply;

/// Which meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCmd {
    /// `mg`
    Get,
    /// `ms`
    Set,
    /// `md`
    Delete,
    /// `ma`
    Arith,
    /// `me`
    Debug,
}

/// memcached: more tokens than this on a meta line is an error.
const MFLAG_MAX_OPT_LENGTH: usize = 20;
/// Longest opaque (`O`) token, including the `O`.
pub const MFLAG_MAX_OPAQUE_LENGTH: usize = 32;

/// The values of a meta request's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaFlags {
    /// `b`: the key is base64.
    pub base64: bool,
    /// `q`: quiet (suppress the nominal reply).
    pub quiet: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `u`: do not bump the item.
    pub no_update: bool,
    /// `I`: invalidate (mark stale).
    pub invalidate: bool,
    /// `x` (md): drop the value, keep the item.
    pub remove_value: bool,
    /// `T`: new TTL (client exptime form).
    pub ttl: Option<i64>,
    /// `N`: vivify on miss with this TTL.
    pub vivify: Option<i64>,
    /// `R`: win a recache if the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `F`: client flags.
    pub client_flags: u32,
    /// `C`: compare cas.
    pub compare_cas: Option<u64>,
    /// `E`: explicit new cas.
    pub new_cas: Option<u64>,
    /// `D`: delta (ma), default 1.
    pub delta: u64,
    /// `J`: initial value on vivify (ma).
    pub initial: u64,
    /// `M`: mode letter.
    pub mode: Option<u8>,
}

/// A parsed meta request, borrowing from the read buffer. Only the parser makes one: its
/// key is known to be a valid text key, or (with `b`) base64 of 1..=250 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRequest<'a> {
    /// The command.
    pub cmd: MetaCmd,
    /// The key as sent (base64 when `flags.base64`).
    wire_key: &'a [u8],
    /// The flag tokens, space separated, in request order.
    pub tokens: &'a [u8],
    /// `ms` data.
    pub data: &'a [u8],
    /// Parsed flag values.
    pub flags: MetaFlags,
    /// `ms` whose item would exceed `-I`: its data is being swallowed.
    pub too_large: bool,
}

impl<'a> MetaRequest<'a> {
    /// The key as sent (base64 when `flags.base64`).
    pub fn wire_key(&self) -> &'a [u8] {
        self.wire_key
    }

    /// The key, decoded into `buf` when the request used `b`.
    pub fn key<'b>(&self, buf: &'b mut [u8; KEY_MAX_LENGTH]) -> KeyRef<'b>
    where
        'a: 'b,
    {
        if !self.flags.base64 {
            return Key::checked(self.wire_key);
        }
        // Invariant: only the parser makes a MetaRequest, and it checked that the key
        // decodes to 1..=250 bytes (decode_check), so this neither fails nor is empty.
        let n = base64_decode(self.wire_key, buf).unwrap_or_default();
        Key::checked(&buf[..n])
    }
}

fn err<C>(l: &Line<'_>, reply: &'static [u8]) -> Parsed<C> {
    l.error(Reply::Line(reply), false)
}

/// Parses a meta command line (already split into memcached tokens by the text front end).
pub(super) fn parse<'a>(l: &Line<'a>, limits: &Limits) -> Parsed<MetaRequest<'a>> {
    let toks = l.tokens();
    let cmd = match toks[0][1] {
        b'g' => MetaCmd::Get,
        b's' => MetaCmd::Set,
        b'd' => MetaCmd::Delete,
        b'a' => MetaCmd::Arith,
        b'e' => MetaCmd::Debug,
        _ => return err(l, b"ERROR\r\n"),
    };
    // memcached counts the terminal token too.
    let ntokens = l.ntokens();
    if ntokens < 3 {
        // me checks its own arguments; the others fail memcached's token count.
        return err(
            l,
            if cmd == MetaCmd::Debug {
                b"CLIENT_ERROR bad command line format\r\n"
            } else {
                b"ERROR\r\n"
            },
        );
    }
    let key = toks[1];
    if key.len() > KEY_MAX_LENGTH {
        return err(l, b"CLIENT_ERROR bad command line format\r\n");
    }
    if cmd == MetaCmd::Debug {
        let base64 = toks.len() >= 3 && toks[2] == b"b";
        if decode_check(key, base64).is_some() {
            return err(l, b"CLIENT_ERROR bad command line format\r\n");
        }
        return l.done(MetaRequest {
            cmd,
            wire_key: key,
            tokens: &[],
            data: &[],
            flags: MetaFlags {
                base64,
                ..Default::default()
            },
            too_large: false,
        });
    }
    let first_flag = if cmd == MetaCmd::Set { 3 } else { 2 };
    if cmd == MetaCmd::Set && ntokens == 3 {
        return err(l, b"CLIENT_ERROR bad command line format\r\n");
    }
    if ntokens > MFLAG_MAX_OPT_LENGTH {
        return err(
            l,
            if cmd == MetaCmd::Get {
                b"CLIENT_ERROR options flags are too long\r\n"
            } else {
                b"CLIENT_ERROR options flags too long\r\n"
            },
        );
    }
    // ms: the data length comes before the flags, and is needed to swallow on errors.
    let mut vlen = 0usize;
    if cmd == MetaCmd::Set {
        match strtol32(toks[2]) {
            Some(v) if (0..=i32::MAX - 2).contains(&v) => vlen = v as usize,
            _ => return err(l, b"CLIENT_ERROR bad command line format\r\n"),
        }
    }
    let swallow_err = |reply: &'static [u8]| {
        l.error_swallowing(
            Reply::Line(reply),
            false,
            if cmd == MetaCmd::Set { vlen + 2 } else { 0 },
        )
    };
    let flag_toks = &toks[first_flag.min(toks.len())..];
    let tokens: &'a [u8] = l.from_token(first_flag);
    let flags = match preparse(flag_toks, cmd) {
        Ok(f) => f,
        Err(e) => {
            // memcached answers md and ma with one generic line whatever the flag problem.
            let reply = match cmd {
                MetaCmd::Delete | MetaCmd::Arith => {
                    b"CLIENT_ERROR invalid or duplicate flag\r\n".as_slice()
                }
                _ => e,
            };
            return swallow_err(reply);
        }
    };
    if let Some(e) = decode_check(key, flags.base64) {
        return swallow_err(match cmd {
            // md and ma decode the key while checking flags: one generic line.
            MetaCmd::Delete | MetaCmd::Arith if flags.base64 => {
                b"CLIENT_ERROR invalid or duplicate flag\r\n"
            }
            _ => e,
        });
    }
    if flag_toks
        .iter()
        .any(|t| t[0] == b'O' && t.len() > MFLAG_MAX_OPAQUE_LENGTH)
    {
        return swallow_err(b"CLIENT_ERROR opaque token too long\r\n");
    }
    let request = |data: &'a [u8], too_large: bool| MetaRequest {
        cmd,
        wire_key: key,
        tokens,
        data,
        flags,
        too_large,
    };
    match cmd {
        MetaCmd::Set => {
            if let Some(m) = flags.mode
                && !matches!(m, b'E' | b'A' | b'P' | b'R' | b'S')
            {
                return swallow_err(b"CLIENT_ERROR invalid mode for ms M token\r\n");
            }
            if crate::store::item_total(decoded_len(key, flags.base64), vlen) > limits.item_size_max
            {
                return l.done_swallowing(request(&[], true), vlen + 2);
            }
            // meta set always reports errors, q or not
            l.with_data(vlen, false, |data| request(data, false))
        }
        MetaCmd::Arith
            if flags
                .mode
                .is_some_and(|m| !matches!(m, b'I' | b'+' | b'D' | b'-')) =>
        {
            err(l, b"CLIENT_ERROR invalid mode for ma M token\r\n")
        }
        _ => l.done(request(&[], false)),
    }
}

/// Checks the key: a plain key must be a valid text key; a base64 one must decode to
/// 1..=250 bytes. The error line if not.
fn decode_check(key: &[u8], base64: bool) -> Option<&'static [u8]> {
    if base64 {
        let mut buf = [0u8; KEY_MAX_LENGTH];
        match base64_decode(key, &mut buf) {
            Some(n) if n > 0 => None,
            _ => Some(b"CLIENT_ERROR error decoding key\r\n"),
        }
    } else if Key::parse(key).is_err() {
        Some(b"CLIENT_ERROR bad command line format\r\n")
    } else {
        None
    }
}

fn decoded_len(key: &[u8], base64: bool) -> usize {
    if base64 {
        let mut buf = [0u8; KEY_MAX_LENGTH];
        base64_decode(key, &mut buf).unwrap_or(key.len())
    } else {
        key.len()
    }
}

/// memcached's `_meta_flag_preparse`: every flag once, known letters only, arguments valid.
fn preparse(toks: &[&[u8]], cmd: MetaCmd) -> Result<MetaFlags, &'static [u8]> {
    let mut f = MetaFlags {
        delta: 1,
        ..Default::default()
    };
    let mut seen = [false; 128];
    let mut error: Option<&'static [u8]> = None;
    for t in toks {
        let o = t[0];
        if o >= 127 || seen[o as usize] {
            return Err(b"CLIENT_ERROR duplicate flag\r\n");
        }
        seen[o as usize] = true;
        let arg = &t[1..];
        let bad_token: &'static [u8] = b"CLIENT_ERROR bad token in command line format\r\n";
        match o {
            b'b' => f.base64 = true,
            b'N' => match strtol32(arg) {
                Some(v) => f.vivify = Some(v as i64),
                None => error = error.or(Some(bad_token)),
            },
            b'T' => match strtol32(arg) {
                Some(v) => f.ttl = Some(v as i64),
                None => error = error.or(Some(bad_token)),
            },
            b'R' => match strtol32(arg) {
                Some(v) => f.recache = Some(v as i64),
                None => error = error.or(Some(bad_token)),
            },
            b'l' | b'h' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match strtoul32(arg) {
                Some(v) => f.client_flags = v,
                None => error = error.or(Some(b"CLIENT_ERROR bad command line format\r\n")),
            },
            b'C' => match strtoull(arg) {
                Some(v) => f.compare_cas = Some(v),
                None => error = error.or(Some(bad_token)),
            },
            b'E' => match strtoull(arg) {
                Some(v) => f.new_cas = Some(v),
                None => error = error.or(Some(bad_token)),
            },
            b'M' => {
                if t.len() != 2 {
                    error = error.or(Some(b"CLIENT_ERROR incorrect length for M token\r\n"));
                } else {
                    f.mode = Some(t[1]);
                }
            }
            b'J' => match strtoull(arg) {
                Some(v) => f.initial = v,
                None => error = error.or(Some(b"CLIENT_ERROR invalid numeric initial value\r\n")),
            },
            b'D' => match strtoull(arg) {
                Some(v) => f.delta = v,
                None => error = error.or(Some(b"CLIENT_ERROR invalid numeric delta value\r\n")),
            },
            b'I' => f.invalidate = true,
            b'x' if cmd == MetaCmd::Delete => f.remove_value = true,
            _ => return Err(b"CLIENT_ERROR invalid flag\r\n"),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preparse_rules() {
        assert_eq!(
            preparse(&[b"v", b"v"], MetaCmd::Get),
            Err(&b"CLIENT_ERROR duplicate flag\r\n"[..])
        );
        assert_eq!(
            preparse(&[b"!"], MetaCmd::Get),
            Err(&b"CLIENT_ERROR invalid flag\r\n"[..])
        );
        let f = preparse(&[b"T30", b"v", b"Oabc", b"q"], MetaCmd::Get).unwrap();
        assert_eq!(f.ttl, Some(30));
        assert!(f.value && f.quiet);
        assert!(preparse(&[b"x"], MetaCmd::Get).is_err());
        assert!(preparse(&[b"x"], MetaCmd::Delete).unwrap().remove_value);
        assert_eq!(preparse(&[], MetaCmd::Arith).unwrap().delta, 1);
    }
}
