//! Counters: one [`ShardStats`] per executor, written only by that executor's thread and read
//! by whichever executor answers `stats`.
//!
//! Each counter is an `AtomicU64` that its one writer updates with a plain load + store
//! (no locked read-modify-write on the hot path); readers on other threads see a value at
//! most a moment old, which is all `stats` promises. `stats reset` never writes another
//! thread's counters: it records a baseline that later reads subtract.

use std::sync::Mutex;

use crate::server::{MEMCACHED_VERSION, Shared, TESSERA_VERSION};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter with a single writing thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }
    /// Adds `n` (single writer: no atomic read-modify-write needed).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Subtracts `n`.
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }
    /// Sets a gauge.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    /// Reads it.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! shard_stats {
    (counters { $($c:ident),* $(,)? } gauges { $($g:ident),* $(,)? }) => {
        /// One executor's counters and gauges (memcached's names).
        #[derive(Debug, Default)]
        #[repr(align(128))] // its own cache lines: no false sharing between executors
        pub struct ShardStats {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: Counter,)*
            $(#[doc = concat!("`", stringify!($g), "` (gauge: not reset)")] pub $g: Counter,)*
        }

        /// A plain copy of counters, summed over shards.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct Snapshot {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: u64,)*
            $(#[doc = concat!("`", stringify!($g), "`")] pub $g: u64,)*
        }

        impl ShardStats {
            /// Every field: (name, value, whether it is a gauge).
            pub fn fields(&self) -> Vec<(&'static str, u64, bool)> {
                vec![
                    $((stringify!($c), self.$c.get(), false),)*
                    $((stringify!($g), self.$g.get(), true),)*
                ]
            }

            /// Adds this shard's values into `into`.
            pub fn add_to(&self, into: &mut Snapshot) {
                $(into.$c = into.$c.wrapping_add(self.$c.get());)*
                $(into.$g = into.$g.wrapping_add(self.$g.get());)*
            }
        }

        impl Snapshot {
            /// Counters minus a `stats reset` baseline; gauges stay as they are.
            pub fn minus(mut self, base: &Snapshot) -> Snapshot {
                $(self.$c = self.$c.wrapping_sub(base.$c);)*
                self
            }
        }
    };
}

shard_stats! {
    counters {
        total_connections, rejected_connections, cmd_get, cmd_set, cmd_flush, cmd_touch,
        cmd_meta, get_hits, get_misses, get_expired, get_flushed, delete_misses, delete_hits,
        incr_misses, incr_hits, decr_misses, decr_hits, cas_misses, cas_hits, cas_badval,
        touch_hits, touch_misses, store_too_large, store_no_memory, bytes_read, bytes_written,
        conn_yields, total_items, expired_unfetched, evicted_unfetched, evictions, reclaimed,
        outofmemory, forwarded_ops, forwarded_batches, protocol_errors, protocol_closes,
        ssl_handshakes, ssl_handshake_errors, ssl_handshake_timeouts, ssl_proto_errors,
        ssl_resumed_sessions, ssl_new_sessions, ssl_verify_failures, ssl_plaintext_connections,
        ssl_ktls_fallbacks, idle_kicks, cmd_config_get, cmd_config_set,
    }
    gauges {
        curr_connections, curr_items, bytes, limit_maxbytes, ssl_connections,
        ssl_ktls_connections, ssl_userspace_connections,
        eviction_head_atime,
    }
}

/// The command classes service time is recorded for.
pub const CMD_CLASSES: [&str; 6] = ["get", "set", "delete", "incr_decr", "touch", "other"];
/// Histogram buckets: upper bounds of 2^8 ns (256 ns) to 2^30 ns (about 1.07 s), then +Inf.
pub const LATENCY_BUCKETS: usize = 24;
/// log2 of the first bucket's upper bound in nanoseconds.
const LATENCY_FIRST_SHIFT: u32 = 8;

/// One executor's histograms of command service time (from parsing a request to its reply
/// being ready to write), per command class. Written only by that executor's thread.
#[derive(Debug, Default)]
pub struct Latency {
    buckets: [[Counter; LATENCY_BUCKETS]; CMD_CLASSES.len()],
    sum_ns: [Counter; CMD_CLASSES.len()],
}

