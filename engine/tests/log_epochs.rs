//! The partition log's leader-epoch history (`leader-epoch-checkpoint`): kept in step with
//! appends, truncation and retention, refused to go backwards, rebuilt from the batches when
//! the checkpoint is missing or damaged, and consistent with the log after simulated power
//! cuts (seeded; replay one with `QUIVER_SEED=<n>`).

use bytes::BytesMut;
use futures_lite::future::block_on;
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::epochs::{EpochCache, EpochEntry, UNDEFINED_EPOCH};
use quiver_engine::log::{
    FlushPolicy, LogConfig, LogError, MemStorage, PartitionLog, Storage, LEADER_EPOCH_FILE,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const NOW: i64 = 1_700_000_000_000;

fn batch(count: usize) -> BytesMut {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..count {
        b.push(
            NOW,
            Some(format!("k{i}").as_bytes()),
            Some(&[3u8; 200]),
            &[],
        );
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

fn entries(list: &[(i32, i64)]) -> Vec<EpochEntry> {
    list.iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        })
        .collect()
}

/// The history the batches themselves record, read from the log start.
async fn history_from_batches(log: &PartitionLog<MemStorage>) -> EpochCache {
    let mut epochs = EpochCache::new();
    let mut from = log.log_start_offset();
    while from < log.next_offset() {
        let read = log.read(from, 1 << 20).await.expect("read");
        for b in &read.batches {
            let view = RecordBatch::parse(b).expect("a stored batch parses");
            let epoch = view.header().partition_leader_epoch();
            if epoch >= 0 {
                epochs
                    .assign(epoch, view.base_offset().max(log.log_start_offset()))
                    .expect("stored epochs never go back");
            }
        }
        from = read.next_offset;
    }
    epochs
}

#[test]
fn epochs_follow_appends_truncation_and_retention() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        assert!(log.epochs().entries().is_empty());
        assert_eq!(log.end_offset_for_epoch(0), (UNDEFINED_EPOCH, -1));
        log.set_leader_epoch(0);
        for _ in 0..4 {
            log.append(batch(5), NOW).await.unwrap();
        }
        log.set_leader_epoch(2);
        for _ in 0..4 {
            log.append(batch(5), NOW).await.unwrap();
        }
        log.set_leader_epoch(5);
        log.append(batch(5), NOW).await.unwrap();
        assert_eq!(log.epochs().entries(), entries(&[(0, 0), (2, 20), (5, 40)]));
        assert_eq!(log.end_offset_for_epoch(2), (2, 40));
        assert_eq!(log.end_offset_for_epoch(3), (2, 40));
        assert_eq!(log.end_offset_for_epoch(5), (5, 45));
        assert_eq!(history_from_batches(&log).await, *log.epochs());

        // A deposed leader's epoch is refused and nothing is written.
        log.set_leader_epoch(4);
        let refused = log.append(batch(1), NOW).await;
        assert!(
            matches!(refused, Err(LogError::StaleLeaderEpoch(_))),
            "{refused:?}"
        );
        assert_eq!(log.next_offset(), 45);

        // Across a clean close, and the checkpoint alone is what carries it.
        log.close().await.unwrap();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        assert_eq!(log.epochs().entries(), entries(&[(0, 0), (2, 20), (5, 40)]));

        // Truncation drops the epochs that started at or after the cut, on disk too.
        log.truncate_to(40, NOW).await.unwrap();
        assert_eq!(log.epochs().entries(), entries(&[(0, 0), (2, 20)]));
        let stored = storage.file_bytes(LEADER_EPOCH_FILE).expect("checkpoint");
        assert_eq!(EpochCache::decode(&stored).unwrap(), *log.epochs());
        log.truncate_to(25, NOW).await.unwrap();
        assert_eq!(log.epochs().entries(), entries(&[(0, 0), (2, 20)]));

        // Retention moves the start of the epoch spanning the new log start.
        log.delete_before(22).await.unwrap();
        assert_eq!(log.epochs().entries(), entries(&[(2, 22)]));
        let stored = storage.file_bytes(LEADER_EPOCH_FILE).expect("checkpoint");
        assert_eq!(EpochCache::decode(&stored).unwrap(), *log.epochs());

        // A new leader epoch after a truncation starts where the log now ends.
        log.set_leader_epoch(7);
        log.append(batch(2), NOW).await.unwrap();
        assert_eq!(log.epochs().entries(), entries(&[(2, 22), (7, 25)]));
    });
}

