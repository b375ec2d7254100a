//! Running a workload: topics, actors, measurement, and the [`Report`].
//!
//! Everything runs on one multi-threaded tokio runtime (one worker per core). Each producer
//! actor is its own SDK [`Producer`] (own connections); each consumer actor its own
//! [`Consumer`]. The order of a run:
//! 1. create fresh topics (`bench-<workload>-<run id>-<i>`, topic config `flush`);
//! 2. `pinned-consumer` only: fill the topics (not measured), then, with `--embedded`, restart
//!    the broker so the consumers read from disk rather than from its batch cache;
//! 3. connect every actor, then start them together; the first `warmup_secs` are not counted;
//! 4. producers stop after their share of `messages` or at the end of `duration_secs`;
//!    consumers of live producers stop once they have every record their producer had
//!    acknowledged (or report the missing ones as errors after [`DRAIN_TIMEOUT`]);
//! 5. delete the topics (unless kept).
//!
//! **A broker that dies or stops answering** fails the run, within bounded time, with errors
//! counted in the report: every request of the run waits at most [`REQUEST_TIMEOUT`]; a record
//! not acknowledged within [`DELIVERY_TIMEOUT`] is an error (and stops its producer, whose
//! `send` blocks as long on a full buffer); a consumer still owed records that receives none
//! for [`STALL_TIMEOUT`] reports it and stops (the SDK's `poll` retries connection errors
//! quietly, returning no records); cleaning up gives up after [`CLEANUP_CONNECT_TIMEOUT`] if
//! it cannot connect.
//!
//! **What is measured.** Produce-ack latency: from the record's send (closed loop: the call to
//! `send`; open loop: its intended instant, see [`crate::rate`]) until its delivery future
//! resolves. Each partition's deliveries are awaited by one task in order, which is exact
//! because the SDK acknowledges a partition's records in order. End-to-end latency: the first
//! [`STAMP_BYTES`] of each value hold the send instant (nanoseconds since the run's anchor, an
//! [`Instant`] shared by producer and consumer in this process); the consumer subtracts it from
//! the instant `poll` returned the record. For data written before the run (`pinned-consumer`)
//! the consume latency is the duration of each `poll` that returned records ("fetch").
//! Throughput counts record values only.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use quiver_transport::batch::Compression;
use quiver_transport::client::{
    partition_for_key, Admin, Client, ClientConfig, ClientError, Consumer, ConsumerConfig,
    ConsumerRecord, DeliveryFuture, GroupConfig, GroupConsumer, NewTopic, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, RebalanceListener, TopicPartition,
};
use quiver_transport::protocol::Acks;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::sync::{mpsc, Notify};

use crate::embedded::EmbeddedBroker;
use crate::histogram::LatencyHistogram;
use crate::machine::Machine;
use crate::params::{Params, Workload};
use crate::report::{Figures, Point, Report, Results, Side};

/// Bytes at the start of each value holding its send instant (end-to-end workloads).
pub const STAMP_BYTES: usize = 8;
/// Measured seconds when neither `messages` nor `duration_secs` is given.
pub const DURATION_SECS_DEFAULT: f64 = 10.0;
/// Records filled and read by `pinned-consumer` without `messages`, over all consumers.
pub const CONSUMER_RECORDS_DEFAULT: u64 = 1_000_000;
/// How long consumers may take, after their producer stopped, to receive what it wrote.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait of one consumer `poll`.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Consecutive failed polls after which a consumer gives up.
const POLL_ERRORS_MAX: u32 = 20;
/// Deliveries queued for one partition's waiter task; `send` waits beyond it. (The producer's
/// buffer memory bounds them first for records above a few bytes.)
const PENDING_DELIVERIES_MAX: usize = 1 << 16;
/// Errors kept verbatim in the report; the rest are counted.
const ERROR_SAMPLES_MAX: usize = 10;
/// Bytes per record beyond its value in a batch (varints, key of 16 hex digits), for sizing.
const RECORD_OVERHEAD_BYTES: usize = 48;
/// Bounds of a producer's buffer memory, bytes.
const BUFFER_MEMORY_MIN_BYTES: usize = 4 << 20;
const BUFFER_MEMORY_MAX_BYTES: usize = 256 << 20;
/// Largest produce request, bytes (the broker's default frame limit is 64 MiB).
const REQUEST_BYTES_MAX: usize = 32 << 20;
/// Most bytes per partition in one fetch response.
const FETCH_PARTITION_BYTES_MAX: i32 = 4 << 20;
/// Longest wait for one response (the SDK clients' `request_timeout`, and the producers'),
/// so that requests to a broker that died fail within it rather than the SDK's 30 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Producer `delivery_timeout` and `max_block`: a broken broker fails the run within this
/// (no longer than [`REQUEST_TIMEOUT`], or a batch in flight when the broker died is retried
/// and fails only after a second request timeout).
pub const DELIVERY_TIMEOUT: Duration = REQUEST_TIMEOUT;
/// A consumer that is owed records (filled ones not yet read, or ones its producer had
/// acknowledged) and receives none for this long reports an error and stops.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long deleting the topics after the run may take to connect to the broker.
const CLEANUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the broker is.
#[derive(Debug, Clone)]
pub enum Target {
    /// A running broker.
    Bootstrap(ClientConfig),
    /// Start one: `exe broker` (the `quiver` binary), `shards` shards (default one per core),
    /// data under a temporary directory in `parent` (default: the system temp dir).
    Embedded {
        /// The `quiver` executable.
        exe: PathBuf,
        /// Broker shards.
        shards: Option<usize>,
        /// Parent of the temporary data directory.
        parent: Option<PathBuf>,
    },
}

