//! Listeners: binding on the main thread, then one accept loop per listener and executor,
//! for TCP and unix sockets alike.
//!
//! Every executor has its own listening socket on each TCP address (SO_REUSEPORT: the
//! kernel spreads new connections over the executors) and serves the connections it accepts
//! from start to end; only keys cross executors, never connections. A unix socket path can
//! be bound only once, so one executor accepts those.
//!
//! An accepted connection takes a `-c` slot ([`ConnSlot`]) or is refused. A plaintext one
//! goes straight to the connection loop ([`super::conn::serve`]); a TLS one first runs
//! [`crate::tls::accept::accept`] in a task queue of its own with a small share of the
//! executor and a deadline, so a burst of handshakes (or clients that never finish one)
//! cannot starve the requests of established connections. A connection that completes its
//! handshake continues in the default queue.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream, UnixListener};

use super::conn::{ConnSlot, conn_id, serve};
use super::ctx::Ctx;
use super::transport::{Transport, sock_name};
use crate::config::ListenMode;
use crate::sock::Stream;
use crate::tls::accept::{AcceptError, Accepted, Expect, accept};

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

/// Where an executor accepts connections.
#[derive(Debug)]
pub enum Endpoint {
    /// A TCP listener bound on the main thread.
    Tcp(BoundListener),
    /// A unix domain socket (`-s`) with its permission mask (`-a`), checked on the main
    /// thread by [`check_unix_path`] and bound by the executor that serves it.
    Unix {
        /// The socket's path.
        path: PathBuf,
        /// Its permission bits.
        mask: u32,
    },
}

/// memcached's reply when `-c` is reached.
const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

/// How long the loop waits after a failed accept (EMFILE and friends) rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `endpoint` until this executor shuts down, each served by its
/// own task.
pub async fn accept_loop(endpoint: Endpoint, ctx: Rc<Ctx>) {
    // None: plaintext; else what the TLS accept expects.
    let expect = match &endpoint {
        Endpoint::Tcp(l) => expect_for(l.mode, ctx.exec.shared.tls.is_some()),
        Endpoint::Unix { .. } => None,
    };
    let listener = Listener::open(endpoint, &ctx);
    let stop_key = ctx.stop.register();
    while let Some(accepted) = ctx.stop.unless_stopping(stop_key, listener.accept()).await {
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tessera: accept on {} failed: {e}", listener.name());
                glommio::timer::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match ConnSlot::take(&ctx) {
            Some(slot) => start(stream, expect, slot, &ctx),
            None => refuse(stream, expect.is_none(), &ctx),
        }
    }
    ctx.stop.unregister(stop_key);
    listener.close(&ctx);
}

/// How a TCP listener's connections are to be accepted (None: plaintext).
fn expect_for(mode: ListenMode, tls_on: bool) -> Option<Expect> {
    match (mode, tls_on) {
        (ListenMode::NoTls, _) | (ListenMode::Default, false) => None,
        (ListenMode::Default, true) => Some(Expect::Tls { mtls: false }),
        (ListenMode::Mtls, _) => Some(Expect::Tls { mtls: true }),
        (ListenMode::Permissive, _) => Some(Expect::Either),
    }
}

