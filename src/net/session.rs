//! One pass over a connection's buffered input: parse each complete request and run it.
//!
//! Keys this executor owns are served at once into the output; keys owned elsewhere are
//! queued for their owners ([`Output`], in `order`), which answer when the pass ends, so
//! replies go out in request order whatever the owners. The socket side (buffers, reads,
//! writes) is the connection loop's (`conn`, `input`, `transport`).
//!
//! Commands with process-wide effects (flush_all, stats) are barriers: the remote work queued
//! before them is finished first, so a pipeline `set k; flush_all; get k` behaves as written.
use crate::cmd::{self, Command};
use crate::protocol::{self, Parsed};

pub use super::ctx::Ctx;
pub use super::input::{RBUF_INITIAL, ReadBufs, Session};
pub use crate::cmd::order::Output;

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

impl Session {
    /// Feeds `bytes` and serves every complete request, synchronously, with a context that
    /// has no mesh ([`Ctx::standalone`]): the replies are appended to `out`; true if the
    /// session asked to close. For embedding the protocol engine, tests and fuzzing.
    pub fn feed_standalone(&mut self, ctx: &Ctx, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        use futures_lite::future::block_on;
        self.feed(bytes);
        let mut output = Output::new(ctx.exec.shard.n);
        loop {
            let next = block_on(self.process(ctx, &mut output));
            // Without a mesh nothing is remote: resolving only lays out local replies.
            let resolved = block_on(output.resolve(ctx.exec.mesh.as_deref()));
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
            if handled >= ctx.exec.shared.config.reqs_per_event as usize
                || output.out.len() >= PASS_OUTPUT_MAX
            {
                return Next::Again;
            }
            let buf = &self.rbuf[self.start..self.end];
            let parsed = protocol::text::parse(buf, &ctx.limits);
            if ctx.exec.shared.verbose() > 1 {
                cmd::dispatch::log_command(self.id, buf, &parsed);
            }
            match parsed {
                Parsed::Incomplete => return Next::Read,
                Parsed::Close => {
                    ctx.exec.shard.stats.protocol_closes.incr();
                    if ctx.exec.shared.verbose() > 0 {
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
                    ctx.exec.shard.stats.protocol_errors.incr();
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
                    let ok = cmd::dispatch::run(req, &ctx.exec, output).await;
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
