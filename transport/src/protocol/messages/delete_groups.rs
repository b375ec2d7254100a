//! DeleteGroups (key 24): delete groups without live members, with their committed offsets.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// DeleteGroups request, version 0.
    pub struct DeleteGroupsRequest {
        /// The groups.
        pub groups: Vec<String>,
    }
}

wire_struct! {
    /// DeleteGroups response, version 0.
    pub struct DeleteGroupsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One result per requested group, in request order.
        pub results: Vec<GroupResult>,
    }
}

wire_struct! {
    /// The outcome for one group.
    pub struct GroupResult {
        /// The group id.
        pub group_id: String,
        /// The outcome (NonEmptyGroup while members are live, GroupIdNotFound).
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
    }
}
