//! IPv6 fixed header (RFC 8200 §3) and a bounded walk over its extension
//! headers (RFC 8200 §4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Source Address (128 bits)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Destination Address (128 bits)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Extension headers walked by [`Packet::ext_walk`] (all start with a
//! next-header byte):
//! - hop-by-hop (0), routing (43), destination options (60): byte 1 is the
//!   length in 8-byte units, not counting the first 8 (RFC 8200 §4.3-4.6);
//! - fragment (44): 8 bytes, offset in 8-byte units in bits 0..13 of bytes
//!   2..4, M flag in bit 15 (RFC 8200 §4.5);
//! - AH (51): byte 1 is the length in 4-byte units minus 2 (RFC 4302 §2.2).
//!
//! The walk stops at the first other next-header value, after at most
//! [`MAX_EXT_HEADERS`] headers (a longer chain is an error: it only serves
//! to evade filters, RFC 7112), and at a non-first fragment header (what
//! follows is the middle of the fragmentable part, not a header). A
//! hop-by-hop header anywhere but first is an error (RFC 8200 §4.1).
//! Jumbograms (payload length 0 with a jumbo option) are not supported: the
//! payload is empty.

use core::net::Ipv6Addr;

use super::{be16, put16, Error, IpProtocol, Result};

pub(crate) mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Most extension headers walked before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// Fragment header contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Result of walking the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtInfo {
    /// The protocol after the last extension header.
    pub next_header: IpProtocol,
    /// Offset of that protocol's header from the start of the IPv6 header
    /// (40 when there are no extension headers).
    pub l4_offset: usize,
    /// Number of extension headers walked.
    pub count: u8,
    /// The fragment header, if one was walked.
    pub frag: Option<FragInfo>,
}

view! {
    /// A view of an IPv6 packet (<https://www.rfc-editor.org/rfc/rfc8200#section-3>).
    Packet, "Wraps a buffer, checking version and lengths."
}

