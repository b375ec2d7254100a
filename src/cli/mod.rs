//! The commands of the `quiver` binary, one module per command group, and what they share:
//! the command error type ([`CliError`], mapped to an exit code in `main`) and the way a command
//! runs storage work on a glommio executor ([`run_on_executor`]).
//!
//! Commands run on the calling thread. Anything that touches segment files runs inside one
//! glommio executor built through `quiver_engine::rt`, which applies the platform work-arounds
//! (explicit io_memory, the O_DIRECT probe) before the command opens a file.

pub mod bench;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod log;

use std::future::Future;
use std::io;
use std::path::Path;
use std::process::ExitCode;

use quiver_engine::log::LogError;
use quiver_engine::rt::{prepare_executor, ExecutorConfig};

/// Registered io_uring memory of a command's executor: one executor, small sequential IO.
const CLI_IO_MEMORY_BYTES: usize = 2 << 20;

/// Why a command failed. Exits with status 1, or 3 for a broker's fatal error (clap's usage
/// errors exit with 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An argument names something unusable: a missing directory, a file that is not a log.
    #[error("{0}")]
    BadInput(String),
    /// The storage engine refused an operation on the log.
    #[error("{context}: {source}")]
    Log {
        /// What the command was doing.
        context: String,
        /// The engine's error.
        source: LogError,
    },
    /// An operating-system call failed (executor set-up, writing to stdout).
    #[error("{context}: {source}")]
    Io {
        /// What the command was doing.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The broker refused a request or could not be reached.
    #[error("{0}")]
    Client(String),
    /// The broker could not start or a shard failed; the process stops as a whole.
    #[error("fatal: {0}")]
    Fatal(String),
    /// `quiver log verify` found the log inconsistent.
    #[error("verify failed: {0}")]
    VerifyFailed(String),
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Fatal(_) => ExitCode::from(3),
            _ => ExitCode::from(1),
        }
    }

    /// Wraps an engine error with what the command was doing.
    pub fn log(context: impl Into<String>, source: LogError) -> Self {
        CliError::Log {
            context: context.into(),
            source,
        }
    }

    /// Wraps an IO error with what the command was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Runs `task` on a glommio executor on this thread, after preparing the executor for O_DIRECT
/// IO on `data_dir`'s device (which leaves the engine's small probe file in `data_dir`).
pub fn run_on_executor<T, F>(data_dir: &Path, task: F) -> Result<T, CliError>
where
    F: Future<Output = Result<T, CliError>>,
{
    let config = ExecutorConfig {
        name: "quiver-cli".into(),
        cpu: None,
        io_memory_bytes: CLI_IO_MEMORY_BYTES,
    };
    let dir = data_dir.to_path_buf();
    config
        .run_here(async move {
            prepare_executor(&dir).await.map_err(|e| {
                CliError::io(format!("preparing direct IO in {}", dir.display()), e)
            })?;
            task.await
        })
        .map_err(|e| CliError::io("starting the glommio executor", e))?
}
