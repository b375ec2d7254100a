//! [`PeerClient`]: one shard's requests to other brokers (controller quorum traffic, heartbeats,
//! replica fetches), over QUIC on the shard's own glommio executor.
//!
//! - Lives on one shard: `!Send`, created and used on the executor that runs its endpoint
//!   ([`super::glommio`]). Share it between the shard's tasks with an `Rc`.
//! - One client endpoint per address family: IPv4 bound at creation, IPv6 on first use.
//! - One cached QUIC connection per peer address string, opened on first use under a per-peer
//!   lock (concurrent first requests share one handshake). The server name is the address's
//!   host part, as the SDK uses it (broker certificates name `localhost`, `127.0.0.1` and `::1`
//!   besides their configured names). Resolutions are cached with the connection. The number of
//!   cached peers is the number of distinct addresses asked (brokers × shards in a cluster).
//! - One bidirectional stream per request: one request frame (api version 0, a fresh
//!   correlation id), finish, one response frame. No ApiVersions greeting: brokers of one
//!   cluster run one build.
//! - Every request is bounded by its timeout, connecting included.
//! - A cached connection is dropped when it is found closed, when a request on it failed
//!   because the connection did, and when a request on it timed out (a peer that restarted
//!   without closing looks like one that stopped answering); the next request reconnects and,
//!   after a failed connect, resolves again. Requests still in flight on a dropped connection
//!   finish on it.
//! - Input from the peer never panics: it is a [`PeerError`].
//!
//! A response the peer refused as a whole comes back as `Ok(Response::Rejected(code))`: only
//! transport failures are errors here.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use crate::client::BrokerAddr;
use crate::protocol::{
    decode_response_frame, encode_request_frame, ApiKey, FrameDecoder, Request, RequestHeader,
    Response, FRAME_BYTES_MAX_DEFAULT,
};
use crate::quic::glommio::client_endpoint;
use crate::quic::stream::{read_frame, write_last_frame};

/// Why a request to a peer failed. Every variant names the peer; none is the caller's to fix
/// except [`PeerError::Encode`]. All but `Encode` may succeed on a later try.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A client endpoint could not be bound. Environmental (no free port, no IPv6).
    #[error("binding a QUIC client endpoint on {bind}: {reason}")]
    Bind {
        /// The local address asked for.
        bind: SocketAddr,
        /// The cause.
        reason: String,
    },
    /// The address is not `host:port`, or the host does not resolve.
    #[error("resolving peer {addr}: {reason}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The cause.
        reason: String,
    },
    /// The QUIC handshake failed or was refused (TLS, ALPN, the peer closed it).
    #[error("connecting to peer {addr}: {reason}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The cause.
        reason: String,
    },
    /// No response within the time limit (connecting included).
    #[error("{api} request to peer {addr}: no response within {after:?}")]
    Timeout {
        /// The address as given.
        addr: String,
        /// The request's api.
        api: ApiKey,
        /// The time limit.
        after: Duration,
    },
    /// The stream or its connection failed, or the peer ended the stream without a response.
    #[error("{api} request to peer {addr}: stream failed: {reason}")]
    Stream {
        /// The address as given.
        addr: String,
        /// The request's api.
        api: ApiKey,
        /// The cause.
        reason: String,
    },
    /// The peer's answer is not a response to this request (undecodable, wrong correlation id).
    #[error("{api} response from peer {addr} is invalid: {reason}")]
    Decode {
        /// The address as given.
        addr: String,
        /// The request's api.
        api: ApiKey,
        /// What is wrong.
        reason: String,
    },
    /// The request cannot be encoded (larger than a frame may be): a bug in the caller.
    #[error("{api} request to peer {addr} cannot be encoded: {reason}")]
    Encode {
        /// The address as given.
        addr: String,
        /// The request's api.
        api: ApiKey,
        /// What is wrong.
        reason: String,
    },
}

/// A shard's QUIC client to other brokers. See the module documentation.
pub struct PeerClient {
    client_config: quinn::ClientConfig,
    client_id: String,
    endpoint_v4: quinn::Endpoint,
    /// Bound on the first request to an IPv6 address.
    endpoint_v6: RefCell<Option<quinn::Endpoint>>,
    /// Peers by the address string callers use.
    peers: RefCell<HashMap<String, Rc<Peer>>>,
    next_correlation_id: Cell<u32>,
}

