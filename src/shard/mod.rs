//! Sharding: which executor owns a key, the operations that travel between executors, and
//! running them against the owner's store.
//!
//! `owner(key)` is the only place keys are hashed for placement; the same 64-bit hash is
//! handed to the store (which re-mixes it for its table), so a key is hashed once per request.

pub mod mesh;
pub mod meta;

use std::cell::RefCell;
use std::sync::Arc;

use crate::protocol::Request;
use crate::stats::ShardStats;
use crate::store::{ArithResult, Clock, Lookup, RelTime, Store, StoreMode, StoreResult};

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

/// The keyed operations of a classic text request, in order: `f(op, noreply)` for each
/// (one per key of a get). False, and no call, for any other request. A get's closing
/// `END` is the caller's to write.
pub fn key_ops<'a>(req: &Request<'a>, mut f: impl FnMut(KeyOp<&'a [u8]>, bool)) -> bool {
    match *req {
        Request::Get { cas, exptime, keys } => {
            for key in keys.iter() {
                f(
                    KeyOp::Get {
                        key,
                        cas,
                        touch: exptime,
                    },
                    false,
                );
            }
        }
        Request::Store {
            mode,
            key,
            flags,
            exptime,
            data,
            cas,
            noreply,
        } => f(
            KeyOp::Store {
                mode,
                key,
                flags,
                exptime,
                data,
                cas,
            },
            noreply,
        ),
        Request::StoreTooLarge { mode, key, noreply } => f(KeyOp::TooLarge { mode, key }, noreply),
        Request::Delete { key, noreply } => f(KeyOp::Delete { key }, noreply),
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => f(KeyOp::Arith { incr, key, delta }, noreply),
        Request::Touch {
            key,
            exptime,
            noreply,
        } => f(KeyOp::Touch { key, exptime }, noreply),
        _ => return false,
    }
    true
}

/// A keyed operation, generic over how its bytes are held: borrowed from a read buffer
/// (`&[u8]`) when run locally, owned (`Vec<u8>`) when it crosses to another executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOp<B> {
    /// One key of a get/gets/gat/gats.
    Get {
        /// The key.
        key: B,
        /// Include the cas unique.
        cas: bool,
        /// gat/gats: new client exptime.
        touch: Option<i64>,
    },
    /// A storage command with its data.
    Store {
        /// Which command.
        mode: StoreMode,
        /// The key.
        key: B,
        /// Client flags.
        flags: u32,
        /// Client exptime.
        exptime: i64,
        /// The value.
        data: B,
        /// cas unique to compare.
        cas: u64,
    },
    /// A storage command over `-I` (its data was swallowed).
    TooLarge {
        /// Which command.
        mode: StoreMode,
        /// The key.
        key: B,
    },
    /// delete.
    Delete {
        /// The key.
        key: B,
    },
    /// incr/decr.
    Arith {
        /// incr (true) or decr.
        incr: bool,
        /// The key.
        key: B,
        /// The amount.
        delta: u64,
    },
    /// touch.
    Touch {
        /// The key.
        key: B,
        /// Client exptime.
        exptime: i64,
    },
    /// A meta command.
    Meta(meta::MetaOp<B>),
}

