//! The switch to kTLS, rustls side: drain to a record boundary, then hand the secrets over.

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

use super::{Flow, INCOMING_INITIAL, MAX_RECORD, TlsStream, io_err};
use crate::tls::ktls::{Declined, KernelSupport, KtlsStream, SwitchError};

impl TlsStream {
    /// Moves the connection's records into the kernel (kTLS). First reads exactly to the
    /// end of any partial record, decrypts what is buffered (plaintext to `early_plain`) and
    /// sends what rustls queued, so the kernel starts at a record boundary. On
    /// [`SwitchError::Declined`] the connection comes back unchanged, to stay in rustls.
    pub async fn into_kernel(
        mut self,
        stream: &mut TcpStream,
        early_plain: &mut Vec<u8>,
        support: &KernelSupport,
        record_limit: u64,
    ) -> Result<KtlsStream, (SwitchError, Option<Box<TlsStream>>)> {
        // Checked before any read: a declined connection must come back untouched.
        let negotiated = match support.check(
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite(),
        ) {
            Ok(n) => n,
            Err(why) => return Err((SwitchError::Declined(why), Some(Box::new(self)))),
        };
        for _ in 0..4 {
            if self.used == 0 {
                break;
            }
            // A record header, then its whole body, and nothing past it.
            let want = if self.used < 5 {
                5
            } else {
                5 + u16::from_be_bytes([self.incoming[3], self.incoming[4]]) as usize
            };
            if want > MAX_RECORD {
                return Err((
                    SwitchError::Broken(io_err("TLS record larger than the protocol allows")),
                    None,
                ));
            }
            if self.incoming.len() < want {
                self.incoming.resize(want, 0);
            }
            while self.used < want {
                match stream.read(&mut self.incoming[self.used..want]).await {
                    Ok(0) => {
                        let eof = std::io::ErrorKind::UnexpectedEof.into();
                        return Err((SwitchError::Broken(eof), None));
                    }
                    Ok(n) => self.used += n,
                    Err(e) => return Err((SwitchError::Broken(e), None)),
                }
            }
            if want > 5 {
                let flow = self.process(&mut |p| early_plain.extend_from_slice(p));
                if let Err(e) = self.flush_pending(stream).await {
                    return Err((SwitchError::Broken(e), None));
                }
                match flow {
                    Ok(Flow::Ready) if !self.peer_closed => {}
                    Ok(_) => {
                        let why = Declined::PeerClosed;
                        return Err((SwitchError::Declined(why), Some(Box::new(self))));
                    }
                    Err(e) => return Err((SwitchError::Broken(io_err(e)), None)),
                }
            }
        }
        if self.used != 0 || !self.pending.is_empty() {
            let why = Declined::NoRecordBoundary;
            return Err((SwitchError::Declined(why), Some(Box::new(self))));
        }
        KtlsStream::switch(stream, self.conn, negotiated, support, record_limit).map_err(
            |(e, conn)| {
                let back = conn.map(|conn| {
                    Box::new(TlsStream {
                        conn: *conn,
                        incoming: vec![0; INCOMING_INITIAL],
                        used: 0,
                        pending: Vec::new(),
                        peer_closed: false,
                    })
                });
                (e, back)
            },
        )
    }
}
