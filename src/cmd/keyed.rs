//! A command about one key ([`Keyed`]): what the key's owner runs, here or forwarded over
//! the mesh, its bytes borrowed (`&[u8]`) where it was parsed or owned (`Vec<u8>`) once
//! forwarded.

use super::arith::Arith;
use super::delete::Delete;
use super::meta::Meta;
use super::retrieval::GetKey;
use super::storage::Storage;
use super::touch::Touch;
use crate::shard::Shard;
use crate::shard::mesh::Forward;
use crate::store::RelTime;

/// A command about one key: what the key's owner runs, locally or forwarded over the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed<B> {
    /// One key of a get/gets/gat/gats.
    Get(GetKey<B>),
    /// A storage command.
    Storage(Storage<B>),
    /// delete.
    Delete(Delete<B>),
    /// incr/decr.
    Arith(Arith<B>),
    /// touch.
    Touch(Touch<B>),
    /// A meta command.
    Meta(Meta<B>),
}

impl<B: AsRef<[u8]>> Keyed<B> {
    /// The key it is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Keyed::Get(c) => c.key.as_bytes(),
            Keyed::Storage(c) => c.key(),
            Keyed::Delete(c) => c.key.as_bytes(),
            Keyed::Arith(c) => c.key.as_bytes(),
            Keyed::Touch(c) => c.key.as_bytes(),
            Keyed::Meta(c) => c.key.as_bytes(),
        }
    }

    /// Whether its reply is dropped (meta commands have `q` instead, applied by the owner).
    pub fn noreply(&self) -> bool {
        match self {
            Keyed::Storage(c) => c.noreply(),
            Keyed::Delete(c) => c.noreply,
            Keyed::Arith(c) => c.noreply,
            Keyed::Touch(c) => c.noreply,
            Keyed::Get(_) | Keyed::Meta(_) => false,
        }
    }

    /// An owned copy, to forward to the key's owner.
    pub fn to_owned(&self) -> Keyed<Vec<u8>> {
        match self {
            Keyed::Get(c) => Keyed::Get(c.to_owned()),
            Keyed::Storage(c) => Keyed::Storage(c.to_owned()),
            Keyed::Delete(c) => Keyed::Delete(c.to_owned()),
            Keyed::Arith(c) => Keyed::Arith(c.to_owned()),
            Keyed::Touch(c) => Keyed::Touch(c.to_owned()),
            Keyed::Meta(c) => Keyed::Meta(c.to_owned()),
        }
    }

    /// Runs it on the shard that owns the key, at `now`, appending memcached's reply
    /// (noreply is the caller's to apply). `hash` is [`crate::shard::hash_key`] of the key.
    pub fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        match self {
            Keyed::Get(c) => c.run(shard, hash, now, out),
            Keyed::Storage(c) => c.run(shard, hash, now, out),
            Keyed::Delete(c) => c.run(shard, hash, now, out),
            Keyed::Arith(c) => c.run(shard, hash, now, out),
            Keyed::Touch(c) => c.run(shard, hash, now, out),
            Keyed::Meta(c) => c.run(shard, hash, now, out),
        }
    }
}

/// Forwarded commands are owned; the mesh runs them with the same code as local ones.
impl Forward for Keyed<Vec<u8>> {
    fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>) {
        Keyed::run(self, shard, hash, now, out);
    }
}
