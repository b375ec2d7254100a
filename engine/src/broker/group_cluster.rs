//! Consumer groups in a cluster (ARCHITECTURE §8): the coordinator of group `g` is the broker
//! leading partition `offsets_partition_for(g, n)` of the replicated `__consumer_offsets`.
//!
//! - **Creation**: the topic is created through the controller by the first group request
//!   that finds it missing (like Kafka's first FindCoordinator), with replication factor
//!   `min(3, registered brokers)`, `min.insync.replicas` 2 when it has 3 replicas, compacted
//!   and flushed on every commit. Until it exists group requests get CoordinatorNotAvailable.
//! - **Routing**: a client may send a group request to any broker; a broker that does not lead
//!   the group's offsets partition passes it on to the one that does (over the brokers' QUIC
//!   connections, naming the client with [`FORWARDED_CLIENT_PREFIX`]) and relays the answer. A
//!   request passed on once is never passed on again: a broker whose image disagrees answers
//!   NotCoordinator and the client retries. FindCoordinator names the leader too.
//! - **Loading**: when the image makes this shard the leader of an offsets partition, the
//!   partition is replayed from its start (the whole local log: as leader it is the truth, and a
//!   commit acknowledged by the old leader is in it) before its groups are served; requests in
//!   the meantime get CoordinatorLoadInProgress. Membership is soft state: members of a moved
//!   group get UnknownMemberId and rejoin, as after a coordinator move in Kafka.
//! - **Unloading**: when leadership goes (or the epoch changes) the partition's groups are
//!   dropped from memory at once; a load still running stops.
//! - **Commits**: appended on the leader, then acknowledged only once durable *and* replicated
//!   to the in-sync replicas (the high watermark passed them, like `acks=all`), so an
//!   acknowledged commit survives the loss of the coordinator.

use std::rc::Rc;
use std::time::Duration;

use quiver_transport::protocol::{
    ConfigEntry, CreatableTopic, CreateTopicsRequest, ErrorCode, ListGroupsRequest, ListedGroup,
    Request, Response,
};

use super::errors::WireError;
use super::groups::offsets_topic_configs;
use super::ShardBroker;
use crate::group::records::offsets_partition_for;
use crate::group::{OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS};
use crate::partition::Partition;
use crate::shard::shard_for;

/// Marks a group request one broker passed on to another, before the client's own id.
pub(crate) const FORWARDED_CLIENT_PREFIX: &str = "quiver-forwarded:";
/// How long a broker waits for the coordinator's answer to a commit or group deletion it
/// passed on (they wait for replication).
const FORWARD_WRITE_TIMEOUT: Duration = Duration::from_secs(35);
/// How long it waits for the answer to any other group request it passed on (a coordinator
/// that died before it was fenced must not hold members' heartbeats for long).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long ListGroups waits for each other broker.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most replicas of an offsets partition.
const OFFSETS_REPLICATION_FACTOR_MAX: usize = 3;

/// This shard's standing as coordinator of one offsets partition it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lead {
    /// Replaying the partition at this leader epoch.
    Loading(i32),
    /// Serving its groups at this leader epoch.
    Ready(i32),
}

impl Lead {
    fn epoch(self) -> i32 {
        match self {
            Lead::Loading(e) | Lead::Ready(e) => e,
        }
    }
}

/// Where a group request goes in a cluster.
pub(crate) enum GroupRoute {
    /// This broker coordinates the group, on `shard`.
    Here { shard: usize },
    /// Broker `leader` does, at `addr` (its shard's address), on its shard `shard`.
    Remote {
        leader: i32,
        addr: String,
        shard: usize,
    },
    /// `__consumer_offsets` does not exist yet.
    Create,
    /// Nobody can now.
    Unavailable(WireError),
}

impl ShardBroker {
    /// The partition count of `__consumer_offsets`: the image's in a cluster.
    pub(crate) fn offsets_partitions(&self) -> i32 {
        if self.clustered() {
            if let Some(n) = self
                .snapshot()
                .and_then(|s| s.image.topic(OFFSETS_TOPIC).map(|t| t.partition_count()))
            {
                return n;
            }
        }
        OFFSETS_TOPIC_PARTITIONS
    }

