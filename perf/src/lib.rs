//! quiver-perf: Quiver's benchmarks that run real IO outside `cargo test`.
//!
//! - [`storage`]: the storage benchmark (`storage-bench`, run by `hack/bench-storage`): the
//!   partition log's O_DIRECT append and cold read throughput against fio doing the same IO on
//!   the same file system, with medians over alternating runs.
//! - [`quic`]: the QUIC benchmark (`quic-bench`): one-way loopback throughput of quinn on the
//!   broker's glommio adapter against quinn on tokio, alternating, with medians and their ratio.

pub mod quic;
pub mod storage;
