//! `quiver log dump DIR [--from OFFSET] [--records]`: the batches of a partition log, one line
//! each, like Kafka's `kafka-dump-log`:
//!
//! ```text
//! segment=00000000000000000000.log base_offset=0
//! offset=0..3 position=0 size=193 records=4 compression=none max_timestamp=1700000000000 crc=ok
//! | offset=0 timestamp=1700000000000 key="0" value="..." headers=0
//! ```
//!
//! The log is walked with `PartitionLog::read`, which returns only batches whose CRC checked;
//! a batch that fails ends the dump with an error. Positions are byte positions in the segment
//! file, counted from the segment's first batch.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use quiver_engine::batch::RecordBatch;
use quiver_engine::log::segment::log_name;
use quiver_engine::log::{DmaStorage, PartitionLog};

use super::{
    inspect_config, open_log, quoted, require_log_dir, write_line, INSPECT_BATCH_BYTES_MAX,
    WALK_READ_BYTES,
};
use crate::cli::{run_on_executor, CliError};

/// `quiver log dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Partition log directory.
    dir: PathBuf,
    /// Start with the batch holding this offset (default: the log start).
    #[arg(long)]
    from: Option<i64>,
    /// Also print every record (offset, timestamp, key, value as lossy UTF-8).
    #[arg(long)]
    records: bool,
    /// Largest batch accepted while recovering; longer ones count as garbage and are cut off.
    #[arg(long, default_value_t = INSPECT_BATCH_BYTES_MAX)]
    batch_bytes_max: usize,
}

/// Runs `quiver log dump`.
pub fn run(args: DumpArgs) -> Result<(), CliError> {
    require_log_dir(&args.dir)?;
    let dir = args.dir.clone();
    run_on_executor(&dir, dump(args))
}

async fn dump(args: DumpArgs) -> Result<(), CliError> {
    let log = open_log(&args.dir, inspect_config(args.batch_bytes_max)).await?;
    let report = log.recovery();
    if report.truncated_bytes > 0 || report.segments_dropped > 0 {
        eprintln!(
            "quiver: note: recovery truncated {} bytes and dropped {} segments",
            report.truncated_bytes, report.segments_dropped
        );
    }
    let start = log.log_start_offset();
    let end = log.next_offset();
    let from = args.from.unwrap_or(start);
    if from < start || from > end {
        return Err(CliError::BadInput(format!(
            "--from {from} is outside the log [{start}, {end}]"
        )));
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let bases = log.segment_bases();
    let first = bases.iter().rposition(|&b| b <= from).unwrap_or(0);
    for (i, &base) in bases.iter().enumerate().skip(first) {
        let segment_end = bases.get(i + 1).copied().unwrap_or(end);
        write_line(
            &mut out,
            &format!("segment={} base_offset={base}", log_name(base)),
        )?;
        let read_from = base.max(start);
        // The first batch sits at position 0 unless the log start cut into this segment; then
        // its position is the file size minus the bytes of the batches from there on.
        let mut position = if read_from == base {
            0
        } else {
            let file = args.dir.join(log_name(base));
            let size = std::fs::metadata(&file)
                .map_err(|e| CliError::io(format!("reading the size of {}", file.display()), e))?
                .len();
            let mut kept = 0u64;
            walk_segment(&log, read_from, segment_end, |bytes| {
                kept += bytes.len() as u64;
                Ok(())
            })
            .await?;
            size.saturating_sub(kept)
        };
        walk_segment(&log, read_from, segment_end, |bytes| {
            let at = position;
            position += bytes.len() as u64;
            print_batch(&mut out, bytes, at, from, args.records)
        })
        .await?;
    }
    out.flush()
        .map_err(|e| CliError::io("writing to stdout", e))?;
    drop(out);
    log.close()
        .await
        .map_err(|e| CliError::log("closing the log", e))
}

/// Calls `visit` with each batch from the one holding `from` up to `segment_end` (exclusive)
/// or a hole, whichever comes first.
async fn walk_segment(
    log: &PartitionLog<DmaStorage>,
    from: i64,
    segment_end: i64,
    mut visit: impl FnMut(&Bytes) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut at = from;
    while at < segment_end {
        let read = log
            .read(at, WALK_READ_BYTES)
            .await
            .map_err(|e| CliError::log(format!("reading at offset {at}"), e))?;
        if read.batches.is_empty() || read.next_offset <= at {
            eprintln!("quiver: note: no batch at offset {at} (below {segment_end}): a hole");
            return Ok(());
        }
        for bytes in &read.batches {
            visit(bytes)?;
        }
        at = read.next_offset;
    }
    Ok(())
}

fn print_batch(
    out: &mut impl Write,
    bytes: &Bytes,
    position: u64,
    from: i64,
    records: bool,
) -> Result<(), CliError> {
    let batch = RecordBatch::parse(bytes).map_err(|e| {
        CliError::BadInput(format!("the batch at position {position} is invalid: {e}"))
    })?;
    if batch.last_offset() < from {
        return Ok(());
    }
    let compression = batch
        .compression()
        .map_or_else(|e| format!("invalid({e})"), |c| c.name().to_string());
    write_line(
        out,
        &format!(
            "offset={}..{} position={position} size={} records={} compression={compression} \
             max_timestamp={} crc=ok",
            batch.base_offset(),
            batch.last_offset(),
            batch.len(),
            batch.records_count(),
            batch.max_timestamp(),
        ),
    )?;
    if !records {
        return Ok(());
    }
    let decoded = batch.records().map_err(|e| {
        CliError::BadInput(format!(
            "the records of the batch at offset {} do not decode: {e}",
            batch.base_offset()
        ))
    })?;
    for r in decoded {
        let key = r.key.as_deref().map_or_else(|| "null".to_string(), quoted);
        let value = r
            .value
            .as_deref()
            .map_or_else(|| "null".to_string(), quoted);
        write_line(
            out,
            &format!(
                "| offset={} timestamp={} key={key} value={value} headers={}",
                r.offset,
                r.timestamp,
                r.headers.len()
            ),
        )?;
    }
    Ok(())
}
