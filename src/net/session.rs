//! One pass over a connection's buffered input: parse each complete request and run it.
//!
//! Keys this executor owns are served at once into the output; keys owned elsewhere are
//! queued for their owners ([`Output`], in `order`), which answer when the pass ends, so
//! replies go out in request order whatever the owners. The socket side (buffers, reads,
//! writes) is the connection loop's (`conn`, `input`, `transport`).
//!
//! Commands with process-wide effects (flush_all, stats) are barriers: the remote work queued
//! before them is finished first, so a pipeline `set k; flush_all; get k` behaves as written.
use crate::protocol::{self, Parsed, Reply, Request, StatsKind};
use crate::server::MEMCACHED_VERSION;
use crate::shard::mesh::PeerGone;
use crate::shard::meta::MetaOp;
use crate::shard::{KeyOp, hash_key, key_ops, owner};

pub use super::ctx::Ctx;
pub use super::input::{RBUF_INITIAL, ReadBufs, Session};
pub use super::order::Output;

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

impl Session {
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
