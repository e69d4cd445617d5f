//! Behaviour of a running `tessera` process: cross-shard forwarding with several executors
//! (at `-t 2`, 3 and 4: more executors than this machine's CPUs is allowed), eviction under
//! `-m`, expiry, the `-c` limit, idle timeouts, shutdown, and startup errors.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;

/// A deterministic pseudo-random sequence (no dependency, reproducible failures).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Many connections send pipelines that mix keys of every shard; each connection checks
/// every reply, in order, against its own model of its own keys.
fn cross_shard_pipelines_keep_order(threads: usize) {
    let server = ServerProc::start(&["-t", &threads.to_string()]);
    let mut handles = Vec::new();
    for conn in 0..12u64 {
        let port = server.port;
        handles.push(std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut rng = Rng(0x9E37_79B9 ^ ((conn + 1) * 0x1234_5678));
            let mut model: HashMap<String, Vec<u8>> = HashMap::new();
            for _round in 0..20 {
                let mut req = Vec::new();
                let mut expect = Vec::new();
                for _ in 0..40 {
                    let k = format!("c{conn}:k{}", rng.next() % 30);
                    match rng.next() % 5 {
                        0 | 1 => {
                            let v = format!("v{}", rng.next() % 1000).into_bytes();
                            req.extend_from_slice(
                                format!("set {k} 0 0 {}\r\n", v.len()).as_bytes(),
                            );
                            req.extend_from_slice(&v);
                            req.extend_from_slice(b"\r\n");
                            expect.extend_from_slice(b"STORED\r\n");
                            model.insert(k, v);
                        }
                        2 => {
                            req.extend_from_slice(format!("delete {k}\r\n").as_bytes());
                            expect.extend_from_slice(if model.remove(&k).is_some() {
                                b"DELETED\r\n".as_slice()
                            } else {
                                b"NOT_FOUND\r\n".as_slice()
                            });
                        }
                        _ => {
                            // a multi-get over several keys: scattered and gathered in order
                            let keys: Vec<String> = (0..4)
                                .map(|_| format!("c{conn}:k{}", rng.next() % 30))
                                .collect();
                            req.extend_from_slice(format!("get {}\r\n", keys.join(" ")).as_bytes());
                            for k in &keys {
                                if let Some(v) = model.get(k) {
                                    expect.extend_from_slice(
                                        format!("VALUE {k} 0 {}\r\n", v.len()).as_bytes(),
                                    );
                                    expect.extend_from_slice(v);
                                    expect.extend_from_slice(b"\r\n");
                                }
                            }
                            expect.extend_from_slice(b"END\r\n");
                        }
                    }
                }
                s.write_all(&req).unwrap();
                let got = read_exact_n(&mut s, expect.len()).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expect),
                    "connection {conn}"
                );
            }
        }));
    }
    for h in handles {
        h.join().expect("client thread");
    }
    assert!(server.stat("shard_forwarded_ops") > 0);
    assert!(server.stat("shard_forwarded_batches") > 0);
    assert_eq!(server.stat("threads"), threads as u64);
}
at_threads!(cross_shard_pipelines_keep_order: t2 = 2, t3 = 3, t4 = 4);

/// flush_all in the middle of a pipeline is a barrier on every connection's executor.
fn flush_all_is_a_pipeline_barrier(threads: usize) {
    let server = ServerProc::start(&["-t", &threads.to_string()]);
    for conn in 0..8 {
        let mut s = server.connect();
        let mut req = Vec::new();
        let mut expect = Vec::new();
        for i in 0..20 {
            req.extend_from_slice(format!("set b{conn}:{i} 0 0 1\r\nx\r\n").as_bytes());
            expect.extend_from_slice(b"STORED\r\n");
        }
        req.extend_from_slice(b"flush_all\r\n");
        expect.extend_from_slice(b"OK\r\n");
        let keys: Vec<String> = (0..20).map(|i| format!("b{conn}:{i}")).collect();
        req.extend_from_slice(format!("get {}\r\n", keys.join(" ")).as_bytes());
        expect.extend_from_slice(b"END\r\n");
        s.write_all(&req).unwrap();
        assert_eq!(read_exact_n(&mut s, expect.len()).unwrap(), expect);
    }
    assert_eq!(server.stat("threads"), threads as u64);
    assert!(server.stat("shard_forwarded_ops") > 0);
}
at_threads!(flush_all_is_a_pipeline_barrier: t2 = 2, t3 = 3, t4 = 4);

