//! Sending the generator's frames on a live port at a target rate, Pktgen
//! style: `moat gen --iface`, and the flood side of `moat loadtest`.
//!
//! Contract:
//! - [`send_paced`] sends exactly the frames the [`Generator`] yields, in
//!   its order, so a port carries the bytes `moat gen --out` writes for the
//!   same configuration (the generator's timestamps are not used: the
//!   [`Pacer`] sets the times).
//! - Pacing is a token bucket on the monotonic clock, checked once per
//!   burst: no sleep or clock read per packet. Between bursts the sender
//!   sleeps when the next token is far off and spins when it is near.
//! - Per packet: one copy of the generator's frame into a port buffer,
//!   nothing allocated (the generator takes its buffers back through
//!   [`Generator::recycle`]), no lock, no syscall beyond the port's own
//!   (one `sendmmsg` per burst on AF_PACKET, none on DPDK).
//! - Back-pressure is not loss: frames the port did not take stay in the
//!   burst and go first next time. A frame the port refuses with an error
//!   ([`Queues::tx_errors`] moved) is dropped and counted in
//!   [`LiveStats::errors`], so a broken port cannot stall the sender.
//! - Counters are published once per burst with relaxed atomics; a
//!   reporter thread reads them (see [`LiveStats::totals`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::port::{Burst, Frame, PortId, Queues, MAX_BURST};

use super::Generator;

/// Frames per burst unless [`Pacer::with_burst`] says otherwise: enough to
/// amortise one `sendmmsg` (about 1-2 µs) to tens of nanoseconds a frame.
pub const DEFAULT_BURST: usize = 64;

/// The longest idle sleep between bursts is the time to the next token
/// less this: the rest is spun, so that the wake-up is on time.
const SPIN: Duration = Duration::from_micros(100);

/// How long the port's buffer pool may stay empty, with nothing of ours
/// in flight, before the sender gives up (a pool too small to send from).
const NO_BUFFER_LIMIT: Duration = Duration::from_secs(1);

/// What one sender did so far. Shared: the sender adds once per burst, a
/// reporter reads at any time. Several senders may share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct LiveStats {
    /// Frames the port took.
    pub sent: AtomicU64,
    /// Their bytes (Ethernet frames without preamble, FCS or gaps).
    pub bytes: AtomicU64,
    /// Frames dropped because the port refused them with an error, or
    /// because they did not fit a port buffer.
    pub errors: AtomicU64,
}

/// A plain copy of [`LiveStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveTotals {
    pub sent: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl LiveStats {
    pub fn totals(&self) -> LiveTotals {
        LiveTotals {
            sent: self.sent.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }

    fn add(&self, sent: u64, bytes: u64, errors: u64) {
        if sent > 0 {
            self.sent.fetch_add(sent, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
        }
        if errors > 0 {
            self.errors.fetch_add(errors, Relaxed);
        }
    }
}

impl core::ops::Add for LiveTotals {
    type Output = LiveTotals;
    fn add(self, o: LiveTotals) -> LiveTotals {
        LiveTotals {
            sent: self.sent + o.sent,
            bytes: self.bytes + o.bytes,
            errors: self.errors + o.errors,
        }
    }
}

/// When a sender stops (besides its stop flag and the generator running
/// dry): after `packets` frames taken from the generator, after `duration`
/// from the start of [`send_paced`], whichever comes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limit {
    pub packets: Option<u64>,
    pub duration: Option<Duration>,
}

impl Limit {
    /// No limit: until the stop flag or the end of the generator.
    pub const NONE: Limit = Limit {
        packets: None,
        duration: None,
    };

    pub const fn packets(n: u64) -> Limit {
        Limit {
            packets: Some(n),
            duration: None,
        }
    }

    pub const fn duration(d: Duration) -> Limit {
        Limit {
            packets: None,
            duration: Some(d),
        }
    }
}

/// Tokens are counted in packet-nanoseconds (packets x 10^9) so that
/// `elapsed_ns * pps` adds exactly, with no rounding drift at any rate.
const NS: u128 = 1_000_000_000;

/// A token bucket on the monotonic clock: `pps` tokens a second, one per
/// frame, at most [`Pacer::depth`] saved up.
///
/// The depth is 10 ms of tokens (at least one burst): a sender delayed by
/// the scheduler for up to 10 ms catches up with a short burst, so the
/// achieved rate holds; a longer stall is lost rather than repaid in a
/// line-rate spike.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// `None`: as fast as the port takes frames.
    pps: Option<u64>,
    burst: usize,
    /// Saved tokens, in packet-nanoseconds.
    credit: u128,
    last: Instant,
}

