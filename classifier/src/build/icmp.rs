//! ICMP "packet too big" errors: what Moat answers when a packet for a
//! service does not fit into the origin's GRE tunnel, so that the sender's
//! path MTU discovery (RFC 1191 for IPv4, RFC 8201 for IPv6) lowers its
//! packet size instead of retransmitting into a black hole.
//!
//! The error goes back out the port the packet came in on, like
//! [`super::tcp_reply`]: the L2 header as received with the MACs swapped
//! (VLAN tags kept), IP source = the packet's destination (the VIP),
//! destination = its source, TTL / hop limit [`REPLY_TTL`].
//!
//! `None` whenever an ICMP error must not be sent (RFC 1122 §3.2.2 for IPv4,
//! RFC 4443 §2.4 (e) for IPv6), and for caller errors: a packet that fits
//! the MTU, an MTU below the protocol's minimum, a summary that does not
//! match the frame, or an `out` too small.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{swap_macs, ETH_MIN_FRAME, REPLY_TTL};
use crate::parse::{Frag, Parsed, L3, L4};
use crate::wire::{self, icmp, icmpv6, IpProtocol};

/// Smallest next-hop MTU an IPv4 error may carry: every IPv4 module must
/// pass a 68-byte datagram unfragmented (RFC 791 §3.2, "Fragmentation"),
/// and RFC 1191 §3 never lowers a path MTU below it.
pub const MIN_MTU_V4: u16 = 68;
/// Smallest MTU an IPv6 Packet Too Big may carry: the IPv6 minimum link MTU
/// (RFC 8200 §5), below which RFC 8201 §4 forbids lowering a path MTU.
pub const MIN_MTU_V6: u16 = 1280;

/// ICMPv4 destination unreachable code 4, "fragmentation needed and DF
/// set" (RFC 792).
const CODE_FRAG_NEEDED: u8 = 4;
/// Bytes of the invoking datagram's data quoted after its IP header
/// (RFC 792: "Internet Header + 64 bits of Original Data Datagram").
const V4_QUOTED_DATA: usize = 8;
/// DSCP CS6 (precedence 6, "internetwork control"), which RFC 1812
/// §4.3.2.5 asks of destination unreachable errors.
const DSCP_CS6: u8 = 48;
/// Most bytes of the invoking packet an ICMPv6 error quotes: the error must
/// not exceed the IPv6 minimum MTU (RFC 4443 §2.4 (c)): 1280 - 40 - 8.
pub const V6_MAX_QUOTE: usize = MIN_MTU_V6 as usize - wire::ipv6::HEADER_LEN - icmpv6::HEADER_LEN;

