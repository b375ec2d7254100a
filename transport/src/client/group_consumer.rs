//! [`GroupConsumer`]: a [`Consumer`] whose partitions come from a consumer group.
//!
//! It joins the group with the topics it subscribes to and heartbeats from inside
//! [`GroupConsumer::poll`] (so a member that stops polling for longer than its session timeout
//! is removed and its partitions move, like Kafka's `max.poll.interval.ms`). Each heartbeat
//! answer carries the member's whole assignment:
//! - partitions taken away are committed first (with auto-commit on), then dropped from the
//!   consumer, and the next heartbeat, sent at once, tells the coordinator they are released;
//! - partitions added start at the group's committed offset, or per `auto_offset_reset` when
//!   the group has none.
//!
//! With auto-commit (the default) the positions of every owned partition are committed every
//! `auto_commit_interval` during `poll`, on revocation and on [`GroupConsumer::close`]; records
//! returned by a `poll` count as processed once the next `poll` (or `commit_sync`) runs, which
//! gives at-least-once delivery: after a clean rebalance nothing committed is read again; after a
//! crash what was read since the last commit is read again by the new owner.
//!
//! A revoked partition is released only once its commit went through: while the commit fails
//! with a retriable error or `StaleMemberEpoch` the partition is no longer fetched but is still
//! reported as owned, and the commit is retried after each heartbeat, for at most half the
//! rebalance timeout (then the partition is released uncommitted, so the group can move on).
//! Manual-commit users can commit their own offsets on revocation with a
//! [`RebalanceListener`] (see [`GroupConsumer::subscribe_with_listener`]).
//!
//! Errors: a member removed by the coordinator (`UnknownMemberId`, `FencedMemberEpoch`) loses
//! its partitions without committing them and rejoins; coordinator errors are retried on the
//! next heartbeat. A commit refused with `StaleMemberEpoch` (the epoch moved on, e.g. a
//! heartbeat answer was lost) heartbeats to learn the current epoch and is retried once, for the
//! partitions still owned; the error is returned if that fails too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::protocol::{
    ApiKey, ConsumerGroupHeartbeatRequest, ErrorCode, GroupTopicPartitions, OffsetCommitPartition,
    OffsetCommitRequest, OffsetCommitTopic, OffsetFetchRequest, OffsetFetchTopic, Response,
    MEMBER_EPOCH_JOIN, MEMBER_EPOCH_LEAVE,
};

use super::net::unexpected;
use super::{Client, ClientError, Consumer, ConsumerConfig, ConsumerRecord, TopicPartition};

/// Group settings of a [`GroupConsumer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group id.
    pub group_id: String,
    /// How long the coordinator waits for a heartbeat before removing the member (default
    /// 45 s, within the broker's allowed range).
    pub session_timeout: Duration,
    /// How long the member may take to give up revoked partitions (default 5 min).
    pub rebalance_timeout: Duration,
    /// Server-side assignor (`range`, `roundrobin`, `cooperative-sticky`); `None` for the
    /// broker's default.
    pub assignor: Option<String>,
    /// Commit positions automatically (default on).
    pub enable_auto_commit: bool,
    /// How often auto-commit runs (default 5 s).
    pub auto_commit_interval: Duration,
}

impl GroupConfig {
    /// Defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> GroupConfig {
        GroupConfig {
            group_id: group_id.into(),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            assignor: None,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
        }
    }
}

/// Callbacks on assignment changes, called from inside [`GroupConsumer::poll`] (and the other
/// calls that heartbeat) on the task using the consumer. Every method has a default that does
/// nothing.
///
/// ```
/// use std::collections::BTreeMap;
/// use quiver_transport::client::{RebalanceListener, TopicPartition};
///
/// /// Commits, on revocation, the offsets the application has finished with.
/// struct CommitProcessed {
///     processed: BTreeMap<TopicPartition, i64>,
/// }
///
/// impl RebalanceListener for CommitProcessed {
///     fn on_revoked(&mut self, partitions: &[TopicPartition]) -> BTreeMap<TopicPartition, i64> {
///         partitions
///             .iter()
///             .filter_map(|tp| self.processed.remove(tp).map(|next| (tp.clone(), next)))
///             .collect()
///     }
/// }
/// ```
pub trait RebalanceListener: Send {
    /// Partitions were added to the assignment; their positions are set (committed offset or
    /// `auto_offset_reset`), and the next `poll` may return their records.
    fn on_assigned(&mut self, _partitions: &[TopicPartition]) {}

