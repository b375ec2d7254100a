//! Golden bytes: for every api, one request and one response written out by hand, field by field,
//! from the wire format in the module docs. Each value must encode to exactly these bytes, and
//! the bytes (cut by a `FrameDecoder`) must decode to exactly this value. A change that moves a
//! byte of a released version fails here.

mod common;

use bytes::Bytes;
use common::frames_of;
use quiver_transport::protocol::*;

/// Concatenates hand-written pieces (byte literals and string literals) into one golden frame.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn one_frame(golden: &[u8]) -> Bytes {
    let (frames, result) = frames_of(golden, FRAME_BYTES_MAX_DEFAULT);
    result.expect("golden frame is well framed");
    assert_eq!(frames.len(), 1, "golden holds one frame");
    frames[0].clone()
}

fn check_request(client_id: Option<&str>, correlation_id: u32, request: Request, golden: &[u8]) {
    let header = RequestHeader {
        api_key: request.api_key().code(),
        api_version: 0,
        correlation_id,
        client_id: client_id.map(str::to_owned),
    };
    let encoded = concat_chunks(&encode_request_frame(&header, &request, u32::MAX).unwrap());
    assert_eq!(
        hex(&encoded),
        hex(golden),
        "{} request encoding",
        request.api_key()
    );
    let (got_header, got_request) = decode_request_frame(one_frame(golden)).unwrap();
    assert_eq!(got_header, header);
    assert_eq!(got_request, request);
}

fn check_response(api_key: ApiKey, correlation_id: u32, response: Response, golden: &[u8]) {
    let header = ResponseHeader { correlation_id };
    let encoded = concat_chunks(&encode_response_frame(&header, 0, &response, u32::MAX).unwrap());
    assert_eq!(hex(&encoded), hex(golden), "{api_key} response encoding");
    let frame = one_frame(golden);
    assert_eq!(ResponseHeader::peek(&frame), Ok(header));
    let (got_header, got_response) = decode_response_frame(frame, api_key, 0).unwrap();
    assert_eq!(got_header, header);
    assert_eq!(got_response, response);
}

#[test]
fn api_versions() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x17], // frame length 23
        &[0x00, 0x00],             // api key 0 (ApiVersions)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x01], // correlation id 1
        &[0x00, 0x03],
        b"cli", // client id "cli"
        &[0x00, 0x03],
        b"sdk", // client_software_name "sdk"
        &[0x00, 0x03],
        b"0.1", // client_software_version "0.1"
    ]);
    let request = ApiVersionsRequest {
        client_software_name: "sdk".into(),
        client_software_version: "0.1".into(),
    };
    check_request(Some("cli"), 1, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x1E],             // frame length 30
        &[0x00, 0x00, 0x00, 0x01],             // correlation id 1
        &[0x00, 0x00],                         // header error_code 0: typed body follows
        &[0x00, 0x00, 0x00, 0x00],             // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x02],             // api_versions: 2 entries
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00], //   key 0, min 0, max 0
        &[0x00, 0x02, 0x00, 0x00, 0x00, 0x03], //   key 2, min 0, max 3
        &[0x04, 0x00, 0x00, 0x00],             // frame_bytes_max 64 MiB
    ]);
    let response = ApiVersionsResponse {
        throttle_time_ms: 0,
        api_versions: vec![
            ApiVersionRange {
                api_key: 0,
                version_min: 0,
                version_max: 0,
            },
            ApiVersionRange {
                api_key: 2,
                version_min: 0,
                version_max: 3,
            },
        ],
        frame_bytes_max: 64 << 20,
    };
    check_response(ApiKey::ApiVersions, 1, response.into(), &golden);
}

#[test]
fn metadata() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x16], // frame length 22
        &[0x00, 0x01],             // api key 1 (Metadata)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0xFF, 0xFF],             // client id null
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x06],
        b"orders", //   "orders"
    ]);
    let request = MetadataRequest {
        topics: Some(vec!["orders".into()]),
    };
    check_request(None, 2, request.into(), &golden);

    // A null topic list means every topic.
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0E], // frame length 14
        &[0x00, 0x01],             // api key 1 (Metadata)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0xFF, 0xFF],             // client id null
        &[0xFF, 0xFF, 0xFF, 0xFF], // topics: null (all)
    ]);
    check_request(None, 2, MetadataRequest { topics: None }.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x56], // frame length 86
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x02],
        b"qv",                     // cluster_id "qv"
        &[0x00, 0x00, 0x00, 0x01], // controller_id 1
        &[0x00, 0x00, 0x00, 0x01], // brokers: 1
        &[0x00, 0x00, 0x00, 0x01], //   broker_id 1
        &[0x00, 0x01],
        b"h",                      //   host "h"
        &[0x23, 0xE6],             //   port 9190
        &[0x00, 0x02],             //   shard_count 2
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x00],             //   error_code 0
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00],                   //   is_internal false
        &[0x00, 0x00, 0x00, 0x01], //   partitions: 1
        &[0x00, 0x00],             //     error_code 0
        &[0x00, 0x00, 0x00, 0x00], //     partition 0
        &[0x00, 0x00, 0x00, 0x01], //     leader_id 1
        &[0x00, 0x00, 0x00, 0x05], //     leader_epoch 5
        &[0x00, 0x01],
        b"h",                      //     leader_host "h"
        &[0x23, 0xE6],             //     leader_port 9190
        &[0x00, 0x01],             //     leader_shard 1
        &[0x23, 0xE7],             //     leader_shard_port 9191
        &[0x00, 0x00, 0x00, 0x01], //     replicas: 1
        &[0x00, 0x00, 0x00, 0x01], //       1
        &[0x00, 0x00, 0x00, 0x01], //     isr: 1
        &[0x00, 0x00, 0x00, 0x01], //       1
    ]);
    let response = MetadataResponse {
        throttle_time_ms: 0,
        cluster_id: Some("qv".into()),
        controller_id: 1,
        brokers: vec![BrokerMetadata {
            broker_id: 1,
            host: "h".into(),
            port: 9190,
            shard_count: 2,
        }],
        topics: vec![TopicMetadata {
            error_code: ErrorCode::None,
            name: "t".into(),
            is_internal: false,
            partitions: vec![PartitionMetadata {
                error_code: ErrorCode::None,
                partition: 0,
                leader_id: 1,
                leader_epoch: 5,
                leader_host: "h".into(),
                leader_port: 9190,
                leader_shard: 1,
                leader_shard_port: 9191,
                replicas: vec![1],
                isr: vec![1],
            }],
        }],
    };
    check_response(ApiKey::Metadata, 2, response.into(), &golden);
}

