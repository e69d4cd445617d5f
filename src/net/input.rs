//! Read buffers: the executor's scratch and pool, and one connection's input.
//!
//! A connection waiting for a request holds no buffer: its read lands in the executor's
//! scratch, and only bytes that arrive take a buffer from the pool; drained, it goes back.

use std::rc::Rc;

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
    /// The executor's io_uring receive buffers ([`crate::sock`]); None off an executor
    /// or when the ring cannot provide buffers.
    pub ring: Option<glommio::net::ring::RecvPool>,
}

impl Default for ReadBufs {
    fn default() -> Self {
        ReadBufs {
            scratch: Rc::new(std::cell::RefCell::new(vec![0; SCRATCH])),
            free: Rc::default(),
            ring: None,
        }
    }
}

impl ReadBufs {
    /// An executor's buffers, with its io_uring receive pool if it has one.
    pub fn with_ring(ring: Option<glommio::net::ring::RecvPool>) -> ReadBufs {
        ReadBufs {
            ring,
            ..ReadBufs::default()
        }
    }

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
    pub(super) swallow: usize,
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn scratch_is_the_size_the_tls_harness_assumes() {
        assert_eq!(super::SCRATCH, crate::tls::conn::mem::SCRATCH);
    }
}
