//! Running meta commands on the shard that owns the key, and encoding their replies.
//!
//! The reply is built where the item is, so every requested return flag (`c f h k l O s t`)
//! and the recache marks (`W X Z`) come out in request order in one pass, as memcached
//! writes them.

use crate::protocol::meta::{MetaCmd, MetaFlags, base64_encode};
use crate::store::{ArithResult, Lookup, Mark, RelTime, StoreArgs, StoreMode, StoreResult};

use super::Shard;

/// A meta operation, generic over how its bytes are held (see [`super::KeyOp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaOp<B> {
    /// The command.
    pub cmd: MetaCmd,
    /// The key, decoded when the request used `b`.
    pub key: B,
    /// The flag tokens as sent (for echoing return flags in order).
    pub tokens: B,
    /// `ms` data.
    pub data: B,
    /// Parsed flags.
    pub flags: MetaFlags,
}

impl<B: AsRef<[u8]>> MetaOp<B> {
    /// A borrowed view.
    pub fn as_ref(&self) -> MetaOp<&[u8]> {
        MetaOp {
            cmd: self.cmd,
            key: self.key.as_ref(),
            tokens: self.tokens.as_ref(),
            data: self.data.as_ref(),
            flags: self.flags,
        }
    }
}

impl MetaOp<&[u8]> {
    /// The store of an autovivified item (`N<ttl>` on a miss): added with `value`, flags 0.
    fn vivify_args<'a>(
        &'a self,
        hash: u64,
        shard: &Shard,
        ttl: i64,
        value: &'a [u8],
        now: RelTime,
    ) -> StoreArgs<'a> {
        StoreArgs {
            mode: StoreMode::Add,
            key: self.key,
            hash,
            flags: 0,
            exptime: shard.clock.exptime(ttl, now),
            value,
            compare_cas: None,
            new_cas: self.flags.new_cas,
            invalidate: false,
            key_binary: self.flags.base64,
        }
    }

    /// An owned copy.
    pub fn to_owned_op(&self) -> MetaOp<Vec<u8>> {
        MetaOp {
            cmd: self.cmd,
            key: self.key.to_vec(),
            tokens: self.tokens.to_vec(),
            data: self.data.to_vec(),
            flags: self.flags,
        }
    }
}

