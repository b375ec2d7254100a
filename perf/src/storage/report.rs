//! The report: per-case medians and ratios, the human table, the JSON document and the
//! one-line summary the benchmark ends with.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::fio::FioRun;
use super::ours::{LogKnobs, ReadRun, WriteRun};
use super::stats::{paired_ratios, Spread};
use super::Flush;

/// What the benchmark ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Bytes appended (and read back) per run, by ours and by fio.
    pub bytes_per_run: u64,
    /// Rounds of (ours, fio) per case.
    pub rounds: usize,
    /// The directory the files lived in.
    pub dir: String,
    /// Batch sizes run.
    pub batch_bytes: Vec<usize>,
    /// Flush policies run.
    #[serde(skip)]
    pub flushes: Vec<Flush>,
    /// The log knobs.
    pub knobs: LogKnobs,
    /// `max_bytes` of each cold read call.
    pub read_max_bytes: usize,
    /// Registered io_uring memory of our executor.
    pub io_memory_bytes: usize,
    /// Whether that memory was backed by transparent huge pages (diagnosis).
    pub io_memory_thp: bool,
    /// Whether the write phase parked after every append (diagnosis).
    pub park_each_append: bool,
    /// CPU our executor was pinned to, if any.
    pub cpu: Option<usize>,
    /// Pause after `sync` before each timed phase.
    pub settle_ms: u64,
}

/// Every run of one case.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseRuns {
    /// Our write phases.
    pub ours_write: Vec<WriteRun>,
    /// Our cold reads.
    pub ours_read: Vec<ReadRun>,
    /// fio writes with our pattern (same fallocate mode).
    pub fio_write: Vec<FioRun>,
    /// fio writes with the other fallocate mode (flush=never only; reference).
    pub fio_write_other: Vec<FioRun>,
    /// fio reads.
    pub fio_read: Vec<FioRun>,
}

/// Medians and ratios of one case. Ratios are ours / fio.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    /// Our write throughput, MiB/s.
    pub ours_write_mib_s: Option<Spread>,
    /// fio's, same pattern.
    pub fio_write_mib_s: Option<Spread>,
    /// Median over median.
    pub write_ratio: Option<f64>,
    /// Per-round ratios.
    pub write_ratio_per_round: Option<Spread>,
    /// Our cold read throughput, MiB/s.
    pub ours_read_mib_s: Option<Spread>,
    /// fio's.
    pub fio_read_mib_s: Option<Spread>,
    /// Median over median.
    pub read_ratio: Option<f64>,
    /// Per-round ratios.
    pub read_ratio_per_round: Option<Spread>,
    /// fio writes in the other fallocate mode, MiB/s.
    pub fio_write_other_mib_s: Option<Spread>,
}

/// One case: a batch size and a flush policy.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Batch size.
    pub batch_bytes: usize,
    /// `never` or `interval`.
    pub flush: &'static str,
    /// fio's matching write: `preallocated` or `appending`.
    pub fio_write_mode: &'static str,
    /// The other mode (the reference write).
    pub fio_write_other_mode: &'static str,
    /// Medians and ratios.
    pub summary: CaseSummary,
    /// Every run.
    pub runs: CaseRuns,
}

