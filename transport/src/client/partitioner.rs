//! Kafka-compatible partition choice: an explicit partition wins; a key maps to
//! `toPositive(murmur2(key)) % partitions`, exactly as Kafka's Java producer does, so keyed
//! records land on the same partition whichever client wrote them; records without a key stick
//! to one partition until its batch is sealed (the sticky partitioner of KIP-480; the switch
//! itself lives in the accumulator, which knows when a batch is sealed).

/// Kafka's 32-bit murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`), seed
/// `0x9747b28c`.
///
/// ```
/// use quiver_transport::client::murmur2;
/// assert_eq!(murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java's int length; keys above 2 GiB cannot be encoded in a record anyway.
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
///
/// ```
/// use quiver_transport::client::to_positive;
/// assert_eq!(to_positive(-1), i32::MAX);
/// assert_eq!(to_positive(i32::MIN), 0);
/// ```
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's producer picks for `key` among `partitions` (> 0), as in
/// `BuiltInPartitioner.partitionForKey`.
///
/// ```
/// use quiver_transport::client::partition_for_key;
/// let p = partition_for_key(b"user-42", 6);
/// assert!((0..6).contains(&p));
/// assert_eq!(p, partition_for_key(b"user-42", 6));
/// ```
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

/// A small xorshift64* generator for picking sticky partitions: no dependency, seedable for
/// deterministic tests.
#[derive(Debug, Clone)]
pub(crate) struct SmallRng(u64);

impl SmallRng {
    /// A generator from `seed` (0 is mapped to a fixed non-zero state).
    pub(crate) fn new(seed: u64) -> SmallRng {
        SmallRng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// Seeded from the clock and the address of a stack value.
    pub(crate) fn from_entropy() -> SmallRng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        SmallRng::new(nanos ^ (&local as *const u8 as u64).rotate_left(32))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough value in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        assert!(n > 0, "empty range");
        (self.next_u64() % u64::from(n)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Kafka's own test, `UtilsTest.testMurmur2`
    /// (apache/kafka `clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`).
    const KAFKA_MURMUR2: &[(&[u8], i32)] = &[
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
        (b"abc", 479470107),
    ];

    #[test]
    fn murmur2_matches_kafka_vectors() {
        for &(key, expected) in KAFKA_MURMUR2 {
            assert_eq!(
                murmur2(key),
                expected,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
        // Every tail length (0-3 bytes after the 4-byte blocks) is covered above: 2, 6, 24,
        // 26, 48 and 3 bytes.
        let tails: std::collections::BTreeSet<usize> =
            KAFKA_MURMUR2.iter().map(|(k, _)| k.len() % 4).collect();
        assert_eq!(tails.len(), 3, "tails 0, 2, 3 covered; 1 below");
        // Tail of 1 byte: Kafka's (seed ^ 1) path; the empty key hashes to a fixed value too.
        assert_ne!(murmur2(b"a"), murmur2(b"b"));
    }

    #[test]
    fn keyed_partition_is_to_positive_murmur2_mod_count() {
        for &(key, hash) in KAFKA_MURMUR2 {
            for partitions in [1, 2, 3, 7, 10, 64] {
                let expected = (hash & 0x7fff_ffff) % partitions;
                assert_eq!(partition_for_key(key, partitions), expected);
            }
        }
        // Worked by hand from the vectors: "foobar" -> -790332482 -> 1357151166.
        assert_eq!(to_positive(-790332482), 1357151166);
        assert_eq!(partition_for_key(b"foobar", 3), 1357151166 % 3);
        assert_eq!(partition_for_key(b"foobar", 3), 0);
        assert_eq!(
            partition_for_key(b"21", 10),
            (2147483648i64 - 973932308) as i32 % 10
        );
        assert_eq!(partition_for_key(b"21", 10), 0);
        assert_eq!(partition_for_key(b"abc", 10), 7);
        // The same key always maps to the same partition (Kafka's testKeyPartitionIsStable).
        assert_eq!(partition_for_key(b"key", 3), partition_for_key(b"key", 3));
    }

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let mut a = SmallRng::new(7);
        let mut b = SmallRng::new(7);
        for _ in 0..100 {
            let x = a.below(5);
            assert_eq!(x, b.below(5));
            assert!(x < 5);
        }
    }
}
