//! Consumer groups and committed offsets on the broker: the IO shell around the sans-IO
//! [`GroupCoordinator`].
//!
//! Placement: group `g` is coordinated by the shard that owns partition
//! [`offsets_partition_for`]`(g, 50)` of the internal, compacted topic `__consumer_offsets`
//! (created at start-up). Each shard runs one coordinator for the groups of its offsets
//! partitions; a group request that reaches another shard is forwarded there by message, and
//! FindCoordinator names the owning shard's port so clients go straight to it.
//!
//! Commits: an OffsetCommit is checked by the coordinator (member and epoch), appended to the
//! group's offsets partition as one batch (key: group, topic, partition; value: offset, leader
//! epoch, metadata, time), made durable (the topic flushes `always`, with group commit), then
//! applied in memory and answered. Appends for one shard go through one lock so the log order
//! is the order in which commits are applied; an apply never replaces a commit that sits later
//! in the log. Group deletion writes tombstones for every offset the group holds.
//!
//! Start-up: before the shard serves requests, every local offsets partition is read from its
//! start and replayed into the coordinator, so committed offsets survive restarts. Membership
//! is soft state: after a restart members get UnknownMemberId on their next heartbeat and
//! rejoin, as after a coordinator move in Kafka.
//!
//! Lives on: its shard.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use quiver_transport::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_transport::protocol::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup,
    DescribedMember, ErrorCode, FindCoordinatorRequest, FindCoordinatorResponse, GroupResult,
    GroupTopicPartitions, ListGroupsRequest, ListGroupsResponse, ListedGroup,
    OffsetCommitPartitionResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetCommitTopicResponse, OffsetFetchPartitionResponse, OffsetFetchRequest,
    OffsetFetchResponse, OffsetFetchTopicResponse, Request, Response, COORDINATOR_KEY_GROUP,
};

use super::errors::{partition_error, WireError};
use super::group_cluster::{GroupRoute, FORWARDED_CLIENT_PREFIX};
use super::{Call, Reply, ShardBroker};
use crate::group::records::{
    decode_offset_key, decode_offset_value, encode_offset_key, encode_offset_value, OffsetKey,
    RecordKey,
};
use crate::group::{
    Assignment, CommittedOffset, Expired, GroupCoordinator, GroupError, HeartbeatIn, OFFSETS_TOPIC,
    OFFSETS_TOPIC_PARTITIONS,
};
use crate::partition::Partition;
use crate::shard::shard_for;

pub use crate::group::records::offsets_partition_for;

/// Longest metadata string kept with a committed offset (Kafka's
/// `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// Longest group id.
pub const GROUP_ID_BYTES_MAX: usize = 255;
/// How long a commit waits to become durable before answering RequestTimedOut.
const COMMIT_DURABLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read per step while replaying an offsets partition.
const REPLAY_READ_BYTES: usize = 1 << 20;
/// Longest interval between checks for expired offsets.
const OFFSETS_EXPIRY_CHECK_MAX_MS: i64 = 60_000;
/// Longest the coordinator's timer sleeps between checks.
const TICK_INTERVAL_MAX: Duration = Duration::from_millis(500);

