//! Untrusted bytes never panic: seeded random garbage and mutated valid frames go through the
//! same entry point as the cargo-fuzz target (`protocol::fuzz::frame_decoder`, which also checks
//! chunking invariance and canonical re-encoding), and straight into the frame decoders.

mod common;

use bytes::Bytes;
use common::*;
use quiver_transport::protocol::fuzz::{frame_decoder, FuzzOutcome};
use quiver_transport::protocol::*;
use rand::Rng;

const GARBAGE_INPUTS: usize = 25_000;
const MUTATED_INPUTS: usize = 10_000;

/// Decodes `frame` as a request and as every api's response; only checks that nothing panics.
fn decode_everything(frame: &Bytes) {
    let _ = decode_request_frame(frame.clone());
    let _ = ResponseHeader::peek(frame);
    for api_key in ApiKey::ALL {
        let _ = decode_response_frame(frame.clone(), api_key, 0);
    }
}

fn add(total: &mut FuzzOutcome, one: FuzzOutcome) {
    total.frames += one.frames;
    total.requests += one.requests;
    total.responses += one.responses;
    total.frame_error |= one.frame_error;
}

/// Random garbage: raw, and with a plausible length prefix so it reaches the body decoders.
#[test]
fn random_garbage_never_panics() {
    let mut g = Gen::new(0x9a4b);
    let mut total = FuzzOutcome::default();
    for _ in 0..GARBAGE_INPUTS {
        let len = g.rng.gen_range(0..300);
        let mut data = vec![0u8; len];
        g.rng.fill(&mut data[..]);
        if len > 5 && g.bool() {
            // data[0] seeds the chunking; data[1..5] is the frame length.
            let frame_bytes = u32::try_from(len - 5).unwrap();
            data[1..5].copy_from_slice(&frame_bytes.to_be_bytes());
        }
        if len > 11 && g.one_in(3) {
            // A real api key and version 0 in the request header position.
            let api_key = ApiKey::ALL[g.rng.gen_range(0..ApiKey::ALL.len())];
            data[5..7].copy_from_slice(&api_key.code().to_be_bytes());
            data[7..9].copy_from_slice(&[0, 0]);
        }
        add(&mut total, frame_decoder(&data));
        decode_everything(&Bytes::from(data));
    }
    assert!(
        total.frames > 1000,
        "garbage rarely reached the decoders: {total:?}"
    );
    assert!(total.frame_error);
}

/// Valid frames with a few bytes flipped, inserted or removed: close enough to real traffic to
/// get deep into the decoders, and sometimes decoding (which then must re-encode identically).
#[test]
fn mutated_frames_never_panic() {
    let mut g = Gen::new(0x9a4c);
    let mut total = FuzzOutcome::default();
    for i in 0..MUTATED_INPUTS {
        let framed = if i % 2 == 0 {
            arb_request_frame(&mut g).2
        } else {
            arb_response_frame(&mut g).3
        };
        let mut data = framed.to_vec();
        for _ in 0..g.rng.gen_range(1..4) {
            let at = g.rng.gen_range(0..data.len());
            match g.rng.gen_range(0..5) {
                0 => data[at] ^= 1 << g.rng.gen_range(0..8),
                1 => data[at] = g.rng.gen(),
                2 => data.insert(at, g.rng.gen()),
                3 => data[at] = data[at].wrapping_add(1),
                _ => {
                    data.remove(at);
                    if data.is_empty() {
                        break;
                    }
                }
            }
        }
        decode_everything(&Bytes::copy_from_slice(
            &data[FRAME_LEN_PREFIX_BYTES.min(data.len())..],
        ));
        let mut input = vec![g.rng.gen()];
        input.extend_from_slice(&data);
        add(&mut total, frame_decoder(&input));
    }
    assert!(
        total.requests > 100,
        "mutations never decoded as requests: {total:?}"
    );
    assert!(
        total.responses > 100,
        "mutations never decoded as responses: {total:?}"
    );
}

/// Unmutated valid frames through the fuzz entry point: it must decode every one of them.
#[test]
fn fuzz_entry_point_accepts_valid_streams() {
    let limit = quiver_transport::protocol::fuzz::FUZZ_FRAME_BYTES_MAX as usize;
    let mut g = Gen::new(0x9a4d);
    let mut checked = 0;
    for _ in 0..300 {
        let (_, _, request) = arb_request_frame(&mut g);
        let (_, _, _, response) = arb_response_frame(&mut g);
        if request.len().max(response.len()) > limit + FRAME_LEN_PREFIX_BYTES {
            continue; // over the entry point's deliberately small frame limit
        }
        let mut input = vec![g.rng.gen()];
        input.extend_from_slice(&request);
        input.extend_from_slice(&response);
        let outcome = frame_decoder(&input);
        assert_eq!(outcome.frames, 2, "{outcome:?}");
        assert!(outcome.requests >= 1, "{outcome:?}");
        assert!(outcome.responses >= 1, "{outcome:?}");
        assert!(!outcome.frame_error);
        checked += 1;
    }
    assert!(checked > 200, "only {checked} streams under the limit");
}

/// Array counts far beyond the input are refused before allocating.
#[test]
fn huge_counts_are_refused_before_allocating() {
    // ListTopics response: throttle_time_ms, then a topics count of 0xFFFF_FFFE.
    let mut frame = vec![0, 0, 0, 1, 0, 0]; // correlation id 1, error_code None
    frame.extend_from_slice(&[0, 0, 0, 0]); // throttle_time_ms
    frame.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFE]); // topics count
    frame.extend_from_slice(&[0; 64]);
    let error = decode_response_frame(Bytes::from(frame), ApiKey::ListTopics, 0).unwrap_err();
    assert_eq!(
        error,
        DecodeError::ArrayTooLong {
            what: "topics",
            count: 0xFFFF_FFFE,
            remaining: 64
        }
    );
    assert_eq!(error.error_code(), ErrorCode::InvalidRequest);

    // A byte field claiming more than the frame holds.
    let mut frame = vec![0, 2, 0, 0, 0, 0, 0, 9, 0xFF, 0xFF]; // Produce v0, corr 9, null client
    frame.extend_from_slice(&[0xFF, 0xFF, 0, 1, 0, 0, 0, 0]); // txn id null, acks 1, timeout 0
    frame.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1]); // 1 topic "t", 1 partition
    frame.extend_from_slice(&[0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF]); // partition 0, 2 GiB records
    let error = decode_request_frame(Bytes::from(frame)).unwrap_err();
    assert!(matches!(
        error.error,
        DecodeError::Truncated {
            what: "records",
            ..
        }
    ));
    assert_eq!(error.header.unwrap().correlation_id, 9);
}
