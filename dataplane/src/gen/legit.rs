//! Legitimate clients: TCP (HTTP) flows to `vip:tcp_port` and UDP game
//! sessions to `vip:udp_port`, from a fixed pool of client addresses.
//!
//! Only the client's packets exist: the origin answers directly (DSR), so
//! the client's acknowledgement numbers count from a random server ISN, and
//! Moat's challenges are implied by the client's answers to them.
//!
//! A client keeps its operating system (derived from its pool index) and
//! its hop count, so its SYN fingerprint and TTL stay consistent. SYNs are
//! those of real stacks (p0f signatures):
//! - Linux: `mss,sok,ts,nop,ws 7`, window 64240 (64800 over IPv6, 45 × 1440),
//!   TTL 64, DF, IP ID from a random non-zero start;
//! - Windows 10/11: `mss,nop,ws 8,nop,nop,sok`, window 64240, TTL 128, DF;
//! - macOS: `mss,nop,ws 6,nop,nop,ts,sok,eol`, window 65535, TTL 64, DF.
//!
//! SYN authentication (when the service runs it):
//! - with the cluster's secrets, the client answers Moat's challenge with
//!   the cookie computed exactly as Moat does (`cookie::make` over the SYN's
//!   tuple, at the SYN's time, with the SYN's MSS index):
//!   `challenge-ack` → RST with seq = cookie (RFC 9293 §3.10.7.3, formerly
//!   RFC 793 p. 36: a RST answering a segment with ACK takes its sequence
//!   number from that ACK) one RTT after the SYN, then the same SYN again
//!   1 s after the first (Linux's initial RTO, RFC 6298 §2) and the rest of
//!   the connection; `cookie-reset` → ACK with ack = cookie + 1 one RTT
//!   after the SYN, then, after Moat's RST, a new connection from a new port
//!   about 200 ms later. From then on the client is verified and its later
//!   flows go straight through.
//! - without secrets, the client's answer cannot be computed, so it is not
//!   generated: the SYN is retransmitted at +1 s and +3 s, then nothing.

use std::io::Write;

use arrayvec::ArrayVec;
use classifier::cookie::{self, Tuple};
use classifier::policy::SynAuth;
use classifier::time::{Nanos, MILLISECOND, SECOND};
use rand::Rng;

use super::sched::Sched;
use super::wire::{self, Net, Seg, ACK, FIN, PSH, RST, SYN};
use super::{Ctx, Profile};

const MICROSECOND: Nanos = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Os {
    Linux,
    Windows,
    Mac,
}

impl Os {
    /// The OS of pool client `idx`: about 50 % Linux, 35 % Windows, 15 % macOS.
    fn of_client(idx: usize) -> Os {
        // Multiplicative hash (Knuth) so that neighbouring indices differ.
        match (idx as u64).wrapping_mul(2_654_435_761) % 100 {
            0..=49 => Os::Linux,
            50..=84 => Os::Windows,
            _ => Os::Mac,
        }
    }

    fn ttl(self) -> u8 {
        if self == Os::Windows {
            128
        } else {
            64
        }
    }

    fn syn_window(self, v6: bool) -> u16 {
        match (self, v6) {
            (Os::Mac, _) => 65535,
            (_, false) => 64240,
            (_, true) => 64800,
        }
    }

    /// Window field after the handshake: the receive buffer shifted by the
    /// window scale (Linux 64256 >> 7, Windows 262656 >> 8, macOS 131712 >> 6).
    fn data_window(self) -> u16 {
        match self {
            Os::Linux => 502,
            Os::Windows => 1026,
            Os::Mac => 2058,
        }
    }

    /// Whether the stack sends RFC 7323 timestamps (Windows does not by default).
    fn has_ts(self) -> bool {
        self != Os::Windows
    }

    /// Ephemeral port ranges: Linux `ip_local_port_range` 32768-60999, the
    /// IANA range 49152-65535 elsewhere.
    fn ephemeral(self, rng: &mut impl Rng) -> u16 {
        match self {
            Os::Linux => rng.gen_range(32768..=60999),
            _ => rng.gen_range(49152..=65535),
        }
    }

