//! What `stats`, `stats settings`, `stats items`, `stats slabs` and `stats conns` report,
//! gathered from the shared state into a [`Report`], in memcached's order.
//!
//! This is the one layer of `stats` that reads the server's state; the counters below it
//! ([`super::counters`]) know nothing of the server, so the server can own them without a
//! cycle. The kind of a stat kept in the counters comes from their declaration (`s.cmd_get()`);
//! the kind of any other is stated where it is pushed here.

use std::sync::atomic::Ordering::Relaxed;

use super::counters::Snapshot;
use super::report::{Entry, Report, Value};
use crate::server::{MEMCACHED_VERSION, Shared, TESSERA_VERSION};
use crate::store::RelTime;

/// CPU time this process used: (user, system) in seconds.
fn rusage() -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(ru) => {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (secs(ru.user_time()), secs(ru.system_time()))
        }
        Err(_) => (0.0, 0.0),
    }
}

/// The item memory limit over all shards (`cache_memlimit` may have changed it).
fn limit_maxbytes(shared: &Shared) -> u64 {
    shared.shard_mem_limit.load(Relaxed) as u64 * shared.stats.shards() as u64
}

/// `stats`: writes memcached's general statistics.
pub fn render_general(shared: &Shared, out: &mut Vec<u8>) {
    general(shared, shared.stats.snapshot()).write_text(out);
}

/// `stats` from the counters `s` (the admin listener passes ones `stats reset` left alone).
pub fn general(shared: &Shared, s: Snapshot) -> Report {
    let now = shared.clock.now();
    let (user, sys) = rusage();
    let mut r = Report::with_capacity(80);
    r.gauge("pid", std::process::id());
    r.gauge("uptime", shared.clock.uptime(now));
    r.gauge("time", shared.clock.unix(now));
    r.info("version", MEMCACHED_VERSION);
    r.info("tessera_version", TESSERA_VERSION);
    r.gauge("pointer_size", usize::BITS);
    r.counter("rusage_user", Value::Seconds(user));
    r.counter("rusage_system", Value::Seconds(sys));
    r.gauge("max_connections", shared.config.max_connections);
    r.push(s.curr_connections());
    r.push(s.total_connections());
    r.push(s.rejected_connections());
    r.push(s.curr_connections().named("connection_structures"));
    r.push(s.cmd_get());
    r.push(s.cmd_set());
    r.push(s.cmd_flush());
    r.push(s.cmd_touch());
    r.push(s.cmd_meta());
    r.push(s.get_hits());
    r.push(s.get_misses());
    r.push(s.get_expired());
    r.push(s.get_flushed());
    r.push(s.delete_misses());
    r.push(s.delete_hits());
    r.push(s.incr_misses());
    r.push(s.incr_hits());
    r.push(s.decr_misses());
    r.push(s.decr_hits());
    r.push(s.cas_misses());
    r.push(s.cas_hits());
    r.push(s.cas_badval());
    r.push(s.touch_hits());
    r.push(s.touch_misses());
    r.push(s.store_too_large());
    r.push(s.store_no_memory());
    r.counter("auth_cmds", 0u64);
    r.counter("auth_errors", 0u64);
    if shared.config.idle_timeout_secs > 0 {
        r.push(s.idle_kicks());
    }
    r.push(s.bytes_read());
    r.push(s.bytes_written());
    r.gauge("limit_maxbytes", limit_maxbytes(shared));
    r.gauge("accepting_conns", !shared.shutdown.load(Relaxed));
    r.gauge("threads", shared.stats.shards());
    r.push(s.conn_yields());
    r.push(s.forwarded_ops().named("shard_forwarded_ops"));
    r.push(s.forwarded_batches().named("shard_forwarded_batches"));
    r.push(s.protocol_errors());
    r.push(s.protocol_closes());
    r.push(s.cmd_config_get());
    r.push(s.cmd_config_set());
    r.push(s.bytes());
    r.push(s.curr_items());
    r.push(s.total_items());
    r.push(s.expired_unfetched());
    r.push(s.evicted_unfetched());
    r.push(s.evictions());
    r.push(s.reclaimed());
    if let Some(tls) = &shared.tls {
        r.push(s.ssl_handshakes());
        r.push(s.ssl_handshake_errors());
        r.push(s.ssl_handshake_timeouts());
        r.push(s.ssl_proto_errors());
        r.push(s.ssl_resumed_sessions());
        r.push(s.ssl_new_sessions());
        r.push(s.ssl_verify_failures());
        r.push(s.ssl_connections());
        r.push(s.ssl_ktls_connections());
        r.push(s.ssl_userspace_connections());
        r.push(s.ssl_ktls_fallbacks());
        r.push(s.ssl_plaintext_connections());
        r.gauge("time_since_server_cert_refresh", tls.secs_since_refresh());
    }
    r
}

