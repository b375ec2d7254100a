//! The cluster controller's decisions (ARCHITECTURE §8; Kafka's KRaft quorum controller), as a
//! sans-IO state machine: requests and the time in, [`MetadataRecord`]s out.
//!
//! # Driving it
//! Every decision method reads the metadata image and returns the records that carry the
//! decision out; it does not change the image. The caller appends them to the controller log
//! (replicated through Raft) and every controller, the deciding one included, feeds each
//! committed record to [`Controller::replay`] in log order. **The active controller replays its
//! own records before its next decision** (Kafka applies them to its in-memory image as it
//! appends them): decisions are made against the image, so a decision taken before the previous
//! one's records are replayed may repeat or contradict it (those records are then refused by
//! `replay`, harmlessly). A controller that becomes active calls [`Controller::activate`] first.
//!
//! Besides the image, the controller keeps soft state that is not in the log: each broker's
//! last heartbeat. A new active controller starts every session afresh, as Kafka does.
//!
//! # Liveness and elections
//! A broker registers fenced and is unfenced by its first heartbeat that says it has caught up
//! with the log. A broker that does not heartbeat for `broker_session_timeout_ms` is fenced by
//! [`Controller::tick`]: it is taken out of every ISR it is in, except that an ISR never
//! empties (the last member stays, and the partition goes offline), and every partition it led
//! gets a new leader: the first replica, in replica order, that is in the ISR and live. With
//! none, the partition goes offline, unless its topic allows unclean election: then the first
//! live replica leads, alone in the ISR. When a broker is unfenced, every offline partition
//! that can elect a leader again does. So, after every replayed batch, a partition is offline
//! only when no live broker may lead it.
//!
//! # Placement
//! New topics are placed over the live brokers as Kafka's rack-unaware assignment does:
//! partition `p`'s first replica (its leader) is broker `(start + p) mod n`, and its followers
//! follow at a distance that shifts every `n` partitions, so leaders and followers are both
//! spread. `start` and the shift come from the number of topics created so far, so consecutive
//! topics start on different brokers.

use std::collections::BTreeMap;

use thiserror::Error;

use super::metadata::{
    validate_registration, validate_topic_name, BrokerId, BrokerRegistration, ClusterMetadata,
    LeaderChange, MetadataError, MetadataRecord, PartitionState, Topic, TopicConfig, TopicId,
    TopicPartition, PARTITIONS_PER_TOPIC_MAX,
};

/// Kafka's default `broker.session.timeout.ms`.
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: i64 = 9000;
/// Kafka's default `default.replication.factor`.
pub const DEFAULT_REPLICATION_FACTOR_DEFAULT: i32 = 1;
/// Kafka's default `num.partitions`.
pub const DEFAULT_PARTITIONS_DEFAULT: i32 = 1;

/// Controller settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// How long a broker may go without a heartbeat before it is fenced (ms).
    pub broker_session_timeout_ms: i64,
    /// Replication factor of a topic created without one.
    pub default_replication_factor: i32,
    /// Partition count of a topic created without one.
    pub default_partitions: i32,
    /// Applied metadata entries between a quorum member's snapshots.
    pub metadata_snapshot_entries: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            broker_session_timeout_ms: BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            default_replication_factor: DEFAULT_REPLICATION_FACTOR_DEFAULT,
            default_partitions: DEFAULT_PARTITIONS_DEFAULT,
            metadata_snapshot_entries: crate::cluster::quorum::SNAPSHOT_ENTRIES,
        }
    }
}

