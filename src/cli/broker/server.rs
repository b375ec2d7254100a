//! The broker process: one pinned glommio executor per shard, each running the engine's
//! `ShardBroker` and its own quinn endpoint on `listen port + shard` (ARCHITECTURE §5), plus a
//! metrics thread, all stopped together on SIGINT/SIGTERM.
//!
//! Per QUIC connection, every bidirectional stream carries one request frame and gets one
//! response frame (none for a produce with acks=0). A stream whose frame is malformed gets a
//! rejection and is closed; the connection and every other client keep going.
//!
//! Shutdown: the signal thread raises a flag that each shard polls every
//! [`SHUTDOWN_POLL`]; a shard then closes its endpoint, gives requests in flight up to
//! [`DRAIN_TIMEOUT`], and closes its logs (flushed, clean-shutdown marker written). A shard that
//! fails to start or hits a fatal storage error raises the same flag with an error, so the whole
//! process exits with status 3 (`CliError::Fatal`) instead of leaving half the shards alive.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use quiver_engine::broker::{Peers, ShardBroker, ShardMetrics, ShardSeed};
use quiver_engine::rt::{prepare_executor, ExecutorConfig};
use quiver_transport::protocol::{
    encode_response_frame, ErrorCode, FrameDecoder, FrameError, Response, ResponseHeader,
};
use quiver_transport::quic::peers::PeerClient;
use quiver_transport::quic::stream::{read_frame, write_last_frame, StreamError};

use super::config::Settings;

/// How often a shard checks the shutdown flag.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// How long a stopping shard waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often shards publish their metrics for the metrics thread.
pub const METRICS_PUBLISH: Duration = Duration::from_secs(1);
/// QUIC application close code for a broker shutting down.
const CLOSE_SHUTDOWN: u32 = 0;

/// The engine's [`Peers`] over this shard's QUIC client to other brokers.
struct QuicPeers(PeerClient);

