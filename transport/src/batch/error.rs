//! The one error type of batch parsing, decoding and building.
//!
//! Every variant means "these bytes are not a batch we accept" (or, for [`BatchError::Compress`],
//! "the codec failed while building"); none is recoverable by retrying the same bytes. A caller
//! reading from disk treats any of them as corruption at that position; a caller serving a
//! producer rejects the request.

/// Why a batch was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The input holds fewer bytes than the header or the declared batch length needs.
    #[error("batch truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes required to go on.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The magic byte is not 2; Quiver reads only RecordBatch v2.
    #[error("unsupported batch magic {0} (only 2 is supported)")]
    BadMagic(i8),
    /// `batchLength` is too small to hold the header, or (for an exact-length parse) does not
    /// match the number of bytes given.
    #[error("bad batchLength {0}")]
    BadLength(i32),
    /// The stored CRC-32C does not match the bytes from `attributes` to the end.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes as they are.
        computed: u32,
    },
    /// Reserved attribute bits (7..=15) are set.
    #[error("bad batch attributes {0:#06x}")]
    BadAttributes(i16),
    /// Attribute bits 0-2 name a codec other than none/gzip/snappy/lz4/zstd.
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    /// `lastOffsetDelta` or `recordsCount` is negative, or `baseOffset + lastOffsetDelta`
    /// overflows.
    #[error("bad offsets: baseOffset {base_offset}, lastOffsetDelta {last_offset_delta}, recordsCount {records_count}")]
    BadOffsets {
        /// `baseOffset` from the header.
        base_offset: i64,
        /// `lastOffsetDelta` from the header.
        last_offset_delta: i32,
        /// `recordsCount` from the header.
        records_count: i32,
    },
    /// The codec rejected the compressed records section.
    #[error("decompression failed: {0}")]
    Decompress(String),
    /// The records section decompresses to more than `max` bytes.
    #[error("records decompress to more than {max} bytes")]
    DecompressedTooLarge {
        /// The limit, [`crate::batch::DECOMPRESSED_BYTES_MAX`].
        max: usize,
    },
    /// The codec failed while compressing a batch being built.
    #[error("compression failed: {0}")]
    Compress(String),
    /// A record inside the batch cannot be decoded (bad varint, length past the end, offset
    /// deltas out of order, invalid UTF-8 header key, ...).
    #[error("malformed records: {0}")]
    MalformedRecords(String),
    /// The records section ended after `decoded` complete records, fewer than `recordsCount`.
    #[error("recordsCount is {declared} but the records section holds {decoded}")]
    RecordCountMismatch {
        /// `recordsCount` from the header.
        declared: i32,
        /// Records decoded before the section ended.
        decoded: usize,
    },
    /// Bytes are left in the records section after `recordsCount` records.
    #[error("{remaining} bytes left after the last record")]
    TrailingBytes {
        /// Bytes left over.
        remaining: usize,
    },
    /// The batch being built would not fit the i32 `batchLength` field.
    #[error("batch of {len} bytes is too large for batchLength")]
    TooLarge {
        /// Total bytes the batch would have.
        len: usize,
    },
}
