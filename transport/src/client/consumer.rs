//! [`Consumer`]: manual assignment, seek, and long-poll fetches sent per owning shard. Batches
//! are decoded (and decompressed) here, in the client: the broker serves them as stored.
//!
//! Positions: for each assigned partition the consumer keeps the offset of the next record to
//! return. `poll` fetches from every position at once (one request per leader shard, all in
//! parallel), returns the records at or after each position, and moves the position past the
//! last complete batch received. A partition without a position (newly assigned) or whose
//! position fell out of the log gets one from `auto_offset_reset`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::batch::{BatchError, RecordBatch, RecordHeader};
use crate::protocol::{
    ApiKey, ErrorCode, FetchPartition, FetchRequest, FetchResponse, FetchTopic, IsolationLevel,
    OffsetSpec, Request, Response,
};

use super::net::unexpected;
use super::{BrokerAddr, Client, ClientConfig, ClientError, TopicPartition};

/// Where a consumer starts when it has no valid position.
///
/// ```
/// use quiver_transport::client::OffsetReset;
/// assert_eq!(OffsetReset::default(), OffsetReset::Latest);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start: read everything still retained.
    Earliest,
    /// The log end: read only what is written from now on (Kafka's default).
    #[default]
    Latest,
    /// Fail `poll` with the broker's `OffsetOutOfRange` (or an error for no position).
    None,
}

/// Consumer settings; defaults follow Kafka's consumer.
///
/// ```
/// use std::time::Duration;
/// use quiver_transport::client::{ConsumerConfig, OffsetReset};
///
/// let config = ConsumerConfig {
///     auto_offset_reset: OffsetReset::Earliest,
///     max_wait: Duration::from_millis(100),
///     ..ConsumerConfig::default()
/// };
/// assert_eq!(config.min_bytes, 1);
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// What to do without a valid position (default latest).
    pub auto_offset_reset: OffsetReset,
    /// Longest the broker holds a fetch waiting for `min_bytes` (default 500 ms); also capped
    /// by the time left of `poll`'s timeout.
    pub max_wait: Duration,
    /// Bytes the broker waits for before answering a fetch (default 1).
    pub min_bytes: i32,
    /// Most bytes per fetch response, over all partitions (default 50 MiB; at least one batch
    /// is returned anyway).
    pub max_bytes: i32,
    /// Most bytes per partition in a fetch response (default 1 MiB).
    pub max_partition_bytes: i32,
    /// Which records are visible (default read-uncommitted).
    pub isolation_level: IsolationLevel,
    /// Wait after a retriable fetch error before trying again (default 100 ms).
    pub retry_backoff: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 << 20,
            max_partition_bytes: 1 << 20,
            isolation_level: IsolationLevel::ReadUncommitted,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// A record read from a partition.
///
/// ```
/// use quiver_transport::client::ConsumerRecord;
/// let record = ConsumerRecord {
///     topic: "t".into(), partition: 0, offset: 5, timestamp: 1,
///     key: None, value: Some("v".into()), headers: vec![],
/// };
/// assert_eq!(record.value.as_deref(), Some(&b"v"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms since the Unix epoch (create or log-append time, per the topic).
    pub timestamp: i64,
    /// Key, or none.
    pub key: Option<Bytes>,
    /// Value, or none.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
}

/// A consumer of explicitly assigned partitions. Not shared: methods take `&mut self`, as a
/// Kafka consumer is used from one task.
///
/// ```no_run
/// # async fn demo() -> Result<(), quiver_transport::client::ClientError> {
/// use std::time::Duration;
/// use quiver_transport::client::*;
///
/// let config = ClientConfig::new("127.0.0.1:9190", ClientConfig::trust_from_env_or_default()?);
/// let mut consumer = Consumer::connect(config, ConsumerConfig::default()).await?;
/// let tp = TopicPartition::new("events", 0);
/// consumer.assign(vec![tp.clone()]);
/// consumer.seek(&tp, 0)?;
/// loop {
///     for record in consumer.poll(Duration::from_millis(500)).await? {
///         println!("{}: {:?}", record.offset, record.value);
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    assignment: Vec<TopicPartition>,
    /// Next offset to return, per assigned partition; absent until reset or seek.
    positions: HashMap<TopicPartition, i64>,
    /// High watermark per assigned partition, from the last fetch that answered for it.
    high_watermarks: HashMap<TopicPartition, i64>,
    /// Assigned partitions `poll` does not fetch until resumed.
    paused: BTreeSet<TopicPartition>,
}

