//! [`RetryPolicy`]: when a failed delivery is tried again, and when it is given up.

use std::time::Duration;

/// When to retry a failed delivery and when to give up.
///
/// The `n`th retry waits `base × 2ⁿ⁻¹`, capped at `max`, less up to a tenth at random (so
/// instances that failed together do not retry together); a `Retry-After` from the receiver
/// (seconds) is honoured up to `max`. A delivery is given up `give_up_after` its creation, or
/// after `client_error_attempts` attempts answered with a 4xx other than 408 and 429 (a
/// receiver that refuses the request will keep refusing it).
///
/// ```
/// use std::time::Duration;
/// use tollgate_notify::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.base, Duration::from_secs(5));
/// assert_eq!(policy.delay(1, 0.0), Duration::from_secs(5));
/// assert_eq!(policy.delay(3, 0.0), Duration::from_secs(20));
/// assert_eq!(policy.delay(30, 0.0), Duration::from_secs(15 * 60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first retry's delay (5 s).
    pub base: Duration,
    /// The longest delay (15 min).
    pub max: Duration,
    /// How long after its creation a delivery is given up (24 h).
    pub give_up_after: Duration,
    /// How many attempts answered with a client error (4xx but 408/429) before giving up (3).
    pub client_error_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max: Duration::from_secs(15 * 60),
            give_up_after: Duration::from_secs(24 * 3600),
            client_error_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// This policy with the first retry after `base`.
    #[must_use]
    pub fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// This policy with delays capped at `max`.
    #[must_use]
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// This policy giving up `after` a delivery's creation.
    #[must_use]
    pub fn with_give_up_after(mut self, after: Duration) -> Self {
        self.give_up_after = after;
        self
    }

    /// The delay after attempt `attempts` (1 for the first) failed; `jitter` in `[0, 1)` takes
    /// up to a tenth off.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let delay = self
            .base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        delay.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 10.0)
    }
}
