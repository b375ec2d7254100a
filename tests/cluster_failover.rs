//! Three `quiver broker` processes as one cluster on 127.0.0.1 (issue "Cluster", item 5): a
//! topic with replication factor 3 and `min.insync.replicas=2`, an idempotent `acks=all`
//! producer at a steady rate, and a failure in the middle:
//!
//! - `kill -9` of the leader of partition 0; producing resumes after the election; the broker
//!   restarts and rejoins the ISR;
//! - `kill -9` of the active controller (Raft elects another);
//! - `SIGSTOP` of a follower for longer than `replica.lag.time.max.ms` (the ISR shrinks, writes
//!   go on with two replicas), then `SIGCONT` (it catches up and rejoins).
//!
//! Each ends with every acknowledged record read back once, in send order per partition, at
//! the offset its delivery reported, and with the three replicas' logs identical.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{acks_all, replica_bytes, Cluster};
use quiver_transport::client::{
    Admin, Client, ClientConfig, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

const TOPIC: &str = "replicated";
const PARTITIONS: i32 = 2;
const WAIT_MAX: Duration = Duration::from_secs(60);

/// Leader and ISR of each partition of [`TOPIC`], and the active controller.
async fn partition_states(client: &Client) -> Option<(i32, Vec<(i32, Vec<i32>)>)> {
    let metadata = client.metadata(Some(vec![TOPIC.into()])).await.ok()?;
    let topic = metadata.topics.into_iter().next()?;
    if !topic.error_code.is_ok() {
        return None;
    }
    Some((
        metadata.controller_id,
        topic
            .partitions
            .into_iter()
            .map(|p| (p.leader_id, p.isr))
            .collect(),
    ))
}

/// Waits until every partition has a leader and an ISR of `isr` brokers.
async fn wait_for_isr(client: &Client, isr: usize, cluster: &Cluster) {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some((_, parts)) = partition_states(client).await {
            if parts.len() == PARTITIONS as usize
                && parts.iter().all(|(l, i)| *l >= 0 && i.len() == isr)
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no ISR of {isr} within {WAIT_MAX:?}: {:?}\n{}",
            partition_states(client).await,
            cluster.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Acknowledged records (record, partition, offset) and the count of failed ones.
type Outcome = (Vec<(usize, i32, i64)>, usize);

/// A producer sending one record every 2 ms to alternating partitions until told to stop;
/// returns what was acknowledged: (record, partition, offset), and how many failed.
struct SteadyProducer {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Outcome>,
    acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SteadyProducer {
    async fn start(config: ClientConfig) -> SteadyProducer {
        let producer = Producer::connect(
            config,
            ProducerConfig {
                retry_backoff: Duration::from_millis(50),
                retry_backoff_max: Duration::from_millis(500),
                ..acks_all(Duration::from_secs(50))
            },
        )
        .await
        .expect("producer connects");
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            let mut pending = Vec::new();
            let mut i = 0usize;
            while !*stopped.borrow() && i < 40_000 {
                let record =
                    ProducerRecord::new(TOPIC, common::seq_value(i)).with_partition(i as i32 % 2);
                let delivery = producer.send(record).await.expect("send queues");
                let counter = counter.clone();
                pending.push(tokio::spawn(async move {
                    let meta = delivery.await;
                    if meta.is_ok() {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    (i, meta.map(|m| (m.partition, m.offset)))
                }));
                i += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                    _ = stopped.changed() => {}
                }
            }
            let mut acked = Vec::new();
            let mut failed = 0;
            for p in pending {
                match p.await.expect("delivery task") {
                    (i, Ok((partition, offset))) => acked.push((i, partition, offset)),
                    (_, Err(_)) => failed += 1,
                }
            }
            producer.close().await.expect("close");
            (acked, failed)
        });
        SteadyProducer { stop, task, acked }
    }

    fn acked(&self) -> usize {
        self.acked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `more` further records were acknowledged.
    async fn wait_for_progress(&self, more: usize, what: &str, cluster: &Cluster) {
        let target = self.acked() + more;
        let deadline = Instant::now() + WAIT_MAX;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "producing did not resume {what}: {} acked\n{}",
                self.acked(),
                cluster.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(self) -> Outcome {
        let _ = self.stop.send(true);
        self.task.await.expect("producer task")
    }
}

/// Every record of [`TOPIC`] up to the high watermark, per partition: (offset, value).
async fn read_all(config: ClientConfig) -> BTreeMap<i32, Vec<(i64, Bytes)>> {
    let admin = Admin::connect(config.clone()).await.expect("admin");
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    let ends = admin
        .list_offsets(
            &tps.iter()
                .map(|tp| (tp.clone(), quiver_transport::protocol::OffsetSpec::Latest))
                .collect::<Vec<_>>(),
        )
        .await
        .expect("high watermarks");
    common::read_until(config, TOPIC, PARTITIONS, WAIT_MAX, |out| {
        ends.iter().all(|(tp, end)| {
            out.get(&tp.partition)
                .and_then(|v| v.last())
                .map_or(end.offset == 0, |(o, _)| o + 1 >= end.offset)
        })
    })
    .await
}

fn check_replicas_identical(cluster: &Cluster) {
    for p in 0..PARTITIONS {
        let first = replica_bytes(&cluster.data[0], TOPIC, p);
        assert!(!first.is_empty(), "partition {p} is empty on node 0");
        for (i, data) in cluster.data.iter().enumerate().skip(1) {
            assert!(
                replica_bytes(data, TOPIC, p) == first,
                "partition {p}: node {i}'s log differs from node 0's"
            );
        }
    }
}

enum Failure {
    KillLeader,
    KillController,
    PauseFollower,
}

fn run(failure: Failure) {
    let mut cluster = Cluster::start(3);
    let rt = common::runtime();
    let config = cluster.config();
    rt.block_on(async {
        cluster.create_topic(TOPIC, PARTITIONS, 3).await;
        let client = Client::connect(config.clone()).await.expect("client");
        wait_for_isr(&client, 3, &cluster).await;
        let producer = SteadyProducer::start(config.clone()).await;
        producer
            .wait_for_progress(300, "at the start", &cluster)
            .await;
        let (controller, parts) = partition_states(&client).await.expect("metadata");
        let victim = match failure {
            Failure::KillLeader => parts[0].0,
            Failure::KillController => controller,
            // A follower of partition 0.
            Failure::PauseFollower => parts[0]
                .1
                .iter()
                .copied()
                .find(|r| *r != parts[0].0)
                .expect("a follower"),
        };
        assert!(victim >= 0, "no victim in {controller} {parts:?}");
        let victim = victim as usize;
        match failure {
            Failure::KillLeader | Failure::KillController => {
                cluster.kill9(victim);
                producer
                    .wait_for_progress(300, "after the kill", &cluster)
                    .await;
                wait_for_isr(&client, 2, &cluster).await;
                // What `quiver cluster status` reads: the victim fenced (once its session ran
                // out under the active controller, which may be a new one that gave every
                // broker a fresh session), partitions short.
                let admin = Admin::new(client.clone());
                let id = victim as i32;
                let deadline = Instant::now() + WAIT_MAX;
                loop {
                    let described = admin.describe_cluster().await.expect("describe cluster");
                    let image = quiver_engine::cluster::metadata::ClusterMetadata::decode_image(
                        &described.image,
                    )
                    .expect("the image decodes");
                    let fenced = image.broker(id).is_some_and(|b| b.fenced);
                    let short = image
                        .partitions()
                        .all(|(_, _, p)| p.isr.len() == 2 && !p.isr.contains(&id));
                    let controller = described.controller_id >= 0 && described.controller_id != id;
                    if fenced && short && controller {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "broker {victim}: fenced {fenced}, ISRs without it {short}, controller {}\n{}",
                        described.controller_id,
                        cluster.stderr()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tokio::task::block_in_place(|| cluster.start_node(victim));
            }
            Failure::PauseFollower => {
                cluster.signal(victim, libc::SIGSTOP);
                wait_for_isr(&client, 2, &cluster).await;
                producer
                    .wait_for_progress(300, "with a follower paused", &cluster)
                    .await;
                cluster.signal(victim, libc::SIGCONT);
            }
        }
        wait_for_isr(&client, 3, &cluster).await;
        producer
            .wait_for_progress(300, "after the broker came back", &cluster)
            .await;
        let (acked, failed) = producer.finish().await;
        assert!(
            acked.len() > 900,
            "only {} records acknowledged",
            acked.len()
        );
        eprintln!("acknowledged {}, failed {failed}", acked.len());
        let log = read_all(config.clone()).await;
        common::check_acked_once_in_order(&log, &acked);
        // Let followers fetch the last records before the logs are compared.
        wait_for_isr(&client, 3, &cluster).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    cluster.stop_all();
    check_replicas_identical(&cluster);
    // Every controller snapshotted its image and cut its metadata log on the way.
    for data in &cluster.data {
        let snapshot = data.join("meta/cluster-metadata/raft-snapshot");
        assert!(
            snapshot.exists(),
            "no metadata snapshot at {}",
            snapshot.display()
        );
    }
}

#[test]
fn killing_a_partition_leader_loses_no_acknowledged_record() {
    run(Failure::KillLeader);
}

#[test]
fn killing_the_active_controller_loses_no_acknowledged_record() {
    run(Failure::KillController);
}

#[test]
fn a_paused_follower_leaves_the_isr_and_rejoins() {
    run(Failure::PauseFollower);
}

/// A follower away while retention deletes what it lacks finds, when it comes back, that the
/// leader's log starts after its own end: it starts over at the leader's log start (as Kafka's
/// followers do) instead of asking for the missing offsets forever, and rejoins the ISR.
#[test]
fn a_replica_behind_the_leaders_log_start_starts_over() {
    let mut cluster = Cluster::start_with(3, &["--retention-check-interval-ms", "200"]);
    let rt = common::runtime();
    let config = cluster.config();
    rt.block_on(async {
        cluster
            .create_topic_with(
                TOPIC,
                PARTITIONS,
                3,
                &[("segment.bytes", "4096"), ("retention.ms", "1000")],
            )
            .await;
        let client = Client::connect(config.clone()).await.expect("client");
        wait_for_isr(&client, 3, &cluster).await;
        let producer = Producer::connect(config.clone(), acks_all(Duration::from_secs(50)))
            .await
            .expect("producer");
        let send = |from: usize, to: usize| {
            let producer = &producer;
            async move {
                let mut deliveries = Vec::new();
                for i in from..to {
                    let record = ProducerRecord::new(TOPIC, vec![b'x'; 200])
                        .with_partition(i as i32 % PARTITIONS);
                    deliveries.push(producer.send(record).await.expect("send queues"));
                }
                for d in deliveries {
                    d.await.expect("acknowledged");
                }
            }
        };
        send(0, 40).await;
        wait_for_isr(&client, 3, &cluster).await;
        let (_, parts) = partition_states(&client).await.expect("metadata");
        let victim = parts[0]
            .1
            .iter()
            .copied()
            .find(|r| *r != parts[0].0)
            .expect("a follower") as usize;
        cluster.kill9(victim);
        wait_for_isr(&client, 2, &cluster).await;
        // Enough segments that retention deletes past what the victim holds (20 records per
        // partition).
        let admin = Admin::new(client.clone());
        let tps: Vec<(TopicPartition, quiver_transport::protocol::OffsetSpec)> = (0..PARTITIONS)
            .map(|p| {
                (
                    TopicPartition::new(TOPIC, p),
                    quiver_transport::protocol::OffsetSpec::Earliest,
                )
            })
            .collect();
        let deadline = Instant::now() + WAIT_MAX;
        let mut sent = 40;
        loop {
            send(sent, sent + 100).await;
            sent += 100;
            let starts = admin.list_offsets(&tps).await.expect("log starts");
            if starts.iter().all(|(_, s)| s.offset > 20) {
                eprintln!("leaders' log starts: {starts:?}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "retention did not advance the log starts: {starts:?}\n{}",
                cluster.stderr()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::task::block_in_place(|| cluster.start_node(victim));
        wait_for_isr(&client, 3, &cluster).await;
        send(sent, sent + 20).await;
        producer.close().await.expect("close");
        let log = cluster.stderr();
        assert!(
            log.contains("the replica now starts at"),
            "node {victim} did not start over:\n{log}"
        );
    });
    cluster.stop_all();
}
