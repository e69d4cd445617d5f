//! The write side of a rustls connection: replies are encrypted through a buffer borrowed
//! from the executor's pool for the length of one write, so an idle connection holds no
//! write buffer and a batch of replies leaves in as few records and writes as fit.

use crate::sock::ByteStream;
use rustls::unbuffered::{ConnectionState, EncryptError, UnbufferedStatus};

use super::wbuf::WbufPool;
use super::{TlsStream, encode_into, io_err};

impl TlsStream {
    /// Encrypts `data` and writes it, through buffers from `pool`. Returns the ciphertext
    /// bytes written.
    pub async fn write_plain<S: ByteStream>(
        &mut self,
        stream: &mut S,
        data: &[u8],
        pool: &WbufPool,
    ) -> std::io::Result<usize> {
        self.flush_pending(stream).await?;
        let mut buf = pool.take();
        let result = self.write_chunks(stream, data, &mut buf, pool).await;
        pool.give(buf);
        result
    }

    async fn write_chunks<S: ByteStream>(
        &mut self,
        stream: &mut S,
        data: &[u8],
        buf: &mut Vec<u8>,
        pool: &WbufPool,
    ) -> std::io::Result<usize> {
        let per = pool.plain_per_buffer();
        let mut written = 0;
        for chunk in data.chunks(per) {
            let n = self.encrypt(chunk, buf)?;
            // Handshake-time messages rustls queued while encrypting (e.g. a key update)
            // go out first.
            self.flush_pending(stream).await?;
            // In the ring the buffer itself is sent (no copy) and comes back.
            stream.write_buf(buf, n).await?;
            written += n;
        }
        Ok(written)
    }

    pub(super) fn encrypt(&mut self, plain: &[u8], out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // The buffered input goes along, as rustls left it: part of a handshake message
            // (say a KeyUpdate split over records) is tracked by offsets into it, and rustls
            // indexes past the end of a shorter buffer (a panic).
            let UnbufferedStatus { discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[..self.used]);
            let written = match state.map_err(io_err)? {
                ConnectionState::WriteTraffic(mut w) => {
                    Some(w.encrypt(plain, out).map_err(|e| match e {
                        EncryptError::InsufficientSize(s) => {
                            io_err(format!("write buffer too small for a record: {s:?}"))
                        }
                        e => io_err(e),
                    }))
                }
                ConnectionState::EncodeTlsData(mut e) => {
                    encode_into(&mut self.pending, |b| e.encode(b)).map_err(io_err)?;
                    None
                }
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    None
                }
                other => return Err(io_err(format!("cannot send in TLS state {other:?}"))),
            };
            if discard > 0 {
                self.incoming.copy_within(discard..self.used, 0);
                self.used -= discard;
            }
            if let Some(written) = written {
                return written;
            }
        }
    }

    /// Sends close_notify (best effort).
    pub async fn close<S: ByteStream>(&mut self, stream: &mut S) {
        let mut buf = [0u8; 64];
        let n = {
            // With the buffered input, as in `encrypt`.
            let UnbufferedStatus { state, .. } = self
                .conn
                .process_tls_records(&mut self.incoming[..self.used]);
            match state {
                Ok(ConnectionState::WriteTraffic(mut w)) => {
                    w.queue_close_notify(&mut buf).unwrap_or(0)
                }
                _ => 0,
            }
        };
        let _ = self.flush_pending(stream).await;
        if n > 0 {
            let _ = stream.write_all(&buf[..n]).await;
        }
    }

    /// Sends whatever alert an error left queued (best effort).
    pub async fn send_alerts<S: ByteStream>(&mut self, stream: &mut S) {
        let _ = self.flush_pending(stream).await;
    }
}
