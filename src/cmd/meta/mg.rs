//! mg (meta get): `VA <len> <flags>` and the value, `HD <flags>`, or `EN`; may touch (`T`),
//! vivify (`N`), hand out a recache win (`R`, `W X Z`).

use super::op::Op;
use crate::protocol::reply::{meta_key_flag, meta_opaque, meta_tokens, num, ttl_left};
use crate::shard::Shard;
use crate::store::{Lookup, Mark, StoreResult};

pub(super) fn run(op: &Op<'_>, shard: &Shard, out: &mut Vec<u8>) {
    let (st, f, now) = (&*shard.stats, op.flags, op.now);
    let mut store = shard.store.borrow_mut();
    let mut created = false;
    let idx = match store.lookup(op.key, op.hash, now) {
        Lookup::Hit(i) => Some(i),
        _ => match f.vivify {
            Some(ttl) => {
                let (r, idx) = store.store_with(&op.vivify_args(shard, ttl, b""), now);
                created = r == StoreResult::Stored;
                idx
            }
            None => None,
        },
    };
    let ttl_set = f.ttl.is_some();
    let Some(idx) = idx else {
        if ttl_set {
            st.cmd_touch.incr();
            st.touch_misses.incr();
        } else {
            st.cmd_get.incr();
            st.get_misses.incr();
        }
        if !f.quiet {
            op.status(out, b"EN");
        }
        return;
    };
    let before = store.item(idx);
    let (was_fetched, atime, token_sent, stale, binary) = (
        before.fetched,
        before.atime,
        before.token_sent,
        before.stale,
        before.key_binary,
    );
    if f.value {
        out.extend_from_slice(b"VA ");
        num(out, before.value.len());
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut won = false;
    for t in meta_tokens(op.tokens) {
        match t[0] {
            b'T' => {
                if let Some(ttl) = f.ttl {
                    store.set_exptime(idx, shard.clock.exptime(ttl, now));
                }
            }
            b'N' => won |= created,
            b'R' => {
                let exp = store.item(idx).exptime;
                let limit = f.recache.map(|r| shard.clock.exptime(r, now)).unwrap_or(0);
                if !token_sent && !created && exp != 0 && exp < limit {
                    won = true;
                }
            }
            b's' => {
                out.extend_from_slice(b" s");
                num(out, store.item(idx).value.len());
            }
            b't' => {
                out.extend_from_slice(b" t");
                ttl_left(out, store.item(idx).exptime, now);
            }
            b'c' => {
                out.extend_from_slice(b" c");
                num(out, store.item(idx).cas);
            }
            b'f' => {
                out.extend_from_slice(b" f");
                num(out, store.item(idx).flags);
            }
            b'l' => {
                out.extend_from_slice(b" l");
                num(out, now.saturating_sub(atime));
            }
            b'h' => out.extend_from_slice(if was_fetched { b" h1" } else { b" h0" }),
            b'O' => meta_opaque(out, t),
            b'k' => meta_key_flag(out, op.key, binary),
            _ => {}
        }
    }
    // Z before X before W, as memcached orders them; a stale item with no win handed
    // out yet gives this client the win.
    if token_sent {
        out.extend_from_slice(b" Z");
    }
    if stale {
        out.extend_from_slice(b" X");
        if !token_sent {
            won = true;
        }
    }
    if won {
        out.extend_from_slice(b" W");
        store.set_mark(idx, Mark::TokenSent, true);
    }
    out.extend_from_slice(b"\r\n");
    if f.value {
        out.extend_from_slice(store.item(idx).value);
        out.extend_from_slice(b"\r\n");
    }
    if !f.no_update {
        store.touch_read_at(idx, now);
    }
    let class = store.class_stats(store.item(idx).total);
    if ttl_set {
        class.touch_hits.incr();
        st.cmd_touch.incr();
        st.touch_hits.incr();
    } else {
        class.get_hits.incr();
        st.cmd_get.incr();
        st.get_hits.incr();
    }
}
