//! Builders for the frames Moat emits: TCP challenges and resets, ARP
//! replies and requests, IPv6 neighbour advertisements, ICMP "packet too
//! big" errors, GRE encapsulation toward the origin, and the in-place fixes
//! of forwarded packets (MSS clamping of passed SYNs, completing offloaded
//! checksums).
//!
//! Every builder writes into a caller's buffer (sans-I/O, like boringtun) and
//! returns the frame length, or `None` when the buffer is too small or the
//! input does not fit the request (wrong protocol, bad lengths); nothing
//! here panics or allocates. Checksums of the output are always correct:
//! full computation for new headers, RFC 1624 incremental update when one
//! field changes in a received packet.
//!
//! Replies (`tcp_reply`, `arp_reply`, `arp_request`, `nd_advert`,
//! `icmp_too_big`) are zero-padded to the 60-byte Ethernet minimum, since
//! not every DPDK PMD pads runt frames. GRE output is not padded: the classifier passes IPv4
//! only with an L4 header, so the smallest inner packet (28 bytes) already
//! makes a 66-byte frame.
//!
//! Submodules, re-exported here: [`icmp_too_big`] (`icmp`), [`arp_request`]
//! and [`arp_sender`] (`arp`), [`neighbor_solicit`] and [`nd_advert`]
//! (`nd`), [`complete_l4_checksum`] (`offload`).

use core::net::Ipv4Addr;

use crate::parse::{Parsed, L3, L4};
use crate::verdict::TcpAnswer;
use crate::wire::{self, checksum, tcp::flags, EtherType, IpProtocol, TcpOption};

mod arp;
mod data;
mod gre;
mod icmp;
mod nd;
mod offload;
#[cfg(test)]
mod test_frames;

pub use arp::{arp_request, arp_sender, ArpInfo};
pub use data::{tcp_data_reply, udp_reply};
pub use gre::GreHeader;
pub use icmp::{icmp_too_big, MIN_MTU_V4, MIN_MTU_V6, V6_MAX_QUOTE};
pub use nd::{link_local, nd_advert, neighbor_solicit, solicited_node, NeighborSolicit, NA_LEN, ND_HOP_LIMIT};
pub use offload::complete_l4_checksum;

/// Smallest Ethernet frame without FCS.
pub const ETH_MIN_FRAME: usize = 60;
/// TTL / hop limit of replies: the common initial TTL of Linux, so that a
/// challenge looks like any server's SYN-ACK.
pub const REPLY_TTL: u8 = 64;

/// Reply to a TCP segment `req` (parsed `p`): swap MACs (keep VLAN tags), swap
/// IPs and ports, TTL/hop limit 64, IPv4 id 0 + DF, correct IP and TCP
/// checksums. v4 and v6.
///
/// The IP header is written without options or extension headers; the only
/// TCP option is MSS when `mss` is given. Returns `None` when `p` is not TCP
/// or `out` cannot hold the reply. [`tcp_answer`] writes the same bytes
/// over the segment itself.
#[allow(clippy::too_many_arguments)] // the fields of a TCP header, named at the call site
pub fn tcp_reply(
    req: &[u8],
    p: &Parsed,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    mss: Option<u16>,
    out: &mut [u8],
) -> Option<usize> {
    let a = TcpAnswer {
        seq,
        ack,
        flags,
        window,
        mss,
    };
    let shape = ReplyShape::of(p, a.mss.is_some())?;
    let out = out.get_mut(..shape.padded)?;
    let l2 = usize::from(p.l3_offset);
    swap_macs(req.get(..l2)?, &mut out[..l2]);
    write_tcp_reply(out, p, &a, shape)
}

