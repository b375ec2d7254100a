//! DescribeGroups (key 23): a group's state, assignor, members and their assignments.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;
use super::consumer_group_heartbeat::GroupTopicPartitions;

wire_struct! {
    /// DescribeGroups request, version 0.
    pub struct DescribeGroupsRequest {
        /// The groups.
        pub groups: Vec<String>,
    }
}

wire_struct! {
    /// DescribeGroups response, version 0.
    pub struct DescribeGroupsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One entry per requested group, in request order.
        pub groups: Vec<DescribedGroup>,
    }
}

wire_struct! {
    /// One group.
    pub struct DescribedGroup {
        /// The group id.
        pub group_id: String,
        /// The outcome (GroupIdNotFound for a group with neither members nor offsets).
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// `Empty`, `Reconciling` or `Stable`.
        pub state: String,
        /// Bumped on every membership, subscription or partition-count change.
        pub group_epoch: i32,
        /// The group epoch the target assignment was computed for.
        pub assignment_epoch: i32,
        /// The assignor's name.
        pub assignor: String,
        /// The live members, sorted by id.
        pub members: Vec<DescribedMember>,
    }
}

wire_struct! {
    /// One member.
    pub struct DescribedMember {
        /// The member id.
        pub member_id: String,
        /// The client id the member sent.
        pub client_id: String,
        /// The member's address, as the broker saw it (empty when unknown).
        pub client_host: String,
        /// The member's epoch.
        pub member_epoch: i32,
        /// The topics it subscribes to.
        pub subscribed_topics: Vec<String>,
        /// What it owns now.
        pub assignment: Vec<GroupTopicPartitions>,
        /// What the assignor wants it to own (differs while reconciling).
        pub target_assignment: Vec<GroupTopicPartitions>,
    }
}
