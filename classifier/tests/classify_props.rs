//! Properties of `classify` as a whole:
//!
//! - It never panics, on arbitrary bytes or on sequences of valid packets
//!   (built by etherparse) and their mutations, under a policy with every
//!   feature configured (ACL, fingerprint rules, signatures, payload rules,
//!   limits, both SYN authentication modes, fragments allowed or not).
//! - A reply always fits the documented 128 bytes, is at least an Ethernet
//!   minimum frame, parses, and a TCP reply has correct checksums
//!   (etherparse recomputes them).
//! - A verdict depends only on (state, policy, now, frame): a scenario run
//!   twice on fresh states and freshly built policies (whose hash tables get
//!   new random keys) gives the same verdicts and the same reply bytes, even
//!   with tables small enough to evict.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::acl::AclAction;
use classifier::fingerprint::{TcpFingerprint, TcpRule, UdpRule};
use classifier::parse::{parse, L3};
use classifier::policy::{FragPolicy, PayloadRule, Service, SynAuth};
use classifier::state::StateConfig;
use classifier::time::{Nanos, SECOND};
use classifier::{Policy, Verdict};
use common::net::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn game4() -> IpAddr {
    ip("203.0.113.20")
}
fn cookie4() -> IpAddr {
    ip("203.0.113.30")
}

/// Every feature on: four services in all SYN auth modes, ACL, static
/// rules, signatures, payload rules, per-source and per-service limits.
fn rich_policy(frags: FragPolicy) -> Policy {
    let mut web4 = web("web", vip4(), SynAuth::ChallengeAck);
    web4.limits.src_syn_pps = 20;
    web4.limits.challenge_pps = 50;
    let mut web6 = web("web6", vip6(), SynAuth::ChallengeAck);
    web6.limits.src_pps = 30;
    let mut cookie = web("cookie", cookie4(), SynAuth::CookieReset);
    cookie.limits.src_new_conns_ps = 5;
    cookie.limits.service_pps = 200;
    let mut game = Service::new("game", game4(), 0);
    game.tcp_ports.insert(25565);
    game.udp_ports.insert_range(27015, 27020);
    game.icmp = true;
    game.syn_auth = SynAuth::Off;
    game.allow_src_ports.insert(53);
    game.limits.src_pps = 40;
    game.payload_rules = vec![
        PayloadRule::new(27015, 0, &[0xff; 4], &[0xff; 4]).expect("rule"),
        PayloadRule::new(27016, 3, &[0x10, 0x20], &[0xf0, 0xff]).expect("rule"),
    ];
    let mut p = policy_with(KEY, vec![web4, web6, cookie, game]);
    p.acl.insert("198.51.100.0/28".parse().expect("net"), AclAction::Deny);
    p.acl.insert("192.0.2.0/24".parse().expect("net"), AclAction::Allow);
    p.acl.insert("2001:db8:bad::/48".parse().expect("net"), AclAction::Deny);
    p.tcp_deny.push("4:128:*:*:*,*:*:*".parse::<TcpRule>().expect("rule"));
    p.udp_deny.push("udp:*:13:*:*".parse::<UdpRule>().expect("rule"));
    let sig: TcpFingerprint = "4:64:0:1460:65535,7:mss,sok,ts,nop,ws:df,id+".parse().expect("fp");
    p.signatures.tcp.insert(sig);
    p.sanity.fragments = frags;
    p.global_pps = 100_000;
    p
}

fn small_state() -> StateConfig {
    StateConfig {
        flows: 16,
        verified: 8,
        sources: 16,
        reassembly: Default::default(),
        bans: 64,
    }
}

/// The reply invariants, for every `Reply` verdict.
fn check_reply(node: &Node, v: Verdict) {
    let Verdict::Reply { len } = v else { return };
    assert!((60..=REPLY_BUF).contains(&len), "reply length {len}");
    let r = node.reply();
    let p = parse(r).expect("a reply parses");
    match p.l3 {
        L3::Arp => assert_eq!(p.src_ip(), moat4()),
        L3::Ipv4 | L3::Ipv6 => {
            let seen = TcpSeen::from_reply(r);
            assert!(seen.flags & fl::RST != 0 || seen.flags == fl::SYN | fl::ACK, "{seen:?}");
        }
    }
}

// ---------------------------------------------------------------- strategies

fn addr() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    let v4_src = prop_oneof![
        Just(client4()),
        Just(ip("198.51.100.3")), // denied
        Just(ip("192.0.2.9")),    // allowed
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
    ];
    let v4_dst = prop::sample::select(vec![vip4(), game4(), cookie4(), moat4(), ip("192.0.2.1")]);
    let v6_src = prop_oneof![
        Just(client6()),
        Just(ip("2001:db8:bad::1")),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ];
    let v6_dst = prop::sample::select(vec![vip6(), ip("2001:db8::99")]);
    prop_oneof![(v4_src, v4_dst), (v6_src, v6_dst)]
}

