//! Dead-letter topics (ARCHITECTURE §7): [`DeadLetterQueue`] runs a record's handler up to
//! [`DeadLetterPolicy::max_attempts`] times with exponential back-off; when every attempt failed
//! it publishes the record to its dead-letter topic (`<topic>.dlq` unless the policy names
//! another) and waits for the broker's acknowledgement, so the caller can commit the source
//! offset and move on: one bad record no longer blocks its partition.
//!
//! A dead letter is the original record (same key, value, headers and timestamp) plus headers
//! that say what happened:
//!
//! | header | value |
//! |---|---|
//! | `dlq.error` | the last attempt's error (`Display`), cut to [`DLQ_ERROR_BYTES_MAX`] bytes |
//! | `dlq.source.topic` | the topic the record was read from |
//! | `dlq.source.partition` | its partition (decimal) |
//! | `dlq.source.offset` | its offset (decimal) |
//! | `dlq.attempts` | how many times the handler ran (decimal) |
//! | `dlq.failed.at.ms` | when the last attempt failed, ms since the Unix epoch (decimal) |
//!
//! Headers of the original whose key starts with `dlq.` (from an earlier dead-lettering or
//! replay) are dropped first, so a dead letter carries exactly one set. [`DeadLetter`] parses
//! them back; [`DeadLetter::replay_record`] builds the record `quiver dlq replay` re-injects.
//!
//! The dead-letter topic is created on first use when missing, with the source topic's partition
//! count; while the two partition counts match a dead letter keeps its source partition, else it
//! is placed by key (murmur2), or sticky without a key. The broker reports each dead-letter
//! topic's depth as `quiver_dlq_depth_records{topic="<t>.dlq"}`.
//!
//! With a consumer group, process each record through the helper, then commit:
//!
//! ```no_run
//! # async fn demo() -> Result<(), quiver_transport::client::ClientError> {
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use quiver_transport::client::*;
//!
//! let config = ClientConfig::new("127.0.0.1:9190", ClientConfig::trust_from_env_or_default()?);
//! let client = Client::connect(config).await?;
//! let producer = Producer::with_client(client.clone(), ProducerConfig::default()).await?;
//! let dlq = DeadLetterQueue::new(producer, Admin::new(client.clone()), DeadLetterPolicy::default())?;
//! let mut group_config = GroupConfig::new("billing");
//! group_config.enable_auto_commit = false;
//! let mut consumer = GroupConsumer::subscribe(
//!     client,
//!     ConsumerConfig::default(),
//!     group_config,
//!     vec!["orders".to_string()],
//! )
//! .await?;
//! loop {
//!     let records = consumer.poll(Duration::from_millis(500)).await?;
//!     let mut done = BTreeMap::new();
//!     for record in &records {
//!         let outcome = dlq
//!             .process(record, |r| async move {
//!                 match r.value.as_deref() {
//!                     Some(v) if v.starts_with(b"{") => Ok(()),
//!                     _ => Err(format!("not JSON at offset {}", r.offset)),
//!                 }
//!             })
//!             .await?;
//!         if let Outcome::DeadLettered { dlq_offset, .. } = outcome {
//!             eprintln!("record {} dead-lettered at {dlq_offset}", record.offset);
//!         }
//!         done.insert(TopicPartition::new(&record.topic, record.partition), record.offset + 1);
//!     }
//!     consumer.commit_offsets(&done).await?;
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::batch::RecordHeader;
use crate::protocol::ErrorCode;

use super::{Admin, ClientError, ConsumerRecord, NewTopic, Producer, ProducerRecord};

