//! Primitive wire encoding: the [`Reader`] cursor, the [`Encoder`] chunk writer, the [`Wire`]
//! trait every field and message type implements, and the codec's error enums.
//!
//! Wire rules (all integers big-endian):
//! - fixed-width integers: `i8`, `u16`, `i16`, `u32`, `i32`, `i64`; `bool` is one byte, 0 or 1
//!   (any other value is a decode error, so every value has exactly one encoding);
//! - string: `u16` length then UTF-8; a nullable string uses length `0xFFFF` for null, so a
//!   string holds at most [`STRING_BYTES_MAX`] bytes;
//! - bytes: `u32` length then raw bytes; nullable uses `0xFFFF_FFFF` for null;
//! - array: `u32` element count then the elements; nullable uses `0xFFFF_FFFF` for null.
//!
//! Invariants:
//! - [`Reader`] never panics and never reads past its buffer: every read checks the remaining
//!   length first and fails with [`DecodeError::Truncated`].
//! - An array count is checked against the remaining bytes (`count * WIRE_BYTES_MIN`) before
//!   anything is allocated, and every allocation (vector storage, string contents) is charged to a
//!   budget of [`decode_alloc_bytes_max`] of the input length: whatever the input, decoding
//!   allocates at most `8 × input + 64 KiB` bytes.
//! - Decoded byte fields ([`Reader::bytes`]) are slices of the input [`Bytes`]: no copy.
//! - [`Encoder`] emits payloads of more than [`PAYLOAD_INLINE_BYTES_MAX`] bytes as their own
//!   `Bytes` chunks (a reference-count bump, no copy), so a broker can hand batch-cache slices to
//!   QUIC `write_chunks` untouched. Encoding never panics on oversized values: the first problem is
//!   remembered and returned by [`Encoder::finish`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::error_code::ErrorCode;

/// Longest string the format can carry: `0xFFFF` is the null marker.
pub const STRING_BYTES_MAX: usize = 0xFFFE;
/// Longest byte field the format can carry: `0xFFFF_FFFF` is the null marker.
pub const BYTES_LEN_MAX: usize = 0xFFFF_FFFE;
/// Most elements an array can carry: `0xFFFF_FFFF` is the null marker.
pub const ARRAY_LEN_MAX: usize = 0xFFFF_FFFE;
/// Payloads up to this many bytes are copied into the encoder's buffer; longer ones become their
/// own chunk. Copying 1 KiB costs less than an extra chunk in the QUIC send path.
pub const PAYLOAD_INLINE_BYTES_MAX: usize = 1024;

/// Heap bytes decoding may allocate per input byte, on top of [`DECODE_ALLOC_SLACK_BYTES`].
/// Real messages stay far below it (a partition entry takes about as many bytes in memory as on
/// the wire; a short topic name about 3×); only padding-like input (floods of empty strings or
/// arrays) comes near.
pub const DECODE_ALLOC_BYTES_PER_INPUT_BYTE_MAX: usize = 8;
/// Heap bytes decoding may allocate regardless of input size, so small messages with many empty
/// fields always decode.
pub const DECODE_ALLOC_SLACK_BYTES: usize = 64 << 10;

/// Most heap bytes (vector storage and string contents) that decoding `input_bytes` of input may
/// allocate; past it decoding fails with [`DecodeError::AllocationLimit`]. Record payloads are
/// slices of the input and cost nothing.
pub const fn decode_alloc_bytes_max(input_bytes: usize) -> usize {
    input_bytes
        .saturating_mul(DECODE_ALLOC_BYTES_PER_INPUT_BYTE_MAX)
        .saturating_add(DECODE_ALLOC_SLACK_BYTES)
}

const STRING_NULL: u16 = 0xFFFF;
const LEN32_NULL: u32 = 0xFFFF_FFFF;
/// Initial capacity of an encoder's buffer: most requests and responses fit without growing.
const ENCODER_CAPACITY_BYTES: usize = 256;

