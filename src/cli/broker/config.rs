//! The broker's settings, merged from three places (highest first): command-line flags,
//! `QUIVER_*` environment variables (clap reads both), and a TOML file (`--config`). Anything
//! none of them sets takes the documented default.
//!
//! Cluster mode is on when `--controllers` is set (from any of the three places); the
//! replication and session settings are refused without it. `--node-id` and `--tls-ca` are
//! accepted alone: a single broker reports its node id in Metadata, and `QUIVER_TLS_CA` is the
//! same variable the client commands read, so a shell that exports it for them can still start
//! a broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use quiver_engine::broker::{parse_controllers, ClusterConfig};
use quiver_transport::protocol::FRAME_BYTES_MAX_DEFAULT;

use crate::cli::CliError;

/// Default client listen address (shard 0; shard s listens on port + s).
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9190";
/// Default data directory.
pub const DATA_DIR_DEFAULT: &str = "./quiver-data";
/// Default Prometheus metrics address.
pub const METRICS_LISTEN_DEFAULT: &str = "127.0.0.1:9191";
/// Default registered io_uring memory per shard, MiB (ARCHITECTURE §9).
pub const IO_MEMORY_MIB_DEFAULT: usize = 2;

/// Default shortest member session timeout, ms (Kafka's `group.min.session.timeout.ms`).
pub const GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT: i32 = 6000;
/// Default longest member session timeout, ms (Kafka's `group.max.session.timeout.ms`).
pub const GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT: i32 = 300_000;
/// Default member heartbeat interval, ms.
pub const GROUP_HEARTBEAT_INTERVAL_MS_DEFAULT: i32 = 3000;

/// Default retention of an empty group's committed offsets, ms (Kafka's 7 days).
pub const OFFSETS_RETENTION_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;

