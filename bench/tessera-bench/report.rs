//! Results: compare math (per-round ratios, median and spread), the human tables, JSON.

use crate::cli::{Config, Mode, Stop, Target};
use crate::driver::{SLOT_NAMES, Stats};
use crate::hist::{self, PERCENTILES, Summary};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Median and range of a set of numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// Median (mean of the middle two for an even count), min and max; None when empty or when
/// any value is not finite.
pub(crate) fn spread(xs: &[f64]) -> Option<Spread> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

/// Round-by-round ratios `other[i] / base[i]` (rounds are paired: A and B of round i ran
/// back to back), summarised. Rounds where the baseline is zero are skipped.
pub(crate) fn ratio_spread(base: &[f64], other: &[f64]) -> Option<Spread> {
    let r: Vec<f64> = base
        .iter()
        .zip(other)
        .filter(|(b, _)| **b > 0.0)
        .map(|(b, o)| o / b)
        .collect();
    spread(&r)
}

/// Everything measured for one target.
pub(crate) struct TargetResult {
    pub(crate) target: Target,
    pub(crate) rounds: Vec<Stats>,
}

impl TargetResult {
    pub(crate) fn ops_per_sec(&self) -> Vec<f64> {
        self.rounds.iter().map(Stats::ops_per_sec).collect()
    }

    /// Per-round server CPU µs per operation (targets with pid=).
    pub(crate) fn cpu_us_per_op(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .filter_map(|s| Some(s.server?.cpu_s * 1e6 / s.ops() as f64))
            .collect()
    }

    /// Per-round server CPU utilisation in % of one CPU.
    pub(crate) fn cpu_percent(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .filter_map(|s| Some(s.server?.cpu_s * 100.0 / s.elapsed.as_secs_f64()))
            .collect()
    }

    /// Per-round server system calls per operation (with --syscalls).
    pub(crate) fn syscalls_per_op(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .filter_map(|s| Some(s.server?.syscalls? as f64 / s.ops() as f64))
            .collect()
    }

    /// Per-round all-operation latency at quantile q, in µs.
    pub(crate) fn latency(&self, q: f64) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|s| {
                let h = s.all();
                if h.is_empty() {
                    f64::NAN
                } else {
                    h.value_at_quantile(q) as f64 / 1000.0
                }
            })
            .collect()
    }

    /// All rounds merged.
    pub(crate) fn merged(&self) -> Stats {
        let mut m = Stats::new();
        for r in &self.rounds {
            m.merge(r);
        }
        m
    }
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn us(x: f64) -> String {
    if x >= 1000.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) fn describe(cfg: &Config) -> String {
    let stop = match cfg.stop {
        Stop::Time(d) => format!("{:?}", d),
        Stop::Requests(n) => format!("{n} requests"),
    };
    let rounds = if cfg.compare {
        format!(" x {} rounds", cfg.rounds)
    } else {
        String::new()
    };
    let rate = cfg
        .rate
        .map(|r| format!(", open loop at {} req/s", thousands(r)))
        .unwrap_or_default();
    match cfg.mode {
        Mode::Load => format!(
            "load: {} connections on {} thread(s), get:set {}:{}, {} keys {}, values {} B, \
             {stop}{rounds}{rate}{}",
            cfg.connections,
            cfg.threads,
            cfg.get_weight,
            cfg.set_weight,
            cfg.keys,
            cfg.dist,
            cfg.value_size,
            if cfg.preload { ", preloaded" } else { "" }
        ),
        Mode::Handshake => format!(
            "handshake: {} connections on {} thread(s) open, send one request and close; \
             {stop}{rounds}",
            cfg.connections, cfg.threads
        ),
    }
}

fn target_settings(t: &Target, mode: Mode) -> String {
    let mut s = format!("{} {}", t.url(), t.proto);
    if mode == Mode::Load {
        let _ = write!(s, " pipeline {}", t.pipeline);
        if t.batch {
            s.push_str(" batch");
        }
    }
    if t.tls {
        let _ = write!(
            s,
            " resume {}",
            if t.tls_opts.resume { "on" } else { "off" }
        );
    }
    s
}

