//! The per-packet pipeline around [`classifier::classify`]: parse, classify,
//! then carry out the verdict in place in the packet buffer — MSS clamping
//! and GRE encapsulation of clean packets toward their origin (headers
//! prepended into the headroom), replies written over the received frame to
//! leave by the port it came in on, drops counted by reason. One `Pipeline`
//! per worker; it owns the worker's state and counters. The live workers and
//! the offline scrubber run exactly this code.

use classifier::build::{self, GreHeader, GreParams};
use classifier::classify::{classify_hashed, Hashes, Rx};
use classifier::parse::{self, Parsed, L4};
use classifier::policy::{Policy, ServiceId};
use classifier::state::bucket::TokenBucket;
use classifier::state::{StateConfig, WorkerState};
use classifier::time::Nanos;
use classifier::verdict::{Decision, DropReason, Pass, TcpAnswer, Verdict};

use crate::port::{Csum, Frame, HeapFrame, MAX_BURST};
use crate::prefetch::prefetch;

/// Stage one's result for one frame of a burst: its parse summary and table
/// hashes, or why it did not parse.
pub type Prepared = Result<(Parsed, Hashes), DropReason>;

/// Stage one's results for a whole burst, in frame order (a fixed array on
/// the worker's stack).
pub type PreparedBurst = arrayvec::ArrayVec<Prepared, MAX_BURST>;

/// How many frames ahead of the one it parses stage one prefetches frame
/// data (DPDK l3fwd's `PREFETCH_OFFSET`).
const PREFETCH_AHEAD: usize = 4;

/// Largest frame the pipeline handles (jumbo frames included).
pub const MAX_FRAME: usize = 9216;
/// Room for a reply frame: the largest is `http-redirect`'s answer,
/// 14 + 8 + 40 + 20 + 536 = 618 bytes ([`classifier::classify::REPLY_ROOM`]);
/// a SYN-ACK with MSS over IPv6 and two VLAN tags is 86 bytes. Every
/// backend's frame holds it (DPDK's data room is 2048 bytes, the heap and
/// AF_PACKET frames [`MAX_FRAME`]).
pub const REPLY_ROOM: usize = classifier::classify::REPLY_ROOM;
/// The part of the reply buffer an ICMP error may fill: an ICMPv6 Packet
/// Too Big quotes up to 256 - 14 - 8 - 48 = 186 bytes of the packet that
/// did not fit.
const ICMP_ROOM: usize = 256;
const _: () = assert!(REPLY_ROOM >= ICMP_ROOM);

/// Per-worker counters; plain integers, owned by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Packets re-injected, per service index.
    pub passed: Vec<u64>,
    /// Bytes re-injected (GRE frames as sent).
    pub passed_bytes: u64,
    /// Challenges, resets, ARP replies and ICMP errors sent back.
    pub replies: u64,
    pub mss_clamped: u64,
    /// ICMP "fragmentation needed" / "packet too big" sent (also in
    /// `replies`; the packet itself is counted as a `too_big` drop).
    pub icmp_too_big: u64,
    /// Partial L4 checksums (local senders with offload) completed.
    pub csum_completed: u64,
    /// Connections reset both ways (a denied first segment, an empty
    /// connection): a RST toward the origin and one toward the client.
    pub resets_both: u64,
    pub dropped: [u64; DropReason::COUNT],
    /// Traffic addressed to each service (per service index), whatever
    /// became of it.
    pub services: Vec<ServiceCounters>,
}

/// Traffic addressed to one service: every packet that reached the service
/// lookup, passed, answered or dropped (the detection's figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    pub packets: u64,
    /// Bytes as received (the whole frame).
    pub bytes: u64,
    /// TCP SYNs (without ACK).
    pub syns: u64,
    /// SYNs that passed: flows opened toward the origin.
    pub new_flows: u64,
    pub tcp: u64,
    pub udp: u64,
    /// ICMP and ICMPv6.
    pub icmp: u64,
    pub other: u64,
    /// Packets dropped, every reason.
    pub dropped: u64,
}

