//! The HTTP admin listener (`-o admin_listen=[IP:]PORT`, off by default; a bare port binds
//! 127.0.0.1): Prometheus metrics at `/metrics`, a health check at `/health`.
//!
//! It runs on a thread of its own, not on an executor, so a scrape never takes time from
//! the cores that serve requests. Each connection gets one response and is closed
//! (`Connection: close`); at most [`MAX_CONNS`] are served at once, each with a 5 s limit
//! to send its request.
//!
//! Metrics (all `tessera_`):
//! - every numeric `stats` value, from the same typed report `stats` encodes, as the kind its
//!   entry declares: counters as `tessera_<name>_total`, gauges as `tessera_<name>`; they
//!   ignore `stats reset` (Prometheus expects counters that only go up);
//! - per shard: `tessera_shard_<name>[_total]{shard="N"}`;
//! - `tessera_command_duration_seconds{cmd=...}`: a histogram of command service time, from
//!   a request being parsed to its reply being ready to write (forwarding included);
//! - TLS: the `ssl_*` counters above plus `tessera_tls_kernel_available` and
//!   `tessera_tls_info{kernel_tls="auto|on|off"}`;
//! - `tessera_executor_heartbeat_age_seconds{executor="N"}`, `tessera_info{...}`.
//!
//! `/health` is 200 `ok` while every executor has run its loop in the last second and the
//! server is accepting, else 503 with the reason.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::server::{MEMCACHED_VERSION, Shared, TESSERA_VERSION};
use crate::stats::{CMD_CLASSES, Kind, LATENCY_BUCKETS, Report, latency_bound_secs};

/// Connections served at once; more get a 503 at once.
pub const MAX_CONNS: usize = 16;
/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request (and to take the response).
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// An executor whose heartbeat is older than this is reported unhealthy.
const HEARTBEAT_MAX_AGE_MS: u64 = 1000;

/// Serves the admin listener on a thread of its own for the life of the process.
pub fn spawn(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tessera-admin".into())
        .spawn(move || accept_loop(listener, shared))
        .map(|_| ())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                if shared.verbose() > 0 {
                    eprintln!("tessera: admin listener: accept failed: {e}");
                }
                // EMFILE and the like: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = respond(
                &mut conn,
                503,
                "text/plain",
                b"busy: too many admin connections\n",
                false,
            );
            continue;
        }
        let shared = shared.clone();
        let active2 = active.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-admin-conn".into())
            .spawn(move || {
                serve(conn, &shared);
                active2.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::AcqRel);
            eprintln!("tessera: admin listener: cannot start a connection thread: {e}");
        }
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    method: String,
    path: String,
}

/// Parses the request line of a complete head; `Err` is the 400 reason.
fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "the request is not UTF-8")?;
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("bad request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Err("not HTTP/1.x");
    }
    if method.is_empty() || !target.starts_with('/') {
        return Err("bad request line");
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    Ok(Head {
        method: method.to_string(),
        path: path.to_string(),
    })
}