/// One peer address: where it resolved to and its connection.
struct Peer {
    socket_addr: SocketAddr,
    /// The TLS server name: the address's host part.
    server_name: String,
    /// The cached connection; the lock is held while checking it and while connecting.
    connection: tokio::sync::Mutex<Option<quinn::Connection>>,
}

/// How far a request got before it failed, so the failure drops the right cached state.
#[derive(Default)]
struct Progress {
    peer: Option<Rc<Peer>>,
    connection: Option<quinn::Connection>,
}

impl PeerClient {
    /// A client whose connections use `client_config` and whose requests carry `client_id`.
    /// Binds the IPv4 endpoint (`0.0.0.0:0`) now.
    ///
    /// # Panics
    /// If the calling thread runs no glommio executor.
    pub fn new(client_config: quinn::ClientConfig, client_id: String) -> Result<Self, PeerError> {
        let endpoint_v4 = bind(SocketAddr::from(([0, 0, 0, 0], 0)), &client_config)?;
        Ok(PeerClient {
            client_config,
            client_id,
            endpoint_v4,
            endpoint_v6: RefCell::new(None),
            peers: RefCell::new(HashMap::new()),
            next_correlation_id: Cell::new(1),
        })
    }

    /// Sends `request` (version 0) to the broker at `addr` (`host:port`, `[v6]:port`) and
    /// returns its response, all within `timeout`. A response the peer refused as a whole is
    /// `Ok(Response::Rejected(_))`.
    ///
    /// The host is resolved with the system resolver, which blocks the shard: IP literals
    /// resolve at once, and names are resolved once per connection.
    pub async fn request(
        &self,
        addr: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, PeerError> {
        self.request_as(addr, None, request, timeout).await
    }

    /// [`PeerClient::request`] with `client_id` in the request header instead of this
    /// client's own (a broker passing on a client's request names the client).
    pub async fn request_as(
        &self,
        addr: &str,
        client_id: Option<&str>,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, PeerError> {
        let api = request.api_key();
        let progress = RefCell::new(Progress::default());
        let exchange = self.exchange(addr, client_id, &request, &progress);
        let result = match within(timeout, exchange).await {
            Some(result) => result,
            None => Err(PeerError::Timeout {
                addr: addr.to_string(),
                api,
                after: timeout,
            }),
        };
        if result.is_err() {
            self.after_failure(addr, progress.into_inner(), &result);
        }
        result
    }

    /// The exchange [`PeerClient::request`] bounds; records its progress for failure handling.
    async fn exchange(
        &self,
        addr: &str,
        client_id: Option<&str>,
        request: &Request,
        progress: &RefCell<Progress>,
    ) -> Result<Response, PeerError> {
        let api = request.api_key();
        let peer = self.peer(addr)?;
        progress.borrow_mut().peer = Some(peer.clone());
        let connection = self.connection(addr, &peer).await?;
        progress.borrow_mut().connection = Some(connection.clone());

        let stream_error = |reason: String| PeerError::Stream {
            addr: addr.to_string(),
            api,
            reason,
        };
        let decode_error = |reason: String| PeerError::Decode {
            addr: addr.to_string(),
            api,
            reason,
        };
        let correlation_id = self.next_correlation_id.get();
        self.next_correlation_id.set(correlation_id.wrapping_add(1));
        let header = RequestHeader {
            api_key: api.code(),
            api_version: 0,
            correlation_id,
            client_id: Some(client_id.unwrap_or(&self.client_id).to_string()),
        };
        let chunks =
            encode_request_frame(&header, request, FRAME_BYTES_MAX_DEFAULT).map_err(|e| {
                PeerError::Encode {
                    addr: addr.to_string(),
                    api,
                    reason: e.to_string(),
                }
            })?;
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        write_last_frame(&mut send, chunks)
            .await
            .map_err(|e| stream_error(e.to_string()))?;
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let frame = read_frame(&mut recv, &mut decoder)
            .await
            .map_err(|e| stream_error(e.to_string()))?
            .ok_or_else(|| stream_error("the peer ended the stream without a response".into()))?;
        let (response_header, response) =
            decode_response_frame(frame, api, 0).map_err(|e| decode_error(e.to_string()))?;
        if response_header.correlation_id != correlation_id {
            return Err(decode_error(format!(
                "correlation id {}, expected {correlation_id}",
                response_header.correlation_id
            )));
        }
        Ok(response)
    }

    /// The cached peer for `addr`, resolving it first if needed.
    fn peer(&self, addr: &str) -> Result<Rc<Peer>, PeerError> {
        if let Some(peer) = self.peers.borrow().get(addr) {
            return Ok(peer.clone());
        }
        let resolve_error = |reason: String| PeerError::Resolve {
            addr: addr.to_string(),
            reason,
        };
        let parsed = BrokerAddr::parse(addr).map_err(|e| resolve_error(e.to_string()))?;
        let socket_addr = (parsed.host.as_str(), parsed.port)
            .to_socket_addrs()
            .map_err(|e| resolve_error(e.to_string()))?
            .next()
            .ok_or_else(|| resolve_error("the host resolves to no address".into()))?;
        let peer = Rc::new(Peer {
            socket_addr,
            server_name: parsed.host,
            connection: tokio::sync::Mutex::new(None),
        });
        self.peers
            .borrow_mut()
            .insert(addr.to_string(), peer.clone());
        Ok(peer)
    }

    /// The peer's open connection, connecting first if there is none or it was closed.
    async fn connection(&self, addr: &str, peer: &Peer) -> Result<quinn::Connection, PeerError> {
        let mut slot = peer.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            if connection.close_reason().is_none() {
                return Ok(connection.clone());
            }
            *slot = None;
        }
        let connect_error = |reason: String| PeerError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let endpoint = self.endpoint_for(peer.socket_addr)?;
        let connection = endpoint
            .connect(peer.socket_addr, &peer.server_name)
            .map_err(|e| connect_error(e.to_string()))?
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// The endpoint of `target`'s address family, binding the IPv6 one on first use.
    fn endpoint_for(&self, target: SocketAddr) -> Result<quinn::Endpoint, PeerError> {
        if target.is_ipv4() {
            return Ok(self.endpoint_v4.clone());
        }
        let mut v6 = self.endpoint_v6.borrow_mut();
        if let Some(endpoint) = v6.as_ref() {
            return Ok(endpoint.clone());
        }
        let endpoint = bind(SocketAddr::from(([0u16; 8], 0)), &self.client_config)?;
        *v6 = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// Drops what a failed request shows to be bad: the connection it used if that failed or
    /// timed out, or the peer's resolution if no connection could be had.
    fn after_failure(&self, addr: &str, progress: Progress, result: &Result<Response, PeerError>) {
        let Some(peer) = progress.peer else {
            return; // Failed before resolving: nothing is cached.
        };
        let Some(used) = progress.connection else {
            // Connecting failed or timed out: resolve again next time.
            let mut peers = self.peers.borrow_mut();
            if peers.get(addr).is_some_and(|p| Rc::ptr_eq(p, &peer)) {
                peers.remove(addr);
            }
            return;
        };
        let timed_out = matches!(result, Err(PeerError::Timeout { .. }));
        if !timed_out && used.close_reason().is_none() {
            return; // The stream failed, the connection is fine.
        }
        // A held lock means another request is connecting, so the slot no longer holds `used`
        // as a live connection; it is replaced there.
        let Ok(mut slot) = peer.connection.try_lock() else {
            return;
        };
        if slot
            .as_ref()
            .is_some_and(|c| c.stable_id() == used.stable_id())
        {
            *slot = None;
        }
    }
}

impl fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerClient")
            .field("client_id", &self.client_id)
            .field("peers", &self.peers.borrow().len())
            .finish_non_exhaustive()
    }
}

fn bind(at: SocketAddr, client_config: &quinn::ClientConfig) -> Result<quinn::Endpoint, PeerError> {
    client_endpoint(at, client_config.clone(), quinn::EndpointConfig::default()).map_err(|e| {
        PeerError::Bind {
            bind: at,
            reason: e.to_string(),
        }
    })
}

/// `work`'s output, or `None` once `timeout` has passed (then `work` is dropped).
async fn within<T>(timeout: Duration, work: impl Future<Output = T>) -> Option<T> {
    let mut work = pin!(work);
    let mut timer = pin!(glommio::timer::sleep(timeout));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
