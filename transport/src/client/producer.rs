//! [`Producer`]: Kafka-style batching producer. `send` picks the partition and appends the
//! record to that partition's open batch (waiting for buffer memory if needed); a sender task
//! seals batches when full or after `linger`, groups ready batches by the shard that owns their
//! partition, and sends one produce request per shard at a time per partition, retrying
//! retriable errors with back-off until `delivery_timeout`. See the accumulator's contract for
//! ordering and bounds.
//!
//! Idempotence is on by default (as in Kafka 3.0+): the producer gets a producer id from the
//! broker (InitProducerId) and stamps each batch with a per-partition sequence once, when it
//! is sealed; a retry after a lost response is then recognised by the broker and answered
//! with the first append's offsets, so retries neither duplicate nor reorder records. When the
//! broker refuses a partition's sequence (OutOfOrderSequence, UnknownProducerId) the
//! partition takes a fresh producer id and re-stamps what it has queued; InvalidProducerEpoch
//! (fenced) fails the batches.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::batch::{Compression, RecordHeader};
use crate::protocol::{
    Acks, ApiKey, ErrorCode, InitProducerIdRequest, ProducePartition, ProduceRequest,
    ProduceResponse, ProduceTopic, Request, Response,
};

pub use super::accumulator::ProducerIdentity;
use super::accumulator::{
    record_size_bound, Accumulator, AccumulatorConfig, Append, Batch, BatchMeta, PartitionChoice,
};
use super::net::unexpected;
use super::partitioner::SmallRng;
use super::{BrokerAddr, Client, ClientConfig, ClientError, TopicPartition};

/// Longest the sender sleeps without being woken, as a safety net.
const SENDER_IDLE_WAKE_MAX: Duration = Duration::from_millis(100);

/// Producer settings; defaults follow Kafka's producer.
///
/// ```
/// use std::time::Duration;
/// use quiver_transport::client::ProducerConfig;
/// use quiver_transport::batch::Compression;
///
/// let config = ProducerConfig {
///     linger: Duration::from_millis(20),
///     compression: Compression::Lz4,
///     ..ProducerConfig::default()
/// };
/// assert_eq!(config.batch_size, 16 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Acknowledgements to wait for (default all). With [`Acks::None`] no response comes and
    /// every offset is reported as -1.
    pub acks: Acks,
    /// Most bytes of one batch, uncompressed, bytes (default 16 KiB). A larger record gets a
    /// batch of its own.
    pub batch_size: usize,
    /// How long a batch waits for more records before it is sent (default 5 ms).
    pub linger: Duration,
    /// Codec batches are compressed with when sealed (default none).
    pub compression: Compression,
    /// Retries of a batch after retriable errors (default unlimited: `delivery_timeout`
    /// bounds them).
    pub retries: u32,
    /// Longest time from `send` to a result, retries included (default 120 s).
    pub delivery_timeout: Duration,
    /// First wait before a retry (default 100 ms); doubles per attempt.
    pub retry_backoff: Duration,
    /// Longest wait before a retry (default 1 s).
    pub retry_backoff_max: Duration,
    /// Longest wait for one produce response; also the broker's `timeout_ms` (default 30 s).
    pub request_timeout: Duration,
    /// Produce requests in flight to one broker shard at once (default 5).
    pub max_in_flight_per_connection: usize,
    /// Bytes of records held by the producer, queued or in flight (default 32 MiB); `send`
    /// waits (up to `max_block`) when they are used up.
    pub buffer_memory: usize,
    /// Longest `send` waits for metadata or buffer memory (default 60 s).
    pub max_block: Duration,
    /// Largest produce request, bytes (default 1 MiB); a record whose encoded size may exceed
    /// it is rejected by `send` before anything is sent.
    pub max_request_size: usize,
    /// Idempotent producing (Kafka's `enable.idempotence`): `None` (default) turns it on
    /// unless `acks` is not all, `Some(true)` requires it (and acks all), `Some(false)` turns
    /// it off. See the module docs.
    pub enable_idempotence: Option<bool>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            batch_size: 16 * 1024,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            retries: u32::MAX,
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            max_in_flight_per_connection: 5,
            buffer_memory: 32 << 20,
            max_block: Duration::from_secs(60),
            max_request_size: 1 << 20,
            enable_idempotence: None,
        }
    }
}

