//! One v2 record inside a batch's (decompressed) records section: the owned [`Record`] and
//! [`RecordHeader`] types, the encoder the builder uses, and the bounded decoder.
//!
//! Record layout (all varints zigzag):
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
//! headerCount varint | { headerKeyLength varint | key (UTF-8) | headerValueLength varint | value }
//! ```
//! The decoder checks every length against the bytes left before slicing or allocating, requires
//! each record to use exactly its declared length, offset deltas to rise strictly within
//! `[0, lastOffsetDelta]`, and the section to hold exactly `recordsCount` records.

use bytes::Bytes;

use super::varint::{self, VarintError};
use super::BatchError;

/// A decoded record with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: batch base offset + offset delta.
    pub offset: i64,
    /// Absolute timestamp: batch base timestamp + timestamp delta.
    pub timestamp: i64,
    /// Key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, or `None` for a null value (a tombstone under compaction).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<RecordHeader>,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (never null on the wire).
    pub key: String,
    /// Header value, or `None` for null.
    pub value: Option<Bytes>,
}

/// Smallest possible encoded record: length, attributes, timestampDelta, offsetDelta, keyLength,
/// valueLength and headerCount, one byte each. Bounds the capacity reserved for `recordsCount`.
const RECORD_LEN_MIN: usize = 7;
/// Smallest possible encoded header: keyLength and valueLength, one byte each.
const HEADER_LEN_MIN: usize = 2;

/// Fields of one record to encode, relative to its batch.
pub(crate) struct RecordFields<'r> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'r [u8]>,
    pub value: Option<&'r [u8]>,
    pub headers: &'r [(&'r str, Option<&'r [u8]>)],
}

/// Length prefix of a nullable byte field: -1 for null, else the length.
fn nullable_len(field: Option<&[u8]>) -> i32 {
    field.map_or(-1, byte_len)
}

/// A field's length as an i32; fields longer than i32::MAX cannot be encoded.
fn byte_len(field: &[u8]) -> i32 {
    i32::try_from(field.len()).expect("record field longer than i32::MAX bytes")
}

fn nullable_size(field: Option<&[u8]>) -> usize {
    varint::varint_len(nullable_len(field)) + field.map_or(0, <[u8]>::len)
}

fn put_nullable(out: &mut Vec<u8>, field: Option<&[u8]>) {
    varint::put_varint(out, nullable_len(field));
    if let Some(bytes) = field {
        out.extend_from_slice(bytes);
    }
}

/// Append one encoded record to `out`; returns the bytes written.
///
/// Panics if a field or the whole record exceeds i32::MAX bytes (a caller bug: batches are far
/// smaller).
pub(crate) fn encode_record(out: &mut Vec<u8>, rec: &RecordFields<'_>) -> usize {
    let header_count = i32::try_from(rec.headers.len()).expect("more than i32::MAX headers");
    let mut body_len = 1 // attributes
        + varint::varlong_len(rec.timestamp_delta)
        + varint::varint_len(rec.offset_delta)
        + nullable_size(rec.key)
        + nullable_size(rec.value)
        + varint::varint_len(header_count);
    for (key, value) in rec.headers {
        body_len += varint::varint_len(byte_len(key.as_bytes())) + key.len();
        body_len += nullable_size(*value);
    }
    let body_len_i32 = i32::try_from(body_len).expect("record longer than i32::MAX bytes");
    let start = out.len();
    out.reserve(varint::VARINT_LEN_MAX + body_len);
    varint::put_varint(out, body_len_i32);
    out.push(0); // record attributes: unused in v2
    varint::put_varlong(out, rec.timestamp_delta);
    varint::put_varint(out, rec.offset_delta);
    put_nullable(out, rec.key);
    put_nullable(out, rec.value);
    varint::put_varint(out, header_count);
    for (key, value) in rec.headers {
        varint::put_varint(out, byte_len(key.as_bytes()));
        out.extend_from_slice(key.as_bytes());
        put_nullable(out, *value);
    }
    debug_assert_eq!(
        out.len() - start,
        varint::varint_len(body_len_i32) + body_len
    );
    out.len() - start
}

/// What the decoder needs from the batch header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SectionInfo {
    pub base_offset: i64,
    pub base_timestamp: i64,
    pub last_offset_delta: i32,
    pub records_count: i32,
}

/// Decode every record of a (decompressed) records section.
pub(crate) fn decode_records(
    section: &Bytes,
    info: SectionInfo,
) -> Result<Vec<Record>, BatchError> {
    let declared = usize::try_from(info.records_count).map_err(|_| {
        BatchError::MalformedRecords(format!("negative recordsCount {}", info.records_count))
    })?;
    // Never reserve more records than the bytes could hold.
    let mut records = Vec::with_capacity(declared.min(section.len() / RECORD_LEN_MIN));
    let mut cursor = Cursor {
        buf: section,
        pos: 0,
        end: section.len(),
    };
    let mut prev_delta: Option<i32> = None;
    while records.len() < declared {
        if cursor.remaining() == 0 {
            return Err(BatchError::RecordCountMismatch {
                declared: info.records_count,
                decoded: records.len(),
            });
        }
        let index = records.len();
        let record = decode_one(&mut cursor, info, prev_delta)
            .map_err(|why| BatchError::MalformedRecords(format!("record {index}: {why}")))?;
        prev_delta = Some(record.1);
        records.push(record.0);
    }
    if cursor.remaining() != 0 {
        return Err(BatchError::TrailingBytes {
            remaining: cursor.remaining(),
        });
    }
    Ok(records)
}

