//! One member of the controller quorum: a Raft node (raft-rs, sans-IO) whose log carries
//! batches of metadata records, with the [`Controller`] as its state machine.
//!
//! The IO shell feeds it ticks and messages from its peers, proposes the records the active
//! controller decided on, and calls [`QuorumNode::advance`] whenever it may have work: that
//! persists new entries and the hard state to the [`MetadataLog`] *before* the messages that
//! depend on them are returned for sending (Raft's rule), and applies committed entries to the
//! controller in log order on every member alike. A record that does not fit the image when
//! its turn comes (two decisions raced) is skipped, the same way on every member, so all
//! images stay equal.
//!
//! Snapshots: every [`SNAPSHOT_ENTRIES`] applied entries a member saves its image as of the last
//! applied entry as a snapshot and drops the entries it covers (from the durable log and from
//! memory), so neither grows without bound. A member so far behind that the leader no longer
//! has the entries it lacks is sent the leader's snapshot (Raft's InstallSnapshot), installs
//! it durably and takes the image from it.
//!
//! On restart a node loads its snapshot (if any) as its image, reloads the entries after it and
//! the hard state from the metadata log, and Raft hands the committed ones to it again.

use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;

use raft::eraftpb::{
    ConfState, Entry, EntryType, HardState as RaftHardState, Message, MessageType,
    Snapshot as RaftSnapshot,
};
use raft::{
    Config, GetEntriesContext, RaftState, RawNode, SnapshotStatus, StateRole, Storage as RaftStore,
    StorageError,
};
use thiserror::Error;

use super::controller::{Controller, ControllerConfig};
use super::metadata::{ClusterMetadata, MetadataRecord};
use super::metadata_log::{HardState, LogEntry, MetadataLog, MetadataLogError, Snapshot};
use crate::log::Storage;

/// Ticks without a leader's word before a follower stands for election.
pub const ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// Largest payload sent in one append message.
const MESSAGE_BYTES_MAX: u64 = 1 << 20;
/// Applied entries between a member's snapshots.
pub const SNAPSHOT_ENTRIES: u64 = 1000;

/// Why a quorum operation failed.
#[derive(Debug, Error)]
pub enum QuorumError {
    /// Raft refused (e.g. a malformed message) or failed.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The durable log failed.
    #[error(transparent)]
    Log(#[from] MetadataLogError),
    /// Only the leader takes proposals.
    #[error("not the controller leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<u64>,
    },
    /// An entry's payload is not a batch of records (a bug or a damaged log).
    #[error("entry {index}: {reason}")]
    BadEntry {
        /// The entry.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot's payload is not an image (a bug or a damaged file).
    #[error("snapshot at {index}: {reason}")]
    BadSnapshot {
        /// The snapshot's index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
}

/// What Raft reads its log from: the entries after the latest snapshot, the hard state and
/// that snapshot, in memory (the durable copy is the [`MetadataLog`]). One shard owns it.
#[derive(Clone, Default)]
struct Memory(Rc<RefCell<MemoryCore>>);

#[derive(Default)]
struct MemoryCore {
    hard: RaftHardState,
    conf: ConfState,
    /// The latest snapshot (index 0: none); `entries` continue it.
    snapshot: RaftSnapshot,
    entries: Vec<Entry>,
}

impl MemoryCore {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    fn last_index(&self) -> u64 {
        self.snapshot_index() + self.entries.len() as u64
    }

    /// Appends entries, replacing any suffix they overlap.
    fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let keep = first.index.saturating_sub(self.snapshot_index() + 1) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
    }

    /// Makes `snapshot` the base: entries it covers go, later ones stay if they continue it.
    fn set_snapshot(&mut self, snapshot: RaftSnapshot) {
        let index = snapshot.get_metadata().index;
        let term = snapshot.get_metadata().term;
        let continues = self.term(index) == Some(term);
        let drop = index.saturating_sub(self.snapshot_index()) as usize;
        if continues && drop <= self.entries.len() {
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.hard.commit = self.hard.commit.max(index);
        self.hard.term = self.hard.term.max(term);
        self.snapshot = snapshot;
    }

    fn term(&self, index: u64) -> Option<u64> {
        let base = self.snapshot_index();
        if index == base {
            return Some(self.snapshot.get_metadata().term);
        }
        if index < base || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - base - 1) as usize].term)
    }
}

