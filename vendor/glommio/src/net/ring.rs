// (tessera) The data path of a socket inside the ring: receives and sends as io_uring
// operations, queued and submitted with everything else at the executor's next turn.
//
// glommio's own streams try a direct `recv`/`send` system call first and use the ring only
// to wait for readiness: one system call per read and per write. Here a read is an
// IORING_OP_RECV and a write an IORING_OP_SEND, so a busy executor makes one
// `io_uring_enter` per turn for all its connections.
//
// A receive names no buffer of its own: the kernel picks one from a `RecvPool`, a group of
// provided buffers, when data arrives, so an idle connection holds no memory. With a
// provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19) a buffer goes back to the
// kernel by a store into shared memory; before 5.19 by an IORING_OP_PROVIDE_BUFFERS request
// (Linux 5.7) queued like any other. If the group is empty when data arrives the receive
// fails with ENOBUFS and is retried into a buffer of its own (counted: `RecvPool::exhausted`).
//
// A send owns its buffer (a `Vec`) until the kernel completes it, so dropping the future or
// the socket never leaves the kernel reading freed memory; the buffer comes back to the
// caller when the send is done.

//! Receives and sends as io_uring operations (tessera's addition; see `TESSERA-PATCH.md`).

use std::{
    alloc::{self, Layout},
    cell::Cell,
    fmt, io,
    os::unix::io::RawFd,
    ptr::NonNull,
    rc::{Rc, Weak},
    sync::atomic::{AtomicU16, Ordering},
    task::{Context, Poll},
};

use nix::sys::socket::MsgFlags;

use crate::{
    reactor::Reactor,
    sys::{DmaBuffer, Source, SourceType},
};

/// IORING_CQE_F_BUFFER: the completion's upper 16 flag bits name the buffer it used.
const CQE_F_BUFFER: u32 = 1;
const CQE_BUFFER_SHIFT: u32 = 16;
/// IORING_CQE_F_SOCK_NONEMPTY (Linux 5.19): the socket still had data after this receive.
const CQE_F_SOCK_NONEMPTY: u32 = 1 << 2;
/// Largest capacity of a sent buffer kept for the next `send`.
const SPARE_KEEP: usize = 64 * 1024;

thread_local! {
    /// Buffer group ids are per ring, and each executor thread has its own rings.
    static NEXT_BGID: Cell<u16> = const { Cell::new(0x7e00) };
}

/// A group of receive buffers the kernel picks from, per executor.
#[derive(Clone)]
pub struct RecvPool {
    inner: Rc<PoolInner>,
}

impl RecvPool {
    /// `count` buffers (a power of two, at most 32768) of `buf_size` bytes each, handed to
    /// this executor's main ring. Must be called on an executor.
    pub fn new(count: u16, buf_size: usize) -> io::Result<RecvPool> {
        if !count.is_power_of_two() || count > 32768 || buf_size == 0 || buf_size > u32::MAX as usize
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "RecvPool: count must be a power of two up to 32768 and buf_size 1..4 GiB",
            ));
        }
        let reactor = crate::executor().reactor();
        let bgid = NEXT_BGID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        let mem = Region::new(count as usize * buf_size)?;
        let ring = Region::new(count as usize * 16)?;
        let kind = match reactor
            .sys
            .register_buf_ring(ring.ptr.as_ptr() as u64, count as u32, bgid)
        {
            Ok(()) => Kind::Ring {
                ring,
                tail: Cell::new(0),
            },
            // EINVAL: a kernel before 5.19 knows no such opcode.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Kind::Legacy,
            Err(e) => return Err(e),
        };
        let inner = Rc::new(PoolInner {
            bgid,
            buf_size,
            count,
            mem,
            kind,
            reactor: Rc::downgrade(&reactor),
            exhausted: Cell::new(0),
        });
        match &inner.kind {
            Kind::Ring { .. } => (0..count).for_each(|bid| inner.add(bid)),
            Kind::Legacy => reactor.sys.provide_buffers(
                inner.mem.ptr.as_ptr(),
                buf_size as u32,
                count as u32,
                bgid,
                0,
            ),
        }
        Ok(RecvPool { inner })
    }

    /// Whether buffers go back through a provided-buffer ring (Linux 5.19+) rather than
    /// IORING_OP_PROVIDE_BUFFERS requests.
    pub fn has_buf_ring(&self) -> bool {
        matches!(self.inner.kind, Kind::Ring { .. })
    }

    /// The size of each buffer: the most one receive returns.
    pub fn buf_size(&self) -> usize {
        self.inner.buf_size
    }

    /// How many receives found the group empty and were retried into a buffer of their own.
    pub fn exhausted(&self) -> u64 {
        self.inner.exhausted.get()
    }
}

