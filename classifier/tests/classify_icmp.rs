//! ICMP and ICMPv6 rate limits through `classify` (issue 10, item 2: an
//! echo flood from random sources reached the origin almost whole): the
//! service's ICMP rate (`Limits::icmp_pps`, split among workers), the
//! source's (`Limits::src_icmp_pps`), both on by default, with exact token
//! counts over simulated time. Proven sources (verified, ACL-allowed) pass
//! an exhausted service bucket; neighbour discovery is never limited.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::acl::AclAction;
use classifier::policy::{Limits, Service, SynAuth};
use classifier::state::StateConfig;
use classifier::time::{Nanos, SECOND};
use classifier::verdict::{DropReason, Verdict};
use common::net::*;

/// ICMP echo request and reply (RFC 792), ICMPv6 echo request and reply
/// (RFC 4443 §4).
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const ECHO6_REQUEST: u8 = 128;
const ECHO6_REPLY: u8 = 129;

/// `web` on `vip` with ICMP allowed and `limits`.
fn pingable(name: &str, vip: IpAddr, limits: Limits) -> Service {
    let mut s = web(name, vip, SynAuth::ChallengeAck);
    s.icmp = true;
    s.limits = limits;
    s
}

/// A node with `web` (IPv4) and `web6` (IPv6), both pingable with `limits`,
/// on one of `workers` workers, with room for `sources` sources.
fn node(limits: Limits, workers: u32, sources: usize) -> Node {
    let pol = policy_with(
        KEY,
        vec![pingable("web", vip4(), limits), pingable("web6", vip6(), limits)],
    );
    let cfg = StateConfig {
        flows: 1024,
        verified: 1024,
        sources,
        reassembly: Default::default(),
        bans: 64,
    };
    Node::with_config(pol, cfg, workers)
}

/// The `i`-th spoofed source: distinct, none of them bogus (11.0.0.0/8 up).
fn spoofed4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i))
}

fn spoofed6(i: u32) -> IpAddr {
    IpAddr::V6(spoofed6_addr(i))
}

fn spoofed6_addr(i: u32) -> Ipv6Addr {
    Ipv6Addr::from(0x2001_0db8_0bad_0000_0000_0000_0000_0000 + u128::from(i))
}

fn echo(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let ty = if dst.is_ipv6() { ECHO6_REQUEST } else { ECHO_REQUEST };
    Pkt::icmp(src, dst, ty, 0).build()
}

/// Sends one echo request from `src(i)` every `step` ns over `[from,
/// from + n * step)`; returns how many passed. Every other verdict must be
/// a drop for `reason`.
fn flood(
    n: &mut Node,
    src: impl Fn(u32) -> IpAddr,
    dst: IpAddr,
    from: Nanos,
    step: Nanos,
    count: u32,
    reason: DropReason,
) -> u64 {
    let mut passed = 0;
    for i in 0..count {
        match n.run(from + u64::from(i) * step, &echo(src(i), dst)) {
            Verdict::Pass(p) => {
                assert!(!p.syn);
                passed += 1;
            }
            v => assert_eq!(v, Verdict::Drop(reason), "packet {i}"),
        }
    }
    passed
}

#[test]
fn defaults_are_on() {
    let l = Limits::default();
    assert_eq!((l.icmp_pps, l.src_icmp_pps), (200, 20));
    assert_eq!(
        (
            l.src_pps,
            l.src_syn_pps,
            l.src_new_conns_ps,
            l.service_pps,
            l.challenge_pps
        ),
        (0, 0, 0, 0, 0),
        "the other limits stay off by default"
    );
}

