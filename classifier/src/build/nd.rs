//! IPv6 neighbour discovery for the node's own addresses (RFC 4861): the
//! IPv6 counterpart of [`super::arp_reply`]. A router resolves the node's
//! IPv6 next hop with a Neighbor Solicitation; [`neighbor_solicit`] checks
//! one as RFC 4861 §7.1.1 asks, and [`nd_advert`] answers it with a Neighbor
//! Advertisement (§4.4, §7.2.4). [`link_local`] and [`solicited_node`] derive
//! the addresses ND works with.
//!
//! ```text
//!  Neighbor Solicitation (type 135)     Neighbor Advertisement (type 136)
//! +-------+-------+---------------+    +-------+-------+---------------+
//! | 135   | 0     | checksum      |    | 136   | 0     | checksum      |
//! +-------+-------+---------------+    +-+-+-+---------+---------------+
//! | reserved                      |    |R|S|O| reserved                |
//! +-------------------------------+    +-+-+-+-------------------------+
//! | target address (16 bytes)     |    | target address (16 bytes)     |
//! +-------------------------------+    +-------------------------------+
//! | options (type, len/8, ...)    |    | 2 | 1 | our MAC (TLLA, §4.6.1)|
//! +-------------------------------+    +-------------------------------+
//! ```

use core::net::{IpAddr, Ipv6Addr};

use super::ETH_MIN_FRAME;
use crate::parse::{Frag, Parsed, L3, L4};
use crate::wire::{self, icmpv6, IpProtocol};

/// Hop limit of every ND message, sent and accepted: a packet with 255 can
/// only come from the link (RFC 4861 §7.1.1, §7.2.4).
pub const ND_HOP_LIMIT: u8 = 255;
/// Bytes of a Neighbor Solicitation or Advertisement before its options:
/// the ICMPv6 header, the reserved/flags word and the target (§4.3, §4.4).
pub const ND_FIXED_LEN: usize = 24;
/// Length of the advertisement Moat sends: the fixed part and one 8-byte
/// target link-layer address option.
pub const NA_LEN: usize = ND_FIXED_LEN + 8;

/// ND option types (RFC 4861 §4.6).
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;
/// Advertisement flags (§4.4): router, solicited, override.
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
/// The all-nodes multicast address ff02::1 (RFC 4291 §2.7.1) and its
/// Ethernet group address 33:33 + the low 32 bits (RFC 2464 §7).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// A Neighbor Solicitation that passed the checks of RFC 4861 §7.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborSolicit {
    /// The address whose link-layer address is asked for.
    pub target: Ipv6Addr,
    /// The IPv6 source: the solicitor, or `::` when it is running duplicate
    /// address detection (RFC 4862 §5.4.2).
    pub src: Ipv6Addr,
    /// The requester's MAC (the frame's Ethernet source).
    pub src_mac: [u8; 6],
}

/// The IPv6 link-local address (fe80::/64) of an interface with Ethernet
/// address `mac`: the modified EUI-64 interface identifier of RFC 4291
/// Appendix A (§2.5.1): ff:fe inserted in the middle of the MAC and the
/// universal/local bit (0x02 of the first byte) inverted.
pub const fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([a ^ 0x02, b]),
        u16::from_be_bytes([c, 0xff]),
        u16::from_be_bytes([0xfe, d]),
        u16::from_be_bytes([e, f]),
    )
}

