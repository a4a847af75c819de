//! `classify`: the packet path of DESIGN.md for one packet, as one pure
//! function. It reads the policy snapshot, updates the worker's own state,
//! writes any reply into the caller's buffer and returns what to do.
//!
//! Order of checks (cheapest and most discriminating first): parse → L2
//! control (ARP, IPv6 neighbour discovery) → global cap → IP sanity (checksum, land, bogus source, TTL)
//! → ACL → blacklist → service lookup → fragments → protocol checks (TCP: flags,
//! fingerprints, per-source limits, SYN authentication, flow table; UDP:
//! reflection ports, allowed ports, payload rules, fingerprints; ICMP: type
//! allowlist, per-service and per-source ICMP rates) → per-service rate →
//! tunnel MTU. Departure from DESIGN.md's
//! order: per-source limits run inside the protocol checks, because the SYN
//! limit must act before a challenge is sent (it bounds the SYN-ACKs one
//! source can draw) and fingerprint rules, being cheaper than state, act
//! before them.

use core::net::IpAddr;

use crate::build;
use crate::fingerprint::{tcp_fingerprint, udp_fingerprint};
use crate::l7::inspect::{self, Judged};
use crate::l7::reassembly::{self, Insert as Reasm};
use crate::l7::redirect;
use crate::parse::{self, Addr, Frag, Parsed, TcpInfo, L3, L4};
use crate::policy::{FragPolicy, Policy, Service, ServiceId, SynAuth};
use crate::state::flow::{Flow, Gone};
use crate::state::table::AddrKey;
use crate::state::{FlowId, Inspect, SourceLimit, Violation, ViolationKind, WorkerState};
use crate::synauth::{self, flags};
use crate::time::Nanos;
use crate::udpauth::{self, A2sCheck, Profile, Seen, UdpAuth};
use crate::verdict::{Decision, DropReason, Pass, Verdict};
use crate::wire::checksum;

type R = Result<Verdict, DropReason>;

/// Room for any reply [`classify`] writes: `http-redirect`'s answer is the
/// largest, 14 + 8 (two VLAN tags) + 40 (IPv6) + 20 + 536
/// ([`redirect::RESPONSE_LEN`]) = 618 bytes.
pub const REPLY_ROOM: usize = 14 + 8 + 40 + 20 + redirect::RESPONSE_LEN;

/// Classifies one Ethernet frame. `reply` receives a reply frame when the
/// verdict is [`Verdict::Reply`] ([`REPLY_ROOM`] bytes are always enough;
/// 128 are for all but `http-redirect`'s answers, which fall back to a RST
/// in a smaller buffer).
#[inline]
pub fn classify(st: &mut WorkerState, pol: &Policy, now: Nanos, frame: &[u8], reply: &mut [u8]) -> Verdict {
    classify_frame(st, pol, now, frame, reply).verdict
}

/// [`classify`] with the whole [`Decision`]: the service, whether the
/// packet is a SYN, the MTU of a `too_big` drop.
#[inline]
pub fn classify_frame(st: &mut WorkerState, pol: &Policy, now: Nanos, frame: &[u8], reply: &mut [u8]) -> Decision {
    match parse::parse(frame) {
        Ok(p) => classify_rx(st, pol, now, frame, &p, Rx::default(), reply),
        Err(r) => Decision::early(Verdict::Drop(r)),
    }
}

/// [`classify`] for a frame the caller has already parsed (the offline
/// scrubber keeps the summary for its report).
#[inline]
pub fn classify_parsed(
    st: &mut WorkerState,
    pol: &Policy,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    reply: &mut [u8],
) -> Verdict {
    classify_rx(st, pol, now, frame, p, Rx::default(), reply).verdict
}

/// What the receiving NIC already checked of a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rx {
    /// The IPv4 header checksum was verified as good (DPDK
    /// `RTE_MBUF_F_RX_IP_CKSUM_GOOD`): it is not summed again. Any other
    /// report (bad, none, unknown) leaves the check to the classifier, so
    /// the verdict is the same either way.
    pub ip_csum_good: bool,
}

/// [`classify_parsed`] with what the NIC verified on receipt (`rx`), and
/// the whole [`Decision`]: everything the dataplane needs to carry the
/// verdict out without looking anything up again.
#[inline]
pub fn classify_rx(
    st: &mut WorkerState,
    pol: &Policy,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    rx: Rx,
    reply: &mut [u8],
) -> Decision {
    let mut d = classify_hashed(st, pol, now, frame, p, rx, Hashes::default(), reply);
    if let Verdict::Answer(a) = d.verdict {
        d.verdict = match build::tcp_reply(frame, p, a.seq, a.ack, a.flags, a.window, a.mss, reply) {
            Some(len) => Verdict::Reply { len },
            None => Verdict::Drop(DropReason::BadL4Header),
        };
    }
    d
}

/// Stage one of a burst (DESIGN.md, the two-stage worker loop): the hashes
/// of the table keys a packet's checks probe, computed ahead so that the
/// worker can prefetch the index lines those probes start at
/// ([`Hashes::lines`]) while it prepares the rest of the burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hashes {
    /// Of the TCP flow (TCP packets but SYNs).
    pub flow: Option<u64>,
    /// Of the source address, in the verified sources and the per-source
    /// buckets alike (they share hash keys): every IP packet.
    pub src: Option<u64>,
}

