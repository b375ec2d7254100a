//! kill -9 crash test of the partition log, through the real binary.
//!
//! Each round starts `quiver log append-child` on the same log directory, lets it append for a
//! random time (sometimes killing it while it is still starting up), SIGKILLs it, and
//! (usually after one kill, sometimes after several in a row) reopens the log in-process on a
//! glommio executor and checks it against everything the children acknowledged:
//! - every acknowledged batch is there, at its offsets, with the CRC the child reported;
//! - the log is contiguous from offset 0, every batch passes its CRC, and every record holds the
//!   key and value its writer's seed determines;
//! - nothing is served past the last valid batch (a read at the end is empty, one past it is
//!   out of range) and the segment files hold no bytes past the valid data;
//! - nothing seen by an earlier check is lost or changed (a kill loses no written data; only a
//!   power cut could), and the next child continues exactly at the recovered end.
//!
//! The seed (`QUIVER_CRASH_SEED`, printed) fixes every parameter but not the kill timing; the
//! round count is `QUIVER_CRASH_ROUNDS` (default 60). A failure prints the seed and round, and
//! the per-round figures before it are in the captured output.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{on_executor, quiver_bin, record_key, record_value, segment_files};
use quiver_engine::batch::RecordBatch;
use quiver_engine::log::{DmaStorage, LogConfig, LogError, PartitionLog, RecoveryReport};
use quiver_engine::rt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Rounds (checks) per run, unless `QUIVER_CRASH_ROUNDS` says otherwise.
const ROUNDS_DEFAULT: usize = 60;
/// Most kills between two checks.
const KILLS_PER_ROUND_MAX: usize = 4;
/// Largest batch the checker accepts; at least the child's limit, so it never cuts a valid one.
const CHECK_BATCH_BYTES_MAX: usize = 64 << 20;
/// Bytes per read while the checker walks the log.
const CHECK_READ_BYTES: usize = 256 << 10;
/// Longest wait for a child's start line before killing it anyway.
const START_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// How one child runs.
#[derive(Debug, Clone)]
struct ChildPlan {
    seed: u64,
    flush: &'static str,
    records_per_batch: u32,
    value_bytes: usize,
    compression: &'static str,
    segment_bytes: Option<u64>,
    preallocate_bytes: Option<u64>,
    write_chunk_bytes: Option<usize>,
    /// Kill it `run_for` after the spawn, while it is still starting up or recovering.
    at_start_up: bool,
    /// How long it runs: from its start line, or from the spawn when `at_start_up`.
    run_for: Duration,
}

impl ChildPlan {
    fn random(rng: &mut SmallRng) -> Self {
        let flush = match rng.gen_range(0..10) {
            0 => "interval",
            1 => "never",
            _ => "always",
        };
        let (records_per_batch, value_bytes) = if rng.gen_ratio(1, 10) {
            (rng.gen_range(20..=60), rng.gen_range(500..=3000))
        } else {
            (rng.gen_range(1..=8), rng.gen_range(0..=300))
        };
        let compression = if rng.gen_ratio(85, 100) {
            "none"
        } else {
            ["gzip", "snappy", "lz4", "zstd"][rng.gen_range(0..4)]
        };
        let segment_bytes = rng
            .gen_ratio(35, 100)
            .then(|| rng.gen_range(8u64 << 10..=64 << 10));
        let preallocate_bytes = match rng.gen_range(0..3) {
            0 => Some(0),
            1 => Some(rng.gen_range(1u64..=4) * (64 << 10)),
            _ => None,
        };
        let write_chunk_bytes = match rng.gen_range(0..3) {
            0 => Some(4096),
            1 => Some(16384),
            _ => None,
        };
        // Now and then kill it while it is still starting up (or recovering).
        let at_start_up = rng.gen_ratio(1, 8);
        let run_for = if at_start_up {
            Duration::from_millis(rng.gen_range(0..=40))
        } else {
            Duration::from_millis(rng.gen_range(5..=150))
        };
        ChildPlan {
            seed: rng.gen(),
            flush,
            records_per_batch,
            value_bytes,
            compression,
            segment_bytes,
            preallocate_bytes,
            write_chunk_bytes,
            at_start_up,
            run_for,
        }
    }

    fn args(&self, dir: &Path) -> Vec<String> {
        let mut args = vec![
            "log".to_string(),
            "append-child".to_string(),
            dir.display().to_string(),
            format!("--flush={}", self.flush),
            format!("--seed={}", self.seed),
            format!("--records-per-batch={}", self.records_per_batch),
            format!("--value-bytes={}", self.value_bytes),
            format!("--compression={}", self.compression),
        ];
        if let Some(b) = self.segment_bytes {
            args.push(format!("--segment-bytes={b}"));
        }
        if let Some(b) = self.preallocate_bytes {
            args.push(format!("--preallocate-bytes={b}"));
        }
        if let Some(b) = self.write_chunk_bytes {
            args.push(format!("--write-chunk-bytes={b}"));
        }
        args
    }
}

