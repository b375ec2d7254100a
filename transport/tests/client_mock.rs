//! The SDK against a fake broker: two "shards" (two QUIC endpoints on two ports) sharing an
//! in-memory log, answering ApiVersions, Metadata, Produce, Fetch, ListOffsets and CreateTopics,
//! with scriptable faults. Checks routing to the owning shard, retries, failures, back-pressure
//! and that a consumer reads back what was produced, in order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quiver_transport::batch::{stamp, Compression, RecordBatch};
use quiver_transport::client::*;
use quiver_transport::protocol::*;
use quiver_transport::quic::stream::{read_frame, write_last_frame};
use quiver_transport::quic::{server_config, Identity, Trust, Tuning};

/// Every test finishes well within this, or fails.
const TEST_TIME_MAX: Duration = Duration::from_secs(20);
const SHARDS: usize = 2;

#[derive(Default)]
struct PartitionLog {
    /// Stamped batches, in offset order.
    batches: Vec<Bytes>,
    next_offset: i64,
}

/// A scripted error for the next `times` produce requests touching one partition.
struct Fault {
    topic: String,
    partition: i32,
    code: ErrorCode,
    times: usize,
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Vec<PartitionLog>>,
    faults: Vec<Fault>,
    /// (shard that received it, topic, partition) for every produced partition.
    produce_seen: Vec<(usize, String, i32)>,
    metadata_requests: usize,
    /// An api the broker pretends not to know.
    omit_api: Option<ApiKey>,
    /// Delay before answering produce requests.
    produce_delay: Duration,
    /// UDP port of each shard, for metadata answers.
    ports: [u16; SHARDS],
    /// Producer ids handed out so far (InitProducerId).
    producer_ids: i64,
    /// The error DescribeCluster answers with, if any.
    describe_cluster_error: Option<ErrorCode>,
}

