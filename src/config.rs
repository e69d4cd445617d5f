//! Configuration: memcached's command-line flags and a TOML file whose keys mirror them,
//! merged into one validated [`Config`].
//!
//! Precedence: built-in defaults < `--config FILE` < command-line flags, wherever
//! `--config` appears on the command line.
//!
//! Flags are parsed the way memcached's `getopt_long` does: short flags take their value
//! attached (`-p11211`) or as the next argument (`-p 11211`), flags without a value can be
//! grouped (`-vv`, `-Mv`, `-Mp11211`), long flags take `--port=11211` or `--port 11211`,
//! and a long flag may be abbreviated to any unambiguous prefix (`--mem=64`).
//! Unlike memcached, numbers are checked strictly: `-p abc` is an error, not port 0.

use crate::cluster::{ClusterConfig, Node};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// tessera's version, as `-V` prints it.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The memcached release whose flags and protocol tessera follows.
const MEMCACHED_COMPAT: &str = "1.6.18";

const MAX_THREADS: u64 = 1024;
/// 16 TiB in megabytes: far beyond any machine, small enough that bytes fit a u64.
const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;
const ITEM_SIZE_MIN: u64 = KIB;
const ITEM_SIZE_MAX: u64 = GIB;
const READ_BUF_MIN: u64 = 4 * KIB;
const READ_BUF_MAX: u64 = 4 * GIB;
/// Room for a storage command line in front of a maximum-size value.
const READ_BUF_SLACK: usize = 4 * 1024;
const DEFAULT_READ_BUF_MAX: usize = 16 * 1024 * 1024;
const MAX_SHARD_QUEUE: u64 = 1 << 20;
const DEFAULT_SHUTDOWN_TIMEOUT: u32 = 10;
/// A day: past that an operator wants SIGKILL, not a timeout.
const MAX_SHUTDOWN_TIMEOUT: u32 = 86_400;
/// `-o` keys that become [`Config::tls_opts`] and need a value.
const SSL_VALUE_KEYS: &[&str] = &[
    "ssl_chain_cert",
    "ssl_key",
    "ssl_ca_cert",
    "ssl_verify_mode",
    "ssl_keyformat",
    "ssl_ciphers",
    "ssl_wbuf_size",
    "ssl_min_version",
    "ssl_handshake_timeout",
    "ssl_ktls_record_limit",
];
/// `-o` keys that become [`Config::tls_opts`] and are switches (stored as `"true"`).
/// `ssl_kernel_tls` is a switch in memcached (bare: "true", which means auto here) and
/// takes auto / on / off in tessera.
const SSL_SWITCH_KEYS: &[&str] = &["ssl_session_cache", "ssl_kernel_tls"];
/// Listener prefixes kept verbatim in `listen` entries for the TLS work.
const LISTEN_PREFIXES: &[&str] = &["notls:", "mtls:", "permissive:"];

/// One fully validated server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `-p`, `--port`: TCP port (memcached default 11211). 0 picks a free port (tests).
    pub port: u16,
    /// `-l`, `--listen`: interfaces to bind (memcached default: all; tessera default 127.0.0.1).
    /// Each entry is an IP or host name (with `port`), `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`,
    /// optionally behind a TLS listener prefix (`notls:`, `mtls:`, `permissive:`) which is
    /// kept verbatim here; [`Config::listen_addrs`] strips it.
    pub listen: Vec<String>,
    /// `-U`, `--udp-port`: accepted; UDP is off (0), as in modern memcached. A non-zero value
    /// is not stored (tessera has no UDP) and produces a warning.
    pub udp_port: u16,
    /// `-s`, `--unix-socket`: UNIX socket path to listen on. As in memcached, the runtime
    /// should then not listen on TCP.
    pub unix_socket: Option<PathBuf>,
    /// `-a`, `--unix-mask`: permission mask for the UNIX socket (given in octal; default 0o700).
    pub unix_mask: u32,
    /// `-A`, `--enable-shutdown`: allow the ASCII `shutdown` command.
    pub enable_shutdown: bool,
    /// `-m`, `--memory-limit`: item memory in megabytes, across all shards.
    pub memory_limit_mb: u64,
    /// `-M`, `--disable-evictions`: return an error instead of evicting.
    pub disable_evictions: bool,
    /// `-c`, `--conn-limit`: max simultaneous connections (default 1024).
    pub max_connections: usize,
    /// `-t`, `--threads`: executors, one pinned per core (default: available CPUs, at most 1024).
    pub threads: usize,
    /// `-b`, `--listen-backlog`: listen(2) backlog (default 1024).
    pub backlog: i32,
    /// `-I`, `--max-item-size`: largest item in bytes (default 1 MiB; 1 KiB .. 1 GiB, and at
    /// most half of the memory limit).
    pub item_size_max: usize,
    /// `-v` count: 0 quiet, 1 errors/warnings, 2 also client commands.
    pub verbose: u8,
    /// `-C`, `--disable-cas`: accepted; CAS stays on (costs nothing here).
    pub use_cas: bool,
    /// `-D`: stats prefix delimiter (accepted, reported in `stats settings`).
    pub prefix_delimiter: char,
    /// `-R`, `--max-reqs-per-event`: requests served per connection before yielding (default 20).
    pub reqs_per_event: u32,
    /// `-o idle_timeout=N`: close connections idle for N seconds (0 = never).
    pub idle_timeout_secs: u32,
    /// `-o read_buf_max=N` (tessera): cap in bytes on one connection's unparsed input.
    /// Must leave room for a maximum-size item: when not set explicitly it is raised to
    /// `item_size_max + 4 KiB` if the default (16 MiB) is smaller.
    pub read_buf_max: usize,
    /// `-o shard_queue=N` (tessera): depth of each cross-shard channel.
    pub shard_queue: usize,
    /// `-o shutdown_timeout=N` (tessera): on SIGTERM/SIGINT, how long open connections may
    /// take to finish their requests before the process exits anyway (seconds).
    pub shutdown_timeout_secs: u32,
    /// `-P`, `--pidfile`: file to write the server's PID into (the runtime writes it).
    pub pidfile: Option<PathBuf>,
    /// `-F`, `--disable-flush-all`: refuse the `flush_all` command.
    pub disable_flush_all: bool,
    /// `-Z`, `--enable-ssl` (or `[tls] enabled = true`): serve TLS. Stored only, for now.
    pub tls_enabled: bool,
    /// memcached's `-o ssl_*` options, raw and unvalidated, keyed by the memcached name
    /// (`ssl_chain_cert`, `ssl_key`, ...). The TOML `[tls]` table maps onto the same names
    /// (`chain_cert` -> `ssl_chain_cert`, `kernel` -> `ssl_kernel_tls`). Switches
    /// (`ssl_session_cache`, `ssl_kernel_tls`) have the value `"true"`. Each key appears at
    /// most once (a later setting replaces an earlier one in place).
    pub tls_opts: Vec<(String, String)>,
    /// The config file's `[cluster]` table: the node list `config get cluster` answers
    /// (ElastiCache auto discovery). `None`: no list (the `config` command is unknown,
    /// as in memcached, unless `cluster_config_set` allows setting one).
    pub cluster: Option<ClusterConfig>,
    /// `-o cluster_config_set` / `[cluster] allow_set`: accept `config set cluster`.
    pub cluster_config_set: bool,
    /// `--config`: the file the settings were read from (SIGHUP re-reads its `[cluster]`).
    pub config_file: Option<PathBuf>,
    /// `-o admin_listen=[IP:]PORT` / `[admin] listen`: the HTTP admin listener (Prometheus
    /// metrics at `/metrics`, `/health`); a bare port binds 127.0.0.1. Off when `None`.
    pub admin_listen: Option<SocketAddr>,
    /// Warnings produced while parsing (ignored flags, …), printed at startup.
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 11211,
            listen: vec!["127.0.0.1".to_string()],
            udp_port: 0,
            unix_socket: None,
            unix_mask: 0o700,
            enable_shutdown: false,
            memory_limit_mb: 64,
            disable_evictions: false,
            max_connections: 1024,
            threads: default_threads(),
            backlog: 1024,
            item_size_max: 1024 * 1024,
            verbose: 0,
            use_cas: true,
            prefix_delimiter: ':',
            reqs_per_event: 20,
            idle_timeout_secs: 0,
            read_buf_max: DEFAULT_READ_BUF_MAX,
            shard_queue: 256,
            shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT,
            pidfile: None,
            disable_flush_all: false,
            tls_enabled: false,
            tls_opts: Vec::new(),
            cluster: None,
            cluster_config_set: false,
            config_file: None,
            admin_listen: None,
            warnings: Vec::new(),
        }
    }
}

/// All available CPUs, capped at the `-t` maximum.
fn default_threads() -> usize {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    n.min(MAX_THREADS as usize)
}

impl Config {
    /// Memory limit in bytes.
    pub fn memory_limit_bytes(&self) -> u64 {
        self.memory_limit_mb.saturating_mul(MIB)
    }

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
            let spec = ListenSpec::parse(l).map_err(|e| ConfigError(format!("listen: {e}")))?;
            let has = |p: &str| spec.prefix.contains(p);
            let mode = match (has("notls:"), has("mtls:"), has("permissive:")) {
                (false, false, false) => ListenMode::Default,
                (true, false, false) => ListenMode::NoTls,
                (false, true, false) => ListenMode::Mtls,
                (false, false, true) => ListenMode::Permissive,
                _ => {
                    return Err(ConfigError(format!(
                        "listen: '{l}' combines prefixes that contradict each other"
                    )));
                }
            };
            if matches!(mode, ListenMode::Mtls | ListenMode::Permissive) && !self.tls_enabled {
                return Err(ConfigError(format!(
                    "listen: '{l}' is a TLS listener, but TLS is off (add -Z)"
                )));
            }
            let port = spec.port.unwrap_or(self.port);
            match spec.host.parse::<IpAddr>() {
                Ok(ip) => out.push((mode, SocketAddr::new(ip, port))),
                Err(_) => {
                    let resolved = (spec.host, port).to_socket_addrs().map_err(|e| {
                        ConfigError(format!("cannot resolve listen address '{l}': {e}"))
                    })?;
                    let before = out.len();
                    out.extend(resolved.map(|a| (mode, a)));
                    if out.len() == before {
                        return Err(ConfigError(format!(
                            "listen address '{l}' resolved to no addresses"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Checks every rule a configuration must satisfy (ranges and cross-field rules such
    /// as "item size at most half the memory limit"). [`parse_args`] only returns
    /// configurations that pass; this is for code that builds a `Config` by hand.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let in_range = |name: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(out_of_range(name, &v.to_string(), lo, hi))
            }
        };
        in_range("-t", self.threads as u64, 1, MAX_THREADS)?;
        in_range("-m", self.memory_limit_mb, 1, MAX_MEMORY_MB)?;
        in_range("-c", self.max_connections as u64, 1, u32::MAX as u64)?;
        in_range(
            "-b",
            u64::try_from(self.backlog).unwrap_or(0),
            1,
            i32::MAX as u64,
        )?;
        in_range("-R", u64::from(self.reqs_per_event), 1, u32::MAX as u64)?;
        in_range("-a", u64::from(self.unix_mask), 0, 0o777)?;
        in_range(
            "-o shard_queue",
            self.shard_queue as u64,
            1,
            MAX_SHARD_QUEUE,
        )?;
        in_range(
            "-o shutdown_timeout",
            u64::from(self.shutdown_timeout_secs),
            0,
            u64::from(MAX_SHUTDOWN_TIMEOUT),
        )?;
        check_size_range(
            "-I",
            self.item_size_max as u64,
            ITEM_SIZE_MIN,
            ITEM_SIZE_MAX,
        )?;
        check_size_range(
            "-o read_buf_max",
            self.read_buf_max as u64,
            READ_BUF_MIN,
            READ_BUF_MAX,
        )?;
        if self.listen.is_empty() && self.unix_socket.is_none() {
            return Err(ConfigError(
                "nothing to listen on: give -l or -s".to_string(),
            ));
        }
        for l in &self.listen {
            ListenSpec::parse(l).map_err(|e| ConfigError(format!("-l: {e}")))?;
        }
        let item = self.item_size_max as u64;
        let half = self.memory_limit_bytes() / 2;
        if item > half {
            return Err(ConfigError(format!(
                "cannot set item size limit higher than 1/2 of memory max \
                 (-I {} > {} = half of -m {})",
                fmt_size(item),
                fmt_size(half),
                self.memory_limit_mb
            )));
        }
        if self.read_buf_max < self.item_size_max.saturating_add(READ_BUF_SLACK) {
            return Err(ConfigError(format!(
                "-o read_buf_max={} is too small for -I {}: it must be at least {} \
                 (the item plus 4k for the command line)",
                fmt_size(self.read_buf_max as u64),
                fmt_size(item),
                fmt_size(item.saturating_add(READ_BUF_SLACK as u64))
            )));
        }
        Ok(())
    }
}

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

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print this text (help, version, license) to stdout as is — it ends with a
    /// newline — and exit 0.
    Print(String),
}

/// A configuration error: one line for stderr.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

// ---------------------------------------------------------------------------------------
// Value parsing
// ---------------------------------------------------------------------------------------

fn out_of_range(name: &str, shown: &str, lo: u64, hi: u64) -> ConfigError {
    err(format!("{name}: {shown} is out of range ({lo} to {hi})"))
}

/// Parses a decimal integer strictly and checks `lo..=hi`.
fn parse_num<T: TryFrom<u64>>(name: &str, s: &str, lo: u64, hi: u64) -> Result<T, ConfigError> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!("{name}: '{s}' is not a number")));
    }
    if s.starts_with('-') {
        return Err(out_of_range(name, s, lo, hi));
    }
    let n: u64 = digits.parse().map_err(|_| out_of_range(name, s, lo, hi))?;
    num_in_range(name, n, s, lo, hi)
}

