//! The machine a run happened on (the JSON report's `machine`): figures from different
//! machines must not be compared as if they were one.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Facts about the machine and the code that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Physical memory, bytes (0 if unknown).
    pub memory_bytes: u64,
    /// CPU model name, if known.
    pub cpu: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// File system type of the broker's data dir (with `--embedded`), else of the working
    /// directory, with the mount point: `ext4 on /`.
    pub file_system: String,
    /// `git describe --always --dirty` of the working directory, or `unknown`.
    pub git_revision: String,
}

impl Machine {
    /// Reads the facts from `/proc` and git; `data_dir` is where the broker writes, if known.
    pub fn detect(data_dir: Option<&Path>) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let dir = data_dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| "/".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            file_system: file_system_of(&dir, &read("/proc/self/mounts")),
            git_revision: git_revision(),
        }
    }
}

/// The type and mount point of the mount holding `dir`: the longest mount point that is a
/// prefix of it, from `/proc/self/mounts` text.
pub fn file_system_of(dir: &Path, mounts: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?.replace("\\040", " ");
            let fs_type = fields.next()?;
            dir.starts_with(&mount_point)
                .then(|| (mount_point.len(), format!("{fs_type} on {mount_point}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, text)| text)
}

fn git_revision() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_mount_wins() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n";
        assert_eq!(
            file_system_of(Path::new("/tmp/x/y"), mounts),
            "tmpfs on /tmp"
        );
        assert_eq!(file_system_of(Path::new("/work/data"), mounts), "ext4 on /");
        assert_eq!(file_system_of(Path::new("/x"), ""), "unknown");
    }

    #[test]
    fn detect_fills_every_field() {
        let m = Machine::detect(None);
        assert!(m.cores >= 1);
        assert!(!m.kernel.is_empty());
        assert!(!m.file_system.is_empty());
        assert!(!m.git_revision.is_empty());
    }
}
