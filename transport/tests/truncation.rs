//! Every truncation of a valid frame is an error, never a panic and never a different value:
//! at the stream level (the `FrameDecoder` yields nothing and `finish` reports the cut) and at
//! the frame level (a frame cut short, as a lying length prefix would deliver it, fails to
//! decode).

mod common;

use bytes::Bytes;
use common::*;
use quiver_transport::protocol::*;

const FRAMES: usize = 300;
/// Frames longer than this have a sample of their prefixes checked instead of all of them.
const ALL_PREFIXES_BYTES_MAX: usize = 2048;

/// The prefix lengths to check for a frame of `len` bytes: all, or for long frames every length
/// near either end plus an even spread in between.
fn prefix_lengths(len: usize) -> Vec<usize> {
    if len <= ALL_PREFIXES_BYTES_MAX {
        return (0..len).collect();
    }
    let mut lens: Vec<usize> = (0..512).chain(len - 512..len).collect();
    lens.extend((512..len - 512).step_by((len / 1024).max(1)));
    lens
}

/// The errors a cut can cause: running out inside a field, or an array count that the remaining
/// bytes can no longer hold.
fn is_truncation(e: &DecodeError) -> bool {
    matches!(
        e,
        DecodeError::Truncated { .. } | DecodeError::ArrayTooLong { .. }
    )
}

fn check_stream_truncations(framed: &Bytes) {
    for cut in prefix_lengths(framed.len()) {
        let (frames, result) = frames_of(&framed[..cut], u32::MAX);
        assert!(frames.is_empty(), "cut at {cut} yielded a frame");
        if cut == 0 {
            assert_eq!(result, Ok(()), "an empty stream is a clean end");
        } else {
            assert_eq!(
                result,
                Err(FrameError::Truncated {
                    buffered_bytes: cut
                }),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn every_truncated_request_is_an_error() {
    let mut g = Gen::new(0x7a11);
    let mut checked = 0usize;
    for _ in 0..FRAMES {
        let (_, _, framed) = arb_request_frame(&mut g);
        check_stream_truncations(&framed);
        let frame = framed.slice(FRAME_LEN_PREFIX_BYTES..);
        for cut in prefix_lengths(frame.len()) {
            let result = decode_request_frame(frame.slice(..cut));
            let Err(e) = result else {
                panic!("cut at {cut} of {} decoded: {result:?}", frame.len());
            };
            assert!(is_truncation(&e.error), "cut at {cut}: {e:?}");
            checked += 1;
        }
    }
    assert!(checked > 10_000, "checked only {checked} truncations");
}

#[test]
fn every_truncated_response_is_an_error() {
    let mut g = Gen::new(0x7a12);
    let mut checked = 0usize;
    for _ in 0..FRAMES {
        let (api_key, _, _, framed) = arb_response_frame(&mut g);
        check_stream_truncations(&framed);
        let frame = framed.slice(FRAME_LEN_PREFIX_BYTES..);
        for cut in prefix_lengths(frame.len()) {
            let result = decode_response_frame(frame.slice(..cut), api_key, 0);
            assert!(
                matches!(&result, Err(e) if is_truncation(e)),
                "cut at {cut} of {}: {result:?}",
                frame.len()
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "checked only {checked} truncations");
}

/// The opposite of truncation: a valid frame with bytes appended does not decode either.
#[test]
fn trailing_bytes_are_an_error() {
    let mut g = Gen::new(0x7a13);
    for _ in 0..FRAMES {
        let (_, _, framed) = arb_request_frame(&mut g);
        let mut longer = framed.slice(FRAME_LEN_PREFIX_BYTES..).to_vec();
        longer.push(0);
        let e = decode_request_frame(Bytes::from(longer)).unwrap_err();
        assert_eq!(e.error, DecodeError::TrailingBytes { count: 1 });
        assert!(e.header.is_some());

        let (api_key, _, _, framed) = arb_response_frame(&mut g);
        let mut longer = framed.slice(FRAME_LEN_PREFIX_BYTES..).to_vec();
        longer.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            decode_response_frame(Bytes::from(longer), api_key, 0),
            Err(DecodeError::TrailingBytes { count: 3 })
        );
    }
}