impl ProducerConfig {
    fn validate(&self) -> Result<(), ClientError> {
        let bad = |what: &str| Err(ClientError::Config(format!("producer: {what}")));
        if self.batch_size == 0 {
            return bad("batch_size must be > 0");
        }
        if self.max_in_flight_per_connection == 0 {
            return bad("max_in_flight_per_connection must be > 0");
        }
        if self.buffer_memory == 0 || u32::try_from(self.buffer_memory).is_err() {
            return bad("buffer_memory must be in 1..=4 GiB");
        }
        if self.max_request_size == 0 {
            return bad("max_request_size must be > 0");
        }
        if self.delivery_timeout.is_zero() {
            return bad("delivery_timeout must be > 0");
        }
        if self.enable_idempotence == Some(true) && self.acks != Acks::All {
            return bad("enable_idempotence needs acks = all (or leave enable_idempotence unset)");
        }
        Ok(())
    }

    /// Whether this configuration produces idempotently.
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence.unwrap_or(true) && self.acks == Acks::All
    }
}

/// A record to send.
///
/// ```
/// use quiver_transport::client::ProducerRecord;
///
/// let record = ProducerRecord::new("orders", "payload")
///     .with_key("customer-7")
///     .with_header("trace", Some("abc"))
///     .with_timestamp(1_700_000_000_000);
/// assert_eq!(record.partition, None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Partition; `None` lets the partitioner choose (murmur2 of the key, else sticky).
    pub partition: Option<i32>,
    /// Key, or none.
    pub key: Option<Bytes>,
    /// Value, or none (a tombstone under compaction).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
    /// Create time in ms since the Unix epoch; `None` for now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..ProducerRecord::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Self {
        self.headers.push(RecordHeader {
            key: key.into(),
            value: value.map(Into::into),
        });
        self
    }

    /// Sets the timestamp (ms since the Unix epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Where a record was written.
///
/// ```
/// use quiver_transport::client::RecordMetadata;
/// let meta = RecordMetadata { topic: "t".into(), partition: 0, offset: 7, timestamp: 1 };
/// assert_eq!(meta.offset, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with acks=0.
    pub offset: i64,
    /// The record's timestamp (the broker's append time if the topic uses log-append time).
    pub timestamp: i64,
}

