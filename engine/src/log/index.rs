//! Sparse offset and time indexes of one segment (sans-IO).
//!
//! The offset index maps a batch's offset relative to the segment base to its byte position,
//! one entry per `index_interval_bytes` of log; the time index maps "the largest timestamp of
//! every batch before this one" to the batch's relative offset, added at the same cadence when
//! that timestamp grew. Both are derived data: kept in memory, written beside the segment when it
//! is sealed or the log closes cleanly, and rebuilt from the segment by the recovery scan.
//!
//! On disk: `.index` holds big-endian `(relative offset u32, position u32)` pairs, `.timeindex`
//! holds `(timestamp i64, relative offset u32)` pairs. A file that fails validation is ignored
//! and rebuilt; it is never trusted partially.

/// Bytes per `.index` entry.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes per `.timeindex` entry.
pub const TIME_ENTRY_BYTES: usize = 12;

/// One offset index entry: the batch starting at `relative_offset` sits at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffsetEntry {
    /// Base offset of the batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
}

/// One time index entry: every batch before `relative_offset` has a max timestamp <= `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// The largest timestamp of all batches before `relative_offset` in this segment.
    pub timestamp: i64,
    /// Relative offset of the first batch not covered by `timestamp`.
    pub relative_offset: u32,
}

/// Why an index file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The length is not a whole number of entries.
    #[error("index length {0} is not a whole number of entries")]
    Length(usize),
    /// Entries are not strictly increasing, or point past the segment.
    #[error("index entry {0} is out of order or out of range")]
    Entry(usize),
}

/// The sparse indexes of one segment, fed batch by batch in log order.
#[derive(Debug, Clone)]
pub struct SegmentIndex {
    interval_bytes: u32,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    bytes_since_entry: u64,
    /// Largest max timestamp of any batch indexed so far (i64::MIN when empty).
    max_timestamp: i64,
}

