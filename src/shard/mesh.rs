//! The channel meshes between executors: batches of keyed operations go to their owner, which
//! runs them in order and sends the encoded replies back.
//!
//! A connection collects, per owner, every remote operation it parsed from one read, and sends
//! each owner one envelope: the cost of crossing cores is paid per batch, not per request.
//!
//! Requests and replies travel on two separate glommio channel meshes. Replies come back to
//! the requesting executor's dispatcher, which completes a oneshot *on that executor*: no
//! waker is ever woken or dropped from another thread (glommio's foreign-waker path races
//! with task teardown and corrupted the heap under load). Separate meshes also rule out a
//! deadlock: dispatchers never block, so reply channels always drain, so request handlers
//! always make progress.
//!
//! The mesh carries commands but names none: it is generic over what a batch holds
//! ([`Forward`], which `cmd` implements for its keyed commands), so `shard` stays below
//! `cmd` and `cmd`'s admin commands can broadcast over it. One implementation, monomorphized:
//! no dynamic dispatch on the forwarding path.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Receivers, Senders};

use super::Shard;
use crate::store::RelTime;
use crate::store::prefetch::PREFETCH_MAX;

/// What a batch carries: an operation about one key, which the key's owner runs.
pub trait Forward: Send + 'static {
    /// Runs it on the owner's shard at `now`, appending its encoded reply to `out`; `hash`
    /// is [`super::hash_key`] of its key, computed once by the sender (which needed it to
    /// find the owner) and carried in the batch.
    fn run(&self, shard: &Shard, hash: u64, now: RelTime, out: &mut Vec<u8>);
}

/// A request from one executor to another.
#[derive(Debug)]
pub enum Envelope<Op> {
    /// Run these operations in order; reply with their encoded replies.
    Batch {
        /// The requesting executor.
        from: usize,
        /// Its pending-reply slot.
        slot: u32,
        /// The operations, each with its key's hash.
        ops: Vec<(u64, Op)>,
    },
    /// flush_all on this shard.
    Flush {
        /// The requesting executor.
        from: usize,
        /// Its pending-reply slot.
        slot: u32,
        /// Delay in client exptime form.
        delay: i64,
    },
    /// cache_memlimit: this shard's new memory limit in bytes.
    MemLimit {
        /// The requesting executor.
        from: usize,
        /// Its pending-reply slot.
        slot: u32,
        /// Bytes for this shard.
        bytes: usize,
    },
}

/// A reply, addressed to a pending slot of the requesting executor.
#[derive(Debug)]
pub struct Reply {
    /// The slot the request was sent from.
    pub slot: u32,
    /// What came back.
    pub payload: Payload,
}

/// The content of a reply.
#[derive(Debug)]
pub enum Payload {
    /// Replies to a [`Envelope::Batch`].
    Batch(BatchReply),
    /// Done (flush, memory limit).
    Ack,
}

/// The replies to a [`Envelope::Batch`]: operation `i`'s bytes are `buf[ends[i-1]..ends[i]]`.
#[derive(Debug, Default)]
pub struct BatchReply {
    /// All replies, back to back.
    pub buf: Vec<u8>,
    /// End offset of each operation's reply.
    pub ends: Vec<usize>,
}

impl BatchReply {
    /// Operation `i`'s reply bytes.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }
}

/// Why a forwarded call failed: the peer executor is gone (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerGone;

impl std::fmt::Display for PeerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a forwarded request got no reply: the executor that owns its key is gone")
    }
}

impl std::error::Error for PeerGone {}

/// Requests waiting for their reply on this executor.
#[derive(Debug, Default)]
struct Pending {
    slots: Vec<Option<oneshot::Sender<Payload>>>,
    free: Vec<u32>,
}

/// This executor's end of the meshes.
pub struct Mesh<Op: Send> {
    requests: Senders<Envelope<Op>>,
    replies: Senders<Reply>,
    pending: RefCell<Pending>,
}

impl<Op: Send> std::fmt::Debug for Mesh<Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("peer_id", &self.requests.peer_id())
            .finish()
    }
}

impl<Op: Send> Mesh<Op> {
    /// Wraps the senders of the joined request and reply meshes.
    pub fn new(requests: Senders<Envelope<Op>>, replies: Senders<Reply>) -> Self {
        Mesh {
            requests,
            replies,
            pending: RefCell::new(Pending::default()),
        }
    }

    /// This executor's id in the mesh.
    pub fn me(&self) -> usize {
        self.requests.peer_id()
    }

    /// A slot for a reply, and the receiver that yields it.
    fn reserve(&self) -> (u32, oneshot::Receiver<Payload>) {
        let (tx, rx) = oneshot::channel();
        let mut p = self.pending.borrow_mut();
        let slot = match p.free.pop() {
            Some(s) => {
                p.slots[s as usize] = Some(tx);
                s
            }
            None => {
                p.slots.push(Some(tx));
                (p.slots.len() - 1) as u32
            }
        };
        (slot, rx)
    }