/// The result of one [`Producer::send`]; resolves when the record's batch is acknowledged (or
/// written, with acks=0) or has failed. Dropping it does not cancel the send.
///
/// ```no_run
/// # async fn demo(producer: quiver_transport::client::Producer) -> Result<(), quiver_transport::client::ClientError> {
/// use quiver_transport::client::ProducerRecord;
/// let future = producer.send(ProducerRecord::new("t", "v")).await?;
/// let metadata = future.await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata, ClientError>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            // The producer was dropped with the record still queued.
            Poll::Ready(Err(_)) => Poll::Ready(Err(ClientError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Buffer memory: bytes of records the producer holds, with waiting when used up.
#[derive(Debug)]
pub(crate) struct BufferPool {
    semaphore: Semaphore,
    capacity_bytes: usize,
}

impl BufferPool {
    pub(crate) fn new(capacity_bytes: usize) -> BufferPool {
        BufferPool {
            semaphore: Semaphore::new(capacity_bytes),
            capacity_bytes,
        }
    }

    /// Reserves `bytes` (at most the capacity), waiting for releases when needed (FIFO).
    pub(crate) async fn acquire(&self, bytes: usize) -> Result<(), ClientError> {
        assert!(
            bytes <= self.capacity_bytes,
            "checked against buffer_memory by send"
        );
        let permits = u32::try_from(bytes).expect("buffer_memory fits u32, checked by validate");
        let permit = self
            .semaphore
            .acquire_many(permits)
            .await
            .map_err(|_| ClientError::Closed)?;
        permit.forget();
        Ok(())
    }

    /// Returns `bytes` reserved earlier.
    pub(crate) fn release(&self, bytes: usize) {
        self.semaphore.add_permits(bytes);
    }

    /// Bytes free now.
    pub(crate) fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// A Kafka-style producer. Cheap to clone; clones share batches, memory and the sender task.
/// Call [`Producer::close`] to deliver what is queued before dropping it: dropping the last
/// clone fails records still queued with [`ClientError::Closed`].
///
/// ```no_run
/// # async fn demo() -> Result<(), quiver_transport::client::ClientError> {
/// use quiver_transport::client::*;
///
/// let config = ClientConfig::new("127.0.0.1:9190", ClientConfig::trust_from_env_or_default()?);
/// let producer = Producer::connect(config, ProducerConfig::default()).await?;
/// let mut pending = Vec::new();
/// for i in 0..1000 {
///     let record = ProducerRecord::new("events", format!("event {i}")).with_key(format!("k{i}"));
///     pending.push(producer.send(record).await?);
/// }
/// producer.flush().await?;
/// for delivery in pending {
///     delivery.await?;
/// }
/// producer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.handle.shared.config)
            .finish_non_exhaustive()
    }
}

struct Handle {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        if let Some(task) = lock(&self.sender).take() {
            task.abort();
        }
        let failed = shared.acc().abort(&ClientError::Closed);
        for (meta, error) in failed {
            shared.resolve(meta, Err(error));
        }
    }
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    acc: Mutex<Accumulator>,
    memory: BufferPool,
    /// Wakes the sender: a batch is full, a request completed, a flush started.
    wake: Notify,
    /// No more sends (close or drop).
    closed: AtomicBool,
    /// The identity the producer started with (idempotent producers).
    identity: Option<ProducerIdentity>,
    /// The sender should exit once everything is delivered.
    stopping: AtomicBool,
    in_flight: Mutex<HashMap<BrokerAddr, usize>>,
    /// Topics whose metadata is being refreshed, and when that started.
    refreshing: Mutex<HashMap<String, (bool, Instant)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent, so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Producer {
    /// Connects to the cluster and starts a producer.
    pub async fn connect(
        client_config: ClientConfig,
        config: ProducerConfig,
    ) -> Result<Producer, ClientError> {
        Producer::with_client(Client::connect(client_config).await?, config).await
    }

    /// Starts a producer on an existing [`Client`], checking the broker speaks Produce and
    /// Metadata. Must run inside a tokio runtime.
    pub async fn with_client(
        client: Client,
        config: ProducerConfig,
    ) -> Result<Producer, ClientError> {
        config.validate()?;
        let idempotent = config.idempotent();
        let mut apis = vec![ApiKey::Metadata, ApiKey::Produce];
        if idempotent {
            apis.push(ApiKey::InitProducerId);
        }
        client.ensure_apis(&apis).await?;
        let identity = if idempotent {
            let deadline = Instant::now() + config.max_block;
            Some(init_producer_id(&client, &config, deadline).await?)
        } else {
            None
        };
        let mut acc = Accumulator::new(
            AccumulatorConfig {
                batch_bytes_max: config.batch_size,
                linger: config.linger,
                compression: config.compression,
                delivery_timeout: config.delivery_timeout,
                retries: config.retries,
                retry_backoff: config.retry_backoff,
                retry_backoff_max: config.retry_backoff_max,
                idempotent,
            },
            SmallRng::from_entropy(),
        );
        if let Some(identity) = identity {
            acc.set_identity(identity);
        }
        let shared = Arc::new(Shared {
            client,
            memory: BufferPool::new(config.buffer_memory),
            config,
            acc: Mutex::new(acc),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            identity,
            stopping: AtomicBool::new(false),
            in_flight: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
        });
        let sender = tokio::spawn(run_sender(shared.clone()));
        Ok(Producer {
            handle: Arc::new(Handle {
                shared,
                sender: Mutex::new(Some(sender)),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.handle.shared.config
    }

    /// The producer id and epoch it started with, if idempotent. (A partition whose sequence
    /// the broker refused continues under a fresh id.)
    pub fn identity(&self) -> Option<ProducerIdentity> {
        self.handle.shared.identity
    }

    /// Queues a record and returns a future of its result. Waits (up to `max_block`) for the
    /// topic's metadata and for buffer memory: that wait is the producer's back-pressure.
    ///
    /// Fails at once, sending nothing, if the record may exceed `max_request_size` or
    /// `buffer_memory` ([`ClientError::RecordTooLarge`]), names a partition the topic lacks, or
    /// the producer is closed.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        let shared = &self.handle.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Closed);
        }
        let size_bytes = check_record_size(&record, &shared.config)?;
        let deadline = Instant::now() + shared.config.max_block;
        let partition_count = shared.partition_count(&record.topic, deadline).await?;
        if let Some(p) = record.partition {
            if p < 0 || p >= partition_count {
                return Err(ClientError::InvalidArgument(format!(
                    "partition {p} of topic {} does not exist ({partition_count} partitions)",
                    record.topic
                )));
            }
        }
        tokio::time::timeout_at(deadline.into(), shared.memory.acquire(size_bytes))
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!(
                    "{size_bytes} bytes of buffer memory ({} bytes in use)",
                    shared.config.buffer_memory - shared.memory.available()
                ),
                after: shared.config.max_block,
            })??;
        let (delivery, rx) = oneshot::channel();
        let choice = match (record.partition, &record.key) {
            (Some(p), _) => PartitionChoice::Explicit(p),
            (None, Some(key)) => PartitionChoice::Key(key),
            (None, None) => PartitionChoice::Sticky,
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let wake = {
            let mut acc = shared.acc();
            // Checked under the lock: a close that started flushing sees this record queued.
            if shared.closed.load(Ordering::SeqCst) {
                drop(acc);
                shared.memory.release(size_bytes);
                return Err(ClientError::Closed);
            }
            acc.append(
                Instant::now(),
                Append {
                    topic: &record.topic,
                    choice,
                    partition_count,
                    timestamp,
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                    headers: &record.headers,
                    reserved_bytes: size_bytes,
                    delivery,
                },
            )
            .1
        };
        if wake {
            shared.wake.notify_one();
        }
        Ok(DeliveryFuture { rx })
    }

    /// Sends everything queued now without waiting for linger, and waits until every record
    /// sent before this call has its result.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        let waits = shared.acc().begin_flush();
        // Ends the flush even if this future is dropped half-way.
        struct EndFlush<'a>(&'a Shared);
        impl Drop for EndFlush<'_> {
            fn drop(&mut self) {
                self.0.acc().end_flush();
            }
        }
        let _end = EndFlush(shared);
        shared.wake.notify_one();
        for mut done in waits {
            // An error means the batch's sender is gone: it completed (or was aborted).
            let _ = done.wait_for(|finished| *finished).await;
        }
        Ok(())
    }

    /// Stops accepting records, delivers everything queued (as [`Producer::flush`]), and stops
    /// the sender task. Later `send`s fail with [`ClientError::Closed`].
    pub async fn close(&self) -> Result<(), ClientError> {
        let shared = &self.handle.shared;
        shared.closed.store(true, Ordering::SeqCst);
        self.flush().await?;
        shared.stopping.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        let task = lock(&self.handle.sender).take();
        if let Some(task) = task {
            // The sender only ends by returning (or by abort when the handle drops).
            let _ = task.await;
        }
        Ok(())
    }
}