    /// Which of the newly assigned `partitions` start paused (see [`GroupConsumer::pause`]),
    /// before any fetch: Kafka's "pause in `onPartitionsAssigned`", for a member that must
    /// not read yet (back-pressure, or waiting for the rest of the group). Asked just before
    /// [`RebalanceListener::on_assigned`]; none by default.
    fn start_paused(&mut self, _partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        Vec::new()
    }

    /// Partitions were taken away: they are no longer fetched. Returns offsets (the next offset
    /// to read) to commit for some of them before they are released; entries for other
    /// partitions are ignored. With auto-commit on, revoked partitions left out of the answer
    /// are committed at their positions.
    fn on_revoked(&mut self, _partitions: &[TopicPartition]) -> BTreeMap<TopicPartition, i64> {
        BTreeMap::new()
    }

    /// The membership was lost (`UnknownMemberId`, `FencedMemberEpoch`): these partitions may
    /// already be another member's and were dropped without committing; the member rejoins.
    fn on_lost(&mut self, _partitions: &[TopicPartition]) {}
}

/// What to do after a failed commit.
enum Failure {
    /// Try again later (retriable error, or a stale epoch a heartbeat will refresh).
    Retry,
    /// The member was removed or fenced: drop everything and rejoin.
    Lost { forget_id: bool },
    /// Give the error to the caller.
    Fatal,
}

fn classify(e: &ClientError) -> Failure {
    match e.error_code() {
        Some(ErrorCode::UnknownMemberId) => Failure::Lost { forget_id: true },
        Some(ErrorCode::FencedMemberEpoch) => Failure::Lost { forget_id: false },
        Some(ErrorCode::StaleMemberEpoch) => Failure::Retry,
        _ if e.is_retriable() => Failure::Retry,
        _ => Failure::Fatal,
    }
}

fn is_stale(e: &ClientError) -> bool {
    e.error_code() == Some(ErrorCode::StaleMemberEpoch)
}

pub(crate) fn commit_request(
    group_id: &str,
    member_id: &str,
    member_epoch: i32,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitPartition>> = BTreeMap::new();
    for (tp, offset) in offsets {
        topics
            .entry(&tp.topic)
            .or_default()
            .push(OffsetCommitPartition {
                partition: tp.partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                metadata: None,
            });
    }
    OffsetCommitRequest {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        member_epoch,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitTopic {
                name: name.to_string(),
                partitions,
            })
            .collect(),
    }
}

/// Sends one OffsetCommit; the first partition error is the result.
pub(crate) async fn send_commit(
    client: &Client,
    request: OffsetCommitRequest,
) -> Result<(), ClientError> {
    let response = match client.request_any(request.into()).await? {
        Response::OffsetCommit(r) => r,
        other => return Err(unexpected(ApiKey::OffsetCommit, &other)),
    };
    for t in response.topics {
        for p in t.partitions {
            if !p.error_code.is_ok() {
                return Err(ClientError::broker(
                    p.error_code,
                    p.error_message,
                    &t.name,
                    Some(p.partition),
                ));
            }
        }
    }
    Ok(())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn to_wire(partitions: &BTreeSet<TopicPartition>) -> Vec<GroupTopicPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| GroupTopicPartitions {
            topic: topic.to_string(),
            partitions,
        })
        .collect()
}

/// A consumer-group member. See the module doc.
pub struct GroupConsumer {
    consumer: Consumer,
    group: GroupConfig,
    topics: Vec<String>,
    member_id: String,
    epoch: i32,
    owned: BTreeSet<TopicPartition>,
    heartbeat_interval: Duration,
    next_heartbeat: Instant,
    next_auto_commit: Instant,
    /// Positions last committed, to skip commits that change nothing.
    committed: BTreeMap<TopicPartition, i64>,
    /// Revoked partitions whose commit has not gone through yet, with the offsets to commit:
    /// no longer fetched, still reported as owned.
    revoking: BTreeMap<TopicPartition, i64>,
    /// When the oldest of `revoking` was revoked.
    revoking_since: Option<Instant>,
    /// Wait before retrying a failed revocation commit.
    retry_backoff: Duration,
    /// In a mutex only so that the consumer stays `Sync`; reached through `&mut self`.
    listener: Option<Mutex<Box<dyn RebalanceListener>>>,
}