#[test]
fn a_missing_or_damaged_checkpoint_is_rebuilt_from_the_batches() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        for epoch in [0, 1, 4] {
            log.set_leader_epoch(epoch);
            for _ in 0..3 {
                log.append(batch(4), NOW).await.unwrap();
            }
        }
        let expected = entries(&[(0, 0), (1, 12), (4, 24)]);
        assert_eq!(log.epochs().entries(), expected);
        log.close().await.unwrap();

        // Damaged: one flipped bit.
        let mut bytes = storage.file_bytes(LEADER_EPOCH_FILE).expect("checkpoint");
        bytes[6] ^= 0x10;
        storage.set_file_bytes(LEADER_EPOCH_FILE, bytes);
        let log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        assert_eq!(log.epochs().entries(), expected);
        log.close().await.unwrap();

        // Missing (a log from before the checkpoint existed): rebuilt, then written.
        storage.remove(LEADER_EPOCH_FILE).await.unwrap();
        assert!(storage.file_bytes(LEADER_EPOCH_FILE).is_none());
        let log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        assert_eq!(log.epochs().entries(), expected);
        let stored = storage.file_bytes(LEADER_EPOCH_FILE).expect("written back");
        assert_eq!(EpochCache::decode(&stored).unwrap().entries(), expected);
    });
}

#[test]
fn after_power_cuts_the_history_matches_the_surviving_batches() {
    let seeds: Vec<u64> = match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
        Err(_) => (0..40).map(|i| 0xE90C_0000 + i).collect(),
    };
    for seed in seeds {
        block_on(async {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut storage = MemStorage::new();
            let mut epoch = 0;
            for _round in 0..6 {
                let mut log = PartitionLog::open(storage.clone(), config(), NOW)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
                assert_eq!(
                    history_from_batches(&log).await,
                    *log.epochs(),
                    "seed {seed}: history differs from the batches after reopening"
                );
                for _ in 0..rng.gen_range(1..30) {
                    if rng.gen_range(0..5) == 0 {
                        epoch += rng.gen_range(1..3);
                    }
                    log.set_leader_epoch(epoch);
                    log.append(batch(rng.gen_range(1..6)), NOW).await.unwrap();
                    if rng.gen_range(0..8) == 0 {
                        log.sync(NOW).await.unwrap();
                    }
                    if rng.gen_range(0..20) == 0 && log.next_offset() > 0 {
                        let to = rng.gen_range(log.log_start_offset()..=log.next_offset());
                        log.truncate_to(to, NOW).await.unwrap();
                    }
                }
                assert_eq!(
                    history_from_batches(&log).await,
                    *log.epochs(),
                    "seed {seed}: history differs from the batches"
                );
                // A power cut: unsynced bytes may or may not survive.
                storage = storage.crash(rng.gen());
                drop(log);
            }
        });
    }
}

/// An idempotent producer's batch of `count` records from sequence `seq`.
fn idempotent(pid: i64, seq: i32, count: usize) -> BytesMut {
    let mut b = BatchBuilder::new(Compression::None).producer(pid, 0, seq);
    for i in 0..count {
        b.push(NOW, Some(format!("p{seq}-{i}").as_bytes()), Some(b"v"), &[]);
    }
    b.build().expect("build")
}

/// Copies everything `leader` has past `follower`'s end into `follower`, batch by batch.
async fn replicate(leader: &PartitionLog<MemStorage>, follower: &mut PartitionLog<MemStorage>) {
    while follower.next_offset() < leader.next_offset() {
        let read = leader.read(follower.next_offset(), 4096).await.unwrap();
        assert!(!read.batches.is_empty());
        for b in read.batches {
            follower
                .append_replicated(BytesMut::from(&b[..]), NOW)
                .await
                .unwrap();
        }
    }
}

