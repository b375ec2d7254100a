//! `quiver dlq inspect|replay TOPIC`: dead-letter topics written by the SDK's
//! `DeadLetterQueue` (`<topic>.dlq`, records with `dlq.*` headers).
//!
//! TOPIC names the source topic or its dead-letter topic: a name not ending in `.dlq` means
//! `<TOPIC>.dlq`. Both commands read the dead-letter topic from a start offset up to its end as
//! of invocation, then stop.
//!
//! - `inspect [--limit N]` reads from the beginning and prints one tab-separated line per dead
//!   letter: `letter\t<dlq partition>/<dlq offset>\tsource\t<topic>/<partition>/<offset>\t
//!   attempts\t<n>\tfailed_at\t<RFC 3339>\terror\t<text>\tkey\t<key>\tvalue\t<value>`, then
//!   `<n> dead letter(s) in <dlq topic>`. Keys and values print as text with `\t`, `\n`, `\\`
//!   and other control characters escaped, `0x<hex>` when not UTF-8, `(null)` when absent; a
//!   record without the `dlq.source.*` headers prints `-` for what it lacks.
//! - `replay [--to TOPIC] [--from-beginning]` re-produces each dead letter to its source topic
//!   (`dlq.source.topic`) or to `--to`: original key, value and headers without the `dlq.*`
//!   ones, plus `dlq.replayed.from = <dlq topic>/<partition>/<offset>`, partitioned by key.
//!   Progress is committed as consumer group `quiver-dlq-replay-<dlq topic>` once each batch is
//!   acknowledged, and a replay starts at that group's committed offsets (at-least-once: a
//!   replay cut short may re-send its last batch), so running it twice replays nothing the
//!   second time; `--from-beginning` ignores the committed offsets. A record without
//!   `dlq.source.topic` is skipped (with a warning) unless `--to` is given. Prints `replayed
//!   <n> dead letter(s) from <dlq topic>`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use quiver_transport::client::{
    dlq_topic_for, replay_record_to, Admin, Client, ClientError, Consumer, ConsumerConfig,
    ConsumerRecord, DeadLetter, DeliveryFuture, Producer, ProducerConfig, TopicPartition,
    DLQ_TOPIC_SUFFIX,
};
use quiver_transport::protocol::{ErrorCode, OffsetSpec};

use super::{block_on, client_error, ConnectArgs};
use crate::cli::CliError;

/// Longest a read waits without any record arriving before it gives up.
const READ_IDLE_MAX: Duration = Duration::from_secs(30);
/// Longest a single poll waits.
const POLL_WAIT: Duration = Duration::from_millis(500);

/// `quiver dlq <command>`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Print the dead letters of TOPIC (or of TOPIC.dlq) with where and why they failed.
    Inspect {
        /// Source topic, or its dead-letter topic (`<topic>.dlq`).
        topic: String,
        /// Print at most this many dead letters.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Re-produce the dead letters of TOPIC (or of TOPIC.dlq) to their source topic or --to,
    /// after a fix. Resumes where the previous replay stopped.
    Replay {
        /// Source topic, or its dead-letter topic (`<topic>.dlq`).
        topic: String,
        /// Send every dead letter here instead of to its source topic.
        #[arg(long)]
        to: Option<String>,
        /// Replay from the start of the dead-letter topic, ignoring earlier replays' progress.
        #[arg(long)]
        from_beginning: bool,
    },
}

/// The dead-letter topic TOPIC names.
fn dlq_topic(topic: &str) -> String {
    if topic.ends_with(DLQ_TOPIC_SUFFIX) {
        topic.to_string()
    } else {
        dlq_topic_for(topic)
    }
}

/// The consumer group holding `quiver dlq replay`'s progress on `dlq`.
pub fn replay_group(dlq: &str) -> String {
    format!("quiver-dlq-replay-{dlq}")
}

/// Runs `quiver dlq`.
pub fn run(args: DlqArgs) -> Result<(), CliError> {
    let config = args.connect.client_config()?;
    block_on(async move {
        let client = Client::connect(config)
            .await
            .map_err(client_error("connecting"))?;
        match args.command {
            DlqCommand::Inspect { topic, limit } => inspect(client, &topic, limit).await,
            DlqCommand::Replay {
                topic,
                to,
                from_beginning,
            } => replay(client, &topic, to.as_deref(), from_beginning).await,
        }
    })
}

/// A clear error for a topic that does not exist, else the SDK's error with context.
fn topic_error(topic: &str, what: &str, hint: &str) -> impl FnOnce(ClientError) -> CliError {
    let (topic, what, hint) = (topic.to_string(), what.to_string(), hint.to_string());
    move |e| {
        if e.error_code() == Some(ErrorCode::UnknownTopicOrPartition) {
            CliError::BadInput(format!("{what} '{topic}' does not exist{hint}"))
        } else {
            CliError::Client(format!("describing {what} '{topic}': {e}"))
        }
    }
}

