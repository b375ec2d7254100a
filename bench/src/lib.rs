//! quiver-bench: the load-test harness behind `quiver bench` (ARCHITECTURE §2): workloads
//! driven through the client SDK, latency histograms, reports, plots and comparisons.
//!
//! It depends on `quiver_transport::client` only (no engine, no glommio): it measures a broker
//! the way an application sees it. `--embedded` runs the `quiver` binary itself as a child
//! broker ([`embedded`]). The storage engine's own benchmark, which needs no broker, lives in
//! `perf/` (`hack/bench-storage`); the raw QUIC ceiling in `perf/` too (`quic-bench`), which
//! `hack/bench-suite` runs beside this harness.
//!
//! - [`params`]: the workloads and their parameters;
//! - [`run`]: running a workload against a broker ([`run::run`]);
//! - [`rate`]: the open-loop schedule (coordinated-omission correction);
//! - [`histogram`]: latency histograms and percentiles;
//! - [`report`], [`compare`], [`plot`]: what comes out ([`raster`] draws PNG plots);
//! - [`machine`]: where it ran.

pub mod compare;
pub mod embedded;
pub mod histogram;
pub mod machine;
pub mod params;
pub mod plot;
pub mod raster;
pub mod rate;
pub mod report;
pub mod run;

pub use params::{MessageSize, Params, Workload};
pub use report::Report;
pub use run::{run, BenchError, Options, Target};
