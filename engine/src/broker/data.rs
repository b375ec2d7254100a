//! The data-path handlers: Produce, Fetch and ListOffsets, each split per partition and routed
//! to the owning shards (see the module doc of [`super`]).

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_transport::protocol::{
    Acks, ErrorCode, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopicResponse,
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse, OffsetForLeaderEpochPartitionResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, OffsetForLeaderEpochTopicResponse, OffsetSpec,
    ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse, Records,
};

use super::errors::{partition_error, WireError};
use super::{Call, EpochPart, OffsetsPart, PartRead, ProducePart, ReadPart, Reply, ShardBroker};
use crate::batch::{peek_batch_len, RecordBatch};
use crate::log::FlushPolicy;
use crate::partition::{records_count, Partition, PartitionError};
use crate::shard::sync::{join_all, race_all, LocalBoxFuture};

/// Bytes of a fetch response frame assumed per partition entry besides its records (fixed
/// fields, the topic name is counted separately).
const FETCH_PARTITION_OVERHEAD_BYTES: usize = 64;

fn produce_error(partition: i32, (code, message): WireError) -> ProducePartitionResponse {
    ProducePartitionResponse {
        partition,
        error_code: code,
        error_message: Some(message),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
    }
}

fn fetch_error(code: ErrorCode) -> PartRead {
    PartRead {
        error_code: code,
        high_watermark: -1,
        log_start_offset: -1,
        batches: Vec::new(),
    }
}

fn offsets_error(partition: i32, code: ErrorCode) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse {
        partition,
        error_code: code,
        timestamp_ms: -1,
        offset: -1,
        leader_epoch: -1,
    }
}

/// Leader-epoch fencing for a single node whose epoch is always 0.
fn epoch_error(partition: i32, code: ErrorCode) -> OffsetForLeaderEpochPartitionResponse {
    OffsetForLeaderEpochPartitionResponse {
        partition,
        error_code: code,
        leader_epoch: -1,
        end_offset: -1,
    }
}

fn check_leader_epoch(current_leader_epoch: i32) -> Result<(), ErrorCode> {
    if current_leader_epoch > 0 {
        // The client knows a newer epoch than this broker has: the broker lags.
        Err(ErrorCode::UnknownLeaderEpoch)
    } else {
        Ok(())
    }
}

/// Splits a produce's records into batches and checks each: framing, `max.message.bytes`,
/// and, when there are several, a full parse of each (so a bad batch rejects the whole
/// partition's produce before anything is appended; a lone batch is parsed once, by the log).
pub(crate) fn split_batches(
    records: &Bytes,
    max_message_bytes: u64,
) -> Result<Vec<Bytes>, WireError> {
    if records.is_empty() {
        return Err((
            ErrorCode::CorruptMessage,
            "the produce carries no record batch".into(),
        ));
    }
    let mut rest = records.clone();
    let mut batches = Vec::new();
    while !rest.is_empty() {
        let at = records.len() - rest.len();
        if batches.len() == super::PRODUCE_BATCHES_PER_PARTITION_MAX {
            return Err((
                ErrorCode::InvalidRequest,
                format!(
                    "more than {} batches for one partition",
                    super::PRODUCE_BATCHES_PER_PARTITION_MAX
                ),
            ));
        }
        let Some(len) = peek_batch_len(&rest) else {
            return Err((
                ErrorCode::CorruptMessage,
                format!("no valid batch header at byte {at} of the records"),
            ));
        };
        if len > rest.len() {
            return Err((
                ErrorCode::CorruptMessage,
                format!(
                    "batch at byte {at} declares {len} bytes but only {} remain",
                    rest.len()
                ),
            ));
        }
        if len as u64 > max_message_bytes {
            return Err((
                ErrorCode::MessageTooLarge,
                format!("batch of {len} bytes exceeds max.message.bytes {max_message_bytes}"),
            ));
        }
        batches.push(rest.split_to(len));
    }
    if batches.len() > 1 {
        for (i, batch) in batches.iter().enumerate() {
            let view = RecordBatch::parse(batch).map_err(|e| {
                (
                    ErrorCode::CorruptMessage,
                    format!("batch {i} of the produce: {e}"),
                )
            })?;
            let span = view.last_offset() - view.base_offset() + 1;
            if view.records_count() < 1 || i64::from(view.records_count()) > span {
                return Err((
                    ErrorCode::CorruptMessage,
                    format!(
                        "batch {i} of the produce: bad recordsCount {}",
                        view.records_count()
                    ),
                ));
            }
        }
    }
    Ok(batches)
}

