//! Shared test support: a seeded generator of random protocol values ([`Arb`]) and helpers to
//! build and encode frames. Each test binary uses a different subset, hence the `allow`.
#![allow(dead_code)]

use bytes::Bytes;
use quiver_transport::protocol::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded random source with helpers biased towards edge cases (empty, null, extremes).
pub struct Gen {
    pub rng: StdRng,
}

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u32) -> bool {
        self.rng.gen_range(0..n) == 0
    }

    /// A length for a collection: usually small, sometimes empty.
    pub fn len(&mut self, max: usize) -> usize {
        if self.one_in(4) {
            0
        } else {
            self.rng.gen_range(0..=max)
        }
    }

    pub fn string(&mut self) -> String {
        const ALPHABET: &[char] = &['a', 'z', '0', '.', '-', '_', 'é', '√', '🦀', ' '];
        if self.one_in(50) {
            // Near the u16 limit, to cover two-byte lengths.
            return "x".repeat(self.rng.gen_range(300..1000));
        }
        let len = self.len(12);
        (0..len)
            .map(|_| ALPHABET[self.rng.gen_range(0..ALPHABET.len())])
            .collect()
    }

    pub fn opt_string(&mut self) -> Option<String> {
        if self.one_in(3) {
            None
        } else {
            Some(self.string())
        }
    }

    /// Bytes of a varied size: empty, small (inlined by the encoder) or above
    /// `PAYLOAD_INLINE_BYTES_MAX` (sent as its own chunk).
    pub fn bytes(&mut self) -> Bytes {
        let len = match self.rng.gen_range(0..4) {
            0 => 0,
            1 => self.rng.gen_range(1..64),
            2 => self.rng.gen_range(64..=PAYLOAD_INLINE_BYTES_MAX),
            _ => self.rng.gen_range(PAYLOAD_INLINE_BYTES_MAX + 1..5000),
        };
        let mut v = vec![0u8; len];
        self.rng.fill(&mut v[..]);
        Bytes::from(v)
    }

    pub fn i16(&mut self) -> i16 {
        match self.rng.gen_range(0..6) {
            0 => -1,
            1 => 0,
            2 => i16::MIN,
            3 => i16::MAX,
            _ => self.rng.gen(),
        }
    }

    pub fn i32(&mut self) -> i32 {
        match self.rng.gen_range(0..6) {
            0 => -1,
            1 => 0,
            2 => i32::MIN,
            3 => i32::MAX,
            _ => self.rng.gen(),
        }
    }

    pub fn i64(&mut self) -> i64 {
        match self.rng.gen_range(0..6) {
            0 => -1,
            1 => 0,
            2 => i64::MIN,
            3 => i64::MAX,
            _ => self.rng.gen(),
        }
    }

    pub fn u16(&mut self) -> u16 {
        match self.rng.gen_range(0..4) {
            0 => 0,
            1 => u16::MAX,
            _ => self.rng.gen(),
        }
    }

    pub fn u32(&mut self) -> u32 {
        match self.rng.gen_range(0..4) {
            0 => 0,
            1 => u32::MAX,
            _ => self.rng.gen(),
        }
    }

    pub fn bool(&mut self) -> bool {
        self.rng.gen()
    }

    /// Any error code, including ones this build does not know.
    pub fn error_code(&mut self) -> ErrorCode {
        if self.one_in(3) {
            ErrorCode::None
        } else if self.one_in(5) {
            ErrorCode::from_code(self.rng.gen())
        } else {
            let known = ErrorCode::KNOWN;
            known[self.rng.gen_range(0..known.len())]
        }
    }

    pub fn vec<T: Arb>(&mut self, max: usize) -> Vec<T> {
        let len = self.len(max);
        (0..len).map(|_| T::arb(self)).collect()
    }

    pub fn records(&mut self) -> Records {
        let chunks = self.len(3);
        let mut records = Records::new();
        for _ in 0..chunks {
            records.push(self.bytes());
        }
        records
    }
}

