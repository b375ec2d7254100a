//! Wire error codes: [`ErrorCode`], an `i16` on the wire, with stable numbers.
//!
//! Invariants:
//! - A number, once released, keeps its meaning forever and is never reused. A gap in the table
//!   is a retired code, not free space; new codes take the next number after the highest ever
//!   assigned. Negative numbers are never assigned.
//! - Every code states whether it is retriable: whether the same request may succeed later
//!   without change (possibly after refreshing metadata or backing off).
//! - A number this build does not know (sent by a newer peer) decodes to
//!   [`ErrorCode::Unrecognized`] holding that number, re-encodes to the same number, and is treated
//!   as not retriable.
//!
//! The numbers are Quiver's own (dense from 0); each code names its closest Kafka error so that a
//! Kafka-protocol adapter can translate in one table.
//!
//! | code | name | retriable | Kafka |
//! |---:|---|---|---|
//! | 0 | None | - | NONE (0) |
//! | 1 | Unknown | no | UNKNOWN_SERVER_ERROR (-1) |
//! | 2 | CorruptMessage | no | CORRUPT_MESSAGE (2) |
//! | 3 | UnknownTopicOrPartition | yes | UNKNOWN_TOPIC_OR_PARTITION (3) |
//! | 4 | InvalidFetchSize | no | INVALID_FETCH_SIZE (4) |
//! | 5 | MessageTooLarge | no | MESSAGE_TOO_LARGE (10) |
//! | 6 | NotLeaderOrFollower | yes | NOT_LEADER_OR_FOLLOWER (6) |
//! | 7 | RequestTimedOut | yes | REQUEST_TIMED_OUT (7) |
//! | 8 | TopicAlreadyExists | no | TOPIC_ALREADY_EXISTS (36) |
//! | 9 | InvalidPartitions | no | INVALID_PARTITIONS (37) |
//! | 10 | InvalidReplicationFactor | no | INVALID_REPLICATION_FACTOR (38) |
//! | 11 | InvalidConfig | no | INVALID_CONFIG (40) |
//! | 12 | InvalidRequest | no | INVALID_REQUEST (42) |
//! | 13 | UnsupportedVersion | no | UNSUPPORTED_VERSION (35) |
//! | 14 | OffsetOutOfRange | no | OFFSET_OUT_OF_RANGE (1) |
//! | 15 | StorageError | yes | KAFKA_STORAGE_ERROR (56) |
//! | 16 | StorageFull | yes | (none; Kafka reports KAFKA_STORAGE_ERROR) |
//! | 17 | NotEnoughReplicas | yes | NOT_ENOUGH_REPLICAS (19) |
//! | 18 | NotEnoughReplicasAfterAppend | yes | NOT_ENOUGH_REPLICAS_AFTER_APPEND (20) |
//! | 19 | PolicyViolation | no | POLICY_VIOLATION (44) |
//! | 20 | ThrottlingQuotaExceeded | yes | THROTTLING_QUOTA_EXCEEDED (89) |
//! | 21 | TooManyInFlight | yes | (none) |
//! | 22 | InvalidTopic | no | INVALID_TOPIC_EXCEPTION (17) |
//! | 23 | InvalidRequiredAcks | no | INVALID_REQUIRED_ACKS (21) |
//! | 24 | LeaderNotAvailable | yes | LEADER_NOT_AVAILABLE (5) |
//! | 25 | OutOfOrderSequenceNumber | no | OUT_OF_ORDER_SEQUENCE_NUMBER (45) |
//! | 26 | DuplicateSequenceNumber | no | DUPLICATE_SEQUENCE_NUMBER (46) |
//! | 27 | InvalidProducerEpoch | no | INVALID_PRODUCER_EPOCH (47) |
//! | 28 | UnknownProducerId | no | UNKNOWN_PRODUCER_ID (59) |
//! | 29 | FencedLeaderEpoch | yes | FENCED_LEADER_EPOCH (74) |
//! | 30 | UnknownLeaderEpoch | yes | UNKNOWN_LEADER_EPOCH (75) |
//! | 31 | InvalidTimestamp | no | INVALID_TIMESTAMP (32) |
//! | 32 | UnsupportedCompressionType | no | UNSUPPORTED_COMPRESSION_TYPE (76) |
//! | 33 | CoordinatorNotAvailable | yes | COORDINATOR_NOT_AVAILABLE (15) |
//! | 34 | NotCoordinator | yes | NOT_COORDINATOR (16) |
//! | 35 | CoordinatorLoadInProgress | yes | COORDINATOR_LOAD_IN_PROGRESS (14) |
//! | 36 | InvalidGroupId | no | INVALID_GROUP_ID (24) |
//! | 37 | UnknownMemberId | no | UNKNOWN_MEMBER_ID (25) |
//! | 38 | FencedMemberEpoch | no | FENCED_MEMBER_EPOCH (110) |
//! | 39 | StaleMemberEpoch | no | STALE_MEMBER_EPOCH (113) |
//! | 40 | InvalidSessionTimeout | no | INVALID_SESSION_TIMEOUT (26) |
//! | 41 | UnsupportedAssignor | no | UNSUPPORTED_ASSIGNOR (112) |
//! | 42 | InconsistentAssignor | no | INCONSISTENT_GROUP_PROTOCOL (23) |
//! | 43 | GroupMaxSizeReached | no | GROUP_MAX_SIZE_REACHED (81) |
//! | 44 | NonEmptyGroup | no | NON_EMPTY_GROUP (68) |
//! | 45 | GroupIdNotFound | no | GROUP_ID_NOT_FOUND (69) |
//! | 46 | OffsetMetadataTooLarge | no | OFFSET_METADATA_TOO_LARGE (12) |
//! | 47 | NotController | yes | NOT_CONTROLLER (41) |
//! | 48 | StaleBrokerEpoch | no | STALE_BROKER_EPOCH (77) |
//! | 49 | InvalidUpdateVersion | no | INVALID_UPDATE_VERSION (95) |
//! | 50 | IneligibleReplica | no | INELIGIBLE_REPLICA (107) |
//! | 51 | DuplicateBrokerRegistration | no | DUPLICATE_BROKER_REGISTRATION (101) |
//! | 52 | BrokerIdNotRegistered | no | BROKER_ID_NOT_REGISTERED (102) |
//!
//! Codes for transactions arrive with those APIs, numbered after the highest assigned (52).

