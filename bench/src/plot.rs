//! `--plot FILE.svg`: throughput and latency over time as a self-contained SVG (two panels,
//! drawn here with no plotting dependency: polylines, axes and labels).

use std::fmt::Write as _;

use crate::report::Report;

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 150.0;
const MARGIN_TOP: f64 = 40.0;
const PANEL_GAP: f64 = 60.0;
/// Horizontal grid lines (and labels) per panel.
const Y_TICKS: usize = 5;

/// One line of a panel.
struct Line {
    label: String,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

/// The SVG of `report`'s series, or an error if the file name does not end in `.svg`.
pub fn svg(report: &Report) -> String {
    let mb: Vec<Line> = [
        (
            "produce MB/s",
            "#1f77b4",
            report
                .series
                .iter()
                .filter_map(|p| p.produce.as_ref().map(|f| (p.second, f.mb_per_sec)))
                .collect::<Vec<_>>(),
        ),
        (
            "consume MB/s",
            "#2ca02c",
            report
                .series
                .iter()
                .filter_map(|p| p.consume.as_ref().map(|f| (p.second, f.mb_per_sec)))
                .collect(),
        ),
    ]
    .into_iter()
    .filter(|(_, _, points)| !points.is_empty())
    .map(|(label, color, points)| Line {
        label: label.into(),
        color,
        points,
    })
    .collect();
    let kind = &report.results.latency_kind;
    let latency = |label: &str, color, pick: fn(&crate::histogram::Percentiles) -> f64| Line {
        label: format!("{kind} {label}"),
        color,
        points: report
            .series
            .iter()
            .filter_map(|p| p.latency_ms.as_ref().map(|l| (p.second, pick(l))))
            .collect(),
    };
    let lat = vec![
        latency("p50", "#1f77b4", |l| l.p50),
        latency("p99", "#ff7f0e", |l| l.p99),
        latency("max", "#d62728", |l| l.max),
    ];
    let height = MARGIN_TOP + 2.0 * PANEL_HEIGHT + PANEL_GAP + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN_LEFT}" y="22" font-size="15">{} ({}; {})</text>"#,
        escape(report.params.workload.name()),
        escape(&report.params.target),
        if report.params.rate.is_some() {
            "open loop"
        } else {
            "closed loop"
        }
    );
    let x_max = report
        .series
        .iter()
        .map(|p| p.second)
        .fold(1.0_f64, f64::max);
    panel(&mut out, MARGIN_TOP, "payload MB/s", x_max, &mb);
    panel(
        &mut out,
        MARGIN_TOP + PANEL_HEIGHT + PANEL_GAP,
        "latency ms",
        x_max,
        &lat,
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text></svg>"#,
        MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / 2.0,
        height - 8.0
    );
    out
}

fn panel(out: &mut String, top: f64, title: &str, x_max: f64, lines: &[Line]) {
    let (left, right) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
    let bottom = top + PANEL_HEIGHT;
    let y_max = nice_ceiling(
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max),
    );
    let x = |v: f64| left + (right - left) * v / x_max;
    let y = |v: f64| bottom - PANEL_HEIGHT * v / y_max;
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{}" font-weight="bold">{}</text>"#,
        top - 6.0,
        escape(title)
    );
    for i in 0..=Y_TICKS {
        let v = y_max * i as f64 / Y_TICKS as f64;
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{0:.1}" x2="{right}" y2="{0:.1}" stroke="#ddd"/><text x="{1}" y="{2:.1}" text-anchor="end">{3}</text>"##,
            y(v),
            left - 6.0,
            y(v) + 4.0,
            format_tick(v)
        );
    }
    let x_step = (x_max / 10.0).ceil().max(1.0);
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(t),
            bottom + 16.0,
            format_tick(t)
        );
        t += x_step;
    }
    let _ = writeln!(
        out,
        r#"<rect x="{left}" y="{top}" width="{}" height="{PANEL_HEIGHT}" fill="none" stroke="black"/>"#,
        right - left
    );
    for (i, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            line.color,
            points.join(" ")
        );
        let ly = top + 14.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{2}" stroke-width="3"/><text x="{3}" y="{4}">{5}</text>"#,
            right + 10.0,
            right + 30.0,
            line.color,
            right + 36.0,
            ly + 4.0,
            escape(&line.label)
        );
    }
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten that is ≥ `v` (1 for nothing).
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn format_tick(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(2.2), 2.5);
        assert_eq!(nice_ceiling(0.03), 0.05);
    }

    #[test]
    fn svg_has_both_panels_and_lines() {
        let mut report = sample_report(100_000.0, 8.0);
        let mut second = report.series[0].clone();
        second.second = 2.0;
        report.series.push(second);
        let svg = svg(&report);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(svg.contains("payload MB/s"));
        assert!(svg.contains("latency ms"));
        assert!(svg.contains("produce MB/s"));
        assert!(!svg.contains("consume MB/s"), "nothing consumed");
        // 1 throughput line + 3 latency lines.
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
