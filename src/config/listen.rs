//! `-l` entries: parsed once, into [`Listener`]s, when the command line or the file is read.
//!
//! What needs the rest of the configuration or the network — the mode a prefix gives
//! (which depends on `-Z`), the port when the entry has none, resolving a host name — is
//! done by [`Config::listeners`] at startup, as memcached does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::{ConfigError, ListenError};

/// How a listener treats its connections (memcached's `-l` prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenMode {
    /// No prefix: TLS when `-Z` is on, else plaintext.
    Default,
    /// `notls:`: plaintext even with `-Z`.
    NoTls,
    /// `mtls:`: TLS, and a client certificate is required.
    Mtls,
    /// `permissive:`: TLS or plaintext, told apart by the first byte (migrations).
    Permissive,
}

/// The listener prefixes memcached takes in front of an address.
const PREFIXES: [&str; 3] = ["notls:", "mtls:", "permissive:"];

/// Where a listener's address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (IPv6 written without brackets here).
    Ip(IpAddr),
    /// A host name, resolved at startup.
    Name(String),
}

/// One `-l` entry: prefixes, host and optional port, and the text it was written as (which
/// `stats settings` shows and messages quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub(super) text: String,
    /// Which of `notls:`, `mtls:`, `permissive:` were given (any number, any order).
    prefixes: [bool; 3],
    /// The host.
    pub host: Host,
    /// The port, when the entry has one (else `-p`'s).
    pub port: Option<u16>,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Listener {
    /// Parses an entry the way memcached reads `-l`: `[v6]` or `[v6]:port`, `host:port`
    /// with a single colon, a bare IPv6 address (several colons, no port), or a bare IPv4
    /// address / host name, each optionally behind listener prefixes.
    pub(super) fn parse(name: &str, entry: &str) -> Result<Listener, ConfigError> {
        let mut prefixes = [false; 3];
        let mut rest = entry;
        while let Some(i) = PREFIXES.iter().position(|p| rest.starts_with(p)) {
            prefixes[i] = true;
            rest = &rest[PREFIXES[i].len()..];
        }
        if rest.is_empty() {
            return Err(ConfigError::EmptyListenAddress {
                name: name.to_string(),
                text: entry.to_string(),
            });
        }
        let bad = |why: ListenError| ConfigError::BadListen {
            name: name.to_string(),
            entry: entry.to_string(),
            why,
        };
        let (host, port) = split(rest).map_err(bad)?;
        Ok(Listener {
            text: entry.to_string(),
            prefixes,
            host,
            port,
        })
    }

    /// Parses a comma-separated list (one `-l`, or one string in the file).
    pub(super) fn parse_list(name: &str, list: &str) -> Result<Vec<Listener>, ConfigError> {
        list.split(',')
            .map(|entry| {
                if entry.is_empty() {
                    return Err(ConfigError::EmptyListenAddress {
                        name: name.to_string(),
                        text: list.to_string(),
                    });
                }
                Listener::parse(name, entry)
            })
            .collect()
    }

    /// The listener for an IP literal, without prefixes (the default `-l`).
    pub(super) fn ip(ip: IpAddr) -> Listener {
        Listener {
            text: ip.to_string(),
            prefixes: [false; 3],
            host: Host::Ip(ip),
            port: None,
        }
    }

    /// The mode its prefixes give it, given whether TLS is on.
    pub fn mode(&self, tls_enabled: bool) -> Result<ListenMode, ConfigError> {
        let mode = match self.prefixes {
            [false, false, false] => ListenMode::Default,
            [true, false, false] => ListenMode::NoTls,
            [false, true, false] => ListenMode::Mtls,
            [false, false, true] => ListenMode::Permissive,
            _ => return Err(ConfigError::ContradictingPrefixes(self.text.clone())),
        };
        if matches!(mode, ListenMode::Mtls | ListenMode::Permissive) && !tls_enabled {
            return Err(ConfigError::TlsListenerWithoutTls(self.text.clone()));
        }
        Ok(mode)
    }
}

/// Splits what follows the prefixes into host and port.
fn split(rest: &str) -> Result<(Host, Option<u16>), ListenError> {
    let port = |p: &str| -> Result<u16, ListenError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ListenError::NotAPort(p.to_string()));
        }
        p.parse::<u16>()
            .map_err(|_| ListenError::PortOutOfRange(p.to_string()))
    };
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(ListenError::MissingBracket);
        };
        let ip = addr
            .parse::<Ipv6Addr>()
            .map_err(|_| ListenError::NotIpv6InBrackets(addr.to_string()))?;
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(port(p)?),
                None => return Err(ListenError::ExpectedPortAfterBracket),
            },
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }
    match rest.split_once(':') {
        None => Ok((host(rest)?, None)),
        Some((h, p)) if !p.contains(':') => Ok((host(h)?, Some(port(p)?))),
        Some(_) => {
            let ip = rest.parse::<Ipv6Addr>().map_err(|_| ListenError::NotIpv6)?;
            Ok((Host::Ip(IpAddr::V6(ip)), None))
        }
    }
}

/// An IPv4 literal or a syntactically valid host name.
fn host(host: &str) -> Result<Host, ListenError> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let looks_numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if host.is_empty() {
        Err(ListenError::EmptyHost)
    } else if looks_numeric || host.len() > 253 || !host.split('.').all(label_ok) {
        Err(ListenError::NotAHost(host.to_string()))
    } else {
        Ok(Host::Name(host.to_string()))
    }
}
