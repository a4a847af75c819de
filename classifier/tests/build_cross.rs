//! Cross-checks of the reply builders and the checksum completion against
//! etherparse 0.16, an independent implementation: the packets that
//! provoke an ICMP error are built by etherparse (802.1Q and QinQ, IPv4
//! with options, IPv6 with a hop-by-hop header, TCP, UDP, ICMP echo), the
//! errors are parsed back by etherparse, which recomputes their checksums,
//! and their fields are compared with RFC 792 / RFC 1191 / RFC 4443. A
//! packet whose L4 checksum field is overwritten gets back, from
//! `complete_l4_checksum`, exactly the checksum etherparse wrote. ARP, which
//! etherparse 0.16 does not parse, is compared with hand-written RFC 826
//! bytes (`common::net::arp_request`). Neighbour solicitations are built by
//! etherparse (as raw ICMPv6: 0.16 has no ND types) and the advertisements
//! answering them read back by it, checksum recomputed, and compared with
//! RFC 4861 §4.4 / §7.2.4.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::build::{self, ArpInfo};
use classifier::parse::{parse, L4};
use classifier::verdict::TcpAnswer;
use classifier::wire::ArpOperation;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    Icmpv4Type, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6Extensions, Ipv6Header, Ipv6RawExtHeader,
    LinkHeader, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader, VlanHeader, VlanId,
};
use proptest::prelude::*;

const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const MOAT_MAC: [u8; 6] = [0x02, 0x6d, 0x6f, 0x61, 0x74, 0x01];

#[derive(Debug, Clone, Copy)]
enum Proto {
    Tcp,
    Udp,
    /// Echo request (ICMP or ICMPv6 after the IP version).
    Echo,
}

#[derive(Debug, Clone)]
struct Spec {
    /// Outer and inner VLAN IDs.
    vlans: Vec<u16>,
    /// IPv6 (with a hop-by-hop header when `v4_options` is non-empty).
    v6: bool,
    /// IPv4 options (NOPs), 0..40 bytes.
    v4_options: usize,
    df: bool,
    proto: Proto,
    payload: Vec<u8>,
}

fn client(v6: bool) -> IpAddr {
    if v6 {
        "2001:db8:c::7".parse().unwrap()
    } else {
        Ipv4Addr::new(198, 51, 100, 7).into()
    }
}

fn vip(v6: bool) -> IpAddr {
    if v6 {
        "2001:db8:10::10".parse().unwrap()
    } else {
        Ipv4Addr::new(203, 0, 113, 10).into()
    }
}

fn octets4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => unreachable!(),
    }
}

fn octets6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => unreachable!(),
    }
}

/// A frame from the client to the VIP, built by etherparse.
fn frame(s: &Spec) -> Vec<u8> {
    let ip = if s.v6 {
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 0,
            next_header: IpNumber::TCP,
            hop_limit: 57,
            source: octets6(client(true)),
            destination: octets6(vip(true)),
        };
        let mut ext = Ipv6Extensions::default();
        if s.v4_options > 0 {
            ext.hop_by_hop_options = Some(Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).unwrap());
        }
        IpHeaders::Ipv6(h, ext)
    } else {
        let mut h = Ipv4Header::new(0, 57, IpNumber::TCP, octets4(client(false)), octets4(vip(false))).unwrap();
        h.identification = 0x1c46;
        h.dont_fragment = s.df;
        h.options = Ipv4Options::try_from(&vec![1u8; s.v4_options / 4 * 4][..]).unwrap();
        IpHeaders::Ipv4(h, Default::default())
    };
    let b = PacketBuilder::ethernet2(CLIENT_MAC, MOAT_MAC);
    let b = match s.vlans[..] {
        [] => b.ip(ip),
        [o] => b.single_vlan(VlanId::try_new(o).unwrap()).ip(ip),
        [o, i, ..] => b
            .double_vlan(VlanId::try_new(o).unwrap(), VlanId::try_new(i).unwrap())
            .ip(ip),
    };
    let mut out = Vec::new();
    match s.proto {
        Proto::Tcp => b.tcp(50000, 443, 1, 64240).ack(2).write(&mut out, &s.payload),
        Proto::Udp => b.udp(40000, 53).write(&mut out, &s.payload),
        Proto::Echo if s.v6 => b.icmpv6_echo_request(7, 1).write(&mut out, &s.payload),
        Proto::Echo => b.icmpv4_echo_request(7, 1).write(&mut out, &s.payload),
    }
    .unwrap();
    out
}

