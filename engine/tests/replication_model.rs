//! Seeded simulation of one partition replicated over three brokers with the sans-IO pieces of
//! `quiver_engine::cluster::replication`: leaders ([`PartitionLeader`]) taking `acks=all`
//! writes, followers truncating at the leader-epoch boundary and fetching, a controller that
//! owns the ISR, fences brokers and elects leaders from the ISR, over a network that drops,
//! delays and reorders every message. Brokers are killed and restarted, and fenced while still
//! running (a zombie leader that keeps taking writes from clients with stale metadata).
//!
//! Checked after every step: every acknowledged record is, at its offset, in the log of every
//! replica the controller holds in sync; no replica ever has a different record at an
//! acknowledged offset; a leader's high watermark never goes back. After the chaos, with the
//! network healed and every broker back, all replicas rejoin the ISR and hold identical logs.
//!
//! The simulation runs over two kinds of replica logs: a reference model (a vector and an epoch
//! history) and real partition logs on in-memory storage, where leaders stamp their epoch,
//! followers store the leader's batches with `append_replicated`, truncate with `truncate_to`
//! where `OffsetsForLeaderEpoch` says, and a killed broker's log loses what was not durable and
//! is recovered when reopened; at the end every replica's epoch history equals the leader's.
//!
//! A failing seed is printed; replay it with `QUIVER_SEED=<n>`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use futures_lite::future::block_on;
use quiver_engine::batch::{BatchBuilder, Compression, RecordBatch};
use quiver_engine::cluster::replication::{
    follower_high_watermark, truncation_offset, AcksAll, EpochCache, IsrProposal, LeaderConfig,
    PartitionLeader, PartitionView, ReplicaId, ReplicationError,
};
use quiver_engine::log::{FlushPolicy, LogConfig, MemStorage, PartitionLog};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const REPLICAS: [ReplicaId; 3] = [0, 1, 2];
const MIN_INSYNC: i32 = 2;
const LAG_MS: i64 = 300;
const RESEND_MS: i64 = 60;
const CHAOS_STEPS: usize = 3000;
const HEAL_STEPS: usize = 3000;
const SEEDS: u64 = 60;
const FETCH_RECORDS_MAX: usize = 6;
const METADATA_MS: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    epoch: i32,
    value: u64,
}

#[derive(Debug)]
enum Msg<B> {
    FetchReq {
        from: ReplicaId,
        to: ReplicaId,
        epoch: i32,
        offset: i64,
    },
    FetchResp {
        to: ReplicaId,
        epoch: i32,
        offset: i64,
        records: Vec<B>,
        hw: i64,
    },
    FetchErr {
        to: ReplicaId,
        epoch: i32,
        out_of_range: bool,
    },
    EpochReq {
        from: ReplicaId,
        to: ReplicaId,
        epoch: i32,
        requested: i32,
    },
    EpochResp {
        to: ReplicaId,
        epoch: i32,
        requested: i32,
        answer: (i32, i64),
    },
    Alter {
        from: ReplicaId,
        proposal: IsrProposal,
    },
    AlterResp {
        to: ReplicaId,
        proposal: IsrProposal,
        accepted: bool,
        leader: Option<ReplicaId>,
        view: PartitionView,
    },
    State {
        to: ReplicaId,
        leader: Option<ReplicaId>,
        view: PartitionView,
    },
}

impl<B> Msg<B> {
    fn to(&self) -> Option<ReplicaId> {
        match self {
            Msg::FetchReq { to, .. }
            | Msg::FetchResp { to, .. }
            | Msg::FetchErr { to, .. }
            | Msg::EpochReq { to, .. }
            | Msg::EpochResp { to, .. }
            | Msg::AlterResp { to, .. }
            | Msg::State { to, .. } => Some(*to),
            Msg::Alter { .. } => None,
        }
    }
}

enum Role {
    None,
    Leader {
        state: PartitionLeader,
        /// Writes waiting for the high watermark: (end offset, (offset, value) pairs).
        waiting: Vec<(i64, Vec<(i64, u64)>)>,
        alter_sent_ms: i64,
    },
    Follower {
        leader: ReplicaId,
        epoch: i32,
        truncated: bool,
        sent_ms: Option<i64>,
    },
}

struct Broker<L> {
    log: L,
    hw: i64,
    alive: bool,
    known_epoch: i32,
    role: Role,
}

