//! The cluster metadata image and the records of the controller's log that change it
//! (ARCHITECTURE §8; Kafka's KRaft `MetadataImage` and metadata records).
//!
//! The image holds the registered brokers (incarnation, listener, rack, fenced or not,
//! registration epoch) and the topics (id, config, and for every partition its replicas, ISR,
//! leader and epochs). It changes only through [`ClusterMetadata::apply`], one
//! [`MetadataRecord`] at a time, in log order. Every controller and broker that applies the same
//! records in the same order holds the same image: `apply` reads no clock, no randomness and
//! iterates only ordered maps.
//!
//! # Invariants (held after every applied record)
//! - Every partition's replicas are distinct registered brokers, and there is at least one.
//! - Its ISR is non-empty, has no duplicates and is a subset of its replicas.
//! - Its leader, if any, is in the ISR and is an unfenced broker; `None` means offline.
//! - A leader change bumps `leader_epoch`; every change bumps `partition_epoch`; neither goes
//!   back.
//! - A broker leads nothing when it is fenced, re-registered or unregistered, and hosts no
//!   replica when it is unregistered.
//!
//! A record that would break one of these, or does not fit the image (unknown broker or topic,
//! a topic that already exists, a stale broker epoch, a change that changes nothing), is
//! refused with a [`MetadataError`] and the image is left exactly as it was.
//!
//! # Record format
//! [`MetadataRecord::encode`] writes one version byte ([`RECORD_VERSION`]) and then the record
//! as JSON (an object tagged by `"type"`). A later layout gets a new version byte; a reader
//! refuses versions it does not know rather than guess. Decoding never panics: empty input, an
//! unknown version or malformed JSON is a [`RecordDecodeError`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A broker's id (Kafka's `node.id`), chosen by the operator, never negative.
pub type BrokerId = i32;

/// The version byte [`MetadataRecord::encode`] writes, and the only one `decode` reads.
pub const RECORD_VERSION: u8 = 1;
/// The version byte of [`ClusterMetadata::encode_image`].
pub const IMAGE_VERSION: u8 = 1;
/// Longest topic name, in bytes (Kafka's limit: 249, so that `<topic>-<partition>` and the
/// `.deleted` suffixes of its directories fit in a 255-byte file name).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Most partitions one topic may have: keeps a `CreateTopic` record (and the image) bounded.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 100_000;
/// Longest listener address (`host:port`), in bytes: a DNS name is at most 253 bytes.
pub const LISTENER_BYTES_MAX: usize = 260;
/// Longest rack name, in bytes.
pub const RACK_BYTES_MAX: usize = 255;
/// Most shards one broker may run (Metadata carries a broker's shard count as `u16`).
pub const SHARDS_PER_BROKER_MAX: i32 = 1024;

/// The shard count of a registration written before brokers reported theirs: every broker
/// then ran alike, and one shard is the only count that is always valid.
fn one_shard() -> i32 {
    1
}

/// A topic's id: 128 bits that name one incarnation of a topic (a topic deleted and created
/// again under the same name gets a new id). Zero is reserved for "no topic". Written as 32
/// lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TopicId(pub u128);

impl TopicId {
    /// The reserved id (no topic).
    pub const ZERO: TopicId = TopicId(0);

    /// A deterministic id for the `seq`-th topic created in a cluster, named `name`: the
    /// 128-bit FNV-1a hash of the three inputs (`salt` is bumped by the controller in the
    /// unlikely case that the hash is zero or already taken). Every controller derives the same
    /// id from the same image, and the id travels in the record anyway.
    pub fn derive(name: &str, seq: u64, salt: u64) -> TopicId {
        const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let mut hash = OFFSET_BASIS;
        let bytes = name
            .bytes()
            .chain([0xffu8])
            .chain(seq.to_be_bytes())
            .chain(salt.to_be_bytes());
        for byte in bytes {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
        TopicId(hash)
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl From<TopicId> for String {
    fn from(id: TopicId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for TopicId {
    type Error = String;

    fn try_from(text: String) -> Result<TopicId, String> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("topic id '{text}' is not 32 hex digits"));
        }
        u128::from_str_radix(&text, 16)
            .map(TopicId)
            .map_err(|e| format!("topic id '{text}': {e}"))
    }
}

/// A topic's settings that the controller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Kafka's `min.insync.replicas`: the fewest in-sync replicas an `acks=all` write needs.
    /// At least 1.
    pub min_insync_replicas: i32,
    /// Kafka's `unclean.leader.election.enable`: when no ISR member is live, elect any live
    /// replica (availability over the loss of committed records).
    pub unclean_leader_election: bool,
}

impl Default for TopicConfig {
    /// Kafka's defaults: `min.insync.replicas=1`, unclean election off.
    fn default() -> Self {
        TopicConfig {
            min_insync_replicas: 1,
            unclean_leader_election: false,
        }
    }
}

/// One broker's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// The broker's id.
    pub id: BrokerId,
    /// Chosen anew by every start of the broker process; tells a restart from a retry.
    pub incarnation: u64,
    /// The registration's epoch: grows with every registration in the cluster. Records about a
    /// broker carry it, so they cannot hit a later registration of the same id.
    pub epoch: i64,
    /// Where clients and replicas reach it (`host:port`).
    pub listener: String,
    /// Its rack, if it has one.
    pub rack: Option<String>,
    /// How many shards it runs, in `1..=SHARDS_PER_BROKER_MAX`: shard `s` listens on the
    /// listener's port plus `s`, and partition `p` of topic `t` lives on shard
    /// [`crate::shard::shard_for`]`(t, p, shards)`. Brokers of one cluster may differ.
    #[serde(default = "one_shard")]
    pub shards: i32,
    /// Fenced: not caught up with the metadata log, or its session expired. A fenced broker
    /// leads no partition and joins no ISR.
    pub fenced: bool,
}

/// One partition's replicas, ISR, leader and epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The brokers that hold a copy, the preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas: a subset of `replicas`, never empty.
    pub isr: Vec<BrokerId>,
    /// The leader, a member of the ISR; `None` when the partition is offline.
    pub leader: Option<BrokerId>,
    /// Bumped by every leader change (including to and from offline).
    pub leader_epoch: i32,
    /// Bumped by every change of the partition (leader, ISR or replicas).
    pub partition_epoch: i32,
}

impl BrokerRegistration {
    /// The shard of this broker that serves partition `partition` of `topic`.
    pub fn shard_of(&self, topic: &str, partition: i32) -> usize {
        // Registrations in the image have 1..=SHARDS_PER_BROKER_MAX shards; `max(1)` only
        // keeps a hand-built registration from tripping shard_for's assertion.
        let shards = usize::try_from(self.shards.max(1)).unwrap_or(1);
        crate::shard::shard_for(topic, partition, shards)
    }

