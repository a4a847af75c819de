//! One pass over a frame's L2/L3/L4 headers into a small `Copy` summary,
//! [`Parsed`]: the first step of the packet path and the only place the
//! per-packet code reads raw headers.
//!
//! # Contract
//!
//! - [`parse`] never panics and never allocates, whatever the bytes; a frame
//!   it refuses maps to exactly one [`DropReason`]:
//!   shorter than its Ethernet/VLAN header → `TruncatedL2`; an EtherType
//!   other than IPv4/IPv6/ARP → `NonIp`; ARP that is not Ethernet/IPv4 or is
//!   short → `ArpIgnored`; IP version, IHL or length fields inconsistent with
//!   each other or the frame, or an IPv6 extension chain that is truncated or
//!   longer than [`wire::ipv6::MAX_EXT_HEADERS`] → `BadIpHeader`; a TCP, UDP,
//!   ICMP or ICMPv6 header that is truncated, a TCP data offset below 5 or
//!   beyond the IP payload, a UDP length below 8 or other than the IP payload (first fragments: beyond it) →
//!   `BadL4Header`.
//! - Everything after the IP header is read within the IP length field, not
//!   the frame: Ethernet padding (frames are at least 60 bytes) is ignored.
//! - Checksums are not verified (the caller decides whether to pay for it).
//! - Non-first fragments have `l4: L4::None` and their whole fragment data as
//!   payload. In a first fragment the UDP length field counts the whole
//!   datagram, so it may exceed the fragment; that is accepted there.
//! - Offsets are `u16`: an IPv6 packet whose offsets or length do not fit
//!   (only possible above 65535-byte frames) is refused as `BadIpHeader`.
//!
//! The bytes are read directly rather than through the [`crate::wire`] views
//! so that the common Ethernet/IPv4/TCP case is a handful of loads and
//! compares; the views remain the reference, and tests check that both
//! agree field by field.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::{self, be16, be32};
use crate::DropReason;

/// The network-layer protocol of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// IPv4 (EtherType 0x0800).
    Ipv4,
    /// IPv6 (EtherType 0x86DD).
    Ipv6,
    /// ARP for Ethernet/IPv4 (EtherType 0x0806).
    Arp,
}

/// Fragmentation state of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frag {
    /// Not a fragment (an IPv6 atomic fragment, offset 0 without M, counts
    /// as not fragmented: it carries the whole packet).
    None,
    /// First fragment (offset 0, more fragments): the L4 header is present.
    First,
    /// Non-first fragment: no L4 header.
    Later,
}

/// The TCP header fields the classifier uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// The eight flag bits, FIN = 0x01 .. CWR = 0x80 ([`wire::tcp::flags`]).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Header length in bytes (data offset * 4, options included).
    pub header_len: u8,
}

/// The transport-layer header, if any was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp(TcpInfo),
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP over IPv4.
    Icmp {
        /// Message type.
        ty: u8,
        /// Message code.
        code: u8,
    },
    /// ICMPv6 over IPv6.
    Icmpv6 {
        /// Message type.
        ty: u8,
        /// Message code.
        code: u8,
    },
    /// No L4 header: ARP, a non-first fragment, or another protocol.
    None,
}

/// Summary of one frame. Offsets are from the start of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Number of VLAN tags (0, 1 or 2).
    pub vlans: u8,
    /// VLAN ID of the outermost tag, 0 when untagged.
    pub vlan_id: u16,
    /// Offset of the IP (or ARP) header: 14 + 4 per tag.
    pub l3_offset: u16,
    /// Network-layer protocol.
    pub l3: L3,
    /// Source address; for ARP the sender protocol address.
    pub src: IpAddr,
    /// Destination address; for ARP the target protocol address.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit (0 for ARP).
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6 and ARP).
    pub ip_id: u16,
    /// IPv4 don't-fragment flag (false for IPv6 and ARP).
    pub df: bool,
    /// ECN bits of the IPv4 TOS / IPv6 traffic class.
    pub ecn: u8,
    /// Length of the IPv4 options in bytes (0 for IPv6 and ARP).
    pub ip_options_len: u8,
    /// IPv4 IHL*4; 40 for IPv6 (extension headers are in
    /// `l4_offset - l3_offset`); 28 for ARP.
    pub ip_header_len: u16,
    /// IPv4 total length / IPv6 40 + payload length / ARP 28: the L3 packet
    /// without L2 padding.
    pub l3_len: u16,
    /// Fragmentation state.
    pub frag: Frag,
    /// Final L4 protocol number (after IPv6 extension headers; 0 for ARP).
    pub proto: u8,
    /// Offset of the L4 header (for a non-first fragment: of its data).
    pub l4_offset: u16,
    /// The L4 header.
    pub l4: L4,
    /// Offset of the L4 payload (after the TCP/UDP/ICMP header).
    pub payload_offset: u16,
    /// Length of the L4 payload, bounded by the IP/UDP length fields; 0 when
    /// none.
    pub payload_len: u16,
}

