//! Eviction (S3-FIFO's small, main and ghost queues), the lazy reclaim of expired and
//! flushed items, and flush_all: the code that unlinks items to make room or to forget them.

use super::*;

impl Store {
    /// Frees memory until `need` more bytes fit. Never evicts `keep` (the item being replaced).
    pub(super) fn make_room(&mut self, need: usize, keep: Option<u32>, now: RelTime) -> bool {
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
    pub(super) fn unlink(&mut self, idx: u32) {
        let s = &mut self.slots[idx as usize];
        debug_assert!(s.live());
        let total = s.total();
        let hash = s.hash;
        let in_main = s.state & IN_MAIN != 0;
        s.state &= !LIVE;
        s.data = Box::default();
        self.table.remove(hash, idx);
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
    pub(super) fn release(&mut self, idx: u32) {
        debug_assert!(!self.slots[idx as usize].live());
        self.free.push(idx);
    }

    /// If the item is expired or flushed, removes it (counting it) and says so.
    pub(super) fn reap_if_dead(&mut self, idx: u32, now: RelTime) -> bool {
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
    pub(super) fn evict_one(&mut self, keep: Option<u32>, now: RelTime) -> bool {
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
    pub(super) fn note_head(&self, now: RelTime) {
        let age = self.eviction_age(now);
        self.stats
            .eviction_head_atime
            .set(now.saturating_sub(age) as u64);
    }

    /// `-M`: looks at the head of each queue for an expired, flushed or deleted item.
    pub(super) fn reclaim_one(&mut self, keep: Option<u32>, now: RelTime) -> bool {
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
}