use core::fmt;
use core::hash::{Hash, Hasher};

macro_rules! error_codes {
    ($(
        $(#[$attr:meta])*
        $name:ident = $code:literal, retriable: $retriable:literal;
    )*) => {
        /// A wire error code (`i16`). Equality and hashing go by the number, so
        /// `Unrecognized(0)` equals `None`; [`ErrorCode::from_code`] never builds such a value.
        #[derive(Clone, Copy, Default)]
        pub enum ErrorCode {
            $( $(#[$attr])* $name, )*
            /// A number this build does not know (from a newer peer), kept as received.
            Unrecognized(i16),
        }

        impl ErrorCode {
            /// Every code this build knows, in number order.
            pub const KNOWN: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The number on the wire.
            pub const fn code(self) -> i16 {
                match self {
                    $(ErrorCode::$name => $code,)*
                    ErrorCode::Unrecognized(code) => code,
                }
            }

            /// The code for a wire number; unknown numbers become [`ErrorCode::Unrecognized`].
            pub const fn from_code(code: i16) -> Self {
                match code {
                    $($code => ErrorCode::$name,)*
                    other => ErrorCode::Unrecognized(other),
                }
            }

            /// Whether the same request may succeed later without change (after a metadata
            /// refresh or a back-off). [`ErrorCode::None`] and unrecognized codes say no.
            pub const fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$name => $retriable,)*
                    ErrorCode::Unrecognized(_) => false,
                }
            }

            /// The code's name, as in this module's table (`"Unrecognized"` for unknown ones).
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => stringify!($name),)*
                    ErrorCode::Unrecognized(_) => "Unrecognized",
                }
            }
        }
    };
}