/// With `-m 2` and two shards, storing far more than fits evicts, keeps `bytes` within the
/// limit, and keeps the most recent items readable.
#[test]
fn eviction_under_memory_limit() {
    let server = ServerProc::start(&["-t", "2", "-m", "2"]);
    let mut s = server.connect();
    let value = vec![b'v'; 1000];
    let total = 6000;
    for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
        let mut req = Vec::new();
        for i in chunk {
            req.extend_from_slice(format!("set ev:{i} 0 0 {}\r\n", value.len()).as_bytes());
            req.extend_from_slice(&value);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req).unwrap();
        let got = read_exact_n(&mut s, chunk.len() * 8).unwrap();
        assert_eq!(got, b"STORED\r\n".repeat(chunk.len()));
    }
    let limit = server.stat("limit_maxbytes");
    assert_eq!(limit, 2 * 1024 * 1024);
    assert!(server.stat("bytes") <= limit, "bytes over -m");
    assert!(server.stat("evictions") > 0, "nothing was evicted");
    let items = server.stat("curr_items");
    assert!(items < total, "everything still stored");
    assert!(items > 1000, "the cache should be close to full: {items}");
    // the last item written must still be there
    s.write_all(format!("get ev:{}\r\n", total - 1).as_bytes())
        .unwrap();
    let got = read_until(&mut s, b"END\r\n", Duration::from_secs(5));
    assert!(got.starts_with(format!("VALUE ev:{} 0 1000\r\n", total - 1).as_bytes()));
}

/// `-M`: a full cache refuses new items instead of evicting.
#[test]
fn no_evictions_mode_answers_out_of_memory() {
    let server = ServerProc::start(&["-t", "1", "-m", "4", "-M"]);
    let mut s = server.connect();
    let value = vec![b'v'; 10_000];
    let mut oom = false;
    for i in 0..1000 {
        let mut req = format!("set m:{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        s.write_all(&req).unwrap();
        let got = read_until(&mut s, b"\r\n", Duration::from_secs(5));
        if got == b"SERVER_ERROR out of memory storing object\r\n" {
            oom = true;
            break;
        }
        assert_eq!(got, b"STORED\r\n");
    }
    assert!(oom, "never ran out of memory");
    assert_eq!(server.stat("evictions"), 0);
    // the first item is still there
    s.write_all(b"get m:0\r\n").unwrap();
    let got = read_until(&mut s, b"END\r\n", Duration::from_secs(5));
    assert!(got.starts_with(b"VALUE m:0 0 10000\r\n"));
}

/// Relative expiry, absolute expiry and touch, on a key of each shard.
#[test]
fn expiry_relative_absolute_and_touch() {
    let server = ServerProc::start(&["-t", "2"]);
    let mut s = server.connect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut req = Vec::new();
    for i in 0..4 {
        req.extend_from_slice(format!("set rel:{i} 0 1 1\r\nx\r\n").as_bytes());
        req.extend_from_slice(format!("set abs:{i} 0 {} 1\r\nx\r\n", now + 1).as_bytes());
        req.extend_from_slice(format!("set keep:{i} 0 1 1\r\nx\r\n").as_bytes());
        req.extend_from_slice(format!("touch keep:{i} 100\r\n").as_bytes());
    }
    s.write_all(&req).unwrap();
    let got = read_exact_n(&mut s, 4 * (8 + 8 + 8 + 9)).unwrap();
    assert_eq!(got, b"STORED\r\nSTORED\r\nSTORED\r\nTOUCHED\r\n".repeat(4));
    // The time passing is what is tested: past the 1-second exptimes, on the server's clock.
    std::thread::sleep(Duration::from_millis(2100));
    for i in 0..4 {
        s.write_all(format!("get rel:{i} abs:{i} keep:{i}\r\n").as_bytes())
            .unwrap();
        let got = read_until(&mut s, b"END\r\n", Duration::from_secs(5));
        assert_eq!(
            got,
            format!("VALUE keep:{i} 0 1\r\nx\r\nEND\r\n").as_bytes()
        );
    }
    assert!(server.stat("get_expired") >= 8);
}

/// `-c 2`: the third connection is told so and closed; the count shows in `stats`.
#[test]
fn connection_limit() {
    let server = ServerProc::start(&["-t", "1", "-c", "2"]);
    let mut a = server.connect();
    let mut b = server.connect();
    // make sure both are accepted before the third arrives
    for s in [&mut a, &mut b] {
        s.write_all(b"version\r\n").unwrap();
        read_until(s, b"\r\n", Duration::from_secs(5));
    }
    let mut c = server.connect();
    let got = expect_eof(&mut c, "the connection over -c");
    assert_eq!(got, b"ERROR Too many open connections\r\n");
    drop(a);
    drop(b);
    // The slots are returned once the server has seen both closes (no stats connection can
    // tell: it would be one too many): a new connection is served, or refused and closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut d = server.connect();
        // A refused connection may be closed before this write lands: its reply says so.
        let _ = d.write_all(b"version\r\n");
        let got = read_until(&mut d, b"\r\n", Duration::from_secs(5));
        if got.starts_with(b"VERSION ") {
            break;
        }
        assert_eq!(got, b"ERROR Too many open connections\r\n");
        expect_eof(&mut d, "a refused connection");
        assert!(
            std::time::Instant::now() < deadline,
            "connections were not released within 10 s"
        );
        // the poll's interval
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.stat("rejected_connections") >= 1);
}

