//! Seeded simulation of a three-member controller quorum (`cluster::quorum`): raft-rs nodes
//! with durable metadata logs on in-memory storage, over a network that drops, delays and
//! reorders messages; members are killed (their storage keeps only what was synced) and
//! restarted from their logs. The active controller registers brokers and creates topics.
//!
//! Members snapshot their image every few entries and drop the entries it covers, so a member
//! that was down long enough is sent the leader's snapshot (InstallSnapshot) on its return.
//!
//! Checked: no two members ever apply different entries at the same index (state-machine
//! safety, across restarts too); whatever a member applied is, after healing, applied by all
//! (one by one or through a snapshot) and their metadata images are equal; elections happened,
//! records were committed and snapshots were installed.
//! A failing seed is printed; replay it with `QUIVER_SEED=<n>`.

use std::collections::BTreeMap;

use futures_lite::future::block_on;
use quiver_engine::cluster::controller::ControllerConfig;
use quiver_engine::cluster::metadata::TopicConfig;
use quiver_engine::cluster::metadata_log::MetadataLog;
use quiver_engine::cluster::quorum::{encode_records, QuorumNode};
use quiver_engine::log::MemStorage;
use raft::eraftpb::Message;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const VOTERS: [u64; 3] = [1, 2, 3];
const SEEDS: u64 = 20;
const CHAOS_STEPS: usize = 1500;
const HEAL_STEPS: usize = 1500;
const TICK_MS: i64 = 10;
/// Applied entries between snapshots: small, so members fall behind the leader's log start.
const SNAPSHOT_EVERY: u64 = 25;

struct Member {
    storage: MemStorage,
    log: Option<MetadataLog<MemStorage>>,
    node: Option<QuorumNode>,
}

struct Sim {
    rng: SmallRng,
    now: i64,
    members: BTreeMap<u64, Member>,
    net: Vec<(i64, Message)>,
    drop_percent: u32,
    /// Every applied entry's payload by index, from whichever member applied it first.
    applied: BTreeMap<u64, Vec<u8>>,
    /// Per member (this incarnation): the last index it applied.
    last_applied: BTreeMap<u64, u64>,
    brokers_registered: i32,
    topics_created: usize,
    elections: u64,
    /// Snapshots members installed from a leader.
    installs: usize,
}

fn config() -> ControllerConfig {
    ControllerConfig::default()
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut members = BTreeMap::new();
        for id in VOTERS {
            let storage = MemStorage::new();
            let log = block_on(MetadataLog::open(storage.clone(), 0)).expect("open log");
            let mut node = block_on(QuorumNode::open(id, &VOTERS, &log, config())).expect("node");
            node.set_snapshot_every(SNAPSHOT_EVERY);
            members.insert(
                id,
                Member {
                    storage,
                    log: Some(log),
                    node: Some(node),
                },
            );
        }
        Sim {
            rng: SmallRng::seed_from_u64(seed),
            now: 0,
            members,
            net: Vec::new(),
            drop_percent: 10,
            applied: BTreeMap::new(),
            last_applied: BTreeMap::new(),
            brokers_registered: 0,
            topics_created: 0,
            elections: 0,
            installs: 0,
        }
    }

    fn leader(&self) -> Option<u64> {
        self.members
            .iter()
            .find(|(_, m)| m.node.as_ref().is_some_and(|n| n.is_leader()))
            .map(|(id, _)| *id)
    }

    fn send(&mut self, messages: Vec<Message>) {
        for m in messages {
            if self.rng.gen_range(0..100) < self.drop_percent {
                continue;
            }
            let at = self.now + self.rng.gen_range(1..=30);
            self.net.push((at, m));
        }
    }

    fn kill(&mut self, id: u64) {
        let seed = self.rng.gen();
        let m = self.members.get_mut(&id).expect("member");
        if let Some(node) = &m.node {
            self.installs += node.snapshots_installed();
        }
        m.node = None;
        m.log = None;
        m.storage = m.storage.crash(seed);
        self.last_applied.remove(&id);
    }

    fn restart(&mut self, id: u64) {
        let m = self.members.get_mut(&id).expect("member");
        let log = block_on(MetadataLog::open(m.storage.clone(), self.now)).expect("reopen log");
        let mut node =
            block_on(QuorumNode::open(id, &VOTERS, &log, config())).expect("reopen node");
        node.set_snapshot_every(SNAPSHOT_EVERY);
        m.log = Some(log);
        m.node = Some(node);
    }

    /// The leader's controller decides something (a broker registers or heartbeats, time
    /// passes, a topic is created) and proposes it.
    fn decide(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let now = self.now;
        let roll = self.rng.gen_range(0..10);
        let broker = self.rng.gen_range(1..=5);
        let m = self.members.get_mut(&leader).expect("member");
        let node = m.node.as_mut().expect("alive");
        let registered = node.metadata().broker(broker).map(|b| b.incarnation);
        let controller = node.controller_mut();
        let (kind, records) = match (roll, registered) {
            (0..=1, _) if !controller.metadata().live_brokers().is_empty() => {
                let name = format!("t{}", self.topics_created);
                (
                    1,
                    controller.create_topic(&name, Some(2), Some(1), TopicConfig::default()),
                )
            }
            (2, _) => (2, controller.tick(now)),
            (3..=6, Some(incarnation)) => (3, controller.heartbeat(broker, incarnation, true, now)),
            _ => (
                0,
                controller.register_broker(
                    broker,
                    now as u64 + 1,
                    &format!("127.0.0.1:{}", 9000 + broker),
                    None,
                    1,
                    now,
                ),
            ),
        };
        if let Ok(records) = records {
            if !records.is_empty() && node.propose(&records).is_ok() {
                match kind {
                    0 => self.brokers_registered += 1,
                    1 => self.topics_created += 1,
                    _ => {}
                }
            }
        }
    }

    fn step(&mut self, chaos: bool, propose: bool) {
        self.now += TICK_MS;
        let before = self.leader();
        for m in self.members.values_mut() {
            if let Some(node) = m.node.as_mut() {
                node.tick();
            }
        }
        if chaos {
            let roll = self.rng.gen_range(0..1000);
            let dead: Vec<u64> = self
                .members
                .iter()
                .filter(|(_, m)| m.node.is_none())
                .map(|(id, _)| *id)
                .collect();
            if roll < 8 && dead.is_empty() {
                // Kill the leader more often than not: that is what exercises elections.
                let id = match self.leader() {
                    Some(l) if self.rng.gen_range(0..3) > 0 => l,
                    _ => VOTERS[self.rng.gen_range(0..VOTERS.len())],
                };
                self.kill(id);
            } else if roll < 30 {
                if let Some(&id) = dead.first() {
                    self.restart(id);
                }
            }
        }
        if propose && self.rng.gen_range(0..100) < 30 {
            self.decide();
        }
        let now = self.now;
        let (mut due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.net = later;
        due.sort_by_key(|(at, _)| *at);
        for (_, message) in due {
            let Some(m) = self.members.get_mut(&message.to) else {
                continue;
            };
            if let Some(node) = m.node.as_mut() {
                // A message for an older incarnation or garbage is refused, not fatal.
                let _ = node.step(message);
            }
        }
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            let m = self.members.get_mut(&id).expect("member");
            let (Some(node), Some(log)) = (m.node.as_mut(), m.log.as_mut()) else {
                continue;
            };
            let (out, applied) = block_on(node.advance(log, now)).expect("advance");
            for a in applied {
                let data = encode_records(&a.records);
                match self.applied.get(&a.index) {
                    Some(existing) => assert_eq!(
                        existing, &data,
                        "member {id} applied a different entry at index {}",
                        a.index
                    ),
                    None => {
                        self.applied.insert(a.index, data);
                    }
                }
                let last = self.last_applied.entry(id).or_insert(0);
                assert!(
                    a.index > *last,
                    "member {id} applied {} after {last}",
                    a.index
                );
                *last = a.index;
            }
            self.send(out);
        }
        if self.leader().is_some() && self.leader() != before {
            self.elections += 1;
        }
    }
}

