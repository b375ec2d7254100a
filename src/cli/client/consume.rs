//! `quiver consume TOPIC`: record values on stdout, one per line.
//!
//! Reads every partition of the topic (or `--partition P`), starting at the end (only new
//! records) unless told `--from-beginning`, `--offset N` or `--from-timestamp MS`. Exits 0 after
//! `--max-messages N` records, or once no record arrived for `--idle-timeout-ms`; without either
//! it runs until interrupted. `--print-offset` prefixes `<partition>\t<offset>\t`, `--print-key`
//! prefixes `<key>\t` (empty for a null key). Values that are not UTF-8 are printed lossily.
//!
//! `--group G` consumes as a member of consumer group G instead: the coordinator assigns the
//! partitions (rebalancing as members come and go), reading starts at the group's committed
//! offsets, positions are committed every second and on every revocation, and on exit exactly
//! what was printed is committed before the consumer leaves the group.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use std::collections::{BTreeMap, BTreeSet};

use quiver_transport::client::{
    Admin, Client, ClientConfig, ClientError, Consumer, ConsumerConfig, ConsumerRecord,
    GroupConfig, GroupConsumer, OffsetReset, TopicPartition,
};

use super::{block_on, client_error, ConnectArgs};
use crate::cli::CliError;

/// How often `--group` commits what it printed.
const GROUP_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
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
    /// Consume as a member of this consumer group: the group's coordinator assigns the
    /// partitions, reading starts at the group's committed offsets (else at the end, or the
    /// beginning with --from-beginning), and what is printed is committed.
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp", "partition"])]
    group: Option<String>,
    /// Group session timeout, ms: how soon the group notices this consumer is gone.
    #[arg(long, requires = "group", default_value_t = 45_000)]
    session_timeout_ms: u64,
    /// Server-side assignor for the group: range, roundrobin or cooperative-sticky.
    /// [default: the broker's, cooperative-sticky]
    #[arg(long, requires = "group")]
    assignor: Option<String>,
}

/// Where records come from: assigned partitions, or a consumer group.
enum Source {
    Assigned(Consumer),
    Group(Box<GroupConsumer>),
}

impl Source {
    async fn poll(&mut self, wait: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        match self {
            Source::Assigned(c) => c.poll(wait).await,
            Source::Group(g) => g.poll(wait).await,
        }
    }
}

/// Runs `quiver consume --group`: commits what was printed and leaves the group at the end.
async fn group_source(
    args: &ConsumeArgs,
    config: ClientConfig,
    group: &str,
) -> Result<Source, CliError> {
    let client = Client::connect(config)
        .await
        .map_err(client_error("connecting"))?;
    let consumer_config = ConsumerConfig {
        auto_offset_reset: if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        ..ConsumerConfig::default()
    };
    let mut group_config = GroupConfig::new(group);
    group_config.session_timeout = Duration::from_millis(args.session_timeout_ms);
    group_config.assignor = args.assignor.clone();
    group_config.auto_commit_interval = GROUP_COMMIT_INTERVAL;
    let consumer = GroupConsumer::subscribe(
        client,
        consumer_config,
        group_config,
        vec![args.topic.clone()],
    )
    .await
    .map_err(client_error(format!("joining group {group}")))?;
    Ok(Source::Group(Box::new(consumer)))
}

/// Runs `quiver consume`.
pub fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let config = args.connect.client_config()?;
    block_on(async move {
        let mut source = match &args.group {
            Some(group) => group_source(&args, config, group).await?,
            None => Source::Assigned(assigned_consumer(&args, config).await?),
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut printed = 0u64;
        // With a group: the next offset after the last printed record, per partition.
        let mut printed_up_to: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut cut_short = false;
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
            let records = source.poll(wait).await.map_err(client_error("fetching"))?;
            if !records.is_empty() {
                last_record = Instant::now();
            }
            let count = records.len();
            for (i, record) in records.into_iter().enumerate() {
                if args.max_messages.is_some_and(|max| printed >= max) {
                    cut_short = i < count;
                    break;
                }
                out.write_all(&format_record(&args, &record))
                    .map_err(|e| CliError::io("writing stdout", e))?;
                printed_up_to.insert(
                    TopicPartition::new(record.topic.clone(), record.partition),
                    record.offset + 1,
                );
                printed += 1;
            }
            out.flush().map_err(|e| CliError::io("writing stdout", e))?;
        }
        if let Source::Group(mut group) = source {
            // Commit exactly what was printed, then leave so the partitions move at once.
            let owned: BTreeSet<TopicPartition> = group.assignment().into_iter().collect();
            printed_up_to.retain(|tp, _| owned.contains(tp));
            let done = if cut_short {
                match group.commit_offsets(&printed_up_to).await {
                    Ok(()) => (*group).leave().await,
                    Err(e) => Err(e),
                }
            } else {
                (*group).close().await
            };
            done.map_err(client_error("committing and leaving the group"))?;
        }
        eprintln!("quiver: consumed {printed} record(s) from {}", args.topic);
        Ok(())
    })
}

fn format_record(args: &ConsumeArgs, record: &ConsumerRecord) -> Vec<u8> {
    let mut line = Vec::new();
    if args.print_offset {
        line.extend_from_slice(format!("{}\t{}\t", record.partition, record.offset).as_bytes());
    }
    if args.print_key {
        if let Some(key) = &record.key {
            line.extend_from_slice(&String::from_utf8_lossy(key).into_owned().into_bytes());
        }
        line.push(b'\t');
    }
    if let Some(value) = &record.value {
        line.extend_from_slice(&String::from_utf8_lossy(value).into_owned().into_bytes());
    }
    line.push(b'\n');
    line
}

/// A consumer of the topic's partitions (or `--partition`), positioned per the flags.
async fn assigned_consumer(args: &ConsumeArgs, config: ClientConfig) -> Result<Consumer, CliError> {
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
    Ok(consumer)
}
