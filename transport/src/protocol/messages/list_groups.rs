//! ListGroups (key 22): every consumer group the broker coordinates.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// ListGroups request, version 0.
    pub struct ListGroupsRequest {
        /// Only groups in these states (`Empty`, `Reconciling`, `Stable`); empty for all.
        pub states_filter: Vec<String>,
    }
}

wire_struct! {
    /// ListGroups response, version 0.
    pub struct ListGroupsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome (a coordinator that could not answer makes the list partial).
        pub error_code: ErrorCode,
        /// The groups, sorted by id.
        pub groups: Vec<ListedGroup>,
    }
}

wire_struct! {
    /// One group.
    pub struct ListedGroup {
        /// The group id.
        pub group_id: String,
        /// The group's state.
        pub state: String,
        /// Live members.
        pub member_count: i32,
    }
}