impl Hashes {
    /// The hashes of `p`'s keys in `st`'s tables, valid for `st` only
    /// (its verified sources and per-source buckets share hash keys,
    /// [`WorkerState::new`]).
    #[inline]
    pub fn of(st: &WorkerState, p: &Parsed) -> Self {
        // A SYN probes the flows only once its source is authenticated: a
        // spoofed SYN flood never does, so its hash waits until needed.
        let flow = p
            .tcp()
            .filter(|t| !flags::is_pure_syn(t.flags))
            .map(|t| st.flows.hash(&FlowId::of(p, t)));
        let src = (p.l3 != L3::Arp).then(|| st.verified.hash(&AddrKey::of(p.src, p.is_v6())));
        Hashes { flow, src }
    }

    /// The index lines the probes with these hashes read first (null
    /// where there is no hash): the addresses to prefetch.
    #[inline]
    pub fn lines(&self, st: &WorkerState) -> [*const u8; 3] {
        [
            self.flow.map_or(core::ptr::null(), |h| st.flows.index_line(h)),
            self.src.map_or(core::ptr::null(), |h| st.verified.index_line(h)),
            self.src.map_or(core::ptr::null(), |h| st.sources.index_line(h)),
        ]
    }
}

/// Stage two: [`classify_rx`] with the [`Hashes`] of stage one (any hash
/// that is `None` is computed when needed), for the dataplane: a TCP
/// answer (SYN challenges, the RST after a `cookie-reset` handshake) comes
/// back as [`Verdict::Answer`], for the caller to write over the frame in
/// place, where [`classify_rx`] builds it into `reply`.
#[allow(clippy::too_many_arguments)] // classify_rx's arguments and the hashes
#[inline]
pub fn classify_hashed(
    st: &mut WorkerState,
    pol: &Policy,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    rx: Rx,
    h: Hashes,
    reply: &mut [u8],
) -> Decision {
    let mut d = Decision::early(Verdict::Drop(DropReason::NoService));
    d.syn = p.is_pure_syn();
    d.verdict = match decide(st, pol, now, frame, p, rx, h, reply, &mut d) {
        Ok(v) => v,
        Err(r) => Verdict::Drop(r),
    };
    d
}

#[allow(clippy::too_many_arguments)] // classify_rx's arguments and the decision it fills
#[inline]
fn decide(
    st: &mut WorkerState,
    pol: &Policy,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    rx: Rx,
    h: Hashes,
    reply: &mut [u8],
    d: &mut Decision,
) -> R {
    if p.l3 == L3::Arp {
        return arp(pol, frame, p, reply);
    }
    if is_nd(p) {
        return nd(pol, frame, p, reply);
    }
    if !st.global.take(now) {
        return Err(DropReason::RateLimitGlobal);
    }
    ip_sanity(pol, frame, p, rx)?;
    let v6 = p.is_v6();
    let trusted = match pol.acl.lookup_addr(p.src, v6) {
        Some(crate::acl::AclAction::Deny) => return Err(DropReason::AclDeny),
        Some(crate::acl::AclAction::Allow) => true,
        None => false,
    };
    // The auto-blacklist: with no ban in force, one compare.
    if !trusted && !st.bans.is_empty() {
        let key = AddrKey::of(p.src, v6);
        let hash = h.src.unwrap_or_else(|| st.bans.hash(&key));
        if st.bans.is_banned_hashed(hash, key, now) {
            return Err(DropReason::Blacklisted);
        }
    }
    let id = pol.service_for_addr(p.dst, v6).ok_or(DropReason::NoService)?;
    d.service = Some(id);
    let svc = &pol.services[usize::from(id)];
    // What the executor needs for a packet too big for the tunnel (the
    // path MTU it reports), whatever the verdict.
    d.mtu = pol.origins[usize::from(svc.origin)].mtu;
    let mut cx = Ctx {
        st,
        pol,
        svc,
        id,
        now,
        frame,
        p,
        src: AddrKey::of(p.src, v6),
        h,
        trusted,
    };
    match (p.frag, pol.sanity.fragments) {
        (Frag::None, _) => {}
        (_, FragPolicy::Drop) => return Err(DropReason::Fragment),
        // A non-first fragment has no L4 header to check: it is let through
        // under the per-source and service limits only, and those of ICMP
        // for the rest of a fragmented ICMP message (else a flood of large
        // pings would pass all but its first fragments).
        (Frag::Later, FragPolicy::Allow) => {
            if matches!((p.l3, p.proto), (L3::Ipv4, 1) | (L3::Ipv6, 58)) {
                return cx.icmp_rates();
            }
            cx.src_limit(SourceLimit::Pps)?;
            return cx.finish(false);
        }
        (Frag::First, FragPolicy::Allow) => {}
    }
    match p.l4 {
        L4::Tcp(t) => cx.tcp(&t, reply),
        L4::Udp { sport, dport } => cx.udp(sport, dport, reply),
        L4::Icmp { ty, .. } => cx.icmp(pol.icmp_types.contains(u16::from(ty))),
        L4::Icmpv6 { ty, .. } => cx.icmp(pol.icmpv6_types.contains(u16::from(ty))),
        L4::None => Err(DropReason::PortNotAllowed),
    }
}