#[test]
fn produce() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x2A], // frame length 42
        &[0x00, 0x02],             // api key 2 (Produce)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x03], // correlation id 3
        &[0x00, 0x01],
        b"p",                      // client id "p"
        &[0xFF, 0xFF],             // transactional_id null
        &[0xFF, 0xFF],             // acks -1 (all)
        &[0x00, 0x00, 0x75, 0x30], // timeout_ms 30000
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x01], //   partitions: 1
        &[0x00, 0x00, 0x00, 0x02], //     partition 2
        &[0x00, 0x00, 0x00, 0x04], //     records: 4 bytes (opaque to the protocol)
        &[0xDE, 0xAD, 0xBE, 0xEF],
    ]);
    let request = ProduceRequest {
        transactional_id: None,
        acks: Acks::All,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: "t".into(),
            partitions: vec![ProducePartition {
                partition: 2,
                records: Bytes::from_static(&[0xDE, 0xAD, 0xBE, 0xEF]),
            }],
        }],
    };
    check_request(Some("p"), 3, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x35], // frame length 53
        &[0x00, 0x00, 0x00, 0x03], // correlation id 3
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x01],                         //   partitions: 1
        &[0x00, 0x00, 0x00, 0x02],                         //     partition 2
        &[0x00, 0x00],                                     //     error_code 0
        &[0xFF, 0xFF],                                     //     error_message null
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64], // base_offset 100
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // log_append_time_ms -1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // log_start_offset 0
    ]);
    let response = ProduceResponse {
        throttle_time_ms: 0,
        topics: vec![ProduceTopicResponse {
            name: "t".into(),
            partitions: vec![ProducePartitionResponse {
                partition: 2,
                error_code: ErrorCode::None,
                error_message: None,
                base_offset: 100,
                log_append_time_ms: -1,
                log_start_offset: 0,
            }],
        }],
    };
    check_response(ApiKey::Produce, 3, response.into(), &golden);
}

#[test]
fn fetch() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x42], // frame length 66
        &[0x00, 0x03],             // api key 3 (Fetch)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x04], // correlation id 4
        &[0xFF, 0xFF],             // client id null
        &[0xFF, 0xFF, 0xFF, 0xFF], // replica_id -1 (consumer)
        &[0x00, 0x00, 0x01, 0xF4], // max_wait_ms 500
        &[0x00, 0x00, 0x00, 0x01], // min_bytes 1
        &[0x03, 0x20, 0x00, 0x00], // max_bytes 50 MiB
        &[0x01],                   // isolation_level 1 (read committed)
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x01],                         //   partitions: 1
        &[0x00, 0x00, 0x00, 0x00],                         //     partition 0
        &[0xFF, 0xFF, 0xFF, 0xFF],                         //     current_leader_epoch -1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A], // fetch_offset 42
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // log_start_offset -1
        &[0x00, 0x10, 0x00, 0x00],                         //     partition_max_bytes 1 MiB
    ]);
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 50 << 20,
        isolation_level: IsolationLevel::ReadCommitted,
        topics: vec![FetchTopic {
            name: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 42,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
            }],
        }],
    };
    check_request(None, 4, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x4F], // frame length 79
        &[0x00, 0x00, 0x00, 0x04], // correlation id 4
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x01],                         //   partitions: 1
        &[0x00, 0x00, 0x00, 0x00],                         //     partition 0
        &[0x00, 0x00],                                     //     error_code 0
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C], // high_watermark 44
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C], // last_stable_offset 44
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // log_start_offset 0
        &[0x00, 0x00, 0x00, 0x01],                         //     aborted_transactions: 1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07], //   producer_id 7
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28], //   first_offset 40
        &[0x00, 0x00, 0x00, 0x04], //     records: 4 bytes, sent as two chunks
        b"ABCD",
    ]);
    let response = FetchResponse {
        throttle_time_ms: 0,
        topics: vec![FetchTopicResponse {
            name: "t".into(),
            partitions: vec![FetchPartitionResponse {
                partition: 0,
                error_code: ErrorCode::None,
                high_watermark: 44,
                last_stable_offset: 44,
                log_start_offset: 0,
                aborted_transactions: vec![AbortedTransaction {
                    producer_id: 7,
                    first_offset: 40,
                }],
                records: Records::from(vec![Bytes::from_static(b"AB"), Bytes::from_static(b"CD")]),
            }],
        }],
    };
    check_response(ApiKey::Fetch, 4, response.into(), &golden);
}

