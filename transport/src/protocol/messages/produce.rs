//! Produce (key 2): append record batches to partitions.
//!
//! The records of each partition are raw RecordBatch v2 bytes, carried as `Bytes` and never
//! decoded here: the producer id, epoch and base sequence of idempotent producers live inside the
//! batch header, and the engine validates the batch (CRC, length, magic) before appending it.
//!
//! With [`Acks::None`] the broker sends no response frame (Kafka semantics): the client must not
//! wait for one.

use bytes::Bytes;

use super::super::codec::{wire_struct, DecodeError, Encoder, Reader, Wire};
use super::super::error_code::ErrorCode;

/// How many acknowledgements the producer waits for; `i16` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `0`: no acknowledgement; the broker sends no response.
    None,
    /// `1`: the leader appended the batch.
    Leader,
    /// `-1`: every in-sync replica has the batch (on one node: durable per the topic's flush
    /// policy).
    #[default]
    All,
}

impl Acks {
    /// The wire value.
    pub const fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// The acks for a wire value, or `None` if it is not 0, 1 or -1.
    pub const fn from_code(code: i16) -> Option<Acks> {
        match code {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

impl Wire for Acks {
    const WIRE_BYTES_MIN: usize = 2;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        let code = r.i16(what)?;
        Acks::from_code(code).ok_or(DecodeError::InvalidAcks(code))
    }
    fn encode(&self, w: &mut Encoder, _version: u16, _what: &'static str) {
        w.i16(self.code());
    }
}

wire_struct! {
    /// Produce request, version 0.
    pub struct ProduceRequest {
        /// Transactional id of a transactional producer, null otherwise.
        pub transactional_id: Option<String>,
        /// Acknowledgements to wait for.
        pub acks: Acks,
        /// How long the broker may wait for `acks` before answering RequestTimedOut, in
        /// milliseconds.
        pub timeout_ms: i32,
        /// Batches per topic.
        pub topics: Vec<ProduceTopic>,
    }
}

wire_struct! {
    /// Batches for one topic.
    pub struct ProduceTopic {
        /// Topic name.
        pub name: String,
        /// Batches per partition.
        pub partitions: Vec<ProducePartition>,
    }
}

wire_struct! {
    /// Batches for one partition.
    pub struct ProducePartition {
        /// Partition number.
        pub partition: i32,
        /// One or more RecordBatch v2, back to back, as the producer built them.
        pub records: Bytes,
    }
}

wire_struct! {
    /// Produce response, version 0.
    pub struct ProduceResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// Results per topic.
        pub topics: Vec<ProduceTopicResponse>,
    }
}

wire_struct! {
    /// Results for one topic.
    pub struct ProduceTopicResponse {
        /// Topic name.
        pub name: String,
        /// Results per partition.
        pub partitions: Vec<ProducePartitionResponse>,
    }
}

wire_struct! {
    /// The result for one partition.
    pub struct ProducePartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// Offset given to the first record, or -1 on error.
        pub base_offset: i64,
        /// The broker's append time when the topic uses log-append time, otherwise -1.
        pub log_append_time_ms: i64,
        /// The partition's log start offset after the append, or -1.
        pub log_start_offset: i64,
    }
}
