//! Why the TLS configurations could not be built, at startup or on a reload
//! (`refresh_certs`, SIGHUP).
//!
//! Each message names the file at fault; the texts are the ones the startup error line,
//! the `SERVER_ERROR` reply of `refresh_certs` and the SIGHUP log line have always shown.

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use super::validity::{CertTime, DateError};

/// Why a TLS configuration could not be (re)loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// A certificate, key or CA file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A certificate (or CA) file whose PEM is broken.
    CertPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader found.
        error: rustls_pki_types::pem::Error,
    },
    /// A certificate (or CA) file without a certificate in it.
    NoCert {
        /// The file.
        path: PathBuf,
    },
    /// The leaf certificate's DER could not be walked to its validity dates.
    CertDates {
        /// The certificate file.
        path: PathBuf,
        /// Where the walk stopped.
        error: DateError,
    },
    /// The leaf certificate's notAfter has passed.
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// notAfter.
        not_after: CertTime,
    },
    /// The leaf certificate's notBefore is still to come.
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// notBefore.
        not_before: CertTime,
    },
    /// A key file (`ssl_keyformat=2`) that is not a DER private key.
    KeyDer {
        /// The file.
        path: PathBuf,
        /// What rustls-pki-types says of it.
        error: &'static str,
    },
    /// A key file without a PEM private key in it (or with broken PEM).
    KeyPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader found.
        error: rustls_pki_types::pem::Error,
    },
    /// The certificate chain and the key are not a pair rustls can serve.
    KeyPair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        error: rustls::Error,
    },
    /// A CA certificate rustls cannot use as a root.
    CaCert {
        /// The CA file.
        path: PathBuf,
        /// Why.
        error: rustls::Error,
    },
    /// No client certificate verifier can be built from the CA file.
    ClientVerifier {
        /// The CA file.
        path: PathBuf,
        /// Why.
        error: rustls::server::VerifierBuilderError,
    },
    /// The protocol versions and cipher suites do not make a configuration.
    Versions(rustls::Error),
    /// The session ticket key could not be made.
    TicketKey(rustls::Error),
    /// `ssl_kernel_tls=on`, and the kernel cannot do TLS.
    KtlsUnavailable {
        /// The kernel release (`uname -r`).
        release: String,
        /// What the probe found.
        why: String,
    },
    /// `ssl_kernel_tls=on`, and the kernel has none of the configured cipher suites.
    KtlsNoCipher {
        /// What the kernel offers, as the startup line says it.
        kernel: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            LoadError::CertPem { path, error } => {
                write!(f, "{}: not a PEM certificate file: {error}", path.display())
            }
            LoadError::NoCert { path } => write!(f, "{}: no certificate found", path.display()),
            LoadError::CertDates { path, error } => {
                write!(
                    f,
                    "{}: cannot parse the certificate: {error}",
                    path.display()
                )
            }
            LoadError::Expired { path, not_after } => write!(
                f,
                "{}: the certificate expired on {not_after} (notAfter)",
                path.display()
            ),
            LoadError::NotYetValid { path, not_before } => write!(
                f,
                "{}: the certificate is not valid before {not_before} (notBefore)",
                path.display()
            ),
            LoadError::KeyDer { path, error } => {
                write!(f, "{}: not a DER private key: {error}", path.display())
            }
            LoadError::KeyPem { path, error } => write!(
                f,
                "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {error}",
                path.display()
            ),
            LoadError::KeyPair { cert, key, error } => write!(
                f,
                "{} / {}: certificate and key do not form a usable pair: {error}",
                cert.display(),
                key.display()
            ),
            LoadError::CaCert { path, error } => {
                write!(f, "{}: unusable CA certificate: {error}", path.display())
            }
            LoadError::ClientVerifier { path, error } => {
                write!(
                    f,
                    "{}: cannot verify clients with it: {error}",
                    path.display()
                )
            }
            LoadError::Versions(e) => write!(f, "TLS settings: {e}"),
            LoadError::TicketKey(e) => write!(f, "cannot create the session ticket key: {e}"),
            LoadError::KtlsUnavailable { release, why } => write!(
                f,
                "ssl_kernel_tls=on: kernel TLS is not usable on Linux {release}: {why} \
                 (use ssl_kernel_tls=auto to fall back to userspace TLS)"
            ),
            LoadError::KtlsNoCipher { kernel } => write!(
                f,
                "ssl_kernel_tls=on: the kernel implements none of the configured ciphers \
                 ({kernel})"
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { error, .. } => Some(error),
            LoadError::CertPem { error, .. } | LoadError::KeyPem { error, .. } => Some(error),
            LoadError::CertDates { error, .. } => Some(error),
            LoadError::KeyPair { error, .. }
            | LoadError::CaCert { error, .. }
            | LoadError::Versions(error)
            | LoadError::TicketKey(error) => Some(error),
            LoadError::ClientVerifier { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LoadError;

    /// The texts the startup line, `refresh_certs` and SIGHUP have always shown.
    #[test]
    fn messages() {
        let read = LoadError::Read {
            path: "/x/c.pem".into(),
            error: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            read.to_string(),
            "cannot read /x/c.pem: No such file or directory (os error 2)"
        );
        let none = LoadError::NoCert {
            path: "/x/c.pem".into(),
        };
        assert_eq!(none.to_string(), "/x/c.pem: no certificate found");
        let ktls = LoadError::KtlsUnavailable {
            release: "6.1".into(),
            why: "no tls module".into(),
        };
        assert_eq!(
            ktls.to_string(),
            "ssl_kernel_tls=on: kernel TLS is not usable on Linux 6.1: no tls module \
             (use ssl_kernel_tls=auto to fall back to userspace TLS)"
        );
    }
}