#[test]
fn list_offsets() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x4B], // frame length 75
        &[0x00, 0x04],             // api key 4 (ListOffsets)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0x00, 0x01],
        b"c",                      // client id "c"
        &[0xFF, 0xFF, 0xFF, 0xFF], // replica_id -1
        &[0x00],                   // isolation_level 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x03],                         //   partitions: 3
        &[0x00, 0x00, 0x00, 0x00],                         //     partition 0
        &[0xFF, 0xFF, 0xFF, 0xFF],                         //     current_leader_epoch -1
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // timestamp -1 (latest)
        &[0x00, 0x00, 0x00, 0x01],                         //     partition 1
        &[0x00, 0x00, 0x00, 0x03],                         //     current_leader_epoch 3
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE], // timestamp -2 (earliest)
        &[0x00, 0x00, 0x00, 0x02],                         //     partition 2
        &[0x00, 0x00, 0x00, 0x03],                         //     current_leader_epoch 3
        &[0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00], // timestamp 1_700_000_000_000 ms
    ]);
    let partition = |partition, current_leader_epoch, timestamp| ListOffsetsPartition {
        partition,
        current_leader_epoch,
        timestamp,
    };
    let request = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: IsolationLevel::ReadUncommitted,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![
                partition(0, -1, OffsetSpec::Latest),
                partition(1, 3, OffsetSpec::Earliest),
                partition(2, 3, OffsetSpec::Timestamp(1_700_000_000_000)),
            ],
        }],
    };
    check_request(Some("c"), 5, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x49], // frame length 73
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x02],                         //   partitions: 2
        &[0x00, 0x00, 0x00, 0x00],                         //     partition 0
        &[0x00, 0x00],                                     //     error_code 0
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // timestamp_ms -1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C], // offset 44
        &[0x00, 0x00, 0x00, 0x03],                         //     leader_epoch 3
        &[0x00, 0x00, 0x00, 0x01],                         //     partition 1
        &[0x00, 0x06],                                     //     error_code 6 (NotLeaderOrFollower)
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // timestamp_ms -1
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // offset -1
        &[0xFF, 0xFF, 0xFF, 0xFF],                         //     leader_epoch -1
    ]);
    let response = ListOffsetsResponse {
        throttle_time_ms: 0,
        topics: vec![ListOffsetsTopicResponse {
            name: "t".into(),
            partitions: vec![
                ListOffsetsPartitionResponse {
                    partition: 0,
                    error_code: ErrorCode::None,
                    timestamp_ms: -1,
                    offset: 44,
                    leader_epoch: 3,
                },
                ListOffsetsPartitionResponse {
                    partition: 1,
                    error_code: ErrorCode::NotLeaderOrFollower,
                    timestamp_ms: -1,
                    offset: -1,
                    leader_epoch: -1,
                },
            ],
        }],
    };
    check_response(ApiKey::ListOffsets, 5, response.into(), &golden);
}

#[test]
fn create_topics() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x34], // frame length 52
        &[0x00, 0x0A],             // api key 10 (CreateTopics)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x06], // correlation id 6
        &[0xFF, 0xFF],             // client id null
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x04], //   partition_count 4
        &[0x00, 0x01],             //   replication_factor 1
        &[0x00, 0x00, 0x00, 0x01], //   configs: 1
        &[0x00, 0x0C],
        b"retention.ms", //     name "retention.ms"
        &[0x00, 0x04],
        b"1000",                   //     value "1000"
        &[0x00, 0x00, 0x13, 0x88], // timeout_ms 5000
        &[0x00],                   // validate_only false
    ]);
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "t".into(),
            partition_count: 4,
            replication_factor: 1,
            configs: vec![ConfigEntry {
                name: "retention.ms".into(),
                value: Some("1000".into()),
            }],
        }],
        timeout_ms: 5000,
        validate_only: false,
    };
    check_request(None, 6, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x2E], // frame length 46
        &[0x00, 0x00, 0x00, 0x06], // correlation id 6
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x02], // topics: 2
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00],             //   error_code 0
        &[0xFF, 0xFF],             //   error_message null
        &[0x00, 0x00, 0x00, 0x04], //   partition_count 4
        &[0x00, 0x01],             //   replication_factor 1
        &[0x00, 0x01],
        b"u",          //   name "u"
        &[0x00, 0x08], //   error_code 8 (TopicAlreadyExists)
        &[0x00, 0x06],
        b"exists",                 //   error_message "exists"
        &[0xFF, 0xFF, 0xFF, 0xFF], //   partition_count -1
        &[0xFF, 0xFF],             //   replication_factor -1
    ]);
    let response = CreateTopicsResponse {
        throttle_time_ms: 0,
        topics: vec![
            CreatedTopic {
                name: "t".into(),
                error_code: ErrorCode::None,
                error_message: None,
                partition_count: 4,
                replication_factor: 1,
            },
            CreatedTopic {
                name: "u".into(),
                error_code: ErrorCode::TopicAlreadyExists,
                error_message: Some("exists".into()),
                partition_count: -1,
                replication_factor: -1,
            },
        ],
    };
    check_response(ApiKey::CreateTopics, 6, response.into(), &golden);
}

#[test]
fn delete_topics() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x19], // frame length 25
        &[0x00, 0x0B],             // api key 11 (DeleteTopics)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x07], // correlation id 7
        &[0x00, 0x01],
        b"c",                      // client id "c"
        &[0x00, 0x00, 0x00, 0x02], // names: 2
        &[0x00, 0x01],
        b"t", //   "t"
        &[0x00, 0x01],
        b"u",                      //   "u"
        &[0x00, 0x00, 0x00, 0x00], // timeout_ms 0
    ]);
    let request = DeleteTopicsRequest {
        names: vec!["t".into(), "u".into()],
        timeout_ms: 0,
    };
    check_request(Some("c"), 7, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x1C], // frame length 28
        &[0x00, 0x00, 0x00, 0x07], // correlation id 7
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x02], // topics: 2
        &[0x00, 0x01],
        b"t",          //   name "t"
        &[0x00, 0x00], //   error_code 0
        &[0xFF, 0xFF], //   error_message null
        &[0x00, 0x01],
        b"u",          //   name "u"
        &[0x00, 0x03], //   error_code 3 (UnknownTopicOrPartition)
        &[0xFF, 0xFF], //   error_message null
    ]);
    let response = DeleteTopicsResponse {
        throttle_time_ms: 0,
        topics: vec![
            TopicResult {
                name: "t".into(),
                error_code: ErrorCode::None,
                error_message: None,
            },
            TopicResult {
                name: "u".into(),
                error_code: ErrorCode::UnknownTopicOrPartition,
                error_message: None,
            },
        ],
    };
    check_response(ApiKey::DeleteTopics, 7, response.into(), &golden);
}

