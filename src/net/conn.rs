//! The connection loop: read → parse a batch → dispatch → write, until the client leaves,
//! goes idle past `idle_timeout`, or the executor shuts down.
//!
//! One turn: [`wait_for_input`] reads what the client sent into the session's buffer;
//! [`Session::process`] parses the complete requests and dispatches each (a local key runs
//! on the store at once, a remote one is queued for its owner); [`Output::resolve`] sends
//! the queued batches and lays the replies out in request order; [`Transport::write`] sends
//! them in one write. A pass stops early after `-R` requests (or a large output) so other
//! connections get a turn; the loop then yields and runs the next pass before reading.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::ctx::Ctx;
use super::input::Session;
use super::session::Next;
use super::transport::Transport;
use crate::cmd::order::Output;

/// A taken `-c` slot, returned (and counted) when dropped, whatever path the connection took.
pub(super) struct ConnSlot {
    pub(super) ctx: Rc<Ctx>,
    /// Its waiter slot in the executor's [`super::stop::Stop`].
    stop_key: usize,
}

impl ConnSlot {
    /// A slot, or None when `-c` connections are open.
    pub(super) fn take(ctx: &Rc<Ctx>) -> Option<ConnSlot> {
        if !ctx.exec.shared.try_add_conn() {
            return None;
        }
        let st = &ctx.exec.shard.stats;
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
        self.ctx.exec.shard.stats.curr_connections.sub(1);
        self.ctx.exec.shared.remove_conn();
    }
}

/// A number for log lines, unique across executors.
pub(super) fn conn_id(ctx: &Ctx) -> u64 {
    ctx.exec.shard.stats.total_connections.get() * ctx.exec.shard.n as u64
        + ctx.exec.shard.id as u64
}

/// Serves one connection until it closes. `initial` is plaintext already read.
pub(super) async fn serve(mut transport: Transport, initial: Vec<u8>, slot: ConnSlot) {
    let ctx = slot.ctx.clone();
    let st = &ctx.exec.shard.stats;
    let id = conn_id(&ctx);
    transport.count(st, true);
    if ctx.exec.shared.verbose() > 1 {
        let (kind, peer) = (transport.kind(), transport.peer());
        eprintln!("<{id} new {kind} client connection from {peer}");
    }
    let last_cmd = Arc::new(AtomicU32::new(ctx.exec.shared.clock.now()));
    let entry = transport.conn_entry(id);
    ctx.exec.shared.conns.add(
        entry.fd,
        crate::server::ConnInfo {
            addr: entry.addr,
            listen_addr: entry.listen_addr,
            state: "conn_parse_cmd",
            tls: transport.tls_label(),
            last_cmd: last_cmd.clone(),
        },
    );
    let result = conn_loop(&mut transport, &ctx, id, &initial, &last_cmd, slot.stop_key).await;
    ctx.exec.shared.conns.remove(entry.fd);
    match &result {
        Err(e) if ctx.exec.shared.verbose() > 0 => eprintln!("<{id} connection error: {e}"),
        _ if ctx.exec.shared.verbose() > 1 => eprintln!("<{id} connection closed"),
        _ => {}
    }
    transport.close(result.is_err(), st).await;
    transport.count(st, false);
    drop(slot);
}

async fn conn_loop(
    transport: &mut Transport,
    ctx: &Ctx,
    id: u64,
    initial: &[u8],
    last_cmd: &AtomicU32,
    stop_key: usize,
) -> std::io::Result<()> {
    let st = &ctx.exec.shard.stats;
    let mut session = Session::new();
    session.id = id;
    let mut output = Output::new(ctx.exec.shard.n);
    let mut idle = Idle::new(ctx.exec.shared.config.idle_timeout_secs);
    session.feed(initial);
    let mut pending_input = !initial.is_empty();
    loop {
        // Read.
        if !pending_input && !wait_for_input(transport, &mut session, ctx, &idle, stop_key).await? {
            return Ok(());
        }
        pending_input = false;
        last_cmd.store(ctx.exec.shared.clock.now(), Ordering::Relaxed);
        loop {
            // Parse a batch and dispatch it.
            let parsed = session.requests;
            let next = session.process(ctx, &mut output).await;
            if session.requests != parsed {
                idle.renew();
            }
            // Remote replies in, in request order.
            let next = match output.resolve(ctx.exec.mesh.as_deref()).await {
                Ok(()) => next,
                Err(e) => {
                    // Only a shutdown takes a peer executor away; anything else is a bug
                    // the operator should see, not a silently dropped connection.
                    if !ctx.stop.stopping() {
                        eprintln!("tessera: <{id} closing: {e}");
                    }
                    Next::Close
                }
            };
            if let Some(latency) = &ctx.latency {
                output.observe_latency(latency);
            }
            // Write.
            if !output.out.is_empty() {
                let wrote = transport.write(&mut output.out, ctx).await?;
                st.bytes_written.add(wrote as u64);
                output.clear();
            }
            if transport.near_limit() && session.start == session.end {
                // Near the cipher's record limit and unable to rekey: end it between
                // requests, with close_notify.
                if ctx.exec.shared.verbose() > 0 {
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

/// `idle_timeout`: as in memcached, idle means no request for that many seconds, so a
/// client trickling the bytes of one request (slowloris) is closed like a silent one.
struct Idle {
    /// 0: no timeout.
    secs: u32,
    /// When the connection counts as idle.
    deadline: Instant,
}

impl Idle {
    fn new(secs: u32) -> Idle {
        Idle {
            secs,
            deadline: Instant::now() + Duration::from_secs(u64::from(secs)),
        }
    }

    /// A request was parsed: the timeout counts from now.
    fn renew(&mut self) {
        if self.secs > 0 {
            self.deadline = Instant::now() + Duration::from_secs(u64::from(self.secs));
        }
    }
}

/// Reads input into the session. False when the connection is to end without an error: the
/// client closed, it was idle too long, or shutdown came between requests.
async fn wait_for_input(
    transport: &mut Transport,
    session: &mut Session,
    ctx: &Ctx,
    idle: &Idle,
    stop_key: usize,
) -> std::io::Result<bool> {
    let id = session.id;
    // Shutdown ends a connection between requests; in the middle of one (bytes of it
    // buffered) the connection reads on until it is answered.
    let between = session.is_drained() && !transport.mid_record();
    if between && ctx.stop.stopping() {
        return Ok(false);
    }
    let read = transport.read(session, ctx);
    let read = async {
        if between {
            ctx.stop.unless_stopping(stop_key, read).await.transpose()
        } else {
            read.await.map(Some)
        }
    };
    let n = if idle.secs > 0 {
        let left = idle.deadline.saturating_duration_since(Instant::now());
        match glommio::timer::timeout(left, async { Ok(read.await?) }).await {
            Ok(n) => n,
            Err(glommio::GlommioError::TimedOut(_)) => {
                ctx.exec.shard.stats.idle_kicks.incr();
                if ctx.exec.shared.verbose() > 0 {
                    let secs = idle.secs;
                    eprintln!("<{id} no request for {secs}s: closing (idle_timeout)");
                }
                return Ok(false);
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    } else {
        read.await?
    };
    match n {
        Some(0) if transport.mid_record() => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the client closed the connection inside a TLS record",
        )),
        Some(0) => Ok(false),
        Some(_) => Ok(true),
        None => {
            if ctx.exec.shared.verbose() > 1 {
                eprintln!("<{id} shutting down: closing between requests");
            }
            Ok(false)
        }
    }
}