/// The record's size bound, checked against `max_request_size` and `buffer_memory`.
pub(crate) fn check_record_size(
    record: &ProducerRecord,
    config: &ProducerConfig,
) -> Result<usize, ClientError> {
    let size_bytes = record_size_bound(
        record.key.as_deref(),
        record.value.as_deref(),
        &record.headers,
    );
    for (limit, limit_bytes) in [
        ("max_request_size", config.max_request_size),
        ("buffer_memory", config.buffer_memory),
    ] {
        if size_bytes > limit_bytes {
            return Err(ClientError::RecordTooLarge {
                size_bytes,
                limit,
                limit_bytes,
            });
        }
    }
    Ok(size_bytes)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Shared {
    fn acc(&self) -> MutexGuard<'_, Accumulator> {
        lock(&self.acc)
    }

    /// Partitions of `topic`, waiting for metadata (a topic being created) until `deadline`.
    async fn partition_count(&self, topic: &str, deadline: Instant) -> Result<i32, ClientError> {
        let count = |route: &super::net::TopicRoute| i32::try_from(route.partitions.len()).ok();
        if let Some(n) = self.client.cached_route(topic).and_then(|r| count(&r)) {
            if n > 0 {
                return Ok(n);
            }
        }
        let mut backoff = self.config.retry_backoff;
        loop {
            let error = match self.client.route(topic).await {
                Ok(route) => match count(&route) {
                    Some(n) if n > 0 => return Ok(n),
                    _ => ClientError::broker(
                        crate::protocol::ErrorCode::LeaderNotAvailable,
                        Some("topic has no partitions yet".into()),
                        topic,
                        None,
                    ),
                },
                Err(e) if e.is_retriable() => e,
                Err(e) => return Err(e),
            };
            if Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.retry_backoff_max);
        }
    }

    /// Completes a batch: releases its memory, forgets it for flush, resolves its records.
    fn resolve(&self, meta: BatchMeta, result: Result<(i64, i64), ClientError>) {
        self.memory.release(meta.reserved_bytes);
        self.acc().finish(meta.id);
        match result {
            Ok((base_offset, log_append_time_ms)) => meta.succeed(base_offset, log_append_time_ms),
            Err(error) => meta.fail(error),
        }
    }

    fn try_start_request(&self, dest: &BrokerAddr) -> bool {
        let mut in_flight = lock(&self.in_flight);
        let count = in_flight.entry(dest.clone()).or_default();
        if *count >= self.config.max_in_flight_per_connection {
            return false;
        }
        *count += 1;
        true
    }

    fn end_request(&self, dest: &BrokerAddr) {
        let mut in_flight = lock(&self.in_flight);
        if let Some(count) = in_flight.get_mut(dest) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(dest);
            }
        }
    }

    /// The cached leader address of `tp`, or `None` (then a refresh is started).
    fn leader(self: &Arc<Self>, tp: &TopicPartition) -> Option<BrokerAddr> {
        let leader = self.client.cached_route(&tp.topic).and_then(|route| {
            usize::try_from(tp.partition)
                .ok()
                .and_then(|i| route.partitions.get(i))
                .and_then(|p| p.leader.clone())
        });
        if leader.is_none() {
            self.refresh(&tp.topic);
        }
        leader
    }

    /// Starts a metadata refresh of `topic` unless one runs or one started within
    /// `retry_backoff`.
    fn refresh(self: &Arc<Self>, topic: &str) {
        {
            let mut refreshing = lock(&self.refreshing);
            let now = Instant::now();
            if let Some(&(running, started)) = refreshing.get(topic) {
                if running || now < started + self.config.retry_backoff {
                    return;
                }
            }
            refreshing.insert(topic.to_string(), (true, now));
            // Bounded by the topics this producer writes to.
        }
        let shared = self.clone();
        let topic = topic.to_string();
        tokio::spawn(async move {
            // Failures are retried by the next sender pass; batches expire at delivery_timeout.
            let _ = shared.client.metadata(Some(vec![topic.clone()])).await;
            if let Some(entry) = lock(&shared.refreshing).get_mut(&topic) {
                entry.0 = false;
            }
            shared.wake.notify_one();
        });
    }
}

