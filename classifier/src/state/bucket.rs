//! Token buckets (DESIGN.md, "Rate limits"): [`TokenBucket`] for the
//! per-service and global caps, and [`SourceTable`], four buckets per
//! source address (packets, SYNs, new flows, ICMP messages) in a
//! fixed-capacity table.
//!
//! Arithmetic: the level is kept in nano-tokens (1 token = 10^9), so `rate`
//! tokens/s refill exactly `rate` nano-tokens per elapsed nanosecond. Every
//! step is an exact integer, so N tokens/s gives exactly N per second over
//! any run (no drift, no floats). Products and sums saturate: a jump of
//! `now` by centuries fills the bucket and overflows nothing. A clock that
//! goes backwards refills nothing.
//!
//! Contract of [`SourceTable`]: fixed capacity, no allocation after
//! construction. A source's bucket has a burst of one second's worth, so a
//! source idle for a second has all its buckets full again: such an entry is
//! worth nothing and is the first to be replaced. Evicting a live entry
//! forgets its levels: the source comes back with full buckets (a spoofed
//! flood big enough to cycle the table gives a real source at most one more
//! burst; accepted for fixed memory).

use core::net::IpAddr;

use super::table::{slot_size, AddrKey, Table};
use crate::time::{Nanos, SECOND};

/// Nano-tokens per token.
const TOKEN: u64 = 1_000_000_000;

/// A level in nano-tokens and the time it was last refilled. A new level is
/// `u64::MAX`, which the first refill clamps to the bucket's burst (full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Level {
    nano: u64,
    last: Nanos,
}

impl Level {
    const FULL: Level = Level {
        nano: u64::MAX,
        last: 0,
    };

    /// Refills for the time since `last` at `rate` tokens/s and caps at
    /// `cap` nano-tokens; returns whether a whole token is there.
    #[inline]
    fn refill(&mut self, now: Nanos, rate: u64, cap: u64) -> bool {
        if now > self.last {
            let add = (now - self.last).saturating_mul(rate);
            self.nano = self.nano.saturating_add(add);
            self.last = now;
        }
        self.nano = self.nano.min(cap);
        self.nano >= TOKEN
    }

    /// [`Level::refill`], then takes one token if there is one.
    #[inline]
    fn take(&mut self, now: Nanos, rate: u64, cap: u64) -> bool {
        if self.refill(now, rate, cap) {
            self.nano -= TOKEN;
            true
        } else {
            false
        }
    }
}

/// A token bucket in integer arithmetic (no floats on the hot path): `rate`
/// tokens/s, `burst` tokens; refilled by elapsed ns; rate 0 = unlimited
/// (take always succeeds, costs one branch). Starts full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// `burst` in nano-tokens, saturated: bursts above ~1.8e10 tokens act
    /// as 1.8e10, far more than any link carries in a second.
    cap: u64,
    level: Level,
}

impl TokenBucket {
    /// `rate_per_s` tokens per second (0 = unlimited), `burst` tokens at
    /// most (a burst of 0 is taken as 1, or nothing would ever pass).
    pub fn new(rate_per_s: u64, burst: u64) -> Self {
        let burst = burst.max(1);
        TokenBucket {
            rate: rate_per_s,
            burst,
            cap: burst.saturating_mul(TOKEN),
            level: Level::FULL,
        }
    }

    /// Takes one token at `now`; `false` when the bucket is empty.
    #[inline]
    pub fn take(&mut self, now: Nanos) -> bool {
        if self.rate == 0 {
            return true;
        }
        self.level.take(now, self.rate, self.cap)
    }

    /// Whether [`TokenBucket::take`] at `now` would succeed, taking nothing:
    /// a check that must pass before another one spends state (the ICMP
    /// cap, before a source-table insert).
    #[inline]
    pub fn ready(&mut self, now: Nanos) -> bool {
        self.rate == 0 || self.level.refill(now, self.rate, self.cap)
    }

    /// Changes the rate and burst, keeping the current level (capped to the
    /// new burst). A bucket that was unlimited starts full.
    pub fn set_rate(&mut self, rate_per_s: u64, burst: u64) {
        if self.rate == 0 {
            self.level = Level::FULL;
        }
        let burst = burst.max(1);
        self.rate = rate_per_s;
        self.burst = burst;
        self.cap = burst.saturating_mul(TOKEN);
        self.level.nano = self.level.nano.min(self.cap);
    }

    /// Tokens per second (0 = unlimited).
    #[inline]
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Most tokens taken back to back.
    #[inline]
    pub fn burst(&self) -> u64 {
        self.burst
    }
}

