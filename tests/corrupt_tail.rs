//! Damaged segment files on real O_DIRECT storage: recovery keeps exactly the valid prefix.
//!
//! A template log (several segments, batches of mixed sizes and codecs) is written in-process
//! through `DmaStorage`, then left either with a clean close or without one (synced, with
//! preallocated space after the data). Each case copies it, damages the last segment file
//! (truncation at many positions, a zeroed tail, single bit flips, garbage written after the
//! data), and checks:
//! 1. the first reopen serves exactly the batches wholly before the damage, nothing after the
//!    first damaged batch, and reports the bytes it cut; nothing panics. After a clean close the
//!    index is trusted, so damage inside the indexed bytes is not scanned for at open: reads
//!    must then refuse the damaged batch (`LogError::Corrupt`) instead of serving it;
//! 2. `quiver log verify` on the directory exits 0 and reports the expected end (this open is
//!    unclean, since the first one removed the marker, so it scans and truncates);
//! 3. new appends continue at the recovered end and survive a clean close and reopen.
//!
//! A flipped bit in `partitionLeaderEpoch` is the one damage nothing can detect: the field is
//! outside the CRC by design (the broker stamps it). Such a batch must survive with the flipped
//! epoch and unchanged otherwise.
//!
//! Separate tests cover stray files beside the log and segment files of pure garbage.

mod common;

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use common::{copy_dir, on_executor, quiver, segment_files, stderr_of, stdout_of};
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::{DmaStorage, LogConfig, LogError, PartitionLog};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Segment size of the template: small, so it has several segments.
const TEMPLATE_SEGMENT_BYTES: u64 = 24 << 10;
/// Preallocation step of the template's active segment.
const TEMPLATE_PREALLOCATE_BYTES: u64 = 64 << 10;
/// Batches the template's last segment holds at least.
const LAST_SEGMENT_BATCHES_MIN: usize = 16;
/// Segments the template has at least.
const TEMPLATE_SEGMENTS_MIN: usize = 3;
/// Bytes of the header field `partitionLeaderEpoch`, outside the CRC.
const EPOCH_FIELD: std::ops::Range<usize> = 12..16;
/// Bytes of the header field `baseOffset`, outside the CRC.
const BASE_OFFSET_FIELD: std::ops::Range<usize> = 0..8;
/// Batches appended after recovery to check the log goes on.
const APPENDS_AFTER_RECOVERY: usize = 3;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: TEMPLATE_SEGMENT_BYTES,
        segment_ms: None,
        index_interval_bytes: 1024,
        preallocate_bytes: TEMPLATE_PREALLOCATE_BYTES,
        write_chunk_bytes: 8192,
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn random_batch(rng: &mut SmallRng) -> BytesMut {
    let compression = [
        Compression::None,
        Compression::None,
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ][rng.gen_range(0..7)];
    let mut builder = BatchBuilder::new(compression);
    let ts = 1_700_000_000_000 + rng.gen_range(0..1_000_000);
    for i in 0..rng.gen_range(1..=6) {
        let key = format!("key-{}", rng.gen_range(0..50));
        let value: Vec<u8> = (0..rng.gen_range(0..900)).map(|_| rng.gen()).collect();
        builder.push(ts + i, Some(key.as_bytes()), Some(&value), &[]);
    }
    builder.build().expect("builder output is a valid batch")
}

async fn read_all(log: &PartitionLog<DmaStorage>) -> Result<Vec<Bytes>, LogError> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.next_offset() {
        let read = log.read(at, 64 << 10).await?;
        assert!(
            !read.batches.is_empty() && read.next_offset > at,
            "a read at {at} below the end {} made no progress",
            log.next_offset()
        );
        out.extend(read.batches);
        at = read.next_offset;
    }
    Ok(out)
}

fn batch_offsets(bytes: &[u8]) -> (i64, i64) {
    let b = RecordBatch::parse(bytes).expect("a stored batch parses");
    (b.base_offset(), b.last_offset())
}