/// The solicited-node multicast address of `a`: ff02::1:ff00:0/104 and the
/// low 24 bits of `a` (RFC 4291 §2.7.1).
pub const fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        u16::from_be_bytes([0xff, o[13]]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Whether `a` is a solicited-node multicast address.
fn is_solicited_node(a: Ipv6Addr) -> bool {
    a.octets()[..13] == solicited_node(Ipv6Addr::UNSPECIFIED).octets()[..13]
}

/// The Neighbor Solicitation in `frame` (parsed `p`), if it is a valid one
/// (RFC 4861 §7.1.1): hop limit 255, checksum right, code 0, at least 24
/// bytes of ICMPv6, a target that is not multicast, every option of
/// non-zero length within the message, and, from the unspecified address
/// (duplicate address detection), a solicited-node multicast destination
/// and no source link-layer address option. A fragment is never one
/// (RFC 6980 §5). `None` for anything else, other ND messages included.
pub fn neighbor_solicit(frame: &[u8], p: &Parsed) -> Option<NeighborSolicit> {
    let (L3::Ipv6, L4::Icmpv6 { ty, code: 0 }, Frag::None) = (p.l3, p.l4, p.frag) else {
        return None;
    };
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (p.src_ip(), p.dst_ip()) else {
        return None;
    };
    if ty != icmpv6::types::NEIGHBOR_SOLICIT || p.ttl != ND_HOP_LIMIT {
        return None;
    }
    let msg = p.l4_bytes(frame);
    if msg.len() < ND_FIXED_LEN || !wire::Icmpv6Packet::new_checked(msg).ok()?.verify_checksum(src, dst) {
        return None;
    }
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&msg[8..24]).ok()?);
    if target.is_multicast() {
        return None;
    }
    let dad = src.is_unspecified();
    if dad && !is_solicited_node(dst) {
        return None;
    }
    let mut opts = &msg[ND_FIXED_LEN..];
    while let [kind, len, ..] = *opts {
        let n = usize::from(len) * 8;
        if n == 0 || n > opts.len() || (dad && kind == OPT_SOURCE_LL) {
            return None;
        }
        opts = &opts[n..];
    }
    if !opts.is_empty() {
        return None; // one byte left: an option cut short
    }
    let src_mac = <[u8; 6]>::try_from(frame.get(6..12)?).ok()?;
    Some(NeighborSolicit { target, src, src_mac })
}

/// The Neighbor Advertisement answering `ns` (read from `req`, parsed `p`,
/// by [`neighbor_solicit`]) for the node's address `ns.target` at `our_mac`
/// (RFC 4861 §7.2.4): from the target address with hop limit 255, router
/// flag clear, override set, and a target link-layer address option with
/// `our_mac`. To the solicitor (solicited flag set) at the frame's source
/// MAC; for duplicate address detection (source `::`) to all-nodes
/// ff02::1 at 33:33:00:00:00:01, solicited flag clear. VLAN tags are kept.
///
/// `None` when `p` does not describe an Ethernet frame's IPv6 header, or
/// `out` cannot hold the reply (86 bytes untagged, 94 with QinQ).
pub fn nd_advert(req: &[u8], p: &Parsed, ns: &NeighborSolicit, our_mac: [u8; 6], out: &mut [u8]) -> Option<usize> {
    let l2 = usize::from(p.l3_offset);
    if l2 < wire::ethernet::HEADER_LEN || p.l3 != L3::Ipv6 {
        return None;
    }
    let l2_hdr = req.get(..l2)?;
    let len = l2 + wire::ipv6::HEADER_LEN + NA_LEN;
    let out = out.get_mut(..len.max(ETH_MIN_FRAME))?;
    let (dst, dst_mac, flags) = if ns.src.is_unspecified() {
        (ALL_NODES, ALL_NODES_MAC, FLAG_OVERRIDE)
    } else {
        (ns.src, ns.src_mac, FLAG_SOLICITED | FLAG_OVERRIDE)
    };
    out[..l2].copy_from_slice(l2_hdr);
    out[..6].copy_from_slice(&dst_mac);
    out[6..12].copy_from_slice(&our_mac);
    let (ip, msg) = out[l2..len].split_at_mut(wire::ipv6::HEADER_LEN);
    let mut h = wire::Ipv6Packet::new_unchecked(ip);
    h.set_version_tc_flow(0, 0);
    h.set_payload_len(NA_LEN as u16);
    h.set_next_header(IpProtocol::Icmpv6);
    h.set_hop_limit(ND_HOP_LIMIT);
    h.set_src_addr(ns.target);
    h.set_dst_addr(dst);
    msg[4..8].copy_from_slice(&[flags, 0, 0, 0]);
    msg[8..24].copy_from_slice(&ns.target.octets());
    msg[24..26].copy_from_slice(&[OPT_TARGET_LL, 1]);
    msg[26..32].copy_from_slice(&our_mac);
    let mut m = wire::Icmpv6Packet::new_unchecked(msg);
    m.set_msg_type(icmpv6::types::NEIGHBOR_ADVERT);
    m.set_msg_code(0);
    m.fill_checksum(ns.target, dst);
    Some(out.len())
}

#[cfg(test)]
mod tests {
    use super::super::test_frames::{MOAT_MAC, PEER_MAC, VLAN42};
    use super::*;
    use crate::parse::parse;
    use crate::wire::checksum;