    /// The SYN's options, in the stack's order (kind, length, value).
    fn syn_options(self, mss: u16, tsval: u32) -> ArrayVec<u8, 40> {
        let [m0, m1] = mss.to_be_bytes();
        let ts = tsval.to_be_bytes();
        let mut o = ArrayVec::new();
        match self {
            Os::Linux => {
                o.extend([2, 4, m0, m1, 4, 2, 8, 10]);
                o.extend(ts);
                o.extend([0, 0, 0, 0, 1, 3, 3, 7]);
            }
            Os::Windows => o.extend([2, 4, m0, m1, 1, 3, 3, 8, 1, 1, 4, 2]),
            Os::Mac => {
                o.extend([2, 4, m0, m1, 1, 3, 3, 6, 1, 1, 8, 10]);
                o.extend(ts);
                o.extend([0, 0, 0, 0, 4, 2, 0, 0]);
            }
        }
        o
    }

    fn user_agent(self) -> &'static str {
        match self {
            Os::Linux => "curl/8.5.0",
            Os::Windows => "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Os::Mac => "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        }
    }
}

const PATHS: [&str; 7] = [
    "/",
    "/index.html",
    "/api/v1/status",
    "/static/app.js",
    "/images/logo.png",
    "/login",
    "/search?q=moat",
];

/// One client connection: the client's side of its TCP state.
#[derive(Debug, Clone)]
struct Flow {
    os: Os,
    /// Index into `Ctx::verified`.
    client: usize,
    net: Net,
    sport: u16,
    dport: u16,
    isn: u32,
    server_isn: u32,
    mss: u16,
    ts_base: u32,
    server_ts: u32,
    /// When the flow's clock (TSval) started.
    t0: Nanos,
    rtt: Nanos,
}

impl Flow {
    fn new(ctx: &mut Ctx, v6: bool, at: Nanos) -> Flow {
        let (client, net) = if v6 {
            let i = ctx.rng.gen_range(0..ctx.clients6.len());
            let os = Os::of_client(super::CLIENTS4 + i);
            let flow = if os == Os::Windows {
                0
            } else {
                ctx.rng.gen_range(1..=0xf_ffff)
            };
            let net = Net::V6 {
                src: ctx.clients6[i],
                dst: ctx.cfg.vip6,
                hops: os.ttl() - hops(i),
                flow,
            };
            (super::CLIENTS4 + i, net)
        } else {
            let i = ctx.rng.gen_range(0..ctx.clients4.len());
            let os = Os::of_client(i);
            let id = ctx.rng.gen_range(1..=u16::MAX);
            (
                i,
                Net::V4 {
                    src: ctx.clients4[i],
                    dst: ctx.cfg.vip,
                    ttl: os.ttl() - hops(i),
                    df: true,
                    id,
                },
            )
        };
        let os = Os::of_client(client);
        let rng = &mut ctx.rng;
        Flow {
            os,
            client,
            net,
            sport: os.ephemeral(rng),
            dport: ctx.cfg.tcp_port,
            isn: rng.gen(),
            server_isn: rng.gen(),
            // RFC 6191/7323: the MSS is the path MTU minus the IP and TCP headers.
            mss: if v6 { 1440 } else { 1460 },
            ts_base: rng.gen(),
            server_ts: rng.gen(),
            t0: at,
            rtt: rng.gen_range(MILLISECOND..=50 * MILLISECOND),
        }
    }

    /// The same client reconnecting: new port, ISN and timestamp offset.
    fn reconnect(&self, ctx: &mut Ctx, at: Nanos) -> Flow {
        let mut f = self.clone();
        while f.sport == self.sport {
            f.sport = f.os.ephemeral(&mut ctx.rng);
        }
        f.isn = ctx.rng.gen();
        f.server_isn = ctx.rng.gen();
        f.ts_base = ctx.rng.gen();
        f.server_ts = ctx.rng.gen();
        f.t0 = at;
        f
    }

    fn tuple(&self) -> Tuple {
        Tuple {
            src: self.net.src(),
            dst: self.net.dst(),
            sport: self.sport,
            dport: self.dport,
        }
    }

    /// RFC 7323 TSval at `at`: a 1 kHz clock from a per-connection offset.
    fn tsval(&self, at: Nanos) -> u32 {
        self.ts_base
            .wrapping_add((at.saturating_sub(self.t0) / MILLISECOND) as u32)
    }