/// A [`Latency`] summed over shards: per class, the bucket counts (not cumulative) and the
/// sum in nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// `[class][bucket]` counts.
    pub buckets: [[u64; LATENCY_BUCKETS]; CMD_CLASSES.len()],
    /// `[class]` sums of nanoseconds.
    pub sum_ns: [u64; CMD_CLASSES.len()],
}

/// The bucket for a duration: the first whose bound (2^(8+i) ns) is at least `ns`.
pub fn latency_bucket(ns: u64) -> usize {
    if ns <= 1 << LATENCY_FIRST_SHIFT {
        return 0;
    }
    // ceil(log2(ns)) - 8
    let log = u64::BITS - (ns - 1).leading_zeros();
    ((log - LATENCY_FIRST_SHIFT) as usize).min(LATENCY_BUCKETS - 1)
}

/// The upper bound of bucket `i` in seconds (`None` for the last, +Inf).
pub fn latency_bound_secs(i: usize) -> Option<f64> {
    (i + 1 < LATENCY_BUCKETS).then(|| (1u64 << (LATENCY_FIRST_SHIFT as usize + i)) as f64 / 1e9)
}

impl Latency {
    /// Records one command of class `class` (an index into [`CMD_CLASSES`]) taking `ns`.
    #[inline]
    pub fn observe(&self, class: usize, ns: u64) {
        if let (Some(b), Some(sum)) = (self.buckets.get(class), self.sum_ns.get(class)) {
            b[latency_bucket(ns)].incr();
            sum.add(ns);
        }
    }

    /// Adds this shard's values into `into`.
    pub fn add_to(&self, into: &mut LatencySnapshot) {
        for (c, row) in self.buckets.iter().enumerate() {
            for (b, v) in row.iter().enumerate() {
                into.buckets[c][b] += v.get();
            }
            into.sum_ns[c] += self.sum_ns[c].get();
        }
    }
}

/// memcached's MAX_NUMBER_OF_SLAB_CLASSES.
pub const MAX_CLASSES: usize = 64;

macro_rules! class_stats {
    ($($c:ident),* $(,)?) => {
        /// One executor's counters for one (reporting) slab class, memcached's names.
        #[derive(Debug, Default)]
        pub struct ClassStats {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: Counter,)*
        }

        /// [`ClassStats`] summed over shards.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct ClassSnapshot {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: u64,)*
        }

        impl ClassStats {
            /// Adds this shard's values into `into`.
            pub fn add_to(&self, into: &mut ClassSnapshot) {
                $(into.$c = into.$c.wrapping_add(self.$c.get());)*
            }
        }

        impl ClassSnapshot {
            /// Counters minus a `stats reset` baseline; the gauges (`number`,
            /// `mem_requested`, `evicted_time`) stay as they are.
            pub fn minus(mut self, base: &ClassSnapshot) -> ClassSnapshot {
                let (number, mem, etime) = (self.number, self.mem_requested, self.evicted_time);
                $(self.$c = self.$c.wrapping_sub(base.$c);)*
                self.number = number;
                self.mem_requested = mem;
                self.evicted_time = etime;
                self
            }
        }
    };
}

class_stats! {
    number, mem_requested, evicted, evicted_nonzero, evicted_time, evicted_unfetched, expired_unfetched,
    reclaimed, outofmemory, get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits,
    cas_badval, touch_hits,
}

/// One executor's per-class counters.
pub type ShardClasses = std::sync::Arc<Vec<ClassStats>>;

/// Process-wide stats state: every shard's counters plus the `stats reset` baseline.
#[derive(Debug)]
pub struct StatsHub {
    shards: Vec<std::sync::Arc<ShardStats>>,
    latency: Vec<std::sync::Arc<Latency>>,
    classes: Vec<ShardClasses>,
    baseline: Mutex<Snapshot>,
    class_baseline: Mutex<Vec<ClassSnapshot>>,
}

impl StatsHub {
    /// A hub for `n` shards.
    pub fn new(n: usize) -> Self {
        StatsHub {
            shards: (0..n).map(|_| Default::default()).collect(),
            latency: (0..n).map(|_| Default::default()).collect(),
            classes: (0..n)
                .map(|_| {
                    std::sync::Arc::new((0..MAX_CLASSES).map(|_| ClassStats::default()).collect())
                })
                .collect(),
            baseline: Mutex::new(Snapshot::default()),
            class_baseline: Mutex::new(vec![ClassSnapshot::default(); MAX_CLASSES]),
        }
    }

