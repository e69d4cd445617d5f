//! One connection's protocol state, independent of the socket: bytes in, replies out.
//!
//! Every complete request in the read buffer is handled in one pass. Keys this executor owns
//! are served at once into the output buffer; keys owned elsewhere are collected per owner and
//! leave as one envelope each when the pass ends. The output remembers where each remote
//! reply belongs, so replies go out in request order whatever the owners.
//!
//! Commands with process-wide effects (flush_all, stats) are barriers: the remote work queued
//! before them is finished first, so a pipeline `set k; flush_all; get k` behaves as written.

use std::ops::Range;
use std::rc::Rc;

use crate::cmd::{self, Command, Keyed};
use crate::protocol::{self, Parsed};
use crate::server::Shared;
use crate::shard::Shard;
use crate::shard::mesh::{BatchReply, Mesh, Payload, PeerGone};

/// What an executor gives each of its connections.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// This executor's shard.
    pub shard: Rc<Shard>,
    /// Its end of the mesh (None with one executor).
    pub mesh: Option<Rc<Mesh>>,
    /// Process-wide state.
    pub shared: std::sync::Arc<Shared>,
    /// Parser limits.
    pub limits: protocol::Limits,
    /// TLS write buffers of this executor (when TLS is on).
    pub wbufs: Option<crate::tls::conn::WbufPool>,
    /// The task queue TLS handshakes run in.
    pub hs_queue: Option<glommio::TaskQueueHandle>,
    /// Read buffers shared by this executor's connections.
    pub rbufs: ReadBufs,
    /// This executor's graceful-shutdown state.
    pub stop: Rc<super::stop::Stop>,
    /// Service-time histograms, recorded when the admin listener is on.
    pub latency: Option<std::sync::Arc<crate::stats::Latency>>,
}

/// Size of an executor's scratch read buffer.
const SCRATCH: usize = 64 * 1024;
/// Free session buffers an executor keeps.
const RBUF_KEEP: usize = 256;

/// Read buffers of one executor. A connection with nothing buffered reads into the shared
/// scratch buffer (borrowed only for the synchronous `recv` inside one poll: glommio reads
/// on readiness, so no buffer is held while a connection waits) and takes a session buffer
/// from the pool only when bytes arrive; drained, the buffer goes back. Idle connections
/// hold no read buffer.
#[derive(Debug, Clone)]
pub struct ReadBufs {
    /// Where idle connections' reads land.
    pub scratch: Rc<std::cell::RefCell<Vec<u8>>>,
    free: Rc<std::cell::RefCell<Vec<Vec<u8>>>>,
}

impl Default for ReadBufs {
    fn default() -> Self {
        ReadBufs {
            scratch: Rc::new(std::cell::RefCell::new(vec![0; SCRATCH])),
            free: Rc::default(),
        }
    }
}

impl ReadBufs {
    fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0; RBUF_INITIAL])
    }

    fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if buf.len() == RBUF_INITIAL && free.len() < RBUF_KEEP {
            free.push(buf);
        }
    }
}

impl Ctx {
    /// A single-shard context with no executors around it: the whole cache in this thread.
    /// For embedding the protocol engine, and for tests that drive a [`Session`] directly.
    pub fn standalone(mut config: crate::config::Config) -> Ctx {
        config.threads = 1;
        let shared = Shared::new(config);
        Ctx {
            shard: Rc::new(Shard::new(&shared, 0, 1)),
            mesh: None,
            limits: protocol::Limits::from_config(&shared.config),
            wbufs: None,
            hs_queue: None,
            rbufs: ReadBufs::default(),
            stop: Rc::default(),
            latency: None,
            shared,
        }
    }
}

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
    remote: Vec<Vec<Keyed<Vec<u8>>>>,
    pending: usize,
    /// Requests of this pass (command class, when parsed), while service time is recorded.
    timings: Vec<(u8, std::time::Instant)>,
}

impl Output {
    /// An empty output for `n` shards.
    pub fn new(n: usize) -> Self {
        Output {
            remote: (0..n).map(|_| Vec::new()).collect(),
            ..Default::default()
        }
    }

    /// Queues `op` for shard `owner`; its reply will take this place in the output.
    pub(crate) fn push_remote(&mut self, owner: usize, op: Keyed<Vec<u8>>, noreply: bool) {
        if self.seg_start < self.out.len() {
            self.segs.push(Seg::Local(self.seg_start..self.out.len()));
        }
        self.seg_start = self.out.len();
        let idx = self.remote[owner].len();
        self.remote[owner].push(op);
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

/// What the connection should do after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Write the output, then read more input.
    Read,
    /// Write the output, then run another pass: complete requests are still buffered.
    Again,
    /// Write the output, then close (quit, junk input, shutdown).
    Close,
}

/// Most output one pass builds before it is written (pipelines of big values).
const PASS_OUTPUT_MAX: usize = 256 * 1024;

/// One connection's input state.
#[derive(Debug)]
pub struct Session {
    /// Input bytes; `rbuf[start..end]` is unparsed.
    pub rbuf: Vec<u8>,
    /// First unparsed byte.
    pub start: usize,
    /// End of valid input.
    pub end: usize,
    /// Bytes still to discard (the data of an oversized set).
    swallow: usize,
    /// Connection number for `-vv` logs.
    pub id: u64,
    /// Requests parsed so far (errors included): `idle_timeout` counts from the last one.
    pub requests: u64,
}

/// Initial (and idle) read buffer size.
pub const RBUF_INITIAL: usize = 16 * 1024;

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A fresh session.
    pub fn new() -> Self {
        Session {
            rbuf: Vec::new(),
            start: 0,
            end: 0,
            swallow: 0,
            id: 0,
            requests: 0,
        }
    }

