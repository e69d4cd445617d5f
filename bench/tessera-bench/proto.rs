//! The memcached text and meta protocols, as far as the load needs them: encoding `get`/`set`
//! (`mg`/`ms`) and a liveness probe (`version`/`mn`), and parsing their replies incrementally.

use crate::workload::write_key;

/// Which memcached protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    /// `get k` / `set k 0 0 n`.
    Text,
    /// `mg k v` / `ms k n`.
    Meta,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Text => "text",
            Proto::Meta => "meta",
        })
    }
}

/// A request kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Set,
    /// `version` (text) or `mn` (meta): one round trip that touches no key.
    Hello,
}

impl Op {
    pub(crate) fn name(self, proto: Proto) -> &'static str {
        match (self, proto) {
            (Op::Get, Proto::Text) => "get",
            (Op::Set, Proto::Text) => "set",
            (Op::Hello, Proto::Text) => "version",
            (Op::Get, Proto::Meta) => "mg",
            (Op::Set, Proto::Meta) => "ms",
            (Op::Hello, Proto::Meta) => "mn",
        }
    }
}

/// A parsed reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A get found the key; `len` bytes of value.
    Hit {
        len: usize,
    },
    Miss,
    Stored,
    /// `NOT_STORED`/`EXISTS`/`NOT_FOUND` (text) or `NS`/`EX`/`NF` (meta).
    NotStored,
    Hello,
}

/// A reply line may be at most this long before we call it a protocol error.
const MAX_LINE: usize = 8192;

