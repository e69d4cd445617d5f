//! A connection after the switch: the kernel encrypts and decrypts its records; this side
//! deals with the records that are not application data (alerts, key updates) and counts the
//! records sent against the cipher suite's limit.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, ProtocolVersion, SupportedCipherSuite};

use super::abi::{CT_ALERT, CT_APPLICATION_DATA, CT_HANDSHAKE, TLS_RX, TLS_TX};
use super::keys::CryptoInfo;
use super::probe::{Declined, KernelSupport, SwitchError, path_label};
use super::sys::{clear_socket_error, recv_record, send_record, set_crypto, set_ulp};

/// Handshake message type of a TLS 1.3 KeyUpdate.
const HS_KEY_UPDATE: u8 = 24;

/// Alert descriptions sent or recognised here.
const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_UNEXPECTED_MESSAGE: u8 = 10;
const ALERT_BAD_RECORD_MAC: u8 = 20;
const ALERT_RECORD_OVERFLOW: u8 = 22;
const ALERT_DECODE_ERROR: u8 = 50;
const ALERT_USER_CANCELED: u8 = 90;

/// Largest plaintext in one record.
const MAX_FRAGMENT: usize = 16384;
/// Largest `send` this module makes: bounds how many records one call can produce.
pub(super) const MAX_SEND: usize = 256 * 1024;

/// The records one `send` of `n` bytes can produce: every full record, plus one that the
/// end of the call closes (or leaves open for the next call).
pub(super) fn records_for(n: usize) -> u64 {
    (n / MAX_FRAGMENT) as u64 + 1
}

/// Where a kTLS read lands: a slice the caller holds, or a shared buffer (an executor's
/// scratch) borrowed only inside each synchronous read, so a waiting connection holds none.
pub trait ReadTarget {
    /// Runs `f` on the buffer.
    fn with<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R;
}

impl ReadTarget for &mut [u8] {
    fn with<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(self)
    }
}