/// Why a controller request was refused. Nothing is decided when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControllerError {
    /// A registration with a negative id, a listener that is not `host:port`, a bad rack
    /// name or a bad shard count ([`MetadataError::InvalidBrokerId`], `InvalidListener`,
    /// `InvalidRack`, `InvalidShardCount`, `ShardPortsOverflow`).
    #[error("{0}")]
    InvalidRegistration(MetadataError),
    /// A new incarnation of a broker whose current one still has a live session (two processes
    /// with one id, or a restart faster than the session timeout without a controlled
    /// shutdown). Retry after the session timeout.
    #[error("broker {broker} is already registered by incarnation {current}, whose session is live; retry after the session timeout")]
    DuplicateBrokerRegistration {
        /// The broker.
        broker: BrokerId,
        /// The incarnation registered.
        current: u64,
    },
    /// A broker that is not registered.
    #[error("broker {0} is not registered")]
    UnknownBroker(BrokerId),
    /// A request from an incarnation other than the registered one: an old process.
    #[error("broker {broker}: incarnation {sent} is stale, the registered one is {current}")]
    StaleBrokerIncarnation {
        /// The broker.
        broker: BrokerId,
        /// The incarnation sent.
        sent: u64,
        /// The registered incarnation.
        current: u64,
    },
    /// A heartbeat after a controlled shutdown: the broker must register again.
    #[error("broker {0} has shut down; register again")]
    BrokerShutDown(BrokerId),
    /// Unregistering a broker that is not fenced.
    #[error("broker {0} is not fenced: shut it down before unregistering it")]
    BrokerNotFenced(BrokerId),
    /// Unregistering a broker that still hosts a replica.
    #[error("broker {broker} still hosts a replica of {partition}: reassign it first")]
    BrokerInUse {
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
    /// The topic exists.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The topic does not exist.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// A partition count outside `1..=PARTITIONS_PER_TOPIC_MAX`.
    #[error("topic '{topic}': {requested} partitions is invalid: it must be 1..={PARTITIONS_PER_TOPIC_MAX}")]
    InvalidPartitionCount {
        /// The topic.
        topic: String,
        /// The count asked for.
        requested: i32,
    },
    /// A replication factor below 1.
    #[error("topic '{topic}': replication factor {requested} is invalid: it must be at least 1")]
    InvalidReplicationFactor {
        /// The topic.
        topic: String,
        /// The factor asked for.
        requested: i32,
    },
    /// More replicas than live brokers.
    #[error("topic '{topic}': replication factor {requested} cannot be met: only {live} broker(s) are live (registered and unfenced)")]
    ReplicationFactorTooLarge {
        /// The topic.
        topic: String,
        /// The factor asked for.
        requested: i32,
        /// Live brokers.
        live: usize,
    },
    /// Topic settings out of range.
    #[error("topic '{topic}': invalid config: {reason}")]
    InvalidTopicConfig {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// The partition (or its topic) does not exist.
    #[error("partition {0} does not exist")]
    UnknownTopicOrPartition(TopicPartition),
    /// An ISR change asked for with another leader epoch than the partition's: the asker is
    /// not (or no longer, or not yet) the leader of this epoch.
    #[error("{partition}: leader epoch {sent} is not the current {current}")]
    FencedLeaderEpoch {
        /// The partition.
        partition: TopicPartition,
        /// The epoch sent.
        sent: i32,
        /// The partition's.
        current: i32,
    },
    /// An ISR change asked for by a broker that is not the leader.
    #[error("{partition}: broker {broker} is not the leader (the leader is {leader:?})")]
    NotLeader {
        /// The partition.
        partition: TopicPartition,
        /// The asker.
        broker: BrokerId,
        /// The leader.
        leader: Option<BrokerId>,
    },
    /// An ISR change based on an older state of the partition (it changed since).
    #[error("{partition}: partition epoch {sent} is not the current {current}")]
    InvalidUpdateVersion {
        /// The partition.
        partition: TopicPartition,
        /// The epoch sent.
        sent: i32,
        /// The partition's.
        current: i32,
    },
    /// A new ISR that breaks a rule (without the leader, with a non-replica, a duplicate).
    #[error("{partition}: new ISR {isr:?} is invalid: {reason}")]
    InvalidIsr {
        /// The partition.
        partition: TopicPartition,
        /// The ISR asked for.
        isr: Vec<BrokerId>,
        /// What is wrong.
        reason: &'static str,
    },
    /// A new ISR with a broker that is fenced or not registered (KIP-841).
    #[error(
        "{partition}: broker {broker} is not eligible for the ISR: it is fenced or not registered"
    )]
    IneligibleReplica {
        /// The partition.
        partition: TopicPartition,
        /// The broker.
        broker: BrokerId,
    },
    /// A record the controller built does not apply to its image: a bug, reported rather than
    /// acted on.
    #[error("internal error: a decided record does not apply: {0}")]
    Internal(#[from] MetadataError),
}

/// A broker's session, as seen by the active controller (soft state, not in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    last_heartbeat_ms: i64,
    shut_down: bool,
}

/// Records decided together, applied to a scratch image as they are added so that each one is
/// decided against the state the ones before it leave.
struct Batch {
    image: ClusterMetadata,
    records: Vec<MetadataRecord>,
}

impl Batch {
    fn new(base: &ClusterMetadata) -> Batch {
        Batch {
            image: base.clone(),
            records: Vec::new(),
        }
    }

    fn push(&mut self, record: MetadataRecord) -> Result<(), ControllerError> {
        self.image.apply(&record)?;
        self.records.push(record);
        Ok(())
    }
}

/// The controller: the metadata image and the brokers' sessions.
#[derive(Debug, Clone)]
pub struct Controller {
    config: ControllerConfig,
    metadata: ClusterMetadata,
    sessions: BTreeMap<BrokerId, Session>,
}

impl Controller {
    /// A controller with an empty image.
    pub fn new(config: ControllerConfig) -> Controller {
        Controller::from_metadata(config, ClusterMetadata::new())
    }

