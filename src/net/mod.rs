//! Listeners and the per-connection loop.
//!
//! Every executor has its own listening socket on each address (SO_REUSEPORT: the kernel
//! spreads new connections over the executors) and serves the connections it accepts from
//! start to end; only keys cross executors, never connections.
//!
//! TLS handshakes run in a task queue of their own with a small share of the executor and a
//! deadline, so a burst of handshakes (or clients that never finish one) cannot starve the
//! requests of established connections. A connection that completes its handshake continues
//! in the default queue.

pub mod session;
pub mod stop;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::config::ListenMode;
use crate::tls::conn::{HandshakeError, TlsStream};
use crate::tls::ktls::{KtlsMode, KtlsStream, SwitchError};
use session::{Ctx, Next, Output, Session};

/// A listening socket made on the main thread (so bind errors surface before executors start)
/// and handed to one executor.
#[derive(Debug)]
pub struct BoundListener {
    /// The socket, bound and listening.
    pub socket: socket2::Socket,
    /// Its address.
    pub addr: SocketAddr,
    /// What its connections speak.
    pub mode: ListenMode,
}

/// Binds `addr` with SO_REUSEPORT and the given backlog.
pub fn bind(addr: SocketAddr, backlog: i32, mode: ListenMode) -> std::io::Result<BoundListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    let addr = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("listener has no inet address"))?;
    Ok(BoundListener { socket, addr, mode })
}

/// Turns a bound socket into this executor's glommio listener.
fn into_glommio(socket: socket2::Socket) -> TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = socket.into_raw_fd();
    // Safety: `fd` was just released by `into_raw_fd`, so this listener becomes its only
    // owner; it is a bound, listening TCP socket, which is what glommio expects.
    #[allow(unsafe_code)]
    unsafe {
        TcpListener::from_raw_fd(fd)
    }
}

/// How an accepted connection is to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Plain,
    Tls {
        mtls: bool,
    },
    /// TLS if the first byte is a TLS handshake record, else plaintext.
    Either,
}

fn wire_for(mode: ListenMode, tls_on: bool) -> Wire {
    match (mode, tls_on) {
        (ListenMode::NoTls, _) | (ListenMode::Default, false) => Wire::Plain,
        (ListenMode::Default, true) => Wire::Tls { mtls: false },
        (ListenMode::Mtls, _) => Wire::Tls { mtls: true },
        (ListenMode::Permissive, _) => Wire::Either,
    }
}

/// Accepts connections on a unix domain socket (`-s`). A socket path can be bound only once,
/// so one executor accepts and serves these connections; their keys still go to their owners.
pub async fn accept_unix(path: std::path::PathBuf, mask: u32, ctx: Rc<Ctx>) {
    let listener = match glommio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            // Checked on the main thread a moment ago; failing now is a race with another
            // process. Without its only listener the server is useless: say so and stop.
            eprintln!(
                "tessera: failed to listen on unix socket {}: {e}",
                path.display()
            );
            std::process::exit(1);
        }
    };
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) =
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mask & 0o777))
        {
            eprintln!(
                "tessera: cannot set mode {mask:o} on {}: {e}",
                path.display()
            );
        }
    }
    let stop_key = ctx.stop.register();
    while let Some(accepted) = unless_stopping(&ctx, stop_key, listener.accept()).await {
        let mut stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tessera: accept on {} failed: {e}", path.display());
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = ConnSlot::take(&ctx) else {
            ctx.shard.stats.rejected_connections.incr();
            glommio::spawn_local(async move {
                let _ = stream.write_all(TOO_MANY).await;
                let _ = stream.close().await;
            })
            .detach();
            continue;
        };
        glommio::spawn_local(serve(
            Transport::Plain(Stream::Unix(stream)),
            Vec::new(),
            slot,
        ))
        .detach();
    }
    ctx.stop.unregister(stop_key);
    // New clients now fail to connect instead of waiting on a listener nobody serves.
    let _ = std::fs::remove_file(&path);
}