error_codes! {
    /// No error.
    #[default]
    None = 0, retriable: false;
    /// An unexpected server-side failure (a bug or an unmapped internal error). Not retriable:
    /// nothing says a retry would meet a different fate.
    Unknown = 1, retriable: false;
    /// A record batch failed validation (bad CRC, bad length, bad magic). QUIC authenticates
    /// every packet, so corruption is the producer's and resending the same batch fails again.
    CorruptMessage = 2, retriable: false;
    /// The topic or partition does not exist here. Retriable: metadata may be stale or the
    /// topic still being created; refresh metadata first.
    UnknownTopicOrPartition = 3, retriable: true;
    /// A fetch size (max bytes, min bytes or partition max bytes) is negative or unusable.
    InvalidFetchSize = 4, retriable: false;
    /// A record batch is larger than the topic's `max.message.bytes` or the broker's limit.
    MessageTooLarge = 5, retriable: false;
    /// This broker does not lead (or follow) the partition. Retriable after a metadata refresh.
    NotLeaderOrFollower = 6, retriable: true;
    /// The request did not complete within its `timeout_ms` (e.g. acks=all waiting on replicas).
    /// The write may or may not have happened; idempotent producers retry safely.
    RequestTimedOut = 7, retriable: true;
    /// CreateTopics named a topic that exists.
    TopicAlreadyExists = 8, retriable: false;
    /// A partition count is zero, negative or otherwise not allowed.
    InvalidPartitions = 9, retriable: false;
    /// A replication factor is zero, negative or larger than the number of brokers.
    InvalidReplicationFactor = 10, retriable: false;
    /// A topic config key is unknown or its value is invalid.
    InvalidConfig = 11, retriable: false;
    /// The request is malformed or inconsistent (failed to decode, contradictory fields).
    InvalidRequest = 12, retriable: false;
    /// The api key or version is not supported by this broker; renegotiate with ApiVersions.
    UnsupportedVersion = 13, retriable: false;
    /// The fetch offset is outside `[log start, log end]`; the consumer resets per its
    /// `auto_offset_reset` policy instead of retrying.
    OffsetOutOfRange = 14, retriable: false;
    /// The partition's storage failed (IO error, log offline). Retriable: leadership may move
    /// to a healthy replica.
    StorageError = 15, retriable: true;
    /// The partition's disk is full. Retriable after back-off: retention or an operator may
    /// free space; nothing was appended.
    StorageFull = 16, retriable: true;
    /// Fewer in-sync replicas than `min.insync.replicas`; the write was rejected before append.
    NotEnoughReplicas = 17, retriable: true;
    /// The batch was appended but the in-sync set shrank below `min.insync.replicas` before it
    /// was acknowledged. Retriable (idempotent producers deduplicate the resend).
    NotEnoughReplicasAfterAppend = 18, retriable: true;
    /// The request is valid but a broker policy forbids it (e.g. deleting an internal topic).
    PolicyViolation = 19, retriable: false;
    /// A quota was exceeded; the response's `throttle_time_ms` says how long to back off.
    ThrottlingQuotaExceeded = 20, retriable: true;
    /// The connection has more requests in flight than the broker allows
    /// (`in_flight_requests_max`). Retriable once earlier requests complete.
    TooManyInFlight = 21, retriable: true;
    /// The topic name is invalid (empty, too long, bad characters) or names an internal topic
    /// where that is not allowed.
    InvalidTopic = 22, retriable: false;
    /// Produce `acks` is not 0, 1 or -1.
    InvalidRequiredAcks = 23, retriable: false;
    /// The partition has no leader right now (an election is running). Retriable after a
    /// metadata refresh.
    LeaderNotAvailable = 24, retriable: true;
    /// An idempotent producer's sequence number skipped ahead: a batch was lost. Not retriable:
    /// the producer must bump its epoch and reset sequences.
    OutOfOrderSequenceNumber = 25, retriable: false;
    /// The batch duplicates one already appended (an idempotent resend). Not an error for the
    /// producer: the earlier append stands; clients treat it as success.
    DuplicateSequenceNumber = 26, retriable: false;
    /// The producer epoch is older than the broker's: this producer was fenced by a newer one.
    InvalidProducerEpoch = 27, retriable: false;
    /// The broker has no state for this producer id (expired or never registered); the
    /// producer must re-initialise its id.
    UnknownProducerId = 28, retriable: false;
    /// The request's leader epoch is older than the broker's. Retriable after a metadata
    /// refresh.
    FencedLeaderEpoch = 29, retriable: true;
    /// The request's leader epoch is newer than the broker's (the broker lags). Retriable.
    UnknownLeaderEpoch = 30, retriable: true;
    /// A record timestamp is outside the topic's allowed range.
    InvalidTimestamp = 31, retriable: false;
    /// A batch uses a compression codec this broker or topic does not accept.
    UnsupportedCompressionType = 32, retriable: false;
    /// The group's coordinator cannot serve right now (its shard is stopping, or its
    /// `__consumer_offsets` partition is offline). Retriable after back-off.
    CoordinatorNotAvailable = 33, retriable: true;
    /// The request reached a broker that does not coordinate this group. Retriable after
    /// FindCoordinator.
    NotCoordinator = 34, retriable: true;
    /// The coordinator is still loading the group's offsets. Retriable after back-off.
    CoordinatorLoadInProgress = 35, retriable: true;
    /// The group id is empty or too long.
    InvalidGroupId = 36, retriable: false;
    /// The member is not in the group (it left, or its session timed out): rejoin with epoch 0.
    UnknownMemberId = 37, retriable: false;
    /// The member's epoch is not one the coordinator accepts: it must give up its partitions
    /// and rejoin with epoch 0.
    FencedMemberEpoch = 38, retriable: false;
    /// An offset commit carried an epoch other than the member's current one.
    StaleMemberEpoch = 39, retriable: false;
    /// The session timeout is outside the broker's allowed range.
    InvalidSessionTimeout = 40, retriable: false;
    /// The coordinator does not know the named assignor.
    UnsupportedAssignor = 41, retriable: false;
    /// The member names a different assignor than the group's other members use.
    InconsistentAssignor = 42, retriable: false;
    /// The group already has the most members the broker allows.
    GroupMaxSizeReached = 43, retriable: false;
    /// The operation needs a group without live members (delete, offset reset).
    NonEmptyGroup = 44, retriable: false;
    /// The group does not exist.
    GroupIdNotFound = 45, retriable: false;
    /// The metadata attached to a committed offset is longer than the broker allows.
    OffsetMetadataTooLarge = 46, retriable: false;
    /// The request needs the active controller and this broker is not it (or no longer is).
    /// Retriable after finding the active controller.
    NotController = 47, retriable: true;
    /// The broker epoch sent is not the one of the broker's current registration: the sender
    /// is an old registration or process. Not retriable: the broker must register again.
    StaleBrokerEpoch = 48, retriable: false;
    /// An AlterPartition based on an older partition epoch than the partition's (its leader or
    /// ISR changed since). Not retriable as is: the leader must learn the partition's new state
    /// first.
    InvalidUpdateVersion = 49, retriable: false;
    /// A proposed ISR names a broker that is fenced or not registered (KIP-841).
    IneligibleReplica = 50, retriable: false;
    /// A broker id is registered by another incarnation whose session is live (two processes
    /// with one id, or a restart quicker than the session timeout without a controlled
    /// shutdown). Not retriable as is: the other process must stop, or its session expire.
    DuplicateBrokerRegistration = 51, retriable: false;
    /// The broker id has no registration: the broker must register before it heartbeats.
    BrokerIdNotRegistered = 52, retriable: false;
}

impl ErrorCode {
    /// True for [`ErrorCode::None`].
    pub const fn is_ok(self) -> bool {
        self.code() == 0
    }
}

impl PartialEq for ErrorCode {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for ErrorCode {}

impl Hash for ErrorCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.code().hash(state);
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.code())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode::from_code(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.code()
    }
}
