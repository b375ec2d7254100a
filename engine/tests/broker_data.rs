//! The data path through real shards: produce and fetch across shards, acks, durability waits,
//! long-poll fetches, ListOffsets, malformed input, and metrics.

mod broker_harness;

use std::time::{Duration, Instant};

use broker_harness::*;
use bytes::Bytes;
use quiver_engine::broker::render_prometheus;
use quiver_engine::shard::shard_for;
use quiver_transport::protocol::*;

fn ok(r: &ProducePartitionResponse) {
    assert_eq!(r.error_code, ErrorCode::None, "{r:?}");
}

#[test]
fn produce_and_fetch_across_shards() {
    let dir = scratch("broker-data");
    let config = test_config(dir.path(), 2);
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, "t", 4, &[]).await.error_code, ErrorCode::None);
        let owners: Vec<usize> = (0..4).map(|p| shard_for("t", p, 2)).collect();
        assert!(
            owners.contains(&0) && owners.contains(&1),
            "placement spreads: {owners:?}"
        );

        // Per partition: a single batch via shard 0, then two batches in one produce via
        // shard 1, then acks=0 via shard 0.
        let mut sent: Vec<Vec<Bytes>> = vec![Vec::new(); 4];
        for p in 0..4 {
            let a = batch(&format!("a{p}"), 2, 100);
            let r = c.produce(0, "t", p, a.clone(), Acks::Leader).await.unwrap();
            ok(&r);
            assert_eq!(
                (r.base_offset, r.log_start_offset, r.log_append_time_ms),
                (0, 0, -1)
            );
            let (b1, b2) = (
                batch(&format!("b{p}"), 3, 200),
                batch(&format!("c{p}"), 1, 300),
            );
            let r = c
                .produce(1, "t", p, concat(&[b1.clone(), b2.clone()]), Acks::All)
                .await
                .unwrap();
            ok(&r);
            assert_eq!(r.base_offset, 2);
            let d = batch(&format!("d{p}"), 4, 400);
            assert!(
                c.produce(0, "t", p, d.clone(), Acks::None).await.is_none(),
                "acks=0 answers nothing"
            );
            sent[p as usize].extend([a, b1, b2, d]);
        }
        // Read everything back through both shards: same bytes, same order, right offsets.
        for shard in 0..2 {
            for p in 0..4 {
                let f = c.fetch(shard, "t", p, 0, 1, 1000).await;
                assert_eq!(f.error_code, ErrorCode::None);
                assert_eq!(f.high_watermark, 10);
                assert_eq!(f.log_start_offset, 0);
                let got = batches_of(&f.records);
                let bases: Vec<i64> = got.iter().map(|g| g.0).collect();
                assert_eq!(bases, vec![0, 2, 5, 6]);
                for ((_, bytes), want) in got.iter().zip(&sent[p as usize]) {
                    assert_eq!(*bytes, normalised(want));
                }
                // From the middle of the log, and at its end.
                let f = c.fetch(shard, "t", p, 5, 0, 0).await;
                assert_eq!(batches_of(&f.records).first().map(|g| g.0), Some(5));
                let f = c.fetch(shard, "t", p, 10, 0, 0).await;
                assert!(f.records.is_empty());
                let f = c.fetch(shard, "t", p, 11, 0, 0).await;
                assert_eq!(f.error_code, ErrorCode::OffsetOutOfRange);
            }
        }

        // A multi-partition fetch keeps request order and honours max_bytes (first batch
        // always returned).
        let one = sent[0][0].len() as i32;
        match c
            .request(
                1,
                FetchRequest {
                    replica_id: -1,
                    max_wait_ms: 0,
                    min_bytes: 0,
                    max_bytes: one,
                    isolation_level: IsolationLevel::ReadUncommitted,
                    topics: vec![FetchTopic {
                        name: "t".into(),
                        partitions: (0..4)
                            .rev()
                            .map(|p| FetchPartition {
                                partition: p,
                                current_leader_epoch: -1,
                                fetch_offset: 0,
                                log_start_offset: -1,
                                partition_max_bytes: 1 << 20,
                            })
                            .collect(),
                    }],
                },
            )
            .await
        {
            Response::Fetch(r) => {
                let parts = &r.topics[0].partitions;
                assert_eq!(
                    parts.iter().map(|p| p.partition).collect::<Vec<_>>(),
                    vec![3, 2, 1, 0]
                );
                assert_eq!(batches_of(&parts[0].records).len(), 1);
                assert!(parts[1..]
                    .iter()
                    .all(|p| p.records.is_empty() && p.high_watermark == 10));
            }
            other => panic!("{other:?}"),
        }

        // ListOffsets: earliest, latest, by timestamp (records at 100.., 200.., 300, 400..).
        for shard in 0..2 {
            for p in 0..4 {
                let e = c.list_offset(shard, "t", p, OffsetSpec::Earliest).await;
                assert_eq!((e.error_code, e.offset), (ErrorCode::None, 0));
                let l = c.list_offset(shard, "t", p, OffsetSpec::Latest).await;
                assert_eq!(l.offset, 10);
                let t = c
                    .list_offset(shard, "t", p, OffsetSpec::Timestamp(201))
                    .await;
                assert_eq!(
                    (t.error_code, t.offset, t.timestamp_ms),
                    (ErrorCode::None, 3, 201)
                );
                let t = c
                    .list_offset(shard, "t", p, OffsetSpec::Timestamp(350))
                    .await;
                assert_eq!((t.offset, t.timestamp_ms), (6, 400));
                let t = c
                    .list_offset(shard, "t", p, OffsetSpec::Timestamp(10_000))
                    .await;
                assert_eq!(
                    (t.error_code, t.offset, t.timestamp_ms),
                    (ErrorCode::None, 10, -1)
                );
            }
        }
        assert_eq!(
            c.list_offset(0, "t", 9, OffsetSpec::Latest)
                .await
                .error_code,
            ErrorCode::UnknownTopicOrPartition
        );

        // Metrics: records in per partition on the owner, records out summed over shards.
        let m0 = c.metrics(0).await;
        let m1 = c.metrics(1).await;
        // Topic t's 4 partitions plus the 50 of __consumer_offsets.
        assert_eq!(m0.open_partitions + m1.open_partitions, 4 + 50);
        let text = render_prometheus(&[m0, m1]);
        for p in 0..4 {
            assert!(
                text.contains(&format!(
                    "quiver_partition_records_in_total{{topic=\"t\",partition=\"{p}\"}} 10"
                )),
                "{text}"
            );
            assert!(text.contains(&format!(
                "quiver_partition_log_end_offset{{topic=\"t\",partition=\"{p}\"}} 10"
            )));
        }
        assert!(text.contains("api=\"Produce\""));
        assert!(text.contains("quiver_shard_busy_ratio{shard=\"1\"}"));
        c.stop().await;
    });
}

