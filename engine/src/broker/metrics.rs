//! Shard metrics: what a shard counts on its own thread ([`ShardStats`]), the `Send` snapshot it
//! hands out ([`ShardMetrics`]), and the Prometheus text rendering over all shards
//! ([`render_prometheus`]).
//!
//! Per partition, `records_in`/`bytes_in` and the offsets come from the owning shard;
//! `records_out`/`bytes_out` are counted by whichever shard answered the fetch (after the
//! response was trimmed to its limits, so long-poll re-reads are not double counted), and the
//! rendering sums them over shards. Records are counted from batch headers (`recordsCount`),
//! never by decoding.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use quiver_transport::protocol::ApiKey;

/// Largest latency the histograms record exactly (larger values are clamped): 60 s.
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant figures of the latency histograms.
const LATENCY_SIGFIGS: u8 = 2;
/// Quantiles rendered for each api.
const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// One partition's counters and offsets as seen by one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// Topic.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Whether this shard owns the partition (offsets and size are valid only then).
    pub owned: bool,
    /// Records appended (owner only).
    pub records_in: u64,
    /// Bytes appended (owner only).
    pub bytes_in: u64,
    /// Records returned by fetches this shard answered.
    pub records_out: u64,
    /// Bytes returned by fetches this shard answered.
    pub bytes_out: u64,
    /// First offset kept (-1 unless owned).
    pub log_start_offset: i64,
    /// Log end offset (-1 unless owned).
    pub log_end_offset: i64,
    /// Bytes on disk (0 unless owned).
    pub size_bytes: u64,
    /// What consumers may read up to (-1 unless owned).
    pub high_watermark: i64,
    /// In a cluster, on the partition's leader: the ISR's size; -1 otherwise.
    pub isr_size: i64,
    /// In a cluster, on the partition's leader: the replica count; -1 otherwise.
    pub replicas: i64,
}

/// Request counters of one api on one shard.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// Api name (`Produce`, ...; `Unknown` for undecodable requests).
    pub api: &'static str,
    /// Requests handled.
    pub requests: u64,
    /// Requests answered with an error (request-level, or any partition-level error).
    pub errors: u64,
    /// Sum of latencies, microseconds.
    pub latency_us_sum: u64,
    /// Latency distribution, microseconds.
    pub latency_us: Histogram<u64>,
}

/// A snapshot of one shard's metrics. Plain data, `Send`.
#[derive(Debug, Clone)]
pub struct ShardMetrics {
    /// Shard index.
    pub shard: usize,
    /// Partitions open on this shard.
    pub open_partitions: usize,
    /// Per partition: owned ones, plus those this shard served fetches for.
    pub partitions: Vec<PartitionMetrics>,
    /// Per api (only apis that saw requests).
    pub apis: Vec<ApiMetrics>,
    /// Fraction of wall time the executor ran tasks since the previous snapshot.
    pub busy_ratio: f64,
    /// Seconds the executor ran tasks since start.
    pub busy_seconds_total: f64,
    /// Seconds since the shard started.
    pub uptime_seconds: f64,
    /// Calls sent to other shards.
    pub cross_shard_calls_total: u64,
    /// Client connections open now (filled in by the network shell, which owns them).
    pub connections_open: u64,
    /// Client connections accepted since start (filled in by the network shell).
    pub connections_total: u64,
    /// Consumer groups this shard coordinates.
    pub groups: Vec<GroupMetrics>,
}

/// One consumer group, as its coordinating shard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetrics {
    /// The group id.
    pub group: String,
    /// `Empty`, `Reconciling` or `Stable`.
    pub state: String,
    /// Live members.
    pub members: usize,
    /// Committed offsets: (topic, partition, offset).
    pub offsets: Vec<(String, i32, i64)>,
}

/// Api slots: every implemented api, then one for requests whose api is unknown.
const API_SLOTS: usize = ApiKey::ALL.len() + 1;

fn api_slot(api: Option<ApiKey>) -> usize {
    api.and_then(|a| ApiKey::ALL.iter().position(|k| *k == a))
        .unwrap_or(ApiKey::ALL.len())
}

