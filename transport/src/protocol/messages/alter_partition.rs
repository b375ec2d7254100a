//! AlterPartition (key 1102): a partition leader asks the active controller to change the
//! partition's ISR (ARCHITECTURE §8): to shrink it when a follower falls behind for longer than
//! `replica.lag.time.max.ms`, or to expand it when a follower has caught up (Kafka's
//! AlterPartition, KIP-497 and KIP-841).
//!
//! The change is conditional: it names the leader epoch and the partition epoch it is based
//! on, and the controller refuses it (`FencedLeaderEpoch`, `InvalidUpdateVersion`) when the
//! partition changed since. On success the controller answers with the partition's new state.
//! Until then the leader computes its high watermark over the maximal ISR (the current one and
//! the proposed one together): a change is in effect only once the controller committed it.
//! A broker that is not the active controller answers `NotController` for the whole
//! request; a sender whose broker epoch is not current gets `StaleBrokerEpoch`.

use super::super::codec::wire_struct;
use super::super::error_code::ErrorCode;

wire_struct! {
    /// AlterPartition request, version 0.
    pub struct AlterPartitionRequest {
        /// The id of the asking broker (the leader of every partition named).
        pub broker_id: i32,
        /// The asking broker's epoch, from its BrokerRegistration.
        pub broker_epoch: i64,
        /// Partitions per topic.
        pub topics: Vec<AlterPartitionTopic>,
    }
}

wire_struct! {
    /// Partitions of one topic whose ISR should change.
    pub struct AlterPartitionTopic {
        /// Topic name.
        pub name: String,
        /// The partitions.
        pub partitions: Vec<AlterPartitionPartition>,
    }
}

wire_struct! {
    /// One proposed ISR change.
    pub struct AlterPartitionPartition {
        /// Partition number.
        pub partition: i32,
        /// The leader epoch the sender leads in; another epoch than the partition's is refused
        /// with `FencedLeaderEpoch`.
        pub leader_epoch: i32,
        /// The partition epoch (bumped by every leader or ISR change) the proposal is based
        /// on; another epoch than the partition's is refused with `InvalidUpdateVersion`.
        pub partition_epoch: i32,
        /// The proposed ISR: broker ids, the leader included, without duplicates. A broker in
        /// it that is fenced or not registered is refused with `IneligibleReplica`.
        pub new_isr: Vec<i32>,
    }
}

wire_struct! {
    /// AlterPartition response, version 0.
    pub struct AlterPartitionResponse {
        /// Back-off requested by the controller, in milliseconds.
        pub throttle_time_ms: i32,
        /// The outcome of the whole request: `NotController` (ask another controller),
        /// `StaleBrokerEpoch` (the sender's registration is not current), ...; when not None,
        /// `topics` is empty.
        pub error_code: ErrorCode,
        /// Results per topic.
        pub topics: Vec<AlterPartitionTopicResponse>,
    }
}

wire_struct! {
    /// Results for one topic.
    pub struct AlterPartitionTopicResponse {
        /// Topic name.
        pub name: String,
        /// Results per partition.
        pub partitions: Vec<AlterPartitionPartitionResponse>,
    }
}

wire_struct! {
    /// The result of one proposed ISR change: on success, the partition's state with the
    /// change applied.
    pub struct AlterPartitionPartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The outcome: `FencedLeaderEpoch`, `InvalidUpdateVersion`, `IneligibleReplica`,
        /// `NotLeaderOrFollower` (the sender does not lead the partition),
        /// `UnknownTopicOrPartition`, `InvalidRequest` (an ISR without the leader, with a
        /// non-replica or a duplicate), ...
        pub error_code: ErrorCode,
        /// The leader's broker id, or -1 on error.
        pub leader_id: i32,
        /// The leader epoch, or -1 on error.
        pub leader_epoch: i32,
        /// The ISR now in effect (broker ids); empty on error.
        pub isr: Vec<i32>,
        /// The partition epoch after the change, to base the next proposal on; -1 on error.
        pub partition_epoch: i32,
    }
}