/// The ICMP error telling the sender of `frame` (parsed `p`), which Moat
/// could not forward in one piece, that the path MTU is `mtu`; written into
/// `out`, returning the frame length (at least [`ETH_MIN_FRAME`]).
///
/// - IPv4: type 3 code 4 with the next-hop MTU (RFC 1191 §4), quoting the
///   original IP header and the first 8 bytes of its data (RFC 792). Only
///   for a packet with DF set; never for an ICMP error (or an ICMP type it
///   does not know), a non-first fragment, or a source or destination that
///   is not one host (RFC 1122 §3.2.2); never for a link-layer broadcast.
/// - IPv6: Packet Too Big (type 2) with the MTU (RFC 4443 §3.2), quoting as
///   much of the packet as fits in `out` and in [`V6_MAX_QUOTE`], but at
///   least its headers and the first 8 bytes after them (what a sender needs
///   to find the flow). Never for an ICMPv6 error (types below 128) or a
///   redirect (RFC 4443 §2.4 (e.1), (e.2)), nor for an unspecified,
///   loopback or multicast source (e.6). A multicast destination is refused
///   too: it would be the error's source, which must be unicast (§2.2).
///
/// `None` as well when the packet would fit (`l3_len <= mtu`) or `mtu` is
/// below [`MIN_MTU_V4`] / [`MIN_MTU_V6`].
pub fn icmp_too_big(frame: &[u8], p: &Parsed, mtu: u16, out: &mut [u8]) -> Option<usize> {
    let l2 = usize::from(p.l3_offset);
    if l2 < wire::ethernet::HEADER_LEN {
        return None;
    }
    let l2_hdr = frame.get(..l2)?;
    let invoking = p.l3_bytes(frame);
    // Also catches a summary of another frame: `l3_bytes` is then empty.
    if invoking.len() != usize::from(p.l3_len) || invoking.len() <= usize::from(mtu) {
        return None;
    }
    match (p.l3, p.src_ip(), p.dst_ip()) {
        (L3::Ipv4, IpAddr::V4(client), IpAddr::V4(vip)) => {
            let ok = p.df
                && p.frag != Frag::Later
                && mtu >= MIN_MTU_V4
                && !icmp_error_v4(p)
                && one_host_v4(client)
                && one_host_v4(vip)
                && l2_hdr[0] & 1 == 0; // group bit of the destination MAC
            if !ok {
                return None;
            }
            let quote = usize::from(p.ip_header_len) + V4_QUOTED_DATA;
            let quote = invoking.get(..quote.min(invoking.len()))?;
            too_big_v4(l2_hdr, quote, client, vip, mtu, out)
        }
        (L3::Ipv6, IpAddr::V6(client), IpAddr::V6(vip)) => {
            if mtu < MIN_MTU_V6 || icmp_error_v6(p) || !one_host_v6(client) || !one_host_v6(vip) {
                return None;
            }
            let headers = usize::from(p.l4_offset).checked_sub(l2)?;
            let need = (headers + 8).min(V6_MAX_QUOTE).min(invoking.len());
            let room = out
                .len()
                .saturating_sub(l2 + wire::ipv6::HEADER_LEN + icmpv6::HEADER_LEN);
            let quote = invoking.len().min(V6_MAX_QUOTE).min(room);
            if quote < need {
                return None;
            }
            too_big_v6(l2_hdr, &invoking[..quote], client, vip, mtu, out)
        }
        _ => None,
    }
}

/// Whether `p` is an ICMP error, or ICMP of a type not known to be a query:
/// RFC 1122 §3.2.2 forbids an error about an error, and an unknown type is
/// taken for one (as Linux does past type 18). The queries are echo (0, 8),
/// router discovery (9, 10, RFC 1256), timestamp (13, 14), information
/// (15, 16) and address mask (17, 18, RFC 950).
fn icmp_error_v4(p: &Parsed) -> bool {
    match p.l4 {
        L4::Icmp { ty, .. } => !matches!(ty, 0 | 8 | 9 | 10 | 13..=18),
        _ => p.proto == u8::from(IpProtocol::Icmp),
    }
}

/// Whether `p` is an ICMPv6 error (types 0..=127, RFC 4443 §2.1) or a
/// redirect (137), which no error may answer (RFC 4443 §2.4 (e.1), (e.2));
/// ICMPv6 without its header (a non-first fragment) may be either.
fn icmp_error_v6(p: &Parsed) -> bool {
    match p.l4 {
        L4::Icmpv6 { ty, .. } => ty < 128 || ty == 137,
        _ => p.proto == u8::from(IpProtocol::Icmpv6),
    }
}

/// An address that names a single host (RFC 1122 §3.2.2): not "this
/// network" (0/8), loopback (127/8), multicast (224/4), nor class E or the
/// limited broadcast (240/4).
fn one_host_v4(a: Ipv4Addr) -> bool {
    !matches!(a.octets()[0], 0 | 127 | 224..=255)
}

/// An address that names a single node (RFC 4443 §2.4 (e.6)): not
/// unspecified, loopback or multicast.
fn one_host_v6(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast())
}

/// Writes the swapped L2 header, zeroes the padding, and returns the frame
/// of `len` bytes padded to the Ethernet minimum.
fn frame_out<'a>(l2_hdr: &[u8], len: usize, out: &'a mut [u8]) -> Option<&'a mut [u8]> {
    let out = out.get_mut(..len.max(ETH_MIN_FRAME))?;
    out[len..].fill(0);
    swap_macs(l2_hdr, &mut out[..l2_hdr.len()]);
    Some(out)
}