fn api_name(slot: usize) -> &'static str {
    ApiKey::ALL.get(slot).map_or("Unknown", |a| a.name())
}

struct ApiStat {
    requests: u64,
    errors: u64,
    latency_us_sum: u64,
    latency_us: Histogram<u64>,
}

/// The shard-local counters behind [`ShardMetrics`].
pub struct ShardStats {
    started: Instant,
    last_sample: Instant,
    busy_total: Duration,
    apis: Vec<ApiStat>,
    served: HashMap<(String, i32), (u64, u64)>,
    /// Calls sent to other shards.
    pub cross_shard_calls: u64,
}

impl Default for ShardStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardStats {
    /// Zeroed counters.
    pub fn new() -> Self {
        let now = Instant::now();
        ShardStats {
            started: now,
            last_sample: now,
            busy_total: Duration::ZERO,
            apis: (0..API_SLOTS)
                .map(|_| ApiStat {
                    requests: 0,
                    errors: 0,
                    latency_us_sum: 0,
                    latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGFIGS)
                        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
                })
                .collect(),
            served: HashMap::new(),
            cross_shard_calls: 0,
        }
    }

    /// Counts one request of `api` (`None`: unknown or undecodable).
    pub fn record_request(&mut self, api: Option<ApiKey>, latency: Duration, error: bool) {
        let stat = &mut self.apis[api_slot(api)];
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        stat.requests += 1;
        stat.errors += u64::from(error);
        stat.latency_us_sum = stat.latency_us_sum.saturating_add(us);
        stat.latency_us
            .saturating_record(us.clamp(1, LATENCY_US_MAX));
    }

    /// Counts batches returned by a fetch this shard answered.
    pub fn record_served(&mut self, topic: &str, partition: i32, records: u64, bytes: u64) {
        if records == 0 && bytes == 0 {
            return;
        }
        let entry = self
            .served
            .entry((topic.to_string(), partition))
            .or_insert((0, 0));
        entry.0 += records;
        entry.1 += bytes;
    }

    /// Forgets the served counters of partitions that no longer exist.
    pub fn retain_served(&mut self, exists: impl Fn(&str, i32) -> bool) {
        self.served.retain(|(t, p), _| exists(t, *p));
    }

    /// Takes a snapshot; `owned` are the shard's open partitions.
    pub fn snapshot(
        &mut self,
        shard: usize,
        owned: Vec<PartitionMetrics>,
        busy_since_last: Duration,
    ) -> ShardMetrics {
        let now = Instant::now();
        let wall = now.duration_since(self.last_sample);
        self.last_sample = now;
        self.busy_total += busy_since_last;
        let busy_ratio = if wall.is_zero() {
            0.0
        } else {
            (busy_since_last.as_secs_f64() / wall.as_secs_f64()).min(1.0)
        };
        let open_partitions = owned.len();
        let mut partitions: BTreeMap<(String, i32), PartitionMetrics> = owned
            .into_iter()
            .map(|m| ((m.topic.clone(), m.partition), m))
            .collect();
        for ((topic, partition), (records, bytes)) in &self.served {
            let entry = partitions
                .entry((topic.clone(), *partition))
                .or_insert_with(|| PartitionMetrics {
                    topic: topic.clone(),
                    partition: *partition,
                    owned: false,
                    records_in: 0,
                    bytes_in: 0,
                    records_out: 0,
                    bytes_out: 0,
                    log_start_offset: -1,
                    log_end_offset: -1,
                    size_bytes: 0,
                    high_watermark: -1,
                    isr_size: -1,
                    replicas: -1,
                });
            entry.records_out = *records;
            entry.bytes_out = *bytes;
        }
        ShardMetrics {
            shard,
            open_partitions,
            partitions: partitions.into_values().collect(),
            apis: self
                .apis
                .iter()
                .enumerate()
                .filter(|(_, s)| s.requests > 0)
                .map(|(slot, s)| ApiMetrics {
                    api: api_name(slot),
                    requests: s.requests,
                    errors: s.errors,
                    latency_us_sum: s.latency_us_sum,
                    latency_us: s.latency_us.clone(),
                })
                .collect(),
            busy_ratio,
            busy_seconds_total: self.busy_total.as_secs_f64(),
            uptime_seconds: now.duration_since(self.started).as_secs_f64(),
            cross_shard_calls_total: self.cross_shard_calls,
            connections_open: 0,
            connections_total: 0,
            groups: Vec::new(),
        }
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the Prometheus text exposition format (version 0.0.4) for every shard's snapshot.
/// Partition series are merged over shards (inputs and offsets from the owner, outputs summed).
pub fn render_prometheus(shards: &[ShardMetrics]) -> String {
    let mut out = String::new();
    let mut merged: BTreeMap<(&str, i32), PartitionMetrics> = BTreeMap::new();
    for shard in shards {
        for p in &shard.partitions {
            let entry = merged
                .entry((p.topic.as_str(), p.partition))
                .or_insert_with(|| PartitionMetrics {
                    owned: false,
                    records_in: 0,
                    bytes_in: 0,
                    records_out: 0,
                    bytes_out: 0,
                    ..p.clone()
                });
            entry.records_in += p.records_in;
            entry.bytes_in += p.bytes_in;
            entry.records_out += p.records_out;
            entry.bytes_out += p.bytes_out;
            if p.owned {
                entry.owned = true;
                entry.log_start_offset = p.log_start_offset;
                entry.log_end_offset = p.log_end_offset;
                entry.size_bytes = p.size_bytes;
                entry.high_watermark = p.high_watermark;
                entry.isr_size = p.isr_size;
                entry.replicas = p.replicas;
            }
        }
    }
    type Field = fn(&PartitionMetrics) -> Option<String>;
    let partition_series: [(&str, &str, &str, Field); 11] = [
        (
            "quiver_partition_records_in_total",
            "counter",
            "Records appended to the partition.",
            |p| Some(p.records_in.to_string()),
        ),
        (
            "quiver_partition_bytes_in_total",
            "counter",
            "Bytes appended to the partition.",
            |p| Some(p.bytes_in.to_string()),
        ),
        (
            "quiver_partition_records_out_total",
            "counter",
            "Records returned by fetches.",
            |p| Some(p.records_out.to_string()),
        ),
        (
            "quiver_partition_bytes_out_total",
            "counter",
            "Bytes returned by fetches.",
            |p| Some(p.bytes_out.to_string()),
        ),
        (
            "quiver_partition_log_start_offset",
            "gauge",
            "First offset kept.",
            |p| p.owned.then(|| p.log_start_offset.to_string()),
        ),
        (
            "quiver_partition_log_end_offset",
            "gauge",
            "Offset the next record gets.",
            |p| p.owned.then(|| p.log_end_offset.to_string()),
        ),
        (
            "quiver_partition_size_bytes",
            "gauge",
            "Bytes stored over all segments.",
            |p| p.owned.then(|| p.size_bytes.to_string()),
        ),
        (
            "quiver_partition_high_watermark",
            "gauge",
            "Offset consumers may read up to (the log end on a single broker).",
            |p| p.owned.then(|| p.high_watermark.to_string()),
        ),
        (
            "quiver_partition_isr_size",
            "gauge",
            "In-sync replicas of a partition this broker leads.",
            |p| (p.owned && p.isr_size >= 0).then(|| p.isr_size.to_string()),
        ),
        (
            "quiver_partition_replicas",
            "gauge",
            "Replicas of a partition this broker leads.",
            |p| (p.owned && p.replicas >= 0).then(|| p.replicas.to_string()),
        ),
        (
            "quiver_partition_under_replicated",
            "gauge",
            "1 if a partition this broker leads has fewer in-sync replicas than replicas.",
            |p| (p.owned && p.isr_size >= 0).then(|| u8::from(p.isr_size < p.replicas).to_string()),
        ),
    ];
    for (name, kind, help, field) in partition_series {
        header(&mut out, name, kind, help);
        for ((topic, partition), p) in &merged {
            let Some(value) = field(p) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{partition}\"}} {value}",
                label(topic),
            );
        }
    }
    header(
        &mut out,
        "quiver_under_replicated_partitions",
        "gauge",
        "Partitions this broker leads with fewer in-sync replicas than replicas.",
    );
    let under = merged
        .values()
        .filter(|p| p.owned && p.isr_size >= 0 && p.isr_size < p.replicas)
        .count();
    let _ = writeln!(out, "quiver_under_replicated_partitions {under}");
    type ShardField = fn(&ShardMetrics) -> String;
    let shard_series: [(&str, &str, &str, ShardField); 7] = [
        (
            "quiver_shard_open_partitions",
            "gauge",
            "Partitions open on the shard.",
            |s| s.open_partitions.to_string(),
        ),
        (
            "quiver_shard_busy_ratio",
            "gauge",
            "Fraction of wall time the shard's executor ran tasks, since the previous sample.",
            |s| format!("{:.6}", s.busy_ratio),
        ),
        (
            "quiver_shard_busy_seconds_total",
            "counter",
            "Seconds the shard's executor ran tasks.",
            |s| format!("{:.6}", s.busy_seconds_total),
        ),
        (
            "quiver_shard_connections",
            "gauge",
            "Client connections open on the shard's endpoint.",
            |s| s.connections_open.to_string(),
        ),
        (
            "quiver_shard_connections_accepted_total",
            "counter",
            "Client connections the shard's endpoint accepted.",
            |s| s.connections_total.to_string(),
        ),
        (
            "quiver_shard_uptime_seconds",
            "gauge",
            "Seconds since the shard started.",
            |s| format!("{:.3}", s.uptime_seconds),
        ),
        (
            "quiver_shard_cross_shard_calls_total",
            "counter",
            "Calls forwarded to other shards.",
            |s| s.cross_shard_calls_total.to_string(),
        ),
    ];
    for (name, kind, help, field) in shard_series {
        header(&mut out, name, kind, help);
        for s in shards {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, field(s));
        }
    }
    render_groups(&mut out, shards, &merged);
    header(
        &mut out,
        "quiver_requests_total",
        "counter",
        "Requests handled, by api.",
    );
    for s in shards {
        for a in &s.apis {
            let _ = writeln!(
                out,
                "quiver_requests_total{{shard=\"{}\",api=\"{}\"}} {}",
                s.shard, a.api, a.requests
            );
        }
    }
    header(
        &mut out,
        "quiver_request_errors_total",
        "counter",
        "Requests answered with an error, by api.",
    );
    for s in shards {
        for a in &s.apis {
            let _ = writeln!(
                out,
                "quiver_request_errors_total{{shard=\"{}\",api=\"{}\"}} {}",
                s.shard, a.api, a.errors
            );
        }
    }
    header(
        &mut out,
        "quiver_request_latency_seconds",
        "summary",
        "Request latency inside the broker, by api.",
    );
    for s in shards {
        for a in &s.apis {
            for q in QUANTILES {
                let v = a.latency_us.value_at_quantile(q) as f64 / 1e6;
                let _ = writeln!(out, "quiver_request_latency_seconds{{shard=\"{}\",api=\"{}\",quantile=\"{q}\"}} {v:.6}", s.shard, a.api);
            }
            let _ = writeln!(
                out,
                "quiver_request_latency_seconds_sum{{shard=\"{}\",api=\"{}\"}} {:.6}",
                s.shard,
                a.api,
                a.latency_us_sum as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "quiver_request_latency_seconds_count{{shard=\"{}\",api=\"{}\"}} {}",
                s.shard, a.api, a.requests
            );
        }
    }
    out
}