impl ShardBroker {
    /// Produce: `None` for acks=0.
    pub(crate) async fn produce(&self, request: ProduceRequest) -> Option<ProduceResponse> {
        let acks = request.acks;
        let timeout_ms = u64::try_from(request.timeout_ms).unwrap_or(0);
        let topics = self.topics();
        let mut responses: Vec<ProduceTopicResponse> = Vec::with_capacity(request.topics.len());
        let mut parts = Vec::new();
        let mut slots = Vec::new();
        for (ti, topic) in request.topics.into_iter().enumerate() {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for (pi, p) in topic.partitions.into_iter().enumerate() {
                match self.route(&topics, &topic.name, p.partition) {
                    Ok(owner) => {
                        partitions.push(produce_error(
                            p.partition,
                            (ErrorCode::Unknown, String::new()),
                        ));
                        parts.push((
                            owner,
                            ProducePart {
                                topic: topic.name.clone(),
                                partition: p.partition,
                                records: p.records,
                            },
                        ));
                        slots.push((ti, pi));
                    }
                    Err(e) => partitions.push(produce_error(p.partition, e)),
                }
            }
            responses.push(ProduceTopicResponse {
                name: topic.name,
                partitions,
            });
        }
        let results = self
            .scatter(
                parts,
                &|ps| Box::pin(self.produce_local(ps, acks, timeout_ms)),
                &|ps| Call::Produce {
                    parts: ps,
                    acks,
                    timeout_ms,
                },
                |reply| match reply {
                    Reply::Produce(r) => Some(r),
                    _ => None,
                },
                &|p, reason| {
                    produce_error(
                        p.partition,
                        (ErrorCode::NotLeaderOrFollower, reason.to_string()),
                    )
                },
            )
            .await;
        for ((ti, pi), result) in slots.into_iter().zip(results) {
            responses[ti].partitions[pi] = result;
        }
        (acks != Acks::None).then_some(ProduceResponse {
            throttle_time_ms: 0,
            topics: responses,
        })
    }

    /// Produces parts owned by this shard, concurrently.
    pub(crate) async fn produce_local(
        &self,
        parts: Vec<ProducePart>,
        acks: Acks,
        timeout_ms: u64,
    ) -> Vec<ProducePartitionResponse> {
        let runs: Vec<LocalBoxFuture<'_, ProducePartitionResponse>> = parts
            .into_iter()
            .map(|part| {
                Box::pin(self.produce_one(part, acks, timeout_ms))
                    as LocalBoxFuture<'_, ProducePartitionResponse>
            })
            .collect();
        join_all(runs).await
    }

