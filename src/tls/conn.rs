//! One TLS connection over rustls's unbuffered API.
//!
//! Ciphertext is decrypted in place where it was read: in the executor's scratch buffer
//! when the connection had nothing buffered (so an idle connection holds no ciphertext
//! buffer), else in the connection's `incoming`, which keeps only a partial record between
//! reads; plaintext goes straight into the protocol session. Replies are encrypted through a
//! write buffer borrowed from the executor's pool for the length of one write, so an idle
//! connection holds no write buffer, and a batch of replies leaves as few records as fit in
//! `ssl_wbuf_size`, in one write per buffer. The same state machine is what kTLS takes over
//! after the handshake (rustls's kernel-connection API needs the unbuffered connection).

use std::sync::Arc;

use crate::sock::ByteStream;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};
use rustls::{HandshakeKind, ServerConfig};

mod kernel;
pub mod mem;
mod wbuf;
mod write;

pub use wbuf::WbufPool;

/// Largest TLS record on the wire (TLS 1.2 allows 2048 bytes of expansion).
const MAX_RECORD: usize = 5 + 16384 + 2048;
/// First size of a connection's ciphertext buffer.
const INCOMING_INITIAL: usize = 4096;

/// Why a handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer spoke TLS wrongly, or the certificate was refused.
    Tls(rustls::Error),
    /// The socket failed or the peer left.
    Io(std::io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Tls(e) => write!(f, "TLS: {e}"),
            HandshakeError::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

impl HandshakeError {
    /// Whether the client's certificate was missing or did not verify.
    pub fn is_verify_failure(&self) -> bool {
        matches!(
            self,
            HandshakeError::Tls(
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        )
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Tls(e) => Some(e),
            HandshakeError::Io(e) => Some(e),
        }
    }
}

/// What processing the buffered ciphertext led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The handshake needs more bytes from the peer.
    NeedMore,
    /// Application data may flow; all complete records were consumed.
    Ready,
    /// Both sides have closed.
    Closed,
}

