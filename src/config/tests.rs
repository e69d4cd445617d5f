//! The configuration's unit tests: flags, `-o`, the file, listeners, TLS options, `-h`,
//! and the settings table's own consistency.

use std::path::PathBuf;

use super::build::build;
use super::file::parse_toml;
use super::schema::{Kind, Value};
use super::table::Layer;
use super::*;

/// A listen list as text, the way `stats settings` shows it.
fn texts(l: &[Listener]) -> Vec<String> {
    l.iter().map(ToString::to_string).collect()
}

/// An optional setting's text.
fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref()
}

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
        Err(e) => e.to_string(),
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
        let dir =
            std::env::temp_dir().join(format!("tessera-config-test-{}-{tag}", std::process::id()));
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
    assert!(Config::default().validate().is_ok());
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
    assert_eq!(opt(&c.ssl_chain_cert), Some("/c.pem"));
    assert_eq!(opt(&c.ssl_key), Some("/k.pem"));
    assert!(c.ssl_session_cache);
    assert!(c.warnings.is_empty());
    // A later ssl key replaces the earlier one in place.
    let c = run(&["-o", "ssl_key=/a,ssl_ciphers=X", "-o", "ssl_key=/b"]);
    assert_eq!(opt(&c.ssl_key), Some("/b"));
    assert_eq!(opt(&c.ssl_ciphers), Some("X"));
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
    assert_eq!(texts(&run(&[]).listen), ["127.0.0.1"]);
    assert_eq!(
        run(&[
            "-l",
            "10.0.0.1,10.0.0.2:11300",
            "-l",
            "[::1]:11211",
            "-l",
            "::1"
        ])
        .listen
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2:11300", "[::1]:11211", "::1"]
    );
    let c = run(&["--listen=notls:127.0.0.1:5000,mtls:[::1],permissive:localhost"]);
    assert_eq!(
        texts(&c.listen),
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
            .map(|v| v.into_iter().map(|(m, _)| m).collect::<Vec<_>>())
            .ok(),
        Some(vec![
            ListenMode::NoTls,
            ListenMode::Default,
            ListenMode::Mtls
        ])
    );
    assert_eq!(
        c.listen_addrs().ok(),
        Some(vec![
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
    assert_eq!(texts(&c.listen), ["10.1.1.1", "[::1]:7"]);
    assert_eq!(c.threads, 2);
    assert_eq!(c.item_size_max, 4 << 20);
    assert_eq!(c.verbose, 1);
    assert_eq!(c.unix_mask, 0o600);
    assert!(c.tls_enabled);
    assert_eq!(opt(&c.ssl_chain_cert), Some("/c.pem"));
    assert_eq!(c.ssl_verify_mode, "2");
    assert_eq!(c.ssl_kernel_tls, "on");
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
        assert_eq!(texts(&c.listen), ["1.1.1.1"]);
        assert_eq!(c.verbose, 2);
        assert_eq!(c.memory_limit_mb, 512);
    }
    let c = run(&["--config", f.path(), "-o", "ssl_chain_cert=/d.pem"]);
    assert_eq!(opt(&c.ssl_chain_cert), Some("/d.pem"));
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
    assert_eq!(texts(&c.listen), ["1.2.3.4", "5.6.7.8"]);
    assert_eq!(c.item_size_max, 2048);
    assert_eq!(c.read_buf_max, 8 << 20);
    assert_eq!(c.udp_port, 0);
    assert!(!c.ssl_session_cache);
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
    assert!(!build(Some(file), cli).expect("valid").ssl_session_cache);
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
    extended::parse("cluster_config_set=off,admin_listen=[::1]:0", &mut cli).expect("parses");
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
        assert!(
            e.to_string().starts_with(&format!("t.toml: {want}")),
            "{toml}: {e}"
        );
    }
    assert!(fail(&["-o", "cluster_config_set=maybe"]).contains("'maybe' is not on/off"));
    assert!(fail(&["-o", "admin_listen"]).contains("missing value"));
    assert!(fail(&["-o", "admin_listen=70000"]).contains("is not PORT"));
}

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[test]
fn default_toml_is_the_default() {
    let layer = parse_toml(DEFAULT_TOML, "config/default.toml").expect("default.toml parses");
    let mut c = build(Some(layer), Layer::default()).expect("default.toml is valid");
    // Machine-dependent, so commented out in the file.
    c.threads = Config::default().threads;
    assert_eq!(c, Config::default());
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
    // Every key of the settings table, in the section its table is.
    let mut counts = [0; 4];
    for t in table::TABLE.iter().filter_map(|e| e.row.toml) {
        let (section, key) = t.split();
        let (i, text) = match section {
            "" => (0, top),
            "tls" => (1, tls),
            "cluster" => (2, cluster),
            "admin" => (3, admin),
            other => panic!("the table has a key in an unknown section [{other}]"),
        };
        counts[i] += 1;
        assert!(has(text, key), "config/default.toml lacks `{}`", t.path);
    }
    assert!(counts[0] > 15 && counts[1] == 13, "{counts:?}");
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
            let e = e.to_string();
            assert!(!e.is_empty() && !e.contains('\n'), "{a:?}: {e}");
        }
    }
    assert_eq!(run(&["-D", "é"]).prefix_delimiter, 'é');
    assert_eq!(run(&["-o", ",,,"]), Config::default());
}