impl ServiceCounters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &ServiceCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.syns += o.syns;
        self.new_flows += o.new_flows;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmp += o.icmp;
        self.other += o.other;
        self.dropped += o.dropped;
    }

    /// The fields in a fixed order (publishing and reading them).
    pub fn to_array(&self) -> [u64; 9] {
        [
            self.packets,
            self.bytes,
            self.syns,
            self.new_flows,
            self.tcp,
            self.udp,
            self.icmp,
            self.other,
            self.dropped,
        ]
    }

    /// The inverse of [`ServiceCounters::to_array`].
    pub fn from_array(a: [u64; 9]) -> Self {
        let [packets, bytes, syns, new_flows, tcp, udp, icmp, other, dropped] = a;
        ServiceCounters {
            packets,
            bytes,
            syns,
            new_flows,
            tcp,
            udp,
            icmp,
            other,
            dropped,
        }
    }
}

impl Counters {
    fn new(services: usize) -> Self {
        Counters {
            rx_packets: 0,
            rx_bytes: 0,
            passed: vec![0; services],
            passed_bytes: 0,
            replies: 0,
            mss_clamped: 0,
            icmp_too_big: 0,
            csum_completed: 0,
            resets_both: 0,
            dropped: [0; DropReason::COUNT],
            services: vec![ServiceCounters::default(); services],
        }
    }

    /// Total drops over every reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Total packets passed over every service.
    pub fn passed_total(&self) -> u64 {
        self.passed.iter().sum()
    }
}

/// What the caller must do with the frame it gave to
/// [`Pipeline::process_frame`]; the frame has been rewritten accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The frame is now GRE-encapsulated: send it out the inside port.
    Forward { service: u16 },
    /// The frame is now a reply: send it out the port it came in on.
    Reply,
    /// The frame is now GRE-encapsulated (a RST toward the origin): send
    /// it out the inside port, and send [`Pipeline::pending_reply`] (a RST
    /// toward the client) out the port it came in on. The packet itself
    /// was dropped and counted (issue 15, a connection reset both ways).
    ForwardAndReply { service: u16 },
    /// Free the frame; the drop was counted.
    Drop(DropReason),
}

