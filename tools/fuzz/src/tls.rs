//! The `tls_records` target: bytes as TLS records arriving at the server side of a
//! connection ([`MemServer`]: tessera's own record path, without a socket), with a rustls
//! client at the other end for the handshake and for well-formed traffic.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::crypto::ring::{cipher_suite, default_provider};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tessera::tls::conn::mem::{MemServer, MemState};
use tessera::tls::{TlsContext, TlsSettings};

use crate::{Reader, chunks, split_schedule};

/// Server and client configurations, made once per process.
struct Fixture {
    /// `ssl_verify_mode=1` (a client certificate is verified if presented).
    server: Arc<ServerConfig>,
    /// An `mtls:` listener's (a client certificate is required).
    server_mtls: Arc<ServerConfig>,
    /// By cipher suite, without and with a client certificate. Resumption off, so one
    /// input's outcome does not depend on the inputs before it.
    clients: Vec<[Arc<ClientConfig>; 2]>,
}

/// The suites the development certificate (ECDSA P-256) can use.
const SUITES: [SupportedCipherSuite; 6] = [
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
];

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(make_fixture)
}

/// Certificates from `tessera certs` (written to a temporary directory, loaded, removed),
/// server configurations built by tessera's own `TlsContext`.
fn make_fixture() -> Fixture {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("tessera-fuzz-{}-{nanos:x}", std::process::id()));
    tessera::tls::certs::generate(&dir, &[]).expect("generate certificates");
    let settings = TlsSettings {
        session_cache: true,
        ..TlsSettings::for_dev_certs(&dir).expect("TLS settings")
    };
    let ctx = TlsContext::new(settings).expect("TLS context");
    let configs = ctx.current();
    let read = |name: &str| std::fs::read(dir.join(name)).expect("read a certificate file");
    let ca = CertificateDer::from_pem_slice(&read("ca.pem")).expect("CA");
    let client_cert = CertificateDer::from_pem_slice(&read("client.pem")).expect("client cert");
    let client_key = PrivateKeyDer::from_pem_slice(&read("client.key")).expect("client key");
    let _ = std::fs::remove_dir_all(&dir);
    let mut roots = RootCertStore::empty();
    roots.add(ca).expect("CA into the root store");
    let roots = Arc::new(roots);
    let clients = SUITES
        .iter()
        .map(|&suite| {
            let mut provider = default_provider();
            provider.cipher_suites = vec![suite];
            let version = match suite {
                SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
                SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
            };
            let builder = ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[version])
                .expect("client versions")
                .with_root_certificates(roots.clone());
            let mut plain = builder.clone().with_no_client_auth();
            let mut auth = builder
                .with_client_auth_cert(vec![client_cert.clone()], client_key.clone_key())
                .expect("client certificate");
            plain.resumption = Resumption::disabled();
            auth.resumption = Resumption::disabled();
            [Arc::new(plain), Arc::new(auth)]
        })
        .collect();
    Fixture {
        server: configs.tls.clone(),
        server_mtls: configs
            .mtls
            .clone()
            .expect("mtls configuration (a CA is set)"),
        clients,
    }
}

/// Checks that bytes the server sends are whole TLS records.
fn check_records(out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "server sent a partial record header");
        assert!(
            (20..=23).contains(&rest[0]),
            "server sent record type {}",
            rest[0]
        );
        assert!(
            rest[1] == 3 && (1..=3).contains(&rest[2]),
            "server sent record version {:02x}{:02x}",
            rest[1],
            rest[2]
        );
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        assert!(len <= 16384 + 2048, "server sent a {len}-byte record");
        assert!(rest.len() >= 5 + len, "server sent a partial record");
        rest = &rest[5 + len..];
    }
}

/// What the client has to send.
fn client_output(client: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut out).expect("write to a Vec");
    }
    out
}

/// Gives the client what the server sent; its plaintext goes to `plain`.
fn to_client(
    client: &mut ClientConnection,
    mut bytes: &[u8],
    plain: &mut Vec<u8>,
) -> Result<(), String> {
    while !bytes.is_empty() {
        let n = client.read_tls(&mut bytes).map_err(|e| e.to_string())?;
        client.process_new_packets().map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        loop {
            match client.reader().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => plain.extend_from_slice(&buf[..k]),
            }
        }
        if n == 0 {
            return Err("client took no bytes".into());
        }
    }
    Ok(())
}