fn too_big_v4(l2_hdr: &[u8], quote: &[u8], client: Ipv4Addr, vip: Ipv4Addr, mtu: u16, out: &mut [u8]) -> Option<usize> {
    let l2 = l2_hdr.len();
    let ip_len = wire::ipv4::HEADER_LEN + icmp::HEADER_LEN + quote.len();
    let out = frame_out(l2_hdr, l2 + ip_len, out)?;
    let (ip, msg) = out[l2..l2 + ip_len].split_at_mut(wire::ipv4::HEADER_LEN);
    let mut h = wire::Ipv4Packet::new_unchecked(ip);
    h.set_version_and_header_len(wire::ipv4::HEADER_LEN as u8);
    h.set_dscp_ecn(DSCP_CS6, 0);
    h.set_total_len(ip_len as u16); // at most 20 + 8 + 60 + 8
                                    // Id 0 with DF, as `tcp_reply`: an atomic datagram (RFC 6864 §4.1).
    h.set_ident(0);
    h.set_frag(true, false, 0);
    h.set_ttl(REPLY_TTL);
    h.set_protocol(IpProtocol::Icmp);
    h.set_src_addr(vip);
    h.set_dst_addr(client);
    h.fill_checksum();
    let mut m = wire::IcmpPacket::new_unchecked(msg);
    m.set_msg_type(icmp::types::DEST_UNREACHABLE);
    m.set_msg_code(CODE_FRAG_NEEDED);
    // RFC 1191 §4: 16 unused bits (zero), then the next-hop MTU.
    m.set_rest_of_header(u32::from(mtu));
    m.payload_mut().copy_from_slice(quote);
    m.fill_checksum();
    Some(out.len())
}

fn too_big_v6(l2_hdr: &[u8], quote: &[u8], client: Ipv6Addr, vip: Ipv6Addr, mtu: u16, out: &mut [u8]) -> Option<usize> {
    let l2 = l2_hdr.len();
    let msg_len = icmpv6::HEADER_LEN + quote.len(); // at most 1240
    let ip_len = wire::ipv6::HEADER_LEN + msg_len;
    let out = frame_out(l2_hdr, l2 + ip_len, out)?;
    let (ip, msg) = out[l2..l2 + ip_len].split_at_mut(wire::ipv6::HEADER_LEN);
    let mut h = wire::Ipv6Packet::new_unchecked(ip);
    h.set_version_tc_flow(0, 0);
    h.set_payload_len(msg_len as u16);
    h.set_next_header(IpProtocol::Icmpv6);
    h.set_hop_limit(REPLY_TTL);
    h.set_src_addr(vip);
    h.set_dst_addr(client);
    let mut m = wire::Icmpv6Packet::new_unchecked(msg);
    m.set_msg_type(icmpv6::types::PACKET_TOO_BIG);
    m.set_msg_code(0);
    // RFC 4443 §3.2: a 32-bit MTU field.
    m.set_rest_of_header(u32::from(mtu));
    m.payload_mut().copy_from_slice(quote);
    m.fill_checksum(vip, client);
    Some(out.len())
}

#[cfg(test)]
mod tests {
    use super::super::test_frames::*;
    use super::*;
    use crate::parse::parse;

    const DF: u16 = 0x4000;

    /// A 1500-byte IPv4 TCP packet with DF, 802.1Q tagged.
    fn big_v4() -> Vec<u8> {
        v4(&VLAN42, &[], DF, 6, &tcp(&bytes(1460)))
    }

    /// A 1400-byte IPv6 UDP packet behind an 8-byte hop-by-hop header.
    fn big_v6(tags: &[u8]) -> Vec<u8> {
        let hbh = [17, 0, 1, 4, 0, 0, 0, 0]; // next UDP, PadN
        v6(tags, 0, &hbh, &udp(&bytes(1352)))
    }

    fn build(f: &[u8], mtu: u16, out: &mut [u8]) -> Option<usize> {
        icmp_too_big(f, &parse(f).unwrap(), mtu, out)
    }

