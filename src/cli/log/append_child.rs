//! `quiver log append-child` (hidden): a writer whose output a checker can predict, for the
//! crash tests that SIGKILL it at random moments.
//!
//! It opens (or creates) the log in DIR and appends batches of `--records-per-batch` records
//! until killed (or `--max-batches`). The record at offset `o` has key `o` in decimal and the
//! value [`record_value`]`(seed, o, value_bytes)`, so a checker that knows the seed recomputes
//! every record of a batch from its base offset. Its stdout protocol, one line per write,
//! flushed at once:
//! - `start <next_offset> clean=<bool> truncated_bytes=<n> segments=<n>` after the open, before
//!   the first append: everything at or past `next_offset` will come from this process;
//! - `ack <base_offset> <last_offset> <crc>` for each batch once it is durable (after the sync
//!   the flush policy calls for), in offset order; `crc` is the batch's stored CRC-32C field;
//! - `done <next_offset>` after `--max-batches` batches, when everything is durable.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::{FlushPolicy, LogConfig};
use quiver_engine::rt;

use super::{emit, open_log};
use crate::cli::{run_on_executor, CliError};

/// Most records per batch the child writes (a batch must stay well below the batch size limit).
const RECORDS_PER_BATCH_MAX: u32 = 10_000;
/// Largest record value the child writes.
const VALUE_BYTES_MAX: usize = 1 << 20;
/// Generous bound on a record's bytes besides its value (varints, key, attributes).
const RECORD_OVERHEAD_BYTES_MAX: u64 = 64;
/// Largest batch the child's log accepts.
const CHILD_BATCH_BYTES_MAX: usize = 32 << 20;
/// SplitMix64's increment (the golden ratio in 64 bits), also used to mix the offset in.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// When the child makes its appends durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlushArg {
    /// `fdatasync` after every append, then acknowledge it.
    Always,
    /// Group commit every `--flush-interval-ms`; acknowledge what each sync covered.
    Interval,
    /// Only segment rolls (and the final close) sync; acknowledge what they covered.
    Never,
}

/// Codec of the child's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing).
    Snappy,
    /// LZ4 frames.
    Lz4,
    /// zstd.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// `quiver log append-child DIR --flush MODE --seed N [...]`.
#[derive(Debug, Args)]
pub struct AppendChildArgs {
    /// Partition log directory (created if missing).
    dir: PathBuf,
    /// Durability policy: acknowledgements are printed only for durable batches.
    #[arg(long, value_enum)]
    flush: FlushArg,
    /// Seed of the record values.
    #[arg(long)]
    seed: u64,
    /// Stop after this many batches (default: run until killed).
    #[arg(long)]
    max_batches: Option<u64>,
    /// Records per batch.
    #[arg(long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(RECORDS_PER_BATCH_MAX)))]
    records_per_batch: u32,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Codec of the batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// With --max-batches: sync and exit without a clean close (no clean-shutdown marker).
    #[arg(long)]
    no_close: bool,
    /// Segment size (`segment.bytes`); small values make the log roll often.
    #[arg(long, hide = true)]
    segment_bytes: Option<u64>,
    /// Preallocation step of the active segment (0 = none).
    #[arg(long, hide = true)]
    preallocate_bytes: Option<u64>,
    /// Size of one appender write (a multiple of 4096).
    #[arg(long, hide = true)]
    write_chunk_bytes: Option<usize>,
    /// Group commit interval of `--flush interval`.
    #[arg(long, hide = true, default_value_t = 10)]
    flush_interval_ms: u64,
}

/// Key of the record at `offset`: the offset in decimal.
pub fn record_key(offset: i64) -> Vec<u8> {
    offset.to_string().into_bytes()
}

/// Value of the record at `offset` written with `--seed seed --value-bytes len`: the text
/// `<seed>/<offset>/` followed by lowercase letters, one per step of a SplitMix64 generator
/// seeded with `seed ^ (offset * 0x9E3779B97F4A7C15)` (wrapping), cut to `len` bytes.
pub fn record_value(seed: u64, offset: i64, len: usize) -> Vec<u8> {
    let mut out = format!("{seed}/{offset}/").into_bytes();
    let mut state = seed ^ (offset as u64).wrapping_mul(GOLDEN_GAMMA);
    while out.len() < len {
        out.push(b'a' + (splitmix64(&mut state) % 26) as u8);
    }
    out.truncate(len);
    out
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs the child until killed or `--max-batches`.
pub fn run(args: AppendChildArgs) -> Result<(), CliError> {
    if args.value_bytes > VALUE_BYTES_MAX {
        return Err(CliError::BadInput(format!(
            "--value-bytes {} exceeds the limit of {VALUE_BYTES_MAX}",
            args.value_bytes
        )));
    }
    let batch_bytes =
        u64::from(args.records_per_batch) * (args.value_bytes as u64 + RECORD_OVERHEAD_BYTES_MAX);
    if batch_bytes > CHILD_BATCH_BYTES_MAX as u64 / 2 {
        return Err(CliError::BadInput(format!(
            "batches of {} records of {} bytes are too large (limit about {} bytes)",
            args.records_per_batch,
            args.value_bytes,
            CHILD_BATCH_BYTES_MAX / 2
        )));
    }
    let mut config = LogConfig {
        batch_bytes_max: CHILD_BATCH_BYTES_MAX,
        flush: match args.flush {
            FlushArg::Always => FlushPolicy::Always,
            FlushArg::Interval => FlushPolicy::Interval {
                ms: args.flush_interval_ms,
                bytes: u64::MAX,
            },
            FlushArg::Never => FlushPolicy::Never,
        },
        ..LogConfig::default()
    };
    if let Some(bytes) = args.segment_bytes {
        config.segment_bytes = bytes;
    }
    if let Some(bytes) = args.preallocate_bytes {
        config.preallocate_bytes = bytes;
    }
    if let Some(bytes) = args.write_chunk_bytes {
        config.write_chunk_bytes = bytes;
    }
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CliError::io(format!("creating {}", args.dir.display()), e))?;
    let dir = args.dir.clone();
    run_on_executor(&dir, append_loop(args, config))
}

