//! TLS: memcached's `-Z` / `-o ssl_*` settings turned into rustls server configurations that
//! can be reloaded while the server runs (`refresh_certs`, SIGHUP).
//!
//! Certificates and keys are read from PEM (or DER, `ssl_keyformat=2`) with
//! `rustls-pki-types`. Every executor does its own handshakes ([`conn`]); new connections
//! take whatever configuration is current, existing ones keep the one they started with.

pub mod accept;
pub mod certs;
pub mod conn;
mod error;
pub mod ktls;
mod validity;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use ktls::{KernelSupport, KtlsMode};

pub use crate::config::{Ciphers, MinVersion, TlsSettings, VerifyMode};
pub use error::{CertTime, DateError, LoadError};

/// Sessions kept in the TLS 1.2 session-ID cache (`ssl_session_cache`).
const SESSION_CACHE_ENTRIES: usize = 64 * 1024;

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

fn read_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let bytes = read_file(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|error| LoadError::CertPem {
            path: path.to_path_buf(),
            error,
        })?;
    if certs.is_empty() {
        return Err(LoadError::NoCert {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Whether the first certificate of a chain is valid now (notBefore <= now <= notAfter).
fn leaf_in_date(path: &Path, chain: &[CertificateDer<'static>]) -> Result<(), LoadError> {
    let path = || path.to_path_buf();
    let leaf = chain
        .first()
        .ok_or_else(|| LoadError::NoCert { path: path() })?;
    let v = validity::validity(leaf.as_ref()).map_err(|error| LoadError::CertDates {
        path: path(),
        error,
    })?;
    let now = crate::store::clock::unix_now();
    if now > v.not_after.unix() {
        return Err(LoadError::Expired {
            path: path(),
            not_after: v.not_after,
        });
    }
    if now < v.not_before.unix() {
        return Err(LoadError::NotYetValid {
            path: path(),
            not_before: v.not_before,
        });
    }
    Ok(())
}

fn read_key(path: &Path, der: bool) -> Result<PrivateKeyDer<'static>, LoadError> {
    let bytes = read_file(path)?;
    if der {
        PrivateKeyDer::try_from(bytes).map_err(|error| LoadError::KeyDer {
            path: path.to_path_buf(),
            error,
        })
    } else {
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| LoadError::KeyPem {
            path: path.to_path_buf(),
            error,
        })
    }
}

impl TlsContext {
    /// Loads certificates and builds the configurations; a [`LoadError`] names the file at
    /// fault.
    pub fn new(settings: TlsSettings) -> Result<Arc<TlsContext>, LoadError> {
        let ticketer = rustls::crypto::ring::Ticketer::new().map_err(LoadError::TicketKey)?;
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
            return Err(LoadError::KtlsUnavailable {
                release: kernel.release.clone(),
                why: why.clone(),
            });
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
    pub fn reload(&self) -> Result<(), LoadError> {
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
) -> Result<(Configs, Option<LoadError>), LoadError> {
    let certs = read_certs(&s.chain_cert)?;
    let out_of_date = leaf_in_date(&s.chain_cert, &certs).err();
    let key = read_key(&s.key, s.key_der)?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(c) = &s.ciphers {
        provider.cipher_suites = c.suites.clone();
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
            return Err(LoadError::KtlsNoCipher {
                kernel: kernel.describe(),
            });
        }
    }
    let provider = Arc::new(provider);
    let roots = match &s.ca_cert {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(path)? {
                roots.add(c).map_err(|error| LoadError::CaCert {
                    path: path.clone(),
                    error,
                })?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let build = |require: Option<bool>| -> Result<Arc<ServerConfig>, LoadError> {
        let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(LoadError::Versions)?;
        let builder = match (require, &roots) {
            (None, _) | (_, None) => builder.with_no_client_auth(),
            (Some(required), Some(roots)) => {
                let mut vb =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                if !required {
                    vb = vb.allow_unauthenticated();
                }
                let verifier = vb.build().map_err(|error| LoadError::ClientVerifier {
                    path: s.ca_cert.clone().unwrap_or_else(|| "?".into()),
                    error,
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|error| LoadError::KeyPair {
                cert: s.chain_cert.clone(),
                key: s.key.clone(),
                error,
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
