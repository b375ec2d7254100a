//! One segment: its file, valid size, offsets and indexes; naming; loading and recovery.
//!
//! A segment is `<20-digit base offset>.log` with `.index` and `.timeindex` beside it. The
//! `.index` file starts with a header recording the segment size, next offset and largest
//! timestamp it describes; an index is trusted only for that prefix of the file, and the bytes
//! after it are scanned (`super::scan`) before the segment is used.

use std::io;
use std::rc::Rc;

use super::index::SegmentIndex;
use super::scan::{scan, BatchMeta, ScanStop};
use super::storage::{Storage, StorageFile};

/// Bytes read per window while scanning a segment.
pub const SCAN_WINDOW_BYTES: usize = 4 << 20;
const INDEX_MAGIC: &[u8; 4] = b"QIX1";
const INDEX_HEADER_BYTES: usize = 28;

/// File name of the segment starting at `base`.
pub fn log_name(base: i64) -> String {
    format!("{base:020}.log")
}

/// File name of the offset index of the segment starting at `base`.
pub fn index_name(base: i64) -> String {
    format!("{base:020}.index")
}

/// File name of the time index of the segment starting at `base`.
pub fn time_index_name(base: i64) -> String {
    format!("{base:020}.timeindex")
}

/// The base offset named by a segment file name, if it is one.
pub fn parse_log_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment of the log.
pub struct Segment<F: StorageFile> {
    /// Offset in the file name; every batch in it has a base offset at or past this.
    pub base: i64,
    /// The open file.
    pub file: Rc<F>,
    /// Valid bytes.
    pub size: u64,
    /// One past the last offset stored (the base when empty).
    pub next_offset: i64,
    /// The sparse indexes.
    pub index: SegmentIndex,
    /// When this segment became active (ms), for `segment.ms`.
    pub created_ms: i64,
}

impl<F: StorageFile> Segment<F> {
    /// Adds a batch appended at the end.
    pub fn on_batch(&mut self, meta: &BatchMeta) {
        let relative = relative_offset(self.base, meta.base_offset);
        self.index.on_batch(
            relative,
            position_u32(meta.position),
            meta.len,
            meta.max_timestamp,
        );
        self.size = meta.position + u64::from(meta.len);
        self.next_offset = meta.last_offset + 1;
    }

    /// Largest timestamp in the segment (i64::MIN when empty).
    pub fn max_timestamp(&self) -> i64 {
        self.index.max_timestamp()
    }

    /// Whether the segment holds no batch.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// `offset - base` as the index stores it; the log rolls before it could overflow.
pub fn relative_offset(base: i64, offset: i64) -> u32 {
    u32::try_from(offset - base).expect("segments roll before relative offsets overflow u32")
}

/// A position as the index stores it; segments are capped below 4 GiB.
pub fn position_u32(position: u64) -> u32 {
    u32::try_from(position).expect("segments are capped below 4 GiB")
}

/// `.index` file contents for `segment`.
pub fn encode_index<F: StorageFile>(segment: &Segment<F>) -> Vec<u8> {
    let mut out = Vec::with_capacity(INDEX_HEADER_BYTES + segment.index.offset_entries().len() * 8);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&segment.size.to_be_bytes());
    out.extend_from_slice(&segment.next_offset.to_be_bytes());
    out.extend_from_slice(&segment.index.max_timestamp().to_be_bytes());
    out.extend_from_slice(&segment.index.encode_offsets());
    out
}

/// Writes both index files of `segment` (each atomically).
pub async fn write_index<S: Storage>(storage: &S, segment: &Segment<S::File>) -> io::Result<()> {
    storage
        .write_meta(
            &time_index_name(segment.base),
            &segment.index.encode_times(),
        )
        .await?;
    storage
        .write_meta(&index_name(segment.base), &encode_index(segment))
        .await
}

/// Removes both index files of the segment at `base`.
pub async fn remove_index<S: Storage>(storage: &S, base: i64) -> io::Result<()> {
    storage.remove(&index_name(base)).await?;
    storage.remove(&time_index_name(base)).await
}

struct TrustedIndex {
    size: u64,
    next_offset: i64,
    index: SegmentIndex,
}

