//! `concurrency_limits` (nginx's `limit_conn`): requests in flight counted per client address
//! (or for the whole server) in named zones, a request beyond a limit refused.
//!
//! A request is counted in each zone of its location's limits once its location is known,
//! before its access checks (nginx's preaccess phase), and stays counted until its response
//! ends or is dropped (an HTTP/2 stream reset, a client gone): [`Held`] travels with the response
//! body. A zone's counts are behind one lock, taken twice a request and only by routes that
//! have limits.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use crate::config::ConcurrencyKey;

/// One `concurrency_limit_zones` zone: requests in flight per key.
pub(crate) struct Zone {
    key: ConcurrencyKey,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

impl Zone {
    pub(crate) fn new(key: ConcurrencyKey) -> Zone {
        Zone {
            key,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The count `ip`'s requests fall in.
    fn key_of(&self, ip: IpAddr) -> IpAddr {
        match self.key {
            ConcurrencyKey::Address => ip,
            ConcurrencyKey::Server => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }

    fn release(&self, key: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }
}

/// One limit of a location: a zone and the most requests in flight per its key.
pub(crate) struct Limit {
    pub zone: Arc<Zone>,
    pub max: u32,
}

/// A request's place in the zones that count it, given back when dropped.
pub(crate) struct Held {
    taken: Vec<(Arc<Zone>, IpAddr)>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for (zone, key) in &self.taken {
            zone.release(*key);
        }
    }
}

/// Counts a request from `ip` in every zone of `limits`, in order: `None` when one of them is
/// full (the request is refused, and counted nowhere).
pub(crate) fn acquire(limits: &[Limit], ip: IpAddr) -> Option<Held> {
    let mut held = Held {
        taken: Vec::with_capacity(limits.len()),
    };
    for limit in limits {
        let key = limit.zone.key_of(ip);
        let mut counts = limit.zone.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= limit.max {
            if *count == 0 {
                counts.remove(&key);
            }
            // `held` gives back what was taken before this one.
            return None;
        }
        *count += 1;
        drop(counts);
        held.taken.push((limit.zone.clone(), key));
    }
    Some(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(zone: &Zone) -> usize {
        zone.counts
            .lock()
            .unwrap()
            .values()
            .map(|c| *c as usize)
            .sum()
    }

    #[test]
    fn requests_beyond_a_limit_are_refused_until_one_ends() {
        let addresses = Arc::new(Zone::new(ConcurrencyKey::Address));
        let server = Arc::new(Zone::new(ConcurrencyKey::Server));
        let limits = [
            Limit {
                zone: addresses.clone(),
                max: 2,
            },
            Limit {
                zone: server.clone(),
                max: 3,
            },
        ];
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = acquire(&limits, a).unwrap();
        let second = acquire(&limits, a).unwrap();
        // The address is full; another address is not.
        assert!(acquire(&limits, a).is_none());
        let third = acquire(&limits, b).unwrap();
        // The server is full: b's own count was given back.
        assert!(acquire(&limits, b).is_none());
        assert_eq!((count(&addresses), count(&server)), (3, 3));
        drop(first);
        let fourth = acquire(&limits, a).unwrap();
        drop((second, third, fourth));
        assert_eq!((count(&addresses), count(&server)), (0, 0));
        assert!(
            addresses.counts.lock().unwrap().is_empty(),
            "no key left behind"
        );
    }
}
