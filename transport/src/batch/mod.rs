//! Kafka RecordBatch v2 (magic 2): the unit Quiver stores on disk and sends on the wire.
//!
//! This module owns the byte format of a batch and nothing else: the fixed 61-byte header view
//! ([`BatchHeader`]), validation of untrusted bytes into a [`RecordBatch`] view, decoding of the
//! records inside (including decompression, [`Compression`]), and building new batches
//! ([`BatchBuilder`]). It does no IO and keeps no state, so it runs on whichever shard holds the
//! bytes.
//!
//! Invariants:
//! - Decoding never panics and never allocates more than [`DECOMPRESSED_BYTES_MAX`] for the
//!   records of one batch, whatever the input; every failure is a [`BatchError`].
//! - The CRC-32C covers bytes `[21..len)` (attributes through the end), so `baseOffset` and
//!   `partitionLeaderEpoch` can be rewritten with [`stamp`] without recomputing it.
//! - A [`RecordBatch`] exists only for bytes that passed [`RecordBatch::parse`]: exact length,
//!   magic 2, matching CRC, sane offsets.

mod builder;
mod compression;
mod error;
mod header;
mod record;
pub mod varint;
mod view;

pub use builder::BatchBuilder;
pub use compression::{Compression, ParseCompressionError, DECOMPRESSED_BYTES_MAX};
pub use error::BatchError;
pub use header::{
    compute_crc, peek_batch_len, stamp, stamp_producer, BatchHeader, ATTR_COMPRESSION_MASK,
    ATTR_CONTROL, ATTR_RESERVED_MASK, ATTR_TIMESTAMP_LOG_APPEND, ATTR_TRANSACTIONAL, CRC_START,
};
pub use record::{Record, RecordHeader};
pub use view::RecordBatch;

/// Size in bytes of the fixed batch header, from `baseOffset` through `recordsCount`.
pub const BATCH_HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes before what batchLength counts.
pub const BATCH_LOG_OVERHEAD: usize = 12;
/// The only batch format version Quiver reads or writes.
pub const MAGIC_V2: i8 = 2;
/// `producerId` of a batch written without an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch written without an idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch written without an idempotent producer.
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` before the broker stamps the batch.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Timestamp Kafka writes for "no timestamp" (e.g. base/max timestamp of an empty batch).
pub const NO_TIMESTAMP: i64 = -1;
