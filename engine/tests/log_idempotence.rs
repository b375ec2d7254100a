//! Idempotent producers in the partition log: duplicate retries, sequence and epoch checks,
//! producer-state snapshots across close, roll, crash and lost tails, truncation, retention and
//! compaction; a seeded random test against a model; one run on real O_DIRECT files.
//!
//! The random test runs over `MemStorage` and is deterministic for its seed; a failing run
//! prints the seed. Replay it with
//! `QUIVER_SEED=<seed> cargo test -p quiver-engine --test log_idempotence`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_lite::future::block_on;
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::producers::{
    last_sequence, snapshot_name, BatchMetadata, ProducerStateTable, CACHED_BATCHES,
};
use quiver_engine::log::{
    AppendInfo, CleanupPolicy, DmaStorage, FlushPolicy, LogConfig, LogError, MemStorage,
    PartitionLog,
};
use quiver_engine::rt::{prepare_executor, ExecutorConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const NOW: i64 = 1_700_000_000_000;

/// An idempotent batch of `count` records with distinct keys `k<seq>`.
fn pbatch(pid: i64, epoch: i16, seq: i32, count: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new(Compression::None).producer(pid, epoch, seq);
    for i in 0..count {
        let key = format!("p{pid}-k{}", i64::from(seq) + i as i64);
        b.push(ts + i as i64, Some(key.as_bytes()), Some(&[7u8; 100]), &[]);
    }
    b.build().expect("build")
}

/// A batch without a producer id.
fn plain(count: usize, ts: i64) -> BytesMut {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..count {
        b.push(ts, Some(format!("plain{i}").as_bytes()), Some(b"v"), &[]);
    }
    b.build().expect("build")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        segment_ms: None,
        index_interval_bytes: 512,
        flush: FlushPolicy::Never,
        retention_ms: None,
        write_chunk_bytes: 4096,
        writes_in_flight_max: 2,
        preallocate_bytes: 0,
        cache_bytes_max: 2048,
        ..LogConfig::default()
    }
}

async fn append(log: &mut PartitionLog<MemStorage>, batch: BytesMut) -> AppendInfo {
    log.append(batch, NOW).await.expect("append")
}

async fn batch_count(log: &PartitionLog<MemStorage>) -> usize {
    let mut at = log.log_start_offset();
    let mut n = 0;
    while at < log.next_offset() {
        let read = log.read(at, 1 << 20).await.expect("read");
        n += read.batches.len();
        at = read.next_offset;
    }
    n
}

#[test]
fn duplicates_return_the_original_offsets_and_append_nothing() {
    block_on(async {
        let mut log = PartitionLog::open(MemStorage::new(), config(), NOW)
            .await
            .expect("open");
        let mut sent = Vec::new();
        let mut seq = 0;
        for i in 0..8 {
            append(&mut log, plain(2, NOW)).await;
            let b = pbatch(7, 0, seq, 1 + i % 3, NOW + i as i64);
            let info = append(&mut log, b.clone()).await;
            assert!(!info.duplicate);
            sent.push((b, info));
            seq += 1 + (i % 3) as i32;
        }
        let end = log.next_offset();
        let batches = batch_count(&log).await;
        // The last CACHED_BATCHES batches are recognised, with their offsets and timestamps.
        for (b, first) in &sent[sent.len() - CACHED_BATCHES..] {
            let again = append(&mut log, b.clone()).await;
            assert!(again.duplicate);
            assert_eq!(
                (again.base_offset, again.last_offset, again.max_timestamp),
                (first.base_offset, first.last_offset, first.max_timestamp)
            );
        }
        // Older ones: appended earlier, offsets forgotten.
        for (b, _) in &sent[..sent.len() - CACHED_BATCHES] {
            assert!(matches!(
                log.append(b.clone(), NOW).await,
                Err(LogError::DuplicateSequence { producer_id: 7, .. })
            ));
        }
        assert_eq!(log.next_offset(), end, "duplicates appended nothing");
        assert_eq!(batch_count(&log).await, batches);
        // The sequence goes on after the retries.
        let next = append(&mut log, pbatch(7, 0, seq, 1, NOW)).await;
        assert_eq!((next.base_offset, next.duplicate), (end, false));
    });
}

