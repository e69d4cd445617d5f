//! Helpers shared by the integration tests: the wire-case file format, a tessera process
//! that is always stopped, the one check that a connection was closed ([`read_to_eof`]),
//! and the slots that keep heavy tests from running beside others ([`exclusive_slot`]).

#![allow(dead_code, unreachable_pub, unused_macros)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One step of a case.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes; expect exactly this reply (with `$CAS` markers kept symbolic).
    Exchange {
        send: Vec<Piece>,
        expect: Vec<Piece>,
        closed: bool,
    },
    /// Sleep this long.
    Sleep(Duration),
}

/// Part of a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Bytes(Vec<u8>),
    Cas,
}

/// A named case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
}

fn decode(s: &str) -> Vec<Piece> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let c = b[i + 1];
                match c {
                    b'r' => cur.push(b'\r'),
                    b'n' => cur.push(b'\n'),
                    b'\\' => cur.push(b'\\'),
                    b'x' => {
                        let h = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                        cur.push(u8::from_str_radix(h, 16).unwrap());
                        i += 2;
                    }
                    _ => panic!("bad escape in {s}"),
                }
                i += 2;
            }
            b'$' if s[i..].starts_with("$CAS") => {
                out.push(Piece::Bytes(std::mem::take(&mut cur)));
                out.push(Piece::Cas);
                i += 4;
            }
            b'$' if s[i..].starts_with("$REPEAT(") => {
                let close = s[i..].find(')').unwrap() + i;
                let inner = &s[i + 8..close];
                let (c, n) = inner.split_once(',').unwrap();
                let n: usize = n.parse().unwrap();
                cur.extend(std::iter::repeat_n(c.as_bytes()[0], n));
                i = close + 1;
            }
            c => {
                cur.push(c);
                i += 1;
            }
        }
    }
    out.push(Piece::Bytes(cur));
    out.retain(|p| !matches!(p, Piece::Bytes(b) if b.is_empty()));
    out
}

/// Parses tests/wire/text_cases.txt.
pub fn load_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    let mut pending_send: Option<Vec<Piece>> = None;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("case ") {
            cur = Some(Case {
                name: name.to_string(),
                steps: Vec::new(),
            });
        } else if line == "end" {
            cases.push(cur.take().expect("end without case"));
        } else if let Some(p) = line.strip_prefix("> ") {
            pending_send = Some(decode(p));
        } else if line == "<" || line.starts_with("< ") {
            let expect = decode(line.get(2..).unwrap_or(""));
            let send = pending_send.take().expect("< without >");
            cur.as_mut().unwrap().steps.push(Step::Exchange {
                send,
                expect,
                closed: false,
            });
        } else if line == "closed" {
            if let Some(Step::Exchange { closed, .. }) = cur.as_mut().unwrap().steps.last_mut() {
                *closed = true;
            }
        } else if let Some(ms) = line.strip_prefix("sleep ") {
            cur.as_mut()
                .unwrap()
                .steps
                .push(Step::Sleep(Duration::from_millis(ms.parse().unwrap())));
        } else {
            panic!("unknown line in case file: {line}");
        }
    }
    cases
}

/// The sentinel request appended to every send, and its reply.
pub const SENTINEL: &[u8] = b"get __sentinel__\r\n";
pub const SENTINEL_REPLY: &[u8] = b"END\r\n";

/// Substitutes `$CAS` in a send with the remembered cas.
pub fn render_send(pieces: &[Piece], cas: &Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Cas => out.extend_from_slice(cas.as_deref().expect("$CAS before any gets")),
        }
    }
    out
}