impl Consumer {
    /// Connects to the cluster and makes a consumer with nothing assigned.
    pub async fn connect(
        client_config: ClientConfig,
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        Consumer::with_client(Client::connect(client_config).await?, config).await
    }

    /// A consumer on an existing [`Client`], checking the broker speaks Fetch and ListOffsets.
    pub async fn with_client(
        client: Client,
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        if config.max_bytes <= 0 || config.max_partition_bytes <= 0 || config.min_bytes < 0 {
            return Err(ClientError::Config(
                "consumer: max_bytes and max_partition_bytes must be > 0, min_bytes >= 0".into(),
            ));
        }
        client
            .ensure_apis(&[ApiKey::Metadata, ApiKey::Fetch, ApiKey::ListOffsets])
            .await?;
        Ok(Consumer {
            client,
            config,
            assignment: Vec::new(),
            positions: HashMap::new(),
            high_watermarks: HashMap::new(),
            paused: BTreeSet::new(),
        })
    }

    /// Replaces the assignment. Partitions kept keep their positions and their pause; new
    /// ones start fetchable.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        let mut partitions = partitions;
        partitions.sort();
        partitions.dedup();
        self.positions.retain(|tp, _| partitions.contains(tp));
        self.high_watermarks.retain(|tp, _| partitions.contains(tp));
        self.paused.retain(|tp| partitions.contains(tp));
        self.assignment = partitions;
    }

    /// Stops fetching `tps` (assigned partitions) until [`Consumer::resume`]: `poll` returns
    /// nothing from them and their positions stay where they are, as with Kafka's `pause`.
    /// Useful for back-pressure. Errors if one of them is not assigned (then none is paused).
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<(), ClientError> {
        if let Some(tp) = tps.iter().find(|tp| !self.assignment.contains(tp)) {
            return Err(ClientError::InvalidArgument(format!(
                "cannot pause {tp}: it is not assigned"
            )));
        }
        self.paused.extend(tps.iter().cloned());
        Ok(())
    }

    /// Fetches `tps` again; partitions that are not paused are ignored.
    pub fn resume(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.paused.remove(tp);
        }
    }

    /// The paused partitions, in order.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
    }

    /// The position of `tp` if it has one now (assigned and seeked, reset or fetched), without
    /// asking the broker; see [`Consumer::position`].
    pub fn known_position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    /// How many records of `tp` are left to read: the high watermark of the last fetch that
    /// answered for it minus the position (at least 0). `None` before such a fetch or without
    /// a position. It is as fresh as that fetch, not a broker round trip.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let high_watermark = self.high_watermarks.get(tp)?;
        let position = self.positions.get(tp)?;
        Some((high_watermark - position).max(0))
    }

    /// The connection to the cluster this consumer uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// Sets the next offset `poll` returns for `tp` (an assigned partition).
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), ClientError> {
        if !self.assignment.contains(tp) {
            return Err(ClientError::InvalidArgument(format!(
                "{tp} is not assigned"
            )));
        }
        if offset < 0 {
            return Err(ClientError::InvalidArgument(format!(
                "offset {offset} for {tp} is negative"
            )));
        }
        self.positions.insert(tp.clone(), offset);
        Ok(())
    }

    /// Seeks each of `tps` to its log start offset.
    pub async fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<(), ClientError> {
        self.seek_to(tps, OffsetSpec::Earliest).await
    }

    /// Seeks each of `tps` to its log end offset (only new records will be read).
    pub async fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<(), ClientError> {
        self.seek_to(tps, OffsetSpec::Latest).await
    }

    /// Seeks `tp` to the first record with a timestamp at or after `timestamp_ms` (the log end
    /// if there is none).
    pub async fn seek_to_timestamp(
        &mut self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<(), ClientError> {
        if timestamp_ms < 0 {
            return Err(ClientError::InvalidArgument(format!(
                "timestamp {timestamp_ms} is negative"
            )));
        }
        self.seek_to(
            std::slice::from_ref(tp),
            OffsetSpec::Timestamp(timestamp_ms),
        )
        .await
    }

    async fn seek_to(
        &mut self,
        tps: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<(), ClientError> {
        if let Some(tp) = tps.iter().find(|tp| !self.assignment.contains(tp)) {
            return Err(ClientError::InvalidArgument(format!(
                "{tp} is not assigned"
            )));
        }
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            tps.iter().map(|tp| (tp.clone(), spec)).collect();
        let found = self.client.list_offsets(&specs).await?;
        for (tp, listed) in found {
            self.positions.insert(tp, listed.offset);
        }
        Ok(())
    }

    /// The offset of the next record `poll` returns for `tp`, resetting per
    /// `auto_offset_reset` first if it has none.
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64, ClientError> {
        if !self.assignment.contains(tp) {
            return Err(ClientError::InvalidArgument(format!(
                "{tp} is not assigned"
            )));
        }
        self.reset_missing_positions().await?;
        self.positions
            .get(tp)
            .copied()
            .ok_or_else(|| ClientError::InvalidArgument(format!("{tp} has no position")))
    }

    /// Fetches records from every assigned partition not paused, waiting up to `timeout` for some to
    /// arrive; returns them in offset order per partition (empty if none came in time).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.reset_missing_positions().await?;
            let now = Instant::now();
            if self.assignment.iter().all(|tp| self.paused.contains(tp)) {
                tokio::time::sleep_until(deadline.into()).await;
                return Ok(Vec::new());
            }
            let max_wait = self
                .config
                .max_wait
                .min(deadline.saturating_duration_since(now));
            let (records, fetched_any) = self.fetch_once(max_wait).await?;
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
            if !fetched_any {
                // Every partition hit a retriable error: back off before the next round.
                let wake = (Instant::now() + self.config.retry_backoff).min(deadline);
                tokio::time::sleep_until(wake.into()).await;
            }
        }
    }

    /// Gives a position to every assigned partition lacking one, per `auto_offset_reset`.
    async fn reset_missing_positions(&mut self) -> Result<(), ClientError> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !self.positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let spec = match self.config.auto_offset_reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::None => {
                return Err(ClientError::InvalidArgument(format!(
                    "{} has no position and auto_offset_reset is None: seek first",
                    missing[0]
                )))
            }
        };
        let specs: Vec<_> = missing.into_iter().map(|tp| (tp, spec)).collect();
        for (tp, listed) in self.client.list_offsets(&specs).await? {
            self.positions.insert(tp, listed.offset);
        }
        Ok(())
    }

    /// One round of fetches, one per leader shard, in parallel. Returns the records and
    /// whether any fetch got an answer.
    async fn fetch_once(
        &mut self,
        max_wait: Duration,
    ) -> Result<(Vec<ConsumerRecord>, bool), ClientError> {
        let mut by_leader: BTreeMap<BrokerAddr, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for tp in &self.assignment {
            let Some(&offset) = self.positions.get(tp) else {
                continue;
            };
            if self.paused.contains(tp) {
                continue;
            }
            match self.client.leader_for(tp).await {
                Ok(addr) => by_leader
                    .entry(addr)
                    .or_default()
                    .push((tp.clone(), offset)),
                Err(e) if e.is_retriable() => self.client.invalidate_metadata(&tp.topic),
                Err(e) => return Err(e),
            }
        }
        let mut fetches = tokio::task::JoinSet::new();
        for (addr, partitions) in by_leader {
            let request = self.fetch_request(&partitions, max_wait);
            let client = self.client.clone();
            let timeout = client.config().request_timeout + max_wait;
            fetches.spawn(async move {
                let response = client.request(&addr, request, timeout).await;
                (partitions, response)
            });
        }
        let mut records = Vec::new();
        let mut fetched_any = false;
        let mut first_error = None;
        while let Some(joined) = fetches.join_next().await {
            let (partitions, response) =
                joined.map_err(|e| ClientError::Protocol(format!("fetch task failed: {e}")))?;
            let response = match response {
                Ok(Response::Fetch(response)) => response,
                Ok(other) => return Err(unexpected(ApiKey::Fetch, &other)),
                Err(e) if e.is_retriable() => {
                    for (tp, _) in &partitions {
                        self.client.invalidate_metadata(&tp.topic);
                    }
                    continue;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            fetched_any = true;
            if let Err(e) = self.apply_fetch(&response, &partitions, &mut records) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            // Records already taken move positions on: return them; the error recurs next poll.
            Some(e) if records.is_empty() => Err(e),
            _ => Ok((records, fetched_any)),
        }
    }

    fn fetch_request(&self, partitions: &[(TopicPartition, i64)], max_wait: Duration) -> Request {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (tp, offset) in partitions {
            let partition = FetchPartition {
                partition: tp.partition,
                current_leader_epoch: -1,
                fetch_offset: *offset,
                log_start_offset: -1,
                partition_max_bytes: self.config.max_partition_bytes,
            };
            match topics.iter_mut().find(|t| t.name == tp.topic) {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(FetchTopic {
                    name: tp.topic.clone(),
                    partitions: vec![partition],
                }),
            }
        }
        Request::from(FetchRequest {
            replica_id: -1,
            max_wait_ms: i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: self.config.min_bytes,
            max_bytes: self.config.max_bytes,
            isolation_level: self.config.isolation_level,
            topics,
        })
    }

    /// Applies one fetch response: decodes records, moves positions, handles errors.
    fn apply_fetch(
        &mut self,
        response: &FetchResponse,
        partitions: &[(TopicPartition, i64)],
        records: &mut Vec<ConsumerRecord>,
    ) -> Result<(), ClientError> {
        for (tp, fetch_offset) in partitions {
            let Some(result) = response
                .topics
                .iter()
                .filter(|t| t.name == tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition == tp.partition)
            else {
                continue;
            };
            match result.error_code {
                ErrorCode::None => {
                    if result.high_watermark >= 0 {
                        self.high_watermarks
                            .insert(tp.clone(), result.high_watermark);
                    }
                    let data = result.records.to_bytes();
                    let (mut decoded, next) =
                        decode_fetched(&tp.topic, tp.partition, &data, *fetch_offset)?;
                    if let Some(next) = next {
                        self.positions.insert(tp.clone(), next);
                    }
                    records.append(&mut decoded);
                }
                ErrorCode::OffsetOutOfRange
                    if self.config.auto_offset_reset != OffsetReset::None =>
                {
                    self.positions.remove(tp);
                }
                code if code.is_retriable() => {
                    if super::net::needs_refresh(code) {
                        self.client.invalidate_metadata(&tp.topic);
                    }
                }
                code => {
                    return Err(ClientError::broker(
                        code,
                        Some(format!("fetching at offset {fetch_offset}")),
                        &tp.topic,
                        Some(tp.partition),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Decodes the record batches of one partition from a fetch response: every record at or
/// after `fetch_offset` (earlier records of the first batch are skipped; control batches are
/// skipped whole), decompressing as needed. Returns the records and the offset after the last
/// complete batch (`None` if there was none). A partial batch at the end (cut by the fetch's
/// byte limit) is ignored; one with no complete batch before it is an error, since the
/// consumer could not advance.
///
/// ```
/// use quiver_transport::batch::{BatchBuilder, Compression, stamp};
/// use quiver_transport::client::decode_fetched;
///
/// let mut builder = BatchBuilder::new(Compression::None);
/// for v in [b"a", b"b", b"c"] {
///     builder.push(1, None, Some(v), &[]);
/// }
/// let mut batch = builder.build().unwrap();
/// stamp(&mut batch, 10, 0); // offsets 10, 11, 12
/// let (records, next) = decode_fetched("t", 0, &batch.freeze(), 11).unwrap();
/// assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [11, 12]);
/// assert_eq!(next, Some(13));
/// ```
pub fn decode_fetched(
    topic: &str,
    partition: i32,
    data: &Bytes,
    fetch_offset: i64,
) -> Result<(Vec<ConsumerRecord>, Option<i64>), ClientError> {
    let corrupt = |reason: String| ClientError::CorruptBatch {
        topic: topic.to_string(),
        partition,
        reason,
    };
    let mut records = Vec::new();
    let mut next = None;
    let mut at = 0;
    while at < data.len() {
        let (batch, len) = match RecordBatch::parse_prefix(&data[at..]) {
            Ok(parsed) => parsed,
            Err(BatchError::Truncated { need, have }) => {
                if next.is_none() {
                    return Err(corrupt(format!(
                        "the first batch at offset {fetch_offset} is cut off ({have} of {need} \
                         bytes): raise max_partition_bytes / max_bytes"
                    )));
                }
                break;
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        at += len;
        if batch.next_offset() <= fetch_offset {
            continue;
        }
        next = Some(batch.next_offset());
        if batch.is_control() {
            continue;
        }
        for record in batch.records().map_err(|e| corrupt(e.to_string()))? {
            if record.offset < fetch_offset {
                continue;
            }
            records.push(ConsumerRecord {
                topic: topic.to_string(),
                partition,
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key,
                value: record.value,
                headers: record.headers,
            });
        }
    }
    Ok((records, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{stamp, BatchBuilder, Compression};
    use bytes::BytesMut;

    fn batch(compression: Compression, base: i64, values: &[&str]) -> BytesMut {
        let mut builder = BatchBuilder::new(compression);
        for (i, v) in values.iter().enumerate() {
            let key = format!("k{i}");
            builder.push(
                1000 + i as i64,
                Some(key.as_bytes()),
                Some(v.as_bytes()),
                &[("h", Some(b"x"))],
            );
        }
        let mut bytes = builder.build().unwrap();
        stamp(&mut bytes, base, 3);
        bytes
    }

    fn offsets(records: &[ConsumerRecord]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn skips_records_before_the_fetch_offset() {
        let mut data = batch(Compression::None, 0, &["a", "b", "c", "d"]);
        data.extend_from_slice(&batch(Compression::None, 4, &["e", "f"]));
        let data = data.freeze();
        let (records, next) = decode_fetched("t", 1, &data, 2).unwrap();
        assert_eq!(offsets(&records), [2, 3, 4, 5]);
        assert_eq!(next, Some(6));
        assert_eq!(records[0].value.as_deref(), Some(&b"c"[..]));
        assert_eq!(records[0].key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(records[0].timestamp, 1002);
        assert_eq!(records[0].headers[0].key, "h");
        assert_eq!((records[0].topic.as_str(), records[0].partition), ("t", 1));
        // A whole batch before the offset is skipped.
        let (records, next) = decode_fetched("t", 1, &data, 5).unwrap();
        assert_eq!(offsets(&records), [5]);
        assert_eq!(next, Some(6));
    }

    #[test]
    fn decodes_every_compression() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let values: Vec<String> = (0..50).map(|i| format!("value-{i}-{codec}")).collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            let data = batch(codec, 100, &refs).freeze();
            let (records, next) = decode_fetched("t", 0, &data, 110).unwrap();
            assert_eq!(records.len(), 40, "{codec}");
            assert_eq!(records[0].offset, 110);
            assert_eq!(records[0].value.as_deref(), Some(values[10].as_bytes()));
            assert_eq!(next, Some(150));
        }
    }

    #[test]
    fn ignores_a_partial_last_batch_but_not_a_partial_first() {
        let mut data = batch(Compression::None, 0, &["a", "b"]);
        let second = batch(Compression::None, 2, &["c"]);
        data.extend_from_slice(&second[..second.len() - 5]);
        let (records, next) = decode_fetched("t", 0, &data.freeze(), 0).unwrap();
        assert_eq!(offsets(&records), [0, 1]);
        assert_eq!(next, Some(2));
        let partial = Bytes::copy_from_slice(&second[..30]);
        let err = decode_fetched("t", 0, &partial, 2).unwrap_err();
        assert!(err.to_string().contains("max_partition_bytes"), "{err}");
    }

    #[test]
    fn rejects_corrupt_batches() {
        let mut data = batch(Compression::None, 0, &["a"]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let err = decode_fetched("t", 0, &data.freeze(), 0).unwrap_err();
        assert!(matches!(err, ClientError::CorruptBatch { .. }), "{err}");
    }

    #[test]
    fn empty_data_decodes_to_nothing() {
        let (records, next) = decode_fetched("t", 0, &Bytes::new(), 7).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, None);
    }
}