impl fmt::Debug for RecvPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvPool")
            .field("bgid", &self.inner.bgid)
            .field("count", &self.inner.count)
            .field("buf_size", &self.inner.buf_size)
            .field("buf_ring", &self.has_buf_ring())
            .finish()
    }
}

/// Page-aligned memory the kernel reads or writes while registered.
struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Region {
    fn new(size: usize) -> io::Result<Region> {
        let layout = Layout::from_size_align(size.max(1), 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(ptr)
            .map(|ptr| Region { ptr, layout })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

enum Kind {
    /// A provided-buffer ring: `count` entries of struct io_uring_buf; the kernel's tail
    /// index is the 16 bits at byte 14 (the first entry's reserved field).
    Ring { ring: Region, tail: Cell<u16> },
    /// Buffers go back with IORING_OP_PROVIDE_BUFFERS.
    Legacy,
}

pub(crate) struct PoolInner {
    bgid: u16,
    buf_size: usize,
    count: u16,
    mem: Region,
    kind: Kind,
    reactor: Weak<Reactor>,
    exhausted: Cell<u64>,
}

impl PoolInner {
    fn buf(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.count);
        // SAFETY: bid < count, so the offset is inside `mem`.
        unsafe { self.mem.ptr.as_ptr().add(bid as usize * self.buf_size) }
    }

    /// Hands buffer `bid` (back) to the kernel.
    fn add(&self, bid: u16) {
        match &self.kind {
            Kind::Ring { ring, tail } => {
                let t = tail.get();
                let entry = (t & (self.count - 1)) as usize * 16;
                let base = ring.ptr.as_ptr();
                // SAFETY: `entry` is inside the ring. Fields are written one by one, never
                // the whole entry: the first entry's last two bytes are the kernel's tail.
                // The kernel reads an entry only once the tail has moved past it, and the
                // release store below orders these writes before that.
                unsafe {
                    (base.add(entry) as *mut u64).write(self.buf(bid) as u64);
                    (base.add(entry + 8) as *mut u32).write(self.buf_size as u32);
                    (base.add(entry + 12) as *mut u16).write(bid);
                    let t = t.wrapping_add(1);
                    tail.set(t);
                    (*(base.add(14) as *const AtomicU16)).store(t, Ordering::Release);
                }
            }
            Kind::Legacy => {
                if let Some(reactor) = self.reactor.upgrade() {
                    reactor.sys.provide_buffers(
                        self.buf(bid),
                        self.buf_size as u32,
                        1,
                        self.bgid,
                        bid,
                    );
                }
            }
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // Every receive that could pick a buffer holds this pool, so none is in flight:
        // the kernel lets go of the ring, then its memory is freed.
        if let (Kind::Ring { .. }, Some(reactor)) = (&self.kind, self.reactor.upgrade()) {
            let _ = reactor.sys.unregister_buf_ring(self.bgid);
        }
    }
}

/// What a receive's source keeps: its pool, and the buffer the kernel picked once it has.
/// A buffer nobody took (the receive's future was dropped) goes back to the pool.
pub(crate) struct Selected {
    pool: Rc<PoolInner>,
    bid: Option<u16>,
    /// Ask the kernel to wait for data before trying (IORING_RECVSEND_POLL_FIRST).
    poll_first: bool,
    /// The completion said the socket still had data (IORING_CQE_F_SOCK_NONEMPTY).
    nonempty: bool,
}

impl Selected {
    pub(crate) fn bgid(&self) -> u16 {
        self.pool.bgid
    }

    pub(crate) fn buf_len(&self) -> u32 {
        self.pool.buf_size as u32
    }

    pub(crate) fn poll_first(&self) -> bool {
        self.poll_first
    }

    /// The completion's flags arrived.
    pub(crate) fn completed(&mut self, cqe_flags: u32) {
        if cqe_flags & CQE_F_BUFFER != 0 {
            self.bid = Some((cqe_flags >> CQE_BUFFER_SHIFT) as u16);
        }
        self.nonempty = cqe_flags & CQE_F_SOCK_NONEMPTY != 0;
    }
}

impl Drop for Selected {
    fn drop(&mut self) {
        if let Some(bid) = self.bid.take() {
            self.pool.add(bid);
        }
    }
}

impl fmt::Debug for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selected")
            .field("bgid", &self.pool.bgid)
            .field("bid", &self.bid)
            .finish()
    }
}

/// Bytes one receive returned: a buffer of the pool (back to the kernel when dropped), or
/// one of its own when the pool was empty.
pub struct RecvBuf {
    inner: BufInner,
    len: usize,
}

enum BufInner {
    Pooled { pool: Rc<PoolInner>, bid: u16 },
    Owned(DmaBuffer),
}

impl std::ops::Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            // SAFETY: the kernel wrote `len` bytes into buffer `bid` and handed it to us; it
            // is not given back (so not written) before this RecvBuf is dropped.
            BufInner::Pooled { pool, bid } => unsafe {
                std::slice::from_raw_parts(pool.buf(*bid), self.len)
            },
            BufInner::Owned(buf) => &buf.as_bytes()[..self.len],
        }
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        if let BufInner::Pooled { pool, bid } = &self.inner {
            pool.add(*bid);
        }
    }
}

