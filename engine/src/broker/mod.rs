//! The broker's request handlers, socket-free: a decoded protocol request in, the response out,
//! on N glommio shards that each own their partitions outright.
//!
//! Start-up: [`prepare`] (once, before the executors) validates the [`BrokerConfig`], loads the
//! topic registry (finishing interrupted deletions) and builds the cross-shard mesh; it returns
//! one [`ShardSeed`] per shard. On each shard's executor, [`ShardBroker::start`] joins the mesh,
//! opens the partitions placed on that shard ([`crate::shard::shard_for`]) and starts the
//! shard's flusher and retention tasks. The QUIC shell then calls
//! [`ShardBroker::handle_frame`] for every request frame and [`ShardBroker::shutdown`] on every
//! shard at the end.
//!
//! Routing: any shard accepts any request. Produce, Fetch, ListOffsets and DescribeTopics are
//! split per partition; parts owned elsewhere go to their owner as one mesh call per owner
//! shard, and the results are merged back in request order. Topic changes (Create, Delete,
//! AlterTopicConfigs) go to shard 0, which owns the registry: it persists the change, sends the
//! new [`TopicTable`] to every shard (itself included) and waits for each to open, close or
//! reconfigure its partitions before answering. Every shard keeps a read-only copy of the table
//! for routing and metadata.
//!
//! Durability of produce (`acks`): 0 answers nothing, 1 answers after the append, all (-1)
//! answers once the append is durable per the topic's `flush`: `always` syncs at once with a
//! group commit shared by concurrent producers ([`Partition::sync_through`]); `interval` waits
//! for the shard's flusher, which sleeps until the earliest partition flush deadline and is
//! woken by appends; `never` answers after the append. `timeout_ms` bounds the wait for
//! durability (RequestTimedOut; the data stays appended, as in Kafka).
//!
//! Lives on: [`prepare`] on the starting thread; everything else on its shard (`!Send`).

mod admin;
mod cluster;
pub mod cluster_config;
pub mod config;
pub mod controller_shell;
mod data;
pub mod errors;
mod group_cluster;
mod groups;
mod idempotence;
pub mod metrics;
pub mod producer_ids;
pub mod registry;
pub mod replica;
mod replica_dir;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::sync::Semaphore;
use glommio::task::JoinHandle;
use quiver_transport::protocol::{
    decode_request_frame, encode_response_frame, Acks, ApiKey, ApiVersionsResponse, ErrorCode,
    ListOffsetsPartitionResponse, OffsetForLeaderEpochPartitionResponse, OffsetSpec,
    PartitionDescription, ProducePartitionResponse, Request, RequestDecodeError, RequestHeader,
    Response, ResponseHeader,
};

use crate::cluster::metadata::TopicId;
use crate::group::{CoordinatorConfig, GroupCoordinator, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS};
use crate::log::{LogConfig, LogError};
use crate::partition::Partition;
use crate::shard::mesh::{full_mesh, CallHandler, Mesh, MeshSeed};
use crate::shard::sync::{join_all, Latch, LocalBoxFuture, Notify};
use crate::shard::{shard_for, MeshError};

pub use cluster_config::{parse_controllers, ClusterConfig, ControllerAddress, Peers};
pub use config::{ConfigError, FlushMode, TopicConfig, CONFIG_KEYS};
pub use groups::{offsets_partition_for, offsets_topic_configs, OFFSET_METADATA_BYTES_MAX};
pub use metrics::{render_prometheus, ApiMetrics, GroupMetrics, PartitionMetrics, ShardMetrics};
pub use registry::{TopicMeta, TopicTable, PARTITIONS_MAX, TOPIC_NAME_BYTES_MAX};

use errors::WireError;
use metrics::ShardStats;
use producer_ids::ProducerIdAllocator;
use registry::Registry;

/// Most shards a broker runs (Metadata carries the count as `u16`; a cluster's controller
/// refuses registrations above it).
pub const SHARD_COUNT_MAX: usize = crate::cluster::metadata::SHARDS_PER_BROKER_MAX as usize;
/// Bytes of a frame kept free for headers and per-partition fields: `max.message.bytes` may be
/// at most `frame_bytes_max` less this, so one batch always fits a fetch response.
pub const FRAME_OVERHEAD_RESERVE_BYTES: usize = 64 << 10;
/// Smallest `frame_bytes_max` the broker accepts.
pub const FRAME_BYTES_MIN: usize = 2 * FRAME_OVERHEAD_RESERVE_BYTES;
/// Batches one produce may carry for one partition.
pub const PRODUCE_BATCHES_PER_PARTITION_MAX: usize = 4096;
/// Partitions a shard opens at once at start-up or topic creation.
pub const OPEN_CONCURRENCY_MAX: usize = 16;
/// Default cap on a fetch's `max_wait_ms`.
pub const FETCH_WAIT_MAX_MS_DEFAULT: u32 = 30_000;
/// Default period of the retention and compaction pass (Kafka's
/// `log.retention.check.interval.ms`).
pub const RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// How long shutdown waits for each background task before cancelling it.
const SHUTDOWN_TASK_WAIT: Duration = Duration::from_secs(10);

/// Broker-wide defaults for new topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Partitions of a topic created with `partition_count = -1`.
    pub partitions: i32,
    /// The default value of every topic config key.
    pub config: TopicConfig,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            partitions: 1,
            config: TopicConfig::default(),
        }
    }
}

