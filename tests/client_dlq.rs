//! The SDK's dead-letter helper (`DeadLetterQueue`) against a real `quiver broker` process:
//! records whose handler always fails land in `<topic>.dlq` (created on first use with the
//! source's partition count, each dead letter in its source partition) with the original key,
//! value, headers and timestamp and the `dlq.*` headers (error, source topic/partition/offset,
//! attempts = max_attempts, failure time), and nothing else does; a handler that fails twice
//! then succeeds is `Processed { attempts: 3 }` with no dead letter; the waits between attempts
//! are at least the policy's growing back-offs.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::broker::BrokerProcess;
use quiver_transport::client::*;
use quiver_transport::protocol::ErrorCode;
use quiver_transport::quic::Trust;

/// Every test finishes well within this, or fails.
const TEST_TIME_MAX: Duration = Duration::from_secs(90);

fn client_config(broker: &BrokerProcess) -> ClientConfig {
    let trust = Trust::from_pem_file(&broker.ca()).expect("the broker's certificate");
    ClientConfig::new(broker.bootstrap(), trust)
}

/// Runs `test` on a tokio runtime, failing it after [`TEST_TIME_MAX`].
fn run<F: std::future::Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(TEST_TIME_MAX, test)
                .await
                .expect("the test finishes in time")
        })
}

fn header<'a>(record: &'a ConsumerRecord, key: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value.as_deref())
        .map(|v| std::str::from_utf8(v).expect("UTF-8 header"))
}

/// Every record of `topic`, from each partition's start to its end now.
async fn read_all(client: &Client, topic: &str) -> Vec<ConsumerRecord> {
    let admin = Admin::new(client.clone());
    let described = admin.describe_topic(topic).await.expect("the topic exists");
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
        assert!(
            Instant::now() < deadline,
            "read {} of {expected} records of {topic}",
            out.len()
        );
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    // Nothing beyond the end seen above.
    out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    assert_eq!(out.len() as i64, expected, "records of {topic}");
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

async fn topic_exists(admin: &Admin, topic: &str) -> bool {
    match admin.describe_topic(topic).await {
        Ok(_) => true,
        Err(e) if e.error_code() == Some(ErrorCode::UnknownTopicOrPartition) => false,
        Err(e) => panic!("describing {topic}: {e}"),
    }
}

fn fast_policy(max_attempts: u32) -> DeadLetterPolicy {
    DeadLetterPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        multiplier: 2.0,
        dlq_topic: None,
    }
}