impl CaseReport {
    /// Summarises `runs`.
    pub fn new(batch_bytes: usize, flush: Flush, settings: &Settings, runs: CaseRuns) -> Self {
        let ours_w: Vec<f64> = runs.ours_write.iter().map(|r| r.mib_s).collect();
        let ours_r: Vec<f64> = runs.ours_read.iter().map(|r| r.mib_s).collect();
        let fio_w: Vec<f64> = runs.fio_write.iter().map(|r| r.mib_s).collect();
        let fio_r: Vec<f64> = runs.fio_read.iter().map(|r| r.mib_s).collect();
        let other: Vec<f64> = runs.fio_write_other.iter().map(|r| r.mib_s).collect();
        let ratio = |o: &Option<Spread>, f: &Option<Spread>| match (o, f) {
            (Some(o), Some(f)) if f.median > 0.0 => Some(o.median / f.median),
            _ => None,
        };
        let ours_write_mib_s = Spread::of(&ours_w);
        let fio_write_mib_s = Spread::of(&fio_w);
        let ours_read_mib_s = Spread::of(&ours_r);
        let fio_read_mib_s = Spread::of(&fio_r);
        let preallocated = settings.knobs.preallocate_bytes > 0;
        let mode = |p: bool| if p { "preallocated" } else { "appending" };
        CaseReport {
            batch_bytes,
            flush: flush.name(),
            fio_write_mode: mode(preallocated),
            fio_write_other_mode: mode(!preallocated),
            summary: CaseSummary {
                write_ratio: ratio(&ours_write_mib_s, &fio_write_mib_s),
                write_ratio_per_round: Spread::of(&paired_ratios(&ours_w, &fio_w)),
                read_ratio: ratio(&ours_read_mib_s, &fio_read_mib_s),
                read_ratio_per_round: Spread::of(&paired_ratios(&ours_r, &fio_r)),
                ours_write_mib_s,
                fio_write_mib_s,
                ours_read_mib_s,
                fio_read_mib_s,
                fio_write_other_mib_s: Spread::of(&other),
            },
            runs,
        }
    }

    fn name(&self) -> String {
        format!("{} KiB, flush={}", self.batch_bytes >> 10, self.flush)
    }
}

/// The headline figures: the 1 MiB, flush=never case.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    /// Which case they come from.
    pub case: String,
    /// Our median append throughput, MiB/s.
    pub append_mib_s: f64,
    /// fio's median write throughput, same pattern.
    pub fio_write_mib_s: Option<f64>,
    /// Their ratio.
    pub append_ratio: Option<f64>,
    /// Our median cold read throughput.
    pub read_mib_s: f64,
    /// fio's median read throughput.
    pub fio_read_mib_s: Option<f64>,
    /// Their ratio.
    pub read_ratio: Option<f64>,
}

/// A labelled fio command line.
#[derive(Debug, Clone, Serialize)]
pub struct FioCommand {
    /// What it measures.
    pub label: String,
    /// The command.
    pub command: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What ran.
    pub settings: Settings,
    /// The fio jobs, as run.
    pub fio_commands: Vec<FioCommand>,
    /// Every case.
    pub cases: Vec<CaseReport>,
    /// The summary figures.
    pub headline: Option<Headline>,
}

/// The batch size of the headline case.
const HEADLINE_BATCH_BYTES: usize = 1 << 20;

impl Report {
    /// Assembles the report and picks the headline case (1 MiB, never; else the largest batch
    /// with never; else the first case).
    pub fn new(
        settings: Settings,
        fio_commands: Vec<(String, String)>,
        cases: Vec<CaseReport>,
    ) -> Self {
        let pick = cases
            .iter()
            .find(|c| c.batch_bytes == HEADLINE_BATCH_BYTES && c.flush == "never")
            .or_else(|| {
                cases
                    .iter()
                    .filter(|c| c.flush == "never")
                    .max_by_key(|c| c.batch_bytes)
            })
            .or_else(|| cases.first());
        let headline = pick.and_then(|c| {
            let s = &c.summary;
            Some(Headline {
                case: c.name(),
                append_mib_s: s.ours_write_mib_s?.median,
                fio_write_mib_s: s.fio_write_mib_s.map(|f| f.median),
                append_ratio: s.write_ratio,
                read_mib_s: s.ours_read_mib_s?.median,
                fio_read_mib_s: s.fio_read_mib_s.map(|f| f.median),
                read_ratio: s.read_ratio,
            })
        });
        Report {
            settings,
            fio_commands: fio_commands
                .into_iter()
                .map(|(label, command)| FioCommand { label, command })
                .collect(),
            cases,
            headline,
        }
    }