/// How a run behaves apart from what it measures.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print a `\r`-updated progress line on stderr.
    pub progress: bool,
    /// Leave the topics on the broker instead of deleting them.
    pub keep_topics: bool,
}

/// Why a run could not produce a report. Failures *during* the measurement are not this:
/// they are counted in the report (`results.errors`).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The parameters do not fit together.
    #[error("{0}")]
    InvalidParams(String),
    /// The embedded broker did not start.
    #[error("embedded broker: {0}")]
    Embedded(String),
    /// Setting the run up failed (connecting, creating or filling topics).
    #[error("{context}: {source}")]
    Client {
        /// What the harness was doing.
        context: String,
        /// The SDK's error.
        source: ClientError,
    },
    /// Anything else in the setup (the runtime, filling topics).
    #[error("{0}")]
    Setup(String),
}

fn client_error(context: impl Into<String>) -> impl FnOnce(ClientError) -> BenchError {
    let context = context.into();
    move |source| BenchError::Client { context, source }
}

/// Runs `params` against `target`.
pub fn run(params: &Params, target: Target, options: &Options) -> Result<Report, BenchError> {
    params.validate().map_err(BenchError::InvalidParams)?;
    let mut embedded = None;
    let mut config = match target {
        Target::Bootstrap(config) => config,
        Target::Embedded {
            exe,
            shards,
            parent,
        } => {
            let broker = EmbeddedBroker::start(&exe, shards, parent.as_deref())
                .map_err(BenchError::Embedded)?;
            let config = broker.client_config().map_err(BenchError::Embedded)?;
            embedded = Some(broker);
            config
        }
    };
    config.request_timeout = config.request_timeout.min(REQUEST_TIMEOUT);
    let machine = Machine::detect(embedded.as_ref().map(|b| b.data_dir()).as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(machine.cores)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(format!("starting the tokio runtime: {e}")))?;
    let outcome = runtime.block_on(run_async(params, config, &mut embedded, options));
    drop(runtime);
    let (results, series) = outcome?;
    let mut report = Report {
        params: params.clone(),
        machine,
        results,
        series,
    };
    if let Some(mut broker) = embedded {
        if let Err(e) = broker.stop() {
            note_error(&mut report.results, e);
        }
    }
    Ok(report)
}

fn note_error(results: &mut Results, message: String) {
    results.errors += 1;
    if results.error_samples.len() < ERROR_SAMPLES_MAX {
        results.error_samples.push(message);
    }
}