/// The sender task: seals due batches, fails expired ones, and sends ready batches to their
/// leaders' shards, one request per shard at a time up to `max_in_flight_per_connection`.
async fn run_sender(shared: Arc<Shared>) {
    loop {
        let now = Instant::now();
        let ready = shared.acc().ready(now);
        for (meta, error) in ready.failed {
            shared.resolve(meta, Err(error));
        }
        let mut by_dest: BTreeMap<BrokerAddr, Vec<TopicPartition>> = BTreeMap::new();
        for tp in ready.partitions {
            if let Some(dest) = shared.leader(&tp) {
                by_dest.entry(dest).or_default().push(tp);
            }
        }
        let budget = shared.config.max_request_size;
        for (dest, tps) in by_dest {
            let mut tps = tps.into_iter().peekable();
            while tps.peek().is_some() {
                if !shared.try_start_request(&dest) {
                    break;
                }
                let mut request: Vec<(TopicPartition, Vec<Batch>)> = Vec::new();
                let mut bytes = 0;
                {
                    let mut acc = shared.acc();
                    while let Some(tp) = tps.peek() {
                        let front = acc.front_len(tp).unwrap_or(0);
                        if !request.is_empty() && bytes + front > budget {
                            break;
                        }
                        let tp = tps.next().expect("peeked");
                        let batches = acc.take(&tp, budget.saturating_sub(bytes));
                        bytes += batches.iter().map(|b| b.bytes.len()).sum::<usize>();
                        if !batches.is_empty() {
                            request.push((tp, batches));
                        }
                    }
                }
                if request.is_empty() {
                    shared.end_request(&dest);
                    continue;
                }
                tokio::spawn(send_produce(shared.clone(), dest.clone(), request));
            }
        }
        if shared.stopping.load(Ordering::SeqCst) && shared.acc().is_empty() {
            return;
        }
        let wake_at = ready.next_wake.map_or(now + SENDER_IDLE_WAKE_MAX, |at| {
            at.min(now + SENDER_IDLE_WAKE_MAX)
        });
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(wake_at.into()) => {}
        }
    }
}

