//! One shard's items: table, memory accounting, eviction and expiry. Knows no wire format.
//!
//! # Layout
//! Items live in a slot arena (`Vec<Slot>`); the table (`index.rs`) holds slot numbers with
//! their hash, so a lookup touches one index line, one slot and the item's data: three
//! dependent cache misses, which a pipeline's lookups overlap (`prefetch.rs`). A slot's key
//! and value share one heap allocation. Memory is accounted per item as memcached does
//! (`ITEM_HEADER + key + 1 + value + 2`), so `-m`, `-I` and the `bytes` stat mean the same as
//! on memcached.
//!
//! # Eviction: S3-FIFO
//! memcached uses a segmented LRU (hot/warm/cold) with a background maintainer thread. We use
//! S3-FIFO (Yang et al., SOSP'23): a small FIFO (10% of memory) that new items enter, a main
//! FIFO for items that were read again while in the small one, and a ghost FIFO of hashes of
//! recently evicted items, so a key that comes back soon goes straight to main. Reads only
//! bump a 2-bit counter: no list is touched on a hit, no lock or thread is needed, and on
//! skewed (Zipf) workloads it matches or beats LRU's hit ratio while one-hit wonders leave
//! after a short stay in the small queue. See docs/architecture.md.
//!
//! # Expiry and flush
//! Expired and flushed items are removed lazily: when read, and when the eviction scan meets
//! them (counted as `reclaimed`, and `expired_unfetched` if nobody read them).
//!
//! # Files
//! This file: the item layout, the table and reads. `index.rs`: the table (key hash to
//! slot). `prefetch.rs`: warming a batch of lookups. `write.rs`: storage commands, delete,
//! incr/decr. `evict.rs`: the S3-FIFO queues, reclaiming and flush_all. `ghost.rs`: the
//! ghost queue. [`clock`]: relative time. [`slabs`]: memcached's slab classes, for reporting.

pub mod clock;
mod evict;
mod ghost;
mod index;
pub mod prefetch;
pub mod slabs;
mod write;

use std::collections::VecDeque;

use crate::stats::counters::{ClassStats, MAX_CLASSES, ShardClasses, ShardStats};
pub use clock::{Clock, RelTime};
use ghost::Ghost;
use index::Index;

/// memcached's per-item header size with CAS on 64-bit builds (`sizeof(item) + 8`).
pub const ITEM_HEADER: usize = 56;

/// The bytes an item counts against the memory limit (memcached's `ITEM_ntotal`).
pub fn item_total(klen: usize, vlen: usize) -> usize {
    ITEM_HEADER + klen + 1 + vlen + 2
}

/// Limits a store is built with.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Bytes of items this shard may hold.
    pub mem_limit: usize,
    /// Largest item (`-I`), compared against [`item_total`].
    pub item_size_max: usize,
    /// Evict when full (`false` with `-M`: refuse the store instead).
    pub evict: bool,
}

/// Which storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add data after the existing value.
    Append,
    /// `prepend`: add data before the existing value.
    Prepend,
    /// `cas`: store only if the item's cas unique matches.
    Cas,
}

/// Everything a storage command can ask for.
#[derive(Debug, Clone, Copy)]
pub struct StoreArgs<'a> {
    /// Which command.
    pub mode: StoreMode,
    /// The key.
    pub key: &'a [u8],
    /// Its [`crate::shard::hash_key`].
    pub hash: u64,
    /// Client flags.
    pub flags: u32,
    /// Expiry (rel time, 0 = never).
    pub exptime: RelTime,
    /// The data.
    pub value: &'a [u8],
    /// Store only if the item's cas unique is this (cas; meta `C`, also on append/prepend).
    pub compare_cas: Option<u64>,
    /// Give the stored item this cas unique (meta `E`).
    pub new_cas: Option<u64>,
    /// Meta `I`: with `compare_cas` lower than the item's, store anyway but mark it stale.
    pub invalidate: bool,
    /// The key is binary (meta `b`).
    pub key_binary: bool,
}

/// Outcome of a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreResult {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS` (cas mismatch)
    Exists,
    /// `NOT_FOUND` (cas on a missing item)
    NotFound,
    /// The item exceeds `-I`.
    TooLarge,
    /// No memory could be freed for it (`-M`, or larger than the shard).
    OutOfMemory,
}