impl GroupConsumer {
    /// Joins `group` subscribed to `topics` and waits for the first heartbeat answer.
    pub async fn subscribe(
        client: Client,
        config: ConsumerConfig,
        group: GroupConfig,
        topics: Vec<String>,
    ) -> Result<GroupConsumer, ClientError> {
        GroupConsumer::join(client, config, group, topics, None).await
    }

    /// [`GroupConsumer::subscribe`] with a [`RebalanceListener`], told of every assignment
    /// change from the first one on.
    pub async fn subscribe_with_listener(
        client: Client,
        config: ConsumerConfig,
        group: GroupConfig,
        topics: Vec<String>,
        listener: impl RebalanceListener + 'static,
    ) -> Result<GroupConsumer, ClientError> {
        let listener: Box<dyn RebalanceListener> = Box::new(listener);
        GroupConsumer::join(client, config, group, topics, Some(Mutex::new(listener))).await
    }

    async fn join(
        client: Client,
        config: ConsumerConfig,
        group: GroupConfig,
        topics: Vec<String>,
        listener: Option<Mutex<Box<dyn RebalanceListener>>>,
    ) -> Result<GroupConsumer, ClientError> {
        if topics.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe to at least one topic".into(),
            ));
        }
        client
            .ensure_apis(&[
                ApiKey::ConsumerGroupHeartbeat,
                ApiKey::OffsetCommit,
                ApiKey::OffsetFetch,
            ])
            .await?;
        let now = Instant::now();
        let retry_backoff = config.retry_backoff;
        let mut me = GroupConsumer {
            consumer: Consumer::with_client(client, config).await?,
            next_auto_commit: now + group.auto_commit_interval,
            group,
            topics,
            member_id: String::new(),
            epoch: MEMBER_EPOCH_JOIN,
            owned: BTreeSet::new(),
            heartbeat_interval: Duration::from_millis(500),
            next_heartbeat: now,
            committed: BTreeMap::new(),
            revoking: BTreeMap::new(),
            revoking_since: None,
            retry_backoff,
            listener,
        };
        me.heartbeat().await?;
        Ok(me)
    }

    /// The member id the coordinator gave (empty before the first answer).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The member's current epoch.
    pub fn member_epoch(&self) -> i32 {
        self.epoch
    }

    fn listener(&mut self) -> Option<&mut dyn RebalanceListener> {
        let listener = self.listener.as_mut()?;
        Some(
            listener
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .as_mut(),
        )
    }

    /// The partitions this member consumes now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// Stops fetching `tps` (owned partitions) until [`GroupConsumer::resume`]; the member
    /// keeps heartbeating and committing. A pause ends with the partition's ownership: a
    /// partition revoked and later given back starts fetchable, as in Kafka.
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<(), ClientError> {
        if let Some(tp) = tps.iter().find(|tp| !self.owned.contains(*tp)) {
            return Err(ClientError::InvalidArgument(format!(
                "cannot pause {tp}: this member does not own it"
            )));
        }
        self.consumer.pause(tps)
    }

    /// Fetches `tps` again.
    pub fn resume(&mut self, tps: &[TopicPartition]) {
        self.consumer.resume(tps);
    }

    /// The paused partitions, in order.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.consumer.paused()
    }

    /// Records of an owned partition left to read, from the high watermark of the last fetch
    /// (see [`Consumer::lag`]); `None` for other partitions or before a fetch answered.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        if self.owned.contains(tp) {
            self.consumer.lag(tp)
        } else {
            None
        }
    }

    /// Heartbeats when due, auto-commits when due, and returns the records that arrive within
    /// `timeout` from the partitions owned now.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if Instant::now() >= self.next_heartbeat {
                self.heartbeat().await?;
            }
            if self.group.enable_auto_commit && Instant::now() >= self.next_auto_commit {
                self.next_auto_commit = Instant::now() + self.group.auto_commit_interval;
                let committed = self.commit_owned().await;
                self.tolerate(committed)?;
            }
            let now = Instant::now();
            let wait = deadline
                .min(self.next_heartbeat)
                .saturating_duration_since(now);
            let records = if self.owned.is_empty() {
                tokio::time::sleep(wait).await;
                Vec::new()
            } else {
                self.consumer.poll(wait).await?
            };
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
        }
    }

    /// Commits the positions of every owned partition and waits until they are durable.
    /// Errors: `StaleMemberEpoch` (after one retry with the refreshed epoch), `UnknownMemberId`
    /// / `FencedMemberEpoch` (the member was removed; the next `poll` rejoins), retriable
    /// coordinator errors, as [`ClientError::Broker`].
    pub async fn commit_sync(&mut self) -> Result<(), ClientError> {
        let offsets = self.owned_positions().await?;
        self.commit_refreshing_epoch(offsets).await
    }

    /// Commits these offsets (the next offset to read, per partition) for owned partitions;
    /// errors as [`GroupConsumer::commit_sync`].
    pub async fn commit_offsets(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        self.commit_refreshing_epoch(offsets.clone()).await
    }

    /// Starts committing the current positions of owned partitions (those that have one) in a
    /// spawned tokio task and returns its handle at once: await it for the outcome, or drop it
    /// to let the commit finish unobserved. The commit carries the member id and epoch of the
    /// call and is not retried; its failure changes nothing here (the next heartbeat handles a
    /// lost membership). Commits may land out of order: do not mix it with other commits of
    /// the same partitions without awaiting it; [`GroupConsumer::close`] commits synchronously.
    /// Panics outside a tokio runtime.
    pub fn commit_async(&self) -> tokio::task::JoinHandle<Result<(), ClientError>> {
        let offsets: BTreeMap<TopicPartition, i64> = self
            .owned
            .iter()
            .filter_map(|tp| self.consumer.known_position(tp).map(|p| (tp.clone(), p)))
            .collect();
        let request = commit_request(&self.group.group_id, &self.member_id, self.epoch, &offsets);
        let client = self.consumer.client().clone();
        tokio::spawn(async move {
            if offsets.is_empty() {
                return Ok(());
            }
            send_commit(&client, request).await
        })
    }

    /// Commits; on `StaleMemberEpoch` heartbeats (learning the current epoch and assignment)
    /// and retries once for the partitions still owned.
    async fn commit_refreshing_epoch(
        &mut self,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        match self.commit(offsets.clone()).await {
            Err(e) if is_stale(&e) => {
                self.heartbeat().await?;
                let still: BTreeMap<TopicPartition, i64> = offsets
                    .into_iter()
                    .filter(|(tp, _)| self.owned.contains(tp))
                    .collect();
                if still.is_empty() || self.epoch == MEMBER_EPOCH_JOIN {
                    return Err(e);
                }
                self.commit(still).await
            }
            other => other,
        }
    }

    /// Commits (positions of owned partitions with auto-commit on, and the offsets of revoked
    /// partitions not committed yet) and leaves the group, so its partitions move at once.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let committed = async {
            let mut offsets = if self.group.enable_auto_commit {
                self.owned_positions().await?
            } else {
                BTreeMap::new()
            };
            offsets.append(&mut self.revoking.clone());
            self.commit(offsets).await
        }
        .await;
        self.revoking.clear();
        self.epoch = MEMBER_EPOCH_LEAVE;
        self.owned.clear();
        let left = self.send_heartbeat().await.map(drop);
        committed.and(left)
    }

    /// Auto-commit failures that must not stop consumption: retriable ones (tried again at
    /// the next interval) and a lost membership (the partitions are dropped, the member
    /// rejoins).
    /// A stale epoch (a heartbeat answer was lost) is refreshed by a heartbeat at once; the
    /// commit is retried at the next interval.
    fn tolerate(&mut self, result: Result<(), ClientError>) -> Result<(), ClientError> {
        let Err(e) = result else {
            return Ok(());
        };
        match classify(&e) {
            Failure::Retry => {
                if is_stale(&e) {
                    self.next_heartbeat = Instant::now();
                }
                Ok(())
            }
            Failure::Lost { forget_id } => {
                self.lose_membership(forget_id);
                Ok(())
            }
            Failure::Fatal => Err(e),
        }
    }

    /// Drops every partition without committing (they may be another member's already) and
    /// rejoins on the next heartbeat.
    fn lose_membership(&mut self, forget_id: bool) {
        let lost: BTreeSet<TopicPartition> = self
            .owned
            .iter()
            .chain(self.revoking.keys())
            .cloned()
            .collect();
        if let Some(listener) = self.listener() {
            if !lost.is_empty() {
                listener.on_lost(&lost.into_iter().collect::<Vec<_>>());
            }
        }
        self.owned.clear();
        self.revoking.clear();
        self.revoking_since = None;
        self.committed.clear();
        self.consumer.assign(Vec::new());
        if forget_id {
            self.member_id.clear();
        }
        self.epoch = MEMBER_EPOCH_JOIN;
        self.next_heartbeat = Instant::now();
    }

    /// Leaves the group without committing anything (after a manual commit, say).
    pub async fn leave(mut self) -> Result<(), ClientError> {
        self.epoch = MEMBER_EPOCH_LEAVE;
        self.owned.clear();
        self.send_heartbeat().await.map(drop)
    }

    async fn commit_owned(&mut self) -> Result<(), ClientError> {
        let offsets = self.owned_positions().await?;
        self.commit(offsets).await
    }

    /// Positions of owned partitions that differ from what was last committed.
    async fn owned_positions(&mut self) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        let mut offsets = BTreeMap::new();
        for tp in self.owned.clone() {
            let position = self.consumer.position(&tp).await?;
            if self.committed.get(&tp) != Some(&position) {
                offsets.insert(tp, position);
            }
        }
        Ok(offsets)
    }

    async fn commit(&mut self, offsets: BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let request = commit_request(&self.group.group_id, &self.member_id, self.epoch, &offsets);
        send_commit(self.consumer.client(), request).await?;
        for (tp, offset) in offsets {
            if self.owned.contains(&tp) {
                self.committed.insert(tp, offset);
            }
        }
        Ok(())
    }

    async fn send_heartbeat(
        &self,
    ) -> Result<crate::protocol::ConsumerGroupHeartbeatResponse, ClientError> {
        let request = ConsumerGroupHeartbeatRequest {
            group_id: self.group.group_id.clone(),
            member_id: self.member_id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: millis(self.group.rebalance_timeout),
            session_timeout_ms: millis(self.group.session_timeout),
            subscribed_topics: self.topics.clone(),
            assignor: self.group.assignor.clone(),
            owned: to_wire(
                &self
                    .owned
                    .iter()
                    .chain(self.revoking.keys())
                    .cloned()
                    .collect(),
            ),
        };
        match self.consumer.client().request_any(request.into()).await? {
            Response::ConsumerGroupHeartbeat(r) => Ok(r),
            other => Err(unexpected(ApiKey::ConsumerGroupHeartbeat, &other)),
        }
    }

    /// One heartbeat, and the assignment change it brings.
    async fn heartbeat(&mut self) -> Result<(), ClientError> {
        let response = match self.send_heartbeat().await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                self.next_heartbeat = Instant::now() + self.heartbeat_interval;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match response.error_code {
            ErrorCode::None => {}
            ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch => {
                // Removed: the partitions may already be someone else's; do not commit them.
                self.lose_membership(response.error_code == ErrorCode::UnknownMemberId);
                return Ok(());
            }
            code if code.is_retriable() => {
                self.next_heartbeat = Instant::now() + self.heartbeat_interval;
                return Ok(());
            }
            code => {
                return Err(ClientError::Broker {
                    code,
                    message: response.error_message,
                    topic: None,
                    partition: None,
                })
            }
        }
        self.member_id = response.member_id;
        self.epoch = response.member_epoch;
        if response.heartbeat_interval_ms > 0 {
            self.heartbeat_interval =
                Duration::from_millis(u64::try_from(response.heartbeat_interval_ms).unwrap_or(0));
        }
        self.next_heartbeat = Instant::now() + self.heartbeat_interval;
        let assigned: BTreeSet<TopicPartition> = response
            .assignment
            .iter()
            .flat_map(|tp| {
                tp.partitions
                    .iter()
                    .map(|&p| TopicPartition::new(&tp.topic, p))
            })
            .collect();
        let revoked: Vec<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        if !revoked.is_empty() {
            // Stop fetching them now; commit (listener's offsets first, then positions with
            // auto-commit on) and release them below.
            let mut offsets = BTreeMap::new();
            if let Some(listener) = self.listener() {
                for (tp, offset) in listener.on_revoked(&revoked) {
                    if revoked.contains(&tp) {
                        offsets.insert(tp, offset);
                    }
                }
            }
            if self.group.enable_auto_commit {
                for tp in &revoked {
                    if offsets.contains_key(tp) {
                        continue;
                    }
                    let position = self.consumer.position(tp).await?;
                    if self.committed.get(tp) != Some(&position) {
                        offsets.insert(tp.clone(), position);
                    }
                }
            }
            for tp in &revoked {
                self.owned.remove(tp);
                self.committed.remove(tp);
            }
            if !offsets.is_empty() {
                self.revoking_since.get_or_insert_with(Instant::now);
                self.revoking.extend(offsets);
            }
            // Tell the coordinator at once that they are released.
            self.next_heartbeat = Instant::now();
        }
        // Given back while its revocation commit was pending: resume where it stopped.
        let mut resumed = Vec::new();
        let mut fresh = Vec::new();
        for tp in &added {
            match self.revoking.remove(tp) {
                Some(offset) => resumed.push((tp.clone(), offset)),
                None => fresh.push(tp.clone()),
            }
        }
        if self.revoking.is_empty() {
            self.revoking_since = None;
        }
        self.owned.extend(added.iter().cloned());
        if !revoked.is_empty() || !added.is_empty() {
            self.consumer.assign(self.owned.iter().cloned().collect());
        }
        for (tp, offset) in &resumed {
            self.consumer.seek(tp, *offset)?;
        }
        let mut given_back = Vec::new();
        if !fresh.is_empty() {
            if let Err(e) = self.start_positions(&fresh).await {
                // Without the committed offsets their positions are unknown: give them back
                // (not fetched, not reported as owned); the next heartbeat's answer assigns
                // them again and the lookup is retried (e.g. while a coordinator loads).
                for tp in &fresh {
                    self.owned.remove(tp);
                }
                self.consumer.assign(self.owned.iter().cloned().collect());
                if !e.is_retriable() {
                    return Err(e);
                }
                self.next_heartbeat = Instant::now() + self.retry_backoff;
                given_back = fresh;
            }
        }
        let added: Vec<TopicPartition> = added
            .into_iter()
            .filter(|tp| !given_back.contains(tp))
            .collect();
        if !added.is_empty() {
            if let Some(listener) = self.listener() {
                let hold: Vec<TopicPartition> = listener
                    .start_paused(&added)
                    .into_iter()
                    .filter(|tp| added.contains(tp))
                    .collect();
                listener.on_assigned(&added);
                self.consumer.pause(&hold)?;
            }
        }
        self.release_revoked().await
    }

    /// Commits the revoked partitions still held; once that went through (or after half the
    /// rebalance timeout of failures) they are released, on a heartbeat sent at once.
    async fn release_revoked(&mut self) -> Result<(), ClientError> {
        if self.revoking.is_empty() {
            return Ok(());
        }
        let offsets = self.revoking.clone();
        let Err(e) = self.commit(offsets).await else {
            self.revoking.clear();
            self.revoking_since = None;
            self.next_heartbeat = Instant::now();
            return Ok(());
        };
        match classify(&e) {
            Failure::Retry => {
                let give_up = self
                    .revoking_since
                    .is_some_and(|since| since.elapsed() >= self.group.rebalance_timeout / 2);
                if give_up {
                    // Uncommitted: the next owner reads them again (at-least-once).
                    self.revoking.clear();
                    self.revoking_since = None;
                    self.next_heartbeat = Instant::now();
                } else {
                    // A heartbeat refreshes a stale epoch; the commit follows its answer.
                    self.next_heartbeat =
                        Instant::now() + self.retry_backoff.min(self.heartbeat_interval);
                }
                Ok(())
            }
            Failure::Lost { forget_id } => {
                self.lose_membership(forget_id);
                Ok(())
            }
            Failure::Fatal => Err(e),
        }
    }

    /// Seeks newly assigned partitions to the group's committed offsets (the rest reset per
    /// `auto_offset_reset` on the next fetch).
    async fn start_positions(&mut self, added: &[TopicPartition]) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in added {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let request = OffsetFetchRequest {
            group_id: self.group.group_id.clone(),
            topics: Some(
                by_topic
                    .into_iter()
                    .map(|(name, partitions)| OffsetFetchTopic {
                        name: name.to_string(),
                        partitions,
                    })
                    .collect(),
            ),
        };
        let response = match self.consumer.client().request_any(request.into()).await? {
            Response::OffsetFetch(r) => r,
            other => return Err(unexpected(ApiKey::OffsetFetch, &other)),
        };
        if !response.error_code.is_ok() {
            return Err(ClientError::Broker {
                code: response.error_code,
                message: response.error_message,
                topic: None,
                partition: None,
            });
        }
        for t in response.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(&t.name, p.partition);
                if p.error_code.is_ok() && p.committed_offset >= 0 && self.owned.contains(&tp) {
                    self.consumer.seek(&tp, p.committed_offset)?;
                    self.committed.insert(tp, p.committed_offset);
                }
            }
        }
        Ok(())
    }
}
