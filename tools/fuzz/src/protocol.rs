//! The `text` and `meta` targets: a byte stream through the parser, step by step, and
//! through whole `Session`s fed in one piece and in chunks.

use futures_lite::future::block_on;
use tessera::config::Config;
use tessera::net::session::{Ctx, Next, Output, Session};
use tessera::protocol::{Limits, Parsed, text::parse};

use crate::{Reader, chunks, split_schedule};

/// `text` target: the first bytes choose how the rest is cut into reads (see
/// [`split_schedule`]); the rest is the client's byte stream, as is.
pub fn text(data: &[u8]) {
    let (sizes, payload) = split_schedule(data);
    check_stream(payload, &sizes);
}

/// `meta` target: like [`text`], but the payload is first shaped into meta commands by
/// [`meta_stream`], so most inputs are requests the parser takes far.
pub fn meta(data: &[u8]) {
    let (sizes, payload) = split_schedule(data);
    let stream = meta_stream(payload);
    check_stream(&stream, &sizes);
}

/// Runs every check on one client byte stream.
fn check_stream(stream: &[u8], sizes: &[usize]) {
    check_parser(stream, &Limits::default());
    check_parser(
        stream,
        &Limits {
            config_cmd: true,
            ..Limits::default()
        },
    );
    check_sessions(stream, sizes);
}

/// Parses `stream` as a session would (consume, swallow, parse again) and checks each
/// outcome: lengths inside the buffer, progress on every request, and that the decision
/// does not depend on bytes past what it consumed.
fn check_parser(stream: &[u8], limits: &Limits) {
    let mut at = 0;
    while at < stream.len() {
        let buf = &stream[at..];
        let parsed = parse(buf, limits);
        let (consumed, swallow) = match &parsed {
            Parsed::Incomplete | Parsed::Close => return,
            Parsed::Done {
                consumed, swallow, ..
            }
            | Parsed::Error {
                consumed, swallow, ..
            } => (*consumed, *swallow),
        };
        assert!(
            consumed > 0 && consumed <= buf.len(),
            "consumed {consumed} of {} bytes: {parsed:?}",
            buf.len()
        );
        let again = parse(&buf[..consumed], limits);
        assert_eq!(
            again, parsed,
            "the parse of a request changed when the bytes after it were cut off"
        );
        at += consumed + swallow;
    }
}

/// Feeds `parts` one after another into a fresh session on `ctx`, processing after each;
/// returns all output and whether the session asked to close.
fn run_session(ctx: &Ctx, parts: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut session = Session::new();
    let mut output = Output::new(1);
    let mut all = Vec::new();
    for part in parts {
        session.feed(part);
        loop {
            let next = block_on(session.process(ctx, &mut output));
            // `verbosity 2` would log every later command to stderr: slow, and noise in
            // the fuzzer's output. Logging changes no reply; `stats settings` shows the
            // level, which `normalize` blanks.
            ctx.exec.shared
                .verbosity
                .store(0, std::sync::atomic::Ordering::Relaxed);
            block_on(output.resolve(None)).expect("one shard: nothing is forwarded");
            all.extend_from_slice(&output.out);
            output.clear();
            match next {
                Next::Read => break,
                Next::Again => continue,
                Next::Close => return (all, true),
            }
        }
    }
    (all, false)
}

/// A context as `tessera` builds for one executor, from the default configuration (plus
/// `cluster_config_set`).
fn ctx(max_line: Option<usize>) -> Ctx {
    // `config set cluster` on, so the `config` command is parsed and served too.
    let mut ctx = Ctx::standalone(Config {
        cluster_config_set: true,
        ..Config::default()
    });
    if let Some(m) = max_line {
        ctx.limits.max_line = m;
    }
    ctx
}

/// Whether some stretch of `stream` longer than `max` bytes has no newline. Only then may
/// the cut into reads change the outcome, as in memcached: a buffer of more than
/// `max_line` bytes without a newline is junk (closed) unless it starts a get.
fn has_long_line(stream: &[u8], max: usize) -> bool {
    stream.split(|&b| b == b'\n').any(|l| l.len() >= max)
}