/// The reproduction in simulated time: 50,000 echo requests at 20
/// kpps (one every 50 µs, 2.5 s), each from a new random source. With the
/// default 200/s the service passes its one-second burst (200) plus 200
/// per second after: 200 + 499 (the 500th token arrives at 2.5 s, after the
/// last request), under 1.5 % of the flood.
#[test]
fn echo_flood_from_random_sources_is_capped_at_the_service_rate() {
    let mut n = node(Limits::default(), 1, 4096);
    let passed = flood(&mut n, spoofed4, vip4(), T0, 50_000, 50_000, DropReason::RateLimitIcmp);
    assert_eq!(passed, 200 + 499);
    // Only the sources that passed took a slot in the source table: the
    // 49,301 refused never cost an insert (nor evicted a real client).
    assert_eq!(n.st.sources.len(), 699);
    // Steady state, five more seconds of the same: exactly 200 per second.
    let later = T0 + 10 * SECOND;
    let passed = flood(
        &mut n,
        |i| spoofed4(100_000 + i),
        vip4(),
        later,
        50_000,
        100_000,
        DropReason::RateLimitIcmp,
    );
    assert_eq!(passed, 200 + 999);
}

/// `icmp_pps` is per node: each of three workers allows a third of it
/// (sources are spread over workers by address, so a random-source flood
/// meets every worker's share and the node passes about the configured
/// rate). 200 / 3 = 66 per worker, 198 for the node per second.
#[test]
fn service_rate_is_split_among_workers() {
    let limits = Limits {
        icmp_pps: 200,
        ..Limits::default()
    };
    let mut workers: Vec<Node> = (0..3).map(|_| node(limits, 3, 4096)).collect();
    let mut passed = [0u64; 3];
    // 20 kpps for one second (after the first burst), spread by source.
    for i in 0..20_000u32 {
        let w = (i % 3) as usize;
        let now = T0 + u64::from(i) * 50_000;
        if let Verdict::Pass(_) = workers[w].run(now, &echo(spoofed4(i), vip4())) {
            passed[w] += 1;
        }
    }
    // Each worker: a burst of 66, then 66 per second (the 66th token of
    // the second arrives just after its last packet).
    assert_eq!(passed, [66 + 65, 66 + 65, 66 + 65]);
    assert_eq!(workers[0].st.services[0].icmp.rate(), 66);
}

/// One source pinging fast is held to `src_icmp_pps`, and spends none of
/// the service's allowance on what it is refused.
#[test]
fn per_source_cap() {
    let mut n = node(Limits::default(), 1, 1024);
    let me = client4();
    // 1,000 pings per second for 3 s: a burst of 20, then 20 per second.
    let passed = flood(
        &mut n,
        |_| me,
        vip4(),
        T0,
        SECOND / 1000,
        3000,
        DropReason::RateLimitIcmpSource,
    );
    assert_eq!(passed, 20 + 59);
    // In one instant (no refill): of 1,000 pings the source gets 20, and
    // the 980 refused spend nothing of the service's 200: 180 other
    // sources still pass, the 181st does not.
    let t = T0 + 10 * SECOND;
    assert_eq!(
        flood(&mut n, |_| me, vip4(), t, 0, 1000, DropReason::RateLimitIcmpSource),
        20
    );
    assert_eq!(
        flood(&mut n, spoofed4, vip4(), t, 0, 181, DropReason::RateLimitIcmp),
        180
    );
    // And `src_pps` counts ICMP too, before the ICMP bucket.
    let strict = Limits {
        src_pps: 5,
        ..Limits::default()
    };
    let mut n = node(strict, 1, 1024);
    assert_eq!(flood(&mut n, |_| me, vip4(), T0, 0, 10, DropReason::RateLimitSource), 5);
}