/// Records and payload bytes of one side.
#[derive(Debug, Default)]
struct Counter {
    records: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (
            self.records.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// One task's latency samples: the whole run's and the current second's. Locked per sample by
/// its task and once a second by the ticker, so practically uncontended.
#[derive(Debug, Default)]
struct Recorder {
    histograms: Mutex<(LatencyHistogram, LatencyHistogram)>,
}

impl Recorder {
    fn record(&self, latency: Duration) {
        let mut h = self.histograms.lock().expect("not poisoned");
        h.0.record(latency);
        h.1.record(latency);
    }
}

/// Counters and latency of one side.
#[derive(Debug, Default)]
struct SideStats {
    counter: Counter,
    recorders: Mutex<Vec<Arc<Recorder>>>,
}

impl SideStats {
    fn recorder(&self) -> Arc<Recorder> {
        let r = Arc::new(Recorder::default());
        self.recorders.lock().expect("not poisoned").push(r.clone());
        r
    }

    /// Merges and clears every task's current-second histogram.
    fn take_interval(&self) -> LatencyHistogram {
        let mut merged = LatencyHistogram::new();
        for r in self.recorders.lock().expect("not poisoned").iter() {
            let mut h = r.histograms.lock().expect("not poisoned");
            merged.merge(&h.1);
            h.1.clear();
        }
        merged
    }

    fn total(&self) -> LatencyHistogram {
        let mut merged = LatencyHistogram::new();
        for r in self.recorders.lock().expect("not poisoned").iter() {
            merged.merge(&r.histograms.lock().expect("not poisoned").0);
        }
        merged
    }
}

/// What every actor of a run shares.
#[derive(Debug)]
struct Shared {
    /// Origin of the send instants stamped into values.
    anchor: Instant,
    /// End of the warm-up: only what happens from here on is counted.
    measure_start: Instant,
    produce: SideStats,
    consume: SideStats,
    errors: Mutex<(u64, Vec<String>)>,
}

impl Shared {
    fn new(warmup: Duration) -> Shared {
        let anchor = Instant::now();
        Shared {
            anchor,
            measure_start: anchor + warmup,
            produce: SideStats::default(),
            consume: SideStats::default(),
            errors: Mutex::new((0, Vec::new())),
        }
    }

    fn measuring(&self, now: Instant) -> bool {
        now >= self.measure_start
    }

    fn error(&self, message: String) {
        let mut e = self.errors.lock().expect("not poisoned");
        e.0 += 1;
        if e.1.len() < ERROR_SAMPLES_MAX {
            e.1.push(message);
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.lock().expect("not poisoned").0
    }
}

/// A topic's producer progress, for the consumer tailing it.
#[derive(Debug, Default)]
struct TopicProgress {
    /// Records the producer had acknowledged.
    delivered: AtomicU64,
    /// The producer has stopped and every delivery resolved.
    done: AtomicBool,
}

/// What one producer actor does.
struct ProducerPlan {
    index: usize,
    topic: String,
    /// Partitions of the topic; the actor writes to all of them.
    partitions: i32,
    /// Records to send, or unlimited (until the deadline).
    quota: Option<u64>,
    deadline: Option<Instant>,
    rate: Option<f64>,
    progress: Arc<TopicProgress>,
}

/// What one consumer actor does.
struct ConsumerPlan {
    topic: String,
    partitions: i32,
    /// For consumer-group members: the records received by the whole group, which `expect`
    /// and `tail` are checked against instead of this consumer's own count.
    group_received: Option<Arc<AtomicU64>>,
    /// Stop after this many records...
    expect: Option<u64>,
    /// ... or once the producer of the topic is done and everything it wrote arrived.
    tail: Option<Arc<TopicProgress>>,
    deadline: Option<Instant>,
}

type Outcome = (Results, Vec<Point>);

async fn run_async(
    params: &Params,
    config: ClientConfig,
    embedded: &mut Option<EmbeddedBroker>,
    options: &Options,
) -> Result<Outcome, BenchError> {
    let workload = params.workload;
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic_count = match workload {
        Workload::BalancedProducer
        | Workload::BalancedConsumerGroup
        | Workload::BalancedProducerAndConsumerGroup => 1,
        Workload::PinnedConsumer => params.consumers,
        _ => params.producers,
    };
    let topics: Vec<String> = (0..topic_count)
        .map(|i| format!("bench-{workload}-{run_id}-{i}"))
        .collect();
    let admin = Admin::connect(config.clone())
        .await
        .map_err(client_error("connecting"))?;
    for topic in &topics {
        let mut new = NewTopic::new(topic, params.partitions)
            .config("flush", &params.flush)
            .replication_factor(params.replication_factor);
        if params.replication_factor > 1 {
            new = new.config(
                "min.insync.replicas",
                (params.replication_factor - 1).to_string(),
            );
        }
        admin
            .create_topic(new)
            .await
            .map_err(client_error(format!("creating topic {topic}")))?;
    }
    drop(admin);

    let consumer_records = params.messages.unwrap_or(CONSUMER_RECORDS_DEFAULT);
    if matches!(
        workload,
        Workload::PinnedConsumer | Workload::BalancedConsumerGroup
    ) {
        fill(params, &config, &topics, consumer_records).await?;
        if let Some(broker) = embedded.as_mut() {
            tokio::task::block_in_place(|| broker.restart()).map_err(BenchError::Embedded)?;
        }
    }
    let group = format!("bench-{workload}-{run_id}");
    let outcome = measure(params, &config, &topics, &group, consumer_records, options).await;
    if !options.keep_topics {
        // A failure to clean up does not change the figures; say so and carry on.
        match tokio::time::timeout(CLEANUP_CONNECT_TIMEOUT, Admin::connect(config.clone())).await {
            Err(_) => eprintln!(
                "quiver bench: warning: cannot delete the topics: no connection within \
                 {CLEANUP_CONNECT_TIMEOUT:?}"
            ),
            Ok(Ok(admin)) => {
                for topic in &topics {
                    if let Err(e) = admin.delete_topic(topic).await {
                        eprintln!("quiver bench: warning: deleting topic {topic}: {e}");
                    }
                }
            }
            Ok(Err(e)) => eprintln!("quiver bench: warning: cannot delete the topics: {e}"),
        }
    }
    outcome
}

fn producer_config(params: &Params, partitions: i32) -> Result<ProducerConfig, BenchError> {
    let acks = match params.acks.as_str() {
        "0" => Acks::None,
        "1" => Acks::Leader,
        _ => Acks::All,
    };
    let compression: Compression = params
        .compression
        .parse()
        .map_err(|e| BenchError::InvalidParams(format!("--compression: {e}")))?;
    let batch_size =
        params.messages_per_batch * (params.message_size.max + RECORD_OVERHEAD_BYTES) + 1024;
    let buffer_memory = batch_size
        .saturating_mul(partitions as usize + 4)
        .clamp(BUFFER_MEMORY_MIN_BYTES, BUFFER_MEMORY_MAX_BYTES)
        .max(batch_size * 2);
    Ok(ProducerConfig {
        acks,
        compression,
        batch_size,
        linger: Duration::from_millis(params.linger_ms),
        buffer_memory,
        max_request_size: (batch_size * 4).clamp(1 << 20, REQUEST_BYTES_MAX),
        request_timeout: REQUEST_TIMEOUT,
        delivery_timeout: DELIVERY_TIMEOUT,
        max_block: DELIVERY_TIMEOUT,
        ..ProducerConfig::default()
    })
}

/// Writes `records` records over `topics` before a consumer workload (closed loop, not
/// measured). Any failure fails the run: the consumers would have nothing valid to read.
async fn fill(
    params: &Params,
    config: &ClientConfig,
    topics: &[String],
    records: u64,
) -> Result<(), BenchError> {
    let shared = Arc::new(Shared::new(Duration::from_secs(365 * 24 * 3600)));
    let mut tasks = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        let producer =
            Producer::connect(config.clone(), producer_config(params, params.partitions)?)
                .await
                .map_err(client_error("connecting a producer"))?;
        let plan = ProducerPlan {
            index: i,
            topic: topic.clone(),
            partitions: params.partitions,
            quota: Some(share(records, topics.len(), i)),
            deadline: None,
            rate: None,
            progress: Arc::default(),
        };
        tasks.push(tokio::spawn(produce(
            shared.clone(),
            Arc::new(params.clone()),
            producer,
            plan,
        )));
    }
    for task in tasks {
        task.await
            .map_err(|e| BenchError::Setup(format!("a fill task failed: {e}")))?;
    }
    let errors = shared.errors.lock().expect("not poisoned");
    if errors.0 > 0 {
        return Err(BenchError::Setup(format!(
            "filling the topics failed ({} errors): {}",
            errors.0,
            errors.1.join("; ")
        )));
    }
    Ok(())
}

/// Session timeout of benchmark group members (they poll continuously).
const GROUP_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long group members may take to share out the partitions before a run starts.
const GROUP_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Pauses every partition a bench group member is given while the flag is set.
struct HoldUntilSettled(Arc<AtomicBool>);

impl RebalanceListener for HoldUntilSettled {
    fn start_paused(&mut self, partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        if self.0.load(Ordering::Acquire) {
            partitions.to_vec()
        } else {
            Vec::new()
        }
    }
}

/// Polls the members of a group, what they are given held paused by [`HoldUntilSettled`],
/// until the coordinator has shared the partitions out evenly (every partition owned,
/// members' shares within one of each other), then resumes them. A group's join is thus not
/// measured, as kafka-consumer-perf-test keeps its rebalance time out of its fetch rate.
/// Returns the records read meanwhile (none expected; they would count as warm-up).
async fn settle_group(
    consumers: &mut [(usize, BenchConsumer)],
    partitions: i32,
    hold: &AtomicBool,
) -> Result<u64, BenchError> {
    let partitions = usize::try_from(partitions).unwrap_or(0);
    let deadline = Instant::now() + GROUP_SETTLE_TIMEOUT;
    let mut slipped = 0u64;
    loop {
        let mut shares = Vec::with_capacity(consumers.len());
        for (_, consumer) in consumers.iter_mut() {
            let BenchConsumer::Group(group) = consumer else {
                continue;
            };
            let records = group
                .poll(Duration::from_millis(50))
                .await
                .map_err(client_error("waiting for the group's assignment"))?;
            slipped += records.len() as u64;
            shares.push(group.assignment().len());
        }
        let owned: usize = shares.iter().sum();
        let spread = shares.iter().max().unwrap_or(&0) - shares.iter().min().unwrap_or(&0);
        if owned == partitions && spread <= 1 {
            hold.store(false, Ordering::Release);
            for (_, consumer) in consumers.iter_mut() {
                if let BenchConsumer::Group(group) = consumer {
                    let owned = group.assignment();
                    group.resume(&owned);
                }
            }
            return Ok(slipped);
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Setup(format!(
                "the group's {} member(s) own {owned} of {partitions} partition(s) (shares \
                 {shares:?}) after {GROUP_SETTLE_TIMEOUT:?}",
                consumers.len(),
            )));
        }
    }
}

/// Actor `i`'s share of `total` over `n` actors (the first ones take the remainder).
fn share(total: u64, n: usize, i: usize) -> u64 {
    let n = n as u64;
    total / n + u64::from((i as u64) < total % n)
}

async fn measure(
    params: &Params,
    config: &ClientConfig,
    topics: &[String],
    group: &str,
    consumer_records: u64,
    options: &Options,
) -> Result<Outcome, BenchError> {
    let workload = params.workload;
    let params_arc = Arc::new(params.clone());
    let duration = match (params.messages, params.duration_secs) {
        (Some(_), d) => d,
        (None, Some(d)) => Some(d),
        (None, None) => Some(DURATION_SECS_DEFAULT),
    };
    let warmup = Duration::from_secs_f64(params.warmup_secs);

    // Connect every actor first, so connecting is not measured.
    let mut producers = Vec::new();
    if workload.produces() {
        for i in 0..params.producers {
            let partitions = params.partitions;
            let producer = Producer::connect(config.clone(), producer_config(params, partitions)?)
                .await
                .map_err(client_error("connecting a producer"))?;
            producers.push((i, producer));
        }
    }
    let consumer_config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_partition_bytes: FETCH_PARTITION_BYTES_MAX,
        ..ConsumerConfig::default()
    };
    let mut consumers = Vec::new();
    let mut settled_records = 0;
    // Group members keep what they are given paused until the group has settled.
    let hold = Arc::new(AtomicBool::new(true));
    if workload.consumes() && workload.uses_group() {
        // Members of one group share the topic; the coordinator assigns the partitions.
        for i in 0..params.consumers {
            let client = Client::connect(config.clone())
                .await
                .map_err(client_error("connecting a consumer"))?;
            let mut group_config = GroupConfig::new(group);
            group_config.session_timeout = GROUP_SESSION_TIMEOUT;
            let consumer = GroupConsumer::subscribe_with_listener(
                client,
                consumer_config.clone(),
                group_config,
                vec![topics[0].clone()],
                HoldUntilSettled(hold.clone()),
            )
            .await
            .map_err(client_error(format!("joining group {group}")))?;
            consumers.push((i, BenchConsumer::Group(Box::new(consumer))));
        }
        // Producers and the clock start once the group has shared the partitions out, as a
        // deployed group would have before traffic: otherwise the first seconds measure the
        // join (one member owning everything, then partitions moving), not the broker.
        settled_records = settle_group(&mut consumers, params.partitions, &hold).await?;
    } else if workload.consumes() {
        for (i, topic) in topics.iter().enumerate().take(params.consumers) {
            let mut consumer = Consumer::connect(config.clone(), consumer_config.clone())
                .await
                .map_err(client_error("connecting a consumer"))?;
            let tps: Vec<TopicPartition> = (0..params.partitions)
                .map(|p| TopicPartition::new(topic.as_str(), p))
                .collect();
            consumer.assign(tps.clone());
            consumer
                .seek_to_beginning(&tps)
                .await
                .map_err(client_error(format!("seeking {topic}")))?;
            consumers.push((i, BenchConsumer::Assigned(consumer)));
        }
    }