/// The human-readable report.
pub(crate) fn table(cfg: &Config, results: &[TargetResult]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "tessera-bench {}: {}",
        env!("CARGO_PKG_VERSION"),
        describe(cfg)
    );
    let _ = writeln!(o);
    let handshake = cfg.mode == Mode::Handshake;
    let unit = if handshake { "conn/s" } else { "ops/s" };
    let nw = results
        .iter()
        .map(|r| r.target.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        o,
        "{:<nw$}  {:>12}  {:>25}  {:>8}  address and settings",
        "target",
        unit,
        if cfg.compare {
            "min-max over rounds"
        } else {
            ""
        },
        if handshake { "resumed" } else { "hit" },
    );
    for r in results {
        let m = r.merged();
        let sp = spread(&r.ops_per_sec());
        let (med, range) = match sp {
            Some(s) if cfg.compare => (
                s.median,
                format!("{} - {}", thousands(s.min), thousands(s.max)),
            ),
            Some(s) => (s.median, String::new()),
            None => (0.0, String::new()),
        };
        let third = if handshake {
            if m.conns > 0 {
                format!("{:.1}%", 100.0 * m.resumed as f64 / m.conns as f64)
            } else {
                "-".into()
            }
        } else {
            match m.hit_ratio() {
                Some(h) => format!("{:.2}%", 100.0 * h),
                None => "-".into(),
            }
        };
        let _ = writeln!(
            o,
            "{:<nw$}  {:>12}  {:>25}  {:>8}  {}",
            r.target.name,
            thousands(med),
            range,
            third,
            target_settings(&r.target, cfg.mode)
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "latency in µs{}:",
        if cfg.compare { ", all rounds" } else { "" }
    );
    let _ = write!(o, "{:<nw$}  {:<4}  {:>10}", "target", "op", "count");
    for (name, _) in PERCENTILES {
        let _ = write!(o, "  {:>8}", name);
    }
    let _ = writeln!(o, "  {:>8}", "max");
    for r in results {
        let m = r.merged();
        for (slot, h) in m.hists.iter().enumerate() {
            if h.is_empty() {
                continue;
            }
            let s = hist::summary(h);
            let _ = write!(
                o,
                "{:<nw$}  {:<4}  {:>10}",
                r.target.name, SLOT_NAMES[slot], s.count
            );
            for v in s.values() {
                let _ = write!(o, "  {:>8}", us(v));
            }
            let _ = writeln!(o, "  {:>8}", us(s.max));
        }
    }
    if results
        .iter()
        .any(|r| r.rounds.iter().any(|s| s.server.is_some()))
    {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "server cost per round (pid=), median [min - max]; CPU includes steal on a VM:"
        );
        let _ = writeln!(
            o,
            "{:<nw$}  {:>24}  {:>22}  {:>24}",
            "target", "CPU µs/op", "CPU % of one core", "syscalls/op"
        );
        let fmt = |s: Option<Spread>| match s {
            Some(s) => format!("{} [{} - {}]", us(s.median), us(s.min), us(s.max)),
            None => "-".into(),
        };
        for r in results {
            let _ = writeln!(
                o,
                "{:<nw$}  {:>24}  {:>22}  {:>24}",
                r.target.name,
                fmt(spread(&r.cpu_us_per_op())),
                fmt(spread(&r.cpu_percent())),
                fmt(spread(&r.syscalls_per_op()))
            );
        }
    }
    if cfg.compare && results.len() > 1 {
        let base = &results[0];
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "ratio to `{}`, per round, median [min - max] over {} rounds:",
            base.target.name, cfg.rounds
        );
        let _ = writeln!(
            o,
            "{:<nw$}  {:>22}  {:>22}  {:>22}",
            "target", unit, "p50 latency", "p99 latency"
        );
        let fmt = |s: Option<Spread>| match s {
            Some(s) => format!("{:.3} [{:.3} - {:.3}]", s.median, s.min, s.max),
            None => "-".into(),
        };
        for r in &results[1..] {
            let _ = writeln!(
                o,
                "{:<nw$}  {:>22}  {:>22}  {:>22}",
                r.target.name,
                fmt(ratio_spread(&base.ops_per_sec(), &r.ops_per_sec())),
                fmt(ratio_spread(&base.latency(0.5), &r.latency(0.5))),
                fmt(ratio_spread(&base.latency(0.99), &r.latency(0.99)))
            );
        }
    }
    o
}

fn summary_json(s: &Summary) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("count".into(), json!(s.count));
    m.insert("mean".into(), json!(s.mean));
    for ((name, _), v) in PERCENTILES.iter().zip(s.values()) {
        m.insert((*name).into(), json!(v));
    }
    m.insert("max".into(), json!(s.max));
    Value::Object(m)
}

fn spread_json(s: Option<Spread>) -> Value {
    match s {
        Some(s) => json!({"median": s.median, "min": s.min, "max": s.max}),
        None => Value::Null,
    }
}

