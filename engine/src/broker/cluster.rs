//! A broker as a cluster member (ARCHITECTURE §8): joining (registration and heartbeats to the
//! active controller), following the metadata image (shard 0 hands every change to every
//! shard, which opens, closes and takes the role of its partitions), the controller APIs a
//! controller broker answers, and topic changes through the controller.
//!
//! Every broker learns the image from its own controller quorum member if it is a controller,
//! otherwise by asking the controllers (DescribeCluster) every [`IMAGE_POLL`].

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use quiver_transport::protocol::{
    AlterPartitionPartitionResponse, AlterPartitionRequest, AlterPartitionResponse,
    AlterPartitionTopicResponse, AlterTopicConfigsRequest, AlterTopicConfigsResponse,
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationRequest,
    BrokerRegistrationResponse, CreateTopicsRequest, CreateTopicsResponse, CreatedTopic,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
    ErrorCode, RaftMessageRequest, RaftMessageResponse, Request, Response, TopicResult,
};

use super::controller_shell::{ControllerShell, DecideError, METADATA_LOG_DIR};
use super::registry::{TopicMeta, TopicTable};
use super::replica::ClusterSnapshot;
use super::{Call, Peers, Reply, ShardBroker, TopicConfig, PARTITIONS_MAX};
use crate::cluster::controller::{ControllerConfig, ControllerError};
use crate::cluster::metadata::{
    ClusterMetadata, MetadataRecord, TopicConfig as ClusterTopicConfig,
};
use crate::shard::sync::{join_all, LocalBoxFuture};

/// How often a broker that is not a controller asks for the metadata image.
pub const IMAGE_POLL: Duration = Duration::from_millis(250);
/// Pause between registration attempts.
const REGISTER_RETRY: Duration = Duration::from_millis(500);
/// How long a topic change waits for this broker's image to show it.
const ADMIN_WAIT: Duration = Duration::from_secs(10);

/// The topic table a cluster image gives.
fn table_of(image: &ClusterMetadata) -> TopicTable {
    let mut table = TopicTable::default();
    for topic in image.topics() {
        table.topics.insert(
            topic.name.clone(),
            TopicMeta {
                partitions: topic.partition_count(),
                replication_factor: topic
                    .partitions
                    .first()
                    .map_or(1, |p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX)),
                configs: topic.configs.clone(),
                id: Some(topic.id),
            },
        );
    }
    table
}

fn controller_code(e: &ControllerError) -> ErrorCode {
    match e {
        ControllerError::InvalidRegistration(_) => ErrorCode::InvalidRequest,
        ControllerError::DuplicateBrokerRegistration { .. } => {
            ErrorCode::DuplicateBrokerRegistration
        }
        ControllerError::UnknownBroker(_) => ErrorCode::BrokerIdNotRegistered,
        ControllerError::StaleBrokerIncarnation { .. } | ControllerError::BrokerShutDown(_) => {
            ErrorCode::StaleBrokerEpoch
        }
        ControllerError::TopicExists(_) => ErrorCode::TopicAlreadyExists,
        ControllerError::UnknownTopic(_) | ControllerError::UnknownTopicOrPartition(_) => {
            ErrorCode::UnknownTopicOrPartition
        }
        ControllerError::InvalidTopicName { .. } => ErrorCode::InvalidTopic,
        ControllerError::InvalidPartitionCount { .. } => ErrorCode::InvalidPartitions,
        ControllerError::InvalidReplicationFactor { .. }
        | ControllerError::ReplicationFactorTooLarge { .. } => ErrorCode::InvalidReplicationFactor,
        ControllerError::InvalidTopicConfig { .. } => ErrorCode::InvalidConfig,
        ControllerError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
        ControllerError::NotLeader { .. } => ErrorCode::NotLeaderOrFollower,
        ControllerError::InvalidUpdateVersion { .. } => ErrorCode::InvalidUpdateVersion,
        ControllerError::IneligibleReplica { .. } => ErrorCode::IneligibleReplica,
        _ => ErrorCode::InvalidRequest,
    }
}

