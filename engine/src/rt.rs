//! The thin facade over glommio: building shard executors with the platform work-arounds.
//!
//! Every executor Quiver starts goes through [`ExecutorConfig::spawn`] (a new pinned thread)
//! or [`ExecutorConfig::run_here`], and then [`prepare_executor`] before it opens any data
//! file. Together they handle glommio 0.9.0's known pitfalls (ARCHITECTURE §9) in one place:
//! - the poll-ring probe: glommio decides per thread and per device whether reads may use the
//!   io_uring poll ring by reading the first file the thread opens with O_DIRECT; an empty file
//!   reads "successfully" and wrongly enables it, after which O_DIRECT reads fail with
//!   EOPNOTSUPP. So each executor first opens and reads a non-empty probe file on the data
//!   directory's device;
//! - registered IO memory: each executor registers `io_memory` bytes with io_uring (10 MiB by
//!   default, above the 8 MiB memlock limit of a non-root user), so it is set explicitly;
//! - the first timer sleep can take 30-50 ms, so timers are warmed before serving.

use std::future::Future;
use std::io;
use std::path::Path;
use std::time::Duration;

use glommio::io::DmaFile;
use glommio::{LocalExecutorBuilder, Placement};

/// Registered io_uring buffer memory per executor, unless configured otherwise.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 2 << 20;
/// Name of the probe file `prepare_executor` keeps in each data directory.
pub const PROBE_FILE_NAME: &str = ".quiver-probe";
const PROBE_BYTES: usize = 4096;

/// How to build one shard executor.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Thread name prefix.
    pub name: String,
    /// Pin to this CPU, or float.
    pub cpu: Option<usize>,
    /// Registered io_uring buffer memory in bytes.
    pub io_memory_bytes: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            name: "quiver".into(),
            cpu: None,
            io_memory_bytes: IO_MEMORY_BYTES_DEFAULT,
        }
    }
}

impl ExecutorConfig {
    fn builder(&self) -> LocalExecutorBuilder {
        let placement = match self.cpu {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        LocalExecutorBuilder::new(placement)
            .name(&self.name)
            .io_memory(self.io_memory_bytes)
    }

    /// Runs `make()`'s future to completion on a new executor thread and returns its output.
    pub fn spawn<T, F, G>(&self, make: G) -> io::Result<T>
    where
        G: FnOnce() -> F + Send + 'static,
        F: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let handle = self
            .builder()
            .spawn(make)
            .map_err(|e| io::Error::other(e.to_string()))?;
        handle.join().map_err(|e| io::Error::other(e.to_string()))
    }

    /// Runs `future` to completion on an executor on the calling thread.
    pub fn run_here<T>(&self, future: impl Future<Output = T>) -> io::Result<T> {
        let executor = self
            .builder()
            .make()
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(executor.run(future))
    }
}

/// Makes this executor safe for O_DIRECT IO under `data_dir` (creating it if needed) and warms
/// its timers. Call once per executor, before opening any DMA file on that device.
pub async fn prepare_executor(data_dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let probe = data_dir.join(PROBE_FILE_NAME);
    let needs_write = std::fs::metadata(&probe)
        .map(|m| m.len() < PROBE_BYTES as u64)
        .unwrap_or(true);
    if needs_write {
        // Shards of one broker prepare the same directory at the same time: each writes its
        // own temporary file, and the renames (same content) may race harmlessly.
        static PROBE_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = PROBE_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = data_dir.join(format!(
            "{PROBE_FILE_NAME}.{}.{unique}.tmp",
            std::process::id()
        ));
        std::fs::write(&tmp, [0x51u8; PROBE_BYTES])?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &probe)?;
    }
    let file = DmaFile::open(&probe).await.map_err(io::Error::from)?;
    let read = file
        .read_at_aligned(0, PROBE_BYTES)
        .await
        .map_err(io::Error::from)?;
    if read.len() != PROBE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "probe file read came back short",
        ));
    }
    file.close().await.map_err(io::Error::from)?;
    // The first sleep of a fresh executor is slow (fixed upstream after 0.9.0): pay it now.
    glommio::timer::sleep(Duration::from_millis(1)).await;
    Ok(())
}

/// Milliseconds since the Unix epoch, for the log's time-based policies.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
