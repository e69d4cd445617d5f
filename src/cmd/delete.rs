//! delete: `delete <key> [0] [noreply]`; `DELETED` or `NOT_FOUND`.

use crate::protocol::{Key, Line, Parsed, Reply};
use crate::shard::Shard;
use crate::store::{Lookup, RelTime};

/// delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete<B> {
    /// The key.
    pub key: Key<B>,
    /// Suppress the reply.
    pub noreply: bool,
}

/// memcached still accepts the hold time of old clients, but only as `0`.
pub fn parse<'a>(l: &Line<'a>) -> Parsed<Delete<&'a [u8]>> {
    let nt = l.ntokens();
    if !(3..=5).contains(&nt) {
        return l.error(Reply::Error, false);
    }
    let mut noreply = false;
    if nt > 3 {
        let hold_is_zero = l.get(2) == b"0";
        noreply = l.noreply();
        let valid = (nt == 4 && (hold_is_zero || noreply)) || (nt == 5 && hold_is_zero && noreply);
        if !valid {
            return l.error(Reply::DeleteUsage, noreply);
        }
    }
    match Key::parse(l.get(1)) {
        Ok(key) => l.done(Delete { key, noreply }),
        Err(_) => l.error(Reply::BadFormat, noreply),
    }
}

impl<B: AsRef<[u8]>> Delete<B> {
    /// An owned copy, to forward.
    pub fn to_owned(&self) -> Delete<Vec<u8>> {
        Delete {
            key: self.key.to_owned(),
            noreply: self.noreply,
        }
    }

    /// Runs on the key's owner; appends the reply.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*shard.stats;
        let key = self.key.as_bytes();
        let mut store = shard.store.borrow_mut();
        let total = match store.lookup(key, hash, now) {
            Lookup::Hit(i) => store.item(i).total,
            _ => 0,
        };
        if total > 0 && store.delete(key, hash, now) {
            store.class_stats(total).delete_hits.incr();
            st.delete_hits.incr();
            out.extend_from_slice(b"DELETED\r\n");
        } else {
            st.delete_misses.incr();
            out.extend_from_slice(b"NOT_FOUND\r\n");
        }
    }
}
