//! The segment appender: buffered, pipelined, aligned direct-IO writes to the active segment.
//!
//! Contract:
//! - `append` copies the bytes into the head chunk (an aligned buffer of `chunk_bytes`) and
//!   returns their file position. A full chunk is submitted as one write at once, without
//!   waiting; at most `writes_in_flight_max` writes are in flight, after which `append` waits for
//!   the oldest (back-pressure).
//! - `flush` submits the partly filled head (its dirty range, padded to a page), waits for every
//!   write in flight and returns: everything appended is then on the device, not yet durable.
//!   The partial last page is carried into a fresh head and written again by the next flush, so
//!   a flush rewrites at most one page that was written before.
//! - `sync` is `flush` plus `fdatasync`: everything appended before it is durable after it.
//! - Two writes touching the same page are never in flight together (io_uring completes out of
//!   order): only `flush` submits a partial page, and it waits for all writes before returning.
//! - Positions: `appended >= written >= durable`. Blocks are preallocated in `preallocate_bytes`
//!   steps ahead of the appended position, so a full device fails `append` before anything is
//!   copied and nothing appended is lost.
//! - After a write fails the appender refuses further work: the caller must reopen the segment.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;

use super::storage::{page_round_down, page_round_up, IoBuf, StorageFile, PAGE_BYTES};

/// Appender tuning, from [`super::LogConfig`].
#[derive(Debug, Clone, Copy)]
pub struct AppenderConfig {
    /// Size of one write buffer (and of a full write), a multiple of the page size.
    pub chunk_bytes: usize,
    /// Writes in flight at most before `append` waits.
    pub writes_in_flight_max: usize,
    /// Preallocation step; 0 disables preallocation.
    pub preallocate_bytes: u64,
}

struct InFlight {
    /// Position just past the data (not the padding) this write carries.
    data_end: u64,
    done: Pin<Box<dyn Future<Output = io::Result<()>>>>,
}

/// Writes one segment file sequentially. Lives on the shard owning the partition.
pub struct Appender<F: StorageFile> {
    file: Rc<F>,
    config: AppenderConfig,
    head: Option<F::Buf>,
    /// File position of `head[0]`; page aligned.
    head_position: u64,
    /// Valid bytes in `head`.
    head_len: usize,
    /// End of the data covered by submitted writes.
    submitted: u64,
    written: u64,
    durable: u64,
    preallocated: u64,
    in_flight: VecDeque<InFlight>,
    failed: Option<io::ErrorKind>,
}