/// `fut`'s output, or None once this executor's shutdown has begun.
async fn unless_stopping<T>(
    ctx: &Ctx,
    stop_key: usize,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        ctx.stop.wait(stop_key).await;
        None
    })
    .await
}

/// Prepares a unix socket path on the main thread: a stale socket file is removed (as
/// memcached does), and a path that is not a socket, or a directory that does not exist or
/// is not writable, is refused before startup. (No trial bind: a client connecting to it in
/// that moment would be reset.)
pub fn check_unix_path(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    if nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_err()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("cannot create files in {}", dir.display()),
        ));
    }
    Ok(())
}

/// A taken `-c` slot, returned (and counted) when dropped, whatever path the connection took.
struct ConnSlot {
    ctx: Rc<Ctx>,
    /// Its waiter slot in the executor's [`stop::Stop`].
    stop_key: usize,
}

impl ConnSlot {
    fn take(ctx: &Rc<Ctx>) -> Option<ConnSlot> {
        if !ctx.shared.try_add_conn() {
            return None;
        }
        let st = &ctx.shard.stats;
        st.total_connections.incr();
        st.curr_connections.add(1);
        Some(ConnSlot {
            ctx: ctx.clone(),
            stop_key: ctx.stop.register(),
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.ctx.stop.unregister(self.stop_key);
        self.ctx.shard.stats.curr_connections.sub(1);
        self.ctx.shared.remove_conn();
    }
}

/// memcached's reply when `-c` is reached.
const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

/// Accepts connections forever on one listener, each served by its own task.
pub async fn accept_loop(listener: BoundListener, ctx: Rc<Ctx>) {
    let addr = listener.addr;
    let wire = wire_for(listener.mode, ctx.shared.tls.is_some());
    {
        use std::os::fd::AsRawFd;
        ctx.shared.conns.add(
            listener.socket.as_raw_fd(),
            crate::server::ConnInfo {
                addr: sock_name(&addr),
                listen_addr: None,
                state: "conn_listening",
                tls: None,
                last_cmd: Default::default(),
            },
        );
    }
    let listen_fd = {
        use std::os::fd::AsRawFd;
        listener.socket.as_raw_fd()
    };
    let listener = into_glommio(listener.socket);
    let stop_key = ctx.stop.register();
    while let Some(accepted) = unless_stopping(&ctx, stop_key, listener.accept()).await {
        let mut stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: say so, back off briefly rather than spin.
                eprintln!("tessera: accept on {addr} failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = ConnSlot::take(&ctx) else {
            ctx.shard.stats.rejected_connections.incr();
            let plain = wire == Wire::Plain;
            glommio::spawn_local(async move {
                // A TLS client could not read a plaintext line: just close it.
                if plain {
                    let _ = stream.write_all(TOO_MANY).await;
                }
                let _ = stream.close().await;
            })
            .detach();
            continue;
        };
        let _ = stream.set_nodelay(true);
        match wire {
            Wire::Plain => {
                glommio::spawn_local(serve(
                    Transport::Plain(Stream::Tcp(stream)),
                    Vec::new(),
                    slot,
                ))
                .detach();
            }
            _ => {
                let fut = handshake(stream, wire, slot);
                match ctx.hs_queue {
                    Some(q) => {
                        if let Ok(t) = glommio::spawn_local_into(fut, q) {
                            t.detach();
                        }
                    }
                    None => {
                        glommio::spawn_local(fut).detach();
                    }
                }
            }
        }
    }
    ctx.stop.unregister(stop_key);
    ctx.shared.conns.remove(listen_fd);
    // Dropping the listener closes it: the kernel refuses new connections from here on (or
    // hands them to another executor's listener while that one still runs).
}

/// A plaintext byte stream: TCP or a unix domain socket.
enum Stream {
    Tcp(TcpStream),
    Unix(glommio::net::UnixStream),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf).await,
            Stream::Unix(s) => s.read(buf).await,
        }
    }

    fn poll_read(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use futures_lite::AsyncRead;
        match self {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            Stream::Unix(s) => s.write_all(buf).await,
        }
    }

    async fn close(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.close().await,
            Stream::Unix(s) => s.close().await,
        };
    }

    fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            Stream::Unix(_) => "unix socket".into(),
        }
    }
}