/// The produce request for `batches`, grouped by topic; several batches of one partition are
/// sent back to back in its `records`.
fn build_request(
    config: &ProducerConfig,
    batches: &[(TopicPartition, Vec<Batch>)],
) -> ProduceRequest {
    let mut topics: Vec<ProduceTopic> = Vec::new();
    for (tp, batches) in batches {
        let records = match batches.as_slice() {
            [one] => one.bytes.clone(),
            many => {
                let total = many.iter().map(|b| b.bytes.len()).sum();
                let mut buf = BytesMut::with_capacity(total);
                for batch in many {
                    buf.extend_from_slice(&batch.bytes);
                }
                buf.freeze()
            }
        };
        let partition = ProducePartition {
            partition: tp.partition,
            records,
        };
        match topics.iter_mut().find(|t| t.name == tp.topic) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(ProduceTopic {
                name: tp.topic.clone(),
                partitions: vec![partition],
            }),
        }
    }
    ProduceRequest {
        transactional_id: None,
        acks: config.acks,
        timeout_ms: i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
        topics,
    }
}

/// Sends one produce request and resolves, retries or fails each partition's batches.
async fn send_produce(
    shared: Arc<Shared>,
    dest: BrokerAddr,
    batches: Vec<(TopicPartition, Vec<Batch>)>,
) {
    let request = Request::from(build_request(&shared.config, &batches));
    // No longer than the oldest batch's delivery timeout allows (Kafka's KIP-91): a request
    // stuck on a dead broker fails its batches when they expire, not a request timeout later.
    let expires = batches
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| b.meta.created))
        .min()
        .map(|created| created + shared.config.delivery_timeout);
    let timeout = expires.map_or(shared.config.request_timeout, |at| {
        shared
            .config
            .request_timeout
            .min(at.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1))
    });
    let outcome: Result<Option<ProduceResponse>, ClientError> = if shared.config.acks == Acks::None
    {
        shared
            .client
            .send_oneway(&dest, request, timeout)
            .await
            .map(|()| None)
    } else {
        match shared.client.request(&dest, request, timeout).await {
            Ok(Response::Produce(response)) => Ok(Some(response)),
            Ok(other) => Err(unexpected(ApiKey::Produce, &other)),
            Err(e) => Err(e),
        }
    };
    for (tp, batches) in batches {
        let result = match &outcome {
            Ok(None) => Ok((-1, -1)),
            Ok(Some(response)) => partition_result(response, &tp),
            Err(e) => Err(e.clone()),
        };
        let idempotent = shared.config.idempotent();
        match result {
            // Appended before, but too long ago for the broker to remember the offsets
            // (Kafka's clients count it as success too).
            Err(ClientError::Broker {
                code: ErrorCode::DuplicateSequenceNumber,
                ..
            }) if idempotent => {
                shared.acc().complete(&tp);
                for batch in batches {
                    shared.resolve(batch.meta, Ok((-1, -1)));
                }
            }
            Err(ClientError::Broker {
                code: ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId,
                ..
            }) if idempotent => {
                shared.acc().await_identity(&tp, batches);
                tokio::spawn(renew_identity(Arc::downgrade(&shared), tp));
            }
            Ok((mut base_offset, log_append_time_ms)) => {
                shared.acc().complete(&tp);
                for batch in batches {
                    let count = batch.record_count() as i64;
                    shared.resolve(batch.meta, Ok((base_offset, log_append_time_ms)));
                    if base_offset >= 0 {
                        base_offset += count;
                    }
                }
            }
            Err(error) if error.is_retriable() => {
                if error.needs_metadata_refresh() {
                    shared.client.invalidate_metadata(&tp.topic);
                }
                let gave_up = shared.acc().requeue(Instant::now(), &tp, batches, &error);
                for (meta, error) in gave_up {
                    shared.resolve(meta, Err(error));
                }
            }
            Err(error) => {
                shared.acc().complete(&tp);
                for batch in batches {
                    shared.resolve(batch.meta, Err(error.clone()));
                }
            }
        }
    }
    shared.end_request(&dest);
    shared.wake.notify_one();
}