struct Controller {
    leader: Option<ReplicaId>,
    isr: Vec<ReplicaId>,
    leader_epoch: i32,
    partition_epoch: i32,
    fenced: BTreeSet<ReplicaId>,
}

impl Controller {
    fn view(&self) -> PartitionView {
        PartitionView {
            replicas: REPLICAS.to_vec(),
            isr: self.isr.clone(),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
        }
    }
}

struct Sim<L: ReplicaLog> {
    rng: SmallRng,
    now: i64,
    brokers: Vec<Broker<L>>,
    controller: Controller,
    net: Vec<(i64, Msg<L::Batch>)>,
    drop_percent: u32,
    next_value: u64,
    /// Acknowledged records: offset -> value.
    acked: BTreeMap<i64, u64>,
    /// Highest high watermark seen per (broker, leader epoch).
    hw_seen: BTreeMap<(ReplicaId, i32), i64>,
    config: LeaderConfig,
    last_metadata_ms: i64,
    steps: u64,
    /// ISR changes the controller applied at a leader's request.
    isr_changes: i32,
}

impl<L: ReplicaLog> Sim<L> {
    fn new(seed: u64) -> Sim<L> {
        let brokers = REPLICAS
            .iter()
            .map(|_| Broker {
                log: L::create(),
                hw: 0,
                alive: true,
                known_epoch: -1,
                role: Role::None,
            })
            .collect();
        let mut sim = Sim {
            rng: SmallRng::seed_from_u64(seed),
            now: 0,
            brokers,
            controller: Controller {
                leader: Some(0),
                isr: REPLICAS.to_vec(),
                leader_epoch: 0,
                partition_epoch: 0,
                fenced: BTreeSet::new(),
            },
            net: Vec::new(),
            drop_percent: 5,
            next_value: 1,
            acked: BTreeMap::new(),
            hw_seen: BTreeMap::new(),
            config: LeaderConfig {
                replica_lag_time_max_ms: LAG_MS,
            },
            last_metadata_ms: 0,
            steps: 0,
            isr_changes: 0,
        };
        sim.broadcast();
        sim
    }

    fn send(&mut self, msg: Msg<L::Batch>) {
        if self.rng.gen_range(0..100) < self.drop_percent {
            return;
        }
        let at = self.now + self.rng.gen_range(1..=25);
        self.net.push((at, msg));
    }

    fn broadcast(&mut self) {
        for to in REPLICAS {
            let msg = Msg::State {
                to,
                leader: self.controller.leader,
                view: self.controller.view(),
            };
            self.send(msg);
        }
    }

    // --- the controller ---------------------------------------------------------------

    fn fence(&mut self, b: ReplicaId) {
        let c = &mut self.controller;
        if !c.fenced.insert(b) {
            return;
        }
        if c.leader == Some(b) {
            let next = REPLICAS
                .iter()
                .copied()
                .find(|r| c.isr.contains(r) && !c.fenced.contains(r));
            c.leader = next;
            // Without a successor the last in-sync replica stays in the ISR: the partition
            // is offline until it comes back.
            if next.is_some() {
                c.isr.retain(|&r| r != b);
                c.leader_epoch += 1;
            }
            c.partition_epoch += 1;
        } else if c.isr.contains(&b) && c.isr.len() > 1 {
            c.isr.retain(|&r| r != b);
            c.partition_epoch += 1;
        }
        self.broadcast();
    }

    fn unfence(&mut self, b: ReplicaId) {
        let c = &mut self.controller;
        if !c.fenced.remove(&b) {
            return;
        }
        if c.leader.is_none() && c.isr.contains(&b) {
            c.leader = Some(b);
            c.leader_epoch += 1;
            c.partition_epoch += 1;
        } else if !c.isr.contains(&b) {
            // It may join the ISR now: a new partition epoch, so that no copy of a proposal
            // refused while it was fenced (at the old epoch) can still be applied. Validity
            // only ever turns from refused to accepted here; the other way (fencing) is safe
            // because an accepted copy moves the epoch on itself.
            c.partition_epoch += 1;
        }
        self.broadcast();
    }

    fn alter(&mut self, from: ReplicaId, proposal: IsrProposal) {
        let c = &mut self.controller;
        let valid = c.leader == Some(from)
            && proposal.leader_epoch == c.leader_epoch
            && proposal.partition_epoch == c.partition_epoch
            && proposal.isr.contains(&from)
            && proposal.isr.iter().all(|r| REPLICAS.contains(r))
            && proposal
                .isr
                .iter()
                .all(|r| c.isr.contains(r) || !c.fenced.contains(r));
        if valid {
            c.isr = proposal.isr.clone();
            c.partition_epoch += 1;
            self.isr_changes += 1;
        }
        let msg = Msg::AlterResp {
            to: from,
            proposal,
            accepted: valid,
            leader: self.controller.leader,
            view: self.controller.view(),
        };
        self.send(msg);
    }