/// What the caller must do with the frame it gave to [`Pipeline::process`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this GRE-encapsulated frame out the inside port.
    Forward { service: u16, frame: &'a [u8] },
    /// Send this reply out the port the packet came in on.
    Reply(&'a [u8]),
    /// Send `frame` (GRE-encapsulated) out the inside port and `reply` out
    /// the port the packet came in on (see [`Outcome::ForwardAndReply`]).
    ForwardAndReply {
        service: u16,
        frame: &'a [u8],
        reply: &'a [u8],
    },
    /// Nothing to send; the drop was counted.
    Drop(DropReason),
}

/// Default rate of ICMP too-big errors per node, per second (RFC 1812
/// §4.3.2.8 and RFC 4443 §2.4(f) ask for a limit; Linux defaults to 1000/s
/// for all ICMP errors).
pub const ICMP_TOO_BIG_PPS: u64 = 100;

/// One worker's pipeline: the decision core plus a scratch frame for the
/// slice-based [`Pipeline::process`].
#[derive(Debug)]
pub struct Pipeline {
    core: Core,
    scratch: HeapFrame,
}

#[derive(Debug)]
struct Core {
    state: WorkerState,
    /// The service of the last decision carried out (samples name it).
    last_service: Option<ServiceId>,
    /// Encapsulation toward each origin of the policy (same index), and the
    /// headers precomputed from it.
    gre: Vec<GreParams>,
    hdr: Vec<GreHeader>,
    /// Whether the next hop toward each origin has a MAC.
    next_hop_ok: Vec<bool>,
    counters: Counters,
    reply: Box<[u8; REPLY_ROOM]>,
    /// Length of the reply of the last [`Outcome::ForwardAndReply`].
    reply_len: usize,
    icmp: TokenBucket,
}

impl Pipeline {
    /// `gre[i]` are the encapsulation parameters of `policy.origins[i]`,
    /// all with a usable next-hop MAC (see [`Pipeline::set_next_hop`]).
    pub fn new(policy: &Policy, gre: Vec<GreParams>, sizes: &StateConfig, workers: u32) -> Self {
        assert_eq!(gre.len(), policy.origins.len(), "one GreParams per origin");
        let icmp = ICMP_TOO_BIG_PPS.div_ceil(u64::from(workers.max(1)));
        Pipeline {
            core: Core {
                state: WorkerState::new(sizes, policy, workers),
                last_service: None,
                next_hop_ok: vec![true; gre.len()],
                hdr: gre.iter().map(GreHeader::new).collect(),
                gre,
                counters: Counters::new(policy.services.len()),
                reply: Box::new([0; REPLY_ROOM]),
                reply_len: 0,
                icmp: TokenBucket::new(icmp, icmp),
            },
            scratch: HeapFrame::new(),
        }
    }

    /// The RST toward the client of the last
    /// [`Outcome::ForwardAndReply`].
    pub fn pending_reply(&self) -> &[u8] {
        &self.core.reply[..self.core.reply_len]
    }

    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// The service the last processed frame was addressed to, from its
    /// decision (`None`: it never reached the service lookup).
    #[inline]
    pub fn last_service(&self) -> Option<ServiceId> {
        self.core.last_service
    }

    pub fn state(&self) -> &WorkerState {
        &self.core.state
    }

    pub fn state_mut(&mut self) -> &mut WorkerState {
        &mut self.core.state
    }

    /// Sets the per-node rate of ICMP too-big errors (0: never send them).
    pub fn set_icmp_rate(&mut self, per_node: u64, workers: u32) {
        let r = per_node.div_ceil(u64::from(workers.max(1)));
        self.core.icmp.set_rate(r, r);
    }

    /// The next hop toward origin `origin` is `mac`, or unknown (`None`:
    /// packets for that origin are dropped as `no_next_hop`).
    pub fn set_next_hop(&mut self, origin: usize, mac: Option<[u8; 6]>) {
        let c = &mut self.core;
        if let (Some(g), Some(ok), Some(h)) = (
            c.gre.get_mut(origin),
            c.next_hop_ok.get_mut(origin),
            c.hdr.get_mut(origin),
        ) {
            *ok = mac.is_some();
            if let Some(m) = mac.filter(|m| *m != g.dst_mac) {
                g.dst_mac = m;
                *h = GreHeader::new(g);
            }
        }
    }

    /// After a policy swap: per-service state follows the new service list,
    /// and `gre` replaces the tunnels (one per origin of `policy`).
    pub fn apply_policy(&mut self, policy: &Policy, gre: Vec<GreParams>, workers: u32) {
        self.core.state.apply_policy(policy, workers);
        self.core.next_hop_ok.resize(gre.len(), true);
        self.core.hdr = gre.iter().map(GreHeader::new).collect();
        self.core.gre = gre;
        self.core.counters.passed.resize(policy.services.len(), 0);
        self.core
            .counters
            .services
            .resize(policy.services.len(), ServiceCounters::default());
    }

    /// Processes one frame received at `now`, rewriting it in place (see
    /// [`Outcome`]). `parsed` receives the parse summary when the frame
    /// parsed (for reports), so callers never parse twice.
    #[inline]
    pub fn process_frame<F: Frame>(
        &mut self,
        policy: &Policy,
        now: Nanos,
        f: &mut F,
        parsed: &mut Option<Parsed>,
    ) -> Outcome {
        self.core.process(policy, now, f, parsed)
    }

    /// Stage one of a burst (DESIGN.md; DPDK l3fwd, Gatekeeper): parses
    /// every frame, computes its table hashes and prefetches the index
    /// lines its probes will read, and the data of the frames a few ahead,
    /// so that stage two ([`Pipeline::process_prepared`], frame by frame in
    /// the same order) finds them in cache. Replaces `out`'s contents.
    #[inline]
    pub fn prepare<F: Frame>(&self, frames: &[F], out: &mut PreparedBurst) {
        out.clear();
        let st = &self.core.state;
        for (i, f) in frames.iter().enumerate() {
            if let Some(ahead) = frames.get(i + PREFETCH_AHEAD) {
                prefetch(ahead.data().as_ptr());
            }
            let pr = parse::parse(f.data()).map(|p| {
                let h = Hashes::of(st, &p);
                for line in h.lines(st) {
                    prefetch(line);
                }
                (p, h)
            });
            if out.try_push(pr).is_err() {
                break;
            }
        }
    }

    /// Stage two for one frame of the burst given to [`Pipeline::prepare`]:
    /// [`Pipeline::process_frame`] with the parse and hashes of stage one
    /// (`pre`, which must be that frame's and is the parse summary for
    /// reports).
    #[inline]
    pub fn process_prepared<F: Frame>(&mut self, policy: &Policy, now: Nanos, f: &mut F, pre: &Prepared) -> Outcome {
        let c = &mut self.core;
        c.counters.rx_packets += 1;
        c.counters.rx_bytes += f.data().len() as u64;
        c.last_service = None;
        match pre {
            Ok((p, h)) => c.execute(policy, now, f, p, *h),
            Err(r) => c.drop(*r),
        }
    }

    /// Between bursts: frees expired entries among the next `budget` slots
    /// of each per-core table (flows idle past the policy's timeout,
    /// verified sources past their TTL, source buckets idle a second), so
    /// that inserts find free slots instead of evicting live entries. A
    /// table of 65,536 entries is swept once a second at 64 slots per
    /// millisecond. Returns the entries freed.
    pub fn sweep(&mut self, policy: &Policy, now: Nanos, budget: usize) -> usize {
        let st = &mut self.core.state;
        st.sweep_flows(now, policy.timeouts.flow_idle, budget)
            + st.verified.sweep(now, budget)
            + st.sources.sweep(now, budget)
    }

    /// After [`Pipeline::sweep`]: ends the empty connection it found
    /// ([`WorkerState::ended`]) on both sides. `to_origin` (a fresh frame)
    /// receives the client's RST toward the origin, GRE-encapsulated, and
    /// [`Pipeline::pending_reply`] the RST toward the client; `true` when
    /// both are to be sent. With no frame, or without a client's L2 header
    /// to send them with, the connection is only counted (its flow is gone
    /// from the table either way).
    pub fn reset_ended<F: Frame>(&mut self, policy: &Policy, to_origin: Option<&mut F>) -> bool {
        let c = &mut self.core;
        let Some(g) = c.state.ended.take() else {
            return false;
        };
        c.counters.dropped[DropReason::EmptyConn as usize] += 1;
        c.reply_len = 0;
        let (Some(f), Some(svc)) = (to_origin, policy.services.get(usize::from(g.flow.service))) else {
            return false;
        };
        let l2 = &c.state.l2[..usize::from(c.state.l2_len)];
        let mut seg = [0u8; 128];
        let flags = classifier::wire::tcp::flags::RST | classifier::wire::tcp::flags::ACK;
        let Some(len) = classifier::conn::client_segment(l2, &g.id, g.flow.seq, g.flow.ack, flags, &mut seg) else {
            return false;
        };
        let Ok(p) = parse::parse(&seg[..len]) else {
            return false;
        };
        let rst = classifier::wire::tcp::flags::RST;
        let Some(n) = build::tcp_reply(&seg[..len], &p, g.flow.ack, 0, rst, 0, None, &mut c.reply[..]) else {
            return false;
        };
        if !f.replace(&seg[..len]) {
            return false;
        }
        let pass = Pass {
            service: g.flow.service,
            origin: svc.origin,
            syn: false,
        };
        if !matches!(c.forward(policy, f, &p, pass), Outcome::Forward { .. }) {
            return false;
        }
        c.reply_len = n;
        c.counters.resets_both += 1;
        true
    }

    /// Counts a frame dropped before the pipeline saw it (e.g. IP traffic on
    /// the inside port).
    pub fn count_drop(&mut self, len: usize, r: DropReason) {
        self.core.counters.rx_packets += 1;
        self.core.counters.rx_bytes += len as u64;
        self.core.counters.dropped[r as usize] += 1;
    }

    /// The slice form for offline use: copies `frame` into a scratch buffer
    /// and returns what to send, borrowed from it.
    pub fn process<'a>(
        &'a mut self,
        policy: &Policy,
        now: Nanos,
        frame: &[u8],
        parsed: &mut Option<Parsed>,
    ) -> Action<'a> {
        if !self.scratch.fill(frame) {
            *parsed = None;
            self.count_drop(frame.len(), DropReason::TooBig);
            return Action::Drop(DropReason::TooBig);
        }
        match self.core.process(policy, now, &mut self.scratch, parsed) {
            Outcome::Forward { service } => Action::Forward {
                service,
                frame: self.scratch.data(),
            },
            Outcome::Reply => Action::Reply(self.scratch.data()),
            Outcome::ForwardAndReply { service } => Action::ForwardAndReply {
                service,
                frame: self.scratch.data(),
                reply: &self.core.reply[..self.core.reply_len],
            },
            Outcome::Drop(r) => Action::Drop(r),
        }
    }
}

