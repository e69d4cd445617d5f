//! Stats: the counters every shard keeps, and the reports built from them.
//!
//! - [`counters`]: per-shard atomics and their declaration (counter or gauge), a leaf that
//!   the store and the server use;
//! - [`report`]: a report as data, (name, value, kind) entries, and memcached's text encoding;
//! - `gather`: what `stats` and its sub-reports list, read from the shared state. The admin
//!   listener encodes the same [`Report`] as Prometheus text.

pub mod counters;
mod gather;
pub mod report;

pub use counters::{
    CMD_CLASSES, ClassSnapshot, ClassStats, Counter, LATENCY_BUCKETS, Latency, LatencySnapshot,
    MAX_CLASSES, ShardClasses, ShardStats, Snapshot, StatsHub, latency_bound_secs, latency_bucket,
};
pub use gather::{
    conns, general, items, render_conns, render_general, render_items, render_settings,
    render_slabs, settings, slabs,
};
pub use report::{Entry, Kind, Report, Value};