/// Asks any broker for a new producer id, retrying retriable errors with back-off until
/// `deadline`.
async fn init_producer_id(
    client: &Client,
    config: &ProducerConfig,
    deadline: Instant,
) -> Result<ProducerIdentity, ClientError> {
    let mut backoff = config.retry_backoff;
    loop {
        let request = Request::from(InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            producer_id: -1,
            producer_epoch: -1,
        });
        let error = match client.request_any(request).await {
            Ok(Response::InitProducerId(r)) if r.error_code.is_ok() => {
                return Ok(ProducerIdentity {
                    id: r.producer_id,
                    epoch: r.producer_epoch,
                })
            }
            Ok(Response::InitProducerId(r)) => ClientError::Broker {
                code: r.error_code,
                message: r.error_message,
                topic: None,
                partition: None,
            },
            Ok(other) => return Err(unexpected(ApiKey::InitProducerId, &other)),
            Err(e) => e,
        };
        if !error.is_retriable() || Instant::now() + backoff >= deadline {
            return Err(error);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.retry_backoff_max);
    }
}

/// Gets `tp` a fresh producer id after the broker refused its sequence, retrying until it
/// succeeds or the producer is gone; meanwhile the partition sends nothing (its batches still
/// expire at `delivery_timeout`).
async fn renew_identity(shared: std::sync::Weak<Shared>, tp: TopicPartition) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        // One attempt window at a time, so a dropped producer ends this task.
        let deadline = Instant::now() + strong.config.request_timeout;
        match init_producer_id(&strong.client, &strong.config, deadline).await {
            Ok(identity) => {
                strong.acc().reset_identity(&tp, identity);
                strong.wake.notify_one();
                return;
            }
            Err(_) => {
                let backoff = strong.config.retry_backoff_max;
                drop(strong);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// The base offset and log-append time for `tp`, or its error.
fn partition_result(
    response: &ProduceResponse,
    tp: &TopicPartition,
) -> Result<(i64, i64), ClientError> {
    let found = response
        .topics
        .iter()
        .filter(|t| t.name == tp.topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == tp.partition);
    match found {
        None => Err(ClientError::Protocol(format!(
            "produce response lacks {tp}"
        ))),
        Some(p) if !p.error_code.is_ok() => Err(ClientError::broker(
            p.error_code,
            p.error_message.clone(),
            &tp.topic,
            Some(tp.partition),
        )),
        Some(p) => Ok((p.base_offset, p.log_append_time_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_records_are_rejected_before_sending() {
        let config = ProducerConfig {
            max_request_size: 1000,
            ..ProducerConfig::default()
        };
        let small = ProducerRecord::new("t", vec![0u8; 800]);
        assert!(check_record_size(&small, &config).unwrap() <= 1000);
        let big = ProducerRecord::new("t", vec![0u8; 1000]);
        let err = check_record_size(&big, &config).unwrap_err();
        match &err {
            ClientError::RecordTooLarge {
                limit, limit_bytes, ..
            } => assert_eq!((*limit, *limit_bytes), ("max_request_size", 1000)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("max_request_size"), "{err}");
        // Key and headers count too.
        let keyed = ProducerRecord::new("t", vec![0u8; 800]).with_key(vec![0u8; 200]);
        assert!(check_record_size(&keyed, &config).is_err());
        let config = ProducerConfig {
            buffer_memory: 500,
            ..ProducerConfig::default()
        };
        let err = check_record_size(&small, &config).unwrap_err();
        assert!(matches!(
            err,
            ClientError::RecordTooLarge {
                limit: "buffer_memory",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn buffer_pool_blocks_when_full_and_resumes_on_release() {
        let pool = Arc::new(BufferPool::new(100));
        pool.acquire(60).await.unwrap();
        pool.acquire(40).await.unwrap();
        assert_eq!(pool.available(), 0);
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(50).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "no memory: send must wait");
        pool.release(40);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "40 free is not enough for 50");
        pool.release(60);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("released memory wakes the waiter")
            .unwrap()
            .unwrap();
        assert_eq!(pool.available(), 50);
    }

    #[test]
    fn requests_group_partitions_by_topic_and_concatenate_batches() {
        use crate::batch::BatchBuilder;
        let batch = |v: &[u8]| {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(1, None, Some(v), &[]);
            let (done, _) = tokio::sync::watch::channel(false);
            Batch {
                meta: BatchMeta {
                    id: 0,
                    tp: TopicPartition::new("a", 0),
                    created: Instant::now(),
                    deliveries: Vec::new(),
                    timestamps: Vec::new(),
                    reserved_bytes: 0,
                    attempts: 1,
                    done,
                },
                bytes: b.build().unwrap().freeze(),
            }
        };
        let one = batch(b"1");
        let len = one.bytes.len();
        let request = build_request(
            &ProducerConfig::default(),
            &[
                (TopicPartition::new("a", 0), vec![one, batch(b"2")]),
                (TopicPartition::new("b", 1), vec![batch(b"3")]),
                (TopicPartition::new("a", 2), vec![batch(b"4")]),
            ],
        );
        assert_eq!(request.topics.len(), 2);
        assert_eq!(request.topics[0].partitions.len(), 2);
        assert_eq!(request.topics[0].partitions[0].records.len(), 2 * len);
        assert_eq!(request.acks, Acks::All);
    }
}