    // --- brokers ------------------------------------------------------------------------

    fn on_state(&mut self, b: ReplicaId, leader: Option<ReplicaId>, view: PartitionView) {
        let now = self.now;
        let config = self.config;
        let broker = &mut self.brokers[b as usize];
        if view.leader_epoch < broker.known_epoch {
            return;
        }
        if view.leader_epoch == broker.known_epoch {
            if let Role::Leader { state, .. } = &mut broker.role {
                match state.controller_state(view) {
                    Ok(_) => self.complete_waits(b),
                    Err(e) => panic!("same-epoch state refused by leader {b}: {e}"),
                }
            }
            return;
        }
        broker.known_epoch = view.leader_epoch;
        broker.role = if leader == Some(b) {
            let log_end = broker.log.end();
            let hw = broker.hw.min(log_end);
            let state = PartitionLeader::new(b, view, log_end, hw, now, config)
                .unwrap_or_else(|e| panic!("broker {b} cannot lead: {e}"));
            Role::Leader {
                state,
                waiting: Vec::new(),
                alter_sent_ms: i64::MIN / 2,
            }
        } else if let Some(l) = leader {
            Role::Follower {
                leader: l,
                epoch: view.leader_epoch,
                truncated: false,
                sent_ms: None,
            }
        } else {
            Role::None
        };
    }

    fn produce(&mut self, b: ReplicaId, count: usize) {
        let broker = &mut self.brokers[b as usize];
        let Role::Leader { state, waiting, .. } = &mut broker.role else {
            return;
        };
        if state.check_acks_all(MIN_INSYNC).is_err() {
            return;
        }
        let epoch = state.leader_epoch();
        let mut written = Vec::new();
        for _ in 0..count {
            let offset = broker.log.end();
            broker.log.append_leader(epoch, self.next_value);
            written.push((offset, self.next_value));
            self.next_value += 1;
        }
        let end = broker.log.end();
        state.appended(end);
        waiting.push((end, written));
        self.complete_waits(b);
    }

    /// Completes the leader's `acks=all` writes its high watermark has reached.
    fn complete_waits(&mut self, b: ReplicaId) {
        let broker = &mut self.brokers[b as usize];
        let Role::Leader { state, waiting, .. } = &mut broker.role else {
            return;
        };
        let hw = state.high_watermark();
        assert!(hw <= broker.log.end(), "leader {b}: hw past its log end");
        broker.hw = hw;
        let seen = self.hw_seen.entry((b, state.leader_epoch())).or_insert(hw);
        assert!(
            hw >= *seen,
            "leader {b}: high watermark went back from {seen} to {hw}"
        );
        *seen = hw;
        let mut still = Vec::new();
        for (end, written) in waiting.drain(..) {
            match state.acks_all(end, MIN_INSYNC) {
                AcksAll::Waiting => still.push((end, written)),
                AcksAll::Complete => {
                    for (offset, value) in written {
                        assert_eq!(broker.log.value_at(offset), Some(value));
                        self.acked.insert(offset, value);
                    }
                }
                AcksAll::NotEnoughReplicasAfterAppend { .. } => {}
            }
        }
        *waiting = still;
    }

