//! The `builders` target (cargo refuses a binary named `build`): every builder of `classifier::build` on a parsed
//! frame, into a buffer too small for most outputs and one large enough for
//! all, and every output parsed back.
//!
//! Checked (the contract in `classifier/src/build.rs`): no builder panics or
//! writes past its buffer; with room enough, a TCP frame always gets a
//! reply, and an ARP request and an IP packet always build; every frame
//! built parses, with the fields the builder promises (swapped addresses
//! and ports, correct IPv4 and TCP checksums, the inner packet intact after
//! the GRE header); `gre_encap_in_place` writes the same bytes as
//! `gre_encap`; `clamp_mss` keeps a correct TCP checksum correct, changes
//! nothing else of the parse, and leaves no MSS above the clamp.
//!
//! The ICMP errors (`icmp_too_big`, at MTUs around the packet's length and
//! at the protocol minimums, into buffers of several sizes): refused when
//! the packet fits, for IPv4 without DF or a non-first fragment, and for
//! ICMP errors; otherwise a frame that parses as ICMP type 3 code 4 /
//! ICMPv6 type 2 with swapped addresses, the MTU, correct checksums, a
//! prefix of the packet as quote and at most 1280 bytes of IPv6.
//! `complete_l4_checksum` leaves a frame alone or makes its L4 checksum
//! correct, changing only that field. `arp_sender` agrees with `parse` on
//! ARP frames, and what `arp_request` builds reads back through it.
//!
//! Neighbour discovery: `neighbor_solicit` accepts only a hop-limit-255
//! ICMPv6 type 135 code 0 with a right checksum, at least 24 bytes and a
//! unicast target; `nd_advert` answers it (and, given any IPv6 frame and a
//! forged solicitation, still builds) with a frame that parses as ICMPv6
//! type 136 from the target, hop limit 255, a correct checksum, VLAN tags
//! kept, and is itself no solicitation.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::hint::black_box;

use classifier::build::{self, GreParams};
use classifier::parse::{parse, Frag, Parsed, L3, L4};
use classifier::verdict::TcpAnswer;
use classifier::wire::{self, TcpOption};

/// Smaller than any reply (60 bytes) or encapsulated frame: exercises the
/// "buffer too small" refusals.
const SMALL: usize = 40;
/// Enough for any reply (the largest: 86 bytes) and for GRE around any
/// frame of the input.
const LARGE: usize = 256;

const GRE: GreParams = GreParams {
    src_mac: [0x02, 0, 0, 0, 0, 0x0a],
    dst_mac: [0x02, 0, 0, 0, 0, 0x0b],
    tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
    tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
    key: Some(0xdead_beef),
    ttl: 64,
};

/// The target body.
pub fn build_frame(frame: &[u8]) {
    let Ok(p) = parse(frame) else { return };
    tcp_reply(frame, &p);
    arp_reply(frame, &p);
    gre(frame, &p, GRE);
    gre(frame, &p, GreParams { key: None, ..GRE });
    clamp(frame, &p);
    too_big(frame, &p);
    complete_checksum(frame, &p);
    arp(frame, &p);
    nd(frame, &p);
}

fn tcp_reply(frame: &[u8], p: &Parsed) {
    let (seq, ack, flags, window) = (0x0102_0304, 0x0a0b_0c0d, 0x12, 1024);
    for mss in [None, Some(1220)] {
        let mut small = [0u8; SMALL];
        assert_eq!(
            build::tcp_reply(frame, p, seq, ack, flags, window, mss, &mut small),
            None
        );
        let mut out = [0u8; LARGE];
        let n = build::tcp_reply(frame, p, seq, ack, flags, window, mss, &mut out);
        let Some(t) = p.tcp() else {
            assert_eq!(n, None, "a reply to a non-TCP frame");
            continue;
        };
        let n = n.expect("a TCP frame gets a reply");
        assert!((build::ETH_MIN_FRAME..=128).contains(&n), "reply of {n} bytes");
        let r = parse(&out[..n]).expect("the reply parses");
        assert_eq!(
            (r.src_ip(), r.dst_ip(), r.vlans, r.vlan_id),
            (p.dst_ip(), p.src_ip(), p.vlans, p.vlan_id)
        );
        let rt = r.tcp().expect("the reply is TCP");
        assert_eq!((rt.sport, rt.dport), (t.dport, t.sport));
        assert_eq!((rt.seq, rt.ack, rt.flags, rt.window), (seq, ack, flags, window));
        checksums_ok(&out[..n], &r);
        if mss.is_some() {
            let seg = wire::TcpPacket::new_checked(r.l4_bytes(&out[..n])).expect("TCP header");
            let opts: Vec<_> = seg.options_iter().collect();
            assert_eq!(opts, [Ok(TcpOption::MaxSegmentSize(1220))]);
        }
        // Written over the frame itself (the dataplane's path): the same
        // bytes, whatever the frame held past its L2 header.
        let a = TcpAnswer {
            seq,
            ack,
            flags,
            window,
            mss,
        };
        assert_eq!(build::tcp_answer_len(p, &a), Some(n));
        let mut in_place = frame.to_vec();
        in_place.resize(in_place.len().max(n), 0xa5);
        assert_eq!(build::tcp_answer(&mut in_place[..n - 1], p, &a), None, "too short");
        assert_eq!(build::tcp_answer(&mut in_place, p, &a), Some(n));
        assert_eq!(&in_place[..n], &out[..n], "in place differs from built aside");
    }
}

