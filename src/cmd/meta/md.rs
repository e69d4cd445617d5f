//! md (meta delete): `HD` or `NF` (`EX` on a cas mismatch); `I` marks the item stale instead,
//! `x` drops only its value.

use super::op::Op;
use crate::shard::Shard;
use crate::store::{Lookup, Mark};

pub(super) fn run(op: &Op<'_>, shard: &Shard, out: &mut Vec<u8>) {
    let (st, f, now) = (&*shard.stats, op.flags, op.now);
    let mut store = shard.store.borrow_mut();
    let code: &[u8] = match store.lookup(op.key, op.hash, now) {
        Lookup::Hit(idx) => {
            if f.compare_cas.is_some_and(|c| c != store.item(idx).cas) {
                st.delete_misses.incr();
                b"EX"
            } else if f.invalidate {
                // x with I leaves an empty, stale item: a tombstone (protocol.txt; memcached
                // 1.6.45 does both, tests/wire/meta_cases_1_6_45.txt md_flag_x_with_invalidate).
                if f.remove_value {
                    store.clear_value(idx);
                }
                if let Some(ttl) = f.ttl {
                    store.set_exptime(idx, shard.clock.exptime(ttl, now));
                }
                store.set_mark(idx, Mark::Stale, true);
                store.set_mark(idx, Mark::TokenSent, false);
                store.bump_cas(idx, f.new_cas);
                b"HD"
            } else if f.remove_value {
                store.clear_value(idx);
                store.bump_cas(idx, f.new_cas);
                b"HD"
            } else {
                store.class_stats(store.item(idx).total).delete_hits.incr();
                store.delete(op.key, op.hash, now);
                st.delete_hits.incr();
                b"HD"
            }
        }
        _ => {
            st.delete_misses.incr();
            b"NF"
        }
    };
    if code == b"HD" && f.quiet {
        return;
    }
    op.status(out, code);
}
