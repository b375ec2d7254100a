//! The controller quorum's durable log: Raft entries stored in a partition log, as KRaft keeps
//! its metadata in a Kafka log. Entry `i` (Raft indexes start at 1) is the one-record batch at
//! offset `i - 1`, stamped with its Raft term as the batch's leader epoch, so the log's
//! leader-epoch history answers "which term wrote index `i`" and its recovery, truncation and
//! CRCs come with it. The Raft hard state (current term, vote, commit index) and the point the
//! log was compacted to sit in a small checkpoint file next to it, written atomically.
//!
//! Every append is synced before it returns: Raft may only acknowledge or vote on what is
//! durable. Appending entries that overlap the log replaces the overlapping suffix, as Raft's
//! follower rule says (the caller has checked that they conflict).
//!
//! Hard-state file format (big-endian): version u8 (1), term u64, vote u64, commit u64,
//! compacted index u64, compacted term u64, CRC-32C u32 of everything before it.
//!
//! Snapshots: the state machine's state as of an applied index sits in a snapshot file
//! (version u8 (1), index u64, term u64, data, CRC-32C u32), written atomically *before* the
//! entries it covers are dropped, so the log never lacks what no snapshot holds. Installing a
//! leader's snapshot that the log does not continue empties the log and restarts it after the
//! snapshot; an install cut short by a crash is finished when the log is opened.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::batch::{BatchBuilder, Compression, RecordBatch};
use crate::log::{FlushPolicy, LogConfig, LogError, PartitionLog, Storage};

/// Name of the hard-state checkpoint.
pub const HARD_STATE_FILE: &str = "raft-hard-state";
/// Name of the snapshot file.
pub const SNAPSHOT_FILE: &str = "raft-snapshot";
const SNAPSHOT_VERSION: u8 = 1;
const HARD_STATE_VERSION: u8 = 1;
const HARD_STATE_BYTES: usize = 1 + 8 * 5 + 4;
/// Bytes read per call when returning entries.
const READ_BYTES: usize = 1 << 20;

/// Raft's persistent state besides the entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// The node it voted for in `term` (0 for none).
    pub vote: u64,
    /// The highest index known committed.
    pub commit: u64,
}

/// One Raft entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its index (from 1).
    pub index: u64,
    /// The term of the leader that created it.
    pub term: u64,
    /// The payload (for the controller: encoded metadata records).
    pub data: Bytes,
}

/// Why the metadata log refused or failed.
#[derive(Debug, Error)]
pub enum MetadataLogError {
    /// The partition log failed (IO, corruption).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The hard-state file is damaged.
    #[error("raft hard state: {0}")]
    HardState(String),
    /// The snapshot file is damaged.
    #[error("raft snapshot: {0}")]
    Snapshot(String),
    /// Entries that do not continue the log (a gap, or indexes out of order).
    #[error("entry {index} does not continue the log (last index {last_index})")]
    Gap {
        /// The entry's index.
        index: u64,
        /// The log's last index.
        last_index: u64,
    },
    /// Entries that would rewrite what is compacted or committed.
    #[error("entry {index} would replace a compacted or committed entry (through {protected})")]
    Protected {
        /// The entry's index.
        index: u64,
        /// The last index that may not change.
        protected: u64,
    },
    /// A term beyond what a batch's leader epoch holds, or going backwards.
    #[error("term {term} at index {index} is invalid here")]
    BadTerm {
        /// The entry's index.
        index: u64,
        /// Its term.
        term: u64,
    },
}

/// A snapshot of the state machine as of entry `index` (of `term`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last entry it covers.
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// The state (for the controller: an encoded metadata image).
    pub data: Bytes,
}

/// The durable Raft log of one controller.
pub struct MetadataLog<S: Storage> {
    log: PartitionLog<S>,
    meta: S,
    hard: HardState,
    /// The last compacted entry (index, term): the entries up to it are gone.
    compacted: (u64, u64),
    /// The latest snapshot, if any.
    snapshot: Option<Snapshot>,
}

fn log_config() -> LogConfig {
    // A small log of small entries, compacted by snapshots rather than by time.
    LogConfig {
        segment_bytes: 16 << 20,
        segment_ms: None,
        flush: FlushPolicy::Always,
        retention_ms: None,
        retention_bytes: None,
        write_chunk_bytes: 64 << 10,
        preallocate_bytes: 1 << 20,
        cache_bytes_max: 1 << 20,
        ..LogConfig::default()
    }
}