fn vlan_ids(h: &PacketHeaders) -> Vec<u16> {
    match &h.vlan {
        None => vec![],
        Some(VlanHeader::Single(v)) => vec![v.vlan_id.value()],
        Some(VlanHeader::Double(d)) => vec![d.outer.vlan_id.value(), d.inner.vlan_id.value()],
    }
}

/// Checks the ICMP error `out` about `req` (whose IP packet is `l3`) with
/// etherparse, and returns the quoted bytes.
fn check_error<'a>(out: &'a [u8], req: &Spec, l3: &[u8], mtu: u16) -> &'a [u8] {
    let h = PacketHeaders::from_ethernet_slice(out).expect("etherparse parses the error");
    let Some(LinkHeader::Ethernet2(e)) = &h.link else {
        panic!("no Ethernet")
    };
    assert_eq!((e.source, e.destination), (MOAT_MAC, CLIENT_MAC));
    assert_eq!(vlan_ids(&h), req.vlans);
    let quote = h.payload.slice();
    match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Icmpv4(m))) => {
            assert_eq!(
                (ip.source, ip.destination),
                (octets4(vip(false)), octets4(client(false)))
            );
            assert_eq!((ip.time_to_live, ip.protocol), (64, IpNumber::ICMP));
            assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
            assert_eq!(
                m.icmp_type,
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu })
            );
            assert_eq!(m.icmp_type.calc_checksum(quote), m.checksum, "ICMP checksum");
            // RFC 792: the original header and 64 bits of its data.
            let ihl = usize::from(l3[0] & 0x0f) * 4;
            assert_eq!(quote, &l3[..ihl + 8]);
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Icmpv6(m))) => {
            assert_eq!((ip.source, ip.destination), (octets6(vip(true)), octets6(client(true))));
            assert_eq!((ip.hop_limit, ip.next_header), (64, IpNumber::IPV6_ICMP));
            assert_eq!(m.icmp_type, Icmpv6Type::PacketTooBig { mtu: u32::from(mtu) });
            let c = m.icmp_type.calc_checksum(ip.source, ip.destination, quote).unwrap();
            assert_eq!(c, m.checksum, "ICMPv6 checksum");
            assert!(40 + 8 + quote.len() <= 1280, "RFC 4443 §2.4 (c)");
            assert_eq!(quote, &l3[..quote.len()]);
        }
        other => panic!("not an ICMP error: {other:?}"),
    }
    quote
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just(vec![]),
            (1u16..4095).prop_map(|v| vec![v]),
            (1u16..4095, 1u16..4095).prop_map(|(o, i)| vec![o, i]),
        ],
        any::<bool>(),
        0usize..=40,
        prop_oneof![Just(Proto::Tcp), Just(Proto::Udp), Just(Proto::Echo)],
        proptest::collection::vec(any::<u8>(), 0..1600),
    )
        .prop_map(|(vlans, v6, v4_options, proto, payload)| Spec {
            vlans,
            v6,
            v4_options,
            df: true,
            proto,
            payload,
        })
}

#[test]
fn frag_needed_ipv4_qinq_with_options() {
    let s = Spec {
        vlans: vec![100, 200],
        v6: false,
        v4_options: 8,
        df: true,
        proto: Proto::Tcp,
        payload: vec![0x5a; 1452],
    };
    let f = frame(&s);
    let p = parse(&f).unwrap();
    assert_eq!(p.l3_len, 1500);
    let mut out = [0u8; 256];
    let n = build::icmp_too_big(&f, &p, 1476, &mut out).unwrap();
    assert_eq!(n, 22 + 20 + 8 + 28 + 8);
    let quote = check_error(&out[..n], &s, p.l3_bytes(&f), 1476);
    assert_eq!(quote.len(), 36);
    // Refused: no DF; an out one byte short.
    assert_eq!(build::icmp_too_big(&f, &p, 1476, &mut out[..n - 1]), None);
    let f = frame(&Spec { df: false, ..s });
    assert_eq!(build::icmp_too_big(&f, &parse(&f).unwrap(), 1476, &mut out), None);
}

