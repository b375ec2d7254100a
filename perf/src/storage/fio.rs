//! The baseline: fio jobs with exactly our IO pattern, on the same file system.
//!
//! Writes: sequential, O_DIRECT, `ioengine=io_uring` with registered buffers (`fixedbufs`, as our
//! DMA buffers come from glommio's registered io_memory), block size = the log's
//! `write_chunk_bytes`, `iodepth` = its `writes_in_flight_max`, either appending to a new file
//! (`fallocate=none`) or into one preallocated with `fallocate(mode 0)` (`fallocate=native`, the
//! size grows like ours with `keep_size=false`). With `flush=interval`, `fdatasync=N` where N is
//! the number of block writes between two of our syncs (fio, like our appender, drains its
//! queue before each sync). Reads: sequential, O_DIRECT, io_uring, block size = `read_io_bytes`,
//! `iodepth` = the pieces one `read` call issues (`read_max_bytes / read_io_bytes`).
//!
//! fio's own figure is used: bytes over the job's runtime, which starts after its file set-up
//! (so the preallocated case does not pay for its single `fallocate`; ours pays for its steps).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use super::sampler::{QueueSample, QueueSampler};

/// One fio job.
#[derive(Debug, Clone, Serialize)]
pub struct FioJob {
    /// The file it writes or reads.
    pub file: PathBuf,
    /// Read rather than write.
    pub read: bool,
    /// Block size.
    pub block_bytes: usize,
    /// Requests in flight.
    pub iodepth: usize,
    /// Bytes to move.
    pub size_bytes: u64,
    /// Writes: preallocate the file first (`fallocate=native`) or append (`fallocate=none`).
    pub preallocate: bool,
    /// Writes: `fdatasync` after this many block writes.
    pub fdatasync_blocks: Option<u64>,
}

/// What one fio job measured.
#[derive(Debug, Clone, Serialize)]
pub struct FioRun {
    /// Bytes moved.
    pub bytes: u64,
    /// fio's job runtime.
    pub secs: f64,
    /// Throughput, MiB/s.
    pub mib_s: f64,
    /// fdatasyncs issued (write jobs with `fdatasync`).
    pub syncs: u64,
    /// fio's CPU time over the job: user.
    pub cpu_user_secs: f64,
    /// ... and system.
    pub cpu_sys_secs: f64,
    /// The device queue while fio ran, set-up included (`--sample-queue`).
    pub queue: Option<QueueSample>,
}

impl FioJob {
    /// fio's arguments for this job.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--name=quiver-baseline".to_string(),
            format!("--filename={}", self.file.display()),
            format!("--rw={}", if self.read { "read" } else { "write" }),
            format!("--bs={}", self.block_bytes),
            format!("--iodepth={}", self.iodepth),
            "--direct=1".to_string(),
            "--ioengine=io_uring".to_string(),
            "--fixedbufs".to_string(),
            format!("--size={}", self.size_bytes),
            format!(
                "--fallocate={}",
                if self.preallocate && !self.read {
                    "native"
                } else {
                    "none"
                }
            ),
        ];
        if let (false, Some(n)) = (self.read, self.fdatasync_blocks) {
            args.push(format!("--fdatasync={n}"));
        }
        args.push("--output-format=json".to_string());
        args
    }

    /// The command line, for the report.
    pub fn command_line(&self, fio: &Path) -> String {
        let mut line = fio.display().to_string();
        for arg in self.args() {
            line.push(' ');
            line.push_str(&arg);
        }
        line
    }

    /// Runs the job and reads its JSON report.
    pub fn run(&self, fio: &Path, inflight: Option<&Path>) -> Result<FioRun, String> {
        let sampler = inflight.map(QueueSampler::start);
        let output = Command::new(fio)
            .args(self.args())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", fio.display()))?;
        let queue = sampler.map(QueueSampler::stop);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "fio failed ({}): {}{}",
                output.status,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        // fio may print notes before its JSON document.
        let json_at = stdout.find('{').ok_or("fio printed no JSON")?;
        let report: serde_json::Value = serde_json::from_str(&stdout[json_at..])
            .map_err(|e| format!("fio's JSON does not parse: {e}"))?;
        let job = &report["jobs"][0];
        if job["error"].as_i64().unwrap_or(0) != 0 {
            return Err(format!("fio job error {}", job["error"]));
        }
        let side = &job[if self.read { "read" } else { "write" }];
        let bytes = side["io_bytes"].as_u64().ok_or("fio JSON lacks io_bytes")?;
        let runtime_ms = side["runtime"].as_u64().ok_or("fio JSON lacks runtime")?;
        if bytes != self.size_bytes {
            return Err(format!(
                "fio moved {bytes} bytes, expected {}",
                self.size_bytes
            ));
        }
        let secs = runtime_ms.max(1) as f64 / 1000.0;
        Ok(FioRun {
            bytes,
            secs,
            mib_s: bytes as f64 / (1u64 << 20) as f64 / secs,
            // fio 3.33 leaves sync.total_ios at 0; the latency sample count is the sync count.
            syncs: job["sync"]["lat_ns"]["N"].as_u64().unwrap_or(0),
            cpu_user_secs: job["usr_cpu"].as_f64().unwrap_or(0.0) / 100.0 * secs,
            cpu_sys_secs: job["sys_cpu"].as_f64().unwrap_or(0.0) / 100.0 * secs,
            queue,
        })
    }
}