/// Configuration of one broker process. Plain data, `Clone + Send`.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's id (0 for a single node).
    pub node_id: i32,
    /// Data directory: partition directories, `meta/`, the probe file.
    pub data_dir: PathBuf,
    /// Shards (executors) the broker runs.
    pub shard_count: usize,
    /// Host Metadata tells clients to connect to.
    pub advertised_host: String,
    /// UDP port of shard 0; shard `s` listens on `base_port + s`.
    pub base_port: u16,
    /// Defaults of new topics.
    pub topic_defaults: TopicDefaults,
    /// Cap on a fetch's `max_wait_ms`.
    pub fetch_wait_max_ms: u32,
    /// Period of the retention and compaction pass, in milliseconds.
    pub retention_check_interval_ms: u64,
    /// Largest frame (after the length prefix), reported in ApiVersions.
    pub frame_bytes_max: usize,
    /// Template for the partition logs' non-topic settings (write chunk size, preallocation,
    /// caches, index interval); topic keys override their fields.
    pub log: LogConfig,
    /// Envelopes one cross-shard channel holds.
    pub mesh_channel_capacity: usize,
    /// Cluster id reported in Metadata, if any.
    pub cluster_id: Option<String>,
    /// Consumer-group coordinator settings (session timeout bounds, heartbeat interval, group
    /// size, default assignor).
    pub groups: CoordinatorConfig,
    /// Test hook: when `n > 0`, every n-th produce request (acks 1 or all) is appended as
    /// usual but gets no response (the stream is closed unanswered), so clients retry. Never
    /// set in production.
    pub fault_drop_produce_response_every: u32,
    /// Cluster membership; `None` runs a single broker that owns every partition.
    pub cluster: Option<ClusterConfig>,
}

impl BrokerConfig {
    /// Defaults for a single node with `shard_count` shards on `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, shard_count: usize) -> Self {
        BrokerConfig {
            node_id: 0,
            data_dir: data_dir.into(),
            shard_count,
            advertised_host: "127.0.0.1".into(),
            base_port: 9092,
            topic_defaults: TopicDefaults::default(),
            fetch_wait_max_ms: FETCH_WAIT_MAX_MS_DEFAULT,
            retention_check_interval_ms: RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            frame_bytes_max: quiver_transport::protocol::FRAME_BYTES_MAX_DEFAULT as usize,
            log: LogConfig::default(),
            mesh_channel_capacity: crate::shard::mesh::MESH_CHANNEL_CAPACITY_DEFAULT,
            cluster_id: None,
            groups: CoordinatorConfig::default(),
            fault_drop_produce_response_every: 0,
            cluster: None,
        }
    }

    /// Largest `max.message.bytes` a topic may have.
    pub fn max_message_bytes_max(&self) -> u64 {
        self.frame_bytes_max
            .saturating_sub(FRAME_OVERHEAD_RESERVE_BYTES) as u64
    }

    fn frame_bytes_max_u32(&self) -> u32 {
        u32::try_from(self.frame_bytes_max).unwrap_or(u32::MAX)
    }

    fn validate(&self) -> Result<(), BrokerError> {
        let bad = |m: String| Err(BrokerError::Config(m));
        if !(1..=SHARD_COUNT_MAX).contains(&self.shard_count) {
            return bad(format!(
                "shard_count {} is outside 1..={SHARD_COUNT_MAX}",
                self.shard_count
            ));
        }
        if usize::from(self.base_port) + self.shard_count - 1 > usize::from(u16::MAX) {
            return bad(format!(
                "base_port {} + {} shards runs past port 65535",
                self.base_port, self.shard_count
            ));
        }
        if self.frame_bytes_max < FRAME_BYTES_MIN || self.frame_bytes_max > u32::MAX as usize {
            return bad(format!(
                "frame_bytes_max {} is outside {FRAME_BYTES_MIN}..={}",
                self.frame_bytes_max,
                u32::MAX
            ));
        }
        if !(1..=PARTITIONS_MAX).contains(&self.topic_defaults.partitions) {
            return bad(format!(
                "default partitions {} is outside 1..={PARTITIONS_MAX}",
                self.topic_defaults.partitions
            ));
        }
        if self.retention_check_interval_ms == 0 {
            return bad("retention_check_interval_ms must be at least 1".into());
        }
        if self.mesh_channel_capacity == 0 {
            return bad("mesh_channel_capacity must be at least 1".into());
        }
        if let Some(cluster) = &self.cluster {
            cluster
                .validate(self.node_id)
                .map_err(BrokerError::Config)?;
        }
        // Every default must be a value a topic could set.
        let defaults = &self.topic_defaults.config;
        for key in CONFIG_KEYS {
            let text = defaults.get(key).unwrap_or_default();
            let mut probe = TopicConfig::default();
            if let Err(e) = probe.set(key, &text, self.max_message_bytes_max()) {
                return bad(format!("topic default {e}"));
            }
        }
        Ok(())
    }
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is unusable.
    #[error("invalid broker configuration: {0}")]
    Config(String),
    /// The data directory or the registry could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: io::Error,
    },
    /// A partition could not be opened (recovery failed).
    #[error("opening partition {partition}: {source}")]
    Partition {
        /// `topic-partition`.
        partition: String,
        /// The failure.
        source: LogError,
    },
    /// The seed belongs to a shard that already started, or the mesh failed.
    #[error("shard {shard}: {reason}")]
    Shard {
        /// The shard.
        shard: usize,
        /// Why.
        reason: String,
    },
}

/// Everything one shard needs to start. `Send`: built by [`prepare`], moved to the shard's
/// executor thread, consumed by [`ShardBroker::start`].
pub struct ShardSeed {
    shard: usize,
    config: BrokerConfig,
    table: TopicTable,
    registry: Option<Registry>,
    producer_ids: Option<ProducerIdAllocator>,
    mesh: MeshSeed<Call, Reply>,
}