    fn deliver(&mut self, msg: Msg<L::Batch>) {
        if let Some(to) = msg.to() {
            if !self.brokers[to as usize].alive {
                return;
            }
        }
        match msg {
            Msg::State { to, leader, view } => self.on_state(to, leader, view),
            Msg::AlterResp {
                to,
                proposal,
                accepted,
                leader,
                view,
            } => {
                if !accepted {
                    if let Role::Leader { state, .. } = &mut self.brokers[to as usize].role {
                        if state.leader_epoch() == proposal.leader_epoch {
                            state.proposal_refused(&proposal);
                        }
                    }
                }
                self.on_state(to, leader, view);
            }
            Msg::Alter { from, proposal } => self.alter(from, proposal),
            Msg::EpochReq {
                from,
                to,
                epoch,
                requested,
            } => {
                let broker = &self.brokers[to as usize];
                if let Role::Leader { state, .. } = &broker.role {
                    if state.leader_epoch() == epoch {
                        let answer = broker.log.end_offset_for(requested);
                        let msg = Msg::EpochResp {
                            to: from,
                            epoch,
                            requested,
                            answer,
                        };
                        self.send(msg);
                    }
                }
            }
            Msg::EpochResp {
                to,
                epoch,
                requested,
                answer,
            } => {
                let broker = &mut self.brokers[to as usize];
                if let Role::Follower {
                    epoch: e,
                    truncated,
                    sent_ms,
                    ..
                } = &mut broker.role
                {
                    if *e == epoch && !*truncated && broker.log.epochs().latest_epoch() == requested
                    {
                        let log_end = broker.log.end();
                        let epochs = broker.log.epochs();
                        let cut = truncation_offset(&epochs, log_end, broker.hw, requested, answer);
                        broker.log.truncate(cut);
                        broker.hw = broker.hw.min(cut);
                        *truncated = true;
                        *sent_ms = None;
                    }
                }
            }
            Msg::FetchReq {
                from,
                to,
                epoch,
                offset,
            } => {
                let now = self.now;
                let broker = &mut self.brokers[to as usize];
                let Role::Leader { state, .. } = &mut broker.role else {
                    let msg = Msg::FetchErr {
                        to: from,
                        epoch,
                        out_of_range: false,
                    };
                    self.send(msg);
                    return;
                };
                match state.follower_fetch(from, epoch, offset, now) {
                    Ok(out) => {
                        let records = broker.log.read(offset, FETCH_RECORDS_MAX);
                        let proposal = out.proposal.clone();
                        if proposal.is_some() {
                            if let Role::Leader { alter_sent_ms, .. } = &mut broker.role {
                                *alter_sent_ms = now;
                            }
                        }
                        self.complete_waits(to);
                        let msg = Msg::FetchResp {
                            to: from,
                            epoch,
                            offset,
                            records,
                            hw: out.high_watermark,
                        };
                        self.send(msg);
                        if let Some(proposal) = proposal {
                            self.send(Msg::Alter { from: to, proposal });
                        }
                    }
                    Err(e) => {
                        let out_of_range = matches!(e, ReplicationError::OffsetOutOfRange { .. });
                        let msg = Msg::FetchErr {
                            to: from,
                            epoch,
                            out_of_range,
                        };
                        self.send(msg);
                    }
                }
            }
            Msg::FetchResp {
                to,
                epoch,
                offset,
                records,
                hw,
            } => {
                let broker = &mut self.brokers[to as usize];
                if let Role::Follower {
                    epoch: e,
                    truncated,
                    sent_ms,
                    ..
                } = &mut broker.role
                {
                    if *e != epoch || !*truncated {
                        return;
                    }
                    *sent_ms = None;
                    if offset != broker.log.end() {
                        return;
                    }
                    for rec in records {
                        broker.log.append_follower(rec);
                    }
                    broker.hw = follower_high_watermark(hw, broker.log.end());
                }
            }
            Msg::FetchErr {
                to,
                epoch,
                out_of_range,
            } => {
                let broker = &mut self.brokers[to as usize];
                if let Role::Follower {
                    epoch: e,
                    truncated,
                    sent_ms,
                    ..
                } = &mut broker.role
                {
                    if *e == epoch {
                        *sent_ms = None;
                        if out_of_range {
                            *truncated = false;
                        }
                    }
                }
            }
        }
    }

    /// Timers: followers (re)send epoch requests and fetches, leaders check for lagging
    /// followers and resend unanswered proposals.
    fn timers(&mut self) {
        let now = self.now;
        // Brokers follow the controller's metadata log, so a lost update is not lost for
        // good: every so often each one hears the current state.
        if now / METADATA_MS != self.last_metadata_ms / METADATA_MS {
            self.last_metadata_ms = now;
            self.broadcast();
        }
        for b in REPLICAS {
            let broker = &mut self.brokers[b as usize];
            if !broker.alive {
                continue;
            }
            match &mut broker.role {
                Role::None => {}
                Role::Follower {
                    leader,
                    epoch,
                    truncated,
                    sent_ms,
                } => {
                    if sent_ms.is_some_and(|t| now - t < RESEND_MS) {
                        continue;
                    }
                    *sent_ms = Some(now);
                    let msg = if *truncated {
                        Msg::FetchReq {
                            from: b,
                            to: *leader,
                            epoch: *epoch,
                            offset: broker.log.end(),
                        }
                    } else {
                        Msg::EpochReq {
                            from: b,
                            to: *leader,
                            epoch: *epoch,
                            requested: broker.log.epochs().latest_epoch(),
                        }
                    };
                    self.send(msg);
                }
                Role::Leader {
                    state,
                    alter_sent_ms,
                    ..
                } => {
                    let proposal = match state.pending() {
                        Some(p) if now - *alter_sent_ms >= RESEND_MS * 3 => Some(p.clone()),
                        Some(_) => None,
                        None => state.tick(now),
                    };
                    if let Some(proposal) = proposal {
                        *alter_sent_ms = now;
                        self.send(Msg::Alter { from: b, proposal });
                    }
                }
            }
        }
    }