fn run_expect_failure(args: &[&str], shell_prefix: Option<&str>) -> (i32, String) {
    let _slot = shared_slot();
    let bin = env!("CARGO_BIN_EXE_tessera");
    let out = match shell_prefix {
        Some(prefix) => Command::new("sh")
            .arg("-c")
            .arg(format!("{prefix}; exec {bin} {}", args.join(" ")))
            .output(),
        None => Command::new(bin).args(args).output(),
    }
    .expect("run tessera");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn startup_errors_are_one_clear_line() {
    // the port is taken (by a plain listener without SO_REUSEPORT)
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = run_expect_failure(&["-l", "127.0.0.1", "-p", &port], None);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("address already in use"), "{err}");

    let (code, err) = run_expect_failure(&["--no-such-flag"], None);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tessera: "), "{err}");

    let (code, err) = run_expect_failure(&["-t", "0"], None);
    assert_ne!(code, 0);
    assert!(err.contains("-t"), "{err}");

    // too little locked memory for io_uring
    let (code, err) = run_expect_failure(&["-l", "127.0.0.1", "-p", "0"], Some("ulimit -l 64"));
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("locked memory"), "{err}");
}

#[test]
fn help_and_version() {
    let bin = env!("CARGO_BIN_EXE_tessera");
    let out = Command::new(bin).arg("-V").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(bin).arg("-h").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--memory-limit",
        "--threads",
        "--max-item-size",
        "--conn-limit",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
}