impl ShardSeed {
    /// The shard this seed starts.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

/// Validates `config`, prepares the data directory and loads the topic registry (finishing
/// interrupted deletions), and builds the cross-shard mesh. Call once, before starting the
/// executors; returns one seed per shard, in shard order.
pub fn prepare(config: &BrokerConfig) -> Result<Vec<ShardSeed>, BrokerError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| BrokerError::Io {
        context: format!("creating data dir {}", config.data_dir.display()),
        source,
    })?;
    let mut registry = Registry::load(&config.data_dir).map_err(|source| BrokerError::Io {
        context: format!(
            "loading the topic registry in {}",
            config.data_dir.display()
        ),
        source,
    })?;
    if config.cluster.is_none() && !registry.table.topics.contains_key(OFFSETS_TOPIC) {
        registry.table.topics.insert(
            OFFSETS_TOPIC.to_string(),
            TopicMeta {
                partitions: OFFSETS_TOPIC_PARTITIONS,
                replication_factor: 1,
                configs: offsets_topic_configs(),
                id: None,
            },
        );
        registry
            .persist_blocking()
            .map_err(|source| BrokerError::Io {
                context: format!("creating {OFFSETS_TOPIC} in {}", config.data_dir.display()),
                source,
            })?;
    }
    build_topics(&registry.table, config)
        .map_err(|e| BrokerError::Config(format!("topic registry holds an invalid config: {e}")))?;
    let producer_ids = ProducerIdAllocator::open(&config.data_dir.join(registry::META_DIR))
        .map_err(|source| BrokerError::Io {
            context: format!("loading producer ids in {}", config.data_dir.display()),
            source,
        })?;
    // In a cluster the topics come from the controller's image, not the local registry.
    let table = if config.cluster.is_some() {
        TopicTable::default()
    } else {
        registry.table.clone()
    };
    let mut registry = Some(registry);
    let mut producer_ids = Some(producer_ids);
    let meshes = full_mesh::<Call, Reply>(config.shard_count, config.mesh_channel_capacity);
    Ok(meshes
        .into_iter()
        .enumerate()
        .map(|(shard, mesh)| ShardSeed {
            shard,
            config: config.clone(),
            table: table.clone(),
            registry: if shard == 0 { registry.take() } else { None },
            producer_ids: if shard == 0 {
                producer_ids.take()
            } else {
                None
            },
            mesh,
        })
        .collect())
}

/// The seed of a shard's coordinator (member ids): differs per shard and per start.
fn seed_for_shard(shard: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ ((shard as u64) << 48) ^ u64::from(std::process::id())
}

/// A topic as a shard sees it: registry entry plus effective config.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub meta: TopicMeta,
    pub config: TopicConfig,
    pub log: LogConfig,
}

pub(crate) type Topics = BTreeMap<String, Rc<TopicState>>;

fn build_topics(table: &TopicTable, config: &BrokerConfig) -> Result<Topics, ConfigError> {
    let mut topics = BTreeMap::new();
    for (name, meta) in &table.topics {
        let resolved = TopicConfig::resolve(
            &config.topic_defaults.config,
            &meta.configs,
            config.max_message_bytes_max(),
        )?;
        let log = resolved.log_config(&config.log);
        topics.insert(
            name.clone(),
            Rc::new(TopicState {
                meta: meta.clone(),
                config: resolved,
                log,
            }),
        );
    }
    Ok(topics)
}

/// One partition's part of a produce, as sent to its owner.
#[derive(Debug, Clone)]
pub(crate) struct ProducePart {
    pub topic: String,
    pub partition: i32,
    pub records: Bytes,
}

/// One partition's part of a fetch.
#[derive(Debug, Clone)]
pub(crate) struct ReadPart {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: usize,
    pub current_leader_epoch: i32,
    /// The fetching follower's broker id, -1 for a consumer.
    pub replica_id: i32,
}

/// What the owner read for one [`ReadPart`].
#[derive(Debug, Clone)]
pub(crate) struct PartRead {
    pub error_code: ErrorCode,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub batches: Vec<Bytes>,
}

/// One partition's lookup of a ListOffsets.
#[derive(Debug, Clone)]
pub(crate) struct OffsetsPart {
    pub topic: String,
    pub partition: i32,
    pub spec: OffsetSpec,
    pub current_leader_epoch: i32,
}

/// One partition's lookup of an OffsetForLeaderEpoch.
#[derive(Debug, Clone)]
pub(crate) struct EpochPart {
    pub topic: String,
    pub partition: i32,
    pub current_leader_epoch: i32,
    pub leader_epoch: i32,
}

/// A call from one shard to another. Owned, `Send` data only.
pub(crate) enum Call {
    /// Append these parts (all owned by the callee) and wait for `acks`.
    Produce {
        parts: Vec<ProducePart>,
        acks: Acks,
        timeout_ms: u64,
    },
    /// Read these parts now.
    Read(Vec<ReadPart>),
    /// Resolve when any `(topic, partition)` grows past the given log end, or after `wait_ms`.
    Wait {
        parts: Vec<(String, i32, i64)>,
        wait_ms: u64,
        /// A follower's fetch: wait for the log end, not the high watermark.
        replica: bool,
    },
    /// Look these offsets up.
    ListOffsets(Vec<OffsetsPart>),
    /// Look up where leader epochs end in these parts (all owned by the callee).
    EpochEnds(Vec<EpochPart>),
    /// Offsets of these partitions, for DescribeTopics.
    Describe(Vec<(String, i32)>),
    /// A topic admin request, to shard 0.
    Admin(Request),
    /// Adopt this topic table: open, close and reconfigure partitions accordingly.
    Apply(TopicTable),
    /// A request about one consumer group, to the shard coordinating it.
    Group {
        /// The requesting client's id (shown by DescribeGroups).
        client_id: String,
        /// The group request.
        request: Request,
    },
    /// The groups this shard coordinates.
    ListGroups,
    /// A new producer id, from shard 0.
    AllocateProducerId,
    /// Adopt this cluster image (from shard 0): open, close and take the role of partitions.
    Cluster(std::sync::Arc<replica::ClusterSnapshot>),
}

/// The reply to a [`Call`], variant for variant.
pub(crate) enum Reply {
    Produce(Vec<ProducePartitionResponse>),
    Read(Vec<PartRead>),
    Wait,
    ListOffsets(Vec<ListOffsetsPartitionResponse>),
    EpochEnds(Vec<OffsetForLeaderEpochPartitionResponse>),
    Describe(Vec<PartitionDescription>),
    Admin(Response),
    /// Partitions that failed to open: `(topic, partition, reason)`.
    Apply(Vec<(String, i32, String)>),
    /// A new producer id, or why not.
    ProducerId(Result<i64, String>),
    /// Groups coordinated by the callee.
    Groups(Vec<quiver_transport::protocol::ListedGroup>),
    /// The callee could not run the call (stopping).
    Failed(String),
}