/// What a connection speaks once set up.
enum Transport {
    Plain(Stream),
    /// TLS records in rustls.
    Tls(TcpStream, Box<TlsStream>),
    /// TLS records in the kernel.
    Ktls(TcpStream, Box<KtlsStream>),
}

/// A finished handshake: where its records go from now on.
enum Secured {
    User(Box<TlsStream>),
    Kernel(Box<KtlsStream>),
}

/// Moves a finished handshake into the kernel when `ssl_kernel_tls` and the kernel allow.
/// Returns the path and whether `auto` had to fall back to rustls.
async fn secure(
    t: TlsStream,
    stream: &mut TcpStream,
    early: &mut Vec<u8>,
    tls: &crate::tls::TlsContext,
    id: u64,
    verbose: u32,
) -> Result<(Secured, bool), HandshakeError> {
    let mode = tls.settings.kernel_tls;
    if mode == KtlsMode::Off {
        return Ok((Secured::User(Box::new(t)), false));
    }
    if tls.kernel.unavailable.is_some() {
        // Said once at startup; every connection counts.
        return Ok((Secured::User(Box::new(t)), true));
    }
    match t
        .into_kernel(stream, early, &tls.kernel, tls.settings.ktls_record_limit)
        .await
    {
        Ok(k) => Ok((Secured::Kernel(Box::new(k)), false)),
        Err((SwitchError::Declined(why), Some(t))) if mode == KtlsMode::Auto => {
            if verbose > 0 {
                eprintln!("<{id} kTLS not used, records stay in rustls: {why}");
            }
            Ok((Secured::User(t), true))
        }
        Err((SwitchError::Declined(why), _)) => Err(HandshakeError::Io(std::io::Error::other(
            format!("ssl_kernel_tls=on and this connection cannot use kTLS: {why}"),
        ))),
        Err((SwitchError::Broken(e), _)) => Err(HandshakeError::Io(e)),
    }
}