/// Why bytes could not be decoded into a value. Every variant is the peer's fault (or a
/// corrupted stream); none is fixed by retrying the same bytes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated: {what} needs {need} bytes, {have} remain")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes left in the input.
        have: usize,
    },
    /// A string field is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
    },
    /// An array count larger than the remaining bytes could possibly hold.
    #[error("{what}: {count} elements cannot fit in the {remaining} remaining bytes")]
    ArrayTooLong {
        /// The field being read.
        what: &'static str,
        /// The count on the wire.
        count: u32,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A null marker in a field that is not nullable.
    #[error("{what} must not be null")]
    UnexpectedNull {
        /// The field being read.
        what: &'static str,
    },
    /// A value outside the field's domain (a bool other than 0/1, an unknown enum value).
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// The field being read.
        what: &'static str,
        /// The value on the wire.
        value: i64,
    },
    /// The decoded value would take more heap than [`decode_alloc_bytes_max`] allows for an
    /// input of this size (e.g. millions of empty strings, 2 bytes each on the wire but 24 in
    /// memory).
    #[error("{what}: allocating {need_bytes} bytes exceeds the remaining decode budget of {budget_bytes}")]
    AllocationLimit {
        /// The field being read.
        what: &'static str,
        /// Bytes the field would allocate.
        need_bytes: usize,
        /// Bytes left in the budget.
        budget_bytes: usize,
    },
    /// `acks` other than 0, 1 or -1 (kept apart: it has its own [`ErrorCode`]).
    #[error("invalid acks {0} (must be 0, 1 or -1)")]
    InvalidAcks(i16),
    /// Bytes left over after the last field of a body.
    #[error("{count} trailing bytes after the body")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// An api key this build does not implement.
    #[error("unknown api key {0}")]
    UnknownApiKey(u16),
    /// A version of a known api this build does not implement.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion {
        /// The api key from the header.
        api_key: u16,
        /// The version from the header.
        version: u16,
    },
}

impl DecodeError {
    /// The wire error a broker answers with when a request fails to decode this way.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::UnknownApiKey(_) | DecodeError::UnsupportedVersion { .. } => {
                ErrorCode::UnsupportedVersion
            }
            DecodeError::InvalidAcks(_) => ErrorCode::InvalidRequiredAcks,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// Why a value could not be encoded. Every variant is the caller's fault: a value the format
/// cannot represent.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string longer than [`STRING_BYTES_MAX`].
    #[error("{what} is {len} bytes, more than a string can hold ({STRING_BYTES_MAX})")]
    StringTooLong {
        /// The field being written.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A byte field longer than [`BYTES_LEN_MAX`].
    #[error("{what} is {len} bytes, more than a byte field can hold")]
    BytesTooLong {
        /// The field being written.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// An array with more than [`ARRAY_LEN_MAX`] elements.
    #[error("{what} has {len} elements, more than an array can hold")]
    ArrayTooLong {
        /// The field being written.
        what: &'static str,
        /// Its element count.
        len: usize,
    },
    /// A value outside the field's domain (e.g. a negative `OffsetSpec::Timestamp`).
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// The field being written.
        what: &'static str,
        /// The value.
        value: i64,
    },
    /// A version of the api this build cannot encode.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion {
        /// The api key.
        api_key: u16,
        /// The requested version.
        version: u16,
    },
    /// The encoded frame is longer than the limit the caller gave.
    #[error("frame of {frame_bytes} bytes exceeds frame_bytes_max {frame_bytes_max}")]
    FrameTooLarge {
        /// Bytes after the length prefix.
        frame_bytes: usize,
        /// The limit.
        frame_bytes_max: u32,
    },
}

