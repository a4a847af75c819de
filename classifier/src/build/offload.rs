//! Completing the L4 checksum that a local sender left to its NIC.
//!
//! With transmit checksum offload, Linux hands a TCP, UDP or ICMPv6 packet
//! to the driver as CHECKSUM_PARTIAL: the checksum field holds only the
//! pseudo-header sum and the hardware is to finish it. A packet that Moat
//! receives that way from a local sender (a TAP or AF_PACKET peer on the
//! same host) and then forwards, GRE-encapsulated, would leave with that
//! partial value, since no NIC finishes a checksum inside a tunnel, so
//! [`complete_l4_checksum`] computes it from scratch first.

use core::net::IpAddr;

use crate::parse::{Frag, Parsed, L3, L4};
use crate::wire::{checksum, IpProtocol};

/// Computes the full TCP, UDP or ICMPv6 checksum of the packet in `frame`
/// (parsed `p`) and writes it, whatever the checksum field holds now.
/// Returns false, leaving `frame` untouched, for other protocols (ICMPv4
/// included: Linux fills its checksum in software), for fragments (the
/// checksum covers the whole datagram, which one fragment does not hold),
/// for a packet cut short of its IP length, and when the pseudo-header's
/// destination is not the IP header's: behind an IPv4 source route option
/// or an IPv6 routing header with segments left (RFC 9293 §3.1, RFC 8200
/// §8.1).
///
/// A UDP result of 0 is sent as 0xffff, since 0 means "no checksum" over
/// IPv4 (RFC 768) and is forbidden over IPv6 (RFC 8200 §8.1).
pub fn complete_l4_checksum(frame: &mut [u8], p: &Parsed) -> bool {
    if p.frag != Frag::None {
        return false;
    }
    // (protocol, offset of the checksum field, shortest header)
    let (proto, at, min_len) = match (p.l4, p.l3) {
        (L4::Tcp(_), L3::Ipv4 | L3::Ipv6) => (IpProtocol::Tcp, 16, 20),
        (L4::Udp { .. }, L3::Ipv4 | L3::Ipv6) => (IpProtocol::Udp, 6, 8),
        (L4::Icmpv6 { .. }, L3::Ipv6) => (IpProtocol::Icmpv6, 2, 8),
        _ => return false,
    };
    let (l3, l4) = (usize::from(p.l3_offset), usize::from(p.l4_offset));
    let end = l3 + usize::from(p.l3_len);
    let direct = match frame.get(l3..l4) {
        Some(ip) if p.l3 == L3::Ipv4 => ip.get(20..).is_some_and(no_source_route_v4),
        Some(ip) => ip.get(40..).is_some_and(|ext| no_routing_v6(ip[6], ext)),
        None => false,
    };
    let Some(seg) = frame.get_mut(l4..end).filter(|s| s.len() >= min_len && direct) else {
        return false;
    };
    let pseudo = match (p.src_ip(), p.dst_ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => match u16::try_from(seg.len()) {
            Ok(len) => checksum::pseudo_header_v4(s, d, proto.into(), len),
            Err(_) => return false,
        },
        // At most 65535 bytes: `l3_len` is a u16.
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(s, d, proto.into(), seg.len() as u32),
        _ => return false,
    };
    seg[at..at + 2].fill(0);
    let mut c = checksum::finish(checksum::combine(&[pseudo, checksum::data(seg)]));
    if proto == IpProtocol::Udp && c == 0 {
        c = 0xffff;
    }
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Whether the IPv4 options `opts` are well formed and hold no loose or
/// strict source route (types 131 and 137, RFC 791 §3.1), after which the
/// header's destination is the next hop rather than the final one that the
/// pseudo-header needs.
fn no_source_route_v4(opts: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            0 => return true, // end of option list
            1 => i += 1,      // no-operation
            131 | 137 => return false,
            _ => match opts.get(i + 1) {
                Some(&len) if len >= 2 => i += usize::from(len),
                _ => return false,
            },
        }
    }
    true
}