/// [`tcp_reply`] written over the segment itself (DESIGN.md: replies are
/// written in place): `frame` is the received frame, at least
/// [`tcp_answer_len`] bytes long (grow it first when the segment was
/// shorter). The MACs are swapped where they stand, VLAN tags stay, and
/// the IP and TCP headers are written from `p` and `a`, which is safe in
/// place because nothing of the segment past its L2 header is read (the
/// addresses and ports are in `p`). Returns the reply's length, the same
/// bytes [`tcp_reply`] would build; `None` when `p` is not TCP or `frame`
/// is too short.
#[inline]
pub fn tcp_answer(frame: &mut [u8], p: &Parsed, a: &TcpAnswer) -> Option<usize> {
    let shape = ReplyShape::of(p, a.mss.is_some())?;
    let out = frame.get_mut(..shape.padded)?;
    let (dst, src) = out.split_at_mut(6);
    dst.swap_with_slice(&mut src[..6]);
    write_tcp_reply(out, p, a, shape)
}

/// The length of [`tcp_answer`]'s reply to `p` (`None` unless TCP).
#[inline]
pub fn tcp_answer_len(p: &Parsed, a: &TcpAnswer) -> Option<usize> {
    ReplyShape::of(p, a.mss.is_some()).map(|s| s.padded)
}

/// Where the headers of a TCP reply go.
#[derive(Clone, Copy)]
struct ReplyShape {
    ip_len: usize,
    tcp_len: usize,
    len: usize,
    /// `len` padded to the Ethernet minimum.
    padded: usize,
}

impl ReplyShape {
    #[inline]
    fn of(p: &Parsed, mss: bool) -> Option<Self> {
        p.tcp()?;
        let l2 = usize::from(p.l3_offset);
        // `Parsed` fields are public: refuse a summary that no Ethernet frame
        // could have produced rather than index out of range below.
        if l2 < wire::ethernet::HEADER_LEN {
            return None;
        }
        let ip_len = match p.l3 {
            L3::Ipv4 => wire::ipv4::HEADER_LEN,
            L3::Ipv6 => wire::ipv6::HEADER_LEN,
            L3::Arp => return None,
        };
        let tcp_len = wire::tcp::HEADER_LEN + if mss { 4 } else { 0 };
        let len = l2 + ip_len + tcp_len;
        Some(ReplyShape {
            ip_len,
            tcp_len,
            len,
            padded: len.max(ETH_MIN_FRAME),
        })
    }
}

/// The first 12 bytes of a reply's IPv4 header for a TCP header of 20 and
/// of 24 bytes (version 4, IHL 5, DSCP/ECN 0, total length, id 0, DF, TTL,
/// protocol TCP, checksum 0), and their one's-complement sums: the
/// templates every answer starts from.
const V4_TEMPLATES: [([u8; 12], u32); 2] = [v4_template(20), v4_template(24)];

const fn v4_template(tcp_len: u16) -> ([u8; 12], u32) {
    let total = wire::ipv4::HEADER_LEN as u16 + tcp_len;
    let hdr = [
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        REPLY_TTL,
        6,
        0,
        0,
    ];
    let sum = 0x4500 + total as u32 + 0x4000 + ((REPLY_TTL as u32) << 8 | 6);
    (hdr, sum)
}

