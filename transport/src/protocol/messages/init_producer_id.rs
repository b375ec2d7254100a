//! InitProducerId (key 35): a producer id and epoch for an idempotent producer.
//!
//! The producer stamps them, with a per-partition sequence number, into every RecordBatch it
//! sends; the partition leader keeps the last five batch sequences per producer and answers a
//! resent batch with the offsets of the original instead of appending it twice.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// InitProducerId request, version 0.
    pub struct InitProducerIdRequest {
        /// Transactional id, or null for an idempotent (non-transactional) producer.
        pub transactional_id: Option<String>,
        /// Transaction timeout in milliseconds (ignored without a transactional id).
        pub transaction_timeout_ms: i32,
        /// The producer's current id to bump its epoch, or -1 for a new one.
        pub producer_id: i64,
        /// The producer's current epoch, or -1.
        pub producer_epoch: i16,
    }
}

wire_struct! {
    /// InitProducerId response, version 0.
    pub struct InitProducerIdResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// The producer id, or -1 on error.
        pub producer_id: i64,
        /// The producer epoch, or -1 on error.
        pub producer_epoch: i16,
    }
}
