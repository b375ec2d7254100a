//! The consumer-group coordinator as a sans-IO state machine: heartbeats, time and topic
//! partition counts in; member ids, epochs and assignments out. No clock, no IO, no glommio:
//! the broker's shell ([`crate::broker`]) persists committed offsets and drives the timer.
//!
//! # Protocol (KIP-848 style: one heartbeat API, server-side assignment)
//! A member joins with epoch 0 and gets an id, heartbeats with the epoch it was last given, and
//! leaves with epoch -1. Every response carries the member's whole current assignment.
//!
//! The *group epoch* is bumped by every membership, subscription or partition-count change;
//! each bump recomputes the *target assignment* with the group's assignor ([`assignor`]). Each
//! member then *reconciles* towards its target on its own heartbeats:
//! 1. partitions it holds outside its target become *pending revocation*: they leave the
//!    assignment the member is sent, but still count as held by it;
//! 2. a pending partition is released when the member's heartbeat no longer lists it in
//!    `owned` (it stopped consuming and committed), or when the member is removed;
//! 3. while nothing of its own is pending, the member moves to the target's epoch and is
//!    given every partition of its target that no other member holds (assigned or pending);
//!    partitions still held elsewhere follow on later heartbeats, once released.
//!
//! Invariant (checked by the seeded tests): no partition is ever held by two members at once.
//!
//! Fencing: a heartbeat must carry the member's current epoch or the one before it (a lost
//! response), else FencedMemberEpoch; an offset commit must carry exactly the current epoch,
//! else StaleMemberEpoch; a removed member gets UnknownMemberId for both. A member is removed
//! when its session times out or when it keeps a revoked partition past its rebalance timeout.
//!
//! Groups with neither members nor committed offsets are forgotten.

pub mod assignor;
pub mod records;

use std::collections::{BTreeMap, BTreeSet};

pub use records::{offsets_partition_for, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS};

use assignor::MemberSubscription;

/// Partitions by topic.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// Member epoch of a join.
pub const EPOCH_JOIN: i32 = 0;
/// Member epoch of a leave.
pub const EPOCH_LEAVE: i32 = -1;
/// Longest group id, in bytes.
pub const GROUP_ID_BYTES_MAX: usize = 255;

/// The server-side assignors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// Contiguous ranges per topic.
    Range,
    /// Partitions dealt round the members.
    RoundRobin,
    /// Balanced, moving as few partitions as possible.
    CooperativeSticky,
}

impl AssignorKind {
    /// The name clients use.
    pub const fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The assignor for a name (case-insensitive; `round-robin` and `sticky` accepted too).
    pub fn parse(name: &str) -> Option<AssignorKind> {
        match name.to_ascii_lowercase().as_str() {
            "range" => Some(AssignorKind::Range),
            "roundrobin" | "round-robin" => Some(AssignorKind::RoundRobin),
            "cooperative-sticky" | "sticky" | "uniform" => Some(AssignorKind::CooperativeSticky),
            _ => None,
        }
    }
}

/// Coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Shortest session timeout a member may ask for (ms).
    pub session_timeout_min_ms: i32,
    /// Longest session timeout a member may ask for (ms).
    pub session_timeout_max_ms: i32,
    /// Heartbeat interval told to members (ms).
    pub heartbeat_interval_ms: i32,
    /// Most members per group.
    pub group_max_size: usize,
    /// Assignor of a group whose first member names none.
    pub default_assignor: AssignorKind,
    /// How long committed offsets of a group without members are kept (Kafka's
    /// `offsets.retention.minutes`, 7 days): counted from when the group became empty, or from
    /// the commit if that is later.
    pub offsets_retention_ms: i64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            session_timeout_min_ms: 6000,
            session_timeout_max_ms: 300_000,
            heartbeat_interval_ms: 3000,
            group_max_size: 1000,
            default_assignor: AssignorKind::CooperativeSticky,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// One heartbeat, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatIn {
    /// The group.
    pub group_id: String,
    /// The member id; empty for a first join.
    pub member_id: String,
    /// 0 = join, -1 = leave, otherwise the member's epoch.
    pub member_epoch: i32,
    /// The client's id (for describe).
    pub client_id: String,
    /// The client's address (for describe), or empty.
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// How long the member may hold revoked partitions (ms).
    pub rebalance_timeout_ms: i32,
    /// Subscribed topics.
    pub subscribed_topics: Vec<String>,
    /// Requested assignor, if any.
    pub assignor: Option<String>,
    /// What the member still holds.
    pub owned: Assignment,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOut {
    /// The member's id.
    pub member_id: String,
    /// The member's epoch (-1 after a leave).
    pub member_epoch: i32,
    /// How often to heartbeat (ms).
    pub heartbeat_interval_ms: i32,
    /// Everything the member may consume now.
    pub assignment: Assignment,
}

/// Why a group operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Empty or too long.
    #[error("group id '{group}' is invalid: it must be 1..={GROUP_ID_BYTES_MAX} bytes")]
    InvalidGroupId {
        /// The id.
        group: String,
    },
    /// Not a member.
    #[error("'{member}' is not a member of group '{group}': it left or its session timed out; rejoin with epoch 0")]
    UnknownMemberId {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// A heartbeat with an epoch the coordinator does not accept.
    #[error("member '{member}' of group '{group}' sent epoch {sent}, but its epoch is {current}: give up its partitions and rejoin with epoch 0")]
    FencedMemberEpoch {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// The epoch sent.
        sent: i32,
        /// The member's epoch.
        current: i32,
    },
    /// A commit with an epoch other than the member's current one.
    #[error("commit by member '{member}' of group '{group}' carries epoch {sent}, but its epoch is {current}")]
    StaleMemberEpoch {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// The epoch sent.
        sent: i32,
        /// The member's epoch.
        current: i32,
    },
    /// Session timeout outside the configured range.
    #[error("session timeout {requested} ms is outside the broker's range {min}..={max} ms")]
    InvalidSessionTimeout {
        /// Asked for.
        requested: i32,
        /// Lowest allowed.
        min: i32,
        /// Highest allowed.
        max: i32,
    },
    /// Unknown assignor.
    #[error("unknown assignor '{0}' (known: range, roundrobin, cooperative-sticky)")]
    UnsupportedAssignor(String),
    /// A different assignor than the group's.
    #[error("group '{group}' uses assignor '{current}'; a member asked for '{requested}'")]
    InconsistentAssignor {
        /// The group.
        group: String,
        /// The group's assignor.
        current: &'static str,
        /// The member's.
        requested: String,
    },
    /// Too many members.
    #[error("group '{group}' already has the maximum of {max} members")]
    GroupMaxSizeReached {
        /// The group.
        group: String,
        /// The limit.
        max: usize,
    },
    /// Needs a group without live members.
    #[error("group '{group}' has {members} live members; stop them first")]
    NonEmptyGroup {
        /// The group.
        group: String,
        /// Live members.
        members: usize,
    },
    /// No such group.
    #[error("group '{0}' does not exist")]
    GroupIdNotFound(String),
}

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (may hold committed offsets).
    Empty,
    /// Some member does not hold exactly its target yet.
    Reconciling,
    /// Every member holds exactly its target at the current epoch.
    Stable,
}

impl GroupState {
    /// The name shown to users.
    pub const fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::Reconciling => "Reconciling",
            GroupState::Stable => "Stable",
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Free text kept with it.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// One member, for describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Its id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client address, or empty.
    pub client_host: String,
    /// Its epoch.
    pub member_epoch: i32,
    /// Its subscription.
    pub subscribed_topics: Vec<String>,
    /// What it holds now (including partitions it is releasing).
    pub assignment: Assignment,
    /// What the assignor wants it to hold.
    pub target: Assignment,
    /// Its session timeout (ms).
    pub session_timeout_ms: i32,
}