    /// The `host:port` of this broker's shard `shard` (shard ports follow the listener's
    /// port), or `None` if the listener does not parse or the port would pass 65535.
    pub fn shard_addr(&self, shard: usize) -> Option<String> {
        let (host, port) = self.listener.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let port = port.checked_add(u16::try_from(shard).ok()?)?;
        Some(format!("{host}:{port}"))
    }
}

impl PartitionState {
    /// No leader.
    pub fn is_offline(&self) -> bool {
        self.leader.is_none()
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: TopicId,
    /// Its settings.
    pub config: TopicConfig,
    /// The topic config keys set on it (`retention.ms`, `cleanup.policy`, ...), as the brokers'
    /// logs read them; keys not set take the brokers' defaults.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionState>,
}

impl Topic {
    /// Partition `partition`, if it exists.
    pub fn partition(&self, partition: i32) -> Option<&PartitionState> {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.partitions.get(index))
    }

    /// How many partitions it has.
    pub fn partition_count(&self) -> i32 {
        // At most PARTITIONS_PER_TOPIC_MAX partitions are ever admitted.
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }
}

/// A topic's partition, by name and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What a [`MetadataRecord::PartitionChange`] does to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderChange {
    /// The leader stays.
    #[default]
    Unchanged,
    /// This broker becomes the leader.
    To(BrokerId),
    /// The partition goes offline (no leader).
    Offline,
}

/// One record of the controller's metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// A broker registers (first start, or a restart with a new incarnation). It is fenced
    /// until it has caught up with the log. Re-registering a known id replaces its
    /// registration; the broker must lead nothing by then.
    RegisterBroker {
        /// The broker.
        broker: BrokerId,
        /// Its process incarnation.
        incarnation: u64,
        /// The new registration's epoch: larger than every earlier one in the cluster.
        broker_epoch: i64,
        /// Its `host:port`.
        listener: String,
        /// Its rack.
        rack: Option<String>,
        /// How many shards it runs (1 in records written before brokers reported it).
        #[serde(default = "one_shard")]
        shards: i32,
    },
    /// A broker leaves the cluster for good; it must host no replica.
    UnregisterBroker {
        /// The broker.
        broker: BrokerId,
        /// The registration this is about.
        broker_epoch: i64,
    },
    /// A broker is fenced; it must lead nothing.
    FenceBroker {
        /// The broker.
        broker: BrokerId,
        /// The registration this is about.
        broker_epoch: i64,
    },
    /// A fenced broker has caught up and may lead and join ISRs again.
    UnfenceBroker {
        /// The broker.
        broker: BrokerId,
        /// The registration this is about.
        broker_epoch: i64,
    },
    /// A topic is created with its full assignment; each partition starts with its first
    /// replica as leader, every replica in the ISR and both epochs 0.
    CreateTopic {
        /// The topic's name.
        name: String,
        /// Its id.
        topic_id: TopicId,
        /// Its settings.
        config: TopicConfig,
        /// The replicas of each partition, by partition index.
        assignments: Vec<Vec<BrokerId>>,
    },
    /// A topic is deleted.
    DeleteTopic {
        /// The topic's name.
        name: String,
        /// Its id: the record deletes only this incarnation of the name.
        topic_id: TopicId,
    },
    /// A topic's config keys are replaced by `configs` (the brokers' log settings) and, if
    /// `config` is given, the controller's own settings ([`TopicConfig`]) by `config`.
    AlterTopicConfigs {
        /// The topic's name.
        name: String,
        /// Its id.
        topic_id: TopicId,
        /// Every key set on the topic after the change.
        configs: BTreeMap<String, String>,
        /// The controller's settings after the change; `None` leaves them as they are (and is
        /// what records written before this field existed decode to).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<TopicConfig>,
    },
    /// One partition's leader, ISR or replicas change.
    PartitionChange {
        /// The topic's name.
        topic: String,
        /// Its id.
        topic_id: TopicId,
        /// The partition.
        partition: i32,
        /// The new leader, if it changes.
        #[serde(default)]
        leader: LeaderChange,
        /// The new ISR, if it changes.
        #[serde(default)]
        isr: Option<Vec<BrokerId>>,
        /// The new replicas, if they change.
        #[serde(default)]
        replicas: Option<Vec<BrokerId>>,
    },
}

/// Why bytes are not a metadata record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordDecodeError {
    /// No bytes at all.
    #[error("metadata record is empty")]
    Empty,
    /// A version byte this build does not read.
    #[error(
        "metadata record version {0} is not supported (this build reads version {RECORD_VERSION})"
    )]
    UnsupportedVersion(u8),
    /// The body is not a record of this version.
    #[error("metadata record is malformed: {0}")]
    Malformed(String),
}

impl MetadataRecord {
    /// The record as stored in the log: [`RECORD_VERSION`], then the record as JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        // Invariant: the record is plain data (strings, integers, sequences, string-keyed
        // objects), which serde_json always serializes; writing into a Vec cannot fail.
        serde_json::to_writer(&mut out, self).expect("metadata records always serialize");
        out
    }

    /// A record read back from the log. Never panics on bad input.
    pub fn decode(bytes: &[u8]) -> Result<MetadataRecord, RecordDecodeError> {
        let (&version, body) = bytes.split_first().ok_or(RecordDecodeError::Empty)?;
        if version != RECORD_VERSION {
            return Err(RecordDecodeError::UnsupportedVersion(version));
        }
        serde_json::from_slice(body).map_err(|e| RecordDecodeError::Malformed(e.to_string()))
    }

    /// A short name of the record's kind (for logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            MetadataRecord::RegisterBroker { .. } => "register_broker",
            MetadataRecord::UnregisterBroker { .. } => "unregister_broker",
            MetadataRecord::FenceBroker { .. } => "fence_broker",
            MetadataRecord::UnfenceBroker { .. } => "unfence_broker",
            MetadataRecord::CreateTopic { .. } => "create_topic",
            MetadataRecord::AlterTopicConfigs { .. } => "alter_topic_configs",
            MetadataRecord::DeleteTopic { .. } => "delete_topic",
            MetadataRecord::PartitionChange { .. } => "partition_change",
        }
    }
}