/// Runs the TLS handshake (in the handshake queue, within the deadline), then hands the
/// connection to the default queue. A permissive listener first looks at one byte: 0x16
/// starts a TLS handshake record, anything else is a plaintext client.
async fn handshake(mut stream: TcpStream, wire: Wire, slot: ConnSlot) {
    let ctx = slot.ctx.clone();
    let st = ctx.shard.stats.clone();
    let Some(tls) = ctx.shared.tls.clone() else {
        return;
    };
    let deadline = tls.settings.handshake_timeout;
    let attempt = async {
        let mut first = Vec::new();
        let mtls = match wire {
            Wire::Tls { mtls } => mtls,
            _ => {
                let mut b = [0u8; 1];
                let n = stream.read(&mut b).await.map_err(HandshakeError::Io)?;
                if n == 0 {
                    return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                first.push(b[0]);
                if b[0] != 0x16 {
                    return Ok(Err(first));
                }
                false
            }
        };
        let configs = tls.current();
        let config = if mtls {
            match &configs.mtls {
                Some(c) => c.clone(),
                None => return Err(HandshakeError::Io(std::io::Error::other("mtls: no CA"))),
            }
        } else {
            configs.tls.clone()
        };
        let mut early = Vec::new();
        let t = TlsStream::accept(&mut stream, config, &first, &mut early).await?;
        let resumed = t.resumed();
        let described = t.describe();
        let (secured, fell_back) = secure(
            t,
            &mut stream,
            &mut early,
            &tls,
            conn_id(&ctx),
            ctx.shared.verbose(),
        )
        .await?;
        Ok(Ok((secured, fell_back, resumed, described, early)))
    };
    let outcome = glommio::timer::timeout(deadline, async { Ok(attempt.await) }).await;
    let id = conn_id(&ctx);
    match outcome {
        Ok(Ok(Ok((secured, fell_back, resumed, described, early)))) => {
            st.ssl_handshakes.incr();
            if resumed {
                st.ssl_resumed_sessions.incr();
            } else {
                st.ssl_new_sessions.incr();
            }
            if fell_back {
                st.ssl_ktls_fallbacks.incr();
            }
            let transport = match secured {
                Secured::User(t) => Transport::Tls(stream, t),
                Secured::Kernel(k) => Transport::Ktls(stream, k),
            };
            if ctx.shared.verbose() > 1 {
                let path = match &transport {
                    Transport::Ktls(..) => "kernel (kTLS)",
                    _ => "userspace (rustls)",
                };
                eprintln!("<{id} TLS handshake done: {described}; records: {path}");
            }
            glommio::spawn_local(serve(transport, early, slot)).detach();
        }
        Ok(Ok(Err(first))) => {
            st.ssl_plaintext_connections.incr();
            glommio::spawn_local(serve(Transport::Plain(Stream::Tcp(stream)), first, slot))
                .detach();
        }
        Ok(Err(e)) => {
            st.ssl_handshake_errors.incr();
            if e.is_verify_failure() {
                st.ssl_verify_failures.incr();
            }
            if ctx.shared.verbose() > 0 {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                eprintln!("tessera: TLS handshake with {peer} failed: {e}");
            }
            let _ = stream.close().await;
        }
        Err(_) => {
            st.ssl_handshake_errors.incr();
            st.ssl_handshake_timeouts.incr();
            if ctx.shared.verbose() > 0 {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                eprintln!(
                    "tessera: TLS handshake with {peer} did not finish within {}s; dropped",
                    deadline.as_secs()
                );
            }
            let _ = stream.close().await;
        }
    }
}

/// memcached's `stats conns` address form.
fn sock_name(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(_) => format!("tcp:{a}"),
        SocketAddr::V6(_) => format!("tcp6:{a}"),
    }
}

/// A number for log lines, unique across executors.
fn conn_id(ctx: &Ctx) -> u64 {
    ctx.shard.stats.total_connections.get() * ctx.shard.n as u64 + ctx.shard.id as u64
}

/// Serves one connection until it closes. `initial` is plaintext already read.
async fn serve(mut transport: Transport, initial: Vec<u8>, slot: ConnSlot) {
    let ctx = slot.ctx.clone();
    let id = conn_id(&ctx);
    let is_tls = !matches!(transport, Transport::Plain(..));
    let tls_label = match &transport {
        Transport::Plain(_) => None,
        Transport::Tls(_, t) => {
            ctx.shard.stats.ssl_userspace_connections.add(1);
            Some(t.label())
        }
        Transport::Ktls(_, k) => {
            ctx.shard.stats.ssl_ktls_connections.add(1);
            Some(k.label().to_string())
        }
    };
    if is_tls {
        ctx.shard.stats.ssl_connections.add(1);
    }
    if ctx.shared.verbose() > 1 {
        let peer = match &transport {
            Transport::Plain(s) => s.peer(),
            Transport::Tls(s, _) | Transport::Ktls(s, _) => {
                s.peer_addr().map(|a| a.to_string()).unwrap_or_default()
            }
        };
        let kind = match &transport {
            Transport::Plain(_) => "plaintext",
            Transport::Tls(..) => "TLS (rustls)",
            Transport::Ktls(..) => "TLS (kTLS)",
        };
        eprintln!("<{id} new {kind} client connection from {peer}");
    }
    let last_cmd = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(ctx.shared.clock.now()));
    let fd = {
        use std::os::fd::AsRawFd;
        let (fd, addr, listen_addr) = match &transport {
            Transport::Plain(Stream::Tcp(s)) | Transport::Tls(s, _) | Transport::Ktls(s, _) => (
                s.as_raw_fd(),
                s.peer_addr().map(|a| sock_name(&a)).unwrap_or_default(),
                s.local_addr().ok().map(|a| sock_name(&a)),
            ),
            // glommio hides a unix stream's fd: number it past any real fd instead.
            Transport::Plain(Stream::Unix(_)) => {
                ((1 << 24) + (id % (1 << 24)) as i32, "unix".into(), None)
            }
        };
        ctx.shared.conns.add(
            fd,
            crate::server::ConnInfo {
                addr,
                listen_addr,
                state: "conn_parse_cmd",
                tls: tls_label.clone(),
                last_cmd: last_cmd.clone(),
            },
        );
        fd
    };
    let result = conn_loop(&mut transport, &ctx, id, &initial, &last_cmd, slot.stop_key).await;
    ctx.shared.conns.remove(fd);
    match &result {
        Err(e) if ctx.shared.verbose() > 0 => eprintln!("<{id} connection error: {e}"),
        _ if ctx.shared.verbose() > 1 => eprintln!("<{id} connection closed"),
        _ => {}
    }
    match &mut transport {
        Transport::Plain(s) => s.close().await,
        Transport::Tls(s, t) => {
            if result.is_err() {
                ctx.shard.stats.ssl_proto_errors.incr();
                t.send_alerts(s).await;
            } else {
                t.close(s).await;
            }
            let _ = s.close().await;
        }
        Transport::Ktls(s, k) => {
            if result.is_err() {
                ctx.shard.stats.ssl_proto_errors.incr();
            }
            // After an error the alert (if any) is already out; close_notify is sent once.
            k.close(s).await;
            let _ = s.close().await;
        }
    }
    match &transport {
        Transport::Plain(_) => {}
        Transport::Tls(..) => ctx.shard.stats.ssl_userspace_connections.sub(1),
        Transport::Ktls(..) => ctx.shard.stats.ssl_ktls_connections.sub(1),
    }
    if is_tls {
        ctx.shard.stats.ssl_connections.sub(1);
    }
    drop(slot);
}

