//! What parsing yields ([`Parsed`]: a command, wait for more bytes, an error line, or hang
//! up) and the limits it runs under ([`Limits`]). A leaf of the front ends.

use super::reply::Reply;

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

/// One parse step's outcome: `C` is what a complete request parses to (a
/// [`crate::cmd::Command`] at the front end; one command's arguments inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<C> {
    /// Not a whole request yet: read more.
    Incomplete,
    /// A request, using `consumed` bytes; then discard `swallow` more (an oversized value).
    Done {
        /// Bytes of the buffer used.
        consumed: usize,
        /// The request.
        req: C,
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

impl<C> Parsed<C> {
    /// The same outcome with the request mapped (one command's arguments into the
    /// front end's command type).
    // Always inlined: a command's parse result is mapped into the front end's type on the
    // request path, and a call here would copy the outcome once more.
    #[inline(always)]
    pub fn map<D>(self, f: impl FnOnce(C) -> D) -> Parsed<D> {
        match self {
            Parsed::Incomplete => Parsed::Incomplete,
            Parsed::Done {
                consumed,
                req,
                swallow,
            } => Parsed::Done {
                consumed,
                req: f(req),
                swallow,
            },
            Parsed::Error {
                consumed,
                reply,
                noreply,
                swallow,
            } => Parsed::Error {
                consumed,
                reply,
                noreply,
                swallow,
            },
            Parsed::Close => Parsed::Close,
        }
    }
}