/// Which of a source's four buckets (DESIGN.md: per-source pps, SYN/s,
/// new flows/s, ICMP; `Limits::{src_pps, src_syn_pps, src_new_conns_ps,
/// src_icmp_pps}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceLimit {
    Pps,
    Syn,
    NewConn,
    Icmp,
    /// HTTP requests matching an `l7_rules` rule with `action = "limit"`.
    L7,
}

/// The five levels of one source, indexed by `SourceLimit as usize`.
type SourceLevels = [Level; 5];

// 24-byte key, five 16-byte levels, the CLOCK mark: 112 bytes with
// padding (96 with four levels, before the `l7_rules` limit bucket).
const _: () = assert!(slot_size::<AddrKey, SourceLevels>() <= 112);

/// Per-source buckets (four per source) in a fixed-capacity table keyed by
/// source address.
#[derive(Debug)]
pub struct SourceTable {
    table: Table<AddrKey, SourceLevels>,
}

/// Has every bucket of an entry been idle a second, hence refilled to its
/// one-second burst whatever its rate?
#[inline]
fn stale(levels: &SourceLevels, now: Nanos) -> bool {
    levels.iter().all(|l| now.saturating_sub(l.last) >= SECOND)
}

impl SourceTable {
    /// A table for `cap` sources (at least 1), all memory reserved now.
    pub fn with_capacity(cap: usize) -> Self {
        SourceTable {
            table: Table::with_capacity(cap),
        }
    }

    /// [`SourceTable::with_capacity`] with the hash keys of the verified
    /// sources (one hash of a source probes both tables).
    pub fn with_hasher(cap: usize, hasher: ahash::RandomState) -> Self {
        SourceTable {
            table: Table::with_hasher(cap, hasher),
        }
    }

    /// The index line a probe with `hash` (the source's hash in the
    /// verified sources, [`crate::state::VerifiedTable::hash`]) reads first.
    #[inline]
    pub fn index_line(&self, hash: u64) -> *const u8 {
        self.table.index_line(hash)
    }

    /// Takes one token from the bucket `which` of `src` toward `service`,
    /// refilled at `rate_per_s` with burst = max(rate_per_s, 1) (one second's
    /// worth). Buckets are per (source, service): a source's traffic to one
    /// service never spends its allowance toward another.
    /// `rate_per_s == 0` = unlimited: returns true without touching the
    /// table. A source not in the table starts with full buckets.
    #[inline]
    pub fn allow(&mut self, src: IpAddr, service: u16, now: Nanos, which: SourceLimit, rate_per_s: u32) -> bool {
        self.allow_key(AddrKey::new(src), service, now, which, rate_per_s)
    }

    /// [`SourceTable::allow`] by table key (untagged; the packet path).
    #[inline]
    pub fn allow_key(&mut self, src: AddrKey, service: u16, now: Nanos, which: SourceLimit, rate_per_s: u32) -> bool {
        self.allow_hashed(None, src, service, now, which, rate_per_s)
    }

    /// [`SourceTable::allow_key`] with the source's hash when stage one
    /// computed it (the tag does not change a key's hash).
    #[inline]
    pub fn allow_hashed(
        &mut self,
        hash: Option<u64>,
        src: AddrKey,
        service: u16,
        now: Nanos,
        which: SourceLimit,
        rate_per_s: u32,
    ) -> bool {
        if rate_per_s == 0 {
            return true;
        }
        let rate = u64::from(rate_per_s);
        // Burst = rate tokens: at most 4.3e18 nano-tokens, fits a u64.
        let cap = rate * TOKEN;
        let key = src.with_tag(service);
        let i = which as usize;
        let hash = hash.unwrap_or_else(|| self.table.hash(&key));
        match self.table.probe_hashed(hash, &key) {
            Ok(hit) => match self.table.get_mut(hit).and_then(|levels| levels.get_mut(i)) {
                Some(level) => level.take(now, rate, cap),
                None => true,
            },
            Err(miss) => {
                let mut levels = [Level::FULL; 5];
                let allowed = match levels.get_mut(i) {
                    Some(level) => level.take(now, rate, cap),
                    None => true,
                };
                self.table.insert(miss, key, levels, |l| stale(l, now));
                allowed
            }
        }
    }

    /// [`SourceTable::allow`] for two buckets of one source with a single
    /// table probe (a SYN is charged to the packet and the SYN bucket):
    /// takes from `first`, and only if that succeeded from `second`; returns
    /// the bucket that refused. A rate of 0 skips its bucket.
    #[inline]
    pub fn allow_two(
        &mut self,
        src: IpAddr,
        service: u16,
        now: Nanos,
        first: (SourceLimit, u32),
        second: (SourceLimit, u32),
    ) -> Result<(), SourceLimit> {
        self.allow_two_key(AddrKey::new(src), service, now, first, second)
    }