    /// The node's address, 2001:db8:10::1.
    const OURS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 1);
    /// The router asking, 2001:db8:10::2.
    const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 2);

    /// An NS frame from PEER_MAC, field by field (RFC 4861 §4.3), with
    /// `tags`, hop limit `hops`, and `opts` after the target; checksum
    /// filled in.
    fn ns(tags: &[u8], src: Ipv6Addr, dst: Ipv6Addr, hops: u8, target: Ipv6Addr, opts: &[u8]) -> Vec<u8> {
        let dst_mac = if dst.is_multicast() {
            let o = dst.octets();
            [0x33, 0x33, o[12], o[13], o[14], o[15]]
        } else {
            MOAT_MAC
        };
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&PEER_MAC);
        f.extend_from_slice(tags);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&((24 + opts.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[58, hops]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        let at = f.len();
        f.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&target.octets());
        f.extend_from_slice(opts);
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(src, dst, 58, (f.len() - at) as u32),
            checksum::data(&f[at..]),
        ]);
        f[at + 2..at + 4].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        f
    }

    /// A source link-layer address option with PEER_MAC.
    const SLLA: [u8; 8] = [1, 1, 0x02, 0, 0, 0, 0, 0x02];

    fn solicit(f: &[u8]) -> Option<NeighborSolicit> {
        neighbor_solicit(f, &parse(f).ok()?)
    }

    fn answer(f: &[u8], out: &mut [u8]) -> Option<usize> {
        let p = parse(f).unwrap();
        nd_advert(f, &p, &neighbor_solicit(f, &p)?, MOAT_MAC, out)
    }

    #[test]
    fn addresses() {
        // RFC 4291 Appendix A: 34-56-78-9A-BC-DE -> 3656:78ff:fe9a:bcde.
        let ll = link_local([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]);
        assert_eq!(ll, "fe80::3656:78ff:fe9a:bcde".parse::<Ipv6Addr>().unwrap());
        assert_eq!(link_local(MOAT_MAC), "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            solicited_node("2001:db8::4:abcd:ef01".parse().unwrap()),
            "ff02::1:ffcd:ef01".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_solicited_node(solicited_node(OURS)));
        assert!(!is_solicited_node(ALL_NODES));
    }

    #[test]
    fn advert_to_the_solicitor() {
        let f = ns(&[], ROUTER, solicited_node(OURS), 255, OURS, &SLLA);
        let mut out = [0xaau8; 128];
        let n = answer(&f, &mut out).unwrap();
        assert_eq!(n, 14 + 40 + 32);
        #[rustfmt::skip]
        let want: [u8; 54] = [
            0x02, 0, 0, 0, 0, 0x02, // to the solicitor's MAC
            0x02, 0, 0, 0, 0, 0x01, // from ours
            0x86, 0xdd,
            0x60, 0, 0, 0, 0, 32, 58, 255, // payload 32, ICMPv6, hop limit 255
            0x20, 0x01, 0x0d, 0xb8, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // from the target
            0x20, 0x01, 0x0d, 0xb8, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // to the router
        ];
        assert_eq!(&out[..54], &want);
        assert_eq!(&out[54..56], &[136, 0]);
        assert_eq!(&out[58..62], &[0x60, 0, 0, 0], "S and O set, R clear");
        assert_eq!(&out[62..78], &OURS.octets());
        assert_eq!(&out[78..86], &[2, 1, 0x02, 0, 0, 0, 0, 0x01], "TLLA");
        assert_eq!(out[86], 0xaa, "nothing written past the frame");
        let m = wire::Icmpv6Packet::new_checked(&out[54..86]).unwrap();
        assert!(m.verify_checksum(OURS, ROUTER));
        let r = parse(&out[..n]).unwrap();
        assert_eq!((r.src, r.dst, r.ttl), (OURS.into(), ROUTER.into(), 255));
        assert_eq!(r.l4, L4::Icmpv6 { ty: 136, code: 0 });
        // An advertisement is not answered.
        assert_eq!(neighbor_solicit(&out[..n], &r), None);
        assert_eq!(answer(&f, &mut out[..85]), None, "one byte short");
    }

    #[test]
    fn advert_for_dad_goes_to_all_nodes() {
        let f = ns(&VLAN42, Ipv6Addr::UNSPECIFIED, solicited_node(OURS), 255, OURS, &[]);
        let mut out = [0u8; 128];
        let n = answer(&f, &mut out).unwrap();
        assert_eq!(n, 18 + 40 + 32);
        assert_eq!(&out[..6], &ALL_NODES_MAC);
        assert_eq!(&out[6..12], &MOAT_MAC);
        assert_eq!(&out[12..18], &[0x81, 0, 0, 0x2a, 0x86, 0xdd], "tag kept");
        assert_eq!(&out[42..58], &ALL_NODES.octets());
        assert_eq!(out[62], 0x20, "O only: not solicited");
        let m = wire::Icmpv6Packet::new_checked(&out[58..n]).unwrap();
        assert!(m.verify_checksum(OURS, ALL_NODES));
    }

    #[test]
    fn unicast_solicitation_and_options() {
        // Neighbour unreachability detection: unicast, no option.
        let f = ns(&[], ROUTER, OURS, 255, OURS, &[]);
        let s = solicit(&f).unwrap();
        assert_eq!((s.target, s.src, s.src_mac), (OURS, ROUTER, PEER_MAC));
        // An unknown option of non-zero length is skipped (§4.6).
        let f = ns(
            &[],
            ROUTER,
            OURS,
            255,
            OURS,
            &[99, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        assert!(solicit(&f).is_some());
    }

    #[test]
    fn invalid_solicitations() {
        let sn = solicited_node(OURS);
        let ok = ns(&[], ROUTER, sn, 255, OURS, &SLLA);
        assert!(solicit(&ok).is_some());
        let cases: [(&str, Vec<u8>); 8] = [
            ("hop limit 254", ns(&[], ROUTER, sn, 254, OURS, &SLLA)),
            ("multicast target", ns(&[], ROUTER, sn, 255, ALL_NODES, &SLLA)),
            (
                "zero-length option",
                ns(&[], ROUTER, sn, 255, OURS, &[1, 0, 0, 0, 0, 0, 0, 0]),
            ),
            (
                "option past the end",
                ns(&[], ROUTER, sn, 255, OURS, &[1, 2, 0, 0, 0, 0, 0, 0]),
            ),
            ("odd byte after options", ns(&[], ROUTER, sn, 255, OURS, &[1])),
            ("DAD with SLLA", ns(&[], Ipv6Addr::UNSPECIFIED, sn, 255, OURS, &SLLA)),
            ("DAD to unicast", ns(&[], Ipv6Addr::UNSPECIFIED, OURS, 255, OURS, &[])),
            (
                "DAD to all-nodes",
                ns(&[], Ipv6Addr::UNSPECIFIED, ALL_NODES, 255, OURS, &[]),
            ),
        ];
        for (what, f) in cases {
            assert_eq!(solicit(&f), None, "{what}");
        }
        let mut bad = ok.clone();
        bad[56] ^= 1; // checksum
        assert_eq!(solicit(&bad), None, "checksum");
        let mut code = ok.clone();
        code[55] = 1;
        assert_eq!(solicit(&code), None, "code 1");
        let mut na = ok.clone();
        na[54] = 136;
        assert_eq!(solicit(&na), None, "not a solicitation");
        // 16 bytes of ICMPv6: too short for the target (checksum right).
        let mut short = ok[..70].to_vec();
        short[19] = 16;
        let sum = checksum::combine(&[
            checksum::pseudo_header_v6(ROUTER, sn, 58, 16),
            checksum::data(&{
                let mut m = short[54..70].to_vec();
                m[2..4].fill(0);
                m
            }),
        ]);
        short[56..58].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        assert!(wire::Icmpv6Packet::new_checked(&short[54..])
            .unwrap()
            .verify_checksum(ROUTER, sn));
        assert_eq!(solicit(&short), None, "shorter than 24 bytes");
    }

    #[test]
    fn forged_summaries_are_refused() {
        let f = ns(&[], ROUTER, OURS, 255, OURS, &[]);
        let mut p = parse(&f).unwrap();
        let s = neighbor_solicit(&f, &p).unwrap();
        p.l3_offset = 4;
        assert_eq!(nd_advert(&f, &p, &s, MOAT_MAC, &mut [0; 128]), None);
        p.l3_offset = 14;
        p.l3 = L3::Arp;
        assert_eq!(nd_advert(&f, &p, &s, MOAT_MAC, &mut [0; 128]), None);
        assert_eq!(neighbor_solicit(&f, &p), None);
    }
}
