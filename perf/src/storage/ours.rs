//! Our side of the benchmark: the partition log on `DmaStorage`, one glommio executor per phase.
//!
//! Each phase (write, cold read) runs on a fresh executor thread built by
//! [`ExecutorConfig::spawn`], which calls [`prepare_executor`] before opening any DMA file (the
//! glommio 0.9.0 poll-ring probe work-around). The write phase opens a new log, appends the
//! pre-built batches and, with `flush=interval`, applies the policy after every append; the
//! timed span is the appends plus the final `flush` (never) or `sync` (interval), which is all
//! the log work. The log is then closed cleanly (untimed). The read phase reopens it, so its
//! in-memory cache is empty and every byte comes from the device (O_DIRECT skips the page
//! cache), and times reads of `read_max_bytes` from offset 0 to the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quiver_engine::log::{DmaStorage, FlushPolicy, LogConfig, PartitionLog};
use quiver_engine::rt::{now_ms, prepare_executor, ExecutorConfig};
use serde::Serialize;

use super::sampler::{QueueSample, QueueSampler};
use super::stats::{io_uring_workers, process_cpu_secs, thread_cpu_secs};

/// What one write phase did.
#[derive(Debug, Clone, Serialize)]
pub struct WriteRun {
    /// Batch bytes appended.
    pub bytes: u64,
    /// Timed span: appends plus the final flush or sync.
    pub secs: f64,
    /// Throughput over the timed span, MiB/s.
    pub mib_s: f64,
    /// Time in the final `flush` (never) or `sync` (interval).
    pub final_secs: f64,
    /// Syncs made by the flush policy, the final one included (interval only).
    pub syncs: u64,
    /// Time in those syncs.
    pub sync_secs: f64,
    /// Segment rolls (each seals, so syncs, the old segment).
    pub rolls: u64,
    /// Time in the appends that rolled.
    pub roll_secs: f64,
    /// Slowest single append.
    pub append_secs_max: f64,
    /// Writes the executor submitted to the device, and their bytes.
    pub io_writes: u64,
    /// Bytes of those writes.
    pub io_write_bytes: u64,
    /// Untimed clean close (seal, index, marker).
    pub close_secs: f64,
    /// CPU time of the executor thread over the timed span.
    pub cpu_thread_secs: f64,
    /// CPU time of the whole process over the timed span (io_uring workers included): user.
    pub cpu_user_secs: f64,
    /// ... and system.
    pub cpu_sys_secs: f64,
    /// The device queue over the timed span (`--sample-queue`).
    pub queue: Option<QueueSample>,
    /// io_uring worker threads alive at the end of the timed span.
    pub io_workers: u64,
}

/// What one cold read phase did.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRun {
    /// Batch bytes returned.
    pub bytes: u64,
    /// Timed span: the reads from offset 0 to the end.
    pub secs: f64,
    /// Throughput over the timed span, MiB/s.
    pub mib_s: f64,
    /// `PartitionLog::read` calls.
    pub calls: u64,
    /// Batches returned.
    pub batches: u64,
    /// Reads the executor submitted to the device.
    pub io_reads: u64,
    /// Bytes of those reads.
    pub io_read_bytes: u64,
    /// How many of those reads went through glommio's poll ring (IOPOLL) rather than the main
    /// ring: glommio decides per executor thread, by probing the device.
    pub io_reads_poll_ring: u64,
    /// Untimed reopen of the closed log.
    pub open_secs: f64,
    /// CPU time of the executor thread over the timed span.
    pub cpu_thread_secs: f64,
    /// CPU time of the whole process over the timed span (io_uring workers included): user.
    pub cpu_user_secs: f64,
    /// ... and system.
    pub cpu_sys_secs: f64,
    /// The device queue over the timed span (`--sample-queue`).
    pub queue: Option<QueueSample>,
    /// io_uring worker threads alive at the end of the timed span.
    pub io_workers: u64,
}

/// Where a phase works: the probe lives in `base` (same device), the log in `log`.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The benchmark directory (holds `prepare_executor`'s probe file).
    pub base: PathBuf,
    /// The partition log's directory.
    pub log: PathBuf,
}

/// How long `park_each_append` parks: any sleep parks the executor.
const PARK: Duration = Duration::from_micros(1);

/// How to drive the write phase.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// The flush policy applied.
    pub durability: Durability,
    /// Park the task briefly after every append (diagnosis).
    pub park_each_append: bool,
    /// Sample this device queue file over the timed span (diagnosis).
    pub inflight: Option<PathBuf>,
}