    /// [`SourceTable::allow_two`] by table key (untagged; the packet path).
    #[inline]
    pub fn allow_two_key(
        &mut self,
        src: AddrKey,
        service: u16,
        now: Nanos,
        first: (SourceLimit, u32),
        second: (SourceLimit, u32),
    ) -> Result<(), SourceLimit> {
        self.allow_two_hashed(None, src, service, now, first, second)
    }

    /// [`SourceTable::allow_two_key`] with the source's hash when stage one
    /// computed it.
    #[inline]
    pub fn allow_two_hashed(
        &mut self,
        hash: Option<u64>,
        src: AddrKey,
        service: u16,
        now: Nanos,
        first: (SourceLimit, u32),
        second: (SourceLimit, u32),
    ) -> Result<(), SourceLimit> {
        if first.1 == 0 && second.1 == 0 {
            return Ok(());
        }
        let take = |levels: &mut SourceLevels| -> Result<(), SourceLimit> {
            for (which, rate) in [first, second] {
                if rate == 0 {
                    continue;
                }
                let r = u64::from(rate);
                if let Some(level) = levels.get_mut(which as usize) {
                    if !level.take(now, r, r * TOKEN) {
                        return Err(which);
                    }
                }
            }
            Ok(())
        };
        let key = src.with_tag(service);
        let hash = hash.unwrap_or_else(|| self.table.hash(&key));
        match self.table.probe_hashed(hash, &key) {
            Ok(hit) => self.table.get_mut(hit).map_or(Ok(()), take),
            Err(miss) => {
                let mut levels = [Level::FULL; 5];
                let res = take(&mut levels);
                self.table.insert(miss, key, levels, |l| stale(l, now));
                res
            }
        }
    }

    /// Frees entries idle a second or more among the next `budget` slots
    /// (between bursts); returns how many.
    pub fn sweep(&mut self, now: Nanos, budget: usize) -> usize {
        self.table.sweep(budget, |l| stale(l, now))
    }

    /// Forgets every source (all buckets full again).
    pub fn clear(&mut self) {
        self.table.clear();
    }

    table_sizes!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MILLISECOND;

    /// Tokens taken by trying once every `step` ns over `[from, to)`.
    fn drain(b: &mut TokenBucket, from: Nanos, to: Nanos, step: Nanos) -> u64 {
        (from..to).step_by(step as usize).map(|t| u64::from(b.take(t))).sum()
    }

    #[test]
    fn burst_then_exactly_rate_per_second() {
        let mut b = TokenBucket::new(1000, 50);
        let t0 = 1_700_000_000 * SECOND;
        // Full at start: the burst passes back to back, then nothing.
        assert_eq!((0..60).filter(|_| b.take(t0)).count(), 50);
        // Offered every 100 µs (10x the rate), 1000 pass per second.
        for s in 0..5 {
            // Windows end on whole seconds after t0: 1000 tokens each.
            let from = t0 + s * SECOND + 100_000;
            assert_eq!(drain(&mut b, from, from + SECOND, 100_000), 1000, "second {s}");
        }
    }

