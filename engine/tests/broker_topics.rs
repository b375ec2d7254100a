//! Topic administration through real shards: create, list, describe, alter, delete with their
//! error paths, metadata, and what survives a restart (topics, configs, data; deleted topics
//! stay deleted and come back empty when recreated).

mod broker_harness;

use broker_harness::*;
use quiver_engine::broker::CONFIG_KEYS;
use quiver_engine::shard::shard_for;
use quiver_transport::protocol::*;

fn created_ok(t: &CreatedTopic) {
    assert_eq!(t.error_code, ErrorCode::None, "{t:?}");
}

#[test]
fn topic_admin_and_its_errors() {
    let dir = scratch("broker-topics");
    let config = test_config(dir.path(), 2);
    drive(|| async move {
        let c = Cluster::start(config).await;

        // ApiVersions lists every api and the frame limit.
        match c
            .request(
                1,
                ApiVersionsRequest {
                    client_software_name: "t".into(),
                    client_software_version: "0".into(),
                },
            )
            .await
        {
            Response::ApiVersions(r) => {
                assert_eq!(r.api_versions.len(), ApiKey::ALL.len());
                assert_eq!(r.frame_bytes_max, FRAME_BYTES_MAX_DEFAULT);
            }
            other => panic!("{other:?}"),
        }

        // Created through shard 1 (forwarded to shard 0, applied on both).
        let t = c
            .create(
                1,
                "orders",
                4,
                &[("retention.ms", "3600000"), ("flush", "always")],
            )
            .await;
        created_ok(&t);
        assert_eq!((t.partition_count, t.replication_factor), (4, 1));
        let t = c.create(0, "defaulted", -1, &[]).await;
        created_ok(&t);
        assert_eq!(t.partition_count, 1);

        // Error paths.
        assert_eq!(
            c.create(0, "orders", 1, &[]).await.error_code,
            ErrorCode::TopicAlreadyExists
        );
        for bad in ["", ".", "..", "a/b", "sp ace", "ü", &"x".repeat(250)] {
            let r = c.create(1, bad, 1, &[]).await;
            assert_eq!(r.error_code, ErrorCode::InvalidTopic, "{bad:?}");
            assert!(r.error_message.is_some());
        }
        assert_eq!(
            c.create(0, "p0", 0, &[]).await.error_code,
            ErrorCode::InvalidPartitions
        );
        assert_eq!(
            c.create(0, "p0", 10_001, &[]).await.error_code,
            ErrorCode::InvalidPartitions
        );
        let r = c.create(0, "cfg", 1, &[("retention.msx", "1")]).await;
        assert_eq!(r.error_code, ErrorCode::InvalidConfig);
        assert!(
            r.error_message
                .as_deref()
                .unwrap_or("")
                .contains("retention.msx"),
            "{r:?}"
        );
        let r = c.create(0, "cfg", 1, &[("segment.bytes", "12")]).await;
        assert_eq!(r.error_code, ErrorCode::InvalidConfig);
        assert!(r
            .error_message
            .as_deref()
            .unwrap_or("")
            .contains("segment.bytes"));
        let r = c.create(0, "cfg", 1, &[("flush", "sometimes")]).await;
        assert_eq!(r.error_code, ErrorCode::InvalidConfig);
        let r = c.create(0, "cfg", 1, &[("cleanup.policy", "shred")]).await;
        assert_eq!(r.error_code, ErrorCode::InvalidConfig);
        match c
            .request(
                0,
                CreateTopicsRequest {
                    topics: vec![
                        CreatableTopic {
                            name: "rf".into(),
                            partition_count: 1,
                            replication_factor: 3,
                            configs: vec![],
                        },
                        CreatableTopic {
                            name: "v".into(),
                            partition_count: 2,
                            replication_factor: 1,
                            configs: vec![],
                        },
                    ],
                    timeout_ms: 1000,
                    validate_only: true,
                },
            )
            .await
        {
            Response::CreateTopics(r) => {
                assert_eq!(r.topics[0].error_code, ErrorCode::InvalidReplicationFactor);
                assert_eq!(r.topics[1].error_code, ErrorCode::None);
                assert_eq!(r.topics[1].partition_count, 2);
            }
            other => panic!("{other:?}"),
        }

        // validate_only created nothing; list is sorted, the same on both shards.
        for shard in 0..2 {
            let names: Vec<_> = c
                .list(shard)
                .await
                .into_iter()
                .map(|t| (t.name, t.partition_count))
                .collect();
            assert_eq!(
                names,
                vec![("defaulted".to_string(), 1), ("orders".to_string(), 4)]
            );
        }

        // Describe: every key, overrides marked, partition offsets from their owners.
        for shard in 0..2 {
            let d = c.describe(shard, "orders").await;
            assert_eq!(d.error_code, ErrorCode::None);
            let keys: Vec<_> = d.configs.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(keys, CONFIG_KEYS.to_vec());
            let get = |k: &str| d.configs.iter().find(|c| c.name == k).unwrap().clone();
            assert_eq!(get("retention.ms").value.as_deref(), Some("3600000"));
            assert!(!get("retention.ms").is_default);
            assert_eq!(get("flush").value.as_deref(), Some("always"));
            assert_eq!(get("flush.ms").value.as_deref(), Some("10"));
            assert!(get("flush.ms").is_default);
            assert_eq!(d.partitions.len(), 4);
            for (i, p) in d.partitions.iter().enumerate() {
                assert_eq!(p.partition, i as i32);
                assert_eq!(p.error_code, ErrorCode::None);
                assert_eq!(
                    (p.log_start_offset, p.log_end_offset, p.high_watermark),
                    (0, 0, 0)
                );
                assert_eq!(p.replicas, vec![0]);
            }
        }
        assert_eq!(
            c.describe(1, "nope").await.error_code,
            ErrorCode::UnknownTopicOrPartition
        );

        // Alter: set, reset, errors; all or nothing per topic.
        let r = c
            .alter(
                1,
                "orders",
                &[
                    ("retention.ms", Some("-1")),
                    ("flush", None),
                    ("segment.bytes", Some("1048576")),
                ],
            )
            .await;
        assert_eq!(r.error_code, ErrorCode::None, "{r:?}");
        let d = c.describe(0, "orders").await;
        let get = |k: &str| d.configs.iter().find(|c| c.name == k).unwrap().clone();
        assert_eq!(get("retention.ms").value.as_deref(), Some("-1"));
        assert_eq!(get("flush").value.as_deref(), Some("interval"));
        assert!(get("flush").is_default);
        assert_eq!(get("segment.bytes").value.as_deref(), Some("1048576"));
        let r = c
            .alter(
                0,
                "orders",
                &[("segment.ms", Some("5")), ("bogus", Some("1"))],
            )
            .await;
        assert_eq!(r.error_code, ErrorCode::InvalidConfig);
        assert!(r.error_message.unwrap().contains("bogus"));
        let d = c.describe(0, "orders").await;
        assert!(
            d.configs
                .iter()
                .find(|c| c.name == "segment.ms")
                .unwrap()
                .is_default
        );
        assert_eq!(
            c.alter(0, "nope", &[("flush", Some("never"))])
                .await
                .error_code,
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            c.alter(0, "orders", &[("max.message.bytes", Some("10"))])
                .await
                .error_code,
            ErrorCode::InvalidConfig
        );

        // Metadata: one broker, per partition the owning shard and its port.
        match c.request(1, MetadataRequest { topics: None }).await {
            Response::Metadata(m) => {
                assert_eq!(m.brokers.len(), 1);
                assert_eq!((m.brokers[0].port, m.brokers[0].shard_count), (7000, 2));
                let orders = m.topics.iter().find(|t| t.name == "orders").unwrap();
                assert_eq!(orders.partitions.len(), 4);
                for p in &orders.partitions {
                    let shard = shard_for("orders", p.partition, 2) as u16;
                    assert_eq!(p.leader_shard, shard);
                    assert_eq!(p.leader_shard_port, 7000 + shard);
                    assert_eq!((p.leader_id, p.leader_epoch), (0, 0));
                    assert_eq!(p.isr, vec![0]);
                }
            }
            other => panic!("{other:?}"),
        }
        match c
            .request(
                0,
                MetadataRequest {
                    topics: Some(vec!["zz".into()]),
                },
            )
            .await
        {
            Response::Metadata(m) => {
                assert_eq!(m.topics[0].error_code, ErrorCode::UnknownTopicOrPartition)
            }
            other => panic!("{other:?}"),
        }

        // Delete through shard 1.
        let r = c.delete(1, &["defaulted", "nope"]).await;
        assert_eq!(r[0].error_code, ErrorCode::None);
        assert_eq!(r[1].error_code, ErrorCode::UnknownTopicOrPartition);
        for shard in 0..2 {
            assert_eq!(c.list(shard).await.len(), 1);
        }
        assert!(!dir_exists(&c, "defaulted-0"));
        assert_eq!(
            c.delete(0, &["defaulted"]).await[0].error_code,
            ErrorCode::UnknownTopicOrPartition
        );
        let r = c
            .produce(0, "defaulted", 0, batch("x", 1, 1), Acks::Leader)
            .await
            .unwrap();
        assert_eq!(r.error_code, ErrorCode::UnknownTopicOrPartition);
        c.stop().await;
    });
}

