//! The storage benchmark: the partition log's O_DIRECT append and cold-read throughput,
//! measured against fio running the same IO pattern on the same file system.
//!
//! For every case (batch size x flush policy) it alternates, `rounds` times: our write phase
//! and cold read phase ([`ours`]), then fio's write job(s) and read job ([`fio`]). The disk is
//! shared and noisy, so only figures from the same invocation are compared, as medians with
//! their min-max, and each ratio is `our median / fio's median` (the median of the per-round
//! ratios is reported beside it).
//!
//! Runs on the calling thread, which builds the batches, runs fio and starts one short-lived
//! glommio executor per measured phase of ours. Files live under one directory (`--dir`),
//! removed at the end; before each timed phase the benchmark runs `sync` and pauses
//! (`--settle-ms`), so deletions (online discard on this ext4) and writeback of one run do not
//! land in the next.
//!
//! Platform fact (the development VM, measured with tracefs): its virtio-blk device offers no
//! indirect descriptors and `max_segments` is 254, so a 1 MiB IO becomes a 1016 KiB request plus
//! an 8 KiB one, and a request over physically scattered pages takes ~256 ring descriptors:
//! then only one request fits in the virtqueue and the device runs at depth 1 (the others are
//! requeued and reissued by kblockd), at about half the throughput. Whether a buffer is
//! scattered depends on the pages the process (or glommio executor) got when it registered its
//! memory, so single runs of ours and of fio are bimodal; hence alternating rounds and medians.
//! `--sample-queue` shows the device depth per phase; `--io-memory-thp` backs our registered
//! memory with huge pages (contiguous), which removes the slow mode for ours.

pub mod batches;
pub mod fio;
pub mod ours;
pub mod report;
pub mod sampler;
pub mod stats;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use quiver_engine::log::LogConfig;
use quiver_engine::rt::{now_ms, ExecutorConfig, PROBE_FILE_NAME};

use batches::Batches;
use fio::FioJob;
use ours::{Dirs, Durability, LogKnobs, WritePlan};
use report::{CaseReport, CaseRuns, Report, Settings};

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// GiB per run and rounds with `--quick`.
const QUICK_GIB: f64 = 0.25;
const QUICK_ROUNDS: usize = 1;
/// GiB per run and rounds by default (at least 2 GiB and 3 rounds are asked for; 5 because
/// single runs are bimodal on the development VM, see the module doc).
const DEFAULT_GIB: f64 = 2.0;
const DEFAULT_ROUNDS: usize = 5;
/// With `flush=interval`, the time trigger: far above the time `interval_mib` takes to
/// append, so syncs follow bytes only and fio's `fdatasync=N` is the same pattern.
pub const INTERVAL_MS: u64 = 60_000;

/// The flush policy of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flush {
    /// `flush=never`: writes reach the device, no fdatasync.
    Never,
    /// `flush=interval`: fdatasync every `--interval-mib` (fio: `--fdatasync=N`).
    Interval,
}

impl Flush {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Flush::Never => "never",
            Flush::Interval => "interval",
        }
    }
}

