//! Latency histograms (HdrHistogram, nanoseconds) and their outputs: percentile summaries,
//! the classic `.hgrm` percentile-distribution text, and the points of a percentile plot.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

pub(crate) type Hist = Histogram<u64>;

/// Highest trackable latency: 60 s in ns; longer ones are recorded as 60 s.
const HIGHEST_NS: u64 = 60_000_000_000;
const SIGFIG: u8 = 3;

pub(crate) fn new_hist() -> Hist {
    // 1 ns .. 60 s at 3 significant digits cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG).expect("valid histogram bounds")
}

/// Records one latency in nanoseconds (at least 1 ns, at most 60 s).
pub(crate) fn record(h: &mut Hist, ns: u64) {
    h.saturating_record(ns.max(1));
}

/// Adds `src` into `dst` (same bounds by construction).
pub(crate) fn merge(dst: &mut Hist, src: &Hist) {
    // Both come from new_hist(), so the ranges match and add cannot fail; saturate instead
    // of panicking if they ever differ.
    if dst.add(src).is_err() {
        for v in src.iter_recorded() {
            dst.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// The standard latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) p9999: f64,
    pub(crate) max: f64,
}

pub(crate) const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

pub(crate) fn summary(h: &Hist) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Summary {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: us(0.50),
        p90: us(0.90),
        p99: us(0.99),
        p999: us(0.999),
        p9999: us(0.9999),
        max: h.max() as f64 / 1000.0,
    }
}

impl Summary {
    pub(crate) fn values(&self) -> [f64; 5] {
        [self.p50, self.p90, self.p99, self.p999, self.p9999]
    }
}

/// The HdrHistogram percentile distribution (`.hgrm`), byte for byte as Java's
/// `outputPercentileDistribution(out, 5, scale)` prints it: values divided by `scale`
/// (1000.0 turns recorded ns into µs), three decimals.
pub(crate) fn hgrm(h: &Hist, scale: f64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    let _ = writeln!(s, "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]");
    let _ = writeln!(
        s,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    );
    s
}

/// Points for a percentile plot: (1/(1-q), latency µs), q < 1, plus the maximum at
/// `x_max`. The x of the maximum is clamped to `x_max` (the plot's right edge).
pub(crate) fn plot_points(h: &Hist, x_max: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    if h.is_empty() {
        return pts;
    }
    for v in h.iter_quantiles(10) {
        let q = v.quantile_iterated_to();
        let y = v.value_iterated_to() as f64 / 1000.0;
        let x = if q < 1.0 { 1.0 / (1.0 - q) } else { x_max };
        pts.push((x.min(x_max), y));
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist_1_to_n(n: u64, unit: u64) -> Hist {
        let mut h = new_hist();
        for v in 1..=n {
            record(&mut h, v * unit);
        }
        h
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        // 1..=10000 µs, one each.
        let h = hist_1_to_n(10_000, 1000);
        let s = summary(&h);
        assert_eq!(s.count, 10_000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50, 5000.0), "{s:?}");
        assert!(close(s.p90, 9000.0), "{s:?}");
        assert!(close(s.p99, 9900.0), "{s:?}");
        assert!(close(s.p999, 9990.0), "{s:?}");
        assert!(close(s.p9999, 9999.0), "{s:?}");
        assert!(close(s.max, 10_000.0), "{s:?}");
        assert!(close(s.mean, 5000.5), "{s:?}");
    }

    #[test]
    fn saturates_instead_of_failing() {
        let mut h = new_hist();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= HIGHEST_NS);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = hist_1_to_n(100, 1000);
        let b = hist_1_to_n(100, 1000);
        merge(&mut a, &b);
        assert_eq!(a.len(), 200);
        assert_eq!(summary(&a).p50, summary(&b).p50);
    }

    #[test]
    fn hgrm_format() {
        // Values 1..=4 ms recorded in ns, printed in ms (scale 1e6).
        let mut h = new_hist();
        for v in [1u64, 2, 3, 4] {
            record(&mut h, v * 1_000_000);
        }
        let out = hgrm(&h, 1_000_000.0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the smallest value at percentile 0. Values are the tops of their
        // buckets (1 ms lands in a 512 ns wide bucket), so 1 ms prints as 1.000 and 4 ms, in
        // a 2048 ns bucket, as 4.002.
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        // Rows are "%12.3f %2.12f %10d %14.2f" until the last, which has no 1/(1-p).
        for l in &lines[2..lines.len() - 4] {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 4, "{l}");
            assert_eq!(l.len(), 12 + 1 + 14 + 1 + 10 + 1 + 14, "{l}");
        }
        let last = lines[lines.len() - 4];
        assert_eq!(last, "       4.002 1.000000000000          4");
        assert_eq!(
            lines[lines.len() - 3],
            "#[Mean    =        2.500, StdDeviation   =        1.118]"
        );
        assert_eq!(
            lines[lines.len() - 2],
            "#[Max     =        4.002, Total count    =            4]"
        );
        assert!(lines[lines.len() - 1].starts_with("#[Buckets = "));
        assert!(lines[lines.len() - 1].ends_with("SubBuckets     =         2048]"));
        // Percentiles are increasing, counts non-decreasing.
        let mut prev = (-1.0f64, 0u64);
        for l in &lines[2..lines.len() - 3] {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let p: f64 = cols[1].parse().unwrap();
            let c: u64 = cols[2].parse().unwrap();
            assert!(p > prev.0 && c >= prev.1, "{l}");
            prev = (p, c);
        }
    }

    #[test]
    fn hgrm_of_empty_histogram() {
        let out = hgrm(&new_hist(), 1000.0);
        assert!(out.contains("Total count    =            0]"), "{out}");
    }

    #[test]
    fn plot_points_rise_and_end_at_max() {
        let h = hist_1_to_n(10_000, 1000);
        let pts = plot_points(&h, 1e5);
        assert!(pts.len() > 20);
        assert_eq!(pts[0].0, 1.0);
        assert!(pts.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        let last = pts[pts.len() - 1];
        assert_eq!(last.0, 1e5);
        assert!((last.1 - 10_000.0).abs() < 10.0, "{last:?}");
    }
}
