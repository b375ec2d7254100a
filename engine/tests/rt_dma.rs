//! The glommio facade and the O_DIRECT storage on real files.
//!
//! glommio 0.9.0 probes io_uring poll support with the first file a thread opens; an empty file
//! fools the probe and later O_DIRECT reads fail with EOPNOTSUPP about half the time. These
//! tests start many fresh executors, each doing O_DIRECT writes and reads through
//! `prepare_executor`, so a regression in the work-around shows up as a failure here.

use std::path::PathBuf;

use bytes::Bytes;
use quiver_engine::batch::{BatchBuilder, Compression};
use quiver_engine::log::storage::IoBuf;
use quiver_engine::log::{DmaStorage, LogConfig, OpenMode, PartitionLog, Storage, StorageFile};
use quiver_engine::rt::{prepare_executor, ExecutorConfig};

fn scratch(name: &str) -> tempfile::TempDir {
    // Under target/ so the files sit on the project's file system, not a tmpfs.
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .expect("scratch dir")
}

#[test]
fn fresh_executors_write_and_read_back_direct_io() {
    for round in 0..24u8 {
        let dir = scratch("rt-dma");
        let path = dir.path().to_path_buf();
        let config = ExecutorConfig {
            name: format!("rt-test-{round}"),
            io_memory_bytes: 1 << 20,
            ..Default::default()
        };
        let result = config
            .spawn(move || async move {
                prepare_executor(&path).await?;
                let storage = DmaStorage::open(&path)?;
                let file = storage.open_file("data", OpenMode::CreateNew).await?;
                let mut buf = file.alloc_buf(64 << 10);
                for (i, b) in buf.as_mut_slice().iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(31).wrapping_add(round);
                }
                let expected = buf.as_slice().to_vec();
                file.write_at(buf, 0).await?;
                file.fdatasync().await?;
                let mut back = vec![0u8; expected.len()];
                let n = file.read_into(0, &mut back).await?;
                // An unaligned read goes through the same path.
                let mut middle = vec![0u8; 1000];
                let m = file.read_into(4097, &mut middle).await?;
                Ok::<_, std::io::Error>((
                    n,
                    back == expected,
                    m,
                    middle[..] == expected[4097..5097],
                ))
            })
            .expect("executor ran");
        let (n, same, m, middle_same) = result.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(n, 64 << 10, "round {round}: short read");
        assert!(same, "round {round}: data read back differs");
        assert_eq!(m, 1000, "round {round}: short unaligned read");
        assert!(middle_same, "round {round}: unaligned read differs");
    }
}

#[test]
fn a_partition_log_survives_reopen_on_real_files() {
    let dir = scratch("rt-log");
    let path = dir.path().to_path_buf();
    let config = LogConfig {
        segment_bytes: 16 << 10,
        ..LogConfig::default()
    };
    let mut written = Vec::new();
    for round in 0..3 {
        let path = path.clone();
        let config = config.clone();
        let before = written.clone();
        let exec = ExecutorConfig {
            name: format!("rt-log-{round}"),
            ..Default::default()
        };
        written = exec
            .spawn(move || async move {
                prepare_executor(&path).await.expect("prepare");
                let storage = DmaStorage::open(&path).expect("dir");
                let mut log = PartitionLog::open(storage, config, 0).await.expect("open");
                assert_eq!(
                    log.recovery().clean,
                    round > 0,
                    "clean marker after a clean close"
                );
                // Everything written in earlier rounds reads back identically.
                let mut at = 0;
                let mut seen: Vec<Bytes> = Vec::new();
                while at < log.next_offset() {
                    let read = log.read(at, 1 << 20).await.expect("read");
                    at = read.next_offset;
                    seen.extend(read.batches);
                }
                assert_eq!(seen, before, "round {round}: reopened log differs");
                for i in 0..200 {
                    let mut b = BatchBuilder::new(Compression::Lz4);
                    for j in 0..10 {
                        b.push(
                            i64::from(i * 10 + j),
                            Some(format!("k{j}").as_bytes()),
                            Some(&[i as u8; 700]),
                            &[],
                        );
                    }
                    log.append(b.build().expect("build"), 0)
                        .await
                        .expect("append");
                }
                log.sync(0).await.expect("sync");
                assert!(log.segment_count() > 1, "small segments rolled");
                let mut at = 0;
                let mut all = Vec::new();
                while at < log.next_offset() {
                    let read = log.read(at, 300 << 10).await.expect("read");
                    at = read.next_offset;
                    all.extend(read.batches);
                }
                log.close().await.expect("close");
                all
            })
            .expect("executor ran");
        assert_eq!(written.len(), 200 * (round + 1));
    }
}
