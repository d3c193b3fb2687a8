//! When to act: token renewal points and retry backoff, as pure functions of their inputs.
//!
//! Randomness comes in as a number in `[0, 1)` so tests can pin it; callers pass
//! `fastrand::f64()`. Nothing here sleeps or reads the clock.

use std::time::{Duration, SystemTime};

/// Fraction of a token's TTL after which it is renewed (before jitter).
pub const TOKEN_RENEWAL_FRACTION: f64 = 2.0 / 3.0;
/// Half-width of the jitter around [`TOKEN_RENEWAL_FRACTION`], as a fraction of the TTL.
pub const TOKEN_RENEWAL_JITTER: f64 = 0.05;

/// How long after receiving a token with `ttl` to renew it (or log in again): 2/3 of the TTL,
/// ± 5 % of the TTL. `random` is uniform in `[0, 1)`.
pub fn token_renewal_delay(ttl: Duration, random: f64) -> Duration {
    let fraction =
        TOKEN_RENEWAL_FRACTION + TOKEN_RENEWAL_JITTER * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    ttl.mul_f64(fraction)
}

/// The wait before retry number `attempt` (0 for the first retry): `min` doubled per attempt up
/// to `max`, then scaled by a random factor in `[0.75, 1]` so that many agents restarted together
/// do not retry in step — but never below `min`.
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, random: f64) -> Duration {
    let base = backoff_ceiling(attempt, min, max);
    base.mul_f64(0.75 + 0.25 * random.clamp(0.0, 1.0))
        .max(min.min(max))
}

/// The un-jittered wait for `attempt`: `min · 2^attempt`, capped at `max`.
pub fn backoff_ceiling(attempt: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2f64.powi(attempt.min(62) as i32);
    let secs = (min.as_secs_f64() * factor).min(max.as_secs_f64());
    Duration::from_secs_f64(secs)
}

/// Half-width of the jitter around a certificate's renewal point, as a fraction of its lifetime.
pub const CERTIFICATE_RENEWAL_JITTER: f64 = 0.05;

/// When to renew a certificate valid from `not_before` to `not_after`: at `threshold` of its
/// lifetime, ± 5 % of the lifetime (`random` uniform in `[0, 1)`), and never later than 99 % of
/// it. The result may be in the past: then renew now.
pub fn certificate_renewal_at(
    not_before: SystemTime,
    not_after: SystemTime,
    threshold: f64,
    random: f64,
) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let fraction = (threshold + CERTIFICATE_RENEWAL_JITTER * (2.0 * random.clamp(0.0, 1.0) - 1.0))
        .clamp(0.0, 0.99);
    not_before + lifetime.mul_f64(fraction)
}

/// The wait before retrying a failed renewal: the backoff's `delay`, but never more than a
/// quarter of the time the current certificate has left (and not under `floor`), so retries
/// come faster as expiry nears instead of sleeping past it.
pub fn renewal_retry_wait(delay: Duration, time_left: Duration, floor: Duration) -> Duration {
    delay.min(time_left / 4).max(floor.min(delay))
}

/// A backoff sequence: call [`Backoff::next_delay`] after each failure, [`Backoff::reset`] after
/// a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A fresh sequence between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            attempt: 0,
        }
    }

    /// The wait before the next attempt; each call moves one step up.
    pub fn next_delay(&mut self) -> Duration {
        let delay = backoff_delay(self.attempt, self.min, self.max, fastrand::f64());
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Failures so far in this sequence.
    pub fn failures(&self) -> u32 {
        self.attempt
    }

    /// Back to the first step.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn renewal_is_two_thirds_of_the_ttl_within_jitter() {
        let ttl = Duration::from_secs(24 * 3600);
        assert_eq!(token_renewal_delay(ttl, 0.5), ttl.mul_f64(2.0 / 3.0));
        let earliest = token_renewal_delay(ttl, 0.0);
        let latest = token_renewal_delay(ttl, 0.999_999);
        assert!((earliest.as_secs_f64() / ttl.as_secs_f64() - (2.0 / 3.0 - 0.05)).abs() < 1e-6);
        assert!((latest.as_secs_f64() / ttl.as_secs_f64() - (2.0 / 3.0 + 0.05)).abs() < 1e-5);
        assert!(latest < ttl);
    }

    #[test]
    fn certificates_renew_at_the_threshold_within_jitter() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(24 * 3600);
        let at = |threshold, random| {
            certificate_renewal_at(start, end, threshold, random)
                .duration_since(start)
                .unwrap()
        };
        assert_eq!(at(2.0 / 3.0, 0.5), Duration::from_secs(16 * 3600));
        assert_eq!(
            at(2.0 / 3.0, 0.0),
            Duration::from_secs(16 * 3600) - Duration::from_secs(4320)
        );
        assert!(at(2.0 / 3.0, 0.999_999) <= Duration::from_secs(16 * 3600 + 4320));
        // Vault Agent's 0.9 with full jitter still renews before expiry.
        assert!(at(0.97, 0.999_999) <= Duration::from_secs(24 * 3600).mul_f64(0.99));
        assert!(at(0.9, 0.999_999) < Duration::from_secs(24 * 3600));
    }

    #[test]
    fn renewal_retries_come_faster_near_expiry() {
        let floor = Duration::from_secs(1);
        let five_minutes = Duration::from_secs(300);
        assert_eq!(
            renewal_retry_wait(five_minutes, Duration::from_secs(8 * 3600), floor),
            five_minutes
        );
        assert_eq!(
            renewal_retry_wait(five_minutes, Duration::from_secs(600), floor),
            Duration::from_secs(150)
        );
        assert_eq!(
            renewal_retry_wait(five_minutes, Duration::from_secs(2), floor),
            floor
        );
        assert_eq!(
            renewal_retry_wait(five_minutes, Duration::ZERO, floor),
            floor,
            "expired: keep trying"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let ceilings: Vec<u64> = (0..12)
            .map(|n| backoff_ceiling(n, MIN, MAX).as_secs())
            .collect();
        assert_eq!(
            ceilings,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
        );
        assert_eq!(backoff_ceiling(u32::MAX, MIN, MAX), MAX);
    }

    #[test]
    fn backoff_jitter_stays_between_three_quarters_and_the_ceiling_never_below_min() {
        for attempt in 0..20 {
            for random in [0.0, 0.3, 0.999] {
                let delay = backoff_delay(attempt, MIN, MAX, random);
                let ceiling = backoff_ceiling(attempt, MIN, MAX);
                assert!(delay <= ceiling, "{attempt} {random}");
                assert!(
                    delay >= ceiling.mul_f64(0.75).max(MIN),
                    "{attempt} {random}"
                );
            }
        }
    }

    #[test]
    fn backoff_sequence_grows_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = backoff.next_delay();
        for _ in 0..10 {
            backoff.next_delay();
        }
        assert!(first <= Duration::from_millis(100));
        assert!(backoff.next_delay() >= Duration::from_millis(750));
        assert_eq!(backoff.failures(), 12);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
