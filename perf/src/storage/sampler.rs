//! Diagnosis: samples the device's queue (`/sys/dev/block/MAJ:MIN/inflight`) on a helper thread
//! while a phase runs, to show how deep ours and fio keep it (`--sample-queue`).
//!
//! Costs a few percent of one core (one sysfs read per `SAMPLE_INTERVAL`), so it is off by
//! default. The counts include any other IO on the device.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

const SAMPLE_INTERVAL: Duration = Duration::from_micros(100);
/// Depths at or above this share the last histogram bucket.
const DEPTH_BUCKETS: usize = 33;

/// What the sampler saw over one phase.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSample {
    /// Samples taken.
    pub samples: u64,
    /// Share of samples with at least one request in flight, percent.
    pub busy_pct: f64,
    /// Mean requests in flight over the busy samples.
    pub depth_mean_busy: f64,
    /// Share of samples per depth, percent (index = depth; the last bucket is "or more").
    pub depth_pct: Vec<f64>,
}

/// A running sampler; [`QueueSampler::stop`] returns what it saw.
pub struct QueueSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<[u64; DEPTH_BUCKETS]>,
}

/// The `inflight` file of the block device holding `dir`, if sysfs has one.
pub fn inflight_path(dir: &Path) -> Option<PathBuf> {
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let path = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/inflight"));
    path.exists().then_some(path)
}

impl QueueSampler {
    /// Starts sampling `inflight` (from [`inflight_path`]).
    pub fn start(inflight: &Path) -> QueueSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let path = inflight.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut hist = [0u64; DEPTH_BUCKETS];
            while !flag.load(Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    let depth: usize = text
                        .split_whitespace()
                        .filter_map(|n| n.parse::<usize>().ok())
                        .sum();
                    hist[depth.min(DEPTH_BUCKETS - 1)] += 1;
                }
                std::thread::sleep(SAMPLE_INTERVAL);
            }
            hist
        });
        QueueSampler { stop, thread }
    }

    /// Stops the sampler and summarises.
    pub fn stop(self) -> QueueSample {
        self.stop.store(true, Ordering::Relaxed);
        let hist = self.thread.join().unwrap_or([0; DEPTH_BUCKETS]);
        let samples: u64 = hist.iter().sum();
        let busy: u64 = hist[1..].iter().sum();
        let depth_sum: u64 = hist.iter().enumerate().map(|(d, n)| d as u64 * n).sum();
        let pct = |n: u64| n as f64 * 100.0 / samples.max(1) as f64;
        QueueSample {
            samples,
            busy_pct: pct(busy),
            depth_mean_busy: depth_sum as f64 / busy.max(1) as f64,
            depth_pct: hist.iter().map(|&n| pct(n)).collect(),
        }
    }
}

impl QueueSample {
    /// `busy 97%, depth 7.6 (p<4 12%)`: a short line for the progress output.
    pub fn show(&self) -> String {
        let shallow: f64 = self.depth_pct[1..4].iter().sum();
        format!(
            "device busy {:.0}%, mean depth {:.1} while busy, depth 1-3 {:.0}%",
            self.busy_pct, self.depth_mean_busy, shallow
        )
    }
}
