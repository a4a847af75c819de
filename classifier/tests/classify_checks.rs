//! Every drop reason `classify` returns for a well-formed frame, each with a
//! minimal packet that triggers it (built by etherparse), the packet that
//! just escapes it, and the order of checks where two could apply
//! (`classify.rs` module docs). Rate limits are in `classify_limits.rs`.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::acl::AclAction;
use classifier::fingerprint::{tcp_fingerprint, udp_fingerprint, TcpFingerprint, TcpRule, UdpRule};
use classifier::parse::parse;
use classifier::policy::{FragPolicy, PayloadRule, Service, SynAuth};
use classifier::verdict::{DropReason, Pass, Verdict};
use common::net::*;

const WEB: u16 = 0;
const GAME: u16 = 2;
const GAME6: u16 = 3;

fn game4() -> IpAddr {
    ip("203.0.113.20")
}
fn game6() -> IpAddr {
    ip("2001:db8:10::20")
}

/// A game service: TCP 25565, UDP 27015-27020, ICMP, no SYN auth.
fn game(name: &str, vip: IpAddr) -> Service {
    let mut s = Service::new(name, vip, 0);
    s.tcp_ports.insert(25565);
    s.udp_ports.insert_range(27015, 27020);
    s.icmp = true;
    s.syn_auth = SynAuth::Off;
    s
}

fn services() -> Vec<Service> {
    vec![
        web("web", vip4(), SynAuth::ChallengeAck),
        web("web6", vip6(), SynAuth::ChallengeAck),
        game("game", game4()),
        game("game6", game6()),
    ]
}

fn node() -> Node {
    Node::new(policy_with(KEY, services()))
}

/// A node whose policy `f` adjusts before the state is built.
fn node_with(f: impl FnOnce(&mut classifier::Policy)) -> Node {
    let mut p = policy_with(KEY, services());
    f(&mut p);
    Node::new(p)
}

/// A node whose services `f` adjusts before they are added (so that
/// `add_service` sorts payload rules as config loading would).
fn node_services(f: impl FnOnce(&mut Vec<Service>)) -> Node {
    let mut v = services();
    f(&mut v);
    Node::new(policy_with(KEY, v))
}

fn pass(service: u16) -> Verdict {
    Verdict::Pass(Pass {
        service,
        origin: 0,
        syn: false,
    })
}

fn pass_syn(service: u16) -> Verdict {
    Verdict::Pass(Pass {
        service,
        origin: 0,
        syn: true,
    })
}

fn drop(r: DropReason) -> Verdict {
    Verdict::Drop(r)
}

fn udp4(payload: &[u8]) -> Pkt {
    Pkt::udp(client4(), 50000, game4(), 27015, payload)
}

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => panic!("v4 only"),
    }
}

// ------------------------------------------------------------------- ARP

