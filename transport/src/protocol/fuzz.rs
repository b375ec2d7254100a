//! Entry points shared by the cargo-fuzz targets (`transport/fuzz/`) and the ordinary tests that
//! run them over seeded random inputs, so both exercise exactly the same code.
//!
//! Each entry point takes arbitrary bytes, must never panic on them, and asserts the protocol's
//! properties; a panic here is a bug in the protocol code, not in the input.

use bytes::Bytes;

use super::api_key::ApiKey;
use super::codec::concat_chunks;
use super::frame::{FrameDecoder, FrameError, ResponseHeader};
use super::message::{
    decode_request_frame, decode_response_frame, encode_request_frame, encode_response_frame,
};

/// `frame_bytes_max` used by [`frame_decoder`]: small, so the limit is hit often.
pub const FUZZ_FRAME_BYTES_MAX: u32 = 1 << 16;

/// What one [`frame_decoder`] run reached, so tests can check their inputs cover the paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FuzzOutcome {
    /// Frames cut from the input.
    pub frames: usize,
    /// Frames that decoded as a request.
    pub requests: usize,
    /// (frame, api) pairs that decoded as a response.
    pub responses: usize,
    /// Whether framing stopped on an error.
    pub frame_error: bool,
}

/// Feeds `data[1..]` to two [`FrameDecoder`]s, one in a single push and one in chunks whose sizes
/// derive from `data[0]` (alternating `push` and `push_bytes`), and asserts that both yield the
/// same frames and the same error. Then decodes every frame as a request and as a response of
/// every api, and asserts that whatever decodes re-encodes to exactly the same bytes.
pub fn frame_decoder(data: &[u8]) -> FuzzOutcome {
    let Some((&seed, stream)) = data.split_first() else {
        return FuzzOutcome::default();
    };

    let mut whole = FrameDecoder::new(FUZZ_FRAME_BYTES_MAX);
    let whole_result = whole.push(stream).and_then(|()| whole.finish());
    let whole_frames: Vec<Bytes> = std::iter::from_fn(|| whole.pop_frame()).collect();

    let (chunked_frames, chunked_result) = feed_in_chunks(stream, seed);
    assert_eq!(whole_frames, chunked_frames, "chunking changed the frames");
    assert_eq!(whole_result, chunked_result, "chunking changed the outcome");

    let mut outcome = FuzzOutcome {
        frames: whole_frames.len(),
        frame_error: matches!(
            whole_result,
            Err(FrameError::TooLarge { .. } | FrameError::TooShort { .. })
        ),
        ..FuzzOutcome::default()
    };
    for frame in whole_frames {
        if check_request(&frame) {
            outcome.requests += 1;
        }
        outcome.responses += check_responses(&frame);
    }
    outcome
}

/// Feeds `stream` in pseudo-random chunks of 1..=64 bytes; returns the frames and the result.
fn feed_in_chunks(stream: &[u8], seed: u8) -> (Vec<Bytes>, Result<(), FrameError>) {
    let mut decoder = FrameDecoder::new(FUZZ_FRAME_BYTES_MAX);
    let mut frames = Vec::new();
    let mut state = u32::from(seed) | 0x100;
    let mut rest = stream;
    let mut use_bytes = false;
    let mut result = Ok(());
    while !rest.is_empty() && result.is_ok() {
        // xorshift32: deterministic chunk sizes from the seed.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (usize::try_from(state % 64).unwrap_or(0) + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        result = if use_bytes {
            decoder.push_bytes(Bytes::copy_from_slice(chunk))
        } else {
            decoder.push(chunk)
        };
        use_bytes = !use_bytes;
        frames.extend(std::iter::from_fn(|| decoder.pop_frame()));
    }
    let result = result.and_then(|()| decoder.finish());
    frames.extend(std::iter::from_fn(|| decoder.pop_frame()));
    (frames, result)
}

/// Decodes `frame` as a request; if it decodes, asserts it re-encodes to the same bytes.
fn check_request(frame: &Bytes) -> bool {
    let Ok((header, request)) = decode_request_frame(frame.clone()) else {
        return false;
    };
    let chunks = encode_request_frame(&header, &request, u32::MAX)
        .unwrap_or_else(|e| panic!("decoded request does not re-encode: {e}"));
    assert_eq!(
        concat_chunks(&chunks).slice(4..),
        *frame,
        "request re-encoding differs"
    );
    true
}

/// Decodes `frame` as a version-0 response of every api; asserts each success re-encodes to the
/// same bytes. Returns how many apis accepted it.
fn check_responses(frame: &Bytes) -> usize {
    let peeked = ResponseHeader::peek(frame);
    let mut decoded = 0;
    for api_key in ApiKey::ALL {
        let Ok((header, response)) = decode_response_frame(frame.clone(), api_key, 0) else {
            continue;
        };
        assert_eq!(Ok(header), peeked, "peek disagrees with decode");
        let chunks = encode_response_frame(&header, 0, &response, u32::MAX)
            .unwrap_or_else(|e| panic!("decoded response does not re-encode: {e}"));
        assert_eq!(
            concat_chunks(&chunks).slice(4..),
            *frame,
            "response re-encoding differs"
        );
        decoded += 1;
    }
    decoded
}
