//! Metadata (key 1): the brokers of the cluster and, per topic and partition, the leader, its
//! address, and the port of the shard that owns the partition (ARCHITECTURE §5: clients send
//! produce and fetch straight to that port).

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// Metadata request, version 0.
    pub struct MetadataRequest {
        /// Topics to describe; null means every topic, empty means none (brokers only).
        pub topics: Option<Vec<String>>,
    }
}

wire_struct! {
    /// Metadata response, version 0.
    pub struct MetadataResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// Cluster identifier, if the broker has one.
        pub cluster_id: Option<String>,
        /// Broker id of the active controller, or -1.
        pub controller_id: i32,
        /// Every live broker.
        pub brokers: Vec<BrokerMetadata>,
        /// The requested topics.
        pub topics: Vec<TopicMetadata>,
    }
}

wire_struct! {
    /// One broker.
    pub struct BrokerMetadata {
        /// Broker id.
        pub broker_id: i32,
        /// Host name or address clients connect to.
        pub host: String,
        /// UDP port of shard 0; shard `s` listens on `port + s`.
        pub port: u16,
        /// Shards (cores) the broker runs.
        pub shard_count: u16,
    }
}

wire_struct! {
    /// One topic.
    pub struct TopicMetadata {
        /// Topic-level error (e.g. UnknownTopicOrPartition); partitions are empty when set.
        pub error_code: ErrorCode,
        /// Topic name.
        pub name: String,
        /// Whether the topic is internal (e.g. `__consumer_offsets`).
        pub is_internal: bool,
        /// Its partitions, by partition number.
        pub partitions: Vec<PartitionMetadata>,
    }
}

wire_struct! {
    /// One partition and where to reach its leader.
    pub struct PartitionMetadata {
        /// Partition-level error (e.g. LeaderNotAvailable).
        pub error_code: ErrorCode,
        /// Partition number.
        pub partition: i32,
        /// Broker id of the leader, or -1 if none.
        pub leader_id: i32,
        /// The leader's epoch, or -1.
        pub leader_epoch: i32,
        /// The leader's host.
        pub leader_host: String,
        /// The leader's shard-0 port.
        pub leader_port: u16,
        /// Index of the leader's shard that owns this partition.
        pub leader_shard: u16,
        /// UDP port of that shard: send produce and fetch for this partition here.
        pub leader_shard_port: u16,
        /// Broker ids of all replicas, preferred leader first.
        pub replicas: Vec<i32>,
        /// Broker ids of the in-sync replicas.
        pub isr: Vec<i32>,
    }
}
