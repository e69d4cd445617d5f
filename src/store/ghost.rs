//! S3-FIFO's ghost queue: hashes of recently evicted items, so a key that comes back soon
//! goes straight to the main queue. A leaf: it knows only hashes.

use std::collections::VecDeque;

/// A bounded FIFO of hashes of recently evicted items (S3-FIFO's ghost queue).
#[derive(Debug, Default)]
pub(super) struct Ghost {
    fifo: VecDeque<u32>,
    /// short hash -> how many times it is in `fifo`
    set: hashbrown::HashMap<u32, u32>,
}

impl Ghost {
    pub(super) fn insert(&mut self, hash: u32, cap: usize) {
        self.fifo.push_back(hash);
        *self.set.entry(hash).or_insert(0) += 1;
        while self.fifo.len() > cap.max(1) {
            if let Some(old) = self.fifo.pop_front() {
                self.forget(old);
            }
        }
    }
    pub(super) fn forget(&mut self, hash: u32) {
        if let hashbrown::hash_map::Entry::Occupied(mut e) = self.set.entry(hash) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
    /// Whether `hash` was evicted recently; forgets it if so.
    pub(super) fn take(&mut self, hash: u32) -> bool {
        if self.set.contains_key(&hash) {
            self.set.remove(&hash);
            true
        } else {
            false
        }
    }
    pub(super) fn clear(&mut self) {
        self.fifo.clear();
        self.set.clear();
    }
}
