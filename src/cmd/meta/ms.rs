//! ms (meta set): `HD`, `NS`, `EX` or `NF`, with `O k c`; the mode (`M`) picks set, add,
//! append, prepend or replace, and a compare cas (`C`) turns set and replace into cas.

use super::op::Op;
use crate::cmd::storage::count_cas;
use crate::protocol::reply::{self, meta_key_flag, meta_opaque, meta_tokens, num};
use crate::shard::Shard;
use crate::store::{StoreArgs, StoreMode, StoreResult, item_total};

pub(super) fn run(op: &Op<'_>, shard: &Shard, out: &mut Vec<u8>) {
    let (st, f, now) = (&*shard.stats, op.flags, op.now);
    st.cmd_set.incr();
    let mut mode = match f.mode {
        Some(b'E') => StoreMode::Add,
        Some(b'A') => StoreMode::Append,
        Some(b'P') => StoreMode::Prepend,
        Some(b'R') => StoreMode::Replace,
        _ => StoreMode::Set,
    };
    if f.compare_cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace) {
        mode = StoreMode::Cas;
    }
    let mut store = shard.store.borrow_mut();
    let (r, idx) = store.store_with(
        &StoreArgs {
            mode,
            key: op.key,
            hash: op.hash,
            flags: f.client_flags,
            exptime: f.ttl.map_or(0, |t| shard.clock.exptime(t, now)),
            value: op.data,
            compare_cas: f.compare_cas,
            new_cas: f.new_cas,
            invalidate: f.invalidate,
            key_binary: f.base64,
        },
        now,
    );
    let class = store.class_stats(item_total(op.key.len(), op.data.len()));
    class.cmd_set.incr();
    if mode == StoreMode::Cas {
        count_cas(st, class, r);
    }
    let code: &[u8] = match r {
        StoreResult::Stored => {
            if f.quiet {
                return;
            }
            b"HD"
        }
        StoreResult::NotStored => b"NS",
        StoreResult::Exists => b"EX",
        StoreResult::NotFound => b"NF",
        StoreResult::TooLarge => {
            st.store_too_large.incr();
            out.extend_from_slice(reply::TOO_LARGE);
            return;
        }
        StoreResult::OutOfMemory => {
            st.store_no_memory.incr();
            out.extend_from_slice(reply::NO_MEMORY);
            return;
        }
    };
    out.extend_from_slice(code);
    let cas = idx.map_or(0, |i| store.item(i).cas);
    for t in meta_tokens(op.tokens) {
        match t[0] {
            b'O' => meta_opaque(out, t),
            b'k' => meta_key_flag(out, op.key, f.base64),
            b'c' => {
                out.extend_from_slice(b" c");
                num(out, cas);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}