    async fn produce_one(
        &self,
        part: ProducePart,
        acks: Acks,
        timeout_ms: u64,
    ) -> ProducePartitionResponse {
        let started = Instant::now();
        let partition = match self.local_partition(&part.topic, part.partition) {
            Ok(p) => p,
            Err(e) => return produce_error(part.partition, e),
        };
        if self.clustered() {
            if let Err(code) = self.check_leader(&part.topic, part.partition, -1) {
                let message = format!("this broker does not lead {}", partition.name());
                return produce_error(part.partition, (code, message));
            }
            if acks == Acks::All {
                if let Err(message) = self.check_min_insync(&part.topic, part.partition) {
                    return produce_error(part.partition, (ErrorCode::NotEnoughReplicas, message));
                }
            }
        }
        let max_message_bytes = self
            .topics()
            .get(&part.topic)
            .map_or(0, |t| t.config.max_message_bytes);
        let batches = match split_batches(&part.records, max_message_bytes) {
            Ok(b) => b,
            Err(e) => return produce_error(part.partition, e),
        };
        let appended = match partition.append(batches, Self::now_ms()).await {
            Ok(a) => a,
            Err(e) => return produce_error(part.partition, partition_error(&e)),
        };
        self.after_append(&partition);
        if self.clustered() {
            self.leader_appended(&partition, partition.log_end_offset());
        }
        if acks == Acks::All {
            let remaining = Duration::from_millis(timeout_ms).saturating_sub(started.elapsed());
            if let Err(e) = wait_acks(&partition, appended.next_offset, remaining).await {
                return produce_error(part.partition, e);
            }
            if self.clustered() {
                let remaining = Duration::from_millis(timeout_ms).saturating_sub(started.elapsed());
                if let Err(e) = self
                    .wait_replicated(&partition, appended.next_offset, remaining)
                    .await
                {
                    return produce_error(part.partition, e);
                }
            }
        }
        ProducePartitionResponse {
            partition: part.partition,
            error_code: ErrorCode::None,
            error_message: None,
            base_offset: appended.base_offset,
            log_append_time_ms: -1,
            log_start_offset: partition.log_start_offset(),
        }
    }

    /// Fetch, long-polling until `min_bytes` are available or `max_wait_ms` passed.
    pub(crate) async fn fetch(&self, request: FetchRequest) -> FetchResponse {
        let wait_ms = u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(u64::from(self.config.fetch_wait_max_ms));
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
        let overhead: usize = request
            .topics
            .iter()
            .map(|t| t.name.len() + t.partitions.len() * FETCH_PARTITION_OVERHEAD_BYTES)
            .sum::<usize>()
            + super::FRAME_OVERHEAD_RESERVE_BYTES;
        let max_bytes = usize::try_from(request.max_bytes)
            .unwrap_or(0)
            .min(self.config.frame_bytes_max.saturating_sub(overhead));
        let topics = self.topics();
        let mut reads: Vec<Vec<PartRead>> = Vec::with_capacity(request.topics.len());
        let mut jobs: Vec<(usize, ReadPart)> = Vec::new();
        let mut slots = Vec::new();
        for (ti, topic) in request.topics.iter().enumerate() {
            let mut row = Vec::with_capacity(topic.partitions.len());
            for (pi, p) in topic.partitions.iter().enumerate() {
                let routed = self
                    .route(&topics, &topic.name, p.partition)
                    .map_err(|(code, _)| code)
                    .and_then(|owner| {
                        let max = usize::try_from(p.partition_max_bytes)
                            .map_err(|_| ErrorCode::InvalidFetchSize)?;
                        Ok((owner, max))
                    });
                match routed {
                    Ok((owner, max)) => {
                        row.push(fetch_error(ErrorCode::Unknown));
                        jobs.push((
                            owner,
                            ReadPart {
                                topic: topic.name.clone(),
                                partition: p.partition,
                                offset: p.fetch_offset,
                                max_bytes: max.min(max_bytes.max(1)),
                                current_leader_epoch: p.current_leader_epoch,
                                replica_id: request.replica_id,
                            },
                        ));
                        slots.push((ti, pi));
                    }
                    Err(code) => row.push(fetch_error(code)),
                }
            }
            reads.push(row);
        }
        let mut results;
        loop {
            results = self
                .scatter(
                    jobs.clone(),
                    &|ps| Box::pin(self.read_local(ps)),
                    &|ps| Call::Read(ps),
                    |reply| match reply {
                        Reply::Read(r) => Some(r),
                        _ => None,
                    },
                    &|_, _| fetch_error(ErrorCode::NotLeaderOrFollower),
                )
                .await;
            let total: usize = results
                .iter()
                .map(|r| r.batches.iter().map(Bytes::len).sum::<usize>())
                .sum();
            let failed = results.iter().any(|r| !r.error_code.is_ok());
            let now = Instant::now();
            if total >= min_bytes || failed || jobs.is_empty() || now >= deadline {
                break;
            }
            // Wait for any partition to grow past what this read saw, or the deadline.
            let left_ms = u64::try_from(deadline.duration_since(now).as_millis()).unwrap_or(0);
            let mut waits: Vec<(usize, (String, i32, i64))> = Vec::new();
            for ((owner, job), read) in jobs.iter().zip(&results) {
                let seen = read.high_watermark.max(job.offset);
                waits.push((*owner, (job.topic.clone(), job.partition, seen)));
            }
            self.wait_any(waits, left_ms, request.replica_id >= 0).await;
        }
        for ((ti, pi), read) in slots.into_iter().zip(results) {
            reads[ti][pi] = read;
        }
        // Apply the response-wide max_bytes in request order; the first batch always goes.
        let mut used = 0usize;
        let mut full = false;
        let mut stats = self.stats.borrow_mut();
        let topics_out = request
            .topics
            .iter()
            .zip(reads)
            .map(|(topic, row)| FetchTopicResponse {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .zip(row)
                    .map(|(p, read)| {
                        let mut records = Records::new();
                        let mut count = 0u64;
                        for batch in read.batches {
                            if full || (used > 0 && used + batch.len() > max_bytes) {
                                full = true;
                                break;
                            }
                            used += batch.len();
                            count += records_count(&batch);
                            records.push(batch);
                        }
                        stats.record_served(
                            &topic.name,
                            p.partition,
                            count,
                            records.len_bytes() as u64,
                        );
                        FetchPartitionResponse {
                            partition: p.partition,
                            error_code: read.error_code,
                            high_watermark: read.high_watermark,
                            last_stable_offset: read.high_watermark,
                            log_start_offset: read.log_start_offset,
                            aborted_transactions: Vec::new(),
                            records,
                        }
                    })
                    .collect(),
            })
            .collect();
        FetchResponse {
            throttle_time_ms: 0,
            topics: topics_out,
        }
    }

