//! [`Client`]: the connection layer and metadata cache every SDK handle shares.
//!
//! - One quinn client `Endpoint` per address family, on the caller's tokio runtime.
//! - One QUIC connection per broker address (`host:shard_port`), opened lazily on first use,
//!   greeted with ApiVersions, and re-opened on the next use after it fails, waiting the
//!   reconnect back-off (doubling per consecutive failure, capped) first. Connections are keyed
//!   by address, so their number is bounded by brokers × shards.
//! - One bidirectional stream per request: write the request frame, finish, read one response
//!   frame (none for acks=0 produce). Every request runs under a time limit.
//! - Topic metadata cached per topic; refreshed when older than `metadata_max_age`, when marked
//!   stale after a routing error or a lost connection, or on demand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::protocol::{
    decode_response_frame, encode_request_frame, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    ErrorCode, FrameDecoder, IsolationLevel, ListOffsetsPartition, ListOffsetsRequest,
    ListOffsetsTopic, MetadataRequest, MetadataResponse, OffsetSpec, Request, RequestHeader,
    Response, FRAME_BYTES_MAX_DEFAULT,
};
use crate::quic::stream::{read_frame, write_last_frame};

use super::error::is_routing_error;
use super::{BrokerAddr, ClientConfig, ClientError, TopicPartition};

/// Name this SDK gives itself in ApiVersions.
pub const CLIENT_SOFTWARE_NAME: &str = "quiver-sdk";

/// A shared handle on the connections and metadata of one cluster. Cheap to clone; clones share
/// everything. [`Admin`](super::Admin), [`Producer`](super::Producer) and
/// [`Consumer`](super::Consumer) can be built on one `Client` to share its connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), quiver_transport::client::ClientError> {
/// use quiver_transport::client::{Client, ClientConfig};
///
/// let trust = ClientConfig::trust_from_env_or_default()?;
/// let client = Client::connect(ClientConfig::new("127.0.0.1:9190", trust)).await?;
/// let metadata = client.metadata(None).await?;
/// println!("{} brokers", metadata.brokers.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.config.bootstrap)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: ClientConfig,
    bootstrap: Vec<BrokerAddr>,
    quinn_config: quinn::ClientConfig,
    /// IPv4 and IPv6 client endpoints, created on first use.
    endpoints: Mutex<[Option<quinn::Endpoint>; 2]>,
    slots: Mutex<HashMap<BrokerAddr, Arc<Slot>>>,
    correlation_id: AtomicU32,
    /// Rotates which broker metadata requests go to first.
    metadata_turn: AtomicUsize,
    metadata: Mutex<MetadataCache>,
}

/// One broker address's connection, opened under its own async lock so concurrent callers
/// share one handshake.
#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    conn: Option<Arc<Conn>>,
    failures: u32,
    last_failure: Option<Instant>,
}

/// An open, greeted connection.
struct Conn {
    connection: quinn::Connection,
    versions: ApiVersionsResponse,
    /// Largest request frame the broker accepts.
    frame_bytes_max: u32,
}

#[derive(Default)]
struct MetadataCache {
    topics: HashMap<String, CachedTopic>,
    /// Shard-0 addresses of the brokers last seen, tried for metadata after the bootstrap list.
    brokers: Vec<BrokerAddr>,
}

struct CachedTopic {
    route: Arc<TopicRoute>,
    stale: bool,
}

/// Where a topic's partitions live, from the last Metadata response.
#[derive(Debug)]
pub(crate) struct TopicRoute {
    /// Partitions by number (index == partition number).
    pub partitions: Vec<PartitionRoute>,
    fetched_at: Instant,
}

/// One partition's leader, as far as the client knows.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRoute {
    /// The owning shard's address on the leader, or `None` without a leader.
    pub leader: Option<BrokerAddr>,
}

/// The result of one ListOffsets lookup.
///
/// ```
/// use quiver_transport::client::ListedOffset;
/// let found = ListedOffset { offset: 42, timestamp: -1 };
/// assert_eq!(found.offset, 42);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset found (for a timestamp past the last record: the log end offset).
    pub offset: i64,
    /// Timestamp of the record found, or -1.
    pub timestamp: i64,
}

