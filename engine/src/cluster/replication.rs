//! One partition's replication, Kafka-style (ISR), as a sans-IO state machine.
//!
//! The leader ([`PartitionLeader`]) keeps a view of each follower, built from the follower's
//! fetches: a fetch at offset `n` says the follower's log ends at `n`. From those views it
//! computes the **high watermark** (the smallest log end over the in-sync replicas, never going
//! back), decides when a follower has fallen out of sync (`replica.lag.time.max.ms` without
//! catching up: the ISR shrinks) or caught up again (the ISR grows), answers whether an
//! `acks=all` write may be taken (`min.insync.replicas`) and when it is complete. ISR changes are
//! *proposed*: the controller owns the ISR, and the leader adopts its answer. While a change is
//! in flight the leader counts the high watermark over the larger of the two sets (KIP-497's
//! "maximal ISR"), so every replica the controller might consider in sync holds every record
//! the leader calls committed; that is what makes electing any ISR member lossless.
//!
//! A follower of a new leader first truncates its log to where it diverged from the leader's,
//! found with the leader-epoch history ([`EpochCache`], KIP-101/KIP-279): it asks the leader for
//! the end offset of its own latest epoch and cuts at [`truncation_offset`]. Only then does it
//! fetch; records it fetches carry their epochs, which it adds to its own history.
//!
//! No IO and no clock: the broker's shell feeds fetches, appends, controller answers and the
//! time, and carries out what comes back (send this proposal, complete these produce waits).

use std::collections::BTreeMap;

use thiserror::Error;

/// A broker id, as in the cluster metadata.
pub type ReplicaId = i32;

pub use crate::log::epochs::{
    EpochCache, EpochEntry, EpochError, UNDEFINED_EPOCH, UNDEFINED_OFFSET,
};

/// Kafka's default `replica.lag.time.max.ms`.
pub const REPLICA_LAG_TIME_MAX_MS_DEFAULT: i64 = 30_000;

/// Why a replication input was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplicationError {
    /// A partition state that cannot be: the leader or an ISR member outside the replicas,
    /// duplicate replicas, an empty ISR.
    #[error("invalid partition state: {0}")]
    InvalidState(String),
    /// The fetching replica is not a replica of this partition (or is the leader itself).
    #[error("replica {0} is not a follower of this partition")]
    NotAFollower(ReplicaId),
    /// The request carries an older leader epoch than this leader's.
    #[error("leader epoch {request} is older than the current {current}")]
    FencedLeaderEpoch {
        /// The epoch in the request.
        request: i32,
        /// This leader's epoch.
        current: i32,
    },
    /// The request carries a newer leader epoch: this replica has not heard of it yet.
    #[error("leader epoch {request} is newer than the current {current}")]
    UnknownLeaderEpoch {
        /// The epoch in the request.
        request: i32,
        /// This leader's epoch.
        current: i32,
    },
    /// A fetch offset beyond the leader's log end or negative.
    #[error("fetch offset {offset} is outside the log (end {log_end})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The leader's log end.
        log_end: i64,
    },
    /// `acks=all` with fewer in-sync replicas than `min.insync.replicas`.
    #[error("{isr} in-sync replica(s), fewer than min.insync.replicas={min}")]
    NotEnoughReplicas {
        /// The ISR's size.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: i32,
    },
}

/// Where a follower cuts its log before fetching from a new leader. It asked the leader for
/// the end offset of `requested` (its own latest epoch) and got `answer` (the leader's
/// `(epoch, end_offset)` from [`EpochCache::end_offset_for`]).
///
/// - The leader knows `requested`: cut at the leader's end of it (or keep all if shorter).
/// - The leader's answer is an older epoch (it never wrote `requested`): both logs agree up to
///   the end of that older epoch on both sides, so cut at the smaller of the two ends.
/// - The leader knows nothing of it (undefined): fall back to the high watermark, as Kafka
///   does without epoch information; records up to it are committed and so on the leader.
pub fn truncation_offset(
    local: &EpochCache,
    local_log_end: i64,
    local_high_watermark: i64,
    requested: i32,
    answer: (i32, i64),
) -> i64 {
    let (epoch, end) = answer;
    let cut = if epoch == UNDEFINED_EPOCH && end == UNDEFINED_OFFSET {
        local_high_watermark
    } else if epoch == UNDEFINED_EPOCH || epoch == requested {
        end
    } else {
        let (_, local_end) = local.end_offset_for(epoch, local_log_end);
        if local_end == UNDEFINED_OFFSET {
            end
        } else {
            end.min(local_end)
        }
    };
    cut.clamp(0, local_log_end.max(0))
}