impl Peers for QuicPeers {
    fn request_as<'a>(
        &'a self,
        addr: &'a str,
        client_id: Option<&'a str>,
        request: quiver_transport::protocol::Request,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Response, String>> + 'a>> {
        Box::pin(async move {
            self.0
                .request_as(addr, client_id, request, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// What shards tell the main thread.
pub enum ShardEvent {
    /// The shard opened its partitions and listens.
    Ready,
    /// The shard failed; the process must stop.
    Fatal(usize, String),
    /// The shard stopped cleanly.
    Stopped,
}

/// State shared between the main thread, the shards and the metrics thread. Nothing here is on
/// the data path: a flag polled every 50 ms and a metrics slot written once a second.
pub struct Shared {
    pub stop: AtomicBool,
    pub metrics: Mutex<Vec<Option<ShardMetrics>>>,
}

/// Spawns shard `shard` on its own executor thread.
pub fn spawn_shard(
    shard: usize,
    seed: ShardSeed,
    settings: &Settings,
    server_config: quinn::ServerConfig,
    peer_client_config: Option<quinn::ClientConfig>,
    shared: Arc<Shared>,
    events: mpsc::Sender<ShardEvent>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let executor = ExecutorConfig {
        name: format!("quiver-shard-{shard}"),
        cpu: None,
        io_memory_bytes: settings.io_memory_bytes,
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = settings.pin.then_some(shard % cores);
    let data_dir = settings.data_dir.clone();
    let frame_bytes_max = settings.frame_bytes_max;
    let addr = SocketAddr::new(settings.listen.ip(), settings.listen.port() + shard as u16);
    let executor = ExecutorConfig { cpu, ..executor };
    std::thread::Builder::new()
        .name(format!("quiver-shard-{shard}-main"))
        .spawn(move || {
            let events2 = events.clone();
            let result = executor.spawn(move || async move {
                run_shard(ShardRun {
                    shard,
                    seed,
                    data_dir,
                    addr,
                    server_config,
                    peer_client_config,
                    frame_bytes_max,
                    shared,
                    events: events2,
                })
                .await
            });
            match result {
                Ok(Ok(())) => {
                    let _ = events.send(ShardEvent::Stopped);
                }
                Ok(Err(e)) => {
                    let _ = events.send(ShardEvent::Fatal(shard, e));
                }
                Err(e) => {
                    let _ = events.send(ShardEvent::Fatal(shard, format!("executor: {e}")));
                }
            }
        })
}

/// Everything one shard's executor needs.
struct ShardRun {
    shard: usize,
    seed: ShardSeed,
    data_dir: std::path::PathBuf,
    addr: SocketAddr,
    server_config: quinn::ServerConfig,
    /// QUIC client configuration for connections to the other brokers of the cluster (trusting
    /// `--tls-ca`); `None` for a single broker.
    peer_client_config: Option<quinn::ClientConfig>,
    frame_bytes_max: u32,
    shared: Arc<Shared>,
    events: mpsc::Sender<ShardEvent>,
}

async fn run_shard(run: ShardRun) -> Result<(), String> {
    let ShardRun {
        shard,
        seed,
        data_dir,
        addr,
        server_config,
        peer_client_config,
        frame_bytes_max,
        shared,
        events,
    } = run;
    prepare_executor(&data_dir)
        .await
        .map_err(|e| format!("preparing direct IO in {}: {e}", data_dir.display()))?;
    let broker = ShardBroker::start(seed)
        .await
        .map_err(|e| format!("starting: {e}"))?;
    let endpoint = match quiver_transport::quic::glommio::server_endpoint(
        addr,
        server_config,
        quinn::EndpointConfig::default(),
    ) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            broker.shutdown().await;
            return Err(format!("listening on {addr} (UDP): {e}"));
        }
    };
    if let Some(client_config) = peer_client_config {
        let peers = PeerClient::new(client_config, format!("quiver-broker-shard-{shard}"))
            .map_err(|e| format!("the client for other brokers: {e}"))?;
        if let Err(e) = broker.join_cluster(Rc::new(QuicPeers(peers))).await {
            broker.shutdown().await;
            return Err(format!("joining the cluster: {e}"));
        }
    }
    let _ = events.send(ShardEvent::Ready);

    let connections = Rc::new(Connections::default());
    let accept = {
        let endpoint = endpoint.clone();
        let broker = broker.clone();
        let connections = connections.clone();
        glommio::spawn_local(async move {
            while let Some(incoming) = endpoint.accept().await {
                let broker = broker.clone();
                let guard = ConnectionGuard::new(&connections);
                glommio::spawn_local(serve_connection(incoming, broker, frame_bytes_max, guard))
                    .detach();
            }
        })
        .detach()
    };
    let metrics = {
        let broker = broker.clone();
        let shared = shared.clone();
        let connections = connections.clone();
        glommio::spawn_local(async move {
            loop {
                publish_metrics(&shared, shard, &broker, &connections);
                glommio::timer::sleep(METRICS_PUBLISH).await;
            }
        })
        .detach()
    };

    while !shared.stop.load(Ordering::Relaxed) {
        glommio::timer::sleep(SHUTDOWN_POLL).await;
    }
    endpoint.close(CLOSE_SHUTDOWN.into(), b"broker shutting down");
    let drained = futures_lite::future::or(
        async {
            endpoint.wait_idle().await;
            true
        },
        async {
            glommio::timer::sleep(DRAIN_TIMEOUT).await;
            false
        },
    )
    .await;
    if !drained {
        eprintln!(
            "quiver: shard {shard}: connections still open after {DRAIN_TIMEOUT:?}; closing anyway"
        );
    }
    accept.cancel();
    metrics.cancel();
    broker.shutdown().await;
    publish_metrics(&shared, shard, &broker, &connections);
    Ok(())
}

/// Connection counts of one shard's endpoint (shard-local, so plain cells).
#[derive(Default)]
struct Connections {
    open: Cell<u64>,
    total: Cell<u64>,
}

/// Counts a connection as open for as long as it lives.
struct ConnectionGuard(Rc<Connections>);

impl ConnectionGuard {
    fn new(connections: &Rc<Connections>) -> Self {
        connections.open.set(connections.open.get() + 1);
        connections.total.set(connections.total.get() + 1);
        ConnectionGuard(connections.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

fn publish_metrics(shared: &Shared, shard: usize, broker: &ShardBroker, connections: &Connections) {
    let mut snapshot = broker.metrics();
    snapshot.connections_open = connections.open.get();
    snapshot.connections_total = connections.total.get();
    if let Ok(mut slots) = shared.metrics.lock() {
        if let Some(slot) = slots.get_mut(shard) {
            *slot = Some(snapshot);
        }
    }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    broker: Rc<ShardBroker>,
    frame_bytes_max: u32,
    _open: ConnectionGuard,
) {
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(_) => return, // handshake failed: nothing to answer
    };
    loop {
        let (send, recv) = match connection.accept_bi().await {
            Ok(streams) => streams,
            Err(_) => return, // closed by the peer, timed out, or the endpoint is closing
        };
        let broker = broker.clone();
        glommio::spawn_local(serve_stream(send, recv, broker, frame_bytes_max)).detach();
    }
}

/// One request: read a frame, hand it to the shard, write the answer, finish.
async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    broker: Rc<ShardBroker>,
    frame_bytes_max: u32,
) {
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    let frame: Bytes = match read_frame(&mut recv, &mut decoder).await {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            let _ = send.finish();
            return;
        }
        Err(StreamError::Frame(e)) => {
            // Too large, too short or cut off: answer with a rejection and stop reading.
            let _ = recv.stop(1u32.into());
            let code = match e {
                FrameError::TooLarge { .. } => ErrorCode::MessageTooLarge,
                _ => ErrorCode::InvalidRequest,
            };
            // The correlation id is unknown (the header may not have arrived): 0. One stream
            // carries one request, so the client knows which request this answers.
            let header = ResponseHeader { correlation_id: 0 };
            if let Ok(chunks) =
                encode_response_frame(&header, 0, &Response::Rejected(code), frame_bytes_max)
            {
                let _ = write_last_frame(&mut send, chunks).await;
            }
            return;
        }
        Err(_) => return, // the peer went away mid-request
    };
    match broker.handle_frame(frame).await {
        Some(chunks) => {
            let _ = write_last_frame(&mut send, chunks).await;
        }
        None => {
            let _ = send.finish();
        }
    }
}