/// Command-line options of `storage-bench`. Log knobs left out take the engine's defaults.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "storage-bench",
    about = "Quiver's storage benchmark: partition log append and cold read vs fio"
)]
pub struct Options {
    /// GiB appended per run [default: 2; 0.25 with --quick].
    #[arg(long)]
    pub gib: Option<f64>,
    /// Rounds of (ours, fio) per case [default: 3; 1 with --quick].
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Quick iteration run: --gib 0.25 --rounds 1 unless given.
    #[arg(long)]
    pub quick: bool,
    /// Directory for the files (same file system for ours and fio); removed at the end.
    #[arg(long, default_value = "target/bench-storage")]
    pub dir: PathBuf,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench-storage.json")]
    pub json: PathBuf,
    /// Batch sizes in KiB (1 KiB records).
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1024])]
    pub batch_kib: Vec<usize>,
    /// Flush policies to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Flush::Never, Flush::Interval])]
    pub flush: Vec<Flush>,
    /// flush=interval syncs every this many MiB.
    #[arg(long, default_value_t = 32)]
    pub interval_mib: u64,
    /// Log `write_chunk_bytes` in KiB (fio --bs for writes).
    #[arg(long)]
    pub write_chunk_kib: Option<usize>,
    /// Log `writes_in_flight_max` (fio --iodepth for writes).
    #[arg(long)]
    pub write_qd: Option<usize>,
    /// Log `preallocate_bytes` in MiB; 0 appends (then fio's matching write is fallocate=none).
    #[arg(long)]
    pub preallocate_mib: Option<u64>,
    /// Log `segment_bytes` in MiB.
    #[arg(long)]
    pub segment_mib: Option<u64>,
    /// `max_bytes` of each cold read call, in MiB.
    #[arg(long, default_value_t = 16)]
    pub read_max_mib: usize,
    /// Log `read_io_bytes` in KiB (fio --bs for reads).
    #[arg(long)]
    pub read_io_kib: Option<usize>,
    /// Registered io_uring memory of our executor, MiB (ExecutorConfig::io_memory_bytes).
    #[arg(long, default_value_t = 64)]
    pub io_memory_mib: usize,
    /// Pin our executor to this CPU (default: float, like fio).
    #[arg(long)]
    pub cpu: Option<usize>,
    /// The fio binary.
    #[arg(long, default_value = "fio")]
    pub fio: PathBuf,
    /// Skip fio (measure only ours, while iterating).
    #[arg(long)]
    pub skip_fio: bool,
    /// Diagnosis: park the appending task for 1 us after every append (a broker's shard parks
    /// between requests), so glommio submits each write the appender queued at once.
    #[arg(long)]
    pub park_each_append: bool,
    /// Diagnosis: back our executor's registered io_memory with transparent huge pages
    /// (physically contiguous DMA buffers); fio's buffers stay as they are.
    #[arg(long)]
    pub io_memory_thp: bool,
    /// Diagnosis: sample the device queue depth during every timed phase.
    #[arg(long)]
    pub sample_queue: bool,
    /// Pause after `sync` before each timed phase, ms.
    #[arg(long, default_value_t = 500)]
    pub settle_ms: u64,
}

/// Runs the benchmark and returns its report (not yet printed or saved).
pub fn run(options: &Options) -> Result<Report, String> {
    let settings = resolve(options)?;
    if !options.skip_fio {
        check_fio(&options.fio)?;
    }
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| format!("cannot create {}: {e}", options.dir.display()))?;
    let dir = options
        .dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let files = Files {
        dirs: Dirs {
            base: dir.clone(),
            log: dir.join("log"),
        },
        fio_file: dir.join("fio.dat"),
    };
    let executor = ExecutorConfig {
        name: "quiver-bench".into(),
        cpu: options.cpu,
        io_memory_bytes: options.io_memory_mib << 20,
    };
    let mut cases = Vec::new();
    let mut fio_commands = Vec::new();
    for &batch_bytes in &settings.batch_bytes {
        let count = (settings.bytes_per_run / batch_bytes as u64) as usize;
        eprintln!(
            "building {count} batches of {} KiB ({} records of 1 KiB each)...",
            batch_bytes >> 10,
            batch_bytes / batches::RECORD_BYTES
        );
        let batches = Batches::build(batch_bytes, count, now_ms());
        for &flush in &settings.flushes {
            let case = run_case(options, &settings, &executor, &files, &batches, flush)?;
            for (label, job) in case_jobs(&settings, &files, flush) {
                let line = (label, job.command_line(&options.fio));
                if !fio_commands.contains(&line) {
                    fio_commands.push(line);
                }
            }
            cases.push(case);
        }
    }
    if options.skip_fio {
        fio_commands.clear();
    }
    Ok(Report::new(settings, fio_commands, cases))
}

/// Removes everything the benchmark put in its directory (and the directory, if then empty).
pub fn clean_up(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.join("log"));
    let _ = std::fs::remove_file(dir.join("fio.dat"));
    let _ = std::fs::remove_file(dir.join(PROBE_FILE_NAME));
    let _ = std::fs::remove_dir(dir);
}

struct Files {
    dirs: Dirs,
    fio_file: PathBuf,
}