/// One TLS connection: the server, its client, and the client's bytes not yet delivered.
struct Conn {
    server: MemServer,
    client: ClientConnection,
    /// Client → server bytes in flight.
    wire: Vec<u8>,
    /// What the client wrote (plaintext), and what the server decrypted.
    sent: Vec<u8>,
    got: Vec<u8>,
    /// What the server encrypted, and what the client decrypted.
    replied: Vec<u8>,
    client_got: Vec<u8>,
    /// The server returned an error (and would close).
    failed: bool,
    /// Bytes not from the client were injected or changed.
    tampered: bool,
}

impl Conn {
    fn new(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Conn {
        let name = ServerName::try_from("localhost").expect("server name");
        Conn {
            server: MemServer::new(server).expect("server connection"),
            client: ClientConnection::new(client, name).expect("client connection"),
            wire: Vec::new(),
            sent: Vec::new(),
            got: Vec::new(),
            replied: Vec::new(),
            client_got: Vec::new(),
            failed: false,
            tampered: false,
        }
    }

    /// Delivers `bytes` to the server now (not through `wire`), then the server's answer
    /// to the client. An error must come from tampered input, and leave only whole records
    /// to send.
    fn deliver(&mut self, bytes: &[u8]) {
        if self.failed || self.server.state() == MemState::Closed || bytes.is_empty() {
            return;
        }
        let got = &mut self.got;
        let r = self
            .server
            .receive(bytes, &mut |p| got.extend_from_slice(p));
        let back = self.server.take_output();
        check_records(&back);
        assert!(
            self.sent.starts_with(&self.got),
            "server decrypted bytes the client did not send"
        );
        if let Err(e) = r {
            let _ = e.to_string();
            assert!(
                self.tampered,
                "server failed on untampered client records: {e}"
            );
            self.failed = true;
            return;
        }
        let ok = to_client(&mut self.client, &back, &mut self.client_got);
        if let Err(e) = ok {
            panic!("client refused what the server sent: {e}");
        }
    }

    /// Delivers the first `n` bytes in flight.
    fn deliver_wire(&mut self, n: usize) {
        let n = n.min(self.wire.len());
        let bytes: Vec<u8> = self.wire.drain(..n).collect();
        self.deliver(&bytes);
    }

    /// Runs the handshake. The client's last flight (TLS 1.3: its Finished) stays in
    /// `wire`, so what follows may arrive in the same read as it.
    fn handshake(&mut self) {
        for _ in 0..8 {
            let out = client_output(&mut self.client);
            if !self.client.is_handshaking() {
                self.wire.extend_from_slice(&out);
                return;
            }
            self.deliver(&out);
            assert!(!self.failed, "handshake failed");
        }
        panic!("handshake did not finish");
    }

    /// The client writes `data` (unless it has closed).
    fn client_write(&mut self, data: &[u8]) {
        self.client
            .writer()
            .write_all(data)
            .expect("client buffers the write");
        self.sent.extend_from_slice(data);
        let out = client_output(&mut self.client);
        self.wire.extend_from_slice(&out);
    }

    /// The server replies with `data` (once the handshake is done), the client reads it.
    fn server_write(&mut self, data: &[u8], wbuf_size: usize) {
        if self.failed || self.server.state() != MemState::Ready {
            return;
        }
        let wire = self.server.send(data, wbuf_size).expect("server encrypts");
        check_records(&wire);
        self.replied.extend_from_slice(data);
        if let Err(e) = to_client(&mut self.client, &wire, &mut self.client_got) {
            panic!("client refused the server's records: {e}");
        }
        assert!(
            self.client_got == self.replied,
            "client decrypted other bytes than the server encrypted"
        );
    }
}

/// `tls_records` target. The first byte picks the mode (0: raw bytes before any handshake;
/// 1: a handshake, then raw bytes; 2: a handshake, then a script of client writes, key
/// updates, close_notify, server replies, byte injections and flips, and deliveries in
/// pieces; 3: a handshake, then records of any content type and content encrypted with the
/// client's keys, see [`forged`]), the second the client (cipher suite, client certificate, `mtls:` listener,
/// resumption), the third the server's `ssl_wbuf_size`.
pub fn tls_records(data: &[u8]) {
    let mut r = Reader::new(data);
    let mode = r.byte() % 4;
    let variant = r.byte();
    let wbuf_size = [1024, 4096, 16 * 1024, 64 * 1024][(r.byte() % 4) as usize];
    let f = fixture();
    let suite = (variant & 7) as usize % SUITES.len();
    let auth = variant & 0x08 != 0;
    let server = if auth && variant & 0x10 != 0 {
        f.server_mtls.clone()
    } else {
        f.server.clone()
    };
    let client = f.clients[suite][auth as usize].clone();

    if mode == 0 {
        let mut s = MemServer::new(server).expect("server connection");
        let (sizes, payload) = split_schedule(r.rest());
        for chunk in chunks(payload, &sizes) {
            let res = s.receive(chunk, &mut |p| {
                panic!("plaintext before a handshake: {} bytes", p.len())
            });
            check_records(&s.take_output());
            match res {
                Ok(MemState::Closed) => break,
                Ok(_) => {}
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            }
        }
        return;
    }

    let client = if variant & 0x20 != 0 {
        // A first connection leaves the client a session to resume in the second.
        let mut c = (*client).clone();
        c.resumption = Resumption::in_memory_sessions(4);
        let c = Arc::new(c);
        let mut first = Conn::new(server.clone(), c.clone());
        first.handshake();
        first.deliver_wire(usize::MAX);
        c
    } else {
        client
    };
    let client = if mode == 3 {
        let mut c = (*client).clone();
        c.enable_secret_extraction = true;
        Arc::new(c)
    } else {
        client
    };
    let mut conn = Conn::new(server, client);
    conn.handshake();

    if mode == 3 {
        forged(&mut r, conn, SUITES[suite], wbuf_size);
        return;
    }

    if mode == 1 {
        conn.deliver_wire(usize::MAX);
        conn.tampered = true;
        let (sizes, payload) = split_schedule(r.rest());
        for chunk in chunks(payload, &sizes) {
            conn.deliver(chunk);
        }
        return;
    }

    let tls13 = matches!(SUITES[suite], SupportedCipherSuite::Tls13(_));
    let mut closed = false;
    // rustls accepts 32 KeyUpdate requests between two application data records.
    let mut key_updates = 0;
    while !r.is_empty() {
        match r.byte() % 8 {
            0 | 1 if !closed => {
                let bytes = match r.byte() {
                    255 => vec![b'x'; 40_000], // several records in one write
                    n => {
                        let mut b = r.take(n as usize).to_vec();
                        b.resize(n as usize, b'.');
                        b
                    }
                };
                if !bytes.is_empty() {
                    key_updates = 0;
                }
                conn.client_write(&bytes);
            }
            2 => {
                let n = r.byte() as usize % 64;
                conn.wire.extend_from_slice(r.take(n));
                conn.tampered = true;
            }
            3 if !conn.wire.is_empty() => {
                let at = r.u16() as usize % conn.wire.len();
                conn.wire[at] ^= r.byte() | 1;
                conn.tampered = true;
            }
            4 => {
                let n = match r.u16() {
                    0 => usize::MAX,
                    n => n as usize,
                };
                conn.deliver_wire(n);
            }
            5 if tls13 && !closed && key_updates < 32 => {
                if conn.client.refresh_traffic_keys().is_err() {
                    continue;
                }
                key_updates += 1;
                let out = client_output(&mut conn.client);
                conn.wire.extend_from_slice(&out);
            }
            6 if !closed => {
                conn.client.send_close_notify();
                let out = client_output(&mut conn.client);
                conn.wire.extend_from_slice(&out);
                closed = true;
            }
            7 => {
                let n = r.byte() as usize * 97;
                let bytes: Vec<u8> = (0..n).map(|i| i as u8).collect();
                conn.server_write(&bytes, wbuf_size);
            }
            _ => {}
        }
    }
    conn.deliver_wire(usize::MAX);
    if crate::verbose() {
        eprintln!(
            "tls_records: {:?}, client sent {} bytes, server decrypted {}, replied {}, \
             client decrypted {}; tampered {}, server failed {}, closed {closed}",
            SUITES[suite].suite(),
            conn.sent.len(),
            conn.got.len(),
            conn.replied.len(),
            conn.client_got.len(),
            conn.tampered,
            conn.failed
        );
    }
    if !conn.tampered && !conn.failed {
        assert!(
            conn.got == conn.sent,
            "server decrypted {} of the {} bytes the client sent",
            conn.got.len(),
            conn.sent.len()
        );
        if closed {
            assert_eq!(
                conn.server.state(),
                MemState::Closed,
                "close_notify not seen"
            );
        }
    }
}

/// Mode 3: after the handshake the client's traffic keys are taken out of rustls, and the
/// input writes records with them: any inner content type (handshake fragments, alerts, CCS,
/// application data, junk types), any length (past the 16 KiB limit too), skipped sequence
/// numbers, raw bytes; the server replies in between. What a malicious client with valid
/// keys can send. No panic; every error leaves whole records to send.
fn forged(r: &mut Reader<'_>, conn: Conn, suite: SupportedCipherSuite, wbuf_size: usize) {
    use rustls::crypto::cipher::{OutboundChunks, OutboundPlainMessage};
    use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion};

