//! The admin and metadata handlers: Metadata, ListTopics, DescribeTopics (from any shard's copy
//! of the topic table, offsets from the owners), and CreateTopics, DeleteTopics and
//! AlterTopicConfigs (run on shard 0, which owns the registry; see [`super::registry`] for the
//! crash-safe deletion protocol).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use quiver_transport::protocol::{
    AlterTopicConfigsRequest, AlterTopicConfigsResponse, AlterableTopic, BrokerMetadata,
    CreateTopicsRequest, CreateTopicsResponse, CreatedTopic, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeTopicsRequest, DescribeTopicsResponse, DescribedConfig,
    ErrorCode, ListTopicsRequest, ListTopicsResponse, ListedTopic, MetadataRequest,
    MetadataResponse, PartitionDescription, PartitionMetadata, Request, Response, TopicDescription,
    TopicMetadata, TopicResult,
};

use super::config::{TopicConfig, CONFIG_KEYS};
use super::errors::WireError;
use super::registry::{
    remove_partition_dirs, validate_topic_name, write_durably, TopicMeta, TopicTable,
    PARTITIONS_MAX,
};
use super::{Call, Reply, ShardBroker};
use crate::group::OFFSETS_TOPIC;
use crate::shard::shard_for;
use crate::shard::sync::{join_all, LocalBoxFuture};

/// Whether a topic is internal (Kafka's convention: a `__` prefix).
fn unknown_topic(name: String) -> TopicMetadata {
    TopicMetadata {
        error_code: ErrorCode::UnknownTopicOrPartition,
        is_internal: is_internal(&name),
        name,
        partitions: Vec::new(),
    }
}

fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

fn topic_result(name: &str, error: Option<WireError>) -> TopicResult {
    match error {
        None => TopicResult {
            name: name.to_string(),
            error_code: ErrorCode::None,
            error_message: None,
        },
        Some((code, message)) => TopicResult {
            name: name.to_string(),
            error_code: code,
            error_message: Some(message),
        },
    }
}

/// Runs blocking file-system work off the shard, on glommio's blocking thread pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(work).await
}

impl ShardBroker {
    /// Metadata: the broker and, per partition, its leader and the owning shard's port.
    pub(crate) fn metadata(&self, request: MetadataRequest) -> MetadataResponse {
        if self.clustered() {
            return self.cluster_metadata(request);
        }
        let topics = self.topics();
        let names: Vec<String> = match request.topics {
            None => topics.keys().cloned().collect(),
            Some(names) => names,
        };
        let node = self.config.node_id;
        let host = self.config.advertised_host.clone();
        let port = self.config.base_port;
        let topics_out = names
            .into_iter()
            .map(|name| match topics.get(&name) {
                None => unknown_topic(name),
                Some(state) => TopicMetadata {
                    error_code: ErrorCode::None,
                    is_internal: is_internal(&name),
                    partitions: (0..state.meta.partitions)
                        .map(|p| {
                            let shard = self.shard_of(&name, p);
                            PartitionMetadata {
                                error_code: ErrorCode::None,
                                partition: p,
                                leader_id: node,
                                leader_epoch: 0,
                                leader_host: host.clone(),
                                leader_port: port,
                                leader_shard: shard,
                                leader_shard_port: port.saturating_add(shard),
                                replicas: vec![node],
                                isr: vec![node],
                            }
                        })
                        .collect(),
                    name,
                },
            })
            .collect();
        MetadataResponse {
            throttle_time_ms: 0,
            cluster_id: self.config.cluster_id.clone(),
            controller_id: node,
            brokers: vec![BrokerMetadata {
                broker_id: node,
                host,
                port,
                shard_count: u16::try_from(self.config.shard_count).unwrap_or(u16::MAX),
            }],
            topics: topics_out,
        }
    }

    /// The shard of this broker that owns `name`-`p`.
    fn shard_of(&self, name: &str, p: i32) -> u16 {
        let shard = shard_for(name, p, self.config.shard_count);
        // validate() keeps base_port + shard_count - 1 within u16.
        u16::try_from(shard).unwrap_or(u16::MAX)
    }