/// Slab page size memcached would use: 1 MiB, or `-I` when larger.
fn page_size(item_size_max: usize) -> usize {
    item_size_max.max(1024 * 1024)
}

/// Age in seconds of the oldest item in the eviction queues, over all shards.
fn eviction_age(shared: &Shared, now: RelTime) -> u64 {
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

/// `stats items`: writes memcached's per-class item statistics.
pub fn render_items(shared: &Shared, out: &mut Vec<u8>) {
    items(shared).write_text(out);
}

/// `stats items`, for the classes that hold items. tessera has one S3-FIFO per shard rather
/// than per class LRUs: `number_cold` counts every item, `age` is the age of the oldest item
/// in the eviction queues; the LRU maintainer's and crawler's stats are zero.
pub fn items(shared: &Shared) -> Report {
    let classes = shared.stats.class_snapshot();
    let now = shared.clock.now();
    let age = eviction_age(shared, now);
    let mut r = Report::default();
    for (i, c) in classes.iter().enumerate().filter(|(_, c)| c.number > 0) {
        let id = i + 1;
        let mut f = |e: Entry| {
            let name = format!("items:{id}:{}", e.name);
            r.push(e.named(name));
        };
        f(c.number());
        f(Entry::gauge("number_hot", 0u64));
        f(Entry::gauge("number_warm", 0u64));
        f(c.number().named("number_cold"));
        f(Entry::gauge("age_hot", 0u64));
        f(Entry::gauge("age_warm", 0u64));
        f(Entry::gauge("age", age));
        f(c.mem_requested());
        f(c.evicted());
        f(c.evicted_nonzero());
        f(c.evicted_time());
        f(c.outofmemory());
        f(Entry::counter("tailrepairs", 0u64));
        f(c.reclaimed());
        f(c.expired_unfetched());
        f(c.evicted_unfetched());
        f(Entry::counter("evicted_active", 0u64));
        f(Entry::counter("crawler_reclaimed", 0u64));
        f(Entry::counter("crawler_items_checked", 0u64));
        f(Entry::counter("lrutail_reflocked", 0u64));
        f(Entry::counter("moves_to_cold", 0u64));
        f(Entry::counter("moves_to_warm", 0u64));
        f(Entry::counter("moves_within_lru", 0u64));
        f(c.evicted().named("direct_reclaims"));
        f(Entry::counter("hits_to_hot", 0u64));
        f(Entry::counter("hits_to_warm", 0u64));
        f(c.get_hits().named("hits_to_cold"));
        f(Entry::counter("hits_to_temp", 0u64));
    }
    r
}

/// `stats slabs`: writes memcached's per-class memory statistics.
pub fn render_slabs(shared: &Shared, out: &mut Vec<u8>) {
    slabs(shared).write_text(out);
}

/// `stats slabs`, computed from the items each class would hold in memcached's slab layout
/// (tessera allocates per item).
pub fn slabs(shared: &Shared) -> Report {
    let item_max = shared.config.item_size_max;
    let sizes = crate::store::slabs::class_sizes(item_max);
    let page = page_size(item_max);
    let classes = shared.stats.class_snapshot();
    let mut active = 0u64;
    let mut malloced = 0u64;
    let mut r = Report::default();
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
        let mut f = |e: Entry| {
            let name = format!("{id}:{}", e.name);
            r.push(e.named(name));
        };
        f(Entry::gauge("chunk_size", chunk));
        f(Entry::gauge("chunks_per_page", per_page));
        f(Entry::gauge("total_pages", pages));
        f(Entry::gauge("total_chunks", pages * per_page));
        f(c.number().named("used_chunks"));
        let free = pages * per_page - c.number.min(pages * per_page);
        f(Entry::gauge("free_chunks", free));
        f(Entry::gauge("free_chunks_end", 0u64));
        f(c.get_hits());
        f(c.cmd_set());
        f(c.delete_hits());
        f(c.incr_hits());
        f(c.decr_hits());
        f(c.cas_hits());
        f(c.cas_badval());
        f(c.touch_hits());
    }
    r.gauge("active_slabs", active);
    r.gauge("total_malloced", malloced);
    r
}

