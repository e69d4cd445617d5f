//! What a meta command runs with ([`Op`]), shared by `mg ms md ma me`. A leaf under
//! [`super`]: the dispatch in `meta/mod.rs` builds it, each command's module reads it.

use crate::protocol::meta::MetaFlags;
use crate::shard::Shard;
use crate::store::{RelTime, StoreArgs, StoreMode};

/// What a meta command runs with: its bytes borrowed, its key hashed, the time.
#[derive(Debug)]
pub(crate) struct Op<'a> {
    pub(super) key: &'a [u8],
    pub(super) tokens: &'a [u8],
    pub(super) data: &'a [u8],
    pub(super) flags: &'a MetaFlags,
    pub(super) hash: u64,
    pub(super) now: RelTime,
}

impl Op<'_> {
    /// The store of an autovivified item (`N<ttl>` on a miss): added with `value`, flags 0.
    pub(super) fn vivify_args<'v>(
        &'v self,
        shard: &Shard,
        ttl: i64,
        value: &'v [u8],
    ) -> StoreArgs<'v> {
        StoreArgs {
            mode: StoreMode::Add,
            key: self.key,
            hash: self.hash,
            flags: 0,
            exptime: shard.clock.exptime(ttl, self.now),
            value,
            compare_cas: None,
            new_cas: self.flags.new_cas,
            invalidate: false,
            key_binary: self.flags.base64,
        }
    }

    /// `<code>`, the `O` and `k` flags, `\r\n`.
    pub(super) fn status(&self, out: &mut Vec<u8>, code: &[u8]) {
        crate::protocol::reply::meta_status(out, code, self.tokens, self.key, self.flags.base64);
    }
}