    /// The network layer of the next packet: Linux and Windows count IP IDs
    /// up (per socket or globally), macOS draws them at random.
    fn next_net(&mut self, ctx: &mut Ctx) -> Net {
        let net = self.net;
        if let Net::V4 { id, .. } = net {
            let next = if self.os == Os::Mac {
                ctx.rng.gen()
            } else {
                id.wrapping_add(1)
            };
            self.net = net.with_id(next.max(1));
        }
        net
    }

    /// Queues the SYN, sent at `at`.
    fn syn(&mut self, ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
        let opts = self.os.syn_options(self.mss, self.tsval(at));
        let seg = Seg {
            sport: self.sport,
            dport: self.dport,
            seq: self.isn,
            ack: 0,
            flags: SYN,
            window: self.os.syn_window(matches!(self.net, Net::V6 { .. })),
            options: &opts,
        };
        let net = self.next_net(ctx);
        let mut f = q.buf();
        wire::tcp(&mut f, &ctx.macs(), &net, &seg, &[]);
        q.push(at, Profile::Legit, f);
    }

    /// Queues a segment after the handshake, sent at `at`; `ts` adds the
    /// timestamp option when the stack uses it (not on answers to Moat,
    /// which sends none).
    #[allow(clippy::too_many_arguments)]
    fn seg(
        &mut self,
        ctx: &mut Ctx,
        q: &mut Sched,
        at: Nanos,
        flags: u8,
        (seq, ack): (u32, u32),
        ts: bool,
        payload: &[u8],
    ) {
        let mut opts = ArrayVec::<u8, 40>::new();
        if ts && self.os.has_ts() {
            let tsecr = self
                .server_ts
                .wrapping_add((at.saturating_sub(self.t0) / MILLISECOND) as u32);
            opts.extend([1, 1, 8, 10]);
            opts.extend(self.tsval(at).to_be_bytes());
            opts.extend(tsecr.to_be_bytes());
        }
        let window = if flags & RST != 0 { 0 } else { self.os.data_window() };
        let seg = Seg {
            sport: self.sport,
            dport: self.dport,
            seq,
            ack,
            flags,
            window,
            options: &opts,
        };
        let net = self.next_net(ctx);
        let mut f = q.buf();
        wire::tcp(&mut f, &ctx.macs(), &net, &seg, payload);
        q.push(at, Profile::Legit, f);
    }

    /// The request, written into the context's payload buffer, which the
    /// caller takes (and gives back).
    fn request(&self, ctx: &mut Ctx) -> Vec<u8> {
        let path = PATHS[ctx.rng.gen_range(0..PATHS.len())];
        let mut b = std::mem::take(&mut ctx.payload);
        b.clear();
        let ua = self.os.user_agent();
        // Writing into a Vec cannot fail.
        let _ = match self.net {
            Net::V4 { dst, .. } => write!(b, "GET {path} HTTP/1.1\r\nHost: {dst}\r\n"),
            Net::V6 { dst, .. } => write!(b, "GET {path} HTTP/1.1\r\nHost: [{dst}]\r\n"),
        };
        let _ = write!(b, "User-Agent: {ua}\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n");
        b
    }

    /// A connection whose SYN passes at `t`: SYN, handshake ACK, one or two
    /// requests each followed by ACKs of the response, FIN, last ACK.
    fn session(&mut self, ctx: &mut Ctx, q: &mut Sched, t: Nanos) {
        self.syn(ctx, q, t);
        let mut t = t.saturating_add(self.rtt);
        let mut seq = self.isn.wrapping_add(1);
        let mut ack = self.server_isn.wrapping_add(1);
        self.seg(ctx, q, t, ACK, (seq, ack), true, &[]);
        let requests = if ctx.rng.gen_ratio(3, 10) { 2 } else { 1 };
        for r in 0..requests {
            // The first request follows the handshake at once; a second one
            // after the user's think time.
            let gap = if r == 0 {
                ctx.rng.gen_range(20..=300) * MICROSECOND
            } else {
                ctx.rng.gen_range(50..=500) * MILLISECOND
            };
            t = t.saturating_add(gap);
            let req = self.request(ctx);
            self.seg(ctx, q, t, PSH | ACK, (seq, ack), true, &req);
            seq = seq.wrapping_add(req.len() as u32);
            ctx.payload = req;
            // Delayed ACKs (RFC 9293 §3.8.6.3): one per two full segments,
            // at most four modelled per response.
            let resp: u32 = ctx.rng.gen_range(300..=60_000);
            let acks = resp.div_ceil(2 * 1448).clamp(1, 4);
            for k in 1..=acks {
                t = t.saturating_add(if k == 1 {
                    self.rtt
                } else {
                    self.rtt / 4 + 100 * MICROSECOND
                });
                self.seg(ctx, q, t, ACK, (seq, ack.wrapping_add(resp / acks * k)), true, &[]);
            }
            ack = ack.wrapping_add(resp / acks * acks);
        }
        t = t.saturating_add(ctx.rng.gen_range(1..=100) * MILLISECOND);
        self.seg(ctx, q, t, FIN | ACK, (seq, ack), true, &[]);
        // The server's FIN arrives one RTT later and is acknowledged.
        t = t.saturating_add(self.rtt);
        self.seg(ctx, q, t, ACK, (seq.wrapping_add(1), ack.wrapping_add(1)), true, &[]);
    }
}

