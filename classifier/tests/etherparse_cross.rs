//! Cross-checks of `classifier::parse` and the `classifier::wire` views
//! against etherparse 0.16, an independent implementation: packets are built
//! by etherparse (IPv4 with options, IPv6 with extension headers, TCP with
//! options, UDP, ICMP, ICMPv6, 802.1Q and QinQ), parsed by both, and compared
//! field by field, checksums included. Random headers come from proptest
//! strategies; the same frames, mutated, feed the no-panic properties, and
//! the builders' output is parsed back by etherparse.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::build::{self, GreParams};
use classifier::fingerprint::{tcp_fingerprint, udp_fingerprint};
use classifier::parse::{parse, Frag, L3, L4};
use classifier::wire::{self, TcpOption};
use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6Extensions, Ipv6Header, Ipv6RawExtHeader, LinkHeader, NetHeaders,
    PacketBuilder, PacketHeaders, TcpOptionElement, TransportHeader, VlanHeader, VlanId,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- packet specs

#[derive(Debug, Clone)]
enum Vlan {
    None,
    Single(u16),
    Double(u16, u16),
}

#[derive(Debug, Clone)]
enum Ip {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        ttl: u8,
        id: u16,
        df: bool,
        ecn: u8,
        options: Vec<u8>,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        hop: u8,
        tc: u8,
        hop_by_hop: bool,
    },
}

#[derive(Debug, Clone)]
enum Proto {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: Option<u32>,
        window: u16,
        syn: bool,
        psh: bool,
        urg: Option<u16>,
        opts: Vec<TcpOptionElement>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        id: u16,
        seq: u16,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    vlan: Vlan,
    ip: Ip,
    proto: Proto,
    payload: Vec<u8>,
    /// Bytes appended after the IP packet (Ethernet padding).
    trailer: Vec<u8>,
}

const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn build_frame(s: &Spec) -> Vec<u8> {
    let ip = match &s.ip {
        Ip::V4 {
            src,
            dst,
            ttl,
            id,
            df,
            ecn,
            options,
        } => {
            let mut h = Ipv4Header::new(0, *ttl, IpNumber::TCP, *src, *dst).unwrap();
            h.identification = *id;
            h.dont_fragment = *df;
            h.ecn = (*ecn).try_into().unwrap();
            h.options = Ipv4Options::try_from(&options[..]).unwrap();
            IpHeaders::Ipv4(h, Default::default())
        }
        Ip::V6 {
            src,
            dst,
            hop,
            tc,
            hop_by_hop,
        } => {
            let h = Ipv6Header {
                traffic_class: *tc,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: *hop,
                source: *src,
                destination: *dst,
            };
            let mut ext = Ipv6Extensions::default();
            if *hop_by_hop {
                ext.hop_by_hop_options = Some(Ipv6RawExtHeader::new_raw(IpNumber::TCP, &[1, 4, 0, 0, 0, 0]).unwrap());
            }
            IpHeaders::Ipv6(h, ext)
        }
    };
    let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    let b = match s.vlan {
        Vlan::None => b.ip(ip),
        Vlan::Single(v) => b.single_vlan(VlanId::try_new(v).unwrap()).ip(ip),
        Vlan::Double(o, i) => b
            .double_vlan(VlanId::try_new(o).unwrap(), VlanId::try_new(i).unwrap())
            .ip(ip),
    };
    let v6 = matches!(s.ip, Ip::V6 { .. });
    let mut out = Vec::new();
    match &s.proto {
        Proto::Tcp {
            sport,
            dport,
            seq,
            ack,
            window,
            syn,
            psh,
            urg,
            opts,
        } => {
            let mut t = b.tcp(*sport, *dport, *seq, *window);
            if *syn {
                t = t.syn();
            }
            if *psh {
                t = t.psh();
            }
            if let Some(a) = ack {
                t = t.ack(*a);
            }
            if let Some(u) = urg {
                t = t.urg(*u);
            }
            let t = t.options(opts).unwrap();
            t.write(&mut out, &s.payload).unwrap();
        }
        Proto::Udp { sport, dport } => b.udp(*sport, *dport).write(&mut out, &s.payload).unwrap(),
        Proto::Icmp { id, seq } if v6 => b.icmpv6_echo_request(*id, *seq).write(&mut out, &s.payload).unwrap(),
        Proto::Icmp { id, seq } => b.icmpv4_echo_request(*id, *seq).write(&mut out, &s.payload).unwrap(),
    }
    out.extend_from_slice(&s.trailer);
    out
}