/// Outcome of incr/decr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithResult {
    /// The new value.
    Value(u64),
    /// No such item.
    NotFound,
    /// The stored value is not a decimal number.
    NonNumeric,
    /// The grown value could not be stored.
    OutOfMemory,
    /// The cas unique did not match (meta `C`).
    Exists,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A live item, by slot.
    Hit(u32),
    /// Nothing under that key.
    Miss,
    /// There was one, but it had expired (now removed).
    Expired,
    /// There was one, but flush_all invalidated it (now removed).
    Flushed,
}

/// A read-only view of a live item.
#[derive(Debug, Clone, Copy)]
pub struct ItemView<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value (without the trailing `\r\n`).
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// CAS unique.
    pub cas: u64,
    /// Rel time it expires at, 0 = never.
    pub exptime: RelTime,
    /// Rel time of the last access.
    pub atime: RelTime,
    /// Read since it was stored.
    pub fetched: bool,
    /// Marked stale (meta invalidation).
    pub stale: bool,
    /// A recache win was handed out.
    pub token_sent: bool,
    /// The key is binary (stored through a base64 meta key).
    pub key_binary: bool,
    /// Bytes it counts against the memory limit.
    pub total: usize,
}

/// Per-item marks of the meta protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Stale (X).
    Stale,
    /// Recache win handed out (Z for others).
    TokenSent,
    /// Binary key.
    KeyBinary,
}

impl Mark {
    fn bit(self) -> u8 {
        match self {
            Mark::Stale => STALE,
            Mark::TokenSent => TOKEN_SENT,
            Mark::KeyBinary => KEY_BINARY,
        }
    }
}

const LIVE: u8 = 1;
const IN_MAIN: u8 = 2;
const FETCHED: u8 = 4;
/// Marked stale by `md <key> I` (meta protocol): served with X until replaced.
const STALE: u8 = 8;
/// A recache "win" (W) was handed out for this item (meta protocol): others see Z.
const TOKEN_SENT: u8 = 16;
/// The key was stored base64-decoded (meta `b` flag): echo it base64-encoded.
const KEY_BINARY: u8 = 32;
const MAX_FREQ: u8 = 3;

#[derive(Debug)]
struct Slot {
    /// key ++ value; empty when the slot holds no item.
    data: Box<[u8]>,
    cas: u64,
    /// The low half of the key's hash ([`short`]): the table and the ghost queue use it, so
    /// a slot stays 48 bytes.
    hash: u32,
    flags: u32,
    exptime: RelTime,
    /// When it was stored (flush_all with a delay invalidates items stored before its time).
    time: RelTime,
    /// When it was last read or written (meta `l` flag, `me`).
    atime: RelTime,
    klen: u8,
    freq: u8,
    state: u8,
}

// Items per byte matter (docs/benchmarks.md, memory per item): keep a slot at 48 bytes.
const _: () = assert!(std::mem::size_of::<Slot>() == 48);

/// What each item is charged against the memory limit on top of memcached's item size
/// ([`item_total`]): its slot. Measured under churn, an item's resident cost is about its
/// memcached size plus this (the slot, the index entry, the queue entries and the
/// allocator's rounding, less the 56-byte header memcached counts), so `-m` bounds the
/// resident memory of small items too (docs/reliability.md).
pub const SLOT_CHARGE: usize = std::mem::size_of::<Slot>();

impl Slot {
    fn key(&self) -> &[u8] {
        &self.data[..self.klen as usize]
    }
    fn value(&self) -> &[u8] {
        &self.data[self.klen as usize..]
    }
    fn live(&self) -> bool {
        self.state & LIVE != 0
    }
    fn total(&self) -> usize {
        item_total(self.klen as usize, self.data.len() - self.klen as usize)
    }
}

/// The part of a key hash a slot keeps: the low 32 bits (the shard was chosen by others).
#[inline]
fn short(hash: u64) -> u32 {
    hash as u32
}

/// One shard's items.
#[derive(Debug)]
pub struct Store {
    table: Index,
    slots: Vec<Slot>,
    free: Vec<u32>,
    small: VecDeque<u32>,
    main: VecDeque<u32>,
    ghost: Ghost,
    small_bytes: usize,
    used: usize,
    items: usize,
    limits: StoreLimits,
    /// Next CAS is `cas_next * cas_stride + cas_offset`: unique across shards.
    cas_next: u64,
    cas_stride: u64,
    cas_offset: u64,
    /// flush_all with delay: items stored at or before this rel time are invalid once it passes.
    oldest_live: RelTime,
    stats: std::sync::Arc<ShardStats>,
    /// Per reporting slab class (see [`slabs`]).
    classes: ShardClasses,
    /// Chunk sizes of the reporting classes.
    class_sizes: Vec<usize>,
}

