//! Retention planning (sans-IO): which whole sealed segments `retention.ms` and
//! `retention.bytes` delete.
//!
//! Rules, as in Kafka: by size, the oldest segments go while the log would still hold at least
//! `retention_bytes` without them; by time, the oldest segments go while their largest timestamp
//! is older than `now - retention_ms`, stopping at the first that is not. The active segment is
//! never deleted in place; when every sealed segment expired by time and the active one has too,
//! the plan asks the log to roll it first so it can go on the next pass.

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Base offset.
    pub base: i64,
    /// Valid bytes.
    pub size: u64,
    /// Largest timestamp (i64::MIN when empty).
    pub max_timestamp: i64,
    /// Whether it holds no batch.
    pub empty: bool,
}

/// The retention limits of a log; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionLimits {
    /// Keep records at least this long (by their largest timestamp).
    pub retention_ms: Option<i64>,
    /// Keep at most about this many bytes (whole segments).
    pub retention_bytes: Option<u64>,
}

/// The outcome of planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPlan {
    /// How many of the oldest sealed segments to delete.
    pub delete_sealed: usize,
    /// Whether to roll the active segment (it expired by time and is not empty).
    pub roll_active: bool,
}

/// Plans retention over `sealed` (oldest first) and the `active` segment at time `now_ms`.
pub fn plan(
    sealed: &[SegmentSummary],
    active: SegmentSummary,
    limits: RetentionLimits,
    now_ms: i64,
) -> RetentionPlan {
    let mut by_size = 0;
    if let Some(limit) = limits.retention_bytes {
        let mut total: u64 = sealed.iter().map(|s| s.size).sum::<u64>() + active.size;
        for s in sealed {
            if total - s.size < limit {
                break;
            }
            total -= s.size;
            by_size += 1;
        }
    }
    let mut by_time = 0;
    let mut roll_active = false;
    if let Some(ms) = limits.retention_ms {
        let cutoff = now_ms.saturating_sub(ms);
        by_time = sealed
            .iter()
            .take_while(|s| s.empty || s.max_timestamp < cutoff)
            .count();
        roll_active = by_time == sealed.len() && !active.empty && active.max_timestamp < cutoff;
    }
    RetentionPlan {
        delete_sealed: by_size.max(by_time),
        roll_active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, size: u64, ts: i64) -> SegmentSummary {
        SegmentSummary {
            base,
            size,
            max_timestamp: ts,
            empty: size == 0,
        }
    }

    #[test]
    fn size_keeps_at_least_the_limit() {
        let sealed = [seg(0, 100, 1), seg(10, 100, 2), seg(20, 100, 3)];
        let active = seg(30, 50, 4);
        let limits = RetentionLimits {
            retention_bytes: Some(160),
            retention_ms: None,
        };
        // 350 bytes: dropping two segments leaves 150 < 160, so only one goes.
        assert_eq!(
            plan(&sealed, active, limits, 0),
            RetentionPlan {
                delete_sealed: 1,
                roll_active: false
            }
        );
        let limits = RetentionLimits {
            retention_bytes: Some(150),
            retention_ms: None,
        };
        assert_eq!(plan(&sealed, active, limits, 0).delete_sealed, 2);
        let limits = RetentionLimits {
            retention_bytes: Some(1),
            retention_ms: None,
        };
        assert_eq!(plan(&sealed, active, limits, 0).delete_sealed, 3);
    }

    #[test]
    fn time_stops_at_first_young_segment_and_rolls_expired_active() {
        let sealed = [seg(0, 10, 100), seg(10, 10, 500), seg(20, 10, 200)];
        let limits = RetentionLimits {
            retention_ms: Some(1000),
            retention_bytes: None,
        };
        assert_eq!(
            plan(&sealed, seg(30, 10, 900), limits, 1300).delete_sealed,
            1
        );
        let all_old = plan(&sealed, seg(30, 10, 250), limits, 5000);
        assert_eq!(
            all_old,
            RetentionPlan {
                delete_sealed: 3,
                roll_active: true
            }
        );
        assert!(!plan(&sealed, seg(30, 0, i64::MIN), limits, 5000).roll_active);
    }
}