#[test]
fn arp_request_for_own_address_is_answered() {
    for vlan in [None, Some(100)] {
        let mut n = node();
        let req = arp_request(v4(client4()), v4(moat4()), 1, vlan);
        let Verdict::Reply { len } = n.run(T0, &req) else {
            panic!("no ARP reply")
        };
        assert_eq!(len, 60, "padded to the Ethernet minimum");
        let r = n.reply();
        let (eth, rest) = etherparse::Ethernet2Header::from_slice(r).expect("ethernet");
        assert_eq!((eth.destination, eth.source), (CLIENT_MAC, MOAT_MAC));
        let body = match vlan {
            None => {
                assert_eq!(eth.ether_type, etherparse::EtherType(0x0806));
                rest
            }
            Some(id) => {
                let (tag, rest) = etherparse::SingleVlanHeader::from_slice(rest).expect("vlan");
                assert_eq!(tag.vlan_id.value(), id, "tag kept");
                assert_eq!(tag.ether_type, etherparse::EtherType(0x0806));
                rest
            }
        };
        // RFC 826 reply: htype 1, ptype 0x0800, 6, 4, op 2, our MAC and
        // address as sender, the requester as target.
        assert_eq!(&body[..8], &[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        assert_eq!(&body[8..14], &MOAT_MAC);
        assert_eq!(&body[14..18], &v4(moat4()).octets());
        assert_eq!(&body[18..24], &CLIENT_MAC);
        assert_eq!(&body[24..28], &v4(client4()).octets());
    }
}

#[test]
fn arp_ignored() {
    let mut n = node();
    let other = arp_request(v4(client4()), Ipv4Addr::new(203, 0, 113, 3), 1, None);
    assert_eq!(n.run(T0, &other), drop(DropReason::ArpIgnored));
    // A VIP is not one of the node's addresses: the router is configured
    // with the node as next hop, not the VIP as a neighbour.
    let vip = arp_request(v4(client4()), v4(vip4()), 1, None);
    assert_eq!(n.run(T0, &vip), drop(DropReason::ArpIgnored));
    // Replies (op 2) and other operations for our own address too.
    for op in [2, 3, 4, 0] {
        let f = arp_request(v4(client4()), v4(moat4()), op, None);
        assert_eq!(n.run(T0, &f), drop(DropReason::ArpIgnored), "op {op}");
    }
}

#[test]
fn arp_bypasses_the_global_cap() {
    let mut n = node_with(|p| p.global_pps = 1);
    let req = arp_request(v4(client4()), v4(moat4()), 1, None);
    for _ in 0..5 {
        assert!(matches!(n.run(T0, &req), Verdict::Reply { .. }));
    }
    // The one global token is still there for IP.
    assert_eq!(n.run(T0, &udp4(b"x").build()), pass(GAME));
    assert_eq!(n.run(T0, &udp4(b"x").build()), drop(DropReason::RateLimitGlobal));
}

// ------------------------------------------- IPv6 neighbour discovery

/// An advertisement as etherparse reads it, after checking its ICMPv6
/// checksum: (Ethernet destination and source, VLAN, IPv6 source and
/// destination, hop limit, ICMPv6 type and code, the message after the
/// checksum).
type NaSeen = ([u8; 6], [u8; 6], Option<u16>, Ipv6Addr, Ipv6Addr, u8, u8, u8, Vec<u8>);

fn na_seen(frame: &[u8]) -> NaSeen {
    use etherparse::{Icmpv6Header, Icmpv6Type, LinkHeader, NetHeaders, PacketHeaders, TransportHeader, VlanHeader};
    let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads the reply");
    let Some(LinkHeader::Ethernet2(eth)) = &h.link else {
        panic!("no Ethernet header")
    };
    let vlan = match &h.vlan {
        None => None,
        Some(VlanHeader::Single(v)) => Some(v.vlan_id.value()),
        Some(VlanHeader::Double(_)) => panic!("double tag"),
    };
    let Some(NetHeaders::Ipv6(ip, ext)) = &h.net else {
        panic!("not IPv6")
    };
    assert!(ext.is_empty(), "no extension headers");
    let Some(TransportHeader::Icmpv6(m)) = &h.transport else {
        panic!("not ICMPv6")
    };
    let payload = h.payload.slice();
    let want = Icmpv6Header::with_checksum(m.icmp_type, ip.source, ip.destination, payload).expect("checksum");
    assert_eq!(m.checksum, want.checksum, "ICMPv6 checksum");
    let Icmpv6Type::Unknown {
        type_u8,
        code_u8,
        bytes5to8,
    } = m.icmp_type
    else {
        panic!("etherparse 0.16 knows ND only as raw ICMPv6: {:?}", m.icmp_type)
    };
    let mut body = bytes5to8.to_vec();
    body.extend_from_slice(payload);
    (
        eth.destination,
        eth.source,
        vlan,
        ip.source.into(),
        ip.destination.into(),
        ip.hop_limit,
        type_u8,
        code_u8,
        body,
    )
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => panic!("v6 only"),
    }
}

#[test]
fn neighbor_solicitation_for_own_addresses_is_answered() {
    let link_local = classifier::build::link_local(MOAT_MAC);
    for (target, vlan) in [(moat6(), None), (moat6(), Some(100)), (link_local, None)] {
        let mut n = node();
        let router = if target == link_local {
            "fe80::1".parse().unwrap()
        } else {
            v6(client6())
        };
        let req = neighbor_solicit(router, target, vlan);
        let Verdict::Reply { len } = n.run(T0, &req) else {
            panic!("no advertisement for {target}")
        };
        assert_eq!(len, 14 + vlan.map_or(0, |_| 4) + 40 + 32);
        let (dst_mac, src_mac, tag, src, dst, hops, ty, code, body) = na_seen(n.reply());
        assert_eq!((dst_mac, src_mac, tag), (CLIENT_MAC, MOAT_MAC, vlan));
        assert_eq!((src, dst, hops, ty, code), (target, router, 255, 136, 0));
        // RFC 4861 §4.4: R clear, S and O set; the target; its link-layer
        // address option (type 2, one unit of 8 bytes) with our MAC.
        assert_eq!(&body[..4], &[0x60, 0, 0, 0]);
        assert_eq!(&body[4..20], &target.octets());
        assert_eq!(&body[20..22], &[2, 1]);
        assert_eq!(&body[22..28], &MOAT_MAC);
        assert_eq!(body.len(), 28);
    }
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    let mut n = node();
    let dst = classifier::build::solicited_node(moat6());
    let probe = nd_message(135, Ipv6Addr::UNSPECIFIED, dst, 255, moat6(), &[], None);
    assert!(matches!(n.run(T0, &probe), Verdict::Reply { .. }));
    let (dst_mac, _, _, src, dst, _, _, _, body) = na_seen(n.reply());
    assert_eq!(dst_mac, [0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!((src, dst), (moat6(), "ff02::1".parse().unwrap()));
    assert_eq!(body[0], 0x20, "override only: not solicited");
}

#[test]
fn nd_ignored() {
    let mut n = node();
    let (c, ours) = (v6(client6()), moat6());
    let sn = classifier::build::solicited_node(ours);
    let slla = [1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let cases = [
        (
            "NS for another address",
            neighbor_solicit(c, "2001:db8:10::3".parse().unwrap(), None),
        ),
        // A VIP is not a neighbour: the router's route names the node as
        // next hop.
        ("NS for a VIP", neighbor_solicit(c, v6(vip6()), None)),
        ("NS with hop limit 64", nd_message(135, c, sn, 64, ours, &slla, None)),
        (
            "NS for a multicast target",
            nd_message(135, c, sn, 255, "ff02::1".parse().unwrap(), &slla, None),
        ),
        (
            "NS with a zero-length option",
            nd_message(135, c, sn, 255, ours, &[1, 0, 0, 0, 0, 0, 0, 0], None),
        ),
        (
            "DAD to a unicast address",
            nd_message(135, Ipv6Addr::UNSPECIFIED, ours, 255, ours, &[], None),
        ),
        (
            "DAD with a source link-layer option",
            nd_message(135, Ipv6Addr::UNSPECIFIED, sn, 255, ours, &slla, None),
        ),
        (
            "router solicitation",
            nd_message(133, c, "ff02::2".parse().unwrap(), 255, ours, &[], None),
        ),
        (
            "router advertisement",
            nd_message(134, c, "ff02::1".parse().unwrap(), 255, ours, &[], None),
        ),
        // Advertisements and redirects, even to a VIP, never reach a service.
        ("NA to a VIP", nd_message(136, c, v6(vip6()), 255, c, &[], None)),
        ("NA to us", nd_message(136, c, ours, 255, c, &[], None)),
        (
            "redirect to a VIP",
            nd_message(137, c, v6(vip6()), 255, ours, &[0; 16], None),
        ),
    ];
    for (what, f) in cases {
        assert_eq!(n.run(T0, &f), drop(DropReason::NdIgnored), "{what}");
    }
    let mut bad = neighbor_solicit(c, ours, None);
    bad[14 + 40 + 2] ^= 0x01;
    assert_eq!(n.run(T0, &bad), drop(DropReason::NdIgnored), "checksum");
    // Other ICMPv6 to a VIP still goes through the service's checks.
    let echo = Pkt::icmp(client6(), game6(), 128, 0).build();
    assert_eq!(n.run(T0, &echo), pass(GAME6));
}

#[test]
fn nd_bypasses_the_global_cap() {
    let mut n = node_with(|p| p.global_pps = 1);
    let req = neighbor_solicit(v6(client6()), moat6(), None);
    for _ in 0..5 {
        assert!(matches!(n.run(T0, &req), Verdict::Reply { .. }));
    }
    assert_eq!(n.run(T0, &udp4(b"x").build()), pass(GAME));
    assert_eq!(n.run(T0, &udp4(b"x").build()), drop(DropReason::RateLimitGlobal));
}

// ------------------------------------------------------------- IP sanity

/// A NIC that verified the IPv4 header checksum spares the classifier the
/// sum and changes no verdict of a frame it passed: a good header, a land
/// packet and a frame whose checksum the NIC did not vouch for.
#[test]
fn nic_verified_ip_checksum_skips_the_sum_only() {
    use classifier::classify::{classify_rx, Rx};
    let good = Rx { ip_csum_good: true };
    let run = |n: &mut Node, f: &[u8], rx: Rx| {
        let p = parse(f).expect("parses");
        classify_rx(&mut n.st, &n.pol, T0, f, &p, rx, &mut n.reply).verdict
    };
    let ok = udp4(b"hello").build();
    let land = Pkt::udp(game4(), 1000, game4(), 27015, b"x").build();
    let mut bad = ok.clone();
    bad[24] ^= 0x5a; // IPv4 header checksum (14 + 10)
    assert_eq!(run(&mut node(), &ok, good), pass(GAME));
    assert_eq!(run(&mut node(), &ok, Rx::default()), pass(GAME));
    assert_eq!(run(&mut node(), &land, good), drop(DropReason::Land));
    assert_eq!(run(&mut node(), &bad, Rx::default()), drop(DropReason::BadIpChecksum));
}

#[test]
fn bad_ip_checksum_unless_not_verified() {
    let mut f = udp4(b"hello").build();
    f[24] ^= 0x5a; // IPv4 header checksum (14 + 10)
    assert_eq!(node().run(T0, &f), drop(DropReason::BadIpChecksum));
    // It comes first: a corrupt land packet is a checksum error.
    let mut land = Pkt::udp(game4(), 1000, game4(), 27015, b"x").build();
    land[25] ^= 1;
    assert_eq!(node().run(T0, &land), drop(DropReason::BadIpChecksum));
    let mut n = node_with(|p| p.sanity.verify_ip_checksum = false);
    assert_eq!(n.run(T0, &f), pass(GAME));
    assert_eq!(n.run(T0, &land), drop(DropReason::Land));
    // IPv6 has no header checksum.
    assert_eq!(
        node().run(T0, &Pkt::udp(client6(), 1, game6(), 27015, b"x").build()),
        pass(GAME6)
    );
}

#[test]
fn land() {
    let mut n = node();
    let f = Pkt::syn(vip4(), 443, vip4(), 443, 1).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::Land));
    let f = Pkt::udp(game6(), 27015, game6(), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), drop(DropReason::Land));
    // Before the service lookup: land to a non-VIP is land too.
    let a = ip("192.0.2.200");
    assert_eq!(n.run(T0, &Pkt::udp(a, 1, a, 2, b"x").build()), drop(DropReason::Land));
}

#[test]
fn bad_source() {
    let mut n = node();
    for src in [
        "224.0.0.5",
        "239.255.255.250",
        "255.255.255.255",
        "127.0.0.1",
        "127.9.8.7",
        "0.0.0.0",
    ] {
        let f = Pkt::syn(ip(src), 1234, vip4(), 443, 1).build();
        assert_eq!(n.run(T0, &f), drop(DropReason::BadSource), "{src}");
    }
    for src in ["ff02::1", "ff05::1:3", "ff0e::beef", "::1", "::", "::ffff:198.51.100.7"] {
        let f = Pkt::udp(ip(src), 1234, game6(), 27015, b"x").build();
        assert_eq!(n.run(T0, &f), drop(DropReason::BadSource), "{src}");
    }
    // Before the ACL: an allow rule does not make a bogus source good.
    let mut n = node_with(|p| p.acl.insert("127.0.0.0/8".parse().expect("net"), AclAction::Allow));
    let f = Pkt::udp(ip("127.0.0.1"), 1, game4(), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), drop(DropReason::BadSource));
}

