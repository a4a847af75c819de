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
//! compares, but at the views' own offsets (`wire::*::field`) and with
//! their protocol enums; the views remain the reference, and tests check
//! that both agree field by field.
//!
//! # Layout
//!
//! [`Parsed`] is `Copy`, 80 bytes, `repr(C)` so that everything the drop
//! paths read (addresses, the L4 summary, L3 offset and length, protocol,
//! fragment state, TTL) is in its first 64-byte line. Addresses are
//! integers ([`Addr`]): the tables hash them, the ACL and the service
//! lookup index by them, and the cookie MAC and the reply builders write
//! them, all without converting an `IpAddr`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::{self, be16, ethernet, ipv4, ipv6, tcp, udp, EtherType, IpProtocol};
use crate::DropReason;

/// The network-layer protocol of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
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
#[repr(u8)]
pub enum Frag {
    /// Not a fragment (an IPv6 atomic fragment, offset 0 without M, counts
    /// as not fragmented: it carries the whole packet).
    None,
    /// First fragment (offset 0, more fragments): the L4 header is present.
    First,
    /// Non-first fragment: no L4 header.
    Later,
}

/// An IP address as two integers: an IPv4 address in the low 32 bits of
/// `lo` with `hi == 0`, an IPv6 address as its high and low 64 bits. The
/// family is not in the value: it is the packet's ([`Parsed::l3`]), so that
/// comparing two addresses of one packet is two integer compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Addr {
    pub hi: u64,
    pub lo: u64,
}

impl Addr {
    /// An IPv4 address (host order).
    #[inline]
    pub const fn v4(a: u32) -> Self {
        Addr { hi: 0, lo: a as u64 }
    }

    /// An IPv6 address (host order).
    #[inline]
    pub const fn v6(a: u128) -> Self {
        Addr {
            hi: (a >> 64) as u64,
            lo: a as u64,
        }
    }

    /// The address of `ip`, and whether it is IPv6.
    #[inline]
    pub fn from_ip(ip: IpAddr) -> (Self, bool) {
        match ip {
            IpAddr::V4(a) => (Addr::v4(u32::from(a)), false),
            IpAddr::V6(a) => (Addr::v6(u128::from(a)), true),
        }
    }

    /// The IPv4 address (the low 32 bits).
    #[inline]
    pub const fn v4_bits(self) -> u32 {
        self.lo as u32
    }

    /// The 128 bits (an IPv4 address as `::a.b.c.d`).
    #[inline]
    pub const fn v6_bits(self) -> u128 {
        ((self.hi as u128) << 64) | self.lo as u128
    }

    /// As an `IpAddr` of the family `v6` says.
    #[inline]
    pub fn to_ip(self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(self.v6_bits()))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.v4_bits()))
        }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(a: Ipv4Addr) -> Self {
        Addr::v4(u32::from(a))
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(a: Ipv6Addr) -> Self {
        Addr::v6(u128::from(a))
    }
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

/// Summary of one frame. Offsets are from the start of the frame. The first
/// 64 bytes hold what the drop paths read (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Parsed {
    /// Source address; for ARP the sender protocol address.
    pub src: Addr,
    /// Destination address; for ARP the target protocol address.
    pub dst: Addr,
    /// The L4 header.
    pub l4: L4,
    /// Offset of the IP (or ARP) header: 14 + 4 per tag.
    pub l3_offset: u16,
    /// IPv4 total length / IPv6 40 + payload length / ARP 28: the L3 packet
    /// without L2 padding.
    pub l3_len: u16,
    /// Network-layer protocol.
    pub l3: L3,
    /// Fragmentation state.
    pub frag: Frag,
    /// IPv4 TTL or IPv6 hop limit (0 for ARP).
    pub ttl: u8,
    /// Final L4 protocol number (after IPv6 extension headers; 0 for ARP).
    pub proto: u8,
    // Second line: what replies, encapsulation and fingerprints read.
    /// Offset of the L4 header (for a non-first fragment: of its data).
    pub l4_offset: u16,
    /// Offset of the L4 payload (after the TCP/UDP/ICMP header).
    pub payload_offset: u16,
    /// Length of the L4 payload, bounded by the IP/UDP length fields; 0 when
    /// none.
    pub payload_len: u16,
    /// IPv4 identification (0 for IPv6 and ARP).
    pub ip_id: u16,
    /// VLAN ID of the outermost tag, 0 when untagged.
    pub vlan_id: u16,
    /// IPv4 IHL*4; 40 for IPv6 (extension headers are in
    /// `l4_offset - l3_offset`); 28 for ARP.
    pub ip_header_len: u8,
    /// Number of VLAN tags (0, 1 or 2).
    pub vlans: u8,
    /// ECN bits of the IPv4 TOS / IPv6 traffic class.
    pub ecn: u8,
    /// IPv4 don't-fragment flag (false for IPv6 and ARP).
    pub df: bool,
}

