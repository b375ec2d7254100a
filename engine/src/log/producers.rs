//! Idempotent producer state (sans-IO): per producer id, its epoch and the last
//! [`CACHED_BATCHES`] batches it appended, so a retried batch is recognised and answered with
//! the offsets it got the first time, and a batch that skips or reorders sequences is refused.
//!
//! Rules (Kafka's, checked by [`ProducerStateTable::check`] for a batch with `producer_id >= 0`;
//! batches with `producer_id < 0` and control batches bypass all of this):
//! - an unknown producer id may start at any sequence: its state may have been expired
//!   (`producer.id.expiration.ms`) or removed with the log prefix holding its batches (as Kafka
//!   does since 2.5, KIP-360);
//! - same epoch and the same `(first_seq, last_seq)` as one of the cached batches: a duplicate,
//!   answered with that batch's offsets and not appended;
//! - an epoch lower than the producer's: fenced ([`SequenceError::InvalidProducerEpoch`]);
//! - an epoch higher than the producer's: the batch must start at sequence 0;
//! - same epoch: the batch must start right after the producer's last sequence (wrapping from
//!   `i32::MAX` to 0). A batch lying wholly before the oldest cached batch (within half the
//!   sequence space) was appended earlier but its offsets are forgotten:
//!   [`SequenceError::DuplicateSequence`] (wire `DUPLICATE_SEQUENCE_NUMBER`, which Kafka's
//!   clients treat as success without an offset). Anything else is
//!   [`SequenceError::OutOfOrderSequence`].
//!
//! A batch's sequences are `base_sequence ..= base_sequence + lastOffsetDelta` (wrapping), as
//! Kafka computes them: for a producer's batch `lastOffsetDelta + 1` is its record count, and
//! unlike the count it survives compaction.
//!
//! The table is a function of the log: replaying every batch of the log in order with
//! [`ProducerStateTable::record`] and then [`ProducerStateTable::retain_from`] the log start
//! gives the table the appends built (expiry aside: a replay may remember more old batches of
//! an expired producer, never a different epoch or next sequence). The log persists it as
//! snapshots ([`ProducerStateTable::encode`]) at segment rolls and clean close and rebuilds it
//! on open from the newest valid snapshot plus a scan of the batches after it.
//!
//! Snapshot file `<20-digit offset>.snapshot`, big-endian, the state as of `offset` (every batch
//! below it included, none at or after it):
//! ```text
//! magic "QPS1" | version u16 = 1 | offset i64 | producer count u32
//! per producer, ascending id: producer_id i64 | epoch i16 | batch count u8 (1..=5)
//!     per batch, oldest first: first_seq i32 | last_seq i32 | base_offset i64
//!                              | last_offset i64 | max_timestamp i64
//! crc32c u32 over every byte before it
//! ```

use std::collections::{BTreeMap, VecDeque};

