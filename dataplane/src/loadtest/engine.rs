//! One core's clients on a pair of ports: the poll loop.
//!
//! The core owns its [`Queues`] (the AF_PACKET sockets of `--iface`, where
//! the clients send and Moat's challenges come back, as [`PortId::Outside`],
//! and of `--rx-iface`, where the origin's answers arrive by direct server
//! return, as [`PortId::Inside`]), its clients and its counters. Each turn
//! of the loop:
//! - receives a burst on each port and hands every TCP segment to its
//!   client, found by [`Layout::client`] from the destination address and
//!   port; the frame goes straight back to its ring;
//! - every [`SCAN_EVERY`], fires the clients' timers (starts, SYN and data
//!   retransmissions, timeouts) in one pass over the fixed client table;
//! - sends what the clients wrote, in bursts, in frames from the backend's
//!   pool ([`Queues::alloc`]).
//!
//! Nothing is allocated after start-up. When there is nothing to do the
//! core naps [`NAP`] (this is a load generator sharing the machine with
//! the system under test, not a poll-mode dataplane): time to first byte
//! is measured to about a millisecond, the retirement time of the
//! AF_PACKET ring's blocks anyway.
//!
//! After `duration` (or once `stop` is set), no client starts a new
//! connection; the loop ends when the last one in flight has ended, at
//! worst its timeout plus the linger time later.

use core::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use classifier::parse::parse;
use classifier::time::{Nanos, MILLISECOND, SECOND};
use classifier::wire::TcpOption;

use super::conn::{Attempt, Conn, Ctx, SegIn, Timing, Tx};
use super::frames::{self, Endpoints, Segment};
use super::layout::Layout;
use super::stats::{ClientStats, Live, Totals};
use crate::port::{send_all, Burst, Frame, PortId, Queues};

/// How often the clients' timers are looked at.
pub const SCAN_EVERY: Nanos = MILLISECOND;
/// Sleep when a turn found nothing to do.
pub const NAP: Duration = Duration::from_micros(100);
/// Frames received per port and turn.
const RX_BURST: usize = 64;
/// Frames sent per `tx_burst` (the AF_PACKET pool holds 64).
const TX_BURST: usize = 32;
/// How often the live figures are published.
const PUBLISH_EVERY: Nanos = 100 * MILLISECOND;

/// What one core runs.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub layout: Layout,
    /// Our MAC (the source of every frame) and the next hop's (Moat's
    /// outside port).
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The service: VIP and TCP port.
    pub dst: Ipv4Addr,
    pub dport: u16,
    /// The request every connection sends ([`super::http::request`]).
    pub request: Vec<u8>,
    pub timing: Timing,
    /// New connections start for this long.
    pub duration: Nanos,
    /// The clients' first connections are spread evenly over this.
    pub ramp: Nanos,
    /// Seeds ISNs, IP IDs and timestamp offsets.
    pub seed: u64,
}

/// What a core counted.
#[derive(Debug, Clone)]
pub struct CoreReport {
    pub totals: Totals,
    /// Each client's address and counters.
    pub clients: Vec<(Ipv4Addr, ClientStats)>,
    /// From the start to the end of the loop.
    pub elapsed: Nanos,
}