fn arp(pol: &Policy, frame: &[u8], p: &Parsed, reply: &mut [u8]) -> R {
    // ARP op 1 = request (RFC 826); parse guarantees the 28-byte body.
    let op = u16::from_be_bytes([frame[usize::from(p.l3_offset) + 6], frame[usize::from(p.l3_offset) + 7]]);
    let mac = pol
        .own_mac(p.dst_ip())
        .filter(|_| op == 1)
        .ok_or(DropReason::ArpIgnored)?;
    let len = build::arp_reply(frame, p, mac, reply).ok_or(DropReason::ArpIgnored)?;
    Ok(Verdict::Reply { len })
}

/// Neighbour discovery messages (RFC 4861 §4): router solicitation and
/// advertisement, neighbour solicitation and advertisement, redirect. They
/// are link-local control traffic, never a service's: none goes on to the
/// service lookup, whatever its destination.
const ND_TYPES: core::ops::RangeInclusive<u8> = 133..=137;

/// Whether `p` is a neighbour discovery message (answered or dropped as
/// `nd_ignored` by [`classify`], on any port).
#[inline]
pub fn is_nd(p: &Parsed) -> bool {
    matches!(p.l4, L4::Icmpv6 { ty, .. } if ND_TYPES.contains(&ty))
}

/// Answers a valid Neighbor Solicitation for one of the node's own IPv6
/// addresses with an advertisement; drops every other ND message.
fn nd(pol: &Policy, frame: &[u8], p: &Parsed, reply: &mut [u8]) -> R {
    let ns = build::neighbor_solicit(frame, p).ok_or(DropReason::NdIgnored)?;
    let mac = pol.own_mac(IpAddr::V6(ns.target)).ok_or(DropReason::NdIgnored)?;
    let len = build::nd_advert(frame, p, &ns, mac, reply).ok_or(DropReason::NdIgnored)?;
    Ok(Verdict::Reply { len })
}

#[inline]
fn ip_sanity(pol: &Policy, frame: &[u8], p: &Parsed, rx: Rx) -> Result<(), DropReason> {
    if p.l3 == L3::Ipv4 && pol.sanity.verify_ip_checksum && !rx.ip_csum_good {
        let start = usize::from(p.l3_offset);
        let hdr = &frame[start..start + usize::from(p.ip_header_len)];
        // A correct header sums to 0xffff (RFC 1071: the sum including the
        // checksum field is all ones).
        if ipv4_header_sum(hdr) != 0xffff {
            return Err(DropReason::BadIpChecksum);
        }
    }
    if p.src == p.dst {
        return Err(DropReason::Land);
    }
    if bogus_source(p.src, p.is_v6()) {
        return Err(DropReason::BadSource);
    }
    if p.ttl < pol.sanity.min_ttl {
        return Err(DropReason::LowTtl);
    }
    Ok(())
}

/// One's-complement sum of an IPv4 header: the option-less 20 bytes (all
/// but a few packets) as five 32-bit words without a loop, else the generic
/// sum.
#[inline]
fn ipv4_header_sum(hdr: &[u8]) -> u16 {
    let Ok(words) = <&[u8; 20]>::try_from(hdr) else {
        return checksum::data(hdr);
    };
    let w = |i: usize| u64::from(u32::from_be_bytes([words[i], words[i + 1], words[i + 2], words[i + 3]]));
    let sum = w(0) + w(4) + w(8) + w(12) + w(16);
    let sum = (sum >> 32) + (sum & 0xffff_ffff);
    let sum = (sum >> 16) + (sum & 0xffff);
    let sum = (sum >> 16) + (sum & 0xffff);
    sum as u16
}

/// Sources no client can have. An IPv4-mapped IPv6 source (`::ffff:a.b.c.d`)
/// never appears on the wire (RFC 4291 §2.5.5.2; Linux refuses such SYNs in
/// `tcp_v6_conn_request`), and since ACL rules are per family it would
/// otherwise slip past an IPv4 deny rule.
#[inline]
fn bogus_source(a: Addr, v6: bool) -> bool {
    if !v6 {
        // 224.0.0.0/4 (multicast), 127.0.0.0/8, 0.0.0.0 and 255.255.255.255,
        // as `Ipv4Addr::is_*` define them.
        let a = a.v4_bits();
        return a >> 28 == 0xe || a >> 24 == 127 || a == 0 || a == u32::MAX;
    }
    let (hi, lo) = (a.hi, a.lo);
    // ff00::/8, ::1, ::, ::ffff:0:0/96 (`Ipv6Addr::is_*`, `to_ipv4_mapped`).
    hi >> 56 == 0xff || (hi == 0 && (lo <= 1 || lo >> 32 == 0xffff))
}

/// Flag combinations no TCP stack sends (scans and floods): none of
/// SYN/RST/ACK/FIN, SYN with FIN or RST, FIN or PSH/URG without ACK.
const fn bad_flags_rule(f: u8) -> bool {
    let core = f & (flags::SYN | flags::RST | flags::ACK | flags::FIN);
    core == 0
        || (f & flags::SYN != 0 && f & (flags::FIN | flags::RST) != 0)
        || (f & flags::FIN != 0 && f & flags::ACK == 0)
        || (f & (flags::PSH | flags::URG) != 0 && f & flags::ACK == 0)
}

/// [`bad_flags_rule`] for each of the 256 flag bytes, computed at compile
/// time: one load per segment where the rule is a dozen branches.
static BAD_FLAGS: [bool; 256] = {
    let mut t = [false; 256];
    let mut f = 0;
    while f < 256 {
        t[f] = bad_flags_rule(f as u8);
        f += 1;
    }
    t
};

