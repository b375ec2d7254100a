//! End-to-end tests of `quiver broker` as a real process on loopback, driven through the SDK and
//! the CLI (issue "Broker over QUIC", item 7): produce keyed records through both, consume them
//! back with per-partition order and key placement checked, read everything again after a
//! restart, and find every acknowledged record after a `kill -9`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker::BrokerProcess;
use quiver_transport::client::{
    partition_for_key, Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use quiver_transport::quic::Trust;

const SDK_RECORDS: usize = 100_000;
const CLI_LINES: usize = 10_000;
const PARTITIONS: i32 = 4;
const CONSUME_TIMEOUT: Duration = Duration::from_secs(120);

fn client_config(broker: &BrokerProcess) -> ClientConfig {
    let trust = Trust::from_pem_file(&broker.ca()).expect("the broker's certificate loads");
    ClientConfig::new(broker.bootstrap(), trust)
}

/// One consumed record, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    partition: i32,
    offset: i64,
    key: Option<Bytes>,
    value: Bytes,
}

/// Reads every partition of `topic` from the beginning until `expected` records arrived.
async fn consume_all(config: ClientConfig, topic: &str, expected: usize) -> Vec<Seen> {
    let mut consumer = Consumer::connect(config, ConsumerConfig::default())
        .await
        .expect("consumer connects");
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(tps.clone());
    consumer
        .seek_to_beginning(&tps)
        .await
        .expect("seek to beginning");
    let mut seen = Vec::with_capacity(expected);
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    while seen.len() < expected {
        assert!(
            Instant::now() < deadline,
            "consumed only {} of {expected} records in {CONSUME_TIMEOUT:?}",
            seen.len()
        );
        for r in consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
        {
            seen.push(Seen {
                partition: r.partition,
                offset: r.offset,
                key: r.key,
                value: r.value.expect("every test record has a value"),
            });
        }
    }
    // Nothing beyond what was produced.
    let extra = consumer
        .poll(Duration::from_millis(300))
        .await
        .expect("poll");
    assert!(extra.is_empty(), "{} unexpected extra records", extra.len());
    seen
}

/// Checks offsets are 0.. without gaps per partition, that equal keys sit on one partition
/// (murmur2, as the SDK and Kafka place them), and that each producer's records of a partition
/// appear in the order they were sent (values carry a sequence number after the last '-').
fn check_consumed(seen: &[Seen]) {
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    let mut key_partition: HashMap<Bytes, i32> = HashMap::new();
    let mut last_seq: HashMap<(i32, String), u64> = HashMap::new();
    for s in seen {
        let expected = next_offset.entry(s.partition).or_insert(0);
        assert_eq!(
            s.offset, *expected,
            "offsets of partition {} not contiguous",
            s.partition
        );
        *expected += 1;
        let key = s.key.clone().expect("every test record is keyed");
        let p = *key_partition.entry(key.clone()).or_insert(s.partition);
        assert_eq!(p, s.partition, "key {key:?} on two partitions");
        assert_eq!(
            s.partition,
            partition_for_key(&key, PARTITIONS),
            "key {key:?} not on its murmur2 partition"
        );
        let value = std::str::from_utf8(&s.value).expect("utf-8 value");
        let (source, seq) = value.rsplit_once('-').expect("value is <source>-<seq>");
        let seq: u64 = seq.parse().expect("sequence number");
        if let Some(prev) = last_seq.insert((s.partition, source.to_string()), seq) {
            assert!(
                prev < seq,
                "{source} records out of order on partition {}: {prev} then {seq}",
                s.partition
            );
        }
    }
}

fn value_set(seen: &[Seen]) -> BTreeMap<Bytes, (i32, i64)> {
    let mut set = BTreeMap::new();
    for s in seen {
        assert!(
            set.insert(s.value.clone(), (s.partition, s.offset))
                .is_none(),
            "value {:?} delivered twice",
            s.value
        );
    }
    set
}

fn cli(broker: &BrokerProcess, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    broker.cli(args, stdin)
}