impl Core {
    #[inline]
    fn drop(&mut self, r: DropReason) -> Outcome {
        self.counters.dropped[r as usize] += 1;
        Outcome::Drop(r)
    }

    fn process<F: Frame>(&mut self, policy: &Policy, now: Nanos, f: &mut F, parsed: &mut Option<Parsed>) -> Outcome {
        let len = f.data().len();
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += len as u64;
        *parsed = None;
        self.last_service = None;
        let p = match parse::parse(f.data()) {
            Ok(p) => p,
            Err(r) => return self.drop(r),
        };
        *parsed = Some(p);
        self.execute(policy, now, f, &p, Hashes::default())
    }

    /// Classifies a parsed frame and carries out the decision: a plain
    /// executor, it looks nothing up that the decision does not carry.
    #[inline]
    fn execute<F: Frame>(&mut self, policy: &Policy, now: Nanos, f: &mut F, p: &Parsed, h: Hashes) -> Outcome {
        let len = f.data().len();
        let rx = Rx {
            ip_csum_good: f.ip_csum_good(),
        };
        let d = classify_hashed(&mut self.state, policy, now, f.data(), p, rx, h, &mut self.reply[..]);
        let out = self.carry_out(policy, now, f, p, &d);
        self.last_service = d.service;
        if let Some(s) = d.service {
            self.count_service(s, p, len, d.syn, out);
        }
        out
    }

