//! The SDK's consumer-group code against a fake broker with a small scriptable coordinator:
//! [`GroupConsumer`]'s membership state machine (join, assignment, revocation released only
//! after its commit, rejoin after `UnknownMemberId` / `FencedMemberEpoch`, coordinator errors
//! retried), auto-commit, typed commit errors, close/leave, and the group calls of [`Admin`].
//!
//! The fake coordinator follows the broker's rules (engine/src/group): a heartbeat carries the
//! member's current or previous epoch (else `FencedMemberEpoch`), a commit exactly the current
//! one (else `StaleMemberEpoch`), a removed member gets `UnknownMemberId`; a partition taken
//! from a member leaves its assignment at once but is granted to another member only once the
//! first stops listing it in `owned`. Which member should hold what (the "target") is set by
//! each test; a member that joins is targeted every partition no other member is targeted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_transport::batch::{stamp, BatchBuilder, Compression, RecordBatch};
use quiver_transport::client::*;
use quiver_transport::protocol::*;
use quiver_transport::quic::stream::{read_frame, write_last_frame};
use quiver_transport::quic::{server_config, Identity, Trust, Tuning};

/// Every test finishes well within this, or fails.
const TEST_TIME_MAX: Duration = Duration::from_secs(30);
const TOPIC: &str = "t";
const GROUP: &str = "g";

type Tp = (String, i32);

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

#[derive(Default)]
struct PartitionLog {
    batches: Vec<Bytes>,
    log_start: i64,
    next_offset: i64,
}

struct Member {
    epoch: i32,
    previous_epoch: i32,
    client_id: String,
    subscribed: Vec<String>,
    /// Partitions the member may still be consuming: its assignment plus those pending
    /// revocation.
    held: BTreeSet<Tp>,
    /// The assignment last sent.
    sent: BTreeSet<Tp>,
}

/// What the fake saw, in arrival order.
#[derive(Debug, Clone)]
enum Event {
    Heartbeat {
        at: Instant,
        request: ConsumerGroupHeartbeatRequest,
        /// The answer's error code and assignment.
        error: ErrorCode,
        assignment: BTreeSet<Tp>,
    },
    Commit {
        request: OffsetCommitRequest,
        error: ErrorCode,
    },
    Fetch {
        partitions: Vec<Tp>,
    },
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Vec<PartitionLog>>,
    members: BTreeMap<String, Member>,
    joined: usize,
    /// Which member should hold which partitions.
    target: BTreeMap<String, BTreeSet<Tp>>,
    offsets: BTreeMap<Tp, i64>,
    heartbeat_interval_ms: i32,
    /// Errors answered to the next heartbeats, one each.
    heartbeat_faults: VecDeque<ErrorCode>,
    /// Errors answered (for every partition) to the next commits, one each.
    commit_faults: VecDeque<ErrorCode>,
    /// An api missing from ApiVersions (as a broker without the coordinator).
    omit_api: Option<ApiKey>,
    events: Vec<Event>,
    port: u16,
}

impl State {
    fn heartbeat(&mut self, request: &ConsumerGroupHeartbeatRequest) -> (ErrorCode, String, i32) {
        if let Some(code) = self.heartbeat_faults.pop_front() {
            return (code, request.member_id.clone(), request.member_epoch);
        }
        if request.member_epoch == MEMBER_EPOCH_LEAVE {
            self.members.remove(&request.member_id);
            self.target.remove(&request.member_id);
            return (
                ErrorCode::None,
                request.member_id.clone(),
                MEMBER_EPOCH_LEAVE,
            );
        }
        let id = if request.member_epoch == MEMBER_EPOCH_JOIN {
            let id = if self.members.contains_key(&request.member_id) {
                request.member_id.clone()
            } else {
                self.joined += 1;
                format!("m{}", self.joined)
            };
            let rejoin = self.members.insert(
                id.clone(),
                Member {
                    epoch: 0,
                    previous_epoch: 0,
                    client_id: String::new(),
                    subscribed: Vec::new(),
                    held: BTreeSet::new(),
                    sent: BTreeSet::new(),
                },
            );
            if rejoin.is_none() && !self.target.contains_key(&id) {
                let taken: BTreeSet<Tp> = self.target.values().flatten().cloned().collect();
                let mine = self
                    .topics
                    .iter()
                    .filter(|(name, _)| request.subscribed_topics.contains(name))
                    .flat_map(|(name, logs)| (0..logs.len() as i32).map(|p| (name.clone(), p)))
                    .filter(|tp| !taken.contains(tp))
                    .collect();
                self.target.insert(id.clone(), mine);
            }
            id
        } else {
            let Some(member) = self.members.get(&request.member_id) else {
                return (ErrorCode::UnknownMemberId, request.member_id.clone(), -1);
            };
            if request.member_epoch != member.epoch && request.member_epoch != member.previous_epoch
            {
                return (
                    ErrorCode::FencedMemberEpoch,
                    request.member_id.clone(),
                    member.epoch,
                );
            }
            request.member_id.clone()
        };
        let owned: BTreeSet<Tp> = request
            .owned
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.clone(), p)))
            .collect();
        let target = self.target.get(&id).cloned().unwrap_or_default();
        let held_elsewhere: BTreeSet<Tp> = self
            .members
            .iter()
            .filter(|(other, _)| **other != id)
            .flat_map(|(_, m)| m.held.iter().cloned())
            .collect();
        let member = self.members.get_mut(&id).expect("joined above");
        member.subscribed = request.subscribed_topics.clone();
        member.client_id = format!("client-of-{id}");
        // Pending partitions the member no longer reports are released.
        member
            .held
            .retain(|tp| target.contains(tp) || owned.contains(tp));
        for tp in &target {
            if !held_elsewhere.contains(tp) {
                member.held.insert(tp.clone());
            }
        }
        let assignment: BTreeSet<Tp> = member.held.intersection(&target).cloned().collect();
        if assignment != member.sent || member.epoch == 0 {
            member.previous_epoch = member.epoch;
            member.epoch += 1;
            member.sent = assignment;
        }
        (ErrorCode::None, id, member.epoch)
    }

    fn commit(&mut self, request: &OffsetCommitRequest) -> ErrorCode {
        if let Some(code) = self.commit_faults.pop_front() {
            return code;
        }
        if request.member_id.is_empty() && request.member_epoch < 0 {
            if !self.members.is_empty() {
                return ErrorCode::NonEmptyGroup;
            }
        } else {
            let Some(member) = self.members.get(&request.member_id) else {
                return ErrorCode::UnknownMemberId;
            };
            if member.epoch != request.member_epoch {
                return ErrorCode::StaleMemberEpoch;
            }
        }
        for t in &request.topics {
            for p in &t.partitions {
                self.offsets
                    .insert((t.name.clone(), p.partition), p.committed_offset);
            }
        }
        ErrorCode::None
    }

    fn append(&mut self, topic: &str, partition: i32, count: usize) {
        let log = &mut self.topics.get_mut(topic).unwrap()[partition as usize];
        let mut builder = BatchBuilder::new(Compression::None);
        for i in 0..count {
            let value = format!("{topic}-{partition}-{}", log.next_offset + i as i64);
            builder.push(1_000, None, Some(value.as_bytes()), &[]);
        }
        let mut batch = builder.build().unwrap();
        stamp(&mut batch, log.next_offset, 0);
        log.batches.push(batch.freeze());
        log.next_offset += count as i64;
    }
}