    /// Whether no unparsed input is buffered.
    pub fn is_drained(&self) -> bool {
        self.start == self.end
    }

    /// Gives the read buffer back to `bufs` when nothing is buffered.
    pub fn release(&mut self, bufs: &ReadBufs) {
        if self.start == self.end && !self.rbuf.is_empty() {
            self.start = 0;
            self.end = 0;
            bufs.give(std::mem::take(&mut self.rbuf));
        }
    }

    /// Appends input, taking a buffer from `bufs` if the session has none.
    pub fn feed_from(&mut self, bufs: &ReadBufs, bytes: &[u8]) {
        if self.rbuf.is_empty() {
            self.rbuf = bufs.take();
        }
        self.feed(bytes);
    }

    /// The free space to read into, after making room (compacting or growing).
    pub fn read_space(&mut self) -> &mut [u8] {
        if self.rbuf.is_empty() {
            self.rbuf = vec![0; RBUF_INITIAL];
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.rbuf.len() > RBUF_INITIAL {
                // Give back what a large request made us grow to.
                self.rbuf.truncate(RBUF_INITIAL);
                self.rbuf.shrink_to_fit();
            }
        } else if self.start > 0 && self.end == self.rbuf.len() {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.rbuf.len() {
            let grown = self.rbuf.len() * 2;
            self.rbuf.resize(grown, 0);
        }
        &mut self.rbuf[self.end..]
    }

    /// Appends input (tests; the socket path reads into [`Session::read_space`]).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut off = 0;
        while off < bytes.len() {
            let space = self.read_space();
            let n = space.len().min(bytes.len() - off);
            space[..n].copy_from_slice(&bytes[off..off + n]);
            self.end += n;
            off += n;
        }
    }

    /// Feeds `bytes` and serves every complete request, synchronously, with a context that
    /// has no mesh ([`Ctx::standalone`]): the replies are appended to `out`; true if the
    /// session asked to close. For embedding the protocol engine, tests and fuzzing.
    pub fn feed_standalone(&mut self, ctx: &Ctx, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        use futures_lite::future::block_on;
        self.feed(bytes);
        let mut output = Output::new(ctx.shard.n);
        loop {
            let next = block_on(self.process(ctx, &mut output));
            // Without a mesh nothing is remote: resolving only lays out local replies.
            let resolved = block_on(output.resolve(ctx.mesh.as_deref()));
            out.extend_from_slice(&output.out);
            output.clear();
            match (next, resolved) {
                (_, Err(_)) | (Next::Close, _) => return true,
                (Next::Read, _) => return false,
                (Next::Again, _) => {}
            }
        }
    }

    /// Handles the buffered requests; replies go to `output`.
    pub async fn process(&mut self, ctx: &Ctx, output: &mut Output) -> Next {
        let mut handled = 0;
        loop {
            if self.swallow > 0 {
                let k = self.swallow.min(self.end - self.start);
                self.start += k;
                self.swallow -= k;
                if self.swallow > 0 {
                    return Next::Read;
                }
            }
            if self.start == self.end {
                return Next::Read;
            }
            // memcached's -R: requests one connection may run before others get a turn.
            if handled >= ctx.shared.config.reqs_per_event as usize
                || output.out.len() >= PASS_OUTPUT_MAX
            {
                return Next::Again;
            }
            let buf = &self.rbuf[self.start..self.end];
            let parsed = protocol::text::parse(buf, &ctx.limits);
            if ctx.shared.verbose() > 1 {
                cmd::dispatch::log_command(self.id, buf, &parsed);
            }
            match parsed {
                Parsed::Incomplete => return Next::Read,
                Parsed::Close => {
                    ctx.shard.stats.protocol_closes.incr();
                    if ctx.shared.verbose() > 0 {
                        eprintln!(
                            "<{} closing: junk input (no newline in a line's first {} bytes, a line \
                             past read_buf_max, or HTTP)",
                            self.id, ctx.limits.max_line
                        );
                    }
                    return Next::Close;
                }
                Parsed::Error {
                    consumed,
                    reply,
                    noreply,
                    swallow,
                } => {
                    ctx.shard.stats.protocol_errors.incr();
                    self.requests += 1;
                    if !noreply {
                        output.out.extend_from_slice(reply.bytes());
                    }
                    self.start += consumed;
                    self.swallow = swallow;
                }
                Parsed::Done {
                    consumed,
                    req,
                    swallow,
                } => {
                    self.requests += 1;
                    if ctx.latency.is_some() {
                        output
                            .timings
                            .push((cmd::dispatch::class(&req), std::time::Instant::now()));
                    }
                    let quit = matches!(req, Command::Quit);
                    let ok = cmd::dispatch::run(req, ctx, output).await;
                    self.start += consumed;
                    self.swallow = swallow;
                    if quit || ok.is_err() {
                        return Next::Close;
                    }
                }
            }
            handled += 1;
        }
    }
}
