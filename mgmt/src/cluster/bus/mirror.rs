//! What this node knows to be verified, for the catch-up of a node that
//! joins the bus: every source this node published or took in from the
//! bus, with its expiry on the bus thread's monotonic clock. Management
//! side only (the workers never see it).
//!
//! Bounded: at most [`MIRROR_MAX`] sources. When full, expired sources are
//! pruned; if it is still full, a new source is not remembered (counted by
//! the caller) — it is still verified here and on every node that heard
//! it, only a later joiner misses it.

use std::collections::HashMap;
use std::net::IpAddr;

use dataplane::runtime::mailbox::VerifiedEntry;

/// Sources remembered at most (about 40 bytes each with the map's
/// overhead: some 10 MB when full).
pub const MIRROR_MAX: usize = 262_144;

/// See the module doc. Times are nanoseconds of a monotonic clock.
#[derive(Debug)]
pub struct Mirror {
    max: usize,
    /// Source → when it expires.
    until: HashMap<IpAddr, u64>,
}

impl Default for Mirror {
    fn default() -> Mirror {
        Mirror::with_max(MIRROR_MAX)
    }
}

impl Mirror {
    /// At most `max` sources.
    pub fn with_max(max: usize) -> Mirror {
        Mirror {
            max,
            until: HashMap::new(),
        }
    }

    /// `e` verified at `now` for `e.ttl`: remembered, or its expiry
    /// extended (never shortened). False when full (nothing changed).
    pub fn insert(&mut self, e: VerifiedEntry, now: u64) -> bool {
        let until = now.saturating_add(e.ttl);
        if let Some(u) = self.until.get_mut(&e.ip) {
            *u = (*u).max(until);
            return true;
        }
        if self.until.len() >= self.max {
            self.prune(now);
            if self.until.len() >= self.max {
                return false;
            }
        }
        self.until.insert(e.ip, until);
        true
    }

    /// Forgets the sources expired at `now`.
    pub fn prune(&mut self, now: u64) {
        self.until.retain(|_, &mut u| now < u);
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// The sources still valid at `now`, with their expiry (expired ones
    /// are pruned first).
    pub fn live(&mut self, now: u64) -> Vec<(IpAddr, u64)> {
        self.prune(now);
        self.until.iter().map(|(&ip, &u)| (ip, u)).collect()
    }
}

/// `ip` expiring at `until`, as an entry with its TTL remaining at `now`
/// (`None` once expired).
pub fn remaining(ip: IpAddr, until: u64, now: u64) -> Option<VerifiedEntry> {
    (now < until).then(|| VerifiedEntry { ip, ttl: until - now })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn src(n: u32, ttl: u64) -> VerifiedEntry {
        VerifiedEntry {
            ip: IpAddr::V4(n.into()),
            ttl,
        }
    }

    #[test]
    fn expiry_is_extended_never_shortened_and_the_remaining_ttl_shrinks() {
        let mut m = Mirror::default();
        assert!(m.insert(src(1, 300 * S), 0));
        assert!(m.insert(src(1, 10 * S), 100 * S), "shorter: kept at 300 s");
        assert_eq!(m.live(100 * S), vec![(src(1, 0).ip, 300 * S)]);
        assert_eq!(remaining(src(1, 0).ip, 300 * S, 100 * S), Some(src(1, 200 * S)));
        assert!(m.insert(src(1, 300 * S), 100 * S), "longer: extended");
        assert_eq!(remaining(src(1, 0).ip, 400 * S, 399 * S), Some(src(1, S)));
        assert_eq!(remaining(src(1, 0).ip, 400 * S, 400 * S), None);
        assert_eq!(m.live(399 * S).len(), 1);
        assert!(m.live(400 * S).is_empty(), "expired at its expiry");
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn full_prunes_the_expired_then_refuses() {
        let mut m = Mirror::with_max(4);
        for n in 0..4 {
            assert!(m.insert(src(n, (n as u64 + 1) * S), 0));
        }
        assert!(!m.insert(src(10, S), 0), "full, nothing expired");
        assert!(m.insert(src(0, 9 * S), 0), "a known source is still extended");
        // At 3 s the sources of 2 s and 3 s have expired (the one of 1 s
        // was extended to 9 s): room for two.
        assert!(m.insert(src(10, S), 3 * S));
        assert!(m.insert(src(11, S), 3 * S));
        assert!(!m.insert(src(12, S), 3 * S));
        assert_eq!(m.len(), 4);
        let mut live: Vec<_> = m.live(3 * S).into_iter().map(|(ip, _)| ip).collect();
        live.sort();
        let want: Vec<IpAddr> = [0, 3, 10, 11].map(|n: u32| IpAddr::V4(n.into())).to_vec();
        assert_eq!(live, want);
        // The default bound holds.
        let mut m = Mirror::default();
        let refused = (0..MIRROR_MAX as u32 + 100)
            .filter(|&n| !m.insert(src(n, 300 * S), 0))
            .count();
        assert_eq!((m.len(), refused), (MIRROR_MAX, 100));
    }
}