/// Each partition of `dlq` with its log start and its end now.
async fn partition_bounds(
    admin: &Admin,
    dlq: &str,
) -> Result<BTreeMap<TopicPartition, (i64, i64)>, CliError> {
    let hint = format!(
        " (nothing of '{}' was dead-lettered yet, or the name is wrong)",
        dlq.strip_suffix(DLQ_TOPIC_SUFFIX).unwrap_or(dlq)
    );
    let described =
        admin
            .describe_topic(dlq)
            .await
            .map_err(topic_error(dlq, "dead-letter topic", &hint))?;
    let partitions: Vec<TopicPartition> = described
        .partitions
        .iter()
        .map(|p| TopicPartition::new(dlq, p.partition))
        .collect();
    let specs: Vec<_> = partitions
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Earliest))
        .collect();
    let starts = admin
        .list_offsets(&specs)
        .await
        .map_err(client_error(format!("reading the offsets of {dlq}")))?;
    let specs: Vec<_> = partitions
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let ends = admin
        .list_offsets(&specs)
        .await
        .map_err(client_error(format!("reading the offsets of {dlq}")))?;
    Ok(partitions
        .into_iter()
        .map(|tp| {
            let start = starts.get(&tp).map_or(0, |o| o.offset);
            let end = ends.get(&tp).map_or(start, |o| o.offset);
            (tp, (start, end))
        })
        .collect())
}

/// Reads given partitions from a start offset up to (not including) an end offset each.
struct RangeReader {
    consumer: Consumer,
    ends: BTreeMap<TopicPartition, i64>,
    pending: BTreeSet<TopicPartition>,
}

impl RangeReader {
    async fn new(
        client: Client,
        ranges: BTreeMap<TopicPartition, (i64, i64)>,
    ) -> Result<RangeReader, CliError> {
        let ranges: BTreeMap<_, _> = ranges.into_iter().filter(|(_, (s, e))| s < e).collect();
        let mut consumer = Consumer::with_client(client, ConsumerConfig::default())
            .await
            .map_err(client_error("starting a consumer"))?;
        consumer.assign(ranges.keys().cloned().collect());
        for (tp, (start, _)) in &ranges {
            consumer
                .seek(tp, *start)
                .map_err(client_error(format!("positioning {tp}")))?;
        }
        Ok(RangeReader {
            consumer,
            ends: ranges.iter().map(|(tp, (_, e))| (tp.clone(), *e)).collect(),
            pending: ranges.into_keys().collect(),
        })
    }

    /// The next records below the ends, in offset order per partition; `None` once every
    /// partition reached its end.
    async fn next_batch(&mut self) -> Result<Option<Vec<ConsumerRecord>>, CliError> {
        let since = Instant::now();
        loop {
            if self.pending.is_empty() {
                return Ok(None);
            }
            let records = self
                .consumer
                .poll(POLL_WAIT)
                .await
                .map_err(client_error("fetching"))?;
            let mut out = Vec::with_capacity(records.len());
            for record in records {
                let tp = TopicPartition::new(record.topic.clone(), record.partition);
                if record.offset < self.ends.get(&tp).copied().unwrap_or(0) {
                    out.push(record);
                }
            }
            let done: Vec<TopicPartition> = self
                .pending
                .iter()
                .filter(|tp| {
                    self.consumer
                        .known_position(tp)
                        .is_some_and(|p| p >= self.ends[*tp])
                })
                .cloned()
                .collect();
            for tp in done {
                self.pending.remove(&tp);
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
            if since.elapsed() > READ_IDLE_MAX {
                let missing: Vec<String> = self
                    .pending
                    .iter()
                    .map(|tp| {
                        format!(
                            "{tp} at {} of {}",
                            self.consumer
                                .known_position(tp)
                                .map_or("?".into(), |p| p.to_string()),
                            self.ends[tp]
                        )
                    })
                    .collect();
                return Err(CliError::Client(format!(
                    "no records arrived for {READ_IDLE_MAX:?} before the end of {}",
                    missing.join(", ")
                )));
            }
        }
    }
}

async fn inspect(client: Client, topic: &str, limit: Option<u64>) -> Result<(), CliError> {
    let dlq = dlq_topic(topic);
    let admin = Admin::new(client.clone());
    let bounds = partition_bounds(&admin, &dlq).await?;
    let mut reader = RangeReader::new(client, bounds).await?;
    let mut printed = 0u64;
    'read: while let Some(records) = reader.next_batch().await? {
        for record in records {
            if limit.is_some_and(|l| printed >= l) {
                break 'read;
            }
            println!("{}", letter_line(&record));
            printed += 1;
        }
    }
    println!("{printed} dead letter(s) in {dlq}");
    Ok(())
}