/// Runs `stream` through a session whole and cut by `sizes`: no panic, and the same output
/// both ways.
fn check_sessions(stream: &[u8], sizes: &[usize]) {
    let mut max_line = None;
    if has_long_line(stream, Limits::default().max_line) {
        // Exercise the junk-line rule once (no panic); compare with it out of the way.
        run_session(&ctx(None), &chunks(stream, sizes));
        max_line = Some(usize::MAX);
    }
    let second = tessera::store::clock::unix_now();
    let whole = run_session(&ctx(max_line), &[stream]);
    let parts = run_session(&ctx(max_line), &chunks(stream, sizes));
    if tessera::store::clock::unix_now() != second {
        // The clock ticked between the runs: TTLs and ages may differ legitimately.
        return;
    }
    let (w, p) = (normalize(&whole.0), normalize(&parts.0));
    if w != p || whole.1 != parts.1 {
        panic!(
            "output differs when the input arrives in reads of {sizes:?}\n\
             whole (closed {}):\n{}\nin parts (closed {}):\n{}",
            whole.1,
            String::from_utf8_lossy(&w).escape_debug(),
            parts.1,
            String::from_utf8_lossy(&p).escape_debug()
        );
    }
}

/// Output with the values that differ between any two runs (CPU time; the verbosity,
/// which `run_session` resets after every pass) blanked.
fn normalize(out: &[u8]) -> Vec<u8> {
    let mut n = Vec::with_capacity(out.len());
    for line in out.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"STAT rusage_") || line.starts_with(b"STAT verbosity ") {
            let name_end = line[5..]
                .iter()
                .position(|&b| b == b' ')
                .map_or(line.len(), |p| p + 5);
            n.extend_from_slice(&line[..name_end]);
            n.extend_from_slice(b" *\r\n");
        } else {
            n.extend_from_slice(line);
        }
    }
    n
}

/// Keys the generated commands use: few, so commands meet each other's items.
const KEYS: [&[u8]; 6] = [b"k0", b"k1", b"k2", b"key3", b"a/b", b"k5"];
/// Base64 forms of some keys (with `b` they name the same items), and invalid ones.
const KEYS_B64: [&[u8]; 6] = [b"azA=", b"azE=", b"a2V5Mw==", b"YS9i", b"!!!!", b"az"];

/// Meta flag tokens; numbers come from the input where the last byte is `#`.
const FLAGS: [&[u8]; 40] = [
    b"v", b"q", b"k", b"s", b"t", b"c", b"f", b"h", b"l", b"u", b"b", b"I", b"x", b"O#", b"P",
    b"L", b"T#", b"N#", b"R#", b"F#", b"C#", b"E#", b"D#", b"J#", b"MS", b"ME", b"MA", b"MP",
    b"MR", b"MI", b"M+", b"MD", b"M-", b"Mz", b"M", b"T-1", b"C0", b"O", b"T", b"Z",
];

/// Text commands mixed in between meta ones.
const TEXT: [&[u8]; 12] = [
    b"get",
    b"gets",
    b"delete",
    b"incr",
    b"decr",
    b"touch",
    b"set",
    b"add",
    b"append",
    b"cas",
    b"flush_all",
    b"version",
];

/// A number for a `#` slot: small, negative, huge or junk.
fn number(r: &mut Reader<'_>, out: &mut Vec<u8>) {
    let b = r.byte();
    match b % 8 {
        0..=3 => out.extend_from_slice((b >> 3).to_string().as_bytes()),
        4 => out.extend_from_slice(format!("-{}", b >> 3).as_bytes()),
        5 => out.extend_from_slice(r.u16().to_string().as_bytes()),
        6 => out.extend_from_slice(
            [
                &b"18446744073709551615"[..],
                b"18446744073709551616",
                b"2147483647",
                b"4294967296",
                b"-2147483649",
                b"0x10",
                b"1a",
                b"",
            ][(b >> 3) as usize % 8],
        ),
        _ => out.extend_from_slice(r.take((b >> 3) as usize % 40)),
    }
}

