//! GRE encapsulation with a per-origin precomputed header: the outer
//! Ethernet, IPv4 and GRE headers of a tunnel are the same for every packet
//! but for the IPv4 total length, the ECN bits (copied from the inner
//! header, RFC 6040) and the inner protocol; [`GreHeader`] keeps the rest
//! and the one's-complement sum of the fixed part of the IPv4 header, so
//! that each packet costs a 38- or 42-byte copy, three fields and a fold
//! instead of building and checksumming the headers.
//!
//! Contract: [`GreHeader::write`] writes exactly what
//! [`super::gre_encap_in_place`] writes for the same parameters and inner
//! packet (a property test checks it).

use super::{fold, gre_overhead, write_gre_headers, GreParams};
use crate::wire::checksum;

const IP: usize = 14;
const MAX_OVERHEAD: usize = 42;

/// The outer headers of one tunnel, ready to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreHeader {
    bytes: [u8; MAX_OVERHEAD],
    len: u8,
    /// One's-complement sum of the outer IPv4 header with the TOS byte, the
    /// total length and the checksum zero.
    base: u32,
}

impl GreHeader {
    pub fn new(g: &GreParams) -> Self {
        let len = gre_overhead(g.key.is_some());
        let mut bytes = [0u8; MAX_OVERHEAD];
        // Any IPv4 inner header gives the fixed fields; ECN, length and
        // protocol are per packet.
        let _ = write_gre_headers(&mut bytes[..len], [0x45, 0], 0, g);
        bytes[IP + 1] = 0;
        bytes[IP + 2..IP + 4].fill(0);
        bytes[IP + 10..IP + 12].fill(0);
        GreHeader {
            bytes,
            len: len as u8,
            base: u32::from(checksum::data(&bytes[IP..IP + 20])),
        }
    }

    /// Bytes this header adds in front of the inner packet.
    #[inline]
    pub fn overhead(&self) -> usize {
        usize::from(self.len)
    }

    /// `buf` holds [`GreHeader::overhead`] bytes of room, then the inner IP
    /// packet of `inner_len` bytes: writes the outer headers into the room.
    /// `None` (nothing written) when the inner packet is not IP, the outer
    /// packet would exceed 65535 bytes, or `buf` is too short.
    #[inline]
    pub fn write(&self, buf: &mut [u8], inner_len: usize) -> Option<()> {
        let len = self.overhead();
        let head = buf.get(len..len + 2)?;
        let (ecn, proto): (u8, u16) = match head[0] >> 4 {
            4 => (head[1] & 0x03, 0x0800),
            6 => ((head[1] >> 4) & 0x03, 0x86dd),
            _ => return None,
        };
        let total = len - IP + inner_len;
        if total > usize::from(u16::MAX) || buf.len() < len + inner_len {
            return None;
        }
        let hdr = &mut buf[..len];
        hdr.copy_from_slice(&self.bytes[..len]);
        hdr[IP + 1] = ecn;
        hdr[IP + 2..IP + 4].copy_from_slice(&(total as u16).to_be_bytes());
        // The TOS byte is the low byte of the first header word.
        let sum = self.base + u32::from(ecn) + total as u32;
        hdr[IP + 10..IP + 12].copy_from_slice(&(!fold(sum)).to_be_bytes());
        hdr[IP + 22..IP + 24].copy_from_slice(&proto.to_be_bytes());
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::gre_encap_in_place;
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn template_writes_what_the_builder_writes(
            macs in any::<([u8; 6], [u8; 6])>(),
            addrs in any::<(u32, u32)>(),
            key in any::<Option<u32>>(),
            ttl in any::<u8>(),
            v6 in any::<bool>(),
            tos in any::<u8>(),
            inner_len in 40usize..9000,
        ) {
            let g = GreParams {
                src_mac: macs.0,
                dst_mac: macs.1,
                tunnel_src: Ipv4Addr::from(addrs.0),
                tunnel_dst: Ipv4Addr::from(addrs.1),
                key,
                ttl,
            };
            let oh = gre_overhead(key.is_some());
            let mut a = vec![0u8; oh + inner_len];
            a[oh] = if v6 { 0x60 | (tos >> 4) } else { 0x45 };
            a[oh + 1] = if v6 { tos << 4 } else { tos };
            let mut b = a.clone();
            prop_assert_eq!(gre_encap_in_place(&mut a, oh, inner_len, &g), Some(0));
            let t = GreHeader::new(&g);
            prop_assert_eq!(t.overhead(), oh);
            prop_assert_eq!(t.write(&mut b, inner_len), Some(()));
            prop_assert_eq!(&a[..oh], &b[..oh]);
        }
    }

    #[test]
    fn refuses_non_ip_oversized_and_short() {
        let g = GreParams {
            src_mac: [2; 6],
            dst_mac: [4; 6],
            tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
            tunnel_dst: Ipv4Addr::new(192, 168, 77, 2),
            key: None,
            ttl: 64,
        };
        let t = GreHeader::new(&g);
        let mut buf = vec![0u8; 38 + 100];
        buf[38] = 0x10;
        assert_eq!(t.write(&mut buf, 100), None, "version 1");
        buf[38] = 0x45;
        assert_eq!(t.write(&mut buf, 101), None, "shorter than said");
        assert_eq!(t.write(&mut buf, 65535), None, "over 65535 bytes");
        assert_eq!(t.write(&mut buf[..39], 1), None, "no room for the version");
    }
}
