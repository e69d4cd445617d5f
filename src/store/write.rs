//! Writes: the storage commands (set/add/replace/append/prepend/cas and meta `ms`), delete and
//! incr/decr. Each finds the item, decides by memcached's rules, and puts a new item through
//! [`Store::put`], which is the one place an item is allocated and linked.

use super::*;

impl Store {
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
    pub(super) fn put(
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
            self.resized(old_total, total, in_main);
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
        self.table.insert(short(hash), idx);
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
}