#[test]
fn packet_too_big_ipv6_vlan() {
    let s = Spec {
        vlans: vec![42],
        v6: true,
        v4_options: 1,
        df: false,
        proto: Proto::Udp,
        payload: vec![0xa5; 1452],
    };
    let f = frame(&s);
    let p = parse(&f).unwrap();
    assert_eq!(p.l3_len, 40 + 8 + 8 + 1452);
    let mut out = [0u8; 1600];
    let n = build::icmp_too_big(&f, &p, 1280, &mut out).unwrap();
    assert_eq!(n, 18 + 1280);
    check_error(&out[..n], &s, p.l3_bytes(&f), 1280);
    // An ICMPv6 error is never answered, even with room to spare.
    let n2 = build::icmp_too_big(&out[..n], &parse(&out[..n]).unwrap(), 1280, &mut [0u8; 1600]);
    assert_eq!(n2, None);
}

#[test]
fn arp_request_and_sender_against_rfc826_bytes() {
    let (us, gw) = (Ipv4Addr::new(203, 0, 113, 2), Ipv4Addr::new(203, 0, 113, 1));
    let mut out = [0u8; 64];
    let n = build::arp_request(MOAT_MAC, us, gw, &mut out).unwrap();
    assert_eq!(n, 60);
    let h = PacketHeaders::from_ethernet_slice(&out[..n]);
    // etherparse 0.16 reads the Ethernet header and stops at ARP.
    let eth = match h {
        Ok(PacketHeaders {
            link: Some(LinkHeader::Ethernet2(e)),
            ..
        }) => e,
        Err(_) => etherparse::Ethernet2Header::from_slice(&out[..n]).unwrap().0,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (eth.destination, eth.source, eth.ether_type.0),
        ([0xff; 6], MOAT_MAC, 0x0806)
    );
    // The request read back, and one written by hand (RFC 826), tagged.
    let own = build::arp_sender(&out[..n]).unwrap();
    assert_eq!(
        own,
        ArpInfo {
            op: ArpOperation::Request,
            sender_mac: MOAT_MAC,
            sender_ip: us,
            target_ip: gw,
            vlan_id: 0
        }
    );
    for (op, want) in [(1, ArpOperation::Request), (2, ArpOperation::Reply)] {
        let f = common::net::arp_request(gw, us, op, Some(7));
        let got = build::arp_sender(&f).unwrap();
        assert_eq!((got.op, got.sender_ip, got.target_ip, got.vlan_id), (want, gw, us, 7));
        assert_eq!(got.sender_mac, common::net::CLIENT_MAC);
        assert!(got.learnable());
    }
    assert_eq!(build::arp_sender(&common::net::arp_request(gw, us, 9, None)), None);
}

