//! When to act: token renewal points and retry backoff, as pure functions of their inputs.
//!
//! Randomness comes in as a number in `[0, 1)` so tests can pin it; callers pass
//! `fastrand::f64()`. Nothing here sleeps; the one reader of the clock is [`Clock`], the seam
//! through which tests run renewals on tokio's paused time.

use std::time::{Duration, SystemTime};

/// Fraction of a token's TTL after which it is renewed (before jitter).
pub(crate) const TOKEN_RENEWAL_FRACTION: f64 = 2.0 / 3.0;
/// Half-width of the jitter around [`TOKEN_RENEWAL_FRACTION`], as a fraction of the TTL.
pub(crate) const TOKEN_RENEWAL_JITTER: f64 = 0.05;

/// How long after receiving a token with `ttl` to renew it (or log in again): 2/3 of the TTL,
/// ± 5 % of the TTL. `random` is uniform in `[0, 1)`.
pub(crate) fn token_renewal_delay(ttl: Duration, random: f64) -> Duration {
    let fraction =
        TOKEN_RENEWAL_FRACTION + TOKEN_RENEWAL_JITTER * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    ttl.mul_f64(fraction)
}

/// The wait before retry number `attempt` (0 for the first retry): "full jitter" — uniform
/// between `min` and the ceiling `min · 2^attempt` (capped at `max`). Many agents that fail
/// together (Vault down) then come back spread over the whole of their last ceiling instead of
/// in step: a quarter-wide jitter band kept a fleet's retries, and so its return, bunched.
pub(crate) fn backoff_delay(attempt: u32, min: Duration, max: Duration, random: f64) -> Duration {
    let floor = min.min(max);
    let ceiling = backoff_ceiling(attempt, min, max);
    let span = ceiling.saturating_sub(floor).as_nanos();
    // `floor + span · random` in integers: through `f64` a span near `Duration::MAX` could round
    // above the ceiling or overflow. 32 bits of the draw are plenty for a wait.
    let draw = (random.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u128;
    let offset = span * draw / u128::from(u32::MAX);
    floor.saturating_add(Duration::new(
        (offset / 1_000_000_000) as u64,
        (offset % 1_000_000_000) as u32,
    ))
}

/// The un-jittered wait for `attempt`: `min · 2^attempt`, capped at `max`. Integer arithmetic:
/// through `f64` the product of a long `min` could round above `max` or overflow `Duration`.
pub(crate) fn backoff_ceiling(attempt: u32, min: Duration, max: Duration) -> Duration {
    let nanos = min.as_nanos().saturating_mul(1u128 << attempt.min(100));
    if nanos >= max.as_nanos() {
        return max;
    }
    // Below `max`, so the seconds fit in a u64.
    Duration::new(
        (nanos / 1_000_000_000) as u64,
        (nanos % 1_000_000_000) as u32,
    )
}

/// The widest half-width of the window around a certificate's renewal point, as a fraction of
/// its lifetime: with the default threshold of 2/3, renewals fall uniformly between 61.7 % and
/// 71.7 % of the lifetime, so a fleet started together (a rollout) renews over a tenth of it,
/// and the latest renewal leaves 28 % (6.8 h of a 24 h certificate) to ride out an outage.
/// A window of ± 1/6 was measured (BENCHMARKS.md, "Fleet") and not kept: it spread a 200-agent
/// fleet's busiest 5 s only from 3.6 to 3.2 times its mean, for a latest renewal leaving 4 h of
/// 24, and the fault suite's timings rest on this window.
pub(crate) const CERTIFICATE_RENEWAL_JITTER: f64 = 0.05;

/// The half-width of the renewal window for `threshold`: [`CERTIFICATE_RENEWAL_JITTER`], narrowed
/// so the window stays within `0..0.99` of the lifetime (`0.96` gets ± 0.03: renewals between
/// 93 % and 99 %), so that no end of it is clamped into a spike.
pub(crate) fn certificate_renewal_half_width(threshold: f64) -> f64 {
    CERTIFICATE_RENEWAL_JITTER
        .min(threshold)
        .min(0.99 - threshold)
        .max(0.0)
}

/// When to renew a certificate valid from `not_before` to `not_after`: uniformly within
/// `threshold` ± [`certificate_renewal_half_width`] of its lifetime (`random` uniform in
/// `[0, 1)`), and never later than 99 % of it. The result may be in the past: then renew now.
pub(crate) fn certificate_renewal_at(
    not_before: SystemTime,
    not_after: SystemTime,
    threshold: f64,
    random: f64,
) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let half_width = certificate_renewal_half_width(threshold);
    let fraction = (threshold + half_width * (2.0 * random.clamp(0.0, 1.0) - 1.0)).clamp(0.0, 0.99);
    not_before + lifetime.mul_f64(fraction)
}