fn num_in_range<T: TryFrom<u64>>(
    name: &str,
    n: u64,
    shown: &str,
    lo: u64,
    hi: u64,
) -> Result<T, ConfigError> {
    if !(lo..=hi).contains(&n) {
        return Err(out_of_range(name, shown, lo, hi));
    }
    T::try_from(n).map_err(|_| out_of_range(name, shown, lo, hi))
}

/// A TOML integer checked against `lo..=hi`.
fn int_in_range<T: TryFrom<u64>>(name: &str, v: i64, lo: u64, hi: u64) -> Result<T, ConfigError> {
    let n = u64::try_from(v).map_err(|_| out_of_range(name, &v.to_string(), lo, hi))?;
    num_in_range(name, n, &v.to_string(), lo, hi)
}

/// Formats a byte count the way `-I` takes it: `1m`, `512k`, `1g` or plain bytes.
fn fmt_size(n: u64) -> String {
    if n != 0 && n.is_multiple_of(GIB) {
        format!("{}g", n / GIB)
    } else if n != 0 && n.is_multiple_of(MIB) {
        format!("{}m", n / MIB)
    } else if n != 0 && n.is_multiple_of(KIB) {
        format!("{}k", n / KIB)
    } else {
        n.to_string()
    }
}

fn check_size_range(name: &str, n: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&n) {
        Ok(())
    } else {
        Err(err(format!(
            "{name}: {} is out of range ({} to {})",
            fmt_size(n),
            fmt_size(lo),
            fmt_size(hi)
        )))
    }
}

/// Parses a byte size: decimal digits with an optional `k`, `m` or `g` suffix (any case,
/// powers of 1024), as memcached's `-I` does, and checks `lo..=hi`.
fn parse_size(name: &str, s: &str, lo: u64, hi: u64) -> Result<usize, ConfigError> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], KIB),
        Some(b'm' | b'M') => (&s[..s.len() - 1], MIB),
        Some(b'g' | b'G') => (&s[..s.len() - 1], GIB),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!(
            "{name}: '{s}' is not a size (bytes, or a number with a k, m or g suffix)"
        )));
    }
    let range_err = || {
        err(format!(
            "{name}: {s} is out of range ({} to {})",
            fmt_size(lo),
            fmt_size(hi)
        ))
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|d| d.checked_mul(mult))
        .ok_or_else(range_err)?;
    if !(lo..=hi).contains(&n) {
        return Err(range_err());
    }
    usize::try_from(n).map_err(|_| range_err())
}

/// Parses an octal permission mask (`700`, `0700`).
fn parse_octal_mask(name: &str, s: &str) -> Result<u32, ConfigError> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(err(format!("{name}: '{s}' is not an octal number")));
    }
    let n = u32::from_str_radix(s, 8).map_err(|_| out_of_range(name, s, 0, 0o777))?;
    if n > 0o777 {
        return Err(err(format!(
            "{name}: {s} is out of range (0 to 777, octal)"
        )));
    }
    Ok(n)
}

fn parse_path(name: &str, s: &str) -> Result<PathBuf, ConfigError> {
    if s.is_empty() {
        return Err(err(format!("{name}: empty path")));
    }
    Ok(PathBuf::from(s))
}

// ---------------------------------------------------------------------------------------
// Listen entries
// ---------------------------------------------------------------------------------------

/// One `-l` entry split into its parts.
#[derive(Debug, PartialEq)]
struct ListenSpec<'a> {
    /// The TLS listener prefixes, verbatim (`"notls:"`, `""`).
    prefix: &'a str,
    /// IP literal (IPv6 without brackets) or host name.
    host: &'a str,
    port: Option<u16>,
}

impl<'a> ListenSpec<'a> {
    /// Splits and checks an entry the way memcached reads `-l`: `[v6]` or `[v6]:port`,
    /// `host:port` with a single colon, a bare IPv6 address (several colons, no port),
    /// or a bare IPv4 address / host name.
    fn parse(entry: &'a str) -> Result<Self, String> {
        let mut rest = entry;
        while let Some(p) = LISTEN_PREFIXES.iter().find(|p| rest.starts_with(**p)) {
            rest = &rest[p.len()..];
        }
        let prefix = &entry[..entry.len() - rest.len()];
        if rest.is_empty() {
            return Err(format!("empty address in '{entry}'"));
        }
        let bad = |why: &str| format!("bad listen address '{entry}': {why}");
        let parse_port = |p: &str| -> Result<u16, String> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("'{p}' is not a port number")));
            }
            p.parse::<u16>()
                .map_err(|_| bad(&format!("port {p} is out of range (0 to 65535)")))
        };
        if let Some(inner) = rest.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(bad("missing ']'"));
            };
            addr.parse::<Ipv6Addr>()
                .map_err(|_| bad(&format!("'{addr}' is not an IPv6 address")))?;
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(parse_port(p)?),
                    None => return Err(bad("expected ':PORT' after ']'")),
                },
            };
            return Ok(ListenSpec {
                prefix,
                host: addr,
                port,
            });
        }
        match rest.matches(':').count() {
            0 => {
                check_host(rest).map_err(|w| bad(&w))?;
                Ok(ListenSpec {
                    prefix,
                    host: rest,
                    port: None,
                })
            }
            1 => {
                let (host, p) = rest.split_once(':').unwrap_or((rest, ""));
                check_host(host).map_err(|w| bad(&w))?;
                Ok(ListenSpec {
                    prefix,
                    host,
                    port: Some(parse_port(p)?),
                })
            }
            _ => {
                rest.parse::<Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address (write [IPv6]:PORT to give a port)"))?;
                Ok(ListenSpec {
                    prefix,
                    host: rest,
                    port: None,
                })
            }
        }
    }
}

/// An IPv4 literal or a syntactically valid host name.
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
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
        Err("empty host".to_string())
    } else if looks_numeric || host.len() > 253 || !host.split('.').all(label_ok) {
        Err(format!("'{host}' is not an IP address or host name"))
    } else {
        Ok(())
    }
}