#[test]
fn v4_mapped_source_cannot_dodge_an_ipv4_deny_rule() {
    // RFC 4291 §2.5.5.2: IPv4-mapped addresses are never on the wire (Linux
    // drops them in tcp_v6_conn_request), and the ACL keeps families apart,
    // so ::ffff:a.b.c.d must not be a way around a deny rule on a.b.c.d.
    let mut n = node_with(|p| p.acl.insert("198.51.100.0/24".parse().expect("net"), AclAction::Deny));
    let f = Pkt::udp(ip("::ffff:198.51.100.7"), 1, game6(), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), drop(DropReason::BadSource));
}

#[test]
fn low_ttl() {
    let mut n = node();
    for ttl in [0, 1] {
        assert_eq!(
            n.run(T0, &udp4(b"x").ttl(ttl).build()),
            drop(DropReason::LowTtl),
            "{ttl}"
        );
        let f = Pkt::udp(client6(), 1, game6(), 27015, b"x").ttl(ttl).build();
        assert_eq!(n.run(T0, &f), drop(DropReason::LowTtl), "hop limit {ttl}");
    }
    assert_eq!(n.run(T0, &udp4(b"x").ttl(2).build()), pass(GAME));
    let mut n = node_with(|p| p.sanity.min_ttl = 10);
    assert_eq!(n.run(T0, &udp4(b"x").ttl(9).build()), drop(DropReason::LowTtl));
    assert_eq!(n.run(T0, &udp4(b"x").ttl(10).build()), pass(GAME));
    // Before the ACL and the service lookup.
    let f = Pkt::udp(client4(), 1, ip("192.0.2.99"), 27015, b"x").ttl(1).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::LowTtl));
}

