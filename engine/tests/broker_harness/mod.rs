//! In-process broker harness: N real shards, each on its own glommio executor thread, driven
//! like the QUIC shell drives them (one frame in, encoded chunks out), from a driver executor
//! on the test thread. Frames travel over glommio shared channels, replies come back the same
//! way, so nothing here depends on foreign-thread wake-ups.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use glommio::channels::shared_channel::{self, ConnectedSender};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use quiver_engine::batch::{BatchBuilder, Compression};
use quiver_engine::broker::{self, BrokerConfig, ShardBroker, ShardMetrics};
use quiver_engine::shard::sync::{oneshot, OneshotSender};
use quiver_transport::protocol::*;

pub const IO_MEMORY_BYTES: usize = 512 << 10;
/// Longest any single request may take in these tests before the test fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub fn scratch(name: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .expect("scratch dir")
}

/// Small logs so many partitions fit the test machine.
pub fn test_config(dir: &Path, shards: usize) -> BrokerConfig {
    let mut config = BrokerConfig::new(dir, shards);
    config.base_port = 7000;
    config.log.write_chunk_bytes = 64 << 10;
    config.log.preallocate_bytes = 1 << 20;
    config.log.cache_bytes_max = 1 << 20;
    config.log.read_io_bytes = 64 << 10;
    config.retention_check_interval_ms = 3_600_000;
    config
}

enum Cmd {
    Frame(u64, Bytes),
    Metrics(u64),
    Shutdown(u64),
}

enum Out {
    Frame(Option<Vec<Bytes>>),
    Metrics(Box<ShardMetrics>),
    Stopped,
}

/// A running broker of N shards.
pub struct Cluster {
    senders: Vec<ConnectedSender<Cmd>>,
    pending: Rc<RefCell<HashMap<u64, OneshotSender<Out>>>>,
    next: Cell<u64>,
    threads: RefCell<Vec<ExecutorJoinHandle<()>>>,
    pub config: BrokerConfig,
}

/// Runs `f` on a driver executor on this thread.
pub fn drive<F: Future<Output = ()>>(f: impl FnOnce() -> F) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("test-driver")
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .expect("driver executor")
        .run(f());
}

