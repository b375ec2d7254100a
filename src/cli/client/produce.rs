//! `quiver produce TOPIC`: one record per line of stdin.
//!
//! The line is the value; with `--key-separator SEP` the text before the first `SEP` is the key
//! (a line without `SEP` has no key). Records go through the SDK's producer, so they are batched,
//! partitioned by key (murmur2, as Kafka) and retried like any application's. The command exits
//! 0 only when every line was acknowledged (with `--acks 0`: sent); a summary goes to stderr.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use quiver_transport::batch::Compression;
use quiver_transport::client::{Admin, Producer, ProducerConfig, ProducerRecord};
use quiver_transport::protocol::Acks;
use tokio::io::AsyncBufReadExt;

use super::{block_on, client_error, ConnectArgs};
use crate::cli::CliError;

/// Deliveries awaited at most at once before reading more of stdin.
const PENDING_DELIVERIES_MAX: usize = 1 << 16;
/// Errors printed in full; the rest are only counted.
const ERRORS_PRINTED_MAX: usize = 10;

/// `quiver produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to write to.
    topic: String,
    /// Split each line at the first occurrence of this text into key and value.
    #[arg(long)]
    key_separator: Option<String>,
    /// Write every record to this partition instead of choosing by key.
    #[arg(long)]
    partition: Option<i32>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// Batch compression: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// How long a batch may wait for more records, ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Largest batch, bytes.
    #[arg(long, default_value_t = 64 << 10)]
    batch_size: usize,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    match s {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(format!("--acks must be 0, 1 or all, not {s:?}")),
    }
}

/// Runs `quiver produce`.
pub fn run(args: ProduceArgs) -> Result<(), CliError> {
    let config = args.connect.client_config()?;
    block_on(async move {
        let producer_config = ProducerConfig {
            acks: args.acks,
            compression: args.compression,
            linger: Duration::from_millis(args.linger_ms),
            batch_size: args.batch_size,
            ..ProducerConfig::default()
        };
        // Fail fast on a topic that does not exist (the producer itself would wait up to its
        // `max_block` for the topic to appear, as Kafka's does).
        let admin = Admin::connect(config.clone())
            .await
            .map_err(client_error("connecting"))?;
        let topic = admin
            .describe_topic(&args.topic)
            .await
            .map_err(client_error(format!("topic {}", args.topic)))?;
        if let Some(p) = args.partition {
            if p < 0 || p as usize >= topic.partitions.len() {
                return Err(CliError::BadInput(format!(
                    "topic {} has partitions 0..{}, not {p}",
                    args.topic,
                    topic.partitions.len()
                )));
            }
        }
        let producer = Producer::connect(config, producer_config)
            .await
            .map_err(client_error("connecting"))?;
        let started = Instant::now();
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut pending = VecDeque::new();
        let (mut sent, mut acked, mut failed) = (0u64, 0u64, 0u64);
        let note = |result: Result<(), String>, acked: &mut u64, failed: &mut u64| match result {
            Ok(()) => *acked += 1,
            Err(e) => {
                if *failed < ERRORS_PRINTED_MAX as u64 {
                    eprintln!("quiver: record not acknowledged: {e}");
                }
                *failed += 1;
            }
        };
        loop {
            let line = lines
                .next_line()
                .await
                .map_err(|e| CliError::io("reading stdin", e))?;
            let Some(line) = line else { break };
            let (key, value) = match &args.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(Bytes::copy_from_slice(k.as_bytes())), v.to_string()),
                    None => (None, line),
                },
                None => (None, line),
            };
            let record = ProducerRecord {
                topic: args.topic.clone(),
                partition: args.partition,
                key,
                value: Some(Bytes::from(value.into_bytes())),
                headers: Vec::new(),
                timestamp: None,
            };
            sent += 1;
            match producer.send(record).await {
                Ok(delivery) => pending.push_back(delivery),
                Err(e) => note(Err(e.to_string()), &mut acked, &mut failed),
            }
            while pending.len() >= PENDING_DELIVERIES_MAX {
                let delivery = pending.pop_front().expect("not empty");
                note(
                    delivery.await.map(|_| ()).map_err(|e| e.to_string()),
                    &mut acked,
                    &mut failed,
                );
            }
        }
        producer.flush().await.map_err(client_error("flushing"))?;
        for delivery in pending {
            note(
                delivery.await.map(|_| ()).map_err(|e| e.to_string()),
                &mut acked,
                &mut failed,
            );
        }
        producer.close().await.map_err(client_error("closing"))?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "quiver: produced {acked} of {sent} record(s) to {} in {secs:.2} s ({failed} failed)",
            args.topic
        );
        if failed > 0 || acked != sent {
            return Err(CliError::Client(format!(
                "{} record(s) were not acknowledged",
                sent - acked
            )));
        }
        Ok(())
    })
}
