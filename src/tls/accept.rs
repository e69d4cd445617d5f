//! Accepting a TLS client: the handshake within its deadline, then the record path (the
//! kernel when `ssl_kernel_tls` and the kernel allow, rustls otherwise).
//!
//! Read top-down: [`accept`] bounds the whole attempt by `ssl_handshake_timeout`; inside it
//! a permissive listener first looks at one byte (0x16 starts a TLS handshake record,
//! anything else is a plaintext client), the handshake runs in rustls with the
//! configuration of the listener's kind, and [`secure`] moves the finished connection into
//! the kernel or says why it stays in rustls. The outcome is a value ([`Accepted`] or an
//! [`AcceptError`]); counting and logging it is the caller's (the listener's) business.

use std::time::Duration;

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

use super::TlsContext;
use super::conn::{HandshakeError, TlsStream};
use super::ktls::{Declined, KtlsMode, KtlsStream, SwitchError};

/// What a listener expects of its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// TLS; with `mtls`, a client certificate is required.
    Tls {
        /// Whether the listener is an `mtls:` one.
        mtls: bool,
    },
    /// TLS if the first byte is a TLS handshake record, else plaintext (`permissive:`).
    Either,
}

/// Where a secured connection's records go from now on.
#[derive(Debug)]
pub enum Records {
    /// In rustls, in userspace.
    User(Box<TlsStream>),
    /// In the kernel (kTLS).
    Kernel(Box<KtlsStream>),
}

/// A finished handshake.
#[derive(Debug)]
pub struct Secured {
    /// The record path.
    pub records: Records,
    /// Application data that came along with the client's last handshake message.
    pub early: Vec<u8>,
    /// Whether the handshake resumed an earlier session.
    pub resumed: bool,
    /// Whether `ssl_kernel_tls=auto` had to leave the records in rustls.
    pub ktls_fallback: bool,
    /// "TLSv1_3 Some(TLS13_AES_128_GCM_SHA256)" and the like, for logs.
    pub described: String,
}

/// What accepting a client led to.
#[derive(Debug)]
pub enum Accepted {
    /// The handshake finished.
    Tls(Secured),
    /// A permissive listener's client speaks plaintext: the bytes read to find out.
    Plaintext(Vec<u8>),
}

/// Why a client could not be accepted. The connection is to be closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AcceptError {
    /// The handshake failed (bad TLS, a refused certificate, the socket).
    Handshake(HandshakeError),
    /// An `mtls:` listener, but no CA to verify client certificates with.
    NoClientCa,
    /// `ssl_kernel_tls=on`, and this connection cannot move to the kernel.
    KtlsRequired(Declined),
    /// The secrets left rustls but the kernel refused them.
    KtlsBroken(std::io::Error),
    /// The handshake did not finish within `ssl_handshake_timeout`.
    TimedOut(Duration),
}

impl std::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The texts (with their "I/O: " prefix) are those logged before this type existed.
        match self {
            AcceptError::Handshake(e) => e.fmt(f),
            AcceptError::NoClientCa => f.write_str("I/O: mtls: no CA"),
            AcceptError::KtlsRequired(why) => write!(
                f,
                "I/O: ssl_kernel_tls=on and this connection cannot use kTLS: {why}"
            ),
            AcceptError::KtlsBroken(e) => write!(f, "I/O: {e}"),
            AcceptError::TimedOut(d) => write!(f, "did not finish within {}s", d.as_secs()),
        }
    }
}

impl std::error::Error for AcceptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcceptError::Handshake(e) => Some(e),
            AcceptError::KtlsRequired(why) => Some(why),
            AcceptError::KtlsBroken(e) => Some(e),
            AcceptError::NoClientCa | AcceptError::TimedOut(_) => None,
        }
    }
}

impl AcceptError {
    /// Whether the client's certificate was missing or did not verify.
    pub fn is_verify_failure(&self) -> bool {
        matches!(self, AcceptError::Handshake(e) if e.is_verify_failure())
    }
}

impl From<HandshakeError> for AcceptError {
    fn from(e: HandshakeError) -> Self {
        AcceptError::Handshake(e)
    }
}

