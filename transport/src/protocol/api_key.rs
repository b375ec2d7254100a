//! Api keys: the `u16` in every request header that names the request type, the versions this
//! build speaks, and the key ranges reserved for APIs still to come.
//!
//! Invariants:
//! - A key, once released, keeps its meaning forever and is never reused or renumbered.
//! - Every api starts at version 0; a new version is added (never an old one changed) whenever a
//!   field is added, removed or reinterpreted. [`ApiKey::version_min`]..=[`ApiKey::version_max`]
//!   is what this build encodes and decodes.
//! - Keys inside [`RESERVED_API_KEY_RANGES`] are only ever assigned to the purpose written there.
//!
//! | key | api | versions |
//! |---:|---|---|
//! | 0 | ApiVersions (the handshake) | 0 |
//! | 1 | Metadata | 0 |
//! | 2 | Produce | 0 |
//! | 3 | Fetch | 0 |
//! | 4 | ListOffsets | 0 |
//! | 5-9 | reserved: more data-path APIs | |
//! | 10 | CreateTopics | 0 |
//! | 11 | DeleteTopics | 0 |
//! | 12 | DescribeTopics | 0 |
//! | 13 | ListTopics | 0 |
//! | 14 | AlterTopicConfigs | 0 |
//! | 15-19 | reserved: more admin APIs (create partitions, delete records) | |
//! | 20 | FindCoordinator | 0 |
//! | 21 | ConsumerGroupHeartbeat (join, heartbeat, leave; server-side assignment) | 0 |
//! | 22 | ListGroups | 0 |
//! | 23 | DescribeGroups | 0 |
//! | 24 | DeleteGroups | 0 |
//! | 25-29 | reserved: more consumer-group APIs | |
//! | 30 | OffsetCommit | 0 |
//! | 31 | OffsetFetch | 0 |
//! | 32-34 | reserved: more committed-offset APIs (offset delete) | |
//! | 35 | InitProducerId | 0 |
//! | 36-44 | reserved: transactions (add partitions to txn, end txn, txn markers, txn offset commit) | |
//! | 45-999 | unassigned, for future client APIs | |
//! | 1000 | OffsetForLeaderEpoch (where a leader epoch ends in the leader's log) | 0 |
//! | 1001-1099 | reserved: broker-to-broker replication (replica fetch, leader-and-ISR, stop replica) | |
//! | 1100 | BrokerRegistration (a broker process announces itself; its broker epoch) | 0 |
//! | 1101 | BrokerHeartbeat (session, metadata catch-up, fencing, controlled shutdown) | 0 |
//! | 1102 | AlterPartition (a leader's ISR change) | 0 |
//! | 1103 | RaftMessage (one Raft message between controllers' shard 0) | 0 |
//! | 1104 | DescribeCluster (controller, applied metadata offset and image of a broker) | 0 |
//! | 1105-1199 | reserved: controller (more broker lifecycle) | |
//! | 1200-61439 | unassigned | |
//! | 61440-65535 | never assigned: private experiments and tests | |

use core::fmt;
use core::ops::RangeInclusive;

/// A request type. The discriminant is the wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum ApiKey {
    /// Handshake: the versions of every api the broker speaks, and its frame limit.
    ApiVersions = 0,
    /// Brokers, topics, partitions, leaders and the owning shard's port.
    Metadata = 1,
    /// Append record batches to partitions.
    Produce = 2,
    /// Read record batches from partitions.
    Fetch = 3,
    /// Find offsets by timestamp, or the earliest/latest offset.
    ListOffsets = 4,
    /// Create topics.
    CreateTopics = 10,
    /// Delete topics.
    DeleteTopics = 11,
    /// Topic configs and per-partition offsets.
    DescribeTopics = 12,
    /// Topic names with partition counts.
    ListTopics = 13,
    /// Change or reset topic configs.
    AlterTopicConfigs = 14,
    /// The broker and shard that coordinate a consumer group.
    FindCoordinator = 20,
    /// Join, heartbeat in and leave a consumer group; receive the assignment.
    ConsumerGroupHeartbeat = 21,
    /// Consumer groups with their state.
    ListGroups = 22,
    /// A group's members and assignments.
    DescribeGroups = 23,
    /// Delete empty groups with their offsets.
    DeleteGroups = 24,
    /// Store a group's committed offsets.
    OffsetCommit = 30,
    /// Read a group's committed offsets.
    OffsetFetch = 31,
    /// A producer id and epoch for an idempotent producer.
    InitProducerId = 35,
    /// Where a leader epoch ends in the leader's log (log divergence after a leader change).
    OffsetForLeaderEpoch = 1000,
    /// Controller: a broker process registers and gets its broker epoch.
    BrokerRegistration = 1100,
    /// Controller: a broker's heartbeat (session, metadata catch-up, fencing, shutdown).
    BrokerHeartbeat = 1101,
    /// Controller: a partition leader's ISR change.
    AlterPartition = 1102,
    /// Controller: one Raft message of the controller quorum (protobuf bytes).
    RaftMessage = 1103,
    /// The cluster as a broker sees it: controller, applied metadata offset, metadata image.
    DescribeCluster = 1104,
}