/// xorshift64*: the numbers a stack draws (not a secret: the origin is
/// ours, and SYN authentication does not depend on them).
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Runs one core's clients until they are done (see the module docs).
/// `stop` ends the starting of new connections early.
pub fn run<Q: Queues>(q: &mut Q, cfg: &CoreConfig, stop: &AtomicBool, live: &Live) -> CoreReport {
    let t0 = Instant::now();
    let clock = || t0.elapsed().as_nanos() as Nanos;
    let n = cfg.layout.clients();
    let mut conns: Vec<Conn> = (0..n)
        .map(|s| {
            let ep = Endpoints {
                src_mac: cfg.src_mac,
                dst_mac: cfg.dst_mac,
                src: cfg.layout.addr(s),
                dst: cfg.dst,
                sport: 0,
                dport: cfg.dport,
            };
            Conn::new(ep, cfg.ramp.saturating_mul(s as u64) / n.max(1) as u64)
        })
        .collect();
    // The wall clock at the start: ISNs and timestamps grow with it from
    // one run to the next (a run reusing a 4-tuple that the origin still
    // holds in TIME-WAIT must send a higher ISN or timestamp, RFC 6191), and
    // each run starts its clients' port cycles further on.
    let wall0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Nanos);
    let mut tries = vec![(wall0 / SECOND).wrapping_mul(4) as u32; n];
    let mut rng = cfg.seed | 1;
    let mut totals = Totals::default();
    let mut rx: Burst<Q::Frame> = Burst::new();
    let mut out: Burst<Q::Frame> = Burst::new();
    let (mut next_scan, mut next_publish, mut naps) = (0, 0, 0u32);
    // Everything in flight ends within its timeout and linger; this bounds
    // the loop whatever happens on the wire.
    let hard_end = cfg
        .duration
        .saturating_add(cfg.timing.timeout)
        .saturating_add(cfg.timing.linger)
        .saturating_add(cfg.timing.data_rto);
    loop {
        let now = clock();
        let mut tx = FrameTx {
            q: &mut *q,
            out: &mut out,
            sent: 0,
            dropped: 0,
        };
        let mut busy = false;
        for port in PortId::ALL {
            let got = tx.q.rx_burst(port, &mut rx, RX_BURST);
            busy |= got > 0;
            for f in rx.drain(..) {
                totals.c.rx_frames += 1;
                let mut ctx = Ctx {
                    now,
                    timing: &cfg.timing,
                    request: &cfg.request,
                    tx: &mut tx,
                    totals: &mut totals,
                };
                receive(&mut ctx, cfg, &mut conns, f.data());
                tx.q.free(f);
            }
        }
        let mut done = false;
        if now >= next_scan {
            next_scan = now + SCAN_EVERY;
            let accepting = now < cfg.duration && !stop.load(Relaxed);
            let mut in_flight = 0;
            for (s, conn) in conns.iter_mut().enumerate() {
                if !accepting {
                    conn.park();
                }
                if conn.timer() <= now {
                    busy = true;
                    let mut ctx = Ctx {
                        now,
                        timing: &cfg.timing,
                        request: &cfg.request,
                        tx: &mut tx,
                        totals: &mut totals,
                    };
                    conn.on_timer(&mut ctx, |ep| fresh(ep, &mut tries[s], s, cfg, &mut rng, (now, wall0)));
                }
                in_flight += usize::from(!conn.idle());
            }
            done = !accepting && in_flight == 0;
        }
        tx.flush();
        totals.c.tx_frames += tx.sent;
        totals.c.tx_dropped += tx.dropped;
        busy |= tx.sent > 0;
        if now >= next_publish {
            live.publish(&totals.c);
            next_publish = now + PUBLISH_EVERY;
        }
        if done || now >= hard_end {
            break;
        }
        if busy {
            naps = 0;
        } else {
            naps += 1;
            if naps > 8 {
                std::thread::sleep(NAP);
            }
        }
    }
    live.publish(&totals.c);
    CoreReport {
        clients: conns.iter().map(|c| (c.ep.src, c.stats)).collect(),
        totals,
        elapsed: clock(),
    }
}