async fn conn_loop(
    transport: &mut Transport,
    ctx: &Ctx,
    id: u64,
    initial: &[u8],
    last_cmd: &std::sync::atomic::AtomicU32,
    stop_key: usize,
) -> std::io::Result<()> {
    let st = &ctx.shard.stats;
    let mut session = Session::new();
    session.id = id;
    let mut output = Output::new(ctx.shard.n);
    let idle = ctx.shared.config.idle_timeout_secs;
    // As in memcached, idle means no request for `idle` seconds: a client trickling the
    // bytes of one request (slowloris) is closed like a silent one.
    let idle_for = Duration::from_secs(u64::from(idle));
    let mut idle_deadline = std::time::Instant::now() + idle_for;
    session.feed(initial);
    let mut pending_input = !initial.is_empty();
    loop {
        if !pending_input {
            // Shutdown ends a connection between requests; in the middle of one (bytes of
            // it buffered) the connection reads on until it is answered.
            let between = session.is_drained()
                && !matches!(transport, Transport::Tls(_, t) if t.has_partial_record());
            if between && ctx.stop.stopping() {
                return Ok(());
            }
            let read = read_some(transport, &mut session, ctx);
            let read = async {
                if between {
                    unless_stopping(ctx, stop_key, read).await.transpose()
                } else {
                    read.await.map(Some)
                }
            };
            let n = if idle > 0 {
                let left = idle_deadline.saturating_duration_since(std::time::Instant::now());
                match glommio::timer::timeout(left, async { Ok(read.await?) }).await {
                    Ok(n) => n,
                    Err(glommio::GlommioError::TimedOut(_)) => {
                        st.idle_kicks.incr();
                        if ctx.shared.verbose() > 0 {
                            eprintln!("<{id} no request for {idle}s: closing (idle_timeout)");
                        }
                        return Ok(());
                    }
                    Err(e) => return Err(std::io::Error::other(e.to_string())),
                }
            } else {
                read.await?
            };
            match n {
                Some(0) if matches!(transport, Transport::Tls(_, t) if t.has_partial_record()) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the client closed the connection inside a TLS record",
                    ));
                }
                Some(0) => return Ok(()),
                Some(_) => {}
                None => {
                    if ctx.shared.verbose() > 1 {
                        eprintln!("<{id} shutting down: closing between requests");
                    }
                    return Ok(());
                }
            }
        }
        pending_input = false;
        last_cmd.store(ctx.shared.clock.now(), std::sync::atomic::Ordering::Relaxed);
        loop {
            let parsed = session.requests;
            let next = session.process(ctx, &mut output).await;
            if idle > 0 && session.requests != parsed {
                idle_deadline = std::time::Instant::now() + idle_for;
            }
            let next = match output.resolve(ctx.mesh.as_deref()).await {
                Ok(()) => next,
                Err(_) => Next::Close,
            };
            if let Some(latency) = &ctx.latency {
                output.observe_latency(latency);
            }
            if !output.out.is_empty() {
                let wrote = match transport {
                    Transport::Plain(s) => {
                        s.write_all(&output.out).await?;
                        output.out.len()
                    }
                    Transport::Tls(s, t) => {
                        let pool = ctx.wbufs.as_ref().ok_or_else(|| {
                            std::io::Error::other("TLS connection without a write buffer pool")
                        })?;
                        t.write_plain(s, &output.out, pool).await?
                    }
                    Transport::Ktls(s, k) => k.write_all(s, &output.out).await?,
                };
                st.bytes_written.add(wrote as u64);
                output.clear();
            }
            if let Transport::Ktls(_, k) = transport
                && k.near_limit()
                && session.start == session.end
            {
                // Near the cipher's record limit and unable to rekey: end it between
                // requests, with close_notify.
                if ctx.shared.verbose() > 0 {
                    eprintln!("<{id} kTLS record limit near: closing cleanly");
                }
                return Ok(());
            }
            match next {
                Next::Read => break,
                Next::Again => {
                    st.conn_yields.incr();
                    glommio::yield_if_needed().await;
                }
                Next::Close => return Ok(()),
            }
        }
    }
}

