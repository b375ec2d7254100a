//! What a run does: the workload and its parameters (the JSON report's `params`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The workloads, named like other streaming-broker benchmarks' so results line up.
///
/// *Pinned*: one topic per actor (`--partitions` each, default 1). *Balanced*: one topic with
/// `--partitions` partitions that every producer writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Producers, each writing its own topic.
    PinnedProducer,
    /// Consumers, each reading its own topic, filled before the measurement (and, with
    /// `--embedded`, read after a broker restart: from disk, not from the batch cache).
    PinnedConsumer,
    /// Producer/consumer pairs, one topic per pair, consumers tailing the producers.
    PinnedProducerAndConsumer,
    /// Producers sharing one topic of many partitions.
    BalancedProducer,
    /// Consumers of one group sharing a topic of many partitions, filled before.
    BalancedConsumerGroup,
    /// Producers and a consumer group sharing a topic of many partitions.
    BalancedProducerAndConsumerGroup,
    /// Each record's produce-to-consume latency: producer/consumer pairs as
    /// `pinned-producer-and-consumer`, reporting end-to-end latency first.
    EndToEnd,
}

impl Workload {
    /// Every workload, in documentation order.
    pub const ALL: [Workload; 7] = [
        Workload::PinnedProducer,
        Workload::PinnedConsumer,
        Workload::PinnedProducerAndConsumer,
        Workload::BalancedProducer,
        Workload::BalancedConsumerGroup,
        Workload::BalancedProducerAndConsumerGroup,
        Workload::EndToEnd,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::PinnedProducer => "pinned-producer",
            Workload::PinnedConsumer => "pinned-consumer",
            Workload::PinnedProducerAndConsumer => "pinned-producer-and-consumer",
            Workload::BalancedProducer => "balanced-producer",
            Workload::BalancedConsumerGroup => "balanced-consumer-group",
            Workload::BalancedProducerAndConsumerGroup => "balanced-producer-and-consumer-group",
            Workload::EndToEnd => "end-to-end",
        }
    }

    /// Whether its consumers are members of one consumer group.
    pub fn uses_group(self) -> bool {
        matches!(
            self,
            Workload::BalancedConsumerGroup | Workload::BalancedProducerAndConsumerGroup
        )
    }

    /// Whether producers run during the measurement.
    pub fn produces(self) -> bool {
        !matches!(
            self,
            Workload::PinnedConsumer | Workload::BalancedConsumerGroup
        )
    }

    /// Whether consumers run during the measurement.
    pub fn consumes(self) -> bool {
        !matches!(self, Workload::PinnedProducer | Workload::BalancedProducer)
    }

    /// Whether consumers tail live producers (so each record's end-to-end latency is known).
    pub fn end_to_end(self) -> bool {
        self.produces() && self.consumes()
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown workload {s:?}"))
    }
}

/// Bytes of each record's value: fixed, or uniform in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSize {
    /// Smallest value, bytes.
    pub min: usize,
    /// Largest value, bytes.
    pub max: usize,
}

impl MessageSize {
    /// Mean value size, bytes.
    pub fn mean(&self) -> f64 {
        (self.min + self.max) as f64 / 2.0
    }
}

impl fmt::Display for MessageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

impl FromStr for MessageSize {
    type Err = String;

    /// `1024` or `512..2048` (inclusive range).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("not a byte count: {t:?} (expected N or MIN..MAX)"))
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b.trim_start_matches('='))?),
            None => {
                let n = parse(s)?;
                (n, n)
            }
        };
        if min == 0 || min > max {
            return Err(format!("message size {s:?}: need 1 <= MIN <= MAX"));
        }
        Ok(MessageSize { min, max })
    }
}

