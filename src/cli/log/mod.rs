//! `quiver log`: tools over one partition log directory (`<data>/<topic>-<partition>/`).
//!
//! - `dump`: one line per batch (and optionally per record), like Kafka's `kafka-dump-log`;
//! - `verify`: recovers the log, reads every batch back and checks CRCs and offset continuity;
//! - `append-child` (hidden): a deterministic writer that acknowledges durable batches on stdout,
//!   the process the crash tests kill.
//!
//! Every tool opens the log through the engine's `PartitionLog::open`, exactly as a broker
//! would: an unclean log is recovered (a torn or corrupt tail is truncated away) before it is
//! read. `dump` and `verify` refuse a directory that holds no segment file, so pointing them at
//! the wrong directory never creates a log there.

mod append_child;
mod dump;
mod verify;

use std::io;
use std::io::Write;
use std::path::Path;

use clap::{Args, Subcommand};
use quiver_engine::log::segment::parse_log_name;
use quiver_engine::log::{DmaStorage, LogConfig, PartitionLog};
use quiver_engine::rt;

use super::CliError;

/// Largest batch `dump` and `verify` accept while recovering, unless told otherwise. Above the
/// broker's limit on purpose: a recovery scan treats a longer batch as garbage and truncates it,
/// so an inspection tool must never be stricter than the writer was.
pub const INSPECT_BATCH_BYTES_MAX: usize = 64 << 20;
/// Bytes asked of one `PartitionLog::read` while walking a log.
const WALK_READ_BYTES: usize = 1 << 20;

/// `quiver log <command>`.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Print the batches of a partition log, one line each (and its records with --records).
    ///
    /// Opens the log with the storage engine, which recovers it as a broker would: if the
    /// last shutdown was not clean, a torn or corrupt tail is truncated away (and reported on
    /// stderr). The engine also leaves its small direct-IO probe file in DIR.
    Dump(dump::DumpArgs),
    /// Recover a partition log, read every batch back and check it.
    ///
    /// Prints the recovery report (clean shutdown or not, bytes truncated, segments dropped),
    /// the log start and end offsets and the segment count, then reads every batch and checks
    /// that it parses (length, magic, CRC-32C), that its records decode and that offsets are
    /// contiguous. Exits 0 if the log is consistent, 1 otherwise. Like `dump`, it recovers an
    /// unclean log first (truncating a torn tail), and closes the log cleanly only if it is
    /// consistent.
    Verify(verify::VerifyArgs),
    /// Append deterministic batches forever, acknowledging each durable one on stdout (the
    /// process crash tests kill).
    #[command(hide = true)]
    AppendChild(append_child::AppendChildArgs),
}

/// Runs a `quiver log` command.
pub fn run(args: LogArgs) -> Result<(), CliError> {
    match args.command {
        LogCommand::Dump(a) => dump::run(a),
        LogCommand::Verify(a) => verify::run(a),
        LogCommand::AppendChild(a) => append_child::run(a),
    }
}

/// Checks that `dir` is an existing directory holding at least one segment file.
fn require_log_dir(dir: &Path) -> Result<(), CliError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::BadInput(format!(
                "log directory {} does not exist",
                dir.display()
            )))
        }
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(CliError::BadInput(format!(
                "{} is not a directory",
                dir.display()
            )))
        }
        Err(e) => return Err(CliError::io(format!("listing {}", dir.display()), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io(format!("listing {}", dir.display()), e))?;
        if entry
            .file_name()
            .to_str()
            .and_then(parse_log_name)
            .is_some()
        {
            return Ok(());
        }
    }
    Err(CliError::BadInput(format!(
        "{} holds no segment file (<20-digit base offset>.log): not a partition log",
        dir.display()
    )))
}

/// The configuration `dump` and `verify` open a log with: the engine's defaults (nothing is
/// appended, so only recovery settings matter) with a generous batch size limit.
fn inspect_config(batch_bytes_max: usize) -> LogConfig {
    LogConfig {
        batch_bytes_max,
        ..LogConfig::default()
    }
}

/// Opens (recovering) the log in `dir`.
async fn open_log(dir: &Path, config: LogConfig) -> Result<PartitionLog<DmaStorage>, CliError> {
    let storage =
        DmaStorage::open(dir).map_err(|e| CliError::io(format!("opening {}", dir.display()), e))?;
    PartitionLog::open(storage, config, rt::now_ms())
        .await
        .map_err(|e| CliError::log(format!("opening the log in {}", dir.display()), e))
}

/// Writes `line` and a newline to `out` in one write and flushes it, so a reader of a pipe sees
/// whole lines only (a pipe write under 4 KiB is atomic), even if this process is killed.
fn emit(out: &mut impl Write, line: &str) -> Result<(), CliError> {
    let mut whole = String::with_capacity(line.len() + 1);
    whole.push_str(line);
    whole.push('\n');
    out.write_all(whole.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::io("writing to stdout", e))
}

/// Writes `line` and a newline to `out` (buffered; the caller flushes).
fn write_line(out: &mut impl Write, line: &str) -> Result<(), CliError> {
    writeln!(out, "{line}").map_err(|e| CliError::io("writing to stdout", e))
}

/// `bytes` as lossy UTF-8 in double quotes, with control characters, quotes and backslashes
/// escaped so one record stays on one line.
fn quoted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c.is_control() || c == '"' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}
