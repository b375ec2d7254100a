//! Topic configuration: the per-topic keys, their parsing and validation, their effective
//! values (broker defaults plus the topic's overrides), and the mapping to [`LogConfig`].
//!
//! | key | values | default | maps to |
//! |---|---|---|---|
//! | `retention.ms` | -1 (forever) or >= 0 | 604800000 (7 days) | `LogConfig::retention_ms` |
//! | `retention.bytes` | -1 (unlimited) or >= 0 | -1 | `retention_bytes` |
//! | `segment.bytes` | 4096..=4294967295 | 1073741824 | `segment_bytes` |
//! | `segment.ms` | >= 1 | 604800000 | `segment_ms` |
//! | `max.message.bytes` | 61..=limit (frame size less overhead) | 8388608 | `batch_bytes_max` |
//! | `cleanup.policy` | `delete`, `compact`, `compact,delete` | `delete` | `cleanup_policy` |
//! | `delete.retention.ms` | >= 0 | 86400000 | `delete_retention_ms` |
//! | `flush` | `always`, `interval`, `never` | `interval` | `flush` |
//! | `flush.ms` | 0..=86400000 | 10 | `FlushPolicy::Interval::ms` |
//! | `flush.bytes` | >= 1 | 4194304 | `FlushPolicy::Interval::bytes` |
//!
//! Overrides are stored in their canonical text (what Describe shows), so a value round-trips
//! through the registry unchanged.

use std::collections::BTreeMap;

use crate::batch::BATCH_HEADER_LEN;
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig, SEGMENT_BYTES_MAX};

/// Every topic config key, in the order Describe lists them.
pub const CONFIG_KEYS: [&str; 12] = [
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "cleanup.policy",
    "delete.retention.ms",
    "flush",
    "flush.ms",
    "flush.bytes",
    "min.insync.replicas",
    "unclean.leader.election.enable",
];

/// Smallest `segment.bytes`: one page.
pub const SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest `flush.ms`: one day. acks=all producers on an `interval` topic wait up to this long.
pub const FLUSH_MS_MAX: u64 = 86_400_000;

/// When a topic's appends are synced (`flush`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Sync before acknowledging acks=all (group commit of concurrent producers).
    Always,
    /// Sync every `flush.ms` or `flush.bytes`, whichever comes first.
    Interval,
    /// Only at segment roll and close.
    Never,
}

/// The effective value of every topic config key. Plain data (`Clone + Send`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// `retention.ms`; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 is unlimited.
    pub retention_bytes: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: u64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long compaction keeps tombstones.
    pub delete_retention_ms: i64,
    /// `flush`.
    pub flush: FlushMode,
    /// `flush.ms`.
    pub flush_ms: u64,
    /// `flush.bytes`.
    pub flush_bytes: u64,
    /// `min.insync.replicas`: the fewest in-sync replicas an `acks=all` write needs (cluster).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: elect a replica outside the ISR when no ISR member
    /// is live, losing committed records (cluster).
    pub unclean_leader_election_enable: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            max_message_bytes: 8 << 20,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
            flush: FlushMode::Interval,
            flush_ms: 10,
            flush_bytes: 4 << 20,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
        }
    }
}

/// A rejected config entry: the key and why (becomes `InvalidConfig` with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config '{key}': {reason}")]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// Why.
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| err(key, format!("'{value}' is not an integer")))?;
    if v < min || v > max {
        return Err(err(key, format!("{v} is outside {min}..={max}")));
    }
    Ok(v)
}

