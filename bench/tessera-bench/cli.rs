//! Command-line parsing (by hand: every error names the option and what it expected).

use crate::proto::Proto;
use crate::tls::{TlsMin, TlsOpts};
use crate::workload::{Dist, ValueSize};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const USAGE: &str = "\
tessera-bench: load generator for memcached-protocol servers (tessera, memcached, ...)

USAGE:
  tessera-bench [OPTIONS] --target [NAME=][tcp://|tls://]HOST:PORT[?KEY=VALUE&...]
  tessera-bench --compare [OPTIONS] --target A=... --target B=... [--target C=...]

TARGETS
  -s, --target SPEC      server to drive; repeat with --compare. NAME names it in tables and
                         plots (default: the address). tls:// speaks TLS. Per-target settings
                         after '?': proto, pipeline, batch, resume, tls-min, sni, cacert, cert,
                         key, skip-verify, pid, e.g. 'full=tls://127.0.0.1:11211?resume=off'.
                         pid=PID: the server's process; its CPU time per operation
                         (from /proc/PID/task/*/schedstat) is measured over each round
      --compare          run all targets back to back, alternating A,B,A,B... for --rounds,
                         and print each target's ratios to the first (median, min-max)
      --rounds N         rounds per target with --compare (default 3)
      --mode MODE        load (default): requests over kept-open connections;
                         handshake: each connection connects (TLS handshake), sends one
                         version/mn, reads the reply and closes; reports connections/s

WORKLOAD
  -P, --protocol P       text (get/set, default) or meta (mg/ms)
  -c, --connections N    connections in total (default 50), spread over the threads
  -t, --threads N        client threads, one glommio executor each (default 1)
      --cpus LIST        pin thread i to the i-th CPU of LIST (e.g. 0 or 2,3)
  -d, --pipeline N       requests in flight per connection (default 1), refilled as replies
                         arrive (memtier_benchmark's --pipeline)
      --batch            with --pipeline N: write N requests at once, then wait for all N
                         replies before the next write (redis-benchmark's -P)
      --ratio G:S        gets to sets (default 9:1; 1:0 is read-only)
      --keys N           key space (default 100000); keys are PREFIX%010d
      --key-prefix S     (default 'key:')
      --dist D           uniform (default), zipf (s=0.99) or zipf:S
      --value-size N|A-B value bytes, fixed or uniform in A..=B (default 100)
      --time DUR         run time per round (default 10s; 500ms, 2m, ...)
  -n, --requests N       total requests per round instead of a time (100k, 1M ok)
      --preload          set every key once before a target's first round
      --rate OPS         open loop at OPS requests/s in total; latency counts from each
                         request's intended send time (corrects coordinated omission)
      --seed N           RNG seed (default 1)
      --timeout DUR      abort when nothing completes for this long (default 10s)

TLS (defaults for tls:// targets)
      --tls-cacert FILE  CAs to verify the server with
      --tls-cert FILE    client certificate chain (with --tls-key) for mTLS
      --tls-key FILE     client private key
      --tls-skip-verify  accept any server certificate
      --tls-min V        1.2 (default) or 1.3
      --tls-resume on|off  session resumption (tickets/IDs; default on)
      --tls-sni NAME     server name to send and verify (default: the target's host)

OUTPUT
      --json FILE        summary as JSON
      --hgrm-dir DIR     HdrHistogram percentile files DIR/TARGET.OP.hgrm (values in us)
      --svg FILE         latency-by-percentile plot of all targets
      --svg-y log|lin    latency axis of the plot (default log)
      --svg-ops          one line per target and operation (default: per target)
      --title TEXT       title of the plot
  -q, --quiet            no progress lines on stderr
      --syscalls         also count the system calls of each target's pid= over each
                         round (runs `perf stat -e raw_syscalls:sys_enter -p PID`)
  -h, --help             this text
  -V, --version          version
";

/// What a run does on each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Load,
    Handshake,
}

/// When a round ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Time(Duration),
    Requests(u64),
}

/// One server to drive, with its effective settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) proto: Proto,
    pub(crate) pipeline: usize,
    /// Send the whole pipeline, then wait for all of it (redis-benchmark -P style).
    pub(crate) batch: bool,
    pub(crate) tls_opts: TlsOpts,
    /// The server's process: its CPU time (and with --syscalls its system calls) is
    /// measured over each round.
    pub(crate) pid: Option<u32>,
}

impl Target {
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "tls" } else { "tcp" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Axis of the plot's latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum YScale {
    Log,
    Linear,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Config {
    pub(crate) targets: Vec<Target>,
    pub(crate) compare: bool,
    pub(crate) rounds: u32,
    pub(crate) mode: Mode,
    pub(crate) connections: usize,
    pub(crate) threads: usize,
    pub(crate) cpus: Option<Vec<usize>>,
    pub(crate) get_weight: u32,
    pub(crate) set_weight: u32,
    pub(crate) keys: u64,
    pub(crate) key_prefix: String,
    pub(crate) dist: Dist,
    pub(crate) value_size: ValueSize,
    pub(crate) stop: Stop,
    pub(crate) preload: bool,
    pub(crate) rate: Option<f64>,
    pub(crate) seed: u64,
    pub(crate) timeout: Duration,
    pub(crate) json: Option<PathBuf>,
    pub(crate) hgrm_dir: Option<PathBuf>,
    pub(crate) svg: Option<PathBuf>,
    pub(crate) svg_y: YScale,
    pub(crate) svg_ops: bool,
    pub(crate) title: Option<String>,
    pub(crate) quiet: bool,
    /// Count each target server's system calls per round (`perf stat`; needs pid=).
    pub(crate) syscalls: bool,
}

impl Config {
    /// Fraction of requests that are gets.
    pub(crate) fn get_fraction(&self) -> f64 {
        f64::from(self.get_weight) / f64::from(self.get_weight + self.set_weight)
    }
}

#[derive(Debug, PartialEq)]
pub(crate) enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
}

/// "10s", "1.5s", "250ms", "2m", "1h", or bare seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)");
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 0.000_001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = v * mult;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e7 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A count with an optional k/M/G (x1000) suffix: "50", "100k", "1.5M".
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a count (e.g. 100, 100k, 2M)");
    let t = s.replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (&t[..], 1.0),
    };
    if mult == 1.0 {
        return num.parse::<u64>().map_err(|_| bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let r = v * mult;
    if !(r.is_finite() && (0.0..=1e18).contains(&r)) || r.fract() != 0.0 {
        return Err(bad());
    }
    Ok(r as u64)
}

fn parse_onoff(s: &str) -> Result<bool, String> {
    match s {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(format!("`{s}`: expected on or off")),
    }
}

fn parse_proto(s: &str) -> Result<Proto, String> {
    match s {
        "text" | "ascii" | "memcache_text" => Ok(Proto::Text),
        "meta" => Ok(Proto::Meta),
        _ => Err(format!("`{s}`: protocol is text or meta")),
    }
}

fn parse_tls_min(s: &str) -> Result<TlsMin, String> {
    match s {
        "1.2" | "tlsv1.2" | "TLSv1.2" => Ok(TlsMin::V12),
        "1.3" | "tlsv1.3" | "TLSv1.3" => Ok(TlsMin::V13),
        _ => Err(format!("`{s}`: TLS minimum version is 1.2 or 1.3")),
    }
}

fn parse_pipeline(s: &str) -> Result<usize, String> {
    match parse_count(s) {
        Ok(n) if (1..=65536).contains(&n) => Ok(n as usize),
        _ => Err(format!("`{s}`: pipeline depth is 1..=65536")),
    }
}

pub(crate) fn parse_dist(s: &str) -> Result<Dist, String> {
    if s == "uniform" {
        return Ok(Dist::Uniform);
    }
    if s == "zipf" {
        return Ok(Dist::Zipf(0.99));
    }
    if let Some(p) = s.strip_prefix("zipf:").or_else(|| s.strip_prefix("zipf=")) {
        let v: f64 = p
            .parse()
            .map_err(|_| format!("`{s}`: Zipf parameter `{p}` is not a number"))?;
        if !(v.is_finite() && (0.0..=10.0).contains(&v)) {
            return Err(format!("`{s}`: Zipf parameter must be in 0..=10"));
        }
        return Ok(Dist::Zipf(v));
    }
    Err(format!("`{s}`: distribution is uniform, zipf or zipf:S"))
}

pub(crate) fn parse_value_size(s: &str) -> Result<ValueSize, String> {
    const MAX: usize = 64 << 20;
    let num = |t: &str| -> Result<usize, String> {
        t.parse::<usize>()
            .ok()
            .filter(|&n| n <= MAX)
            .ok_or_else(|| format!("`{s}`: value size is N or MIN-MAX bytes, at most {MAX}"))
    };
    let (min, max) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if min > max {
        return Err(format!(
            "`{s}`: value size range is MIN-MAX with MIN <= MAX"
        ));
    }
    Ok(ValueSize { min, max })
}

fn parse_ratio(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}`: ratio is GETS:SETS, e.g. 9:1, 1:0 or 0:1");
    let (g, sv) = s.split_once(':').ok_or_else(bad)?;
    let g: u32 = g.parse().map_err(|_| bad())?;
    let sv: u32 = sv.parse().map_err(|_| bad())?;
    if g == 0 && sv == 0 || g > 1_000_000 || sv > 1_000_000 {
        return Err(bad());
    }
    Ok((g, sv))
}

fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n < 4096)
                .ok_or_else(|| format!("`{s}`: CPU list is numbers separated by commas"))
        })
        .collect()
}

/// Splits `[NAME=][scheme://]HOST:PORT[?query]`, applying the query to a copy of the
/// defaults.
pub(crate) fn parse_target(
    spec: &str,
    proto: Proto,
    pipeline: usize,
    batch: bool,
    tls: &TlsOpts,
) -> Result<Target, String> {
    let err = |m: &str| format!("--target `{spec}`: {m}");
    let (main, query) = match spec.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (spec, None),
    };
    let (name, url) = match main.split_once('=') {
        Some((n, u)) => {
            if n.is_empty() {
                return Err(err("empty name before '='"));
            }
            (Some(n.to_string()), u)
        }
        None => (None, main),
    };
    let (is_tls, hostport) = if let Some(r) = url.strip_prefix("tls://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("tcp://") {
        (false, r)
    } else if url.contains("://") {
        return Err(err("scheme is tcp:// or tls://"));
    } else {
        (false, url)
    };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, p) = r
            .split_once("]:")
            .ok_or_else(|| err("IPv6 address is [ADDR]:PORT"))?;
        (h, p)
    } else {
        hostport
            .rsplit_once(':')
            .ok_or_else(|| err("address is HOST:PORT"))?
    };
    if host.is_empty() {
        return Err(err("empty host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| err("port is 1..=65535"))?;
    let mut t = Target {
        name: name.unwrap_or_else(|| main.to_string()),
        host: host.to_string(),
        port,
        tls: is_tls,
        proto,
        pipeline,
        batch,
        tls_opts: tls.clone(),
        pid: None,
    };
    for kv in query
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let r: Result<(), String> = match k {
            "proto" | "protocol" => parse_proto(v).map(|p| t.proto = p),
            "pipeline" => parse_pipeline(v).map(|p| t.pipeline = p),
            "batch" => {
                if v.is_empty() {
                    t.batch = true;
                    Ok(())
                } else {
                    parse_onoff(v).map(|b| t.batch = b)
                }
            }
            "resume" => parse_onoff(v).map(|b| t.tls_opts.resume = b),
            "pid" => match v.parse::<u32>() {
                Ok(pid) if pid > 0 => {
                    t.pid = Some(pid);
                    Ok(())
                }
                _ => Err(format!("pid `{v}` is not a process id")),
            },
            "tls-min" => parse_tls_min(v).map(|m| t.tls_opts.min = m),
            "sni" => {
                t.tls_opts.sni = Some(v.to_string());
                Ok(())
            }
            "cacert" => {
                t.tls_opts.cacert = Some(PathBuf::from(v));
                Ok(())
            }
            "cert" => {
                t.tls_opts.cert = Some(PathBuf::from(v));
                Ok(())
            }
            "key" => {
                t.tls_opts.key = Some(PathBuf::from(v));
                Ok(())
            }
            "skip-verify" => {
                if v.is_empty() {
                    t.tls_opts.skip_verify = true;
                    Ok(())
                } else {
                    parse_onoff(v).map(|b| t.tls_opts.skip_verify = b)
                }
            }
            _ => Err(format!(
                "unknown setting `{k}` (proto, pipeline, batch, resume, tls-min, sni, cacert, cert, \
                 key, skip-verify, pid)"
            )),
        };
        r.map_err(|e| err(&e))?;
    }
    Ok(t)
}

/// Parses the arguments after the program name.
pub(crate) fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Parsed, String> {
    let mut specs: Vec<String> = Vec::new();
    let mut compare = false;
    let mut rounds: Option<u32> = None;
    let mut mode = Mode::Load;
    let mut proto = Proto::Text;
    let mut connections = 50usize;
    let mut threads = 1usize;
    let mut cpus = None;
    let mut pipeline = 1usize;
    let mut batch = false;
    let (mut get_weight, mut set_weight) = (9u32, 1u32);
    let mut keys = 100_000u64;
    let mut key_prefix = "key:".to_string();
    let mut dist = Dist::Uniform;
    let mut value_size = ValueSize { min: 100, max: 100 };
    let mut time: Option<Duration> = None;
    let mut requests: Option<u64> = None;
    let mut preload = false;
    let mut rate = None;
    let mut seed = 1u64;
    let mut timeout = Duration::from_secs(10);
    let mut tls = TlsOpts::default();
    let mut json = None;
    let mut hgrm_dir = None;
    let mut svg = None;
    let mut svg_y = YScale::Log;
    let mut svg_ops = false;
    let mut title = None;
    let mut quiet = false;
    let mut syscalls = false;

    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        // The option's value: inline after '=' or the next argument.
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args
                .get(i)
                .map(|s| s.as_ref().to_string())
                .ok_or_else(|| format!("{flag} needs a value"))?;
            i += 1;
            Ok(v)
        };
        let ctx = |e: String| format!("{flag}: {e}");
        // Boolean flags must not carry "=value".
        if matches!(
            flag,
            "--compare"
                | "--preload"
                | "--batch"
                | "--tls-skip-verify"
                | "--insecure"
                | "--svg-ops"
                | "--quiet"
                | "--syscalls"
        ) && inline.is_some()
        {
            return Err(format!("{flag} takes no value"));
        }
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "-s" | "--target" | "--server" => specs.push(value()?),
            "--compare" => compare = true,
            "--rounds" => {
                let v = value()?;
                rounds = Some(
                    parse_count(&v)
                        .ok()
                        .filter(|&n| (1..=1000).contains(&n))
                        .ok_or_else(|| ctx(format!("`{v}`: rounds is 1..=1000")))?
                        as u32,
                )
            }
            "--mode" => {
                mode = match value()?.as_str() {
                    "load" => Mode::Load,
                    "handshake" | "connect" => Mode::Handshake,
                    v => return Err(ctx(format!("`{v}`: mode is load or handshake"))),
                }
            }
            "-P" | "--protocol" => proto = parse_proto(&value()?).map_err(ctx)?,
            "-c" | "--connections" | "--clients" => {
                let v = value()?;
                connections = parse_count(&v)
                    .ok()
                    .filter(|&n| (1..=100_000).contains(&n))
                    .ok_or_else(|| ctx(format!("`{v}`: connections is 1..=100000")))?
                    as usize
            }
            "-t" | "--threads" => {
                let v = value()?;
                threads = parse_count(&v)
                    .ok()
                    .filter(|&n| (1..=1024).contains(&n))
                    .ok_or_else(|| ctx(format!("`{v}`: threads is 1..=1024")))?
                    as usize
            }
            "--cpus" => cpus = Some(parse_cpus(&value()?).map_err(ctx)?),
            "-d" | "--pipeline" => pipeline = parse_pipeline(&value()?).map_err(ctx)?,
            "--ratio" => (get_weight, set_weight) = parse_ratio(&value()?).map_err(ctx)?,
            "--keys" | "--key-maximum" => {
                let v = value()?;
                keys = parse_count(&v)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| ctx(format!("`{v}`: key count is at least 1")))?
            }
            "--key-prefix" => key_prefix = value()?,
            "--dist" | "--key-pattern" => dist = parse_dist(&value()?).map_err(ctx)?,
            "--value-size" | "--data-size" => {
                value_size = parse_value_size(&value()?).map_err(ctx)?
            }
            "--time" | "--test-time" => time = Some(parse_duration(&value()?).map_err(ctx)?),
            "-n" | "--requests" => {
                let v = value()?;
                requests = Some(
                    parse_count(&v)
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| ctx(format!("`{v}`: requests is at least 1")))?,
                )
            }
            "--preload" => preload = true,
            "--batch" => batch = true,
            "--rate" => {
                let v = value()?;
                let r: f64 = v
                    .trim_end_matches(['k', 'K'])
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| ctx(format!("`{v}`: rate is requests per second > 0")))?;
                rate = Some(if v.ends_with(['k', 'K']) { r * 1e3 } else { r });
            }
            "--seed" => {
                let v = value()?;
                seed = v
                    .parse()
                    .map_err(|_| ctx(format!("`{v}`: seed is a number")))?
            }
            "--timeout" => timeout = parse_duration(&value()?).map_err(ctx)?,
            "--tls-cacert" | "--cacert" => tls.cacert = Some(PathBuf::from(value()?)),
            "--tls-cert" => tls.cert = Some(PathBuf::from(value()?)),
            "--tls-key" => tls.key = Some(PathBuf::from(value()?)),
            "--tls-skip-verify" | "--insecure" => tls.skip_verify = true,
            "--tls-min" => tls.min = parse_tls_min(&value()?).map_err(ctx)?,
            "--tls-resume" | "--resume" => tls.resume = parse_onoff(&value()?).map_err(ctx)?,
            "--tls-sni" | "--sni" => tls.sni = Some(value()?),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--hgrm-dir" => hgrm_dir = Some(PathBuf::from(value()?)),
            "--svg" => svg = Some(PathBuf::from(value()?)),
            "--svg-y" => {
                svg_y = match value()?.as_str() {
                    "log" => YScale::Log,
                    "lin" | "linear" => YScale::Linear,
                    v => return Err(ctx(format!("`{v}`: log or lin"))),
                }
            }
            "--svg-ops" => svg_ops = true,
            "--title" => title = Some(value()?),
            "-q" | "--quiet" => quiet = true,
            "--syscalls" => syscalls = true,
            _ => {
                return Err(format!(
                    "unknown option `{arg}` (tessera-bench --help lists them)"
                ));
            }
        }
    }

    if specs.is_empty() {
        return Err("no --target given (e.g. --target 127.0.0.1:11211)".into());
    }
    if specs.len() > 1 && !compare {
        return Err("several targets need --compare".into());
    }
    if compare && specs.len() < 2 {
        return Err("--compare needs at least two --target".into());
    }
    if rounds.is_some() && !compare {
        return Err("--rounds goes with --compare".into());
    }
    if threads > connections {
        return Err(format!(
            "{threads} threads for {connections} connections: each thread needs a connection"
        ));
    }
    let stop = match (time, requests) {
        (Some(_), Some(_)) => return Err("give --time or --requests, not both".into()),
        (_, Some(n)) => Stop::Requests(n),
        (Some(t), None) => Stop::Time(t),
        (None, None) => Stop::Time(Duration::from_secs(10)),
    };
    let targets = specs
        .iter()
        .map(|s| parse_target(s, proto, pipeline, batch, &tls))
        .collect::<Result<Vec<_>, _>>()?;
    for (a, t) in targets.iter().enumerate() {
        if targets[..a].iter().any(|o| o.name == t.name) {
            return Err(format!("two targets are named `{}`", t.name));
        }
    }
    if syscalls && targets.iter().all(|t| t.pid.is_none()) {
        return Err("--syscalls counts the calls of a target's server: give it pid=PID".into());
    }
    Ok(Parsed::Run(Box::new(Config {
        targets,
        compare,
        rounds: rounds.unwrap_or(if compare { 3 } else { 1 }),
        mode,
        connections,
        threads,
        cpus,
        get_weight,
        set_weight,
        keys,
        key_prefix,
        dist,
        value_size,
        stop,
        preload,
        rate,
        seed,
        timeout,
        json,
        hgrm_dir,
        svg,
        svg_y,
        svg_ops,
        title,
        quiet,
        syscalls,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse_args(args) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn fails(args: &[&str], needle: &str) {
        match parse_args(args) {
            Err(e) => assert!(e.contains(needle), "{args:?}: error `{e}` lacks `{needle}`"),
            Ok(p) => panic!("{args:?} parsed: {p:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&["--target", "127.0.0.1:11211"]);
        assert_eq!(c.connections, 50);
        assert_eq!(c.threads, 1);
        assert_eq!(c.stop, Stop::Time(Duration::from_secs(10)));
        assert_eq!(c.rounds, 1);
        assert_eq!((c.get_weight, c.set_weight), (9, 1));
        assert!((c.get_fraction() - 0.9).abs() < 1e-12);
        let t = &c.targets[0];
        assert_eq!(t.name, "127.0.0.1:11211");
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("127.0.0.1", 11211, false)
        );
        assert_eq!(t.proto, Proto::Text);
        assert_eq!(t.pipeline, 1);
        assert!(t.tls_opts.resume);
    }

    #[test]
    fn full_command_line() {
        let c = run(&[
            "--compare",
            "-s",
            "plain=tcp://127.0.0.1:11212",
            "--target=tls=tls://localhost:11211?resume=off&pipeline=4&proto=meta&batch",
            "--rounds",
            "5",
            "-c",
            "100",
            "-t",
            "2",
            "--cpus",
            "0,1",
            "-d",
            "16",
            "--ratio",
            "1:0",
            "--keys",
            "1M",
            "--dist",
            "zipf:1.2",
            "--value-size",
            "32-4096",
            "--requests",
            "2.5M",
            "--preload",
            "--rate",
            "50k",
            "--tls-cacert",
            "certs/ca.pem",
            "--tls-min",
            "1.3",
            "--json",
            "out.json",
            "--svg-y",
            "lin",
            "-q",
        ]);
        assert!(c.compare);
        assert_eq!(c.rounds, 5);
        assert_eq!((c.connections, c.threads), (100, 2));
        assert_eq!(c.cpus, Some(vec![0, 1]));
        assert_eq!((c.get_weight, c.set_weight), (1, 0));
        assert_eq!(c.keys, 1_000_000);
        assert_eq!(c.dist, Dist::Zipf(1.2));
        assert_eq!(c.value_size, ValueSize { min: 32, max: 4096 });
        assert_eq!(c.stop, Stop::Requests(2_500_000));
        assert!(c.preload && c.quiet);
        assert_eq!(c.rate, Some(50_000.0));
        assert_eq!(c.svg_y, YScale::Linear);
        assert_eq!(c.json, Some(PathBuf::from("out.json")));
        let (a, b) = (&c.targets[0], &c.targets[1]);
        assert_eq!((a.name.as_str(), a.tls, a.pipeline), ("plain", false, 16));
        assert_eq!((b.name.as_str(), b.tls, b.pipeline), ("tls", true, 4));
        assert!(!a.batch && b.batch);
        assert_eq!(b.host, "localhost");
        assert_eq!(b.proto, Proto::Meta);
        assert!(a.tls_opts.resume && !b.tls_opts.resume);
        assert_eq!(b.tls_opts.min, TlsMin::V13);
        assert_eq!(b.tls_opts.cacert, Some(PathBuf::from("certs/ca.pem")));
        assert_eq!(b.url(), "tls://localhost:11211");
    }

    #[test]
    fn ipv6_and_handshake_mode() {
        let c = run(&["--mode", "handshake", "-s", "tls://[::1]:9?skip-verify"]);
        assert_eq!(c.mode, Mode::Handshake);
        assert_eq!(c.targets[0].host, "::1");
        assert!(c.targets[0].tls_opts.skip_verify);
        assert_eq!(c.targets[0].url(), "tls://[::1]:9");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        fails(&[], "no --target");
        fails(&["-s", "a:1", "-s", "b:2"], "--compare");
        fails(&["--compare", "-s", "a:1"], "at least two");
        fails(&["-s", "a:1", "--rounds", "3"], "--compare");
        fails(&["-s", "localhost"], "HOST:PORT");
        fails(&["-s", "x:0"], "port");
        fails(&["-s", "x:99999"], "port");
        fails(&["-s", "http://x:1"], "scheme");
        fails(&["-s", "=x:1"], "empty name");
        fails(&["-s", "[::1:5"], "IPv6");
        fails(&["-s", "x:1?bogus=1"], "unknown setting `bogus`");
        fails(&["-s", "x:1?resume=maybe"], "on or off");
        fails(&["-s", "x:1", "--time"], "needs a value");
        fails(&["-s", "x:1", "--time", "soon"], "not a duration");
        fails(&["-s", "x:1", "--time", "0s"], "not a duration");
        fails(&["-s", "x:1", "--time", "1s", "-n", "5"], "not both");
        fails(&["-s", "x:1", "-c", "0"], "connections");
        fails(&["-s", "x:1", "-c", "2", "-t", "3"], "each thread needs");
        fails(&["-s", "x:1", "-d", "0"], "pipeline");
        fails(&["-s", "x:1", "--ratio", "0:0"], "ratio");
        fails(&["-s", "x:1", "--ratio", "9"], "ratio");
        fails(&["-s", "x:1", "--dist", "zipf:-1"], "Zipf");
        fails(&["-s", "x:1", "--dist", "normal"], "distribution");
        fails(&["-s", "x:1", "--value-size", "10-5"], "MIN <= MAX");
        fails(&["-s", "x:1", "--value-size", "big"], "value size");
        fails(&["-s", "x:1", "--rate", "-5"], "rate");
        fails(&["-s", "x:1", "--keys", "0"], "key count");
        fails(&["-s", "x:1", "--cpus", "0,x"], "CPU list");
        fails(&["-s", "x:1", "--frobnicate"], "unknown option");
        fails(&["-s", "x:1", "--preload=yes"], "takes no value");
        fails(&["--compare", "-s", "a=x:1", "-s", "a=x:2"], "two targets");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_args(&["-h"]), Ok(Parsed::Help));
        assert_eq!(parse_args(&["-s", "x:1", "--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn durations_and_counts() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("1_000"), Ok(1000));
        assert_eq!(parse_count("1.5M"), Ok(1_500_000));
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("k").is_err());
        assert!(parse_count("0.0001k").is_err());
    }
}