/// Suffix of dead-letter topics.
pub const DLQ_TOPIC_SUFFIX: &str = ".dlq";

/// Group members, committed offsets and lag (log end − committed, from the partition's owner),
/// and the depth of dead-letter topics (records retained).
fn render_groups(
    out: &mut String,
    shards: &[ShardMetrics],
    partitions: &BTreeMap<(&str, i32), PartitionMetrics>,
) {
    let mut groups: Vec<&GroupMetrics> = shards.iter().flat_map(|s| &s.groups).collect();
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    header(
        out,
        "quiver_group_members",
        "gauge",
        "Live members of the consumer group.",
    );
    for g in &groups {
        let _ = writeln!(
            out,
            "quiver_group_members{{group=\"{}\",state=\"{}\"}} {}",
            label(&g.group),
            label(&g.state),
            g.members
        );
    }
    header(
        out,
        "quiver_group_committed_offset",
        "gauge",
        "The group's committed offset of the partition.",
    );
    for g in &groups {
        for (topic, partition, offset) in &g.offsets {
            let _ = writeln!(
                out,
                "quiver_group_committed_offset{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {offset}",
                label(&g.group),
                label(topic)
            );
        }
    }
    header(
        out,
        "quiver_group_lag",
        "gauge",
        "Records between the group's committed offset and the partition's log end.",
    );
    for g in &groups {
        for (topic, partition, offset) in &g.offsets {
            let Some(p) = partitions.get(&(topic.as_str(), *partition)) else {
                continue;
            };
            if !p.owned {
                continue;
            }
            let lag = (p.log_end_offset - offset).max(0);
            let _ = writeln!(
                out,
                "quiver_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {lag}",
                label(&g.group),
                label(topic)
            );
        }
    }
    header(
        out,
        "quiver_dlq_depth_records",
        "gauge",
        "Records retained in a dead-letter topic (`<topic>.dlq`).",
    );
    let mut depth: BTreeMap<&str, i64> = BTreeMap::new();
    for ((topic, _), p) in partitions {
        if p.owned && topic.ends_with(DLQ_TOPIC_SUFFIX) {
            *depth.entry(topic).or_default() += (p.log_end_offset - p.log_start_offset).max(0);
        }
    }
    for (topic, records) in depth {
        let _ = writeln!(
            out,
            "quiver_dlq_depth_records{{topic=\"{}\"}} {records}",
            label(topic)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_merges_partitions_over_shards() {
        let mut a = ShardStats::new();
        a.record_request(Some(ApiKey::Produce), Duration::from_micros(250), false);
        a.record_served("t", 0, 3, 300);
        let owned = vec![PartitionMetrics {
            topic: "t".into(),
            partition: 0,
            owned: true,
            records_in: 10,
            bytes_in: 1000,
            records_out: 0,
            bytes_out: 0,
            log_start_offset: 0,
            log_end_offset: 10,
            size_bytes: 1000,
            high_watermark: 8,
            isr_size: 2,
            replicas: 3,
        }];
        let s0 = a.snapshot(0, owned, Duration::from_millis(1));
        let mut b = ShardStats::new();
        b.record_served("t", 0, 2, 200);
        let s1 = b.snapshot(1, Vec::new(), Duration::ZERO);
        let text = render_prometheus(&[s0, s1]);
        assert!(
            text.contains("quiver_partition_records_out_total{topic=\"t\",partition=\"0\"} 5"),
            "{text}"
        );
        assert!(text.contains("quiver_partition_log_end_offset{topic=\"t\",partition=\"0\"} 10"));
        assert!(text.contains("quiver_partition_high_watermark{topic=\"t\",partition=\"0\"} 8"));
        assert!(text.contains("quiver_partition_isr_size{topic=\"t\",partition=\"0\"} 2"));
        assert!(text.contains("quiver_partition_under_replicated{topic=\"t\",partition=\"0\"} 1"));
        assert!(
            text.contains("quiver_under_replicated_partitions 1"),
            "{text}"
        );
        assert!(text.contains("quiver_requests_total{shard=\"0\",api=\"Produce\"} 1"));
        assert!(text.contains("quiver_shard_open_partitions{shard=\"1\"} 0"));
    }
}
