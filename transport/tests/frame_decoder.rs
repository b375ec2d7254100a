//! `FrameDecoder`: chunking never changes the frames, limits are enforced from the length prefix
//! before anything is buffered, errors are final, and `push_bytes` slices whole frames without
//! copying.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use quiver_transport::protocol::*;
use rand::Rng;

/// A stream of random valid request and response frames, and the frames it holds.
fn random_stream(g: &mut Gen, frames: usize) -> (Bytes, Vec<Bytes>) {
    let mut stream = BytesMut::new();
    let mut expected = Vec::new();
    for i in 0..frames {
        let framed = if i % 2 == 0 {
            arb_request_frame(g).2
        } else {
            arb_response_frame(g).3
        };
        expected.push(framed.slice(FRAME_LEN_PREFIX_BYTES..));
        stream.put_slice(&framed);
    }
    (stream.freeze(), expected)
}

fn drain(decoder: &mut FrameDecoder, into: &mut Vec<Bytes>) {
    into.extend(std::iter::from_fn(|| decoder.pop_frame()));
}

#[test]
fn byte_by_byte_and_random_chunks_yield_the_same_frames() {
    let mut g = Gen::new(0xc4c4);
    for round in 0..20 {
        let (stream, expected) = random_stream(&mut g, 30);

        let (whole, result) = frames_of(&stream, FRAME_BYTES_MAX_DEFAULT);
        result.unwrap();
        assert_eq!(whole, expected, "round {round}: whole");

        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let mut byte_by_byte = Vec::new();
        for byte in stream.iter() {
            decoder.push(std::slice::from_ref(byte)).unwrap();
            drain(&mut decoder, &mut byte_by_byte);
        }
        decoder.finish().unwrap();
        assert_eq!(byte_by_byte, expected, "round {round}: byte by byte");

        for use_bytes in [false, true] {
            let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
            let mut chunked = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let size = g.rng.gen_range(1..=3000).min(stream.len() - at);
                let chunk = stream.slice(at..at + size);
                if use_bytes {
                    decoder.push_bytes(chunk).unwrap();
                } else {
                    decoder.push(&chunk).unwrap();
                }
                at += size;
                drain(&mut decoder, &mut chunked);
                if at < stream.len() {
                    assert!(decoder.buffered_bytes() <= FRAME_BYTES_MAX_DEFAULT as usize + 4);
                }
            }
            decoder.finish().unwrap();
            assert_eq!(
                chunked, expected,
                "round {round}: chunks, push_bytes={use_bytes}"
            );
        }
    }
}

#[test]
fn push_bytes_slices_whole_frames_without_copying() {
    let mut g = Gen::new(0xc4c5);
    let (stream, expected) = random_stream(&mut g, 10);
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    decoder.push_bytes(stream.clone()).unwrap();
    let frames: Vec<Bytes> = std::iter::from_fn(|| decoder.pop_frame()).collect();
    assert_eq!(frames, expected);
    let range = stream.as_ptr_range();
    for frame in &frames {
        assert!(range.contains(&frame.as_ptr()), "frame was copied");
    }
}

#[test]
fn oversize_frame_is_rejected_before_buffering() {
    let frame_bytes_max = 1024;
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    // A declared length one past the limit, followed by a body the decoder must not take in.
    let mut stream = (frame_bytes_max + 1).to_be_bytes().to_vec();
    stream.extend(std::iter::repeat_n(0xAB, 1 << 20));
    let error = decoder.push(&stream).unwrap_err();
    assert_eq!(
        error,
        FrameError::TooLarge {
            frame_bytes: frame_bytes_max + 1,
            frame_bytes_max
        }
    );
    assert_eq!(
        decoder.buffered_bytes(),
        0,
        "refused frame left bytes buffered"
    );
    assert_eq!(decoder.ready_frames(), 0);

    // The same through push_bytes, and with the prefix split across pushes.
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    assert_eq!(decoder.push_bytes(Bytes::from(stream)), Err(error.clone()));
    assert_eq!(decoder.buffered_bytes(), 0);
    let mut decoder = FrameDecoder::new(frame_bytes_max);
    decoder.push(&[0, 0]).unwrap();
    assert_eq!(decoder.buffered_bytes(), 2);
    assert_eq!(decoder.push(&[0x04, 0x01]), Err(error));
    assert_eq!(decoder.buffered_bytes(), 0);

    // The largest declared length is refused just the same.
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    assert_eq!(
        decoder.push(&[0xFF; 4]),
        Err(FrameError::TooLarge {
            frame_bytes: u32::MAX,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT
        })
    );
}

#[test]
fn frame_of_exactly_the_limit_is_accepted() {
    let frame_bytes_max: u32 = 4096;
    let mut stream = frame_bytes_max.to_be_bytes().to_vec();
    stream.extend(std::iter::repeat_n(1, frame_bytes_max as usize));
    let (frames, result) = frames_of(&stream, frame_bytes_max);
    result.unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].len(), frame_bytes_max as usize);
}

#[test]
fn too_short_frames_are_rejected() {
    for len in 0..FRAME_BYTES_MIN {
        let mut stream = len.to_be_bytes().to_vec();
        stream.extend(std::iter::repeat_n(0, len as usize));
        let (frames, result) = frames_of(&stream, FRAME_BYTES_MAX_DEFAULT);
        assert!(frames.is_empty());
        assert_eq!(result, Err(FrameError::TooShort { frame_bytes: len }));
    }
}

#[test]
fn errors_are_final_and_earlier_frames_survive() {
    let mut g = Gen::new(0xc4c6);
    let (stream, expected) = random_stream(&mut g, 3);
    let mut bad = stream.to_vec();
    bad.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    let error = decoder.push(&bad).unwrap_err();
    assert!(matches!(error, FrameError::TooLarge { .. }));
    let frames: Vec<Bytes> = std::iter::from_fn(|| decoder.pop_frame()).collect();
    assert_eq!(frames, expected, "frames before the bad prefix are kept");
    // Every later call reports the same error; nothing more is accepted.
    assert_eq!(decoder.push(&stream), Err(error.clone()));
    assert_eq!(decoder.push_bytes(stream.clone()), Err(error.clone()));
    assert_eq!(decoder.finish(), Err(error));
    assert_eq!(decoder.ready_frames(), 0);
}

#[test]
fn finish_reports_a_stream_cut_inside_a_frame() {
    let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
    assert_eq!(decoder.finish(), Ok(()));
    decoder.push(&[0, 0, 0]).unwrap();
    assert_eq!(
        decoder.finish(),
        Err(FrameError::Truncated { buffered_bytes: 3 })
    );
    decoder.push(&[10, 1, 2, 3]).unwrap();
    assert_eq!(
        decoder.finish(),
        Err(FrameError::Truncated { buffered_bytes: 7 })
    );
    decoder.push(&[4, 5, 6, 7, 8, 9, 10]).unwrap();
    assert_eq!(decoder.finish(), Ok(()));
    assert_eq!(
        &decoder.pop_frame().unwrap()[..],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    );
}

#[test]
#[should_panic(expected = "cannot hold a header")]
fn a_limit_below_the_smallest_header_is_a_bug() {
    let _ = FrameDecoder::new(FRAME_BYTES_MIN - 1);
}
