//! Reply ordering: replies of one pass go out in request order, whichever shard owns each
//! key.
//!
//! Keys this executor owns are served at once into [`Output::out`]; keys owned elsewhere
//! are collected per owner ([`Output::push_remote`]) and leave as one batch each when the
//! pass ends. The output remembers where each remote reply belongs ([`Seg`]), and
//! [`Output::resolve`] lays the bytes out in order once the owners have answered.
//!
//! It lives in `cmd` because commands write into it: routing ([`super::dispatch`]) queues
//! forwarded commands here, and the barrier commands (flush_all, stats, cache_memlimit)
//! resolve it before they run; the connection loop (`net`) owns one per connection.

use std::ops::Range;

use super::exec::{Forwarded, Mesh};
use crate::shard::mesh::{BatchReply, Payload, PeerGone};

/// Where a piece of the output comes from.
#[derive(Debug)]
enum Seg {
    /// Bytes already in `out`.
    Local(Range<usize>),
    /// Reply `idx` of the batch sent to `owner`.
    Remote {
        owner: usize,
        idx: usize,
        noreply: bool,
    },
}

/// Replies of one pass, in request order.
#[derive(Debug, Default)]
pub struct Output {
    /// Reply bytes (final once [`Output::resolve`] has run).
    pub out: Vec<u8>,
    segs: Vec<Seg>,
    /// `out[..done]` is final (laid out by an earlier resolve in this pass).
    done: usize,
    /// Start of the local bytes not yet in a segment.
    seg_start: usize,
    /// Per owner: the operations to forward, with their hashes.
    remote: Vec<Vec<(u64, Forwarded)>>,
    pending: usize,
    /// Requests of this pass (command class, when parsed), while service time is recorded.
    pub(crate) timings: Vec<(u8, std::time::Instant)>,
}

impl Output {
    /// An empty output for `n` shards.
    pub fn new(n: usize) -> Self {
        Output {
            remote: (0..n).map(|_| Vec::new()).collect(),
            ..Default::default()
        }
    }

    /// Queues `op` (its key's hash `hash`, which the owner runs it with) for the shard that
    /// owns its key; its reply (unless `noreply`) goes here in the output.
    pub(crate) fn push_remote(&mut self, owner: usize, hash: u64, op: Forwarded, noreply: bool) {
        if self.seg_start < self.out.len() {
            self.segs.push(Seg::Local(self.seg_start..self.out.len()));
        }
        self.seg_start = self.out.len();
        let idx = self.remote[owner].len();
        self.remote[owner].push((hash, op));
        self.segs.push(Seg::Remote {
            owner,
            idx,
            noreply,
        });
        self.pending += 1;
    }

    /// Forgets the written output (keeps the allocation, up to a bound).
    pub fn clear(&mut self) {
        debug_assert_eq!(self.pending, 0, "clear after resolve");
        self.out.clear();
        self.done = 0;
        self.seg_start = 0;
        if self.out.capacity() > 1024 * 1024 {
            self.out.shrink_to(64 * 1024);
        }
    }

    /// Records the service time of this pass's requests (call once their replies are
    /// laid out, before the write).
    pub fn observe_latency(&mut self, latency: &crate::stats::Latency) {
        if self.timings.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        for (class, start) in self.timings.drain(..) {
            let ns = now.saturating_duration_since(start).as_nanos();
            latency.observe(class as usize, u64::try_from(ns).unwrap_or(u64::MAX));
        }
    }

    /// Whether forwarded operations are waiting for their owners.
    pub fn has_pending(&self) -> bool {
        self.pending > 0
    }

    /// Sends the forwarded operations, waits for the replies, and lays out `out` in order.
    pub async fn resolve(&mut self, mesh: Option<&Mesh>) -> Result<(), PeerGone> {
        if self.pending == 0 {
            return Ok(());
        }
        let mesh = mesh.ok_or(PeerGone)?;
        if self.seg_start < self.out.len() {
            self.segs.push(Seg::Local(self.seg_start..self.out.len()));
        }
        // Send every owner its batch first, then wait: owners work in parallel.
        let mut waits = Vec::new();
        for (owner, ops) in self.remote.iter_mut().enumerate() {
            if !ops.is_empty() {
                let ops = std::mem::take(ops);
                waits.push((owner, mesh.send(owner, ops).await?));
            }
        }
        let mut replies: Vec<Option<BatchReply>> = (0..self.remote.len()).map(|_| None).collect();
        for (owner, rx) in waits {
            match rx.await {
                Ok(Payload::Batch(r)) => replies[owner] = Some(r),
                _ => return Err(PeerGone),
            }
        }
        let mut assembled = Vec::with_capacity(self.out.len() + 256);
        assembled.extend_from_slice(&self.out[..self.done]);
        for seg in self.segs.drain(..) {
            match seg {
                Seg::Local(r) => assembled.extend_from_slice(&self.out[r]),
                Seg::Remote {
                    owner,
                    idx,
                    noreply,
                } => {
                    if !noreply && let Some(rep) = &replies[owner] {
                        assembled.extend_from_slice(rep.get(idx));
                    }
                }
            }
        }
        self.out = assembled;
        self.done = self.out.len();
        self.seg_start = self.out.len();
        self.pending = 0;
        Ok(())
    }
}