struct Mock {
    state: Arc<Mutex<State>>,
    port: u16,
    dir: PathBuf,
    _endpoint: quinn::Endpoint,
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Mock {
    /// A broker with topic `t` of `partitions` partitions holding `records` records each.
    async fn start(partitions: usize, records: usize) -> Mock {
        let dir = std::env::temp_dir().join(format!(
            "quiver-client-groups-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let (identity, created) = Identity::load_or_create_self_signed(&dir, &[]).unwrap();
        assert!(created);
        let config = server_config(&identity, &Tuning::default()).unwrap();
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let port = endpoint.local_addr().unwrap().port();
        let mut state = State {
            heartbeat_interval_ms: 100,
            port,
            ..State::default()
        };
        state.topics.insert(
            TOPIC.into(),
            (0..partitions).map(|_| PartitionLog::default()).collect(),
        );
        for p in 0..partitions as i32 {
            if records > 0 {
                state.append(TOPIC, p, records);
            }
        }
        let state = Arc::new(Mutex::new(state));
        tokio::spawn(accept(endpoint.clone(), state.clone()));
        Mock {
            state,
            port,
            dir,
            _endpoint: endpoint,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let trust = Trust::from_pem_file(&self.dir.join("cert.pem")).unwrap();
        ClientConfig {
            request_timeout: Duration::from_secs(5),
            ..ClientConfig::new(format!("127.0.0.1:{}", self.port), trust)
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    fn events(&self) -> Vec<Event> {
        self.with(|s| s.events.clone())
    }

    fn heartbeats(&self) -> Vec<ConsumerGroupHeartbeatRequest> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Heartbeat { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    }

    fn commits(&self) -> Vec<(OffsetCommitRequest, ErrorCode)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Commit { request, error } => Some((request, error)),
                _ => None,
            })
            .collect()
    }

    fn committed(&self) -> BTreeMap<Tp, i64> {
        self.with(|s| s.offsets.clone())
    }

    /// Retargets partition `p` to `member` (or to nobody).
    fn move_partition(&self, p: i32, member: Option<&str>) {
        self.with(|s| {
            let tp = (TOPIC.to_string(), p);
            for set in s.target.values_mut() {
                set.remove(&tp);
            }
            if let Some(m) = member {
                s.target.entry(m.to_string()).or_default().insert(tp);
            }
        });
    }

    /// Removes a member as a session expiry would; its partitions go back to nobody.
    fn expire(&self, member: &str) {
        self.with(|s| {
            s.members.remove(member);
            s.target.remove(member);
        });
    }
}

async fn accept(endpoint: quinn::Endpoint, state: Arc<Mutex<State>>) {
    while let Some(incoming) = endpoint.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else {
                return;
            };
            while let Ok((send, recv)) = connection.accept_bi().await {
                tokio::spawn(serve_stream(state.clone(), send, recv));
            }
        });
    }
}

