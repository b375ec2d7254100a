//! Partition replication on a shard (ARCHITECTURE §8): which role this broker plays for each
//! partition it hosts, taken from the cluster metadata image, and the IO around the sans-IO
//! [`PartitionLeader`].
//!
//! - **Leader**: stamps appends with its leader epoch; learns each follower's log end from the
//!   follower's fetches (`replica_id >= 0`), moves the high watermark, completes `acks=all`
//!   produces when it passes their records, refuses `acks=all` writes while the ISR is smaller
//!   than `min.insync.replicas`, and sends ISR changes (shrink after
//!   `replica.lag.time.max.ms`, expand when a follower caught up) to the active controller as
//!   AlterPartition, resending one until it is answered.
//! - **Follower**: a fetcher task asks the leader where the follower's latest epoch ends
//!   (OffsetForLeaderEpoch), truncates there, then fetches from its log end, appends what comes
//!   back as the leader wrote it and takes the leader's high watermark.
//! - Consumers read only from the leader and only below the high watermark.
//!
//! A role is replaced whenever the image gives the partition a new leader or leader epoch; the
//! old follower task stops at its next step.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quiver_transport::protocol::{
    AlterPartitionPartition, AlterPartitionRequest, AlterPartitionTopic, ErrorCode, FetchPartition,
    FetchRequest, FetchTopic, IsolationLevel, OffsetForLeaderEpochPartition,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochTopic, Request, Response,
};

use super::ShardBroker;
use crate::batch::peek_batch_len;
use crate::cluster::metadata::{ClusterMetadata, PartitionState};
use crate::cluster::replication::{
    follower_high_watermark, IsrProposal, LeaderConfig, PartitionLeader, PartitionView,
    ReplicationError,
};
use crate::partition::Partition;

/// How long a follower's fetch may wait at the leader for new records.
pub const REPLICA_FETCH_WAIT_MS: i32 = 500;
/// Most bytes one follower fetch asks for, per partition.
pub const REPLICA_FETCH_BYTES_MAX: i32 = 4 << 20;
/// Pause after a failed replica fetch or epoch lookup.
const REPLICA_BACKOFF: Duration = Duration::from_millis(100);
/// Bound on one request to another broker.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often leaders look for followers that fell out of sync and resend unanswered ISR
/// changes.
pub const LEADER_TICK: Duration = Duration::from_millis(200);

/// The cluster as a shard sees it: the metadata image, the active controller and how far the
/// image goes. Sent from shard 0 to every shard whenever it changes.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    /// The image.
    pub image: ClusterMetadata,
    /// The active controller's id, -1 if none is known.
    pub controller_id: i32,
    /// Index of the last metadata entry the image includes, -1 if none.
    pub metadata_offset: i64,
}

impl ClusterSnapshot {
    /// The `host:port` of the shard of `broker` that serves partition `partition` of
    /// `topic`, by the shard count `broker` registered with (which may differ from this
    /// broker's). `None` if `broker` is not registered.
    pub fn partition_addr(&self, broker: i32, topic: &str, partition: i32) -> Option<String> {
        let registration = self.image.broker(broker)?;
        registration.shard_addr(registration.shard_of(topic, partition))
    }
}

/// A leader's state for one partition.
pub(crate) struct LeaderRole {
    pub leader: PartitionLeader,
    pub min_insync: i32,
    /// An AlterPartition for the pending proposal is on its way.
    pub in_flight: bool,
}

/// This broker's role for one hosted partition.
pub(crate) enum Role {
    Leader(Box<LeaderRole>),
    /// Fetching from `leader`; the task stops when `stop` is set.
    Follower {
        leader: i32,
        stop: Rc<Cell<bool>>,
    },
    /// No leader (offline partition) or not known yet.
    Idle,
}

/// One hosted partition's replication state.
pub(crate) struct Replica {
    pub leader_epoch: i32,
    pub role: Role,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Role::Follower { stop, .. } = &self.role {
            stop.set(true);
        }
    }
}

pub(crate) type Replicas = HashMap<(String, i32), Replica>;

fn view_of(state: &PartitionState) -> PartitionView {
    PartitionView {
        replicas: state.replicas.clone(),
        isr: state.isr.clone(),
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
    }
}

