//! Rate limits through `classify`, with exact token counts over simulated
//! time (`now` is the only clock): per source (packets, SYNs, new flows),
//! per service (packets, challenges) and the global cap. Buckets hold one
//! second's worth and refill continuously: `rate` tokens per second, one
//! every `1 / rate` s.

mod common;

use core::net::{IpAddr, Ipv4Addr};

use classifier::acl::AclAction;
use classifier::policy::{Limits, Service, SynAuth};
use classifier::state::StateConfig;
use classifier::time::{Nanos, SECOND};
use classifier::verdict::{DropReason, Verdict};
use common::net::*;

fn game4() -> IpAddr {
    ip("203.0.113.20")
}

/// UDP 27015 and TCP 25565 without SYN auth, with `limits`.
fn game(limits: Limits) -> Service {
    let mut s = Service::new("game", game4(), 0);
    s.udp_ports.insert(27015);
    s.tcp_ports.insert(25565);
    s.icmp = true;
    s.syn_auth = SynAuth::Off;
    s.limits = limits;
    s
}

fn game_node(limits: Limits) -> Node {
    Node::new(policy_with(KEY, vec![game(limits)]))
}

fn src(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n)) // 198.51.100.n
}

fn udp_from(s: IpAddr) -> Vec<u8> {
    Pkt::udp(s, 50000, game4(), 27015, b"state update").build()
}

fn passed(v: Verdict) -> bool {
    matches!(v, Verdict::Pass(_))
}

/// How many of `n` copies of `frame` sent at `now` pass; the others must
/// all be dropped for `reason`.
fn burst(node: &mut Node, now: Nanos, frame: &[u8], n: usize, reason: DropReason) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        match node.run(now, frame) {
            Verdict::Pass(_) | Verdict::Reply { .. } => ok += 1,
            Verdict::Drop(r) => assert_eq!(r, reason),
            v @ Verdict::ResetBoth { .. } => panic!("no rule resets here: {v:?}"),
            v @ Verdict::Answer(_) => panic!("classify builds its answers: {v:?}"),
        }
    }
    ok
}

#[test]
fn rate_limit_source_exact_counts() {
    let mut n = game_node(Limits {
        src_pps: 10,
        ..Limits::default()
    });
    let a = udp_from(src(1));
    // Full bucket: 10 back to back, then nothing.
    assert_eq!(burst(&mut n, T0, &a, 15, DropReason::RateLimitSource), 10);
    // Another source has its own bucket.
    assert_eq!(
        burst(&mut n, T0, &udp_from(src(2)), 15, DropReason::RateLimitSource),
        10
    );
    // One token per 100 ms: 99 ms is not enough, 100 ms is exactly one.
    assert_eq!(burst(&mut n, T0 + 99 * MS, &a, 3, DropReason::RateLimitSource), 0);
    assert_eq!(burst(&mut n, T0 + 100 * MS, &a, 3, DropReason::RateLimitSource), 1);
    // After a second of silence the source may send a full burst again (and
    // no more: the bucket holds one second's worth).
    assert_eq!(burst(&mut n, T0 + 5 * SECOND, &a, 30, DropReason::RateLimitSource), 10);
    // Every kind of packet counts: TCP and ICMP from the same source.
    let b = src(3);
    let tcp = Pkt::syn(b, 4000, game4(), 25565, 1).build();
    let icmp = Pkt::icmp(b, game4(), 8, 0).build();
    assert_eq!(burst(&mut n, T0, &tcp, 4, DropReason::RateLimitSource), 4);
    assert_eq!(burst(&mut n, T0, &icmp, 4, DropReason::RateLimitSource), 4);
    assert_eq!(burst(&mut n, T0, &udp_from(b), 4, DropReason::RateLimitSource), 2);
}

#[test]
fn rate_limit_source_over_five_seconds() {
    let mut n = game_node(Limits {
        src_pps: 10,
        ..Limits::default()
    });
    let a = udp_from(src(1));
    // One packet every millisecond for 5 s: the 10 of the full bucket, then
    // one per 100 ms at T0 + 100 ms, ..., T0 + 4.9 s: 49 more.
    let ok = (0..5000).filter(|ms| passed(n.run(T0 + ms * MS, &a))).count();
    assert_eq!(ok, 59);
}

