//! The producer's record accumulator: per-partition queues of batches, sans-IO (time is passed
//! in), driven by [`Producer::send`](super::Producer::send) on one side and the sender task on
//! the other.
//!
//! Contract:
//! - Each partition has at most one *open* batch (a [`BatchBuilder`] taking records) and a FIFO
//!   of *sealed* batches (built and compressed, waiting to be sent). A record that would push a
//!   non-empty open batch past `batch_bytes_max` seals it first; so does `linger` expiring, a
//!   flush, or close. A single record larger than `batch_bytes_max` gets a batch of its own.
//! - A partition has at most one produce request in flight. The next request for it may carry
//!   several sealed batches (up to the request budget, `max_request_size`), so one in-flight
//!   slot does not cap throughput at one batch per round trip. With one request in flight per partition and
//!   failed batches re-queued at the front, records of a partition are appended in `send`
//!   order, failures and retries included (unless a batch exhausts its retries and is dropped).
//! - A batch fails when `delivery_timeout` has passed since it was opened or `retries` retries
//!   are used up; retries wait `retry_backoff`, doubling per attempt up to `retry_backoff_max`.
//! - Records without a key go to a sticky partition per topic, chosen at random (excluding the
//!   previous one when there is a choice) and changed whenever its open batch is sealed
//!   (KIP-480).
//! - Memory is bounded outside: every record reserves its size bound from the producer's buffer
//!   pool before it enters, and the bytes are released when its batch completes.
//! - Idempotence (when on): every batch is stamped, as it is sealed, with the partition's
//!   producer id, epoch and next sequence; the stamp stays through retries, so the broker
//!   recognises a retry of a batch it already appended and answers with the first append's
//!   offsets. A request carries at most [`IDEMPOTENT_BATCHES_PER_REQUEST_MAX`] batches of a
//!   partition, the number of batches the broker remembers per producer, so a whole request's
//!   retry is always recognised. When the broker refuses a partition's sequence (a batch
//!   before it failed for good, or its producer state is gone) the partition waits for a new
//!   producer id ([`Accumulator::await_identity`]) and its queued batches are re-stamped from
//!   sequence 0 under it ([`Accumulator::reset_identity`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use crate::batch::{stamp_producer, BatchBuilder, Compression, RecordHeader, BATCH_HEADER_LEN};

use super::partitioner::{partition_for_key, SmallRng};
use super::{ClientError, RecordMetadata, TopicPartition};

/// Where a record's result goes.
pub(crate) type Delivery = oneshot::Sender<Result<RecordMetadata, ClientError>>;

/// Batches of one partition in one request when idempotent: what the broker caches per producer
/// and partition to answer retries (Kafka's `max.in.flight.requests.per.connection` bound).
pub(crate) const IDEMPOTENT_BATCHES_PER_REQUEST_MAX: usize = 5;

/// An idempotent producer's id and epoch, from the broker's InitProducerId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// `seq + n` in the sequence space `0..=i32::MAX` (wrapping to 0, as the broker counts).
fn add_sequence(seq: i32, n: usize) -> i32 {
    let space = 1i64 << 31;
    // rem_euclid keeps it in 0..2^31, so the cast is exact.
    (i64::from(seq) + i64::try_from(n).unwrap_or(i64::MAX) % space).rem_euclid(space) as i32
}

/// A partition's idempotence state.
#[derive(Debug, Clone, Copy)]
struct Sequence {
    identity: ProducerIdentity,
    /// Sequence of the next batch sealed.
    next: i32,
    /// The broker refused the sequence: no sends until a new identity arrives.
    awaiting: bool,
}

/// Bytes one varint (i32) takes at most.
const VARINT_BYTES_MAX: usize = 5;
/// Bytes one varlong (i64) takes at most.
const VARLONG_BYTES_MAX: usize = 10;

/// Upper bound of a record's encoded size in a batch of its own (batch header included), as
/// Kafka's `estimateSizeInBytesUpperBound`: what `max_request_size` and `buffer_memory` are
/// checked against and what the record reserves.
pub(crate) fn record_size_bound(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    let field = |f: Option<&[u8]>| VARINT_BYTES_MAX + f.map_or(0, <[u8]>::len);
    let headers_bytes: usize = headers
        .iter()
        .map(|h| VARINT_BYTES_MAX + h.key.len() + field(h.value.as_deref()))
        .sum();
    BATCH_HEADER_LEN
        // length, attributes, timestampDelta, offsetDelta
        + VARINT_BYTES_MAX + 1 + VARLONG_BYTES_MAX + VARINT_BYTES_MAX
        + field(key)
        + field(value)
        + VARINT_BYTES_MAX // header count
        + headers_bytes
}