/// What a dead-letter topic's name adds to its source topic's (`orders` → `orders.dlq`).
pub const DLQ_TOPIC_SUFFIX: &str = ".dlq";
/// Every header the helper adds starts with this; such headers are dropped from the original.
pub const DLQ_HEADER_PREFIX: &str = "dlq.";
/// Header: the last attempt's error.
pub const DLQ_HEADER_ERROR: &str = "dlq.error";
/// Header: the source topic.
pub const DLQ_HEADER_SOURCE_TOPIC: &str = "dlq.source.topic";
/// Header: the source partition, decimal.
pub const DLQ_HEADER_SOURCE_PARTITION: &str = "dlq.source.partition";
/// Header: the source offset, decimal.
pub const DLQ_HEADER_SOURCE_OFFSET: &str = "dlq.source.offset";
/// Header: how many times the handler ran, decimal.
pub const DLQ_HEADER_ATTEMPTS: &str = "dlq.attempts";
/// Header: when the last attempt failed, ms since the Unix epoch, decimal.
pub const DLQ_HEADER_FAILED_AT_MS: &str = "dlq.failed.at.ms";
/// Header set on a replayed record: `<dlq topic>/<partition>/<offset>` it was replayed from.
pub const DLQ_HEADER_REPLAYED_FROM: &str = "dlq.replayed.from";
/// Longest `dlq.error` value, bytes; a longer error text is cut at a character boundary.
pub const DLQ_ERROR_BYTES_MAX: usize = 8 * 1024;

/// The dead-letter topic of `topic`: `<topic>.dlq`.
///
/// ```
/// assert_eq!(quiver_transport::client::dlq_topic_for("orders"), "orders.dlq");
/// ```
pub fn dlq_topic_for(topic: &str) -> String {
    format!("{topic}{DLQ_TOPIC_SUFFIX}")
}

/// How often to retry a record and where its dead letter goes.
///
/// ```
/// use std::time::Duration;
/// use quiver_transport::client::DeadLetterPolicy;
///
/// let policy = DeadLetterPolicy { max_attempts: 5, ..DeadLetterPolicy::default() };
/// // Waits after failed attempts 1, 2, 3, 4: 100, 200, 400, 800 ms.
/// assert_eq!(policy.backoff(3), Duration::from_millis(400));
/// assert_eq!(policy.dlq_topic("orders"), "orders.dlq");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterPolicy {
    /// How many times the handler runs before the record is dead-lettered (default 3, at
    /// least 1).
    pub max_attempts: u32,
    /// Wait after the first failed attempt (default 100 ms).
    pub initial_backoff: Duration,
    /// Longest wait between attempts (default 5 s).
    pub max_backoff: Duration,
    /// Each wait is the previous one times this (default 2.0, at least 1.0).
    pub multiplier: f64,
    /// Dead-letter topic; `None` (default) for `<source topic>.dlq`.
    pub dlq_topic: Option<String>,
}

impl Default for DeadLetterPolicy {
    fn default() -> Self {
        DeadLetterPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            dlq_topic: None,
        }
    }
}

impl DeadLetterPolicy {
    /// Checks the fields.
    pub fn validate(&self) -> Result<(), ClientError> {
        let bad = |what: &str| {
            Err(ClientError::InvalidArgument(format!(
                "dead-letter policy: {what}"
            )))
        };
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return bad("multiplier must be a finite number >= 1.0");
        }
        if self.initial_backoff > self.max_backoff {
            return bad("initial_backoff must not exceed max_backoff");
        }
        if self.dlq_topic.as_deref() == Some("") {
            return bad("dlq_topic must not be empty");
        }
        Ok(())
    }

    /// The wait after failed attempt `failed_attempt` (1-based): `initial_backoff ×
    /// multiplier^(failed_attempt - 1)`, at most `max_backoff`.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(1024) as i32;
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        if !secs.is_finite() || secs >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The dead-letter topic for records of `source_topic`.
    pub fn dlq_topic(&self, source_topic: &str) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| dlq_topic_for(source_topic))
    }
}

