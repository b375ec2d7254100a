//! Records of the internal, compacted topic `__consumer_offsets`, and which of its partitions
//! holds a group.
//!
//! Key (big-endian): `u16` type tag, then the fields of that type. Tag 1 is a committed offset:
//! group (`u16` length + UTF-8), topic (same), partition `i32`. Tag 2 is reserved for group
//! metadata. Unknown tags decode to [`RecordKey::Unknown`] so that a newer broker's records are
//! skipped, not misread.
//!
//! Value of an offset record: `u16` version (1), offset `i64`, leader epoch `i32`, metadata
//! (`u16` length + UTF-8), commit time `i64` (ms since the epoch). A null value is a tombstone:
//! the group no longer has an offset for that partition, and compaction drops the key.
//!
//! Decoding never panics: short, overlong or non-UTF-8 input is a [`RecordError`].

use super::CommittedOffset;

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Its partition count (Kafka's default `offsets.topic.num.partitions`). Fixed: changing it
/// would move groups between partitions.
pub const OFFSETS_TOPIC_PARTITIONS: i32 = 50;

/// Key type tag of a committed offset.
const KEY_OFFSET: u16 = 1;
/// Version of the offset value layout.
const VALUE_VERSION: u16 = 1;

/// The partition of `__consumer_offsets` that holds `group`: Java's `String.hashCode` of the
/// id (over UTF-16 code units), made non-negative by masking the sign bit as Kafka's
/// `Utils.abs` does, modulo `partitions`. The same group lands on the same partition as in
/// Kafka.
pub fn offsets_partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (hash & 0x7fff_ffff) % partitions.max(1)
}

/// The key of a committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset.
    Offset(OffsetKey),
    /// A record type this build does not know (skip it).
    Unknown(u16),
}

/// A malformed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes ended early.
    #[error("record {what} is truncated")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// Bytes were left over after the last field.
    #[error("record has {0} trailing bytes")]
    Trailing(usize),
    /// A string field is not UTF-8.
    #[error("record {what} is not UTF-8")]
    NotUtf8 {
        /// The field.
        what: &'static str,
    },
    /// The value's version is not one this build reads.
    #[error("offset value version {0} is not supported")]
    Version(u16),
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.bytes.len() < n {
            return Err(RecordError::Truncated { what });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, RecordError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        let len = usize::from(self.u16(what)?);
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| RecordError::NotUtf8 { what })
    }
    fn finish(self) -> Result<(), RecordError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Trailing(self.bytes.len()))
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Group ids and topic names are at most 255 and 249 bytes, metadata at most 4096: the
    // broker checks before encoding; cut defensively rather than write a wrong length.
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes an offset key.
pub fn encode_offset_key(key: &OffsetKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.group.len() + key.topic.len());
    out.extend_from_slice(&KEY_OFFSET.to_be_bytes());
    put_string(&mut out, &key.group);
    put_string(&mut out, &key.topic);
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

/// Decodes a record key.
pub fn decode_offset_key(bytes: &[u8]) -> Result<RecordKey, RecordError> {
    let mut c = Cursor { bytes };
    let tag = c.u16("key type")?;
    if tag != KEY_OFFSET {
        return Ok(RecordKey::Unknown(tag));
    }
    let group = c.string("group")?;
    let topic = c.string("topic")?;
    let partition = c.i32("partition")?;
    c.finish()?;
    Ok(RecordKey::Offset(OffsetKey {
        group,
        topic,
        partition,
    }))
}

/// Encodes an offset value.
pub fn encode_offset_value(value: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + value.metadata.len());
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_string(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

/// Decodes an offset value.
pub fn decode_offset_value(bytes: &[u8]) -> Result<CommittedOffset, RecordError> {
    let mut c = Cursor { bytes };
    let version = c.u16("value version")?;
    if version != VALUE_VERSION {
        return Err(RecordError::Version(version));
    }
    let offset = c.i64("offset")?;
    let leader_epoch = c.i32("leader epoch")?;
    let metadata = c.string("metadata")?;
    let commit_timestamp_ms = c.i64("commit time")?;
    c.finish()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_string_hash_code() {
        // Java: "".hashCode() == 0, "a".hashCode() == 97, "group".hashCode() == 98629247.
        assert_eq!(offsets_partition_for("", 50), 0);
        assert_eq!(offsets_partition_for("a", 50), 97 % 50);
        assert_eq!(offsets_partition_for("group", 50), 98_629_247 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE (a well-known Java example):
        // Kafka's abs masks it to 0.
        assert_eq!(offsets_partition_for("polygenelubricants", 50), 0);
        // Non-ASCII goes by UTF-16 units: "é" is 0xE9 = 233.
        assert_eq!(offsets_partition_for("é", 50), 233 % 50);
        // "😀" is the surrogate pair D83D DE00: 0xD83D * 31 + 0xDE00.
        assert_eq!(offsets_partition_for("😀", 50), (0xD83D * 31 + 0xDE00) % 50);
    }

    #[test]
    fn keys_and_values_round_trip() {
        let key = OffsetKey {
            group: "g-1".into(),
            topic: "orders".into(),
            partition: 7,
        };
        let bytes = encode_offset_key(&key);
        assert_eq!(decode_offset_key(&bytes), Ok(RecordKey::Offset(key)));
        let value = CommittedOffset {
            offset: 1234,
            leader_epoch: 3,
            metadata: "né".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(decode_offset_value(&encode_offset_value(&value)), Ok(value));
        assert_eq!(
            decode_offset_key(&[0, 2, 1, 2, 3]),
            Ok(RecordKey::Unknown(2))
        );
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let key = encode_offset_key(&OffsetKey {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
        });
        for cut in 0..key.len() {
            assert!(decode_offset_key(&key[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = key.clone();
        long.push(0);
        assert_eq!(decode_offset_key(&long), Err(RecordError::Trailing(1)));
        let value = encode_offset_value(&CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        });
        for cut in 0..value.len() {
            assert!(decode_offset_value(&value[..cut]).is_err(), "cut at {cut}");
        }
        // Pseudo-random garbage never panics.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode_offset_key(&bytes);
            let _ = decode_offset_value(&bytes);
        }
    }
}