/// Parameters of one run (the JSON report's `params`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// The workload.
    pub workload: Workload,
    /// Producer actors (each its own SDK producer and connections).
    pub producers: usize,
    /// Consumer actors (each its own SDK consumer).
    pub consumers: usize,
    /// Partitions per topic (pinned: of each actor's topic; balanced: of the one topic).
    pub partitions: i32,
    /// Bytes of each record's value.
    pub message_size: MessageSize,
    /// Records per batch: a producer's `batch_size` holds this many, and unkeyed records move
    /// to the next partition after this many.
    pub messages_per_batch: usize,
    /// Producer `linger`, ms.
    pub linger_ms: u64,
    /// Batch compression: none, gzip, snappy, lz4, zstd.
    pub compression: String,
    /// Producer acks: 0, 1 or all.
    pub acks: String,
    /// Topic flush policy: always, interval or never.
    pub flush: String,
    /// Replicas per partition of the bench topics (a cluster); -1 for the broker default.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i16,
    /// Records carry a random key (partitioned by murmur2) instead of none.
    pub keyed: bool,
    /// Records to produce (or, for consumer-only workloads, to fill and read), over all
    /// actors; `None` runs for `duration_secs`.
    pub messages: Option<u64>,
    /// Measured seconds (after warm-up) when `messages` is not set.
    pub duration_secs: Option<f64>,
    /// Seconds run before measuring; what happens during them is not counted.
    pub warmup_secs: f64,
    /// Open-loop target rate, records per second over all producers; `None` is closed loop
    /// (as fast as the producers' buffer memory lets them send).
    pub rate: Option<f64>,
    /// `embedded` or the bootstrap address.
    pub target: String,
}

impl Params {
    /// Checks the parameters fit together.
    pub fn validate(&self) -> Result<(), String> {
        if self.workload.produces() && self.producers == 0 {
            return Err(format!("{} needs --producers >= 1", self.workload));
        }
        if self.workload.consumes() && self.consumers == 0 {
            return Err(format!("{} needs --consumers >= 1", self.workload));
        }
        if self.partitions < 1 {
            return Err("--partitions must be >= 1".into());
        }
        if self.messages_per_batch == 0 {
            return Err("--messages-per-batch must be >= 1".into());
        }
        if self.workload.end_to_end() && self.message_size.min < crate::run::STAMP_BYTES {
            return Err(format!(
                "{} stamps each value with its send time: --message-size must be >= {}",
                self.workload,
                crate::run::STAMP_BYTES
            ));
        }
        if matches!(
            self.workload,
            Workload::PinnedProducerAndConsumer | Workload::EndToEnd
        ) && self.producers != self.consumers
        {
            return Err(format!(
                "{} runs producer/consumer pairs: --producers and --consumers must be equal",
                self.workload
            ));
        }
        match (self.messages, self.duration_secs) {
            (Some(0), _) => return Err("--messages must be >= 1".into()),
            (_, Some(d)) if !(d.is_finite() && d > 0.0) => {
                return Err("--duration must be > 0".into())
            }
            _ => {}
        }
        if !(self.warmup_secs.is_finite() && self.warmup_secs >= 0.0) {
            return Err("--warmup must be >= 0".into());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err("--rate must be > 0 records/s".into());
            }
        }
        if !matches!(self.acks.as_str(), "0" | "1" | "all") {
            return Err(format!("--acks must be 0, 1 or all, not {:?}", self.acks));
        }
        if !matches!(self.flush.as_str(), "always" | "interval" | "never") {
            return Err(format!(
                "--flush must be always, interval or never, not {:?}",
                self.flush
            ));
        }
        Ok(())
    }

    /// How latency is measured, as the report states it.
    pub fn loop_mode(&self) -> &'static str {
        match self.rate {
            Some(_) => "open-loop (latency from each record's intended send time: corrected for coordinated omission)",
            None => "closed-loop (as fast as possible; latency from the actual send: not corrected for coordinated omission)",
        }
    }
}

fn default_replication_factor() -> i16 {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>(), Ok(w));
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(json, format!("\"{}\"", w.name()));
        }
        assert!("pinned".parse::<Workload>().is_err());
    }

    #[test]
    fn message_sizes_parse() {
        assert_eq!(
            "1024".parse::<MessageSize>(),
            Ok(MessageSize {
                min: 1024,
                max: 1024
            })
        );
        assert_eq!(
            "100..200".parse::<MessageSize>(),
            Ok(MessageSize { min: 100, max: 200 })
        );
        assert!("200..100".parse::<MessageSize>().is_err());
        assert!("0".parse::<MessageSize>().is_err());
        assert!("x".parse::<MessageSize>().is_err());
    }
}
