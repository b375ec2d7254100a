//! Consumer groups through the broker's request handlers (in-process shards): placement and
//! forwarding, joining and incremental reassignment, commit fencing, offsets that survive a
//! restart, describe/list/delete, session expiry, lag on the metrics, and the internal topic's
//! protection.

mod broker_harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use broker_harness::*;
use quiver_engine::broker::{offsets_partition_for, render_prometheus};
use quiver_engine::shard::shard_for;
use quiver_transport::protocol::*;

const TOPIC: &str = "orders";
const GROUP: &str = "billing";

fn config(dir: &std::path::Path) -> quiver_engine::broker::BrokerConfig {
    let mut config = test_config(dir, 2);
    config.groups.session_timeout_min_ms = 100;
    config.groups.heartbeat_interval_ms = 50;
    config
}

fn heartbeat_request(
    member_id: &str,
    member_epoch: i32,
    owned: &BTreeMap<String, BTreeSet<i32>>,
    session_timeout_ms: i32,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        member_epoch,
        rebalance_timeout_ms: 60_000,
        session_timeout_ms,
        subscribed_topics: vec![TOPIC.into()],
        assignor: Some("cooperative-sticky".into()),
        owned: owned
            .iter()
            .map(|(t, ps)| GroupTopicPartitions {
                topic: t.clone(),
                partitions: ps.iter().copied().collect(),
            })
            .collect(),
    }
}

/// A group member as a client would run it: remembers its id, epoch and what it owns.
struct Member {
    id: String,
    epoch: i32,
    owned: BTreeMap<String, BTreeSet<i32>>,
    session_timeout_ms: i32,
}

impl Member {
    fn new(session_timeout_ms: i32) -> Member {
        Member {
            id: String::new(),
            epoch: MEMBER_EPOCH_JOIN,
            owned: BTreeMap::new(),
            session_timeout_ms,
        }
    }

    fn partitions(&self) -> BTreeSet<i32> {
        self.owned.get(TOPIC).cloned().unwrap_or_default()
    }