// ------------------------------------------------------------------ strategies

fn vlan() -> impl Strategy<Value = Vlan> {
    prop_oneof![
        Just(Vlan::None),
        (0u16..4096).prop_map(Vlan::Single),
        (0u16..4096, 0u16..4096).prop_map(|(o, i)| Vlan::Double(o, i)),
    ]
}

fn ip() -> impl Strategy<Value = Ip> {
    let v4 = (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        0u8..4,
        (0usize..=10).prop_map(|n| vec![1u8; n * 4]), // NOP options, 0..40 bytes
    )
        .prop_map(|(src, dst, ttl, id, df, ecn, options)| Ip::V4 {
            src,
            dst,
            ttl,
            id,
            df,
            ecn,
            options,
        });
    let v6 = (
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(src, dst, hop, tc, hop_by_hop)| Ip::V6 {
            src,
            dst,
            hop,
            tc,
            hop_by_hop,
        });
    prop_oneof![v4, v6]
}

fn tcp_options() -> impl Strategy<Value = Vec<TcpOptionElement>> {
    (
        proptest::option::of(any::<u16>()),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        proptest::option::of(0u8..=14),
        0usize..3,
    )
        .prop_map(|(mss, sok, ts, ws, nops)| {
            let mut v = Vec::new();
            if let Some(m) = mss {
                v.push(TcpOptionElement::MaximumSegmentSize(m));
            }
            if sok {
                v.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
            }
            if let Some((a, b)) = ts {
                v.push(TcpOptionElement::Timestamp(a, b));
            }
            v.resize(v.len() + nops, TcpOptionElement::Noop);
            if let Some(w) = ws {
                v.push(TcpOptionElement::WindowScale(w));
            }
            v
        })
}

fn proto() -> impl Strategy<Value = Proto> {
    let tcp = (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
        ),
        (
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<u16>()),
        ),
        tcp_options(),
    )
        .prop_map(|((sport, dport, seq, ack), (window, syn, psh, urg), opts)| Proto::Tcp {
            sport,
            dport,
            seq,
            ack,
            window,
            syn,
            psh,
            urg,
            opts,
        });
    prop_oneof![
        tcp,
        (any::<u16>(), any::<u16>()).prop_map(|(sport, dport)| Proto::Udp { sport, dport }),
        (any::<u16>(), any::<u16>()).prop_map(|(id, seq)| Proto::Icmp { id, seq }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        vlan(),
        ip(),
        proto(),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(vlan, ip, proto, payload, trailer)| Spec {
            vlan,
            ip,
            proto,
            payload,
            trailer,
        })
}

/// A TCP SYN spec (for builders and fingerprints).
fn syn_spec() -> impl Strategy<Value = Spec> {
    (spec(), any::<u16>(), any::<u16>(), any::<u32>(), tcp_options()).prop_map(|(mut s, sport, dport, seq, opts)| {
        s.proto = Proto::Tcp {
            sport,
            dport,
            seq,
            ack: None,
            window: 64240,
            syn: true,
            psh: false,
            urg: None,
            opts,
        };
        s.payload.clear();
        s
    })
}

// ------------------------------------------------------------------ comparison

fn ours_to_etherparse(o: TcpOption<'_>) -> Option<TcpOptionElement> {
    Some(match o {
        TcpOption::NoOperation => TcpOptionElement::Noop,
        TcpOption::MaxSegmentSize(m) => TcpOptionElement::MaximumSegmentSize(m),
        TcpOption::WindowScale(w) => TcpOptionElement::WindowScale(w),
        TcpOption::SackPermitted => TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOption::Timestamps { tsval, tsecr } => TcpOptionElement::Timestamp(tsval, tsecr),
        _ => return None,
    })
}