/// The accumulator's limits.
#[derive(Debug, Clone)]
pub(crate) struct AccumulatorConfig {
    pub batch_bytes_max: usize,
    pub linger: Duration,
    pub compression: Compression,
    pub delivery_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// Stamp batches with producer id, epoch and sequences (see the module docs).
    pub idempotent: bool,
}

/// How the partition of a record is chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PartitionChoice<'a> {
    /// The caller named it.
    Explicit(i32),
    /// murmur2 of the key.
    Key(&'a [u8]),
    /// The topic's sticky partition.
    Sticky,
}

/// One record to append.
pub(crate) struct Append<'a> {
    pub topic: &'a str,
    pub choice: PartitionChoice<'a>,
    pub partition_count: i32,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader],
    /// Bytes reserved from the buffer pool for this record.
    pub reserved_bytes: usize,
    pub delivery: Delivery,
}

/// What a batch carries besides its bytes: where its records' results go.
#[derive(Debug)]
pub(crate) struct BatchMeta {
    pub id: u64,
    pub tp: TopicPartition,
    pub created: Instant,
    pub deliveries: Vec<Delivery>,
    /// Each record's timestamp, for its [`RecordMetadata`].
    pub timestamps: Vec<i64>,
    pub reserved_bytes: usize,
    /// Sends so far.
    pub attempts: u32,
    /// Set to `true` when the batch completes, for `flush`.
    pub done: watch::Sender<bool>,
}

impl BatchMeta {
    /// Resolves every record: offsets from `base_offset` (or -1 for every record when it is
    /// -1, as with acks=0), timestamps from the records or `log_append_time_ms` if not -1.
    pub fn succeed(self, base_offset: i64, log_append_time_ms: i64) {
        for (i, (delivery, timestamp)) in
            self.deliveries.into_iter().zip(self.timestamps).enumerate()
        {
            let offset = if base_offset < 0 {
                -1
            } else {
                base_offset + i as i64
            };
            let timestamp = if log_append_time_ms >= 0 {
                log_append_time_ms
            } else {
                timestamp
            };
            // The caller may have dropped the future; nothing to tell then.
            let _ = delivery.send(Ok(RecordMetadata {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset,
                timestamp,
            }));
        }
        self.done.send_replace(true);
    }

    /// Fails every record with `error`.
    pub fn fail(self, error: ClientError) {
        for delivery in self.deliveries {
            let _ = delivery.send(Err(error.clone()));
        }
        self.done.send_replace(true);
    }
}

/// A sealed batch: its wire bytes and its records' bookkeeping.
#[derive(Debug)]
pub(crate) struct Batch {
    pub meta: BatchMeta,
    pub bytes: Bytes,
}

impl Batch {
    /// Records in the batch.
    pub fn record_count(&self) -> usize {
        self.meta.deliveries.len()
    }
}

struct OpenBatch {
    builder: BatchBuilder,
    meta: BatchMeta,
}

#[derive(Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    sealed: VecDeque<Batch>,
    in_flight: bool,
    retry_at: Option<Instant>,
}

impl PartitionQueue {
    fn is_idle(&self) -> bool {
        self.open.is_none() && self.sealed.is_empty() && !self.in_flight
    }
}

#[derive(Default)]
struct Sticky {
    current: Option<i32>,
    previous: Option<i32>,
}

/// What the sender should do now.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    /// Partitions with sealed batches, nothing in flight and no back-off pending.
    pub partitions: Vec<TopicPartition>,
    /// When something next becomes ready by itself (linger, back-off, expiry).
    pub next_wake: Option<Instant>,
    /// Batches that failed (expired, or could not be built): fail them.
    pub failed: Vec<(BatchMeta, ClientError)>,
}

/// The accumulator. See the module docs for its contract.
pub(crate) struct Accumulator {
    config: AccumulatorConfig,
    partitions: HashMap<TopicPartition, PartitionQueue>,
    sticky: HashMap<String, Sticky>,
    rng: SmallRng,
    next_batch_id: u64,
    /// Every batch not yet completed (open, sealed or in flight), for `flush`.
    incomplete: HashMap<u64, watch::Receiver<bool>>,
    /// Flushes (or a close) in progress: while > 0 linger is ignored.
    flushes: usize,
    /// Batches that failed to build, reported by the next `ready`.
    failed: Vec<(BatchMeta, ClientError)>,
    /// The identity partitions start with (idempotent producers).
    identity: Option<ProducerIdentity>,
    /// Per partition written to: its identity and next sequence. Never forgotten (a partition
    /// going idle must continue its sequence), so bounded by the partitions written to.
    sequences: HashMap<TopicPartition, Sequence>,
}

impl Accumulator {
    pub fn new(config: AccumulatorConfig, rng: SmallRng) -> Accumulator {
        Accumulator {
            config,
            partitions: HashMap::new(),
            sticky: HashMap::new(),
            rng,
            next_batch_id: 0,
            incomplete: HashMap::new(),
            flushes: 0,
            failed: Vec::new(),
            identity: None,
            sequences: HashMap::new(),
        }
    }