/// Whether the write phase syncs by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `flush=never`: one `flush` at the end (written, not synced).
    Never,
    /// `flush=interval`: `flush_if_due` after every append, one `sync` at the end.
    Interval,
}

/// Runs the write phase on a new executor: appends `batches` to a new log in `dirs.log`.
pub fn write(
    executor: &ExecutorConfig,
    dirs: &Dirs,
    config: LogConfig,
    batches: Vec<BytesMut>,
    plan: WritePlan,
) -> Result<WriteRun, String> {
    let dirs = dirs.clone();
    executor
        .spawn(move || async move {
            write_phase(dirs, config, batches, plan)
                .await
                .map_err(|e| format!("write phase: {e}"))
        })
        .map_err(|e| format!("write executor: {e}"))?
}

/// Runs the cold read phase on a new executor: reopens the log in `dirs.log` and reads it all,
/// `read_max_bytes` per call; checks it returns `expected_bytes` up to `expected_next_offset`.
pub fn read(
    executor: &ExecutorConfig,
    dirs: &Dirs,
    config: LogConfig,
    read_max_bytes: usize,
    expected: (u64, i64),
    inflight: Option<PathBuf>,
) -> Result<ReadRun, String> {
    let (expected_bytes, expected_next_offset) = expected;
    let dirs = dirs.clone();
    let run = executor
        .spawn(move || async move {
            read_phase(dirs, config, read_max_bytes, inflight)
                .await
                .map_err(|e| format!("read phase: {e}"))
        })
        .map_err(|e| format!("read executor: {e}"))??;
    if run.0.bytes != expected_bytes || run.1 != expected_next_offset {
        return Err(format!(
            "cold read returned {} bytes up to offset {}, expected {} bytes up to {}",
            run.0.bytes, run.1, expected_bytes, expected_next_offset
        ));
    }
    Ok(run.0)
}

type PhaseResult<T> = Result<T, Box<dyn std::error::Error>>;

async fn write_phase(
    dirs: Dirs,
    config: LogConfig,
    batches: Vec<BytesMut>,
    plan: WritePlan,
) -> PhaseResult<WriteRun> {
    let durability = plan.durability;
    prepare_executor(&dirs.base).await?;
    let storage = DmaStorage::open(&dirs.log)?;
    let mut log = PartitionLog::open(storage, config, now_ms()).await?;
    let bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let io_before = glommio::executor().io_stats().all_rings().file_writes();
    let mut syncs = 0u64;
    let mut sync_time = Duration::ZERO;
    let mut rolls = 0u64;
    let mut roll_time = Duration::ZERO;
    let mut append_time_max = Duration::ZERO;
    let sampler = plan.inflight.as_deref().map(QueueSampler::start);
    let cpu = CpuMark::now();
    let start = Instant::now();
    for batch in batches {
        let now = now_ms();
        let segments = log.segment_count();
        let t = Instant::now();
        log.append(batch, now).await?;
        let took = t.elapsed();
        append_time_max = append_time_max.max(took);
        if log.segment_count() != segments {
            rolls += 1;
            roll_time += took;
        }
        if durability == Durability::Interval {
            let t = Instant::now();
            if log.flush_if_due(now).await? {
                syncs += 1;
                sync_time += t.elapsed();
            }
        }
        if plan.park_each_append {
            // Parks the task: the executor goes idle, so its reactor submits the write the
            // appender queued. A yield would not do: glommio flushes its submission queue
            // only when it runs out of runnable tasks (or at preemption).
            glommio::timer::sleep(PARK).await;
        }
    }
    let t = Instant::now();
    match durability {
        Durability::Never => log.flush().await?,
        Durability::Interval => {
            if log.durable_offset() != log.next_offset() {
                log.sync(now_ms()).await?;
                syncs += 1;
                sync_time += t.elapsed();
            }
        }
    }
    let final_time = t.elapsed();
    let elapsed = start.elapsed();
    let cpu = cpu.since();
    let io_workers = io_uring_workers();
    let queue = sampler.map(QueueSampler::stop);
    let io_after = glommio::executor().io_stats().all_rings().file_writes();
    let t = Instant::now();
    log.close().await?;
    let close_time = t.elapsed();
    Ok(WriteRun {
        bytes,
        secs: elapsed.as_secs_f64(),
        mib_s: mib_per_s(bytes, elapsed),
        final_secs: final_time.as_secs_f64(),
        syncs,
        sync_secs: sync_time.as_secs_f64(),
        rolls,
        roll_secs: roll_time.as_secs_f64(),
        append_secs_max: append_time_max.as_secs_f64(),
        io_writes: io_after.0 - io_before.0,
        io_write_bytes: io_after.1 - io_before.1,
        close_secs: close_time.as_secs_f64(),
        cpu_thread_secs: cpu.0,
        cpu_user_secs: cpu.1,
        cpu_sys_secs: cpu.2,
        queue,
        io_workers,
    })
}