/// Parses `frame` with `parse`, the views and etherparse, and checks that
/// all three agree on every field.
fn agree(frame: &[u8]) {
    let p = parse(frame).expect("parse");
    let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse");

    // L2
    let eth = wire::EthernetFrame::new_checked(frame).unwrap();
    let Some(LinkHeader::Ethernet2(e)) = &h.link else {
        panic!("no Ethernet header")
    };
    assert_eq!((eth.src_addr(), eth.dst_addr()), (e.source, e.destination));
    let (n, vid) = match &h.vlan {
        None => (0, 0),
        Some(VlanHeader::Single(v)) => (1, v.vlan_id.value()),
        Some(VlanHeader::Double(d)) => {
            assert_eq!(eth.vlan_id(1), Some(d.inner.vlan_id.value()));
            (2, d.outer.vlan_id.value())
        }
    };
    assert_eq!((p.vlans, p.vlan_id), (n, vid));
    assert_eq!(eth.vlan_count(), usize::from(n));
    assert_eq!(eth.vlan_id(0).unwrap_or(0), vid);
    assert_eq!(usize::from(p.l3_offset), eth.header_len());
    let l3 = p.l3_bytes(frame);

    // L3
    match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            let v = wire::Ipv4Packet::new_checked(l3).unwrap();
            assert_eq!(p.l3, L3::Ipv4);
            assert_eq!(p.src_ip(), IpAddr::V4(Ipv4Addr::from(ip.source)));
            assert_eq!(p.dst_ip(), IpAddr::V4(Ipv4Addr::from(ip.destination)));
            assert_eq!((v.src_addr(), v.dst_addr()), (ip.source.into(), ip.destination.into()));
            assert_eq!((p.ttl, v.ttl()), (ip.time_to_live, ip.time_to_live));
            assert_eq!((p.ip_id, v.ident()), (ip.identification, ip.identification));
            assert_eq!((p.df, v.dont_frag()), (ip.dont_fragment, ip.dont_fragment));
            assert_eq!(v.more_frags(), ip.more_fragments);
            assert_eq!(v.frag_offset(), ip.fragment_offset.value() * 8);
            assert_eq!((p.ecn, v.ecn()), (ip.ecn.value(), ip.ecn.value()));
            assert_eq!(v.dscp(), ip.dscp.value());
            assert_eq!(usize::from(p.ip_options_len()), ip.options.len());
            assert_eq!(v.options(), &ip.options[..]);
            assert_eq!(usize::from(p.ip_header_len), ip.header_len());
            assert_eq!(v.header_len(), ip.header_len());
            assert_eq!((p.l3_len, v.total_len()), (ip.total_len, ip.total_len));
            assert_eq!((p.proto, u8::from(v.protocol())), (ip.protocol.0, ip.protocol.0));
            assert_eq!(v.checksum(), ip.header_checksum);
            assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
            assert!(v.verify_checksum());
            assert_eq!(p.frag, Frag::None);
        }
        Some(NetHeaders::Ipv6(ip, ext)) => {
            let v = wire::Ipv6Packet::new_checked(l3).unwrap();
            assert_eq!(p.l3, L3::Ipv6);
            assert_eq!(p.src_ip(), IpAddr::V6(Ipv6Addr::from(ip.source)));
            assert_eq!(p.dst_ip(), IpAddr::V6(Ipv6Addr::from(ip.destination)));
            assert_eq!((v.src_addr(), v.dst_addr()), (ip.source.into(), ip.destination.into()));
            assert_eq!((p.ttl, v.hop_limit()), (ip.hop_limit, ip.hop_limit));
            assert_eq!(v.traffic_class(), ip.traffic_class);
            assert_eq!((p.ecn, v.ecn()), (ip.traffic_class & 3, ip.traffic_class & 3));
            assert_eq!(v.flow_label(), ip.flow_label.value());
            assert_eq!(v.payload_len(), ip.payload_length);
            assert_eq!(usize::from(p.l3_len), 40 + usize::from(ip.payload_length));
            assert_eq!((p.ip_id, p.df, p.ip_options_len(), p.ip_header_len), (0, false, 0, 40));
            let w = v.ext_walk().unwrap();
            assert_eq!(usize::from(p.l4_offset), usize::from(p.l3_offset) + w.l4_offset);
            assert_eq!(w.l4_offset, 40 + ext.header_len());
            assert_eq!(w.count, u8::from(ext.hop_by_hop_options.is_some()));
            assert_eq!(p.proto, u8::from(w.next_header));
        }
        None => panic!("no IP header"),
    }

    // L4
    let l4 = p.l4_bytes(frame);
    match &h.transport {
        Some(TransportHeader::Tcp(t)) => {
            let v = wire::TcpPacket::new_checked(l4).unwrap();
            let L4::Tcp(i) = p.l4 else { panic!("{:?}", p.l4) };
            assert_eq!((i.sport, v.src_port()), (t.source_port, t.source_port));
            assert_eq!((i.dport, v.dst_port()), (t.destination_port, t.destination_port));
            assert_eq!((i.seq, v.seq_number()), (t.sequence_number, t.sequence_number));
            assert_eq!(
                (i.ack, v.ack_number()),
                (t.acknowledgment_number, t.acknowledgment_number)
            );
            assert_eq!((i.window, v.window_len()), (t.window_size, t.window_size));
            assert_eq!((i.urgent, v.urgent_at()), (t.urgent_pointer, t.urgent_pointer));
            assert_eq!(usize::from(i.header_len), t.header_len());
            assert_eq!(v.header_len(), t.header_len());
            let flags = [t.fin, t.syn, t.rst, t.psh, t.ack, t.urg, t.ece, t.cwr];
            let bits: u8 = flags.iter().enumerate().map(|(k, f)| u8::from(*f) << k).sum();
            assert_eq!((i.flags, v.flags()), (bits, bits));
            assert_eq!((v.syn(), v.ack(), v.fin(), v.rst()), (t.syn, t.ack, t.fin, t.rst));
            assert_eq!((v.psh(), v.urg(), v.ece(), v.cwr()), (t.psh, t.urg, t.ece, t.cwr));
            assert_eq!(v.checksum(), t.checksum);
            assert!(v.verify_checksum(p.src_ip(), p.dst_ip()));
            let theirs: Vec<_> = t.options.elements_iter().map(|o| o.unwrap()).collect();
            let ours: Vec<_> = v
                .options_iter()
                .map(|o| o.unwrap())
                .take_while(|o| *o != TcpOption::EndOfList)
                .map(|o| ours_to_etherparse(o).unwrap())
                .collect();
            assert_eq!(ours, theirs);
        }
        Some(TransportHeader::Udp(u)) => {
            let v = wire::UdpPacket::new_checked(l4).unwrap();
            assert_eq!(
                p.l4,
                L4::Udp {
                    sport: u.source_port,
                    dport: u.destination_port
                }
            );
            assert_eq!((v.src_port(), v.dst_port()), (u.source_port, u.destination_port));
            assert_eq!((v.len(), v.checksum()), (u.length, u.checksum));
            assert!(v.verify_checksum(p.src_ip(), p.dst_ip()));
            assert_eq!(v.payload(), p.payload(frame));
        }
        Some(TransportHeader::Icmpv4(c)) => {
            let v = wire::IcmpPacket::new_checked(l4).unwrap();
            let b = c.to_bytes();
            assert_eq!(p.l4, L4::Icmp { ty: b[0], code: b[1] });
            assert_eq!((v.msg_type(), v.msg_code(), v.checksum()), (b[0], b[1], c.checksum));
            assert_eq!(v.rest_of_header().to_be_bytes(), b[4..8]);
            assert!(v.verify_checksum());
        }
        Some(TransportHeader::Icmpv6(c)) => {
            let v = wire::Icmpv6Packet::new_checked(l4).unwrap();
            let b = c.to_bytes();
            assert_eq!(p.l4, L4::Icmpv6 { ty: b[0], code: b[1] });
            assert_eq!((v.msg_type(), v.msg_code(), v.checksum()), (b[0], b[1], c.checksum));
            let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src_ip(), p.dst_ip()) else {
                panic!()
            };
            assert!(v.verify_checksum(s, d));
        }
        None => panic!("no transport header"),
    }
    assert_eq!(p.payload(frame), h.payload.slice());
    assert_eq!(
        usize::from(p.payload_offset),
        frame.len() - h.payload.slice().len() - trailer_len(&p, frame)
    );
}