    fn kill(&mut self, b: ReplicaId) {
        let seed = self.rng.gen();
        let broker = &mut self.brokers[b as usize];
        broker.alive = false;
        // The process dies: what the log had not made durable is gone, and it is reopened
        // (recovered) when the broker restarts.
        broker.log.crash(seed);
        // Unacknowledged writes die with the process; the log itself is durable.
        broker.role = Role::None;
        broker.known_epoch = -1;
        self.fence(b);
    }

    fn restart(&mut self, b: ReplicaId) {
        self.brokers[b as usize].alive = true;
        self.unfence(b);
        // A restarted broker learns the state even if nothing changed.
        let msg = Msg::State {
            to: b,
            leader: self.controller.leader,
            view: self.controller.view(),
        };
        self.send(msg);
    }

    fn step(&mut self, chaos: bool, produce: bool) {
        self.now += self.rng.gen_range(1..=8);
        if produce && self.rng.gen_range(0..100) < 40 {
            // Clients may have stale metadata: any broker that thinks it leads takes writes.
            let b = REPLICAS[self.rng.gen_range(0..REPLICAS.len())];
            if self.brokers[b as usize].alive {
                let n = self.rng.gen_range(1..=3);
                self.produce(b, n);
            }
        }
        if chaos {
            let roll = self.rng.gen_range(0..1000);
            let dead: Vec<ReplicaId> = REPLICAS
                .iter()
                .copied()
                .filter(|&r| !self.brokers[r as usize].alive)
                .collect();
            let fenced_alive: Vec<ReplicaId> = self
                .controller
                .fenced
                .iter()
                .copied()
                .filter(|&r| self.brokers[r as usize].alive)
                .collect();
            if roll < 6 && dead.is_empty() && fenced_alive.is_empty() {
                let b = REPLICAS[self.rng.gen_range(0..REPLICAS.len())];
                self.kill(b);
            } else if roll < 10 && dead.is_empty() && fenced_alive.is_empty() {
                // Heartbeats lost: the controller fences a broker that keeps running.
                let b = REPLICAS[self.rng.gen_range(0..REPLICAS.len())];
                self.fence(b);
            } else if roll < 25 {
                if let Some(&b) = dead.first() {
                    self.restart(b);
                } else if let Some(&b) = fenced_alive.first() {
                    self.unfence(b);
                }
            }
        }
        // Deliver what is due, in delivery-time order (ties in send order).
        let now = self.now;
        let (mut due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.net = later;
        due.sort_by_key(|(at, _)| *at);
        for (_, msg) in due {
            self.deliver(msg);
        }
        self.timers();
        self.steps += 1;
        // Records change only by appends and truncations, and a wrong record stays until the
        // next truncation: a full check every few steps sees every violation; the cheap one
        // (in-sync replicas reach the last acknowledged offset) runs every step.
        if self.steps.is_multiple_of(L::FULL_CHECK_EVERY) {
            self.check();
        } else if let Some((&last, _)) = self.acked.last_key_value() {
            for &r in &self.controller.isr {
                let end = self.brokers[r as usize].log.end();
                assert!(
                    end > last,
                    "in-sync replica {r} ends at {end}, before acknowledged {last}"
                );
            }
        }
    }

    fn check(&self) {
        let contents: Vec<Vec<Rec>> = self.brokers.iter().map(|b| b.log.records()).collect();
        for (&offset, &value) in &self.acked {
            for &r in &self.controller.isr {
                let log = &contents[r as usize];
                assert_eq!(
                    log.get(offset as usize).map(|rec| rec.value),
                    Some(value),
                    "in-sync replica {r} lacks acknowledged offset {offset} (log end {})",
                    log.len()
                );
            }
            // A replica of the current epoch (the leader, or a follower past its truncation)
            // agrees with every acknowledged record it has. Others (a fenced leader still
            // taking writes, a follower not yet truncated) may hold records that diverge;
            // they are cut before that replica serves or follows again.
            for (b, broker) in self.brokers.iter().enumerate() {
                let current = match &broker.role {
                    Role::Leader { state, .. } => {
                        state.leader_epoch() == self.controller.leader_epoch
                    }
                    Role::Follower {
                        epoch, truncated, ..
                    } => *truncated && *epoch == self.controller.leader_epoch,
                    Role::None => false,
                };
                if !current {
                    continue;
                }
                if let Some(rec) = contents[b].get(offset as usize) {
                    assert_eq!(
                        rec.value, value,
                        "replica {b} holds another record at acknowledged offset {offset}"
                    );
                }
            }
        }
    }
}

/// What one run went through, so the test can show it exercised the interesting paths.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    acked: usize,
    leader_epochs: i32,
    isr_changes: i32,
}