fn parse_listen_list(name: &str, list: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for entry in list.split(',') {
        if entry.is_empty() {
            return Err(err(format!("{name}: empty address in '{list}'")));
        }
        ListenSpec::parse(entry).map_err(|e| err(format!("{name}: {e}")))?;
        out.push(entry.to_string());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Layers: what the config file or the command line set
// ---------------------------------------------------------------------------------------

/// Settings from one source (file or command line); `None` leaves the value below alone.
#[derive(Debug, Default)]
struct Layer {
    port: Option<u16>,
    listen: Option<Vec<String>>,
    udp_port: Option<u16>,
    unix_socket: Option<PathBuf>,
    unix_mask: Option<u32>,
    enable_shutdown: Option<bool>,
    memory_limit_mb: Option<u64>,
    disable_evictions: Option<bool>,
    max_connections: Option<usize>,
    threads: Option<usize>,
    backlog: Option<i32>,
    item_size_max: Option<usize>,
    verbose: Option<u8>,
    prefix_delimiter: Option<char>,
    reqs_per_event: Option<u32>,
    idle_timeout_secs: Option<u32>,
    read_buf_max: Option<usize>,
    shard_queue: Option<usize>,
    shutdown_timeout_secs: Option<u32>,
    pidfile: Option<PathBuf>,
    disable_flush_all: Option<bool>,
    tls_enabled: Option<bool>,
    /// `(key, Some(value))` sets, `(key, None)` removes.
    tls_opts: Vec<(String, Option<String>)>,
    cluster: Option<ClusterConfig>,
    cluster_config_set: Option<bool>,
    admin_listen: Option<SocketAddr>,
    warnings: Vec<String>,
}

impl Layer {
    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn udp(&mut self, name: &str, port: u16) {
        if port != 0 {
            self.warn(format!("{name} {port} ignored: UDP is not supported"));
        }
        self.udp_port = Some(0);
    }

    fn apply(self, cfg: &mut Config) {
        macro_rules! take {
            ($($f:ident),* $(,)?) => {
                $(if let Some(v) = self.$f { cfg.$f = v; })*
            };
        }
        take!(
            port,
            listen,
            udp_port,
            unix_mask,
            enable_shutdown,
            memory_limit_mb,
            disable_evictions,
            max_connections,
            threads,
            backlog,
            item_size_max,
            verbose,
            prefix_delimiter,
            reqs_per_event,
            idle_timeout_secs,
            read_buf_max,
            shard_queue,
            shutdown_timeout_secs,
            disable_flush_all,
            tls_enabled,
            cluster_config_set,
        );
        if let Some(c) = self.cluster {
            cfg.cluster = Some(c);
        }
        if let Some(a) = self.admin_listen {
            cfg.admin_listen = Some(a);
        }
        if let Some(p) = self.unix_socket {
            cfg.unix_socket = Some(p);
        }
        if let Some(p) = self.pidfile {
            cfg.pidfile = Some(p);
        }
        for (key, value) in self.tls_opts {
            let pos = cfg.tls_opts.iter().position(|(k, _)| *k == key);
            match (pos, value) {
                (Some(i), Some(v)) => cfg.tls_opts[i].1 = v,
                (None, Some(v)) => cfg.tls_opts.push((key, v)),
                (Some(i), None) => {
                    cfg.tls_opts.remove(i);
                }
                (None, None) => {}
            }
        }
        for w in self.warnings {
            if !cfg.warnings.contains(&w) {
                cfg.warnings.push(w);
            }
        }
    }
}

/// Builds the final configuration: defaults, then the file, then the command line.
fn build(file: Option<Layer>, cli: Layer) -> Result<Config, ConfigError> {
    let explicit_read_buf =
        cli.read_buf_max.is_some() || file.as_ref().is_some_and(|f| f.read_buf_max.is_some());
    let mut cfg = Config::default();
    if let Some(f) = file {
        f.apply(&mut cfg);
    }
    cli.apply(&mut cfg);
    let needed = cfg.item_size_max.saturating_add(READ_BUF_SLACK);
    if !explicit_read_buf && cfg.read_buf_max < needed {
        cfg.read_buf_max = needed;
    }
    cfg.validate()?;
    Ok(cfg)
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flag {
    Port,
    UdpPort,
    UnixSocket,
    UnixMask,
    EnableShutdown,
    Listen,
    Daemon,
    Coredumps,
    User,
    Memory,
    DisableEvictions,
    ConnLimit,
    LockMemory,
    Verbose,
    Help,
    License,
    Version,
    Pidfile,
    GrowthFactor,
    SlabMinSize,
    LargePages,
    Delimiter,
    Threads,
    ReqsPerEvent,
    DisableCas,
    Backlog,
    Protocol,
    MaxItemSize,
    Sasl,
    DisableFlushAll,
    DisableDumping,
    DisableWatch,
    AuthFile,
    MemoryFile,
    Extended,
    NapiIds,
    Ssl,
    ConfigFile,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    /// Long form only: `--verbose=N`; the short form never takes one.
    Optional,
}

struct Spec {
    flag: Flag,
    short: Option<char>,
    long: Option<&'static str>,
    arg: Arg,
}

const fn spec(flag: Flag, short: char, long: &'static str, arg: Arg) -> Spec {
    Spec {
        flag,
        short: Some(short),
        long: Some(long),
        arg,
    }
}

/// memcached 1.6's options (`getopt_long` table), plus `--config`.
const SPECS: &[Spec] = &[
    spec(Flag::Port, 'p', "port", Arg::Required),
    spec(Flag::UdpPort, 'U', "udp-port", Arg::Required),
    spec(Flag::UnixSocket, 's', "unix-socket", Arg::Required),
    spec(Flag::UnixMask, 'a', "unix-mask", Arg::Required),
    spec(Flag::EnableShutdown, 'A', "enable-shutdown", Arg::None),
    spec(Flag::Listen, 'l', "listen", Arg::Required),
    spec(Flag::Daemon, 'd', "daemon", Arg::None),
    spec(Flag::Coredumps, 'r', "enable-coredumps", Arg::None),
    spec(Flag::User, 'u', "user", Arg::Required),
    spec(Flag::Memory, 'm', "memory-limit", Arg::Required),
    spec(Flag::DisableEvictions, 'M', "disable-evictions", Arg::None),
    spec(Flag::ConnLimit, 'c', "conn-limit", Arg::Required),
    spec(Flag::LockMemory, 'k', "lock-memory", Arg::None),
    spec(Flag::Verbose, 'v', "verbose", Arg::Optional),
    spec(Flag::Help, 'h', "help", Arg::None),
    spec(Flag::License, 'i', "license", Arg::None),
    spec(Flag::Version, 'V', "version", Arg::None),
    spec(Flag::Pidfile, 'P', "pidfile", Arg::Required),
    spec(Flag::GrowthFactor, 'f', "slab-growth-factor", Arg::Required),
    spec(Flag::SlabMinSize, 'n', "slab-min-size", Arg::Required),
    spec(Flag::LargePages, 'L', "enable-largepages", Arg::None),
    Spec {
        flag: Flag::Delimiter,
        short: Some('D'),
        long: None,
        arg: Arg::Required,
    },
    spec(Flag::Threads, 't', "threads", Arg::Required),
    spec(Flag::ReqsPerEvent, 'R', "max-reqs-per-event", Arg::Required),
    spec(Flag::DisableCas, 'C', "disable-cas", Arg::None),
    spec(Flag::Backlog, 'b', "listen-backlog", Arg::Required),
    spec(Flag::Protocol, 'B', "protocol", Arg::Required),
    spec(Flag::MaxItemSize, 'I', "max-item-size", Arg::Required),
    spec(Flag::Sasl, 'S', "enable-sasl", Arg::None),
    spec(Flag::DisableFlushAll, 'F', "disable-flush-all", Arg::None),
    spec(Flag::DisableDumping, 'X', "disable-dumping", Arg::None),
    spec(Flag::DisableWatch, 'W', "disable-watch", Arg::None),
    spec(Flag::AuthFile, 'Y', "auth-file", Arg::Required),
    spec(Flag::MemoryFile, 'e', "memory-file", Arg::Required),
    spec(Flag::Extended, 'o', "extended", Arg::Required),
    spec(Flag::NapiIds, 'N', "napi-ids", Arg::Required),
    // memcached's -h spells it this way.
    Spec {
        flag: Flag::NapiIds,
        short: None,
        long: Some("napi_ids"),
        arg: Arg::Required,
    },
    spec(Flag::Ssl, 'Z', "enable-ssl", Arg::None),
    Spec {
        flag: Flag::ConfigFile,
        short: None,
        long: Some("config"),
        arg: Arg::Required,
    },
];

fn find_short(c: char) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.short == Some(c))
}

/// Exact long name, else an unambiguous prefix of one (as `getopt_long` allows).
fn find_long(name: &str) -> Result<&'static Spec, ConfigError> {
    if let Some(s) = SPECS.iter().find(|s| s.long == Some(name)) {
        return Ok(s);
    }
    let mut hits: Vec<&'static Spec> = Vec::new();
    if !name.is_empty() {
        for s in SPECS {
            if s.long.is_some_and(|l| l.starts_with(name)) && !hits.iter().any(|h| h.flag == s.flag)
            {
                hits.push(s);
            }
        }
    }
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(err(format!("unknown option '--{name}' (see -h)"))),
        many => {
            let names: Vec<String> = many
                .iter()
                .filter_map(|s| s.long.map(|l| format!("--{l}")))
                .collect();
            Err(err(format!(
                "option '--{name}' is ambiguous (could be {})",
                names.join(", ")
            )))
        }
    }
}

/// The main entry of a flag (aliases such as `--napi_ids` map to `-N`).
fn canonical(spec: &'static Spec) -> &'static Spec {
    SPECS.iter().find(|s| s.flag == spec.flag).unwrap_or(spec)
}

/// How to call a flag in messages: `-p` if it has a short form, else `--name`.
fn display_name(spec: &'static Spec) -> String {
    let spec = canonical(spec);
    match (spec.short, spec.long) {
        (Some(c), _) => format!("-{c}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => String::new(),
    }
}

fn missing_value(spec: &'static Spec) -> ConfigError {
    let spec = canonical(spec);
    match (spec.short, spec.long) {
        (Some(c), Some(l)) => err(format!("option -{c} (--{l}) requires a value")),
        (Some(c), None) => err(format!("option -{c} requires a value")),
        (None, Some(l)) => err(format!("option --{l} requires a value")),
        (None, None) => err("option requires a value"),
    }
}

/// The command line being parsed.
#[derive(Default)]
struct CliState {
    layer: Layer,
    config_file: Option<PathBuf>,
    /// Whether `-l` was already given on the command line (later ones append).
    listen_seen: bool,
}

/// Parses the command line (without argv\[0\]) into a [`Command`].
///
/// `-h`, `-V` and `-i` return [`Command::Print`] as soon as they are reached (errors in
/// earlier arguments win, later arguments are not looked at), like memcached. Otherwise
/// the `--config` file (if any) is loaded, the flags are applied on top of it in order,
/// and the result is validated.
pub fn parse_args(args: &[String]) -> Result<Command, ConfigError> {
    let mut st = CliState::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            if let Some(extra) = args.get(i) {
                return Err(unexpected(extra));
            }
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let spec = find_long(name)?;
            let value = match spec.arg {
                Arg::None => {
                    if inline.is_some() {
                        let l = spec.long.unwrap_or(name);
                        return Err(err(format!("option --{l} does not take a value")));
                    }
                    None
                }
                Arg::Optional => inline,
                Arg::Required => match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).ok_or_else(|| missing_value(spec))?;
                        i += 1;
                        Some(v.as_str())
                    }
                },
            };
            if let Some(cmd) = handle(spec, value, &mut st)? {
                return Ok(cmd);
            }
        } else if let Some(group) = arg.strip_prefix('-').filter(|g| !g.is_empty()) {
            for (pos, c) in group.char_indices() {
                let spec =
                    find_short(c).ok_or_else(|| err(format!("unknown option '-{c}' (see -h)")))?;
                if spec.arg == Arg::Required {
                    let rest = &group[pos + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = args.get(i).ok_or_else(|| missing_value(spec))?;
                        i += 1;
                        v.as_str()
                    } else {
                        rest
                    };
                    if let Some(cmd) = handle(spec, Some(value), &mut st)? {
                        return Ok(cmd);
                    }
                    break;
                }
                if let Some(cmd) = handle(spec, None, &mut st)? {
                    return Ok(cmd);
                }
            }
        } else {
            return Err(unexpected(arg));
        }
    }
    let file = match &st.config_file {
        Some(path) => Some(load_file(path)?),
        None => None,
    };
    let mut cfg = build(file, st.layer)?;
    cfg.config_file = st.config_file;
    Ok(Command::Run(Box::new(cfg)))
}

/// Re-reads the `[cluster]` node list of a config file (on SIGHUP). The whole file must
/// still be valid; `Ok(None)` when it has no node list.
pub fn read_cluster(path: &Path) -> Result<Option<ClusterConfig>, ConfigError> {
    Ok(load_file(path)?.cluster)
}

fn unexpected(arg: &str) -> ConfigError {
    err(format!(
        "unexpected argument '{arg}' (tessera takes only options; see -h)"
    ))
}