/// A value with a wire form: every field type and every message type implements it. Message
/// structs get it from the `wire_struct!` macro, which reads and writes the fields in declaration
/// order.
pub trait Wire: Sized {
    /// Fewest bytes any encoding of a value takes; bounds array counts before allocating.
    /// At least 1 for every type used as an array element (checked at compile time); only a
    /// body without fields (an empty request) has 0.
    const WIRE_BYTES_MIN: usize;
    /// Reads one value of the given api version; `what` names the field for error messages.
    fn decode(r: &mut Reader, version: u16, what: &'static str) -> Result<Self, DecodeError>;
    /// Writes the value in the given api version. Problems are recorded in the encoder and
    /// returned by [`Encoder::finish`].
    fn encode(&self, w: &mut Encoder, version: u16, what: &'static str);
}

/// A bounds-checked read cursor over one frame's bytes.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    /// Heap bytes decoding may still allocate (see [`decode_alloc_bytes_max`]).
    alloc_budget_bytes: usize,
}

impl Reader {
    /// A cursor at the start of `buf`, with an allocation budget of
    /// [`decode_alloc_bytes_max`]`(buf.len())`.
    pub fn new(buf: Bytes) -> Self {
        let alloc_budget_bytes = decode_alloc_bytes_max(buf.len());
        Reader {
            buf,
            alloc_budget_bytes,
        }
    }

    /// Charges `bytes` of heap against the budget, failing once it is spent.
    fn charge(&mut self, bytes: usize, what: &'static str) -> Result<(), DecodeError> {
        match self.alloc_budget_bytes.checked_sub(bytes) {
            Some(left) => {
                self.alloc_budget_bytes = left;
                Ok(())
            }
            None => Err(DecodeError::AllocationLimit {
                what,
                need_bytes: bytes,
                budget_bytes: self.alloc_budget_bytes,
            }),
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn need(&self, need: usize, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < need {
            return Err(DecodeError::Truncated {
                what,
                need,
                have: self.buf.len(),
            });
        }
        Ok(())
    }

    /// Reads a fixed-layout `zerocopy` struct (a header).
    pub fn fixed<T: FromBytes>(&mut self, what: &'static str) -> Result<T, DecodeError> {
        let size = core::mem::size_of::<T>();
        let (value, _) = T::read_from_prefix(&self.buf).map_err(|_| DecodeError::Truncated {
            what,
            need: size,
            have: self.buf.len(),
        })?;
        self.buf.advance(size);
        Ok(value)
    }

    /// Takes the next `len` bytes as a slice of the input (no copy).
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        self.need(len, what)?;
        Ok(self.buf.split_to(len))
    }

    /// Reads an `i8`.
    pub fn i8(&mut self, what: &'static str) -> Result<i8, DecodeError> {
        self.need(1, what)?;
        Ok(self.buf.get_i8())
    }

    /// Reads a `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    /// Reads an `i16`.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }

    /// Reads a `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }

    /// Reads an `i32`.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    /// Reads an `i64`.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a bool: exactly 0 or 1.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.i8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidValue {
                what,
                value: value.into(),
            }),
        }
    }

    /// Reads a non-null string.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        self.nullable_string(what)?
            .ok_or(DecodeError::UnexpectedNull { what })
    }

    /// Reads a nullable string.
    pub fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        let len = self.u16(what)?;
        if len == STRING_NULL {
            return Ok(None);
        }
        let raw = self.take(len.into(), what)?;
        self.charge(raw.len(), what)?;
        match core::str::from_utf8(&raw) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(DecodeError::InvalidUtf8 { what }),
        }
    }

    /// Reads a non-null byte field as a slice of the input (no copy).
    pub fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(what)?
            .ok_or(DecodeError::UnexpectedNull { what })
    }

    /// Reads a nullable byte field as a slice of the input (no copy).
    pub fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, DecodeError> {
        let len = self.u32(what)?;
        if len == LEN32_NULL {
            return Ok(None);
        }
        // A u32 always fits a usize on the 32- and 64-bit targets Quiver builds for.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len, what).map(Some)
    }

    /// Reads a non-null array.
    pub fn array<T: Wire>(
        &mut self,
        version: u16,
        what: &'static str,
    ) -> Result<Vec<T>, DecodeError> {
        self.nullable_array(version, what)?
            .ok_or(DecodeError::UnexpectedNull { what })
    }

    /// Reads a nullable array, checking the count against the remaining bytes before allocating.
    pub fn nullable_array<T: Wire>(
        &mut self,
        version: u16,
        what: &'static str,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        const {
            assert!(
                T::WIRE_BYTES_MIN > 0,
                "an element must take at least one byte"
            )
        };
        let count = self.u32(what)?;
        if count == LEN32_NULL {
            return Ok(None);
        }
        let remaining = self.remaining();
        let count_usize = usize::try_from(count).unwrap_or(usize::MAX);
        if count_usize > remaining / T::WIRE_BYTES_MIN {
            return Err(DecodeError::ArrayTooLong {
                what,
                count,
                remaining,
            });
        }
        self.charge(count_usize.saturating_mul(core::mem::size_of::<T>()), what)?;
        let mut items = Vec::with_capacity(count_usize);
        for _ in 0..count_usize {
            items.push(T::decode(self, version, what)?);
        }
        Ok(Some(items))
    }
}

