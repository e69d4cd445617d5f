//! What can be wrong with a configuration: one variant per kind of mistake, each printed
//! as the one line `tessera: ...` puts on stderr.
//!
//! `name` fields say where the value came from, the way the operator wrote it: `-p`,
//! `-o shard_queue`, `tessera.toml: max_item_size`.

use std::fmt;
use std::path::PathBuf;

use super::units::{READ_BUF_SLACK, fmt_size};

/// A configuration error: one line for stderr.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// `-x`, `--bogus`: no such option.
    UnknownOption(String),
    /// `--mem`: a prefix of several long options.
    Ambiguous {
        /// The prefix as given.
        prefix: String,
        /// The long names it could be, in option-table order.
        candidates: Vec<&'static str>,
    },
    /// `--daemon=yes`: a switch given a value.
    TakesNoValue(&'static str),
    /// `-p` at the end of the line.
    MissingValue {
        /// The short form, if the option has one.
        short: Option<char>,
        /// The long form, if the option has one.
        long: Option<&'static str>,
    },
    /// A word that is not an option (tessera takes only options).
    Unexpected(String),
    /// `--config` twice.
    ConfigTwice,
    /// `-o key` without the `=value` it needs.
    MissingExtValue {
        /// `-o key`.
        name: String,
        /// The key.
        key: String,
    },
    /// `-o bogus`.
    UnknownExtended(String),
    /// Not a decimal number.
    NotANumber {
        /// Where it came from.
        name: String,
        /// As given.
        value: String,
    },
    /// A number outside its range.
    OutOfRange {
        /// Where it came from.
        name: String,
        /// As given (or as the file had it).
        value: String,
        /// The range it must be in.
        range: Range,
    },
    /// Not a byte size (`1m`, `512k`, `4096`).
    NotASize {
        /// Where it came from.
        name: String,
        /// As given.
        value: String,
    },
    /// Not an octal mask.
    NotOctal {
        /// Where it came from.
        name: String,
        /// As given.
        value: String,
    },
    /// An empty path.
    EmptyPath(String),
    /// `-D` given other than one character.
    NotAChar {
        /// Where it came from.
        name: String,
        /// As given.
        value: String,
    },
    /// A switch value that is not a boolean word.
    NotOnOff {
        /// Where it came from.
        name: String,
        /// As given.
        value: String,
    },
    /// The admin listener is not `PORT`, `IP:PORT` or `[IPv6]:PORT`.
    BadAdminListen {
        /// Where it came from.
        name: String,
        /// As given.
        value: String,
    },
    /// A config-file value of the wrong TOML type; `expected` says what fits.
    WrongType {
        /// Where it came from.
        name: String,
        /// What the key takes (`expected a string or an integer`).
        expected: &'static str,
    },
    /// A memcached feature tessera does not have (`-S`, `-o ext_*`).
    Unsupported {
        /// The option.
        name: String,
        /// What is not supported.
        what: &'static str,
    },
    /// `-B binary`.
    BinaryProtocol,
    /// `-B` with something else than ascii or auto.
    UnknownProtocol {
        /// The option.
        name: String,
        /// As given.
        value: String,
    },
    /// The config file cannot be read.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The config file is not valid TOML, or a key or type is wrong.
    Toml {
        /// The file, as named on the command line.
        origin: String,
        /// The line the problem is on, when known.
        line: Option<usize>,
        /// The parser's message, on one line.
        message: String,
    },
    /// A `[cluster]` node that does not parse.
    ClusterNode {
        /// Where it came from.
        name: String,
        /// Why.
        error: crate::cluster::NodeError,
    },
    /// `[cluster] nodes = []`.
    EmptyNodes(String),
    /// `[cluster] version` without `nodes`.
    VersionWithoutNodes(String),
    /// A listen entry with nothing in it.
    EmptyListenAddress {
        /// Where it came from.
        name: String,
        /// The entry, or the list it is in.
        text: String,
    },
    /// A listen entry that does not parse.
    BadListen {
        /// Where it came from.
        name: String,
        /// The entry.
        entry: String,
        /// What is wrong with it.
        why: ListenError,
    },
    /// Listener prefixes that contradict each other (`notls:mtls:`).
    ContradictingPrefixes(String),
    /// An `mtls:` or `permissive:` listener without `-Z`.
    TlsListenerWithoutTls(String),
    /// A host name that does not resolve.
    Resolve {
        /// The entry.
        entry: String,
        /// The resolver's error.
        error: std::io::Error,
    },
    /// A host name that resolves to no addresses.
    ResolvedToNothing(String),
    /// Neither `-l` nor `-s`.
    NothingToListen,
    /// `-I` above half of `-m`.
    ItemTooLarge {
        /// `-I` in bytes.
        item: u64,
        /// `-m` in megabytes.
        memory_mb: u64,
    },
    /// `-o read_buf_max` set below `-I` plus room for the command line.
    ReadBufTooSmall {
        /// `-o read_buf_max` in bytes.
        read_buf: u64,
        /// `-I` in bytes.
        item: u64,
    },
    /// The unix socket path cannot be listened on.
    UnixSocket {
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// An `mtls:` listener without a CA to verify client certificates with.
    MtlsNeedsCa,
    /// A TLS (`-Z`, `-o ssl_*`) setting that is wrong.
    Tls(TlsError),
    /// A settings-table row whose kind does not produce its field's type: a mistake in
    /// `src/config/table.rs` (the `every_row_takes_its_kind` test finds it first).
    TableMismatch(&'static str),
}

/// The range a number must be in, as the message shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Range {
    /// `(lo to hi)` in decimal.
    Num(u64, u64),
    /// `(1k to 1g)`: byte sizes.
    Size(u64, u64),
    /// `(0 to 777, octal)`.
    Octal,
    /// A config-file mask written in decimal by mistake.
    OctalInFile,
}

/// What is wrong with a listen entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenError {
    /// `[::1` without `]`.
    MissingBracket,
    /// `[x]` where x is not an IPv6 address.
    NotIpv6InBrackets(String),
    /// Something other than `:PORT` after `]`.
    ExpectedPortAfterBracket,
    /// A port that is not digits.
    NotAPort(String),
    /// A port above 65535.
    PortOutOfRange(String),
    /// Several colons, not an IPv6 address.
    NotIpv6,
    /// Nothing before the `:PORT`.
    EmptyHost,
    /// Neither an IPv4 address nor a host name.
    NotAHost(String),
}

