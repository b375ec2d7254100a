//! The glommio runtime adapter for quinn (`quic::glommio`) against quinn on tokio, over
//! loopback: a glommio server endpoint on its own executor thread, tokio clients in the test
//! thread. Every test bounds its client work with [`CLIENT_DEADLINE`] and the server's exit with
//! [`SERVER_EXIT_DEADLINE`], so a hang fails instead of blocking the suite.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use quiver_transport::quic::glommio::{bind_socket, server_endpoint, GlommioRuntime};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const ALPN: &[u8] = b"quiver";
const CLIENT_DEADLINE: Duration = Duration::from_secs(15);
const SERVER_EXIT_DEADLINE: Duration = Duration::from_secs(4);
/// Largest echo request the test server accepts.
const ECHO_BYTES_MAX: usize = 16 << 20;
const MODE_ECHO: u8 = b'E';
const MODE_COUNT: u8 = b'C';

#[test]
fn echo_many_streams_of_varied_sizes() {
    let server = Server::start();
    let addr = server.addr;
    let client = Client::new(&server.cert);
    let mut sizes = vec![0, 1, 2, 1199, 1200, 1452, 4096, 65_535, 65_536, 100_000];
    sizes.extend([1 << 20, 3 << 20, 8 << 20]);
    // Pseudo-random sizes from a fixed seed, mostly small, like requests.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..48 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        sizes.push((seed >> 33) as usize % 200_000);
    }
    let streams = sizes.len();
    let c = client.clone();
    client.block_on(async move {
        let connection = c.connect(addr).await;
        let mut tasks = Vec::new();
        for (i, size) in sizes.into_iter().enumerate() {
            let connection = connection.clone();
            tasks.push(tokio::spawn(async move {
                let request = pattern(i as u64, size);
                let response = echo(&connection, &request).await;
                assert_eq!(response.len(), request.len(), "stream {i}: echo length");
                assert!(response == request, "stream {i}: echoed bytes differ");
            }));
        }
        for task in tasks {
            task.await.expect("an echo task failed");
        }
        connection.close(0u32.into(), b"done");
    });
    let report = server.stop();
    assert_eq!(report.connections, 1);
    assert_eq!(report.streams, streams);
}

#[test]
fn one_way_64_mib_completes() {
    const TOTAL_BYTES: usize = 64 << 20;
    const CHUNK_BYTES: usize = 1 << 20;
    let server = Server::start();
    let addr = server.addr;
    let client = Client::new(&server.cert);
    let c = client.clone();
    client.block_on(async move {
        let connection = c.connect(addr).await;
        let (mut send, mut recv) = connection.open_bi().await.expect("open_bi");
        send.write_all(&[MODE_COUNT]).await.expect("write mode");
        let chunk = bytes::Bytes::from(pattern(7, CHUNK_BYTES));
        for _ in 0..TOTAL_BYTES / CHUNK_BYTES {
            send.write_chunk(chunk.clone()).await.expect("write_chunk");
        }
        send.finish().expect("finish");
        let mut count = [0u8; 8];
        recv.read_exact(&mut count).await.expect("read the count");
        assert_eq!(u64::from_le_bytes(count), TOTAL_BYTES as u64);
        connection.close(0u32.into(), b"done");
    });
    let report = server.stop();
    assert_eq!(report.streams, 1);
}

#[test]
fn hundred_concurrent_connections() {
    const CONNECTIONS: usize = 100;
    let server = Server::start();
    let addr = server.addr;
    let client = Client::new(&server.cert);
    let c = client.clone();
    client.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..CONNECTIONS {
            let client = c.clone();
            tasks.push(tokio::spawn(async move {
                let connection = client.connect(addr).await;
                let request = pattern(1000 + i as u64, 1000 + i * 37);
                let response = echo(&connection, &request).await;
                assert!(response == request, "connection {i}: echoed bytes differ");
                connection.close(0u32.into(), b"done");
            }));
        }
        for task in tasks {
            task.await.expect("a connection task failed");
        }
    });
    let report = server.stop();
    assert_eq!(report.connections, CONNECTIONS);
    assert_eq!(report.streams, CONNECTIONS);
}