impl Parsed {
    /// The L3 packet (IP header to the end of the IP length, or the ARP
    /// packet) in `frame`, which must be the frame that was parsed; empty if
    /// it is not.
    pub fn l3_bytes<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let start = usize::from(self.l3_offset);
        frame.get(start..start + usize::from(self.l3_len)).unwrap_or(&[])
    }

    /// The L4 header and payload (to the end of the IP length).
    pub fn l4_bytes<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let end = usize::from(self.l3_offset) + usize::from(self.l3_len);
        frame.get(usize::from(self.l4_offset)..end).unwrap_or(&[])
    }

    /// The L4 payload.
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let start = usize::from(self.payload_offset);
        frame.get(start..start + usize::from(self.payload_len)).unwrap_or(&[])
    }

    /// The TCP header fields, if this is TCP with its header present.
    pub fn tcp(&self) -> Option<&TcpInfo> {
        match &self.l4 {
            L4::Tcp(t) => Some(t),
            _ => None,
        }
    }
}

/// Ethernet header length and the TPIDs recognised as VLAN tags (the same
/// rules as [`wire::EthernetFrame`]).
const ETH_LEN: usize = 14;
const TPID_C: u16 = 0x8100;
const TPID_S: u16 = 0x88a8;

/// Parses `frame` (an Ethernet II frame without FCS). See the module docs.
#[inline]
pub fn parse(frame: &[u8]) -> Result<Parsed, DropReason> {
    if frame.len() < ETH_LEN {
        return Err(DropReason::TruncatedL2);
    }
    let mut ethertype = be16(frame, 12);
    let mut off = ETH_LEN;
    let mut vlans = 0u8;
    let mut vlan_id = 0u16;
    if ethertype == TPID_C || ethertype == TPID_S {
        if frame.len() < off + 4 {
            return Err(DropReason::TruncatedL2);
        }
        vlan_id = be16(frame, off) & 0x0fff;
        ethertype = be16(frame, off + 2);
        off += 4;
        vlans = 1;
        if ethertype == TPID_C {
            if frame.len() < off + 4 {
                return Err(DropReason::TruncatedL2);
            }
            ethertype = be16(frame, off + 2);
            off += 4;
            vlans = 2;
        }
    }
    let l2 = L2 { vlans, vlan_id, off };
    match ethertype {
        0x0800 => parse_ipv4(frame, l2),
        0x86dd => parse_ipv6(frame, l2),
        0x0806 => parse_arp(frame, l2),
        _ => Err(DropReason::NonIp),
    }
}

/// What the L2 step found.
#[derive(Clone, Copy)]
struct L2 {
    vlans: u8,
    vlan_id: u16,
    off: usize,
}

fn parse_arp(frame: &[u8], l2: L2) -> Result<Parsed, DropReason> {
    let arp = wire::ArpPacket::new_checked(&frame[l2.off..]).map_err(|_| DropReason::ArpIgnored)?;
    let l3_offset = l2.off as u16; // at most 22
    let end = l3_offset + wire::arp::PACKET_LEN as u16;
    Ok(Parsed {
        vlans: l2.vlans,
        vlan_id: l2.vlan_id,
        l3_offset,
        l3: L3::Arp,
        src: IpAddr::V4(arp.source_protocol_addr()),
        dst: IpAddr::V4(arp.target_protocol_addr()),
        ttl: 0,
        ip_id: 0,
        df: false,
        ecn: 0,
        ip_options_len: 0,
        ip_header_len: wire::arp::PACKET_LEN as u16,
        l3_len: wire::arp::PACKET_LEN as u16,
        frag: Frag::None,
        proto: 0,
        l4_offset: end,
        l4: L4::None,
        payload_offset: end,
        payload_len: 0,
    })
}

