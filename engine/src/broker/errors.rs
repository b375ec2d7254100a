//! The one place internal errors become wire [`ErrorCode`]s, each mapping with its reason.

use quiver_transport::protocol::{ErrorCode, Response};

use crate::log::LogError;
use crate::partition::{is_storage_full, PartitionError};

/// A wire error with a human-readable message.
pub type WireError = (ErrorCode, String);

/// Maps a partition failure to the error a client gets.
pub fn partition_error(error: &PartitionError) -> WireError {
    let code = match error {
        // Closed under the request: the topic was deleted or the shard is stopping. Retriable:
        // the client refreshes metadata and finds out which.
        PartitionError::Closed(_) | PartitionError::Cancelled => ErrorCode::NotLeaderOrFollower,
        // Offline after a storage failure: out of space is worth telling apart (an operator
        // frees space; retrying later may work).
        PartitionError::Failed { full: true, .. } => ErrorCode::StorageFull,
        PartitionError::Failed { full: false, .. } => ErrorCode::StorageError,
        PartitionError::Log(e) => return log_error(e),
    };
    (code, error.to_string())
}

/// Maps a log failure to the error a client gets.
pub fn log_error(error: &LogError) -> WireError {
    let code = match error {
        // The producer's bytes are not a valid batch.
        LogError::InvalidBatch(_) => ErrorCode::CorruptMessage,
        // Larger than max.message.bytes.
        LogError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        // Stored bytes failed their check: a device or file-system fault, not the client's.
        LogError::Corrupt { .. } => ErrorCode::StorageError,
        LogError::Config(_) => ErrorCode::InvalidConfig,
        // Idempotent producers: sequence gaps, fenced epochs, forgotten duplicates.
        LogError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        LogError::DuplicateSequence { .. } => ErrorCode::DuplicateSequenceNumber,
        LogError::InvalidSequence { .. } => ErrorCode::CorruptMessage,
        // A deposed leader's append.
        LogError::StaleLeaderEpoch(_) => ErrorCode::FencedLeaderEpoch,
        // A follower's replicated batch that does not continue its log.
        LogError::NotContiguous { .. } => ErrorCode::OffsetOutOfRange,
        LogError::Io(e) if is_storage_full(e) => ErrorCode::StorageFull,
        LogError::Io(_) => ErrorCode::StorageError,
    };
    (code, error.to_string())
}

/// Whether a response reports any error (request-level or for one topic or partition); for
/// the error counters.
pub fn response_has_error(response: &Response) -> bool {
    match response {
        Response::Rejected(_) => true,
        Response::Produce(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok())),
        Response::Fetch(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok())),
        Response::ListOffsets(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok())),
        Response::CreateTopics(r) => r.topics.iter().any(|t| !t.error_code.is_ok()),
        Response::DeleteTopics(r) => r.topics.iter().any(|t| !t.error_code.is_ok()),
        Response::AlterTopicConfigs(r) => r.topics.iter().any(|t| !t.error_code.is_ok()),
        Response::DescribeTopics(r) => r.topics.iter().any(|t| !t.error_code.is_ok()),
        Response::Metadata(r) => r.topics.iter().any(|t| !t.error_code.is_ok()),
        Response::FindCoordinator(r) => !r.error_code.is_ok(),
        Response::ConsumerGroupHeartbeat(r) => !r.error_code.is_ok(),
        Response::ListGroups(r) => !r.error_code.is_ok(),
        Response::DescribeGroups(r) => r.groups.iter().any(|g| !g.error_code.is_ok()),
        Response::DeleteGroups(r) => r.results.iter().any(|g| !g.error_code.is_ok()),
        Response::OffsetCommit(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok())),
        Response::OffsetFetch(r) => {
            !r.error_code.is_ok()
                || r.topics
                    .iter()
                    .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok()))
        }
        Response::InitProducerId(r) => !r.error_code.is_ok(),
        Response::OffsetForLeaderEpoch(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok())),
        Response::BrokerRegistration(r) => !r.error_code.is_ok(),
        Response::BrokerHeartbeat(r) => !r.error_code.is_ok(),
        Response::RaftMessage(r) => !r.error_code.is_ok(),
        Response::DescribeCluster(r) => !r.error_code.is_ok(),
        Response::AlterPartition(r) => {
            !r.error_code.is_ok()
                || r.topics
                    .iter()
                    .any(|t| t.partitions.iter().any(|p| !p.error_code.is_ok()))
        }
        Response::ApiVersions(_) | Response::ListTopics(_) => false,
    }
}
