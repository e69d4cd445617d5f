//! The latency-by-percentile plot (SVG): x is 1/(1-p) on a log axis labelled 0%, 90%, 99%,
//! 99.9%..., as HdrHistogram's plotter draws it; y is latency in µs, log or linear.

use crate::cli::YScale;
use crate::hist::{self, Hist};
use plotters::prelude::*;
use std::path::Path;

/// Label of decade `v` of the percentile axis: 0 -> 0%, 1 -> 90%, 2 -> 99%, 3 -> 99.9%.
pub(crate) fn percentile_label(v: f64) -> String {
    let d = v.round();
    if (v - d).abs() > 1e-6 || d < 0.0 {
        return String::new();
    }
    match d as u32 {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace("99.%", "99%"),
    }
}

/// Decades of the x axis: enough for the largest sample count (1/(1-p) up to the count),
/// between 2 (99%) and 7 (99.99999%).
pub(crate) fn decades(series: &[(String, Hist)]) -> u32 {
    let n = series
        .iter()
        .map(|(_, h)| h.len())
        .max()
        .unwrap_or(0)
        .max(1);
    ((n as f64).log10().ceil() as u32).clamp(2, 7)
}

/// Line colours (the "tab10" palette: distinct, readable on white).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn y_label(v: f64) -> String {
    if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Writes the plot; series are (legend, histogram in ns).
pub(crate) fn write_svg(
    path: &Path,
    title: &str,
    series: &[(String, Hist)],
    y: YScale,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let dec = decades(series);
    let x_max = 10f64.powi(dec as i32);
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| {
            let pts = hist::plot_points(h, x_max)
                .into_iter()
                .map(|(x, y)| (x.log10(), y))
                .collect();
            (name.clone(), pts)
        })
        .collect();
    if lines.is_empty() {
        return Err(format!("{}: nothing to plot (no samples)", path.display()));
    }
    let y_min = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(f64::INFINITY, f64::min)
        .max(0.01);
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0, f64::max)
        .max(y_min * 2.0);

    let root = SVGBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .margin_right(50)
        .x_label_area_size(50)
        .y_label_area_size(70);

    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart.map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_labels(dec as usize + 1)
                .x_label_formatter(&|v| percentile_label(*v))
                .y_label_formatter(&|v| y_label(*v))
                .x_desc("percentile")
                .y_desc("latency (µs)")
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| err(&e))?;
            for (i, (name, pts)) in lines.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    match y {
        YScale::Log => draw!(builder.build_cartesian_2d(
            0f64..dec as f64,
            ((y_min * 0.8)..(y_max * 1.25)).log_scale()
        )),
        YScale::Linear => draw!(builder.build_cartesian_2d(0f64..dec as f64, 0f64..(y_max * 1.05))),
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
        assert_eq!(percentile_label(2.5), "");
        assert_eq!(percentile_label(-1.0), "");
    }

    #[test]
    fn axis_covers_sample_count() {
        let mut h = hist::new_hist();
        for v in 0..12_345u64 {
            hist::record(&mut h, v + 1);
        }
        assert_eq!(decades(&[("a".into(), h)]), 5);
        assert_eq!(decades(&[]), 2);
    }

    #[test]
    fn writes_an_svg_with_legend_and_axes() {
        let dir = std::env::temp_dir().join(format!("tessera-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let mut a = hist::new_hist();
        let mut b = hist::new_hist();
        for v in 1..=10_000u64 {
            hist::record(&mut a, v * 1000);
            hist::record(&mut b, v * 2000);
        }
        let series = vec![("plain".to_string(), a), ("tls".to_string(), b)];
        write_svg(&path, "t", &series, YScale::Log).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for needle in ["plain", "tls", "99.9%", "latency (µs)", "<polyline"] {
            assert!(svg.contains(needle), "svg lacks {needle}");
        }
        write_svg(&path, "t", &series, YScale::Linear).unwrap();
        let empty = vec![("x".to_string(), hist::new_hist())];
        assert!(write_svg(&path, "t", &empty, YScale::Log).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