/// Applies one flag. Returns a command when the flag ends parsing (`-h`, `-V`, `-i`).
fn handle(
    spec: &'static Spec,
    value: Option<&str>,
    st: &mut CliState,
) -> Result<Option<Command>, ConfigError> {
    let name = display_name(spec);
    let v = value.unwrap_or("");
    let l = &mut st.layer;
    match spec.flag {
        Flag::Port => l.port = Some(parse_num(&name, v, 0, 65535)?),
        Flag::UdpPort => {
            let p = parse_num(&name, v, 0, 65535)?;
            l.udp(&name, p);
        }
        Flag::UnixSocket => l.unix_socket = Some(parse_path(&name, v)?),
        Flag::UnixMask => l.unix_mask = Some(parse_octal_mask(&name, v)?),
        Flag::EnableShutdown => l.enable_shutdown = Some(true),
        Flag::Listen => {
            let entries = parse_listen_list(&name, v)?;
            // The first -l replaces the file's or default list; later ones add to it.
            let list = l.listen.get_or_insert_with(Vec::new);
            if !st.listen_seen {
                list.clear();
            }
            list.extend(entries);
            st.listen_seen = true;
        }
        Flag::Daemon => l.warn(format!("{name} ignored: run under systemd instead")),
        Flag::Coredumps => l.warn(format!(
            "{name} ignored: set the core size limit outside (systemd LimitCORE=, ulimit -c)"
        )),
        Flag::User => l.warn(format!(
            "{name} {v} ignored: tessera does not switch users; start it as the user it should run as"
        )),
        Flag::Memory => l.memory_limit_mb = Some(parse_num(&name, v, 1, MAX_MEMORY_MB)?),
        Flag::DisableEvictions => l.disable_evictions = Some(true),
        Flag::ConnLimit => l.max_connections = Some(parse_num(&name, v, 1, u32::MAX as u64)?),
        Flag::LockMemory => l.warn(format!("{name} ignored: memory is not locked")),
        Flag::Verbose => {
            l.verbose = Some(match value {
                Some(n) => parse_num(&name, n, 0, 255)?,
                None => l.verbose.unwrap_or(0).saturating_add(1),
            });
        }
        Flag::Help => return Ok(Some(Command::Print(help_text()))),
        Flag::License => return Ok(Some(Command::Print(license_text()))),
        Flag::Version => return Ok(Some(Command::Print(format!("tessera {VERSION}\n")))),
        Flag::Pidfile => l.pidfile = Some(parse_path(&name, v)?),
        Flag::GrowthFactor | Flag::SlabMinSize => {
            l.warn(format!("{name} ignored: tessera has no slab allocator"));
        }
        Flag::LargePages => l.warn(format!("{name} ignored: large pages are not used")),
        Flag::Delimiter => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => l.prefix_delimiter = Some(c),
                _ => {
                    return Err(err(format!(
                        "{name}: expected a single character, got '{v}'"
                    )));
                }
            }
        }
        Flag::Threads => l.threads = Some(parse_num(&name, v, 1, MAX_THREADS)?),
        Flag::ReqsPerEvent => l.reqs_per_event = Some(parse_num(&name, v, 1, u32::MAX as u64)?),
        Flag::DisableCas => l.warn(format!("{name} ignored: CAS stays on (it costs nothing here)")),
        Flag::Backlog => l.backlog = Some(parse_num(&name, v, 1, i32::MAX as u64)?),
        Flag::Protocol => match v {
            "ascii" | "auto" => {}
            "binary" => {
                return Err(err(
                    "binary protocol is not supported (deprecated in memcached 1.6)",
                ));
            }
            other => {
                return Err(err(format!(
                    "{name}: unknown protocol '{other}' (expected ascii or auto)"
                )));
            }
        },
        Flag::MaxItemSize => {
            l.item_size_max = Some(parse_size(&name, v, ITEM_SIZE_MIN, ITEM_SIZE_MAX)?);
        }
        Flag::Sasl => return Err(err(format!("{name}: SASL authentication is not supported"))),
        Flag::DisableFlushAll => l.disable_flush_all = Some(true),
        // Nothing to disable: tessera has neither cachedump/metadump nor watch.
        Flag::DisableDumping | Flag::DisableWatch => {}
        Flag::AuthFile => {
            return Err(err(format!(
                "{name}: ASCII authentication (auth file) is not supported yet"
            )));
        }
        Flag::MemoryFile => {
            return Err(err(format!(
                "{name}: memory file (restartable cache) is not supported"
            )));
        }
        Flag::Extended => parse_extended(v, l)?,
        Flag::NapiIds => l.warn(format!("{name} ignored: NAPI ids are not used")),
        Flag::Ssl => l.tls_enabled = Some(true),
        Flag::ConfigFile => {
            if st.config_file.is_some() {
                return Err(err("--config given more than once"));
            }
            st.config_file = Some(parse_path("--config", v)?);
        }
    }
    Ok(None)
}

/// Why a memcached `-o` key is accepted but has no effect, or `None` if unknown.
fn ignored_extended(key: &str) -> Option<&'static str> {
    Some(match key {
        "hashpower" | "no_hashexpand" => "tessera's table grows by itself",
        "hash_algorithm" => "tessera picks its own hash",
        "maxconns_fast" | "no_maxconns_fast" => "tessera has one policy for connections over -c",
        "lru_crawler" | "no_lru_crawler" | "lru_crawler_sleep" | "lru_crawler_tocrawl" => {
            "tessera has no LRU crawler"
        }
        "lru_maintainer" | "no_lru_maintainer" | "hot_lru_pct" | "warm_lru_pct"
        | "hot_max_factor" | "warm_max_factor" | "temporary_ttl" => "tessera has no segmented LRU",
        "modern" | "no_modern" => "tessera has a single set of defaults",
        "slab_reassign"
        | "no_slab_reassign"
        | "slab_automove"
        | "no_slab_automove"
        | "slab_automove_ratio"
        | "slab_automove_window"
        | "slab_automove_freeratio"
        | "slab_chunk_max"
        | "slab_sizes"
        | "no_chunked_items"
        | "large_memory_pages" => "tessera has no slab allocator",
        "tail_repair_time" => "tessera has no LRU tail to repair",
        "watcher_logbuf_size" | "worker_logbuf_size" => "tessera has no watch log buffers",
        "track_sizes" => "'stats sizes' is not supported",
        "no_inline_ascii_resp" | "inline_ascii_resp" => "responses are built one way",
        "drop_privileges" | "no_drop_privileges" => {
            "tessera does not sandbox itself; use systemd's sandboxing"
        }
        "read_buf_mem_limit" | "resp_obj_mem_limit" => {
            "use -o read_buf_max (a per-connection limit) instead"
        }
        "meta_response_old" => "meta responses have one format",
        "sock_cookie_id" => "socket cookies are not set",
        _ => return None,
    })
}

/// A switch's value: absent (on), or a boolean word.
fn parse_switch(name: &str, val: Option<&str>) -> Result<bool, ConfigError> {
    match val {
        None | Some("true" | "yes" | "on" | "1") => Ok(true),
        Some("false" | "no" | "off" | "0") => Ok(false),
        Some(v) => Err(err(format!(
            "{name}: '{v}' is not on/off (true/false, yes/no, 1/0)"
        ))),
    }
}

/// The admin listener: `PORT` (on 127.0.0.1), `IP:PORT` or `[IPv6]:PORT`.
fn parse_admin_listen(name: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        err(format!(
            "{name}: '{s}' is not PORT, IP:PORT or [IPv6]:PORT (the admin listener binds an \
             address, not a host name; a bare port means 127.0.0.1)"
        ))
    })
}

/// memcached's `-o key[=value],key[=value],...`.
fn parse_extended(list: &str, l: &mut Layer) -> Result<(), ConfigError> {
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (key, val) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        let name = format!("-o {key}");
        let need = || val.ok_or_else(|| err(format!("{name}: missing value ({key}=...)")));
        match key {
            "idle_timeout" => {
                l.idle_timeout_secs = Some(parse_num(&name, need()?, 0, u32::MAX as u64)?);
            }
            "read_buf_max" => {
                l.read_buf_max = Some(parse_size(&name, need()?, READ_BUF_MIN, READ_BUF_MAX)?);
            }
            "shard_queue" => {
                l.shard_queue = Some(parse_num(&name, need()?, 1, MAX_SHARD_QUEUE)?);
            }
            "shutdown_timeout" => {
                l.shutdown_timeout_secs = Some(parse_num(
                    &name,
                    need()?,
                    0,
                    u64::from(MAX_SHUTDOWN_TIMEOUT),
                )?);
            }
            "cluster_config_set" => {
                l.cluster_config_set = Some(parse_switch(&name, val)?);
            }
            "admin_listen" => {
                l.admin_listen = Some(parse_admin_listen(&name, need()?)?);
            }
            k if SSL_VALUE_KEYS.contains(&k) => {
                l.tls_opts.push((k.to_string(), Some(need()?.to_string())));
            }
            k if SSL_SWITCH_KEYS.contains(&k) => {
                l.tls_opts
                    .push((k.to_string(), Some(val.unwrap_or("true").to_string())));
            }
            k if k.starts_with("ext_") => {
                return Err(err(format!("{name}: extstore is not supported")));
            }
            k if k.starts_with("proxy_") => {
                return Err(err(format!("{name}: the memcached proxy is not supported")));
            }
            k => match ignored_extended(k) {
                Some(why) => l.warn(format!("{name} ignored: {why}")),
                None => return Err(err(format!("-o: unknown option '{k}' (see -h)"))),
            },
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Config file
// ---------------------------------------------------------------------------------------

/// The TOML file: keys are the long flag names in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<i64>,
    listen: Option<toml::Value>,
    udp_port: Option<i64>,
    unix_socket: Option<String>,
    unix_mask: Option<toml::Value>,
    enable_shutdown: Option<bool>,
    memory_limit: Option<i64>,
    disable_evictions: Option<bool>,
    conn_limit: Option<i64>,
    threads: Option<i64>,
    listen_backlog: Option<i64>,
    max_item_size: Option<toml::Value>,
    verbose: Option<i64>,
    disable_cas: Option<bool>,
    max_reqs_per_event: Option<i64>,
    idle_timeout: Option<i64>,
    read_buf_max: Option<toml::Value>,
    shard_queue: Option<i64>,
    shutdown_timeout: Option<i64>,
    pidfile: Option<String>,
    disable_flush_all: Option<bool>,
    tls: Option<FileTls>,
    cluster: Option<FileCluster>,
    admin: Option<FileAdmin>,
}

/// The `[cluster]` table: ElastiCache-style auto discovery.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCluster {
    version: Option<i64>,
    nodes: Option<Vec<String>>,
    allow_set: Option<bool>,
}

/// The `[admin]` table: the HTTP admin listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAdmin {
    listen: Option<toml::Value>,
}

/// The `[tls]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    enabled: Option<bool>,
    chain_cert: Option<toml::Value>,
    key: Option<toml::Value>,
    ca_cert: Option<toml::Value>,
    verify_mode: Option<toml::Value>,
    min_version: Option<toml::Value>,
    ciphers: Option<toml::Value>,
    wbuf_size: Option<toml::Value>,
    session_cache: Option<bool>,
    keyformat: Option<toml::Value>,
    kernel: Option<toml::Value>,
    ktls_record_limit: Option<toml::Value>,
    handshake_timeout: Option<toml::Value>,
}

fn load_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read config file {}: {e}", path.display())))?;
    parse_toml(&text, &path.display().to_string())
}

/// Parses config-file text; `origin` names the file in messages.
fn parse_toml(text: &str, origin: &str) -> Result<Layer, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| {
                let end = s.start.min(text.len());
                let before = text.get(..end).unwrap_or("");
                format!(", line {}", before.matches('\n').count() + 1)
            })
            .unwrap_or_default();
        let msg = e.message().trim().replace('\n', " ");
        err(format!("config file {origin}{line}: {msg}"))
    })?;
    file_to_layer(file, origin)
}