/// The controller's state of a partition, as the leader is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// The replicas, preferred leader first.
    pub replicas: Vec<ReplicaId>,
    /// The in-sync replicas.
    pub isr: Vec<ReplicaId>,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// Bumped by every change of the partition's state.
    pub partition_epoch: i32,
}

/// An ISR change the leader asks the controller for (Kafka's `AlterPartition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// The ISR wanted.
    pub isr: Vec<ReplicaId>,
    /// The leader epoch it was made under.
    pub leader_epoch: i32,
    /// The partition epoch it builds on.
    pub partition_epoch: i32,
}

/// Leader settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// A follower that has not caught up with the leader's log end for this long leaves the
    /// ISR (`replica.lag.time.max.ms`).
    pub replica_lag_time_max_ms: i64,
}

impl Default for LeaderConfig {
    fn default() -> LeaderConfig {
        LeaderConfig {
            replica_lag_time_max_ms: REPLICA_LAG_TIME_MAX_MS_DEFAULT,
        }
    }
}

/// What a follower's fetch changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The high watermark to put in the fetch response.
    pub high_watermark: i64,
    /// The new high watermark, if this fetch moved it (complete `acks=all` waits up to it).
    pub high_watermark_advanced: Option<i64>,
    /// An ISR expansion to send to the controller.
    pub proposal: Option<IsrProposal>,
}

/// Where an `acks=all` write stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcksAll {
    /// The high watermark has not reached it yet.
    Waiting,
    /// Replicated to the whole ISR.
    Complete,
    /// Replicated, but the ISR shrank below `min.insync.replicas` meanwhile (Kafka's
    /// `NotEnoughReplicasAfterAppend`): the client should treat it as failed and retry (an
    /// idempotent producer's retry is deduplicated).
    NotEnoughReplicasAfterAppend {
        /// The ISR's size.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: i32,
    },
}

/// The leader's view of one follower.
#[derive(Debug, Clone, Copy)]
struct FollowerView {
    /// The follower's log end, from its last fetch in this leadership; unknown before one.
    log_end: Option<i64>,
    /// Last time it was known to have been caught up with the leader's log end.
    last_caught_up_ms: i64,
    /// When it last fetched, and the leader's log end then.
    last_fetch_ms: i64,
    leader_end_at_last_fetch: i64,
}

/// One partition's leader: its followers' progress, the ISR, the high watermark.
#[derive(Debug, Clone)]
pub struct PartitionLeader {
    id: ReplicaId,
    config: LeaderConfig,
    view: PartitionView,
    /// The ISR change sent to the controller and not answered yet.
    pending: Option<IsrProposal>,
    followers: BTreeMap<ReplicaId, FollowerView>,
    log_end: i64,
    high_watermark: i64,
    /// The leader's log end when it became leader: the first offset of its epoch.
    epoch_start_offset: i64,
}