/// Ordinary pings (`ping` sends one a second) pass, the replies to the
/// origin's own pings too, whatever the defaults; and during a flood that
/// exhausts the service, a client that proved its address (verified by
/// SYN authentication, or ACL-allowed) still gets through, when a spoofed
/// one does not.
#[test]
fn legitimate_pings_pass_and_proven_sources_pass_a_flood() {
    let mut n = node(Limits::default(), 1, 1024);
    for s in 0..10 {
        let t = T0 + s * SECOND;
        assert!(
            matches!(n.run(t, &echo(client4(), vip4())), Verdict::Pass(_)),
            "ping {s}"
        );
        let reply = Pkt::icmp(client4(), vip4(), ECHO_REPLY, 0).build();
        assert!(matches!(n.run(t, &reply), Verdict::Pass(_)), "reply {s}");
    }
    // A flood empties the service bucket.
    let t = T0 + 20 * SECOND;
    flood(&mut n, spoofed4, vip4(), t, 0, 1000, DropReason::RateLimitIcmp);
    let stranger = ip("198.51.100.99");
    assert_eq!(
        n.run(t, &echo(stranger, vip4())),
        Verdict::Drop(DropReason::RateLimitIcmp)
    );
    // The client verified itself by answering a SYN challenge earlier. In
    // the same instant (the service bucket still empty) its pings pass.
    n.st.verified.verify(client4(), t, 300 * SECOND);
    for i in 0..5 {
        let ping = echo(client4(), vip4());
        assert!(matches!(n.run(t, &ping), Verdict::Pass(_)), "verified ping {i}");
    }
    assert_eq!(
        n.run(t, &echo(stranger, vip4())),
        Verdict::Drop(DropReason::RateLimitIcmp)
    );
    // Its own limit still holds: a proven source cannot flood either (15
    // of its 20 tokens were left).
    assert_eq!(
        flood(
            &mut n,
            |_| client4(),
            vip4(),
            t,
            0,
            100,
            DropReason::RateLimitIcmpSource
        ),
        15
    );
    // ACL-allowed sources are proven too (and skip per-source limits).
    n.pol.acl.insert("192.0.2.0/24".parse().expect("net"), AclAction::Allow);
    assert!(matches!(n.run(t, &echo(ip("192.0.2.1"), vip4())), Verdict::Pass(_)));
    // Types outside the allowlist are still `icmp_type`, before any rate.
    let redirect = Pkt::icmp(stranger, vip4(), 5, 0).build();
    assert_eq!(n.run(t, &redirect), Verdict::Drop(DropReason::IcmpType));
}

/// The same for ICMPv6 echo, with neighbour discovery untouched: the
/// node's own address is still resolved in the middle of the flood.
#[test]
fn icmpv6_echo_flood_is_capped_and_neighbour_discovery_is_not() {
    let mut n = node(Limits::default(), 1, 4096);
    // 10 kpps for one second from random IPv6 sources.
    let passed = flood(&mut n, spoofed6, vip6(), T0, 100_000, 10_000, DropReason::RateLimitIcmp);
    assert_eq!(passed, 200 + 199);
    // Echo replies share the bucket (every ICMPv6 type that reaches the
    // service does); the IPv4 service's bucket is its own.
    let t = T0 + SECOND - 1;
    let reply = Pkt::icmp(client6(), vip6(), ECHO6_REPLY, 0).build();
    assert_eq!(n.run(t, &reply), Verdict::Drop(DropReason::RateLimitIcmp));
    assert!(matches!(n.run(t, &echo(client4(), vip4())), Verdict::Pass(_)));
    // Neighbour solicitations for the node's address, from any number of
    // sources: every one answered.
    for i in 0..1000u32 {
        let ns = neighbor_solicit(spoofed6_addr(50_000 + i), moat6(), None);
        assert!(matches!(n.run(t, &ns), Verdict::Reply { .. }), "solicitation {i}");
    }
    // Per source, as for IPv4.
    let passed = flood(
        &mut n,
        |_| client6(),
        vip6(),
        T0 + 5 * SECOND,
        SECOND / 1000,
        1000,
        DropReason::RateLimitIcmpSource,
    );
    assert_eq!(passed, 20 + 19);
}