/// Bytes after the IP packet.
fn trailer_len(p: &classifier::Parsed, frame: &[u8]) -> usize {
    frame.len() - usize::from(p.l3_offset) - usize::from(p.l3_len)
}

// ------------------------------------------------------------------ fixed cases

fn fixed(vlan: Vlan, ip: Ip, proto: Proto) -> Vec<u8> {
    build_frame(&Spec {
        vlan,
        ip,
        proto,
        payload: b"hello".to_vec(),
        trailer: vec![0; 6],
    })
}

fn v4() -> Ip {
    Ip::V4 {
        src: [192, 0, 2, 1],
        dst: [198, 51, 100, 10],
        ttl: 57,
        id: 0x1c46,
        df: true,
        ecn: 0,
        options: vec![],
    }
}

fn v6() -> Ip {
    Ip::V6 {
        src: "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
        dst: "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets(),
        hop: 58,
        tc: 0x02,
        hop_by_hop: true,
    }
}

fn linux_syn_proto() -> Proto {
    Proto::Tcp {
        sport: 50000,
        dport: 443,
        seq: 0x0102_0304,
        ack: None,
        window: 64240,
        syn: true,
        psh: false,
        urg: None,
        opts: vec![
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(0x000a_8b2c, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ],
    }
}

#[test]
fn every_combination_agrees() {
    let protos = [
        linux_syn_proto(),
        Proto::Udp { sport: 53, dport: 5353 },
        Proto::Icmp { id: 7, seq: 1 },
    ];
    let mut n = 0;
    for vlan in [Vlan::None, Vlan::Single(42), Vlan::Double(100, 200)] {
        for ip in [v4(), v6()] {
            for proto in &protos {
                agree(&fixed(vlan.clone(), ip.clone(), proto.clone()));
                n += 1;
            }
        }
    }
    assert_eq!(n, 18);
}

#[test]
fn ipv4_options_agree() {
    let ip = Ip::V4 {
        src: [10, 0, 0, 1],
        dst: [10, 0, 0, 2],
        ttl: 1,
        id: 0,
        df: false,
        ecn: 3,
        options: vec![0x94, 0x04, 0, 0, 1, 1, 1, 0],
    };
    let f = fixed(Vlan::Single(7), ip, linux_syn_proto());
    agree(&f);
    assert_eq!(parse(&f).unwrap().ip_options_len(), 8);
}

#[test]
fn fingerprint_of_an_etherparse_syn() {
    let f = fixed(Vlan::None, v4(), linux_syn_proto());
    let p = parse(&f).unwrap();
    let fp = tcp_fingerprint(&f, &p).unwrap();
    assert_eq!(fp.to_string(), "4:64:0:1460:64240,7:mss,sok,ts,nop,ws:df,id+");
    let f = fixed(Vlan::None, v6(), linux_syn_proto());
    let fp = tcp_fingerprint(&f, &parse(&f).unwrap()).unwrap();
    assert_eq!(fp.to_string(), "6:64:0:1460:64240,7:mss,sok,ts,nop,ws:ecn");
}

// ------------------------------------------------------------------ builders

fn tcp_checksum_ok_etherparse(frame: &[u8]) -> bool {
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let Some(TransportHeader::Tcp(t)) = &h.transport else {
        panic!("not TCP")
    };
    let payload = h.payload.slice();
    let c = match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
            t.calc_checksum_ipv4(ip, payload).unwrap()
        }
        Some(NetHeaders::Ipv6(ip, _)) => t.calc_checksum_ipv6(ip, payload).unwrap(),
        None => panic!("no IP"),
    };
    c == t.checksum
}

