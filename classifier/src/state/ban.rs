//! Banned sources (the auto-blacklist, `[services.blacklist]`): addresses
//! the management plane found breaking limits too often, each with the time
//! its ban ends. `classify` drops everything they send right after the ACL
//! (an ACL `allow` wins) as `blacklisted`.
//!
//! Contract: fixed capacity, no allocation after
//! [`BanTable::with_capacity`]; an entry whose end has passed is absent
//! (and the first to be replaced); when full, CLOCK eviction (counted in
//! [`BanTable::evicted`]). The packet path asks [`BanTable::is_empty`]
//! first: with no ban in force the whole check is one compare.

use core::net::IpAddr;

use super::table::{slot_size, AddrKey, Placed, Table};
use crate::time::Nanos;

const _: () = assert!(slot_size::<AddrKey, Nanos>() <= 40);

/// Banned source addresses with the times their bans end.
#[derive(Debug)]
pub struct BanTable {
    table: Table<AddrKey, Nanos>,
    /// Live bans pushed out by newer ones because the table was full.
    evicted: u64,
}

impl BanTable {
    /// A table for `cap` sources (at least 1), all memory reserved now.
    pub fn with_capacity(cap: usize) -> Self {
        BanTable {
            table: Table::with_capacity(cap),
            evicted: 0,
        }
    }

    /// [`BanTable::with_capacity`] with the hash keys of the other tables
    /// keyed by source (one hash of a source probes them all).
    pub fn with_hasher(cap: usize, hasher: ahash::RandomState) -> Self {
        BanTable {
            table: Table::with_hasher(cap, hasher),
            evicted: 0,
        }
    }

    /// Is `src` banned at `now`? An expired entry is absent (and freed).
    pub fn is_banned(&mut self, src: IpAddr, now: Nanos) -> bool {
        let key = AddrKey::new(src);
        self.is_banned_hashed(self.table.hash(&key), key, now)
    }

    /// [`BanTable::is_banned`] by table key and its hash (the packet path;
    /// the caller checks [`BanTable::is_empty`] first).
    #[inline]
    pub fn is_banned_hashed(&mut self, hash: u64, src: AddrKey, now: Nanos) -> bool {
        let Ok(hit) = self.table.probe_hashed(hash, &src) else {
            return false;
        };
        let banned = self.table.get(hit).is_some_and(|&until| now < until);
        if !banned {
            self.table.remove(hit);
        }
        banned
    }

    /// The hash a probe for `src` starts from.
    #[inline]
    pub fn hash(&self, src: &AddrKey) -> u64 {
        self.table.hash(src)
    }

    /// Bans `src` until `now + ttl` (an existing ban takes the new end,
    /// earlier or later: the management plane's word is the last). Evicts
    /// when full.
    pub fn ban(&mut self, src: IpAddr, now: Nanos, ttl: Nanos) {
        let key = AddrKey::new(src);
        let until = now.saturating_add(ttl);
        match self.table.probe(&key) {
            Ok(hit) => {
                if let Some(end) = self.table.get_mut(hit) {
                    *end = until;
                }
            }
            Err(miss) => {
                if self.table.insert(miss, key, until, |&end| end <= now) == Placed::Evicted {
                    self.evicted += 1;
                }
            }
        }
    }

    /// Lifts the ban of `src`; returns whether it was stored.
    pub fn unban(&mut self, src: IpAddr) -> bool {
        match self.table.probe(&AddrKey::new(src)) {
            Ok(hit) => {
                self.table.remove(hit);
                true
            }
            Err(_) => false,
        }
    }

    /// Lifts every ban.
    pub fn flush(&mut self) {
        self.table.clear();
    }

    /// Frees ended bans among the next `budget` slots (between bursts);
    /// returns how many.
    pub fn sweep(&mut self, now: Nanos, budget: usize) -> usize {
        if self.table.is_empty() {
            return 0;
        }
        self.table.sweep(budget, |&end| end <= now)
    }

    /// Live bans pushed out because the table was full, since creation.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Stored sources with the ends of their bans, in no particular order
    /// (entries not yet swept may have ended: compare with the clock).
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Nanos)> + '_ {
        self.table.iter().map(|(k, &end)| (k.ip(), end))
    }

    table_sizes!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SECOND;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ban_until_expiry_then_absent() {
        let mut t = BanTable::with_capacity(8);
        let a = ip("198.51.100.7");
        assert!(t.is_empty());
        assert!(!t.is_banned(a, 0));
        t.ban(a, 10 * SECOND, 5 * SECOND);
        assert!(t.is_banned(a, 10 * SECOND));
        assert!(t.is_banned(a, 15 * SECOND - 1));
        assert!(!t.is_banned(ip("198.51.100.8"), 11 * SECOND));
        assert!(!t.is_banned(a, 15 * SECOND));
        assert!(t.is_empty(), "an ended ban is freed on lookup");
    }

    #[test]
    fn a_new_ban_replaces_the_end_and_unban_lifts_it() {
        let mut t = BanTable::with_capacity(8);
        let a = ip("2001:db8::1");
        t.ban(a, 0, 100 * SECOND);
        t.ban(a, 0, 2 * SECOND);
        assert!(!t.is_banned(a, 3 * SECOND), "the last word wins, even shorter");
        t.ban(a, 0, 100 * SECOND);
        assert!(t.unban(a));
        assert!(!t.unban(a));
        assert!(!t.is_banned(a, SECOND));
        t.ban(a, 0, SECOND);
        t.ban(ip("192.0.2.1"), 0, SECOND);
        t.flush();
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_with_evictions_counted_and_swept() {
        let mut t = BanTable::with_capacity(4);
        let bytes = t.memory_bytes();
        for i in 0..100u32 {
            t.ban(IpAddr::V4(i.into()), 0, 10 * SECOND);
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.evicted(), 96);
        assert_eq!(t.memory_bytes(), bytes, "no growth");
        // Ended bans are taken first, and never counted as evictions.
        let mut t = BanTable::with_capacity(4);
        for i in 0..4u32 {
            t.ban(IpAddr::V4(i.into()), 0, SECOND);
        }
        for i in 4..8u32 {
            t.ban(IpAddr::V4(i.into()), 2 * SECOND, SECOND);
        }
        assert_eq!(t.evicted(), 0);
        assert_eq!(t.sweep(10 * SECOND, 64), 4);
        assert!(t.is_empty());
    }
}