async fn load_index<S: Storage>(
    storage: &S,
    base: i64,
    file_size: u64,
    interval: u32,
) -> io::Result<Option<TrustedIndex>> {
    let Some(offsets) = storage.read_meta(&index_name(base)).await? else {
        return Ok(None);
    };
    let times = storage
        .read_meta(&time_index_name(base))
        .await?
        .unwrap_or_default();
    if offsets.len() < INDEX_HEADER_BYTES || &offsets[..4] != INDEX_MAGIC {
        return Ok(None);
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&offsets[at..at + 8]);
        b
    };
    let size = u64::from_be_bytes(word(4));
    let next_offset = i64::from_be_bytes(word(12));
    let max_timestamp = i64::from_be_bytes(word(20));
    if size > file_size || next_offset < base || next_offset - base > i64::from(u32::MAX) + 1 {
        return Ok(None);
    }
    match SegmentIndex::decode(
        interval,
        &offsets[INDEX_HEADER_BYTES..],
        &times,
        size.max(1),
        max_timestamp,
    ) {
        Ok(index) => Ok(Some(TrustedIndex {
            size,
            next_offset,
            index,
        })),
        Err(_) => Ok(None),
    }
}

/// How a segment was found on disk.
pub struct Loaded<F: StorageFile> {
    /// The segment, cut to its valid size.
    pub segment: Segment<F>,
    /// Bytes removed from its end because they were not valid batches.
    pub truncated_bytes: u64,
}

/// Opens the segment at `base` and makes it trustworthy. With `trust_index`, a valid index is
/// used for the prefix it covers and only the rest of the file is scanned; otherwise (or without
/// a valid index) the whole file is scanned. Bytes after the last valid batch are truncated away
/// and the truncation made durable.
pub async fn load_segment<S: Storage>(
    storage: &S,
    base: i64,
    trust_index: bool,
    interval: u32,
    batch_bytes_max: usize,
    now_ms: i64,
) -> io::Result<Loaded<S::File>> {
    let file = storage
        .open_file(&log_name(base), super::storage::OpenMode::ReadWrite)
        .await?;
    let file_size = file.size().await?;
    let trusted = if trust_index {
        load_index(storage, base, file_size, interval).await?
    } else {
        None
    };
    let mut segment = match trusted {
        Some(t) => Segment {
            base,
            file,
            size: t.size,
            next_offset: t.next_offset,
            index: t.index,
            created_ms: now_ms,
        },
        None => Segment {
            base,
            file,
            size: 0,
            next_offset: base,
            index: SegmentIndex::new(interval),
            created_ms: now_ms,
        },
    };
    scan_tail(&mut segment, file_size, batch_bytes_max).await?;
    let truncated_bytes = file_size - segment.size;
    if truncated_bytes > 0 {
        segment.file.truncate(segment.size).await?;
        segment.file.fdatasync().await?;
    }
    Ok(Loaded {
        segment,
        truncated_bytes,
    })
}

/// Scans `segment`'s file from its current valid size up to `file_size`, adding every valid
/// batch; stops at the first invalid or incomplete one.
pub async fn scan_tail<F: StorageFile>(
    segment: &mut Segment<F>,
    file_size: u64,
    batch_bytes_max: usize,
) -> io::Result<()> {
    // Positions are u32 in the index: nothing past 4 GiB can be a valid batch of ours.
    let file_size = file_size.min(u64::from(u32::MAX));
    let mut window = vec![0u8; SCAN_WINDOW_BYTES];
    loop {
        let start = segment.size;
        if start >= file_size {
            return Ok(());
        }
        let want = (file_size - start).min(window.len() as u64) as usize;
        let got = segment.file.read_into(start, &mut window[..want]).await?;
        let (batches, stop) = scan(
            &window[..got],
            start,
            Some(segment.next_offset),
            batch_bytes_max,
        );
        if let Some(first) = batches.first() {
            assert!(
                first.base_offset >= segment.base,
                "scan keeps offsets increasing"
            );
        }
        for meta in &batches {
            segment.on_batch(meta);
        }
        match stop {
            ScanStop::End if got == want => continue,
            ScanStop::End => return Ok(()),
            ScanStop::Incomplete { position, len } => {
                let available = file_size - position;
                if len == 0 && available >= 12 || len > 0 && available >= len as u64 {
                    // Cut by the window, not by the file: grow the window if needed and go on.
                    if len > window.len() {
                        window.resize(len, 0);
                    }
                    continue;
                }
                return Ok(());
            }
            ScanStop::Invalid { .. } => return Ok(()),
        }
    }
}
