//! Fuzz target: arbitrary bytes through the `FrameDecoder` (whole and in chunks), then through
//! every request and response decoder, asserting chunking invariance and canonical re-encoding.
//! The body lives in `quiver_transport::protocol::fuzz` so the ordinary tests run it too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = quiver_transport::protocol::fuzz::frame_decoder(data);
});