    let shared = Arc::new(Shared::new(warmup));
    let deadline = duration.map(|d| shared.measure_start + Duration::from_secs_f64(d));
    let progress: Vec<Arc<TopicProgress>> = topics.iter().map(|_| Arc::default()).collect();
    let done = Arc::new(Notify::new());
    let ticker = tokio::spawn(tick(
        shared.clone(),
        workload,
        done.clone(),
        options.progress,
    ));

    let mut producer_tasks = Vec::new();
    let producer_count = producers.len();
    for (i, producer) in producers {
        let topic_index = if topics.len() == 1 { 0 } else { i };
        let plan = ProducerPlan {
            index: i,
            topic: topics[topic_index].clone(),
            partitions: params.partitions,
            quota: params.messages.map(|m| share(m, producer_count, i)),
            deadline,
            rate: params.rate.map(|r| r / producer_count as f64),
            progress: progress[topic_index].clone(),
        };
        producer_tasks.push(tokio::spawn(produce(
            shared.clone(),
            params_arc.clone(),
            producer,
            plan,
        )));
    }
    let mut consumer_tasks = Vec::new();
    let consumer_count = consumers.len();
    // Group members count together: each owns whatever partitions it is given.
    let group_received = workload
        .uses_group()
        .then(|| Arc::new(AtomicU64::new(settled_records)));
    for (i, consumer) in consumers {
        let live = workload.produces();
        let topic_index = if topics.len() == 1 { 0 } else { i };
        let expect = if group_received.is_some() {
            consumer_records
        } else {
            share(consumer_records, consumer_count, i)
        };
        let plan = ConsumerPlan {
            topic: topics[topic_index].clone(),
            partitions: params.partitions,
            expect: (!live).then_some(expect),
            tail: live.then(|| progress[topic_index].clone()),
            group_received: group_received.clone(),
            // Consumers of live producers stop by draining; of filled topics, at the deadline
            // if one is set and no count was asked for.
            deadline: if live || params.messages.is_some() {
                None
            } else {
                deadline
            },
        };
        consumer_tasks.push(tokio::spawn(consume(
            shared.clone(),
            consumer,
            plan,
            workload.end_to_end(),
        )));
    }
    for task in producer_tasks {
        if let Err(e) = task.await {
            shared.error(format!("a producer task failed: {e}"));
        }
    }
    for task in consumer_tasks {
        if let Err(e) = task.await {
            shared.error(format!("a consumer task failed: {e}"));
        }
    }
    let finished = Instant::now();
    done.notify_one();
    let series = ticker.await.unwrap_or_default();
    if options.progress {
        eprintln!();
    }