#[test]
fn describe_topics() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x11], // frame length 17
        &[0x00, 0x0C],             // api key 12 (DescribeTopics)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x08], // correlation id 8
        &[0xFF, 0xFF],             // client id null
        &[0x00, 0x00, 0x00, 0x01], // names: 1
        &[0x00, 0x01],
        b"t", //   "t"
    ]);
    let request = DescribeTopicsRequest {
        names: vec!["t".into()],
    };
    check_request(None, 8, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x6D], // frame length 109
        &[0x00, 0x00, 0x00, 0x08], // correlation id 8
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00],             //   error_code 0
        &[0xFF, 0xFF],             //   error_message null
        &[0x00],                   //   is_internal false
        &[0x00, 0x00, 0x00, 0x01], //   configs: 1
        &[0x00, 0x0E],
        b"cleanup.policy", //     name "cleanup.policy"
        &[0x00, 0x06],
        b"delete",                                         //     value "delete"
        &[0x01],                                           //     is_default true
        &[0x00, 0x00, 0x00, 0x01],                         //   partitions: 1
        &[0x00, 0x00, 0x00, 0x00],                         //     partition 0
        &[0x00, 0x00],                                     //     error_code 0
        &[0x00, 0x00, 0x00, 0x01],                         //     leader_id 1
        &[0x00, 0x00, 0x00, 0x02],                         //     leader_epoch 2
        &[0x00, 0x00, 0x00, 0x01],                         //     replicas: 1
        &[0x00, 0x00, 0x00, 0x01],                         //       1
        &[0x00, 0x00, 0x00, 0x01],                         //     isr: 1
        &[0x00, 0x00, 0x00, 0x01],                         //       1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0A], // log_start_offset 10
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C], // log_end_offset 44
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28], // high_watermark 40
    ]);
    let response = DescribeTopicsResponse {
        throttle_time_ms: 0,
        topics: vec![TopicDescription {
            name: "t".into(),
            error_code: ErrorCode::None,
            error_message: None,
            is_internal: false,
            configs: vec![DescribedConfig {
                name: "cleanup.policy".into(),
                value: Some("delete".into()),
                is_default: true,
            }],
            partitions: vec![PartitionDescription {
                partition: 0,
                error_code: ErrorCode::None,
                leader_id: 1,
                leader_epoch: 2,
                replicas: vec![1],
                isr: vec![1],
                log_start_offset: 10,
                log_end_offset: 44,
                high_watermark: 40,
            }],
        }],
    };
    check_response(ApiKey::DescribeTopics, 8, response.into(), &golden);
}

#[test]
fn list_topics() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0C], // frame length 12
        &[0x00, 0x0D],             // api key 13 (ListTopics)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x09], // correlation id 9
        &[0x00, 0x01],
        b"c",    // client id "c"
        &[0x01], // include_internal true
    ]);
    let request = ListTopicsRequest {
        include_internal: true,
    };
    check_request(Some("c"), 9, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x18], // frame length 24
        &[0x00, 0x00, 0x00, 0x09], // correlation id 9
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x04], //   partition_count 4
        &[0x00, 0x01],             //   replication_factor 1
        &[0x00],                   //   is_internal false
    ]);
    let response = ListTopicsResponse {
        throttle_time_ms: 0,
        topics: vec![ListedTopic {
            name: "t".into(),
            partition_count: 4,
            replication_factor: 1,
            is_internal: false,
        }],
    };
    check_response(ApiKey::ListTopics, 9, response.into(), &golden);
}

#[test]
fn alter_topic_configs() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x38], // frame length 56
        &[0x00, 0x0E],             // api key 14 (AlterTopicConfigs)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x0A], // correlation id 10
        &[0xFF, 0xFF],             // client id null
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x02], //   configs: 2
        &[0x00, 0x0C],
        b"retention.ms", //     name "retention.ms"
        &[0x00, 0x01],
        b"5", //     value "5"
        &[0x00, 0x0D],
        b"segment.bytes", //     name "segment.bytes"
        &[0xFF, 0xFF],    //     value null: reset to default
        &[0x01],          // validate_only true
    ]);
    let request = AlterTopicConfigsRequest {
        topics: vec![AlterableTopic {
            name: "t".into(),
            configs: vec![
                ConfigEntry {
                    name: "retention.ms".into(),
                    value: Some("5".into()),
                },
                ConfigEntry {
                    name: "segment.bytes".into(),
                    value: None,
                },
            ],
        }],
        validate_only: true,
    };
    check_request(None, 10, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x18], // frame length 24
        &[0x00, 0x00, 0x00, 0x0A], // correlation id 10
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",          //   name "t"
        &[0x00, 0x0B], //   error_code 11 (InvalidConfig)
        &[0x00, 0x03],
        b"bad", //   error_message "bad"
    ]);
    let response = AlterTopicConfigsResponse {
        throttle_time_ms: 0,
        topics: vec![TopicResult {
            name: "t".into(),
            error_code: ErrorCode::InvalidConfig,
            error_message: Some("bad".into()),
        }],
    };
    check_response(ApiKey::AlterTopicConfigs, 10, response.into(), &golden);
}

/// A request refused as a whole: the header carries the code and there is no body, whatever the
/// api.
#[test]
fn rejected_response() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x06], // frame length 6
        &[0x00, 0x00, 0x00, 0x0B], // correlation id 11
        &[0x00, 0x0D],             // header error_code 13 (UnsupportedVersion), no body
    ]);
    for api_key in ApiKey::ALL {
        check_response(
            api_key,
            11,
            Response::Rejected(ErrorCode::UnsupportedVersion),
            &golden,
        );
    }
    // Rejected(None) has no wire form: a zero header code announces a typed body.
    let none = encode_response_frame(
        &ResponseHeader { correlation_id: 11 },
        0,
        &Response::Rejected(ErrorCode::None),
        64,
    );
    assert!(matches!(none, Err(EncodeError::InvalidValue { .. })));
}

