//! `quiver`: the single Quiver binary.
//!
//! This file is wiring only: the clap command tree's top level and the mapping of a command's
//! result to the process exit code. Each command group lives in its own module under [`cli`]
//! (`quiver log` in `cli::log`); new groups (`broker`, `topic`, `produce`, ...) are new
//! variants of [`Command`] with their own module.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Quiver: a thread-per-core, storage-first streaming log broker over QUIC.
#[derive(Debug, Parser)]
#[command(name = "quiver", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The top-level command groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (one shard per core) until SIGINT or SIGTERM.
    Broker(cli::broker::BrokerArgs),
    /// Create, list, describe, alter and delete topics.
    Topic(cli::client::topic::TopicArgs),
    /// Write stdin lines to a topic, one record per line.
    Produce(cli::client::produce::ProduceArgs),
    /// Print a topic's records, one value per line.
    Consume(cli::client::consume::ConsumeArgs),
    /// List, describe, reset the offsets of, and delete consumer groups.
    Group(cli::client::group::GroupArgs),
    /// Inspect and replay dead-letter topics (`<topic>.dlq`).
    Dlq(cli::client::dlq::DlqArgs),
    /// Inspect and check a partition log directory on disk.
    Log(cli::log::LogArgs),
    /// Load-test a broker: workloads, latency percentiles, JSON reports, plots, comparisons.
    Bench(cli::bench::BenchArgs),
    /// Local cluster helpers: TLS certificates shared by a cluster's brokers.
    Cluster(cli::cluster::ClusterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Broker(_)) {
        // Commands that print behave like Unix filters: a closed pipe (`| head`) ends them
        // quietly instead of as an error. The broker keeps Rust's default (EPIPE as an error).
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Broker(args) => cli::broker::run(args),
        Command::Topic(args) => cli::client::topic::run(args),
        Command::Produce(args) => cli::client::produce::run(args),
        Command::Consume(args) => cli::client::consume::run(args),
        Command::Group(args) => cli::client::group::run(args),
        Command::Dlq(args) => cli::client::dlq::run(args),
        Command::Log(args) => cli::log::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Cluster(args) => cli::cluster::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quiver: error: {e}");
            e.exit_code()
        }
    }
}