    let secs = finished
        .saturating_duration_since(shared.measure_start)
        .as_secs_f64();
    if secs == 0.0 {
        shared.error(format!(
            "nothing was measured: the run ended during the {:.1} s warm-up",
            params.warmup_secs
        ));
    }
    let figures = |side: &SideStats| {
        let (records, bytes) = side.counter.get();
        Figures::new(records, bytes, secs, side.total().percentiles())
    };
    let produce_figures = workload.produces().then(|| figures(&shared.produce));
    let consume_figures = workload.consumes().then(|| figures(&shared.consume));
    let (headline, head) = match (&consume_figures, &produce_figures) {
        (Some(c), _) => (Side::Consume, c.clone()),
        (None, Some(p)) => (Side::Produce, p.clone()),
        (None, None) => unreachable!("every workload produces or consumes"),
    };
    let errors = shared.errors.lock().expect("not poisoned").clone();
    let results = Results {
        records_per_sec: head.records_per_sec,
        mb_per_sec: head.mb_per_sec,
        latency_ms: head.latency_ms,
        headline,
        latency_kind: latency_kind(workload).into(),
        loop_mode: params.loop_mode().into(),
        duration_secs: secs,
        produce: produce_figures,
        consume: consume_figures,
        errors: errors.0,
        error_samples: errors.1,
    };
    Ok((results, series))
}