fn file_to_layer(f: FileConfig, origin: &str) -> Result<Layer, ConfigError> {
    let n = |key: &str| format!("{origin}: {key}");
    let mut l = Layer::default();
    if let Some(v) = f.port {
        l.port = Some(int_in_range(&n("port"), v, 0, 65535)?);
    }
    if let Some(v) = f.listen {
        let name = n("listen");
        let list = match v {
            toml::Value::String(s) => parse_listen_list(&name, &s)?,
            toml::Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => out.extend(parse_listen_list(&name, &s)?),
                        _ => return Err(err(format!("{name}: entries must be strings"))),
                    }
                }
                out
            }
            _ => {
                return Err(err(format!(
                    "{name}: expected a string or an array of strings"
                )));
            }
        };
        l.listen = Some(list);
    }
    if let Some(v) = f.udp_port {
        let name = n("udp_port");
        let p = int_in_range(&name, v, 0, 65535)?;
        l.udp(&name, p);
    }
    if let Some(v) = f.unix_socket {
        l.unix_socket = Some(parse_path(&n("unix_socket"), &v)?);
    }
    if let Some(v) = f.unix_mask {
        let name = n("unix_mask");
        l.unix_mask = Some(match v {
            toml::Value::Integer(i) => u32::try_from(i)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| {
                    err(format!(
                        "{name}: {i} is out of range (0 to 0o777); write it in octal: 0o700 or \"700\""
                    ))
                })?,
            toml::Value::String(s) => parse_octal_mask(&name, &s)?,
            _ => {
                return Err(err(format!(
                    "{name}: expected an octal integer (0o700) or string (\"700\")"
                )));
            }
        });
    }
    l.enable_shutdown = f.enable_shutdown;
    if let Some(v) = f.memory_limit {
        l.memory_limit_mb = Some(int_in_range(&n("memory_limit"), v, 1, MAX_MEMORY_MB)?);
    }
    l.disable_evictions = f.disable_evictions;
    if let Some(v) = f.conn_limit {
        l.max_connections = Some(int_in_range(&n("conn_limit"), v, 1, u32::MAX as u64)?);
    }
    if let Some(v) = f.threads {
        l.threads = Some(int_in_range(&n("threads"), v, 1, MAX_THREADS)?);
    }
    if let Some(v) = f.listen_backlog {
        l.backlog = Some(int_in_range(&n("listen_backlog"), v, 1, i32::MAX as u64)?);
    }
    if let Some(v) = f.max_item_size {
        l.item_size_max = Some(size_value(
            &n("max_item_size"),
            v,
            ITEM_SIZE_MIN,
            ITEM_SIZE_MAX,
        )?);
    }
    if let Some(v) = f.verbose {
        l.verbose = Some(int_in_range(&n("verbose"), v, 0, 255)?);
    }
    if f.disable_cas == Some(true) {
        l.warn(format!(
            "{} ignored: CAS stays on (it costs nothing here)",
            n("disable_cas")
        ));
    }
    if let Some(v) = f.max_reqs_per_event {
        l.reqs_per_event = Some(int_in_range(
            &n("max_reqs_per_event"),
            v,
            1,
            u32::MAX as u64,
        )?);
    }
    if let Some(v) = f.idle_timeout {
        l.idle_timeout_secs = Some(int_in_range(&n("idle_timeout"), v, 0, u32::MAX as u64)?);
    }
    if let Some(v) = f.shutdown_timeout {
        l.shutdown_timeout_secs = Some(int_in_range(
            &n("shutdown_timeout"),
            v,
            0,
            u64::from(MAX_SHUTDOWN_TIMEOUT),
        )?);
    }
    if let Some(v) = f.read_buf_max {
        l.read_buf_max = Some(size_value(
            &n("read_buf_max"),
            v,
            READ_BUF_MIN,
            READ_BUF_MAX,
        )?);
    }
    if let Some(v) = f.shard_queue {
        l.shard_queue = Some(int_in_range(&n("shard_queue"), v, 1, MAX_SHARD_QUEUE)?);
    }
    if let Some(v) = f.pidfile {
        l.pidfile = Some(parse_path(&n("pidfile"), &v)?);
    }
    l.disable_flush_all = f.disable_flush_all;
    if let Some(c) = f.cluster {
        l.cluster_config_set = c.allow_set;
        match (c.version, c.nodes) {
            (version, Some(nodes)) => {
                let version = match version {
                    Some(v) => int_in_range(&n("cluster.version"), v, 0, i64::MAX as u64)?,
                    None => 1,
                };
                let nodes = nodes
                    .iter()
                    .map(|s| {
                        Node::parse(s).map_err(|e| err(format!("{}: {e}", n("cluster.nodes"))))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if nodes.is_empty() {
                    return Err(err(format!(
                        "{}: the list is empty (leave it out to have no cluster)",
                        n("cluster.nodes")
                    )));
                }
                for node in nodes.iter().filter(|node| node.ip.is_empty()) {
                    l.warn(format!(
                        "{}: '{}' has no IP address: clients that connect by address \
                         (pymemcache's, by default) cannot use it; write host|ip|port",
                        n("cluster.nodes"),
                        node.host
                    ));
                }
                l.cluster = Some(ClusterConfig { version, nodes });
            }
            (Some(_), None) => {
                return Err(err(format!(
                    "{}: a version without nodes (add nodes = [\"host|ip|port\", ...])",
                    n("cluster")
                )));
            }
            (None, None) => {}
        }
    }
    if let Some(a) = f.admin.and_then(|a| a.listen) {
        let name = n("admin.listen");
        let spec = match a {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            _ => {
                return Err(err(format!(
                    "{name}: expected \"IP:PORT\" or a port number"
                )));
            }
        };
        l.admin_listen = Some(parse_admin_listen(&name, &spec)?);
    }
    if let Some(t) = f.tls {
        l.tls_enabled = t.enabled;
        // `kernel = "auto" | "on" | "off"`; a boolean means on / off.
        let kernel = t.kernel.map(|v| match v {
            toml::Value::Boolean(b) => toml::Value::String(if b { "on" } else { "off" }.into()),
            v => v,
        });
        let values = [
            ("chain_cert", "ssl_chain_cert", t.chain_cert),
            ("key", "ssl_key", t.key),
            ("ca_cert", "ssl_ca_cert", t.ca_cert),
            ("verify_mode", "ssl_verify_mode", t.verify_mode),
            ("min_version", "ssl_min_version", t.min_version),
            ("ciphers", "ssl_ciphers", t.ciphers),
            ("wbuf_size", "ssl_wbuf_size", t.wbuf_size),
            ("keyformat", "ssl_keyformat", t.keyformat),
            (
                "handshake_timeout",
                "ssl_handshake_timeout",
                t.handshake_timeout,
            ),
            ("kernel", "ssl_kernel_tls", kernel),
            (
                "ktls_record_limit",
                "ssl_ktls_record_limit",
                t.ktls_record_limit,
            ),
        ];
        for (key, opt, value) in values {
            let Some(value) = value else { continue };
            let s = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                _ => {
                    return Err(err(format!(
                        "{origin}: tls.{key}: expected a string or an integer"
                    )));
                }
            };
            l.tls_opts.push((opt.to_string(), Some(s)));
        }
        for (opt, value) in [("ssl_session_cache", t.session_cache)] {
            if let Some(on) = value {
                l.tls_opts
                    .push((opt.to_string(), on.then(|| "true".to_string())));
            }
        }
    }
    Ok(l)
}