async fn serve_stream(
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
        Request::Fetch(fetch) => {
            let deadline = Instant::now() + Duration::from_millis(fetch.max_wait_ms.min(50) as u64);
            loop {
                let (response, bytes) = handle_fetch(&state, &fetch);
                if bytes > 0 || Instant::now() >= deadline {
                    break Response::from(response);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        other => handle(&mut state.lock().unwrap(), other),
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

fn to_wire(set: &BTreeSet<Tp>) -> Vec<GroupTopicPartitions> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in set {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| GroupTopicPartitions { topic, partitions })
        .collect()
}

fn handle(state: &mut State, request: Request) -> Response {
    match request {
        Request::ApiVersions(_) => {
            let mut versions = ApiVersionsResponse::for_this_build(FRAME_BYTES_MAX_DEFAULT);
            if let Some(omit) = state.omit_api {
                versions.api_versions.retain(|v| v.api_key != omit.code());
            }
            versions.into()
        }
        Request::Metadata(metadata) => {
            let port = state.port;
            let names = metadata
                .topics
                .unwrap_or_else(|| state.topics.keys().cloned().collect());
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
                                leader_port: port,
                                leader_shard: 0,
                                leader_shard_port: port,
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
                    port,
                    shard_count: 1,
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
                            ListOffsetsPartitionResponse {
                                partition: p.partition,
                                error_code: ErrorCode::None,
                                timestamp_ms: -1,
                                offset: match p.timestamp {
                                    OffsetSpec::Earliest => log.log_start,
                                    _ => log.next_offset,
                                },
                                leader_epoch: 0,
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
        .into(),
        Request::FindCoordinator(find) => FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: if find.key.is_empty() {
                ErrorCode::InvalidGroupId
            } else {
                ErrorCode::None
            },
            error_message: None,
            node_id: 0,
            host: "127.0.0.1".into(),
            port: i32::from(state.port),
            shard: 0,
        }
        .into(),
        Request::ConsumerGroupHeartbeat(heartbeat) => {
            let (error, member_id, member_epoch) = state.heartbeat(&heartbeat);
            let assignment = if error.is_ok() {
                state
                    .members
                    .get(&member_id)
                    .map(|m| m.sent.clone())
                    .unwrap_or_default()
            } else {
                BTreeSet::new()
            };
            state.events.push(Event::Heartbeat {
                at: Instant::now(),
                request: heartbeat,
                error,
                assignment: assignment.clone(),
            });
            ConsumerGroupHeartbeatResponse {
                throttle_time_ms: 0,
                error_code: error,
                error_message: (!error.is_ok()).then(|| "scripted".into()),
                member_id,
                member_epoch,
                heartbeat_interval_ms: state.heartbeat_interval_ms,
                assignment: to_wire(&assignment),
            }
            .into()
        }
        Request::OffsetCommit(commit) => {
            let error = state.commit(&commit);
            let response = OffsetCommitResponse {
                throttle_time_ms: 0,
                topics: commit
                    .topics
                    .iter()
                    .map(|t| OffsetCommitTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| OffsetCommitPartitionResponse {
                                partition: p.partition,
                                error_code: error,
                                error_message: None,
                            })
                            .collect(),
                    })
                    .collect(),
            };
            state.events.push(Event::Commit {
                request: commit,
                error,
            });
            response.into()
        }
        Request::OffsetFetch(fetch) => {
            let wanted: Vec<Tp> = match &fetch.topics {
                Some(topics) => topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|&p| (t.name.clone(), p)))
                    .collect(),
                None => state.offsets.keys().cloned().collect(),
            };
            let mut by_topic: BTreeMap<String, Vec<OffsetFetchPartitionResponse>> = BTreeMap::new();
            for (t, p) in wanted {
                let offset = state.offsets.get(&(t.clone(), p)).copied().unwrap_or(-1);
                by_topic
                    .entry(t)
                    .or_default()
                    .push(OffsetFetchPartitionResponse {
                        partition: p,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        metadata: None,
                        error_code: ErrorCode::None,
                    });
            }
            OffsetFetchResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::None,
                error_message: None,
                topics: by_topic
                    .into_iter()
                    .map(|(name, partitions)| OffsetFetchTopicResponse { name, partitions })
                    .collect(),
            }
            .into()
        }
        Request::ListGroups(_) => ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None,
            groups: if state.members.is_empty() && state.offsets.is_empty() {
                Vec::new()
            } else {
                vec![ListedGroup {
                    group_id: GROUP.into(),
                    state: if state.members.is_empty() {
                        "Empty".into()
                    } else {
                        "Stable".into()
                    },
                    member_count: state.members.len() as i32,
                }]
            },
        }
        .into(),
        Request::DescribeGroups(describe) => DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: describe
                .groups
                .into_iter()
                .map(|group_id| {
                    let known = group_id == GROUP
                        && !(state.members.is_empty() && state.offsets.is_empty());
                    DescribedGroup {
                        error_code: if known {
                            ErrorCode::None
                        } else {
                            ErrorCode::GroupIdNotFound
                        },
                        error_message: None,
                        group_id,
                        state: "Stable".into(),
                        group_epoch: 7,
                        assignment_epoch: 7,
                        assignor: "range".into(),
                        members: state
                            .members
                            .iter()
                            .map(|(id, m)| DescribedMember {
                                member_id: id.clone(),
                                client_id: m.client_id.clone(),
                                client_host: "127.0.0.1".into(),
                                member_epoch: m.epoch,
                                subscribed_topics: m.subscribed.clone(),
                                assignment: to_wire(&m.sent),
                                target_assignment: to_wire(
                                    &state.target.get(id).cloned().unwrap_or_default(),
                                ),
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
        .into(),
        Request::DeleteGroups(delete) => DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: delete
                .groups
                .into_iter()
                .map(|group_id| {
                    let error_code = if group_id != GROUP {
                        ErrorCode::GroupIdNotFound
                    } else if !state.members.is_empty() {
                        ErrorCode::NonEmptyGroup
                    } else if state.offsets.is_empty() {
                        ErrorCode::GroupIdNotFound
                    } else {
                        state.offsets.clear();
                        ErrorCode::None
                    };
                    GroupResult {
                        group_id,
                        error_code,
                        error_message: None,
                    }
                })
                .collect(),
        }
        .into(),
        _ => Response::Rejected(ErrorCode::InvalidRequest),
    }
}

/// The fetch answer and how many record bytes it holds.
fn handle_fetch(state: &Arc<Mutex<State>>, fetch: &FetchRequest) -> (FetchResponse, usize) {
    let mut state = state.lock().unwrap();
    let partitions = fetch
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
        .collect();
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
                    if p.fetch_offset > log.next_offset || p.fetch_offset < log.log_start {
                        error_code = ErrorCode::OffsetOutOfRange;
                    } else {
                        for batch in &log.batches {
                            if RecordBatch::parse(batch).unwrap().next_offset() <= p.fetch_offset {
                                continue;
                            }
                            // At least one batch, then up to the partition's byte limit.
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
                        log_start_offset: log.log_start,
                        aborted_transactions: Vec::new(),
                        records,
                    }
                })
                .collect(),
        })
        .collect();
    if total > 0 {
        state.events.push(Event::Fetch { partitions });
    }
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

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(50),
        ..ConsumerConfig::default()
    }
}

/// Group settings with auto-commit only at revocation and close (the interval is an hour).
fn group_config() -> GroupConfig {
    let mut group = GroupConfig::new(GROUP);
    group.session_timeout = Duration::from_secs(10);
    group.rebalance_timeout = Duration::from_secs(20);
    group.auto_commit_interval = Duration::from_secs(3600);
    group
}

async fn join(mock: &Mock, group: GroupConfig) -> GroupConsumer {
    join_with(mock, consumer_config(), group).await
}

async fn join_with(mock: &Mock, config: ConsumerConfig, group: GroupConfig) -> GroupConsumer {
    let client = Client::connect(mock.client_config()).await.unwrap();
    GroupConsumer::subscribe(client, config, group, vec![TOPIC.into()])
        .await
        .unwrap()
}

/// Offsets read per partition, in order.
type Read = BTreeMap<i32, Vec<i64>>;

fn record(read: &mut Read, records: Vec<ConsumerRecord>) {
    for r in records {
        assert_eq!(
            r.value.as_deref(),
            Some(format!("t-{}-{}", r.partition, r.offset).as_bytes())
        );
        read.entry(r.partition).or_default().push(r.offset);
    }
}

/// Polls until `done` holds.
async fn poll_until(
    consumer: &mut GroupConsumer,
    read: &mut Read,
    mut done: impl FnMut(&GroupConsumer, &Read) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(consumer, read) {
        assert!(
            Instant::now() < deadline,
            "still waiting: member {} epoch {} assignment {:?} read {read:?}",
            consumer.member_id(),
            consumer.member_epoch(),
            consumer.assignment()
        );
        let records = consumer.poll(Duration::from_millis(20)).await.unwrap();
        record(read, records);
    }
}

fn count(read: &Read) -> usize {
    read.values().map(Vec::len).sum()
}

