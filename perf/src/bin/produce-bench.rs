//! `produce-bench`: produce throughput through the SDK into a real `quiver broker` process on
//! loopback, for the figures the broker issue asks for (1 KiB records, batches of 1000, one and
//! four partitions). Not the bench harness (that is `quiver bench`, issue 4): a fixed workload
//! to compare with the storage benchmark and the raw QUIC transfer of the same machine.
//!
//! It starts the broker itself (`--quiver PATH`, a release build) on a temporary data dir, then
//! for each round and each partition count creates a fresh topic and sends `--records` records
//! with explicit partitions round-robin (so every batch holds `--batch-records` records), waits
//! for every acknowledgement, and reports MiB/s of record values. Last line:
//! `p1_mib_s=<median> p4_mib_s=<median>`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use quiver_transport::batch::Compression;
use quiver_transport::client::{
    Admin, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use quiver_transport::protocol::Acks;
use quiver_transport::quic::Trust;

#[derive(Debug, Parser)]
struct Options {
    /// The quiver binary to run as the broker.
    #[arg(long, default_value = "target/release/quiver")]
    quiver: PathBuf,
    /// Records per run.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    /// Rounds (each runs every partition count).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Topic flush policy: always, interval or never.
    #[arg(long, default_value = "interval")]
    flush: String,
    /// Acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Broker shards.
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// UDP base port of the broker.
    #[arg(long, default_value_t = 39190)]
    port: u16,
    /// Data directory (default: a fresh temporary directory, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() {
    let o = Options::parse();
    let parent = if std::path::Path::new("target").is_dir() {
        "target"
    } else {
        "."
    };
    let tmp = tempfile::tempdir_in(parent).expect("temporary dir");
    let data = o.dir.clone().unwrap_or_else(|| tmp.path().join("data"));
    let mut broker = Command::new(&o.quiver)
        .args(["broker", "--listen", &format!("127.0.0.1:{}", o.port)])
        .arg("--data-dir")
        .arg(&data)
        .args(["--shards", &o.shards.to_string(), "--metrics-listen", "off"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("broker starts");
    let stderr = broker.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("broker ready line").expect("stderr");
        if line.starts_with("quiver broker ready") {
            eprintln!("{line}");
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});

    let acks = match o.acks.as_str() {
        "0" => Acks::None,
        "1" => Acks::Leader,
        _ => Acks::All,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let trust = Trust::from_pem_file(&data.join("tls/cert.pem")).expect("broker certificate");
    let config = ClientConfig::new(format!("127.0.0.1:{}", o.port), trust);
    let mut results: Vec<(i32, f64)> = Vec::new();
    rt.block_on(async {
        let admin = Admin::connect(config.clone()).await.expect("admin");
        for round in 0..o.rounds {
            for partitions in [1, 4] {
                let topic = format!("bench-{round}-p{partitions}");
                admin
                    .create_topic(NewTopic::new(&topic, partitions).config("flush", &o.flush))
                    .await
                    .expect("create topic");
                let batch_bytes = o.batch_records * (o.record_bytes + 32) + 1024;
                let producer = Producer::connect(
                    config.clone(),
                    ProducerConfig {
                        acks,
                        batch_size: batch_bytes,
                        linger: Duration::from_millis(5),
                        compression: Compression::None,
                        max_request_size: batch_bytes * 4,
                        buffer_memory: batch_bytes * 64,
                        ..ProducerConfig::default()
                    },
                )
                .await
                .expect("producer");
                let value = Bytes::from(vec![b'x'; o.record_bytes]);
                let started = Instant::now();
                let mut deliveries = Vec::with_capacity(o.records / o.batch_records + 1);
                for i in 0..o.records {
                    let p = ((i / o.batch_records) % partitions as usize) as i32;
                    let record = ProducerRecord::new(&topic, value.clone()).with_partition(p);
                    let d = producer.send(record).await.expect("send");
                    // One delivery per batch is enough to know the batch was acknowledged.
                    if i % o.batch_records == o.batch_records - 1 || i + 1 == o.records {
                        deliveries.push(d);
                    }
                }
                producer.flush().await.expect("flush");
                for d in deliveries {
                    d.await.expect("acknowledged");
                }
                let secs = started.elapsed().as_secs_f64();
                producer.close().await.expect("close");
                let mib_s = (o.records * o.record_bytes) as f64 / secs / (1 << 20) as f64;
                eprintln!("round {round} partitions {partitions}: {mib_s:.0} MiB/s ({secs:.2} s)");
                results.push((partitions, mib_s));
            }
        }
    });
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(broker.id() as i32, libc::SIGTERM) };
    let _ = broker.wait();
    let median = |p: i32| {
        let mut v: Vec<f64> = results.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "flush={} acks={} records={} record_bytes={} batch_records={}",
        o.flush, o.acks, o.records, o.record_bytes, o.batch_records
    );
    println!("p1_mib_s={:.0} p4_mib_s={:.0}", median(1), median(4));
}
