//! ma (meta arithmetic): `HD` or `VA <len>` and the value, `NF`, `NS` or `EX`; the mode
//! (`M`) picks incr or decr, `N` vivifies a miss with the initial value (`J`).

use super::op::Op;
use crate::cmd::arith::count_hit;
use crate::protocol::reply::{self, meta_key_flag, meta_opaque, meta_tokens, num, ttl_left};
use crate::shard::Shard;
use crate::store::{ArithResult, StoreResult};

pub(super) fn run(op: &Op<'_>, shard: &Shard, out: &mut Vec<u8>) {
    let (st, f, now) = (&*shard.stats, op.flags, op.now);
    let incr = !matches!(f.mode, Some(b'D' | b'-'));
    let mut store = shard.store.borrow_mut();
    let (r, idx) = store.arith_with(
        op.key,
        op.hash,
        incr,
        f.delta,
        f.compare_cas,
        f.new_cas,
        now,
    );
    let mut created = false;
    let (value, idx) = match (r, idx) {
        (ArithResult::Value(v), Some(i)) => {
            count_hit(st, store.class_stats(store.item(i).total), incr);
            if f.quiet {
                return;
            }
            (v, i)
        }
        (ArithResult::NotFound, _) => match f.vivify {
            Some(ttl) => {
                let initial = itoa::Buffer::new().format(f.initial).to_owned();
                let args = op.vivify_args(shard, ttl, initial.as_bytes());
                match store.store_with(&args, now) {
                    (StoreResult::Stored, Some(i)) => {
                        created = true;
                        (f.initial, i)
                    }
                    (StoreResult::OutOfMemory | StoreResult::TooLarge, _) => {
                        out.extend_from_slice(
                            b"SERVER_ERROR Out of memory allocating new item\r\n",
                        );
                        return;
                    }
                    _ => return op.status(out, b"NS"),
                }
            }
            None => {
                if incr {
                    st.incr_misses.incr();
                } else {
                    st.decr_misses.incr();
                }
                return op.status(out, b"NF");
            }
        },
        (ArithResult::Exists, _) => return op.status(out, b"EX"),
        (ArithResult::NonNumeric, _) => {
            out.extend_from_slice(reply::NON_NUMERIC);
            return;
        }
        _ => {
            out.extend_from_slice(b"SERVER_ERROR out of memory\r\n");
            return;
        }
    };
    let digits = itoa::Buffer::new().format(value).to_owned();
    if f.value {
        out.extend_from_slice(b"VA ");
        num(out, digits.len());
    } else {
        out.extend_from_slice(b"HD");
    }
    for t in meta_tokens(op.tokens) {
        match t[0] {
            b'c' => {
                out.extend_from_slice(b" c");
                num(out, store.item(idx).cas);
            }
            b't' => {
                out.extend_from_slice(b" t");
                ttl_left(out, store.item(idx).exptime, now);
            }
            b'T' => {
                if let Some(ttl) = f.ttl {
                    store.set_exptime(idx, shard.clock.exptime(ttl, now));
                }
            }
            // memcached applies N's TTL in flag order, so a T before it is overridden.
            b'N' if created => {
                if let Some(ttl) = f.vivify {
                    store.set_exptime(idx, shard.clock.exptime(ttl, now));
                }
            }
            b'O' => meta_opaque(out, t),
            b'k' => meta_key_flag(out, op.key, f.base64),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    if f.value {
        out.extend_from_slice(digits.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
