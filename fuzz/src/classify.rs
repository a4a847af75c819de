//! The `classify` target: [`classifier::classify`] over a sequence of frames
//! (see [`crate::records`]) with one [`WorkerState`] carried across them, so
//! that SYN authentication, flows, verified sources and token buckets are
//! exercised the way traffic drives them.
//!
//! The policy ([`policy`]) has every countermeasure switched on and small
//! enough limits and tables that the fuzzer reaches their edges within a few
//! packets: two services (IPv4 with `challenge-ack`, IPv6 with
//! `cookie-reset`) on the VIPs and ports of `moat gen`'s defaults, payload
//! rules, fingerprint deny rules, dynamic signatures, an ACL, an own address
//! for ARP, fragments allowed, a global cap; tables of 8 entries.
//!
//! IPv4 header checksums are filled in before classification (see
//! `fix_ipv4_checksum`). Checked per packet: a reply is 60 to 128 bytes
//! (the room `classify` documents) and parses back as a frame; a pass names
//! an existing service whose VIP is the packet's destination and an L3
//! offset inside the frame, fits the origin's tunnel MTU unless it is a SYN
//! (exempt by design), and survives what the pipeline does next (MSS
//! clamping of a SYN, GRE encapsulation).
//! Checked per input: the state's memory did not grow.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use classifier::acl::AclAction;
use classifier::build::{self, GreParams};
use classifier::classify;
use classifier::cookie::CookieSecrets;
use classifier::fingerprint::{payload_hash, Signatures, TcpFingerprint, TcpRule, UdpFingerprint, UdpRule};
use classifier::l7::rules::{L7Action, L7Rule};
use classifier::parse::{parse, L3};
use classifier::policy::{FragPolicy, Origin, OwnAddr, PayloadRule, Policy, PortSet, Service, SynAuth};
use classifier::state::{StateConfig, WorkerState};
use classifier::time::Nanos;
use classifier::verdict::{Pass, Verdict};
use classifier::wire;

use crate::records::records;

/// Cookie key material shared with the seed generator, so that the
/// legitimate clients in the seeds answer challenges correctly.
pub const SECRET: &[u8] = b"moat-fuzz-secret";
/// Time of the first record (before its own step): `moat gen`'s default
/// capture start, 2026-01-01T00:00:00Z.
pub const START: Nanos = 1_767_225_600 * 1_000_000_000;
/// Service addresses and ports: `moat gen`'s defaults.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
pub const TCP_PORT: u16 = 80;
pub const UDP_PORT: u16 = 7777;
/// The node's own addresses, answered to ARP and to neighbour solicitations.
pub const OWN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const OWN_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
/// Workers sharing the node-wide limits (each state gets half).
const WORKERS: u32 = 2;
/// Largest reply `classify` may write (its documentation and the pipeline's
/// `REPLY_ROOM`); the buffer given is larger so that an overlong reply shows
/// as a failed assertion rather than a refused build.
const REPLY_MAX: usize = 128;

/// The cookie secrets of [`policy`].
pub fn secrets() -> CookieSecrets {
    CookieSecrets::new(CookieSecrets::derive_key(SECRET))
}

fn fp<T: core::str::FromStr>(s: &str) -> T
where
    T::Err: core::fmt::Debug,
{
    s.parse().expect("fixed rule text parses")
}

fn service(name: &str, vip: IpAddr, auth: SynAuth) -> Service {
    let mut s = Service::new(name, vip, 0);
    s.tcp_ports = PortSet::from_ports([TCP_PORT, 443]);
    s.udp_ports = PortSet::from_ports([UDP_PORT, 53]);
    s.icmp = true;
    s.syn_auth = auth;
    s.limits.src_pps = 20;
    s.limits.src_syn_pps = 4;
    s.limits.src_new_conns_ps = 3;
    s.limits.service_pps = 40;
    s.limits.challenge_pps = 8;
    s.limits.src_icmp_pps = 2;
    s.limits.icmp_pps = 6;
    s.limits.src_conns = 3;
    s.limits.dst_conns = 6;
    s.limits.dst_new_conns_ps = 10;
    s.limits.empty_conn_secs = 1;
    let mut deny = L7Rule::new(L7Action::Deny);
    deny.path_prefix = Some(b"/login".as_slice().into());
    let mut limit = L7Rule::new(L7Action::Limit { per_source_rps: 2 });
    limit.method = Some(classifier::l7::http::Method::Get);
    let mut sni = L7Rule::new(L7Action::Deny);
    sni.sni = Some(b"bad.example".as_slice().into());
    s.l7_rules = vec![deny, limit, sni];
    s.tcp_payload_rules = vec![PayloadRule::new(443, 0, b"\x16\x03", b"\xff\xff").expect("rule")];
    // A DNS service expects answers from port 53, a reflection port.
    s.allow_src_ports = PortSet::from_ports([53]);
    let rule = |port, offset, value: &[u8], mask: &[u8]| PayloadRule::new(port, offset, value, mask).expect("rule");
    s.payload_rules = vec![
        rule(UDP_PORT, 0, b"GAME", b"\xff\xff\xff\xff"),
        rule(UDP_PORT, 2, b"\x01\x00", b"\x0f\xf0"),
        rule(53, 2, b"\x01\x00", b"\x80\x00"),
    ];
    s
}