/// Reads input into the session: returns the plaintext bytes added (0 at EOF).
async fn read_some(
    transport: &mut Transport,
    session: &mut Session,
    ctx: &Ctx,
) -> std::io::Result<usize> {
    let st = &ctx.shard.stats;
    match transport {
        Transport::Plain(s) if session.is_drained() => {
            // Idle: wait holding no buffer; take one when bytes arrive.
            session.release(&ctx.rbufs);
            let scratch = &ctx.rbufs.scratch;
            let n = futures_lite::future::poll_fn(|cx| s.poll_read(cx, &mut scratch.borrow_mut()))
                .await?;
            // No await since the read: the scratch still holds exactly these bytes.
            if n > 0 {
                session.feed_from(&ctx.rbufs, &scratch.borrow()[..n]);
            }
            st.bytes_read.add(n as u64);
            Ok(n)
        }
        Transport::Ktls(s, k) if session.is_drained() => {
            session.release(&ctx.rbufs);
            let scratch = &ctx.rbufs.scratch;
            let n = k.read(s, &**scratch).await?;
            if n > 0 {
                session.feed_from(&ctx.rbufs, &scratch.borrow()[..n]);
            }
            st.bytes_read.add(n as u64);
            Ok(n)
        }
        Transport::Plain(s) => {
            let space = session.read_space();
            let n = s.read(space).await?;
            session.end += n;
            st.bytes_read.add(n as u64);
            Ok(n)
        }
        Transport::Ktls(s, k) => {
            let space = session.read_space();
            let n = k.read(s, space).await?;
            session.end += n;
            st.bytes_read.add(n as u64);
            Ok(n)
        }
        Transport::Tls(s, t) => {
            let mut raw = 0u64;
            if session.is_drained() {
                session.release(&ctx.rbufs);
            }
            let bufs = &ctx.rbufs;
            let n = t
                .read_plain(
                    s,
                    &mut |p| session.feed_from(bufs, p),
                    &mut raw,
                    &bufs.scratch,
                )
                .await?;
            st.bytes_read.add(raw);
            Ok(n)
        }
    }
}