fn run<L: ReplicaLog>(seed: u64) -> Tally {
    let mut sim = Sim::<L>::new(seed);
    for _ in 0..CHAOS_STEPS {
        sim.step(true, true);
    }
    // Heal: every broker back, nothing dropped, then stop producing and let it settle.
    sim.drop_percent = 0;
    for b in REPLICAS {
        if !sim.brokers[b as usize].alive {
            sim.restart(b);
        } else {
            sim.unfence(b);
        }
    }
    for i in 0..HEAL_STEPS {
        sim.step(false, i < HEAL_STEPS / 3);
    }
    let leader = sim.controller.leader.expect("a leader after healing");
    let mut isr = sim.controller.isr.clone();
    isr.sort_unstable();
    if isr != REPLICAS.to_vec() {
        for (b, broker) in sim.brokers.iter().enumerate() {
            let role = match &broker.role {
                Role::None => "none".to_string(),
                Role::Leader { state, .. } => format!(
                    "leader view {:?} pending {:?} hw {} end {} followers {:?}",
                    state.view(),
                    state.pending(),
                    state.high_watermark(),
                    state.log_end(),
                    REPLICAS.map(|r| state.follower_log_end(r))
                ),
                Role::Follower {
                    leader,
                    epoch,
                    truncated,
                    sent_ms,
                } => format!(
                    "follower of {leader} epoch {epoch} truncated {truncated} sent {sent_ms:?}"
                ),
            };
            eprintln!(
                "broker {b}: alive {} known epoch {} log {} hw {} epochs {:?}: {role}",
                broker.alive,
                broker.known_epoch,
                broker.log.end(),
                broker.hw,
                broker.log.epochs().entries()
            );
        }
        eprintln!(
            "controller: leader {:?} isr {:?} epochs {}/{} fenced {:?} now {}",
            sim.controller.leader,
            sim.controller.isr,
            sim.controller.leader_epoch,
            sim.controller.partition_epoch,
            sim.controller.fenced,
            sim.now
        );
    }
    assert_eq!(isr, REPLICAS.to_vec(), "every replica rejoined the ISR");
    let reference = sim.brokers[leader as usize].log.records();
    let Role::Leader { state, .. } = &sim.brokers[leader as usize].role else {
        panic!("the controller's leader {leader} does not lead");
    };
    assert_eq!(
        state.high_watermark(),
        reference.len() as i64,
        "everything is replicated once quiet"
    );
    sim.check();
    for (b, broker) in sim.brokers.iter().enumerate() {
        let log = broker.log.records();
        let first_difference =
            (0..log.len().max(reference.len())).find(|&i| log.get(i) != reference.get(i));
        assert_eq!(
            first_difference,
            None,
            "replica {b} (log end {}) differs from leader {leader} (log end {})",
            log.len(),
            reference.len()
        );
        assert_eq!(
            broker.log.epochs(),
            sim.brokers[leader as usize].log.epochs(),
            "replica {b}'s epoch history differs from the leader's"
        );
    }
    let values: BTreeSet<u64> = reference.iter().map(|r| r.value).collect();
    assert_eq!(values.len(), reference.len(), "a record appears twice");
    Tally {
        acked: sim.acked.len(),
        leader_epochs: sim.controller.leader_epoch,
        isr_changes: sim.isr_changes,
    }
}