impl<S: Storage + Clone> MetadataLog<S> {
    /// Opens (or creates) the log in `storage`, recovering it after a crash.
    pub async fn open(storage: S, now_ms: i64) -> Result<Self, MetadataLogError> {
        let meta = storage.clone();
        let log = PartitionLog::open(storage, log_config(), now_ms).await?;
        let (hard, compacted) = match meta
            .read_meta(HARD_STATE_FILE)
            .await
            .map_err(LogError::Io)?
        {
            Some(bytes) => decode_hard_state(&bytes)?,
            None => (HardState::default(), (0, 0)),
        };
        let snapshot = match read_snapshot_file(&meta).await? {
            Some(bytes) => Some(decode_snapshot(&bytes)?),
            None => None,
        };
        let mut me = MetadataLog {
            log,
            meta,
            hard,
            compacted,
            snapshot,
        };
        // A snapshot the log does not continue (an install cut short): finish it.
        if let Some(snap) = me.snapshot.clone() {
            if snap.index > me.compacted.0 {
                me.settle_snapshot(&snap, now_ms).await?;
            }
        }
        // The log starts where it was compacted to (a crash between the two writes leaves
        // the log start behind: move it up).
        let start = i64::try_from(me.compacted.0).unwrap_or(i64::MAX);
        if me.log.log_start_offset() < start && start <= me.log.next_offset() {
            me.log.delete_before(start).await?;
        }
        Ok(me)
    }

    /// The hard state as last saved.
    pub fn hard_state(&self) -> HardState {
        self.hard
    }

    /// Saves the hard state durably (atomically replacing the previous one).
    pub async fn set_hard_state(&mut self, hard: HardState) -> Result<(), MetadataLogError> {
        self.write_state(hard, self.compacted).await?;
        self.hard = hard;
        Ok(())
    }

    /// Index and term of the last compacted entry ((0, 0) if none).
    pub fn compacted(&self) -> (u64, u64) {
        self.compacted
    }

    /// The first index still held.
    pub fn first_index(&self) -> u64 {
        self.log.log_start_offset() as u64 + 1
    }

    /// The last index (0 for an empty log).
    pub fn last_index(&self) -> u64 {
        self.log.next_offset() as u64
    }

    /// The term of entry `index`: from the log's epoch history, or the compaction point;
    /// `None` if it is not held.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.compacted.0 {
            return Some(self.compacted.1);
        }
        if index < self.first_index() || index > self.last_index() {
            return None;
        }
        let epoch = self.log.epochs().epoch_at(index as i64 - 1)?;
        u64::try_from(epoch).ok()
    }

    /// Entries `low..high` (at most `max_bytes` of payload, but at least one).
    pub async fn entries(
        &self,
        low: u64,
        high: u64,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, MetadataLogError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut next = low;
        let high = high.min(self.last_index() + 1);
        while next < high {
            let read = self.log.read(next as i64 - 1, READ_BYTES).await?;
            if read.batches.is_empty() {
                break;
            }
            for batch in &read.batches {
                let view = RecordBatch::parse(batch).map_err(LogError::from)?;
                let index = view.base_offset() as u64 + 1;
                if index < next {
                    continue;
                }
                if index >= high {
                    return Ok(out);
                }
                let term = view.header().partition_leader_epoch();
                let records = view.records().map_err(LogError::from)?;
                let data = records
                    .into_iter()
                    .next()
                    .and_then(|r| r.value)
                    .unwrap_or_default();
                bytes += data.len();
                if !out.is_empty() && bytes > max_bytes {
                    return Ok(out);
                }
                out.push(LogEntry {
                    index,
                    term: u64::try_from(term).unwrap_or(0),
                    data,
                });
                next = index + 1;
            }
        }
        Ok(out)
    }

    /// Appends `entries` (consecutive indexes) durably. Those at or below the last index
    /// replace the log from the first of them on; nothing compacted or committed may be
    /// replaced.
    pub async fn append(
        &mut self,
        entries: &[LogEntry],
        now_ms: i64,
    ) -> Result<(), MetadataLogError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        for pair in entries.windows(2) {
            if pair[1].index != pair[0].index + 1 {
                return Err(MetadataLogError::Gap {
                    index: pair[1].index,
                    last_index: pair[0].index,
                });
            }
            if pair[1].term < pair[0].term {
                return Err(MetadataLogError::BadTerm {
                    index: pair[1].index,
                    term: pair[1].term,
                });
            }
        }
        if first.index > self.last_index() + 1 {
            return Err(MetadataLogError::Gap {
                index: first.index,
                last_index: self.last_index(),
            });
        }
        let protected = self.hard.commit.max(self.compacted.0);
        if first.index <= protected {
            return Err(MetadataLogError::Protected {
                index: first.index,
                protected,
            });
        }
        for e in entries {
            if i32::try_from(e.term).is_err() {
                return Err(MetadataLogError::BadTerm {
                    index: e.index,
                    term: e.term,
                });
            }
        }
        if first.index <= self.last_index() {
            self.log.truncate_to(first.index as i64 - 1, now_ms).await?;
        }
        for e in entries {
            let mut builder = BatchBuilder::new(Compression::None);
            builder.push(now_ms, None, Some(&e.data), &[]);
            let batch: BytesMut = builder.build().map_err(LogError::from)?;
            self.log.set_leader_epoch(e.term as i32);
            self.log.append(batch, now_ms).await?;
        }
        self.log.sync(now_ms).await?;
        Ok(())
    }

    /// Drops the entries through `index` (they are in a snapshot), remembering its term.
    pub async fn compact(&mut self, index: u64) -> Result<(), MetadataLogError> {
        if index <= self.compacted.0 {
            return Ok(());
        }
        let Some(term) = self.term(index) else {
            return Err(MetadataLogError::Gap {
                index,
                last_index: self.last_index(),
            });
        };
        self.write_state(self.hard, (index, term)).await?;
        self.compacted = (index, term);
        self.log.delete_before(index as i64).await?;
        Ok(())
    }

    /// The latest snapshot, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Saves `snapshot` durably, then drops the entries it covers: this member's own snapshot
    /// of what it applied, or one its leader sent (the log is emptied and restarted after it
    /// when it does not hold the snapshot's last entry with the same term).
    pub async fn save_snapshot(
        &mut self,
        snapshot: Snapshot,
        now_ms: i64,
    ) -> Result<(), MetadataLogError> {
        if snapshot.index <= self.compacted.0 {
            return Ok(());
        }
        self.meta
            .write_meta(SNAPSHOT_FILE, &encode_snapshot(&snapshot))
            .await
            .map_err(LogError::Io)?;
        self.snapshot = Some(snapshot.clone());
        self.settle_snapshot(&snapshot, now_ms).await
    }

    /// Makes the log start after `snap` (already durable).
    async fn settle_snapshot(
        &mut self,
        snap: &Snapshot,
        now_ms: i64,
    ) -> Result<(), MetadataLogError> {
        let hard = HardState {
            commit: self.hard.commit.max(snap.index),
            ..self.hard
        };
        if self.term(snap.index) == Some(snap.term) {
            self.hard = hard;
            return self.compact(snap.index).await;
        }
        // Recorded first: a crash before the reset reopens into `open`'s repair above.
        self.write_state(hard, (snap.index, snap.term)).await?;
        self.hard = hard;
        self.compacted = (snap.index, snap.term);
        self.log
            .reset_to(i64::try_from(snap.index).unwrap_or(i64::MAX), now_ms)
            .await?;
        Ok(())
    }

    /// Closes cleanly (the next open skips recovery).
    pub async fn close(self) -> Result<(), MetadataLogError> {
        self.log.close().await?;
        Ok(())
    }

    async fn write_state(
        &self,
        hard: HardState,
        compacted: (u64, u64),
    ) -> Result<(), MetadataLogError> {
        let mut out = Vec::with_capacity(HARD_STATE_BYTES);
        out.push(HARD_STATE_VERSION);
        for v in [hard.term, hard.vote, hard.commit, compacted.0, compacted.1] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        self.meta
            .write_meta(HARD_STATE_FILE, &out)
            .await
            .map_err(LogError::Io)?;
        Ok(())
    }
}