/// IPv4 header and TCP checksums of a frame Moat built are correct.
fn checksums_ok(frame: &[u8], p: &Parsed) {
    let l3 = p.l3_bytes(frame);
    if p.l3 == L3::Ipv4 {
        assert!(wire::Ipv4Packet::new_checked(l3).expect("IPv4").verify_checksum());
    }
    let seg = wire::TcpPacket::new_checked(p.l4_bytes(frame)).expect("TCP header");
    assert!(
        seg.verify_checksum(p.src_ip(), p.dst_ip()),
        "TCP checksum of a built frame"
    );
}

fn arp_reply(frame: &[u8], p: &Parsed) {
    let mac = [0x02, 0, 0, 0, 0, 0xfe];
    let mut small = [0u8; SMALL];
    assert_eq!(build::arp_reply(frame, p, mac, &mut small), None);
    let mut out = [0u8; LARGE];
    let Some(n) = build::arp_reply(frame, p, mac, &mut out) else {
        return;
    };
    assert!((build::ETH_MIN_FRAME..=128).contains(&n), "ARP reply of {n} bytes");
    let r = parse(&out[..n]).expect("the ARP reply parses");
    assert_eq!((r.l3, r.src_ip(), r.dst_ip()), (L3::Arp, p.dst_ip(), p.src_ip()));
    let l2 = usize::from(r.l3_offset);
    let a = wire::ArpPacket::new_checked(&out[l2..n]).expect("ARP body");
    assert_eq!(a.operation(), wire::ArpOperation::Reply);
    assert_eq!(a.source_hardware_addr(), mac);
    assert_eq!(&out[6..12], &mac);
}

fn nd(frame: &[u8], p: &Parsed) {
    let mac = [0x02, 0, 0, 0, 0, 0xfd];
    let forged = build::NeighborSolicit {
        target: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        src: Ipv6Addr::UNSPECIFIED,
        src_mac: [0x02, 0, 0, 0, 0, 0x02],
    };
    let valid = build::neighbor_solicit(frame, p);
    if let Some(ns) = valid {
        assert_eq!(p.l4, L4::Icmpv6 { ty: 135, code: 0 });
        assert_eq!((p.ttl, p.frag), (255, Frag::None));
        assert!(!ns.target.is_multicast() && p.l4_bytes(frame).len() >= 24);
        assert_eq!(IpAddr::V6(ns.src), p.src_ip());
    }
    for ns in [valid, Some(forged)].into_iter().flatten() {
        let mut small = [0u8; SMALL];
        assert_eq!(build::nd_advert(frame, p, &ns, mac, &mut small), None);
        let mut out = [0u8; LARGE];
        let Some(n) = build::nd_advert(frame, p, &ns, mac, &mut out) else {
            assert_ne!(p.l3, L3::Ipv6, "an IPv6 frame gets an advertisement");
            continue;
        };
        assert_eq!(n, usize::from(p.l3_offset) + 40 + build::NA_LEN);
        assert!(n <= 128, "advertisement of {n} bytes");
        let r = parse(&out[..n]).expect("the advertisement parses");
        let dst = if ns.src.is_unspecified() {
            "ff02::1".parse().unwrap()
        } else {
            ns.src
        };
        assert_eq!(
            (r.src_ip(), r.dst_ip(), r.ttl),
            (IpAddr::V6(ns.target), IpAddr::V6(dst), 255)
        );
        assert_eq!(
            (r.vlans, r.vlan_id, r.l4),
            (p.vlans, p.vlan_id, L4::Icmpv6 { ty: 136, code: 0 })
        );
        assert_eq!(&out[6..12], &mac);
        let m = wire::Icmpv6Packet::new_checked(r.l4_bytes(&out[..n])).expect("ICMPv6");
        assert!(m.verify_checksum(ns.target, dst), "ICMPv6 checksum of an advertisement");
        assert_eq!(build::neighbor_solicit(&out[..n], &r), None);
    }
}

