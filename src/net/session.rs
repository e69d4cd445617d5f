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

use crate::protocol::{self, Parsed, Reply, Request, StatsKind};
use crate::server::{MEMCACHED_VERSION, Shared};
use crate::shard::mesh::{BatchReply, Mesh, Payload, PeerGone};
use crate::shard::meta::MetaOp;
use crate::shard::{KeyOp, Shard, hash_key, key_ops, owner};

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
    remote: Vec<Vec<KeyOp<Vec<u8>>>>,
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

    fn push_remote(&mut self, owner: usize, op: KeyOp<Vec<u8>>, noreply: bool) {
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

/// `-vv`: one line per command received, as memcached prints them (`<ID command`).
fn log_command(id: u64, buf: &[u8], parsed: &Parsed<'_>) {
    if matches!(parsed, Parsed::Incomplete) {
        return;
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let shown = &line[..line.len().min(256)];
    eprintln!("<{id} {}", String::from_utf8_lossy(shown).escape_debug());
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
                log_command(self.id, buf, &parsed);
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
                            .push((cmd_class(&req), std::time::Instant::now()));
                    }
                    let quit = req == Request::Quit;
                    let ok = handle(req, ctx, output).await;
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

/// The service-time class of a request: an index into [`crate::stats::CMD_CLASSES`].
fn cmd_class(req: &Request<'_>) -> u8 {
    use crate::protocol::meta::MetaCmd;
    match req {
        Request::Get { exptime: None, .. } => 0,
        Request::Store { .. } | Request::StoreTooLarge { .. } => 1,
        Request::Delete { .. } => 2,
        Request::Arith { .. } => 3,
        Request::Touch { .. } | Request::Get { .. } => 4,
        Request::Meta(m) => match m.cmd {
            MetaCmd::Get => 0,
            MetaCmd::Set => 1,
            MetaCmd::Delete => 2,
            MetaCmd::Arith => 3,
            MetaCmd::Debug => 5,
        },
        _ => 5,
    }
}

/// Routes a keyed operation: served here if this shard owns the key, else queued for its owner.
fn route(op: KeyOp<&[u8]>, noreply: bool, ctx: &Ctx, output: &mut Output) {
    let hash = hash_key(op.key());
    let o = owner(hash, ctx.shard.n);
    if o == ctx.shard.id || ctx.mesh.is_none() {
        let mark = output.out.len();
        ctx.shard.exec_hashed(&op, hash, &mut output.out);
        if noreply {
            output.out.truncate(mark);
        }
    } else {
        ctx.shard.stats.forwarded_ops.incr();
        output.push_remote(o, op.to_owned_op(), noreply);
    }
}

/// Handles one request.
async fn handle(req: Request<'_>, ctx: &Ctx, output: &mut Output) -> Result<(), PeerGone> {
    let out_reply = |output: &mut Output, bytes: &[u8], noreply: bool| {
        if !noreply {
            output.out.extend_from_slice(bytes);
        }
    };
    match req {
        Request::Get { .. }
        | Request::Store { .. }
        | Request::StoreTooLarge { .. }
        | Request::Delete { .. }
        | Request::Arith { .. }
        | Request::Touch { .. } => {
            key_ops(&req, |op, noreply| route(op, noreply, ctx, output));
            if matches!(req, Request::Get { .. }) {
                output.out.extend_from_slice(b"END\r\n");
            }
        }
        Request::FlushAll { delay, noreply } => {
            ctx.shard.stats.cmd_flush.incr();
            if ctx.shared.config.disable_flush_all {
                out_reply(output, b"CLIENT_ERROR flush_all not allowed\r\n", noreply);
                return Ok(());
            }
            // Barrier: what the pipeline sent before flush_all happens before it.
            output.resolve(ctx.mesh.as_deref()).await?;
            ctx.shard.flush(delay);
            if let Some(mesh) = &ctx.mesh {
                mesh.flush_others(delay).await?;
            }
            out_reply(output, b"OK\r\n", noreply);
        }
        Request::Version => {
            output.out.extend_from_slice(b"VERSION ");
            output.out.extend_from_slice(MEMCACHED_VERSION.as_bytes());
            output.out.extend_from_slice(b"\r\n");
        }
        Request::Verbosity { level, noreply } => {
            ctx.shared
                .verbosity
                .store(level.min(2), std::sync::atomic::Ordering::Relaxed);
            out_reply(output, b"OK\r\n", noreply);
        }
        Request::Quit => {}
        Request::Stats(kind) => {
            output.resolve(ctx.mesh.as_deref()).await?;
            match kind {
                StatsKind::General => crate::stats::render_general(&ctx.shared, &mut output.out),
                StatsKind::Settings => crate::stats::render_settings(&ctx.shared, &mut output.out),
                StatsKind::Reset => {
                    ctx.shared.stats.reset();
                    output.out.extend_from_slice(b"RESET\r\n");
                }
                StatsKind::Items => crate::stats::render_items(&ctx.shared, &mut output.out),
                StatsKind::Slabs => crate::stats::render_slabs(&ctx.shared, &mut output.out),
                StatsKind::Conns => crate::stats::render_conns(&ctx.shared, &mut output.out),
                StatsKind::Other => output.out.extend_from_slice(Reply::Error.bytes()),
            }
        }
        Request::MetaNoop => output.out.extend_from_slice(b"MN\r\n"),
        Request::Meta(m) => {
            let mut buf = [0u8; protocol::KEY_MAX_LENGTH];
            let key = if m.flags.base64 {
                // The parser checked that it decodes.
                match protocol::meta::base64_decode(m.key, &mut buf) {
                    Some(n) => &buf[..n],
                    None => {
                        output
                            .out
                            .extend_from_slice(b"CLIENT_ERROR error decoding key\r\n");
                        return Ok(());
                    }
                }
            } else {
                m.key
            };
            if m.too_large {
                // memcached drops the old item on an oversized ms, whatever the mode.
                route(
                    KeyOp::TooLarge {
                        mode: crate::store::StoreMode::Set,
                        key,
                    },
                    false,
                    ctx,
                    output,
                );
            } else {
                route(
                    KeyOp::Meta(MetaOp {
                        cmd: m.cmd,
                        key,
                        tokens: m.tokens,
                        data: m.data,
                        flags: m.flags,
                    }),
                    false,
                    ctx,
                    output,
                );
            }
        }
        Request::CacheMemlimit { mb, noreply } => {
            let per_shard = (mb as u64 * 1024 * 1024 / ctx.shard.n as u64) as usize;
            ctx.shared
                .shard_mem_limit
                .store(per_shard, std::sync::atomic::Ordering::Relaxed);
            output.resolve(ctx.mesh.as_deref()).await?;
            let now = ctx.shard.clock.now();
            ctx.shard.store.borrow_mut().set_mem_limit(per_shard, now);
            if let Some(mesh) = &ctx.mesh {
                mesh.memlimit_others(per_shard).await?;
            }
            if ctx.shared.verbose() > 0 {
                eprintln!("tessera: maxbytes adjusted to {mb}m");
            }
            out_reply(output, b"OK\r\n", noreply);
        }
        Request::Shutdown { graceful } => {
            if !ctx.shared.config.enable_shutdown {
                output
                    .out
                    .extend_from_slice(b"ERROR: shutdown not enabled\r\n");
                return Ok(());
            }
            let Some(graceful) = graceful else {
                output
                    .out
                    .extend_from_slice(b"CLIENT_ERROR invalid shutdown mode\r\n");
                return Ok(());
            };
            if graceful {
                // memcached raises SIGUSR1: the same graceful shutdown as a signal. This
                // connection is between requests now, so it closes with the others.
                ctx.shared.begin_shutdown("shutdown graceful command");
                return Ok(());
            }
            eprintln!("tessera: shutdown command received; exiting");
            crate::runtime::exit_now(&ctx.shared, 0);
        }
        Request::RefreshCerts { noreply } => match &ctx.shared.tls {
            None => out_reply(output, b"SERVER_ERROR TLS is not enabled (-Z)\r\n", noreply),
            Some(tls) => match tls.reload() {
                Ok(()) => {
                    if ctx.shared.verbose() > 0 {
                        eprintln!("tessera: certificates reloaded (refresh_certs)");
                    }
                    out_reply(output, b"OK\r\n", noreply)
                }
                Err(e) => {
                    eprintln!("tessera: refresh_certs failed, keeping the old certificate: {e}");
                    // One line: no CR/LF from the message can break the reply framing.
                    let line = format!("SERVER_ERROR {}\r\n", e.replace(['\r', '\n'], " "));
                    out_reply(output, line.as_bytes(), noreply)
                }
            },
        },
        Request::ConfigGet { key } => config_get(key, ctx, output),
        Request::ConfigSet { key, data, noreply } => {
            let reply = config_set(key, data, ctx);
            out_reply(output, &reply, noreply);
        }
    }
    Ok(())
}

const UNKNOWN_CONFIG_KEY: &[u8] = b"CLIENT_ERROR unknown config key (only 'cluster')\r\n";

/// `config get cluster`: ElastiCache's auto-discovery reply.
fn config_get(key: &[u8], ctx: &Ctx, output: &mut Output) {
    // (The parser knows `config` only when a list is configured or may be set.)
    ctx.shard.stats.cmd_config_get.incr();
    if key != b"cluster" {
        output.out.extend_from_slice(UNKNOWN_CONFIG_KEY);
        return;
    }
    match ctx.shared.cluster.get() {
        Some(c) => output.out.extend_from_slice(&c.reply()),
        None => output.out.extend_from_slice(
            b"SERVER_ERROR no cluster node list yet (config set cluster, or [cluster] in the \
              config file)\r\n",
        ),
    }
}

/// `config set cluster`: replaces the node list (with a higher version); the reply line.
fn config_set(key: &[u8], data: &[u8], ctx: &Ctx) -> Vec<u8> {
    use crate::cluster::SetError;
    if !ctx.shared.config.cluster_config_set {
        return b"CLIENT_ERROR config set not allowed (start with -o cluster_config_set)\r\n"
            .to_vec();
    }
    ctx.shard.stats.cmd_config_set.incr();
    if key != b"cluster" {
        return UNKNOWN_CONFIG_KEY.to_vec();
    }
    let line = match ctx.shared.cluster.set(data) {
        Ok(c) => {
            let nodes: Vec<String> = c.nodes.iter().map(ToString::to_string).collect();
            eprintln!(
                "tessera: config set cluster: version {}, {} node(s): {}",
                c.version,
                c.nodes.len(),
                nodes.join(" ")
            );
            return b"STORED\r\n".to_vec();
        }
        Err(SetError::Invalid(e)) => format!("CLIENT_ERROR bad cluster config: {e}"),
        Err(SetError::Stale { given, current }) => format!(
            "CLIENT_ERROR cluster version {given} is not above the current {current} \
             (clients ignore a list whose version did not go up)"
        ),
    };
    // One line: nothing from the input can break the reply framing.
    format!("{}\r\n", line.replace(['\r', '\n'], " ")).into_bytes()
}
