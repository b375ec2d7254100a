//! FindCoordinator (key 20): which broker and shard coordinate a consumer group.
//!
//! The coordinator of group `g` is the owner of partition `hash(g) % 50` of the internal topic
//! `__consumer_offsets`; the response names that broker and the UDP port of the owning shard, so
//! a client sends its group requests straight to the core that serves them. Any shard still
//! accepts group requests and forwards them.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

/// `key_type` of a consumer group.
pub const COORDINATOR_KEY_GROUP: i8 = 0;

wire_struct! {
    /// FindCoordinator request, version 0.
    pub struct FindCoordinatorRequest {
        /// The group id.
        pub key: String,
        /// What `key` names: [`COORDINATOR_KEY_GROUP`] (transactional ids are reserved for 1).
        pub key_type: i8,
    }
}

wire_struct! {
    /// FindCoordinator response, version 0.
    pub struct FindCoordinatorResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// The coordinator's broker id, or -1 on error.
        pub node_id: i32,
        /// The coordinator's host, or empty on error.
        pub host: String,
        /// The UDP port of the coordinating shard, or -1 on error.
        pub port: i32,
        /// The coordinating shard's index, or -1 on error.
        pub shard: i32,
    }
}
