//! The TLS versions and record ciphers the kernel implements, by its ids (linux/tls.h), and
//! how rustls' names map onto them. A leaf: the probe ([`super`]) and the key layout
//! ([`super::keys`]) both read it.

use rustls::{ProtocolVersion, SupportedCipherSuite};

/// Versions and ciphers as linux/tls.h numbers them.
pub(super) const TLS_1_2_VERSION: u16 = 0x0303;
pub(super) const TLS_1_3_VERSION: u16 = 0x0304;
pub(super) const TLS_CIPHER_AES_GCM_128: u16 = 51;
pub(super) const TLS_CIPHER_AES_GCM_256: u16 = 52;
pub(super) const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;

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
    pub(super) const ALL: [Cipher; 3] = [
        Cipher::Aes128Gcm,
        Cipher::Aes256Gcm,
        Cipher::Chacha20Poly1305,
    ];

    pub(super) fn kernel_id(self) -> u16 {
        match self {
            Cipher::Aes128Gcm => TLS_CIPHER_AES_GCM_128,
            Cipher::Aes256Gcm => TLS_CIPHER_AES_GCM_256,
            Cipher::Chacha20Poly1305 => TLS_CIPHER_CHACHA20_POLY1305,
        }
    }

    pub(super) fn name(self) -> &'static str {
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

pub(super) fn version_id(v: ProtocolVersion) -> Option<u16> {
    match v {
        ProtocolVersion::TLSv1_2 => Some(TLS_1_2_VERSION),
        ProtocolVersion::TLSv1_3 => Some(TLS_1_3_VERSION),
        _ => None,
    }
}