#[test]
fn a_follower_stores_the_leaders_batches_as_they_are() {
    block_on(async {
        let mut leader = PartitionLog::open(MemStorage::new(), config(), NOW)
            .await
            .unwrap();
        let follower_storage = MemStorage::new();
        let mut follower = PartitionLog::open(follower_storage.clone(), config(), NOW)
            .await
            .unwrap();
        leader.set_leader_epoch(0);
        let mut seq = 0;
        for i in 0..10 {
            if i % 2 == 0 {
                leader.append(idempotent(7, seq, 3), NOW).await.unwrap();
                seq += 3;
            } else {
                leader.append(batch(2), NOW).await.unwrap();
            }
        }
        leader.set_leader_epoch(3);
        leader.append(idempotent(7, seq, 3), NOW).await.unwrap();
        let last_seq = seq;
        replicate(&leader, &mut follower).await;
        assert_eq!(follower.next_offset(), leader.next_offset());
        assert_eq!(follower.epochs(), leader.epochs());
        let all_leader = leader.read(0, 1 << 20).await.unwrap();
        let all_follower = follower.read(0, 1 << 20).await.unwrap();
        assert_eq!(
            all_follower.batches, all_leader.batches,
            "the same bytes, offsets and epochs"
        );

        // A batch that does not continue the log, a damaged one and an older epoch's are
        // refused and change nothing.
        let end = follower.next_offset();
        let mut stray = batch(1);
        quiver_engine::batch::stamp(&mut stray, end + 5, 3);
        assert!(matches!(
            follower.append_replicated(stray, NOW).await,
            Err(LogError::NotContiguous { .. })
        ));
        let mut damaged = batch(1);
        quiver_engine::batch::stamp(&mut damaged, end, 3);
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(
            follower.append_replicated(damaged, NOW).await,
            Err(LogError::InvalidBatch(_))
        ));
        let mut stale = batch(1);
        quiver_engine::batch::stamp(&mut stale, end, 1);
        assert!(matches!(
            follower.append_replicated(stale, NOW).await,
            Err(LogError::StaleLeaderEpoch(_))
        ));
        assert_eq!(follower.next_offset(), end);

        // The follower takes over: a retry of the producer's last batch is recognised.
        follower.set_leader_epoch(4);
        let retry = follower
            .append(idempotent(7, last_seq, 3), NOW)
            .await
            .unwrap();
        assert!(retry.duplicate, "{retry:?}");
        assert_eq!(retry.base_offset, end - 3);
        // And the history survives a restart of the follower.
        follower.close().await.unwrap();
        let reopened = PartitionLog::open(follower_storage, config(), NOW)
            .await
            .unwrap();
        assert_eq!(reopened.epochs(), leader.epochs());
    });
}

#[test]
fn a_rebuild_stops_at_damage_without_failing_the_open() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        log.set_leader_epoch(0);
        for _ in 0..3 {
            log.append(batch(1), NOW).await.unwrap();
        }
        log.set_leader_epoch(2);
        for _ in 0..3 {
            log.append(batch(1), NOW).await.unwrap();
        }
        let lens: Vec<usize> = log
            .read(0, 1 << 20)
            .await
            .unwrap()
            .batches
            .iter()
            .map(|b| b.len())
            .collect();
        log.close().await.unwrap();
        // Damage the fifth batch's records (a clean close trusts the index, so the open does
        // not see it; reads refuse the batch) and lose the checkpoint.
        let segment = format!("{:020}.log", 0);
        let mut bytes = storage.file_bytes(&segment).expect("segment");
        let fifth: usize = lens[..4].iter().sum();
        bytes[fifth + lens[4] - 3] ^= 0xFF;
        storage.set_file_bytes(&segment, bytes);
        storage.remove(LEADER_EPOCH_FILE).await.unwrap();
        let log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .expect("the open does not fail on damage past the trusted index");
        assert_eq!(log.epochs().entries(), entries(&[(0, 0), (2, 3)]));
        assert!(
            log.read(4, 1 << 20).await.is_err(),
            "the damaged batch is refused"
        );
        assert!(
            storage.file_bytes(LEADER_EPOCH_FILE).is_some(),
            "the rebuilt history is written, so the next open does not scan"
        );
    });
}

