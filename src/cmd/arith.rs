//! incr, decr: `incr <key> <delta> [noreply]`; the new value or `NOT_FOUND`.

use crate::protocol::num::strtoull;
use crate::protocol::{Key, Line, Parsed, Reply, reply};
use crate::shard::Shard;
use crate::stats::{ClassStats, ShardStats};
use crate::store::{ArithResult, RelTime};

/// incr / decr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arith<B> {
    /// incr (true) or decr.
    pub incr: bool,
    /// The key.
    pub key: Key<B>,
    /// The amount.
    pub delta: u64,
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses `incr|decr <key> <delta> [noreply]`.
pub fn parse<'a>(l: &Line<'a>) -> Parsed<Arith<&'a [u8]>> {
    let (key, delta, noreply) = match l.key_number_noreply(strtoull, Reply::InvalidDelta) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    l.done(Arith {
        incr: l.get(0) == b"incr",
        key,
        delta,
        noreply,
    })
}

impl<B: AsRef<[u8]>> Arith<B> {
    /// An owned copy, to forward.
    pub fn to_owned(&self) -> Arith<Vec<u8>> {
        Arith {
            key: self.key.to_owned(),
            incr: self.incr,
            delta: self.delta,
            noreply: self.noreply,
        }
    }

    /// Runs on the key's owner; appends the reply.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*shard.stats;
        let incr = self.incr;
        let mut store = shard.store.borrow_mut();
        match store.arith_with(self.key.as_bytes(), hash, incr, self.delta, None, None, now) {
            (ArithResult::Value(v), idx) => {
                let class = store.class_stats(idx.map_or(0, |i| store.item(i).total));
                count_hit(st, class, incr);
                reply::num(out, v);
                out.extend_from_slice(b"\r\n");
            }
            (ArithResult::NotFound, _) => {
                if incr {
                    st.incr_misses.incr();
                } else {
                    st.decr_misses.incr();
                }
                out.extend_from_slice(b"NOT_FOUND\r\n");
            }
            (ArithResult::NonNumeric, _) => out.extend_from_slice(reply::NON_NUMERIC),
            (ArithResult::OutOfMemory, _) => {
                out.extend_from_slice(b"SERVER_ERROR out of memory\r\n")
            }
            // Only meta arithmetic compares a cas.
            (ArithResult::Exists, _) => out.extend_from_slice(b"EXISTS\r\n"),
        }
    }
}

/// Counts an incr (or decr) hit in the shard's and the class's counters.
pub(crate) fn count_hit(st: &ShardStats, class: &ClassStats, incr: bool) {
    if incr {
        class.incr_hits.incr();
        st.incr_hits.incr();
    } else {
        class.decr_hits.incr();
        st.decr_hits.incr();
    }
}