/// A key for a generated command.
fn key(r: &mut Reader<'_>, out: &mut Vec<u8>) -> bool {
    let b = r.byte();
    match b {
        0..=199 => {
            out.extend_from_slice(KEYS[b as usize % KEYS.len()]);
            false
        }
        200..=239 => {
            out.extend_from_slice(KEYS_B64[b as usize % KEYS_B64.len()]);
            true
        }
        240..=247 => {
            out.extend(std::iter::repeat_n(b'k', 240 + r.byte() as usize % 20));
            false
        }
        _ => {
            let n = r.byte() as usize % 16;
            out.extend_from_slice(r.take(n));
            false
        }
    }
}

/// Shapes input bytes into a stream of meta commands (with some text commands and raw
/// bytes among them): each command is an opcode byte, a key, flags from a table with numbers
/// from the input, a data block for `ms` (usually of the declared length), and a line end.
pub fn meta_stream(data: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        let op = r.byte();
        let cmd: &[u8] = match op % 16 {
            0..=2 | 12 => b"mg",
            3 | 4 | 13 => b"ms",
            5 | 14 => b"md",
            6 | 7 => b"ma",
            8 => b"mn",
            9 => b"me",
            10 => TEXT[r.byte() as usize % TEXT.len()],
            _ => {
                // raw bytes, then maybe a line end
                let n = r.byte() as usize % 48;
                out.extend_from_slice(r.take(n));
                if op & 0x10 != 0 {
                    out.extend_from_slice(b"\r\n");
                }
                continue;
            }
        };
        out.extend_from_slice(cmd);
        let mut vlen = None;
        if cmd != b"mn" && cmd != b"version" && cmd != b"flush_all" {
            out.push(b' ');
            let b64 = key(&mut r, &mut out);
            if cmd == b"ms" {
                let l = match r.byte() {
                    255 => 2 * 1024 * 1024, // past -I: swallowed
                    b => b as usize % 100,
                };
                out.extend_from_slice(format!(" {l}").as_bytes());
                vlen = Some(l);
            } else if cmd[0] != b'm' {
                // text: the numeric arguments its usage wants (or a few more)
                let args = match cmd {
                    b"get" | b"gets" | b"delete" => r.byte() as usize % 3,
                    b"incr" | b"decr" | b"touch" => 1,
                    b"cas" => 4,
                    _ => 3,
                };
                for _ in 0..args {
                    out.push(b' ');
                    number(&mut r, &mut out);
                }
                if matches!(cmd, b"set" | b"add" | b"append" | b"cas") {
                    // the declared length is the last number written
                    let l = out
                        .rsplit(|&b| b == b' ')
                        .next()
                        .and_then(|t| std::str::from_utf8(t).ok()?.parse::<usize>().ok());
                    vlen = l.filter(|&l| l < 4096);
                }
            }
            if cmd[0] == b'm' {
                let nflags = r.byte() % 8;
                if b64 {
                    out.extend_from_slice(b" b");
                }
                for _ in 0..nflags {
                    let f = FLAGS[r.byte() as usize % FLAGS.len()];
                    out.extend_from_slice(b" ");
                    match f.strip_suffix(b"#") {
                        Some(head) => {
                            out.extend_from_slice(head);
                            number(&mut r, &mut out);
                        }
                        None => out.extend_from_slice(f),
                    }
                }
            }
        }
        if op & 0x20 != 0 {
            out.push(b' '); // trailing space
        }
        out.extend_from_slice(if op & 0x40 != 0 { b"\n" } else { b"\r\n" });
        if let Some(l) = vlen.filter(|&l| l <= 1024 * 1024) {
            let fill = r.byte();
            out.extend(std::iter::repeat_n(b'a' + fill % 26, l));
            // usually a good block end; sometimes a bad one
            out.extend_from_slice(if op & 0x80 == 0 { b"\r\n" } else { b"xx" });
        }
    }
    out
}
