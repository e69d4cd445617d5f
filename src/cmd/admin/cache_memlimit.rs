//! cache_memlimit: `cache_memlimit <megabytes> [noreply]`; `OK`. The limit is split evenly
//! over the shards, each of which evicts down to its share.

use std::sync::atomic::Ordering;

use crate::cmd::exec::Exec;
use crate::cmd::order::Output;
use crate::protocol::num::strtoul32;
use crate::protocol::{Line, Parsed, Reply};
use crate::shard::mesh::PeerGone;

/// cache_memlimit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheMemlimit {
    /// Megabytes.
    pub mb: u32,
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses `cache_memlimit <mb> [noreply]`, with memcached's bounds and lines.
pub fn parse(l: &Line<'_>) -> Parsed<CacheMemlimit> {
    let nt = l.ntokens();
    if nt != 3 && nt != 4 {
        return l.error(Reply::Error, false);
    }
    let noreply = l.noreply();
    match strtoul32(l.get(1)) {
        None => l.error(Reply::Error, noreply),
        Some(mb) if mb < 8 => l.error(
            Reply::Line(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"),
            noreply,
        ),
        Some(mb) if mb > 1_000_000_000 => l.error(
            Reply::Line(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"),
            noreply,
        ),
        Some(mb) => l.done(CacheMemlimit { mb, noreply }),
    }
}

impl CacheMemlimit {
    /// Sets every shard's share; a barrier for the pipeline before it.
    pub async fn run(self, ctx: &Exec, output: &mut Output) -> Result<(), PeerGone> {
        let per_shard = (self.mb as u64 * 1024 * 1024 / ctx.shard.n as u64) as usize;
        ctx.shared
            .shard_mem_limit
            .store(per_shard, Ordering::Relaxed);
        output.resolve(ctx.mesh.as_deref()).await?;
        let now = ctx.shard.clock.now();
        ctx.shard.store.borrow_mut().set_mem_limit(per_shard, now);
        if let Some(mesh) = &ctx.mesh {
            mesh.memlimit_others(per_shard).await?;
        }
        if ctx.shared.verbose() > 0 {
            eprintln!("tessera: maxbytes adjusted to {}m", self.mb);
        }
        super::reply(&mut output.out, b"OK\r\n", self.noreply);
        Ok(())
    }
}