impl Cluster {
    /// Prepares and starts every shard; resolves once they all serve.
    pub async fn start(config: BrokerConfig) -> Cluster {
        let seeds = broker::prepare(&config).expect("prepare");
        let pending: Rc<RefCell<HashMap<u64, OneshotSender<Out>>>> = Rc::default();
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for seed in seeds {
            let shard = seed.shard();
            let (cmd_tx, cmd_rx) = shared_channel::new_bounded::<Cmd>(256);
            let (out_tx, out_rx) = shared_channel::new_bounded::<(u64, Out)>(256);
            let handle = LocalExecutorBuilder::new(Placement::Unbound)
                .name(&format!("test-shard-{shard}"))
                .io_memory(IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let broker = ShardBroker::start(seed).await.expect("shard start");
                    let cmds = cmd_rx.connect().await;
                    let out = Rc::new(out_tx.connect().await);
                    while let Some(cmd) = cmds.recv().await {
                        match cmd {
                            Cmd::Frame(tag, frame) => {
                                let (b, out) = (broker.clone(), out.clone());
                                glommio::spawn_local(async move {
                                    let reply = b.handle_frame(frame).await;
                                    let _ = out.send((tag, Out::Frame(reply))).await;
                                })
                                .detach();
                            }
                            Cmd::Metrics(tag) => {
                                let m = Box::new(broker.metrics());
                                let _ = out.send((tag, Out::Metrics(m))).await;
                            }
                            Cmd::Shutdown(tag) => {
                                broker.shutdown().await;
                                let _ = out.send((tag, Out::Stopped)).await;
                                break;
                            }
                        }
                    }
                })
                .expect("spawn shard");
            threads.push(handle);
            senders.push(glommio::spawn_local(cmd_tx.connect()).detach());
            let pending = pending.clone();
            glommio::spawn_local(async move {
                let rx = out_rx.connect().await;
                while let Some((tag, out)) = rx.recv().await {
                    let waiter = pending.borrow_mut().remove(&tag);
                    if let Some(tx) = waiter {
                        tx.send(out);
                    }
                }
            })
            .detach();
        }
        let mut connected = Vec::new();
        for s in senders {
            connected.push(s.await.expect("connect"));
        }
        Cluster {
            senders: connected,
            pending,
            next: Cell::new(1),
            threads: RefCell::new(threads),
            config,
        }
    }

    async fn ask(&self, shard: usize, make: impl FnOnce(u64) -> Cmd) -> Out {
        let tag = self.next.get();
        self.next.set(tag + 1);
        let (tx, rx) = oneshot();
        self.pending.borrow_mut().insert(tag, tx);
        assert!(
            self.senders[shard].send(make(tag)).await.is_ok(),
            "shard {shard} is gone"
        );
        let out = futures_lite::future::or(rx, async {
            glommio::timer::sleep(REQUEST_TIMEOUT).await;
            None
        })
        .await;
        out.unwrap_or_else(|| panic!("shard {shard} did not answer within {REQUEST_TIMEOUT:?}"))
    }

    /// Sends a raw frame (without its length prefix) to `shard`.
    pub async fn raw(&self, shard: usize, frame: Bytes) -> Option<Vec<Bytes>> {
        match self.ask(shard, |tag| Cmd::Frame(tag, frame)).await {
            Out::Frame(reply) => reply,
            _ => unreachable!("frames get frame replies"),
        }
    }

    /// Sends a request to `shard` and decodes the answer (None: no response frame).
    pub async fn try_request(&self, shard: usize, request: Request) -> Option<Response> {
        let api = request.api_key();
        let correlation_id = self.next.get() as u32;
        let frame = request_frame(&request, correlation_id, 0);
        let chunks = self.raw(shard, frame).await?;
        let (header, response) = decode_response(chunks, api);
        assert_eq!(header.correlation_id, correlation_id);
        Some(response)
    }

    /// Sends a request to `shard`; panics if there is no response frame.
    pub async fn request(&self, shard: usize, request: impl Into<Request>) -> Response {
        self.try_request(shard, request.into())
            .await
            .expect("a response frame")
    }

    pub async fn metrics(&self, shard: usize) -> ShardMetrics {
        match self.ask(shard, Cmd::Metrics).await {
            Out::Metrics(m) => *m,
            _ => unreachable!(),
        }
    }

    /// Shuts every shard down and joins their threads.
    pub async fn stop(self) {
        for shard in 0..self.senders.len() {
            match self.ask(shard, Cmd::Shutdown).await {
                Out::Stopped => {}
                _ => unreachable!(),
            }
        }
        for t in self.threads.borrow_mut().drain(..) {
            t.join().expect("shard thread");
        }
    }

    // ----- typed helpers -----

    pub async fn create(
        &self,
        shard: usize,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> CreatedTopic {
        let r = self
            .request(
                shard,
                CreateTopicsRequest {
                    topics: vec![CreatableTopic {
                        name: name.into(),
                        partition_count: partitions,
                        replication_factor: -1,
                        configs: configs
                            .iter()
                            .map(|(k, v)| ConfigEntry {
                                name: k.to_string(),
                                value: Some(v.to_string()),
                            })
                            .collect(),
                    }],
                    timeout_ms: 5000,
                    validate_only: false,
                },
            )
            .await;
        match r {
            Response::CreateTopics(mut r) => r.topics.remove(0),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn produce(
        &self,
        shard: usize,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: Acks,
    ) -> Option<ProducePartitionResponse> {
        let r = self
            .try_request(
                shard,
                ProduceRequest {
                    transactional_id: None,
                    acks,
                    timeout_ms: 5000,
                    topics: vec![ProduceTopic {
                        name: topic.into(),
                        partitions: vec![ProducePartition { partition, records }],
                    }],
                }
                .into(),
            )
            .await?;
        match r {
            Response::Produce(mut r) => Some(r.topics.remove(0).partitions.remove(0)),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn fetch(
        &self,
        shard: usize,
        topic: &str,
        partition: i32,
        offset: i64,
        min_bytes: i32,
        max_wait_ms: i32,
    ) -> FetchPartitionResponse {
        let r = self
            .request(
                shard,
                FetchRequest {
                    replica_id: -1,
                    max_wait_ms,
                    min_bytes,
                    max_bytes: 64 << 20,
                    isolation_level: IsolationLevel::ReadUncommitted,
                    topics: vec![FetchTopic {
                        name: topic.into(),
                        partitions: vec![FetchPartition {
                            partition,
                            current_leader_epoch: -1,
                            fetch_offset: offset,
                            log_start_offset: -1,
                            partition_max_bytes: 16 << 20,
                        }],
                    }],
                },
            )
            .await;
        match r {
            Response::Fetch(mut r) => r.topics.remove(0).partitions.remove(0),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn list_offset(
        &self,
        shard: usize,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> ListOffsetsPartitionResponse {
        let r = self
            .request(
                shard,
                ListOffsetsRequest {
                    replica_id: -1,
                    isolation_level: IsolationLevel::ReadUncommitted,
                    topics: vec![ListOffsetsTopic {
                        name: topic.into(),
                        partitions: vec![ListOffsetsPartition {
                            partition,
                            current_leader_epoch: -1,
                            timestamp: spec,
                        }],
                    }],
                },
            )
            .await;
        match r {
            Response::ListOffsets(mut r) => r.topics.remove(0).partitions.remove(0),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn describe(&self, shard: usize, name: &str) -> TopicDescription {
        match self
            .request(
                shard,
                DescribeTopicsRequest {
                    names: vec![name.into()],
                },
            )
            .await
        {
            Response::DescribeTopics(mut r) => r.topics.remove(0),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// User topics (internal ones such as `__consumer_offsets` left out).
    pub async fn list(&self, shard: usize) -> Vec<ListedTopic> {
        self.list_topics(shard, false).await
    }

    pub async fn list_topics(&self, shard: usize, include_internal: bool) -> Vec<ListedTopic> {
        match self
            .request(shard, ListTopicsRequest { include_internal })
            .await
        {
            Response::ListTopics(r) => r.topics,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn delete(&self, shard: usize, names: &[&str]) -> Vec<TopicResult> {
        match self
            .request(
                shard,
                DeleteTopicsRequest {
                    names: names.iter().map(|n| n.to_string()).collect(),
                    timeout_ms: 5000,
                },
            )
            .await
        {
            Response::DeleteTopics(r) => r.topics,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn alter(
        &self,
        shard: usize,
        name: &str,
        configs: &[(&str, Option<&str>)],
    ) -> TopicResult {
        match self
            .request(
                shard,
                AlterTopicConfigsRequest {
                    topics: vec![AlterableTopic {
                        name: name.into(),
                        configs: configs
                            .iter()
                            .map(|(k, v)| ConfigEntry {
                                name: k.to_string(),
                                value: v.map(str::to_string),
                            })
                            .collect(),
                    }],
                    validate_only: false,
                },
            )
            .await
        {
            Response::AlterTopicConfigs(mut r) => r.topics.remove(0),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A request frame as the shell hands it to the broker: cut by `FrameDecoder`, so without the
/// length prefix.
pub fn request_frame(request: &Request, correlation_id: u32, api_version: u16) -> Bytes {
    let header = RequestHeader {
        api_key: request.api_key().code(),
        api_version,
        correlation_id,
        client_id: Some("broker-test".into()),
    };
    let chunks = encode_request_frame(&header, request, FRAME_BYTES_MAX_DEFAULT).expect("encode");
    cut(chunks)
}

pub fn cut(chunks: Vec<Bytes>) -> Bytes {
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    for c in chunks {
        decoder.push_bytes(c).expect("frame");
    }
    let frame = decoder.pop_frame().expect("one whole frame");
    assert_eq!(decoder.buffered_bytes(), 0);
    frame
}

pub fn decode_response(chunks: Vec<Bytes>, api: ApiKey) -> (ResponseHeader, Response) {
    decode_response_frame(cut(chunks), api, 0).expect("decodable response")
}

/// One batch of `count` records `"<tag>-<i>"`, timestamps from `ts`.
pub fn batch(tag: &str, count: usize, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..count {
        let value = format!("{tag}-{i}");
        b.push(
            ts + i as i64,
            Some(tag.as_bytes()),
            Some(value.as_bytes()),
            &[],
        );
    }
    b.build().expect("batch").freeze()
}

/// Concatenation of record batches.
pub fn concat(parts: &[Bytes]) -> Bytes {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    Bytes::from(out)
}

/// Splits fetched records into batches and returns `(base_offset, batch bytes with offset and
/// leader epoch zeroed)` for comparison with what was sent.
pub fn batches_of(records: &Records) -> Vec<(i64, Vec<u8>)> {
    let all = records.to_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < all.len() {
        let len = quiver_engine::batch::peek_batch_len(&all[at..]).expect("batch length");
        let mut b = all[at..at + len].to_vec();
        let base = i64::from_be_bytes(b[..8].try_into().unwrap());
        b[..8].copy_from_slice(&0i64.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        out.push((base, b));
        at += len;
    }
    out
}

/// The batch as sent, with the same fields normalised as [`batches_of`] does.
pub fn normalised(batch: &Bytes) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[..8].copy_from_slice(&0i64.to_be_bytes());
    b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    b
}
