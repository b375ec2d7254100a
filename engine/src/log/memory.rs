//! [`Storage`] in memory, with crash simulation and fault injection, for deterministic tests.
//!
//! Each file keeps two images: what reads see now, and what survived the last `fdatasync`.
//! [`MemStorage::crash`] returns the storage a power loss could leave behind, chosen by a seed:
//! the durable image plus, for every page written since the last sync, either its new or its old
//! contents, and a file length that is either the durable or the current one. Directory
//! operations (create, rename, remove) are treated as durable at once: the log also syncs the
//! directory after each of them, which the real storage tests cover.
//! It also enforces the direct-IO contract (aligned writes), so alignment bugs fail tests here
//! rather than as EINVAL on a real disk.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::rc::Rc;

use super::storage::{IoBuf, OpenMode, Storage, StorageFile, PAGE_BYTES};

/// An in-memory directory.
#[derive(Clone, Default)]
pub struct MemStorage {
    dir: Rc<RefCell<BTreeMap<String, Rc<MemFile>>>>,
    /// Free bytes left on the "device" (None: unlimited); growing a file past it fails with
    /// StorageFull.
    free_bytes: Rc<Cell<Option<u64>>>,
}

/// One in-memory file.
#[derive(Default)]
pub struct MemFile {
    data: RefCell<Vec<u8>>,
    durable: RefCell<Vec<u8>>,
    dirty_pages: RefCell<BTreeSet<u64>>,
    free_bytes: Rc<Cell<Option<u64>>>,
}

/// A heap buffer standing in for an aligned DMA buffer.
pub struct MemBuf(Vec<u8>);

impl IoBuf for MemBuf {
    fn as_slice(&self) -> &[u8] {
        &self.0
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

/// A tiny deterministic generator (SplitMix64), so crash images depend on the seed only.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

impl MemStorage {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The storage a crash at this instant could leave, chosen by `seed` (see the module doc).
    pub fn crash(&self, seed: u64) -> MemStorage {
        let mut rng = SplitMix(seed);
        let after = MemStorage {
            free_bytes: Rc::new(Cell::new(self.free_bytes.get())),
            ..Default::default()
        };
        for (name, file) in self.dir.borrow().iter() {
            let data = file.data.borrow();
            let durable = file.durable.borrow();
            let len = if rng.coin() {
                data.len()
            } else {
                durable.len()
            };
            let mut image = vec![0u8; len];
            let keep = durable.len().min(len);
            image[..keep].copy_from_slice(&durable[..keep]);
            for &page in file.dirty_pages.borrow().iter() {
                let start = page as usize * PAGE_BYTES;
                if start >= len || !rng.coin() {
                    continue;
                }
                let end = (start + PAGE_BYTES).min(len).min(data.len());
                if start < end {
                    image[start..end].copy_from_slice(&data[start..end]);
                }
            }
            let copy = MemFile {
                data: RefCell::new(image.clone()),
                durable: RefCell::new(image),
                dirty_pages: RefCell::new(BTreeSet::new()),
                free_bytes: Rc::clone(&after.free_bytes),
            };
            after.dir.borrow_mut().insert(name.clone(), Rc::new(copy));
        }
        after
    }

    /// Leaves `bytes` free on the device (None: unlimited).
    pub fn set_free_bytes(&self, bytes: Option<u64>) {
        self.free_bytes.set(bytes);
    }

    /// The current contents of `name`, as reads see them.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.dir.borrow().get(name).map(|f| f.data.borrow().clone())
    }

    /// Replaces `name`'s contents outright (durably), e.g. to corrupt a segment in a test.
    pub fn set_file_bytes(&self, name: &str, bytes: Vec<u8>) {
        let file = MemFile {
            data: RefCell::new(bytes.clone()),
            durable: RefCell::new(bytes),
            dirty_pages: RefCell::new(BTreeSet::new()),
            free_bytes: Rc::clone(&self.free_bytes),
        };
        self.dir
            .borrow_mut()
            .insert(name.to_string(), Rc::new(file));
    }

    /// Names of the files, sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.dir.borrow().keys().cloned().collect()
    }
}

