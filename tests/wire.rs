//! Byte-exact conformance: every case of the tables in tests/wire/ (text_cases.txt and
//! meta_cases.txt recorded from memcached 1.6.18, meta_cases_1_6_45.txt from 1.6.45, by
//! tools/wirecases/record.py; tessera_overrides.txt replaces the cases where tessera differs on
//! purpose) is replayed
//! - in process against a [`Session`], once whole and then with every send split at every
//!   byte boundary (large payloads: at every boundary near protocol structure and at 64
//!   spread points), and
//! - over TCP against a `tessera` process at `-t 2`, 3 and 4, so keys cross executors.
//!
//! A case that expects the server to close passes over TCP only on a real close
//! ([`read_to_eof`]); `close_checks_fail_on_a_connection_kept_open` shows it fails otherwise.

#[macro_use]
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use tessera::config::Config;
use tessera::net::session::{Ctx, Session};

const RECORDED: &str = include_str!("wire/text_cases.txt");
const RECORDED_META: &str = include_str!("wire/meta_cases.txt");
/// Meta flags 1.6.18 lacks (E, md x), recorded from memcached 1.6.45.
const RECORDED_META_1_6_45: &str = include_str!("wire/meta_cases_1_6_45.txt");
const OVERRIDES: &str = include_str!("wire/tessera_overrides.txt");

/// The recorded cases (text protocol, then meta, then meta from 1.6.45) with tessera's
/// documented deviations applied.
fn cases() -> Vec<Case> {
    let mut cases = load_cases(RECORDED);
    cases.extend(load_cases(RECORDED_META));
    cases.extend(load_cases(RECORDED_META_1_6_45));
    for o in load_cases(OVERRIDES) {
        let slot = cases
            .iter_mut()
            .find(|c| c.name == o.name)
            .unwrap_or_else(|| panic!("override {} names no recorded case", o.name));
        *slot = o;
    }
    cases
}

/// Split points for a payload: all of them when small; otherwise the boundaries around
/// every CR/LF/space in the first and last 4 KiB plus 64 evenly spread ones.
fn split_points(len: usize, payload: &[u8]) -> Vec<usize> {
    if len <= 4096 {
        return (1..len).collect();
    }
    let mut pts: Vec<usize> = (1..64).map(|k| k * len / 64).collect();
    for (i, &b) in payload.iter().enumerate() {
        if (i < 4096 || i > len - 4096) && matches!(b, b'\r' | b'\n' | b' ') {
            pts.extend([i, i + 1]);
        }
    }
    pts.retain(|&p| p > 0 && p < len);
    pts.sort_unstable();
    pts.dedup();
    pts
}

/// Replays one case in process; `split` splits every send at that offset (if inside it).
fn replay_in_process(case: &Case, split: Option<usize>, sleep: bool) -> Result<(), String> {
    let ctx = Ctx::standalone(Config::default());
    // The cases were recorded on a server that had served other traffic, so some assume cas
    // unique 1 is taken (e.g. "cas k ... 1" must fail): serve one request first.
    let (warm, _) = run_parts(
        &ctx,
        &mut Session::new(),
        &[b"set __warmup__ 0 0 1\r\nx\r\n"],
    );
    assert_eq!(warm, b"STORED\r\n");
    let mut session = Session::new();
    let mut cas: Option<Vec<u8>> = None;
    for (n, step) in case.steps.iter().enumerate() {
        match step {
            // The case's own timing (a delayed flush_all taking effect), not a wait.
            Step::Sleep(d) => {
                if sleep {
                    std::thread::sleep(*d);
                }
            }
            Step::Exchange {
                send,
                expect,
                closed,
            } => {
                let mut bytes = render_send(send, &cas);
                let payload_len = bytes.len();
                if !closed {
                    bytes.extend_from_slice(SENTINEL);
                }
                let parts: Vec<&[u8]> = match split {
                    Some(i) if i < payload_len => vec![&bytes[..i], &bytes[i..]],
                    _ => vec![&bytes[..]],
                };
                let (got, did_close) = run_parts(&ctx, &mut session, &parts);
                let ctxmsg = |m: String| format!("step {n} (split {split:?}): {m}");
                if *closed {
                    if !did_close {
                        return Err(ctxmsg("expected the server to close".into()));
                    }
                    match_reply(expect, &got).map_err(ctxmsg)?;
                    return Ok(());
                }
                if did_close {
                    return Err(ctxmsg(format!(
                        "closed unexpectedly after {:?}",
                        String::from_utf8_lossy(&got)
                    )));
                }
                let mut full = expect.clone();
                full.push(Piece::Bytes(SENTINEL_REPLY.to_vec()));
                if let Some(c) = match_reply(&full, &got).map_err(ctxmsg)? {
                    cas = Some(c);
                }
            }
        }
    }
    Ok(())
}