/// A log written once and copied for every case.
struct Template {
    dir: PathBuf,
    clean: bool,
    /// Every batch, as stored.
    batches: Vec<Bytes>,
    /// Index in `batches` of the last segment's first batch.
    last_first: usize,
    /// File name of the last segment.
    last_name: String,
    /// The last segment file as left (data, then preallocated zeros if not closed cleanly).
    last_file: Vec<u8>,
    /// Position of each of the last segment's batches in its file.
    positions: Vec<usize>,
    /// Valid bytes of the last segment.
    valid: usize,
}

impl Template {
    fn end(&self) -> i64 {
        self.batches.last().map_or(0, |b| batch_offsets(b).1 + 1)
    }

    fn last_batches(&self) -> &[Bytes] {
        &self.batches[self.last_first..]
    }
}

fn build_template(root: &Path, name: &str, clean: bool, seed: u64) -> Template {
    let dir = root.join(name);
    let log_dir = dir.clone();
    let (batches, active_base) = on_executor(root, move || async move {
        let storage = DmaStorage::open(&log_dir).expect("storage");
        let mut log = PartitionLog::open(storage, config(), 0)
            .await
            .expect("open");
        let mut rng = SmallRng::seed_from_u64(seed);
        for _ in 0..2000 {
            let active = *log.segment_bases().last().expect("a segment");
            let in_active = log.next_offset() > active;
            if log.segment_count() >= TEMPLATE_SEGMENTS_MIN && in_active {
                let tail = log.read(active, 1 << 20).await.expect("read tail");
                if tail.batches.len() >= LAST_SEGMENT_BATCHES_MIN {
                    break;
                }
            }
            log.append(random_batch(&mut rng), 0).await.expect("append");
        }
        log.sync(0).await.expect("sync");
        let batches = read_all(&log).await.expect("read back");
        let active = *log.segment_bases().last().expect("a segment");
        if clean {
            log.close().await.expect("close");
        }
        (batches, active)
    });
    let last_first = batches
        .iter()
        .position(|b| batch_offsets(b).0 >= active_base)
        .expect("the last segment holds batches");
    let names = segment_files(&dir);
    assert!(
        names.len() >= TEMPLATE_SEGMENTS_MIN,
        "template segments: {names:?}"
    );
    let last_name = names.last().expect("a segment").clone();
    let last_file = std::fs::read(dir.join(&last_name)).expect("read the last segment");
    let mut positions = Vec::new();
    let mut at = 0;
    for b in &batches[last_first..] {
        assert_eq!(
            &last_file[at..at + b.len()],
            &b[..],
            "the last segment holds the batches back to back"
        );
        positions.push(at);
        at += b.len();
    }
    if clean {
        assert_eq!(
            last_file.len(),
            at,
            "a clean close cuts the file to its data"
        );
    } else {
        assert!(
            last_file.len() > at,
            "the unclosed segment keeps preallocated space"
        );
    }
    Template {
        dir,
        clean,
        batches,
        last_first,
        last_name,
        last_file,
        positions,
        valid: at,
    }
}

/// One way to damage the last segment file.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut the file to this many bytes.
    Truncate(usize),
    /// Zero every byte from here to the end of the file.
    ZeroFrom(usize),
    /// Flip one bit of the byte at this position.
    FlipBit(usize, u8),
    /// Write these bytes here, growing the file if needed.
    WriteAt(usize, Vec<u8>),
}

