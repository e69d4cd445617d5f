//! Running a parsed command on a connection's executor: keyed commands go to the shard that
//! owns the key (at once if that is this one, else queued for the owner and answered in
//! request order), the rest run here. Commands that must wait for other executors
//! (flush_all, stats, cache_memlimit) come back as a [`Barrier`] to await.

use super::Command;
use super::admin::{cache_memlimit::CacheMemlimit, flush_all::FlushAll, stats::StatsKind};
use super::keyed::Keyed;
use crate::cmd::exec::Exec;
use crate::cmd::order::Output;
use crate::protocol::meta::MetaCmd;
use crate::protocol::{KEY_MAX_LENGTH, Parsed};
use crate::shard::mesh::PeerGone;
use crate::shard::{hash_key, owner};
use crate::store::StoreMode;
use crate::store::prefetch::PREFETCH_MAX;

use super::meta::Meta;
use super::retrieval::END;
use super::storage::{Storage, TooLarge};

/// A command that waits for other executors (their queued work first, or their answer):
/// the connection awaits it before running the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Barrier {
    /// flush_all.
    FlushAll(FlushAll),
    /// stats.
    Stats(StatsKind),
    /// cache_memlimit.
    CacheMemlimit(CacheMemlimit),
}

impl Barrier {
    /// Runs it. An error: the mesh is gone (shutting down), close the connection.
    pub async fn run(self, ctx: &Exec, output: &mut Output) -> Result<(), PeerGone> {
        match self {
            Barrier::FlushAll(c) => c.run(ctx, output).await,
            Barrier::Stats(c) => c.run(ctx, output).await,
            Barrier::CacheMemlimit(c) => c.run(ctx, output).await,
        }
    }
}

/// Runs one command; its reply (or its place, for a forwarded one) goes to `output`. A
/// command that must wait for other executors is returned instead, to be awaited.
pub fn run(cmd: Command<'_>, ctx: &Exec, output: &mut Output) -> Option<Barrier> {
    match cmd {
        Command::Get(get) => {
            for key in get.each_key() {
                route(Keyed::Get(key), ctx, output);
            }
            output.out.extend_from_slice(END);
        }
        Command::Storage(c) => route(Keyed::Storage(c), ctx, output),
        Command::Delete(c) => route(Keyed::Delete(c), ctx, output),
        Command::Arith(c) => route(Keyed::Arith(c), ctx, output),
        Command::Touch(c) => route(Keyed::Touch(c), ctx, output),
        Command::Meta(req) => {
            let mut buf = [0u8; KEY_MAX_LENGTH];
            let m = Meta::of(&req, &mut buf);
            if req.too_large {
                // memcached drops the old item on an oversized ms, whatever the mode.
                let mode = StoreMode::Set;
                let (key, noreply) = (m.key, false);
                let c = Storage::TooLarge(TooLarge { mode, key, noreply });
                route(Keyed::Storage(c), ctx, output);
            } else {
                route(Keyed::Meta(m), ctx, output);
            }
        }
        Command::MetaNoop(c) => c.run(&mut output.out),
        Command::FlushAll(c) => return Some(Barrier::FlushAll(c)),
        Command::Version(c) => c.run(&mut output.out),
        Command::Verbosity(c) => c.run(&ctx.shared, &mut output.out),
        Command::Quit => {}
        Command::Stats(c) => return Some(Barrier::Stats(c)),
        Command::CacheMemlimit(c) => return Some(Barrier::CacheMemlimit(c)),
        Command::Shutdown(c) => c.run(&ctx.shared, &mut output.out),
        Command::RefreshCerts(c) => c.run(&ctx.shared, &mut output.out),
        Command::Config(c) => c.run(&ctx.shared, &ctx.shard.stats, &mut output.out),
    }
    None
}

/// Warms this shard's store for the keys these commands will look up here (the ones it
/// owns), so that their cache misses overlap ([`crate::store::Store::prefetch`]) before
/// [`run`] runs them one by one. Base64 meta keys are skipped (decoded only when run).
pub fn prefetch<'a>(cmds: impl IntoIterator<Item = &'a Command<'a>>, ctx: &Exec) {
    let mut hashes = [0u64; PREFETCH_MAX];
    let mut n = 0;
    let mut add = |key: &[u8]| {
        let hash = hash_key(key);
        if n < PREFETCH_MAX && remote_owner(hash, ctx).is_none() {
            hashes[n] = hash;
            n += 1;
        }
    };
    for cmd in cmds {
        match cmd {
            Command::Get(get) => get.each_key().for_each(|k| add(k.key.as_bytes())),
            Command::Storage(c) => add(c.key()),
            Command::Delete(c) => add(c.key.as_bytes()),
            Command::Arith(c) => add(c.key.as_bytes()),
            Command::Touch(c) => add(c.key.as_bytes()),
            Command::Meta(m) if !m.flags.base64 => add(m.wire_key()),
            _ => {}
        }
    }
    ctx.shard
        .store
        .borrow()
        .prefetch(hashes[..n].iter().copied());
}

/// Runs a keyed command here if this shard owns the key, else queues it for its owner.
fn route(op: Keyed<&[u8]>, ctx: &Exec, output: &mut Output) {
    let hash = hash_key(op.key());
    let noreply = op.noreply();
    match remote_owner(hash, ctx) {
        None => {
            let mark = output.out.len();
            let now = ctx.shard.clock.now();
            op.run(&ctx.shard, hash, now, &mut output.out);
            if noreply {
                output.out.truncate(mark);
            }
        }
        Some(o) => {
            ctx.shard.stats.forwarded_ops.incr();
            output.push_remote(o, hash, op.to_owned(), noreply);
        }
    }
}

/// The executor that runs a key with this hash, when it is not this one (without a mesh
/// every key runs here).
fn remote_owner(hash: u64, ctx: &Exec) -> Option<usize> {
    let o = owner(hash, ctx.shard.n);
    (o != ctx.shard.id && ctx.mesh.is_some()).then_some(o)
}

/// The service-time class of a command: an index into [`crate::stats::CMD_CLASSES`].
pub fn class(cmd: &Command<'_>) -> u8 {
    match cmd {
        Command::Get(g) if g.exptime.is_none() => 0,
        Command::Storage(_) => 1,
        Command::Delete(_) => 2,
        Command::Arith(_) => 3,
        Command::Touch(_) | Command::Get(_) => 4,
        Command::Meta(m) => match m.cmd {
            MetaCmd::Get => 0,
            MetaCmd::Set => 1,
            MetaCmd::Delete => 2,
            MetaCmd::Arith => 3,
            MetaCmd::Debug => 5,
        },
        _ => 5,
    }
}

/// `-vv`: one line per command received, as memcached prints them (`<ID command`).
pub fn log_command<C>(id: u64, buf: &[u8], parsed: &Parsed<C>) {
    if matches!(parsed, Parsed::Incomplete) {
        return;
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let shown = &line[..line.len().min(256)];
    eprintln!("<{id} {}", String::from_utf8_lossy(shown).escape_debug());
}
