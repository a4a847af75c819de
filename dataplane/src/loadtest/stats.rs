//! What the clients count: per core ([`Totals`], with the time-to-first-byte
//! histogram) and per client ([`ClientStats`]). Each core owns its own and
//! nothing is shared while the clients run; the live figures go out through
//! [`Live`], which only its core stores to.
//!
//! Time to first byte is from the connection's first SYN (its first attempt)
//! to the first byte of the response, so it holds whatever SYN
//! authentication cost: a challenge-ack's SYN retransmission, a
//! cookie-reset's reconnect. It is recorded for completed connections, in
//! microseconds, in an HDR histogram of 3 significant digits up to
//! [`TTFB_MAX_US`] (allocated once; recording never allocates).

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use classifier::time::Nanos;
use hdrhistogram::Histogram;

/// Largest time to first byte the histogram holds, in microseconds (10
/// minutes; longer values are recorded as this).
pub const TTFB_MAX_US: u64 = 600_000_000;

/// Why a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No complete response within the connection's timeout.
    Timeout,
    /// Reset: refused, or reset after the response began or after the
    /// reconnects were spent.
    Reset,
    /// Not an HTTP response, a status other than 2xx, or a body cut short.
    BadAnswer,
}

impl Failure {
    pub const ALL: [Failure; 3] = [Failure::Timeout, Failure::Reset, Failure::BadAnswer];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
            Failure::BadAnswer => "bad_answer",
        }
    }
}

/// One core's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections started.
    pub tried: u64,
    /// Connections whose 2xx response was read whole.
    pub completed: u64,
    /// Failed, by [`Failure`] (in [`Failure::ALL`] order).
    pub failed: [u64; 3],
    /// SYN-ACKs answered: the origin's, or a cookie-reset challenge.
    pub handshakes: u64,
    /// RSTs sent in answer to an unacceptable SYN-ACK (challenge-ack).
    pub challenge_rsts: u64,
    pub syn_retransmits: u64,
    pub data_retransmits: u64,
    /// RSTs that ended an attempt.
    pub resets_received: u64,
    /// New attempts after such a reset.
    pub reconnects: u64,
    pub tx_frames: u64,
    /// Frames not sent: no buffer, or the port did not take them.
    pub tx_dropped: u64,
    pub rx_frames: u64,
    /// Received frames for no live connection of ours (an old port, an
    /// address of another core, not TCP from the service).
    pub rx_stray: u64,
    /// Data out of order or already received (answered by a duplicate ACK).
    pub rx_out_of_order: u64,
}

impl Counters {
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    pub fn failed(&self, why: Failure) -> u64 {
        self.failed[why as usize]
    }

    pub fn add(&mut self, o: &Counters) {
        self.tried += o.tried;
        self.completed += o.completed;
        for (a, b) in self.failed.iter_mut().zip(o.failed) {
            *a += b;
        }
        self.handshakes += o.handshakes;
        self.challenge_rsts += o.challenge_rsts;
        self.syn_retransmits += o.syn_retransmits;
        self.data_retransmits += o.data_retransmits;
        self.resets_received += o.resets_received;
        self.reconnects += o.reconnects;
        self.tx_frames += o.tx_frames;
        self.tx_dropped += o.tx_dropped;
        self.rx_frames += o.rx_frames;
        self.rx_stray += o.rx_stray;
        self.rx_out_of_order += o.rx_out_of_order;
    }
}

/// One core's counters and time-to-first-byte histogram.
#[derive(Debug, Clone)]
pub struct Totals {
    pub c: Counters,
    /// Microseconds.
    pub ttfb: Histogram<u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            c: Counters::default(),
            ttfb: ttfb_histogram(),
        }
    }
}

/// An empty histogram of [`TTFB_MAX_US`] at 3 significant digits.
pub fn ttfb_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, TTFB_MAX_US, 3).expect("constant bounds are valid")
}

impl Totals {
    pub fn completed(&mut self, ttfb: Nanos) {
        self.c.completed += 1;
        self.ttfb.saturating_record((ttfb / 1000).max(1));
    }

    pub fn failed(&mut self, why: Failure) {
        self.c.failed[why as usize] += 1;
    }

    /// Adds another core's.
    pub fn add(&mut self, o: &Totals) {
        self.c.add(&o.c);
        // Same bounds on every core: adding cannot fail.
        let _ = self.ttfb.add(&o.ttfb);
    }

    /// The `q` quantile of the time to first byte in milliseconds, `None`
    /// when nothing completed.
    pub fn ttfb_ms(&self, q: f64) -> Option<f64> {
        (!self.ttfb.is_empty()).then(|| self.ttfb.value_at_quantile(q) as f64 / 1000.0)
    }
}

/// One client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub tried: u64,
    pub completed: u64,
    pub failed: [u64; 3],
    /// Sum and largest of the completed connections' times to first byte.
    pub ttfb_sum: Nanos,
    pub ttfb_max: Nanos,
}

impl ClientStats {
    pub fn completed(&mut self, ttfb: Nanos) {
        self.completed += 1;
        self.ttfb_sum = self.ttfb_sum.saturating_add(ttfb);
        self.ttfb_max = self.ttfb_max.max(ttfb);
    }

    pub fn failed(&mut self, why: Failure) {
        self.failed[why as usize] += 1;
    }
}

/// A core's running figures for the live line: only that core stores
/// (plain relaxed stores of its own counters, no read-modify-write); anyone
/// may read.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Live {
    pub tried: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub tx_frames: AtomicU64,
    pub rx_frames: AtomicU64,
}

impl Live {
    pub fn publish(&self, c: &Counters) {
        self.tried.store(c.tried, Relaxed);
        self.completed.store(c.completed, Relaxed);
        self.failed.store(c.failed_total(), Relaxed);
        self.tx_frames.store(c.tx_frames, Relaxed);
        self.rx_frames.store(c.rx_frames, Relaxed);
    }

    /// (tried, completed, failed, tx frames, rx frames).
    pub fn read(&self) -> [u64; 5] {
        [
            self.tried.load(Relaxed),
            self.completed.load(Relaxed),
            self.failed.load(Relaxed),
            self.tx_frames.load(Relaxed),
            self.rx_frames.load(Relaxed),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classifier::time::MILLISECOND;

    #[test]
    fn totals_add_up_and_quantiles_come_from_the_histogram() {
        let mut a = Totals::default();
        let mut b = Totals::default();
        for ms in 1..=99 {
            a.completed(ms * MILLISECOND);
        }
        b.completed(1000 * MILLISECOND);
        b.failed(Failure::Reset);
        b.c.tried = 101;
        a.add(&b);
        assert_eq!((a.c.tried, a.c.completed, a.c.failed_total()), (101, 100, 1));
        assert_eq!(a.c.failed(Failure::Reset), 1);
        let p50 = a.ttfb_ms(0.5).unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        assert!(a.ttfb_ms(1.0).unwrap() >= 999.0);
        assert_eq!(Totals::default().ttfb_ms(0.5), None);
        a.completed(Nanos::MAX);
        assert!(a.ttfb_ms(1.0).unwrap() <= TTFB_MAX_US as f64 / 1000.0 * 1.01);
    }
}
