//! Seeded random operation sequences over a compacted log, checked against a model of what
//! `cleanup.policy=compact` must keep: the latest record of every key in the sealed segments,
//! tombstones only while younger than `delete.retention.ms`, the active segment untouched, and
//! offsets unchanged. Crashes and reopens are mixed in. A failing run prints its seed; replay
//! with `QUIVER_SEED=<seed> cargo test -p quiver-engine --test log_compaction`.

use std::collections::HashMap;

use bytes::Bytes;
use futures_lite::future::block_on;
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::{CleanupPolicy, FlushPolicy, LogConfig, MemStorage, PartitionLog};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One record as the model sees it: offset, timestamp, key, value.
type Rec = (i64, i64, Option<Bytes>, Option<Bytes>);

async fn all_records(log: &PartitionLog<MemStorage>, seed: u64) -> (Vec<Rec>, Vec<(i64, i64)>) {
    let mut at = log.log_start_offset();
    let mut records = Vec::new();
    let mut ranges = Vec::new();
    while at < log.next_offset() {
        let read = log
            .read(at, 50_000)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: read {at}: {e}"));
        for b in &read.batches {
            let view = RecordBatch::parse(b).expect("stored batches parse");
            ranges.push((view.base_offset(), view.last_offset()));
            for r in view.records().expect("records decode") {
                records.push((r.offset, r.timestamp, r.key, r.value));
            }
        }
        at = read.next_offset;
    }
    (records, ranges)
}

fn run(seed: u64) {
    block_on(async move {
        let mut rng = SmallRng::seed_from_u64(seed);
        let config = LogConfig {
            segment_bytes: rng.gen_range(2_000..20_000),
            segment_ms: None,
            index_interval_bytes: rng.gen_range(100..2000),
            flush: FlushPolicy::Never,
            retention_ms: None,
            cleanup_policy: CleanupPolicy::Compact,
            delete_retention_ms: 1000,
            write_chunk_bytes: 4096,
            writes_in_flight_max: 2,
            preallocate_bytes: 0,
            cache_bytes_max: rng.gen_range(0..10_000),
            ..LogConfig::default()
        };
        let mut storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config.clone(), 0)
            .await
            .expect("open");
        // The model: every record currently in the log, in offset order.
        let mut model: Vec<Rec> = Vec::new();
        let mut ts = 10_000i64;
        for _ in 0..250 {
            match rng.gen_range(0..100) {
                0..=59 => {
                    let compression = [Compression::None, Compression::Zstd, Compression::Snappy]
                        [rng.gen_range(0..3)];
                    let mut b = BatchBuilder::new(compression);
                    let n = rng.gen_range(1..5);
                    let mut recs = Vec::new();
                    for _ in 0..n {
                        ts += rng.gen_range(0..300);
                        let key = Bytes::from(format!("key-{}", rng.gen_range(0..12)));
                        let value = if rng.gen_bool(0.15) {
                            None
                        } else {
                            Some(Bytes::from(vec![rng.gen::<u8>(); rng.gen_range(1..400)]))
                        };
                        b.push(ts, Some(&key), value.as_deref(), &[]);
                        recs.push((ts, key, value));
                    }
                    let info = log
                        .append(b.build().expect("build"), 0)
                        .await
                        .expect("append");
                    for (i, (t, k, v)) in recs.into_iter().enumerate() {
                        model.push((info.base_offset + i as i64, t, Some(k), v));
                    }
                }
                60..=69 => log.roll(0).await.expect("roll"),
                70..=84 => {
                    let now = ts + rng.gen_range(0..3000);
                    let active_base = *log.segment_bases().last().expect("segments");
                    let mut latest: HashMap<Bytes, i64> = HashMap::new();
                    for r in model.iter().filter(|r| r.0 < active_base) {
                        if let Some(k) = &r.2 {
                            latest.insert(k.clone(), r.0);
                        }
                    }
                    let cutoff = now - config.delete_retention_ms;
                    let expected: Vec<Rec> = model
                        .iter()
                        .filter(|r| {
                            r.0 >= active_base
                                || r.2.as_ref().is_none_or(|k| {
                                    latest[k] == r.0 && !(r.3.is_none() && r.1 < cutoff)
                                })
                        })
                        .cloned()
                        .collect();
                    let end_before = log.next_offset();
                    log.compact(now)
                        .await
                        .unwrap_or_else(|e| panic!("seed {seed}: compact: {e}"));
                    let (got, ranges) = all_records(&log, seed).await;
                    assert_eq!(got, expected, "seed {seed}: records after compaction");
                    assert_eq!(
                        log.next_offset(),
                        end_before,
                        "seed {seed}: compaction moved the end"
                    );
                    for w in ranges.windows(2) {
                        assert_eq!(
                            w[1].0,
                            w[0].1 + 1,
                            "seed {seed}: offsets stay contiguous across batches"
                        );
                    }
                    model = expected;
                }
                85..=92 => {
                    log.sync(0).await.expect("sync");
                    let crashed = storage.crash(rng.gen());
                    drop(log);
                    storage = crashed;
                    log = PartitionLog::open(storage.clone(), config.clone(), 0)
                        .await
                        .expect("reopen after crash");
                    let (got, _) = all_records(&log, seed).await;
                    assert_eq!(got, model, "seed {seed}: synced records after a crash");
                }
                _ => {
                    log.close().await.expect("close");
                    log = PartitionLog::open(storage.clone(), config.clone(), 0)
                        .await
                        .expect("reopen");
                    let (got, _) = all_records(&log, seed).await;
                    assert_eq!(got, model, "seed {seed}: records after a clean reopen");
                }
            }
        }
    });
}

#[test]
fn compaction_keeps_the_latest_record_per_key() {
    let seeds: Vec<u64> = match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
        Err(_) => (0..30).collect(),
    };
    for seed in seeds {
        if std::panic::catch_unwind(|| run(seed)).is_err() {
            panic!("failing seed: {seed} (replay with QUIVER_SEED={seed})");
        }
    }
}