fn dir_exists(c: &Cluster, name: &str) -> bool {
    c.config.data_dir.join(name).exists()
}

#[test]
fn restart_keeps_topics_configs_and_data_but_not_deleted_topics() {
    let dir = scratch("broker-restart");
    let config = test_config(dir.path(), 2);
    let sent_keep: Vec<_> = (0..3)
        .map(|i| batch(&format!("keep{i}"), 3, 1_000 + i))
        .collect();
    let (config2, config3) = (config.clone(), config.clone());
    let sent = sent_keep.clone();
    drive(|| async move {
        let c = Cluster::start(config).await;
        created_ok(&c.create(0, "keep", 2, &[("retention.ms", "12345")]).await);
        created_ok(&c.create(1, "gone", 2, &[]).await);
        for (i, b) in sent.iter().enumerate() {
            let r = c
                .produce(i % 2, "keep", (i % 2) as i32, b.clone(), Acks::All)
                .await
                .unwrap();
            assert_eq!(r.error_code, ErrorCode::None, "{r:?}");
        }
        for p in 0..2 {
            let r = c
                .produce(1, "gone", p, batch("old", 5, 1), Acks::All)
                .await
                .unwrap();
            assert_eq!(r.error_code, ErrorCode::None);
        }
        assert_eq!(c.delete(0, &["gone"]).await[0].error_code, ErrorCode::None);
        c.stop().await;
    });
    drive(|| async move {
        let c = Cluster::start(config2).await;
        let names: Vec<_> = c.list(1).await.into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["keep".to_string()]);
        let d = c.describe(1, "keep").await;
        let retention = d.configs.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(retention.value.as_deref(), Some("12345"));
        assert!(!retention.is_default);
        // Partition 0 got batches 0 and 2, partition 1 batch 1.
        for (p, expect) in [
            (0, vec![&sent_keep[0], &sent_keep[2]]),
            (1, vec![&sent_keep[1]]),
        ] {
            let f = c.fetch((p as usize + 1) % 2, "keep", p, 0, 1, 0).await;
            assert_eq!(f.error_code, ErrorCode::None);
            let got = batches_of(&f.records);
            assert_eq!(got.len(), expect.len());
            for (i, ((base, bytes), sent)) in got.iter().zip(expect).enumerate() {
                assert_eq!(*base, 3 * i as i64);
                assert_eq!(*bytes, normalised(sent));
            }
            assert_eq!(f.high_watermark, 3 * got.len() as i64);
        }
        // The deleted topic is gone and comes back empty.
        assert_eq!(
            c.describe(0, "gone").await.error_code,
            ErrorCode::UnknownTopicOrPartition
        );
        created_ok(&c.create(1, "gone", 2, &[]).await);
        for p in 0..2 {
            let f = c.fetch(0, "gone", p, 0, 0, 0).await;
            assert_eq!(f.error_code, ErrorCode::None);
            assert_eq!(f.high_watermark, 0);
            assert!(f.records.is_empty());
        }
        c.stop().await;
    });
    // Once more: the recreated topic is registered, and no `.deleted` leftovers remain.
    drive(|| async move {
        let c = Cluster::start(config3).await;
        assert_eq!(c.list(0).await.len(), 2);
        let leftovers = std::fs::read_dir(&c.config.data_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".deleted")
            })
            .count();
        assert_eq!(leftovers, 0);
        c.stop().await;
    });
}