    /// Shard `i`'s per-class counters.
    pub fn classes(&self, i: usize) -> ShardClasses {
        self.classes[i].clone()
    }

    fn class_totals(&self) -> Vec<ClassSnapshot> {
        let mut out = vec![ClassSnapshot::default(); MAX_CLASSES];
        for shard in &self.classes {
            for (c, o) in shard.iter().zip(out.iter_mut()) {
                c.add_to(o);
            }
        }
        out
    }

    /// Per-class counters summed over shards, less the `stats reset` baseline
    /// (index 0 = class 1).
    pub fn class_snapshot(&self) -> Vec<ClassSnapshot> {
        let base = self
            .class_baseline
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        self.class_totals()
            .into_iter()
            .zip(
                base.iter()
                    .chain(std::iter::repeat(&ClassSnapshot::default())),
            )
            .map(|(t, b)| t.minus(b))
            .collect()
    }

    /// Shard `i`'s counters.
    pub fn shard(&self, i: usize) -> std::sync::Arc<ShardStats> {
        self.shards[i].clone()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Shard `i`'s service-time histograms.
    pub fn latency(&self, i: usize) -> std::sync::Arc<Latency> {
        self.latency[i].clone()
    }

    /// Service-time histograms summed over shards (never reset).
    pub fn latency_snapshot(&self) -> LatencySnapshot {
        let mut total = LatencySnapshot::default();
        for l in &self.latency {
            l.add_to(&mut total);
        }
        total
    }

    /// All shards summed, ignoring `stats reset` (monotonic counters, for Prometheus).
    pub fn raw_snapshot(&self) -> Snapshot {
        let mut total = Snapshot::default();
        for s in &self.shards {
            s.add_to(&mut total);
        }
        total
    }

    /// All shards summed, less the `stats reset` baseline.
    pub fn snapshot(&self) -> Snapshot {
        let base = self.baseline.lock().map(|b| *b).unwrap_or_default();
        self.raw_snapshot().minus(&base)
    }

    /// `stats reset`: counters read as zero from now on.
    pub fn reset(&self) {
        let mut total = Snapshot::default();
        for s in &self.shards {
            s.add_to(&mut total);
        }
        if let Ok(mut b) = self.baseline.lock() {
            *b = total;
        }
        let classes = self.class_totals();
        if let Ok(mut b) = self.class_baseline.lock() {
            *b = classes;
        }
    }
}

/// CPU time this process used: (user, system) in seconds.
pub fn rusage() -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(ru) => {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (secs(ru.user_time()), secs(ru.system_time()))
        }
        Err(_) => (0.0, 0.0),
    }
}

/// Appends one `STAT name value` line.
fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// `stats`: memcached's general statistics, in memcached's order and format.
pub fn render_general(shared: &Shared, out: &mut Vec<u8>) {
    render_general_from(shared, shared.stats.snapshot(), out);
}

