//! The traffic secrets as the kernel takes them: `struct tls12_crypto_info_*` laid out as
//! bytes, wiped when dropped.

use std::io;

use rustls::{ConnectionTrafficSecrets, ProtocolVersion};

use super::cipher::{Cipher, version_id};

/// A kernel `tls12_crypto_info_*` structure as bytes (keys are wiped on drop).
pub(super) struct CryptoInfo(pub(super) Vec<u8>);

impl Drop for CryptoInfo {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

impl CryptoInfo {
    /// Lays out `struct tls12_crypto_info_{aes_gcm_128,aes_gcm_256,chacha20_poly1305}`:
    /// version and cipher (host order u16), then iv, key, salt and rec_seq (big endian).
    pub(super) fn build(
        version: u16,
        cipher: Cipher,
        key: &[u8],
        iv12: &[u8],
        seq: u64,
    ) -> CryptoInfo {
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

    pub(super) fn throwaway(version: u16, cipher: Cipher) -> CryptoInfo {
        let key_len = if cipher == Cipher::Aes128Gcm { 16 } else { 32 };
        CryptoInfo::build(version, cipher, &[0x11; 32][..key_len], &[0x22; 12], 0)
    }

    pub(super) fn from_secrets(
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