fn gre_params(key: Option<u32>) -> GreParams {
    GreParams {
        src_mac: [2, 0, 0, 0, 0, 0x10],
        dst_mac: [2, 0, 0, 0, 0, 0x20],
        tunnel_src: Ipv4Addr::new(10, 1, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 1, 0, 2),
        key,
        ttl: 63,
    }
}

/// Checks a GRE frame with etherparse: outer headers (etherparse does not
/// decode GRE, so the 4/8 GRE bytes are checked by hand) and the inner packet.
fn check_gre(out: &[u8], inner: &[u8], key: Option<u32>) {
    let h = PacketHeaders::from_ethernet_slice(out).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
        panic!("outer not IPv4")
    };
    assert_eq!(ip.protocol, IpNumber::GRE);
    assert!(ip.dont_fragment && !ip.more_fragments);
    assert_eq!(ip.identification, 0);
    assert_eq!(ip.time_to_live, 63);
    assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
    assert_eq!(
        usize::from(ip.total_len),
        20 + 4 + 4 * usize::from(key.is_some()) + inner.len()
    );
    let inner_ecn = if inner[0] >> 4 == 4 {
        inner[1] & 3
    } else {
        (inner[1] >> 4) & 3
    };
    assert_eq!(ip.ecn.value(), inner_ecn);
    let gre = h.payload.slice();
    let proto: u16 = if inner[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
    assert_eq!(
        u16::from_be_bytes([gre[0], gre[1]]),
        if key.is_some() { 0x2000 } else { 0 }
    );
    assert_eq!(u16::from_be_bytes([gre[2], gre[3]]), proto);
    let body = match key {
        Some(k) => {
            assert_eq!(u32::from_be_bytes([gre[4], gre[5], gre[6], gre[7]]), k);
            &gre[8..]
        }
        None => &gre[4..],
    };
    assert_eq!(body, inner);
    let inner_h = PacketHeaders::from_ip_slice(body).unwrap();
    assert!(inner_h.net.is_some());
}