/// The fuzzing policy (see the module docs).
pub fn policy() -> Policy {
    let mut p = Policy::new(secrets());
    p.add_origin(Origin {
        name: "origin".into(),
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: Some(42),
        mtu: 1476,
    });
    p.add_service(service("web4", IpAddr::V4(VIP4), SynAuth::ChallengeAck))
        .expect("v4 service");
    p.add_service(service("web6", IpAddr::V6(VIP6), SynAuth::CookieReset))
        .expect("v6 service");
    p.acl.insert("198.51.100.0/24".parse().expect("net"), AclAction::Deny);
    p.acl
        .insert("198.51.100.128/25".parse().expect("net"), AclAction::Allow);
    p.acl.insert("2001:db8:bad::/48".parse().expect("net"), AclAction::Deny);
    p.acl.insert("192.0.2.0/24".parse().expect("net"), AclAction::Allow);
    p.tcp_deny = vec![
        fp::<TcpRule>("*:*:*:-:*,*:*:*"),
        fp::<TcpRule>("4:255:*:*:mss*4,*::*"),
        fp::<TcpRule>("*:*:*:*:1024,-:mss:*"),
    ];
    p.udp_deny = vec![fp::<UdpRule>("udp:*:0:*:*"), fp::<UdpRule>("17:6:*:19:*")];
    let mut sig = Signatures::default();
    sig.tcp.insert(fp::<TcpFingerprint>("4:64:0:1460:512,-:mss:df"));
    // An 8-byte zero payload from port 1234, as a naive flood tool sends.
    sig.udp.insert(UdpFingerprint {
        proto: 17,
        ver: 4,
        len: 8,
        sport: 1234,
        phash: payload_hash(&[0; 8]),
    });
    p.signatures = sig;
    p.own_addrs = [IpAddr::V4(OWN_IP), IpAddr::V6(OWN_IP6)]
        .into_iter()
        .map(|ip| OwnAddr {
            ip,
            mac: [0x02, 0, 0, 0, 0, 0xfe],
        })
        .collect();
    p.sanity.fragments = FragPolicy::Allow;
    p.global_pps = 400;
    p
}

/// The GRE parameters the pipeline would use for the origin.
fn gre(pol: &Policy) -> GreParams {
    let o = &pol.origins[0];
    GreParams {
        src_mac: [2; 6],
        dst_mac: [4; 6],
        tunnel_src: o.tunnel_src,
        tunnel_dst: o.tunnel_dst,
        key: o.key,
        ttl: 64,
    }
}

/// What the verdicts of one input were (seed tests check that the seeds
/// reach every kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub passed: u32,
    pub replies: u32,
    pub dropped: u32,
}

/// The target body.
pub fn classify_frames(data: &[u8]) {
    run(data);
}

/// Runs every record of `data` through `classify`, checking each verdict.
pub fn run(data: &[u8]) -> Tally {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let pol = POLICY.get_or_init(policy);
    let sizes = StateConfig {
        flows: 8,
        verified: 8,
        sources: 8,
        reassembly: classifier::l7::reassembly::ReassemblyConfig {
            slots: 4,
            bytes_per_flow: 600,
            ..Default::default()
        },
        bans: 64,
    };
    let mut st = WorkerState::new(&sizes, pol, WORKERS);
    let memory = st.memory_bytes();
    let mut now = START;
    let mut reply = [0u8; 2 * REPLY_MAX];
    let mut tally = Tally::default();
    let mut buf = Vec::new();
    for (dt, frame) in records(data) {
        now = now.saturating_add(dt);
        buf.clear();
        buf.extend_from_slice(frame);
        let frame = fix_ipv4_checksum(&mut buf);
        match classify(&mut st, pol, now, frame, &mut reply) {
            Verdict::Reply { len } => {
                check_reply(&reply, len);
                tally.replies += 1;
            }
            Verdict::Pass(pass) => {
                check_pass(pol, frame, pass);
                tally.passed += 1;
            }
            Verdict::Drop(_) => tally.dropped += 1,
            Verdict::Answer(a) => panic!("classify left an in-place answer unbuilt: {a:?}"),
            Verdict::ResetBoth {
                len, reason, service, ..
            } => {
                check_reply(&reply, len);
                check_reset_both(pol, frame, reason, service);
                tally.replies += 1;
            }
        }
        // The flow sweep (idle flows, empty connections) between records.
        st.sweep_flows(now, pol.timeouts.flow_idle, 4);
        st.ended = None;
    }
    assert_eq!(st.memory_bytes(), memory, "per-core state grew");
    tally
}