fn tokens(t: &[u8]) -> impl Iterator<Item = &[u8]> {
    t.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

fn num(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// ` k<key>`, base64 with a trailing ` b` for binary keys (memcached's META_KEY).
fn key_flag(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// Echoes the flags every reply carries, hit or miss: `O` (opaque) and `k` (key).
fn echo_ok(out: &mut Vec<u8>, toks: &[u8], key: &[u8], binary: bool) {
    for t in tokens(toks) {
        match t[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            b'k' => key_flag(out, key, binary),
            _ => {}
        }
    }
}

/// TTL remaining as memcached reports it: -1 for none.
fn ttl_left(out: &mut Vec<u8>, exptime: RelTime, now: RelTime) {
    if exptime == 0 {
        out.extend_from_slice(b"-1");
    } else {
        num(out, exptime.wrapping_sub(now));
    }
}

impl Shard {
    /// Runs one meta operation; appends the whole reply (or nothing, for quiet successes).
    pub fn exec_meta(&self, op: &MetaOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        self.stats.cmd_meta.incr();
        match op.cmd {
            MetaCmd::Get => self.meta_get(op, hash, now, out),
            MetaCmd::Set => self.meta_set(op, hash, now, out),
            MetaCmd::Delete => self.meta_delete(op, hash, now, out),
            MetaCmd::Arith => self.meta_arith(op, hash, now, out),
            MetaCmd::Debug => self.meta_debug(op, hash, now, out),
        }
    }

    fn meta_get(&self, op: &MetaOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*self.stats;
        let f = &op.flags;
        let mut store = self.store.borrow_mut();
        let mut created = false;
        let idx = match store.lookup(op.key, hash, now) {
            Lookup::Hit(i) => Some(i),
            _ => match f.vivify {
                Some(ttl) => {
                    let (r, idx) =
                        store.store_with(&op.vivify_args(hash, self, ttl, b"", now), now);
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
                out.extend_from_slice(b"EN");
                echo_ok(out, op.tokens, op.key, f.base64);
                out.extend_from_slice(b"\r\n");
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
        for t in tokens(op.tokens) {
            match t[0] {
                b'T' => {
                    if let Some(ttl) = f.ttl {
                        store.set_exptime(idx, self.clock.exptime(ttl, now));
                    }
                }
                b'N' => won |= created,
                b'R' => {
                    let exp = store.item(idx).exptime;
                    let limit = f.recache.map(|r| self.clock.exptime(r, now)).unwrap_or(0);
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
                b'O' => {
                    out.push(b' ');
                    out.extend_from_slice(t);
                }
                b'k' => key_flag(out, op.key, binary),
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

    fn meta_set(&self, op: &MetaOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*self.stats;
        let f = &op.flags;
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
        let mut store = self.store.borrow_mut();
        let (r, idx) = store.store_with(
            &StoreArgs {
                mode,
                key: op.key,
                hash,
                flags: f.client_flags,
                exptime: f.ttl.map_or(0, |t| self.clock.exptime(t, now)),
                value: op.data,
                compare_cas: f.compare_cas,
                new_cas: f.new_cas,
                invalidate: f.invalidate,
                key_binary: f.base64,
            },
            now,
        );
        let class = store.class_stats(crate::store::item_total(op.key.len(), op.data.len()));
        class.cmd_set.incr();
        if mode == StoreMode::Cas {
            super::count_cas(st, class, r);
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
                out.extend_from_slice(b"SERVER_ERROR object too large for cache\r\n");
                return;
            }
            StoreResult::OutOfMemory => {
                st.store_no_memory.incr();
                out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
                return;
            }
        };
        out.extend_from_slice(code);
        let cas = idx.map_or(0, |i| store.item(i).cas);
        for t in tokens(op.tokens) {
            match t[0] {
                b'O' => {
                    out.push(b' ');
                    out.extend_from_slice(t);
                }
                b'k' => key_flag(out, op.key, f.base64),
                b'c' => {
                    out.extend_from_slice(b" c");
                    num(out, cas);
                }
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    fn meta_delete(&self, op: &MetaOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*self.stats;
        let f = &op.flags;
        let mut store = self.store.borrow_mut();
        let code: &[u8] = match store.lookup(op.key, hash, now) {
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
                        store.set_exptime(idx, self.clock.exptime(ttl, now));
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
                    store.delete(op.key, hash, now);
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
        out.extend_from_slice(code);
        echo_ok(out, op.tokens, op.key, f.base64);
        out.extend_from_slice(b"\r\n");
    }

    fn meta_arith(&self, op: &MetaOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let st = &*self.stats;
        let f = &op.flags;
        let incr = !matches!(f.mode, Some(b'D' | b'-'));
        let mut store = self.store.borrow_mut();
        let (r, idx) = store.arith_with(op.key, hash, incr, f.delta, f.compare_cas, f.new_cas, now);
        let mut created = false;
        let (value, idx) = match (r, idx) {
            (ArithResult::Value(v), Some(i)) => {
                super::count_arith_hit(st, store.class_stats(store.item(i).total), incr);
                if f.quiet {
                    return;
                }
                (v, i)
            }
            (ArithResult::NotFound, _) => match f.vivify {
                Some(ttl) => {
                    let initial = itoa::Buffer::new().format(f.initial).to_owned();
                    let args = op.vivify_args(hash, self, ttl, initial.as_bytes(), now);
                    let (r, idx) = store.store_with(&args, now);
                    match (r, idx) {
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
                        _ => {
                            out.extend_from_slice(b"NS");
                            echo_ok(out, op.tokens, op.key, f.base64);
                            out.extend_from_slice(b"\r\n");
                            return;
                        }
                    }
                }
                None => {
                    if incr {
                        st.incr_misses.incr();
                    } else {
                        st.decr_misses.incr();
                    }
                    out.extend_from_slice(b"NF");
                    echo_ok(out, op.tokens, op.key, f.base64);
                    out.extend_from_slice(b"\r\n");
                    return;
                }
            },
            (ArithResult::Exists, _) => {
                out.extend_from_slice(b"EX");
                echo_ok(out, op.tokens, op.key, f.base64);
                out.extend_from_slice(b"\r\n");
                return;
            }
            (ArithResult::NonNumeric, _) => {
                out.extend_from_slice(
                    b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
                );
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
        for t in tokens(op.tokens) {
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
                        store.set_exptime(idx, self.clock.exptime(ttl, now));
                    }
                }
                // memcached applies N's TTL in flag order, so a T before it is overridden.
                b'N' if created => {
                    if let Some(ttl) = f.vivify {
                        store.set_exptime(idx, self.clock.exptime(ttl, now));
                    }
                }
                b'O' => {
                    out.push(b' ');
                    out.extend_from_slice(t);
                }
                b'k' => key_flag(out, op.key, f.base64),
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        if f.value {
            out.extend_from_slice(digits.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    fn meta_debug(&self, op: &MetaOp<&[u8]>, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        let mut store = self.store.borrow_mut();
        let Lookup::Hit(idx) = store.lookup(op.key, hash, now) else {
            out.extend_from_slice(b"EN\r\n");
            return;
        };
        let it = store.item(idx);
        out.extend_from_slice(b"ME ");
        if it.key_binary {
            base64_encode(it.key, out);
        } else {
            out.extend_from_slice(it.key);
        }
        // memcached prints `current_time - exptime`: negative while the item is alive.
        let exp: i64 = if it.exptime == 0 {
            -1
        } else {
            now as i64 - it.exptime as i64
        };
        let line = format!(
            " exp={exp} la={} cas={} fetch={} cls={} size={}\r\n",
            now.saturating_sub(it.atime),
            it.cas,
            if it.fetched { "yes" } else { "no" },
            crate::store::slabs::class_of(it.total, store.limits().item_size_max),
            it.total
        );
        out.extend_from_slice(line.as_bytes());
    }
}