// One line for the drop paths, two in all (STYLE.md: hot sizes are pinned).
const _: () = assert!(core::mem::size_of::<Parsed>() <= 80);
const _: () = assert!(core::mem::offset_of!(Parsed, proto) < 64);

impl Parsed {
    /// Whether the packet is IPv6.
    #[inline]
    pub fn is_v6(&self) -> bool {
        self.l3 == L3::Ipv6
    }

    /// The source address as an `IpAddr`.
    #[inline]
    pub fn src_ip(&self) -> IpAddr {
        self.src.to_ip(self.is_v6())
    }

    /// The destination address as an `IpAddr`.
    #[inline]
    pub fn dst_ip(&self) -> IpAddr {
        self.dst.to_ip(self.is_v6())
    }

    /// Length of the IPv4 options in bytes (0 for IPv6 and ARP).
    #[inline]
    pub fn ip_options_len(&self) -> u8 {
        if self.l3 == L3::Ipv4 {
            self.ip_header_len.saturating_sub(ipv4::HEADER_LEN as u8)
        } else {
            0
        }
    }

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
    #[inline]
    pub fn tcp(&self) -> Option<&TcpInfo> {
        match &self.l4 {
            L4::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The TCP flags, 0 when the packet is not TCP.
    #[inline]
    pub fn tcp_flags(&self) -> u8 {
        self.tcp().map_or(0, |t| t.flags)
    }

    /// A TCP connection request ([`wire::tcp::flags::is_pure_syn`]).
    #[inline]
    pub fn is_pure_syn(&self) -> bool {
        matches!(self.l4, L4::Tcp(t) if tcp::flags::is_pure_syn(t.flags))
    }
}

const ETH_LEN: usize = ethernet::HEADER_LEN;

/// Parses `frame` (an Ethernet II frame without FCS). See the module docs.
/// Always inlined: returned through memory, the 80-byte summary costs more
/// to copy than the parse itself.
#[inline(always)]
pub fn parse(frame: &[u8]) -> Result<Parsed, DropReason> {
    if frame.len() < ETH_LEN {
        return Err(DropReason::TruncatedL2);
    }
    let mut ethertype = EtherType::from(be16(frame, ethernet::field::ETHERTYPE));
    let mut off = ETH_LEN;
    let mut vlans = 0u8;
    let mut vlan_id = 0u16;
    // Tags as in wire::ethernet: an S- or C-tag outside, a C-tag inside.
    if matches!(ethertype, EtherType::Vlan | EtherType::QinQ) {
        if frame.len() < off + ethernet::TAG_LEN {
            return Err(DropReason::TruncatedL2);
        }
        vlan_id = be16(frame, off) & 0x0fff;
        ethertype = EtherType::from(be16(frame, off + 2));
        off += ethernet::TAG_LEN;
        vlans = 1;
        if ethertype == EtherType::Vlan {
            if frame.len() < off + ethernet::TAG_LEN {
                return Err(DropReason::TruncatedL2);
            }
            ethertype = EtherType::from(be16(frame, off + 2));
            off += ethernet::TAG_LEN;
            vlans = 2;
        }
    }
    let l2 = L2 { vlans, vlan_id, off };
    match ethertype {
        EtherType::Ipv4 => parse_ipv4(frame, l2),
        EtherType::Ipv6 => parse_ipv6(frame, l2),
        EtherType::Arp => parse_arp(frame, l2),
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
        src: Addr::v4(u32::from(arp.source_protocol_addr())),
        dst: Addr::v4(u32::from(arp.target_protocol_addr())),
        ttl: 0,
        ip_id: 0,
        df: false,
        ecn: 0,
        ip_header_len: wire::arp::PACKET_LEN as u8,
        l3_len: wire::arp::PACKET_LEN as u16,
        frag: Frag::None,
        proto: 0,
        l4_offset: end,
        l4: L4::None,
        payload_offset: end,
        payload_len: 0,
    })
}

/// A big-endian `u16` of a fixed-size header (no bounds check: the index is
/// a constant within the array).
#[inline(always)]
fn h16<const N: usize>(h: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

/// A big-endian `u32` of a fixed-size header.
#[inline(always)]
fn h32<const N: usize>(h: &[u8; N], at: usize) -> u32 {
    u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

// The fixed headers are read as arrays (`first_chunk`): one length check
// each, where indexing the slice checked every field again.
#[inline(always)]
fn parse_ipv4(frame: &[u8], l2: L2) -> Result<Parsed, DropReason> {
    use ipv4::field as f;
    let ip = frame.get(l2.off..).unwrap_or(&[]);
    let Some(h) = ip.first_chunk::<{ ipv4::HEADER_LEN }>() else {
        return Err(DropReason::BadIpHeader);
    };
    if h[f::VER_IHL] >> 4 != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let ihl = usize::from(h[f::VER_IHL] & 0x0f) * 4;
    let total = usize::from(h16(h, f::LENGTH));
    if ihl < ipv4::HEADER_LEN || total < ihl || total > ip.len() {
        return Err(DropReason::BadIpHeader);
    }
    let flags_off = h16(h, f::FLG_OFF);
    let frag = match (flags_off & ipv4::OFFSET_MASK != 0, flags_off & ipv4::MF != 0) {
        (true, _) => Frag::Later,
        (false, true) => Frag::First,
        (false, false) => Frag::None,
    };
    let proto = h[f::PROTOCOL];
    let l4 = parse_l4(ip.get(ihl..total).unwrap_or(&[]), proto, frag, false)?;
    // l2.off <= 22, ihl <= 60, total <= 65535 and l4 offsets are within the
    // IPv4 packet: l3 offset + 60 + 60 fits, and the payload offset/len are
    // bounded by the total length. Checked conversion keeps this honest.
    let base = l2.off + ihl;
    Ok(Parsed {
        vlans: l2.vlans,
        vlan_id: l2.vlan_id,
        l3_offset: l2.off as u16,
        l3: L3::Ipv4,
        src: Addr::v4(h32(h, f::SRC_ADDR.start)),
        dst: Addr::v4(h32(h, f::DST_ADDR.start)),
        ttl: h[f::TTL],
        ip_id: h16(h, f::IDENT),
        df: flags_off & ipv4::DF != 0,
        ecn: h[f::DSCP_ECN] & 0x03,
        ip_header_len: ihl as u8,
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
    use ipv6::field as f;
    let ip = &frame[l2.off..];
    if ip.len() < ipv6::HEADER_LEN || ip[0] >> 4 != 6 {
        return Err(DropReason::BadIpHeader);
    }
    let total = ipv6::HEADER_LEN + usize::from(be16(ip, f::LENGTH));
    if total > ip.len() {
        return Err(DropReason::BadIpHeader);
    }
    let payload = &ip[ipv6::HEADER_LEN..total];
    let (proto, ext_len, _, frag_hdr) =
        wire::ipv6::walk(payload, ip[f::NXT_HDR]).map_err(|_| DropReason::BadIpHeader)?;
    let frag = match frag_hdr {
        Some(f) if f.offset != 0 => Frag::Later,
        Some(f) if f.more => Frag::First,
        _ => Frag::None,
    };
    let l4 = parse_l4(&payload[ext_len..], proto, frag, true)?;
    let addr = |r: core::ops::Range<usize>| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&ip[r]);
        Addr::v6(u128::from_be_bytes(b))
    };
    let base = l2.off + ipv6::HEADER_LEN + ext_len;
    Ok(Parsed {
        vlans: l2.vlans,
        vlan_id: l2.vlan_id,
        l3_offset: l2.off as u16,
        l3: L3::Ipv6,
        src: addr(f::SRC_ADDR),
        dst: addr(f::DST_ADDR),
        ttl: ip[f::HOP_LIMIT],
        ip_id: 0,
        df: false,
        // Traffic class spans bits 4..12 of the first word; ECN is its low
        // two bits, i.e. bits 4..6 of byte 1.
        ecn: (ip[1] >> 4) & 0x03,
        ip_header_len: ipv6::HEADER_LEN as u8,
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
#[inline(always)]
fn parse_l4(seg: &[u8], proto: u8, frag: Frag, v6: bool) -> Result<L4Parsed, DropReason> {
    let none = L4Parsed {
        l4: L4::None,
        header_len: 0,
        payload_len: seg.len(),
    };
    if frag == Frag::Later {
        return Ok(none);
    }
    match (IpProtocol::from(proto), v6) {
        (IpProtocol::Tcp, _) => {
            use tcp::field as f;
            let Some(h) = seg.first_chunk::<{ tcp::HEADER_LEN }>() else {
                return Err(DropReason::BadL4Header);
            };
            let doff = usize::from(h[f::DATA_OFF] >> 4) * 4;
            if doff < tcp::HEADER_LEN || doff > seg.len() {
                return Err(DropReason::BadL4Header);
            }
            Ok(L4Parsed {
                l4: L4::Tcp(TcpInfo {
                    sport: h16(h, f::SRC_PORT),
                    dport: h16(h, f::DST_PORT),
                    seq: h32(h, f::SEQ_NUM),
                    ack: h32(h, f::ACK_NUM),
                    flags: h[f::FLAGS],
                    window: h16(h, f::WIN_SIZE),
                    urgent: h16(h, f::URGENT),
                    header_len: doff as u8,
                }),
                header_len: doff,
                payload_len: seg.len() - doff,
            })
        }
        (IpProtocol::Udp, _) => {
            use udp::field as f;
            let Some(h) = seg.first_chunk::<{ udp::HEADER_LEN }>() else {
                return Err(DropReason::BadL4Header);
            };
            let ulen = usize::from(h16(h, f::LENGTH));
            // A first fragment holds only part of the datagram the length
            // field counts. Otherwise the field must equal the IP payload:
            // shorter is legal for RFC 768 but no stack sends it, and bytes
            // past the datagram are a smuggling channel, so it is refused.
            let end = if frag == Frag::First { seg.len().min(ulen) } else { ulen };
            if ulen < udp::HEADER_LEN || end > seg.len() || (frag != Frag::First && ulen != seg.len()) {
                return Err(DropReason::BadL4Header);
            }
            Ok(L4Parsed {
                l4: L4::Udp {
                    sport: h16(h, f::SRC_PORT),
                    dport: h16(h, f::DST_PORT),
                },
                header_len: udp::HEADER_LEN,
                payload_len: end - udp::HEADER_LEN,
            })
        }
        (IpProtocol::Icmp, false) | (IpProtocol::Icmpv6, true) => {
            use wire::icmp::field as f;
            if seg.len() < wire::icmp::HEADER_LEN {
                return Err(DropReason::BadL4Header);
            }
            let (ty, code) = (seg[f::TYPE], seg[f::CODE]);
            Ok(L4Parsed {
                l4: if v6 {
                    L4::Icmpv6 { ty, code }
                } else {
                    L4::Icmp { ty, code }
                },
                header_len: wire::icmp::HEADER_LEN,
                payload_len: seg.len() - wire::icmp::HEADER_LEN,
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
        assert_eq!(p.src_ip(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(p.dst_ip(), IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)));
        assert_eq!(
            (p.ttl, p.ip_id, p.df, p.ecn, p.ip_options_len()),
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
        assert_eq!(p.src_ip(), "2001:db8::1".parse::<IpAddr>().unwrap());
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
        assert_eq!(p.src_ip(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(p.dst_ip(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
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
