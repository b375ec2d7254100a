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
    /// Inspect and check a partition log directory on disk.
    Log(cli::log::LogArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(args) => cli::log::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quiver: error: {e}");
            e.exit_code()
        }
    }
}
