//! The fixed 61-byte RecordBatch v2 header: its zero-copy view, the attribute bits, and the
//! helpers that work on raw bytes before (or without) a full parse: [`peek_batch_len`],
//! [`stamp`] and [`compute_crc`].
//!
//! Layout (big-endian, offsets in bytes):
//! ```text
//!  0 baseOffset i64         8 batchLength i32      12 partitionLeaderEpoch i32
//! 16 magic i8              17 crc u32              21 attributes i16
//! 23 lastOffsetDelta i32   27 baseTimestamp i64    35 maxTimestamp i64
//! 43 producerId i64        51 producerEpoch i16    53 baseSequence i32
//! 57 recordsCount i32      61 records...
//! ```

use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{BATCH_HEADER_LEN, BATCH_LOG_OVERHEAD};

/// Attribute bits 0-2: the compression codec of the records section.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamps are log-append time (set by the broker), not create time.
pub const ATTR_TIMESTAMP_LOG_APPEND: i16 = 0x08;
/// Attribute bit 4: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: the batch holds control records (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bits 7-15: reserved, must be zero. (Bit 6 is Kafka's "delete horizon" flag, KIP-534,
/// which compaction may set; we accept it.)
pub const ATTR_RESERVED_MASK: i16 = !0x7f;
/// First byte covered by the CRC: the attributes field.
pub const CRC_START: usize = 21;

/// Byte offset of `partitionLeaderEpoch`.
const LEADER_EPOCH_AT: usize = 12;

/// Zero-copy view of the 61-byte batch header. Read it with the accessor methods; the fields are
/// public for writers that build a header in place.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone)]
#[repr(C)]
pub struct BatchHeader {
    /// Offset of the first record; assigned by the broker (outside the CRC).
    pub base_offset: I64,
    /// Bytes after this field: total batch length minus [`BATCH_LOG_OVERHEAD`].
    pub batch_length: I32,
    /// Epoch of the leader that appended the batch; assigned by the broker (outside the CRC).
    pub partition_leader_epoch: I32,
    /// Format version, 2.
    pub magic: i8,
    /// CRC-32C of bytes `[21..total)`.
    pub crc: U32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: I16,
    /// Offset of the last record minus `base_offset` (kept even if compaction removed records).
    pub last_offset_delta: I32,
    /// Timestamp of the first record; record timestamps are deltas from it.
    pub base_timestamp: I64,
    /// Largest record timestamp.
    pub max_timestamp: I64,
    /// Idempotent producer id, or -1.
    pub producer_id: I64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: I16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: I32,
    /// Number of records in the records section.
    pub records_count: I32,
}

// The derived layout must be exactly Kafka's header; checked at compile time.
const _: () = assert!(core::mem::size_of::<BatchHeader>() == BATCH_HEADER_LEN);

impl BatchHeader {
    /// Offset of the first record in the batch.
    pub fn base_offset(&self) -> i64 {
        self.base_offset.get()
    }
    /// The `batchLength` field: total length minus 12.
    pub fn batch_length(&self) -> i32 {
        self.batch_length.get()
    }
    /// Epoch of the leader that appended the batch.
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch.get()
    }
    /// Format version byte.
    pub fn magic(&self) -> i8 {
        self.magic
    }
    /// Stored CRC-32C.
    pub fn crc(&self) -> u32 {
        self.crc.get()
    }
    /// Raw attributes bits.
    pub fn attributes(&self) -> i16 {
        self.attributes.get()
    }
    /// Offset of the last record minus the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta.get()
    }
    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp.get()
    }
    /// Largest timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.get()
    }
    /// Producer id, -1 for none.
    pub fn producer_id(&self) -> i64 {
        self.producer_id.get()
    }
    /// Producer epoch, -1 for none.
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch.get()
    }
    /// Sequence of the first record, -1 for none.
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence.get()
    }
    /// Number of records declared.
    pub fn records_count(&self) -> i32 {
        self.records_count.get()
    }
}

/// Total length (12 + batchLength) read from the first 12 bytes, or `None` if `buf` has fewer
/// than 12 bytes or batchLength is smaller than a header (`BATCH_HEADER_LEN - 12`); a zeroed
/// region (batchLength 0) therefore yields `None`.
///
/// Only the length field is looked at: the result says how many bytes to read, not that they
/// form a valid batch.
pub fn peek_batch_len(buf: &[u8]) -> Option<usize> {
    let field: [u8; 4] = buf.get(8..BATCH_LOG_OVERHEAD)?.try_into().ok()?;
    let batch_length = usize::try_from(i32::from_be_bytes(field)).ok()?;
    if batch_length < BATCH_HEADER_LEN - BATCH_LOG_OVERHEAD {
        return None;
    }
    Some(BATCH_LOG_OVERHEAD + batch_length)
}