    /// Sets the identity batches of partitions not written to yet are stamped with.
    pub fn set_identity(&mut self, identity: ProducerIdentity) {
        self.identity = Some(identity);
    }

    /// The identity and next sequence of `tp`, if it has been written to idempotently.
    #[cfg(test)]
    fn sequence_of(&self, tp: &TopicPartition) -> Option<(ProducerIdentity, i32)> {
        self.sequences.get(tp).map(|s| (s.identity, s.next))
    }

    /// Appends a record; returns the partition chosen and whether a batch was sealed (the
    /// sender should look).
    pub fn append(&mut self, now: Instant, record: Append<'_>) -> (i32, bool) {
        assert!(
            record.partition_count > 0,
            "partition count checked by send"
        );
        let bound = record_size_bound(record.key, record.value, record.headers);
        let mut partition = match record.choice {
            PartitionChoice::Explicit(p) => p,
            PartitionChoice::Key(key) => partition_for_key(key, record.partition_count),
            PartitionChoice::Sticky => self.sticky_partition(record.topic, record.partition_count),
        };
        let mut sealed = false;
        if self.open_would_overflow(record.topic, partition, bound) {
            self.seal(&TopicPartition::new(record.topic, partition));
            sealed = true;
            if matches!(record.choice, PartitionChoice::Sticky) {
                // The batch that was filling is full: move on (sealing cleared the sticky
                // choice), and seal the new partition's batch too if it cannot take the record.
                partition = self.sticky_partition(record.topic, record.partition_count);
                if self.open_would_overflow(record.topic, partition, bound) {
                    self.seal(&TopicPartition::new(record.topic, partition));
                }
            }
        }
        if matches!(record.choice, PartitionChoice::Sticky) {
            self.sticky
                .entry(record.topic.to_string())
                .or_default()
                .current = Some(partition);
        }
        let tp = TopicPartition::new(record.topic, partition);
        let id = self.next_batch_id;
        let queue = self.partitions.entry(tp.clone()).or_default();
        let open = queue.open.get_or_insert_with(|| {
            let (done, done_rx) = watch::channel(false);
            self.incomplete.insert(id, done_rx);
            self.next_batch_id += 1;
            OpenBatch {
                builder: BatchBuilder::new(self.config.compression),
                meta: BatchMeta {
                    id,
                    tp,
                    created: now,
                    deliveries: Vec::new(),
                    timestamps: Vec::new(),
                    reserved_bytes: 0,
                    attempts: 0,
                    done,
                },
            }
        });
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
            .collect();
        open.builder
            .push(record.timestamp, record.key, record.value, &headers);
        open.meta.deliveries.push(record.delivery);
        open.meta.timestamps.push(record.timestamp);
        open.meta.reserved_bytes += record.reserved_bytes;
        let full = open.builder.estimated_size() >= self.config.batch_bytes_max;
        (partition, sealed || full)
    }

    /// Whether `topic`/`partition` has a non-empty open batch that a record of `bound` bytes
    /// would push past `batch_bytes_max`.
    fn open_would_overflow(&self, topic: &str, partition: i32, bound: usize) -> bool {
        // Without the batch header: it is in both the builder's estimate and the bound.
        let record_bytes = bound - BATCH_HEADER_LEN;
        self.partitions
            .get(&TopicPartition::new(topic, partition))
            .and_then(|q| q.open.as_ref())
            .is_some_and(|open| {
                !open.builder.is_empty()
                    && open.builder.estimated_size() + record_bytes > self.config.batch_bytes_max
            })
    }

    fn sticky_partition(&mut self, topic: &str, partition_count: i32) -> i32 {
        let sticky = self.sticky.entry(topic.to_string()).or_default();
        if let Some(current) = sticky.current.filter(|&p| p < partition_count) {
            return current;
        }
        let count = u32::try_from(partition_count).unwrap_or(1).max(1);
        let chosen = match sticky.previous.filter(|&p| p < partition_count) {
            Some(previous) if count > 1 => {
                // Uniform over the others: skip the previous one.
                let pick = self.rng.below(count - 1) as i32;
                if pick >= previous {
                    pick + 1
                } else {
                    pick
                }
            }
            _ => self.rng.below(count) as i32,
        };
        sticky.current = Some(chosen);
        chosen
    }

