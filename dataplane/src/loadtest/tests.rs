//! The client against Moat's own SYN authentication (classifier::synauth
//! makes the challenges and judges the answers, as the dataplane does) and
//! a scripted origin, in virtual time.

use core::net::{IpAddr, Ipv4Addr};

use classifier::cookie::CookieSecrets;
use classifier::parse::parse;
use classifier::policy::SynAuth;
use classifier::synauth;
use classifier::time::{Nanos, MILLISECOND, SECOND};
use classifier::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};

use super::conn::{Attempt, Conn, Ctx, SegIn, Timing, Tx};
use super::engine::options;
use super::frames::{self, Endpoints, Options, Segment};
use super::http;
use super::stats::{Failure, Totals};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 100);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// Moat's clock: cookies are made and checked in the same 64 s slot.
const MOAT_T0: Nanos = 1_767_225_600 * SECOND;
const PAGE: &[u8] = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Length: 4\r\n\r\npage";

#[derive(Default)]
struct Wire {
    sent: Vec<Vec<u8>>,
}

impl Tx for Wire {
    fn send(&mut self, ep: &Endpoints, seg: &Segment) {
        let mut f = vec![0; frames::frame_len(seg)];
        frames::write(ep, seg, &mut f).unwrap();
        self.sent.push(f);
    }
}

/// A sent or received frame's TCP fields.
#[derive(Debug, Clone)]
struct Seen {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
    tsval: Option<u32>,
    wscale: bool,
}

fn seen(frame: &[u8]) -> Seen {
    let p = parse(frame).unwrap();
    let t = *p.tcp().unwrap();
    let l4 = usize::from(p.l4_offset);
    let (tsval, wscale) = options(&frame[l4 + 20..l4 + usize::from(t.header_len)]);
    Seen {
        sport: t.sport,
        dport: t.dport,
        seq: t.seq,
        ack: t.ack,
        flags: t.flags,
        payload: p.payload(frame).to_vec(),
        tsval,
        wscale,
    }
}

/// One client, its wire and counters, in virtual time.
struct Sim {
    conn: Conn,
    wire: Wire,
    totals: Totals,
    timing: Timing,
    request: Vec<u8>,
    now: Nanos,
    tries: u16,
}

impl Sim {
    fn new() -> Sim {
        let ep = Endpoints {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: CLIENT,
            dst: VIP,
            sport: 0,
            dport: 80,
        };
        Sim {
            conn: Conn::new(ep, 0),
            wire: Wire::default(),
            totals: Totals::default(),
            timing: Timing::default(),
            request: http::request("203.0.113.10", "/"),
            now: 0,
            tries: 0,
        }
    }

    /// Advances to the connection's timer and fires it.
    fn timer(&mut self) {
        self.now = self.conn.timer();
        let tries = &mut self.tries;
        let mut c = Ctx {
            now: self.now,
            timing: &self.timing,
            request: &self.request,
            tx: &mut self.wire,
            totals: &mut self.totals,
        };
        self.conn.on_timer(&mut c, |_| {
            *tries += 1;
            Attempt {
                sport: 40000 + *tries,
                isn: 1000 * u32::from(*tries),
                ip_id: 1,
                ts_base: 77,
            }
        });
    }

    /// Delivers a frame `dt` after the last event.
    fn deliver(&mut self, dt: Nanos, frame: &[u8]) {
        self.now += dt;
        let s = seen(frame);
        let seg = SegIn {
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            payload: &s.payload,
            tsval: s.tsval,
            wscale: s.wscale,
        };
        let mut c = Ctx {
            now: self.now,
            timing: &self.timing,
            request: &self.request,
            tx: &mut self.wire,
            totals: &mut self.totals,
        };
        self.conn.on_segment(&mut c, &seg);
    }