/// One group, for describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The id.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// The group epoch.
    pub group_epoch: i32,
    /// The epoch of the current target assignment.
    pub assignment_epoch: i32,
    /// Its assignor.
    pub assignor: AssignorKind,
    /// Members sorted by id.
    pub members: Vec<MemberDescription>,
}

/// One group, for list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The id.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// Live members.
    pub members: usize,
}

/// A member removed by [`GroupCoordinator::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expired {
    /// No heartbeat within its session timeout.
    Session {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// Held a revoked partition past its rebalance timeout.
    Rebalance {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
}

#[derive(Debug, Clone)]
struct Member {
    client_id: String,
    client_host: String,
    epoch: i32,
    previous_epoch: i32,
    subscribed: BTreeSet<String>,
    /// Partitions the member was given and may consume.
    assigned: Assignment,
    /// Partitions taken away but not yet released by the member.
    pending: Assignment,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    last_heartbeat_ms: i64,
    /// Since when the member holds revoked partitions.
    revoking_since_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct Group {
    epoch: i32,
    assignment_epoch: i32,
    assignor: AssignorKind,
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics the target was computed from.
    partition_counts: BTreeMap<String, i32>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// When the last member left (None while members are live, or if it never had any since
    /// this coordinator started: then the commit times count).
    empty_since_ms: Option<i64>,
}

impl Group {
    fn new(assignor: AssignorKind) -> Group {
        Group {
            empty_since_ms: None,
            epoch: 0,
            assignment_epoch: 0,
            assignor,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            partition_counts: BTreeMap::new(),
            offsets: BTreeMap::new(),
        }
    }

    fn subscribed_counts(
        &self,
        partitions_of: &dyn Fn(&str) -> Option<i32>,
    ) -> BTreeMap<String, i32> {
        let topics: BTreeSet<&String> = self.members.values().flat_map(|m| &m.subscribed).collect();
        topics
            .into_iter()
            .filter_map(|t| partitions_of(t).map(|n| (t.clone(), n)))
            .collect()
    }

    /// Bumps the group epoch and recomputes the target.
    fn bump(&mut self, partitions_of: &dyn Fn(&str) -> Option<i32>) {
        self.epoch += 1;
        self.partition_counts = self.subscribed_counts(partitions_of);
        let empty = Assignment::new();
        let subs: BTreeMap<String, MemberSubscription<'_>> = self
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    MemberSubscription {
                        topics: &m.subscribed,
                        previous: self.target.get(id).unwrap_or(&empty),
                    },
                )
            })
            .collect();
        let target = assignor::assign(self.assignor, &subs, &self.partition_counts);
        self.target = target;
        self.assignment_epoch = self.epoch;
    }

    /// Whether a member other than `except` holds `topic`-`partition`.
    fn held_by_other(&self, except: &str, topic: &str, partition: i32) -> bool {
        self.members.iter().any(|(id, m)| {
            id != except
                && (m
                    .assigned
                    .get(topic)
                    .is_some_and(|ps| ps.contains(&partition))
                    || m.pending
                        .get(topic)
                        .is_some_and(|ps| ps.contains(&partition)))
        })
    }

    /// Moves member `id` towards its target (see the module doc).
    fn reconcile(&mut self, id: &str, now_ms: i64) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        // 1. Revoke what is outside the target.
        let mut revoked = false;
        for (topic, ps) in member.assigned.iter_mut() {
            let keep = target.get(topic);
            let gone: Vec<i32> = ps
                .iter()
                .copied()
                .filter(|p| !keep.is_some_and(|k| k.contains(p)))
                .collect();
            for p in gone {
                ps.remove(&p);
                member.pending.entry(topic.clone()).or_default().insert(p);
                revoked = true;
            }
        }
        member.assigned.retain(|_, ps| !ps.is_empty());
        member.pending.retain(|_, ps| !ps.is_empty());
        if !member.pending.is_empty() {
            if revoked || member.revoking_since_ms.is_none() {
                member.revoking_since_ms.get_or_insert(now_ms);
            }
            return;
        }
        member.revoking_since_ms = None;
        if member.epoch != assignment_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = assignment_epoch;
        }
        // 3. Grant what is free.
        let mut grants = Vec::new();
        for (topic, ps) in &target {
            for &p in ps {
                let has = self.members[id]
                    .assigned
                    .get(topic)
                    .is_some_and(|a| a.contains(&p));
                if !has && !self.held_by_other(id, topic, p) {
                    grants.push((topic.clone(), p));
                }
            }
        }
        let member = self.members.get_mut(id).expect("member checked above");
        for (topic, p) in grants {
            member.assigned.entry(topic).or_default().insert(p);
        }
    }

    fn state(&self) -> GroupState {
        if self.members.is_empty() {
            return GroupState::Empty;
        }
        let stable = self.members.iter().all(|(id, m)| {
            let target = self.target.get(id);
            m.epoch == self.assignment_epoch
                && m.pending.is_empty()
                && target.map_or(m.assigned.is_empty(), |t| {
                    let t: Assignment = t
                        .iter()
                        .filter(|(_, ps)| !ps.is_empty())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    t == m.assigned
                })
        });
        if stable {
            GroupState::Stable
        } else {
            GroupState::Reconciling
        }
    }

    fn remove_member(
        &mut self,
        id: &str,
        now_ms: i64,
        partitions_of: &dyn Fn(&str) -> Option<i32>,
    ) -> bool {
        if self.members.remove(id).is_none() {
            return false;
        }
        if self.members.is_empty() {
            self.empty_since_ms = Some(now_ms);
        }
        self.target.remove(id);
        self.bump(partitions_of);
        true
    }
}

