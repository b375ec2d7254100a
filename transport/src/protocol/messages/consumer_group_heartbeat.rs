//! ConsumerGroupHeartbeat (key 21): join, stay in and leave a consumer group, and receive the
//! partitions the member may consume. The group's assignor runs on the coordinator.
//!
//! Member epochs: a member joins with `member_epoch` 0 (and an empty `member_id`: the
//! coordinator names it), heartbeats with the epoch it was last given, and leaves with -1.
//! Every response carries the member's whole current assignment. When a rebalance moves a
//! partition away from a member, the member's assignment shrinks first; the member stops
//! consuming it, commits, and says so by leaving it out of `owned` in its next heartbeat; only
//! then does the partition go to its new owner. A partition is never assigned to two members at
//! once.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

/// `member_epoch` of a joining member.
pub const MEMBER_EPOCH_JOIN: i32 = 0;
/// `member_epoch` of a leaving member.
pub const MEMBER_EPOCH_LEAVE: i32 = -1;

wire_struct! {
    /// Partitions of one topic.
    pub struct GroupTopicPartitions {
        /// Topic name.
        pub topic: String,
        /// Partition numbers, ascending.
        pub partitions: Vec<i32>,
    }
}

wire_struct! {
    /// ConsumerGroupHeartbeat request, version 0.
    pub struct ConsumerGroupHeartbeatRequest {
        /// The group id.
        pub group_id: String,
        /// The member id the coordinator gave; empty when joining for the first time.
        pub member_id: String,
        /// 0 to join, -1 to leave, otherwise the member's current epoch.
        pub member_epoch: i32,
        /// How long the member may take to give up revoked partitions, in milliseconds.
        pub rebalance_timeout_ms: i32,
        /// How long the coordinator waits for a heartbeat before removing the member.
        pub session_timeout_ms: i32,
        /// The topics the member subscribes to.
        pub subscribed_topics: Vec<String>,
        /// The server-side assignor the member asks for (`range`, `roundrobin`,
        /// `cooperative-sticky`), or null for the broker's default.
        pub assignor: Option<String>,
        /// The partitions the member still owns (its revocation acknowledgement).
        pub owned: Vec<GroupTopicPartitions>,
    }
}

wire_struct! {
    /// ConsumerGroupHeartbeat response, version 0.
    pub struct ConsumerGroupHeartbeatResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// The member id (assigned on the first join).
        pub member_id: String,
        /// The member's epoch: send it with the next heartbeat and with offset commits.
        pub member_epoch: i32,
        /// How often to heartbeat, in milliseconds.
        pub heartbeat_interval_ms: i32,
        /// Every partition the member may consume now.
        pub assignment: Vec<GroupTopicPartitions>,
    }
}
