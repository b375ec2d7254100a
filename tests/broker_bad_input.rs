//! Bad input against a real `quiver broker` process (issue "Broker over QUIC", item 6): frames
//! that are garbage, too large or cut off, a client that vanishes mid-request, produce requests
//! naming an unknown topic or partition, batches with a bad CRC or above `max.message.bytes`,
//! and a full disk. Each gets a clear error code; the broker keeps serving, loses nothing it
//! acknowledged, and never dies.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::broker::BrokerProcess;
use quiver_transport::batch::{BatchBuilder, Compression};
use quiver_transport::client::{Admin, ClientConfig, NewTopic};
use quiver_transport::protocol::*;
use quiver_transport::quic::{self, Trust, Tuning};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A bare QUIC connection to one shard, speaking frames by hand.
struct Raw {
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    next_correlation: u32,
}

impl Raw {
    async fn connect(broker: &BrokerProcess) -> Raw {
        let trust = Trust::from_pem_file(&broker.ca()).expect("ca");
        let config = quic::client_config(&trust, &Tuning::default()).expect("client config");
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("endpoint");
        endpoint.set_default_client_config(config);
        let addr: SocketAddr = broker.bootstrap().parse().unwrap();
        let conn = endpoint
            .connect(addr, "127.0.0.1")
            .expect("connect")
            .await
            .expect("handshake");
        Raw {
            _endpoint: endpoint,
            conn,
            next_correlation: 1,
        }
    }

    /// Sends `bytes` on a new stream, finishes it, and returns the response frame (if any).
    async fn exchange(&self, bytes: &[u8]) -> Option<Bytes> {
        let (mut send, mut recv) = self.conn.open_bi().await.expect("open stream");
        send.write_all(bytes).await.expect("write");
        send.finish().expect("finish");
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        tokio::time::timeout(
            Duration::from_secs(10),
            quic::stream::read_frame(&mut recv, &mut decoder),
        )
        .await
        .expect("the broker answers within 10 s")
        .ok()
        .flatten()
    }

    async fn request(&mut self, request: Request) -> Response {
        let header = RequestHeader {
            api_key: request.api_key().code(),
            api_version: 0,
            correlation_id: self.next_correlation,
            client_id: Some("bad-input-test".into()),
        };
        self.next_correlation += 1;
        let chunks =
            encode_request_frame(&header, &request, FRAME_BYTES_MAX_DEFAULT).expect("encode");
        let bytes = concat_chunks(&chunks);
        let frame = self.exchange(&bytes).await.expect("a response frame");
        let (got, response) =
            decode_response_frame(frame, request.api_key(), 0).expect("response decodes");
        assert_eq!(got.correlation_id, header.correlation_id);
        response
    }

    async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> ProducePartitionResponse {
        let response = self
            .request(Request::from(ProduceRequest {
                transactional_id: None,
                acks: Acks::Leader,
                timeout_ms: 10_000,
                topics: vec![ProduceTopic {
                    name: topic.into(),
                    partitions: vec![ProducePartition { partition, records }],
                }],
            }))
            .await;
        let Response::Produce(mut response) = response else {
            panic!("not a produce response: {response:?}")
        };
        response.topics.remove(0).partitions.remove(0)
    }

    async fn assert_alive(&mut self) {
        let response = self
            .request(Request::from(MetadataRequest { topics: None }))
            .await;
        assert!(
            matches!(response, Response::Metadata(_)),
            "metadata after bad input: {response:?}"
        );
    }
}

fn batch(records: usize, value_bytes: usize) -> BytesMut {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; value_bytes];
    for i in 0..records {
        b.push(1_700_000_000_000 + i as i64, Some(b"k"), Some(&value), &[]);
    }
    b.build().expect("batch builds")
}

fn rejected_code(frame: &Bytes) -> i16 {
    // A frame as the decoder gives it (length prefix removed): u32 correlation id, i16 error.
    assert!(frame.len() >= 6, "response frame too short: {frame:?}");
    i16::from_be_bytes([frame[4], frame[5]])
}

async fn create(broker: &BrokerProcess, topic: NewTopic) {
    let trust = Trust::from_pem_file(&broker.ca()).expect("ca");
    let admin = Admin::connect(ClientConfig::new(broker.bootstrap(), trust))
        .await
        .expect("admin");
    admin.create_topic(topic).await.expect("create topic");
}

#[test]
fn malformed_frames_get_errors_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), 2, &[]);
    runtime().block_on(async {
        let mut raw = Raw::connect(&broker).await;

        // A well-framed body of garbage: the request is rejected as a whole.
        let mut garbage = vec![0u8; 4];
        garbage.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
        let len = (garbage.len() - 4) as u32;
        garbage[..4].copy_from_slice(&len.to_be_bytes());
        let frame = raw.exchange(&garbage).await.expect("an answer to garbage");
        assert_ne!(rejected_code(&frame), 0, "garbage accepted");

        // An unknown api key.
        let mut unknown = Vec::new();
        unknown.extend_from_slice(&14u32.to_be_bytes());
        unknown.extend_from_slice(&0xEEEEu16.to_be_bytes());
        unknown.extend_from_slice(&0u16.to_be_bytes());
        unknown.extend_from_slice(&9u32.to_be_bytes());
        unknown.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, 0]);
        let frame = raw
            .exchange(&unknown)
            .await
            .expect("an answer to an unknown api");
        assert_ne!(rejected_code(&frame), 0);

        // A length prefix above the frame limit.
        let frame = raw
            .exchange(&u32::MAX.to_be_bytes())
            .await
            .expect("an answer to a huge frame");
        assert_eq!(rejected_code(&frame), ErrorCode::MessageTooLarge.code());

        // A frame cut off by the end of the stream.
        let mut cut = 100u32.to_be_bytes().to_vec();
        cut.extend_from_slice(&[1, 2, 3]);
        let frame = raw
            .exchange(&cut)
            .await
            .expect("an answer to a truncated frame");
        assert_eq!(rejected_code(&frame), ErrorCode::InvalidRequest.code());

        // A client that vanishes mid-request.
        {
            let gone = Raw::connect(&broker).await;
            let (mut send, _recv) = gone.conn.open_bi().await.unwrap();
            send.write_all(&1000u32.to_be_bytes()).await.unwrap();
            send.write_all(&[0u8; 10]).await.unwrap();
            gone.conn.close(0u32.into(), b"vanish");
        }
        raw.assert_alive().await;
    });
    assert!(
        broker.stop().success(),
        "the broker must survive malformed input and stop cleanly"
    );
}

