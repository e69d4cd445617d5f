//! shutdown: `shutdown [graceful]`, only with `-A`. Now: the process exits; graceful: as
//! SIGUSR1, connections finish and close.

use crate::protocol::{Line, Parsed};
use crate::server::Shared;

/// shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// `Some(false)` now, `Some(true)` graceful, `None` an unknown mode (checked after
    /// `-A`, as memcached does).
    pub graceful: Option<bool>,
}

/// Parses `shutdown [graceful]`.
pub fn parse(l: &Line<'_>) -> Parsed<Shutdown> {
    l.done(Shutdown {
        graceful: match (l.ntokens(), l.get(1)) {
            (2, _) => Some(false),
            (3, b"graceful") => Some(true),
            _ => None,
        },
    })
}

impl Shutdown {
    /// Begins a graceful shutdown, or exits at once (and does not return).
    pub fn run(self, shared: &Shared, out: &mut Vec<u8>) {
        if !shared.config.enable_shutdown {
            out.extend_from_slice(b"ERROR: shutdown not enabled\r\n");
            return;
        }
        let Some(graceful) = self.graceful else {
            out.extend_from_slice(b"CLIENT_ERROR invalid shutdown mode\r\n");
            return;
        };
        if graceful {
            // memcached raises SIGUSR1: the same graceful shutdown as a signal. This
            // connection is between requests now, so it closes with the others.
            shared.begin_shutdown("shutdown graceful command");
            return;
        }
        eprintln!("tessera: shutdown command received; exiting");
        crate::server::exit_now(shared, 0);
    }
}