fn resolve(options: &Options) -> Result<Settings, String> {
    let defaults = LogConfig::default();
    let gib = options.gib.unwrap_or(if options.quick {
        QUICK_GIB
    } else {
        DEFAULT_GIB
    });
    let rounds = options.rounds.unwrap_or(if options.quick {
        QUICK_ROUNDS
    } else {
        DEFAULT_ROUNDS
    });
    let write_chunk_bytes = options
        .write_chunk_kib
        .map_or(defaults.write_chunk_bytes, |k| k << 10);
    let read_io_bytes = options
        .read_io_kib
        .map_or(defaults.read_io_bytes, |k| k << 10);
    let read_max_bytes = options.read_max_mib << 20;
    let batch_bytes: Vec<usize> = options.batch_kib.iter().map(|k| k << 10).collect();
    for (what, n) in batch_bytes.iter().map(|&b| ("--batch-kib", b)).chain([
        ("--write-chunk-kib", write_chunk_bytes),
        ("--read-io-kib", read_io_bytes),
    ]) {
        if !n.is_power_of_two() || n < 4096 {
            return Err(format!("{what} must be a power of two of at least 4 KiB"));
        }
    }
    if batch_bytes.is_empty() || options.flush.is_empty() || rounds == 0 {
        return Err("nothing to run: give batch sizes, flush policies and rounds >= 1".into());
    }
    if read_max_bytes < read_io_bytes || read_max_bytes % read_io_bytes != 0 {
        return Err("--read-max-mib must be a multiple of --read-io-kib".into());
    }
    let interval_bytes = options.interval_mib * MIB;
    if interval_bytes == 0 || interval_bytes % write_chunk_bytes as u64 != 0 {
        return Err("--interval-mib must be a positive multiple of the write chunk".into());
    }
    // Whole batches of every size and whole fio blocks: all are powers of two.
    let unit = batch_bytes
        .iter()
        .copied()
        .chain([write_chunk_bytes, read_io_bytes])
        .max()
        .unwrap_or(write_chunk_bytes) as u64;
    let bytes_per_run = (gib * GIB) as u64 / unit * unit;
    if bytes_per_run == 0 {
        return Err("--gib is too small for one batch".into());
    }
    Ok(Settings {
        bytes_per_run,
        rounds,
        dir: options.dir.display().to_string(),
        batch_bytes,
        flushes: options.flush.clone(),
        knobs: LogKnobs {
            segment_bytes: options
                .segment_mib
                .map_or(defaults.segment_bytes, |m| m * MIB),
            write_chunk_bytes,
            writes_in_flight_max: options.write_qd.unwrap_or(defaults.writes_in_flight_max),
            preallocate_bytes: options
                .preallocate_mib
                .map_or(defaults.preallocate_bytes, |m| m * MIB),
            read_io_bytes,
            interval_bytes,
            interval_ms: INTERVAL_MS,
        },
        read_max_bytes,
        io_memory_bytes: options.io_memory_mib << 20,
        io_memory_thp: options.io_memory_thp,
        park_each_append: options.park_each_append,
        cpu: options.cpu,
        settle_ms: options.settle_ms,
    })
}

fn check_fio(fio: &Path) -> Result<(), String> {
    match Command::new(fio).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err(format!(
            "fio not found ({}): install it (apt-get install -y fio) or run hack/bench-storage",
            fio.display()
        )),
    }
}

/// The fio jobs of a case: (label, job) for the matching write, the other write mode (never
/// only, for reference) and the read.
fn case_jobs(settings: &Settings, files: &Files, flush: Flush) -> Vec<(String, FioJob)> {
    let knobs = &settings.knobs;
    let preallocate = knobs.preallocate_bytes > 0;
    let write = FioJob {
        file: files.fio_file.clone(),
        read: false,
        block_bytes: knobs.write_chunk_bytes,
        iodepth: knobs.writes_in_flight_max,
        size_bytes: settings.bytes_per_run,
        preallocate,
        fdatasync_blocks: (flush == Flush::Interval)
            .then_some(knobs.interval_bytes / knobs.write_chunk_bytes as u64),
    };
    let mode = |p: bool| if p { "preallocated" } else { "appending" };
    let mut jobs = Vec::new();
    if flush == Flush::Never {
        let other = FioJob {
            preallocate: !preallocate,
            ..write.clone()
        };
        jobs.push((
            format!(
                "write {}, flush={} (reference)",
                mode(!preallocate),
                flush.name()
            ),
            other,
        ));
    }
    jobs.push((
        format!(
            "write {}, flush={} (ours' pattern)",
            mode(preallocate),
            flush.name()
        ),
        write,
    ));
    jobs.push((
        "read (after the write above)".to_string(),
        FioJob {
            file: files.fio_file.clone(),
            read: true,
            block_bytes: knobs.read_io_bytes,
            iodepth: settings.read_max_bytes / knobs.read_io_bytes,
            size_bytes: settings.bytes_per_run,
            preallocate: false,
            fdatasync_blocks: None,
        },
    ));
    jobs
}

