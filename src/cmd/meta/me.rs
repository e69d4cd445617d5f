//! me (meta debug): `ME <key> exp= la= cas= fetch= cls= size=`, or `EN`.

use super::op::Op;
use crate::protocol::meta::base64_encode;
use crate::shard::Shard;
use crate::store::Lookup;

pub(super) fn run(op: &Op<'_>, shard: &Shard, out: &mut Vec<u8>) {
    let now = op.now;
    let mut store = shard.store.borrow_mut();
    let Lookup::Hit(idx) = store.lookup(op.key, op.hash, now) else {
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