/// A size given as integer bytes or as a string with a suffix (`"1m"`).
fn size_value(name: &str, v: toml::Value, lo: u64, hi: u64) -> Result<usize, ConfigError> {
    match v {
        toml::Value::Integer(i) => {
            let n = u64::try_from(i).map_err(|_| {
                err(format!(
                    "{name}: {i} is out of range ({} to {})",
                    fmt_size(lo),
                    fmt_size(hi)
                ))
            })?;
            check_size_range(name, n, lo, hi)?;
            usize::try_from(n).map_err(|_| err(format!("{name}: {i} is too large")))
        }
        toml::Value::String(s) => parse_size(name, &s, lo, hi),
        _ => Err(err(format!(
            "{name}: expected an integer (bytes) or a string like \"1m\""
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------------------

fn license_text() -> String {
    format!(
        "tessera {VERSION}: Copyright the tessera authors. Licensed under the Apache License, \
         Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0).\n"
    )
}

/// memcached-style `-h` output: usage line, then every flag with its long form,
/// description and default. Flags accepted only for compatibility say "(ignored)".
pub fn help_text() -> String {
    let d = Config::default();
    format!(
        "tessera {VERSION} (memcached {MEMCACHED_COMPAT} compatible)
Usage: tessera [options]
--config=<file>           read settings from a TOML file (keys are the long
                          option names in snake_case); options on the command
                          line override it
-p, --port=<num>          TCP port to listen on (default: {port})
-U, --udp-port=<num>      (ignored: UDP is not supported) (default: 0, off)
-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)
-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: {mask:o})
-A, --enable-shutdown     enable ascii \"shutdown\" command
-l, --listen=<addr>       interface to listen on (default: {listen})
                          comma separated, may be given more than once;
                          forms: <ip>, <ip>:<port>, [<ipv6>]:<port>, <host>;
                          with -Z, a prefix picks the mode per listener:
                          notls: (plaintext), mtls: (client certificate
                          required), permissive: (TLS or plaintext)
-d, --daemon              (ignored: run under systemd instead)
-r, --enable-coredumps    (ignored: set the core limit outside)
-u, --user=<user>         (ignored: start tessera as the user it should run as)
-m, --memory-limit=<num>  item memory in megabytes (default: {mem})
-M, --disable-evictions   return error on memory exhausted instead of evicting
-c, --conn-limit=<num>    max simultaneous connections (default: {conns})
-k, --lock-memory         (ignored: memory is not locked)
-v, --verbose             verbose (print errors/warnings while in event loop)
-vv                       very verbose (also print client commands/responses)
-vvv                      extremely verbose (internal state transitions)
-h, --help                print this help and exit
-i, --license             print tessera's license and exit
-V, --version             print version and exit
-P, --pidfile=<file>      save PID in <file>
-f, --slab-growth-factor=<num> (ignored: no slab allocator)
-n, --slab-min-size=<bytes> (ignored: no slab allocator)
-L, --enable-largepages   (ignored: large pages are not used)
-D <char>                 use <char> as the delimiter between key prefixes and
                          IDs in per-prefix stats (default: \"{delim}\")
-t, --threads=<num>       number of threads, one per core (default: {threads},
                          the number of CPUs; max: {max_threads})
-R, --max-reqs-per-event  maximum number of requests per event, limits the
                          requests processed per connection to prevent
                          starvation (default: {reqs})
-C, --disable-cas         (ignored: CAS stays on)
-b, --listen-backlog=<num> set the backlog queue limit (default: {backlog})
-B, --protocol=<name>     protocol - one of ascii or auto (default: auto);
                          binary is not supported
-I, --max-item-size=<num> adjusts max item size, k/m/g suffixes allowed
                          (default: {item}, min: 1k, max: 1024m, and at most
                          half of --memory-limit)
-S, --enable-sasl         (not supported: SASL authentication)
-F, --disable-flush-all   disable flush_all command
-X, --disable-dumping     accepted (tessera has no cachedump/metadump)
-W, --disable-watch       accepted (tessera has no watch command)
-Y, --auth-file=<file>    (not supported yet: ASCII authentication)
-e, --memory-file=<file>  (not supported: restartable cache)
-Z, --enable-ssl          enable TLS
-N, --napi-ids=<num>      (ignored: NAPI ids are not used)
-o, --extended            comma separated list of extended options
   - idle_timeout:        timeout in seconds for idle connections.
                          (default: 0, no timeout)
   - read_buf_max:        (tessera) max bytes of unparsed input per connection,
                          k/m/g suffixes allowed (default: {read_buf}, raised
                          to fit --max-item-size if not set)
   - shard_queue:         (tessera) depth of each cross-shard queue
                          (default: {queue})
   - shutdown_timeout:    (tessera) on SIGTERM/SIGINT, seconds open connections
                          get to finish their requests (default: {shutdown})
   - admin_listen:        (tessera) HTTP admin listener: [IP:]PORT (a bare
                          port binds 127.0.0.1), serving Prometheus /metrics
                          and /health (default: off)
   - cluster_config_set:  (tessera) accept \"config set cluster\" (auto
                          discovery's node list; the list itself comes from
                          the config file's [cluster] table) (default: off)
   - ssl_chain_cert:      certificate chain file in PEM format
   - ssl_key:             private key, if not part of the ssl_chain_cert
   - ssl_keyformat:       private key format (default: PEM)
   - ssl_verify_mode:     peer certificate verification mode (default: 0, none)
   - ssl_ciphers:         cipher list to use
   - ssl_ca_cert:         PEM file of acceptable client CAs
   - ssl_wbuf_size:       size in kilobytes of the TLS output buffers, shared
                          per thread, not per connection (default: 16)
   - ssl_session_cache:   enable the server-side TLS session cache
   - ssl_kernel_tls:      kernel TLS offload after the handshake: auto (the
                          default; bare switch too), on (refuse to start
                          without it) or off
   - ssl_ktls_record_limit: (tessera) records sent under one kTLS key before
                          a rekey or close (default: 0, the cipher's limit)
   - ssl_min_version:     minimum protocol version (default: tlsv1.2)
   - ssl_handshake_timeout: seconds a TLS handshake may take
                          (default: 10)
   accepted and ignored, with a warning: maxconns_fast, hashpower,
     no_hashexpand, hash_algorithm, lru_crawler, lru_crawler_sleep,
     lru_crawler_tocrawl, lru_maintainer, hot_lru_pct, warm_lru_pct,
     hot_max_factor, warm_max_factor, temporary_ttl, modern, slab_reassign,
     slab_automove, slab_automove_ratio, slab_automove_window,
     slab_automove_freeratio, slab_chunk_max, slab_sizes, no_chunked_items,
     large_memory_pages, tail_repair_time, watcher_logbuf_size,
     worker_logbuf_size, track_sizes, inline_ascii_resp, drop_privileges,
     read_buf_mem_limit, resp_obj_mem_limit, meta_response_old,
     sock_cookie_id (and the no_ forms of the switches)
   not supported: ext_* (extstore), proxy_* (proxy)
",
        port = d.port,
        mask = d.unix_mask,
        listen = d.listen.join(","),
        mem = d.memory_limit_mb,
        conns = d.max_connections,
        delim = d.prefix_delimiter,
        threads = d.threads,
        max_threads = MAX_THREADS,
        reqs = d.reqs_per_event,
        backlog = d.backlog,
        item = fmt_size(d.item_size_max as u64),
        read_buf = fmt_size(d.read_buf_max as u64),
        queue = d.shard_queue,
        shutdown = d.shutdown_timeout_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn run(s: &[&str]) -> Config {
        match parse_args(&args(s)) {
            Ok(Command::Run(c)) => *c,
            Ok(Command::Print(t)) => panic!("expected Run for {s:?}, got Print({t:?})"),
            Err(e) => panic!("expected Run for {s:?}, got error: {e}"),
        }
    }

    fn fail(s: &[&str]) -> String {
        match parse_args(&args(s)) {
            Ok(c) => panic!("expected an error for {s:?}, got {c:?}"),
            Err(e) => e.0,
        }
    }

    fn print(s: &[&str]) -> String {
        match parse_args(&args(s)) {
            Ok(Command::Print(t)) => t,
            other => panic!("expected Print for {s:?}, got {other:?}"),
        }
    }

    /// A config file in a fresh temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str, text: &str) -> TempFile {
            let dir = std::env::temp_dir()
                .join(format!("tessera-config-test-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let path = dir.join("tessera.toml");
            std::fs::write(&path, text).expect("write temp file");
            TempFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn no_args_is_default() {
        assert_eq!(run(&[]), Config::default());
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn grouped_flags() {
        assert_eq!(run(&["-v"]).verbose, 1);
        assert_eq!(run(&["-vv"]).verbose, 2);
        assert_eq!(run(&["-vvv"]).verbose, 3);
        assert_eq!(run(&["-vv", "-v"]).verbose, 3);
        let c = run(&["-Mv"]);
        assert!(c.disable_evictions);
        assert_eq!(c.verbose, 1);
        let c = run(&["-MAFvp", "4000"]);
        assert!(c.disable_evictions && c.enable_shutdown && c.disable_flush_all);
        assert_eq!((c.verbose, c.port), (1, 4000));
        // A value-taking flag swallows the rest of the group as its value.
        let c = run(&["-Mp11212"]);
        assert!(c.disable_evictions);
        assert_eq!(c.port, 11212);
    }

    #[test]
    fn attached_and_separate_values() {
        assert_eq!(run(&["-p11212"]).port, 11212);
        assert_eq!(run(&["-p", "11212"]).port, 11212);
        assert_eq!(run(&["-m128"]).memory_limit_mb, 128);
        assert_eq!(run(&["-t", "3"]).threads, 3);
        assert_eq!(run(&["-c", "10"]).max_connections, 10);
        assert_eq!(run(&["-b", "64"]).backlog, 64);
        assert_eq!(run(&["-R", "5"]).reqs_per_event, 5);
        assert_eq!(run(&["-D", "/"]).prefix_delimiter, '/');
        assert_eq!(run(&["-a", "0755"]).unix_mask, 0o755);
        assert_eq!(run(&["-a644"]).unix_mask, 0o644);
        let c = run(&["-s", "/tmp/t.sock", "-P", "/tmp/t.pid", "-Z"]);
        assert_eq!(c.unix_socket, Some(PathBuf::from("/tmp/t.sock")));
        assert_eq!(c.pidfile, Some(PathBuf::from("/tmp/t.pid")));
        assert!(c.tls_enabled);
        // getopt takes the next argument as the value even if it looks like a flag.
        assert_eq!(
            fail(&["-D", "-v"]),
            "-D: expected a single character, got '-v'"
        );
        // The last value wins.
        assert_eq!(run(&["-p", "1", "-p", "2"]).port, 2);
    }

    #[test]
    fn long_forms() {
        let c = run(&[
            "--port=11300",
            "--memory-limit",
            "256",
            "--threads=2",
            "--disable-evictions",
            "--conn-limit",
            "77",
            "--listen-backlog=9",
            "--max-reqs-per-event=3",
            "--enable-shutdown",
            "--disable-flush-all",
            "--enable-ssl",
            "--unix-mask=600",
            "--pidfile=/run/t.pid",
            "--unix-socket",
            "/run/t.sock",
            "--max-item-size=2m",
            "--extended=idle_timeout=5",
            "--protocol=ascii",
            "--verbose",
        ]);
        assert_eq!(c.port, 11300);
        assert_eq!(c.memory_limit_mb, 256);
        assert_eq!(c.threads, 2);
        assert!(c.disable_evictions && c.enable_shutdown && c.disable_flush_all && c.tls_enabled);
        assert_eq!(c.max_connections, 77);
        assert_eq!(c.backlog, 9);
        assert_eq!(c.reqs_per_event, 3);
        assert_eq!(c.unix_mask, 0o600);
        assert_eq!(c.pidfile, Some(PathBuf::from("/run/t.pid")));
        assert_eq!(c.unix_socket, Some(PathBuf::from("/run/t.sock")));
        assert_eq!(c.item_size_max, 2 * 1024 * 1024);
        assert_eq!(c.idle_timeout_secs, 5);
        assert_eq!(c.verbose, 1);
        assert_eq!(run(&["--verbose=2"]).verbose, 2);
        // Unambiguous prefixes, like getopt_long.
        assert_eq!(run(&["--memory-l=100"]).memory_limit_mb, 100);
        assert_eq!(
            fail(&["--mem=1"]),
            "option '--mem' is ambiguous (could be --memory-limit, --memory-file)"
        );
        assert_eq!(
            run(&["--napi_ids=2"]).warnings,
            ["-N ignored: NAPI ids are not used"]
        );
        assert_eq!(
            fail(&["--p=1"]),
            "option '--p' is ambiguous (could be --port, --pidfile, --protocol)"
        );
        assert_eq!(
            fail(&["--daemon=yes"]),
            "option --daemon does not take a value"
        );
    }

    #[test]
    fn help_version_license() {
        let h = print(&["-h"]);
        assert!(h.starts_with("tessera 0.1.0 (memcached 1.6.18 compatible)\nUsage: tessera"));
        assert!(h.contains("-p, --port=<num>          TCP port to listen on (default: 11211)\n"));
        assert!(h.contains("-d, --daemon              (ignored: run under systemd instead)\n"));
        assert_eq!(print(&["--help"]), h);
        assert_eq!(print(&["-V"]), "tessera 0.1.0\n");
        assert_eq!(print(&["--version"]), "tessera 0.1.0\n");
        assert!(print(&["-i"]).contains("Apache License, Version 2.0"));
        // Help wins over later errors, earlier errors win over help.
        assert_eq!(print(&["-h", "-x"]), h);
        assert_eq!(fail(&["-x", "-h"]), "unknown option '-x' (see -h)");
        // Every line fits a terminal.
        for line in h.lines() {
            assert!(line.chars().count() <= 80, "help line too long: {line:?}");
        }
    }

    #[test]
    fn ignored_flags_warn() {
        let c = run(&[
            "-d", "-u", "nobody", "-k", "-L", "-C", "-f", "1.5", "-n", "64", "-r",
        ]);
        assert_eq!(
            c.warnings,
            [
                "-d ignored: run under systemd instead",
                "-u nobody ignored: tessera does not switch users; start it as the user it should run as",
                "-k ignored: memory is not locked",
                "-L ignored: large pages are not used",
                "-C ignored: CAS stays on (it costs nothing here)",
                "-f ignored: tessera has no slab allocator",
                "-n ignored: tessera has no slab allocator",
                "-r ignored: set the core size limit outside (systemd LimitCORE=, ulimit -c)",
            ]
        );
        assert!(c.use_cas);
        let c = run(&["-U", "11211", "-X", "-W", "-B", "auto"]);
        assert_eq!(c.udp_port, 0);
        assert_eq!(c.warnings, ["-U 11211 ignored: UDP is not supported"]);
        assert!(run(&["-U", "0"]).warnings.is_empty());
        // Repeated flags warn once.
        assert_eq!(run(&["-d", "-d"]).warnings.len(), 1);
    }

    #[test]
    fn unsupported_flags_are_errors() {
        assert_eq!(
            fail(&["-B", "binary"]),
            "binary protocol is not supported (deprecated in memcached 1.6)"
        );
        assert_eq!(
            fail(&["-B", "udp"]),
            "-B: unknown protocol 'udp' (expected ascii or auto)"
        );
        assert_eq!(fail(&["-S"]), "-S: SASL authentication is not supported");
        assert_eq!(
            fail(&["-Y", "/etc/auth"]),
            "-Y: ASCII authentication (auth file) is not supported yet"
        );
        assert_eq!(
            fail(&["-e", "/dev/shm/x"]),
            "-e: memory file (restartable cache) is not supported"
        );
    }

    #[test]
    fn extended_options() {
        let c = run(&[
            "-o",
            "idle_timeout=30,read_buf_max=2m,shard_queue=64",
            "-o",
            "ssl_chain_cert=/c.pem,ssl_key=/k.pem,ssl_session_cache",
        ]);
        assert_eq!(c.idle_timeout_secs, 30);
        assert_eq!(c.read_buf_max, 2 * 1024 * 1024);
        assert_eq!(c.shard_queue, 64);
        assert_eq!(
            c.tls_opts,
            [
                ("ssl_chain_cert".to_string(), "/c.pem".to_string()),
                ("ssl_key".to_string(), "/k.pem".to_string()),
                ("ssl_session_cache".to_string(), "true".to_string()),
            ]
        );
        assert!(c.warnings.is_empty());
        // A later ssl key replaces the earlier one in place.
        let c = run(&["-o", "ssl_key=/a,ssl_ciphers=X", "-o", "ssl_key=/b"]);
        assert_eq!(
            c.tls_opts,
            [
                ("ssl_key".to_string(), "/b".to_string()),
                ("ssl_ciphers".to_string(), "X".to_string()),
            ]
        );
        let c = run(&[
            "-o",
            "hashpower=20,modern,no_lru_crawler,read_buf_mem_limit=10",
        ]);
        assert_eq!(
            c.warnings,
            [
                "-o hashpower ignored: tessera's table grows by itself",
                "-o modern ignored: tessera has a single set of defaults",
                "-o no_lru_crawler ignored: tessera has no LRU crawler",
                "-o read_buf_mem_limit ignored: use -o read_buf_max (a per-connection limit) instead",
            ]
        );
        assert_eq!(
            fail(&["-o", "bogus=1"]),
            "-o: unknown option 'bogus' (see -h)"
        );
        assert_eq!(
            fail(&["-o", "ssl_foo=1"]),
            "-o: unknown option 'ssl_foo' (see -h)"
        );
        assert_eq!(
            fail(&["-o", "ext_path=/x:1G"]),
            "-o ext_path: extstore is not supported"
        );
        assert_eq!(
            fail(&["-o", "proxy_config=/x.lua"]),
            "-o proxy_config: the memcached proxy is not supported"
        );
        assert_eq!(
            fail(&["-o", "idle_timeout"]),
            "-o idle_timeout: missing value (idle_timeout=...)"
        );
        assert_eq!(
            fail(&["-o", "idle_timeout=x"]),
            "-o idle_timeout: 'x' is not a number"
        );
        assert_eq!(
            fail(&["-o", "shard_queue=0"]),
            "-o shard_queue: 0 is out of range (1 to 1048576)"
        );
        assert_eq!(
            fail(&["-o", "read_buf_max=1k"]),
            "-o read_buf_max: 1k is out of range (4k to 4g)"
        );
    }

    #[test]
    fn item_size_suffixes_and_limits() {
        assert_eq!(run(&["-I", "1024"]).item_size_max, 1024);
        assert_eq!(run(&["-I", "2k"]).item_size_max, 2048);
        assert_eq!(run(&["-I2K"]).item_size_max, 2048);
        assert_eq!(run(&["-I", "4m"]).item_size_max, 4 << 20);
        assert_eq!(run(&["-I", "4M"]).item_size_max, 4 << 20);
        assert_eq!(run(&["-m", "4096", "-I", "1g"]).item_size_max, 1 << 30);
        assert_eq!(fail(&["-I", "1023"]), "-I: 1023 is out of range (1k to 1g)");
        assert_eq!(fail(&["-I", "2g"]), "-I: 2g is out of range (1k to 1g)");
        assert_eq!(
            fail(&["-I", "99999999999999999999k"]),
            "-I: 99999999999999999999k is out of range (1k to 1g)"
        );
        assert_eq!(
            fail(&["-I", "1x"]),
            "-I: '1x' is not a size (bytes, or a number with a k, m or g suffix)"
        );
        assert_eq!(
            fail(&["-I", "m"]),
            "-I: 'm' is not a size (bytes, or a number with a k, m or g suffix)"
        );
        assert_eq!(
            fail(&["-I", "33m"]),
            "cannot set item size limit higher than 1/2 of memory max (-I 33m > 32m = half of -m 64)"
        );
        assert_eq!(run(&["-I", "32m"]).item_size_max, 32 << 20);
        // memcached's default -I does not fit -m 1 either.
        assert_eq!(
            fail(&["-m", "1"]),
            "cannot set item size limit higher than 1/2 of memory max (-I 1m > 512k = half of -m 1)"
        );
        assert_eq!(run(&["-m", "1", "-I", "512k"]).memory_limit_mb, 1);
    }

    #[test]
    fn read_buf_follows_item_size() {
        // Not set: raised so that a maximum-size item fits.
        assert_eq!(run(&["-I", "32m"]).read_buf_max, (32 << 20) + 4096);
        assert_eq!(run(&["-I", "2m"]).read_buf_max, 16 << 20);
        // Set explicitly: too small is an error.
        assert_eq!(
            fail(&["-I", "2m", "-o", "read_buf_max=2m"]),
            "-o read_buf_max=2m is too small for -I 2m: it must be at least 2052k \
             (the item plus 4k for the command line)"
        );
    }

    #[test]
    fn error_classes() {
        assert_eq!(fail(&["-x"]), "unknown option '-x' (see -h)");
        assert_eq!(fail(&["-vx"]), "unknown option '-x' (see -h)");
        assert_eq!(fail(&["--bogus"]), "unknown option '--bogus' (see -h)");
        assert_eq!(fail(&["-p", "abc"]), "-p: 'abc' is not a number");
        assert_eq!(fail(&["--port=abc"]), "-p: 'abc' is not a number");
        assert_eq!(fail(&["-p", ""]), "-p: '' is not a number");
        assert_eq!(fail(&["-p", "+5"]), "-p: '+5' is not a number");
        assert_eq!(
            fail(&["-p", "70000"]),
            "-p: 70000 is out of range (0 to 65535)"
        );
        assert_eq!(
            fail(&["-p", "99999999999999999999999"]),
            "-p: 99999999999999999999999 is out of range (0 to 65535)"
        );
        assert_eq!(fail(&["-t", "0"]), "-t: 0 is out of range (1 to 1024)");
        assert_eq!(fail(&["-t", "-1"]), "-t: -1 is out of range (1 to 1024)");
        assert_eq!(
            fail(&["-t", "1025"]),
            "-t: 1025 is out of range (1 to 1024)"
        );
        assert_eq!(fail(&["-m", "0"]), "-m: 0 is out of range (1 to 16777216)");
        assert_eq!(
            fail(&["-c", "0"]),
            "-c: 0 is out of range (1 to 4294967295)"
        );
        assert_eq!(
            fail(&["-b", "0"]),
            "-b: 0 is out of range (1 to 2147483647)"
        );
        assert_eq!(
            fail(&["-R", "0"]),
            "-R: 0 is out of range (1 to 4294967295)"
        );
        assert_eq!(fail(&["-a", "800"]), "-a: '800' is not an octal number");
        assert_eq!(
            fail(&["-a", "1000"]),
            "-a: 1000 is out of range (0 to 777, octal)"
        );
        assert_eq!(fail(&["-D", ""]), "-D: expected a single character, got ''");
        assert_eq!(fail(&["-p"]), "option -p (--port) requires a value");
        assert_eq!(fail(&["-vp"]), "option -p (--port) requires a value");
        assert_eq!(fail(&["--port"]), "option -p (--port) requires a value");
        assert_eq!(fail(&["-D"]), "option -D requires a value");
        assert_eq!(fail(&["--config"]), "option --config requires a value");
        assert_eq!(
            fail(&["11211"]),
            "unexpected argument '11211' (tessera takes only options; see -h)"
        );
        assert_eq!(
            fail(&["-", "x"]),
            "unexpected argument '-' (tessera takes only options; see -h)"
        );
        assert_eq!(
            fail(&["--", "x"]),
            "unexpected argument 'x' (tessera takes only options; see -h)"
        );
        assert_eq!(run(&["-p", "1", "--"]).port, 1);
        assert_eq!(fail(&["-s", ""]), "-s: empty path");
        // No message spans lines.
        for bad in [&["-x"][..], &["-p", "x"], &["-I", "9g"], &["-o", "zz"]] {
            assert!(!fail(bad).contains('\n'));
        }
    }

    #[test]
    fn listen_parsing() {
        assert_eq!(run(&[]).listen, ["127.0.0.1"]);
        assert_eq!(
            run(&[
                "-l",
                "10.0.0.1,10.0.0.2:11300",
                "-l",
                "[::1]:11211",
                "-l",
                "::1"
            ])
            .listen,
            ["10.0.0.1", "10.0.0.2:11300", "[::1]:11211", "::1"]
        );
        let c = run(&["--listen=notls:127.0.0.1:5000,mtls:[::1],permissive:localhost"]);
        assert_eq!(
            c.listen,
            ["notls:127.0.0.1:5000", "mtls:[::1]", "permissive:localhost"]
        );
        let c = run(&[
            "-Z",
            "-p",
            "7000",
            "-l",
            "notls:127.0.0.1:5000,[::1],mtls:127.0.0.2",
        ]);
        assert_eq!(
            c.listeners()
                .map(|v| v.into_iter().map(|(m, _)| m).collect::<Vec<_>>()),
            Ok(vec![
                ListenMode::NoTls,
                ListenMode::Default,
                ListenMode::Mtls
            ])
        );
        assert_eq!(
            c.listen_addrs(),
            Ok(vec![
                "127.0.0.1:5000".parse().expect("addr"),
                "[::1]:7000".parse().expect("addr"),
                "127.0.0.2:7000".parse().expect("addr"),
            ])
        );
        assert_eq!(
            fail(&["-l", "[::1"]),
            "-l: bad listen address '[::1': missing ']'"
        );
        assert_eq!(
            fail(&["-l", "[1.2.3.4]:5"]),
            "-l: bad listen address '[1.2.3.4]:5': '1.2.3.4' is not an IPv6 address"
        );
        assert_eq!(
            fail(&["-l", "::1:99999"]),
            "-l: bad listen address '::1:99999': not an IPv6 address (write [IPv6]:PORT to give a port)"
        );
        assert_eq!(
            fail(&["-l", "1.2.3.4:x"]),
            "-l: bad listen address '1.2.3.4:x': 'x' is not a port number"
        );
        assert_eq!(
            fail(&["-l", "1.2.3.4:65536"]),
            "-l: bad listen address '1.2.3.4:65536': port 65536 is out of range (0 to 65535)"
        );
        assert_eq!(
            fail(&["-l", "999.1.1.1"]),
            "-l: bad listen address '999.1.1.1': '999.1.1.1' is not an IP address or host name"
        );
        assert_eq!(fail(&["-l", "a,,b"]), "-l: empty address in 'a,,b'");
        assert_eq!(fail(&["-l", "notls:"]), "-l: empty address in 'notls:'");
        assert_eq!(
            fail(&["-l", "bad host"]),
            "-l: bad listen address 'bad host': 'bad host' is not an IP address or host name"
        );
    }

    #[test]
    fn toml_file_and_precedence() {
        let f = TempFile::new(
            "prec",
            "port = 12000\nmemory_limit = 512\nlisten = [\"10.1.1.1\", \"[::1]:7\"]\n\
             threads = 2\nmax_item_size = \"4m\"\nverbose = 1\nunix_mask = 0o600\n\
             [tls]\nenabled = true\nchain_cert = \"/c.pem\"\nverify_mode = 2\nkernel = \"on\"\n",
        );
        let c = run(&["--config", f.path()]);
        assert_eq!(c.port, 12000);
        assert_eq!(c.memory_limit_mb, 512);
        assert_eq!(c.listen, ["10.1.1.1", "[::1]:7"]);
        assert_eq!(c.threads, 2);
        assert_eq!(c.item_size_max, 4 << 20);
        assert_eq!(c.verbose, 1);
        assert_eq!(c.unix_mask, 0o600);
        assert!(c.tls_enabled);
        assert_eq!(
            c.tls_opts,
            [
                ("ssl_chain_cert".to_string(), "/c.pem".to_string()),
                ("ssl_verify_mode".to_string(), "2".to_string()),
                ("ssl_kernel_tls".to_string(), "on".to_string()),
            ]
        );
        // Flags win, whether before or after --config.
        let before = run(&["-p", "1", "-l", "1.1.1.1", "-vv", "--config", f.path()]);
        let after = run(&[
            &format!("--config={}", f.path()),
            "-p",
            "1",
            "-l",
            "1.1.1.1",
            "-vv",
        ]);
        for c in [before, after] {
            assert_eq!(c.port, 1);
            assert_eq!(c.listen, ["1.1.1.1"]);
            assert_eq!(c.verbose, 2);
            assert_eq!(c.memory_limit_mb, 512);
        }
        let c = run(&["--config", f.path(), "-o", "ssl_chain_cert=/d.pem"]);
        assert_eq!(
            c.tls_opts[0],
            ("ssl_chain_cert".to_string(), "/d.pem".to_string())
        );
        // Cross-field rules apply to the merged result.
        assert_eq!(
            fail(&["--config", f.path(), "-m", "4"]),
            "cannot set item size limit higher than 1/2 of memory max (-I 4m > 2m = half of -m 4)"
        );
        assert_eq!(
            fail(&["--config", f.path(), "--config", f.path()]),
            "--config given more than once"
        );
    }

    #[test]
    fn toml_errors() {
        let f = TempFile::new("unknown", "port = 1\nprot = 2\n");
        let e = fail(&["--config", f.path()]);
        assert!(
            e.starts_with(&format!(
                "config file {}, line 2: unknown field `prot`, expected one of `port`",
                f.path()
            )),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let f = TempFile::new("tlsunknown", "[tls]\ncert = \"x\"\n");
        let e = fail(&["--config", f.path()]);
        assert!(e.contains("line 2: unknown field `cert`"), "{e}");
        let f = TempFile::new("range", "port = 70000\n");
        assert_eq!(
            fail(&["--config", f.path()]),
            format!("{}: port: 70000 is out of range (0 to 65535)", f.path())
        );
        let f = TempFile::new("size", "max_item_size = \"1q\"\n");
        assert_eq!(
            fail(&["--config", f.path()]),
            format!(
                "{}: max_item_size: '1q' is not a size (bytes, or a number with a k, m or g suffix)",
                f.path()
            )
        );
        let f = TempFile::new("mask", "unix_mask = 700\n");
        assert_eq!(
            fail(&["--config", f.path()]),
            format!(
                "{}: unix_mask: 700 is out of range (0 to 0o777); write it in octal: 0o700 or \"700\"",
                f.path()
            )
        );
        let f = TempFile::new("syntax", "port = \n");
        let e = fail(&["--config", f.path()]);
        assert!(
            e.starts_with(&format!("config file {}, line 1: ", f.path())),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let f = TempFile::new("type", "port = \"x\"\n");
        let e = fail(&["--config", f.path()]);
        assert!(e.contains("line 1: invalid type: string \"x\""), "{e}");
        let missing = "/nonexistent/tessera/none.toml";
        assert_eq!(
            fail(&["--config", missing]),
            format!("cannot read config file {missing}: No such file or directory (os error 2)")
        );
    }

    #[test]
    fn toml_values() {
        let l = parse_toml(
            "listen = \"1.2.3.4,5.6.7.8\"\nmax_item_size = 2048\nread_buf_max = \"8m\"\n\
             disable_cas = true\nudp_port = 5\n[tls]\nsession_cache = false\n",
            "t.toml",
        )
        .expect("parses");
        let c = build(Some(l), Layer::default()).expect("valid");
        assert_eq!(c.listen, ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(c.item_size_max, 2048);
        assert_eq!(c.read_buf_max, 8 << 20);
        assert_eq!(c.udp_port, 0);
        assert!(c.tls_opts.is_empty());
        assert_eq!(
            c.warnings,
            [
                "t.toml: udp_port 5 ignored: UDP is not supported",
                "t.toml: disable_cas ignored: CAS stays on (it costs nothing here)",
            ]
        );
        // A later `false` switch removes what the file set.
        let file = parse_toml("[tls]\nsession_cache = true\n", "t.toml").expect("parses");
        let cli = parse_toml("[tls]\nsession_cache = false\n", "u.toml").expect("parses");
        assert!(build(Some(file), cli).expect("valid").tls_opts.is_empty());
    }

    #[test]
    fn cluster_and_admin_settings() {
        let l = parse_toml(
            "[cluster]\nversion = 7\nnodes = [\"a.example|10.0.0.1|11211\", \"10.0.0.2:11212\", \
             \"c.example:11213\"]\nallow_set = true\n[admin]\nlisten = 9150\n",
            "t.toml",
        )
        .expect("parses");
        let c = build(Some(l), Layer::default()).expect("valid");
        let cl = c.cluster.as_ref().expect("cluster");
        assert_eq!(cl.version, 7);
        assert_eq!(
            cl.nodes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "a.example|10.0.0.1|11211",
                "10.0.0.2|10.0.0.2|11212",
                "c.example||11213"
            ]
        );
        assert!(c.cluster_config_set);
        assert_eq!(c.admin_listen, Some("127.0.0.1:9150".parse().unwrap()));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("'c.example' has no IP address"));
        // The command line overrides the file.
        let file = parse_toml("[cluster]\nallow_set = true\n", "t.toml").expect("parses");
        let mut cli = Layer::default();
        parse_extended("cluster_config_set=off,admin_listen=[::1]:0", &mut cli).expect("parses");
        let c = build(Some(file), cli).expect("valid");
        assert!(!c.cluster_config_set);
        assert!(c.cluster.is_none());
        assert_eq!(c.admin_listen, Some("[::1]:0".parse().unwrap()));
        assert!(run(&["-o", "cluster_config_set"]).cluster_config_set);
        assert_eq!(
            run(&["-o", "admin_listen=0.0.0.0:9150"]).admin_listen,
            Some("0.0.0.0:9150".parse().unwrap())
        );
        for (toml, want) in [
            (
                "[cluster]\nnodes = []\n",
                "cluster.nodes: the list is empty",
            ),
            (
                "[cluster]\nversion = 2\n",
                "cluster: a version without nodes",
            ),
            (
                "[cluster]\nversion = -1\nnodes = [\"h:1\"]\n",
                "cluster.version: -1 is out of range",
            ),
            (
                "[cluster]\nnodes = [\"h|x|1\"]\n",
                "cluster.nodes: 'h|x|1': 'x' is not an IP address",
            ),
            (
                "[cluster]\nnodes = [\"h\"]\n",
                "cluster.nodes: 'h': expected host|ip|port or host:port",
            ),
            (
                "[admin]\nlisten = \"localhost:9150\"\n",
                "admin.listen: 'localhost:9150' is not PORT",
            ),
            ("[admin]\nlisten = true\n", "admin.listen: expected"),
        ] {
            let e = parse_toml(toml, "t.toml")
                .err()
                .unwrap_or_else(|| panic!("{toml} parsed"));
            assert!(e.0.starts_with(&format!("t.toml: {want}")), "{toml}: {e}");
        }
        assert!(fail(&["-o", "cluster_config_set=maybe"]).contains("'maybe' is not on/off"));
        assert!(fail(&["-o", "admin_listen"]).contains("missing value"));
        assert!(fail(&["-o", "admin_listen=70000"]).contains("is not PORT"));
    }

    const DEFAULT_TOML: &str = include_str!("../config/default.toml");

    #[test]
    fn default_toml_is_the_default() {
        let layer = parse_toml(DEFAULT_TOML, "config/default.toml").expect("default.toml parses");
        let mut c = build(Some(layer), Layer::default()).expect("default.toml is valid");
        // Machine-dependent, so commented out in the file.
        c.threads = Config::default().threads;
        assert_eq!(c, Config::default());
    }

    /// Collects the field names serde's derive passes to `deserialize_struct`.
    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("done"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
        let mut names: &'static [&'static str] = &[];
        let _ = T::deserialize(FieldNames(&mut names));
        names
    }

    #[test]
    fn default_toml_lists_every_key() {
        let (top, rest) = DEFAULT_TOML
            .split_once("\n[tls]\n")
            .expect("default.toml has a [tls] table");
        let (tls, rest) = rest
            .split_once("\n[cluster]\n")
            .expect("default.toml has a [cluster] table after [tls]");
        let (cluster, admin) = rest
            .split_once("\n[admin]\n")
            .expect("default.toml has an [admin] table after [cluster]");
        let has = |text: &str, key: &str| {
            text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
        };
        let top_keys = field_names::<FileConfig>();
        assert!(top_keys.len() > 15, "{top_keys:?}");
        for key in top_keys
            .iter()
            .filter(|k| !["tls", "cluster", "admin"].contains(*k))
        {
            assert!(has(top, key), "config/default.toml lacks `{key}`");
        }
        let tls_keys = field_names::<FileTls>();
        assert_eq!(tls_keys.len(), 13);
        for key in tls_keys {
            assert!(has(tls, key), "config/default.toml lacks `[tls] {key}`");
        }
        for key in field_names::<FileCluster>() {
            assert!(
                has(cluster, key),
                "config/default.toml lacks `[cluster] {key}`"
            );
        }
        for key in field_names::<FileAdmin>() {
            assert!(has(admin, key), "config/default.toml lacks `[admin] {key}`");
        }
        // Every non-comment line is a key, a table or blank, and has its comment above.
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains(" = ") && !l.starts_with('#') {
                assert!(
                    i > 0 && lines[i - 1].starts_with("# "),
                    "no comment above line {}: {l}",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let odd: &[&[&str]] = &[
            &["-"],
            &["---"],
            &["--="],
            &["-é"],
            &["-pé"],
            &["-Iø"],
            &["-I", "k"],
            &["-I", "é"],
            &["-l", "["],
            &["-l", "]:"],
            &["-l", "[]:1"],
            &["-l", "é:1"],
            &["-o", ",,,"],
            &["-o", "="],
            &["-o", "=,=,"],
            &["-a", ""],
            &["-D", "éé"],
            &["--verbose=999"],
            &["-m", "18446744073709551616"],
            &["--config", ""],
        ];
        for a in odd {
            if let Err(e) = parse_args(&args(a)) {
                assert!(!e.0.is_empty() && !e.0.contains('\n'), "{a:?}: {e}");
            }
        }
        assert_eq!(run(&["-D", "é"]).prefix_delimiter, 'é');
        assert_eq!(run(&["-o", ",,,"]), Config::default());
    }

    #[test]
    fn listen_spec_split() {
        assert_eq!(
            ListenSpec::parse("notls:mtls:[::1]:9"),
            Ok(ListenSpec {
                prefix: "notls:mtls:",
                host: "::1",
                port: Some(9)
            })
        );
        assert_eq!(
            ListenSpec::parse("host.example:80"),
            Ok(ListenSpec {
                prefix: "",
                host: "host.example",
                port: Some(80)
            })
        );
    }

    #[test]
    fn validate_catches_hand_built_configs() {
        let c = Config {
            threads: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(err("-t: 0 is out of range (1 to 1024)")));
        let mut c = Config::default();
        c.listen.clear();
        assert_eq!(
            c.validate(),
            Err(err("nothing to listen on: give -l or -s"))
        );
        c.unix_socket = Some(PathBuf::from("/tmp/s"));
        assert_eq!(c.validate(), Ok(()));
        let c = Config {
            memory_limit_mb: u64::MAX,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn example_tls_configs_parse() {
        let root = env!("CARGO_MANIFEST_DIR");
        let tls = run(&["--config", &format!("{root}/config/tls.toml")]);
        assert!(tls.tls_enabled);
        assert_eq!(
            tls.listeners()
                .expect("listeners")
                .into_iter()
                .map(|(m, a)| (m, a.port()))
                .collect::<Vec<_>>(),
            vec![(ListenMode::Default, 11211), (ListenMode::NoTls, 11212)]
        );
        let get = |c: &Config, k: &str| {
            c.tls_opts
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(&tls, "ssl_chain_cert").as_deref(),
            Some("certs/server.pem")
        );
        assert_eq!(get(&tls, "ssl_session_cache").as_deref(), Some("true"));
        assert_eq!(get(&tls, "ssl_handshake_timeout").as_deref(), Some("10"));
        let mtls = run(&["--config", &format!("{root}/config/mtls.toml")]);
        assert_eq!(mtls.listeners().expect("listeners")[0].0, ListenMode::Mtls);
        assert_eq!(get(&mtls, "ssl_ca_cert").as_deref(), Some("certs/ca.pem"));
        assert_eq!(get(&mtls, "ssl_verify_mode").as_deref(), Some("2"));
    }
}
