//! What a validated [`Config`] yields at startup: its listeners resolved to socket
//! addresses, and its TLS options checked into [`TlsSettings`] (the one place they are
//! read). Above the table and the typed values it reads (`listen`, `tls`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, TlsError};
use super::listen::{Host, ListenMode};
use super::table::Config;
use super::tls::{Ciphers, KtlsMode, MinVersion, TlsSettings, VerifyMode, select_suites};

impl Config {
    /// The socket addresses to listen on, resolved from `listen` and `port`.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        Ok(self.listeners()?.into_iter().map(|(_, a)| a).collect())
    }

    /// The listeners: each address with the mode its memcached prefix gave it.
    ///
    /// An entry without a port uses `port`; a host name is resolved (and may yield several
    /// addresses). `mtls:` and `permissive:` need `-Z`; prefixes that contradict each other
    /// are an error.
    pub fn listeners(&self) -> Result<Vec<(ListenMode, SocketAddr)>, ConfigError> {
        let mut out = Vec::new();
        for l in &self.listen {
            let mode = l.mode(self.tls_enabled)?;
            let port = l.port.unwrap_or(self.port);
            match &l.host {
                Host::Ip(ip) => out.push((mode, SocketAddr::new(*ip, port))),
                Host::Name(name) => {
                    let resolved = (name.as_str(), port).to_socket_addrs().map_err(|error| {
                        ConfigError::Resolve {
                            entry: l.text.clone(),
                            error,
                        }
                    })?;
                    let before = out.len();
                    out.extend(resolved.map(|a| (mode, a)));
                    if out.len() == before {
                        return Err(ConfigError::ResolvedToNothing(l.text.clone()));
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Config {
    /// The TLS settings (None when `-Z` is off), checked.
    pub fn tls_settings(&self) -> Result<Option<TlsSettings>, ConfigError> {
        if !self.tls_enabled {
            return Ok(None);
        }
        Ok(Some(self.check_tls()?))
    }

    fn check_tls(&self) -> Result<TlsSettings, TlsError> {
        let chain_cert = self
            .ssl_chain_cert
            .as_ref()
            .ok_or(TlsError::MissingChainCert)?;
        let key = self.ssl_key.as_ref().ok_or(TlsError::MissingKey)?;
        let key_der = match self.ssl_keyformat.as_str() {
            "1" | "pem" | "PEM" => false,
            "2" | "der" | "DER" | "asn1" | "ASN1" => true,
            v => return Err(TlsError::KeyFormat(v.to_string())),
        };
        let verify_mode = match self.ssl_verify_mode.as_str() {
            "0" => VerifyMode::None,
            "1" => VerifyMode::Request,
            "2" => VerifyMode::Require,
            "3" => VerifyMode::Once,
            v => return Err(TlsError::VerifyMode(v.to_string())),
        };
        let ca_cert = self.ssl_ca_cert.as_ref().map(PathBuf::from);
        if verify_mode != VerifyMode::None && ca_cert.is_none() {
            return Err(TlsError::VerifyNeedsCa);
        }
        // memcached 1.6 takes 0-3 (TLS 1.0 .. 1.3) and prints tlsvX.Y; both spellings work.
        let min_version = match self.ssl_min_version.as_str() {
            "tlsv1.2" | "2" => MinVersion::Tls12,
            "tlsv1.3" | "3" => MinVersion::Tls13,
            v @ ("tlsv1" | "tlsv1.0" | "tlsv1.1" | "0" | "1") => {
                return Err(TlsError::MinVersionTooLow(v.to_string()));
            }
            v => return Err(TlsError::MinVersion(v.to_string())),
        };
        let ciphers = match &self.ssl_ciphers {
            Some(list) => Some(Ciphers {
                list: list.clone(),
                suites: select_suites(list, min_version)?,
            }),
            None => None,
        };
        let wbuf_kb: usize = bounded(&self.ssl_wbuf_size, 1, 1024)
            .ok_or_else(|| TlsError::WbufSize(self.ssl_wbuf_size.clone()))?;
        let handshake_secs = bounded(&self.ssl_handshake_timeout, 1, 3600)
            .ok_or_else(|| TlsError::HandshakeTimeout(self.ssl_handshake_timeout.clone()))?;
        let ktls_record_limit = self
            .ssl_ktls_record_limit
            .parse::<u64>()
            .ok()
            .filter(|&n| n == 0 || n >= 16)
            .ok_or_else(|| TlsError::KtlsRecordLimit(self.ssl_ktls_record_limit.clone()))?;
        Ok(TlsSettings {
            chain_cert: chain_cert.into(),
            key: key.into(),
            key_der,
            ca_cert,
            verify_mode,
            min_version,
            ciphers,
            wbuf_size: wbuf_kb * 1024,
            session_cache: self.ssl_session_cache,
            kernel_tls: KtlsMode::parse(Some(&self.ssl_kernel_tls))?,
            ktls_record_limit,
            handshake_timeout: Duration::from_secs(handshake_secs as u64),
        })
    }
}

/// `v` as a number in `lo..=hi`, if it is one.
fn bounded(v: &str, lo: usize, hi: usize) -> Option<usize> {
    v.parse().ok().filter(|n| (lo..=hi).contains(n))
}

impl TlsSettings {
    /// Settings for a directory `tessera certs` wrote: its server certificate and key, its
    /// CA for client certificates (asked for, not required: `ssl_verify_mode=1`), kernel
    /// TLS off, and the defaults for the rest. For TLS run in memory (tests, fuzzing),
    /// where no socket can move to kTLS.
    pub fn for_dev_certs(dir: &Path) -> Result<TlsSettings, ConfigError> {
        let file = |name: &str| Some(dir.join(name).display().to_string());
        let config = Config {
            tls_enabled: true,
            ssl_chain_cert: file("server.pem"),
            ssl_key: file("server.key"),
            ssl_ca_cert: file("ca.pem"),
            ssl_verify_mode: "1".into(),
            ssl_kernel_tls: "off".into(),
            ..Config::default()
        };
        Ok(config.check_tls()?)
    }
}
