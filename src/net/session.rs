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
            match self.run_window(ctx, output, &mut handled) {
                Step::More => {}
                Step::Wait(barrier) => {
                    if barrier.run(&ctx.exec, output).await.is_err() {
                        return Next::Close;
                    }
                }
                Step::Done(next) => return next,
            }
        }
    }

    /// Parses up to [`WINDOW`] buffered requests, warms the store for their keys, and runs
    /// them in order, up to a barrier (returned to be awaited: nothing borrowed from the
    /// read buffer is held across an await, so a connection's future stays small).
    fn run_window(&mut self, ctx: &Ctx, output: &mut Output, handled: &mut usize) -> Step {
        if self.swallow > 0 {
            let k = self.swallow.min(self.end - self.start);
            self.start += k;
            self.swallow -= k;
            if self.swallow > 0 {
                return Step::Done(Next::Read);
            }
        }
        if self.start == self.end {
            return Step::Done(Next::Read);
        }
        // memcached's -R: requests one connection may run before others get a turn.
        let left = (ctx.exec.shared.config.reqs_per_event as usize).saturating_sub(*handled);
        if left == 0 || output.out.len() >= PASS_OUTPUT_MAX {
            return Step::Done(Next::Again);
        }
        // Parse ahead: up to the window, the budget, or a request that is not whole or
        // leaves bytes to discard (what follows it is not a request).
        let mut window: [Option<Parsed<Command<'_>>>; WINDOW] = Default::default();
        let mut n = 0;
        let mut at = self.start;
        while n < WINDOW.min(left) && at < self.end {
            let parsed = protocol::text::parse(&self.rbuf[at..self.end], &ctx.limits);
            let (more, used) = match &parsed {
                Parsed::Done {
                    consumed, swallow, ..
                }
                | Parsed::Error {
                    consumed, swallow, ..
                } => (*swallow == 0, *consumed),
                Parsed::Incomplete | Parsed::Close => (false, 0),
            };
            window[n] = Some(parsed);
            n += 1;
            at += used;
            if !more {
                break;
            }
        }
        if n > 1 {
            let cmds = window[..n].iter().filter_map(|p| match p {
                Some(Parsed::Done { req, .. }) => Some(req),
                _ => None,
            });
            cmd::dispatch::prefetch(cmds, &ctx.exec);
        }
        for parsed in window[..n].iter_mut().filter_map(Option::take) {
            if output.out.len() >= PASS_OUTPUT_MAX {
                return Step::Done(Next::Again);
            }
            if ctx.exec.shared.verbose() > 1 {
                cmd::dispatch::log_command(self.id, &self.rbuf[self.start..self.end], &parsed);
            }
            *handled += 1;
            match parsed {
                Parsed::Incomplete => return Step::Done(Next::Read),
                Parsed::Close => {
                    ctx.exec.shard.stats.protocol_closes.incr();
                    if ctx.exec.shared.verbose() > 0 {
                        eprintln!(
                            "<{} closing: junk input (no newline in a line's first {} bytes, a line \
                             past read_buf_max, or HTTP)",
                            self.id, ctx.limits.max_line
                        );
                    }
                    return Step::Done(Next::Close);
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
                    let barrier = cmd::dispatch::run(req, &ctx.exec, output);
                    self.start += consumed;
                    self.swallow = swallow;
                    if quit {
                        return Step::Done(Next::Close);
                    }
                    if let Some(b) = barrier {
                        return Step::Wait(b);
                    }
                }
            }
        }
        Step::More
    }
}

/// Requests parsed ahead of running them, so their keys' cache misses overlap: the
/// pipeline depth clients commonly use.
const WINDOW: usize = 16;

/// Where [`Session::run_window`] left off.
enum Step {
    /// The window ran: parse the next one.
    More,
    /// Await this barrier, then go on.
    Wait(cmd::dispatch::Barrier),
    /// The pass is over.
    Done(Next),
}

#[cfg(test)]
mod tests {
    use super::{Ctx, Next, Output, Session};
    use futures_lite::future::block_on;

    fn ctx(reqs_per_event: u32) -> Ctx {
        let config = crate::config::Config {
            reqs_per_event,
            ..crate::config::Config::default()
        };
        Ctx::standalone(config)
    }

    /// One pass: its outcome and the replies it wrote.
    fn pass(s: &mut Session, ctx: &Ctx) -> (Next, String) {
        let mut output = Output::new(1);
        let next = block_on(s.process(ctx, &mut output));
        block_on(output.resolve(None)).unwrap();
        (next, String::from_utf8_lossy(&output.out).into_owned())
    }

    /// `-R` bounds a pass whatever the window size: 45 gets at -R 20 take three passes.
    #[test]
    fn a_pass_stops_after_reqs_per_event_requests() {
        let ctx = ctx(20);
        let mut s = Session::new();
        s.feed(b"set k 0 0 1\r\nv\r\n");
        s.feed(&b"get k\r\n".repeat(45));
        let (next, out) = pass(&mut s, &ctx);
        assert_eq!((next, out.matches("VALUE").count()), (Next::Again, 19));
        let (next, out) = pass(&mut s, &ctx);
        assert_eq!((next, out.matches("VALUE").count()), (Next::Again, 20));
        let (next, out) = pass(&mut s, &ctx);
        assert_eq!((next, out.matches("VALUE").count()), (Next::Read, 6));
    }

    /// What the parser reads ahead of running does not run early: a barrier in the middle
    /// of a window (flush_all) sees the sets before it and not the gets after it, an
    /// oversized value after it is swallowed, not parsed as requests, and a request cut
    /// short waits for its bytes.
    #[test]
    fn a_window_runs_in_request_order_across_barriers_and_swallows() {
        let ctx = ctx(100);
        let mut s = Session::new();
        let big = "x".repeat(2 * 1024 * 1024);
        let input = format!(
            "set a 0 0 1\r\n1\r\nget a\r\nflush_all\r\nget a\r\nset b 0 0 1\r\n2\r\n\
             set c 0 0 {}\r\n{big}\r\nget b c\r\nget",
            big.len()
        );
        s.feed(input.as_bytes());
        let (next, out) = pass(&mut s, &ctx);
        assert_eq!(next, Next::Read);
        assert_eq!(
            out,
            "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\nOK\r\nEND\r\nSTORED\r\n\
             SERVER_ERROR object too large for cache\r\nVALUE b 0 1\r\n2\r\nEND\r\n"
        );
        s.feed(b" b\r\n");
        let (next, out) = pass(&mut s, &ctx);
        assert_eq!(
            (next, out.as_str()),
            (Next::Read, "VALUE b 0 1\r\n2\r\nEND\r\n")
        );
    }
}
