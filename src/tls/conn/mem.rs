//! A server TLS connection driven from memory instead of a socket, for fuzzing (`tools/fuzz`,
//! target `tls_records`) and tests; the server itself does not use it.
//!
//! It runs the record path of [`TlsStream`] unchanged: received bytes land where
//! [`TlsStream::accept`] and [`TlsStream::read_plain`] would read them (the connection's
//! `incoming` during the handshake; afterwards the executor's scratch when nothing is
//! buffered, else `incoming`), one read at most the free space there, and are decrypted in
//! place by the same `process` / `process_scratch`. Replies are encrypted as
//! [`TlsStream::write_plain`] does, through a [`WbufPool`] buffer.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;

use super::{Flow, INCOMING_INITIAL, TlsStream, WbufPool, io_err};

/// Size of an executor's scratch read buffer, which this stands for (`net::input::SCRATCH`;
/// a test there checks that they agree).
pub const SCRATCH: usize = 64 * 1024;

/// Where a [`MemServer`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemState {
    /// The handshake needs more bytes from the peer.
    Handshaking,
    /// The handshake is done: application data flows.
    Ready,
    /// The peer closed (close_notify); the server would end the connection.
    Closed,
}

/// The server side of one TLS connection, fed from memory.
#[derive(Debug)]
pub struct MemServer {
    tls: TlsStream,
    /// Stands for the executor's scratch read buffer (same size).
    scratch: RefCell<Vec<u8>>,
    state: MemState,
}

impl MemServer {
    /// A connection that has received nothing yet, as [`TlsStream::accept`] starts one.
    pub fn new(config: Arc<ServerConfig>) -> Result<MemServer, rustls::Error> {
        Ok(MemServer {
            tls: TlsStream {
                conn: UnbufferedServerConnection::new(config)?,
                incoming: vec![0; INCOMING_INITIAL],
                used: 0,
                pending: Vec::new(),
                peer_closed: false,
            },
            scratch: RefCell::new(vec![0; SCRATCH]),
            state: MemState::Handshaking,
        })
    }

    /// Where the connection stands.
    pub fn state(&self) -> MemState {
        self.state
    }

    /// Ciphertext bytes buffered (part of a record).
    pub fn buffered(&self) -> usize {
        self.tls.used
    }

    /// `bytes` arrive from the peer, taken in reads as the socket paths take them (each read
    /// fills at most the free space of the buffer it lands in). Application data goes to
    /// `sink`, early data (with the client's last handshake message) included. An error is
    /// what the server's read would return; the server then sends [`MemServer::take_output`]
    /// (an alert, if rustls queued one) and closes. Bytes after a close are not read.
    pub fn receive(
        &mut self,
        mut bytes: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<MemState> {
        while !bytes.is_empty() && self.state != MemState::Closed {
            let t = &mut self.tls;
            if self.state == MemState::Handshaking {
                // TlsStream::accept: fill, then process.
                let space = t.fill_space()?;
                let n = space.len().min(bytes.len());
                space[..n].copy_from_slice(&bytes[..n]);
                t.used += n;
                bytes = &bytes[n..];
                match t.process(sink).map_err(io_err)? {
                    Flow::Ready => {
                        t.shrink_idle();
                        // read_plain, next, sees a close_notify that came with the handshake.
                        self.state = if t.peer_closed {
                            MemState::Closed
                        } else {
                            MemState::Ready
                        };
                    }
                    Flow::NeedMore => {}
                    Flow::Closed => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                }
                continue;
            }
            // TlsStream::read_plain: a partial record is completed in `incoming`; otherwise
            // the read lands in the scratch and is decrypted there.
            let mut got = 0usize;
            let mut count = |p: &[u8]| {
                got += p.len();
                sink(p);
            };
            let flow = if t.used > 0 {
                let space = t.fill_space()?;
                let n = space.len().min(bytes.len());
                space[..n].copy_from_slice(&bytes[..n]);
                t.used += n;
                bytes = &bytes[n..];
                t.process(&mut count)
            } else {
                let n = {
                    let mut scratch = self.scratch.borrow_mut();
                    let n = scratch.len().min(bytes.len());
                    scratch[..n].copy_from_slice(&bytes[..n]);
                    n
                };
                bytes = &bytes[n..];
                t.process_scratch(&self.scratch, n, &mut count)
            };
            let flow = flow.map_err(io_err)?;
            if got > 0 {
                t.shrink_idle();
            }
            if t.peer_closed || flow == Flow::Closed {
                self.state = MemState::Closed;
            }
        }
        Ok(self.state)
    }

    /// Handshake records and alerts waiting to be sent to the peer.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tls.pending)
    }

