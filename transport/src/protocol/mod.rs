//! The Quiver binary protocol, sans-IO: bytes in, typed values out, and back. It owns the frame
//! format, the request and response types of every api, and the wire error codes; it does no IO
//! and keeps no state beyond a [`FrameDecoder`]'s partial frame, so it runs wherever the bytes
//! are (the broker's shards on glommio, the SDK on tokio) and depends on neither.
//!
//! # Wire format
//! Every message on a QUIC stream is a frame (see [`frame`] for the layout): a `u32` big-endian
//! length, then a request header (api key, api version, correlation id, client id) or a response
//! header (correlation id, request-level error code), then the body of that api and version ([`messages`]). Integers are
//! big-endian; strings are `u16`-length-prefixed UTF-8, byte fields and arrays `u32`-prefixed,
//! with an all-ones length meaning null ([`codec`]).
//!
//! A client sends [`ApiVersionsRequest`] first and picks, per api, the newest version both sides
//! speak ([`ApiVersionsResponse::negotiate`]). Apis are numbered by [`ApiKey`] (the table, with
//! the key ranges reserved for groups, offsets, transactions, replication and the controller, is
//! in [`api_key`]); errors by [`ErrorCode`] (table in [`error_code`]).
//!
//! # Invariants
//! - Untrusted bytes never panic and never allocate without bound: framing enforces
//!   `frame_bytes_max` from the length prefix alone, and decoding checks every length and count
//!   against the bytes actually present and caps what it allocates at a fixed multiple of the
//!   frame ([`decode_alloc_bytes_max`]). Every failure is a typed error ([`FrameError`],
//!   [`DecodeError`]), and [`DecodeError::error_code`] names the wire error to answer with.
//! - Record batches are opaque `Bytes`, sliced from the received frame on decode (no copy) and
//!   emitted as their own chunks on encode (no copy), ready for QUIC `write_chunks`.
//! - Numbers are stable: an api key or error code, once released, is never reused or
//!   renumbered; a version, once released, never changes layout.
//! - Encoding is canonical: every frame that decodes re-encodes to the same bytes.
//!
//! # Example
//! ```
//! use quiver_transport::protocol::*;
//!
//! // Client: encode a request frame.
//! let header = RequestHeader {
//!     api_key: ApiKey::ListTopics.code(),
//!     api_version: 0,
//!     correlation_id: 7,
//!     client_id: Some("cli".into()),
//! };
//! let request = Request::from(ListTopicsRequest { include_internal: false });
//! let chunks = encode_request_frame(&header, &request, FRAME_BYTES_MAX_DEFAULT).unwrap();
//!
//! // Broker: cut the stream into frames and decode them.
//! let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
//! for chunk in chunks {
//!     decoder.push_bytes(chunk).unwrap();
//! }
//! let frame = decoder.pop_frame().unwrap();
//! let (got_header, got_request) = decode_request_frame(frame).unwrap();
//! assert_eq!((got_header, got_request), (header, request));
//! ```

pub mod api_key;
pub mod codec;
pub mod error_code;
pub mod frame;
pub mod fuzz;
pub mod message;
pub mod messages;
pub mod records;

pub use api_key::{ApiKey, RESERVED_API_KEY_RANGES};
pub use codec::{
    concat_chunks, decode_alloc_bytes_max, DecodeError, EncodeError, Encoder, Reader, Wire,
    ARRAY_LEN_MAX, BYTES_LEN_MAX, DECODE_ALLOC_BYTES_PER_INPUT_BYTE_MAX, DECODE_ALLOC_SLACK_BYTES,
    PAYLOAD_INLINE_BYTES_MAX, STRING_BYTES_MAX,
};
pub use error_code::ErrorCode;
pub use frame::{
    FrameDecoder, FrameError, RequestHeader, RequestHeaderFixed, ResponseHeader,
    ResponseHeaderFixed, FRAME_BYTES_MAX_DEFAULT, FRAME_BYTES_MIN, FRAME_LEN_PREFIX_BYTES,
    FRAME_PREALLOC_BYTES_MAX, REQUEST_HEADER_FIXED_BYTES, RESPONSE_HEADER_FIXED_BYTES,
};
pub use message::{
    decode_request_frame, decode_response_frame, encode_request_frame, encode_response_frame,
    Request, RequestDecodeError, Response,
};
pub use messages::*;
pub use records::Records;
