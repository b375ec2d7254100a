//! Several brokers acting as one cluster (ARCHITECTURE §8), as sans-IO state machines that the
//! broker's IO shell drives with messages and time:
//!
//! - [`metadata`]: the cluster metadata image (brokers, topics, replica assignments, leaders,
//!   ISR, epochs) and the records of the controller's log that change it.
//! - [`controller`]: the controller's decisions: broker registration and liveness, replica
//!   placement, leader election from the ISR, ISR changes asked for by leaders.
//! - [`metadata_log`]: the controller quorum's durable Raft log (entries in a partition log,
//!   terms as leader epochs) and hard state.
//! - [`quorum`]: a controller quorum member: a raft-rs node whose entries carry metadata
//!   records, persisted to the metadata log and applied to the controller.
//! - [`replication`]: one partition's replication: the leader's view of its followers (ISR
//!   shrink and expand, high watermark, `acks=all` and `min.insync.replicas`), and the
//!   follower's truncation to the leader-epoch boundary.

pub mod controller;
pub mod metadata;
pub mod metadata_log;
pub mod quorum;
pub mod replication;