#[test]
fn listen_entry_split() {
    let l = Listener::parse("-l", "notls:mtls:[::1]:9").expect("parses");
    assert_eq!(
        (&l.host, l.port),
        (&Host::Ip("::1".parse().expect("ip")), Some(9))
    );
    assert_eq!(
        l.mode(true).map_err(|e| e.to_string()),
        Err("listen: 'notls:mtls:[::1]:9' combines prefixes that contradict each other".into())
    );
    let l = Listener::parse("-l", "host.example:80").expect("parses");
    assert_eq!(
        (&l.host, l.port),
        (&Host::Name("host.example".into()), Some(80))
    );
    assert_eq!(l.mode(false).ok(), Some(ListenMode::Default));
    let l = Listener::parse("-l", "permissive:h").expect("parses");
    assert_eq!(
        l.mode(false).map_err(|e| e.to_string()),
        Err("listen: 'permissive:h' is a TLS listener, but TLS is off (add -Z)".into())
    );
}

#[test]
fn validate_catches_hand_built_configs() {
    let c = Config {
        threads: 0,
        ..Config::default()
    };
    assert_eq!(
        c.validate().map_err(|e| e.to_string()),
        Err("-t: 0 is out of range (1 to 1024)".to_string())
    );
    let mut c = Config::default();
    c.listen.clear();
    assert_eq!(
        c.validate().map_err(|e| e.to_string()),
        Err("nothing to listen on: give -l or -s".to_string())
    );
    c.unix_socket = Some(PathBuf::from("/tmp/s"));
    assert!(c.validate().is_ok());
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
    assert_eq!(opt(&tls.ssl_chain_cert), Some("certs/server.pem"));
    assert!(tls.ssl_session_cache);
    assert_eq!(tls.ssl_handshake_timeout, "10");
    let mtls = run(&["--config", &format!("{root}/config/mtls.toml")]);
    assert_eq!(mtls.listeners().expect("listeners")[0].0, ListenMode::Mtls);
    assert_eq!(opt(&mtls.ssl_ca_cert), Some("certs/ca.pem"));
    assert_eq!(mtls.ssl_verify_mode, "2");
}