/// One `inspect` line.
fn letter_line(record: &ConsumerRecord) -> String {
    let letter = DeadLetter::from_record(record);
    let (source, attempts, failed_at, error) = match &letter {
        Some(l) => (
            format!(
                "{}/{}/{}",
                l.source_topic, l.source_partition, l.source_offset
            ),
            l.attempts.to_string(),
            l.failed_at_ms.map_or("-".into(), rfc3339),
            escape(l.error.as_bytes()),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    format!(
        "letter\t{}/{}\tsource\t{source}\tattempts\t{attempts}\tfailed_at\t{failed_at}\terror\t{error}\tkey\t{}\tvalue\t{}",
        record.partition,
        record.offset,
        printable(record.key.as_deref()),
        printable(record.value.as_deref()),
    )
}

/// A key or value for a one-line display.
fn printable(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "(null)".into(),
        Some(b) if std::str::from_utf8(b).is_ok() => escape(b),
        Some(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

/// UTF-8 text with tabs, newlines, backslashes and other control characters escaped.
fn escape(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

async fn replay(
    client: Client,
    topic: &str,
    to: Option<&str>,
    from_beginning: bool,
) -> Result<(), CliError> {
    let dlq = dlq_topic(topic);
    let group = replay_group(&dlq);
    let admin = Admin::new(client.clone());
    let mut bounds = partition_bounds(&admin, &dlq).await?;
    let mut known_targets: BTreeSet<String> = BTreeSet::new();
    if let Some(to) = to {
        check_target(&admin, to, &mut known_targets).await?;
    }
    if !from_beginning {
        let committed = match admin.list_group_offsets(&group).await {
            Ok(c) => c,
            Err(e) if e.error_code() == Some(ErrorCode::GroupIdNotFound) => Vec::new(),
            Err(e) => {
                return Err(CliError::Client(format!(
                    "reading the progress of earlier replays (group {group}): {e}"
                )))
            }
        };
        for c in committed {
            if let Some((start, end)) = bounds.get_mut(&c.partition) {
                *start = c.offset.clamp(*start, *end);
            }
        }
    }
    let producer = Producer::with_client(client.clone(), ProducerConfig::default())
        .await
        .map_err(client_error("starting a producer"))?;
    let mut reader = RangeReader::new(client, bounds).await?;
    let (mut replayed, mut skipped) = (0u64, 0u64);
    while let Some(records) = reader.next_batch().await? {
        let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
        let mut progress: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for record in &records {
            progress.insert(
                TopicPartition::new(record.topic.clone(), record.partition),
                record.offset + 1,
            );
            let out = match (DeadLetter::from_record(record), to) {
                (Some(letter), to) => letter.replay_record(to),
                (None, Some(to)) => replay_record_to(record, to),
                (None, None) => {
                    eprintln!(
                        "quiver: warning: {dlq}/{}/{} has no dlq.source.topic header; skipped \
                         (use --to TOPIC to replay it)",
                        record.partition, record.offset
                    );
                    skipped += 1;
                    continue;
                }
            };
            check_target(&admin, &out.topic, &mut known_targets).await?;
            let delivery = producer
                .send(out)
                .await
                .map_err(client_error("replaying"))?;
            pending.push(delivery);
        }
        for delivery in pending {
            delivery.await.map_err(client_error("replaying"))?;
            replayed += 1;
        }
        let progress: Vec<(TopicPartition, i64)> = progress.into_iter().collect();
        admin
            .alter_group_offsets(&group, &progress)
            .await
            .map_err(client_error(format!(
                "saving the replay's progress (group {group})"
            )))?;
    }
    producer
        .close()
        .await
        .map_err(client_error("closing the producer"))?;
    if skipped > 0 {
        eprintln!("quiver: skipped {skipped} record(s) without a source topic");
    }
    let target = to.map_or("their source topics".to_string(), str::to_string);
    println!("replayed {replayed} dead letter(s) from {dlq} to {target}");
    Ok(())
}

/// Fails clearly if `topic` does not exist (checked once per topic).
async fn check_target(
    admin: &Admin,
    topic: &str,
    known: &mut BTreeSet<String>,
) -> Result<(), CliError> {
    if known.contains(topic) {
        return Ok(());
    }
    admin.describe_topic(topic).await.map_err(topic_error(
        topic,
        "target topic",
        " (create it first)",
    ))?;
    known.insert(topic.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_times_and_values_format() {
        assert_eq!(dlq_topic("orders"), "orders.dlq");
        assert_eq!(dlq_topic("orders.dlq"), "orders.dlq");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_341_600_250), "2026-11-22T10:00:00.250Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(printable(None), "(null)");
        assert_eq!(printable(Some(b"a\tb\nc\\")), "a\\tb\\nc\\\\");
        assert_eq!(printable(Some(&[0xff, 0x00])), "0xff00");
        assert_eq!(printable(Some(b"\x01")), "\\u{1}");
    }
}
