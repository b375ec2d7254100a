//! [`BatchBuilder`]: encodes records into one new RecordBatch v2.
//!
//! Records are encoded as they are pushed (the first record's timestamp becomes the base, so
//! later deltas are known at once); `build` compresses the section, fills the header and the CRC.
//! The output is byte-for-byte what Kafka's producers write for the same input, except that
//! `partitionLeaderEpoch` is -1 until the broker stamps it.

use bytes::BytesMut;
use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::IntoBytes;

use super::header::{compute_crc, ATTR_TRANSACTIONAL};
use super::record::{encode_record, RecordFields};
use super::{
    BatchError, BatchHeader, Compression, BATCH_HEADER_LEN, BATCH_LOG_OVERHEAD, MAGIC_V2,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
};

/// Builds one batch. Producer fields default to "no producer" (id -1, epoch -1, sequence -1).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    /// Encoded, uncompressed records.
    records: Vec<u8>,
    count: usize,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    /// Offset delta of the last pushed record.
    last_pushed_delta: Option<i32>,
    /// lastOffsetDelta forced by [`BatchBuilder::last_offset_delta`].
    forced_last_delta: Option<i32>,
}

impl BatchBuilder {
    /// An empty builder whose records section will be compressed with `compression`.
    pub fn new(compression: Compression) -> Self {
        Self {
            compression,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            records: Vec::new(),
            count: 0,
            base_timestamp: None,
            max_timestamp: NO_TIMESTAMP,
            last_pushed_delta: None,
            forced_last_delta: None,
        }
    }

    /// Set the idempotent producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Mark the batch transactional (attribute bit 4).
    pub fn transactional(mut self, yes: bool) -> Self {
        self.transactional = yes;
        self
    }

    /// Append a record at the next offset delta (0, 1, 2, ... after the last pushed one).
    ///
    /// Panics if a key, value or header is longer than i32::MAX bytes (Kafka cannot encode it).
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        let delta = match self.last_pushed_delta {
            None => 0,
            Some(last) => last.checked_add(1).expect("offset delta overflows i32"),
        };
        self.push_with_offset_delta(delta, timestamp, key, value, headers);
    }

    /// Append a record with an explicit offset delta (strictly increasing) — used by compaction,
    /// which keeps original offsets.
    ///
    /// Panics if `offset_delta` is negative or not above the previous one: the caller controls
    /// both, so that is a bug.
    pub fn push_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        assert!(offset_delta >= 0, "offset delta {offset_delta} is negative");
        assert!(
            self.last_pushed_delta
                .is_none_or(|last| offset_delta > last),
            "offset delta {offset_delta} not above the previous {:?}",
            self.last_pushed_delta
        );
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        self.max_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        encode_record(
            &mut self.records,
            &RecordFields {
                offset_delta,
                // Wraps like Kafka's Java arithmetic; the decoder wraps back.
                timestamp_delta: timestamp.wrapping_sub(base_timestamp),
                key,
                value,
                headers,
            },
        );
        self.count += 1;
        self.last_pushed_delta = Some(offset_delta);
    }

    /// Force lastOffsetDelta (compaction keeps the original batch's lastOffsetDelta even if the
    /// last records were removed). Panics if `delta` is below the last pushed delta, or if a
    /// record is pushed afterwards at a higher delta (checked in `build`).
    pub fn last_offset_delta(&mut self, delta: i32) {
        assert!(delta >= 0, "lastOffsetDelta {delta} is negative");
        assert!(
            self.last_pushed_delta.is_none_or(|last| delta >= last),
            "lastOffsetDelta {delta} below the last pushed delta {:?}",
            self.last_pushed_delta
        );
        self.forced_last_delta = Some(delta);
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed bytes so far incl. header, for batch.size checks.
    pub fn estimated_size(&self) -> usize {
        BATCH_HEADER_LEN + self.records.len()
    }

    /// baseOffset 0, partitionLeaderEpoch -1 (the broker stamps both), baseTimestamp = first
    /// record's timestamp, maxTimestamp = max, CRC filled. A batch with no records (compaction
    /// may keep one to preserve producer state) has both timestamps -1.
    pub fn build(self) -> Result<BytesMut, BatchError> {
        let last_delta = match (self.forced_last_delta, self.last_pushed_delta) {
            (Some(forced), Some(pushed)) => {
                assert!(
                    forced >= pushed,
                    "lastOffsetDelta {forced} below pushed delta {pushed}"
                );
                forced
            }
            (Some(forced), None) => forced,
            (None, pushed) => pushed.unwrap_or(0),
        };
        let section = match self.compression {
            Compression::None => self.records,
            codec => codec.compress(&self.records)?,
        };
        let total = BATCH_HEADER_LEN + section.len();
        let batch_length = i32::try_from(total - BATCH_LOG_OVERHEAD)
            .map_err(|_| BatchError::TooLarge { len: total })?;
        let records_count =
            i32::try_from(self.count).map_err(|_| BatchError::TooLarge { len: total })?;
        let mut attributes = self.compression.to_bits();
        if self.transactional {
            attributes |= ATTR_TRANSACTIONAL;
        }
        let header = BatchHeader {
            base_offset: I64::new(0),
            batch_length: I32::new(batch_length),
            partition_leader_epoch: I32::new(NO_PARTITION_LEADER_EPOCH),
            magic: MAGIC_V2,
            crc: U32::new(0),
            attributes: I16::new(attributes),
            last_offset_delta: I32::new(last_delta),
            base_timestamp: I64::new(self.base_timestamp.unwrap_or(NO_TIMESTAMP)),
            max_timestamp: I64::new(self.max_timestamp),
            producer_id: I64::new(self.producer_id),
            producer_epoch: I16::new(self.producer_epoch),
            base_sequence: I32::new(self.base_sequence),
            records_count: I32::new(records_count),
        };
        let mut out = BytesMut::with_capacity(total);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&section);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}