    /// A controller over an image loaded from a snapshot or replayed log.
    pub fn from_metadata(config: ControllerConfig, metadata: ClusterMetadata) -> Controller {
        Controller {
            config,
            metadata,
            sessions: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The image, as of the last replayed record.
    pub fn metadata(&self) -> &ClusterMetadata {
        &self.metadata
    }

    /// When broker `id` last heartbeat (or registered), if this controller has a session for it.
    pub fn last_heartbeat_ms(&self, id: BrokerId) -> Option<i64> {
        self.sessions.get(&id).map(|s| s.last_heartbeat_ms)
    }

    /// Becoming the active controller: every registered broker's session starts now (the
    /// heartbeats went to the previous active controller).
    pub fn activate(&mut self, now_ms: i64) {
        self.sessions = self
            .metadata
            .brokers()
            .map(|b| {
                let session = Session {
                    last_heartbeat_ms: now_ms,
                    shut_down: false,
                };
                (b.id, session)
            })
            .collect();
    }

    /// Applies one committed record (on every controller, the active one included). A record
    /// that does not fit the image is refused and changes nothing.
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        self.metadata.apply(record)?;
        if let MetadataRecord::UnregisterBroker { broker, .. } = record {
            self.sessions.remove(broker);
        }
        Ok(())
    }

    /// When [`Controller::tick`] next has something to do: the first moment an unfenced
    /// broker's session will have expired.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.metadata
            .brokers()
            .filter(|b| !b.fenced)
            .filter_map(|b| self.sessions.get(&b.id))
            .map(|s| {
                s.last_heartbeat_ms
                    .saturating_add(self.config.broker_session_timeout_ms)
                    .saturating_add(1)
            })
            .min()
    }