/// `stats` from the counters `s` (the admin listener passes ones `stats reset` left alone).
pub fn render_general_from(shared: &Shared, s: Snapshot, out: &mut Vec<u8>) {
    let now = shared.clock.now();
    let (user, sys) = rusage();
    let n = shared.stats.shards();
    let limit = shared
        .shard_mem_limit
        .load(std::sync::atomic::Ordering::Relaxed) as u64
        * n as u64;
    stat(out, "pid", std::process::id());
    stat(out, "uptime", shared.clock.uptime(now));
    stat(out, "time", shared.clock.unix(now));
    stat(out, "version", MEMCACHED_VERSION);
    stat(out, "tessera_version", TESSERA_VERSION);
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", format_args!("{user:.6}"));
    stat(out, "rusage_system", format_args!("{sys:.6}"));
    stat(out, "max_connections", shared.config.max_connections);
    stat(out, "curr_connections", s.curr_connections);
    stat(out, "total_connections", s.total_connections);
    stat(out, "rejected_connections", s.rejected_connections);
    stat(out, "connection_structures", s.curr_connections);
    stat(out, "cmd_get", s.cmd_get);
    stat(out, "cmd_set", s.cmd_set);
    stat(out, "cmd_flush", s.cmd_flush);
    stat(out, "cmd_touch", s.cmd_touch);
    stat(out, "cmd_meta", s.cmd_meta);
    stat(out, "get_hits", s.get_hits);
    stat(out, "get_misses", s.get_misses);
    stat(out, "get_expired", s.get_expired);
    stat(out, "get_flushed", s.get_flushed);
    stat(out, "delete_misses", s.delete_misses);
    stat(out, "delete_hits", s.delete_hits);
    stat(out, "incr_misses", s.incr_misses);
    stat(out, "incr_hits", s.incr_hits);
    stat(out, "decr_misses", s.decr_misses);
    stat(out, "decr_hits", s.decr_hits);
    stat(out, "cas_misses", s.cas_misses);
    stat(out, "cas_hits", s.cas_hits);
    stat(out, "cas_badval", s.cas_badval);
    stat(out, "touch_hits", s.touch_hits);
    stat(out, "touch_misses", s.touch_misses);
    stat(out, "store_too_large", s.store_too_large);
    stat(out, "store_no_memory", s.store_no_memory);
    stat(out, "auth_cmds", 0);
    stat(out, "auth_errors", 0);
    if shared.config.idle_timeout_secs > 0 {
        stat(out, "idle_kicks", s.idle_kicks);
    }
    stat(out, "bytes_read", s.bytes_read);
    stat(out, "bytes_written", s.bytes_written);
    stat(out, "limit_maxbytes", limit);
    let accepting = !shared.shutdown.load(std::sync::atomic::Ordering::Relaxed);
    stat(out, "accepting_conns", u8::from(accepting));
    stat(out, "threads", n);
    stat(out, "conn_yields", s.conn_yields);
    stat(out, "shard_forwarded_ops", s.forwarded_ops);
    stat(out, "shard_forwarded_batches", s.forwarded_batches);
    stat(out, "protocol_errors", s.protocol_errors);
    stat(out, "protocol_closes", s.protocol_closes);
    stat(out, "cmd_config_get", s.cmd_config_get);
    stat(out, "cmd_config_set", s.cmd_config_set);
    stat(out, "bytes", s.bytes);
    stat(out, "curr_items", s.curr_items);
    stat(out, "total_items", s.total_items);
    stat(out, "expired_unfetched", s.expired_unfetched);
    stat(out, "evicted_unfetched", s.evicted_unfetched);
    stat(out, "evictions", s.evictions);
    stat(out, "reclaimed", s.reclaimed);
    if let Some(tls) = &shared.tls {
        stat(out, "ssl_handshakes", s.ssl_handshakes);
        stat(out, "ssl_handshake_errors", s.ssl_handshake_errors);
        stat(out, "ssl_handshake_timeouts", s.ssl_handshake_timeouts);
        stat(out, "ssl_proto_errors", s.ssl_proto_errors);
        stat(out, "ssl_resumed_sessions", s.ssl_resumed_sessions);
        stat(out, "ssl_new_sessions", s.ssl_new_sessions);
        stat(out, "ssl_verify_failures", s.ssl_verify_failures);
        stat(out, "ssl_connections", s.ssl_connections);
        stat(out, "ssl_ktls_connections", s.ssl_ktls_connections);
        stat(
            out,
            "ssl_userspace_connections",
            s.ssl_userspace_connections,
        );
        stat(out, "ssl_ktls_fallbacks", s.ssl_ktls_fallbacks);
        stat(
            out,
            "ssl_plaintext_connections",
            s.ssl_plaintext_connections,
        );
        stat(
            out,
            "time_since_server_cert_refresh",
            tls.secs_since_refresh(),
        );
    }
    out.extend_from_slice(b"END\r\n");
}

/// Slab page size memcached would use: 1 MiB, or `-I` when larger.
fn page_size(item_size_max: usize) -> usize {
    item_size_max.max(1024 * 1024)
}

/// Age in seconds of the oldest item in the eviction queues, over all shards.
fn eviction_age(shared: &Shared, now: crate::store::RelTime) -> u64 {
    let s = shared.stats.snapshot();
    if s.curr_items == 0 {
        return 0;
    }
    let oldest = (0..shared.stats.shards())
        .map(|i| shared.stats.shard(i))
        .filter(|st| st.curr_items.get() > 0)
        .map(|st| st.eviction_head_atime.get())
        .min()
        .unwrap_or(now as u64);
    (now as u64).saturating_sub(oldest)
}

