//! Running a parsed command on a connection's executor: keyed commands go to the shard that
//! owns the key (at once if that is this one, else queued for the owner and answered in
//! request order), the rest run here.

use super::Command;
use super::keyed::Keyed;
use crate::cmd::exec::Exec;
use crate::cmd::order::Output;
use crate::protocol::meta::MetaCmd;
use crate::protocol::{KEY_MAX_LENGTH, Parsed};
use crate::shard::mesh::PeerGone;
use crate::shard::{hash_key, owner};
use crate::store::StoreMode;

use super::meta::Meta;
use super::retrieval::END;
use super::storage::{Storage, TooLarge};

/// Runs one command; its reply (or its place, for a forwarded one) goes to `output`.
/// An error: the mesh is gone (shutting down), close the connection.
pub async fn run(cmd: Command<'_>, ctx: &Exec, output: &mut Output) -> Result<(), PeerGone> {
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
        Command::FlushAll(c) => c.run(ctx, output).await?,
        Command::Version(c) => c.run(&mut output.out),
        Command::Verbosity(c) => c.run(&ctx.shared, &mut output.out),
        Command::Quit => {}
        Command::Stats(c) => c.run(ctx, output).await?,
        Command::CacheMemlimit(c) => c.run(ctx, output).await?,
        Command::Shutdown(c) => c.run(&ctx.shared, &mut output.out),
        Command::RefreshCerts(c) => c.run(&ctx.shared, &mut output.out),
        Command::Config(c) => c.run(&ctx.shared, &ctx.shard.stats, &mut output.out),
    }
    Ok(())
}

/// Runs a keyed command here if this shard owns the key, else queues it for its owner.
fn route(op: Keyed<&[u8]>, ctx: &Exec, output: &mut Output) {
    let hash = hash_key(op.key());
    let o = owner(hash, ctx.shard.n);
    let noreply = op.noreply();
    if o == ctx.shard.id || ctx.mesh.is_none() {
        let mark = output.out.len();
        let now = ctx.shard.clock.now();
        op.run(&ctx.shard, hash, now, &mut output.out);
        if noreply {
            output.out.truncate(mark);
        }
    } else {
        ctx.shard.stats.forwarded_ops.incr();
        output.push_remote(o, hash, op.to_owned(), noreply);
    }
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