/// The coordinator of the groups of one shard. See the module doc.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: BTreeMap<String, Group>,
    /// State of the member-id generator (splitmix64).
    id_state: u64,
}

fn check_group_id(group: &str) -> Result<(), GroupError> {
    if group.is_empty() || group.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId {
            group: group.to_string(),
        });
    }
    Ok(())
}

impl GroupCoordinator {
    /// An empty coordinator; `seed` makes member ids unique across coordinators and restarts.
    pub fn new(config: CoordinatorConfig, seed: u64) -> GroupCoordinator {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            id_state: seed,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    fn next_member_id(&mut self, client_id: &str) -> String {
        self.id_state = self.id_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.id_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let prefix: String = client_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(64)
            .collect();
        let prefix = if prefix.is_empty() {
            "member".into()
        } else {
            prefix
        };
        format!("{prefix}-{z:016x}")
    }

    /// Handles one heartbeat (join, heartbeat or leave) at `now_ms`. `partitions_of(topic)` is
    /// the topic's current partition count, or `None` if it does not exist.
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        input: HeartbeatIn,
        partitions_of: &dyn Fn(&str) -> Option<i32>,
    ) -> Result<HeartbeatOut, GroupError> {
        check_group_id(&input.group_id)?;
        let group_id = input.group_id.clone();
        if input.member_epoch == EPOCH_LEAVE {
            if let Some(group) = self.groups.get_mut(&group_id) {
                group.remove_member(&input.member_id, now_ms, partitions_of);
            }
            self.forget_if_idle(&group_id);
            return Ok(HeartbeatOut {
                member_id: input.member_id,
                member_epoch: EPOCH_LEAVE,
                heartbeat_interval_ms: self.config.heartbeat_interval_ms,
                assignment: Assignment::new(),
            });
        }
        let subscribed: BTreeSet<String> = input.subscribed_topics.iter().cloned().collect();
        let member_id = if input.member_epoch == EPOCH_JOIN {
            self.join(now_ms, &input, subscribed, partitions_of)?
        } else {
            let group = self.groups.get_mut(&group_id);
            let Some(member) = group.as_ref().and_then(|g| g.members.get(&input.member_id)) else {
                return Err(GroupError::UnknownMemberId {
                    group: group_id,
                    member: input.member_id,
                });
            };
            if input.member_epoch != member.epoch && input.member_epoch != member.previous_epoch {
                return Err(GroupError::FencedMemberEpoch {
                    group: group_id,
                    member: input.member_id.clone(),
                    sent: input.member_epoch,
                    current: member.epoch,
                });
            }
            let group = group.expect("member found in it");
            let member = group
                .members
                .get_mut(&input.member_id)
                .expect("member found above");
            member.last_heartbeat_ms = now_ms;
            member.client_id = input.client_id.clone();
            if !input.client_host.is_empty() {
                member.client_host = input.client_host.clone();
            }
            // Released: pending partitions the member no longer reports.
            for (topic, ps) in member.pending.iter_mut() {
                let still = input.owned.get(topic);
                ps.retain(|p| still.is_some_and(|s| s.contains(p)));
            }
            member.pending.retain(|_, ps| !ps.is_empty());
            let changed_subscription = member.subscribed != subscribed;
            member.subscribed = subscribed;
            if changed_subscription
                || group.subscribed_counts(partitions_of) != group.partition_counts
            {
                group.bump(partitions_of);
            }
            input.member_id.clone()
        };
        let group = self
            .groups
            .get_mut(&group_id)
            .expect("the member's group exists");
        group.reconcile(&member_id, now_ms);
        let member = &group.members[&member_id];
        Ok(HeartbeatOut {
            member_id,
            member_epoch: member.epoch,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment: member.assigned.clone(),
        })
    }