    /// Which broker coordinates `group`, per this shard's image.
    pub(crate) fn group_route(&self, group: &str) -> GroupRoute {
        let Some(snapshot) = self.snapshot() else {
            return GroupRoute::Unavailable((
                ErrorCode::CoordinatorNotAvailable,
                "this broker has not learned the cluster metadata yet".into(),
            ));
        };
        let Some(topic) = snapshot.image.topic(OFFSETS_TOPIC) else {
            return GroupRoute::Create;
        };
        let partition = offsets_partition_for(group, topic.partition_count());
        let leader = topic.partition(partition).and_then(|p| p.leader);
        match leader {
            None => GroupRoute::Unavailable((
                ErrorCode::CoordinatorNotAvailable,
                format!("{OFFSETS_TOPIC}-{partition} has no leader"),
            )),
            Some(leader) if leader == self.config.node_id => GroupRoute::Here {
                shard: shard_for(OFFSETS_TOPIC, partition, self.config.shard_count),
            },
            Some(leader) => match snapshot.image.broker(leader).and_then(|b| {
                let shard = b.shard_of(OFFSETS_TOPIC, partition);
                Some((shard, b.shard_addr(shard)?))
            }) {
                Some((shard, addr)) => GroupRoute::Remote {
                    leader,
                    addr,
                    shard,
                },
                None => GroupRoute::Unavailable((
                    ErrorCode::CoordinatorNotAvailable,
                    format!("broker {leader} has no usable listener"),
                )),
            },
        }
    }

    /// Passes a group request on to its coordinator at `addr` and returns the answer.
    pub(crate) async fn forward_group(
        &self,
        addr: &str,
        client_id: &str,
        request: Request,
    ) -> Response {
        let peers = self.peers.borrow().clone();
        let Some(peers) = peers else {
            return self.group_failed(
                &request,
                (
                    ErrorCode::CoordinatorNotAvailable,
                    "this broker has no connections to other brokers yet".into(),
                ),
            );
        };
        let id = format!("{FORWARDED_CLIENT_PREFIX}{client_id}");
        let timeout = match request {
            Request::OffsetCommit(_) | Request::DeleteGroups(_) => FORWARD_WRITE_TIMEOUT,
            _ => FORWARD_TIMEOUT,
        };
        match peers
            .request_as(addr, Some(&id), request.clone(), timeout)
            .await
        {
            Ok(Response::Rejected(code)) => self.group_failed(
                &request,
                (
                    code,
                    format!("the coordinator at {addr} refused the request"),
                ),
            ),
            Ok(response) if response.api_key() == Some(request.api_key()) => response,
            Ok(_) => self.group_failed(
                &request,
                (
                    ErrorCode::Unknown,
                    format!("the coordinator at {addr} sent a mismatched reply"),
                ),
            ),
            Err(e) => self.group_failed(
                &request,
                (
                    ErrorCode::CoordinatorNotAvailable,
                    format!("the coordinator at {addr} did not answer: {e}"),
                ),
            ),
        }
    }