    /// Hands a reply to whoever waits in its slot (a local wake-up).
    fn complete(&self, reply: Reply) {
        let tx = {
            let mut p = self.pending.borrow_mut();
            let tx = p.slots.get_mut(reply.slot as usize).and_then(Option::take);
            if tx.is_some() {
                p.free.push(reply.slot);
            }
            tx
        };
        if let Some(tx) = tx {
            // The waiting connection may have gone away: nothing to do then.
            let _ = tx.send(reply.payload);
        }
    }

    async fn request(
        &self,
        to: usize,
        make: impl FnOnce(usize, u32) -> Envelope<Op>,
    ) -> Result<oneshot::Receiver<Payload>, PeerGone> {
        let (slot, rx) = self.reserve();
        if self
            .requests
            .send_to(to, make(self.me(), slot))
            .await
            .is_err()
        {
            self.complete(Reply {
                slot,
                payload: Payload::Ack,
            });
            return Err(PeerGone);
        }
        Ok(rx)
    }

    /// Sends a batch to shard `to`; the receiver yields its replies.
    pub async fn send(
        &self,
        to: usize,
        ops: Vec<(u64, Op)>,
    ) -> Result<oneshot::Receiver<Payload>, PeerGone> {
        self.request(to, |from, slot| Envelope::Batch { from, slot, ops })
            .await
    }

    /// Sends `make(from, slot)` to every other shard and waits until all have acknowledged.
    async fn broadcast(&self, make: impl Fn(usize, u32) -> Envelope<Op>) -> Result<(), PeerGone> {
        let me = self.me();
        let mut waits = Vec::new();
        for to in (0..self.requests.nr_consumers()).filter(|&to| to != me) {
            waits.push(self.request(to, &make).await?);
        }
        for rx in waits {
            rx.await.map_err(|_| PeerGone)?;
        }
        Ok(())
    }

    /// Runs flush_all on every other shard and waits until all have done it.
    pub async fn flush_others(&self, delay: i64) -> Result<(), PeerGone> {
        self.broadcast(|from, slot| Envelope::Flush { from, slot, delay })
            .await
    }

    /// Sets every other shard's memory limit and waits until all have applied it.
    pub async fn memlimit_others(&self, bytes: usize) -> Result<(), PeerGone> {
        self.broadcast(|from, slot| Envelope::MemLimit { from, slot, bytes })
            .await
    }
}

/// Serves requests from every peer (replying on the reply mesh) and dispatches the replies to
/// this executor's own requests, until the peers close their sides.
pub async fn serve<Op: Forward>(
    mut requests: Receivers<Envelope<Op>>,
    mut replies: Receivers<Reply>,
    shard: Rc<Shard>,
    mesh: Rc<Mesh<Op>>,
) {
    let mut tasks = Vec::new();
    for (_peer, rx) in requests.streams() {
        let shard = shard.clone();
        let mesh = mesh.clone();
        tasks.push(glommio::spawn_local(async move {
            while let Some(env) = rx.recv().await {
                let (to, reply) = handle(&shard, env);
                // The requester is gone only when the process shuts down.
                let _ = mesh.replies.send_to(to, reply).await;
            }
        }));
    }
    for (_peer, rx) in replies.streams() {
        let mesh = mesh.clone();
        tasks.push(glommio::spawn_local(async move {
            while let Some(reply) = rx.recv().await {
                mesh.complete(reply);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
}

fn handle<Op: Forward>(shard: &Shard, env: Envelope<Op>) -> (usize, Reply) {
    match env {
        Envelope::Batch { from, slot, ops } => {
            shard.stats.forwarded_batches.incr();
            let mut out = BatchReply {
                buf: Vec::with_capacity(64 * ops.len()),
                ends: Vec::with_capacity(ops.len()),
            };
            let now = shard.clock.now();
            // A window of lookups at a time, warmed together (Store::prefetch).
            for window in ops.chunks(PREFETCH_MAX) {
                shard
                    .store
                    .borrow()
                    .prefetch(window.iter().map(|(h, _)| *h));
                for (hash, op) in window {
                    op.run(shard, *hash, now, &mut out.buf);
                    out.ends.push(out.buf.len());
                }
            }
            (
                from,
                Reply {
                    slot,
                    payload: Payload::Batch(out),
                },
            )
        }
        Envelope::Flush { from, slot, delay } => {
            shard.flush(delay);
            (
                from,
                Reply {
                    slot,
                    payload: Payload::Ack,
                },
            )
        }
        Envelope::MemLimit { from, slot, bytes } => {
            let now = shard.clock.now();
            shard.store.borrow_mut().set_mem_limit(bytes, now);
            (
                from,
                Reply {
                    slot,
                    payload: Payload::Ack,
                },
            )
        }
    }
}