/// The child's `start` line.
#[derive(Debug, Clone, Copy)]
struct Start {
    next_offset: i64,
    clean: bool,
    truncated_bytes: u64,
}

/// One `ack` line.
#[derive(Debug, Clone, Copy)]
struct Ack {
    base: i64,
    last: i64,
    crc: u32,
}

/// What a killed child said and how it ended.
#[derive(Debug)]
struct ChildRun {
    start: Option<Start>,
    acks: Vec<Ack>,
    /// The kill landed while a line was half written (it is ignored).
    torn_line: bool,
    status: ExitStatus,
    stderr: String,
    /// From spawn to reaped.
    lived: Duration,
}

/// Starts a child, kills it with SIGKILL after `plan.run_for` and collects its output. The time
/// counts from the child's `start` line (so it is spent appending), except for the start-up
/// kills, whose time counts from the spawn.
fn run_child(dir: &Path, plan: &ChildPlan) -> Result<ChildRun, String> {
    let spawned = Instant::now();
    let mut child = Command::new(quiver_bin())
        .args(plan.args(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning the child: {e}"))?;
    let (started_tx, started_rx) = mpsc::channel();
    let stdout = child.stdout.take().ok_or("the child has no stdout pipe")?;
    let stdout = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            // The pipe ends when the child dies; an error just ends the output early.
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.starts_with(b"start ") {
                        // The receiver may be gone (start-up kill): nobody waits then.
                        let _ = started_tx.send(());
                    }
                    lines.push(line);
                }
            }
        }
        lines
    });
    let mut stderr = child.stderr.take().ok_or("the child has no stderr pipe")?;
    let stderr = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    if plan.at_start_up {
        thread::sleep(plan.run_for);
    } else {
        // A child that dies or hangs before its start line is caught below by its status or
        // by missing output; the wait is bounded either way.
        if started_rx.recv_timeout(START_UP_TIMEOUT).is_ok() {
            thread::sleep(plan.run_for);
        }
    }
    // Child::kill sends SIGKILL; it succeeds on a child that already exited but is not reaped.
    child
        .kill()
        .map_err(|e| format!("killing the child: {e}"))?;
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the child: {e}"))?;
    let lived = spawned.elapsed();
    let lines = stdout.join().map_err(|_| "the stdout reader panicked")?;
    let err = stderr.join().map_err(|_| "the stderr reader panicked")?;
    let mut run = ChildRun {
        start: None,
        acks: Vec::new(),
        torn_line: false,
        status,
        stderr: String::from_utf8_lossy(&err).into_owned(),
        lived,
    };
    for raw in lines {
        let Some(raw) = raw.strip_suffix(b"\n") else {
            // The kill cut this last line short: it says nothing.
            run.torn_line = true;
            continue;
        };
        let line = String::from_utf8_lossy(raw);
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["start", next, clean, truncated, _segments] => {
                run.start = Some(Start {
                    next_offset: parse_num(next, &line)?,
                    clean: parse_num(field(clean, "clean=", &line)?, &line)?,
                    truncated_bytes: parse_num(
                        field(truncated, "truncated_bytes=", &line)?,
                        &line,
                    )?,
                });
            }
            ["ack", base, last, crc] => run.acks.push(Ack {
                base: parse_num(base, &line)?,
                last: parse_num(last, &line)?,
                crc: parse_num(crc, &line)?,
            }),
            _ => return Err(format!("the child printed an unexpected line: {line:?}")),
        }
    }
    Ok(run)
}

fn field<'a>(word: &'a str, name: &str, line: &str) -> Result<&'a str, String> {
    word.strip_prefix(name)
        .ok_or_else(|| format!("expected {name}... in {line:?}"))
}

fn parse_num<T: std::str::FromStr>(word: &str, line: &str) -> Result<T, String> {
    word.parse()
        .map_err(|_| format!("cannot parse {word:?} in {line:?}"))
}

/// A child that wrote to the log: every offset at or past `start` (up to the next writer's
/// start) holds records with this seed and value size.
#[derive(Debug)]
struct Writer {
    start: i64,
    seed: u64,
    value_bytes: usize,
}

/// A batch seen by a check: base, last offset, CRC, length.
type Seen = (i64, i64, u32, usize);

