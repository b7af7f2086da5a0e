//! Keeps the connector within a service's request rate instead of relying on throttling:
//! IAM Identity Center (Identity Store and SSO Admin together) allows 20 requests per
//! second per account, shared with everything else the customer runs against it.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

/// A rate with a burst allowance (the generic cell rate algorithm): requests may go
/// `burst` at once, and on average one per `interval`.
pub struct Pacer {
    interval: Duration,
    burst: u32,
    /// When the next request would be due if requests went exactly one per interval.
    due: Cell<Option<SystemTime>>,
}

/// Identity Center's documented quota is 20 requests per second for its APIs together.
pub const IDENTITY_CENTER_PER_SECOND: u32 = 20;

impl Pacer {
    pub fn new(per_second: u32, burst: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / per_second.max(1),
            burst: burst.max(1),
            due: Cell::new(None),
        }
    }

    pub fn identity_center() -> Pacer {
        Pacer::new(
            IDENTITY_CENTER_PER_SECOND,
            crate::aws::client::MAX_IN_FLIGHT as u32,
        )
    }

    /// How many requests could be sent at `now` without waiting.
    pub fn available(&self, now: SystemTime) -> usize {
        let tolerance = self.interval * (self.burst - 1);
        let due = self.due.get().unwrap_or(now).max(now);
        match (now + tolerance).duration_since(due) {
            Ok(slack) => (slack.as_nanos() / self.interval.as_nanos()) as usize + 1,
            Err(_) => 0,
        }
    }

    /// Books `n` requests to be sent together at `now`; returns how long to wait first.
    pub fn reserve(&self, now: SystemTime, n: usize) -> Duration {
        let tolerance = self.interval * (self.burst - 1);
        let mut due = self.due.get().unwrap_or(now).max(now);
        let mut wait = Duration::ZERO;
        for _ in 0..n {
            let earliest = due.checked_sub(tolerance).unwrap_or(due);
            wait = wait.max(earliest.duration_since(now).unwrap_or_default());
            due += self.interval;
        }
        self.due.set(Some(due));
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_and_the_average_holds() {
        let p = Pacer::new(20, 8);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(p.reserve(t0, 8), Duration::ZERO, "the first burst is free");
        // The next eight wait until the first eight have used up their 50 ms each.
        assert_eq!(p.reserve(t0, 8), Duration::from_millis(400));
        // 100 requests in a row take at least 100 / 20 s, less the burst.
        let p = Pacer::new(20, 8);
        let mut now = t0;
        for _ in 0..100 {
            now += p.reserve(now, 1);
        }
        assert_eq!(
            now.duration_since(t0).unwrap(),
            Duration::from_millis(4_600)
        );
    }

    #[test]
    fn available_counts_what_may_go_without_waiting() {
        let p = Pacer::new(20, 8);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(p.available(t0), 8);
        p.reserve(t0, 5);
        assert_eq!(p.available(t0), 3);
        p.reserve(t0, 3);
        assert_eq!(p.available(t0), 0);
        assert_eq!(p.available(t0 + Duration::from_millis(100)), 2);
    }

    #[test]
    fn an_idle_pacer_forgets_its_debt() {
        let p = Pacer::new(20, 8);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        p.reserve(t0, 8);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.reserve(later, 8), Duration::ZERO);
    }
}