/// Overwrite baseOffset and partitionLeaderEpoch in place (both outside the CRC).
///
/// Panics if `buf` is shorter than the header: callers stamp only batches they have parsed or
/// built, so a short buffer is a bug.
pub fn stamp(buf: &mut [u8], base_offset: i64, partition_leader_epoch: i32) {
    assert!(
        buf.len() >= BATCH_HEADER_LEN,
        "stamp needs a whole batch header; got {} bytes",
        buf.len()
    );
    buf[..8].copy_from_slice(&base_offset.to_be_bytes());
    buf[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
        .copy_from_slice(&partition_leader_epoch.to_be_bytes());
}

/// Byte offset of `producerId` in the header (`producerEpoch` and `baseSequence` follow it).
const PRODUCER_ID_AT: usize = 43;

/// Overwrite producerId, producerEpoch and baseSequence in place and recompute the CRC (the
/// three fields are under it): how an idempotent producer re-stamps a built batch for a new
/// producer id. Costs one CRC pass over the batch; nothing else changes.
///
/// Panics if `buf` is shorter than the header: callers stamp only batches they built.
pub fn stamp_producer(buf: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    assert!(
        buf.len() >= BATCH_HEADER_LEN,
        "stamp_producer needs a whole batch header; got {} bytes",
        buf.len()
    );
    let at = PRODUCER_ID_AT;
    buf[at..at + 8].copy_from_slice(&producer_id.to_be_bytes());
    buf[at + 8..at + 10].copy_from_slice(&producer_epoch.to_be_bytes());
    buf[at + 10..at + 14].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = compute_crc(buf);
    buf[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
}

/// CRC-32C (Castagnoli) of `batch[21..]`, the bytes the header's `crc` field covers.
///
/// Panics if `batch` is shorter than 21 bytes: only whole batches (at least a header) have a CRC,
/// so a shorter slice is a bug in the caller.
pub fn compute_crc(batch: &[u8]) -> u32 {
    assert!(
        batch.len() >= CRC_START,
        "compute_crc needs at least {CRC_START} bytes; got {}",
        batch.len()
    );
    crc32c::crc32c(&batch[CRC_START..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_producer_sets_the_fields_and_keeps_the_crc_valid() {
        let mut b = crate::batch::BatchBuilder::new(crate::batch::Compression::None);
        b.push(5, Some(b"k"), Some(b"v"), &[]);
        b.push(6, None, Some(b"w"), &[]);
        let mut bytes = b.build().unwrap();
        stamp_producer(&mut bytes, 0x0102_0304_0506, 7, i32::MAX - 1);
        let view = crate::batch::RecordBatch::parse(&bytes).expect("CRC still valid");
        assert_eq!(view.header().producer_id(), 0x0102_0304_0506);
        assert_eq!(view.header().producer_epoch(), 7);
        assert_eq!(view.header().base_sequence(), i32::MAX - 1);
        assert_eq!(view.records().unwrap().len(), 2);
        // Same bytes as a batch built with those fields from the start.
        let mut b = crate::batch::BatchBuilder::new(crate::batch::Compression::None).producer(
            0x0102_0304_0506,
            7,
            i32::MAX - 1,
        );
        b.push(5, Some(b"k"), Some(b"v"), &[]);
        b.push(6, None, Some(b"w"), &[]);
        assert_eq!(&bytes[..], &b.build().unwrap()[..]);
    }

    #[test]
    fn peek_rejects_short_and_small_lengths() {
        assert_eq!(peek_batch_len(&[0u8; 11]), None);
        assert_eq!(peek_batch_len(&[0u8; 12]), None);
        let mut buf = [0u8; 12];
        buf[8..12].copy_from_slice(&48i32.to_be_bytes());
        assert_eq!(peek_batch_len(&buf), None);
        buf[8..12].copy_from_slice(&49i32.to_be_bytes());
        assert_eq!(peek_batch_len(&buf), Some(61));
        buf[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(peek_batch_len(&buf), None);
    }

    #[test]
    fn stamp_writes_only_offset_and_epoch() {
        let mut buf = [0xAAu8; 70];
        stamp(&mut buf, 0x0102_0304_0506_0708, 0x0A0B_0C0D);
        assert_eq!(&buf[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&buf[8..12], &[0xAA; 4]);
        assert_eq!(&buf[12..16], &[0x0A, 0x0B, 0x0C, 0x0D]);
        assert!(buf[16..].iter().all(|&b| b == 0xAA));
    }

    #[test]
    #[should_panic(expected = "whole batch header")]
    fn stamp_panics_on_short_buffer() {
        stamp(&mut [0u8; 60], 0, 0);
    }

    #[test]
    fn crc32c_known_value() {
        // RFC 3720 B.4 test vector: 32 bytes of zeros -> 0x8A9136AA.
        let mut buf = vec![0xFFu8; CRC_START];
        buf.extend_from_slice(&[0u8; 32]);
        assert_eq!(compute_crc(&buf), 0x8A91_36AA);
    }
}
