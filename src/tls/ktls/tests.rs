//! Unit tests of the kTLS module: layouts, release parsing, record bounds, the probe.

use super::cipher::{TLS_1_2_VERSION, TLS_1_3_VERSION};
use super::keys::CryptoInfo;
use super::probe::release_at_least;
use super::stream::{MAX_SEND, records_for};
use super::*;
use rustls::ProtocolVersion;
use std::io;

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

#[test]
fn declined_reasons_read_as_before() {
    use rustls::crypto::ring::cipher_suite as cs;
    let cases = [
        (
            Declined::NoKernelCipher(ProtocolVersion::TLSv1_3, cs::TLS13_AES_128_GCM_SHA256),
            "the kernel has no kTLS for TLSv1_3 TLS13_AES_128_GCM_SHA256",
        ),
        (Declined::HandshakeIncomplete, "handshake not complete"),
        (Declined::PeerClosed, "the peer closed during the switch"),
        (
            Declined::NoRecordBoundary,
            "no record boundary to switch at",
        ),
    ];
    for (why, text) in cases {
        assert_eq!(why.to_string(), text);
    }
    let ulp = Declined::Ulp(io::Error::from_raw_os_error(libc::ENOENT));
    assert!(ulp.to_string().starts_with("setsockopt TCP_ULP \"tls\": "));
}