    /// The human-readable report: settings, the table, the fio command lines.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let k = &s.knobs;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "storage bench: {:.2} GiB per run, {} rounds (ours then fio, alternating), dir {}",
            s.bytes_per_run as f64 / (1u64 << 30) as f64,
            s.rounds,
            s.dir
        );
        let _ = writeln!(
            out,
            "log: write_chunk {} KiB, writes_in_flight_max {}, preallocate {} MiB steps, \
             segment {} MiB, read {} MiB per call in {} KiB reads, io_memory {} MiB, \
             flush=interval every {} MiB (ms trigger {} ms, never reached)",
            k.write_chunk_bytes >> 10,
            k.writes_in_flight_max,
            k.preallocate_bytes >> 20,
            k.segment_bytes >> 20,
            s.read_max_bytes >> 20,
            k.read_io_bytes >> 10,
            s.io_memory_bytes >> 20,
            k.interval_bytes >> 20,
            k.interval_ms
        );
        if s.io_memory_thp || s.park_each_append {
            let _ = writeln!(
                out,
                "diagnosis: io_memory on huge pages {}, park after each append {}",
                s.io_memory_thp, s.park_each_append
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:<26} {:>20} {:>20} {:>6} {:>18}",
            "case", "phase", "ours MiB/s", "fio MiB/s", "ratio", "per-round ratio"
        );
        let _ = writeln!(out, "{}", "-".repeat(24 + 26 + 20 + 20 + 6 + 18 + 5));
        let show = |s: &Option<Spread>| s.map_or("-".to_string(), |s| s.show());
        let show_ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        let show_per_round = |s: &Option<Spread>| {
            s.map_or("-".to_string(), |s| {
                format!("{:.2} ({:.2}-{:.2})", s.median, s.min, s.max)
            })
        };
        for c in &self.cases {
            let sum = &c.summary;
            let _ = writeln!(
                out,
                "{:<24} {:<26} {:>20} {:>20} {:>6} {:>18}",
                c.name(),
                format!("write (fio {})", c.fio_write_mode),
                show(&sum.ours_write_mib_s),
                show(&sum.fio_write_mib_s),
                show_ratio(sum.write_ratio),
                show_per_round(&sum.write_ratio_per_round)
            );
            let _ = writeln!(
                out,
                "{:<24} {:<26} {:>20} {:>20} {:>6} {:>18}",
                c.name(),
                "cold read",
                show(&sum.ours_read_mib_s),
                show(&sum.fio_read_mib_s),
                show_ratio(sum.read_ratio),
                show_per_round(&sum.read_ratio_per_round)
            );
            if sum.fio_write_other_mib_s.is_some() {
                let _ = writeln!(
                    out,
                    "{:<24} {:<26} {:>20} {:>20}",
                    c.name(),
                    format!("fio write {} (ref)", c.fio_write_other_mode),
                    "-",
                    show(&sum.fio_write_other_mib_s)
                );
            }
        }
        if !self.fio_commands.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "fio jobs:");
            for cmd in &self.fio_commands {
                let _ = writeln!(out, "  {}:", cmd.label);
                let _ = writeln!(out, "    {}", cmd.command);
            }
        }
        out
    }

    /// The closing line: the headline case's figures.
    pub fn last_line(&self) -> String {
        let Some(h) = &self.headline else {
            return "append_mib_s=n/a fio_write_mib_s=n/a append_ratio=n/a read_mib_s=n/a \
                    fio_read_mib_s=n/a read_ratio=n/a"
                .to_string();
        };
        let mib = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}"));
        let ratio = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        format!(
            "append_mib_s={:.0} fio_write_mib_s={} append_ratio={} read_mib_s={:.0} \
             fio_read_mib_s={} read_ratio={}",
            h.append_mib_s,
            mib(h.fio_write_mib_s),
            ratio(h.append_ratio),
            h.read_mib_s,
            mib(h.fio_read_mib_s),
            ratio(h.read_ratio)
        )
    }

    /// Writes the JSON document to `path` (creating its directory).
    pub fn save_json(&self, path: &Path) -> Result<(), String> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}