/// Overwrites the L4 checksum of `f` with `junk`, completes it, and checks
/// that the frame is back to what etherparse built.
fn complete_restores(f: &[u8], junk: u16) -> bool {
    let p = parse(f).unwrap();
    let at = usize::from(p.l4_offset)
        + match p.l4 {
            L4::Tcp(_) => 16,
            L4::Udp { .. } => 6,
            L4::Icmpv6 { .. } | L4::Icmp { .. } => 2,
            L4::None => unreachable!(),
        };
    let mut g = f.to_vec();
    g[at..at + 2].copy_from_slice(&junk.to_be_bytes());
    let done = build::complete_l4_checksum(&mut g, &p);
    if done {
        assert_eq!(g, f, "{:?}", p.l4);
    } else {
        assert_eq!(&g[..at], &f[..at]);
    }
    done
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn icmp_too_big_parses_back(s in spec(), cut in 1usize..2000, room in 0usize..1400) {
        let f = frame(&s);
        let p = parse(&f).unwrap();
        let l3 = usize::from(p.l3_len);
        let min = if s.v6 { build::MIN_MTU_V6 } else { build::MIN_MTU_V4 };
        prop_assume!(l3 > usize::from(min));
        let mtu = (l3 - 1 - cut % (l3 - usize::from(min))) as u16;
        let mut out = vec![0u8; 22 + 48 + 48 + room];
        match build::icmp_too_big(&f, &p, mtu, &mut out) {
            Some(n) => {
                let quote = check_error(&out[..n], &s, p.l3_bytes(&f), mtu);
                if s.v6 {
                    // As much as fits: `out` or the 1280-byte limit is full.
                    let full = l3.min(build::V6_MAX_QUOTE);
                    prop_assert!(quote.len() == full || n == out.len());
                }
            }
            None => {
                // Only an ICMPv6 error refuses here, or an `out` too small
                // for the IPv6 header, extensions and 8 bytes.
                let need = usize::from(p.l3_offset) + 48 + usize::from(p.l4_offset - p.l3_offset) + 8;
                prop_assert!(s.v6 && out.len() < need, "{:?}", p);
            }
        }
        prop_assert_eq!(build::icmp_too_big(&f, &p, l3 as u16, &mut out), None, "fits");
    }

    /// The dataplane writes TCP answers over the segment itself: the bytes
    /// are those built aside, for every shape of segment (VLAN tags, IPv4
    /// options, IPv6 extension headers, payloads shorter and longer than
    /// the answer), and etherparse reads the answer back with swapped
    /// addresses and ports and correct checksums.
    #[test]
    fn tcp_answer_in_place_is_the_reply_built_aside(
        s in spec(),
        seq: u32,
        ack: u32,
        window: u16,
        mss in proptest::option::of(any::<u16>()),
    ) {
        let f = frame(&Spec { proto: Proto::Tcp, ..s.clone() });
        let p = parse(&f).unwrap();
        let a = TcpAnswer { seq, ack, flags: 0x12, window, mss };
        let mut aside = [0u8; 128];
        let n = build::tcp_reply(&f, &p, seq, ack, 0x12, window, mss, &mut aside).unwrap();
        prop_assert_eq!(build::tcp_answer_len(&p, &a), Some(n));
        let mut g = f.clone();
        g.resize(g.len().max(n), 0xa5);
        prop_assert_eq!(build::tcp_answer(&mut g, &p, &a), Some(n));
        prop_assert_eq!(&g[..n], &aside[..n]);
        let h = PacketHeaders::from_ethernet_slice(&g[..n]).unwrap();
        let Some(TransportHeader::Tcp(t)) = h.transport else { panic!("not TCP: {h:?}") };
        prop_assert_eq!((t.source_port, t.destination_port, t.sequence_number, t.acknowledgment_number), (443, 50000, seq, ack));
        let (src, dst, csum) = match h.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                prop_assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                (IpAddr::from(ip.source), IpAddr::from(ip.destination), t.calc_checksum_ipv4(&ip, &[]).unwrap())
            }
            Some(NetHeaders::Ipv6(ip, _)) => {
                (IpAddr::from(ip.source), IpAddr::from(ip.destination), t.calc_checksum_ipv6(&ip, &[]).unwrap())
            }
            other => panic!("not IP: {other:?}"),
        };
        prop_assert_eq!((src, dst), (vip(s.v6), client(s.v6)));
        prop_assert_eq!(t.checksum, csum);
    }

    #[test]
    fn complete_l4_checksum_matches_etherparse(s in spec(), junk: u16) {
        let f = frame(&s);
        let done = complete_restores(&f, junk);
        let icmpv4 = matches!(s.proto, Proto::Echo) && !s.v6;
        prop_assert_eq!(done, !icmpv4);
    }
}