/// Accepts a client on `stream` within `ssl_handshake_timeout`. `id` and `verbose` are for
/// the log line of a kTLS fallback.
pub async fn accept(
    stream: &mut TcpStream,
    expect: Expect,
    tls: &TlsContext,
    id: u64,
    verbose: u32,
) -> Result<Accepted, AcceptError> {
    let deadline = tls.settings.handshake_timeout;
    let attempt = handshake(stream, expect, tls, id, verbose);
    match glommio::timer::timeout(deadline, async { Ok(attempt.await) }).await {
        Ok(outcome) => outcome,
        Err(_) => Err(AcceptError::TimedOut(deadline)),
    }
}

/// The attempt itself, without the deadline.
async fn handshake(
    stream: &mut TcpStream,
    expect: Expect,
    tls: &TlsContext,
    id: u64,
    verbose: u32,
) -> Result<Accepted, AcceptError> {
    let mut first = Vec::new();
    let mtls = match expect {
        Expect::Tls { mtls } => mtls,
        Expect::Either => {
            let mut b = [0u8; 1];
            let n = stream.read(&mut b).await.map_err(HandshakeError::Io)?;
            if n == 0 {
                return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()).into());
            }
            first.push(b[0]);
            if b[0] != 0x16 {
                return Ok(Accepted::Plaintext(first));
            }
            false
        }
    };
    let configs = tls.current();
    let config = if mtls {
        configs.mtls.clone().ok_or(AcceptError::NoClientCa)?
    } else {
        configs.tls.clone()
    };
    let mut early = Vec::new();
    let t = TlsStream::accept(stream, config, &first, &mut early).await?;
    let resumed = t.resumed();
    let described = t.describe();
    let (records, ktls_fallback) = secure(t, stream, &mut early, tls, id, verbose).await?;
    Ok(Accepted::Tls(Secured {
        records,
        early,
        resumed,
        ktls_fallback,
        described,
    }))
}

/// Moves a finished handshake into the kernel when `ssl_kernel_tls` and the kernel allow.
/// Returns the record path and whether `auto` had to fall back to rustls.
async fn secure(
    t: TlsStream,
    stream: &mut TcpStream,
    early: &mut Vec<u8>,
    tls: &TlsContext,
    id: u64,
    verbose: u32,
) -> Result<(Records, bool), AcceptError> {
    let mode = tls.settings.kernel_tls;
    if mode == KtlsMode::Off {
        return Ok((Records::User(Box::new(t)), false));
    }
    if tls.kernel.unavailable.is_some() {
        // Said once at startup; every connection counts.
        return Ok((Records::User(Box::new(t)), true));
    }
    match t
        .into_kernel(stream, early, &tls.kernel, tls.settings.ktls_record_limit)
        .await
    {
        Ok(k) => Ok((Records::Kernel(Box::new(k)), false)),
        Err((SwitchError::Declined(why), Some(t))) if mode == KtlsMode::Auto => {
            if verbose > 0 {
                eprintln!("<{id} kTLS not used, records stay in rustls: {why}");
            }
            Ok((Records::User(t), true))
        }
        Err((SwitchError::Declined(why), _)) => Err(AcceptError::KtlsRequired(why)),
        Err((SwitchError::Broken(e), _)) => Err(AcceptError::KtlsBroken(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::{AcceptError, HandshakeError};
    use crate::tls::ktls::Declined;

    #[test]
    fn errors_read_as_the_log_lines_did() {
        let eof = || HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into());
        assert_eq!(
            AcceptError::Handshake(eof()).to_string(),
            format!(
                "I/O: {}",
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof)
            )
        );
        assert_eq!(AcceptError::NoClientCa.to_string(), "I/O: mtls: no CA");
        assert_eq!(
            AcceptError::KtlsRequired(Declined::NoRecordBoundary).to_string(),
            "I/O: ssl_kernel_tls=on and this connection cannot use kTLS: no record boundary \
             to switch at"
        );
        let refused =
            AcceptError::Handshake(HandshakeError::Tls(rustls::Error::NoCertificatesPresented));
        assert!(refused.is_verify_failure());
        assert!(!AcceptError::Handshake(eof()).is_verify_failure());
        assert!(!AcceptError::TimedOut(std::time::Duration::from_secs(1)).is_verify_failure());
    }
}
