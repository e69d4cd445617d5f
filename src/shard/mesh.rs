//! The channel mesh between executors: batches of keyed operations go to their owner, which
//! runs them in order and sends back the encoded replies.
//!
//! A connection collects, per owner, every remote operation it parsed from one read, and sends
//! each owner one envelope: the cost of crossing cores is paid per batch, not per request.
//! Requests travel on glommio's bounded shared channels; replies come back on a oneshot whose
//! waker glommio routes to the waiting executor.

use std::rc::Rc;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Receivers, Senders};

use super::{KeyOp, Shard};

/// A message between executors.
#[derive(Debug)]
pub enum Envelope {
    /// Run these operations in order; reply with their encoded replies.
    Batch {
        /// The operations.
        ops: Vec<KeyOp<Vec<u8>>>,
        /// Where the replies go.
        reply: oneshot::Sender<BatchReply>,
    },
    /// cache_memlimit: this shard's new memory limit in bytes.
    MemLimit {
        /// Bytes for this shard.
        bytes: usize,
        /// Acknowledged when done.
        reply: oneshot::Sender<()>,
    },
    /// flush_all on this shard.
    Flush {
        /// Delay in client exptime form.
        delay: i64,
        /// Acknowledged when done.
        reply: oneshot::Sender<()>,
    },
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

/// This executor's end of the mesh.
pub struct Mesh {
    senders: Senders<Envelope>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("peer_id", &self.senders.peer_id())
            .finish()
    }
}

impl Mesh {
    /// Wraps the senders of a joined mesh.
    pub fn new(senders: Senders<Envelope>) -> Self {
        Mesh { senders }
    }

    /// Sends a batch to shard `to`; the receiver yields its replies.
    pub async fn send(
        &self,
        to: usize,
        ops: Vec<KeyOp<Vec<u8>>>,
    ) -> Result<oneshot::Receiver<BatchReply>, PeerGone> {
        let (tx, rx) = oneshot::channel();
        self.senders
            .send_to(to, Envelope::Batch { ops, reply: tx })
            .await
            .map_err(|_| PeerGone)?;
        Ok(rx)
    }

    /// Sends `make(ack)` to every other shard and waits until all have acknowledged.
    async fn broadcast(
        &self,
        make: impl Fn(oneshot::Sender<()>) -> Envelope,
    ) -> Result<(), PeerGone> {
        let me = self.senders.peer_id();
        let mut waits = Vec::new();
        for to in (0..self.senders.nr_consumers()).filter(|&to| to != me) {
            let (tx, rx) = oneshot::channel();
            self.senders
                .send_to(to, make(tx))
                .await
                .map_err(|_| PeerGone)?;
            waits.push(rx);
        }
        for rx in waits {
            rx.await.map_err(|_| PeerGone)?;
        }
        Ok(())
    }

    /// Runs flush_all on every other shard and waits until all have done it.
    pub async fn flush_others(&self, delay: i64) -> Result<(), PeerGone> {
        self.broadcast(|reply| Envelope::Flush { delay, reply })
            .await
    }

    /// Sets every other shard's memory limit and waits until all have applied it.
    pub async fn memlimit_others(&self, bytes: usize) -> Result<(), PeerGone> {
        self.broadcast(|reply| Envelope::MemLimit { bytes, reply })
            .await
    }

    /// Closes this executor's sending side (shutdown).
    pub fn close(&self) {
        self.senders.close();
    }
}

/// Serves envelopes from every peer until they all close their side.
pub async fn serve(mut receivers: Receivers<Envelope>, shard: Rc<Shard>) {
    let mut tasks = Vec::new();
    for (_peer, rx) in receivers.streams() {
        let shard = shard.clone();
        tasks.push(glommio::spawn_local(async move {
            while let Some(env) = rx.recv().await {
                handle(&shard, env);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
}

fn handle(shard: &Shard, env: Envelope) {
    match env {
        Envelope::Batch { ops, reply } => {
            let mut out = BatchReply {
                buf: Vec::with_capacity(64 * ops.len()),
                ends: Vec::with_capacity(ops.len()),
            };
            let now = shard.clock.now();
            shard.stats.forwarded_batches.incr();
            for op in &ops {
                let op = op.as_ref();
                shard.exec_at(&op, super::hash_key(op.key()), now, &mut out.buf);
                out.ends.push(out.buf.len());
            }
            // The caller may have gone away (connection closed): nothing to do then.
            let _ = reply.send(out);
        }
        Envelope::MemLimit { bytes, reply } => {
            let now = shard.clock.now();
            shard.store.borrow_mut().set_mem_limit(bytes, now);
            let _ = reply.send(());
        }
        Envelope::Flush { delay, reply } => {
            shard.flush(delay);
            let _ = reply.send(());
        }
    }
}
