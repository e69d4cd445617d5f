//! verbosity: `verbosity <level> [noreply]`; `OK`. 1 logs connections and errors, 2 also
//! every command (capped at 2).

use std::sync::atomic::Ordering;

use crate::protocol::num::strtoul32;
use crate::protocol::{Line, Parsed, Reply};
use crate::server::Shared;

/// verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// The level asked for.
    pub level: u32,
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses `verbosity <level> [noreply]`.
pub fn parse(l: &Line<'_>) -> Parsed<Verbosity> {
    let nt = l.ntokens();
    if nt != 3 && nt != 4 {
        return l.error(Reply::Error, false);
    }
    let noreply = l.noreply();
    match strtoul32(l.get(1)) {
        Some(level) => l.done(Verbosity { level, noreply }),
        None => l.error(Reply::BadFormat, noreply),
    }
}

impl Verbosity {
    /// Sets the process-wide level.
    pub fn run(self, shared: &Shared, out: &mut Vec<u8>) {
        shared.verbosity.store(self.level.min(2), Ordering::Relaxed);
        super::reply(out, b"OK\r\n", self.noreply);
    }
}