/// Everything the test knows about the log.
#[derive(Debug, Default)]
struct History {
    writers: Vec<Writer>,
    /// Every acknowledged batch: base offset -> (last offset, CRC).
    acked: BTreeMap<i64, (i64, u32)>,
    /// One past the last acknowledged offset.
    acked_end: i64,
    /// The batches the last check read.
    seen: Vec<Seen>,
    /// The log end at the last check.
    checked_end: i64,
    /// Where the next child must start, when nothing has appended since the last check, and
    /// whether its open must find a clean shutdown, when nothing has opened the log since.
    next_start: Option<(i64, Option<bool>)>,
    kills: usize,
    killed_before_start: usize,
    torn_lines: usize,
    truncated_bytes_seen: u64,
    truncated_bytes_max: u64,
}

impl History {
    fn writer_of(&self, offset: i64) -> Option<&Writer> {
        self.writers.iter().rev().find(|w| w.start <= offset)
    }

    fn note_truncation(&mut self, bytes: u64) {
        self.truncated_bytes_seen += bytes;
        self.truncated_bytes_max = self.truncated_bytes_max.max(bytes);
    }

    /// Checks what a killed child said against the history and records it.
    fn absorb(&mut self, plan: &ChildPlan, run: &ChildRun) -> Result<(), String> {
        if run.status.signal() != Some(libc::SIGKILL) {
            return Err(format!(
                "the child ended by itself ({}) instead of by the kill; stderr:\n{}",
                run.status, run.stderr
            ));
        }
        self.kills += 1;
        self.torn_lines += usize::from(run.torn_line);
        let Some(start) = run.start else {
            if !plan.at_start_up {
                return Err(format!(
                    "the child printed no start line within {START_UP_TIMEOUT:?}; stderr:\n{}",
                    run.stderr
                ));
            }
            if !run.acks.is_empty() {
                return Err("the child acknowledged before its start line".into());
            }
            // Killed before its first append: the log holds nothing of it, but its open may
            // have removed the clean-shutdown marker already.
            self.killed_before_start += 1;
            if let Some((_, clean)) = &mut self.next_start {
                *clean = None;
            }
            return Ok(());
        };
        self.note_truncation(start.truncated_bytes);
        if start.next_offset < self.acked_end {
            return Err(format!(
                "the child's recovery lost acknowledged data: it starts at {} but offsets up \
                 to {} were acknowledged",
                start.next_offset,
                self.acked_end - 1
            ));
        }
        if start.next_offset < self.checked_end {
            return Err(format!(
                "the child's recovery lost checked data: it starts at {}, the last check saw \
                 the log end at {}",
                start.next_offset, self.checked_end
            ));
        }
        if let Some((expected, clean)) = self.next_start {
            if start.next_offset != expected
                || clean.is_some_and(|c| c != start.clean)
                || start.truncated_bytes != 0
            {
                return Err(format!(
                    "the child after a check must start at {expected} (clean={clean:?}, \
                     nothing to truncate) but reported {start:?}"
                ));
            }
        }
        self.next_start = None;
        self.writers.push(Writer {
            start: start.next_offset,
            seed: plan.seed,
            value_bytes: plan.value_bytes,
        });
        let mut expected = start.next_offset;
        for ack in &run.acks {
            if ack.base != expected || ack.last < ack.base {
                return Err(format!(
                    "acknowledgements are not contiguous: {ack:?} where {expected} was next"
                ));
            }
            if self.acked.insert(ack.base, (ack.last, ack.crc)).is_some() {
                return Err(format!("offset {} was acknowledged twice", ack.base));
            }
            expected = ack.last + 1;
        }
        if let Some(last) = run.acks.last() {
            self.acked_end = last.last + 1;
        }
        Ok(())
    }