/// Every stored byte from the log start, batch after batch.
async fn all_bytes(log: &PartitionLog<MemStorage>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.next_offset() {
        let read = log.read(from, 1 << 20).await.unwrap();
        for b in &read.batches {
            out.extend_from_slice(b);
        }
        from = read.next_offset;
    }
    out
}

#[test]
fn a_follower_behind_the_leaders_start_resets_and_catches_up() {
    block_on(async {
        let mut leader = PartitionLog::open(MemStorage::new(), config(), NOW)
            .await
            .unwrap();
        let follower_storage = MemStorage::new();
        let mut follower = PartitionLog::open(follower_storage.clone(), config(), NOW)
            .await
            .unwrap();
        leader.set_leader_epoch(1);
        for _ in 0..3 {
            leader.append(batch(2), NOW).await.unwrap();
        }
        replicate(&leader, &mut follower).await;
        leader.set_leader_epoch(4);
        for _ in 0..30 {
            leader.append(batch(3), NOW).await.unwrap();
        }
        // The leader deletes what the follower still lacks, up to a batch boundary.
        let cut = leader.read(40, 1).await.unwrap();
        let start = RecordBatch::parse(&cut.batches[0]).unwrap().base_offset();
        leader.delete_before(start).await.unwrap();
        assert!(follower.next_offset() < leader.log_start_offset());
        assert!(follower.segment_count() >= 1);

        follower
            .reset_to(leader.log_start_offset(), NOW)
            .await
            .unwrap();
        assert_eq!(follower.log_start_offset(), start);
        assert_eq!(follower.next_offset(), start);
        assert!(follower
            .read(start, 1 << 20)
            .await
            .unwrap()
            .batches
            .is_empty());
        assert!(follower.epochs().entries().is_empty());
        replicate(&leader, &mut follower).await;
        assert_eq!(follower.epochs(), leader.epochs());
        assert_eq!(history_from_batches(&follower).await, *follower.epochs());
        let (a, b) = (all_bytes(&leader).await, all_bytes(&follower).await);
        assert!(
            !a.is_empty() && a == b,
            "the follower holds the leader's bytes from its start ({} and {} bytes)",
            a.len(),
            b.len()
        );
        follower.sync(NOW).await.unwrap();
        let end = follower.next_offset();
        let epochs = follower.epochs().clone();

        // A power cut after the reset: what was synced is there, from the new start.
        let crashed = follower_storage.crash(7);
        drop(follower);
        let reopened = PartitionLog::open(crashed, config(), NOW).await.unwrap();
        assert_eq!(reopened.log_start_offset(), start);
        assert_eq!(reopened.next_offset(), end);
        assert_eq!(*reopened.epochs(), epochs);
        let files = reopened.segment_bases();
        assert!(
            files.iter().all(|&b| b >= start),
            "old segments are gone: {files:?}"
        );
    });
}

#[test]
fn a_reset_interrupted_before_the_new_segment_reopens_without_a_hole() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        log.set_leader_epoch(2);
        for _ in 0..10 {
            log.append(batch(3), NOW).await.unwrap();
        }
        log.sync(NOW).await.unwrap();
        let end = log.next_offset();
        log.close().await.unwrap();
        // The reset recorded its new start, then the process died before removing anything.
        storage
            .write_meta("log-start-offset", &(end + 100).to_be_bytes())
            .await
            .unwrap();
        let mut log = PartitionLog::open(storage.clone(), config(), NOW)
            .await
            .unwrap();
        assert_eq!(log.log_start_offset(), end, "an empty log at the old end");
        assert_eq!(log.next_offset(), end);
        // Resetting again finishes the job.
        log.reset_to(end + 100, NOW).await.unwrap();
        log.close().await.unwrap();
        let log = PartitionLog::open(storage, config(), NOW).await.unwrap();
        assert_eq!(log.log_start_offset(), end + 100);
        assert_eq!(log.next_offset(), end + 100);
    });
}
