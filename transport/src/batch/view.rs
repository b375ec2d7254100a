//! [`RecordBatch`]: a validated, borrowed view of one batch's bytes.
//!
//! Parsing checks everything that can be checked without touching the records section (length,
//! magic, CRC, attribute reserved bits, offset arithmetic); decoding the records is a separate,
//! fallible step ([`RecordBatch::records`]) because it may decompress and allocate.

use bytes::Bytes;
use zerocopy::FromBytes;

use super::header::{
    compute_crc, ATTR_CONTROL, ATTR_RESERVED_MASK, ATTR_TIMESTAMP_LOG_APPEND, ATTR_TRANSACTIONAL,
};
use super::record::{decode_records, SectionInfo};
use super::{
    BatchError, BatchHeader, Compression, Record, BATCH_HEADER_LEN, BATCH_LOG_OVERHEAD, MAGIC_V2,
};

/// A batch whose header, length and CRC have been checked. Cheap to copy: it is two borrows of
/// the same bytes.
#[derive(Clone, Copy, Debug)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
    header: &'a BatchHeader,
}

impl<'a> RecordBatch<'a> {
    /// `bytes` must be exactly one batch. Checks length >= header, magic == 2,
    /// 12 + batchLength == bytes.len(), lastOffsetDelta >= 0, recordsCount >= 0,
    /// baseOffset + lastOffsetDelta without overflow, the CRC, and that reserved attribute bits
    /// are clear. Never panics on any input.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        let header = read_header(bytes)?;
        let declared = total_len(header)?;
        if declared != bytes.len() {
            if declared > bytes.len() {
                return Err(BatchError::Truncated {
                    need: declared,
                    have: bytes.len(),
                });
            }
            return Err(BatchError::BadLength(header.batch_length()));
        }
        Self::check(bytes, header)
    }

    /// Parse the batch at the start of `buf` (which may hold more after it); returns the batch and
    /// its total length.
    pub fn parse_prefix(buf: &'a [u8]) -> Result<(Self, usize), BatchError> {
        let header = read_header(buf)?;
        let len = total_len(header)?;
        let bytes = buf.get(..len).ok_or(BatchError::Truncated {
            need: len,
            have: buf.len(),
        })?;
        Ok((Self::check(bytes, header)?, len))
    }

    /// The checks after the length is known to be exactly `bytes.len()`.
    fn check(bytes: &'a [u8], header: &'a BatchHeader) -> Result<Self, BatchError> {
        // Checked before anything else past the length, so any bit flip under the CRC (even in
        // attributes or lastOffsetDelta) is reported as the corruption it is.
        let computed = compute_crc(bytes);
        if computed != header.crc() {
            return Err(BatchError::CrcMismatch {
                stored: header.crc(),
                computed,
            });
        }
        let bad_offsets = || BatchError::BadOffsets {
            base_offset: header.base_offset(),
            last_offset_delta: header.last_offset_delta(),
            records_count: header.records_count(),
        };
        if header.last_offset_delta() < 0 || header.records_count() < 0 {
            return Err(bad_offsets());
        }
        if header
            .base_offset()
            .checked_add(i64::from(header.last_offset_delta()))
            .is_none()
        {
            return Err(bad_offsets());
        }
        if header.attributes() & ATTR_RESERVED_MASK != 0 {
            return Err(BatchError::BadAttributes(header.attributes()));
        }
        Ok(Self { bytes, header })
    }

    /// The fixed header.
    pub fn header(&self) -> &'a BatchHeader {
        self.header
    }

    /// The whole batch, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Total length in bytes (12 + batchLength); never less than [`BATCH_HEADER_LEN`], so there
    /// is no `is_empty` (see [`RecordBatch::records_count`] for an empty batch).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Offset of the first record (or of the first offset the batch covers).
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset()
    }

    /// Last offset the batch covers: base + lastOffsetDelta (cannot overflow; parse checked).
    pub fn last_offset(&self) -> i64 {
        self.header.base_offset() + i64::from(self.header.last_offset_delta())
    }

    /// Offset just past the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Largest timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        self.header.max_timestamp()
    }

    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        self.header.base_timestamp()
    }

    /// Declared number of records (>= 0; parse checked).
    pub fn records_count(&self) -> i32 {
        self.header.records_count()
    }

    /// Epoch of the leader that appended the batch.
    pub fn partition_leader_epoch(&self) -> i32 {
        self.header.partition_leader_epoch()
    }

    /// Codec of the records section.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.header.attributes())
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.header.attributes() & ATTR_CONTROL != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.header.attributes() & ATTR_TRANSACTIONAL != 0
    }

    /// Whether timestamps are log-append time rather than create time.
    pub fn is_log_append_time(&self) -> bool {
        self.header.attributes() & ATTR_TIMESTAMP_LOG_APPEND != 0
    }

    /// The records section as stored (compressed if the batch is).
    pub fn records_section(&self) -> &'a [u8] {
        &self.bytes[BATCH_HEADER_LEN..]
    }

    /// Decompress if needed and decode every record (never panics; malformed -> Err).
    pub fn records(&self) -> Result<Vec<Record>, BatchError> {
        let section = match self.compression()? {
            Compression::None => Bytes::copy_from_slice(self.records_section()),
            codec => Bytes::from(codec.decompress(self.records_section())?),
        };
        decode_records(
            &section,
            SectionInfo {
                base_offset: self.base_offset(),
                base_timestamp: self.base_timestamp(),
                last_offset_delta: self.header.last_offset_delta(),
                records_count: self.records_count(),
            },
        )
    }
}

fn read_header(buf: &[u8]) -> Result<&BatchHeader, BatchError> {
    let Ok((header, _)) = BatchHeader::ref_from_prefix(buf) else {
        return Err(BatchError::Truncated {
            need: BATCH_HEADER_LEN,
            have: buf.len(),
        });
    };
    if header.magic() != MAGIC_V2 {
        return Err(BatchError::BadMagic(header.magic()));
    }
    Ok(header)
}

/// Total length from batchLength, rejecting lengths that cannot hold the header.
fn total_len(header: &BatchHeader) -> Result<usize, BatchError> {
    let batch_length = header.batch_length();
    usize::try_from(batch_length)
        .ok()
        .filter(|&n| n >= BATCH_HEADER_LEN - BATCH_LOG_OVERHEAD)
        .map(|n| n + BATCH_LOG_OVERHEAD)
        .ok_or(BatchError::BadLength(batch_length))
}
