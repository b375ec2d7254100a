//! Server-side assignors: from the members' subscriptions and the topics' partition counts to a
//! target assignment (every partition of a subscribed topic to exactly one of its subscribers).
//!
//! - `range` (Kafka's RangeAssignor): per topic, its subscribers sorted by member id each get a
//!   contiguous range; the first `partitions % subscribers` get one extra.
//! - `roundrobin` (Kafka's RoundRobinAssignor): every (topic, partition) in sorted order is dealt
//!   to the next member, in member-id order round a circle, that subscribes to the topic.
//! - `cooperative-sticky`: balanced and sticky. Each member first keeps what its previous target
//!   gave it (still subscribed and still existing), trimmed to its fair share; the rest goes, in
//!   sorted order, to the least-loaded subscriber (ties by member id). With identical
//!   subscriptions the counts differ by at most one, and a membership change moves only the
//!   partitions it must: a joining member takes one partition from each over-quota member; a
//!   leaving member's partitions are spread over the others. With differing subscriptions the
//!   result is valid and greedy-balanced, not optimal.
//!
//! All three are pure functions of their input (member ids are sorted), so every coordinator
//! computes the same answer.

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignment, AssignorKind};

/// What an assignor sees of one member.
#[derive(Debug, Clone)]
pub struct MemberSubscription<'a> {
    /// Topics the member subscribes to.
    pub topics: &'a BTreeSet<String>,
    /// The member's previous target (stickiness for `cooperative-sticky`).
    pub previous: &'a Assignment,
}

/// Computes the target assignment of every member (members without partitions get an empty
/// entry). `partitions` holds the partition count of each existing subscribed topic; topics
/// missing from it are not assigned.
pub fn assign(
    kind: AssignorKind,
    members: &BTreeMap<String, MemberSubscription<'_>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    match kind {
        AssignorKind::Range => range(members, partitions, &mut out),
        AssignorKind::RoundRobin => round_robin(members, partitions, &mut out),
        AssignorKind::CooperativeSticky => sticky(members, partitions, &mut out),
    }
    out
}

fn give(out: &mut BTreeMap<String, Assignment>, member: &str, topic: &str, partition: i32) {
    if let Some(a) = out.get_mut(member) {
        a.entry(topic.to_string()).or_default().insert(partition);
    }
}

fn subscribers<'m>(
    members: &'m BTreeMap<String, MemberSubscription<'_>>,
    topic: &str,
) -> Vec<&'m String> {
    members
        .iter()
        .filter(|(_, s)| s.topics.contains(topic))
        .map(|(id, _)| id)
        .collect()
}

fn range(
    members: &BTreeMap<String, MemberSubscription<'_>>,
    partitions: &BTreeMap<String, i32>,
    out: &mut BTreeMap<String, Assignment>,
) {
    for (topic, &count) in partitions {
        let subs = subscribers(members, topic);
        if subs.is_empty() || count <= 0 {
            continue;
        }
        let n = subs.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subs.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            for p in next..next + take {
                give(out, member, topic, p);
            }
            next += take;
        }
    }
}

fn round_robin(
    members: &BTreeMap<String, MemberSubscription<'_>>,
    partitions: &BTreeMap<String, i32>,
    out: &mut BTreeMap<String, Assignment>,
) {
    let ids: Vec<&String> = members.keys().collect();
    if ids.is_empty() {
        return;
    }
    let mut cursor = 0usize;
    for (topic, &count) in partitions {
        if subscribers(members, topic).is_empty() {
            continue;
        }
        for p in 0..count.max(0) {
            // The next member round the circle that subscribes to this topic.
            loop {
                let id = ids[cursor % ids.len()];
                cursor += 1;
                if members[id].topics.contains(topic) {
                    give(out, id, topic, p);
                    break;
                }
            }
        }
    }
}

