//! OffsetForLeaderEpoch (key 1000): per partition, where a leader epoch ends in the leader's
//! log. A follower of a new leader asks for its own latest epoch and truncates its log where
//! the answer says the two logs diverge (KIP-101, KIP-279); a consumer can ask the same to
//! detect that the log it read was truncated under it (KIP-320).

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// OffsetForLeaderEpoch request, version 0.
    pub struct OffsetForLeaderEpochRequest {
        /// Broker id of the asking follower, or -1 for a consumer.
        pub replica_id: i32,
        /// Partitions per topic.
        pub topics: Vec<OffsetForLeaderEpochTopic>,
    }
}

wire_struct! {
    /// Partitions of one topic to look up.
    pub struct OffsetForLeaderEpochTopic {
        /// Topic name.
        pub name: String,
        /// The partitions.
        pub partitions: Vec<OffsetForLeaderEpochPartition>,
    }
}

wire_struct! {
    /// One lookup.
    pub struct OffsetForLeaderEpochPartition {
        /// Partition number.
        pub partition: i32,
        /// The leader epoch the asker knows, or -1 to skip the fencing check.
        pub current_leader_epoch: i32,
        /// The epoch whose end offset is wanted.
        pub leader_epoch: i32,
    }
}

wire_struct! {
    /// OffsetForLeaderEpoch response, version 0.
    pub struct OffsetForLeaderEpochResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// Results per topic.
        pub topics: Vec<OffsetForLeaderEpochTopicResponse>,
    }
}

wire_struct! {
    /// Results for one topic.
    pub struct OffsetForLeaderEpochTopicResponse {
        /// Topic name.
        pub name: String,
        /// Results per partition.
        pub partitions: Vec<OffsetForLeaderEpochPartitionResponse>,
    }
}

wire_struct! {
    /// The result of one lookup.
    pub struct OffsetForLeaderEpochPartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// The largest epoch at or below the one asked for that wrote to the log, or -1 if
        /// none did (or the one asked for is newer than any).
        pub leader_epoch: i32,
        /// Where the log moved past the epoch asked for: the start of the next greater epoch,
        /// or the log end if it is the latest; -1 when unknown.
        pub end_offset: i64,
    }
}