/// Writes everything of a TCP reply after its L2 header (already in
/// `out`): the IP header from a template, the TCP header from `a`, the
/// padding, and both checksums, summed from the fields directly rather
/// than through the views and a second pass over the buffer (RFC 1071:
/// the sum is order-independent). `out` is exactly `shape.padded` long.
#[inline]
fn write_tcp_reply(out: &mut [u8], p: &Parsed, a: &TcpAnswer, shape: ReplyShape) -> Option<usize> {
    let t = p.tcp()?;
    let l2 = usize::from(p.l3_offset);
    let ReplyShape {
        ip_len,
        tcp_len,
        len,
        padded,
    } = shape;
    // Padding: `len` is at least 14 + 20 + 20 = 54, so the padding is at
    // most the last 6 bytes of `out`. Zeroing exactly those 6 (a fixed-size
    // store, where a loop over `len..` became a memset call) before the
    // headers are written covers it; any of them below `len` is overwritten.
    const MAX_PAD: usize = ETH_MIN_FRAME - 54;
    let tail = padded - MAX_PAD;
    out.get_mut(tail..padded)?.fill(0);

    let seg = out.get_mut(l2 + ip_len..len)?;
    seg[0..2].copy_from_slice(&t.dport.to_be_bytes());
    seg[2..4].copy_from_slice(&t.sport.to_be_bytes());
    seg[4..8].copy_from_slice(&a.seq.to_be_bytes());
    seg[8..12].copy_from_slice(&a.ack.to_be_bytes());
    let doff_flags = ((tcp_len as u16 / 4) << 12) | u16::from(a.flags);
    seg[12..14].copy_from_slice(&doff_flags.to_be_bytes());
    seg[14..16].copy_from_slice(&a.window.to_be_bytes());
    seg[16..20].fill(0); // checksum (below), urgent pointer
    let mut sum = u32::from(t.dport)
        + u32::from(t.sport)
        + fold32(a.seq)
        + fold32(a.ack)
        + u32::from(doff_flags)
        + u32::from(a.window);
    if let Some(m) = a.mss {
        // Kind 2, length 4 (RFC 9293 §3.2).
        seg[20..24].copy_from_slice(&[2, 4, (m >> 8) as u8, m as u8]);
        sum += 0x0204 + u32::from(m);
    }
    // The reply goes from the packet's destination to its source.
    let (src, dst) = (p.dst, p.src);
    let pseudo = match p.l3 {
        L3::Ipv4 => {
            let (src, dst) = (src.v4_bits(), dst.v4_bits());
            let (template, template_sum) = V4_TEMPLATES[usize::from(a.mss.is_some())];
            let ip = &mut out[l2..l2 + ip_len];
            ip[0..12].copy_from_slice(&template);
            ip[12..16].copy_from_slice(&src.to_be_bytes());
            ip[16..20].copy_from_slice(&dst.to_be_bytes());
            let addrs = fold32(src) + fold32(dst);
            ip[10..12].copy_from_slice(&(!fold(template_sum + addrs)).to_be_bytes());
            addrs + 6 + tcp_len as u32
        }
        L3::Ipv6 => {
            let (src, dst) = (src.v6_bits(), dst.v6_bits());
            let ip = &mut out[l2..l2 + ip_len];
            ip[0..8].copy_from_slice(&[0x60, 0, 0, 0, 0, tcp_len as u8, 6, REPLY_TTL]);
            ip[8..24].copy_from_slice(&src.to_be_bytes());
            ip[24..40].copy_from_slice(&dst.to_be_bytes());
            fold128(src) + fold128(dst) + 6 + tcp_len as u32
        }
        L3::Arp => return None,
    };
    let csum = !fold(sum + pseudo);
    out[l2 + ip_len + 16..l2 + ip_len + 18].copy_from_slice(&csum.to_be_bytes());
    Some(padded)
}

/// Sum of the two 16-bit halves of a big-endian 32-bit field.
#[inline]
fn fold32(v: u32) -> u32 {
    (v >> 16) + (v & 0xffff)
}

/// Sum of the eight 16-bit words of an IPv6 address (fits in 20 bits).
#[inline]
fn fold128(v: u128) -> u32 {
    fold32((v >> 96) as u32) + fold32((v >> 64) as u32) + fold32((v >> 32) as u32) + fold32(v as u32)
}

/// One's-complement fold of a 32-bit sum to 16 bits (end-around carries).
#[inline]
fn fold(mut sum: u32) -> u16 {
    sum = (sum >> 16) + (sum & 0xffff);
    sum = (sum >> 16) + (sum & 0xffff);
    sum as u16
}