    /// Checks a reopened log against the history and makes it the new baseline.
    fn check(&mut self, snap: &Snapshot, log_dir: &Path) -> Result<(), String> {
        if snap.log_start != 0 {
            return Err(format!("the log start moved to {}", snap.log_start));
        }
        if snap.end < self.acked_end {
            return Err(format!(
                "acknowledged data lost: the log ends at {} but offsets up to {} were \
                 acknowledged",
                snap.end,
                self.acked_end - 1
            ));
        }
        if snap.end < self.checked_end {
            return Err(format!(
                "checked data lost: the log ends at {}, the previous check saw {}",
                snap.end, self.checked_end
            ));
        }
        let mut seen = Vec::with_capacity(snap.batches.len());
        let mut acked_found = 0usize;
        let mut expected = 0i64;
        for (i, bytes) in snap.batches.iter().enumerate() {
            let batch = RecordBatch::parse(bytes)
                .map_err(|e| format!("batch #{i} (at offset {expected}) is invalid: {e}"))?;
            let (base, last, crc) = (
                batch.base_offset(),
                batch.last_offset(),
                batch.header().crc(),
            );
            if base != expected {
                return Err(format!(
                    "batch #{i} starts at {base}, expected {expected}: offsets not contiguous"
                ));
            }
            if let Some(&(acked_last, acked_crc)) = self.acked.get(&base) {
                if (acked_last, acked_crc) != (last, crc) {
                    return Err(format!(
                        "acknowledged batch at {base} was {base}..{acked_last} crc {acked_crc}, \
                         the log holds {base}..{last} crc {crc}"
                    ));
                }
                acked_found += 1;
            }
            let this = (base, last, crc, bytes.len());
            if let Some(before) = self.seen.get(i) {
                if *before != this {
                    return Err(format!(
                        "batch #{i} changed since the last check: {before:?} -> {this:?}"
                    ));
                }
            } else {
                self.check_records(&batch)?;
            }
            seen.push(this);
            expected = last + 1;
        }
        if expected != snap.end {
            return Err(format!(
                "the batches end at {expected} but the log end is {}",
                snap.end
            ));
        }
        if acked_found != self.acked.len() {
            return Err(format!(
                "only {acked_found} of {} acknowledged batches start a batch in the log",
                self.acked.len()
            ));
        }
        match &snap.read_at_end {
            Ok(0) => {}
            Ok(n) => return Err(format!("a read at the log end returned {n} batches")),
            Err(e) => return Err(format!("a read at the log end failed: {e}")),
        }
        if !snap.read_past_end_out_of_range {
            return Err("a read past the log end was not out of range".into());
        }
        let names = segment_files(log_dir);
        let on_disk: u64 = names
            .iter()
            .map(|n| std::fs::metadata(log_dir.join(n)).map_or(0, |m| m.len()))
            .sum();
        if on_disk != snap.size_bytes || names.len() != snap.segments {
            return Err(format!(
                "the segment files hold {on_disk} bytes in {} files, the log says {} bytes in \
                 {} segments: bytes past the valid data were left",
                names.len(),
                snap.size_bytes,
                snap.segments
            ));
        }
        self.note_truncation(snap.report.truncated_bytes);
        self.seen = seen;
        self.checked_end = snap.end;
        self.next_start = Some((snap.end, Some(snap.closed_clean)));
        Ok(())
    }

    /// Every record of a batch not checked before holds its writer's key and value.
    fn check_records(&self, batch: &RecordBatch<'_>) -> Result<(), String> {
        let (base, last) = (batch.base_offset(), batch.last_offset());
        let writer = self
            .writer_of(base)
            .ok_or_else(|| format!("batch {base}..{last} precedes every writer"))?;
        let records = batch
            .records()
            .map_err(|e| format!("the records of batch {base}..{last} do not decode: {e}"))?;
        if records.len() as i64 != last - base + 1 {
            return Err(format!(
                "batch {base}..{last} holds {} records",
                records.len()
            ));
        }
        for (i, r) in records.iter().enumerate() {
            let offset = base + i as i64;
            if r.offset != offset
                || r.key.as_deref() != Some(&record_key(offset)[..])
                || r.value.as_deref()
                    != Some(&record_value(writer.seed, offset, writer.value_bytes)[..])
            {
                return Err(format!(
                    "record {offset} is not what writer {writer:?} wrote: {r:?}"
                ));
            }
        }
        Ok(())
    }
}

/// What the checker read from the reopened log.
struct Snapshot {
    report: RecoveryReport,
    log_start: i64,
    end: i64,
    segments: usize,
    size_bytes: u64,
    batches: Vec<Bytes>,
    /// How many batches a read at the end returned.
    read_at_end: Result<usize, String>,
    read_past_end_out_of_range: bool,
    closed_clean: bool,
}

