//! The settings table: every setting tessera has, stated once.
//!
//! A row is `name [: Type = default] => Row { ... }`. Rows with a type become fields of
//! [`Config`]; the others are flags with no value to keep (ignored or unsupported memcached
//! flags, `-h`, `--config`) or `stats settings` lines memcached shows for features that
//! are fixed here. A row says:
//!
//! - `flag`: the short and long flag ([`flag`]), `ext`: the `-o` key, `toml`: the config-file
//!   key with its place in the file's key list (`tls.kernel` is in `[tls]`);
//! - `kind`: how a value is parsed, and its range;
//! - `help`: its `-h` lines (`{default}`, `{max}` are filled in);
//! - `stats`: its `stats settings` line and that line's place in memcached's order.
//!
//! Table order is `-h` order and `getopt_long`'s (which decides how an ambiguous `--prefix`
//! lists its candidates); `-h` shows `--config` first and the `-o` block last.
//!
//! To add a setting: add a row, and read the field where it is used.

use std::path::PathBuf;

use super::listen::Listener;
use super::schema::{
    Arg, Flag, Kind, Live, ROW, Row, Shows, flag, ignored, long, stat, stat_of, tls_stat, toml,
};
use crate::cluster::ClusterConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::units::{GIB, KIB, MAX_MEMORY_MB, MAX_THREADS, MIB, default_threads};

