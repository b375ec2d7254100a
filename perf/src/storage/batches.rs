//! Pre-built RecordBatch v2 batches of 1 KiB records, made before anything is timed.
//!
//! Every batch is exactly `batch_bytes` long (a multiple of [`RECORD_BYTES`]): each record
//! encodes to 1 KiB, except the last of a batch, which is shortened by the 61-byte batch header.
//! Values are pseudo-random (SplitMix64 seeded per batch), so no two records are equal and
//! nothing downstream can get away with deduplicating or compressing them. Uncompressed
//! (`Compression::None`), as a producer that does not compress would send them.
//!
//! The log stamps every appended batch in place and keeps it, so a run consumes its batches:
//! [`Batches::fresh`] copies the master set (untimed) before each run. The stamp is outside the
//! CRC, so the copies stay valid.

use bytes::BytesMut;
use quiver_engine::batch::varint::varint_len;
use quiver_engine::batch::{BatchBuilder, Compression};

/// Encoded size of one record (length prefix included).
pub const RECORD_BYTES: usize = 1024;
/// Bytes of one record that are not its value at most (length, attributes, deltas, key and
/// value lengths, header count), for the value-length search.
const RECORD_OVERHEAD_BYTES_MAX: usize = 16;

/// A master set of batches, all the same size, built once per batch size.
pub struct Batches {
    master: Vec<BytesMut>,
    batch_bytes: usize,
}

impl Batches {
    /// Builds `count` batches of `batch_bytes` each, on every available core.
    pub fn build(batch_bytes: usize, count: usize, timestamp_ms: i64) -> Batches {
        assert!(
            batch_bytes >= 2 * RECORD_BYTES && batch_bytes % RECORD_BYTES == 0,
            "a batch holds whole 1 KiB records and room for its header"
        );
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = count.div_ceil(threads);
        let mut master = Vec::with_capacity(count);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let first = (t * per_thread).min(count);
                    let last = ((t + 1) * per_thread).min(count);
                    scope.spawn(move || {
                        (first..last)
                            .map(|i| build_batch(batch_bytes, i as u64, timestamp_ms))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for worker in workers {
                match worker.join() {
                    Ok(part) => master.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        Batches {
            master,
            batch_bytes,
        }
    }

    /// A fresh copy of every batch, in order, for one run to consume.
    pub fn fresh(&self) -> Vec<BytesMut> {
        self.master.iter().map(|b| BytesMut::from(&b[..])).collect()
    }

    /// Size of each batch.
    pub fn batch_bytes(&self) -> usize {
        self.batch_bytes
    }

    /// Number of batches.
    pub fn count(&self) -> usize {
        self.master.len()
    }

    /// Bytes over all batches.
    pub fn total_bytes(&self) -> u64 {
        (self.master.len() * self.batch_bytes) as u64
    }

    /// Records over all batches (offsets a log holding them all spans).
    pub fn total_records(&self) -> u64 {
        (self.master.len() * self.records_per_batch()) as u64
    }

    /// Records in each batch.
    pub fn records_per_batch(&self) -> usize {
        self.batch_bytes / RECORD_BYTES
    }
}

/// One batch of exactly `batch_bytes`, its values seeded by `index`.
fn build_batch(batch_bytes: usize, index: u64, timestamp_ms: i64) -> BytesMut {
    let records = batch_bytes / RECORD_BYTES;
    let mut rng = SplitMix64(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5155_4956_4552);
    let mut builder = BatchBuilder::new(Compression::None);
    let mut value = vec![0u8; RECORD_BYTES];
    for i in 0..records {
        let want = if i + 1 == records {
            batch_bytes - builder.estimated_size()
        } else {
            RECORD_BYTES
        };
        let offset_delta = i32::try_from(i).unwrap_or(i32::MAX);
        let len = value_len_for(want, offset_delta);
        rng.fill(&mut value[..len]);
        builder.push(timestamp_ms, None, Some(&value[..len]), &[]);
    }
    let batch = match builder.build() {
        Ok(batch) => batch,
        Err(e) => panic!("an uncompressed batch of {batch_bytes} bytes always builds: {e}"),
    };
    assert_eq!(
        batch.len(),
        batch_bytes,
        "record sizes add up to the batch size"
    );
    batch
}

/// Encoded size of a record with a null key, no headers, timestamp delta 0 and a value of
/// `value_len` bytes (the layout `BatchBuilder` writes).
fn encoded_len(value_len: usize, offset_delta: i32) -> usize {
    let value_len_i32 = i32::try_from(value_len).unwrap_or(i32::MAX);
    let body = 1 // attributes
        + 1 // timestamp delta 0
        + varint_len(offset_delta)
        + 1 // null key: length -1
        + varint_len(value_len_i32)
        + value_len
        + 1; // header count 0
    varint_len(i32::try_from(body).unwrap_or(i32::MAX)) + body
}

/// The value length whose record encodes to exactly `want` bytes.
fn value_len_for(want: usize, offset_delta: i32) -> usize {
    let mut len = want.saturating_sub(RECORD_OVERHEAD_BYTES_MAX);
    while encoded_len(len, offset_delta) < want {
        len += 1;
    }
    assert_eq!(
        encoded_len(len, offset_delta),
        want,
        "no value length gives a record of exactly {want} bytes"
    );
    len
}

/// SplitMix64: fast, good enough to make every value distinct and incompressible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_engine::batch::RecordBatch;

    #[test]
    fn batches_have_the_exact_size_and_valid_crcs() {
        for batch_bytes in [2 << 10, 64 << 10, 1 << 20] {
            let set = Batches::build(batch_bytes, 3, 1_700_000_000_000);
            assert_eq!(set.count(), 3);
            for b in set.fresh() {
                assert_eq!(b.len(), batch_bytes);
                let view = RecordBatch::parse(&b).expect("built batches parse");
                assert_eq!(view.records_count() as usize, batch_bytes / RECORD_BYTES);
                let records = view.records().expect("records decode");
                assert!(records.iter().all(|r| r.key.is_none()));
            }
        }
    }

    #[test]
    fn values_differ_between_batches() {
        let set = Batches::build(64 << 10, 2, 0);
        let copies = set.fresh();
        assert_ne!(copies[0][100..200], copies[1][100..200]);
    }
}