    /// Metadata from the cluster image: live brokers with their own shard counts, and each
    /// partition's leader with the leader's shard for it (by the leader's shard count, which
    /// may differ from this broker's).
    fn cluster_metadata(&self, request: MetadataRequest) -> MetadataResponse {
        let snapshot = self.snapshot();
        let image = snapshot.as_ref().map(|s| &s.image);
        let brokers: Vec<super::cluster::BrokerAddress> = image
            .map(super::cluster::broker_addresses)
            .unwrap_or_default();
        let names: Vec<String> = match (request.topics, image) {
            (Some(names), _) => names,
            (None, Some(image)) => image.topics().map(|t| t.name.clone()).collect(),
            (None, None) => Vec::new(),
        };
        let topics_out = names
            .into_iter()
            .map(|name| match image.and_then(|i| i.topic(&name)) {
                None => unknown_topic(name),
                Some(topic) => TopicMetadata {
                    error_code: ErrorCode::None,
                    is_internal: is_internal(&name),
                    partitions: (0..)
                        .zip(&topic.partitions)
                        .map(|(p, state)| {
                            let leader = state
                                .leader
                                .and_then(|l| brokers.iter().find(|b| b.id == l));
                            let shard = leader.map_or(0, |b| {
                                let shard = shard_for(&name, p, usize::from(b.shards.max(1)));
                                // The controller admits only shard ports within u16.
                                u16::try_from(shard).unwrap_or(u16::MAX)
                            });
                            PartitionMetadata {
                                error_code: if leader.is_some() {
                                    ErrorCode::None
                                } else {
                                    ErrorCode::LeaderNotAvailable
                                },
                                partition: p,
                                leader_id: leader.map_or(-1, |b| b.id),
                                leader_epoch: state.leader_epoch,
                                leader_host: leader.map(|b| b.host.clone()).unwrap_or_default(),
                                leader_port: leader.map_or(0, |b| b.port),
                                leader_shard: shard,
                                leader_shard_port: leader
                                    .map_or(0, |b| b.port.saturating_add(shard)),
                                replicas: state.replicas.clone(),
                                isr: state.isr.clone(),
                            }
                        })
                        .collect(),
                    name,
                },
            })
            .collect();
        MetadataResponse {
            throttle_time_ms: 0,
            cluster_id: self.config.cluster_id.clone(),
            controller_id: snapshot.as_ref().map_or(-1, |s| s.controller_id),
            brokers: brokers
                .iter()
                .map(|b| BrokerMetadata {
                    broker_id: b.id,
                    host: b.host.clone(),
                    port: b.port,
                    shard_count: b.shards,
                })
                .collect(),
            topics: topics_out,
        }
    }

    /// ListTopics, sorted by name.
    pub(crate) fn list_topics(&self, request: ListTopicsRequest) -> ListTopicsResponse {
        ListTopicsResponse {
            throttle_time_ms: 0,
            topics: self
                .topics()
                .iter()
                .filter(|(name, _)| request.include_internal || !is_internal(name))
                .map(|(name, state)| ListedTopic {
                    name: name.clone(),
                    partition_count: state.meta.partitions,
                    replication_factor: state.meta.replication_factor,
                    is_internal: is_internal(name),
                })
                .collect(),
        }
    }

    /// DescribeTopics: effective configs, and per partition the offsets from its owner.
    pub(crate) async fn describe_topics(
        &self,
        request: DescribeTopicsRequest,
    ) -> DescribeTopicsResponse {
        let topics = self.topics();
        let mut jobs = Vec::new();
        for name in &request.names {
            if let Some(state) = topics.get(name) {
                for p in 0..state.meta.partitions {
                    let owner = shard_for(name, p, self.config.shard_count);
                    jobs.push((owner, (name.clone(), p)));
                }
            }
        }
        let node = self.config.node_id;
        let mut described = self
            .scatter(
                jobs,
                &|ps| {
                    let r = self.describe_local(&ps);
                    Box::pin(async move { r })
                },
                &|ps| Call::Describe(ps),
                |reply| match reply {
                    Reply::Describe(r) => Some(r),
                    _ => None,
                },
                &|(_, p), _| offline_description(*p, node, ErrorCode::NotLeaderOrFollower),
            )
            .await
            .into_iter();
        let topics_out = request
            .names
            .into_iter()
            .map(|name| match topics.get(&name) {
                None => TopicDescription {
                    error_code: ErrorCode::UnknownTopicOrPartition,
                    error_message: Some(format!("unknown topic '{name}'")),
                    is_internal: is_internal(&name),
                    name,
                    configs: Vec::new(),
                    partitions: Vec::new(),
                },
                Some(state) => TopicDescription {
                    error_code: ErrorCode::None,
                    error_message: None,
                    is_internal: is_internal(&name),
                    configs: CONFIG_KEYS
                        .iter()
                        .map(|key| DescribedConfig {
                            name: key.to_string(),
                            value: state.config.get(key),
                            is_default: !state.meta.configs.contains_key(*key),
                        })
                        .collect(),
                    partitions: described
                        .by_ref()
                        .take(usize::try_from(state.meta.partitions).unwrap_or(0))
                        .collect(),
                    name,
                },
            })
            .collect();
        DescribeTopicsResponse {
            throttle_time_ms: 0,
            topics: topics_out,
        }
    }

