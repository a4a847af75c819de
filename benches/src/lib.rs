//! Shared fixtures for the criterion benchmarks in `benches/benches/`: a
//! policy like the example node's and frames from the built-in generator,
//! so benchmarks measure the same packets the tests and `moat demo` use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::cookie::CookieSecrets;
use classifier::policy::{Origin, PayloadRule, Policy, Service, SynAuth};
use dataplane::gen::{GenConfig, Generator, Profile};

/// The cookie secret shared by the bench policy and the generator.
pub fn secrets() -> CookieSecrets {
    CookieSecrets::new(*b"moat-bench-key!!")
}

/// One web service on 203.0.113.10 and 2001:db8::10 (tcp/80 with
/// `challenge-ack`, udp/7777 with a `GAME` payload rule, ICMP).
pub fn policy() -> Policy {
    let mut p = Policy::new(secrets());
    let origin = p.add_origin(Origin {
        name: "web".into(),
        tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
        tunnel_dst: Ipv4Addr::new(192, 168, 77, 2),
        key: None,
        mtu: 1476,
    });
    for (name, vip) in [
        ("web", IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10))),
        ("web6", IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))),
    ] {
        let mut s = Service::new(name, vip, origin);
        s.tcp_ports.insert(80);
        s.udp_ports.insert(7777);
        s.icmp = true;
        s.syn_auth = SynAuth::ChallengeAck;
        s.payload_rules
            .push(PayloadRule::new(7777, 0, b"GAME", &[0xff; 4]).expect("valid rule"));
        p.add_service(s).expect("unique VIP");
    }
    p
}

/// The node of `moat bench` (mgmt `cmd/bench.rs`): its web service alone
/// (203.0.113.10, tcp/80, udp/7777 with a `GAME` payload rule, ICMP) with
/// SYN authentication `auth`, toward the `web` origin (MTU 1476).
pub fn policy_one(auth: SynAuth) -> Policy {
    let mut p = Policy::new(secrets());
    let origin = p.add_origin(Origin {
        name: "web".into(),
        tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
        tunnel_dst: Ipv4Addr::new(192, 168, 77, 2),
        key: Some(42),
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)), origin);
    s.tcp_ports.insert(80);
    s.udp_ports.insert(7777);
    s.icmp = true;
    s.syn_auth = auth;
    s.payload_rules
        .push(PayloadRule::new(7777, 0, b"GAME", &[0xff; 4]).expect("valid rule"));
    p.add_service(s).expect("unique VIP");
    p
}

/// `count` frames of one profile (IPv4 only), with timestamps.
pub fn frames(profile: Profile, count: u64, seed: u64) -> Vec<(u64, Vec<u8>)> {
    Generator::new(GenConfig {
        mix: vec![(profile, 1)],
        count,
        seed,
        ipv6_share: 0.0,
        secrets: Some(secrets()),
        ..GenConfig::default()
    })
    .map(|p| (p.ts, p.frame))
    .collect()
}