    /// Resolves when any partition grows past the log end given with it, or after `wait_ms`.
    async fn wait_any(&self, parts: Vec<(usize, (String, i32, i64))>, wait_ms: u64, replica: bool) {
        let mut remote: std::collections::BTreeMap<usize, Vec<(String, i32, i64)>> =
            std::collections::BTreeMap::new();
        let mut local = Vec::new();
        for (owner, part) in parts {
            if owner == self.shard {
                local.push(part);
            } else {
                remote.entry(owner).or_default().push(part);
            }
        }
        let mut waits: Vec<LocalBoxFuture<'_, ()>> = Vec::new();
        waits.push(Box::pin(glommio::timer::sleep(Duration::from_millis(
            wait_ms,
        ))));
        if !local.is_empty() {
            waits.push(Box::pin(async move {
                self.wait_local(&local, wait_ms, replica).await
            }));
        }
        for (owner, parts) in remote {
            waits.push(Box::pin(async move {
                if self
                    .call(
                        owner,
                        Call::Wait {
                            parts,
                            wait_ms,
                            replica,
                        },
                    )
                    .await
                    .is_err()
                {
                    // The owner is gone: nothing will arrive from it; let the timer decide.
                    std::future::pending::<()>().await;
                }
            }));
        }
        race_all(waits).await;
    }