#[inline]
fn parse_ipv4(frame: &[u8], l2: L2) -> Result<Parsed, DropReason> {
    let ip = &frame[l2.off..];
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ihl < 20 || total < ihl || total > ip.len() {
        return Err(DropReason::BadIpHeader);
    }
    let ip = &ip[..total];
    let flags_off = be16(ip, 6);
    let frag = match (flags_off & 0x1fff != 0, flags_off & 0x2000 != 0) {
        (true, _) => Frag::Later,
        (false, true) => Frag::First,
        (false, false) => Frag::None,
    };
    let proto = ip[9];
    let l4 = parse_l4(&ip[ihl..], proto, frag, false)?;
    // l2.off <= 22, ihl <= 60, total <= 65535 and l4 offsets are within the
    // IPv4 packet: l3 offset + 60 + 60 fits, and the payload offset/len are
    // bounded by the total length. Checked conversion keeps this honest.
    let base = l2.off + ihl;
    Ok(Parsed {
        vlans: l2.vlans,
        vlan_id: l2.vlan_id,
        l3_offset: l2.off as u16,
        l3: L3::Ipv4,
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        ttl: ip[8],
        ip_id: be16(ip, 4),
        df: flags_off & 0x4000 != 0,
        ecn: ip[1] & 0x03,
        ip_options_len: (ihl - 20) as u8,
        ip_header_len: ihl as u16,
        l3_len: total as u16,
        frag,
        proto,
        l4_offset: base as u16,
        l4: l4.l4,
        payload_offset: to_u16(base + l4.header_len)?,
        payload_len: l4.payload_len as u16,
    })
}

fn parse_ipv6(frame: &[u8], l2: L2) -> Result<Parsed, DropReason> {
    let ip = &frame[l2.off..];
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return Err(DropReason::BadIpHeader);
    }
    let total = 40 + usize::from(be16(ip, 4));
    if total > ip.len() {
        return Err(DropReason::BadIpHeader);
    }
    let payload = &ip[40..total];
    let (proto, ext_len, _, frag_hdr) = wire::ipv6::walk(payload, ip[6]).map_err(|_| DropReason::BadIpHeader)?;
    let frag = match frag_hdr {
        Some(f) if f.offset != 0 => Frag::Later,
        Some(f) if f.more => Frag::First,
        _ => Frag::None,
    };
    let l4 = parse_l4(&payload[ext_len..], proto, frag, true)?;
    let mut src = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&ip[24..40]);
    let base = l2.off + 40 + ext_len;
    Ok(Parsed {
        vlans: l2.vlans,
        vlan_id: l2.vlan_id,
        l3_offset: l2.off as u16,
        l3: L3::Ipv6,
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        ttl: ip[7],
        ip_id: 0,
        df: false,
        // Traffic class spans bits 4..12 of the first word; ECN is its low
        // two bits, i.e. bits 4..6 of byte 1.
        ecn: (ip[1] >> 4) & 0x03,
        ip_options_len: 0,
        ip_header_len: 40,
        l3_len: to_u16(total)?,
        frag,
        proto,
        l4_offset: to_u16(base)?,
        l4: l4.l4,
        payload_offset: to_u16(base + l4.header_len)?,
        payload_len: to_u16(l4.payload_len)?,
    })
}

fn to_u16(v: usize) -> Result<u16, DropReason> {
    u16::try_from(v).map_err(|_| DropReason::BadIpHeader)
}

/// What the L4 step found: the header, its length and the payload length.
struct L4Parsed {
    l4: L4,
    header_len: usize,
    payload_len: usize,
}