/// What [`DeadLetterQueue::process`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded on attempt `attempts`.
    Processed {
        /// Attempts made, 1 ..= `max_attempts`.
        attempts: u32,
    },
    /// Every attempt failed; the record was written (and acknowledged) to the dead-letter topic.
    DeadLettered {
        /// Attempts made (`max_attempts`).
        attempts: u32,
        /// The last attempt's error text.
        error: String,
        /// The dead-letter topic.
        dlq_topic: String,
        /// The dead letter's partition.
        dlq_partition: i32,
        /// The dead letter's offset.
        dlq_offset: i64,
    },
}

/// Retries record handlers and publishes the records they cannot handle to a dead-letter
/// topic. Shareable (`&self` methods); see the module docs for a consumer-group loop.
#[derive(Debug)]
pub struct DeadLetterQueue {
    producer: Producer,
    admin: Admin,
    policy: DeadLetterPolicy,
    /// Dead-letter topics known to exist, with their partition counts.
    topics: Mutex<HashMap<String, i32>>,
}

impl DeadLetterQueue {
    /// A helper that writes dead letters with `producer` and creates missing dead-letter topics
    /// with `admin`. Use a producer with `acks = all` (the default) so an acknowledged dead
    /// letter is durable before the source offset is committed.
    pub fn new(
        producer: Producer,
        admin: Admin,
        policy: DeadLetterPolicy,
    ) -> Result<DeadLetterQueue, ClientError> {
        policy.validate()?;
        Ok(DeadLetterQueue {
            producer,
            admin,
            policy,
            topics: Mutex::new(HashMap::new()),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &DeadLetterPolicy {
        &self.policy
    }

    /// Runs `handler` on `record` until it succeeds, at most `max_attempts` times, sleeping the
    /// policy's back-off between attempts. If every attempt fails, dead-letters the record
    /// ([`DeadLetterQueue::dead_letter`]) and returns once the broker acknowledged it. An `Err`
    /// means the dead letter could not be written: do not commit the record's offset then.
    pub async fn process<'r, F, Fut, E>(
        &self,
        record: &'r ConsumerRecord,
        handler: F,
    ) -> Result<Outcome, ClientError>
    where
        F: FnMut(&'r ConsumerRecord) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        match retry(&self.policy, record, handler).await {
            Ok(attempts) => Ok(Outcome::Processed { attempts }),
            Err((error, attempts)) => {
                let written = self.dead_letter(record, &error, attempts).await?;
                Ok(Outcome::DeadLettered {
                    attempts,
                    error,
                    dlq_topic: written.topic,
                    dlq_partition: written.partition,
                    dlq_offset: written.offset,
                })
            }
        }
    }

    /// Writes `record` to its dead-letter topic at once (e.g. for an error not worth
    /// retrying), creating the topic if missing, and waits for the acknowledgement.
    pub async fn dead_letter(
        &self,
        record: &ConsumerRecord,
        error: &str,
        attempts: u32,
    ) -> Result<super::RecordMetadata, ClientError> {
        let topic = self.policy.dlq_topic(&record.topic);
        let partitions = self.ensure_topic(&topic, &record.topic).await?;
        let source_partitions = if topic == record.topic {
            partitions
        } else {
            self.partition_count(&record.topic).await.unwrap_or(-1)
        };
        let mut out = dead_letter_record(&topic, record, error, attempts, now_ms());
        if partitions == source_partitions && record.partition < partitions {
            out.partition = Some(record.partition);
        }
        self.producer.send(out).await?.await
    }

    /// Partition count of `topic`, if it exists.
    async fn partition_count(&self, topic: &str) -> Option<i32> {
        let metadata = self
            .admin
            .metadata(Some(vec![topic.to_string()]))
            .await
            .ok()?;
        metadata
            .topics
            .into_iter()
            .find(|t| t.name == topic && t.error_code.is_ok())
            .map(|t| t.partitions.len() as i32)
    }

    /// Makes sure the dead-letter topic exists (creating it with the source's partition count)
    /// and returns its partition count.
    async fn ensure_topic(&self, topic: &str, source: &str) -> Result<i32, ClientError> {
        if let Some(&n) = lock(&self.topics).get(topic) {
            return Ok(n);
        }
        let n = match self.partition_count(topic).await {
            Some(n) => n,
            None => {
                let partitions = self.partition_count(source).await.unwrap_or(1).max(1);
                match self
                    .admin
                    .create_topic(NewTopic::new(topic, partitions))
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.error_code() == Some(ErrorCode::TopicAlreadyExists) => {}
                    Err(e) => return Err(e),
                }
                self.partition_count(topic).await.unwrap_or(partitions)
            }
        };
        lock(&self.topics).insert(topic.to_string(), n);
        Ok(n)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `handler` up to `max_attempts` times with back-off: the attempt that succeeded, or the
/// last error's text and the attempts made.
async fn retry<'r, F, Fut, E>(
    policy: &DeadLetterPolicy,
    record: &'r ConsumerRecord,
    mut handler: F,
) -> Result<u32, (String, u32)>
where
    F: FnMut(&'r ConsumerRecord) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let max = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match handler(record).await {
            Ok(()) => return Ok(attempt),
            Err(e) if attempt >= max => return Err((e.to_string(), attempt)),
            Err(_) => {
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The dead letter of `record` for `topic` (partition left to the caller).
fn dead_letter_record(
    topic: &str,
    record: &ConsumerRecord,
    error: &str,
    attempts: u32,
    failed_at_ms: i64,
) -> ProducerRecord {
    let mut headers: Vec<RecordHeader> = record
        .headers
        .iter()
        .filter(|h| !h.key.starts_with(DLQ_HEADER_PREFIX))
        .cloned()
        .collect();
    let mut add = |key: &str, value: String| {
        headers.push(RecordHeader {
            key: key.to_string(),
            value: Some(Bytes::from(value)),
        })
    };
    add(
        DLQ_HEADER_ERROR,
        truncate(error, DLQ_ERROR_BYTES_MAX).to_string(),
    );
    add(DLQ_HEADER_SOURCE_TOPIC, record.topic.clone());
    add(DLQ_HEADER_SOURCE_PARTITION, record.partition.to_string());
    add(DLQ_HEADER_SOURCE_OFFSET, record.offset.to_string());
    add(DLQ_HEADER_ATTEMPTS, attempts.to_string());
    add(DLQ_HEADER_FAILED_AT_MS, failed_at_ms.to_string());
    ProducerRecord {
        topic: topic.to_string(),
        partition: None,
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
        timestamp: Some(record.timestamp),
    }
}

/// A dead letter read back from a dead-letter topic: where it failed, why, and the original
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// The dead letter's partition.
    pub dlq_partition: i32,
    /// The dead letter's offset.
    pub dlq_offset: i64,
    /// The last attempt's error (`dlq.error`; empty if absent).
    pub error: String,
    /// The source topic (`dlq.source.topic`).
    pub source_topic: String,
    /// The source partition (`dlq.source.partition`).
    pub source_partition: i32,
    /// The source offset (`dlq.source.offset`).
    pub source_offset: i64,
    /// Attempts made (`dlq.attempts`; 0 if absent).
    pub attempts: u32,
    /// When the last attempt failed, ms since the Unix epoch (`dlq.failed.at.ms`).
    pub failed_at_ms: Option<i64>,
    /// The original record's timestamp.
    pub timestamp: i64,
    /// The original key.
    pub key: Option<Bytes>,
    /// The original value.
    pub value: Option<Bytes>,
    /// The original headers (those not starting with `dlq.`), in order.
    pub headers: Vec<RecordHeader>,
}

impl DeadLetter {
    /// Parses a record of a dead-letter topic; `None` unless it has the `dlq.source.topic`,
    /// `dlq.source.partition` and `dlq.source.offset` headers with valid values.
    pub fn from_record(record: &ConsumerRecord) -> Option<DeadLetter> {
        // The last value of a header wins.
        let header = |key: &str| -> Option<String> {
            record
                .headers
                .iter()
                .rev()
                .find(|h| h.key == key)
                .and_then(|h| h.value.as_ref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        Some(DeadLetter {
            dlq_topic: record.topic.clone(),
            dlq_partition: record.partition,
            dlq_offset: record.offset,
            error: header(DLQ_HEADER_ERROR).unwrap_or_default(),
            source_topic: header(DLQ_HEADER_SOURCE_TOPIC).filter(|t| !t.is_empty())?,
            source_partition: header(DLQ_HEADER_SOURCE_PARTITION)?.parse().ok()?,
            source_offset: header(DLQ_HEADER_SOURCE_OFFSET)?.parse().ok()?,
            attempts: header(DLQ_HEADER_ATTEMPTS)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0),
            failed_at_ms: header(DLQ_HEADER_FAILED_AT_MS).and_then(|t| t.parse().ok()),
            timestamp: record.timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: original_headers(record),
        })
    }

    /// The record that re-injects this dead letter into `to` (its source topic if `None`):
    /// the original key, value and headers plus `dlq.replayed.from =
    /// <dlq topic>/<partition>/<offset>`, partitioned by key, timestamped now.
    pub fn replay_record(&self, to: Option<&str>) -> ProducerRecord {
        replay_record(
            &self.dlq_topic,
            self.dlq_partition,
            self.dlq_offset,
            to.unwrap_or(&self.source_topic),
            self.key.clone(),
            self.value.clone(),
            self.headers.clone(),
        )
    }
}

/// A record's headers without those starting with `dlq.`.
pub fn original_headers(record: &ConsumerRecord) -> Vec<RecordHeader> {
    record
        .headers
        .iter()
        .filter(|h| !h.key.starts_with(DLQ_HEADER_PREFIX))
        .cloned()
        .collect()
}

fn replay_record(
    dlq_topic: &str,
    dlq_partition: i32,
    dlq_offset: i64,
    to: &str,
    key: Option<Bytes>,
    value: Option<Bytes>,
    mut headers: Vec<RecordHeader>,
) -> ProducerRecord {
    headers.push(RecordHeader {
        key: DLQ_HEADER_REPLAYED_FROM.to_string(),
        value: Some(Bytes::from(format!(
            "{dlq_topic}/{dlq_partition}/{dlq_offset}"
        ))),
    });
    ProducerRecord {
        topic: to.to_string(),
        partition: None,
        key,
        value,
        headers,
        timestamp: None,
    }
}

/// The record that re-injects any record of a dead-letter topic into `to`, whether or not it
/// carries the `dlq.source.*` headers: its key, value and non-`dlq.` headers plus
/// `dlq.replayed.from`.
pub fn replay_record_to(record: &ConsumerRecord, to: &str) -> ProducerRecord {
    replay_record(
        &record.topic,
        record.partition,
        record.offset,
        to,
        record.key.clone(),
        record.value.clone(),
        original_headers(record),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use super::*;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_123,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"poison")),
            headers: vec![
                RecordHeader {
                    key: "trace".into(),
                    value: Some(Bytes::from_static(b"abc")),
                },
                RecordHeader {
                    key: "dlq.error".into(),
                    value: Some(Bytes::from_static(b"an older failure")),
                },
            ],
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = DeadLetterPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            multiplier: 3.0,
            ..DeadLetterPolicy::default()
        };
        let waits: Vec<u128> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 300, 900, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(1000));
        let flat = DeadLetterPolicy {
            multiplier: 1.0,
            ..DeadLetterPolicy::default()
        };
        assert_eq!(flat.backoff(7), Duration::from_millis(100));
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(DeadLetterPolicy::default().validate().is_ok());
        for bad in [
            DeadLetterPolicy {
                max_attempts: 0,
                ..DeadLetterPolicy::default()
            },
            DeadLetterPolicy {
                multiplier: 0.5,
                ..DeadLetterPolicy::default()
            },
            DeadLetterPolicy {
                multiplier: f64::NAN,
                ..DeadLetterPolicy::default()
            },
            DeadLetterPolicy {
                initial_backoff: Duration::from_secs(10),
                ..DeadLetterPolicy::default()
            },
            DeadLetterPolicy {
                dlq_topic: Some(String::new()),
                ..DeadLetterPolicy::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(
            DeadLetterPolicy {
                dlq_topic: Some("errors".into()),
                ..DeadLetterPolicy::default()
            }
            .dlq_topic("orders"),
            "errors"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn retry_stops_at_first_success_and_waits_between_attempts() {
        let policy = DeadLetterPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            dlq_topic: None,
        };
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let r = record();
        let result = retry(&policy, &r, |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n < 3 {
                    Err(format!("fail {n}"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // 20 + 40 ms of back-off.
        assert!(started.elapsed() >= Duration::from_millis(60));

        let calls = AtomicU32::new(0);
        let result = retry(&policy, &r, |rec| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Err::<(), _>(format!("attempt {n} on {}", rec.offset)) }
        })
        .await;
        assert_eq!(result, Err(("attempt 4 on 41".to_string(), 4)));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn dead_letters_round_trip_through_their_headers() {
        let r = record();
        let long_error = "é".repeat(DLQ_ERROR_BYTES_MAX);
        let out = dead_letter_record("orders.dlq", &r, &long_error, 3, 1_700_000_999_000);
        assert_eq!(out.topic, "orders.dlq");
        assert_eq!(out.key, r.key);
        assert_eq!(out.value, r.value);
        assert_eq!(out.timestamp, Some(r.timestamp));
        let keys: Vec<&str> = out.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "trace",
                DLQ_HEADER_ERROR,
                DLQ_HEADER_SOURCE_TOPIC,
                DLQ_HEADER_SOURCE_PARTITION,
                DLQ_HEADER_SOURCE_OFFSET,
                DLQ_HEADER_ATTEMPTS,
                DLQ_HEADER_FAILED_AT_MS,
            ]
        );
        // As read back from the dead-letter topic.
        let read = ConsumerRecord {
            topic: out.topic.clone(),
            partition: 2,
            offset: 7,
            timestamp: r.timestamp,
            key: out.key.clone(),
            value: out.value.clone(),
            headers: out.headers.clone(),
        };
        let letter = DeadLetter::from_record(&read).expect("a dead letter");
        assert!(letter.error.len() <= DLQ_ERROR_BYTES_MAX);
        assert!(letter.error.len() > DLQ_ERROR_BYTES_MAX - 2);
        assert!(long_error.starts_with(&letter.error));
        assert_eq!(
            (
                letter.source_topic.as_str(),
                letter.source_partition,
                letter.source_offset
            ),
            ("orders", 2, 41)
        );
        assert_eq!(letter.attempts, 3);
        assert_eq!(letter.failed_at_ms, Some(1_700_000_999_000));
        assert_eq!(letter.headers.len(), 1);
        assert_eq!(letter.headers[0].key, "trace");

        let replay = letter.replay_record(None);
        assert_eq!(replay.topic, "orders");
        assert_eq!(replay.partition, None);
        assert_eq!(replay.value, r.value);
        let keys: Vec<&str> = replay.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, vec!["trace", DLQ_HEADER_REPLAYED_FROM]);
        assert_eq!(
            replay.headers[1].value.as_deref(),
            Some(&b"orders.dlq/2/7"[..])
        );
        assert_eq!(letter.replay_record(Some("fixed")).topic, "fixed");

        // Not a dead letter: no source headers.
        assert_eq!(DeadLetter::from_record(&r), None);
        let replay = replay_record_to(&r, "other");
        let keys: Vec<&str> = replay.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, vec!["trace", DLQ_HEADER_REPLAYED_FROM]);
    }
}
