//! Framing: the `u32` length prefix, the fixed request and response headers, and the streaming
//! [`FrameDecoder`] that cuts a byte stream into frames.
//!
//! A frame is `length: u32` (big-endian, bytes that follow) then a header then a body:
//! ```text
//! request frame:  length u32 | api_key u16 | api_version u16 | correlation_id u32
//!                            | client_id nullable string | body
//! response frame: length u32 | correlation_id u32 | error_code i16 | body
//! ```
//! The response header's `error_code` is the request-level outcome: `0` (None) means the body
//! that follows is the api's typed response; any other code means the request was rejected as a
//! whole (unknown api, unsupported version, malformed body, throttled, ...) and the body is
//! empty. Putting it in the header keeps a rejection readable for any api, even one the client
//! cannot decode, without making any body length ambiguous.
//!
//! Invariants of [`FrameDecoder`]:
//! - A declared length above `frame_bytes_max` (or below [`FRAME_BYTES_MIN`]) is rejected as soon
//!   as the 4 prefix bytes are seen, before any of the frame's body is buffered.
//! - It buffers at most one partial frame: at most `frame_bytes_max + 4` bytes, and the buffer for
//!   a frame is first sized to at most [`FRAME_PREALLOC_BYTES_MAX`], growing only as bytes arrive.
//! - Each completed frame is one `Bytes` holding exactly its header and body. Bytes given to
//!   [`FrameDecoder::push`] are copied once (into the frame's own buffer); frames that lie whole
//!   inside a chunk given to [`FrameDecoder::push_bytes`] are sliced out with no copy.
//! - The first framing error is final: the stream cannot be resynchronised, so every later call
//!   returns the same error and the caller closes the stream.
//! - Chunk boundaries do not matter: any split of the same bytes yields the same frames.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use zerocopy::byteorder::big_endian::{I16, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::codec::{DecodeError, Reader};

/// Bytes of the length prefix.
pub const FRAME_LEN_PREFIX_BYTES: usize = 4;
/// Default `frame_bytes_max`: 64 MiB, above Kafka's 50 MiB default fetch `max_bytes` plus
/// headers, and bounding one partial frame per stream.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 64 << 20;
/// Smallest valid frame (after the prefix): a response header.
pub const FRAME_BYTES_MIN: u32 = RESPONSE_HEADER_FIXED_BYTES as u32;
/// Largest buffer reserved for a frame before its bytes arrive; larger frames grow as data comes,
/// so a peer cannot make the decoder allocate `frame_bytes_max` by sending 4 bytes.
pub const FRAME_PREALLOC_BYTES_MAX: usize = 64 << 10;
/// Bytes of [`RequestHeaderFixed`].
pub const REQUEST_HEADER_FIXED_BYTES: usize = 8;
/// Bytes of [`ResponseHeaderFixed`].
pub const RESPONSE_HEADER_FIXED_BYTES: usize = 6;

/// The fixed part of a request header, as laid out on the wire.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct RequestHeaderFixed {
    /// [`super::ApiKey`] number.
    pub api_key: U16,
    /// Version of the api's request and response bodies.
    pub api_version: U16,
    /// Chosen by the client, echoed in the response.
    pub correlation_id: U32,
}

/// The fixed part of a response header, as laid out on the wire.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Debug, Clone, Copy)]
#[repr(C)]
pub struct ResponseHeaderFixed {
    /// The request's correlation id.
    pub correlation_id: U32,
    /// Request-level [`super::ErrorCode`]: 0 for a typed body, anything else for a rejection
    /// with an empty body.
    pub error_code: I16,
}

const _: () = assert!(core::mem::size_of::<RequestHeaderFixed>() == REQUEST_HEADER_FIXED_BYTES);
const _: () = assert!(core::mem::size_of::<ResponseHeaderFixed>() == RESPONSE_HEADER_FIXED_BYTES);

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// The raw api key: kept raw so that a header with an unknown key still decodes and the
    /// broker can answer it with its correlation id.
    pub api_key: u16,
    /// Version of the body.
    pub api_version: u16,
    /// Chosen by the client, echoed in the response.
    pub correlation_id: u32,
    /// Free-form client name for logs and metrics.
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Reads the header from the start of a frame.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let fixed: RequestHeaderFixed = r.fixed("request header")?;
        Ok(RequestHeader {
            api_key: fixed.api_key.get(),
            api_version: fixed.api_version.get(),
            correlation_id: fixed.correlation_id.get(),
            client_id: r.nullable_string("client_id")?,
        })
    }
}

