//! memcached's text protocol: one tokenizer ([`Line`]), and the table of command names.
//!
//! The front end frames a line, splits it, and hands it by command name to the command's
//! own argument parser (in [`crate::cmd`]), which follows memcached 1.6's `proto_text.c`
//! decision by decision (token counts, which check comes first, which error text), because
//! clients and test suites match on those bytes. Nothing is copied: commands borrow from
//! the read buffer.

use super::line::Line;
use super::parsed::{Limits, Parsed};
use super::reply::Reply;
use crate::cmd::{Command, admin, arith, delete, meta::mn, retrieval, storage, touch};

/// Parses one request from the front of `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<Command<'a>> {
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
    let mut text = &buf[..nl];
    if text.len() > 1 && text[text.len() - 1] == b'\r' {
        text = &text[..text.len() - 1];
    }
    // memcached works on C strings: a NUL ends the command.
    if let Some(z) = memchr(0, text) {
        text = &text[..z];
    }
    let l = Line::new(buf, nl + 1, text);
    let name = l.get(0);
    if l.ntokens() < 2 || name.len() < 2 {
        return l.error(Reply::Error, false);
    }
    // The command table: a name, and the parser of its arguments.
    match name {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => retrieval::parse(&l).map(Command::Get),
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            storage::parse(&l, limits).map(Command::Storage)
        }
        b"incr" | b"decr" => arith::parse(&l).map(Command::Arith),
        b"delete" => delete::parse(&l).map(Command::Delete),
        b"touch" => touch::parse(&l).map(Command::Touch),
        b"flush_all" => admin::flush_all::parse(&l).map(Command::FlushAll),
        b"version" => l.done(Command::Version(admin::version::Version)),
        b"quit" => l.done(Command::Quit),
        b"verbosity" => admin::verbosity::parse(&l).map(Command::Verbosity),
        b"stats" => admin::stats::parse(&l).map(Command::Stats),
        b"mn" => l.done(Command::MetaNoop(mn::MetaNoop)),
        b"cache_memlimit" => admin::cache_memlimit::parse(&l).map(Command::CacheMemlimit),
        b"shutdown" => admin::shutdown::parse(&l).map(Command::Shutdown),
        [b'm', _] => super::meta::parse(&l, limits).map(Command::Meta),
        b"config" if limits.config_cmd => admin::config::parse(&l).map(Command::Config),
        b"refresh_certs" => admin::refresh_certs::parse(&l).map(Command::RefreshCerts),
        _ => {
            // memcached hangs up on HTTP requests sent to its port.
            let nt = l.ntokens();
            if nt >= 2 && l.get(nt - 2).starts_with(b"HTTP/") {
                return Parsed::Close;
            }
            l.error(Reply::Error, false)
        }
    }
}

/// Position of `b` in `s`.
#[inline]
pub(crate) fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}