#[test]
fn arp_reply_bytes() {
    // etherparse 0.16 has no ARP: compare with a hand-written reply.
    let req: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // request
        0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 1, // sender
        0, 0, 0, 0, 0, 0, 192, 0, 2, 10, // target
    ];
    let mac = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let mut out = [0u8; 64];
    let n = build::arp_reply(&req, &parse(&req).unwrap(), mac, &mut out).unwrap();
    let mut want = [0u8; 60];
    want[..42].copy_from_slice(&[
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x08, 0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // reply
        0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 192, 0, 2, 10, // sender: us
        0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 1, // target: the requester
    ]);
    assert_eq!(&out[..n], &want[..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_packets_agree(s in spec()) {
        agree(&build_frame(&s));
    }

    #[test]
    fn tcp_reply_parses_back(s in syn_spec(), seq: u32, ack: u32, window: u16, mss in proptest::option::of(536u16..9000)) {
        let req = build_frame(&s);
        let p = parse(&req).unwrap();
        let t = *p.tcp().unwrap();
        let mut out = [0u8; 256];
        let n = build::tcp_reply(&req, &p, seq, ack, 0x12, window, mss, &mut out).unwrap();
        let out = &out[..n];
        prop_assert!(tcp_checksum_ok_etherparse(out));
        let h = PacketHeaders::from_ethernet_slice(out).unwrap();
        let Some(TransportHeader::Tcp(r)) = &h.transport else { panic!() };
        prop_assert_eq!((r.source_port, r.destination_port), (t.dport, t.sport));
        prop_assert_eq!((r.sequence_number, r.acknowledgment_number), (seq, ack));
        prop_assert!(r.syn && r.ack && !r.rst && !r.fin);
        prop_assert_eq!(r.window_size, window);
        let want: Vec<_> = mss.map(TcpOptionElement::MaximumSegmentSize).into_iter().collect();
        let got: Vec<_> = r.options.elements_iter().map(|o| o.unwrap()).collect();
        prop_assert_eq!(got, want);
        let rp = parse(out).unwrap();
        prop_assert_eq!((rp.src_ip(), rp.dst_ip(), rp.ttl, rp.vlans, rp.vlan_id), (p.dst_ip(), p.src_ip(), 64, p.vlans, p.vlan_id));
        match &h.net {
            Some(NetHeaders::Ipv4(ip, _)) => prop_assert!(ip.dont_fragment && ip.identification == 0),
            Some(NetHeaders::Ipv6(ip, _)) => prop_assert_eq!(ip.hop_limit, 64),
            None => panic!(),
        }
        prop_assert_eq!(&out[..6], &req[6..12]);
        prop_assert_eq!(&out[6..12], &req[..6]);
    }

    #[test]
    fn gre_encap_parses_back(s in spec(), key in proptest::option::of(any::<u32>())) {
        let frame = build_frame(&s);
        let p = parse(&frame).unwrap();
        let inner = p.l3_bytes(&frame);
        let g = gre_params(key);
        let mut out = vec![0u8; inner.len() + build::gre_overhead(key.is_some())];
        let n = build::gre_encap(inner, &g, &mut out).unwrap();
        check_gre(&out[..n], inner, key);
        // In place gives the same bytes.
        let mut buf = vec![0u8; 64 + inner.len()];
        buf[64..].copy_from_slice(inner);
        let start = build::gre_encap_in_place(&mut buf, 64, inner.len(), &g).unwrap();
        prop_assert_eq!(&buf[start..], &out[..n]);
    }

    #[test]
    fn clamp_mss_keeps_checksum(s in syn_spec(), max in 500u16..2000) {
        let mut f = build_frame(&s);
        let p = parse(&f).unwrap();
        let before = tcp_fingerprint(&f, &p).unwrap().mss;
        let changed = build::clamp_mss(&mut f, &p, max);
        prop_assert_eq!(changed, before.is_some_and(|m| m > max));
        prop_assert!(tcp_checksum_ok_etherparse(&f));
        let after = tcp_fingerprint(&f, &parse(&f).unwrap()).unwrap().mss;
        prop_assert_eq!(after, before.map(|m| m.min(max)));
    }

    #[test]
    fn fingerprints_follow_the_headers(s in syn_spec()) {
        let f = build_frame(&s);
        let p = parse(&f).unwrap();
        let fp = tcp_fingerprint(&f, &p).unwrap();
        prop_assert_eq!(udp_fingerprint(&f, &p), None);
        let Proto::Tcp { opts, .. } = &s.proto else { panic!() };
        let mss = opts.iter().find_map(|o| match o { TcpOptionElement::MaximumSegmentSize(m) => Some(*m), _ => None });
        let ws = opts.iter().find_map(|o| match o { TcpOptionElement::WindowScale(w) => Some(*w), _ => None });
        prop_assert_eq!((fp.mss, fp.wscale, fp.window), (mss, ws, 64240));
        // The text form round-trips.
        let text = fp.to_string();
        prop_assert_eq!(text.parse::<classifier::fingerprint::TcpFingerprint>().unwrap(), fp);
    }
}

mod common;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Valid packets with a few bytes changed and possibly truncated: no
    /// panic anywhere, and the documented bounds of `Parsed` hold.
    #[test]
    fn mutated_packets_never_panic(
        s in spec(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate: bool,
    ) {
        let mut f = build_frame(&s);
        for (i, v) in edits {
            let i = i.index(f.len());
            f[i] = v;
        }
        if truncate {
            f.truncate(cut.index(f.len() + 1));
        }
        common::exercise_parse(&f);
        for start in [0, 14, 18, 22, 34, 38, 42, 54, 58, 62] {
            if let Some(b) = f.get(start..) {
                common::exercise_views(b);
            }
        }
    }
}