/// What the headline latency of `workload` measures.
pub fn latency_kind(workload: Workload) -> &'static str {
    if workload.end_to_end() {
        "end-to-end"
    } else if workload.consumes() {
        "fetch"
    } else {
        "produce-ack"
    }
}

/// One producer actor: sends until its quota or deadline, then waits for every delivery.
/// Returns the records acknowledged. A failed `send` or delivery (the SDK gave up on it after
/// [`DELIVERY_TIMEOUT`]) stops it early: it sends no more and drops its producer, failing what
/// is still pending at once, rather than sending on to a broken broker until the deadline.
async fn produce(
    shared: Arc<Shared>,
    params: Arc<Params>,
    producer: Producer,
    plan: ProducerPlan,
) -> u64 {
    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut waiters = Vec::new();
    for p in 0..plan.partitions {
        let (tx, rx) = mpsc::channel(PENDING_DELIVERIES_MAX);
        senders.push(tx);
        waiters.push(tokio::spawn(await_deliveries(
            shared.clone(),
            shared.produce.recorder(),
            format!("{}-{p}", plan.topic),
            rx,
            plan.progress.clone(),
            failed.clone(),
        )));
    }
    let size = params.message_size;
    let mut rng = SmallRng::seed_from_u64(plan.index as u64);
    let mut filler = vec![0u8; size.max];
    rng.fill_bytes(&mut filler);
    let filler = Bytes::from(filler);
    let stamp = params.workload.end_to_end();
    let batch = params.messages_per_batch as u64;
    let mut limiter = plan
        .rate
        .map(|r| crate::rate::RateLimiter::new(r, Instant::now()));
    let mut sent = 0u64;
    loop {
        if plan.quota.is_some_and(|q| sent >= q) || failed.load(Ordering::Acquire) {
            break;
        }
        let start = match limiter.as_mut() {
            Some(l) => {
                let at = l.next_intended();
                if plan.deadline.is_some_and(|d| at >= d) {
                    break;
                }
                if at > Instant::now() {
                    tokio::time::sleep_until(at.into()).await;
                }
                at
            }
            None => {
                let now = Instant::now();
                if plan.deadline.is_some_and(|d| now >= d) {
                    break;
                }
                now
            }
        };
        let len = if size.min == size.max {
            size.min
        } else {
            rng.gen_range(size.min..=size.max)
        };
        let value = if stamp {
            let mut v = BytesMut::with_capacity(len);
            v.put_u64_le(start.saturating_duration_since(shared.anchor).as_nanos() as u64);
            v.extend_from_slice(&filler[..len - STAMP_BYTES]);
            v.freeze()
        } else {
            filler.slice(..len)
        };
        let (key, partition, explicit) = if params.keyed {
            let key = Bytes::from(format!("{:016x}", rng.gen::<u64>()));
            let p = partition_for_key(&key, plan.partitions);
            (Some(key), p, None)
        } else {
            let p = ((sent / batch + plan.index as u64) % plan.partitions as u64) as i32;
            (None, p, Some(p))
        };
        let record = ProducerRecord {
            topic: plan.topic.clone(),
            partition: explicit,
            key,
            value: Some(value),
            headers: Vec::new(),
            timestamp: None,
        };
        sent += 1;
        match producer.send(record).await {
            Ok(delivery) => {
                let tx = &senders[partition as usize];
                if tx.send((start, delivery, len)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                shared.error(format!("send to {}: {e}", plan.topic));
                failed.store(true, Ordering::Release);
                break;
            }
        }
    }
    let producer = if failed.load(Ordering::Acquire) {
        // Its pending deliveries resolve with errors now instead of after their timeouts.
        drop(producer);
        None
    } else {
        if let Err(e) = producer.flush().await {
            shared.error(format!("flushing the producer of {}: {e}", plan.topic));
        }
        Some(producer)
    };
    drop(senders);
    for w in waiters {
        match w.await {
            Ok(n) => {
                delivered.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => shared.error(format!("a delivery task failed: {e}")),
        }
    }
    if let Some(producer) = producer {
        if let Err(e) = producer.close().await {
            shared.error(format!("closing the producer of {}: {e}", plan.topic));
        }
    }
    plan.progress.done.store(true, Ordering::Release);
    delivered.load(Ordering::Relaxed)
}

/// Awaits one partition's deliveries in send order, recording each record's latency; sets
/// `failed` when one fails.
async fn await_deliveries(
    shared: Arc<Shared>,
    recorder: Arc<Recorder>,
    partition: String,
    mut rx: mpsc::Receiver<(Instant, DeliveryFuture, usize)>,
    progress: Arc<TopicProgress>,
    failed: Arc<AtomicBool>,
) -> u64 {
    let mut delivered = 0;
    while let Some((start, delivery, bytes)) = rx.recv().await {
        match delivery.await {
            Ok(_) => {
                let now = Instant::now();
                delivered += 1;
                progress.delivered.fetch_add(1, Ordering::Release);
                if shared.measuring(now) {
                    shared.produce.counter.add(1, bytes as u64);
                    recorder.record(now.saturating_duration_since(start));
                }
            }
            Err(e) => {
                failed.store(true, Ordering::Release);
                shared.error(format!("delivery to {partition}: {e}"));
            }
        }
    }
    delivered
}

/// One consumer actor.
/// A benchmark consumer: assigned partitions, or a consumer-group member.
enum BenchConsumer {
    Assigned(Consumer),
    Group(Box<GroupConsumer>),
}

impl BenchConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        match self {
            BenchConsumer::Assigned(c) => c.poll(timeout).await,
            BenchConsumer::Group(g) => g.poll(timeout).await,
        }
    }
}

