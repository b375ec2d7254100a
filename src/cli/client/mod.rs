//! The client commands: `quiver topic ...`, `quiver produce`, `quiver consume`, `quiver group`,
//! `quiver dlq`. They use the SDK (`quiver_transport::client`) on a small tokio runtime, like any
//! application would.
//!
//! Every command takes the same connection flags ([`ConnectArgs`]): `--bootstrap HOST:PORT`
//! (env `QUIVER_BOOTSTRAP`, default `127.0.0.1:9190`), `--tls-ca FILE` (env `QUIVER_TLS_CA`,
//! default `./quiver-data/tls/cert.pem`, the certificate a local broker creates), and
//! `--insecure-skip-verify` for development only.

pub mod consume;
pub mod dlq;
pub mod group;
pub mod produce;
pub mod topic;

use std::future::Future;
use std::path::PathBuf;

use clap::Args;
use quiver_transport::client::{ClientConfig, ClientError};
use quiver_transport::quic::Trust;

use super::CliError;

/// Default bootstrap address: a local broker's shard 0.
pub const BOOTSTRAP_DEFAULT: &str = "127.0.0.1:9190";
/// Where a local broker started with default settings keeps its self-signed certificate.
pub const TLS_CA_DEFAULT: &str = "./quiver-data/tls/cert.pem";

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Any broker's address (shard 0's port).
    #[arg(long, env = "QUIVER_BOOTSTRAP", default_value = BOOTSTRAP_DEFAULT, global = true)]
    pub bootstrap: String,
    /// PEM file of the CA (or self-signed certificate) to trust. [default: ./quiver-data/tls/cert.pem]
    #[arg(long, env = "QUIVER_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Accept any server certificate. For development only: anyone on the path can read and
    /// change the traffic.
    #[arg(long, global = true)]
    pub insecure_skip_verify: bool,
}

impl ConnectArgs {
    /// The SDK configuration these flags describe.
    pub fn client_config(&self) -> Result<ClientConfig, CliError> {
        let trust = if self.insecure_skip_verify {
            eprintln!(
                "quiver: WARNING: --insecure-skip-verify: the broker's certificate is NOT checked; \
                 use this for development only"
            );
            Trust::InsecureSkipVerify
        } else {
            let path = self.tls_ca.clone().unwrap_or_else(|| TLS_CA_DEFAULT.into());
            Trust::from_pem_file(&path).map_err(|e| {
                CliError::BadInput(format!(
                    "cannot load the CA to trust ({e}); pass --tls-ca FILE or set QUIVER_TLS_CA \
                     (a local broker writes its certificate to <data-dir>/tls/cert.pem)"
                ))
            })?
        };
        let mut config = ClientConfig::new(self.bootstrap.clone(), trust);
        config.client_id = "quiver-cli".into();
        Ok(config)
    }
}

/// Runs a client command on a current-thread tokio runtime.
pub fn block_on<T>(future: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("starting the tokio runtime", e))?
        .block_on(future)
}

/// Wraps an SDK error with what the command was doing.
pub fn client_error(context: impl Into<String>) -> impl FnOnce(ClientError) -> CliError {
    let context = context.into();
    move |e| CliError::Client(format!("{context}: {e}"))
}

/// Parses `key=value`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}
