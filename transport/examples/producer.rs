//! Sends records to a topic and prints where each landed.
//!
//! ```text
//! cargo run -p quiver-transport --example producer -- 127.0.0.1:9190 events 10
//! ```
//! Trusts `$QUIVER_TLS_CA`, else `./quiver-data/tls/cert.pem`.

use std::time::Duration;

use quiver_transport::client::{
    ClientConfig, ClientError, Producer, ProducerConfig, ProducerRecord,
};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9190".into());
    let topic = args.next().unwrap_or_else(|| "events".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);

    let config = ClientConfig::new(bootstrap, ClientConfig::trust_from_env_or_default()?);
    let producer = Producer::connect(
        config,
        ProducerConfig {
            linger: Duration::from_millis(10),
            ..ProducerConfig::default()
        },
    )
    .await?;
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let record = ProducerRecord::new(topic.clone(), format!("message {i}"))
            .with_key(format!("key-{}", i % 8));
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        let meta = delivery.await?;
        println!("{}-{} @ {}", meta.topic, meta.partition, meta.offset);
    }
    producer.close().await
}
