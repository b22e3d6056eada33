//! Pacing: offer events evenly at a target rate.
//!
//! The schedule is absolute (event k is due at `origin + k / rate`), so short stalls are made
//! up rather than lost; but a stall longer than [`MAX_DEBT`] (e.g. the server stopped reading
//! for a while) is forgiven instead of being paid back as one huge burst, which would
//! measure the burst rather than the target rate.

use std::time::Duration;

use tokio::time::Instant;

/// Longest backlog the pacer lets the sender catch up on.
pub const MAX_DEBT: Duration = Duration::from_secs(1);

/// Evenly paced event schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    events_per_second: f64,
    origin: Instant,
    offered: u64,
    max_debt_events: u64,
    forgiven: u64,
}

impl Pacer {
    /// A schedule at `events_per_second` (positive, finite) starting at `origin`.
    pub fn new(events_per_second: f64, origin: Instant) -> Self {
        let max_debt_events = (events_per_second * MAX_DEBT.as_secs_f64()).ceil().max(1.0) as u64;
        Self {
            events_per_second,
            origin,
            offered: 0,
            max_debt_events,
            forgiven: 0,
        }
    }

    /// Events due by `now` on the schedule.
    fn due_by(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_secs_f64();
        (elapsed * self.events_per_second).floor() as u64
    }

    /// How many events may be offered at `now` (forgiving a backlog beyond [`MAX_DEBT`]).
    pub fn allowance(&mut self, now: Instant) -> u64 {
        let due = self.due_by(now);
        if due > self.offered + self.max_debt_events {
            let skipped = due - self.max_debt_events - self.offered;
            self.forgiven += skipped;
            self.offered += skipped;
        }
        due.saturating_sub(self.offered)
    }

    /// Record that `events` were offered.
    pub fn record(&mut self, events: u64) {
        self.offered += events;
    }

    /// When the next event becomes due.
    pub fn next_due(&self) -> Instant {
        let seconds = (self.offered + 1) as f64 / self.events_per_second;
        self.origin + Duration::from_secs_f64(seconds)
    }

    /// Events the schedule skipped because the sender fell too far behind.
    pub fn forgiven(&self) -> u64 {
        self.forgiven
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_follows_the_schedule() {
        let origin = Instant::now();
        let mut pacer = Pacer::new(1_000.0, origin);
        assert_eq!(pacer.allowance(origin), 0);
        assert_eq!(pacer.allowance(origin + Duration::from_millis(10)), 10);
        pacer.record(10);
        assert_eq!(pacer.allowance(origin + Duration::from_millis(10)), 0);
        assert_eq!(pacer.next_due(), origin + Duration::from_millis(11));
        assert_eq!(pacer.allowance(origin + Duration::from_millis(25)), 15);
    }

    #[test]
    fn fractional_rates_accumulate() {
        let origin = Instant::now();
        let mut pacer = Pacer::new(2.5, origin);
        assert_eq!(pacer.allowance(origin + Duration::from_millis(399)), 0);
        assert_eq!(pacer.allowance(origin + Duration::from_millis(400)), 1);
        pacer.record(1);
        assert_eq!(pacer.allowance(origin + Duration::from_millis(1_200)), 2);
    }

    #[test]
    fn long_stalls_are_forgiven_not_burst() {
        let origin = Instant::now();
        let mut pacer = Pacer::new(100.0, origin);
        // 10 s late: at most one second's worth may be caught up.
        assert_eq!(pacer.allowance(origin + Duration::from_secs(10)), 100);
        assert_eq!(pacer.forgiven(), 900);
        pacer.record(100);
        assert_eq!(pacer.allowance(origin + Duration::from_secs(10)), 0);
        assert_eq!(
            pacer.allowance(origin + Duration::from_millis(10_050)),
            5,
            "the schedule continues from the forgiven point"
        );
    }

    proptest::proptest! {
        #[test]
        fn offered_never_exceeds_schedule(rate in 1.0f64..1e6, steps in proptest::collection::vec(0u64..50_000, 1..40)) {
            let origin = Instant::now();
            let mut pacer = Pacer::new(rate, origin);
            let mut at = origin;
            let mut total = 0u64;
            for step in steps {
                at += Duration::from_micros(step);
                let allowed = pacer.allowance(at);
                pacer.record(allowed);
                total += allowed;
                let elapsed = at.duration_since(origin).as_secs_f64();
                proptest::prop_assert!(total as f64 <= elapsed * rate + 1.0);
            }
        }
    }
}
