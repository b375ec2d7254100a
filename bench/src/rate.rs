//! The open-loop schedule: the instant each record is *intended* to be sent.
//!
//! A producer with a target rate sends record `i` at `start + i / rate`, whatever happened to
//! the records before it. Latency is measured from that intended instant, not from when the
//! send actually started, so a stall (the broker pausing, `send` blocking on buffer memory,
//! our own timer waking late) is charged to every record that should have gone out during it.
//! That is the coordinated-omission correction: a closed-loop client that simply waits would
//! send fewer records during a stall and hide it from the percentiles.
//!
//! Sans IO: time is passed in, so the schedule is tested without sleeping.

use std::time::{Duration, Instant};

/// The schedule of one open-loop sender.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    start: Instant,
    interval_ns: f64,
    issued: u64,
}

impl RateLimiter {
    /// A schedule of `records_per_sec` starting at `start`.
    pub fn new(records_per_sec: f64, start: Instant) -> RateLimiter {
        assert!(
            records_per_sec.is_finite() && records_per_sec > 0.0,
            "a rate is positive (checked when the parameters are parsed)"
        );
        RateLimiter {
            start,
            interval_ns: 1e9 / records_per_sec,
            issued: 0,
        }
    }

    /// The intended instant of the next record, and counts it as issued. It may lie in the
    /// past (the sender is behind: send at once, and the lateness counts as latency) or in the
    /// future (wait until then).
    pub fn next_intended(&mut self) -> Instant {
        let at = self.intended(self.issued);
        self.issued += 1;
        at
    }

    /// Records issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Records whose intended instant is at or before `now` but not yet issued.
    pub fn due(&self, now: Instant) -> u64 {
        let elapsed_ns = now.saturating_duration_since(self.start).as_nanos() as f64;
        let scheduled = (elapsed_ns / self.interval_ns).floor() as u64 + 1;
        scheduled.saturating_sub(self.issued)
    }

    fn intended(&self, index: u64) -> Instant {
        self.start + Duration::from_nanos((index as f64 * self.interval_ns).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_instants_are_evenly_spaced() {
        let start = Instant::now();
        let mut r = RateLimiter::new(1000.0, start);
        let times: Vec<Instant> = (0..5).map(|_| r.next_intended()).collect();
        for (i, t) in times.iter().enumerate() {
            assert_eq!(*t - start, Duration::from_millis(i as u64));
        }
        assert_eq!(r.issued(), 5);
    }

    #[test]
    fn a_late_sender_keeps_the_schedule_instead_of_skipping() {
        // The sender stalls for 50 ms: the 50 records due meanwhile keep their intended
        // instants (so their latency includes the stall), none is dropped or rescheduled.
        let start = Instant::now();
        let mut r = RateLimiter::new(1000.0, start);
        let now = start + Duration::from_millis(50);
        assert_eq!(r.due(now), 51);
        let late: Vec<Duration> = (0..51).map(|_| now - r.next_intended()).collect();
        assert_eq!(late[0], Duration::from_millis(50));
        assert_eq!(late[50], Duration::ZERO);
        assert_eq!(r.due(now), 0);
        let next = r.next_intended();
        assert!(next > now, "the next record is in the future");
        assert_eq!(next - start, Duration::from_millis(51));
    }

    #[test]
    fn the_rate_holds_over_a_window_for_fractional_intervals() {
        let start = Instant::now();
        let mut r = RateLimiter::new(3.0e5, start); // 3.33.. µs apart
        let one_second = start + Duration::from_secs(1);
        let mut sent = 0u64;
        while r.next_intended() < one_second {
            sent += 1;
        }
        assert_eq!(sent, 300_000);
    }
}
