//! Verified sources: addresses that passed SYN authentication (a cookie came
//! back, DESIGN.md "SYN authentication"), each with an expiry time. While
//! verified, a source's SYNs and non-SYN segments skip the challenge.
//!
//! Contract: fixed capacity, no allocation after
//! [`VerifiedTable::with_capacity`]; an entry whose expiry time has passed is
//! absent (and is the first to be replaced); otherwise CLOCK eviction (see
//! [`super::table`]), so a source in use survives a flood of new ones.

use core::net::IpAddr;

use super::table::{slot_size, AddrKey, Table};
use crate::time::Nanos;

const _: () = assert!(slot_size::<AddrKey, Nanos>() <= 40);

/// Verified source addresses with their expiry times.
#[derive(Debug)]
pub struct VerifiedTable {
    table: Table<AddrKey, Nanos>,
}

impl VerifiedTable {
    /// A table for `cap` sources (at least 1), all memory reserved now.
    pub fn with_capacity(cap: usize) -> Self {
        VerifiedTable {
            table: Table::with_capacity(cap),
        }
    }

    /// [`VerifiedTable::with_capacity`] with the hash keys of the
    /// per-source buckets (one hash of a source probes both tables).
    pub fn with_hasher(cap: usize, hasher: ahash::RandomState) -> Self {
        VerifiedTable {
            table: Table::with_hasher(cap, hasher),
        }
    }

    /// Is `src` verified at `now`? An expired entry is absent (and freed).
    #[inline]
    pub fn is_verified(&mut self, src: IpAddr, now: Nanos) -> bool {
        self.is_verified_key(AddrKey::new(src), now)
    }

    /// [`VerifiedTable::is_verified`] by table key (the packet path).
    #[inline]
    pub fn is_verified_key(&mut self, src: AddrKey, now: Nanos) -> bool {
        self.is_verified_hashed(self.hash(&src), src, now)
    }

    /// The hash a probe for `src` starts from (stage one of a burst).
    #[inline]
    pub fn hash(&self, src: &AddrKey) -> u64 {
        self.table.hash(src)
    }

    /// The index line a probe with `hash` reads first (to prefetch).
    #[inline]
    pub fn index_line(&self, hash: u64) -> *const u8 {
        self.table.index_line(hash)
    }

    /// [`VerifiedTable::is_verified_key`] with the key's
    /// [`VerifiedTable::hash`].
    #[inline]
    pub fn is_verified_hashed(&mut self, hash: u64, src: AddrKey, now: Nanos) -> bool {
        let Ok(hit) = self.table.probe_hashed(hash, &src) else {
            return false;
        };
        // The reference bit set on an expired entry does not matter: the
        // entry is removed right after.
        let found = self.table.get_mut(hit).is_some_and(|&mut expires| now < expires);
        if !found {
            self.table.remove(hit);
        }
        found
    }

    /// Verifies `src` until `now + ttl`, or extends its entry to that time
    /// (an expiry already later is kept). Evicts when full.
    pub fn verify(&mut self, src: IpAddr, now: Nanos, ttl: Nanos) {
        let key = AddrKey::new(src);
        let until = now.saturating_add(ttl);
        match self.table.probe(&key) {
            Ok(hit) => {
                if let Some(expires) = self.table.get_mut(hit) {
                    *expires = until.max(*expires);
                }
            }
            Err(miss) => {
                self.table.insert(miss, key, until, |&expires| expires <= now);
            }
        }
    }

    /// Forgets `src` (REST `DELETE`); returns whether it was stored.
    pub fn remove(&mut self, src: IpAddr) -> bool {
        match self.table.probe(&AddrKey::new(src)) {
            Ok(hit) => {
                self.table.remove(hit);
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets every source (after a cookie secret compromise, say).
    pub fn flush(&mut self) {
        self.table.clear();
    }

    /// Frees expired entries among the next `budget` slots (between
    /// bursts); returns how many.
    pub fn sweep(&mut self, now: Nanos, budget: usize) -> usize {
        self.table.sweep(budget, |&expires| expires <= now)
    }

    /// Stored sources with their expiry times, in no particular order.
    /// Entries not yet swept may have expired: compare with the clock.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Nanos)> + '_ {
        self.table.iter().map(|(k, &expires)| (k.ip(), expires))
    }

    table_sizes!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SECOND;

    const TTL: Nanos = 300 * SECOND;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn verify_then_hit_until_expiry() {
        let mut t = VerifiedTable::with_capacity(8);
        let a = ip("198.51.100.7");
        assert!(!t.is_verified(a, 0));
        t.verify(a, 10 * SECOND, TTL);
        assert!(t.is_verified(a, 10 * SECOND));
        assert!(t.is_verified(a, 309 * SECOND));
        assert!(!t.is_verified(a, 310 * SECOND));
        assert!(t.is_empty(), "an expired entry is freed on lookup");
        assert!(!t.is_verified(ip("198.51.100.8"), 10 * SECOND));
    }

    #[test]
    fn verify_again_extends_never_shortens() {
        let mut t = VerifiedTable::with_capacity(8);
        let a = ip("2001:db8::7");
        t.verify(a, 0, TTL);
        t.verify(a, 100 * SECOND, TTL);
        assert!(t.is_verified(a, 399 * SECOND));
        t.verify(a, 100 * SECOND, SECOND);
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![(a, 400 * SECOND)]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn remove_and_flush() {
        let mut t = VerifiedTable::with_capacity(8);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        t.verify(a, 0, TTL);
        t.verify(b, 0, TTL);
        assert!(t.remove(a));
        assert!(!t.remove(a));
        assert!(!t.is_verified(a, 1) && t.is_verified(b, 1));
        t.flush();
        assert!(t.is_empty() && !t.is_verified(b, 1));
    }

    #[test]
    fn full_table_keeps_sources_in_use() {
        let mut t = VerifiedTable::with_capacity(4);
        let addr = |n: u32| IpAddr::V4(n.into());
        for n in 0..4 {
            t.verify(addr(n), 0, TTL);
        }
        assert!(t.is_verified(addr(0), 1));
        // A flood of new verified sources cycles through the unreferenced
        // slots; source 0, used between each, is never pushed out.
        for n in 100..120 {
            t.verify(addr(n), 2, TTL);
            assert!(t.is_verified(addr(0), 3), "source 0 evicted at {n}");
            assert_eq!(t.len(), 4);
        }
    }

    #[test]
    fn expired_entries_go_before_live_ones() {
        let mut t = VerifiedTable::with_capacity(3);
        let addr = |n: u32| IpAddr::V4(n.into());
        t.verify(addr(0), 0, TTL);
        t.verify(addr(1), 0, SECOND);
        t.verify(addr(2), 0, TTL);
        t.verify(addr(3), 2 * SECOND, TTL);
        assert!(t.is_verified(addr(0), 2 * SECOND));
        assert!(t.is_verified(addr(2), 2 * SECOND));
        assert!(t.is_verified(addr(3), 2 * SECOND));
        assert_eq!(t.sweep(2 * SECOND, 3), 0);
    }
}