impl SegmentIndex {
    /// An empty index adding an entry every `interval_bytes` of log.
    pub fn new(interval_bytes: u32) -> Self {
        assert!(
            interval_bytes > 0,
            "an index interval of zero would index nothing sparsely"
        );
        SegmentIndex {
            interval_bytes,
            offsets: Vec::new(),
            times: Vec::new(),
            bytes_since_entry: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Records the batch at `position` (`len` bytes, relative base offset `relative_offset`,
    /// largest timestamp `max_timestamp`). Batches must come in log order.
    pub fn on_batch(&mut self, relative_offset: u32, position: u32, len: u32, max_timestamp: i64) {
        if let Some(last) = self.offsets.last() {
            assert!(
                relative_offset > last.relative_offset,
                "batches are indexed in offset order"
            );
            assert!(
                position > last.position,
                "batches are indexed in position order"
            );
        }
        if self.bytes_since_entry >= u64::from(self.interval_bytes) {
            self.offsets.push(OffsetEntry {
                relative_offset,
                position,
            });
            let covered = self.times.last().map_or(i64::MIN, |t| t.timestamp);
            if self.max_timestamp > covered {
                self.times.push(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset,
                });
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += u64::from(len);
        self.max_timestamp = self.max_timestamp.max(max_timestamp);
    }

    /// The entry of the last indexed batch at or before `relative_offset` (position 0 if none).
    pub fn lookup(&self, relative_offset: u32) -> OffsetEntry {
        let i = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        if i == 0 {
            OffsetEntry::default()
        } else {
            self.offsets[i - 1]
        }
    }

    /// A relative offset at or before the first batch whose max timestamp may be >= `timestamp`.
    pub fn lookup_time(&self, timestamp: i64) -> u32 {
        let i = self.times.partition_point(|e| e.timestamp < timestamp);
        if i == 0 {
            0
        } else {
            self.times[i - 1].relative_offset
        }
    }

    /// Largest timestamp seen, i64::MIN when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The offset index entries.
    pub fn offset_entries(&self) -> &[OffsetEntry] {
        &self.offsets
    }

    /// The time index entries.
    pub fn time_entries(&self) -> &[TimeEntry] {
        &self.times
    }

    /// `.index` file contents.
    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    /// `.timeindex` file contents.
    pub fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for e in &self.times {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Rebuilds an index from its two files, for a segment of `segment_bytes` whose largest
    /// timestamp is `max_timestamp`. Entries must increase strictly and point inside the segment.
    pub fn decode(
        interval_bytes: u32,
        offsets: &[u8],
        times: &[u8],
        segment_bytes: u64,
        max_timestamp: i64,
    ) -> Result<Self, IndexError> {
        if !offsets.len().is_multiple_of(OFFSET_ENTRY_BYTES) {
            return Err(IndexError::Length(offsets.len()));
        }
        if !times.len().is_multiple_of(TIME_ENTRY_BYTES) {
            return Err(IndexError::Length(times.len()));
        }
        let mut index = SegmentIndex::new(interval_bytes);
        for (i, chunk) in offsets.chunks_exact(OFFSET_ENTRY_BYTES).enumerate() {
            let e = OffsetEntry {
                relative_offset: u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                position: u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            };
            let ordered = index
                .offsets
                .last()
                .is_none_or(|l| e.relative_offset > l.relative_offset && e.position > l.position);
            if !ordered || u64::from(e.position) >= segment_bytes {
                return Err(IndexError::Entry(i));
            }
            index.offsets.push(e);
        }
        for (i, chunk) in times.chunks_exact(TIME_ENTRY_BYTES).enumerate() {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let e = TimeEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]),
            };
            let ordered = index
                .times
                .last()
                .is_none_or(|l| e.timestamp > l.timestamp && e.relative_offset > l.relative_offset);
            if !ordered || e.timestamp > max_timestamp {
                return Err(IndexError::Entry(i));
            }
            index.times.push(e);
        }
        index.max_timestamp = max_timestamp;
        index.bytes_since_entry =
            segment_bytes - index.offsets.last().map_or(0, |e| u64::from(e.position));
        Ok(index)
    }

    /// Drops every entry for batches at or after `position` (the log was truncated there);
    /// `max_timestamp` is the largest timestamp of the batches that remain.
    pub fn truncate_to(&mut self, position: u32, max_timestamp: i64) {
        self.offsets.retain(|e| e.position < position);
        let last_relative = self.offsets.last().map(|e| e.relative_offset);
        self.times
            .retain(|t| last_relative.is_some_and(|r| t.relative_offset <= r));
        self.max_timestamp = max_timestamp;
        self.bytes_since_entry =
            u64::from(position) - self.offsets.last().map_or(0, |e| u64::from(e.position));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_floor_entry() {
        let mut index = SegmentIndex::new(100);
        // Batches of 60 bytes: entries at every second batch once 100 bytes have passed.
        for i in 0..10u32 {
            index.on_batch(i * 3, i * 60, 60, 1000 + i64::from(i));
        }
        let entries = index.offset_entries().to_vec();
        assert_eq!(
            entries[0],
            OffsetEntry {
                relative_offset: 6,
                position: 120
            }
        );
        assert_eq!(index.lookup(0), OffsetEntry::default());
        assert_eq!(
            index.lookup(7),
            OffsetEntry {
                relative_offset: 6,
                position: 120
            }
        );
        assert_eq!(
            index.lookup(12),
            OffsetEntry {
                relative_offset: 12,
                position: 240
            }
        );
        assert_eq!(index.max_timestamp(), 1009);
        // Every batch before the entry's offset has a timestamp <= the entry's timestamp.
        for t in index.time_entries() {
            let before = (0..10u32)
                .filter(|i| i * 3 < t.relative_offset)
                .map(|i| 1000 + i64::from(i));
            assert_eq!(before.max(), Some(t.timestamp));
        }
        assert_eq!(index.lookup_time(1001), 0);
        assert!(index.lookup_time(1005) <= 15);
    }

    #[test]
    fn encode_decode_round_trip_and_rejects_bad_files() {
        let mut index = SegmentIndex::new(10);
        for i in 0..50u32 {
            index.on_batch(i, i * 20, 20, i64::from(i % 7) + i64::from(i));
        }
        let offsets = index.encode_offsets();
        let times = index.encode_times();
        let back = SegmentIndex::decode(10, &offsets, &times, 1000, index.max_timestamp()).unwrap();
        assert_eq!(back.offset_entries(), index.offset_entries());
        assert_eq!(back.time_entries(), index.time_entries());
        assert_eq!(
            SegmentIndex::decode(10, &offsets[..offsets.len() - 1], &times, 1000, 100).unwrap_err(),
            IndexError::Length(offsets.len() - 1)
        );
        // An entry pointing past the segment is refused.
        assert!(SegmentIndex::decode(10, &offsets, &times, 100, index.max_timestamp()).is_err());
        let mut swapped = offsets.clone();
        swapped.swap(3, 11);
        assert!(SegmentIndex::decode(10, &swapped, &times, 1000, index.max_timestamp()).is_err());
    }

    #[test]
    fn truncate_drops_later_entries() {
        let mut index = SegmentIndex::new(1);
        for i in 0..10u32 {
            index.on_batch(i, i * 10, 10, i64::from(i));
        }
        index.truncate_to(50, 4);
        assert!(index.offset_entries().iter().all(|e| e.position < 50));
        assert_eq!(index.lookup(9).position, 40);
        assert_eq!(index.max_timestamp(), 4);
        index.on_batch(5, 50, 10, 5);
        assert_eq!(index.lookup(9).position, 50);
    }
}