    fn session_live(&self, id: BrokerId, now_ms: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| {
            !s.shut_down
                && now_ms.saturating_sub(s.last_heartbeat_ms)
                    <= self.config.broker_session_timeout_ms
        })
    }

    /// A broker registers: a first start, or a restart with a new `incarnation`. It is fenced
    /// until a heartbeat says it has caught up. A new incarnation is refused while the old one's
    /// session is live ([`ControllerError::DuplicateBrokerRegistration`]; a controlled shutdown
    /// ends the session at once). The same incarnation with the same listener, rack and
    /// shard count is a retry and decides nothing (after a controlled shutdown it registers
    /// anew). If the broker was unfenced, its leaderships and ISR places are handed over
    /// first, as for a fenced one. `shards` is how many shards the broker runs; brokers of one
    /// cluster may run different counts.
    pub fn register_broker(
        &mut self,
        id: BrokerId,
        incarnation: u64,
        listener: &str,
        rack: Option<&str>,
        shards: i32,
        now_ms: i64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        validate_registration(id, listener, rack, shards)
            .map_err(ControllerError::InvalidRegistration)?;
        let mut batch = Batch::new(&self.metadata);
        if let Some(existing) = self.metadata.broker(id) {
            let shut_down = self.sessions.get(&id).is_some_and(|s| s.shut_down);
            if existing.incarnation == incarnation
                && existing.listener == listener
                && existing.rack.as_deref() == rack
                && existing.shards == shards
                && !shut_down
            {
                self.touch(id, now_ms);
                return Ok(Vec::new());
            }
            if existing.incarnation != incarnation && self.session_live(id, now_ms) {
                return Err(ControllerError::DuplicateBrokerRegistration {
                    broker: id,
                    current: existing.incarnation,
                });
            }
            if !existing.fenced {
                hand_over(&mut batch, id, &[id])?;
            }
        }
        let broker_epoch = self.metadata.broker_epoch_last().saturating_add(1);
        batch.push(MetadataRecord::RegisterBroker {
            broker: id,
            incarnation,
            broker_epoch,
            listener: listener.to_string(),
            rack: rack.map(str::to_string),
            shards,
        })?;
        self.sessions.insert(
            id,
            Session {
                last_heartbeat_ms: now_ms,
                shut_down: false,
            },
        );
        Ok(batch.records)
    }

    fn touch(&mut self, id: BrokerId, now_ms: i64) {
        let session = self.sessions.entry(id).or_insert(Session {
            last_heartbeat_ms: now_ms,
            shut_down: false,
        });
        session.last_heartbeat_ms = session.last_heartbeat_ms.max(now_ms);
    }

    /// A broker's heartbeat. It keeps the session alive; the first one that says `caught_up`
    /// with the metadata log unfences a fenced broker, and every offline partition that it (or
    /// anyone) may lead now gets a leader.
    pub fn heartbeat(
        &mut self,
        id: BrokerId,
        incarnation: u64,
        caught_up: bool,
        now_ms: i64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let registration = self.current_registration(id, incarnation)?;
        if self.sessions.get(&id).is_some_and(|s| s.shut_down) {
            return Err(ControllerError::BrokerShutDown(id));
        }
        let (fenced, broker_epoch) = (registration.fenced, registration.epoch);
        let records = if fenced && caught_up {
            let mut batch = Batch::new(&self.metadata);
            batch.push(MetadataRecord::UnfenceBroker {
                broker: id,
                broker_epoch,
            })?;
            elect_offline(&mut batch)?;
            batch.records
        } else {
            Vec::new()
        };
        self.touch(id, now_ms);
        Ok(records)
    }

    /// The registration of broker `id`, if `incarnation` is its current one.
    fn current_registration(
        &self,
        id: BrokerId,
        incarnation: u64,
    ) -> Result<&BrokerRegistration, ControllerError> {
        let registration = self
            .metadata
            .broker(id)
            .ok_or(ControllerError::UnknownBroker(id))?;
        if registration.incarnation != incarnation {
            return Err(ControllerError::StaleBrokerIncarnation {
                broker: id,
                sent: incarnation,
                current: registration.incarnation,
            });
        }
        Ok(registration)
    }

    /// A broker's controlled shutdown: it is fenced now (its leaderships handed over) and its
    /// session ends, so its next incarnation may register at once.
    pub fn shutdown_broker(
        &mut self,
        id: BrokerId,
        incarnation: u64,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let registration = self.current_registration(id, incarnation)?;
        let records = if registration.fenced {
            Vec::new()
        } else {
            let mut batch = Batch::new(&self.metadata);
            fence(&mut batch, id, &[id])?;
            batch.records
        };
        self.sessions.insert(
            id,
            Session {
                last_heartbeat_ms: i64::MIN,
                shut_down: true,
            },
        );
        Ok(records)
    }

    /// Removes a fenced broker that hosts no replica from the cluster.
    pub fn unregister_broker(&self, id: BrokerId) -> Result<Vec<MetadataRecord>, ControllerError> {
        let registration = self
            .metadata
            .broker(id)
            .ok_or(ControllerError::UnknownBroker(id))?;
        if !registration.fenced {
            return Err(ControllerError::BrokerNotFenced(id));
        }
        if let Some(partition) = self.metadata.partitions_with_replica(id).into_iter().next() {
            return Err(ControllerError::BrokerInUse {
                broker: id,
                partition,
            });
        }
        let record = MetadataRecord::UnregisterBroker {
            broker: id,
            broker_epoch: registration.epoch,
        };
        self.metadata.check(&record)?;
        Ok(vec![record])
    }

    /// Fences every unfenced broker whose last heartbeat is more than the session timeout
    /// before `now_ms`, handing over its leaderships and ISR places (see the module docs).
    /// Brokers fenced in the same tick are not elected in each other's place.
    pub fn tick(&mut self, now_ms: i64) -> Result<Vec<MetadataRecord>, ControllerError> {
        let timeout_ms = self.config.broker_session_timeout_ms;
        let mut expired = Vec::new();
        for broker in self.metadata.brokers().filter(|b| !b.fenced) {
            // A broker without a session (replayed while this controller was not active)
            // starts one now.
            let session = self.sessions.entry(broker.id).or_insert(Session {
                last_heartbeat_ms: now_ms,
                shut_down: false,
            });
            if session.shut_down || now_ms.saturating_sub(session.last_heartbeat_ms) > timeout_ms {
                expired.push(broker.id);
            }
        }
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = Batch::new(&self.metadata);
        for &broker in &expired {
            fence(&mut batch, broker, &expired)?;
        }
        Ok(batch.records)
    }

    /// Creates topic `name` with `partitions` partitions of `replication_factor` replicas each
    /// (`None`: the configured defaults), placed over the live brokers (see the module docs).
    /// Each partition starts led by its first replica, with every replica in the ISR.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        replication_factor: Option<i32>,
        config: TopicConfig,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        validate_topic_name(name).map_err(|reason| ControllerError::InvalidTopicName {
            name: name.to_string(),
            reason,
        })?;
        if self.metadata.topic(name).is_some() {
            return Err(ControllerError::TopicExists(name.to_string()));
        }
        let partitions = partitions.unwrap_or(self.config.default_partitions);
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(ControllerError::InvalidPartitionCount {
                topic: name.to_string(),
                requested: partitions,
            });
        }
        let replication_factor =
            replication_factor.unwrap_or(self.config.default_replication_factor);
        if replication_factor < 1 {
            return Err(ControllerError::InvalidReplicationFactor {
                topic: name.to_string(),
                requested: replication_factor,
            });
        }
        if config.min_insync_replicas < 1 || config.min_insync_replicas > replication_factor {
            return Err(ControllerError::InvalidTopicConfig {
                topic: name.to_string(),
                reason: format!(
                    "min.insync.replicas={} must be in 1..=replication factor {}",
                    config.min_insync_replicas, replication_factor
                ),
            });
        }
        let live = self.metadata.live_brokers();
        if usize::try_from(replication_factor).map_or(true, |rf| rf > live.len()) {
            return Err(ControllerError::ReplicationFactorTooLarge {
                topic: name.to_string(),
                requested: replication_factor,
                live: live.len(),
            });
        }
        let seq = self.metadata.topics_created();
        let topic_id = (0..)
            .map(|salt| TopicId::derive(name, seq, salt))
            .find(|id| *id != TopicId::ZERO && self.metadata.topic_by_id(*id).is_none())
            .unwrap_or(TopicId::ZERO);
        let record = MetadataRecord::CreateTopic {
            name: name.to_string(),
            topic_id,
            config,
            assignments: assign_replicas(&live, partitions, replication_factor, seq),
        };
        self.metadata.check(&record)?;
        Ok(vec![record])
    }

    /// Deletes topic `name`.
    pub fn delete_topic(&self, name: &str) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self
            .metadata
            .topic(name)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        Ok(vec![MetadataRecord::DeleteTopic {
            name: name.to_string(),
            topic_id: topic.id,
        }])
    }

    /// Sets topic `name`'s config keys to `configs` (every key set after the change) and the
    /// controller's settings to `config`, which the caller resolved from them.
    /// `min.insync.replicas` must stay within 1..=the topic's replication factor, as at
    /// creation. A change that changes nothing decides nothing.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        config: TopicConfig,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self
            .metadata
            .topic(name)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        let replication_factor = topic
            .partitions
            .iter()
            .map(|p| p.replicas.len())
            .min()
            .unwrap_or(0);
        let min_insync_ok = usize::try_from(config.min_insync_replicas)
            .is_ok_and(|m| (1..=replication_factor).contains(&m));
        if !min_insync_ok {
            return Err(ControllerError::InvalidTopicConfig {
                topic: name.to_string(),
                reason: format!(
                    "min.insync.replicas={} must be in 1..=replication factor {replication_factor}",
                    config.min_insync_replicas
                ),
            });
        }
        if topic.configs == configs && topic.config == config {
            return Ok(Vec::new());
        }
        let record = MetadataRecord::AlterTopicConfigs {
            name: name.to_string(),
            topic_id: topic.id,
            configs,
            config: (topic.config != config).then_some(config),
        };
        self.metadata.check(&record)?;
        Ok(vec![record])
    }

    /// A leader asks to change its partition's ISR (Kafka's AlterPartition). Only the current
    /// leader may ask, with the partition's current leader epoch (else
    /// [`ControllerError::FencedLeaderEpoch`]) and partition epoch (else
    /// [`ControllerError::InvalidUpdateVersion`]: the partition changed since the leader last
    /// heard). The new ISR must hold the leader, be distinct replicas, and every member must be
    /// unfenced (KIP-841; a fenced broker is never in the ISR of a partition that has a leader,
    /// so this only refuses additions). Asking for the ISR it already has decides nothing.
    pub fn alter_partition(
        &self,
        broker: BrokerId,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: &[BrokerId],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let tp = TopicPartition::new(topic, partition);
        let (topic_id, state) = self
            .metadata
            .topic(topic)
            .and_then(|t| Some((t.id, t.partition(partition)?)))
            .ok_or_else(|| ControllerError::UnknownTopicOrPartition(tp.clone()))?;
        if leader_epoch != state.leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch {
                partition: tp,
                sent: leader_epoch,
                current: state.leader_epoch,
            });
        }
        if state.leader != Some(broker) {
            return Err(ControllerError::NotLeader {
                partition: tp,
                broker,
                leader: state.leader,
            });
        }
        if partition_epoch != state.partition_epoch {
            return Err(ControllerError::InvalidUpdateVersion {
                partition: tp,
                sent: partition_epoch,
                current: state.partition_epoch,
            });
        }
        let invalid = |reason| ControllerError::InvalidIsr {
            partition: tp.clone(),
            isr: new_isr.to_vec(),
            reason,
        };
        if !new_isr.contains(&broker) {
            return Err(invalid("it does not contain the leader"));
        }
        for (i, member) in new_isr.iter().enumerate() {
            if new_isr[..i].contains(member) {
                return Err(invalid("a broker is listed twice"));
            }
            if !state.replicas.contains(member) {
                return Err(invalid("a member is not a replica"));
            }
            if !self.metadata.is_live(*member) {
                return Err(ControllerError::IneligibleReplica {
                    partition: tp,
                    broker: *member,
                });
            }
        }
        let unchanged =
            new_isr.len() == state.isr.len() && new_isr.iter().all(|b| state.isr.contains(b));
        if unchanged {
            return Ok(Vec::new());
        }
        let record = MetadataRecord::PartitionChange {
            topic: topic.to_string(),
            topic_id,
            partition,
            leader: LeaderChange::Unchanged,
            isr: Some(new_isr.to_vec()),
            replicas: None,
        };
        self.metadata.check(&record)?;
        Ok(vec![record])
    }

    /// Moves every partition's leadership back to its first (preferred) replica where that
    /// replica is live and in the ISR: balances leaders again after brokers come back.
    pub fn elect_preferred_leaders(&self) -> Result<Vec<MetadataRecord>, ControllerError> {
        let mut batch = Batch::new(&self.metadata);
        let moves: Vec<(String, TopicId, i32, BrokerId)> = self
            .metadata
            .partitions()
            .filter_map(|(topic, index, state)| {
                let preferred = *state.replicas.first()?;
                let eligible = state.leader != Some(preferred)
                    && state.isr.contains(&preferred)
                    && self.metadata.is_live(preferred);
                eligible.then(|| (topic.name.clone(), topic.id, index, preferred))
            })
            .collect();
        for (topic, topic_id, partition, preferred) in moves {
            batch.push(MetadataRecord::PartitionChange {
                topic,
                topic_id,
                partition,
                leader: LeaderChange::To(preferred),
                isr: None,
                replicas: None,
            })?;
        }
        Ok(batch.records)
    }
}