/// Fills in the IPv4 header checksum of a frame that parses as IPv4.
/// Without this, almost every mutation of an IPv4 header would end at the
/// checksum check (`bad_ip_checksum`) and the fuzzer would explore IPv4 only
/// as far as that one comparison. The check itself is exercised by the
/// scrub tests (mgmt/tests/scrub_mix.rs: `moat gen`'s malformed profile).
pub(crate) fn fix_ipv4_checksum(buf: &mut [u8]) -> &[u8] {
    if let Ok(p) = parse(buf) {
        if p.l3 == L3::Ipv4 {
            let l3 = usize::from(p.l3_offset);
            wire::Ipv4Packet::new_unchecked(&mut buf[l3..l3 + usize::from(p.ip_header_len)]).fill_checksum();
        }
    }
    buf
}

/// A connection reset both ways: a client's data segment to a service
/// with first-segment rules, which rewrites in place into the client's own
/// RST (no payload) that parses again.
fn check_reset_both(pol: &Policy, frame: &[u8], reason: classifier::DropReason, service: u16) {
    use classifier::DropReason as D;
    assert!(
        matches!(reason, D::L7Deny | D::L7Limit | D::TcpPayloadMismatch),
        "{reason:?}"
    );
    let p = parse(frame).expect("a reset segment parsed");
    assert_eq!(pol.services[usize::from(service)].vip, p.dst_ip());
    assert!(p.payload_len > 0, "reset on a segment without data");
    let mut copy = frame.to_vec();
    let q = classifier::conn::reset_in_place(&mut copy, &p).expect("rewritable");
    let end = usize::from(q.l3_offset) + usize::from(q.l3_len);
    let again = parse(&copy[..end]).expect("the RST parses");
    assert_eq!(again.payload_len, 0);
    assert_eq!(
        again.tcp_flags() & classifier::wire::tcp::flags::RST,
        classifier::wire::tcp::flags::RST
    );
}

fn check_reply(reply: &[u8], len: usize) {
    assert!(len <= REPLY_MAX, "reply of {len} bytes");
    assert!(len >= build::ETH_MIN_FRAME, "reply of {len} bytes is a runt");
    parse(&reply[..len]).expect("a reply parses");
}

fn check_pass(pol: &Policy, frame: &[u8], pass: Pass) {
    let svc = pol.services.get(usize::from(pass.service)).expect("pass to a service");
    let p = parse(frame).expect("a passed frame parses");
    let l3 = usize::from(p.l3_offset);
    assert!(l3 < frame.len(), "l3_offset {l3} of a {}-byte frame", frame.len());
    assert_eq!(p.dst_ip(), svc.vip, "passed to the service of another VIP");
    assert_eq!(pass.origin, svc.origin, "passed toward another service's origin");
    assert_eq!(pass.syn, p.is_pure_syn(), "the SYN flag of the verdict");
    let origin = &pol.origins[usize::from(svc.origin)];
    // DropReason::TooBig: nothing larger than the tunnel goes toward it.
    let mtu = origin.mtu;
    assert!(p.l3_len <= mtu, "passed {} bytes into a {mtu}-byte tunnel", p.l3_len);
    // What the pipeline does next: clamp a SYN's MSS, then encapsulate.
    let mut copy = frame.to_vec();
    if pass.syn {
        build::clamp_mss(&mut copy, &p, origin.mss_for(p.dst_ip().is_ipv6()));
    }
    let mut out = vec![0u8; usize::from(p.l3_len) + build::gre_overhead(true)];
    let n = build::gre_encap(p.l3_bytes(&copy), &gre(pol), &mut out).expect("a passed packet encapsulates");
    parse(&out[..n]).expect("GRE output parses");
}