    /// Encrypts `data` as [`TlsStream::write_plain`] does with `ssl_wbuf_size` = `wbuf_size`;
    /// returns everything to send, queued handshake records first.
    pub fn send(&mut self, data: &[u8], wbuf_size: usize) -> std::io::Result<Vec<u8>> {
        let pool = WbufPool::new(wbuf_size);
        let mut buf = pool.take();
        let mut wire = self.take_output();
        for chunk in data.chunks(pool.plain_per_buffer()) {
            let n = self.tls.encrypt(chunk, &mut buf)?;
            wire.append(&mut self.tls.pending);
            wire.extend_from_slice(&buf[..n]);
        }
        pool.give(buf);
        Ok(wire)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use rustls::crypto::cipher::{OutboundChunks, OutboundPlainMessage};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, ConnectionTrafficSecrets, ContentType};
    use rustls::{ProtocolVersion, RootCertStore, ServerConfig, SupportedCipherSuite};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::{MemServer, MemState};
    use crate::tls::{TlsContext, TlsSettings};

    /// A server configuration from `tessera certs` files, and a client that trusts its CA.
    fn configs() -> (Arc<ServerConfig>, ClientConfig) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("tessera-mem-test-{}-{nanos:x}", std::process::id()));
        crate::tls::certs::generate(&dir, &[]).expect("certificates");
        let settings = TlsSettings::for_dev_certs(&dir).expect("TLS settings");
        let ctx = TlsContext::new(settings).expect("TLS context");
        let ca = std::fs::read(dir.join("ca.pem")).expect("ca.pem");
        let _ = std::fs::remove_dir_all(&dir);
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&ca).expect("CA"))
            .expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (ctx.current().tls.clone(), client)
    }

    fn client_output(c: &mut ClientConnection) -> Vec<u8> {
        let mut out = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut out).expect("to a Vec");
        }
        out
    }

    /// A ClientHello whose handshake message is longer than its record (rustls keeps the
    /// partial message, by offsets into the input), then a record with a bad header: the
    /// error queued an alert, and collecting it must not make rustls deframe input that is
    /// gone. This panicked inside rustls (index out of range).
    #[test]
    fn error_after_a_partial_handshake_message() {
        let (server, _) = configs();
        let mut s = MemServer::new(server).expect("server");
        let mut input = vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x10, 0x00, 0x00];
        input.extend_from_slice(&[0xff; 5]);
        let r = s.receive(&input, &mut |_| panic!("no plaintext"));
        assert!(r.is_err(), "{r:?}");
        let alert = s.take_output();
        assert_eq!(
            &alert[..3],
            &[0x15, 0x03, 0x03],
            "an alert record: {alert:02x?}"
        );
    }

    /// With its Finished the client sends a request and, encrypted with its own keys, the
    /// first bytes of a KeyUpdate (a handshake message split over records, which rustls
    /// keeps in the input buffer). Encrypting the reply must hand rustls that buffer, not an
    /// empty one: this panicked inside rustls (index out of range), from any client.
    #[test]
    fn reply_while_a_handshake_message_is_partial() {
        let (server, mut client) = configs();
        client.enable_secret_extraction = true;
        let mut s = MemServer::new(server).expect("server");
        let name = ServerName::try_from("localhost").expect("name");
        let mut c = ClientConnection::new(Arc::new(client), name).expect("client");
        // The client's Finished is held back, to arrive with what follows in one read.
        let finished = loop {
            let out = client_output(&mut c);
            if !c.is_handshaking() {
                break out;
            }
            s.receive(&out, &mut |_| {}).expect("handshake");
            let back = s.take_output();
            c.read_tls(&mut &back[..]).expect("client reads");
            c.process_new_packets().expect("client handshake");
        };
        c.writer().write_all(b"version\r\n").expect("write");
        let request = client_output(&mut c);
        let suite = c.negotiated_cipher_suite().expect("suite");
        let secrets = c.dangerous_extract_secrets().expect("secrets");
        let (seq, (key, iv)) = match secrets.tx {
            (seq, ConnectionTrafficSecrets::Aes128Gcm { key, iv })
            | (seq, ConnectionTrafficSecrets::Aes256Gcm { key, iv })
            | (seq, ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv }) => (seq, (key, iv)),
            _ => panic!("an AEAD of TLS 1.3"),
        };
        let SupportedCipherSuite::Tls13(suite) = suite else {
            panic!("TLS 1.3 only");
        };
        let mut enc = suite.aead_alg.encrypter(key, iv);
        let partial = OutboundPlainMessage {
            typ: ContentType::Handshake,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(&[24, 0]),
        };
        let mut input = finished;
        input.extend_from_slice(&request);
        input.extend_from_slice(&enc.encrypt(partial, seq).expect("encrypt").encode());
        let mut got = Vec::new();
        let state = s.receive(&input, &mut |p| got.extend_from_slice(p));
        assert_eq!(state.expect("receive"), MemState::Ready);
        assert_eq!(got, b"version\r\n");
        let reply = s.send(b"VERSION 1.6.18\r\n", 16 * 1024).expect("reply");
        assert_eq!(reply[0], 0x17, "application data");
    }
}
