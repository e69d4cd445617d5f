//! Process-wide state that every executor shares: the configuration, the counters of all
//! shards, the connection count that `-c` limits, and run-time settings (`verbosity`).
//! Everything here is either immutable or atomic; nothing on the request path takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::config::Config;
use crate::stats::counters::StatsHub;
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
    /// Listeners and connections, for `stats conns`.
    pub conns: ConnRegistry,
    /// Set by SIGTERM/SIGINT: every executor stops accepting and winds down.
    pub shutdown: AtomicBool,
    /// Executors whose own connections have all ended since shutdown began (they keep
    /// serving their shard to the others until every executor is done).
    pub executors_drained: AtomicUsize,
    /// The node list `config get cluster` answers.
    pub cluster: crate::cluster::ClusterState,
    /// Per executor: milliseconds since startup at its last heartbeat (every 50 ms while
    /// it runs; `/health` checks they are recent).
    pub heartbeats: Vec<std::sync::atomic::AtomicU64>,
    /// When the process started (the heartbeats' base).
    pub started: std::time::Instant,
}

/// What `stats conns` shows about one socket.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// `tcp:IP:PORT` of the peer (or the listener's own address), `unix:PATH`.
    pub addr: String,
    /// The listener it came in on (connections only).
    pub listen_addr: Option<String>,
    /// memcached's state name.
    pub state: &'static str,
    /// For TLS connections, the record path: `ktls/TLSv1.3/SUITE` or `userspace/...`.
    pub tls: Option<String>,
    /// Rel time of the last command (connections update it).
    pub last_cmd: Arc<std::sync::atomic::AtomicU32>,
}

/// Open sockets by file descriptor. Touched once when a connection opens and once when
/// it closes, never per request.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    map: std::sync::Mutex<std::collections::BTreeMap<i32, ConnInfo>>,
}

impl ConnRegistry {
    /// Records a socket.
    pub fn add(&self, fd: i32, info: ConnInfo) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(fd, info);
        }
    }

    /// Forgets a socket (before it is closed, so its fd is not reused meanwhile).
    pub fn remove(&self, fd: i32) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&fd);
        }
    }

    /// All sockets, by fd.
    pub fn snapshot(&self) -> Vec<(i32, ConnInfo)> {
        self.map
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }
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
            conns: ConnRegistry::default(),
            shutdown: AtomicBool::new(false),
            executors_drained: AtomicUsize::new(0),
            cluster: crate::cluster::ClusterState::new(config.cluster.clone()),
            heartbeats: (0..n)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            started: std::time::Instant::now(),
            config,
        })
    }

    /// Begins a graceful shutdown (`why` goes in the log line); false if one had begun.
    pub fn begin_shutdown(&self, why: &str) -> bool {
        if self.shutdown.swap(true, Ordering::SeqCst) {
            return false;
        }
        eprintln!(
            "tessera: {why}: shutting down: not accepting; open connections get {}s \
             (-o shutdown_timeout) to finish their requests",
            self.config.shutdown_timeout_secs
        );
        true
    }

    /// Milliseconds since the process started.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Executor `id` is alive now.
    pub fn heartbeat(&self, id: usize) {
        if let Some(h) = self.heartbeats.get(id) {
            h.store(self.uptime_ms().max(1), Ordering::Relaxed);
        }
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

/// Ends the process now (the `shutdown` command, a fatal executor error), removing the pid
/// file and unix socket. Here, beside [`Shared`], so the code that serves connections can
/// end the process without depending on the runtime that starts it.
pub fn exit_now(shared: &Shared, code: i32) -> ! {
    if let Some(p) = &shared.config.pidfile {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = &shared.config.unix_socket {
        let _ = std::fs::remove_file(p);
    }
    std::process::exit(code)
}