/// A request the broker cannot serve still yields its header, so it can be answered.
#[test]
fn undecodable_request_keeps_its_header() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0B], // frame length 11
        &[0xF0, 0x00],             // api key 61440 (never assigned: private experiments)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x0C], // correlation id 12
        &[0xFF, 0xFF],             // client id null
        &[0x00],                   // a body this build cannot interpret
    ]);
    let error = decode_request_frame(one_frame(&golden)).unwrap_err();
    assert_eq!(error.error, DecodeError::UnknownApiKey(0xF000));
    assert_eq!(error.error.error_code(), ErrorCode::UnsupportedVersion);
    assert_eq!(error.header.map(|h| h.correlation_id), Some(12));

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0B], // frame length 11
        &[0x00, 0x0D],             // api key 13 (ListTopics)
        &[0x00, 0x01],             // api version 1: not spoken by this build
        &[0x00, 0x00, 0x00, 0x0D], // correlation id 13
        &[0xFF, 0xFF],             // client id null
        &[0x00],                   // include_internal false
    ]);
    let error = decode_request_frame(one_frame(&golden)).unwrap_err();
    assert_eq!(
        error.error,
        DecodeError::UnsupportedVersion {
            api_key: 13,
            version: 1
        }
    );
    assert_eq!(error.header.map(|h| h.correlation_id), Some(13));

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x16], // frame length 22
        &[0x00, 0x02],             // api key 2 (Produce)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x0E], // correlation id 14
        &[0xFF, 0xFF],             // client id null
        &[0xFF, 0xFF],             // transactional_id null
        &[0x00, 0x02],             // acks 2: invalid
        &[0x00, 0x00, 0x00, 0x00], // timeout_ms 0
        &[0x00, 0x00, 0x00, 0x00], // topics: 0
    ]);
    let error = decode_request_frame(one_frame(&golden)).unwrap_err();
    assert_eq!(error.error, DecodeError::InvalidAcks(2));
    assert_eq!(error.error.error_code(), ErrorCode::InvalidRequiredAcks);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0B], // frame length 11
        &[0x00, 0x0D],             // api key 13 (ListTopics)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x0F], // correlation id 15
        &[0xFF, 0xFF],             // client id null
        &[0x02],                   // include_internal 2: not a bool
    ]);
    let error = decode_request_frame(one_frame(&golden)).unwrap_err();
    assert_eq!(
        error.error,
        DecodeError::InvalidValue {
            what: "include_internal",
            value: 2
        }
    );
}

#[test]
fn consumer_group_heartbeat() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x38], // frame length 56
        &[0x00, 0x15],             // api key 21 (ConsumerGroupHeartbeat)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x09], // correlation id 9
        &[0x00, 0x01],
        b"c", // client id "c"
        &[0x00, 0x01],
        b"g",                      // group_id "g"
        &[0x00, 0x00],             // member_id "" (joining)
        &[0x00, 0x00, 0x00, 0x00], // member_epoch 0
        &[0x00, 0x04, 0x93, 0xE0], // rebalance_timeout_ms 300000
        &[0x00, 0x00, 0xAF, 0xC8], // session_timeout_ms 45000
        &[0x00, 0x00, 0x00, 0x01], // subscribed_topics: 1
        &[0x00, 0x01],
        b"t",                      //   "t"
        &[0xFF, 0xFF],             // assignor null
        &[0x00, 0x00, 0x00, 0x01], // owned: 1
        &[0x00, 0x01],
        b"t",                      //   topic "t"
        &[0x00, 0x00, 0x00, 0x02], //   partitions: 2
        &[0x00, 0x00, 0x00, 0x00], //     0
        &[0x00, 0x00, 0x00, 0x03], //     3
    ]);
    let request = ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: String::new(),
        member_epoch: MEMBER_EPOCH_JOIN,
        rebalance_timeout_ms: 300_000,
        session_timeout_ms: 45_000,
        subscribed_topics: vec!["t".into()],
        assignor: None,
        owned: vec![GroupTopicPartitions {
            topic: "t".into(),
            partitions: vec![0, 3],
        }],
    };
    check_request(Some("c"), 9, request.into(), &golden);
}

#[test]
fn offset_commit() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x32], // frame length 50
        &[0x00, 0x1E],             // api key 30 (OffsetCommit)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x09], // correlation id 9
        &[0x00, 0x01],
        b"c", // client id "c"
        &[0x00, 0x01],
        b"g", // group_id "g"
        &[0x00, 0x01],
        b"m",                      // member_id "m"
        &[0x00, 0x00, 0x00, 0x05], // member_epoch 5
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x01],                         //   partitions: 1
        &[0x00, 0x00, 0x00, 0x02],                         //     partition 2
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64], //     committed_offset 100
        &[0xFF, 0xFF, 0xFF, 0xFF],                         //     committed_leader_epoch -1
        &[0xFF, 0xFF],                                     //     metadata null
    ]);
    let request = OffsetCommitRequest {
        group_id: "g".into(),
        member_id: "m".into(),
        member_epoch: 5,
        topics: vec![OffsetCommitTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitPartition {
                partition: 2,
                committed_offset: 100,
                committed_leader_epoch: -1,
                metadata: None,
            }],
        }],
    };
    check_request(Some("c"), 9, request.into(), &golden);
}

#[test]
fn init_producer_id() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x18],                         // frame length 24
        &[0x00, 0x00, 0x00, 0x09],                         // correlation id 9
        &[0x00, 0x00],                                     // header error_code 0
        &[0x00, 0x00, 0x00, 0x00],                         // throttle_time_ms 0
        &[0x00, 0x00],                                     // error_code 0
        &[0xFF, 0xFF],                                     // error_message null
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8], // producer_id 1000
        &[0x00, 0x02],                                     // producer_epoch 2
    ]);
    let response = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None,
        error_message: None,
        producer_id: 1000,
        producer_epoch: 2,
    };
    check_response(ApiKey::InitProducerId, 9, response.into(), &golden);
}