/// How many queue entries one no-evict (`-M`) store may scan for expired items.
const NOEVICT_SCAN: usize = 16;

impl Store {
    /// An empty store. `shard`/`shards` make CAS uniques disjoint across shards.
    pub fn new(
        limits: StoreLimits,
        shard: usize,
        shards: usize,
        stats: std::sync::Arc<ShardStats>,
    ) -> Self {
        let classes =
            std::sync::Arc::new((0..MAX_CLASSES).map(|_| ClassStats::default()).collect());
        Self::with_classes(limits, shard, shards, stats, classes)
    }

    /// [`Store::new`] reporting per-class counters into `classes`.
    pub fn with_classes(
        limits: StoreLimits,
        shard: usize,
        shards: usize,
        stats: std::sync::Arc<ShardStats>,
        classes: ShardClasses,
    ) -> Self {
        Store {
            classes,
            class_sizes: slabs::class_sizes(limits.item_size_max),
            table: Index::default(),
            slots: Vec::new(),
            free: Vec::new(),
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: Ghost::default(),
            small_bytes: 0,
            used: 0,
            items: 0,
            limits,
            cas_next: 1,
            cas_stride: shards.max(1) as u64,
            cas_offset: shard as u64,
            oldest_live: 0,
            stats,
        }
    }

    /// This store's limits.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// Changes the memory limit at run time (`cache_memlimit`), evicting down to it now
    /// (with `-M`, only expired items go; the rest stays until deleted or expired).
    pub fn set_mem_limit(&mut self, bytes: usize, now: RelTime) {
        self.limits.mem_limit = bytes;
        self.stats.limit_maxbytes.set(bytes as u64);
        while self.footprint() > self.limits.mem_limit {
            let freed = if self.limits.evict {
                self.evict_one(None, now)
            } else {
                self.reclaim_one(None, now)
            };
            if !freed {
                break;
            }
        }
    }

    /// Live items (including expired ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether the store holds no items.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Bytes of items as memcached counts them (`stats` `bytes`).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes counted against the limit: [`Store::used`] plus [`SLOT_CHARGE`] per item.
    pub fn footprint(&self) -> usize {
        self.used + self.items * SLOT_CHARGE
    }

    /// The reporting class counters for an item of `total` bytes.
    pub fn class_stats(&self, total: usize) -> &ClassStats {
        let i = self
            .class_sizes
            .partition_point(|&s| s < total)
            .min(self.class_sizes.len() - 1);
        &self.classes[i]
    }

    /// Age in seconds of the item at the head of the eviction queues (what goes next).
    pub fn eviction_age(&self, now: RelTime) -> u32 {
        let head = |q: &VecDeque<u32>| {
            q.iter()
                .map(|&i| &self.slots[i as usize])
                .find(|s| s.live())
                .map(|s| now.saturating_sub(s.atime))
        };
        head(&self.main).or_else(|| head(&self.small)).unwrap_or(0)
    }

    fn next_cas(&mut self) -> u64 {
        let c = self.cas_next * self.cas_stride + self.cas_offset;
        self.cas_next += 1;
        c
    }

    fn find(&self, key: &[u8], hash: u64) -> Option<u32> {
        let slots = &self.slots;
        let h = short(hash);
        self.table.find(h, |i| {
            let s = &slots[i as usize];
            s.key() == key
        })
    }

    fn is_flushed(&self, s: &Slot, now: RelTime) -> bool {
        self.oldest_live != 0 && self.oldest_live <= now && s.time <= self.oldest_live
    }

    fn is_expired(s: &Slot, now: RelTime) -> bool {
        s.exptime != 0 && s.exptime <= now
    }

    /// Finds a live item; expired or flushed ones are removed on the way.
    pub fn lookup(&mut self, key: &[u8], hash: u64, now: RelTime) -> Lookup {
        let Some(idx) = self.find(key, hash) else {
            return Lookup::Miss;
        };
        let s = &self.slots[idx as usize];
        if Self::is_expired(s, now) {
            self.unlink(idx);
            return Lookup::Expired;
        }
        if self.is_flushed(s, now) {
            self.unlink(idx);
            return Lookup::Flushed;
        }
        Lookup::Hit(idx)
    }

    /// Marks an item as read: bumps its frequency (S3-FIFO) and its fetched bit.
    pub fn touch_read(&mut self, idx: u32) {
        let s = &mut self.slots[idx as usize];
        s.freq = (s.freq + 1).min(MAX_FREQ);
        s.state |= FETCHED;
    }

