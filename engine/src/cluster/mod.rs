//! Several brokers acting as one cluster (ARCHITECTURE §8), as sans-IO state machines that the
//! broker's IO shell drives with messages and time:
//!
//! - [`replication`]: one partition's replication: the leader's view of its followers (ISR
//!   shrink and expand, high watermark, `acks=all` and `min.insync.replicas`), and the
//!   follower's truncation to the leader-epoch boundary.

pub mod replication;
