//! Reads a topic's partitions from the beginning and prints every record.
//!
//! ```text
//! cargo run -p quiver-transport --example consumer -- 127.0.0.1:9190 events
//! ```
//! Trusts `$QUIVER_TLS_CA`, else `./quiver-data/tls/cert.pem`. Stops after 5 s without records.

use std::time::{Duration, Instant};

use quiver_transport::client::{
    Admin, ClientConfig, ClientError, Consumer, ConsumerConfig, OffsetReset, TopicPartition,
};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9190".into());
    let topic = args.next().unwrap_or_else(|| "events".into());

    let config = ClientConfig::new(bootstrap, ClientConfig::trust_from_env_or_default()?);
    let admin = Admin::connect(config.clone()).await?;
    let partitions = admin.describe_topic(&topic).await?.partitions;
    let assignment: Vec<TopicPartition> = partitions
        .iter()
        .map(|p| TopicPartition::new(topic.clone(), p.partition))
        .collect();

    let mut consumer = Consumer::with_client(
        admin.client().clone(),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    )
    .await?;
    consumer.assign(assignment);
    let mut last_record = Instant::now();
    while last_record.elapsed() < Duration::from_secs(5) {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        if !records.is_empty() {
            last_record = Instant::now();
        }
        for r in records {
            let key = r.key.as_deref().map(String::from_utf8_lossy);
            let value = r.value.as_deref().map(String::from_utf8_lossy);
            println!(
                "{}-{} @ {} ts {} key {key:?} value {value:?}",
                r.topic, r.partition, r.offset, r.timestamp
            );
        }
    }
    Ok(())
}