impl MemFile {
    /// Accounts for the file growing to `new_len` bytes (no-op if it is not longer), failing
    /// if the device is full.
    fn reserve(&self, new_len: u64) -> io::Result<()> {
        let Some(free) = self.free_bytes.get() else {
            return Ok(());
        };
        let current = self.data.borrow().len() as u64;
        if new_len > current {
            let grow = new_len - current;
            if grow > free {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "in-memory device is full",
                ));
            }
            self.free_bytes.set(Some(free - grow));
        }
        Ok(())
    }

    /// Gives back the space beyond `new_len` when the file shrinks to it.
    fn release(&self, new_len: u64) {
        let current = self.data.borrow().len() as u64;
        if let (Some(free), true) = (self.free_bytes.get(), new_len < current) {
            self.free_bytes.set(Some(free + (current - new_len)));
        }
    }
}

impl Storage for MemStorage {
    type File = MemFile;

    async fn open_file(&self, name: &str, mode: OpenMode) -> io::Result<Rc<MemFile>> {
        let mut dir = self.dir.borrow_mut();
        match (mode, dir.get(name)) {
            (OpenMode::CreateNew, Some(_)) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} exists"),
            )),
            (OpenMode::CreateNew, None) => {
                let file = Rc::new(MemFile {
                    free_bytes: Rc::clone(&self.free_bytes),
                    ..Default::default()
                });
                dir.insert(name.to_string(), Rc::clone(&file));
                Ok(file)
            }
            (OpenMode::ReadWrite, Some(file)) => Ok(Rc::clone(file)),
            (OpenMode::ReadWrite, None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} not found"),
            )),
        }
    }

    async fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        if let Some(file) = self.dir.borrow_mut().remove(name) {
            file.release(0);
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut dir = self.dir.borrow_mut();
        let file = dir
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{from} not found")))?;
        dir.insert(to.to_string(), file);
        Ok(())
    }

    async fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }

    async fn write_meta(&self, name: &str, data: &[u8]) -> io::Result<()> {
        if let Some(free) = self.free_bytes.get() {
            if data.len() as u64 > free {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "in-memory device is full",
                ));
            }
        }
        self.set_file_bytes(name, data.to_vec());
        Ok(())
    }

    async fn read_meta(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.file_bytes(name))
    }
}

impl StorageFile for MemFile {
    type Buf = MemBuf;

    fn alloc_buf(&self, len: usize) -> MemBuf {
        assert!(
            len.is_multiple_of(PAGE_BYTES),
            "direct IO buffers are whole pages"
        );
        MemBuf(vec![0u8; len])
    }

    fn write_at(
        self: &Rc<Self>,
        buf: MemBuf,
        pos: u64,
    ) -> impl std::future::Future<Output = io::Result<()>> + 'static {
        assert!(
            pos.is_multiple_of(PAGE_BYTES as u64),
            "direct IO writes start on a page boundary"
        );
        assert!(
            buf.0.len().is_multiple_of(PAGE_BYTES),
            "direct IO writes are whole pages"
        );
        let end = pos + buf.0.len() as u64;
        let result = self.reserve(end).map(|()| {
            let mut data = self.data.borrow_mut();
            if data.len() < end as usize {
                data.resize(end as usize, 0);
            }
            data[pos as usize..end as usize].copy_from_slice(&buf.0);
            let mut dirty = self.dirty_pages.borrow_mut();
            for page in pos / PAGE_BYTES as u64..end / PAGE_BYTES as u64 {
                dirty.insert(page);
            }
        });
        std::future::ready(result)
    }

    async fn read_into(&self, pos: u64, dst: &mut [u8]) -> io::Result<usize> {
        let data = self.data.borrow();
        let start = (pos as usize).min(data.len());
        let n = (data.len() - start).min(dst.len());
        dst[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn read_owned(
        self: &Rc<Self>,
        pos: u64,
        len: usize,
        _piece_bytes: usize,
    ) -> impl std::future::Future<Output = io::Result<bytes::Bytes>> + 'static {
        let data = self.data.borrow();
        let start = (pos as usize).min(data.len());
        let end = (start + len).min(data.len());
        std::future::ready(Ok(bytes::Bytes::copy_from_slice(&data[start..end])))
    }

    async fn fdatasync(&self) -> io::Result<()> {
        *self.durable.borrow_mut() = self.data.borrow().clone();
        self.dirty_pages.borrow_mut().clear();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.reserve(len)?;
        self.release(len);
        self.data.borrow_mut().resize(len as usize, 0);
        Ok(())
    }

    async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.reserve(len)?;
        let mut data = self.data.borrow_mut();
        if data.len() < len as usize {
            data.resize(len as usize, 0);
        }
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.data.borrow().len() as u64)
    }
}