/// Kafka's rack-unaware replica assignment over `brokers` (sorted ids), with the start broker
/// and the follower shift taken from `seq` (the number of topics created before) instead of a
/// random number. Partition `p`'s replicas are `brokers[(start + p) mod n]` followed by
/// `replication_factor - 1` followers at distances `1 + (shift + j) mod (n - 1)`, where the
/// shift grows by one every `n` partitions. Returns the replicas of each partition; empty if
/// `brokers` is empty or the factor exceeds it.
pub fn assign_replicas(
    brokers: &[BrokerId],
    partitions: i32,
    replication_factor: i32,
    seq: u64,
) -> Vec<Vec<BrokerId>> {
    let n = brokers.len();
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    let count = usize::try_from(partitions).unwrap_or(0);
    if n == 0 || rf == 0 || rf > n {
        return Vec::new();
    }
    // n fits u64 on every platform Rust supports; the remainders are below n.
    let n64 = n as u64;
    let start = (seq % n64) as usize;
    let mut shift = ((seq / n64) % n64) as usize;
    let mut assignments = Vec::with_capacity(count);
    for p in 0..count {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (start + p) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        for j in 0..rf - 1 {
            // rf > 1 here, so n >= 2 and n - 1 >= 1.
            let index = (first + 1 + (shift + j) % (n - 1)) % n;
            replicas.push(brokers[index]);
        }
        assignments.push(replicas);
    }
    assignments
}