/// Parses the L4 header at the start of `seg` (the IP payload after any
/// extension headers, bounded by the IP length).
#[inline]
fn parse_l4(seg: &[u8], proto: u8, frag: Frag, v6: bool) -> Result<L4Parsed, DropReason> {
    let none = L4Parsed {
        l4: L4::None,
        header_len: 0,
        payload_len: seg.len(),
    };
    if frag == Frag::Later {
        return Ok(none);
    }
    match (proto, v6) {
        (6, _) => {
            if seg.len() < 20 {
                return Err(DropReason::BadL4Header);
            }
            let doff = usize::from(seg[12] >> 4) * 4;
            if doff < 20 || doff > seg.len() {
                return Err(DropReason::BadL4Header);
            }
            Ok(L4Parsed {
                l4: L4::Tcp(TcpInfo {
                    sport: be16(seg, 0),
                    dport: be16(seg, 2),
                    seq: be32(seg, 4),
                    ack: be32(seg, 8),
                    flags: seg[13],
                    window: be16(seg, 14),
                    urgent: be16(seg, 18),
                    header_len: doff as u8,
                }),
                header_len: doff,
                payload_len: seg.len() - doff,
            })
        }
        (17, _) => {
            if seg.len() < 8 {
                return Err(DropReason::BadL4Header);
            }
            let ulen = usize::from(be16(seg, 4));
            // A first fragment holds only part of the datagram the length
            // field counts. Otherwise the field must equal the IP payload:
            // shorter is legal for RFC 768 but no stack sends it, and bytes
            // past the datagram are a smuggling channel, so it is refused.
            let end = if frag == Frag::First { seg.len().min(ulen) } else { ulen };
            if ulen < 8 || end > seg.len() || (frag != Frag::First && ulen != seg.len()) {
                return Err(DropReason::BadL4Header);
            }
            Ok(L4Parsed {
                l4: L4::Udp {
                    sport: be16(seg, 0),
                    dport: be16(seg, 2),
                },
                header_len: 8,
                payload_len: end - 8,
            })
        }
        (1, false) | (58, true) => {
            if seg.len() < 8 {
                return Err(DropReason::BadL4Header);
            }
            let (ty, code) = (seg[0], seg[1]);
            Ok(L4Parsed {
                l4: if v6 {
                    L4::Icmpv6 { ty, code }
                } else {
                    L4::Icmp { ty, code }
                },
                header_len: 8,
                payload_len: seg.len() - 8,
            })
        }
        _ => Ok(none),
    }
}

