//! The controller quorum's durable Raft log (`cluster::metadata_log`): terms from the epoch
//! history, overwriting a conflicting suffix, refusing gaps and rewrites of committed entries,
//! hard state across restarts and crashes, compaction, and a damaged hard state refused.

use bytes::Bytes;
use futures_lite::future::block_on;
use quiver_engine::cluster::metadata_log::{
    HardState, LogEntry, MetadataLog, MetadataLogError, Snapshot, HARD_STATE_FILE, SNAPSHOT_FILE,
};
use quiver_engine::log::{MemStorage, Storage};

const NOW: i64 = 1_700_000_000_000;

fn entry(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index,
        term,
        data: Bytes::from(format!("e{index}t{term}")),
    }
}

fn entries(from: u64, terms: &[u64]) -> Vec<LogEntry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(from + i as u64, t))
        .collect()
}

#[test]
fn entries_terms_and_overwrites() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        assert_eq!((log.first_index(), log.last_index()), (1, 0));
        assert_eq!(log.term(0), Some(0), "index 0 is the empty log's origin");
        log.append(&entries(1, &[1, 1, 2, 2, 2, 3, 3]), NOW)
            .await
            .unwrap();
        assert_eq!(log.last_index(), 7);
        let terms: Vec<Option<u64>> = (0..=8).map(|i| log.term(i)).collect();
        assert_eq!(
            terms,
            vec![
                Some(0),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(2),
                Some(3),
                Some(3),
                None
            ]
        );
        let got = log.entries(2, 6, usize::MAX).await.unwrap();
        assert_eq!(got, entries(2, &[1, 2, 2, 2]));
        // A byte limit still returns at least one entry.
        assert_eq!(log.entries(3, 8, 1).await.unwrap(), entries(3, &[2]));

        // A new leader's entries from 5 on replace the conflicting suffix.
        log.append(&entries(5, &[4, 4]), NOW).await.unwrap();
        assert_eq!(log.last_index(), 6);
        assert_eq!(log.term(4), Some(2));
        assert_eq!(log.term(5), Some(4));
        assert_eq!(
            log.entries(1, 10, usize::MAX).await.unwrap(),
            entries(1, &[1, 1, 2, 2, 4, 4])
        );

        // Refused: a gap, terms going backwards, rewriting what is committed.
        assert!(matches!(
            log.append(&entries(8, &[4]), NOW).await,
            Err(MetadataLogError::Gap { .. })
        ));
        assert!(matches!(
            log.append(&[entry(7, 5), entry(8, 4)], NOW).await,
            Err(MetadataLogError::BadTerm { .. })
        ));
        log.set_hard_state(HardState {
            term: 4,
            vote: 2,
            commit: 5,
        })
        .await
        .unwrap();
        assert!(matches!(
            log.append(&entries(5, &[5]), NOW).await,
            Err(MetadataLogError::Protected { .. })
        ));
        assert_eq!(log.last_index(), 6, "refusals change nothing");

        // Across a restart: entries, terms and hard state.
        log.close().await.unwrap();
        let log = MetadataLog::open(storage, NOW).await.unwrap();
        assert_eq!(log.last_index(), 6);
        assert_eq!(log.term(6), Some(4));
        assert_eq!(
            log.hard_state(),
            HardState {
                term: 4,
                vote: 2,
                commit: 5
            }
        );
    });
}

#[test]
fn appended_entries_and_hard_state_survive_power_cuts() {
    for seed in 0..30u64 {
        block_on(async {
            let mut storage = MemStorage::new();
            let mut expected = Vec::new();
            let mut term = 1;
            let mut saved_term = 0;
            for round in 0..5u64 {
                let mut log = MetadataLog::open(storage.clone(), NOW)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed} round {round}: {e}"));
                assert_eq!(
                    log.entries(1, u64::MAX, usize::MAX).await.unwrap(),
                    expected,
                    "seed {seed} round {round}: every appended entry is back"
                );
                assert_eq!(
                    log.hard_state().term,
                    saved_term,
                    "seed {seed} round {round}"
                );
                term += 1;
                let next = log.last_index() + 1;
                let batch = entries(next, &vec![term; (seed % 4 + 1) as usize]);
                log.append(&batch, NOW).await.unwrap();
                expected.extend(batch);
                log.set_hard_state(HardState {
                    term,
                    vote: 1,
                    commit: 0,
                })
                .await
                .unwrap();
                saved_term = term;
                storage = storage.crash(seed * 31 + round);
            }
        });
    }
}

#[test]
fn compaction_keeps_the_last_compacted_term() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        log.append(&entries(1, &[1, 1, 2, 3, 3, 3]), NOW)
            .await
            .unwrap();
        log.compact(4).await.unwrap();
        assert_eq!(log.compacted(), (4, 3));
        assert_eq!(log.term(4), Some(3));
        assert_eq!(log.term(3), None, "compacted away");
        assert!(log.first_index() <= 5);
        assert_eq!(
            log.entries(5, 7, usize::MAX).await.unwrap(),
            entries(5, &[3, 3])
        );
        assert!(matches!(
            log.append(&entries(4, &[4]), NOW).await,
            Err(MetadataLogError::Protected { .. })
        ));
        log.close().await.unwrap();
        let log = MetadataLog::open(storage, NOW).await.unwrap();
        assert_eq!(log.compacted(), (4, 3));
        assert_eq!(log.term(4), Some(3));
        assert_eq!(log.last_index(), 6);
    });
}