#[test]
fn acks_all_waits_for_the_flush_policy() {
    let dir = scratch("broker-acks");
    let config = test_config(dir.path(), 2);
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(
            c.create(0, "always", 2, &[("flush", "always")])
                .await
                .error_code,
            ErrorCode::None
        );
        assert_eq!(
            c.create(0, "slow", 1, &[("flush.ms", "60000")])
                .await
                .error_code,
            ErrorCode::None
        );
        assert_eq!(
            c.create(0, "never", 1, &[("flush", "never")])
                .await
                .error_code,
            ErrorCode::None
        );

        // Group commit: concurrent acks=all producers through both shards all succeed, offsets
        // are distinct and dense.
        let cluster = c;
        let c = &cluster;
        let produces: Vec<_> = (0..16)
            .map(|i| {
                Box::pin(async move {
                    c.produce(
                        i % 2,
                        "always",
                        (i % 2) as i32,
                        batch(&format!("g{i}"), 1, i as i64),
                        Acks::All,
                    )
                    .await
                    .unwrap()
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
            })
            .collect();
        let mut results = quiver_engine::shard::sync::join_all(produces).await;
        results.iter().for_each(ok);
        results.sort_by_key(|r| (r.partition, r.base_offset));
        for p in 0..2 {
            let offsets: Vec<i64> = results
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| r.base_offset)
                .collect();
            assert_eq!(offsets, (0..8).collect::<Vec<_>>());
        }

        // interval with flush.ms = 60 s: acks=1 returns, acks=all times out (data stays).
        ok(&c
            .produce(1, "slow", 0, batch("s0", 1, 1), Acks::Leader)
            .await
            .unwrap());
        let r = c
            .try_request(
                0,
                ProduceRequest {
                    transactional_id: None,
                    acks: Acks::All,
                    timeout_ms: 200,
                    topics: vec![ProduceTopic {
                        name: "slow".into(),
                        partitions: vec![ProducePartition {
                            partition: 0,
                            records: batch("s1", 1, 2),
                        }],
                    }],
                }
                .into(),
            )
            .await;
        match r {
            Some(Response::Produce(r)) => {
                let p = &r.topics[0].partitions[0];
                assert_eq!(p.error_code, ErrorCode::RequestTimedOut, "{p:?}");
                assert!(p.error_message.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.fetch(0, "slow", 0, 0, 0, 0).await.high_watermark, 2);
        // Lower flush.ms live: the flusher picks it up and acks=all completes.
        assert_eq!(
            c.alter(1, "slow", &[("flush.ms", Some("20"))])
                .await
                .error_code,
            ErrorCode::None
        );
        let started = Instant::now();
        ok(&c
            .produce(0, "slow", 0, batch("s2", 1, 3), Acks::All)
            .await
            .unwrap());
        assert!(started.elapsed() < Duration::from_secs(3));

        ok(&c
            .produce(1, "never", 0, batch("n", 2, 1), Acks::All)
            .await
            .unwrap());
        cluster.stop().await;
    });
}

#[test]
fn long_poll_fetch_wakes_on_produce_and_times_out_otherwise() {
    let dir = scratch("broker-poll");
    let config = test_config(dir.path(), 2);
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, "t", 4, &[]).await.error_code, ErrorCode::None);
        // For each partition (local or remote to shard 0): a waiting fetch on shard 0, a
        // produce 150 ms later through the other shard.
        let cluster = c;
        let c = &cluster;
        for p in 0..4 {
            let fetch = async move {
                let started = Instant::now();
                let f = c.fetch(0, "t", p, 0, 1, 5_000).await;
                (f, started.elapsed())
            };
            let produce = async move {
                glommio::timer::sleep(Duration::from_millis(150)).await;
                c.produce(1, "t", p, batch("late", 2, 5), Acks::Leader)
                    .await
                    .unwrap()
            };
            let ((f, waited), r) = futures_lite::future::zip(fetch, produce).await;
            ok(&r);
            assert_eq!(f.error_code, ErrorCode::None);
            assert_eq!(batches_of(&f.records).len(), 1, "partition {p}");
            assert!(
                waited >= Duration::from_millis(100),
                "returned before the produce: {waited:?}"
            );
            assert!(
                waited < Duration::from_millis(3_000),
                "not woken by the produce: {waited:?}"
            );
        }
        // Nothing arrives: the fetch answers empty after max_wait.
        let started = Instant::now();
        let f = c.fetch(1, "t", 0, 2, 1, 300).await;
        let waited = started.elapsed();
        assert_eq!(f.error_code, ErrorCode::None);
        assert!(f.records.is_empty());
        assert!(waited >= Duration::from_millis(280), "{waited:?}");
        assert!(waited < Duration::from_millis(2_500), "{waited:?}");
        // min_bytes larger than what is there: waits, then returns what there is.
        let f = c.fetch(0, "t", 1, 0, 1 << 20, 200).await;
        assert_eq!(batches_of(&f.records).len(), 1);
        cluster.stop().await;
    });
}

