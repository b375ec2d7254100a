//! OffsetCommit (key 30): store a group's consumed positions in `__consumer_offsets`.
//!
//! A member commits with its id and current epoch; a commit from a member that left, timed out
//! or holds an old epoch is fenced (UnknownMemberId, StaleMemberEpoch). A commit with an empty
//! `member_id` and epoch -1 comes from outside the group (a standalone consumer, or an offset
//! reset): it is accepted only while the group has no live members (NonEmptyGroup otherwise).
//! The response comes once the commit is durable.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// OffsetCommit request, version 0.
    pub struct OffsetCommitRequest {
        /// The group id.
        pub group_id: String,
        /// The member id, or empty for a commit from outside the group.
        pub member_id: String,
        /// The member's current epoch, or -1 for a commit from outside the group.
        pub member_epoch: i32,
        /// Offsets per topic.
        pub topics: Vec<OffsetCommitTopic>,
    }
}

wire_struct! {
    /// Offsets for one topic.
    pub struct OffsetCommitTopic {
        /// Topic name.
        pub name: String,
        /// Offsets per partition.
        pub partitions: Vec<OffsetCommitPartition>,
    }
}

wire_struct! {
    /// The offset to commit for one partition.
    pub struct OffsetCommitPartition {
        /// Partition number.
        pub partition: i32,
        /// The next offset to consume (one past the last processed record).
        pub committed_offset: i64,
        /// The leader epoch of the last consumed record, or -1.
        pub committed_leader_epoch: i32,
        /// Free text kept with the offset, or null.
        pub metadata: Option<String>,
    }
}

wire_struct! {
    /// OffsetCommit response, version 0.
    pub struct OffsetCommitResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// Results per topic, in request order.
        pub topics: Vec<OffsetCommitTopicResponse>,
    }
}

wire_struct! {
    /// Results for one topic.
    pub struct OffsetCommitTopicResponse {
        /// Topic name.
        pub name: String,
        /// Results per partition, in request order.
        pub partitions: Vec<OffsetCommitPartitionResponse>,
    }
}

wire_struct! {
    /// The result for one partition.
    pub struct OffsetCommitPartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
    }
}