impl<B: AsRef<[u8]>> KeyOp<B> {
    /// The key this operation is about.
    pub fn key(&self) -> &[u8] {
        match self {
            KeyOp::Get { key, .. }
            | KeyOp::Store { key, .. }
            | KeyOp::TooLarge { key, .. }
            | KeyOp::Delete { key }
            | KeyOp::Arith { key, .. }
            | KeyOp::Touch { key, .. } => key.as_ref(),
            KeyOp::Meta(m) => m.key.as_ref(),
        }
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> KeyOp<&[u8]> {
        match self {
            KeyOp::Get { key, cas, touch } => KeyOp::Get {
                key: key.as_ref(),
                cas: *cas,
                touch: *touch,
            },
            KeyOp::Store {
                mode,
                key,
                flags,
                exptime,
                data,
                cas,
            } => KeyOp::Store {
                mode: *mode,
                key: key.as_ref(),
                flags: *flags,
                exptime: *exptime,
                data: data.as_ref(),
                cas: *cas,
            },
            KeyOp::TooLarge { mode, key } => KeyOp::TooLarge {
                mode: *mode,
                key: key.as_ref(),
            },
            KeyOp::Delete { key } => KeyOp::Delete { key: key.as_ref() },
            KeyOp::Arith { incr, key, delta } => KeyOp::Arith {
                incr: *incr,
                key: key.as_ref(),
                delta: *delta,
            },
            KeyOp::Touch { key, exptime } => KeyOp::Touch {
                key: key.as_ref(),
                exptime: *exptime,
            },
            KeyOp::Meta(m) => KeyOp::Meta(m.as_ref()),
        }
    }
}

impl KeyOp<&[u8]> {
    /// An owned copy, to send to another executor.
    pub fn to_owned_op(&self) -> KeyOp<Vec<u8>> {
        match *self {
            KeyOp::Get { key, cas, touch } => KeyOp::Get {
                key: key.to_vec(),
                cas,
                touch,
            },
            KeyOp::Store {
                mode,
                key,
                flags,
                exptime,
                data,
                cas,
            } => KeyOp::Store {
                mode,
                key: key.to_vec(),
                flags,
                exptime,
                data: data.to_vec(),
                cas,
            },
            KeyOp::TooLarge { mode, key } => KeyOp::TooLarge {
                mode,
                key: key.to_vec(),
            },
            KeyOp::Delete { key } => KeyOp::Delete { key: key.to_vec() },
            KeyOp::Arith { incr, key, delta } => KeyOp::Arith {
                incr,
                key: key.to_vec(),
                delta,
            },
            KeyOp::Touch { key, exptime } => KeyOp::Touch {
                key: key.to_vec(),
                exptime,
            },
            KeyOp::Meta(ref m) => KeyOp::Meta(m.to_owned_op()),
        }
    }
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

    /// Runs one keyed operation against this shard's store, appending memcached's reply.
    /// `hash` is [`hash_key`] of the operation's key.
    pub fn exec_hashed(&self, op: &KeyOp<&[u8]>, hash: u64, out: &mut Vec<u8>) {
        let now = self.clock.now();
        self.exec_at(op, hash, now, out);
    }