impl Damage {
    fn apply(&self, file: &[u8]) -> Vec<u8> {
        let mut out = file.to_vec();
        match self {
            Damage::Truncate(n) => out.truncate(*n),
            Damage::ZeroFrom(at) => out[*at..].fill(0),
            Damage::FlipBit(at, bit) => out[*at] ^= 1 << bit,
            Damage::WriteAt(at, bytes) => {
                if out.len() < at + bytes.len() {
                    out.resize(at + bytes.len(), 0);
                }
                out[*at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        out
    }

    fn label(&self) -> String {
        match self {
            Damage::Truncate(n) => format!("truncate to {n}"),
            Damage::ZeroFrom(at) => format!("zero from {at}"),
            Damage::FlipBit(at, bit) => format!("flip bit {bit} at {at}"),
            Damage::WriteAt(at, bytes) => format!("write {} bytes at {at}", bytes.len()),
        }
    }
}

/// What recovery must make of a damaged template.
struct Expect {
    /// The recovered log's batches, as the damaged file holds them.
    survivors: Vec<Bytes>,
    /// Its end offset.
    end: i64,
    /// Base offset of the first damaged batch, if any batch was damaged.
    damaged_base: Option<i64>,
    /// Whether a batch survives only with a flipped leader epoch (undetectable by design).
    epoch_flipped: bool,
    /// Whether the damaged batch differs only in its baseOffset (outside the CRC).
    base_offset_flipped: bool,
    /// Bytes a scan of the damaged file from its first batch cuts off.
    scan_truncates: u64,
}

fn expect(t: &Template, damaged: &[u8]) -> Expect {
    let mut survivors: Vec<Bytes> = t.batches[..t.last_first].to_vec();
    let mut epoch_flipped = false;
    let mut good_end = t.valid;
    let mut damaged_base = None;
    let mut base_offset_flipped = false;
    for (b, &at) in t.last_batches().iter().zip(&t.positions) {
        let Some(now) = damaged.get(at..at + b.len()) else {
            good_end = at;
            damaged_base = Some(batch_offsets(b).0);
            break;
        };
        let differs: Vec<usize> = (0..b.len()).filter(|&i| now[i] != b[i]).collect();
        if differs.iter().any(|i| !EPOCH_FIELD.contains(i)) {
            good_end = at;
            damaged_base = Some(batch_offsets(b).0);
            base_offset_flipped = differs.iter().all(|i| BASE_OFFSET_FIELD.contains(i));
            break;
        }
        epoch_flipped |= !differs.is_empty();
        survivors.push(Bytes::copy_from_slice(now));
    }
    let end = survivors.last().map_or_else(
        || batch_offsets(&t.last_batches()[0]).0,
        |b| batch_offsets(b).1 + 1,
    );
    Expect {
        survivors,
        end,
        damaged_base,
        epoch_flipped,
        base_offset_flipped,
        scan_truncates: (damaged.len() - good_end) as u64,
    }
}

/// The damage cases for `t`, from a seeded generator.
fn damages(t: &Template, rng: &mut SmallRng) -> Vec<Damage> {
    let v = t.valid;
    let n = t.positions.len();
    let tail = &t.positions[n.saturating_sub(6)..];
    let len_of = |i: usize| t.last_batches()[i].len();
    let mut cuts = vec![0, 1, 11, 12, 13, 60, 61, 62, v - 1, v];
    for (k, &p) in tail.iter().enumerate() {
        let len = len_of(n - tail.len() + k);
        cuts.extend([
            p.saturating_sub(1),
            p,
            p + 1,
            p + 8,
            p + 12,
            p + 21,
            p + 61,
            p + len - 1,
        ]);
    }
    cuts.extend((0..8).map(|_| rng.gen_range(0..v)));
    if t.last_file.len() > v {
        cuts.extend([v + 1, v + 4096, t.last_file.len() - 1]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Damage> = cuts.into_iter().map(Damage::Truncate).collect();
    for (k, &p) in tail.iter().enumerate().skip(2) {
        let len = len_of(n - tail.len() + k);
        out.push(Damage::ZeroFrom(p));
        out.push(Damage::ZeroFrom(p + rng.gen_range(1..len)));
    }
    out.push(Damage::ZeroFrom(v - 1));
    // One flip per header field and one in the records, in each of the last batches.
    let fields = [
        BASE_OFFSET_FIELD,
        8..12,
        EPOCH_FIELD,
        16..17,
        17..21,
        21..23,
        23..61,
    ];
    for (k, &p) in tail.iter().enumerate().skip(2) {
        let len = len_of(n - tail.len() + k);
        for f in fields.iter().cloned().chain(std::iter::once(61..len)) {
            out.push(Damage::FlipBit(p + rng.gen_range(f), rng.gen_range(0..8)));
        }
    }
    for _ in 0..6 {
        out.push(Damage::FlipBit(
            rng.gen_range(tail[0]..v),
            rng.gen_range(0..8),
        ));
    }
    for _ in 0..3 {
        let garbage: Vec<u8> = (0..rng.gen_range(1..=5000)).map(|_| rng.gen()).collect();
        out.push(Damage::WriteAt(v, garbage));
    }
    let last = t.last_batches()[n - 1].to_vec();
    let first = t.last_batches()[0].to_vec();
    // A repeated batch is valid on its own but breaks offset continuity.
    out.push(Damage::WriteAt(v, last.clone()));
    out.push(Damage::WriteAt(v, first));
    // A header claiming a huge batch, and a torn copy of a real one.
    let mut huge = last[..12].to_vec();
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    out.push(Damage::WriteAt(v, huge));
    out.push(Damage::WriteAt(v, last[..last.len() / 2].to_vec()));
    out.push(Damage::WriteAt(
        t.last_file.len(),
        (0..300).map(|_| rng.gen()).collect(),
    ));
    // Garbage over the end of the last batch and beyond.
    out.push(Damage::WriteAt(
        t.positions[n - 1] + 30,
        (0..200).map(|_| rng.gen()).collect(),
    ));
    out
}

/// Figures of one damage run.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    truncated_bytes: u64,
    refused_reads: usize,
    /// Of those, batches whose baseOffset (outside the CRC) was flipped.
    base_offset_flips_refused: usize,
    epoch_flips: usize,
}

/// Runs every case on `t` in one executor; returns the tally or the first failure.
fn run_cases(root: &Path, t: Template, damages: Vec<Damage>) -> Tally {
    let root = root.to_path_buf();
    on_executor(&root.clone(), move || async move {
        let mut tally = Tally::default();
        for (i, damage) in damages.iter().enumerate() {
            let dir = root.join(format!(
                "case-{}-{i}",
                if t.clean { "clean" } else { "unclean" }
            ));
            copy_dir(&t.dir, &dir);
            let damaged = damage.apply(&t.last_file);
            std::fs::write(dir.join(&t.last_name), &damaged).expect("write the damage");
            let what = format!(
                "{} template, case {i}: {}",
                if t.clean { "clean" } else { "unclean" },
                damage.label()
            );
            let e = expect(&t, &damaged);
            run_case(&t, &dir, &damaged, &e, &what, &mut tally).await;
            std::fs::remove_dir_all(&dir).expect("remove the case directory");
            tally.cases += 1;
        }
        tally
    })
}

async fn run_case(
    t: &Template,
    dir: &Path,
    damaged: &[u8],
    e: &Expect,
    what: &str,
    tally: &mut Tally,
) {
    // 1. First reopen.
    let storage = DmaStorage::open(dir).expect("storage");
    let log = PartitionLog::open(storage, config(), 0)
        .await
        .unwrap_or_else(|err| panic!("{what}: reopen failed: {err}"));
    let report = log.recovery();
    assert_eq!(report.clean, t.clean, "{what}: {report:?}");
    assert_eq!(report.segments_dropped, 0, "{what}: {report:?}");
    // A clean close left an index covering the valid bytes; it is trusted while the file is
    // at least that long, and only what follows is scanned.
    let trusted = t.clean && damaged.len() >= t.valid;
    if trusted {
        assert_eq!(log.next_offset(), t.end(), "{what}: trusted index end");
        assert_eq!(
            report.truncated_bytes,
            (damaged.len() - t.valid) as u64,
            "{what}: only bytes past the index are scanned"
        );
        let mut at = 0;
        let mut got = Vec::new();
        let refused = loop {
            if at >= log.next_offset() {
                break None;
            }
            match log.read(at, 64 << 10).await {
                Ok(r) => {
                    at = r.next_offset;
                    got.extend(r.batches);
                }
                Err(LogError::Corrupt { position, .. }) => break Some(position),
                Err(err) => panic!("{what}: read at {at}: {err}"),
            }
        };
        match e.damaged_base {
            Some(base) => {
                // Reads serve every intact batch before the damage (a flipped base offset
                // included: offsets must continue), then refuse the damaged batch itself.
                assert!(
                    refused.is_some(),
                    "{what}: the damaged batch at {base} was served"
                );
                assert_eq!(
                    at, base,
                    "{what}: reads stopped at {at}, not at the damage at {base}"
                );
                tally.refused_reads += 1;
                tally.base_offset_flips_refused += usize::from(e.base_offset_flipped);
            }
            None => assert_eq!(refused, None, "{what}: an undamaged log refused a read"),
        }
        let intact = got.len().min(e.survivors.len());
        assert!(
            got[..intact] == e.survivors[..intact] && got.len() <= e.survivors.len(),
            "{what}: served batches are not an intact prefix"
        );
    } else {
        assert_eq!(
            log.next_offset(),
            e.end,
            "{what}: recovered end ({report:?})"
        );
        assert_eq!(
            report.truncated_bytes, e.scan_truncates,
            "{what}: truncated bytes"
        );
        let got = read_all(&log)
            .await
            .unwrap_or_else(|err| panic!("{what}: reading the recovered log: {err}"));
        assert!(
            got == e.survivors,
            "{what}: the recovered log is not the valid prefix"
        );
        let past = log.read(e.end, 1 << 20).await.expect("read at the end");
        assert!(past.batches.is_empty(), "{what}: served past the end");
        tally.truncated_bytes += report.truncated_bytes;
    }
    tally.epoch_flips += usize::from(e.epoch_flipped);
    // Dropped without a clean close: the open removed the marker, so the next open scans.
    drop(log);

    // 2. `quiver log verify` recovers what is left and finds it consistent.
    let out = quiver(&["log", "verify", dir.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "{what}: verify failed: {}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    let text = stdout_of(&out);
    assert!(
        text.contains(&format!("end_offset={} ", e.end)),
        "{what}: verify reported {text}"
    );
    if trusted && e.damaged_base.is_some() {
        assert!(
            !text.contains("truncated_bytes=0 "),
            "{what}: verify's recovery must cut the damaged tail: {text}"
        );
    }

    // 3. The log goes on at its end.
    let storage = DmaStorage::open(dir).expect("storage");
    let mut log = PartitionLog::open(storage, config(), 0)
        .await
        .unwrap_or_else(|err| panic!("{what}: reopen after verify: {err}"));
    assert!(
        log.recovery().clean,
        "{what}: verify closes a good log cleanly"
    );
    assert_eq!(log.next_offset(), e.end, "{what}: end after verify");
    let mut expected = e.survivors.clone();
    let mut rng = SmallRng::seed_from_u64(e.end as u64);
    for _ in 0..APPENDS_AFTER_RECOVERY {
        let next = log.next_offset();
        let info = log
            .append(random_batch(&mut rng), 0)
            .await
            .unwrap_or_else(|err| panic!("{what}: append after recovery: {err}"));
        assert_eq!(
            info.base_offset, next,
            "{what}: appends continue at the end"
        );
        let read = log.read(next, 1).await.expect("read the new batch");
        expected.push(read.batches[0].clone());
    }
    log.close().await.expect("close");
    let storage = DmaStorage::open(dir).expect("storage");
    let log = PartitionLog::open(storage, config(), 0)
        .await
        .unwrap_or_else(|err| panic!("{what}: final reopen: {err}"));
    assert!(
        log.recovery().clean && log.recovery().truncated_bytes == 0,
        "{what}"
    );
    let got = read_all(&log).await.expect("final read");
    assert!(got == expected, "{what}: the log after new appends differs");
}

fn damage_test(clean: bool, seed: u64) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let t = build_template(root.path(), "template", clean, seed);
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xD00D);
    let cases = damages(&t, &mut rng);
    let summary = format!(
        "{} batches ({} in the last segment, {} valid bytes, file {} bytes), end {}",
        t.batches.len(),
        t.positions.len(),
        t.valid,
        t.last_file.len(),
        t.end()
    );
    let tally = run_cases(root.path(), t, cases);
    println!(
        "{} template: {summary}; {} cases, {} bytes truncated, {} damaged batches refused on \
         read ({} with a flipped baseOffset), {} undetectable epoch flips",
        if clean { "clean" } else { "unclean" },
        tally.cases,
        tally.truncated_bytes,
        tally.refused_reads,
        tally.base_offset_flips_refused,
        tally.epoch_flips
    );
}

#[test]
fn damaged_tail_after_a_crash_recovers_to_the_valid_prefix() {
    damage_test(false, 11);
}

#[test]
fn damaged_tail_after_a_clean_close_is_refused_then_recovered() {
    damage_test(true, 12);
}

/// `quiver log verify DIR`, with its exit code and output.
fn verify(dir: &Path) -> (Option<i32>, String, String) {
    let out = quiver(&["log", "verify", dir.to_str().expect("utf-8 path")]);
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert!(!stderr.contains("panicked"), "verify panicked: {stderr}");
    (out.status.code(), stdout, stderr)
}

/// `quiver log dump DIR` must end with 0 or 1 and a message, never a panic.
fn dump_does_not_panic(dir: &Path) -> (Option<i32>, String) {
    let out = quiver(&["log", "dump", dir.to_str().expect("utf-8 path")]);
    let stderr = stderr_of(&out);
    assert!(!stderr.contains("panicked"), "dump panicked: {stderr}");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "dump: {:?} {stderr}",
        out.status
    );
    (out.status.code(), stdout_of(&out))
}

fn random_bytes(rng: &mut SmallRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.gen()).collect()
}

#[test]
fn stray_files_beside_the_log_change_nothing() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let t = build_template(root.path(), "template", false, 21);
    let dir = root.path().join("stray");
    copy_dir(&t.dir, &dir);
    let mut rng = SmallRng::seed_from_u64(21);
    let first = &segment_files(&dir)[0];
    let first_base = first.trim_end_matches(".log");
    let strays = [
        ("notes.txt".to_string(), random_bytes(&mut rng, 3000)),
        ("0.log".to_string(), random_bytes(&mut rng, 500)),
        (
            "zzzzzzzzzzzzzzzzzzzz.log".to_string(),
            random_bytes(&mut rng, 500),
        ),
        (
            "00000000000000000001.log.swp".to_string(),
            random_bytes(&mut rng, 500),
        ),
        // Garbage indexes of the first (sealed) segment: rejected, so it is scanned instead.
        (format!("{first_base}.index"), random_bytes(&mut rng, 700)),
        (
            format!("{first_base}.timeindex"),
            random_bytes(&mut rng, 70),
        ),
        // A start-offset checkpoint of the wrong size is ignored.
        ("log-start-offset".to_string(), vec![0xFF, 0x00, 0x42]),
    ];
    for (name, bytes) in &strays {
        std::fs::write(dir.join(name), bytes).expect("write a stray file");
    }
    std::fs::create_dir(dir.join("00000000000000999999.log")).expect("a directory named .log");
    let (end, batches) = (t.end(), t.batches.clone());
    let log_dir = dir.clone();
    on_executor(root.path(), move || async move {
        let storage = DmaStorage::open(&log_dir).expect("storage");
        let log = PartitionLog::open(storage, config(), 0)
            .await
            .expect("open beside stray files");
        assert_eq!(log.next_offset(), end);
        assert_eq!(log.log_start_offset(), 0);
        let got = read_all(&log).await.expect("read");
        assert!(got == batches, "stray files changed the log's contents");
    });
    let (code, stdout, stderr) = verify(&dir);
    assert_eq!(code, Some(0), "verify: {stdout}{stderr}");
    assert!(stdout.contains(&format!("end_offset={end} ")), "{stdout}");
    for (name, _) in &strays[..4] {
        assert!(
            dir.join(name).exists(),
            "the engine removed the stray file {name}"
        );
    }
    assert_eq!(dump_does_not_panic(&dir).0, Some(0));
}

#[test]
fn a_segment_of_pure_garbage_recovers_to_an_empty_log() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let mut rng = SmallRng::seed_from_u64(31);
    let mut torn_header = vec![0u8; 200];
    torn_header[8..12].copy_from_slice(&188i32.to_be_bytes());
    torn_header[16] = 2;
    let files = [
        ("random", random_bytes(&mut rng, 10_000)),
        ("short", random_bytes(&mut rng, 5)),
        ("header-bad-crc", torn_header),
        ("zeros", vec![0u8; 8192]),
    ];
    for (name, bytes) in files {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("00000000000000000000.log"), &bytes).expect("write");
        let (code, stdout, stderr) = verify(&dir);
        assert_eq!(code, Some(0), "{name}: verify: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("truncated_bytes={} ", bytes.len()))
                && stdout.contains("end_offset=0 "),
            "{name}: {stdout}"
        );
        let (code, dumped) = dump_does_not_panic(&dir);
        assert_eq!(code, Some(0), "{name}");
        assert!(
            !dumped.lines().any(|l| l.starts_with("offset=")),
            "{name}: dumped batches: {dumped}"
        );
        let log_dir = dir.clone();
        on_executor(root.path(), move || async move {
            let storage = DmaStorage::open(&log_dir).expect("storage");
            let mut log = PartitionLog::open(storage, config(), 0)
                .await
                .expect("open");
            assert_eq!(log.next_offset(), 0);
            let info = log
                .append(random_batch(&mut SmallRng::seed_from_u64(1)), 0)
                .await
                .expect("append");
            assert_eq!(info.base_offset, 0, "{name}");
            log.close().await.expect("close");
        });
    }
}