#[test]
fn offset_for_leader_epoch() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x26], // frame length 38
        &[0x03, 0xE8],             // api key 1000 (OffsetForLeaderEpoch)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x07], // correlation id 7
        &[0x00, 0x01],
        b"c",                      // client id "c"
        &[0x00, 0x00, 0x00, 0x02], // replica_id 2
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x01], //   partitions: 1
        &[0x00, 0x00, 0x00, 0x04], //     partition 4
        &[0x00, 0x00, 0x00, 0x06], //     current_leader_epoch 6
        &[0x00, 0x00, 0x00, 0x05], //     leader_epoch 5
    ]);
    let request = OffsetForLeaderEpochRequest {
        replica_id: 2,
        topics: vec![OffsetForLeaderEpochTopic {
            name: "t".into(),
            partitions: vec![OffsetForLeaderEpochPartition {
                partition: 4,
                current_leader_epoch: 6,
                leader_epoch: 5,
            }],
        }],
    };
    check_request(Some("c"), 7, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x27], // frame length 39
        &[0x00, 0x00, 0x00, 0x07], // correlation id 7
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                                              //   name "t"
        &[0x00, 0x00, 0x00, 0x01],                         //   partitions: 1
        &[0x00, 0x00, 0x00, 0x04],                         //     partition 4
        &[0x00, 0x00],                                     //     error_code 0
        &[0x00, 0x00, 0x00, 0x03],                         //     leader_epoch 3
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2C], //     end_offset 300
    ]);
    let response = OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics: vec![OffsetForLeaderEpochTopicResponse {
            name: "t".into(),
            partitions: vec![OffsetForLeaderEpochPartitionResponse {
                partition: 4,
                error_code: ErrorCode::None,
                leader_epoch: 3,
                end_offset: 300,
            }],
        }],
    };
    check_response(ApiKey::OffsetForLeaderEpoch, 7, response.into(), &golden);
}

#[test]
fn broker_registration() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x2E], // frame length 46
        &[0x04, 0x4C],             // api key 1100 (BrokerRegistration)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x01], // correlation id 1
        &[0x00, 0x01],
        b"b",                                              // client id "b"
        &[0x00, 0x00, 0x00, 0x01],                         // broker_id 1
        &[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF], // incarnation_id
        &[0x00, 0x0D],
        b"10.0.0.1:9092", // listener "10.0.0.1:9092"
        &[0x00, 0x02],
        b"r1",                     // rack "r1"
        &[0x00, 0x00, 0x00, 0x02], // shards 2
    ]);
    let request = BrokerRegistrationRequest {
        broker_id: 1,
        incarnation_id: 0x0123_4567_89AB_CDEF,
        listener: "10.0.0.1:9092".into(),
        rack: Some("r1".into()),
        shards: 2,
    };
    check_request(Some("b"), 1, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x16],                         // frame length 22
        &[0x00, 0x00, 0x00, 0x01],                         // correlation id 1
        &[0x00, 0x00],                                     // header error_code 0
        &[0x00, 0x00, 0x00, 0x00],                         // throttle_time_ms 0
        &[0x00, 0x00],                                     // error_code 0
        &[0xFF, 0xFF],                                     // error_message null
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A], // broker_epoch 42
    ]);
    let response = BrokerRegistrationResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None,
        error_message: None,
        broker_epoch: 42,
    };
    check_response(ApiKey::BrokerRegistration, 1, response.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x22], // frame length 34
        &[0x00, 0x00, 0x00, 0x01], // correlation id 1
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x33],             // error_code 51 (DuplicateBrokerRegistration)
        &[0x00, 0x0C],
        b"live session", // error_message "live session"
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // broker_epoch -1
    ]);
    let response = BrokerRegistrationResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::DuplicateBrokerRegistration,
        error_message: Some("live session".into()),
        broker_epoch: -1,
    };
    check_response(ApiKey::BrokerRegistration, 1, response.into(), &golden);
}

#[test]
fn broker_heartbeat() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x29], // frame length 41
        &[0x04, 0x4D],             // api key 1101 (BrokerHeartbeat)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0x00, 0x01],
        b"b",                                              // client id "b"
        &[0x00, 0x00, 0x00, 0x01],                         // broker_id 1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A], // broker_epoch 42
        &[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF], // incarnation_id
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2C], // metadata_offset 300
        &[0x00],                                           // want_fence false
        &[0x01],                                           // want_shutdown true
    ]);
    let request = BrokerHeartbeatRequest {
        broker_id: 1,
        broker_epoch: 42,
        incarnation_id: 0x0123_4567_89AB_CDEF,
        metadata_offset: 300,
        want_fence: false,
        want_shutdown: true,
    };
    check_request(Some("b"), 2, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x11], // frame length 17
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00],             // error_code 0
        &[0xFF, 0xFF],             // error_message null
        &[0x01],                   // is_caught_up true
        &[0x00],                   // is_fenced false
        &[0x01],                   // should_shutdown true
    ]);
    let response = BrokerHeartbeatResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None,
        error_message: None,
        is_caught_up: true,
        is_fenced: false,
        should_shutdown: true,
    };
    check_response(ApiKey::BrokerHeartbeat, 2, response.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x19], // frame length 25
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x64], // throttle_time_ms 100
        &[0x00, 0x30],             // error_code 48 (StaleBrokerEpoch)
        &[0x00, 0x08],
        b"epoch 41", // error_message "epoch 41"
        &[0x00],     // is_caught_up false
        &[0x01],     // is_fenced true
        &[0x00],     // should_shutdown false
    ]);
    let response = BrokerHeartbeatResponse {
        throttle_time_ms: 100,
        error_code: ErrorCode::StaleBrokerEpoch,
        error_message: Some("epoch 41".into()),
        is_caught_up: false,
        is_fenced: true,
        should_shutdown: false,
    };
    check_response(ApiKey::BrokerHeartbeat, 2, response.into(), &golden);

    // A bool other than 0 or 1 does not decode.
    let error =
        decode_request_frame(one_frame(&heartbeat_request_with_want_fence(0x02))).unwrap_err();
    assert_eq!(
        error.error,
        DecodeError::InvalidValue {
            what: "want_fence",
            value: 2
        }
    );
    assert_eq!(error.header.map(|h| h.correlation_id), Some(2));
    let (_, request) =
        decode_request_frame(one_frame(&heartbeat_request_with_want_fence(0x01))).unwrap();
    assert!(matches!(request, Request::BrokerHeartbeat(r) if r.want_fence));
}

