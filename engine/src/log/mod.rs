//! The partition log: segments of record batches on direct-IO files, with sparse indexes,
//! crash recovery, retention and compaction.
//!
//! A [`PartitionLog`] is owned by the shard that owns its partition and is driven by one task
//! at a time (`&mut self` for writes, `&self` for reads): it has no locks and is not `Send`.
//! It is generic over a [`Storage`] so the same code runs on O_DIRECT files ([`DmaStorage`]) and
//! in memory with crash simulation ([`MemStorage`]) in the deterministic tests.
//!
//! Invariants:
//! - offsets increase strictly across batches and segments; `log_start <= next_offset`;
//! - batches are stored exactly as appended except for base offset and leader epoch, which are
//!   stamped in place (outside the CRC); the log never re-encodes on append;
//! - every batch at or past the appender's written position is in the tail cache, so reads never
//!   touch bytes that are not on the device yet;
//! - after [`PartitionLog::sync`] returns, every batch appended before it survives a crash;
//!   recovery keeps a prefix of the appended batches, each with a valid CRC, and nothing else.
//!
//! Durability is explicit: `append` only buffers (and writes full chunks); the owner applies the
//! topic's [`FlushPolicy`] with [`PartitionLog::flush_if_due`] after a round of appends, so one
//! `fdatasync` covers every append in that round (group commit).
//!
//! Idempotent producers: the log keeps each producer's epoch and last batches as of its end
//! ([`producers`]), checks producer batches against them on append (a retry of a recent batch
//! is answered with its first offsets and not appended), snapshots them at each roll and clean
//! close (`<offset>.snapshot`, the newest [`PRODUCER_SNAPSHOTS_KEPT`] kept) and rebuilds them on
//! open and after `truncate_to` from the newest valid snapshot at or below the end plus a scan
//! of the batches after it, so they always describe exactly the batches in the log.

pub mod appender;
pub mod compaction;
pub mod dma;
pub mod epochs;
pub mod index;
pub mod memory;
pub mod producers;
pub mod reader;
pub mod retention;
pub mod scan;
pub mod segment;
pub mod storage;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;

use bytes::{Bytes, BytesMut};

use zerocopy::FromBytes;

use crate::batch::{
    compute_crc, stamp, BatchBuilder, BatchError, BatchHeader, RecordBatch, ATTR_COMPRESSION_MASK,
    ATTR_CONTROL, BATCH_HEADER_LEN, BATCH_LOG_OVERHEAD,
};
use appender::{Appender, AppenderConfig};
use compaction::KeyMap;
pub use dma::DmaStorage;
use epochs::{EpochCache, EpochError};
use index::SegmentIndex;
pub use memory::MemStorage;
use producers::{
    last_sequence, parse_snapshot_name, snapshot_name, BatchMetadata, ProducerStateTable,
    SequenceCheck, SequenceError,
};
use reader::{Pending, Readahead, Window, READAHEAD_WINDOWS_MAX};
use retention::{RetentionLimits, SegmentSummary};
use scan::{scan, BatchMeta, ScanStop};
use segment::{load_segment, log_name, parse_log_name, relative_offset, Segment};
pub use storage::{OpenMode, Storage, StorageFile};

/// Name of the marker a clean close leaves; its absence at open means recovery must scan.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
/// Name of the log start offset checkpoint.
pub const LOG_START_FILE: &str = "log-start-offset";
/// Name of the leader-epoch history checkpoint (see [`epochs`]).
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Bytes per read when rebuilding the epoch history from the batches.
const EPOCH_SCAN_READ_BYTES: usize = 8 << 20;
/// Largest segment size: positions in the index are u32.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;
/// Producer-state snapshots kept on disk (the newest ones).
pub const PRODUCER_SNAPSHOTS_KEPT: usize = 2;

/// When appended data is made durable (`flush` per topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// `fdatasync` after every round of appends, before acknowledging them.
    Always,
    /// Group commit: `fdatasync` once `ms` passed or `bytes` were appended since the last one.
    Interval {
        /// Longest time between syncs, in milliseconds.
        ms: u64,
        /// Most bytes appended between syncs.
        bytes: u64,
    },
    /// Never sync explicitly (only at roll and close); writes still reach the device.
    Never,
}

/// What the log deletes or compacts in the background (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments by retention time and size.
    Delete,
    /// Keep the latest record per key.
    Compact,
    /// Both.
    CompactDelete,
}

/// Configuration of one partition log. Sizes are bytes, times milliseconds.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll the active segment when it would grow past this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment when it is this old (`segment.ms`).
    pub segment_ms: Option<i64>,
    /// One offset/time index entry per this many bytes of log.
    pub index_interval_bytes: u32,
    /// Largest batch accepted (`max.message.bytes`).
    pub batch_bytes_max: usize,
    /// Durability policy.
    pub flush: FlushPolicy,
    /// Retention by age of the newest record in a segment.
    pub retention_ms: Option<i64>,
    /// Retention by log size.
    pub retention_bytes: Option<u64>,
    /// Delete, compact or both.
    pub cleanup_policy: CleanupPolicy,
    /// How long compaction keeps tombstones.
    pub delete_retention_ms: i64,
    /// Size of one appender write.
    pub write_chunk_bytes: usize,
    /// Appender writes in flight at most.
    pub writes_in_flight_max: usize,
    /// Preallocation step of the active segment (0 = none).
    pub preallocate_bytes: u64,
    /// A cold read is split into concurrent reads of this size.
    pub read_io_bytes: usize,
    /// Recently appended batches kept in memory for tailing readers.
    pub cache_bytes_max: usize,
    /// An idempotent producer idle this long is forgotten (`producer.id.expiration.ms`);
    /// its next batch is then accepted at any sequence.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            index_interval_bytes: 4096,
            batch_bytes_max: 8 << 20,
            flush: FlushPolicy::Interval {
                ms: 10,
                bytes: 4 << 20,
            },
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 3600 * 1000,
            write_chunk_bytes: 1 << 20,
            writes_in_flight_max: 8,
            preallocate_bytes: 32 << 20,
            read_io_bytes: 1 << 20,
            cache_bytes_max: 8 << 20,
            producer_id_expiration_ms: 24 * 3600 * 1000,
        }
    }
}