#[test]
fn rate_limit_syn() {
    let limits = Limits {
        src_syn_pps: 3,
        ..Limits::default()
    };
    // Without SYN auth the SYNs pass; the fourth in the same second does not.
    let mut n = game_node(limits);
    for port in 0..3 {
        let f = Pkt::syn(src(1), 4000 + port, game4(), 25565, 1).build();
        assert!(passed(n.run(T0, &f)));
    }
    let f = Pkt::syn(src(1), 4010, game4(), 25565, 1).build();
    assert_eq!(n.run(T0, &f), Verdict::Drop(DropReason::RateLimitSyn));
    // Other segments of the source are not SYNs.
    let ack = Pkt::tcp(src(1), 4000, game4(), 25565, fl::ACK).build();
    assert!(passed(n.run(T0, &ack)));
    // 3/s: one token per 333.33 ms; 333 333 333 ns × 3 is one nano-token
    // short of a token, 334 ms is enough.
    assert_eq!(n.run(T0 + SECOND / 3, &f), Verdict::Drop(DropReason::RateLimitSyn));
    assert_eq!(
        n.run(T0 + 334 * MS, &f),
        Verdict::Pass(classifier::verdict::Pass {
            service: 0,
            origin: 0,
            syn: true
        })
    );
    // With challenge-ack the limit comes before the challenge: it bounds the
    // SYN-ACKs one source can draw.
    let mut s = web("web", vip4(), SynAuth::ChallengeAck);
    s.limits = limits;
    let mut n = Node::new(policy_with(KEY, vec![s]));
    let syn = Pkt::syn(src(1), 4000, vip4(), 443, 1).build();
    assert_eq!(burst(&mut n, T0, &syn, 10, DropReason::RateLimitSyn), 3);
    assert_eq!(burst(&mut n, T0 + SECOND, &syn, 10, DropReason::RateLimitSyn), 3);
}

#[test]
fn rate_limit_new_flow() {
    let mut n = game_node(Limits {
        src_new_conns_ps: 2,
        ..Limits::default()
    });
    let syn = |port: u16| Pkt::syn(src(1), port, game4(), 25565, 1).build();
    assert!(passed(n.run(T0, &syn(1))));
    assert!(passed(n.run(T0, &syn(2))));
    assert_eq!(n.run(T0, &syn(3)), Verdict::Drop(DropReason::RateLimitNewFlow));
    assert_eq!(n.st.flows.len(), 2);
    // A retransmitted SYN of an admitted flow is not a new flow.
    for _ in 0..5 {
        assert!(passed(n.run(T0, &syn(1))));
    }
    // One new flow per 500 ms.
    assert!(passed(n.run(T0 + 500 * MS, &syn(3))));
    assert_eq!(
        n.run(T0 + 500 * MS, &syn(4)),
        Verdict::Drop(DropReason::RateLimitNewFlow)
    );
    assert_eq!(n.st.flows.len(), 3);
    // The SYN limit acts first when both are exhausted.
    let mut n = game_node(Limits {
        src_syn_pps: 1,
        src_new_conns_ps: 1,
        ..Limits::default()
    });
    assert!(passed(n.run(T0, &syn(1))));
    assert_eq!(n.run(T0, &syn(2)), Verdict::Drop(DropReason::RateLimitSyn));
}

#[test]
fn rate_limit_service_split_among_workers() {
    let limits = Limits {
        service_pps: 5,
        ..Limits::default()
    };
    // One worker: 5 packets per second from anyone, then none.
    let mut n = game_node(limits);
    let ok = (0..8).filter(|i| passed(n.run(T0, &udp_from(src(*i))))).count();
    assert_eq!(ok, 5);
    assert_eq!(
        n.run(T0, &udp_from(src(50))),
        Verdict::Drop(DropReason::RateLimitService)
    );
    assert_eq!(
        burst(
            &mut n,
            T0 + 200 * MS,
            &udp_from(src(51)),
            3,
            DropReason::RateLimitService
        ),
        1
    );
    // ACL-allowed sources skip per-source limits, not the service's.
    n.pol.acl.insert("192.0.2.0/24".parse().expect("net"), AclAction::Allow);
    let f = Pkt::udp(ip("192.0.2.1"), 1, game4(), 27015, b"x").build();
    assert_eq!(n.run(T0 + 200 * MS, &f), Verdict::Drop(DropReason::RateLimitService));
    // Two workers: 5 / 2 = 2 each.
    let cfg = StateConfig {
        flows: 64,
        verified: 64,
        sources: 64,
        reassembly: Default::default(),
        bans: 64,
    };
    let mut n = Node::with_config(policy_with(KEY, vec![game(limits)]), cfg, 2);
    let ok = (0..8).filter(|i| passed(n.run(T0, &udp_from(src(*i))))).count();
    assert_eq!(ok, 2);
    // Challenges are replies, not service traffic: they take no token.
    let mut s = web("web", vip4(), SynAuth::ChallengeAck);
    s.limits = limits;
    let mut n = Node::new(policy_with(KEY, vec![s]));
    for i in 0..20 {
        let f = Pkt::syn(src(i), 4000, vip4(), 443, 1).build();
        assert!(matches!(n.run(T0, &f), Verdict::Reply { .. }));
    }
}