    fn take_sent(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.wire.sent)
    }

    /// The origin's segment to the client's current port.
    fn origin(&self, seq: u32, ack: u32, flags: u8, ts: bool, payload: &[u8]) -> Vec<u8> {
        let ep = Endpoints {
            src_mac: [2, 0, 0, 0, 0, 3],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src: VIP,
            dst: CLIENT,
            sport: 80,
            dport: self.conn.ep.sport,
        };
        let seg = Segment {
            seq,
            ack,
            flags,
            window: 509,
            options: if ts {
                Options::Ts { tsval: 5555, tsecr: 0 }
            } else {
                Options::None
            },
            ip_id: 0,
            payload,
        };
        let mut f = vec![0; frames::frame_len(&seg)];
        frames::write(&ep, &seg, &mut f).unwrap();
        f
    }

    /// The origin accepts the SYN `syn`, answers the request with `answer`
    /// and its FIN, and acknowledges the client's FIN.
    fn serve(&mut self, syn: &Seen, answer: &[u8]) {
        const IRS: u32 = 9_000_000;
        let synack = self.origin(IRS, syn.seq.wrapping_add(1), SYN | ACK, true, &[]);
        self.deliver(MILLISECOND, &synack);
        let out: Vec<Seen> = self.take_sent().iter().map(|f| seen(f)).collect();
        assert_eq!(out.len(), 2, "ACK and request: {out:?}");
        assert_eq!((out[0].flags, out[0].ack), (ACK, IRS + 1));
        assert!(out[0].tsval.is_some(), "timestamps agreed");
        assert_eq!(out[1].flags, PSH | ACK);
        assert_eq!(out[1].payload, self.request);
        let seq = out[1].seq.wrapping_add(self.request.len() as u32);
        let data = self.origin(IRS + 1, seq, PSH | ACK | FIN, true, answer);
        self.deliver(MILLISECOND, &data);
        let fin = seen(&self.take_sent().pop().expect("the client's FIN"));
        assert_eq!(fin.flags, FIN | ACK);
        assert_eq!(
            fin.ack,
            IRS + 1 + answer.len() as u32 + 1,
            "acknowledges the data and the FIN"
        );
        let last = self.origin(IRS + 2 + answer.len() as u32, fin.seq + 1, ACK, true, &[]);
        self.deliver(MILLISECOND, &last);
        assert!(self.conn.idle());
    }
}

fn moat() -> CookieSecrets {
    CookieSecrets::new([7; 16])
}

