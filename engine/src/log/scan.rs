//! The recovery scan (sans-IO): walks batches in a buffer of segment bytes and says where the
//! valid log ends.
//!
//! A batch is accepted only if its length is within bounds, its magic is 2, its CRC-32C matches
//! and its offsets continue the log. The log keeps offsets contiguous inside a segment (the first
//! batch starts at the segment's base offset, each next batch right after the previous one;
//! compaction leaves an empty batch where it removed whole batches), so recovery checks for
//! exact continuity: that also catches a flipped bit in the base offset, which the CRC does not
//! cover. The first batch that fails any check ends the valid log: zeroed
//! preallocated space fails the length check, a torn write fails the length or the CRC check.
//! The IO shell in `super::segment` feeds windows of the file and truncates where this stops.

use crate::batch::{peek_batch_len, RecordBatch, BATCH_HEADER_LEN, BATCH_LOG_OVERHEAD};

/// What the scan learned about one valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// Byte position in the segment file.
    pub position: u64,
    /// Total bytes of the batch.
    pub len: u32,
    /// First offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// Largest record timestamp of the batch.
    pub max_timestamp: i64,
}

/// Why the valid log ends where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStop {
    /// The buffer was consumed exactly.
    End,
    /// The buffer ends inside the batch at `position`, which claims `len` bytes in all (0 when
    /// even its length field is cut off).
    Incomplete {
        /// Where the incomplete batch starts.
        position: u64,
        /// Its claimed total length, or 0 if unknown.
        len: usize,
    },
    /// The batch at `position` is invalid.
    Invalid {
        /// Where the invalid batch starts.
        position: u64,
        /// What is wrong with it.
        reason: Invalid,
    },
}

/// What is wrong with an invalid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Its length field is below the header size or above the configured maximum.
    Length,
    /// Magic, CRC or another header check failed.
    Corrupt,
    /// Its offsets do not follow the previous batch.
    Offsets,
}

/// Scans `buf`, which starts at file position `buf_position`, for consecutive valid batches.
/// `next_offset` is the base offset the first batch must have (`None`: any, but increasing from
/// there); `batch_bytes_max` bounds a batch's length. Returns the valid batches and why the scan
/// stopped.
pub fn scan(
    buf: &[u8],
    buf_position: u64,
    mut next_offset: Option<i64>,
    batch_bytes_max: usize,
) -> (Vec<BatchMeta>, ScanStop) {
    let mut batches = Vec::new();
    let mut at = 0usize;
    loop {
        let position = buf_position + at as u64;
        let rest = &buf[at..];
        if rest.is_empty() {
            return (batches, ScanStop::End);
        }
        if rest.len() < BATCH_LOG_OVERHEAD {
            return (batches, ScanStop::Incomplete { position, len: 0 });
        }
        let Some(len) = peek_batch_len(rest) else {
            return (
                batches,
                ScanStop::Invalid {
                    position,
                    reason: Invalid::Length,
                },
            );
        };
        if len < BATCH_HEADER_LEN || len > batch_bytes_max {
            return (
                batches,
                ScanStop::Invalid {
                    position,
                    reason: Invalid::Length,
                },
            );
        }
        if rest.len() < len {
            return (batches, ScanStop::Incomplete { position, len });
        }
        let Ok(batch) = RecordBatch::parse(&rest[..len]) else {
            return (
                batches,
                ScanStop::Invalid {
                    position,
                    reason: Invalid::Corrupt,
                },
            );
        };
        let continues = next_offset.is_none_or(|n| batch.base_offset() == n);
        if !continues || batch.last_offset() < batch.base_offset() {
            return (
                batches,
                ScanStop::Invalid {
                    position,
                    reason: Invalid::Offsets,
                },
            );
        }
        batches.push(BatchMeta {
            position,
            len: len as u32,
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            max_timestamp: batch.max_timestamp(),
        });
        next_offset = Some(batch.last_offset() + 1);
        at += len;
    }
}
