//! [`Records`]: the record-batch bytes of one partition in a fetch response, held as a list of
//! `Bytes` chunks so the broker can send batch-cache and segment slices without copying them.
//!
//! Invariants:
//! - The protocol never looks inside: the bytes are one or more Kafka RecordBatch v2, validated
//!   by whoever produced them (the engine), passed through untouched.
//! - On the wire it is one byte field (`u32` total length, then the chunks back to back), so chunk
//!   boundaries are invisible to the peer: decoding always yields a single chunk, and equality
//!   compares content, not chunking.
//! - Empty chunks are never stored.

use bytes::Bytes;

use super::codec::{concat_chunks, DecodeError, EncodeError, Encoder, Reader, Wire, BYTES_LEN_MAX};

/// Concatenated record batches, as a list of chunks.
///
/// ```
/// use bytes::Bytes;
/// use quiver_transport::protocol::Records;
///
/// let mut records = Records::new();
/// records.push(Bytes::from_static(b"batch-1"));
/// records.push(Bytes::from_static(b"batch-2"));
/// assert_eq!(records.len_bytes(), 14);
/// assert_eq!(records, Records::from(Bytes::from_static(b"batch-1batch-2")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Records {
    chunks: Vec<Bytes>,
    len_bytes: usize,
}

impl Records {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk (no copy); empty chunks are dropped.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len_bytes += chunk.len();
        self.chunks.push(chunk);
    }

    /// Total bytes over all chunks.
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The bytes as one buffer: free for zero or one chunk, one copy otherwise.
    pub fn to_bytes(&self) -> Bytes {
        concat_chunks(&self.chunks)
    }

    /// Whether both hold the same bytes, chunking aside.
    fn same_content(&self, other: &Records) -> bool {
        if self.len_bytes != other.len_bytes {
            return false;
        }
        let mut left = self.chunks.iter().flat_map(|c| c.iter());
        let mut right = other.chunks.iter().flat_map(|c| c.iter());
        loop {
            match (left.next(), right.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b => continue,
                _ => return false,
            }
        }
    }
}

impl From<Bytes> for Records {
    fn from(chunk: Bytes) -> Self {
        let mut records = Records::new();
        records.push(chunk);
        records
    }
}

impl From<Vec<Bytes>> for Records {
    fn from(chunks: Vec<Bytes>) -> Self {
        let mut records = Records::new();
        for chunk in chunks {
            records.push(chunk);
        }
        records
    }
}

impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.same_content(other)
    }
}

impl Eq for Records {}

impl Wire for Records {
    const WIRE_BYTES_MIN: usize = 4;

    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        Ok(Records::from(r.bytes(what)?))
    }

    fn encode(&self, w: &mut Encoder, _version: u16, what: &'static str) {
        if self.len_bytes > BYTES_LEN_MAX {
            w.fail(EncodeError::BytesTooLong {
                what,
                len: self.len_bytes,
            });
            return;
        }
        w.payload_len(self.len_bytes, what);
        for chunk in &self.chunks {
            w.payload(chunk);
        }
    }
}
