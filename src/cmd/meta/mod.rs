//! The meta commands: `mg ms md ma me` run on the shard that owns the key, `mn` where it
//! is read. The meta front end ([`crate::protocol::meta`]) checks the flags once; the reply
//! is built where the item is, so every requested return flag (`c f h k l O s t`) and the
//! recache marks (`W X Z`) come out in request order in one pass, as memcached writes them.

pub mod ma;
pub mod md;
pub mod me;
pub mod mg;
pub mod mn;
pub mod ms;
mod op;

use crate::protocol::meta::{MetaCmd, MetaFlags, MetaRequest};
use crate::protocol::{KEY_MAX_LENGTH, Key};
use crate::shard::Shard;
use crate::store::RelTime;
use op::Op;

/// A meta command for the key's owner, its bytes held as `B` (see [`crate::cmd::Keyed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta<B> {
    /// The command.
    pub cmd: MetaCmd,
    /// The key, decoded when the request used `b`.
    pub key: Key<B>,
    /// The flag tokens as sent (for echoing return flags in order).
    pub tokens: B,
    /// `ms` data.
    pub data: B,
    /// Parsed flags.
    pub flags: MetaFlags,
}

impl<'b> Meta<&'b [u8]> {
    /// The command of a parsed request, its key decoded into `buf` if it is base64.
    pub fn of<'a: 'b>(req: &MetaRequest<'a>, buf: &'b mut [u8; KEY_MAX_LENGTH]) -> Self {
        Meta {
            cmd: req.cmd,
            key: req.key(buf),
            tokens: req.tokens,
            data: req.data,
            flags: req.flags,
        }
    }
}

impl<B: AsRef<[u8]>> Meta<B> {
    /// An owned copy, to forward.
    pub fn to_owned(&self) -> Meta<Vec<u8>> {
        Meta {
            cmd: self.cmd,
            key: self.key.to_owned(),
            tokens: self.tokens.as_ref().to_vec(),
            data: self.data.as_ref().to_vec(),
            flags: self.flags,
        }
    }

    /// Runs on the key's owner; appends the whole reply (or nothing, for quiet successes).
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        shard.stats.cmd_meta.incr();
        let op = Op {
            key: self.key.as_bytes(),
            tokens: self.tokens.as_ref(),
            data: self.data.as_ref(),
            flags: &self.flags,
            hash,
            now,
        };
        match self.cmd {
            MetaCmd::Get => mg::run(&op, shard, out),
            MetaCmd::Set => ms::run(&op, shard, out),
            MetaCmd::Delete => md::run(&op, shard, out),
            MetaCmd::Arith => ma::run(&op, shard, out),
            MetaCmd::Debug => me::run(&op, shard, out),
        }
    }
}
