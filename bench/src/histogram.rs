//! Latency histograms: an HdrHistogram of microseconds with a fixed range, so any two merge,
//! and the percentile summary the reports print ([`Percentiles`], milliseconds).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency a histogram holds, µs (one hour); larger samples are clamped to it.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits kept (relative error ≤ 0.1%).
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds (1 µs .. [`LATENCY_US_MAX`]).
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        let histogram = Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
            .expect("constant bounds are valid");
        LatencyHistogram { histogram }
    }

    /// Records one latency; below 1 µs counts as 1 µs, above the range as the range's top.
    pub fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_US_MAX);
        self.histogram
            .record(us)
            .expect("value clamped into the histogram's range");
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms of one range always merge");
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.histogram.reset();
    }

    /// The summary, or `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |q: f64| ms(self.histogram.value_at_quantile(q));
        Some(Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            p9999: at(0.9999),
            max: ms(self.histogram.max()),
        })
    }
}

/// Latency percentiles, milliseconds (the JSON's `latency_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// `(name, value)` pairs in the order reports print them.
    pub fn named(&self) -> [(&'static str, f64); 6] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p999),
            ("p99.99", self.p9999),
            ("max", self.max),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = LatencyHistogram::new();
        for i in 1..=1000 {
            h.record(Duration::from_micros(i * 10)); // 0.01 .. 10 ms
        }
        let p = h.percentiles().expect("not empty");
        assert!((p.p50 - 5.0).abs() < 0.02, "{p:?}");
        assert!((p.p90 - 9.0).abs() < 0.02, "{p:?}");
        assert!((p.p99 - 9.9).abs() < 0.02, "{p:?}");
        assert!((p.max - 10.0).abs() < 0.02, "{p:?}");
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999);
        assert!(p.p999 <= p.p9999 && p.p9999 <= p.max);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            LatencyHistogram::new(),
            LatencyHistogram::new(),
            LatencyHistogram::new(),
        );
        for i in 0..500u64 {
            a.record(ms(i % 7 + 1));
            all.record(ms(i % 7 + 1));
        }
        for i in 0..300u64 {
            b.record(ms(100 + i));
            all.record(ms(100 + i));
        }
        a.merge(&b);
        assert_eq!(a.len(), 800);
        assert_eq!(a.percentiles(), all.percentiles());
        // The tail comes from b only: a's own samples are all ≤ 7 ms.
        assert!(a.percentiles().unwrap().max >= 399.0);
        assert!(a.percentiles().unwrap().p50 <= 7.01);
    }

    #[test]
    fn empty_has_no_percentiles_and_out_of_range_is_clamped() {
        let mut h = LatencyHistogram::new();
        assert!(h.percentiles().is_none());
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(10 * 3600));
        let p = h.percentiles().unwrap();
        assert!(p.p50 <= 0.002);
        assert!(p.max >= 3_600_000.0 * 0.999);
        h.clear();
        assert!(h.is_empty());
    }
}