/// One shard's broker. Lives in an `Rc` on its shard. See the module doc.
pub struct ShardBroker {
    shard: usize,
    config: BrokerConfig,
    topics: RefCell<Rc<Topics>>,
    partitions: RefCell<HashMap<String, BTreeMap<i32, Rc<Partition>>>>,
    /// Partitions of this shard that failed to open: reason by `(topic, partition)`.
    offline: RefCell<HashMap<(String, i32), String>>,
    mesh: Rc<Mesh<Call, Reply>>,
    registry: Option<RefCell<Registry>>,
    /// Producer-id allocation (shard 0).
    producer_ids: Option<RefCell<ProducerIdAllocator>>,
    /// Serialises topic changes (shard 0).
    admin_lock: Semaphore,
    /// Serialises table adoption on this shard.
    apply_lock: Semaphore,
    flush_wake: Notify,
    /// When the flusher will next wake by itself (ms since the epoch), if it sleeps on a timer.
    flusher_next_ms: Cell<Option<i64>>,
    stopping: Latch,
    stats: RefCell<ShardStats>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    groups: groups::GroupShell,
    /// Woken by heartbeats so the group timer recomputes its deadline.
    groups_wake: Notify,
    /// Produce requests seen, for the response-dropping test hook.
    produce_seen: Cell<u64>,
    /// The cluster image this shard follows (cluster mode).
    cluster: RefCell<Option<std::sync::Arc<replica::ClusterSnapshot>>>,
    /// Replication state of the hosted partitions (cluster mode).
    replicas: RefCell<replica::Replicas>,
    /// Requests to other brokers (cluster mode).
    peers: RefCell<Option<Rc<dyn Peers>>>,
    /// The controller quorum member (shard 0 of a controller broker).
    controller: RefCell<Option<Rc<controller_shell::ControllerShell>>>,
    /// Stops the controller quorum member.
    controller_stop: Rc<Latch>,
    /// This broker's registration epoch (shard 0), -1 before registering.
    broker_epoch: Cell<i64>,
    /// This process start's incarnation id (BrokerRegistration).
    incarnation: i64,
    /// Wakes the leaders' task (an ISR change to send).
    leader_wake: Notify,
}

impl ShardBroker {
    /// Starts this shard on the current executor: prepares direct IO on the data directory,
    /// joins the mesh (resolves once every shard called `start`), opens this shard's partitions
    /// (recovering them), and starts the flusher and retention tasks.
    pub async fn start(seed: ShardSeed) -> Result<Rc<ShardBroker>, BrokerError> {
        let ShardSeed {
            shard,
            config,
            table,
            registry,
            producer_ids,
            mesh,
        } = seed;
        crate::rt::prepare_executor(&config.data_dir)
            .await
            .map_err(|source| BrokerError::Io {
                context: format!("preparing direct IO in {}", config.data_dir.display()),
                source,
            })?;
        let mesh = Mesh::connect(mesh).await;
        let coordinator = GroupCoordinator::new(config.groups.clone(), seed_for_shard(shard));
        let broker = Rc::new(ShardBroker {
            shard,
            config,
            topics: RefCell::new(Rc::new(BTreeMap::new())),
            partitions: RefCell::new(HashMap::new()),
            offline: RefCell::new(HashMap::new()),
            mesh,
            registry: registry.map(RefCell::new),
            producer_ids: producer_ids.map(RefCell::new),
            admin_lock: Semaphore::new(1),
            apply_lock: Semaphore::new(1),
            flush_wake: Notify::new(),
            flusher_next_ms: Cell::new(None),
            stopping: Latch::default(),
            stats: RefCell::new(ShardStats::new()),
            tasks: RefCell::new(Vec::new()),
            groups: groups::GroupShell::new(coordinator),
            groups_wake: Notify::new(),
            produce_seen: Cell::new(0),
            cluster: RefCell::new(None),
            replicas: RefCell::new(replica::Replicas::new()),
            peers: RefCell::new(None),
            controller: RefCell::new(None),
            controller_stop: Rc::new(Latch::default()),
            broker_epoch: Cell::new(-1),
            incarnation: (seed_for_shard(0) >> 1) as i64,
            leader_wake: Notify::new(),
        });
        let failures = broker.apply(&table).await;
        if let Some((topic, partition, reason)) = failures.into_iter().next() {
            broker.shutdown().await;
            return Err(BrokerError::Shard {
                shard,
                reason: format!("opening partition {topic}-{partition}: {reason}"),
            });
        }
        if let Err(reason) = broker.load_groups().await {
            broker.shutdown().await;
            return Err(BrokerError::Shard {
                shard,
                reason: format!("loading committed offsets: {reason}"),
            });
        }
        let weak = Rc::downgrade(&broker);
        let handler: CallHandler<Call, Reply> = Rc::new(move |from, call| {
            let weak = weak.clone();
            Box::pin(async move {
                match weak.upgrade() {
                    Some(broker) => broker.handle_call(from, call).await,
                    None => Reply::Failed("shard stopped".into()),
                }
            })
        });
        broker.mesh.serve(handler);
        let flusher = {
            let b = broker.clone();
            glommio::spawn_local(async move { b.run_flusher().await }).detach()
        };
        let retention = {
            let b = broker.clone();
            glommio::spawn_local(async move { b.run_retention().await }).detach()
        };
        let group_timer = {
            let b = broker.clone();
            glommio::spawn_local(async move { b.run_group_timer().await }).detach()
        };
        broker
            .tasks
            .borrow_mut()
            .extend([flusher, retention, group_timer]);
        Ok(broker)
    }

