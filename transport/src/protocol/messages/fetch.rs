//! Fetch (key 3): read record batches from partitions, long-polling until `min_bytes` are
//! available or `max_wait_ms` passed. Consumers send `replica_id = -1`; the field is there so that
//! follower replicas can reuse this path later (ARCHITECTURE §8).
//!
//! The records of each partition come back as [`Records`]: whole batches as stored, which the
//! broker encodes as separate `Bytes` chunks (see [`Encoder::payload`]) so batch-cache and
//! segment slices go to QUIC without a copy.

use super::super::codec::{wire_struct, DecodeError, Encoder, Reader, Wire};
use super::super::error_code::ErrorCode;
use super::super::records::Records;

/// Which records a fetch may see; `i8` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// `0`: everything up to the high watermark, including open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// `1`: only up to the last stable offset; aborted transactions are listed for filtering.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value.
    pub const fn code(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }

    /// The level for a wire value, or `None` if it is not 0 or 1.
    pub const fn from_code(code: i8) -> Option<IsolationLevel> {
        match code {
            0 => Some(IsolationLevel::ReadUncommitted),
            1 => Some(IsolationLevel::ReadCommitted),
            _ => None,
        }
    }
}

impl Wire for IsolationLevel {
    const WIRE_BYTES_MIN: usize = 1;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        let code = r.i8(what)?;
        IsolationLevel::from_code(code).ok_or(DecodeError::InvalidValue {
            what,
            value: code.into(),
        })
    }
    fn encode(&self, w: &mut Encoder, _version: u16, _what: &'static str) {
        w.i8(self.code());
    }
}

wire_struct! {
    /// Fetch request, version 0.
    pub struct FetchRequest {
        /// Broker id of a follower replica, or -1 for a consumer.
        pub replica_id: i32,
        /// Longest the broker may hold the request waiting for `min_bytes`, in milliseconds.
        pub max_wait_ms: i32,
        /// Answer as soon as this many bytes are available.
        pub min_bytes: i32,
        /// Most bytes to return over all partitions (at least one batch is returned anyway so a
        /// large batch cannot stall a consumer).
        pub max_bytes: i32,
        /// Which records are visible.
        pub isolation_level: IsolationLevel,
        /// Partitions per topic.
        pub topics: Vec<FetchTopic>,
    }
}

wire_struct! {
    /// Partitions of one topic to fetch.
    pub struct FetchTopic {
        /// Topic name.
        pub name: String,
        /// The partitions.
        pub partitions: Vec<FetchPartition>,
    }
}

wire_struct! {
    /// Where to read one partition.
    pub struct FetchPartition {
        /// Partition number.
        pub partition: i32,
        /// The leader epoch the client knows, or -1 to skip the fencing check.
        pub current_leader_epoch: i32,
        /// First offset to return.
        pub fetch_offset: i64,
        /// The fetcher's log start offset (followers); -1 for consumers.
        pub log_start_offset: i64,
        /// Most bytes to return for this partition.
        pub partition_max_bytes: i32,
    }
}

wire_struct! {
    /// Fetch response, version 0.
    pub struct FetchResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// Results per topic.
        pub topics: Vec<FetchTopicResponse>,
    }
}

wire_struct! {
    /// Results for one topic.
    pub struct FetchTopicResponse {
        /// Topic name.
        pub name: String,
        /// Results per partition.
        pub partitions: Vec<FetchPartitionResponse>,
    }
}

wire_struct! {
    /// The records and offsets of one partition.
    pub struct FetchPartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The outcome (e.g. OffsetOutOfRange, NotLeaderOrFollower).
        pub error_code: ErrorCode,
        /// The partition's high watermark.
        pub high_watermark: i64,
        /// The partition's last stable offset (transactions), or -1.
        pub last_stable_offset: i64,
        /// The partition's log start offset.
        pub log_start_offset: i64,
        /// Aborted transactions overlapping the returned records (read-committed only).
        pub aborted_transactions: Vec<AbortedTransaction>,
        /// Whole record batches, as stored; may be empty.
        pub records: Records,
    }
}

wire_struct! {
    /// A transaction aborted within the returned range.
    pub struct AbortedTransaction {
        /// Its producer id.
        pub producer_id: i64,
        /// Offset of its first batch.
        pub first_offset: i64,
    }
}
