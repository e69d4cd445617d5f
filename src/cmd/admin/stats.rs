//! stats: `stats [reset|settings|items|slabs|conns]`; the report lines and `END` (see
//! [`crate::stats`]), or `RESET`.

use crate::cmd::exec::Exec;
use crate::cmd::order::Output;
use crate::protocol::{Line, Parsed, Reply};
use crate::shard::mesh::PeerGone;

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

/// Parses `stats [<what>]`.
pub fn parse(l: &Line<'_>) -> Parsed<StatsKind> {
    let kind = match (l.ntokens(), l.get(1)) {
        (2, _) => StatsKind::General,
        (_, b"reset") => StatsKind::Reset,
        (_, b"settings") => StatsKind::Settings,
        (_, b"items") => StatsKind::Items,
        (_, b"slabs") => StatsKind::Slabs,
        (_, b"conns") => StatsKind::Conns,
        (_, b"detail") => return l.error(Reply::StatsDetailUsage, false),
        _ => StatsKind::Other,
    };
    l.done(kind)
}

impl StatsKind {
    /// Renders the report; a barrier, so it counts what the pipeline did before it.
    pub async fn run(self, ctx: &Exec, output: &mut Output) -> Result<(), PeerGone> {
        output.resolve(ctx.mesh.as_deref()).await?;
        let (shared, out) = (&*ctx.shared, &mut output.out);
        match self {
            StatsKind::General => crate::stats::render_general(shared, out),
            StatsKind::Settings => crate::stats::render_settings(shared, out),
            StatsKind::Reset => {
                shared.stats.reset();
                out.extend_from_slice(b"RESET\r\n");
            }
            StatsKind::Items => crate::stats::render_items(shared, out),
            StatsKind::Slabs => crate::stats::render_slabs(shared, out),
            StatsKind::Conns => crate::stats::render_conns(shared, out),
            StatsKind::Other => out.extend_from_slice(Reply::Error.bytes()),
        }
        Ok(())
    }
}
