//! The small storage trait the partition log runs over.
//!
//! A [`Storage`] is one directory (a partition's folder); a [`StorageFile`] is one file in it
//! opened for direct IO. Two implementations exist: [`super::dma::DmaStorage`] (glommio `DmaFile`,
//! O_DIRECT through io_uring, used in production) and [`super::memory::MemStorage`] (in memory,
//! with crash simulation, used by the deterministic tests). Nothing here is `Send`: a storage
//! lives on the shard that owns its partition.
//!
//! Contract shared by both implementations:
//! - writes are aligned: position and length are multiples of [`PAGE_BYTES`];
//! - `write_at` submits the write before it returns; the future only reports completion, and
//!   writes complete in any order (callers serialise writes to the same page);
//! - a short write is an error (`StorageFull` when the device is out of space);
//! - data is durable only after `fdatasync` resolves; directory entries only after `sync_dir`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;

/// Direct-IO alignment: file positions and write lengths are multiples of this.
pub const PAGE_BYTES: usize = 4096;

/// Rounds `n` up to a multiple of [`PAGE_BYTES`].
pub fn page_round_up(n: u64) -> u64 {
    n.div_ceil(PAGE_BYTES as u64) * PAGE_BYTES as u64
}

/// Rounds `n` down to a multiple of [`PAGE_BYTES`].
pub fn page_round_down(n: u64) -> u64 {
    n / PAGE_BYTES as u64 * PAGE_BYTES as u64
}

/// A buffer suitable for direct IO writes (aligned to [`PAGE_BYTES`]).
pub trait IoBuf: 'static {
    /// The bytes a write of this buffer sends.
    fn as_slice(&self) -> &[u8];
    /// Mutable view of the same bytes.
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Shortens the buffer to `len` bytes (never grows it).
    fn truncate(&mut self, len: usize);
}

/// How [`Storage::open_file`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new, empty file for reading and writing; fail if it exists.
    CreateNew,
    /// Open an existing file for reading and writing.
    ReadWrite,
}

/// One directory of files.
#[allow(async_fn_in_trait)]
pub trait Storage: Clone + 'static {
    /// The file type of this storage.
    type File: StorageFile;
    /// Opens `name` in this directory for direct IO.
    async fn open_file(&self, name: &str, mode: OpenMode) -> io::Result<Rc<Self::File>>;
    /// Names of the files in this directory (no sub-directories), in no particular order.
    async fn list(&self) -> io::Result<Vec<String>>;
    /// Removes `name`; a missing file is not an error.
    async fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    async fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, renames and removals in this directory durable.
    async fn sync_dir(&self) -> io::Result<()>;
    /// Writes a small metadata file atomically: to a temporary name, fsync, rename, sync dir.
    async fn write_meta(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Reads a small metadata file written by `write_meta`; `None` if it does not exist.
    async fn read_meta(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
}

/// One file opened for direct IO.
#[allow(async_fn_in_trait)]
pub trait StorageFile: 'static {
    /// The write buffer type.
    type Buf: IoBuf;
    /// Allocates a zeroed-or-not, aligned write buffer of `len` bytes (`len` page-aligned).
    fn alloc_buf(&self, len: usize) -> Self::Buf;
    /// Submits a write of the whole buffer at `pos` now; the future resolves on completion.
    fn write_at(
        self: &Rc<Self>,
        buf: Self::Buf,
        pos: u64,
    ) -> impl Future<Output = io::Result<()>> + 'static;
    /// Reads up to `dst.len()` bytes at `pos` (any alignment) into `dst`; returns how many were
    /// read, fewer only at end of file.
    async fn read_into(&self, pos: u64, dst: &mut [u8]) -> io::Result<usize>;
    /// Reads `len` bytes at `pos` (any alignment) as concurrent reads of about `piece_bytes`,
    /// started now whether or not the future is polled (so it can run ahead of its reader);
    /// resolves to the bytes read, fewer only at end of file.
    fn read_owned(
        self: &Rc<Self>,
        pos: u64,
        len: usize,
        piece_bytes: usize,
    ) -> impl Future<Output = io::Result<Bytes>> + 'static;
    /// Lets queued IO reach the device now. glommio queues submissions until its executor
    /// parks, so a task that keeps computing after `write_at` would otherwise hold its writes
    /// back; the appender calls this once per submitted chunk.
    async fn submit_queued(&self) {}
    /// Flushes written data to the device.
    async fn fdatasync(&self) -> io::Result<()>;
    /// Sets the file size.
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// Reserves blocks up to `len` bytes, growing the file size (reads of it return zeros).
    async fn preallocate(&self, len: u64) -> io::Result<()>;
    /// The file size in bytes.
    async fn size(&self) -> io::Result<u64>;
}

/// Maps a short write to the error a full device gives.
pub fn short_write_error(wrote: usize, wanted: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!("short write: {wrote} of {wanted} bytes (device full?)"),
    )
}

/// Splits `len` bytes at `pos` into about `piece_bytes` pieces, the remainder folded into the
/// last piece (no tiny trailing read).
pub fn split_pieces(pos: u64, len: usize, piece_bytes: usize) -> Vec<(u64, usize)> {
    let piece_bytes = piece_bytes.max(PAGE_BYTES);
    let count = (len / piece_bytes).max(1);
    let mut pieces = Vec::with_capacity(count);
    let mut at = 0;
    for i in 0..count {
        let n = if i + 1 == count {
            len - at
        } else {
            piece_bytes
        };
        pieces.push((pos + at as u64, n));
        at += n;
    }
    pieces
}

/// Awaits every future, polling them together so their IO overlaps; fails on the first error.
pub async fn join_all<'a, T>(
    mut futures: Vec<Pin<Box<dyn Future<Output = io::Result<T>> + 'a>>>,
) -> io::Result<Vec<T>> {
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if results[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => results[i] = Some(v),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await?;
    Ok(results.into_iter().flatten().collect())
}