#[test]
fn out_of_order_and_fenced_batches_are_refused_and_append_nothing() {
    block_on(async {
        let mut log = PartitionLog::open(MemStorage::new(), config(), NOW)
            .await
            .expect("open");
        // An unknown producer may start anywhere.
        append(&mut log, pbatch(3, 2, 100, 5, NOW)).await;
        let end = log.next_offset();
        let refused = [
            // A gap.
            (pbatch(3, 2, 106, 1, NOW), "gap"),
            // Overlapping the last batch with other bounds.
            (pbatch(3, 2, 103, 3, NOW), "overlap"),
            // A new epoch must start at 0.
            (pbatch(3, 3, 105, 1, NOW), "new epoch"),
            // An older epoch is fenced.
            (pbatch(3, 1, 105, 1, NOW), "fenced"),
        ];
        for (b, what) in refused {
            let err = log.append(b, NOW).await.expect_err(what);
            match what {
                "fenced" => assert!(
                    matches!(
                        err,
                        LogError::InvalidProducerEpoch {
                            producer_id: 3,
                            epoch: 1,
                            current_epoch: 2
                        }
                    ),
                    "{what}: {err}"
                ),
                "new epoch" => assert!(
                    matches!(
                        err,
                        LogError::OutOfOrderSequence {
                            expected: 0,
                            got: 105,
                            ..
                        }
                    ),
                    "{what}: {err}"
                ),
                _ => assert!(
                    matches!(err, LogError::OutOfOrderSequence { expected: 105, .. }),
                    "{what}: {err}"
                ),
            }
            assert!(!err.to_string().is_empty());
            assert_eq!(log.next_offset(), end, "{what}: nothing appended");
        }
        // A producer id without a base sequence is a malformed batch.
        let bad = pbatch(3, 2, -1, 1, NOW);
        assert!(matches!(
            log.append(bad, NOW).await,
            Err(LogError::InvalidSequence { .. })
        ));
        // Bumping the epoch from 0 works and fences the old epoch.
        append(&mut log, pbatch(3, 3, 0, 2, NOW)).await;
        assert!(matches!(
            log.append(pbatch(3, 2, 105, 1, NOW), NOW).await,
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(log.producers().get(3).map(|e| e.epoch), Some(3));
        assert_eq!(log.producers().get(3).map(|e| e.batches.len()), Some(1));
        // Sequences wrap past i32::MAX to 0.
        append(&mut log, pbatch(4, 0, i32::MAX - 1, 2, NOW)).await;
        assert!(matches!(
            log.append(pbatch(4, 0, 1, 1, NOW), NOW).await,
            Err(LogError::OutOfOrderSequence { expected: 0, .. })
        ));
        append(&mut log, pbatch(4, 0, 0, 1, NOW)).await;
        // Batches without a producer id bypass all of it.
        append(&mut log, plain(1, NOW)).await;
        assert_eq!(log.producers().len(), 2);
    });
}

/// The producer state a log holding `batches` (oldest first) must have, derived directly.
fn state_of(batches: &[(BatchMetadata, i64, i16)], log_start: i64) -> ProducerStateTable {
    let mut t = ProducerStateTable::new();
    for &(m, pid, epoch) in batches {
        t.record(pid, epoch, m);
    }
    t.retain_from(log_start);
    t
}

fn meta_of(info: &AppendInfo, seq: i32, count: usize) -> BatchMetadata {
    BatchMetadata {
        first_seq: seq,
        last_seq: last_sequence(seq, count as i32 - 1),
        base_offset: info.base_offset,
        last_offset: info.last_offset,
        max_timestamp: info.max_timestamp,
    }
}

#[test]
fn state_survives_close_roll_crash_and_a_lost_tail() {
    block_on(async {
        let mut storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("open");
        let mut appended = Vec::new();
        let mut seqs = [0i32; 3];
        let mut sent = Vec::new();
        for i in 0..40 {
            let pid = (i % 3) as i64;
            let count = 1 + i % 4;
            let b = pbatch(pid, 0, seqs[pid as usize], count, NOW + i as i64);
            let info = append(&mut log, b.clone()).await;
            appended.push((meta_of(&info, seqs[pid as usize], count), pid, 0i16));
            sent.push(b);
            seqs[pid as usize] += count as i32;
        }
        assert!(log.segment_count() >= 3, "small segments rolled");
        assert_eq!(log.producers(), &state_of(&appended, 0));
        let snapshots = log.producer_snapshots();
        assert_eq!(snapshots.len(), 2, "only the newest two are kept");
        assert_eq!(snapshots[1], *log.segment_bases().last().expect("active"));

        // Clean close and reopen: from the close snapshot, nothing to scan.
        log.close().await.expect("close");
        log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("reopen");
        assert!(log.recovery().clean);
        assert_eq!(log.producers(), &state_of(&appended, 0));
        assert!(append(&mut log, sent[39].clone()).await.duplicate);

        // A roll, more appends, then a crash after a sync: the snapshot of the roll plus a
        // scan of the active segment.
        log.roll(NOW).await.expect("roll");
        for i in 40..46 {
            let pid = (i % 3) as i64;
            let b = pbatch(pid, 0, seqs[pid as usize], 2, NOW + i as i64);
            let info = append(&mut log, b.clone()).await;
            appended.push((meta_of(&info, seqs[pid as usize], 2), pid, 0));
            sent.push(b);
            seqs[pid as usize] += 2;
        }
        log.sync(NOW).await.expect("sync");
        let crashed = storage.crash(1);
        drop(log);
        storage = crashed;
        log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("open after crash");
        assert!(!log.recovery().clean);
        assert_eq!(log.producers(), &state_of(&appended, 0));

        // Lose the tail: cut bytes off the last segment as a torn write would. The state must
        // describe exactly the batches that survived.
        let end_before = log.next_offset();
        drop(log);
        let last = storage
            .file_names()
            .into_iter()
            .filter(|n| n.ends_with(".log"))
            .max()
            .expect("a segment");
        let mut bytes = storage.file_bytes(&last).expect("segment");
        let cut = bytes.len() - 150;
        bytes.truncate(cut);
        storage.set_file_bytes(&last, bytes);
        log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("open after losing the tail");
        let end = log.next_offset();
        assert!(end < end_before);
        let survived: Vec<_> = appended
            .iter()
            .copied()
            .filter(|(m, _, _)| m.last_offset < end)
            .collect();
        assert!(survived.len() < appended.len());
        assert_eq!(log.producers(), &state_of(&survived, 0));
        // The lost batch is appended anew on retry; a surviving one is a duplicate.
        let lost = appended.len() - 1;
        let lost_first = survived.len();
        let again = append(&mut log, sent[lost_first].clone()).await;
        assert!(!again.duplicate, "a lost batch is not a duplicate");
        assert_eq!(again.base_offset, end);
        assert!(append(&mut log, sent[lost_first].clone()).await.duplicate);
        assert!(
            append(&mut log, sent[lost_first - 1].clone())
                .await
                .duplicate
        );
        assert!(lost >= lost_first);
    });
}

#[test]
fn corrupt_snapshots_are_skipped_and_truncation_and_retention_prune_them() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("open");
        let mut appended = Vec::new();
        let mut seq = 0;
        for i in 0..30 {
            let b = pbatch(9, 1, seq, 3, NOW + i);
            let info = append(&mut log, b).await;
            appended.push((meta_of(&info, seq, 3), 9i64, 1i16));
            seq += 3;
        }
        let snapshots = log.producer_snapshots();
        assert_eq!(snapshots.len(), 2);
        log.sync(NOW).await.expect("sync");
        drop(log);
        // Damage the newest snapshot: the older one and a longer scan stand in.
        let name = snapshot_name(snapshots[1]);
        let mut bytes = storage.file_bytes(&name).expect("snapshot");
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        storage.set_file_bytes(&name, bytes);
        let log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("open");
        assert_eq!(log.recovery().snapshots_skipped, 1);
        assert_eq!(log.producer_snapshots(), vec![snapshots[0]]);
        assert!(
            storage.file_bytes(&name).is_none(),
            "the bad one is deleted"
        );
        assert_eq!(log.producers(), &state_of(&appended, 0));
        // Both gone: a full scan.
        storage.set_file_bytes(&snapshot_name(snapshots[0]), b"junk".to_vec());
        assert_eq!(log.next_offset(), appended[29].0.last_offset + 1);
        drop(log);
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("open");
        assert_eq!(log.recovery().snapshots_skipped, 1);
        assert_eq!(log.producers(), &state_of(&appended, 0));

        // Truncation drops the snapshots above the new end and rolls the state back.
        for _ in 0..6 {
            log.roll(NOW).await.expect("roll");
            let b = pbatch(9, 1, seq, 3, NOW);
            let info = append(&mut log, b).await;
            appended.push((meta_of(&info, seq, 3), 9, 1));
            seq += 3;
        }
        let to = appended[20].0.base_offset + 1;
        log.truncate_to(to, NOW).await.expect("truncate");
        assert_eq!(log.next_offset(), appended[20].0.base_offset);
        appended.truncate(20);
        assert!(log
            .producer_snapshots()
            .iter()
            .all(|&s| s <= log.next_offset()));
        assert_eq!(log.producers(), &state_of(&appended, 0));
        assert!(matches!(
            log.append(pbatch(9, 1, seq, 3, NOW), NOW).await,
            Err(LogError::OutOfOrderSequence { .. })
        ));
        // Retention: snapshots below the start go, and so do batches below it.
        for _ in 0..3 {
            log.roll(NOW).await.expect("roll");
            let s = appended.last().map_or(0, |a| a.0.last_seq + 1);
            let info = append(&mut log, pbatch(9, 1, s, 3, NOW)).await;
            appended.push((meta_of(&info, s, 3), 9, 1));
        }
        let start = appended[appended.len() - 2].0.last_offset;
        log.delete_before(start).await.expect("delete_before");
        assert!(log.producer_snapshots().iter().all(|&s| s >= start));
        assert_eq!(log.producers(), &state_of(&appended, start));
        assert_eq!(log.producers().get(9).map(|e| e.batches.len()), Some(2));
        log.sync(NOW).await.expect("sync");
        drop(log);
        let log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("reopen");
        assert_eq!(log.producers(), &state_of(&appended, start));
    });
}

