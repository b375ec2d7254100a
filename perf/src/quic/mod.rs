//! The QUIC benchmark (`quic-bench`): one-way transfer throughput over loopback from a quinn
//! client on tokio to a quinn server on (a) tokio, the baseline, and (b) a glommio executor
//! through `quiver_transport::quic::glommio`, the broker's adapter (ARCHITECTURE §5, §10).
//!
//! Each run starts a fresh server thread and a fresh client thread, pinned to different cores
//! when there are two (`--server-cpu`, `--client-cpu`), connects once, then times from the
//! first byte written until the server has acknowledged every byte: the client opens
//! `--streams` bidirectional streams, writes its share of `--bytes` on each with
//! `write_chunk(Bytes)` in `--chunk`-sized slices of one buffer, finishes them; the server
//! counts what it reads and answers with the count. Runs alternate a, b for `--rounds` rounds
//! because loopback throughput on the shared VM drifts; only figures from one invocation are
//! compared, as medians, and the ratio is glommio's median over tokio's.
//!
//! Both sides use the broker's transport settings ([`Tuning`]: windows 16 MiB per stream and
//! 64 MiB per connection, `--mtu` as the path-MTU discovery ceiling) and sockets with
//! `--socket-buffer-bytes` buffers from [`bind_socket`].

pub mod report;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_transport::quic::glommio::{bind_socket, endpoint_on_socket};
use quiver_transport::quic::{client_config, server_config, Identity, Trust, Tuning};

use report::{Report, Run, Settings};

/// Registered io_uring memory of the glommio server executor (ARCHITECTURE §9: set it small).
const IO_MEMORY_BYTES: usize = 2 << 20;
/// A run that takes longer than this is reported as failed instead of hanging the benchmark.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// The error code the client closes its connection with at the end of a run.
const DONE_CODE: u32 = 0;

/// Which server a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// quinn on a tokio current-thread runtime (the baseline).
    Tokio,
    /// quinn on a glommio executor through `GlommioRuntime`.
    Glommio,
}

impl ServerKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Tokio => "tokio",
            ServerKind::Glommio => "glommio",
        }
    }
}

/// Command-line options of `quic-bench`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "quic-bench",
    about = "QUIC one-way throughput over loopback: quinn on glommio (Quiver's adapter) vs tokio"
)]
pub struct Options {
    /// Bytes per run (suffixes K, M, G in powers of 1024: 1G = 1 GiB).
    #[arg(long, default_value = "1G", value_parser = parse_bytes)]
    pub bytes: u64,
    /// Bytes per `write_chunk` call (same suffixes).
    #[arg(long, default_value = "1M", value_parser = parse_bytes)]
    pub chunk: u64,
    /// Concurrent streams per run, sharing `--bytes`.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Rounds of (tokio, glommio) runs.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Path-MTU discovery ceiling, bytes of UDP payload.
    #[arg(long, default_value_t = 1452)]
    pub mtu: u16,
    /// Send and receive buffer of every socket, bytes (same suffixes; the broker asks for
    /// `quic::glommio::SOCKET_BUFFER_BYTES`).
    #[arg(long, default_value = "4M", value_parser = parse_bytes)]
    pub socket_buffer_bytes: u64,
    /// Pin the server thread to this CPU [default: 0 with two or more CPUs].
    #[arg(long)]
    pub server_cpu: Option<usize>,
    /// Pin the client thread to this CPU [default: 1 with two or more CPUs].
    #[arg(long)]
    pub client_cpu: Option<usize>,
    /// Servers to run (e.g. `--only glommio` under strace).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ServerKind::Tokio, ServerKind::Glommio])]
    pub only: Vec<ServerKind>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/quic-bench.json")]
    pub json: std::path::PathBuf,
}

/// Parses `1073741824`, `1G`, `64M`, `512K` (powers of 1024; an optional trailing `iB`/`B`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("not a byte count: {text:?}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("too large: {text:?}"))
}