/// A new attempt of client `s`: the next port of its cycle; an ISN that
/// grows with the wall clock as RFC 6528's does (a 4 µs clock plus a keyed
/// hash of the 4-tuple); timestamps from a millisecond clock plus a hash of
/// the address pair (Linux's `tsoffset`), so that both grow across runs.
fn fresh(
    ep: &Endpoints,
    tries: &mut u32,
    s: usize,
    cfg: &CoreConfig,
    rng: &mut u64,
    (now, wall0): (Nanos, Nanos),
) -> Attempt {
    let sport = cfg.layout.port(s, *tries);
    *tries = tries.wrapping_add(1);
    let pair = u64::from(u32::from(ep.src)) << 32 | u64::from(u32::from(ep.dst));
    let mut h = (pair ^ u64::from(sport) << 16 ^ u64::from(ep.dport)) ^ cfg.seed;
    let offset = next(&mut h) as u32;
    let mut h = pair ^ cfg.seed.rotate_left(17);
    let ts_offset = next(&mut h) as u32;
    let wall = wall0.saturating_add(now);
    Attempt {
        sport,
        isn: ((wall / 4000) as u32).wrapping_add(offset),
        ip_id: next(rng) as u16,
        ts_base: ts_offset.wrapping_add((wall0 / MILLISECOND) as u32),
    }
}

/// One received frame: a segment from the service to one of our clients,
/// or a stray.
fn receive<T: Tx>(c: &mut Ctx<T>, cfg: &CoreConfig, conns: &mut [Conn], frame: &[u8]) {
    let Ok(p) = parse(frame) else {
        c.totals.c.rx_stray += 1;
        return;
    };
    let (Some(t), IpAddr::V4(src), IpAddr::V4(dst)) = (p.tcp(), p.src_ip(), p.dst_ip()) else {
        c.totals.c.rx_stray += 1;
        return;
    };
    let client = cfg.layout.client(dst, t.dport);
    let Some(conn) = client
        .and_then(|s| conns.get_mut(s))
        .filter(|conn| src == cfg.dst && t.sport == cfg.dport && conn.ep.sport == t.dport)
    else {
        c.totals.c.rx_stray += 1;
        return;
    };
    let start = usize::from(p.l4_offset) + 20;
    let end = usize::from(p.l4_offset) + usize::from(t.header_len);
    let (tsval, wscale) = options(frame.get(start..end).unwrap_or(&[]));
    let seg = SegIn {
        seq: t.seq,
        ack: t.ack,
        flags: t.flags,
        payload: p.payload(frame),
        tsval,
        wscale,
    };
    conn.on_segment(c, &seg);
}

/// The timestamp value and whether a window scale option is there.
pub(crate) fn options(mut rest: &[u8]) -> (Option<u32>, bool) {
    let (mut ts, mut ws) = (None, false);
    while let Ok((next, opt)) = TcpOption::parse(rest) {
        match opt {
            TcpOption::Timestamps { tsval, .. } => ts = Some(tsval),
            TcpOption::WindowScale(_) => ws = true,
            TcpOption::EndOfList => break,
            _ => {}
        }
        rest = next;
        if rest.is_empty() {
            break;
        }
    }
    (ts, ws)
}

/// Builds the clients' segments into pool frames and sends them on the
/// outside port in bursts.
struct FrameTx<'q, Q: Queues> {
    q: &'q mut Q,
    out: &'q mut Burst<Q::Frame>,
    sent: u64,
    dropped: u64,
}

impl<Q: Queues> std::fmt::Debug for FrameTx<'_, Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameTx {{ queued: {}, sent: {} }}", self.out.len(), self.sent)
    }
}

impl<Q: Queues> FrameTx<'_, Q> {
    fn flush(&mut self) {
        let (sent, dropped) = send_all(self.q, PortId::Outside, self.out);
        self.sent += sent;
        self.dropped += dropped;
    }

    fn frame(&mut self) -> Option<Q::Frame> {
        if let Some(f) = self.q.alloc() {
            return Some(f);
        }
        self.flush();
        self.q.alloc()
    }
}

impl<Q: Queues> Tx for FrameTx<'_, Q> {
    fn send(&mut self, ep: &Endpoints, seg: &Segment) {
        let Some(mut f) = self.frame() else {
            self.dropped += 1;
            return;
        };
        if !f.set_len(frames::frame_len(seg)) || frames::write(ep, seg, f.data_mut()).is_none() {
            self.q.free(f);
            self.dropped += 1;
            return;
        }
        self.out.push(f);
        if self.out.len() >= TX_BURST {
            self.flush();
        }
    }
}