/// Where a batch's records end: base offset + last offset delta + 1.
fn batch_next_offset(batch: &[u8]) -> Option<i64> {
    let base = i64::from_be_bytes(batch.get(0..8)?.try_into().ok()?);
    let delta = i32::from_be_bytes(batch.get(23..27)?.try_into().ok()?);
    Some(base + i64::from(delta) + 1)
}

/// Keeps the batches that end at or below `high_watermark` (what consumers may see).
pub(crate) fn below_high_watermark(batches: Vec<Bytes>, high_watermark: i64) -> Vec<Bytes> {
    batches
        .into_iter()
        .take_while(|b| batch_next_offset(b).is_some_and(|end| end <= high_watermark))
        .collect()
}

/// Splits the bytes of a fetch response's records into batches.
fn split_fetched(records: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut rest = records.clone();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = peek_batch_len(&rest).ok_or("no batch header in fetched records")?;
        if len > rest.len() {
            // The leader sends whole batches; a cut one is a protocol error.
            return Err(format!(
                "fetched batch declares {len} bytes, {} remain",
                rest.len()
            ));
        }
        out.push(rest.split_to(len));
    }
    Ok(out)
}

fn replication_code(e: &ReplicationError) -> ErrorCode {
    match e {
        ReplicationError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
        ReplicationError::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
        ReplicationError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        ReplicationError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
        ReplicationError::NotAFollower(_) => ErrorCode::NotLeaderOrFollower,
        _ => ErrorCode::Unknown,
    }
}

impl ShardBroker {
    /// Whether this broker runs as part of a cluster.
    pub(crate) fn clustered(&self) -> bool {
        self.config.cluster.is_some()
    }

    /// The cluster snapshot this shard last adopted.
    pub(crate) fn snapshot(&self) -> Option<Arc<ClusterSnapshot>> {
        self.cluster.borrow().clone()
    }

    /// The leader epoch at which this broker leads `topic`-`partition`, if it does.
    pub(crate) fn leading_epoch(&self, topic: &str, partition: i32) -> Option<i32> {
        let replicas = self.replicas.borrow();
        let replica = replicas.get(&(topic.to_string(), partition))?;
        matches!(replica.role, Role::Leader(_)).then_some(replica.leader_epoch)
    }

    /// Whether this broker hosts a replica of `topic`-`partition` (always, alone).
    pub(crate) fn hosts(&self, topic: &str, partition: i32) -> bool {
        match &*self.cluster.borrow() {
            None => !self.clustered(),
            Some(s) => s
                .image
                .partition(topic, partition)
                .is_some_and(|p| p.replicas.contains(&self.config.node_id)),
        }
    }

