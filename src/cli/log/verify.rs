//! `quiver log verify DIR`: recovers a partition log, then reads every batch back and checks it.
//!
//! Output (stdout), then exit status 0; or the lines it got to, a message on stderr and 1:
//! ```text
//! recovery: clean=false truncated_bytes=4096 segments_dropped=0
//! log: start_offset=0 end_offset=120 segments=3 size_bytes=45678
//! checked: batches=30 records=120 bytes=45678
//! ok
//! ```
//! Checks, in order: every read succeeds (the engine CRC-checks batches read from disk); each
//! batch parses on its own (length, magic, CRC-32C, attributes) and its records decode; the
//! first batch holds the log start, each next batch starts right after the previous one, and
//! the last one ends at the log end; a read at the log end returns nothing.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use quiver_engine::batch::RecordBatch;
use quiver_engine::log::{DmaStorage, PartitionLog};

use super::{
    inspect_config, open_log, require_log_dir, write_line, INSPECT_BATCH_BYTES_MAX, WALK_READ_BYTES,
};
use crate::cli::{run_on_executor, CliError};

/// `quiver log verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Partition log directory.
    dir: PathBuf,
    /// Largest batch accepted while recovering; longer ones count as garbage and are cut off.
    #[arg(long, default_value_t = INSPECT_BATCH_BYTES_MAX)]
    batch_bytes_max: usize,
}

/// What the walk over the log counted.
#[derive(Debug, Default)]
struct Tally {
    batches: u64,
    records: u64,
    bytes: u64,
}

/// Runs `quiver log verify`.
pub fn run(args: VerifyArgs) -> Result<(), CliError> {
    require_log_dir(&args.dir)?;
    let dir = args.dir.clone();
    run_on_executor(&dir, verify(args))
}

async fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let log = open_log(&args.dir, inspect_config(args.batch_bytes_max)).await?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let report = log.recovery();
    write_line(
        &mut out,
        &format!(
            "recovery: clean={} truncated_bytes={} segments_dropped={}",
            report.clean, report.truncated_bytes, report.segments_dropped
        ),
    )?;
    write_line(
        &mut out,
        &format!(
            "log: start_offset={} end_offset={} segments={} size_bytes={}",
            log.log_start_offset(),
            log.next_offset(),
            log.segment_count(),
            log.size_bytes()
        ),
    )?;
    out.flush()
        .map_err(|e| CliError::io("writing to stdout", e))?;
    // On failure the log is dropped without a clean close: the next open scans it again
    // instead of trusting indexes written over a bad region.
    let tally = walk(&log).await.map_err(CliError::VerifyFailed)?;
    write_line(
        &mut out,
        &format!(
            "checked: batches={} records={} bytes={}",
            tally.batches, tally.records, tally.bytes
        ),
    )?;
    write_line(&mut out, "ok")?;
    out.flush()
        .map_err(|e| CliError::io("writing to stdout", e))?;
    log.close()
        .await
        .map_err(|e| CliError::log("closing the log", e))
}

/// Reads the whole log; the error says what is wrong and where.
async fn walk(log: &PartitionLog<DmaStorage>) -> Result<Tally, String> {
    let start = log.log_start_offset();
    let end = log.next_offset();
    let mut tally = Tally::default();
    let mut at = start;
    let mut expected_base: Option<i64> = None;
    while at < end {
        let read = log
            .read(at, WALK_READ_BYTES)
            .await
            .map_err(|e| format!("reading at offset {at}: {e}"))?;
        if read.batches.is_empty() {
            return Err(format!(
                "no batch at offset {at}, below the log end {end}: the log has a hole"
            ));
        }
        for bytes in &read.batches {
            let batch = RecordBatch::parse(bytes)
                .map_err(|e| format!("the batch read at offset {at} is invalid: {e}"))?;
            let (base, last) = (batch.base_offset(), batch.last_offset());
            match expected_base {
                None if base > start || last < start => {
                    return Err(format!(
                        "the first batch covers {base}..{last}, not the log start {start}"
                    ))
                }
                Some(expected) if base != expected => {
                    return Err(format!(
                        "offsets are not contiguous: a batch at {base}..{last} follows one \
                         ending at {}",
                        expected - 1
                    ))
                }
                _ => {}
            }
            let records = batch
                .records()
                .map_err(|e| format!("the records of the batch at {base}..{last}: {e}"))?;
            tally.batches += 1;
            tally.records += records.len() as u64;
            tally.bytes += bytes.len() as u64;
            expected_base = Some(last + 1);
        }
        if expected_base != Some(read.next_offset) || read.next_offset <= at {
            return Err(format!(
                "a read at {at} claims to end at {} but its batches end at {:?}",
                read.next_offset,
                expected_base.map(|n| n - 1)
            ));
        }
        at = read.next_offset;
    }
    if at != end {
        return Err(format!(
            "the last batch ends at {}, past the log end {end}",
            at - 1
        ));
    }
    let past = log
        .read(end, WALK_READ_BYTES)
        .await
        .map_err(|e| format!("reading at the log end {end}: {e}"))?;
    if !past.batches.is_empty() {
        return Err(format!(
            "a read at the log end {end} returned {} batches",
            past.batches.len()
        ));
    }
    Ok(tally)
}