    /// Seals the open batch of `tp`, if any: builds (compresses) it and queues it.
    fn seal(&mut self, tp: &TopicPartition) {
        let Some(queue) = self.partitions.get_mut(tp) else {
            return;
        };
        let Some(open) = queue.open.take() else {
            return;
        };
        if let Some(sticky) = self.sticky.get_mut(&tp.topic) {
            if sticky.current == Some(tp.partition) {
                sticky.current = None;
                sticky.previous = Some(tp.partition);
            }
        }
        let mut builder = open.builder;
        if self.config.idempotent {
            if let Some(current) = self.identity {
                let sequence = self.sequences.entry(tp.clone()).or_insert(Sequence {
                    identity: current,
                    next: 0,
                    awaiting: false,
                });
                builder =
                    builder.producer(sequence.identity.id, sequence.identity.epoch, sequence.next);
                sequence.next = add_sequence(sequence.next, builder.len());
            }
        }
        match builder.build() {
            Ok(bytes) => queue.sealed.push_back(Batch {
                meta: open.meta,
                bytes: bytes.freeze(),
            }),
            Err(e) => self.failed.push((
                open.meta,
                ClientError::InvalidArgument(format!("building a batch for {tp}: {e}")),
            )),
        }
    }

    /// Seals what linger (or a flush) says is due, fails expired batches, and lists the
    /// partitions the sender may take batches from now.
    pub fn ready(&mut self, now: Instant) -> Ready {
        let mut ready = Ready {
            failed: std::mem::take(&mut self.failed),
            ..Ready::default()
        };
        let wake = |at: Instant, ready: &mut Ready| {
            ready.next_wake = Some(ready.next_wake.map_or(at, |w| w.min(at)));
        };
        let flushing = self.flushes > 0;
        let mut to_seal = Vec::new();
        for (tp, queue) in &self.partitions {
            if let Some(open) = &queue.open {
                let due = open.meta.created + self.config.linger;
                if flushing || now >= due {
                    to_seal.push(tp.clone());
                } else {
                    wake(due, &mut ready);
                }
            }
        }
        for tp in &to_seal {
            self.seal(tp);
        }
        ready.failed.append(&mut self.failed);
        let delivery_timeout = self.config.delivery_timeout;
        for (tp, queue) in &mut self.partitions {
            while let Some(batch) = queue.sealed.front() {
                let expires = batch.meta.created + delivery_timeout;
                if now < expires {
                    wake(expires, &mut ready);
                    break;
                }
                let batch = queue.sealed.pop_front().expect("front exists");
                ready
                    .failed
                    .push((batch.meta, expired(tp, delivery_timeout)));
            }
            if queue.in_flight || queue.sealed.is_empty() {
                continue;
            }
            if self.sequences.get(tp).is_some_and(|s| s.awaiting) {
                continue;
            }
            match queue.retry_at {
                Some(at) if now < at => wake(at, &mut ready),
                _ => ready.partitions.push(tp.clone()),
            }
        }
        self.partitions.retain(|_, q| !q.is_idle());
        ready.partitions.sort();
        ready
    }

    /// Takes sealed batches of a ready partition, oldest first, up to `budget_bytes` (at
    /// least one), and marks the partition in flight.
    pub fn take(&mut self, tp: &TopicPartition, budget_bytes: usize) -> Vec<Batch> {
        let Some(queue) = self.partitions.get_mut(tp) else {
            return Vec::new();
        };
        assert!(!queue.in_flight, "{tp} already has a request in flight");
        let mut taken: Vec<Batch> = Vec::new();
        let mut bytes = 0;
        let count_max = if self.config.idempotent {
            IDEMPOTENT_BATCHES_PER_REQUEST_MAX
        } else {
            usize::MAX
        };
        while let Some(batch) = queue.sealed.front() {
            if !taken.is_empty()
                && (bytes + batch.bytes.len() > budget_bytes || taken.len() >= count_max)
            {
                break;
            }
            bytes += batch.bytes.len();
            let mut batch = queue.sealed.pop_front().expect("front exists");
            batch.meta.attempts += 1;
            taken.push(batch);
        }
        queue.in_flight = !taken.is_empty();
        taken
    }

    /// Bytes of the oldest sealed batch of `tp`, if any.
    pub fn front_len(&self, tp: &TopicPartition) -> Option<usize> {
        self.partitions
            .get(tp)
            .and_then(|q| q.sealed.front())
            .map(|b| b.bytes.len())
    }

    /// The request for `tp` completed (its batches were resolved by the caller).
    pub fn complete(&mut self, tp: &TopicPartition) {
        if let Some(queue) = self.partitions.get_mut(tp) {
            queue.in_flight = false;
            queue.retry_at = None;
        }
    }

