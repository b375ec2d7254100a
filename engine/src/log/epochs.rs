//! A log's leader-epoch history (Kafka's `leader-epoch-checkpoint`): for each leader epoch
//! that wrote to the log, the offset of its first record. Two replicas compare histories to
//! find where their logs diverge (see `crate::cluster::replication`). The log keeps it in step
//! with its appends, truncations and retention, and stores it in a small checkpoint file
//! written ahead of the first batch of each new epoch; on open, entries past the recovered log
//! end are dropped.
//!
//! Checkpoint format (big-endian): version u8 (1), count u32, count × (epoch i32,
//! start offset i64), CRC-32C u32 of every byte before it.

use thiserror::Error;

/// No epoch (an empty history, or an epoch the leader has no record of).
pub const UNDEFINED_EPOCH: i32 = -1;
/// No offset.
pub const UNDEFINED_OFFSET: i64 = -1;

const CHECKPOINT_VERSION: u8 = 1;

/// An epoch history entry out of order (epochs must increase, start offsets not decrease).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("epoch history out of order: epoch {epoch} at offset {start_offset} after epoch {previous_epoch} at {previous_start}")]
pub struct EpochError {
    /// The entry refused.
    pub epoch: i32,
    /// Its start offset.
    pub start_offset: i64,
    /// The latest entry before it ([`UNDEFINED_EPOCH`] if none).
    pub previous_epoch: i32,
    /// That entry's start offset.
    pub previous_start: i64,
}

/// One entry of a log's leader-epoch history: `epoch`'s first record is at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// Offset of the first record written in that epoch.
    pub start_offset: i64,
}

/// A log's leader-epoch history (Kafka's `leader-epoch-checkpoint`): epochs strictly
/// increasing, start offsets non-decreasing. It records, for each epoch, where the log's
/// records of that epoch begin, which is what lets two replicas find where they diverge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    /// An empty history.
    pub fn new() -> EpochCache {
        EpochCache::default()
    }

    /// A history from its entries (e.g. read back from disk), checked to be in order.
    pub fn from_entries(entries: Vec<EpochEntry>) -> Result<EpochCache, EpochError> {
        for pair in entries.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.epoch <= a.epoch || b.start_offset < a.start_offset {
                return Err(EpochError {
                    epoch: b.epoch,
                    start_offset: b.start_offset,
                    previous_epoch: a.epoch,
                    previous_start: a.start_offset,
                });
            }
        }
        if let Some(bad) = entries.iter().find(|e| e.epoch < 0 || e.start_offset < 0) {
            return Err(EpochError {
                epoch: bad.epoch,
                start_offset: bad.start_offset,
                previous_epoch: UNDEFINED_EPOCH,
                previous_start: UNDEFINED_OFFSET,
            });
        }
        Ok(EpochCache { entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest entry, if any.
    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The latest epoch, or [`UNDEFINED_EPOCH`].
    pub fn latest_epoch(&self) -> i32 {
        self.latest().map_or(UNDEFINED_EPOCH, |e| e.epoch)
    }

    /// Notes that a batch of `epoch` was appended at `start_offset`. A new (greater) epoch
    /// starts an entry; the latest epoch again changes nothing. Returns whether an entry was
    /// added. An older epoch, or a new one starting before the latest entry, is refused: the
    /// log must not take such a batch.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<bool, EpochError> {
        if epoch < 0 || start_offset < 0 {
            return Err(EpochError {
                epoch,
                start_offset,
                previous_epoch: self.latest_epoch(),
                previous_start: self.latest().map_or(UNDEFINED_OFFSET, |e| e.start_offset),
            });
        }
        match self.latest() {
            Some(latest) if epoch == latest.epoch => Ok(false),
            Some(latest) if epoch < latest.epoch || start_offset < latest.start_offset => {
                Err(EpochError {
                    epoch,
                    start_offset,
                    previous_epoch: latest.epoch,
                    previous_start: latest.start_offset,
                })
            }
            _ => {
                self.entries.push(EpochEntry {
                    epoch,
                    start_offset,
                });
                Ok(true)
            }
        }
    }

    /// Kafka's `OffsetsForLeaderEpoch` answer for `requested`, given this log's end: the
    /// largest epoch at or below `requested` that this log knows, and the offset where the
    /// log moved past `requested` (the start of the next greater epoch, or the log end if
    /// `requested` is the latest). `(UNDEFINED_EPOCH, UNDEFINED_OFFSET)` when `requested` is
    /// undefined or newer than anything here; `(UNDEFINED_EPOCH, start of the first epoch)`
    /// when `requested` is older than all of this history.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH || requested < 0 {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        let Some(latest) = self.latest() else {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        };
        if requested == latest.epoch {
            return (requested, log_end);
        }
        if requested > latest.epoch {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        let higher = self
            .entries
            .iter()
            .find(|e| e.epoch > requested)
            .expect("requested < latest, so a greater epoch exists");
        let floor = self.entries.iter().rev().find(|e| e.epoch <= requested);
        match floor {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (UNDEFINED_EPOCH, higher.start_offset),
        }
    }

    /// The epoch that wrote `offset`: the latest entry starting at or before it (`None`
    /// before the first entry). Meaningful only for offsets inside the log.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }

    /// After the log was truncated to end at `end_offset`: drops the epochs that started at
    /// or after it.
    pub fn truncate_from_end(&mut self, end_offset: i64) {
        self.entries.retain(|e| e.start_offset < end_offset);
    }

    /// After the log's start moved to `start_offset` (retention): drops epochs wholly before
    /// it and moves the start of the one that spans it.
    pub fn truncate_from_start(&mut self, start_offset: i64) {
        let spanning = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= start_offset);
        if let Some(i) = spanning {
            self.entries.drain(..i);
            self.entries[0].start_offset = start_offset;
        }
    }
}

