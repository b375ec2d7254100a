//! Seeded random runs of the consumer-group coordinator (sans-IO, no broker): members join,
//! heartbeat, change subscriptions, leave, go silent and expire; topics grow and disappear; time
//! moves. After every step no partition is held by two members and every answer stays inside
//! the member's target; after the survivors heartbeat a few rounds, every subscribed partition is
//! owned by exactly one subscriber, everyone is at the group's epoch and the group is Stable,
//! balanced within one partition when subscriptions are identical. Fencing is checked on the way.
//!
//! A failing run prints its seed; replay it with
//! `GROUP_MODEL_SEED=<seed> cargo test -p quiver-engine --test group_model`.

use std::collections::{BTreeMap, BTreeSet};

use quiver_engine::group::{
    Assignment, AssignorKind, CoordinatorConfig, GroupCoordinator, GroupError, GroupState,
    HeartbeatIn, EPOCH_JOIN, EPOCH_LEAVE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: u64 = 400;
const STEPS: usize = 120;
const SESSION_MS: i32 = 1000;

/// A client as the SDK runs one: it believes what the last answer told it.
#[derive(Debug, Clone)]
struct Client {
    group: String,
    id: String,
    epoch: i32,
    owned: Assignment,
    subscribed: Vec<String>,
    /// Stopped heartbeating (it will expire).
    silent: bool,
}

struct World {
    rng: StdRng,
    now: i64,
    topics: BTreeMap<String, i32>,
    coordinator: GroupCoordinator,
    clients: Vec<Client>,
    assignor: AssignorKind,
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let topics: BTreeMap<String, i32> = (0..rng.gen_range(1..=3))
            .map(|i| (format!("t{i}"), rng.gen_range(1..=12)))
            .collect();
        let assignor = [
            AssignorKind::Range,
            AssignorKind::RoundRobin,
            AssignorKind::CooperativeSticky,
        ][rng.gen_range(0..3)];
        let config = CoordinatorConfig {
            session_timeout_min_ms: 10,
            heartbeat_interval_ms: 5,
            default_assignor: assignor,
            ..CoordinatorConfig::default()
        };
        World {
            rng,
            now: 1_000_000,
            topics,
            coordinator: GroupCoordinator::new(config, seed),
            clients: Vec::new(),
            assignor,
        }
    }

    fn partitions_of(topics: &BTreeMap<String, i32>) -> impl Fn(&str) -> Option<i32> + '_ {
        move |t: &str| topics.get(t).copied()
    }

    fn random_subscription(&mut self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.keys().cloned().collect();
        names.push("missing".into());
        let mut out: Vec<String> = names
            .into_iter()
            .filter(|_| self.rng.gen_bool(0.6))
            .collect();
        if out.is_empty() {
            out.push("t0".into());
        }
        out
    }

    /// One heartbeat of client `i`; adopts the answer. Returns the error if refused.
    fn beat(&mut self, i: usize) -> Result<(), GroupError> {
        let c = &self.clients[i];
        let input = HeartbeatIn {
            group_id: c.group.clone(),
            member_id: c.id.clone(),
            member_epoch: c.epoch,
            client_id: format!("client-{i}"),
            client_host: String::new(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: 5 * SESSION_MS,
            subscribed_topics: c.subscribed.clone(),
            assignor: None,
            owned: c.owned.clone(),
        };
        let topics = self.topics.clone();
        let out = self
            .coordinator
            .heartbeat(self.now, input, &Self::partitions_of(&topics))?;
        let c = &mut self.clients[i];
        c.id = out.member_id;
        c.epoch = out.member_epoch;
        if out.member_epoch == EPOCH_LEAVE {
            assert!(out.assignment.is_empty());
            c.owned.clear();
            return Ok(());
        }
        // The answer stays inside the member's target.
        let d = self.coordinator.describe(&c.group).expect("group exists");
        let me = d
            .members
            .iter()
            .find(|m| m.member_id == c.id)
            .expect("member present");
        for (t, ps) in &out.assignment {
            let target = me.target.get(t).cloned().unwrap_or_default();
            assert!(
                ps.is_subset(&target),
                "assignment {t}{ps:?} outside target {target:?}"
            );
            assert!(c.subscribed.contains(t), "{t} not subscribed");
        }
        c.owned = out.assignment;
        Ok(())
    }

    fn tick(&mut self) {
        let topics = self.topics.clone();
        self.coordinator
            .tick(self.now, &Self::partitions_of(&topics));
    }

    fn members_of(&self, group: &str) -> BTreeSet<String> {
        self.coordinator
            .describe(group)
            .map(|d| d.members.into_iter().map(|m| m.member_id).collect())
            .unwrap_or_default()
    }

    /// No partition held by two members: by the coordinator's books (assigned + pending) and
    /// by the beliefs of clients that are still members.
    fn check_exclusive(&self) {
        for group in ["g0", "g1"] {
            let Some(d) = self.coordinator.describe(group) else {
                continue;
            };
            let mut held: BTreeMap<(String, i32), String> = BTreeMap::new();
            for m in &d.members {
                for (t, ps) in &m.assignment {
                    for &p in ps {
                        if let Some(other) = held.insert((t.clone(), p), m.member_id.clone()) {
                            panic!("{t}-{p} held by {other} and {}", m.member_id);
                        }
                    }
                }
            }
            let members = self.members_of(group);
            let mut believed: BTreeMap<(String, i32), String> = BTreeMap::new();
            for c in self
                .clients
                .iter()
                .filter(|c| c.group == group && members.contains(&c.id))
            {
                for (t, ps) in &c.owned {
                    for &p in ps {
                        if let Some(other) = believed.insert((t.clone(), p), c.id.clone()) {
                            panic!("clients {other} and {} both believe they own {t}-{p}", c.id);
                        }
                    }
                }
            }
        }
    }

    fn step(&mut self) {
        let roll = self.rng.gen_range(0..100);
        let live: Vec<usize> = (0..self.clients.len())
            .filter(|&i| !self.clients[i].silent && !self.clients[i].id.is_empty())
            .collect();
        match roll {
            0..=14 if self.clients.len() < 8 => {
                let group = if self.rng.gen_bool(0.7) { "g0" } else { "g1" };
                let subscribed = self.random_subscription();
                self.clients.push(Client {
                    group: group.into(),
                    id: String::new(),
                    epoch: EPOCH_JOIN,
                    owned: Assignment::new(),
                    subscribed,
                    silent: false,
                });
                let i = self.clients.len() - 1;
                self.beat(i).expect("join accepted");
            }
            15..=59 if !live.is_empty() => {
                let i = live[self.rng.gen_range(0..live.len())];
                match self.beat(i) {
                    Ok(()) => {}
                    Err(GroupError::UnknownMemberId { .. }) => {
                        // Expired while we were not looking: rejoin from scratch.
                        let members = self.members_of(&self.clients[i].group);
                        let c = &mut self.clients[i];
                        assert!(!members.contains(&c.id));
                        c.id.clear();
                        c.epoch = EPOCH_JOIN;
                        c.owned.clear();
                        self.beat(i).expect("rejoin accepted");
                    }
                    Err(e) => panic!("heartbeat refused: {e}"),
                }
            }
            60..=64 if !live.is_empty() => {
                // A fenced epoch.
                let i = live[self.rng.gen_range(0..live.len())];
                let saved = self.clients[i].epoch;
                self.clients[i].epoch = saved + 1000;
                let got = self.beat(i);
                self.clients[i].epoch = saved;
                match got {
                    Err(
                        GroupError::FencedMemberEpoch { .. } | GroupError::UnknownMemberId { .. },
                    ) => {}
                    other => panic!("expected fencing, got {other:?}"),
                }
            }
            65..=69 if !live.is_empty() => {
                // Commit checks: the current epoch passes, another does not.
                let i = live[self.rng.gen_range(0..live.len())];
                let c = &self.clients[i];
                if self.members_of(&c.group).contains(&c.id) {
                    let current = self
                        .coordinator
                        .describe(&c.group)
                        .unwrap()
                        .members
                        .into_iter()
                        .find(|m| m.member_id == c.id)
                        .unwrap()
                        .member_epoch;
                    assert_eq!(
                        self.coordinator.check_commit(&c.group, &c.id, current),
                        Ok(())
                    );
                    assert!(matches!(
                        self.coordinator.check_commit(&c.group, &c.id, current + 1),
                        Err(GroupError::StaleMemberEpoch { .. })
                    ));
                    assert!(matches!(
                        self.coordinator.check_commit(&c.group, "", -1),
                        Err(GroupError::NonEmptyGroup { .. })
                    ));
                }
            }
            70..=74 if !live.is_empty() => {
                let i = live[self.rng.gen_range(0..live.len())];
                self.clients[i].subscribed = self.random_subscription();
                let _ = self.beat(i);
            }
            75..=78 if !live.is_empty() => {
                // Leave.
                let i = live[self.rng.gen_range(0..live.len())];
                self.clients[i].epoch = EPOCH_LEAVE;
                self.beat(i).expect("leave accepted");
                let c = self.clients.remove(i);
                assert!(!self.members_of(&c.group).contains(&c.id));
            }
            79..=81 if !live.is_empty() => {
                let i = live[self.rng.gen_range(0..live.len())];
                self.clients[i].silent = true;
            }
            82..=85 => {
                // A topic grows, or (rarely) disappears.
                let names: Vec<String> = self.topics.keys().cloned().collect();
                let t = names[self.rng.gen_range(0..names.len())].clone();
                if self.rng.gen_bool(0.8) {
                    *self.topics.get_mut(&t).unwrap() += self.rng.gen_range(1..=3);
                } else if self.topics.len() > 1 {
                    self.topics.remove(&t);
                }
                self.tick();
            }
            _ => {
                self.now += self.rng.gen_range(1..(SESSION_MS as i64) / 2);
                self.tick();
            }
        }
        self.check_exclusive();
    }

    /// Silent clients expire; every other client heartbeats until the groups settle.
    fn settle(&mut self) {
        self.now += i64::from(SESSION_MS) * 2;
        // Keep the non-silent alive while the silent expire.
        self.tick();
        self.clients.retain(|c| !c.silent);
        for _ in 0..6 {
            for i in 0..self.clients.len() {
                match self.beat(i) {
                    Ok(()) => {}
                    Err(GroupError::UnknownMemberId { .. }) => {
                        let c = &mut self.clients[i];
                        c.id.clear();
                        c.epoch = EPOCH_JOIN;
                        c.owned.clear();
                        self.beat(i).expect("rejoin accepted");
                    }
                    Err(e) => panic!("heartbeat refused while settling: {e}"),
                }
                self.check_exclusive();
            }
            self.now += 5;
        }
        for group in ["g0", "g1"] {
            let clients: Vec<&Client> = self.clients.iter().filter(|c| c.group == group).collect();
            let Some(d) = self.coordinator.describe(group) else {
                assert!(clients.is_empty(), "{group} vanished with live clients");
                continue;
            };
            assert_eq!(
                d.members.len(),
                clients.len(),
                "{group}: members {:?}",
                d.members
            );
            if clients.is_empty() {
                continue;
            }
            assert_eq!(d.state, GroupState::Stable, "{group}: {d:?}");
            for m in &d.members {
                assert_eq!(m.member_epoch, d.assignment_epoch, "{group}: {m:?}");
            }
            // Every subscribed existing partition owned exactly once, by a subscriber.
            let mut owner: BTreeMap<(String, i32), &str> = BTreeMap::new();
            for c in &clients {
                for (t, ps) in &c.owned {
                    assert!(c.subscribed.contains(t));
                    for &p in ps {
                        assert!(p < self.topics[t], "{t}-{p} does not exist");
                        assert!(owner.insert((t.clone(), p), &c.id).is_none());
                    }
                }
            }
            let wanted: BTreeSet<&String> = clients.iter().flat_map(|c| &c.subscribed).collect();
            for t in wanted {
                let Some(&n) = self.topics.get(t) else {
                    continue;
                };
                for p in 0..n {
                    assert!(
                        owner.contains_key(&(t.clone(), p)),
                        "{group}: {t}-{p} unowned"
                    );
                }
            }
            // Balance with identical subscriptions.
            let same = clients.windows(2).all(|w| {
                let a: BTreeSet<_> = w[0].subscribed.iter().collect();
                let b: BTreeSet<_> = w[1].subscribed.iter().collect();
                a == b
            });
            if same && self.assignor != AssignorKind::Range {
                let counts: Vec<usize> = clients.iter().map(|c| count(&c.owned)).collect();
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(
                    hi - lo <= 1,
                    "{group} unbalanced: {counts:?} ({:?})",
                    self.assignor
                );
            }
        }
    }
}