/// Why a record does not fit the image. The image is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// A negative broker id.
    #[error("broker id {0} is invalid: broker ids are not negative")]
    InvalidBrokerId(BrokerId),
    /// A listener that is not `host:port`.
    #[error("broker {broker}: listener '{listener}' is invalid: {reason}")]
    InvalidListener {
        /// The broker.
        broker: BrokerId,
        /// The listener given.
        listener: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A rack name that is empty or too long.
    #[error("broker {broker}: rack name must be 1..={RACK_BYTES_MAX} bytes")]
    InvalidRack {
        /// The broker.
        broker: BrokerId,
    },
    /// A shard count outside `1..=SHARDS_PER_BROKER_MAX`.
    #[error("broker {broker}: shard count {shards} is outside 1..={SHARDS_PER_BROKER_MAX}")]
    InvalidShardCount {
        /// The broker.
        broker: BrokerId,
        /// The count given.
        shards: i32,
    },
    /// Shard ports (the listener's port, then one more per shard) that would pass 65535.
    #[error("broker {broker}: {shards} shards from port {port} run past port 65535")]
    ShardPortsOverflow {
        /// The broker.
        broker: BrokerId,
        /// The count given.
        shards: i32,
        /// The listener's port.
        port: i32,
    },
    /// A broker that is not registered.
    #[error("broker {0} is not registered")]
    UnknownBroker(BrokerId),
    /// A registration whose epoch is not larger than every earlier one.
    #[error("broker {broker}: registration epoch {epoch} is not above the last one ({last})")]
    StaleRegistrationEpoch {
        /// The broker.
        broker: BrokerId,
        /// The record's epoch.
        epoch: i64,
        /// The largest registration epoch so far.
        last: i64,
    },
    /// A record about another registration of the broker.
    #[error(
        "broker {broker}: record is for registration epoch {record}, but the broker's is {current}"
    )]
    BrokerEpochMismatch {
        /// The broker.
        broker: BrokerId,
        /// The record's epoch.
        record: i64,
        /// The registration's epoch.
        current: i64,
    },
    /// Fencing a fenced broker.
    #[error("broker {0} is already fenced")]
    BrokerAlreadyFenced(BrokerId),
    /// Unfencing a broker that is not fenced.
    #[error("broker {0} is not fenced")]
    BrokerNotFenced(BrokerId),
    /// A fenced broker named as leader or new replica.
    #[error("broker {0} is fenced: it cannot lead or be placed")]
    BrokerFenced(BrokerId),
    /// Fencing, re-registering or unregistering a broker that still leads a partition.
    #[error("broker {broker} still leads {partition}: move its leadership first")]
    BrokerStillLeads {
        /// The broker.
        broker: BrokerId,
        /// One partition it leads.
        partition: TopicPartition,
    },
    /// Unregistering a broker that still hosts a replica.
    #[error("broker {broker} still hosts a replica of {partition}: reassign it first")]
    BrokerHostsReplicas {
        /// The broker.
        broker: BrokerId,
        /// One partition it hosts.
        partition: TopicPartition,
    },
    /// A topic name Kafka would refuse.
    #[error("topic name '{name}' is invalid: {reason}")]
    InvalidTopicName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Creating a topic whose name is taken.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The reserved topic id.
    #[error("topic '{0}': the zero topic id is reserved")]
    ZeroTopicId(String),
    /// A topic id another topic has.
    #[error("topic id {id} is already used by topic '{by}'")]
    TopicIdInUse {
        /// The id.
        id: TopicId,
        /// The topic that has it.
        by: String,
    },
    /// A topic that does not exist.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// A record about another incarnation of the topic name.
    #[error("topic '{topic}': record is for topic id {record}, but the topic's id is {current}")]
    TopicIdMismatch {
        /// The topic.
        topic: String,
        /// The record's id.
        record: TopicId,
        /// The topic's id.
        current: TopicId,
    },
    /// Topic settings out of range.
    #[error("topic '{topic}': invalid config: {reason}")]
    InvalidTopicConfig {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A partition count outside `1..=PARTITIONS_PER_TOPIC_MAX`.
    #[error("topic '{topic}': {count} partitions is outside 1..={PARTITIONS_PER_TOPIC_MAX}")]
    InvalidPartitionCount {
        /// The topic.
        topic: String,
        /// The count given.
        count: usize,
    },
    /// A partition that does not exist.
    #[error("partition {0} does not exist")]
    UnknownPartition(TopicPartition),
    /// An empty replica list.
    #[error("{0}: the replica list is empty")]
    EmptyReplicas(TopicPartition),
    /// A broker listed twice as a replica.
    #[error("{partition}: broker {broker} is listed twice as a replica")]
    DuplicateReplica {
        /// The partition.
        partition: TopicPartition,
        /// The broker.
        broker: BrokerId,
    },
    /// An empty ISR.
    #[error("{0}: the ISR would be empty")]
    EmptyIsr(TopicPartition),
    /// A broker listed twice in the ISR.
    #[error("{partition}: broker {broker} is listed twice in the ISR")]
    DuplicateIsrMember {
        /// The partition.
        partition: TopicPartition,
        /// The broker.
        broker: BrokerId,
    },
    /// An ISR member that is not a replica.
    #[error("{partition}: ISR member {broker} is not a replica")]
    IsrNotSubsetOfReplicas {
        /// The partition.
        partition: TopicPartition,
        /// The broker.
        broker: BrokerId,
    },
    /// A leader outside the ISR.
    #[error("{partition}: leader {leader} is not in the ISR")]
    LeaderNotInIsr {
        /// The partition.
        partition: TopicPartition,
        /// The leader.
        leader: BrokerId,
    },
    /// A partition change that changes nothing.
    #[error("{0}: the partition change changes nothing")]
    NoChange(TopicPartition),
    /// An epoch at `i32::MAX`.
    #[error("{0}: epoch overflow")]
    EpochOverflow(TopicPartition),
}

/// Checks a topic name as Kafka does: 1..=249 bytes of ASCII letters, digits, `.`, `_` and
/// `-`, and neither `.` nor `..`. Returns what is wrong.
pub fn validate_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err("it is longer than 249 bytes");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not allowed");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Checks what a broker registers with: a non-negative id, a `host:port` listener, a rack name
/// of 1..=[`RACK_BYTES_MAX`] bytes if any, and 1..=[`SHARDS_PER_BROKER_MAX`] shards whose
/// ports (the listener's port and the ones after it) all stay within 65535. Used by the
/// controller before it decides and by [`ClusterMetadata::apply`] on the record.
pub fn validate_registration(
    broker: BrokerId,
    listener: &str,
    rack: Option<&str>,
    shards: i32,
) -> Result<(), MetadataError> {
    if broker < 0 {
        return Err(MetadataError::InvalidBrokerId(broker));
    }
    validate_listener(listener).map_err(|reason| MetadataError::InvalidListener {
        broker,
        listener: listener.to_string(),
        reason,
    })?;
    if rack.is_some_and(|r| r.is_empty() || r.len() > RACK_BYTES_MAX) {
        return Err(MetadataError::InvalidRack { broker });
    }
    if !(1..=SHARDS_PER_BROKER_MAX).contains(&shards) {
        return Err(MetadataError::InvalidShardCount { broker, shards });
    }
    // validate_listener checked that the port parses.
    let port = listener
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<i32>().ok())
        .unwrap_or(0);
    if port + shards - 1 > i32::from(u16::MAX) {
        return Err(MetadataError::ShardPortsOverflow {
            broker,
            shards,
            port,
        });
    }
    Ok(())
}

