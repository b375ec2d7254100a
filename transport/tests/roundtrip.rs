//! Seeded random values of every protocol type survive encode → decode unchanged, encode to at
//! least (and, when minimal, exactly) their declared `WIRE_BYTES_MIN`, and whole request and
//! response frames survive the trip through a `FrameDecoder`.

mod common;

use std::any::type_name;
use std::fmt::Debug;

use common::*;
use quiver_transport::protocol::*;

const ITERATIONS_PER_TYPE: u64 = 300;
const FRAMES_PER_API: u64 = 200;

fn check_type<T: Wire + Arb + PartialEq + Debug + Default>(seed: u64) {
    let name = type_name::<T>();
    // WIRE_BYTES_MIN bounds array counts, so it must be exact for the smallest value: too high
    // rejects valid input, too low weakens the allocation bound.
    let minimal = encode_value(&T::default());
    assert_eq!(minimal.len(), T::WIRE_BYTES_MIN, "{name}: WIRE_BYTES_MIN");
    assert_eq!(
        decode_value::<T>(minimal).as_ref(),
        Ok(&T::default()),
        "{name}"
    );

    let mut g = Gen::new(seed);
    for i in 0..ITERATIONS_PER_TYPE {
        let value = T::arb(&mut g);
        let bytes = encode_value(&value);
        assert!(
            bytes.len() >= T::WIRE_BYTES_MIN,
            "{name} #{i}: shorter than minimum"
        );
        match decode_value::<T>(bytes.clone()) {
            Ok(back) => assert_eq!(back, value, "{name} #{i}"),
            Err(e) => panic!("{name} #{i}: {e} decoding {value:?}"),
        }
        // Re-encoding is canonical.
        assert_eq!(
            encode_value(&value),
            bytes,
            "{name} #{i}: encoding not deterministic"
        );
    }
}

macro_rules! check_types {
    ($($ty:ty),* $(,)?) => {{
        let mut checked = 0;
        $(
            check_type::<$ty>(0x5eed_0000 + checked);
            checked += 1;
        )*
        checked
    }};
}

#[test]
fn every_type_round_trips() {
    let checked = check_types!(
        ConfigEntry,
        TopicResult,
        ApiVersionsRequest,
        ApiVersionRange,
        ApiVersionsResponse,
        MetadataRequest,
        MetadataResponse,
        BrokerMetadata,
        TopicMetadata,
        PartitionMetadata,
        CreateTopicsRequest,
        CreatableTopic,
        CreateTopicsResponse,
        CreatedTopic,
        DeleteTopicsRequest,
        DeleteTopicsResponse,
        DescribeTopicsRequest,
        DescribeTopicsResponse,
        TopicDescription,
        DescribedConfig,
        PartitionDescription,
        ListTopicsRequest,
        ListTopicsResponse,
        ListedTopic,
        AlterTopicConfigsRequest,
        AlterableTopic,
        AlterTopicConfigsResponse,
        FindCoordinatorRequest,
        FindCoordinatorResponse,
        GroupTopicPartitions,
        ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse,
        ListGroupsRequest,
        ListGroupsResponse,
        ListedGroup,
        DescribeGroupsRequest,
        DescribeGroupsResponse,
        DescribedGroup,
        DescribedMember,
        DeleteGroupsRequest,
        DeleteGroupsResponse,
        GroupResult,
        OffsetCommitRequest,
        OffsetCommitTopic,
        OffsetCommitPartition,
        OffsetCommitResponse,
        OffsetCommitTopicResponse,
        OffsetCommitPartitionResponse,
        OffsetFetchRequest,
        OffsetFetchTopic,
        OffsetFetchResponse,
        OffsetFetchTopicResponse,
        OffsetFetchPartitionResponse,
        InitProducerIdRequest,
        InitProducerIdResponse,
        Acks,
        ProduceRequest,
        ProduceTopic,
        ProducePartition,
        ProduceResponse,
        ProduceTopicResponse,
        ProducePartitionResponse,
        IsolationLevel,
        FetchRequest,
        FetchTopic,
        FetchPartition,
        FetchResponse,
        FetchTopicResponse,
        FetchPartitionResponse,
        AbortedTransaction,
        OffsetSpec,
        ListOffsetsRequest,
        ListOffsetsTopic,
        ListOffsetsPartition,
        ListOffsetsResponse,
        ListOffsetsTopicResponse,
        ListOffsetsPartitionResponse,
        OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochTopic,
        OffsetForLeaderEpochPartition,
        OffsetForLeaderEpochResponse,
        OffsetForLeaderEpochTopicResponse,
        OffsetForLeaderEpochPartitionResponse,
        BrokerRegistrationRequest,
        BrokerRegistrationResponse,
        BrokerHeartbeatRequest,
        BrokerHeartbeatResponse,
        AlterPartitionRequest,
        AlterPartitionTopic,
        AlterPartitionPartition,
        AlterPartitionResponse,
        AlterPartitionTopicResponse,
        AlterPartitionPartitionResponse,
        RaftMessageRequest,
        RaftMessageResponse,
        DescribeClusterRequest,
        DescribeClusterResponse,
    );
    assert_eq!(checked, 97);
}

