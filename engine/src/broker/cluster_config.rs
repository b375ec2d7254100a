//! How a broker joins a cluster: its controller quorum and the replication settings, and the
//! request path to other brokers ([`Peers`]).

use std::time::Duration;

use quiver_transport::protocol::{Request, Response};

use crate::cluster::replication::REPLICA_LAG_TIME_MAX_MS_DEFAULT;
use crate::shard::sync::LocalBoxFuture;

/// Kafka's default `broker.heartbeat.interval.ms`.
pub const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 2000;
/// Kafka's default `default.replication.factor` for a cluster.
pub const CLUSTER_REPLICATION_FACTOR_DEFAULT: i32 = 1;

/// One voter of the controller quorum: its broker id and where its shard 0 listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerAddress {
    /// The controller's broker id (also its Raft id).
    pub id: i32,
    /// `host:port` of its shard 0.
    pub addr: String,
}

/// Parses `--controllers`: `ID@HOST:PORT,...` (Kafka's `controller.quorum.voters`).
pub fn parse_controllers(text: &str) -> Result<Vec<ControllerAddress>, String> {
    let mut out: Vec<ControllerAddress> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| format!("controller '{item}' is not ID@HOST:PORT"))?;
        let id: i32 = id
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("controller '{item}': '{id}' is not a broker id"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("controller '{item}': '{addr}' is not HOST:PORT"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("controller '{item}': '{addr}' is not HOST:PORT"));
        }
        if out.iter().any(|c| c.id == id) {
            return Err(format!("controller id {id} is listed twice"));
        }
        out.push(ControllerAddress {
            id,
            addr: addr.to_string(),
        });
    }
    if out.is_empty() {
        return Err("no controllers listed".into());
    }
    Ok(out)
}

/// Cluster settings of a broker (`--controllers` and friends). A broker without them runs
/// alone, as before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The controller quorum's voters. This broker runs a controller on its shard 0 if its id
    /// is among them.
    pub controllers: Vec<ControllerAddress>,
    /// A follower that has not caught up for this long leaves the ISR
    /// (`replica.lag.time.max.ms`).
    pub replica_lag_time_max_ms: i64,
    /// A broker without a heartbeat for this long is fenced (`broker.session.timeout.ms`).
    pub broker_session_timeout_ms: i64,
    /// How often brokers heartbeat to the controller (`broker.heartbeat.interval.ms`).
    pub broker_heartbeat_interval_ms: u64,
    /// Replication factor of a topic created without one (`default.replication.factor`).
    pub default_replication_factor: i32,
    /// Applied metadata entries between a controller's snapshots of its image (the metadata
    /// log is cut after each).
    pub metadata_snapshot_entries: u64,
}

impl ClusterConfig {
    /// Defaults (Kafka's) for the quorum `controllers`.
    pub fn new(controllers: Vec<ControllerAddress>) -> ClusterConfig {
        ClusterConfig {
            controllers,
            replica_lag_time_max_ms: REPLICA_LAG_TIME_MAX_MS_DEFAULT,
            broker_session_timeout_ms:
                crate::cluster::controller::BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            broker_heartbeat_interval_ms: BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
            default_replication_factor: CLUSTER_REPLICATION_FACTOR_DEFAULT,
            metadata_snapshot_entries: crate::cluster::quorum::SNAPSHOT_ENTRIES,
        }
    }

    /// Checks the settings for broker `node_id`.
    pub fn validate(&self, node_id: i32) -> Result<(), String> {
        if self.controllers.is_empty() {
            return Err("a cluster needs at least one controller".into());
        }
        if node_id < 0 {
            return Err(format!("node id {node_id} is negative"));
        }
        if self.replica_lag_time_max_ms < 1 {
            return Err("replica.lag.time.max.ms must be at least 1".into());
        }
        if self.broker_heartbeat_interval_ms < 1
            || self.broker_heartbeat_interval_ms as i64 >= self.broker_session_timeout_ms
        {
            return Err(format!(
                "the broker heartbeat interval ({} ms) must be at least 1 and below the session \
                 timeout ({} ms)",
                self.broker_heartbeat_interval_ms, self.broker_session_timeout_ms
            ));
        }
        if self.default_replication_factor < 1 {
            return Err("the default replication factor must be at least 1".into());
        }
        Ok(())
    }

    /// Whether broker `node_id` is a controller.
    pub fn is_controller(&self, node_id: i32) -> bool {
        self.controllers.iter().any(|c| c.id == node_id)
    }

    /// Where controller `id` listens.
    pub fn controller_addr(&self, id: i32) -> Option<&str> {
        self.controllers
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.addr.as_str())
    }
}

/// Sends requests to other brokers (controllers, partition leaders) and returns their answers:
/// the QUIC shell implements it, one per shard, reusing connections. `addr` is `host:port`.
pub trait Peers {
    /// One request, one response, within `timeout`, with `client_id` in the request header
    /// (`None`: the broker's own). An error is a transport failure (no connection, stream
    /// reset, timeout, undecodable answer), described for logs.
    fn request_as<'a>(
        &'a self,
        addr: &'a str,
        client_id: Option<&'a str>,
        request: Request,
        timeout: Duration,
    ) -> LocalBoxFuture<'a, Result<Response, String>>;

    /// [`Peers::request_as`] under the broker's own client id.
    fn request<'a>(
        &'a self,
        addr: &'a str,
        request: Request,
        timeout: Duration,
    ) -> LocalBoxFuture<'a, Result<Response, String>> {
        self.request_as(addr, None, request, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_parse_and_bad_lists_are_refused() {
        let list = parse_controllers("0@127.0.0.1:9092, 1@localhost:9192,2@[::1]:9292").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[2].addr, "[::1]:9292");
        for bad in [
            "",
            "0",
            "x@h:1",
            "-1@h:1",
            "0@h",
            "0@h:0",
            "0@:5",
            "0@h:1,0@h:2",
        ] {
            assert!(parse_controllers(bad).is_err(), "{bad:?} parsed");
        }
    }
}