    #[test]
    fn frag_needed_v4_vlan() {
        let f = big_v4();
        let mut out = [0u8; 256];
        let n = build(&f, 1476, &mut out).unwrap();
        // 18 (tagged L2) + 20 (IP) + 8 (ICMP) + 20 + 8 (quote)
        assert_eq!(n, 74);
        let o = &out[..n];
        assert_eq!(&o[..6], &PEER_MAC);
        assert_eq!(&o[6..12], &MOAT_MAC);
        assert_eq!(&o[12..18], &[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
        assert_eq!(
            &o[18..30],
            &[
                0x45, 0xc0, 0x00, 56, // v4, IHL 5, CS6, total 56
                0x00, 0x00, 0x40, 0x00, // id 0, DF
                64, 1, // TTL 64, ICMP
                o[28], o[29], // checksum (verified below)
            ]
        );
        assert_eq!(&o[30..34], &VIP4.octets());
        assert_eq!(&o[34..38], &CLIENT4.octets());
        assert!(wire::Ipv4Packet::new_checked(&o[18..]).unwrap().verify_checksum());
        // Type 3 code 4, checksum, unused 0, next-hop MTU 1476 (RFC 1191 §4).
        assert_eq!(&o[38..40], &[3, 4]);
        assert_eq!(&o[42..46], &[0, 0, 0x05, 0xc4]);
        assert!(wire::IcmpPacket::new_checked(&o[38..]).unwrap().verify_checksum());
        // The original header, as received, and 8 bytes of its data.
        assert_eq!(&o[46..74], &f[18..46]);
        let r = parse(o).unwrap();
        assert_eq!((r.vlan_id, r.src, r.dst, r.ttl), (42, VIP4.into(), CLIENT4.into(), 64));
        assert_eq!(r.l4, L4::Icmp { ty: 3, code: 4 });
        // One byte short of the frame.
        assert_eq!(build(&f, 1476, &mut out[..73]), None);
    }

    #[test]
    fn v4_quote_keeps_options() {
        let opts = [0x94, 0x04, 0, 0]; // router alert (RFC 2113)
        let f = v4(&[], &opts, DF, 17, &udp(&bytes(200)));
        let mut out = [0u8; 256];
        let n = build(&f, 100, &mut out).unwrap();
        assert_eq!(n, 14 + 28 + 24 + 8);
        assert_eq!(&out[42..n], &f[14..14 + 32]);
        assert_eq!(out[14], 0x45, "the error itself has no options");
    }

    #[test]
    fn v4_refusals() {
        let mut out = [0u8; 256];
        let f = big_v4();
        assert_eq!(build(&f, 1500, &mut out), None, "fits");
        assert_eq!(build(&f, 67, &mut out), None, "below 68");
        assert!(build(&f, 68, &mut out).is_some());
        let no_df = v4(&[], &[], 0, 6, &tcp(&bytes(1460)));
        assert_eq!(build(&no_df, 1400, &mut out), None, "DF clear");
        let later = v4(&[], &[], DF | 185, 6, &bytes(1480));
        assert_eq!(build(&later, 1400, &mut out), None, "non-first fragment");
        let first = v4(&[], &[], DF | 0x2000, 6, &tcp(&bytes(1460)));
        assert!(build(&first, 1400, &mut out).is_some(), "first fragment");
        for (ty, ok) in [
            (0, true),
            (8, true),
            (13, true),
            (3, false),
            (11, false),
            (5, false),
            (42, false),
        ] {
            let f = v4(&[], &[], DF, 1, &icmp(ty, 0, &bytes(1472)));
            assert_eq!(build(&f, 1400, &mut out).is_some(), ok, "ICMP type {ty}");
        }
        for src in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 0, 0, 5],
            [255, 255, 255, 255],
            [240, 1, 2, 3],
        ] {
            let mut f = big_v4();
            f[30..34].copy_from_slice(&src);
            assert_eq!(build(&f, 1400, &mut out), None, "source {src:?}");
            let mut g = big_v4();
            g[34..38].copy_from_slice(&src);
            assert_eq!(build(&g, 1400, &mut out), None, "destination {src:?}");
        }
        let mut bcast = big_v4();
        bcast[..6].fill(0xff);
        assert_eq!(build(&bcast, 1400, &mut out), None, "link-layer broadcast");
        let mut p = parse(&f).unwrap();
        p.l3_offset = 10;
        assert_eq!(icmp_too_big(&f, &p, 1400, &mut out), None, "forged summary");
        let p = parse(&f).unwrap();
        assert_eq!(icmp_too_big(&f[..1000], &p, 900, &mut out), None, "another frame");
    }

