//! Helpers shared by the integration tests.
//!
//! - `exercise_views`, `exercise_parse`: call every accessor of every view,
//!   and everything downstream of `parse`, on arbitrary bytes. The property
//!   tests only need these not to panic; the invariants they assert are the
//!   documented bounds of `Parsed`.
//! - [`net`]: end-to-end `classify` tests: frames built by etherparse (an
//!   independent implementation, never our builders), a policy built in
//!   code, a node (state + policy + reply buffer) driven by simulated time,
//!   and replies parsed back by etherparse with their checksums checked.
//!
//! Each test binary uses a subset of these helpers.
#![allow(dead_code)]

pub mod net;

use classifier::build::{self, GreParams};
use classifier::fingerprint::{tcp_fingerprint, udp_fingerprint};
use classifier::parse::parse;
use classifier::wire::{self, TcpOption};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every view's `new_checked` on `b`, and every accessor when it succeeds.
/// Returns how many views accepted the bytes.
pub fn exercise_views(b: &[u8]) -> usize {
    let mut ok = 0;
    let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
    let v6a = Ipv6Addr::LOCALHOST;
    let v6: IpAddr = v6a.into();
    if let Ok(f) = wire::EthernetFrame::new_checked(b) {
        ok += 1;
        let _ = (
            f.dst_addr(),
            f.src_addr(),
            f.vlan_count(),
            f.header_len(),
            f.ethertype(),
        );
        for i in 0..3 {
            let _ = (f.vlan_tpid(i), f.vlan_tci(i), f.vlan_id(i), f.vlan_pcp(i));
        }
        assert!(f.header_len() + f.payload().len() == b.len());
    }
    if let Ok(a) = wire::ArpPacket::new_checked(b) {
        ok += 1;
        let _ = (
            a.hardware_type(),
            a.protocol_type(),
            a.hardware_len(),
            a.protocol_len(),
            a.operation(),
        );
        let _ = (a.source_hardware_addr(), a.source_protocol_addr());
        let _ = (a.target_hardware_addr(), a.target_protocol_addr());
    }
    if let Ok(p) = wire::Ipv4Packet::new_checked(b) {
        ok += 1;
        let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident());
        let _ = (
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
        );
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.verify_checksum(),
            p.options(),
            p.payload(),
        );
    }
    if let Ok(p) = wire::Ipv6Packet::new_checked(b) {
        ok += 1;
        let _ = (p.version(), p.traffic_class(), p.ecn(), p.flow_label(), p.payload_len());
        let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr(), p.payload());
        if let Ok(e) = p.ext_walk() {
            assert!(e.l4_offset <= 40 + p.payload().len());
        }
    }
    if let Ok(p) = wire::TcpPacket::new_checked(b) {
        ok += 1;
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.seq_number(),
            p.ack_number(),
            p.header_len(),
            p.flags(),
        );
        let _ = (p.fin(), p.syn(), p.rst(), p.psh(), p.ack(), p.urg(), p.ece(), p.cwr());
        let _ = (p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload());
        let _ = (
            p.verify_checksum(v4, v4),
            p.verify_checksum(v6, v6),
            p.verify_checksum(v4, v6),
        );
        for o in p.options_iter().flatten() {
            let mut out = [0u8; 64];
            if let Some(rest) = o.emit(&mut out) {
                let n = 64 - rest.len();
                assert_eq!(n, o.buffer_len());
                if o != TcpOption::EndOfList {
                    assert_eq!(TcpOption::parse(&out[..n]).map(|(_, x)| x), Ok(o));
                }
            }
        }
    }
    if let Ok(p) = wire::UdpPacket::new_checked(b) {
        ok += 1;
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.len(),
            p.is_empty(),
            p.checksum(),
            p.payload(),
        );
        let _ = (
            p.verify_checksum(v4, v4),
            p.verify_checksum(v6, v6),
            p.verify_checksum(v6, v4),
        );
    }
    if let Ok(p) = wire::IcmpPacket::new_checked(b) {
        ok += 1;
        let _ = (
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.rest_of_header(),
            p.echo_ident(),
        );
        let _ = (p.echo_seq_no(), p.verify_checksum(), p.payload());
    }
    if let Ok(p) = wire::Icmpv6Packet::new_checked(b) {
        ok += 1;
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header());
        let _ = (p.verify_checksum(v6a, v6a), p.payload());
    }
    if let Ok(p) = wire::GrePacket::new_checked(b) {
        ok += 1;
        let _ = (
            p.checksum_present(),
            p.key_present(),
            p.seq_present(),
            p.version(),
            p.protocol_type(),
        );
        let _ = (
            p.header_len(),
            p.checksum(),
            p.key(),
            p.seq_number(),
            p.verify_checksum(),
            p.payload(),
        );
    }
    let mut rest = b;
    while let Ok((next, _)) = TcpOption::parse(rest) {
        if next.is_empty() {
            break;
        }
        rest = next;
    }
    ok
}

/// `parse`, then everything that consumes its result: the bounds it
/// promises, fingerprints and builders (on a copy). Returns whether `parse`
/// accepted the frame.
pub fn exercise_parse(frame: &[u8]) -> bool {
    let Ok(p) = parse(frame) else { return false };
    let (l3, l4, pay) = (
        usize::from(p.l3_offset),
        usize::from(p.l4_offset),
        usize::from(p.payload_offset),
    );
    assert!(l3 <= l4 && l4 <= pay, "{p:?}");
    assert!(l3 + usize::from(p.l3_len) <= frame.len(), "{p:?}");
    assert!(pay + usize::from(p.payload_len) <= l3 + usize::from(p.l3_len), "{p:?}");
    assert_eq!(p.payload(frame).len(), usize::from(p.payload_len));
    let _ = (tcp_fingerprint(frame, &p), udp_fingerprint(frame, &p));
    let mut out = [0u8; 256];
    let _ = build::tcp_reply(frame, &p, 1, 2, 0x12, 3, Some(1400), &mut out);
    let _ = build::arp_reply(frame, &p, [2; 6], &mut out);
    let g = GreParams {
        src_mac: [2; 6],
        dst_mac: [4; 6],
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: Some(1),
        ttl: 64,
    };
    let mut big = vec![0u8; frame.len() + 64];
    let _ = build::gre_encap(p.l3_bytes(frame), &g, &mut big);
    let mut copy = frame.to_vec();
    let _ = build::clamp_mss(&mut copy, &p, 1000);
    let _ = build::complete_l4_checksum(&mut copy, &p);
    let _ = build::icmp_too_big(frame, &p, p.l3_len.saturating_sub(1), &mut big);
    let _ = build::arp_sender(frame);
    // A summary of another frame must not make consumers panic either.
    let _ = (tcp_fingerprint(&frame[..frame.len() / 2], &p), udp_fingerprint(&[], &p));
    let _ = build::clamp_mss(&mut copy[..frame.len() / 3], &p, 1000);
    let _ = build::tcp_reply(&frame[..frame.len() / 2], &p, 1, 2, 0x12, 3, None, &mut out);
    let _ = build::icmp_too_big(&frame[..frame.len() / 2], &p, 0, &mut big);
    let _ = build::complete_l4_checksum(&mut copy[..frame.len() / 2], &p);
    true
}
