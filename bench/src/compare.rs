//! `quiver bench compare A.json B.json`: every figure of two reports side by side, with the
//! ratio B/A and whether B is better (higher throughput, lower latency).

use std::fmt::Write as _;

use crate::report::{Figures, Report};

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it is: `produce MB/s`, `end-to-end p99 ms`, ...
    pub name: String,
    /// Value in A.
    pub a: Option<f64>,
    /// Value in B.
    pub b: Option<f64>,
    /// Whether a higher value is better (throughput) or worse (latency).
    pub higher_is_better: bool,
}

impl Row {
    /// B / A, when both exist and A is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.a, self.b) {
            (Some(a), Some(b)) if a != 0.0 => Some(b / a),
            _ => None,
        }
    }

    /// `better`, `worse` or `same` (within 1%) for B against A.
    pub fn verdict(&self) -> &'static str {
        match self.ratio() {
            None => "",
            Some(r) if (r - 1.0).abs() < 0.01 => "same",
            Some(r) if (r > 1.0) == self.higher_is_better => "better",
            Some(_) => "worse",
        }
    }
}

/// Picks one side's figures out of a report.
type SidePicker = fn(&Report) -> Option<&Figures>;

/// The rows comparing `a` with `b`: headline figures, then each side's throughput and latency.
pub fn compare(a: &Report, b: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |name: String, a: Option<f64>, b: Option<f64>, higher_is_better| {
        if a.is_some() || b.is_some() {
            rows.push(Row {
                name,
                a,
                b,
                higher_is_better,
            });
        }
    };
    push(
        "records/s".into(),
        Some(a.results.records_per_sec),
        Some(b.results.records_per_sec),
        true,
    );
    push(
        "MB/s".into(),
        Some(a.results.mb_per_sec),
        Some(b.results.mb_per_sec),
        true,
    );
    let consume_kind = |r: &Report| {
        if r.params.workload.end_to_end() {
            "end-to-end"
        } else {
            "fetch"
        }
    };
    let sides: [(&str, SidePicker); 2] = [
        ("produce", |r| r.results.produce.as_ref()),
        ("consume", |r| r.results.consume.as_ref()),
    ];
    for (side, get) in sides {
        let (fa, fb) = (get(a), get(b));
        push(
            format!("{side} records/s"),
            fa.map(|f| f.records_per_sec),
            fb.map(|f| f.records_per_sec),
            true,
        );
        push(
            format!("{side} MB/s"),
            fa.map(|f| f.mb_per_sec),
            fb.map(|f| f.mb_per_sec),
            true,
        );
        let kind = if side == "produce" {
            "produce-ack"
        } else {
            consume_kind(b)
        };
        let la = fa.and_then(|f| f.latency_ms);
        let lb = fb.and_then(|f| f.latency_ms);
        for i in 0..6 {
            let name = |l: &crate::histogram::Percentiles| l.named()[i].0;
            let label = la.as_ref().or(lb.as_ref()).map(name).unwrap_or("");
            push(
                format!("{kind} {label} ms"),
                la.map(|l| l.named()[i].1),
                lb.map(|l| l.named()[i].1),
                false,
            );
        }
    }
    rows
}

/// The comparison as a table, with a note when the two runs differ in what they ran.
pub fn render(a_name: &str, a: &Report, b_name: &str, b: &Report) -> String {
    let mut out = String::new();
    if a.params.workload != b.params.workload {
        let _ = writeln!(
            out,
            "note: different workloads: A is {}, B is {}",
            a.params.workload, b.params.workload
        );
    }
    if a.machine != b.machine {
        let _ = writeln!(
            out,
            "note: different machines or revisions: A {} cores git {}, B {} cores git {}",
            a.machine.cores, a.machine.git_revision, b.machine.cores, b.machine.git_revision
        );
    }
    if a.results.errors > 0 || b.results.errors > 0 {
        let _ = writeln!(
            out,
            "note: runs with errors: A {}, B {}",
            a.results.errors, b.results.errors
        );
    }
    let _ = writeln!(out, "A = {a_name}\nB = {b_name}\n");
    let _ = writeln!(
        out,
        "{:<26} {:>14} {:>14} {:>8}  ",
        "figure", "A", "B", "B/A"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    for row in compare(a, b) {
        let ratio = row
            .ratio()
            .map_or_else(|| "-".to_string(), |r| format!("{r:.3}"));
        let _ = writeln!(
            out,
            "{:<26} {:>14} {:>14} {:>8}  {}",
            row.name,
            cell(row.a),
            cell(row.b),
            ratio,
            row.verdict()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn ratios_and_verdicts() {
        let a = sample_report(100_000.0, 8.0);
        let b = sample_report(150_000.0, 4.0);
        let rows = compare(&a, &b);
        let row = |name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
        };
        assert_eq!(row("records/s").ratio(), Some(1.5));
        assert_eq!(row("records/s").verdict(), "better");
        assert!((row("produce MB/s").ratio().unwrap() - 1.5).abs() < 1e-9);
        assert_eq!(row("produce-ack p99 ms").ratio(), Some(0.5));
        assert_eq!(row("produce-ack p99 ms").verdict(), "better");
        assert_eq!(row("produce-ack max ms").a, Some(32.0));
        // Neither report consumes: no consume rows.
        assert!(rows.iter().all(|r| !r.name.starts_with("consume")));
        let back = compare(&b, &a);
        assert_eq!(
            back.iter()
                .find(|r| r.name == "records/s")
                .unwrap()
                .verdict(),
            "worse"
        );
    }

    #[test]
    fn missing_sides_and_zero_have_no_ratio() {
        let a = sample_report(0.0, 8.0);
        let mut b = sample_report(10.0, 8.0);
        b.results.produce = None;
        let rows = compare(&a, &b);
        let rps = rows.iter().find(|r| r.name == "records/s").unwrap();
        assert_eq!(rps.ratio(), None);
        let side = rows.iter().find(|r| r.name == "produce MB/s").unwrap();
        assert_eq!(side.b, None);
        assert_eq!(side.ratio(), None);
        assert_eq!(side.verdict(), "");
    }

    #[test]
    fn render_shows_both_values_ratio_and_notes() {
        let a = sample_report(100_000.0, 8.0);
        let mut b = sample_report(50_000.0, 8.0);
        b.machine.git_revision = "def456".into();
        let text = render("a.json", &a, "b.json", &b);
        assert!(text.contains("A = a.json"), "{text}");
        assert!(text.contains("100000.000"), "{text}");
        assert!(text.contains("50000.000"), "{text}");
        assert!(text.contains("0.500"), "{text}");
        assert!(text.contains("worse"), "{text}");
        assert!(text.contains("different machines or revisions"), "{text}");
    }
}