/// Errors of log operations. Input errors leave the log unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The appended bytes are not one valid RecordBatch v2 (the caller's input).
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch is larger than `batch_bytes_max` (the caller's input).
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The requested offset is outside `[log_start, next_offset]`.
    #[error("offset {offset} is outside the log [{log_start}, {next_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// First offset kept.
        log_start: i64,
        /// Next offset to be written.
        next_offset: i64,
    },
    /// Stored bytes failed validation on read: a device or file-system fault.
    #[error("corrupt batch in segment {segment} at position {position}")]
    Corrupt {
        /// Base offset of the segment.
        segment: i64,
        /// Byte position of the bad batch.
        position: u64,
    },
    /// The configuration is unusable.
    #[error("invalid log configuration: {0}")]
    Config(&'static str),
    /// An idempotent batch does not continue its producer's sequence (wire
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`); nothing was appended.
    #[error(
        "out-of-order sequence from producer {producer_id} (epoch {epoch}): expected {expected}, \
         got {got}"
    )]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The sequence the batch had to start with.
        expected: i32,
        /// Its first sequence.
        got: i32,
    },
    /// An idempotent batch carries an epoch older than its producer's: a newer instance of the
    /// producer fenced it (wire `INVALID_PRODUCER_EPOCH`); nothing was appended.
    #[error(
        "producer {producer_id} is fenced: epoch {epoch} is older than its current epoch \
         {current_epoch}"
    )]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The producer's epoch in the log.
        current_epoch: i16,
    },
    /// An idempotent batch was appended earlier, but before the last
    /// [`producers::CACHED_BATCHES`] of its producer, so its offsets are no longer known (wire
    /// `DUPLICATE_SEQUENCE_NUMBER`, which clients take as success without an offset); nothing
    /// was appended.
    #[error(
        "sequences {first_seq}..={last_seq} of producer {producer_id} (epoch {epoch}) were \
         appended earlier; their offsets are no longer known"
    )]
    DuplicateSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The batch's first sequence.
        first_seq: i32,
        /// Its last sequence.
        last_seq: i32,
    },
    /// A replicated batch does not start at the log end (wire `OFFSET_OUT_OF_RANGE` to the
    /// fetching follower's own code; nothing was appended).
    #[error("replicated batch starts at {base_offset}, the log ends at {next_offset}")]
    NotContiguous {
        /// The batch's base offset.
        base_offset: i64,
        /// This log's end.
        next_offset: i64,
    },
    /// The log's leader epoch is older than one that already wrote to it (a deposed leader;
    /// wire `FENCED_LEADER_EPOCH`); nothing was appended.
    #[error("stale leader epoch: {0}")]
    StaleLeaderEpoch(#[from] EpochError),
    /// A batch with a producer id has no base sequence (the caller's input; wire
    /// `CORRUPT_MESSAGE`).
    #[error("batch of producer {producer_id} has no valid base sequence ({base_sequence})")]
    InvalidSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's base sequence.
        base_sequence: i32,
    },
    /// The storage failed (out of space, IO error). After a failed write the log refuses
    /// further appends until reopened.
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

impl From<SequenceError> for LogError {
    fn from(e: SequenceError) -> Self {
        match e {
            SequenceError::OutOfOrderSequence {
                producer_id,
                epoch,
                expected,
                got,
            } => LogError::OutOfOrderSequence {
                producer_id,
                epoch,
                expected,
                got,
            },
            SequenceError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current_epoch,
            } => LogError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current_epoch,
            },
            SequenceError::DuplicateSequence {
                producer_id,
                epoch,
                first_seq,
                last_seq,
            } => LogError::DuplicateSequence {
                producer_id,
                epoch,
                first_seq,
                last_seq,
            },
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its largest timestamp.
    pub max_timestamp: i64,
    /// The batch is a retry of an idempotent batch appended earlier: nothing was appended now,
    /// and the offsets and timestamp above are those of the earlier append.
    pub duplicate: bool,
}

/// The result of a read: whole batches in offset order.
#[derive(Debug, Clone, Default)]
pub struct LogRead {
    /// One `Bytes` per batch, as stored.
    pub batches: Vec<Bytes>,
    /// The offset after the last batch returned (the next offset to read).
    pub next_offset: i64,
}

impl LogRead {
    /// Total bytes returned.
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// What the retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes deleted.
    pub bytes_deleted: u64,
}

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionOutcome {
    /// Segments rewritten.
    pub segments_rewritten: usize,
    /// Records removed.
    pub records_removed: u64,
    /// Bytes before and after, over the rewritten segments.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// What opening the log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// Whether the previous close was clean.
    pub clean: bool,
    /// Bytes cut off the end of segments because they were not valid batches.
    pub truncated_bytes: u64,
    /// Segments deleted because they followed a corrupt one.
    pub segments_dropped: usize,
    /// Producer-state snapshots found unreadable (bad CRC, truncated) and deleted; the state
    /// came from an older snapshot or a longer scan instead.
    pub snapshots_skipped: usize,
}

struct Cached {
    segment: i64,
    position: u64,
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

/// One partition's log. See the module doc.
pub struct PartitionLog<S: Storage> {
    storage: S,
    config: LogConfig,
    sealed: BTreeMap<i64, Segment<S::File>>,
    active: Segment<S::File>,
    appender: Appender<S::File>,
    log_start: i64,
    next_offset: i64,
    durable_offset: i64,
    leader_epoch: i32,
    cache: VecDeque<Cached>,
    cache_bytes: usize,
    last_sync_ms: i64,
    unsynced_bytes: u64,
    recovery: RecoveryReport,
    /// Where the last sequential cold read stopped (see `reader`).
    readahead: RefCell<Option<Readahead>>,
    /// Idempotent producers' state as of `next_offset` (see `producers`).
    producers: ProducerStateTable,
    /// Offsets of the producer-state snapshots on disk.
    snapshots: BTreeSet<i64>,
    /// Which leader epoch wrote which offsets (see [`epochs`]).
    epochs: EpochCache,
}

impl<S: Storage> PartitionLog<S> {
    /// Opens (or creates) the log in `storage`, recovering from an unclean shutdown: see
    /// [`RecoveryReport`] for what was found.
    pub async fn open(storage: S, config: LogConfig, now_ms: i64) -> Result<Self, LogError> {
        validate(&config)?;
        let clean = storage.read_meta(CLEAN_SHUTDOWN_FILE).await?.is_some();
        let mut bases = Vec::new();
        let mut snapshots = BTreeSet::new();
        for name in storage.list().await? {
            if let Some(base) = parse_log_name(&name) {
                bases.push(base);
            } else if let Some(offset) = parse_snapshot_name(&name) {
                snapshots.insert(offset);
            } else if name.ends_with(".tmp") || name.ends_with(".cleaned") {
                // Leftovers of an interrupted metadata write or compaction: never trusted.
                storage.remove(&name).await?;
            }
        }
        bases.sort_unstable();
        let mut recovery = RecoveryReport {
            clean,
            ..Default::default()
        };
        let interval = config.index_interval_bytes;
        let mut sealed = BTreeMap::new();
        let mut loaded: Option<Segment<S::File>> = None;
        let mut i = 0;
        while i < bases.len() {
            let base = bases[i];
            let last = i + 1 == bases.len();
            // Sealed segments were synced with their index at roll and are trusted with it.
            // After a clean close the last one is too; after a crash it is scanned whole:
            // its index (if any, from an earlier clean close) would vouch for a prefix that a
            // torn or corrupted tail may reach into, and a scan costs one sequential read.
            let l = load_segment(
                &storage,
                base,
                clean || !last,
                interval,
                config.batch_bytes_max,
                now_ms,
            )
            .await?;
            recovery.truncated_bytes += l.truncated_bytes;
            let mut segment = l.segment;
            let stray = loaded
                .as_ref()
                .is_some_and(|prev| last && segment.is_empty() && segment.base != prev.next_offset);
            if stray {
                // An empty last segment that does not continue the log holds nothing and would
                // open a hole at the log end (a stray or hand-made file): drop it.
                storage.remove(&log_name(base)).await?;
                segment::remove_index(&storage, base).await?;
                storage.sync_dir().await?;
                recovery.segments_dropped += 1;
                break;
            }
            if let Some(prev) = loaded.take() {
                if segment.base < prev.next_offset {
                    // Overlapping offsets cannot come from this code; refuse rather than guess.
                    return Err(LogError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "segment {} overlaps the previous one ending at {}",
                            segment.base, prev.next_offset
                        ),
                    )));
                }
                sealed.insert(prev.base, prev);
            }
            if l.truncated_bytes > 0 && !last {
                // Corruption inside a sealed segment ends the log there (as Kafka does): later
                // segments would leave a hole.
                for &later in &bases[i + 1..] {
                    storage.remove(&log_name(later)).await?;
                    segment::remove_index(&storage, later).await?;
                    recovery.segments_dropped += 1;
                }
                segment::remove_index(&storage, base).await?;
                storage.sync_dir().await?;
                segment.created_ms = now_ms;
                loaded = Some(segment);
                break;
            }
            loaded = Some(segment);
            i += 1;
        }
        let stored_start = match storage.read_meta(LOG_START_FILE).await? {
            Some(b) if b.len() == 8 => i64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8])),
            _ => 0,
        };
        let active = match loaded {
            Some(segment) => segment,
            None => {
                let base = stored_start.max(0);
                let file = storage
                    .open_file(&log_name(base), OpenMode::CreateNew)
                    .await?;
                storage.sync_dir().await?;
                Segment {
                    base,
                    file,
                    size: 0,
                    next_offset: base,
                    index: SegmentIndex::new(interval),
                    created_ms: now_ms,
                }
            }
        };
        let next_offset = active.next_offset;
        let first_base = sealed.keys().next().copied().unwrap_or(active.base);
        let log_start = stored_start.max(first_base).min(next_offset);
        if log_start < stored_start {
            // Recovery cut the log below its recorded start: the start follows the end down.
            storage
                .write_meta(LOG_START_FILE, &log_start.to_be_bytes())
                .await?;
        }
        let allocated = active.file.size().await?;
        let appender = Appender::open(
            active.file.clone(),
            active.size,
            allocated,
            appender_config(&config),
        )
        .await?;
        if clean {
            storage.remove(CLEAN_SHUTDOWN_FILE).await?;
            storage.sync_dir().await?;
        }
        let mut log = PartitionLog {
            storage,
            config,
            sealed,
            active,
            appender,
            log_start,
            next_offset,
            durable_offset: next_offset,
            leader_epoch: -1,
            cache: VecDeque::new(),
            cache_bytes: 0,
            last_sync_ms: now_ms,
            unsynced_bytes: 0,
            recovery,
            readahead: RefCell::new(None),
            producers: ProducerStateTable::new(),
            snapshots,
            epochs: EpochCache::new(),
        };
        log.recovery.snapshots_skipped = log.rebuild_producers(now_ms).await?;
        log.load_epochs().await?;
        Ok(log)
    }

    /// What opening found.
    pub fn recovery(&self) -> RecoveryReport {
        self.recovery
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration (e.g. a topic's config was altered). Segment and index
    /// geometry changes apply from the next segment on.
    pub fn set_config(&mut self, config: LogConfig) -> Result<(), LogError> {
        validate(&config)?;
        self.config = config;
        Ok(())
    }

    /// First offset kept.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start
    }

    /// Offset the next appended record gets (the log end offset).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Every offset below this survives a crash.
    pub fn durable_offset(&self) -> i64 {
        self.durable_offset
    }

    /// Bytes appended since the last sync (what `FlushPolicy::Interval::bytes` is compared with).
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced_bytes
    }

    /// Sets the leader epoch stamped into appended batches.
    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
    }

    /// The log's leader-epoch history: where each epoch's records begin.
    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
    }

    /// Kafka's `OffsetsForLeaderEpoch` for `epoch`: the largest epoch at or below it that
    /// wrote to this log, and where this log moved past `epoch` (see
    /// [`EpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.next_offset)
    }

    /// Reads the epoch checkpoint, or rebuilds the history from the batches' headers when it
    /// is missing (a log from before it existed) or damaged, then cuts it to the log.
    async fn load_epochs(&mut self) -> Result<(), LogError> {
        let stored = self.storage.read_meta(LEADER_EPOCH_FILE).await?;
        let loaded = stored.as_deref().map(EpochCache::decode);
        let mut epochs = match &loaded {
            Some(Ok(epochs)) => epochs.clone(),
            _ if self.log_start == self.next_offset => EpochCache::new(),
            _ => self.scan_epochs().await,
        };
        epochs.truncate_from_end(self.next_offset);
        epochs.truncate_from_start(self.log_start);
        let unchanged = matches!(&loaded, Some(Ok(e)) if *e == epochs);
        let empty_and_absent = stored.is_none() && self.log_start == self.next_offset;
        self.epochs = epochs;
        // Written after a rebuild even when empty, so the next open does not scan again.
        if !unchanged && !empty_and_absent {
            self.write_epochs().await?;
        }
        Ok(())
    }

    /// The epoch history as the batches record it, read from the log start to its end. A
    /// batch that cannot be read ends the scan: reads refuse it too (a clean close trusts the
    /// index, so damage inside a segment is found by reads, not at open), and a history cut
    /// short only makes a follower truncate more.
    async fn scan_epochs(&self) -> EpochCache {
        let mut epochs = EpochCache::new();
        let mut from = self.log_start;
        while from < self.next_offset {
            let Ok(read) = self.read(from, EPOCH_SCAN_READ_BYTES).await else {
                break;
            };
            if read.batches.is_empty() || read.next_offset <= from {
                break;
            }
            for batch in &read.batches {
                let Ok(view) = RecordBatch::parse(batch) else {
                    return epochs;
                };
                let epoch = view.header().partition_leader_epoch();
                // Batches written before any leader epoch was set carry -1: no entry.
                if epoch >= 0 {
                    // An out-of-order epoch in old data is skipped, not fatal: the history
                    // then under-reports, which only makes a follower truncate more.
                    let _ = epochs.assign(epoch, view.base_offset().max(self.log_start));
                }
            }
            from = read.next_offset;
        }
        epochs
    }

    async fn write_epochs(&mut self) -> Result<(), LogError> {
        self.storage
            .write_meta(LEADER_EPOCH_FILE, &self.epochs.encode())
            .await?;
        Ok(())
    }

    /// Bytes stored over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.sealed.values().map(|s| s.size).sum::<u64>() + self.active.size
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.sealed
            .keys()
            .copied()
            .chain(std::iter::once(self.active.base))
            .collect()
    }

    /// The idempotent producers' state as of the log end.
    pub fn producers(&self) -> &ProducerStateTable {
        &self.producers
    }

    /// Offsets of the producer-state snapshots on disk, ascending.
    pub fn producer_snapshots(&self) -> Vec<i64> {
        self.snapshots.iter().copied().collect()
    }

    /// Forgets producers idle for `producer_id_expiration_ms` at `now_ms` (also done at each
    /// roll and by [`PartitionLog::enforce_retention`]). Returns how many went.
    pub fn expire_producers(&mut self, now_ms: i64) -> usize {
        self.producers
            .expire(now_ms, self.config.producer_id_expiration_ms)
    }

    /// Appends one RecordBatch v2. Validates it (length, magic, CRC, limits), stamps its base
    /// offset and the leader epoch in place, and buffers it for writing; it is durable once a
    /// sync covers it (see [`FlushPolicy`]). On error nothing was appended.
    ///
    /// A batch with a producer id (not a control batch) is checked against its producer's
    /// state first (rules in [`producers`]): a retry of one of the producer's last
    /// [`producers::CACHED_BATCHES`] batches is not appended and returns the earlier append's
    /// offsets with `duplicate: true` (durable once the log is durable up to its last offset);
    /// a batch out of sequence or from a fenced epoch fails with
    /// [`LogError::OutOfOrderSequence`], [`LogError::InvalidProducerEpoch`] or
    /// [`LogError::DuplicateSequence`].
    pub async fn append(&mut self, batch: BytesMut, now_ms: i64) -> Result<AppendInfo, LogError> {
        if batch.len() > self.config.batch_bytes_max {
            return Err(LogError::BatchTooLarge {
                size: batch.len(),
                max: self.config.batch_bytes_max,
            });
        }
        let (last_delta, max_timestamp, producer) = {
            let view = RecordBatch::parse(&batch)?;
            if view.records_count() < 1
                || i64::from(view.records_count()) > view.last_offset() - view.base_offset() + 1
            {
                return Err(LogError::InvalidBatch(BatchError::BadLength(
                    view.records_count(),
                )));
            }
            let h = view.header();
            let producer = if h.producer_id() >= 0 && !view.is_control() {
                if h.base_sequence() < 0 {
                    return Err(LogError::InvalidSequence {
                        producer_id: h.producer_id(),
                        base_sequence: h.base_sequence(),
                    });
                }
                let first = h.base_sequence();
                let last = last_sequence(first, h.last_offset_delta());
                Some((h.producer_id(), h.producer_epoch(), first, last))
            } else {
                None
            };
            (
                view.last_offset() - view.base_offset(),
                view.max_timestamp(),
                producer,
            )
        };
        if let Some((id, epoch, first, last)) = producer {
            match self.producers.check(id, epoch, first, last)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    base_offset,
                    last_offset,
                    max_timestamp,
                } => {
                    return Ok(AppendInfo {
                        base_offset,
                        last_offset,
                        max_timestamp,
                        duplicate: true,
                    })
                }
            }
        }
        if self.leader_epoch >= 0 {
            self.note_epoch(self.leader_epoch, self.next_offset).await?;
        }
        self.write_batch(batch, last_delta, max_timestamp, producer, true, now_ms)
            .await
    }

    /// Appends one batch fetched from the partition's leader, as the leader wrote it (the
    /// follower side of replication): its base offset must be this log's end, and its offsets
    /// and leader epoch are kept, not stamped, so the replica's bytes equal the leader's. It
    /// is validated (length, magic, CRC, limits) and its leader epoch may not be older than
    /// the log's latest ([`LogError::StaleLeaderEpoch`]). Idempotent producers' state follows
    /// the batch without sequence checks (the leader made them), so this replica deduplicates
    /// like the leader if it takes over. On error nothing was appended.
    pub async fn append_replicated(
        &mut self,
        batch: BytesMut,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if batch.len() > self.config.batch_bytes_max {
            return Err(LogError::BatchTooLarge {
                size: batch.len(),
                max: self.config.batch_bytes_max,
            });
        }
        let (base_offset, epoch, last_delta, max_timestamp, producer) = {
            let view = RecordBatch::parse(&batch)?;
            let h = view.header();
            let producer = (h.producer_id() >= 0 && !view.is_control() && h.base_sequence() >= 0)
                .then(|| {
                    let first = h.base_sequence();
                    let last = last_sequence(first, h.last_offset_delta());
                    (h.producer_id(), h.producer_epoch(), first, last)
                });
            (
                view.base_offset(),
                h.partition_leader_epoch(),
                view.last_offset() - view.base_offset(),
                view.max_timestamp(),
                producer,
            )
        };
        if base_offset != self.next_offset {
            return Err(LogError::NotContiguous {
                base_offset,
                next_offset: self.next_offset,
            });
        }
        if epoch >= 0 {
            self.note_epoch(epoch, base_offset).await?;
        }
        self.write_batch(batch, last_delta, max_timestamp, producer, false, now_ms)
            .await
    }

    /// Adds `epoch` starting at `base_offset` to the history if it is new, checkpointing it
    /// before the batch is written, so the history on disk never lacks an epoch the log holds
    /// (an entry past the log end after a crash is cut at open).
    async fn note_epoch(&mut self, epoch: i32, base_offset: i64) -> Result<(), LogError> {
        // The common case, every append of the current epoch, costs one comparison.
        if self.epochs.latest_epoch() == epoch {
            return Ok(());
        }
        let mut epochs = self.epochs.clone();
        if epochs.assign(epoch, base_offset)? {
            self.storage
                .write_meta(LEADER_EPOCH_FILE, &epochs.encode())
                .await?;
            self.epochs = epochs;
        }
        Ok(())
    }

    /// Writes a validated batch at the log end (rolling first if due), stamping its base
    /// offset and the log's leader epoch when `stamp_it`, and updates indexes, producer state
    /// and the batch cache.
    async fn write_batch(
        &mut self,
        mut batch: BytesMut,
        last_delta: i64,
        max_timestamp: i64,
        producer: Option<(i64, i16, i32, i32)>,
        stamp_it: bool,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let len = batch.len() as u64;
        let relative_end = self.next_offset + last_delta - self.active.base;
        let too_old = self
            .config
            .segment_ms
            .is_some_and(|ms| now_ms - self.active.created_ms >= ms);
        if !self.active.is_empty()
            && (self.active.size + len > self.config.segment_bytes
                || too_old
                || relative_end > i64::from(u32::MAX))
        {
            self.roll(now_ms).await?;
        }
        let base_offset = self.next_offset;
        if stamp_it {
            stamp(&mut batch, base_offset, self.leader_epoch);
        }
        let position = self.appender.append(&batch).await?;
        let meta = BatchMeta {
            position,
            len: len as u32,
            base_offset,
            last_offset: base_offset + last_delta,
            max_timestamp,
        };
        self.active.on_batch(&meta);
        self.next_offset = meta.last_offset + 1;
        if let Some((id, epoch, first, last)) = producer {
            self.producers.record(
                id,
                epoch,
                BatchMetadata {
                    first_seq: first,
                    last_seq: last,
                    base_offset,
                    last_offset: meta.last_offset,
                    max_timestamp,
                },
            );
        }
        self.unsynced_bytes += len;
        self.cache_bytes += batch.len();
        self.cache.push_back(Cached {
            segment: self.active.base,
            position,
            base_offset,
            last_offset: meta.last_offset,
            bytes: batch.freeze(),
        });
        self.evict_cache();
        Ok(AppendInfo {
            base_offset,
            last_offset: meta.last_offset,
            max_timestamp,
            duplicate: false,
        })
    }

    fn evict_cache(&mut self) {
        let written = self.appender.written();
        while self.cache_bytes > self.config.cache_bytes_max {
            let Some(front) = self.cache.front() else {
                break;
            };
            let on_disk = front.segment != self.active.base
                || front.position + front.bytes.len() as u64 <= written;
            if !on_disk {
                break;
            }
            self.cache_bytes -= front.bytes.len();
            self.cache.pop_front();
        }
    }

    /// Makes every appended batch durable now.
    pub async fn sync(&mut self, now_ms: i64) -> Result<(), LogError> {
        let target = self.next_offset;
        self.appender.sync().await?;
        self.durable_offset = target;
        self.last_sync_ms = now_ms;
        self.unsynced_bytes = 0;
        self.evict_cache();
        Ok(())
    }

    /// Writes every appended batch to the device without waiting for durability.
    pub async fn flush(&mut self) -> Result<(), LogError> {
        self.appender.flush().await?;
        self.evict_cache();
        Ok(())
    }

    /// Applies the flush policy: syncs if it is due. Returns whether it synced.
    pub async fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if self.durable_offset == self.next_offset {
            return Ok(false);
        }
        let due = match self.config.flush {
            FlushPolicy::Always => true,
            FlushPolicy::Interval { ms, bytes } => {
                self.unsynced_bytes >= bytes || now_ms - self.last_sync_ms >= ms as i64
            }
            FlushPolicy::Never => false,
        };
        if due {
            self.sync(now_ms).await?;
        }
        Ok(due)
    }

    /// When the flush policy will next want a sync (ms), if anything is waiting for one.
    pub fn next_flush_deadline_ms(&self) -> Option<i64> {
        if self.durable_offset == self.next_offset {
            return None;
        }
        match self.config.flush {
            FlushPolicy::Always => Some(self.last_sync_ms),
            FlushPolicy::Interval { ms, .. } => Some(self.last_sync_ms + ms as i64),
            FlushPolicy::Never => None,
        }
    }

    /// Seals the active segment (synced, cut to size, indexes written) and starts a new one.
    pub async fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        if self.active.is_empty() {
            return Ok(());
        }
        self.appender.seal().await?;
        self.durable_offset = self.next_offset;
        self.unsynced_bytes = 0;
        segment::write_index(&self.storage, &self.active).await?;
        let base = self.next_offset;
        // The producer state as of the new segment's base: recovery starts from it and scans
        // only what follows (the sealed segments before it are never scanned for it again,
        // so compaction may rewrite them).
        self.expire_producers(now_ms);
        self.write_producer_snapshot(base).await?;
        let file = self
            .storage
            .open_file(&log_name(base), OpenMode::CreateNew)
            .await?;
        self.storage.sync_dir().await?;
        let appender = Appender::open(file.clone(), 0, 0, appender_config(&self.config)).await?;
        let fresh = Segment {
            base,
            file,
            size: 0,
            next_offset: base,
            index: SegmentIndex::new(self.config.index_interval_bytes),
            created_ms: now_ms,
        };
        let old = std::mem::replace(&mut self.active, fresh);
        self.appender = appender;
        self.sealed.insert(old.base, old);
        self.evict_cache();
        Ok(())
    }

    /// Reads whole batches starting with the one holding `from`, up to about `max_bytes` (at
    /// least one batch when any is there). Recent batches come from memory; older ones from
    /// disk, with concurrent reads of `read_io_bytes` and a CRC check of every batch.
    pub async fn read(&self, from: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        if from < self.log_start || from > self.next_offset {
            return Err(self.out_of_range(from));
        }
        if from == self.next_offset {
            return Ok(LogRead {
                batches: Vec::new(),
                next_offset: from,
            });
        }
        if let Some(front) = self.cache.front() {
            if front.base_offset <= from {
                return Ok(self.read_cache(from, max_bytes));
            }
        }
        let segment = self.segment_for(from);
        let readable_end = if segment.base == self.active.base {
            // Batches past the written position are in the cache; this read stops before them.
            self.cache
                .iter()
                .find(|c| c.segment == segment.base)
                .map_or(segment.size, |c| c.position)
        } else {
            segment.size
        };
        self.read_segment(segment, from, max_bytes, readable_end)
            .await
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start: self.log_start,
            next_offset: self.next_offset,
        }
    }

    fn segment_for(&self, offset: i64) -> &Segment<S::File> {
        if offset >= self.active.base {
            return &self.active;
        }
        match self.sealed.range(..=offset).next_back() {
            Some((_, s)) => s,
            // Below every segment base but at or past log start: the first segment holds it.
            None => self.sealed.values().next().unwrap_or(&self.active),
        }
    }

    fn read_cache(&self, from: i64, max_bytes: usize) -> LogRead {
        let mut out = LogRead {
            batches: Vec::new(),
            next_offset: from,
        };
        let mut total = 0;
        for c in self.cache.iter().skip_while(|c| c.last_offset < from) {
            if !out.batches.is_empty() && total + c.bytes.len() > max_bytes {
                break;
            }
            total += c.bytes.len();
            out.batches.push(c.bytes.clone());
            out.next_offset = c.last_offset + 1;
        }
        out
    }

    async fn read_segment(
        &self,
        segment: &Segment<S::File>,
        from: i64,
        max_bytes: usize,
        readable_end: u64,
    ) -> Result<LogRead, LogError> {
        let window_bytes = (max_bytes as u64)
            .saturating_add(u64::from(self.config.index_interval_bytes) * 2)
            .max(storage::PAGE_BYTES as u64);
        let piece = self.config.read_io_bytes;
        // A reader asking for the offset where the previous read stopped is reading
        // sequentially: continue from what that read left, and keep reading ahead.
        let ahead = self.readahead.take();
        let (mut position, mut expected, mut window, mut pending, mut sequential) = match ahead {
            Some(a) if a.segment == segment.base && a.next_offset == from => {
                (a.position, from, a.window, a.pending, true)
            }
            _ => {
                let entry = segment
                    .index
                    .lookup(relative_offset(segment.base, from.max(segment.base)));
                // The batch at an index entry starts exactly at its relative offset, and offsets
                // are contiguous inside a segment: a batch that does not continue them is
                // corrupt (this catches flipped bits in the base offset, outside the CRC).
                let expected = segment.base + i64::from(entry.relative_offset);
                (
                    u64::from(entry.position),
                    expected,
                    Window::default(),
                    VecDeque::new(),
                    false,
                )
            }
        };
        let mut out = LogRead {
            batches: Vec::new(),
            next_offset: from,
        };
        // Bad bytes end the read: what came before them is served, the bad batch never is.
        let stop = |out: LogRead, at: u64| {
            if out.batches.is_empty() {
                Err(LogError::Corrupt {
                    segment: segment.base,
                    position: at,
                })
            } else {
                Ok(out)
            }
        };
        let mut header = [0u8; crate::batch::BATCH_HEADER_LEN];
        loop {
            // The length of the batch at the front, once its header is in the window.
            let need = if window.peek(&mut header) {
                match crate::batch::peek_batch_len(&header) {
                    Some(len) if position + len as u64 <= readable_end => len,
                    _ => return stop(out, position),
                }
            } else {
                header.len()
            };
            if window.len() < need {
                let fill_at = position + window.len() as u64;
                if fill_at >= readable_end {
                    if window.is_empty() {
                        return Ok(out);
                    }
                    // Bytes below the readable end that do not make a whole batch.
                    return stop(out, position);
                }
                let chunk = match pending.pop_front() {
                    Some(p) if p.at == fill_at => p.read.await?,
                    _ => {
                        // Not what was read ahead (or nothing was): start over from here.
                        pending.clear();
                        let len = (readable_end - fill_at).min(window_bytes) as usize;
                        if !window.is_empty() {
                            // A second fill in one read: the reader is scanning.
                            sequential = true;
                        }
                        segment.file.read_owned(fill_at, len, piece).await?
                    }
                };
                if chunk.is_empty() {
                    return stop(out, position);
                }
                let usable = (readable_end - fill_at).min(chunk.len() as u64) as usize;
                window.push(chunk.slice(..usable));
                // Keep reads going for the bytes after this window, so the device works while
                // this read checks CRCs and the reader handles what it gets.
                if sequential {
                    let mut next_at = pending
                        .back()
                        .map_or(position + window.len() as u64, |p| p.at + p.len as u64);
                    while pending.len() < READAHEAD_WINDOWS_MAX && next_at < readable_end {
                        let len = (readable_end - next_at).min(window_bytes) as usize;
                        let read = Box::pin(segment.file.read_owned(next_at, len, piece));
                        pending.push_back(Pending {
                            at: next_at,
                            len,
                            read,
                        });
                        next_at += len as u64;
                    }
                }
                continue;
            }
            let base = i64::from_be_bytes(header[..8].try_into().unwrap_or([0; 8]));
            let delta = i32::from_be_bytes(header[23..27].try_into().unwrap_or([0; 4]));
            let wanted = base.saturating_add(i64::from(delta)) >= from;
            if wanted && !out.batches.is_empty() && out.bytes() + need > max_bytes {
                break;
            }
            let bytes = window.take(need);
            let batch_position = position;
            let last = match RecordBatch::parse(&bytes) {
                Ok(b) if b.base_offset() == expected => b.last_offset(),
                _ => return stop(out, batch_position),
            };
            position += need as u64;
            expected = last + 1;
            if last >= from {
                out.batches.push(bytes);
                out.next_offset = last + 1;
            }
        }
        *self.readahead.borrow_mut() = Some(Readahead {
            segment: segment.base,
            next_offset: out.next_offset,
            position,
            window,
            pending,
        });
        Ok(out)
    }

    /// Reads `len` bytes at `position` of `segment` with concurrent reads of `read_io_bytes`.
    async fn read_range(
        &self,
        segment: &Segment<S::File>,
        position: u64,
        len: usize,
    ) -> Result<Bytes, LogError> {
        let bytes = segment
            .file
            .read_owned(position, len, self.config.read_io_bytes)
            .await?;
        if bytes.len() != len {
            return Err(LogError::Corrupt {
                segment: segment.base,
                position: position + bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// The offset and timestamp of the first record with a timestamp at or after `timestamp`,
    /// or `None` if every record is older.
    pub async fn offset_for_timestamp(
        &mut self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        self.flush().await?;
        let candidates: Vec<i64> = self.segment_bases();
        for base in candidates {
            let segment = if base == self.active.base {
                &self.active
            } else {
                &self.sealed[&base]
            };
            if segment.max_timestamp() < timestamp {
                continue;
            }
            let relative = segment.index.lookup_time(timestamp);
            let mut position = u64::from(segment.index.lookup(relative).position);
            while position < segment.size {
                let want =
                    (segment.size - position).min(segment::SCAN_WINDOW_BYTES as u64) as usize;
                let buf = self.read_range(segment, position, want).await?;
                let (batches, stop) =
                    scan(&buf, position, None, self.config.batch_bytes_max.max(want));
                for meta in &batches {
                    if meta.max_timestamp < timestamp {
                        continue;
                    }
                    let at = (meta.position - position) as usize;
                    let batch =
                        RecordBatch::parse(&buf[at..at + meta.len as usize]).map_err(|_| {
                            LogError::Corrupt {
                                segment: base,
                                position: meta.position,
                            }
                        })?;
                    let records = batch.records().map_err(|_| LogError::Corrupt {
                        segment: base,
                        position: meta.position,
                    })?;
                    if let Some(r) = records
                        .iter()
                        .find(|r| r.timestamp >= timestamp && r.offset >= self.log_start)
                    {
                        return Ok(Some((r.offset, r.timestamp)));
                    }
                }
                match (batches.last(), stop) {
                    (Some(last), _) => position = last.position + u64::from(last.len),
                    (None, ScanStop::Incomplete { len, .. }) if len > 0 => {
                        let whole = self.read_range(segment, position, len).await?;
                        let (b, _) = scan(&whole, position, None, len);
                        let Some(meta) = b.first() else {
                            return Err(LogError::Corrupt {
                                segment: base,
                                position,
                            });
                        };
                        let batch = RecordBatch::parse(&whole).map_err(|_| LogError::Corrupt {
                            segment: base,
                            position,
                        })?;
                        if meta.max_timestamp >= timestamp {
                            let records = batch.records().map_err(|_| LogError::Corrupt {
                                segment: base,
                                position,
                            })?;
                            if let Some(r) = records.iter().find(|r| r.timestamp >= timestamp) {
                                return Ok(Some((r.offset, r.timestamp)));
                            }
                        }
                        position += len as u64;
                    }
                    _ => {
                        return Err(LogError::Corrupt {
                            segment: base,
                            position,
                        })
                    }
                }
            }
        }
        Ok(None)
    }

    /// Removes every batch whose last offset is at or past `offset`, so the log ends at the
    /// base of the first removed batch (or stays as it is if there is none). Made durable
    /// before returning. `offset` must not be below the log start.
    pub async fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        if offset < self.log_start {
            return Err(self.out_of_range(offset));
        }
        if offset >= self.next_offset {
            return Ok(());
        }
        self.appender.sync().await?;
        self.readahead.take();
        // The first segment holding a batch that ends at or past `offset`.
        let base = self
            .segment_bases()
            .into_iter()
            .find(|&b| {
                let s = if b == self.active.base {
                    &self.active
                } else {
                    &self.sealed[&b]
                };
                s.next_offset > offset
            })
            .unwrap_or(self.active.base);
        let (cut_position, cut_offset) = {
            let segment = if base == self.active.base {
                &self.active
            } else {
                &self.sealed[&base]
            };
            self.find_batch(segment, offset).await?
        };
        // Drop every later segment.
        let later: Vec<i64> = self
            .segment_bases()
            .into_iter()
            .filter(|&b| b > base)
            .collect();
        for b in later {
            self.storage.remove(&log_name(b)).await?;
            segment::remove_index(&self.storage, b).await?;
            self.sealed.remove(&b);
        }
        let target = if base == self.active.base {
            let stand_in = placeholder(&self.active);
            std::mem::replace(&mut self.active, stand_in)
        } else {
            self.sealed
                .remove(&base)
                .unwrap_or_else(|| unreachable!("base came from the segment list"))
        };
        segment::remove_index(&self.storage, base).await?;
        target.file.truncate(cut_position).await?;
        target.file.fdatasync().await?;
        self.storage.sync_dir().await?;
        // Rebuild the index of what remains from the bytes themselves.
        let mut rebuilt = Segment {
            base,
            file: target.file.clone(),
            size: 0,
            next_offset: base,
            index: SegmentIndex::new(self.config.index_interval_bytes),
            created_ms: now_ms,
        };
        segment::scan_tail(&mut rebuilt, cut_position, self.config.batch_bytes_max).await?;
        assert_eq!(
            rebuilt.size, cut_position,
            "bytes before the cut were valid batches"
        );
        rebuilt.next_offset = cut_offset;
        self.appender = Appender::open(
            rebuilt.file.clone(),
            cut_position,
            cut_position,
            appender_config(&self.config),
        )
        .await?;
        self.active = rebuilt;
        self.next_offset = cut_offset;
        self.durable_offset = cut_offset;
        if cut_offset < self.log_start {
            // The log may not start past its end; record the lower start before anyone reads.
            self.storage
                .write_meta(LOG_START_FILE, &cut_offset.to_be_bytes())
                .await?;
            self.log_start = cut_offset;
        }
        while self
            .cache
            .back()
            .is_some_and(|c| c.base_offset >= cut_offset)
        {
            if let Some(c) = self.cache.pop_back() {
                self.cache_bytes -= c.bytes.len();
            }
        }
        // Positions of cached batches in this segment are unchanged below the cut.
        // The producer state must describe exactly the batches left: rebuilt from the newest
        // snapshot at or below the new end (those above it are deleted) plus a scan.
        self.rebuild_producers(now_ms).await?;
        self.cut_epochs().await?;
        Ok(())
    }

    /// Position and base offset of the first batch in `segment` whose last offset is at or
    /// past `offset` (the segment's end if none).
    async fn find_batch(
        &self,
        segment: &Segment<S::File>,
        offset: i64,
    ) -> Result<(u64, i64), LogError> {
        let entry = segment
            .index
            .lookup(relative_offset(segment.base, offset.max(segment.base)));
        let mut position = u64::from(entry.position);
        while position < segment.size {
            let want = (segment.size - position).min(segment::SCAN_WINDOW_BYTES as u64) as usize;
            let buf = self.read_range(segment, position, want).await?;
            let (batches, stop) = scan(&buf, position, None, self.config.batch_bytes_max.max(want));
            if let Some(meta) = batches.iter().find(|m| m.last_offset >= offset) {
                return Ok((meta.position, meta.base_offset));
            }
            match (batches.last(), stop) {
                (Some(last), _) => position = last.position + u64::from(last.len),
                (None, ScanStop::Incomplete { len, .. }) if len > 0 => {
                    let whole = self.read_range(segment, position, len).await?;
                    let (b, _) = scan(&whole, position, None, len);
                    let Some(meta) = b.first() else {
                        return Err(LogError::Corrupt {
                            segment: segment.base,
                            position,
                        });
                    };
                    if meta.last_offset >= offset {
                        return Ok((meta.position, meta.base_offset));
                    }
                    position += len as u64;
                }
                _ => {
                    return Err(LogError::Corrupt {
                        segment: segment.base,
                        position,
                    })
                }
            }
        }
        Ok((segment.size, segment.next_offset))
    }

    /// Advances the log start to `offset` (DeleteRecords; retention) and deletes the sealed
    /// segments wholly below it. The new start is made durable.
    pub async fn delete_before(&mut self, offset: i64) -> Result<(), LogError> {
        if offset > self.next_offset {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.log_start {
            return Ok(());
        }
        self.storage
            .write_meta(LOG_START_FILE, &offset.to_be_bytes())
            .await?;
        self.log_start = offset;
        self.producers.retain_from(offset);
        self.remove_snapshots_below(offset).await?;
        let doomed: Vec<i64> = self
            .sealed
            .values()
            .filter(|s| s.next_offset <= offset)
            .map(|s| s.base)
            .collect();
        for base in doomed {
            self.delete_sealed(base).await?;
        }
        self.storage.sync_dir().await?;
        self.cut_epochs().await?;
        Ok(())
    }

    /// Empties the log and starts it again at `offset`, which may lie past its end: a
    /// follower whose log ends before its leader's log start (the leader deleted what the
    /// follower lacks) or a Raft member installing a snapshot. Durable before it returns.
    ///
    /// Crash safety: the new start is recorded first, then every segment is removed, then the
    /// new empty segment is created; a crash at any point reopens either as the old log or
    /// as an empty log (at its old end, or at `offset`), never with a hole, and the caller
    /// simply resets again.
    pub async fn reset_to(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        self.appender.sync().await?;
        self.readahead.take();
        self.storage
            .write_meta(LOG_START_FILE, &offset.to_be_bytes())
            .await?;
        let bases: Vec<i64> = self.segment_bases();
        for base in bases {
            self.storage.remove(&log_name(base)).await?;
            segment::remove_index(&self.storage, base).await?;
        }
        self.remove_snapshots_below(i64::MAX).await?;
        self.storage.sync_dir().await?;
        let file = self
            .storage
            .open_file(&log_name(offset), OpenMode::CreateNew)
            .await?;
        self.storage.sync_dir().await?;
        self.appender = Appender::open(file.clone(), 0, 0, appender_config(&self.config)).await?;
        self.active = Segment {
            base: offset,
            file,
            size: 0,
            next_offset: offset,
            index: SegmentIndex::new(self.config.index_interval_bytes),
            created_ms: now_ms,
        };
        self.sealed.clear();
        self.cache.clear();
        self.cache_bytes = 0;
        self.log_start = offset;
        self.next_offset = offset;
        self.durable_offset = offset;
        self.unsynced_bytes = 0;
        self.producers = ProducerStateTable::new();
        self.epochs = EpochCache::new();
        self.write_epochs().await?;
        Ok(())
    }

    /// Cuts the epoch history to the log's current start and end, checkpointing a change.
    async fn cut_epochs(&mut self) -> Result<(), LogError> {
        let before = self.epochs.clone();
        self.epochs.truncate_from_end(self.next_offset);
        self.epochs.truncate_from_start(self.log_start);
        if self.epochs != before {
            self.write_epochs().await?;
        }
        Ok(())
    }

    async fn delete_sealed(&mut self, base: i64) -> Result<u64, LogError> {
        let Some(segment) = self.sealed.remove(&base) else {
            return Ok(0);
        };
        self.readahead.take();
        self.storage.remove(&log_name(base)).await?;
        segment::remove_index(&self.storage, base).await?;
        while self.cache.front().is_some_and(|c| c.segment == base) {
            if let Some(c) = self.cache.pop_front() {
                self.cache_bytes -= c.bytes.len();
            }
        }
        Ok(segment.size)
    }

    /// Applies `retention.ms` and `retention.bytes` (when the cleanup policy deletes): deletes
    /// whole sealed segments, oldest first, and advances the log start.
    /// Also forgets idle producers (`producer_id_expiration_ms`), whatever the policy.
    pub async fn enforce_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        self.expire_producers(now_ms);
        if self.config.cleanup_policy == CleanupPolicy::Compact {
            return Ok(RetentionOutcome::default());
        }
        let limits = RetentionLimits {
            retention_ms: self.config.retention_ms,
            retention_bytes: self.config.retention_bytes,
        };
        let mut plan = retention::plan(&self.summaries(), summary(&self.active), limits, now_ms);
        if plan.roll_active {
            self.roll(now_ms).await?;
            plan = retention::plan(&self.summaries(), summary(&self.active), limits, now_ms);
        }
        let doomed: Vec<i64> = self
            .sealed
            .keys()
            .take(plan.delete_sealed)
            .copied()
            .collect();
        let mut outcome = RetentionOutcome::default();
        if let Some(&last) = doomed.last() {
            let new_start = self.sealed[&last].next_offset.max(self.log_start);
            self.storage
                .write_meta(LOG_START_FILE, &new_start.to_be_bytes())
                .await?;
            self.log_start = new_start;
            self.producers.retain_from(new_start);
            self.remove_snapshots_below(new_start).await?;
        }
        for base in doomed {
            outcome.bytes_deleted += self.delete_sealed(base).await?;
            outcome.segments_deleted += 1;
        }
        if outcome.segments_deleted > 0 {
            self.storage.sync_dir().await?;
            self.cut_epochs().await?;
        }
        Ok(outcome)
    }

    fn summaries(&self) -> Vec<SegmentSummary> {
        self.sealed.values().map(summary).collect()
    }

    /// Compacts the sealed segments when the cleanup policy says so: keeps the latest record
    /// per key, drops tombstones older than `delete_retention_ms`. Each changed segment is
    /// rewritten to a new file and swapped in by rename, so a crash leaves either version.
    pub async fn compact(&mut self, now_ms: i64) -> Result<CompactionOutcome, LogError> {
        let mut outcome = CompactionOutcome::default();
        if self.config.cleanup_policy == CleanupPolicy::Delete || self.sealed.is_empty() {
            return Ok(outcome);
        }
        let bases: Vec<i64> = self.sealed.keys().copied().collect();
        let mut keys = KeyMap::new();
        // Base offset of each producer's last batch in the compacted segments. Compaction
        // keeps the producer state intact: the live state is not touched, and recovery reads
        // it from a snapshot taken at a roll (so at or past the active segment's base, beyond
        // anything compacted) plus the batches after it. Only when that snapshot is lost does
        // a replay reach into compacted segments; so that it still finds every producer's
        // epoch and last sequence there, a producer's last batch is kept as a header without
        // records when all its records go (as Kafka's cleaner does), and partly compacted
        // batches keep their producer id, epoch, base sequence and last offset delta.
        let mut last_of_producer: HashMap<i64, i64> = HashMap::new();
        for &base in &bases {
            for batch in self.segment_batches(base).await? {
                let view = RecordBatch::parse(&batch).map_err(|_| LogError::Corrupt {
                    segment: base,
                    position: 0,
                })?;
                if view.is_control() {
                    continue;
                }
                if view.header().producer_id() >= 0 {
                    last_of_producer.insert(view.header().producer_id(), view.base_offset());
                }
                for record in view.records()? {
                    if let Some(key) = &record.key {
                        keys.observe(key, record.offset);
                    }
                }
            }
        }
        let cutoff = now_ms.saturating_sub(self.config.delete_retention_ms);
        for &base in &bases {
            let batches = self.segment_batches(base).await?;
            let mut kept: Vec<Bytes> = Vec::with_capacity(batches.len());
            let mut changed = false;
            // Runs of wholly removed batches become one empty batch covering their offsets, so
            // offsets stay contiguous inside the segment (recovery relies on it).
            let mut gap: Option<(i64, i64, i32)> = None;
            for batch in batches {
                let view = RecordBatch::parse(&batch)?;
                if view.is_control() {
                    flush_gap(&mut gap, &mut kept)?;
                    kept.push(batch.clone());
                    continue;
                }
                let producer_id = view.header().producer_id();
                let producer_last = producer_id >= 0
                    && last_of_producer.get(&producer_id) == Some(&view.base_offset());
                let records = view.records()?;
                let survivors: Vec<_> = records
                    .iter()
                    .filter(|r| {
                        keys.retains(
                            r.key.as_ref(),
                            r.offset,
                            r.value.is_none(),
                            r.timestamp,
                            cutoff,
                        )
                    })
                    .collect();
                outcome.records_removed += (records.len() - survivors.len()) as u64;
                // A header kept for a producer that has written since is removable now.
                let stale_header = records.is_empty() && producer_id >= 0 && !producer_last;
                if survivors.len() == records.len() && !stale_header {
                    flush_gap(&mut gap, &mut kept)?;
                    kept.push(batch.clone());
                    continue;
                }
                changed = true;
                if survivors.is_empty() && producer_last {
                    flush_gap(&mut gap, &mut kept)?;
                    kept.push(header_only(&batch)?);
                    continue;
                }
                if survivors.is_empty() {
                    let epoch = view.header().partition_leader_epoch();
                    let first = gap.map_or(view.base_offset(), |g| g.0);
                    gap = Some((first, view.last_offset(), epoch));
                    continue;
                }
                flush_gap(&mut gap, &mut kept)?;
                let h = view.header();
                let mut builder = BatchBuilder::new(view.compression()?).producer(
                    h.producer_id(),
                    h.producer_epoch(),
                    h.base_sequence(),
                );
                for r in &survivors {
                    let headers: Vec<(&str, Option<&[u8]>)> = r
                        .headers
                        .iter()
                        .map(|x| (x.key.as_str(), x.value.as_deref()))
                        .collect();
                    let delta = i32::try_from(r.offset - view.base_offset()).map_err(|_| {
                        LogError::Corrupt {
                            segment: base,
                            position: 0,
                        }
                    })?;
                    builder.push_with_offset_delta(
                        delta,
                        r.timestamp,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &headers,
                    );
                }
                builder.last_offset_delta(h.last_offset_delta());
                let mut rebuilt = builder.build()?;
                stamp(&mut rebuilt, view.base_offset(), h.partition_leader_epoch());
                kept.push(rebuilt.freeze());
            }
            flush_gap(&mut gap, &mut kept)?;
            if !changed {
                continue;
            }
            let before = self.sealed[&base].size;
            let after = self.rewrite_segment(base, &kept, now_ms).await?;
            outcome.segments_rewritten += 1;
            outcome.bytes_before += before;
            outcome.bytes_after += after;
        }
        Ok(outcome)
    }

    /// Every batch of the sealed segment at `base`, validated.
    async fn segment_batches(&self, base: i64) -> Result<Vec<Bytes>, LogError> {
        let segment = &self.sealed[&base];
        let all = self.read_range(segment, 0, segment.size as usize).await?;
        let (metas, stop) = scan(
            &all,
            0,
            Some(base),
            self.config.batch_bytes_max.max(all.len()),
        );
        if stop != ScanStop::End {
            let position = metas.last().map_or(0, |m| m.position + u64::from(m.len));
            return Err(LogError::Corrupt {
                segment: base,
                position,
            });
        }
        Ok(metas
            .iter()
            .map(|m| all.slice(m.position as usize..(m.position + u64::from(m.len)) as usize))
            .collect())
    }

    async fn rewrite_segment(
        &mut self,
        base: i64,
        batches: &[Bytes],
        now_ms: i64,
    ) -> Result<u64, LogError> {
        self.readahead.take();
        let cleaned = format!("{}.cleaned", log_name(base));
        self.storage.remove(&cleaned).await?;
        let file = self
            .storage
            .open_file(&cleaned, OpenMode::CreateNew)
            .await?;
        let mut appender =
            Appender::open(file.clone(), 0, 0, appender_config(&self.config)).await?;
        let mut segment = Segment {
            base,
            file: file.clone(),
            size: 0,
            next_offset: self.sealed[&base].next_offset,
            index: SegmentIndex::new(self.config.index_interval_bytes),
            created_ms: now_ms,
        };
        let keep_next = segment.next_offset;
        for b in batches {
            let view = RecordBatch::parse(b)?;
            let position = appender.append(b).await?;
            segment.on_batch(&BatchMeta {
                position,
                len: b.len() as u32,
                base_offset: view.base_offset(),
                last_offset: view.last_offset(),
                max_timestamp: view.max_timestamp(),
            });
        }
        // The segment still covers the same offsets even if its last records went.
        segment.next_offset = keep_next;
        appender.seal().await?;
        segment::remove_index(&self.storage, base).await?;
        self.storage.rename(&cleaned, &log_name(base)).await?;
        self.storage.sync_dir().await?;
        segment::write_index(&self.storage, &segment).await?;
        let size = segment.size;
        // Cached copies of this segment's batches are stale now. The cache is a suffix of the
        // log, so drop everything up to this segment to keep it one.
        while self.cache.front().is_some_and(|c| c.segment <= base) {
            if let Some(c) = self.cache.pop_front() {
                self.cache_bytes -= c.bytes.len();
            }
        }
        self.sealed.insert(base, segment);
        Ok(size)
    }

    /// Writes the producer-state snapshot as of `offset` (the log end) and deletes all but the
    /// newest [`PRODUCER_SNAPSHOTS_KEPT`]. The snapshot is written atomically (temporary name,
    /// fsync, rename, directory sync); the deletions need no sync, as an older snapshot that
    /// reappears after a crash still describes the log below its offset.
    async fn write_producer_snapshot(&mut self, offset: i64) -> Result<(), LogError> {
        self.storage
            .write_meta(&snapshot_name(offset), &self.producers.encode(offset))
            .await?;
        self.snapshots.insert(offset);
        let excess = self.snapshots.len().saturating_sub(PRODUCER_SNAPSHOTS_KEPT);
        let old: Vec<i64> = self.snapshots.iter().take(excess).copied().collect();
        for o in old {
            self.storage.remove(&snapshot_name(o)).await?;
            self.snapshots.remove(&o);
        }
        Ok(())
    }

    /// Deletes the snapshots below `log_start` (after retention or DeleteRecords). One that
    /// reappeared after a crash would do no harm: the batches it skips are gone anyway.
    async fn remove_snapshots_below(&mut self, log_start: i64) -> Result<(), LogError> {
        let doomed: Vec<i64> = self.snapshots.range(..log_start).copied().collect();
        for o in doomed {
            self.storage.remove(&snapshot_name(o)).await?;
            self.snapshots.remove(&o);
        }
        Ok(())
    }

    /// Rebuilds the producer state for the log as it is now (at open and after `truncate_to`):
    /// deletes (durably) the snapshots past the log end, whose batches are gone, then loads the
    /// newest readable snapshot at or below the end (an unreadable one is deleted and counted)
    /// or starts empty, replays every batch after it, and drops what lies below the log start
    /// and producers idle past `producer_id_expiration_ms`. Returns the snapshots skipped.
    async fn rebuild_producers(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let stale: Vec<i64> = self
            .snapshots
            .range(self.next_offset.saturating_add(1)..)
            .copied()
            .collect();
        for &o in &stale {
            self.storage.remove(&snapshot_name(o)).await?;
            self.snapshots.remove(&o);
        }
        if !stale.is_empty() {
            self.storage.sync_dir().await?;
        }
        let mut skipped = 0;
        let mut table = ProducerStateTable::new();
        let mut from = i64::MIN;
        let candidates: Vec<i64> = self.snapshots.iter().rev().copied().collect();
        for offset in candidates {
            let name = snapshot_name(offset);
            let decoded = self
                .storage
                .read_meta(&name)
                .await?
                .map(|bytes| ProducerStateTable::decode(&bytes, offset));
            match decoded {
                Some(Ok(t)) => {
                    table = t;
                    from = offset;
                    break;
                }
                Some(Err(_)) => {
                    skipped += 1;
                    self.storage.remove(&name).await?;
                    self.snapshots.remove(&offset);
                }
                None => {
                    self.snapshots.remove(&offset);
                }
            }
        }
        self.replay_from(from, &mut table).await?;
        table.retain_from(self.log_start);
        table.expire(now_ms, self.config.producer_id_expiration_ms);
        self.producers = table;
        Ok(skipped)
    }

    /// Records into `table` every producer batch with a base offset at or past `from`, reading
    /// the batch headers of the segments holding them.
    async fn replay_from(&self, from: i64, table: &mut ProducerStateTable) -> Result<(), LogError> {
        for base in self.segment_bases() {
            let segment = if base == self.active.base {
                &self.active
            } else {
                &self.sealed[&base]
            };
            if segment.next_offset <= from || segment.is_empty() {
                continue;
            }
            let mut position = if from > segment.base {
                u64::from(
                    segment
                        .index
                        .lookup(relative_offset(segment.base, from))
                        .position,
                )
            } else {
                0
            };
            while position < segment.size {
                let want =
                    (segment.size - position).min(segment::SCAN_WINDOW_BYTES as u64) as usize;
                let buf = self.read_range(segment, position, want).await?;
                let (metas, stop) =
                    scan(&buf, position, None, self.config.batch_bytes_max.max(want));
                for m in &metas {
                    let at = (m.position - position) as usize;
                    replay_batch(&buf[at..at + m.len as usize], from, table);
                }
                match (metas.last(), stop) {
                    (Some(last), _) => position = last.position + u64::from(last.len),
                    (None, ScanStop::Incomplete { len, .. }) if len > 0 => {
                        let whole = self.read_range(segment, position, len).await?;
                        if scan(&whole, position, None, len).0.is_empty() {
                            return Err(LogError::Corrupt {
                                segment: segment.base,
                                position,
                            });
                        }
                        replay_batch(&whole, from, table);
                        position += len as u64;
                    }
                    _ => {
                        return Err(LogError::Corrupt {
                            segment: segment.base,
                            position,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes cleanly: everything synced, the active segment cut to size with its index
    /// written, and the clean-shutdown marker left so the next open skips the scan.
    pub async fn close(mut self) -> Result<(), LogError> {
        self.appender.seal().await?;
        segment::write_index(&self.storage, &self.active).await?;
        // The producer state as of the end, so the next open scans nothing for it.
        self.write_producer_snapshot(self.next_offset).await?;
        self.storage
            .write_meta(CLEAN_SHUTDOWN_FILE, b"clean\n")
            .await?;
        Ok(())
    }
}

/// Appends to `kept` the empty batch standing for the removed offsets in `gap`, if any.
fn flush_gap(gap: &mut Option<(i64, i64, i32)>, kept: &mut Vec<Bytes>) -> Result<(), LogError> {
    let Some((first, last, epoch)) = gap.take() else {
        return Ok(());
    };
    let delta = i32::try_from(last - first)
        .map_err(|_| LogError::Config("a compaction gap spans more than i32::MAX offsets"))?;
    let mut builder = BatchBuilder::new(crate::batch::Compression::None);
    builder.last_offset_delta(delta);
    let mut empty = builder.build()?;
    stamp(&mut empty, first, epoch);
    kept.push(empty.freeze());
    Ok(())
}

/// Records the batch in `bytes` (a whole, valid batch) into `table` if it is a producer's
/// batch with a base offset at or past `from`.
fn replay_batch(bytes: &[u8], from: i64, table: &mut ProducerStateTable) {
    let Ok((h, _)) = BatchHeader::ref_from_prefix(bytes) else {
        return;
    };
    if h.base_offset() < from
        || h.producer_id() < 0
        || h.attributes() & ATTR_CONTROL != 0
        || h.base_sequence() < 0
    {
        return;
    }
    let delta = h.last_offset_delta();
    table.record(
        h.producer_id(),
        h.producer_epoch(),
        BatchMetadata {
            first_seq: h.base_sequence(),
            last_seq: last_sequence(h.base_sequence(), delta),
            base_offset: h.base_offset(),
            last_offset: h.base_offset() + i64::from(delta),
            max_timestamp: h.max_timestamp(),
        },
    );
}

/// The batch with its records removed: the same header (offsets, timestamps, producer id,
/// epoch and sequences) with no records, uncompressed, its CRC recomputed. Compaction keeps one
/// for the last batch of each producer it would otherwise remove whole.
fn header_only(batch: &[u8]) -> Result<Bytes, LogError> {
    let mut out = BytesMut::from(&batch[..BATCH_HEADER_LEN.min(batch.len())]);
    let Ok((h, _)) = BatchHeader::mut_from_prefix(&mut out[..]) else {
        return Err(LogError::InvalidBatch(BatchError::BadLength(
            batch.len() as i32
        )));
    };
    h.batch_length
        .set((BATCH_HEADER_LEN - BATCH_LOG_OVERHEAD) as i32);
    let attributes = h.attributes() & !ATTR_COMPRESSION_MASK;
    h.attributes.set(attributes);
    h.records_count.set(0);
    let crc = compute_crc(&out);
    if let Ok((h, _)) = BatchHeader::mut_from_prefix(&mut out[..]) {
        h.crc.set(crc);
    }
    Ok(out.freeze())
}

fn placeholder<F: StorageFile>(segment: &Segment<F>) -> Segment<F> {
    Segment {
        base: segment.base,
        file: segment.file.clone(),
        size: 0,
        next_offset: segment.base,
        index: SegmentIndex::new(1),
        created_ms: segment.created_ms,
    }
}

fn summary<F: StorageFile>(s: &Segment<F>) -> SegmentSummary {
    SegmentSummary {
        base: s.base,
        size: s.size,
        max_timestamp: s.max_timestamp(),
        empty: s.is_empty(),
    }
}

fn appender_config(config: &LogConfig) -> AppenderConfig {
    AppenderConfig {
        chunk_bytes: config.write_chunk_bytes,
        writes_in_flight_max: config.writes_in_flight_max,
        preallocate_bytes: config.preallocate_bytes,
    }
}

fn validate(config: &LogConfig) -> Result<(), LogError> {
    if config.segment_bytes == 0 || config.segment_bytes > SEGMENT_BYTES_MAX {
        return Err(LogError::Config("segment_bytes must be in 1..=4 GiB-1"));
    }
    if config.write_chunk_bytes < storage::PAGE_BYTES
        || !config.write_chunk_bytes.is_multiple_of(storage::PAGE_BYTES)
    {
        return Err(LogError::Config(
            "write_chunk_bytes must be a positive multiple of 4096",
        ));
    }
    if config.writes_in_flight_max == 0 {
        return Err(LogError::Config("writes_in_flight_max must be at least 1"));
    }
    if config.index_interval_bytes == 0 {
        return Err(LogError::Config("index_interval_bytes must be at least 1"));
    }
    if config.batch_bytes_max < crate::batch::BATCH_HEADER_LEN {
        return Err(LogError::Config("batch_bytes_max is below a batch header"));
    }
    if config.read_io_bytes == 0 {
        return Err(LogError::Config("read_io_bytes must be at least 1"));
    }
    if config.producer_id_expiration_ms <= 0 {
        return Err(LogError::Config(
            "producer_id_expiration_ms must be at least 1",
        ));
    }
    Ok(())
}