/// A valid frame: TCP (any flags, Linux-like or no options), UDP, ICMP,
/// another protocol, fragments, ARP; optionally VLAN tagged.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    let ip_pkt = (
        addr(),
        0u8..5,
        (
            any::<u16>(),
            prop::sample::select(vec![80u16, 443, 25565, 27015, 27016, 22]),
        ),
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<bool>()),
        (
            prop::option::of(0u16..4096),
            prop::sample::select(vec![64u8, 128, 1, 255]),
        ),
        prop::sample::select(vec![Frag::None, Frag::None, Frag::None, Frag::First, Frag::Later]),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(
            |((src, dst), kind, (sport, dport), (flags, seq, ack, opts), (vlan, ttl), frag, payload)| {
                let mut p = match kind {
                    0 => Pkt::syn(src, sport, dst, dport, seq),
                    1 => Pkt::tcp(src, sport, dst, dport, flags).seq(seq).ack(ack),
                    2 => Pkt::udp(src, sport % 2 * 53 + sport / 2 % 2 * 27016, dst, dport, &payload),
                    3 => Pkt::icmp(src, dst, flags, 0),
                    _ => Pkt::other(src, dst, 47, &payload),
                };
                if kind == 0 && !opts {
                    p = p.options(vec![]);
                }
                if kind < 2 {
                    p = p.payload(&payload);
                }
                p.vlan = vlan;
                p.ttl = ttl;
                p.frag = frag;
                p.build()
            },
        );
    let arp = (any::<[u8; 4]>(), prop::bool::ANY, 0u16..4, prop::option::of(0u16..4096)).prop_map(
        |(sender, ours, op, vlan)| {
            let target = if ours {
                Ipv4Addr::new(203, 0, 113, 2)
            } else {
                Ipv4Addr::new(203, 0, 113, 3)
            };
            arp_request(Ipv4Addr::from(sender), target, op, vlan)
        },
    );
    prop_oneof![9 => ip_pkt, 1 => arp]
}

#[derive(Debug, Clone)]
enum Mutation {
    None,
    Flip(Vec<(usize, u8)>),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::None),
        4 => prop::collection::vec((any::<usize>(), 1u8..=255), 1..6).prop_map(Mutation::Flip),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
    ]
}

fn mutate(mut f: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::None => {}
        Mutation::Flip(flips) => {
            for &(at, x) in flips {
                let n = f.len();
                if n > 0 {
                    f[at % n] ^= x;
                }
            }
        }
        Mutation::Truncate(at) => {
            let n = f.len() + 1;
            f.truncate(at % n);
        }
        Mutation::Extend(more) => f.extend_from_slice(more),
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn never_panics_on_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..256), allow in any::<bool>()) {
        let frags = if allow { FragPolicy::Allow } else { FragPolicy::Drop };
        let mut node = Node::with_config(rich_policy(frags), small_state(), 1);
        let v = node.run(T0, &b);
        check_reply(&node, v);
    }

    #[test]
    fn never_panics_on_mutated_valid_sequences(
        steps in prop::collection::vec((valid_frame(), mutation(), 0u64..2_000_000_000), 1..24),
        allow in any::<bool>(),
    ) {
        let frags = if allow { FragPolicy::Allow } else { FragPolicy::Drop };
        let mut node = Node::with_config(rich_policy(frags), small_state(), 1);
        let mut now = T0;
        for (frame, m, dt) in &steps {
            now += dt;
            let f = mutate(frame.clone(), m);
            let v = node.run(now, &f);
            check_reply(&node, v);
            if let Verdict::Pass(p) = v {
                prop_assert!(usize::from(p.origin) < node.pol.origins.len());
                prop_assert!(usize::from(p.service) < node.pol.services.len());
            }
        }
    }
}

proptest! {
    // Each case is two runs of a 400-packet scenario: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn same_inputs_same_verdicts(seed in any::<u64>()) {
        let a = scenario(seed, 400);
        let b = scenario(seed, 400);
        prop_assert_eq!(a, b);
    }
}

// ---------------------------------------------------------------- determinism

/// One verdict of a scenario and the reply bytes, if any.
type Outcome = (Verdict, Vec<u8>);

