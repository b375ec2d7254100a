//! `--plot FILE.svg` or `--plot FILE.png`: throughput and latency over time in two panels,
//! drawn here with no plotting dependency. [`layout`] turns a report into the chart (series,
//! colours, scales, ticks, where everything goes); [`svg`] writes it as a self-contained SVG
//! (polylines, axes and labels), [`png()`] rasterises the same chart ([`crate::raster`]).

use std::fmt::Write as _;

use crate::raster::{self, Canvas, Rgb};
use crate::report::Report;

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 260.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 150.0;
const MARGIN_TOP: f64 = 40.0;
const PANEL_GAP: f64 = 60.0;
/// Horizontal grid lines (and labels) per panel.
const Y_TICKS: usize = 5;
/// PNG pixels per SVG unit: the PNG is drawn at twice the SVG's size, for legible text.
const PNG_SCALE: f64 = 2.0;
/// Font pixel size in PNG pixels: labels (5x7 glyphs, 12x16 cells), the chart title.
const PNG_TEXT: u32 = 2;
const PNG_TITLE: u32 = 3;

const BLACK: Rgb = [0, 0, 0];
const WHITE: Rgb = [255, 255, 255];
const GRID: Rgb = [0xdd, 0xdd, 0xdd];
const BLUE: Rgb = [0x1f, 0x77, 0xb4];
const GREEN: Rgb = [0x2c, 0xa0, 0x2c];
const ORANGE: Rgb = [0xff, 0x7f, 0x0e];
const RED: Rgb = [0xd6, 0x27, 0x28];

/// One line of a panel.
struct Line {
    label: String,
    color: Rgb,
    points: Vec<(f64, f64)>,
}

/// One panel: a frame, horizontal grid lines, its lines and their legend on the right.
struct Panel {
    /// Top of the frame.
    top: f64,
    title: &'static str,
    /// The value at the top of the frame.
    y_max: f64,
    lines: Vec<Line>,
}

/// The whole chart, in SVG units (the PNG scales them by [`PNG_SCALE`]).
struct Chart {
    title: String,
    height: f64,
    /// The second at the right edge of the frames.
    x_max: f64,
    panels: [Panel; 2],
}

/// Horizontal extent of the panels' frames.
const LEFT: f64 = MARGIN_LEFT;
const RIGHT: f64 = WIDTH - MARGIN_RIGHT;

impl Chart {
    /// Where second `v` goes.
    fn x(&self, v: f64) -> f64 {
        LEFT + (RIGHT - LEFT) * v / self.x_max
    }

    /// The labelled seconds: about 10 whole-second steps from 0.
    fn x_ticks(&self) -> Vec<f64> {
        let step = (self.x_max / 10.0).ceil().max(1.0);
        let mut ticks = Vec::new();
        let mut t = 0.0;
        while t <= self.x_max + 1e-9 {
            ticks.push(t);
            t += step;
        }
        ticks
    }
}

impl Panel {
    fn bottom(&self) -> f64 {
        self.top + PANEL_HEIGHT
    }

    /// Where value `v` goes.
    fn y(&self, v: f64) -> f64 {
        self.bottom() - PANEL_HEIGHT * v / self.y_max
    }

    /// The grid lines' values, 0 to `y_max`.
    fn y_ticks(&self) -> impl Iterator<Item = f64> + '_ {
        (0..=Y_TICKS).map(|i| self.y_max * i as f64 / Y_TICKS as f64)
    }

    /// The baseline of legend entry `i` (its colour swatch sits on it).
    fn legend_y(&self, i: usize) -> f64 {
        self.top + 14.0 + 18.0 * i as f64
    }
}

