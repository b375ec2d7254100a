//! `--embedded`: a `quiver broker` child process on free loopback ports with a temporary data
//! directory, removed (with everything the broker wrote) when the run ends.
//!
//! The harness does not link the engine (ARCHITECTURE §2: `bench → transport::client` only):
//! it runs the `quiver` executable itself, waits for the broker's `quiver broker ready` line on
//! stderr, and stops it with SIGTERM (SIGKILL after [`STOP_TIMEOUT`]).

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use quiver_transport::client::ClientConfig;
use quiver_transport::quic::Trust;

/// How long the broker may take to report ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the broker may take to stop after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Start attempts (a free port can be taken by someone else before the broker binds it).
const START_ATTEMPTS_MAX: usize = 5;
/// Lines of the broker's stderr kept for error messages.
const STDERR_LINES_KEPT_MAX: usize = 50;

/// A running broker child process and its temporary data directory.
pub struct EmbeddedBroker {
    exe: PathBuf,
    shards: usize,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl EmbeddedBroker {
    /// Starts `exe broker` with `shards` shards (`None`: the broker's default, one per core)
    /// on a new temporary directory under `parent` (default: the system temp dir).
    pub fn start(
        exe: &Path,
        shards: Option<usize>,
        parent: Option<&Path>,
    ) -> Result<EmbeddedBroker, String> {
        let dir = match parent {
            Some(p) => tempfile::Builder::new()
                .prefix("quiver-bench-")
                .tempdir_in(p),
            None => tempfile::Builder::new().prefix("quiver-bench-").tempdir(),
        }
        .map_err(|e| format!("creating a temporary data dir: {e}"))?;
        let shards_n =
            shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut broker = EmbeddedBroker {
            exe: exe.to_path_buf(),
            shards: shards_n,
            child: None,
            port: 0,
            dir,
            stderr: Arc::new(Mutex::new(Vec::new())),
        };
        broker.spawn()?;
        Ok(broker)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// shard 0's address.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A client configuration trusting the broker's self-signed certificate.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let cert = self.data_dir().join("tls").join("cert.pem");
        let trust = Trust::from_pem_file(&cert)
            .map_err(|e| format!("loading the embedded broker's certificate: {e}"))?;
        let mut config = ClientConfig::new(self.bootstrap(), trust);
        config.client_id = "quiver-bench".into();
        Ok(config)
    }

    /// Stops the broker and starts it again on the same data (so reads come from disk, not
    /// from its batch cache) and the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop()?;
        self.try_spawn(self.port)
    }

    /// Stops the broker: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]. An exit status other
    /// than success is an error (the run's figures may be wrong).
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "the embedded broker exited with {status}:\n{}",
                        self.stderr_text()
                    ))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the embedded broker did not stop within {STOP_TIMEOUT:?}; killed"
                    ));
                }
            }
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            let port = free_udp_ports(self.shards)?;
            match self.try_spawn(port) {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
        }
        Err(format!("the embedded broker did not start: {last_error}"))
    }

    fn try_spawn(&mut self, port: u16) -> Result<(), String> {
        let mut child = Command::new(&self.exe)
            .arg("broker")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--shards")
            .arg(self.shards.to_string())
            .args(["--metrics-listen", "off"])
            .env_remove("QUIVER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running {} broker: {e}", self.exe.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        self.stderr = lines.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("quiver broker ready") {
                    let _ = ready_tx.send(());
                }
                let mut kept = lines.lock().expect("not poisoned");
                if kept.len() == STDERR_LINES_KEPT_MAX {
                    kept.remove(0);
                }
                kept.push(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                self.child = Some(child);
                self.port = port;
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!("exited with {status}: {}", self.stderr_text()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "not ready after {START_TIMEOUT:?}: {}",
                    self.stderr_text()
                ));
            }
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().expect("not poisoned").join("\n")
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("quiver bench: {e}");
        }
        // The TempDir removes the data when dropped after this.
    }
}

/// A port p such that UDP ports p..p+count are free on loopback right now.
fn free_udp_ports(count: usize) -> Result<u16, String> {
    for _ in 0..100 {
        let first =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("binding a UDP socket: {e}"))?;
        let port = first.local_addr().map_err(|e| e.to_string())?.port();
        if usize::from(port) + count > usize::from(u16::MAX) {
            continue;
        }
        let rest: Result<Vec<UdpSocket>, _> = (1..count)
            .map(|i| UdpSocket::bind(("127.0.0.1", port + i as u16)))
            .collect();
        if rest.is_ok() {
            return Ok(port);
        }
    }
    Err(format!(
        "no {count} consecutive free UDP ports on 127.0.0.1"
    ))
}