impl fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuf").field("len", &self.len).finish()
    }
}

/// One socket's receives and sends through the ring. The socket stays owned by the caller,
/// who keeps it open while this lives (the kernel holds its own reference to the file for
/// any operation in flight, so closing early is safe, only pointless).
pub struct RingIo {
    fd: RawFd,
    reactor: Weak<Reactor>,
    recv: Option<Source>,
    send: Option<Source>,
    /// Bytes of the in-flight send's buffer that went out before its current operation
    /// (a short send is resubmitted for the rest), and where its bytes end.
    sent: usize,
    end: usize,
    /// The buffer of the send that just completed, on its way back to `send_all`'s caller.
    spare: Vec<u8>,
    /// The last receive left the socket empty: the next one waits for data first.
    poll_first: bool,
}

impl fmt::Debug for RingIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingIo")
            .field("fd", &self.fd)
            .field("recv_pending", &self.recv.is_some())
            .field("send_pending", &self.send.is_some())
            .finish()
    }
}

fn no_reactor() -> io::Error {
    io::Error::new(io::ErrorKind::Other, "the executor has shut down")
}

impl RingIo {
    /// Receives and sends on `fd`. Must be called on an executor.
    pub fn new(fd: RawFd) -> RingIo {
        RingIo {
            fd,
            reactor: Rc::downgrade(&crate::executor().reactor()),
            recv: None,
            send: None,
            sent: 0,
            end: 0,
            spare: Vec::new(),
            poll_first: false,
        }
    }