    /// The request for `tp` failed with retriable `error`: puts the batches back at the front
    /// (keeping order) to be retried after a back-off, unless retries or the delivery timeout
    /// are used up; returns the batches that gave up, to be failed.
    pub fn requeue(
        &mut self,
        now: Instant,
        tp: &TopicPartition,
        batches: Vec<Batch>,
        error: &ClientError,
    ) -> Vec<(BatchMeta, ClientError)> {
        let attempts = batches.iter().map(|b| b.meta.attempts).max().unwrap_or(1);
        let exponent = attempts.saturating_sub(1).min(16);
        let backoff = self
            .config
            .retry_backoff
            .saturating_mul(1 << exponent)
            .min(self.config.retry_backoff_max);
        let retry_at = now + backoff;
        let mut gave_up = Vec::new();
        let mut keep = Vec::new();
        for batch in batches {
            let out_of_time = retry_at >= batch.meta.created + self.config.delivery_timeout;
            let out_of_retries = batch.meta.attempts > self.config.retries;
            if out_of_time || out_of_retries {
                gave_up.push((batch.meta, error.clone()));
            } else {
                keep.push(batch);
            }
        }
        let queue = self.partitions.entry(tp.clone()).or_default();
        queue.in_flight = false;
        queue.retry_at = Some(retry_at);
        for batch in keep.into_iter().rev() {
            queue.sealed.push_front(batch);
        }
        gave_up
    }

    /// The broker refused `tp`'s sequence (OutOfOrderSequence or UnknownProducerId): puts the
    /// request's batches back at the front, in order, and holds the partition until
    /// [`Accumulator::reset_identity`] gives it a new producer identity. Nothing of the request
    /// was appended, so re-sending its batches under the new identity duplicates nothing.
    pub fn await_identity(&mut self, tp: &TopicPartition, batches: Vec<Batch>) {
        let queue = self.partitions.entry(tp.clone()).or_default();
        queue.in_flight = false;
        queue.retry_at = None;
        for batch in batches.into_iter().rev() {
            queue.sealed.push_front(batch);
        }
        if let Some(sequence) = self.sequences.get_mut(tp) {
            sequence.awaiting = true;
        }
    }

    /// Gives `tp` a new producer identity: sequences restart at 0 and every queued batch of
    /// it is re-stamped, in order (a copy and a CRC pass per batch: only after a refusal).
    pub fn reset_identity(&mut self, tp: &TopicPartition, identity: ProducerIdentity) {
        let mut next = 0;
        if let Some(queue) = self.partitions.get_mut(tp) {
            debug_assert!(!queue.in_flight, "reset while {tp} has a request in flight");
            for batch in &mut queue.sealed {
                let mut bytes = bytes::BytesMut::from(&batch.bytes[..]);
                stamp_producer(&mut bytes, identity.id, identity.epoch, next);
                batch.bytes = bytes.freeze();
                next = add_sequence(next, batch.record_count());
            }
        }
        self.sequences.insert(
            tp.clone(),
            Sequence {
                identity,
                next,
                awaiting: false,
            },
        );
    }

    /// Forgets a completed batch (for `flush`).
    pub fn finish(&mut self, batch_id: u64) {
        self.incomplete.remove(&batch_id);
    }

    /// Starts a flush: linger is ignored until [`Accumulator::end_flush`]; returns a handle on
    /// every incomplete batch.
    pub fn begin_flush(&mut self) -> Vec<watch::Receiver<bool>> {
        self.flushes += 1;
        self.incomplete.values().cloned().collect()
    }

    /// Ends a flush started with [`Accumulator::begin_flush`].
    pub fn end_flush(&mut self) {
        self.flushes = self.flushes.saturating_sub(1);
    }

    /// Whether nothing is open, queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.partitions.values().all(PartitionQueue::is_idle)
    }

    /// Fails every batch not in flight (the producer is going away).
    pub fn abort(&mut self, error: &ClientError) -> Vec<(BatchMeta, ClientError)> {
        let mut failed = std::mem::take(&mut self.failed);
        for queue in self.partitions.values_mut() {
            if let Some(open) = queue.open.take() {
                failed.push((open.meta, error.clone()));
            }
            for batch in queue.sealed.drain(..) {
                failed.push((batch.meta, error.clone()));
            }
        }
        failed
    }
}

