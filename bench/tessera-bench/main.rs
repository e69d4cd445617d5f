//! `tessera-bench`: a load generator for memcached-protocol servers (tessera, memcached, ...).
//!
//! Text or meta protocol, plaintext or TLS (rustls), connections over glommio executors,
//! pipelining, open-loop rates with coordinated-omission correction, HDR histograms, `.hgrm`
//! and JSON output, `--compare` of several targets in alternating rounds with an SVG plot of
//! their latency percentiles, and a handshake mode (connections per second, full vs resumed).
//! `tessera-bench --help` lists the options; `bench/compare.sh` and `bench/matrix.sh` use it.

mod cli;
mod driver;
mod hist;
mod plot;
mod proto;
mod report;
mod server;
mod tls;
mod workload;

use cli::{Config, Mode, Parsed, Target};
use driver::{Kind, Plan, SLOT_NAMES};
use report::TargetResult;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse_args(&args) {
        Ok(Parsed::Help) => print!("{}", cli::USAGE),
        Ok(Parsed::Version) => println!("tessera-bench {}", env!("CARGO_PKG_VERSION")),
        Ok(Parsed::Run(cfg)) => {
            if let Err(e) = run(&cfg) {
                eprintln!("tessera-bench: error: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            std::process::exit(2);
        }
    }
}

fn resolve(t: &Target) -> Result<SocketAddr, String> {
    (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: cannot resolve {}: {e}", t.name, t.host))?
        .next()
        .ok_or_else(|| format!("{}: {} has no address", t.name, t.host))
}

fn plan(
    cfg: &Config,
    t: &Target,
    addr: SocketAddr,
    kind: Kind,
    label: String,
) -> Result<Plan, String> {
    let tls = if t.tls {
        // A fresh configuration, and so a fresh session cache, for every run.
        let config = tls::client_config(&t.tls_opts).map_err(|e| format!("{}: {e}", t.name))?;
        let name = tls::server_name(t.tls_opts.sni.as_deref().unwrap_or(&t.host))?;
        Some((config, name))
    } else {
        None
    };
    Ok(Plan {
        name: t.name.clone(),
        label,
        addr,
        tls,
        proto: t.proto,
        kind,
        connections: cfg.connections,
        threads: cfg.threads,
        cpus: cfg.cpus.clone(),
        pipeline: t.pipeline,
        batch: t.batch,
        get_fraction: cfg.get_fraction(),
        keys: cfg.keys,
        key_prefix: cfg.key_prefix.as_bytes().to_vec(),
        dist: cfg.dist.clone(),
        value_size: cfg.value_size,
        stop: cfg.stop,
        rate: cfg.rate,
        seed: cfg.seed,
        timeout: cfg.timeout,
        quiet: cfg.quiet,
    })
}

fn file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run(cfg: &Config) -> Result<(), String> {
    let addrs = cfg
        .targets
        .iter()
        .map(resolve)
        .collect::<Result<Vec<_>, _>>()?;
    // Check TLS settings (files, names) before any load.
    for (t, &a) in cfg.targets.iter().zip(&addrs) {
        plan(cfg, t, a, Kind::Load, String::new())?;
    }
    let kind = match cfg.mode {
        Mode::Load => Kind::Load,
        Mode::Handshake => Kind::Handshake,
    };
    if cfg.preload && kind == Kind::Load {
        for (t, &a) in cfg.targets.iter().zip(&addrs) {
            let t0 = Instant::now();
            let p = plan(cfg, t, a, Kind::Preload, format!("[preload {}]", t.name))?;
            let s = driver::run(p)?;
            if !cfg.quiet {
                eprintln!(
                    "preloaded {} keys into {} in {:.1}s",
                    s.sets,
                    t.name,
                    t0.elapsed().as_secs_f64()
                );
            }
        }
    }
    let mut results: Vec<TargetResult> = cfg
        .targets
        .iter()
        .map(|t| TargetResult {
            target: t.clone(),
            rounds: Vec::new(),
        })
        .collect();
    let unit = if kind == Kind::Handshake {
        "conn/s"
    } else {
        "ops/s"
    };
    for round in 1..=cfg.rounds {
        for (i, (t, &a)) in cfg.targets.iter().zip(&addrs).enumerate() {
            let label = if cfg.compare {
                format!("[{} {}/{}]", t.name, round, cfg.rounds)
            } else {
                format!("[{}]", t.name)
            };
            let probe = match t.pid {
                Some(pid) => Some(server::Probe::start(
                    pid,
                    cfg.syscalls,
                    &std::env::temp_dir(),
                )?),
                None => None,
            };
            let mut s = driver::run(plan(cfg, t, a, kind, label.clone())?)?;
            if let Some(p) = probe {
                s.server = Some(p.finish()?);
            }
            if !cfg.quiet {
                eprintln!(
                    "{label} done: {:.0} {unit} over {:.2}s",
                    s.ops_per_sec(),
                    s.elapsed.as_secs_f64()
                );
            }
            results[i].rounds.push(s);
        }
    }
    print!("{}", report::table(cfg, &results));
    write_outputs(cfg, &results)
}

fn write_outputs(cfg: &Config, results: &[TargetResult]) -> Result<(), String> {
    if let Some(path) = &cfg.json {
        let v = report::json(cfg, results);
        let text = serde_json::to_string_pretty(&v).map_err(|e| format!("JSON: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(dir) = &cfg.hgrm_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for r in results {
            let m = r.merged();
            let mut hs: Vec<(&str, hist::Hist)> = m
                .hists
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.is_empty())
                .map(|(i, h)| (SLOT_NAMES[i], h.clone()))
                .collect();
            if hs.len() > 1 {
                hs.push(("all", m.all()));
            }
            for (op, h) in hs {
                let path = dir.join(format!("{}.{op}.hgrm", file_name(&r.target.name)));
                std::fs::write(&path, hist::hgrm(&h, 1000.0))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    if let Some(path) = &cfg.svg {
        let mut series = Vec::new();
        for r in results {
            let m = r.merged();
            if cfg.svg_ops {
                for (i, h) in m.hists.iter().enumerate() {
                    if !h.is_empty() {
                        series.push((format!("{} {}", r.target.name, SLOT_NAMES[i]), h.clone()));
                    }
                }
            } else {
                series.push((r.target.name.clone(), m.all()));
            }
        }
        let title = cfg.title.clone().unwrap_or_else(|| {
            let t = &cfg.targets[0];
            match cfg.mode {
                Mode::Load => format!(
                    "latency by percentile: {} conns, pipeline {}, get:set {}:{}, {} B",
                    cfg.connections, t.pipeline, cfg.get_weight, cfg.set_weight, cfg.value_size
                ),
                Mode::Handshake => format!(
                    "connect + handshake + 1 request: {} concurrent connections",
                    cfg.connections
                ),
            }
        });
        plot::write_svg(path, &title, &series, cfg.svg_y)?;
    }
    Ok(())
}