/// Writes wire values into a list of `Bytes` chunks: small fields go into one growing buffer,
/// large payloads ([`Encoder::payload`]) are appended as their own chunks without copying.
///
/// ```
/// use bytes::Bytes;
/// use quiver_transport::protocol::Encoder;
///
/// let mut w = Encoder::new();
/// w.i16(7);
/// w.string("topic-a", "name");
/// w.bytes(&Bytes::from(vec![0u8; 4096]), "records"); // its own chunk, not copied
/// let chunks = w.finish().unwrap();
/// assert_eq!(chunks.len(), 2);
/// assert_eq!(chunks[1].len(), 4096);
/// ```
#[derive(Debug)]
pub struct Encoder {
    /// Chunks completed so far, in order.
    chunks: Vec<Bytes>,
    /// The first chunk, kept mutable so a frame's length prefix can be patched in `finish`.
    head: Option<BytesMut>,
    /// The chunk being written.
    buf: BytesMut,
    /// Bytes in `head` and `chunks`.
    flushed_bytes: usize,
    /// Whether the output starts with a `u32` length of the rest (a frame).
    length_prefixed: bool,
    /// The first problem met, if any.
    error: Option<EncodeError>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder for a bare body (no length prefix).
    pub fn new() -> Self {
        Encoder {
            chunks: Vec::new(),
            head: None,
            buf: BytesMut::with_capacity(ENCODER_CAPACITY_BYTES),
            flushed_bytes: 0,
            length_prefixed: false,
            error: None,
        }
    }

    /// An encoder whose output starts with the `u32` frame length, patched in by
    /// [`Encoder::finish`].
    pub fn new_frame() -> Self {
        let mut w = Self::new();
        w.length_prefixed = true;
        w.buf.put_u32(0);
        w
    }

    /// Bytes written so far, including a frame's length prefix.
    pub fn len_bytes(&self) -> usize {
        self.flushed_bytes + self.buf.len()
    }