#[test]
fn poison_records_are_dead_lettered_with_their_origin() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), 2, &[]);
    run(async {
        let client = Client::connect(client_config(&broker)).await.unwrap();
        let admin = Admin::new(client.clone());
        admin
            .create_topic(NewTopic::new("orders", 3))
            .await
            .unwrap();
        let producer = Producer::with_client(client.clone(), ProducerConfig::default())
            .await
            .unwrap();
        const COUNT: usize = 30;
        let mut deliveries = Vec::new();
        for i in 0..COUNT {
            let value = if i % 5 == 2 {
                format!("poison-{i}")
            } else {
                format!("ok-{i}")
            };
            let record = ProducerRecord::new("orders", value)
                .with_key(format!("k{i}"))
                .with_header("trace", Some(format!("t{i}")))
                .with_timestamp(1_700_000_000_000 + i as i64);
            deliveries.push(producer.send(record).await.unwrap());
        }
        for d in deliveries {
            d.await.unwrap();
        }
        let records = read_all(&client, "orders").await;
        assert_eq!(records.len(), COUNT);
        assert!(!topic_exists(&admin, "orders.dlq").await);

        let dlq = DeadLetterQueue::new(producer.clone(), admin.clone(), fast_policy(3)).unwrap();
        let calls: Mutex<HashMap<(i32, i64), u32>> = Mutex::new(HashMap::new());
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut dead = Vec::new();
        for record in &records {
            let outcome = dlq
                .process(record, |r| {
                    *calls
                        .lock()
                        .unwrap()
                        .entry((r.partition, r.offset))
                        .or_default() += 1;
                    async move {
                        let value = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
                        if value.contains("poison") {
                            Err(format!("cannot parse {value}"))
                        } else {
                            Ok(())
                        }
                    }
                })
                .await
                .unwrap();
            let poison = record.value.as_deref().unwrap().starts_with(b"poison");
            match outcome {
                Outcome::Processed { attempts } => {
                    assert!(!poison, "{record:?} was processed");
                    assert_eq!(attempts, 1);
                }
                Outcome::DeadLettered {
                    attempts,
                    error,
                    dlq_topic,
                    dlq_partition,
                    dlq_offset,
                } => {
                    assert!(poison, "{record:?} was dead-lettered");
                    assert_eq!(attempts, 3);
                    assert_eq!(dlq_topic, "orders.dlq");
                    assert_eq!(
                        error,
                        format!(
                            "cannot parse {}",
                            std::str::from_utf8(record.value.as_deref().unwrap()).unwrap()
                        )
                    );
                    // Same partition count, so the same partition.
                    assert_eq!(dlq_partition, record.partition);
                    dead.push((record.clone(), dlq_partition, dlq_offset));
                }
            }
        }
        for record in &records {
            let poison = record.value.as_deref().unwrap().starts_with(b"poison");
            assert_eq!(
                calls.lock().unwrap()[&(record.partition, record.offset)],
                if poison { 3 } else { 1 },
                "handler calls for {record:?}"
            );
        }
        assert_eq!(dead.len(), COUNT / 5);

        // The dead-letter topic: created with the source's partition count, holding exactly
        // the poison records.
        let described = admin.describe_topic("orders.dlq").await.unwrap();
        assert_eq!(described.partitions.len(), 3);
        let letters = read_all(&client, "orders.dlq").await;
        assert_eq!(letters.len(), dead.len());
        for (source, partition, offset) in &dead {
            let letter = letters
                .iter()
                .find(|l| l.partition == *partition && l.offset == *offset)
                .unwrap_or_else(|| panic!("no dead letter at {partition}/{offset}"));
            assert_eq!(letter.key, source.key);
            assert_eq!(letter.value, source.value);
            assert_eq!(letter.timestamp, source.timestamp);
            assert_eq!(header(letter, "trace"), header(source, "trace"));
            assert_eq!(header(letter, "dlq.source.topic"), Some("orders"));
            assert_eq!(
                header(letter, "dlq.source.partition"),
                Some(source.partition.to_string().as_str())
            );
            assert_eq!(
                header(letter, "dlq.source.offset"),
                Some(source.offset.to_string().as_str())
            );
            assert_eq!(header(letter, "dlq.attempts"), Some("3"));
            let value = std::str::from_utf8(source.value.as_deref().unwrap()).unwrap();
            assert_eq!(
                header(letter, "dlq.error"),
                Some(format!("cannot parse {value}").as_str())
            );
            let failed_at: i64 = header(letter, "dlq.failed.at.ms").unwrap().parse().unwrap();
            assert!(failed_at >= started, "{failed_at} < {started}");

            let parsed = DeadLetter::from_record(letter).expect("parses");
            assert_eq!(parsed.source_topic, "orders");
            assert_eq!(parsed.source_partition, source.partition);
            assert_eq!(parsed.source_offset, source.offset);
            assert_eq!(parsed.attempts, 3);
            assert_eq!(parsed.failed_at_ms, Some(failed_at));
            assert_eq!(parsed.headers.len(), 1, "only the original header");
        }
        producer.close().await.unwrap();
    });
    // The broker reports the dead-letter topic's depth.
    let url = broker.metrics.clone().expect("the broker serves metrics");
    let wanted = format!(
        "quiver_dlq_depth_records{{topic=\"orders.dlq\"}} {}",
        30 / 5
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(&url).unwrap_or_default();
        if body.lines().any(|l| l == wanted) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line {wanted:?} in the metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET` of the broker's Prometheus endpoint (`http://host:port/path`), or None.
fn scrape(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_at(rest.find('/')?);
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn a_handler_that_recovers_is_processed_after_growing_backoffs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), 1, &[]);
    run(async {
        let client = Client::connect(client_config(&broker)).await.unwrap();
        let admin = Admin::new(client.clone());
        for topic in ["flaky", "stubborn"] {
            admin.create_topic(NewTopic::new(topic, 2)).await.unwrap();
        }
        let producer = Producer::with_client(client.clone(), ProducerConfig::default())
            .await
            .unwrap();
        for topic in ["flaky", "stubborn"] {
            producer
                .send(ProducerRecord::new(topic, "v").with_key("k"))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let policy = DeadLetterPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_secs(1),
            multiplier: 3.0,
            dlq_topic: None,
        };
        let dlq = DeadLetterQueue::new(producer.clone(), admin.clone(), policy).unwrap();

        // Fails twice, then succeeds: processed on attempt 3, nothing dead-lettered.
        let record = read_all(&client, "flaky").await.remove(0);
        let times: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
        let outcome = dlq
            .process(&record, |_| {
                let n = {
                    let mut t = times.lock().unwrap();
                    t.push(Instant::now());
                    t.len()
                };
                async move {
                    if n <= 2 {
                        Err(format!("transient failure {n}"))
                    } else {
                        Ok(())
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Processed { attempts: 3 });
        let times = times.into_inner().unwrap();
        assert_eq!(times.len(), 3);
        assert!(times[1] - times[0] >= Duration::from_millis(40));
        assert!(times[2] - times[1] >= Duration::from_millis(120));
        assert!(!topic_exists(&admin, "flaky.dlq").await);

        // Always fails: the same growing waits, then dead-lettered.
        let record = read_all(&client, "stubborn").await.remove(0);
        let times: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
        let outcome = dlq
            .process(&record, |_| {
                times.lock().unwrap().push(Instant::now());
                async { Err::<(), _>(std::io::Error::other("disk on fire")) }
            })
            .await
            .unwrap();
        let times = times.into_inner().unwrap();
        assert_eq!(times.len(), 3);
        assert!(times[1] - times[0] >= Duration::from_millis(40));
        assert!(times[2] - times[1] >= Duration::from_millis(120));
        match outcome {
            Outcome::DeadLettered {
                attempts, error, ..
            } => {
                assert_eq!(attempts, 3);
                assert_eq!(error, "disk on fire");
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        let letters = read_all(&client, "stubborn.dlq").await;
        assert_eq!(letters.len(), 1);
        assert_eq!(header(&letters[0], "dlq.error"), Some("disk on fire"));
        assert_eq!(letters[0].partition, record.partition);
        producer.close().await.unwrap();
    });
}