#[test]
fn malformed_input_gets_errors_and_the_broker_keeps_serving() {
    let dir = scratch("broker-bad");
    let config = test_config(dir.path(), 2);
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(
            c.create(0, "t", 2, &[("max.message.bytes", "1024")])
                .await
                .error_code,
            ErrorCode::None
        );

        // Too short for a header: rejected with correlation id 0.
        for garbage in [
            &b""[..],
            &b"\x00\x02"[..],
            &b"\x00\x02\x00\x00\x00\x00\x00\x07\x00"[..],
        ] {
            let out = c
                .raw(1, Bytes::copy_from_slice(garbage))
                .await
                .expect("an answer");
            let (h, r) = decode_response(out, ApiKey::Produce);
            assert_eq!(h.correlation_id, 0);
            assert_eq!(r, Response::Rejected(ErrorCode::InvalidRequest));
        }
        // Unknown api key and unsupported version: rejected with the correlation id.
        let unknown = Bytes::from_static(&[0x03, 0xe7, 0, 0, 0, 0, 0, 77, 0xff, 0xff]);
        let (h, r) = decode_response(c.raw(0, unknown).await.unwrap(), ApiKey::Produce);
        assert_eq!(
            (h.correlation_id, r),
            (77, Response::Rejected(ErrorCode::UnsupportedVersion))
        );
        let list = Request::from(ListTopicsRequest {
            include_internal: false,
        });
        let mut v5 = request_frame(&list, 78, 0).to_vec();
        v5[3] = 5;
        let (h, r) = decode_response(c.raw(1, Bytes::from(v5)).await.unwrap(), ApiKey::ListTopics);
        assert_eq!(
            (h.correlation_id, r),
            (78, Response::Rejected(ErrorCode::UnsupportedVersion))
        );
        // Truncated body.
        let produce = Request::from(ProduceRequest {
            transactional_id: None,
            acks: Acks::Leader,
            timeout_ms: 1000,
            topics: vec![ProduceTopic {
                name: "t".into(),
                partitions: vec![ProducePartition {
                    partition: 0,
                    records: batch("x", 1, 1),
                }],
            }],
        });
        let whole = request_frame(&produce, 79, 0);
        let cut_short = whole.slice(..whole.len() - 7);
        let (h, r) = decode_response(c.raw(0, cut_short).await.unwrap(), ApiKey::Produce);
        assert_eq!(
            (h.correlation_id, r),
            (79, Response::Rejected(ErrorCode::InvalidRequest))
        );
        // Bad acks value.
        let mut bad_acks = whole.to_vec();
        // Header (8 fixed bytes, client id), then the body: a null transactional id, then acks.
        let body = 8 + 2 + "broker-test".len();
        bad_acks[body + 2..body + 4].copy_from_slice(&7i16.to_be_bytes());
        let (_, r) = decode_response(
            c.raw(0, Bytes::from(bad_acks)).await.unwrap(),
            ApiKey::Produce,
        );
        assert_eq!(r, Response::Rejected(ErrorCode::InvalidRequiredAcks));

        // Batch-level errors.
        let good = batch("ok", 2, 1);
        let mut bad_crc = good.to_vec();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        let r = c
            .produce(0, "t", 0, Bytes::from(bad_crc.clone()), Acks::Leader)
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::CorruptMessage, "{r:?}");
        assert!(r.error_message.is_some());
        let big = batch(&"x".repeat(600), 3, 1);
        assert!(big.len() > 1024);
        let r = c.produce(1, "t", 1, big, Acks::Leader).await.unwrap();
        assert_eq!(r.error_code, ErrorCode::MessageTooLarge, "{r:?}");
        let r = c
            .produce(
                1,
                "t",
                1,
                Bytes::from_static(b"not a batch at all"),
                Acks::Leader,
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::CorruptMessage);
        let r = c
            .produce(1, "t", 1, Bytes::new(), Acks::Leader)
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::CorruptMessage);
        // A good batch followed by a bad one: nothing appended.
        let r = c
            .produce(
                0,
                "t",
                1,
                concat(&[good.clone(), Bytes::from(bad_crc)]),
                Acks::Leader,
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::CorruptMessage);
        let r = c
            .produce(
                0,
                "t",
                1,
                concat(&[good.clone(), good.slice(..30)]),
                Acks::Leader,
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::CorruptMessage);
        assert_eq!(c.fetch(1, "t", 1, 0, 0, 0).await.high_watermark, 0);
        // Unknown topic / partition.
        let r = c
            .produce(0, "nope", 0, good.clone(), Acks::Leader)
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition);
        let r = c
            .produce(1, "t", 2, good.clone(), Acks::Leader)
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition);
        assert_eq!(
            c.fetch(0, "t", -1, 0, 0, 0).await.error_code,
            ErrorCode::UnknownTopicOrPartition
        );

        // Still serving, on both shards and both partitions.
        for p in 0..2 {
            let r = c
                .produce(p as usize, "t", p, good.clone(), Acks::All)
                .await
                .unwrap();
            ok(&r);
            assert_eq!(r.base_offset, 0);
            let f = c.fetch(1 - p as usize, "t", p, 0, 1, 1000).await;
            assert_eq!(batches_of(&f.records).len(), 1);
        }
        // Random bytes and mutated valid frames: always an answer, never a panic.
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7);
        let valid = request_frame(&produce, 80, 0);
        for i in 0..300 {
            let frame: Vec<u8> = if i % 2 == 0 {
                let len = rand::Rng::gen_range(&mut rng, 0..120);
                (0..len).map(|_| rand::Rng::gen::<u8>(&mut rng)).collect()
            } else {
                let mut f = valid.to_vec();
                for _ in 0..3 {
                    let at = rand::Rng::gen_range(&mut rng, 0..f.len());
                    f[at] = rand::Rng::gen(&mut rng);
                }
                let keep = rand::Rng::gen_range(&mut rng, 0..=f.len());
                f.truncate(keep);
                f
            };
            // Only a produce that decodes with acks=0 may go unanswered.
            let _ = c.raw(i % 2, Bytes::from(frame)).await;
        }
        let m = c.metrics(0).await;
        assert!(
            m.apis.iter().any(|a| a.api == "Unknown" && a.errors >= 1),
            "{:?}",
            m.apis
        );
        c.stop().await;
    });
}