async fn read_phase(
    dirs: Dirs,
    config: LogConfig,
    read_max_bytes: usize,
    inflight: Option<PathBuf>,
) -> PhaseResult<(ReadRun, i64)> {
    prepare_executor(&dirs.base).await?;
    let t = Instant::now();
    let storage = DmaStorage::open(&dirs.log)?;
    let log = PartitionLog::open(storage, config, now_ms()).await?;
    let open_time = t.elapsed();
    if !log.recovery().clean {
        return Err("the log was not closed cleanly".into());
    }
    let end = log.next_offset();
    let stats = glommio::executor().io_stats();
    let io_before = stats.all_rings().file_reads();
    let poll_before = stats.poll_ring.file_reads();
    let mut next = log.log_start_offset();
    let mut bytes = 0u64;
    let mut calls = 0u64;
    let mut batches = 0u64;
    let sampler = inflight.as_deref().map(QueueSampler::start);
    let cpu = CpuMark::now();
    let start = Instant::now();
    while next < end {
        let read = log.read(next, read_max_bytes).await?;
        if read.batches.is_empty() {
            return Err(format!("read at offset {next} of {end} returned nothing").into());
        }
        bytes += read.bytes() as u64;
        batches += read.batches.len() as u64;
        calls += 1;
        next = read.next_offset;
    }
    let elapsed = start.elapsed();
    let cpu = cpu.since();
    let io_workers = io_uring_workers();
    let queue = sampler.map(QueueSampler::stop);
    let stats = glommio::executor().io_stats();
    let io_after = stats.all_rings().file_reads();
    let poll_after = stats.poll_ring.file_reads();
    log.close().await?;
    Ok((
        ReadRun {
            bytes,
            secs: elapsed.as_secs_f64(),
            mib_s: mib_per_s(bytes, elapsed),
            calls,
            batches,
            io_reads: io_after.0 - io_before.0,
            io_read_bytes: io_after.1 - io_before.1,
            io_reads_poll_ring: poll_after.0 - poll_before.0,
            open_secs: open_time.as_secs_f64(),
            cpu_thread_secs: cpu.0,
            cpu_user_secs: cpu.1,
            cpu_sys_secs: cpu.2,
            queue,
            io_workers,
        },
        next,
    ))
}

/// The log configuration of a run: the engine defaults with the benchmark's knobs applied.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LogKnobs {
    /// `segment_bytes`.
    pub segment_bytes: u64,
    /// `write_chunk_bytes`.
    pub write_chunk_bytes: usize,
    /// `writes_in_flight_max`.
    pub writes_in_flight_max: usize,
    /// `preallocate_bytes`.
    pub preallocate_bytes: u64,
    /// `read_io_bytes`.
    pub read_io_bytes: usize,
    /// Sync every this many bytes with `flush=interval`.
    pub interval_bytes: u64,
    /// ... or after this many milliseconds.
    pub interval_ms: u64,
}

impl LogKnobs {
    /// The `LogConfig` for `durability`. Retention is off so nothing is deleted under the run.
    pub fn config(&self, durability: Durability) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            flush: match durability {
                Durability::Never => FlushPolicy::Never,
                Durability::Interval => FlushPolicy::Interval {
                    ms: self.interval_ms,
                    bytes: self.interval_bytes,
                },
            },
            retention_ms: None,
            retention_bytes: None,
            write_chunk_bytes: self.write_chunk_bytes,
            writes_in_flight_max: self.writes_in_flight_max,
            preallocate_bytes: self.preallocate_bytes,
            read_io_bytes: self.read_io_bytes,
            ..LogConfig::default()
        }
    }
}

/// CPU counters at the start of a timed span.
struct CpuMark {
    thread_secs: f64,
    process: (f64, f64),
}

impl CpuMark {
    fn now() -> Self {
        CpuMark {
            thread_secs: thread_cpu_secs(),
            process: process_cpu_secs(),
        }
    }

    /// (executor thread, process user, process system) seconds since the mark.
    fn since(&self) -> (f64, f64, f64) {
        let process = process_cpu_secs();
        (
            thread_cpu_secs() - self.thread_secs,
            process.0 - self.process.0,
            process.1 - self.process.1,
        )
    }
}

/// `bytes` over `elapsed` in MiB/s.
pub fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1u64 << 20) as f64 / elapsed.as_secs_f64().max(1e-9)
}
