//! [`Storage`] over glommio `DmaFile`: O_DIRECT files driven by the shard's io_uring.
//!
//! Lives on the shard that owns the partition. Data files are opened read+write with O_DIRECT;
//! small metadata files (index checkpoints, log start offset, clean-shutdown marker) are written
//! buffered with `std::fs`, fsynced and renamed into place: they are rare and tiny, so a blocking
//! syscall on the shard costs less than another ring round trip. Call
//! [`crate::rt::prepare_executor`] once per executor before opening any file here (it works
//! around glommio 0.9.0's poll-ring probe, ARCHITECTURE §9).

use std::io;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::storage::{
    join_all, short_write_error, split_pieces, IoBuf, OpenMode, Storage, StorageFile,
};

/// A directory of O_DIRECT files.
#[derive(Clone, Debug)]
pub struct DmaStorage {
    dir: Rc<PathBuf>,
}

impl DmaStorage {
    /// Uses `dir`, creating it (and its parents) if missing.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(DmaStorage {
            dir: Rc::new(dir.as_ref().to_path_buf()),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// An aligned glommio buffer.
pub struct DmaBuf(DmaBuffer);

impl IoBuf for DmaBuf {
    fn as_slice(&self) -> &[u8] {
        self.0.as_bytes()
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_bytes_mut()
    }
    fn truncate(&mut self, len: usize) {
        self.0.trim_to_size(len);
    }
}

/// One O_DIRECT file.
pub struct DmaSegmentFile {
    file: DmaFile,
}

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    e.into()
}

impl Storage for DmaStorage {
    type File = DmaSegmentFile;

    async fn open_file(&self, name: &str, mode: OpenMode) -> io::Result<Rc<DmaSegmentFile>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if mode == OpenMode::CreateNew {
            options.create_new(true);
        }
        let file = options
            .dma_open(self.file_path(name))
            .await
            .map_err(to_io)?;
        Ok(Rc::new(DmaSegmentFile { file }))
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&*self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.file_path(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.file_path(from), self.file_path(to))
    }

    async fn sync_dir(&self) -> io::Result<()> {
        std::fs::File::open(&*self.dir)?.sync_all()
    }

    async fn write_meta(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let tmp = self.file_path(&format!("{name}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, self.file_path(name))?;
        self.sync_dir().await
    }

    async fn read_meta(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.file_path(name)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl StorageFile for DmaSegmentFile {
    type Buf = DmaBuf;

    fn alloc_buf(&self, len: usize) -> DmaBuf {
        DmaBuf(self.file.alloc_dma_buffer(len))
    }

    fn write_at(
        self: &Rc<Self>,
        buf: DmaBuf,
        pos: u64,
    ) -> impl std::future::Future<Output = io::Result<()>> + 'static {
        let this = Rc::clone(self);
        let wanted = buf.0.len();
        // Spawned so the write is queued at the next scheduling point whether or not anybody
        // polls the returned future; detached so dropping that future never cancels a write
        // the kernel may already own.
        let task =
            glommio::spawn_local(async move { this.file.write_at(buf.0, pos).await }).detach();
        async move {
            match task.await {
                Some(Ok(wrote)) if wrote == wanted => Ok(()),
                Some(Ok(wrote)) => Err(short_write_error(wrote, wanted)),
                Some(Err(e)) => Err(to_io(e)),
                None => Err(io::Error::other("write task was cancelled")),
            }
        }
    }

    async fn read_into(&self, pos: u64, dst: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(pos, dst.len()).await.map_err(to_io)?;
        let n = read.len().min(dst.len());
        dst[..n].copy_from_slice(&read[..n]);
        Ok(n)
    }

    fn read_owned(
        self: &Rc<Self>,
        pos: u64,
        len: usize,
        piece_bytes: usize,
    ) -> impl Future<Output = io::Result<Bytes>> + 'static {
        let this = Rc::clone(self);
        // Spawned so the reads are issued at the next scheduling point and complete while the
        // reader works on something else (read-ahead); detached so dropping the future (a
        // read-ahead nobody wants) never cancels a read the kernel may own.
        let task = glommio::spawn_local(async move {
            let pieces = split_pieces(pos, len, piece_bytes);
            let mut reads: Vec<Pin<Box<dyn Future<Output = io::Result<_>>>>> = Vec::new();
            for &(at, n) in &pieces {
                let file = &this.file;
                reads.push(Box::pin(
                    async move { file.read_at(at, n).await.map_err(to_io) },
                ));
            }
            let results = join_all(reads).await?;
            // One copy out of the DMA buffers (their owner is not `Send`, `Bytes` must be).
            let mut out = BytesMut::with_capacity(len);
            for (read, &(_, n)) in results.iter().zip(&pieces) {
                out.extend_from_slice(&read[..read.len().min(n)]);
                if read.len() < n {
                    break;
                }
            }
            Ok(out.freeze())
        })
        .detach();
        async move {
            match task.await {
                Some(result) => result,
                None => Err(io::Error::other("read task was cancelled")),
            }
        }
    }

    async fn submit_queued(&self) {
        // Parking the task is what makes glommio hand its queued submissions to the kernel; a
        // yield does not (measured: without this, writes left in bursts of eight and the device
        // idled about half the time).
        glommio::timer::sleep(Duration::from_micros(1)).await;
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(to_io)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(to_io)
    }

    async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.file.pre_allocate(len, false).await.map_err(to_io)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }
}