impl Pacer {
    /// A bucket for `pps` frames a second (`None` or `Some(0)`: no limit),
    /// holding one token to start with, bursts of [`DEFAULT_BURST`].
    pub fn new(pps: Option<u64>) -> Pacer {
        Pacer {
            pps: pps.filter(|&p| p > 0),
            burst: DEFAULT_BURST,
            credit: NS,
            last: Instant::now(),
        }
    }

    /// The same with bursts of `burst` frames (1..=[`MAX_BURST`]).
    pub fn with_burst(mut self, burst: usize) -> Pacer {
        self.burst = burst.clamp(1, MAX_BURST);
        self
    }

    /// The target rate (`None`: no limit).
    pub fn pps(&self) -> Option<u64> {
        self.pps
    }

    /// The most frames one [`Pacer::allowance`] grants.
    pub fn burst(&self) -> usize {
        self.burst
    }

    /// Most tokens saved up: 10 ms worth, at least one burst.
    pub fn depth(&self) -> u64 {
        self.pps.map_or(u64::MAX, |p| (p / 100).max(self.burst as u64))
    }

    /// How many frames may go now (at most one burst). Adds the tokens
    /// earned since the last call; spends none ([`Pacer::consume`] does).
    pub fn allowance(&mut self, now: Instant) -> usize {
        let Some(pps) = self.pps else { return self.burst };
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        let cap = u128::from(self.depth()) * NS;
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(u128::from(pps)))
            .min(cap);
        usize::try_from(self.credit / NS).unwrap_or(usize::MAX).min(self.burst)
    }

    /// Spends `n` tokens (frames sent or dropped).
    pub fn consume(&mut self, n: usize) {
        self.credit = self.credit.saturating_sub(n as u128 * NS);
    }

    /// How long until the next token, as of the last
    /// [`Pacer::allowance`] (zero when one is there or without a limit).
    pub fn until_next(&self) -> Duration {
        match self.pps {
            Some(pps) if self.credit < NS => {
                let ns = (NS - self.credit).div_ceil(u128::from(pps));
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        }
    }

    /// Waits for the next token: sleeps for most of a long wait, spins
    /// through a short one.
    fn wait(&self) {
        let d = self.until_next();
        if d > SPIN {
            std::thread::sleep(d - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Sends the generator's frames on `port` of `q` at the pacer's rate until
/// `stop` is set, `limit` is reached or the generator ends. Frames still in
/// hand at a stop are freed, not sent. Counts into `stats` once per burst.
///
/// Errors: the port's buffer pool stayed empty for a second with none of
/// our frames in flight (a pool too small to send from).
pub fn send_paced<Q: Queues>(
    q: &mut Q,
    port: PortId,
    gen: &mut Generator,
    pacer: &mut Pacer,
    limit: Limit,
    stop: &AtomicBool,
    stats: &LiveStats,
) -> Result<(), String> {
    let mut s = Sender {
        burst: Burst::new(),
        taken: 0,
        gen_done: false,
        tx_errors: q.tx_errors(port),
        starved_since: None,
    };
    let start = Instant::now();
    let deadline = limit.duration.map(|d| start + d);
    let max = limit.packets.unwrap_or(u64::MAX);
    let res = loop {
        if stop.load(Relaxed) {
            break Ok(());
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break Ok(());
        }
        let want = pacer.allowance(now);
        if want == 0 {
            pacer.wait();
            continue;
        }
        if let Err(e) = s.fill(q, gen, want, max, stats, pacer, now) {
            break Err(e);
        }
        if s.burst.is_empty() {
            if s.gen_done || s.taken >= max {
                break Ok(());
            }
            continue;
        }
        if s.send(q, port, stats, pacer) == 0 {
            // A full device queue: let it drain.
            std::hint::spin_loop();
        }
    };
    for f in s.burst.drain(..) {
        q.free(f);
    }
    q.flush();
    res
}

/// The state of one [`send_paced`] call.
struct Sender<F> {
    /// Frames filled and not sent yet (back-pressure keeps them here).
    burst: Burst<F>,
    /// Frames taken from the generator.
    taken: u64,
    gen_done: bool,
    /// The port's error count at the last look.
    tx_errors: u64,
    /// Since when the port's pool has been empty with nothing of ours held.
    starved_since: Option<Instant>,
}

impl<F: Frame> Sender<F> {
    /// Tops the burst up to `want` frames from the generator.
    #[allow(clippy::too_many_arguments)]
    fn fill<Q: Queues<Frame = F>>(
        &mut self,
        q: &mut Q,
        gen: &mut Generator,
        want: usize,
        max: u64,
        stats: &LiveStats,
        pacer: &mut Pacer,
        now: Instant,
    ) -> Result<(), String> {
        let mut too_big = 0;
        while self.burst.len() < want && !self.gen_done && self.taken < max {
            // The buffer first: a generated frame is never lost for want of one.
            let Some(mut f) = q.alloc() else {
                return self.starved(now);
            };
            self.starved_since = None;
            let Some(p) = gen.next() else {
                q.free(f);
                self.gen_done = true;
                break;
            };
            self.taken += 1;
            if f.replace(&p.frame) {
                self.burst.push(f);
            } else {
                q.free(f);
                too_big += 1;
            }
            gen.recycle(p.frame);
        }
        if too_big > 0 {
            stats.add(0, 0, too_big);
            pacer.consume(too_big as usize);
        }
        Ok(())
    }

    /// No buffer: fine while our own frames are in flight (they come back);
    /// an error after [`NO_BUFFER_LIMIT`] of nothing.
    fn starved(&mut self, now: Instant) -> Result<(), String> {
        if !self.burst.is_empty() {
            return Ok(());
        }
        let since = *self.starved_since.get_or_insert(now);
        if now.duration_since(since) >= NO_BUFFER_LIMIT {
            return Err(format!(
                "no free buffer in the port's pool for {} s: the pool is too small to send from",
                NO_BUFFER_LIMIT.as_secs()
            ));
        }
        Ok(())
    }

    /// One `tx_burst`; returns how many frames left the burst (sent or
    /// dropped on error).
    fn send<Q: Queues<Frame = F>>(&mut self, q: &mut Q, port: PortId, stats: &LiveStats, pacer: &mut Pacer) -> usize {
        let before: u64 = self.burst.iter().map(|f| f.data().len() as u64).sum();
        let sent = q.tx_burst(port, &mut self.burst);
        let after: u64 = self.burst.iter().map(|f| f.data().len() as u64).sum();
        let mut dropped = 0;
        let errors = q.tx_errors(port);
        if errors != self.tx_errors {
            self.tx_errors = errors;
            // The port refused the first frame it did not send (sendmmsg
            // fails on the first message it cannot send): drop it, so the
            // next call moves on.
            if !self.burst.is_empty() {
                let f = self.burst.remove(0);
                q.free(f);
                dropped = 1;
            }
        }
        stats.add(sent as u64, before - after, dropped);
        pacer.consume(sent + dropped as usize);
        sent + dropped as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{GenConfig, Profile};
    use crate::port::memory::{MemoryQueues, Source, Templates};

    fn sink() -> MemoryQueues {
        let none = Templates {
            frames: Vec::new().into(),
            next: 0,
            spoof: None,
        };
        MemoryQueues::new(Source::Templates(none), 2 * DEFAULT_BURST, 0, 0)
    }

    fn gen(profile: Profile, count: u64) -> Generator {
        Generator::new(GenConfig {
            mix: vec![(profile, 1)],
            count,
            ..GenConfig::default()
        })
    }

    #[test]
    fn pacer_grants_the_rate_and_no_more() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(1000)).with_burst(32);
        p.last = t0;
        p.credit = 0;
        assert_eq!(p.allowance(t0), 0);
        assert_eq!(p.until_next(), Duration::from_millis(1));
        // 10 ms at 1000 pps: 10 tokens.
        assert_eq!(p.allowance(t0 + Duration::from_millis(10)), 10);
        p.consume(10);
        // A long stall saves at most the depth (one burst here: 10 ms is
        // only 10 tokens), and a grant is at most one burst.
        assert_eq!(p.depth(), 32);
        assert_eq!(p.allowance(t0 + Duration::from_secs(5)), 32);
        // A clock that goes back earns nothing.
        p.consume(32);
        assert_eq!(p.allowance(t0), 0);
    }

    #[test]
    fn pacer_without_rate_always_grants_a_burst() {
        let mut p = Pacer::new(None).with_burst(8);
        assert_eq!(p.allowance(Instant::now()), 8);
        assert_eq!(Pacer::new(Some(0)).pps(), None);
        assert_eq!(p.until_next(), Duration::ZERO);
    }

    #[test]
    fn sends_exactly_the_generator_frames() {
        let mut q = sink();
        let mut g = gen(Profile::SynFlood, 1000);
        let want: u64 = gen(Profile::SynFlood, 1000).map(|p| p.frame.len() as u64).sum();
        let stats = LiveStats::default();
        let stop = AtomicBool::new(false);
        let mut pacer = Pacer::new(None);
        send_paced(&mut q, PortId::Outside, &mut g, &mut pacer, Limit::NONE, &stop, &stats).unwrap();
        let t = stats.totals();
        assert_eq!((t.sent, t.bytes, t.errors), (1000, want, 0));
        assert_eq!(q.sink(PortId::Outside).packets, 1000);
        assert_eq!(q.sink(PortId::Outside).bytes, want);
    }

    #[test]
    fn stops_at_the_packet_limit_and_the_deadline() {
        let (stats, stop) = (LiveStats::default(), AtomicBool::new(false));
        let mut q = sink();
        let mut g = gen(Profile::UdpFlood, u64::MAX);
        send_paced(
            &mut q,
            PortId::Outside,
            &mut g,
            &mut Pacer::new(None),
            Limit::packets(777),
            &stop,
            &stats,
        )
        .unwrap();
        assert_eq!(stats.totals().sent, 777);

        let stats = LiveStats::default();
        let t = Instant::now();
        let limit = Limit::duration(Duration::from_millis(300));
        send_paced(
            &mut q,
            PortId::Outside,
            &mut g,
            &mut Pacer::new(Some(2000)),
            limit,
            &stop,
            &stats,
        )
        .unwrap();
        let elapsed = t.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        // 2000 pps for 0.3 s: at most 600 frames, and the pacer never runs
        // ahead (one token at start, whatever a slow machine adds to the
        // time). No lower bound but "it sent": a loaded machine deschedules
        // the sender, and the pacer does not burst to catch up afterwards
        // (by design), so 183 frames in 406 ms has been seen under load.
        let sent = stats.totals().sent;
        let most = 1 + (elapsed.as_secs_f64() * 2000.0) as u64;
        assert!(sent <= most && sent > 0, "{sent} frames in {elapsed:?}");
    }

    #[test]
    fn the_stop_flag_ends_it() {
        let stop = AtomicBool::new(true);
        let stats = LiveStats::default();
        let mut g = gen(Profile::SynFlood, 10);
        send_paced(
            &mut sink(),
            PortId::Outside,
            &mut g,
            &mut Pacer::new(None),
            Limit::NONE,
            &stop,
            &stats,
        )
        .unwrap();
        assert_eq!(stats.totals(), LiveTotals::default());
    }
}