/// Reads until the end of the head (`\r\n\r\n`); None if the client gave up or sent junk.
fn read_head(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    while std::time::Instant::now() < deadline && buf.len() <= MAX_HEAD {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = find(&buf, b"\r\n\r\n").or_else(|| find(&buf, b"\n\n")) {
            buf.truncate(end);
            return Some(buf);
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(mut conn: TcpStream, shared: &Shared) {
    let Some(head) = read_head(&mut conn) else {
        let _ = respond(
            &mut conn,
            400,
            "text/plain",
            b"incomplete or oversized request\n",
            false,
        );
        return;
    };
    let head = match parse_head(&head) {
        Ok(h) => h,
        Err(why) => {
            let _ = respond(
                &mut conn,
                400,
                "text/plain",
                format!("{why}\n").as_bytes(),
                false,
            );
            return;
        }
    };
    let head_only = head.method == "HEAD";
    if head.method != "GET" && !head_only {
        let _ = respond(
            &mut conn,
            405,
            "text/plain",
            b"only GET and HEAD\n",
            head_only,
        );
        return;
    }
    let (status, ctype, body): (u16, &str, Vec<u8>) = match head.path.as_str() {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(shared).into_bytes(),
        ),
        "/health" | "/healthz" => {
            let (ok, text) = health(shared);
            (if ok { 200 } else { 503 }, "text/plain", text.into_bytes())
        }
        "/" => (
            200,
            "text/plain",
            b"tessera admin: /metrics (Prometheus), /health\n".to_vec(),
        ),
        _ => (
            404,
            "text/plain",
            b"not found: try /metrics or /health\n".to_vec(),
        ),
    };
    let _ = respond(&mut conn, status, ctype, &body, head_only);
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    conn.write_all(&bytes)?;
    conn.flush()
}

/// Whether the server is healthy, and a line saying why (or why not).
pub fn health(shared: &Shared) -> (bool, String) {
    if shared.shutdown.load(Ordering::Relaxed) {
        return (false, "shutting down\n".into());
    }
    let now = shared.uptime_ms();
    let mut stale = Vec::new();
    for (i, h) in shared.heartbeats.iter().enumerate() {
        let at = h.load(Ordering::Relaxed);
        if at == 0 {
            stale.push(format!("executor {i} has not started"));
        } else if now.saturating_sub(at) > HEARTBEAT_MAX_AGE_MS {
            stale.push(format!(
                "executor {i} has not run its loop for {} ms",
                now - at
            ));
        }
    }
    if stale.is_empty() {
        (
            true,
            format!("ok: {} executor(s) running\n", shared.heartbeats.len()),
        )
    } else {
        (false, format!("unhealthy: {}\n", stale.join("; ")))
    }
}

/// Prometheus text format: one metric family.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        use std::fmt::Write;
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        use std::fmt::Write;
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus family of a report entry: (metric name, type), or None for what is not a
/// metric of its own (descriptions and text: versions go in `tessera_info`).
fn family(name: &str, prefix: &str, kind: Kind, numeric: bool) -> Option<(String, &'static str)> {
    if !numeric {
        return None;
    }
    match kind {
        Kind::Counter => Some((format!("{prefix}{name}_total"), "counter")),
        Kind::Gauge => Some((format!("{prefix}{name}"), "gauge")),
        Kind::Info => None,
    }
}

/// The `/metrics` page.
pub fn metrics(shared: &Shared) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let mut f = Family { out: &mut out };

    // Every `stats` value, from counters that `stats reset` leaves alone.
    let general = crate::stats::general(shared, shared.stats.raw_snapshot());
    for e in general.entries() {
        if let Some((m, kind)) = family(&e.name, "tessera_", e.kind, e.value.is_number()) {
            f.header(&m, kind, &format!("stats {}", e.name));
            f.sample(&m, "", &e.value);
        }
    }
    f.header("tessera_info", "gauge", "versions (value 1)");
    f.sample(
        "tessera_info",
        &format!(
            "version=\"{}\",memcached_version=\"{MEMCACHED_VERSION}\"",
            label(TESSERA_VERSION)
        ),
        1,
    );

    // Per shard: one family per stat, one sample per shard.
    let n = shared.stats.shards();
    let shards: Vec<Report> = (0..n).map(|i| shared.stats.shard(i).report()).collect();
    if let Some(first) = shards.first() {
        for (k, e) in first.entries().iter().enumerate() {
            let Some((m, kind)) = family(&e.name, "tessera_shard_", e.kind, e.value.is_number())
            else {
                continue;
            };
            f.header(&m, kind, &format!("{} of one shard (executor)", e.name));
            for (i, report) in shards.iter().enumerate() {
                f.sample(&m, &format!("shard=\"{i}\""), &report.entries()[k].value);
            }
        }
    }

    // Service time.
    let lat = shared.stats.latency_snapshot();
    let m = "tessera_command_duration_seconds";
    f.header(
        m,
        "histogram",
        "command service time: from parsing a request to its reply being ready to write",
    );
    for (c, cmd) in CMD_CLASSES.iter().enumerate() {
        let mut cumulative = 0u64;
        for b in 0..LATENCY_BUCKETS {
            cumulative += lat.buckets[c][b];
            let le = match latency_bound_secs(b) {
                Some(s) => format!("{s:e}"),
                None => "+Inf".into(),
            };
            f.sample(
                &format!("{m}_bucket"),
                &format!("cmd=\"{cmd}\",le=\"{le}\""),
                cumulative,
            );
        }
        f.sample(
            &format!("{m}_sum"),
            &format!("cmd=\"{cmd}\""),
            lat.sum_ns[c] as f64 / 1e9,
        );
        f.sample(&format!("{m}_count"), &format!("cmd=\"{cmd}\""), cumulative);
    }

    // TLS and kTLS state.
    if let Some(tls) = &shared.tls {
        f.header(
            "tessera_tls_kernel_available",
            "gauge",
            "1 if the kernel offers kTLS (probed at startup)",
        );
        f.sample(
            "tessera_tls_kernel_available",
            "",
            u8::from(tls.kernel.unavailable.is_none()),
        );
        f.header("tessera_tls_info", "gauge", "TLS settings (value 1)");
        f.sample(
            "tessera_tls_info",
            &format!(
                "kernel_tls=\"{}\",kernel=\"{}\"",
                tls.settings.kernel_tls.name(),
                label(&tls.kernel.describe())
            ),
            1,
        );
    }

    // Liveness.
    let now = shared.uptime_ms();
    let m = "tessera_executor_heartbeat_age_seconds";
    f.header(m, "gauge", "seconds since each executor last ran its loop");
    for (i, h) in shared.heartbeats.iter().enumerate() {
        let at = h.load(Ordering::Relaxed);
        let age = match at {
            0 => "+Inf".to_string(), // not started
            at => (now.saturating_sub(at) as f64 / 1e3).to_string(),
        };
        f.sample(m, &format!("executor=\"{i}\""), age);
    }
    let (ok, _) = health(shared);
    f.header("tessera_up", "gauge", "1 when /health answers 200");
    f.sample("tessera_up", "", u8::from(ok));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a"),
            Ok(Head {
                method: "GET".into(),
                path: "/metrics".into()
            })
        );
        assert!(parse_head(b"GET /metrics").is_err());
        assert!(parse_head(b"GET metrics HTTP/1.1").is_err());
        assert!(parse_head(b"GET /metrics SPDY/3").is_err());
        assert!(parse_head(b"GET  /metrics HTTP/1.1").is_err());
        assert!(parse_head(b"\xff\xfe").is_err());
    }

    #[test]
    fn metrics_cover_stats_shards_and_histograms() {
        let cfg = crate::config::Config {
            threads: 2,
            ..Default::default()
        };
        let shared = Shared::new(cfg);
        shared.stats.shard(0).cmd_get.add(3);
        shared.stats.shard(1).cmd_get.add(4);
        shared.stats.shard(1).curr_items.set(9);
        shared.stats.latency(1).observe(0, 1000);
        shared.stats.reset(); // Prometheus counters ignore it
        let text = metrics(&shared);
        assert!(text.contains("\ntessera_cmd_get_total 7\n"), "{text}");
        assert!(text.contains("\ntessera_curr_items 9\n"));
        assert!(text.contains("tessera_shard_cmd_get_total{shard=\"0\"} 3\n"));
        assert!(text.contains("tessera_shard_cmd_get_total{shard=\"1\"} 4\n"));
        assert!(text.contains("tessera_shard_curr_items{shard=\"1\"} 9\n"));
        assert!(text.contains("# TYPE tessera_cmd_get_total counter\n"));
        assert!(text.contains("# TYPE tessera_uptime gauge\n"));
        // 1000 ns is in the 1024 ns bucket; every later bucket counts it too.
        assert!(
            text.contains(
                "tessera_command_duration_seconds_bucket{cmd=\"get\",le=\"5.12e-7\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_command_duration_seconds_bucket{cmd=\"get\",le=\"1.024e-6\"} 1\n"
            )
        );
        assert!(
            text.contains("tessera_command_duration_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 1\n")
        );
        assert!(text.contains("tessera_command_duration_seconds_count{cmd=\"get\"} 1\n"));
        assert!(text.contains("tessera_command_duration_seconds_sum{cmd=\"get\"} 0.000001\n"));
        // No executor has run: not healthy.
        assert!(text.contains("\ntessera_up 0\n"));
        assert!(!health(&shared).0);
        shared.heartbeat(0);
        shared.heartbeat(1);
        assert!(health(&shared).0);
        shared.begin_shutdown("test");
        assert_eq!(health(&shared), (false, "shutting down\n".to_string()));
        // Each sample line: name{labels} value, with a number for the value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect(line);
            assert!(
                value.parse::<f64>().is_ok() || value == "+Inf",
                "bad sample line {line:?}"
            );
        }
    }
}