/// The chart of `report`'s series: produce/consume MB/s in the first panel (sides with no
/// points left out), latency p50/p99/max in the second.
fn layout(report: &Report) -> Chart {
    let mb: Vec<Line> = [
        (
            "produce MB/s",
            BLUE,
            report
                .series
                .iter()
                .filter_map(|p| p.produce.as_ref().map(|f| (p.second, f.mb_per_sec)))
                .collect::<Vec<_>>(),
        ),
        (
            "consume MB/s",
            GREEN,
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
        latency("p50", BLUE, |l| l.p50),
        latency("p99", ORANGE, |l| l.p99),
        latency("max", RED, |l| l.max),
    ];
    let panel = |top, title, lines: Vec<Line>| Panel {
        top,
        title,
        y_max: nice_ceiling(
            lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold(0.0_f64, f64::max),
        ),
        lines,
    };
    Chart {
        title: format!(
            "{} ({}; {})",
            report.params.workload.name(),
            report.params.target,
            if report.params.rate.is_some() {
                "open loop"
            } else {
                "closed loop"
            }
        ),
        height: MARGIN_TOP + 2.0 * PANEL_HEIGHT + PANEL_GAP + 40.0,
        x_max: report
            .series
            .iter()
            .map(|p| p.second)
            .fold(1.0_f64, f64::max),
        panels: [
            panel(MARGIN_TOP, "payload MB/s", mb),
            panel(MARGIN_TOP + PANEL_HEIGHT + PANEL_GAP, "latency ms", lat),
        ],
    }
}

/// The SVG of `report`'s series.
pub fn svg(report: &Report) -> String {
    let chart = layout(report);
    let height = chart.height;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN_LEFT}" y="22" font-size="15">{}</text>"#,
        escape(&chart.title)
    );
    for panel in &chart.panels {
        svg_panel(&mut out, &chart, panel);
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text></svg>"#,
        (LEFT + RIGHT) / 2.0,
        height - 8.0
    );
    out
}

fn svg_panel(out: &mut String, chart: &Chart, panel: &Panel) {
    let (left, right, top) = (LEFT, RIGHT, panel.top);
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{}" font-weight="bold">{}</text>"#,
        top - 6.0,
        escape(panel.title)
    );
    for v in panel.y_ticks() {
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{0:.1}" x2="{right}" y2="{0:.1}" stroke="#ddd"/><text x="{1}" y="{2:.1}" text-anchor="end">{3}</text>"##,
            panel.y(v),
            left - 6.0,
            panel.y(v) + 4.0,
            format_tick(v)
        );
    }
    for t in chart.x_ticks() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            chart.x(t),
            panel.bottom() + 16.0,
            format_tick(t)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{left}" y="{top}" width="{}" height="{PANEL_HEIGHT}" fill="none" stroke="black"/>"#,
        right - left
    );
    for (i, line) in panel.lines.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", chart.x(px), panel.y(py)))
            .collect();
        let color = hex(line.color);
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let ly = panel.legend_y(i);
        let _ = writeln!(
            out,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{2}" y="{3}">{4}</text>"#,
            right + 10.0,
            right + 30.0,
            right + 36.0,
            ly + 4.0,
            escape(&line.label)
        );
    }
}

/// The PNG of `report`'s series: the chart of [`svg`], twice the size, in the built-in font.
pub fn png(report: &Report) -> Result<Vec<u8>, String> {
    let chart = layout(report);
    let mut canvas = Canvas::new(px(WIDTH) as u32, px(chart.height) as u32, WHITE);
    text(
        &mut canvas,
        MARGIN_LEFT,
        22.0,
        &chart.title,
        PNG_TITLE,
        Anchor::Start,
    );
    for panel in &chart.panels {
        png_panel(&mut canvas, &chart, panel);
    }
    text(
        &mut canvas,
        (LEFT + RIGHT) / 2.0,
        chart.height - 8.0,
        "seconds",
        PNG_TEXT,
        Anchor::Middle,
    );
    canvas.encode_png()
}