fn latency_json(st: &Stats) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("all".into(), summary_json(&hist::summary(&st.all())));
    for (slot, h) in st.hists.iter().enumerate() {
        if !h.is_empty() {
            m.insert(SLOT_NAMES[slot].into(), summary_json(&hist::summary(h)));
        }
    }
    Value::Object(m)
}

fn stats_json(st: &Stats) -> Value {
    json!({
        "seconds": st.elapsed.as_secs_f64(),
        "ops": st.ops(),
        "ops_per_sec": st.ops_per_sec(),
        "gets": st.gets,
        "sets": st.sets,
        "hits": st.hits,
        "misses": st.misses,
        "not_stored": st.not_stored,
        "hit_ratio": st.hit_ratio(),
        "connections_made": st.conns,
        "resumed": st.resumed,
        "latency_us": latency_json(st),
        "server_cpu_seconds": st.server.map(|u| u.cpu_s),
        "server_syscalls": st.server.and_then(|u| u.syscalls),
    })
}

/// The JSON summary.
pub(crate) fn json(cfg: &Config, results: &[TargetResult]) -> Value {
    let (time_s, requests) = match cfg.stop {
        Stop::Time(d) => (Some(d.as_secs_f64()), None),
        Stop::Requests(n) => (None, Some(n)),
    };
    let targets: Vec<Value> = results
        .iter()
        .map(|r| {
            let m = r.merged();
            json!({
                "name": r.target.name,
                "address": r.target.url(),
                "tls": r.target.tls,
                "protocol": r.target.proto.to_string(),
                "pipeline": r.target.pipeline,
                "batch": r.target.batch,
                "resume": r.target.tls && r.target.tls_opts.resume,
                "ops_per_sec": spread_json(spread(&r.ops_per_sec())),
                "hit_ratio": m.hit_ratio(),
                "latency_us": latency_json(&m),
                "pid": r.target.pid,
                "server_cpu_us_per_op": spread_json(spread(&r.cpu_us_per_op())),
                "server_cpu_percent": spread_json(spread(&r.cpu_percent())),
                "server_syscalls_per_op": spread_json(spread(&r.syscalls_per_op())),
                "rounds": r.rounds.iter().map(stats_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let ratios: Vec<Value> = if cfg.compare && results.len() > 1 {
        let base = &results[0];
        results[1..]
            .iter()
            .map(|r| {
                json!({
                    "target": r.target.name,
                    "baseline": base.target.name,
                    "ops_per_sec": spread_json(ratio_spread(&base.ops_per_sec(), &r.ops_per_sec())),
                    "p50": spread_json(ratio_spread(&base.latency(0.5), &r.latency(0.5))),
                    "p99": spread_json(ratio_spread(&base.latency(0.99), &r.latency(0.99))),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "tool": "tessera-bench",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": match cfg.mode { Mode::Load => "load", Mode::Handshake => "handshake" },
        "config": {
            "connections": cfg.connections,
            "threads": cfg.threads,
            "ratio_get_set": [cfg.get_weight, cfg.set_weight],
            "keys": cfg.keys,
            "key_prefix": cfg.key_prefix,
            "distribution": cfg.dist.to_string(),
            "value_size": cfg.value_size.to_string(),
            "time_s": time_s,
            "requests": requests,
            "rate": cfg.rate,
            "rounds": cfg.rounds,
            "preload": cfg.preload,
            "seed": cfg.seed,
        },
        "targets": targets,
        "ratios": ratios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(spread(&[]), None);
        assert_eq!(
            spread(&[3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            spread(&[4.0, 1.0, 2.0, 10.0]),
            Some(Spread {
                median: 3.0,
                min: 1.0,
                max: 10.0
            })
        );
        assert_eq!(spread(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn ratios_pair_rounds() {
        // Round-paired, not ratio of medians: base 100,200,400 vs other 50,100,200 is 0.5
        // in every round, although the medians' ratio would be the same here...
        let s = ratio_spread(&[100.0, 200.0, 400.0], &[50.0, 100.0, 200.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (0.5, 0.5, 0.5));
        // ...here the pairing matters: per-round ratios are 2, 0.5, 1 -> median 1, range
        // 0.5-2, whereas medians alone would give 200/200 = 1 with no spread.
        let s = ratio_spread(&[100.0, 400.0, 200.0], &[200.0, 200.0, 200.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (1.0, 0.5, 2.0));
        // A zero baseline round is skipped, not infinite.
        let s = ratio_spread(&[0.0, 10.0], &[5.0, 20.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 2.0, 2.0));
        assert_eq!(ratio_spread(&[0.0], &[1.0]), None);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(us(12345.6), "12346");
        assert_eq!(us(45.67), "45.7");
        assert_eq!(us(4.567), "4.57");
    }
}