/// Decode one record; returns it and its offset delta. Errors are descriptions for
/// [`BatchError::MalformedRecords`].
fn decode_one(
    outer: &mut Cursor<'_>,
    info: SectionInfo,
    prev_delta: Option<i32>,
) -> Result<(Record, i32), String> {
    let len = outer.varint("length")?;
    let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
    if len > outer.remaining() {
        return Err(format!("length {len} but {} bytes left", outer.remaining()));
    }
    // The record's fields must stay inside its declared length.
    let mut cur = Cursor {
        buf: outer.buf,
        pos: outer.pos,
        end: outer.pos + len,
    };
    outer.pos += len;

    let _attributes = cur.byte("attributes")?;
    let timestamp_delta = cur.varlong("timestampDelta")?;
    let offset_delta = cur.varint("offsetDelta")?;
    if offset_delta < 0 || offset_delta > info.last_offset_delta {
        return Err(format!(
            "offsetDelta {offset_delta} outside [0, lastOffsetDelta {}]",
            info.last_offset_delta
        ));
    }
    if prev_delta.is_some_and(|prev| offset_delta <= prev) {
        return Err(format!(
            "offsetDelta {offset_delta} not above previous {}",
            prev_delta.unwrap_or_default()
        ));
    }
    let key = cur.nullable_bytes("key")?;
    let value = cur.nullable_bytes("value")?;
    let header_count = cur.varint("headerCount")?;
    let header_count = usize::try_from(header_count)
        .ok()
        .filter(|&n| n <= cur.remaining() / HEADER_LEN_MIN)
        .ok_or_else(|| {
            format!(
                "headerCount {header_count} with {} bytes left",
                cur.remaining()
            )
        })?;
    let mut headers = Vec::with_capacity(header_count);
    for i in 0..header_count {
        let key_len = cur.varint("header key length")?;
        let key_len = usize::try_from(key_len)
            .map_err(|_| format!("header {i}: negative key length {key_len}"))?;
        let key_bytes = cur.take(key_len, "header key")?;
        let key = std::str::from_utf8(&key_bytes)
            .map_err(|e| format!("header {i}: key not UTF-8: {e}"))?
            .to_owned();
        let value = cur.nullable_bytes("header value")?;
        headers.push(RecordHeader { key, value });
    }
    if cur.remaining() != 0 {
        return Err(format!(
            "{} unused bytes inside length {len}",
            cur.remaining()
        ));
    }
    // Cannot overflow: parse checked base_offset + last_offset_delta, and delta <= that.
    let offset = info
        .base_offset
        .checked_add(i64::from(offset_delta))
        .ok_or_else(|| "offset overflows i64".to_owned())?;
    // Timestamps wrap like Kafka's Java arithmetic, so every i64 pair round-trips.
    let timestamp = info.base_timestamp.wrapping_add(timestamp_delta);
    Ok((
        Record {
            offset,
            timestamp,
            key,
            value,
            headers,
        },
        offset_delta,
    ))
}

/// Bounded reader over `buf[pos..end)`.
struct Cursor<'b> {
    buf: &'b Bytes,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    fn byte(&mut self, what: &str) -> Result<u8, String> {
        let b = *self
            .rest()
            .first()
            .ok_or_else(|| format!("{what}: no bytes left"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, what: &str) -> Result<i32, String> {
        let (v, used) = varint::get_varint(self.rest()).map_err(|e| varint_err(what, e))?;
        self.pos += used;
        Ok(v)
    }

    fn varlong(&mut self, what: &str) -> Result<i64, String> {
        let (v, used) = varint::get_varlong(self.rest()).map_err(|e| varint_err(what, e))?;
        self.pos += used;
        Ok(v)
    }

    /// Slice the next `len` bytes without copying.
    fn take(&mut self, len: usize, what: &str) -> Result<Bytes, String> {
        if len > self.remaining() {
            return Err(format!(
                "{what}: length {len} but {} bytes left",
                self.remaining()
            ));
        }
        let out = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(out)
    }

    /// A varint length (-1 = null) followed by that many bytes.
    fn nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        let len = self.varint(what)?;
        match len {
            -1 => Ok(None),
            len if len < -1 => Err(format!("{what}: bad length {len}")),
            len => self.take(len as usize, what).map(Some),
        }
    }
}

fn varint_err(what: &str, e: VarintError) -> String {
    format!("{what}: {e}")
}
