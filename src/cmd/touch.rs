//! touch: `touch <key> <exptime> [noreply]`; `TOUCHED` or `NOT_FOUND`.

use crate::protocol::num::strtol32;
use crate::protocol::{Key, Line, Parsed, Reply};
use crate::shard::Shard;
use crate::store::{Lookup, RelTime};

/// touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch<B> {
    /// The key.
    pub key: Key<B>,
    /// Client exptime.
    pub exptime: i64,
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses `touch <key> <exptime> [noreply]`.
pub fn parse<'a>(l: &Line<'a>) -> Parsed<Touch<&'a [u8]>> {
    let (key, exptime, noreply) = match l.key_number_noreply(strtol32, Reply::InvalidExptime) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    l.done(Touch {
        key,
        exptime: exptime as i64,
        noreply,
    })
}

impl<B: AsRef<[u8]>> Touch<B> {
    /// An owned copy, to forward.
    pub fn to_owned(&self) -> Touch<Vec<u8>> {
        Touch {
            key: self.key.to_owned(),
            exptime: self.exptime,
            noreply: self.noreply,
        }
    }

    /// Runs on the key's owner; appends the reply.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*shard.stats;
        let mut store = shard.store.borrow_mut();
        st.cmd_touch.incr();
        match store.lookup(self.key.as_bytes(), hash, now) {
            Lookup::Hit(idx) => {
                store.set_exptime(idx, shard.clock.exptime(self.exptime, now));
                store.class_stats(store.item(idx).total).touch_hits.incr();
                st.touch_hits.incr();
                out.extend_from_slice(b"TOUCHED\r\n");
            }
            _ => {
                st.touch_misses.incr();
                out.extend_from_slice(b"NOT_FOUND\r\n");
            }
        }
    }
}