    /// Asks the controller to create `__consumer_offsets` (one attempt at a time per shard).
    pub(crate) async fn ensure_offsets_topic(&self) {
        if self.groups.creating_offsets.replace(true) {
            return;
        }
        let (registered, live) = self.snapshot().map_or((1, 1), |s| {
            (s.image.brokers().count(), s.image.live_brokers().len())
        });
        let mut replicas = registered.clamp(1, OFFSETS_REPLICATION_FACTOR_MAX);
        // Twice at most: with every registered broker, then, if some are down, the live ones.
        for _ in 0..2 {
            let min_insync = if replicas >= 3 { 2 } else { 1 };
            let mut configs: Vec<ConfigEntry> = offsets_topic_configs()
                .into_iter()
                .map(|(name, value)| ConfigEntry {
                    name,
                    value: Some(value),
                })
                .collect();
            configs.push(ConfigEntry {
                name: "min.insync.replicas".into(),
                value: Some(min_insync.to_string()),
            });
            let request = CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: OFFSETS_TOPIC.into(),
                    partition_count: OFFSETS_TOPIC_PARTITIONS,
                    replication_factor: i16::try_from(replicas).unwrap_or(1),
                    configs,
                }],
                timeout_ms: 10_000,
                validate_only: false,
            };
            let outcome = match self.admin(request.into()).await {
                Response::CreateTopics(r) => r
                    .topics
                    .into_iter()
                    .next()
                    .map_or((ErrorCode::Unknown, None), |t| {
                        (t.error_code, t.error_message)
                    }),
                Response::Rejected(code) => (code, None),
                _ => (ErrorCode::Unknown, None),
            };
            match outcome {
                (ErrorCode::None, _) => {
                    eprintln!(
                        "quiver: created {OFFSETS_TOPIC} ({OFFSETS_TOPIC_PARTITIONS} partitions, {replicas} replicas)"
                    );
                    break;
                }
                (ErrorCode::TopicAlreadyExists, _) => break,
                (ErrorCode::InvalidReplicationFactor, _) if live.clamp(1, 3) < replicas => {
                    replicas = live.clamp(1, OFFSETS_REPLICATION_FACTOR_MAX);
                }
                (code, message) => {
                    eprintln!(
                        "quiver: creating {OFFSETS_TOPIC} failed: {code:?}: {}",
                        message.unwrap_or_default()
                    );
                    break;
                }
            }
        }
        self.groups.creating_offsets.set(false);
    }

    /// Refuses a group request for offsets partition `partition` unless this shard leads it
    /// and has loaded it.
    pub(crate) fn check_coordinating(&self, partition: i32) -> Result<(), WireError> {
        let epoch = self.leading_epoch(OFFSETS_TOPIC, partition);
        let lead = self.groups.leading.borrow().get(&partition).copied();
        match (lead, epoch) {
            (Some(Lead::Ready(e)), Some(now)) if e == now => Ok(()),
            (Some(Lead::Loading(e)), Some(now)) if e == now => Err((
                ErrorCode::CoordinatorLoadInProgress,
                format!("{OFFSETS_TOPIC}-{partition} is being loaded"),
            )),
            _ => Err((
                ErrorCode::NotCoordinator,
                format!(
                    "broker {} does not lead {OFFSETS_TOPIC}-{partition}",
                    self.config.node_id
                ),
            )),
        }
    }

    /// Before a commit's append: this broker must lead the offsets partition, with enough
    /// replicas in sync.
    pub(crate) fn check_offsets_leader(&self, partition: &Partition) -> Result<(), WireError> {
        if self
            .check_leader(OFFSETS_TOPIC, partition.index(), -1)
            .is_err()
        {
            return Err((
                ErrorCode::NotCoordinator,
                format!(
                    "broker {} no longer leads {}",
                    self.config.node_id,
                    partition.name()
                ),
            ));
        }
        self.check_min_insync(OFFSETS_TOPIC, partition.index())
            .map_err(|message| (ErrorCode::CoordinatorNotAvailable, message))
    }

    /// After a commit's append: waits until the in-sync replicas have it.
    pub(crate) async fn wait_offsets_replicated(
        &self,
        partition: &Partition,
        next_offset: i64,
        timeout: Duration,
    ) -> Result<(), WireError> {
        self.wait_replicated(partition, next_offset, timeout)
            .await
            .map_err(|(code, message)| {
                let code = match code {
                    ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch => {
                        ErrorCode::NotCoordinator
                    }
                    ErrorCode::NotEnoughReplicas | ErrorCode::NotEnoughReplicasAfterAppend => {
                        ErrorCode::CoordinatorNotAvailable
                    }
                    other => other,
                };
                (code, message)
            })
    }

    /// Loads the offsets partitions this shard came to lead and unloads those it stopped
    /// leading (after every image change).
    pub(crate) fn sync_group_leadership(self: &Rc<Self>) {
        if !self.clustered() {
            return;
        }
        let n = self.offsets_partitions();
        let gone: Vec<i32> = self
            .groups
            .leading
            .borrow()
            .iter()
            .filter(|(p, lead)| self.leading_epoch(OFFSETS_TOPIC, **p) != Some(lead.epoch()))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.groups.leading.borrow_mut().remove(&p);
            self.unload_groups(p, n);
        }
        let offsets: Vec<Rc<Partition>> = self
            .all_partitions()
            .into_iter()
            .filter(|p| p.topic() == OFFSETS_TOPIC)
            .collect();
        for partition in offsets {
            let p = partition.index();
            let Some(epoch) = self.leading_epoch(OFFSETS_TOPIC, p) else {
                continue;
            };
            if self.groups.leading.borrow().contains_key(&p) {
                continue;
            }
            self.groups
                .leading
                .borrow_mut()
                .insert(p, Lead::Loading(epoch));
            let this = self.clone();
            glommio::spawn_local(async move { this.load_offsets(partition, epoch, n).await })
                .detach();
        }
    }

    /// Replays offsets partition `partition` led at `epoch`, then serves its groups.
    async fn load_offsets(self: Rc<Self>, partition: Rc<Partition>, epoch: i32, n: i32) {
        let p = partition.index();
        let still = || self.groups.leading.borrow().get(&p) == Some(&Lead::Loading(epoch));
        let outcome = self.replay_offsets(&partition, &still).await;
        if !still() {
            return;
        }
        match outcome {
            Ok(records) => {
                self.groups
                    .leading
                    .borrow_mut()
                    .insert(p, Lead::Ready(epoch));
                self.groups_wake.notify_all();
                eprintln!(
                    "quiver: coordinating the groups of {} (epoch {epoch}): {records} offset records loaded",
                    partition.name()
                );
            }
            Err(e) => {
                // Its groups stay unavailable (NotCoordinator) until the next image change.
                self.groups.leading.borrow_mut().remove(&p);
                self.unload_groups(p, n);
                eprintln!(
                    "quiver: loading the groups of {} failed: {e}",
                    partition.name()
                );
            }
        }
    }

    /// Drops the groups of offsets partition `p` (of `n`) from memory.
    fn unload_groups(&self, p: i32, n: i32) {
        let dropped = self
            .groups
            .coordinator
            .borrow_mut()
            .unload(|g| offsets_partition_for(g, n) == p);
        self.groups
            .applied_at
            .borrow_mut()
            .retain(|(g, _, _), _| offsets_partition_for(g, n) != p);
        self.groups_wake.notify_all();
        if dropped > 0 {
            eprintln!(
                "quiver: no longer coordinating {OFFSETS_TOPIC}-{p}: {dropped} groups unloaded"
            );
        }
    }

    /// ListGroups on every other live broker, with the request marked as passed on: the
    /// groups found, and the brokers that did not answer fully.
    pub(crate) async fn list_groups_on_peers(
        &self,
        client_id: &str,
        request: &ListGroupsRequest,
    ) -> (Vec<ListedGroup>, Vec<String>) {
        let Some(snapshot) = self.snapshot() else {
            return (
                Vec::new(),
                vec!["the cluster metadata is not known yet".into()],
            );
        };
        let peers = self.peers.borrow().clone();
        let Some(peers) = peers else {
            return (
                Vec::new(),
                vec!["no connections to other brokers yet".into()],
            );
        };
        let id = format!("{FORWARDED_CLIENT_PREFIX}{client_id}");
        let mut groups = Vec::new();
        let mut failed = Vec::new();
        for broker in snapshot.image.live_brokers() {
            if broker == self.config.node_id {
                continue;
            }
            let Some(addr) = snapshot.image.broker(broker).and_then(|b| b.shard_addr(0)) else {
                failed.push(format!("broker {broker}: no usable listener"));
                continue;
            };
            let answer = peers
                .request_as(&addr, Some(&id), request.clone().into(), LIST_TIMEOUT)
                .await;
            match answer {
                Ok(Response::ListGroups(r)) if r.error_code.is_ok() => groups.extend(r.groups),
                Ok(Response::ListGroups(r)) => {
                    groups.extend(r.groups);
                    failed.push(format!("broker {broker}: {:?}", r.error_code));
                }
                Ok(_) => failed.push(format!("broker {broker}: a mismatched reply")),
                Err(e) => failed.push(format!("broker {broker}: {e}")),
            }
        }
        (groups, failed)
    }
}