fn sticky(
    members: &BTreeMap<String, MemberSubscription<'_>>,
    partitions: &BTreeMap<String, i32>,
    out: &mut BTreeMap<String, Assignment>,
) {
    // Every assignable partition, and who may take it.
    let mut all: Vec<(&String, i32)> = Vec::new();
    for (topic, &count) in partitions {
        if !subscribers(members, topic).is_empty() {
            all.extend((0..count.max(0)).map(|p| (topic, p)));
        }
    }
    let total = all.len();
    let eligible: Vec<&String> = members
        .iter()
        .filter(|(_, s)| s.topics.iter().any(|t| partitions.contains_key(t)))
        .map(|(id, _)| id)
        .collect();
    if eligible.is_empty() {
        return;
    }
    let quota_min = total / eligible.len();
    let mut at_max_left = total % eligible.len();
    // Keep previous partitions that are still valid, trimmed to the quota. Members that kept
    // more go first so they are the ones allowed one extra.
    let mut kept: BTreeMap<&String, Vec<(&String, i32)>> = BTreeMap::new();
    let mut taken: BTreeSet<(&String, i32)> = BTreeSet::new();
    for id in &eligible {
        let s = &members[*id];
        let mut mine = Vec::new();
        for (topic, ps) in s.previous {
            let Some((topic_ref, &count)) = partitions.get_key_value(topic) else {
                continue;
            };
            if !s.topics.contains(topic) {
                continue;
            }
            for &p in ps {
                if (0..count).contains(&p) && !taken.contains(&(topic_ref, p)) {
                    taken.insert((topic_ref, p));
                    mine.push((topic_ref, p));
                }
            }
        }
        kept.insert(id, mine);
    }
    let mut order: Vec<&String> = eligible.clone();
    order.sort_by(|a, b| kept[*b].len().cmp(&kept[*a].len()).then(a.cmp(b)));
    for id in order {
        let mine = kept
            .get_mut(id)
            .expect("every eligible member has an entry");
        let cap = if mine.len() > quota_min && at_max_left > 0 {
            at_max_left -= 1;
            quota_min + 1
        } else {
            quota_min
        };
        while mine.len() > cap {
            let freed = mine.pop().expect("longer than cap");
            taken.remove(&freed);
        }
    }
    let mut load: BTreeMap<&String, usize> = kept.iter().map(|(id, v)| (*id, v.len())).collect();
    for (id, mine) in &kept {
        for (topic, p) in mine {
            give(out, id, topic, *p);
        }
    }
    // The rest to the least-loaded subscriber.
    for (topic, p) in all {
        if taken.contains(&(topic, p)) {
            continue;
        }
        let best = eligible
            .iter()
            .filter(|id| members[**id].topics.contains(topic))
            .min_by(|a, b| load[**a].cmp(&load[**b]).then(a.cmp(b)));
        if let Some(id) = best {
            give(out, id, topic, p);
            *load.get_mut(*id).expect("loaded") += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(topics: &[&str]) -> BTreeSet<String> {
        topics.iter().map(|t| t.to_string()).collect()
    }

    type Layout = Vec<(String, Vec<(String, Vec<i32>)>)>;

    fn layout(a: &BTreeMap<String, Assignment>) -> Layout {
        a.iter()
            .map(|(m, tps)| {
                (
                    m.clone(),
                    tps.iter()
                        .map(|(t, ps)| (t.clone(), ps.iter().copied().collect()))
                        .collect(),
                )
            })
            .collect()
    }

    /// Kafka's RangeAssignor example: C0 and C1 both subscribe to t0 and t1, 3 partitions
    /// each: C0 gets t0p0, t0p1, t1p0, t1p1; C1 gets t0p2, t1p2.
    #[test]
    fn range_matches_kafkas_example() {
        let both = subs(&["t0", "t1"]);
        let empty = Assignment::new();
        let members: BTreeMap<String, MemberSubscription<'_>> = ["C0", "C1"]
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    MemberSubscription {
                        topics: &both,
                        previous: &empty,
                    },
                )
            })
            .collect();
        let parts: BTreeMap<String, i32> = [("t0".into(), 3), ("t1".into(), 3)].into();
        let a = assign(AssignorKind::Range, &members, &parts);
        assert_eq!(
            layout(&a),
            vec![
                (
                    "C0".into(),
                    vec![("t0".into(), vec![0, 1]), ("t1".into(), vec![0, 1])]
                ),
                (
                    "C1".into(),
                    vec![("t0".into(), vec![2]), ("t1".into(), vec![2])]
                ),
            ]
        );
    }

    /// Kafka's RoundRobinAssignor example: the same input gives C0 t0p0, t0p2, t1p1 and C1
    /// t0p1, t1p0, t1p2.
    #[test]
    fn round_robin_matches_kafkas_example() {
        let both = subs(&["t0", "t1"]);
        let empty = Assignment::new();
        let members: BTreeMap<String, MemberSubscription<'_>> = ["C0", "C1"]
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    MemberSubscription {
                        topics: &both,
                        previous: &empty,
                    },
                )
            })
            .collect();
        let parts: BTreeMap<String, i32> = [("t0".into(), 3), ("t1".into(), 3)].into();
        let a = assign(AssignorKind::RoundRobin, &members, &parts);
        assert_eq!(
            layout(&a),
            vec![
                (
                    "C0".into(),
                    vec![("t0".into(), vec![0, 2]), ("t1".into(), vec![1])]
                ),
                (
                    "C1".into(),
                    vec![("t0".into(), vec![1]), ("t1".into(), vec![0, 2])]
                ),
            ]
        );
    }

    /// Round robin skips members not subscribed to a topic (Kafka's second example: C0 on t0,
    /// C1 on t0 and t1, C2 on t0, t1 and t2).
    #[test]
    fn round_robin_skips_unsubscribed_members() {
        let s0 = subs(&["t0"]);
        let s1 = subs(&["t0", "t1"]);
        let s2 = subs(&["t0", "t1", "t2"]);
        let empty = Assignment::new();
        let members: BTreeMap<String, MemberSubscription<'_>> =
            [("C0", &s0), ("C1", &s1), ("C2", &s2)]
                .iter()
                .map(|(id, t)| {
                    (
                        id.to_string(),
                        MemberSubscription {
                            topics: t,
                            previous: &empty,
                        },
                    )
                })
                .collect();
        let parts: BTreeMap<String, i32> =
            [("t0".into(), 1), ("t1".into(), 2), ("t2".into(), 3)].into();
        let a = assign(AssignorKind::RoundRobin, &members, &parts);
        // Kafka's documentation: C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
        assert_eq!(
            layout(&a),
            vec![
                ("C0".into(), vec![("t0".into(), vec![0])]),
                ("C1".into(), vec![("t1".into(), vec![0])]),
                (
                    "C2".into(),
                    vec![("t1".into(), vec![1]), ("t2".into(), vec![0, 1, 2])]
                ),
            ]
        );
    }
}