    /// Adds a member (or restarts a known one) and bumps the epoch; returns its id.
    fn join(
        &mut self,
        now_ms: i64,
        input: &HeartbeatIn,
        subscribed: BTreeSet<String>,
        partitions_of: &dyn Fn(&str) -> Option<i32>,
    ) -> Result<String, GroupError> {
        let (min, max) = (
            self.config.session_timeout_min_ms,
            self.config.session_timeout_max_ms,
        );
        if !(min..=max).contains(&input.session_timeout_ms) {
            return Err(GroupError::InvalidSessionTimeout {
                requested: input.session_timeout_ms,
                min,
                max,
            });
        }
        let requested = match &input.assignor {
            None => None,
            Some(name) => Some(
                AssignorKind::parse(name)
                    .ok_or_else(|| GroupError::UnsupportedAssignor(name.clone()))?,
            ),
        };
        let default = self.config.default_assignor;
        let group_id = input.group_id.clone();
        let rejoining = !input.member_id.is_empty()
            && self
                .groups
                .get(&group_id)
                .is_some_and(|g| g.members.contains_key(&input.member_id));
        if let Some(group) = self.groups.get(&group_id) {
            let others = group.members.len() - usize::from(rejoining);
            if others > 0 {
                if let Some(kind) = requested {
                    if kind != group.assignor {
                        return Err(GroupError::InconsistentAssignor {
                            group: group_id,
                            current: group.assignor.name(),
                            requested: kind.name().to_string(),
                        });
                    }
                }
            }
            if !rejoining && group.members.len() >= self.config.group_max_size {
                return Err(GroupError::GroupMaxSizeReached {
                    group: group_id,
                    max: self.config.group_max_size,
                });
            }
        }
        let member_id = if input.member_id.is_empty() {
            self.next_member_id(&input.client_id)
        } else {
            input.member_id.clone()
        };
        let group = self
            .groups
            .entry(group_id)
            .or_insert_with(|| Group::new(requested.unwrap_or(default)));
        if group.members.is_empty() || (rejoining && group.members.len() == 1) {
            group.assignor = requested.unwrap_or(default);
        }
        group.empty_since_ms = None;
        // A rejoin starts over: whatever the old incarnation held is released.
        group.members.remove(&member_id);
        group.target.remove(&member_id);
        group.members.insert(
            member_id.clone(),
            Member {
                client_id: input.client_id.clone(),
                client_host: input.client_host.clone(),
                epoch: 0,
                previous_epoch: 0,
                subscribed,
                assigned: Assignment::new(),
                pending: Assignment::new(),
                session_timeout_ms: input.session_timeout_ms,
                rebalance_timeout_ms: input.rebalance_timeout_ms.max(0),
                last_heartbeat_ms: now_ms,
                revoking_since_ms: None,
            },
        );
        group.bump(partitions_of);
        Ok(member_id)
    }