    /// Resolves when any of this shard's partitions grows past the given log end (or is
    /// closed, or unknown here), or after `wait_ms` (capped by `fetch_wait_max_ms`).
    pub(crate) async fn wait_local(
        &self,
        parts: &[(String, i32, i64)],
        wait_ms: u64,
        replica: bool,
    ) {
        let wait_ms = wait_ms.min(u64::from(self.config.fetch_wait_max_ms));
        let mut waits: Vec<LocalBoxFuture<'_, ()>> = Vec::new();
        waits.push(Box::pin(glommio::timer::sleep(Duration::from_millis(
            wait_ms,
        ))));
        waits.push(Box::pin(self.stopping.wait()));
        for (topic, partition, seen) in parts {
            match self.local_partition(topic, *partition) {
                Ok(p) => {
                    let seen = *seen;
                    waits.push(Box::pin(
                        async move { p.wait_for_data(seen, replica).await },
                    ));
                }
                // Something changed under the fetch: answer now so it reads again.
                Err(_) => return,
            }
        }
        race_all(waits).await;
    }

    /// Reads parts owned by this shard, concurrently.
    pub(crate) async fn read_local(&self, parts: Vec<ReadPart>) -> Vec<PartRead> {
        let runs: Vec<LocalBoxFuture<'_, PartRead>> = parts
            .into_iter()
            .map(|part| Box::pin(self.read_one(part)) as LocalBoxFuture<'_, PartRead>)
            .collect();
        join_all(runs).await
    }

    async fn read_one(&self, part: ReadPart) -> PartRead {
        let partition = match self.local_partition(&part.topic, part.partition) {
            Ok(p) => p,
            Err((code, _)) => return fetch_error(code),
        };
        if self.clustered() {
            return self.read_replicated(&partition, part).await;
        }
        if let Err(code) = check_leader_epoch(part.current_leader_epoch) {
            return fetch_error(code);
        }
        match partition.read(part.offset, part.max_bytes).await {
            Ok(read) => PartRead {
                error_code: ErrorCode::None,
                high_watermark: read.high_watermark,
                log_start_offset: read.log_start_offset,
                batches: read.batches,
            },
            Err(e) => PartRead {
                error_code: partition_error(&e).0,
                high_watermark: partition.log_end_offset(),
                log_start_offset: partition.log_start_offset(),
                batches: Vec::new(),
            },
        }
    }

    /// A read in a cluster: a follower's fetch records its progress and reads to the log
    /// end; a consumer's reads only below the high watermark. Both only from the leader.
    async fn read_replicated(&self, partition: &Rc<Partition>, part: ReadPart) -> PartRead {
        let high_watermark = if part.replica_id >= 0 {
            self.follower_fetched(
                partition,
                part.replica_id,
                part.current_leader_epoch,
                part.offset,
            )
        } else {
            self.check_leader(&part.topic, part.partition, part.current_leader_epoch)
        };
        let high_watermark = match high_watermark {
            Ok(hw) => hw,
            Err(code) => return fetch_error(code),
        };
        match partition.read(part.offset, part.max_bytes).await {
            Ok(read) => PartRead {
                error_code: ErrorCode::None,
                high_watermark,
                log_start_offset: read.log_start_offset,
                batches: if part.replica_id >= 0 {
                    read.batches
                } else {
                    super::replica::below_high_watermark(read.batches, high_watermark)
                },
            },
            Err(e) => PartRead {
                error_code: partition_error(&e).0,
                high_watermark,
                log_start_offset: partition.log_start_offset(),
                batches: Vec::new(),
            },
        }
    }

    /// ListOffsets.
    pub(crate) async fn list_offsets(&self, request: ListOffsetsRequest) -> ListOffsetsResponse {
        let (mut rows, jobs, slots) = self.route_parts(
            request
                .topics
                .iter()
                .map(|t| (t.name.as_str(), t.partitions.as_slice())),
            |topic, p| {
                let part = OffsetsPart {
                    topic: topic.to_string(),
                    partition: p.partition,
                    spec: p.timestamp,
                    current_leader_epoch: p.current_leader_epoch,
                };
                (p.partition, part)
            },
            offsets_error,
        );
        let results = self
            .scatter(
                jobs,
                &|ps| Box::pin(self.list_offsets_local(ps)),
                &|ps| Call::ListOffsets(ps),
                |reply| match reply {
                    Reply::ListOffsets(r) => Some(r),
                    _ => None,
                },
                &|p, _| offsets_error(p.partition, ErrorCode::NotLeaderOrFollower),
            )
            .await;
        for ((ti, pi), r) in slots.into_iter().zip(results) {
            rows[ti][pi] = r;
        }
        ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: request
                .topics
                .into_iter()
                .zip(rows)
                .map(|(t, partitions)| ListOffsetsTopicResponse {
                    name: t.name,
                    partitions,
                })
                .collect(),
        }
    }

