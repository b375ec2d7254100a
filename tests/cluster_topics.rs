//! A topic deleted and created again under the same name on a three-broker cluster. Replica
//! directories are named by topic name, so a broker that missed the deletion still holds the
//! old topic's records under the new topic's name. They must never reach a reader or a log:
//!
//! - a follower paused (SIGSTOP) while the topic is deleted and created again wakes up to the
//!   new topic's id in one image: it drops its old replica and copies the new one, ending
//!   byte for byte like the other replicas;
//! - a broker down (kill -9) while the topic is deleted and created again without it removes
//!   its stale directory when it comes back.
//!
//! Node 0 is the only controller. A controller replays the metadata log, deletion included,
//! so it would drop the old replica on the way; the brokers that miss the change here are
//! plain brokers, which see only the latest image.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{acks_all, replica_bytes, Cluster};
use quiver_engine::cluster::metadata::ClusterMetadata;
use quiver_transport::client::{Admin, Client, ClientConfig, NewTopic, Producer, ProducerRecord};

const TOPIC: &str = "reborn";
const WAIT_MAX: Duration = Duration::from_secs(60);

/// Produces `values` to partition 0 with `acks=all`; every one must be acknowledged.
async fn produce(config: ClientConfig, values: &[String]) {
    let producer = Producer::connect(config, acks_all(Duration::from_secs(60)))
        .await
        .expect("producer");
    let mut deliveries = Vec::new();
    for v in values {
        let record = ProducerRecord::new(TOPIC, Bytes::from(v.clone())).with_partition(0);
        deliveries.push(producer.send(record).await.expect("send queues"));
    }
    for d in deliveries {
        d.await.expect("every record is acknowledged");
    }
    producer.close().await.expect("close");
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The active controller's image, as a client sees it.
async fn image(admin: &Admin) -> Option<ClusterMetadata> {
    let described = admin.describe_cluster().await.ok()?;
    ClusterMetadata::decode_image(&described.image).ok()
}

/// Waits until `check` holds for the image.
async fn wait_image(
    admin: &Admin,
    what: &str,
    cluster: &Cluster,
    check: impl Fn(&ClusterMetadata) -> bool,
) {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if image(admin).await.is_some_and(|i| check(&i)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT_MAX:?}\n{}",
            cluster.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes [`TOPIC`] and creates it again with `replicas` replicas (min.insync one less),
/// through `admin`, retrying what a busy cluster may refuse for a moment.
async fn recreate(admin: &Admin, replicas: i16, cluster: &Cluster) {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        match admin.delete_topic(TOPIC).await {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "delete: {e}\n{}",
                cluster.stderr()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let min_insync = (replicas - 1).max(1).to_string();
        let new = NewTopic::new(TOPIC, 1)
            .replication_factor(replicas)
            .config("min.insync.replicas", &min_insync);
        match admin.create_topic(new).await {
            Ok(()) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "create again: {e}\n{}",
                cluster.stderr()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every record of partition 0 up to `count`, as text.
async fn read(config: ClientConfig, count: usize) -> Vec<String> {
    let log = common::read_until(config, TOPIC, 1, WAIT_MAX, |out| {
        out.get(&0).is_some_and(|v| v.len() >= count)
    })
    .await;
    log.get(&0)
        .map(|v| {
            v.iter()
                .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Leader and ISR of partition 0 of [`TOPIC`].
async fn partition_state(client: &Client) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let metadata = client.metadata(Some(vec![TOPIC.into()])).await.ok()?;
    let topic = metadata.topics.into_iter().next()?;
    if !topic.error_code.is_ok() {
        return None;
    }
    let p = topic.partitions.into_iter().next()?;
    Some((p.leader_id, p.replicas, p.isr))
}

async fn wait_isr(client: &Client, isr: usize, cluster: &Cluster) -> (i32, Vec<i32>) {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some((leader, replicas, got)) = partition_state(client).await {
            if leader >= 0 && got.len() == isr {
                return (leader, replicas);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no ISR of {isr}: {:?}\n{}",
            partition_state(client).await,
            cluster.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_follower_paused_through_delete_and_create_keeps_nothing_of_the_old_topic() {
    // Sessions long enough that the paused broker stays registered, so the new topic gets a
    // replica on it.
    let mut cluster =
        Cluster::start_with_controllers(3, 1, &["--broker-session-timeout-ms", "30000"]);
    let rt = common::runtime();
    rt.block_on(async {
        cluster.create_topic(TOPIC, 1, 3).await;
        produce(cluster.config(), &values("old", 200)).await;
        let client = Client::connect(cluster.config()).await.expect("client");
        let (leader, replicas) = wait_isr(&client, 3, &cluster).await;
        let paused = replicas
            .iter()
            .copied()
            .find(|&r| r != leader && r != 0)
            .expect("a follower that is not the controller") as usize;
        let live: Vec<usize> = (0..3).filter(|&i| i != paused).collect();
        cluster.signal(paused, libc::SIGSTOP);
        let admin = Admin::connect(cluster.config_of(&live))
            .await
            .expect("admin");
        recreate(&admin, 3, &cluster).await;
        wait_image(&admin, "the new topic on all three", &cluster, |i| {
            i.partition(TOPIC, 0).is_some_and(|p| p.replicas.len() == 3)
        })
        .await;
        // Acknowledged once the paused follower has left the ISR.
        produce(cluster.config_of(&live), &values("new", 20)).await;
        cluster.signal(paused, libc::SIGCONT);
        wait_isr(&client, 3, &cluster).await;
        produce(cluster.config(), &values("after", 20)).await;
        let mut want = values("new", 20);
        want.extend(values("after", 20));
        let got = read(cluster.config(), want.len()).await;
        assert_eq!(got, want, "the new topic's records, and only those");
        // Let followers fetch the last records before the logs are compared.
        wait_isr(&client, 3, &cluster).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    cluster.stop_all();
    let first = replica_bytes(&cluster.data[0], TOPIC, 0);
    assert!(!first.is_empty(), "the replica on node 0 is empty");
    for (i, data) in cluster.data.iter().enumerate().skip(1) {
        assert!(
            replica_bytes(data, TOPIC, 0) == first,
            "node {i}'s replica differs from node 0's ({} vs {} bytes)",
            replica_bytes(data, TOPIC, 0).len(),
            first.len()
        );
    }
}

#[test]
fn a_broker_down_through_delete_and_create_removes_its_stale_replica() {
    let mut cluster = Cluster::start_with_controllers(3, 1, &[]);
    let rt = common::runtime();
    rt.block_on(async {
        cluster.create_topic(TOPIC, 1, 3).await;
        produce(cluster.config(), &values("old", 100)).await;
        let client = Client::connect(cluster.config()).await.expect("client");
        wait_isr(&client, 3, &cluster).await;
        let down = 2;
        let stale = cluster.data[down].join(format!("{TOPIC}-0"));
        assert!(stale.is_dir(), "{} is missing", stale.display());
        cluster.kill9(down);
        let admin = Admin::connect(cluster.config_of(&[0, 1]))
            .await
            .expect("admin");
        wait_image(&admin, "the killed broker fenced", &cluster, |i| {
            i.broker(down as i32).is_some_and(|b| b.fenced)
        })
        .await;
        // Two live brokers: the new topic goes on them only.
        recreate(&admin, 2, &cluster).await;
        produce(cluster.config_of(&[0, 1]), &values("new", 10)).await;
        assert!(stale.is_dir(), "nothing could have removed it yet");
        tokio::task::block_in_place(|| cluster.start_node(down));
        let deadline = Instant::now() + WAIT_MAX;
        while stale.exists() {
            assert!(
                Instant::now() < deadline,
                "{} still holds the deleted topic\n{}",
                stale.display(),
                cluster.stderr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let got = read(cluster.config(), 10).await;
        assert_eq!(got, values("new", 10));
    });
    cluster.stop_all();
}