/// Whether no TCP stack sends the flag byte `f` ([`bad_flags_rule`]).
#[inline]
fn bad_flags(f: u8) -> bool {
    BAD_FLAGS[usize::from(f)]
}

/// One packet's decision after the service is known: what every protocol
/// check reads, in one place.
struct Ctx<'a> {
    st: &'a mut WorkerState,
    pol: &'a Policy,
    svc: &'a Service,
    id: ServiceId,
    now: Nanos,
    frame: &'a [u8],
    p: &'a Parsed,
    /// The source as a table key (verified sources, per-source buckets).
    src: AddrKey,
    /// Stage one's hashes.
    h: Hashes,
    /// ACL-allowed source: no SYN authentication, no per-source limits.
    trusted: bool,
}

impl Ctx<'_> {
    /// Always inlined: with the default rate 0 the whole check is one
    /// compare, where the call cost ~20 instructions per packet.
    #[inline(always)]
    fn src_limit(&mut self, which: SourceLimit) -> Result<(), DropReason> {
        let l = &self.svc.limits;
        let (rate, reason) = match which {
            SourceLimit::Pps => (l.src_pps, DropReason::RateLimitSource),
            SourceLimit::Syn => (l.src_syn_pps, DropReason::RateLimitSyn),
            SourceLimit::NewConn => (l.src_new_conns_ps, DropReason::RateLimitNewFlow),
            SourceLimit::Icmp => (l.src_icmp_pps, DropReason::RateLimitIcmpSource),
            // Its rate is a rule's, taken by `request_allowed`, never here.
            SourceLimit::L7 => (0, DropReason::L7Limit),
        };
        // Rate 0 (unlimited, the default) must not cost a table call per packet.
        if rate == 0
            || self.trusted
            || self
                .st
                .sources
                .allow_hashed(self.h.src, self.src, self.id, self.now, which, rate)
        {
            Ok(())
        } else {
            Err(reason)
        }
    }

    /// A SYN's two per-source charges (packets, SYNs) with one table probe.
    #[inline(always)]
    fn src_limit_syn(&mut self) -> Result<(), DropReason> {
        let rate = self.svc.limits.src_syn_pps;
        self.src_limit_pps_and(SourceLimit::Syn, rate, DropReason::RateLimitSyn)
    }

    /// The source's packet bucket and its `which` bucket (at `rate`)
    /// charged with one table probe; `reason` when `which` is spent,
    /// `rate_limit_source` when the packet bucket is.
    #[inline(always)]
    fn src_limit_pps_and(&mut self, which: SourceLimit, rate: u32, reason: DropReason) -> Result<(), DropReason> {
        let pps = self.svc.limits.src_pps;
        if self.trusted || (pps == 0 && rate == 0) {
            return Ok(());
        }
        match self.st.sources.allow_two_hashed(
            self.h.src,
            self.src,
            self.id,
            self.now,
            (SourceLimit::Pps, pps),
            (which, rate),
        ) {
            Ok(()) => Ok(()),
            Err(w) if w == which => Err(reason),
            Err(_) => Err(DropReason::RateLimitSource),
        }
    }

    /// [`Ctx::src_limit`] on the packet rate of a segment of a live flow
    /// or a verified source: a breach by a source that proved its address
    /// (its flow began after SYN authentication, or it is verified) is
    /// noted for the blacklist ([`WorkerState::violation`]). With SYN
    /// authentication off a flow proves nothing (its SYN may be spoofed).
    #[inline(always)]
    fn src_pps_noted(&mut self) -> Result<(), DropReason> {
        let r = self.src_limit(SourceLimit::Pps);
        if r.is_err() && (self.svc.syn_auth != SynAuth::Off || self.verified()) {
            self.st.violation = Some(Violation {
                src: self.p.src_ip(),
                service: self.id,
                kind: ViolationKind::SrcPps,
            });
        }
        r
    }

    /// The source answered a challenge: verified for the policy's TTL,
    /// and noted for the cluster bus ([`WorkerState::just_verified`]).
    fn verify_source(&mut self) {
        let ttl = self.pol.timeouts.verified_ttl;
        self.st.verified.verify(self.p.src_ip(), self.now, ttl);
        self.st.just_verified = Some((self.p.src_ip(), ttl));
    }

    #[inline]
    fn verified(&mut self) -> bool {
        let hash = match self.h.src {
            Some(h) => h,
            None => self.st.verified.hash(&self.src),
        };
        self.st.verified.is_verified_hashed(hash, self.src, self.now)
    }

    fn tcp(&mut self, t: &TcpInfo, reply: &mut [u8]) -> R {
        let (pol, svc, p, now) = (self.pol, self.svc, self.p, self.now);
        if !svc.tcp_ports.contains(t.dport) {
            return Err(DropReason::PortNotAllowed);
        }
        if bad_flags(t.flags) {
            return Err(DropReason::BadTcpFlags);
        }
        let syn = flags::is_pure_syn(t.flags);
        if syn && !(pol.tcp_deny.is_empty() && pol.signatures.tcp.is_empty()) {
            if let Some(fp) = tcp_fingerprint(self.frame, p) {
                if pol.tcp_deny.iter().any(|r| r.matches(&fp)) {
                    return Err(DropReason::FingerprintDeny);
                }
                if pol.signatures.tcp.contains(&fp) {
                    return Err(DropReason::SignatureDeny);
                }
            }
        }
        if syn {
            self.src_limit_syn()?;
            return self.syn(t);
        }
        // Other segments are charged to their source's bucket only when
        // they pass or draw a reply: a flood of segments that die here
        // (ACK/RST floods from spoofed sources) must not cost a table insert
        // each, nor evict the buckets of real clients.
        let key = FlowId::of(p, t);
        let hash = match self.h.flow {
            Some(h) => h,
            None => self.st.flows.hash(&key),
        };
        match self.st.flows.get_hashed(hash, &key, now, pol.timeouts.flow_idle) {
            Ok(f) => {
                let plen = p.payload_len;
                if t.flags & flags::ACK != 0 {
                    f.establish(now);
                    f.ack = t.ack;
                }
                // Until its first bytes are judged, `seq` stays ISN + 1: the
                // base of their offsets.
                let judged = f.bits & Flow::JUDGED != 0;
                if judged {
                    f.seq = t.seq.wrapping_add(u32::from(plen));
                }
                if plen != 0 {
                    f.bits |= Flow::DATA;
                }
                if t.flags & (flags::FIN | flags::RST) != 0 {
                    if let Some(flow) = self.st.flows.take_id(&key) {
                        self.st.flow_gone(&Gone { id: key, flow });
                    }
                } else if plen != 0 && !judged {
                    return self.first_bytes(t, key, hash, reply);
                } else if plen != 0 && !self.svc.l7_rules.is_empty() {
                    // Keep-alive: a later request of a judged flow.
                    return self.later_request(t, key, reply);
                }
                self.src_pps_noted()?;
                return self.finish(false);
            }
            Err(Some(g)) => self.st.flow_gone(&g),
            Err(None) => {}
        }
        // No flow: the packet may be the answer to one of our challenges.
        // ACL-allowed sources are never challenged, so nothing they send is
        // an answer.
        let is_rst = t.flags & flags::RST != 0;
        let pure_ack = t.flags & (flags::ACK | flags::SYN | flags::RST | flags::FIN) == flags::ACK;
        match svc.syn_auth {
            SynAuth::ChallengeAck if is_rst && !self.trusted => {
                if synauth::check_rst(&pol.secrets, now, p, t) {
                    self.verify_source();
                    return Err(DropReason::ChallengeAnswered);
                }
                // Not an answer: a verified source's RST for a flow the table
                // no longer holds (evicted, idle, begun before a restart)
                // goes on to the pass rule below, like its other segments.
                if !self.verified() {
                    return Err(DropReason::BadCookie);
                }
            }
            SynAuth::HttpRedirect if !self.trusted && !self.verified() => return self.http_redirect(t, reply),
            SynAuth::CookieReset if pure_ack && !self.trusted && !self.verified() => {
                if !synauth::check_ack(&pol.secrets, now, p, t) {
                    return Err(DropReason::BadCookie);
                }
                self.verify_source();
                self.src_limit(SourceLimit::Pps)?;
                return Ok(Verdict::Answer(synauth::reset_after_ack_answer(t)));
            }
            _ => {}
        }
        // DESIGN.md: non-SYN segments pass for a known flow or a verified
        // source (a flow evicted or begun before a restart keeps working).
        if self.trusted || self.verified() {
            self.src_pps_noted()?;
            return self.finish(false);
        }
        Err(DropReason::TcpNoFlow)
    }

    /// `http-redirect`: a segment of a connection whose handshake Moat
    /// completed with a cookie ([`crate::l7::redirect`]). Its first request
    /// is answered; the ACKs and FINs around it are consumed.
    fn http_redirect(&mut self, t: &TcpInfo, reply: &mut [u8]) -> R {
        let (secrets, p, now) = (&self.pol.secrets, self.p, self.now);
        if t.flags & flags::RST != 0 || t.flags & flags::ACK == 0 {
            return Err(DropReason::BadCookie);
        }
        if !synauth::check_ack(secrets, now, p, t) {
            // After the response: the client's ACK of it and its FIN.
            let mut after = *t;
            after.ack = t.ack.wrapping_sub(redirect::CLOSE_ACK_OFFSET - 1);
            if p.payload_len == 0 && synauth::check_ack(secrets, now, p, &after) {
                return Err(DropReason::HttpHandshake);
            }
            return Err(DropReason::BadCookie);
        }
        if p.payload_len == 0 {
            return Err(DropReason::HttpHandshake);
        }
        self.src_limit(SourceLimit::Pps)?;
        let (len, verified) = redirect::reply(secrets, now, self.frame, p, t, reply).ok_or(DropReason::BadL4Header)?;
        if verified {
            self.verify_source();
        }
        Ok(Verdict::Reply { len })
    }

    /// A SYN that passed the port, flag and fingerprint checks.
    fn syn(&mut self, t: &TcpInfo) -> R {
        let (pol, svc, p, now) = (self.pol, self.svc, self.p, self.now);
        let authenticated = self.trusted || svc.syn_auth == SynAuth::Off || self.verified();
        if !authenticated {
            if !self.st.services[usize::from(self.id)].challenges.take(now) {
                return Err(DropReason::RateLimitChallenge);
            }
            let a = synauth::challenge_answer(svc.syn_auth, &pol.secrets, now, self.frame, p, t)
                .ok_or(DropReason::BadL4Header)?;
            return Ok(Verdict::Answer(a));
        }
        let key = FlowId::of(p, t);
        let idle = pol.timeouts.flow_idle;
        // A retransmitted SYN of a flow already admitted is not a new flow.
        let hash = match self.h.flow {
            Some(h) => h,
            None => self.st.flows.hash(&key),
        };
        match self.st.flows.get_hashed(hash, &key, now, idle) {
            Ok(_) => {}
            Err(gone) => {
                if let Some(g) = gone {
                    self.st.flow_gone(&g);
                }
                if let Err(r) = self.src_limit(SourceLimit::NewConn) {
                    self.proven_violation(ViolationKind::SrcNewConns);
                    return Err(r);
                }
                let bits = self.admit(t)?;
                let flow = Flow::new(now, t.seq, self.id, bits);
                if let (_, Some(g)) = self.st.flows.insert_flow(key, flow, now, idle) {
                    self.st.flow_gone(&g);
                }
            }
        }
        self.finish(true)
    }

    /// A source over a limit, noted as a violation when its address is
    /// proven: it passed SYN authentication to get here (ACL-allowed
    /// sources have no limits; with `syn_auth = "off"` a SYN proves
    /// nothing).
    #[inline]
    fn proven_violation(&mut self, kind: ViolationKind) {
        if self.svc.syn_auth != SynAuth::Off && !self.trusted {
            self.st.violation = Some(Violation {
                src: self.p.src_ip(),
                service: self.id,
                kind,
            });
        }
    }

    /// The connection limits of a new flow (`dst_conns`, `src_conns`,
    /// `dst_new_conns_ps`), counting it where it passes; returns the bits
    /// of its [`Flow`]. With no limit and no inspection set, a few
    /// compares.
    #[inline]
    fn admit(&mut self, t: &TcpInfo) -> Result<u8, DropReason> {
        let (l, id) = (&self.svc.limits, usize::from(self.id));
        let mut bits = 0;
        if !self.svc.inspects(t.dport) {
            bits |= Flow::JUDGED;
        }
        if l.empty_conn_secs != 0 {
            // The RSTs of an empty connection leave with a client frame's
            // L2 header (no packet of the flow is at hand then).
            let l2 = usize::from(self.p.l3_offset).min(crate::conn::MAX_L2);
            if let Some(h) = self.frame.get(..l2) {
                self.st.l2[..l2].copy_from_slice(h);
                self.st.l2_len = l2 as u8;
            }
        }
        if l.src_conns == 0 && l.dst_conns == 0 && l.dst_new_conns_ps == 0 {
            return Ok(bits);
        }
        let b = &self.st.services[id];
        if b.max_conns != 0 && b.conns >= b.max_conns {
            return Err(DropReason::ConnLimitService);
        }
        if l.src_conns != 0 && !self.trusted {
            if !self.st.conns.try_add(self.src, self.id, l.src_conns) {
                self.proven_violation(ViolationKind::SrcConns);
                return Err(DropReason::ConnLimitSource);
            }
            bits |= Flow::COUNTED_SRC;
        }
        let b = &mut self.st.services[id];
        if l.dst_new_conns_ps != 0 && !b.new_conns.take(self.now) {
            if bits & Flow::COUNTED_SRC != 0 {
                self.st.conns.sub(self.src, self.id);
            }
            return Err(DropReason::NewConnLimitService);
        }
        if b.max_conns != 0 {
            b.conns += 1;
            bits |= Flow::COUNTED_DST;
        }
        Ok(bits)
    }

    /// A data segment of a flow whose first bytes are not judged yet
    /// (its service inspects them): judged once whole (reassembled when
    /// they span segments); passed while pending; reset both ways when a
    /// rule denies it.
    #[cold]
    fn first_bytes(&mut self, t: &TcpInfo, key: FlowId, hash: u64, reply: &mut [u8]) -> R {
        let (svc, p, now, frame) = (self.svc, self.p, self.now, self.frame);
        let idle = self.pol.timeouts.flow_idle;
        let rules = svc.tcp_payload_rules_for(t.dport);
        let mut seen = inspect::Seen::default();
        let st = &mut *self.st;
        let judged = match (st.flows.get_hashed(hash, &key, now, idle), st.inspect.as_mut()) {
            (Ok(f), Some(ins)) => {
                let j = first_bytes_judged(
                    ins,
                    &key,
                    f.seq,
                    t.seq,
                    p.payload(frame),
                    rules,
                    &svc.l7_rules,
                    now,
                    &mut seen,
                );
                if j != Judged::Pending {
                    f.bits |= Flow::JUDGED;
                    f.seq = t.seq.wrapping_add(u32::from(p.payload_len));
                    ins.judged += 1;
                    ins.unjudgeable += u64::from(j == Judged::Unjudgeable);
                    ins.reasm.remove(&key);
                }
                j
            }
            // No inspection state (a policy swap under way): nothing to
            // judge with.
            (Ok(f), None) => {
                f.bits |= Flow::JUDGED;
                Judged::Pass
            }
            (Err(gone), _) => {
                if let Some(g) = gone {
                    st.flow_gone(&g);
                }
                return Err(DropReason::TcpNoFlow);
            }
        };
        // What the first bytes said, for detection's heavy hitters (the
        // caller attaches it to a sample of this packet).
        if judged != Judged::Pending && !seen.is_empty() {
            self.st.l7_seen = Some(seen);
        }
        let (reason, kind) = match judged {
            Judged::Limit { per_source_rps } if self.request_allowed(per_source_rps) => return self.pass_segment(),
            Judged::Pending | Judged::Pass | Judged::Unjudgeable => return self.pass_segment(),
            Judged::Limit { .. } => (DropReason::L7Limit, ViolationKind::L7Limit),
            Judged::Deny => (DropReason::L7Deny, ViolationKind::L7Deny),
            Judged::PayloadMismatch => (DropReason::TcpPayloadMismatch, ViolationKind::PayloadMismatch),
        };
        self.reset_both(t, &key, reason, kind, reply)
    }

    /// A passed segment of a flow: the source's packet rate, then the
    /// service's.
    #[inline]
    fn pass_segment(&mut self) -> R {
        self.src_pps_noted()?;
        self.finish(false)
    }

    /// One request against the source's `per_source_rps` bucket (an
    /// `l7_rules` limit rule; ACL-allowed sources are not limited).
    fn request_allowed(&mut self, per_source_rps: u32) -> bool {
        self.trusted
            || self
                .st
                .sources
                .allow_hashed(self.h.src, self.src, self.id, self.now, SourceLimit::L7, per_source_rps)
    }

    /// A data segment of a judged flow of a service with `l7_rules`: when
    /// it starts an HTTP request (keep-alive), the request is matched like
    /// a first one: a deny rule resets the connection, a limit rule counts
    /// it against the source's rate. A request cut by the segment end is
    /// judged on what the segment holds.
    #[cold]
    fn later_request(&mut self, t: &TcpInfo, key: FlowId, reply: &mut [u8]) -> R {
        let payload = self.p.payload(self.frame);
        if !crate::l7::http::starts_request(payload) {
            return self.pass_segment();
        }
        let crate::l7::http::HttpParse::Request(req) = crate::l7::http::parse_request(payload) else {
            return self.pass_segment();
        };
        let facts = crate::l7::rules::Facts::of_request(&req);
        self.st.l7_seen = Some(inspect::Seen::of(&facts));
        let (reason, kind) = match crate::l7::rules::first_match(&self.svc.l7_rules, &facts).map(|r| r.action) {
            None => return self.pass_segment(),
            Some(crate::l7::rules::L7Action::Limit { per_source_rps }) if self.request_allowed(per_source_rps) => {
                return self.pass_segment()
            }
            Some(crate::l7::rules::L7Action::Limit { .. }) => (DropReason::L7Limit, ViolationKind::L7Limit),
            Some(crate::l7::rules::L7Action::Deny) => (DropReason::L7Deny, ViolationKind::L7Deny),
        };
        self.reset_both(t, &key, reason, kind, reply)
    }

    /// Ends the flow of `t` on both sides: the flow leaves the table, the
    /// source's violation is noted (it completed a handshake), a RST toward
    /// the client goes into `reply` and the pipeline turns the segment into
    /// the client's RST toward the origin.
    fn reset_both(
        &mut self,
        t: &TcpInfo,
        key: &FlowId,
        reason: DropReason,
        kind: ViolationKind,
        reply: &mut [u8],
    ) -> R {
        if let Some(flow) = self.st.flows.take_id(key) {
            self.st.flow_gone(&Gone { id: *key, flow });
        }
        self.st.note_violation(key, self.id, kind);
        // RFC 9293 §3.10.7.1 / RFC 5961: a RST is taken at once when its
        // sequence number is the receiver's next expected one, which is
        // what the client acknowledged last.
        let len = build::tcp_reply(self.frame, self.p, t.ack, 0, flags::RST, 0, None, reply).ok_or(reason)?;
        Ok(Verdict::ResetBoth {
            len,
            reason,
            service: self.id,
            origin: self.svc.origin,
        })
    }

    fn udp(&mut self, sport: u16, dport: u16, reply: &mut [u8]) -> R {
        let (pol, svc, p) = (self.pol, self.svc, self.p);
        // Reflection first: answers from port 53/123/11211... aim at random
        // destination ports, and the reason that explains them is their
        // source.
        if pol.reflection_ports.contains(sport) && !svc.allow_src_ports.contains(sport) {
            return Err(DropReason::ReflectionPort);
        }
        if !svc.udp_ports.contains(dport) {
            return Err(DropReason::PortNotAllowed);
        }
        if let Some(auth) = svc.udp_auth_for(dport) {
            if !self.trusted && !self.verified() {
                if let Some(v) = self.udp_auth(auth, sport, dport, reply)? {
                    return Ok(v);
                }
            }
        }
        let rules = svc.payload_rules_for(dport);
        if !rules.is_empty() && !rules.iter().any(|r| r.matches(p.payload(self.frame))) {
            return Err(DropReason::PayloadMismatch);
        }
        datagram_signatures(pol, self.frame, p)?;
        self.src_limit(SourceLimit::Pps)?;
        self.finish(false)
    }

    /// UDP game authentication of an unverified source
    /// ([`crate::udpauth`]): `Ok(None)` when the datagram verified its
    /// source and goes on through the other checks, `Ok(Some(reply))` for
    /// an A2S challenge.
    fn udp_auth(
        &mut self,
        auth: &UdpAuth,
        sport: u16,
        dport: u16,
        reply: &mut [u8],
    ) -> Result<Option<Verdict>, DropReason> {
        let (pol, p, now) = (self.pol, self.p, self.now);
        let payload = p.payload(self.frame);
        match auth.profile {
            Profile::A2s => match udpauth::a2s_check(&pol.secrets, p.src_ip(), sport, now, payload) {
                A2sCheck::Valid => {
                    self.verify_source();
                    Ok(None)
                }
                A2sCheck::Challenge => {
                    if !self.st.services[usize::from(self.id)].challenges.take(now) {
                        return Err(DropReason::RateLimitChallenge);
                    }
                    let len = udpauth::write_a2s_challenge(&pol.secrets, now, self.frame, p, sport, reply)
                        .ok_or(DropReason::BadL4Header)?;
                    Ok(Some(Verdict::Reply { len }))
                }
                A2sCheck::Other => Err(DropReason::UdpUnverified),
            },
            Profile::FirstPacket(fp) => {
                if !fp.rule.matches(payload) {
                    return Err(DropReason::UdpUnverified);
                }
                match self.st.first_packets.seen(p, sport, dport, now, &fp) {
                    Seen::InWindow => {
                        self.verify_source();
                        Ok(None)
                    }
                    Seen::First | Seen::TooEarly => Err(DropReason::UdpFirstPacket),
                }
            }
        }
    }

    /// ICMP and ICMPv6 (neighbour discovery never gets here): type
    /// allowlist, then the service's ICMP rate, then the source's.
    ///
    /// The service's bucket is looked at before the source table and spent
    /// after it: a random-source flood beyond the service's rate dies
    /// without a table insert each (it cannot evict real clients' buckets),
    /// and a single source over its own rate spends none of the service's.
    /// A source that proved its address (ACL-allowed, or verified by SYN
    /// authentication) passes an empty service bucket, so that a spoofed
    /// flood cannot starve it; the verified table is probed only then.
    fn icmp(&mut self, type_ok: bool) -> R {
        if !self.svc.icmp {
            return Err(DropReason::PortNotAllowed);
        }
        if !type_ok {
            return Err(DropReason::IcmpType);
        }
        self.icmp_rates()
    }

    /// The ICMP rates of [`Ctx::icmp`], then pass.
    fn icmp_rates(&mut self) -> R {
        let (id, now) = (usize::from(self.id), self.now);
        let open = self.st.services[id].icmp.ready(now);
        if !open && !self.trusted && !self.verified() {
            return Err(DropReason::RateLimitIcmp);
        }
        self.src_limit_icmp()?;
        if open {
            self.st.services[id].icmp.take(now);
        }
        self.finish(false)
    }

    /// An ICMP message's two per-source charges (packets, ICMP) with one
    /// table probe.
    #[inline]
    fn src_limit_icmp(&mut self) -> Result<(), DropReason> {
        let rate = self.svc.limits.src_icmp_pps;
        self.src_limit_pps_and(SourceLimit::Icmp, rate, DropReason::RateLimitIcmpSource)
    }

    /// Per-service rate and tunnel MTU, then pass.
    #[inline]
    fn finish(&mut self, syn: bool) -> R {
        if !self.st.services[usize::from(self.id)].pps.take(self.now) {
            return Err(DropReason::RateLimitService);
        }
        // Larger than the tunnel: it cannot be delivered (IPv4 DF or IPv6:
        // no fragmentation on the way). MSS clamping keeps the rest of a
        // passed SYN's flow under the MTU, but not a SYN that carries data.
        if self.p.l3_len > self.pol.origins[usize::from(self.svc.origin)].mtu {
            return Err(DropReason::TooBig);
        }
        Ok(Verdict::Pass(Pass {
            service: self.id,
            origin: self.svc.origin,
            syn,
        }))
    }
}