    /// One heartbeat through `shard`; adopts the answer (dropping revoked partitions at once,
    /// as a member that has nothing left to commit does).
    async fn beat(&mut self, c: &Cluster, shard: usize) -> Result<(), ErrorCode> {
        let request = heartbeat_request(&self.id, self.epoch, &self.owned, self.session_timeout_ms);
        match c.request(shard, request).await {
            Response::ConsumerGroupHeartbeat(r) if r.error_code.is_ok() => {
                self.id = r.member_id;
                self.epoch = r.member_epoch;
                self.owned = r
                    .assignment
                    .into_iter()
                    .map(|tp| (tp.topic, tp.partitions.into_iter().collect()))
                    .collect();
                Ok(())
            }
            Response::ConsumerGroupHeartbeat(r) => Err(r.error_code),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn assert_disjoint(members: &[&Member]) {
    let mut seen = BTreeSet::new();
    for m in members {
        for p in m.partitions() {
            assert!(
                seen.insert(p),
                "partition {p} owned twice: {:?}",
                members.iter().map(|m| m.partitions()).collect::<Vec<_>>()
            );
        }
    }
}

async fn commit(
    c: &Cluster,
    shard: usize,
    member_id: &str,
    member_epoch: i32,
    offsets: &[(i32, i64)],
) -> Vec<ErrorCode> {
    let request = OffsetCommitRequest {
        group_id: GROUP.into(),
        member_id: member_id.into(),
        member_epoch,
        topics: vec![OffsetCommitTopic {
            name: TOPIC.into(),
            partitions: offsets
                .iter()
                .map(|&(partition, offset)| OffsetCommitPartition {
                    partition,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    metadata: Some(format!("at {offset}")),
                })
                .collect(),
        }],
    };
    match c.request(shard, request).await {
        Response::OffsetCommit(r) => r.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn committed(c: &Cluster, shard: usize) -> BTreeMap<i32, i64> {
    let request = OffsetFetchRequest {
        group_id: GROUP.into(),
        topics: None,
    };
    match c.request(shard, request).await {
        Response::OffsetFetch(r) => {
            assert_eq!(r.error_code, ErrorCode::None, "{:?}", r.error_message);
            r.topics
                .iter()
                .filter(|t| t.name == TOPIC)
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (p.partition, p.committed_offset))
                })
                .collect()
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn describe(c: &Cluster, shard: usize) -> DescribedGroup {
    match c
        .request(
            shard,
            DescribeGroupsRequest {
                groups: vec![GROUP.into()],
            },
        )
        .await
    {
        Response::DescribeGroups(mut r) => r.groups.remove(0),
        other => panic!("unexpected {other:?}"),
    }
}

async fn delete_group(c: &Cluster, shard: usize) -> ErrorCode {
    match c
        .request(
            shard,
            DeleteGroupsRequest {
                groups: vec![GROUP.into()],
            },
        )
        .await
    {
        Response::DeleteGroups(r) => r.results[0].error_code,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn members_share_partitions_commits_are_fenced_and_offsets_survive_restart() {
    let dir = scratch("broker-groups");
    let config = config(dir.path());
    drive(|| async move {
        let c = Cluster::start(config.clone()).await;
        assert_eq!(c.create(0, TOPIC, 6, &[]).await.error_code, ErrorCode::None);

        // FindCoordinator names the shard that owns the group's offsets partition.
        let expected_shard = shard_for("__consumer_offsets", offsets_partition_for(GROUP, 50), 2);
        for shard in 0..2 {
            match c
                .request(
                    shard,
                    FindCoordinatorRequest {
                        key: GROUP.into(),
                        key_type: COORDINATOR_KEY_GROUP,
                    },
                )
                .await
            {
                Response::FindCoordinator(r) => {
                    assert_eq!(r.error_code, ErrorCode::None);
                    assert_eq!(r.shard, expected_shard as i32);
                    assert_eq!(r.port, 7000 + expected_shard as i32);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let other_shard = 1 - expected_shard;

        // The first member (through the non-coordinating shard: forwarded) gets everything.
        let mut a = Member::new(30_000);
        a.beat(&c, other_shard).await.unwrap();
        assert!(!a.id.is_empty());
        assert_eq!(a.partitions(), (0..6).collect());

        // A second member joins: the first loses half, the newcomer gets them only after
        // the first has released them.
        let mut b = Member::new(30_000);
        b.beat(&c, expected_shard).await.unwrap();
        assert_disjoint(&[&a, &b]);
        for _ in 0..5 {
            a.beat(&c, expected_shard).await.unwrap();
            assert_disjoint(&[&a, &b]);
            b.beat(&c, expected_shard).await.unwrap();
            assert_disjoint(&[&a, &b]);
        }
        assert_eq!(a.partitions().len(), 3, "{:?}", a.partitions());
        assert_eq!(b.partitions().len(), 3, "{:?}", b.partitions());

        // Commits: by a member with its current epoch; fenced otherwise.
        let a_first = *a.partitions().first().unwrap();
        let b_first = *b.partitions().first().unwrap();
        assert_eq!(
            commit(&c, 0, &a.id, a.epoch, &[(a_first, 42)]).await,
            [ErrorCode::None]
        );
        assert_eq!(
            commit(&c, 1, &b.id, b.epoch, &[(b_first, 7)]).await,
            [ErrorCode::None]
        );
        assert_eq!(
            commit(&c, 0, &a.id, a.epoch + 5, &[(a_first, 43)]).await,
            [ErrorCode::StaleMemberEpoch]
        );
        assert_eq!(
            commit(&c, 0, "nobody", 3, &[(a_first, 43)]).await,
            [ErrorCode::UnknownMemberId]
        );
        assert_eq!(
            commit(&c, 0, "", -1, &[(a_first, 43)]).await,
            [ErrorCode::NonEmptyGroup]
        );
        // A bad partition fails alone.
        assert_eq!(
            commit(&c, 0, &a.id, a.epoch, &[(a_first, 44), (99, 1)]).await,
            [ErrorCode::None, ErrorCode::UnknownTopicOrPartition]
        );
        let offsets = committed(&c, 1).await;
        assert_eq!(offsets.get(&a_first), Some(&44));
        assert_eq!(offsets.get(&b_first), Some(&7));

        // Describe, list, and delete refused while members are live.
        let d = describe(&c, other_shard).await;
        assert_eq!(d.error_code, ErrorCode::None);
        assert_eq!(d.members.len(), 2);
        assert_eq!(d.state, "Stable");
        assert_eq!(d.assignor, "cooperative-sticky");
        match c
            .request(
                0,
                ListGroupsRequest {
                    states_filter: vec![],
                },
            )
            .await
        {
            Response::ListGroups(r) => {
                assert!(r
                    .groups
                    .iter()
                    .any(|g| g.group_id == GROUP && g.member_count == 2))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(delete_group(&c, 0).await, ErrorCode::NonEmptyGroup);

        // Lag on the metrics: log end 0 everywhere here, so lag is 0 and the committed
        // offset is shown.
        let metrics = vec![c.metrics(0).await, c.metrics(1).await];
        let text = render_prometheus(&metrics);
        assert!(
            text.contains(&format!(
                "quiver_group_committed_offset{{group=\"{GROUP}\",topic=\"{TOPIC}\",partition=\"{a_first}\"}} 44"
            )),
            "{text}"
        );
        assert!(text.contains("quiver_group_members{group=\"billing\",state=\"Stable\"} 2"));

        // b leaves: a gets everything back.
        let mut leaving = heartbeat_request(&b.id, MEMBER_EPOCH_LEAVE, &b.owned, 30_000);
        leaving.owned.clear();
        match c.request(0, leaving).await {
            Response::ConsumerGroupHeartbeat(r) => {
                assert_eq!(r.error_code, ErrorCode::None);
                assert_eq!(r.member_epoch, MEMBER_EPOCH_LEAVE);
            }
            other => panic!("unexpected {other:?}"),
        }
        a.beat(&c, 0).await.unwrap();
        assert_eq!(a.partitions(), (0..6).collect());

        c.stop().await;

        // Restart: the offsets are back; the member is unknown and rejoins.
        let c = Cluster::start(config.clone()).await;
        let offsets = committed(&c, 0).await;
        assert_eq!(offsets.get(&a_first), Some(&44));
        assert_eq!(offsets.get(&b_first), Some(&7));
        assert_eq!(a.beat(&c, 0).await, Err(ErrorCode::UnknownMemberId));
        let d = describe(&c, 0).await;
        assert_eq!((d.error_code, d.state.as_str()), (ErrorCode::None, "Empty"));

        // With no live members, commits from outside the group (offset resets) are accepted,
        // and the group can be deleted; the deletion survives a restart.
        assert_eq!(
            commit(&c, 0, "", -1, &[(a_first, 5)]).await,
            [ErrorCode::None]
        );
        assert_eq!(committed(&c, 1).await.get(&a_first), Some(&5));
        assert_eq!(delete_group(&c, 1).await, ErrorCode::None);
        assert!(committed(&c, 0).await.is_empty());
        assert_eq!(describe(&c, 0).await.error_code, ErrorCode::GroupIdNotFound);
        assert_eq!(delete_group(&c, 0).await, ErrorCode::GroupIdNotFound);
        c.stop().await;
        let c = Cluster::start(config).await;
        assert!(committed(&c, 0).await.is_empty());
        c.stop().await;
    });
}

#[test]
fn silent_members_expire_and_their_partitions_move() {
    let dir = scratch("broker-groups-expiry");
    let config = config(dir.path());
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, TOPIC, 4, &[]).await.error_code, ErrorCode::None);
        let mut a = Member::new(300);
        let mut b = Member::new(30_000);
        a.beat(&c, 0).await.unwrap();
        b.beat(&c, 0).await.unwrap();
        for _ in 0..4 {
            a.beat(&c, 0).await.unwrap();
            b.beat(&c, 0).await.unwrap();
        }
        assert_eq!((a.partitions().len(), b.partitions().len()), (2, 2));

        // a goes silent; b keeps heartbeating and gets a's partitions once a's session ends.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while b.partitions().len() < 4 {
            assert!(std::time::Instant::now() < deadline, "a never expired");
            glommio::timer::sleep(Duration::from_millis(50)).await;
            b.beat(&c, 0).await.unwrap();
        }
        assert_eq!(a.beat(&c, 0).await, Err(ErrorCode::UnknownMemberId));
        assert_eq!(
            commit(&c, 0, &a.id, a.epoch, &[(0, 1)]).await,
            [ErrorCode::UnknownMemberId]
        );

        // Session timeouts outside the broker's range are refused.
        let mut tiny = Member::new(10);
        assert_eq!(
            tiny.beat(&c, 0).await,
            Err(ErrorCode::InvalidSessionTimeout)
        );

        // The internal topic exists, is internal, and cannot be deleted.
        let internal: Vec<_> = c
            .list_topics(1, true)
            .await
            .into_iter()
            .filter(|t| t.is_internal)
            .map(|t| (t.name, t.partition_count))
            .collect();
        assert_eq!(internal, vec![("__consumer_offsets".to_string(), 50)]);
        match c
            .request(
                0,
                DeleteTopicsRequest {
                    names: vec!["__consumer_offsets".into()],
                    timeout_ms: 5000,
                },
            )
            .await
        {
            Response::DeleteTopics(r) => {
                assert_eq!(r.topics[0].error_code, ErrorCode::PolicyViolation)
            }
            other => panic!("unexpected {other:?}"),
        }
        c.stop().await;
    });
}

#[test]
fn offsets_of_empty_groups_expire_after_retention() {
    let dir = scratch("broker-groups-retention");
    let mut config = config(dir.path());
    config.groups.offsets_retention_ms = 300;
    let config2 = config.clone();
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, TOPIC, 2, &[]).await.error_code, ErrorCode::None);
        // A live member's offsets stay however old they get.
        let mut a = Member::new(30_000);
        a.beat(&c, 0).await.unwrap();
        assert_eq!(
            commit(&c, 0, &a.id, a.epoch, &[(0, 3)]).await,
            [ErrorCode::None]
        );
        for _ in 0..10 {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            a.beat(&c, 0).await.unwrap();
        }
        assert_eq!(committed(&c, 0).await.get(&0), Some(&3));
        // Once the group is empty, they go after the retention.
        let mut leaving = heartbeat_request(&a.id, MEMBER_EPOCH_LEAVE, &a.owned, 30_000);
        leaving.owned.clear();
        c.request(0, leaving).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !committed(&c, 1).await.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "offsets never expired"
            );
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(describe(&c, 0).await.error_code, ErrorCode::GroupIdNotFound);
        c.stop().await;
        // The expiry was written down (tombstones), not just forgotten.
        let mut config2 = config2;
        config2.groups.offsets_retention_ms = i64::MAX / 4;
        let c = Cluster::start(config2).await;
        assert!(committed(&c, 0).await.is_empty());
        c.stop().await;
    });
}