/// Matches `got` against the expected pieces (`$CAS` matches 1-20 digits) and returns the
/// last cas matched, if any.
pub fn match_reply(expect: &[Piece], got: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut pos = 0;
    let mut last_cas = None;
    for p in expect {
        match p {
            Piece::Bytes(b) => {
                if !got[pos..].starts_with(b) {
                    return Err(format!(
                        "at byte {pos}: expected {:?}, got {:?}",
                        String::from_utf8_lossy(b),
                        String::from_utf8_lossy(&got[pos..])
                    ));
                }
                pos += b.len();
            }
            Piece::Cas => {
                let n = got[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 || n > 20 {
                    return Err(format!("at byte {pos}: expected a cas number"));
                }
                last_cas = Some(got[pos..pos + n].to_vec());
                pos += n;
            }
        }
    }
    if pos != got.len() {
        return Err(format!(
            "extra bytes after the expected reply: {:?}",
            String::from_utf8_lossy(&got[pos..])
        ));
    }
    Ok(last_cas)
}

/// The fixed length of an expected reply, if it has no `$CAS`.
pub fn expected_len(expect: &[Piece]) -> Option<usize> {
    let mut n = 0;
    for p in expect {
        match p {
            Piece::Bytes(b) => n += b.len(),
            Piece::Cas => return None,
        }
    }
    Some(n)
}

/// A tessera process on a loopback port, killed on drop.
pub struct ServerProc {
    pub child: Child,
    /// Held while the server runs: shared, or exclusive for a heavy test.
    slot: Slot,
    pub port: u16,
    /// Everything the server has written to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProc {
    /// Starts `tessera -p 0 -l 127.0.0.1 -v <args>` and waits for its listening line.
    pub fn start(args: &[&str]) -> ServerProc {
        Self::start_with_prefix(&[], args)
    }

    /// As `start`, for a test that loads the machine: it runs alone ([`exclusive_slot`]).
    pub fn start_heavy(args: &[&str]) -> ServerProc {
        Self::start_in(exclusive_slot(), &[], args)
    }

    /// As `start`, run through a command that execs it (`prefix`, e.g. `taskset -c 1`).
    pub fn start_with_prefix(prefix: &[&str], args: &[&str]) -> ServerProc {
        Self::start_in(shared_slot(), prefix, args)
    }

    fn start_in(slot: Slot, prefix: &[&str], args: &[&str]) -> ServerProc {
        let bin = env!("CARGO_BIN_EXE_tessera");
        let mut cmd = match prefix {
            [] => Command::new(bin),
            [p, rest @ ..] => {
                let mut c = Command::new(p);
                c.args(rest).arg(bin);
                c
            }
        };
        let mut child = cmd
            .args(["-p", "0", "-l", "127.0.0.1", "-v"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tessera");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log_w = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            let mut sent = false;
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Ok(mut l) = log_w.lock() {
                            l.push_str(&line);
                        }
                        if !sent && let Some(rest) = line.trim().split("listening on ").nth(1) {
                            let port: u16 = rest
                                .split(',')
                                .next()
                                .and_then(|a| a.rsplit(':').next())
                                .and_then(|p| p.parse().ok())
                                .unwrap_or(0);
                            let _ = tx.send(port);
                            sent = true;
                        }
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) if p != 0 => p,
            _ => {
                let _ = child.kill();
                panic!("tessera did not report a listening port");
            }
        };
        ServerProc {
            child,
            slot,
            port,
            log,
        }
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig)
            .expect("signal tessera");
    }

    /// Waits up to `limit` for the server to exit; its status, or None if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `limit` for `text` to appear in the server's stderr.
    pub fn wait_log(&self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log.lock().map(|l| l.contains(text)).unwrap_or(false) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The process id (the server's own: a prefix command must exec it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connected client with timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// `stats` as (name, value) pairs.
    pub fn stats(&self, which: &str) -> Vec<(String, String)> {
        let mut s = self.connect();
        let cmd = if which.is_empty() {
            String::from_utf8(STATS_REQUEST.to_vec()).unwrap()
        } else {
            format!("stats {which}\r\n")
        };
        s.write_all(cmd.as_bytes()).unwrap();
        let text = read_until(&mut s, b"END\r\n", Duration::from_secs(10));
        String::from_utf8(text)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// One numeric `stats` field.
    pub fn stat(&self, name: &str) -> u64 {
        self.stats("")
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no stat {name}"))
            .1
            .parse()
            .unwrap()
    }

    /// Waits until the server has read `n` bytes more than `before` (its `bytes_read`, taken
    /// before those bytes were sent): the way to know a partial request has arrived, where a
    /// sleep would only guess. The `stats` requests this makes are not counted; panics after
    /// `limit`, saying how far it got.
    pub fn wait_bytes_read(&self, before: u64, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut polls = 0u64;
        loop {
            // This poll's own request is read before the counter is reported.
            polls += 1;
            let got = self.stat("bytes_read") - before - polls * STATS_REQUEST.len() as u64;
            if got >= n as u64 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server read {got} of {n} bytes within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The request behind [`ServerProc::stats`] with no argument (its length matters to
/// [`ServerProc::wait_bytes_read`]).
const STATS_REQUEST: &[u8] = b"stats\r\n";

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until the buffer ends with `suffix` (or the deadline passes; then panics).
pub fn read_until(s: &mut TcpStream, suffix: &[u8], limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !buf.ends_with(suffix) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {suffix:?}"
        );
        match s.read(&mut chunk) {
            Ok(0) => panic!("connection closed; got {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(&buf)),
        }
    }
    buf
}

/// Reads exactly `n` bytes (or says what arrived before the timeout/close).
pub fn read_exact_n(s: &mut TcpStream, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(format!(
                    "closed after {:?}",
                    String::from_utf8_lossy(&buf[..got])
                ));
            }
            Ok(k) => got += k,
            Err(e) => {
                return Err(format!(
                    "{e} after {:?}",
                    String::from_utf8_lossy(&buf[..got])
                ));
            }
        }
    }
    Ok(buf)
}

/// The one check that the peer closed the connection: reads everything it sends until it
/// does, and returns those bytes. A close is a clean EOF, or a reset: a server that closes a
/// socket with unread input in it (memcached and tessera both just close(2) it after an
/// error) makes the kernel send RST, and the bytes it wrote before are still read first.
/// A read timeout (the socket's own, 5 s if it has none), or bytes still coming after four
/// of those, means the server kept the connection open: an `Err` saying so. Other read
/// errors are `Err`s too.
pub fn read_to_eof(s: &mut TcpStream) -> Result<Vec<u8>, String> {
    use std::io::ErrorKind;
    let timeout = match s.read_timeout() {
        Ok(Some(t)) => t,
        _ => {
            let t = Duration::from_secs(5);
            s.set_read_timeout(Some(t))
                .map_err(|e| format!("set_read_timeout: {e}"))?;
            t
        }
    };
    let deadline = Instant::now() + timeout * 4;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(buf),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "the server kept the connection open: no EOF within {timeout:?} ({e}); got {:?}",
                    String::from_utf8_lossy(&buf)
                ));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(format!(
                    "read: {e} (not a close); got {:?}",
                    String::from_utf8_lossy(&buf)
                ));
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the server kept the connection open: still sending after {:?}; got {} bytes",
                timeout * 4,
                buf.len()
            ));
        }
    }
}