/// A TLS setting that is wrong (checked at startup, and only with `-Z`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// `-Z` without `ssl_chain_cert`.
    MissingChainCert,
    /// `-Z` without `ssl_key`.
    MissingKey,
    /// `ssl_keyformat`.
    KeyFormat(String),
    /// `ssl_verify_mode`.
    VerifyMode(String),
    /// `ssl_verify_mode` 1-3 without `ssl_ca_cert`.
    VerifyNeedsCa,
    /// `ssl_min_version` below TLS 1.2.
    MinVersionTooLow(String),
    /// `ssl_min_version` not a version.
    MinVersion(String),
    /// `ssl_ciphers` names a cipher rustls does not have.
    UnknownCipher(String),
    /// `ssl_ciphers` leaves nothing usable at `ssl_min_version`.
    NoUsableCipher(String),
    /// `ssl_wbuf_size`.
    WbufSize(String),
    /// `ssl_handshake_timeout`.
    HandshakeTimeout(String),
    /// `ssl_ktls_record_limit`.
    KtlsRecordLimit(String),
    /// `ssl_kernel_tls`.
    KernelTls(String),
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Range::Num(lo, hi) => write!(f, "({lo} to {hi})"),
            Range::Size(lo, hi) => write!(f, "({} to {})", fmt_size(lo), fmt_size(hi)),
            Range::Octal => f.write_str("(0 to 777, octal)"),
            Range::OctalInFile => f.write_str("(0 to 0o777); write it in octal: 0o700 or \"700\""),
        }
    }
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::MissingBracket => f.write_str("missing ']'"),
            ListenError::NotIpv6InBrackets(a) => write!(f, "'{a}' is not an IPv6 address"),
            ListenError::ExpectedPortAfterBracket => f.write_str("expected ':PORT' after ']'"),
            ListenError::NotAPort(p) => write!(f, "'{p}' is not a port number"),
            ListenError::PortOutOfRange(p) => write!(f, "port {p} is out of range (0 to 65535)"),
            ListenError::NotIpv6 => {
                f.write_str("not an IPv6 address (write [IPv6]:PORT to give a port)")
            }
            ListenError::EmptyHost => f.write_str("empty host"),
            ListenError::NotAHost(h) => write!(f, "'{h}' is not an IP address or host name"),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::MissingChainCert => {
                f.write_str("-Z needs -o ssl_chain_cert=FILE (the server certificate chain)")
            }
            TlsError::MissingKey => {
                f.write_str("-Z needs -o ssl_key=FILE (the server's private key)")
            }
            TlsError::KeyFormat(v) => write!(f, "ssl_keyformat: '{v}' is not 1 (PEM) or 2 (DER)"),
            TlsError::VerifyMode(v) => write!(f, "ssl_verify_mode: '{v}' is not 0, 1, 2 or 3"),
            TlsError::VerifyNeedsCa => {
                f.write_str("ssl_verify_mode 1-3 needs -o ssl_ca_cert=FILE to verify clients")
            }
            TlsError::MinVersionTooLow(v) => write!(
                f,
                "ssl_min_version: {v} is not supported (TLS 1.2 and 1.3 only); use tlsv1.2"
            ),
            TlsError::MinVersion(v) => {
                write!(
                    f,
                    "ssl_min_version: '{v}' is not tlsv1.2 (2) or tlsv1.3 (3)"
                )
            }
            TlsError::UnknownCipher(name) => write!(
                f,
                "ssl_ciphers: unknown or unsupported cipher '{name}' (supported: \
                 TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, \
                 ECDHE-{{ECDSA,RSA}}-{{AES128-GCM-SHA256,AES256-GCM-SHA384,CHACHA20-POLY1305}})"
            ),
            TlsError::NoUsableCipher(list) => write!(
                f,
                "ssl_ciphers: '{list}' has no cipher usable with the minimum TLS version"
            ),
            TlsError::WbufSize(v) => {
                write!(f, "ssl_wbuf_size: '{v}' is not a size in KB from 1 to 1024")
            }
            TlsError::HandshakeTimeout(v) => write!(
                f,
                "ssl_handshake_timeout: '{v}' is not a number of seconds from 1 to 3600"
            ),
            TlsError::KtlsRecordLimit(v) => write!(
                f,
                "ssl_ktls_record_limit: '{v}' is not 0 (the cipher's limit) or a count >= 16"
            ),
            TlsError::KernelTls(v) => write!(f, "ssl_kernel_tls: '{v}' is not auto, on or off"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigError as E;
        match self {
            E::UnknownOption(o) => write!(f, "unknown option '{o}' (see -h)"),
            E::Ambiguous { prefix, candidates } => {
                write!(f, "option '--{prefix}' is ambiguous (could be ")?;
                for (i, c) in candidates.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}--{c}")?;
                }
                f.write_str(")")
            }
            E::TakesNoValue(long) => write!(f, "option --{long} does not take a value"),
            E::MissingValue { short, long } => match (short, long) {
                (Some(c), Some(l)) => write!(f, "option -{c} (--{l}) requires a value"),
                (Some(c), None) => write!(f, "option -{c} requires a value"),
                (None, Some(l)) => write!(f, "option --{l} requires a value"),
                (None, None) => f.write_str("option requires a value"),
            },
            E::Unexpected(arg) => write!(
                f,
                "unexpected argument '{arg}' (tessera takes only options; see -h)"
            ),
            E::ConfigTwice => f.write_str("--config given more than once"),
            E::MissingExtValue { name, key } => write!(f, "{name}: missing value ({key}=...)"),
            E::UnknownExtended(k) => write!(f, "-o: unknown option '{k}' (see -h)"),
            E::NotANumber { name, value } => write!(f, "{name}: '{value}' is not a number"),
            E::OutOfRange { name, value, range } => {
                write!(f, "{name}: {value} is out of range {range}")
            }
            E::NotASize { name, value } => write!(
                f,
                "{name}: '{value}' is not a size (bytes, or a number with a k, m or g suffix)"
            ),
            E::NotOctal { name, value } => write!(f, "{name}: '{value}' is not an octal number"),
            E::EmptyPath(name) => write!(f, "{name}: empty path"),
            E::NotAChar { name, value } => {
                write!(f, "{name}: expected a single character, got '{value}'")
            }
            E::NotOnOff { name, value } => write!(
                f,
                "{name}: '{value}' is not on/off (true/false, yes/no, 1/0)"
            ),
            E::BadAdminListen { name, value } => write!(
                f,
                "{name}: '{value}' is not PORT, IP:PORT or [IPv6]:PORT (the admin listener \
                 binds an address, not a host name; a bare port means 127.0.0.1)"
            ),
            E::WrongType { name, expected } => write!(f, "{name}: {expected}"),
            E::Unsupported { name, what } => write!(f, "{name}: {what}"),
            E::BinaryProtocol => {
                f.write_str("binary protocol is not supported (deprecated in memcached 1.6)")
            }
            E::UnknownProtocol { name, value } => write!(
                f,
                "{name}: unknown protocol '{value}' (expected ascii or auto)"
            ),
            E::ReadFile { path, error } => {
                write!(f, "cannot read config file {}: {error}", path.display())
            }
            E::Toml {
                origin,
                line,
                message,
            } => match line {
                Some(n) => write!(f, "config file {origin}, line {n}: {message}"),
                None => write!(f, "config file {origin}: {message}"),
            },
            E::ClusterNode { name, error } => write!(f, "{name}: {error}"),
            E::EmptyNodes(name) => write!(
                f,
                "{name}: the list is empty (leave it out to have no cluster)"
            ),
            E::VersionWithoutNodes(name) => write!(
                f,
                "{name}: a version without nodes (add nodes = [\"host|ip|port\", ...])"
            ),
            E::EmptyListenAddress { name, text } => {
                write!(f, "{name}: empty address in '{text}'")
            }
            E::BadListen { name, entry, why } => {
                write!(f, "{name}: bad listen address '{entry}': {why}")
            }
            E::ContradictingPrefixes(l) => write!(
                f,
                "listen: '{l}' combines prefixes that contradict each other"
            ),
            E::TlsListenerWithoutTls(l) => write!(
                f,
                "listen: '{l}' is a TLS listener, but TLS is off (add -Z)"
            ),
            E::Resolve { entry, error } => {
                write!(f, "cannot resolve listen address '{entry}': {error}")
            }
            E::ResolvedToNothing(l) => write!(f, "listen address '{l}' resolved to no addresses"),
            E::NothingToListen => f.write_str("nothing to listen on: give -l or -s"),
            E::ItemTooLarge { item, memory_mb } => {
                let half = memory_mb.saturating_mul(1024 * 1024) / 2;
                write!(
                    f,
                    "cannot set item size limit higher than 1/2 of memory max \
                     (-I {} > {} = half of -m {memory_mb})",
                    fmt_size(*item),
                    fmt_size(half)
                )
            }
            E::ReadBufTooSmall { read_buf, item } => write!(
                f,
                "-o read_buf_max={} is too small for -I {}: it must be at least {} \
                 (the item plus 4k for the command line)",
                fmt_size(*read_buf),
                fmt_size(*item),
                fmt_size(item.saturating_add(READ_BUF_SLACK as u64))
            ),
            E::UnixSocket { path, error } => write!(
                f,
                "failed to listen on unix socket {}: {error}",
                path.display()
            ),
            E::MtlsNeedsCa => f.write_str(
                "an mtls: listener needs -o ssl_ca_cert=FILE to verify client certificates",
            ),
            E::Tls(e) => e.fmt(f),
            E::TableMismatch(name) => write!(
                f,
                "settings table: the kind of '{name}' does not fit its field's type"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::ReadFile { error, .. }
            | ConfigError::Resolve { error, .. }
            | ConfigError::UnixSocket { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for ConfigError {
    fn from(e: TlsError) -> Self {
        ConfigError::Tls(e)
    }
}