// ------------------------------------------------------------- ACL, service

#[test]
fn acl_deny_longest_prefix_wins() {
    let mut n = node_with(|p| {
        p.acl.insert("198.51.100.0/24".parse().expect("net"), AclAction::Deny);
        p.acl
            .insert("198.51.100.128/25".parse().expect("net"), AclAction::Allow);
        p.acl.insert("2001:db8:bad::/48".parse().expect("net"), AclAction::Deny);
    });
    assert_eq!(n.run(T0, &udp4(b"x").build()), drop(DropReason::AclDeny));
    let f = Pkt::udp(ip("198.51.100.200"), 1, game4(), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), pass(GAME));
    let f = Pkt::udp(ip("2001:db8:bad::1"), 1, game6(), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), drop(DropReason::AclDeny));
    let f = Pkt::udp(ip("2001:db8:bad1::1"), 1, game6(), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), pass(GAME6));
    // Before the service lookup.
    let f = Pkt::udp(client4(), 1, ip("192.0.2.99"), 27015, b"x").build();
    assert_eq!(n.run(T0, &f), drop(DropReason::AclDeny));
}

#[test]
fn acl_allow_skips_syn_auth_and_source_limits() {
    let allowed = ip("192.0.2.33");
    let mut n = node_with(|p| {
        p.acl.insert("192.0.2.0/24".parse().expect("net"), AclAction::Allow);
        for s in &mut p.services {
            s.limits.src_pps = 1;
            s.limits.src_syn_pps = 1;
            s.limits.src_new_conns_ps = 1;
        }
    });
    for port in 40000..40005 {
        let f = Pkt::syn(allowed, port, vip4(), 443, 7).build();
        assert_eq!(n.run(T0, &f), pass_syn(WEB), "port {port}");
    }
    assert_eq!(n.st.flows.len(), 5);
    assert!(!n.verified(allowed, T0), "allowed, not verified");
    // Its RST of an unknown flow is no challenge answer: it passes.
    let f = Pkt::tcp(allowed, 41000, vip4(), 443, fl::RST).seq(5).build();
    assert_eq!(n.run(T0, &f), pass(WEB));
    // The same source not allowed would be limited after one packet.
    let f = Pkt::syn(client4(), 40000, vip4(), 443, 7).build();
    assert!(matches!(n.run(T0, &f), Verdict::Reply { .. }));
    assert_eq!(n.run(T0, &f), drop(DropReason::RateLimitSource));

    // cookie-reset: an allowed source's ACK is not taken for an answer.
    let mut n = Node::new(policy_with(KEY, vec![web("web", vip4(), SynAuth::CookieReset)]));
    n.pol.acl.insert("192.0.2.0/24".parse().expect("net"), AclAction::Allow);
    let f = Pkt::tcp(allowed, 41000, vip4(), 443, fl::ACK).seq(5).ack(6).build();
    assert_eq!(n.run(T0, &f), pass(WEB));
}

#[test]
fn no_service() {
    let mut n = node();
    for dst in ["203.0.113.11", "192.0.2.1", "2001:db8:10::11"] {
        let f = if dst.contains(':') {
            Pkt::syn(client6(), 1, ip(dst), 443, 1)
        } else {
            Pkt::syn(client4(), 1, ip(dst), 443, 1)
        };
        assert_eq!(n.run(T0, &f.build()), drop(DropReason::NoService), "{dst}");
    }
    // The node's own address is not a service either (only ARP is answered).
    let f = Pkt::icmp(client4(), moat4(), 8, 0).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::NoService));
}

