//! Helpers shared by the integration tests: the wire-case file format and a tessera process
//! that is always stopped.

#![allow(dead_code, unreachable_pub)]

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
    pub port: u16,
    /// Everything the server has written to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProc {
    /// Starts `tessera -p 0 -l 127.0.0.1 -v <args>` and waits for its listening line.
    pub fn start(args: &[&str]) -> ServerProc {
        Self::start_with_prefix(&[], args)
    }

    /// As `start`, run through a command that execs it (`prefix`, e.g. `taskset -c 1`).
    pub fn start_with_prefix(prefix: &[&str], args: &[&str]) -> ServerProc {
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
                        if !sent {
                            if let Some(rest) = line.trim().split("listening on ").nth(1) {
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
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) if p != 0 => p,
            _ => {
                let _ = child.kill();
                panic!("tessera did not report a listening port");
            }
        };
        ServerProc { child, port, log }
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
            "stats\r\n".to_string()
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
}

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

/// Reads until EOF (bounded by the socket timeout).
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf
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