/// A BrokerHeartbeat request frame whose `want_fence` byte is `byte`.
fn heartbeat_request_with_want_fence(byte: u8) -> Vec<u8> {
    cat(&[
        &[0x00, 0x00, 0x00, 0x28], // frame length 40
        &[0x04, 0x4D],             // api key 1101 (BrokerHeartbeat)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x02], // correlation id 2
        &[0xFF, 0xFF],             // client id null
        &[0x00, 0x00, 0x00, 0x01], // broker_id 1
        &[0x00; 8],                // broker_epoch 0
        &[0x00; 8],                // incarnation_id 0
        &[0xFF; 8],                // metadata_offset -1
        &[byte],                   // want_fence
        &[0x00],                   // want_shutdown false
    ])
}

#[test]
fn alter_partition() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x4E], // frame length 78
        &[0x04, 0x4E],             // api key 1102 (AlterPartition)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x03], // correlation id 3
        &[0x00, 0x01],
        b"b",                                              // client id "b"
        &[0x00, 0x00, 0x00, 0x01],                         // broker_id 1
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A], // broker_epoch 42
        &[0x00, 0x00, 0x00, 0x01],                         // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x02], //   partitions: 2
        &[0x00, 0x00, 0x00, 0x00], //     partition 0
        &[0x00, 0x00, 0x00, 0x05], //     leader_epoch 5
        &[0x00, 0x00, 0x00, 0x07], //     partition_epoch 7
        &[0x00, 0x00, 0x00, 0x02], //     new_isr: 2
        &[0x00, 0x00, 0x00, 0x01], //       1
        &[0x00, 0x00, 0x00, 0x02], //       2
        &[0x00, 0x00, 0x00, 0x03], //     partition 3
        &[0x00, 0x00, 0x00, 0x05], //     leader_epoch 5
        &[0x00, 0x00, 0x00, 0x09], //     partition_epoch 9
        &[0x00, 0x00, 0x00, 0x01], //     new_isr: 1
        &[0x00, 0x00, 0x00, 0x01], //       1
    ]);
    let request = AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: 42,
        topics: vec![AlterPartitionTopic {
            name: "t".into(),
            partitions: vec![
                AlterPartitionPartition {
                    partition: 0,
                    leader_epoch: 5,
                    partition_epoch: 7,
                    new_isr: vec![1, 2],
                },
                AlterPartitionPartition {
                    partition: 3,
                    leader_epoch: 5,
                    partition_epoch: 9,
                    new_isr: vec![1],
                },
            ],
        }],
    };
    check_request(Some("b"), 3, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x4B], // frame length 75
        &[0x00, 0x00, 0x00, 0x03], // correlation id 3
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00],             // error_code 0
        &[0x00, 0x00, 0x00, 0x01], // topics: 1
        &[0x00, 0x01],
        b"t",                      //   name "t"
        &[0x00, 0x00, 0x00, 0x02], //   partitions: 2
        &[0x00, 0x00, 0x00, 0x00], //     partition 0
        &[0x00, 0x00],             //     error_code 0
        &[0x00, 0x00, 0x00, 0x01], //     leader_id 1
        &[0x00, 0x00, 0x00, 0x05], //     leader_epoch 5
        &[0x00, 0x00, 0x00, 0x02], //     isr: 2
        &[0x00, 0x00, 0x00, 0x01], //       1
        &[0x00, 0x00, 0x00, 0x02], //       2
        &[0x00, 0x00, 0x00, 0x08], //     partition_epoch 8
        &[0x00, 0x00, 0x00, 0x03], //     partition 3
        &[0x00, 0x31],             //     error_code 49 (InvalidUpdateVersion)
        &[0xFF, 0xFF, 0xFF, 0xFF], //     leader_id -1
        &[0xFF, 0xFF, 0xFF, 0xFF], //     leader_epoch -1
        &[0x00, 0x00, 0x00, 0x00], //     isr: 0
        &[0xFF, 0xFF, 0xFF, 0xFF], //     partition_epoch -1
    ]);
    let response = AlterPartitionResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None,
        topics: vec![AlterPartitionTopicResponse {
            name: "t".into(),
            partitions: vec![
                AlterPartitionPartitionResponse {
                    partition: 0,
                    error_code: ErrorCode::None,
                    leader_id: 1,
                    leader_epoch: 5,
                    isr: vec![1, 2],
                    partition_epoch: 8,
                },
                AlterPartitionPartitionResponse {
                    partition: 3,
                    error_code: ErrorCode::InvalidUpdateVersion,
                    leader_id: -1,
                    leader_epoch: -1,
                    isr: vec![],
                    partition_epoch: -1,
                },
            ],
        }],
    };
    check_response(ApiKey::AlterPartition, 3, response.into(), &golden);

    // The whole request refused by the controller: the verdict is in the body.
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x10], // frame length 16
        &[0x00, 0x00, 0x00, 0x03], // correlation id 3
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x2F],             // error_code 47 (NotController)
        &[0x00, 0x00, 0x00, 0x00], // topics: 0
    ]);
    let response = AlterPartitionResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::NotController,
        topics: vec![],
    };
    check_response(ApiKey::AlterPartition, 3, response.into(), &golden);
}