fn decide_code(e: &DecideError) -> (ErrorCode, String) {
    match e {
        DecideError::NotController => (
            ErrorCode::NotController,
            "this broker is not the active controller".into(),
        ),
        DecideError::Refused(e) => (controller_code(e), e.to_string()),
    }
}

impl ShardBroker {
    /// Joins the cluster on this shard: call on every shard after [`ShardBroker::start`],
    /// with the shard's transport to other brokers. Shard 0 starts the controller quorum
    /// member (on controllers), follows the image and keeps the broker registered.
    pub async fn join_cluster(self: &Rc<Self>, peers: Rc<dyn Peers>) -> Result<(), String> {
        let Some(cluster) = self.config.cluster.clone() else {
            return Ok(());
        };
        *self.peers.borrow_mut() = Some(peers.clone());
        let ticks = glommio::spawn_local(self.clone().run_leader_ticks()).detach();
        self.tasks.borrow_mut().push(ticks);
        if self.shard != 0 {
            return Ok(());
        }
        if cluster.is_controller(self.config.node_id) {
            let voters: Vec<(i32, String)> = cluster
                .controllers
                .iter()
                .map(|c| (c.id, c.addr.clone()))
                .collect();
            let dir = self
                .config
                .data_dir
                .join(super::registry::META_DIR)
                .join(METADATA_LOG_DIR);
            let config = ControllerConfig {
                broker_session_timeout_ms: cluster.broker_session_timeout_ms,
                default_replication_factor: cluster.default_replication_factor,
                default_partitions: self.config.topic_defaults.partitions,
                metadata_snapshot_entries: cluster.metadata_snapshot_entries,
            };
            let shell = ControllerShell::start(
                self.config.node_id,
                &voters,
                &dir,
                config,
                peers,
                self.controller_stop.clone(),
            )
            .await?;
            *self.controller.borrow_mut() = Some(shell);
        }
        let publisher = glommio::spawn_local(self.clone().run_image_follower()).detach();
        let membership = glommio::spawn_local(self.clone().run_membership()).detach();
        self.tasks.borrow_mut().extend([publisher, membership]);
        Ok(())
    }

    fn controller_shell(&self) -> Option<Rc<ControllerShell>> {
        self.controller.borrow().clone()
    }

    /// Shard 0: hands every new image to every shard.
    async fn run_image_follower(self: Rc<Self>) {
        let mut last: Option<(i64, i32)> = None;
        let mut sweep = StraySweep::default();
        loop {
            if self.stopping.is_set() {
                return;
            }
            let snapshot = match self.controller_shell() {
                Some(shell) => {
                    let since = shell.changed.generation();
                    let snapshot = shell.snapshot();
                    if !supersedes(last, (snapshot.metadata_offset, snapshot.controller_id)) {
                        futures_lite::future::or(
                            shell.changed.changed(since),
                            self.stopping.wait(),
                        )
                        .await;
                        continue;
                    }
                    snapshot
                }
                None => {
                    let fetched = self.fetch_image().await;
                    match fetched {
                        Ok(s) if supersedes(last, (s.metadata_offset, s.controller_id)) => {
                            Arc::new(s)
                        }
                        _ => {
                            futures_lite::future::or(
                                glommio::timer::sleep(IMAGE_POLL),
                                self.stopping.wait(),
                            )
                            .await;
                            continue;
                        }
                    }
                }
            };
            last = Some((snapshot.metadata_offset, snapshot.controller_id));
            // A shard that stopped meanwhile no longer answers: stopping ends the wait.
            futures_lite::future::or(
                self.broadcast_cluster(snapshot.clone()),
                self.stopping.wait(),
            )
            .await;
            if !self.stopping.is_set() {
                sweep.run(&self.config.data_dir, self.config.node_id, &snapshot);
            }
        }
    }

    /// A broker that is not a controller asks the controllers for the image.
    async fn fetch_image(&self) -> Result<ClusterSnapshot, String> {
        let response = self
            .controller_request(Request::DescribeCluster(DescribeClusterRequest::default()))
            .await?;
        let Response::DescribeCluster(r) = response else {
            return Err("unexpected answer to DescribeCluster".into());
        };
        if !r.error_code.is_ok() {
            return Err(format!("DescribeCluster: {:?}", r.error_code));
        }
        let image = ClusterMetadata::decode_image(&r.image).map_err(|e| e.to_string())?;
        Ok(ClusterSnapshot {
            image,
            controller_id: r.controller_id,
            metadata_offset: r.metadata_offset,
        })
    }

