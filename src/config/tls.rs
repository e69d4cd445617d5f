//! TLS settings: memcached's `-Z` and `-o ssl_*` options (or the file's `[tls]` table),
//! checked into one typed [`TlsSettings`] that `tls/` builds rustls configurations from.
//!
//! The options are kept as given until startup, and checked only when `-Z` is on: memcached
//! accepts any `ssl_*` value without `-Z`, and an operator may keep TLS options in a file
//! while switching TLS itself off. [`Config::tls_settings`] is the one place they are
//! read.

use std::path::PathBuf;
use std::time::Duration;

use rustls::SupportedCipherSuite;

use super::error::TlsError;

/// memcached's `ssl_verify_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// 0: no client certificate is asked for.
    None,
    /// 1: asked for; verified when presented.
    Request,
    /// 2: required and verified.
    Require,
    /// 3: required on the first handshake; a resumed session is not asked again.
    Once,
}

/// Lowest TLS version accepted (only 1.2 and 1.3 exist here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// `ssl_kernel_tls`: whether TLS records move into the kernel after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KtlsMode {
    /// kTLS where the kernel has it (and the negotiated suite), rustls elsewhere.
    Auto,
    /// kTLS for every connection: refuse to start without it; offer only suites it has.
    On,
    /// Records stay in rustls.
    Off,
}

impl KtlsMode {
    /// Parses `-o ssl_kernel_tls[=VALUE]` / TOML `tls.kernel`. memcached's bare switch
    /// (stored as "true") asks for kTLS where it works, which is `auto`.
    pub fn parse(v: Option<&str>) -> Result<KtlsMode, TlsError> {
        match v {
            None | Some("auto" | "true") => Ok(KtlsMode::Auto),
            Some("on" | "yes" | "1" | "required") => Ok(KtlsMode::On),
            Some("off" | "no" | "0" | "false") => Ok(KtlsMode::Off),
            Some(v) => Err(TlsError::KernelTls(v.to_string())),
        }
    }

    /// The name `stats settings` shows.
    pub fn name(self) -> &'static str {
        match self {
            KtlsMode::Auto => "auto",
            KtlsMode::On => "on",
            KtlsMode::Off => "off",
        }
    }
}

/// `ssl_ciphers`: the list as given (which `stats settings` shows) and the rustls suites
/// it names, in its order.
#[derive(Debug, Clone)]
pub struct Ciphers {
    /// As given.
    pub list: String,
    /// The suites, without repeats.
    pub suites: Vec<SupportedCipherSuite>,
}

/// Validated TLS settings.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `ssl_chain_cert`: the server certificate chain.
    pub chain_cert: PathBuf,
    /// `ssl_key`: the server's private key.
    pub key: PathBuf,
    /// `ssl_keyformat`: 1 PEM (default), 2 DER.
    pub key_der: bool,
    /// `ssl_ca_cert`: CAs that client certificates must chain to.
    pub ca_cert: Option<PathBuf>,
    /// `ssl_verify_mode`.
    pub verify_mode: VerifyMode,
    /// `ssl_min_version`.
    pub min_version: MinVersion,
    /// `ssl_ciphers` (None = rustls's defaults).
    pub ciphers: Option<Ciphers>,
    /// `ssl_wbuf_size` in bytes (given in KB).
    pub wbuf_size: usize,
    /// `ssl_session_cache`: server-side cache for TLS 1.2 session IDs.
    pub session_cache: bool,
    /// `ssl_kernel_tls`: auto (default), on or off.
    pub kernel_tls: KtlsMode,
    /// `ssl_ktls_record_limit` (tessera): records a kTLS connection sends under one key
    /// before it is rekeyed or closed; 0 = the cipher suite's confidentiality limit.
    pub ktls_record_limit: u64,
    /// `ssl_handshake_timeout` (tessera): a handshake must finish within this.
    pub handshake_timeout: Duration,
}

impl TlsSettings {
    /// `stats settings`' name for `ssl_keyformat`.
    pub(crate) fn keyformat(&self) -> &'static str {
        if self.key_der { "2" } else { "1" }
    }

    /// `stats settings`' name for `ssl_min_version`.
    pub(crate) fn min_version_name(&self) -> &'static str {
        match self.min_version {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

/// The cipher suites rustls (ring) offers, by OpenSSL and IANA name.
fn suite_by_name(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "TLS_AES_128_GCM_SHA256" | "TLS13_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" | "TLS13_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" | "TLS13_CHACHA20_POLY1305_SHA256" => {
            cs::TLS13_CHACHA20_POLY1305_SHA256
        }
        "ECDHE-ECDSA-AES128-GCM-SHA256" | "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        }
        "ECDHE-ECDSA-AES256-GCM-SHA384" | "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        }
        "ECDHE-ECDSA-CHACHA20-POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "ECDHE-RSA-AES128-GCM-SHA256" | "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        }
        "ECDHE-RSA-AES256-GCM-SHA384" | "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        }
        "ECDHE-RSA-CHACHA20-POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// Maps an `ssl_ciphers` list (':' or ',' separated, OpenSSL or IANA names) onto rustls
/// suites. Unknown names, and a list with nothing usable at `min`, are errors.
pub fn select_suites(list: &str, min: MinVersion) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut out = Vec::new();
    for name in list
        .split([':', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let suite = suite_by_name(name).ok_or_else(|| TlsError::UnknownCipher(name.to_string()))?;
        if !out.contains(&suite) {
            out.push(suite);
        }
    }
    let usable = out.iter().any(|s| match min {
        MinVersion::Tls12 => true,
        MinVersion::Tls13 => matches!(s, SupportedCipherSuite::Tls13(_)),
    });
    if !usable {
        return Err(TlsError::NoUsableCipher(list.to_string()));
    }
    Ok(out)
}
