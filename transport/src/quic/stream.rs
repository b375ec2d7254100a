//! Frames over quinn streams: cut a receive stream into frames with a [`FrameDecoder`], write
//! a frame's chunks without copying them. Runtime-agnostic (quinn streams are plain futures), so
//! the broker (glommio) and the SDK (tokio) share it.

use bytes::Bytes;

use crate::protocol::{FrameDecoder, FrameError};

/// Why a frame could not be read from or written to a stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The peer reset the stream or the connection failed.
    #[error("reading: {0}")]
    Read(#[from] quinn::ReadError),
    /// The peer stopped the stream or the connection failed.
    #[error("writing: {0}")]
    Write(#[from] quinn::WriteError),
    /// The bytes are not a valid frame (too large, too short, truncated by the end of stream).
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The stream was already finished.
    #[error("stream already finished")]
    Closed,
}

/// Reads the next whole frame (length prefix included). `Ok(None)` means the peer finished the
/// stream cleanly between frames; a stream that ends inside a frame is an error.
pub async fn read_frame(
    recv: &mut quinn::RecvStream,
    decoder: &mut FrameDecoder,
) -> Result<Option<Bytes>, StreamError> {
    loop {
        if let Some(frame) = decoder.pop_frame() {
            return Ok(Some(frame));
        }
        match recv.read_chunk(usize::MAX, true).await? {
            Some(chunk) => decoder.push_bytes(chunk.bytes)?,
            None => {
                decoder.finish()?;
                return Ok(None);
            }
        }
    }
}

/// Writes one frame given as chunks (as `encode_*_frame` returns them), without copying them.
pub async fn write_frame(
    send: &mut quinn::SendStream,
    mut chunks: Vec<Bytes>,
) -> Result<(), StreamError> {
    send.write_all_chunks(&mut chunks).await?;
    Ok(())
}

/// Writes one frame and finishes the stream.
pub async fn write_last_frame(
    send: &mut quinn::SendStream,
    chunks: Vec<Bytes>,
) -> Result<(), StreamError> {
    write_frame(send, chunks).await?;
    send.finish().map_err(|_| StreamError::Closed)
}