    /// Per-service figures of a packet that reached the service lookup.
    #[inline]
    fn count_service(&mut self, s: ServiceId, p: &Parsed, len: usize, syn: bool, out: Outcome) {
        let Some(c) = self.counters.services.get_mut(usize::from(s)) else {
            return;
        };
        c.packets += 1;
        c.bytes += len as u64;
        match p.l4 {
            L4::Tcp(_) => {
                c.tcp += 1;
                c.syns += u64::from(syn);
                c.new_flows += u64::from(syn && matches!(out, Outcome::Forward { .. }));
            }
            L4::Udp { .. } => c.udp += 1,
            L4::Icmp { .. } | L4::Icmpv6 { .. } => c.icmp += 1,
            L4::None => c.other += 1,
        }
        c.dropped += u64::from(matches!(out, Outcome::Drop(_) | Outcome::ForwardAndReply { .. }));
    }

    /// Carries out the decision on the frame (see [`Outcome`]).
    #[inline]
    fn carry_out<F: Frame>(&mut self, policy: &Policy, now: Nanos, f: &mut F, p: &Parsed, d: &Decision) -> Outcome {
        match d.verdict {
            Verdict::Drop(DropReason::TooBig) => self.too_big(now, f, p, d.mtu),
            Verdict::Drop(r) => self.drop(r),
            Verdict::Reply { len } => {
                // Every backend's frame holds at least REPLY_ROOM bytes.
                if !f.replace(&self.reply[..len]) {
                    return self.drop(DropReason::TooBig);
                }
                self.counters.replies += 1;
                Outcome::Reply
            }
            Verdict::Answer(a) => self.answer(f, p, &a),
            Verdict::Pass(pass) => self.forward(policy, f, p, pass),
            Verdict::ResetBoth {
                len,
                reason,
                service,
                origin,
            } => self.reset_both(
                policy,
                f,
                p,
                len,
                reason,
                Pass {
                    service,
                    origin,
                    syn: false,
                },
            ),
        }
    }

    /// [`Verdict::Answer`]: the segment becomes its reply where it stands
    /// (DESIGN.md: replies are written in place), grown to the reply's
    /// length first when it was shorter (a bare 54-byte SYN). A frame
    /// without that much room behind it (an `af_packet` ring slot) gets the
    /// reply built aside and copied, which [`Frame::replace`] fits into
    /// its headroom.
    #[inline]
    fn answer<F: Frame>(&mut self, f: &mut F, p: &Parsed, a: &TcpAnswer) -> Outcome {
        let Some(n) = build::tcp_answer_len(p, a) else {
            return self.drop(DropReason::BadL4Header);
        };
        let done = if f.set_len(n) {
            build::tcp_answer(f.data_mut(), p, a).is_some()
        } else {
            build::tcp_reply(f.data(), p, a.seq, a.ack, a.flags, a.window, a.mss, &mut self.reply[..])
                .is_some_and(|len| f.replace(&self.reply[..len]))
        };
        if !done {
            return self.drop(DropReason::BadL4Header);
        }
        self.counters.replies += 1;
        Outcome::Reply
    }