    /// Sends `snapshot` to every shard (this one included) and waits for all.
    async fn broadcast_cluster(self: &Rc<Self>, snapshot: Arc<ClusterSnapshot>) {
        let runs: Vec<LocalBoxFuture<'_, ()>> = (0..self.config.shard_count)
            .map(|s| {
                let snapshot = snapshot.clone();
                Box::pin(async move {
                    if s == self.shard {
                        self.adopt_cluster(snapshot).await;
                    } else if let Err(e) = self.call(s, Call::Cluster(snapshot)).await {
                        if !self.stopping.is_set() {
                            eprintln!("quiver: shard {s} did not take the cluster image: {e}");
                        }
                    }
                }) as LocalBoxFuture<'_, ()>
            })
            .collect();
        join_all(runs).await;
    }

    /// Adopts a cluster snapshot on this shard: partitions, then roles.
    pub(crate) async fn adopt_cluster(self: &Rc<Self>, snapshot: Arc<ClusterSnapshot>) {
        *self.cluster.borrow_mut() = Some(snapshot.clone());
        let failures = self.apply(&table_of(&snapshot.image)).await;
        for (topic, p, reason) in failures {
            eprintln!(
                "quiver: shard {}: {topic}-{p} failed to open: {reason}",
                self.shard
            );
        }
        self.adopt_roles(&snapshot).await;
        self.sync_group_leadership();
    }

