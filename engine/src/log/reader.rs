//! Cold reads: a window of segment bytes kept as chunks, and the read-ahead that lets a
//! sequential reader find its next bytes already read.
//!
//! A read walks whole batches off the front of a [`Window`]. Batches that sit inside one chunk
//! come out as zero-copy slices of it; only a batch straddling two chunks is copied. When a read
//! stops (its `max_bytes` reached), what is left of the window and the read already started for
//! the bytes after it are kept as a [`Readahead`], used by the next read if it asks for the
//! offset where this one stopped, and dropped otherwise.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};

/// Windows read ahead at most, per sequential reader: two, so the device still has a window
/// to work on while the reader copies and checks the one that just arrived.
pub const READAHEAD_WINDOWS_MAX: usize = 2;

/// A read under way for `len` bytes at `at`.
pub struct Pending {
    /// Segment position of its first byte.
    pub at: u64,
    /// Bytes asked for.
    pub len: usize,
    /// The read.
    pub read: Pin<Box<dyn Future<Output = io::Result<Bytes>>>>,
}

/// Consecutive bytes of a segment, as the chunks they were read in.
#[derive(Default)]
pub struct Window {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl Window {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the bytes that follow the held ones.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Copies the first `dst.len()` bytes into `dst`; false if fewer are held.
    pub fn peek(&self, dst: &mut [u8]) -> bool {
        if self.len < dst.len() {
            return false;
        }
        let mut at = 0;
        for chunk in &self.chunks {
            let n = (dst.len() - at).min(chunk.len());
            dst[at..at + n].copy_from_slice(&chunk[..n]);
            at += n;
            if at == dst.len() {
                break;
            }
        }
        true
    }

    /// Removes the first `n` bytes (`n <= len`): a slice when they lie in one chunk, a copy
    /// when they straddle chunks.
    pub fn take(&mut self, n: usize) -> Bytes {
        assert!(n <= self.len, "take within the window");
        self.len -= n;
        if let Some(front) = self.chunks.front_mut() {
            if front.len() >= n {
                let out = front.split_to(n);
                if front.is_empty() {
                    self.chunks.pop_front();
                }
                return out;
            }
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let k = (n - out.len()).min(front.len());
            out.extend_from_slice(&front.split_to(k));
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        out.freeze()
    }
}

/// Where a sequential reader left a segment.
pub struct Readahead {
    /// Base offset of the segment.
    pub segment: i64,
    /// The offset the next read must ask for to use this.
    pub next_offset: i64,
    /// Segment position of the window's first byte (the batch holding `next_offset`).
    pub position: u64,
    /// Bytes already read from `position` on.
    pub window: Window,
    /// Reads under way for the bytes after the window, in order.
    pub pending: VecDeque<Pending>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_slices_within_a_chunk_and_copies_across_chunks() {
        let mut w = Window::default();
        w.push(Bytes::from_static(b"abcdef"));
        w.push(Bytes::from_static(b"ghij"));
        let mut head = [0u8; 8];
        assert!(w.peek(&mut head));
        assert_eq!(&head, b"abcdefgh");
        assert_eq!(&w.take(4)[..], b"abcd");
        assert_eq!(&w.take(4)[..], b"efgh");
        assert_eq!(w.len(), 2);
        assert!(!w.peek(&mut head));
        assert_eq!(&w.take(2)[..], b"ij");
        assert!(w.is_empty());
    }
}