/// Copies the L2 header with source and destination MACs swapped; VLAN tags
/// and the EtherType stay as they are.
fn swap_macs(req_l2: &[u8], out_l2: &mut [u8]) {
    // The untagged case as fixed-size copies: a variable-length copy is a
    // memcpy call, on every challenge of a SYN flood.
    if let (Ok(req), Ok(out)) = (<&[u8; 14]>::try_from(req_l2), <&mut [u8; 14]>::try_from(&mut *out_l2)) {
        out[..6].copy_from_slice(&req[6..12]);
        out[6..12].copy_from_slice(&req[..6]);
        out[12..14].copy_from_slice(&req[12..14]);
        return;
    }
    out_l2.copy_from_slice(req_l2);
    out_l2[..6].copy_from_slice(&req_l2[6..12]);
    out_l2[6..12].copy_from_slice(&req_l2[..6]);
}

/// Answers an ARP request `req` (parsed `p`) for the address it asks about
/// with `our_mac`: the caller has checked that the target address is one of
/// the node's. VLAN tags are kept. `None` unless `req` is an Ethernet/IPv4
/// ARP request and `out` is big enough.
pub fn arp_reply(req: &[u8], p: &Parsed, our_mac: [u8; 6], out: &mut [u8]) -> Option<usize> {
    if p.l3 != L3::Arp {
        return None;
    }
    let l2 = usize::from(p.l3_offset);
    if l2 < wire::ethernet::HEADER_LEN {
        return None;
    }
    let rq = wire::ArpPacket::new_checked(req.get(l2..)?).ok()?;
    if rq.operation() != wire::ArpOperation::Request {
        return None;
    }
    let len = l2 + wire::arp::PACKET_LEN;
    let out = out.get_mut(..len.max(ETH_MIN_FRAME))?;
    out.fill(0);
    out[..l2].copy_from_slice(req.get(..l2)?);
    out[..6].copy_from_slice(&rq.source_hardware_addr());
    out[6..12].copy_from_slice(&our_mac);
    let mut a = wire::ArpPacket::new_unchecked(&mut out[l2..len]);
    a.set_ethernet_ipv4();
    a.set_operation(wire::ArpOperation::Reply);
    a.set_source_hardware_addr(our_mac);
    a.set_source_protocol_addr(rq.target_protocol_addr());
    a.set_target_hardware_addr(rq.source_hardware_addr());
    a.set_target_protocol_addr(rq.source_protocol_addr());
    Some(out.len())
}

/// Parameters of a GRE tunnel toward an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreParams {
    /// Our MAC on the inside port.
    pub src_mac: [u8; 6],
    /// The next hop's MAC toward the origin.
    pub dst_mac: [u8; 6],
    /// Outer source address (the node's tunnel address).
    pub tunnel_src: Ipv4Addr,
    /// Outer destination address (the origin's tunnel endpoint).
    pub tunnel_dst: Ipv4Addr,
    /// GRE key (RFC 2890), if the tunnel uses one.
    pub key: Option<u32>,
    /// Outer TTL.
    pub ttl: u8,
}

/// Bytes prepended by GRE encapsulation: Ethernet 14 + IPv4 20 + GRE 4, and
/// 4 more with a key.
pub const fn gre_overhead(key: bool) -> usize {
    14 + 20 + 4 + if key { 4 } else { 0 }
}