/// The decision names the service of every packet that reached the
/// lookup, whatever its verdict, and none for those that did not.
#[test]
fn decision_service_for_every_verdict() {
    let mut n = node();
    let f = Pkt::syn(client4(), 1, vip4(), 22, 1).build();
    let d = n.decide(T0, &f);
    assert_eq!(d.verdict, drop(DropReason::PortNotAllowed));
    assert_eq!(d.service, Some(WEB), "drop after the lookup");
    let f = Pkt::syn(client4(), 2, vip4(), 443, 1).build();
    let d = n.decide(T0, &f);
    assert!(matches!(d.verdict, Verdict::Reply { .. }));
    assert_eq!(d.service, Some(WEB), "challenge");
    let f = Pkt::udp(client6(), 50000, game6(), 27015, b"x").build();
    let d = n.decide(T0, &f);
    assert_eq!(d.verdict, pass(GAME6));
    assert_eq!(d.service, Some(GAME6), "pass");
    let f = Pkt::syn(client4(), 1, ip("192.0.2.1"), 443, 1).build();
    let d = n.decide(T0, &f);
    assert_eq!(d.verdict, drop(DropReason::NoService));
    assert_eq!(d.service, None, "no service");
    let f = Pkt::syn(ip("224.0.0.1"), 1, vip4(), 443, 1).build();
    let d = n.decide(T0, &f);
    assert_eq!(d.verdict, drop(DropReason::BadSource));
    assert_eq!(d.service, None, "dropped before the lookup");
}

#[test]
fn port_not_allowed() {
    let mut n = node();
    let f = Pkt::syn(client4(), 1, vip4(), 22, 1).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "tcp port");
    let f = Pkt::syn(client6(), 1, vip6(), 8080, 1).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "tcp port v6");
    let f = Pkt::udp(client4(), 50000, vip4(), 443, b"quic").build();
    assert_eq!(
        n.run(T0, &f),
        drop(DropReason::PortNotAllowed),
        "udp on a tcp-only service"
    );
    let f = Pkt::udp(client4(), 50000, game4(), 27021, b"x").build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "udp port");
    let f = Pkt::icmp(client4(), vip4(), 8, 0).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "icmp disabled");
    let f = Pkt::icmp(client6(), vip6(), 128, 0).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "icmpv6 disabled");
    for (dst, proto) in [(vip4(), 47), (game4(), 47), (game4(), 50), (game4(), 132)] {
        let f = Pkt::other(client4(), dst, proto, &[0, 0, 0x08, 0, 1, 2, 3, 4]).build();
        assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "protocol {proto}");
    }
    let f = Pkt::other(client6(), game6(), 47, &[0; 8]).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed), "GRE over IPv6");
    // The port comes before the flags: a null scan of a closed port is a
    // closed port.
    let f = Pkt::tcp(client4(), 1, vip4(), 22, 0).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed));
}

// ------------------------------------------------------------- fragments

#[test]
fn fragments_dropped_by_default() {
    let mut n = node();
    for f in [
        udp4(&[7; 64]).frag(Frag::First),
        udp4(&[7; 64]).frag(Frag::Later),
        Pkt::udp(client6(), 1, game6(), 27015, &[7; 64]).frag(Frag::First),
        Pkt::udp(client6(), 1, game6(), 27015, &[7; 64]).frag(Frag::Later),
        Pkt::syn(client4(), 1, vip4(), 443, 1).frag(Frag::First),
    ] {
        assert_eq!(n.run(T0, &f.build()), drop(DropReason::Fragment), "{f:?}");
    }
    // The service lookup comes first.
    let f = Pkt::udp(client4(), 1, ip("192.0.2.9"), 27015, &[7; 64]).frag(Frag::Later);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::NoService));
}

#[test]
fn fragments_allowed() {
    let mut n = node_with(|p| {
        p.sanity.fragments = FragPolicy::Allow;
        p.services[usize::from(GAME)].limits.src_pps = 3;
    });
    // A first fragment carries the L4 header and goes through every check.
    assert_eq!(n.run(T0, &udp4(&[7; 64]).frag(Frag::First).build()), pass(GAME));
    let f = Pkt::udp(client4(), 123, game4(), 27015, &[7; 64]).frag(Frag::First);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::ReflectionPort));
    let f = Pkt::udp(client4(), 1, game4(), 9, &[7; 64]).frag(Frag::First);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::PortNotAllowed));
    // A later fragment has none: it passes to any service VIP, whatever
    // the protocol the service allows ...
    let web_frag = Pkt::udp(ip("198.51.100.50"), 1, vip4(), 9, &[7; 64]).frag(Frag::Later);
    assert_eq!(n.run(T0, &web_frag.build()), pass(WEB));
    let f = Pkt::udp(client6(), 1, game6(), 27015, &[7; 64]).frag(Frag::Later);
    assert_eq!(n.run(T0, &f.build()), pass(GAME6));
    // ... under the per-source limit (3/s; client4 has used one: packets
    // dropped before the limit take no token) ...
    assert_eq!(n.run(T0, &udp4(&[7; 64]).frag(Frag::Later).build()), pass(GAME));
    assert_eq!(n.run(T0, &udp4(&[7; 64]).frag(Frag::Later).build()), pass(GAME));
    assert_eq!(
        n.run(T0, &udp4(&[7; 64]).frag(Frag::Later).build()),
        drop(DropReason::RateLimitSource)
    );
    // ... and the tunnel MTU: 20 + 1457 bytes > 1476.
    let f = Pkt::udp(ip("198.51.100.51"), 1, game4(), 27015, &[7; 1449]).frag(Frag::Later);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::TooBig));
}

// ------------------------------------------------------------- TCP