fn range(from: i64, to: i64) -> Vec<i64> {
    (from..to).collect()
}

#[tokio::test]
async fn join_sends_settings_and_starts_at_committed_offsets() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        mock.with(|s| s.offsets.insert((TOPIC.into(), 0), 4));
        let mut group = group_config();
        group.assignor = Some("cooperative-sticky".into());
        let mut consumer = join(&mock, group).await;
        assert_eq!(consumer.member_id(), "m1");
        assert_eq!(consumer.member_epoch(), 1);
        assert_eq!(consumer.assignment(), vec![tp(0), tp(1)]);
        let first = &mock.heartbeats()[0];
        assert_eq!(first.group_id, GROUP);
        assert_eq!(first.member_id, "");
        assert_eq!(first.member_epoch, MEMBER_EPOCH_JOIN);
        assert_eq!(first.session_timeout_ms, 10_000);
        assert_eq!(first.rebalance_timeout_ms, 20_000);
        assert_eq!(first.assignor.as_deref(), Some("cooperative-sticky"));
        assert_eq!(first.subscribed_topics, vec![TOPIC.to_string()]);
        assert!(first.owned.is_empty());

        // t-0 from its committed offset, t-1 (nothing committed) per auto_offset_reset.
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| {
            count(r) >= 16 && mock.heartbeats().len() >= 2
        })
        .await;
        assert_eq!(read[&0], range(4, 10));
        assert_eq!(read[&1], range(0, 10));

        // Later heartbeats carry the id, the epoch received and the partitions held.
        let heartbeats = mock.heartbeats();
        let later = heartbeats.last().unwrap();
        assert_eq!(later.member_id, "m1");
        assert_eq!(later.member_epoch, 1);
        assert_eq!(
            later.owned,
            to_wire(&[(TOPIC.into(), 0), (TOPIC.into(), 1)].into())
        );
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn revoked_partition_is_committed_before_release_and_then_granted() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        // Heartbeats a second apart: the release must not wait for the next one.
        mock.with(|s| s.heartbeat_interval_ms = 1000);
        let mut a = join(&mock, group_config()).await;
        let mut b = join(&mock, group_config()).await;
        assert_eq!(b.member_id(), "m2");
        assert!(b.assignment().is_empty());
        let mut read_a = Read::new();
        poll_until(&mut a, &mut read_a, |_, r| count(r) >= 20).await;
        assert!(
            mock.commits().is_empty(),
            "auto-commit ran before its interval"
        );

        // Move t-1 to b. a must commit t-1 at 10, then stop listing it; only then does b get it.
        mock.move_partition(1, Some("m2"));
        let mut read_b = Read::new();
        while b.assignment().is_empty() {
            record(
                &mut read_a,
                a.poll(Duration::from_millis(20)).await.unwrap(),
            );
            record(
                &mut read_b,
                b.poll(Duration::from_millis(20)).await.unwrap(),
            );
        }
        assert_eq!(a.assignment(), vec![tp(0)]);
        assert_eq!(b.assignment(), vec![tp(1)]);
        let events = mock.events();
        let shrunk = events
            .iter()
            .position(|e| {
                matches!(e, Event::Heartbeat { request, assignment, .. }
                    if request.member_id == "m1" && assignment.len() == 1)
            })
            .expect("a's assignment shrank");
        let commit = events
            .iter()
            .position(|e| matches!(e, Event::Commit { .. }))
            .expect("the revoked partition was committed");
        let released = events
            .iter()
            .position(|e| {
                matches!(e, Event::Heartbeat { request, .. }
                    if request.member_id == "m1" && request.member_epoch > 0
                        && request.owned.iter().all(|t| t.partitions == [0]))
            })
            .expect("a released t-1");
        let granted = events
            .iter()
            .position(|e| {
                matches!(e, Event::Heartbeat { request, assignment, .. }
                    if request.member_id == "m2" && !assignment.is_empty())
            })
            .unwrap();
        assert!(
            shrunk < commit && commit < released && released < granted,
            "{shrunk} {commit} {released} {granted}"
        );
        let (request, _) = &mock.commits()[0];
        assert_eq!(request.member_id, "m1");
        assert_eq!(request.topics.len(), 1);
        assert_eq!(
            request.topics[0].partitions.len(),
            1,
            "only t-1 is committed"
        );
        assert_eq!(request.topics[0].partitions[0].partition, 1);
        assert_eq!(request.topics[0].partitions[0].committed_offset, 10);
        // The release is sent at once, not a heartbeat interval later.
        let (
            Event::Heartbeat { at: shrunk_at, .. },
            Event::Heartbeat {
                at: released_at, ..
            },
        ) = (&events[shrunk], &events[released])
        else {
            unreachable!()
        };
        assert!(
            released_at.duration_since(*shrunk_at) < Duration::from_millis(500),
            "released after {:?}",
            released_at.duration_since(*shrunk_at)
        );

        // New records: t-1's go to b only (from the committed 10), t-0's to a.
        mock.with(|s| {
            s.append(TOPIC, 0, 5);
            s.append(TOPIC, 1, 5);
        });
        let fetches_before = mock.events().len();
        while read_b.get(&1).map_or(0, Vec::len) < 5 || read_a[&0].len() < 15 {
            record(
                &mut read_a,
                a.poll(Duration::from_millis(20)).await.unwrap(),
            );
            record(
                &mut read_b,
                b.poll(Duration::from_millis(20)).await.unwrap(),
            );
        }
        assert_eq!(read_a[&0], range(0, 15));
        assert_eq!(read_a[&1], range(0, 10), "a read t-1 after giving it up");
        assert_eq!(read_b[&1], range(10, 15));
        for e in &mock.events()[fetches_before..] {
            if let Event::Fetch { partitions } = e {
                // a fetches only t-0, b only t-1; nobody fetches both any more.
                assert_eq!(partitions.len(), 1, "{partitions:?}");
            }
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
        assert_eq!(
            mock.committed(),
            [((TOPIC.into(), 0), 15), ((TOPIC.into(), 1), 15)].into()
        );
    })
    .await;
}