impl RaftStore for Memory {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.0.borrow();
        Ok(RaftState {
            hard_state: core.hard.clone(),
            conf_state: core.conf.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.0.borrow();
        let base = core.snapshot_index();
        if low <= base {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > core.last_index() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut out = core.entries[(low - base - 1) as usize..(high - base - 1) as usize].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let core = self.0.borrow();
        if index < core.snapshot_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        core.term(index)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().snapshot_index() + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<RaftSnapshot> {
        let core = self.0.borrow();
        if core.snapshot_index() == 0 || core.snapshot_index() < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(core.snapshot.clone())
    }
}

fn raft_snapshot(snap: &Snapshot, conf: &ConfState) -> RaftSnapshot {
    let mut out = RaftSnapshot {
        data: snap.data.to_vec().into(),
        ..Default::default()
    };
    let meta = out.mut_metadata();
    meta.index = snap.index;
    meta.term = snap.term;
    meta.set_conf_state(conf.clone());
    out
}

fn image_of(snap: &Snapshot) -> Result<ClusterMetadata, QuorumError> {
    ClusterMetadata::decode_image(&snap.data).map_err(|e| QuorumError::BadSnapshot {
        index: snap.index,
        reason: e.to_string(),
    })
}

/// A committed entry as applied, for callers that track what the quorum decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The entry's index.
    pub index: u64,
    /// The records it carried.
    pub records: Vec<MetadataRecord>,
    /// Records skipped because they no longer fit the image.
    pub skipped: usize,
}

/// Encodes a batch of records as one entry's payload: `u32` length, then the record, each.
pub fn encode_records(records: &[MetadataRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let bytes = r.encode();
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Decodes [`encode_records`].
pub fn decode_records(mut data: &[u8]) -> Result<Vec<MetadataRecord>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err("a record length is cut off".into());
        }
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let Some(body) = data.get(4..4 + len) else {
            return Err(format!("a record of {len} bytes is cut off"));
        };
        out.push(MetadataRecord::decode(body).map_err(|e| e.to_string())?);
        data = &data[4 + len..];
    }
    Ok(out)
}

/// One controller quorum member.
pub struct QuorumNode {
    id: u64,
    raw: RawNode<Memory>,
    memory: Memory,
    /// Applied entries between snapshots.
    snapshot_every: u64,
    /// Snapshots taken from the leader over this node's life.
    installed: usize,
    controller: Controller,
    /// Records skipped at apply time, over this node's life.
    skipped: usize,
    /// Whether it led at the last `advance`.
    was_leader: bool,
}

fn discard_logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl QuorumNode {
    /// Starts member `id` of the quorum `voters` from what `log` holds (empty the first time).
    pub async fn open<S: Storage + Clone>(
        id: u64,
        voters: &[u64],
        log: &MetadataLog<S>,
        config: ControllerConfig,
    ) -> Result<QuorumNode, QuorumError> {
        let conf = ConfState::from((voters.to_vec(), vec![]));
        let memory = Memory::default();
        let snapshot_every = config.metadata_snapshot_entries;
        let snapshot = log.snapshot().cloned();
        let from = snapshot.as_ref().map_or(1, |s| s.index + 1);
        let entries = log.entries(from, u64::MAX, usize::MAX).await?;
        let entries: Vec<Entry> = entries.iter().map(to_raft).collect();
        let controller = match &snapshot {
            Some(snap) => Controller::from_metadata(config, image_of(snap)?),
            None => Controller::new(config),
        };
        {
            let mut core = memory.0.borrow_mut();
            core.conf = conf.clone();
            if let Some(snap) = &snapshot {
                core.set_snapshot(raft_snapshot(snap, &conf));
            }
            core.append(&entries);
            let hard = log.hard_state();
            core.hard = RaftHardState {
                term: hard.term,
                vote: hard.vote,
                commit: hard
                    .commit
                    .min(core.last_index())
                    .max(core.snapshot_index()),
                ..Default::default()
            };
        }
        let raft_config = Config {
            id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            max_size_per_msg: MESSAGE_BYTES_MAX,
            max_inflight_msgs: 64,
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        raft_config.validate()?;
        let raw = RawNode::new(&raft_config, memory.clone(), &discard_logger())?;
        Ok(QuorumNode {
            id,
            raw,
            memory,
            snapshot_every: snapshot_every.max(1),
            installed: 0,
            controller,
            skipped: 0,
            was_leader: false,
        })
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether this member leads the quorum (and so runs the active controller).
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this member knows of.
    pub fn leader(&self) -> Option<u64> {
        match self.raw.raft.leader_id {
            0 => None,
            id => Some(id),
        }
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The controller (its image is the committed metadata applied so far).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The controller, for the leader's decisions.
    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.controller
    }

    /// The applied image.
    pub fn metadata(&self) -> &ClusterMetadata {
        self.controller.metadata()
    }

    /// Index of the last entry in this member's log.
    pub fn last_index(&self) -> u64 {
        self.raw.raft.raft_log.last_index()
    }

    /// Index of the last entry applied to the controller.
    pub fn applied_index(&self) -> u64 {
        self.raw.raft.raft_log.applied
    }

    /// The term of the entry at `index`, if this member still has it.
    pub fn entry_term(&self, index: u64) -> Option<u64> {
        self.raw.raft.raft_log.term(index).ok()
    }

    /// Sets how many applied entries go between snapshots (tests make it small).
    pub fn set_snapshot_every(&mut self, entries: u64) {
        self.snapshot_every = entries.max(1);
    }

    /// Snapshots this node installed from its leader (since it was opened).
    pub fn snapshots_installed(&self) -> usize {
        self.installed
    }

    /// Index of this member's latest snapshot (0: none).
    pub fn snapshot_index(&self) -> u64 {
        self.memory.0.borrow().snapshot_index()
    }

    /// Records skipped at apply time so far.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// One logical clock tick.
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// A message from a peer.
    pub fn step(&mut self, message: Message) -> Result<(), QuorumError> {
        self.raw.step(message)?;
        Ok(())
    }

    /// Proposes `records` as one entry (leader only). They take effect when committed and
    /// applied, on every member alike.
    pub fn propose(&mut self, records: &[MetadataRecord]) -> Result<(), QuorumError> {
        if !self.is_leader() {
            return Err(QuorumError::NotLeader {
                leader: self.leader(),
            });
        }
        self.raw.propose(Vec::new(), encode_records(records))?;
        Ok(())
    }

    /// Does what Raft has ready: persists entries and hard state to `log` (synced), applies
    /// committed entries, and returns the messages to send and what was applied.
    pub async fn advance<S: Storage + Clone>(
        &mut self,
        log: &mut MetadataLog<S>,
        now_ms: i64,
    ) -> Result<(Vec<Message>, Vec<Applied>), QuorumError> {
        let mut out = Vec::new();
        let mut applied = Vec::new();
        if !self.raw.has_ready() {
            return Ok((out, applied));
        }
        let mut ready = self.raw.ready();
        out.extend(ready.take_messages());
        if !ready.snapshot().is_empty() {
            // The leader's snapshot: durable first, then the image is taken from it.
            let meta = ready.snapshot().get_metadata();
            let snap = Snapshot {
                index: meta.index,
                term: meta.term,
                data: Bytes::copy_from_slice(&ready.snapshot().data),
            };
            let image = image_of(&snap)?;
            log.save_snapshot(snap, now_ms).await?;
            self.memory
                .0
                .borrow_mut()
                .set_snapshot(ready.snapshot().clone());
            let config = self.controller.config().clone();
            self.controller = Controller::from_metadata(config, image);
            self.installed += 1;
        }
        let committed = ready.take_committed_entries();
        self.apply(committed, &mut applied)?;
        if !ready.entries().is_empty() {
            let entries: Vec<LogEntry> = ready.entries().iter().map(from_raft).collect();
            log.append(&entries, now_ms).await?;
            self.memory.0.borrow_mut().append(ready.entries());
        }
        if let Some(hs) = ready.hs() {
            log.set_hard_state(HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            })
            .await?;
            self.memory.0.borrow_mut().hard = hs.clone();
        }
        out.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hard = log.hard_state();
            hard.commit = commit;
            log.set_hard_state(hard).await?;
            self.memory.0.borrow_mut().hard.commit = commit;
        }
        out.extend(light.take_messages());
        self.apply(light.take_committed_entries(), &mut applied)?;
        self.raw.advance_apply();
        if self.is_leader() && !self.was_leader {
            // Brokers' sessions restart under the new active controller.
            self.controller.activate(now_ms);
        }
        self.was_leader = self.is_leader();
        // A snapshot sent is reported at once: the follower's next answer tells whether it
        // took it (if the message was lost, its refusal brings another).
        for m in &out {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                self.raw.report_snapshot(m.to, SnapshotStatus::Finish);
            }
        }
        self.maybe_snapshot(log, now_ms).await?;
        Ok((out, applied))
    }

