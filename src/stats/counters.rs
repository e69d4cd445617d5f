//! Counters: one [`ShardStats`] per executor, written only by that executor's thread and read
//! by whichever executor answers `stats`.
//!
//! Each counter is an `AtomicU64` that its one writer updates with a plain load + store
//! (no locked read-modify-write on the hot path); readers on other threads see a value at
//! most a moment old, which is all `stats` promises. `stats reset` never writes another
//! thread's counters: it records a baseline that later reads subtract.
//!
//! Whether a stat is a counter or a gauge is said once, in the lists given to
//! `shard_stats!` and `class_stats!`; the reports and `/metrics` read it from there. This
//! module is a leaf: the store and the server use it, it uses neither.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::report::{Entry, Kind, Report};

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

/// For a snapshot type of `shard_stats!` or `class_stats!`: a method per reported field giving
/// its report entry (name, value, and the kind its list declares), and `minus` for `stats
/// reset` (counters subtract the baseline, gauges stay).
macro_rules! snapshot_entries {
    ($t:ident, counters { $($c:ident),* } gauges { $($g:ident),* }) => {
        #[allow(missing_docs)] // each is its field's report entry; the fields are documented
        impl $t {
            $(pub fn $c(&self) -> Entry {
                Entry::new(stringify!($c), self.$c, Kind::Counter)
            })*
            $(pub fn $g(&self) -> Entry {
                Entry::new(stringify!($g), self.$g, Kind::Gauge)
            })*

            /// Counters minus a `stats reset` baseline; gauges stay as they are.
            pub fn minus(mut self, base: &$t) -> $t {
                $(self.$c = self.$c.wrapping_sub(base.$c);)*
                self
            }
        }
    };
}

macro_rules! shard_stats {
    (
        counters { $($c:ident),* $(,)? }
        gauges { $($g:ident),* $(,)? }
        internal { $($i:ident),* $(,)? }
    ) => {
        /// One executor's counters and gauges (memcached's names).
        #[derive(Debug, Default)]
        #[repr(align(128))] // its own cache lines: no false sharing between executors
        pub struct ShardStats {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: Counter,)*
            $(#[doc = concat!("`", stringify!($g), "` (gauge: not reset)")] pub $g: Counter,)*
            $(#[doc = concat!("`", stringify!($i), "` (internal gauge: not reported)")]
              pub $i: Counter,)*
        }

        /// A plain copy of counters, summed over shards. Each reported field also has a
        /// method of the same name giving its report entry (name, value, kind): `s.cmd_get`
        /// is the number, `s.cmd_get()` the entry.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct Snapshot {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: u64,)*
            $(#[doc = concat!("`", stringify!($g), "`")] pub $g: u64,)*
            $(#[doc = concat!("`", stringify!($i), "`")] pub $i: u64,)*
        }

        impl ShardStats {
            /// This shard's reported counters and gauges, in declaration order.
            pub fn report(&self) -> Report {
                let mut r = Report::with_capacity(SHARD_REPORTED);
                $(r.counter(stringify!($c), self.$c.get());)*
                $(r.gauge(stringify!($g), self.$g.get());)*
                r
            }

            /// Adds this shard's values into `into`.
            pub fn add_to(&self, into: &mut Snapshot) {
                $(into.$c = into.$c.wrapping_add(self.$c.get());)*
                $(into.$g = into.$g.wrapping_add(self.$g.get());)*
                $(into.$i = into.$i.wrapping_add(self.$i.get());)*
            }
        }

        /// How many stats [`ShardStats::report`] lists.
        const SHARD_REPORTED: usize = [$(stringify!($c),)* $(stringify!($g),)*].len();

        snapshot_entries!(Snapshot, counters { $($c),* } gauges { $($g),* });
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
    }
    internal {
        // The access time (rel secs) of the item that would be evicted next: an input to
        // `stats items`' age, not a stat of its own.
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
    (counters { $($c:ident),* $(,)? } gauges { $($g:ident),* $(,)? }) => {
        /// One executor's counters for one (reporting) slab class, memcached's names.
        #[derive(Debug, Default)]
        pub struct ClassStats {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: Counter,)*
            $(#[doc = concat!("`", stringify!($g), "` (gauge: not reset)")] pub $g: Counter,)*
        }

        /// [`ClassStats`] summed over shards. As in [`Snapshot`], a method of each field's
        /// name gives its report entry.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct ClassSnapshot {
            $(#[doc = concat!("`", stringify!($c), "`")] pub $c: u64,)*
            $(#[doc = concat!("`", stringify!($g), "`")] pub $g: u64,)*
        }

        impl ClassStats {
            /// Adds this shard's values into `into`.
            pub fn add_to(&self, into: &mut ClassSnapshot) {
                $(into.$c = into.$c.wrapping_add(self.$c.get());)*
                $(into.$g = into.$g.wrapping_add(self.$g.get());)*
            }
        }

        snapshot_entries!(ClassSnapshot, counters { $($c),* } gauges { $($g),* });
    };
}

class_stats! {
    counters {
        evicted, evicted_nonzero, evicted_unfetched, expired_unfetched, reclaimed, outofmemory,
        get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval, touch_hits,
    }
    gauges { number, mem_requested, evicted_time }
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
