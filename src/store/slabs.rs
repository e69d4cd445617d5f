//! memcached's slab classes, for reporting only.
//!
//! tessera does not allocate in slabs, but tools built for memcached read `stats slabs`,
//! `stats items` and `me`'s `cls=`, so items are grouped by the class memcached would have
//! put them in: chunk sizes from 96 bytes growing by 1.25, 8-byte aligned, up to half a
//! slab page (`-I`), whose class also takes every larger item.

/// memcached's default growth factor (`-f`).
const FACTOR: f64 = 1.25;
/// sizeof(item) + the default minimum chunk (`-n 48`).
const FIRST_CHUNK: usize = 96;
/// memcached's MAX_NUMBER_OF_SLAB_CLASSES.
const MAX_CLASSES: usize = 64;

/// Chunk size of each class, index 0 = class 1.
pub fn class_sizes(item_size_max: usize) -> Vec<usize> {
    let chunk_max = (item_size_max / 2).max(FIRST_CHUNK);
    let mut sizes = Vec::new();
    let mut size = FIRST_CHUNK as f64;
    while sizes.len() < MAX_CLASSES - 2 && (size as usize) < (chunk_max as f64 / FACTOR) as usize {
        let mut s = size as usize;
        if !s.is_multiple_of(8) {
            s += 8 - s % 8;
        }
        sizes.push(s);
        size = s as f64 * FACTOR;
    }
    sizes.push(chunk_max);
    sizes
}

/// The class id (1-based) an item of `total` bytes falls in.
pub fn class_of(total: usize, item_size_max: usize) -> usize {
    let sizes = class_sizes(item_size_max);
    sizes
        .iter()
        .position(|&s| s >= total)
        .unwrap_or(sizes.len() - 1)
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_default_classes() {
        let s = class_sizes(1024 * 1024);
        // memcached 1.6 -vv with defaults: 96, 120, 152, 192, 240, 304, ... 524288
        assert_eq!(&s[..6], &[96, 120, 152, 192, 240, 304]);
        assert_eq!(*s.last().unwrap(), 524288);
        assert_eq!(class_of(50, 1 << 20), 1);
        assert_eq!(class_of(96, 1 << 20), 1);
        assert_eq!(class_of(97, 1 << 20), 2);
        assert_eq!(class_of(173, 1 << 20), 4);
        assert_eq!(class_of(900_000, 1 << 20), s.len());
    }
}
