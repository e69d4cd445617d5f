//! Micro-benchmarks of the hot paths that need no sockets: parsing text requests, and the
//! store's get/set. Run with `cargo bench --bench micro`; prints nanoseconds per operation
//! (median of 5 rounds). Numbers from a shared machine are for comparing changes on the same
//! machine, not absolute claims.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use tessera::protocol::{Limits, Parsed, text};
use tessera::shard::hash_key;
use tessera::stats::ShardStats;
use tessera::store::{Store, StoreLimits, StoreMode};

fn median_ns_per_op(rounds: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn main() {
    let limits = Limits::default();
    let n = 200_000;

    // A pipeline of gets and sets, parsed end to end.
    let mut pipeline = Vec::new();
    for i in 0..n {
        if i % 10 == 0 {
            pipeline.extend_from_slice(format!("set key:{i:08} 0 0 100\r\n").as_bytes());
            pipeline.extend_from_slice(&[b'v'; 100]);
            pipeline.extend_from_slice(b"\r\n");
        } else {
            pipeline.extend_from_slice(format!("get key:{i:08}\r\n").as_bytes());
        }
    }
    let parse = median_ns_per_op(5, n, || {
        let mut pos = 0;
        while pos < pipeline.len() {
            match text::parse(&pipeline[pos..], &limits) {
                Parsed::Done { consumed, req, .. } => {
                    black_box(req);
                    pos += consumed;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    println!("parse (90% get, 10% set of 100 B): {parse:.1} ns/request");

    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key:{i:08}").into_bytes()).collect();
    let hashes: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
    let hash = median_ns_per_op(5, n, || {
        for k in &keys {
            black_box(hash_key(k));
        }
    });
    println!("hash (12-byte keys): {hash:.1} ns/key");

    let mut store = Store::new(
        StoreLimits {
            mem_limit: 256 << 20,
            item_size_max: 1 << 20,
            evict: true,
        },
        0,
        1,
        Arc::new(ShardStats::default()),
    );
    let value = [b'v'; 100];
    let set = median_ns_per_op(5, n, || {
        for (k, &h) in keys.iter().zip(&hashes) {
            black_box(store.store(StoreMode::Set, k, h, 0, 0, &value, 0, 10));
        }
    });
    println!("store set (100 B, table of {n}): {set:.1} ns/op");
    let get = median_ns_per_op(5, n, || {
        for (k, &h) in keys.iter().zip(&hashes) {
            black_box(store.get(k, h, 10));
        }
    });
    println!("store get hit: {get:.1} ns/op");

    // Eviction path: a store that holds ~10% of the keys.
    let mut small = Store::new(
        StoreLimits {
            mem_limit: n / 10 * 180,
            item_size_max: 1 << 20,
            evict: true,
        },
        0,
        1,
        Arc::new(ShardStats::default()),
    );
    let evict = median_ns_per_op(5, n, || {
        for (k, &h) in keys.iter().zip(&hashes) {
            black_box(small.store(StoreMode::Set, k, h, 0, 0, &value, 0, 10));
        }
    });
    println!("store set with eviction: {evict:.1} ns/op");
}