#[test]
fn every_request_frame_round_trips() {
    let mut g = Gen::new(0xf4a3e);
    for api_key in ApiKey::ALL {
        for i in 0..FRAMES_PER_API {
            let header = arb_request_header(&mut g, api_key);
            let request = arb_request(&mut g, api_key);
            let chunks = encode_request_frame(&header, &request, FRAME_BYTES_MAX_DEFAULT)
                .unwrap_or_else(|e| panic!("{api_key} #{i}: {e}"));
            let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
            for chunk in chunks {
                decoder.push_bytes(chunk).unwrap();
            }
            decoder.finish().unwrap();
            let frame = decoder.pop_frame().expect("one frame");
            assert!(decoder.pop_frame().is_none());
            let (got_header, got_request) = decode_request_frame(frame)
                .unwrap_or_else(|e| panic!("{api_key} #{i}: {e} decoding {request:?}"));
            assert_eq!(got_header, header, "{api_key} #{i}");
            assert_eq!(got_request, request, "{api_key} #{i}");
            assert_eq!(got_request.api_key(), api_key);
        }
    }
}

#[test]
fn every_response_frame_round_trips() {
    let mut g = Gen::new(0xf4a3f);
    let mut rejected = 0;
    for api_key in ApiKey::ALL {
        for i in 0..FRAMES_PER_API {
            let header = ResponseHeader {
                correlation_id: g.u32(),
            };
            let response = arb_response(&mut g, api_key);
            rejected += usize::from(matches!(response, Response::Rejected(_)));
            let chunks = encode_response_frame(&header, 0, &response, FRAME_BYTES_MAX_DEFAULT)
                .unwrap_or_else(|e| panic!("{api_key} #{i}: {e}"));
            let (frames, result) = frames_of(&concat_chunks(&chunks), FRAME_BYTES_MAX_DEFAULT);
            result.unwrap();
            let [frame] = &frames[..] else {
                panic!("expected one frame, got {}", frames.len())
            };
            assert_eq!(ResponseHeader::peek(frame), Ok(header));
            let (got_header, got_response) = decode_response_frame(frame.clone(), api_key, 0)
                .unwrap_or_else(|e| panic!("{api_key} #{i}: {e} decoding {response:?}"));
            assert_eq!(got_header, header, "{api_key} #{i}");
            assert_eq!(got_response, response, "{api_key} #{i}");
        }
    }
    assert!(
        rejected > 50,
        "the generator should produce rejections too ({rejected})"
    );
}

