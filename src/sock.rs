//! A connected socket's bytes in and out, through the executor's io_uring ring.
//!
//! glommio's streams make a `recv` or `send` system call per read and per write and use the
//! ring only to wait for readiness. A [`Sock`] made with the executor's receive pool queues
//! receives and sends as ring operations instead (the vendored glommio's `net::ring`, see
//! docs/architecture.md): they reach the kernel with every other connection's at the
//! executor's next turn, in one `io_uring_enter`. A receive takes a buffer from the
//! executor's [`RecvPool`] only when data arrives, so a waiting connection holds none.
//! Without a pool (it could not be set up) the socket stays on glommio's readiness path.
//!
//! A leaf: the connection layer (`net`) and the TLS layer (`tls`) both talk through it.

use std::cell::RefCell;
use std::io;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWriteExt};
use glommio::net::ring::{RecvBuf, RecvPool, RingIo};
use glommio::net::{TcpStream, UnixStream};

/// Receive buffers per executor: enough for every connection whose bytes arrive within
/// one executor turn; beyond that a receive falls back to a buffer of its own (counted).
pub const RECV_BUFFERS: u16 = 256;
/// Size of each receive buffer: the most one receive returns.
pub const RECV_BUF_SIZE: usize = 16 * 1024;

/// The socket itself.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A unix domain socket connection.
    Unix(UnixStream),
}

impl Stream {
    /// The peer's address, for logs.
    pub fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            Stream::Unix(_) => "unix socket".into(),
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }

    /// Writes all of `data` on glommio's path (before a connection is served).
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => AsyncWriteExt::write_all(s, data).await,
            Stream::Unix(s) => AsyncWriteExt::write_all(s, data).await,
        }
    }

    /// Closes the socket, its write side first.
    pub async fn close(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.close().await,
            Stream::Unix(s) => s.close().await,
        };
    }
}

/// A connected socket.
#[derive(Debug)]
pub struct Sock {
    stream: Stream,
    ring: Option<Ring>,
}

/// The ring side of a socket.
#[derive(Debug)]
struct Ring {
    io: RingIo,
    pool: RecvPool,
    /// A received buffer not yet read to its end, and how far it was read.
    left: Option<(RecvBuf, usize)>,
    /// Where `write_all` copies bytes to send (its capacity is kept).
    out: Vec<u8>,
}

impl Ring {
    /// The rest of a buffer a read left, else the next receive (None at end of stream).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<(RecvBuf, usize)>>> {
        if let Some(left) = self.left.take() {
            return Poll::Ready(Ok(Some(left)));
        }
        self.io
            .poll_recv(cx, &self.pool)
            .map_ok(|got| got.map(|buf| (buf, 0)))
    }
}

impl Sock {
    /// A socket whose receives and sends go through the ring, buffers coming from `pool`;
    /// without a pool it stays on glommio's readiness path. Made between reads (glommio's
    /// stream keeps no buffer of its own, so nothing received is left behind in it).
    pub fn new(stream: Stream, pool: Option<&RecvPool>) -> Sock {
        use std::os::fd::AsRawFd;
        let ring = pool.map(|pool| {
            let fd = match &stream {
                Stream::Tcp(s) => s.as_raw_fd(),
                Stream::Unix(s) => s.as_raw_fd(),
            };
            Ring {
                io: RingIo::new(fd),
                pool: pool.clone(),
                left: None,
                out: Vec::new(),
            }
        });
        Sock { stream, ring }
    }

