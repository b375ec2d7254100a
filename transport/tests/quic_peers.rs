//! `quic::peers::PeerClient` against a small QUIC server, both on one glommio executor: a
//! successful exchange, one connection shared by many requests, errors that keep the
//! connection, a timeout against a silent address, and a reconnect after the server restarts.
//! Every test runs on its own executor thread and fails if it does not end within
//! [`TEST_TIME_MAX`].

use std::cell::Cell;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use quiver_transport::protocol::*;
use quiver_transport::quic::glommio::server_endpoint;
use quiver_transport::quic::peers::{PeerClient, PeerError};
use quiver_transport::quic::stream::{read_frame, write_last_frame};
use quiver_transport::quic::{client_config, server_config, Identity, Trust, Tuning};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const TEST_TIME_MAX: Duration = Duration::from_secs(20);
/// Generous for a loopback exchange, even on a loaded machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const SILENT_TIMEOUT: Duration = Duration::from_millis(300);
/// Attempts to bind the restarted server's port while the old socket is being closed.
const REBIND_ATTEMPTS_MAX: usize = 200;
const REBIND_PAUSE: Duration = Duration::from_millis(10);

#[test]
fn api_versions_over_one_shared_connection() {
    on_executor(|| async {
        let tls = Tls::new();
        let server = Server::start(&tls, "127.0.0.1:0".parse().unwrap());
        let client = Rc::new(tls.client());
        let addr = server.addr.to_string();

        // Concurrent first requests share one handshake.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                let addr = addr.clone();
                glommio::spawn_local(async move {
                    client.request(&addr, api_versions(), REQUEST_TIMEOUT).await
                })
            })
            .collect();
        for task in tasks {
            check_api_versions(task.await);
        }
        check_api_versions(client.request(&addr, api_versions(), REQUEST_TIMEOUT).await);
        assert_eq!(
            server.accepted.get(),
            1,
            "requests did not share a connection"
        );
        assert_eq!(server.streams.get(), 9);
    });
}

#[test]
fn bad_answers_are_errors_and_keep_the_connection() {
    on_executor(|| async {
        let tls = Tls::new();
        let server = Server::start(&tls, "127.0.0.1:0".parse().unwrap());
        let client = tls.client();
        let addr = server.addr.to_string();

        let silent = client
            .request(&addr, DescribeClusterRequest {}.into(), REQUEST_TIMEOUT)
            .await;
        assert!(
            matches!(
                &silent,
                Err(PeerError::Stream {
                    api: ApiKey::DescribeCluster,
                    ..
                })
            ),
            "{silent:?}"
        );
        let message = silent.unwrap_err().to_string();
        assert!(message.contains(&addr), "{message}");
        assert!(message.contains("without a response"), "{message}");

        let garbage = client
            .request(&addr, ListTopicsRequest::default().into(), REQUEST_TIMEOUT)
            .await;
        assert!(
            matches!(
                &garbage,
                Err(PeerError::Decode {
                    api: ApiKey::ListTopics,
                    ..
                })
            ),
            "{garbage:?}"
        );

        check_api_versions(client.request(&addr, api_versions(), REQUEST_TIMEOUT).await);
        assert_eq!(server.accepted.get(), 1);

        for bad in ["no-port", "127.0.0.1:http", ":9092"] {
            let result = client.request(bad, api_versions(), REQUEST_TIMEOUT).await;
            assert!(
                matches!(&result, Err(PeerError::Resolve { .. })),
                "{bad}: {result:?}"
            );
        }
    });
}

#[test]
fn a_silent_address_times_out() {
    on_executor(|| async {
        let tls = Tls::new();
        let client = tls.client();
        // Bound and never read: datagrams vanish without even an ICMP error.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        for _ in 0..2 {
            let started = Instant::now();
            let result = client.request(&addr, api_versions(), SILENT_TIMEOUT).await;
            let elapsed = started.elapsed();
            assert!(
                matches!(&result, Err(PeerError::Timeout { after, .. }) if *after == SILENT_TIMEOUT),
                "{result:?}"
            );
            assert!(elapsed >= SILENT_TIMEOUT, "gave up after {elapsed:?}");
            assert!(elapsed < SILENT_TIMEOUT * 5, "took {elapsed:?}");
        }
    });
}

