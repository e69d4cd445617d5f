//! Kernel TLS (kTLS): after rustls finishes a handshake, the record layer moves into the
//! kernel, so replies are encrypted by `send` and requests decrypted by `recv` with no copy
//! through userspace buffers.
//!
//! The switch ([`KtlsStream::switch`]) happens only at a record boundary: the handshake code
//! reads exactly to the end of any partial record, decrypts everything it has, flushes what
//! rustls queued (tickets), and only then hands the traffic secrets to the kernel with
//! `TCP_ULP "tls"` + `TLS_TX` / `TLS_RX`. rustls keeps a [`KernelConnection`] to derive new
//! secrets on a TLS 1.3 KeyUpdate.
//!
//! After the switch, records that are not application data make `recv` fail with EIO; they
//! are read with `recvmsg` and the record-type control message: close_notify is answered,
//! other alerts close the connection, a KeyUpdate rekeys RX (and TX when asked) on kernels
//! that can (6.14+) and closes cleanly on the others. The records this side sends are
//! counted against the cipher suite's confidentiality limit: near it a TLS 1.3 connection is
//! rekeyed where the kernel can, anything else is closed with close_notify first.
//!
//! This is the only module with `unsafe` for kTLS: the socket options and the
//! `sendmsg`/`recvmsg` calls with control messages, each block with its `// Safety:` note.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{ConnectionTrafficSecrets, ProtocolVersion, SupportedCipherSuite};

const SOL_TLS: libc::c_int = 282;
const TCP_ULP: libc::c_int = 31;
const TLS_TX: libc::c_int = 1;
const TLS_RX: libc::c_int = 2;
const TLS_SET_RECORD_TYPE: libc::c_int = 1;
const TLS_GET_RECORD_TYPE: libc::c_int = 2;
const TLS_1_2_VERSION: u16 = 0x0303;
const TLS_1_3_VERSION: u16 = 0x0304;
const TLS_CIPHER_AES_GCM_128: u16 = 51;
const TLS_CIPHER_AES_GCM_256: u16 = 52;
const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;

/// TLS record content types.
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;
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
const MAX_SEND: usize = 256 * 1024;

/// `ssl_kernel_tls`, parsed with the other TLS settings in `config`.
pub use crate::config::KtlsMode;

/// A record cipher the kernel may implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

impl Cipher {
    const ALL: [Cipher; 3] = [
        Cipher::Aes128Gcm,
        Cipher::Aes256Gcm,
        Cipher::Chacha20Poly1305,
    ];

    fn kernel_id(self) -> u16 {
        match self {
            Cipher::Aes128Gcm => TLS_CIPHER_AES_GCM_128,
            Cipher::Aes256Gcm => TLS_CIPHER_AES_GCM_256,
            Cipher::Chacha20Poly1305 => TLS_CIPHER_CHACHA20_POLY1305,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Chacha20Poly1305 => "CHACHA20-POLY1305",
        }
    }

    /// The record cipher of a rustls suite.
    pub fn of_suite(suite: SupportedCipherSuite) -> Option<Cipher> {
        use rustls::CipherSuite as C;
        Some(match suite.suite() {
            C::TLS13_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Cipher::Aes128Gcm,
            C::TLS13_AES_256_GCM_SHA384
            | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Cipher::Aes256Gcm,
            C::TLS13_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Cipher::Chacha20Poly1305,
            _ => return None,
        })
    }
}

fn version_id(v: ProtocolVersion) -> Option<u16> {
    match v {
        ProtocolVersion::TLSv1_2 => Some(TLS_1_2_VERSION),
        ProtocolVersion::TLSv1_3 => Some(TLS_1_3_VERSION),
        _ => None,
    }
}

/// What this kernel offers, found once at startup by trying it on a loopback connection.
#[derive(Debug, Clone)]
pub struct KernelSupport {
    /// Why kTLS cannot be used at all (None: it can).
    pub unavailable: Option<String>,
    /// (TLS version, cipher) pairs the kernel accepted for both directions.
    pub suites: Vec<(u16, Cipher)>,
    /// Whether TLS 1.3 keys can be replaced after the switch (Linux 6.14+).
    pub rekey: bool,
    /// The kernel release, for the log.
    pub release: String,
}

impl KernelSupport {
    /// Support for nothing (ssl_kernel_tls off, or a probe that failed).
    pub fn none(why: impl Into<String>) -> KernelSupport {
        KernelSupport {
            unavailable: Some(why.into()),
            suites: Vec::new(),
            rekey: false,
            release: kernel_release(),
        }
    }

