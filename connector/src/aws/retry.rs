//! How long to wait before retrying a throttled or failed call.

use super::errors::ErrorKind;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub throttle_base: Duration,
    pub transient_base: Duration,
    pub max_backoff: Duration,
    /// The most we wait because the server asked us to.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    // AWS's 2026 standard retry numbers (1 s throttle base, 50 ms transient base, 20 s cap)
    // with more attempts: a sync is a batch job, and giving up costs a whole re-run.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            throttle_base: Duration::from_secs(1),
            transient_base: Duration::from_millis(50),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub fn retryable(kind: ErrorKind) -> bool {
        matches!(kind, ErrorKind::Throttle | ErrorKind::Transient)
    }

    /// The wait before retry number `retry` (1-based): exponential, capped, with jitter in
    /// [half, full] so that a server's retry-after is a floor we never undercut.
    pub fn delay(
        &self,
        kind: ErrorKind,
        retry: u32,
        retry_after: Option<Duration>,
        random: u64,
    ) -> Duration {
        let base = if kind == ErrorKind::Throttle {
            self.throttle_base
        } else {
            self.transient_base
        };
        let exp = base
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20))
            .min(self.max_backoff);
        let half = exp / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(random % (half.as_nanos() as u64 + 1))
        };
        let computed = half + jitter;
        match retry_after {
            Some(asked) => computed.max(asked.min(self.max_retry_after)),
            None => computed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let d1 = p.delay(ErrorKind::Throttle, 1, None, u64::MAX);
        assert!(
            d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1),
            "{d1:?}"
        );
        let d3 = p.delay(ErrorKind::Throttle, 3, None, 0);
        assert_eq!(d3, Duration::from_secs(2));
        assert!(p.delay(ErrorKind::Throttle, 30, None, u64::MAX) <= Duration::from_secs(20));
        assert!(p.delay(ErrorKind::Transient, 1, None, u64::MAX) <= Duration::from_millis(50));
        let asked = p.delay(ErrorKind::Throttle, 1, Some(Duration::from_secs(7)), 0);
        assert_eq!(asked, Duration::from_secs(7));
        let capped = p.delay(ErrorKind::Throttle, 1, Some(Duration::from_secs(3600)), 0);
        assert_eq!(capped, Duration::from_secs(60));
    }
}
