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
//! A failing seed is printed; replay it with `QUIVER_SEED=<n>`.

use std::collections::{BTreeMap, BTreeSet};

use quiver_engine::cluster::replication::{
    follower_high_watermark, truncation_offset, AcksAll, EpochCache, IsrProposal, LeaderConfig,
    PartitionLeader, PartitionView, ReplicaId, ReplicationError,
};
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
enum Msg {
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
        records: Vec<Rec>,
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

impl Msg {
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

struct Broker {
    log: Vec<Rec>,
    cache: EpochCache,
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

struct Sim {
    rng: SmallRng,
    now: i64,
    brokers: Vec<Broker>,
    controller: Controller,
    net: Vec<(i64, Msg)>,
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

impl Sim {
    fn new(seed: u64) -> Sim {
        let brokers = REPLICAS
            .iter()
            .map(|_| Broker {
                log: Vec::new(),
                cache: EpochCache::new(),
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

    fn send(&mut self, msg: Msg) {
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
            let log_end = broker.log.len() as i64;
            broker
                .cache
                .assign(view.leader_epoch, log_end)
                .expect("a new leader epoch starts at the log end");
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
            let offset = broker.log.len() as i64;
            broker.log.push(Rec {
                epoch,
                value: self.next_value,
            });
            written.push((offset, self.next_value));
            self.next_value += 1;
        }
        let end = broker.log.len() as i64;
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
        assert!(
            hw <= broker.log.len() as i64,
            "leader {b}: hw past its log end"
        );
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
                        assert_eq!(broker.log[offset as usize].value, value);
                        self.acked.insert(offset, value);
                    }
                }
                AcksAll::NotEnoughReplicasAfterAppend { .. } => {}
            }
        }
        *waiting = still;
    }

    fn deliver(&mut self, msg: Msg) {
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
                        let answer = broker
                            .cache
                            .end_offset_for(requested, broker.log.len() as i64);
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
                    if *e == epoch && !*truncated && broker.cache.latest_epoch() == requested {
                        let log_end = broker.log.len() as i64;
                        let cut =
                            truncation_offset(&broker.cache, log_end, broker.hw, requested, answer);
                        broker.log.truncate(cut as usize);
                        broker.cache.truncate_from_end(cut);
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
                        let start = offset as usize;
                        let end = (start + FETCH_RECORDS_MAX).min(broker.log.len());
                        let records = broker.log[start..end].to_vec();
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
                    if offset != broker.log.len() as i64 {
                        return;
                    }
                    for rec in records {
                        let at = broker.log.len() as i64;
                        broker
                            .cache
                            .assign(rec.epoch, at)
                            .unwrap_or_else(|err| panic!("follower {to}: {err}"));
                        broker.log.push(rec);
                    }
                    broker.hw = follower_high_watermark(hw, broker.log.len() as i64);
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
                            offset: broker.log.len() as i64,
                        }
                    } else {
                        Msg::EpochReq {
                            from: b,
                            to: *leader,
                            epoch: *epoch,
                            requested: broker.cache.latest_epoch(),
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
        let broker = &mut self.brokers[b as usize];
        broker.alive = false;
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
        if self.steps.is_multiple_of(8) {
            self.check();
        } else if let Some((&last, _)) = self.acked.last_key_value() {
            for &r in &self.controller.isr {
                let end = self.brokers[r as usize].log.len() as i64;
                assert!(
                    end > last,
                    "in-sync replica {r} ends at {end}, before acknowledged {last}"
                );
            }
        }
    }

    fn check(&self) {
        for (&offset, &value) in &self.acked {
            for &r in &self.controller.isr {
                let log = &self.brokers[r as usize].log;
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
                if let Some(rec) = broker.log.get(offset as usize) {
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

fn run(seed: u64) -> Tally {
    let mut sim = Sim::new(seed);
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
                "broker {b}: alive {} known epoch {} log {} hw {} cache {:?}: {role}",
                broker.alive,
                broker.known_epoch,
                broker.log.len(),
                broker.hw,
                broker.cache.entries()
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
    let reference = &sim.brokers[leader as usize].log;
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
        let first_difference = (0..broker.log.len().max(reference.len()))
            .find(|&i| broker.log.get(i) != reference.get(i));
        assert_eq!(
            first_difference,
            None,
            "replica {b} (log end {}) differs from leader {leader} (log end {})",
            broker.log.len(),
            reference.len()
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

#[test]
fn replicas_never_lose_acknowledged_records() {
    let seeds: Vec<u64> = match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
        Err(_) => (0..SEEDS).map(|i| 0x51ED_0000 + i).collect(),
    };
    let mut total = Tally::default();
    for seed in &seeds {
        let seed = *seed;
        let result = std::panic::catch_unwind(|| run(seed));
        match result {
            Ok(t) => {
                total.acked += t.acked;
                total.leader_epochs += t.leader_epochs;
                total.isr_changes += t.isr_changes;
            }
            Err(e) => {
                eprintln!(
                    "replication model failed with seed {seed}: replay with QUIVER_SEED={seed}"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    // The runs must have exercised something: records acknowledged, leaders replaced,
    // followers dropped from and taken back into the ISR.
    let n = seeds.len();
    eprintln!("{n} seed(s): {total:?}");
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