/// Writes Ethernet/IPv4/GRE headers into `hdr` (exactly the overhead) for an
/// inner IP packet of `inner_len` bytes whose first two bytes are `head`.
fn write_gre_headers(hdr: &mut [u8], head: [u8; 2], inner_len: usize, g: &GreParams) -> Option<()> {
    // RFC 6040 §4.1 normal mode: the outer ECN field is a copy of the inner
    // one (CE included). The DSCP is not copied: the origin is reached over
    // our own network, where the client's markings mean nothing.
    let (ecn, proto) = match head[0] >> 4 {
        4 => (head[1] & 0x03, EtherType::Ipv4),
        6 => ((head[1] >> 4) & 0x03, EtherType::Ipv6),
        _ => return None,
    };
    let outer_len = hdr.len() - wire::ethernet::HEADER_LEN + inner_len;
    if outer_len > usize::from(u16::MAX) {
        return None;
    }
    let mut eth = wire::EthernetFrame::new_unchecked(&mut *hdr);
    eth.set_dst_addr(g.dst_mac);
    eth.set_src_addr(g.src_mac);
    hdr[12..14].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
    let ip_start = wire::ethernet::HEADER_LEN;
    let gre_start = ip_start + wire::ipv4::HEADER_LEN;
    {
        let mut h = wire::Ipv4Packet::new_unchecked(&mut hdr[ip_start..gre_start]);
        h.set_version_and_header_len(wire::ipv4::HEADER_LEN as u8);
        h.set_dscp_ecn(0, ecn);
        h.set_total_len(outer_len as u16);
        h.set_ident(0);
        h.set_frag(true, false, 0);
        h.set_ttl(g.ttl);
        h.set_protocol(IpProtocol::Gre);
        h.set_src_addr(g.tunnel_src);
        h.set_dst_addr(g.tunnel_dst);
        h.fill_checksum();
    }
    let mut gre = wire::GrePacket::new_unchecked(&mut hdr[gre_start..]);
    gre.set_header(false, g.key.is_some(), false, proto);
    if let Some(k) = g.key {
        gre.set_key(k);
    }
    Some(())
}

/// Encapsulate an inner IP packet (v4 or v6) into Ethernet/IPv4/GRE: outer DF
/// set, outer IP id 0, ECN copied from the inner header per RFC 6040 normal
/// mode, GRE protocol 0x0800/0x86DD, K bit + key when set.
///
/// `None` when the inner packet is not IP (version nibble), the result would
/// exceed 65535 bytes of outer IP, or `out` is too small.
///
/// The copying form, for tests and fuzzing only (feature `testing`): the
/// product encapsulates in place ([`gre_encap_in_place`]); both write their
/// headers with the same function.
#[cfg(any(test, feature = "testing"))]
pub fn gre_encap(inner_ip: &[u8], g: &GreParams, out: &mut [u8]) -> Option<usize> {
    let oh = gre_overhead(g.key.is_some());
    let len = oh + inner_ip.len();
    let out = out.get_mut(..len)?;
    let head = [*inner_ip.first()?, *inner_ip.get(1)?];
    let (hdr, body) = out.split_at_mut(oh);
    write_gre_headers(hdr, head, inner_ip.len(), g)?;
    body.copy_from_slice(inner_ip);
    Some(len)
}

/// The same, in place: `buf[start..start+len]` holds the inner IP packet and
/// `start >= gre_overhead(..)`; writes headers into the headroom and returns
/// the new start (for DPDK mbuf prepend later). The frame is then
/// `buf[new_start..start + len]`.
pub fn gre_encap_in_place(buf: &mut [u8], start: usize, len: usize, g: &GreParams) -> Option<usize> {
    let oh = gre_overhead(g.key.is_some());
    let new_start = start.checked_sub(oh)?;
    let inner = buf.get(start..start.checked_add(len)?)?;
    let head = [*inner.first()?, *inner.get(1)?];
    write_gre_headers(&mut buf[new_start..start], head, len, g)?;
    Some(new_start)
}

/// Lower the MSS option of a TCP SYN in `frame` to `max_mss` if larger (add
/// nothing if absent), fixing the TCP checksum incrementally (RFC 1624).
/// Returns true if changed.
///
/// Works for IPv4 and IPv6 alike (the pseudo-header does not change). A
/// malformed option list is left alone.
pub fn clamp_mss(frame: &mut [u8], p: &Parsed, max_mss: u16) -> bool {
    let L4::Tcp(t) = p.l4 else { return false };
    if t.flags & flags::SYN == 0 {
        return false;
    }
    let l4 = usize::from(p.l4_offset);
    let Some(seg) = frame.get_mut(l4..l4 + usize::from(t.header_len)) else {
        return false;
    };
    let Some(at) = find_mss(seg) else { return false };
    let old = u16::from_be_bytes([seg[at], seg[at + 1]]);
    if old <= max_mss {
        return false;
    }
    set_word_fix_checksum(seg, at, max_mss);
    true
}

