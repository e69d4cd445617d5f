//! What the kernel offers ([`probe`], [`KernelSupport`]) and why a connection stays in
//! rustls ([`Declined`]) or a switch failed ([`SwitchError`]).

use std::io;
use std::os::fd::AsRawFd;

use rustls::{ProtocolVersion, SupportedCipherSuite};

use super::abi::{TLS_RX, TLS_TX};
use super::cipher::{Cipher, TLS_1_2_VERSION, TLS_1_3_VERSION, version_id};
use super::keys::CryptoInfo;
use super::sys::{set_crypto, set_ulp};

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
    ) -> Result<(ProtocolVersion, SupportedCipherSuite), Declined> {
        match (version, suite) {
            (Some(v), Some(s)) if self.supports(Some(v), s) => Ok((v, s)),
            (Some(v), Some(s)) => Err(Declined::NoKernelCipher(v, s)),
            _ => Err(Declined::HandshakeIncomplete),
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
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Whether a release string is at least `major.minor`.
pub(super) fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
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
#[non_exhaustive]
pub enum SwitchError {
    /// Nothing was changed: the connection can stay in rustls.
    Declined(Declined),
    /// The secrets left rustls but the kernel refused them: the connection must close.
    Broken(io::Error),
}

impl std::fmt::Display for SwitchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SwitchError::Declined(why) => why.fmt(f),
            SwitchError::Broken(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SwitchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SwitchError::Declined(why) => Some(why),
            SwitchError::Broken(e) => Some(e),
        }
    }
}

/// Why a connection's records stay in rustls although kTLS is on: nothing was changed.
/// (With `ssl_kernel_tls=auto` the connection goes on in rustls; with `on` it is closed.)
#[derive(Debug)]
#[non_exhaustive]
pub enum Declined {
    /// The kernel has no kTLS for the negotiated version and cipher suite.
    NoKernelCipher(ProtocolVersion, SupportedCipherSuite),
    /// rustls has no negotiated version or suite yet.
    HandshakeIncomplete,
    /// The peer closed while buffered records were being drained for the switch.
    PeerClosed,
    /// Records or queued messages were left over after draining: no boundary to switch at.
    NoRecordBoundary,
    /// The socket refused the TLS upper-layer protocol.
    Ulp(io::Error),
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Declined::NoKernelCipher(v, s) => {
                write!(f, "the kernel has no kTLS for {v:?} {:?}", s.suite())
            }
            Declined::HandshakeIncomplete => f.write_str("handshake not complete"),
            Declined::PeerClosed => f.write_str("the peer closed during the switch"),
            Declined::NoRecordBoundary => f.write_str("no record boundary to switch at"),
            Declined::Ulp(e) => write!(f, "setsockopt TCP_ULP \"tls\": {e}"),
        }
    }
}

impl std::error::Error for Declined {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Declined::Ulp(e) => Some(e),
            _ => None,
        }
    }
}