/// A type with a random generator.
pub trait Arb: Sized {
    fn arb(g: &mut Gen) -> Self;
}

impl Arb for String {
    fn arb(g: &mut Gen) -> Self {
        g.string()
    }
}

impl Arb for i32 {
    fn arb(g: &mut Gen) -> Self {
        g.i32()
    }
}

impl Arb for ConfigEntry {
    fn arb(g: &mut Gen) -> Self {
        ConfigEntry {
            name: g.string(),
            value: g.opt_string(),
        }
    }
}

impl Arb for TopicResult {
    fn arb(g: &mut Gen) -> Self {
        TopicResult {
            name: g.string(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
        }
    }
}

impl Arb for ApiVersionsRequest {
    fn arb(g: &mut Gen) -> Self {
        ApiVersionsRequest {
            client_software_name: g.string(),
            client_software_version: g.string(),
        }
    }
}

impl Arb for ApiVersionRange {
    fn arb(g: &mut Gen) -> Self {
        ApiVersionRange {
            api_key: g.u16(),
            version_min: g.u16(),
            version_max: g.u16(),
        }
    }
}

impl Arb for ApiVersionsResponse {
    fn arb(g: &mut Gen) -> Self {
        ApiVersionsResponse {
            throttle_time_ms: g.i32(),
            api_versions: g.vec(12),
            frame_bytes_max: g.u32(),
        }
    }
}

impl Arb for MetadataRequest {
    fn arb(g: &mut Gen) -> Self {
        MetadataRequest {
            topics: if g.one_in(3) { None } else { Some(g.vec(5)) },
        }
    }
}

impl Arb for BrokerMetadata {
    fn arb(g: &mut Gen) -> Self {
        BrokerMetadata {
            broker_id: g.i32(),
            host: g.string(),
            port: g.u16(),
            shard_count: g.u16(),
        }
    }
}

impl Arb for PartitionMetadata {
    fn arb(g: &mut Gen) -> Self {
        PartitionMetadata {
            error_code: g.error_code(),
            partition: g.i32(),
            leader_id: g.i32(),
            leader_epoch: g.i32(),
            leader_host: g.string(),
            leader_port: g.u16(),
            leader_shard: g.u16(),
            leader_shard_port: g.u16(),
            replicas: g.vec(4),
            isr: g.vec(4),
        }
    }
}

impl Arb for TopicMetadata {
    fn arb(g: &mut Gen) -> Self {
        TopicMetadata {
            error_code: g.error_code(),
            name: g.string(),
            is_internal: g.bool(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for MetadataResponse {
    fn arb(g: &mut Gen) -> Self {
        MetadataResponse {
            throttle_time_ms: g.i32(),
            cluster_id: g.opt_string(),
            controller_id: g.i32(),
            brokers: g.vec(3),
            topics: g.vec(3),
        }
    }
}

impl Arb for CreatableTopic {
    fn arb(g: &mut Gen) -> Self {
        CreatableTopic {
            name: g.string(),
            partition_count: g.i32(),
            replication_factor: g.i16(),
            configs: g.vec(4),
        }
    }
}

impl Arb for CreateTopicsRequest {
    fn arb(g: &mut Gen) -> Self {
        CreateTopicsRequest {
            topics: g.vec(3),
            timeout_ms: g.i32(),
            validate_only: g.bool(),
        }
    }
}

impl Arb for CreatedTopic {
    fn arb(g: &mut Gen) -> Self {
        CreatedTopic {
            name: g.string(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            partition_count: g.i32(),
            replication_factor: g.i16(),
        }
    }
}

impl Arb for CreateTopicsResponse {
    fn arb(g: &mut Gen) -> Self {
        CreateTopicsResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for DeleteTopicsRequest {
    fn arb(g: &mut Gen) -> Self {
        DeleteTopicsRequest {
            names: g.vec(4),
            timeout_ms: g.i32(),
        }
    }
}

impl Arb for DeleteTopicsResponse {
    fn arb(g: &mut Gen) -> Self {
        DeleteTopicsResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(4),
        }
    }
}

impl Arb for DescribeTopicsRequest {
    fn arb(g: &mut Gen) -> Self {
        DescribeTopicsRequest { names: g.vec(4) }
    }
}

impl Arb for DescribedConfig {
    fn arb(g: &mut Gen) -> Self {
        DescribedConfig {
            name: g.string(),
            value: g.opt_string(),
            is_default: g.bool(),
        }
    }
}

impl Arb for PartitionDescription {
    fn arb(g: &mut Gen) -> Self {
        PartitionDescription {
            partition: g.i32(),
            error_code: g.error_code(),
            leader_id: g.i32(),
            leader_epoch: g.i32(),
            replicas: g.vec(4),
            isr: g.vec(4),
            log_start_offset: g.i64(),
            log_end_offset: g.i64(),
            high_watermark: g.i64(),
        }
    }
}

impl Arb for TopicDescription {
    fn arb(g: &mut Gen) -> Self {
        TopicDescription {
            name: g.string(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            is_internal: g.bool(),
            configs: g.vec(4),
            partitions: g.vec(4),
        }
    }
}

impl Arb for DescribeTopicsResponse {
    fn arb(g: &mut Gen) -> Self {
        DescribeTopicsResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for ListTopicsRequest {
    fn arb(g: &mut Gen) -> Self {
        ListTopicsRequest {
            include_internal: g.bool(),
        }
    }
}

impl Arb for ListedTopic {
    fn arb(g: &mut Gen) -> Self {
        ListedTopic {
            name: g.string(),
            partition_count: g.i32(),
            replication_factor: g.i16(),
            is_internal: g.bool(),
        }
    }
}

impl Arb for ListTopicsResponse {
    fn arb(g: &mut Gen) -> Self {
        ListTopicsResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(5),
        }
    }
}

impl Arb for AlterableTopic {
    fn arb(g: &mut Gen) -> Self {
        AlterableTopic {
            name: g.string(),
            configs: g.vec(4),
        }
    }
}

impl Arb for AlterTopicConfigsRequest {
    fn arb(g: &mut Gen) -> Self {
        AlterTopicConfigsRequest {
            topics: g.vec(3),
            validate_only: g.bool(),
        }
    }
}

impl Arb for AlterTopicConfigsResponse {
    fn arb(g: &mut Gen) -> Self {
        AlterTopicConfigsResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for Acks {
    fn arb(g: &mut Gen) -> Self {
        [Acks::None, Acks::Leader, Acks::All][g.rng.gen_range(0..3)]
    }
}

impl Arb for ProducePartition {
    fn arb(g: &mut Gen) -> Self {
        ProducePartition {
            partition: g.i32(),
            records: g.bytes(),
        }
    }
}

impl Arb for ProduceTopic {
    fn arb(g: &mut Gen) -> Self {
        ProduceTopic {
            name: g.string(),
            partitions: g.vec(3),
        }
    }
}

impl Arb for ProduceRequest {
    fn arb(g: &mut Gen) -> Self {
        ProduceRequest {
            transactional_id: g.opt_string(),
            acks: Acks::arb(g),
            timeout_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for ProducePartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        ProducePartitionResponse {
            partition: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            base_offset: g.i64(),
            log_append_time_ms: g.i64(),
            log_start_offset: g.i64(),
        }
    }
}

impl Arb for ProduceTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        ProduceTopicResponse {
            name: g.string(),
            partitions: g.vec(3),
        }
    }
}

impl Arb for ProduceResponse {
    fn arb(g: &mut Gen) -> Self {
        ProduceResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for IsolationLevel {
    fn arb(g: &mut Gen) -> Self {
        if g.bool() {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::ReadUncommitted
        }
    }
}

impl Arb for FetchPartition {
    fn arb(g: &mut Gen) -> Self {
        FetchPartition {
            partition: g.i32(),
            current_leader_epoch: g.i32(),
            fetch_offset: g.i64(),
            log_start_offset: g.i64(),
            partition_max_bytes: g.i32(),
        }
    }
}

impl Arb for FetchTopic {
    fn arb(g: &mut Gen) -> Self {
        FetchTopic {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for FetchRequest {
    fn arb(g: &mut Gen) -> Self {
        FetchRequest {
            replica_id: g.i32(),
            max_wait_ms: g.i32(),
            min_bytes: g.i32(),
            max_bytes: g.i32(),
            isolation_level: IsolationLevel::arb(g),
            topics: g.vec(3),
        }
    }
}

impl Arb for AbortedTransaction {
    fn arb(g: &mut Gen) -> Self {
        AbortedTransaction {
            producer_id: g.i64(),
            first_offset: g.i64(),
        }
    }
}

impl Arb for FetchPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        FetchPartitionResponse {
            partition: g.i32(),
            error_code: g.error_code(),
            high_watermark: g.i64(),
            last_stable_offset: g.i64(),
            log_start_offset: g.i64(),
            aborted_transactions: g.vec(2),
            records: g.records(),
        }
    }
}

impl Arb for FetchTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        FetchTopicResponse {
            name: g.string(),
            partitions: g.vec(3),
        }
    }
}

impl Arb for FetchResponse {
    fn arb(g: &mut Gen) -> Self {
        FetchResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for OffsetSpec {
    fn arb(g: &mut Gen) -> Self {
        match g.rng.gen_range(0..4) {
            0 => OffsetSpec::Latest,
            1 => OffsetSpec::Earliest,
            2 => OffsetSpec::Timestamp(0),
            _ => OffsetSpec::Timestamp(g.rng.gen_range(0..=i64::MAX)),
        }
    }
}

impl Arb for ListOffsetsPartition {
    fn arb(g: &mut Gen) -> Self {
        ListOffsetsPartition {
            partition: g.i32(),
            current_leader_epoch: g.i32(),
            timestamp: OffsetSpec::arb(g),
        }
    }
}

impl Arb for ListOffsetsTopic {
    fn arb(g: &mut Gen) -> Self {
        ListOffsetsTopic {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for ListOffsetsRequest {
    fn arb(g: &mut Gen) -> Self {
        ListOffsetsRequest {
            replica_id: g.i32(),
            isolation_level: IsolationLevel::arb(g),
            topics: g.vec(3),
        }
    }
}

impl Arb for ListOffsetsPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        ListOffsetsPartitionResponse {
            partition: g.i32(),
            error_code: g.error_code(),
            timestamp_ms: g.i64(),
            offset: g.i64(),
            leader_epoch: g.i32(),
        }
    }
}

impl Arb for ListOffsetsTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        ListOffsetsTopicResponse {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for ListOffsetsResponse {
    fn arb(g: &mut Gen) -> Self {
        ListOffsetsResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for FindCoordinatorRequest {
    fn arb(g: &mut Gen) -> Self {
        FindCoordinatorRequest {
            key: g.string(),
            key_type: g.rng.gen(),
        }
    }
}

impl Arb for FindCoordinatorResponse {
    fn arb(g: &mut Gen) -> Self {
        FindCoordinatorResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            node_id: g.i32(),
            host: g.string(),
            port: g.i32(),
            shard: g.i32(),
        }
    }
}

impl Arb for GroupTopicPartitions {
    fn arb(g: &mut Gen) -> Self {
        GroupTopicPartitions {
            topic: g.string(),
            partitions: g.vec(6),
        }
    }
}

impl Arb for ConsumerGroupHeartbeatRequest {
    fn arb(g: &mut Gen) -> Self {
        ConsumerGroupHeartbeatRequest {
            group_id: g.string(),
            member_id: g.string(),
            member_epoch: g.i32(),
            rebalance_timeout_ms: g.i32(),
            session_timeout_ms: g.i32(),
            subscribed_topics: g.vec(4),
            assignor: g.opt_string(),
            owned: g.vec(3),
        }
    }
}

impl Arb for ConsumerGroupHeartbeatResponse {
    fn arb(g: &mut Gen) -> Self {
        ConsumerGroupHeartbeatResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            member_id: g.string(),
            member_epoch: g.i32(),
            heartbeat_interval_ms: g.i32(),
            assignment: g.vec(3),
        }
    }
}

impl Arb for ListGroupsRequest {
    fn arb(g: &mut Gen) -> Self {
        ListGroupsRequest {
            states_filter: g.vec(3),
        }
    }
}

impl Arb for ListedGroup {
    fn arb(g: &mut Gen) -> Self {
        ListedGroup {
            group_id: g.string(),
            state: g.string(),
            member_count: g.i32(),
        }
    }
}

impl Arb for ListGroupsResponse {
    fn arb(g: &mut Gen) -> Self {
        ListGroupsResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            groups: g.vec(4),
        }
    }
}

impl Arb for DescribeGroupsRequest {
    fn arb(g: &mut Gen) -> Self {
        DescribeGroupsRequest { groups: g.vec(4) }
    }
}

impl Arb for DescribedMember {
    fn arb(g: &mut Gen) -> Self {
        DescribedMember {
            member_id: g.string(),
            client_id: g.string(),
            client_host: g.string(),
            member_epoch: g.i32(),
            subscribed_topics: g.vec(3),
            assignment: g.vec(3),
            target_assignment: g.vec(3),
        }
    }
}

impl Arb for DescribedGroup {
    fn arb(g: &mut Gen) -> Self {
        DescribedGroup {
            group_id: g.string(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            state: g.string(),
            group_epoch: g.i32(),
            assignment_epoch: g.i32(),
            assignor: g.string(),
            members: g.vec(3),
        }
    }
}

impl Arb for DescribeGroupsResponse {
    fn arb(g: &mut Gen) -> Self {
        DescribeGroupsResponse {
            throttle_time_ms: g.i32(),
            groups: g.vec(3),
        }
    }
}

impl Arb for DeleteGroupsRequest {
    fn arb(g: &mut Gen) -> Self {
        DeleteGroupsRequest { groups: g.vec(4) }
    }
}

impl Arb for GroupResult {
    fn arb(g: &mut Gen) -> Self {
        GroupResult {
            group_id: g.string(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
        }
    }
}

impl Arb for DeleteGroupsResponse {
    fn arb(g: &mut Gen) -> Self {
        DeleteGroupsResponse {
            throttle_time_ms: g.i32(),
            results: g.vec(4),
        }
    }
}

impl Arb for OffsetCommitPartition {
    fn arb(g: &mut Gen) -> Self {
        OffsetCommitPartition {
            partition: g.i32(),
            committed_offset: g.i64(),
            committed_leader_epoch: g.i32(),
            metadata: g.opt_string(),
        }
    }
}

impl Arb for OffsetCommitTopic {
    fn arb(g: &mut Gen) -> Self {
        OffsetCommitTopic {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for OffsetCommitRequest {
    fn arb(g: &mut Gen) -> Self {
        OffsetCommitRequest {
            group_id: g.string(),
            member_id: g.string(),
            member_epoch: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for OffsetCommitPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetCommitPartitionResponse {
            partition: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
        }
    }
}

impl Arb for OffsetCommitTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetCommitTopicResponse {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for OffsetCommitResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetCommitResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for OffsetFetchTopic {
    fn arb(g: &mut Gen) -> Self {
        OffsetFetchTopic {
            name: g.string(),
            partitions: g.vec(5),
        }
    }
}

impl Arb for OffsetFetchRequest {
    fn arb(g: &mut Gen) -> Self {
        OffsetFetchRequest {
            group_id: g.string(),
            topics: if g.one_in(3) { None } else { Some(g.vec(3)) },
        }
    }
}

impl Arb for OffsetFetchPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetFetchPartitionResponse {
            partition: g.i32(),
            committed_offset: g.i64(),
            committed_leader_epoch: g.i32(),
            metadata: g.opt_string(),
            error_code: g.error_code(),
        }
    }
}

impl Arb for OffsetFetchTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetFetchTopicResponse {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for OffsetFetchResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetFetchResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            topics: g.vec(3),
        }
    }
}

impl Arb for InitProducerIdRequest {
    fn arb(g: &mut Gen) -> Self {
        InitProducerIdRequest {
            transactional_id: g.opt_string(),
            transaction_timeout_ms: g.i32(),
            producer_id: g.i64(),
            producer_epoch: g.i16(),
        }
    }
}

impl Arb for InitProducerIdResponse {
    fn arb(g: &mut Gen) -> Self {
        InitProducerIdResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            producer_id: g.i64(),
            producer_epoch: g.i16(),
        }
    }
}

impl Arb for OffsetForLeaderEpochPartition {
    fn arb(g: &mut Gen) -> Self {
        OffsetForLeaderEpochPartition {
            partition: g.i32(),
            current_leader_epoch: g.i32(),
            leader_epoch: g.i32(),
        }
    }
}

impl Arb for OffsetForLeaderEpochTopic {
    fn arb(g: &mut Gen) -> Self {
        OffsetForLeaderEpochTopic {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for OffsetForLeaderEpochRequest {
    fn arb(g: &mut Gen) -> Self {
        OffsetForLeaderEpochRequest {
            replica_id: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for OffsetForLeaderEpochPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetForLeaderEpochPartitionResponse {
            partition: g.i32(),
            error_code: g.error_code(),
            leader_epoch: g.i32(),
            end_offset: g.i64(),
        }
    }
}

impl Arb for OffsetForLeaderEpochTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetForLeaderEpochTopicResponse {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for OffsetForLeaderEpochResponse {
    fn arb(g: &mut Gen) -> Self {
        OffsetForLeaderEpochResponse {
            throttle_time_ms: g.i32(),
            topics: g.vec(3),
        }
    }
}

impl Arb for BrokerRegistrationRequest {
    fn arb(g: &mut Gen) -> Self {
        BrokerRegistrationRequest {
            broker_id: g.i32(),
            incarnation_id: g.i64(),
            listener: g.string(),
            rack: g.opt_string(),
            shards: g.i32(),
        }
    }
}

impl Arb for BrokerRegistrationResponse {
    fn arb(g: &mut Gen) -> Self {
        BrokerRegistrationResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            broker_epoch: g.i64(),
        }
    }
}

impl Arb for BrokerHeartbeatRequest {
    fn arb(g: &mut Gen) -> Self {
        BrokerHeartbeatRequest {
            broker_id: g.i32(),
            broker_epoch: g.i64(),
            incarnation_id: g.i64(),
            metadata_offset: g.i64(),
            want_fence: g.bool(),
            want_shutdown: g.bool(),
        }
    }
}

impl Arb for BrokerHeartbeatResponse {
    fn arb(g: &mut Gen) -> Self {
        BrokerHeartbeatResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            is_caught_up: g.bool(),
            is_fenced: g.bool(),
            should_shutdown: g.bool(),
        }
    }
}

impl Arb for AlterPartitionPartition {
    fn arb(g: &mut Gen) -> Self {
        AlterPartitionPartition {
            partition: g.i32(),
            leader_epoch: g.i32(),
            partition_epoch: g.i32(),
            new_isr: g.vec(4),
        }
    }
}

impl Arb for AlterPartitionTopic {
    fn arb(g: &mut Gen) -> Self {
        AlterPartitionTopic {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for AlterPartitionRequest {
    fn arb(g: &mut Gen) -> Self {
        AlterPartitionRequest {
            broker_id: g.i32(),
            broker_epoch: g.i64(),
            topics: g.vec(3),
        }
    }
}

impl Arb for AlterPartitionPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        AlterPartitionPartitionResponse {
            partition: g.i32(),
            error_code: g.error_code(),
            leader_id: g.i32(),
            leader_epoch: g.i32(),
            isr: g.vec(4),
            partition_epoch: g.i32(),
        }
    }
}

impl Arb for AlterPartitionTopicResponse {
    fn arb(g: &mut Gen) -> Self {
        AlterPartitionTopicResponse {
            name: g.string(),
            partitions: g.vec(4),
        }
    }
}

impl Arb for AlterPartitionResponse {
    fn arb(g: &mut Gen) -> Self {
        AlterPartitionResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            topics: g.vec(3),
        }
    }
}

impl Arb for RaftMessageRequest {
    fn arb(g: &mut Gen) -> Self {
        RaftMessageRequest { message: g.bytes() }
    }
}

impl Arb for RaftMessageResponse {
    fn arb(g: &mut Gen) -> Self {
        RaftMessageResponse {
            error_code: g.error_code(),
        }
    }
}

impl Arb for DescribeClusterRequest {
    fn arb(_g: &mut Gen) -> Self {
        DescribeClusterRequest {}
    }
}

impl Arb for DescribeClusterResponse {
    fn arb(g: &mut Gen) -> Self {
        DescribeClusterResponse {
            throttle_time_ms: g.i32(),
            error_code: g.error_code(),
            error_message: g.opt_string(),
            cluster_id: g.opt_string(),
            controller_id: g.i32(),
            metadata_offset: g.i64(),
            image: g.bytes(),
        }
    }
}

/// A random request of the given api.
pub fn arb_request(g: &mut Gen, api_key: ApiKey) -> Request {
    match api_key {
        ApiKey::ApiVersions => ApiVersionsRequest::arb(g).into(),
        ApiKey::Metadata => MetadataRequest::arb(g).into(),
        ApiKey::Produce => ProduceRequest::arb(g).into(),
        ApiKey::Fetch => FetchRequest::arb(g).into(),
        ApiKey::ListOffsets => ListOffsetsRequest::arb(g).into(),
        ApiKey::CreateTopics => CreateTopicsRequest::arb(g).into(),
        ApiKey::DeleteTopics => DeleteTopicsRequest::arb(g).into(),
        ApiKey::DescribeTopics => DescribeTopicsRequest::arb(g).into(),
        ApiKey::ListTopics => ListTopicsRequest::arb(g).into(),
        ApiKey::AlterTopicConfigs => AlterTopicConfigsRequest::arb(g).into(),
        ApiKey::FindCoordinator => FindCoordinatorRequest::arb(g).into(),
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::arb(g).into(),
        ApiKey::ListGroups => ListGroupsRequest::arb(g).into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::arb(g).into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::arb(g).into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::arb(g).into(),
        ApiKey::OffsetFetch => OffsetFetchRequest::arb(g).into(),
        ApiKey::InitProducerId => InitProducerIdRequest::arb(g).into(),
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::arb(g).into(),
        ApiKey::BrokerRegistration => BrokerRegistrationRequest::arb(g).into(),
        ApiKey::BrokerHeartbeat => BrokerHeartbeatRequest::arb(g).into(),
        ApiKey::AlterPartition => AlterPartitionRequest::arb(g).into(),
        ApiKey::RaftMessage => RaftMessageRequest::arb(g).into(),
        ApiKey::DescribeCluster => DescribeClusterRequest::arb(g).into(),
    }
}

/// A random response of the given api; sometimes a rejection.
pub fn arb_response(g: &mut Gen, api_key: ApiKey) -> Response {
    if g.one_in(10) {
        let mut code = g.error_code();
        while code.is_ok() {
            code = g.error_code();
        }
        return Response::Rejected(code);
    }
    match api_key {
        ApiKey::ApiVersions => ApiVersionsResponse::arb(g).into(),
        ApiKey::Metadata => MetadataResponse::arb(g).into(),
        ApiKey::Produce => ProduceResponse::arb(g).into(),
        ApiKey::Fetch => FetchResponse::arb(g).into(),
        ApiKey::ListOffsets => ListOffsetsResponse::arb(g).into(),
        ApiKey::CreateTopics => CreateTopicsResponse::arb(g).into(),
        ApiKey::DeleteTopics => DeleteTopicsResponse::arb(g).into(),
        ApiKey::DescribeTopics => DescribeTopicsResponse::arb(g).into(),
        ApiKey::ListTopics => ListTopicsResponse::arb(g).into(),
        ApiKey::AlterTopicConfigs => AlterTopicConfigsResponse::arb(g).into(),
        ApiKey::FindCoordinator => FindCoordinatorResponse::arb(g).into(),
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatResponse::arb(g).into(),
        ApiKey::ListGroups => ListGroupsResponse::arb(g).into(),
        ApiKey::DescribeGroups => DescribeGroupsResponse::arb(g).into(),
        ApiKey::DeleteGroups => DeleteGroupsResponse::arb(g).into(),
        ApiKey::OffsetCommit => OffsetCommitResponse::arb(g).into(),
        ApiKey::OffsetFetch => OffsetFetchResponse::arb(g).into(),
        ApiKey::InitProducerId => InitProducerIdResponse::arb(g).into(),
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochResponse::arb(g).into(),
        ApiKey::BrokerRegistration => BrokerRegistrationResponse::arb(g).into(),
        ApiKey::BrokerHeartbeat => BrokerHeartbeatResponse::arb(g).into(),
        ApiKey::AlterPartition => AlterPartitionResponse::arb(g).into(),
        ApiKey::RaftMessage => RaftMessageResponse::arb(g).into(),
        ApiKey::DescribeCluster => DescribeClusterResponse::arb(g).into(),
    }
}

/// A random request header for `api_key` at version 0.
pub fn arb_request_header(g: &mut Gen, api_key: ApiKey) -> RequestHeader {
    RequestHeader {
        api_key: api_key.code(),
        api_version: 0,
        correlation_id: g.u32(),
        client_id: g.opt_string(),
    }
}

/// A random, valid request frame (length prefix included), as one buffer.
pub fn arb_request_frame(g: &mut Gen) -> (RequestHeader, Request, Bytes) {
    let api_key = ApiKey::ALL[g.rng.gen_range(0..ApiKey::ALL.len())];
    let header = arb_request_header(g, api_key);
    let request = arb_request(g, api_key);
    let chunks = encode_request_frame(&header, &request, u32::MAX).expect("valid request encodes");
    (header, request, concat_chunks(&chunks))
}

/// A random, valid response frame (length prefix included), as one buffer, with its api.
pub fn arb_response_frame(g: &mut Gen) -> (ApiKey, ResponseHeader, Response, Bytes) {
    let api_key = ApiKey::ALL[g.rng.gen_range(0..ApiKey::ALL.len())];
    let header = ResponseHeader {
        correlation_id: g.u32(),
    };
    let response = arb_response(g, api_key);
    let chunks =
        encode_response_frame(&header, 0, &response, u32::MAX).expect("valid response encodes");
    (api_key, header, response, concat_chunks(&chunks))
}

/// Encodes one value's body (no frame) into a single buffer.
pub fn encode_value<T: Wire>(value: &T) -> Bytes {
    let mut w = Encoder::new();
    value.encode(&mut w, 0, "value");
    concat_chunks(&w.finish().expect("value encodes"))
}

/// Decodes one value's body, requiring every byte to be used.
pub fn decode_value<T: Wire>(bytes: Bytes) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r, 0, "value")?;
    r.finish()?;
    Ok(value)
}

/// Feeds `stream` to a fresh decoder in one push and returns the frames and the outcome.
pub fn frames_of(stream: &[u8], frame_bytes_max: u32) -> (Vec<Bytes>, Result<(), FrameError>) {
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    let result = decoder.push(stream).and_then(|()| decoder.finish());
    (std::iter::from_fn(|| decoder.pop_frame()).collect(), result)
}