    /// Records a problem; the first one wins and is returned by [`Encoder::finish`].
    pub fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }

    /// Writes a fixed-layout `zerocopy` struct (a header).
    pub fn fixed<T: IntoBytes + Immutable>(&mut self, value: &T) {
        self.buf.put_slice(value.as_bytes());
    }

    /// Writes an `i8`.
    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    /// Writes a `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    /// Writes an `i16`.
    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    /// Writes a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }

    /// Writes an `i32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    /// Writes an `i64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    /// Writes a bool as 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(v.into());
    }

    /// Writes a non-null string.
    pub fn string(&mut self, s: &str, what: &'static str) {
        match u16::try_from(s.len()) {
            Ok(len) if usize::from(len) <= STRING_BYTES_MAX => {
                self.buf.put_u16(len);
                self.buf.put_slice(s.as_bytes());
            }
            _ => self.fail(EncodeError::StringTooLong { what, len: s.len() }),
        }
    }

    /// Writes a nullable string.
    pub fn nullable_string(&mut self, s: Option<&str>, what: &'static str) {
        match s {
            Some(s) => self.string(s, what),
            None => self.buf.put_u16(STRING_NULL),
        }
    }

    /// Writes a `u32` length field for `len` bytes or elements, recording `error` if it does not
    /// fit below the null marker.
    fn len32(&mut self, len: usize, error: EncodeError) {
        match u32::try_from(len) {
            Ok(len) if len != LEN32_NULL => self.buf.put_u32(len),
            _ => self.fail(error),
        }
    }

    /// Writes a non-null byte field; large ones become their own chunk (see [`Encoder::payload`]).
    pub fn bytes(&mut self, b: &Bytes, what: &'static str) {
        self.len32(b.len(), EncodeError::BytesTooLong { what, len: b.len() });
        self.payload(b);
    }

    /// Writes a nullable byte field.
    pub fn nullable_bytes(&mut self, b: Option<&Bytes>, what: &'static str) {
        match b {
            Some(b) => self.bytes(b, what),
            None => self.buf.put_u32(LEN32_NULL),
        }
    }

    /// Writes a `u32` byte length for a payload that follows as one or more [`Encoder::payload`]
    /// calls.
    pub fn payload_len(&mut self, len: usize, what: &'static str) {
        self.len32(len, EncodeError::BytesTooLong { what, len });
    }

    /// Appends raw bytes with no length: copied if at most [`PAYLOAD_INLINE_BYTES_MAX`] bytes,
    /// otherwise emitted as its own chunk (a reference-count bump).
    pub fn payload(&mut self, b: &Bytes) {
        if b.len() <= PAYLOAD_INLINE_BYTES_MAX {
            self.buf.put_slice(b);
            return;
        }
        self.flush();
        self.flushed_bytes += b.len();
        self.chunks.push(b.clone());
    }

    /// Writes a non-null array.
    pub fn array<T: Wire>(&mut self, items: &[T], version: u16, what: &'static str) {
        self.len32(
            items.len(),
            EncodeError::ArrayTooLong {
                what,
                len: items.len(),
            },
        );
        for item in items {
            item.encode(self, version, what);
        }
    }

    /// Writes a nullable array.
    pub fn nullable_array<T: Wire>(
        &mut self,
        items: Option<&[T]>,
        version: u16,
        what: &'static str,
    ) {
        match items {
            Some(items) => self.array(items, version, what),
            None => self.buf.put_u32(LEN32_NULL),
        }
    }

    /// Moves the buffer into the chunk list.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let part = self.buf.split();
        self.flushed_bytes += part.len();
        if self.head.is_none() && self.chunks.is_empty() {
            self.head = Some(part);
        } else {
            self.chunks.push(part.freeze());
        }
    }

    /// The encoded chunks, in order, or the first problem met. For a frame, patches the length
    /// prefix (failing with [`EncodeError::FrameTooLarge`] past `u32::MAX`).
    pub fn finish(mut self) -> Result<Vec<Bytes>, EncodeError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if self.length_prefixed {
            let frame_bytes = self.len_bytes() - 4;
            let Ok(prefix) = u32::try_from(frame_bytes) else {
                return Err(EncodeError::FrameTooLarge {
                    frame_bytes,
                    frame_bytes_max: u32::MAX,
                });
            };
            // The prefix was the first thing written, so it is in `head` or, if nothing was
            // flushed, at the start of `buf`.
            let first = self.head.as_mut().unwrap_or(&mut self.buf);
            first[..4].copy_from_slice(&prefix.to_be_bytes());
        }
        let mut out = Vec::with_capacity(self.chunks.len() + 2);
        if let Some(head) = self.head.take() {
            out.push(head.freeze());
        }
        out.append(&mut self.chunks);
        if !self.buf.is_empty() {
            out.push(self.buf.freeze());
        }
        Ok(out)
    }
}

/// Concatenates encoded chunks into one contiguous buffer (one copy; for tests and callers that
/// cannot send chunk lists).
pub fn concat_chunks(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        _ => {
            let len = chunks.iter().map(Bytes::len).sum();
            let mut out = BytesMut::with_capacity(len);
            for chunk in chunks {
                out.put_slice(chunk);
            }
            out.freeze()
        }
    }
}