/// Hops between pool client `idx` and Moat: 4..=20, fixed per client.
fn hops(idx: usize) -> u8 {
    4 + (idx % 17) as u8
}

/// One legitimate event at `at`: a web connection (70 %) or a game session.
pub(crate) fn event(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let v6 = ctx.pick_v6();
    if ctx.rng.gen_ratio(3, 10) {
        game(ctx, q, at, v6);
    } else {
        web(ctx, q, at, v6);
    }
}

fn web(ctx: &mut Ctx, q: &mut Sched, at: Nanos, v6: bool) {
    let mut f = Flow::new(ctx, v6, at);
    let auth = ctx.cfg.syn_auth;
    if auth == SynAuth::Off || ctx.verified[f.client] <= at {
        f.session(ctx, q, at);
        return;
    }
    let Some(secrets) = ctx.cfg.secrets.clone() else {
        for dt in [0, SECOND, 3 * SECOND] {
            f.syn(ctx, q, at.saturating_add(dt));
        }
        return;
    };
    let c = cookie::make(&secrets, &f.tuple(), at, cookie::mss_index(f.mss));
    f.syn(ctx, q, at);
    let answered = at.saturating_add(f.rtt);
    let verified = &mut ctx.verified[f.client];
    *verified = (*verified).min(answered);
    if auth == SynAuth::ChallengeAck {
        f.seg(ctx, q, answered, RST, (c, 0), false, &[]);
        f.session(ctx, q, at.saturating_add(SECOND));
    } else {
        let isn = f.isn;
        f.seg(
            ctx,
            q,
            answered,
            ACK,
            (isn.wrapping_add(1), c.wrapping_add(1)),
            false,
            &[],
        );
        let again = answered.saturating_add(200 * MILLISECOND + ctx.rng.gen_range(0..=20) * MILLISECOND);
        let mut g = f.reconnect(ctx, again);
        g.session(ctx, q, again);
    }
}

/// A game client's session: 3 to 12 datagrams at its tick rate (20 to 60 Hz),
/// each `game_magic`, a sequence number and state bytes.
fn game(ctx: &mut Ctx, q: &mut Sched, at: Nanos, v6: bool) {
    let f = Flow::new(ctx, v6, at);
    let mut net = f.net;
    if let Net::V4 { src, dst, ttl, id, .. } = net {
        // Linux sets DF on UDP (IP_PMTUDISC_WANT); Windows does not.
        net = Net::V4 {
            src,
            dst,
            ttl,
            df: f.os != Os::Windows,
            id,
        };
    }
    let sport = f.os.ephemeral(&mut ctx.rng);
    let n = ctx.rng.gen_range(3..=12u32);
    let tick = ctx.rng.gen_range(16..=50) * MILLISECOND;
    let mut flow = Flow { net, ..f };
    for seq in 0..n {
        let t = at.saturating_add(tick * u64::from(seq));
        let payload = &mut ctx.payload;
        payload.clear();
        payload.extend_from_slice(&ctx.cfg.game_magic);
        payload.extend_from_slice(&seq.to_be_bytes());
        let extra = ctx.rng.gen_range(16..=160);
        payload.extend((0..extra).map(|_| ctx.rng.gen::<u8>()));
        let net = flow.next_net(ctx);
        let mut frame = q.buf();
        wire::udp(&mut frame, &ctx.macs(), &net, sport, ctx.cfg.udp_port, &ctx.payload);
        q.push(t, Profile::Legit, frame);
    }
}
