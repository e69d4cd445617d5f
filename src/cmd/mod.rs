//! Commands: one module per command family, each holding its arguments (as parsed), how
//! it runs against a shard or the server, and what it answers.
//!
//! ```text
//!   protocol::text::parse ──▶ Command ──▶ dispatch::run ──┬─ keyed: route ─▶ Keyed::run on the owner
//!   (bytes, by command name)  (borrows the read buffer)    └─ admin: run here (barriers resolve first)
//! ```
//! A keyed command's bytes are held as `B`: borrowed (`&[u8]`, from the read buffer) when it
//! runs where it was parsed, owned (`Vec<u8>`) when it is forwarded to the executor that owns
//! its key ([`Keyed::to_owned`]); one type serves both, and the same `run` serves both.
//!
//! Adding a command: its module here (arguments, `parse` from a text [`Line`], `run`, the
//! reply), a variant of [`Command`], its arm in [`dispatch::run`], and its name in the text
//! front end's table ([`crate::protocol::text::parse`]).
//!
//! [`Line`]: crate::protocol::Line

pub mod admin;
pub mod arith;
pub mod delete;
pub mod dispatch;
pub mod meta;
pub mod retrieval;
pub mod storage;
pub mod touch;

use crate::protocol::meta::MetaRequest;
use crate::shard::Shard;
use crate::store::RelTime;

/// A parsed request, borrowing keys and data from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// get, gets, gat, gats.
    Get(retrieval::Get<'a>),
    /// set, add, replace, append, prepend, cas.
    Storage(storage::Storage<&'a [u8]>),
    /// delete.
    Delete(delete::Delete<&'a [u8]>),
    /// incr / decr.
    Arith(arith::Arith<&'a [u8]>),
    /// touch.
    Touch(touch::Touch<&'a [u8]>),
    /// A meta command (mg ms md ma me).
    Meta(MetaRequest<'a>),
    /// mn (meta no-op).
    MetaNoop(meta::mn::MetaNoop),
    /// flush_all.
    FlushAll(admin::flush_all::FlushAll),
    /// version.
    Version(admin::version::Version),
    /// verbosity.
    Verbosity(admin::verbosity::Verbosity),
    /// quit: the connection closes once the replies before it are written.
    Quit,
    /// stats.
    Stats(admin::stats::StatsKind),
    /// cache_memlimit.
    CacheMemlimit(admin::cache_memlimit::CacheMemlimit),
    /// shutdown [graceful].
    Shutdown(admin::shutdown::Shutdown),
    /// refresh_certs.
    RefreshCerts(admin::refresh_certs::RefreshCerts),
    /// config get / config set.
    Config(admin::config::Config<'a>),
}

/// A command about one key: what the key's owner runs, locally or forwarded over the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed<B> {
    /// One key of a get/gets/gat/gats.
    Get(retrieval::GetKey<B>),
    /// A storage command.
    Storage(storage::Storage<B>),
    /// delete.
    Delete(delete::Delete<B>),
    /// incr/decr.
    Arith(arith::Arith<B>),
    /// touch.
    Touch(touch::Touch<B>),
    /// A meta command.
    Meta(meta::Meta<B>),
}

impl<B: AsRef<[u8]>> Keyed<B> {
    /// The key it is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Keyed::Get(c) => c.key.as_bytes(),
            Keyed::Storage(c) => c.key(),
            Keyed::Delete(c) => c.key.as_bytes(),
            Keyed::Arith(c) => c.key.as_bytes(),
            Keyed::Touch(c) => c.key.as_bytes(),
            Keyed::Meta(c) => c.key.as_bytes(),
        }
    }

    /// Whether its reply is dropped (meta commands have `q` instead, applied by the owner).
    pub fn noreply(&self) -> bool {
        match self {
            Keyed::Storage(c) => c.noreply(),
            Keyed::Delete(c) => c.noreply,
            Keyed::Arith(c) => c.noreply,
            Keyed::Touch(c) => c.noreply,
            Keyed::Get(_) | Keyed::Meta(_) => false,
        }
    }

    /// An owned copy, to forward to the key's owner.
    pub fn to_owned(&self) -> Keyed<Vec<u8>> {
        match self {
            Keyed::Get(c) => Keyed::Get(c.to_owned()),
            Keyed::Storage(c) => Keyed::Storage(c.to_owned()),
            Keyed::Delete(c) => Keyed::Delete(c.to_owned()),
            Keyed::Arith(c) => Keyed::Arith(c.to_owned()),
            Keyed::Touch(c) => Keyed::Touch(c.to_owned()),
            Keyed::Meta(c) => Keyed::Meta(c.to_owned()),
        }
    }

    /// Runs it on the shard that owns the key, at `now`, appending memcached's reply
    /// (noreply is the caller's to apply). `hash` is [`crate::shard::hash_key`] of the key.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        match self {
            Keyed::Get(c) => c.run(shard, hash, now, out),
            Keyed::Storage(c) => c.run(shard, hash, now, out),
            Keyed::Delete(c) => c.run(shard, hash, now, out),
            Keyed::Arith(c) => c.run(shard, hash, now, out),
            Keyed::Touch(c) => c.run(shard, hash, now, out),
            Keyed::Meta(c) => c.run(shard, hash, now, out),
        }
    }
}