#[test]
fn reconnects_after_the_server_restarts() {
    on_executor(|| async {
        let tls = Tls::new();
        let first = Server::start(&tls, "127.0.0.1:0".parse().unwrap());
        let bound = first.addr;
        let addr = bound.to_string();
        let client = tls.client();
        check_api_versions(client.request(&addr, api_versions(), REQUEST_TIMEOUT).await);
        assert_eq!(first.accepted.get(), 1);
        first.stop().await;

        let second = Server::start_when_free(&tls, bound).await;
        check_api_versions(client.request(&addr, api_versions(), REQUEST_TIMEOUT).await);
        check_api_versions(client.request(&addr, api_versions(), REQUEST_TIMEOUT).await);
        assert_eq!(
            second.accepted.get(),
            1,
            "no reconnect, or no reuse after it"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Harness.

fn api_versions() -> Request {
    ApiVersionsRequest {
        client_software_name: "peers-test".into(),
        client_software_version: "0".into(),
    }
    .into()
}

fn check_api_versions(result: Result<Response, PeerError>) {
    match result {
        Ok(Response::ApiVersions(r)) => assert_eq!(r.api_versions.len(), ApiKey::ALL.len()),
        other => panic!("expected an ApiVersions response, got {other:?}"),
    }
}

/// Runs `test` on a fresh glommio executor thread; fails if it panics or overruns
/// [`TEST_TIME_MAX`].
fn on_executor<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("quic-peers-test")
        .io_memory(2 << 20)
        .spawn(test)
        .expect("spawn the executor");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    match rx.recv_timeout(TEST_TIME_MAX) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("the test failed on its executor: {e}"),
        Err(_) => panic!("the test did not finish within {TEST_TIME_MAX:?}"),
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, and a trust of exactly it.
struct Tls {
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Tls {
    fn new() -> Tls {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("self-signed certificate");
        Tls {
            cert: certified.cert.der().clone(),
            key_der: certified.key_pair.serialize_der(),
        }
    }

    fn server_config(&self) -> quinn::ServerConfig {
        let identity = Identity {
            cert_chain: vec![self.cert.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
        };
        server_config(&identity, &Tuning::default()).expect("server config")
    }

    fn client(&self) -> PeerClient {
        let trust = Trust::Roots(vec![self.cert.clone()]);
        let config = client_config(&trust, &Tuning::default()).expect("client config");
        PeerClient::new(config, "broker-1".into()).expect("peer client")
    }
}

/// A QUIC server on the test's executor. Per request api: ApiVersions gets this build's answer;
/// DescribeCluster has its stream finished without an answer; ListTopics gets a frame whose
/// body does not decode.
struct Server {
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    accepted: Rc<Cell<usize>>,
    streams: Rc<Cell<usize>>,
}

impl Server {
    fn start(tls: &Tls, at: SocketAddr) -> Server {
        Server::try_start(tls, at).expect("server endpoint")
    }

    /// Starts at `at`, retrying while the previous server's socket still holds the port.
    async fn start_when_free(tls: &Tls, at: SocketAddr) -> Server {
        for _ in 0..REBIND_ATTEMPTS_MAX {
            if let Ok(server) = Server::try_start(tls, at) {
                return server;
            }
            glommio::timer::sleep(REBIND_PAUSE).await;
        }
        panic!("{at} stayed taken after the old server stopped");
    }

    fn try_start(tls: &Tls, at: SocketAddr) -> std::io::Result<Server> {
        let endpoint = server_endpoint(at, tls.server_config(), quinn::EndpointConfig::default())?;
        let server = Server {
            addr: endpoint.local_addr()?,
            endpoint: endpoint.clone(),
            accepted: Rc::new(Cell::new(0)),
            streams: Rc::new(Cell::new(0)),
        };
        let (accepted, streams) = (server.accepted.clone(), server.streams.clone());
        glommio::spawn_local(async move {
            while let Some(incoming) = endpoint.accept().await {
                accepted.set(accepted.get() + 1);
                glommio::spawn_local(serve_connection(incoming, streams.clone())).detach();
            }
        })
        .detach();
        Ok(server)
    }

    /// Closes every connection (the client sees the close) and waits until they are gone.
    async fn stop(self) {
        self.endpoint.close(0u32.into(), b"restart");
        self.endpoint.wait_idle().await;
    }
}

async fn serve_connection(incoming: quinn::Incoming, streams: Rc<Cell<usize>>) {
    let Ok(connection) = incoming.await else {
        return;
    };
    while let Ok((send, recv)) = connection.accept_bi().await {
        streams.set(streams.get() + 1);
        glommio::spawn_local(serve_stream(send, recv)).detach();
    }
}

async fn serve_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    let Ok(Some(frame)) = read_frame(&mut recv, &mut decoder).await else {
        return;
    };
    let (header, request) = decode_request_frame(frame).expect("the client sends valid frames");
    assert_eq!(header.client_id.as_deref(), Some("broker-1"));
    assert_eq!(header.api_version, 0);
    let chunks = match request {
        Request::ApiVersions(_) => encode_response_frame(
            &ResponseHeader {
                correlation_id: header.correlation_id,
            },
            0,
            &ApiVersionsResponse::for_this_build(FRAME_BYTES_MAX_DEFAULT).into(),
            FRAME_BYTES_MAX_DEFAULT,
        )
        .unwrap(),
        Request::DescribeCluster(_) => {
            let _ = send.finish();
            return;
        }
        _ => {
            // A typed body whose topic count cannot fit in what follows.
            let mut frame = Vec::new();
            frame.extend_from_slice(&14u32.to_be_bytes()); // frame length
            frame.extend_from_slice(&header.correlation_id.to_be_bytes());
            frame.extend_from_slice(&[0x00, 0x00]); // header error_code 0
            frame.extend_from_slice(&[0x00; 4]); // throttle_time_ms
            frame.extend_from_slice(&[0x7F, 0xFF, 0xFF, 0xFF]); // topics: far too many
            vec![bytes::Bytes::from(frame)]
        }
    };
    let _ = write_last_frame(&mut send, chunks).await;
}