#[test]
fn bad_tcp_flags() {
    let mut n = node();
    use fl::*;
    for (name, flags) in [
        ("null", 0),
        ("SYN+FIN", SYN | FIN),
        ("SYN+RST", SYN | RST),
        ("SYN+FIN+RST+ACK", SYN | FIN | RST | ACK),
        ("FIN without ACK", FIN),
        ("Xmas", FIN | PSH | URG),
        ("PSH without ACK", PSH),
        ("URG without ACK", URG),
        ("ECE+CWR only", ECE | CWR),
        ("all", 0xff),
    ] {
        for dst in [vip4(), game4()] {
            let f = Pkt::tcp(client4(), 4000, dst, if dst == vip4() { 443 } else { 25565 }, flags);
            assert_eq!(n.run(T0, &f.build()), drop(DropReason::BadTcpFlags), "{name}");
        }
        let f = Pkt::tcp(client6(), 4000, vip6(), 80, flags);
        assert_eq!(n.run(T0, &f.build()), drop(DropReason::BadTcpFlags), "{name} v6");
    }
    // Flags stacks do send are fine: an ECN-setup SYN (RFC 3168 §6.1.1),
    // RST+ACK, FIN+ACK, PSH+ACK+URG.
    let f = Pkt::syn(client4(), 4000, game4(), 25565, 1);
    let mut ecn = f.clone();
    if let L4::Tcp { flags, .. } = &mut ecn.l4 {
        *flags = SYN | ECE | CWR;
    }
    assert_eq!(n.run(T0, &ecn.build()), pass_syn(GAME));
    for flags in [RST | ACK, FIN | ACK, PSH | ACK | URG, ACK] {
        let f = Pkt::tcp(client4(), 4000, game4(), 25565, flags);
        assert_eq!(n.run(T0, &f.build()), pass(GAME), "{flags:#x}");
        // (FIN and RST end the flow: make it again.)
        assert_eq!(n.run(T0, &ecn.build()), pass_syn(GAME));
    }
}

/// The Linux SYN of `Pkt::syn`, as a fingerprint: TTL 64, DF and a
/// non-zero IP id, window 64240, `mss,sok,ts,nop,ws` with wscale 7.
const LINUX_FP: &str = "4:64:0:1460:64240,7:mss,sok,ts,nop,ws:df,id+";

#[test]
fn fingerprint_of_the_test_syn_is_linux() {
    let f = Pkt::syn(client4(), 4000, vip4(), 443, 1).build();
    let fp = tcp_fingerprint(&f, &parse(&f).expect("parse")).expect("fp");
    assert_eq!(fp.to_string(), LINUX_FP);
}

#[test]
fn fingerprint_deny_tcp_rule() {
    let rule: TcpRule = "4:64:0:1460:*,7:mss,sok,ts,nop,ws:*".parse().expect("rule");
    let v6_rule: TcpRule = "6:64:*:*:mss*44,*:*:*".parse().expect("rule");
    let mut n = node_with(|p| p.tcp_deny = vec![rule, v6_rule]);
    let linux = Pkt::syn(client4(), 4000, vip4(), 443, 1);
    assert_eq!(n.run(T0, &linux.build()), drop(DropReason::FingerprintDeny));
    let f = Pkt::syn(client4(), 4000, game4(), 25565, 1);
    assert_eq!(
        n.run(T0, &f.build()),
        drop(DropReason::FingerprintDeny),
        "syn auth off too"
    );
    // Another option layout is not matched: challenged as usual.
    let other = linux
        .clone()
        .options(vec![etherparse::TcpOptionElement::MaximumSegmentSize(1460)]);
    assert!(matches!(n.run(T0, &other.build()), Verdict::Reply { .. }));
    // A window of 44 × MSS over IPv6: 44 × 1440 = 63360.
    let v6 = Pkt::syn(client6(), 4000, vip6(), 443, 1).window(63360);
    assert_eq!(n.run(T0, &v6.build()), drop(DropReason::FingerprintDeny));
    assert!(matches!(n.run(T0, &v6.window(63361).build()), Verdict::Reply { .. }));
    // Only SYNs are fingerprinted: an ACK is judged by flows.
    let ack = Pkt::tcp(client4(), 4000, vip4(), 443, fl::ACK);
    assert_eq!(n.run(T0, &ack.build()), drop(DropReason::TcpNoFlow));
    // The port check comes first.
    let f = Pkt::syn(client4(), 4000, vip4(), 22, 1);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::PortNotAllowed));
}

#[test]
fn fingerprint_deny_udp_rule() {
    let rule: UdpRule = "udp:4:12:*:*".parse().expect("rule");
    let mut n = node_with(|p| p.udp_deny = vec![rule]);
    assert_eq!(n.run(T0, &udp4(&[1; 12]).build()), drop(DropReason::FingerprintDeny));
    assert_eq!(n.run(T0, &udp4(&[1; 13]).build()), pass(GAME));
    let f = Pkt::udp(client6(), 1, game6(), 27015, &[1; 12]);
    assert_eq!(n.run(T0, &f.build()), pass(GAME6), "the rule is for IPv4");
    // Reflection and port checks come first.
    let f = Pkt::udp(client4(), 53, game4(), 27015, &[1; 12]);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::ReflectionPort));
    let f = Pkt::udp(client4(), 1, game4(), 1, &[1; 12]);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::PortNotAllowed));
}