    /// Offsets of partitions owned by this shard.
    pub(crate) fn describe_local(&self, parts: &[(String, i32)]) -> Vec<PartitionDescription> {
        let node = self.config.node_id;
        parts
            .iter()
            .map(|(topic, p)| match self.local_partition(topic, *p) {
                Ok(partition) => {
                    // In a cluster: the image's view of the partition, offsets of this replica.
                    let state = self
                        .snapshot()
                        .and_then(|s| s.image.partition(topic, *p).cloned());
                    PartitionDescription {
                        partition: *p,
                        error_code: ErrorCode::None,
                        leader_id: state.as_ref().map_or(node, |s| s.leader.unwrap_or(-1)),
                        leader_epoch: state.as_ref().map_or(0, |s| s.leader_epoch),
                        replicas: state.as_ref().map_or(vec![node], |s| s.replicas.clone()),
                        isr: state.as_ref().map_or(vec![node], |s| s.isr.clone()),
                        log_start_offset: partition.log_start_offset(),
                        log_end_offset: partition.log_end_offset(),
                        high_watermark: partition.high_watermark(),
                    }
                }
                Err((code, _)) => offline_description(*p, node, code),
            })
            .collect()
    }

    /// CreateTopics, DeleteTopics, AlterTopicConfigs: run on shard 0 (forwarded from others).
    pub(crate) async fn admin(&self, request: Request) -> Response {
        if self.registry.is_some() {
            return self.admin_here(request).await;
        }
        match self.call(0, Call::Admin(request)).await {
            Ok(Reply::Admin(response)) => response,
            // Shard 0 is stopping: no topic change can be made now.
            _ => Response::Rejected(ErrorCode::LeaderNotAvailable),
        }
    }

    /// Runs an admin request here, on shard 0, one at a time.
    pub(crate) async fn admin_here(&self, request: Request) -> Response {
        if self.registry.is_none() || self.stopping.is_set() {
            return Response::Rejected(ErrorCode::LeaderNotAvailable);
        }
        let Ok(_serial) = self.admin_lock.acquire_permit(1).await else {
            return Response::Rejected(ErrorCode::LeaderNotAvailable);
        };
        if self.clustered() {
            return self.cluster_admin(request).await;
        }
        match request {
            Request::CreateTopics(r) => self.create_topics(r).await.into(),
            Request::DeleteTopics(r) => self.delete_topics(r).await.into(),
            Request::AlterTopicConfigs(r) => self.alter_topic_configs(r).await.into(),
            _ => Response::Rejected(ErrorCode::InvalidRequest),
        }
    }

    pub(crate) fn parse_overrides(
        &self,
        base: &BTreeMap<String, String>,
        entries: &[quiver_transport::protocol::ConfigEntry],
        null_resets: bool,
    ) -> Result<BTreeMap<String, String>, WireError> {
        let mut overrides = base.clone();
        let mut seen = HashSet::new();
        let max = self.config.max_message_bytes_max();
        for entry in entries {
            let invalid = |m: String| (ErrorCode::InvalidConfig, m);
            if !seen.insert(entry.name.as_str()) {
                return Err(invalid(format!("config '{}': named twice", entry.name)));
            }
            match &entry.value {
                Some(value) => {
                    let canonical = TopicConfig::default()
                        .set(&entry.name, value, max)
                        .map_err(|e| invalid(e.to_string()))?;
                    overrides.insert(entry.name.clone(), canonical);
                }
                None if null_resets => {
                    if !CONFIG_KEYS.contains(&entry.name.as_str()) {
                        return Err(invalid(format!(
                            "config '{}': unknown config key (known: {})",
                            entry.name,
                            CONFIG_KEYS.join(", ")
                        )));
                    }
                    overrides.remove(&entry.name);
                }
                None => {
                    return Err(invalid(format!("config '{}': no value given", entry.name)));
                }
            }
        }
        TopicConfig::resolve(&self.config.topic_defaults.config, &overrides, max)
            .map_err(|e| (ErrorCode::InvalidConfig, e.to_string()))?;
        Ok(overrides)
    }

