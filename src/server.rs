//! Process-wide state that every executor shares: the configuration, the counters of all
//! shards, the connection count that `-c` limits, and run-time settings (`verbosity`).
//! Everything here is either immutable or atomic; nothing on the request path takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::config::Config;
use crate::stats::StatsHub;
use crate::store::Clock;
use crate::tls::TlsContext;

/// The version `version` and `stats` report: memcached's, so clients that gate features on
/// it keep working. tessera's own is in `stats` as `tessera_version`.
pub const MEMCACHED_VERSION: &str = "1.6.18";

/// tessera's own version.
pub const TESSERA_VERSION: &str = env!("CARGO_PKG_VERSION");

/// State shared by all executors.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// Every shard's counters.
    pub stats: StatsHub,
    /// The time base.
    pub clock: Clock,
    /// Open client connections (all executors), checked against `-c`.
    pub curr_conns: AtomicUsize,
    /// `verbosity` level, settable at run time.
    pub verbosity: AtomicU32,
    /// Item memory limit per shard, in bytes (`cache_memlimit` may change it).
    pub shard_mem_limit: AtomicUsize,
    /// TLS certificates and settings, when `-Z` is on.
    pub tls: Option<Arc<TlsContext>>,
}

impl Shared {
    /// Shared state for `config` (without TLS).
    pub fn new(config: Config) -> Arc<Self> {
        Self::with_tls(config, None)
    }

    /// Shared state for `config` with its TLS context.
    pub fn with_tls(config: Config, tls: Option<Arc<TlsContext>>) -> Arc<Self> {
        let n = config.threads.max(1);
        let per_shard = (config.memory_limit_bytes() / n as u64) as usize;
        Arc::new(Shared {
            stats: StatsHub::new(n),
            clock: Clock::new(),
            curr_conns: AtomicUsize::new(0),
            verbosity: AtomicU32::new(config.verbose as u32),
            shard_mem_limit: AtomicUsize::new(per_shard),
            tls,
            config,
        })
    }

    /// Current verbosity.
    pub fn verbose(&self) -> u32 {
        self.verbosity.load(Ordering::Relaxed)
    }

    /// Tries to take a connection slot; false when `-c` is reached.
    pub fn try_add_conn(&self) -> bool {
        let max = self.config.max_connections;
        self.curr_conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .is_ok()
    }

    /// Returns a connection slot.
    pub fn remove_conn(&self) {
        self.curr_conns.fetch_sub(1, Ordering::AcqRel);
    }
}
