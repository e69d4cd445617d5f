//! get, gets, gat, gats (and bget): `VALUE` lines for the keys found, then `END`.
//!
//! A multi-key get is split into one [`GetKey`] per key, each run by the key's owner, so a
//! get's keys may be served by different executors; `END` is written by whoever splits it.

use crate::protocol::num::strtol32;
use crate::protocol::{Key, KeyList, Line, Parsed, Reply, reply};
use crate::shard::Shard;
use crate::store::{Lookup, RelTime};

/// A get-family command as parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Get<'a> {
    /// Include the cas unique (gets, gats).
    pub cas: bool,
    /// Touch with this exptime (gat, gats).
    pub exptime: Option<i64>,
    /// The keys.
    pub keys: KeyList<'a>,
}

/// What closes a get's reply.
pub const END: &[u8] = b"END\r\n";

/// `get <key>*`, `gets <key>*`, `gat <exptime> <key>*`, `gats <exptime> <key>*`.
#[inline(always)] // the hottest request: parsed inside the front end's dispatch
pub fn parse<'a>(l: &Line<'a>) -> Parsed<Get<'a>> {
    if l.ntokens() < 3 {
        return l.error(Reply::Error, false);
    }
    let name = l.get(0);
    let touch = name == b"gat" || name == b"gats";
    let cas = name == b"gets" || name == b"gats";
    let (exptime, rest) = if touch {
        let Some(e) = strtol32(l.get(1)) else {
            return l.error(Reply::InvalidExptime, false);
        };
        // The keys start after the exptime token.
        (Some(e as i64), l.after_token(1))
    } else {
        // The keys start after the name token (not at the name's length into the line:
        // with leading spaces that cut into the name, "  get foo" read the keys "et foo").
        (None, l.after_token(0))
    };
    match KeyList::parse(rest) {
        Ok(keys) => l.done(Get { cas, exptime, keys }),
        Err(_) => l.error(Reply::BadFormat, false),
    }
}

impl<'a> Get<'a> {
    /// The command for each key, in order.
    pub fn each_key(&self) -> impl Iterator<Item = GetKey<&'a [u8]>> + 'a {
        let (cas, touch) = (self.cas, self.exptime);
        self.keys.iter().map(move |key| GetKey { key, cas, touch })
    }
}

/// One key of a get: what its owner runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetKey<B> {
    /// The key.
    pub key: Key<B>,
    /// Include the cas unique.
    pub cas: bool,
    /// gat/gats: new client exptime.
    pub touch: Option<i64>,
}

impl<B: AsRef<[u8]>> GetKey<B> {
    /// An owned copy, to forward.
    pub fn to_owned(&self) -> GetKey<Vec<u8>> {
        GetKey {
            key: self.key.to_owned(),
            cas: self.cas,
            touch: self.touch,
        }
    }

    /// Looks the key up (touching it for gat); appends its `VALUE` line if found.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*shard.stats;
        let mut store = shard.store.borrow_mut();
        if self.touch.is_some() {
            st.cmd_touch.incr();
        } else {
            st.cmd_get.incr();
        }
        let idx = match store.lookup(self.key.as_bytes(), hash, now) {
            Lookup::Hit(idx) => idx,
            miss => {
                if self.touch.is_some() {
                    st.touch_misses.incr();
                } else {
                    st.get_misses.incr();
                    match miss {
                        Lookup::Expired => st.get_expired.incr(),
                        Lookup::Flushed => st.get_flushed.incr(),
                        _ => {}
                    }
                }
                return;
            }
        };
        store.touch_read(idx);
        let class = store.class_stats(store.item(idx).total);
        if let Some(e) = self.touch {
            class.touch_hits.incr();
            store.set_exptime(idx, shard.clock.exptime(e, now));
            st.touch_hits.incr();
        } else {
            class.get_hits.incr();
            st.get_hits.incr();
        }
        let it = store.item(idx);
        reply::write_value(out, it.key, it.flags, it.value, self.cas.then_some(it.cas));
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::Command;
    use crate::protocol::{Limits, Parsed, text};

    /// memcached 1.6.18 serves `foo` for "  get foo" (its tokenizer skips the spaces).
    #[test]
    fn leading_spaces_do_not_shift_the_keys() {
        for line in [
            &b"  get foo bar\r\n"[..],
            b"get foo bar\r\n",
            b" gets foo  bar\r\n",
        ] {
            let Parsed::Done {
                req: Command::Get(get),
                ..
            } = text::parse(line, &Limits::default())
            else {
                panic!("{line:?} does not parse to a get");
            };
            let keys: Vec<Vec<u8>> = get.keys.iter().map(|k| k.as_bytes().to_vec()).collect();
            assert_eq!(keys, [b"foo".to_vec(), b"bar".to_vec()], "{line:?}");
        }
    }
}