#[test]
fn sdk_and_cli_records_come_back_in_order_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, 2, &[]);
    let rt = common::runtime();
    let config = client_config(&broker);

    rt.block_on(async {
        let admin = Admin::connect(config.clone())
            .await
            .expect("admin connects");
        admin
            .create_topic(NewTopic::new("events", PARTITIONS))
            .await
            .expect("create topic");
        let producer = Producer::connect(config.clone(), ProducerConfig::default())
            .await
            .expect("producer connects");
        let mut deliveries = Vec::with_capacity(SDK_RECORDS);
        for i in 0..SDK_RECORDS {
            let record = ProducerRecord::new("events", format!("sdk-{i}"))
                .with_key(format!("key-{}", i % 1000));
            deliveries.push(producer.send(record).await.expect("send accepted"));
        }
        producer.flush().await.expect("flush");
        for (i, d) in deliveries.into_iter().enumerate() {
            let meta = d
                .await
                .unwrap_or_else(|e| panic!("record {i} not acknowledged: {e}"));
            assert_eq!(
                meta.partition,
                partition_for_key(format!("key-{}", i % 1000).as_bytes(), PARTITIONS)
            );
        }
        producer.close().await.expect("close");
    });

    let lines: String = (0..CLI_LINES)
        .map(|i| format!("clikey-{}:cli-{i}\n", i % 100))
        .collect();
    let out = cli(
        &broker,
        &["produce", "events", "--key-separator", ":"],
        Some(lines.as_bytes()),
    );
    assert!(
        out.status.success(),
        "quiver produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let total = SDK_RECORDS + CLI_LINES;
    let first = rt.block_on(consume_all(config.clone(), "events", total));
    check_consumed(&first);
    let first_set = value_set(&first);
    assert_eq!(first_set.len(), total);

    // The CLI consumer sees the same values.
    let out = cli(
        &broker,
        &[
            "consume",
            "events",
            "--from-beginning",
            "--max-messages",
            &total.to_string(),
            "--idle-timeout-ms",
            "20000",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "quiver consume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cli_values: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    cli_values.sort();
    let expected: Vec<&[u8]> = first_set.keys().map(|v| v.as_ref()).collect();
    assert_eq!(
        cli_values.len(),
        expected.len(),
        "quiver consume printed a different count"
    );
    assert!(
        cli_values == expected,
        "quiver consume printed different values"
    );

    // Restart on the same ports: everything is still there, at the same offsets.
    let port = broker.port;
    let status = broker.stop();
    assert!(
        status.success(),
        "the broker did not stop cleanly: {status}"
    );
    let broker = BrokerProcess::start_on(&data, 2, port, &[]);
    let again = rt.block_on(consume_all(client_config(&broker), "events", total));
    assert_eq!(
        value_set(&again),
        first_set,
        "records changed across a restart"
    );
    assert!(broker.stop().success());
}

#[test]
fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, 2, &[]);
    let rt = common::runtime();
    let config = client_config(&broker);
    let acked: Vec<(i32, i64, Bytes)> = rt.block_on(async {
        let admin = Admin::connect(config.clone())
            .await
            .expect("admin connects");
        admin
            .create_topic(NewTopic::new("durable", PARTITIONS).config("flush", "always"))
            .await
            .expect("create topic");
        let producer_config = ProducerConfig {
            delivery_timeout: Duration::from_secs(5),
            ..ProducerConfig::default()
        };
        let producer = Producer::connect(config.clone(), producer_config)
            .await
            .expect("producer connects");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sender = tokio::spawn(async move {
            for i in 0.. {
                let value = Bytes::from(format!("durable-{i}"));
                let record =
                    ProducerRecord::new("durable", value.clone()).with_key(format!("k{}", i % 64));
                let Ok(delivery) = producer.send(record).await else {
                    break;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(meta) = delivery.await {
                        let _ = tx.send((meta.partition, meta.offset, value));
                    }
                });
                if i % 256 == 255 {
                    tokio::task::yield_now().await;
                }
            }
        });
        // Let acknowledgements accumulate, then kill the broker mid-stream.
        let mut acked = Vec::new();
        let start = Instant::now();
        while acked.len() < 20_000 && start.elapsed() < Duration::from_secs(20) {
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(Some(a)) => acked.push(a),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        assert!(
            acked.len() > 100,
            "too few acknowledgements before the kill: {}",
            acked.len()
        );
        broker.kill9();
        // Whatever else gets acknowledged was acknowledged before the kill landed.
        let drain_until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < drain_until {
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(Some(a)) => acked.push(a),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        sender.abort();
        acked
    });

    let broker = BrokerProcess::start(&data, 2, &[]);
    let found: HashMap<(i32, i64), Bytes> = rt.block_on(async {
        let admin = Admin::connect(client_config(&broker)).await.expect("admin");
        let topic = admin
            .describe_topic("durable")
            .await
            .expect("topic survives");
        let total: i64 = topic
            .partitions
            .iter()
            .map(|p| p.log_end_offset - p.log_start_offset)
            .sum();
        let seen = consume_all(client_config(&broker), "durable", total as usize).await;
        seen.into_iter()
            .map(|s| ((s.partition, s.offset), s.value))
            .collect()
    });
    for (partition, offset, value) in &acked {
        match found.get(&(*partition, *offset)) {
            Some(v) => assert_eq!(v, value, "acknowledged record at {partition}/{offset} changed"),
            None => panic!(
                "acknowledged record {value:?} at {partition}/{offset} lost after kill -9 ({} acked)",
                acked.len()
            ),
        }
    }
    eprintln!(
        "{} acknowledged records all found after kill -9",
        acked.len()
    );
    assert!(broker.stop().success());
}

#[test]
fn a_paused_partition_is_not_fetched_until_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(&dir.path().join("data"), 2, &[]);
    let rt = common::runtime();
    let config = client_config(&broker);
    rt.block_on(async {
        let admin = Admin::connect(config.clone())
            .await
            .expect("admin connects");
        admin
            .create_topic(NewTopic::new("paused", 2))
            .await
            .expect("create topic");
        let producer = Producer::connect(config.clone(), ProducerConfig::default())
            .await
            .expect("producer connects");
        let mut deliveries = Vec::new();
        for i in 0..20 {
            let record = ProducerRecord::new("paused", format!("v{i}")).with_partition(i % 2);
            deliveries.push(producer.send(record).await.expect("send accepted"));
        }
        producer.flush().await.expect("flush");
        for d in deliveries {
            d.await.expect("acknowledged");
        }
        producer.close().await.expect("close");

        let p0 = TopicPartition::new("paused", 0);
        let p1 = TopicPartition::new("paused", 1);
        let mut consumer = Consumer::connect(config, ConsumerConfig::default())
            .await
            .expect("consumer connects");
        consumer.assign(vec![p0.clone(), p1.clone()]);
        consumer
            .seek_to_beginning(&[p0.clone(), p1.clone()])
            .await
            .expect("seek");
        let other = TopicPartition::new("paused", 7);
        assert!(
            consumer.pause(&[p0.clone(), other]).is_err(),
            "pausing an unassigned partition is refused"
        );
        assert!(
            consumer.paused().is_empty(),
            "a refused pause pauses nothing"
        );
        consumer.pause(std::slice::from_ref(&p0)).expect("pause p0");
        assert_eq!(consumer.paused(), vec![p0.clone()]);

        // Only p1's ten records come, however long we poll.
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            for r in consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll")
            {
                seen.push((r.partition, r.offset));
            }
        }
        assert_eq!(seen, (0..10).map(|o| (1, o)).collect::<Vec<_>>());
        assert_eq!(consumer.position(&p0).await.expect("position"), 0);

        // Resumed, p0 is read from where it stood.
        consumer.resume(std::slice::from_ref(&p0));
        assert!(consumer.paused().is_empty());
        let mut resumed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while resumed.len() < 10 && Instant::now() < deadline {
            for r in consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll")
            {
                resumed.push((r.partition, r.offset));
            }
        }
        assert_eq!(resumed, (0..10).map(|o| (0, o)).collect::<Vec<_>>());

        // A new assignment keeps the pause of partitions it keeps and drops the others'.
        consumer
            .pause(&[p0.clone(), p1.clone()])
            .expect("pause both");
        consumer.assign(vec![p1.clone()]);
        assert_eq!(consumer.paused(), vec![p1]);
    });
}