#[test]
fn a_damaged_hard_state_is_refused_not_guessed() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        log.set_hard_state(HardState {
            term: 9,
            vote: 3,
            commit: 0,
        })
        .await
        .unwrap();
        log.close().await.unwrap();
        let mut bytes = storage.file_bytes(HARD_STATE_FILE).expect("written");
        bytes[9] ^= 0x01;
        storage.set_file_bytes(HARD_STATE_FILE, bytes);
        // A lost vote could let this node vote twice in a term: opening must fail loudly.
        assert!(matches!(
            MetadataLog::open(storage, NOW).await,
            Err(MetadataLogError::HardState(_))
        ));
    });
}

/// A snapshot file as the log writes it (version 1, index, term, data, CRC-32C).
fn snapshot_file(index: u64, term: u64, data: &[u8]) -> Vec<u8> {
    let mut body = vec![1u8];
    body.extend_from_slice(&index.to_be_bytes());
    body.extend_from_slice(&term.to_be_bytes());
    body.extend_from_slice(data);
    let mut for_crc = vec![0u8; quiver_engine::batch::CRC_START];
    for_crc.extend_from_slice(&body);
    let crc = quiver_engine::batch::compute_crc(&for_crc);
    body.extend_from_slice(&crc.to_be_bytes());
    body
}

#[test]
fn a_snapshot_drops_the_entries_it_covers_and_survives_reopen() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        log.append(&entries(1, &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3]), NOW)
            .await
            .unwrap();
        log.set_hard_state(HardState {
            term: 3,
            vote: 1,
            commit: 8,
        })
        .await
        .unwrap();
        let snap = Snapshot {
            index: 6,
            term: 2,
            data: Bytes::from_static(b"image at 6"),
        };
        log.save_snapshot(snap.clone(), NOW).await.unwrap();
        assert_eq!((log.first_index(), log.last_index()), (7, 10));
        assert_eq!(log.term(6), Some(2));
        assert_eq!(log.term(5), None, "covered entries are gone");
        let kept = log.entries(7, 11, usize::MAX).await.unwrap();
        assert_eq!(kept, entries(7, &[3, 3, 3, 3]));
        log.close().await.unwrap();

        let log = MetadataLog::open(storage, NOW).await.unwrap();
        assert_eq!(log.snapshot(), Some(&snap));
        assert_eq!((log.first_index(), log.last_index()), (7, 10));
        assert_eq!(log.hard_state().commit, 8);
    });
}

#[test]
fn a_leaders_snapshot_past_or_against_the_log_restarts_it() {
    block_on(async {
        // Past the end: the log restarts after the snapshot.
        let storage = MemStorage::new();
        let mut log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        log.append(&entries(1, &[1, 1, 2, 2, 2]), NOW)
            .await
            .unwrap();
        let snap = Snapshot {
            index: 20,
            term: 4,
            data: Bytes::from_static(b"image at 20"),
        };
        log.save_snapshot(snap.clone(), NOW).await.unwrap();
        assert_eq!((log.first_index(), log.last_index()), (21, 20));
        assert_eq!(log.term(20), Some(4));
        assert!(log.hard_state().commit >= 20);
        log.append(&entries(21, &[4, 5]), NOW).await.unwrap();
        log.close().await.unwrap();
        let log = MetadataLog::open(storage, NOW).await.unwrap();
        assert_eq!((log.first_index(), log.last_index()), (21, 22));
        assert_eq!(log.term(22), Some(5));
        assert_eq!(log.snapshot(), Some(&snap));

        // Against the log (its entry at the snapshot's index has another term): replaced.
        let mut log = MetadataLog::open(MemStorage::new(), NOW).await.unwrap();
        log.append(&entries(1, &[1, 1, 2, 2, 2, 2]), NOW)
            .await
            .unwrap();
        log.save_snapshot(
            Snapshot {
                index: 4,
                term: 3,
                data: Bytes::from_static(b"image at 4"),
            },
            NOW,
        )
        .await
        .unwrap();
        assert_eq!((log.first_index(), log.last_index()), (5, 4));
        assert_eq!(log.term(4), Some(3));
    });
}

#[test]
fn an_install_cut_short_is_finished_at_open_and_a_damaged_snapshot_refused() {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        log.append(&entries(1, &[1, 1, 1, 1, 1]), NOW)
            .await
            .unwrap();
        log.close().await.unwrap();
        // The snapshot became durable, then the process died before the log was reset.
        storage
            .write_meta(SNAPSHOT_FILE, &snapshot_file(9, 2, b"image at 9"))
            .await
            .unwrap();
        let log = MetadataLog::open(storage.clone(), NOW).await.unwrap();
        assert_eq!((log.first_index(), log.last_index()), (10, 9));
        assert_eq!(log.term(9), Some(2));
        assert!(log.hard_state().commit >= 9);
        log.close().await.unwrap();

        let mut damaged = snapshot_file(9, 2, b"image at 9");
        damaged[12] ^= 0xff;
        storage.write_meta(SNAPSHOT_FILE, &damaged).await.unwrap();
        match MetadataLog::open(storage, NOW).await {
            Err(MetadataLogError::Snapshot(reason)) => assert!(reason.contains("CRC")),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a damaged snapshot was accepted"),
        }
    });
}
