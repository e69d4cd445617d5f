//! Wire protocols. A request is parsed straight out of the connection's read buffer into a
//! [`Request`] that borrows from it; parsing has three outcomes besides success: wait for
//! more bytes, an error line, or hang up — never a panic.

pub mod meta;
pub mod num;
pub mod text;

use crate::store::StoreMode;
pub use text::KeyList;

/// Longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;

/// Parser settings (the server's limits, passed in rather than global).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `-I`: the largest item.
    pub item_size_max: usize,
    /// Past this many bytes without a newline a line is junk (memcached: 2048), except a get.
    pub max_line: usize,
    /// Cap on one connection's unparsed input (a get line can be long, but not endless).
    pub read_buf_max: usize,
    /// Whether the `config` command exists (a `[cluster]` list or `cluster_config_set`);
    /// without it `config ...` is an unknown command, as in memcached.
    pub config_cmd: bool,
}

impl Limits {
    /// The limits a configuration sets.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Limits {
            item_size_max: c.item_size_max,
            max_line: 2048,
            read_buf_max: c.read_buf_max,
            config_cmd: c.cluster.is_some() || c.cluster_config_set,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            item_size_max: 1024 * 1024,
            max_line: 2048,
            read_buf_max: 16 * 1024 * 1024,
            config_cmd: false,
        }
    }
}

/// Why a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Empty or over 250 bytes.
    Length,
    /// Contains a control character (protocol.txt forbids them).
    Control,
}

/// Checks a key: 1..=250 bytes, no control characters (spaces cannot occur: they split).
pub fn check_key(key: &[u8]) -> Result<(), KeyError> {
    if key.is_empty() || key.len() > KEY_MAX_LENGTH {
        return Err(KeyError::Length);
    }
    if key.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(KeyError::Control);
    }
    Ok(())
}

/// Which `stats` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsKind {
    /// `stats`
    General,
    /// `stats reset`
    Reset,
    /// `stats settings`
    Settings,
    /// `stats items`
    Items,
    /// `stats slabs`
    Slabs,
    /// `stats conns`
    Conns,
    /// Any other sub-command (answered `ERROR` until supported).
    Other,
}

/// A parsed request, borrowing keys and data from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// get, gets, gat, gats.
    Get {
        /// Include the cas unique (gets, gats).
        cas: bool,
        /// Touch with this exptime (gat, gats).
        exptime: Option<i64>,
        /// The keys.
        keys: KeyList<'a>,
    },
    /// set, add, replace, append, prepend, cas.
    Store {
        /// Which command.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Client exptime.
        exptime: i64,
        /// The data block.
        data: &'a [u8],
        /// The cas unique to compare (cas only).
        cas: u64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// A storage command whose item exceeds `-I`; its data is swallowed.
    StoreTooLarge {
        /// Which command.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
    /// delete.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
    /// incr / decr.
    Arith {
        /// incr (true) or decr.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// touch.
    Touch {
        /// The key.
        key: &'a [u8],
        /// Client exptime.
        exptime: i64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// flush_all.
    FlushAll {
        /// Delay in client exptime form (0 = now).
        delay: i64,
        /// Suppress the reply.
        noreply: bool,
    },
    /// version.
    Version,
    /// verbosity.
    Verbosity {
        /// The level asked for.
        level: u32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// quit.
    Quit,
    /// stats.
    Stats(StatsKind),
    /// mn (meta no-op).
    MetaNoop,
    /// A meta command (mg ms md ma me).
    Meta(meta::MetaRequest<'a>),
    /// cache_memlimit: a new memory limit in megabytes.
    CacheMemlimit {
        /// Megabytes.
        mb: u32,
        /// Suppress the reply.
        noreply: bool,
    },
    /// shutdown [graceful].
    Shutdown {
        /// `Some(false)` now, `Some(true)` graceful, `None` an unknown mode (checked after
        /// `-A`, as memcached does).
        graceful: Option<bool>,
    },
    /// refresh_certs: reload the TLS certificates.
    RefreshCerts {
        /// Suppress the reply.
        noreply: bool,
    },
    /// `config get <key>` (ElastiCache auto discovery: the key is `cluster`).
    ConfigGet {
        /// The key.
        key: &'a [u8],
    },
    /// `config set <key> <flags> <bytes> [noreply]` and its data block.
    ConfigSet {
        /// The key.
        key: &'a [u8],
        /// The data block.
        data: &'a [u8],
        /// Suppress the reply.
        noreply: bool,
    },
}

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

/// The request a storage-like command makes once its `vlen`-byte data block (after the
/// line ending at `line_end`) is in: `make(data)`. Not all of it yet: incomplete. Not
/// followed by `\r\n`: `CLIENT_ERROR bad data chunk` (suppressed by `noreply`), and, as in
/// memcached, the `vlen + 2` bytes read are consumed all the same.
pub(crate) fn with_data_block<'a>(
    buf: &'a [u8],
    line_end: usize,
    vlen: usize,
    noreply: bool,
    make: impl FnOnce(&'a [u8]) -> Request<'a>,
) -> Parsed<'a> {
    let need = line_end + vlen + 2;
    if buf.len() < need {
        Parsed::Incomplete
    } else if &buf[line_end + vlen..need] != b"\r\n" {
        Parsed::Error {
            consumed: need,
            reply: Reply::BadDataChunk,
            noreply,
            swallow: 0,
        }
    } else {
        Parsed::Done {
            consumed: need,
            req: make(&buf[line_end..line_end + vlen]),
            swallow: 0,
        }
    }
}

/// One parse step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Not a whole request yet: read more.
    Incomplete,
    /// A request, using `consumed` bytes; then discard `swallow` more (an oversized value).
    Done {
        /// Bytes of the buffer used.
        consumed: usize,
        /// The request.
        req: Request<'a>,
        /// Bytes still to discard from the stream.
        swallow: usize,
    },
    /// Bad input: answer `reply` (unless `noreply`), skip `consumed` (+ `swallow`) bytes.
    Error {
        /// Bytes of the buffer used.
        consumed: usize,
        /// The error line.
        reply: Reply,
        /// memcached suppresses even error lines once it has seen `noreply`.
        noreply: bool,
        /// Bytes still to discard from the stream.
        swallow: usize,
    },
    /// memcached would close the connection (junk without a newline, HTTP).
    Close,
}