    /// Removes members whose session or rebalance timed out, and re-targets groups whose
    /// subscribed topics changed partition count. Returns the removed members.
    pub fn tick(
        &mut self,
        now_ms: i64,
        partitions_of: &dyn Fn(&str) -> Option<i32>,
    ) -> Vec<Expired> {
        let mut expired = Vec::new();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in ids {
            let group = self.groups.get_mut(&group_id).expect("listed above");
            let doomed: Vec<(String, bool)> = group
                .members
                .iter()
                .filter_map(|(id, m)| {
                    if now_ms > m.last_heartbeat_ms + i64::from(m.session_timeout_ms) {
                        Some((id.clone(), true))
                    } else if m
                        .revoking_since_ms
                        .is_some_and(|since| now_ms > since + i64::from(m.rebalance_timeout_ms))
                    {
                        Some((id.clone(), false))
                    } else {
                        None
                    }
                })
                .collect();
            for (member, session) in doomed {
                group.remove_member(&member, now_ms, partitions_of);
                expired.push(if session {
                    Expired::Session {
                        group: group_id.clone(),
                        member,
                    }
                } else {
                    Expired::Rebalance {
                        group: group_id.clone(),
                        member,
                    }
                });
            }
            if !group.members.is_empty()
                && group.subscribed_counts(partitions_of) != group.partition_counts
            {
                group.bump(partitions_of);
            }
            self.forget_if_idle(&group_id);
        }
        expired
    }