/// 0 = unlimited, like every other limit.
#[test]
fn zero_is_unlimited() {
    let off = Limits {
        icmp_pps: 0,
        src_icmp_pps: 0,
        ..Limits::default()
    };
    let mut n = node(off, 1, 16);
    assert_eq!(
        flood(&mut n, spoofed4, vip4(), T0, 0, 5000, DropReason::RateLimitIcmp),
        5000
    );
    assert_eq!(
        flood(&mut n, |_| client4(), vip4(), T0, 0, 5000, DropReason::RateLimitIcmp),
        5000
    );
    assert!(n.st.sources.is_empty(), "no per-source limit: no table entry");
}

/// A policy swap changes the ICMP rate live and keeps the bucket's level.
#[test]
fn policy_swap_changes_the_rate() {
    let mut n = node(Limits::default(), 1, 4096);
    assert_eq!(
        flood(&mut n, spoofed4, vip4(), T0, 0, 300, DropReason::RateLimitIcmp),
        200
    );
    let mut pol = policy_with(
        KEY,
        vec![
            pingable(
                "web",
                vip4(),
                Limits {
                    icmp_pps: 10,
                    ..Limits::default()
                },
            ),
            pingable("web6", vip6(), Limits::default()),
        ],
    );
    n.st.apply_policy(&pol, 1);
    n.pol = pol.clone();
    // Empty at the swap: one token per 100 ms at the new rate.
    let t = T0 + SECOND / 10;
    assert_eq!(
        flood(
            &mut n,
            |i| spoofed4(1000 + i),
            vip4(),
            t,
            0,
            5,
            DropReason::RateLimitIcmp
        ),
        1
    );
    pol.services[0].limits.icmp_pps = 0;
    n.st.apply_policy(&pol, 1);
    n.pol = pol;
    assert_eq!(
        flood(
            &mut n,
            |i| spoofed4(2000 + i),
            vip4(),
            t,
            0,
            500,
            DropReason::RateLimitIcmp
        ),
        500
    );
}

/// With fragments allowed, the non-first fragments of ICMP messages (large
/// pings) are held to the same rates: they carry no ICMP header, but their
/// protocol is known. Other protocols' fragments are unaffected.
#[test]
fn later_fragments_of_icmp_share_the_rates() {
    use classifier::policy::FragPolicy;
    let mut n = node(Limits::default(), 1, 4096);
    n.pol.sanity.fragments = FragPolicy::Allow;
    let frag = |src: IpAddr, dst: IpAddr| {
        let ty = if dst.is_ipv6() { ECHO6_REQUEST } else { ECHO_REQUEST };
        Pkt::icmp(src, dst, ty, 0).frag(Frag::Later).build()
    };
    let passed = |n: &mut Node, src: &dyn Fn(u32) -> IpAddr, dst: IpAddr, count: u32, reason: DropReason| {
        (0..count)
            .filter(|&i| match n.run(T0, &frag(src(i), dst)) {
                Verdict::Pass(_) => true,
                v => {
                    assert_eq!(v, Verdict::Drop(reason), "fragment {i}");
                    false
                }
            })
            .count()
    };
    assert_eq!(passed(&mut n, &spoofed4, vip4(), 1000, DropReason::RateLimitIcmp), 200);
    assert_eq!(passed(&mut n, &spoofed6, vip6(), 1000, DropReason::RateLimitIcmp), 200);
    let me = |_| client6();
    let mut n = node(Limits::default(), 1, 4096);
    n.pol.sanity.fragments = FragPolicy::Allow;
    assert_eq!(passed(&mut n, &me, vip6(), 100, DropReason::RateLimitIcmpSource), 20);
    // A UDP datagram's later fragments to the same VIP still pass.
    let udp = Pkt::udp(client4(), 1, vip4(), 9, &[7; 64]).frag(Frag::Later).build();
    for _ in 0..500 {
        assert!(matches!(n.run(T0, &udp), Verdict::Pass(_)));
    }
}
