//! Listeners and the per-connection loop.
//!
//! Every executor has its own listening socket on each address (SO_REUSEPORT: the kernel
//! spreads new connections over the executors) and serves the connections it accepts from
//! start to end; only keys cross executors, never connections.

pub mod session;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use session::{Ctx, Next, Output, Session};

/// A listening socket made on the main thread (so bind errors surface before executors start)
/// and handed to one executor.
#[derive(Debug)]
pub struct BoundListener {
    /// The socket, bound and listening.
    pub socket: socket2::Socket,
    /// Its address.
    pub addr: SocketAddr,
}

/// Binds `addr` with SO_REUSEPORT and the given backlog.
pub fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<BoundListener> {
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
    Ok(BoundListener { socket, addr })
}

/// Turns a bound socket into this executor's glommio listener.
fn into_glommio(l: BoundListener) -> TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = l.socket.into_raw_fd();
    // Safety: `fd` was just released by `into_raw_fd`, so this listener becomes its only
    // owner; it is a bound, listening TCP socket, which is what glommio expects.
    #[allow(unsafe_code)]
    unsafe {
        TcpListener::from_raw_fd(fd)
    }
}

/// Accepts connections forever on one listener, each served by its own task.
pub async fn accept_loop(listener: BoundListener, ctx: Rc<Ctx>) {
    let addr = listener.addr;
    let listener = into_glommio(listener);
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let ctx = ctx.clone();
                glommio::spawn_local(async move { serve(stream, ctx).await }).detach();
            }
            Err(e) => {
                // EMFILE and friends: say so, back off briefly rather than spin.
                eprintln!("tessera: accept on {addr} failed: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// memcached's reply when `-c` is reached.
const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

/// Serves one connection until it closes.
async fn serve(mut stream: TcpStream, ctx: Rc<Ctx>) {
    let st = ctx.shard.stats.clone();
    if !ctx.shared.try_add_conn() {
        st.rejected_connections.incr();
        let _ = stream.write_all(TOO_MANY).await;
        let _ = stream.close().await;
        return;
    }
    st.total_connections.incr();
    st.curr_connections.add(1);
    let _ = stream.set_nodelay(true);
    // A number for log lines, unique across executors.
    let id = st.total_connections.get() * ctx.shard.n as u64 + ctx.shard.id as u64;
    if ctx.shared.verbose() > 1 {
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        eprintln!("<{id} new client connection from {peer}");
    }
    let result = conn_loop(&mut stream, &ctx, id).await;
    match result {
        Err(e) if ctx.shared.verbose() > 0 => eprintln!("<{id} connection error: {e}"),
        _ if ctx.shared.verbose() > 1 => eprintln!("<{id} connection closed"),
        _ => {}
    }
    let _ = stream.close().await;
    st.curr_connections.sub(1);
    ctx.shared.remove_conn();
}

async fn conn_loop(stream: &mut TcpStream, ctx: &Ctx, id: u64) -> std::io::Result<()> {
    let st = &ctx.shard.stats;
    let mut session = Session::new();
    session.id = id;
    let mut output = Output::new(ctx.shard.n);
    let idle = ctx.shared.config.idle_timeout_secs;
    loop {
        let space = session.read_space();
        let n = if idle > 0 {
            match glommio::timer::timeout(Duration::from_secs(idle as u64), async {
                Ok(stream.read(space).await?)
            })
            .await
            {
                Ok(n) => n,
                Err(glommio::GlommioError::TimedOut(_)) => return Ok(()),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        } else {
            stream.read(space).await?
        };
        if n == 0 {
            return Ok(());
        }
        session.end += n;
        st.bytes_read.add(n as u64);
        loop {
            let next = session.process(ctx, &mut output).await;
            let next = match output.resolve(ctx.mesh.as_deref()).await {
                Ok(()) => next,
                Err(_) => Next::Close,
            };
            if !output.out.is_empty() {
                stream.write_all(&output.out).await?;
                st.bytes_written.add(output.out.len() as u64);
                output.clear();
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