async fn consume(shared: Arc<Shared>, mut consumer: BenchConsumer, plan: ConsumerPlan, e2e: bool) {
    let recorder = shared.consume.recorder();
    let mut own_received = 0u64;
    let mut failed_polls = 0;
    let mut drain_deadline = None;
    // When `received` last grew, or nothing was owed (or the consumer started).
    let mut progressed = (0u64, Instant::now());
    loop {
        let received = plan
            .group_received
            .as_ref()
            .map_or(own_received, |g| g.load(Ordering::Acquire));
        let now = Instant::now();
        if plan.expect.is_some_and(|n| received >= n) {
            break;
        }
        let owed = plan.expect.is_some()
            || plan
                .tail
                .as_ref()
                .is_some_and(|p| p.delivered.load(Ordering::Acquire) > received);
        if received > progressed.0 || !owed {
            progressed = (received, now);
        }
        let stalled = now.saturating_duration_since(progressed.1);
        if owed && stalled >= STALL_TIMEOUT {
            shared.error(format!(
                "the consumer of {} received no record for {:.1} s ({received} so far) while \
                 records were owed: is the broker down?",
                plan.topic,
                stalled.as_secs_f64()
            ));
            break;
        }
        if plan.deadline.is_some_and(|d| now >= d) {
            break;
        }
        if let Some(progress) = &plan.tail {
            if progress.done.load(Ordering::Acquire) {
                let written = progress.delivered.load(Ordering::Acquire);
                if received >= written {
                    break;
                }
                let until = *drain_deadline.get_or_insert(now + DRAIN_TIMEOUT);
                if now > until {
                    shared.error(format!(
                        "the consumer of {} received {received} of {written} records within {DRAIN_TIMEOUT:?} of the producer's end",
                        plan.topic
                    ));
                    break;
                }
            }
        }
        let polled_at = Instant::now();
        match consumer.poll(POLL_TIMEOUT).await {
            Ok(records) => {
                failed_polls = 0;
                let now = Instant::now();
                let measuring = shared.measuring(now);
                let now_ns = now.saturating_duration_since(shared.anchor).as_nanos() as u64;
                let mut bytes = 0u64;
                for r in &records {
                    let value = r.value.as_deref().unwrap_or_default();
                    bytes += value.len() as u64;
                    if e2e && measuring {
                        if let Some(stamp) = value.get(..STAMP_BYTES) {
                            let sent_ns =
                                u64::from_le_bytes(stamp.try_into().expect("STAMP_BYTES long"));
                            recorder.record(Duration::from_nanos(now_ns.saturating_sub(sent_ns)));
                        }
                    }
                }
                own_received += records.len() as u64;
                if let Some(group) = &plan.group_received {
                    group.fetch_add(records.len() as u64, Ordering::AcqRel);
                }
                if measuring {
                    shared.consume.counter.add(records.len() as u64, bytes);
                    if !e2e && !records.is_empty() {
                        recorder.record(now - polled_at);
                    }
                }
            }
            Err(e) => {
                shared.error(format!("poll of {}: {e}", plan.topic));
                failed_polls += 1;
                if failed_polls >= POLL_ERRORS_MAX {
                    break;
                }
                tokio::time::sleep(POLL_TIMEOUT).await;
            }
        }
    }
    if let BenchConsumer::Group(group) = consumer {
        if let Err(e) = (*group).close().await {
            shared.error(format!("leaving the group: {e}"));
        }
    }
    let received = plan
        .group_received
        .as_ref()
        .map_or(own_received, |g| g.load(Ordering::Acquire));
    if let Some(n) = plan.expect {
        if received < n && plan.deadline.is_none() {
            shared.error(format!(
                "the consumer of {} ({} partition(s)) received {received} of {n} records",
                plan.topic, plan.partitions
            ));
        }
    }
}