    /// Adopts the roles the image gives this shard's partitions (after `apply` opened and
    /// closed them).
    pub(crate) async fn adopt_roles(self: &Rc<Self>, snapshot: &ClusterSnapshot) {
        let me = self.config.node_id;
        let lag = self
            .config
            .cluster
            .as_ref()
            .map_or(30_000, |c| c.replica_lag_time_max_ms);
        let open: Vec<Rc<Partition>> = self.all_partitions();
        self.replicas
            .borrow_mut()
            .retain(|(t, p), _| open.iter().any(|o| o.topic() == t && o.index() == *p));
        for partition in open {
            let key = (partition.topic().to_string(), partition.index());
            let Some(topic) = snapshot.image.topic(&key.0) else {
                continue;
            };
            let Some(state) = topic.partition(key.1) else {
                continue;
            };
            // A replica's high watermark starts at 0 until its leader (or, leading, its
            // followers) move it: a log end from before a restart is not known to be committed.
            if partition.replicated_high_watermark().is_none() {
                partition.set_high_watermark(Some(0));
            }
            let current = self
                .replicas
                .borrow()
                .get(&key)
                .map(|r| (r.leader_epoch, matches!(r.role, Role::Leader(_))));
            match state.leader {
                Some(leader) if leader == me => {
                    if current == Some((state.leader_epoch, true)) {
                        let advanced = {
                            let mut replicas = self.replicas.borrow_mut();
                            let Some(Replica {
                                role: Role::Leader(role),
                                ..
                            }) = replicas.get_mut(&key)
                            else {
                                continue;
                            };
                            role.min_insync = topic.config.min_insync_replicas;
                            role.leader.controller_state(view_of(state))
                        };
                        if let Ok(Some(hw)) = advanced {
                            partition.set_high_watermark(Some(hw));
                        }
                        continue;
                    }
                    if let Err(e) = partition.set_leader_epoch(state.leader_epoch).await {
                        eprintln!("quiver: {}: cannot lead: {e}", partition.name());
                        continue;
                    }
                    let log_end = partition.log_end_offset();
                    let hw = partition.high_watermark().min(log_end);
                    match PartitionLeader::new(
                        me,
                        view_of(state),
                        log_end,
                        hw,
                        Self::now_ms(),
                        LeaderConfig {
                            replica_lag_time_max_ms: lag,
                        },
                    ) {
                        Ok(leader) => {
                            partition.set_high_watermark(Some(leader.high_watermark()));
                            self.replicas.borrow_mut().insert(
                                key,
                                Replica {
                                    leader_epoch: state.leader_epoch,
                                    role: Role::Leader(Box::new(LeaderRole {
                                        leader,
                                        min_insync: topic.config.min_insync_replicas,
                                        in_flight: false,
                                    })),
                                },
                            );
                        }
                        Err(e) => eprintln!("quiver: {}: cannot lead: {e}", partition.name()),
                    }
                }
                Some(leader) => {
                    let same = self.replicas.borrow().get(&key).is_some_and(|r| {
                        r.leader_epoch == state.leader_epoch
                            && matches!(r.role, Role::Follower { leader: l, .. } if l == leader)
                    });
                    if same {
                        continue;
                    }
                    let stop = Rc::new(Cell::new(false));
                    self.replicas.borrow_mut().insert(
                        key,
                        Replica {
                            leader_epoch: state.leader_epoch,
                            role: Role::Follower {
                                leader,
                                stop: stop.clone(),
                            },
                        },
                    );
                    let this = self.clone();
                    let epoch = state.leader_epoch;
                    glommio::spawn_local(async move {
                        this.run_fetcher(partition, leader, epoch, stop).await;
                    })
                    .detach();
                }
                None => {
                    self.replicas.borrow_mut().insert(
                        key,
                        Replica {
                            leader_epoch: state.leader_epoch,
                            role: Role::Idle,
                        },
                    );
                }
            }
        }
    }

