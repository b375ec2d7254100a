//! Seeded random operation sequences over the partition log, checked against a simple model.
//!
//! The log runs over `MemStorage`, so every run is deterministic for its seed: appends, reads,
//! syncs, rolls, truncations, log-start moves, clean reopens, crashes (the storage a power cut
//! could leave, chosen by the seed) and corrupted tails. A failing run prints its seed; replay it
//! with `QUIVER_SEED=<seed> cargo test -p quiver-engine --test log_model`.

use bytes::{Bytes, BytesMut};
use futures_lite::future::block_on;
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::{FlushPolicy, LogConfig, LogError, MemStorage, PartitionLog, Storage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
struct ModelBatch {
    base: i64,
    last: i64,
    bytes: Bytes,
}

struct Model {
    batches: Vec<ModelBatch>,
    next_offset: i64,
    log_start: i64,
}

impl Model {
    fn first_index_holding(&self, offset: i64) -> Option<usize> {
        self.batches.iter().position(|b| b.last >= offset)
    }
}

fn small_config(rng: &mut SmallRng) -> LogConfig {
    LogConfig {
        segment_bytes: rng.gen_range(8_000..60_000),
        segment_ms: None,
        index_interval_bytes: rng.gen_range(100..3000),
        batch_bytes_max: 64 << 10,
        flush: FlushPolicy::Never,
        retention_ms: None,
        retention_bytes: None,
        write_chunk_bytes: 4096 * rng.gen_range(1..4),
        writes_in_flight_max: rng.gen_range(1..4),
        preallocate_bytes: if rng.gen_bool(0.5) {
            0
        } else {
            4096 * rng.gen_range(1..8)
        },
        read_io_bytes: 4096 * rng.gen_range(1..3),
        cache_bytes_max: rng.gen_range(0..20_000),
        ..LogConfig::default()
    }
}

fn random_batch(rng: &mut SmallRng, ts: &mut i64) -> BytesMut {
    let compression = [
        Compression::None,
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
    ][rng.gen_range(0..6)];
    let mut builder = BatchBuilder::new(compression);
    for _ in 0..rng.gen_range(1..6) {
        *ts += rng.gen_range(0..50);
        let key = format!("k{}", rng.gen_range(0..20));
        let value: Vec<u8> = (0..rng.gen_range(0..2500)).map(|_| rng.gen()).collect();
        builder.push(*ts, Some(key.as_bytes()), Some(&value), &[]);
    }
    builder.build().expect("builder output is valid")
}

async fn check_reads(log: &PartitionLog<MemStorage>, model: &Model, rng: &mut SmallRng, seed: u64) {
    assert_eq!(
        log.next_offset(),
        model.next_offset,
        "seed {seed}: next offset"
    );
    assert_eq!(
        log.log_start_offset(),
        model.log_start,
        "seed {seed}: log start"
    );
    // A full scan from the log start returns exactly the model's batches.
    let mut at = model.log_start;
    let mut seen = Vec::new();
    while at < model.next_offset {
        let read = log
            .read(at, rng.gen_range(1..40_000))
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: read {at}: {e}"));
        assert!(
            !read.batches.is_empty(),
            "seed {seed}: empty read at {at} below end {}",
            model.next_offset
        );
        assert!(read.next_offset > at, "seed {seed}: read made no progress");
        seen.extend(read.batches);
        at = read.next_offset;
    }
    let expected: Vec<Bytes> = match model.first_index_holding(model.log_start) {
        Some(i) => model.batches[i..].iter().map(|b| b.bytes.clone()).collect(),
        None => Vec::new(),
    };
    assert_eq!(seen.len(), expected.len(), "seed {seed}: batch count");
    for (i, (got, want)) in seen.iter().zip(&expected).enumerate() {
        assert!(got == want, "seed {seed}: batch {i} differs");
    }
    // A read in the middle starts with the batch holding the offset, respects max_bytes.
    if model.next_offset > model.log_start {
        let from = rng.gen_range(model.log_start..model.next_offset);
        let max_bytes = rng.gen_range(1..20_000);
        let read = log
            .read(from, max_bytes)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: read {from}: {e}"));
        let i = model.first_index_holding(from).expect("offset below end");
        assert!(
            read.batches[0] == model.batches[i].bytes,
            "seed {seed}: first batch of read at {from}"
        );
        if read.batches.len() > 1 {
            assert!(
                read.bytes() <= max_bytes,
                "seed {seed}: read exceeded max_bytes"
            );
        }
        for (j, b) in read.batches.iter().enumerate() {
            assert!(
                *b == model.batches[i + j].bytes,
                "seed {seed}: batch {j} of read at {from}"
            );
        }
    }
    // Out of range is an error, not a panic.
    assert!(matches!(
        log.read(model.next_offset + 1, 100).await,
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

fn batch_max_ts(bytes: &Bytes) -> i64 {
    RecordBatch::parse(bytes)
        .expect("model batch parses")
        .max_timestamp()
}

/// Applies retention by time or size with a limit drawn from the model's own data, and checks
/// the log deleted exactly the segments the rules name.
async fn check_retention(
    log: &mut PartitionLog<MemStorage>,
    model: &mut Model,
    rng: &mut SmallRng,
    seed: u64,
) {
    let bases = log.segment_bases();
    // Per segment: (base, bytes, max timestamp, empty) from the model's batches.
    let mut segments: Vec<(i64, u64, i64, bool)> = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let end = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let in_segment: Vec<&ModelBatch> = model
            .batches
            .iter()
            .filter(|b| b.base >= base && b.base < end)
            .collect();
        let size = in_segment.iter().map(|b| b.bytes.len() as u64).sum();
        let max_ts = in_segment
            .iter()
            .map(|b| batch_max_ts(&b.bytes))
            .max()
            .unwrap_or(i64::MIN);
        segments.push((base, size, max_ts, in_segment.is_empty()));
    }
    let (sealed, active) = segments.split_at(segments.len() - 1);
    let mut config = log.config().clone();
    let by_time = rng.gen_bool(0.5);
    let now = 2_000_000i64;
    let expected_deleted;
    if by_time {
        let cutoff = model
            .batches
            .get(rng.gen_range(0..model.batches.len().max(1)))
            .map_or(now, |b| batch_max_ts(&b.bytes));
        config.retention_ms = Some(now - cutoff);
        config.retention_bytes = None;
        let mut n = sealed.iter().take_while(|s| s.3 || s.2 < cutoff).count();
        if n == sealed.len() && !active[0].3 && active[0].2 < cutoff {
            n += 1; // the active segment is rolled and deleted too
        }
        expected_deleted = n;
    } else {
        let total: u64 = segments.iter().map(|s| s.1).sum();
        let limit = rng.gen_range(0..=total.max(1));
        config.retention_ms = None;
        config.retention_bytes = Some(limit);
        let mut left = total;
        let mut n = 0;
        for s in sealed {
            if left - s.1 < limit {
                break;
            }
            left -= s.1;
            n += 1;
        }
        expected_deleted = n;
    }
    log.set_config(config.clone()).expect("config");
    let outcome = log
        .enforce_retention(now)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: retention: {e}"));
    assert_eq!(
        outcome.segments_deleted, expected_deleted,
        "seed {seed}: segments deleted (by_time {by_time})"
    );
    if expected_deleted > 0 {
        let new_start = log.segment_bases()[0];
        assert!(
            new_start >= model.log_start,
            "seed {seed}: log start went back"
        );
        model.log_start = new_start.min(model.next_offset);
    }
    config.retention_ms = None;
    config.retention_bytes = None;
    log.set_config(config).expect("config");
    assert_eq!(
        log.log_start_offset(),
        model.log_start,
        "seed {seed}: log start after retention"
    );
}

/// Keeps the model's batches that the reopened log kept: a prefix, covering everything durable.
async fn reconcile_after_crash(
    log: &PartitionLog<MemStorage>,
    model: &mut Model,
    durable: i64,
    seed: u64,
    what: &str,
) {
    let end = log.next_offset();
    if std::env::var("QUIVER_TRACE").is_ok() {
        eprintln!(
            "{what}: end {end} segments {:?} recovery {:?} model {:?}",
            log.segment_bases(),
            log.recovery(),
            model
                .batches
                .iter()
                .map(|b| (b.base, b.last))
                .collect::<Vec<_>>()
        );
    }
    let kept = model.batches.iter().take_while(|b| b.last < end).count();
    assert!(
        end >= durable.min(model.next_offset) || what == "corrupt",
        "seed {seed}: {what} lost durable data: end {end} < durable {durable}"
    );
    if kept < model.batches.len() {
        assert_eq!(
            end, model.batches[kept].base,
            "seed {seed}: {what}: log must end at a batch boundary of the model"
        );
    } else {
        assert_eq!(
            end, model.next_offset,
            "seed {seed}: {what}: log grew past the model"
        );
    }
    model.batches.truncate(kept);
    model.next_offset = end;
    model.log_start = log.log_start_offset();
}

fn run(seed: u64, ops: usize) {
    block_on(async move {
        let mut rng = SmallRng::seed_from_u64(seed);
        let config = small_config(&mut rng);
        let mut storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config.clone(), 0)
            .await
            .expect("open empty");
        let mut model = Model {
            batches: Vec::new(),
            next_offset: 0,
            log_start: 0,
        };
        let mut ts = 1_000_000i64;
        let trace = std::env::var("QUIVER_TRACE").is_ok();
        for _ in 0..ops {
            let op = rng.gen_range(0..100);
            if trace {
                eprintln!(
                    "op {op}: next {} start {} (model {}) segments {:?}",
                    log.next_offset(),
                    log.log_start_offset(),
                    model.log_start,
                    log.segment_bases()
                );
            }
            match op {
                0..=49 => {
                    let batch = random_batch(&mut rng, &mut ts);
                    let info = log
                        .append(batch, 0)
                        .await
                        .unwrap_or_else(|e| panic!("seed {seed}: append: {e}"));
                    assert_eq!(
                        info.base_offset, model.next_offset,
                        "seed {seed}: base offset"
                    );
                    let read = log.read(info.base_offset, 1).await.expect("read back");
                    let bytes = read.batches[0].clone();
                    let view = RecordBatch::parse(&bytes).expect("stored batch parses");
                    assert_eq!(view.base_offset(), info.base_offset);
                    model.batches.push(ModelBatch {
                        base: info.base_offset,
                        last: info.last_offset,
                        bytes,
                    });
                    model.next_offset = info.last_offset + 1;
                }
                50..=59 => check_reads(&log, &model, &mut rng, seed).await,
                60..=64 => log.sync(0).await.expect("sync"),
                65..=67 => log.roll(0).await.expect("roll"),
                68..=71 => {
                    if model.next_offset > model.log_start {
                        let to = rng.gen_range(model.log_start..=model.next_offset);
                        log.truncate_to(to, 0)
                            .await
                            .unwrap_or_else(|e| panic!("seed {seed}: truncate {to}: {e}"));
                        if let Some(i) = model.first_index_holding(to) {
                            // The log ends at the base of the first removed batch, and the
                            // log start never passes the end.
                            model.next_offset = model.batches[i].base;
                            model.log_start = model.log_start.min(model.next_offset);
                            model.batches.truncate(i);
                        }
                        assert_eq!(
                            log.next_offset(),
                            model.next_offset,
                            "seed {seed}: truncate_to {to}"
                        );
                    }
                }
                72..=73 => {
                    if model.next_offset > model.log_start {
                        let to = rng.gen_range(model.log_start..=model.next_offset);
                        log.delete_before(to).await.expect("delete_before");
                        model.log_start = to;
                        assert!(
                            matches!(
                                log.read(to - 1, 10).await,
                                Err(LogError::OffsetOutOfRange { .. })
                            ) || to == 0
                        );
                    }
                }
                74..=79 => {
                    log.close().await.expect("close");
                    log = PartitionLog::open(storage.clone(), config.clone(), 0)
                        .await
                        .expect("reopen");
                    assert!(log.recovery().clean, "seed {seed}: clean close not seen");
                    assert_eq!(log.recovery().truncated_bytes, 0);
                }
                80..=89 => {
                    let durable = log.durable_offset();
                    let crashed = storage.crash(rng.gen());
                    drop(log);
                    storage = crashed;
                    log = PartitionLog::open(storage.clone(), config.clone(), 0)
                        .await
                        .unwrap_or_else(|e| panic!("seed {seed}: open after crash: {e}"));
                    assert!(!log.recovery().clean);
                    reconcile_after_crash(&log, &mut model, durable, seed, "crash").await;
                }
                90..=92 => {
                    // Corrupt bytes near the end of the last segment after a crash.
                    let crashed = storage.crash(rng.gen());
                    drop(log);
                    storage = crashed;
                    let last = storage
                        .file_names()
                        .into_iter()
                        .filter(|n| n.ends_with(".log"))
                        .max()
                        .expect("a segment");
                    let mut bytes = storage.file_bytes(&last).expect("segment bytes");
                    if !bytes.is_empty() {
                        let from = bytes.len().saturating_sub(rng.gen_range(1..6000));
                        match rng.gen_range(0..3) {
                            0 => bytes.truncate(from),
                            1 => bytes[from..].fill(0),
                            _ => {
                                let i = rng.gen_range(from..bytes.len());
                                bytes[i] ^= 1 << rng.gen_range(0..8);
                            }
                        }
                        storage.set_file_bytes(&last, bytes);
                    }
                    log = PartitionLog::open(storage.clone(), config.clone(), 0)
                        .await
                        .unwrap_or_else(|e| panic!("seed {seed}: open after corruption: {e}"));
                    reconcile_after_crash(&log, &mut model, 0, seed, "corrupt").await;
                }
                93..=95 => check_retention(&mut log, &mut model, &mut rng, seed).await,
                _ => {
                    // offset_for_timestamp agrees with a model scan.
                    if let Some(i) = model.first_index_holding(model.log_start) {
                        let b = &model.batches[rng.gen_range(i..model.batches.len())];
                        let records = RecordBatch::parse(&b.bytes).unwrap().records().unwrap();
                        let target = records[rng.gen_range(0..records.len())].timestamp;
                        let expected = model.batches[i..]
                            .iter()
                            .flat_map(|b| RecordBatch::parse(&b.bytes).unwrap().records().unwrap())
                            .find(|r| r.timestamp >= target && r.offset >= model.log_start)
                            .map(|r| (r.offset, r.timestamp));
                        let got = log
                            .offset_for_timestamp(target)
                            .await
                            .expect("offset_for_timestamp");
                        assert_eq!(got, expected, "seed {seed}: offset_for_timestamp({target})");
                        assert_eq!(
                            log.offset_for_timestamp(ts + 1).await.expect("future ts"),
                            None
                        );
                    }
                }
            }
        }
        check_reads(&log, &model, &mut rng, seed).await;
    });
}

fn seeds() -> Vec<u64> {
    match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
        // QUIVER_SEED_COUNT widens the search (e.g. 5000) when hunting bugs locally.
        Err(_) => {
            let count = std::env::var("QUIVER_SEED_COUNT")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(40);
            (0..count).collect()
        }
    }
}

#[test]
fn random_operations_match_the_model() {
    for seed in seeds() {
        let result = std::panic::catch_unwind(|| run(seed, 300));
        if result.is_err() {
            panic!("failing seed: {seed} (replay with QUIVER_SEED={seed})");
        }
    }
}

#[test]
fn a_full_device_refuses_the_append_and_loses_nothing() {
    block_on(async {
        let storage = MemStorage::new();
        let config = LogConfig {
            preallocate_bytes: 64 << 10,
            write_chunk_bytes: 4096,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(storage.clone(), config.clone(), 0)
            .await
            .unwrap();
        let mut ts = 0;
        let mut rng = SmallRng::seed_from_u64(7);
        let mut appended = 0;
        storage.set_free_bytes(Some(200 << 10));
        let err = loop {
            match log.append(random_batch(&mut rng, &mut ts), 0).await {
                Ok(info) => appended = info.last_offset + 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(&err, LogError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull),
            "{err}"
        );
        assert_eq!(
            log.next_offset(),
            appended,
            "the failed append left no trace"
        );
        storage.set_free_bytes(None);
        log.sync(0).await.unwrap();
        log.close().await.unwrap();
        let log = PartitionLog::open(storage, config, 0).await.unwrap();
        assert_eq!(log.next_offset(), appended);
    });
}

#[test]
fn bad_batches_get_typed_errors() {
    block_on(async {
        let storage = MemStorage::new();
        let config = LogConfig {
            batch_bytes_max: 2000,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(storage.clone(), config, 0)
            .await
            .unwrap();
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(1, None, Some(&[7u8; 3000]), &[]);
        let big = builder.build().unwrap();
        assert!(matches!(
            log.append(big, 0).await,
            Err(LogError::BatchTooLarge { .. })
        ));
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(1, None, Some(b"hello"), &[]);
        let mut bad = builder.build().unwrap();
        let n = bad.len();
        bad[n - 1] ^= 0x40;
        assert!(matches!(
            log.append(bad, 0).await,
            Err(LogError::InvalidBatch(_))
        ));
        assert!(matches!(
            log.append(BytesMut::from(&b"short"[..]), 0).await,
            Err(LogError::InvalidBatch(_))
        ));
        assert_eq!(log.next_offset(), 0);
        assert!(storage
            .list()
            .await
            .unwrap()
            .iter()
            .any(|n| n.ends_with(".log")));
    });
}