/// Whether the IPv6 extension headers `ext` (first next-header `nh`) hold
/// no routing header with segments left (RFC 8200 §4.4): with one, the
/// pseudo-header's destination is the last address of the route, not the
/// header's (RFC 8200 §8.1). Lengths as in [`crate::wire::ipv6`].
fn no_routing_v6(mut nh: u8, ext: &[u8]) -> bool {
    let mut off = 0;
    while off < ext.len() {
        let Some(h) = ext.get(off..off + 4) else { return false };
        if nh == u8::from(IpProtocol::Ipv6Route) && h[3] != 0 {
            return false;
        }
        off += match nh {
            44 => 8,
            51 => (usize::from(h[1]) + 2) * 4,
            _ => (usize::from(h[1]) + 1) * 8,
        };
        nh = h[0];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::test_frames::*;
    use super::*;
    use crate::parse::parse;
    use crate::wire;

    /// `f` as Linux hands it to a driver under CHECKSUM_PARTIAL: the L4
    /// checksum field (at `at` in the segment) holds the pseudo-header sum.
    fn partial(f: &[u8], at: usize) -> Vec<u8> {
        let p = parse(f).unwrap();
        let len = p.l4_bytes(f).len();
        let pseudo = match (p.src_ip(), p.dst_ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(s, d, p.proto, len as u16),
            (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(s, d, p.proto, len as u32),
            _ => unreachable!(),
        };
        let mut g = f.to_vec();
        let o = usize::from(p.l4_offset) + at;
        g[o..o + 2].copy_from_slice(&pseudo.to_be_bytes());
        g
    }

    fn complete(f: &mut [u8]) -> bool {
        let p = parse(f).unwrap();
        complete_l4_checksum(f, &p)
    }

    fn l4_ok(f: &[u8]) -> bool {
        let p = parse(f).unwrap();
        let seg = p.l4_bytes(f);
        match (p.l4, p.src_ip(), p.dst_ip()) {
            (L4::Tcp(_), s, d) => wire::TcpPacket::new_checked(seg).unwrap().verify_checksum(s, d),
            (L4::Udp { .. }, s, d) => wire::UdpPacket::new_checked(seg).unwrap().verify_checksum(s, d),
            (L4::Icmpv6 { .. }, IpAddr::V6(s), IpAddr::V6(d)) => {
                wire::Icmpv6Packet::new_checked(seg).unwrap().verify_checksum(s, d)
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn tcp_udp_icmpv6_over_both_ips() {
        let frames = [
            (v4(&VLAN42, &[], 0x4000, 6, &tcp(b"GET / HTTP/1.1\r\n")), 16),
            (v4(&[], &[0x94, 4, 0, 0], 0, 17, &udp(b"odd")), 6),
            (v6(&VLAN42, 6, &[], &tcp(&bytes(33))), 16),
            (v6(&[], 0, &[17, 0, 1, 4, 0, 0, 0, 0], &udp(&bytes(100))), 6),
            (v6(&[], 58, &[], &icmp(128, 0, b"ping")), 2),
        ];
        for (f, at) in frames {
            let mut g = partial(&f, at);
            assert!(!l4_ok(&g));
            assert!(complete(&mut g));
            assert!(l4_ok(&g), "{f:02x?}");
            // Whatever the field held: garbage gives the same result.
            let mut h = f.clone();
            let o = usize::from(parse(&f).unwrap().l4_offset) + at;
            h[o..o + 2].copy_from_slice(&[0xde, 0xad]);
            assert!(complete(&mut h));
            assert_eq!(g, h);
        }
    }

    #[test]
    fn udp_zero_is_sent_as_ffff() {
        for v6 in [false, true] {
            let mk = |pay: &[u8]| {
                if v6 {
                    super::super::test_frames::v6(&[], 17, &[], &udp(pay))
                } else {
                    v4(&[], &[], 0, 17, &udp(pay))
                }
            };
            // Choose the first payload word so that the sum is 0xffff, i.e.
            // the computed checksum 0 (RFC 768 / RFC 8200 §8.1).
            let mut f = mk(&[0, 0]);
            assert!(complete(&mut f));
            let at = f.len() - 4;
            let c = u16::from_be_bytes([f[at], f[at + 1]]);
            let mut g = mk(&c.to_be_bytes());
            assert!(complete(&mut g));
            assert_eq!(&g[at..at + 2], &[0xff, 0xff], "v6: {v6}");
            assert!(l4_ok(&g));
        }
    }

    #[test]
    fn refusals_leave_the_frame_alone() {
        let lsrr = [131, 7, 4, 203, 0, 113, 1, 0]; // loose source route, then end
        let route = |left: u8| [17, 0, 4, left, 0, 0, 0, 0]; // routing header type 4
        let cases = [
            v4(&[], &[], 0, 1, &icmp(8, 0, b"ping")),
            v4(&[], &[], 0x2000, 17, &udp(&bytes(16))), // first fragment
            v4(&[], &[], 0x0010, 17, &bytes(24)),       // later fragment
            v4(&[], &lsrr, 0, 17, &udp(b"x")),
            v4(&[], &[0x94, 1, 0, 0], 0, 17, &udp(b"x")), // option length 1
            v6(&[], 43, &route(1), &udp(b"x")),
            v6(&[], 44, &[17, 0, 0, 1, 0, 0, 0, 9], &udp(b"x")), // fragment, M set
            v6(&[], 50, &[], &bytes(16)),                        // ESP
        ];
        for f in cases {
            let p = parse(&f).unwrap();
            let mut g = f.clone();
            assert!(!complete_l4_checksum(&mut g, &p), "{p:?}");
            assert_eq!(f, g);
        }
        let mut ok = v6(&[], 43, &route(0), &udp(b"x"));
        assert!(complete(&mut ok), "route with no segments left");
        assert!(l4_ok(&ok));
        // A summary of a longer frame (truncated packet) or a forged one.
        let f = v4(&[], &[], 0, 6, &tcp(&bytes(40)));
        let p = parse(&f).unwrap();
        let mut short = f[..f.len() - 1].to_vec();
        assert!(!complete_l4_checksum(&mut short, &p));
        let mut forged = p;
        forged.l3 = L3::Ipv6;
        assert!(!complete_l4_checksum(&mut f.clone(), &forged));
    }
}