#[test]
fn raft_message() {
    // The message is opaque to the codec: these bytes only look like a protobuf eraftpb::Message.
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x17], // frame length 23
        &[0x04, 0x4F],             // api key 1103 (RaftMessage)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x04], // correlation id 4
        &[0x00, 0x01],
        b"1",                                              // client id "1"
        &[0x00, 0x00, 0x00, 0x08],                         // message: 8 bytes
        &[0x08, 0x08, 0x10, 0x02, 0x18, 0x01, 0x20, 0x05], //   the raft message
    ]);
    let request = RaftMessageRequest {
        message: Bytes::from_static(&[0x08, 0x08, 0x10, 0x02, 0x18, 0x01, 0x20, 0x05]),
    };
    check_request(Some("1"), 4, request.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x08], // frame length 8
        &[0x00, 0x00, 0x00, 0x04], // correlation id 4
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00],             // error_code 0
    ]);
    let response = RaftMessageResponse {
        error_code: ErrorCode::None,
    };
    check_response(ApiKey::RaftMessage, 4, response.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x08], // frame length 8
        &[0x00, 0x00, 0x00, 0x04], // correlation id 4
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x2F],             // error_code 47 (NotController)
    ]);
    let response = RaftMessageResponse {
        error_code: ErrorCode::NotController,
    };
    check_response(ApiKey::RaftMessage, 4, response.into(), &golden);

    // A message length past the end of the frame, a null message, and a byte after the message
    // do not decode; the header survives each, so the broker can answer.
    for (message, error) in [
        (
            cat(&[&[0x00, 0x00, 0x00, 0x03], &[0xAA, 0xBB]]),
            DecodeError::Truncated {
                what: "message",
                need: 3,
                have: 2,
            },
        ),
        (
            cat(&[&[0xFF, 0xFF, 0xFF, 0xFF]]),
            DecodeError::UnexpectedNull { what: "message" },
        ),
        (
            cat(&[&[0x00, 0x00, 0x00, 0x01], &[0xAA], &[0x00]]),
            DecodeError::TrailingBytes { count: 1 },
        ),
    ] {
        let frame = raft_message_request_with_body(&message);
        let decoded = decode_request_frame(one_frame(&frame)).unwrap_err();
        assert_eq!(decoded.error, error);
        assert_eq!(decoded.error.error_code(), ErrorCode::InvalidRequest);
        assert_eq!(decoded.header.map(|h| h.correlation_id), Some(4));
    }
}

/// A RaftMessage request frame (correlation id 4, null client id) whose body is `body`.
fn raft_message_request_with_body(body: &[u8]) -> Vec<u8> {
    let frame_bytes = u32::try_from(10 + body.len()).unwrap();
    cat(&[
        &frame_bytes.to_be_bytes(), // frame length
        &[0x04, 0x4F],              // api key 1103 (RaftMessage)
        &[0x00, 0x00],              // api version 0
        &[0x00, 0x00, 0x00, 0x04],  // correlation id 4
        &[0xFF, 0xFF],              // client id null
        body,
    ])
}

#[test]
fn describe_cluster() {
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0A], // frame length 10
        &[0x04, 0x50],             // api key 1104 (DescribeCluster)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0xFF, 0xFF],             // client id null; no body
    ]);
    check_request(None, 5, DescribeClusterRequest {}.into(), &golden);

    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x27], // frame length 39
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00],             // error_code 0
        &[0xFF, 0xFF],             // error_message null
        &[0x00, 0x04],
        b"qv-1",                                           // cluster_id "qv-1"
        &[0x00, 0x00, 0x00, 0x02],                         // controller_id 2
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2C], // metadata_offset 300
        &[0x00, 0x00, 0x00, 0x03],                         // image: 3 bytes
        &[0x01],                                           //   image version 1
        b"{}",                                             //   JSON
    ]);
    let response = DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None,
        error_message: None,
        cluster_id: Some("qv-1".into()),
        controller_id: 2,
        metadata_offset: 300,
        image: Bytes::from_static(b"\x01{}"),
    };
    check_response(ApiKey::DescribeCluster, 5, response.into(), &golden);

    // Every cut of that response fails to decode (the frame-level view of a lying length).
    let frame = one_frame(&golden);
    for cut in 0..frame.len() {
        let result = decode_response_frame(frame.slice(..cut), ApiKey::DescribeCluster, 0);
        assert!(
            matches!(result, Err(DecodeError::Truncated { .. })),
            "cut at {cut}: {result:?}"
        );
    }

    // A broker without a cluster: no id, no controller, nothing applied, an empty image.
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x20], // frame length 32
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x0A], // throttle_time_ms 10
        &[0x00, 0x00],             // error_code 0
        &[0xFF, 0xFF],             // error_message null
        &[0xFF, 0xFF],             // cluster_id null
        &[0xFF, 0xFF, 0xFF, 0xFF], // controller_id -1
        &[0xFF; 8],                // metadata_offset -1
        &[0x00, 0x00, 0x00, 0x00], // image: 0 bytes
    ]);
    let response = DescribeClusterResponse {
        throttle_time_ms: 10,
        error_code: ErrorCode::None,
        error_message: None,
        cluster_id: None,
        controller_id: -1,
        metadata_offset: -1,
        image: Bytes::new(),
    };
    check_response(ApiKey::DescribeCluster, 5, response.into(), &golden);

    // The request has no body: a byte after the header is refused, the header kept.
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x0B], // frame length 11
        &[0x04, 0x50],             // api key 1104 (DescribeCluster)
        &[0x00, 0x00],             // api version 0
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0xFF, 0xFF],             // client id null
        &[0x01],                   // a byte no version-0 body has
    ]);
    let error = decode_request_frame(one_frame(&golden)).unwrap_err();
    assert_eq!(error.error, DecodeError::TrailingBytes { count: 1 });
    assert_eq!(error.header.map(|h| h.correlation_id), Some(5));

    // A null image does not decode.
    let golden = cat(&[
        &[0x00, 0x00, 0x00, 0x20], // frame length 32
        &[0x00, 0x00, 0x00, 0x05], // correlation id 5
        &[0x00, 0x00],             // header error_code 0
        &[0x00, 0x00, 0x00, 0x00], // throttle_time_ms 0
        &[0x00, 0x00],             // error_code 0
        &[0xFF, 0xFF],             // error_message null
        &[0xFF, 0xFF],             // cluster_id null
        &[0xFF, 0xFF, 0xFF, 0xFF], // controller_id -1
        &[0xFF; 8],                // metadata_offset -1
        &[0xFF, 0xFF, 0xFF, 0xFF], // image: null
    ]);
    let result = decode_response_frame(one_frame(&golden), ApiKey::DescribeCluster, 0);
    assert_eq!(result, Err(DecodeError::UnexpectedNull { what: "image" }));
}
