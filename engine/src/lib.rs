//! quiver-engine: everything a Quiver broker does with data, without sockets.
//!
//! - [`batch`]: Kafka RecordBatch v2 views, builder, CRC-32C and compression codecs.
//! - [`log`]: the partition log: O_DIRECT segments, sparse indexes, recovery, retention,
//!   compaction (a sans-IO core over a small storage trait, with a glommio implementation).
//! - [`partition`]: one partition on its owner shard: the log behind a shard-local lock,
//!   group commit, tail notifications, counters.
//! - [`shard`]: partition → shard placement, the cross-shard message mesh, shard-local sync.
//! - [`cluster`]: the controller's metadata and decisions and partition replication, as sans-IO
//!   state machines.
//! - [`group`]: the consumer-group coordinator (membership, epochs, assignors, committed
//!   offsets) as a sans-IO state machine, and the `__consumer_offsets` record format.
//! - [`broker`]: request handlers (protocol request in, response out) over N shards, the topic
//!   registry, background flush and retention, metrics.
//! - [`rt`]: the thin facade over glommio (executors, the platform work-arounds).
//!
//! Everything here runs on the shard (one glommio executor per core) that owns the data; no
//! type on the data path is `Send`, and nothing takes a thread lock (a partition's log sits behind a
//! shard-local async reader/writer lock).

/// The RecordBatch v2 codec lives in `quiver-transport` (the SDK builds batches without the
/// engine's glommio); re-exported here because the engine validates and stamps them.
pub use quiver_transport::batch;
pub mod broker;
pub mod cluster;
pub mod group;
pub mod log;
pub mod partition;
pub mod rt;
pub mod shard;