/// Implements [`Wire`] for a fixed-width integer through the matching `Reader`/`Encoder` methods.
macro_rules! wire_int {
    ($($ty:ty => $method:ident, $bytes:literal;)*) => {$(
        impl Wire for $ty {
            const WIRE_BYTES_MIN: usize = $bytes;
            fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
                r.$method(what)
            }
            fn encode(&self, w: &mut Encoder, _version: u16, _what: &'static str) {
                w.$method(*self);
            }
        }
    )*};
}

wire_int! {
    i8 => i8, 1;
    u16 => u16, 2;
    i16 => i16, 2;
    u32 => u32, 4;
    i32 => i32, 4;
    i64 => i64, 8;
    bool => bool, 1;
}

impl Wire for String {
    const WIRE_BYTES_MIN: usize = 2;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        r.string(what)
    }
    fn encode(&self, w: &mut Encoder, _version: u16, what: &'static str) {
        w.string(self, what);
    }
}

impl Wire for Option<String> {
    const WIRE_BYTES_MIN: usize = 2;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        r.nullable_string(what)
    }
    fn encode(&self, w: &mut Encoder, _version: u16, what: &'static str) {
        w.nullable_string(self.as_deref(), what);
    }
}

impl Wire for Bytes {
    const WIRE_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        r.bytes(what)
    }
    fn encode(&self, w: &mut Encoder, _version: u16, what: &'static str) {
        w.bytes(self, what);
    }
}

impl Wire for Option<Bytes> {
    const WIRE_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        r.nullable_bytes(what)
    }
    fn encode(&self, w: &mut Encoder, _version: u16, what: &'static str) {
        w.nullable_bytes(self.as_ref(), what);
    }
}

impl<T: Wire> Wire for Vec<T> {
    const WIRE_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader, version: u16, what: &'static str) -> Result<Self, DecodeError> {
        r.array(version, what)
    }
    fn encode(&self, w: &mut Encoder, version: u16, what: &'static str) {
        w.array(self, version, what);
    }
}

impl<T: Wire> Wire for Option<Vec<T>> {
    const WIRE_BYTES_MIN: usize = 4;
    fn decode(r: &mut Reader, version: u16, what: &'static str) -> Result<Self, DecodeError> {
        r.nullable_array(version, what)
    }
    fn encode(&self, w: &mut Encoder, version: u16, what: &'static str) {
        w.nullable_array(self.as_deref(), version, what);
    }
}

impl Wire for ErrorCode {
    const WIRE_BYTES_MIN: usize = 2;
    fn decode(r: &mut Reader, _version: u16, what: &'static str) -> Result<Self, DecodeError> {
        Ok(ErrorCode::from_code(r.i16(what)?))
    }
    fn encode(&self, w: &mut Encoder, _version: u16, _what: &'static str) {
        w.i16(self.code());
    }
}

/// Defines a message struct whose wire form is its fields in declaration order, each through its
/// own [`Wire`] impl. Used for every version-0 type; a later version with different fields gets a
/// hand-written impl.
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::protocol::codec::Wire for $name {
            const WIRE_BYTES_MIN: usize =
                0 $( + <$ty as $crate::protocol::codec::Wire>::WIRE_BYTES_MIN )*;
            // A struct without fields (an empty request body) reads and writes nothing.
            #[allow(unused_variables)]
            fn decode(
                r: &mut $crate::protocol::codec::Reader,
                version: u16,
                _what: &'static str,
            ) -> Result<Self, $crate::protocol::codec::DecodeError> {
                Ok($name {
                    $( $field: <$ty as $crate::protocol::codec::Wire>::decode(
                        r, version, stringify!($field))?, )*
                })
            }
            #[allow(unused_variables)]
            fn encode(
                &self,
                w: &mut $crate::protocol::codec::Encoder,
                version: u16,
                _what: &'static str,
            ) {
                $( <$ty as $crate::protocol::codec::Wire>::encode(
                    &self.$field, w, version, stringify!($field)); )*
            }
        }
    };
}
pub(crate) use wire_struct;