    /// The next bytes from the socket, `None` at end of stream. A receive is queued on the
    /// first poll and stays queued (the bytes are not lost) if the future is dropped and
    /// polled again; dropping the `RingIo` cancels it.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        pool: &RecvPool,
    ) -> Poll<io::Result<Option<RecvBuf>>> {
        loop {
            let source = match &self.recv {
                Some(source) => source,
                None => {
                    let reactor = self.reactor.upgrade().ok_or_else(no_reactor)?;
                    let selected = Selected {
                        pool: pool.inner.clone(),
                        bid: None,
                        poll_first: self.poll_first,
                        nonempty: false,
                    };
                    self.recv.insert(reactor.recv_select(self.fd, selected))
                }
            };
            let Some(result) = source.result() else {
                source.add_waiter_single(cx.waker());
                return Poll::Pending;
            };
            let source = self.recv.take().expect("checked above");
            let (inner, len) = match (result, source.extract_source_type()) {
                (Ok(0), _) => return Poll::Ready(Ok(None)),
                (Ok(len), SourceType::SockRecvSelect(mut selected)) => match selected.bid.take() {
                    Some(bid) => {
                        // The next receive waits for data before trying when this one
                        // emptied the socket: the common case between requests, where a
                        // first try would only fail with EAGAIN and then arm the poll.
                        // Kernels with provided-buffer rings (5.19) have both flags; on
                        // older ones the socket never reports non-empty, so never ask.
                        self.poll_first = pool.has_buf_ring() && !selected.nonempty;
                        (
                        BufInner::Pooled {
                            pool: selected.pool.clone(),
                            bid,
                        },
                        len,
                    )
                    }
                    None => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::Other,
                            "io_uring receive completed without a buffer",
                        )))
                    }
                },
                (Ok(len), SourceType::SockRecv(Some(buf))) => (BufInner::Owned(buf), len),
                (Err(e), SourceType::SockRecvSelect(_)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Every buffer is out: receive this once into a buffer of its own.
                    pool.inner.exhausted.set(pool.inner.exhausted.get() + 1);
                    let reactor = self.reactor.upgrade().ok_or_else(no_reactor)?;
                    self.recv = Some(reactor.recv(self.fd, pool.inner.buf_size, MsgFlags::empty()));
                    continue;
                }
                (Err(e), _) => return Poll::Ready(Err(e)),
                (Ok(_), other) => unreachable!("receive source turned into {other:?}"),
            };
            return Poll::Ready(Ok(Some(RecvBuf { inner, len })));
        }
    }

    /// [`Self::poll_recv`] as a future.
    pub async fn recv(&mut self, pool: &RecvPool) -> io::Result<Option<RecvBuf>> {
        futures_lite::future::poll_fn(|cx| self.poll_recv(cx, pool)).await
    }

    /// Queues all of `buf` to be sent and returns at once: the send reaches the kernel with
    /// everything else at the executor's next turn, while the caller goes on (say, to
    /// queue its next receive in the same turn). `buf` moves into the operation and the
    /// buffer of an earlier send, emptied, takes its place for the caller to fill. Call
    /// [`Self::flush`] before the next send and before closing: it reports this send's
    /// outcome.
    ///
    /// # Errors
    /// If a send is still in flight (flush first), or the executor is gone.
    pub fn send(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if self.send.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Other,
                "RingIo::send with a send in flight",
            ));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let reactor = self.reactor.upgrade().ok_or_else(no_reactor)?;
        let mut spare = std::mem::take(&mut self.spare);
        spare.clear();
        if spare.capacity() > SPARE_KEEP {
            // Not kept past a large reply.
            spare = Vec::new();
        }
        let data = std::mem::replace(buf, spare);
        let len = data.len();
        self.start_send(&reactor, data, len);
        Ok(())
    }

    /// Queues the send of `data[..len]`, which the operation owns from here on.
    fn start_send(&mut self, reactor: &Reactor, data: Vec<u8>, len: usize) {
        self.sent = 0;
        self.end = len;
        self.send = Some(reactor.send_owned(self.fd, data, 0, len));
    }

    /// Sends `buf[..len]` whole. The buffer moves into the operation (the kernel reads it
    /// after this returns Pending, and may still if the future is dropped) and comes back
    /// in `buf`, unchanged, when the send is done; after an error or a dropped future
    /// `buf` is left empty. Short sends (a full socket buffer) are resubmitted for the rest.
    pub async fn send_all(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
        // A send whose future was dropped is finished first: its bytes precede these.
        self.flush().await?;
        if len == 0 {
            return Ok(());
        }
        assert!(len <= buf.len(), "RingIo::send_all past the end of the buffer");
        let reactor = self.reactor.upgrade().ok_or_else(no_reactor)?;
        self.start_send(&reactor, std::mem::take(buf), len);
        let result = self.flush().await;
        // This send's buffer, back to the caller.
        std::mem::swap(buf, &mut self.spare);
        self.spare = Vec::new();
        result
    }

    /// Waits until the send in flight, if any, went out whole; its buffer is kept in
    /// `spare` for `send_all` to hand back.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some(source) = &self.send else {
                return Poll::Ready(Ok(()));
            };
            let Some(result) = source.result() else {
                source.add_waiter_single(cx.waker());
                return Poll::Pending;
            };
            let source = self.send.take().expect("checked above");
            let SourceType::SockSendOwned(data) = source.extract_source_type() else {
                unreachable!("send source changed type")
            };
            match result {
                Ok(n) if n > 0 && self.sent + n < self.end => {
                    // A short send (the socket's buffer filled): the rest goes next.
                    self.sent += n;
                    let reactor = self.reactor.upgrade().ok_or_else(no_reactor)?;
                    self.send = Some(reactor.send_owned(self.fd, data, self.sent, self.end));
                }
                Ok(n) => {
                    let whole = self.sent + n >= self.end;
                    self.spare = data;
                    return Poll::Ready(if whole {
                        Ok(())
                    } else {
                        Err(io::ErrorKind::WriteZero.into())
                    });
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Waits until the send in flight, queued by [`Self::send`] (or left by a dropped
    /// `send_all` future), went out whole, and reports how it went.
    pub async fn flush(&mut self) -> io::Result<()> {
        futures_lite::future::poll_fn(|cx| self.poll_flush(cx)).await
    }
}