/// A TLS connection's state.
pub struct TlsStream {
    conn: UnbufferedServerConnection,
    incoming: Vec<u8>,
    used: usize,
    /// Handshake records and alerts waiting to be sent, in order.
    pending: Vec<u8>,
    peer_closed: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("used", &self.used)
            .field("pending", &self.pending.len())
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl TlsStream {
    /// Runs the server side of a handshake. `initial` holds bytes already read from the
    /// socket (permissive listeners peek at the first byte). Application data that arrived
    /// along with the client's last handshake message is appended to `early_plain`.
    pub async fn accept<S: ByteStream>(
        stream: &mut S,
        config: Arc<ServerConfig>,
        initial: &[u8],
        early_plain: &mut Vec<u8>,
    ) -> Result<TlsStream, HandshakeError> {
        let conn = UnbufferedServerConnection::new(config).map_err(HandshakeError::Tls)?;
        let mut t = TlsStream {
            conn,
            incoming: vec![0; INCOMING_INITIAL.max(initial.len())],
            used: 0,
            pending: Vec::new(),
            peer_closed: false,
        };
        t.incoming[..initial.len()].copy_from_slice(initial);
        t.used = initial.len();
        loop {
            let flow = t.process(&mut |p| early_plain.extend_from_slice(p));
            t.flush_pending(stream).await.map_err(HandshakeError::Io)?;
            match flow {
                Ok(Flow::Ready) => {
                    t.shrink_idle();
                    return Ok(t);
                }
                Ok(Flow::NeedMore) => {}
                Ok(Flow::Closed) => {
                    return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                Err(e) => return Err(HandshakeError::Tls(e)),
            }
            if t.fill(stream).await.map_err(HandshakeError::Io)? == 0 {
                return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
    /// "userspace/TLSv1.3/TLS13_AES_128_GCM_SHA256", for `stats conns`.
    pub fn label(&self) -> String {
        super::ktls::path_label(
            "userspace",
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite(),
        )
    }

    /// Whether part of a record is buffered (a request may be on its way).
    pub fn has_partial_record(&self) -> bool {
        self.used > 0
    }

    /// Whether this handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    /// "TLSv1.3 TLS13_AES_128_GCM_SHA256" and the like, for logs.
    pub fn describe(&self) -> String {
        format!(
            "{:?} {:?}",
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite().map(|s| s.suite())
        )
    }

    /// Processes every complete record in `incoming`: application data to `sink`,
    /// handshake output and alerts to `pending`.
    fn process(&mut self, sink: &mut dyn FnMut(&[u8])) -> Result<Flow, rustls::Error> {
        loop {
            let UnbufferedStatus { mut discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[..self.used]);
            let flow = match state {
                Err(e) => {
                    // An alert may be queued: the next calls hand it out before the error.
                    let _ = discard;
                    self.used = 0;
                    self.drain_alerts();
                    return Err(e);
                }
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    while let Some(rec) = r.next_record() {
                        let rec = rec?;
                        discard += rec.discard;
                        sink(rec.payload);
                    }
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    encode_into(&mut self.pending, |buf| e.encode(buf))?;
                    None
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    // `pending` goes out before anything written after this point.
                    t.done();
                    None
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Flow::NeedMore),
                Ok(ConnectionState::WriteTraffic(_)) => Some(Flow::Ready),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::Closed) => Some(Flow::Closed),
                // Early data is off (max_early_data_size = 0); anything new is unexpected.
                Ok(_) => return Err(rustls::Error::General("unexpected TLS state".into())),
            };
            if discard > 0 {
                self.incoming.copy_within(discard..self.used, 0);
                self.used -= discard;
            }
            if let Some(f) = flow {
                return Ok(f);
            }
        }
    }

    /// After an error: collect the alert rustls queued, if any. Only while something is
    /// queued: with nothing queued, rustls would go on to deframe the input, which is gone
    /// (and a half-received handshake message it tracks by offsets into that input makes
    /// it index past the end: a panic).
    fn drain_alerts(&mut self) {
        for _ in 0..4 {
            if !self.conn.wants_write() {
                return;
            }
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    if encode_into(&mut self.pending, |buf| e.encode(buf)).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Reads more ciphertext into `incoming`; returns 0 at EOF.
    async fn fill<S: ByteStream>(&mut self, stream: &mut S) -> std::io::Result<usize> {
        let n = stream.read(self.fill_space()?).await?;
        self.used += n;
        Ok(n)
    }

    /// The free part of `incoming` to read into, grown as needed; an error once a record
    /// could no longer fit.
    fn fill_space(&mut self) -> std::io::Result<&mut [u8]> {
        if self.incoming.is_empty() {
            self.incoming.resize(INCOMING_INITIAL, 0);
        }
        if self.used == self.incoming.len() {
            if self.incoming.len() >= MAX_RECORD + 5 {
                return Err(io_err("TLS record larger than the protocol allows"));
            }
            let grown = (self.incoming.len() * 2).min(MAX_RECORD + 5);
            self.incoming.resize(grown, 0);
        }
        Ok(&mut self.incoming[self.used..])
    }

    /// Gives back the ciphertext buffer once it is empty (the next read allocates it).
    fn shrink_idle(&mut self) {
        if self.used == 0 && !self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = Vec::new();
        }
    }

    async fn flush_pending<S: ByteStream>(&mut self, stream: &mut S) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            stream.write_all(&self.pending).await?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Reads until some plaintext arrives (appended through `sink`); returns its length,
    /// 0 when the peer closed (close_notify or EOF). Ciphertext bytes read are added to
    /// `raw_read`.
    pub async fn read_plain<S: ByteStream>(
        &mut self,
        stream: &mut S,
        sink: &mut dyn FnMut(&[u8]),
        raw_read: &mut u64,
        scratch: &std::cell::RefCell<Vec<u8>>,
    ) -> std::io::Result<usize> {
        // Bytes of the last read that are still in the scratch buffer, not in `incoming`.
        let mut in_scratch = None;
        loop {
            let mut got = 0usize;
            let mut count = |p: &[u8]| {
                got += p.len();
                sink(p);
            };
            let flow = match in_scratch.take() {
                None => self.process(&mut count),
                Some(n) => self.process_scratch(scratch, n, &mut count),
            };
            self.flush_pending(stream).await?;
            let flow = flow.map_err(io_err)?;
            if got > 0 {
                self.shrink_idle();
                return Ok(got);
            }
            if self.peer_closed || flow == Flow::Closed {
                return Ok(0);
            }
            let n = if self.used > 0 {
                // A record is partly here: read the rest into `incoming`.
                self.fill(stream).await?
            } else {
                // Nothing buffered: wait holding no ciphertext buffer; the read lands in
                // the executor's scratch and is decrypted there.
                let n = futures_lite::future::poll_fn(|cx| {
                    stream.poll_read(cx, &mut scratch.borrow_mut())
                })
                .await?;
                // No await until it is processed: the scratch keeps exactly these bytes.
                in_scratch = Some(n);
                n
            };
            if n == 0 {
                return Ok(0);
            }
            *raw_read += n as u64;
        }
    }

    /// `process` on the first `n` bytes of the executor's scratch, decrypted in place
    /// there; only a trailing partial record is copied into `incoming`.
    fn process_scratch(
        &mut self,
        scratch: &std::cell::RefCell<Vec<u8>>,
        n: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<Flow, rustls::Error> {
        let mut buf = scratch.borrow_mut();
        let own = std::mem::replace(&mut self.incoming, std::mem::take(&mut *buf));
        self.used = n;
        let flow = self.process(sink);
        *buf = std::mem::replace(&mut self.incoming, own);
        if self.used > 0 {
            let keep = self.used.max(INCOMING_INITIAL);
            if self.incoming.len() < keep {
                self.incoming.resize(keep, 0);
            }
            self.incoming[..self.used].copy_from_slice(&buf[..self.used]);
        }
        flow
    }
}

/// Encodes a handshake record into `pending`, growing it as rustls asks.
fn encode_into(
    pending: &mut Vec<u8>,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<(), rustls::Error> {
    let start = pending.len();
    let mut want = 4096;
    loop {
        pending.resize(start + want, 0);
        match encode(&mut pending[start..]) {
            Ok(n) => {
                pending.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(s)) => {
                want = s.required_size;
            }
            Err(e) => {
                pending.truncate(start);
                return Err(rustls::Error::General(format!(
                    "encoding a TLS record: {e}"
                )));
            }
        }
    }
}
