//! [`ClientConfig`]: what every client (admin, producer, consumer) needs to reach a cluster, and
//! [`BrokerAddr`], a `host:port` that keeps the host for TLS server-name checks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::quic::{Trust, Tuning};

use super::ClientError;

/// Environment variable naming the CA (or broker certificate) PEM file to trust.
pub const TLS_CA_ENV: &str = "QUIVER_TLS_CA";
/// Where a broker started in the current directory with default flags writes its certificate.
pub const DEFAULT_CA_PATH: &str = "./quiver-data/tls/cert.pem";

/// Connection settings shared by [`Admin`](super::Admin), [`Producer`](super::Producer) and
/// [`Consumer`](super::Consumer).
///
/// ```
/// use std::time::Duration;
/// use quiver_transport::client::ClientConfig;
/// use quiver_transport::quic::Trust;
///
/// let config = ClientConfig {
///     request_timeout: Duration::from_secs(10),
///     ..ClientConfig::new("127.0.0.1:9190", Trust::InsecureSkipVerify)
/// };
/// assert_eq!(config.bootstrap_addrs().unwrap()[0].to_string(), "127.0.0.1:9190");
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Comma-separated `host:port` list of brokers to ask for metadata first (shard-0 ports).
    pub bootstrap: String,
    /// Whom to trust (the broker's CA or self-signed certificate).
    pub trust: Trust,
    /// QUIC transport knobs.
    pub tuning: Tuning,
    /// Sent in every request header, for the broker's logs and metrics.
    pub client_id: String,
    /// Longest wait for one request's response (a fetch adds its `max_wait` to this).
    pub request_timeout: Duration,
    /// Cached topic metadata older than this is refreshed before use.
    pub metadata_max_age: Duration,
    /// First wait before re-opening a failed connection; doubles per failure.
    pub reconnect_backoff: Duration,
    /// Longest wait before re-opening a failed connection.
    pub reconnect_backoff_max: Duration,
}

impl ClientConfig {
    /// Defaults (`client_id` "quiver-sdk", 30 s request timeout, 5 min metadata age, 50 ms to
    /// 1 s reconnect back-off) for `bootstrap` and `trust`.
    pub fn new(bootstrap: impl Into<String>, trust: Trust) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap.into(),
            trust,
            tuning: Tuning::default(),
            client_id: "quiver-sdk".into(),
            request_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
        }
    }

    /// The default trust: the PEM file named by `QUIVER_TLS_CA` if set, else
    /// `./quiver-data/tls/cert.pem` if it exists (what a local broker writes), else an error
    /// naming both.
    ///
    /// ```no_run
    /// use quiver_transport::client::ClientConfig;
    ///
    /// let trust = ClientConfig::trust_from_env_or_default().expect("a CA file");
    /// let config = ClientConfig::new("127.0.0.1:9190", trust);
    /// ```
    pub fn trust_from_env_or_default() -> Result<Trust, ClientError> {
        let from_env = std::env::var_os(TLS_CA_ENV).map(PathBuf::from);
        trust_from(from_env.as_deref(), Path::new(DEFAULT_CA_PATH))
    }

    /// The bootstrap list, parsed.
    pub fn bootstrap_addrs(&self) -> Result<Vec<BrokerAddr>, ClientError> {
        let addrs = self
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(BrokerAddr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(ClientError::Config("bootstrap names no broker".into()));
        }
        Ok(addrs)
    }
}

/// Trust from `env_path` if given, else from `default_path` if it exists.
fn trust_from(env_path: Option<&Path>, default_path: &Path) -> Result<Trust, ClientError> {
    let tls = |path: &Path, e: crate::quic::TlsError| {
        ClientError::Config(format!("loading TLS trust from {}: {e}", path.display()))
    };
    if let Some(path) = env_path {
        return Trust::from_pem_file(path).map_err(|e| tls(path, e));
    }
    if default_path.exists() {
        return Trust::from_pem_file(default_path).map_err(|e| tls(default_path, e));
    }
    Err(ClientError::Config(format!(
        "no TLS trust: set {TLS_CA_ENV} to the broker's CA or certificate PEM file, or run \
         where {} exists",
        default_path.display()
    )))
}

/// A broker (shard) address as `host` and `port`; the host is also the TLS server name.
///
/// ```
/// use quiver_transport::client::BrokerAddr;
///
/// let addr = BrokerAddr::parse("[::1]:9191").unwrap();
/// assert_eq!((addr.host.as_str(), addr.port), ("::1", 9191));
/// assert_eq!(addr.to_string(), "[::1]:9191");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddr {
    /// Host name or IP address (no brackets).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl BrokerAddr {
    /// An address from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> BrokerAddr {
        BrokerAddr {
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port`, `[v6]:port` or `v4:port`.
    pub fn parse(text: &str) -> Result<BrokerAddr, ClientError> {
        let bad = || ClientError::Config(format!("bad broker address {text:?}: want host:port"));
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.parse().map_err(|_| bad())?;
        Ok(BrokerAddr::new(host, port))
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_reports_both_places_when_nothing_is_found() {
        let missing = Path::new("/nonexistent/quiver/cert.pem");
        let err = trust_from(None, missing).unwrap_err().to_string();
        assert!(err.contains(TLS_CA_ENV), "{err}");
        assert!(err.contains("/nonexistent/quiver/cert.pem"), "{err}");
        let err = trust_from(Some(missing), missing).unwrap_err().to_string();
        assert!(err.contains("loading TLS trust"), "{err}");
    }

    #[test]
    fn bootstrap_lists_parse() {
        let config = ClientConfig::new("a:1, 127.0.0.1:2,[::1]:3", Trust::InsecureSkipVerify);
        let addrs = config.bootstrap_addrs().unwrap();
        assert_eq!(addrs[0], BrokerAddr::new("a", 1));
        assert_eq!(addrs[1], BrokerAddr::new("127.0.0.1", 2));
        assert_eq!(addrs[2], BrokerAddr::new("::1", 3));
        for bad in ["", "nohost", ":1", "a:b", "a:70000"] {
            let config = ClientConfig::new(bad, Trust::InsecureSkipVerify);
            assert!(config.bootstrap_addrs().is_err(), "{bad:?}");
        }
    }
}