struct Mock {
    state: Arc<Mutex<State>>,
    ports: [u16; SHARDS],
    dir: PathBuf,
    _endpoints: Vec<quinn::Endpoint>,
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Partition p is owned by shard p % 2.
fn owner(partition: i32) -> usize {
    partition as usize % SHARDS
}

impl Mock {
    async fn start(topics: &[(&str, usize)]) -> Mock {
        let dir = std::env::temp_dir().join(format!(
            "quiver-client-mock-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let (identity, created) = Identity::load_or_create_self_signed(&dir, &[]).unwrap();
        assert!(created);
        let config = server_config(&identity, &Tuning::default()).unwrap();
        let mut state = State::default();
        for (name, partitions) in topics {
            let logs = (0..*partitions).map(|_| PartitionLog::default()).collect();
            state.topics.insert(name.to_string(), logs);
        }
        let state = Arc::new(Mutex::new(state));
        let mut endpoints = Vec::new();
        let mut ports = [0; SHARDS];
        for (shard, port) in ports.iter_mut().enumerate() {
            let endpoint =
                quinn::Endpoint::server(config.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
            *port = endpoint.local_addr().unwrap().port();
            tokio::spawn(accept(endpoint.clone(), shard, state.clone()));
            endpoints.push(endpoint);
        }
        state.lock().unwrap().ports = ports;
        Mock {
            state,
            ports,
            dir,
            _endpoints: endpoints,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let trust = Trust::from_pem_file(&self.dir.join("cert.pem")).unwrap();
        ClientConfig {
            request_timeout: Duration::from_secs(5),
            ..ClientConfig::new(format!("127.0.0.1:{}", self.ports[0]), trust)
        }
    }

    fn fault(&self, topic: &str, partition: i32, code: ErrorCode, times: usize) {
        self.state.lock().unwrap().faults.push(Fault {
            topic: topic.into(),
            partition,
            code,
            times,
        });
    }

    fn records_in(&self, topic: &str, partition: usize) -> i64 {
        self.state.lock().unwrap().topics[topic][partition].next_offset
    }

    fn produce_seen(&self) -> Vec<(usize, String, i32)> {
        self.state.lock().unwrap().produce_seen.clone()
    }
}

async fn accept(endpoint: quinn::Endpoint, shard: usize, state: Arc<Mutex<State>>) {
    while let Some(incoming) = endpoint.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(serve_stream(shard, state.clone(), send, recv));
            }
        });
    }
}

async fn serve_stream(
    shard: usize,
    state: Arc<Mutex<State>>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    let Ok(Some(frame)) = read_frame(&mut recv, &mut decoder).await else {
        return;
    };
    let (header, request) = decode_request_frame(frame).expect("the SDK sends valid frames");
    let response = match request {
        Request::Produce(produce) => {
            let delay = state.lock().unwrap().produce_delay;
            tokio::time::sleep(delay).await;
            let response = handle_produce(shard, &state, &produce);
            if produce.acks == Acks::None {
                return;
            }
            Response::from(response)
        }
        Request::Fetch(fetch) => {
            let deadline =
                Instant::now() + Duration::from_millis(fetch.max_wait_ms.min(100) as u64);
            loop {
                let (response, bytes) = handle_fetch(&state, &fetch);
                if bytes > 0 || Instant::now() >= deadline {
                    break Response::from(response);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        other => handle_other(&state, other),
    };
    let chunks = encode_response_frame(
        &ResponseHeader {
            correlation_id: header.correlation_id,
        },
        header.api_version,
        &response,
        FRAME_BYTES_MAX_DEFAULT,
    )
    .unwrap();
    let _ = write_last_frame(&mut send, chunks).await;
}

fn handle_other(state: &Arc<Mutex<State>>, request: Request) -> Response {
    let mut state = state.lock().unwrap();
    let ports = state.ports;
    match request {
        Request::ApiVersions(_) => {
            let mut versions = ApiVersionsResponse::for_this_build(FRAME_BYTES_MAX_DEFAULT);
            if let Some(omit) = state.omit_api {
                versions.api_versions.retain(|v| v.api_key != omit.code());
            }
            versions.into()
        }
        Request::Metadata(metadata) => {
            state.metadata_requests += 1;
            let names: Vec<String> = match metadata.topics {
                Some(names) => names,
                None => state.topics.keys().cloned().collect(),
            };
            let topics = names
                .into_iter()
                .map(|name| match state.topics.get(&name) {
                    None => TopicMetadata {
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        name,
                        ..TopicMetadata::default()
                    },
                    Some(logs) => TopicMetadata {
                        error_code: ErrorCode::None,
                        name,
                        is_internal: false,
                        partitions: (0..logs.len() as i32)
                            .map(|p| PartitionMetadata {
                                error_code: ErrorCode::None,
                                partition: p,
                                leader_id: 0,
                                leader_epoch: 0,
                                leader_host: "127.0.0.1".into(),
                                leader_port: ports[0],
                                leader_shard: owner(p) as u16,
                                leader_shard_port: ports[owner(p)],
                                replicas: vec![0],
                                isr: vec![0],
                            })
                            .collect(),
                    },
                })
                .collect();
            MetadataResponse {
                throttle_time_ms: 0,
                cluster_id: Some("mock".into()),
                controller_id: 0,
                brokers: vec![BrokerMetadata {
                    broker_id: 0,
                    host: "127.0.0.1".into(),
                    port: ports[0],
                    shard_count: SHARDS as u16,
                }],
                topics,
            }
            .into()
        }
        Request::ListOffsets(list) => ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: list
                .topics
                .iter()
                .map(|t| ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let log = &state.topics[&t.name][p.partition as usize];
                            let offset = match p.timestamp {
                                OffsetSpec::Earliest => 0,
                                OffsetSpec::Latest => log.next_offset,
                                OffsetSpec::Timestamp(ts) => log
                                    .batches
                                    .iter()
                                    .flat_map(|b| RecordBatch::parse(b).unwrap().records().unwrap())
                                    .find(|r| r.timestamp >= ts)
                                    .map_or(log.next_offset, |r| r.offset),
                            };
                            ListOffsetsPartitionResponse {
                                partition: p.partition,
                                error_code: ErrorCode::None,
                                timestamp_ms: -1,
                                offset,
                                leader_epoch: 0,
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
        .into(),
        Request::CreateTopics(create) => {
            let mut results = Vec::new();
            for topic in create.topics {
                let exists = state.topics.contains_key(&topic.name);
                if !exists {
                    let logs = (0..topic.partition_count)
                        .map(|_| PartitionLog::default())
                        .collect();
                    state.topics.insert(topic.name.clone(), logs);
                }
                results.push(CreatedTopic {
                    error_message: exists.then(|| format!("topic {} already exists", topic.name)),
                    name: topic.name,
                    error_code: if exists {
                        ErrorCode::TopicAlreadyExists
                    } else {
                        ErrorCode::None
                    },
                    partition_count: topic.partition_count,
                    replication_factor: 1,
                });
            }
            CreateTopicsResponse {
                throttle_time_ms: 0,
                topics: results,
            }
            .into()
        }
        Request::InitProducerId(_) => {
            let producer_id = 1000 + state.producer_ids;
            state.producer_ids += 1;
            InitProducerIdResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                producer_id,
                producer_epoch: 0,
            }
            .into()
        }
        Request::DescribeCluster(DescribeClusterRequest {}) => match state.describe_cluster_error {
            None => DescribeClusterResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                cluster_id: Some("mock".into()),
                controller_id: 0,
                metadata_offset: 41,
                image: Bytes::from_static(b"\x01{}"),
            }
            .into(),
            Some(code) => DescribeClusterResponse {
                error_code: code,
                error_message: Some("image unavailable".into()),
                controller_id: -1,
                metadata_offset: -1,
                ..DescribeClusterResponse::default()
            }
            .into(),
        },
        _ => Response::Rejected(ErrorCode::InvalidRequest),
    }
}

/// (producer id, base sequence) of every batch stored in `topic`/`partition`, in order.
fn stored_stamps(mock: &Mock, topic: &str, partition: i32) -> Vec<(i64, i32)> {
    let state = mock.state.lock().unwrap();
    state.topics[topic][partition as usize]
        .batches
        .iter()
        .map(|b| {
            let view = RecordBatch::parse(b).unwrap();
            (view.header().producer_id(), view.header().base_sequence())
        })
        .collect()
}

fn handle_produce(
    shard: usize,
    state: &Arc<Mutex<State>>,
    produce: &ProduceRequest,
) -> ProduceResponse {
    let mut state = state.lock().unwrap();
    let mut topics = Vec::new();
    for topic in &produce.topics {
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            state
                .produce_seen
                .push((shard, topic.name.clone(), p.partition));
            let fault = state
                .faults
                .iter_mut()
                .find(|f| f.topic == topic.name && f.partition == p.partition && f.times > 0);
            if let Some(fault) = fault {
                fault.times -= 1;
                partitions.push(ProducePartitionResponse {
                    partition: p.partition,
                    error_code: fault.code,
                    error_message: Some("scripted fault".into()),
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: -1,
                });
                continue;
            }
            let log = &mut state.topics.get_mut(&topic.name).unwrap()[p.partition as usize];
            let base_offset = log.next_offset;
            let mut at = 0;
            while at < p.records.len() {
                let (batch, len) = RecordBatch::parse_prefix(&p.records[at..]).unwrap();
                let count = i64::from(batch.header().last_offset_delta()) + 1;
                let mut stored = BytesMut::from(&p.records[at..at + len]);
                stamp(&mut stored, log.next_offset, 0);
                log.batches.push(stored.freeze());
                log.next_offset += count;
                at += len;
            }
            partitions.push(ProducePartitionResponse {
                partition: p.partition,
                error_code: ErrorCode::None,
                error_message: None,
                base_offset,
                log_append_time_ms: -1,
                log_start_offset: 0,
            });
        }
        topics.push(ProduceTopicResponse {
            name: topic.name.clone(),
            partitions,
        });
    }
    ProduceResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// The fetch answer and how many record bytes it holds.
fn handle_fetch(state: &Arc<Mutex<State>>, fetch: &FetchRequest) -> (FetchResponse, usize) {
    let state = state.lock().unwrap();
    let mut total = 0;
    let topics = fetch
        .topics
        .iter()
        .map(|t| FetchTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let log = &state.topics[&t.name][p.partition as usize];
                    let mut records = Records::new();
                    let mut error_code = ErrorCode::None;
                    if p.fetch_offset > log.next_offset {
                        error_code = ErrorCode::OffsetOutOfRange;
                    } else {
                        for batch in &log.batches {
                            let parsed = RecordBatch::parse(batch).unwrap();
                            if parsed.next_offset() <= p.fetch_offset {
                                continue;
                            }
                            if !records.is_empty()
                                && records.len_bytes() + batch.len()
                                    > p.partition_max_bytes as usize
                            {
                                break;
                            }
                            records.push(batch.clone());
                        }
                    }
                    total += records.len_bytes();
                    FetchPartitionResponse {
                        partition: p.partition,
                        error_code,
                        high_watermark: log.next_offset,
                        last_stable_offset: -1,
                        log_start_offset: 0,
                        aborted_transactions: Vec::new(),
                        records,
                    }
                })
                .collect(),
        })
        .collect();
    (
        FetchResponse {
            throttle_time_ms: 0,
            topics,
        },
        total,
    )
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIME_MAX, test)
        .await
        .expect("test exceeded its time limit");
}

