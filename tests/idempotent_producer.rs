//! The SDK's idempotent producer against a real broker (issue "Consumer groups, ... idempotent
//! producer", item 5): the broker's test hook drops every few produce responses after
//! appending, so the producer retries batches the broker already has. With idempotence (the
//! default) the log holds every record exactly once, in send order per partition, and every
//! delivery reports the offset the record really has; with idempotence off, the same hook
//! leaves duplicates (which shows the hook bites). A second test kills the broker with
//! SIGKILL mid-stream and restarts it: retries after the restart are recognised too (the
//! producer state is rebuilt from the log), so nothing is duplicated or reordered and every
//! acknowledged record is there.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::broker::BrokerProcess;
use quiver_transport::client::{
    Admin, ClientConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
};
use quiver_transport::quic::Trust;

const PARTITIONS: i32 = 3;
const WAIT_MAX: Duration = Duration::from_secs(90);

fn client_config(broker: &BrokerProcess) -> ClientConfig {
    let trust = Trust::from_pem_file(&broker.ca()).expect("the broker's certificate loads");
    ClientConfig::new(broker.bootstrap(), trust)
}

/// Small batches and short back-offs: many requests, so many dropped responses.
fn producer_config(enable_idempotence: Option<bool>) -> ProducerConfig {
    ProducerConfig {
        batch_size: 2048,
        linger: Duration::from_millis(1),
        retry_backoff: Duration::from_millis(20),
        retry_backoff_max: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        delivery_timeout: Duration::from_secs(60),
        enable_idempotence,
        ..ProducerConfig::default()
    }
}

/// Every record of `topic`, per partition, in offset order: (offset, value).
async fn read_all(config: ClientConfig, topic: &str) -> BTreeMap<i32, Vec<(i64, Bytes)>> {
    let admin = Admin::connect(config.clone()).await.expect("admin");
    let described = admin.describe_topic(topic).await.expect("describe");
    let total: usize = described
        .partitions
        .iter()
        .map(|p| usize::try_from(p.log_end_offset - p.log_start_offset).unwrap_or(0))
        .sum();
    common::read_until(config, topic, PARTITIONS, WAIT_MAX, |out| {
        out.values().map(Vec::len).sum::<usize>() >= total
    })
    .await
}

/// Sends `values` keyed over 30 keys, waits for every delivery; returns (partition, offset)
/// per value index, or the first failure.
async fn produce(
    producer: &Producer,
    topic: &str,
    range: std::ops::Range<usize>,
) -> Vec<(usize, i32, i64)> {
    let mut futures = Vec::with_capacity(range.len());
    for i in range {
        let record =
            ProducerRecord::new(topic, common::seq_value(i)).with_key(format!("key-{}", i % 30));
        futures.push((i, producer.send(record).await.expect("send queues")));
    }
    let mut acked = Vec::with_capacity(futures.len());
    for (i, f) in futures {
        let meta = f.await.unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        acked.push((i, meta.partition, meta.offset));
    }
    acked
}

/// Each record once, in send order per partition, and at the offset its delivery reported.
fn check_exactly_once(
    log: &BTreeMap<i32, Vec<(i64, Bytes)>>,
    acked: &[(usize, i32, i64)],
    sent: usize,
) {
    assert_eq!(
        common::check_acked_once_in_order(log, acked),
        sent,
        "records in the log"
    );
}

#[test]
fn dropped_responses_are_retried_without_duplicates_or_reordering() {
    const RECORDS: usize = 6000;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        2,
        &["--fault-drop-produce-response-every", "5"],
    );
    let rt = common::runtime();
    let config = client_config(&broker);
    rt.block_on(async {
        let admin = Admin::connect(config.clone()).await.expect("admin");
        for topic in ["idempotent", "plain"] {
            admin
                .create_topic(NewTopic::new(topic, PARTITIONS))
                .await
                .expect("create topic");
        }

        let producer = Producer::connect(config.clone(), producer_config(None))
            .await
            .expect("producer connects");
        let identity = producer.identity().expect("idempotent by default");
        assert!(identity.id >= 0 && identity.epoch >= 0, "{identity:?}");
        let acked = produce(&producer, "idempotent", 0..RECORDS).await;
        producer.close().await.expect("close");
        let log = read_all(config.clone(), "idempotent").await;
        check_exactly_once(&log, &acked, RECORDS);

        // The same hook without idempotence: retries append again.
        let plain = Producer::connect(config.clone(), producer_config(Some(false)))
            .await
            .expect("producer connects");
        assert!(plain.identity().is_none());
        let _ = produce(&plain, "plain", 0..RECORDS).await;
        plain.close().await.expect("close");
        let log = read_all(config.clone(), "plain").await;
        let stored: usize = log.values().map(Vec::len).sum();
        assert!(
            stored > RECORDS,
            "the hook drops responses, so plain retries must duplicate: {stored} stored"
        );
    });
}

#[test]
fn retries_across_a_broker_kill_9_are_deduplicated() {
    const RECORDS: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, 2, &[]);
    let port = broker.port;
    let rt = common::runtime();
    let config = client_config(&broker);
    let (acked, broker) = rt.block_on(async {
        let admin = Admin::connect(config.clone()).await.expect("admin");
        admin
            .create_topic(NewTopic::new("durable", PARTITIONS).config("flush", "always"))
            .await
            .expect("create topic");
        let producer = Producer::connect(config.clone(), producer_config(None))
            .await
            .expect("producer connects");
        let sender = {
            let producer = producer.clone();
            tokio::spawn(async move {
                let mut futures = Vec::with_capacity(RECORDS);
                for i in 0..RECORDS {
                    let record = ProducerRecord::new("durable", common::seq_value(i))
                        .with_key(format!("key-{}", i % 30));
                    futures.push((i, producer.send(record).await.expect("send queues")));
                    if i % 200 == 199 {
                        // Spread the sends over the kill and the restart.
                        tokio::time::sleep(Duration::from_millis(15)).await;
                    }
                }
                futures
            })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        broker.kill9();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let broker =
            tokio::task::spawn_blocking(move || BrokerProcess::start_on(&data, 2, port, &[]))
                .await
                .expect("restart");
        let futures = sender.await.expect("sender");
        let mut acked = Vec::with_capacity(RECORDS);
        for (i, f) in futures {
            let meta = f
                .await
                .unwrap_or_else(|e| panic!("record {i} failed across the restart: {e}"));
            acked.push((i, meta.partition, meta.offset));
        }
        producer.close().await.expect("close");
        (acked, broker)
    });
    let log = rt.block_on(read_all(client_config(&broker), "durable"));
    check_exactly_once(&log, &acked, RECORDS);
}
