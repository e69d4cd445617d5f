//! Warming a batch of lookups. A lookup follows three pointers (index entry → slot → item
//! data), each a likely cache miss on a store larger than the cache; run one after another,
//! a pipeline of 16 gets waits for 48 misses in a row. Profiled at pipeline 16 this was
//! ~45% of the server's time (docs/benchmarks.md). [`Store::prefetch`] walks the batch's
//! hashes in stages, one level of every lookup per stage, asking for each line without
//! waiting for it: the misses of a stage overlap, so the batch waits for about three.

use super::{Slot, Store, short};

/// Keys one call warms; more would evict its own lines from L1 before they are used.
pub const PREFETCH_MAX: usize = 32;

impl Store {
    /// Warms the cache lines that lookups of these key hashes will read (the first
    /// [`PREFETCH_MAX`]; nothing for a single one, whose lookup follows at once and has no
    /// other to overlap with). Changes nothing: a hint, right or wrong.
    pub fn prefetch(&self, hashes: impl IntoIterator<Item = u64>) {
        let mut batch = [0u32; PREFETCH_MAX];
        let mut n = 0;
        for (b, h) in batch.iter_mut().zip(hashes) {
            *b = short(h);
            n += 1;
        }
        if n < 2 {
            return;
        }
        let batch = &mut batch[..n];
        // Stage 1: each lookup's first index entry.
        for &h in batch.iter() {
            if let Some(e) = self.table.home(h) {
                touch((e as *const u64).cast());
            }
        }
        // Stage 2: the slot of the first entry with a matching hash (no key compare: a
        // false match only warms a line for nothing). `batch` now holds slot numbers.
        for h in batch.iter_mut() {
            *h = match self.table.first(*h) {
                Some(i) => {
                    touch(&self.slots[i as usize] as *const Slot as *const u8);
                    i
                }
                None => u32::MAX,
            };
        }
        // Stage 3: the item's key and the start of its value (its first two lines).
        for &i in batch.iter().filter(|&&i| i != u32::MAX) {
            let data = &self.slots[i as usize].data;
            touch(data.as_ptr());
            if data.len() > 64 {
                touch(data[64..].as_ptr());
            }
        }
    }
}

/// Asks the CPU to bring the line at `p` into its caches; computes nothing.
#[inline(always)]
#[allow(unsafe_code)]
fn touch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint: it never faults and writes no register or memory.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}