#[test]
fn signature_deny() {
    let tcp_sig: TcpFingerprint = LINUX_FP.parse().expect("fp");
    let udp_frame = udp4(b"\x17\xfe\xfdattack").build();
    let udp_sig = udp_fingerprint(&udp_frame, &parse(&udp_frame).expect("parse")).expect("fp");
    let mut n = node_with(|p| {
        p.signatures.tcp.insert(tcp_sig);
        p.signatures.udp.insert(udp_sig);
    });
    let linux = Pkt::syn(client4(), 4000, vip4(), 443, 1);
    assert_eq!(n.run(T0, &linux.build()), drop(DropReason::SignatureDeny));
    // TTL 63 is one hop further: the same initial TTL, the same fingerprint.
    assert_eq!(
        n.run(T0, &linux.clone().ttl(63).build()),
        drop(DropReason::SignatureDeny)
    );
    // An exact fingerprint: another window is another fingerprint.
    assert!(matches!(n.run(T0, &linux.window(65535).build()), Verdict::Reply { .. }));
    assert_eq!(n.run(T0, &udp_frame), drop(DropReason::SignatureDeny));
    assert_eq!(n.run(T0, &udp4(b"\x17\xfe\xfdattacK").build()), pass(GAME));
    // A static rule matching the same packet wins.
    let mut n = node_with(|p| {
        p.signatures.tcp.insert(tcp_sig);
        p.tcp_deny.push(TcpRule::exact(&tcp_sig));
    });
    let linux = Pkt::syn(client4(), 4000, vip4(), 443, 1);
    assert_eq!(n.run(T0, &linux.build()), drop(DropReason::FingerprintDeny));
}

#[test]
fn tcp_no_flow() {
    let mut n = node();
    for (i, flags) in [fl::ACK, fl::PSH | fl::ACK, fl::FIN | fl::ACK, fl::ACK | fl::URG]
        .into_iter()
        .enumerate()
    {
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, i as u8 + 1));
        for dst in [(vip4(), 443), (game4(), 25565)] {
            let f = Pkt::tcp(src, 1024 + i as u16, dst.0, dst.1, flags).seq(i as u32).ack(7);
            assert_eq!(n.run(T0, &f.build()), drop(DropReason::TcpNoFlow), "{flags:#x}");
        }
    }
    let f = Pkt::tcp(client6(), 1, vip6(), 443, fl::ACK).payload(b"data");
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::TcpNoFlow));
    // A SYN-ACK aimed at a VIP (reflection of some server's answers) is no
    // SYN: no flow.
    let f = Pkt::tcp(client4(), 443, vip4(), 80, fl::SYN | fl::ACK);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::TcpNoFlow));
    // With cookie-reset, a bare ACK is checked as an answer (bad cookie);
    // other segments are just without flow.
    let mut n = Node::new(web_policy(SynAuth::CookieReset));
    let f = Pkt::tcp(client4(), 1, vip4(), 443, fl::ACK).ack(99);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::BadCookie));
    let f = Pkt::tcp(client4(), 1, vip4(), 443, fl::FIN | fl::ACK).ack(99);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::TcpNoFlow));
    let f = Pkt::tcp(client4(), 1, vip4(), 443, fl::RST);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::TcpNoFlow));
}

// ------------------------------------------------------------- UDP, ICMP

#[test]
fn reflection_ports() {
    let mut n = node_services(|v| v[usize::from(GAME)].allow_src_ports.insert(53));
    for sport in [53, 123, 11211, 1900, 19, 389] {
        let f = Pkt::udp(client6(), sport, game6(), 27015, b"amplified");
        assert_eq!(n.run(T0, &f.build()), drop(DropReason::ReflectionPort), "{sport}");
        // Checked before the destination port: the source explains it.
        let f = Pkt::udp(client6(), sport, game6(), 1, b"amplified");
        assert_eq!(n.run(T0, &f.build()), drop(DropReason::ReflectionPort), "{sport}");
    }
    // Allowed per service: 53 for `game` only.
    let f = Pkt::udp(client4(), 53, game4(), 27015, b"answer");
    assert_eq!(n.run(T0, &f.build()), pass(GAME));
    let f = Pkt::udp(client4(), 123, game4(), 27015, b"answer");
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::ReflectionPort));
    // TCP from port 53 is not reflection.
    let f = Pkt::syn(client4(), 53, game4(), 25565, 1);
    assert_eq!(n.run(T0, &f.build()), pass_syn(GAME));
}

