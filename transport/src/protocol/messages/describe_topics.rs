//! DescribeTopics (key 12): a topic's effective config and, per partition, replicas and the log
//! start, end and high-watermark offsets (what `quiver topic describe` prints).

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// DescribeTopics request, version 0.
    pub struct DescribeTopicsRequest {
        /// The topics to describe.
        pub names: Vec<String>,
    }
}

wire_struct! {
    /// DescribeTopics response, version 0.
    pub struct DescribeTopicsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// One description per requested topic.
        pub topics: Vec<TopicDescription>,
    }
}

wire_struct! {
    /// One topic.
    pub struct TopicDescription {
        /// Topic name.
        pub name: String,
        /// Topic-level error; configs and partitions are empty when set.
        pub error_code: ErrorCode,
        /// A human-readable explanation when `error_code` is not None.
        pub error_message: Option<String>,
        /// Whether the topic is internal.
        pub is_internal: bool,
        /// Every config key with its effective value.
        pub configs: Vec<DescribedConfig>,
        /// Its partitions, by partition number.
        pub partitions: Vec<PartitionDescription>,
    }
}

wire_struct! {
    /// One effective config value.
    pub struct DescribedConfig {
        /// The config key.
        pub name: String,
        /// The effective value; null for sensitive values.
        pub value: Option<String>,
        /// True when the value is the default, false when the topic overrides it.
        pub is_default: bool,
    }
}

wire_struct! {
    /// One partition's replicas and offsets.
    pub struct PartitionDescription {
        /// Partition number.
        pub partition: i32,
        /// Partition-level error (e.g. StorageError for an offline log).
        pub error_code: ErrorCode,
        /// Broker id of the leader, or -1.
        pub leader_id: i32,
        /// The leader's epoch, or -1.
        pub leader_epoch: i32,
        /// Broker ids of all replicas.
        pub replicas: Vec<i32>,
        /// Broker ids of the in-sync replicas.
        pub isr: Vec<i32>,
        /// First offset still in the log.
        pub log_start_offset: i64,
        /// Offset the next appended record will get (log end offset).
        pub log_end_offset: i64,
        /// Offset up to which records are committed and visible to consumers.
        pub high_watermark: i64,
    }
}