/// Offset in `seg` (a TCP header) of the MSS option's value, if the option
/// list is well formed up to it.
fn find_mss(seg: &[u8]) -> Option<usize> {
    let opts = seg.get(wire::tcp::HEADER_LEN..)?;
    let mut rest = opts;
    while !rest.is_empty() {
        let at = wire::tcp::HEADER_LEN + (opts.len() - rest.len());
        let (next, opt) = TcpOption::parse(rest).ok()?;
        if let TcpOption::MaxSegmentSize(_) = opt {
            return Some(at + 2);
        }
        rest = next;
    }
    None
}

/// Writes `v` big-endian at `seg[at..at+2]` and updates the TCP checksum
/// (at 16..18) with RFC 1624 eqn. 3. The checksum sums 16-bit words aligned
/// to the start of the segment; a value at an odd offset straddles two such
/// words, and each is updated. A byte past the end counts as the zero pad
/// byte (RFC 9293 §3.1), which never changes.
fn set_word_fix_checksum(seg: &mut [u8], at: usize, v: u16) {
    let word = |s: &[u8], w: usize| u16::from_be_bytes([s[w], s.get(w + 1).copied().unwrap_or(0)]);
    let first = at & !1;
    let last = (at + 1) & !1;
    let old = [word(seg, first), word(seg, last)];
    seg[at..at + 2].copy_from_slice(&v.to_be_bytes());
    let mut csum = u16::from_be_bytes([seg[16], seg[17]]);
    csum = checksum::update16(csum, old[0], word(seg, first));
    if last != first {
        csum = checksum::update16(csum, old[1], word(seg, last));
    }
    seg[16..18].copy_from_slice(&csum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::fixtures::{LINUX_SYN, QINQ_ARP, VLAN_V6_UDP};
    use crate::parse::{parse, Frag};

    fn tcp_checksum_ok(frame: &[u8]) -> bool {
        let p = parse(frame).unwrap();
        wire::TcpPacket::new_checked(p.l4_bytes(frame))
            .unwrap()
            .verify_checksum(p.src_ip(), p.dst_ip())
    }

    /// LINUX_SYN with correct IP and TCP checksums.
    fn syn_with_checksums() -> [u8; 78] {
        let mut f = LINUX_SYN;
        wire::Ipv4Packet::new_unchecked(&mut f[14..74]).fill_checksum();
        let (s, d) = (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 10).into(),
        );
        wire::TcpPacket::new_unchecked(&mut f[34..74]).fill_checksum(s, d);
        f
    }

    #[test]
    fn syn_ack_v4() {
        let req = LINUX_SYN;
        let p = parse(&req).unwrap();
        let mut out = [0u8; 128];
        let n = tcp_reply(&req, &p, 0xabcd_0001, 0x6f5e_4d3d, 0x12, 65535, Some(1400), &mut out).unwrap();
        assert_eq!(n, 60);
        let r = parse(&out[..n]).unwrap();
        assert_eq!(&out[..6], &req[6..12]);
        assert_eq!(&out[6..12], &req[..6]);
        assert_eq!((r.src, r.dst), (p.dst, p.src));
        assert_eq!((r.ttl, r.ip_id, r.df, r.l3_len), (64, 0, true, 44));
        let t = r.tcp().unwrap();
        assert_eq!(
            (t.sport, t.dport, t.seq, t.ack, t.flags, t.window),
            (80, 50000, 0xabcd_0001, 0x6f5e_4d3d, 0x12, 65535)
        );
        assert_eq!(t.header_len, 24);
        assert_eq!(&out[54..58], &[2, 4, 0x05, 0x78]);
        assert!(wire::Ipv4Packet::new_checked(r.l3_bytes(&out[..n]))
            .unwrap()
            .verify_checksum());
        assert!(tcp_checksum_ok(&out[..n]));
        // Too small a buffer.
        assert_eq!(tcp_reply(&req, &p, 1, 2, 0x12, 1, None, &mut out[..59]), None);
    }

    #[test]
    fn rst_v6_keeps_vlan() {
        // Turn the VLAN/IPv6/UDP fixture into TCP: a 20-byte header after HBH.
        let mut req = [0u8; 94];
        req[..66].copy_from_slice(&VLAN_V6_UDP[..66]);
        req[23] = 28; // payload: 8 HBH + 20 TCP
        req[58] = 6;
        req[66..86].copy_from_slice(&[
            0x04, 0xd2, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0, 0, 0, 0, 0, 0,
        ]);
        let p = parse(&req).unwrap();
        let mut out = [0u8; 128];
        let n = tcp_reply(&req, &p, 77, 0, 0x04, 0, None, &mut out).unwrap();
        assert_eq!(n, 18 + 40 + 20);
        let r = parse(&out[..n]).unwrap();
        assert_eq!((r.vlans, r.vlan_id, r.ttl, r.l4_offset), (1, 42, 64, 58));
        assert_eq!((r.src, r.dst), (p.dst, p.src));
        let t = r.tcp().unwrap();
        assert_eq!((t.sport, t.dport, t.seq, t.flags), (443, 1234, 77, 0x04));
        assert!(tcp_checksum_ok(&out[..n]));
    }

    #[test]
    fn tcp_reply_refuses_non_tcp() {
        let p = parse(&VLAN_V6_UDP).unwrap();
        assert_eq!(tcp_reply(&VLAN_V6_UDP, &p, 0, 0, 0, 0, None, &mut [0; 128]), None);
    }

    #[test]
    fn forged_summaries_are_refused() {
        let mut p = parse(&LINUX_SYN).unwrap();
        p.l3_offset = 4;
        assert_eq!(tcp_reply(&LINUX_SYN, &p, 0, 0, 0, 0, None, &mut [0; 128]), None);
        let mut a = parse(&QINQ_ARP).unwrap();
        a.l3_offset = 0;
        assert_eq!(arp_reply(&QINQ_ARP, &a, [0; 6], &mut [0; 128]), None);
    }

    #[test]
    fn arp_reply_qinq() {
        let p = parse(&QINQ_ARP).unwrap();
        let mac = [0x02, 0xaa, 0, 0, 0, 0x01];
        let mut out = [0u8; 64];
        let n = arp_reply(&QINQ_ARP, &p, mac, &mut out).unwrap();
        assert_eq!(n, 60);
        assert_eq!(&out[..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&out[6..12], &mac);
        assert_eq!(&out[12..22], &QINQ_ARP[12..22]);
        let a = wire::ArpPacket::new_checked(&out[22..50]).unwrap();
        assert_eq!(a.operation(), wire::ArpOperation::Reply);
        assert_eq!(a.source_hardware_addr(), mac);
        assert_eq!(a.source_protocol_addr(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(a.target_hardware_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(a.target_protocol_addr(), Ipv4Addr::new(192, 0, 2, 1));
        // A reply is not answered.
        let r = parse(&out[..n]).unwrap();
        assert_eq!(arp_reply(&out[..n], &r, mac, &mut [0u8; 64]), None);
        assert_eq!(arp_reply(&QINQ_ARP, &p, mac, &mut [0u8; 59]), None);
    }

    fn params(key: Option<u32>) -> GreParams {
        GreParams {
            src_mac: [2, 0, 0, 0, 0, 0x10],
            dst_mac: [2, 0, 0, 0, 0, 0x20],
            tunnel_src: Ipv4Addr::new(10, 1, 0, 1),
            tunnel_dst: Ipv4Addr::new(10, 1, 0, 2),
            key,
            ttl: 64,
        }
    }

    #[test]
    fn gre_encap_v4_with_key_and_ecn() {
        let mut req = syn_with_checksums();
        req[15] = 0x03; // inner ECN CE
        let p = parse(&req).unwrap();
        let inner = p.l3_bytes(&req);
        let g = params(Some(7));
        let mut out = [0u8; 256];
        let n = gre_encap(inner, &g, &mut out).unwrap();
        assert_eq!(n, gre_overhead(true) + 60);
        let o = parse(&out[..n]).unwrap();
        assert_eq!((o.proto, o.df, o.ip_id, o.ecn, o.ttl), (47, true, 0, 3, 64));
        assert_eq!(o.src, g.tunnel_src.into());
        assert!(wire::Ipv4Packet::new_checked(o.l3_bytes(&out[..n]))
            .unwrap()
            .verify_checksum());
        let gre = wire::GrePacket::new_checked(o.l4_bytes(&out[..n])).unwrap();
        assert_eq!((gre.key(), gre.protocol_type()), (Some(7), EtherType::Ipv4));
        assert_eq!(gre.payload(), inner);
        assert_eq!(gre_encap(inner, &g, &mut out[..n - 1]), None);
        assert_eq!(gre_encap(&[0x50, 0], &g, &mut out), None, "not IP");
    }

    #[test]
    fn gre_encap_in_place_matches_copying_version() {
        let inner = &VLAN_V6_UDP[18..78];
        let g = params(None);
        let mut copy = [0u8; 128];
        let n = gre_encap(inner, &g, &mut copy).unwrap();
        let mut buf = [0u8; 128];
        buf[40..100].copy_from_slice(inner);
        let s = gre_encap_in_place(&mut buf, 40, 60, &g).unwrap();
        assert_eq!(s, 40 - gre_overhead(false));
        assert_eq!(&buf[s..100], &copy[..n]);
        let o = parse(&copy[..n]).unwrap();
        assert_eq!(o.ecn, 1, "IPv6 inner ECN copied");
        assert_eq!(&copy[o.l4_offset as usize + 2..o.l4_offset as usize + 4], &[0x86, 0xdd]);
        assert_eq!(gre_encap_in_place(&mut buf, 37, 60, &g), None, "no headroom");
        assert_eq!(gre_encap_in_place(&mut buf, 40, 89, &g), None, "beyond buffer");
    }

    #[test]
    fn clamp_mss_even_and_odd_offsets() {
        let mut f = syn_with_checksums();
        let p = parse(&f).unwrap();
        assert!(!clamp_mss(&mut f, &p, 1460), "equal: unchanged");
        assert!(clamp_mss(&mut f, &p, 1400));
        assert_eq!(&f[56..58], &[0x05, 0x78]);
        assert!(tcp_checksum_ok(&f));
        // Shift the MSS option to an odd offset: nop, mss, then the rest.
        let mut g = syn_with_checksums();
        g[54..59].copy_from_slice(&[0x01, 0x02, 0x04, 0x05, 0xb4]);
        g[59] = 0x01; // sackOK (2 bytes) replaced by nop: 1+4+1 = 6 bytes
        let (s, d) = (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 10).into(),
        );
        wire::TcpPacket::new_unchecked(&mut g[34..74]).fill_checksum(s, d);
        let p = parse(&g).unwrap();
        assert!(clamp_mss(&mut g, &p, 1200));
        assert_eq!(&g[57..59], &1200u16.to_be_bytes());
        assert!(tcp_checksum_ok(&g));
        // Not a SYN.
        let mut h = syn_with_checksums();
        h[47] = 0x10;
        let p = parse(&h).unwrap();
        assert!(!clamp_mss(&mut h, &p, 500));
        assert_eq!(p.frag, Frag::None);
    }
}