/// Polls until `count` records arrived (or the test times out).
async fn consume(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    while records.len() < count {
        records.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_routes_to_owning_shards_and_reads_back_in_order() {
    bounded(async {
        let mock = Mock::start(&[("orders", 4)]).await;
        let producer = Producer::connect(mock.client_config(), ProducerConfig::default())
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..200 {
            let key = format!("key-{}", i % 13);
            let record = ProducerRecord::new("orders", format!("value-{i}")).with_key(key.clone());
            deliveries.push((key, producer.send(record).await.unwrap()));
        }
        let mut next_offset = [0i64; 4];
        let mut sent: Vec<Vec<String>> = vec![Vec::new(); 4];
        for (i, (key, delivery)) in deliveries.into_iter().enumerate() {
            let meta = delivery.await.unwrap();
            assert_eq!(meta.partition, partition_for_key(key.as_bytes(), 4));
            let p = meta.partition as usize;
            assert_eq!(meta.offset, next_offset[p], "offsets follow send order");
            next_offset[p] += 1;
            sent[p].push(format!("value-{i}"));
        }
        producer.close().await.unwrap();
        // Every produce for partition p went to the port of shard p % 2, and both shards
        // were used.
        let seen = mock.produce_seen();
        assert!(!seen.is_empty());
        for (shard, topic, partition) in &seen {
            assert_eq!(
                *shard,
                owner(*partition),
                "{topic}-{partition} sent to shard {shard}"
            );
        }
        assert!(seen.iter().any(|s| s.0 == 0) && seen.iter().any(|s| s.0 == 1));

        let config = ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            max_wait: Duration::from_millis(50),
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::connect(mock.client_config(), config.clone())
            .await
            .unwrap();
        let all: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("orders", p)).collect();
        consumer.assign(all.clone());
        let records = consume(&mut consumer, 200).await;
        assert_eq!(records.len(), 200);
        let mut got: Vec<Vec<String>> = vec![Vec::new(); 4];
        let mut expected_offset = [0i64; 4];
        for r in &records {
            let p = r.partition as usize;
            assert_eq!(r.offset, expected_offset[p], "in order, no gaps");
            expected_offset[p] += 1;
            got[p].push(String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap());
        }
        assert_eq!(got, sent);
        for tp in &all {
            assert_eq!(
                consumer.position(tp).await.unwrap(),
                next_offset[tp.partition as usize]
            );
        }

        // Seeking inside a batch skips the records before the offset.
        let busiest = (0..4).max_by_key(|&p| next_offset[p]).unwrap();
        let tp = TopicPartition::new("orders", busiest as i32);
        let mut consumer = Consumer::connect(mock.client_config(), config)
            .await
            .unwrap();
        consumer.assign(vec![tp.clone()]);
        consumer.seek(&tp, 3).unwrap();
        let records = consumer.poll(Duration::from_secs(2)).await.unwrap();
        assert_eq!(records[0].offset, 3);
        assert_eq!(
            records[0].value.as_deref(),
            Some(sent[busiest][3].as_bytes())
        );
        // Latest: nothing new.
        consumer
            .seek_to_end(std::slice::from_ref(&tp))
            .await
            .unwrap();
        assert_eq!(consumer.position(&tp).await.unwrap(), next_offset[busiest]);
        assert!(consumer
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_error_is_retried_and_delivered_once() {
    bounded(async {
        let mock = Mock::start(&[("t", 2)]).await;
        mock.fault("t", 1, ErrorCode::NotLeaderOrFollower, 1);
        let config = ProducerConfig {
            retry_backoff: Duration::from_millis(20),
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(mock.client_config(), config)
            .await
            .unwrap();
        let metadata_before = mock.state.lock().unwrap().metadata_requests;
        let meta = producer
            .send(ProducerRecord::new("t", "once").with_partition(1))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!((meta.partition, meta.offset), (1, 0));
        assert_eq!(mock.records_in("t", 1), 1, "delivered exactly once");
        let attempts = mock.produce_seen().iter().filter(|s| s.2 == 1).count();
        assert_eq!(attempts, 2, "one failure, one retry");
        let metadata_after = mock.state.lock().unwrap().metadata_requests;
        assert!(
            metadata_after > metadata_before,
            "NotLeaderOrFollower refreshes metadata"
        );
        producer.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sequence_is_resent_under_a_fresh_producer_id() {
    bounded(async {
        let mock = Mock::start(&[("t", 2)]).await;
        let config = ProducerConfig {
            retry_backoff: Duration::from_millis(20),
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(mock.client_config(), config)
            .await
            .unwrap();
        let first = producer.identity().expect("idempotent by default");
        let send = |v: &'static str| {
            let producer = producer.clone();
            async move {
                producer
                    .send(ProducerRecord::new("t", v).with_partition(0))
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(send("a").await.offset, 0);
        assert_eq!(send("b").await.offset, 1);
        // The broker lost the producer's place: the next batch is refused once.
        mock.fault("t", 0, ErrorCode::OutOfOrderSequenceNumber, 1);
        assert_eq!(send("c").await.offset, 2, "delivered after re-stamping");
        assert_eq!(send("d").await.offset, 3);
        let stamps = stored_stamps(&mock, "t", 0);
        let second = stamps[2].0;
        assert_ne!(second, first.id, "a fresh producer id");
        assert_eq!(
            stamps,
            vec![(first.id, 0), (first.id, 1), (second, 0), (second, 1)],
            "sequences restart at 0 under the new id"
        );
        assert_eq!(mock.records_in("t", 0), 4, "nothing duplicated");
        producer.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_fails_at_the_delivery_timeout() {
    bounded(async {
        let mock = Mock::start(&[("t", 2)]).await;
        let config = ProducerConfig {
            request_timeout: Duration::from_secs(60),
            delivery_timeout: Duration::from_millis(800),
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(mock.client_config(), config)
            .await
            .unwrap();
        // Answers come after the delivery timeout, long before the request timeout.
        mock.state.lock().unwrap().produce_delay = Duration::from_secs(8);
        let started = Instant::now();
        let result = producer
            .send(ProducerRecord::new("t", "slow").with_partition(0))
            .await
            .unwrap()
            .await;
        assert!(
            matches!(result, Err(ClientError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "failed after {:?}, not at the delivery timeout",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retriable_error_fails_the_future() {
    bounded(async {
        let mock = Mock::start(&[("t", 2)]).await;
        mock.fault("t", 0, ErrorCode::CorruptMessage, 1);
        let producer = Producer::connect(mock.client_config(), ProducerConfig::default())
            .await
            .unwrap();
        let err = producer
            .send(ProducerRecord::new("t", "bad").with_partition(0))
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::CorruptMessage));
        assert!(err.to_string().contains("scripted fault"), "{err}");
        assert_eq!(mock.produce_seen().len(), 1, "not retried");
        // The partition is usable again afterwards.
        let meta = producer
            .send(ProducerRecord::new("t", "good").with_partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(meta.offset, 0);
        // Invalid partitions and oversized records are refused before sending.
        let err = producer
            .send(ProducerRecord::new("t", "x").with_partition(9))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
        let err = producer
            .send(ProducerRecord::new("t", vec![0u8; 2 << 20]))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ClientError::RecordTooLarge {
                limit: "max_request_size",
                ..
            }
        ));
        assert_eq!(mock.produce_seen().len(), 2);
        producer.close().await.unwrap();
        let err = producer
            .send(ProducerRecord::new("t", "late"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Closed));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_acks_zero_records_read_back() {
    bounded(async {
        let mock = Mock::start(&[("z", 2)]).await;
        let config = ProducerConfig {
            acks: Acks::None,
            compression: Compression::Zstd,
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(mock.client_config(), config)
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..50 {
            // No key: sticky partitioning.
            let record = ProducerRecord::new("z", format!("compressed-{i}"))
                .with_header("n", Some(i.to_string()));
            deliveries.push(producer.send(record).await.unwrap());
        }
        producer.flush().await.unwrap();
        for delivery in deliveries {
            assert_eq!(
                delivery.await.unwrap().offset,
                -1,
                "acks=0 reports no offset"
            );
        }
        producer.close().await.unwrap();
        // acks=0 gets no answer; the data may still be in flight: wait for it.
        let start = Instant::now();
        while mock.records_in("z", 0) + mock.records_in("z", 1) < 50 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "records never arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut consumer = Consumer::connect(
            mock.client_config(),
            ConsumerConfig {
                auto_offset_reset: OffsetReset::Earliest,
                ..ConsumerConfig::default()
            },
        )
        .await
        .unwrap();
        consumer.assign(vec![
            TopicPartition::new("z", 0),
            TopicPartition::new("z", 1),
        ]);
        let records = consume(&mut consumer, 50).await;
        let mut values: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        values.sort_by_key(|v| v[11..].parse::<u32>().unwrap());
        let expected: Vec<String> = (0..50).map(|i| format!("compressed-{i}")).collect();
        assert_eq!(values, expected);
        assert!(records.iter().all(|r| r.headers.len() == 1));
        let stored = mock.state.lock().unwrap().topics["z"]
            .iter()
            .flat_map(|log| log.batches.clone())
            .collect::<Vec<_>>();
        for batch in stored {
            let batch = RecordBatch::parse(&batch).unwrap();
            assert_eq!(batch.compression().unwrap(), Compression::Zstd);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_waits_for_buffer_memory() {
    bounded(async {
        let mock = Mock::start(&[("slow", 1)]).await;
        mock.state.lock().unwrap().produce_delay = Duration::from_millis(500);
        let config = ProducerConfig {
            buffer_memory: 4096,
            batch_size: 1024,
            linger: Duration::ZERO,
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(mock.client_config(), config)
            .await
            .unwrap();
        // Each record reserves ~600 bytes: 6 fit in 4 KiB; the 7th must wait for the first
        // responses, which take 500 ms.
        let mut deliveries = Vec::new();
        for _ in 0..6 {
            deliveries.push(
                producer
                    .send(ProducerRecord::new("slow", vec![1u8; 500]))
                    .await
                    .unwrap(),
            );
        }
        let blocked = tokio::time::timeout(
            Duration::from_millis(200),
            producer.send(ProducerRecord::new("slow", vec![2u8; 500])),
        )
        .await;
        assert!(
            blocked.is_err(),
            "send must wait while buffer memory is used up"
        );
        let started = Instant::now();
        let delivery = producer
            .send(ProducerRecord::new("slow", vec![3u8; 500]))
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        deliveries.push(delivery);
        for delivery in deliveries {
            delivery.await.unwrap();
        }
        producer.close().await.unwrap();
        assert_eq!(mock.records_in("slow", 0), 7);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_errors_are_typed_and_missing_apis_are_named() {
    bounded(async {
        let mock = Mock::start(&[("exists", 1)]).await;
        let admin = Admin::connect(mock.client_config()).await.unwrap();
        admin.create_topic(NewTopic::new("fresh", 3)).await.unwrap();
        let err = admin
            .create_topic(NewTopic::new("exists", 1))
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::TopicAlreadyExists));
        assert!(
            err.to_string().contains("topic exists already exists"),
            "{err}"
        );
        let offsets = admin
            .list_offsets(&[(TopicPartition::new("fresh", 2), OffsetSpec::Latest)])
            .await
            .unwrap();
        assert_eq!(offsets[&TopicPartition::new("fresh", 2)].offset, 0);
        let metadata = admin.metadata(Some(vec!["fresh".into()])).await.unwrap();
        assert_eq!(metadata.topics[0].partitions.len(), 3);

        // A broker that lacks Fetch: the consumer says so instead of failing obscurely.
        let mock = Mock::start(&[("t", 1)]).await;
        mock.state.lock().unwrap().omit_api = Some(ApiKey::Fetch);
        let err = Consumer::connect(mock.client_config(), ConsumerConfig::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::UnsupportedApi {
                    api: ApiKey::Fetch,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("Fetch"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_returns_the_answer_or_a_typed_error() {
    bounded(async {
        let mock = Mock::start(&[]).await;
        let admin = Admin::connect(mock.client_config()).await.unwrap();
        let cluster = admin.describe_cluster().await.unwrap();
        assert_eq!(cluster.cluster_id.as_deref(), Some("mock"));
        assert_eq!(cluster.controller_id, 0);
        assert_eq!(cluster.metadata_offset, 41);
        assert_eq!(&cluster.image[..], b"\x01{}");

        mock.state.lock().unwrap().describe_cluster_error = Some(ErrorCode::Unknown);
        let err = admin.describe_cluster().await.unwrap_err();
        assert!(
            matches!(
                &err,
                ClientError::Broker {
                    code: ErrorCode::Unknown,
                    message: Some(m),
                    topic: None,
                    partition: None,
                } if m == "image unavailable"
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("image unavailable"), "{err}");
    })
    .await;
}
