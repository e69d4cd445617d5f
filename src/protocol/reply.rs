//! Reply encoding the commands share: memcached's fixed error lines, the classic `VALUE`
//! line, and the meta return flags. Commands decide *what* to answer; the bytes are here.

use crate::store::RelTime;

/// Fixed reply lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `ERROR`
    Error,
    /// `CLIENT_ERROR bad command line format`
    BadFormat,
    /// `CLIENT_ERROR bad data chunk`
    BadDataChunk,
    /// `CLIENT_ERROR invalid exptime argument`
    InvalidExptime,
    /// `CLIENT_ERROR invalid numeric delta argument`
    InvalidDelta,
    /// delete's usage error.
    DeleteUsage,
    /// stats detail's usage error.
    StatsDetailUsage,
    /// Any other fixed line (with its `\r\n`).
    Line(&'static [u8]),
}

impl Reply {
    /// The exact bytes on the wire.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Reply::Error => b"ERROR\r\n",
            Reply::BadFormat => b"CLIENT_ERROR bad command line format\r\n",
            Reply::BadDataChunk => b"CLIENT_ERROR bad data chunk\r\n",
            Reply::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
            Reply::InvalidDelta => b"CLIENT_ERROR invalid numeric delta argument\r\n",
            Reply::DeleteUsage => {
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            Reply::StatsDetailUsage => b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
            Reply::Line(l) => l,
        }
    }
}

/// `SERVER_ERROR object too large for cache`: a storage command over `-I`.
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// `SERVER_ERROR out of memory storing object`: nothing could be evicted for it.
pub const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
/// incr/decr on a value that is not a decimal number.
pub const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";

/// Appends `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
pub fn write_value(out: &mut Vec<u8>, key: &[u8], flags: u32, value: &[u8], cas: Option<u64>) {
    let mut b = itoa::Buffer::new();
    out.reserve(key.len() + value.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    out.extend_from_slice(b.format(flags).as_bytes());
    out.push(b' ');
    out.extend_from_slice(b.format(value.len()).as_bytes());
    if let Some(c) = cas {
        out.push(b' ');
        out.extend_from_slice(b.format(c).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number in decimal.
pub fn num(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// The flag tokens of a meta request, in request order.
pub fn meta_tokens(t: &[u8]) -> impl Iterator<Item = &[u8]> {
    t.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// ` k<key>`, base64 with a trailing ` b` for binary keys (memcached's META_KEY).
pub fn meta_key_flag(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        super::base64::base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// ` O<opaque>`: echoes an opaque token as sent.
pub fn meta_opaque(out: &mut Vec<u8>, token: &[u8]) {
    out.push(b' ');
    out.extend_from_slice(token);
}

/// `<code>` and the flags every meta reply carries, hit or miss (`O` opaque, `k` key),
/// then `\r\n`.
pub fn meta_status(out: &mut Vec<u8>, code: &[u8], toks: &[u8], key: &[u8], binary: bool) {
    out.extend_from_slice(code);
    for t in meta_tokens(toks) {
        match t[0] {
            b'O' => meta_opaque(out, t),
            b'k' => meta_key_flag(out, key, binary),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// TTL remaining as memcached reports it: -1 for none.
pub fn ttl_left(out: &mut Vec<u8>, exptime: RelTime, now: RelTime) {
    if exptime == 0 {
        out.extend_from_slice(b"-1");
    } else {
        num(out, exptime.wrapping_sub(now));
    }
}
