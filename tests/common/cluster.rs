//! A cluster of `quiver broker` processes on 127.0.0.1 for the multi-process tests: every
//! node a controller, one CA, short session and lag timeouts so failures are seen quickly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quiver_transport::client::{Admin, ClientConfig, NewTopic, ProducerConfig};
use quiver_transport::protocol::Acks;
use quiver_transport::quic::Trust;

use super::broker::{free_udp_ports, BrokerProcess};

/// Broker session timeout of the test clusters.
pub const SESSION_TIMEOUT_MS: &str = "3000";
/// `replica.lag.time.max.ms` of the test clusters.
pub const LAG_TIME_MAX_MS: &str = "3000";
/// Longest wait for a topic to be created.
const CREATE_WAIT_MAX: Duration = Duration::from_secs(60);

/// The producer of the cluster tests: `acks=all`, a short linger, 5 s per request and
/// `delivery_timeout` per record (long enough to ride out an election).
pub fn acks_all(delivery_timeout: Duration) -> ProducerConfig {
    ProducerConfig {
        acks: Acks::All,
        linger: Duration::from_millis(2),
        request_timeout: Duration::from_secs(5),
        delivery_timeout,
        ..ProducerConfig::default()
    }
}

/// Brokers on 127.0.0.1, all controllers, sharing one CA (one shard each unless started with
/// [`Cluster::start_shards`]).
pub struct Cluster {
    _dir: tempfile::TempDir,
    /// The certificates (`ca.pem`, `broker.pem`, `broker-key.pem`).
    pub tls: PathBuf,
    /// Each node's data directory.
    pub data: Vec<PathBuf>,
    /// Each node's port (of its shard 0; shard s listens on port + s).
    pub ports: Vec<u16>,
    /// Each node's shard count.
    pub shards: Vec<usize>,
    nodes: Vec<Option<BrokerProcess>>,
    /// Flags every node gets besides the cluster ones.
    extra: Vec<String>,
    /// Nodes 0..controllers are the controllers.
    controllers: usize,
    /// Clusters of one test binary run one at a time (this is released last, after the
    /// brokers): several at once would share two cores among a dozen brokers and turn timing
    /// margins into flakes.
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts `nodes` brokers (node ids 0..nodes).
    pub fn start(nodes: usize) -> Cluster {
        Cluster::start_with(nodes, &[])
    }

    /// [`Cluster::start`] with more broker flags.
    pub fn start_with(nodes: usize, extra: &[&str]) -> Cluster {
        Cluster::start_shards(&vec![1; nodes], extra)
    }

    /// One node per entry of `shards`, with that many shards, and more broker flags.
    pub fn start_shards(shards: &[usize], extra: &[&str]) -> Cluster {
        Cluster::start_full(shards, shards.len(), extra)
    }

    /// [`Cluster::start_with`] where only nodes 0..controllers are controllers: the others
    /// learn metadata only as images fetched from the active controller, never by replaying
    /// the metadata log.
    pub fn start_with_controllers(nodes: usize, controllers: usize, extra: &[&str]) -> Cluster {
        Cluster::start_full(&vec![1; nodes], controllers, extra)
    }

    fn start_full(shards: &[usize], controllers: usize, extra: &[&str]) -> Cluster {
        assert!((1..=shards.len()).contains(&controllers));
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let nodes = shards.len();
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        let out = super::quiver(&["cluster", "certs", "--dir", tls.to_str().expect("utf-8")]);
        assert!(out.status.success(), "certs: {}", super::stderr_of(&out));
        let ports: Vec<u16> = shards.iter().map(|&s| free_udp_ports(s)).collect();
        let data: Vec<PathBuf> = (0..nodes)
            .map(|i| dir.path().join(format!("node-{i}")))
            .collect();
        let mut cluster = Cluster {
            _serial: serial,
            _dir: dir,
            tls,
            data,
            ports,
            shards: shards.to_vec(),
            nodes: (0..nodes).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            controllers,
        };
        for i in 0..nodes {
            cluster.start_node(i);
        }
        cluster
    }

