//! Helpers shared by the integration tests of the `quiver` binary: running the binary, running
//! storage work on a glommio executor, and the record contents `quiver log append-child` writes
//! (re-implemented here from its documented formula, so the tests check the binary against an
//! independent oracle rather than against itself).

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod broker;
pub mod cluster;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quiver_engine::rt::{prepare_executor, ExecutorConfig};

/// Registered io_uring memory of a test executor (ARCHITECTURE §9: always set explicitly).
pub const TEST_IO_MEMORY_BYTES: usize = 1 << 20;

/// Path of the `quiver` binary under test.
pub fn quiver_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quiver"))
}

/// Runs `quiver <args>` to completion.
pub fn quiver(args: &[&str]) -> Output {
    Command::new(quiver_bin())
        .args(args)
        .output()
        .expect("the quiver binary runs")
}

/// stdout of `output` as text.
pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of `output` as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `make()`'s future on a fresh glommio executor thread, after preparing it for O_DIRECT
/// IO on `probe_dir`'s device, and returns its output.
pub fn on_executor<T, F, G>(probe_dir: &Path, make: G) -> T
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let config = ExecutorConfig {
        name: "quiver-test".into(),
        cpu: None,
        io_memory_bytes: TEST_IO_MEMORY_BYTES,
    };
    let dir = probe_dir.to_path_buf();
    config
        .spawn(move || async move {
            prepare_executor(&dir)
                .await
                .expect("the executor can do direct IO on the test directory");
            make().await
        })
        .expect("a glommio executor starts")
}

/// Key of the record at `offset` written by `append-child`: the offset in decimal.
pub fn record_key(offset: i64) -> Vec<u8> {
    offset.to_string().into_bytes()
}

/// Value of the record at `offset` written by `append-child --seed seed --value-bytes len`:
/// `<seed>/<offset>/` then lowercase letters from SplitMix64 seeded with
/// `seed ^ offset * 0x9E3779B97F4A7C15`, cut to `len` bytes.
pub fn record_value(seed: u64, offset: i64, len: usize) -> Vec<u8> {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = format!("{seed}/{offset}/").into_bytes();
    let mut state = seed ^ (offset as u64).wrapping_mul(GAMMA);
    while out.len() < len {
        state = state.wrapping_add(GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push(b'a' + (z % 26) as u8);
    }
    out.truncate(len);
    out
}

/// Names of the segment files (`<20 digits>.log`) in `dir`, sorted (= by base offset).
pub fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the log directory")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            n.strip_suffix(".log")
                .is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    names.sort();
    names
}

/// Copies every regular file of `from` into `to` (created), replacing what is there.
pub fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).expect("clear the copy's directory");
    }
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("list the source directory") {
        let entry = entry.expect("a directory entry");
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
        }
    }
}

/// The value of sequenced test record `i`: `rec-` and six digits.
pub fn seq_value(i: usize) -> bytes::Bytes {
    bytes::Bytes::from(format!("rec-{i:06}"))
}

/// The sequence number in a [`seq_value`].
pub fn seq_of(value: &[u8]) -> usize {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.strip_prefix("rec-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected value {value:?}"))
}

/// Checks a log read back per partition (offset, value) against acknowledged deliveries
/// (record, partition, offset): each record at most once, in send order per partition, and
/// each acknowledged one where its delivery said. Returns how many records the log holds.
pub fn check_acked_once_in_order(
    log: &std::collections::BTreeMap<i32, Vec<(i64, bytes::Bytes)>>,
    acked: &[(usize, i32, i64)],
) -> usize {
    let mut where_is: std::collections::HashMap<usize, (i32, i64)> = Default::default();
    for (partition, records) in log {
        let mut last: Option<usize> = None;
        for (offset, value) in records {
            let seq = seq_of(value);
            if let Some(prev) = where_is.insert(seq, (*partition, *offset)) {
                panic!("record {seq} is in the log twice: at {prev:?} and ({partition}, {offset})");
            }
            if let Some(last) = last {
                assert!(
                    last < seq,
                    "partition {partition}: record {seq} follows {last} (reordered)"
                );
            }
            last = Some(seq);
        }
    }
    for &(i, partition, offset) in acked {
        assert_eq!(
            where_is.get(&i),
            Some(&(partition, offset)),
            "record {i}: delivery reported ({partition}, {offset})"
        );
    }
    where_is.len()
}

/// A two-worker tokio runtime for a test's client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Records read, per partition, in offset order: (offset, value).
pub type ReadLog = std::collections::BTreeMap<i32, Vec<(i64, bytes::Bytes)>>;

/// Reads partitions `0..partitions` of `topic` from their start until `done` holds for what
/// was read, at most `wait` (then fails the test).
pub async fn read_until(
    config: quiver_transport::client::ClientConfig,
    topic: &str,
    partitions: i32,
    wait: std::time::Duration,
    done: impl Fn(&ReadLog) -> bool,
) -> ReadLog {
    use quiver_transport::client::{Consumer, ConsumerConfig, TopicPartition};
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let mut consumer = Consumer::connect(config, ConsumerConfig::default())
        .await
        .expect("consumer connects");
    consumer.assign(tps.clone());
    consumer.seek_to_beginning(&tps).await.expect("seek");
    let mut out = ReadLog::new();
    let deadline = std::time::Instant::now() + wait;
    while !done(&out) {
        assert!(
            std::time::Instant::now() < deadline,
            "read only {:?} records of {topic} per partition within {wait:?}",
            out.iter().map(|(p, v)| (*p, v.len())).collect::<Vec<_>>()
        );
        for r in consumer
            .poll(std::time::Duration::from_millis(300))
            .await
            .expect("poll")
        {
            out.entry(r.partition)
                .or_default()
                .push((r.offset, r.value.expect("value")));
        }
    }
    out
}
