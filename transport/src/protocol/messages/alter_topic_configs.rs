//! AlterTopicConfigs (key 14): set or reset topic config keys. Keys not named keep their value
//! (incremental, like Kafka's IncrementalAlterConfigs with SET and DELETE).

use super::super::codec::wire_struct;
use super::{ConfigEntry, TopicResult};

wire_struct! {
    /// AlterTopicConfigs request, version 0.
    pub struct AlterTopicConfigsRequest {
        /// The topics to change.
        pub topics: Vec<AlterableTopic>,
        /// Validate only: check the changes without applying them.
        pub validate_only: bool,
    }
}

wire_struct! {
    /// The changes to one topic.
    pub struct AlterableTopic {
        /// Topic name.
        pub name: String,
        /// Keys to set; a null value resets the key to its default.
        pub configs: Vec<ConfigEntry>,
    }
}

wire_struct! {
    /// AlterTopicConfigs response, version 0.
    pub struct AlterTopicConfigsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One result per requested topic; a topic's changes apply all or none.
        pub topics: Vec<TopicResult>,
    }
}