impl PartitionLeader {
    /// Becomes leader of a partition the controller described in `view`, with a local log
    /// ending at `log_end` and a high watermark of `high_watermark` (kept: it never goes
    /// back). Followers' positions are unknown until they fetch; those in the ISR count as
    /// caught up now.
    pub fn new(
        id: ReplicaId,
        view: PartitionView,
        log_end: i64,
        high_watermark: i64,
        now_ms: i64,
        config: LeaderConfig,
    ) -> Result<PartitionLeader, ReplicationError> {
        validate(&view, id)?;
        if log_end < 0 || high_watermark < 0 || high_watermark > log_end {
            return Err(ReplicationError::InvalidState(format!(
                "high watermark {high_watermark} and log end {log_end} do not fit"
            )));
        }
        let followers = view
            .replicas
            .iter()
            .filter(|&&r| r != id)
            .map(|&r| {
                let in_sync = view.isr.contains(&r);
                let view = FollowerView {
                    log_end: None,
                    last_caught_up_ms: if in_sync { now_ms } else { 0 },
                    last_fetch_ms: 0,
                    leader_end_at_last_fetch: UNDEFINED_OFFSET,
                };
                (r, view)
            })
            .collect();
        let mut leader = PartitionLeader {
            id,
            config,
            view,
            pending: None,
            followers,
            log_end,
            high_watermark,
            epoch_start_offset: log_end,
        };
        leader.advance_high_watermark();
        Ok(leader)
    }

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// The leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.view.leader_epoch
    }

    /// The partition state as the controller last told it.
    pub fn view(&self) -> &PartitionView {
        &self.view
    }

    /// The ISR as the controller last committed it.
    pub fn isr(&self) -> &[ReplicaId] {
        &self.view.isr
    }

    /// The ISR change in flight, if any.
    pub fn pending(&self) -> Option<&IsrProposal> {
        self.pending.as_ref()
    }

    /// The committed ISR together with any replica a pending change adds: the set the high
    /// watermark waits for.
    pub fn maximal_isr(&self) -> Vec<ReplicaId> {
        let mut isr = self.view.isr.clone();
        if let Some(pending) = &self.pending {
            for r in &pending.isr {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
        }
        isr
    }

    /// The high watermark: every offset below it is on every in-sync replica.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The leader's log end.
    pub fn log_end(&self) -> i64 {
        self.log_end
    }

    /// The first offset written in this leader's epoch.
    pub fn epoch_start_offset(&self) -> i64 {
        self.epoch_start_offset
    }

    /// A follower's log end as of its last fetch (unknown before one in this leadership).
    pub fn follower_log_end(&self, follower: ReplicaId) -> Option<i64> {
        self.followers.get(&follower).and_then(|f| f.log_end)
    }

    /// Whether an `acks=all` write may be appended now (`min.insync.replicas`).
    pub fn check_acks_all(&self, min_insync: i32) -> Result<(), ReplicationError> {
        let isr = self.view.isr.len();
        if (isr as i64) < i64::from(min_insync) {
            return Err(ReplicationError::NotEnoughReplicas {
                isr,
                min: min_insync,
            });
        }
        Ok(())
    }

    /// Where an `acks=all` write whose records end before `end_offset` stands.
    pub fn acks_all(&self, end_offset: i64, min_insync: i32) -> AcksAll {
        if self.high_watermark < end_offset {
            return AcksAll::Waiting;
        }
        let isr = self.view.isr.len();
        if (isr as i64) < i64::from(min_insync) {
            AcksAll::NotEnoughReplicasAfterAppend {
                isr,
                min: min_insync,
            }
        } else {
            AcksAll::Complete
        }
    }

    /// The local log now ends at `log_end` (records appended). Returns the new high
    /// watermark if it moved (only when the leader is the whole ISR).
    pub fn appended(&mut self, log_end: i64) -> Option<i64> {
        if log_end > self.log_end {
            self.log_end = log_end;
        }
        self.advance_high_watermark()
    }

    /// A follower fetched from `fetch_offset` (so its log ends there) under leader epoch
    /// `epoch`, at `now_ms`. Updates its progress, the high watermark and, if it has caught
    /// up, proposes it back into the ISR.
    pub fn follower_fetch(
        &mut self,
        follower: ReplicaId,
        epoch: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Result<FetchOutcome, ReplicationError> {
        let current = self.view.leader_epoch;
        if epoch < current {
            return Err(ReplicationError::FencedLeaderEpoch {
                request: epoch,
                current,
            });
        }
        if epoch > current {
            return Err(ReplicationError::UnknownLeaderEpoch {
                request: epoch,
                current,
            });
        }
        let log_end = self.log_end;
        if fetch_offset < 0 || fetch_offset > log_end {
            return Err(ReplicationError::OffsetOutOfRange {
                offset: fetch_offset,
                log_end,
            });
        }
        let state = self
            .followers
            .get_mut(&follower)
            .ok_or(ReplicationError::NotAFollower(follower))?;
        // Kafka's rule: caught up now if it reached the log end; caught up at the previous
        // fetch if it reached what the log end was then.
        if fetch_offset >= log_end {
            state.last_caught_up_ms = state.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= state.leader_end_at_last_fetch {
            state.last_caught_up_ms = state.last_caught_up_ms.max(state.last_fetch_ms);
        }
        state.last_fetch_ms = now_ms;
        state.leader_end_at_last_fetch = log_end;
        state.log_end = Some(fetch_offset);
        let advanced = self.advance_high_watermark();
        let proposal = self.maybe_expand(follower);
        Ok(FetchOutcome {
            high_watermark: self.high_watermark,
            high_watermark_advanced: advanced,
            proposal,
        })
    }

    /// Checks for followers out of sync at `now_ms`: in the ISR, not at the log end, and not
    /// caught up for longer than `replica.lag.time.max.ms`. Proposes the ISR without them.
    pub fn tick(&mut self, now_ms: i64) -> Option<IsrProposal> {
        if self.pending.is_some() {
            return None;
        }
        let lagging: Vec<ReplicaId> = self
            .view
            .isr
            .iter()
            .copied()
            .filter(|&r| r != self.id)
            .filter(|r| {
                self.followers.get(r).is_some_and(|f| {
                    f.log_end != Some(self.log_end)
                        && now_ms - f.last_caught_up_ms > self.config.replica_lag_time_max_ms
                })
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        let isr = self
            .view
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        self.propose(isr)
    }

    /// The controller's current state of the partition arrived (the answer to a proposal, or
    /// a change it made, e.g. removing a fenced broker). Adopted if it is for this leader
    /// epoch and not older than what the leader has. A pending proposal is settled only by a
    /// state past the partition epoch it was based on: the controller applies a proposal only
    /// at that epoch, so until it has moved on the proposal may still be applied, and its
    /// added replicas keep counting for the high watermark. Returns the new high watermark if
    /// it moved. A newer leader epoch means this replica
    /// may no longer lead: the caller must step down ([`ReplicationError::UnknownLeaderEpoch`]).
    pub fn controller_state(
        &mut self,
        view: PartitionView,
    ) -> Result<Option<i64>, ReplicationError> {
        let current = self.view.leader_epoch;
        if view.leader_epoch < current {
            return Err(ReplicationError::FencedLeaderEpoch {
                request: view.leader_epoch,
                current,
            });
        }
        if view.leader_epoch > current {
            return Err(ReplicationError::UnknownLeaderEpoch {
                request: view.leader_epoch,
                current,
            });
        }
        validate(&view, self.id)?;
        if view.partition_epoch < self.view.partition_epoch {
            return Ok(None);
        }
        for r in &view.replicas {
            if *r != self.id {
                self.followers.entry(*r).or_insert(FollowerView {
                    log_end: None,
                    last_caught_up_ms: 0,
                    last_fetch_ms: 0,
                    leader_end_at_last_fetch: UNDEFINED_OFFSET,
                });
            }
        }
        self.followers.retain(|r, _| view.replicas.contains(r));
        if self
            .pending
            .as_ref()
            .is_some_and(|p| view.partition_epoch > p.partition_epoch)
        {
            self.pending = None;
        }
        self.view = view;
        Ok(self.advance_high_watermark())
    }

    /// The controller answered `proposal` with a refusal (e.g. an added replica is fenced):
    /// if it is the pending one, it is dropped, so a later fetch or tick can propose again.
    /// The controller must refuse every copy of it alike (its answer depends only on the
    /// proposal and its own state at that partition epoch, or it remembers the answer), or a
    /// late copy applied after this would put a replica in the ISR that the high watermark
    /// no longer waits for.
    pub fn proposal_refused(&mut self, proposal: &IsrProposal) {
        if self.pending.as_ref() == Some(proposal) {
            self.pending = None;
        }
    }

    fn maybe_expand(&mut self, follower: ReplicaId) -> Option<IsrProposal> {
        if self.pending.is_some() || self.view.isr.contains(&follower) {
            return None;
        }
        let log_end = self.followers.get(&follower)?.log_end?;
        // In sync: has everything committed, and everything since this leader's epoch began
        // (so it has truncated away anything an older leader wrote past that).
        if log_end >= self.high_watermark && log_end >= self.epoch_start_offset {
            let mut isr = self.view.isr.clone();
            isr.push(follower);
            return self.propose(isr);
        }
        None
    }

    fn propose(&mut self, isr: Vec<ReplicaId>) -> Option<IsrProposal> {
        let proposal = IsrProposal {
            isr,
            leader_epoch: self.view.leader_epoch,
            partition_epoch: self.view.partition_epoch,
        };
        self.pending = Some(proposal.clone());
        Some(proposal)
    }

    /// Moves the high watermark to the smallest log end over the maximal ISR, if that is
    /// further. A follower whose position is not known yet holds it where it is.
    fn advance_high_watermark(&mut self) -> Option<i64> {
        let mut candidate = self.log_end;
        for r in self.maximal_isr() {
            if r == self.id {
                continue;
            }
            match self.followers.get(&r).and_then(|f| f.log_end) {
                Some(end) => candidate = candidate.min(end),
                None => return None,
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            Some(candidate)
        } else {
            None
        }
    }
}

fn validate(view: &PartitionView, leader: ReplicaId) -> Result<(), ReplicationError> {
    let mut replicas = view.replicas.clone();
    replicas.sort_unstable();
    replicas.dedup();
    if replicas.len() != view.replicas.len() {
        return Err(ReplicationError::InvalidState(format!(
            "duplicate replicas in {:?}",
            view.replicas
        )));
    }
    if !view.replicas.contains(&leader) {
        return Err(ReplicationError::InvalidState(format!(
            "leader {leader} is not a replica of {:?}",
            view.replicas
        )));
    }
    if !view.isr.contains(&leader) {
        return Err(ReplicationError::InvalidState(format!(
            "leader {leader} is not in the ISR {:?}",
            view.isr
        )));
    }
    if let Some(r) = view.isr.iter().find(|r| !view.replicas.contains(r)) {
        return Err(ReplicationError::InvalidState(format!(
            "ISR member {r} is not a replica of {:?}",
            view.replicas
        )));
    }
    Ok(())
}

/// A follower's high watermark after a fetch answer: the leader's, but never past its own
/// log end.
pub fn follower_high_watermark(leader_high_watermark: i64, local_log_end: i64) -> i64 {
    leader_high_watermark.min(local_log_end).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        EpochCache::from_entries(
            entries
                .iter()
                .map(|&(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
        )
        .unwrap()
    }

    fn view(
        replicas: &[i32],
        isr: &[i32],
        leader_epoch: i32,
        partition_epoch: i32,
    ) -> PartitionView {
        PartitionView {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader_epoch,
            partition_epoch,
        }
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(4, 40), (4, 40));
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        // Epoch 2 was never written here: the floor is 1, which ended where 3 began.
        assert_eq!(c.end_offset_for(2, 40), (1, 10));
        assert_eq!(c.end_offset_for(1, 40), (1, 10));
        assert_eq!(c.end_offset_for(0, 40), (UNDEFINED_EPOCH, 0));
        assert_eq!(c.end_offset_for(5, 40), (UNDEFINED_EPOCH, UNDEFINED_OFFSET));
        assert_eq!(
            c.end_offset_for(UNDEFINED_EPOCH, 40),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
        assert_eq!(
            EpochCache::new().end_offset_for(1, 0),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
    }

    #[test]
    fn assign_and_truncate() {
        let mut c = EpochCache::new();
        assert!(c.assign(1, 0).unwrap());
        assert!(!c.assign(1, 5).unwrap());
        assert!(c.assign(3, 10).unwrap());
        assert!(c.assign(2, 12).is_err(), "an older epoch is refused");
        assert!(
            c.assign(4, 9).is_err(),
            "a new epoch before the latest start is refused"
        );
        assert_eq!(c, cache(&[(1, 0), (3, 10)]));
        c.truncate_from_end(10);
        assert_eq!(c, cache(&[(1, 0)]));
        c.assign(5, 10).unwrap();
        c.assign(6, 20).unwrap();
        c.truncate_from_start(15);
        assert_eq!(c, cache(&[(5, 15), (6, 20)]));
        c.truncate_from_start(20);
        assert_eq!(c, cache(&[(6, 20)]));
        assert!(EpochCache::from_entries(vec![
            EpochEntry {
                epoch: 2,
                start_offset: 0
            },
            EpochEntry {
                epoch: 2,
                start_offset: 4
            }
        ])
        .is_err());
    }

    #[test]
    fn truncation_finds_the_divergence() {
        // The follower wrote 10..15 in epoch 2 as leader; the new leader (epoch 3) only had
        // epoch 2's records up to 12.
        let follower = cache(&[(1, 0), (2, 8)]);
        let leader = cache(&[(1, 0), (2, 8), (3, 12)]);
        let answer = leader.end_offset_for(2, 20);
        assert_eq!(answer, (2, 12));
        assert_eq!(truncation_offset(&follower, 15, 9, 2, answer), 12);
        // A follower shorter than the leader's epoch end keeps everything.
        assert_eq!(truncation_offset(&follower, 11, 9, 2, answer), 11);
        // The leader never had epoch 2: both agree up to the end of epoch 1 on each side.
        let leader = cache(&[(1, 0), (3, 9)]);
        let answer = leader.end_offset_for(2, 20);
        assert_eq!(answer, (1, 9));
        assert_eq!(truncation_offset(&follower, 15, 5, 2, answer), 8);
        // The leader knows nothing: back to the high watermark.
        assert_eq!(
            truncation_offset(&follower, 15, 5, 2, (UNDEFINED_EPOCH, UNDEFINED_OFFSET)),
            5
        );
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_log_end_and_never_goes_back() {
        let mut l = PartitionLeader::new(
            1,
            view(&[1, 2, 3], &[1, 2, 3], 5, 7),
            10,
            4,
            0,
            LeaderConfig::default(),
        )
        .unwrap();
        assert_eq!(l.high_watermark(), 4, "followers' positions are unknown");
        assert_eq!(
            l.follower_fetch(2, 5, 10, 1)
                .unwrap()
                .high_watermark_advanced,
            None
        );
        let out = l.follower_fetch(3, 5, 8, 1).unwrap();
        assert_eq!(out.high_watermark_advanced, Some(8));
        assert_eq!(l.appended(20), None);
        assert_eq!(
            l.follower_fetch(3, 5, 20, 2)
                .unwrap()
                .high_watermark_advanced,
            Some(10)
        );
        assert_eq!(
            l.follower_fetch(2, 5, 20, 2)
                .unwrap()
                .high_watermark_advanced,
            Some(20)
        );
        // A follower that truncated and fetches from lower does not move it back.
        assert_eq!(l.follower_fetch(2, 5, 15, 3).unwrap().high_watermark, 20);
        assert_eq!(l.acks_all(20, 2), AcksAll::Complete);
        assert_eq!(l.acks_all(21, 2), AcksAll::Waiting);
        assert!(matches!(
            l.follower_fetch(2, 4, 15, 3),
            Err(ReplicationError::FencedLeaderEpoch { .. })
        ));
        assert!(matches!(
            l.follower_fetch(2, 5, 21, 3),
            Err(ReplicationError::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            l.follower_fetch(9, 5, 1, 3),
            Err(ReplicationError::NotAFollower(9))
        );
    }

    #[test]
    fn a_lagging_follower_is_proposed_out_and_back_in() {
        let config = LeaderConfig {
            replica_lag_time_max_ms: 100,
        };
        let mut l =
            PartitionLeader::new(1, view(&[1, 2, 3], &[1, 2, 3], 0, 0), 0, 0, 0, config).unwrap();
        l.appended(10);
        l.follower_fetch(2, 0, 10, 50).unwrap();
        l.follower_fetch(3, 0, 5, 50).unwrap();
        assert_eq!(l.tick(100), None, "within the lag time");
        let shrink = l.tick(151).expect("3 has not caught up for 151 ms");
        assert_eq!(shrink.isr, vec![1, 2]);
        assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
        assert_eq!(l.tick(300), None, "one change in flight at a time");
        // Until the controller answers, 3 still holds the high watermark back.
        assert_eq!(l.high_watermark(), 5);
        assert_eq!(
            l.controller_state(view(&[1, 2, 3], &[1, 2], 0, 1)).unwrap(),
            Some(10)
        );
        assert_eq!(
            l.check_acks_all(3),
            Err(ReplicationError::NotEnoughReplicas { isr: 2, min: 3 })
        );
        assert!(l.check_acks_all(2).is_ok());
        // 3 catches up: proposed back in; while pending it counts for the high watermark.
        l.appended(12);
        let out = l.follower_fetch(3, 0, 10, 400).unwrap();
        let grow = out.proposal.expect("3 reached the high watermark");
        assert_eq!(grow.isr, vec![1, 2, 3]);
        assert_eq!((grow.leader_epoch, grow.partition_epoch), (0, 1));
        l.follower_fetch(2, 0, 12, 410).unwrap();
        assert_eq!(l.high_watermark(), 10, "the pending member holds it back");
        assert_eq!(
            l.follower_fetch(3, 0, 12, 420)
                .unwrap()
                .high_watermark_advanced,
            Some(12)
        );
        // A stale state (older partition epoch) is ignored; one at the proposal's own epoch
        // (sent before the controller saw it) leaves it pending; the answer settles it.
        assert_eq!(
            l.controller_state(view(&[1, 2, 3], &[1, 2], 0, 0)).unwrap(),
            None
        );
        assert!(l.pending().is_some());
        assert_eq!(
            l.controller_state(view(&[1, 2, 3], &[1, 2], 0, 1)).unwrap(),
            None
        );
        assert_eq!(l.maximal_isr(), vec![1, 2, 3], "still waits for 3");
        l.controller_state(view(&[1, 2, 3], &[1, 2, 3], 0, 2))
            .unwrap();
        assert_eq!(l.isr(), &[1, 2, 3]);
        assert!(l.pending().is_none());
        // A newer leader epoch: this replica must step down.
        assert!(matches!(
            l.controller_state(view(&[1, 2, 3], &[2, 3], 1, 3)),
            Err(ReplicationError::UnknownLeaderEpoch { .. })
        ));
    }

    #[test]
    fn a_follower_behind_the_epoch_start_is_not_let_back_in() {
        // Leader of epoch 2 from offset 10; 3 (in sync) is at 5, so the high watermark is 5.
        // Follower 2 at 7 has everything committed but may still hold an older leader's
        // records between 5 and 10 that this leader does not have: not in sync yet.
        let mut l = PartitionLeader::new(
            1,
            view(&[1, 2, 3], &[1, 3], 2, 0),
            10,
            4,
            0,
            LeaderConfig::default(),
        )
        .unwrap();
        assert_eq!(
            l.follower_fetch(3, 2, 5, 1)
                .unwrap()
                .high_watermark_advanced,
            Some(5)
        );
        assert_eq!(l.follower_fetch(2, 2, 7, 1).unwrap().proposal, None);
        let out = l.follower_fetch(2, 2, 10, 2).unwrap();
        assert_eq!(out.proposal.map(|p| p.isr), Some(vec![1, 3, 2]));
    }

    #[test]
    fn a_refused_proposal_can_be_made_again() {
        let mut l = PartitionLeader::new(
            1,
            view(&[1, 2], &[1], 0, 4),
            0,
            0,
            0,
            LeaderConfig::default(),
        )
        .unwrap();
        let first = l.follower_fetch(2, 0, 0, 1).unwrap().proposal.unwrap();
        assert_eq!(l.follower_fetch(2, 0, 0, 2).unwrap().proposal, None);
        let other = IsrProposal {
            isr: vec![1],
            ..first.clone()
        };
        l.proposal_refused(&other);
        assert!(
            l.pending().is_some(),
            "a refusal of another proposal changes nothing"
        );
        l.proposal_refused(&first);
        assert!(l.pending().is_none());
        assert_eq!(l.follower_fetch(2, 0, 0, 3).unwrap().proposal, Some(first));
    }

    #[test]
    fn bad_states_are_refused() {
        let c = LeaderConfig::default();
        assert!(PartitionLeader::new(1, view(&[1, 2], &[2], 0, 0), 0, 0, 0, c).is_err());
        assert!(PartitionLeader::new(1, view(&[2, 3], &[1], 0, 0), 0, 0, 0, c).is_err());
        assert!(PartitionLeader::new(1, view(&[1, 1], &[1], 0, 0), 0, 0, 0, c).is_err());
        assert!(PartitionLeader::new(1, view(&[1, 2], &[1, 3], 0, 0), 0, 0, 0, c).is_err());
        assert!(PartitionLeader::new(1, view(&[1], &[1], 0, 0), 3, 4, 0, c).is_err());
    }
}