    /// [`Shard::exec_hashed`] at a given time (tests drive the clock).
    pub fn exec_at(&self, op: &KeyOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        if let KeyOp::Meta(m) = op {
            return self.exec_meta(m, hash, now, out);
        }
        let st = &*self.stats;
        let mut store = self.store.borrow_mut();
        match *op {
            KeyOp::Get { key, cas, touch } => {
                if touch.is_some() {
                    st.cmd_touch.incr();
                } else {
                    st.cmd_get.incr();
                }
                let idx = match store.lookup(key, hash, now) {
                    Lookup::Hit(idx) => idx,
                    miss => {
                        if touch.is_some() {
                            st.touch_misses.incr();
                        } else {
                            st.get_misses.incr();
                            match miss {
                                Lookup::Expired => st.get_expired.incr(),
                                Lookup::Flushed => st.get_flushed.incr(),
                                _ => {}
                            }
                        }
                        return;
                    }
                };
                store.touch_read(idx);
                let class = store.class_stats(store.item(idx).total);
                if let Some(e) = touch {
                    class.touch_hits.incr();
                    store.set_exptime(idx, self.clock.exptime(e, now));
                    st.touch_hits.incr();
                } else {
                    class.get_hits.incr();
                    st.get_hits.incr();
                }
                let it = store.item(idx);
                write_value(out, it.key, it.flags, it.value, cas.then_some(it.cas));
            }
            KeyOp::Store {
                mode,
                key,
                flags,
                exptime,
                data,
                cas,
            } => {
                st.cmd_set.incr();
                let class = store.class_stats(crate::store::item_total(key.len(), data.len()));
                class.cmd_set.incr();
                let exp = self.clock.exptime(exptime, now);
                let r = store.store(mode, key, hash, flags, exp, data, cas, now);
                if mode == StoreMode::Cas {
                    let class = store.class_stats(crate::store::item_total(key.len(), data.len()));
                    count_cas(st, class, r);
                }
                out.extend_from_slice(match r {
                    StoreResult::Stored => b"STORED\r\n",
                    StoreResult::NotStored => b"NOT_STORED\r\n",
                    StoreResult::Exists => b"EXISTS\r\n",
                    StoreResult::NotFound => b"NOT_FOUND\r\n",
                    StoreResult::TooLarge => {
                        st.store_too_large.incr();
                        b"SERVER_ERROR object too large for cache\r\n"
                    }
                    StoreResult::OutOfMemory => {
                        st.store_no_memory.incr();
                        b"SERVER_ERROR out of memory storing object\r\n"
                    }
                });
            }
            KeyOp::TooLarge { mode, key } => {
                st.store_too_large.incr();
                // memcached drops the old value on a failed set, so no stale data survives.
                if mode == StoreMode::Set {
                    store.delete(key, hash, now);
                }
                out.extend_from_slice(b"SERVER_ERROR object too large for cache\r\n");
            }
            KeyOp::Delete { key } => {
                let total = match store.lookup(key, hash, now) {
                    Lookup::Hit(i) => store.item(i).total,
                    _ => 0,
                };
                if total > 0 && store.delete(key, hash, now) {
                    store.class_stats(total).delete_hits.incr();
                    st.delete_hits.incr();
                    out.extend_from_slice(b"DELETED\r\n");
                } else {
                    st.delete_misses.incr();
                    out.extend_from_slice(b"NOT_FOUND\r\n");
                }
            }
            KeyOp::Arith { incr, key, delta } => {
                match store.arith_with(key, hash, incr, delta, None, None, now) {
                    (ArithResult::Value(v), idx) => {
                        let class = store.class_stats(idx.map_or(0, |i| store.item(i).total));
                        count_arith_hit(st, class, incr);
                        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    (ArithResult::NotFound, _) => {
                        if incr {
                            st.incr_misses.incr();
                        } else {
                            st.decr_misses.incr();
                        }
                        out.extend_from_slice(b"NOT_FOUND\r\n");
                    }
                    (ArithResult::NonNumeric, _) => out.extend_from_slice(
                        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
                    ),
                    (ArithResult::OutOfMemory, _) => {
                        out.extend_from_slice(b"SERVER_ERROR out of memory\r\n")
                    }
                    // Only meta arithmetic compares a cas.
                    (ArithResult::Exists, _) => out.extend_from_slice(b"EXISTS\r\n"),
                }
            }
            // Handled before the store was borrowed.
            KeyOp::Meta(_) => {}
            KeyOp::Touch { key, exptime } => {
                st.cmd_touch.incr();
                match store.lookup(key, hash, now) {
                    Lookup::Hit(idx) => {
                        store.set_exptime(idx, self.clock.exptime(exptime, now));
                        store.class_stats(store.item(idx).total).touch_hits.incr();
                        st.touch_hits.incr();
                        out.extend_from_slice(b"TOUCHED\r\n");
                    }
                    _ => {
                        st.touch_misses.incr();
                        out.extend_from_slice(b"NOT_FOUND\r\n");
                    }
                }
            }
        }
    }

    /// flush_all on this shard: `delay` in client exptime form (<= 0: now).
    pub fn flush(&self, delay: i64) {
        self.flush_at(delay, self.clock.now());
    }

    /// [`Shard::flush`] at a given time (tests drive the clock, as with [`Shard::exec_at`]).
    pub fn flush_at(&self, delay: i64, now: RelTime) {
        let at = (delay > 0).then(|| self.clock.exptime(delay, now).saturating_sub(1));
        self.store.borrow_mut().flush(at, now);
    }
}

/// Counts a cas-mode store in the shard's and the class's counters.
pub(crate) fn count_cas(st: &ShardStats, class: &crate::stats::ClassStats, r: StoreResult) {
    match r {
        StoreResult::Stored => {
            class.cas_hits.incr();
            st.cas_hits.incr();
        }
        StoreResult::Exists => {
            class.cas_badval.incr();
            st.cas_badval.incr();
        }
        StoreResult::NotFound => st.cas_misses.incr(),
        _ => {}
    }
}

/// Counts an incr (or decr) hit in the shard's and the class's counters.
pub(crate) fn count_arith_hit(st: &ShardStats, class: &crate::stats::ClassStats, incr: bool) {
    if incr {
        class.incr_hits.incr();
        st.incr_hits.incr();
    } else {
        class.decr_hits.incr();
        st.decr_hits.incr();
    }
}

/// Appends `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
pub fn write_value(out: &mut Vec<u8>, key: &[u8], flags: u32, value: &[u8], cas: Option<u64>) {
    let mut b = itoa::Buffer::new();
    out.reserve(key.len() + value.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    out.extend_from_slice(b.format(flags).as_bytes());
    out.push(b' ');
    out.extend_from_slice(b.format(value.len()).as_bytes());
    if let Some(c) = cas {
        out.push(b' ');
        out.extend_from_slice(b.format(c).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
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