#[tokio::test]
async fn without_auto_commit_a_revoked_partition_is_released_uncommitted() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut group = group_config();
        group.enable_auto_commit = false;
        let mut consumer = join(&mock, group).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        mock.move_partition(1, None);
        poll_until(&mut consumer, &mut read, |c, _| {
            c.assignment() == vec![tp(0)]
        })
        .await;
        // Released on the next heartbeat.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !mock
            .heartbeats()
            .last()
            .is_some_and(|h| h.owned.iter().all(|t| t.partitions == [0]))
        {
            assert!(Instant::now() < deadline, "t-1 never released");
            consumer.poll(Duration::from_millis(20)).await.unwrap();
        }
        assert!(mock.commits().is_empty());
        // close commits nothing either; leaves with epoch -1 and nothing owned.
        consumer.close().await.unwrap();
        assert!(mock.commits().is_empty());
        let last = mock.heartbeats().pop().unwrap();
        assert_eq!(last.member_epoch, MEMBER_EPOCH_LEAVE);
        assert!(last.owned.is_empty());
        assert!(mock.with(|s| s.members.is_empty()));
    })
    .await;
}

#[tokio::test]
async fn unknown_member_drops_partitions_uncommitted_and_rejoins_with_a_new_id() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        mock.with(|s| s.offsets.insert((TOPIC.into(), 0), 3));
        let mut consumer = join(&mock, group_config()).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 17).await;
        // The session expired: the partitions may be someone else's already.
        let before = read.clone();
        let seen = mock.heartbeats().len();
        mock.expire("m1");
        poll_until(&mut consumer, &mut read, |c, _| {
            c.member_id() == "m2" && c.assignment().len() == 2
        })
        .await;
        assert!(mock.commits().is_empty(), "committed partitions it lost");
        let after = &mock.heartbeats()[seen..];
        let rejoin = after
            .iter()
            .position(|h| h.member_epoch == MEMBER_EPOCH_JOIN)
            .expect("never rejoined");
        assert!(
            after[..rejoin].iter().all(|h| h.member_id == "m1"),
            "{after:?}"
        );
        assert!(mock.events().iter().any(|e| matches!(
            e,
            Event::Heartbeat { request, error: ErrorCode::UnknownMemberId, .. }
                if request.member_id == "m1"
        )));
        let again = &after[rejoin];
        assert_eq!(again.member_id, "", "rejoined under the removed id");
        assert!(again.owned.is_empty(), "still claims partitions it lost");
        // Reading restarts from the group's committed offsets (at-least-once).
        poll_until(&mut consumer, &mut read, |_, r| {
            count(r) >= count(&before) + 17
        })
        .await;
        assert_eq!(read[&0][before[&0].len()..], range(3, 10));
        assert_eq!(read[&1][before[&1].len()..], range(0, 10));
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn fenced_member_drops_partitions_and_rejoins_with_its_id() {
    bounded(async {
        let mock = Mock::start(1, 10).await;
        let mut consumer = join(&mock, group_config()).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 10).await;
        // The coordinator moved the member two epochs on (the client missed both answers).
        mock.with(|s| {
            let m = s.members.get_mut("m1").unwrap();
            m.previous_epoch = m.epoch + 1;
            m.epoch += 2;
        });
        let heartbeats_before = mock.heartbeats().len();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            consumer.poll(Duration::from_millis(20)).await.unwrap();
            let after = &mock.heartbeats()[heartbeats_before..];
            if after.iter().any(|h| h.member_epoch == MEMBER_EPOCH_JOIN) {
                break;
            }
            assert!(Instant::now() < deadline, "never rejoined");
        }
        let after = &mock.heartbeats()[heartbeats_before..];
        let join = after
            .iter()
            .find(|h| h.member_epoch == MEMBER_EPOCH_JOIN)
            .unwrap();
        assert_eq!(join.member_id, "m1");
        assert!(join.owned.is_empty());
        assert!(mock.commits().is_empty());
        poll_until(&mut consumer, &mut read, |c, _| {
            c.assignment() == vec![tp(0)]
        })
        .await;
        assert_eq!(consumer.member_id(), "m1");
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn coordinator_errors_are_retried_without_losing_the_assignment() {
    bounded(async {
        let mock = Mock::start(2, 0).await;
        let mut consumer = join(&mock, group_config()).await;
        let epoch = consumer.member_epoch();
        mock.with(|s| {
            s.heartbeat_faults.extend([
                ErrorCode::NotCoordinator,
                ErrorCode::CoordinatorLoadInProgress,
                ErrorCode::CoordinatorNotAvailable,
            ])
        });
        let seen = mock.heartbeats().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while mock.heartbeats().len() < seen + 4 {
            assert!(Instant::now() < deadline, "heartbeats stopped");
            assert!(consumer
                .poll(Duration::from_millis(20))
                .await
                .unwrap()
                .is_empty());
            assert_eq!(consumer.assignment().len(), 2);
        }
        assert_eq!(consumer.member_id(), "m1");
        assert_eq!(consumer.member_epoch(), epoch);
        let after = &mock.heartbeats()[seen..];
        assert!(after
            .iter()
            .all(|h| h.member_id == "m1" && h.member_epoch == epoch));
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn auto_commit_runs_every_interval_and_skips_unchanged_positions() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut group = group_config();
        group.auto_commit_interval = Duration::from_millis(100);
        let mut consumer = join(&mock, group).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while mock.committed().len() < 2 {
            assert!(Instant::now() < deadline, "auto-commit never ran");
            consumer.poll(Duration::from_millis(20)).await.unwrap();
        }
        assert_eq!(
            mock.committed(),
            [((TOPIC.into(), 0), 10), ((TOPIC.into(), 1), 10)].into()
        );
        // Nothing new read: several intervals pass without another commit.
        let commits = mock.commits().len();
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until {
            consumer.poll(Duration::from_millis(20)).await.unwrap();
        }
        assert_eq!(
            mock.commits().len(),
            commits,
            "unchanged positions were committed"
        );
        for (request, _) in mock.commits() {
            assert_eq!(request.member_id, "m1");
            assert_eq!(request.member_epoch, consumer.member_epoch());
        }
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn auto_commit_of_a_removed_member_rejoins_instead_of_failing() {
    bounded(async {
        let mock = Mock::start(1, 10).await;
        // Heartbeats rarely; auto-commit often: the commit learns of the removal first.
        mock.with(|s| s.heartbeat_interval_ms = 60_000);
        let mut group = group_config();
        group.auto_commit_interval = Duration::from_millis(50);
        let mut consumer = join(&mock, group).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 10).await;
        mock.expire("m1");
        poll_until(&mut consumer, &mut read, |c, _| c.member_id() == "m2").await;
        let commits = mock.commits();
        assert_eq!(commits[0].1, ErrorCode::UnknownMemberId);
        assert!(commits[1..].iter().all(|(r, _)| r.member_id == "m2"));
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn commit_errors_are_typed() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut group = group_config();
        group.enable_auto_commit = false;
        let mut consumer = join(&mock, group).await;
        let offsets: BTreeMap<TopicPartition, i64> = [(tp(0), 3)].into();
        // (A stale epoch is retried once after a heartbeat: refused twice, it is returned.)
        for (code, times) in [
            (ErrorCode::StaleMemberEpoch, 2),
            (ErrorCode::UnknownMemberId, 1),
            (ErrorCode::FencedMemberEpoch, 1),
        ] {
            mock.with(|s| s.commit_faults.extend(std::iter::repeat_n(code, times)));
            let err = consumer.commit_offsets(&offsets).await.unwrap_err();
            assert_eq!(err.error_code(), Some(code), "{err}");
            assert!(!err.is_retriable(), "{err}");
            match &err {
                ClientError::Broker {
                    topic, partition, ..
                } => {
                    assert_eq!(topic.as_deref(), Some(TOPIC));
                    assert_eq!(*partition, Some(0));
                }
                other => panic!("{other:?}"),
            }
        }
        mock.with(|s| {
            s.commit_faults
                .push_back(ErrorCode::CoordinatorLoadInProgress)
        });
        let err = consumer.commit_sync().await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::CoordinatorLoadInProgress));
        assert!(err.is_retriable());
        // The real answer: accepted with the member's id and epoch.
        consumer.commit_offsets(&offsets).await.unwrap();
        let (request, error) = mock.commits().pop().unwrap();
        assert_eq!(error, ErrorCode::None);
        assert_eq!(
            (request.member_id.as_str(), request.member_epoch),
            ("m1", 1)
        );
        assert_eq!(mock.committed(), [((TOPIC.into(), 0), 3)].into());
        // commit_sync commits the positions of owned partitions.
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        consumer.commit_sync().await.unwrap();
        assert_eq!(
            mock.committed(),
            [((TOPIC.into(), 0), 10), ((TOPIC.into(), 1), 10)].into()
        );
        consumer.leave().await.unwrap();
        assert!(mock.with(|s| s.members.is_empty()));
    })
    .await;
}

#[tokio::test]
async fn close_commits_positions_then_leaves() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut consumer = join(&mock, group_config()).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        consumer.close().await.unwrap();
        let events = mock.events();
        let commit = events
            .iter()
            .position(|e| matches!(e, Event::Commit { .. }))
            .unwrap();
        let Some(Event::Heartbeat { request, .. }) = events.last() else {
            panic!("the last request is not a heartbeat: {:?}", events.last());
        };
        assert!(commit < events.len() - 1);
        assert_eq!(request.member_epoch, MEMBER_EPOCH_LEAVE);
        assert_eq!(request.member_id, "m1");
        assert!(request.owned.is_empty());
        assert_eq!(
            mock.committed(),
            [((TOPIC.into(), 0), 10), ((TOPIC.into(), 1), 10)].into()
        );
        assert!(mock.with(|s| s.members.is_empty()));
    })
    .await;
}

