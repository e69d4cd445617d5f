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
//! Layers: `net` (connections) runs commands through [`dispatch`] with an [`Exec`] (the
//! executor's shard, mesh end and process state) and an [`Output`] (replies in request
//! order, forwarded commands batched per owner); `cmd` runs them against `shard` and
//! `store`, and its keyed commands travel over [`crate::shard::mesh`], which carries them
//! as a [`crate::shard::mesh::Forward`] without naming them. This file only declares the
//! modules and the [`Command`] a front end parses into; every module under it names only
//! its siblings and the layers below.
//!
//! [`Line`]: crate::protocol::Line

pub mod admin;
pub mod arith;
pub mod delete;
pub mod dispatch;
pub mod exec;
pub mod keyed;
pub mod meta;
pub mod order;
pub mod retrieval;
pub mod storage;
pub mod touch;

pub use exec::Exec;
pub use keyed::Keyed;
pub use order::Output;

use crate::protocol::meta::MetaRequest;

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