/// `quiver broker`: run a broker in the foreground until SIGINT or SIGTERM.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// TOML file with any of the settings below (keys as the long flags, with `_` for `-`).
    #[arg(long, env = "QUIVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Client address of shard 0; shard s listens on the next ports (UDP). [default: 127.0.0.1:9190]
    #[arg(long, env = "QUIVER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory (created if missing). [default: ./quiver-data]
    #[arg(long, env = "QUIVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Shards (pinned executor threads). [default: one per core]
    #[arg(long, env = "QUIVER_SHARDS")]
    pub shards: Option<usize>,
    /// Host name or address that clients are told to connect to. [default: the listen IP]
    #[arg(long, env = "QUIVER_ADVERTISED_HOST")]
    pub advertised_host: Option<String>,
    /// Prometheus metrics address (HTTP, `/metrics`); `off` disables it. [default: 127.0.0.1:9191]
    #[arg(long, env = "QUIVER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// PEM certificate chain for TLS. [default: a self-signed one in <data-dir>/tls/]
    #[arg(long, env = "QUIVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "QUIVER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Partitions of a topic created without a count. [default: 1]
    #[arg(long, env = "QUIVER_DEFAULT_PARTITIONS")]
    pub default_partitions: Option<i32>,
    /// Registered io_uring memory per shard, MiB. [default: 2]
    #[arg(long, env = "QUIVER_IO_MEMORY_MIB")]
    pub io_memory_mib: Option<usize>,
    /// Do not pin shards to cores (e.g. when sharing a machine with other processes).
    #[arg(long, env = "QUIVER_NO_PIN")]
    pub no_pin: bool,
    /// Shortest session timeout a consumer-group member may ask for, ms. [default: 6000]
    #[arg(long, env = "QUIVER_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<i32>,
    /// Longest session timeout a consumer-group member may ask for, ms. [default: 300000]
    #[arg(long, env = "QUIVER_GROUP_MAX_SESSION_TIMEOUT_MS")]
    pub group_max_session_timeout_ms: Option<i32>,
    /// How often group members heartbeat, ms (told to them in every heartbeat). [default: 3000]
    #[arg(long, env = "QUIVER_GROUP_HEARTBEAT_INTERVAL_MS")]
    pub group_heartbeat_interval_ms: Option<i32>,
    /// How long committed offsets of a group without members are kept, ms. [default: 604800000 (7 days)]
    #[arg(long, env = "QUIVER_OFFSETS_RETENTION_MS")]
    pub offsets_retention_ms: Option<i64>,
    /// How often each shard applies retention and compaction to its partitions, ms (Kafka's
    /// `log.retention.check.interval.ms`). [default: 300000]
    #[arg(long, env = "QUIVER_RETENTION_CHECK_INTERVAL_MS")]
    pub retention_check_interval_ms: Option<u64>,
    /// This broker's id, unique in its cluster (Kafka's `node.id`). [default: 0]
    #[arg(long, env = "QUIVER_NODE_ID")]
    pub node_id: Option<i32>,
    /// The controller quorum, `ID@HOST:PORT,...` (each voter's shard 0); turns cluster mode on.
    #[arg(long, env = "QUIVER_CONTROLLERS")]
    pub controllers: Option<String>,
    /// PEM CA that signs the other brokers' certificates, trusted when this broker connects to
    /// them (cluster mode). [default: this broker's own certificate file]
    #[arg(long, env = "QUIVER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// A follower that has not caught up for this long leaves the ISR, ms (cluster mode).
    /// [default: 30000]
    #[arg(long, env = "QUIVER_REPLICA_LAG_TIME_MAX_MS")]
    pub replica_lag_time_max_ms: Option<i64>,
    /// A broker without a heartbeat to the controller for this long is fenced, ms (cluster
    /// mode). [default: 9000]
    #[arg(long, env = "QUIVER_BROKER_SESSION_TIMEOUT_MS")]
    pub broker_session_timeout_ms: Option<i64>,
    /// How often this broker heartbeats to the controller, ms; below the session timeout
    /// (cluster mode). [default: 2000]
    #[arg(long, env = "QUIVER_BROKER_HEARTBEAT_INTERVAL_MS")]
    pub broker_heartbeat_interval_ms: Option<u64>,
    /// Replicas of a topic created without a replication factor (cluster mode). [default: 1]
    #[arg(long, env = "QUIVER_DEFAULT_REPLICATION_FACTOR")]
    pub default_replication_factor: Option<i32>,
    /// Metadata entries a controller applies between snapshots of its image, after each of
    /// which its metadata log is cut (cluster mode). [default: 1000]
    #[arg(long, env = "QUIVER_METADATA_SNAPSHOT_ENTRIES")]
    pub metadata_snapshot_entries: Option<u64>,
    /// Test hook: leave every n-th produce request unanswered after appending it, so clients
    /// retry (idempotence tests). Never use in production.
    #[arg(long, env = "QUIVER_FAULT_DROP_PRODUCE_RESPONSE_EVERY", hide = true)]
    pub fault_drop_produce_response_every: Option<u32>,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    shards: Option<usize>,
    advertised_host: Option<String>,
    metrics_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    default_partitions: Option<i32>,
    io_memory_mib: Option<usize>,
    no_pin: Option<bool>,
    group_min_session_timeout_ms: Option<i32>,
    group_max_session_timeout_ms: Option<i32>,
    group_heartbeat_interval_ms: Option<i32>,
    offsets_retention_ms: Option<i64>,
    retention_check_interval_ms: Option<u64>,
    node_id: Option<i32>,
    controllers: Option<String>,
    tls_ca: Option<PathBuf>,
    replica_lag_time_max_ms: Option<i64>,
    broker_session_timeout_ms: Option<i64>,
    broker_heartbeat_interval_ms: Option<u64>,
    default_replication_factor: Option<i32>,
    metadata_snapshot_entries: Option<u64>,
}

/// Settings after merging, every one decided.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub shards: usize,
    pub advertised_host: String,
    pub metrics_listen: Option<SocketAddr>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub default_partitions: i32,
    pub io_memory_bytes: usize,
    pub pin: bool,
    pub frame_bytes_max: u32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_heartbeat_interval_ms: i32,
    pub offsets_retention_ms: i64,
    pub retention_check_interval_ms: u64,
    pub fault_drop_produce_response_every: u32,
    /// This broker's id (0 unless `--node-id`).
    pub node_id: i32,
    /// Cluster membership; `None` runs a single broker.
    pub cluster: Option<ClusterConfig>,
    /// The CA brokers trust for each other (cluster mode); `None` trusts this broker's own
    /// certificate file.
    pub tls_ca: Option<PathBuf>,
}