#[tokio::test]
async fn a_broker_without_the_group_apis_is_named() {
    bounded(async {
        let mock = Mock::start(1, 0).await;
        mock.with(|s| s.omit_api = Some(ApiKey::ConsumerGroupHeartbeat));
        let client = Client::connect(mock.client_config()).await.unwrap();
        let err = GroupConsumer::subscribe(
            client,
            consumer_config(),
            group_config(),
            vec![TOPIC.into()],
        )
        .await
        .err()
        .expect("subscribed without the api");
        assert!(
            matches!(
                err,
                ClientError::UnsupportedApi {
                    api: ApiKey::ConsumerGroupHeartbeat,
                    ..
                }
            ),
            "{err:?}"
        );
        let client = Client::connect(mock.client_config()).await.unwrap();
        let err = GroupConsumer::subscribe(client, consumer_config(), group_config(), Vec::new())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn admin_lists_describes_resets_and_deletes_groups_and_computes_lag() {
    bounded(async {
        let mock = Mock::start(3, 10).await;
        mock.with(|s| s.topics.get_mut(TOPIC).unwrap()[2].log_start = 4);
        let admin = Admin::connect(mock.client_config()).await.unwrap();
        assert!(admin.list_groups().await.unwrap().is_empty());
        let err = admin.describe_group(GROUP).await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::GroupIdNotFound));
        let coordinator = admin.find_group_coordinator(GROUP).await.unwrap();
        assert_eq!(
            (coordinator.host.as_str(), coordinator.port),
            ("127.0.0.1", i32::from(mock.port))
        );

        let member = join(&mock, group_config()).await;
        mock.with(|s| s.offsets.insert((TOPIC.into(), 0), 7));
        let listed = admin.list_groups().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].group_id.as_str(), listed[0].member_count),
            (GROUP, 1)
        );
        let described = admin.describe_group(GROUP).await.unwrap();
        assert_eq!(described.members.len(), 1);
        assert_eq!(described.members[0].member_id, "m1");
        assert_eq!(
            described.members[0].assignment,
            vec![GroupTopicPartitions {
                topic: TOPIC.into(),
                partitions: vec![0, 1, 2]
            }]
        );
        // Live members: offsets cannot be reset and the group cannot be deleted.
        let err = admin
            .alter_group_offsets(GROUP, &[(tp(1), 2)])
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::NonEmptyGroup));
        let err = admin.delete_group(GROUP).await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::NonEmptyGroup));

        // Lag: committed → log end − committed; nothing committed → log end − log start.
        let lag = admin.group_lag(GROUP, None).await.unwrap();
        let rows: Vec<String> = lag
            .iter()
            .map(|l| {
                format!(
                    "{} committed {:?} start {} end {} lag {} owner {:?}",
                    l.partition, l.committed, l.log_start, l.log_end, l.lag, l.owner
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                r#"t-0 committed Some(7) start 0 end 10 lag 3 owner Some("m1")"#,
                r#"t-1 committed None start 0 end 10 lag 10 owner Some("m1")"#,
                r#"t-2 committed None start 4 end 10 lag 6 owner Some("m1")"#,
            ]
        );

        member.leave().await.unwrap();
        admin
            .alter_group_offsets(GROUP, &[(tp(1), 2), (tp(2), 5)])
            .await
            .unwrap();
        let (request, _) = mock.commits().pop().unwrap();
        assert_eq!((request.member_id.as_str(), request.member_epoch), ("", -1));
        let offsets: Vec<(TopicPartition, i64)> = admin
            .list_group_offsets(GROUP)
            .await
            .unwrap()
            .into_iter()
            .map(|o| (o.partition, o.offset))
            .collect();
        assert_eq!(offsets, vec![(tp(0), 7), (tp(1), 2), (tp(2), 5)]);
        let lag = admin.group_lag(GROUP, None).await.unwrap();
        assert!(lag.iter().all(|l| l.owner.is_none()));
        assert_eq!(lag.iter().map(|l| l.lag).collect::<Vec<_>>(), vec![3, 8, 5]);
        let deleted = admin
            .delete_groups(&[GROUP.to_string(), "other".to_string()])
            .await
            .unwrap();
        assert_eq!(deleted.len(), 2);
        assert_eq!(deleted[0].0, GROUP);
        assert!(deleted[0].1.is_ok(), "{:?}", deleted[0].1);
        assert_eq!(deleted[1].0, "other");
        assert_eq!(
            deleted[1].1.as_ref().unwrap_err().error_code(),
            Some(ErrorCode::GroupIdNotFound)
        );
        assert!(admin.list_group_offsets(GROUP).await.unwrap().is_empty());
        let err = admin.delete_group(GROUP).await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::GroupIdNotFound));
    })
    .await;
}