#[test]
fn payload_rules() {
    let query = PayloadRule::new(27015, 0, &[0xff; 4], &[0xff; 4]).expect("rule");
    // Second rule, same port: byte 1 high nibble 0xA.
    let nibble = PayloadRule::new(27015, 1, &[0xa0], &[0xf0]).expect("rule");
    let other_port = PayloadRule::new(27017, 2, b"GO", &[0xff, 0xff]).expect("rule");
    let mut n = node_services(|v| {
        // Out of order on purpose: add_service sorts them by port.
        v[usize::from(GAME)].payload_rules = vec![other_port, query, nibble];
        v[usize::from(GAME6)].payload_rules = vec![query];
    });
    assert_eq!(
        n.run(T0, &udp4(b"\xff\xff\xff\xffTSource Engine Query\0").build()),
        pass(GAME)
    );
    assert_eq!(n.run(T0, &udp4(b"\x00\xab").build()), pass(GAME), "second rule");
    assert_eq!(n.run(T0, &udp4(b"\x00\xbb").build()), drop(DropReason::PayloadMismatch));
    assert_eq!(
        n.run(T0, &udp4(b"GET / HTTP/1.1").build()),
        drop(DropReason::PayloadMismatch)
    );
    // Too short for the first rule and not matching the second: a short
    // payload never matches.
    assert_eq!(
        n.run(T0, &udp4(b"\xff\xff\xff").build()),
        drop(DropReason::PayloadMismatch)
    );
    assert_eq!(n.run(T0, &udp4(b"").build()), drop(DropReason::PayloadMismatch));
    // Port 27017 has its own rule; 27016 has none: anything passes.
    let p17 = |b: &[u8]| Pkt::udp(client4(), 50000, game4(), 27017, b).build();
    assert_eq!(n.run(T0, &p17(b"xxGO")), pass(GAME));
    assert_eq!(n.run(T0, &p17(b"xxG")), drop(DropReason::PayloadMismatch));
    assert_eq!(n.run(T0, &p17(b"\xff\xff\xff\xff")), drop(DropReason::PayloadMismatch));
    let f = Pkt::udp(client4(), 50000, game4(), 27016, b"anything");
    assert_eq!(n.run(T0, &f.build()), pass(GAME));
    // Payload rules come before fingerprint rules.
    n.pol.udp_deny.push("*:*:*:*:*".parse().expect("rule"));
    assert_eq!(n.run(T0, &udp4(b"nope").build()), drop(DropReason::PayloadMismatch));
    assert_eq!(
        n.run(T0, &udp4(b"\xff\xff\xff\xff").build()),
        drop(DropReason::FingerprintDeny)
    );
    // IPv6 service with its own rule.
    let f = Pkt::udp(client6(), 50000, game6(), 27015, b"\xff\xff\xff\xff!");
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::FingerprintDeny));
    n.pol.udp_deny.clear();
    assert_eq!(n.run(T0, &f.build()), pass(GAME6));
    let f = Pkt::udp(client6(), 50000, game6(), 27015, b"\xfe\xff\xff\xff!");
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::PayloadMismatch));
}

#[test]
fn icmp_types() {
    let mut n = node();
    for ty in [8, 0, 3, 11] {
        assert_eq!(
            n.run(T0, &Pkt::icmp(client4(), game4(), ty, 0).build()),
            pass(GAME),
            "{ty}"
        );
    }
    for ty in [5, 13, 17, 9, 255] {
        let f = Pkt::icmp(client4(), game4(), ty, 0).build();
        assert_eq!(n.run(T0, &f), drop(DropReason::IcmpType), "{ty}");
    }
    for ty in [128, 129, 1, 2, 3] {
        assert_eq!(
            n.run(T0, &Pkt::icmp(client6(), game6(), ty, 0).build()),
            pass(GAME6),
            "{ty}"
        );
    }
    for ty in [130, 4, 200] {
        let f = Pkt::icmp(client6(), game6(), ty, 0).build();
        assert_eq!(n.run(T0, &f), drop(DropReason::IcmpType), "{ty}");
    }
    // Neighbour discovery never reaches a service, even one that allows
    // ICMP: it is dropped (or answered) before the service lookup.
    for ty in [133, 134, 135, 136, 137] {
        let f = Pkt::icmp(client6(), game6(), ty, 0).build();
        assert_eq!(n.run(T0, &f), drop(DropReason::NdIgnored), "{ty}");
    }
    // The allowlist is the policy's.
    n.pol.icmp_types.insert(13);
    assert_eq!(n.run(T0, &Pkt::icmp(client4(), game4(), 13, 0).build()), pass(GAME));
    // A service without ICMP refuses it whatever the type.
    let f = Pkt::icmp(client4(), vip4(), 13, 0).build();
    assert_eq!(n.run(T0, &f), drop(DropReason::PortNotAllowed));
}

// ------------------------------------------------------------- tunnel MTU

#[test]
fn too_big_for_the_tunnel() {
    let mut n = node();
    // Origin MTU 1476: 20 + 8 + 1448 fits, one more byte does not.
    assert_eq!(n.run(T0, &udp4(&[0; 1448]).build()), pass(GAME));
    assert_eq!(n.run(T0, &udp4(&[0; 1449]).build()), drop(DropReason::TooBig));
    let f = Pkt::udp(client6(), 1, game6(), 27015, &[0; 1428]);
    assert_eq!(n.run(T0, &f.build()), pass(GAME6));
    let f = Pkt::udp(client6(), 1, game6(), 27015, &[0; 1429]);
    assert_eq!(n.run(T0, &f.build()), drop(DropReason::TooBig));
    // ICMP too.
    let mut big = Pkt::icmp(client4(), game4(), 8, 0);
    big.payload = vec![0; 1449];
    assert_eq!(n.run(T0, &big.build()), drop(DropReason::TooBig));
    // A SYN with data (TCP Fast Open) is measured like any packet: one that
    // fits passes, one larger than the tunnel does not.
    let syn = Pkt::syn(client4(), 4000, game4(), 25565, 1).payload(&[0; 1000]);
    assert_eq!(n.run(T0, &syn.build()), pass_syn(GAME));
    let big_syn = Pkt::syn(client4(), 4001, game4(), 25565, 1).payload(&[0; 1440]);
    assert_eq!(n.run(T0, &big_syn.build()), drop(DropReason::TooBig));
    // A data segment of that flow is.
    let seg = |len: usize| {
        Pkt::tcp(client4(), 4000, game4(), 25565, fl::PSH | fl::ACK)
            .payload(&vec![0; len])
            .build()
    };
    assert_eq!(n.run(T0, &seg(1436)), pass(GAME));
    assert_eq!(n.run(T0, &seg(1437)), drop(DropReason::TooBig));
}
