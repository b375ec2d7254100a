//! `quiver cluster status`: the cluster as the brokers' metadata image shows it: brokers (live
//! or fenced, and their shard counts), the active controller, and under-replicated and offline partitions.
//!
//! `quiver cluster certs`: the TLS files of a local cluster, one CA that every broker and client
//! trusts and one broker certificate it signed for the cluster's hosts (ARCHITECTURE §5: a local
//! cluster shares one CA).
//!
//! `certs --dir DIR` writes `ca.pem`, `ca-key.pem`, `broker.pem` (the broker certificate, then
//! the CA's) and `broker-key.pem`; keys are mode 0600. It writes nothing when any of the four
//! already exists, unless `--force`. Brokers start with `--tls-cert DIR/broker.pem --tls-key
//! DIR/broker-key.pem --tls-ca DIR/ca.pem`; clients pass `--tls-ca DIR/ca.pem`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use quiver_engine::cluster::metadata::ClusterMetadata;
use quiver_transport::client::Admin;
use quiver_transport::quic::tls::{write_pem_file, ClusterCerts};

use crate::cli::client::{block_on, client_error, ConnectArgs};
use crate::cli::CliError;

/// File name of the CA certificate.
pub const CA_FILE: &str = "ca.pem";
/// File name of the CA's private key.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the broker certificate chain.
pub const BROKER_CERT_FILE: &str = "broker.pem";
/// File name of the broker certificate's private key.
pub const BROKER_KEY_FILE: &str = "broker-key.pem";
/// Hosts the broker certificate names unless `--hosts` says otherwise.
pub const HOSTS_DEFAULT: &str = "127.0.0.1,localhost";

/// Permission bits of a private key file.
const KEY_FILE_MODE: u32 = 0o600;
/// Permission bits of a certificate file.
const CERT_FILE_MODE: u32 = 0o644;

/// `quiver cluster <command>`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Brokers, the active controller, and under-replicated and offline partitions.
    Status {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Write a CA and a broker certificate it signed, for a local cluster's TLS.
    Certs {
        /// Directory for ca.pem, ca-key.pem, broker.pem and broker-key.pem (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Host names and IP addresses the broker certificate is valid for, comma-separated.
        #[arg(long, default_value = HOSTS_DEFAULT)]
        hosts: String,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `quiver cluster`.
pub fn run(args: ClusterArgs) -> Result<(), CliError> {
    match args.command {
        ClusterCommand::Certs { dir, hosts, force } => certs(&dir, &hosts, force),
        ClusterCommand::Status { connect } => status(&connect),
    }
}

/// Prints one line per broker (`broker ID HOST:PORT shards=N live|fenced [controller]`),
/// then the partitions whose ISR is smaller than their replica set and those without a
/// leader, then a summary line. Exits 0 even when partitions are under-replicated: it reports, it does not
/// judge.
fn status(connect: &ConnectArgs) -> Result<(), CliError> {
    let config = connect.client_config()?;
    block_on(async move {
        let admin = Admin::connect(config)
            .await
            .map_err(client_error("connecting"))?;
        let described = admin
            .describe_cluster()
            .await
            .map_err(client_error("describing the cluster"))?;
        if described.image.is_empty() {
            println!("single broker (not a cluster)");
            return Ok(());
        }
        let image = ClusterMetadata::decode_image(&described.image)
            .map_err(|e| CliError::Client(format!("the cluster image: {e}")))?;
        for b in image.brokers() {
            println!(
                "broker\t{}\t{}\tshards={}\t{}{}",
                b.id,
                b.listener,
                b.shards,
                if b.fenced { "fenced" } else { "live" },
                if b.id == described.controller_id {
                    "\tcontroller"
                } else {
                    ""
                }
            );
        }
        let (mut under, mut offline, mut total) = (0, 0, 0);
        for (topic, p, state) in image.partitions() {
            total += 1;
            if state.leader.is_none() {
                offline += 1;
                println!(
                    "offline\t{}\t{p}\treplicas\t{:?}",
                    topic.name, state.replicas
                );
            } else if state.isr.len() < state.replicas.len() {
                under += 1;
                println!(
                    "under-replicated\t{}\t{p}\tleader\t{}\tisr\t{:?}\treplicas\t{:?}",
                    topic.name,
                    state.leader.unwrap_or(-1),
                    state.isr,
                    state.replicas
                );
            }
        }
        println!(
            "controller {} metadata offset {} partitions {total} under-replicated {under} offline {offline}",
            described.controller_id, described.metadata_offset
        );
        Ok(())
    })
}

fn certs(dir: &Path, hosts: &str, force: bool) -> Result<(), CliError> {
    let hosts: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    if hosts.is_empty() {
        return Err(CliError::BadInput(
            "--hosts names no host or address".into(),
        ));
    }
    let files = [CA_FILE, CA_KEY_FILE, BROKER_CERT_FILE, BROKER_KEY_FILE].map(|f| dir.join(f));
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|f| f.symlink_metadata().is_ok())
            .map(|f| f.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::BadInput(format!(
                "{} already exist(s); pass --force to replace",
                existing.join(", ")
            )));
        }
    }
    let certs = ClusterCerts::generate(&hosts).map_err(|e| CliError::BadInput(e.to_string()))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    let [ca, ca_key, broker, broker_key] = &files;
    // Keys before certificates, so an interrupted run leaves no certificate without its key.
    for (path, pem, mode) in [
        (ca_key, &certs.ca_key_pem, KEY_FILE_MODE),
        (broker_key, &certs.broker_key_pem, KEY_FILE_MODE),
        (ca, &certs.ca_cert_pem, CERT_FILE_MODE),
        (broker, &certs.broker_chain_pem, CERT_FILE_MODE),
    ] {
        write_pem_file(path, pem, mode).map_err(|e| CliError::BadInput(e.to_string()))?;
    }
    println!(
        "wrote {CA_FILE}, {CA_KEY_FILE}, {BROKER_CERT_FILE} and {BROKER_KEY_FILE} in {} \
         (broker certificate for {})",
        dir.display(),
        hosts.join(",")
    );
    Ok(())
}