impl TopicConfig {
    /// Parses one key's value into `self`, returning its canonical text.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        max_message_bytes_max: u64,
    ) -> Result<String, ConfigError> {
        match key {
            "retention.ms" => {
                self.retention_ms = int(key, value, -1, i64::MAX)?;
                Ok(self.retention_ms.to_string())
            }
            "retention.bytes" => {
                self.retention_bytes = int(key, value, -1, i64::MAX)?;
                Ok(self.retention_bytes.to_string())
            }
            "segment.bytes" => {
                self.segment_bytes = int(
                    key,
                    value,
                    SEGMENT_BYTES_MIN as i64,
                    SEGMENT_BYTES_MAX as i64,
                )? as u64;
                Ok(self.segment_bytes.to_string())
            }
            "segment.ms" => {
                self.segment_ms = int(key, value, 1, i64::MAX)?;
                Ok(self.segment_ms.to_string())
            }
            "max.message.bytes" => {
                let max = i64::try_from(max_message_bytes_max).unwrap_or(i64::MAX);
                self.max_message_bytes = int(key, value, BATCH_HEADER_LEN as i64, max)? as u64;
                Ok(self.max_message_bytes.to_string())
            }
            "cleanup.policy" => {
                let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
                parts.sort_unstable();
                parts.dedup();
                self.cleanup_policy = match parts.as_slice() {
                    ["delete"] => CleanupPolicy::Delete,
                    ["compact"] => CleanupPolicy::Compact,
                    ["compact", "delete"] => CleanupPolicy::CompactDelete,
                    _ => {
                        return Err(err(
                            key,
                            format!("'{value}' is not one of delete, compact, compact,delete"),
                        ))
                    }
                };
                Ok(cleanup_text(self.cleanup_policy).to_string())
            }
            "delete.retention.ms" => {
                self.delete_retention_ms = int(key, value, 0, i64::MAX)?;
                Ok(self.delete_retention_ms.to_string())
            }
            "flush" => {
                self.flush = match value.trim() {
                    "always" => FlushMode::Always,
                    "interval" => FlushMode::Interval,
                    "never" => FlushMode::Never,
                    _ => {
                        return Err(err(
                            key,
                            format!("'{value}' is not one of always, interval, never"),
                        ))
                    }
                };
                Ok(flush_text(self.flush).to_string())
            }
            "flush.ms" => {
                self.flush_ms = int(key, value, 0, FLUSH_MS_MAX as i64)? as u64;
                Ok(self.flush_ms.to_string())
            }
            "flush.bytes" => {
                self.flush_bytes = int(key, value, 1, i64::MAX)? as u64;
                Ok(self.flush_bytes.to_string())
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = int(key, value, 1, i64::from(i16::MAX))? as i32;
                Ok(self.min_insync_replicas.to_string())
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err(key, format!("'{value}' is not true or false"))),
                };
                Ok(self.unclean_leader_election_enable.to_string())
            }
            _ => Err(err(
                key,
                format!("unknown config key (known: {})", CONFIG_KEYS.join(", ")),
            )),
        }
    }

    /// The canonical text of one key's value.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "cleanup.policy" => cleanup_text(self.cleanup_policy).to_string(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "flush" => flush_text(self.flush).to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "flush.bytes" => self.flush_bytes.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            _ => return None,
        })
    }

    /// The effective config of a topic: `defaults` with `overrides` applied.
    pub fn resolve(
        defaults: &TopicConfig,
        overrides: &BTreeMap<String, String>,
        max_message_bytes_max: u64,
    ) -> Result<TopicConfig, ConfigError> {
        let mut config = defaults.clone();
        for (key, value) in overrides {
            config.set(key, value, max_message_bytes_max)?;
        }
        Ok(config)
    }

    /// The partition log configuration: `template` (geometry, buffers, caches) with this
    /// topic's keys applied.
    pub fn log_config(&self, template: &LogConfig) -> LogConfig {
        let mut log = template.clone();
        log.retention_ms = (self.retention_ms >= 0).then_some(self.retention_ms);
        log.retention_bytes = u64::try_from(self.retention_bytes).ok();
        log.segment_bytes = self.segment_bytes;
        log.segment_ms = Some(self.segment_ms);
        log.batch_bytes_max = usize::try_from(self.max_message_bytes).unwrap_or(usize::MAX);
        log.cleanup_policy = self.cleanup_policy;
        log.delete_retention_ms = self.delete_retention_ms;
        log.flush = match self.flush {
            FlushMode::Always => FlushPolicy::Always,
            FlushMode::Interval => FlushPolicy::Interval {
                ms: self.flush_ms,
                bytes: self.flush_bytes,
            },
            FlushMode::Never => FlushPolicy::Never,
        };
        log
    }
}

fn cleanup_text(policy: CleanupPolicy) -> &'static str {
    match policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    }
}

fn flush_text(mode: FlushMode) -> &'static str {
    match mode {
        FlushMode::Always => "always",
        FlushMode::Interval => "interval",
        FlushMode::Never => "never",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_canonically_and_reject_bad_values() {
        let mut c = TopicConfig::default();
        assert_eq!(
            c.set("cleanup.policy", "delete, compact", 1 << 20),
            Ok("compact,delete".into())
        );
        assert_eq!(c.set("flush", "always", 1 << 20), Ok("always".into()));
        assert_eq!(c.set("retention.ms", "-1", 1 << 20), Ok("-1".into()));
        assert!(c.set("retention.ms", "-2", 1 << 20).is_err());
        assert!(c.set("segment.bytes", "100", 1 << 20).is_err());
        assert!(c.set("max.message.bytes", "2000000", 1 << 20).is_err());
        assert!(c.set("flush", "sometimes", 1 << 20).is_err());
        assert!(c.set("flush.ms", "x", 1 << 20).is_err());
        let e = c.set("nope", "1", 1 << 20).unwrap_err();
        assert_eq!(e.key, "nope");
        c = TopicConfig::default();
        for key in CONFIG_KEYS {
            let text = c.get(key).expect("every key has a value");
            let mut d = TopicConfig::default();
            assert_eq!(d.set(key, &text, 64 << 20), Ok(text), "{key}");
        }
        c.set("retention.ms", "-1", 1 << 20).expect("valid");
        c.set("flush", "always", 1 << 20).expect("valid");
        let log = c.log_config(&LogConfig::default());
        assert_eq!(log.retention_ms, None);
        assert_eq!(log.flush, FlushPolicy::Always);
    }
}
