//! Drives one target for one round: glommio executors (one per thread), each running its
//! share of the connections as tasks, plus a progress/stall watcher on the calling thread.

use crate::cli::Stop;
use crate::hist::{self, Hist};
use crate::proto::{self, Op, Proto, Reply};
use crate::workload::{Dist, KeyGen, Rng, ValueSize};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use glommio::{LocalExecutorBuilder, Placement};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Histogram slots.
pub(crate) const GET: usize = 0;
pub(crate) const SET: usize = 1;
/// A whole connection in handshake mode: connect, handshake, one round trip.
pub(crate) const CONN: usize = 2;
pub(crate) const SLOT_NAMES: [&str; 3] = ["get", "set", "conn"];

/// What the connections do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Load,
    /// Set every key once (sequential keys split over the connections).
    Preload,
    Handshake,
}

/// Everything one round needs.
pub(crate) struct Plan {
    /// The target's name, for errors.
    pub(crate) name: String,
    /// Prefix of progress lines.
    pub(crate) label: String,
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    pub(crate) proto: Proto,
    pub(crate) kind: Kind,
    pub(crate) connections: usize,
    pub(crate) threads: usize,
    pub(crate) cpus: Option<Vec<usize>>,
    pub(crate) pipeline: usize,
    /// Send `pipeline` requests, then wait for all replies (instead of refilling).
    pub(crate) batch: bool,
    pub(crate) get_fraction: f64,
    pub(crate) keys: u64,
    pub(crate) key_prefix: Vec<u8>,
    pub(crate) dist: Dist,
    pub(crate) value_size: ValueSize,
    pub(crate) stop: Stop,
    pub(crate) rate: Option<f64>,
    pub(crate) seed: u64,
    pub(crate) timeout: Duration,
    pub(crate) quiet: bool,
}

/// Counts and histograms of one round (or, merged, of several).
pub(crate) struct Stats {
    pub(crate) hists: [Hist; 3],
    pub(crate) gets: u64,
    pub(crate) sets: u64,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) not_stored: u64,
    pub(crate) conns: u64,
    pub(crate) resumed: u64,
    pub(crate) elapsed: Duration,
    /// What the round cost the server (targets with pid=).
    pub(crate) server: Option<crate::server::ServerUse>,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            hists: [hist::new_hist(), hist::new_hist(), hist::new_hist()],
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            not_stored: 0,
            conns: 0,
            resumed: 0,
            elapsed: Duration::ZERO,
            server: None,
        }
    }

    /// Completed operations: requests, or connections in handshake mode.
    pub(crate) fn ops(&self) -> u64 {
        self.gets + self.sets + self.conns
    }

    pub(crate) fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ops() as f64 / s } else { 0.0 }
    }

    pub(crate) fn hit_ratio(&self) -> Option<f64> {
        (self.gets > 0).then(|| self.hits as f64 / self.gets as f64)
    }

    /// All operations in one histogram.
    pub(crate) fn all(&self) -> Hist {
        let mut h = hist::new_hist();
        for s in &self.hists {
            hist::merge(&mut h, s);
        }
        h
    }

    /// Adds counts and histograms; elapsed times add up too.
    pub(crate) fn merge(&mut self, o: &Stats) {
        // Server use sums only over rounds that all measured it.
        let first = self.elapsed.is_zero() && self.ops() == 0;
        for (a, b) in self.hists.iter_mut().zip(&o.hists) {
            hist::merge(a, b);
        }
        self.gets += o.gets;
        self.sets += o.sets;
        self.hits += o.hits;
        self.misses += o.misses;
        self.not_stored += o.not_stored;
        self.conns += o.conns;
        self.resumed += o.resumed;
        self.elapsed += o.elapsed;
        self.server = match (self.server, o.server) {
            (Some(a), Some(b)) => Some(crate::server::ServerUse {
                cpu_s: a.cpu_s + b.cpu_s,
                syscalls: a.syscalls.zip(b.syscalls).map(|(x, y)| x + y),
            }),
            _ if first => o.server,
            _ => None,
        };
    }
}

/// Shared by all executors of a round and the watcher.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    done: AtomicU64,
    gets: AtomicU64,
    hits: AtomicU64,
    finished: AtomicUsize,
    abort: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, e: String) {
        if let Ok(mut g) = self.error.lock() {
            g.get_or_insert(e);
        }
        self.abort.store(true, Ordering::Relaxed);
    }
}