/// Runs the seeds (or `QUIVER_SEED`) over logs of type `L` and checks that they exercised
/// something: records acknowledged, leaders replaced, followers dropped from and taken back
/// into the ISR.
fn run_seeds<L: ReplicaLog>(what: &str, seeds: u64, base: u64) {
    let seeds: Vec<u64> = match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
        Err(_) => (0..seeds).map(|i| base + i).collect(),
    };
    let mut total = Tally::default();
    for seed in &seeds {
        let seed = *seed;
        match std::panic::catch_unwind(|| run::<L>(seed)) {
            Ok(t) => {
                total.acked += t.acked;
                total.leader_epochs += t.leader_epochs;
                total.isr_changes += t.isr_changes;
            }
            Err(e) => {
                eprintln!("{what} failed with seed {seed}: replay with QUIVER_SEED={seed}");
                std::panic::resume_unwind(e);
            }
        }
    }
    let n = seeds.len();
    eprintln!("{what}: {n} seed(s): {total:?}");
    assert!(total.acked >= 200 * n, "only {total:?} over {n} seeds");
    assert!(
        total.leader_epochs >= 2 * n as i32,
        "only {total:?} over {n} seeds"
    );
    assert!(
        total.isr_changes >= 2 * n as i32,
        "only {total:?} over {n} seeds"
    );
}

#[test]
fn replicas_never_lose_acknowledged_records() {
    run_seeds::<ModelLog>("replication model", SEEDS, 0x51ED_0000);
}

/// The same protocol over real partition logs (in-memory storage): leaders append and stamp
/// epochs, followers store the leader's batches with `append_replicated`, truncate with
/// `truncate_to` at the point `OffsetsForLeaderEpoch` gives, and killed brokers lose what was
/// not durable and recover when reopened.
#[test]
fn replicas_on_partition_logs_never_lose_acknowledged_records() {
    run_seeds::<RealLog>(
        "replication over partition logs",
        REAL_LOG_SEEDS,
        0x10C5_0000,
    );
}

/// A replica's log as the simulation sees it.
trait ReplicaLog {
    /// What a fetch carries: records of the model, or stored batch bytes.
    type Batch: Clone + std::fmt::Debug;
    /// Steps between full checks of every acknowledged record (reading real logs whole is
    /// slow; a wrong record stays until the next truncation, so a sparser check still sees
    /// most, and the final check sees all that remain).
    const FULL_CHECK_EVERY: u64;
    fn create() -> Self;
    /// The log end offset.
    fn end(&self) -> i64;
    fn epochs(&self) -> EpochCache;
    fn end_offset_for(&self, epoch: i32) -> (i32, i64);
    /// A leader's append of one record.
    fn append_leader(&mut self, epoch: i32, value: u64);
    /// Up to `max` records from `from`.
    fn read(&self, from: i64, max: usize) -> Vec<Self::Batch>;
    /// A follower's append of what the leader sent (it continues the log).
    fn append_follower(&mut self, batch: Self::Batch);
    fn truncate(&mut self, to: i64);
    /// Every record, in offset order (offset = index).
    fn records(&self) -> Vec<Rec>;
    fn value_at(&self, offset: i64) -> Option<u64>;
    /// The process died: keep what was durable and reopen.
    fn crash(&mut self, seed: u64);
}

/// The reference model: a vector and an epoch history, always durable.
struct ModelLog {
    recs: Vec<Rec>,
    epochs: EpochCache,
}

impl ReplicaLog for ModelLog {
    type Batch = Rec;
    const FULL_CHECK_EVERY: u64 = 8;
    fn create() -> Self {
        ModelLog {
            recs: Vec::new(),
            epochs: EpochCache::new(),
        }
    }
    fn end(&self) -> i64 {
        self.recs.len() as i64
    }
    fn epochs(&self) -> EpochCache {
        self.epochs.clone()
    }
    fn end_offset_for(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.end())
    }
    fn append_leader(&mut self, epoch: i32, value: u64) {
        self.append_follower(Rec { epoch, value });
    }
    fn read(&self, from: i64, max: usize) -> Vec<Rec> {
        let start = from as usize;
        let end = (start + max).min(self.recs.len());
        self.recs[start..end].to_vec()
    }
    fn append_follower(&mut self, rec: Rec) {
        let at = self.end();
        self.epochs
            .assign(rec.epoch, at)
            .unwrap_or_else(|e| panic!("model log: {e}"));
        self.recs.push(rec);
    }
    fn truncate(&mut self, to: i64) {
        self.recs.truncate(to as usize);
        self.epochs.truncate_from_end(to);
    }
    fn records(&self) -> Vec<Rec> {
        self.recs.clone()
    }
    fn value_at(&self, offset: i64) -> Option<u64> {
        self.recs.get(offset as usize).map(|r| r.value)
    }
    fn crash(&mut self, _seed: u64) {}
}