/// Large record payloads leave the encoder as their own chunks, the very `Bytes` given (no copy);
/// small ones are inlined.
#[test]
fn large_records_are_emitted_as_separate_chunks_without_copy() {
    let big_a = bytes::Bytes::from(vec![0xAA; PAYLOAD_INLINE_BYTES_MAX + 1]);
    let big_b = bytes::Bytes::from(vec![0xBB; 70_000]);
    let small = bytes::Bytes::from(vec![0xCC; 10]);
    let mut records = Records::new();
    records.push(big_a.clone());
    records.push(small.clone());
    records.push(big_b.clone());
    let response = Response::from(FetchResponse {
        throttle_time_ms: 0,
        topics: vec![FetchTopicResponse {
            name: "t".into(),
            partitions: vec![FetchPartitionResponse {
                records,
                ..Default::default()
            }],
        }],
    });
    let chunks = encode_response_frame(
        &ResponseHeader { correlation_id: 1 },
        0,
        &response,
        FRAME_BYTES_MAX_DEFAULT,
    )
    .unwrap();
    // header+fields, big_a, small inlined with nothing else after it, big_b.
    assert_eq!(
        chunks.len(),
        4,
        "{:?}",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    assert_eq!(chunks[1].as_ptr(), big_a.as_ptr(), "big_a was copied");
    assert_eq!(chunks[2], small);
    assert_eq!(chunks[3].as_ptr(), big_b.as_ptr(), "big_b was copied");
    let frame_len = u32::from_be_bytes(chunks[0][..4].try_into().unwrap()) as usize;
    assert_eq!(frame_len + 4, chunks.iter().map(|c| c.len()).sum::<usize>());

    // And decoding slices records out of the frame without copying.
    let (frames, _) = frames_of(&concat_chunks(&chunks), FRAME_BYTES_MAX_DEFAULT);
    let frame = frames[0].clone();
    let (_, decoded) = decode_response_frame(frame.clone(), ApiKey::Fetch, 0).unwrap();
    assert_eq!(decoded, response);
    let Response::Fetch(fetch) = decoded else {
        unreachable!()
    };
    let records = &fetch.topics[0].partitions[0].records;
    assert_eq!(records.chunks().len(), 1);
    let inside = frame.as_ptr_range();
    assert!(
        inside.contains(&records.chunks()[0].as_ptr()),
        "records were copied on decode"
    );
}

/// The produce path: a client's batch bytes are sent as their own chunk.
#[test]
fn produce_records_are_sent_without_copy() {
    let batch = bytes::Bytes::from(vec![7u8; 16 * 1024]);
    let request = Request::from(ProduceRequest {
        transactional_id: None,
        acks: Acks::All,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: "orders".into(),
            partitions: vec![ProducePartition {
                partition: 3,
                records: batch.clone(),
            }],
        }],
    });
    let header = RequestHeader {
        api_key: ApiKey::Produce.code(),
        ..Default::default()
    };
    let chunks = encode_request_frame(&header, &request, FRAME_BYTES_MAX_DEFAULT).unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1].as_ptr(), batch.as_ptr());
}

#[test]
fn negotiation_picks_the_newest_common_version() {
    let ours = ApiVersionsResponse::for_this_build(FRAME_BYTES_MAX_DEFAULT);
    assert_eq!(ours.api_versions.len(), ApiKey::ALL.len());
    for api_key in ApiKey::ALL {
        assert_eq!(ours.negotiate(api_key), Some(0));
    }
    let theirs = ApiVersionsResponse {
        throttle_time_ms: 0,
        api_versions: vec![
            ApiVersionRange {
                api_key: ApiKey::Fetch.code(),
                version_min: 1,
                version_max: 5,
            },
            ApiVersionRange {
                api_key: 999,
                version_min: 0,
                version_max: 0,
            },
        ],
        frame_bytes_max: 1 << 20,
    };
    assert_eq!(
        theirs.negotiate(ApiKey::Fetch),
        None,
        "no overlap with 0..=0"
    );
    assert_eq!(theirs.negotiate(ApiKey::Produce), None, "not offered");
    assert_eq!(theirs.api_versions[1].api(), None);
}