impl BrokerArgs {
    /// Merges flags/environment over the config file over defaults, and checks the result.
    pub fn settings(&self) -> Result<Settings, CliError> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| LISTEN_DEFAULT.parse().expect("default address parses"));
        let node_id = self.node_id.or(file.node_id).unwrap_or(0);
        if node_id < 0 {
            return Err(CliError::BadInput(format!(
                "--node-id must not be negative, not {node_id}"
            )));
        }
        let cluster = self.cluster(&file, node_id, listen.port())?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let shards = self.shards.or(file.shards).unwrap_or(cores);
        if shards == 0 || shards > 256 {
            return Err(CliError::BadInput(format!(
                "--shards must be between 1 and 256, not {shards}"
            )));
        }
        if usize::from(listen.port()) + shards > usize::from(u16::MAX) + 1 || listen.port() == 0 {
            return Err(CliError::BadInput(format!(
                "--listen port {} cannot hold {shards} shard ports (port + shard)",
                listen.port()
            )));
        }
        let metrics = self
            .metrics_listen
            .clone()
            .or(file.metrics_listen)
            .unwrap_or_else(|| METRICS_LISTEN_DEFAULT.into());
        let metrics_listen =
            if metrics == "off" {
                None
            } else {
                Some(metrics.parse().map_err(|e| {
                    CliError::BadInput(format!("--metrics-listen {metrics:?}: {e}"))
                })?)
            };
        let tls = match (
            self.tls_cert.clone().or(file.tls_cert),
            self.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(CliError::BadInput(
                    "--tls-cert and --tls-key go together".into(),
                ))
            }
        };
        let default_partitions = self
            .default_partitions
            .or(file.default_partitions)
            .unwrap_or(1);
        if default_partitions < 1 {
            return Err(CliError::BadInput(
                "--default-partitions must be at least 1".into(),
            ));
        }
        let io_memory_mib = self
            .io_memory_mib
            .or(file.io_memory_mib)
            .unwrap_or(IO_MEMORY_MIB_DEFAULT);
        if !(1..=1024).contains(&io_memory_mib) {
            return Err(CliError::BadInput(
                "--io-memory-mib must be between 1 and 1024".into(),
            ));
        }
        let group_min_session_timeout_ms = self
            .group_min_session_timeout_ms
            .or(file.group_min_session_timeout_ms)
            .unwrap_or(GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT);
        let group_max_session_timeout_ms = self
            .group_max_session_timeout_ms
            .or(file.group_max_session_timeout_ms)
            .unwrap_or(GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT);
        let group_heartbeat_interval_ms = self
            .group_heartbeat_interval_ms
            .or(file.group_heartbeat_interval_ms)
            .unwrap_or(GROUP_HEARTBEAT_INTERVAL_MS_DEFAULT);
        if group_min_session_timeout_ms < 1
            || group_min_session_timeout_ms > group_max_session_timeout_ms
        {
            return Err(CliError::BadInput(format!(
                "group session timeouts must satisfy 1 <= min ({group_min_session_timeout_ms}) \
                 <= max ({group_max_session_timeout_ms})"
            )));
        }
        if group_heartbeat_interval_ms < 1
            || group_heartbeat_interval_ms >= group_min_session_timeout_ms
        {
            return Err(CliError::BadInput(format!(
                "--group-heartbeat-interval-ms ({group_heartbeat_interval_ms}) must be at least 1 \
                 and below the minimum session timeout ({group_min_session_timeout_ms})"
            )));
        }
        let offsets_retention_ms = self
            .offsets_retention_ms
            .or(file.offsets_retention_ms)
            .unwrap_or(OFFSETS_RETENTION_MS_DEFAULT);
        if offsets_retention_ms < 1 {
            return Err(CliError::BadInput(
                "--offsets-retention-ms must be at least 1".into(),
            ));
        }
        let retention_check_interval_ms = self
            .retention_check_interval_ms
            .or(file.retention_check_interval_ms)
            .unwrap_or(quiver_engine::broker::RETENTION_CHECK_INTERVAL_MS_DEFAULT);
        if retention_check_interval_ms < 1 {
            return Err(CliError::BadInput(
                "--retention-check-interval-ms must be at least 1".into(),
            ));
        }
        Ok(Settings {
            node_id,
            retention_check_interval_ms,
            cluster,
            tls_ca: self.tls_ca.clone().or(file.tls_ca),
            offsets_retention_ms,
            group_min_session_timeout_ms,
            group_max_session_timeout_ms,
            group_heartbeat_interval_ms,
            fault_drop_produce_response_every: self.fault_drop_produce_response_every.unwrap_or(0),
            listen,
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| DATA_DIR_DEFAULT.into()),
            shards,
            advertised_host: self
                .advertised_host
                .clone()
                .or(file.advertised_host)
                .map(Ok)
                .unwrap_or_else(|| {
                    if listen.ip().is_unspecified() {
                        Err(CliError::BadInput(format!(
                            "--listen {listen} is a wildcard address: give --advertised-host, the \
                             name or address clients should connect to"
                        )))
                    } else {
                        Ok(listen.ip().to_string())
                    }
                })?,
            metrics_listen,
            tls,
            default_partitions,
            io_memory_bytes: io_memory_mib << 20,
            pin: !(self.no_pin || file.no_pin.unwrap_or(false)),
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
        })
    }

    /// The cluster settings (`None` without `--controllers`), checked for broker `node_id`
    /// listening on `listen_port`.
    fn cluster(
        &self,
        file: &FileConfig,
        node_id: i32,
        listen_port: u16,
    ) -> Result<Option<ClusterConfig>, CliError> {
        let replica_lag_time_max_ms = self
            .replica_lag_time_max_ms
            .or(file.replica_lag_time_max_ms);
        let broker_session_timeout_ms = self
            .broker_session_timeout_ms
            .or(file.broker_session_timeout_ms);
        let broker_heartbeat_interval_ms = self
            .broker_heartbeat_interval_ms
            .or(file.broker_heartbeat_interval_ms);
        let default_replication_factor = self
            .default_replication_factor
            .or(file.default_replication_factor);
        let metadata_snapshot_entries = self
            .metadata_snapshot_entries
            .or(file.metadata_snapshot_entries);
        let Some(text) = self
            .controllers
            .clone()
            .or_else(|| file.controllers.clone())
        else {
            let given = [
                (
                    "--replica-lag-time-max-ms",
                    replica_lag_time_max_ms.is_some(),
                ),
                (
                    "--broker-session-timeout-ms",
                    broker_session_timeout_ms.is_some(),
                ),
                (
                    "--broker-heartbeat-interval-ms",
                    broker_heartbeat_interval_ms.is_some(),
                ),
                (
                    "--default-replication-factor",
                    default_replication_factor.is_some(),
                ),
                (
                    "--metadata-snapshot-entries",
                    metadata_snapshot_entries.is_some(),
                ),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
                return Err(CliError::BadInput(format!(
                    "{flag} is a cluster setting: it needs --controllers (cluster mode)"
                )));
            }
            return Ok(None);
        };
        let controllers = parse_controllers(&text)
            .map_err(|e| CliError::BadInput(format!("--controllers {text:?}: {e}")))?;
        let mut cluster = ClusterConfig::new(controllers);
        if let Some(ms) = replica_lag_time_max_ms {
            cluster.replica_lag_time_max_ms = ms;
        }
        if let Some(ms) = broker_session_timeout_ms {
            cluster.broker_session_timeout_ms = ms;
        }
        if let Some(ms) = broker_heartbeat_interval_ms {
            cluster.broker_heartbeat_interval_ms = ms;
        }
        if let Some(factor) = default_replication_factor {
            cluster.default_replication_factor = factor;
        }
        if let Some(entries) = metadata_snapshot_entries {
            if entries < 1 {
                return Err(CliError::BadInput(
                    "--metadata-snapshot-entries must be at least 1".into(),
                ));
            }
            cluster.metadata_snapshot_entries = entries;
        }
        cluster
            .validate(node_id)
            .map_err(|e| CliError::BadInput(format!("cluster settings: {e}")))?;
        // A controller's quorum address is where its shard 0 listens: a different port here
        // means the other voters would never reach this one.
        if let Some(addr) = cluster.controller_addr(node_id) {
            let port = addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            if port != Some(listen_port) {
                return Err(CliError::BadInput(format!(
                    "--controllers lists this broker (node id {node_id}) at {addr}, but it \
                     listens on port {listen_port}"
                )));
            }
        }
        Ok(Some(cluster))
    }
}

fn read_config(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?;
    toml::from_str(&text).map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))
}