    /// The `--controllers` list.
    pub fn controllers(&self) -> String {
        self.ports
            .iter()
            .take(self.controllers)
            .enumerate()
            .map(|(i, p)| format!("{i}@127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `i` (again).
    pub fn start_node(&mut self, i: usize) {
        let controllers = self.controllers();
        let cert = self.tls.join("broker.pem");
        let key = self.tls.join("broker-key.pem");
        let ca = self.tls.join("ca.pem");
        let id = i.to_string();
        let args = vec![
            "--node-id",
            id.as_str(),
            "--controllers",
            controllers.as_str(),
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
            "--tls-ca",
            ca.to_str().expect("utf-8"),
            "--broker-session-timeout-ms",
            SESSION_TIMEOUT_MS,
            "--broker-heartbeat-interval-ms",
            "500",
            "--replica-lag-time-max-ms",
            LAG_TIME_MAX_MS,
            // Small, so the tests take metadata snapshots and cut the metadata log.
            "--metadata-snapshot-entries",
            "10",
        ];
        // A flag among the extra ones replaces the default of that name (with its value).
        let mut kept = Vec::new();
        let mut at = 0;
        while at < args.len() {
            let flag = args[at];
            let value = args.get(at + 1).filter(|v| !v.starts_with("--")).copied();
            if !self.extra.iter().any(|e| e == flag) {
                kept.push(flag);
                kept.extend(value);
            }
            at += 1 + usize::from(value.is_some());
        }
        let mut args = kept;
        args.extend(self.extra.iter().map(String::as_str));
        self.nodes[i] = Some(BrokerProcess::start_on(
            &self.data[i],
            self.shards[i],
            self.ports[i],
            &args,
        ));
    }

    /// `kill -9` of node `i`.
    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].take().expect("running").kill9();
    }

    /// Sends `signal` to node `i`.
    pub fn signal(&self, i: usize, signal: i32) {
        let pid = self.nodes[i].as_ref().expect("running").pid();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, signal) };
    }

    /// A client config bootstrapping from every node and trusting the CA.
    pub fn config(&self) -> ClientConfig {
        let all: Vec<usize> = (0..self.ports.len()).collect();
        self.config_of(&all)
    }

    /// A client config bootstrapping from `nodes` only (admin requests go to the first).
    pub fn config_of(&self, nodes: &[usize]) -> ClientConfig {
        let trust = Trust::from_pem_file(&self.tls.join("ca.pem")).expect("the CA loads");
        let bootstrap = nodes
            .iter()
            .map(|&i| format!("127.0.0.1:{}", self.ports[i]))
            .collect::<Vec<_>>()
            .join(",");
        ClientConfig {
            request_timeout: Duration::from_secs(5),
            ..ClientConfig::new(bootstrap, trust)
        }
    }

    /// What the running nodes wrote to stderr.
    pub fn stderr(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| format!("--- node {i}\n{}", n.stderr())))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops every running broker (SIGTERM) so their logs can be read.
    pub fn stop_all(&mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(n) = node.take() {
                n.stop();
            }
        }
    }

    /// Creates `topic` with `replicas` replicas and `min.insync.replicas` one less (at least
    /// 1), retrying until the cluster can place them.
    pub async fn create_topic(&self, topic: &str, partitions: i32, replicas: i16) {
        self.create_topic_with(topic, partitions, replicas, &[])
            .await;
    }

    /// [`Cluster::create_topic`] with more topic configs.
    pub async fn create_topic_with(
        &self,
        topic: &str,
        partitions: i32,
        replicas: i16,
        configs: &[(&str, &str)],
    ) {
        let admin = Admin::connect(self.config()).await.expect("admin");
        let min_insync = (replicas - 1).max(1).to_string();
        let deadline = Instant::now() + CREATE_WAIT_MAX;
        loop {
            let mut new = NewTopic::new(topic, partitions)
                .replication_factor(replicas)
                .config("min.insync.replicas", &min_insync);
            for (k, v) in configs {
                new = new.config(*k, *v);
            }
            let created = admin.create_topic(new).await;
            match created {
                Ok(()) => return,
                // An earlier attempt whose answer was lost (e.g. during the first election).
                Err(e) if e.to_string().contains("already exists") => return,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "topic {topic} was not created: {e}\n{}",
                    self.stderr()
                ),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The bytes of every segment of replica `topic`-`partition` under a node's data directory,
/// concatenated in file-name order: equal replicas hold equal bytes (logs are stored as the
/// leader wrote them).
pub fn replica_bytes(data: &Path, topic: &str, partition: i32) -> Vec<u8> {
    let dir = data.join(format!("{topic}-{partition}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut bytes = Vec::new();
    for f in files {
        let mut content = std::fs::read(&f).expect("segment reads");
        // Segments are preallocated: drop the zero tail.
        while content.last() == Some(&0) {
            content.pop();
        }
        bytes.extend(content);
    }
    bytes
}