/// Whether `broker` may lead: live in the image and not being fenced in this batch.
fn usable(image: &ClusterMetadata, broker: BrokerId, dying: &[BrokerId]) -> bool {
    image.is_live(broker) && !dying.contains(&broker)
}

/// The leader and ISR a partition gets when it must elect: the first replica in the ISR that
/// is usable; else, if the topic allows it, the first usable replica with an ISR of itself;
/// else offline with the ISR as it is.
fn elect(
    image: &ClusterMetadata,
    topic: &Topic,
    state: &PartitionState,
    isr: Vec<BrokerId>,
    dying: &[BrokerId],
) -> (Option<BrokerId>, Vec<BrokerId>) {
    let clean = state
        .replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && usable(image, *r, dying));
    if let Some(leader) = clean {
        return (Some(leader), isr);
    }
    if topic.config.unclean_leader_election {
        if let Some(leader) = state
            .replicas
            .iter()
            .copied()
            .find(|r| usable(image, *r, dying))
        {
            return (Some(leader), vec![leader]);
        }
    }
    (None, isr)
}

/// The record that takes a partition from `state` to `leader` and `isr`, if anything changes.
fn partition_change(
    topic: &Topic,
    partition: i32,
    state: &PartitionState,
    leader: Option<BrokerId>,
    isr: Vec<BrokerId>,
) -> Option<MetadataRecord> {
    let leader_change = match leader {
        _ if leader == state.leader => LeaderChange::Unchanged,
        Some(broker) => LeaderChange::To(broker),
        None => LeaderChange::Offline,
    };
    let isr = (isr != state.isr).then_some(isr);
    if leader_change == LeaderChange::Unchanged && isr.is_none() {
        return None;
    }
    Some(MetadataRecord::PartitionChange {
        topic: topic.name.clone(),
        topic_id: topic.id,
        partition,
        leader: leader_change,
        isr,
        replicas: None,
    })
}

/// Takes `broker` out of every ISR it is in (but never empties one) and re-elects every
/// partition it led, not electing brokers in `dying`.
fn hand_over(
    batch: &mut Batch,
    broker: BrokerId,
    dying: &[BrokerId],
) -> Result<(), ControllerError> {
    let records: Vec<MetadataRecord> = batch
        .image
        .partitions()
        .filter(|(_, _, state)| state.leader == Some(broker) || state.isr.contains(&broker))
        .filter_map(|(topic, index, state)| {
            let mut isr = state.isr.clone();
            if isr.len() > 1 {
                isr.retain(|b| *b != broker);
            }
            let (leader, isr) = if state.leader == Some(broker) || state.leader.is_none() {
                elect(&batch.image, topic, state, isr, dying)
            } else {
                (state.leader, isr)
            };
            partition_change(topic, index, state, leader, isr)
        })
        .collect();
    for record in records {
        batch.push(record)?;
    }
    Ok(())
}

