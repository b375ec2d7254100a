//! `quiver log dump`, `quiver log verify` and `quiver log append-child` through the real binary:
//! output formats on a known log, and clear failures (never panics) on bad input.

mod common;

use std::path::Path;

use common::{quiver, record_value, segment_files, stderr_of, stdout_of};

const SEED: u64 = 9;
const BATCHES: i64 = 6;
const RECORDS_PER_BATCH: i64 = 3;
const VALUE_BYTES: usize = 12;

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Writes the known log: 6 batches of 3 records, values of 12 bytes, then a clean close.
fn known_log(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "log",
        "append-child",
        path(dir),
        "--flush=always",
        "--seed=9",
        "--max-batches=6",
        "--records-per-batch=3",
        "--value-bytes=12",
    ];
    args.extend_from_slice(extra);
    let out = quiver(&args);
    assert!(out.status.success(), "append-child: {}", stderr_of(&out));
    stdout_of(&out)
}

/// The `key=value` fields of a dump line.
fn fields(line: &str) -> Vec<(&str, &str)> {
    line.trim_start_matches("| ")
        .split(' ')
        .filter_map(|f| f.split_once('='))
        .collect()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    fields(line)
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

fn batch_lines(dump: &str) -> Vec<&str> {
    dump.lines().filter(|l| l.starts_with("offset=")).collect()
}

#[test]
fn append_child_acknowledges_every_batch_in_order() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("t-0");
    let out = known_log(&dir, &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "start 0 clean=false truncated_bytes=0 segments=1",
        "{out}"
    );
    for b in 0..BATCHES {
        let words: Vec<&str> = lines[1 + b as usize].split(' ').collect();
        let (base, last) = (b * RECORDS_PER_BATCH, b * RECORDS_PER_BATCH + 2);
        assert_eq!(
            words[..3],
            ["ack", &base.to_string(), &last.to_string()],
            "{out}"
        );
        assert!(words[3].parse::<u32>().is_ok(), "crc in {out}");
    }
    assert_eq!(lines.last(), Some(&"done 18"), "{out}");
    // A second run continues the cleanly closed log.
    let again = known_log(&dir, &["--no-close"]);
    assert!(
        again.starts_with("start 18 clean=true truncated_bytes=0"),
        "{again}"
    );
    assert!(again.ends_with("done 36\n"), "{again}");
}