/// `stats items`: memcached's per-class item statistics, for the classes that hold items.
/// tessera has one S3-FIFO per shard rather than per class LRUs: `number_cold` counts every
/// item, `age` is the age of the oldest item in the eviction queues.
pub fn render_items(shared: &Shared, out: &mut Vec<u8>) {
    let classes = shared.stats.class_snapshot();
    let now = shared.clock.now();
    let age = eviction_age(shared, now);
    for (i, c) in classes.iter().enumerate().filter(|(_, c)| c.number > 0) {
        let id = i + 1;
        let mut f = |name: &str, v: u64| stat(out, &format!("items:{id}:{name}"), v);
        f("number", c.number);
        f("number_hot", 0);
        f("number_warm", 0);
        f("number_cold", c.number);
        f("age_hot", 0);
        f("age_warm", 0);
        f("age", age);
        f("mem_requested", c.mem_requested);
        f("evicted", c.evicted);
        f("evicted_nonzero", c.evicted_nonzero);
        f("evicted_time", c.evicted_time);
        f("outofmemory", c.outofmemory);
        f("tailrepairs", 0);
        f("reclaimed", c.reclaimed);
        f("expired_unfetched", c.expired_unfetched);
        f("evicted_unfetched", c.evicted_unfetched);
        f("evicted_active", 0);
        f("crawler_reclaimed", 0);
        f("crawler_items_checked", 0);
        f("lrutail_reflocked", 0);
        f("moves_to_cold", 0);
        f("moves_to_warm", 0);
        f("moves_within_lru", 0);
        f("direct_reclaims", c.evicted);
        f("hits_to_hot", 0);
        f("hits_to_warm", 0);
        f("hits_to_cold", c.get_hits);
        f("hits_to_temp", 0);
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats slabs`: memcached's per-class memory statistics, computed from the items each
/// class would hold in memcached's slab layout (tessera allocates per item).
pub fn render_slabs(shared: &Shared, out: &mut Vec<u8>) {
    let item_max = shared.config.item_size_max;
    let sizes = crate::store::slabs::class_sizes(item_max);
    let page = page_size(item_max);
    let classes = shared.stats.class_snapshot();
    let mut active = 0u64;
    let mut malloced = 0u64;
    for (i, c) in classes.iter().enumerate().take(sizes.len()) {
        let touched = c.number > 0 || c.cmd_set > 0;
        if !touched {
            continue;
        }
        let id = i + 1;
        let chunk = sizes[i];
        let per_page = (page / chunk).max(1) as u64;
        let pages = c.number.div_ceil(per_page).max(1);
        active += 1;
        malloced += pages * page as u64;
        let mut f = |name: &str, v: u64| stat(out, &format!("{id}:{name}"), v);
        f("chunk_size", chunk as u64);
        f("chunks_per_page", per_page);
        f("total_pages", pages);
        f("total_chunks", pages * per_page);
        f("used_chunks", c.number);
        f(
            "free_chunks",
            pages * per_page - c.number.min(pages * per_page),
        );
        f("free_chunks_end", 0);
        f("get_hits", c.get_hits);
        f("cmd_set", c.cmd_set);
        f("delete_hits", c.delete_hits);
        f("incr_hits", c.incr_hits);
        f("decr_hits", c.decr_hits);
        f("cas_hits", c.cas_hits);
        f("cas_badval", c.cas_badval);
        f("touch_hits", c.touch_hits);
    }
    stat(out, "active_slabs", active);
    stat(out, "total_malloced", malloced);
    out.extend_from_slice(b"END\r\n");
}

/// `stats conns`: one block per listener and open connection.
pub fn render_conns(shared: &Shared, out: &mut Vec<u8>) {
    let now = shared.clock.now();
    for (fd, c) in shared.conns.snapshot() {
        stat(out, &format!("{fd}:addr"), &c.addr);
        if let Some(l) = &c.listen_addr {
            stat(out, &format!("{fd}:listen_addr"), l);
        }
        stat(out, &format!("{fd}:state"), c.state);
        if let Some(t) = &c.tls {
            stat(out, &format!("{fd}:tls"), t);
        }
        let last = c.last_cmd.load(std::sync::atomic::Ordering::Relaxed);
        stat(
            out,
            &format!("{fd}:secs_since_last_cmd"),
            now.saturating_sub(last),
        );
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats settings`: the configuration under memcached's names.
pub fn render_settings(shared: &Shared, out: &mut Vec<u8>) {
    let c = &shared.config;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let n = shared.stats.shards();
    let limit = shared
        .shard_mem_limit
        .load(std::sync::atomic::Ordering::Relaxed) as u64
        * n as u64;
    stat(out, "maxbytes", limit);
    stat(out, "maxconns", c.max_connections);
    stat(out, "tcpport", c.port);
    stat(out, "udpport", c.udp_port);
    stat(out, "inter", c.listen.join(","));
    stat(out, "verbosity", shared.verbose());
    stat(
        out,
        "evictions",
        if c.disable_evictions { "off" } else { "on" },
    );
    stat(out, "num_threads", n);
    stat(out, "stat_key_prefix", c.prefix_delimiter);
    stat(out, "detail_enabled", "no");
    stat(out, "reqs_per_event", c.reqs_per_event);
    stat(out, "cas_enabled", "yes");
    stat(out, "tcp_backlog", c.backlog);
    stat(out, "binding_protocol", "ascii");
    stat(out, "auth_enabled_sasl", "no");
    stat(out, "auth_enabled_ascii", "no");
    stat(out, "item_size_max", c.item_size_max);
    stat(out, "maxconns_fast", "yes");
    stat(out, "flush_enabled", yes_no(!c.disable_flush_all));
    stat(out, "hash_algorithm", "xxh3");
    stat(out, "eviction_policy", "s3fifo");
    stat(out, "idle_timeout", c.idle_timeout_secs);
    stat(out, "read_buf_max", c.read_buf_max);
    stat(out, "shard_queue", c.shard_queue);
    stat(out, "shutdown_timeout", c.shutdown_timeout_secs);
    stat(out, "cluster_config_set", yes_no(c.cluster_config_set));
    match shared.cluster.get() {
        Some(cl) => {
            stat(out, "cluster_config_version", cl.version);
            stat(out, "cluster_nodes", cl.nodes.len());
        }
        None => {
            stat(out, "cluster_config_version", 0);
            stat(out, "cluster_nodes", 0);
        }
    }
    match c.admin_listen {
        Some(a) => stat(out, "admin_listen", a),
        None => stat(out, "admin_listen", "off"),
    }
    for (k, v) in crate::tls::settings_stats(shared.tls.as_ref().map(|t| &t.settings)) {
        stat(out, k, v);
    }
    out.extend_from_slice(b"END\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_powers_of_two() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(256), 0);
        assert_eq!(latency_bucket(257), 1);
        assert_eq!(latency_bucket(512), 1);
        assert_eq!(latency_bucket(513), 2);
        assert_eq!(latency_bucket(1 << 30), LATENCY_BUCKETS - 2);
        assert_eq!(latency_bucket((1 << 30) + 1), LATENCY_BUCKETS - 1);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        // Every duration is at most its bucket's bound (and above the one before).
        for ns in [1u64, 300, 1000, 1_000_000, 999_999_999] {
            let b = latency_bucket(ns);
            assert!(ns as f64 / 1e9 <= latency_bound_secs(b).unwrap());
            if b > 0 {
                assert!(ns as f64 / 1e9 > latency_bound_secs(b - 1).unwrap());
            }
        }
        assert_eq!(latency_bound_secs(LATENCY_BUCKETS - 1), None);
        let l = Latency::default();
        l.observe(0, 300);
        l.observe(0, 300);
        l.observe(1, 5_000_000_000);
        l.observe(CMD_CLASSES.len(), 1); // out of range: ignored
        let mut snap = LatencySnapshot::default();
        l.add_to(&mut snap);
        assert_eq!(snap.buckets[0][1], 2);
        assert_eq!(snap.sum_ns[0], 600);
        assert_eq!(snap.buckets[1][LATENCY_BUCKETS - 1], 1);
    }

    #[test]
    fn reset_is_a_baseline() {
        let hub = StatsHub::new(2);
        hub.shard(0).cmd_get.add(5);
        hub.shard(1).cmd_get.add(7);
        hub.shard(1).curr_items.set(3);
        assert_eq!(hub.snapshot().cmd_get, 12);
        hub.reset();
        assert_eq!(hub.snapshot().cmd_get, 0);
        assert_eq!(hub.snapshot().curr_items, 3, "gauges survive reset");
        hub.shard(0).cmd_get.incr();
        assert_eq!(hub.snapshot().cmd_get, 1);
    }
}
