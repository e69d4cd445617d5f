//! Sharding: which executor owns a key, each executor's share of the cache, and the mesh the
//! keyed commands of [`crate::cmd`] travel on to their owner.
//!
//! `owner(key)` is the only place keys are hashed for placement; the same 64-bit hash is
//! handed to the store (which re-mixes it for its table), so a key is hashed once per request.

pub mod mesh;

use std::cell::RefCell;
use std::sync::Arc;

use crate::stats::ShardStats;
use crate::store::{Clock, RelTime, Store};

/// The one hash: XXH3-64 of the key.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// Which of `n` shards owns a key with this hash (multiply-shift on the high bits, so it is
/// uniform for any `n` and independent of the bits the table uses).
#[inline]
pub fn owner(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

/// One executor's share of the cache: its store, its counters, and the clock.
#[derive(Debug)]
pub struct Shard {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub n: usize,
    /// The items this shard owns.
    pub store: RefCell<Store>,
    /// This executor's counters.
    pub stats: Arc<ShardStats>,
    /// The process-wide time base.
    pub clock: Clock,
}

impl Shard {
    /// Shard `id` of `n`, with its store sized from the shared configuration.
    pub fn new(shared: &crate::server::Shared, id: usize, n: usize) -> Shard {
        use crate::store::StoreLimits;
        let stats = shared.stats.shard(id);
        let mem = shared
            .shard_mem_limit
            .load(std::sync::atomic::Ordering::Relaxed);
        stats.limit_maxbytes.set(mem as u64);
        let store = Store::with_classes(
            StoreLimits {
                mem_limit: mem,
                item_size_max: shared.config.item_size_max,
                evict: !shared.config.disable_evictions,
            },
            id,
            n,
            stats.clone(),
            shared.stats.classes(id),
        );
        Shard {
            id,
            n,
            store: RefCell::new(store),
            stats,
            clock: shared.clock,
        }
    }

    /// flush_all on this shard: `delay` in client exptime form (<= 0: now).
    pub fn flush(&self, delay: i64) {
        self.flush_at(delay, self.clock.now());
    }

    /// [`Shard::flush`] at a given time (tests drive the clock).
    pub fn flush_at(&self, delay: i64, now: RelTime) {
        let at = (delay > 0).then(|| self.clock.exptime(delay, now).saturating_sub(1));
        self.store.borrow_mut().flush(at, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_uniform_and_in_range() {
        for n in 1..=8 {
            let mut counts = vec![0usize; n];
            for i in 0..80_000u32 {
                let o = owner(hash_key(format!("key:{i}").as_bytes()), n);
                assert!(o < n);
                counts[o] += 1;
            }
            let expect = 80_000 / n;
            for c in counts {
                assert!(c > expect * 9 / 10 && c < expect * 11 / 10, "{n}: {c}");
            }
        }
    }
}