#[test]
fn idle_producers_expire() {
    block_on(async {
        let config = LogConfig {
            producer_id_expiration_ms: 60_000,
            ..config()
        };
        let mut log = PartitionLog::open(MemStorage::new(), config, NOW)
            .await
            .expect("open");
        append(&mut log, pbatch(1, 0, 0, 2, NOW)).await;
        append(&mut log, pbatch(2, 0, 0, 2, NOW + 30_000)).await;
        // Producer 1's last activity is its batch's largest timestamp, NOW + 1.
        assert_eq!(log.expire_producers(NOW + 60_000), 0);
        assert_eq!(log.expire_producers(NOW + 60_001), 1);
        assert!(log.producers().get(1).is_none());
        // Forgotten: any sequence is accepted again.
        assert!(!append(&mut log, pbatch(1, 0, 77, 1, NOW)).await.duplicate);
        // Retention passes expire too.
        log.enforce_retention(NOW + 90_001)
            .await
            .expect("retention");
        assert!(log.producers().get(2).is_none());
    });
}

#[test]
fn compaction_keeps_what_a_replay_needs() {
    block_on(async {
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            delete_retention_ms: 0,
            ..config()
        };
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config.clone(), NOW)
            .await
            .expect("open");
        // Producer 5 writes keys that producer 6 overwrites later, so all of producer 5's
        // records go; its last batch must stay as a header.
        let mut b = BatchBuilder::new(Compression::None).producer(5, 2, 40);
        b.push(NOW, Some(b"shared"), Some(b"old"), &[]);
        b.push(NOW + 1, Some(b"shared2"), Some(b"old"), &[]);
        let first = append(&mut log, b.build().expect("build")).await;
        let mut b = BatchBuilder::new(Compression::None).producer(5, 2, 42);
        b.push(NOW + 2, Some(b"shared"), Some(b"older"), &[]);
        let five = append(&mut log, b.build().expect("build")).await;
        let mut seq = 0;
        for i in 0..20 {
            let mut b = BatchBuilder::new(Compression::None).producer(6, 0, seq);
            b.push(NOW + 10 + i, Some(b"shared"), Some(&[1u8; 300]), &[]);
            b.push(NOW + 10 + i, Some(b"shared2"), Some(&[1u8; 300]), &[]);
            append(&mut log, b.build().expect("build")).await;
            seq += 2;
        }
        log.roll(NOW).await.expect("roll");
        let before = log.producers().clone();
        let outcome = log.compact(NOW + 100).await.expect("compact");
        assert!(outcome.records_removed > 0);
        assert_eq!(
            log.producers(),
            &before,
            "compaction leaves the live state alone"
        );
        // The first batch of producer 5 went; its last is kept without records.
        let read = log.read(five.base_offset, 1).await.expect("read");
        let view = RecordBatch::parse(&read.batches[0]).expect("parse");
        assert_eq!(view.base_offset(), five.base_offset);
        assert_eq!(view.records_count(), 0);
        assert_eq!(view.header().producer_id(), 5);
        assert_eq!(view.header().base_sequence(), 42);
        assert_eq!(view.max_timestamp(), five.max_timestamp);
        assert!(first.base_offset < five.base_offset);
        // Without snapshots a replay goes through the compacted segments and still finds
        // every producer's epoch and next sequence.
        drop(log);
        for name in storage.file_names() {
            if name.ends_with(".snapshot") {
                storage.set_file_bytes(&name, Vec::new());
            }
        }
        let mut log = PartitionLog::open(storage.clone(), config.clone(), NOW)
            .await
            .expect("open");
        for (pid, entry) in before.iter() {
            let got = log.producers().get(pid).expect("producer replayed");
            assert_eq!(got.epoch, entry.epoch);
            assert_eq!(got.last(), entry.last());
        }
        assert!(matches!(
            log.append(pbatch(5, 2, 44, 1, NOW), NOW).await,
            Err(LogError::OutOfOrderSequence { expected: 43, .. })
        ));
        assert!(append(&mut log, pbatch(5, 2, 43, 1, NOW)).await.base_offset > 0);
        // A second pass drops the header once producer 5 has a later batch.
        let mut b = BatchBuilder::new(Compression::None).producer(5, 2, 44);
        b.push(NOW + 50, Some(b"shared"), Some(b"newest"), &[]);
        append(&mut log, b.build().expect("build")).await;
        log.roll(NOW).await.expect("roll");
        log.compact(NOW + 100).await.expect("compact");
        let read = log.read(five.base_offset, 1).await.expect("read");
        let view = RecordBatch::parse(&read.batches[0]).expect("parse");
        assert_ne!(
            view.header().producer_id(),
            5,
            "stale header merged into a gap"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Seeded random test against a model.

#[derive(Clone, Debug)]
struct ModelBatch {
    base: i64,
    last: i64,
    max_ts: i64,
    /// (producer id, epoch, first sequence, last sequence)
    producer: Option<(i64, i16, i32, i32)>,
}

struct Model {
    batches: Vec<ModelBatch>,
    next_offset: i64,
    log_start: i64,
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Append,
    Duplicate(i64, i64),
    OutOfOrder(i32),
    Fenced,
    OldDuplicate,
}

impl Model {
    /// Producer `pid`'s batches still in the log of its latest epoch, last CACHED_BATCHES.
    fn recent(&self, pid: i64) -> Vec<(i16, i32, i32, i64, i64, i64)> {
        let mine: Vec<_> = self
            .batches
            .iter()
            .filter(|b| b.last >= self.log_start)
            .filter_map(|b| {
                b.producer
                    .filter(|p| p.0 == pid)
                    .map(|(_, e, f, l)| (e, f, l, b.base, b.last, b.max_ts))
            })
            .collect();
        let Some(&(epoch, ..)) = mine.last() else {
            return Vec::new();
        };
        let same = mine.iter().rev().take_while(|b| b.0 == epoch).count();
        let tail = &mine[mine.len() - same..];
        tail[tail.len().saturating_sub(CACHED_BATCHES)..].to_vec()
    }

    fn verdict(&self, pid: i64, epoch: i16, first: i32, last: i32) -> Verdict {
        let recent = self.recent(pid);
        let Some(&(cur, _, last_seq, ..)) = recent.last() else {
            return Verdict::Append;
        };
        if epoch == cur {
            if let Some(b) = recent.iter().find(|b| b.1 == first && b.2 == last) {
                return Verdict::Duplicate(b.3, b.4);
            }
        }
        if epoch < cur {
            return Verdict::Fenced;
        }
        if epoch > cur {
            return if first == 0 {
                Verdict::Append
            } else {
                Verdict::OutOfOrder(0)
            };
        }
        let expected = if last_seq == i32::MAX {
            0
        } else {
            last_seq + 1
        };
        if first == expected {
            return Verdict::Append;
        }
        let oldest = i64::from(recent[0].1);
        let behind = (oldest - i64::from(last)).rem_euclid(1 << 31);
        if behind > 0 && behind <= 1 << 30 {
            Verdict::OldDuplicate
        } else {
            Verdict::OutOfOrder(expected)
        }
    }

    /// The state the log must hold, from the model's batches.
    fn state(&self) -> BTreeMap<i64, (i16, Vec<BatchMetadata>)> {
        let mut pids: Vec<i64> = self
            .batches
            .iter()
            .filter_map(|b| b.producer.map(|p| p.0))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .filter_map(|pid| {
                let recent = self.recent(pid);
                let epoch = recent.first()?.0;
                let metas = recent
                    .iter()
                    .map(|&(_, f, l, base, last, ts)| BatchMetadata {
                        first_seq: f,
                        last_seq: l,
                        base_offset: base,
                        last_offset: last,
                        max_timestamp: ts,
                    })
                    .collect();
                Some((pid, (epoch, metas)))
            })
            .collect()
    }

    /// Keeps the batches below the log's end (after a crash or truncation).
    fn cut(&mut self, end: i64, seed: u64, what: &str) {
        let kept = self.batches.iter().take_while(|b| b.last < end).count();
        if kept < self.batches.len() {
            assert_eq!(
                end, self.batches[kept].base,
                "seed {seed}: {what}: the log ends at a batch boundary"
            );
        } else {
            assert_eq!(end, self.next_offset, "seed {seed}: {what}: log grew");
        }
        self.batches.truncate(kept);
        self.next_offset = end;
    }
}

fn table_state(t: &ProducerStateTable) -> BTreeMap<i64, (i16, Vec<BatchMetadata>)> {
    t.iter()
        .map(|(pid, e)| (pid, (e.epoch, e.batches.iter().copied().collect())))
        .collect()
}

struct Client {
    pid: i64,
    epoch: i16,
    next_seq: i32,
    sent: Vec<(Bytes, i16, i32, i32)>,
}

fn random_config(rng: &mut SmallRng) -> LogConfig {
    LogConfig {
        segment_bytes: rng.gen_range(1500..8000),
        segment_ms: None,
        index_interval_bytes: rng.gen_range(100..1500),
        flush: FlushPolicy::Never,
        retention_ms: None,
        write_chunk_bytes: 4096,
        writes_in_flight_max: rng.gen_range(1..3),
        preallocate_bytes: if rng.gen_bool(0.5) { 0 } else { 8192 },
        read_io_bytes: 4096,
        cache_bytes_max: rng.gen_range(0..8000),
        ..LogConfig::default()
    }
}

fn run(seed: u64, ops: usize) {
    block_on(async move {
        let mut rng = SmallRng::seed_from_u64(seed);
        let config = random_config(&mut rng);
        let mut storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config.clone(), NOW)
            .await
            .expect("open");
        let mut model = Model {
            batches: Vec::new(),
            next_offset: 0,
            log_start: 0,
        };
        let mut clients: Vec<Client> = (0..4)
            .map(|i| Client {
                pid: 1000 + i,
                epoch: 0,
                // One producer runs across the i32::MAX wrap.
                next_seq: if i == 3 { i32::MAX - 40 } else { 0 },
                sent: Vec::new(),
            })
            .collect();
        let mut ts = NOW;
        let trace = std::env::var("QUIVER_TRACE").is_ok();
        for step in 0..ops {
            let op = rng.gen_range(0..100);
            if trace {
                eprintln!(
                    "step {step} op {op}: end {} start {} segments {:?} snapshots {:?}",
                    log.next_offset(),
                    log.log_start_offset(),
                    log.segment_bases(),
                    log.producer_snapshots()
                );
            }
            match op {
                0..=49 => {
                    ts += rng.gen_range(0..5);
                    let c = rng.gen_range(0..clients.len());
                    let kind = rng.gen_range(0..100);
                    let client = &mut clients[c];
                    let (bytes, epoch, first, last) = if kind < 25 && !client.sent.is_empty() {
                        // A retry of one of the last few batches sent.
                        let from = client.sent.len().saturating_sub(CACHED_BATCHES + 3);
                        client.sent[rng.gen_range(from..client.sent.len())].clone()
                    } else {
                        let (epoch, seq) = match kind {
                            25..=34 => (client.epoch, {
                                let gap = rng.gen_range(1..4);
                                if client.next_seq > i32::MAX - gap {
                                    0
                                } else {
                                    client.next_seq + gap
                                }
                            }),
                            35..=39 if client.epoch > 0 => (client.epoch - 1, client.next_seq),
                            40..=43 => (client.epoch + 1, 0),
                            44..=45 => (client.epoch + 1, 3),
                            _ => (client.epoch, client.next_seq),
                        };
                        let count = rng.gen_range(1..5);
                        let b = pbatch(client.pid, epoch, seq, count, ts).freeze();
                        let last = last_sequence(seq, count as i32 - 1);
                        client.sent.push((b.clone(), epoch, seq, last));
                        (b, epoch, seq, last)
                    };
                    let expected = model.verdict(client.pid, epoch, first, last);
                    let end = log.next_offset();
                    let got = match log.append(BytesMut::from(&bytes[..]), NOW).await {
                        Ok(info) if info.duplicate => {
                            Verdict::Duplicate(info.base_offset, info.last_offset)
                        }
                        Ok(info) => {
                            assert_eq!(info.base_offset, end, "seed {seed}: base offset");
                            model.batches.push(ModelBatch {
                                base: info.base_offset,
                                last: info.last_offset,
                                max_ts: info.max_timestamp,
                                producer: Some((client.pid, epoch, first, last)),
                            });
                            model.next_offset = info.last_offset + 1;
                            client.epoch = epoch;
                            client.next_seq = if last == i32::MAX { 0 } else { last + 1 };
                            Verdict::Append
                        }
                        Err(LogError::OutOfOrderSequence { expected, .. }) => {
                            Verdict::OutOfOrder(expected)
                        }
                        Err(LogError::InvalidProducerEpoch { .. }) => Verdict::Fenced,
                        Err(LogError::DuplicateSequence { .. }) => Verdict::OldDuplicate,
                        Err(e) => panic!("seed {seed}: append: {e}"),
                    };
                    assert_eq!(
                        got, expected,
                        "seed {seed} step {step}: producer {} epoch {epoch} seqs {first}..={last}",
                        client.pid
                    );
                    if got != Verdict::Append {
                        assert_eq!(log.next_offset(), end, "seed {seed}: refused yet appended");
                    }
                    if matches!(got, Verdict::OutOfOrder(_)) && rng.gen_bool(0.5) {
                        // What a real client does after losing its sequence: a new epoch.
                        client.epoch = client.epoch.max(epoch) + 1;
                        client.next_seq = 0;
                    }
                }
                50..=57 => {
                    let info = log
                        .append(plain(rng.gen_range(1..4), ts), NOW)
                        .await
                        .expect("plain append");
                    model.batches.push(ModelBatch {
                        base: info.base_offset,
                        last: info.last_offset,
                        max_ts: info.max_timestamp,
                        producer: None,
                    });
                    model.next_offset = info.last_offset + 1;
                }
                58..=62 => log.roll(NOW).await.expect("roll"),
                63..=66 => log.sync(NOW).await.expect("sync"),
                67..=71 => {
                    log.close().await.expect("close");
                    log = PartitionLog::open(storage.clone(), config.clone(), NOW)
                        .await
                        .expect("reopen");
                    assert!(log.recovery().clean);
                }
                72..=79 => {
                    // A crash, sometimes with a lost or damaged tail, sometimes with the
                    // newest snapshot damaged.
                    let crashed = storage.crash(rng.gen());
                    drop(log);
                    storage = crashed;
                    if rng.gen_bool(0.3) {
                        let last = storage
                            .file_names()
                            .into_iter()
                            .filter(|n| n.ends_with(".log"))
                            .max()
                            .expect("a segment");
                        let mut bytes = storage.file_bytes(&last).expect("segment");
                        if !bytes.is_empty() {
                            let from = bytes.len().saturating_sub(rng.gen_range(1..3000));
                            if rng.gen_bool(0.5) {
                                bytes.truncate(from);
                            } else {
                                bytes[from..].fill(0);
                            }
                            storage.set_file_bytes(&last, bytes);
                        }
                    }
                    if rng.gen_bool(0.2) {
                        if let Some(name) = storage
                            .file_names()
                            .into_iter()
                            .filter(|n| n.ends_with(".snapshot"))
                            .max()
                        {
                            let mut bytes = storage.file_bytes(&name).expect("snapshot");
                            if !bytes.is_empty() {
                                let i = rng.gen_range(0..bytes.len());
                                bytes[i] ^= 1 << rng.gen_range(0..8);
                            }
                            storage.set_file_bytes(&name, bytes);
                        }
                    }
                    log = PartitionLog::open(storage.clone(), config.clone(), NOW)
                        .await
                        .unwrap_or_else(|e| panic!("seed {seed}: open after crash: {e}"));
                    model.cut(log.next_offset(), seed, "crash");
                    model.log_start = log.log_start_offset();
                }
                80..=87 => {
                    if model.next_offset > model.log_start {
                        let to = rng.gen_range(model.log_start..=model.next_offset);
                        log.truncate_to(to, NOW)
                            .await
                            .unwrap_or_else(|e| panic!("seed {seed}: truncate {to}: {e}"));
                        model.cut(log.next_offset(), seed, "truncate");
                        model.log_start = model.log_start.min(model.next_offset);
                        assert!(
                            log.producer_snapshots()
                                .iter()
                                .all(|&s| s <= log.next_offset()),
                            "seed {seed}: a snapshot above the end survived truncation"
                        );
                    }
                }
                88..=91 => {
                    if model.next_offset > model.log_start {
                        let to = rng.gen_range(model.log_start..=model.next_offset);
                        log.delete_before(to).await.expect("delete_before");
                        model.log_start = to;
                        assert!(
                            log.producer_snapshots().iter().all(|&s| s >= to),
                            "seed {seed}: a snapshot below the start survived"
                        );
                    }
                }
                _ => {
                    // Reopen without closing: recovery from the last roll's snapshot.
                    let durable = log.durable_offset();
                    drop(log);
                    log = PartitionLog::open(storage.clone(), config.clone(), NOW)
                        .await
                        .expect("reopen unclean");
                    assert!(log.next_offset() >= durable.min(model.next_offset));
                    model.cut(log.next_offset(), seed, "unclean reopen");
                    model.log_start = log.log_start_offset();
                }
            }
            assert_eq!(log.next_offset(), model.next_offset, "seed {seed}: end");
            assert_eq!(
                table_state(log.producers()),
                model.state(),
                "seed {seed} step {step} op {op}: producer state"
            );
            assert!(
                log.producer_snapshots().len() <= 2,
                "seed {seed}: at most two snapshots"
            );
        }
    });
}

fn seeds() -> Vec<u64> {
    match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
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
fn random_producers_match_the_model() {
    for seed in seeds() {
        let result = std::panic::catch_unwind(|| run(seed, 300));
        if result.is_err() {
            panic!("failing seed: {seed} (replay with QUIVER_SEED={seed})");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real files.

fn scratch(name: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .expect("scratch dir")
}

#[test]
fn producer_state_survives_reopen_on_real_files() {
    let dir = scratch("idempotence");
    let path = dir.path().to_path_buf();
    let config = LogConfig {
        segment_bytes: 4 << 10,
        ..LogConfig::default()
    };
    // Round 0 appends and closes cleanly; round 1 checks, appends, rolls and drops the log
    // without closing; round 2 recovers from the roll's snapshot plus a scan.
    let mut sent: Vec<(Bytes, i64)> = Vec::new();
    for round in 0..3 {
        let path = path.clone();
        let config = config.clone();
        let before = sent.clone();
        let exec = ExecutorConfig {
            name: format!("idem-{round}"),
            ..Default::default()
        };
        sent = exec
            .spawn(move || async move {
                prepare_executor(&path).await.expect("prepare");
                let storage = DmaStorage::open(&path).expect("dir");
                let mut log = PartitionLog::open(storage, config, NOW)
                    .await
                    .expect("open");
                assert_eq!(log.recovery().clean, round == 1, "round {round}");
                // Every batch of the last CACHED_BATCHES per producer is a duplicate now.
                for (bytes, base) in before.iter().rev().take(CACHED_BATCHES) {
                    let info = log
                        .append(BytesMut::from(&bytes[..]), NOW)
                        .await
                        .expect("retry");
                    assert!(info.duplicate, "round {round}: retry at {base}");
                    assert_eq!(info.base_offset, *base);
                }
                let mut sent = before;
                let mut seq = sent.len() as i32 * 3;
                for i in 0..20 {
                    let b = pbatch(42, 0, seq, 3, NOW + i);
                    let info = log.append(b.clone(), NOW).await.expect("append");
                    assert!(!info.duplicate);
                    sent.push((b.freeze(), info.base_offset));
                    seq += 3;
                }
                assert!(log.segment_count() > 1, "rolled");
                if round == 0 {
                    log.close().await.expect("close");
                } else {
                    log.roll(NOW).await.expect("roll");
                    let b = pbatch(42, 0, seq, 3, NOW);
                    let info = log.append(b.clone(), NOW).await.expect("append");
                    sent.push((b.freeze(), info.base_offset));
                    log.sync(NOW).await.expect("sync");
                    drop(log);
                }
                sent
            })
            .expect("executor ran");
    }
}

#[test]
fn partitions_answer_retries_with_the_original_offset() {
    use quiver_engine::partition::{Partition, PartitionError};
    let dir = scratch("idempotence-partition");
    let path = dir.path().to_path_buf();
    ExecutorConfig {
        name: "idem-partition".into(),
        ..Default::default()
    }
    .spawn(move || async move {
        prepare_executor(&path).await.expect("prepare");
        let p = Partition::open(&path, "t", 0, LogConfig::default(), NOW)
            .await
            .expect("open");
        let first = pbatch(11, 0, 0, 2, NOW).freeze();
        let second = pbatch(11, 0, 2, 3, NOW).freeze();
        p.append(vec![plain(4, NOW).freeze()], NOW)
            .await
            .expect("plain");
        let a = p
            .append(vec![first.clone(), second.clone()], NOW)
            .await
            .expect("append");
        assert_eq!((a.base_offset, a.next_offset, a.duplicate), (4, 9, false));
        p.append(vec![plain(1, NOW).freeze()], NOW)
            .await
            .expect("plain");
        // The retry of the whole produce: nothing appended, the original offsets.
        let r = p
            .append(vec![first, second.clone()], NOW)
            .await
            .expect("retry");
        assert_eq!((r.base_offset, r.next_offset, r.duplicate), (4, 9, true));
        assert_eq!(p.log_end_offset(), 10);
        assert_eq!(p.stats().records_in, 10, "duplicates are not counted");
        // Typed errors reach the caller; the partition stays online.
        let gap = pbatch(11, 0, 9, 1, NOW).freeze();
        match p.append(vec![gap], NOW).await {
            Err(PartitionError::Log(LogError::OutOfOrderSequence { expected: 5, .. })) => {}
            other => panic!("expected an out-of-order error, got {other:?}"),
        }
        let fenced = pbatch(11, -1, 5, 1, NOW).freeze();
        assert!(matches!(
            p.append(vec![fenced], NOW).await,
            Err(PartitionError::Log(LogError::InvalidProducerEpoch { .. }))
        ));
        let next = p
            .append(vec![pbatch(11, 0, 5, 1, NOW).freeze()], NOW)
            .await
            .expect("in sequence");
        assert_eq!((next.base_offset, next.duplicate), (10, false));
        p.close().await.expect("close");
    })
    .expect("executor ran");
}