fn png_panel(canvas: &mut Canvas, chart: &Chart, panel: &Panel) {
    let (left, right, top) = (LEFT, RIGHT, panel.top);
    // Bold: the title twice, one pixel apart.
    for dx in [0.0, 0.5] {
        text(
            canvas,
            left + dx,
            top - 6.0,
            panel.title,
            PNG_TEXT,
            Anchor::Start,
        );
    }
    for v in panel.y_ticks() {
        let y = px(panel.y(v));
        canvas.line(px(left), y, px(right), y, 2, GRID);
        text(
            canvas,
            left - 6.0,
            panel.y(v) + 4.0,
            &format_tick(v),
            PNG_TEXT,
            Anchor::End,
        );
    }
    for t in chart.x_ticks() {
        text(
            canvas,
            chart.x(t),
            panel.bottom() + 16.0,
            &format_tick(t),
            PNG_TEXT,
            Anchor::Middle,
        );
    }
    let (x0, y0) = (px(left), px(top));
    canvas.stroke_rect(
        x0,
        y0,
        px(right) - x0 + 1,
        px(panel.bottom()) - y0 + 1,
        2,
        BLACK,
    );
    for (i, line) in panel.lines.iter().enumerate() {
        let points: Vec<(i64, i64)> = line
            .points
            .iter()
            .map(|&(x, y)| (px(chart.x(x)), px(panel.y(y))))
            .collect();
        match points.as_slice() {
            [] => {}
            [(x, y)] => canvas.line(*x, *y, *x, *y, 3, line.color),
            _ => {
                for pair in points.windows(2) {
                    let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                    canvas.line(x0, y0, x1, y1, 3, line.color);
                }
            }
        }
        let ly = panel.legend_y(i);
        canvas.fill_rect(
            px(right + 10.0),
            px(ly) - 3,
            px(right + 30.0) - px(right + 10.0),
            6,
            line.color,
        );
        text(
            canvas,
            right + 36.0,
            ly + 4.0,
            &line.label,
            PNG_TEXT,
            Anchor::Start,
        );
    }
}

/// Where a text's `x` is: as SVG's `text-anchor`.
#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// Draws `s` in black with its baseline at `y` (SVG units), as SVG's `<text>` would.
fn text(canvas: &mut Canvas, x: f64, y: f64, s: &str, scale: u32, anchor: Anchor) {
    let width = i64::from(raster::text_width(s, scale));
    let left = match anchor {
        Anchor::Start => px(x),
        Anchor::Middle => px(x) - width / 2,
        Anchor::End => px(x) - width,
    };
    let top = px(y) - i64::from(raster::GLYPH_ASCENT * scale);
    canvas.text(left, top, s, scale, BLACK);
}

/// SVG units to PNG pixels.
fn px(v: f64) -> i64 {
    (v * PNG_SCALE).round() as i64
}