/// Runs the benchmark and returns its report (not yet printed or saved).
pub fn run(options: &Options) -> Result<Report, String> {
    let settings = resolve(options)?;
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .map_err(|e| format!("self-signed certificate: {e}"))?;
    let cert = generated.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        generated.key_pair.serialize_der(),
    ));
    let identity = Identity {
        cert_chain: vec![cert.clone()],
        key,
    };
    let tuning = Tuning {
        mtu_upper_bound: settings.mtu,
        ..Tuning::default()
    };
    let server = server_config(&identity, &tuning).map_err(|e| e.to_string())?;
    let client = client_config(&Trust::Roots(vec![cert]), &tuning).map_err(|e| e.to_string())?;
    let chunk = Bytes::from(vec![0x5a_u8; settings.chunk_bytes]);
    let mut runs = Vec::new();
    for round in 0..settings.rounds {
        for &kind in &options.only {
            let run = run_once(&settings, kind, round, &server, &client, &chunk)?;
            eprintln!("{}", run.line());
            runs.push(run);
        }
    }
    Ok(Report::new(settings, runs))
}

fn resolve(options: &Options) -> Result<Settings, String> {
    if options.bytes == 0 || options.chunk == 0 || options.streams == 0 || options.rounds == 0 {
        return Err("--bytes, --chunk, --streams and --rounds must be positive".into());
    }
    if options.only.is_empty() {
        return Err("--only names no server".into());
    }
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let two = cpus >= 2;
    let to_usize = |v: u64, what: &str| usize::try_from(v).map_err(|_| format!("{what} too large"));
    Ok(Settings {
        bytes_per_run: options.bytes,
        chunk_bytes: to_usize(options.chunk, "--chunk")?,
        streams: options.streams,
        rounds: options.rounds,
        mtu: options.mtu,
        socket_buffer_bytes: to_usize(options.socket_buffer_bytes, "--socket-buffer-bytes")?,
        server_cpu: options.server_cpu.or(two.then_some(0)),
        client_cpu: options.client_cpu.or(two.then_some(1)),
        cpus,
    })
}

/// What a server saw of its one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerStats {
    /// Bytes read from all streams.
    pub bytes: u64,
    /// UDP datagrams sent (ACKs and flow-control updates, mostly).
    pub tx_datagrams: u64,
    /// The socket's `SO_RCVBUF` as granted.
    pub recv_buffer_bytes: usize,
}

fn run_once(
    settings: &Settings,
    kind: ServerKind,
    round: usize,
    server: &quinn::ServerConfig,
    client: &quinn::ClientConfig,
    chunk: &Bytes,
) -> Result<Run, String> {
    let (addr_tx, addr_rx) = mpsc::channel::<Result<SocketAddr, String>>();
    let (done_tx, done_rx) = mpsc::channel::<Result<ServerStats, String>>();
    start_server(settings, kind, server.clone(), addr_tx, done_tx)?;
    let addr = addr_rx
        .recv_timeout(RUN_DEADLINE)
        .map_err(|_| "the server did not start".to_string())??;

    let (client_tx, client_rx) = mpsc::channel();
    let client_settings = settings.clone();
    let client = client.clone();
    let chunk = chunk.clone();
    thread::Builder::new()
        .name("quic-bench-client".into())
        .spawn(move || {
            let result = pin_current_thread(client_settings.client_cpu)
                .and_then(|()| run_client(&client_settings, addr, client, chunk));
            let _ = client_tx.send(result);
        })
        .map_err(|e| format!("client thread: {e}"))?;
    let client = client_rx
        .recv_timeout(RUN_DEADLINE)
        .map_err(|_| format!("{} run {round}: the client did not finish", kind.name()))??;
    let server = done_rx
        .recv_timeout(RUN_DEADLINE)
        .map_err(|_| format!("{} run {round}: the server did not finish", kind.name()))??;
    if server.bytes != settings.bytes_per_run {
        return Err(format!(
            "{} run {round}: the server read {} bytes, not {}",
            kind.name(),
            server.bytes,
            settings.bytes_per_run
        ));
    }
    Ok(Run::new(
        kind,
        round,
        settings.bytes_per_run,
        client,
        server,
    ))
}