super::schema::settings! {
    /// `-p`, `--port`: TCP port (memcached default 11211). 0 picks a free port (tests).
    port: u16 = 11211 => Row {
        flag: Some(flag('p', "port", Arg::Required, "=<num>")),
        toml: toml(1, "port"),
        kind: Kind::Num(0, 65535),
        help: &["TCP port to listen on (default: {default})"],
        stats: stat(3, "tcpport"),
        ..ROW
    };
    /// `-U`, `--udp-port`: accepted; UDP is off (0), as in modern memcached. A non-zero
    /// value is not stored (tessera has no UDP) and produces a warning.
    udp_port: u16 = 0 => Row {
        flag: Some(flag('U', "udp-port", Arg::Required, "=<num>")),
        toml: toml(3, "udp_port"),
        kind: Kind::Udp,
        help: &["(ignored: UDP is not supported) (default: 0, off)"],
        stats: stat(4, "udpport"),
        ..ROW
    };
    /// `-s`, `--unix-socket`: UNIX socket path to listen on. As in memcached, the runtime
    /// then does not listen on TCP.
    unix_socket: Option<PathBuf> = None => Row {
        flag: Some(flag('s', "unix-socket", Arg::Required, "=<file>")),
        toml: toml(4, "unix_socket"),
        kind: Kind::Path,
        help: &["UNIX socket to listen on (disables network support)"],
        ..ROW
    };
    /// `-a`, `--unix-mask`: permission mask for the UNIX socket (given in octal).
    unix_mask: u32 = 0o700 => Row {
        flag: Some(flag('a', "unix-mask", Arg::Required, "=<mask>")),
        toml: toml(5, "unix_mask"),
        kind: Kind::Mask,
        help: &["access mask for UNIX socket, in octal (default: {default})"],
        ..ROW
    };
    /// `-A`, `--enable-shutdown`: allow the ASCII `shutdown` command.
    enable_shutdown: bool = false => Row {
        flag: Some(flag('A', "enable-shutdown", Arg::None, "")),
        toml: toml(6, "enable_shutdown"),
        kind: Kind::Switch,
        help: &["enable ascii \"shutdown\" command"],
        ..ROW
    };
    /// `-l`, `--listen`: interfaces to bind (memcached default: all; tessera's 127.0.0.1),
    /// each parsed into a [`Listener`]; see [`Config::listeners`].
    listen: Vec<Listener> = vec![Listener::ip(IpAddr::V4(Ipv4Addr::LOCALHOST))] => Row {
        flag: Some(flag('l', "listen", Arg::Required, "=<addr>")),
        toml: toml(2, "listen"),
        kind: Kind::Listen,
        help: &[
            "interface to listen on (default: {default})",
            "comma separated, may be given more than once;",
            "forms: <ip>, <ip>:<port>, [<ipv6>]:<port>, <host>;",
            "with -Z, a prefix picks the mode per listener:",
            "notls: (plaintext), mtls: (client certificate",
            "required), permissive: (TLS or plaintext)",
        ],
        stats: stat(5, "inter"),
        ..ROW
    };
    daemon => Row {
        flag: Some(flag('d', "daemon", Arg::None, "")),
        ..ignored!("run under systemd instead", "run under systemd instead")
    };
    coredumps => Row {
        flag: Some(flag('r', "enable-coredumps", Arg::None, "")),
        ..ignored!(
            "set the core size limit outside (systemd LimitCORE=, ulimit -c)",
            "set the core limit outside"
        )
    };
    user => Row {
        flag: Some(flag('u', "user", Arg::Required, "=<user>")),
        kind: Kind::IgnoredWithValue(
            "tessera does not switch users; start it as the user it should run as",
        ),
        help: &["(ignored: start tessera as the user it should run as)"],
        ..ROW
    };
    /// `-m`, `--memory-limit`: item memory in megabytes, across all shards.
    memory_limit_mb: u64 = 64 => Row {
        flag: Some(flag('m', "memory-limit", Arg::Required, "=<num>")),
        toml: toml(7, "memory_limit"),
        kind: Kind::Num(1, MAX_MEMORY_MB),
        help: &["item memory in megabytes (default: {default})"],
        stats: stat_of(1, "maxbytes", Shows::Live(Live::MaxBytes)),
        ..ROW
    };
    /// `-M`, `--disable-evictions`: return an error instead of evicting.
    disable_evictions: bool = false => Row {
        flag: Some(flag('M', "disable-evictions", Arg::None, "")),
        toml: toml(8, "disable_evictions"),
        kind: Kind::Switch,
        help: &["return error on memory exhausted instead of evicting"],
        stats: stat_of(7, "evictions", Shows::Bool("on", "off")),
        ..ROW
    };
    /// `-c`, `--conn-limit`: max simultaneous connections.
    max_connections: usize = 1024 => Row {
        flag: Some(flag('c', "conn-limit", Arg::Required, "=<num>")),
        toml: toml(9, "conn_limit"),
        kind: Kind::Num(1, u32::MAX as u64),
        help: &["max simultaneous connections (default: {default})"],
        stats: stat(2, "maxconns"),
        ..ROW
    };
    lock_memory => Row {
        flag: Some(flag('k', "lock-memory", Arg::None, "")),
        ..ignored!("memory is not locked", "memory is not locked")
    };
    /// `-v` count: 0 quiet, 1 errors/warnings, 2 also client commands.
    verbose: u8 = 0 => Row {
        flag: Some(flag('v', "verbose", Arg::Optional, "")),
        toml: toml(13, "verbose"),
        kind: Kind::Verbose,
        help: &[
            "verbose (print errors/warnings while in event loop)",
            "-vv                       very verbose (also print client commands/responses)",
            "-vvv                      extremely verbose (internal state transitions)",
        ],
        stats: stat_of(6, "verbosity", Shows::Live(Live::Verbosity)),
        ..ROW
    };
    help => Row {
        flag: Some(flag('h', "help", Arg::None, "")),
        kind: Kind::Help,
        help: &["print this help and exit"],
        ..ROW
    };
    license => Row {
        flag: Some(flag('i', "license", Arg::None, "")),
        kind: Kind::License,
        help: &["print tessera's license and exit"],
        ..ROW
    };
    version => Row {
        flag: Some(flag('V', "version", Arg::None, "")),
        kind: Kind::Version,
        help: &["print version and exit"],
        ..ROW
    };
    /// `-P`, `--pidfile`: file to write the server's PID into (the runtime writes it).
    pidfile: Option<PathBuf> = None => Row {
        flag: Some(flag('P', "pidfile", Arg::Required, "=<file>")),
        toml: toml(20, "pidfile"),
        kind: Kind::Path,
        help: &["save PID in <file>"],
        ..ROW
    };
    slab_growth_factor => Row {
        flag: Some(flag('f', "slab-growth-factor", Arg::Required, "=<num>")),
        ..ignored!("tessera has no slab allocator", "no slab allocator")
    };
    slab_min_size => Row {
        flag: Some(flag('n', "slab-min-size", Arg::Required, "=<bytes>")),
        ..ignored!("tessera has no slab allocator", "no slab allocator")
    };
    large_pages => Row {
        flag: Some(flag('L', "enable-largepages", Arg::None, "")),
        ..ignored!("large pages are not used", "large pages are not used")
    };
    /// `-D`: stats prefix delimiter (accepted, reported in `stats settings`).
    prefix_delimiter: char = ':' => Row {
        flag: Some(Flag {
            short: Some('D'),
            long: None,
            alias: None,
            arg: Arg::Required,
            metavar: " <char>",
        }),
        kind: Kind::Char,
        help: &[
            "use <char> as the delimiter between key prefixes and",
            "IDs in per-prefix stats (default: \"{default}\")",
        ],
        stats: stat(9, "stat_key_prefix"),
        ..ROW
    };
    /// `-t`, `--threads`: executors, one pinned per core (default: available CPUs).
    threads: usize = default_threads() => Row {
        flag: Some(flag('t', "threads", Arg::Required, "=<num>")),
        toml: toml(10, "threads"),
        kind: Kind::Num(1, MAX_THREADS),
        help: &[
            "number of threads, one per core (default: {default},",
            "the number of CPUs; max: {max})",
        ],
        stats: stat_of(8, "num_threads", Shows::Live(Live::Threads)),
        ..ROW
    };
    /// `-R`, `--max-reqs-per-event`: requests served per connection before yielding.
    reqs_per_event: u32 = 20 => Row {
        flag: Some(flag('R', "max-reqs-per-event", Arg::Required, "")),
        toml: toml(15, "max_reqs_per_event"),
        kind: Kind::Num(1, u32::MAX as u64),
        help: &[
            "maximum number of requests per event, limits the",
            "requests processed per connection to prevent",
            "starvation (default: {default})",
        ],
        stats: stat(11, "reqs_per_event"),
        ..ROW
    };
    /// `-C`, `--disable-cas`: accepted; CAS stays on (costs nothing here).
    use_cas: bool = true => Row {
        flag: Some(flag('C', "disable-cas", Arg::None, "")),
        toml: toml(14, "disable_cas"),
        stats: stat(12, "cas_enabled"),
        ..ignored!("CAS stays on (it costs nothing here)", "CAS stays on")
    };
    /// `-b`, `--listen-backlog`: listen(2) backlog.
    backlog: i32 = 1024 => Row {
        flag: Some(flag('b', "listen-backlog", Arg::Required, "=<num>")),
        toml: toml(11, "listen_backlog"),
        kind: Kind::Num(1, i32::MAX as u64),
        help: &["set the backlog queue limit (default: {default})"],
        stats: stat(13, "tcp_backlog"),
        ..ROW
    };
    protocol => Row {
        flag: Some(flag('B', "protocol", Arg::Required, "=<name>")),
        kind: Kind::Protocol,
        help: &[
            "protocol - one of ascii or auto (default: auto);",
            "binary is not supported",
        ],
        stats: stat_of(14, "binding_protocol", Shows::Fixed("ascii")),
        ..ROW
    };
    /// `-I`, `--max-item-size`: largest item in bytes (1 KiB .. 1 GiB, and at most half of
    /// the memory limit).
    item_size_max: usize = MIB as usize => Row {
        flag: Some(flag('I', "max-item-size", Arg::Required, "=<num>")),
        toml: toml(12, "max_item_size"),
        kind: Kind::Size(KIB, GIB),
        help: &[
            "adjusts max item size, k/m/g suffixes allowed",
            "(default: {default}, min: 1k, max: 1024m, and at most",
            "half of --memory-limit)",
        ],
        stats: stat(17, "item_size_max"),
        ..ROW
    };
    sasl => Row {
        flag: Some(flag('S', "enable-sasl", Arg::None, "")),
        kind: Kind::Unsupported("SASL authentication is not supported"),
        help: &["(not supported: SASL authentication)"],
        stats: stat_of(15, "auth_enabled_sasl", Shows::Fixed("no")),
        ..ROW
    };
    /// `-F`, `--disable-flush-all`: refuse the `flush_all` command.
    disable_flush_all: bool = false => Row {
        flag: Some(flag('F', "disable-flush-all", Arg::None, "")),
        toml: toml(21, "disable_flush_all"),
        kind: Kind::Switch,
        help: &["disable flush_all command"],
        stats: stat_of(19, "flush_enabled", Shows::Bool("yes", "no")),
        ..ROW
    };
    // Nothing to disable: tessera has neither cachedump/metadump nor watch.
    disable_dumping => Row {
        flag: Some(flag('X', "disable-dumping", Arg::None, "")),
        kind: Kind::Accepted,
        help: &["accepted (tessera has no cachedump/metadump)"],
        ..ROW
    };
    disable_watch => Row {
        flag: Some(flag('W', "disable-watch", Arg::None, "")),
        kind: Kind::Accepted,
        help: &["accepted (tessera has no watch command)"],
        ..ROW
    };
    auth_file => Row {
        flag: Some(flag('Y', "auth-file", Arg::Required, "=<file>")),
        kind: Kind::Unsupported("ASCII authentication (auth file) is not supported yet"),
        help: &["(not supported yet: ASCII authentication)"],
        stats: stat_of(16, "auth_enabled_ascii", Shows::Fixed("no")),
        ..ROW
    };
    memory_file => Row {
        flag: Some(flag('e', "memory-file", Arg::Required, "=<file>")),
        kind: Kind::Unsupported("memory file (restartable cache) is not supported"),
        help: &["(not supported: restartable cache)"],
        ..ROW
    };
    extended => Row {
        flag: Some(flag('o', "extended", Arg::Required, "")),
        kind: Kind::Extended,
        help: &["comma separated list of extended options"],
        ..ROW
    };
    /// `-Z`, `--enable-ssl` (or `[tls] enabled = true`): serve TLS.
    tls_enabled: bool = false => Row {
        flag: Some(flag('Z', "enable-ssl", Arg::None, "")),
        toml: toml(1, "tls.enabled"),
        kind: Kind::Switch,
        help: &["enable TLS"],
        stats: stat_of(30, "ssl_enabled", Shows::TlsEnabled),
        ..ROW
    };
    napi_ids => Row {
        flag: Some(Flag {
            alias: Some("napi_ids"),
            ..flag('N', "napi-ids", Arg::Required, "=<num>")
        }),
        ..ignored!("NAPI ids are not used", "NAPI ids are not used")
    };

    /// `--config`: the file the settings were read from (SIGHUP re-reads its `[cluster]`).
    config_file: Option<PathBuf> = None => Row {
        flag: long("config", Arg::Required, "=<file>"),
        kind: Kind::ConfigFile,
        help: &[
            "read settings from a TOML file (keys are the long",
            "option names in snake_case); options on the command",
            "line override it",
        ],
        ..ROW
    };

    // `stats settings` lines for what memcached can change and tessera has fixed.
    detail_enabled => Row { stats: stat_of(10, "detail_enabled", Shows::Fixed("no")), ..ROW };
    maxconns_fast => Row { stats: stat_of(18, "maxconns_fast", Shows::Fixed("yes")), ..ROW };
    hash_algorithm => Row { stats: stat_of(20, "hash_algorithm", Shows::Fixed("xxh3")), ..ROW };
    eviction_policy => Row { stats: stat_of(21, "eviction_policy", Shows::Fixed("s3fifo")), ..ROW };

    // -o keys (`-h` lists them in this order, after the flags).
    /// `-o idle_timeout=N`: close connections idle for N seconds (0 = never).
    idle_timeout_secs: u32 = 0 => Row {
        ext: Some("idle_timeout"),
        toml: toml(16, "idle_timeout"),
        kind: Kind::Num(0, u32::MAX as u64),
        help: &["timeout in seconds for idle connections.", "(default: 0, no timeout)"],
        stats: stat(22, "idle_timeout"),
        ..ROW
    };
    /// `-o read_buf_max=N` (tessera): cap in bytes on one connection's unparsed input. It
    /// must leave room for a maximum-size item: when not set it is raised to
    /// `item_size_max + 4 KiB` if the default (16 MiB) is smaller.
    read_buf_max: usize = 16 * MIB as usize => Row {
        ext: Some("read_buf_max"),
        toml: toml(17, "read_buf_max"),
        kind: Kind::Size(4 * KIB, 4 * GIB),
        help: &[
            "(tessera) max bytes of unparsed input per connection,",
            "k/m/g suffixes allowed (default: {default}, raised",
            "to fit --max-item-size if not set)",
        ],
        stats: stat(23, "read_buf_max"),
        ..ROW
    };
    /// `-o shard_queue=N` (tessera): depth of each cross-shard channel.
    shard_queue: usize = 256 => Row {
        ext: Some("shard_queue"),
        toml: toml(18, "shard_queue"),
        kind: Kind::Num(1, 1 << 20),
        help: &["(tessera) depth of each cross-shard queue", "(default: {default})"],
        stats: stat(24, "shard_queue"),
        ..ROW
    };
    /// `-o shutdown_timeout=N` (tessera): on SIGTERM/SIGINT, how long open connections may
    /// take to finish their requests before the process exits anyway (seconds; at most a
    /// day: past that an operator wants SIGKILL, not a timeout).
    shutdown_timeout_secs: u32 = 10 => Row {
        ext: Some("shutdown_timeout"),
        toml: toml(19, "shutdown_timeout"),
        kind: Kind::Num(0, 86_400),
        help: &[
            "(tessera) on SIGTERM/SIGINT, seconds open connections",
            "get to finish their requests (default: {default})",
        ],
        stats: stat(25, "shutdown_timeout"),
        ..ROW
    };
    /// `-o admin_listen=[IP:]PORT` / `[admin] listen`: the HTTP admin listener (Prometheus
    /// metrics at `/metrics`, `/health`); a bare port binds 127.0.0.1. Off when `None`.
    admin_listen: Option<SocketAddr> = None => Row {
        ext: Some("admin_listen"),
        toml: toml(1, "admin.listen"),
        kind: Kind::AdminAddr,
        help: &[
            "(tessera) HTTP admin listener: [IP:]PORT (a bare",
            "port binds 127.0.0.1), serving Prometheus /metrics",
            "and /health (default: off)",
        ],
        stats: stat(29, "admin_listen"),
        ..ROW
    };
    /// `-o cluster_config_set` / `[cluster] allow_set`: accept `config set cluster`.
    cluster_config_set: bool = false => Row {
        ext: Some("cluster_config_set"),
        toml: toml(3, "cluster.allow_set"),
        kind: Kind::OnOff,
        help: &[
            "(tessera) accept \"config set cluster\" (auto",
            "discovery's node list; the list itself comes from",
            "the config file's [cluster] table) (default: off)",
        ],
        stats: stat(26, "cluster_config_set"),
        ..ROW
    };
    /// The config file's `[cluster]` table: the node list `config get cluster` answers
    /// (ElastiCache auto discovery). `None`: no list (the `config` command is unknown, as in
    /// memcached, unless `cluster_config_set` allows setting one).
    cluster: Option<ClusterConfig> = None => Row {
        toml: toml(2, "cluster.nodes"),
        kind: Kind::ClusterNodes,
        stats: stat_of(28, "cluster_nodes", Shows::Live(Live::ClusterNodes)),
        ..ROW
    };
    cluster_version => Row {
        toml: toml(1, "cluster.version"),
        kind: Kind::ClusterVersion,
        stats: stat_of(27, "cluster_config_version", Shows::Live(Live::ClusterVersion)),
        ..ROW
    };
    /// `-o ssl_chain_cert` / `[tls] chain_cert`: the certificate chain (PEM).
    ssl_chain_cert: Option<String> = None => Row {
        ext: Some("ssl_chain_cert"),
        toml: toml(2, "tls.chain_cert"),
        kind: Kind::Text,
        help: &["certificate chain file in PEM format"],
        stats: tls_stat!(31, "ssl_chain_cert", |s| s.chain_cert.display().to_string()),
        ..ROW
    };
    /// `-o ssl_key` / `[tls] key`: the private key.
    ssl_key: Option<String> = None => Row {
        ext: Some("ssl_key"),
        toml: toml(3, "tls.key"),
        kind: Kind::Text,
        help: &["private key, if not part of the ssl_chain_cert"],
        stats: tls_stat!(32, "ssl_key", |s| s.key.display().to_string()),
        ..ROW
    };
    /// `-o ssl_keyformat` / `[tls] keyformat`: PEM (1) or DER (2).
    ssl_keyformat: String = "PEM".into() => Row {
        ext: Some("ssl_keyformat"),
        toml: toml(10, "tls.keyformat"),
        kind: Kind::Text,
        help: &["private key format (default: {default})"],
        stats: tls_stat!(34, "ssl_keyformat", |s| s.keyformat().into()),
        ..ROW
    };
    /// `-o ssl_verify_mode` / `[tls] verify_mode`: 0 none, 1 request, 2 require, 3 once.
    ssl_verify_mode: String = "0".into() => Row {
        ext: Some("ssl_verify_mode"),
        toml: toml(5, "tls.verify_mode"),
        kind: Kind::Text,
        help: &["peer certificate verification mode (default: {default}, none)"],
        stats: tls_stat!(33, "ssl_verify_mode", |s| (s.verify_mode as u8).to_string()),
        ..ROW
    };
    /// `-o ssl_ciphers` / `[tls] ciphers`: cipher list (unset: rustls's defaults).
    ssl_ciphers: Option<String> = None => Row {
        ext: Some("ssl_ciphers"),
        toml: toml(7, "tls.ciphers"),
        kind: Kind::Text,
        help: &["cipher list to use"],
        stats: tls_stat!(35, "ssl_ciphers", |s| s
            .ciphers
            .as_ref()
            .map_or_else(|| "NULL".into(), |c| c.list.clone())),
        ..ROW
    };
    /// `-o ssl_ca_cert` / `[tls] ca_cert`: CAs client certificates must chain to.
    ssl_ca_cert: Option<String> = None => Row {
        ext: Some("ssl_ca_cert"),
        toml: toml(4, "tls.ca_cert"),
        kind: Kind::Text,
        help: &["PEM file of acceptable client CAs"],
        stats: tls_stat!(36, "ssl_ca_cert", |s| s
            .ca_cert
            .as_ref()
            .map_or_else(|| "NULL".into(), |p| p.display().to_string())),
        ..ROW
    };
    /// `-o ssl_wbuf_size` / `[tls] wbuf_size`: TLS output buffer in KB (1 to 1024).
    ssl_wbuf_size: String = "16".into() => Row {
        ext: Some("ssl_wbuf_size"),
        toml: toml(8, "tls.wbuf_size"),
        kind: Kind::Text,
        help: &[
            "size in kilobytes of the TLS output buffers, shared",
            "per thread, not per connection (default: {default})",
        ],
        stats: tls_stat!(37, "ssl_wbuf_size", |s| s.wbuf_size.to_string()),
        ..ROW
    };
    /// `-o ssl_session_cache` / `[tls] session_cache`: the TLS 1.2 session-ID cache.
    ssl_session_cache: bool = false => Row {
        ext: Some("ssl_session_cache"),
        toml: toml(9, "tls.session_cache"),
        kind: Kind::SessionCache,
        help: &["enable the server-side TLS session cache"],
        stats: tls_stat!(38, "ssl_session_cache", |s| if s.session_cache { "yes" } else { "no" }
            .into()),
        ..ROW
    };
    /// `-o ssl_kernel_tls` / `[tls] kernel`: kernel TLS after the handshake: auto, on, off.
    ssl_kernel_tls: String = "auto".into() => Row {
        ext: Some("ssl_kernel_tls"),
        toml: toml(11, "tls.kernel"),
        kind: Kind::KernelTls,
        help: &[
            "kernel TLS offload after the handshake: auto (the",
            "default; bare switch too), on (refuse to start",
            "without it) or off",
        ],
        stats: tls_stat!(39, "ssl_kernel_tls", |s| s.kernel_tls.name().into()),
        ..ROW
    };
    /// `-o ssl_ktls_record_limit` / `[tls] ktls_record_limit` (tessera): records sent under
    /// one kTLS key before a rekey or close; 0 is the cipher's limit.
    ssl_ktls_record_limit: String = "0".into() => Row {
        ext: Some("ssl_ktls_record_limit"),
        toml: toml(12, "tls.ktls_record_limit"),
        kind: Kind::Text,
        help: &[
            "(tessera) records sent under one kTLS key before",
            "a rekey or close (default: {default}, the cipher's limit)",
        ],
        stats: tls_stat!(40, "ssl_ktls_record_limit", |s| s.ktls_record_limit.to_string()),
        ..ROW
    };
    /// `-o ssl_min_version` / `[tls] min_version`: tlsv1.2 or tlsv1.3.
    ssl_min_version: String = "tlsv1.2".into() => Row {
        ext: Some("ssl_min_version"),
        toml: toml(6, "tls.min_version"),
        kind: Kind::Text,
        help: &["minimum protocol version (default: {default})"],
        stats: tls_stat!(41, "ssl_min_version", |s| s.min_version_name().into()),
        ..ROW
    };
    /// `-o ssl_handshake_timeout` / `[tls] handshake_timeout` (tessera): seconds a
    /// handshake may take (1 to 3600).
    ssl_handshake_timeout: String = "10".into() => Row {
        ext: Some("ssl_handshake_timeout"),
        toml: toml(13, "tls.handshake_timeout"),
        kind: Kind::Text,
        help: &["seconds a TLS handshake may take", "(default: {default})"],
        stats: tls_stat!(42, "ssl_handshake_timeout", |s| s
            .handshake_timeout
            .as_secs()
            .to_string()),
        ..ROW
    };
}

/// How `Config` reads a row's field (for `stats settings` and `-h` defaults).
pub(super) fn default_value(entry: &Entry) -> Option<super::schema::Value> {
    entry.get.map(|get| get(&Config::default()))
}