/// `-s PATH -a MASK`: a unix socket with that mode serves the protocol; TCP is off (as in
/// memcached); keys of every shard answer through it; a stale socket file left by a killed
/// server is replaced.
#[test]
fn unix_socket_listener() {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    /// Kills the server even when an assertion fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _slot = shared_slot();
    let dir = std::env::temp_dir().join(format!("tessera-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.sock");
    for round in 0..2 {
        let mut child = Kill(
            Command::new(env!("CARGO_BIN_EXE_tessera"))
                .args(["-s", path.to_str().unwrap(), "-a", "700", "-t", "2", "-v"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        // Wait until this server has replaced the stale file: a socket whose process was
        // just killed can still accept for a moment (io_uring tears down asynchronously).
        let mut stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
            assert!(n > 0, "tessera exited before listening");
        }
        let mut s = None;
        // A bounded poll (5 s) of the observable state: the socket accepts.
        for _ in 0..200 {
            if let Ok(c) = UnixStream::connect(&path) {
                s = Some(c);
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let mut s = s.expect("unix socket never accepted");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "round {round}");
        // keys of both shards: the executor that accepts unix connections forwards the rest
        let mut req = Vec::new();
        let mut expect = Vec::new();
        for i in 0..20 {
            req.extend_from_slice(format!("set u{i} 0 0 2\r\nhi\r\nget u{i}\r\n").as_bytes());
            expect
                .extend_from_slice(format!("STORED\r\nVALUE u{i} 0 2\r\nhi\r\nEND\r\n").as_bytes());
        }
        req.extend_from_slice(b"mn\r\n");
        expect.extend_from_slice(b"MN\r\n");
        s.write_all(&req).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.ends_with(b"MN\r\n") {
            let n = s.read(&mut chunk).expect("reply in time");
            assert!(n > 0, "closed");
            buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(
            String::from_utf8_lossy(&buf),
            String::from_utf8_lossy(&expect)
        );
        // killed: the socket file stays behind, and the next start must cope with it
        drop(child);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-o idle_timeout=1`: an idle connection is closed, said in the log and counted in
/// idle_kicks. (The close check's 5 s read timeout is only a liveness bound.)
#[test]
fn idle_timeout_closes_idle_connections() {
    let server = ServerProc::start(&["-t", "1", "-o", "idle_timeout=1"]);
    let mut idle = server.connect();
    assert_eq!(expect_eof(&mut idle, "an idle connection"), b"");
    assert_eq!(server.stat("idle_kicks"), 1);
    assert!(server.wait_log(
        "no request for 1s: closing (idle_timeout)",
        Duration::from_secs(5)
    ));
}

/// idle_timeout counts from the last request, as memcached's does: a client trickling the
/// bytes of a request it never finishes (slowloris) is closed, while one that keeps sending
/// whole requests stays. The test runs until the slow client is closed (30 s at most, a
/// liveness bound) and then asserts what happened: the slow client was closed and is the
/// one idle kick; the busy client was answered every time and is still served. The timeout
/// is 3 s so that only a test thread stalled for 3 s between two requests could make the
/// busy client idle.
#[test]
fn idle_timeout_closes_slowloris_clients() {
    let server = ServerProc::start(&["-t", "2", "-o", "idle_timeout=3"]);
    let mut slow = server.connect();
    let mut busy = server.connect();
    let kicks = server.stat("idle_kicks");
    let line = b"get slowloris-key-that-never-ends";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    // Until the server counts an idle kick, or the slow client's write fails (closed).
    while server.stat("idle_kicks") == kicks
        && slow.write_all(&line[sent % line.len()..][..1]).is_ok()
    {
        sent += 1;
        busy.write_all(b"version\r\n").unwrap();
        assert!(
            read_until(&mut busy, b"\r\n", Duration::from_secs(5)).starts_with(b"VERSION "),
            "a client sending whole requests was closed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the slowloris client was not closed within 30 s ({sent} bytes trickled)"
        );
        // The pace of the trickle (and of the busy client's requests), not a wait for state.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(expect_eof(&mut slow, "the slowloris client"), b"");
    assert_eq!(
        server.stat("idle_kicks"),
        kicks + 1,
        "the busy client was kicked too"
    );
    busy.write_all(b"version\r\n").unwrap();
    assert!(read_until(&mut busy, b"\r\n", Duration::from_secs(5)).starts_with(b"VERSION "));
}

/// Resident memory of the process (VmRSS), in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// With `-m 64`, values of mixed sizes (10 bytes to 500 KB) churning through, then a flood
/// of tiny items: resident memory stays within the limit plus the documented overhead
/// (docs/reliability.md: 15% of -m + 16 MiB).
#[test]
fn resident_memory_stays_within_the_limit_under_churn() {
    // 1 GB through the server: no other server-starting test runs beside it.
    let server = ServerProc::start_heavy(&["-t", "2", "-m", "64"]);
    let limit = 64u64 << 20;
    let bound = limit + limit * 15 / 100 + (16 << 20);
    let mut conns = [server.connect(), server.connect()];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut peak = 0u64;
    let sizes = [10usize, 100, 1000, 5000, 20_000, 100_000, 500_000];
    let value = vec![b'v'; 500_000];
    let sync = |s: &mut std::net::TcpStream, peak: &mut u64| {
        s.write_all(b"mn\r\n").unwrap();
        assert_eq!(read_until(s, b"MN\r\n", Duration::from_secs(30)), b"MN\r\n");
        *peak = (*peak).max(rss_bytes(server.pid()));
    };
    // Phase 1: ~1 GB of mixed sizes over 200k keys.
    let mut written = 0usize;
    let mut n = 0u64;
    while written < 1 << 30 {
        let mut batch = Vec::new();
        for _ in 0..20 {
            let top = sizes[(rng.next() % sizes.len() as u64) as usize];
            let size = top / 2 + (rng.next() as usize % (top / 2 + 1));
            let key = rng.next() % 200_000;
            batch.extend_from_slice(format!("set churn:{key} 0 0 {size} noreply\r\n").as_bytes());
            batch.extend_from_slice(&value[..size]);
            batch.extend_from_slice(b"\r\n");
            written += size;
        }
        let c = &mut conns[(n % 2) as usize];
        c.write_all(&batch).unwrap();
        n += 1;
        if n.is_multiple_of(100) {
            sync(c, &mut peak);
        }
    }
    // Phase 2: 1.5M tiny items over 2M keys (per-item overhead dominates).
    for round in 0..1500u64 {
        let mut batch = Vec::with_capacity(40_000);
        for _ in 0..1000 {
            let key = rng.next() % 2_000_000;
            batch.extend_from_slice(
                format!("set tiny:{key} 0 0 10 noreply\r\n0123456789\r\n").as_bytes(),
            );
        }
        let c = &mut conns[(round % 2) as usize];
        c.write_all(&batch).unwrap();
        if round % 100 == 99 {
            sync(c, &mut peak);
        }
    }
    for c in conns.iter_mut() {
        sync(c, &mut peak);
    }
    assert!(
        server.stat("evictions") > 0,
        "the churn never filled the cache"
    );
    assert!(
        peak <= bound,
        "resident memory peaked at {} MiB with -m 64 (bound {} MiB)",
        peak >> 20,
        bound >> 20
    );
}

/// cache_memlimit: memcached's replies and bounds; the new limit shows in stats and holds.
#[test]
fn cache_memlimit_at_run_time() {
    let server = ServerProc::start(&["-t", "2", "-m", "64"]);
    let mut s = server.connect();
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"cache_memlimit 4\r\n",
            b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
        (
            b"cache_memlimit 2000000000\r\n",
            b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n",
        ),
        (b"cache_memlimit abc\r\n", b"ERROR\r\n"),
        (b"cache_memlimit\r\n", b"ERROR\r\n"),
        (b"cache_memlimit 8\r\n", b"OK\r\n"),
    ];
    for (send, expect) in cases {
        s.write_all(send).unwrap();
        assert_eq!(read_exact_n(&mut s, expect.len()).unwrap(), *expect);
    }
    assert_eq!(server.stat("limit_maxbytes"), 8 * 1024 * 1024);
    let value = vec![b'v'; 1000];
    for chunk in 0..100 {
        let mut req = Vec::new();
        for i in 0..100 {
            req.extend_from_slice(format!("set ml:{chunk}:{i} 0 0 1000 noreply\r\n").as_bytes());
            req.extend_from_slice(&value);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req).unwrap();
    }
    s.write_all(b"mn\r\n").unwrap();
    read_until(&mut s, b"MN\r\n", Duration::from_secs(10));
    assert!(server.stat("bytes") <= 8 * 1024 * 1024);
    assert!(server.stat("evictions") > 0);
}

/// shutdown: refused without -A; with -A the process exits 0.
#[test]
fn shutdown_command() {
    let server = ServerProc::start(&["-t", "1"]);
    let mut s = server.connect();
    s.write_all(b"shutdown\r\n").unwrap();
    assert_eq!(
        read_until(&mut s, b"\r\n", Duration::from_secs(5)),
        b"ERROR: shutdown not enabled\r\n"
    );
    s.write_all(b"shutdown now\r\n").unwrap();
    assert_eq!(
        read_until(&mut s, b"\r\n", Duration::from_secs(5)),
        b"ERROR: shutdown not enabled\r\n"
    );
    let mut server = ServerProc::start(&["-t", "2", "-A"]);
    let mut s = server.connect();
    s.write_all(b"shutdown bogus\r\n").unwrap();
    assert_eq!(
        read_until(&mut s, b"\r\n", Duration::from_secs(5)),
        b"CLIENT_ERROR invalid shutdown mode\r\n"
    );
    s.write_all(b"shutdown\r\n").unwrap();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("tessera did not exit after shutdown");
    assert!(status.success(), "{status:?}");
    assert_eq!(expect_eof(&mut s, "after shutdown"), b"");
}

/// Connects until the server refuses (its listeners are closed), for at most `limit`.
fn refused_within(port: u16, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// SIGTERM: idle connections close at once, a request in progress is finished and
/// answered, new connections are refused, and the process exits 0, saying so.
#[test]
fn sigterm_finishes_requests_then_exits_zero() {
    use nix::sys::signal::Signal;
    for (threads, sig) in [("1", Signal::SIGTERM), ("2", Signal::SIGINT)] {
        let mut server = ServerProc::start(&["-t", threads, "-o", "shutdown_timeout=30"]);
        let mut idle = server.connect();
        let mut mid = server.connect();
        // A value for every shard, and one request left half-sent.
        for i in 0..8 {
            mid.write_all(format!("set pre{i} 0 0 1\r\nx\r\n").as_bytes())
                .unwrap();
            assert_eq!(
                read_until(&mut mid, b"\r\n", Duration::from_secs(5)),
                b"STORED\r\n"
            );
        }
        let partial = b"set k 0 0 10\r\n12345";
        let before = server.stat("bytes_read");
        mid.write_all(partial).unwrap();
        // Signalled before the server has read it, `mid` would be between requests.
        server.wait_bytes_read(before, partial.len(), Duration::from_secs(10));
        server.signal(sig);
        assert!(server.wait_log("shutting down", Duration::from_secs(5)));
        assert_eq!(expect_eof(&mut idle, "the idle connection"), b"");
        assert!(
            refused_within(server.port, Duration::from_secs(5)),
            "listeners still accept after {sig}"
        );
        // The half-sent request completes and is answered, with what came with it.
        mid.write_all(b"67890\r\nget k pre0 pre7\r\n").unwrap();
        let reply = read_until(&mut mid, b"END\r\n", Duration::from_secs(5));
        assert_eq!(
            reply,
            b"STORED\r\nVALUE k 0 10\r\n1234567890\r\nVALUE pre0 0 1\r\nx\r\nVALUE pre7 0 1\r\nx\r\nEND\r\n",
            "-t {threads}: {}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(expect_eof(&mut mid, "after its request"), b"");
        let status = server
            .wait_exit(Duration::from_secs(10))
            .expect("tessera did not exit after its connections closed");
        assert_eq!(status.code(), Some(0), "{status:?}");
        assert!(server.wait_log("tessera: shut down", Duration::from_secs(5)));
    }
}

/// A request that never completes holds shutdown only until `shutdown_timeout`; a second
/// signal ends the process at once, with status 1.
#[test]
fn shutdown_timeout_and_second_signal() {
    use nix::sys::signal::Signal;
    let mut server = ServerProc::start(&["-t", "2", "-o", "shutdown_timeout=1"]);
    let mut stuck = server.connect();
    let partial = b"set k 0 0 100\r\nonly part";
    let before = server.stat("bytes_read");
    stuck.write_all(partial).unwrap();
    server.wait_bytes_read(before, partial.len(), Duration::from_secs(10));
    server.signal(Signal::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("tessera did not exit after shutdown_timeout");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(server.wait_log("still open after 1s", Duration::from_secs(5)));
    assert_eq!(expect_eof(&mut stuck, "after shutdown_timeout"), b"");

    let mut server = ServerProc::start(&["-t", "1", "-o", "shutdown_timeout=600"]);
    // SIGHUP without TLS changes nothing (memcached ignores it too).
    server.signal(Signal::SIGHUP);
    let mut s = server.connect();
    s.write_all(b"version\r\n").unwrap();
    assert!(read_until(&mut s, b"\r\n", Duration::from_secs(5)).starts_with(b"VERSION "));
    let mut stuck = server.connect();
    let before = server.stat("bytes_read");
    stuck.write_all(b"get k").unwrap();
    server.wait_bytes_read(before, 5, Duration::from_secs(10));
    server.signal(Signal::SIGTERM);
    assert!(server.wait_log("shutting down", Duration::from_secs(5)));
    // Still waiting for `stuck`, which is what the second signal cuts short: the listeners
    // are closed (the shutdown has begun) and the process has not exited.
    assert!(
        refused_within(server.port, Duration::from_secs(5)),
        "listeners still accept after SIGTERM"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "tessera exited with a request in progress and 600 s of shutdown_timeout left"
    );
    server.signal(Signal::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("a second SIGTERM did not end tessera");
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(server.wait_log("during shutdown: exiting now", Duration::from_secs(5)));
    assert_eq!(expect_eof(&mut stuck, "after the second signal"), b"");
}

/// `shutdown graceful` (with -A) is the same graceful shutdown as SIGTERM.
#[test]
fn shutdown_graceful_command() {
    let mut server = ServerProc::start(&["-t", "2", "-A"]);
    let mut other = server.connect();
    other.write_all(b"set a 0 0 1\r\n1\r\n").unwrap();
    assert_eq!(
        read_until(&mut other, b"\r\n", Duration::from_secs(5)),
        b"STORED\r\n"
    );
    let mut s = server.connect();
    s.write_all(b"shutdown graceful\r\n").unwrap();
    assert_eq!(expect_eof(&mut s, "after shutdown graceful"), b"");
    assert_eq!(expect_eof(&mut other, "the other connection"), b"");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("tessera did not exit after shutdown graceful");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(server.wait_log("shutdown graceful command", Duration::from_secs(5)));
}

/// stats items / slabs / conns: memcached's shapes, consistent with the general stats.
#[test]
fn stats_items_slabs_conns() {
    let server = ServerProc::start(&["-t", "2"]);
    let mut s = server.connect();
    let mut req = Vec::new();
    for (i, size) in [10usize, 300, 5000, 100_000].iter().enumerate() {
        for j in 0..5 {
            req.extend_from_slice(format!("set sz{i}:{j} 0 0 {size}\r\n").as_bytes());
            req.extend(std::iter::repeat_n(b'x', *size));
            req.extend_from_slice(b"\r\n");
        }
    }
    s.write_all(&req).unwrap();
    read_exact_n(&mut s, 20 * 8).unwrap();
    let items = server.stats("items");
    let numbers: Vec<u64> = items
        .iter()
        .filter(|(k, _)| k.ends_with(":number"))
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4, "four size classes: {items:?}");
    assert_eq!(numbers.iter().sum::<u64>(), server.stat("curr_items"));
    let requested: u64 = items
        .iter()
        .filter(|(k, _)| k.ends_with(":mem_requested"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(requested, server.stat("bytes"));
    let slabs = server.stats("slabs");
    let get = |k: &str| slabs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("active_slabs").as_deref(), Some("4"));
    assert_eq!(get("1:chunk_size").as_deref(), Some("96"));
    assert_eq!(get("1:used_chunks").as_deref(), Some("5"));
    let conns = server.stats("conns");
    assert!(
        conns
            .iter()
            .any(|(k, v)| k.ends_with(":state") && v == "conn_listening")
    );
    assert!(
        conns
            .iter()
            .any(|(k, v)| k.ends_with(":state") && v == "conn_parse_cmd")
    );
}

/// Many short connections, each with a pipeline that crosses shards and a flush_all barrier,
/// closed as soon as the replies are in: replies of other executors must reach tasks that are
/// about to finish without corrupting anything (this once crashed the server: a waker woken
/// and dropped from another thread). The server must answer every round and stay up.
fn short_lived_cross_shard_connections(threads: usize) {
    let server = ServerProc::start(&["-t", &threads.to_string()]);
    for round in 0..300 {
        let mut s = server.connect();
        let mut req = Vec::new();
        let mut expect = Vec::new();
        for i in 0..20 {
            req.extend_from_slice(format!("set s{round}:{i} 0 0 1\r\nx\r\n").as_bytes());
            expect.extend_from_slice(b"STORED\r\n");
        }
        req.extend_from_slice(b"flush_all\r\n");
        expect.extend_from_slice(b"OK\r\n");
        let keys: Vec<String> = (0..20).map(|i| format!("s{round}:{i}")).collect();
        req.extend_from_slice(format!("get {}\r\n", keys.join(" ")).as_bytes());
        expect.extend_from_slice(b"END\r\n");
        s.write_all(&req).unwrap();
        let got =
            read_exact_n(&mut s, expect.len()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(got, expect, "round {round}");
    }
    assert!(server.stat("shard_forwarded_ops") > 0);
    assert_eq!(server.stat("threads"), threads as u64);
}
at_threads!(short_lived_cross_shard_connections: t2 = 2, t3 = 3, t4 = 4);

/// Connections send their requests in fragments, interleaved with each other's, each round
/// read by the server before the next is sent: a fragment read while a connection had
/// nothing buffered lands in its executor's shared scratch buffer, the rest goes into that
/// connection's own buffer. Every connection must get exactly its own values back. At
/// `-t 1` all 16 share one scratch buffer; with more executors, the `set`s and `get`s of
/// most keys are forwarded as well.
fn interleaved_fragments_stay_with_their_connection(threads: usize) {
    let server = ServerProc::start(&["-t", &threads.to_string()]);
    let mut conns: Vec<_> = (0..16).map(|_| server.connect()).collect();
    let mut reqs = Vec::new();
    for (i, _) in conns.iter().enumerate() {
        // Values from 10 bytes to ~100 KiB: some span the scratch buffer's size.
        let v: Vec<u8> = (0..(10 + i * i * 400))
            .map(|j| b'a' + ((i + j) % 26) as u8)
            .collect();
        let mut req = format!("set frag:{i} 0 0 {}\r\n", v.len()).into_bytes();
        req.extend_from_slice(&v);
        req.extend_from_slice(format!("\r\nget frag:{i}\r\n").as_bytes());
        reqs.push((req, v));
    }
    // Cut each request into 5 pieces at different places; send round-robin.
    for piece in 0..5 {
        let before = server.stat("bytes_read");
        let mut sent = 0;
        for (i, c) in conns.iter_mut().enumerate() {
            let req = &reqs[i].0;
            let cut = |p: usize| match p {
                0 => 0,
                5 => req.len(),
                p => (req.len() * p / 5 + i * 3).min(req.len()),
            };
            let (a, b) = (cut(piece), cut(piece + 1));
            c.write_all(&req[a..b]).unwrap();
            sent += b - a;
        }
        server.wait_bytes_read(before, sent, Duration::from_secs(10));
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let v = &reqs[i].1;
        let mut expect = b"STORED\r\n".to_vec();
        expect.extend_from_slice(format!("VALUE frag:{i} 0 {}\r\n", v.len()).as_bytes());
        expect.extend_from_slice(v);
        expect.extend_from_slice(b"\r\nEND\r\n");
        let got = read_exact_n(c, expect.len()).unwrap();
        assert!(
            got == expect,
            "connection {i}: reply differs from its own value"
        );
    }
    assert_eq!(server.stat("threads"), threads as u64);
}
at_threads!(interleaved_fragments_stay_with_their_connection: t1 = 1, t3 = 3, t4 = 4);

/// Started under `taskset` on one CPU, the executor threads stay on that CPU (glommio's
/// own placement would spread them over every online CPU).
#[test]
fn executors_keep_to_the_allowed_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset_ok = Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if cpus < 2 || !taskset_ok {
        skip(
            "executors_keep_to_the_allowed_cpus",
            &format!("needs 2 CPUs and taskset (CPUs: {cpus}, taskset runs: {taskset_ok})"),
        );
        return;
    }
    // The last allowed CPU: glommio's own choice for one executor is the first.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let last: usize = list
        .rsplit([',', '-'])
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap();
    let server = ServerProc::start_with_prefix(&["taskset", "-c", &last.to_string()], &["-t", "1"]);
    // Serving proves the executor is up; then every thread's affinity is checked.
    assert_eq!(server.stat("threads"), 1);
    let mut seen = 0;
    for task in std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(allowed, last.to_string(), "a thread left CPU {last}");
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the main thread and an executor, saw {seen}"
    );
}
