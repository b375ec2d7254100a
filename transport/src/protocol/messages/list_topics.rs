//! ListTopics (key 13): every topic name with its partition count and replication factor.

use super::super::codec::wire_struct;

wire_struct! {
    /// ListTopics request, version 0.
    pub struct ListTopicsRequest {
        /// Whether to include internal topics.
        pub include_internal: bool,
    }
}

wire_struct! {
    /// ListTopics response, version 0.
    pub struct ListTopicsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// The topics, sorted by name.
        pub topics: Vec<ListedTopic>,
    }
}

wire_struct! {
    /// One topic.
    pub struct ListedTopic {
        /// Topic name.
        pub name: String,
        /// Number of partitions.
        pub partition_count: i32,
        /// Replicas per partition.
        pub replication_factor: i16,
        /// Whether the topic is internal.
        pub is_internal: bool,
    }
}
