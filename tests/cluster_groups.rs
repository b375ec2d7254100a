//! Consumer groups on a three-broker cluster (issue "Cluster": groups keep working when a
//! broker dies). Two members of one group consume a topic with replication factor 3 and
//! commit what they processed; then the group's coordinator (the leader of its
//! `__consumer_offsets` partition) is killed with `kill -9`.
//!
//! Checked: the first group request creates `__consumer_offsets` through the controller; the
//! two members split the partitions; after the kill another broker coordinates the group and
//! every commit acknowledged before the kill is still there; the members rejoin, consume what
//! was produced after the kill and commit to the log end; every acknowledged record was
//! consumed (at least once) with the right value at its offset; and any broker answers
//! ListGroups for the whole cluster and DescribeGroups for the group (passing the request on).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{acks_all, Cluster};
use quiver_transport::client::{
    Admin, Client, ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset, Producer,
    ProducerRecord, TopicPartition,
};

const TOPIC: &str = "orders";
const GROUP: &str = "billing";
const PARTITIONS: i32 = 4;
/// Records produced before the kill, and as many after.
const PHASE: usize = 400;
const WAIT_MAX: Duration = Duration::from_secs(90);

/// What the members saw and committed, shared with the test.
#[derive(Default)]
struct Seen {
    /// Every record consumed: (partition, offset) -> sequence number in its value.
    records: Mutex<Vec<(i32, i64, usize)>>,
    /// The highest commit acknowledged per partition.
    committed: Mutex<BTreeMap<i32, i64>>,
    /// Members must stop polling and committing.
    hold: AtomicBool,
    /// Members that are holding.
    holding: AtomicUsize,
    /// Members must leave.
    done: AtomicBool,
    /// Errors poll or commit returned (retriable ones are expected around the kill).
    errors: Mutex<Vec<String>>,
}