/// `#rrggbb`.
fn hex([r, g, b]: Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
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

    /// Lines of the SVG of two points before PNG support (checked byte for byte then).
    const ORIGINAL_TWO_POINT_SVG_LINES: usize = 33;

    #[test]
    fn svg_keeps_its_shape() {
        let mut report = sample_report(100_000.0, 8.0);
        let mut second = report.series[0].clone();
        second.second = 2.0;
        report.series.push(second);
        let svg = svg(&report);
        assert_eq!(svg.lines().count(), ORIGINAL_TWO_POINT_SVG_LINES, "{svg}");
        assert!(svg.contains(
            r#"<text x="70" y="22" font-size="15">pinned-producer (embedded; closed loop)</text>"#
        ));
        assert!(svg.contains(r##"stroke="#1f77b4" stroke-width="1.5" points="410.0,"##));
        assert!(svg.contains(r##"stroke="#ff7f0e""##) && svg.contains(r##"stroke="#d62728""##));
        assert!(svg.contains(r#"<text x="410" y="652" text-anchor="middle">seconds</text></svg>"#));
    }

    /// (width, height, RGB8 bytes) of a PNG.
    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        crate::raster::tests::decode(png)
    }

    fn color_at(image: &(u32, u32, Vec<u8>), x: i64, y: i64) -> Rgb {
        let i = (y as usize * image.0 as usize + x as usize) * 3;
        [image.2[i], image.2[i + 1], image.2[i + 2]]
    }

    /// How many pixels of `color` lie in the PNG rectangle [x0, x1) x [y0, y1).
    fn count(
        image: &(u32, u32, Vec<u8>),
        color: Rgb,
        (x0, y0): (i64, i64),
        (x1, y1): (i64, i64),
    ) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| color_at(image, x, y) == color)
            .count()
    }

    /// The inside of panel `i`'s frame, in PNG pixels.
    fn plot_area(i: usize) -> ((i64, i64), (i64, i64)) {
        let top = MARGIN_TOP + i as f64 * (PANEL_HEIGHT + PANEL_GAP);
        (
            (px(LEFT) + 2, px(top) + 2),
            (px(RIGHT) - 1, px(top + PANEL_HEIGHT) - 1),
        )
    }

    #[test]
    fn png_has_the_svg_size_doubled_and_the_produce_line() {
        let mut report = sample_report(100_000.0, 8.0);
        let mut second = report.series[0].clone();
        second.second = 2.0;
        report.series.push(second);
        let png = png(&report).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let image = decode(&png);
        let height = MARGIN_TOP + 2.0 * PANEL_HEIGHT + PANEL_GAP + 40.0;
        assert_eq!((image.0, image.1), (1800, (2.0 * height) as u32));
        // The produce line is flat at 102.4 MB/s from second 1 to 2 (x_max 2, y_max 200).
        let chart = layout(&report);
        let panel = &chart.panels[0];
        assert_eq!(panel.y_max, 200.0);
        let (x, y) = (px(chart.x(1.5)), px(panel.y(102.4)));
        assert_eq!(color_at(&image, x, y), BLUE);
        let (from, to) = plot_area(0);
        assert!(
            count(&image, BLUE, from, to) > 700,
            "a line across half the panel"
        );
        assert_eq!(
            count(&image, GREEN, (0, 0), (1800, image.1 as i64)),
            0,
            "nothing consumed"
        );
        // The latency lines: p50 2 ms, p99 8 ms, max 32 ms.
        let (from, to) = plot_area(1);
        for color in [BLUE, ORANGE, RED] {
            assert!(count(&image, color, from, to) > 700, "{color:?}");
        }
        // The frame and the text are black.
        assert_eq!(color_at(&image, px(LEFT), px(MARGIN_TOP) + 10), BLACK);
        assert!(
            count(&image, BLACK, (0, 0), (1800, px(MARGIN_TOP) - 4)) > 200,
            "the title"
        );
    }

    #[test]
    fn png_of_an_empty_series_has_axes_only() {
        let mut report = sample_report(100_000.0, 8.0);
        report.series.clear();
        let image = decode(&png(&report).unwrap());
        assert_eq!(image.0, 1800);
        for i in 0..2 {
            let (from, to) = plot_area(i);
            // Grid lines but no data inside the frames.
            assert!(count(&image, GRID, from, to) > 1000, "panel {i}");
            for color in [BLUE, GREEN, ORANGE, RED] {
                assert_eq!(count(&image, color, from, to), 0, "panel {i} {color:?}");
            }
        }
        // The frames are there.
        assert_eq!(color_at(&image, px(LEFT), px(MARGIN_TOP) + 10), BLACK);
        // No throughput legend (no side had points); the latency legend stays.
        let legend = |top: f64| ((px(RIGHT + 10.0), px(top)), (1800, px(top + PANEL_HEIGHT)));
        let (from, to) = legend(MARGIN_TOP);
        assert_eq!(count(&image, BLUE, from, to), 0);
        let (from, to) = legend(MARGIN_TOP + PANEL_HEIGHT + PANEL_GAP);
        assert!(count(&image, ORANGE, from, to) > 0);
    }
}