    /// When [`GroupCoordinator::tick`] next has a timeout to act on, if any.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .flat_map(|g| g.members.values())
            .flat_map(|m| {
                let session = m.last_heartbeat_ms + i64::from(m.session_timeout_ms) + 1;
                let rebalance = m
                    .revoking_since_ms
                    .map(|since| since + i64::from(m.rebalance_timeout_ms) + 1);
                std::iter::once(session).chain(rebalance)
            })
            .min()
    }

    /// Checks an offset commit: a member with its current epoch, or (empty id, epoch -1) from
    /// outside while the group has no live members.
    pub fn check_commit(
        &self,
        group: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<(), GroupError> {
        check_group_id(group)?;
        let g = self.groups.get(group);
        if member_id.is_empty() && member_epoch < 0 {
            let members = g.map_or(0, |g| g.members.len());
            if members > 0 {
                return Err(GroupError::NonEmptyGroup {
                    group: group.to_string(),
                    members,
                });
            }
            return Ok(());
        }
        let Some(member) = g.and_then(|g| g.members.get(member_id)) else {
            return Err(GroupError::UnknownMemberId {
                group: group.to_string(),
                member: member_id.to_string(),
            });
        };
        if member.epoch != member_epoch {
            return Err(GroupError::StaleMemberEpoch {
                group: group.to_string(),
                member: member_id.to_string(),
                sent: member_epoch,
                current: member.epoch,
            });
        }
        Ok(())
    }

    /// Sets (or with `None` removes) a committed offset: after a durable commit, or when
    /// replaying `__consumer_offsets`.
    pub fn apply_offset(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<CommittedOffset>,
    ) {
        match value {
            Some(v) => {
                let default = self.config.default_assignor;
                self.groups
                    .entry(group.to_string())
                    .or_insert_with(|| Group::new(default))
                    .offsets
                    .insert((topic.to_string(), partition), v);
            }
            None => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.offsets.remove(&(topic.to_string(), partition));
                }
                self.forget_if_idle(group);
            }
        }
    }

    /// A group's committed offset of one partition.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups
            .get(group)?
            .offsets
            .get(&(topic.to_string(), partition))
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.groups.get(group).map_or_else(Vec::new, |g| {
            g.offsets
                .iter()
                .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                .collect()
        })
    }

    /// Every known group, sorted by id.
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups
            .iter()
            .map(|(id, g)| GroupListing {
                group_id: id.clone(),
                state: g.state(),
                members: g.members.len(),
            })
            .collect()
    }

    /// A group's members and assignments, if the group is known.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        let g = self.groups.get(group)?;
        Some(GroupDescription {
            group_id: group.to_string(),
            state: g.state(),
            group_epoch: g.epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor,
            members: g
                .members
                .iter()
                .map(|(id, m)| {
                    let mut holds = m.assigned.clone();
                    for (t, ps) in &m.pending {
                        holds.entry(t.clone()).or_default().extend(ps);
                    }
                    MemberDescription {
                        member_id: id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        member_epoch: m.epoch,
                        subscribed_topics: m.subscribed.iter().cloned().collect(),
                        assignment: holds,
                        target: g
                            .target
                            .get(id)
                            .map(|t| {
                                t.iter()
                                    .filter(|(_, ps)| !ps.is_empty())
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        session_timeout_ms: m.session_timeout_ms,
                    }
                })
                .collect(),
        })
    }

    /// Committed offsets past retention: of groups without members, those whose group has
    /// been empty (and whose commit is) older than `offsets_retention_ms`. The shell writes
    /// their tombstones, then applies them with [`GroupCoordinator::apply_offset`].
    pub fn expired_offsets(&self, now_ms: i64) -> Vec<(String, String, i32)> {
        let retention = self.config.offsets_retention_ms;
        let mut out = Vec::new();
        for (id, g) in &self.groups {
            if !g.members.is_empty() {
                continue;
            }
            for ((topic, partition), c) in &g.offsets {
                let since = g
                    .empty_since_ms
                    .map_or(c.commit_timestamp_ms, |e| e.max(c.commit_timestamp_ms));
                if now_ms.saturating_sub(since) > retention {
                    out.push((id.clone(), topic.clone(), *partition));
                }
            }
        }
        out
    }

    /// Checks that a group can be deleted: it exists and has no live members.
    pub fn check_delete(&self, group: &str) -> Result<(), GroupError> {
        let Some(g) = self.groups.get(group) else {
            return Err(GroupError::GroupIdNotFound(group.to_string()));
        };
        if !g.members.is_empty() {
            return Err(GroupError::NonEmptyGroup {
                group: group.to_string(),
                members: g.members.len(),
            });
        }
        Ok(())
    }

    /// Forgets a group and its offsets (after their tombstones are durable).
    pub fn remove_group(&mut self, group: &str) {
        self.groups.remove(group);
    }

    /// Forgets every group `which` picks, members and offsets alike, and returns how many:
    /// when this coordinator stops coordinating them (in a cluster, its broker no longer leads
    /// their offsets partition). Nothing is written; the new coordinator has the log.
    pub fn unload(&mut self, which: impl Fn(&str) -> bool) -> usize {
        let before = self.groups.len();
        self.groups.retain(|id, _| !which(id));
        before - self.groups.len()
    }

    fn forget_if_idle(&mut self, group: &str) {
        if self
            .groups
            .get(group)
            .is_some_and(|g| g.members.is_empty() && g.offsets.is_empty())
        {
            self.groups.remove(group);
        }
    }
}