const NOW: i64 = 1_700_000_000_000;
const REAL_LOG_SEEDS: u64 = 8;

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 8192,
        segment_ms: None,
        index_interval_bytes: 1024,
        flush: FlushPolicy::Always,
        retention_ms: None,
        write_chunk_bytes: 4096,
        writes_in_flight_max: 2,
        preallocate_bytes: 0,
        cache_bytes_max: 4096,
        ..LogConfig::default()
    }
}

/// A real partition log over in-memory storage that can lose unsynced bytes. Appends are
/// synced, as with `flush=always`, so a crash loses nothing acknowledged by this replica.
struct RealLog {
    storage: MemStorage,
    log: Option<PartitionLog<MemStorage>>,
}

impl RealLog {
    fn log(&self) -> &PartitionLog<MemStorage> {
        self.log.as_ref().expect("the log is open")
    }
    fn log_mut(&mut self) -> &mut PartitionLog<MemStorage> {
        self.log.as_mut().expect("the log is open")
    }
}

impl ReplicaLog for RealLog {
    type Batch = Bytes;
    const FULL_CHECK_EVERY: u64 = 64;
    fn create() -> Self {
        let storage = MemStorage::new();
        let log = block_on(PartitionLog::open(storage.clone(), log_config(), NOW)).expect("open");
        RealLog {
            storage,
            log: Some(log),
        }
    }
    fn end(&self) -> i64 {
        self.log().next_offset()
    }
    fn epochs(&self) -> EpochCache {
        self.log().epochs().clone()
    }
    fn end_offset_for(&self, epoch: i32) -> (i32, i64) {
        self.log().end_offset_for_epoch(epoch)
    }
    fn append_leader(&mut self, epoch: i32, value: u64) {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(NOW, None, Some(&value.to_le_bytes()), &[]);
        let log = self.log_mut();
        log.set_leader_epoch(epoch);
        block_on(log.append(b.build().expect("build"), NOW)).expect("leader append");
        block_on(log.sync(NOW)).expect("sync");
    }
    fn read(&self, from: i64, max: usize) -> Vec<Bytes> {
        let read = block_on(self.log().read(from, 1 << 20)).expect("read");
        read.batches.into_iter().take(max).collect()
    }
    fn append_follower(&mut self, batch: Bytes) {
        let log = self.log_mut();
        block_on(log.append_replicated(BytesMut::from(&batch[..]), NOW))
            .unwrap_or_else(|e| panic!("follower append: {e}"));
        block_on(log.sync(NOW)).expect("sync");
    }
    fn truncate(&mut self, to: i64) {
        block_on(self.log_mut().truncate_to(to, NOW)).expect("truncate");
    }
    fn records(&self) -> Vec<Rec> {
        let mut out = Vec::new();
        let mut from = 0;
        while from < self.end() {
            let read = block_on(self.log().read(from, 1 << 20)).expect("read");
            for b in &read.batches {
                let view = RecordBatch::parse(b).expect("a stored batch parses");
                assert_eq!(view.base_offset(), out.len() as i64, "offsets are dense");
                let records = view.records().expect("records decode");
                let value = records[0].value.as_deref().expect("a value");
                out.push(Rec {
                    epoch: view.header().partition_leader_epoch(),
                    value: u64::from_le_bytes(value.try_into().expect("8 bytes")),
                });
            }
            from = read.next_offset;
        }
        out
    }
    fn value_at(&self, offset: i64) -> Option<u64> {
        if offset >= self.end() {
            return None;
        }
        let read = block_on(self.log().read(offset, 1)).expect("read");
        let view = RecordBatch::parse(read.batches.first()?).expect("a stored batch parses");
        assert_eq!(view.base_offset(), offset, "one record per batch");
        let records = view.records().expect("records decode");
        let value = records[0].value.as_deref()?;
        Some(u64::from_le_bytes(value.try_into().expect("8 bytes")))
    }
    fn crash(&mut self, seed: u64) {
        self.log.take();
        self.storage = self.storage.crash(seed);
        let log =
            block_on(PartitionLog::open(self.storage.clone(), log_config(), NOW)).expect("reopen");
        self.log = Some(log);
    }
}
