//! Bodies of the fuzz targets; `fuzz_targets/*.rs` are one-line wrappers.
//!
//! In this file, one function per wire view: each wraps the input with
//! `new_checked` and, when that succeeds, calls every accessor of the view.
//! The contract under test (classifier/src/wire/mod.rs): once `new_checked`
//! succeeds no accessor panics; `parse` never panics and the offsets it
//! returns lie within the frame.
//!
//! The other targets live in their own modules: [`classify`] (the stateful
//! packet path over a sequence of frames, input format in [`records`]),
//! [`builders`], [`fingerprint`] (`fingerprint` and `fp_rules`), [`pcap`] and
//! [`l7`] (`http`, `tls`, `reassembly`, `a2s`), [`auth`] (`redirect`,
//! `auth_classify`).
//! [`alloc_limit`] is the counting allocator that bounds `pcap`'s
//! allocations; [`seeds`] writes the seed corpora that need Rust to make.
//!
//! `black_box` keeps the optimiser from dropping accessors whose results are
//! unused.

pub mod alloc_limit;
pub mod auth;
pub mod builders;
pub mod classify;
pub mod fingerprint;
pub mod l7;
pub mod pcap;
pub mod records;
pub mod seeds;

use core::hint::black_box;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::build::{self, GreParams};
use classifier::fingerprint::{tcp_fingerprint, udp_fingerprint};
use classifier::parse::parse;
use classifier::wire::{self, TcpOption};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

pub fn ethernet(b: &[u8]) {
    let Ok(f) = wire::EthernetFrame::new_checked(b) else {
        return;
    };
    black_box((
        f.dst_addr(),
        f.src_addr(),
        f.vlan_count(),
        f.header_len(),
        f.ethertype(),
    ));
    for i in 0..=wire::MAX_VLANS {
        black_box((f.vlan_tpid(i), f.vlan_tci(i), f.vlan_id(i), f.vlan_pcp(i)));
    }
    assert_eq!(f.header_len() + f.payload().len(), b.len());
}

pub fn arp(b: &[u8]) {
    let Ok(a) = wire::ArpPacket::new_checked(b) else { return };
    black_box((
        a.hardware_type(),
        a.protocol_type(),
        a.hardware_len(),
        a.protocol_len(),
        a.operation(),
    ));
    black_box((a.source_hardware_addr(), a.source_protocol_addr()));
    black_box((a.target_hardware_addr(), a.target_protocol_addr()));
}

pub fn ipv4(b: &[u8]) {
    let Ok(p) = wire::Ipv4Packet::new_checked(b) else {
        return;
    };
    black_box((p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident()));
    black_box((
        p.dont_frag(),
        p.more_frags(),
        p.frag_offset(),
        p.ttl(),
        p.protocol(),
        p.checksum(),
    ));
    black_box((
        p.src_addr(),
        p.dst_addr(),
        p.verify_checksum(),
        p.options(),
        p.payload(),
    ));
}

pub fn ipv6(b: &[u8]) {
    let Ok(p) = wire::Ipv6Packet::new_checked(b) else {
        return;
    };
    black_box((p.version(), p.traffic_class(), p.ecn(), p.flow_label(), p.payload_len()));
    black_box((p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr(), p.payload()));
    if let Ok(e) = p.ext_walk() {
        assert!(e.l4_offset <= wire::ipv6::HEADER_LEN + p.payload().len());
        black_box(e);
    }
}

pub fn tcp(b: &[u8]) {
    // The option cursor on its own, over the raw input.
    let mut rest = b;
    while let Ok((next, o)) = TcpOption::parse(rest) {
        black_box(o.buffer_len());
        if next.is_empty() {
            break;
        }
        rest = next;
    }
    let Ok(p) = wire::TcpPacket::new_checked(b) else { return };
    black_box((
        p.src_port(),
        p.dst_port(),
        p.seq_number(),
        p.ack_number(),
        p.header_len(),
        p.flags(),
    ));
    black_box((p.fin(), p.syn(), p.rst(), p.psh(), p.ack(), p.urg(), p.ece(), p.cwr()));
    black_box((p.window_len(), p.checksum(), p.urgent_at(), p.options(), p.payload()));
    black_box((
        p.verify_checksum(V4, V4),
        p.verify_checksum(V6, V6),
        p.verify_checksum(V4, V6),
    ));
    for o in p.options_iter().flatten() {
        // Emitting what was parsed reproduces it.
        let mut out = [0u8; 64];
        if let Some(left) = o.emit(&mut out) {
            let n = 64 - left.len();
            if o != TcpOption::EndOfList {
                assert_eq!(TcpOption::parse(&out[..n]).map(|(_, x)| x), Ok(o));
            }
        }
    }
}

pub fn udp(b: &[u8]) {
    let Ok(p) = wire::UdpPacket::new_checked(b) else { return };
    black_box((
        p.src_port(),
        p.dst_port(),
        p.len(),
        p.is_empty(),
        p.checksum(),
        p.payload(),
    ));
    black_box((
        p.verify_checksum(V4, V4),
        p.verify_checksum(V6, V6),
        p.verify_checksum(V6, V4),
    ));
}

pub fn icmp(b: &[u8]) {
    if let Ok(p) = wire::IcmpPacket::new_checked(b) {
        black_box((
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.rest_of_header(),
            p.echo_ident(),
        ));
        black_box((p.echo_seq_no(), p.verify_checksum(), p.payload()));
    }
    if let Ok(p) = wire::Icmpv6Packet::new_checked(b) {
        black_box((p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header()));
        black_box((
            p.verify_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED),
            p.payload(),
        ));
    }
}

pub fn gre(b: &[u8]) {
    let Ok(p) = wire::GrePacket::new_checked(b) else { return };
    black_box((
        p.checksum_present(),
        p.key_present(),
        p.seq_present(),
        p.version(),
        p.protocol_type(),
    ));
    black_box((
        p.header_len(),
        p.checksum(),
        p.key(),
        p.seq_number(),
        p.verify_checksum(),
        p.payload(),
    ));
}

/// `parse`, the bounds it promises, and everything that consumes its result.
pub fn parse_frame(frame: &[u8]) {
    let Ok(p) = parse(frame) else { return };
    let (l3, l4, pay) = (
        usize::from(p.l3_offset),
        usize::from(p.l4_offset),
        usize::from(p.payload_offset),
    );
    let l3_end = l3 + usize::from(p.l3_len);
    assert!(l3 <= l4 && l4 <= pay && l3_end <= frame.len());
    assert!(pay + usize::from(p.payload_len) <= l3_end);
    black_box((tcp_fingerprint(frame, &p), udp_fingerprint(frame, &p)));
    let mut out = [0u8; 256];
    black_box(build::tcp_reply(frame, &p, 1, 2, 0x12, 3, Some(1400), &mut out));
    black_box(build::arp_reply(frame, &p, [2; 6], &mut out));
    let g = GreParams {
        src_mac: [2; 6],
        dst_mac: [4; 6],
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: Some(1),
        ttl: 64,
    };
    let mut big = vec![0u8; frame.len() + build::gre_overhead(true)];
    black_box(build::gre_encap(p.l3_bytes(frame), &g, &mut big));
    let mut copy = frame.to_vec();
    black_box(build::clamp_mss(&mut copy, &p, 1000));
    black_box(build::complete_l4_checksum(&mut copy, &p));
    black_box(build::icmp_too_big(frame, &p, p.l3_len.saturating_sub(1), &mut big));
    black_box(build::arp_sender(frame));
}
