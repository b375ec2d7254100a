//! The Quiver client SDK, on tokio: [`Admin`], [`Producer`] and [`Consumer`] over one shared
//! [`Client`] (connections and metadata). It depends on nothing of the engine and on no
//! glommio (ARCHITECTURE §5-§7).
//!
//! - **Shard-aware routing.** Metadata names, per partition, the leader's host and the UDP port
//!   of the shard that owns it; produce, fetch and list-offsets for a partition go straight to
//!   that port, so the broker never forwards them between cores. Admin requests go to any
//!   broker.
//! - **Connections.** One QUIC connection per broker shard, opened lazily, greeted with
//!   ApiVersions (an api the broker lacks is a clear [`ClientError::UnsupportedApi`]), re-opened
//!   after failure with back-off; one bidirectional stream per request; every request under a
//!   time limit.
//! - **Metadata** is cached per topic and refreshed when older than `metadata_max_age`, after a
//!   routing error (`NotLeaderOrFollower`, `UnknownTopicOrPartition`, ...) or a lost connection.
//! - **Producer** (Kafka semantics): murmur2 key partitioning, sticky partitioning without a
//!   key, per-partition batches (RecordBatch v2, compressed when sealed) sent when full or after
//!   `linger`, one request per shard carrying batches of many partitions, retries with
//!   exponential back-off until `delivery_timeout`, and bounded memory (`send` waits when
//!   `buffer_memory` is used up). Records of one partition are appended in `send` order: a
//!   partition has one request in flight at a time (carrying several batches if queued), and
//!   a retried batch goes back to the front of its queue.
//! - **Consumer**: manual assignment, seek, long-poll fetches per owning shard, client-side
//!   decoding and decompression, `auto_offset_reset`.
//!
//! Every limit is a config field with its unit in its doc; nothing grows without bound: the
//! producer's queues by `buffer_memory`, in-flight requests by `max_in_flight_per_connection`
//! and QUIC's stream limit, a consumer's records by the fetch byte limits.
//!
//! ```no_run
//! # async fn demo() -> Result<(), quiver_transport::client::ClientError> {
//! use std::time::Duration;
//! use quiver_transport::client::*;
//!
//! let config = ClientConfig::new("127.0.0.1:9190", ClientConfig::trust_from_env_or_default()?);
//! let admin = Admin::connect(config.clone()).await?;
//! admin.create_topic(NewTopic::new("events", 3)).await?;
//!
//! let producer = Producer::connect(config.clone(), ProducerConfig::default()).await?;
//! let delivery = producer.send(ProducerRecord::new("events", "hello").with_key("k")).await?;
//! println!("written at offset {}", delivery.await?.offset);
//! producer.close().await?;
//!
//! let mut consumer = Consumer::connect(config, ConsumerConfig::default()).await?;
//! consumer.assign(vec![TopicPartition::new("events", 0)]);
//! consumer.seek_to_beginning(&[TopicPartition::new("events", 0)]).await?;
//! for record in consumer.poll(Duration::from_secs(1)).await? {
//!     println!("{}@{}: {:?}", record.partition, record.offset, record.value);
//! }
//! # Ok(()) }
//! ```

mod accumulator;
mod admin;
mod config;
mod consumer;
mod dlq;
mod error;
mod group_admin;
mod group_consumer;
mod net;
mod partitioner;
mod producer;

use std::fmt;

pub use admin::{Admin, NewTopic};
pub use config::{BrokerAddr, ClientConfig, DEFAULT_CA_PATH, TLS_CA_ENV};
pub use consumer::{decode_fetched, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset};
pub use dlq::{
    dlq_topic_for, original_headers, replay_record_to, DeadLetter, DeadLetterPolicy,
    DeadLetterQueue, Outcome, DLQ_ERROR_BYTES_MAX, DLQ_HEADER_ATTEMPTS, DLQ_HEADER_ERROR,
    DLQ_HEADER_FAILED_AT_MS, DLQ_HEADER_PREFIX, DLQ_HEADER_REPLAYED_FROM, DLQ_HEADER_SOURCE_OFFSET,
    DLQ_HEADER_SOURCE_PARTITION, DLQ_HEADER_SOURCE_TOPIC, DLQ_TOPIC_SUFFIX,
};
pub use error::ClientError;
pub use group_admin::{GroupOffset, PartitionLag};
pub use group_consumer::{GroupConfig, GroupConsumer, RebalanceListener};
pub use net::{Client, ListedOffset, CLIENT_SOFTWARE_NAME};
pub use partitioner::{murmur2, partition_for_key, to_positive};
pub use producer::{
    DeliveryFuture, Producer, ProducerConfig, ProducerIdentity, ProducerRecord, RecordMetadata,
};

/// A topic and one of its partitions.
///
/// ```
/// use quiver_transport::client::TopicPartition;
/// let tp = TopicPartition::new("orders", 2);
/// assert_eq!(tp.to_string(), "orders-2");
/// assert_eq!(tp, TopicPartition::from(("orders", 2)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl From<(&str, i32)> for TopicPartition {
    fn from((topic, partition): (&str, i32)) -> Self {
        TopicPartition::new(topic, partition)
    }
}

impl From<(String, i32)> for TopicPartition {
    fn from((topic, partition): (String, i32)) -> Self {
        TopicPartition::new(topic, partition)
    }
}
