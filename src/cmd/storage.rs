//! set, add, replace, append, prepend, cas: `<cmd> <key> <flags> <exptime> <bytes>
//! [<cas>] [noreply]` and a data block; `STORED`, `NOT_STORED`, `EXISTS` or `NOT_FOUND`.

use crate::protocol::num::{strtol32, strtoul32, strtoull};
use crate::protocol::{Key, Limits, Line, Parsed, Reply, reply};
use crate::shard::Shard;
use crate::stats::{ClassStats, ShardStats};
use crate::store::{RelTime, StoreMode, StoreResult, item_total};

/// A storage command: the whole item, or one whose data was too large to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage<B> {
    /// An item to store.
    Store(Store<B>),
    /// A storage command over `-I` (its data is swallowed).
    TooLarge(TooLarge<B>),
}

/// A storage command with its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store<B> {
    /// Which command.
    pub mode: StoreMode,
    /// The key.
    pub key: Key<B>,
    /// Client flags.
    pub flags: u32,
    /// Client exptime.
    pub exptime: i64,
    /// The data block.
    pub data: B,
    /// The cas unique to compare (cas only).
    pub cas: u64,
    /// Suppress the reply.
    pub noreply: bool,
}

/// A storage command whose item exceeds `-I`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge<B> {
    /// Which command.
    pub mode: StoreMode,
    /// The key.
    pub key: Key<B>,
    /// Suppress the reply.
    pub noreply: bool,
}

/// Parses the arguments and waits for the data block.
pub fn parse<'a>(l: &Line<'a>, limits: &Limits) -> Parsed<Storage<&'a [u8]>> {
    let mode = match l.get(0) {
        b"set" => StoreMode::Set,
        b"add" => StoreMode::Add,
        b"replace" => StoreMode::Replace,
        b"append" => StoreMode::Append,
        b"prepend" => StoreMode::Prepend,
        _ => StoreMode::Cas,
    };
    let is_cas = mode == StoreMode::Cas;
    let nt = l.ntokens();
    let (a, b) = if is_cas { (7, 8) } else { (6, 7) };
    if nt != a && nt != b {
        return l.error(Reply::Error, false);
    }
    let noreply = l.noreply();
    let Ok(key) = Key::parse(l.get(1)) else {
        return l.error(Reply::BadFormat, noreply);
    };
    let (Some(flags), Some(exptime), Some(vlen)) =
        (strtoul32(l.get(2)), strtol32(l.get(3)), strtol32(l.get(4)))
    else {
        return l.error(Reply::BadFormat, noreply);
    };
    let cas = if is_cas {
        match strtoull(l.get(5)) {
            Some(c) => c,
            None => return l.error(Reply::BadFormat, noreply),
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return l.error(Reply::BadFormat, noreply);
    }
    let vlen = vlen as usize;
    if item_total(key.as_bytes().len(), vlen) > limits.item_size_max {
        let too_large = TooLarge { mode, key, noreply };
        return l.done_swallowing(Storage::TooLarge(too_large), vlen + 2);
    }
    l.with_data(vlen, noreply, |data| {
        Storage::Store(Store {
            mode,
            key,
            flags,
            exptime: exptime as i64,
            data,
            cas,
            noreply,
        })
    })
}

impl<B: AsRef<[u8]>> Storage<B> {
    /// The key.
    pub fn key(&self) -> &[u8] {
        match self {
            Storage::Store(s) => s.key.as_bytes(),
            Storage::TooLarge(t) => t.key.as_bytes(),
        }
    }

    /// Whether the reply is suppressed.
    pub fn noreply(&self) -> bool {
        match self {
            Storage::Store(s) => s.noreply,
            Storage::TooLarge(t) => t.noreply,
        }
    }

    /// An owned copy, to forward.
    pub fn to_owned(&self) -> Storage<Vec<u8>> {
        match self {
            Storage::Store(s) => Storage::Store(Store {
                key: s.key.to_owned(),
                data: s.data.as_ref().to_vec(),
                mode: s.mode,
                flags: s.flags,
                exptime: s.exptime,
                cas: s.cas,
                noreply: s.noreply,
            }),
            Storage::TooLarge(t) => Storage::TooLarge(TooLarge {
                key: t.key.to_owned(),
                mode: t.mode,
                noreply: t.noreply,
            }),
        }
    }

    /// Runs on the key's owner; appends the reply.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        match self {
            Storage::Store(s) => s.run(shard, hash, now, out),
            Storage::TooLarge(t) => t.run(shard, hash, now, out),
        }
    }
}

impl<B: AsRef<[u8]>> Store<B> {
    fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*shard.stats;
        let (key, data) = (self.key.as_bytes(), self.data.as_ref());
        let mut store = shard.store.borrow_mut();
        st.cmd_set.incr();
        let class = store.class_stats(item_total(key.len(), data.len()));
        class.cmd_set.incr();
        let exp = shard.clock.exptime(self.exptime, now);
        let r = store.store(self.mode, key, hash, self.flags, exp, data, self.cas, now);
        if self.mode == StoreMode::Cas {
            count_cas(st, store.class_stats(item_total(key.len(), data.len())), r);
        }
        out.extend_from_slice(match r {
            StoreResult::Stored => b"STORED\r\n",
            StoreResult::NotStored => b"NOT_STORED\r\n",
            StoreResult::Exists => b"EXISTS\r\n",
            StoreResult::NotFound => b"NOT_FOUND\r\n",
            StoreResult::TooLarge => {
                st.store_too_large.incr();
                reply::TOO_LARGE
            }
            StoreResult::OutOfMemory => {
                st.store_no_memory.incr();
                reply::NO_MEMORY
            }
        });
    }
}

impl<B: AsRef<[u8]>> TooLarge<B> {
    /// Also what an oversized meta set runs: memcached drops the old item on it.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        shard.stats.store_too_large.incr();
        // memcached drops the old value on a failed set, so no stale data survives.
        if self.mode == StoreMode::Set {
            shard
                .store
                .borrow_mut()
                .delete(self.key.as_bytes(), hash, now);
        }
        out.extend_from_slice(reply::TOO_LARGE);
    }
}

/// Counts a cas-mode store in the shard's and the class's counters.
pub(crate) fn count_cas(st: &ShardStats, class: &ClassStats, r: StoreResult) {
    match r {
        StoreResult::Stored => {
            class.cas_hits.incr();
            st.cas_hits.incr();
        }
        StoreResult::Exists => {
            class.cas_badval.incr();
            st.cas_badval.incr();
        }
        StoreResult::NotFound => st.cas_misses.incr(),
        _ => {}
    }
}