/// Walks the extension headers of `payload` (the bytes after the fixed
/// header, bounded by the payload length) starting with next-header `nh`.
/// Returns the final protocol, the offset in `payload`, the header count and
/// the fragment header. Shared with `parse` so that both agree.
#[inline]
pub(crate) fn walk(payload: &[u8], mut nh: u8) -> Result<(u8, usize, u8, Option<FragInfo>)> {
    let mut off = 0usize;
    let mut frag = None;
    let mut count = 0u8;
    loop {
        let len = match nh {
            0 if count > 0 => return Err(Error),
            0 | 43 | 60 => {
                let b = payload.get(off..off + 2).ok_or(Error)?;
                (usize::from(b[1]) + 1) * 8
            }
            44 => {
                let b = payload.get(off..off + 8).ok_or(Error)?;
                let w = be16(b, 2);
                let info = FragInfo {
                    offset: w & 0xfff8,
                    more: w & 1 != 0,
                    ident: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                };
                frag = Some(info);
                if info.offset != 0 {
                    // Non-first fragment: stop here, the rest is data.
                    if usize::from(count) >= MAX_EXT_HEADERS {
                        return Err(Error);
                    }
                    return Ok((b[0], off + 8, count + 1, frag));
                }
                8
            }
            51 => {
                let b = payload.get(off..off + 2).ok_or(Error)?;
                (usize::from(b[1]) + 2) * 4
            }
            _ => return Ok((nh, off, count, frag)),
        };
        if usize::from(count) >= MAX_EXT_HEADERS || off + len > payload.len() {
            return Err(Error);
        }
        nh = payload[off];
        off += len;
        count += 1;
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks: buffer >= 40, version 6, 40 + payload length <= buffer. The
    /// extension headers are checked by [`Packet::ext_walk`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || b[0] >> 4 != 6 || HEADER_LEN + usize::from(self.payload_len()) > b.len() {
            return Err(Error);
        }
        Ok(())
    }

    fn first_word(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Version (6 once checked).
    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// ECN bits of the traffic class (RFC 3168).
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header, extension headers
    /// included.
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header after the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Walks the extension headers (see the module docs).
    pub fn ext_walk(&self) -> Result<ExtInfo> {
        let b = self.buffer.as_ref();
        let payload = &b[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())];
        let (nh, off, count, frag) = walk(payload, b[field::NXT_HDR])?;
        Ok(ExtInfo {
            next_header: IpProtocol::from(nh),
            l4_offset: HEADER_LEN + off,
            count,
            frag,
        })
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload after the fixed header (extension headers included),
    /// bounded by the payload length.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, the traffic class and the flow label.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = v.into();
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Mutable payload, bounded by the payload length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // IPv6 with hop-by-hop (8 bytes), fragment (first fragment, M set) and a
    // 4-byte UDP stub, then 2 bytes of padding.
    static PACKET: [u8; 62] = [
        0x60, 0x20, 0x00, 0x01, // version 6, TC 0x02 (ECN 2), flow label 1
        0x00, 0x14, // payload length 20
        0x00, // next: hop-by-hop
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst 2001:db8::2
        0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // HBH: next fragment, len 0, PadN
        0x11, 0x00, 0x00, 0x01, 0xca, 0xfe, 0xba, 0xbe, // frag: next UDP, offset 0, M, ident
        0x12, 0x34, 0x00, 0x35, // UDP ports
        0x00, 0x00, // padding
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0x02);
        assert_eq!(p.ecn(), 2);
        assert_eq!(p.flow_label(), 1);
        assert_eq!(p.payload_len(), 20);
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 20);
        let e = p.ext_walk().unwrap();
        assert_eq!(e.next_header, IpProtocol::Udp);
        assert_eq!(e.l4_offset, 56);
        assert_eq!(e.count, 2);
        assert_eq!(
            e.frag,
            Some(FragInfo {
                offset: 0,
                more: true,
                ident: 0xcafe_babe
            })
        );
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 62];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0x02, 1);
        p.set_payload_len(20);
        p.set_next_header(IpProtocol::HopByHop);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("2001:db8::2".parse().unwrap());
        p.payload_mut().copy_from_slice(&PACKET[40..60]);
        assert_eq!(b, PACKET);
    }

    #[test]
    fn non_first_fragment_stops_walk() {
        let mut b = PACKET;
        b[50..52].copy_from_slice(&[0x05, 0xc8]); // offset 185*8 = 1480, M clear
        let e = Packet::new_checked(&b[..]).unwrap().ext_walk().unwrap();
        assert_eq!(e.next_header, IpProtocol::Udp);
        assert_eq!(e.l4_offset, 56);
        assert_eq!(e.frag.map(|f| (f.offset, f.more)), Some((1480, false)));
    }

    #[test]
    fn bad_chains() {
        // Truncated: payload length cuts the fragment header.
        let mut b = PACKET;
        b[5] = 12;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().ext_walk(), Err(Error));
        // Hop-by-hop not first.
        let mut b = PACKET;
        b[48] = 0x00;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().ext_walk(), Err(Error));
        // A chain of nine destination-options headers is too long.
        let mut long = [0u8; 40 + 9 * 8];
        long[0] = 0x60;
        long[5] = 72;
        long[6] = 60;
        for i in 0..9 {
            long[40 + i * 8] = if i == 8 { 59 } else { 60 };
        }
        assert_eq!(Packet::new_checked(&long[..]).unwrap().ext_walk(), Err(Error));
        // Eight are fine and end in "no next header".
        long[40 + 7 * 8] = 59;
        let e = Packet::new_checked(&long[..]).unwrap().ext_walk().unwrap();
        assert_eq!((e.next_header, e.count, e.l4_offset), (IpProtocol::Ipv6NoNxt, 8, 104));
    }

    #[test]
    fn truncated_fixed_header() {
        assert_eq!(Packet::new_checked(&PACKET[..39]), Err(Error));
        assert_eq!(Packet::new_checked(&PACKET[..59]), Err(Error));
        let mut b = PACKET;
        b[0] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error));
    }
}