pub(crate) fn encode(
    proto: Proto,
    op: Op,
    prefix: &[u8],
    key: u64,
    value: &[u8],
    out: &mut Vec<u8>,
) {
    match (proto, op) {
        (Proto::Text, Op::Get) => {
            out.extend_from_slice(b"get ");
            write_key(out, prefix, key);
            out.extend_from_slice(b"\r\n");
        }
        (Proto::Text, Op::Set) => {
            out.extend_from_slice(b"set ");
            write_key(out, prefix, key);
            out.extend_from_slice(b" 0 0 ");
            out.extend_from_slice(itoa::Buffer::new().format(value.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Proto::Meta, Op::Get) => {
            out.extend_from_slice(b"mg ");
            write_key(out, prefix, key);
            out.extend_from_slice(b" v\r\n");
        }
        (Proto::Meta, Op::Set) => {
            out.extend_from_slice(b"ms ");
            write_key(out, prefix, key);
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(value.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Proto::Text, Op::Hello) => out.extend_from_slice(b"version\r\n"),
        (Proto::Meta, Op::Hello) => out.extend_from_slice(b"mn\r\n"),
    }
}

fn shown(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(200)]);
    let mut s: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.len() > 200 {
        s.push_str("...");
    }
    s
}

fn error_reply(proto: Proto, op: Op, line: &[u8]) -> String {
    let mut msg = format!("server replied `{}` to `{}`", shown(line), op.name(proto));
    if proto == Proto::Meta && line == b"ERROR" {
        msg.push_str(" (does the server speak the meta protocol? try --protocol text)");
    }
    msg
}

fn is_error_line(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

fn parse_len(tok: Option<&[u8]>) -> Option<usize> {
    let tok = tok?;
    if tok.is_empty() || tok.len() > 10 || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Parses one reply to `op` from the front of `buf`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((reply, n)))`: the reply took `n` bytes. `Err`: not a valid reply to `op`.
pub(crate) fn parse(proto: Proto, op: Op, buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_LINE {
            return Err(format!(
                "reply to `{}` has no line end within {MAX_LINE} bytes: `{}`",
                op.name(proto),
                shown(buf)
            ));
        }
        return Ok(None);
    };
    let line = &buf[..eol];
    let after = eol + 2;
    if is_error_line(line) {
        return Err(error_reply(proto, op, line));
    }
    let unexpected = || {
        Err(format!(
            "unexpected reply to `{}`: `{}`",
            op.name(proto),
            shown(line)
        ))
    };
    // A value block: `len` bytes then \r\n, then `trailer`.
    let block = |len: usize, trailer: &[u8]| -> Result<Option<(Reply, usize)>, String> {
        let end = after + len + 2 + trailer.len();
        if buf.len() < end {
            return Ok(None);
        }
        if &buf[after + len..after + len + 2] != b"\r\n" {
            return Err(format!(
                "value of {len} bytes is not followed by \\r\\n in reply to `{}`",
                op.name(proto)
            ));
        }
        if &buf[after + len + 2..end] != trailer {
            return Err(format!(
                "expected `END` after the value in reply to `{}`, got `{}`",
                op.name(proto),
                shown(&buf[after + len + 2..end])
            ));
        }
        Ok(Some((Reply::Hit { len }, end)))
    };
    match (proto, op) {
        (Proto::Text, Op::Get) => {
            if line == b"END" {
                return Ok(Some((Reply::Miss, after)));
            }
            if let Some(rest) = line.strip_prefix(b"VALUE ") {
                // VALUE <key> <flags> <bytes> [<cas>]
                let mut toks = rest.split(|&b| b == b' ');
                let (_key, _flags) = (toks.next(), toks.next());
                return match parse_len(toks.next()) {
                    Some(len) => block(len, b"END\r\n"),
                    None => unexpected(),
                };
            }
            unexpected()
        }
        (Proto::Text, Op::Set) => match line {
            b"STORED" => Ok(Some((Reply::Stored, after))),
            b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => Ok(Some((Reply::NotStored, after))),
            _ => unexpected(),
        },
        (Proto::Text, Op::Hello) => {
            if line.starts_with(b"VERSION ") {
                Ok(Some((Reply::Hello, after)))
            } else {
                unexpected()
            }
        }
        (Proto::Meta, Op::Get) => {
            if line == b"EN" {
                return Ok(Some((Reply::Miss, after)));
            }
            if let Some(rest) = line.strip_prefix(b"VA ") {
                return match parse_len(rest.split(|&b| b == b' ').next()) {
                    Some(len) => block(len, b""),
                    None => unexpected(),
                };
            }
            unexpected()
        }
        (Proto::Meta, Op::Set) => {
            let code = line.split(|&b| b == b' ').next().unwrap_or_default();
            match code {
                b"HD" => Ok(Some((Reply::Stored, after))),
                b"NS" | b"EX" | b"NF" => Ok(Some((Reply::NotStored, after))),
                _ => unexpected(),
            }
        }
        (Proto::Meta, Op::Hello) => {
            if line == b"MN" {
                Ok(Some((Reply::Hello, after)))
            } else {
                unexpected()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(proto: Proto, op: Op, key: u64, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(proto, op, b"key:", key, value, &mut v);
        v
    }

    #[test]
    fn encodes_requests() {
        assert_eq!(
            enc(Proto::Text, Op::Get, 7, b""),
            b"get key:0000000007\r\n".to_vec()
        );
        assert_eq!(
            enc(Proto::Text, Op::Set, 7, b"abc"),
            b"set key:0000000007 0 0 3\r\nabc\r\n".to_vec()
        );
        assert_eq!(
            enc(Proto::Meta, Op::Get, 7, b""),
            b"mg key:0000000007 v\r\n".to_vec()
        );
        assert_eq!(
            enc(Proto::Meta, Op::Set, 7, b"abc"),
            b"ms key:0000000007 3\r\nabc\r\n".to_vec()
        );
        assert_eq!(enc(Proto::Text, Op::Hello, 0, b""), b"version\r\n".to_vec());
        assert_eq!(enc(Proto::Meta, Op::Hello, 0, b""), b"mn\r\n".to_vec());
    }

    /// Every strict prefix of `reply` is incomplete; the whole is `want` and consumes exactly
    /// `reply.len()` even with more bytes behind it.
    fn check_incremental(proto: Proto, op: Op, reply: &[u8], want: Reply) {
        for cut in 0..reply.len() {
            assert_eq!(
                parse(proto, op, &reply[..cut]),
                Ok(None),
                "prefix of {cut} bytes of {:?}",
                String::from_utf8_lossy(reply)
            );
        }
        assert_eq!(parse(proto, op, reply), Ok(Some((want, reply.len()))));
        let mut more = reply.to_vec();
        more.extend_from_slice(b"END\r\nVALUE x");
        assert_eq!(parse(proto, op, &more), Ok(Some((want, reply.len()))));
    }

    #[test]
    fn text_replies() {
        check_incremental(
            Proto::Text,
            Op::Get,
            b"VALUE key:0000000001 0 5\r\nhello\r\nEND\r\n",
            Reply::Hit { len: 5 },
        );
        // A value that contains \r\n and "END".
        check_incremental(
            Proto::Text,
            Op::Get,
            b"VALUE k 3 9 77\r\nEND\r\nab\r\n\r\nEND\r\n",
            Reply::Hit { len: 9 },
        );
        check_incremental(Proto::Text, Op::Get, b"END\r\n", Reply::Miss);
        check_incremental(Proto::Text, Op::Set, b"STORED\r\n", Reply::Stored);
        check_incremental(Proto::Text, Op::Set, b"NOT_STORED\r\n", Reply::NotStored);
        check_incremental(Proto::Text, Op::Hello, b"VERSION 1.6.18\r\n", Reply::Hello);
    }

    #[test]
    fn meta_replies() {
        check_incremental(
            Proto::Meta,
            Op::Get,
            b"VA 5 f0\r\nhello\r\n",
            Reply::Hit { len: 5 },
        );
        check_incremental(Proto::Meta, Op::Get, b"VA 0\r\n\r\n", Reply::Hit { len: 0 });
        check_incremental(Proto::Meta, Op::Get, b"EN\r\n", Reply::Miss);
        check_incremental(Proto::Meta, Op::Set, b"HD\r\n", Reply::Stored);
        check_incremental(Proto::Meta, Op::Set, b"NS\r\n", Reply::NotStored);
        check_incremental(Proto::Meta, Op::Hello, b"MN\r\n", Reply::Hello);
    }

    #[test]
    fn errors_are_errors() {
        let e = parse(Proto::Text, Op::Set, b"SERVER_ERROR out of memory\r\n").unwrap_err();
        assert!(e.contains("SERVER_ERROR out of memory"), "{e}");
        let e = parse(Proto::Meta, Op::Get, b"ERROR\r\n").unwrap_err();
        assert!(e.contains("meta protocol"), "{e}");
        assert!(parse(Proto::Text, Op::Get, b"CLIENT_ERROR bad\r\n").is_err());
        // Wrong reply for the request.
        assert!(parse(Proto::Text, Op::Get, b"STORED\r\n").is_err());
        assert!(parse(Proto::Text, Op::Set, b"END\r\n").is_err());
        assert!(parse(Proto::Meta, Op::Set, b"VA 1\r\nx\r\n").is_err());
        assert!(parse(Proto::Meta, Op::Hello, b"HD\r\n").is_err());
        // Malformed lengths and framing.
        assert!(parse(Proto::Text, Op::Get, b"VALUE k 0 x\r\n").is_err());
        assert!(parse(Proto::Text, Op::Get, b"VALUE k 0\r\n").is_err());
        assert!(parse(Proto::Text, Op::Get, b"VALUE k 0 2\r\nabc\r\nEND\r\n").is_err());
        assert!(parse(Proto::Text, Op::Get, b"VALUE k 0 3\r\nabc\r\nENX\r\n").is_err());
        assert!(parse(Proto::Meta, Op::Get, b"VA -1\r\n").is_err());
        assert!(parse(Proto::Meta, Op::Get, b"VA 99999999999\r\n").is_err());
        // No line end within the limit.
        assert!(parse(Proto::Text, Op::Get, &vec![b'x'; MAX_LINE + 1]).is_err());
        assert_eq!(parse(Proto::Text, Op::Get, &[b'x'; 100]), Ok(None));
    }

    #[test]
    fn error_text_is_printable() {
        let e = parse(Proto::Text, Op::Get, b"\x01\x02garbage\r\n").unwrap_err();
        assert!(e.contains("??garbage"), "{e}");
    }
}