    /// Persists the registry as `next` and, only if that worked, adopts it; then sends the
    /// table to every shard and waits for them. Returns the partitions that failed to open.
    async fn commit(
        &self,
        next: super::registry::Registry,
    ) -> Result<Vec<(String, i32, String)>, String> {
        let bytes = next.encode();
        let dir: PathBuf = self.config.data_dir.clone();
        blocking(move || write_durably(&dir, &bytes))
            .await
            .map_err(|e| format!("persisting the topic registry failed: {e}"))?;
        let table = next.table.clone();
        if let Some(registry) = &self.registry {
            *registry.borrow_mut() = next;
        }
        Ok(self.broadcast(table).await)
    }

    /// Sends `table` to every shard (this one included) and waits for all of them.
    async fn broadcast(&self, table: TopicTable) -> Vec<(String, i32, String)> {
        let runs: Vec<LocalBoxFuture<'_, Vec<(String, i32, String)>>> =
            (0..self.config.shard_count)
                .map(|s| {
                    let table = table.clone();
                    Box::pin(async move {
                        if s == self.shard {
                            return self.apply(&table).await;
                        }
                        match self.call(s, Call::Apply(table)).await {
                            Ok(Reply::Apply(failures)) => failures,
                            Ok(Reply::Failed(reason)) => {
                                vec![(String::new(), -1, format!("shard {s}: {reason}"))]
                            }
                            Ok(_) => vec![(String::new(), -1, format!("shard {s}: bad reply"))],
                            Err(e) => vec![(String::new(), -1, e.to_string())],
                        }
                    }) as LocalBoxFuture<'_, _>
                })
                .collect();
        join_all(runs).await.into_iter().flatten().collect()
    }

    fn registry_snapshot(&self) -> Option<super::registry::Registry> {
        self.registry.as_ref().map(|r| r.borrow().clone())
    }