/// `stats conns`: writes one block per listener and open connection.
pub fn render_conns(shared: &Shared, out: &mut Vec<u8>) {
    conns(shared).write_text(out);
}

/// `stats conns`, by file descriptor.
pub fn conns(shared: &Shared) -> Report {
    let now = shared.clock.now();
    let mut r = Report::default();
    for (fd, c) in shared.conns.snapshot() {
        r.info(format!("{fd}:addr"), c.addr);
        if let Some(l) = c.listen_addr {
            r.info(format!("{fd}:listen_addr"), l);
        }
        r.info(format!("{fd}:state"), c.state);
        if let Some(t) = c.tls {
            r.info(format!("{fd}:tls"), t);
        }
        let last = c.last_cmd.load(Relaxed);
        r.gauge(
            format!("{fd}:secs_since_last_cmd"),
            now.saturating_sub(last),
        );
    }
    r
}

/// `stats settings`: writes the configuration under memcached's names.
pub fn render_settings(shared: &Shared, out: &mut Vec<u8>) {
    settings(shared).write_text(out);
}

/// `stats settings`: the configuration under memcached's names (all [`super::Kind::Info`]).
pub fn settings(shared: &Shared) -> Report {
    use crate::config::Live;
    let mut r = Report::with_capacity(48);
    let tls = shared.tls.as_ref().map(|t| &t.settings);
    // One snapshot, so that version and node count agree.
    let cluster = shared.cluster.get();
    let live = |what: Live| match what {
        Live::MaxBytes => limit_maxbytes(shared).to_string(),
        Live::Verbosity => shared.verbose().to_string(),
        Live::Threads => shared.stats.shards().to_string(),
        Live::ClusterVersion => cluster.as_ref().map_or(0, |cl| cl.version).to_string(),
        Live::ClusterNodes => cluster.as_ref().map_or(0, |cl| cl.nodes.len()).to_string(),
    };
    // Which lines, in which order, and what each shows: the settings table's.
    shared
        .config
        .stats_settings(tls, live, |name, value| r.info(name, value));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Kind;

    #[test]
    fn general_states_each_kind() {
        let shared = Shared::new(crate::config::Config {
            threads: 2,
            idle_timeout_secs: 5,
            ..Default::default()
        });
        let r = general(&shared, shared.stats.snapshot());
        let names = |kind: Kind| -> Vec<&str> {
            r.entries()
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.name.as_ref())
                .collect()
        };
        // The gauges `/metrics` exports as such (the list admin.rs used to keep).
        assert_eq!(
            names(Kind::Gauge),
            [
                "pid",
                "uptime",
                "time",
                "pointer_size",
                "max_connections",
                "curr_connections",
                "connection_structures",
                "limit_maxbytes",
                "accepting_conns",
                "threads",
                "bytes",
                "curr_items",
            ]
        );
        assert_eq!(names(Kind::Info), ["version", "tessera_version"]);
        let counters = names(Kind::Counter);
        assert_eq!(counters.first(), Some(&"rusage_user"));
        assert!(counters.contains(&"idle_kicks"));
        assert!(counters.contains(&"shard_forwarded_ops"));
        assert!(!counters.contains(&"forwarded_ops"));
        let mut text = Vec::new();
        r.write_text(&mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("STAT pid "), "{text}");
        assert!(
            text.contains("\r\nSTAT threads 2\r\nSTAT conn_yields 0\r\n"),
            "{text}"
        );
        assert!(text.ends_with("STAT reclaimed 0\r\nEND\r\n"), "{text}");
    }
}