#[test]
fn rate_limit_challenge() {
    let mut s = web("web", vip4(), SynAuth::ChallengeAck);
    s.limits.challenge_pps = 3;
    let mut n = Node::new(policy_with(KEY, vec![s]));
    // A spoofed flood from many sources draws 3 SYN-ACKs per second.
    let syn = |i: u32| Pkt::syn(src(i), 4000, vip4(), 443, 1).build();
    let replies = |n: &mut Node, now: Nanos, from: u32| {
        (from..from + 10)
            .filter(|i| match n.run(now, &syn(*i)) {
                Verdict::Reply { .. } => true,
                v => {
                    assert_eq!(v, Verdict::Drop(DropReason::RateLimitChallenge));
                    false
                }
            })
            .count()
    };
    assert_eq!(replies(&mut n, T0, 0), 3);
    assert_eq!(replies(&mut n, T0 + 334 * MS, 10), 1);
    assert_eq!(replies(&mut n, T0 + 10 * SECOND, 20), 3);
    // A verified source needs no challenge: it passes with the bucket empty.
    n.st.verified.verify(src(200), T0, 300 * SECOND);
    assert!(passed(n.run(T0 + 10 * SECOND, &syn(200))));
}

#[test]
fn rate_limit_global() {
    let mut p = policy_with(KEY, vec![game(Limits::default())]);
    p.global_pps = 4;
    let mut n = Node::new(p);
    // Every IP packet takes a token, even one dropped later for another
    // reason.
    let nowhere = Pkt::udp(src(1), 1, ip("192.0.2.1"), 1, b"x").build();
    assert_eq!(n.run(T0, &nowhere), Verdict::Drop(DropReason::NoService));
    assert_eq!(burst(&mut n, T0, &udp_from(src(2)), 10, DropReason::RateLimitGlobal), 3);
    // It comes first of all IP checks.
    assert_eq!(n.run(T0, &nowhere), Verdict::Drop(DropReason::RateLimitGlobal));
    // 250 ms per token.
    assert_eq!(
        burst(&mut n, T0 + 250 * MS, &udp_from(src(3)), 3, DropReason::RateLimitGlobal),
        1
    );
    assert_eq!(
        burst(
            &mut n,
            T0 + 2 * SECOND,
            &udp_from(src(4)),
            9,
            DropReason::RateLimitGlobal
        ),
        4
    );
    // ARP for the node is answered whatever the cap.
    let arp = arp_request(Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2), 1, None);
    assert!(matches!(n.run(T0 + 2 * SECOND, &arp), Verdict::Reply { .. }));
}

#[test]
fn unlimited_service_leaves_source_buckets_alone() {
    let mut web_s = web("web", vip4(), SynAuth::Off);
    web_s.limits.src_pps = 1;
    let mut p = policy_with(KEY, vec![game(Limits::default())]);
    p.add_service(web_s).expect("web");
    let mut n = Node::new(p);
    // The game service has no limit: source 1 may send freely there ...
    assert_eq!(
        burst(&mut n, T0, &udp_from(src(1)), 20, DropReason::RateLimitSource),
        20
    );
    // ... (an unlimited service does not touch the source's buckets) and
    // gets its one packet per second at the web service.
    let syn = Pkt::syn(src(1), 4000, vip4(), 443, 1).build();
    assert_eq!(burst(&mut n, T0, &syn, 3, DropReason::RateLimitSource), 1);
}

#[test]
fn source_buckets_are_per_service() {
    let limits = Limits {
        src_pps: 5,
        ..Limits::default()
    };
    let mut other = game(limits);
    other.name = "game2".into();
    other.vip = ip("203.0.113.21");
    let mut n = Node::new(policy_with(KEY, vec![game(limits), other]));
    let to_first = udp_from(src(1));
    let to_second = Pkt::udp(src(1), 50000, ip("203.0.113.21"), 27015, b"state update").build();
    // Spending the allowance toward one service leaves the other's intact.
    assert_eq!(burst(&mut n, T0, &to_first, 8, DropReason::RateLimitSource), 5);
    assert_eq!(burst(&mut n, T0, &to_second, 8, DropReason::RateLimitSource), 5);
}

/// Segments that die anyway (an ACK flood from spoofed sources) are never
/// charged to a per-source bucket: they cost no table insert and cannot
/// evict the buckets of real clients. A client's own bucket survives a
/// 50,000-source ACK flood untouched.
#[test]
fn dropped_segments_take_no_source_bucket() {
    let mut n = game_node(Limits {
        src_pps: 1000,
        ..Limits::default()
    });
    // The client spends 5 tokens of its bucket (state worth keeping).
    let client = udp_from(src(1));
    assert_eq!(burst(&mut n, T0, &client, 5, DropReason::RateLimitSource), 5);
    assert_eq!(n.st.sources.len(), 1);
    for i in 0..50_000u32 {
        let spoofed = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
        let ack = Pkt::tcp(spoofed, 40000, game4(), 25565, classifier::synauth::flags::ACK).build();
        assert_eq!(n.run(T0, &ack), Verdict::Drop(DropReason::TcpNoFlow));
    }
    assert_eq!(n.st.sources.len(), 1, "no spoofed source took a bucket");
    // The client's bucket still holds its 995 tokens.
    assert_eq!(burst(&mut n, T0, &client, 1000, DropReason::RateLimitSource), 995);
}
