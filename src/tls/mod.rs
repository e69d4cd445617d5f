//! TLS: memcached's `-Z` / `-o ssl_*` settings turned into rustls server configurations that
//! can be reloaded while the server runs (`refresh_certs`, SIGHUP).
//!
//! Certificates and keys are read from PEM (or DER, `ssl_keyformat=2`) with
//! `rustls-pki-types`. Every executor does its own handshakes ([`conn`]); new connections
//! take whatever configuration is current, existing ones keep the one they started with.

pub mod accept;
pub mod certs;
pub mod conn;
pub mod ktls;
mod validity;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use ktls::{KernelSupport, KtlsMode};

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
    /// `ssl_ciphers` as given (None = rustls's defaults).
    pub ciphers: Option<String>,
    /// `ssl_wbuf_size` in bytes (given in KB).
    pub wbuf_size: usize,
    /// `ssl_session_cache`: server-side cache for TLS 1.2 session IDs.
    pub session_cache: bool,
    /// `ssl_kernel_tls`: auto (default), on or off (see [`ktls`]).
    pub kernel_tls: KtlsMode,
    /// `ssl_ktls_record_limit` (tessera): records a kTLS connection sends under one key
    /// before it is rekeyed or closed; 0 = the cipher suite's confidentiality limit.
    pub ktls_record_limit: u64,
    /// `ssl_handshake_timeout` (tessera): a handshake must finish within this.
    pub handshake_timeout: Duration,
}

/// Sessions kept in the TLS 1.2 session-ID cache (`ssl_session_cache`).
const SESSION_CACHE_ENTRIES: usize = 64 * 1024;

impl TlsSettings {
    /// Settings for a directory `tessera certs` wrote: its server certificate and key, its
    /// CA for client certificates (asked for, not required: `ssl_verify_mode=1`), kernel
    /// TLS off, and memcached's defaults for the rest. For TLS run in memory (tests,
    /// fuzzing), where no socket can move to kTLS.
    pub fn for_dev_certs(dir: &Path) -> Result<TlsSettings, String> {
        let file = |name: &str| dir.join(name).display().to_string();
        let config = Config {
            tls_enabled: true,
            tls_opts: vec![
                ("ssl_chain_cert".into(), file("server.pem")),
                ("ssl_key".into(), file("server.key")),
                ("ssl_ca_cert".into(), file("ca.pem")),
                ("ssl_verify_mode".into(), "1".into()),
                ("ssl_kernel_tls".into(), "off".into()),
            ],
            ..Config::default()
        };
        Ok(Self::from_config(&config)?.expect("TLS is enabled in this configuration"))
    }