#[test]
fn retention_runs_in_the_background() {
    let dir = scratch("broker-retention");
    let mut config = test_config(dir.path(), 2);
    config.retention_check_interval_ms = 50;
    drive(|| async move {
        let c = Cluster::start(config).await;
        let configs = [("segment.bytes", "4096"), ("retention.bytes", "4096")];
        assert_eq!(
            c.create(0, "r", 1, &configs).await.error_code,
            ErrorCode::None
        );
        for i in 0..24 {
            let r = c
                .produce(i % 2, "r", 0, batch(&"v".repeat(200), 2, 1), Acks::Leader)
                .await;
            ok(&r.unwrap());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let start = loop {
            let e = c.list_offset(1, "r", 0, OffsetSpec::Earliest).await;
            if e.offset > 0 || Instant::now() > deadline {
                break e.offset;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        };
        assert!(start > 0, "retention never advanced the log start");
        assert_eq!(
            c.fetch(0, "r", 0, 0, 0, 0).await.error_code,
            ErrorCode::OffsetOutOfRange
        );
        // The log keeps going from where retention left it.
        ok(&c
            .produce(0, "r", 0, batch("after", 1, 2), Acks::All)
            .await
            .unwrap());
        // Retention keeps running (every 50 ms), so read from wherever the log starts now.
        let mut tries = 0;
        let f = loop {
            let earliest = c.list_offset(1, "r", 0, OffsetSpec::Earliest).await.offset;
            assert!(earliest >= start, "the log start went back");
            let f = c.fetch(1, "r", 0, earliest, 1, 0).await;
            tries += 1;
            if f.error_code != ErrorCode::OffsetOutOfRange || tries == 20 {
                assert_eq!(f.log_start_offset, earliest);
                break f;
            }
        };
        assert_eq!(f.error_code, ErrorCode::None);
        assert_eq!(f.high_watermark, 49);
        // Whatever retention kept starts at the log start (it may by now have rolled and
        // deleted even the last batch: retention.bytes is one segment).
        let first = batches_of(&f.records).first().map(|b| b.0);
        if f.log_start_offset < f.high_watermark {
            assert_eq!(first, Some(f.log_start_offset));
        } else {
            assert_eq!(first, None);
        }
        c.stop().await;
    });
}

#[test]
fn offset_for_leader_epoch_answers_from_the_log_history() {
    let dir = scratch("broker-epochs");
    let config = test_config(dir.path(), 2);
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, "e", 2, &[]).await.error_code, ErrorCode::None);
        for i in 0..3 {
            let r = c
                .produce(1, "e", 1, batch(&format!("b{i}"), 4, 100), Acks::Leader)
                .await
                .unwrap();
            ok(&r);
        }
        let ask = |partition, current_leader_epoch, leader_epoch| OffsetForLeaderEpochPartition {
            partition,
            current_leader_epoch,
            leader_epoch,
        };
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![
                OffsetForLeaderEpochTopic {
                    name: "e".into(),
                    partitions: vec![
                        ask(1, -1, 0),
                        ask(1, 0, 3),
                        ask(0, -1, 0),
                        ask(1, 4, 0),
                        ask(7, -1, 0),
                    ],
                },
                OffsetForLeaderEpochTopic {
                    name: "missing".into(),
                    partitions: vec![ask(0, -1, 0)],
                },
            ],
        };
        // Asked through either shard, the owner answers.
        for shard in 0..2 {
            let Response::OffsetForLeaderEpoch(r) = c.request(shard, request.clone()).await else {
                panic!("not an OffsetForLeaderEpoch response");
            };
            let got: Vec<(ErrorCode, i32, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
                .collect();
            assert_eq!(
                got,
                vec![
                    // Epoch 0 wrote all 12 records: it ends at the log end.
                    (ErrorCode::None, 0, 12),
                    // Epoch 3 is newer than anything in the log.
                    (ErrorCode::None, -1, -1),
                    // An empty partition has no history.
                    (ErrorCode::None, -1, -1),
                    // The asker knows a newer leader epoch than this broker's.
                    (ErrorCode::UnknownLeaderEpoch, -1, -1),
                    (ErrorCode::UnknownTopicOrPartition, -1, -1),
                ],
                "via shard {shard}"
            );
            assert_eq!(
                r.topics[1].partitions[0].error_code,
                ErrorCode::UnknownTopicOrPartition
            );
        }
        c.stop().await;
    });
}