/// The judgement of a segment of a flow under inspection: `base` is the
/// flow's ISN + 1, `seq` and `payload` the segment's. A first segment
/// judgeable on its own skips the reassembly; otherwise the segment joins
/// the flow's reassembled prefix, judged when it grows.
#[allow(clippy::too_many_arguments)] // the flow, the segment and the rules
fn first_bytes_judged(
    ins: &mut Inspect,
    key: &FlowId,
    base: u32,
    seq: u32,
    payload: &[u8],
    rules: &[crate::policy::PayloadRule],
    l7: &[crate::l7::rules::L7Rule],
    now: Nanos,
    seen: &mut inspect::Seen,
) -> Judged {
    let bound = ins.reasm.config().bytes_per_flow;
    let off = reassembly::rel_offset(seq, base.wrapping_sub(1));
    if off == 0 {
        let j = inspect::judge_seen(payload, rules, l7, payload.len() >= bound, &mut ins.scratch, seen);
        if j != Judged::Pending {
            return j;
        }
    }
    match ins.reasm.insert(*key, now, off, payload) {
        Reasm::Prefix(pre) => {
            let full = pre.len() >= bound;
            inspect::judge_seen(pre, rules, l7, full, &mut ins.scratch, seen)
        }
        Reasm::Held | Reasm::Duplicate => Judged::Pending,
        Reasm::Outside | Reasm::GaveUp(_) => Judged::Unjudgeable,
    }
}

#[inline]
fn datagram_signatures(pol: &Policy, frame: &[u8], p: &Parsed) -> Result<(), DropReason> {
    if pol.udp_deny.is_empty() && pol.signatures.udp.is_empty() {
        return Ok(());
    }
    let Some(fp) = udp_fingerprint(frame, p) else {
        return Ok(());
    };
    if pol.udp_deny.iter().any(|r| r.matches(&fp)) {
        return Err(DropReason::FingerprintDeny);
    }
    if pol.signatures.udp.contains(&fp) {
        return Err(DropReason::SignatureDeny);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_ipv4_header_sum_matches_generic(hdr in proptest::array::uniform20(any::<u8>())) {
            prop_assert_eq!(ipv4_header_sum(&hdr), checksum::data(&hdr));
        }
    }
}