#[test]
fn server_shuts_down_cleanly_and_its_thread_exits() {
    let server = Server::start();
    let addr = server.addr;
    let client = Client::new(&server.cert);
    let connection = client.block_on({
        let client = client.clone();
        async move {
            let connection = client.connect(addr).await;
            assert!(echo(&connection, b"ping").await == b"ping");
            connection
        }
    });
    // The connection is still open while the server closes its endpoint.
    let report = server.stop();
    assert_eq!(report.connections, 1);
    client.block_on(async move {
        match connection.closed().await {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, quinn::VarInt::from_u32(SHUTDOWN_CODE));
            }
            other => panic!("the client saw {other:?}, not the server's close"),
        }
    });
}

/// The readiness path on its own: datagrams sent while the endpoint task sleeps in the ring
/// wake it, and the `MSG_PEEK` that woke it consumed nothing (every datagram arrives whole,
/// first byte included, in order).
#[test]
fn peek_readiness_wakes_and_consumes_nothing() {
    const DATAGRAMS: usize = 20;
    let (addr_tx, addr_rx) = mpsc::channel();
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("peek-test")
        .io_memory(1 << 20)
        .spawn(move || async move {
            let runtime = GlommioRuntime::new();
            let (std_socket, _buffers) =
                bind_socket("127.0.0.1:0".parse().unwrap(), 1 << 20).expect("bind");
            let socket = quinn::Runtime::wrap_udp_socket(&runtime, std_socket).expect("wrap");
            addr_tx.send(socket.local_addr().unwrap()).unwrap();
            let mut buf = vec![0u8; 64 << 10];
            let mut received = Vec::new();
            let mut pending = 0usize;
            while received.len() < DATAGRAMS {
                let mut metas = [quinn::udp::RecvMeta::default(); 1];
                let result = std::future::poll_fn(|cx| {
                    let mut iovs = [IoSliceMut::new(&mut buf)];
                    let poll = socket.poll_recv(cx, &mut iovs, &mut metas);
                    if poll.is_pending() {
                        pending += 1;
                    }
                    poll
                })
                .await;
                let count = result.expect("poll_recv");
                assert_eq!(count, 1);
                let meta = metas[0];
                let stride = meta.stride.max(1);
                for datagram in buf[..meta.len].chunks(stride) {
                    received.push(datagram.to_vec());
                }
            }
            (received, pending)
        })
        .expect("spawn executor");
    let addr = addr_rx
        .recv_timeout(SERVER_EXIT_DEADLINE)
        .expect("executor address");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..DATAGRAMS {
        // Let the receiver go back to sleep in the ring between datagrams.
        thread::sleep(Duration::from_millis(5));
        sender.send_to(&datagram(i), addr).unwrap();
    }
    let (received, pending) = join_within(handle, SERVER_EXIT_DEADLINE);
    assert_eq!(received.len(), DATAGRAMS);
    for (i, got) in received.iter().enumerate() {
        assert!(*got == datagram(i), "datagram {i} arrived altered");
    }
    assert!(
        pending >= DATAGRAMS / 2,
        "the receiver never waited ({pending} pending polls)"
    );
}

fn datagram(i: usize) -> Vec<u8> {
    let mut d = vec![i as u8; 100 + i];
    d[0] = 0xA0 ^ i as u8;
    d
}

// ---------------------------------------------------------------------------------------------
// Harness.

const SHUTDOWN_CODE: u32 = 7;

/// What the server saw before it shut down.
#[derive(Debug)]
struct ServerReport {
    connections: usize,
    streams: usize,
}

/// A glommio executor thread running an echo/count server on [`server_endpoint`].
struct Server {
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: glommio::ExecutorJoinHandle<ServerReport>,
}