    /// [`Verdict::ResetBoth`]: the segment is dropped (counted as `reason`)
    /// and rewritten in place into the client's RST toward the origin,
    /// which leaves through the one GRE writer ([`Core::forward`]); the
    /// RST toward the client stays in the reply buffer
    /// ([`Pipeline::pending_reply`]) for the caller to send out the port
    /// the segment came in on.
    fn reset_both<F: Frame>(
        &mut self,
        policy: &Policy,
        f: &mut F,
        p: &Parsed,
        len: usize,
        reason: DropReason,
        pass: Pass,
    ) -> Outcome {
        self.counters.dropped[reason as usize] += 1;
        self.reply_len = len;
        let Some(q) = classifier::conn::reset_in_place(f.data_mut(), p) else {
            // Not rewritable (cannot happen for a classified segment):
            // the client's RST alone.
            return if f.replace(&self.reply[..len]) {
                self.counters.replies += 1;
                self.reply_len = 0;
                Outcome::Reply
            } else {
                Outcome::Drop(reason)
            };
        };
        // The checksum is whole now, whatever the NIC was told.
        f.set_csum(Csum::Valid);
        match self.forward(policy, f, &q, pass) {
            Outcome::Forward { service } => {
                self.counters.resets_both += 1;
                Outcome::ForwardAndReply { service }
            }
            _ => Outcome::Drop(reason),
        }
    }

    /// MSS clamp, checksum completion, then GRE encapsulation in place: the
    /// inner L2 header (and any Ethernet padding) is cut off and the outer
    /// Ethernet/IPv4/GRE headers are written into the headroom.
    #[inline]
    fn forward<F: Frame>(&mut self, policy: &Policy, f: &mut F, p: &Parsed, pass: Pass) -> Outcome {
        let (origin, service) = (usize::from(pass.origin), pass.service);
        if !self.next_hop_ok.get(origin).copied().unwrap_or(false) {
            return self.drop(DropReason::NoNextHop);
        }
        let mss = policy.origins.get(origin).map_or(0, |o| o.mss_for(p.is_v6()));
        if pass.syn && build::clamp_mss(f.data_mut(), p, mss) {
            self.counters.mss_clamped += 1;
        }
        if f.csum() == Csum::Partial && build::complete_l4_checksum(f.data_mut(), p) {
            f.set_csum(Csum::Valid);
            self.counters.csum_completed += 1;
        }
        let hdr = self.hdr[origin];
        let inner = usize::from(p.l3_len);
        if !(f.adj(usize::from(p.l3_offset)) && f.set_len(inner) && f.prepend(hdr.overhead())) {
            return self.drop(DropReason::TooBig);
        }
        if hdr.write(f.data_mut(), inner).is_none() {
            return self.drop(DropReason::TooBig);
        }
        self.counters.passed[usize::from(service)] += 1;
        self.counters.passed_bytes += f.data().len() as u64;
        Outcome::Forward { service }
    }

    /// A packet larger than its origin's tunnel: dropped as `too_big`, and,
    /// within the ICMP rate, answered with the path MTU so that the sender
    /// can lower its packet size (RFC 1191, RFC 8201).
    fn too_big<F: Frame>(&mut self, now: Nanos, f: &mut F, p: &Parsed, mtu: u16) -> Outcome {
        self.counters.dropped[DropReason::TooBig as usize] += 1;
        if mtu == 0 || self.icmp.rate() == 0 || !self.icmp.take(now) {
            return Outcome::Drop(DropReason::TooBig);
        }
        match build::icmp_too_big(f.data(), p, mtu, &mut self.reply[..ICMP_ROOM]) {
            Some(len) if f.replace(&self.reply[..len]) => {
                self.counters.replies += 1;
                self.counters.icmp_too_big += 1;
                Outcome::Reply
            }
            _ => Outcome::Drop(DropReason::TooBig),
        }
    }
}