fn gre(frame: &[u8], p: &Parsed, g: GreParams) {
    let inner = p.l3_bytes(frame);
    let oh = build::gre_overhead(g.key.is_some());
    let mut small = [0u8; SMALL];
    if inner.len() + oh > SMALL {
        assert_eq!(build::gre_encap(inner, &g, &mut small), None);
    }
    let mut out = vec![0u8; oh + frame.len()];
    let n = build::gre_encap(inner, &g, &mut out);
    if p.l3 == L3::Arp {
        assert_eq!(n, None, "ARP encapsulated");
        return;
    }
    let n = n.expect("an IP packet encapsulates");
    assert_eq!(n, oh + inner.len());
    let outer = parse(&out[..n]).expect("GRE output parses");
    assert_eq!((outer.l3, outer.proto), (L3::Ipv4, 47));
    assert_eq!(usize::from(outer.l3_len), n - wire::ethernet::HEADER_LEN);
    let ip = wire::Ipv4Packet::new_checked(outer.l3_bytes(&out[..n])).expect("outer IPv4");
    assert!(ip.verify_checksum() && ip.dont_frag());
    assert_eq!(ip.ecn(), p.ecn, "RFC 6040: ECN copied");
    let gre = wire::GrePacket::new_checked(ip.payload()).expect("GRE header");
    assert_eq!(gre.key(), g.key);
    assert_eq!(gre.payload(), inner, "inner packet intact");

    // In place: the inner packet behind exactly the headroom.
    let mut buf = vec![0u8; oh + inner.len()];
    buf[oh..].copy_from_slice(inner);
    assert_eq!(build::gre_encap_in_place(&mut buf, oh - 1, inner.len(), &g), None);
    assert_eq!(build::gre_encap_in_place(&mut buf, oh, inner.len(), &g), Some(0));
    assert_eq!(buf, out[..n], "in place and copying encapsulation agree");
    assert_eq!(build::gre_encap_in_place(&mut buf, oh, inner.len() + 1, &g), None);
}

fn clamp(frame: &[u8], p: &Parsed) {
    let L4::Tcp(t) = p.l4 else { return };
    let sum_ok =
        |f: &[u8]| wire::TcpPacket::new_checked(p.l4_bytes(f)).is_ok_and(|s| s.verify_checksum(p.src_ip(), p.dst_ip()));
    let was_ok = sum_ok(frame);
    for max in [0, 536, 1460, u16::MAX] {
        let mut copy = frame.to_vec();
        let changed = build::clamp_mss(&mut copy, p, max);
        assert_eq!(changed, copy != frame, "clamp_mss reports what it did");
        if !changed {
            continue;
        }
        assert!(t.flags & 0x02 != 0, "clamped a non-SYN");
        assert_eq!(parse(&copy).as_ref(), Ok(p), "clamping changed the parse");
        assert_eq!(sum_ok(&copy), was_ok, "RFC 1624 update broke the TCP checksum");
        let seg = wire::TcpPacket::new_checked(p.l4_bytes(&copy)).expect("TCP header");
        let first = seg.options_iter().map_while(Result::ok).find_map(|o| match o {
            TcpOption::MaxSegmentSize(m) => Some(m),
            _ => None,
        });
        assert_eq!(first, Some(max), "the first MSS option is clamped");
    }
}

fn too_big(frame: &[u8], p: &Parsed) {
    let len = p.l3_len;
    for mtu in [len.saturating_sub(1), len, build::MIN_MTU_V4, build::MIN_MTU_V6, 0] {
        let mut small = [0u8; SMALL];
        assert_eq!(build::icmp_too_big(frame, p, mtu, &mut small), None);
        for size in [LARGE, 1400] {
            let mut out = vec![0u8; size];
            let Some(n) = build::icmp_too_big(frame, p, mtu, &mut out) else {
                continue;
            };
            assert!(len > mtu, "an error for a packet that fits");
            assert!((build::ETH_MIN_FRAME..=size).contains(&n), "error of {n} bytes");
            check_too_big(&out[..n], frame, p, mtu);
        }
    }
}