use crate::batch::{compute_crc, CRC_START};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` bound for idempotence).
pub const CACHED_BATCHES: usize = 5;
/// File-name suffix of producer-state snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_MAGIC: &[u8; 4] = b"QPS1";
const SNAPSHOT_VERSION: u16 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 4 + 2 + 8 + 4;
const PRODUCER_BYTES: usize = 8 + 2 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8 + 8;
/// Size of the sequence space: sequences run over `0..=i32::MAX` and wrap to 0.
const SEQUENCE_SPACE: i64 = 1 << 31;

/// File name of the snapshot of the state as of `offset`.
pub fn snapshot_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// The offset named by a snapshot file name, if it is one.
pub fn parse_snapshot_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `seq + n` in the sequence space (wrapping past `i32::MAX` to 0).
pub fn add_sequence(seq: i32, n: i64) -> i32 {
    // In 0..2^31, so the cast is exact.
    (i64::from(seq) + n).rem_euclid(SEQUENCE_SPACE) as i32
}

/// Last sequence of a batch starting at `base_sequence` whose last offset delta is
/// `last_offset_delta`.
pub fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    add_sequence(base_sequence, i64::from(last_offset_delta))
}

/// One appended batch of a producer, as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of its first record.
    pub first_seq: i32,
    /// Sequence of its last record.
    pub last_seq: i32,
    /// Offset it was appended at.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its largest record timestamp.
    pub max_timestamp: i64,
}

/// What the table knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer's current epoch.
    pub epoch: i16,
    /// Its last batches of `epoch` still in the log, oldest first; never empty, at most
    /// [`CACHED_BATCHES`].
    pub batches: VecDeque<BatchMetadata>,
}

impl ProducerEntry {
    /// The last batch appended.
    pub fn last(&self) -> &BatchMetadata {
        self.batches
            .back()
            .expect("a producer entry holds at least one batch")
    }

    /// Last activity: the largest timestamp of the remembered batches (Kafka's
    /// `lastTimestamp`; record timestamps, so a replay of the log finds the same value).
    pub fn last_timestamp(&self) -> i64 {
        self.batches
            .iter()
            .map(|b| b.max_timestamp)
            .max()
            .unwrap_or(i64::MIN)
    }
}

/// The verdict on a batch that passed the sequence checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New: append it, then [`ProducerStateTable::record`] it.
    Append,
    /// A retry of a cached batch: do not append; answer with these offsets.
    Duplicate {
        /// Where the batch was appended the first time.
        base_offset: i64,
        /// Its last offset then.
        last_offset: i64,
        /// Its largest timestamp.
        max_timestamp: i64,
    },
}

/// Why a batch was refused (nothing was appended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The batch does not continue the producer's sequence.
    #[error(
        "out-of-order sequence from producer {producer_id} (epoch {epoch}): expected {expected}, \
         got {got}"
    )]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The sequence the batch had to start with.
        expected: i32,
        /// Its first sequence.
        got: i32,
    },
    /// The batch's epoch is older than the producer's: a newer producer instance fenced it.
    #[error(
        "producer {producer_id} is fenced: epoch {epoch} is older than its current epoch \
         {current_epoch}"
    )]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The producer's epoch in the log.
        current_epoch: i16,
    },
    /// The batch was appended earlier, before the batches whose offsets are still remembered.
    #[error(
        "sequences {first_seq}..={last_seq} of producer {producer_id} (epoch {epoch}) were \
         appended earlier; their offsets are no longer known"
    )]
    DuplicateSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's first sequence.
        first_seq: i32,
        /// Its last sequence.
        last_seq: i32,
    },
}

/// Why a snapshot could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad producer-state snapshot: {0}")]
pub struct SnapshotError(pub &'static str);

/// The state of every known producer. See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The state of `producer_id`, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every known producer, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&id, e)| (id, e))
    }

    /// Checks a batch of `producer_id` at `epoch` holding sequences `first_seq..=last_seq`
    /// against the producer's state (see the module doc for the rules).
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck, SequenceError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if epoch == entry.epoch {
            if let Some(b) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return Ok(SequenceCheck::Duplicate {
                    base_offset: b.base_offset,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                });
            }
        }
        if epoch < entry.epoch {
            return Err(SequenceError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current_epoch: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrderSequence {
                    producer_id,
                    epoch,
                    expected: 0,
                    got: first_seq,
                })
            };
        }
        let expected = add_sequence(entry.last().last_seq, 1);
        if first_seq == expected {
            return Ok(SequenceCheck::Append);
        }
        let oldest = entry.batches.front().map_or(expected, |b| b.first_seq);
        let behind = (i64::from(oldest) - i64::from(last_seq)).rem_euclid(SEQUENCE_SPACE);
        if behind > 0 && behind <= SEQUENCE_SPACE / 2 {
            return Err(SequenceError::DuplicateSequence {
                producer_id,
                epoch,
                first_seq,
                last_seq,
            });
        }
        Err(SequenceError::OutOfOrderSequence {
            producer_id,
            epoch,
            expected,
            got: first_seq,
        })
    }

    /// Records a batch of `producer_id` at `epoch` that was appended (after an
    /// [`SequenceCheck::Append`] verdict, or replayed from the log). A new epoch forgets the
    /// batches of the old one.
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchMetadata) {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(CACHED_BATCHES),
            });
        if entry.epoch != epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
    }

    /// Forgets every remembered batch below `log_start` and the producers left with none
    /// (their batches were deleted with the log prefix). Returns how many producers went.
    pub fn retain_from(&mut self, log_start: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            while e.batches.front().is_some_and(|b| b.last_offset < log_start) {
                e.batches.pop_front();
            }
            !e.batches.is_empty()
        });
        before - self.producers.len()
    }

    /// Drops producers idle for `expiration_ms` or longer at `now_ms` (`producer.id.expiration.ms`).
    /// Returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp()) < expiration_ms);
        before - self.producers.len()
    }

    /// The snapshot of this table as of `offset` (format in the module doc).
    pub fn encode(&self, offset: i64) -> Vec<u8> {
        let batches: usize = self.producers.values().map(|e| e.batches.len()).sum();
        let mut out = Vec::with_capacity(
            SNAPSHOT_HEADER_BYTES
                + self.producers.len() * PRODUCER_BYTES
                + batches * BATCH_BYTES
                + 4,
        );
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
        let count = u32::try_from(self.producers.len()).expect("fewer than 2^32 producers");
        out.extend_from_slice(&count.to_be_bytes());
        for (id, e) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.max_timestamp.to_be_bytes());
            }
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a snapshot, which must be of the state as of `offset` (the offset in its name),
    /// checking its CRC and that it describes only batches below `offset`.
    pub fn decode(bytes: &[u8], offset: i64) -> Result<Self, SnapshotError> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES + 4 {
            return Err(SnapshotError("shorter than its header"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c(body).to_be_bytes() != crc {
            return Err(SnapshotError("CRC mismatch"));
        }
        let mut r = Reader(body);
        if r.take(4)? != SNAPSHOT_MAGIC {
            return Err(SnapshotError("bad magic"));
        }
        if r.u16()? != SNAPSHOT_VERSION {
            return Err(SnapshotError("unknown version"));
        }
        if r.i64()? != offset {
            return Err(SnapshotError("offset differs from its file name"));
        }
        let count = r.u32()?;
        let mut table = ProducerStateTable::new();
        let mut previous_id = None;
        for _ in 0..count {
            let id = r.i64()?;
            if id < 0 || previous_id.is_some_and(|p| p >= id) {
                return Err(SnapshotError("producer ids not ascending and non-negative"));
            }
            previous_id = Some(id);
            let epoch = r.i16()?;
            let n = usize::from(r.take(1)?[0]);
            if n == 0 || n > CACHED_BATCHES {
                return Err(SnapshotError("batch count out of range"));
            }
            let mut batches = VecDeque::with_capacity(CACHED_BATCHES);
            let mut previous_last = i64::MIN;
            for _ in 0..n {
                let b = BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    base_offset: r.i64()?,
                    last_offset: r.i64()?,
                    max_timestamp: r.i64()?,
                };
                let sane = b.first_seq >= 0
                    && b.last_seq >= 0
                    && b.base_offset > previous_last
                    && b.base_offset <= b.last_offset
                    && b.last_offset < offset;
                if !sane {
                    return Err(SnapshotError("batch out of range"));
                }
                previous_last = b.last_offset;
                batches.push_back(b);
            }
            table.producers.insert(id, ProducerEntry { epoch, batches });
        }
        if !r.0.is_empty() {
            return Err(SnapshotError("trailing bytes"));
        }
        Ok(table)
    }
}

/// CRC-32C (Castagnoli) of `data`, through the batch codec's CRC helper (which skips the
/// first [`CRC_START`] bytes of its input) so the engine needs no CRC crate of its own.
/// Snapshots are small and rare: the copy costs nothing that matters.
pub(super) fn crc32c(data: &[u8]) -> u32 {
    let mut buf = vec![0u8; CRC_START + data.len()];
    buf[CRC_START..].copy_from_slice(data);
    compute_crc(&buf)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.0.len() < n {
            return Err(SnapshotError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first_seq: i32, last_seq: i32, base_offset: i64) -> BatchMetadata {
        BatchMetadata {
            first_seq,
            last_seq,
            base_offset,
            last_offset: base_offset + i64::from(last_seq) - i64::from(first_seq),
            max_timestamp: 1000 + base_offset,
        }
    }

    #[test]
    fn sequences_wrap_past_i32_max() {
        assert_eq!(last_sequence(0, 4), 4);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(add_sequence(i32::MAX, 1), 0);
        let mut t = ProducerStateTable::new();
        t.record(7, 0, meta(i32::MAX - 2, i32::MAX, 0));
        assert_eq!(t.check(7, 0, 0, 9), Ok(SequenceCheck::Append));
        assert!(matches!(
            t.check(7, 0, 1, 9),
            Err(SequenceError::OutOfOrderSequence { expected: 0, .. })
        ));
        t.record(
            7,
            0,
            BatchMetadata {
                first_seq: 0,
                last_seq: 9,
                base_offset: 3,
                last_offset: 12,
                max_timestamp: 5,
            },
        );
        // Before the oldest cached batch across the wrap: an old duplicate.
        assert!(matches!(
            t.check(7, 0, i32::MAX - 9, i32::MAX - 3),
            Err(SequenceError::DuplicateSequence { .. })
        ));
    }

    #[test]
    fn the_rules() {
        let mut t = ProducerStateTable::new();
        assert_eq!(
            t.check(1, 3, 42, 50),
            Ok(SequenceCheck::Append),
            "unknown: any"
        );
        for i in 0..7 {
            t.record(1, 3, meta(i * 10, i * 10 + 9, i64::from(i) * 100));
        }
        let e = t.get(1).expect("known");
        assert_eq!(e.batches.len(), CACHED_BATCHES);
        assert_eq!(e.last_timestamp(), 1600);
        // A cached batch: duplicate with its offsets.
        assert_eq!(
            t.check(1, 3, 20, 29),
            Ok(SequenceCheck::Duplicate {
                base_offset: 200,
                last_offset: 209,
                max_timestamp: 1200
            })
        );
        // Older than the cache.
        assert!(matches!(
            t.check(1, 3, 10, 19),
            Err(SequenceError::DuplicateSequence { .. })
        ));
        // Overlapping a cached batch with other bounds, or a gap: out of order.
        assert_eq!(
            t.check(1, 3, 25, 34),
            Err(SequenceError::OutOfOrderSequence {
                producer_id: 1,
                epoch: 3,
                expected: 70,
                got: 25
            })
        );
        assert!(matches!(
            t.check(1, 3, 71, 80),
            Err(SequenceError::OutOfOrderSequence { .. })
        ));
        assert_eq!(t.check(1, 3, 70, 75), Ok(SequenceCheck::Append));
        // Fenced, whatever the sequence.
        assert!(matches!(
            t.check(1, 2, 70, 75),
            Err(SequenceError::InvalidProducerEpoch {
                current_epoch: 3,
                ..
            })
        ));
        assert!(matches!(
            t.check(1, 2, 60, 69),
            Err(SequenceError::InvalidProducerEpoch { .. })
        ));
        // New epoch: from 0 only, and it forgets the old epoch's batches.
        assert!(matches!(
            t.check(1, 4, 70, 75),
            Err(SequenceError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(t.check(1, 4, 0, 4), Ok(SequenceCheck::Append));
        t.record(1, 4, meta(0, 4, 1000));
        assert_eq!(t.get(1).map(|e| e.batches.len()), Some(1));
        assert!(matches!(
            t.check(1, 3, 60, 69),
            Err(SequenceError::InvalidProducerEpoch { .. })
        ));
    }

    #[test]
    fn retention_and_expiry() {
        let mut t = ProducerStateTable::new();
        t.record(1, 0, meta(0, 9, 0));
        t.record(1, 0, meta(10, 19, 10));
        t.record(2, 0, meta(0, 0, 20));
        assert_eq!(t.retain_from(15), 0);
        assert_eq!(t.get(1).map(|e| e.batches.len()), Some(1));
        assert_eq!(t.retain_from(20), 1);
        assert!(t.get(1).is_none());
        // Producer 2's last timestamp is 1020.
        assert_eq!(t.expire(1020 + 99, 100), 0);
        assert_eq!(t.expire(1020 + 100, 100), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_reject_damage() {
        let mut t = ProducerStateTable::new();
        for i in 0..8 {
            t.record(5, 1, meta(i, i, i64::from(i)));
        }
        t.record(9, 0, meta(100, 104, 8));
        let bytes = t.encode(13);
        assert_eq!(ProducerStateTable::decode(&bytes, 13), Ok(t.clone()));
        assert!(ProducerStateTable::decode(&bytes, 14).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(ProducerStateTable::decode(&bad, 13).is_err(), "flip at {i}");
        }
        assert!(ProducerStateTable::decode(&bytes[..bytes.len() - 1], 13).is_err());
        // A state naming offsets at or past its own offset is refused even with a valid CRC.
        assert!(ProducerStateTable::decode(&t.encode(12), 12).is_err());
        let empty = ProducerStateTable::new();
        assert_eq!(ProducerStateTable::decode(&empty.encode(0), 0), Ok(empty));
        assert_eq!(parse_snapshot_name(&snapshot_name(77)), Some(77));
        assert_eq!(parse_snapshot_name("00000000000000000077.log"), None);
    }
}