/// The wait before retrying a failed renewal while the current certificate is still valid.
///
/// A renewal counts as failed only after its Vault call has worked through its own retries
/// (seconds of them), so what the runner sees is an outage or a refusal, not a blip, and
/// nothing is urgent while much of the lifetime is left. The wait is drawn (`random` in
/// `[0, 1]`) uniformly in the upper half of a ceiling: a quarter of the time left, at most
/// `max` (`max_backoff`), at least `floor` (`min_backoff`). Agents whose renewals fell due
/// during an outage then come back spread over that share of their lifetime, instead of
/// together on short, growing backoffs (a doubling backoff sends the agents that failed last,
/// which have the shortest waits, to a returning Vault first, and they are many); and retries
/// quicken as expiry nears.
pub(crate) fn renewal_retry_wait(
    time_left: Duration,
    floor: Duration,
    max: Duration,
    random: f64,
) -> Duration {
    let ceiling = (time_left / 4).min(max).max(floor);
    let low = (ceiling / 2).max(floor);
    low.saturating_add((ceiling - low).mul_f64(random.clamp(0.0, 1.0)))
        .min(ceiling)
}

/// The wait before retrying a failed render: [`renewal_retry_wait`] while the certificate it
/// renews is still valid (`random` draws it), else the next step of `backoff`
/// (`min_backoff`..`max_backoff` in `bounds`, with its own jitter). Only failures without a
/// valid certificate move `backoff` on, so a certificate that expires during a long outage
/// starts the doubling backoff from its first step, not from the step the spread waits would
/// have counted up to (`max_backoff`, minutes, after a dozen).
pub(crate) fn render_retry_wait(
    backoff: &mut Backoff,
    time_left: Option<Duration>,
    (floor, max): (Duration, Duration),
    random: f64,
) -> Duration {
    match time_left {
        Some(left) => renewal_retry_wait(left, floor, max, random),
        None => backoff.next_delay(),
    }
}

/// A backoff sequence: call [`Backoff::next_delay`] after each failure, [`Backoff::reset`] after
/// a success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A fresh sequence between `min` and `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            attempt: 0,
        }
    }

    /// The wait before the next attempt; each call moves one step up.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = backoff_delay(self.attempt, self.min, self.max, fastrand::f64());
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Failures so far in this sequence.
    pub(crate) fn failures(&self) -> u32 {
        self.attempt
    }

    /// Back to the first step.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The wall clock the agent judges certificates by (they live by the calendar). Deadlines