/// A Neighbor Solicitation built by etherparse: from `src` (`::` for
/// duplicate address detection) to `target`'s solicited-node address, hop
/// limit 255, with `vlans`, and the source link-layer address option unless
/// from `::` (RFC 4861 §4.3).
fn solicitation(vlans: &[u16], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = build::solicited_node(target);
    let o = dst.octets();
    let b = PacketBuilder::ethernet2(CLIENT_MAC, [0x33, 0x33, o[12], o[13], o[14], o[15]]);
    let b = match vlans[..] {
        [] => b.ipv6(src.octets(), o, 255),
        [v] => b.single_vlan(VlanId::try_new(v).unwrap()).ipv6(src.octets(), o, 255),
        [v, w, ..] => b
            .double_vlan(VlanId::try_new(v).unwrap(), VlanId::try_new(w).unwrap())
            .ipv6(src.octets(), o, 255),
    };
    let mut body = target.octets().to_vec();
    if !src.is_unspecified() {
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&CLIENT_MAC);
    }
    let mut out = Vec::new();
    b.icmpv6_raw(135, 0, [0; 4]).write(&mut out, &body).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn neighbor_advertisement_parses_back(
        vlans in prop_oneof![
            Just(vec![]),
            (1u16..4095).prop_map(|v| vec![v]),
            (1u16..4095, 1u16..4095).prop_map(|(o, i)| vec![o, i]),
        ],
        dad: bool,
        target_bits: u128,
        mac: [u8; 6],
    ) {
        // A unicast target: a global one, or the link-local address of `mac`.
        let target = if target_bits & 1 == 0 {
            Ipv6Addr::from(0x2001_0db8_u128 << 96 | target_bits >> 32)
        } else {
            build::link_local(mac)
        };
        let src = if dad { Ipv6Addr::UNSPECIFIED } else { "fe80::5054:ff:fe12:3456".parse().unwrap() };
        let f = solicitation(&vlans, src, target);
        let p = parse(&f).unwrap();
        let ns = build::neighbor_solicit(&f, &p).expect("a valid solicitation");
        prop_assert_eq!((ns.target, ns.src, ns.src_mac), (target, src, CLIENT_MAC));
        let mut out = [0u8; 128];
        let n = build::nd_advert(&f, &p, &ns, mac, &mut out).unwrap();
        prop_assert_eq!(n, 14 + 4 * vlans.len() + 40 + 32);
        let h = PacketHeaders::from_ethernet_slice(&out[..n]).expect("etherparse parses the advertisement");
        let Some(LinkHeader::Ethernet2(e)) = &h.link else { panic!("no Ethernet") };
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        let (dst, dst_mac) = if dad { (all_nodes, [0x33, 0x33, 0, 0, 0, 1]) } else { (src, CLIENT_MAC) };
        prop_assert_eq!((e.source, e.destination), (mac, dst_mac));
        prop_assert_eq!(vlan_ids(&h), vlans);
        let (Some(NetHeaders::Ipv6(ip, ext)), Some(TransportHeader::Icmpv6(m))) = (&h.net, &h.transport) else {
            panic!("not ICMPv6")
        };
        prop_assert!(ext.is_empty());
        prop_assert_eq!((ip.source, ip.destination), (target.octets(), dst.octets()));
        prop_assert_eq!((ip.hop_limit, ip.next_header), (255, IpNumber::IPV6_ICMP));
        let body = h.payload.slice();
        let c = m.icmp_type.calc_checksum(ip.source, ip.destination, body).unwrap();
        prop_assert_eq!(c, m.checksum, "ICMPv6 checksum");
        // R clear, S set unless DAD, O set; the target; TLLA with our MAC.
        let flags = if dad { 0x20 } else { 0x60 };
        prop_assert_eq!(m.icmp_type, Icmpv6Type::Unknown { type_u8: 136, code_u8: 0, bytes5to8: [flags, 0, 0, 0] });
        prop_assert_eq!(&body[..16], &target.octets()[..]);
        prop_assert_eq!(&body[16..18], &[2u8, 1][..]);
        prop_assert_eq!(&body[18..], &mac[..]);
        // An advertisement is not a solicitation.
        prop_assert_eq!(build::neighbor_solicit(&out[..n], &parse(&out[..n]).unwrap()), None);
    }
}