fn expired(tp: &TopicPartition, delivery_timeout: Duration) -> ClientError {
    ClientError::Timeout {
        what: format!("delivery to {tp}"),
        after: delivery_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AccumulatorConfig {
        AccumulatorConfig {
            batch_bytes_max: 1024,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            delivery_timeout: Duration::from_secs(120),
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            idempotent: false,
        }
    }

    type Rx = oneshot::Receiver<Result<RecordMetadata, ClientError>>;

    fn append(
        acc: &mut Accumulator,
        now: Instant,
        choice: PartitionChoice<'_>,
        value: &[u8],
    ) -> (i32, bool, Rx) {
        let (tx, rx) = oneshot::channel();
        let (p, sealed) = acc.append(
            now,
            Append {
                topic: "t",
                choice,
                partition_count: 4,
                timestamp: 1000,
                key: None,
                value: Some(value),
                headers: &[],
                reserved_bytes: 1,
                delivery: tx,
            },
        );
        (p, sealed, rx)
    }

    #[test]
    fn batches_by_size() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let now = Instant::now();
        let value = [7u8; 100];
        let mut sealed_count = 0;
        for _ in 0..25 {
            let (p, sealed, _rx) = append(&mut acc, now, PartitionChoice::Explicit(2), &value);
            assert_eq!(p, 2);
            sealed_count += usize::from(sealed);
        }
        // ~108 bytes per record: 8 fit in 1024 with the 61-byte header, so 25 records make
        // 3 full batches and an open one; nothing is due by linger yet.
        let ready = acc.ready(now);
        assert_eq!(ready.partitions, vec![TopicPartition::new("t", 2)]);
        let batches = acc.take(&TopicPartition::new("t", 2), usize::MAX);
        assert_eq!(batches.len(), 3, "full batches only; the open one lingers");
        assert!(sealed_count >= 3);
        for batch in &batches {
            assert!(batch.bytes.len() <= 1024, "{}", batch.bytes.len());
            assert!(batch.record_count() >= 8);
            let parsed = crate::batch::RecordBatch::parse(&batch.bytes).unwrap();
            assert_eq!(parsed.records_count() as usize, batch.record_count());
        }
        let total: usize = batches.iter().map(Batch::record_count).sum();
        assert!(total < 25);
        assert!(
            ready.next_wake.is_some(),
            "the open batch wakes the sender at linger"
        );
    }

    #[test]
    fn batches_by_linger() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let t0 = Instant::now();
        let (_, sealed, _rx) = append(&mut acc, t0, PartitionChoice::Explicit(0), b"v");
        assert!(!sealed);
        let ready = acc.ready(t0 + Duration::from_millis(4));
        assert!(ready.partitions.is_empty(), "linger not over");
        assert_eq!(ready.next_wake, Some(t0 + Duration::from_millis(5)));
        let ready = acc.ready(t0 + Duration::from_millis(5));
        assert_eq!(ready.partitions, vec![TopicPartition::new("t", 0)]);
        let batches = acc.take(&TopicPartition::new("t", 0), usize::MAX);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].record_count(), 1);
        // In flight: not ready again until completed.
        let (_, _, _rx2) = append(&mut acc, t0, PartitionChoice::Explicit(0), b"w");
        assert!(acc.ready(t0 + Duration::from_secs(1)).partitions.is_empty());
        acc.complete(&TopicPartition::new("t", 0));
        assert_eq!(acc.ready(t0 + Duration::from_secs(1)).partitions.len(), 1);
    }

    #[test]
    fn flush_ignores_linger() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let t0 = Instant::now();
        let _ = append(&mut acc, t0, PartitionChoice::Explicit(1), b"v");
        let waits = acc.begin_flush();
        assert_eq!(waits.len(), 1);
        assert_eq!(acc.ready(t0).partitions.len(), 1);
        acc.end_flush();
    }

    #[test]
    fn take_respects_request_budget() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let now = Instant::now();
        for _ in 0..40 {
            let _ = append(&mut acc, now, PartitionChoice::Explicit(0), &[1u8; 100]);
        }
        assert_eq!(acc.ready(now).partitions.len(), 1);
        let tp = TopicPartition::new("t", 0);
        let batches = acc.take(&tp, 1500);
        assert_eq!(
            batches.len(),
            1,
            "a second ~1 KiB batch would exceed 1500 bytes"
        );
        acc.complete(&tp);
        let batches = acc.take(&tp, 1);
        assert_eq!(batches.len(), 1, "always at least one batch");
    }

    #[test]
    fn sticky_partition_switches_when_batch_is_sealed() {
        let mut acc = Accumulator::new(config(), SmallRng::new(42));
        let now = Instant::now();
        let (first, _, _rx) = append(&mut acc, now, PartitionChoice::Sticky, &[0u8; 100]);
        // Same partition until the batch fills.
        let mut p = first;
        let mut switched_after = None;
        for i in 1..20 {
            let (next, sealed, _rx) = append(&mut acc, now, PartitionChoice::Sticky, &[0u8; 100]);
            if next != p {
                assert!(sealed, "a switch happens only when the batch is sealed");
                switched_after = Some(i);
                p = next;
                break;
            }
        }
        assert_eq!(
            switched_after,
            Some(8),
            "8 records of ~108 bytes fill 1 KiB"
        );
        assert_ne!(p, first);
        // Linger sealing the sticky batch also moves the sticky partition on.
        let current = p;
        let ready = acc.ready(now + Duration::from_millis(10));
        assert!(ready
            .partitions
            .contains(&TopicPartition::new("t", current)));
        let (after, _, _rx) = append(
            &mut acc,
            now + Duration::from_millis(10),
            PartitionChoice::Sticky,
            b"x",
        );
        assert_ne!(after, current);
        // Keyed records are unaffected by stickiness.
        let (keyed, _, _rx) = append(&mut acc, now, PartitionChoice::Key(b"foobar"), b"v");
        assert_eq!(keyed, partition_for_key(b"foobar", 4));
    }

    #[test]
    fn retriable_failures_requeue_in_order_with_backoff() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        for _ in 0..20 {
            let _ = append(&mut acc, t0, PartitionChoice::Explicit(0), &[1u8; 100]);
        }
        assert_eq!(acc.ready(t0).partitions.len(), 1);
        let first = acc.take(&tp, 1100);
        let first_id = first[0].meta.id;
        let error = ClientError::Timeout {
            what: "x".into(),
            after: Duration::ZERO,
        };
        assert!(acc.requeue(t0, &tp, first, &error).is_empty());
        assert!(acc
            .ready(t0 + Duration::from_millis(99))
            .partitions
            .is_empty());
        assert_eq!(
            acc.ready(t0 + Duration::from_millis(100)).partitions.len(),
            1
        );
        let again = acc.take(&tp, 1100);
        assert_eq!(again[0].meta.id, first_id, "the failed batch goes first");
        assert_eq!(again[0].meta.attempts, 2);
        // Second failure doubles the back-off; past the delivery timeout the batch gives up.
        let late = t0 + Duration::from_secs(120);
        let gave_up = acc.requeue(late, &tp, again, &error);
        assert_eq!(gave_up.len(), 1);
    }

    fn idempotent_acc() -> Accumulator {
        let mut acc = Accumulator::new(
            AccumulatorConfig {
                idempotent: true,
                ..config()
            },
            SmallRng::new(1),
        );
        acc.set_identity(ProducerIdentity { id: 42, epoch: 3 });
        acc
    }

    /// (producer id, epoch, base sequence, records) of a built batch, checking its CRC.
    fn stamp_of(batch: &Batch) -> (i64, i16, i32, i32) {
        let view = crate::batch::RecordBatch::parse(&batch.bytes).expect("valid batch");
        let h = view.header();
        (
            h.producer_id(),
            h.producer_epoch(),
            h.base_sequence(),
            view.records_count(),
        )
    }

    #[test]
    fn idempotent_batches_carry_consecutive_sequences_kept_through_retries() {
        let mut acc = idempotent_acc();
        let t0 = Instant::now();
        let tp0 = TopicPartition::new("t", 0);
        // 100-byte records in 1024-byte batches: several per batch, several batches.
        for _ in 0..80 {
            let _ = append(&mut acc, t0, PartitionChoice::Explicit(0), &[1u8; 100]);
            let _ = append(&mut acc, t0, PartitionChoice::Explicit(1), &[2u8; 100]);
        }
        let ready = acc.ready(t0 + Duration::from_millis(5));
        assert_eq!(ready.partitions.len(), 2);
        let first = acc.take(&tp0, usize::MAX);
        assert_eq!(
            first.len(),
            IDEMPOTENT_BATCHES_PER_REQUEST_MAX,
            "an idempotent request carries at most the broker's cached batches"
        );
        let mut expected_seq = 0;
        for batch in &first {
            let (id, epoch, seq, count) = stamp_of(batch);
            assert_eq!((id, epoch, seq), (42, 3, expected_seq));
            expected_seq += count;
        }
        let stamps: Vec<Bytes> = first.iter().map(|b| b.bytes.clone()).collect();
        let error = ClientError::Timeout {
            what: "x".into(),
            after: Duration::ZERO,
        };
        assert!(acc.requeue(t0, &tp0, first, &error).is_empty());
        let _ = acc.ready(t0 + Duration::from_secs(1));
        let again = acc.take(&tp0, usize::MAX);
        let again_bytes: Vec<Bytes> = again.iter().map(|b| b.bytes.clone()).collect();
        assert_eq!(
            again_bytes, stamps,
            "a retry re-sends the very same stamped bytes"
        );
        acc.complete(&tp0);
        let rest = acc.take(&tp0, usize::MAX);
        assert_eq!(stamp_of(&rest[0]).2, expected_seq, "the sequence continues");
        // The other partition counts on its own, from 0.
        let other = acc.take(&TopicPartition::new("t", 1), usize::MAX);
        assert_eq!(stamp_of(&other[0]).2, 0);
        let total: i32 = rest.iter().chain(&again).map(|b| stamp_of(b).3).sum();
        assert_eq!(acc.sequence_of(&tp0).unwrap().1, total);
    }

    #[test]
    fn a_refused_sequence_holds_the_partition_until_a_new_identity_restamps_it() {
        let mut acc = idempotent_acc();
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        for _ in 0..30 {
            let _ = append(&mut acc, t0, PartitionChoice::Explicit(0), &[1u8; 100]);
        }
        let _ = acc.ready(t0 + Duration::from_millis(5));
        let sent = acc.take(&tp, 2000);
        let sent_ids: Vec<u64> = sent.iter().map(|b| b.meta.id).collect();
        assert!(stamp_of(&sent[0]).2 == 0);
        acc.await_identity(&tp, sent);
        assert!(
            acc.ready(t0 + Duration::from_secs(5)).partitions.is_empty(),
            "nothing goes out under the refused identity"
        );
        acc.reset_identity(&tp, ProducerIdentity { id: 77, epoch: 0 });
        let ready = acc.ready(t0 + Duration::from_secs(5));
        assert_eq!(ready.partitions, vec![tp.clone()]);
        let resent = acc.take(&tp, usize::MAX);
        assert_eq!(
            resent
                .iter()
                .take(sent_ids.len())
                .map(|b| b.meta.id)
                .collect::<Vec<_>>(),
            sent_ids,
            "the refused batches go first, in order"
        );
        let mut expected_seq = 0;
        for batch in &resent {
            let (id, epoch, seq, count) = stamp_of(batch);
            assert_eq!((id, epoch, seq), (77, 0, expected_seq), "re-stamped from 0");
            expected_seq += count;
        }
        // Batches sealed afterwards continue the new sequence.
        acc.complete(&tp);
        let _ = append(&mut acc, t0, PartitionChoice::Explicit(0), &[1u8; 100]);
        let _ = acc.ready(t0 + Duration::from_secs(6));
        let later = acc.take(&tp, usize::MAX);
        let remaining: i32 = later.iter().map(|b| stamp_of(b).3).sum();
        assert_eq!(stamp_of(&later[0]).0, 77);
        assert_eq!(stamp_of(&later[0]).2, expected_seq);
        assert_eq!(acc.sequence_of(&tp).unwrap().1, expected_seq + remaining);
    }

    #[test]
    fn sequences_wrap_past_i32_max() {
        assert_eq!(add_sequence(i32::MAX, 1), 0);
        assert_eq!(add_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(add_sequence(5, 10), 15);
    }

    #[test]
    fn non_idempotent_batches_carry_no_producer() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        acc.set_identity(ProducerIdentity { id: 42, epoch: 3 });
        let t0 = Instant::now();
        let _ = append(&mut acc, t0, PartitionChoice::Explicit(0), &[1u8; 100]);
        let _ = acc.ready(t0 + Duration::from_millis(5));
        let batch = acc.take(&TopicPartition::new("t", 0), usize::MAX);
        assert_eq!(stamp_of(&batch[0]).0, -1);
        assert_eq!(stamp_of(&batch[0]).2, -1);
    }

    #[test]
    fn expired_batches_fail() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let t0 = Instant::now();
        let (_, _, mut rx) = append(&mut acc, t0, PartitionChoice::Explicit(0), b"v");
        let ready = acc.ready(t0 + Duration::from_secs(121));
        assert!(ready.partitions.is_empty());
        assert_eq!(ready.failed.len(), 1);
        for (meta, error) in ready.failed {
            meta.fail(error);
        }
        let result = rx.try_recv().unwrap();
        assert!(matches!(result, Err(ClientError::Timeout { .. })));
    }

    #[test]
    fn success_assigns_consecutive_offsets() {
        let mut acc = Accumulator::new(config(), SmallRng::new(1));
        let t0 = Instant::now();
        let mut rxs = Vec::new();
        for _ in 0..3 {
            rxs.push(append(&mut acc, t0, PartitionChoice::Explicit(3), b"v").2);
        }
        acc.ready(t0 + Duration::from_secs(1));
        let batches = acc.take(&TopicPartition::new("t", 3), usize::MAX);
        for batch in batches {
            batch.meta.succeed(40, -1);
        }
        for (i, mut rx) in rxs.into_iter().enumerate() {
            let meta = rx.try_recv().unwrap().unwrap();
            assert_eq!(
                (meta.partition, meta.offset, meta.timestamp),
                (3, 40 + i as i64, 1000)
            );
        }
    }

    #[test]
    fn size_bound_covers_the_encoding() {
        let headers = vec![RecordHeader {
            key: "h".into(),
            value: Some(Bytes::from_static(b"hv")),
        }];
        let bound = record_size_bound(Some(b"key"), Some(&[9u8; 300]), &headers);
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(
            i64::MAX / 2,
            Some(b"key"),
            Some(&[9u8; 300]),
            &[("h", Some(b"hv"))],
        );
        let built = builder.build().unwrap();
        assert!(built.len() <= bound, "{} > {bound}", built.len());
        assert!(bound - built.len() < 40);
    }
}