/// Checks a listener address: `host:port` with a non-empty host (an IPv6 host in brackets)
/// and a port in 1..=65535. Returns what is wrong.
pub fn validate_listener(listener: &str) -> Result<(), &'static str> {
    if listener.len() > LISTENER_BYTES_MAX {
        return Err("it is too long");
    }
    let Some((host, port)) = listener.rsplit_once(':') else {
        return Err("it has no ':port'");
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 host must be in brackets");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the host contains whitespace");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port is not in 1..=65535"),
        Ok(_) => Ok(()),
    }
}

/// Checks the controller's settings of topic `name`: `min.insync.replicas` is at least 1.
fn check_topic_config(name: &str, config: &TopicConfig) -> Result<(), MetadataError> {
    if config.min_insync_replicas < 1 {
        return Err(MetadataError::InvalidTopicConfig {
            topic: name.to_string(),
            reason: "min.insync.replicas must be at least 1",
        });
    }
    Ok(())
}

/// The whole change one record makes, computed before anything is touched.
enum Change {
    PutBroker(BrokerRegistration),
    RemoveBroker(BrokerId),
    AddTopic(Topic),
    ReplaceTopic(Topic),
    RemoveTopic(String),
    PutPartition {
        topic: String,
        index: usize,
        state: PartitionState,
    },
}

/// The cluster metadata image: what the applied records say about brokers and topics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    brokers: BTreeMap<BrokerId, BrokerRegistration>,
    topics: BTreeMap<String, Topic>,
    topic_names: BTreeMap<TopicId, String>,
    broker_epoch_last: i64,
    topics_created: u64,
}

impl ClusterMetadata {
    /// An empty image (the state before the first record).
    pub fn new() -> ClusterMetadata {
        ClusterMetadata::default()
    }

    /// Broker `id`'s registration.
    pub fn broker(&self, id: BrokerId) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Every registration, by broker id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    /// The registered, unfenced brokers, in id order.
    pub fn live_brokers(&self) -> Vec<BrokerId> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    /// Whether `id` is registered and unfenced.
    pub fn is_live(&self, id: BrokerId) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// The largest registration epoch so far (0 before the first registration).
    pub fn broker_epoch_last(&self) -> i64 {
        self.broker_epoch_last
    }

    /// How many topics have been created (deleted ones included).
    pub fn topics_created(&self) -> u64 {
        self.topics_created
    }

