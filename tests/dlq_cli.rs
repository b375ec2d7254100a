//! `quiver dlq` against a real broker process: records dead-lettered through the SDK are listed
//! by `dlq inspect` (by source or dead-letter topic name, with `--limit`); `dlq replay --to`
//! re-produces them with the `dlq.*` headers replaced by `dlq.replayed.from`, a second replay
//! replays nothing (progress is committed), `--from-beginning` replays again and without `--to`
//! the records go back to their source topic; unknown topics fail with a clear error.

mod common;

use std::time::{Duration, Instant};

use common::broker::BrokerProcess;
use common::{stderr_of, stdout_of};
use quiver_transport::client::*;
use quiver_transport::quic::Trust;

const TEST_TIME_MAX: Duration = Duration::from_secs(90);

fn run<T, F: std::future::Future<Output = T>>(f: F) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(TEST_TIME_MAX, f)
                .await
                .expect("in time")
        })
}

async fn connect(broker: &BrokerProcess) -> Client {
    let trust = Trust::from_pem_file(&broker.ca()).unwrap();
    Client::connect(ClientConfig::new(broker.bootstrap(), trust))
        .await
        .unwrap()
}

/// Every record of `topic` up to its end now, by partition and offset.
async fn read_all(client: &Client, topic: &str) -> Vec<ConsumerRecord> {
    let described = Admin::new(client.clone())
        .describe_topic(topic)
        .await
        .unwrap();
    let expected: i64 = described
        .partitions
        .iter()
        .map(|p| p.log_end_offset - p.log_start_offset)
        .sum();
    let tps: Vec<TopicPartition> = described
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
        .collect();
    let mut consumer = Consumer::with_client(client.clone(), ConsumerConfig::default())
        .await
        .unwrap();
    consumer.assign(tps.clone());
    consumer.seek_to_beginning(&tps).await.unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (out.len() as i64) < expected {
        assert!(Instant::now() < deadline, "reading {topic}");
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

fn header<'a>(record: &'a ConsumerRecord, key: &str) -> Option<&'a [u8]> {
    record
        .headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value.as_deref())
}

