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
//! On restart a node reloads its entries and hard state from the metadata log, and Raft hands
//! the committed ones to it again, rebuilding the image from the start. (Snapshots of the image,
//! and so log compaction, are not done yet: the log grows.)

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState as RaftHardState, Message};
use raft::storage::MemStorage as RaftMemory;
use raft::{Config, RawNode, StateRole};
use thiserror::Error;

use super::controller::{Controller, ControllerConfig};
use super::metadata::{ClusterMetadata, MetadataRecord};
use super::metadata_log::{HardState, LogEntry, MetadataLog, MetadataLogError};
use crate::log::Storage;

/// Ticks without a leader's word before a follower stands for election.
pub const ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// Largest payload sent in one append message.
const MESSAGE_BYTES_MAX: u64 = 1 << 20;

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
    raw: RawNode<RaftMemory>,
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
        let entries = log.entries(1, u64::MAX, usize::MAX).await?;
        let memory = RaftMemory::new_with_conf_state(ConfState::from((voters.to_vec(), vec![])));
        {
            let mut core = memory.wl();
            let hard = log.hard_state();
            core.set_hardstate(RaftHardState {
                term: hard.term,
                vote: hard.vote,
                commit: hard.commit.min(log.last_index()),
                ..Default::default()
            });
            let entries: Vec<Entry> = entries.iter().map(to_raft).collect();
            core.append(&entries)?;
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
        let raw = RawNode::new(&raft_config, memory, &discard_logger())?;
        Ok(QuorumNode {
            id,
            raw,
            controller: Controller::new(config),
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
        let committed = ready.take_committed_entries();
        self.apply(committed, &mut applied)?;
        if !ready.entries().is_empty() {
            let entries: Vec<LogEntry> = ready.entries().iter().map(from_raft).collect();
            log.append(&entries, now_ms).await?;
            self.raw.mut_store().wl().append(ready.entries())?;
        }
        if let Some(hs) = ready.hs() {
            log.set_hard_state(HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            })
            .await?;
            self.raw.mut_store().wl().set_hardstate(hs.clone());
        }
        out.extend(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hard = log.hard_state();
            hard.commit = commit;
            log.set_hard_state(hard).await?;
            self.raw.mut_store().wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        self.apply(light.take_committed_entries(), &mut applied)?;
        self.raw.advance_apply();
        if self.is_leader() && !self.was_leader {
            // Brokers' sessions restart under the new active controller.
            self.controller.activate(now_ms);
        }
        self.was_leader = self.is_leader();
        Ok((out, applied))
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