/// Samples the counters every second from the end of the warm-up until `done`, printing the
/// progress line; returns the series.
async fn tick(
    shared: Arc<Shared>,
    workload: Workload,
    done: Arc<Notify>,
    progress: bool,
) -> Vec<Point> {
    use std::io::IsTerminal as _;
    let progress = progress && std::io::stderr().is_terminal();
    let mut series = Vec::new();
    let mut last = (shared.produce.counter.get(), shared.consume.counter.get());
    let mut last_at = shared.measure_start;
    if progress && Instant::now() < shared.measure_start {
        eprint!("\rquiver bench: warming up");
    }
    let mut finished = false;
    while !finished {
        let next = last_at + Duration::from_secs(1);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = done.notified() => finished = true,
        }
        let now = Instant::now();
        if now < shared.measure_start {
            continue;
        }
        let secs = now.saturating_duration_since(last_at).as_secs_f64();
        if secs < 0.05 {
            continue;
        }
        let counters = (shared.produce.counter.get(), shared.consume.counter.get());
        let side = |stats: &SideStats, now: (u64, u64), before: (u64, u64)| {
            Figures::new(
                now.0 - before.0,
                now.1 - before.1,
                secs,
                stats.take_interval().percentiles(),
            )
        };
        let produce = workload
            .produces()
            .then(|| side(&shared.produce, counters.0, last.0));
        let consume = workload
            .consumes()
            .then(|| side(&shared.consume, counters.1, last.1));
        let head = consume.as_ref().or(produce.as_ref()).expect("one side");
        let point = Point {
            second: now
                .saturating_duration_since(shared.measure_start)
                .as_secs_f64(),
            records_per_sec: head.records_per_sec,
            mb_per_sec: head.mb_per_sec,
            latency_ms: head.latency_ms,
            produce: produce.clone(),
            consume: consume.clone(),
        };
        if progress {
            let mut line = format!("\rquiver bench: {:>6.1} s", point.second);
            for (name, f) in [("produce", &produce), ("consume", &consume)] {
                if let Some(f) = f {
                    line += &format!(
                        " | {name} {:>9.0} rec/s {:>8.1} MB/s",
                        f.records_per_sec, f.mb_per_sec
                    );
                }
            }
            if let Some(l) = &point.latency_ms {
                line += &format!(" | {} p99 {:.2} ms", latency_kind(workload), l.p99);
            }
            let errors = shared.error_count();
            if errors > 0 {
                line += &format!(" | {errors} errors");
            }
            eprint!("{line}   ");
        }
        series.push(point);
        last = counters;
        last_at = now;
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!((0..4).map(|i| share(2, 4, i)).sum::<u64>(), 2);
    }

    #[test]
    fn recorders_merge_totals_and_reset_intervals() {
        let side = SideStats::default();
        let (a, b) = (side.recorder(), side.recorder());
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(3));
        assert_eq!(side.take_interval().len(), 2);
        assert_eq!(side.take_interval().len(), 0, "intervals are cleared");
        b.record(Duration::from_millis(5));
        assert_eq!(side.take_interval().len(), 1);
        let total = side.total();
        assert_eq!(total.len(), 3, "totals keep everything");
        assert!((total.percentiles().unwrap().max - 5.0).abs() < 0.01);
    }
}