fn run(seed: u64) {
    let mut world = World::new(seed);
    for _ in 0..STEPS {
        world.step();
    }
    world.settle();
    // Removed members are fenced for heartbeats and commits.
    let gone = world.clients.first().cloned();
    if let Some(c) = gone {
        world.now += i64::from(SESSION_MS) * 3;
        world.tick();
        assert!(matches!(
            world.coordinator.check_commit(&c.group, &c.id, c.epoch),
            Err(GroupError::UnknownMemberId { .. })
        ));
        let i = 0;
        assert!(matches!(
            world.beat(i),
            Err(GroupError::UnknownMemberId { .. })
        ));
    }
}

#[test]
fn seeded_runs_keep_partitions_exclusive_and_settle() {
    let seeds: Vec<u64> = match std::env::var("GROUP_MODEL_SEED") {
        Ok(s) => vec![s.parse().expect("GROUP_MODEL_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| run(seed));
        if outcome.is_err() {
            panic!("group model failed; replay with GROUP_MODEL_SEED={seed}");
        }
    }
}

fn join(
    c: &mut GroupCoordinator,
    now: i64,
    member: &str,
    topics: &BTreeMap<String, i32>,
) -> (String, i32, Assignment) {
    let out = c
        .heartbeat(
            now,
            HeartbeatIn {
                group_id: "g".into(),
                member_id: member.into(),
                member_epoch: EPOCH_JOIN,
                client_id: "c".into(),
                client_host: String::new(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                subscribed_topics: vec!["t".into()],
                assignor: Some("cooperative-sticky".into()),
                owned: Assignment::new(),
            },
            &|t: &str| topics.get(t).copied(),
        )
        .unwrap();
    (out.member_id, out.member_epoch, out.assignment)
}

fn beat(
    c: &mut GroupCoordinator,
    now: i64,
    m: &mut (String, i32, Assignment),
    topics: &BTreeMap<String, i32>,
) {
    let out = c
        .heartbeat(
            now,
            HeartbeatIn {
                group_id: "g".into(),
                member_id: m.0.clone(),
                member_epoch: m.1,
                client_id: "c".into(),
                client_host: String::new(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                subscribed_topics: vec!["t".into()],
                assignor: Some("cooperative-sticky".into()),
                owned: m.2.clone(),
            },
            &|t: &str| topics.get(t).copied(),
        )
        .unwrap();
    m.1 = out.member_epoch;
    m.2 = out.assignment;
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get("t").cloned().unwrap_or_default()
}

/// Cooperative-sticky: 3 members over 6 partitions; a 4th joins and only the partitions that
/// move to it are revoked (one here); then a member leaves and only its partitions move.
#[test]
fn cooperative_sticky_moves_only_what_it_must() {
    let topics: BTreeMap<String, i32> = [("t".to_string(), 6)].into();
    let mut c = GroupCoordinator::new(CoordinatorConfig::default(), 7);
    let mut members: Vec<(String, i32, Assignment)> =
        (0..3).map(|_| join(&mut c, 0, "", &topics)).collect();
    for _ in 0..3 {
        for m in members.iter_mut() {
            beat(&mut c, 1, m, &topics);
        }
    }
    let before: Vec<BTreeSet<i32>> = members.iter().map(|m| parts(&m.2)).collect();
    assert_eq!(
        before.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        [2, 2, 2]
    );

    members.push(join(&mut c, 2, "", &topics));
    let mut lost = 0;
    for _ in 0..3 {
        for m in members.iter_mut() {
            beat(&mut c, 3, m, &topics);
        }
    }
    for (old, m) in before.iter().zip(&members) {
        let now = parts(&m.2);
        assert!(
            now.is_subset(old),
            "an old member gained or swapped: {old:?} -> {now:?}"
        );
        lost += old.len() - now.len();
    }
    assert_eq!(lost, 1, "exactly one partition moves to the newcomer");
    let mut sizes: Vec<usize> = members.iter().map(|m| parts(&m.2).len()).collect();
    sizes.sort();
    assert_eq!(sizes, [1, 1, 2, 2]);

    // Member 0 leaves: only its partitions move.
    let leaving = members.remove(0);
    let before: Vec<BTreeSet<i32>> = members.iter().map(|m| parts(&m.2)).collect();
    c.heartbeat(
        4,
        HeartbeatIn {
            group_id: "g".into(),
            member_id: leaving.0.clone(),
            member_epoch: EPOCH_LEAVE,
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            subscribed_topics: vec![],
            assignor: None,
            owned: Assignment::new(),
        },
        &|t: &str| topics.get(t).copied(),
    )
    .unwrap();
    for _ in 0..3 {
        for m in members.iter_mut() {
            beat(&mut c, 5, m, &topics);
        }
    }
    for (old, m) in before.iter().zip(&members) {
        assert!(
            old.is_subset(&parts(&m.2)),
            "a remaining member lost a partition"
        );
    }
    let all: BTreeSet<i32> = members.iter().flat_map(|m| parts(&m.2)).collect();
    assert_eq!(all, (0..6).collect());
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
}

#[test]
fn unload_forgets_only_the_groups_it_picks() {
    use quiver_engine::group::CommittedOffset;
    let mut c = GroupCoordinator::new(CoordinatorConfig::default(), 7);
    let topics: BTreeMap<String, i32> = [("t".to_string(), 2)].into_iter().collect();
    // Group "g" has a member and an offset; "h" only an offset.
    join(&mut c, 1_000, "", &topics);
    for group in ["g", "h"] {
        c.apply_offset(
            group,
            "t",
            0,
            Some(CommittedOffset {
                offset: 5,
                leader_epoch: 0,
                metadata: String::new(),
                commit_timestamp_ms: 1_000,
            }),
        );
    }
    assert_eq!(c.unload(|g| g == "g"), 1);
    assert!(
        c.describe("g").is_none(),
        "members and offsets of g are gone"
    );
    assert!(c.committed("g", "t", 0).is_none());
    assert_eq!(c.committed("h", "t", 0).map(|o| o.offset), Some(5));
    assert_eq!(c.unload(|_| false), 0);
}