    /// [`Store::touch_read`] that also records the access time.
    pub fn touch_read_at(&mut self, idx: u32, now: RelTime) {
        self.touch_read(idx);
        self.slots[idx as usize].atime = now;
    }

    /// Sets or clears a meta mark.
    pub fn set_mark(&mut self, idx: u32, mark: Mark, on: bool) {
        let s = &mut self.slots[idx as usize];
        if on {
            s.state |= mark.bit();
        } else {
            s.state &= !mark.bit();
        }
    }

    /// Gives the item a new cas unique (or `explicit`, the meta `E` flag) and returns it.
    pub fn bump_cas(&mut self, idx: u32, explicit: Option<u64>) -> u64 {
        let cas = explicit.unwrap_or_else(|| self.next_cas());
        self.slots[idx as usize].cas = cas;
        cas
    }

    /// Replaces an item's value with an empty one, keeping its key, flags and expiry.
    pub fn clear_value(&mut self, idx: u32) {
        let s = &mut self.slots[idx as usize];
        let old = s.total();
        let klen = s.klen as usize;
        s.data = s.data[..klen].to_vec().into_boxed_slice();
        let new = s.total();
        let in_main = s.state & IN_MAIN != 0;
        self.resized(old, new, in_main);
    }

    /// An item's charge went from `old` to `new` bytes in place (same slot, new value): moves
    /// it between reporting classes and adjusts the totals (`used`, the small queue's bytes
    /// unless it is in main, the `bytes` stat).
    fn resized(&mut self, old: usize, new: usize, in_main: bool) {
        let c = self.class_stats(old);
        c.number.sub(1);
        c.mem_requested.sub(old as u64);
        let c = self.class_stats(new);
        c.number.incr();
        c.mem_requested.add(new as u64);
        self.used = self.used - old + new;
        if !in_main {
            self.small_bytes = self.small_bytes - old + new;
        }
        self.stats.bytes.set(self.used as u64);
    }

    /// A view of the item in slot `idx` (from [`Lookup::Hit`]).
    pub fn item(&self, idx: u32) -> ItemView<'_> {
        let s = &self.slots[idx as usize];
        ItemView {
            key: s.key(),
            value: s.value(),
            flags: s.flags,
            cas: s.cas,
            exptime: s.exptime,
            atime: s.atime,
            fetched: s.state & FETCHED != 0,
            stale: s.state & STALE != 0,
            token_sent: s.state & TOKEN_SENT != 0,
            key_binary: s.state & KEY_BINARY != 0,
            total: s.total(),
        }
    }

    /// Sets an item's expiry (touch, gat).
    pub fn set_exptime(&mut self, idx: u32, exptime: RelTime) {
        self.slots[idx as usize].exptime = exptime;
    }

    /// Looks up and counts a read: `Some(idx)` on a hit.
    pub fn get(&mut self, key: &[u8], hash: u64, now: RelTime) -> Option<u32> {
        match self.lookup(key, hash, now) {
            Lookup::Hit(idx) => {
                self.touch_read(idx);
                Some(idx)
            }
            _ => None,
        }
    }

    /// Drops every item now.
    pub fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.free.clear();
        self.small.clear();
        self.main.clear();
        self.ghost.clear();
        self.small_bytes = 0;
        self.used = 0;
        self.items = 0;
        self.oldest_live = 0;
        self.stats.curr_items.set(0);
        self.stats.bytes.set(0);
        for c in self.classes.iter() {
            c.number.set(0);
            c.mem_requested.set(0);
        }
    }

    /// Checks internal invariants (tests).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let live: Vec<&Slot> = self.slots.iter().filter(|s| s.live()).collect();
        assert_eq!(live.len(), self.items, "item count");
        assert_eq!(self.table.len(), self.items, "table size");
        let used: usize = live.iter().map(|s| s.total()).sum();
        assert_eq!(used, self.used, "used bytes");
        let small: usize = live
            .iter()
            .filter(|s| s.state & IN_MAIN == 0)
            .map(|s| s.total())
            .sum();
        assert_eq!(small, self.small_bytes, "small bytes");
        let class_items: u64 = self.classes.iter().map(|c| c.number.get()).sum();
        let class_bytes: u64 = self.classes.iter().map(|c| c.mem_requested.get()).sum();
        assert_eq!(class_items, self.items as u64, "per-class item counts");
        assert_eq!(class_bytes, self.used as u64, "per-class bytes");
        assert!(self.footprint() <= self.limits.mem_limit, "over the limit");
    }
}

#[cfg(test)]
mod tests;