/// [`read_to_eof`] for a test that needs the close: panics with its message otherwise.
pub fn expect_eof(s: &mut TcpStream, what: &str) -> Vec<u8> {
    read_to_eof(s).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Whether nothing may be skipped: under CI (`CI=true`), or when tools/test.sh runs strict
/// (`TESSERA_NO_SKIP=1`, which run_clients.sh and tests/clients/conftest.py read too).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("TESSERA_NO_SKIP").is_ok_and(|v| v == "1")
}

/// For a test that cannot run here (`why`: what is missing): under [`in_ci`] it fails,
/// naming what is missing; elsewhere it prints a SKIPPED line and the caller returns.
pub fn skip(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test}: {why}; CI=true or TESSERA_NO_SKIP=1, where a skipped test fails the run"
    );
    eprintln!("SKIPPED: {test}: {why}");
}

/// Slots for server-starting tests, so that a heavy one (1 GB through a server) never runs
/// beside another: cargo runs a test binary's tests on a thread pool, and a test starved of
/// CPU next to it would fail on time. Each [`ServerProc`] holds a slot while it runs; ones
/// started with [`ServerProc::start_heavy`] (and tests that call [`exclusive_slot`]) take
/// the exclusive one. The test binaries themselves run one after another, so this process
/// is the whole scope. A read-write lock, but one that a thread already holding a shared
/// slot can take again while an exclusive one waits (a test with two servers; std's RwLock
/// would deadlock there), and that makes other new shared slots wait for a waiting exclusive
/// one, so a heavy test is not starved until the end of the suite.
struct Slots {
    shared: usize,
    exclusive: bool,
    exclusive_waiting: usize,
}

