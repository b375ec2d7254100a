//! DeleteTopics (key 11): delete topics by name, with all their data.

use super::super::codec::wire_struct;
use super::TopicResult;

wire_struct! {
    /// DeleteTopics request, version 0.
    pub struct DeleteTopicsRequest {
        /// The topics to delete.
        pub names: Vec<String>,
        /// How long to wait for the deletion to reach every replica, in milliseconds.
        pub timeout_ms: i32,
    }
}

wire_struct! {
    /// DeleteTopics response, version 0.
    pub struct DeleteTopicsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One result per requested topic.
        pub topics: Vec<TopicResult>,
    }
}