    /// The TLS settings of `config` (None when `-Z` is off), checked.
    pub fn from_config(config: &Config) -> Result<Option<TlsSettings>, String> {
        if !config.tls_enabled {
            return Ok(None);
        }
        let get = |k: &str| {
            config
                .tls_opts
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let chain_cert = get("ssl_chain_cert")
            .ok_or("-Z needs -o ssl_chain_cert=FILE (the server certificate chain)")?;
        let key = get("ssl_key").ok_or("-Z needs -o ssl_key=FILE (the server's private key)")?;
        let key_der = match get("ssl_keyformat").unwrap_or("1") {
            "1" | "pem" | "PEM" => false,
            "2" | "der" | "DER" | "asn1" | "ASN1" => true,
            v => return Err(format!("ssl_keyformat: '{v}' is not 1 (PEM) or 2 (DER)")),
        };
        let verify_mode = match get("ssl_verify_mode").unwrap_or("0") {
            "0" => VerifyMode::None,
            "1" => VerifyMode::Request,
            "2" => VerifyMode::Require,
            "3" => VerifyMode::Once,
            v => return Err(format!("ssl_verify_mode: '{v}' is not 0, 1, 2 or 3")),
        };
        let ca_cert = get("ssl_ca_cert").map(PathBuf::from);
        if verify_mode != VerifyMode::None && ca_cert.is_none() {
            return Err("ssl_verify_mode 1-3 needs -o ssl_ca_cert=FILE to verify clients".into());
        }
        // memcached 1.6 takes 0-3 (TLS 1.0 .. 1.3) and prints tlsvX.Y; both spellings work.
        let min_version = match get("ssl_min_version").unwrap_or("tlsv1.2") {
            "tlsv1.2" | "2" => MinVersion::Tls12,
            "tlsv1.3" | "3" => MinVersion::Tls13,
            v @ ("tlsv1" | "tlsv1.0" | "tlsv1.1" | "0" | "1") => {
                return Err(format!(
                    "ssl_min_version: {v} is not supported (TLS 1.2 and 1.3 only); use tlsv1.2"
                ));
            }
            v => {
                return Err(format!(
                    "ssl_min_version: '{v}' is not tlsv1.2 (2) or tlsv1.3 (3)"
                ));
            }
        };
        let ciphers = get("ssl_ciphers").map(str::to_string);
        if let Some(c) = &ciphers {
            select_suites(c, min_version)?;
        }
        let wbuf_kb: usize = match get("ssl_wbuf_size") {
            None => 16,
            Some(v) => v
                .parse()
                .ok()
                .filter(|&k| (1..=1024).contains(&k))
                .ok_or_else(|| {
                    format!("ssl_wbuf_size: '{v}' is not a size in KB from 1 to 1024")
                })?,
        };
        let handshake_timeout = match get("ssl_handshake_timeout") {
            None => Duration::from_secs(10),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|&s| (1..=3600).contains(&s))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    format!(
                        "ssl_handshake_timeout: '{v}' is not a number of seconds from 1 to 3600"
                    )
                })?,
        };
        let ktls_record_limit = match get("ssl_ktls_record_limit") {
            None => 0,
            Some(v) => v.parse::<u64>().ok().filter(|&n| n == 0 || n >= 16).ok_or_else(|| {
                format!("ssl_ktls_record_limit: '{v}' is not 0 (the cipher's limit) or a count >= 16")
            })?,
        };
        let switch = |k: &str| matches!(get(k), Some("true" | "1" | "yes"));
        Ok(Some(TlsSettings {
            chain_cert: chain_cert.into(),
            key: key.into(),
            key_der,
            ca_cert,
            verify_mode,
            min_version,
            ciphers,
            wbuf_size: wbuf_kb * 1024,
            session_cache: switch("ssl_session_cache"),
            kernel_tls: KtlsMode::parse(get("ssl_kernel_tls"))?,
            ktls_record_limit,
            handshake_timeout,
        }))
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
pub fn select_suites(list: &str, min: MinVersion) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = Vec::new();
    for name in list
        .split([':', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let suite = suite_by_name(name).ok_or_else(|| {
            format!(
                "ssl_ciphers: unknown or unsupported cipher '{name}' (supported: \
                 TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, \
                 ECDHE-{{ECDSA,RSA}}-{{AES128-GCM-SHA256,AES256-GCM-SHA384,CHACHA20-POLY1305}})"
            )
        })?;
        if !out.contains(&suite) {
            out.push(suite);
        }
    }
    let usable = out.iter().any(|s| match min {
        MinVersion::Tls12 => true,
        MinVersion::Tls13 => matches!(s, SupportedCipherSuite::Tls13(_)),
    });
    if !usable {
        return Err(format!(
            "ssl_ciphers: '{list}' has no cipher usable with the minimum TLS version"
        ));
    }
    Ok(out)
}

/// The configurations new connections use; replaced whole on reload.
#[derive(Debug)]
pub struct Configs {
    /// For plain TLS listeners (client certificates per `ssl_verify_mode`).
    pub tls: Arc<ServerConfig>,
    /// For `mtls:` listeners (client certificate required), when a CA is configured.
    pub mtls: Option<Arc<ServerConfig>>,
}

/// TLS state shared by all executors.
pub struct TlsContext {
    /// The settings it was built from.
    pub settings: TlsSettings,
    configs: RwLock<Arc<Configs>>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
    /// Unix time of the last successful (re)load.
    refreshed_at: AtomicI64,
    /// What the kernel offers for kTLS (probed at startup; nothing when it is off).
    pub kernel: KernelSupport,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(certs)
}