/// Spawns a local task on whichever runtime serves.
type Spawner = fn(Pin<Box<dyn Future<Output = ()>>>);

fn start_server(
    settings: &Settings,
    kind: ServerKind,
    config: quinn::ServerConfig,
    addr_tx: mpsc::Sender<Result<SocketAddr, String>>,
    done_tx: mpsc::Sender<Result<ServerStats, String>>,
) -> Result<(), String> {
    let buffer_bytes = settings.socket_buffer_bytes;
    let cpu = settings.server_cpu;
    let bind = move || {
        bind_socket(SocketAddr::from(([127, 0, 0, 1], 0)), buffer_bytes)
            .map_err(|e| format!("bind: {e}"))
    };
    match kind {
        ServerKind::Tokio => {
            thread::Builder::new()
                .name("quic-bench-tokio-server".into())
                .spawn(move || {
                    let result = pin_current_thread(cpu).and_then(|()| {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| format!("tokio runtime: {e}"))?;
                        let local = tokio::task::LocalSet::new();
                        local.block_on(&runtime, async move {
                            let (socket, buffers) = bind()?;
                            let endpoint = quinn::Endpoint::new(
                                quinn::EndpointConfig::default(),
                                Some(config),
                                socket,
                                Arc::new(quinn::TokioRuntime),
                            )
                            .map_err(|e| format!("tokio endpoint: {e}"))?;
                            serve(endpoint, buffers.recv_bytes, &addr_tx, |f| {
                                tokio::task::spawn_local(f);
                            })
                            .await
                        })
                    });
                    let _ = done_tx.send(result);
                })
                .map_err(|e| format!("server thread: {e}"))?;
        }
        ServerKind::Glommio => {
            let placement = match cpu {
                Some(cpu) => glommio::Placement::Fixed(cpu),
                None => glommio::Placement::Unbound,
            };
            glommio::LocalExecutorBuilder::new(placement)
                .name("quic-bench-glommio-server")
                .io_memory(IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let result = async {
                        let (socket, buffers) = bind()?;
                        let endpoint = endpoint_on_socket(
                            socket,
                            quinn::EndpointConfig::default(),
                            Some(config),
                        )
                        .map_err(|e| format!("glommio endpoint: {e}"))?;
                        serve(endpoint, buffers.recv_bytes, &addr_tx, |f| {
                            glommio::spawn_local(f).detach();
                        })
                        .await
                    }
                    .await;
                    let _ = done_tx.send(result);
                })
                .map_err(|e| format!("glommio executor: {e}"))?;
        }
    }
    Ok(())
}

/// Accepts one connection, counts the bytes of every stream it opens (answering each with its
/// count), and returns when the client has closed it and the endpoint is idle.
async fn serve(
    endpoint: quinn::Endpoint,
    recv_buffer_bytes: usize,
    addr_tx: &mpsc::Sender<Result<SocketAddr, String>>,
    spawn: Spawner,
) -> Result<ServerStats, String> {
    let addr = endpoint.local_addr().map_err(|e| e.to_string())?;
    let _ = addr_tx.send(Ok(addr));
    let incoming = endpoint
        .accept()
        .await
        .ok_or("the endpoint closed before a connection came")?;
    let connection = incoming.await.map_err(|e| format!("handshake: {e}"))?;
    let total = std::rc::Rc::new(std::cell::Cell::new(0u64));
    while let Ok((send, recv)) = connection.accept_bi().await {
        spawn(Box::pin(count_stream(send, recv, total.clone())));
    }
    let stats = connection.stats();
    endpoint.wait_idle().await;
    Ok(ServerStats {
        bytes: total.get(),
        tx_datagrams: stats.udp_tx.datagrams,
        recv_buffer_bytes,
    })
}