/// Opens the log on a fresh executor, reads all of it, then closes it cleanly or just drops it.
fn snapshot(probe_dir: &Path, log_dir: &Path, close_clean: bool) -> Result<Snapshot, String> {
    let log_dir = log_dir.to_path_buf();
    on_executor(probe_dir, move || async move {
        let storage = DmaStorage::open(&log_dir).map_err(|e| format!("storage: {e}"))?;
        let config = LogConfig {
            batch_bytes_max: CHECK_BATCH_BYTES_MAX,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(storage, config, rt::now_ms())
            .await
            .map_err(|e| format!("reopening the log failed: {e}"))?;
        let end = log.next_offset();
        let mut batches = Vec::new();
        let mut at = log.log_start_offset();
        while at < end {
            let read = log
                .read(at, CHECK_READ_BYTES)
                .await
                .map_err(|e| format!("read at {at} (log end {end}) failed: {e}"))?;
            if read.batches.is_empty() || read.next_offset <= at {
                return Err(format!(
                    "a read at {at} below the log end {end} returned nothing"
                ));
            }
            batches.extend(read.batches);
            at = read.next_offset;
        }
        let read_at_end = log
            .read(end, CHECK_READ_BYTES)
            .await
            .map(|r| r.batches.len())
            .map_err(|e| e.to_string());
        let read_past_end_out_of_range = matches!(
            log.read(end + 1, CHECK_READ_BYTES).await,
            Err(LogError::OffsetOutOfRange { .. })
        );
        let snap = Snapshot {
            report: log.recovery(),
            log_start: log.log_start_offset(),
            end,
            segments: log.segment_count(),
            size_bytes: log.size_bytes(),
            batches,
            read_at_end,
            read_past_end_out_of_range,
            closed_clean: close_clean,
        };
        if close_clean {
            log.close()
                .await
                .map_err(|e| format!("close failed: {e}"))?;
        }
        Ok(snap)
    })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn sigkill_never_loses_acknowledged_batches() {
    let seed: u64 = env_or(
        "QUIVER_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    let rounds: usize = env_or("QUIVER_CRASH_ROUNDS", ROUNDS_DEFAULT);
    println!("crash test: seed {seed} (QUIVER_CRASH_SEED), {rounds} rounds");
    let mut rng = SmallRng::seed_from_u64(seed);
    let root = tempfile::tempdir().expect("a temporary directory");
    let log_dir: PathBuf = root.path().join("topic-0");
    let began = Instant::now();
    let mut history = History::default();
    let fail = |round: usize, what: String| -> ! {
        panic!(
            "crash test failed at seed {seed} round {round}: {what}\n(rerun the same \
             parameters with QUIVER_CRASH_SEED={seed}; the kill timing differs)"
        )
    };
    for round in 0..rounds {
        let kills = if rng.gen_ratio(1, 5) {
            rng.gen_range(2..=KILLS_PER_ROUND_MAX)
        } else {
            1
        };
        let acked_before = history.acked.len();
        let mut plans = Vec::new();
        for _ in 0..kills {
            let plan = ChildPlan::random(&mut rng);
            let run = run_child(&log_dir, &plan).unwrap_or_else(|e| fail(round, e));
            if let Err(e) = history.absorb(&plan, &run) {
                fail(round, format!("{e}\nplan: {plan:?}"));
            }
            plans.push(format!(
                "{}{}:{}ms/{}ms:{}acks{}",
                plan.flush,
                if plan.at_start_up { "@start-up" } else { "" },
                plan.run_for.as_millis(),
                run.lived.as_millis(),
                run.acks.len(),
                run.start
                    .map_or(" (no start line)".to_string(), |s| format!(
                        " from {} (truncated {})",
                        s.next_offset, s.truncated_bytes
                    ))
            ));
        }
        let close_clean = rng.gen_bool(0.5);
        let checked = Instant::now();
        let snap = snapshot(root.path(), &log_dir, close_clean).unwrap_or_else(|e| fail(round, e));
        if let Err(e) = history.check(&snap, &log_dir) {
            fail(round, e);
        }
        println!(
            "round {round:>3}: children [{}] acked {:>4} batches; recovered end {:>7} \
             (clean={} truncated {:>8} B, dropped {}), {} batches in {} segments, {} B, \
             check {} ms{}; {} unacknowledged offsets survived",
            plans.join(", "),
            history.acked.len() - acked_before,
            snap.end,
            snap.report.clean,
            snap.report.truncated_bytes,
            snap.report.segments_dropped,
            snap.batches.len(),
            snap.segments,
            snap.size_bytes,
            checked.elapsed().as_millis(),
            if close_clean { ", closed cleanly" } else { "" },
            snap.end - history.acked_end,
        );
    }
    println!(
        "crash test done in {:.1} s: {rounds} rounds, {} kills ({} before their start line, {} torn \
         lines), {} batches acknowledged, log end {}, truncated {} B in all (largest {} B)",
        began.elapsed().as_secs_f64(),
        history.kills,
        history.killed_before_start,
        history.torn_lines,
        history.acked.len(),
        history.checked_end,
        history.truncated_bytes_seen,
        history.truncated_bytes_max
    );
    assert!(
        history.acked.len() >= rounds,
        "seed {seed}: only {} batches were acknowledged in {rounds} rounds: the test exercised \
         almost nothing",
        history.acked.len()
    );
}