    /// The negotiated version and suite, when the kernel can take them; else why not.
    pub fn check(
        &self,
        version: Option<ProtocolVersion>,
        suite: Option<SupportedCipherSuite>,
    ) -> Result<(ProtocolVersion, SupportedCipherSuite), String> {
        match (version, suite) {
            (Some(v), Some(s)) if self.supports(Some(v), s) => Ok((v, s)),
            (Some(v), Some(s)) => Err(format!("the kernel has no kTLS for {v:?} {:?}", s.suite())),
            _ => Err("handshake not complete".into()),
        }
    }

    /// Whether a connection with this version and suite can move to the kernel.
    pub fn supports(&self, version: Option<ProtocolVersion>, suite: SupportedCipherSuite) -> bool {
        let (Some(v), Some(c)) = (version.and_then(version_id), Cipher::of_suite(suite)) else {
            return false;
        };
        self.suites.contains(&(v, c))
    }

    /// One line for the startup log.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.unavailable {
            return format!("not available on Linux {} ({why})", self.release);
        }
        let list = |v: u16| {
            self.suites
                .iter()
                .filter(|(sv, _)| *sv == v)
                .map(|(_, c)| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "available on Linux {}: TLS 1.2 [{}], TLS 1.3 [{}]; TLS 1.3 key updates {}",
            self.release,
            list(TLS_1_2_VERSION),
            list(TLS_1_3_VERSION),
            if self.rekey {
                "supported"
            } else {
                "not supported (kernel < 6.14: a peer's KeyUpdate closes the connection cleanly)"
            }
        )
    }
}

/// The running kernel's release string ("6.1.0-47-amd64").
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Whether a release string is at least `major.minor`.
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return false;
    };
    (a, b) >= (major, minor)
}

/// A connected loopback pair for probing: (client, accepted).
fn loopback_pair() -> io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let c = std::net::TcpStream::connect(l.local_addr()?)?;
    let (s, _) = l.accept()?;
    Ok((c, s))
}

/// Tries kTLS on loopback connections: the ULP, then every (version, cipher) pair with
/// throwaway keys for both directions.
pub fn probe() -> KernelSupport {
    let release = kernel_release();
    let (_c, s) = match loopback_pair() {
        Ok(p) => p,
        Err(e) => return KernelSupport::none(format!("cannot open a loopback probe: {e}")),
    };
    if let Err(e) = set_ulp(s.as_raw_fd()) {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) => {
                "setsockopt TCP_ULP \"tls\": ENOENT: the kernel has no TLS module (CONFIG_TLS); \
                 try `modprobe tls`"
                    .to_string()
            }
            _ => format!("setsockopt TCP_ULP \"tls\": {e}"),
        };
        return KernelSupport::none(why);
    }
    let mut suites = Vec::new();
    for v in [TLS_1_2_VERSION, TLS_1_3_VERSION] {
        for c in Cipher::ALL {
            let Ok((_c, s)) = loopback_pair() else {
                continue;
            };
            let fd = s.as_raw_fd();
            let info = CryptoInfo::throwaway(v, c);
            if set_ulp(fd).is_ok()
                && set_crypto(fd, TLS_TX, &info).is_ok()
                && set_crypto(fd, TLS_RX, &info).is_ok()
            {
                suites.push((v, c));
            }
        }
    }
    let unavailable = suites
        .is_empty()
        .then(|| "the TLS module accepted no cipher (crypto modules missing?)".to_string());
    KernelSupport {
        unavailable,
        suites,
        rekey: release_at_least(&release, 6, 14),
        release,
    }
}

/// A kernel `tls12_crypto_info_*` structure as bytes (keys are wiped on drop).
struct CryptoInfo(Vec<u8>);

impl Drop for CryptoInfo {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

impl CryptoInfo {
    /// Lays out `struct tls12_crypto_info_{aes_gcm_128,aes_gcm_256,chacha20_poly1305}`:
    /// version and cipher (host order u16), then iv, key, salt and rec_seq (big endian).
    fn build(version: u16, cipher: Cipher, key: &[u8], iv12: &[u8], seq: u64) -> CryptoInfo {
        let mut b = Vec::with_capacity(56);
        b.extend_from_slice(&version.to_ne_bytes());
        b.extend_from_slice(&cipher.kernel_id().to_ne_bytes());
        match cipher {
            // GCM: the 4-byte salt is the implicit part of the nonce, the other 8 the iv.
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => {
                b.extend_from_slice(&iv12[4..12]);
                b.extend_from_slice(key);
                b.extend_from_slice(&iv12[..4]);
            }
            Cipher::Chacha20Poly1305 => {
                b.extend_from_slice(iv12);
                b.extend_from_slice(key);
            }
        }
        b.extend_from_slice(&seq.to_be_bytes());
        CryptoInfo(b)
    }

    fn throwaway(version: u16, cipher: Cipher) -> CryptoInfo {
        let key_len = if cipher == Cipher::Aes128Gcm { 16 } else { 32 };
        CryptoInfo::build(version, cipher, &[0x11; 32][..key_len], &[0x22; 12], 0)
    }