async fn count_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    total: std::rc::Rc<std::cell::Cell<u64>>,
) {
    let mut bytes: u64 = 0;
    while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
        bytes += chunk.bytes.len() as u64;
    }
    total.set(total.get() + bytes);
    if send.write_all(&bytes.to_le_bytes()).await.is_ok() {
        let _ = send.finish();
    }
}

/// What the client measured.
#[derive(Debug, Clone, Copy)]
pub struct ClientStats {
    /// From the first write to the last stream's count, seconds.
    pub secs: f64,
    /// UDP datagrams sent.
    pub tx_datagrams: u64,
    /// Send syscalls that carried them (fewer than datagrams with GSO).
    pub tx_ios: u64,
    /// Packets quinn declared lost.
    pub lost_packets: u64,
    /// Congestion events.
    pub congestion_events: u64,
    /// Path MTU at the end.
    pub mtu: u16,
}

fn run_client(
    settings: &Settings,
    addr: SocketAddr,
    config: quinn::ClientConfig,
    chunk: Bytes,
) -> Result<ClientStats, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let streams = settings.streams as u64;
    let bytes = settings.bytes_per_run;
    let buffer_bytes = settings.socket_buffer_bytes;
    runtime.block_on(async move {
        let (socket, _buffers) = bind_socket(SocketAddr::from(([127, 0, 0, 1], 0)), buffer_bytes)
            .map_err(|e| format!("bind: {e}"))?;
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| format!("client endpoint: {e}"))?;
        endpoint.set_default_client_config(config);
        let connection = endpoint
            .connect(addr, "localhost")
            .map_err(|e| format!("connect: {e}"))?
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..streams {
            let share = bytes / streams + u64::from(i < bytes % streams);
            let connection = connection.clone();
            let chunk = chunk.clone();
            tasks.push(tokio::spawn(send_stream(connection, share, chunk)));
        }
        for task in tasks {
            task.await.map_err(|e| format!("stream task: {e}"))??;
        }
        let secs = start.elapsed().as_secs_f64();
        let stats = connection.stats();
        connection.close(DONE_CODE.into(), b"done");
        endpoint.wait_idle().await;
        Ok(ClientStats {
            secs,
            tx_datagrams: stats.udp_tx.datagrams,
            tx_ios: stats.udp_tx.ios,
            lost_packets: stats.path.lost_packets,
            congestion_events: stats.path.congestion_events,
            mtu: stats.path.current_mtu,
        })
    })
}

async fn send_stream(
    connection: quinn::Connection,
    share: u64,
    chunk: Bytes,
) -> Result<(), String> {
    let (mut send, mut recv) = connection
        .open_bi()
        .await
        .map_err(|e| format!("open_bi: {e}"))?;
    let mut left = share;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        send.write_chunk(chunk.slice(..n))
            .await
            .map_err(|e| format!("write: {e}"))?;
        left -= n as u64;
    }
    send.finish().map_err(|e| format!("finish: {e}"))?;
    let mut count = [0u8; 8];
    recv.read_exact(&mut count)
        .await
        .map_err(|e| format!("read the count: {e}"))?;
    let counted = u64::from_le_bytes(count);
    if counted != share {
        return Err(format!("the server counted {counted} bytes of {share}"));
    }
    Ok(())
}

/// Pins the calling thread to `cpu` (no-op for `None`).
fn pin_current_thread(cpu: Option<usize>) -> Result<(), String> {
    let Some(cpu) = cpu else {
        return Ok(());
    };
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it (cpu is checked
    // against its capacity first); sched_setaffinity reads it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(format!("cpu {cpu} out of range"));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "pin to cpu {cpu}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("512k"), Ok(512 << 10));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("x").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }
}