/// Received plaintext not yet parsed.
struct RxBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RxBuf {
    fn new() -> RxBuf {
        RxBuf {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: compacts, or doubles when a reply is bigger than the buffer.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        &mut self.buf[self.end..]
    }
}

fn closed_error(what: &str) -> String {
    format!("the server closed the connection {what}")
}

struct Conn {
    stream: TcpStream,
    tls: Option<Box<ClientConnection>>,
    rx: RxBuf,
    /// TLS only: raw bytes read from the socket.
    raw: Vec<u8>,
    /// Bytes for the socket.
    tx: Vec<u8>,
    tx_off: usize,
    /// TLS only: plaintext to encrypt into `tx`.
    ptx: Vec<u8>,
}

impl Conn {
    fn new(
        stream: TcpStream,
        tls: Option<&(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Result<Conn, String> {
        let tls = match tls {
            Some((cfg, name)) => {
                let mut c = ClientConnection::new(cfg.clone(), name.clone())
                    .map_err(|e| format!("TLS: {e}"))?;
                c.set_buffer_limit(None);
                Some(Box::new(c))
            }
            None => None,
        };
        let raw = if tls.is_some() {
            vec![0; 64 * 1024]
        } else {
            Vec::new()
        };
        Ok(Conn {
            stream,
            tls,
            rx: RxBuf::new(),
            raw,
            tx: Vec::with_capacity(64 * 1024),
            tx_off: 0,
            ptx: Vec::new(),
        })
    }

    /// Where request bytes go: straight to the socket buffer, or to the TLS plaintext.
    fn out(&mut self) -> &mut Vec<u8> {
        if self.tls.is_some() {
            &mut self.ptx
        } else {
            &mut self.tx
        }
    }

    /// Encrypts pending plaintext (and any TLS message rustls wants to send) into `tx`.
    fn seal(&mut self) -> Result<(), String> {
        if let Some(tls) = self.tls.as_mut() {
            if !self.ptx.is_empty() {
                tls.writer()
                    .write_all(&self.ptx)
                    .map_err(|e| format!("TLS write: {e}"))?;
                self.ptx.clear();
            }
            while tls.wants_write() {
                tls.write_tls(&mut self.tx)
                    .map_err(|e| format!("TLS write: {e}"))?;
            }
        }
        Ok(())
    }

    /// Decrypts `n` raw bytes into `rx`.
    fn open(&mut self, n: usize) -> Result<(), String> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        let mut rd = &self.raw[..n];
        while !rd.is_empty() {
            tls.read_tls(&mut rd)
                .map_err(|e| format!("TLS read: {e}"))?;
            tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
            loop {
                match tls.reader().read(self.rx.spare()) {
                    Ok(0) => return Err(closed_error("(TLS close_notify)")),
                    Ok(k) => self.rx.end += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("TLS read: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Sends what is pending and, if `read`, receives what arrives, until some progress is
    /// made or `wake_at` passes. Returns whether bytes were received.
    async fn io(&mut self, read: bool, wake_at: Option<Instant>) -> Result<bool, String> {
        self.seal()?;
        if !read && self.tx.is_empty() && wake_at.is_none() {
            return Ok(false);
        }
        let mut timer = wake_at.map(|t| Timer::new(t.saturating_duration_since(Instant::now())));
        let is_tls = self.tls.is_some();
        let n = poll_fn(|cx| {
            let mut progressed = false;
            while self.tx_off < self.tx.len() {
                match Pin::new(&mut self.stream).poll_write(cx, &self.tx[self.tx_off..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(closed_error("while we sent"))),
                    Poll::Ready(Ok(k)) => {
                        self.tx_off += k;
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("send: {e}"))),
                    Poll::Pending => break,
                }
            }
            if self.tx_off == self.tx.len() {
                self.tx.clear();
                self.tx_off = 0;
            }
            if read {
                let buf = if is_tls {
                    &mut self.raw[..]
                } else {
                    self.rx.spare()
                };
                match Pin::new(&mut self.stream).poll_read(cx, buf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(closed_error(""))),
                    Poll::Ready(Ok(k)) => return Poll::Ready(Ok(k)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(format!("receive: {e}"))),
                    Poll::Pending => {}
                }
            }
            if let Some(t) = timer.as_mut()
                && Pin::new(t).poll(cx).is_ready()
            {
                progressed = true;
            }
            if progressed {
                Poll::Ready(Ok(0))
            } else {
                Poll::Pending
            }
        })
        .await?;
        if n > 0 {
            if is_tls {
                self.open(n)?;
            } else {
                self.rx.end += n;
            }
        }
        Ok(n > 0)
    }

    async fn handshake(&mut self) -> Result<(), String> {
        loop {
            let Some(tls) = self.tls.as_ref() else {
                return Ok(());
            };
            if !tls.is_handshaking() {
                // The client's last flight goes out with the first request.
                return Ok(());
            }
            let read = tls.wants_read();
            self.io(read, None).await.map_err(|e| {
                let hint = if e.contains("InvalidContentType") {
                    " (is this a TLS listener? use tcp:// for plaintext)"
                } else {
                    ""
                };
                format!("TLS handshake: {e}{hint}")
            })?;
        }
    }

    fn resumed(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.handshake_kind() == Some(HandshakeKind::Resumed))
    }
}

async fn connect(plan: &Plan, linger0: bool) -> Result<Conn, String> {
    let stream = if linger0 {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(
            Domain::for_address(plan.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(|e| format!("socket: {e}"))?;
        s.set_nonblocking(true)
            .map_err(|e| format!("socket: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("socket: {e}"))?;
        // Close with RST: no TIME_WAIT pile-up when opening thousands of connections.
        s.set_linger(Some(Duration::ZERO))
            .map_err(|e| format!("socket: {e}"))?;
        match s.connect(&plan.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(format!("connect to {}: {e}", plan.addr)),
        }
        TcpStream::from(s)
    } else {
        let s = TcpStream::connect(plan.addr)
            .await
            .map_err(|e| format!("connect to {}: {e}", plan.addr))?;
        s.set_nodelay(true).map_err(|e| format!("socket: {e}"))?;
        s
    };
    let mut c = Conn::new(stream, plan.tls.as_ref())?;
    c.handshake().await?;
    Ok(c)
}

/// Per-connection workload state.
struct Load {
    rng: Rng,
    keys: KeyGen,
    /// Requests this connection may still send (request-count mode and preload).
    quota: Option<u64>,
    /// Open loop: seconds between this connection's requests.
    interval: Option<Duration>,
    /// When the round started.
    start: Instant,
    /// Intended time of the first request (open loop; phases spread over the interval).
    first_send: Instant,
}

fn value_bytes(max: usize) -> Rc<Vec<u8>> {
    Rc::new((0..max).map(|i| b'a' + (i % 26) as u8).collect())
}

/// The closed- or open-loop request loop of one kept-open connection.
async fn load_loop(
    mut c: Conn,
    plan: &Plan,
    mut w: Load,
    value: Rc<Vec<u8>>,
    stats: Rc<RefCell<Stats>>,
    shared: &Shared,
) -> Result<(), String> {
    let start = w.start;
    let depth = if plan.kind == Kind::Preload {
        plan.pipeline.max(32)
    } else {
        plan.pipeline
    };
    let end = match plan.stop {
        Stop::Time(d) if plan.kind == Kind::Load => Some(start + d),
        _ => None,
    };
    let mut inflight: VecDeque<(Op, Instant)> = VecDeque::with_capacity(depth);
    let mut next_send = w.first_send;
    let mut exhausted = false;
    let prefix = plan.key_prefix.as_slice();
    loop {
        if shared.abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now = Instant::now();
        let stopping = exhausted || end.is_some_and(|e| now >= e);
        let mut issued = 0u64;
        // Batch mode (closed loop): the next write waits for the whole window.
        let may_issue = !(plan.batch && w.interval.is_none() && !inflight.is_empty());
        if !stopping && may_issue {
            while inflight.len() < depth {
                if w.quota == Some(0) {
                    exhausted = true;
                    break;
                }
                let t0 = match w.interval {
                    Some(iv) => {
                        if next_send > now {
                            break;
                        }
                        let t = next_send;
                        next_send += iv;
                        t
                    }
                    None => now,
                };
                let op = if plan.kind == Kind::Preload || w.rng.next_f64() >= plan.get_fraction {
                    Op::Set
                } else {
                    Op::Get
                };
                let Some(key) = w.keys.next(&mut w.rng) else {
                    exhausted = true;
                    break;
                };
                let len = if op == Op::Set {
                    plan.value_size.pick(&mut w.rng)
                } else {
                    0
                };
                proto::encode(plan.proto, op, prefix, key, &value[..len], c.out());
                inflight.push_back((op, t0));
                if let Some(q) = w.quota.as_mut() {
                    *q -= 1;
                }
                issued += 1;
            }
        }
        if issued > 0 {
            shared.sent.fetch_add(issued, Ordering::Relaxed);
        }
        if inflight.is_empty() {
            if stopping || exhausted {
                // Flush anything rustls still wants to send, then we are done.
                c.io(false, None).await?;
                return Ok(());
            }
            // Open loop, ahead of schedule: wait for the next send time.
            c.io(false, Some(next_send)).await?;
            continue;
        }
        let wake = match w.interval {
            Some(_) if !stopping && inflight.len() < depth => Some(next_send),
            _ => None,
        };
        let got = c.io(true, wake).await?;
        if got {
            let now = Instant::now();
            let (mut gets, mut hits, mut done) = (0u64, 0u64, 0u64);
            let mut st = stats.borrow_mut();
            loop {
                let Some(&(op, t0)) = inflight.front() else {
                    if !c.rx.data().is_empty() {
                        return Err(format!(
                            "unexpected bytes from the server with no request outstanding: `{}`",
                            String::from_utf8_lossy(&c.rx.data()[..c.rx.data().len().min(80)])
                        ));
                    }
                    break;
                };
                let Some((reply, n)) = proto::parse(plan.proto, op, c.rx.data())? else {
                    break;
                };
                c.rx.consume(n);
                inflight.pop_front();
                let ns = now.saturating_duration_since(t0).as_nanos() as u64;
                done += 1;
                match reply {
                    Reply::Hit { .. } => {
                        st.gets += 1;
                        st.hits += 1;
                        gets += 1;
                        hits += 1;
                        hist::record(&mut st.hists[GET], ns);
                    }
                    Reply::Miss => {
                        st.gets += 1;
                        st.misses += 1;
                        gets += 1;
                        hist::record(&mut st.hists[GET], ns);
                    }
                    Reply::Stored | Reply::NotStored => {
                        st.sets += 1;
                        if reply == Reply::NotStored {
                            st.not_stored += 1;
                        }
                        hist::record(&mut st.hists[SET], ns);
                    }
                    Reply::Hello => {}
                }
            }
            drop(st);
            if done > 0 {
                shared.done.fetch_add(done, Ordering::Relaxed);
                shared.gets.fetch_add(gets, Ordering::Relaxed);
                shared.hits.fetch_add(hits, Ordering::Relaxed);
            }
        }
        glommio::yield_if_needed().await;
    }
}

/// Handshake mode: connect, (TLS handshake), one version/mn round trip, close; repeat.
async fn handshake_loop(
    plan: &Plan,
    mut quota: Option<u64>,
    stats: Rc<RefCell<Stats>>,
    shared: &Shared,
    start: Instant,
) -> Result<(), String> {
    let end = match plan.stop {
        Stop::Time(d) => Some(start + d),
        Stop::Requests(_) => None,
    };
    loop {
        if shared.abort.load(Ordering::Relaxed)
            || quota == Some(0)
            || end.is_some_and(|e| Instant::now() >= e)
        {
            return Ok(());
        }
        if let Some(q) = quota.as_mut() {
            *q -= 1;
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let mut c = connect(plan, true).await?;
        proto::encode(plan.proto, Op::Hello, b"", 0, b"", c.out());
        loop {
            c.io(true, None).await?;
            match proto::parse(plan.proto, Op::Hello, c.rx.data())? {
                Some(_) => break,
                None => continue,
            }
        }
        let ns = t0.elapsed().as_nanos() as u64;
        let resumed = c.resumed();
        drop(c);
        {
            let mut st = stats.borrow_mut();
            st.conns += 1;
            st.resumed += u64::from(resumed);
            hist::record(&mut st.hists[CONN], ns);
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        glommio::yield_if_needed().await;
    }
}

fn conn_seed(seed: u64, conn: usize) -> u64 {
    seed ^ (conn as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Share of `total` for connection `i` of `n`.
fn share(total: u64, i: usize, n: usize) -> u64 {
    total / n as u64 + u64::from((i as u64) < total % n as u64)
}

async fn executor_main(
    plan: Arc<Plan>,
    ids: Vec<usize>,
    shared: Arc<Shared>,
    barrier: Arc<Barrier>,
) -> Stats {
    let stats = Rc::new(RefCell::new(Stats::new()));
    let plan_ref: &Plan = &plan;
    // Wake the reactor every few milliseconds while the round runs. Under load, glommio 0.9
    // occasionally parks with a socket readiness it never delivers (all connections wait
    // with replies sitting in their receive queues); a periodic timer makes it look at its
    // rings again, so such a lost wake-up costs a few milliseconds instead of the run.
    let ticking = Rc::new(std::cell::Cell::new(true));
    let ticker = {
        let ticking = ticking.clone();
        glommio::spawn_local(async move {
            while ticking.get() {
                Timer::new(Duration::from_millis(5)).await;
            }
        })
    };
    let n = plan.connections;
    if plan.kind == Kind::Handshake {
        barrier.wait();
        let start = Instant::now();
        let tasks: Vec<_> = ids
            .iter()
            .map(|&i| {
                let quota = match plan.stop {
                    Stop::Requests(t) => Some(share(t, i, n)),
                    Stop::Time(_) => None,
                };
                let (plan, stats, shared) = (plan.clone(), stats.clone(), shared.clone());
                glommio::spawn_local(async move {
                    if let Err(e) = handshake_loop(&plan, quota, stats, &shared, start).await {
                        shared.fail(format!("{}: {e}", plan.name));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        stats.borrow_mut().elapsed = start.elapsed();
    } else {
        // Connect (and handshake) everything before the clock starts.
        let connecting: Vec<_> = ids
            .iter()
            .map(|_| {
                let plan = plan.clone();
                glommio::spawn_local(async move { connect(&plan, false).await })
            })
            .collect();
        let mut conns = Vec::with_capacity(ids.len());
        for t in connecting {
            match t.await {
                Ok(c) => conns.push(c),
                Err(e) => shared.fail(format!("{}: {e}", plan_ref.name)),
            }
        }
        barrier.wait();
        if shared.abort.load(Ordering::Relaxed) {
            ticking.set(false);
            ticker.await;
            shared.finished.fetch_add(1, Ordering::Relaxed);
            return Stats::new();
        }
        let start = Instant::now();
        let value = value_bytes(plan.value_size.max);
        let mut tasks = Vec::with_capacity(conns.len());
        for (c, &i) in conns.into_iter().zip(&ids) {
            let mut rng = Rng::new(conn_seed(plan.seed, i));
            let (keys, quota) = if plan.kind == Kind::Preload {
                (
                    KeyGen::Sequential {
                        next: i as u64,
                        step: n as u64,
                        end: plan.keys,
                    },
                    None,
                )
            } else {
                let quota = match plan.stop {
                    Stop::Requests(t) => Some(share(t, i, n)),
                    Stop::Time(_) => None,
                };
                match KeyGen::new(&plan.dist, plan.keys) {
                    Ok(k) => (k, quota),
                    Err(e) => {
                        shared.fail(e);
                        break;
                    }
                }
            };
            // Open loop: each connection sends every connections/rate seconds, phases spread.
            let interval = match plan.rate {
                Some(r) if plan.kind == Kind::Load => Some(Duration::from_secs_f64(n as f64 / r)),
                _ => None,
            };
            let first_send = match interval {
                Some(iv) => start + iv.mul_f64(rng.next_f64()),
                None => start,
            };
            let w = Load {
                rng,
                keys,
                quota,
                interval,
                start,
                first_send,
            };
            let (plan, stats, shared, value) =
                (plan.clone(), stats.clone(), shared.clone(), value.clone());
            tasks.push(glommio::spawn_local(async move {
                if let Err(e) = load_loop(c, &plan, w, value, stats, &shared).await {
                    shared.fail(format!("{}: {e}", plan.name));
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        stats.borrow_mut().elapsed = start.elapsed();
    }
    ticking.set(false);
    ticker.await;
    shared.finished.fetch_add(1, Ordering::Relaxed);
    Rc::try_unwrap(stats)
        .map(RefCell::into_inner)
        .unwrap_or_else(|_| Stats::new())
}

/// Runs one round; the progress line goes to stderr unless quiet.
pub(crate) fn run(plan: Plan) -> Result<Stats, String> {
    let plan = Arc::new(plan);
    let shared = Arc::new(Shared::default());
    let threads = plan.threads;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let ids: Vec<usize> = (t..plan.connections).step_by(threads).collect();
        let placement = match &plan.cpus {
            Some(c) if !c.is_empty() => Placement::Fixed(c[t % c.len()]),
            _ => Placement::Unbound,
        };
        let (p, s, b) = (plan.clone(), shared.clone(), barrier.clone());
        let spawned = LocalExecutorBuilder::new(placement)
            .name("tessera-bench")
            .io_memory(64 * 1024)
            .spawn(move || executor_main(p, ids, s, b));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.fail(format!("cannot start client thread {t}: {e}"));
                shared.finished.fetch_add(1, Ordering::Relaxed);
                // Stand in at the barrier for the thread that did not start.
                let b = barrier.clone();
                std::thread::spawn(move || {
                    b.wait();
                });
            }
        }
    }
    barrier.wait();
    let start = Instant::now();
    watch(&plan, &shared, start);
    let mut total = Stats::new();
    let mut elapsed = Duration::ZERO;
    for h in handles {
        match h.join() {
            Ok(s) => {
                elapsed = elapsed.max(s.elapsed);
                total.merge(&s);
            }
            Err(e) => shared.fail(format!("client thread failed: {e}")),
        }
    }
    total.elapsed = elapsed;
    if let Some(e) = shared.error.lock().ok().and_then(|g| g.clone()) {
        return Err(e);
    }
    Ok(total)
}

/// Prints progress every second until the executors finish; aborts on a stall.
fn watch(plan: &Plan, shared: &Shared, start: Instant) {
    let mut last_print = start;
    let mut last_done = 0u64;
    let mut last_progress = start;
    let unit = if plan.kind == Kind::Handshake {
        "conn/s"
    } else {
        "ops/s"
    };
    while shared.finished.load(Ordering::Relaxed) < plan.threads {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        let done = shared.done.load(Ordering::Relaxed);
        let sent = shared.sent.load(Ordering::Relaxed);
        if done != last_done || sent == done {
            last_progress = now;
        }
        if now.duration_since(last_progress) >= plan.timeout
            && !shared.abort.load(Ordering::Relaxed)
        {
            eprintln!(
                "tessera-bench: error: {}: no reply for {:?} with {} requests outstanding; \
                 giving up",
                plan.name,
                plan.timeout,
                sent.saturating_sub(done)
            );
            std::process::exit(1);
        }
        if now.duration_since(last_print) >= Duration::from_secs(1) {
            if !plan.quiet {
                let secs = now.duration_since(last_print).as_secs_f64();
                let rate = (done - last_done.min(done)) as f64 / secs;
                let avg = done as f64 / now.duration_since(start).as_secs_f64();
                let gets = shared.gets.load(Ordering::Relaxed);
                let hits = shared.hits.load(Ordering::Relaxed);
                let hit = if gets > 0 {
                    format!("  hit {:.1}%", 100.0 * hits as f64 / gets as f64)
                } else {
                    String::new()
                };
                eprintln!(
                    "  {} {:>4.0}s  {:>10.0} {unit}  (avg {:.0}){hit}",
                    plan.label,
                    now.duration_since(start).as_secs_f64(),
                    rate,
                    avg
                );
            }
            last_print = now;
            last_done = done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, n) in [(10u64, 3usize), (2, 5), (1_000_003, 50)] {
            let s: u64 = (0..n).map(|i| share(total, i, n)).sum();
            assert_eq!(s, total);
        }
    }

    #[test]
    fn rx_buffer_compacts_and_grows() {
        let mut rx = RxBuf::new();
        let cap = rx.buf.len();
        rx.end = cap;
        rx.consume(10);
        assert_eq!(rx.spare().len(), 10);
        assert_eq!(rx.data().len(), cap - 10);
        rx.end = cap;
        rx.start = 0;
        assert_eq!(rx.spare().len(), cap);
        assert_eq!(rx.buf.len(), 2 * cap);
    }
}