    /// Looks up offsets of parts owned by this shard.
    pub(crate) async fn list_offsets_local(
        &self,
        parts: Vec<OffsetsPart>,
    ) -> Vec<ListOffsetsPartitionResponse> {
        let runs: Vec<LocalBoxFuture<'_, ListOffsetsPartitionResponse>> = parts
            .into_iter()
            .map(|part| {
                Box::pin(self.list_offset_one(part))
                    as LocalBoxFuture<'_, ListOffsetsPartitionResponse>
            })
            .collect();
        join_all(runs).await
    }

    async fn list_offset_one(&self, part: OffsetsPart) -> ListOffsetsPartitionResponse {
        let partition = match self.local_partition(&part.topic, part.partition) {
            Ok(p) => p,
            Err((code, _)) => return offsets_error(part.partition, code),
        };
        let end = if self.clustered() {
            match self.check_leader(&part.topic, part.partition, part.current_leader_epoch) {
                Ok(hw) => hw,
                Err(code) => return offsets_error(part.partition, code),
            }
        } else {
            if let Err(code) = check_leader_epoch(part.current_leader_epoch) {
                return offsets_error(part.partition, code);
            }
            partition.log_end_offset()
        };
        let found = |timestamp_ms, offset, leader_epoch| ListOffsetsPartitionResponse {
            partition: part.partition,
            error_code: ErrorCode::None,
            timestamp_ms,
            offset,
            leader_epoch,
        };
        match part.spec {
            OffsetSpec::Latest => found(-1, end, -1),
            OffsetSpec::Earliest => found(-1, partition.log_start_offset(), -1),
            OffsetSpec::Timestamp(ts) => match partition.offset_for_timestamp(ts).await {
                Ok(Some((offset, timestamp))) => found(timestamp, offset, 0),
                // No record at or after the time: the log end (the protocol's contract).
                Ok(None) => found(-1, end, -1),
                Err(e) => offsets_error(part.partition, partition_error(&e).0),
            },
        }
    }
}

/// A per-topic request split by owner shard (see [`ShardBroker::route_parts`]): the answer rows
/// per topic (unroutable partitions answered, routed ones holding a place), the parts with
/// their owners for `scatter`, and the (topic, partition) slot each part's answer goes to.
type Routed<P, R> = (Vec<Vec<R>>, Vec<(usize, P)>, Vec<(usize, usize)>);

impl ShardBroker {
    /// Routes every partition of a per-topic request to its owner shard: `part(topic, item)`
    /// gives the partition number and what the owner needs; a partition that cannot be routed
    /// is answered `error(partition, code)` at once.
    fn route_parts<'q, Q: 'q, P, R>(
        &self,
        request: impl Iterator<Item = (&'q str, &'q [Q])>,
        part: impl Fn(&str, &Q) -> (i32, P),
        error: fn(i32, ErrorCode) -> R,
    ) -> Routed<P, R> {
        let topics = self.topics();
        let (mut rows, mut jobs, mut slots) = (Vec::new(), Vec::new(), Vec::new());
        for (ti, (name, items)) in request.enumerate() {
            let mut row = Vec::with_capacity(items.len());
            for (pi, item) in items.iter().enumerate() {
                let (partition, job) = part(name, item);
                match self.route(&topics, name, partition) {
                    Ok(owner) => {
                        // A stand-in until the owner's answer takes its place.
                        row.push(error(partition, ErrorCode::Unknown));
                        jobs.push((owner, job));
                        slots.push((ti, pi));
                    }
                    Err((code, _)) => row.push(error(partition, code)),
                }
            }
            rows.push(row);
        }
        (rows, jobs, slots)
    }

