//! kTLS end-to-end check, run inside a VM whose kernel has kTLS (tools/ktls-vm/run.sh).
//!
//! Starts tessera with `ssl_kernel_tls=on` and drives it with rustls clients (userspace
//! record layer: an independent implementation of what the kernel must produce) over
//! loopback: every cipher suite under TLS 1.2 and 1.3, a 1 MiB value, pipelined requests,
//! close_notify, a fatal alert from the client, a corrupted record, a client KeyUpdate and
//! the record limit. kTLS being in use is asserted through `stats` and `stats conns`.
//!
//! With `--no-ktls` (a kernel built without CONFIG_TLS, such as Debian bullseye's 5.10) it
//! checks instead that `ssl_kernel_tls=on` refuses to start, and that a server with the
//! default `auto` serves plaintext and userspace TLS 1.2 and 1.3. Either way it prints the
//! io_uring features the server's rings fell back from, and checks that a kernel older
//! than 5.19 logs the COOP_TASKRUN and provided-buffer ring fallbacks.
//!
//! Usage: ktls-check TESSERA_BINARY [--bench TESSERA_BENCH_BINARY SECONDS | --no-ktls]
//! Prints PASS/FAIL lines; exits 0 only when everything passed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::ring::cipher_suite as cs;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedCipherSuite};

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A tessera process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(bin: &Path, dir: &Path, name: &str, extra: &[&str]) -> Result<Server, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let log = dir.join(format!("{name}.log"));
        let err = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        let mut args: Vec<String> = vec![
            "-Z".into(),
            "-o".into(),
            format!(
                "ssl_chain_cert={},ssl_key={}",
                cert.display(),
                key.display()
            ),
            "-l".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-I".into(),
            "2m".into(),
            "-vv".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut s = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(format!(
                    "{name} exited at startup ({status}): {}",
                    s.log_text()
                ));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{name} did not listen within 60 s: {}",
            s.log_text()
        ))
    }

    fn log_text(&mut self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Checks {
    passed: usize,
    failed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            self.passed += 1;
            println!("PASS: {what}");
        } else {
            self.failed += 1;
            println!("FAIL: {what}");
        }
    }

    fn result<T>(&mut self, r: Result<T, String>, what: &str) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(true, what);
                Some(v)
            }
            Err(e) => {
                self.check(false, &format!("{what}: {e}"));
                None
            }
        }
    }
}

fn client_config(
    dir: &Path,
    suite: SupportedCipherSuite,
    extract: bool,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(dir.join("ca.pem"))
        .map_err(|e| e.to_string())?
    {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![suite];
    let version = match suite {
        SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
        SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
    };
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[version])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.enable_secret_extraction = extract;
    Ok(Arc::new(cfg))
}

fn connect(port: u16, cfg: Arc<ClientConfig>) -> Result<Tls, String> {
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    Ok(tls)
}