fn run_case(
    options: &Options,
    settings: &Settings,
    executor: &ExecutorConfig,
    files: &Files,
    batches: &Batches,
    flush: Flush,
) -> Result<CaseReport, String> {
    let durability = match flush {
        Flush::Never => Durability::Never,
        Flush::Interval => Durability::Interval,
    };
    let config = settings.knobs.config(durability);
    let label = format!(
        "batch {} KiB, flush={}",
        batches.batch_bytes() >> 10,
        flush.name()
    );
    let jobs = case_jobs(settings, files, flush);
    let mut runs = CaseRuns::default();
    let inflight = if options.sample_queue {
        let path = sampler::inflight_path(&files.dirs.base);
        if path.is_none() {
            eprintln!("--sample-queue: no inflight file in sysfs for this directory's device");
        }
        path
    } else {
        None
    };
    for round in 1..=settings.rounds {
        remove_log(&files.dirs.log)?;
        let fresh = batches.fresh();
        settle(settings.settle_ms);
        let plan = WritePlan {
            durability,
            park_each_append: options.park_each_append,
            inflight: inflight.clone(),
        };
        let w = ours::write(executor, &files.dirs, config.clone(), fresh, plan)?;
        eprintln!(
            "[{label}] round {round}: ours write {:.0} MiB/s ({:.2} s, {} writes of {:.0} KiB, \
             {} syncs {:.2} s, {} rolls {:.2} s, final {:.3} s, cpu thread {:.2} s, process \
             {:.2}+{:.2} s)",
            w.mib_s,
            w.secs,
            w.io_writes,
            w.io_write_bytes as f64 / w.io_writes.max(1) as f64 / 1024.0,
            w.syncs,
            w.sync_secs,
            w.rolls,
            w.roll_secs,
            w.final_secs,
            w.cpu_thread_secs,
            w.cpu_user_secs,
            w.cpu_sys_secs
        );
        if let Some(q) = &w.queue {
            eprintln!(
                "[{label}] round {round}:   ours write {}, {} io_uring workers",
                q.show(),
                w.io_workers
            );
        }
        runs.ours_write.push(w);
        settle(settings.settle_ms);
        let r = ours::read(
            executor,
            &files.dirs,
            config.clone(),
            settings.read_max_bytes,
            (batches.total_bytes(), batches.total_records() as i64),
            inflight.clone(),
        )?;
        eprintln!(
            "[{label}] round {round}: ours read  {:.0} MiB/s ({:.2} s, {} calls, {} reads of \
             {:.0} KiB ({} via the poll ring), cpu thread {:.2} s, process {:.2}+{:.2} s)",
            r.mib_s,
            r.secs,
            r.calls,
            r.io_reads,
            r.io_read_bytes as f64 / r.io_reads.max(1) as f64 / 1024.0,
            r.io_reads_poll_ring,
            r.cpu_thread_secs,
            r.cpu_user_secs,
            r.cpu_sys_secs
        );
        if let Some(q) = &r.queue {
            eprintln!(
                "[{label}] round {round}:   ours read  {}, {} io_uring workers",
                q.show(),
                r.io_workers
            );
        }
        runs.ours_read.push(r);
        remove_log(&files.dirs.log)?;
        if options.skip_fio {
            continue;
        }
        for (job_label, job) in &jobs {
            if !job.read {
                remove_file(&files.fio_file)?;
            }
            settle(settings.settle_ms);
            let run = job.run(&options.fio, inflight.as_deref())?;
            eprintln!(
                "[{label}] round {round}: fio {job_label}: {:.0} MiB/s ({:.2} s, {} syncs, cpu \
                 {:.2}+{:.2} s)",
                run.mib_s, run.secs, run.syncs, run.cpu_user_secs, run.cpu_sys_secs
            );
            if let Some(q) = &run.queue {
                eprintln!("[{label}] round {round}:   fio {}", q.show());
            }
            if job.read {
                runs.fio_read.push(run);
            } else if job_label.ends_with("(reference)") {
                runs.fio_write_other.push(run);
            } else {
                runs.fio_write.push(run);
            }
        }
        remove_file(&files.fio_file)?;
    }
    Ok(CaseReport::new(
        batches.batch_bytes(),
        flush,
        settings,
        runs,
    ))
}

fn remove_log(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn remove_file(file: &Path) -> Result<(), String> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", file.display()))
        }
        _ => Ok(()),
    }
}

/// Lets the previous phase's writeback and discards finish before timing the next one.
fn settle(ms: u64) {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(ms));
}
