//! The report of a run: what `--json FILE` writes and `quiver bench compare` reads, and the
//! human table printed at the end.
//!
//! Units: throughput counts **payload bytes** (record values; keys, headers and batch framing
//! excluded) in MB/s with 1 MB = 10^6 bytes; latency in milliseconds.
//!
//! ```json
//! { "params":  { "workload": "pinned-producer", ... },
//!   "machine": { "cores": 2, "memory_bytes": ..., "kernel": "...", "file_system": "ext4 on /",
//!                "git_revision": "..." },
//!   "results": { "records_per_sec": .., "mb_per_sec": .., "latency_ms": { "p50": .., "p90": ..,
//!                "p99": .., "p999": .., "p9999": .., "max": .. },
//!                "headline": "produce", "latency_kind": "produce-ack", "loop_mode": "...",
//!                "produce": {...}, "consume": {...}, "errors": 0, ... },
//!   "series":  [ { "second": 1.0, "records_per_sec": .., "mb_per_sec": .., "latency_ms": {..},
//!                  "produce": {..}, "consume": {..} }, ... ] }
//! ```

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::histogram::Percentiles;
use crate::machine::Machine;
use crate::params::Params;

/// Bytes in the MB of "MB/s".
pub const BYTES_PER_MB: f64 = 1e6;

/// Throughput and latency of one side (produce or consume) over an interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Records counted (produce: acknowledged; consume: received).
    pub records: u64,
    /// Payload bytes counted.
    pub bytes: u64,
    /// Records per second.
    pub records_per_sec: f64,
    /// Payload MB (10^6 bytes) per second.
    pub mb_per_sec: f64,
    /// Latency percentiles (produce: send to acknowledgement; consume: end-to-end, or fetch
    /// round trips when the data was written before the run), if any sample was taken.
    pub latency_ms: Option<Percentiles>,
}

impl Figures {
    /// Figures of `records` and `bytes` over `secs` seconds.
    pub fn new(records: u64, bytes: u64, secs: f64, latency_ms: Option<Percentiles>) -> Figures {
        let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        Figures {
            records,
            bytes,
            records_per_sec: per_sec(records as f64),
            mb_per_sec: per_sec(bytes as f64) / BYTES_PER_MB,
            latency_ms,
        }
    }
}

/// Which side a report's headline figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The producers.
    Produce,
    /// The consumers.
    Consume,
}

/// The results of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Headline records per second (of the `headline` side).
    pub records_per_sec: f64,
    /// Headline payload MB/s.
    pub mb_per_sec: f64,
    /// Headline latency (`latency_kind`).
    pub latency_ms: Option<Percentiles>,
    /// Which side the headline figures are.
    pub headline: Side,
    /// What the headline latency measures: `produce-ack`, `end-to-end` or `fetch`.
    pub latency_kind: String,
    /// Open or closed loop, and whether latency is corrected for coordinated omission.
    pub loop_mode: String,
    /// Measured seconds (warm-up excluded, draining included).
    pub duration_secs: f64,
    /// Producer figures, if the workload produces during the measurement.
    pub produce: Option<Figures>,
    /// Consumer figures, if the workload consumes.
    pub consume: Option<Figures>,
    /// Failed operations (a send, a delivery, a poll, a missing record). Non-zero fails the run.
    pub errors: u64,
    /// The first few errors, verbatim.
    pub error_samples: Vec<String>,
}

/// One second (or the last, partial interval) of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// End of the interval, seconds since the measurement started.
    pub second: f64,
    /// Headline records per second in the interval.
    pub records_per_sec: f64,
    /// Headline payload MB/s in the interval.
    pub mb_per_sec: f64,
    /// Headline latency of the samples taken in the interval.
    pub latency_ms: Option<Percentiles>,
    /// Producer figures in the interval.
    pub produce: Option<Figures>,
    /// Consumer figures in the interval.
    pub consume: Option<Figures>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What ran.
    pub params: Params,
    /// Where it ran.
    pub machine: Machine,
    /// Totals.
    pub results: Results,
    /// Per second.
    pub series: Vec<Point>,
}