impl Client {
    /// Sets up the endpoint and checks the cluster is reachable: greets a bootstrap broker with
    /// ApiVersions and fetches the broker list. Must run inside a tokio runtime.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let client = Client::new(config)?;
        client.ensure_apis(&[ApiKey::Metadata]).await?;
        client.metadata(Some(Vec::new())).await?;
        Ok(client)
    }

    /// Like [`Client::connect`] without touching the network: connections open on first use.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let bootstrap = config.bootstrap_addrs()?;
        let quinn_config = crate::quic::client_config(&config.trust, &config.tuning)
            .map_err(|e| ClientError::Config(format!("TLS: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                bootstrap,
                quinn_config,
                endpoints: Mutex::new([None, None]),
                slots: Mutex::new(HashMap::new()),
                correlation_id: AtomicU32::new(1),
                metadata_turn: AtomicUsize::new(0),
                metadata: Mutex::new(MetadataCache::default()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Checks that a bootstrap broker speaks every api in `apis`; a clear
    /// [`ClientError::UnsupportedApi`] otherwise.
    pub async fn ensure_apis(&self, apis: &[ApiKey]) -> Result<(), ClientError> {
        let mut last_error = None;
        for addr in self.inner.bootstrap.clone() {
            match self.connection(&addr).await {
                Ok(conn) => {
                    for &api in apis {
                        if conn.versions.negotiate(api).is_none() {
                            return Err(ClientError::UnsupportedApi {
                                api,
                                broker: addr.to_string(),
                            });
                        }
                    }
                    return Ok(());
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Config("no bootstrap broker".into())))
    }

    /// Fetches metadata for `topics` (`None`: every topic; empty: brokers only) from any
    /// broker, and refreshes the cache with it.
    pub async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        let response = self
            .request_any(Request::from(MetadataRequest { topics }))
            .await?;
        let Response::Metadata(metadata) = response else {
            return Err(unexpected(ApiKey::Metadata, &response));
        };
        self.update_cache(&metadata);
        Ok(metadata)
    }

    /// Marks a topic's cached metadata stale, so its next use refreshes it.
    pub fn invalidate_metadata(&self, topic: &str) {
        if let Some(cached) = self.cache().topics.get_mut(topic) {
            cached.stale = true;
        }
    }

    /// Looks up offsets (earliest, latest, or by timestamp) on each partition's leader shard,
    /// retrying retriable errors after a metadata refresh until `request_timeout` has passed.
    pub async fn list_offsets(
        &self,
        specs: &[(TopicPartition, OffsetSpec)],
    ) -> Result<HashMap<TopicPartition, ListedOffset>, ClientError> {
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let mut found = HashMap::new();
        let mut todo: Vec<(TopicPartition, OffsetSpec)> = specs.to_vec();
        let mut backoff = self.inner.config.reconnect_backoff;
        loop {
            let mut retry = Vec::new();
            let mut last_error = None;
            let mut by_leader: HashMap<BrokerAddr, Vec<(TopicPartition, OffsetSpec)>> =
                HashMap::new();
            for (tp, spec) in todo {
                match self.leader_for(&tp).await {
                    Ok(addr) => by_leader.entry(addr).or_default().push((tp, spec)),
                    Err(e) if e.is_retriable() => {
                        last_error = Some(e);
                        retry.push((tp, spec));
                    }
                    Err(e) => return Err(e),
                }
            }
            for (addr, lookups) in by_leader {
                let outcome = self.list_offsets_on(&addr, &lookups).await;
                match outcome {
                    Ok(results) => {
                        for ((tp, spec), result) in lookups.into_iter().zip(results) {
                            match result {
                                Ok(listed) => {
                                    found.insert(tp, listed);
                                }
                                Err(e) if e.is_retriable() => {
                                    if e.needs_metadata_refresh() {
                                        self.invalidate_metadata(&tp.topic);
                                    }
                                    last_error = Some(e);
                                    retry.push((tp, spec));
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        for (tp, _) in &lookups {
                            self.invalidate_metadata(&tp.topic);
                        }
                        last_error = Some(e);
                        retry.extend(lookups);
                    }
                    Err(e) => return Err(e),
                }
            }
            if retry.is_empty() {
                return Ok(found);
            }
            if Instant::now() + backoff > deadline {
                return Err(last_error.unwrap_or(ClientError::Timeout {
                    what: "ListOffsets".into(),
                    after: self.inner.config.request_timeout,
                }));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.inner.config.reconnect_backoff_max);
            todo = retry;
        }
    }

    /// One ListOffsets request to `addr`; one result per lookup, in order.
    async fn list_offsets_on(
        &self,
        addr: &BrokerAddr,
        lookups: &[(TopicPartition, OffsetSpec)],
    ) -> Result<Vec<Result<ListedOffset, ClientError>>, ClientError> {
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for (tp, spec) in lookups {
            let partition = ListOffsetsPartition {
                partition: tp.partition,
                current_leader_epoch: -1,
                timestamp: *spec,
            };
            match topics.iter_mut().find(|t| t.name == tp.topic) {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(ListOffsetsTopic {
                    name: tp.topic.clone(),
                    partitions: vec![partition],
                }),
            }
        }
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: IsolationLevel::ReadUncommitted,
            topics,
        };
        let timeout = self.inner.config.request_timeout;
        let response = self.request(addr, request.into(), timeout).await?;
        let Response::ListOffsets(response) = response else {
            return Err(unexpected(ApiKey::ListOffsets, &response));
        };
        Ok(lookups
            .iter()
            .map(|(tp, _)| {
                let found = response
                    .topics
                    .iter()
                    .filter(|t| t.name == tp.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition == tp.partition);
                match found {
                    None => Err(ClientError::Protocol(format!(
                        "ListOffsets response lacks {tp}"
                    ))),
                    Some(p) if !p.error_code.is_ok() => Err(ClientError::broker(
                        p.error_code,
                        None,
                        &tp.topic,
                        Some(tp.partition),
                    )),
                    Some(p) => Ok(ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp_ms,
                    }),
                }
            })
            .collect())
    }

    // ---- metadata cache -------------------------------------------------------------------

    fn cache(&self) -> MutexGuard<'_, MetadataCache> {
        // A poisoned cache only means a panic elsewhere; the map itself is always consistent.
        self.inner
            .metadata
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_cache(&self, metadata: &MetadataResponse) {
        let now = Instant::now();
        let mut cache = self.cache();
        if !metadata.brokers.is_empty() {
            cache.brokers = metadata
                .brokers
                .iter()
                .map(|b| BrokerAddr::new(b.host.clone(), b.port))
                .collect();
        }
        for topic in &metadata.topics {
            if !topic.error_code.is_ok() {
                cache.topics.remove(&topic.name);
                continue;
            }
            let count = topic
                .partitions
                .iter()
                .map(|p| p.partition.saturating_add(1).max(0))
                .max()
                .unwrap_or(0);
            let mut partitions =
                vec![PartitionRoute { leader: None }; usize::try_from(count).unwrap_or(0)];
            for p in &topic.partitions {
                let Ok(index) = usize::try_from(p.partition) else {
                    continue;
                };
                let has_leader = p.error_code.is_ok() && p.leader_id >= 0;
                partitions[index].leader =
                    has_leader.then(|| BrokerAddr::new(p.leader_host.clone(), p.leader_shard_port));
            }
            cache.topics.insert(
                topic.name.clone(),
                CachedTopic {
                    route: Arc::new(TopicRoute {
                        partitions,
                        fetched_at: now,
                    }),
                    stale: false,
                },
            );
        }
    }

    /// The cached route of `topic` if fresh (not stale, not too old).
    pub(crate) fn cached_route(&self, topic: &str) -> Option<Arc<TopicRoute>> {
        let cache = self.cache();
        let cached = cache.topics.get(topic)?;
        let fresh =
            !cached.stale && cached.route.fetched_at.elapsed() < self.inner.config.metadata_max_age;
        fresh.then(|| cached.route.clone())
    }

    /// The route of `topic`, refreshing the cache when needed. A topic the cluster does not
    /// have gives a retriable `UnknownTopicOrPartition` [`ClientError::Broker`].
    pub(crate) async fn route(&self, topic: &str) -> Result<Arc<TopicRoute>, ClientError> {
        if let Some(route) = self.cached_route(topic) {
            return Ok(route);
        }
        let metadata = self.metadata(Some(vec![topic.to_string()])).await?;
        if let Some(t) = metadata.topics.iter().find(|t| t.name == topic) {
            if !t.error_code.is_ok() {
                return Err(ClientError::broker(t.error_code, None, topic, None));
            }
        }
        let cache = self.cache();
        match cache.topics.get(topic) {
            Some(cached) => Ok(cached.route.clone()),
            None => Err(ClientError::broker(
                ErrorCode::UnknownTopicOrPartition,
                None,
                topic,
                None,
            )),
        }
    }

    /// The address of the shard leading `tp`.
    pub(crate) async fn leader_for(&self, tp: &TopicPartition) -> Result<BrokerAddr, ClientError> {
        let route = self.route(&tp.topic).await?;
        let partition = usize::try_from(tp.partition)
            .ok()
            .and_then(|i| route.partitions.get(i));
        match partition {
            None => Err(ClientError::broker(
                ErrorCode::UnknownTopicOrPartition,
                None,
                &tp.topic,
                Some(tp.partition),
            )),
            Some(PartitionRoute { leader: None }) => {
                self.invalidate_metadata(&tp.topic);
                Err(ClientError::broker(
                    ErrorCode::LeaderNotAvailable,
                    None,
                    &tp.topic,
                    Some(tp.partition),
                ))
            }
            Some(PartitionRoute {
                leader: Some(addr), ..
            }) => Ok(addr.clone()),
        }
    }

    // ---- requests ---------------------------------------------------------------------------

    /// Sends `request` to any broker: the bootstrap list, then the brokers last seen, starting
    /// at a rotating position; the first that answers wins.
    pub(crate) async fn request_any(&self, request: Request) -> Result<Response, ClientError> {
        let mut candidates = self.inner.bootstrap.clone();
        for broker in self.cache().brokers.iter() {
            if !candidates.contains(broker) {
                candidates.push(broker.clone());
            }
        }
        let turn = self.inner.metadata_turn.load(Ordering::Relaxed);
        let timeout = self.inner.config.request_timeout;
        let mut last_error = None;
        for i in 0..candidates.len() {
            let addr = &candidates[(turn + i) % candidates.len()];
            match self.request(addr, request.clone(), timeout).await {
                Ok(response) => return Ok(response),
                Err(e) if e.is_retriable() => {
                    // Next time start with the next broker.
                    self.inner.metadata_turn.fetch_add(1, Ordering::Relaxed);
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Config("no broker to ask".into())))
    }

    /// Sends one request to `addr` and waits up to `timeout` for its response.
    pub(crate) async fn request(
        &self,
        addr: &BrokerAddr,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let api = request.api_key();
        let exchange = async {
            let conn = self.connection(addr).await?;
            let result = self.exchange(addr, &conn, &request, true).await;
            self.after_error(addr, &conn, &result);
            result
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result.map(|r| r.expect("a response was awaited")),
            Err(_) => Err(ClientError::Timeout {
                what: format!("{api} request to {addr}"),
                after: timeout,
            }),
        }
    }

    /// Sends one request that gets no response (acks=0 produce): returns once the frame is
    /// written and the stream finished.
    pub(crate) async fn send_oneway(
        &self,
        addr: &BrokerAddr,
        request: Request,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let api = request.api_key();
        let exchange = async {
            let conn = self.connection(addr).await?;
            let result = self.exchange(addr, &conn, &request, false).await;
            self.after_error(addr, &conn, &result);
            result.map(|_| ())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    what: format!("{api} request to {addr}"),
                    after: timeout,
                })
            })
    }

    /// Forgets a connection that failed, so the next request re-opens it.
    fn after_error<T>(&self, addr: &BrokerAddr, conn: &Arc<Conn>, result: &Result<T, ClientError>) {
        if matches!(result, Err(ClientError::Connection { .. }))
            && conn.connection.close_reason().is_some()
        {
            let slot = self.slot(addr);
            // Only if nobody has replaced it yet; a busy slot is being re-opened anyway.
            let state = slot.state.try_lock();
            if let Ok(mut state) = state {
                if state
                    .conn
                    .as_ref()
                    .is_some_and(|current| Arc::ptr_eq(current, conn))
                {
                    state.conn = None;
                }
            }
        }
    }

    /// One stream: write the request, then read and decode the response if `await_response`.
    async fn exchange(
        &self,
        addr: &BrokerAddr,
        conn: &Conn,
        request: &Request,
        await_response: bool,
    ) -> Result<Option<Response>, ClientError> {
        let api = request.api_key();
        let version = conn
            .versions
            .negotiate(api)
            .ok_or_else(|| ClientError::UnsupportedApi {
                api,
                broker: addr.to_string(),
            })?;
        let response = exchange_on(
            &conn.connection,
            addr,
            self.next_correlation_id(),
            &self.inner.config.client_id,
            request,
            version,
            conn.frame_bytes_max,
            await_response,
        )
        .await?;
        match response {
            Some(Response::Rejected(code)) => Err(ClientError::Rejected {
                api,
                code,
                broker: addr.to_string(),
            }),
            other => Ok(other),
        }
    }

    fn next_correlation_id(&self) -> u32 {
        self.inner.correlation_id.fetch_add(1, Ordering::Relaxed)
    }

    fn slot(&self, addr: &BrokerAddr) -> Arc<Slot> {
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(addr.clone()).or_default().clone()
    }

    /// The open connection to `addr`, opening (and greeting) it first if needed.
    async fn connection(&self, addr: &BrokerAddr) -> Result<Arc<Conn>, ClientError> {
        let slot = self.slot(addr);
        let mut state = slot.state.lock().await;
        if let Some(conn) = &state.conn {
            if conn.connection.close_reason().is_none() {
                return Ok(conn.clone());
            }
            state.conn = None;
        }
        if let Some(failed_at) = state.last_failure {
            let config = &self.inner.config;
            let exponent = state.failures.saturating_sub(1).min(16);
            let backoff = config
                .reconnect_backoff
                .saturating_mul(1 << exponent)
                .min(config.reconnect_backoff_max);
            let wait = backoff.saturating_sub(failed_at.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        match tokio::time::timeout(self.inner.config.request_timeout, self.open(addr)).await {
            Ok(Ok(conn)) => {
                let conn = Arc::new(conn);
                state.conn = Some(conn.clone());
                state.failures = 0;
                state.last_failure = None;
                Ok(conn)
            }
            Ok(Err(e)) => {
                state.failures = state.failures.saturating_add(1);
                state.last_failure = Some(Instant::now());
                Err(e)
            }
            Err(_) => {
                state.failures = state.failures.saturating_add(1);
                state.last_failure = Some(Instant::now());
                Err(ClientError::Connect {
                    addr: addr.to_string(),
                    reason: format!(
                        "no handshake within {:?}",
                        self.inner.config.request_timeout
                    ),
                })
            }
        }
    }

    fn endpoint(&self, ipv4: bool) -> Result<quinn::Endpoint, ClientError> {
        let mut endpoints = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = &mut endpoints[usize::from(!ipv4)];
        if let Some(endpoint) = slot {
            return Ok(endpoint.clone());
        }
        let bind: SocketAddr = if ipv4 {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let bind_error =
            |e: std::io::Error| ClientError::Config(format!("binding a UDP socket on {bind}: {e}"));
        let (socket, _buffers) =
            crate::quic::socket::bind_socket(bind, crate::quic::socket::SOCKET_BUFFER_BYTES)
                .map_err(bind_error)?;
        let runtime: std::sync::Arc<dyn quinn::Runtime> = std::sync::Arc::new(quinn::TokioRuntime);
        let mut endpoint =
            quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
                .map_err(bind_error)?;
        endpoint.set_default_client_config(self.inner.quinn_config.clone());
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// Resolves, connects, and exchanges ApiVersions.
    async fn open(&self, addr: &BrokerAddr) -> Result<Conn, ClientError> {
        let connect_err = |reason: String| ClientError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let socket_addr = tokio::net::lookup_host((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| connect_err(format!("resolving: {e}")))?
            .next()
            .ok_or_else(|| connect_err("host resolves to no address".into()))?;
        let endpoint = self.endpoint(socket_addr.is_ipv4())?;
        let connection = endpoint
            .connect(socket_addr, &addr.host)
            .map_err(|e| connect_err(e.to_string()))?
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let request = Request::from(ApiVersionsRequest {
            client_software_name: CLIENT_SOFTWARE_NAME.into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
        });
        let response = exchange_on(
            &connection,
            addr,
            self.next_correlation_id(),
            &self.inner.config.client_id,
            &request,
            0,
            FRAME_BYTES_MAX_DEFAULT,
            true,
        )
        .await
        .map_err(|e| connect_err(format!("ApiVersions: {e}")))?;
        let versions = match response {
            Some(Response::ApiVersions(versions)) => versions,
            Some(Response::Rejected(code)) => {
                return Err(connect_err(format!("ApiVersions rejected: {code}")))
            }
            other => {
                return Err(connect_err(format!(
                    "unexpected answer to ApiVersions: {other:?}"
                )))
            }
        };
        let frame_bytes_max = versions.frame_bytes_max.min(FRAME_BYTES_MAX_DEFAULT);
        Ok(Conn {
            connection,
            versions,
            frame_bytes_max,
        })
    }
}

/// The stream-level exchange, shared by the ApiVersions greeting and every later request.
#[allow(clippy::too_many_arguments)]
async fn exchange_on(
    connection: &quinn::Connection,
    addr: &BrokerAddr,
    correlation_id: u32,
    client_id: &str,
    request: &Request,
    version: u16,
    frame_bytes_max: u32,
    await_response: bool,
) -> Result<Option<Response>, ClientError> {
    let api = request.api_key();
    let lost = |reason: String| ClientError::Connection {
        addr: addr.to_string(),
        reason,
    };
    let header = RequestHeader {
        api_key: api.code(),
        api_version: version,
        correlation_id,
        client_id: Some(client_id.to_string()),
    };
    let chunks = encode_request_frame(&header, request, frame_bytes_max)
        .map_err(|e| ClientError::Protocol(format!("encoding {api} request: {e}")))?;
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| lost(e.to_string()))?;
    write_last_frame(&mut send, chunks)
        .await
        .map_err(|e| lost(e.to_string()))?;
    if !await_response {
        return Ok(None);
    }
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    let frame = read_frame(&mut recv, &mut decoder)
        .await
        .map_err(|e| lost(e.to_string()))?
        .ok_or_else(|| lost(format!("stream ended without a {api} response")))?;
    let (response_header, response) = decode_response_frame(frame, api, version)
        .map_err(|e| ClientError::Protocol(format!("decoding {api} response: {e}")))?;
    if response_header.correlation_id != correlation_id {
        return Err(ClientError::Protocol(format!(
            "{api} response has correlation id {}, expected {correlation_id}",
            response_header.correlation_id
        )));
    }
    Ok(Some(response))
}

/// The error for a response of the wrong api.
pub(crate) fn unexpected(api: ApiKey, response: &Response) -> ClientError {
    ClientError::Protocol(format!(
        "expected a {api} response, got {:?}",
        response.api_key()
    ))
}

/// Whether `code` asks for a metadata refresh before retrying.
pub(crate) fn needs_refresh(code: ErrorCode) -> bool {
    is_routing_error(code)
}