/// One member: polls, commits exactly what it processed, until told to stop.
async fn member(config: ClientConfig, seen: Arc<Seen>) {
    let client = Client::connect(config).await.expect("client");
    let group = GroupConfig {
        session_timeout: Duration::from_secs(10),
        enable_auto_commit: false,
        ..GroupConfig::new(GROUP)
    };
    let consumer = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(200),
        ..ConsumerConfig::default()
    };
    let mut member = GroupConsumer::subscribe(client, consumer, group, vec![TOPIC.into()])
        .await
        .expect("subscribe");
    let mut held = false;
    while !seen.done.load(Ordering::SeqCst) {
        if seen.hold.load(Ordering::SeqCst) {
            if !held {
                held = true;
                seen.holding.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        if held {
            held = false;
            seen.holding.fetch_sub(1, Ordering::SeqCst);
        }
        let records = match member.poll(Duration::from_millis(300)).await {
            Ok(r) => r,
            Err(e) => {
                seen.errors.lock().unwrap().push(format!("poll: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        {
            let mut log = seen.records.lock().unwrap();
            for r in &records {
                let value = r.value.as_deref().expect("a value");
                log.push((r.partition, r.offset, common::seq_of(value)));
                let at = next
                    .entry(TopicPartition::new(TOPIC, r.partition))
                    .or_default();
                *at = (*at).max(r.offset + 1);
            }
        }
        match member.commit_offsets(&next).await {
            Ok(()) => {
                let mut committed = seen.committed.lock().unwrap();
                for (tp, offset) in next {
                    let at = committed.entry(tp.partition).or_default();
                    *at = (*at).max(offset);
                }
            }
            Err(e) => seen.errors.lock().unwrap().push(format!("commit: {e}")),
        }
    }
    let _ = member.close().await;
}

/// Produces records `range` (value = sequence number) round-robin over the partitions with
/// `acks=all`; returns (record, partition, offset) of each, all of which must be acknowledged.
async fn produce(config: ClientConfig, range: std::ops::Range<usize>) -> Vec<(usize, i32, i64)> {
    let producer = Producer::connect(config, acks_all(Duration::from_secs(60)))
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for i in range {
        let record =
            ProducerRecord::new(TOPIC, common::seq_value(i)).with_partition(i as i32 % PARTITIONS);
        deliveries.push((i, producer.send(record).await.expect("send queues")));
    }
    let mut acked = Vec::new();
    for (i, d) in deliveries {
        let meta = d.await.expect("every record is acknowledged");
        acked.push((i, meta.partition, meta.offset));
    }
    producer.close().await.expect("close");
    acked
}

/// Log end per partition implied by what was acknowledged (nothing else is produced).
fn log_ends(acked: &[(usize, i32, i64)]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for &(_, p, o) in acked {
        let end = ends.entry(p).or_insert(0);
        *end = (*end).max(o + 1);
    }
    ends
}

/// Waits until the members consumed every acknowledged record and committed the log ends.
async fn wait_consumed(seen: &Seen, acked: &[(usize, i32, i64)], cluster: &Cluster, what: &str) {
    let ends = log_ends(acked);
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        let consumed: BTreeSet<(i32, i64)> = seen
            .records
            .lock()
            .unwrap()
            .iter()
            .map(|&(p, o, _)| (p, o))
            .collect();
        let all_read = acked.iter().all(|&(_, p, o)| consumed.contains(&(p, o)));
        let committed = seen.committed.lock().unwrap().clone();
        if all_read && ends.iter().all(|(p, e)| committed.get(p) == Some(e)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: read {} of {} records, committed {committed:?} of {ends:?}; errors {:?}\n{}",
            consumed.len(),
            acked.len(),
            seen.errors.lock().unwrap(),
            cluster.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn groups_survive_the_loss_of_their_coordinator() {
    let mut cluster = Cluster::start(3);
    let rt = common::runtime();
    let config = cluster.config();
    rt.block_on(async {
        cluster.create_topic(TOPIC, PARTITIONS, 3).await;
        let mut acked = produce(config.clone(), 0..PHASE).await;
        let seen = Arc::new(Seen::default());
        let members: Vec<_> = (0..2)
            .map(|_| tokio::spawn(member(config.clone(), seen.clone())))
            .collect();
        wait_consumed(&seen, &acked, &cluster, "before the kill").await;

        // The group is coordinated by the leader of its offsets partition; both members hold
        // partitions, none twice.
        let admin = Admin::connect(config.clone()).await.expect("admin");
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let described = admin.describe_group(GROUP).await.expect("describe");
            let held: Vec<(String, i32)> = described
                .members
                .iter()
                .flat_map(|m| &m.assignment)
                .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p)))
                .collect();
            let distinct: BTreeSet<_> = held.iter().cloned().collect();
            if described.members.len() == 2
                && described.members.iter().all(|m| !m.assignment.is_empty())
                && held.len() == PARTITIONS as usize
                && distinct.len() == held.len()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the members did not split the partitions: {described:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Stop the members, then kill the coordinator.
        seen.hold.store(true, Ordering::SeqCst);
        while seen.holding.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = seen.committed.lock().unwrap().clone();
        let coordinator = admin
            .find_group_coordinator(GROUP)
            .await
            .expect("a coordinator")
            .node_id;
        assert!((0..3).contains(&coordinator), "coordinator {coordinator}");
        let victim = coordinator as usize;
        cluster.kill9(victim);

        // Another broker takes over the group with every acknowledged commit.
        let survivor = (victim + 1) % 3;
        let admin = Admin::connect(cluster.config_of(&[survivor]))
            .await
            .expect("admin");
        let deadline = Instant::now() + WAIT_MAX;
        let offsets = loop {
            let moved = admin
                .find_group_coordinator(GROUP)
                .await
                .is_ok_and(|c| c.node_id >= 0 && c.node_id != coordinator);
            if moved {
                if let Ok(offsets) = admin.list_group_offsets(GROUP).await {
                    break offsets;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no other coordinator took over the group\n{}",
                cluster.stderr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let after: BTreeMap<i32, i64> = offsets
            .iter()
            .filter(|o| o.partition.topic == TOPIC)
            .map(|o| (o.partition.partition, o.offset))
            .collect();
        for (p, offset) in &before {
            assert!(
                after.get(p).is_some_and(|a| a >= offset),
                "partition {p}: commit {offset} was acknowledged, the new coordinator has {:?}",
                after.get(p)
            );
        }
        eprintln!("coordinator {coordinator} killed; commits kept: {after:?}");

        // The killed broker comes back; the members go on with new records.
        tokio::task::block_in_place(|| cluster.start_node(victim));
        seen.hold.store(false, Ordering::SeqCst);
        acked.extend(produce(config.clone(), PHASE..2 * PHASE).await);
        wait_consumed(&seen, &acked, &cluster, "after the kill").await;

        // Every record consumed carried the value acknowledged at its offset.
        let expected: BTreeMap<(i32, i64), usize> =
            acked.iter().map(|&(i, p, o)| ((p, o), i)).collect();
        for &(p, o, i) in seen.records.lock().unwrap().iter() {
            assert_eq!(expected.get(&(p, o)), Some(&i), "record at {p}/{o}");
        }

        // Every broker answers for the whole cluster: ListGroups gathers all coordinators'
        // groups, DescribeGroups is passed on to the group's coordinator.
        for i in 0..3 {
            let admin = Admin::connect(cluster.config_of(&[i]))
                .await
                .expect("admin");
            let deadline = Instant::now() + WAIT_MAX;
            loop {
                let listed = admin.list_groups().await;
                let described = admin.describe_group(GROUP).await;
                if listed
                    .as_ref()
                    .is_ok_and(|l| l.iter().any(|g| g.group_id == GROUP))
                    && described.as_ref().is_ok_and(|d| d.members.len() == 2)
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {i}: {listed:?} {described:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let errors = seen.errors.lock().unwrap().clone();
        eprintln!(
            "consumed {} records ({} acknowledged); member errors: {errors:?}",
            seen.records.lock().unwrap().len(),
            acked.len()
        );
        seen.done.store(true, Ordering::SeqCst);
        for m in members {
            m.await.expect("member task");
        }
    });
    cluster.stop_all();
}
