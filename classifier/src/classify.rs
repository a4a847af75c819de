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
use crate::parse::{self, Addr, Frag, Parsed, TcpInfo, L3, L4};
use crate::policy::{FragPolicy, Policy, Service, ServiceId, SynAuth};
use crate::state::table::AddrKey;
use crate::state::{FlowId, SourceLimit, Violation, ViolationKind, WorkerState};
use crate::synauth::{self, flags};
use crate::time::Nanos;
use crate::verdict::{Decision, DropReason, Pass, Verdict};
use crate::wire::checksum;

type R = Result<Verdict, DropReason>;

/// Classifies one Ethernet frame. `reply` receives a reply frame when the
/// verdict is [`Verdict::Reply`] (128 bytes are always enough).
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
    classify_hashed(st, pol, now, frame, p, rx, Hashes::default(), reply)
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
/// that is `None` is computed when needed).
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
        L4::Udp { sport, dport } => cx.udp(sport, dport),
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
#[inline]
fn bad_flags(f: u8) -> bool {
    let core = f & (flags::SYN | flags::RST | flags::ACK | flags::FIN);
    core == 0
        || (f & flags::SYN != 0 && f & (flags::FIN | flags::RST) != 0)
        || (f & flags::FIN != 0 && f & flags::ACK == 0)
        || (f & (flags::PSH | flags::URG) != 0 && f & flags::ACK == 0)
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
            SourceLimit::NewFlow => (l.src_new_flows_ps, DropReason::RateLimitNewFlow),
            SourceLimit::Icmp => (l.src_icmp_pps, DropReason::RateLimitIcmpSource),
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
            return self.syn(t, reply);
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
        if self.st.flows.touch_hashed(hash, &key, now, pol.timeouts.flow_idle) {
            if t.flags & (flags::FIN | flags::RST) != 0 {
                self.st.flows.remove_id(&key);
            }
            self.src_pps_noted()?;
            return self.finish(false);
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
            SynAuth::CookieReset if pure_ack && !self.trusted && !self.verified() => {
                if !synauth::check_ack(&pol.secrets, now, p, t) {
                    return Err(DropReason::BadCookie);
                }
                self.verify_source();
                self.src_limit(SourceLimit::Pps)?;
                let len = synauth::reset_after_ack(self.frame, p, t, reply).ok_or(DropReason::BadL4Header)?;
                return Ok(Verdict::Reply { len });
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

    /// A SYN that passed the port, flag and fingerprint checks.
    fn syn(&mut self, t: &TcpInfo, reply: &mut [u8]) -> R {
        let (pol, svc, p, now) = (self.pol, self.svc, self.p, self.now);
        let authenticated = self.trusted || svc.syn_auth == SynAuth::Off || self.verified();
        if !authenticated {
            if !self.st.services[usize::from(self.id)].challenges.take(now) {
                return Err(DropReason::RateLimitChallenge);
            }
            let len = synauth::challenge(svc.syn_auth, &pol.secrets, now, self.frame, p, t, reply)
                .ok_or(DropReason::BadL4Header)?;
            return Ok(Verdict::Reply { len });
        }
        let key = FlowId::of(p, t);
        let idle = pol.timeouts.flow_idle;
        // A retransmitted SYN of a flow already admitted is not a new flow.
        let hash = match self.h.flow {
            Some(h) => h,
            None => self.st.flows.hash(&key),
        };
        if !self.st.flows.touch_hashed(hash, &key, now, idle) {
            self.src_limit(SourceLimit::NewFlow)?;
            self.st.flows.insert_id(key, now, idle);
        }
        self.finish(true)
    }

    fn udp(&mut self, sport: u16, dport: u16) -> R {
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
        let rules = svc.payload_rules_for(dport);
        if !rules.is_empty() && !rules.iter().any(|r| r.matches(p.payload(self.frame))) {
            return Err(DropReason::PayloadMismatch);
        }
        datagram_signatures(pol, self.frame, p)?;
        self.src_limit(SourceLimit::Pps)?;
        self.finish(false)
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