/// The coordinator moved the member's epoch on without the member hearing of it (a lost
/// heartbeat answer): the next heartbeat, carrying the previous epoch, is still accepted.
fn lose_an_epoch_answer(mock: &Mock, member: &str) {
    mock.with(|s| {
        let m = s.members.get_mut(member).unwrap();
        m.previous_epoch = m.epoch;
        m.epoch += 1;
    });
}

#[tokio::test]
async fn a_stale_epoch_is_refreshed_by_a_heartbeat_and_the_commit_retried_once() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        mock.with(|s| s.heartbeat_interval_ms = 60_000);
        let mut group = group_config();
        group.enable_auto_commit = false;
        let mut consumer = join(&mock, group).await;
        lose_an_epoch_answer(&mock, "m1");
        let heartbeats = mock.heartbeats().len();
        let offsets: BTreeMap<TopicPartition, i64> = [(tp(0), 3), (tp(1), 4)].into();
        consumer.commit_offsets(&offsets).await.unwrap();
        assert_eq!(mock.heartbeats().len(), heartbeats + 1);
        let commits = mock.commits();
        assert_eq!(
            commits
                .iter()
                .map(|(r, e)| (r.member_epoch, *e))
                .collect::<Vec<_>>(),
            vec![(1, ErrorCode::StaleMemberEpoch), (2, ErrorCode::None)]
        );
        assert_eq!(consumer.member_epoch(), 2);
        assert_eq!(mock.committed().len(), 2);
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_stale_epoch_on_auto_commit_keeps_the_membership() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        mock.with(|s| s.heartbeat_interval_ms = 60_000);
        let mut group = group_config();
        group.auto_commit_interval = Duration::from_millis(50);
        let mut consumer = join(&mock, group).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        lose_an_epoch_answer(&mock, "m1");
        mock.with(|s| s.append(TOPIC, 0, 1));
        poll_until(&mut consumer, &mut read, |_, _| {
            mock.committed().get(&(TOPIC.into(), 0)) == Some(&11)
        })
        .await;
        assert!(mock
            .commits()
            .iter()
            .any(|(_, e)| *e == ErrorCode::StaleMemberEpoch));
        // No rejoin: one join, the same id, and the partitions kept.
        let joins = mock
            .heartbeats()
            .iter()
            .filter(|h| h.member_epoch == MEMBER_EPOCH_JOIN)
            .count();
        assert_eq!(joins, 1);
        assert_eq!(consumer.member_id(), "m1");
        assert_eq!(consumer.assignment().len(), 2);
        assert_eq!(read[&0], range(0, 11), "records were read twice");
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_failed_revocation_commit_is_retried_and_the_partition_held_until_it_succeeds() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut a = join(&mock, group_config()).await;
        let mut b = join(&mock, group_config()).await;
        let mut read_a = Read::new();
        poll_until(&mut a, &mut read_a, |_, r| count(r) >= 20).await;
        // The coordinator is moving: the first two commits fail.
        mock.with(|s| {
            s.commit_faults.extend([
                ErrorCode::CoordinatorLoadInProgress,
                ErrorCode::NotCoordinator,
            ])
        });
        mock.move_partition(1, Some("m2"));
        let mut read_b = Read::new();
        while b.assignment().is_empty() {
            record(
                &mut read_a,
                a.poll(Duration::from_millis(20)).await.unwrap(),
            );
            record(
                &mut read_b,
                b.poll(Duration::from_millis(20)).await.unwrap(),
            );
        }
        let commits = mock.commits();
        assert_eq!(
            commits.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
            vec![
                ErrorCode::CoordinatorLoadInProgress,
                ErrorCode::NotCoordinator,
                ErrorCode::None
            ]
        );
        assert!(commits
            .iter()
            .all(|(r, _)| r.topics[0].partitions[0].partition == 1
                && r.topics[0].partitions[0].committed_offset == 10));
        // Until the commit went through, a kept listing t-1 as owned, and b did not get it.
        let events = mock.events();
        let ok = events
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Event::Commit {
                        error: ErrorCode::None,
                        ..
                    }
                )
            })
            .unwrap();
        let granted = events
            .iter()
            .position(|e| {
                matches!(e, Event::Heartbeat { request, assignment, .. }
                    if request.member_id == "m2" && !assignment.is_empty())
            })
            .unwrap();
        assert!(ok < granted);
        let shrunk = events
            .iter()
            .position(|e| {
                matches!(e, Event::Heartbeat { request, assignment, .. }
                    if request.member_id == "m1" && assignment.len() == 1)
            })
            .unwrap();
        for e in &events[shrunk + 1..ok] {
            match e {
                Event::Heartbeat { request, .. } if request.member_id == "m1" => {
                    assert_eq!(
                        request.owned[0].partitions,
                        vec![0, 1],
                        "released too early"
                    )
                }
                Event::Fetch { partitions } => {
                    assert!(
                        !partitions.contains(&(TOPIC.into(), 1)),
                        "t-1 still fetched"
                    )
                }
                _ => {}
            }
        }
        // Nothing read twice: b starts at the committed 10.
        mock.with(|s| s.append(TOPIC, 1, 3));
        while read_b.get(&1).map_or(0, Vec::len) < 3 {
            record(
                &mut read_a,
                a.poll(Duration::from_millis(20)).await.unwrap(),
            );
            record(
                &mut read_b,
                b.poll(Duration::from_millis(20)).await.unwrap(),
            );
        }
        assert_eq!(read_b[&1], range(10, 13));
        a.close().await.unwrap();
        b.close().await.unwrap();
    })
    .await;
}

