//! One shard's items: table, memory accounting, eviction and expiry. Knows no wire format.
//!
//! # Layout
//! Items live in a slot arena (`Vec<Slot>`); the hash table holds slot indices only, so a
//! lookup touches one control group and one slot. A slot's key and value share one heap
//! allocation. Memory is accounted per item as memcached does (`ITEM_HEADER + key + 1 +
//! value + 2`), so `-m`, `-I` and the `bytes` stat mean the same as on memcached.
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

pub mod clock;
pub mod slabs;

use std::collections::VecDeque;

use hashbrown::HashTable;

use crate::stats::counters::{ClassStats, MAX_CLASSES, ShardClasses, ShardStats};
pub use clock::{Clock, RelTime};

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

/// A bounded FIFO of hashes of recently evicted items (S3-FIFO's ghost queue).
#[derive(Debug, Default)]
struct Ghost {
    fifo: VecDeque<u32>,
    /// short hash -> how many times it is in `fifo`
    set: hashbrown::HashMap<u32, u32>,
}

impl Ghost {
    fn insert(&mut self, hash: u32, cap: usize) {
        self.fifo.push_back(hash);
        *self.set.entry(hash).or_insert(0) += 1;
        while self.fifo.len() > cap.max(1) {
            if let Some(old) = self.fifo.pop_front() {
                self.forget(old);
            }
        }
    }
    fn forget(&mut self, hash: u32) {
        if let hashbrown::hash_map::Entry::Occupied(mut e) = self.set.entry(hash) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
    /// Whether `hash` was evicted recently; forgets it if so.
    fn take(&mut self, hash: u32) -> bool {
        if self.set.contains_key(&hash) {
            self.set.remove(&hash);
            true
        } else {
            false
        }
    }
    fn clear(&mut self) {
        self.fifo.clear();
        self.set.clear();
    }
}

/// A mixer applied to the key hash before it indexes the table, so the bits that chose the
/// shard (the high ones) do not also choose the bucket.
#[inline]
fn table_hash(hash: u32) -> u64 {
    u64::from(hash)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

/// The part of a key hash a slot keeps: the low 32 bits (the shard was chosen by others).
#[inline]
fn short(hash: u64) -> u32 {
    hash as u32
}

/// One shard's items.
#[derive(Debug)]
pub struct Store {
    table: HashTable<u32>,
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
            table: HashTable::new(),
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
        self.table
            .find(table_hash(h), |&i| {
                let s = &slots[i as usize];
                s.hash == h && s.key() == key
            })
            .copied()
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

    /// Runs a storage command. `value` is the new data; `cas_in` is checked for [`StoreMode::Cas`].
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        hash: u64,
        flags: u32,
        exptime: RelTime,
        value: &[u8],
        cas_in: u64,
        now: RelTime,
    ) -> StoreResult {
        self.store_with(
            &StoreArgs {
                mode,
                key,
                hash,
                flags,
                exptime,
                value,
                compare_cas: (mode == StoreMode::Cas).then_some(cas_in),
                new_cas: None,
                invalidate: false,
                key_binary: false,
            },
            now,
        )
        .0
    }

    /// Runs a storage command with every option the meta protocol has. Returns the outcome
    /// and, when stored, the item's slot.
    pub fn store_with(&mut self, a: &StoreArgs<'_>, now: RelTime) -> (StoreResult, Option<u32>) {
        debug_assert!(a.key.len() <= 250, "keys are validated by the parser");
        let (mode, key, hash, value) = (a.mode, a.key, a.hash, a.value);
        let existing = match self.lookup(key, hash, now) {
            Lookup::Hit(i) => Some(i),
            _ => None,
        };
        let new_len = match (mode, existing) {
            (StoreMode::Append | StoreMode::Prepend, Some(i)) => {
                self.slots[i as usize].value().len() + value.len()
            }
            _ => value.len(),
        };
        if item_total(key.len(), new_len) > self.limits.item_size_max {
            match mode {
                // memcached cannot allocate the combined item and answers NOT_STORED.
                StoreMode::Append | StoreMode::Prepend => return (StoreResult::NotStored, None),
                // memcached drops the old item on a too-large `set`, so a stale value does
                // not outlive a failed overwrite.
                StoreMode::Set => {
                    if let Some(i) = existing {
                        self.unlink(i);
                    }
                }
                _ => {}
            }
            return (StoreResult::TooLarge, None);
        }
        let mut stale = false;
        match (mode, existing) {
            (StoreMode::Add, Some(i)) => {
                // memcached bumps the existing item on a failed add.
                let s = &mut self.slots[i as usize];
                s.freq = (s.freq + 1).min(MAX_FREQ);
                return (StoreResult::NotStored, None);
            }
            (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                return (StoreResult::NotStored, None);
            }
            (StoreMode::Cas, None) => return (StoreResult::NotFound, None),
            (StoreMode::Cas | StoreMode::Append | StoreMode::Prepend, Some(i)) => {
                if let Some(want) = a.compare_cas {
                    let have = self.slots[i as usize].cas;
                    if have != want {
                        // meta `I`: an older cas may still store, marked stale.
                        if a.invalidate && mode == StoreMode::Cas && want < have {
                            stale = true;
                        } else {
                            return (StoreResult::Exists, None);
                        }
                    }
                }
            }
            _ => {}
        }
        let mut data = Vec::with_capacity(key.len() + new_len);
        data.extend_from_slice(key);
        let (flags, exptime) = match (mode, existing) {
            (StoreMode::Append, Some(i)) => {
                let s = &self.slots[i as usize];
                data.extend_from_slice(s.value());
                data.extend_from_slice(value);
                (s.flags, s.exptime)
            }
            (StoreMode::Prepend, Some(i)) => {
                let s = &self.slots[i as usize];
                data.extend_from_slice(value);
                data.extend_from_slice(s.value());
                (s.flags, s.exptime)
            }
            _ => {
                data.extend_from_slice(value);
                (a.flags, a.exptime)
            }
        };
        match self.put(
            key.len(),
            hash,
            data.into_boxed_slice(),
            flags,
            exptime,
            existing,
            now,
        ) {
            Some(idx) => {
                if let Some(c) = a.new_cas {
                    self.slots[idx as usize].cas = c;
                }
                if stale {
                    self.slots[idx as usize].state |= STALE;
                }
                if a.key_binary {
                    self.slots[idx as usize].state |= KEY_BINARY;
                }
                (StoreResult::Stored, Some(idx))
            }
            None => {
                // Like memcached, a failed `set` does not leave the old value behind.
                if let (StoreMode::Set, Some(i)) = (mode, existing) {
                    self.unlink(i);
                }
                (StoreResult::OutOfMemory, None)
            }
        }
    }

    /// Stores `data` (key ++ value) as a new item or over `existing`; its slot, or None when
    /// out of memory.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        klen: usize,
        hash: u64,
        data: Box<[u8]>,
        flags: u32,
        exptime: RelTime,
        existing: Option<u32>,
        now: RelTime,
    ) -> Option<u32> {
        let total = item_total(klen, data.len() - klen);
        let freed = existing.map_or(0, |i| self.slots[i as usize].total());
        if !self.make_room(total.saturating_sub(freed), existing, now) {
            return None;
        }
        let cas = self.next_cas();
        let st = &self.stats;
        st.total_items.incr();
        if let Some(i) = existing {
            let s = &mut self.slots[i as usize];
            let old_total = s.total();
            s.data = data;
            s.flags = flags;
            s.exptime = exptime;
            s.time = now;
            s.cas = cas;
            s.atime = now;
            s.freq = (s.freq + 1).min(MAX_FREQ);
            s.state &= !(FETCHED | STALE | TOKEN_SENT | KEY_BINARY);
            let in_main = s.state & IN_MAIN != 0;
            let old_class = self.class_stats(old_total);
            old_class.number.sub(1);
            old_class.mem_requested.sub(old_total as u64);
            let class = self.class_stats(total);
            class.number.incr();
            class.mem_requested.add(total as u64);
            self.used = self.used - old_total + total;
            if !in_main {
                self.small_bytes = self.small_bytes - old_total + total;
            }
            st.bytes.set(self.used as u64);
            return Some(i);
        }
        let slot = Slot {
            data,
            hash: short(hash),
            cas,
            flags,
            exptime,
            time: now,
            atime: now,
            klen: klen as u8,
            freq: 0,
            state: LIVE,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.table
            .insert_unique(table_hash(short(hash)), idx, |&i| {
                table_hash(slots[i as usize].hash)
            });
        if self.ghost.take(short(hash)) {
            self.slots[idx as usize].state |= IN_MAIN;
            self.main.push_back(idx);
        } else {
            self.small.push_back(idx);
            self.small_bytes += total;
        }
        let class = self.class_stats(total);
        class.number.incr();
        class.mem_requested.add(total as u64);
        self.used += total;
        self.items += 1;
        if self.items == 1 {
            st.eviction_head_atime.set(now as u64);
        }
        st.curr_items.set(self.items as u64);
        st.bytes.set(self.used as u64);
        Some(idx)
    }

    /// Frees memory until `need` more bytes fit. Never evicts `keep` (the item being replaced).
    fn make_room(&mut self, need: usize, keep: Option<u32>, now: RelTime) -> bool {
        // A new item also takes a slot; a replacement keeps its own.
        let need = need + if keep.is_none() { SLOT_CHARGE } else { 0 };
        if need > self.limits.mem_limit {
            return false;
        }
        let mut scans = 0usize;
        while self.footprint() + need > self.limits.mem_limit {
            if self.limits.evict {
                if !self.evict_one(keep, now) {
                    return false;
                }
            } else {
                // -M: only expired, flushed or deleted items may go.
                if scans >= NOEVICT_SCAN || !self.reclaim_one(keep, now) {
                    self.stats.outofmemory.incr();
                    self.class_stats(need).outofmemory.incr();
                    return false;
                }
                scans += 1;
            }
        }
        true
    }

    /// Removes the item in `idx` from the table; its slot stays queued until the FIFO scan
    /// reaches it (then it is put on the free list).
    fn unlink(&mut self, idx: u32) {
        let s = &mut self.slots[idx as usize];
        debug_assert!(s.live());
        let total = s.total();
        let hash = s.hash;
        let in_main = s.state & IN_MAIN != 0;
        s.state &= !LIVE;
        s.data = Box::default();
        if let Ok(e) = self.table.find_entry(table_hash(hash), |&i| i == idx) {
            e.remove();
        }
        let class = self.class_stats(total);
        class.number.sub(1);
        class.mem_requested.sub(total as u64);
        self.used -= total;
        if !in_main {
            self.small_bytes -= total;
        }
        self.items -= 1;
        self.stats.curr_items.set(self.items as u64);
        self.stats.bytes.set(self.used as u64);
    }

    /// A queue entry left the queues: its slot may be reused.
    fn release(&mut self, idx: u32) {
        debug_assert!(!self.slots[idx as usize].live());
        self.free.push(idx);
    }

    /// If the item is expired or flushed, removes it (counting it) and says so.
    fn reap_if_dead(&mut self, idx: u32, now: RelTime) -> bool {
        let s = &self.slots[idx as usize];
        if !(Self::is_expired(s, now) || self.is_flushed(s, now)) {
            return false;
        }
        let unfetched = s.state & FETCHED == 0;
        let class = self.class_stats(s.total());
        class.reclaimed.incr();
        self.stats.reclaimed.incr();
        if unfetched {
            self.stats.expired_unfetched.incr();
            class.expired_unfetched.incr();
        }
        self.unlink(idx);
        true
    }

    /// One S3-FIFO eviction step: frees at least one item's memory. False if nothing can go.
    fn evict_one(&mut self, keep: Option<u32>, now: RelTime) -> bool {
        // Every pass either frees something, moves an item from small to main, or lowers a
        // main item's frequency: bounded by (small + 4 * main) steps.
        let mut budget = self.small.len() + 4 * self.main.len() + 1;
        while budget > 0 {
            budget -= 1;
            let from_small = self.small_bytes > self.limits.mem_limit / 10 || self.main.is_empty();
            let queue = if from_small {
                &mut self.small
            } else {
                &mut self.main
            };
            let Some(idx) = queue.pop_front() else {
                return false;
            };
            if !self.slots[idx as usize].live() {
                self.release(idx);
                continue;
            }
            if Some(idx) == keep {
                let q = if from_small {
                    &mut self.small
                } else {
                    &mut self.main
                };
                q.push_back(idx);
                continue;
            }
            if self.reap_if_dead(idx, now) {
                self.release(idx);
                return true;
            }
            let s = &mut self.slots[idx as usize];
            if from_small {
                if s.freq > 0 {
                    // Read while in probation: promote to main.
                    s.freq = 0;
                    s.state |= IN_MAIN;
                    let total = s.total();
                    self.small_bytes -= total;
                    self.main.push_back(idx);
                    continue;
                }
                let hash = s.hash;
                let cap = self.main.len().max(self.items);
                self.ghost.insert(hash, cap);
            } else if s.freq > 0 {
                s.freq -= 1;
                self.main.push_back(idx);
                continue;
            }
            let victim = &self.slots[idx as usize];
            let unfetched = victim.state & FETCHED == 0;
            let class = self.class_stats(victim.total());
            class.evicted.incr();
            class
                .evicted_time
                .set(now.saturating_sub(victim.atime) as u64);
            if victim.exptime != 0 {
                class.evicted_nonzero.incr();
            }
            self.stats.evictions.incr();
            if unfetched {
                self.stats.evicted_unfetched.incr();
                class.evicted_unfetched.incr();
            }
            self.unlink(idx);
            self.release(idx);
            self.note_head(now);
            return true;
        }
        false
    }

    /// Records the access time of the item that would be evicted next (`stats items` age).
    fn note_head(&self, now: RelTime) {
        let age = self.eviction_age(now);
        self.stats
            .eviction_head_atime
            .set(now.saturating_sub(age) as u64);
    }

    /// `-M`: looks at the head of each queue for an expired, flushed or deleted item.
    fn reclaim_one(&mut self, keep: Option<u32>, now: RelTime) -> bool {
        for from_small in [true, false] {
            let queue = if from_small {
                &mut self.small
            } else {
                &mut self.main
            };
            let Some(idx) = queue.pop_front() else {
                continue;
            };
            if !self.slots[idx as usize].live() {
                self.release(idx);
                return true;
            }
            if Some(idx) != keep && self.reap_if_dead(idx, now) {
                self.release(idx);
                return true;
            }
            // Live: rotate it to the back so the next scan looks at another one.
            let queue = if from_small {
                &mut self.small
            } else {
                &mut self.main
            };
            queue.push_back(idx);
        }
        // Nothing freed this round; the caller bounds the number of rounds.
        !self.small.is_empty() || !self.main.is_empty()
    }

    /// Deletes a key. True if a live item was removed.
    pub fn delete(&mut self, key: &[u8], hash: u64, now: RelTime) -> bool {
        match self.lookup(key, hash, now) {
            Lookup::Hit(idx) => {
                self.unlink(idx);
                true
            }
            _ => false,
        }
    }

    /// incr (`incr = true`) or decr with memcached's rules: incr wraps at 2^64, decr stops at 0;
    /// a shorter result is written in place padded with spaces, as memcached does.
    pub fn arith(
        &mut self,
        key: &[u8],
        hash: u64,
        incr: bool,
        delta: u64,
        now: RelTime,
    ) -> ArithResult {
        self.arith_with(key, hash, incr, delta, None, None, now).0
    }

    /// [`Store::arith`] with the meta protocol's options: only if the cas unique is
    /// `compare_cas` (else [`ArithResult::Exists`]), and giving the item `new_cas`. Returns the
    /// item's slot on success.
    #[allow(clippy::too_many_arguments)]
    pub fn arith_with(
        &mut self,
        key: &[u8],
        hash: u64,
        incr: bool,
        delta: u64,
        compare_cas: Option<u64>,
        new_cas: Option<u64>,
        now: RelTime,
    ) -> (ArithResult, Option<u32>) {
        let idx = match self.lookup(key, hash, now) {
            Lookup::Hit(i) => i,
            _ => return (ArithResult::NotFound, None),
        };
        let s = &self.slots[idx as usize];
        if compare_cas.is_some_and(|c| c != s.cas) {
            return (ArithResult::Exists, None);
        }
        let Some(cur) = crate::protocol::num::parse_stored_u64(s.value()) else {
            return (ArithResult::NonNumeric, None);
        };
        let new = if incr {
            cur.wrapping_add(delta)
        } else {
            cur.saturating_sub(delta)
        };
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(new).as_bytes();
        let old_len = s.value().len();
        let klen = s.klen as usize;
        if digits.len() <= old_len {
            let cas = new_cas.unwrap_or_else(|| self.next_cas());
            let s = &mut self.slots[idx as usize];
            let v = &mut s.data[klen..];
            v[..digits.len()].copy_from_slice(digits);
            v[digits.len()..].fill(b' ');
            s.cas = cas;
            s.atime = now;
            s.freq = (s.freq + 1).min(MAX_FREQ);
            s.state |= FETCHED;
            return (ArithResult::Value(new), Some(idx));
        }
        let (flags, exptime) = (s.flags, s.exptime);
        let mut data = Vec::with_capacity(klen + digits.len());
        data.extend_from_slice(key);
        data.extend_from_slice(digits);
        match self.put(
            klen,
            hash,
            data.into_boxed_slice(),
            flags,
            exptime,
            Some(idx),
            now,
        ) {
            Some(i) => {
                self.slots[i as usize].state |= FETCHED;
                if let Some(c) = new_cas {
                    self.slots[i as usize].cas = c;
                }
                (ArithResult::Value(new), Some(i))
            }
            None => (ArithResult::OutOfMemory, None),
        }
    }

    /// flush_all: with `at == None` (or a time already passed) every item goes now;
    /// otherwise items stored up to `at` become invalid once `at` is reached. `Some(0)` is
    /// what memcached computes for an absolute time before process start: it flushes
    /// nothing and cancels a pending delayed flush. `at == now` (`flush_all 1`) also
    /// invalidates what is stored during the rest of this second, as memcached does.
    pub fn flush(&mut self, at: Option<RelTime>, now: RelTime) {
        match at {
            Some(0) => {
                self.drop_flushed(now);
                self.oldest_live = 0;
            }
            Some(t) if t > now => {
                self.drop_flushed(now);
                self.oldest_live = t;
            }
            Some(t) if t == now => {
                self.clear();
                self.oldest_live = t;
            }
            _ => self.clear(),
        }
    }

    /// Unlinks what a delayed flush that has come due invalidated, before `oldest_live`
    /// changes: what it invalidated stays invalid (protocol.txt) rather than coming back.
    fn drop_flushed(&mut self, now: RelTime) {
        if self.oldest_live == 0 || self.oldest_live > now {
            return;
        }
        for idx in 0..self.slots.len() as u32 {
            let s = &self.slots[idx as usize];
            if s.live() && s.time <= self.oldest_live {
                self.unlink(idx);
            }
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