/// Key ranges set aside for APIs not implemented yet, with their purpose.
pub const RESERVED_API_KEY_RANGES: &[(RangeInclusive<u16>, &str)] = &[
    (5..=9, "more data-path APIs"),
    (15..=19, "more admin APIs"),
    (25..=29, "more consumer-group APIs"),
    (32..=34, "more committed-offset APIs"),
    (36..=44, "transactions"),
    (1001..=1099, "broker-to-broker replication"),
    (1105..=1199, "controller"),
    (
        0xF000..=0xFFFF,
        "never assigned: private experiments and tests",
    ),
];

impl ApiKey {
    /// Every api this build implements, in key order.
    pub const ALL: [ApiKey; 24] = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeTopics,
        ApiKey::ListTopics,
        ApiKey::AlterTopicConfigs,
        ApiKey::FindCoordinator,
        ApiKey::ConsumerGroupHeartbeat,
        ApiKey::ListGroups,
        ApiKey::DescribeGroups,
        ApiKey::DeleteGroups,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::InitProducerId,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::BrokerRegistration,
        ApiKey::BrokerHeartbeat,
        ApiKey::AlterPartition,
        ApiKey::RaftMessage,
        ApiKey::DescribeCluster,
    ];

    /// The wire number.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The api for a wire number, or `None` if this build does not implement it.
    pub const fn from_code(code: u16) -> Option<ApiKey> {
        Some(match code {
            0 => ApiKey::ApiVersions,
            1 => ApiKey::Metadata,
            2 => ApiKey::Produce,
            3 => ApiKey::Fetch,
            4 => ApiKey::ListOffsets,
            10 => ApiKey::CreateTopics,
            11 => ApiKey::DeleteTopics,
            12 => ApiKey::DescribeTopics,
            13 => ApiKey::ListTopics,
            14 => ApiKey::AlterTopicConfigs,
            20 => ApiKey::FindCoordinator,
            21 => ApiKey::ConsumerGroupHeartbeat,
            22 => ApiKey::ListGroups,
            23 => ApiKey::DescribeGroups,
            24 => ApiKey::DeleteGroups,
            30 => ApiKey::OffsetCommit,
            31 => ApiKey::OffsetFetch,
            35 => ApiKey::InitProducerId,
            1000 => ApiKey::OffsetForLeaderEpoch,
            1100 => ApiKey::BrokerRegistration,
            1101 => ApiKey::BrokerHeartbeat,
            1102 => ApiKey::AlterPartition,
            1103 => ApiKey::RaftMessage,
            1104 => ApiKey::DescribeCluster,
            _ => return None,
        })
    }

    /// Oldest version this build speaks.
    pub const fn version_min(self) -> u16 {
        0
    }

    /// Newest version this build speaks.
    pub const fn version_max(self) -> u16 {
        0
    }

    /// Whether this build encodes and decodes `version` of the api.
    pub const fn supports(self, version: u16) -> bool {
        version >= self.version_min() && version <= self.version_max()
    }

    /// The api's name, as in this module's table.
    pub const fn name(self) -> &'static str {
        match self {
            ApiKey::ApiVersions => "ApiVersions",
            ApiKey::Metadata => "Metadata",
            ApiKey::Produce => "Produce",
            ApiKey::Fetch => "Fetch",
            ApiKey::ListOffsets => "ListOffsets",
            ApiKey::CreateTopics => "CreateTopics",
            ApiKey::DeleteTopics => "DeleteTopics",
            ApiKey::DescribeTopics => "DescribeTopics",
            ApiKey::ListTopics => "ListTopics",
            ApiKey::AlterTopicConfigs => "AlterTopicConfigs",
            ApiKey::FindCoordinator => "FindCoordinator",
            ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
            ApiKey::ListGroups => "ListGroups",
            ApiKey::DescribeGroups => "DescribeGroups",
            ApiKey::DeleteGroups => "DeleteGroups",
            ApiKey::OffsetCommit => "OffsetCommit",
            ApiKey::OffsetFetch => "OffsetFetch",
            ApiKey::InitProducerId => "InitProducerId",
            ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
            ApiKey::BrokerRegistration => "BrokerRegistration",
            ApiKey::BrokerHeartbeat => "BrokerHeartbeat",
            ApiKey::AlterPartition => "AlterPartition",
            ApiKey::RaftMessage => "RaftMessage",
            ApiKey::DescribeCluster => "DescribeCluster",
        }
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.code())
    }
}