/// Annotated frames shared by the unit tests of `parse`, `build` and
/// `fingerprint`.
#[cfg(test)]
pub(crate) mod fixtures {
    /// A Linux SYN: Ethernet / IPv4 (DF, id 0x1c46, TTL 64) / TCP with
    /// mss 1460, sackOK, timestamps, nop, wscale 7; followed by 4 bytes that
    /// are not part of the IP packet (as if trailing padding).
    pub(crate) const LINUX_SYN: [u8; 78] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst MAC
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src MAC
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x3c, // v4, IHL 5, TOS 0, total 60
        0x1c, 0x46, 0x40, 0x00, // id, DF
        0x40, 0x06, 0x00, 0x00, // TTL 64, TCP, checksum (unchecked)
        0xc0, 0x00, 0x02, 0x01, // 192.0.2.1
        0xc6, 0x33, 0x64, 0x0a, // 198.51.100.10
        0xc3, 0x50, 0x00, 0x50, // 50000 -> 80
        0x6f, 0x5e, 0x4d, 0x3c, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // doff 10, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // mss 1460
        0x04, 0x02, // sackOK
        0x08, 0x0a, 0x00, 0x0a, 0x8b, 0x2c, 0x00, 0x00, 0x00, 0x00, // timestamps
        0x01, 0x03, 0x03, 0x07, // nop, wscale 7
        0xee, 0xee, 0xee, 0xee, // beyond the IP total length
    ];

    /// 802.1Q VLAN 42 / IPv6 / hop-by-hop / UDP 53 -> 5353 with 4 bytes.
    pub(crate) const VLAN_V6_UDP: [u8; 78] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // MACs
        0x81, 0x00, 0x00, 0x2a, // 802.1Q, VID 42
        0x86, 0xdd, // IPv6
        0x60, 0x10, 0x00, 0x00, // v6, TC 0x01 (ECN 1)
        0x00, 0x14, 0x00, 0x3f, // payload 20, next hop-by-hop, hop limit 63
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // HBH: next UDP, PadN
        0x00, 0x35, 0x14, 0xe9, 0x00, 0x0c, 0x00, 0x00, // UDP 53 -> 5353, len 12
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    /// QinQ (S-VID 100, C-VID 200) / ARP request who-has 192.0.2.10.
    pub(crate) const QINQ_ARP: [u8; 50] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // MACs
        0x88, 0xa8, 0x00, 0x64, // S-tag VID 100
        0x81, 0x00, 0x00, 0xc8, // C-tag VID 200
        0x08, 0x06, // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x01, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x0a, // target
    ];
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn linux_syn() {
        let p = parse(&LINUX_SYN).unwrap();
        assert_eq!((p.vlans, p.vlan_id, p.l3_offset, p.l3), (0, 0, 14, L3::Ipv4));
        assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)));
        assert_eq!(
            (p.ttl, p.ip_id, p.df, p.ecn, p.ip_options_len),
            (64, 0x1c46, true, 0, 0)
        );
        assert_eq!((p.ip_header_len, p.l3_len, p.frag, p.proto), (20, 60, Frag::None, 6));
        assert_eq!(p.l4_offset, 34);
        assert_eq!(
            p.l4,
            L4::Tcp(TcpInfo {
                sport: 50000,
                dport: 80,
                seq: 0x6f5e_4d3c,
                ack: 0,
                flags: 0x02,
                window: 64240,
                urgent: 0,
                header_len: 40,
            })
        );
        assert_eq!((p.payload_offset, p.payload_len), (74, 0));
        assert!(p.payload(&LINUX_SYN).is_empty());
        assert_eq!(p.l3_bytes(&LINUX_SYN).len(), 60);
    }

    #[test]
    fn vlan_ipv6_udp_with_extension_header() {
        let p = parse(&VLAN_V6_UDP).unwrap();
        assert_eq!((p.vlans, p.vlan_id, p.l3_offset, p.l3), (1, 42, 18, L3::Ipv6));
        assert_eq!(p.src, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!((p.ttl, p.ip_id, p.df, p.ecn), (63, 0, false, 1));
        assert_eq!((p.ip_header_len, p.l3_len, p.proto, p.l4_offset), (40, 60, 17, 66));
        assert_eq!(p.l4, L4::Udp { sport: 53, dport: 5353 });
        assert_eq!((p.payload_offset, p.payload_len), (74, 4));
        assert_eq!(p.payload(&VLAN_V6_UDP), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn qinq_arp() {
        let p = parse(&QINQ_ARP).unwrap();
        assert_eq!((p.vlans, p.vlan_id, p.l3_offset, p.l3), (2, 100, 22, L3::Arp));
        assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!((p.l4, p.proto, p.l3_len), (L4::None, 0, 28));
        let mut bad = QINQ_ARP;
        bad[27] = 16; // protocol length
        assert_eq!(parse(&bad), Err(DropReason::ArpIgnored));
        assert_eq!(parse(&QINQ_ARP[..49]), Err(DropReason::ArpIgnored));
    }

    #[test]
    fn l2_errors() {
        assert_eq!(parse(&LINUX_SYN[..13]), Err(DropReason::TruncatedL2));
        assert_eq!(parse(&QINQ_ARP[..17]), Err(DropReason::TruncatedL2));
        assert_eq!(parse(&QINQ_ARP[..21]), Err(DropReason::TruncatedL2));
        let mut f = LINUX_SYN;
        f[12..14].copy_from_slice(&[0x88, 0xcc]); // LLDP
        assert_eq!(parse(&f), Err(DropReason::NonIp));
        assert_eq!(parse(&f[..14]), Err(DropReason::NonIp));
    }

    #[test]
    fn ip_errors() {
        let set = |at: usize, v: u8| {
            let mut f = LINUX_SYN;
            f[at] = v;
            parse(&f)
        };
        assert_eq!(set(14, 0x65), Err(DropReason::BadIpHeader), "version 6 in IPv4");
        assert_eq!(set(14, 0x44), Err(DropReason::BadIpHeader), "IHL 4");
        assert_eq!(set(17, 0x13), Err(DropReason::BadIpHeader), "total 19 < IHL*4");
        assert_eq!(set(16, 0x01), Err(DropReason::BadIpHeader), "total beyond frame");
        assert_eq!(parse(&LINUX_SYN[..33]), Err(DropReason::BadIpHeader));
        assert_eq!(parse(&VLAN_V6_UDP[..57]), Err(DropReason::BadIpHeader));
        let mut f = VLAN_V6_UDP;
        f[23] = 0x09; // payload length 9 cuts the UDP header after HBH
        assert_eq!(parse(&f), Err(DropReason::BadL4Header));
        f[23] = 0x07; // cuts the hop-by-hop header
        assert_eq!(parse(&f), Err(DropReason::BadIpHeader));
    }

    #[test]
    fn l4_errors() {
        let set = |at: usize, v: u8| {
            let mut f = LINUX_SYN;
            f[at] = v;
            parse(&f)
        };
        assert_eq!(set(46, 0x40), Err(DropReason::BadL4Header), "doff 4");
        assert_eq!(set(46, 0xb0), Err(DropReason::BadL4Header), "doff 11 > 40 bytes");
        // IP total length 39 leaves 19 bytes of TCP.
        assert_eq!(set(17, 39), Err(DropReason::BadL4Header));
        let mut f = VLAN_V6_UDP;
        f[71] = 7;
        assert_eq!(parse(&f), Err(DropReason::BadL4Header), "UDP length 7");
        f[71] = 13;
        assert_eq!(parse(&f), Err(DropReason::BadL4Header), "UDP length beyond IP payload");
        f[71] = 8;
        assert_eq!(
            parse(&f),
            Err(DropReason::BadL4Header),
            "UDP length short of the IP payload"
        );
    }

    #[test]
    fn fragments() {
        // Non-first fragment: offset 185 (1480 bytes), no L4 header.
        let mut f = LINUX_SYN;
        f[20] = 0x00;
        f[21] = 185;
        let p = parse(&f).unwrap();
        assert_eq!((p.frag, p.l4, p.proto), (Frag::Later, L4::None, 6));
        assert_eq!((p.payload_offset, p.payload_len), (34, 40));
        // Garbage where a TCP header would be is fine in a later fragment.
        f[46] = 0x00;
        assert!(parse(&f).is_ok());
        // First fragment (MF) of UDP: the length field counts the whole
        // datagram.
        let mut g = [0u8; 86];
        g[..66].copy_from_slice(&VLAN_V6_UDP[..66]);
        g[23] = 28; // payload: 8 HBH + 8 frag + 12 UDP
        g[58] = 0x2c; // HBH next header: fragment
        g[66..74].copy_from_slice(&[0x11, 0, 0x00, 0x01, 0, 0, 0, 9]); // frag, offset 0, M
        g[74..82].copy_from_slice(&[0x00, 0x35, 0x14, 0xe9, 0x00, 200, 0, 0]);
        let p = parse(&g).unwrap();
        assert_eq!(p.frag, Frag::First);
        assert_eq!(p.l4, L4::Udp { sport: 53, dport: 5353 });
        assert_eq!((p.l4_offset, p.payload_len), (74, 4));
    }

    #[test]
    fn icmp_and_other_protocols() {
        let mut f = [0u8; 60];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14..34].copy_from_slice(&[
            0x45, 0x01, 0x00, 0x24, 0, 0, 0, 0, 0x39, 0x01, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f[34..38].copy_from_slice(&[8, 0, 0, 0]); // echo request
        let p = parse(&f).unwrap();
        assert_eq!(p.l4, L4::Icmp { ty: 8, code: 0 });
        assert_eq!((p.ecn, p.ttl, p.payload_offset, p.payload_len), (1, 0x39, 42, 8));
        f[17] = 27; // 7 bytes of ICMP
        assert_eq!(parse(&f), Err(DropReason::BadL4Header));
        f[17] = 0x24;
        f[23] = 47; // GRE: no L4 summary
        let p = parse(&f).unwrap();
        assert_eq!((p.l4, p.proto, p.payload_offset, p.payload_len), (L4::None, 47, 34, 16));
    }
}