/// Records what it hears and, on revocation, hands back the offsets it was given.
struct Recorder {
    heard: Arc<Mutex<Vec<String>>>,
    to_commit: BTreeMap<TopicPartition, i64>,
}

fn names(partitions: &[TopicPartition]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl RebalanceListener for Recorder {
    fn on_assigned(&mut self, partitions: &[TopicPartition]) {
        let line = format!("assigned {}", names(partitions));
        self.heard.lock().unwrap().push(line);
    }

    fn on_revoked(&mut self, partitions: &[TopicPartition]) -> BTreeMap<TopicPartition, i64> {
        let line = format!("revoked {}", names(partitions));
        self.heard.lock().unwrap().push(line);
        self.to_commit.clone()
    }

    fn on_lost(&mut self, partitions: &[TopicPartition]) {
        let line = format!("lost {}", names(partitions));
        self.heard.lock().unwrap().push(line);
    }
}

#[tokio::test]
async fn a_listener_commits_its_offsets_on_revocation_and_hears_every_change() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut group = group_config();
        group.enable_auto_commit = false;
        let heard = Arc::new(Mutex::new(Vec::new()));
        let listener = Recorder {
            heard: heard.clone(),
            // t-0 is not revoked: its entry is ignored.
            to_commit: [(tp(1), 7), (tp(0), 2)].into(),
        };
        let client = Client::connect(mock.client_config()).await.unwrap();
        let mut consumer = GroupConsumer::subscribe_with_listener(
            client,
            consumer_config(),
            group,
            vec![TOPIC.into()],
            listener,
        )
        .await
        .unwrap();
        assert_eq!(*heard.lock().unwrap(), vec!["assigned t-0,t-1"]);
        mock.move_partition(1, None);
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |c, _| {
            c.assignment() == vec![tp(0)]
        })
        .await;
        assert_eq!(mock.committed(), [((TOPIC.into(), 1), 7)].into());
        mock.expire("m1");
        poll_until(&mut consumer, &mut read, |c, _| c.member_id() == "m2").await;
        assert_eq!(
            *heard.lock().unwrap(),
            vec![
                "assigned t-0,t-1",
                "revoked t-1",
                "lost t-0",
                "assigned t-0,t-1"
            ]
        );
        consumer.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn commit_async_commits_in_the_background() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let mut group = group_config();
        group.enable_auto_commit = false;
        let mut consumer = join(&mock, group).await;
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        consumer.commit_async().await.unwrap().unwrap();
        assert_eq!(
            mock.committed(),
            [((TOPIC.into(), 0), 10), ((TOPIC.into(), 1), 10)].into()
        );
        mock.with(|s| s.commit_faults.push_back(ErrorCode::UnknownMemberId));
        let err = consumer.commit_async().await.unwrap().unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::UnknownMemberId));
        // Fire and forget: dropped, it still completes.
        mock.with(|s| s.append(TOPIC, 0, 2));
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 22).await;
        drop(consumer.commit_async());
        let deadline = Instant::now() + Duration::from_secs(5);
        while mock.committed()[&(TOPIC.into(), 0)] != 12 {
            assert!(Instant::now() < deadline, "the dropped commit never landed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        consumer.leave().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn lag_comes_from_the_last_fetch() {
    bounded(async {
        let mock = Mock::start(1, 10).await;
        mock.with(|s| s.append(TOPIC, 0, 5));
        let config = ConsumerConfig {
            // One batch per fetch.
            max_partition_bytes: 1,
            ..consumer_config()
        };
        let mut consumer = join_with(&mock, config, group_config()).await;
        assert_eq!(consumer.lag(&tp(0)), None, "lag before any fetch");
        let mut read = Read::new();
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 10).await;
        assert_eq!(count(&read), 10);
        assert_eq!(consumer.lag(&tp(0)), Some(5));
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 15).await;
        assert_eq!(consumer.lag(&tp(0)), Some(0));
        assert_eq!(consumer.lag(&tp(1)), None);
        consumer.close().await.unwrap();
    })
    .await;
}

/// Holds every partition it is given paused while `hold` is set.
struct Holder {
    hold: Arc<Mutex<BTreeSet<TopicPartition>>>,
}

impl RebalanceListener for Holder {
    fn start_paused(&mut self, partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        let hold = self.hold.lock().unwrap();
        partitions
            .iter()
            .filter(|tp| hold.contains(*tp))
            .cloned()
            .collect()
    }
}

#[tokio::test]
async fn partitions_a_listener_starts_paused_are_not_read_until_resumed() {
    bounded(async {
        let mock = Mock::start(2, 10).await;
        let hold = Arc::new(Mutex::new(BTreeSet::from([tp(1)])));
        let client = Client::connect(mock.client_config()).await.unwrap();
        let mut consumer = GroupConsumer::subscribe_with_listener(
            client,
            consumer_config(),
            group_config(),
            vec![TOPIC.into()],
            Holder { hold: hold.clone() },
        )
        .await
        .unwrap();
        assert_eq!(consumer.assignment(), vec![tp(0), tp(1)]);
        assert_eq!(consumer.paused(), vec![tp(1)]);
        assert!(
            consumer.pause(&[TopicPartition::new(TOPIC, 9)]).is_err(),
            "a partition the member does not own cannot be paused"
        );

        // Only t-0 is read, however long the member polls (heartbeats keep going).
        let mut read = Read::new();
        let until = Instant::now() + Duration::from_millis(600);
        while Instant::now() < until {
            record(
                &mut read,
                consumer.poll(Duration::from_millis(20)).await.unwrap(),
            );
        }
        assert_eq!(read.keys().copied().collect::<Vec<_>>(), vec![0]);
        assert_eq!(read[&0], range(0, 10));

        // Resumed, t-1 is read from its start.
        consumer.resume(&[tp(1)]);
        assert!(consumer.paused().is_empty());
        poll_until(&mut consumer, &mut read, |_, r| count(r) >= 20).await;
        assert_eq!(read[&1], range(0, 10));

        // Pausing by hand works the same way for an owned partition.
        consumer.pause(&[tp(0)]).unwrap();
        assert_eq!(consumer.paused(), vec![tp(0)]);
        consumer.close().await.unwrap();
    })
    .await;
}