    #[test]
    fn no_drift_over_a_long_run_with_an_awkward_rate() {
        // 7 tokens/s: a token every 142857142.857 ns, which integer ns
        // cannot represent; nano-token levels keep it exact. Tried every
        // 10 ms, the bucket never fills, so every token is taken.
        let mut b = TokenBucket::new(7, 7);
        let t0 = 5 * SECOND;
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 7);
        let hours = 3 * 3600;
        // The last try is at exactly t0 + 3 h.
        let got = drain(&mut b, t0 + 10 * MILLISECOND, t0 + hours * SECOND + 1, 10 * MILLISECOND);
        assert_eq!(got, 7 * hours);
    }

    #[test]
    fn huge_jumps_and_backward_clocks() {
        let mut b = TokenBucket::new(u64::MAX, u64::MAX);
        assert!(b.take(0));
        assert!(b.take(u64::MAX));
        let mut b = TokenBucket::new(10, 10);
        let late = u64::MAX - SECOND;
        for _ in 0..10 {
            assert!(b.take(late));
        }
        assert!(!b.take(late));
        // Backwards: no refill, no panic, and the refill time stays put.
        assert!(!b.take(0));
        assert!(b.take(late + SECOND / 10));
        assert!(!b.take(late + SECOND / 10));
    }

    #[test]
    fn unlimited_and_rate_changes() {
        let mut b = TokenBucket::new(0, 0);
        assert!((0..10_000).all(|_| b.take(1)));
        b.set_rate(2, 2);
        assert_eq!(b.rate(), 2);
        assert_eq!((0..5).filter(|_| b.take(SECOND)).count(), 2);
        // Burst lowered to 1 while empty: one token per half second.
        b.set_rate(2, 1);
        assert!(b.take(SECOND + SECOND / 2));
        assert!(!b.take(SECOND + SECOND / 2));
        assert_eq!(b.burst(), 1);
        // A burst of 0 still lets the rate through.
        let mut b = TokenBucket::new(1, 0);
        assert!(b.take(SECOND));
        assert!(!b.take(SECOND));
    }

    #[test]
    fn ready_looks_without_taking() {
        let mut b = TokenBucket::new(2, 2);
        assert!(b.ready(SECOND) && b.ready(SECOND));
        assert!(b.take(SECOND) && b.take(SECOND));
        assert!(!b.ready(SECOND));
        // Half a second refills one token: ready, and take still gets it.
        assert!(b.ready(SECOND + SECOND / 2));
        assert!(b.take(SECOND + SECOND / 2));
        assert!(!b.ready(SECOND + SECOND / 2));
        assert!(TokenBucket::new(0, 0).ready(0), "unlimited");
    }

    #[test]
    fn icmp_bucket_is_a_fourth_level() {
        let mut t = SourceTable::with_capacity(4);
        let now = 3 * SECOND;
        let take = |t: &mut SourceTable| t.allow_two(ip(1), 0, now, (SourceLimit::Pps, 100), (SourceLimit::Icmp, 2));
        assert_eq!(take(&mut t), Ok(()));
        assert_eq!(take(&mut t), Ok(()));
        assert_eq!(take(&mut t), Err(SourceLimit::Icmp));
        // The other three levels of the source are untouched by it.
        for which in [SourceLimit::Syn, SourceLimit::NewConn] {
            assert_eq!((0..3).filter(|_| t.allow(ip(1), 0, now, which, 3)).count(), 3);
        }
        assert_eq!(t.len(), 1);
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn source_buckets_are_separate_per_source_and_limit() {
        let mut t = SourceTable::with_capacity(16);
        let now = 10 * SECOND;
        // Burst = rate = 3 per second.
        assert_eq!(
            (0..5).filter(|_| t.allow(ip(1), 0, now, SourceLimit::Syn, 3)).count(),
            3
        );
        assert!(t.allow(ip(1), 0, now, SourceLimit::Pps, 3));
        assert!(t.allow(ip(1), 0, now, SourceLimit::NewConn, 3));
        assert!(t.allow(ip(2), 0, now, SourceLimit::Syn, 3));
        assert_eq!(t.len(), 2);
        // A third of a second later one SYN token is back.
        let later = now + SECOND / 3 + 1;
        assert!(t.allow(ip(1), 0, later, SourceLimit::Syn, 3));
        assert!(!t.allow(ip(1), 0, later, SourceLimit::Syn, 3));
    }

    #[test]
    fn source_rate_holds_over_time() {
        let mut t = SourceTable::with_capacity(4);
        let src: IpAddr = "2001:db8::1".parse().expect("ip");
        let mut passed = 0u64;
        // Offered 1000/s for 10 s against a limit of 100/s (burst 100).
        for i in 0..10_000u64 {
            passed += u64::from(t.allow(src, 0, SECOND + i * MILLISECOND, SourceLimit::Pps, 100));
        }
        assert_eq!(passed, 100 + 100 * 10 - 1);
    }

    #[test]
    fn zero_rate_is_unlimited_and_stores_nothing() {
        let mut t = SourceTable::with_capacity(4);
        assert!((0..100).all(|n| t.allow(ip(n), 0, 0, SourceLimit::Pps, 0)));
        assert!(t.is_empty());
    }

    #[test]
    fn stale_sources_are_replaced_first_and_capacity_holds() {
        let mut t = SourceTable::with_capacity(2);
        // Source 1 exhausts its bucket at 0; source 2 stays busy.
        assert!(t.allow(ip(1), 0, 0, SourceLimit::Pps, 1));
        assert!(!t.allow(ip(1), 0, 0, SourceLimit::Pps, 1));
        assert!(t.allow(ip(2), 0, 0, SourceLimit::Pps, 1000));
        assert!(t.allow(ip(2), 0, 2 * SECOND, SourceLimit::Pps, 1000));
        // At 2 s source 1 is stale (full again anyway): source 3 takes it.
        assert!(t.allow(ip(3), 0, 2 * SECOND, SourceLimit::Pps, 1));
        assert_eq!(t.len(), 2);
        assert!(!t.allow(ip(3), 0, 2 * SECOND, SourceLimit::Pps, 1));
        for n in 10..100 {
            t.allow(ip(n), 0, 2 * SECOND, SourceLimit::Syn, 5);
            assert!(t.len() <= 2);
        }
        assert_eq!(t.sweep(10 * SECOND, 2), 2);
        assert!(t.is_empty());
    }
}
