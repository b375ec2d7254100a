//! CreateTopics (key 10): create topics with a partition count, a replication factor and config
//! overrides, or only check that they could be created (`validate_only`).

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;
use super::ConfigEntry;

wire_struct! {
    /// CreateTopics request, version 0.
    pub struct CreateTopicsRequest {
        /// The topics to create.
        pub topics: Vec<CreatableTopic>,
        /// How long to wait for the topics to exist on every replica, in milliseconds.
        pub timeout_ms: i32,
        /// Validate only: check names, counts and configs without creating anything.
        pub validate_only: bool,
    }
}

wire_struct! {
    /// One topic to create.
    pub struct CreatableTopic {
        /// Topic name.
        pub name: String,
        /// Number of partitions, at least 1; -1 for the broker default.
        pub partition_count: i32,
        /// Replicas per partition, at least 1; -1 for the broker default.
        pub replication_factor: i16,
        /// Config overrides (values are never null here).
        pub configs: Vec<ConfigEntry>,
    }
}

wire_struct! {
    /// CreateTopics response, version 0.
    pub struct CreateTopicsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One result per requested topic.
        pub topics: Vec<CreatedTopic>,
    }
}

wire_struct! {
    /// The outcome for one topic.
    pub struct CreatedTopic {
        /// Topic name.
        pub name: String,
        /// The outcome (e.g. TopicAlreadyExists, InvalidPartitions, InvalidConfig).
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// Partitions created (or that would be), -1 on error.
        pub partition_count: i32,
        /// Replication factor used, -1 on error.
        pub replication_factor: i16,
    }
}