fn run(seed: u64) -> (usize, u64, usize) {
    let mut sim = Sim::new(seed);
    for _ in 0..CHAOS_STEPS {
        sim.step(true, true);
    }
    sim.drop_percent = 0;
    for id in VOTERS {
        if sim.members[&id].node.is_none() {
            sim.restart(id);
        }
    }
    // Healed: decisions go on for a while, then the quorum settles.
    for i in 0..HEAL_STEPS {
        sim.step(false, i < HEAL_STEPS / 2);
    }
    let leader = sim.leader().expect("a leader after healing");
    let images: Vec<_> = VOTERS
        .iter()
        .map(|id| {
            sim.members[id]
                .node
                .as_ref()
                .expect("alive")
                .metadata()
                .clone()
        })
        .collect();
    for (i, image) in images.iter().enumerate() {
        if image != &images[0] {
            for (j, im) in images.iter().enumerate() {
                eprintln!(
                    "member {}: brokers {:?} topics {} skipped {} last applied {:?}",
                    VOTERS[j],
                    im.brokers()
                        .map(|b| (b.id, b.incarnation, b.epoch, b.fenced))
                        .collect::<Vec<_>>(),
                    im.topics().count(),
                    sim.members[&VOTERS[j]].node.as_ref().unwrap().skipped(),
                    sim.last_applied.get(&VOTERS[j])
                );
            }
        }
        assert!(
            image == &images[0],
            "member {} has another image than member {}",
            VOTERS[i],
            VOTERS[0]
        );
    }
    let highest = sim.applied.keys().last().copied().unwrap_or(0);
    for id in VOTERS {
        let node = sim.members[&id].node.as_ref().expect("alive");
        assert_eq!(
            node.applied_index()
                .max(sim.last_applied.get(&id).copied().unwrap_or(0)),
            highest,
            "member {id} has not applied everything (leader {leader})"
        );
        sim.installs += node.snapshots_installed();
    }
    let brokers = images[0].brokers().count();
    assert!(brokers > 0, "the quorum committed no broker registration");
    (sim.applied.len(), sim.elections, sim.installs)
}

#[test]
fn the_quorum_agrees_on_every_applied_entry() {
    let seeds: Vec<u64> = match std::env::var("QUIVER_SEED") {
        Ok(s) => vec![s.parse().expect("QUIVER_SEED is a number")],
        Err(_) => (0..SEEDS).map(|i| 0xC0_0000 + i).collect(),
    };
    let mut applied = 0;
    let mut elections = 0;
    let mut installs = 0;
    for &seed in &seeds {
        match std::panic::catch_unwind(|| run(seed)) {
            Ok((a, e, i)) => {
                applied += a;
                elections += e;
                installs += i;
            }
            Err(e) => {
                eprintln!(
                    "controller quorum failed with seed {seed}: replay with QUIVER_SEED={seed}"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    eprintln!(
        "{} seed(s): {applied} entries applied, {elections} leader changes, {installs} snapshots installed",
        seeds.len()
    );
    if seeds.len() > 1 {
        assert!(installs > 0, "no member was ever sent a snapshot");
    }
    assert!(
        applied >= 20 * seeds.len(),
        "only {applied} entries applied"
    );
    assert!(
        elections >= 2 * seeds.len() as u64,
        "only {elections} leader changes"
    );
}