/// Reads until the reply ends with `end` (bounded by the socket timeout and 8 MiB).
fn read_until(tls: &mut Tls, end: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !out.ends_with(end) {
        if out.len() > 8 << 20 {
            return Err("reply too long".into());
        }
        match tls.read(&mut buf) {
            Ok(0) => return Err(format!("connection closed after {} bytes", out.len())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(out)
}

fn request(tls: &mut Tls, req: &[u8], end: &[u8]) -> Result<Vec<u8>, String> {
    tls.write_all(req).map_err(|e| format!("write: {e}"))?;
    tls.flush().map_err(|e| format!("flush: {e}"))?;
    read_until(tls, end)
}

fn stats(tls: &mut Tls, which: &str) -> Result<HashMap<String, String>, String> {
    let reply = request(tls, format!("stats{which}\r\n").as_bytes(), b"END\r\n")?;
    Ok(String::from_utf8_lossy(&reply)
        .lines()
        .filter_map(|l| {
            let mut it = l.strip_prefix("STAT ")?.splitn(2, ' ');
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect())
}

fn stat_num(m: &HashMap<String, String>, k: &str) -> i64 {
    m.get(k).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

/// What a clean close looks like to a rustls client: close_notify, then EOF.
fn expect_clean_close(tls: &mut Tls) -> Result<(), String> {
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) => return Err(format!("not a clean close: {e}")),
        }
    }
    Err("still sending".into())
}

fn suite_tests(c: &mut Checks, srv: &Server, dir: &Path, suite: SupportedCipherSuite) {
    let name = format!("{:?}", suite.suite());
    let Some(cfg) = c.result(client_config(dir, suite, false), &format!("{name}: config")) else {
        return;
    };
    let Some(mut tls) = c.result(connect(srv.port, cfg), &format!("{name}: handshake")) else {
        return;
    };
    c.check(
        tls.conn.negotiated_cipher_suite().map(|s| s.suite()) == Some(suite.suite()),
        &format!("{name}: negotiated"),
    );
    let r = request(&mut tls, b"set k 0 0 5\r\nhello\r\nget k\r\n", b"END\r\n");
    c.check(
        r.as_deref() == Ok(b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n".as_slice()),
        &format!("{name}: set/get ({r:?})"),
    );
    // kTLS must be what serves this connection.
    match stats(&mut tls, "") {
        Ok(m) => c.check(
            stat_num(&m, "ssl_ktls_connections") >= 1
                && stat_num(&m, "ssl_userspace_connections") == 0
                && stat_num(&m, "ssl_ktls_fallbacks") == 0,
            &format!(
                "{name}: stats ssl_ktls_connections={} ssl_userspace_connections={} \
                 ssl_ktls_fallbacks={}",
                stat_num(&m, "ssl_ktls_connections"),
                stat_num(&m, "ssl_userspace_connections"),
                stat_num(&m, "ssl_ktls_fallbacks")
            ),
        ),
        Err(e) => c.check(false, &format!("{name}: stats: {e}")),
    }
    let want = format!(
        "ktls/{}/{name}",
        if name.starts_with("TLS13") {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        }
    );
    match stats(&mut tls, " conns") {
        Ok(m) => c.check(
            m.iter().any(|(k, v)| k.ends_with(":tls") && *v == want),
            &format!("{name}: stats conns shows {want}"),
        ),
        Err(e) => c.check(false, &format!("{name}: stats conns: {e}")),
    }
    // A 1 MiB value, out and back.
    let big: Vec<u8> = (0..1usize << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = format!("set big 0 0 {}\r\n", big.len()).into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\nget big\r\n");
    let mut want_reply = format!("STORED\r\nVALUE big 0 {}\r\n", big.len()).into_bytes();
    want_reply.extend_from_slice(&big);
    want_reply.extend_from_slice(b"\r\nEND\r\n");
    let r = request(&mut tls, &req, b"\r\nEND\r\n");
    c.check(
        r.as_ref().is_ok_and(|r| *r == want_reply),
        &format!(
            "{name}: 1 MiB value round trip ({})",
            r.as_ref()
                .map(|r| format!("{} bytes", r.len()))
                .unwrap_or_else(|e| e.clone())
        ),
    );
    // 300 pipelined sets and gets in one write.
    let mut req = Vec::new();
    let mut want_reply = Vec::new();
    for i in 0..300 {
        let v = format!("value-{i}-{}", "x".repeat(i % 50));
        req.extend_from_slice(format!("set p{i} {i} 0 {}\r\n{v}\r\n", v.len()).as_bytes());
        want_reply.extend_from_slice(b"STORED\r\n");
    }
    for i in 0..300 {
        let v = format!("value-{i}-{}", "x".repeat(i % 50));
        req.extend_from_slice(format!("get p{i}\r\n").as_bytes());
        want_reply
            .extend_from_slice(format!("VALUE p{i} {i} {}\r\n{v}\r\nEND\r\n", v.len()).as_bytes());
    }
    let r = request(
        &mut tls,
        &req,
        format!("value-299-{}\r\nEND\r\n", "x".repeat(299 % 50)).as_bytes(),
    );
    c.check(
        r.as_ref().is_ok_and(|r| *r == want_reply),
        &format!("{name}: 600 pipelined requests answered in order"),
    );
    // close_notify is answered with close_notify.
    tls.conn.send_close_notify();
    let sent = tls.conn.complete_io(&mut tls.sock).map(|_| ());
    c.check(sent.is_ok(), &format!("{name}: close_notify sent"));
    let r = expect_clean_close(&mut tls);
    c.check(r.is_ok(), &format!("{name}: close_notify answered ({r:?})"));
}

/// A client whose TX moves into the kernel after one request, so it can send an alert.
fn fatal_alert(c: &mut Checks, srv: &Server, dir: &Path, suite: SupportedCipherSuite) {
    let name = format!("{:?}", suite.suite());
    let Ok(cfg) = client_config(dir, suite, true) else {
        c.check(false, "alert: config");
        return;
    };
    let Some(mut tls) = c.result(connect(srv.port, cfg), &format!("{name} alert: handshake"))
    else {
        return;
    };
    let before = request(&mut tls, b"stats\r\n", b"END\r\n").map(|r| {
        String::from_utf8_lossy(&r)
            .lines()
            .find_map(|l| l.strip_prefix("STAT ssl_proto_errors ").map(str::to_string))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(-1)
    });
    let version = tls.conn.protocol_version();
    let StreamOwned { conn, sock } = tls;
    #[allow(deprecated)]
    let secrets = conn.dangerous_extract_secrets();
    let sent = match (secrets, version) {
        (Ok(s), Some(v)) => tessera::tls::ktls::install_tx(sock.as_raw_fd(), v, s.tx.0, &s.tx.1)
            .and_then(|()| tessera::tls::ktls::send_control(sock.as_raw_fd(), 21, &[2, 40]))
            .map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, None) => Err("no version".into()),
    };
    c.check(
        sent.is_ok(),
        &format!("{name}: client sent a fatal alert ({sent:?})"),
    );
    // The server closes without another word.
    let mut sock = sock;
    let mut buf = [0u8; 4096];
    let mut closed = false;
    for _ in 0..64 {
        match sock.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    c.check(
        closed,
        &format!("{name}: server closed after the fatal alert"),
    );
    let after = client_config(dir, suite, false)
        .and_then(|cfg| connect(srv.port, cfg))
        .and_then(|mut t| stats(&mut t, ""))
        .map(|m| stat_num(&m, "ssl_proto_errors"));
    c.check(
        matches!((&before, &after), (Ok(b), Ok(a)) if *a == *b + 1),
        &format!("{name}: ssl_proto_errors counted the alert ({before:?} -> {after:?})"),
    );
}

/// A verified connection with one suite, or a failed check saying what it was for.
fn open(
    c: &mut Checks,
    srv: &Server,
    dir: &Path,
    suite: SupportedCipherSuite,
    what: &str,
) -> Option<Tls> {
    let r = client_config(dir, suite, false).and_then(|cfg| connect(srv.port, cfg));
    if let Err(e) = &r {
        c.check(false, &format!("{what}: handshake: {e}"));
    }
    r.ok()
}

/// Garbage in place of a record: the kernel fails to decrypt it, the server answers with
/// bad_record_mac and closes.
fn bad_record(c: &mut Checks, srv: &Server, dir: &Path, suite: SupportedCipherSuite) {
    let name = format!("{:?}", suite.suite());
    let Some(mut tls) = open(c, srv, dir, suite, &format!("{name} bad record")) else {
        return;
    };
    let ok = request(&mut tls, b"version\r\n", b"\r\n");
    c.check(ok.is_ok(), &format!("{name} bad record: first request"));
    let mut junk = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    junk.extend((0..0x40).map(|i| (i * 7 + 3) as u8));
    let _ = tls.sock.write_all(&junk);
    let mut buf = [0u8; 256];
    let r = tls.read(&mut buf);
    let got = format!("{r:?}");
    c.check(
        got.contains("BadRecordMac"),
        &format!("{name}: corrupted record answered with bad_record_mac ({got})"),
    );
}

/// TLS 1.3 KeyUpdate from the client: followed where the kernel can rekey RX, else a clean
/// close.
fn key_update(c: &mut Checks, srv: &Server, dir: &Path, rekey: bool) {
    let Some(mut tls) = open(c, srv, dir, cs::TLS13_AES_128_GCM_SHA256, "key update") else {
        return;
    };
    let ok = request(&mut tls, b"version\r\n", b"\r\n");
    c.check(ok.is_ok(), "key update: first request");
    if let Err(e) = tls.conn.refresh_traffic_keys() {
        c.check(false, &format!("key update: rustls refused: {e}"));
        return;
    }
    let _ = tls.write_all(b"version\r\n");
    let _ = tls.flush();
    if rekey {
        let r = read_until(&mut tls, b"\r\n");
        c.check(
            r.as_ref().is_ok_and(|r| r.starts_with(b"VERSION")),
            &format!("key update followed (kernel rekeys RX): {r:?}"),
        );
    } else {
        let r = expect_clean_close(&mut tls);
        c.check(
            r.is_ok(),
            &format!("key update on a kernel without RX rekey: clean close ({r:?})"),
        );
    }
}

/// With ssl_ktls_record_limit=64 the server ends the connection cleanly before 64 records.
fn record_limit(c: &mut Checks, srv: &Server, dir: &Path) {
    let Some(mut tls) = open(c, srv, dir, cs::TLS13_AES_128_GCM_SHA256, "record limit") else {
        return;
    };
    let mut replies = 0;
    let mut end = String::from("no close");
    for _ in 0..100 {
        if tls
            .write_all(b"get nothing\r\n")
            .and_then(|()| tls.flush())
            .is_err()
        {
            end = "write failed".into();
            break;
        }
        match read_until(&mut tls, b"END\r\n") {
            Ok(_) => replies += 1,
            Err(e) if e.starts_with("connection closed after 0") => {
                end = "close_notify".into();
                break;
            }
            Err(e) => {
                end = e;
                break;
            }
        }
    }
    c.check(
        end == "close_notify" && (32..64).contains(&replies),
        &format!("record limit 64: {replies} replies, then {end}"),
    );
}

fn run_bench(c: &mut Checks, tessera: &Path, bench: &Path, secs: &str, dir: &Path) {
    let on = Server::start(
        tessera,
        dir,
        "bench-ktls",
        &["-o", "ssl_kernel_tls=on", "-t", "1"],
    );
    let off = Server::start(
        tessera,
        dir,
        "bench-user",
        &["-o", "ssl_kernel_tls=off", "-t", "1"],
    );
    let (Ok(on), Ok(off)) = (on, off) else {
        c.check(false, "bench servers start");
        return;
    };
    let ca = dir.join("ca.pem");
    for (label, extra) in [
        ("pipeline 1", vec!["--pipeline", "1"]),
        ("pipeline 16", vec!["--pipeline", "16"]),
        (
            "4 KiB values",
            vec!["--pipeline", "1", "--value-size", "4096"],
        ),
    ] {
        println!("== tessera-bench --compare kTLS vs userspace TLS: {label} ==");
        let ktls = format!("ktls=tls://127.0.0.1:{}", on.port);
        let user = format!("rustls=tls://127.0.0.1:{}", off.port);
        let mut args = vec![
            "--compare",
            "--target",
            &ktls,
            "--target",
            &user,
            "--tls-cacert",
        ];
        let ca_s = ca.display().to_string();
        args.push(&ca_s);
        args.extend([
            "--tls-sni",
            "localhost",
            "--time",
            secs,
            "--rounds",
            "3",
            "-c",
            "8",
            "--preload",
            "--keys",
            "10000",
            "-q",
        ]);
        args.extend(extra.iter().copied());
        let status = Command::new(bench).args(&args).status();
        c.check(
            status.is_ok_and(|s| s.success()),
            &format!("tessera-bench {label}"),
        );
    }
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// `GET /metrics` from the admin listener.
fn scrape(port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => Ok(body.to_string()),
        _ => Err(format!(
            "unexpected response: {}",
            &out[..out.len().min(200)]
        )),
    }
}

/// The admin listener's metrics say what the kernel does: kTLS available, every
/// connection moved to it (no fallbacks), handshakes counted.
fn admin_metrics(c: &mut Checks, port: u16) {
    let Some(m) = c.result(scrape(port), "admin listener serves /metrics") else {
        return;
    };
    let value = |name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    c.check(
        value("tessera_tls_kernel_available") == Some(1.0),
        "metrics: tessera_tls_kernel_available 1",
    );
    c.check(
        m.contains("tessera_tls_info{kernel_tls=\"on\",kernel=\"available on Linux "),
        "metrics: tessera_tls_info says kernel_tls on, kTLS available",
    );
    c.check(
        value("tessera_ssl_ktls_fallbacks_total") == Some(0.0),
        "metrics: no kTLS fallbacks",
    );
    c.check(
        value("tessera_ssl_handshakes_total").is_some_and(|v| v >= 6.0),
        "metrics: the handshakes are counted",
    );
    c.check(value("tessera_up") == Some(1.0), "metrics: tessera_up 1");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(tessera) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: ktls-check TESSERA_BINARY [--bench TESSERA_BENCH SECONDS]");
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("ktls-check-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut c = Checks {
        passed: 0,
        failed: 0,
    };
    let certs = Command::new(&tessera)
        .args(["certs", "--out"])
        .arg(&dir)
        .output();
    c.check(
        certs.as_ref().is_ok_and(|o| o.status.success()),
        "tessera certs",
    );
    let support = tessera::tls::ktls::probe();
    println!("kernel: {}", support.describe());
    if args.get(2).map(String::as_str) == Some("--no-ktls") {
        c.check(
            support.unavailable.is_some(),
            "kernel has no kTLS (as expected)",
        );
        without_ktls(&mut c, &tessera, &dir);
    } else if args.get(2).map(String::as_str) == Some("--bench") {
        c.check(support.unavailable.is_none(), "kernel has kTLS");
        let bench = PathBuf::from(args.get(3).cloned().unwrap_or_default());
        let secs = args.get(4).cloned().unwrap_or_else(|| "5s".into());
        run_bench(&mut c, &tessera, &bench, &secs, &dir);
    } else {
        c.check(support.unavailable.is_none(), "kernel has kTLS");
        let admin_port = free_port();
        let admin = format!("admin_listen={admin_port}");
        match Server::start(
            &tessera,
            &dir,
            "ktls-on",
            &["-o", "ssl_kernel_tls=on", "-t", "2", "-o", &admin],
        ) {
            Ok(mut srv) => {
                let suites = [
                    cs::TLS13_AES_128_GCM_SHA256,
                    cs::TLS13_AES_256_GCM_SHA384,
                    cs::TLS13_CHACHA20_POLY1305_SHA256,
                    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                ];
                for s in suites {
                    suite_tests(&mut c, &srv, &dir, s);
                }
                fatal_alert(&mut c, &srv, &dir, cs::TLS13_AES_256_GCM_SHA384);
                fatal_alert(
                    &mut c,
                    &srv,
                    &dir,
                    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                );
                bad_record(&mut c, &srv, &dir, cs::TLS13_CHACHA20_POLY1305_SHA256);
                bad_record(
                    &mut c,
                    &srv,
                    &dir,
                    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                );
                key_update(&mut c, &srv, &dir, support.rekey);
                admin_metrics(&mut c, admin_port);
                let log = srv.log_text();
                ring_fallbacks(&mut c, &log);
                c.check(
                    log.contains("records: kernel (kTLS)"),
                    "server log says the connections use kTLS",
                );
                if c.failed > 0 {
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = &lines[lines.len().saturating_sub(200)..];
                    println!("---- server log (last 200 lines) ----\n{}", tail.join("\n"));
                }
            }
            Err(e) => c.check(false, &format!("server with ssl_kernel_tls=on starts: {e}")),
        }
        match Server::start(
            &tessera,
            &dir,
            "ktls-limit",
            &[
                "-o",
                "ssl_kernel_tls=on,ssl_ktls_record_limit=64",
                "-t",
                "1",
            ],
        ) {
            Ok(srv) => record_limit(&mut c, &srv, &dir),
            Err(e) => c.check(false, &format!("server with a record limit starts: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("RESULT: {} passed, {} failed", c.passed, c.failed);
    std::process::exit(if c.failed == 0 { 0 } else { 1 });
}

/// Prints the io_uring fallbacks the server logged, and checks that a kernel without
/// COOP_TASKRUN and provided-buffer rings (< 5.19) says so, and a newer one does not.
fn ring_fallbacks(c: &mut Checks, log: &str) {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("io_uring:")).collect();
    println!(
        "ring fallbacks: {}",
        if lines.is_empty() {
            "none".to_string()
        } else {
            lines.join(" | ")
        }
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u32>().ok());
    let old = (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (5, 19);
    // Before 5.19 socket receives also take their buffers from IORING_OP_PROVIDE_BUFFERS
    // groups (the protocol smoke then runs on that path).
    for (feature, what) in [
        ("COOP_TASKRUN (Linux 5.19)", "COOP_TASKRUN"),
        ("provided-buffer rings (Linux 5.19)", "provided-buffer ring"),
    ] {
        let logged = lines
            .iter()
            .any(|l| l.contains(&format!("{feature} not available")));
        c.check(
            logged == old,
            &format!(
                "{what} fallback logged only before 5.19 (kernel {})",
                release.trim()
            ),
        );
    }
}

/// A plaintext protocol smoke on a fresh connection: text and meta commands, then 200
/// pipelined sets and one multi-get, all written at once.
fn plain_set_get(port: u16) -> Result<(), String> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = b"set p 0 0 5\r\nplain\r\nget p\r\nset n 0 0 1\r\n1\r\nincr n 5\r\n\
                    mg n v\r\ndelete n\r\nget n\r\n"
        .to_vec();
    let mut want = b"STORED\r\nVALUE p 0 5\r\nplain\r\nEND\r\nSTORED\r\n6\r\nVA 1\r\n6\r\n\
                     DELETED\r\nEND\r\n"
        .to_vec();
    let mut get = String::from("get");
    let mut values = String::new();
    for i in 0..200 {
        req.extend_from_slice(
            format!("set k{i} 0 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
        want.extend_from_slice(b"STORED\r\n");
        get.push_str(&format!(" k{i}"));
        values.push_str(&format!("VALUE k{i} 0 {}\r\n{i}\r\n", i.to_string().len()));
    }
    req.extend_from_slice(format!("{get}\r\n").as_bytes());
    want.extend_from_slice(format!("{values}END\r\n").as_bytes());
    sock.write_all(&req).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < want.len() {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    if got == want {
        Ok(())
    } else {
        Err(format!("reply {:?}", String::from_utf8_lossy(&got)))
    }
}

/// A kernel without kTLS: `on` refuses to start, `auto` serves plaintext and userspace TLS.
fn without_ktls(c: &mut Checks, tessera: &Path, dir: &Path) {
    match Server::start(
        tessera,
        dir,
        "ktls-on",
        &["-o", "ssl_kernel_tls=on", "-t", "1"],
    ) {
        Ok(_) => c.check(false, "ssl_kernel_tls=on refuses to start without kTLS"),
        Err(e) => c.check(
            e.contains("kernel TLS is not usable"),
            &format!(
                "ssl_kernel_tls=on refuses to start without kTLS ({})",
                e.trim()
            ),
        ),
    }
    let plain = free_port();
    let listen = format!("127.0.0.1,notls:127.0.0.1:{plain}");
    let mut srv = match Server::start(tessera, dir, "auto", &["-t", "2", "-l", &listen]) {
        Ok(s) => s,
        Err(e) => return c.check(false, &format!("server starts: {e}")),
    };
    c.check(true, "server starts");
    c.result(plain_set_get(plain), "plaintext protocol smoke");
    let tls = srv.port;
    for suite in [
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ] {
        let name = format!("{:?}", suite.suite());
        let r = client_config(dir, suite, false).and_then(|cfg| {
            let mut t = connect(tls, cfg)?;
            let req = b"set t 0 0 3\r\ntls\r\nget t\r\n";
            let reply = request(&mut t, req, b"END\r\n")?;
            let s = tessera_stats(&mut t)?;
            (reply == b"STORED\r\nVALUE t 0 3\r\ntls\r\nEND\r\n")
                .then_some(s)
                .ok_or_else(|| format!("reply {:?}", String::from_utf8_lossy(&reply)))
        });
        c.result(r, &format!("{name}: userspace TLS set/get"));
    }
    let log = srv.log_text();
    ring_fallbacks(c, &log);
}

fn tessera_stats(t: &mut Tls) -> Result<usize, String> {
    Ok(stats(t, "")?.len())
}