#[test]
fn bad_produce_requests_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), 2, &[]);
    runtime().block_on(async {
        create(
            &broker,
            NewTopic::new("small", 2).config("max.message.bytes", "2048"),
        )
        .await;
        let mut raw = Raw::connect(&broker).await;

        let ok = raw.produce("small", 0, batch(3, 10).freeze()).await;
        assert_eq!(ok.error_code, ErrorCode::None, "{:?}", ok.error_message);
        assert_eq!(ok.base_offset, 0);

        let r = raw.produce("no-such-topic", 0, batch(1, 10).freeze()).await;
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition);
        let r = raw.produce("small", 7, batch(1, 10).freeze()).await;
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition);
        let r = raw.produce("small", -1, batch(1, 10).freeze()).await;
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition);

        let mut corrupt = batch(2, 10);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x40;
        let r = raw.produce("small", 0, corrupt.freeze()).await;
        assert_eq!(r.error_code, ErrorCode::CorruptMessage);

        let r = raw.produce("small", 1, batch(4, 1000).freeze()).await;
        assert_eq!(r.error_code, ErrorCode::MessageTooLarge);

        let r = raw
            .produce("small", 1, Bytes::from_static(b"not a batch at all"))
            .await;
        assert_ne!(r.error_code, ErrorCode::None);

        // Nothing of the rejected batches was appended; the good one still follows offset 2.
        let ok = raw.produce("small", 0, batch(1, 10).freeze()).await;
        assert_eq!(ok.error_code, ErrorCode::None);
        assert_eq!(ok.base_offset, 3);
        let ok = raw.produce("small", 1, batch(1, 10).freeze()).await;
        assert_eq!(ok.base_offset, 0, "a rejected batch took offsets");
        raw.assert_alive().await;
    });
    assert!(broker.stop().success());
}

/// A small ext4 file system on a loop device, unmounted on drop.
struct SmallDisk {
    mount: std::path::PathBuf,
}

impl SmallDisk {
    fn new(dir: &std::path::Path, mib: u64) -> SmallDisk {
        let image = dir.join("disk.img");
        let mount = dir.join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(mib << 20).unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
            assert!(
                out.status.success(),
                "{cmd:?} failed (this test needs root and loop devices): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("mkfs.ext4").arg("-q").arg("-F").arg(&image));
        run(Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(&image)
            .arg(&mount));
        SmallDisk { mount }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

#[test]
fn a_full_disk_fails_produce_clearly_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(dir.path(), 48);
    let data = disk.mount.join("data");
    let broker = BrokerProcess::start(&data, 1, &[]);
    runtime().block_on(async {
        create(
            &broker,
            NewTopic::new("fill", 1).config("segment.bytes", "8388608"),
        )
        .await;
        let mut raw = Raw::connect(&broker).await;
        let mut acked = 0i64;
        let mut full = None;
        for _ in 0..2000 {
            let r = raw.produce("fill", 0, batch(64, 1000).freeze()).await;
            if r.error_code == ErrorCode::None {
                assert_eq!(r.base_offset, acked, "offsets must stay contiguous");
                acked += 64;
            } else {
                full = Some(r);
                break;
            }
        }
        let full = full.expect("48 MiB filled up without an error");
        assert_eq!(
            full.error_code,
            ErrorCode::StorageFull,
            "{:?}",
            full.error_message
        );
        assert!(acked > 0);
        raw.assert_alive().await;

        // Everything acknowledged reads back.
        let mut next = 0i64;
        while next < acked {
            let response = raw
                .request(Request::from(FetchRequest {
                    replica_id: -1,
                    max_wait_ms: 0,
                    min_bytes: 0,
                    max_bytes: 4 << 20,
                    isolation_level: IsolationLevel::ReadUncommitted,
                    topics: vec![FetchTopic {
                        name: "fill".into(),
                        partitions: vec![FetchPartition {
                            partition: 0,
                            current_leader_epoch: -1,
                            fetch_offset: next,
                            log_start_offset: -1,
                            partition_max_bytes: 4 << 20,
                        }],
                    }],
                }))
                .await;
            let Response::Fetch(response) = response else {
                panic!("{response:?}")
            };
            let p = &response.topics[0].partitions[0];
            assert_eq!(p.error_code, ErrorCode::None);
            let bytes = p.records.to_bytes();
            assert!(!bytes.is_empty(), "no data at offset {next} of {acked}");
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let len = quiver_transport::batch::peek_batch_len(rest).expect("whole batches");
                let view =
                    quiver_transport::batch::RecordBatch::parse(&rest[..len]).expect("valid batch");
                assert!(view.base_offset() <= next && next <= view.last_offset());
                next = view.last_offset() + 1;
                rest = &rest[len..];
            }
        }
    });
    assert!(
        broker.stop().success(),
        "the broker must stop cleanly even with a full disk"
    );
}
