//! Which verified sources go out on the bus, and in what batches: the
//! publisher takes the workers' outboxes every [`super::FLUSH`] and offers
//! each source here.
//!
//! - A source already published and still within half its TTL is not
//!   published again (every node holds it for the whole TTL; a source
//!   verified again later is, and extends it everywhere).
//! - At most `rate` sources per second go out (a token bucket with a fifth
//!   of a second of burst): past it sources are dropped and counted, so a
//!   flood of answered challenges costs the bus a fixed rate, not more —
//!   what gets through is a sample of what was verified.
//! - What goes out is cut into messages of at most [`BATCH`] entries.
//!
//! Memory is bounded: at most [`RECENT_MAX`] remembered sources and at most
//! one second's `rate` waiting.

use std::collections::HashMap;
use std::net::IpAddr;

use dataplane::runtime::mailbox::VerifiedEntry;

/// Entries per message: 128 × 21 bytes ≈ 2.7 KB, well under NATS's 1 MB
/// payload limit and one TCP segment train per flush.
pub const BATCH: usize = 128;

/// Sources remembered for the repeat check.
pub const RECENT_MAX: usize = 65_536;

const SECOND: u64 = 1_000_000_000;

/// What became of an offered source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Will be published at the next flush.
    Queued,
    /// Published recently (within half its TTL): left out.
    Repeat,
    /// Over the rate: dropped.
    OverRate,
}

/// See the module doc. Times are nanoseconds of a monotonic clock.
#[derive(Debug)]
pub struct Batcher {
    rate: u64,
    burst: u64,
    /// Tokens in nanosecond-units (one source costs `SECOND`), so that the
    /// refill needs no division.
    tokens: u64,
    last: u64,
    /// Source → until when it is not published again.
    recent: HashMap<IpAddr, u64>,
    pending: Vec<VerifiedEntry>,
}

impl Batcher {
    /// At most `rate` sources per second (at least 1).
    pub fn new(rate: u32, now: u64) -> Batcher {
        let rate = u64::from(rate.max(1));
        let burst = (rate / 5).max(BATCH as u64);
        Batcher {
            rate,
            burst,
            tokens: burst * SECOND,
            last: now,
            recent: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Offers a source a worker verified at `now`.
    pub fn offer(&mut self, e: VerifiedEntry, now: u64) -> Offer {
        if self.recent.get(&e.ip).is_some_and(|&until| now < until) {
            return Offer::Repeat;
        }
        self.refill(now);
        if self.tokens < SECOND {
            return Offer::OverRate;
        }
        self.tokens -= SECOND;
        if self.recent.len() >= RECENT_MAX {
            self.recent.retain(|_, &mut until| now < until);
            if self.recent.len() >= RECENT_MAX {
                self.recent.clear();
            }
        }
        self.recent.insert(e.ip, now.saturating_add(e.ttl / 2));
        self.pending.push(e);
        Offer::Queued
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.last);
        self.last = now.max(self.last);
        let cap = self.burst * SECOND;
        self.tokens = self.tokens.saturating_add(elapsed.saturating_mul(self.rate)).min(cap);
    }

    /// Sources waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes what waits, in messages of at most [`BATCH`] entries.
    pub fn take(&mut self) -> Vec<Vec<VerifiedEntry>> {
        let all = core::mem::take(&mut self.pending);
        all.chunks(BATCH).map(<[VerifiedEntry]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(n: u32) -> VerifiedEntry {
        VerifiedEntry {
            ip: IpAddr::V4(n.into()),
            ttl: 300 * SECOND,
        }
    }

    #[test]
    fn repeats_within_half_the_ttl_are_left_out() {
        let mut b = Batcher::new(1000, 0);
        assert_eq!(b.offer(src(1), 0), Offer::Queued);
        assert_eq!(b.offer(src(1), 149 * SECOND), Offer::Repeat);
        assert_eq!(b.offer(src(1), 150 * SECOND), Offer::Queued);
        assert_eq!(b.take(), vec![vec![src(1), src(1)]]);
        assert!(b.take().is_empty());
    }

    #[test]
    fn the_rate_is_bounded_and_batches_are_cut() {
        // 1,000/s: a burst of a fifth of a second (200), then 1 per ms.
        let mut b = Batcher::new(1000, 0);
        let queued = (0..1000).filter(|&n| b.offer(src(n), 0) == Offer::Queued).count();
        assert_eq!(queued, 200);
        assert_eq!(b.offer(src(5000), 0), Offer::OverRate);
        let batches = b.take();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![128, 72]);
        // One second later: 1,000 more tokens, capped at the burst.
        let later = (0..1000)
            .filter(|&n| b.offer(src(10_000 + n), SECOND) == Offer::Queued)
            .count();
        assert_eq!(later, 200);
        // Half a millisecond later: nothing; a millisecond: one.
        assert_eq!(b.offer(src(20_000), SECOND + SECOND / 2000), Offer::OverRate);
        assert_eq!(b.offer(src(20_001), SECOND + SECOND / 1000), Offer::Queued);
        // Over ten seconds, about rate × time in all, never more.
        let mut b = Batcher::new(1000, 0);
        let mut n = 0;
        for ms in 0..10_000u64 {
            for k in 0..5 {
                if b.offer(src((ms * 5 + k) as u32), ms * SECOND / 1000) == Offer::Queued {
                    n += 1;
                }
            }
        }
        assert!((10_000..=10_200).contains(&n), "{n}");
    }

    #[test]
    fn memory_stays_bounded() {
        let mut b = Batcher::new(1_000_000, 0);
        for n in 0..(RECENT_MAX as u32 + 10) {
            b.offer(src(n), u64::from(n) * SECOND);
            if b.pending() >= BATCH {
                b.take();
            }
        }
        assert!(b.recent.len() <= RECENT_MAX);
    }
}