    /// The socket.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The TCP socket, if it is one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match &self.stream {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(_) => None,
        }
    }

    /// Whether receives and sends go through the ring.
    pub fn in_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// Reads what arrives next and hands it to `sink` (at most one receive's worth);
    /// returns its length, 0 at end of stream. On the readiness path the bytes land in
    /// `scratch` first, borrowed only inside one poll.
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &RefCell<Vec<u8>>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        match &mut self.ring {
            Some(ring) => {
                let Some((buf, from)) = std::task::ready!(ring.poll_next(cx)?) else {
                    return Poll::Ready(Ok(0));
                };
                sink(&buf[from..]);
                Poll::Ready(Ok(buf.len() - from))
            }
            None => {
                let mut scratch = scratch.borrow_mut();
                let n = self.poll_read(cx, &mut scratch);
                if let Poll::Ready(Ok(n)) = n {
                    sink(&scratch[..n]);
                }
                n
            }
        }
    }

    /// [`Sock::poll_read_with`] as a future.
    pub async fn read_with(
        &mut self,
        scratch: &RefCell<Vec<u8>>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> io::Result<usize> {
        futures_lite::future::poll_fn(|cx| self.poll_read_with(cx, scratch, sink)).await
    }

    /// Sends all of `buf` (plaintext replies). In the ring the send is queued and this
    /// returns at once (after the previous send has completed), leaving an empty buffer in
    /// `buf`: the connection goes on to queue its next receive in the same executor turn.
    /// Elsewhere it writes and clears `buf`.
    pub async fn send_queued(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        match &mut self.ring {
            Some(ring) => {
                ring.io.flush().await?;
                ring.io.send(buf)
            }
            None => {
                self.stream.write_all(buf).await?;
                buf.clear();
                Ok(())
            }
        }
    }

    /// Closes the socket (its write side first: the peer reads what was sent, then EOF).
    pub async fn close(&mut self) {
        if let Some(ring) = &mut self.ring {
            let _ = ring.io.flush().await;
        }
        self.stream.close().await;
    }
}

/// What the TLS layer reads from and writes to: a [`Sock`] (the ring, after the handshake)
/// or a bare `TcpStream` (the handshake and the kTLS switch).
#[allow(async_fn_in_trait)] // executors are single-threaded: the futures need not be Send
pub trait ByteStream {
    /// Reads into `buf`; returns the bytes read, 0 at end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// [`ByteStream::poll_read`] as a future.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// Writes all of `data`.
    async fn write_all(&mut self, data: &[u8]) -> io::Result<()>;

    /// Writes `buf[..len]`; a stream that can moves `buf` into the send (no copy) and back
    /// when it is done, and may leave it empty after an error.
    async fn write_buf(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
        self.write_all(&buf[..len]).await
    }
}

impl ByteStream for TcpStream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(self).poll_read(cx, buf)
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(self, data).await
    }
}

impl ByteStream for Sock {
    /// Reads into `buf`; returns the bytes read, 0 at end of stream. A received buffer
    /// larger than `buf` is kept for the next read.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let Some(ring) = &mut self.ring else {
            return self.stream.poll_read(cx, buf);
        };
        let Some((got, from)) = std::task::ready!(ring.poll_next(cx)?) else {
            return Poll::Ready(Ok(0));
        };
        let n = buf.len().min(got.len() - from);
        buf[..n].copy_from_slice(&got[from..from + n]);
        if from + n < got.len() {
            ring.left = Some((got, from + n));
        }
        Poll::Ready(Ok(n))
    }

    /// Writes all of `data` (copied once into a buffer the send owns, in the ring).
    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.ring {
            Some(ring) => {
                ring.out.clear();
                ring.out.extend_from_slice(data);
                let result = ring.io.send_all(&mut ring.out, data.len()).await;
                if ring.out.capacity() > RECV_BUF_SIZE {
                    // Not kept past a large write.
                    ring.out = Vec::new();
                }
                result
            }
            None => self.stream.write_all(data).await,
        }
    }

    /// Writes `buf[..len]`, moving `buf` into the send (no copy) and back when it is done;
    /// after an error `buf` may be left empty.
    async fn write_buf(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
        match &mut self.ring {
            Some(ring) => ring.io.send_all(buf, len).await,
            None => self.write_all(&buf[..len]).await,
        }
    }
}

/// The executor's receive pool, or None (with a log line saying why) when the ring cannot
/// provide buffers: connections then stay on glommio's readiness path.
pub fn recv_pool() -> Option<RecvPool> {
    static SAID: std::sync::Once = std::sync::Once::new();
    match RecvPool::new(RECV_BUFFERS, RECV_BUF_SIZE) {
        Ok(pool) => {
            if !pool.has_buf_ring() {
                SAID.call_once(|| {
                    crate::kernel::log_fallback(
                        "provided-buffer rings (Linux 5.19)",
                        "receive buffers go back to the kernel by IORING_OP_PROVIDE_BUFFERS \
                         requests instead",
                    )
                });
            }
            Some(pool)
        }
        Err(e) => {
            eprintln!(
                "tessera: io_uring provided buffers unavailable ({e}); sockets use readiness \
                 polling and one system call per read and write"
            );
            None
        }
    }
}