/// Moat's challenge to the SYN `frame` at virtual time `now`.
fn challenge(mode: SynAuth, frame: &[u8], now: Nanos) -> Vec<u8> {
    let p = parse(frame).unwrap();
    let mut out = [0u8; 128];
    let n = synauth::challenge(mode, &moat(), MOAT_T0 + now, frame, &p, p.tcp().unwrap(), &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn challenge_ack_is_answered_by_a_rst_moat_accepts_then_the_syn_again() {
    let mut s = Sim::new();
    s.timer();
    let syn = s.take_sent().pop().unwrap();
    let first = seen(&syn);
    assert_eq!((first.flags, first.dport), (SYN, 80));
    let ch = challenge(SynAuth::ChallengeAck, &syn, s.now);
    s.deliver(MILLISECOND, &ch);
    let rst = s.take_sent().pop().expect("a RST");
    let p = parse(&rst).unwrap();
    let t = p.tcp().unwrap();
    assert_eq!(t.flags, RST);
    assert_eq!(t.seq, seen(&ch).ack, "<SEQ=SEG.ACK><CTL=RST>");
    assert!(
        synauth::check_rst(&moat(), MOAT_T0 + s.now, &p, t),
        "Moat verifies the source"
    );
    assert_eq!(p.src_ip(), IpAddr::V4(CLIENT));
    // Nothing more until the SYN's timer, re-armed as Linux 5.10+ does: the
    // same SYN again 8 ms after the challenge, not at the 1 s RTO.
    assert_eq!(s.conn.timer(), s.now + 8 * MILLISECOND);
    s.timer();
    let again = seen(&s.take_sent().pop().unwrap());
    assert_eq!((again.flags, again.seq, again.sport), (SYN, first.seq, first.sport));
    s.serve(&again, PAGE);
    let c = s.totals.c;
    assert_eq!((c.tried, c.completed, c.failed_total()), (1, 1, 0));
    assert_eq!((c.challenge_rsts, c.syn_retransmits, c.reconnects), (1, 1, 0));
    let ttfb = s.totals.ttfb_ms(0.5).unwrap();
    assert!((11.0..11.1).contains(&ttfb), "challenge, 8 ms, two hops: {ttfb} ms");
    assert_eq!(s.conn.stats.completed, 1);
    // The next connection starts after the think time, from the next port.
    assert_eq!(s.conn.timer(), s.now + s.timing.think);
    s.timer();
    assert_eq!(seen(&s.take_sent().pop().unwrap()).sport, 40002);
}

#[test]
fn before_linux_5_10_the_syn_after_a_challenge_waits_for_its_rto() {
    let mut s = Sim::new();
    s.timing.challenge_retry = 0;
    s.timer();
    let syn = s.take_sent().pop().unwrap();
    s.deliver(MILLISECOND, &challenge(SynAuth::ChallengeAck, &syn, 0));
    assert_eq!(seen(&s.take_sent().pop().unwrap()).flags, RST);
    assert_eq!(s.conn.timer(), SECOND);
    // A second challenge after a retransmission does not re-arm the timer
    // either way (Linux: only while `icsk_retransmits` is 0).
    s.timing.challenge_retry = 8 * MILLISECOND;
    s.timer();
    let again = s.take_sent().pop().unwrap();
    s.deliver(MILLISECOND, &challenge(SynAuth::ChallengeAck, &again, s.now));
    assert_eq!(s.conn.timer(), SECOND + 2 * SECOND, "the doubled RTO");
}

#[test]
fn cookie_reset_acks_the_cookie_gets_reset_and_connects_again() {
    let mut s = Sim::new();
    s.timer();
    let syn = s.take_sent().pop().unwrap();
    let ch = challenge(SynAuth::CookieReset, &syn, s.now);
    s.deliver(MILLISECOND, &ch);
    let out = s.take_sent();
    assert_eq!(out.len(), 2, "established: ACK, then the request at once");
    let p = parse(&out[0]).unwrap();
    let t = *p.tcp().unwrap();
    assert_eq!(t.flags, ACK);
    assert!(
        synauth::check_ack(&moat(), MOAT_T0 + s.now, &p, &t),
        "Moat verifies the source"
    );
    assert_eq!(seen(&out[1]).flags, PSH | ACK);
    // Moat resets; the request's copy at the origin draws a RST too, later.
    let mut reply = [0u8; 128];
    let n = synauth::reset_after_ack(&out[0], &p, &t, &mut reply).unwrap();
    s.deliver(MILLISECOND, &reply[..n]);
    assert_eq!(s.totals.c.resets_received, 1);
    s.timer();
    let second = seen(&s.take_sent().pop().unwrap());
    assert_eq!(second.flags, SYN);
    assert_ne!(second.sport, seen(&syn).sport, "a new connection, from a new port");
    s.serve(&second, PAGE);
    let c = s.totals.c;
    assert_eq!((c.tried, c.completed, c.reconnects, c.failed_total()), (1, 1, 1, 0));
}

#[test]
fn silence_is_a_timeout_after_linux_like_retransmissions() {
    let mut s = Sim::new();
    s.timer();
    let mut at = vec![];
    while s.totals.c.failed_total() == 0 {
        s.timer();
        at.push(s.now);
    }
    // SYNs at 0, 1 s, 3 s; the timeout at 5 s.
    assert_eq!(at, vec![SECOND, 3 * SECOND, 5 * SECOND]);
    let c = s.totals.c;
    assert_eq!((c.syn_retransmits, c.failed(Failure::Timeout), c.completed), (2, 1, 0));
    assert_eq!(s.take_sent().len(), 3);
    assert!(s.conn.idle());
}

#[test]
fn refused_after_every_reconnect_is_a_reset() {
    let mut s = Sim::new();
    s.timer();
    for _ in 0..=s.timing.reconnects {
        let syn = seen(&s.take_sent().pop().unwrap());
        let rst = s.origin(0, syn.seq + 1, RST | ACK, false, &[]);
        s.deliver(MILLISECOND, &rst);
        if !s.conn.idle() {
            s.timer();
        }
    }
    let c = s.totals.c;
    assert_eq!((c.reconnects, c.failed(Failure::Reset), c.resets_received), (3, 1, 4));
    assert_eq!(s.conn.stats.failed, [0, 1, 0]);
}

#[test]
fn a_lost_request_is_sent_again_and_an_error_status_is_a_bad_answer() {
    let mut s = Sim::new();
    s.timer();
    let syn = seen(&s.take_sent().pop().unwrap());
    let synack = s.origin(500, syn.seq + 1, SYN | ACK, false, &[]);
    s.deliver(MILLISECOND, &synack);
    let request = seen(&s.take_sent().pop().unwrap());
    assert!(request.tsval.is_none(), "no timestamps unless both sides sent them");
    s.timer();
    let again = seen(&s.take_sent().pop().unwrap());
    assert_eq!(
        (again.seq, again.payload.clone()),
        (request.seq, request.payload.clone())
    );
    assert_eq!(s.totals.c.data_retransmits, 1);
    // A stale duplicate of the SYN-ACK is answered with an ACK.
    s.deliver(MILLISECOND, &synack);
    assert_eq!(seen(&s.take_sent().pop().unwrap()).flags, ACK);
    let answer = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    let seq = request.seq + s.request.len() as u32;
    let data = s.origin(501, seq, PSH | ACK, false, answer);
    s.deliver(MILLISECOND, &data);
    assert_eq!(s.totals.c.failed(Failure::BadAnswer), 1);
    let fin = seen(&s.take_sent().pop().unwrap());
    assert_eq!(fin.flags, FIN | ACK);
    // The origin never answers the FIN: the connection lingers, sends its FIN
    // again, and lets go after the linger time.
    while !s.conn.idle() {
        s.timer();
    }
    assert!(s.take_sent().iter().all(|f| seen(f).flags == FIN | ACK));
    assert_eq!(s.totals.c.completed, 0);
}

#[test]
fn out_of_order_data_draws_a_duplicate_ack_and_strangers_are_strays() {
    let mut s = Sim::new();
    s.timer();
    let syn = seen(&s.take_sent().pop().unwrap());
    let synack = s.origin(500, syn.seq + 1, SYN | ACK, false, &[]);
    s.deliver(MILLISECOND, &synack);
    s.take_sent();
    let seq = syn.seq + 1 + s.request.len() as u32;
    let later = s.origin(600, seq, ACK, false, b"tail");
    s.deliver(MILLISECOND, &later);
    let dup = seen(&s.take_sent().pop().unwrap());
    assert_eq!((dup.flags, dup.ack), (ACK, 501));
    assert_eq!(s.totals.c.rx_out_of_order, 1);
    // The response in two segments, then the FIN alone.
    let (a, b) = PAGE.split_at(20);
    s.deliver(MILLISECOND, &s.origin(501, seq, ACK, false, a));
    assert_eq!(seen(&s.take_sent().pop().unwrap()).ack, 521);
    s.deliver(MILLISECOND, &s.origin(521, seq, PSH | ACK, false, b));
    assert_eq!(s.totals.c.completed, 1);
    let fin = seen(&s.take_sent().pop().unwrap());
    s.deliver(
        MILLISECOND,
        &s.origin(501 + PAGE.len() as u32, fin.seq + 1, FIN | ACK, false, &[]),
    );
    assert_eq!(
        seen(&s.take_sent().pop().unwrap()).flags,
        ACK,
        "the server's FIN acknowledged"
    );
    assert!(s.conn.idle());
    s.deliver(MILLISECOND, &synack);
    assert_eq!(s.totals.c.rx_stray, 1);
}

/// A wire for the whole engine: frames the clients send on the outside
/// port are answered at once by a minimal origin (SYN-ACK, the page and
/// its FIN, the ACK of the client's FIN) on the inside port, as by direct
/// server return.
struct OriginQueues {
    pool: crate::port::Pool,
    inside: std::collections::VecDeque<Vec<u8>>,
    /// Frames to deliver on the outside port (strays from elsewhere).
    outside: std::collections::VecDeque<Vec<u8>>,
    sent: u64,
}

impl OriginQueues {
    fn answer(&mut self, frame: &[u8]) {
        let s = seen(frame);
        let p = parse(frame).unwrap();
        let IpAddr::V4(client) = p.src_ip() else { panic!("IPv4") };
        let ep = Endpoints {
            src_mac: [2, 0, 0, 0, 0, 3],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src: VIP,
            dst: client,
            sport: 80,
            dport: s.sport,
        };
        let mut reply = |seq: u32, ack: u32, flags: u8, payload: &[u8]| {
            let seg = Segment {
                seq,
                ack,
                flags,
                window: 509,
                options: Options::None,
                ip_id: 0,
                payload,
            };
            let mut f = vec![0; frames::frame_len(&seg)];
            frames::write(&ep, &seg, &mut f).unwrap();
            self.inside.push_back(f);
        };
        const IRS: u32 = 77;
        if s.flags == SYN {
            reply(IRS, s.seq + 1, SYN | ACK, &[]);
        } else if !s.payload.is_empty() {
            reply(IRS + 1, s.seq + s.payload.len() as u32, PSH | ACK | FIN, PAGE);
        } else if s.flags & FIN != 0 {
            reply(IRS + 2 + PAGE.len() as u32, s.seq + 1, ACK, &[]);
        }
    }
}

impl crate::port::Queues for OriginQueues {
    type Frame = crate::port::HeapFrame;

    fn rx_burst(&mut self, port: crate::port::PortId, out: &mut crate::port::Burst<Self::Frame>, max: usize) -> usize {
        let q = match port {
            crate::port::PortId::Outside => &mut self.outside,
            crate::port::PortId::Inside => &mut self.inside,
        };
        let mut n = 0;
        while n < max && !out.is_full() {
            let Some(bytes) = q.pop_front() else { break };
            let mut f = self.pool.alloc().expect("pool");
            assert!(f.fill(&bytes));
            out.push(f);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, port: crate::port::PortId, frames: &mut crate::port::Burst<Self::Frame>) -> usize {
        assert_eq!(port, crate::port::PortId::Outside, "clients send toward Moat only");
        let n = frames.len();
        for f in frames.drain(..) {
            use crate::port::Frame;
            let bytes = f.data().to_vec();
            self.answer(&bytes);
            self.sent += 1;
            self.pool.free(f);
        }
        n
    }

    fn free(&mut self, f: Self::Frame) {
        self.pool.free(f);
    }

    fn alloc(&mut self) -> Option<Self::Frame> {
        self.pool.alloc()
    }
}

#[test]
fn the_engine_runs_its_clients_to_the_end_and_finds_them_by_address_and_port() {
    use super::engine::{run, CoreConfig};
    use super::layout::Layout;
    use super::stats::Live;
    use std::sync::atomic::AtomicBool;

    // Core 0 of 2: the clients on 10.10.0.100 and .102 (three of the five).
    let layout = Layout::new(CLIENT, 4, 5, 2, 0).unwrap();
    let cfg = CoreConfig {
        layout,
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        dst: VIP,
        dport: 80,
        request: http::request("203.0.113.10", "/"),
        timing: Timing {
            think: 5 * MILLISECOND,
            ..Timing::default()
        },
        duration: 150 * MILLISECOND,
        ramp: 10 * MILLISECOND,
        seed: 3,
    };
    let mut q = OriginQueues {
        pool: crate::port::Pool::new(64),
        inside: Default::default(),
        outside: Default::default(),
        sent: 0,
    };
    // A frame for the other core's address, and one for no client.
    let stray = |dst: Ipv4Addr| {
        let ep = Endpoints {
            src_mac: [2; 6],
            dst_mac: [2; 6],
            src: VIP,
            dst,
            sport: 80,
            dport: 32768,
        };
        let seg = Segment {
            seq: 1,
            ack: 1,
            flags: SYN | ACK,
            window: 1,
            options: Options::None,
            ip_id: 0,
            payload: &[],
        };
        let mut f = vec![0; frames::frame_len(&seg)];
        frames::write(&ep, &seg, &mut f).unwrap();
        f
    };
    q.outside.push_back(stray(Ipv4Addr::new(10, 10, 0, 101)));
    q.outside.push_back(stray(Ipv4Addr::new(10, 10, 0, 99)));
    let live = Live::default();
    let r = run(&mut q, &cfg, &AtomicBool::new(false), &live);
    let c = r.totals.c;
    assert_eq!(r.clients.len(), 3);
    let addrs: Vec<Ipv4Addr> = r.clients.iter().map(|(a, _)| *a).collect();
    assert_eq!(addrs, [CLIENT, Ipv4Addr::new(10, 10, 0, 102), CLIENT]);
    assert!(
        c.completed >= 3 && c.completed == c.tried && c.failed_total() == 0,
        "{c:?}"
    );
    assert!(r.clients.iter().all(|(_, s)| s.completed >= 1));
    assert_eq!(c.rx_stray, 2);
    // SYN, ACK, request, and the FIN that also acknowledges the origin's
    // (sent with the page) per connection.
    assert_eq!(c.tx_frames, 4 * c.tried);
    assert_eq!(q.sent, c.tx_frames);
    assert_eq!(live.read()[1], c.completed, "the last figures are published");
    assert!(r.elapsed >= cfg.duration);
}
