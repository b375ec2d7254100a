//! ListOffsets (key 4): per partition, the earliest offset, the latest offset, or the first
//! offset whose timestamp is at or after a given time.

use super::super::codec::{wire_struct, DecodeError, EncodeError, Encoder, Reader, Wire};
use super::super::error_code::ErrorCode;
use super::fetch::IsolationLevel;

/// What to look up; an `i64` timestamp field on the wire, where `-1` is latest, `-2` earliest and
/// a value `>= 0` a time in milliseconds since the Unix epoch. Other negative values are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetSpec {
    /// `-1`: the log end offset (the offset the next record will get).
    #[default]
    Latest,
    /// `-2`: the log start offset.
    Earliest,
    /// `>= 0`: the first offset whose timestamp is at or after this time, in ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    /// Wire value of [`OffsetSpec::Latest`].
    pub const LATEST_CODE: i64 = -1;
    /// Wire value of [`OffsetSpec::Earliest`].
    pub const EARLIEST_CODE: i64 = -2;

    /// The wire value.
    pub const fn code(self) -> i64 {
        match self {
            OffsetSpec::Latest => Self::LATEST_CODE,
            OffsetSpec::Earliest => Self::EARLIEST_CODE,
            OffsetSpec::Timestamp(timestamp_ms) => timestamp_ms,
        }
    }

    /// The spec for a wire value, or `None` for a negative value other than -1 and -2.
    pub const fn from_code(code: i64) -> Option<OffsetSpec> {
        match code {
            Self::LATEST_CODE => Some(OffsetSpec::Latest),
            Self::EARLIEST_CODE => Some(OffsetSpec::Earliest),
            timestamp_ms if timestamp_ms >= 0 => Some(OffsetSpec::Timestamp(timestamp_ms)),
            _ => None,
        }
    }
}

impl Wire for OffsetSpec {
    const WIRE_BYTES_MIN: usize = 8;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        let code = r.i64(what)?;
        OffsetSpec::from_code(code).ok_or(DecodeError::InvalidValue { what, value: code })
    }
    fn encode(&self, w: &mut Encoder, _version: u16, what: &'static str) {
        if let OffsetSpec::Timestamp(timestamp_ms) = *self {
            if timestamp_ms < 0 {
                w.fail(EncodeError::InvalidValue {
                    what,
                    value: timestamp_ms,
                });
            }
        }
        w.i64(self.code());
    }
}

wire_struct! {
    /// ListOffsets request, version 0.
    pub struct ListOffsetsRequest {
        /// Broker id of a follower replica, or -1 for a consumer.
        pub replica_id: i32,
        /// ReadCommitted caps "latest" at the last stable offset instead of the high watermark.
        pub isolation_level: IsolationLevel,
        /// Partitions per topic.
        pub topics: Vec<ListOffsetsTopic>,
    }
}

wire_struct! {
    /// Partitions of one topic to look up.
    pub struct ListOffsetsTopic {
        /// Topic name.
        pub name: String,
        /// The partitions.
        pub partitions: Vec<ListOffsetsPartition>,
    }
}

wire_struct! {
    /// One lookup.
    pub struct ListOffsetsPartition {
        /// Partition number.
        pub partition: i32,
        /// The leader epoch the client knows, or -1 to skip the fencing check.
        pub current_leader_epoch: i32,
        /// What to look up (the `timestamp` field on the wire).
        pub timestamp: OffsetSpec,
    }
}

wire_struct! {
    /// ListOffsets response, version 0.
    pub struct ListOffsetsResponse {
        /// Back-off requested by the broker, in milliseconds.
        pub throttle_time_ms: i32,
        /// Results per topic.
        pub topics: Vec<ListOffsetsTopicResponse>,
    }
}

wire_struct! {
    /// Results for one topic.
    pub struct ListOffsetsTopicResponse {
        /// Topic name.
        pub name: String,
        /// Results per partition.
        pub partitions: Vec<ListOffsetsPartitionResponse>,
    }
}

wire_struct! {
    /// The result of one lookup.
    pub struct ListOffsetsPartitionResponse {
        /// Partition number.
        pub partition: i32,
        /// The outcome.
        pub error_code: ErrorCode,
        /// Timestamp of the record found, or -1 (always -1 for latest and earliest).
        pub timestamp_ms: i64,
        /// The offset found; for a timestamp with no record at or after it, the log end offset.
        pub offset: i64,
        /// Leader epoch of the record found, or -1.
        pub leader_epoch: i32,
    }
}
