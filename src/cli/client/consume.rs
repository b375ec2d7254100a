//! `quiver consume TOPIC`: record values on stdout, one per line.
//!
//! Reads every partition of the topic (or `--partition P`), starting at the end (only new
//! records) unless told `--from-beginning`, `--offset N` or `--from-timestamp MS`. Exits 0 after
//! `--max-messages N` records, or once no record arrived for `--idle-timeout-ms`; without either
//! it runs until interrupted. `--print-offset` prefixes `<partition>\t<offset>\t`, `--print-key`
//! prefixes `<key>\t` (empty for a null key). Values that are not UTF-8 are printed lossily.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use quiver_transport::client::{Admin, Consumer, ConsumerConfig, TopicPartition};

use super::{block_on, client_error, ConnectArgs};
use crate::cli::CliError;

/// Longest a single poll waits, so the idle timeout is checked often enough.
const POLL_WAIT_MAX: Duration = Duration::from_millis(500);

/// `quiver consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to read.
    topic: String,
    /// Start at the beginning of each partition.
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    from_beginning: bool,
    /// Start at this offset (in each partition read).
    #[arg(long, conflicts_with = "from_timestamp")]
    offset: Option<i64>,
    /// Start at the first record with a timestamp at or after this time (ms since the epoch).
    #[arg(long)]
    from_timestamp: Option<i64>,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Stop after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop when no record arrived for this long, ms.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Print each record's key before its value.
    #[arg(long)]
    print_key: bool,
    /// Print each record's partition and offset before it.
    #[arg(long)]
    print_offset: bool,
}

/// Runs `quiver consume`.
pub fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let config = args.connect.client_config()?;
    block_on(async move {
        let admin = Admin::connect(config.clone())
            .await
            .map_err(client_error("connecting"))?;
        let partitions: Vec<i32> = match args.partition {
            Some(p) => vec![p],
            None => {
                let topic = admin
                    .describe_topic(&args.topic)
                    .await
                    .map_err(client_error(format!("describing topic {}", args.topic)))?;
                topic.partitions.iter().map(|p| p.partition).collect()
            }
        };
        let mut consumer = Consumer::connect(config, ConsumerConfig::default())
            .await
            .map_err(client_error("connecting"))?;
        let assignment: Vec<TopicPartition> = partitions
            .iter()
            .map(|&p| TopicPartition::new(args.topic.clone(), p))
            .collect();
        consumer.assign(assignment.clone());
        for tp in &assignment {
            let what = format!("positioning {}/{}", tp.topic, tp.partition);
            if args.from_beginning {
                consumer
                    .seek_to_beginning(std::slice::from_ref(tp))
                    .await
                    .map_err(client_error(what))?;
            } else if let Some(offset) = args.offset {
                consumer.seek(tp, offset).map_err(client_error(what))?;
            } else if let Some(ts) = args.from_timestamp {
                consumer
                    .seek_to_timestamp(tp, ts)
                    .await
                    .map_err(client_error(what))?;
            } else {
                consumer
                    .seek_to_end(std::slice::from_ref(tp))
                    .await
                    .map_err(client_error(what))?;
            }
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut printed = 0u64;
        let mut last_record = Instant::now();
        let idle = args.idle_timeout_ms.map(Duration::from_millis);
        loop {
            if args.max_messages.is_some_and(|max| printed >= max) {
                break;
            }
            if let Some(idle) = idle {
                if last_record.elapsed() >= idle {
                    break;
                }
            }
            let wait = idle.map_or(POLL_WAIT_MAX, |idle| {
                idle.saturating_sub(last_record.elapsed())
                    .min(POLL_WAIT_MAX)
            });
            let records = consumer
                .poll(wait)
                .await
                .map_err(client_error("fetching"))?;
            if !records.is_empty() {
                last_record = Instant::now();
            }
            for record in records {
                if args.max_messages.is_some_and(|max| printed >= max) {
                    break;
                }
                let mut line = Vec::new();
                if args.print_offset {
                    line.extend_from_slice(
                        format!("{}\t{}\t", record.partition, record.offset).as_bytes(),
                    );
                }
                if args.print_key {
                    if let Some(key) = &record.key {
                        line.extend_from_slice(
                            &String::from_utf8_lossy(key).into_owned().into_bytes(),
                        );
                    }
                    line.push(b'\t');
                }
                if let Some(value) = &record.value {
                    line.extend_from_slice(
                        &String::from_utf8_lossy(value).into_owned().into_bytes(),
                    );
                }
                line.push(b'\n');
                out.write_all(&line)
                    .map_err(|e| CliError::io("writing stdout", e))?;
                printed += 1;
            }
            out.flush().map_err(|e| CliError::io("writing stdout", e))?;
        }
        eprintln!("quiver: consumed {printed} record(s) from {}", args.topic);
        Ok(())
    })
}