    /// Saves a snapshot of the image once enough entries were applied since the last one.
    async fn maybe_snapshot<S: Storage + Clone>(
        &mut self,
        log: &mut MetadataLog<S>,
        now_ms: i64,
    ) -> Result<(), QuorumError> {
        let applied = self.applied_index();
        let base = self.snapshot_index();
        if applied < base + self.snapshot_every || applied > log.last_index() {
            return Ok(());
        }
        let Some(term) = self.entry_term(applied) else {
            return Ok(());
        };
        let snap = Snapshot {
            index: applied,
            term,
            data: Bytes::from(self.controller.metadata().encode_image()),
        };
        let conf = self.memory.0.borrow().conf.clone();
        log.save_snapshot(snap.clone(), now_ms).await?;
        self.memory
            .0
            .borrow_mut()
            .set_snapshot(raft_snapshot(&snap, &conf));
        Ok(())
    }

    fn apply(
        &mut self,
        entries: Vec<Entry>,
        applied: &mut Vec<Applied>,
    ) -> Result<(), QuorumError> {
        for entry in entries {
            if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
                continue;
            }
            let records = decode_records(&entry.data).map_err(|reason| QuorumError::BadEntry {
                index: entry.index,
                reason,
            })?;
            let mut skipped = 0;
            for record in &records {
                if self.controller.replay(record).is_err() {
                    skipped += 1;
                }
            }
            self.skipped += skipped;
            applied.push(Applied {
                index: entry.index,
                records,
                skipped,
            });
        }
        Ok(())
    }
}

fn to_raft(e: &LogEntry) -> Entry {
    let mut entry = Entry {
        index: e.index,
        term: e.term,
        data: e.data.clone(),
        ..Default::default()
    };
    entry.set_entry_type(EntryType::EntryNormal);
    entry
}

fn from_raft(e: &Entry) -> LogEntry {
    LogEntry {
        index: e.index,
        term: e.term,
        data: Bytes::copy_from_slice(&e.data),
    }
}