fn crc32c(data: &[u8]) -> u32 {
    let mut buf = vec![0u8; crate::batch::CRC_START + data.len()];
    buf[crate::batch::CRC_START..].copy_from_slice(data);
    crate::batch::compute_crc(&buf)
}

async fn read_snapshot_file<S: Storage>(meta: &S) -> Result<Option<Vec<u8>>, MetadataLogError> {
    Ok(meta.read_meta(SNAPSHOT_FILE).await.map_err(LogError::Io)?)
}

fn encode_snapshot(snap: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 16 + snap.data.len() + 4);
    out.push(SNAPSHOT_VERSION);
    out.extend_from_slice(&snap.index.to_be_bytes());
    out.extend_from_slice(&snap.term.to_be_bytes());
    out.extend_from_slice(&snap.data);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, MetadataLogError> {
    if bytes.len() < 1 + 16 + 4 {
        return Err(MetadataLogError::Snapshot(format!(
            "only {} bytes",
            bytes.len()
        )));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c(body).to_be_bytes() != crc {
        return Err(MetadataLogError::Snapshot("CRC mismatch".into()));
    }
    if body[0] != SNAPSHOT_VERSION {
        return Err(MetadataLogError::Snapshot(format!(
            "unknown version {}",
            body[0]
        )));
    }
    let index = u64::from_be_bytes(body[1..9].try_into().unwrap_or([0; 8]));
    let term = u64::from_be_bytes(body[9..17].try_into().unwrap_or([0; 8]));
    Ok(Snapshot {
        index,
        term,
        data: Bytes::copy_from_slice(&body[17..]),
    })
}

fn decode_hard_state(bytes: &[u8]) -> Result<(HardState, (u64, u64)), MetadataLogError> {
    if bytes.len() != HARD_STATE_BYTES {
        return Err(MetadataLogError::HardState(format!(
            "{} bytes, expected {HARD_STATE_BYTES}",
            bytes.len()
        )));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c(body).to_be_bytes() != crc {
        return Err(MetadataLogError::HardState("CRC mismatch".into()));
    }
    if body[0] != HARD_STATE_VERSION {
        return Err(MetadataLogError::HardState(format!(
            "unknown version {}",
            body[0]
        )));
    }
    let v = |i: usize| {
        let at = 1 + 8 * i;
        u64::from_be_bytes(body[at..at + 8].try_into().unwrap_or([0; 8]))
    };
    Ok((
        HardState {
            term: v(0),
            vote: v(1),
            commit: v(2),
        },
        (v(3), v(4)),
    ))
}
