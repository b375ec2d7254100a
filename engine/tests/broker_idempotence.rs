//! Idempotent producers through the broker's handlers: InitProducerId (allocation on shard 0,
//! forwarding, epoch bumps, ids never reused after a restart), duplicates answered with the
//! original offset, sequence gaps and fenced epochs refused, and the response-dropping fault
//! hook that makes clients retry.

mod broker_harness;

use broker_harness::*;
use bytes::Bytes;
use quiver_engine::batch::{BatchBuilder, Compression};
use quiver_transport::protocol::*;

fn producer_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).producer(producer_id, epoch, base_sequence);
    // Current timestamps: producer state expires by the age of a producer's newest record.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..count {
        let value = format!("p{producer_id}-e{epoch}-s{}", base_sequence as usize + i);
        b.push(now_ms + i as i64, None, Some(value.as_bytes()), &[]);
    }
    b.build().expect("batch").freeze()
}

async fn init(c: &Cluster, shard: usize, producer_id: i64, epoch: i16) -> InitProducerIdResponse {
    match c
        .request(
            shard,
            InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 0,
                producer_id,
                producer_epoch: epoch,
            },
        )
        .await
    {
        Response::InitProducerId(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn duplicates_are_answered_with_the_original_offset_and_gaps_are_refused() {
    let dir = scratch("broker-idempotence");
    let mut config = test_config(dir.path(), 2);
    config.fault_drop_produce_response_every = 0;
    let config2 = config.clone();
    let mut first_ids = Vec::new();
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, "t", 1, &[]).await.error_code, ErrorCode::None);

        // Ids from shard 0, also when asked through shard 1.
        let a = init(&c, 1, -1, -1).await;
        let b = init(&c, 0, -1, -1).await;
        assert_eq!((a.error_code, a.producer_epoch), (ErrorCode::None, 0));
        assert_ne!(a.producer_id, b.producer_id);
        first_ids.extend([a.producer_id, b.producer_id]);
        let id = a.producer_id;

        let shard = 0;
        let first = c
            .produce(shard, "t", 0, producer_batch(id, 0, 0, 3), Acks::All)
            .await
            .unwrap();
        assert_eq!((first.error_code, first.base_offset), (ErrorCode::None, 0));
        let second = c
            .produce(shard, "t", 0, producer_batch(id, 0, 3, 2), Acks::All)
            .await
            .unwrap();
        assert_eq!(second.base_offset, 3);
        // A retry of the first batch: success, original offset, nothing appended.
        let retry = c
            .produce(1, "t", 0, producer_batch(id, 0, 0, 3), Acks::All)
            .await
            .unwrap();
        assert_eq!((retry.error_code, retry.base_offset), (ErrorCode::None, 0));
        assert_eq!(c.list_offset(0, "t", 0, OffsetSpec::Latest).await.offset, 5);
        // A gap.
        let gap = c
            .produce(shard, "t", 0, producer_batch(id, 0, 9, 1), Acks::All)
            .await
            .unwrap();
        assert_eq!(gap.error_code, ErrorCode::OutOfOrderSequenceNumber);
        // An epoch bump fences the old epoch.
        let bumped = init(&c, 1, id, 0).await;
        assert_eq!((bumped.producer_id, bumped.producer_epoch), (id, 1));
        let fresh = c
            .produce(shard, "t", 0, producer_batch(id, 1, 0, 1), Acks::All)
            .await
            .unwrap();
        assert_eq!((fresh.error_code, fresh.base_offset), (ErrorCode::None, 5));
        let stale = c
            .produce(shard, "t", 0, producer_batch(id, 0, 5, 1), Acks::All)
            .await
            .unwrap();
        assert_eq!(stale.error_code, ErrorCode::InvalidProducerEpoch);
        // Transactions are refused clearly.
        let txn = match c
            .request(
                0,
                InitProducerIdRequest {
                    transactional_id: Some("tx".into()),
                    transaction_timeout_ms: 1000,
                    producer_id: -1,
                    producer_epoch: -1,
                },
            )
            .await
        {
            Response::InitProducerId(r) => r,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(txn.error_code, ErrorCode::InvalidRequest);
        assert_eq!(c.list_offset(0, "t", 0, OffsetSpec::Latest).await.offset, 6);
        c.stop().await;

        // After a restart: dedup state and id allocation both survive.
        let c = Cluster::start(config2).await;
        let retry = c
            .produce(0, "t", 0, producer_batch(id, 1, 0, 1), Acks::All)
            .await
            .unwrap();
        assert_eq!((retry.error_code, retry.base_offset), (ErrorCode::None, 5));
        assert_eq!(c.list_offset(0, "t", 0, OffsetSpec::Latest).await.offset, 6);
        let next = init(&c, 1, -1, -1).await;
        assert!(
            first_ids.iter().all(|&old| next.producer_id > old),
            "{} reused after restart ({first_ids:?})",
            next.producer_id
        );
        c.stop().await;
    });
}

#[test]
fn dropped_responses_are_retried_without_duplicates() {
    let dir = scratch("broker-fault-drop");
    let mut config = test_config(dir.path(), 1);
    config.fault_drop_produce_response_every = 2;
    drive(|| async move {
        let c = Cluster::start(config).await;
        assert_eq!(c.create(0, "t", 1, &[]).await.error_code, ErrorCode::None);
        let id = init(&c, 0, -1, -1).await.producer_id;
        let mut sequence = 0;
        let mut dropped = 0;
        for i in 0..10 {
            let batch = producer_batch(id, 0, sequence, 2);
            // What a client does: send until answered.
            let answer = loop {
                match c.produce(0, "t", 0, batch.clone(), Acks::All).await {
                    Some(r) => break r,
                    None => dropped += 1,
                }
            };
            assert_eq!(answer.error_code, ErrorCode::None, "batch {i}");
            assert_eq!(answer.base_offset, i64::from(sequence), "batch {i}");
            sequence += 2;
        }
        assert!(dropped >= 5, "the hook dropped only {dropped} responses");
        assert_eq!(
            c.list_offset(0, "t", 0, OffsetSpec::Latest).await.offset,
            20
        );
        c.stop().await;
    });
}