    fn from_secrets(
        version: ProtocolVersion,
        seq: u64,
        secrets: &ConnectionTrafficSecrets,
    ) -> io::Result<CryptoInfo> {
        let v = version_id(version)
            .ok_or_else(|| io::Error::other(format!("kTLS: no kernel TLS for {version:?}")))?;
        let (cipher, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Cipher::Chacha20Poly1305, key, iv)
            }
            _ => {
                return Err(io::Error::other(
                    "kTLS: the kernel has no such record cipher",
                ));
            }
        };
        let want = if cipher == Cipher::Aes128Gcm { 16 } else { 32 };
        if key.as_ref().len() != want || iv.as_ref().len() != 12 {
            return Err(io::Error::other("kTLS: unexpected key or iv length"));
        }
        Ok(CryptoInfo::build(v, cipher, key.as_ref(), iv.as_ref(), seq))
    }
}

fn set_ulp(fd: RawFd) -> io::Result<()> {
    let name = b"tls\0";
    // Safety: `name` is a live 4-byte buffer for the duration of the call and its length is
    // passed with it; the kernel only reads it. A bad `fd` is reported as EBADF.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_crypto(fd: RawFd, direction: libc::c_int, info: &CryptoInfo) -> io::Result<()> {
    // Safety: `info.0` is a live byte buffer laid out as the kernel's crypto_info structure
    // for its cipher (see `CryptoInfo::build`), with its exact length passed; the kernel only
    // reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_TLS,
            direction,
            info.0.as_ptr().cast(),
            info.0.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads (and so resets) the socket's pending error.
fn clear_socket_error(fd: RawFd) {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // Safety: `err` and `len` are live locals of the sizes passed; the kernel writes at most
    // `len` bytes into `err`.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        );
    }
}

/// Room for one control message carrying one byte (the record type), aligned for cmsghdr.
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

