//! OffsetFetch (key 31): a group's committed offsets.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// OffsetFetch request, version 0.
    pub struct OffsetFetchRequest {
        /// The group id.
        pub group_id: String,
        /// The partitions to look up, or null for every partition the group committed.
        pub topics: Option<Vec<OffsetFetchTopic>>,
    }
}

wire_struct! {
    /// Partitions of one topic to look up.
    pub struct OffsetFetchTopic {
        /// Topic name.
        pub name: String,
        /// Partition numbers.
        pub partitions: Vec<i32>,
    }
}

wire_struct! {
    /// OffsetFetch response, version 0.
    pub struct OffsetFetchResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome for the whole group (e.g. CoordinatorLoadInProgress).
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// Committed offsets per topic.
        pub topics: Vec<OffsetFetchTopicResponse>,
    }
}

wire_struct! {
    /// Committed offsets of one topic.
    pub struct OffsetFetchTopicResponse {
        /// Topic name.
        pub name: String,
        /// Per partition.
        pub partitions: Vec<OffsetFetchPartitionResponse>,
    }
}

wire_struct! {
    /// The committed offset of one partition.
    pub struct OffsetFetchPartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The committed offset, or -1 when the group has none for this partition.
        pub committed_offset: i64,
        /// The leader epoch committed with it, or -1.
        pub committed_leader_epoch: i32,
        /// The metadata committed with it, or null.
        pub metadata: Option<String>,
        /// The outcome for this partition.
        pub error_code: ErrorCode,
    }
}