/// Config overrides of `__consumer_offsets`.
pub fn offsets_topic_configs() -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "104857600"),
        ("flush", "always"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A group error as a wire code and message.
fn group_error(e: &GroupError) -> WireError {
    let code = match e {
        GroupError::InvalidGroupId { .. } => ErrorCode::InvalidGroupId,
        GroupError::UnknownMemberId { .. } => ErrorCode::UnknownMemberId,
        GroupError::FencedMemberEpoch { .. } => ErrorCode::FencedMemberEpoch,
        GroupError::StaleMemberEpoch { .. } => ErrorCode::StaleMemberEpoch,
        GroupError::InvalidSessionTimeout { .. } => ErrorCode::InvalidSessionTimeout,
        GroupError::UnsupportedAssignor(_) => ErrorCode::UnsupportedAssignor,
        GroupError::InconsistentAssignor { .. } => ErrorCode::InconsistentAssignor,
        GroupError::GroupMaxSizeReached { .. } => ErrorCode::GroupMaxSizeReached,
        GroupError::NonEmptyGroup { .. } => ErrorCode::NonEmptyGroup,
        GroupError::GroupIdNotFound(_) => ErrorCode::GroupIdNotFound,
    };
    (code, e.to_string())
}

fn check_group_id(group: &str) -> Result<(), WireError> {
    if group.is_empty() || group.len() > GROUP_ID_BYTES_MAX {
        return Err((
            ErrorCode::InvalidGroupId,
            format!("group id must be 1..={GROUP_ID_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

fn to_wire(assignment: &Assignment) -> Vec<GroupTopicPartitions> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic, ps)| GroupTopicPartitions {
            topic: topic.clone(),
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn from_wire(owned: &[GroupTopicPartitions]) -> Assignment {
    let mut out = Assignment::new();
    for tp in owned {
        out.entry(tp.topic.clone())
            .or_default()
            .extend(tp.partitions.iter().copied());
    }
    out
}

fn heartbeat_error(
    request: &ConsumerGroupHeartbeatRequest,
    (code, message): WireError,
) -> Response {
    ConsumerGroupHeartbeatResponse {
        throttle_time_ms: 0,
        error_code: code,
        error_message: Some(message),
        member_id: request.member_id.clone(),
        member_epoch: request.member_epoch,
        heartbeat_interval_ms: 0,
        assignment: Vec::new(),
    }
    .into()
}

fn commit_all_failed(request: &OffsetCommitRequest, (code, message): &WireError) -> Response {
    OffsetCommitResponse {
        throttle_time_ms: 0,
        topics: request
            .topics
            .iter()
            .map(|t| OffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitPartitionResponse {
                        partition: p.partition,
                        error_code: *code,
                        error_message: Some(message.clone()),
                    })
                    .collect(),
            })
            .collect(),
    }
    .into()
}

fn fetch_failed((code, message): WireError) -> Response {
    OffsetFetchResponse {
        throttle_time_ms: 0,
        error_code: code,
        error_message: Some(message),
        topics: Vec::new(),
    }
    .into()
}

fn described_error(group: &str, (code, message): WireError) -> DescribedGroup {
    DescribedGroup {
        group_id: group.to_string(),
        error_code: code,
        error_message: Some(message),
        state: String::new(),
        group_epoch: -1,
        assignment_epoch: -1,
        assignor: String::new(),
        members: Vec::new(),
    }
}

/// One shard's coordinator state. See the module doc.
pub(crate) struct GroupShell {
    pub coordinator: std::cell::RefCell<GroupCoordinator>,
    /// Serialises appends to this shard's offsets partitions with the apply order.
    pub append_lock: glommio::sync::Semaphore,
    /// Log offset of the commit applied last, per (group, topic, partition).
    pub applied_at: std::cell::RefCell<HashMap<(String, String, i32), i64>>,
    /// In a cluster: the offsets partitions this shard leads, loaded or loading, by index.
    pub leading: std::cell::RefCell<HashMap<i32, super::group_cluster::Lead>>,
    /// In a cluster: this shard is asking the controller to create `__consumer_offsets`.
    pub creating_offsets: std::cell::Cell<bool>,
}

impl GroupShell {
    pub fn new(coordinator: GroupCoordinator) -> Self {
        GroupShell {
            coordinator: std::cell::RefCell::new(coordinator),
            append_lock: glommio::sync::Semaphore::new(1),
            applied_at: std::cell::RefCell::new(HashMap::new()),
            leading: std::cell::RefCell::new(HashMap::new()),
            creating_offsets: std::cell::Cell::new(false),
        }
    }

    /// Applies one offsets record found at `log_offset`, unless a later one was applied.
    fn apply(&self, log_offset: i64, key: &OffsetKey, value: Option<CommittedOffset>) {
        let slot = (key.group.clone(), key.topic.clone(), key.partition);
        let mut applied = self.applied_at.borrow_mut();
        if applied.get(&slot).is_some_and(|&at| at > log_offset) {
            return;
        }
        if value.is_none() {
            applied.remove(&slot);
        } else {
            applied.insert(slot, log_offset);
        }
        self.coordinator
            .borrow_mut()
            .apply_offset(&key.group, &key.topic, key.partition, value);
    }
}

impl ShardBroker {
    /// The offsets partition and shard coordinating `group`.
    pub(crate) fn coordinator_of(&self, group: &str) -> (i32, usize) {
        let partition = offsets_partition_for(group, self.offsets_partitions());
        (
            partition,
            shard_for(OFFSETS_TOPIC, partition, self.config.shard_count),
        )
    }

    /// FindCoordinator: the shard owning the group's offsets partition.
    pub(crate) fn find_coordinator(
        &self,
        request: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let failed = |code, message: String| FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: code,
            error_message: Some(message),
            node_id: -1,
            host: String::new(),
            port: -1,
            shard: -1,
        };
        if request.key_type != COORDINATOR_KEY_GROUP {
            return failed(
                ErrorCode::InvalidRequest,
                format!(
                    "coordinator key type {} is not supported (0 = group)",
                    request.key_type
                ),
            );
        }
        if let Err((code, message)) = check_group_id(&request.key) {
            return failed(code, message);
        }
        if self.clustered() {
            return match self.group_route(&request.key) {
                GroupRoute::Unavailable((code, message)) => failed(code, message),
                GroupRoute::Create => failed(
                    ErrorCode::CoordinatorNotAvailable,
                    format!("'{OFFSETS_TOPIC}' does not exist yet; retry after a group request created it"),
                ),
                GroupRoute::Here { shard } => FindCoordinatorResponse {
                    throttle_time_ms: 0,
                    error_code: ErrorCode::None,
                    error_message: None,
                    node_id: self.config.node_id,
                    host: self.config.advertised_host.clone(),
                    port: i32::from(self.config.base_port) + shard as i32,
                    shard: shard as i32,
                },
                GroupRoute::Remote { leader, addr, shard } => {
                    match addr.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<i32>().ok()?))) {
                        Some((host, port)) => FindCoordinatorResponse {
                            throttle_time_ms: 0,
                            error_code: ErrorCode::None,
                            error_message: None,
                            node_id: leader,
                            host: host.to_string(),
                            port,
                            shard: shard as i32,
                        },
                        None => failed(
                            ErrorCode::CoordinatorNotAvailable,
                            format!("broker {leader} has no usable listener"),
                        ),
                    }
                }
            };
        }
        let (_, shard) = self.coordinator_of(&request.key);
        let port = i32::from(self.config.base_port) + shard as i32;
        FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None,
            error_message: None,
            node_id: self.config.node_id,
            host: self.config.advertised_host.clone(),
            port,
            shard: shard as i32,
        }
    }

    /// A request about one group: answered here if this shard coordinates it, else forwarded.
    pub(crate) async fn group_request(
        &self,
        group: &str,
        client_id: &str,
        request: Request,
    ) -> Response {
        if let Err(e) = check_group_id(group) {
            return self.group_failed(&request, e);
        }
        let (client_id, forwarded) = match client_id.strip_prefix(FORWARDED_CLIENT_PREFIX) {
            Some(original) => (original, true),
            None => (client_id, false),
        };
        if self.clustered() {
            match self.group_route(group) {
                GroupRoute::Here { .. } => {}
                GroupRoute::Create => {
                    self.ensure_offsets_topic().await;
                    return self.group_failed(
                        &request,
                        (
                            ErrorCode::CoordinatorNotAvailable,
                            format!("'{OFFSETS_TOPIC}' is being created; retry"),
                        ),
                    );
                }
                GroupRoute::Unavailable(e) => return self.group_failed(&request, e),
                GroupRoute::Remote { leader, .. } if forwarded => {
                    return self.group_failed(
                        &request,
                        (
                            ErrorCode::NotCoordinator,
                            format!(
                                "broker {leader} coordinates group '{group}', not broker {}",
                                self.config.node_id
                            ),
                        ),
                    )
                }
                GroupRoute::Remote { addr, .. } => {
                    return self.forward_group(&addr, client_id, request).await
                }
            }
        }
        let (_, owner) = self.coordinator_of(group);
        if owner == self.shard {
            return self.group_here(client_id, request).await;
        }
        let call = Call::Group {
            client_id: client_id.to_string(),
            request: request.clone(),
        };
        match self.call(owner, call).await {
            Ok(Reply::Admin(response)) => response,
            Ok(Reply::Failed(reason)) => {
                self.group_failed(&request, (ErrorCode::CoordinatorNotAvailable, reason))
            }
            Ok(_) => self.group_failed(
                &request,
                (
                    ErrorCode::Unknown,
                    format!("shard {owner} sent a mismatched reply"),
                ),
            ),
            Err(e) => self.group_failed(
                &request,
                (ErrorCode::CoordinatorNotAvailable, e.to_string()),
            ),
        }
    }

    /// The answer to `request` when it cannot be served at all.
    pub(crate) fn group_failed(&self, request: &Request, error: WireError) -> Response {
        match request {
            Request::ConsumerGroupHeartbeat(r) => heartbeat_error(r, error),
            Request::OffsetCommit(r) => commit_all_failed(r, &error),
            Request::OffsetFetch(_) => fetch_failed(error),
            Request::DescribeGroups(r) => DescribeGroupsResponse {
                throttle_time_ms: 0,
                groups: r
                    .groups
                    .iter()
                    .map(|g| described_error(g, error.clone()))
                    .collect(),
            }
            .into(),
            Request::DeleteGroups(r) => DeleteGroupsResponse {
                throttle_time_ms: 0,
                results: r
                    .groups
                    .iter()
                    .map(|g| GroupResult {
                        group_id: g.clone(),
                        error_code: error.0,
                        error_message: Some(error.1.clone()),
                    })
                    .collect(),
            }
            .into(),
            _ => Response::Rejected(error.0),
        }
    }

    /// The open offsets partition of `group` on this shard, or why not.
    fn offsets_partition(&self, group: &str) -> Result<Rc<Partition>, WireError> {
        let (partition, _) = self.coordinator_of(group);
        if self.clustered() {
            self.check_coordinating(partition)?;
        }
        self.local_partition(OFFSETS_TOPIC, partition)
            .map_err(|(_, message)| (ErrorCode::CoordinatorNotAvailable, message))
    }

    /// Runs a group request on its coordinating shard (this one).
    pub(crate) async fn group_here(&self, client_id: &str, request: Request) -> Response {
        if self.stopping.is_set() {
            return self.group_failed(
                &request,
                (
                    ErrorCode::CoordinatorNotAvailable,
                    format!("shard {} is stopping", self.shard),
                ),
            );
        }
        match request {
            Request::ConsumerGroupHeartbeat(r) => self.heartbeat(client_id, r),
            Request::OffsetCommit(r) => self.offset_commit(r).await,
            Request::OffsetFetch(r) => self.offset_fetch(r),
            Request::DescribeGroups(r) => DescribeGroupsResponse {
                throttle_time_ms: 0,
                groups: r.groups.iter().map(|g| self.describe_group(g)).collect(),
            }
            .into(),
            Request::DeleteGroups(r) => {
                let mut results = Vec::with_capacity(r.groups.len());
                for g in &r.groups {
                    let outcome = self.delete_group(g).await;
                    let (error_code, error_message) = match outcome {
                        Ok(()) => (ErrorCode::None, None),
                        Err((code, message)) => (code, Some(message)),
                    };
                    results.push(GroupResult {
                        group_id: g.clone(),
                        error_code,
                        error_message,
                    });
                }
                DeleteGroupsResponse {
                    throttle_time_ms: 0,
                    results,
                }
                .into()
            }
            // Only group requests are routed here.
            _ => Response::Rejected(ErrorCode::InvalidRequest),
        }
    }

    fn partitions_of(&self) -> impl Fn(&str) -> Option<i32> {
        let topics = self.topics();
        move |topic: &str| topics.get(topic).map(|t| t.meta.partitions)
    }

    fn heartbeat(&self, client_id: &str, request: ConsumerGroupHeartbeatRequest) -> Response {
        if let Err(e) = self.offsets_partition(&request.group_id) {
            return heartbeat_error(&request, e);
        }
        let input = HeartbeatIn {
            group_id: request.group_id.clone(),
            member_id: request.member_id.clone(),
            member_epoch: request.member_epoch,
            client_id: client_id.to_string(),
            client_host: String::new(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            subscribed_topics: request.subscribed_topics.clone(),
            assignor: request.assignor.clone(),
            owned: from_wire(&request.owned),
        };
        let partitions_of = self.partitions_of();
        let outcome =
            self.groups
                .coordinator
                .borrow_mut()
                .heartbeat(Self::now_ms(), input, &partitions_of);
        self.groups_wake.notify_all();
        match outcome {
            Ok(out) => ConsumerGroupHeartbeatResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                member_id: out.member_id,
                member_epoch: out.member_epoch,
                heartbeat_interval_ms: out.heartbeat_interval_ms,
                assignment: to_wire(&out.assignment),
            }
            .into(),
            Err(e) => heartbeat_error(&request, group_error(&e)),
        }
    }

    async fn offset_commit(&self, request: OffsetCommitRequest) -> Response {
        let group = request.group_id.clone();
        let partition = match self.offsets_partition(&group) {
            Ok(p) => p,
            Err(e) => return commit_all_failed(&request, &e),
        };
        if let Err(e) = self.groups.coordinator.borrow().check_commit(
            &group,
            &request.member_id,
            request.member_epoch,
        ) {
            return commit_all_failed(&request, &group_error(&e));
        }
        let topics = self.topics();
        let now = Self::now_ms();
        // Per request partition: Ok((key, value)) to write, or the error to answer.
        let mut plan: Vec<Vec<Result<(OffsetKey, CommittedOffset), WireError>>> = Vec::new();
        for t in &request.topics {
            let mut row = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let metadata = p.metadata.clone().unwrap_or_default();
                let entry = match topics.get(&t.name) {
                    None => Err((
                        ErrorCode::UnknownTopicOrPartition,
                        format!("unknown topic '{}'", t.name),
                    )),
                    Some(s) if p.partition < 0 || p.partition >= s.meta.partitions => Err((
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic '{}' has no partition {}", t.name, p.partition),
                    )),
                    Some(_) if metadata.len() > OFFSET_METADATA_BYTES_MAX => Err((
                        ErrorCode::OffsetMetadataTooLarge,
                        format!(
                            "offset metadata is {} bytes, more than {OFFSET_METADATA_BYTES_MAX}",
                            metadata.len()
                        ),
                    )),
                    Some(_) if p.committed_offset < 0 => Err((
                        ErrorCode::InvalidRequest,
                        format!("committed offset {} is negative", p.committed_offset),
                    )),
                    Some(_) => Ok((
                        OffsetKey {
                            group: group.clone(),
                            topic: t.name.clone(),
                            partition: p.partition,
                        },
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata,
                            commit_timestamp_ms: now,
                        },
                    )),
                };
                row.push(entry);
            }
            plan.push(row);
        }
        let records: Vec<(OffsetKey, Option<CommittedOffset>)> = plan
            .iter()
            .flatten()
            .filter_map(|e| e.as_ref().ok())
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let write = if records.is_empty() {
            Ok(())
        } else {
            self.write_offsets(&partition, records).await
        };
        let topics_out = request
            .topics
            .iter()
            .zip(plan)
            .map(|(t, row)| OffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .zip(row)
                    .map(|(p, entry)| {
                        let outcome = match (entry, &write) {
                            (Err(e), _) => Err(e),
                            (Ok(_), Err(e)) => Err(e.clone()),
                            (Ok(_), Ok(())) => Ok(()),
                        };
                        match outcome {
                            Ok(()) => OffsetCommitPartitionResponse {
                                partition: p.partition,
                                error_code: ErrorCode::None,
                                error_message: None,
                            },
                            Err((code, message)) => OffsetCommitPartitionResponse {
                                partition: p.partition,
                                error_code: code,
                                error_message: Some(message),
                            },
                        }
                    })
                    .collect(),
            })
            .collect();
        OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: topics_out,
        }
        .into()
    }

    /// Appends offset records (None = tombstone) as one batch, waits until durable, applies
    /// them.
    async fn write_offsets(
        &self,
        partition: &Rc<Partition>,
        records: Vec<(OffsetKey, Option<CommittedOffset>)>,
    ) -> Result<(), WireError> {
        let now = Self::now_ms();
        let mut builder = BatchBuilder::new(Compression::None);
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = records
            .iter()
            .map(|(k, v)| (encode_offset_key(k), v.as_ref().map(encode_offset_value)))
            .collect();
        for (key, value) in &encoded {
            builder.push(now, Some(key), value.as_deref(), &[]);
        }
        let batch = builder
            .build()
            .map_err(|e| (ErrorCode::Unknown, format!("encoding offsets: {e}")))?
            .freeze();
        let appended = {
            let _serial = self.groups.append_lock.acquire_permit(1).await;
            if self.clustered() {
                self.check_offsets_leader(partition)?;
            }
            partition
                .append(vec![batch], now)
                .await
                .map_err(|e| partition_error(&e))?
        };
        self.after_append(partition);
        if self.clustered() {
            self.leader_appended(partition, partition.log_end_offset());
        }
        super::data::wait_acks(partition, appended.next_offset, COMMIT_DURABLE_TIMEOUT).await?;
        if self.clustered() {
            self.wait_offsets_replicated(partition, appended.next_offset, COMMIT_DURABLE_TIMEOUT)
                .await?;
        }
        for (i, (key, value)) in records.into_iter().enumerate() {
            self.groups
                .apply(appended.base_offset + i as i64, &key, value);
        }
        Ok(())
    }

    fn offset_fetch(&self, request: OffsetFetchRequest) -> Response {
        if let Err(e) = self.offsets_partition(&request.group_id) {
            return fetch_failed(e);
        }
        let coordinator = self.groups.coordinator.borrow();
        let group = &request.group_id;
        let topics = match request.topics {
            Some(topics) => topics
                .into_iter()
                .map(|t| OffsetFetchTopicResponse {
                    partitions: t
                        .partitions
                        .iter()
                        .map(|&p| {
                            let c = coordinator.committed(group, &t.name, p);
                            OffsetFetchPartitionResponse {
                                partition: p,
                                committed_offset: c.map_or(-1, |c| c.offset),
                                committed_leader_epoch: c.map_or(-1, |c| c.leader_epoch),
                                metadata: c.map(|c| c.metadata.clone()),
                                error_code: ErrorCode::None,
                            }
                        })
                        .collect(),
                    name: t.name,
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<OffsetFetchPartitionResponse>> =
                    BTreeMap::new();
                for (topic, p, c) in coordinator.offsets(group) {
                    by_topic
                        .entry(topic)
                        .or_default()
                        .push(OffsetFetchPartitionResponse {
                            partition: p,
                            committed_offset: c.offset,
                            committed_leader_epoch: c.leader_epoch,
                            metadata: Some(c.metadata),
                            error_code: ErrorCode::None,
                        });
                }
                by_topic
                    .into_iter()
                    .map(|(name, partitions)| OffsetFetchTopicResponse { name, partitions })
                    .collect()
            }
        };
        OffsetFetchResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None,
            error_message: None,
            topics,
        }
        .into()
    }

    fn describe_group(&self, group: &str) -> DescribedGroup {
        if let Err(e) = check_group_id(group).and_then(|()| self.offsets_partition(group).map(drop))
        {
            return described_error(group, e);
        }
        let Some(d) = self.groups.coordinator.borrow().describe(group) else {
            return described_error(
                group,
                (
                    ErrorCode::GroupIdNotFound,
                    format!("group '{group}' has no members and no committed offsets"),
                ),
            );
        };
        DescribedGroup {
            group_id: d.group_id,
            error_code: ErrorCode::None,
            error_message: None,
            state: d.state.name().to_string(),
            group_epoch: d.group_epoch,
            assignment_epoch: d.assignment_epoch,
            assignor: d.assignor.name().to_string(),
            members: d
                .members
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    member_epoch: m.member_epoch,
                    subscribed_topics: m.subscribed_topics,
                    assignment: to_wire(&m.assignment),
                    target_assignment: to_wire(&m.target),
                })
                .collect(),
        }
    }

    async fn delete_group(&self, group: &str) -> Result<(), WireError> {
        check_group_id(group)?;
        let partition = self.offsets_partition(group)?;
        self.groups
            .coordinator
            .borrow()
            .check_delete(group)
            .map_err(|e| group_error(&e))?;
        let tombstones: Vec<(OffsetKey, Option<CommittedOffset>)> = self
            .groups
            .coordinator
            .borrow()
            .offsets(group)
            .into_iter()
            .map(|(topic, p, _)| {
                (
                    OffsetKey {
                        group: group.to_string(),
                        topic,
                        partition: p,
                    },
                    None,
                )
            })
            .collect();
        if !tombstones.is_empty() {
            self.write_offsets(&partition, tombstones).await?;
        }
        self.groups.coordinator.borrow_mut().remove_group(group);
        Ok(())
    }

    /// DescribeGroups: each group from its coordinator, in request order.
    pub(crate) async fn describe_groups(
        &self,
        client_id: &str,
        request: DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let one = DescribeGroupsRequest {
                groups: vec![group.clone()],
            };
            let described = match self.group_request(&group, client_id, one.into()).await {
                Response::DescribeGroups(mut r) if r.groups.len() == 1 => r.groups.remove(0),
                Response::Rejected(code) => {
                    described_error(&group, (code, "the coordinator refused".into()))
                }
                _ => described_error(
                    &group,
                    (
                        ErrorCode::Unknown,
                        "the coordinator sent a mismatched reply".into(),
                    ),
                ),
            };
            groups.push(described);
        }
        DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups,
        }
    }

    /// DeleteGroups: each group at its coordinator, in request order.
    pub(crate) async fn delete_groups(
        &self,
        client_id: &str,
        request: DeleteGroupsRequest,
    ) -> DeleteGroupsResponse {
        let mut results = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let one = DeleteGroupsRequest {
                groups: vec![group.clone()],
            };
            let result = match self.group_request(&group, client_id, one.into()).await {
                Response::DeleteGroups(mut r) if r.results.len() == 1 => r.results.remove(0),
                other => GroupResult {
                    group_id: group.clone(),
                    error_code: match other {
                        Response::Rejected(code) => code,
                        _ => ErrorCode::Unknown,
                    },
                    error_message: Some("the coordinator could not delete the group".into()),
                },
            };
            results.push(result);
        }
        DeleteGroupsResponse {
            throttle_time_ms: 0,
            results,
        }
    }

    /// ListGroups on this shard's coordinator.
    pub(crate) fn list_groups_local(&self) -> Vec<ListedGroup> {
        self.groups
            .coordinator
            .borrow()
            .list()
            .into_iter()
            .map(|g| ListedGroup {
                group_id: g.group_id,
                state: g.state.name().to_string(),
                member_count: i32::try_from(g.members).unwrap_or(i32::MAX),
            })
            .collect()
    }

    /// ListGroups over every shard (and, in a cluster, unless passed on by another broker,
    /// over every live broker).
    pub(crate) async fn list_groups(
        &self,
        client_id: &str,
        request: ListGroupsRequest,
    ) -> ListGroupsResponse {
        let mut groups = self.list_groups_local();
        let mut error_code = ErrorCode::None;
        if self.clustered() && !client_id.starts_with(FORWARDED_CLIENT_PREFIX) {
            let (more, failed) = self.list_groups_on_peers(client_id, &request).await;
            groups.extend(more);
            if !failed.is_empty() {
                eprintln!("quiver: ListGroups: {}", failed.join("; "));
                error_code = ErrorCode::CoordinatorNotAvailable;
            }
        }
        for shard in 0..self.config.shard_count {
            if shard == self.shard {
                continue;
            }
            match self.call(shard, Call::ListGroups).await {
                Ok(Reply::Groups(more)) => groups.extend(more),
                _ => error_code = ErrorCode::CoordinatorNotAvailable,
            }
        }
        if !request.states_filter.is_empty() {
            groups.retain(|g| {
                request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&g.state))
            });
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        ListGroupsResponse {
            throttle_time_ms: 0,
            error_code,
            groups,
        }
    }

    /// Replays this shard's offsets partitions into the coordinator (start-up).
    pub(crate) async fn load_groups(&self) -> Result<usize, String> {
        let mut loaded = 0;
        for p in 0..OFFSETS_TOPIC_PARTITIONS {
            if shard_for(OFFSETS_TOPIC, p, self.config.shard_count) != self.shard {
                continue;
            }
            let Ok(partition) = self.local_partition(OFFSETS_TOPIC, p) else {
                continue;
            };
            loaded += self.replay_offsets(&partition, &|| true).await?;
        }
        Ok(loaded)
    }

    /// Replays one offsets partition, from its start to its end now, into the coordinator;
    /// stops early (with what it applied so far) once `keep_going` says so.
    pub(crate) async fn replay_offsets(
        &self,
        partition: &Partition,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<usize, String> {
        let mut loaded = 0;
        let mut offset = partition.log_start_offset();
        let end = partition.log_end_offset();
        while offset < end && keep_going() {
            let read = partition
                .read(offset, REPLAY_READ_BYTES)
                .await
                .map_err(|e| format!("reading {}: {e}", partition.name()))?;
            if read.batches.is_empty() {
                break;
            }
            for bytes in &read.batches {
                let view = RecordBatch::parse(bytes)
                    .map_err(|e| format!("{} at {offset}: {e}", partition.name()))?;
                let next = view.last_offset() + 1;
                let records = view
                    .records()
                    .map_err(|e| format!("{} at {offset}: {e}", partition.name()))?;
                for record in records {
                    loaded += self.replay_record(&record.key, &record.value, record.offset);
                }
                offset = next;
            }
        }
        Ok(loaded)
    }

    fn replay_record(&self, key: &Option<Bytes>, value: &Option<Bytes>, at: i64) -> usize {
        let Some(key) = key else { return 0 };
        let Ok(RecordKey::Offset(key)) = decode_offset_key(key) else {
            return 0;
        };
        let value = match value {
            None => None,
            Some(v) => match decode_offset_value(v) {
                Ok(v) => Some(v),
                Err(_) => return 0,
            },
        };
        self.groups.apply(at, &key, value);
        1
    }

    /// Expires members whose session or rebalance timed out, and notices partition-count
    /// changes, until the shard stops.
    pub(crate) async fn run_group_timer(&self) {
        let retention = self
            .groups
            .coordinator
            .borrow()
            .config()
            .offsets_retention_ms;
        let expiry_every_ms = (retention / 4).clamp(100, OFFSETS_EXPIRY_CHECK_MAX_MS);
        let mut next_expiry_ms = Self::now_ms() + expiry_every_ms;
        loop {
            let since = self.groups_wake.generation();
            if self.stopping.is_set() {
                return;
            }
            let now = Self::now_ms();
            let partitions_of = self.partitions_of();
            let expired = self
                .groups
                .coordinator
                .borrow_mut()
                .tick(now, &partitions_of);
            for e in expired {
                let (group, member, why) = match e {
                    Expired::Session { group, member } => (group, member, "its session timed out"),
                    Expired::Rebalance { group, member } => (
                        group,
                        member,
                        "it did not release revoked partitions in time",
                    ),
                };
                eprintln!("quiver: group '{group}': member {member} removed: {why}");
            }
            if now >= next_expiry_ms {
                next_expiry_ms = now + expiry_every_ms;
                self.expire_offsets(now).await;
            }
            let next = self.groups.coordinator.borrow().next_deadline_ms();
            let next = Some(next.map_or(next_expiry_ms, |n| n.min(next_expiry_ms)));
            let wait = next
                .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
                .unwrap_or(TICK_INTERVAL_MAX)
                .clamp(Duration::from_millis(1), TICK_INTERVAL_MAX);
            futures_lite::future::or(
                glommio::timer::sleep(wait),
                futures_lite::future::or(self.groups_wake.changed(since), self.stopping.wait()),
            )
            .await;
        }
    }

    /// Deletes (with tombstones) the committed offsets that outlived `offsets_retention_ms` in
    /// groups without members.
    async fn expire_offsets(&self, now_ms: i64) {
        let expired = self.groups.coordinator.borrow().expired_offsets(now_ms);
        let mut by_group: BTreeMap<String, Vec<(OffsetKey, Option<CommittedOffset>)>> =
            BTreeMap::new();
        for (group, topic, partition) in expired {
            by_group.entry(group.clone()).or_default().push((
                OffsetKey {
                    group,
                    topic,
                    partition,
                },
                None,
            ));
        }
        for (group, tombstones) in by_group {
            let Ok(partition) = self.offsets_partition(&group) else {
                continue;
            };
            let count = tombstones.len();
            match self.write_offsets(&partition, tombstones).await {
                Ok(()) => eprintln!(
                    "quiver: group '{group}': {count} committed offsets expired (group empty past offsets retention)"
                ),
                Err((_, e)) => eprintln!("quiver: group '{group}': expiring offsets failed: {e}"),
            }
        }
    }

    /// Group figures for the metrics endpoint.
    pub(crate) fn group_metrics(&self) -> Vec<super::metrics::GroupMetrics> {
        let coordinator = self.groups.coordinator.borrow();
        coordinator
            .list()
            .into_iter()
            .map(|g| super::metrics::GroupMetrics {
                offsets: coordinator
                    .offsets(&g.group_id)
                    .into_iter()
                    .map(|(t, p, c)| (t, p, c.offset))
                    .collect(),
                state: g.state.name().to_string(),
                members: g.members,
                group: g.group_id,
            })
            .collect()
    }
}
