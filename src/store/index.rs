//! The store's index: a key's 32-bit hash to its slot, by open addressing with linear
//! probing. Each entry is the hash and the slot number in one `u64`, so a lookup's probe
//! reads one cache line of the index and follows only an entry whose hash matches to the
//! slot. (hashbrown, before, kept its control bytes and the slot numbers in two arrays: two
//! dependent cache misses before the slot's own, on every lookup; at pipeline 16 the lookup
//! was ~45% of the server's time, docs/benchmarks.md.) Deletion shifts the entries after it
//! back (no tombstones), so probe chains never grow with churn.

/// An empty entry (a used one always has a non-zero low half: the slot number plus one).
const EMPTY: u64 = 0;
/// Entries before the first growth.
const INITIAL: usize = 16;

/// Key hash → slot number.
#[derive(Debug, Default)]
pub(super) struct Index {
    entries: Vec<u64>,
    len: usize,
}

fn pack(hash: u32, slot: u32) -> u64 {
    debug_assert!(slot < u32::MAX);
    (u64::from(hash) << 32) | u64::from(slot + 1)
}

fn hash_of(e: u64) -> u32 {
    (e >> 32) as u32
}

fn slot_of(e: u64) -> u32 {
    (e as u32) - 1
}

impl Index {
    /// Entries in use.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Where an entry with this hash belongs: the top bits of a Fibonacci multiply, so
    /// hashes that differ in any bit spread over the whole table.
    fn home_of(&self, hash: u32) -> usize {
        let bits = self.entries.len().trailing_zeros();
        (u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The slot with this hash for which `is` holds.
    #[inline]
    pub(super) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home_of(hash);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if hash_of(e) == hash && is(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = (i + 1) & mask;
        }
    }

    /// The first entry a lookup of `hash` reads (None when the index is empty).
    #[inline]
    pub(super) fn home(&self, hash: u32) -> Option<&u64> {
        (self.len > 0).then(|| &self.entries[self.home_of(hash)])
    }

    /// The first slot filed under `hash`, whatever its key (for prefetching).
    #[inline]
    pub(super) fn first(&self, hash: u32) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// Adds `slot` under `hash` (the caller knows it is not there yet).
    pub(super) fn insert(&mut self, hash: u32, slot: u32) {
        // At most 7/8 full: probes stay short and an empty entry always ends them.
        if (self.len + 1) * 8 > self.entries.len() * 7 {
            self.grow();
        }
        self.place(pack(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = self.home_of(hash_of(e));
        while self.entries[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        let size = (self.entries.len() * 2).max(INITIAL);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; size]);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Removes `slot`, filed under `hash`; false if it is not there.
    pub(super) fn remove(&mut self, hash: u32, slot: u32) -> bool {
        if self.len == 0 {
            return false;
        }
        let want = pack(hash, slot);
        let mask = self.mask();
        let mut i = self.home_of(hash);
        loop {
            match self.entries[i] {
                EMPTY => return false,
                e if e == want => break,
                _ => i = (i + 1) & mask,
            }
        }
        // Backward shift: each later entry of the run whose home is not between the hole
        // and itself (cyclically) moves into the hole, which moves on to where it was.
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            let home = self.home_of(hash_of(e));
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.entries[i] = e;
                i = j;
            }
        }
        self.entries[i] = EMPTY;
        self.len -= 1;
        true
    }

    /// Drops every entry (and the memory of a large table).
    pub(super) fn clear(&mut self) {
        self.entries = Vec::new();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Index;
    use std::collections::HashMap;

    /// Random inserts and removes against a map, with hashes drawn from a small range so
    /// that runs collide, wrap around the end and shift back on removal.
    #[test]
    fn behaves_as_a_map_under_churn() {
        let mut idx = Index::default();
        let mut model: HashMap<u32, u32> = HashMap::new(); // slot -> hash
        let mut x: u64 = 0x1234_5678;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..200_000u32 {
            let r = rnd();
            let slot = (r % 5000) as u32;
            // Few distinct hashes: long collision runs.
            let hash = ((r >> 20) % 700) as u32 * 0x9E37;
            match model.get(&slot).copied() {
                Some(h) if r & 1 == 0 => {
                    assert!(idx.remove(h, slot), "step {step}");
                    model.remove(&slot);
                }
                Some(_) => {}
                None => {
                    idx.insert(hash, slot);
                    model.insert(slot, hash);
                }
            }
            if step % 997 == 0 {
                assert_eq!(idx.len(), model.len());
                for (&s, &h) in &model {
                    assert_eq!(idx.find(h, |c| c == s), Some(s), "step {step}");
                }
                // Removed or never inserted: not found.
                assert_eq!(
                    idx.find(1, |_| true).is_some(),
                    model.values().any(|&h| h == 1)
                );
            }
        }
        for (&s, &h) in &model {
            assert!(idx.remove(h, s));
            assert!(!idx.remove(h, s), "removed twice");
        }
        assert_eq!(idx.len(), 0);
        assert_eq!(idx.find(0, |_| true), None);
    }

    #[test]
    fn finds_only_what_the_predicate_accepts() {
        let mut idx = Index::default();
        for s in 0..100 {
            idx.insert(7, s);
        }
        assert_eq!(idx.find(7, |s| s == 63), Some(63));
        assert_eq!(idx.find(7, |_| false), None);
        assert_eq!(idx.find(8, |_| true), None);
        idx.clear();
        assert_eq!((idx.len(), idx.find(7, |_| true)), (0, None));
    }
}