#[test]
fn dump_prints_each_batch_and_record() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("t-0");
    known_log(&dir, &[]);
    let out = quiver(&["log", "dump", path(&dir)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dump = stdout_of(&out);
    assert_eq!(
        dump.lines().next(),
        Some("segment=00000000000000000000.log base_offset=0")
    );
    let lines = batch_lines(&dump);
    assert_eq!(lines.len(), BATCHES as usize, "{dump}");
    let mut position = 0u64;
    for (b, line) in lines.iter().enumerate() {
        let base = b as i64 * RECORDS_PER_BATCH;
        assert_eq!(
            field(line, "offset"),
            format!("{base}..{}", base + 2),
            "{line}"
        );
        assert_eq!(field(line, "position"), position.to_string(), "{line}");
        assert_eq!(field(line, "records"), "3", "{line}");
        assert_eq!(field(line, "compression"), "none", "{line}");
        assert_eq!(field(line, "crc"), "ok", "{line}");
        assert!(
            field(line, "max_timestamp").parse::<i64>().is_ok(),
            "{line}"
        );
        position += field(line, "size").parse::<u64>().expect("a size");
    }
    // Positions and sizes add up to the segment file.
    let file = std::fs::metadata(dir.join("00000000000000000000.log")).expect("stat");
    assert_eq!(position, file.len());

    let out = quiver(&["log", "dump", path(&dir), "--records"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dump = stdout_of(&out);
    let records: Vec<&str> = dump.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        records.len(),
        (BATCHES * RECORDS_PER_BATCH) as usize,
        "{dump}"
    );
    for (o, line) in records.iter().enumerate() {
        let value = String::from_utf8(record_value(SEED, o as i64, VALUE_BYTES)).expect("ascii");
        assert_eq!(field(line, "offset"), o.to_string(), "{line}");
        assert_eq!(field(line, "key"), format!("\"{o}\""), "{line}");
        assert_eq!(field(line, "value"), format!("\"{value}\""), "{line}");
        assert_eq!(field(line, "headers"), "0", "{line}");
    }
}

#[test]
fn dump_from_starts_with_the_batch_holding_the_offset() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("t-0");
    known_log(&dir, &[]);
    let out = quiver(&["log", "dump", path(&dir), "--from", "7"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dump = stdout_of(&out);
    let offsets: Vec<&str> = batch_lines(&dump)
        .iter()
        .map(|l| field(l, "offset"))
        .collect();
    assert_eq!(offsets, ["6..8", "9..11", "12..14", "15..17"], "{dump}");
    // The lines (positions included) are those of the full dump.
    let full = stdout_of(&quiver(&["log", "dump", path(&dir)]));
    assert_eq!(batch_lines(&dump), batch_lines(&full)[2..], "{full}");

    let out = quiver(&["log", "dump", path(&dir), "--from", "18"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(batch_lines(&stdout_of(&out)).is_empty());

    let out = quiver(&["log", "dump", path(&dir), "--from", "19"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("--from 19 is outside the log [0, 18]"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn dump_walks_rolled_segments_and_compressed_batches() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("t-0");
    // zstd batches of ~130 bytes, segments of at most 300: two batches per segment.
    known_log(&dir, &["--compression=zstd", "--segment-bytes=300"]);
    assert_eq!(segment_files(&dir).len(), 3);
    let out = quiver(&["log", "dump", path(&dir), "--records"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dump = stdout_of(&out);
    let segments: Vec<&str> = dump.lines().filter(|l| l.starts_with("segment=")).collect();
    assert_eq!(
        segments,
        [
            "segment=00000000000000000000.log base_offset=0",
            "segment=00000000000000000006.log base_offset=6",
            "segment=00000000000000000012.log base_offset=12"
        ],
        "{dump}"
    );
    let lines = batch_lines(&dump);
    let positions: Vec<&str> = lines.iter().map(|l| field(l, "position")).collect();
    assert_eq!(positions[0], "0");
    assert_eq!(
        positions[2], "0",
        "positions restart in each segment: {dump}"
    );
    assert!(
        lines.iter().all(|l| field(l, "compression") == "zstd"),
        "{dump}"
    );
    assert_eq!(dump.lines().filter(|l| l.starts_with("| ")).count(), 18);
    // --from in a later segment prints only from that segment on.
    let out = quiver(&["log", "dump", path(&dir), "--from", "13"]);
    let dump = stdout_of(&out);
    assert!(
        dump.starts_with(
            "segment=00000000000000000012.log base_offset=12\noffset=12..14 position=0 "
        ),
        "{dump}"
    );
}

#[test]
fn verify_reports_a_good_log() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("t-0");
    known_log(&dir, &["--no-close"]);
    let out = quiver(&["log", "verify", path(&dir)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let lines: Vec<&str> = text.lines().collect();
    // Not closed cleanly: recovery cut the preallocated space after the data.
    assert!(
        lines[0].starts_with("recovery: clean=false truncated_bytes=")
            && !lines[0].contains("truncated_bytes=0 "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("log: start_offset=0 end_offset=18 segments=1 size_bytes="),
        "{text}"
    );
    assert!(
        lines[2].starts_with("checked: batches=6 records=18 bytes="),
        "{text}"
    );
    assert_eq!(lines[3], "ok");
    // verify closed it cleanly.
    let out = quiver(&["log", "verify", path(&dir)]);
    assert!(
        stdout_of(&out).starts_with("recovery: clean=true truncated_bytes=0 segments_dropped=0"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let missing = root.path().join("missing");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["log".into(), "verify".into(), path(&missing).into()],
            "does not exist",
        ),
        (
            vec!["log".into(), "dump".into(), path(&missing).into()],
            "does not exist",
        ),
        (
            vec!["log".into(), "verify".into(), path(root.path()).into()],
            "holds no segment file",
        ),
    ];
    for (args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = quiver(&args);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("quiver: error: ") && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    }
    assert!(!missing.exists(), "verify created the missing directory");
    assert_eq!(
        std::fs::read_dir(root.path()).expect("list").count(),
        0,
        "verify wrote into a directory that is not a log"
    );
    // A regular file where a directory should be.
    let file = root.path().join("file");
    std::fs::write(&file, b"not a log").expect("write");
    let out = quiver(&["log", "verify", path(&file)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("is not a directory"),
        "{}",
        stderr_of(&out)
    );

    // Usage errors are clap's: exit status 2.
    for args in [
        vec!["log"],
        vec!["log", "dump"],
        vec!["log", "append-child", "x", "--flush=sometimes", "--seed=1"],
        vec!["log", "append-child", "x", "--flush=always"],
        vec!["log", "dump", "x", "--from", "ten"],
        vec!["nonsense"],
    ] {
        let out = quiver(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(!stderr_of(&out).contains("panicked"), "{args:?}");
    }
}

#[test]
fn help_explains_that_inspection_recovers_the_log() {
    let out = quiver(&["log", "dump", "--help"]);
    assert!(out.status.success());
    assert!(stdout_of(&out).contains("recovers it as a broker would"));
    let out = quiver(&["log", "verify", "--help"]);
    assert!(stdout_of(&out).contains("Exits 0 if the log is consistent, 1 otherwise"));
    // The crash-test child stays out of the listing.
    let out = quiver(&["log", "--help"]);
    assert!(!stdout_of(&out).contains("append-child"));
}