    /// Topic `name`.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: TopicId) -> Option<&Topic> {
        self.topic_names
            .get(&id)
            .and_then(|name| self.topics.get(name))
    }

    /// Every topic, by name.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.values()
    }

    /// Partition `partition` of `topic`.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics.get(topic)?.partition(partition)
    }

    /// The image as bytes: [`IMAGE_VERSION`], then JSON. A snapshot of the metadata log up to
    /// the entry it was taken at, and what DescribeCluster carries.
    pub fn encode_image(&self) -> Vec<u8> {
        let mut out = vec![IMAGE_VERSION];
        // Plain data with string or integer map keys: serialising cannot fail.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// Reads [`ClusterMetadata::encode_image`]'s bytes. Never panics.
    pub fn decode_image(bytes: &[u8]) -> Result<ClusterMetadata, RecordDecodeError> {
        let (&version, json) = bytes.split_first().ok_or(RecordDecodeError::Empty)?;
        if version != IMAGE_VERSION {
            return Err(RecordDecodeError::UnsupportedVersion(version));
        }
        serde_json::from_slice(json).map_err(|e| RecordDecodeError::Malformed(e.to_string()))
    }

    /// Every partition with its topic and index, topics by name.
    pub fn partitions(&self) -> impl Iterator<Item = (&Topic, i32, &PartitionState)> {
        self.topics.values().flat_map(|topic| {
            (0..)
                .zip(topic.partitions.iter())
                .map(move |(i, p)| (topic, i, p))
        })
    }

    /// The partitions `broker` leads.
    pub fn partitions_led_by(&self, broker: BrokerId) -> Vec<TopicPartition> {
        self.partitions_where(|p| p.leader == Some(broker))
    }

    /// The partitions with a replica on `broker`.
    pub fn partitions_with_replica(&self, broker: BrokerId) -> Vec<TopicPartition> {
        self.partitions_where(|p| p.replicas.contains(&broker))
    }

    /// The partitions without a leader.
    pub fn offline_partitions(&self) -> Vec<TopicPartition> {
        self.partitions_where(PartitionState::is_offline)
    }

    fn partitions_where(&self, keep: impl Fn(&PartitionState) -> bool) -> Vec<TopicPartition> {
        self.partitions()
            .filter(|(_, _, p)| keep(p))
            .map(|(topic, i, _)| TopicPartition::new(&topic.name, i))
            .collect()
    }

    /// Whether `record` would apply, without applying it.
    pub fn check(&self, record: &MetadataRecord) -> Result<(), MetadataError> {
        self.plan(record).map(drop)
    }

    /// Applies one record. Deterministic; on error nothing changes.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        let change = self.plan(record)?;
        self.commit(change);
        Ok(())
    }

    fn commit(&mut self, change: Change) {
        match change {
            Change::PutBroker(registration) => {
                self.broker_epoch_last = self.broker_epoch_last.max(registration.epoch);
                self.brokers.insert(registration.id, registration);
            }
            Change::RemoveBroker(id) => {
                self.brokers.remove(&id);
            }
            Change::AddTopic(topic) => {
                self.topics_created += 1;
                self.topic_names.insert(topic.id, topic.name.clone());
                self.topics.insert(topic.name.clone(), topic);
            }
            Change::ReplaceTopic(topic) => {
                self.topics.insert(topic.name.clone(), topic);
            }
            Change::RemoveTopic(name) => {
                if let Some(topic) = self.topics.remove(&name) {
                    self.topic_names.remove(&topic.id);
                }
            }
            Change::PutPartition {
                topic,
                index,
                state,
            } => {
                if let Some(slot) = self
                    .topics
                    .get_mut(&topic)
                    .and_then(|t| t.partitions.get_mut(index))
                {
                    *slot = state;
                }
            }
        }
    }

    fn plan(&self, record: &MetadataRecord) -> Result<Change, MetadataError> {
        match record {
            MetadataRecord::RegisterBroker {
                broker,
                incarnation,
                broker_epoch,
                listener,
                rack,
                shards,
            } => {
                let broker = *broker;
                validate_registration(broker, listener, rack.as_deref(), *shards)?;
                if *broker_epoch <= self.broker_epoch_last {
                    return Err(MetadataError::StaleRegistrationEpoch {
                        broker,
                        epoch: *broker_epoch,
                        last: self.broker_epoch_last,
                    });
                }
                if self.brokers.contains_key(&broker) {
                    self.check_leads_nothing(broker)?;
                }
                Ok(Change::PutBroker(BrokerRegistration {
                    id: broker,
                    incarnation: *incarnation,
                    epoch: *broker_epoch,
                    listener: listener.clone(),
                    rack: rack.clone(),
                    shards: *shards,
                    fenced: true,
                }))
            }
            MetadataRecord::UnregisterBroker {
                broker,
                broker_epoch,
            } => {
                self.registration(*broker, *broker_epoch)?;
                if let Some(partition) = self.partitions_with_replica(*broker).into_iter().next() {
                    return Err(MetadataError::BrokerHostsReplicas {
                        broker: *broker,
                        partition,
                    });
                }
                Ok(Change::RemoveBroker(*broker))
            }
            MetadataRecord::FenceBroker {
                broker,
                broker_epoch,
            } => {
                let registration = self.registration(*broker, *broker_epoch)?;
                if registration.fenced {
                    return Err(MetadataError::BrokerAlreadyFenced(*broker));
                }
                self.check_leads_nothing(*broker)?;
                Ok(Change::PutBroker(BrokerRegistration {
                    fenced: true,
                    ..registration.clone()
                }))
            }
            MetadataRecord::UnfenceBroker {
                broker,
                broker_epoch,
            } => {
                let registration = self.registration(*broker, *broker_epoch)?;
                if !registration.fenced {
                    return Err(MetadataError::BrokerNotFenced(*broker));
                }
                Ok(Change::PutBroker(BrokerRegistration {
                    fenced: false,
                    ..registration.clone()
                }))
            }
            MetadataRecord::CreateTopic {
                name,
                topic_id,
                config,
                assignments,
            } => self.plan_create_topic(name, *topic_id, *config, assignments),
            MetadataRecord::DeleteTopic { name, topic_id } => {
                self.topic_checked(name, *topic_id)?;
                Ok(Change::RemoveTopic(name.clone()))
            }
            MetadataRecord::AlterTopicConfigs {
                name,
                topic_id,
                configs,
                config,
            } => {
                let topic = self.topic_checked(name, *topic_id)?;
                if let Some(config) = config {
                    check_topic_config(name, config)?;
                }
                Ok(Change::ReplaceTopic(Topic {
                    configs: configs.clone(),
                    config: config.unwrap_or(topic.config),
                    ..topic.clone()
                }))
            }
            MetadataRecord::PartitionChange {
                topic,
                topic_id,
                partition,
                leader,
                isr,
                replicas,
            } => self.plan_partition_change(
                topic,
                *topic_id,
                *partition,
                *leader,
                isr.as_deref(),
                replicas.as_deref(),
            ),
        }
    }

    fn registration(
        &self,
        broker: BrokerId,
        broker_epoch: i64,
    ) -> Result<&BrokerRegistration, MetadataError> {
        let registration = self
            .brokers
            .get(&broker)
            .ok_or(MetadataError::UnknownBroker(broker))?;
        if registration.epoch != broker_epoch {
            return Err(MetadataError::BrokerEpochMismatch {
                broker,
                record: broker_epoch,
                current: registration.epoch,
            });
        }
        Ok(registration)
    }

    fn check_leads_nothing(&self, broker: BrokerId) -> Result<(), MetadataError> {
        match self.partitions_led_by(broker).into_iter().next() {
            Some(partition) => Err(MetadataError::BrokerStillLeads { broker, partition }),
            None => Ok(()),
        }
    }

    fn topic_checked(&self, name: &str, topic_id: TopicId) -> Result<&Topic, MetadataError> {
        let topic = self
            .topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        if topic.id != topic_id {
            return Err(MetadataError::TopicIdMismatch {
                topic: name.to_string(),
                record: topic_id,
                current: topic.id,
            });
        }
        Ok(topic)
    }

    fn check_replicas(
        &self,
        partition: &TopicPartition,
        replicas: &[BrokerId],
    ) -> Result<(), MetadataError> {
        if replicas.is_empty() {
            return Err(MetadataError::EmptyReplicas(partition.clone()));
        }
        for (i, broker) in replicas.iter().enumerate() {
            if replicas[..i].contains(broker) {
                return Err(MetadataError::DuplicateReplica {
                    partition: partition.clone(),
                    broker: *broker,
                });
            }
            if !self.brokers.contains_key(broker) {
                return Err(MetadataError::UnknownBroker(*broker));
            }
        }
        Ok(())
    }

    fn plan_create_topic(
        &self,
        name: &str,
        topic_id: TopicId,
        config: TopicConfig,
        assignments: &[Vec<BrokerId>],
    ) -> Result<Change, MetadataError> {
        validate_topic_name(name).map_err(|reason| MetadataError::InvalidTopicName {
            name: name.to_string(),
            reason,
        })?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        if topic_id == TopicId::ZERO {
            return Err(MetadataError::ZeroTopicId(name.to_string()));
        }
        if let Some(by) = self.topic_names.get(&topic_id) {
            return Err(MetadataError::TopicIdInUse {
                id: topic_id,
                by: by.clone(),
            });
        }
        check_topic_config(name, &config)?;
        let count_ok = i32::try_from(assignments.len())
            .is_ok_and(|n| (1..=PARTITIONS_PER_TOPIC_MAX).contains(&n));
        if !count_ok {
            return Err(MetadataError::InvalidPartitionCount {
                topic: name.to_string(),
                count: assignments.len(),
            });
        }
        let mut partitions = Vec::with_capacity(assignments.len());
        for (index, replicas) in (0..).zip(assignments) {
            self.check_replicas(&TopicPartition::new(name, index), replicas)?;
            // The ISR is every replica, so every replica must be able to be in it.
            if let Some(fenced) = replicas.iter().find(|b| !self.is_live(**b)) {
                return Err(MetadataError::BrokerFenced(*fenced));
            }
            partitions.push(PartitionState {
                replicas: replicas.clone(),
                isr: replicas.clone(),
                leader: replicas.first().copied(),
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        Ok(Change::AddTopic(Topic {
            name: name.to_string(),
            id: topic_id,
            config,
            configs: BTreeMap::new(),
            partitions,
        }))
    }

    fn plan_partition_change(
        &self,
        topic_name: &str,
        topic_id: TopicId,
        partition: i32,
        leader: LeaderChange,
        isr: Option<&[BrokerId]>,
        replicas: Option<&[BrokerId]>,
    ) -> Result<Change, MetadataError> {
        let topic = self.topic_checked(topic_name, topic_id)?;
        let tp = TopicPartition::new(topic_name, partition);
        let index = usize::try_from(partition)
            .ok()
            .filter(|i| *i < topic.partitions.len())
            .ok_or_else(|| MetadataError::UnknownPartition(tp.clone()))?;
        let current = &topic.partitions[index];
        let new_replicas = replicas.unwrap_or(&current.replicas);
        self.check_replicas(&tp, new_replicas)?;
        let new_isr = isr.unwrap_or(&current.isr);
        if new_isr.is_empty() {
            return Err(MetadataError::EmptyIsr(tp));
        }
        for (i, broker) in new_isr.iter().enumerate() {
            if new_isr[..i].contains(broker) {
                return Err(MetadataError::DuplicateIsrMember {
                    partition: tp,
                    broker: *broker,
                });
            }
            if !new_replicas.contains(broker) {
                return Err(MetadataError::IsrNotSubsetOfReplicas {
                    partition: tp,
                    broker: *broker,
                });
            }
        }
        let new_leader = match leader {
            LeaderChange::Unchanged => current.leader,
            LeaderChange::To(broker) => Some(broker),
            LeaderChange::Offline => None,
        };
        if let Some(leader) = new_leader {
            if !new_isr.contains(&leader) {
                return Err(MetadataError::LeaderNotInIsr {
                    partition: tp,
                    leader,
                });
            }
            if !self.brokers.contains_key(&leader) {
                return Err(MetadataError::UnknownBroker(leader));
            }
            if !self.is_live(leader) {
                return Err(MetadataError::BrokerFenced(leader));
            }
        }
        let leader_changed = new_leader != current.leader;
        if !leader_changed && new_isr == current.isr && new_replicas == current.replicas {
            return Err(MetadataError::NoChange(tp));
        }
        let leader_epoch = if leader_changed {
            current.leader_epoch.checked_add(1)
        } else {
            Some(current.leader_epoch)
        };
        let (Some(leader_epoch), Some(partition_epoch)) =
            (leader_epoch, current.partition_epoch.checked_add(1))
        else {
            return Err(MetadataError::EpochOverflow(tp));
        };
        Ok(Change::PutPartition {
            topic: topic_name.to_string(),
            index,
            state: PartitionState {
                replicas: new_replicas.to_vec(),
                isr: new_isr.to_vec(),
                leader: new_leader,
                leader_epoch,
                partition_epoch,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(broker: BrokerId, epoch: i64) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker,
            incarnation: 7,
            broker_epoch: epoch,
            listener: format!("b{broker}:9092"),
            rack: None,
            shards: 1,
        }
    }

    fn unfence(broker: BrokerId, epoch: i64) -> MetadataRecord {
        MetadataRecord::UnfenceBroker {
            broker,
            broker_epoch: epoch,
        }
    }

    /// Three live brokers (epochs 1, 2, 3) and topic `t` (id 5) with one partition on all of
    /// them, led by 1.
    fn image() -> ClusterMetadata {
        let mut image = ClusterMetadata::new();
        for b in 1..=3 {
            image.apply(&register(b, i64::from(b))).unwrap();
            image.apply(&unfence(b, i64::from(b))).unwrap();
        }
        image
            .apply(&MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id: TopicId(5),
                config: TopicConfig::default(),
                assignments: vec![vec![1, 2, 3]],
            })
            .unwrap();
        image
    }

    fn change(leader: LeaderChange, isr: Option<Vec<BrokerId>>) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic: "t".into(),
            topic_id: TopicId(5),
            partition: 0,
            leader,
            isr,
            replicas: None,
        }
    }

    /// Applies `record`, expects `err`, and checks the image did not move.
    fn refused(image: &mut ClusterMetadata, record: MetadataRecord, err: MetadataError) {
        let before = image.clone();
        assert_eq!(image.apply(&record), Err(err));
        assert_eq!(*image, before);
    }

    #[test]
    fn create_topic_starts_with_first_replica_leading_and_full_isr() {
        let image = image();
        let p = image.partition("t", 0).unwrap();
        assert_eq!(p.replicas, vec![1, 2, 3]);
        assert_eq!(p.isr, vec![1, 2, 3]);
        assert_eq!(p.leader, Some(1));
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        assert_eq!(image.topic_by_id(TopicId(5)).unwrap().name, "t");
        assert_eq!(image.topics_created(), 1);
        assert_eq!(
            image.partitions_led_by(1),
            vec![TopicPartition::new("t", 0)]
        );
        assert!(image.partitions_led_by(2).is_empty());
        assert_eq!(image.partitions_with_replica(3).len(), 1);
        assert_eq!(image.live_brokers(), vec![1, 2, 3]);
    }

    #[test]
    fn leader_change_bumps_both_epochs_isr_change_only_partition_epoch() {
        let mut image = image();
        image
            .apply(&change(LeaderChange::Unchanged, Some(vec![1, 2])))
            .unwrap();
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 1));
        image
            .apply(&change(LeaderChange::To(2), Some(vec![2])))
            .unwrap();
        let p = image.partition("t", 0).unwrap();
        assert_eq!(p.leader, Some(2));
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 2));
    }

    #[test]
    fn records_that_do_not_fit_change_nothing() {
        let mut image = image();
        let tp = TopicPartition::new("t", 0);
        refused(
            &mut image,
            change(LeaderChange::Unchanged, Some(vec![2, 3])),
            MetadataError::LeaderNotInIsr {
                partition: tp.clone(),
                leader: 1,
            },
        );
        refused(
            &mut image,
            change(LeaderChange::Unchanged, Some(vec![1, 4])),
            MetadataError::IsrNotSubsetOfReplicas {
                partition: tp.clone(),
                broker: 4,
            },
        );
        refused(
            &mut image,
            change(LeaderChange::Unchanged, Some(vec![])),
            MetadataError::EmptyIsr(tp.clone()),
        );
        refused(
            &mut image,
            change(LeaderChange::Unchanged, Some(vec![1, 1])),
            MetadataError::DuplicateIsrMember {
                partition: tp.clone(),
                broker: 1,
            },
        );
        refused(
            &mut image,
            change(LeaderChange::To(1), None),
            MetadataError::NoChange(tp.clone()),
        );
        refused(
            &mut image,
            MetadataRecord::FenceBroker {
                broker: 1,
                broker_epoch: 1,
            },
            MetadataError::BrokerStillLeads {
                broker: 1,
                partition: tp.clone(),
            },
        );
        refused(
            &mut image,
            MetadataRecord::FenceBroker {
                broker: 2,
                broker_epoch: 1,
            },
            MetadataError::BrokerEpochMismatch {
                broker: 2,
                record: 1,
                current: 2,
            },
        );
        refused(&mut image, register(2, 3), {
            MetadataError::StaleRegistrationEpoch {
                broker: 2,
                epoch: 3,
                last: 3,
            }
        });
        refused(
            &mut image,
            register(1, 9),
            MetadataError::BrokerStillLeads {
                broker: 1,
                partition: tp.clone(),
            },
        );
        refused(
            &mut image,
            MetadataRecord::UnregisterBroker {
                broker: 3,
                broker_epoch: 3,
            },
            MetadataError::BrokerHostsReplicas {
                broker: 3,
                partition: tp.clone(),
            },
        );
        refused(
            &mut image,
            MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id: TopicId(6),
                config: TopicConfig::default(),
                assignments: vec![vec![1]],
            },
            MetadataError::TopicExists("t".into()),
        );
        refused(
            &mut image,
            MetadataRecord::CreateTopic {
                name: "u".into(),
                topic_id: TopicId(5),
                config: TopicConfig::default(),
                assignments: vec![vec![1]],
            },
            MetadataError::TopicIdInUse {
                id: TopicId(5),
                by: "t".into(),
            },
        );
        refused(
            &mut image,
            MetadataRecord::CreateTopic {
                name: "u".into(),
                topic_id: TopicId(6),
                config: TopicConfig::default(),
                assignments: vec![vec![1, 9]],
            },
            MetadataError::UnknownBroker(9),
        );
        refused(
            &mut image,
            MetadataRecord::DeleteTopic {
                name: "t".into(),
                topic_id: TopicId(6),
            },
            MetadataError::TopicIdMismatch {
                topic: "t".into(),
                record: TopicId(6),
                current: TopicId(5),
            },
        );
        refused(&mut image, unfence(1, 1), MetadataError::BrokerNotFenced(1));
    }

    #[test]
    fn fenced_broker_cannot_lead_or_be_placed() {
        let mut image = image();
        image
            .apply(&change(LeaderChange::Unchanged, Some(vec![1, 2])))
            .unwrap();
        image
            .apply(&MetadataRecord::FenceBroker {
                broker: 3,
                broker_epoch: 3,
            })
            .unwrap();
        assert!(!image.is_live(3));
        assert_eq!(image.live_brokers(), vec![1, 2]);
        let mut with_three = image.clone();
        refused(
            &mut with_three,
            change(LeaderChange::To(3), Some(vec![1, 2, 3])),
            MetadataError::BrokerFenced(3),
        );
        refused(
            &mut image,
            MetadataRecord::CreateTopic {
                name: "u".into(),
                topic_id: TopicId(6),
                config: TopicConfig::default(),
                assignments: vec![vec![1, 3]],
            },
            MetadataError::BrokerFenced(3),
        );
    }

    #[test]
    fn delete_then_recreate_gets_new_id_and_unregister_after_delete() {
        let mut image = image();
        image
            .apply(&MetadataRecord::DeleteTopic {
                name: "t".into(),
                topic_id: TopicId(5),
            })
            .unwrap();
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(TopicId(5)).is_none());
        image
            .apply(&MetadataRecord::FenceBroker {
                broker: 3,
                broker_epoch: 3,
            })
            .unwrap();
        image
            .apply(&MetadataRecord::UnregisterBroker {
                broker: 3,
                broker_epoch: 3,
            })
            .unwrap();
        assert!(image.broker(3).is_none());
        assert_eq!(image.topics_created(), 1);
    }

    #[test]
    fn codec_round_trips_every_kind() {
        let records = vec![
            register(3, 4),
            MetadataRecord::RegisterBroker {
                broker: 1,
                incarnation: u64::MAX,
                broker_epoch: i64::MAX,
                listener: "[::1]:9092".into(),
                rack: Some("rack-a".into()),
                shards: 3,
            },
            MetadataRecord::UnregisterBroker {
                broker: 3,
                broker_epoch: 4,
            },
            MetadataRecord::FenceBroker {
                broker: 3,
                broker_epoch: 4,
            },
            unfence(3, 4),
            MetadataRecord::CreateTopic {
                name: "orders".into(),
                topic_id: TopicId(u128::MAX - 1),
                config: TopicConfig {
                    min_insync_replicas: 2,
                    unclean_leader_election: true,
                },
                assignments: vec![vec![1, 2], vec![2, 1]],
            },
            MetadataRecord::DeleteTopic {
                name: "orders".into(),
                topic_id: TopicId(1),
            },
            MetadataRecord::AlterTopicConfigs {
                name: "orders".into(),
                topic_id: TopicId(1),
                configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
                config: None,
            },
            MetadataRecord::AlterTopicConfigs {
                name: "orders".into(),
                topic_id: TopicId(1),
                configs: BTreeMap::new(),
                config: Some(TopicConfig {
                    min_insync_replicas: 3,
                    unclean_leader_election: true,
                }),
            },
            change(LeaderChange::Offline, None),
            change(LeaderChange::To(2), Some(vec![2])),
            MetadataRecord::PartitionChange {
                topic: "t".into(),
                topic_id: TopicId(5),
                partition: 0,
                leader: LeaderChange::Unchanged,
                isr: Some(vec![1]),
                replicas: Some(vec![1, 4]),
            },
        ];
        for record in records {
            let bytes = record.encode();
            assert_eq!(bytes[0], RECORD_VERSION);
            assert_eq!(
                MetadataRecord::decode(&bytes),
                Ok(record.clone()),
                "{record:?}"
            );
        }
    }

    #[test]
    fn records_and_images_from_before_shard_counts_still_decode() {
        // A registration written before brokers reported their shard count: one shard.
        let old = br#"{"type":"register_broker","broker":2,"incarnation":5,"broker_epoch":1,"listener":"h:9092","rack":null}"#;
        let record = MetadataRecord::decode(&[&[RECORD_VERSION][..], old].concat()).unwrap();
        assert_eq!(
            record,
            MetadataRecord::RegisterBroker {
                broker: 2,
                incarnation: 5,
                broker_epoch: 1,
                listener: "h:9092".into(),
                rack: None,
                shards: 1,
            }
        );
        // A config change written before it carried the controller's settings: none.
        let old = br#"{"type":"alter_topic_configs","name":"t","topic_id":"00000000000000000000000000000005","configs":{"retention.ms":"5"}}"#;
        let record = MetadataRecord::decode(&[&[RECORD_VERSION][..], old].concat()).unwrap();
        assert!(matches!(
            record,
            MetadataRecord::AlterTopicConfigs { config: None, .. }
        ));
        // An image whose broker entries have no shard count.
        let mut image = ClusterMetadata::new();
        image.apply(&register(1, 1)).unwrap();
        let json = serde_json::to_string(&image).unwrap();
        let without = json.replace(",\"shards\":1", "");
        assert_ne!(json, without);
        let decoded =
            ClusterMetadata::decode_image(&[&[IMAGE_VERSION][..], without.as_bytes()].concat())
                .unwrap();
        assert_eq!(decoded.broker(1).unwrap().shards, 1);
        assert_eq!(decoded, image);
    }

    #[test]
    fn registrations_keep_their_shard_count_and_bad_counts_are_refused() {
        let mut image = ClusterMetadata::new();
        let with_shards = |broker, epoch, listener: &str, shards| MetadataRecord::RegisterBroker {
            broker,
            incarnation: 1,
            broker_epoch: epoch,
            listener: listener.into(),
            rack: None,
            shards,
        };
        image.apply(&with_shards(1, 1, "h:9092", 3)).unwrap();
        image
            .apply(&with_shards(2, 2, "h:9192", SHARDS_PER_BROKER_MAX))
            .unwrap();
        assert_eq!(image.broker(1).unwrap().shards, 3);
        assert_eq!(image.broker(2).unwrap().shards, SHARDS_PER_BROKER_MAX);
        refused(
            &mut image,
            with_shards(3, 3, "h:9092", 0),
            MetadataError::InvalidShardCount {
                broker: 3,
                shards: 0,
            },
        );
        refused(
            &mut image,
            with_shards(3, 3, "h:9092", SHARDS_PER_BROKER_MAX + 1),
            MetadataError::InvalidShardCount {
                broker: 3,
                shards: SHARDS_PER_BROKER_MAX + 1,
            },
        );
        refused(
            &mut image,
            with_shards(3, 3, "h:65534", 3),
            MetadataError::ShardPortsOverflow {
                broker: 3,
                shards: 3,
                port: 65534,
            },
        );
        // The last port itself is fine.
        image.apply(&with_shards(3, 3, "h:65534", 2)).unwrap();
        let b = image.broker(3).unwrap();
        assert_eq!(b.shard_addr(1).as_deref(), Some("h:65535"));
        assert_eq!(b.shard_addr(2), None);
    }

    #[test]
    fn alter_topic_configs_replaces_keys_and_optionally_the_controller_settings() {
        let mut image = image();
        let keys = BTreeMap::from([
            ("retention.ms".to_string(), "60000".to_string()),
            ("min.insync.replicas".to_string(), "2".to_string()),
        ]);
        let stricter = TopicConfig {
            min_insync_replicas: 2,
            unclean_leader_election: false,
        };
        image
            .apply(&MetadataRecord::AlterTopicConfigs {
                name: "t".into(),
                topic_id: TopicId(5),
                configs: keys.clone(),
                config: Some(stricter),
            })
            .unwrap();
        let topic = image.topic("t").unwrap();
        assert_eq!(topic.configs, keys);
        assert_eq!(topic.config, stricter);
        // Without `config` only the keys change.
        image
            .apply(&MetadataRecord::AlterTopicConfigs {
                name: "t".into(),
                topic_id: TopicId(5),
                configs: BTreeMap::new(),
                config: None,
            })
            .unwrap();
        let topic = image.topic("t").unwrap();
        assert!(topic.configs.is_empty());
        assert_eq!(topic.config, stricter);
        refused(
            &mut image,
            MetadataRecord::AlterTopicConfigs {
                name: "t".into(),
                topic_id: TopicId(5),
                configs: BTreeMap::new(),
                config: Some(TopicConfig {
                    min_insync_replicas: 0,
                    unclean_leader_election: false,
                }),
            },
            MetadataError::InvalidTopicConfig {
                topic: "t".into(),
                reason: "min.insync.replicas must be at least 1",
            },
        );
        refused(
            &mut image,
            MetadataRecord::AlterTopicConfigs {
                name: "u".into(),
                topic_id: TopicId(5),
                configs: BTreeMap::new(),
                config: None,
            },
            MetadataError::UnknownTopic("u".into()),
        );
    }

    #[test]
    fn garbage_does_not_decode() {
        assert_eq!(MetadataRecord::decode(&[]), Err(RecordDecodeError::Empty));
        let mut bytes = register(1, 1).encode();
        bytes[0] = 2;
        assert_eq!(
            MetadataRecord::decode(&bytes),
            Err(RecordDecodeError::UnsupportedVersion(2))
        );
        let cases: [&[u8]; 6] = [
            b"\x01",
            b"\x01{",
            b"\x01{\"type\":\"launch_rockets\"}",
            b"\x01{\"type\":\"fence_broker\",\"broker\":\"one\",\"broker_epoch\":1}",
            b"\x01{\"type\":\"delete_topic\",\"name\":\"t\",\"topic_id\":\"xyz\"}",
            b"\x01\xff\xfe",
        ];
        for bytes in cases {
            assert!(
                matches!(
                    MetadataRecord::decode(bytes),
                    Err(RecordDecodeError::Malformed(_))
                ),
                "{bytes:?}"
            );
        }
        // Every truncation of a valid record is refused, none panics.
        let whole = MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: TopicId(9),
            config: TopicConfig::default(),
            assignments: vec![vec![1, 2, 3]],
        }
        .encode();
        for len in 0..whole.len() {
            assert!(MetadataRecord::decode(&whole[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn topic_id_text_form() {
        let id = TopicId::derive("orders", 3, 0);
        assert_ne!(id, TopicId::derive("orders", 4, 0));
        assert_ne!(id, TopicId::derive("orders", 3, 1));
        assert_eq!(id, TopicId::derive("orders", 3, 0));
        let text = String::from(id);
        assert_eq!(text.len(), 32);
        assert_eq!(TopicId::try_from(text), Ok(id));
        assert!(TopicId::try_from("+0000000000000000000000000000001".to_string()).is_err());
        assert!(TopicId::try_from("12".to_string()).is_err());
    }

    #[test]
    fn names_and_listeners() {
        assert!(validate_topic_name("orders.v1_a-b").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        for good in ["localhost:9092", "10.0.0.1:1", "[::1]:65535"] {
            assert!(validate_listener(good).is_ok(), "{good}");
        }
        for bad in [
            "localhost",
            ":9092",
            "h:0",
            "h:65536",
            "::1:9092",
            "h :1",
            "h:x",
        ] {
            assert!(validate_listener(bad).is_err(), "{bad}");
        }
    }
}
