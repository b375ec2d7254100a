//! A `quiver broker` child process on loopback for integration tests: random free ports, a
//! given data directory, stderr captured, started and stopped (SIGTERM) or killed (SIGKILL).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::quiver_bin;

/// How long a broker may take to report ready.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to stop after SIGTERM.
pub const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running broker process.
pub struct BrokerProcess {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub port: u16,
    pub shards: usize,
    pub metrics: Option<String>,
    /// The CA clients trust, when not the broker's self-signed certificate.
    ca: Option<PathBuf>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl BrokerProcess {
    /// Starts a broker with `shards` shards on `data_dir`, on random free ports, and waits until
    /// it reports ready. Extra arguments go to `quiver broker`.
    pub fn start(data_dir: &Path, shards: usize, extra: &[&str]) -> BrokerProcess {
        Self::start_with(data_dir, shards, |_| {
            extra.iter().map(|s| s.to_string()).collect()
        })
    }

    /// Like [`start`](Self::start), with extra arguments that depend on the port chosen (e.g.
    /// `--controllers 0@127.0.0.1:<port>`).
    pub fn start_with(
        data_dir: &Path,
        shards: usize,
        extra: impl Fn(u16) -> Vec<String>,
    ) -> BrokerProcess {
        let mut last_error = String::new();
        for _ in 0..8 {
            let port = free_udp_ports(shards);
            let args = extra(port);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match Self::try_start(data_dir, shards, port, &args) {
                Ok(broker) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("the broker did not start: {last_error}");
    }

    /// Starts a broker on exactly `port` (e.g. a restart on the same address).
    pub fn start_on(data_dir: &Path, shards: usize, port: u16, extra: &[&str]) -> BrokerProcess {
        Self::try_start(data_dir, shards, port, extra)
            .unwrap_or_else(|e| panic!("the broker did not start on port {port}: {e}"))
    }

    fn try_start(
        data_dir: &Path,
        shards: usize,
        port: u16,
        extra: &[&str],
    ) -> Result<BrokerProcess, String> {
        let mut child = Command::new(quiver_bin())
            .arg("broker")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--shards")
            .arg(shards.to_string())
            .arg("--metrics-listen")
            .arg("127.0.0.1:0")
            .arg("--no-pin")
            .args(extra)
            .env_remove("QUIVER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning the broker: {e}"))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("quiver broker ready") {
                        let _ = ready_tx.send(line.clone());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            if let Ok(line) = ready_rx.recv_timeout(Duration::from_millis(50)) {
                let metrics = line
                    .split("metrics ")
                    .nth(1)
                    .map(|s| s.trim().to_string())
                    .filter(|s| s != "off");
                return Ok(BrokerProcess {
                    child: Some(child),
                    data_dir: data_dir.to_owned(),
                    port,
                    shards,
                    metrics,
                    ca: None,
                    stderr: lines,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "exited with {status}: {}",
                    lines.lock().unwrap().join("\n")
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "not ready after {BROKER_START_TIMEOUT:?}: {}",
                    lines.lock().unwrap().join("\n")
                ));
            }
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What clients trust: the broker's self-signed certificate, unless
    /// [`trusting`](Self::trusting) named a CA.
    pub fn ca(&self) -> PathBuf {
        self.ca
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tls").join("cert.pem"))
    }

    /// Makes clients ([`cli`](Self::cli), [`ca`](Self::ca)) trust `ca` instead of the broker's
    /// self-signed certificate (a broker started with `--tls-cert`).
    pub fn trusting(mut self, ca: &Path) -> BrokerProcess {
        self.ca = Some(ca.to_owned());
        self
    }

    /// Everything the broker wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Runs `quiver <args>` as a client of this broker (bootstrap and CA through
    /// `QUIVER_BOOTSTRAP` / `QUIVER_TLS_CA`), feeding it `stdin`, and returns its output.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(quiver_bin())
            .args(args)
            .env("QUIVER_BOOTSTRAP", self.bootstrap())
            .env("QUIVER_TLS_CA", self.ca())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("quiver runs");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input).expect("write stdin");
        }
        child.wait_with_output().expect("quiver finishes")
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_timeout(&mut child, BROKER_STOP_TIMEOUT)
            .unwrap_or_else(|| panic!("the broker did not stop on SIGTERM: {}", self.stderr()))
    }

    /// SIGKILL, then reaps it.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A base port with `count` consecutive UDP ports free right now (racy by nature; callers retry).
pub fn free_udp_ports(count: usize) -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    'outer: loop {
        let base: u16 = rng.gen_range(20_000..60_000);
        let mut held = Vec::new();
        for i in 0..count {
            match std::net::UdpSocket::bind(("127.0.0.1", base + i as u16)) {
                Ok(socket) => held.push(socket),
                Err(_) => continue 'outer,
            }
        }
        return base;
    }
}
