//! [`ClientError`]: the one error type of the SDK. Every variant says how it is recovered; the
//! producer and consumer use [`ClientError::is_retriable`] to decide between retrying (after a
//! metadata refresh and a back-off) and failing.

use std::time::Duration;

use crate::protocol::{ApiKey, ErrorCode};

/// Why a client operation failed. `Clone`, so one failed batch can fail every record in it.
///
/// ```
/// use quiver_transport::client::ClientError;
/// use quiver_transport::protocol::ErrorCode;
///
/// let err = ClientError::Broker {
///     code: ErrorCode::TopicAlreadyExists,
///     message: Some("topic orders exists".into()),
///     topic: Some("orders".into()),
///     partition: None,
/// };
/// assert_eq!(err.error_code(), Some(ErrorCode::TopicAlreadyExists));
/// assert!(!err.is_retriable());
/// assert!(err.to_string().contains("topic orders exists"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The configuration is unusable (bad address, missing CA file, TLS setup). Fix the config.
    #[error("configuration: {0}")]
    Config(String),
    /// No connection could be opened to a broker. Retriable: the broker may come back; the
    /// connection layer waits `reconnect_backoff` before trying again.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port` of the broker (shard).
        addr: String,
        /// The cause.
        reason: String,
    },
    /// An open connection or stream failed during a request. Retriable: the connection is
    /// re-opened on next use and metadata is refreshed.
    #[error("connection to {addr} failed: {reason}")]
    Connection {
        /// `host:port` of the broker (shard).
        addr: String,
        /// The cause.
        reason: String,
    },
    /// A request got no answer within its time limit. Retriable (a produce may then be
    /// duplicated, as in Kafka without idempotence).
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The broker does not speak a version of an api this SDK needs. Not retriable: upgrade
    /// the broker or the SDK.
    #[error("broker {broker} does not support {api} (needed by this client)")]
    UnsupportedApi {
        /// The api.
        api: ApiKey,
        /// `host:port` of the broker.
        broker: String,
    },
    /// The broker refused a whole request (response header error code).
    #[error("{api} request rejected by {broker}: {code}")]
    Rejected {
        /// The api of the request.
        api: ApiKey,
        /// The broker's code.
        code: ErrorCode,
        /// `host:port` of the broker.
        broker: String,
    },
    /// The broker answered with an error for one topic or partition, with its explanation.
    /// Retriable exactly when the code is ([`ErrorCode::is_retriable`]).
    #[error("{code}{}{}{}", topic.as_ref().map(|t| format!(" for topic {t}")).unwrap_or_default(), partition.map(|p| format!(" partition {p}")).unwrap_or_default(), message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The wire error code.
        code: ErrorCode,
        /// The broker's message, if it sent one.
        message: Option<String>,
        /// The topic concerned.
        topic: Option<String>,
        /// The partition concerned.
        partition: Option<i32>,
    },
    /// Bytes from the broker could not be decoded, or a response did not match its request.
    /// Not retriable: a bug or version skew.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A record batch from the broker failed validation or decoding.
    #[error("corrupt batch in {topic}-{partition}: {reason}")]
    CorruptBatch {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What is wrong.
        reason: String,
    },
    /// A record is larger than a limit (`max_request_size` or `buffer_memory`); rejected before
    /// anything was sent.
    #[error("record of up to {size_bytes} bytes exceeds {limit} ({limit_bytes} bytes)")]
    RecordTooLarge {
        /// Upper bound of the record's encoded size.
        size_bytes: usize,
        /// The limit's name.
        limit: &'static str,
        /// The limit.
        limit_bytes: usize,
    },
    /// The call's arguments are invalid (e.g. a partition the topic does not have).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The producer or consumer was closed (or dropped) before the operation completed.
    #[error("client closed")]
    Closed,
}

impl ClientError {
    /// The broker's error code, for [`ClientError::Broker`] and [`ClientError::Rejected`].
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Broker { code, .. } | ClientError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the same operation may succeed later unchanged (after a metadata refresh or a
    /// back-off).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Connection { .. }
            | ClientError::Timeout { .. } => true,
            ClientError::Broker { code, .. } | ClientError::Rejected { code, .. } => {
                code.is_retriable()
            }
            _ => false,
        }
    }

    /// Whether recovering needs fresh metadata (the partition moved, the topic is new, or the
    /// connection to its leader was lost).
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Connect { .. } | ClientError::Connection { .. } => true,
            ClientError::Broker { code, .. } | ClientError::Rejected { code, .. } => {
                is_routing_error(*code)
            }
            _ => false,
        }
    }

    /// A topic- or partition-level error from a wire code and message.
    pub(crate) fn broker(
        code: ErrorCode,
        message: Option<String>,
        topic: &str,
        partition: Option<i32>,
    ) -> ClientError {
        ClientError::Broker {
            code,
            message,
            topic: Some(topic.to_string()),
            partition,
        }
    }
}

/// Codes that mean "your metadata is stale": refresh before retrying.
pub(crate) fn is_routing_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
    )
}
