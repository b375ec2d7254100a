//! The stable numbers: api keys and error codes are pinned here, so renumbering, reusing or
//! dropping one fails a test (the wire contract says a released number never changes).

use quiver_transport::protocol::*;

/// (code, name, retriable) for every error code ever released. Append only.
const ERROR_CODES: &[(i16, &str, bool)] = &[
    (0, "None", false),
    (1, "Unknown", false),
    (2, "CorruptMessage", false),
    (3, "UnknownTopicOrPartition", true),
    (4, "InvalidFetchSize", false),
    (5, "MessageTooLarge", false),
    (6, "NotLeaderOrFollower", true),
    (7, "RequestTimedOut", true),
    (8, "TopicAlreadyExists", false),
    (9, "InvalidPartitions", false),
    (10, "InvalidReplicationFactor", false),
    (11, "InvalidConfig", false),
    (12, "InvalidRequest", false),
    (13, "UnsupportedVersion", false),
    (14, "OffsetOutOfRange", false),
    (15, "StorageError", true),
    (16, "StorageFull", true),
    (17, "NotEnoughReplicas", true),
    (18, "NotEnoughReplicasAfterAppend", true),
    (19, "PolicyViolation", false),
    (20, "ThrottlingQuotaExceeded", true),
    (21, "TooManyInFlight", true),
    (22, "InvalidTopic", false),
    (23, "InvalidRequiredAcks", false),
    (24, "LeaderNotAvailable", true),
    (25, "OutOfOrderSequenceNumber", false),
    (26, "DuplicateSequenceNumber", false),
    (27, "InvalidProducerEpoch", false),
    (28, "UnknownProducerId", false),
    (29, "FencedLeaderEpoch", true),
    (30, "UnknownLeaderEpoch", true),
    (31, "InvalidTimestamp", false),
    (32, "UnsupportedCompressionType", false),
    (33, "CoordinatorNotAvailable", true),
    (34, "NotCoordinator", true),
    (35, "CoordinatorLoadInProgress", true),
    (36, "InvalidGroupId", false),
    (37, "UnknownMemberId", false),
    (38, "FencedMemberEpoch", false),
    (39, "StaleMemberEpoch", false),
    (40, "InvalidSessionTimeout", false),
    (41, "UnsupportedAssignor", false),
    (42, "InconsistentAssignor", false),
    (43, "GroupMaxSizeReached", false),
    (44, "NonEmptyGroup", false),
    (45, "GroupIdNotFound", false),
    (46, "OffsetMetadataTooLarge", false),
    (47, "NotController", true),
    (48, "StaleBrokerEpoch", false),
    (49, "InvalidUpdateVersion", false),
    (50, "IneligibleReplica", false),
    (51, "DuplicateBrokerRegistration", false),
    (52, "BrokerIdNotRegistered", false),
];

/// (key, name) for every api ever released. Append only.
const API_KEYS: &[(u16, &str)] = &[
    (0, "ApiVersions"),
    (1, "Metadata"),
    (2, "Produce"),
    (3, "Fetch"),
    (4, "ListOffsets"),
    (10, "CreateTopics"),
    (11, "DeleteTopics"),
    (12, "DescribeTopics"),
    (13, "ListTopics"),
    (14, "AlterTopicConfigs"),
    (20, "FindCoordinator"),
    (21, "ConsumerGroupHeartbeat"),
    (22, "ListGroups"),
    (23, "DescribeGroups"),
    (24, "DeleteGroups"),
    (30, "OffsetCommit"),
    (31, "OffsetFetch"),
    (35, "InitProducerId"),
    (1000, "OffsetForLeaderEpoch"),
    (1100, "BrokerRegistration"),
    (1101, "BrokerHeartbeat"),
    (1102, "AlterPartition"),
    (1103, "RaftMessage"),
    (1104, "DescribeCluster"),
];

#[test]
fn error_codes_keep_their_numbers() {
    assert_eq!(
        ErrorCode::KNOWN.len(),
        ERROR_CODES.len(),
        "a code was added or removed"
    );
    for (known, &(code, name, retriable)) in ErrorCode::KNOWN.iter().zip(ERROR_CODES) {
        assert_eq!(known.code(), code, "{name}");
        assert_eq!(known.name(), name, "{code}");
        assert_eq!(known.is_retriable(), retriable, "{name}");
        assert_eq!(ErrorCode::from_code(code), *known);
        assert!(!matches!(
            ErrorCode::from_code(code),
            ErrorCode::Unrecognized(_)
        ));
    }
}

#[test]
fn unknown_error_codes_keep_their_number() {
    for code in [-32768, -1, 53, 100, 999, i16::MAX] {
        let decoded = ErrorCode::from_code(code);
        assert!(
            matches!(decoded, ErrorCode::Unrecognized(c) if c == code),
            "{code}"
        );
        assert_eq!(decoded.code(), code);
        assert!(!decoded.is_retriable());
        assert_eq!(i16::from(decoded), code);
        // And over the wire.
        let response = Response::Rejected(decoded);
        let chunks = encode_response_frame(&ResponseHeader::default(), 0, &response, 64).unwrap();
        let frame = concat_chunks(&chunks).slice(4..);
        let (_, back) = decode_response_frame(frame, ApiKey::Fetch, 0).unwrap();
        assert_eq!(back, response);
        assert_eq!(back.header_error_code().code(), code);
    }
    assert_eq!(
        ErrorCode::Unrecognized(3),
        ErrorCode::UnknownTopicOrPartition
    );
}

#[test]
fn api_keys_keep_their_numbers() {
    assert_eq!(
        ApiKey::ALL.len(),
        API_KEYS.len(),
        "an api was added or removed"
    );
    for (api, &(key, name)) in ApiKey::ALL.iter().zip(API_KEYS) {
        assert_eq!(api.code(), key, "{name}");
        assert_eq!(api.name(), name);
        assert_eq!(ApiKey::from_code(key), Some(*api));
        assert_eq!((api.version_min(), api.version_max()), (0, 0), "{name}");
    }
    let assigned: Vec<u16> = API_KEYS.iter().map(|&(key, _)| key).collect();
    for code in 0..=u16::MAX {
        assert_eq!(
            ApiKey::from_code(code).is_some(),
            assigned.contains(&code),
            "{code}"
        );
    }
}

#[test]
fn reserved_ranges_hold_no_assigned_key_and_do_not_overlap() {
    for api in ApiKey::ALL {
        for (range, purpose) in RESERVED_API_KEY_RANGES {
            assert!(
                !range.contains(&api.code()),
                "{api} inside reserved range for {purpose}"
            );
        }
    }
    for (i, (a, _)) in RESERVED_API_KEY_RANGES.iter().enumerate() {
        for (b, _) in &RESERVED_API_KEY_RANGES[i + 1..] {
            assert!(
                a.end() < b.start(),
                "{a:?} and {b:?} overlap or are out of order"
            );
        }
    }
}

#[test]
fn decode_errors_map_to_wire_codes() {
    assert_eq!(
        DecodeError::UnknownApiKey(500).error_code(),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        DecodeError::UnsupportedVersion {
            api_key: 2,
            version: 9
        }
        .error_code(),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        DecodeError::InvalidAcks(2).error_code(),
        ErrorCode::InvalidRequiredAcks
    );
    assert_eq!(
        DecodeError::TrailingBytes { count: 1 }.error_code(),
        ErrorCode::InvalidRequest
    );
}