impl<F: StorageFile> Appender<F> {
    /// Starts appending at `size`, the valid length of `file` (all of it durable). Reloads the
    /// partial last page so the next write rewrites it whole. `allocated` is the file's current
    /// size on disk (preallocated blocks beyond `size`, if any).
    pub async fn open(
        file: Rc<F>,
        size: u64,
        allocated: u64,
        config: AppenderConfig,
    ) -> io::Result<Self> {
        assert!(config.chunk_bytes >= PAGE_BYTES && config.chunk_bytes.is_multiple_of(PAGE_BYTES));
        assert!(config.writes_in_flight_max > 0);
        let head_position = page_round_down(size);
        let head_len = (size - head_position) as usize;
        let mut head = None;
        if head_len > 0 {
            let mut buf = file.alloc_buf(config.chunk_bytes);
            let got = file
                .read_into(head_position, &mut buf.as_mut_slice()[..head_len])
                .await?;
            if got != head_len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment shorter than its valid size",
                ));
            }
            head = Some(buf);
        }
        Ok(Appender {
            file,
            config,
            head,
            head_position,
            head_len,
            submitted: size,
            written: size,
            durable: size,
            preallocated: allocated.max(size),
            in_flight: VecDeque::new(),
            failed: None,
        })
    }

    /// Bytes appended (the logical file size).
    pub fn appended(&self) -> u64 {
        self.head_position + self.head_len as u64
    }

    /// Every byte below this is on the device.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Every byte below this is durable.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The file being appended to.
    pub fn file(&self) -> &Rc<F> {
        &self.file
    }

    fn check_failed(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(io::Error::new(
                kind,
                "an earlier write to this segment failed",
            )),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some(e.kind());
        e
    }

    /// Appends `data`; returns the position it starts at.
    pub async fn append(&mut self, data: &[u8]) -> io::Result<u64> {
        self.check_failed()?;
        let position = self.appended();
        let end = position + data.len() as u64;
        if self.config.preallocate_bytes > 0 && end > self.preallocated {
            let target = page_round_up(end).div_ceil(self.config.preallocate_bytes)
                * self.config.preallocate_bytes;
            // A failure here (ENOSPC) leaves the appender untouched: nothing was copied.
            self.file.preallocate(target).await?;
            self.preallocated = target;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let chunk_bytes = self.config.chunk_bytes;
            let head = match &mut self.head {
                Some(head) => head,
                None => self.head.insert(self.file.alloc_buf(chunk_bytes)),
            };
            let n = rest.len().min(chunk_bytes - self.head_len);
            head.as_mut_slice()[self.head_len..self.head_len + n].copy_from_slice(&rest[..n]);
            self.head_len += n;
            rest = &rest[n..];
            if self.head_len == chunk_bytes {
                self.submit_head();
                self.file.submit_queued().await;
                self.reap(self.config.writes_in_flight_max).await?;
            }
        }
        Ok(position)
    }

    /// Submits the head's unsubmitted bytes, padded to whole pages, and starts a new head that
    /// carries the partial last page (if any).
    fn submit_head(&mut self) {
        let appended = self.appended();
        if appended == self.submitted {
            return;
        }
        let Some(mut buf) = self.head.take() else {
            unreachable!("unsubmitted bytes live in the head");
        };
        let padded = page_round_up(self.head_len as u64) as usize;
        buf.as_mut_slice()[self.head_len..padded].fill(0);
        let carry = self.head_len % PAGE_BYTES;
        let next_position = self.head_position + (self.head_len - carry) as u64;
        let mut next = None;
        if carry > 0 {
            let mut fresh = self.file.alloc_buf(self.config.chunk_bytes);
            fresh.as_mut_slice()[..carry]
                .copy_from_slice(&buf.as_slice()[self.head_len - carry..self.head_len]);
            next = Some(fresh);
        }
        // The head always starts on the page holding the first unsubmitted byte (the carry
        // below keeps it so), and the previous write ended on or before that page.
        assert!(
            page_round_down(self.submitted) == self.head_position,
            "head starts at the unsubmitted page"
        );
        assert!(
            self.in_flight
                .back()
                .is_none_or(|w| page_round_up(w.data_end) <= self.head_position),
            "a write may not overlap a page another write in flight touches"
        );
        buf.truncate(padded);
        let write = self.file.write_at(buf, self.head_position);
        self.in_flight.push_back(InFlight {
            data_end: appended,
            done: Box::pin(write),
        });
        self.submitted = appended;
        self.head = next;
        self.head_position = next_position;
        self.head_len = carry;
    }

    /// Waits until at most `keep` writes are in flight, advancing `written`.
    async fn reap(&mut self, keep: usize) -> io::Result<()> {
        while self.in_flight.len() > keep {
            let Some(write) = self.in_flight.pop_front() else {
                break;
            };
            match write.done.await {
                Ok(()) => self.written = self.written.max(write.data_end),
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    /// Writes everything appended; see the module doc.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.check_failed()?;
        self.submit_head();
        self.reap(0).await?;
        debug_assert_eq!(self.written, self.appended());
        Ok(())
    }

    /// Writes and makes durable everything appended.
    pub async fn sync(&mut self) -> io::Result<()> {
        self.flush().await?;
        if self.durable < self.written {
            let target = self.written;
            if let Err(e) = self.file.fdatasync().await {
                return Err(self.fail(e));
            }
            self.durable = target;
        }
        Ok(())
    }

    /// Syncs, then cuts the file to its true size (dropping preallocated blocks and the
    /// padding of the last page) and syncs that.
    pub async fn seal(&mut self) -> io::Result<()> {
        self.sync().await?;
        let size = self.appended();
        if self.file.size().await? > size {
            self.file.truncate(size).await?;
            self.file.fdatasync().await?;
        }
        self.preallocated = size;
        Ok(())
    }
}
