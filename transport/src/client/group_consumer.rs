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
//! Errors: a member removed by the coordinator (`UnknownMemberId`, `FencedMemberEpoch`) loses
//! its partitions without committing them and rejoins; coordinator errors are retried on the
//! next heartbeat.

use std::collections::{BTreeMap, BTreeSet};
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
}

impl GroupConsumer {
    /// Joins `group` subscribed to `topics` and waits for the first heartbeat answer.
    pub async fn subscribe(
        client: Client,
        config: ConsumerConfig,
        group: GroupConfig,
        topics: Vec<String>,
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

    /// The partitions this member consumes now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
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
    pub async fn commit_sync(&mut self) -> Result<(), ClientError> {
        self.commit_owned().await
    }

    /// Commits these offsets (the next offset to read, per partition) for owned partitions.
    pub async fn commit_offsets(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        self.commit(offsets.clone()).await
    }

    /// Commits (with auto-commit on) and leaves the group, so its partitions move at once.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let committed = if self.group.enable_auto_commit {
            self.commit_owned().await
        } else {
            Ok(())
        };
        self.epoch = MEMBER_EPOCH_LEAVE;
        self.owned.clear();
        let left = self.send_heartbeat().await.map(drop);
        committed.and(left)
    }

    /// Auto-commit failures that must not stop consumption: retriable ones (tried again at
    /// the next interval) and a lost membership (the partitions are dropped, the member
    /// rejoins).
    fn tolerate(&mut self, result: Result<(), ClientError>) -> Result<(), ClientError> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_retriable() => Ok(()),
            Err(e)
                if matches!(
                    e.error_code(),
                    Some(
                        ErrorCode::UnknownMemberId
                            | ErrorCode::FencedMemberEpoch
                            | ErrorCode::StaleMemberEpoch
                    )
                ) =>
            {
                self.lose_membership(e.error_code() == Some(ErrorCode::UnknownMemberId));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Drops every partition without committing (they may be another member's already) and
    /// rejoins on the next heartbeat.
    fn lose_membership(&mut self, forget_id: bool) {
        self.owned.clear();
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
        let mut offsets = BTreeMap::new();
        for tp in self.owned.clone() {
            let position = self.consumer.position(&tp).await?;
            if self.committed.get(&tp) != Some(&position) {
                offsets.insert(tp, position);
            }
        }
        self.commit(offsets).await
    }

    async fn commit(&mut self, offsets: BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, Vec<OffsetCommitPartition>> = BTreeMap::new();
        for (tp, offset) in &offsets {
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
        let request = OffsetCommitRequest {
            group_id: self.group.group_id.clone(),
            member_id: self.member_id.clone(),
            member_epoch: self.epoch,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitTopic {
                    name: name.to_string(),
                    partitions,
                })
                .collect(),
        };
        let response = match self.consumer.client().request_any(request.into()).await? {
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
        self.committed.extend(offsets);
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
            owned: to_wire(&self.owned),
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
            if self.group.enable_auto_commit {
                let mut offsets = BTreeMap::new();
                for tp in &revoked {
                    let position = self.consumer.position(tp).await?;
                    if self.committed.get(tp) != Some(&position) {
                        offsets.insert(tp.clone(), position);
                    }
                }
                let committed = self.commit(offsets).await;
                self.tolerate(committed)?;
                if self.epoch == MEMBER_EPOCH_JOIN {
                    // The membership was lost while committing: everything is dropped.
                    return Ok(());
                }
            }
            for tp in &revoked {
                self.owned.remove(tp);
                self.committed.remove(tp);
            }
            // Tell the coordinator at once that they are released.
            self.next_heartbeat = Instant::now();
        }
        if !added.is_empty() {
            self.owned.extend(added.iter().cloned());
        }
        if !revoked.is_empty() || !added.is_empty() {
            self.consumer.assign(self.owned.iter().cloned().collect());
        }
        if !added.is_empty() {
            self.start_positions(&added).await?;
        }
        Ok(())
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