impl EpochCache {
    /// The checkpoint file's bytes (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 12 * self.entries.len());
        out.push(CHECKPOINT_VERSION);
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.start_offset.to_be_bytes());
        }
        let crc = super::producers::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a checkpoint back; the error says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<EpochCache, String> {
        if bytes.len() < 9 {
            return Err(format!("{} bytes, shorter than a checkpoint", bytes.len()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if super::producers::crc32c(body).to_be_bytes() != crc {
            return Err("CRC mismatch".into());
        }
        if body[0] != CHECKPOINT_VERSION {
            return Err(format!("unknown version {}", body[0]));
        }
        let count = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let entries = &body[5..];
        if entries.len() != count.saturating_mul(12) {
            return Err(format!(
                "{count} entries announced, {} bytes of them",
                entries.len()
            ));
        }
        let entries = entries
            .chunks_exact(12)
            .map(|c| EpochEntry {
                epoch: i32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                start_offset: i64::from_be_bytes([
                    c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11],
                ]),
            })
            .collect();
        EpochCache::from_entries(entries).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_at_finds_the_writer() {
        let mut c = EpochCache::new();
        assert_eq!(c.epoch_at(0), None);
        c.assign(2, 5).unwrap();
        c.assign(4, 9).unwrap();
        assert_eq!(c.epoch_at(4), None);
        assert_eq!(c.epoch_at(5), Some(2));
        assert_eq!(c.epoch_at(8), Some(2));
        assert_eq!(c.epoch_at(9), Some(4));
        assert_eq!(c.epoch_at(1000), Some(4));
    }

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let mut c = EpochCache::new();
        c.assign(0, 0).unwrap();
        c.assign(3, 17).unwrap();
        c.assign(4, 1 << 40).unwrap();
        let bytes = c.encode();
        assert_eq!(EpochCache::decode(&bytes).unwrap(), c);
        assert_eq!(
            EpochCache::decode(&EpochCache::new().encode()).unwrap(),
            EpochCache::new()
        );
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    EpochCache::decode(&bad).is_err(),
                    "flip at byte {i} bit {bit}"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(
                EpochCache::decode(&bytes[..len]).is_err(),
                "cut to {len} bytes"
            );
        }
    }
}