fn has_sleep(case: &Case) -> bool {
    case.steps.iter().any(|s| matches!(s, Step::Sleep(_)))
}

#[test]
fn cases_file_is_sane() {
    let cases = cases();
    assert!(cases.len() > 500, "only {} cases", cases.len());
}

#[test]
fn wire_cases_in_process() {
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(e) = replay_in_process(&case, None, true) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wire_cases_split_at_every_byte() {
    let mut failures = Vec::new();
    let mut replays = 0usize;
    for case in cases() {
        if has_sleep(&case) {
            continue; // timing case: replayed whole by wire_cases_in_process
        }
        // every offset of the longest send (shorter sends are split where they can be)
        let longest = case
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Exchange { send, .. } => Some(render_send(send, &Some(b"1".to_vec()))),
                _ => None,
            })
            .max_by_key(|b| b.len())
            .unwrap_or_default();
        for i in split_points(longest.len(), &longest) {
            replays += 1;
            if let Err(e) = replay_in_process(&case, Some(i), false) {
                failures.push(format!("{}: {e}", case.name));
                break;
            }
        }
    }
    assert!(replays > 1000, "only {replays} split replays");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Replays one case over TCP, on a connection `connect` makes.
fn replay_tcp(connect: impl Fn() -> std::net::TcpStream, case: &Case) -> Result<(), String> {
    let mut s = connect();
    let mut cas: Option<Vec<u8>> = None;
    for (n, step) in case.steps.iter().enumerate() {
        match step {
            // The case's own timing (e.g. a delayed flush_all taking effect), not a wait.
            Step::Sleep(d) => std::thread::sleep(*d),
            Step::Exchange {
                send,
                expect,
                closed,
            } => {
                let mut bytes = render_send(send, &cas);
                if !closed {
                    bytes.extend_from_slice(SENTINEL);
                }
                s.write_all(&bytes)
                    .map_err(|e| format!("step {n}: write: {e}"))?;
                if *closed {
                    let got = read_to_eof(&mut s).map_err(|e| format!("step {n}: {e}"))?;
                    match_reply(expect, &got).map_err(|m| format!("step {n}: {m}"))?;
                    return Ok(());
                }
                let mut full = expect.clone();
                full.push(Piece::Bytes(SENTINEL_REPLY.to_vec()));
                let got = match expected_len(&full) {
                    Some(len) => read_exact_n(&mut s, len).map_err(|e| format!("step {n}: {e}"))?,
                    None => {
                        // $CAS: read until the reply matches (bounded in time)
                        let deadline = Instant::now() + Duration::from_secs(10);
                        let mut buf = Vec::new();
                        loop {
                            let chunk = read_until(&mut s, SENTINEL_REPLY, Duration::from_secs(10));
                            buf.extend_from_slice(&chunk);
                            if match_reply(&full, &buf).is_ok() || Instant::now() > deadline {
                                break buf;
                            }
                        }
                    }
                };
                if let Some(c) = match_reply(&full, &got).map_err(|m| format!("step {n}: {m}"))? {
                    cas = Some(c);
                }
            }
        }
    }
    Ok(())
}

fn wire_cases_over_tcp(threads: usize) {
    let server = ServerProc::start(&["-t", &threads.to_string()]);
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(e) = replay_tcp(|| server.connect(), &case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        server.stat("shard_forwarded_ops") > 0,
        "the cases never crossed executors"
    );
    assert_eq!(server.stat("threads"), threads as u64);
}
at_threads!(wire_cases_over_tcp: t2 = 2, t3 = 3, t4 = 4);

/// The replay's close check fails on a server that answers a case that expects a close
/// but keeps the connection open, and passes on one that closes (cleanly or with a reset).
#[test]
fn close_checks_fail_on_a_connection_kept_open() {
    let case = load_cases("case closes\n> bad\\r\\n\n< ERROR\\r\\n\nclosed\nend\n")
        .pop()
        .unwrap();
    for end in [PeerEnd::KeepOpen, PeerEnd::Close, PeerEnd::CloseUnread] {
        let (port, server) = fake_server(b"ERROR\r\n", end);
        let connect = || {
            let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            // short: the failing case waits this long
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s
        };
        let got = replay_tcp(connect, &case);
        match end {
            PeerEnd::KeepOpen => {
                let e = got.expect_err("a case that expects a close passed on an open connection");
                assert!(e.contains("kept the connection open"), "{e}");
            }
            _ => got.unwrap_or_else(|e| panic!("{end:?}: {e}")),
        }
        server.join().unwrap();
    }
}