impl Server {
    fn start() -> Server {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("self-signed certificate");
        let cert = certified.cert.der().clone();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let config = server_config(cert.clone(), key);
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name("quic-glommio-server")
            .io_memory(2 << 20)
            .spawn(move || async move {
                let endpoint = server_endpoint(
                    "127.0.0.1:0".parse().unwrap(),
                    config,
                    quinn::EndpointConfig::default(),
                )
                .expect("server endpoint");
                addr_tx.send(endpoint.local_addr().unwrap()).unwrap();
                let closer = endpoint.clone();
                glommio::spawn_local(async move {
                    let _ = stop_rx.await;
                    closer.close(SHUTDOWN_CODE.into(), b"shutdown");
                })
                .detach();
                let streams = std::rc::Rc::new(std::cell::Cell::new(0usize));
                let mut connections = 0;
                while let Some(incoming) = endpoint.accept().await {
                    connections += 1;
                    glommio::spawn_local(serve_connection(incoming, streams.clone())).detach();
                }
                endpoint.wait_idle().await;
                ServerReport {
                    connections,
                    streams: streams.get(),
                }
            })
            .expect("spawn the server executor");
        let addr = addr_rx
            .recv_timeout(SERVER_EXIT_DEADLINE)
            .expect("the server did not start");
        Server {
            addr,
            cert,
            stop,
            handle,
        }
    }

    /// Closes the endpoint, waits for it to go idle and for the executor thread to exit.
    fn stop(self) -> ServerReport {
        let _ = self.stop.send(());
        join_within(self.handle, SERVER_EXIT_DEADLINE)
    }
}

fn join_within<T: Send + 'static>(handle: glommio::ExecutorJoinHandle<T>, deadline: Duration) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    match rx.recv_timeout(deadline) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => panic!("the executor thread failed: {e}"),
        Err(_) => panic!("the executor thread did not exit within {deadline:?}"),
    }
}

async fn serve_connection(incoming: quinn::Incoming, streams: std::rc::Rc<std::cell::Cell<usize>>) {
    let Ok(connection) = incoming.await else {
        return;
    };
    while let Ok((send, recv)) = connection.accept_bi().await {
        streams.set(streams.get() + 1);
        glommio::spawn_local(serve_stream(send, recv)).detach();
    }
}

/// First byte [`MODE_ECHO`]: send the rest back. [`MODE_COUNT`]: reply with the byte count of the
/// rest (u64 little-endian).
async fn serve_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let mut mode = [0u8; 1];
    if recv.read_exact(&mut mode).await.is_err() {
        return;
    }
    match mode[0] {
        MODE_ECHO => {
            let Ok(data) = recv.read_to_end(ECHO_BYTES_MAX).await else {
                return;
            };
            if send.write_all(&data).await.is_ok() {
                let _ = send.finish();
            }
        }
        MODE_COUNT => {
            let mut total: u64 = 0;
            while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
                total += chunk.bytes.len() as u64;
            }
            if send.write_all(&total.to_le_bytes()).await.is_ok() {
                let _ = send.finish();
            }
        }
        _ => {
            let _ = send.reset(1u32.into());
        }
    }
}

/// A tokio runtime and a quinn client endpoint on it that trusts the test server.
#[derive(Clone)]
struct Client {
    runtime: Arc<tokio::runtime::Runtime>,
    endpoint: quinn::Endpoint,
}

impl Client {
    fn new(cert: &CertificateDer<'static>) -> Client {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut endpoint = runtime
            .block_on(async { quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()) })
            .expect("client endpoint");
        endpoint.set_default_client_config(client_config(cert.clone()));
        Client {
            runtime: Arc::new(runtime),
            endpoint,
        }
    }

    /// Runs `work` on the client runtime, failing the test after [`CLIENT_DEADLINE`].
    fn block_on<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(async {
            tokio::time::timeout(CLIENT_DEADLINE, work)
                .await
                .expect("the client side did not finish in time")
        })
    }

    async fn connect(&self, addr: SocketAddr) -> quinn::Connection {
        self.endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake")
    }
}

async fn echo(connection: &quinn::Connection, request: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = connection.open_bi().await.expect("open_bi");
    send.write_all(&[MODE_ECHO]).await.expect("write mode");
    send.write_all(request).await.expect("write request");
    send.finish().expect("finish");
    recv.read_to_end(ECHO_BYTES_MAX)
        .await
        .expect("read response")
}

/// `len` bytes that differ per `seed` and per position, so misplaced bytes are caught.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(quinn::VarInt::from_u32(16 << 20));
    t.receive_window(quinn::VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(256));
    Arc::new(t)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> quinn::ServerConfig {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport());
    config
}

fn client_config(cert: CertificateDer<'static>) -> quinn::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    config
}