/// use tokio's monotonic [`tokio::time::Instant`]; a test that pauses tokio's time gets a wall
/// clock that follows it, so hours of renewals run in milliseconds and agree with the sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system's clock.
    System,
    /// `wall` at the tokio instant `start`, advancing with tokio's clock.
    FollowsTokio {
        /// The wall time `start` stands for.
        wall: SystemTime,
        /// The tokio instant the clock was made at.
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A wall clock that reads `wall` now and advances with tokio's (possibly paused) clock.
    pub fn following_tokio(wall: SystemTime) -> Clock {
        Clock::FollowsTokio {
            wall,
            start: tokio::time::Instant::now(),
        }
    }

    /// The time now.
    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::FollowsTokio { wall, start } => *wall + start.elapsed(),
        }
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
        // 2/3 ± 5 %: between 61.7 % and 71.7 % of a 24 h certificate.
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(at(2.0 / 3.0, 0.0), day.mul_f64(2.0 / 3.0 - 0.05));
        assert!(at(2.0 / 3.0, 0.999_999) <= day.mul_f64(2.0 / 3.0 + 0.05));
        assert!(at(2.0 / 3.0, 0.999_999) > day.mul_f64(2.0 / 3.0 + 0.05) - Duration::from_secs(1));
        // Near 99 % the window narrows, so it ends at 99 %, not past it.
        assert_eq!(at(0.96, 0.0), day.mul_f64(0.93));
        assert!(at(0.96, 0.999_999) <= day.mul_f64(0.99));
        assert!(at(0.97, 0.999_999) <= day.mul_f64(0.99));
        // A low threshold: the window starts at issue, not before it.
        assert_eq!(at(0.02, 0.0), Duration::ZERO);
        assert_eq!(at(0.1, 0.5), Duration::from_secs(24 * 360));
    }

    #[test]
    fn a_fleet_started_together_renews_over_a_tenth_of_the_lifetime() {
        // 600 agents issued the same 10-minute certificate at the same moment, their draws
        // evenly spread: their renewals fill 370 s..430 s, about as many in each 5 s.
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(600);
        let mut per_five_seconds = [0u32; 120];
        for i in 0..600 {
            let at = certificate_renewal_at(start, end, 2.0 / 3.0, f64::from(i) / 600.0);
            let offset = at.duration_since(start).unwrap().as_secs();
            assert!((370..430).contains(&offset), "{offset}");
            per_five_seconds[(offset / 5) as usize] += 1;
        }
        let average = 600.0 / (60.0 / 5.0);
        let busiest = f64::from(*per_five_seconds.iter().max().unwrap());
        assert!(
            busiest <= 2.0 * average,
            "{busiest} in 5 s, average {average}"
        );
    }

    #[test]
    fn a_certificate_expiring_in_an_outage_starts_its_backoff_from_the_first_step() {
        let bounds = (Duration::from_secs(1), Duration::from_secs(300));
        let mut backoff = Backoff::new(bounds.0, bounds.1);
        // A dozen failed renewals while the certificate was valid: spread waits, each a share
        // of the time left; the doubling backoff is not touched.
        for left in (1..=12).rev() {
            let left = Duration::from_secs(20 * left);
            let wait = render_retry_wait(&mut backoff, Some(left), bounds, 0.5);
            assert_eq!(wait, renewal_retry_wait(left, bounds.0, bounds.1, 0.5));
        }
        assert_eq!(backoff.failures(), 0);
        // Expired: the first retry waits min_backoff, the next at most twice that; not
        // max_backoff.
        let first = render_retry_wait(&mut backoff, None, bounds, 1.0);
        assert_eq!(first, Duration::from_secs(1));
        assert_eq!(backoff.failures(), 1);
        // (The doubling backoff draws its own jitter.)
        let second = render_retry_wait(&mut backoff, None, bounds, 1.0);
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&second),
            "{second:?}"
        );
    }

    #[test]
    fn renewal_windows_stay_inside_the_lifetime() {
        assert!((certificate_renewal_half_width(2.0 / 3.0) - 0.05).abs() < 1e-12);
        assert!((certificate_renewal_half_width(0.96) - 0.03).abs() < 1e-12);
        assert!((certificate_renewal_half_width(0.02) - 0.02).abs() < 1e-12);
        assert_eq!(certificate_renewal_half_width(0.99), 0.0);
        assert_eq!(certificate_renewal_half_width(-1.0), 0.0);
        assert_eq!(certificate_renewal_half_width(2.0), 0.0);
    }

    #[test]
    fn renewal_retries_spread_over_a_share_of_the_time_left_and_quicken_near_expiry() {
        let floor = Duration::from_secs(1);
        let five_minutes = Duration::from_secs(300);
        let wait = |left: u64, random: f64| {
            renewal_retry_wait(Duration::from_secs(left), floor, five_minutes, random)
        };
        // 8 h left: max_backoff is the ceiling, the wait in its upper half.
        assert_eq!(wait(8 * 3600, 0.0), Duration::from_secs(150));
        assert_eq!(wait(8 * 3600, 1.0), five_minutes);
        // A 10-minute certificate renewed at 2/3 (200 s left): 25-50 s.
        assert_eq!(wait(200, 0.0), Duration::from_secs(25));
        assert_eq!(wait(200, 0.5), Duration::from_millis(37_500));
        assert_eq!(wait(200, 1.0), Duration::from_secs(50));
        // Near expiry and past it: min_backoff.
        assert_eq!(wait(2, 0.7), floor);
        assert_eq!(wait(0, 0.3), floor, "expired: keep trying");
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
    fn backoff_jitter_is_full_between_min_and_the_ceiling() {
        for attempt in 0..20 {
            let ceiling = backoff_ceiling(attempt, MIN, MAX);
            for random in [0.0, 0.001, 0.3, 0.5, 0.999, 1.0] {
                let delay = backoff_delay(attempt, MIN, MAX, random);
                assert!(delay <= ceiling, "{attempt} {random}");
                assert!(delay >= MIN, "{attempt} {random}");
            }
            // The draw's ends reach the range's ends: the lowest draw waits `min`, the highest
            // the ceiling (within the draw's 32-bit resolution).
            assert_eq!(backoff_delay(attempt, MIN, MAX, 0.0), MIN);
            assert_eq!(backoff_delay(attempt, MIN, MAX, 1.0), ceiling);
        }
        // Attempt 5 (ceiling 32 s): the middle draw waits halfway between 1 s and 32 s.
        let middle = backoff_delay(5, MIN, MAX, 0.5).as_secs_f64();
        assert!((middle - 16.5).abs() < 1e-6, "{middle}");
        // Once capped, the spread covers min..max: a fleet failing together comes back over
        // five minutes, not over the top quarter of them.
        assert!(backoff_delay(20, MIN, MAX, 0.1) < Duration::from_secs(31));
        assert!(backoff_delay(20, MIN, MAX, 0.9) > Duration::from_secs(269));
    }

    #[test]
    fn backoff_spreads_a_fleet_failing_together() {
        // 1,000 agents that failed at the same moment, their draws evenly spread: their next
        // attempts at the fourth retry (ceiling 8 s) fill every second of 1..8 s, none above 8 s.
        let mut per_second = [0u32; 9];
        for i in 0..1000 {
            let delay = backoff_delay(3, MIN, MAX, f64::from(i) / 1000.0);
            per_second[delay.as_secs() as usize] += 1;
        }
        assert_eq!(per_second[0], 0, "below min");
        for (second, count) in per_second.iter().enumerate().take(8).skip(1) {
            assert!((130..=155).contains(count), "{second} s: {count} of 1000");
        }
        assert!(
            per_second[8] <= 1,
            "at most the draw 1.0 reaches the ceiling"
        );
    }

    #[test]
    fn backoff_never_rounds_above_max_nor_overflows() {
        // Found by the properties below: through f64, min · 2^n for a long min came out a few
        // nanoseconds above max, and mul_f64 near Duration::MAX panicked.
        let min = Duration::new(103_673_644, 528_923_147);
        let max = min + Duration::new(164_761_812, 54_943_837);
        assert_eq!(backoff_ceiling(2, min, max), max);
        assert_eq!(backoff_delay(2, min, max, 1.0), max);
        let huge = Duration::new(10_000_000_000_000_000_000, 0);
        assert_eq!(backoff_ceiling(1, huge, Duration::MAX), Duration::MAX);
        assert!(backoff_delay(1, huge, Duration::MAX, 0.5) <= Duration::MAX);
        assert_eq!(
            backoff_delay(1, Duration::MAX, Duration::MAX, 1.0),
            Duration::MAX
        );
    }

    #[test]
    fn backoff_sequence_grows_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = backoff.next_delay();
        for _ in 0..10 {
            let delay = backoff.next_delay();
            assert!(delay >= Duration::from_millis(100) && delay <= Duration::from_secs(1));
        }
        assert_eq!(
            first,
            Duration::from_millis(100),
            "the first ceiling is min"
        );
        assert_eq!(backoff.failures(), 11);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    /// Properties over the whole input space, including durations no config would write.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Any duration at all, nanoseconds included.
        fn any_duration() -> impl Strategy<Value = Duration> {
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))
        }

        /// Durations a config or Vault can produce: up to ten years.
        fn realistic_duration() -> impl Strategy<Value = Duration> {
            (0u64..10 * 365 * 86400, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))
        }

        fn random() -> impl Strategy<Value = f64> {
            0.0f64..1.0
        }

        /// A point in time between 1970 and ~2106.
        fn instant() -> impl Strategy<Value = SystemTime> {
            (0u64..u32::MAX as u64).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s))
        }

        use std::time::UNIX_EPOCH;

        proptest! {
            #[test]
            fn token_renewal_is_before_expiry_within_jitter(ttl in any_duration(), r in random()) {
                let delay = token_renewal_delay(ttl, r);
                prop_assert!(delay <= ttl);
                if !ttl.is_zero() {
                    prop_assert!(delay < ttl, "renewing at or after expiry: {delay:?} of {ttl:?}");
                }
                let low = TOKEN_RENEWAL_FRACTION - TOKEN_RENEWAL_JITTER;
                let high = TOKEN_RENEWAL_FRACTION + TOKEN_RENEWAL_JITTER;
                // f64 has 53 bits: allow a relative error of 1e-12 around the bounds.
                let ratio = delay.as_secs_f64() / ttl.as_secs_f64().max(f64::MIN_POSITIVE);
                if ttl >= Duration::from_micros(1) {
                    prop_assert!(ratio >= low - 1e-9 && ratio <= high + 1e-9, "{ratio}");
                }
            }

            #[test]
            fn token_renewal_grows_with_the_random_draw(
                ttl in realistic_duration(), a in random(), b in random()
            ) {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                prop_assert!(token_renewal_delay(ttl, a) <= token_renewal_delay(ttl, b));
            }

            #[test]
            fn certificates_renew_after_issue_and_before_expiry(
                not_before in instant(),
                lifetime in realistic_duration(),
                threshold in 0.0f64..1.0,
                r in random(),
            ) {
                let not_after = not_before + lifetime;
                let at = certificate_renewal_at(not_before, not_after, threshold, r);
                prop_assert!(at >= not_before, "renewal before issue");
                prop_assert!(at <= not_before + lifetime.mul_f64(0.99));
                if !lifetime.is_zero() {
                    prop_assert!(at < not_after, "renewal at or after expiry");
                }
                // Within the window around the threshold, never wider than ± 5 % of the lifetime.
                let offset = at.duration_since(not_before).unwrap().as_secs_f64();
                let target = threshold * lifetime.as_secs_f64();
                let half_width = certificate_renewal_half_width(threshold);
                prop_assert!(half_width <= CERTIFICATE_RENEWAL_JITTER);
                let jitter = half_width * lifetime.as_secs_f64();
                let slack = 1e-9 + lifetime.as_secs_f64() * 1e-12;
                let latest = 0.99 * lifetime.as_secs_f64();
                prop_assert!(offset >= (target - jitter).max(0.0).min(latest) - slack, "{offset} < {target} - {jitter}");
                prop_assert!(offset <= target + jitter + slack, "{offset} > {target} + {jitter}");
            }

            #[test]
            fn certificates_with_any_threshold_still_renew_inside_their_validity(
                not_before in instant(),
                lifetime in realistic_duration(),
                threshold in -10.0f64..10.0,
                r in random(),
            ) {
                let not_after = not_before + lifetime;
                let at = certificate_renewal_at(not_before, not_after, threshold, r);
                prop_assert!(at >= not_before && at <= not_after);
            }

            #[test]
            fn a_certificate_ending_before_it_starts_renews_at_its_start(
                not_after in instant(), back in realistic_duration(),
                threshold in 0.0f64..1.0, r in random(),
            ) {
                let not_before = not_after + back;
                prop_assert_eq!(certificate_renewal_at(not_before, not_after, threshold, r), not_before);
            }

            #[test]
            fn backoff_stays_between_its_envelopes(
                attempt in 0u32..80,
                min in realistic_duration(),
                extra in realistic_duration(),
                r in random(),
            ) {
                let max = min + extra;
                let ceiling = backoff_ceiling(attempt, min, max);
                let delay = backoff_delay(attempt, min, max, r);
                prop_assert!(ceiling <= max, "ceiling {ceiling:?} above max {max:?}");
                prop_assert!(ceiling >= min, "ceiling {ceiling:?} below min {min:?}");
                prop_assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
                prop_assert!(delay >= min, "{delay:?} < min {min:?}");
            }

            #[test]
            fn backoff_grows_with_the_random_draw(
                attempt in 0u32..80,
                min in realistic_duration(),
                extra in realistic_duration(),
                a in random(),
                b in random(),
            ) {
                let max = min + extra;
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                prop_assert!(backoff_delay(attempt, min, max, a) <= backoff_delay(attempt, min, max, b));
            }

            #[test]
            fn backoff_envelopes_are_monotone_and_reach_the_cap(
                attempt in 0u32..80,
                min in realistic_duration(),
                extra in realistic_duration(),
            ) {
                let max = min + extra;
                let lower = |n| backoff_delay(n, min, max, 0.0);
                let upper = |n| backoff_ceiling(n, min, max);
                prop_assert!(upper(attempt) <= upper(attempt + 1));
                prop_assert!(lower(attempt) <= lower(attempt + 1));
                prop_assert_eq!(upper(0), min);
                // A zero min never grows (the config refuses min_backoff = 0); any other
                // reaches max within 64 doublings, whatever the durations.
                if !min.is_zero() {
                    prop_assert_eq!(upper(u32::MAX), max);
                    prop_assert_eq!(upper(64 + attempt), max);
                }
            }

            #[test]
            fn backoff_never_panics_nor_exceeds_max(
                attempt in any::<u32>(),
                min in any_duration(),
                max in any_duration(),
                r in random(),
            ) {
                let delay = backoff_delay(attempt, min, max, r);
                prop_assert!(delay <= max.max(min));
                prop_assert!(backoff_ceiling(attempt, min, max) <= max);
            }

            #[test]
            fn backoff_sequence_follows_the_envelopes(
                min in 1u64..60_000, extra in 0u64..600_000, steps in 1usize..40,
            ) {
                let min = Duration::from_millis(min);
                let max = min + Duration::from_millis(extra);
                let mut backoff = Backoff::new(min, max);
                for n in 0..steps {
                    let delay = backoff.next_delay();
                    let ceiling = backoff_ceiling(n as u32, min, max);
                    prop_assert!(delay <= ceiling && delay >= min);
                }
                prop_assert_eq!(backoff.failures() as usize, steps);
            }

            #[test]
            fn renewal_retries_never_sleep_past_a_quarter_of_what_is_left(
                time_left in realistic_duration(), floor in realistic_duration(),
                extra in realistic_duration(), random in 0.0f64..=1.0,
            ) {
                let max = floor.saturating_add(extra);
                let wait = renewal_retry_wait(time_left, floor, max, random);
                let ceiling = (time_left / 4).min(max).max(floor);
                prop_assert!(wait >= floor);
                prop_assert!(wait <= ceiling);
                prop_assert!(wait >= ceiling / 2);
            }
        }
    }
}