/// Sends one record of content type `typ` (not application data) through the kernel.
fn send_record(fd: RawFd, typ: u8, payload: &[u8]) -> io::Result<()> {
    let mut cbuf = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // Safety: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // Safety: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(1) } as _;
    // Safety: msg_control points at `cbuf`, which is aligned for cmsghdr and at least
    // CMSG_SPACE(1) bytes long, so CMSG_FIRSTHDR is non-null and the header and its one data
    // byte lie inside `cbuf`. `iov` and `payload` outlive the sendmsg call, which only reads
    // them.
    let r = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = SOL_TLS;
        (*cmsg).cmsg_type = TLS_SET_RECORD_TYPE;
        (*cmsg).cmsg_len = libc::CMSG_LEN(1) as _;
        *libc::CMSG_DATA(cmsg) = typ;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    match r {
        n if n >= 0 && n as usize == payload.len() => Ok(()),
        n if n >= 0 => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "kTLS: a control record was cut short",
        )),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Reads the next record with its content type (after `recv` failed with EIO, the next
/// record is not application data). Returns (type, bytes).
fn recv_record(fd: RawFd, buf: &mut [u8]) -> io::Result<(u8, usize)> {
    let mut cbuf = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Safety: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    // Safety: `iov` describes `buf`, writable for its whole length, and msg_control points
    // at `cbuf` with its true length; both outlive the call. The kernel writes at most that
    // much into each.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut typ = CT_APPLICATION_DATA;
    // Safety: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/CMSG_NXTHDR only
    // return headers inside that range (or null), and a TLS_GET_RECORD_TYPE message carries
    // at least one data byte.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == SOL_TLS && (*cmsg).cmsg_type == TLS_GET_RECORD_TYPE {
                typ = *libc::CMSG_DATA(cmsg);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((typ, n as usize))
}

/// Moves the transmit direction of a connected socket into the kernel with these secrets.
/// For client-side tools (the kTLS VM check uses it to send records rustls would not).
pub fn install_tx(
    fd: RawFd,
    version: ProtocolVersion,
    seq: u64,
    secrets: &ConnectionTrafficSecrets,
) -> io::Result<()> {
    set_ulp(fd)?;
    set_crypto(
        fd,
        TLS_TX,
        &CryptoInfo::from_secrets(version, seq, secrets)?,
    )
}

/// Sends one record of content type `typ` on a socket whose TX is in the kernel (see
/// [`install_tx`]): an alert is type 21, payload `[level, description]`.
pub fn send_control(fd: RawFd, typ: u8, payload: &[u8]) -> io::Result<()> {
    send_record(fd, typ, payload)
}

/// A connection's record path for `stats conns`: "ktls/TLSv1.3/TLS13_AES_128_GCM_SHA256".
pub fn path_label(
    path: &str,
    version: Option<ProtocolVersion>,
    suite: Option<SupportedCipherSuite>,
) -> String {
    let v = match version {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "?",
    };
    match suite {
        Some(s) => format!("{path}/{v}/{:?}", s.suite()),
        None => format!("{path}/{v}"),
    }
}

/// Why a connection could not move to the kernel.
#[derive(Debug)]
pub enum SwitchError {
    /// Nothing was changed: the connection can stay in rustls.
    Declined(String),
    /// The secrets left rustls but the kernel refused them: the connection must close.
    Broken(io::Error),
}

/// The records one `send` of `n` bytes can produce: every full record, plus one that the
/// end of the call closes (or leaves open for the next call).
fn records_for(n: usize) -> u64 {
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
                SwitchError::Declined(format!("setsockopt TCP_ULP \"tls\": {e}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(KtlsMode::parse(None), Ok(KtlsMode::Auto));
        assert_eq!(KtlsMode::parse(Some("true")), Ok(KtlsMode::Auto));
        assert_eq!(KtlsMode::parse(Some("on")), Ok(KtlsMode::On));
        assert_eq!(KtlsMode::parse(Some("off")), Ok(KtlsMode::Off));
        assert!(KtlsMode::parse(Some("maybe")).is_err());
    }

    #[test]
    fn crypto_info_layouts_match_the_kernel_structs() {
        let key16 = [1u8; 16];
        let key32 = [2u8; 32];
        let iv: Vec<u8> = (0..12).collect();
        // tls12_crypto_info_aes_gcm_128: info(4) iv(8) key(16) salt(4) rec_seq(8) = 40
        let a = CryptoInfo::build(TLS_1_3_VERSION, Cipher::Aes128Gcm, &key16, &iv, 7);
        assert_eq!(a.0.len(), 40);
        assert_eq!(&a.0[0..2], &TLS_1_3_VERSION.to_ne_bytes());
        assert_eq!(&a.0[2..4], &51u16.to_ne_bytes());
        assert_eq!(&a.0[4..12], &iv[4..12]);
        assert_eq!(&a.0[12..28], &key16);
        assert_eq!(&a.0[28..32], &iv[..4]);
        assert_eq!(&a.0[32..40], &7u64.to_be_bytes());
        // tls12_crypto_info_aes_gcm_256: info(4) iv(8) key(32) salt(4) rec_seq(8) = 56
        let b = CryptoInfo::build(TLS_1_2_VERSION, Cipher::Aes256Gcm, &key32, &iv, 1);
        assert_eq!(b.0.len(), 56);
        assert_eq!(&b.0[44..48], &iv[..4]);
        // tls12_crypto_info_chacha20_poly1305: info(4) iv(12) key(32) rec_seq(8) = 56
        let c = CryptoInfo::build(TLS_1_3_VERSION, Cipher::Chacha20Poly1305, &key32, &iv, 2);
        assert_eq!(c.0.len(), 56);
        assert_eq!(&c.0[4..16], &iv[..]);
        assert_eq!(&c.0[48..56], &2u64.to_be_bytes());
    }

    #[test]
    fn releases_compare() {
        assert!(release_at_least("6.14.0-rc1", 6, 14));
        assert!(release_at_least("6.18.3-arch1", 6, 14));
        assert!(!release_at_least("6.1.0-47-amd64", 6, 14));
        assert!(!release_at_least("5.19.0", 6, 14));
        assert!(!release_at_least("garbage", 6, 14));
    }

    #[test]
    fn record_bound_counts_the_open_record() {
        assert_eq!(records_for(1), 1);
        assert_eq!(records_for(16383), 1);
        assert_eq!(records_for(16384), 2);
        assert_eq!(records_for(MAX_SEND), 17);
    }

    #[test]
    fn suites_map_to_kernel_ciphers() {
        use rustls::crypto::ring::cipher_suite as cs;
        assert_eq!(
            Cipher::of_suite(cs::TLS13_AES_256_GCM_SHA384),
            Some(Cipher::Aes256Gcm)
        );
        assert_eq!(
            Cipher::of_suite(cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
            Some(Cipher::Chacha20Poly1305)
        );
        let s = KernelSupport {
            unavailable: None,
            suites: vec![(TLS_1_3_VERSION, Cipher::Aes128Gcm)],
            rekey: false,
            release: "6.1".into(),
        };
        assert!(s.supports(Some(ProtocolVersion::TLSv1_3), cs::TLS13_AES_128_GCM_SHA256));
        assert!(!s.supports(
            Some(ProtocolVersion::TLSv1_2),
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        ));
    }

    #[test]
    fn probe_reports_this_kernel() {
        // Whatever this kernel has, the probe must say so without failing.
        let s = probe();
        assert!(!s.describe().is_empty());
        assert_eq!(s.unavailable.is_none(), !s.suites.is_empty());
    }
}
