//! flush_all: `flush_all [delay] [noreply]`; `OK`. Every shard invalidates what it holds,
//! now or at `delay`.

use crate::cmd::exec::Exec;
use crate::cmd::order::Output;
use crate::protocol::num::strtol32;
use crate::protocol::{Line, Parsed, Reply};
use crate::shard::mesh::PeerGone;

/// flush_all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushAll {
    /// Delay in client exptime form (0 = now).
    pub delay: i64,
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses `flush_all [delay] [noreply]`.
pub fn parse(l: &Line<'_>) -> Parsed<FlushAll> {
    let nt = l.ntokens();
    if !(2..=4).contains(&nt) {
        return l.error(Reply::Error, false);
    }
    let noreply = l.noreply();
    let mut delay = 0;
    if nt != if noreply { 3 } else { 2 } {
        match strtol32(l.get(1)) {
            Some(d) => delay = d as i64,
            None => return l.error(Reply::InvalidExptime, noreply),
        }
    }
    l.done(FlushAll { delay, noreply })
}

impl FlushAll {
    /// Flushes this shard and every other; a barrier for the pipeline before it.
    pub async fn run(self, ctx: &Exec, output: &mut Output) -> Result<(), PeerGone> {
        ctx.shard.stats.cmd_flush.incr();
        if ctx.shared.config.disable_flush_all {
            let line = b"CLIENT_ERROR flush_all not allowed\r\n";
            super::reply(&mut output.out, line, self.noreply);
            return Ok(());
        }
        // Barrier: what the pipeline sent before flush_all happens before it.
        output.resolve(ctx.mesh.as_deref()).await?;
        ctx.shard.flush(self.delay);
        if let Some(mesh) = &ctx.mesh {
            mesh.flush_others(self.delay).await?;
        }
        super::reply(&mut output.out, b"OK\r\n", self.noreply);
        Ok(())
    }
}