    /// Shard 0: registers with the controller, then heartbeats; registers again when the
    /// controller no longer knows this process.
    async fn run_membership(self: Rc<Self>) {
        let Some(cluster) = self.config.cluster.clone() else {
            return;
        };
        let interval = Duration::from_millis(cluster.broker_heartbeat_interval_ms);
        let incarnation = self.incarnation;
        let listener = format!("{}:{}", self.config.advertised_host, self.config.base_port);
        'register: loop {
            let broker_epoch = loop {
                if self.stopping.is_set() {
                    return;
                }
                let request = Request::BrokerRegistration(BrokerRegistrationRequest {
                    broker_id: self.config.node_id,
                    incarnation_id: incarnation,
                    listener: listener.clone(),
                    rack: None,
                    shards: i32::try_from(self.config.shard_count).unwrap_or(i32::MAX),
                });
                match self.controller_request(request).await {
                    Ok(Response::BrokerRegistration(r)) if r.error_code.is_ok() => {
                        break r.broker_epoch;
                    }
                    _ => {
                        futures_lite::future::or(
                            glommio::timer::sleep(REGISTER_RETRY),
                            self.stopping.wait(),
                        )
                        .await;
                    }
                }
            };
            self.broker_epoch.set(broker_epoch);
            loop {
                if self.stopping.is_set() {
                    return;
                }
                let request = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
                    broker_id: self.config.node_id,
                    broker_epoch,
                    incarnation_id: incarnation,
                    metadata_offset: self.snapshot().map_or(-1, |s| s.metadata_offset),
                    want_fence: false,
                    want_shutdown: false,
                });
                if let Ok(Response::BrokerHeartbeat(r)) = self.controller_request(request).await {
                    if r.error_code == ErrorCode::StaleBrokerEpoch
                        || r.error_code == ErrorCode::BrokerIdNotRegistered
                    {
                        continue 'register;
                    }
                }
                futures_lite::future::or(glommio::timer::sleep(interval), self.stopping.wait())
                    .await;
            }
        }
    }

    /// Tells the controller this broker is stopping (best effort), so its leaderships move
    /// now and its next start may register at once.
    pub(crate) async fn leave_cluster(&self) {
        if self.shard != 0 || self.config.cluster.is_none() || self.broker_epoch.get() < 0 {
            return;
        }
        let request = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
            broker_id: self.config.node_id,
            broker_epoch: self.broker_epoch.get(),
            incarnation_id: self.incarnation,
            metadata_offset: self.snapshot().map_or(-1, |s| s.metadata_offset),
            want_fence: false,
            want_shutdown: true,
        });
        let _ = futures_lite::future::or(
            async { self.controller_request(request).await.map(drop) },
            async {
                glommio::timer::sleep(Duration::from_secs(2)).await;
                Err(String::new())
            },
        )
        .await;
    }

    /// The controller APIs and DescribeCluster.
    pub(crate) async fn cluster_request(&self, request: Request) -> Response {
        match request {
            Request::RaftMessage(r) => self.raft_message(r).into(),
            Request::DescribeCluster(_) => self.describe_cluster().into(),
            Request::BrokerRegistration(r) => self.register(r).await.into(),
            Request::BrokerHeartbeat(r) => self.broker_heartbeat(r).await.into(),
            Request::AlterPartition(r) => self.alter_partition_here(r).await.into(),
            _ => Response::Rejected(ErrorCode::InvalidRequest),
        }
    }

    fn raft_message(&self, r: RaftMessageRequest) -> RaftMessageResponse {
        let error_code = match self.controller_shell() {
            None => ErrorCode::NotController,
            Some(shell) => match shell.receive(&r.message) {
                Ok(()) => ErrorCode::None,
                Err(_) => ErrorCode::InvalidRequest,
            },
        };
        RaftMessageResponse { error_code }
    }

    fn describe_cluster(&self) -> DescribeClusterResponse {
        let snapshot = self
            .controller_shell()
            .map(|s| s.snapshot())
            .or_else(|| self.snapshot());
        match snapshot {
            Some(s) => DescribeClusterResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                cluster_id: self.config.cluster_id.clone(),
                controller_id: s.controller_id,
                metadata_offset: s.metadata_offset,
                image: s.image.encode_image().into(),
            },
            None => DescribeClusterResponse {
                throttle_time_ms: 0,
                error_code: if self.clustered() {
                    ErrorCode::LeaderNotAvailable
                } else {
                    ErrorCode::None
                },
                error_message: self
                    .clustered()
                    .then(|| "this broker has no cluster metadata yet".to_string()),
                cluster_id: self.config.cluster_id.clone(),
                controller_id: -1,
                metadata_offset: -1,
                image: Default::default(),
            },
        }
    }

    async fn register(&self, r: BrokerRegistrationRequest) -> BrokerRegistrationResponse {
        let failed = |(code, message): (ErrorCode, String)| BrokerRegistrationResponse {
            throttle_time_ms: 0,
            error_code: code,
            error_message: Some(message),
            broker_epoch: -1,
        };
        let Some(shell) = self.controller_shell() else {
            return failed((ErrorCode::NotController, "not a controller".into()));
        };
        let id = r.broker_id;
        let incarnation = r.incarnation_id as u64;
        let decided = shell
            .decide(move |c, now| {
                c.register_broker(
                    id,
                    incarnation,
                    &r.listener,
                    r.rack.as_deref(),
                    r.shards,
                    now,
                )
            })
            .await;
        if let Err(e) = decided {
            return failed(decide_code(&e));
        }
        match shell.snapshot().image.broker(id) {
            Some(b) if b.incarnation == incarnation => BrokerRegistrationResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                broker_epoch: b.epoch,
            },
            _ => failed((
                ErrorCode::NotController,
                "the registration was not applied; retry".into(),
            )),
        }
    }

    async fn broker_heartbeat(&self, r: BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
        let failed = |(code, message): (ErrorCode, String)| BrokerHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: code,
            error_message: Some(message),
            is_caught_up: false,
            is_fenced: true,
            should_shutdown: false,
        };
        let Some(shell) = self.controller_shell() else {
            return failed((ErrorCode::NotController, "not a controller".into()));
        };
        let id = r.broker_id;
        let incarnation = r.incarnation_id as u64;
        let caught_up = r.metadata_offset >= 0;
        let shutdown = r.want_shutdown;
        let decided = shell
            .decide(move |c, now| {
                if shutdown {
                    c.shutdown_broker(id, incarnation)
                } else {
                    c.heartbeat(id, incarnation, caught_up, now)
                }
            })
            .await;
        if let Err(e) = decided {
            return failed(decide_code(&e));
        }
        let fenced = shell.snapshot().image.broker(id).is_none_or(|b| b.fenced);
        BrokerHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None,
            error_message: None,
            is_caught_up: caught_up,
            is_fenced: fenced,
            should_shutdown: shutdown,
        }
    }

    async fn alter_partition_here(&self, r: AlterPartitionRequest) -> AlterPartitionResponse {
        let Some(shell) = self.controller_shell() else {
            return AlterPartitionResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::NotController,
                topics: Vec::new(),
            };
        };
        let mut topics = Vec::with_capacity(r.topics.len());
        for t in r.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let (broker, name, index) = (r.broker_id, t.name.clone(), p.partition);
                let (le, pe, isr) = (p.leader_epoch, p.partition_epoch, p.new_isr.clone());
                let decided = shell
                    .decide(move |c, _| c.alter_partition(broker, &name, index, le, pe, &isr))
                    .await;
                let snapshot = shell.snapshot();
                let state = snapshot.image.partition(&t.name, p.partition);
                let error_code = match &decided {
                    Ok(()) => ErrorCode::None,
                    Err(e) => decide_code(e).0,
                };
                partitions.push(AlterPartitionPartitionResponse {
                    partition: p.partition,
                    error_code,
                    leader_id: state.and_then(|s| s.leader).unwrap_or(-1),
                    leader_epoch: state.map_or(-1, |s| s.leader_epoch),
                    isr: state.map(|s| s.isr.clone()).unwrap_or_default(),
                    partition_epoch: state.map_or(-1, |s| s.partition_epoch),
                });
            }
            topics.push(AlterPartitionTopicResponse {
                name: t.name,
                partitions,
            });
        }
        AlterPartitionResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None,
            topics,
        }
    }

    /// A topic change in a cluster: decided by the active controller (here, or forwarded to
    /// it); answered once this broker's image shows it.
    pub(crate) async fn cluster_admin(&self, request: Request) -> Response {
        // During an election (e.g. just after start) wait a little for a leader.
        let deadline = std::time::Instant::now() + ADMIN_WAIT;
        let (leader_here, known) = loop {
            let leader_here = self.controller_shell().is_some_and(|s| s.is_leader());
            let known = self
                .controller_shell()
                .map(|s| s.snapshot())
                .or_else(|| self.snapshot())
                .map_or(-1, |s| s.controller_id);
            let settled = leader_here || (known >= 0 && known != self.config.node_id);
            if settled || std::time::Instant::now() >= deadline || self.stopping.is_set() {
                break (leader_here, known);
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        };
        if !leader_here {
            if known < 0 || known == self.config.node_id {
                return Response::Rejected(ErrorCode::NotController);
            }
            let forwarded = self.controller_request(request.clone()).await;
            let Ok(response) = forwarded else {
                return Response::Rejected(ErrorCode::NotController);
            };
            self.await_image(&request, &response).await;
            return response;
        }
        let response = match request.clone() {
            Request::CreateTopics(r) => self.create_topics_in_cluster(r).await.into(),
            Request::DeleteTopics(r) => self.delete_topics_in_cluster(r).await.into(),
            Request::AlterTopicConfigs(r) => self.alter_topic_configs_in_cluster(r).await.into(),
            _ => Response::Rejected(ErrorCode::InvalidRequest),
        };
        self.await_image(&request, &response).await;
        response
    }

    /// Waits (bounded) until the image this shard follows reflects a topic change that
    /// `response` reports made.
    async fn await_image(&self, request: &Request, response: &Response) {
        let deadline = std::time::Instant::now() + ADMIN_WAIT;
        loop {
            let done = match (request, self.snapshot()) {
                (_, None) => false,
                (Request::CreateTopics(r), Some(s)) => {
                    r.topics.iter().all(|t| s.image.topic(&t.name).is_some())
                }
                (Request::DeleteTopics(r), Some(s)) => {
                    r.names.iter().all(|n| s.image.topic(n).is_none())
                }
                (Request::AlterTopicConfigs(r), Some(s)) => {
                    r.validate_only || self.shows_config_changes(&s.image, r, response)
                }
                _ => true,
            };
            if done || std::time::Instant::now() >= deadline || self.stopping.is_set() {
                return;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn create_topics_in_cluster(&self, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let Some(shell) = self.controller_shell() else {
            return CreateTopicsResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
        };
        let mut results = Vec::with_capacity(request.topics.len());
        for t in &request.topics {
            let failed = |code, message: String| CreatedTopic {
                name: t.name.clone(),
                error_code: code,
                error_message: Some(message),
                partition_count: -1,
                replication_factor: -1,
            };
            if t.partition_count != -1 && !(1..=PARTITIONS_MAX).contains(&t.partition_count) {
                results.push(failed(
                    ErrorCode::InvalidPartitions,
                    format!(
                        "partition count {} is outside 1..={PARTITIONS_MAX} (or -1 for the default)",
                        t.partition_count
                    ),
                ));
                continue;
            }
            let configs = match self.parse_overrides(&BTreeMap::new(), &t.configs, false) {
                Ok(c) => c,
                Err((code, message)) => {
                    results.push(failed(code, message));
                    continue;
                }
            };
            let resolved = match TopicConfig::resolve(
                &self.config.topic_defaults.config,
                &configs,
                self.config.max_message_bytes_max(),
            ) {
                Ok(c) => c,
                Err(e) => {
                    results.push(failed(ErrorCode::InvalidConfig, e.to_string()));
                    continue;
                }
            };
            let controller_config = ClusterTopicConfig {
                min_insync_replicas: resolved.min_insync_replicas,
                unclean_leader_election: resolved.unclean_leader_election_enable,
            };
            let name = t.name.clone();
            let partitions = (t.partition_count != -1).then_some(t.partition_count);
            let rf = (t.replication_factor != -1).then_some(i32::from(t.replication_factor));
            let validate_only = request.validate_only;
            let keys = configs.clone();
            // Brokers still joining (registered but fenced until their first heartbeat, or
            // none live yet, as just after start) are waited for, a bounded time.
            let deadline = std::time::Instant::now() + ADMIN_WAIT;
            while std::time::Instant::now() < deadline && !self.stopping.is_set() {
                let image = shell.snapshot();
                let live = image.image.live_brokers().len();
                let joining = image.image.brokers().any(|b| b.fenced);
                let wanted = rf.unwrap_or(
                    self.config
                        .cluster
                        .as_ref()
                        .map_or(1, |c| c.default_replication_factor),
                );
                if live >= usize::try_from(wanted).unwrap_or(0) || (live > 0 && !joining) {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
            let decided = shell
                .decide(move |c, _| {
                    let mut records = c.create_topic(&name, partitions, rf, controller_config)?;
                    if validate_only {
                        return Ok(Vec::new());
                    }
                    let topic_id = records.iter().find_map(|r| match r {
                        MetadataRecord::CreateTopic { topic_id, .. } => Some(*topic_id),
                        _ => None,
                    });
                    if let (Some(topic_id), false) = (topic_id, keys.is_empty()) {
                        records.push(MetadataRecord::AlterTopicConfigs {
                            name: name.clone(),
                            topic_id,
                            configs: keys,
                            config: None,
                        });
                    }
                    Ok(records)
                })
                .await;
            match decided {
                Ok(()) => {
                    let image = shell.snapshot();
                    let topic = image.image.topic(&t.name);
                    results.push(CreatedTopic {
                        name: t.name.clone(),
                        error_code: ErrorCode::None,
                        error_message: None,
                        partition_count: topic.map_or(t.partition_count, |t| t.partition_count()),
                        replication_factor: topic
                            .and_then(|t| t.partitions.first())
                            .map_or(t.replication_factor, |p| {
                                i16::try_from(p.replicas.len()).unwrap_or(i16::MAX)
                            }),
                    });
                }
                Err(e) => {
                    let (code, message) = decide_code(&e);
                    results.push(failed(code, message));
                }
            }
        }
        CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }

    /// Whether `image` shows every change of `request` that `response` reports made: applying
    /// the topic's entries to the keys the image has for it changes nothing.
    fn shows_config_changes(
        &self,
        image: &ClusterMetadata,
        request: &AlterTopicConfigsRequest,
        response: &Response,
    ) -> bool {
        let Response::AlterTopicConfigs(answer) = response else {
            return true;
        };
        let made = |name: &str| {
            answer
                .topics
                .iter()
                .any(|t| t.name == name && t.error_code == ErrorCode::None)
        };
        request
            .topics
            .iter()
            .filter(|t| made(&t.name))
            .all(|t| match image.topic(&t.name) {
                // Deleted since: nothing more will show.
                None => true,
                Some(topic) => self
                    .parse_overrides(&topic.configs, &t.configs, true)
                    .is_ok_and(|after| after == topic.configs),
            })
    }

    /// AlterTopicConfigs on the active controller: each topic checked as on a single broker,
    /// then decided as one `AlterTopicConfigs` record carrying the new keys and, when
    /// `min.insync.replicas` or `unclean.leader.election.enable` change, the controller's
    /// settings resolved from them. Every broker's log settings follow through the image.
    async fn alter_topic_configs_in_cluster(
        &self,
        request: AlterTopicConfigsRequest,
    ) -> AlterTopicConfigsResponse {
        let Some(shell) = self.controller_shell() else {
            return AlterTopicConfigsResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
        };
        let mut results = Vec::with_capacity(request.topics.len());
        let mut seen = HashSet::new();
        for t in &request.topics {
            let snapshot = shell.snapshot();
            let current = snapshot.image.topic(&t.name).map(|topic| &topic.configs);
            let checked = self
                .altered_configs(&mut seen, t, current)
                .and_then(|configs| {
                    let resolved = TopicConfig::resolve(
                        &self.config.topic_defaults.config,
                        &configs,
                        self.config.max_message_bytes_max(),
                    )
                    .map_err(|e| (ErrorCode::InvalidConfig, e.to_string()))?;
                    let controller_config = ClusterTopicConfig {
                        min_insync_replicas: resolved.min_insync_replicas,
                        unclean_leader_election: resolved.unclean_leader_election_enable,
                    };
                    Ok((configs, controller_config))
                });
            let (error_code, error_message) = match checked {
                Err((code, message)) => (code, Some(message)),
                Ok((configs, controller_config)) => {
                    let name = t.name.clone();
                    let validate_only = request.validate_only;
                    let decided = shell
                        .decide(move |c, _| {
                            let records =
                                c.alter_topic_configs(&name, configs, controller_config)?;
                            Ok(if validate_only { Vec::new() } else { records })
                        })
                        .await;
                    match decided {
                        Ok(()) => (ErrorCode::None, None),
                        Err(e) => {
                            let (code, message) = decide_code(&e);
                            (code, Some(message))
                        }
                    }
                }
            };
            results.push(TopicResult {
                name: t.name.clone(),
                error_code,
                error_message,
            });
        }
        AlterTopicConfigsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }

    async fn delete_topics_in_cluster(&self, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
        let Some(shell) = self.controller_shell() else {
            return DeleteTopicsResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
        };
        let mut results = Vec::with_capacity(request.names.len());
        for name in request.names {
            if name == crate::group::OFFSETS_TOPIC {
                results.push(TopicResult {
                    error_message: Some(format!(
                        "'{name}' holds the committed offsets of every consumer group and cannot be deleted"
                    )),
                    name,
                    error_code: ErrorCode::PolicyViolation,
                });
                continue;
            }
            let n = name.clone();
            let decided = shell.decide(move |c, _| c.delete_topic(&n)).await;
            let (error_code, error_message) = match decided {
                Ok(()) => (ErrorCode::None, None),
                Err(e) => {
                    let (code, message) = decide_code(&e);
                    (code, Some(message))
                }
            };
            results.push(TopicResult {
                name,
                error_code,
                error_message,
            });
        }
        DeleteTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }

    /// Runs a [`Call::Cluster`] from shard 0.
    pub(crate) async fn cluster_call(self: &Rc<Self>, snapshot: Arc<ClusterSnapshot>) -> Reply {
        self.adopt_cluster(snapshot).await;
        Reply::Wait
    }
}

/// Whether an image at `next` (metadata offset, controller id) replaces the one adopted at
/// `last`. Every controller applies the same metadata log, so a higher offset is a newer image
/// and an equal one the same image (only the controller may differ). A lower one comes from a
/// controller that is behind: adopting it would undo changes this broker already acted on,
/// such as closing (and removing) the replicas of a topic it does not know yet.
fn supersedes(last: Option<(i64, i32)>, next: (i64, i32)) -> bool {
    match last {
        None => true,
        Some((offset, controller)) => next.0 > offset || (next.0 == offset && next.1 != controller),
    }
}

/// Shard 0's sweep of replica directories this broker no longer hosts: those of topics
/// deleted, or deleted and created again, while it was down. Only directories with a mark
/// (see [`super::replica_dir`]) are judged; the sweep runs after every shard adopted an image,
/// at the first image and whenever the set of topics changed, and again on later images while
/// a directory waits for one newer than its mark.
#[derive(Default)]
struct StraySweep {
    /// (topics created, topics) of the image last swept with.
    seen: Option<(u64, usize)>,
    /// A directory waited for a newer image.
    waiting: bool,
}

impl StraySweep {
    fn run(&mut self, data_dir: &std::path::Path, me: i32, snapshot: &ClusterSnapshot) {
        let image = &snapshot.image;
        let key = (image.topics_created(), image.topics().count());
        if self.seen == Some(key) && !self.waiting {
            return;
        }
        self.seen = Some(key);
        self.waiting = false;
        let entries = match std::fs::read_dir(data_dir) {
            Ok(entries) => entries,
            Err(e) => {
                eprintln!("quiver: listing {}: {e}", data_dir.display());
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((topic, partition)) = name
                .rsplit_once('-')
                .and_then(|(t, p)| Some((t, p.parse::<i32>().ok()?)))
            else {
                continue;
            };
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let mark = match super::replica_dir::read(&dir) {
                Ok(Some(mark)) => mark,
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("quiver: {e}: left alone");
                    continue;
                }
            };
            let hosted = image
                .topic(topic)
                .filter(|t| {
                    t.partition(partition)
                        .is_some_and(|p| p.replicas.contains(&me))
                })
                .map(|t| t.id);
            match super::replica_dir::judge(Some(&mark), hosted, snapshot.metadata_offset) {
                super::replica_dir::Verdict::Keep => {}
                super::replica_dir::Verdict::Wait => self.waiting = true,
                super::replica_dir::Verdict::Wipe => {
                    eprintln!(
                        "quiver: {} holds topic id {}, which this broker no longer hosts: removing it",
                        dir.display(),
                        mark.topic_id
                    );
                    if let Err(e) = super::registry::remove_partition_dir(data_dir, &dir) {
                        eprintln!("quiver: removing {}: {e}", dir.display());
                    }
                }
            }
        }
    }
}

/// A live broker as Metadata describes it.
pub(crate) struct BrokerAddress {
    /// Its id.
    pub id: i32,
    /// Its host.
    pub host: String,
    /// Its base port (shard 0's).
    pub port: u16,
    /// How many shards it runs.
    pub shards: u16,
}

/// The live brokers of an image with their `host`, base port and shard count, for Metadata.
pub(crate) fn broker_addresses(image: &ClusterMetadata) -> Vec<BrokerAddress> {
    image
        .brokers()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let (host, port) = b.listener.rsplit_once(':')?;
            Some(BrokerAddress {
                id: b.id,
                host: host.to_string(),
                port: port.parse().ok()?,
                shards: u16::try_from(b.shards).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_from_a_controller_that_is_behind_is_not_adopted() {
        assert!(supersedes(None, (-1, -1)));
        assert!(supersedes(Some((10, 1)), (11, 1)));
        // The same offset: the same image, perhaps from a new controller.
        assert!(!supersedes(Some((10, 1)), (10, 1)));
        assert!(supersedes(Some((10, 1)), (10, 2)));
        // Older: a topic created since would vanish from this broker.
        assert!(!supersedes(Some((10, 1)), (9, 2)));
        assert!(!supersedes(Some((10, 1)), (9, 1)));
    }
}