    let Conn {
        mut server,
        client,
        mut wire,
        ..
    } = conn;
    let Ok(secrets) = client.dangerous_extract_secrets() else {
        panic!("client secrets (enable_secret_extraction is on)");
    };
    let (mut seq, keys) = secrets.tx;
    let (key, iv) = match keys {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
        _ => panic!("unexpected traffic secrets"),
    };
    let mut enc = match suite {
        SupportedCipherSuite::Tls13(s) => s.aead_alg.encrypter(key, iv),
        SupportedCipherSuite::Tls12(s) => {
            // rustls extracts GCM's implicit salt and first explicit nonce as one IV
            let iv = iv.as_ref();
            match keys_are_gcm(suite) {
                true => s.aead_alg.encrypter(key, &iv[..4], &iv[4..]),
                false => s.aead_alg.encrypter(key, iv, &[]),
            }
        }
    };
    let mut failed = false;
    let mut got = 0usize;
    let mut deliver = |server: &mut MemServer, bytes: &[u8], failed: &mut bool| {
        if *failed || server.state() == MemState::Closed || bytes.is_empty() {
            return;
        }
        let res = server.receive(bytes, &mut |p| got += p.len());
        check_records(&server.take_output());
        if let Err(e) = res {
            let _ = e.to_string();
            *failed = true;
        }
    };
    while !r.is_empty() {
        match r.byte() % 6 {
            0 | 1 => {
                let t = r.byte();
                let typ = match t % 5 {
                    0 => ContentType::ApplicationData,
                    1 => ContentType::Handshake,
                    2 => ContentType::Alert,
                    3 => ContentType::ChangeCipherSpec,
                    _ => ContentType::from(r.byte()),
                };
                let content = match r.byte() {
                    255 => vec![b'x'; 16 * 1024 + 1], // one byte past the limit
                    n => {
                        let mut c = r.take(n as usize).to_vec();
                        c.resize(n as usize, 0);
                        c
                    }
                };
                let msg = OutboundPlainMessage {
                    typ,
                    version: ProtocolVersion::TLSv1_2,
                    payload: OutboundChunks::Single(&content),
                };
                match enc.encrypt(msg, seq) {
                    Ok(m) => wire.extend_from_slice(&m.encode()),
                    Err(e) => panic!("encrypting a forged record: {e}"),
                }
                seq += 1;
            }
            2 => {
                let n = r.byte() as usize % 64;
                wire.extend_from_slice(r.take(n));
            }
            3 => {
                let n = match r.u16() {
                    0 => usize::MAX,
                    n => n as usize,
                };
                let bytes: Vec<u8> = wire.drain(..n.min(wire.len())).collect();
                deliver(&mut server, &bytes, &mut failed);
            }
            4 => {
                if !failed && server.state() == MemState::Ready {
                    let data = vec![b'r'; r.byte() as usize * 97];
                    match server.send(&data, wbuf_size) {
                        Ok(out) => check_records(&out),
                        Err(e) => {
                            let _ = e.to_string();
                            failed = true;
                        }
                    }
                }
            }
            _ => seq += 1 + r.byte() as u64 % 3,
        }
    }
    deliver(&mut server, &wire, &mut failed);
    if crate::verbose() {
        eprintln!(
            "tls_records (forged): {:?}, server decrypted {got} bytes, state {:?}, failed {failed}",
            suite.suite(),
            server.state()
        );
    }
}

fn keys_are_gcm(suite: SupportedCipherSuite) -> bool {
    !matches!(
        suite.suite(),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    )
}