    /// This shard's index.
    pub fn shard_id(&self) -> usize {
        self.shard
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Handles one request frame (as cut by `FrameDecoder`, length prefix excluded) and returns
    /// the encoded response frame chunks; `None` only for a produce with acks=0. Undecodable
    /// requests get a rejection with the matching error code (correlation id 0 if not even the
    /// header could be read). Never panics on input.
    pub async fn handle_frame(&self, frame: Bytes) -> Option<Vec<Bytes>> {
        let started = Instant::now();
        let (header, request) = match decode_request_frame(frame) {
            Ok(decoded) => decoded,
            Err(RequestDecodeError { header, error }) => {
                let api = header.as_ref().and_then(|h| ApiKey::from_code(h.api_key));
                let correlation_id = header.as_ref().map_or(0, |h| h.correlation_id);
                self.stats
                    .borrow_mut()
                    .record_request(api, started.elapsed(), true);
                return Some(self.encode(
                    correlation_id,
                    0,
                    &Response::Rejected(error.error_code()),
                ));
            }
        };
        let response = self.handle(&header, request).await?;
        Some(self.encode(header.correlation_id, header.api_version, &response))
    }

    fn encode(&self, correlation_id: u32, api_version: u16, response: &Response) -> Vec<Bytes> {
        let header = ResponseHeader { correlation_id };
        let max = self.config.frame_bytes_max_u32();
        encode_response_frame(&header, api_version, response, max)
            .or_else(|_| {
                // Only a response over the frame limit gets here (limits keep it from
                // happening); answer with a rejection, which always fits.
                encode_response_frame(&header, 0, &Response::Rejected(ErrorCode::Unknown), max)
            })
            .unwrap_or_default()
    }

    /// Handles one decoded request; `None` only for a produce with acks=0.
    pub async fn handle(&self, header: &RequestHeader, request: Request) -> Option<Response> {
        let started = Instant::now();
        let api = request.api_key();
        let client_id = header.client_id.as_deref().unwrap_or("");
        let response = if header.api_key != api.code() {
            Some(Response::Rejected(ErrorCode::InvalidRequest))
        } else {
            match request {
                Request::ApiVersions(_) => Some(
                    ApiVersionsResponse::for_this_build(self.config.frame_bytes_max_u32()).into(),
                ),
                Request::Metadata(r) => Some(self.metadata(r).into()),
                Request::Produce(r) => {
                    let response = self.produce(r).await.map(Response::from);
                    response.filter(|_| !self.fault_drops_this_response())
                }
                Request::Fetch(r) => Some(self.fetch(r).await.into()),
                Request::ListOffsets(r) => Some(self.list_offsets(r).await.into()),
                Request::DescribeTopics(r) => Some(self.describe_topics(r).await.into()),
                Request::ListTopics(r) => Some(self.list_topics(r).into()),
                admin @ (Request::CreateTopics(_)
                | Request::DeleteTopics(_)
                | Request::AlterTopicConfigs(_)) => Some(self.admin(admin).await),
                Request::FindCoordinator(r) => Some(self.find_coordinator(r).into()),
                Request::ListGroups(r) => Some(self.list_groups(client_id, r).await.into()),
                Request::ConsumerGroupHeartbeat(r) => {
                    let group = r.group_id.clone();
                    Some(self.group_request(&group, client_id, r.into()).await)
                }
                Request::OffsetCommit(r) => {
                    let group = r.group_id.clone();
                    Some(self.group_request(&group, client_id, r.into()).await)
                }
                Request::OffsetFetch(r) => {
                    let group = r.group_id.clone();
                    Some(self.group_request(&group, client_id, r.into()).await)
                }
                Request::DescribeGroups(r) => Some(self.describe_groups(client_id, r).await.into()),
                Request::DeleteGroups(r) => Some(self.delete_groups(client_id, r).await.into()),
                Request::InitProducerId(r) => Some(self.init_producer_id(r).await.into()),
                Request::OffsetForLeaderEpoch(r) => {
                    Some(self.offset_for_leader_epoch(r).await.into())
                }
                cluster @ (Request::BrokerRegistration(_)
                | Request::BrokerHeartbeat(_)
                | Request::AlterPartition(_)
                | Request::RaftMessage(_)
                | Request::DescribeCluster(_)) => Some(self.cluster_request(cluster).await),
            }
        };
        let error = response.as_ref().is_some_and(errors::response_has_error);
        self.stats
            .borrow_mut()
            .record_request(Some(api), started.elapsed(), error);
        response
    }

    /// The response-dropping test hook ([`BrokerConfig::fault_drop_produce_response_every`]).
    fn fault_drops_this_response(&self) -> bool {
        let every = u64::from(self.config.fault_drop_produce_response_every);
        if every == 0 {
            return false;
        }
        let seen = self.produce_seen.get() + 1;
        self.produce_seen.set(seen);
        seen.is_multiple_of(every)
    }

    /// A snapshot of this shard's metrics (call on the shard; `Send`).
    pub fn metrics(&self) -> ShardMetrics {
        // glommio hands out the executor's run time since the previous call and resets it.
        let busy = glommio::executor().executor_stats().executor_runtime();
        let owned: Vec<PartitionMetrics> = self
            .partitions
            .borrow()
            .values()
            .flat_map(|m| m.values())
            .map(|p| {
                let s = p.stats();
                PartitionMetrics {
                    topic: p.topic().to_string(),
                    partition: p.index(),
                    owned: true,
                    records_in: s.records_in,
                    bytes_in: s.bytes_in,
                    records_out: 0,
                    bytes_out: 0,
                    log_start_offset: s.log_start_offset,
                    log_end_offset: s.log_end_offset,
                    size_bytes: s.size_bytes,
                    high_watermark: p.high_watermark(),
                    isr_size: -1,
                    replicas: -1,
                }
            })
            .collect();
        let mut owned = owned;
        for m in owned.iter_mut() {
            if let Some((isr, replicas)) = self.leader_isr(&m.topic, m.partition) {
                m.isr_size = isr as i64;
                m.replicas = replicas as i64;
            }
        }
        let mut snapshot = self.stats.borrow_mut().snapshot(self.shard, owned, busy);
        snapshot.groups = self.group_metrics();
        snapshot
    }

    /// Stops the background tasks and closes every partition (flushed, clean-shutdown marker
    /// written), then closes this shard's side of the mesh. Idempotent; call on every shard.
    pub async fn shutdown(&self) {
        if self.stopping.is_set() {
            return;
        }
        self.leave_cluster().await;
        self.stopping.set();
        self.controller_stop.set();
        self.flush_wake.notify_all();
        let tasks: Vec<_> = self.tasks.borrow_mut().drain(..).collect();
        for mut task in tasks {
            // Every task watches `stopping`; one stuck anyway (a bug) must not keep the
            // process from closing its partitions cleanly.
            let finished = futures_lite::future::or(
                async {
                    (&mut task).await;
                    true
                },
                async {
                    glommio::timer::sleep(SHUTDOWN_TASK_WAIT).await;
                    false
                },
            )
            .await;
            if !finished {
                eprintln!(
                    "quiver: shard {}: a background task did not stop within {} s; cancelled",
                    self.shard,
                    SHUTDOWN_TASK_WAIT.as_secs()
                );
                task.cancel();
            }
        }
        let open: Vec<Rc<Partition>> = self
            .partitions
            .borrow_mut()
            .drain()
            .flat_map(|(_, m)| m.into_values())
            .collect();
        let closes: Vec<LocalBoxFuture<'_, ()>> = open
            .iter()
            .map(|p| {
                Box::pin(async move {
                    if let Err(e) = p.close().await {
                        eprintln!(
                            "quiver: shard {}: closing {} failed: {e}",
                            self.shard,
                            p.name()
                        );
                    }
                }) as LocalBoxFuture<'_, ()>
            })
            .collect();
        join_all(closes).await;
        self.mesh.close();
    }

    fn topics(&self) -> Rc<Topics> {
        self.topics.borrow().clone()
    }

    fn now_ms() -> i64 {
        crate::rt::now_ms()
    }

    /// Where a partition lives, or why it cannot be served.
    fn route(&self, topics: &Topics, topic: &str, partition: i32) -> Result<usize, WireError> {
        match topics.get(topic) {
            None => Err((
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic '{topic}'"),
            )),
            Some(t) if partition < 0 || partition >= t.meta.partitions => Err((
                ErrorCode::UnknownTopicOrPartition,
                format!(
                    "topic '{topic}' has no partition {partition} (it has {})",
                    t.meta.partitions
                ),
            )),
            Some(_) => Ok(shard_for(topic, partition, self.config.shard_count)),
        }
    }

    /// The open partition on this shard, or why not.
    fn local_partition(&self, topic: &str, partition: i32) -> Result<Rc<Partition>, WireError> {
        if let Some(p) = self
            .partitions
            .borrow()
            .get(topic)
            .and_then(|m| m.get(&partition))
        {
            if !p.is_closed() {
                return Ok(p.clone());
            }
        }
        if let Some(reason) = self.offline.borrow().get(&(topic.to_string(), partition)) {
            return Err((
                ErrorCode::StorageError,
                format!("partition {topic}-{partition} is offline: {reason}"),
            ));
        }
        let owner = self.route(&self.topics(), topic, partition)?;
        if self.clustered() && !self.hosts(topic, partition) {
            return Err((
                ErrorCode::NotLeaderOrFollower,
                format!("this broker holds no replica of {topic}-{partition}"),
            ));
        }
        if self.stopping.is_set() {
            return Err((
                ErrorCode::NotLeaderOrFollower,
                format!("shard {} is stopping", self.shard),
            ));
        }
        if owner != self.shard {
            return Err((
                ErrorCode::NotLeaderOrFollower,
                format!("partition {topic}-{partition} lives on shard {owner}"),
            ));
        }
        Err((
            ErrorCode::LeaderNotAvailable,
            format!("partition {topic}-{partition} is being opened"),
        ))
    }

    async fn call(&self, to: usize, call: Call) -> Result<Reply, MeshError> {
        self.stats.borrow_mut().cross_shard_calls += 1;
        self.mesh.call(to, call).await
    }

    /// Runs `parts` (each with its owner shard) grouped by owner: this shard's with `local`,
    /// the others' with one call per owner; results come back in input order. A failed call
    /// gives `failed(part, reason)` for each of its parts.
    async fn scatter<'a, P: Clone + 'a, R: 'a>(
        &'a self,
        parts: Vec<(usize, P)>,
        local: &'a dyn Fn(Vec<P>) -> LocalBoxFuture<'a, Vec<R>>,
        to_call: &'a dyn Fn(Vec<P>) -> Call,
        from_reply: fn(Reply) -> Option<Vec<R>>,
        failed: &'a dyn Fn(&P, &str) -> R,
    ) -> Vec<R> {
        let count = parts.len();
        let mut groups: BTreeMap<usize, (Vec<usize>, Vec<P>)> = BTreeMap::new();
        for (i, (owner, part)) in parts.into_iter().enumerate() {
            let group = groups.entry(owner).or_default();
            group.0.push(i);
            group.1.push(part);
        }
        let mut runs: Vec<LocalBoxFuture<'a, (Vec<usize>, Vec<R>)>> = Vec::new();
        for (owner, (indexes, group)) in groups {
            if owner == self.shard {
                let run = local(group);
                runs.push(Box::pin(async move { (indexes, run.await) }));
            } else {
                runs.push(Box::pin(async move {
                    let expected = group.len();
                    let call = to_call(group.clone());
                    let outcome = match self.call(owner, call).await {
                        Ok(Reply::Failed(reason)) => Err(reason),
                        Ok(reply) => match from_reply(reply) {
                            Some(results) if results.len() == expected => Ok(results),
                            _ => Err(format!("shard {owner} sent a mismatched reply")),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    let results = outcome.unwrap_or_else(|reason| {
                        group.iter().map(|p| failed(p, &reason)).collect()
                    });
                    (indexes, results)
                }));
            }
        }
        let mut slots: Vec<Option<R>> = (0..count).map(|_| None).collect();
        for (indexes, results) in join_all(runs).await {
            for (i, r) in indexes.into_iter().zip(results) {
                slots[i] = Some(r);
            }
        }
        slots.into_iter().flatten().collect()
    }

    /// Runs a call from another shard.
    async fn handle_call(self: Rc<Self>, _from: usize, call: Call) -> Reply {
        if self.stopping.is_set() {
            return Reply::Failed(format!("shard {} is stopping", self.shard));
        }
        match call {
            Call::Produce {
                parts,
                acks,
                timeout_ms,
            } => Reply::Produce(self.produce_local(parts, acks, timeout_ms).await),
            Call::Read(parts) => Reply::Read(self.read_local(parts).await),
            Call::Wait {
                parts,
                wait_ms,
                replica,
            } => {
                self.wait_local(&parts, wait_ms, replica).await;
                Reply::Wait
            }
            Call::ListOffsets(parts) => Reply::ListOffsets(self.list_offsets_local(parts).await),
            Call::EpochEnds(parts) => Reply::EpochEnds(self.epoch_ends_local(parts).await),
            Call::Describe(parts) => Reply::Describe(self.describe_local(&parts)),
            Call::Admin(request) => Reply::Admin(self.admin_here(request).await),
            Call::Apply(table) => Reply::Apply(self.apply(&table).await),
            Call::Group { client_id, request } => {
                Reply::Admin(self.group_here(&client_id, request).await)
            }
            Call::ListGroups => Reply::Groups(self.list_groups_local()),
            Call::AllocateProducerId => Reply::ProducerId(self.allocate_producer_id_here()),
            Call::Cluster(snapshot) => self.cluster_call(snapshot).await,
        }
    }

    /// Adopts `table`: closes partitions no longer in it, opens this shard's new ones and
    /// reconfigures those whose topic config changed. Returns the partitions that failed to
    /// open (they stay offline and answer StorageError).
    async fn apply(&self, table: &TopicTable) -> Vec<(String, i32, String)> {
        let _serial = self.apply_lock.acquire_permit(1).await;
        let mut failures = Vec::new();
        let new_topics = match build_topics(table, &self.config) {
            Ok(t) => Rc::new(t),
            Err(e) => {
                // Shard 0 validated the table before sending it: this is a bug.
                failures.push((String::new(), -1, format!("invalid topic table: {e}")));
                return failures;
            }
        };
        let old_topics = std::mem::replace(&mut *self.topics.borrow_mut(), new_topics.clone());
        let shard_count = self.config.shard_count;
        let owned = |topic: &str, p: i32| {
            new_topics.get(topic).is_some_and(|t| {
                p < t.meta.partitions
                    && shard_for(topic, p, shard_count) == self.shard
                    && self.hosts(topic, p)
            })
        };
        // A topic deleted and created again under the same name (in a cluster, where ids
        // tell them apart) leaves nothing of the old one open.
        let same_topic = |topic: &str| {
            old_topics.get(topic).map(|t| t.meta.id) == new_topics.get(topic).map(|t| t.meta.id)
        };
        let doomed: Vec<Rc<Partition>> = {
            let mut partitions = self.partitions.borrow_mut();
            let mut doomed = Vec::new();
            for (topic, map) in partitions.iter_mut() {
                let gone: Vec<i32> = map
                    .keys()
                    .copied()
                    .filter(|&p| !owned(topic, p) || !same_topic(topic))
                    .collect();
                for p in gone {
                    if let Some(partition) = map.remove(&p) {
                        doomed.push(partition);
                    }
                }
            }
            partitions.retain(|_, m| !m.is_empty());
            doomed
        };
        self.offline
            .borrow_mut()
            .retain(|(t, p), _| owned(t, *p) && same_topic(t));
        for p in doomed {
            self.replicas
                .borrow_mut()
                .remove(&(p.topic().to_string(), p.index()));
            if let Err(e) = p.close().await {
                eprintln!(
                    "quiver: shard {}: closing {} failed: {e}",
                    self.shard,
                    p.name()
                );
            }
            // In a cluster a replica that leaves this broker (its topic deleted, or moved)
            // leaves no data behind: a later topic of the same name starts empty.
            if self.clustered() {
                if let Err(e) = registry::remove_partition_dir(&self.config.data_dir, p.dir()) {
                    eprintln!(
                        "quiver: shard {}: removing {} failed: {e}",
                        self.shard,
                        p.dir().display()
                    );
                }
            }
        }
        // Reconfigure partitions whose topic config changed.
        for (name, state) in new_topics.iter() {
            let changed = old_topics
                .get(name)
                .is_some_and(|old| old.config != state.config);
            if !changed {
                continue;
            }
            let open: Vec<Rc<Partition>> = self
                .partitions
                .borrow()
                .get(name)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default();
            for p in open {
                if let Err(e) = p.set_config(state.log.clone()).await {
                    failures.push((name.clone(), p.index(), e.to_string()));
                }
            }
        }
        // Open this shard's partitions that are not open yet.
        let mut to_open: Vec<(String, i32, LogConfig)> = Vec::new();
        for (name, state) in new_topics.iter() {
            for p in 0..state.meta.partitions {
                if shard_for(name, p, shard_count) != self.shard || !self.hosts(name, p) {
                    continue;
                }
                let open = self
                    .partitions
                    .borrow()
                    .get(name)
                    .is_some_and(|m| m.contains_key(&p));
                if open {
                    continue;
                }
                if let Some(id) = state.meta.id {
                    if let Err(reason) = self.claim_replica_dir(name, p, id) {
                        self.offline
                            .borrow_mut()
                            .insert((name.clone(), p), reason.clone());
                        failures.push((name.clone(), p, reason));
                        continue;
                    }
                }
                to_open.push((name.clone(), p, state.log.clone()));
            }
        }
        for chunk in to_open.chunks(OPEN_CONCURRENCY_MAX) {
            type Opened = (String, i32, Result<Rc<Partition>, LogError>);
            let opens: Vec<LocalBoxFuture<'_, Opened>> = chunk
                .iter()
                .map(|(topic, p, log)| {
                    let dir = registry::partition_dir(&self.config.data_dir, topic, *p);
                    let log = log.clone();
                    Box::pin(async move {
                        let opened = Partition::open(&dir, topic, *p, log, Self::now_ms()).await;
                        (topic.clone(), *p, opened)
                    }) as LocalBoxFuture<'_, Opened>
                })
                .collect();
            for (topic, p, opened) in join_all(opens).await {
                match opened {
                    Ok(partition) => {
                        self.offline.borrow_mut().remove(&(topic.clone(), p));
                        self.partitions
                            .borrow_mut()
                            .entry(topic)
                            .or_default()
                            .insert(p, partition);
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        self.offline
                            .borrow_mut()
                            .insert((topic.clone(), p), reason.clone());
                        failures.push((topic, p, reason));
                    }
                }
            }
        }
        let topics = self.topics();
        self.stats
            .borrow_mut()
            .retain_served(|t, p| topics.get(t).is_some_and(|s| p < s.meta.partitions));
        self.flush_wake.notify_all();
        failures
    }

    /// In a cluster, before opening replica `topic`-`p` of topic id `id`: makes sure its
    /// directory holds that topic, wiping one left by an older topic of the same name (see
    /// [`replica_dir`]), and marks it. An error leaves the partition closed, with the reason.
    /// Blocking file IO, once per replica opened.
    fn claim_replica_dir(&self, topic: &str, p: i32, id: TopicId) -> Result<(), String> {
        let dir = registry::partition_dir(&self.config.data_dir, topic, p);
        let offset = self.snapshot().map_or(-1, |s| s.metadata_offset);
        let mark = replica_dir::read(&dir).map_err(|e| e.to_string())?;
        match replica_dir::judge(mark.as_ref(), Some(id), offset) {
            replica_dir::Verdict::Keep if mark.is_some() => return Ok(()),
            replica_dir::Verdict::Keep => {}
            replica_dir::Verdict::Wipe => {
                eprintln!(
                    "quiver: shard {}: {} holds topic id {} of a deleted topic '{topic}': removing it",
                    self.shard,
                    dir.display(),
                    mark.map_or_else(String::new, |m| m.topic_id.to_string()),
                );
                registry::remove_partition_dir(&self.config.data_dir, &dir)
                    .map_err(|e| format!("removing {}: {e}", dir.display()))?;
            }
            replica_dir::Verdict::Wait => {
                return Err(format!(
                    "{} holds another topic id than {id}, marked at metadata offset {}: waiting for metadata newer than {offset}",
                    dir.display(),
                    mark.map_or(-1, |m| m.metadata_offset),
                ));
            }
        }
        if offset < 0 {
            return Err(format!(
                "no metadata offset yet to mark {} with",
                dir.display()
            ));
        }
        let mark = replica_dir::DirMark {
            topic_id: id,
            metadata_offset: offset,
        };
        replica_dir::write(&dir, &mark).map_err(|e| format!("marking {}: {e}", dir.display()))
    }

    fn all_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions
            .borrow()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// After an append: wake the flusher if this partition now wants a sync before the
    /// flusher's next planned wake-up.
    fn after_append(&self, partition: &Partition) {
        if let Some(deadline) = partition.flush_deadline_ms() {
            if self
                .flusher_next_ms
                .get()
                .is_none_or(|next| deadline < next)
            {
                self.flusher_next_ms.set(Some(deadline));
                self.flush_wake.notify_all();
            }
        }
    }

    /// The per-shard flusher: syncs partitions whose flush deadline passed (group commit: one
    /// `fdatasync` per partition per tick releases every producer waiting on it), then sleeps
    /// until the earliest deadline or until an append wakes it.
    async fn run_flusher(&self) {
        loop {
            let since = self.flush_wake.generation();
            if self.stopping.is_set() {
                return;
            }
            let now = Self::now_ms();
            let due: Vec<_> = self
                .all_partitions()
                .into_iter()
                .filter(|p| {
                    p.flush_deadline_ms()
                        .is_some_and(|deadline| deadline <= now)
                })
                .collect();
            // Each partition's sync runs in its own task: one slow file does not hold up the
            // others. Failures are recorded by the partition and reported to its producers.
            let flushes: Vec<LocalBoxFuture<'_, ()>> = due
                .iter()
                .map(|p| {
                    Box::pin(async move {
                        let _ = p.flush_if_due(now).await;
                    }) as LocalBoxFuture<'_, ()>
                })
                .collect();
            join_all(flushes).await;
            drop(due);
            // Look at every partition again, not only the ones just synced: appends that
            // landed during the syncs did not wake this task if their deadline was later than
            // the (stale) planned wake-up, so they are only found here. A partition still due
            // by the log's own clock reading is looked at again shortly.
            let mut next: Option<i64> = None;
            for p in self.all_partitions() {
                if let Some(deadline) = p.flush_deadline_ms() {
                    let deadline = deadline.max(now + 1);
                    next = Some(next.map_or(deadline, |n: i64| n.min(deadline)));
                }
            }
            self.flusher_next_ms.set(next);
            match next {
                Some(deadline) => {
                    let wait_ms = u64::try_from(deadline - Self::now_ms()).unwrap_or(0);
                    futures_lite::future::or(
                        glommio::timer::sleep(Duration::from_millis(wait_ms)),
                        self.flush_wake.changed(since),
                    )
                    .await;
                }
                None => self.flush_wake.changed(since).await,
            }
        }
    }

    /// The per-shard retention and compaction pass, every `retention_check_interval_ms`,
    /// yielding between partitions.
    async fn run_retention(&self) {
        let interval = Duration::from_millis(self.config.retention_check_interval_ms);
        loop {
            futures_lite::future::or(glommio::timer::sleep(interval), self.stopping.wait()).await;
            if self.stopping.is_set() {
                return;
            }
            for p in self.all_partitions() {
                if self.stopping.is_set() {
                    return;
                }
                if let Err(e) = p.maintain(Self::now_ms()).await {
                    eprintln!(
                        "quiver: shard {}: retention of {} failed: {e}",
                        self.shard,
                        p.name()
                    );
                }
                futures_lite::future::yield_now().await;
            }
        }
    }
}