    #[test]
    fn packet_too_big_v6() {
        let f = big_v6(&VLAN42);
        let mut out = [0u8; 2048];
        let n = build(&f, 1280, &mut out).unwrap();
        // The error fills the IPv6 minimum MTU exactly (RFC 4443 §2.4 (c)).
        assert_eq!(n, 18 + 1280);
        let o = &out[..n];
        assert_eq!(
            (&o[..6], &o[6..12], &o[12..18]),
            (&PEER_MAC[..], &MOAT_MAC[..], &f[12..18])
        );
        assert_eq!(&o[18..26], &[0x60, 0, 0, 0, 0x04, 0xd8, 58, 64]); // payload 1240
        assert_eq!(&o[26..42], &VIP6.octets());
        assert_eq!(&o[42..58], &CLIENT6.octets());
        assert_eq!(&o[58..60], &[2, 0]);
        assert_eq!(&o[62..66], &[0, 0, 0x05, 0x00]);
        assert_eq!(&o[66..], &f[18..18 + V6_MAX_QUOTE]);
        let m = wire::Icmpv6Packet::new_checked(&o[58..]).unwrap();
        assert!(m.verify_checksum(VIP6, CLIENT6));
        let r = parse(o).unwrap();
        assert_eq!((r.vlan_id, r.src, r.dst, r.ttl), (42, VIP6.into(), CLIENT6.into(), 64));
        assert_eq!(r.l4, L4::Icmpv6 { ty: 2, code: 0 });
    }

    #[test]
    fn v6_quote_shrinks_to_out() {
        let f = big_v6(&[]);
        let mut out = [0u8; 200];
        let n = build(&f, 1300, &mut out).unwrap();
        assert_eq!(n, 200);
        assert_eq!(&out[58..62], &1300u32.to_be_bytes());
        assert_eq!(&out[62..200], &f[14..14 + 200 - 62]);
        let m = wire::Icmpv6Packet::new_checked(&out[54..200]).unwrap();
        assert!(m.verify_checksum(VIP6, CLIENT6));
        // The smallest `out`: IPv6 + hop-by-hop + 8 bytes of UDP quoted.
        let least = 14 + 48 + 40 + 8 + 8;
        assert_eq!(build(&f, 1300, &mut out[..least]), Some(least));
        assert_eq!(build(&f, 1300, &mut out[..least - 1]), None);
    }

    #[test]
    fn v6_refusals() {
        let mut out = [0u8; 2048];
        let f = big_v6(&[]);
        assert_eq!(build(&f, 1279, &mut out), None, "below 1280");
        assert_eq!(build(&f, 1408, &mut out), None, "fits");
        assert!(build(&f, 1407, &mut out).is_some());
        for (ty, ok) in [
            (128, true),
            (129, true),
            (1, false),
            (2, false),
            (127, false),
            (137, false),
        ] {
            let f = v6(&[], 58, &[], &icmp(ty, 0, &bytes(1392)));
            assert_eq!(build(&f, 1280, &mut out).is_some(), ok, "ICMPv6 type {ty}");
        }
        // A non-first fragment of ICMPv6 may be part of an error.
        let frag = [58, 0, 0x05, 0xa8, 0, 0, 0, 1]; // offset 1448
        let f = v6(&[], 44, &frag, &bytes(1392));
        assert_eq!(build(&f, 1280, &mut out), None);
        let f = v6(&[], 44, &[17, 0, 0x05, 0xa8, 0, 0, 0, 1], &bytes(1392));
        assert!(build(&f, 1280, &mut out).is_some(), "fragment of UDP");
        for a in [Ipv6Addr::UNSPECIFIED, Ipv6Addr::LOCALHOST, "ff02::1".parse().unwrap()] {
            let mut f = big_v6(&[]);
            f[22..38].copy_from_slice(&a.octets());
            assert_eq!(build(&f, 1280, &mut out), None, "source {a}");
            let mut g = big_v6(&[]);
            g[38..54].copy_from_slice(&a.octets());
            assert_eq!(build(&g, 1280, &mut out), None, "destination {a}");
        }
        // RFC 4443 §2.4 (e.4) exempts Packet Too Big from the link-layer
        // multicast rule.
        let mut f = big_v6(&[]);
        f[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        assert!(build(&f, 1280, &mut out).is_some());
    }
}