static SLOTS: std::sync::Mutex<Slots> = std::sync::Mutex::new(Slots {
    shared: 0,
    exclusive: false,
    exclusive_waiting: 0,
});
static SLOTS_CHANGED: std::sync::Condvar = std::sync::Condvar::new();

thread_local! {
    /// Shared slots this thread holds.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A held slot, released on drop. Not `Send`: [`HELD`] counts per thread.
pub struct Slot {
    exclusive: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

fn slots() -> std::sync::MutexGuard<'static, Slots> {
    // A test that panicked holding the lock left the counts consistent (no panics inside).
    SLOTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A slot for a test that starts servers; waits while a heavy test runs.
pub fn shared_slot() -> Slot {
    let mut s = slots();
    let reentrant = HELD.with(|h| h.get()) > 0;
    while s.exclusive || (s.exclusive_waiting > 0 && !reentrant) {
        s = SLOTS_CHANGED.wait(s).unwrap_or_else(|e| e.into_inner());
    }
    s.shared += 1;
    HELD.with(|h| h.set(h.get() + 1));
    Slot {
        exclusive: false,
        _not_send: std::marker::PhantomData,
    }
}

/// How many exclusive slots are being waited for (for the test of the slots).
pub fn exclusive_waiting() -> usize {
    slots().exclusive_waiting
}

/// The slot of a heavy test: waits until no other server-starting test runs, and keeps
/// them waiting until dropped.
pub fn exclusive_slot() -> Slot {
    assert_eq!(
        HELD.with(|h| h.get()),
        0,
        "a heavy test must take its exclusive slot before any other"
    );
    let mut s = slots();
    s.exclusive_waiting += 1;
    while s.exclusive || s.shared > 0 {
        s = SLOTS_CHANGED.wait(s).unwrap_or_else(|e| e.into_inner());
    }
    s.exclusive_waiting -= 1;
    s.exclusive = true;
    Slot {
        exclusive: true,
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = slots();
        if self.exclusive {
            s.exclusive = false;
        } else {
            s.shared -= 1;
            HELD.with(|h| h.set(h.get() - 1));
        }
        SLOTS_CHANGED.notify_all();
    }
}

/// Runs a test body once per executor count, as one `#[test]` each, so they run side by
/// side and a failure names its `-t` (`body_fn::t3`): `at_threads!(body_fn: t2 = 2, t3 =
/// 3);` with `fn body_fn(threads: usize)`. Executors may outnumber the CPUs (tessera then
/// runs them unpinned, and says so), which is how `-t 3` and `-t 4` run on a 2-CPU machine.
macro_rules! at_threads {
    ($body:ident: $($name:ident = $t:literal),+ $(,)?) => {
        mod $body {
            $(
                #[test]
                fn $name() {
                    super::$body($t)
                }
            )+
        }
    };
}

/// Feeds `parts` to a session one after another, processing after each; all output, and
/// whether the session asked to close.
pub fn run_parts(
    ctx: &tessera::net::session::Ctx,
    session: &mut tessera::net::session::Session,
    parts: &[&[u8]],
) -> (Vec<u8>, bool) {
    let mut all = Vec::new();
    for part in parts {
        if session.feed_standalone(ctx, part, &mut all) {
            return (all, true);
        }
    }
    (all, false)
}

/// How a [`fake_server`] ends its one connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PeerEnd {
    /// Reads the request, replies, and closes (a clean FIN).
    Close,
    /// Replies and closes with the request still unread (the kernel sends RST).
    CloseUnread,
    /// Replies and keeps the connection open until the client goes.
    KeepOpen,
}

/// A stand-in server on a loopback port for one connection: once the client has sent
/// something it answers `reply`, then ends as `end` says. For tests of the close checks
/// themselves, which must fail against a server that keeps the connection.
pub fn fake_server(reply: &'static [u8], end: PeerEnd) -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut chunk = [0u8; 4096];
        // Wait for the request (peek leaves it unread for CloseUnread).
        let _ = s.peek(&mut chunk);
        if end != PeerEnd::CloseUnread {
            let _ = s.read(&mut chunk);
        }
        s.write_all(reply).expect("fake server write");
        if end == PeerEnd::KeepOpen {
            // Open until the client closes its end (bounded by the read timeout).
            while matches!(s.read(&mut chunk), Ok(n) if n > 0) {}
        }
    });
    (port, handle)
}