fn letters(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| l.starts_with("letter\t"))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn inspect_and_replay_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), 2, &[]);
    for (topic, partitions) in [("orders", "2"), ("fixed", "3")] {
        let out = broker.cli(
            &["topic", "create", topic, "--partitions", partitions],
            None,
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }

    // Six records; the three "bad" ones are dead-lettered through the SDK.
    let dead: Vec<ConsumerRecord> = run(async {
        let client = connect(&broker).await;
        let producer = Producer::with_client(client.clone(), ProducerConfig::default())
            .await
            .unwrap();
        for i in 0..6 {
            let value = if i % 2 == 0 {
                format!("bad\t{i}")
            } else {
                format!("good {i}")
            };
            let record = ProducerRecord::new("orders", value)
                .with_key(format!("k{i}"))
                .with_header("trace", Some(format!("t{i}")));
            producer.send(record).await.unwrap().await.unwrap();
        }
        let dlq = DeadLetterQueue::new(
            producer.clone(),
            Admin::new(client.clone()),
            DeadLetterPolicy::default(),
        )
        .unwrap();
        let mut dead = Vec::new();
        for record in read_all(&client, "orders").await {
            if record.value.as_deref().unwrap().starts_with(b"bad") {
                dlq.dead_letter(&record, "boom: cannot parse", 3)
                    .await
                    .unwrap();
                dead.push(record);
            }
        }
        producer.close().await.unwrap();
        dead
    });
    assert_eq!(dead.len(), 3);

    // inspect, by source topic name and by dead-letter topic name.
    for name in ["orders", "orders.dlq"] {
        let out = broker.cli(&["dlq", "inspect", name], None);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let stdout = stdout_of(&out);
        let lines = letters(&stdout);
        assert_eq!(lines.len(), 3, "{stdout}");
        assert!(
            stdout.contains("3 dead letter(s) in orders.dlq"),
            "{stdout}"
        );
        for source in &dead {
            let origin = format!("orders/{}/{}", source.partition, source.offset);
            let line = lines
                .iter()
                .find(|f| f[3] == origin)
                .unwrap_or_else(|| panic!("no letter from {origin}: {stdout}"));
            assert_eq!(line[4], "attempts");
            assert_eq!(line[5], "3");
            assert_eq!(line[6], "failed_at");
            assert!(
                line[7].len() == 24 && line[7].ends_with('Z') && line[7].contains('T'),
                "{}",
                line[7]
            );
            assert_eq!(line[9], "boom: cannot parse");
            let key = String::from_utf8(source.key.clone().unwrap().to_vec()).unwrap();
            assert_eq!(line[11], key);
            // The tab in the value is escaped.
            let value = String::from_utf8(source.value.clone().unwrap().to_vec()).unwrap();
            assert_eq!(line[13], value.replace('\t', "\\t"));
        }
    }
    let out = broker.cli(&["dlq", "inspect", "orders", "--limit", "1"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(letters(&stdout_of(&out)).len(), 1);

    // replay --to fixed: every dead letter, with the dlq.* headers replaced.
    let out = broker.cli(&["dlq", "replay", "orders", "--to", "fixed"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("replayed 3 dead letter(s) from orders.dlq"),
        "{}",
        stdout_of(&out)
    );
    let dlq_letters = run(async { read_all(&connect(&broker).await, "orders.dlq").await });
    let replayed = run(async { read_all(&connect(&broker).await, "fixed").await });
    assert_eq!(replayed.len(), 3);
    for source in &dead {
        let r = replayed
            .iter()
            .find(|r| r.key == source.key)
            .expect("replayed");
        assert_eq!(r.value, source.value);
        assert_eq!(header(r, "trace"), header(source, "trace"));
        let letter = dlq_letters
            .iter()
            .find(|l| l.key == source.key)
            .expect("a letter");
        let from = format!("orders.dlq/{}/{}", letter.partition, letter.offset);
        assert_eq!(header(r, "dlq.replayed.from"), Some(from.as_bytes()));
        let keys: Vec<&str> = r.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, vec!["trace", "dlq.replayed.from"], "{r:?}");
    }

    // Again: nothing new.
    let out = broker.cli(&["dlq", "replay", "orders.dlq", "--to", "fixed"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("replayed 0 dead letter(s)"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(
        run(async { read_all(&connect(&broker).await, "fixed").await }).len(),
        3
    );

    // --from-beginning, without --to: back to the source topic.
    let out = broker.cli(&["dlq", "replay", "orders", "--from-beginning"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("replayed 3 dead letter(s)"),
        "{}",
        stdout_of(&out)
    );
    let orders = run(async { read_all(&connect(&broker).await, "orders").await });
    assert_eq!(orders.len(), 9);
    assert_eq!(
        orders
            .iter()
            .filter(|r| header(r, "dlq.replayed.from").is_some())
            .count(),
        3
    );
}

#[test]
fn unknown_topics_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), 1, &[]);
    let out = broker.cli(&["dlq", "inspect", "nosuch"], None);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("dead-letter topic 'nosuch.dlq' does not exist"),
        "{stderr}"
    );
    let out = broker.cli(&["dlq", "replay", "nosuch.dlq"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("'nosuch.dlq' does not exist"),
        "{}",
        stderr_of(&out)
    );

    // An existing dead-letter topic, but a missing --to target.
    let out = broker.cli(&["topic", "create", "a.dlq"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = broker.cli(&["dlq", "replay", "a", "--to", "nowhere"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("target topic 'nowhere' does not exist"),
        "{}",
        stderr_of(&out)
    );
    // An empty dead-letter topic inspects to nothing.
    let out = broker.cli(&["dlq", "inspect", "a"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).trim(), "0 dead letter(s) in a.dlq");
}