/// Every row that has a field takes what its kind parses (a sample at each end of its
/// range), and the defaults pass validation.
#[test]
fn every_row_takes_its_kind() {
    for e in table::TABLE {
        let Some(set) = e.set else { continue };
        let samples: Vec<Value> = match e.row.kind {
            Kind::Num(lo, hi) | Kind::Size(lo, hi) => vec![Value::Num(lo), Value::Num(hi)],
            Kind::Mask => vec![Value::Num(0), Value::Num(0o777)],
            Kind::Path => vec![Value::Path("/x".into())],
            Kind::Char => vec![Value::Char('/')],
            Kind::Switch | Kind::OnOff | Kind::SessionCache => vec![Value::Bool(true)],
            Kind::Udp | Kind::Verbose => vec![Value::Num(0), Value::Num(255)],
            Kind::Listen => vec![Value::Listen(Vec::new())],
            Kind::AdminAddr => vec![Value::Addr("127.0.0.1:1".parse().expect("addr"))],
            Kind::Text | Kind::KernelTls => vec![Value::Text("x".into())],
            Kind::ClusterNodes => vec![Value::Cluster(crate::cluster::ClusterConfig {
                version: 1,
                nodes: Vec::new(),
            })],
            // Kinds that never set their field (`-C` keeps `use_cas`), and `--config`,
            // which the reader sets.
            _ => Vec::new(),
        };
        for v in samples {
            assert!(set(&mut Layer::default(), v.clone()), "{}: {v:?}", e.name);
        }
    }
    assert!(Config::default().validate().is_ok());
}

/// `stats settings` positions are 1..=N without gaps or repeats, and so are each file
/// table's key positions; each flag, `-o` key and file key belongs to one row.
#[test]
fn table_orders_are_complete() {
    let mut ranks: Vec<u8> = table::TABLE
        .iter()
        .filter_map(|e| e.row.stats.map(|s| s.rank))
        .collect();
    ranks.sort_unstable();
    assert_eq!(ranks, (1..=ranks.len() as u8).collect::<Vec<_>>());
    for section in ["", "tls", "cluster", "admin"] {
        let mut ranks: Vec<u8> = table::TABLE
            .iter()
            .filter_map(|e| e.row.toml)
            .filter(|t| t.split().0 == section)
            .map(|t| t.rank)
            .collect();
        ranks.sort_unstable();
        let want: Vec<u8> = (1..=ranks.len() as u8).collect();
        assert_eq!(ranks, want, "[{section}]");
    }
    let mut seen = std::collections::HashSet::new();
    for e in table::TABLE {
        let f = e.row.flag;
        for name in [
            f.and_then(|f| f.short).map(|c| format!("-{c}")),
            f.and_then(|f| f.long).map(|l| format!("--{l}")),
            f.and_then(|f| f.alias).map(|l| format!("--{l}")),
            e.row.ext.map(|k| format!("-o {k}")),
            e.row.toml.map(|t| t.path.to_string()),
        ]
        .into_iter()
        .flatten()
        {
            assert!(seen.insert(name.clone()), "{name} is in two rows");
        }
    }
}

/// `stats settings` without TLS starts with memcached's lines, in memcached's order (the
/// ranks in the table); tessera's own come after them.
#[test]
fn stats_settings_lines() {
    let mut lines = Vec::new();
    let live = |l: Live| format!("{l:?}");
    Config::default().stats_settings(None, live, |n, v| lines.push(format!("{n} {v}")));
    let names: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        names[..30],
        [
            "maxbytes",
            "maxconns",
            "tcpport",
            "udpport",
            "inter",
            "verbosity",
            "evictions",
            "num_threads",
            "stat_key_prefix",
            "detail_enabled",
            "reqs_per_event",
            "cas_enabled",
            "tcp_backlog",
            "binding_protocol",
            "auth_enabled_sasl",
            "auth_enabled_ascii",
            "item_size_max",
            "maxconns_fast",
            "flush_enabled",
            "hash_algorithm",
            "eviction_policy",
            "idle_timeout",
            "read_buf_max",
            "shard_queue",
            "shutdown_timeout",
            "cluster_config_set",
            "cluster_config_version",
            "cluster_nodes",
            "admin_listen",
            "ssl_enabled",
        ]
    );
    assert_eq!(lines[0], "maxbytes MaxBytes");
    assert_eq!(lines[2], "tcpport 11211");
    assert_eq!(lines[4], "inter 127.0.0.1");
    assert_eq!(lines[29], "ssl_enabled no");
}

#[test]
fn kernel_tls_modes() {
    assert_eq!(KtlsMode::parse(Some("required")), Ok(KtlsMode::On));
    assert_eq!(
        KtlsMode::parse(Some("maybe")).map_err(|e| e.to_string()),
        Err("ssl_kernel_tls: 'maybe' is not auto, on or off".into())
    );
}