/// A batch appended but not yet acknowledged.
struct Pending {
    base_offset: i64,
    last_offset: i64,
    crc: u32,
}

async fn append_loop(args: AppendChildArgs, config: LogConfig) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let mut log = open_log(&args.dir, config).await?;
    let report = log.recovery();
    emit(
        &mut out,
        &format!(
            "start {} clean={} truncated_bytes={} segments={}",
            log.next_offset(),
            report.clean,
            report.truncated_bytes,
            log.segment_count()
        ),
    )?;
    let mut pending = VecDeque::new();
    let mut appended = 0u64;
    while args.max_batches.is_none_or(|max| appended < max) {
        let now_ms = rt::now_ms();
        let base_offset = log.next_offset();
        let batch = build_batch(&args, base_offset, now_ms)?;
        let crc = RecordBatch::parse(&batch)
            .expect("BatchBuilder always builds a batch that parses")
            .header()
            .crc();
        let info = log
            .append(batch, now_ms)
            .await
            .map_err(|e| CliError::log(format!("appending at offset {base_offset}"), e))?;
        if info.base_offset != base_offset {
            return Err(CliError::BadInput(format!(
                "the log put the batch at offset {} instead of its end {base_offset}",
                info.base_offset
            )));
        }
        pending.push_back(Pending {
            base_offset,
            last_offset: info.last_offset,
            crc,
        });
        appended += 1;
        log.flush_if_due(rt::now_ms())
            .await
            .map_err(|e| CliError::log("syncing", e))?;
        if args.flush == FlushArg::Always && log.durable_offset() <= info.last_offset {
            // flush_if_due must have synced under `always`; never acknowledge on faith.
            log.sync(rt::now_ms())
                .await
                .map_err(|e| CliError::log("syncing", e))?;
        }
        acknowledge(&mut out, &mut pending, log.durable_offset())?;
    }
    let end = log.next_offset();
    if args.no_close {
        log.sync(rt::now_ms())
            .await
            .map_err(|e| CliError::log("syncing", e))?;
        acknowledge(&mut out, &mut pending, log.durable_offset())?;
        // Dropped without close: no clean-shutdown marker, preallocated space left in place.
        drop(log);
    } else {
        log.close()
            .await
            .map_err(|e| CliError::log("closing the log", e))?;
        acknowledge(&mut out, &mut pending, end)?;
    }
    emit(&mut out, &format!("done {end}"))
}

/// Prints an `ack` line for every pending batch below `durable_offset`.
fn acknowledge(
    out: &mut impl Write,
    pending: &mut VecDeque<Pending>,
    durable_offset: i64,
) -> Result<(), CliError> {
    while let Some(p) = pending.front() {
        if p.last_offset >= durable_offset {
            break;
        }
        emit(
            out,
            &format!("ack {} {} {}", p.base_offset, p.last_offset, p.crc),
        )?;
        pending.pop_front();
    }
    Ok(())
}

/// The batch whose records go at `base_offset..`, all stamped `now_ms`.
fn build_batch(
    args: &AppendChildArgs,
    base_offset: i64,
    now_ms: i64,
) -> Result<BytesMut, CliError> {
    let mut builder = BatchBuilder::new(args.compression.into());
    for i in 0..i64::from(args.records_per_batch) {
        let offset = base_offset + i;
        let key = record_key(offset);
        let value = record_value(args.seed, offset, args.value_bytes);
        builder.push(now_ms, Some(&key), Some(&value), &[]);
    }
    builder
        .build()
        .map_err(|e| CliError::BadInput(format!("building a batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_fixed_functions_of_seed_and_offset() {
        assert_eq!(record_value(7, 3, 4), b"7/3/");
        assert_eq!(record_value(7, 3, 2), b"7/");
        assert_eq!(record_value(7, 3, 0), b"");
        let long = record_value(7, 3, 40);
        assert_eq!(long.len(), 40);
        assert!(long[4..].iter().all(u8::is_ascii_lowercase));
        assert_eq!(long, record_value(7, 3, 40));
        assert_ne!(long, record_value(8, 3, 40));
        assert_eq!(record_key(42), b"42");
    }
}
