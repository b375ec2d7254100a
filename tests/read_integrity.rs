//! Regression tests for read-path integrity findings made by the crash and corruption tests:
//! flipped base offsets are refused, intact batches before a corrupt one are still served, a
//! stray empty segment past the log end leaves no hole, and extreme `max_bytes` do not overflow.
//! They run on `MemStorage`, so they are deterministic and need no disk.

use bytes::BytesMut;
use futures_lite::future::block_on;
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::log::{LogConfig, LogError, MemStorage, PartitionLog};

const SEGMENT: &str = "00000000000000000000.log";

fn batch(value: &[u8]) -> BytesMut {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(1_000, Some(b"k"), Some(value), &[]);
    builder.build().expect("a valid batch")
}

/// A cleanly closed log of three one-record batches (offsets 0, 1, 2), and where each batch
/// starts in its only segment file.
fn closed_log() -> (MemStorage, [usize; 3]) {
    block_on(async {
        let storage = MemStorage::new();
        let mut log = PartitionLog::open(storage.clone(), LogConfig::default(), 0)
            .await
            .expect("open");
        let mut positions = [0; 3];
        let mut at = 0;
        for (i, p) in positions.iter_mut().enumerate() {
            let b = batch(format!("value-{i}").as_bytes());
            *p = at;
            at += b.len();
            log.append(b, 0).await.expect("append");
        }
        log.close().await.expect("close");
        (storage, positions)
    })
}

fn flip(storage: &MemStorage, at: usize, mask: u8) {
    let mut bytes = storage.file_bytes(SEGMENT).expect("the segment");
    bytes[at] ^= mask;
    storage.set_file_bytes(SEGMENT, bytes);
}

/// Finding 1: `PartitionLog::read` checks each stored batch's CRC, which does not cover
/// `baseOffset`, but not that offsets continue. In a segment whose index is trusted (after a
/// clean close, and every sealed segment) a bit flipped in a batch's baseOffset is served as is.
/// Recovery's scan does check continuity, so an unclean open catches the same damage.
#[test]
fn reads_refuse_a_batch_whose_base_offset_does_not_follow() {
    let (storage, positions) = closed_log();
    // Base offset 1 -> 3: the low byte of the second batch's baseOffset, bit 1.
    flip(&storage, positions[1] + 7, 0b10);
    block_on(async {
        let log = PartitionLog::open(storage, LogConfig::default(), 0)
            .await
            .expect("open");
        match log.read(0, 1 << 20).await {
            Err(LogError::Corrupt { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
            Ok(read) => {
                let bases: Vec<i64> = read
                    .batches
                    .iter()
                    .map(|b| RecordBatch::parse(b).expect("parses").base_offset())
                    .collect();
                // Only the intact batch before the broken one is served.
                assert_eq!(bases, [0], "served batches with broken offsets");
            }
        }
    });
}

/// Finding 2: a read fails as a whole with `Corrupt` when the bytes it reads (the wanted bytes
/// plus two index intervals of slack) reach a corrupt batch, even if it starts at intact ones.
/// A consumer at offset 0 below a corrupt batch 2 can then never read offsets 0 and 1, although
/// they are intact; expected: the read returns them and only a read of batch 2 fails.
#[test]
fn a_read_serves_the_intact_batches_before_a_corrupt_one() {
    let (storage, positions) = closed_log();
    // A byte of the third batch's records, under its CRC.
    flip(&storage, positions[2] + 70, 0x01);
    block_on(async {
        let log = PartitionLog::open(storage, LogConfig::default(), 0)
            .await
            .expect("open");
        let read = log
            .read(0, 1 << 20)
            .await
            .expect("the intact batches 0 and 1 are readable");
        assert_eq!(read.next_offset, 2);
        assert!(matches!(
            log.read(2, 1 << 20).await,
            Err(LogError::Corrupt { .. })
        ));
    });
}

/// Finding 3 (low severity, needs a stray file): a segment file named past the log end, holding
/// nothing valid, becomes the empty active segment; the log end jumps to its base and the
/// offsets in between are a hole where every read returns nothing (a consumer there spins).
/// Expected: open refuses the gap, or drops the empty segment and keeps the end.
#[test]
fn a_segment_file_past_the_log_end_leaves_no_hole() {
    let (storage, _) = closed_log();
    storage.set_file_bytes("00000000000000001000.log", vec![0xAB; 100]);
    block_on(async {
        let log = PartitionLog::open(storage, LogConfig::default(), 0)
            .await
            .expect("open");
        let mut at = log.log_start_offset();
        while at < log.next_offset() {
            let read = log.read(at, 1 << 20).await.expect("read");
            assert!(
                !read.batches.is_empty(),
                "no batch at {at} below the log end {}: a hole",
                log.next_offset()
            );
            at = read.next_offset;
        }
    });
}

/// Finding 4 (debug builds only): `read` computes `max_bytes as u64 + slack` unchecked, so a
/// cold read with `max_bytes` near `usize::MAX` overflows (a panic with overflow checks on,
/// wrapping to a small window in release). Expected: a saturating window.
#[test]
fn a_read_with_the_largest_max_bytes_does_not_overflow() {
    let (storage, _) = closed_log();
    block_on(async {
        let log = PartitionLog::open(storage, LogConfig::default(), 0)
            .await
            .expect("open");
        let read = log.read(0, usize::MAX).await.expect("read");
        assert_eq!(read.next_offset, 3);
    });
}