    /// OffsetForLeaderEpoch.
    pub(crate) async fn offset_for_leader_epoch(
        &self,
        request: OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        let (mut rows, jobs, slots) = self.route_parts(
            request
                .topics
                .iter()
                .map(|t| (t.name.as_str(), t.partitions.as_slice())),
            |topic, p| {
                let part = EpochPart {
                    topic: topic.to_string(),
                    partition: p.partition,
                    current_leader_epoch: p.current_leader_epoch,
                    leader_epoch: p.leader_epoch,
                };
                (p.partition, part)
            },
            epoch_error,
        );
        let results = self
            .scatter(
                jobs,
                &|ps| Box::pin(self.epoch_ends_local(ps)),
                &|ps| Call::EpochEnds(ps),
                |reply| match reply {
                    Reply::EpochEnds(r) => Some(r),
                    _ => None,
                },
                &|p, _| epoch_error(p.partition, ErrorCode::NotLeaderOrFollower),
            )
            .await;
        for ((ti, pi), r) in slots.into_iter().zip(results) {
            rows[ti][pi] = r;
        }
        OffsetForLeaderEpochResponse {
            throttle_time_ms: 0,
            topics: request
                .topics
                .into_iter()
                .zip(rows)
                .map(|(t, partitions)| OffsetForLeaderEpochTopicResponse {
                    name: t.name,
                    partitions,
                })
                .collect(),
        }
    }

    /// Looks up epoch ends of parts owned by this shard.
    pub(crate) async fn epoch_ends_local(
        &self,
        parts: Vec<EpochPart>,
    ) -> Vec<OffsetForLeaderEpochPartitionResponse> {
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            let partition = match self.local_partition(&part.topic, part.partition) {
                Ok(p) => p,
                Err((code, _)) => {
                    out.push(epoch_error(part.partition, code));
                    continue;
                }
            };
            let checked = if self.clustered() {
                self.check_leader(&part.topic, part.partition, part.current_leader_epoch)
                    .map(drop)
            } else {
                check_leader_epoch(part.current_leader_epoch)
            };
            if let Err(code) = checked {
                out.push(epoch_error(part.partition, code));
                continue;
            }
            out.push(
                match partition.end_offset_for_epoch(part.leader_epoch).await {
                    Ok((leader_epoch, end_offset)) => OffsetForLeaderEpochPartitionResponse {
                        partition: part.partition,
                        error_code: ErrorCode::None,
                        leader_epoch,
                        end_offset,
                    },
                    Err(e) => epoch_error(part.partition, partition_error(&e).0),
                },
            );
        }
        out
    }
}

/// Waits until the append that ended at `next_offset` is durable per the partition's flush
/// policy, at most `timeout`.
pub(crate) async fn wait_acks(
    partition: &Rc<Partition>,
    next_offset: i64,
    timeout: Duration,
) -> Result<(), WireError> {
    let durable = async {
        match partition.flush_policy() {
            FlushPolicy::Always => partition.sync_through(next_offset).await,
            FlushPolicy::Interval { .. } => partition.wait_durable(next_offset).await,
            FlushPolicy::Never => Ok(()),
        }
    };
    enum Outcome {
        Done(Result<(), PartitionError>),
        TimedOut,
    }
    let outcome = futures_lite::future::or(async { Outcome::Done(durable.await) }, async {
        glommio::timer::sleep(timeout).await;
        Outcome::TimedOut
    })
    .await;
    match outcome {
        Outcome::Done(Ok(())) => Ok(()),
        Outcome::TimedOut => Err((
            ErrorCode::RequestTimedOut,
            format!(
                "appended to {} but not durable within {} ms (the data stays appended)",
                partition.name(),
                timeout.as_millis()
            ),
        )),
        Outcome::Done(Err(e)) => Err(partition_error(&e)),
    }
}