/// A decoded response header. (Its wire `error_code` is carried by
/// [`Response::Rejected`](super::Response::Rejected) instead.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseHeader {
    /// The request's correlation id.
    pub correlation_id: u32,
}

impl ResponseHeader {
    /// Reads only the correlation id of a response frame, to find the pending request (and so
    /// the api and version) before decoding the rest with
    /// [`decode_response_frame`](super::decode_response_frame).
    pub fn peek(frame: &[u8]) -> Result<Self, DecodeError> {
        let (fixed, _) =
            ResponseHeaderFixed::read_from_prefix(frame).map_err(|_| DecodeError::Truncated {
                what: "response header",
                need: RESPONSE_HEADER_FIXED_BYTES,
                have: frame.len(),
            })?;
        Ok(ResponseHeader {
            correlation_id: fixed.correlation_id.get(),
        })
    }
}

/// Why a byte stream could not be cut into frames. Final for the stream: close it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds the limit; nothing of the frame was buffered.
    #[error("frame of {frame_bytes} bytes exceeds frame_bytes_max {frame_bytes_max}")]
    TooLarge {
        /// The declared length.
        frame_bytes: u32,
        /// The decoder's limit.
        frame_bytes_max: u32,
    },
    /// The length prefix is below [`FRAME_BYTES_MIN`]: no header fits.
    #[error("frame of {frame_bytes} bytes is shorter than the minimum {FRAME_BYTES_MIN}")]
    TooShort {
        /// The declared length.
        frame_bytes: u32,
    },
    /// The stream ended inside a frame (reported by [`FrameDecoder::finish`]).
    #[error("stream ended inside a frame: {buffered_bytes} bytes buffered")]
    Truncated {
        /// Bytes of the unfinished frame (prefix included) received.
        buffered_bytes: usize,
    },
}

/// The frame being received.
#[derive(Debug)]
enum Partial {
    /// Inside the length prefix: this many of its bytes received.
    Prefix {
        bytes: [u8; FRAME_LEN_PREFIX_BYTES],
        filled: usize,
    },
    /// Inside the frame of declared length `frame_bytes`.
    Body { buf: BytesMut, frame_bytes: usize },
}