/// One executor's open listener.
enum Listener {
    Tcp {
        listener: TcpListener,
        addr: SocketAddr,
        /// Its `stats conns` key.
        fd: i32,
    },
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    /// Opens `endpoint` on this executor: a TCP listener is listed in `stats conns`; a unix
    /// socket is bound and given its mode.
    fn open(endpoint: Endpoint, ctx: &Ctx) -> Listener {
        match endpoint {
            Endpoint::Tcp(l) => {
                use std::os::fd::AsRawFd;
                let fd = l.socket.as_raw_fd();
                ctx.exec.shared.conns.add(
                    fd,
                    crate::server::ConnInfo {
                        addr: sock_name(&l.addr),
                        listen_addr: None,
                        state: "conn_listening",
                        tls: None,
                        last_cmd: Default::default(),
                    },
                );
                Listener::Tcp {
                    listener: into_glommio(l.socket),
                    addr: l.addr,
                    fd,
                }
            }
            Endpoint::Unix { path, mask } => {
                let listener = match UnixListener::bind(&path) {
                    Ok(l) => l,
                    Err(e) => {
                        // Checked on the main thread a moment ago; failing now is a race
                        // with another process. Without its only listener the server is
                        // useless: say so and stop.
                        eprintln!(
                            "tessera: failed to listen on unix socket {}: {e}",
                            path.display()
                        );
                        std::process::exit(1);
                    }
                };
                use std::os::unix::fs::PermissionsExt;
                if let Err(e) =
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mask & 0o777))
                {
                    eprintln!(
                        "tessera: cannot set mode {mask:o} on {}: {e}",
                        path.display()
                    );
                }
                Listener::Unix { listener, path }
            }
        }
    }

    async fn accept(&self) -> glommio::Result<Stream, ()> {
        match self {
            Listener::Tcp { listener, .. } => listener.accept().await.map(Stream::Tcp),
            Listener::Unix { listener, .. } => listener.accept().await.map(Stream::Unix),
        }
    }

    /// The address or path, for logs.
    fn name(&self) -> String {
        match self {
            Listener::Tcp { addr, .. } => addr.to_string(),
            Listener::Unix { path, .. } => path.display().to_string(),
        }
    }

    /// Stops listening. Dropping a TCP listener closes it: the kernel refuses new
    /// connections from here on (or hands them to another executor's listener while that
    /// one still runs). A unix socket's file goes, so new clients fail to connect instead
    /// of waiting on a listener nobody serves.
    fn close(self, ctx: &Ctx) {
        match self {
            Listener::Tcp { fd, .. } => ctx.exec.shared.conns.remove(fd),
            Listener::Unix { path, .. } => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
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

/// `-c` is reached: counted, told so (plaintext clients only: a TLS client could not read
/// the line) and closed.
fn refuse(mut stream: Stream, plain: bool, ctx: &Ctx) {
    ctx.exec.shard.stats.rejected_connections.incr();
    glommio::spawn_local(async move {
        if plain {
            let _ = stream.write_all(TOO_MANY).await;
        }
        stream.close().await;
    })
    .detach();
}

/// Starts serving an accepted connection: plaintext at once, TLS after its handshake (in
/// the handshake queue).
fn start(stream: Stream, expect: Option<Expect>, slot: ConnSlot, ctx: &Ctx) {
    if let Stream::Tcp(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    let (expect, tcp) = match (expect, stream) {
        (Some(expect), Stream::Tcp(tcp)) => (expect, tcp),
        (_, stream) => {
            let transport = Transport::plain(stream, &slot.ctx);
            glommio::spawn_local(serve(transport, Vec::new(), slot)).detach();
            return;
        }
    };
    let fut = secure_then_serve(tcp, expect, slot);
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

/// Accepts a TLS client (the handshake, then kTLS or rustls), counts and logs the outcome,
/// and hands the connection to the default queue.
async fn secure_then_serve(mut stream: TcpStream, expect: Expect, slot: ConnSlot) {
    let ctx = slot.ctx.clone();
    let st = &ctx.exec.shard.stats;
    let Some(tls) = ctx.exec.shared.tls.clone() else {
        return;
    };
    let outcome = accept(
        &mut stream,
        expect,
        &tls,
        conn_id(&ctx),
        ctx.exec.shared.verbose(),
    )
    .await;
    let id = conn_id(&ctx);
    match outcome {
        Ok(Accepted::Tls(secured)) => {
            st.ssl_handshakes.incr();
            if secured.resumed {
                st.ssl_resumed_sessions.incr();
            } else {
                st.ssl_new_sessions.incr();
            }
            if secured.ktls_fallback {
                st.ssl_ktls_fallbacks.incr();
            }
            let transport = Transport::secured(stream, secured.records, &ctx);
            if ctx.exec.shared.verbose() > 1 {
                eprintln!(
                    "<{id} TLS handshake done: {}; records: {}",
                    secured.described,
                    transport.record_path()
                );
            }
            glommio::spawn_local(serve(transport, secured.early, slot)).detach();
        }
        Ok(Accepted::Plaintext(first)) => {
            st.ssl_plaintext_connections.incr();
            let transport = Transport::plain(Stream::Tcp(stream), &ctx);
            glommio::spawn_local(serve(transport, first, slot)).detach();
        }
        Err(e) => {
            st.ssl_handshake_errors.incr();
            if let AcceptError::TimedOut(_) = e {
                st.ssl_handshake_timeouts.incr();
            } else if e.is_verify_failure() {
                st.ssl_verify_failures.incr();
            }
            if ctx.exec.shared.verbose() > 0 {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                match e {
                    AcceptError::TimedOut(d) => eprintln!(
                        "tessera: TLS handshake with {peer} did not finish within {}s; dropped",
                        d.as_secs()
                    ),
                    e => eprintln!("tessera: TLS handshake with {peer} failed: {e}"),
                }
            }
            let _ = stream.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Expect, ListenMode, expect_for};

    #[test]
    fn listener_modes_choose_how_clients_are_accepted() {
        assert_eq!(expect_for(ListenMode::NoTls, true), None);
        assert_eq!(expect_for(ListenMode::Default, false), None);
        assert_eq!(
            expect_for(ListenMode::Default, true),
            Some(Expect::Tls { mtls: false })
        );
        assert_eq!(
            expect_for(ListenMode::Mtls, true),
            Some(Expect::Tls { mtls: true })
        );
        assert_eq!(
            expect_for(ListenMode::Permissive, true),
            Some(Expect::Either)
        );
    }
}