impl ReadTarget for &std::cell::RefCell<Vec<u8>> {
    fn with<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// A connection whose records the kernel encrypts and decrypts.
pub struct KtlsStream {
    conn: KernelConnection<ServerConnectionData>,
    version: ProtocolVersion,
    /// Records sent under the current key (an upper bound).
    records: u64,
    /// Rekey or close before `records` passes this.
    limit: u64,
    /// Whether the kernel takes new TLS 1.3 keys.
    rekey: bool,
    /// For logs and `stats conns`.
    label: String,
    close_sent: bool,
}

impl std::fmt::Debug for KtlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KtlsStream")
            .field("label", &self.label)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl KtlsStream {
    /// Hands `stream`'s records to the kernel. The caller has drained rustls to a record
    /// boundary and sent everything it queued (the conditions rustls checks too), and got
    /// `negotiated` from [`KernelSupport::check`].
    /// `record_limit` (0: the suite's own) caps the records sent under one key.
    pub fn switch(
        stream: &TcpStream,
        conn: rustls::server::UnbufferedServerConnection,
        negotiated: (ProtocolVersion, SupportedCipherSuite),
        support: &KernelSupport,
        record_limit: u64,
    ) -> Result<
        KtlsStream,
        (
            SwitchError,
            Option<Box<rustls::server::UnbufferedServerConnection>>,
        ),
    > {
        let fd = stream.as_raw_fd();
        let (version, suite) = negotiated;
        if let Err(e) = set_ulp(fd) {
            return Err((
                SwitchError::Declined(Declined::Ulp(e)),
                Some(Box::new(conn)),
            ));
        }
        let (secrets, kconn) = conn
            .dangerous_into_kernel_connection()
            .map_err(|e| (SwitchError::Broken(io::Error::other(e.to_string())), None))?;
        let tx = CryptoInfo::from_secrets(version, secrets.tx.0, &secrets.tx.1);
        let rx = CryptoInfo::from_secrets(version, secrets.rx.0, &secrets.rx.1);
        let set = tx
            .and_then(|tx| set_crypto(fd, TLS_TX, &tx))
            .and_then(|()| rx.and_then(|rx| set_crypto(fd, TLS_RX, &rx)));
        if let Err(e) = set {
            return Err((
                SwitchError::Broken(io::Error::new(e.kind(), format!("kTLS keys refused: {e}"))),
                None,
            ));
        }
        let suite_limit = match suite {
            SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
            SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
        };
        let limit = match record_limit {
            0 => suite_limit,
            n => n.min(suite_limit),
        };
        let label = path_label("ktls", Some(version), Some(suite));
        Ok(KtlsStream {
            conn: kconn,
            version,
            records: secrets.tx.0,
            limit,
            rekey: support.rekey && version == ProtocolVersion::TLSv1_3,
            label,
            close_sent: false,
        })
    }

    /// "ktls/TLSv1.3/TLS13_AES_128_GCM_SHA256".
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Reads plaintext into `buf`; 0 when the peer closed (close_notify, EOF, or a key
    /// update this kernel cannot follow, answered with close_notify). Control records are
    /// dealt with here.
    pub async fn read(
        &mut self,
        stream: &mut TcpStream,
        mut buf: impl ReadTarget,
    ) -> io::Result<usize> {
        let fd = stream.as_raw_fd();
        for _ in 0..64 {
            let read = futures_lite::future::poll_fn(|cx| {
                use futures_lite::AsyncRead;
                buf.with(|b| std::pin::Pin::new(&mut *stream).poll_read(cx, b))
            });
            let err = match read.await {
                Ok(n) => return Ok(n),
                Err(e) => e,
            };
            match err.raw_os_error() {
                Some(libc::EIO) => {}
                Some(libc::EBADMSG) => {
                    // The kernel marked the socket with the error; clear it so the alert
                    // can still go out.
                    clear_socket_error(fd);
                    let _ = self.alert(fd, 2, ALERT_BAD_RECORD_MAC);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "kTLS: a record failed to decrypt (bad_record_mac)",
                    ));
                }
                Some(libc::EMSGSIZE) => {
                    clear_socket_error(fd);
                    let _ = self.alert(fd, 2, ALERT_RECORD_OVERFLOW);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "kTLS: record too long (record_overflow)",
                    ));
                }
                _ => return Err(err),
            }
            // A record that is not application data is next: read it with its type.
            let (typ, n) = match buf.with(|b| recv_record(fd, b)) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            match typ {
                CT_APPLICATION_DATA => return Ok(n),
                CT_ALERT => {
                    if n < 2 {
                        let _ = self.alert(fd, 2, ALERT_DECODE_ERROR);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "kTLS: short alert",
                        ));
                    }
                    match buf.with(|b| (b[0], b[1])) {
                        (_, ALERT_CLOSE_NOTIFY) => {
                            self.close_notify(fd);
                            return Ok(0);
                        }
                        // TLS 1.2 lets warnings pass; user_canceled precedes a close_notify.
                        (1, d)
                            if d == ALERT_USER_CANCELED
                                || self.version != ProtocolVersion::TLSv1_3 =>
                        {
                            continue;
                        }
                        (_, d) => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                format!("kTLS: the peer sent alert {d}"),
                            ));
                        }
                    }
                }
                CT_HANDSHAKE => {
                    if !buf.with(|b| self.handshake_message(fd, &b[..n]))? {
                        return Ok(0);
                    }
                }
                t => {
                    let _ = self.alert(fd, 2, ALERT_UNEXPECTED_MESSAGE);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("kTLS: unexpected record type {t}"),
                    ));
                }
            }
        }
        Err(io::Error::other("kTLS: too many control records in a row"))
    }

    /// Deals with post-handshake messages; false when the connection was closed cleanly.
    fn handshake_message(&mut self, fd: RawFd, mut msgs: &[u8]) -> io::Result<bool> {
        while !msgs.is_empty() {
            let (typ, body, rest) = match msgs {
                [t, a, b, c, rest @ ..] => {
                    let len = u32::from_be_bytes([0, *a, *b, *c]) as usize;
                    if rest.len() < len {
                        let _ = self.alert(fd, 2, ALERT_DECODE_ERROR);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "kTLS: a handshake message split across records",
                        ));
                    }
                    (*t, &rest[..len], &rest[len..])
                }
                _ => {
                    let _ = self.alert(fd, 2, ALERT_DECODE_ERROR);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "kTLS: short handshake message",
                    ));
                }
            };
            msgs = rest;
            let key_update = typ == HS_KEY_UPDATE
                && self.version == ProtocolVersion::TLSv1_3
                && matches!(body, [0] | [1]);
            if !key_update {
                let _ = self.alert(fd, 2, ALERT_UNEXPECTED_MESSAGE);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("kTLS: unexpected handshake message {typ} after the handshake"),
                ));
            }
            if !self.rekey {
                // The kernel cannot take the peer's new key: what follows would not decrypt.
                self.close_notify(fd);
                return Ok(false);
            }
            let next = self.conn.update_rx_secret();
            self.install_next(fd, TLS_RX, next)?;
            if body == [1] {
                self.rekey_tx(fd)?;
            }
        }
        Ok(true)
    }

    /// Sends a KeyUpdate (update_not_requested) and moves TX to the next key.
    fn rekey_tx(&mut self, fd: RawFd) -> io::Result<()> {
        send_record(fd, CT_HANDSHAKE, &[HS_KEY_UPDATE, 0, 0, 1, 0])?;
        let next = self.conn.update_tx_secret();
        self.records = self.install_next(fd, TLS_TX, next)?;
        Ok(())
    }

    /// Gives the kernel the next key rustls derived for one direction; returns its first
    /// sequence number.
    fn install_next(
        &self,
        fd: RawFd,
        direction: libc::c_int,
        next: Result<(u64, ConnectionTrafficSecrets), rustls::Error>,
    ) -> io::Result<u64> {
        let (seq, secrets) =
            next.map_err(|e| io::Error::other(format!("kTLS: key update: {e}")))?;
        set_crypto(
            fd,
            direction,
            &CryptoInfo::from_secrets(self.version, seq, &secrets)?,
        )?;
        Ok(seq)
    }

    /// Whether the records sent are close enough to the limit that the connection should
    /// end at the next quiet moment (when it cannot rekey).
    pub fn near_limit(&self) -> bool {
        !self.rekey && self.records >= self.limit - self.limit / 16
    }

    /// Writes `data` as application data; returns the bytes written.
    pub async fn write_all(&mut self, stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
        let fd = stream.as_raw_fd();
        let mut off = 0;
        while off < data.len() {
            let chunk = &data[off..data.len().min(off + MAX_SEND)];
            // One record is kept back for close_notify.
            if self.records + records_for(chunk.len()) + 1 > self.limit {
                if self.rekey {
                    self.rekey_tx(fd)?;
                } else {
                    self.close_notify(fd);
                    return Err(io::Error::other(format!(
                        "kTLS: {} records sent, the cipher suite's limit is {}: closed",
                        self.records, self.limit
                    )));
                }
            }
            let n = stream.write(chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.records += records_for(n);
            off += n;
        }
        Ok(off)
    }

    fn alert(&mut self, fd: RawFd, level: u8, desc: u8) -> io::Result<()> {
        if self.close_sent {
            return Ok(());
        }
        self.close_sent = true;
        self.records += 1;
        send_record(fd, CT_ALERT, &[level, desc])
    }

    fn close_notify(&mut self, fd: RawFd) {
        let _ = self.alert(fd, 1, ALERT_CLOSE_NOTIFY);
    }

    /// Sends close_notify (once; best effort) before the socket closes.
    pub async fn close(&mut self, stream: &mut TcpStream) {
        let _ = stream.flush().await;
        self.close_notify(stream.as_raw_fd());
    }
}