/// A mixed scenario from `seed`: clients that answer challenges as real
/// stacks (RST for challenge-ack, ACK for cookie-reset, then the SYN
/// again, data, FIN), spoofed SYN/ACK/UDP floods, ARP, garbage, time moving
/// in random steps, on a fresh node with tiny tables. Later packets depend
/// on earlier replies, so a divergence anywhere shows.
fn scenario(seed: u64, steps: usize) -> Vec<Outcome> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut node = Node::with_config(rich_policy(FragPolicy::Allow), small_state(), 1);
    let mut now = T0 + rng.gen_range(0..64 * SECOND);
    let mut out = Vec::with_capacity(steps);
    // The last challenge received by a client, to answer next.
    let mut pending: Option<(Pkt, TcpSeen)> = None;
    // The second client is in the ACL's deny range.
    let clients = [client4(), ip("198.51.100.3"), ip("198.51.100.20"), client6()];
    for _ in 0..steps {
        now += rng.gen_range(0..50 * MS as Nanos);
        let frame = match (pending.take(), rng.gen_range(0..10)) {
            (Some((syn, r)), 0..=6) => answer(&syn, &r),
            (_, k) => {
                let c = clients[rng.gen_range(0..clients.len())];
                let dst = match (c.is_ipv6(), rng.gen_range(0..3)) {
                    (true, _) => vip6(),
                    (false, 0) => vip4(),
                    (false, 1) => cookie4(),
                    (false, _) => game4(),
                };
                let dport = if dst == game4() { 25565 } else { 443 };
                let spoofed = IpAddr::V4(Ipv4Addr::from(rng.gen::<u32>()));
                match k {
                    0..=3 => Pkt::syn(c, rng.gen_range(32768..33000), dst, dport, rng.gen()),
                    4 => Pkt::tcp(c, rng.gen_range(32768..33000), dst, dport, fl::PSH | fl::ACK).payload(b"data"),
                    5 => Pkt::tcp(c, rng.gen_range(32768..33000), dst, dport, fl::FIN | fl::ACK),
                    6 => {
                        let to = if rng.gen() { cookie4() } else { vip4() };
                        Pkt::syn(spoofed, rng.gen(), to, 443, rng.gen())
                    }
                    7 => {
                        let to = if rng.gen() { cookie4() } else { vip4() };
                        Pkt::tcp(spoofed, rng.gen(), to, 443, fl::ACK).ack(rng.gen())
                    }
                    _ => Pkt::udp(spoofed, rng.gen_range(0..100), game4(), 27015, &[0xff; 13]),
                }
                .build()
            }
        };
        let frame = if rng.gen_ratio(1, 50) {
            arp_request(Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2), 1, None)
        } else if rng.gen_ratio(1, 50) {
            (0..rng.gen_range(0..100)).map(|_| rng.gen()).collect()
        } else {
            frame
        };
        let v = node.run(now, &frame);
        check_reply(&node, v);
        if let Verdict::Reply { .. } = v {
            if let Ok(p) = parse(&frame) {
                if p.tcp().is_some_and(|t| t.flags & fl::SYN != 0) {
                    pending = Some((from_frame(&frame), TcpSeen::from_reply(node.reply())));
                }
            }
        }
        out.push((v, node.reply().to_vec()));
    }
    out
}

/// The client's answer to a challenge `r` to its SYN: RST with the
/// cookie as sequence number (challenge-ack) or the handshake's ACK
/// (cookie-reset, where the SYN-ACK carries an MSS option).
fn answer(syn: &Pkt, r: &TcpSeen) -> Vec<u8> {
    let k = syn.flow_key();
    let p = if r.mss.is_some() {
        Pkt::tcp(k.src, k.sport, k.dst, k.dport, fl::ACK)
            .seq(r.ack)
            .ack(r.seq.wrapping_add(1))
    } else {
        Pkt::tcp(k.src, k.sport, k.dst, k.dport, fl::RST).seq(r.ack).window(0)
    };
    p.build()
}

/// The `Pkt` of a SYN frame built by `scenario` (addresses and ports are
/// all `answer` needs).
fn from_frame(frame: &[u8]) -> Pkt {
    let p = parse(frame).expect("parsed before");
    let t = p.tcp().expect("tcp");
    Pkt::tcp(p.src_ip(), t.sport, p.dst_ip(), t.dport, t.flags)
}

#[test]
fn scenario_is_deterministic_and_exercises_every_path() {
    use classifier::verdict::DropReason::*;
    let a = scenario(7, 5000);
    assert_eq!(a, scenario(7, 5000));
    // The scenario is worth comparing: it reaches passes, replies of both
    // kinds, answered challenges and the main drop reasons.
    let has = |want: Verdict| a.iter().any(|(v, _)| *v == want);
    assert!(a.iter().any(|(v, _)| matches!(v, Verdict::Pass(p) if p.syn)));
    assert!(a.iter().any(|(v, _)| matches!(v, Verdict::Pass(p) if !p.syn)));
    let replies: Vec<&[u8]> = a
        .iter()
        .filter(|(v, _)| matches!(v, Verdict::Reply { .. }))
        .map(|(_, r)| r.as_slice())
        .collect();
    assert!(replies.iter().any(|r| parse(r).is_ok_and(|p| p.l3 == L3::Arp)));
    let tcp: Vec<TcpSeen> = replies
        .iter()
        .filter(|r| parse(r).is_ok_and(|p| p.l3 != L3::Arp))
        .map(|r| TcpSeen::from_reply(r))
        .collect();
    let syn_ack = fl::SYN | fl::ACK;
    assert!(
        tcp.iter().any(|t| t.flags == syn_ack && t.mss.is_none()),
        "challenge-ack"
    );
    assert!(
        tcp.iter().any(|t| t.flags == syn_ack && t.mss.is_some()),
        "cookie-reset"
    );
    assert!(tcp.iter().any(|t| t.flags == fl::RST), "cookie-reset RST");
    for r in [
        ChallengeAnswered,
        BadCookie,
        TcpNoFlow,
        ReflectionPort,
        FingerprintDeny,
        AclDeny,
    ] {
        assert!(has(Verdict::Drop(r)), "{r:?} never seen");
    }
}