/// Cuts a byte stream, delivered in chunks of any size, into frames (header + body, without the
/// length prefix). Sans-IO: feed it with [`FrameDecoder::push`] or [`FrameDecoder::push_bytes`],
/// take frames with [`FrameDecoder::pop_frame`].
///
/// ```
/// use quiver_transport::protocol::{FrameDecoder, FrameError};
///
/// let mut decoder = FrameDecoder::new(1024);
/// decoder.push(&[0, 0, 0, 6, 0, 0, 0]).unwrap(); // a 6-byte frame, half received
/// assert!(decoder.pop_frame().is_none());
/// decoder.push(&[7, 0, 0]).unwrap();
/// assert_eq!(&decoder.pop_frame().unwrap()[..], &[0, 0, 0, 7, 0, 0]);
///
/// // A frame above the limit is refused from its prefix alone.
/// let err = decoder.push(&[0, 0, 0x10, 0]).unwrap_err();
/// assert_eq!(err, FrameError::TooLarge { frame_bytes: 4096, frame_bytes_max: 1024 });
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    frame_bytes_max: u32,
    partial: Partial,
    ready: VecDeque<Bytes>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `frame_bytes_max` bytes (after the prefix).
    pub fn new(frame_bytes_max: u32) -> Self {
        assert!(
            frame_bytes_max >= FRAME_BYTES_MIN,
            "frame_bytes_max {frame_bytes_max} cannot hold a header"
        );
        FrameDecoder {
            frame_bytes_max,
            partial: Partial::Prefix {
                bytes: [0; FRAME_LEN_PREFIX_BYTES],
                filled: 0,
            },
            ready: VecDeque::new(),
            failed: None,
        }
    }

    /// The limit this decoder enforces.
    pub fn frame_bytes_max(&self) -> u32 {
        self.frame_bytes_max
    }

    /// Bytes of the unfinished frame held (prefix included); 0 between frames.
    pub fn buffered_bytes(&self) -> usize {
        match &self.partial {
            Partial::Prefix { filled, .. } => *filled,
            Partial::Body { buf, .. } => FRAME_LEN_PREFIX_BYTES + buf.len(),
        }
    }

    /// Completed frames not yet taken.
    pub fn ready_frames(&self) -> usize {
        self.ready.len()
    }

    /// Takes the oldest completed frame.
    pub fn pop_frame(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// Feeds bytes, copying them once. Frames completed before an error stay available from
    /// [`FrameDecoder::pop_frame`]; the error is final.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        while !data.is_empty() {
            match &mut self.partial {
                Partial::Prefix { bytes, filled } => {
                    let take = (FRAME_LEN_PREFIX_BYTES - *filled).min(data.len());
                    bytes[*filled..*filled + take].copy_from_slice(&data[..take]);
                    *filled += take;
                    data = &data[take..];
                    if *filled == FRAME_LEN_PREFIX_BYTES {
                        let declared_bytes = u32::from_be_bytes(*bytes);
                        let frame_bytes = self.check_len(declared_bytes)?;
                        self.partial = Partial::Body {
                            buf: BytesMut::with_capacity(frame_bytes.min(FRAME_PREALLOC_BYTES_MAX)),
                            frame_bytes,
                        };
                    }
                }
                Partial::Body { buf, frame_bytes } => {
                    let take = (*frame_bytes - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() == *frame_bytes {
                        let frame = core::mem::take(buf).freeze();
                        self.ready.push_back(frame);
                        self.partial = Partial::Prefix {
                            bytes: [0; FRAME_LEN_PREFIX_BYTES],
                            filled: 0,
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// Feeds a chunk the caller owns as `Bytes` (e.g. from QUIC). Frames lying whole inside it,
    /// starting at a frame boundary, are sliced out without copying (they keep the chunk's
    /// allocation alive); the rest goes through [`FrameDecoder::push`].
    pub fn push_bytes(&mut self, mut data: Bytes) -> Result<(), FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        while matches!(self.partial, Partial::Prefix { filled: 0, .. })
            && data.len() >= FRAME_LEN_PREFIX_BYTES
        {
            let mut prefix = [0; FRAME_LEN_PREFIX_BYTES];
            prefix.copy_from_slice(&data[..FRAME_LEN_PREFIX_BYTES]);
            let frame_bytes = self.check_len(u32::from_be_bytes(prefix))?;
            if data.len() < FRAME_LEN_PREFIX_BYTES + frame_bytes {
                break;
            }
            let mut frame = data.split_to(FRAME_LEN_PREFIX_BYTES + frame_bytes);
            let _prefix = frame.split_to(FRAME_LEN_PREFIX_BYTES);
            self.ready.push_back(frame);
        }
        self.push(&data)
    }

    /// Reports whether the stream may end here: an error if a frame is unfinished (or a framing
    /// error happened earlier).
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.buffered_bytes() {
            0 => Ok(()),
            buffered_bytes => Err(FrameError::Truncated { buffered_bytes }),
        }
    }

    /// Validates a declared frame length; on failure, poisons the decoder.
    fn check_len(&mut self, frame_bytes: u32) -> Result<usize, FrameError> {
        let error = if frame_bytes > self.frame_bytes_max {
            FrameError::TooLarge {
                frame_bytes,
                frame_bytes_max: self.frame_bytes_max,
            }
        } else if frame_bytes < FRAME_BYTES_MIN {
            FrameError::TooShort { frame_bytes }
        } else {
            // Bounded by frame_bytes_max, a u32, which fits usize on Quiver's targets.
            return Ok(usize::try_from(frame_bytes).unwrap_or(usize::MAX));
        };
        // Nothing of a refused frame stays buffered, not even its prefix.
        self.partial = Partial::Prefix {
            bytes: [0; FRAME_LEN_PREFIX_BYTES],
            filled: 0,
        };
        self.failed = Some(error.clone());
        Err(error)
    }
}
