//! Request rate limits per client address, as nginx's `limit_req` counts them: a leaky bucket per
//! address in each zone, drained at the zone's rate.
//!
//! nginx keeps, per key, the requests in excess (in thousandths) and when the last one was let
//! through. A request adds one to the excess after the time since then has drained
//! `rate × elapsed`; past `burst` it is refused (and counts for nothing), else it is let through,
//! at once with `nodelay` or when the excess is within `delay`, otherwise held until the bucket
//! has drained down to `delay`. Several limits on one request are all checked first; the request
//! is refused if one refuses, and else counted in every zone and held for the longest wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Addresses kept per zone before those whose bucket has drained are dropped.
const TRIM_AT: usize = 100_000;

/// One zone: a rate, and a bucket per client address.
pub(crate) struct Zone {
    /// Requests per second, in thousandths (nginx's unit: `5r/s` is 5000, `30r/m` is 500).
    rate: u64,
    started: Instant,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Requests in excess, in thousandths.
    excess: u64,
    /// Milliseconds since the zone started, when the last request was let through.
    last: u64,
}

/// One `limit_req`: a zone and how far past its rate a client may go.
#[derive(Clone)]
pub(crate) struct Limit {
    pub zone: Arc<Zone>,
    /// Requests beyond the rate kept waiting (or let through, with `nodelay`) before refusals.
    pub burst: u64,
    /// Of those, how many go through at once (`nodelay`: all of them).
    pub delay: u64,
}

/// What the limits say of a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Forward it after this wait (zero: at once).
    Pass(Duration),
    Refuse,
}

impl Zone {
    /// A zone of `rate` requests per second, in thousandths.
    pub(crate) fn new(rate: u64) -> Zone {
        Zone {
            rate: rate.max(1),
            started: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The excess a request would make at `now`, after `bucket`.
    fn excess(&self, bucket: Option<Bucket>, now: u64) -> u64 {
        match bucket {
            None => 0,
            Some(bucket) => {
                // nginx's arithmetic: what is left after draining, plus this request, at least
                // nothing.
                let drained = self.rate.saturating_mul(now.saturating_sub(bucket.last)) / 1000;
                (bucket.excess + 1000).saturating_sub(drained)
            }
        }
    }
}

/// Checks `client`'s request against `limits`; a request let through is counted in each.
pub(crate) fn check(limits: &[Limit], client: IpAddr) -> Verdict {
    let mut planned = Vec::with_capacity(limits.len());
    for limit in limits {
        let zone = &limit.zone;
        let now = zone.now();
        let bucket = lock(&zone.buckets).get(&client).copied();
        let excess = zone.excess(bucket, now);
        if excess > limit.burst * 1000 {
            return Verdict::Refuse;
        }
        planned.push((zone, now, excess));
    }
    let mut wait = Duration::ZERO;
    for (limit, (zone, now, excess)) in limits.iter().zip(planned) {
        let mut buckets = lock(&zone.buckets);
        if buckets.len() >= TRIM_AT {
            let rate = zone.rate;
            buckets
                .retain(|_, b| rate.saturating_mul(now.saturating_sub(b.last)) / 1000 < b.excess);
        }
        buckets.insert(client, Bucket { excess, last: now });
        let allowed = limit.delay.saturating_mul(1000);
        if excess > allowed {
            wait = wait.max(Duration::from_millis((excess - allowed) * 1000 / zone.rate));
        }
    }
    Verdict::Pass(wait)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate: &str, burst: u64, delay: u64) -> Limit {
        Limit {
            zone: Arc::new(Zone::new(crate::config::request_rate(rate).unwrap())),
            burst,
            delay,
        }
    }

    #[test]
    fn a_burst_is_let_through_and_then_refused_per_address() {
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        // One a minute, three more at once (`nodelay`), then refusals.
        let limits = [limit("1r/m", 3, 3)];
        for _ in 0..4 {
            assert_eq!(check(&limits, client), Verdict::Pass(Duration::ZERO));
        }
        assert_eq!(check(&limits, client), Verdict::Refuse);
        assert_eq!(check(&limits, client), Verdict::Refuse);
        assert_eq!(check(&limits, other), Verdict::Pass(Duration::ZERO));
        // Without a burst, the second request within the period is refused.
        let strict = [limit("1r/m", 0, 0)];
        assert_eq!(check(&strict, client), Verdict::Pass(Duration::ZERO));
        assert_eq!(check(&strict, client), Verdict::Refuse);
    }

    #[test]
    fn requests_within_the_burst_wait_for_their_turn_without_nodelay() {
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        // One a minute: the second request waits about a minute, the third two (a rate this
        // slow leaves the test's own pace out of it); with a delay of one, the second goes at
        // once and the third waits.
        let limits = [limit("1r/m", 5, 0)];
        assert_eq!(check(&limits, client), Verdict::Pass(Duration::ZERO));
        let Verdict::Pass(second) = check(&limits, client) else {
            panic!("refused");
        };
        let Verdict::Pass(third) = check(&limits, client) else {
            panic!("refused");
        };
        assert!(
            second > Duration::from_secs(55) && second <= Duration::from_secs(63),
            "{second:?}"
        );
        assert!(third > second + Duration::from_secs(55), "{third:?}");
        let two_stage = [limit("1r/m", 5, 1)];
        assert_eq!(check(&two_stage, client), Verdict::Pass(Duration::ZERO));
        assert_eq!(check(&two_stage, client), Verdict::Pass(Duration::ZERO));
        assert!(matches!(check(&two_stage, client), Verdict::Pass(w) if w > Duration::ZERO));
    }

    #[test]
    fn a_request_one_limit_refuses_counts_in_none() {
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        let loose = limit("1r/m", 10, 10);
        let strict = limit("1r/m", 0, 0);
        let both = [loose.clone(), strict];
        assert_eq!(check(&both, client), Verdict::Pass(Duration::ZERO));
        assert_eq!(check(&both, client), Verdict::Refuse);
        // The refused one did not fill the loose zone: nine more fit there alone.
        let alone = [loose];
        for _ in 0..10 {
            assert_eq!(check(&alone, client), Verdict::Pass(Duration::ZERO));
        }
        assert_eq!(check(&alone, client), Verdict::Refuse);
    }
}