    /// Checks that this broker leads `topic`-`partition` for a client request that names
    /// `current_leader_epoch` (-1: no check). Returns the high watermark.
    pub(crate) fn check_leader(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<i64, ErrorCode> {
        let replicas = self.replicas.borrow();
        let Some(replica) = replicas.get(&(topic.to_string(), partition)) else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let Role::Leader(role) = &replica.role else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let epoch = replica.leader_epoch;
        if current_leader_epoch >= 0 && current_leader_epoch < epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if current_leader_epoch > epoch {
            return Err(ErrorCode::UnknownLeaderEpoch);
        }
        Ok(role.leader.high_watermark())
    }

    /// ISR and replica counts of a partition this broker leads.
    pub(crate) fn leader_isr(&self, topic: &str, partition: i32) -> Option<(usize, usize)> {
        let replicas = self.replicas.borrow();
        match &replicas.get(&(topic.to_string(), partition))?.role {
            Role::Leader(role) => {
                Some((role.leader.isr().len(), role.leader.view().replicas.len()))
            }
            _ => None,
        }
    }

    /// Before an `acks=all` append: the ISR must hold `min.insync.replicas`.
    pub(crate) fn check_min_insync(&self, topic: &str, partition: i32) -> Result<(), String> {
        let replicas = self.replicas.borrow();
        match replicas
            .get(&(topic.to_string(), partition))
            .map(|r| &r.role)
        {
            Some(Role::Leader(role)) => role
                .leader
                .check_acks_all(role.min_insync)
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// After an append as leader: the log ends at `log_end`.
    pub(crate) fn leader_appended(&self, partition: &Partition, log_end: i64) {
        let advanced = {
            let mut replicas = self.replicas.borrow_mut();
            let key = (partition.topic().to_string(), partition.index());
            match replicas.get_mut(&key).map(|r| &mut r.role) {
                Some(Role::Leader(role)) => role.leader.appended(log_end),
                _ => None,
            }
        };
        if let Some(hw) = advanced {
            partition.set_high_watermark(Some(hw));
        }
    }

    /// Waits until the high watermark passes `next_offset` (an `acks=all` produce), at most
    /// `timeout`. `Err` with the code to answer.
    pub(crate) async fn wait_replicated(
        &self,
        partition: &Partition,
        next_offset: i64,
        timeout: Duration,
    ) -> Result<(), (ErrorCode, String)> {
        let key = (partition.topic().to_string(), partition.index());
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let since = partition.appended().generation();
            let outcome = {
                let replicas = self.replicas.borrow();
                match replicas.get(&key).map(|r| &r.role) {
                    Some(Role::Leader(role)) => {
                        Some(role.leader.acks_all(next_offset, role.min_insync))
                    }
                    _ => None,
                }
            };
            match outcome {
                None => {
                    return Err((
                        ErrorCode::NotLeaderOrFollower,
                        format!(
                            "{} lost its leadership before the records were replicated",
                            partition.name()
                        ),
                    ))
                }
                Some(crate::cluster::replication::AcksAll::Complete) => return Ok(()),
                Some(crate::cluster::replication::AcksAll::NotEnoughReplicasAfterAppend {
                    isr,
                    min,
                }) => {
                    return Err((
                        ErrorCode::NotEnoughReplicasAfterAppend,
                        format!(
                            "appended to {}, but the ISR shrank to {isr} (min.insync.replicas \
                             {min})",
                            partition.name()
                        ),
                    ))
                }
                Some(crate::cluster::replication::AcksAll::Waiting) => {}
            }
            if partition.is_closed() {
                return Err((
                    ErrorCode::NotLeaderOrFollower,
                    format!("{} closed", partition.name()),
                ));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err((
                    ErrorCode::RequestTimedOut,
                    format!(
                        "appended to {} but not replicated to the ISR within {} ms",
                        partition.name(),
                        timeout.as_millis()
                    ),
                ));
            }
            futures_lite::future::or(
                partition.appended().changed(since),
                glommio::timer::sleep(deadline - now),
            )
            .await;
        }
    }

    /// A follower fetched `topic`-`partition` from `offset` under `epoch`: record its
    /// progress. Returns the high watermark to answer with.
    pub(crate) fn follower_fetched(
        &self,
        partition: &Partition,
        follower: i32,
        epoch: i32,
        offset: i64,
    ) -> Result<i64, ErrorCode> {
        let key = (partition.topic().to_string(), partition.index());
        let (outcome, proposed) = {
            let mut replicas = self.replicas.borrow_mut();
            let Some(Role::Leader(role)) = replicas.get_mut(&key).map(|r| &mut r.role) else {
                return Err(ErrorCode::NotLeaderOrFollower);
            };
            role.leader.appended(partition.log_end_offset());
            let outcome = role
                .leader
                .follower_fetch(follower, epoch, offset, Self::now_ms())
                .map_err(|e| replication_code(&e))?;
            let proposed = outcome.proposal.is_some();
            (outcome, proposed)
        };
        if let Some(hw) = outcome.high_watermark_advanced {
            partition.set_high_watermark(Some(hw));
        }
        if proposed {
            // The leader task sends it.
            self.leader_wake.notify_all();
        }
        Ok(outcome.high_watermark)
    }

    /// The leaders' periodic pass: ISR shrink, and resending unanswered ISR changes.
    pub(crate) async fn run_leader_ticks(self: Rc<Self>) {
        loop {
            let since = self.leader_wake.generation();
            futures_lite::future::or(
                futures_lite::future::or(
                    glommio::timer::sleep(LEADER_TICK),
                    self.leader_wake.changed(since),
                ),
                self.stopping.wait(),
            )
            .await;
            if self.stopping.is_set() {
                return;
            }
            let now = Self::now_ms();
            let mut sends = Vec::new();
            for (key, replica) in self.replicas.borrow_mut().iter_mut() {
                let Role::Leader(role) = &mut replica.role else {
                    continue;
                };
                if role.in_flight {
                    continue;
                }
                let proposal = role
                    .leader
                    .tick(now)
                    .or_else(|| role.leader.pending().cloned());
                if let Some(proposal) = proposal {
                    role.in_flight = true;
                    sends.push((key.clone(), proposal));
                }
            }
            for (key, proposal) in sends {
                self.send_isr_change(key, proposal);
            }
        }
    }

    /// Sends an ISR change to the active controller and adopts its answer.
    fn send_isr_change(self: &Rc<Self>, key: (String, i32), proposal: IsrProposal) {
        let this = self.clone();
        glommio::spawn_local(async move {
            let answer = this.alter_partition(&key, &proposal).await;
            let hw = {
                let mut replicas = this.replicas.borrow_mut();
                let Some(Role::Leader(role)) = replicas.get_mut(&key).map(|r| &mut r.role) else {
                    return;
                };
                role.in_flight = false;
                match answer {
                    Ok(Some(view)) => role.leader.controller_state(view).ok().flatten(),
                    Ok(None) => {
                        role.leader.proposal_refused(&proposal);
                        None
                    }
                    // Unanswered: the tick resends it.
                    Err(_) => None,
                }
            };
            if let (Some(hw), Ok(p)) = (hw, this.local_partition(&key.0, key.1)) {
                p.set_high_watermark(Some(hw));
            }
        })
        .detach();
    }

    /// One AlterPartition round trip: `Ok(Some(state))` accepted, `Ok(None)` refused, `Err`
    /// no answer.
    async fn alter_partition(
        &self,
        key: &(String, i32),
        proposal: &IsrProposal,
    ) -> Result<Option<PartitionView>, String> {
        let snapshot = self.snapshot().ok_or("no cluster metadata yet")?;
        let broker_epoch = snapshot
            .image
            .broker(self.config.node_id)
            .map_or(-1, |b| b.epoch);
        let request = Request::AlterPartition(AlterPartitionRequest {
            broker_id: self.config.node_id,
            broker_epoch,
            topics: vec![AlterPartitionTopic {
                name: key.0.clone(),
                partitions: vec![AlterPartitionPartition {
                    partition: key.1,
                    leader_epoch: proposal.leader_epoch,
                    partition_epoch: proposal.partition_epoch,
                    new_isr: proposal.isr.clone(),
                }],
            }],
        });
        let response = self.controller_request(request).await?;
        let Response::AlterPartition(r) = response else {
            return Err("unexpected answer to AlterPartition".into());
        };
        if !r.error_code.is_ok() {
            return Err(format!("AlterPartition: {:?}", r.error_code));
        }
        let Some(p) = r.topics.first().and_then(|t| t.partitions.first()) else {
            return Err("empty AlterPartition answer".into());
        };
        match p.error_code {
            ErrorCode::None => Ok(Some(PartitionView {
                replicas: snapshot
                    .image
                    .partition(&key.0, key.1)
                    .map(|s| s.replicas.clone())
                    .unwrap_or_default(),
                isr: p.isr.clone(),
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
            })),
            ErrorCode::NotController | ErrorCode::RequestTimedOut => {
                Err(format!("AlterPartition: {:?}", p.error_code))
            }
            _ => Ok(None),
        }
    }

    /// Sends `request` to the active controller (or, not knowing it, to each controller in
    /// turn), following NotController answers.
    pub(crate) async fn controller_request(&self, request: Request) -> Result<Response, String> {
        let cluster = self.config.cluster.as_ref().ok_or("not in a cluster")?;
        let peers = self.peers.borrow().clone().ok_or("no peer transport")?;
        let known = self.snapshot().map_or(-1, |s| s.controller_id);
        let mut order: Vec<&str> = Vec::new();
        if let Some(addr) = cluster.controller_addr(known) {
            order.push(addr);
        }
        for c in &cluster.controllers {
            if c.id != known {
                order.push(&c.addr);
            }
        }
        let mut last = String::from("no controller answered");
        for addr in order {
            match peers
                .request(addr, request.clone(), PEER_REQUEST_TIMEOUT)
                .await
            {
                Ok(Response::Rejected(ErrorCode::NotController)) => {
                    last = format!("{addr}: not the controller");
                }
                Ok(response) if controller_says_not_me(&response) => {
                    last = format!("{addr}: not the controller");
                }
                Ok(response) => return Ok(response),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }

    /// The follower side: truncate to the leader's epoch boundary, then fetch until the role
    /// changes.
    async fn run_fetcher(
        self: Rc<Self>,
        partition: Rc<Partition>,
        leader: i32,
        epoch: i32,
        stop: Rc<Cell<bool>>,
    ) {
        let topic = partition.topic().to_string();
        let index = partition.index();
        let mut truncated = false;
        while !stop.get() && !self.stopping.is_set() && !partition.is_closed() {
            let Some(addr) = self
                .snapshot()
                .and_then(|s| s.partition_addr(leader, &topic, index))
            else {
                glommio::timer::sleep(REPLICA_BACKOFF).await;
                continue;
            };
            let Some(peers) = self.peers.borrow().clone() else {
                glommio::timer::sleep(REPLICA_BACKOFF).await;
                continue;
            };
            if !truncated {
                match self
                    .truncate_for(&partition, &*peers, &addr, &topic, index, epoch)
                    .await
                {
                    Ok(()) => truncated = true,
                    Err(_) => {
                        glommio::timer::sleep(REPLICA_BACKOFF).await;
                        continue;
                    }
                }
            }
            if stop.get() {
                return;
            }
            let request = Request::Fetch(FetchRequest {
                replica_id: self.config.node_id,
                max_wait_ms: REPLICA_FETCH_WAIT_MS,
                min_bytes: 1,
                max_bytes: REPLICA_FETCH_BYTES_MAX,
                isolation_level: IsolationLevel::ReadUncommitted,
                topics: vec![FetchTopic {
                    name: topic.clone(),
                    partitions: vec![FetchPartition {
                        partition: index,
                        current_leader_epoch: epoch,
                        fetch_offset: partition.log_end_offset(),
                        log_start_offset: partition.log_start_offset(),
                        partition_max_bytes: REPLICA_FETCH_BYTES_MAX,
                    }],
                }],
            });
            let timeout =
                PEER_REQUEST_TIMEOUT + Duration::from_millis(REPLICA_FETCH_WAIT_MS as u64);
            let answer = peers.request(&addr, request, timeout).await;
            if stop.get() {
                return;
            }
            let part = match answer {
                Ok(Response::Fetch(r)) => r
                    .topics
                    .into_iter()
                    .next()
                    .and_then(|t| t.partitions.into_iter().next()),
                _ => None,
            };
            let Some(part) = part else {
                glommio::timer::sleep(REPLICA_BACKOFF).await;
                continue;
            };
            match part.error_code {
                ErrorCode::None => {}
                ErrorCode::OffsetOutOfRange
                    if part.log_start_offset > partition.log_end_offset() =>
                {
                    // The leader no longer has what this replica lacks (retention removed it
                    // while this broker was away): start over at the leader's log start.
                    let start = part.log_start_offset;
                    match partition.reset_to(start, Self::now_ms()).await {
                        Ok(()) => eprintln!(
                            "quiver: {}: behind the leader's log start; the replica now starts at {start}",
                            partition.name()
                        ),
                        Err(e) => {
                            eprintln!("quiver: {}: cannot start over at {start}: {e}", partition.name());
                            glommio::timer::sleep(REPLICA_BACKOFF).await;
                        }
                    }
                    continue;
                }
                ErrorCode::OffsetOutOfRange => {
                    truncated = false;
                    glommio::timer::sleep(REPLICA_BACKOFF).await;
                    continue;
                }
                _ => {
                    glommio::timer::sleep(REPLICA_BACKOFF).await;
                    continue;
                }
            }
            let batches = match split_fetched(&part.records.to_bytes()) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!(
                        "quiver: {}: bad fetch answer from {leader}: {e}",
                        partition.name()
                    );
                    glommio::timer::sleep(REPLICA_BACKOFF).await;
                    continue;
                }
            };
            if !batches.is_empty() {
                if let Err(e) = partition.append_replicated(batches, Self::now_ms()).await {
                    eprintln!(
                        "quiver: {}: replicating from {leader}: {e}",
                        partition.name()
                    );
                    truncated = false;
                    glommio::timer::sleep(REPLICA_BACKOFF).await;
                    continue;
                }
                self.after_append(&partition);
            }
            let hw = follower_high_watermark(part.high_watermark, partition.log_end_offset());
            partition.raise_high_watermark(hw);
        }
    }

    /// Asks the leader where this replica's latest epoch ends and cuts the log there.
    async fn truncate_for(
        &self,
        partition: &Rc<Partition>,
        peers: &dyn super::Peers,
        addr: &str,
        topic: &str,
        index: i32,
        epoch: i32,
    ) -> Result<(), String> {
        let Some(latest) = partition.latest_epoch().await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let request = Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
            replica_id: self.config.node_id,
            topics: vec![OffsetForLeaderEpochTopic {
                name: topic.to_string(),
                partitions: vec![OffsetForLeaderEpochPartition {
                    partition: index,
                    current_leader_epoch: epoch,
                    leader_epoch: latest,
                }],
            }],
        });
        let response = peers.request(addr, request, PEER_REQUEST_TIMEOUT).await?;
        let Response::OffsetForLeaderEpoch(r) = response else {
            return Err("unexpected answer to OffsetForLeaderEpoch".into());
        };
        let p = r
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or("empty OffsetForLeaderEpoch answer")?;
        if !p.error_code.is_ok() {
            return Err(format!("OffsetForLeaderEpoch: {:?}", p.error_code));
        }
        let cut = partition
            .truncation_point(latest, (p.leader_epoch, p.end_offset))
            .await
            .map_err(|e| e.to_string())?;
        if cut < partition.log_end_offset() {
            partition
                .truncate_to(cut, Self::now_ms())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Whether a controller API answer says "not the controller" in its body.
fn controller_says_not_me(response: &Response) -> bool {
    match response {
        Response::BrokerRegistration(r) => r.error_code == ErrorCode::NotController,
        Response::BrokerHeartbeat(r) => r.error_code == ErrorCode::NotController,
        Response::AlterPartition(r) => r.error_code == ErrorCode::NotController,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake batch: only the header fields the helpers read, at their offsets.
    fn batch(base: i64, last_delta: i32, len: usize) -> Bytes {
        let mut b = vec![0u8; len.max(61)];
        b[0..8].copy_from_slice(&base.to_be_bytes());
        let batch_length = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&last_delta.to_be_bytes());
        Bytes::from(b)
    }

    #[test]
    fn consumers_see_only_batches_below_the_high_watermark() {
        let batches = vec![batch(0, 4, 70), batch(5, 4, 70), batch(10, 0, 70)];
        assert_eq!(below_high_watermark(batches.clone(), 0).len(), 0);
        assert_eq!(below_high_watermark(batches.clone(), 5).len(), 1);
        assert_eq!(below_high_watermark(batches.clone(), 9).len(), 1);
        assert_eq!(below_high_watermark(batches.clone(), 10).len(), 2);
        assert_eq!(below_high_watermark(batches, 11).len(), 3);
    }

    #[test]
    fn fetched_records_split_into_batches_and_a_cut_batch_is_refused() {
        let mut joined = Vec::new();
        joined.extend_from_slice(&batch(0, 1, 70));
        joined.extend_from_slice(&batch(2, 0, 80));
        let split = split_fetched(&Bytes::from(joined.clone())).expect("splits");
        assert_eq!(
            split.iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![70, 80]
        );
        joined.truncate(100);
        assert!(split_fetched(&Bytes::from(joined)).is_err());
    }

    #[test]
    fn shard_addresses_follow_the_base_port() {
        let mut image = ClusterMetadata::new();
        // Broker 3 runs 4 shards from port 9100, broker 5 one shard on 9200, broker 7 three
        // from 9300.
        for (epoch, (broker, port, shards)) in [(3, 9100, 4), (5, 9200, 1), (7, 9300, 3)]
            .into_iter()
            .enumerate()
        {
            image
                .apply(&crate::cluster::metadata::MetadataRecord::RegisterBroker {
                    broker,
                    incarnation: 1,
                    broker_epoch: epoch as i64 + 1,
                    listener: format!("127.0.0.1:{port}"),
                    rack: None,
                    shards,
                })
                .expect("registers");
        }
        let snapshot = ClusterSnapshot {
            image: image.clone(),
            controller_id: 3,
            metadata_offset: 1,
        };
        let three = image.broker(3).expect("registered");
        assert_eq!(three.shard_addr(2).as_deref(), Some("127.0.0.1:9102"));
        // A partition's address on each broker uses that broker's own shard count.
        for p in 0..32 {
            for (broker, port, shards) in [(3, 9100, 4), (5, 9200, 1), (7, 9300, 3)] {
                let shard = crate::shard::shard_for("orders", p, shards);
                assert_eq!(
                    snapshot.partition_addr(broker, "orders", p),
                    Some(format!("127.0.0.1:{}", port + shard)),
                    "broker {broker} partition {p}"
                );
            }
        }
        // The counts differ, so some partition lives on different shard indexes.
        assert!((0..32)
            .any(|p| crate::shard::shard_for("orders", p, 4)
                != crate::shard::shard_for("orders", p, 3)));
        assert_eq!(snapshot.partition_addr(4, "orders", 0), None);
        let decoded = ClusterMetadata::decode_image(&image.encode_image()).expect("decodes");
        assert_eq!(decoded, image);
        assert!(ClusterMetadata::decode_image(&[9, b'{', b'}']).is_err());
        assert!(ClusterMetadata::decode_image(&[]).is_err());
    }
}
