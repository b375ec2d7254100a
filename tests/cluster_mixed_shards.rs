//! Three `quiver broker` processes with 1, 2 and 3 shards as one cluster on 127.0.0.1.
//!
//! A partition lives on a different shard index on each broker (`shard_for` over the broker's
//! own shard count), so a follower must fetch from the leader's shard for the partition, not
//! from its own index, and clients must be sent to the leader's shard port. The test checks:
//!
//! - Metadata reports each broker's own shard count, and per partition the leader's shard
//!   and shard port by the leader's count;
//! - `acks=all` records (which need every follower to fetch them) are all acknowledged, read
//!   back once and in order per partition, and every broker's replica of every partition ends
//!   at the same log end offset and high watermark;
//! - AlterTopicConfigs sent to one broker is decided by the controller and shows on every
//!   broker; it refuses an unknown topic, a bad value and `min.insync.replicas` above the
//!   replication factor; after `min.insync.replicas` is raised to 3 and one broker is killed,
//!   `acks=all` produce fails with NotEnoughReplicas.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{acks_all, Cluster};
use quiver_engine::shard::shard_for;
use quiver_transport::client::{
    Admin, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use quiver_transport::protocol::{Acks, ErrorCode, TopicDescription};

const TOPIC: &str = "mixed";
const PARTITIONS: i32 = 6;
/// Shards of node 0, 1 and 2.
const SHARDS: [usize; 3] = [1, 2, 3];
const RECORDS: usize = 600;
const WAIT_MAX: Duration = Duration::from_secs(30);

/// Retries `attempt` every 200 ms until it gives `Ok`, at most [`WAIT_MAX`].
async fn eventually<T, F, Fut>(what: &str, cluster: &Cluster, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        let last = match attempt().await {
            Ok(value) => return value,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT_MAX:?}: {last}\n{}",
            cluster.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The topic as node `node` describes it.
async fn describe_on(cluster: &Cluster, node: usize) -> Result<TopicDescription, String> {
    let admin = Admin::connect(cluster.config_of(&[node]))
        .await
        .map_err(|e| e.to_string())?;
    admin.describe_topic(TOPIC).await.map_err(|e| e.to_string())
}

/// The value of config `key` in a description.
fn config_value(described: &TopicDescription, key: &str) -> Option<String> {
    described
        .configs
        .iter()
        .find(|c| c.name == key)
        .and_then(|c| c.value.clone())
}

/// Every record of [`TOPIC`] per partition, (offset, value), until `counts` are read.
async fn read_all(
    config: ClientConfig,
    counts: &BTreeMap<i32, usize>,
) -> BTreeMap<i32, Vec<(i64, Bytes)>> {
    common::read_until(config, TOPIC, PARTITIONS, WAIT_MAX, |out| {
        counts
            .iter()
            .all(|(p, n)| out.get(p).map_or(0, Vec::len) >= *n)
    })
    .await
}

/// An `acks=all` producer that does not retry, so a refusal comes back as it is.
async fn strict_producer(config: ClientConfig) -> Producer {
    Producer::connect(
        config,
        ProducerConfig {
            acks: Acks::All,
            retries: 0,
            request_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(10),
            ..ProducerConfig::default()
        },
    )
    .await
    .expect("producer connects")
}

#[test]
fn brokers_with_different_shard_counts_replicate_and_share_topic_configs() {
    let mut cluster = Cluster::start_shards(&SHARDS, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let all = cluster.config_of(&[0, 1, 2]);
    rt.block_on(async {
        let admin = Admin::connect(all.clone()).await.expect("admin");
        eventually("topic creation", &cluster, || async {
            let topic = NewTopic::new(TOPIC, PARTITIONS)
                .replication_factor(3)
                .config("min.insync.replicas", "2");
            match admin.create_topic(topic).await {
                Ok(()) => Ok(()),
                // An earlier attempt whose answer was lost (e.g. during the first election).
                Err(e) if e.error_code() == Some(ErrorCode::TopicAlreadyExists) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;

        // Metadata: every partition led, ISR of 3, and each broker's own shard count.
        let client = admin.client().clone();
        let metadata = eventually("a full ISR everywhere", &cluster, || async {
            let m = client
                .metadata(Some(vec![TOPIC.into()]))
                .await
                .map_err(|e| e.to_string())?;
            let ready = m.brokers.len() == SHARDS.len()
                && m.topics.first().is_some_and(|t| {
                    t.partitions.len() == PARTITIONS as usize
                        && t.partitions
                            .iter()
                            .all(|p| p.leader_id >= 0 && p.isr.len() == 3)
                });
            if ready {
                Ok(m)
            } else {
                Err(format!("{m:?}"))
            }
        })
        .await;
        for b in &metadata.brokers {
            let node = usize::try_from(b.broker_id).expect("node id");
            assert_eq!(usize::from(b.shard_count), SHARDS[node], "{b:?}");
            assert_eq!(b.port, cluster.ports[node], "{b:?}");
        }
        let mut differ = false;
        for p in &metadata.topics[0].partitions {
            let leader = usize::try_from(p.leader_id).expect("a leader");
            let shard = shard_for(TOPIC, p.partition, SHARDS[leader]);
            assert_eq!(usize::from(p.leader_shard), shard, "{p:?}");
            assert_eq!(
                usize::from(p.leader_shard_port),
                usize::from(cluster.ports[leader]) + shard,
                "{p:?}"
            );
            differ |= p
                .replicas
                .iter()
                .any(|&r| shard_for(TOPIC, p.partition, SHARDS[r as usize]) != shard);
        }
        assert!(
            differ,
            "no follower serves a partition on another shard index than its leader"
        );

        // acks=all: every record needs both followers to fetch it from the leader's shard.
        let producer = Producer::connect(all.clone(), acks_all(Duration::from_secs(25)))
            .await
            .expect("producer connects");
        let mut deliveries = Vec::with_capacity(RECORDS);
        for i in 0..RECORDS {
            let partition = (i % PARTITIONS as usize) as i32;
            let record = ProducerRecord::new(TOPIC, common::seq_value(i)).with_partition(partition);
            deliveries.push((i, producer.send(record).await.expect("send queues")));
        }
        let mut acked = Vec::with_capacity(RECORDS);
        for (i, delivery) in deliveries {
            match delivery.await {
                Ok(meta) => acked.push((i, meta.partition, meta.offset)),
                Err(e) => panic!("record {i} failed: {e}\n{}", cluster.stderr()),
            }
        }
        producer.close().await.expect("close");
        let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
        for (_, p, _) in &acked {
            *counts.entry(*p).or_default() += 1;
        }
        let log = read_all(all.clone(), &counts).await;
        assert_eq!(common::check_acked_once_in_order(&log, &acked), RECORDS);

        // Every broker's replica of every partition ends where the records end.
        for node in 0..SHARDS.len() {
            eventually("replicas caught up", &cluster, || async {
                let described = describe_on(&cluster, node).await?;
                let behind: Vec<_> = described
                    .partitions
                    .iter()
                    .filter(|p| {
                        let end = counts.get(&p.partition).copied().unwrap_or(0) as i64;
                        p.log_end_offset != end || p.high_watermark != end
                    })
                    .collect();
                if described.partitions.len() == PARTITIONS as usize && behind.is_empty() {
                    Ok(())
                } else {
                    Err(format!("node {node}: {behind:?}"))
                }
            })
            .await;
        }

        // AlterTopicConfigs through node 1 (forwarded to the controller unless it is one).
        let on_one = Admin::connect(cluster.config_of(&[1]))
            .await
            .expect("admin");
        on_one
            .alter_topic_configs(
                TOPIC,
                vec![
                    ("retention.ms".into(), Some("123456789".into())),
                    ("min.insync.replicas".into(), Some("3".into())),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("alter: {e}\n{}", cluster.stderr()));
        // The broker that answered already shows it.
        let described = describe_on(&cluster, 1).await.expect("describe on node 1");
        assert_eq!(
            config_value(&described, "retention.ms").as_deref(),
            Some("123456789")
        );
        for node in 0..SHARDS.len() {
            eventually("the new configs on every broker", &cluster, || async {
                let described = describe_on(&cluster, node).await?;
                let retention = config_value(&described, "retention.ms");
                let min_insync = config_value(&described, "min.insync.replicas");
                if retention.as_deref() == Some("123456789") && min_insync.as_deref() == Some("3") {
                    Ok(())
                } else {
                    Err(format!("node {node}: {retention:?} {min_insync:?}"))
                }
            })
            .await;
        }
        let on_two = Admin::connect(cluster.config_of(&[2]))
            .await
            .expect("admin");
        let refused = |changes: Vec<(&str, Option<&str>)>, topic: &'static str| {
            let on_two = on_two.clone();
            let changes: Vec<(String, Option<String>)> = changes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect();
            async move {
                on_two
                    .alter_topic_configs(topic, changes)
                    .await
                    .expect_err("refused")
                    .error_code()
            }
        };
        assert_eq!(
            refused(vec![("retention.ms", Some("1"))], "no-such-topic").await,
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        assert_eq!(
            refused(vec![("retention.ms", Some("soon"))], TOPIC).await,
            Some(ErrorCode::InvalidConfig)
        );
        assert_eq!(
            refused(vec![("min.insync.replicas", Some("4"))], TOPIC).await,
            Some(ErrorCode::InvalidConfig)
        );
        let described = describe_on(&cluster, 2).await.expect("describe on node 2");
        assert_eq!(
            config_value(&described, "retention.ms").as_deref(),
            Some("123456789"),
            "a refused change changed nothing"
        );

        // Three in-sync replicas: acks=all still succeeds.
        let strict = strict_producer(all.clone()).await;
        strict
            .send(ProducerRecord::new(TOPIC, common::seq_value(RECORDS)).with_partition(0))
            .await
            .expect("send queues")
            .await
            .unwrap_or_else(|e| panic!("with 3 in sync: {e}\n{}", cluster.stderr()));
        strict.close().await.expect("close");

        // One broker gone: the ISR shrinks to 2, below min.insync.replicas=3.
        cluster.kill9(0);
        let survivors = cluster.config_of(&[1, 2]);
        let client = Admin::connect(survivors.clone()).await.expect("admin");
        eventually("the ISR to shrink", &cluster, || async {
            let m = client
                .client()
                .metadata(Some(vec![TOPIC.into()]))
                .await
                .map_err(|e| e.to_string())?;
            // Every partition led by a survivor (node 1 or 2) with both of them in sync.
            let shrunk = m.topics.first().is_some_and(|t| {
                t.partitions
                    .iter()
                    .all(|p| p.leader_id > 0 && p.isr.len() == 2)
            });
            if shrunk {
                Ok(())
            } else {
                Err(format!("{m:?}"))
            }
        })
        .await;
        for partition in 0..PARTITIONS {
            eventually("NotEnoughReplicas", &cluster, || async {
                let strict = strict_producer(survivors.clone()).await;
                let record = ProducerRecord::new(TOPIC, common::seq_value(RECORDS + 1))
                    .with_partition(partition);
                let result = strict.send(record).await.expect("send queues").await;
                let _ = strict.close().await;
                match result {
                    Err(e) if e.error_code() == Some(ErrorCode::NotEnoughReplicas) => Ok(()),
                    Err(e) => Err(e.to_string()),
                    Ok(meta) => {
                        panic!("partition {partition}: acknowledged with 2 of 3 in sync: {meta:?}")
                    }
                }
            })
            .await;
        }
    });
    cluster.stop_all();
}