#[test]
fn garbage_segments_among_real_ones_give_clear_results() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let t = build_template(root.path(), "template", true, 41);
    let mut rng = SmallRng::seed_from_u64(41);
    let names = segment_files(&t.dir);
    let base_of = |name: &str| -> i64 { name.trim_end_matches(".log").parse().expect("a base") };
    let end = t.end();

    // (a) A garbage segment named past the log end: recovery finds nothing valid in it and,
    // since it would open a hole at the end, drops it; the log is intact.
    let dir = root.path().join("past-end");
    copy_dir(&t.dir, &dir);
    let gap_base = end + 1000;
    let stray = dir.join(format!("{gap_base:020}.log"));
    std::fs::write(&stray, random_bytes(&mut rng, 3000)).expect("write");
    let (code, stdout, stderr) = verify(&dir);
    assert_eq!(code, Some(0), "past-end: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("end_offset={end}")),
        "past-end: {stdout}"
    );
    assert!(!stray.exists(), "past-end: the stray segment is gone");
    dump_does_not_panic(&dir);

    // (b) A garbage segment named inside the last segment's offsets: nothing valid in it, so
    // it is dropped like the one past the end, and the log keeps its end.
    let dir = root.path().join("overlap");
    copy_dir(&t.dir, &dir);
    let inside = base_of(names.last().expect("a segment")) + 1;
    let stray = dir.join(format!("{inside:020}.log"));
    std::fs::write(&stray, random_bytes(&mut rng, 3000)).expect("write");
    let (code, stdout, stderr) = verify(&dir);
    assert_eq!(code, Some(0), "overlap: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("end_offset={end}")),
        "overlap: {stdout}"
    );
    assert!(!stray.exists(), "overlap: the stray segment is gone");
    dump_does_not_panic(&dir);

    // (c) A sealed segment overwritten with garbage of its own size: its index is trusted, so
    // open succeeds, and verify's reads find the corruption.
    let dir = root.path().join("sealed-same-size");
    copy_dir(&t.dir, &dir);
    let middle = &names[1];
    let size = std::fs::metadata(dir.join(middle)).expect("stat").len() as usize;
    std::fs::write(dir.join(middle), random_bytes(&mut rng, size)).expect("write");
    let (code, stdout, stderr) = verify(&dir);
    assert_eq!(code, Some(1), "sealed-same-size: {stdout}{stderr}");
    assert!(
        stderr.contains("corrupt batch in segment"),
        "sealed-same-size: {stderr}"
    );
    assert_eq!(dump_does_not_panic(&dir).0, Some(1));

    // (d) A sealed segment replaced by shorter garbage: its index no longer fits, the scan
    // finds nothing valid, and the log ends there (later segments are dropped).
    let dir = root.path().join("sealed-shorter");
    copy_dir(&t.dir, &dir);
    std::fs::write(dir.join(middle), random_bytes(&mut rng, 100)).expect("write");
    let (code, stdout, stderr) = verify(&dir);
    assert_eq!(code, Some(0), "sealed-shorter: {stdout}{stderr}");
    let dropped = names.len() - 2;
    assert!(
        stdout.contains(&format!("end_offset={} ", base_of(middle)))
            && stdout.contains(&format!("segments_dropped={dropped}")),
        "sealed-shorter: {stdout}"
    );
    assert_eq!(dump_does_not_panic(&dir).0, Some(0));
}
