//! quiver-bench: the load-test harness (workloads, latency histograms, reports, plots).
//!
//! It drives a broker through the client SDK in `quiver-transport` and will grow with it
//! (ARCHITECTURE §2). The storage engine's own benchmark, which needs no broker, lives in
//! `perf/` (`hack/bench-storage`).