/// Whether the first certificate of a chain is valid now (notBefore <= now <= notAfter).
fn leaf_in_date(path: &Path, chain: &[CertificateDer<'static>]) -> Result<(), String> {
    let leaf = chain
        .first()
        .ok_or_else(|| format!("{}: no certificate found", path.display()))?;
    let v = validity::validity(leaf.as_ref())
        .map_err(|e| format!("{}: cannot parse the certificate: {e}", path.display()))?;
    let now = crate::store::clock::unix_now();
    if now > v.not_after.unix() {
        return Err(format!(
            "{}: the certificate expired on {} (notAfter)",
            path.display(),
            v.not_after
        ));
    }
    if now < v.not_before.unix() {
        return Err(format!(
            "{}: the certificate is not valid before {} (notBefore)",
            path.display(),
            v.not_before
        ));
    }
    Ok(())
}

fn read_key(path: &Path, der: bool) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if der {
        PrivateKeyDer::try_from(bytes)
            .map_err(|e| format!("{}: not a DER private key: {e}", path.display()))
    } else {
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
            format!(
                "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                path.display()
            )
        })
    }
}

impl TlsContext {
    /// Loads certificates and builds the configurations; any problem is one message naming
    /// the file.
    pub fn new(settings: TlsSettings) -> Result<Arc<TlsContext>, String> {
        let ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| format!("cannot create the session ticket key: {e}"))?;
        let sessions: Arc<dyn StoresServerSessions> = if settings.session_cache {
            ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES)
        } else {
            Arc::new(NoServerSessionStorage {})
        };
        let kernel = match settings.kernel_tls {
            KtlsMode::Off => KernelSupport::none("ssl_kernel_tls=off"),
            KtlsMode::Auto | KtlsMode::On => ktls::probe(),
        };
        if settings.kernel_tls == KtlsMode::On
            && let Some(why) = &kernel.unavailable
        {
            return Err(format!(
                "ssl_kernel_tls=on: kernel TLS is not usable on Linux {}: {why} \
                     (use ssl_kernel_tls=auto to fall back to userspace TLS)",
                kernel.release
            ));
        }
        let (configs, out_of_date) = build_configs(&settings, &ticketer, &sessions, &kernel)?;
        if let Some(e) = out_of_date {
            // At startup there is nothing older to keep serving: say it and go on (clients
            // that verify will refuse it; a reload with such a certificate is refused).
            eprintln!("tessera: warning: {e}");
        }
        Ok(Arc::new(TlsContext {
            kernel,
            settings,
            configs: RwLock::new(Arc::new(configs)),
            ticketer,
            sessions,
            refreshed_at: AtomicI64::new(crate::store::clock::unix_now()),
        }))
    }

    /// The current configurations (for a new connection).
    pub fn current(&self) -> Arc<Configs> {
        match self.configs.read() {
            Ok(c) => c.clone(),
            // A writer panicked mid-swap; the value itself is still a complete Arc.
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-reads chain, key and CA. On any error the old configuration keeps serving and the
    /// error is returned.
    pub fn reload(&self) -> Result<(), String> {
        let (configs, out_of_date) =
            build_configs(&self.settings, &self.ticketer, &self.sessions, &self.kernel)?;
        // An expired (or not yet valid) certificate would make every verifying client
        // refuse new connections: keep the one that works.
        if let Some(e) = out_of_date {
            return Err(e);
        }
        match self.configs.write() {
            Ok(mut c) => *c = Arc::new(configs),
            Err(p) => *p.into_inner() = Arc::new(configs),
        }
        self.refreshed_at
            .store(crate::store::clock::unix_now(), Ordering::Relaxed);
        Ok(())
    }

    /// Seconds since the certificates were last (re)loaded.
    pub fn secs_since_refresh(&self) -> i64 {
        crate::store::clock::unix_now() - self.refreshed_at.load(Ordering::Relaxed)
    }
}

/// The configurations from the settings' files, and what is wrong with the certificate's
/// dates, if anything (a warning at startup, a refusal on reload).
fn build_configs(
    s: &TlsSettings,
    ticketer: &Arc<dyn ProducesTickets>,
    sessions: &Arc<dyn StoresServerSessions>,
    kernel: &KernelSupport,
) -> Result<(Configs, Option<String>), String> {
    let certs = read_certs(&s.chain_cert)?;
    let out_of_date = leaf_in_date(&s.chain_cert, &certs).err();
    let key = read_key(&s.key, s.key_der)?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = &s.ciphers {
        provider.cipher_suites = select_suites(list, s.min_version)?;
    }
    if s.kernel_tls == KtlsMode::On {
        // Every connection must be able to move to the kernel: offer only what it has.
        provider.cipher_suites.retain(|&suite| {
            let version = match suite {
                SupportedCipherSuite::Tls13(_) => rustls::ProtocolVersion::TLSv1_3,
                SupportedCipherSuite::Tls12(_) => rustls::ProtocolVersion::TLSv1_2,
            };
            kernel.supports(Some(version), suite)
        });
        if provider.cipher_suites.is_empty() {
            return Err(format!(
                "ssl_kernel_tls=on: the kernel implements none of the configured ciphers ({})",
                kernel.describe()
            ));
        }
    }
    let provider = Arc::new(provider);
    let roots = match &s.ca_cert {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(path)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let build = |require: Option<bool>| -> Result<Arc<ServerConfig>, String> {
        let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS settings: {e}"))?;
        let builder = match (require, &roots) {
            (None, _) | (_, None) => builder.with_no_client_auth(),
            (Some(required), Some(roots)) => {
                let mut vb =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                if !required {
                    vb = vb.allow_unauthenticated();
                }
                let verifier = vb.build().map_err(|e| {
                    format!(
                        "{}: cannot verify clients with it: {e}",
                        s.ca_cert.as_deref().unwrap_or(Path::new("?")).display()
                    )
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| {
                format!(
                    "{} / {}: certificate and key do not form a usable pair: {e}",
                    s.chain_cert.display(),
                    s.key.display()
                )
            })?;
        cfg.ticketer = ticketer.clone();
        cfg.session_storage = sessions.clone();
        // kTLS takes the traffic secrets after the handshake.
        cfg.enable_secret_extraction = true;
        Ok(Arc::new(cfg))
    };
    let tls = build(match s.verify_mode {
        VerifyMode::None => None,
        VerifyMode::Request => Some(false),
        VerifyMode::Require | VerifyMode::Once => Some(true),
    })?;
    let mtls = match roots {
        Some(_) => Some(build(Some(true))?),
        None => None,
    };
    Ok((Configs { tls, mtls }, out_of_date))
}

/// Process-wide TLS statistics names and values for `stats settings`.
pub fn settings_stats(s: Option<&TlsSettings>) -> Vec<(&'static str, String)> {
    let Some(s) = s else {
        return vec![("ssl_enabled", "no".into())];
    };
    vec![
        ("ssl_enabled", "yes".into()),
        ("ssl_chain_cert", s.chain_cert.display().to_string()),
        ("ssl_key", s.key.display().to_string()),
        ("ssl_verify_mode", (s.verify_mode as u8).to_string()),
        ("ssl_keyformat", if s.key_der { "2" } else { "1" }.into()),
        (
            "ssl_ciphers",
            s.ciphers.clone().unwrap_or_else(|| "NULL".into()),
        ),
        (
            "ssl_ca_cert",
            s.ca_cert
                .as_ref()
                .map_or("NULL".into(), |p| p.display().to_string()),
        ),
        ("ssl_wbuf_size", s.wbuf_size.to_string()),
        (
            "ssl_session_cache",
            if s.session_cache { "yes" } else { "no" }.into(),
        ),
        ("ssl_kernel_tls", s.kernel_tls.name().into()),
        ("ssl_ktls_record_limit", s.ktls_record_limit.to_string()),
        (
            "ssl_min_version",
            match s.min_version {
                MinVersion::Tls12 => "tlsv1.2",
                MinVersion::Tls13 => "tlsv1.3",
            }
            .into(),
        ),
        (
            "ssl_handshake_timeout",
            s.handshake_timeout.as_secs().to_string(),
        ),
    ]
}