/// The error `out` about `frame` (parsed `p`) is what `icmp_too_big`
/// promises.
fn check_too_big(out: &[u8], frame: &[u8], p: &Parsed, mtu: u16) {
    let r = parse(out).expect("the ICMP error parses");
    assert_eq!((r.src_ip(), r.dst_ip(), r.ttl), (p.dst_ip(), p.src_ip(), 64));
    assert_eq!((r.vlans, r.vlan_id, r.frag), (p.vlans, p.vlan_id, Frag::None));
    assert_eq!((&out[..6], &out[6..12]), (&frame[6..12], &frame[..6]));
    let msg = r.l4_bytes(out);
    let quote = &msg[8..];
    assert!(p.l3_bytes(frame).starts_with(quote), "the quote is the packet's start");
    match (r.l4, r.dst_ip(), r.src_ip()) {
        (L4::Icmp { ty: 3, code: 4 }, _, _) => {
            assert!(p.df && p.frag != Frag::Later, "RFC 1122 §3.2.2");
            assert!(
                !matches!(
                    p.l4,
                    L4::Icmp {
                        ty: 3..=5 | 11 | 12,
                        ..
                    }
                ),
                "an error about an error"
            );
            let ip = wire::Ipv4Packet::new_checked(r.l3_bytes(out)).expect("IPv4");
            assert!(ip.verify_checksum());
            let m = wire::IcmpPacket::new_checked(msg).expect("ICMP");
            assert!(m.verify_checksum());
            assert_eq!(m.rest_of_header(), u32::from(mtu));
            assert_eq!(quote.len(), usize::from(p.ip_header_len) + 8);
        }
        (L4::Icmpv6 { ty: 2, code: 0 }, IpAddr::V6(client), IpAddr::V6(vip)) => {
            assert!(
                !matches!(p.l4, L4::Icmpv6 { ty: 0..=127, .. }),
                "an error about an error"
            );
            assert!(r.l3_len <= 1280, "RFC 4443 §2.4 (c)");
            let m = wire::Icmpv6Packet::new_checked(msg).expect("ICMPv6");
            assert!(m.verify_checksum(vip, client));
            assert_eq!(m.rest_of_header(), u32::from(mtu));
        }
        other => panic!("not a packet-too-big error: {other:?}"),
    }
}

fn complete_checksum(frame: &[u8], p: &Parsed) {
    let mut copy = frame.to_vec();
    if !build::complete_l4_checksum(&mut copy, p) {
        assert_eq!(copy, frame, "refused but changed");
    } else {
        assert_eq!(p.frag, Frag::None, "completed a fragment");
        let at = usize::from(p.l4_offset)
            + match p.l4 {
                L4::Tcp(_) => 16,
                L4::Udp { .. } => 6,
                L4::Icmpv6 { .. } => 2,
                other => panic!("completed {other:?}"),
            };
        assert_eq!((&copy[..at], &copy[at + 2..]), (&frame[..at], &frame[at + 2..]));
        assert_eq!(parse(&copy).as_ref(), Ok(p));
        let seg = p.l4_bytes(&copy);
        let ok = match (p.l4, p.src_ip(), p.dst_ip()) {
            (L4::Tcp(_), s, d) => wire::TcpPacket::new_checked(seg).is_ok_and(|t| t.verify_checksum(s, d)),
            (L4::Udp { .. }, s, d) => wire::UdpPacket::new_checked(seg).is_ok_and(|u| u.verify_checksum(s, d)),
            (_, IpAddr::V6(s), IpAddr::V6(d)) => {
                wire::Icmpv6Packet::new_checked(seg).is_ok_and(|m| m.verify_checksum(s, d))
            }
            _ => false,
        };
        assert!(ok, "completed checksum does not verify");
    }
    // A summary of a longer frame.
    let half = frame.len() / 2;
    black_box(build::complete_l4_checksum(&mut copy[..half], p));
}

fn arp(frame: &[u8], p: &Parsed) {
    let info = build::arp_sender(frame);
    if let Some(a) = info {
        assert_eq!(p.l3, L3::Arp);
        assert_eq!(
            (IpAddr::V4(a.sender_ip), IpAddr::V4(a.target_ip), a.vlan_id),
            (p.src_ip(), p.dst_ip(), p.vlan_id)
        );
        assert!(matches!(a.op, wire::ArpOperation::Request | wire::ArpOperation::Reply));
    } else if p.l3 == L3::Arp {
        let op = wire::ArpPacket::new_checked(p.l3_bytes(frame))
            .expect("ARP")
            .operation();
        assert!(!matches!(op, wire::ArpOperation::Request | wire::ArpOperation::Reply));
    }
    // A request from the frame's first bytes reads back.
    let (IpAddr::V4(a), IpAddr::V4(b)) = (p.src_ip(), p.dst_ip()) else {
        return;
    };
    let mac: [u8; 6] = frame[..6].try_into().expect("6 bytes");
    let mut small = [0u8; SMALL];
    assert_eq!(build::arp_request(mac, a, b, &mut small), None);
    let mut out = [0u8; LARGE];
    let n = build::arp_request(mac, a, b, &mut out).expect("a request");
    assert_eq!(n, build::ETH_MIN_FRAME);
    let r = build::arp_sender(&out[..n]).expect("the request reads back");
    assert_eq!(
        (r.op, r.sender_mac, r.sender_ip, r.target_ip, r.vlan_id),
        (wire::ArpOperation::Request, mac, a, b, 0)
    );
}