/// Hands over `broker`'s partitions, then fences it.
fn fence(batch: &mut Batch, broker: BrokerId, dying: &[BrokerId]) -> Result<(), ControllerError> {
    hand_over(batch, broker, dying)?;
    let broker_epoch = batch
        .image
        .broker(broker)
        .map(|b| b.epoch)
        .ok_or(ControllerError::UnknownBroker(broker))?;
    batch.push(MetadataRecord::FenceBroker {
        broker,
        broker_epoch,
    })
}

/// Elects a leader for every offline partition that can have one now.
fn elect_offline(batch: &mut Batch) -> Result<(), ControllerError> {
    let records: Vec<MetadataRecord> = batch
        .image
        .partitions()
        .filter(|(_, _, state)| state.is_offline())
        .filter_map(|(topic, index, state)| {
            let (leader, isr) = elect(&batch.image, topic, state, state.isr.clone(), &[]);
            leader.and_then(|_| partition_change(topic, index, state, leader, isr))
        })
        .collect();
    for record in records {
        batch.push(record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metadata::SHARDS_PER_BROKER_MAX;

    fn live_cluster(brokers: &[BrokerId]) -> Controller {
        let mut controller = Controller::new(ControllerConfig::default());
        for &b in brokers {
            let records = controller
                .register_broker(b, 1, &format!("b{b}:9092"), None, 1, 0)
                .unwrap();
            replay_all(&mut controller, &records);
            let records = controller.heartbeat(b, 1, true, 0).unwrap();
            replay_all(&mut controller, &records);
        }
        controller
    }

    fn replay_all(controller: &mut Controller, records: &[MetadataRecord]) {
        for record in records {
            controller.replay(record).unwrap();
        }
    }

    #[test]
    fn assignment_spreads_leaders_and_followers() {
        let brokers = [1, 2, 3, 4, 5];
        for seq in 0..10 {
            let assignments = assign_replicas(&brokers, 10, 3, seq);
            assert_eq!(assignments.len(), 10);
            let mut leaders = BTreeMap::new();
            let mut replicas = BTreeMap::new();
            for a in &assignments {
                assert_eq!(a.len(), 3);
                let mut sorted = a.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), 3, "{a:?}");
                *leaders.entry(a[0]).or_insert(0) += 1;
                for b in a {
                    *replicas.entry(*b).or_insert(0) += 1;
                }
            }
            assert!(leaders.values().all(|&n| n == 2), "{leaders:?}");
            assert!(replicas.values().all(|&n| n == 6), "{replicas:?}");
        }
        // Consecutive topics start on different brokers.
        let firsts: Vec<BrokerId> = (0..5)
            .map(|s| assign_replicas(&brokers, 1, 1, s)[0][0])
            .collect();
        assert_eq!(firsts, vec![1, 2, 3, 4, 5]);
        assert!(assign_replicas(&brokers, 3, 6, 0).is_empty());
        assert!(assign_replicas(&[], 3, 1, 0).is_empty());
        assert_eq!(assign_replicas(&[7], 2, 1, 3), vec![vec![7], vec![7]]);
    }

    #[test]
    fn election_follows_replica_order_not_isr_order() {
        let mut c = live_cluster(&[1, 2, 3]);
        let records = c
            .create_topic("t", Some(1), Some(3), TopicConfig::default())
            .unwrap();
        replay_all(&mut c, &records);
        let state = c.metadata().partition("t", 0).unwrap().clone();
        let leader = state.leader.unwrap();
        // Reorder the ISR so that ISR order and replica order disagree.
        let mut isr = state.isr.clone();
        isr.reverse();
        // Same set: nothing to decide.
        assert!(c
            .alter_partition(leader, "t", 0, 0, 0, &isr)
            .unwrap()
            .is_empty());
        let records = c.shutdown_broker(leader, 1).unwrap();
        replay_all(&mut c, &records);
        let after = c.metadata().partition("t", 0).unwrap();
        assert_eq!(after.leader, Some(state.replicas[1]));
        assert_eq!(after.leader_epoch, 1);
        assert!(!after.isr.contains(&leader));
    }

    #[test]
    fn register_retry_decides_nothing_and_new_incarnation_waits_for_session() {
        let mut c = live_cluster(&[1]);
        assert!(c
            .register_broker(1, 1, "b1:9092", None, 1, 5)
            .unwrap()
            .is_empty());
        assert_eq!(
            c.register_broker(1, 2, "b1:9092", None, 1, 6),
            Err(ControllerError::DuplicateBrokerRegistration {
                broker: 1,
                current: 1
            })
        );
        // After the session expires (no tick yet), the restart is taken and hands over.
        let records = c.register_broker(1, 2, "b1:9092", None, 1, 9007).unwrap();
        assert!(matches!(
            records.last(),
            Some(MetadataRecord::RegisterBroker { incarnation: 2, .. })
        ));
        replay_all(&mut c, &records);
        assert!(c.metadata().broker(1).unwrap().fenced);
        assert_eq!(
            c.heartbeat(1, 1, true, 9008),
            Err(ControllerError::StaleBrokerIncarnation {
                broker: 1,
                sent: 1,
                current: 2
            })
        );
    }

    #[test]
    fn registration_keeps_the_shard_count_and_refuses_a_bad_one() {
        let mut c = live_cluster(&[1]);
        for shards in [0, -1, SHARDS_PER_BROKER_MAX + 1] {
            assert_eq!(
                c.register_broker(2, 1, "b2:9092", None, shards, 0),
                Err(ControllerError::InvalidRegistration(
                    MetadataError::InvalidShardCount { broker: 2, shards }
                ))
            );
        }
        assert!(matches!(
            c.register_broker(2, 1, "b2:65535", None, 2, 0),
            Err(ControllerError::InvalidRegistration(
                MetadataError::ShardPortsOverflow { broker: 2, .. }
            ))
        ));
        assert!(c.metadata().broker(2).is_none());
        let records = c.register_broker(2, 1, "b2:9092", None, 3, 0).unwrap();
        replay_all(&mut c, &records);
        assert_eq!(c.metadata().broker(2).unwrap().shards, 3);
        assert_eq!(c.metadata().broker(1).unwrap().shards, 1);
        // The same registration again is a retry; another shard count is not.
        assert!(c
            .register_broker(2, 1, "b2:9092", None, 3, 1)
            .unwrap()
            .is_empty());
        let records = c.register_broker(2, 1, "b2:9092", None, 2, 2).unwrap();
        replay_all(&mut c, &records);
        assert_eq!(c.metadata().broker(2).unwrap().shards, 2);
    }

    #[test]
    fn alter_topic_configs_checks_min_insync_against_the_replication_factor() {
        let mut c = live_cluster(&[1, 2, 3]);
        let records = c
            .create_topic("t", Some(2), Some(2), TopicConfig::default())
            .unwrap();
        replay_all(&mut c, &records);
        let keys = BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())]);
        let two = TopicConfig {
            min_insync_replicas: 2,
            unclean_leader_election: false,
        };
        assert_eq!(
            c.alter_topic_configs("nope", keys.clone(), two),
            Err(ControllerError::UnknownTopic("nope".into()))
        );
        assert!(matches!(
            c.alter_topic_configs(
                "t",
                keys.clone(),
                TopicConfig {
                    min_insync_replicas: 3,
                    ..two
                }
            ),
            Err(ControllerError::InvalidTopicConfig { .. })
        ));
        let records = c.alter_topic_configs("t", keys.clone(), two).unwrap();
        assert!(matches!(
            records.as_slice(),
            [MetadataRecord::AlterTopicConfigs {
                config: Some(c),
                ..
            }] if *c == two
        ));
        replay_all(&mut c, &records);
        assert_eq!(c.metadata().topic("t").unwrap().config, two);
        assert_eq!(c.metadata().topic("t").unwrap().configs, keys);
        // Nothing to change: nothing decided. Keys alone: the controller settings stay.
        assert!(c
            .alter_topic_configs("t", keys.clone(), two)
            .unwrap()
            .is_empty());
        let more = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let records = c.alter_topic_configs("t", more, two).unwrap();
        assert!(matches!(
            records.as_slice(),
            [MetadataRecord::AlterTopicConfigs { config: None, .. }]
        ));
    }

    #[test]
    fn a_new_active_controller_starts_sessions_afresh() {
        let mut old = live_cluster(&[1, 2]);
        let records = old
            .create_topic("t", Some(2), Some(2), TopicConfig::default())
            .unwrap();
        replay_all(&mut old, &records);
        // A follower controller replayed the same log; it becomes active much later.
        let mut new = Controller::from_metadata(old.config().clone(), old.metadata().clone());
        new.activate(50_000);
        assert_eq!(new.last_heartbeat_ms(1), Some(50_000));
        assert!(new.tick(59_000).unwrap().is_empty());
        assert!(new.heartbeat(2, 1, true, 59_000).unwrap().is_empty());
        let records = new.tick(59_001).unwrap();
        replay_all(&mut new, &records);
        assert!(new.metadata().broker(1).unwrap().fenced);
        assert!(!new.metadata().broker(2).unwrap().fenced);
        for p in 0..2 {
            let state = new.metadata().partition("t", p).unwrap();
            assert_eq!((state.leader, state.isr.as_slice()), (Some(2), &[2][..]));
        }
    }

    #[test]
    fn next_deadline_is_the_first_expiry() {
        let mut c = live_cluster(&[1, 2]);
        assert!(c.heartbeat(2, 1, true, 500).unwrap().is_empty());
        assert_eq!(c.next_deadline_ms(), Some(9001));
        assert!(c.tick(9000).unwrap().is_empty());
        let records = c.tick(9001).unwrap();
        assert_eq!(
            records,
            vec![MetadataRecord::FenceBroker {
                broker: 1,
                broker_epoch: 1
            }]
        );
    }
}