impl Report {
    /// Writes the JSON report.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("a report serializes");
        std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Reads a JSON report.
    pub fn load(path: &Path) -> Result<Report, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a quiver bench report: {e}", path.display()))
    }

    /// The human table printed at the end of a run.
    pub fn table(&self) -> String {
        let p = &self.params;
        let r = &self.results;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} against {}: {} producer(s), {} consumer(s), {} partition(s)/topic, {} B values{}, {} per batch, linger {} ms, acks {}, flush {}, compression {}",
            p.workload,
            p.target,
            if p.workload.produces() { p.producers } else { 0 },
            if p.workload.consumes() { p.consumers } else { 0 },
            p.partitions,
            p.message_size,
            if p.keyed { " keyed" } else { "" },
            p.messages_per_batch,
            p.linger_ms,
            p.acks,
            p.flush,
            p.compression,
        );
        let _ = writeln!(
            out,
            "machine: {} cores, {:.1} GiB, kernel {}, {}, git {}",
            self.machine.cores,
            self.machine.memory_bytes as f64 / (1u64 << 30) as f64,
            self.machine.kernel,
            self.machine.file_system,
            self.machine.git_revision
        );
        let _ = writeln!(out, "latency: {}", r.loop_mode);
        let _ = writeln!(
            out,
            "measured {:.2} s; throughput counts payload bytes (1 MB = 10^6 B)\n",
            r.duration_secs
        );
        let _ = writeln!(
            out,
            "{:<10} {:>12} {:>14} {:>10}",
            "", "records", "records/s", "MB/s"
        );
        for (name, f) in [("produce", &r.produce), ("consume", &r.consume)] {
            if let Some(f) = f {
                let _ = writeln!(
                    out,
                    "{name:<10} {:>12} {:>14.0} {:>10.1}",
                    f.records, f.records_per_sec, f.mb_per_sec
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        let consume_kind = if p.workload.end_to_end() {
            "end-to-end"
        } else {
            "fetch"
        };
        let rows = [
            ("produce-ack", r.produce.as_ref()),
            (consume_kind, r.consume.as_ref()),
        ];
        for (name, f) in rows {
            let Some(f) = f else { continue };
            let _ = write!(out, "{name:<24}");
            match &f.latency_ms {
                Some(l) => {
                    for (_, v) in l.named() {
                        let _ = write!(out, " {v:>9.3}");
                    }
                    let _ = writeln!(out);
                }
                None => {
                    let _ = writeln!(out, " (no samples)");
                }
            }
        }
        if r.errors > 0 {
            let _ = writeln!(out, "\nERRORS: {} operation(s) failed:", r.errors);
            for e in &r.error_samples {
                let _ = writeln!(out, "  {e}");
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::params::{MessageSize, Workload};

    pub(crate) fn sample_report(records_per_sec: f64, p99: f64) -> Report {
        let latency = Percentiles {
            p50: p99 / 4.0,
            p90: p99 / 2.0,
            p99,
            p999: p99 * 2.0,
            p9999: p99 * 3.0,
            max: p99 * 4.0,
        };
        let produce = Figures::new(
            (records_per_sec * 10.0) as u64,
            (records_per_sec * 10.0) as u64 * 1024,
            10.0,
            Some(latency),
        );
        Report {
            params: Params {
                workload: Workload::PinnedProducer,
                producers: 1,
                consumers: 0,
                partitions: 1,
                message_size: MessageSize {
                    min: 1024,
                    max: 1024,
                },
                messages_per_batch: 1000,
                linger_ms: 5,
                compression: "none".into(),
                acks: "all".into(),
                flush: "never".into(),
                replication_factor: -1,
                keyed: false,
                messages: None,
                duration_secs: Some(10.0),
                warmup_secs: 1.0,
                rate: None,
                target: "embedded".into(),
            },
            machine: Machine {
                cores: 2,
                memory_bytes: 8 << 30,
                cpu: "test".into(),
                kernel: "6.1".into(),
                file_system: "ext4 on /".into(),
                git_revision: "abc123".into(),
            },
            results: Results {
                records_per_sec: produce.records_per_sec,
                mb_per_sec: produce.mb_per_sec,
                latency_ms: Some(latency),
                headline: Side::Produce,
                latency_kind: "produce-ack".into(),
                loop_mode: "closed-loop".into(),
                duration_secs: 10.0,
                produce: Some(produce.clone()),
                consume: None,
                errors: 0,
                error_samples: Vec::new(),
            },
            series: vec![Point {
                second: 1.0,
                records_per_sec: produce.records_per_sec,
                mb_per_sec: produce.mb_per_sec,
                latency_ms: Some(latency),
                produce: Some(produce),
                consume: None,
            }],
        }
    }

    #[test]
    fn figures_count_payload_megabytes() {
        let f = Figures::new(2_000_000, 2_000_000 * 1000, 2.0, None);
        assert_eq!(f.records_per_sec, 1_000_000.0);
        assert_eq!(f.mb_per_sec, 1000.0);
        assert_eq!(Figures::new(5, 5, 0.0, None).mb_per_sec, 0.0);
    }

    #[test]
    fn json_has_the_documented_shape_and_round_trips() {
        let report = sample_report(100_000.0, 8.0);
        let value = serde_json::to_value(&report).unwrap();
        for key in ["params", "machine", "results", "series"] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        for key in [
            "cores",
            "memory_bytes",
            "kernel",
            "file_system",
            "git_revision",
        ] {
            assert!(value["machine"].get(key).is_some(), "machine.{key}");
        }
        let results = &value["results"];
        assert_eq!(results["records_per_sec"], 100_000.0);
        assert!((results["mb_per_sec"].as_f64().unwrap() - 102.4).abs() < 1e-9);
        for key in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            assert!(results["latency_ms"][key].is_number(), "latency_ms.{key}");
        }
        assert_eq!(results["latency_ms"]["p99"], 8.0);
        assert_eq!(value["series"][0]["second"], 1.0);
        assert_eq!(value["params"]["workload"], "pinned-producer");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        report.save(&path).unwrap();
        assert_eq!(Report::load(&path).unwrap(), report);
        std::fs::write(&path, "{}").unwrap();
        assert!(Report::load(&path).is_err());
    }

    #[test]
    fn the_table_shows_figures_mode_and_errors() {
        let mut report = sample_report(100_000.0, 8.0);
        let table = report.table();
        assert!(table.contains("pinned-producer"), "{table}");
        assert!(table.contains("closed-loop"), "{table}");
        assert!(table.contains("100000"), "{table}");
        assert!(table.contains("102.4"), "{table}");
        assert!(table.contains("produce-ack"), "{table}");
        assert!(table.contains("8.000"), "{table}");
        assert!(!table.contains("ERRORS"), "{table}");
        report.results.errors = 2;
        report.results.error_samples = vec!["delivery failed: boom".into()];
        let table = report.table();
        assert!(table.contains("ERRORS: 2"), "{table}");
        assert!(table.contains("boom"), "{table}");
    }
}