    async fn create_topics(&self, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let Some(mut next) = self.registry_snapshot() else {
            return CreateTopicsResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
        };
        let defaults = self.config.topic_defaults.partitions;
        let mut results: Vec<CreatedTopic> = Vec::new();
        let mut creating: Vec<(usize, String, TopicMeta)> = Vec::new();
        let mut seen = HashSet::new();
        for t in &request.topics {
            let checked = (|| -> Result<TopicMeta, WireError> {
                validate_topic_name(&t.name).map_err(|m| (ErrorCode::InvalidTopic, m))?;
                if !seen.insert(t.name.clone()) {
                    return Err((
                        ErrorCode::InvalidRequest,
                        format!("topic '{}' is named twice in the request", t.name),
                    ));
                }
                if next.table.topics.contains_key(&t.name) {
                    return Err((
                        ErrorCode::TopicAlreadyExists,
                        format!("topic '{}' already exists", t.name),
                    ));
                }
                if next.deleting.contains_key(&t.name) {
                    return Err((
                        ErrorCode::TopicAlreadyExists,
                        format!("topic '{}' is still being deleted", t.name),
                    ));
                }
                let partitions = if t.partition_count == -1 {
                    defaults
                } else {
                    t.partition_count
                };
                if !(1..=PARTITIONS_MAX).contains(&partitions) {
                    return Err((
                        ErrorCode::InvalidPartitions,
                        format!(
                            "partition count {} is outside 1..={PARTITIONS_MAX} (or -1 for the default)",
                            t.partition_count
                        ),
                    ));
                }
                if t.replication_factor != -1 && t.replication_factor != 1 {
                    return Err((
                        ErrorCode::InvalidReplicationFactor,
                        format!(
                            "replication factor {} is impossible on a single broker (use 1 or -1)",
                            t.replication_factor
                        ),
                    ));
                }
                let configs = self.parse_overrides(&BTreeMap::new(), &t.configs, false)?;
                Ok(TopicMeta {
                    partitions,
                    replication_factor: 1,
                    configs,
                    id: None,
                })
            })();
            match checked {
                Ok(meta) => {
                    results.push(CreatedTopic {
                        name: t.name.clone(),
                        error_code: ErrorCode::None,
                        error_message: None,
                        partition_count: meta.partitions,
                        replication_factor: meta.replication_factor,
                    });
                    creating.push((results.len() - 1, t.name.clone(), meta));
                }
                Err((code, message)) => results.push(CreatedTopic {
                    name: t.name.clone(),
                    error_code: code,
                    error_message: Some(message),
                    partition_count: -1,
                    replication_factor: -1,
                }),
            }
        }
        if request.validate_only || creating.is_empty() {
            return CreateTopicsResponse {
                throttle_time_ms: 0,
                topics: results,
            };
        }
        let fail = |results: &mut Vec<CreatedTopic>, i: usize, code, message: String| {
            results[i].error_code = code;
            results[i].error_message = Some(message);
            results[i].partition_count = -1;
            results[i].replication_factor = -1;
        };
        // A new topic starts empty: clear any stray directory its partitions would reuse.
        let mut registered = Vec::new();
        for (i, name, meta) in creating {
            let dir = self.config.data_dir.clone();
            let (n, count) = (name.clone(), meta.partitions);
            match blocking(move || remove_partition_dirs(&dir, &n, count)).await {
                Ok(()) => {
                    next.table.topics.insert(name.clone(), meta);
                    registered.push((i, name));
                }
                Err(e) => fail(
                    &mut results,
                    i,
                    ErrorCode::StorageError,
                    format!("clearing old data of '{name}' failed: {e}"),
                ),
            }
        }
        match self.commit(next).await {
            Err(message) => {
                for (i, _) in &registered {
                    fail(&mut results, *i, ErrorCode::StorageError, message.clone());
                }
            }
            Ok(failures) => {
                for (topic, p, reason) in failures {
                    if let Some((i, _)) = registered.iter().find(|(_, n)| *n == topic) {
                        results[*i].error_code = ErrorCode::StorageError;
                        results[*i].error_message = Some(format!(
                            "topic created, but partition {p} failed to open: {reason}"
                        ));
                    }
                }
            }
        }
        CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }

    async fn delete_topics(&self, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
        let Some(mut next) = self.registry_snapshot() else {
            return DeleteTopicsResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
        };
        let mut results = Vec::new();
        let mut doomed: Vec<(usize, String, i32)> = Vec::new();
        let mut seen = HashSet::new();
        for name in &request.names {
            if !seen.insert(name.as_str()) {
                results.push(topic_result(
                    name,
                    Some((
                        ErrorCode::InvalidRequest,
                        format!("topic '{name}' is named twice in the request"),
                    )),
                ));
                continue;
            }
            if name == OFFSETS_TOPIC {
                results.push(topic_result(
                    name,
                    Some((
                        ErrorCode::PolicyViolation,
                        format!("'{name}' holds the committed offsets of every consumer group and cannot be deleted"),
                    )),
                ));
                continue;
            }
            match next.table.topics.remove(name) {
                None => results.push(topic_result(
                    name,
                    Some((
                        ErrorCode::UnknownTopicOrPartition,
                        format!("unknown topic '{name}'"),
                    )),
                )),
                Some(meta) => {
                    next.deleting.insert(name.clone(), meta.partitions);
                    results.push(topic_result(name, None));
                    doomed.push((results.len() - 1, name.clone(), meta.partitions));
                }
            }
        }
        if doomed.is_empty() {
            return DeleteTopicsResponse {
                throttle_time_ms: 0,
                topics: results,
            };
        }
        // Step 1-2: persist the deletion, then every shard closes the partitions.
        if let Err(message) = self.commit(next).await {
            for (i, _, _) in &doomed {
                results[*i].error_code = ErrorCode::StorageError;
                results[*i].error_message = Some(message.clone());
            }
            return DeleteTopicsResponse {
                throttle_time_ms: 0,
                topics: results,
            };
        }
        // Step 3: remove the data; step 4: forget the deletion.
        let mut finished = Vec::new();
        for (i, name, partitions) in &doomed {
            let dir = self.config.data_dir.clone();
            let (n, count) = (name.clone(), *partitions);
            match blocking(move || remove_partition_dirs(&dir, &n, count)).await {
                Ok(()) => finished.push(name.clone()),
                Err(e) => {
                    results[*i].error_code = ErrorCode::StorageError;
                    results[*i].error_message = Some(format!(
                        "topic deleted, but removing its data failed ({e}); retried at the next start"
                    ));
                }
            }
        }
        if let Some(mut next) = self.registry_snapshot() {
            for name in &finished {
                next.deleting.remove(name);
            }
            let bytes = next.encode();
            let dir = self.config.data_dir.clone();
            // If this fails the deletion is finished again at the next start: harmless.
            if blocking(move || write_durably(&dir, &bytes)).await.is_ok() {
                if let Some(registry) = &self.registry {
                    *registry.borrow_mut() = next;
                }
            }
        }
        DeleteTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }

    /// Checks one topic's part of an AlterTopicConfigs and returns the keys set on the topic
    /// after the change: the topic is named once in the request (`seen` holds the names
    /// before it), exists (`current` is its keys now), keeps `__consumer_offsets` compacted
    /// and flushed, and every key and value is valid. The single-broker and the cluster path
    /// both check with this, so they refuse alike.
    pub(crate) fn altered_configs<'a>(
        &self,
        seen: &mut HashSet<&'a str>,
        topic: &'a AlterableTopic,
        current: Option<&BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, String>, WireError> {
        let name = topic.name.as_str();
        if !seen.insert(name) {
            return Err((
                ErrorCode::InvalidRequest,
                format!("topic '{name}' is named twice in the request"),
            ));
        }
        let Some(current) = current else {
            return Err((
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic '{name}'"),
            ));
        };
        if name == OFFSETS_TOPIC
            && topic
                .configs
                .iter()
                .any(|c| matches!(c.name.as_str(), "cleanup.policy" | "flush"))
        {
            return Err((
                ErrorCode::PolicyViolation,
                format!("'{OFFSETS_TOPIC}' must stay compacted and flushed on every commit"),
            ));
        }
        self.parse_overrides(current, &topic.configs, true)
    }

    async fn alter_topic_configs(
        &self,
        request: AlterTopicConfigsRequest,
    ) -> AlterTopicConfigsResponse {
        let Some(mut next) = self.registry_snapshot() else {
            return AlterTopicConfigsResponse {
                throttle_time_ms: 0,
                topics: Vec::new(),
            };
        };
        let mut results = Vec::new();
        let mut changed = Vec::new();
        let mut seen = HashSet::new();
        for t in &request.topics {
            let current = next.table.topics.get(&t.name).map(|meta| &meta.configs);
            match self.altered_configs(&mut seen, t, current) {
                Ok(overrides) => {
                    results.push(topic_result(&t.name, None));
                    changed.push((results.len() - 1, t.name.clone(), overrides));
                }
                Err(e) => results.push(topic_result(&t.name, Some(e))),
            }
        }
        if request.validate_only || changed.is_empty() {
            return AlterTopicConfigsResponse {
                throttle_time_ms: 0,
                topics: results,
            };
        }
        for (_, name, overrides) in &changed {
            if let Some(meta) = next.table.topics.get_mut(name) {
                meta.configs = overrides.clone();
            }
        }
        match self.commit(next).await {
            Err(message) => {
                for (i, _, _) in &changed {
                    results[*i].error_code = ErrorCode::StorageError;
                    results[*i].error_message = Some(message.clone());
                }
            }
            Ok(failures) => {
                for (topic, p, reason) in failures {
                    if let Some((i, _, _)) = changed.iter().find(|(_, n, _)| *n == topic) {
                        results[*i].error_code = ErrorCode::StorageError;
                        results[*i].error_message = Some(format!(
                            "config stored, but partition {p} did not take it: {reason}"
                        ));
                    }
                }
            }
        }
        AlterTopicConfigsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }
}

fn offline_description(partition: i32, node: i32, code: ErrorCode) -> PartitionDescription {
    PartitionDescription {
        partition,
        error_code: code,
        leader_id: node,
        leader_epoch: 0,
        replicas: vec![node],
        isr: vec![node],
        log_start_offset: -1,
        log_end_offset: -1,
        high_watermark: -1,
    }
}
