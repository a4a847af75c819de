//! The Internet checksum (RFC 1071), the IPv4/IPv6 pseudo-headers that TCP,
//! UDP and ICMPv6 checksums cover, and incremental updates (RFC 1624).
//!
//! Convention (smoltcp's): [`data`] and the pseudo-header functions return
//! the folded one's-complement **sum** (not complemented); [`combine`] adds
//! sums; the value written to a header is `!combine(&[..])`. A received
//! header verifies when the sum over it (checksum field included) is
//! `0xffff`.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 32-bit accumulator into 16 bits with end-around carry
/// (RFC 1071 §4.1).
#[inline]
const fn fold(mut sum: u32) -> u16 {
    // Two rounds suffice: after the first, sum <= 0xffff + 0xffff = 0x1fffe.
    sum = (sum >> 16) + (sum & 0xffff);
    sum = (sum >> 16) + (sum & 0xffff);
    sum as u16
}

/// One's-complement sum of `data` as big-endian 16-bit words; an odd last
/// byte is padded with a zero byte (RFC 1071 §4.1).
pub fn data(data: &[u8]) -> u16 {
    // A u64 accumulator of 32-bit words cannot overflow for any buffer that
    // fits in memory (2^32 words of 2^32 each), and halves the loop count.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    // Fold 64 -> 32 -> 16 bits with end-around carries.
    let folded = (acc >> 32) + (acc & 0xffff_ffff);
    let folded = (folded >> 32) + (folded & 0xffff_ffff);
    fold(((folded >> 16) + (folded & 0xffff)) as u32)
}

/// One's-complement sum of partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|s| u32::from(*s)).sum())
}

/// Sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768): source,
/// destination, zero, protocol, L4 length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let words = [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(proto),
        len,
    ];
    combine(&words)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
/// 32-bit upper-layer length, three zero bytes, next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u16 {
    combine(&[
        data(&src.octets()),
        data(&dst.octets()),
        (len >> 16) as u16,
        len as u16,
        u16::from(proto),
    ])
}

/// The checksum field value for a header whose fields (checksum zeroed) and
/// pseudo-header sum to `sum`.
#[inline]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered
/// data changes from `old` to `new`: HC' = ~(~HC + ~m + m').
///
/// Eqn. 3 (not eqn. 2) so that the result is never the +0 form 0x0000 that a
/// full computation cannot produce (RFC 1624 §3).
pub const fn update16(old_csum: u16, old: u16, new: u16) -> u16 {
    !fold((!old_csum) as u32 + (!old) as u32 + new as u32)
}

/// [`update16`] for a 32-bit field (an IPv4 address, a sequence number): the
/// two halves are two words of the sum.
pub const fn update32(old_csum: u16, old: u32, new: u32) -> u16 {
    let sum = (!old_csum) as u32 + (!(old >> 16) as u16) as u32 + (!(old as u16)) as u32 + (new >> 16) + (new & 0xffff);
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
        // Odd length: trailing byte padded with zero.
        assert_eq!(data(&[0x01]), 0x0100);
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xff; 4096]), 0xffff);
    }

    #[test]
    fn ipv4_header_checksum_known_value() {
        // Classic example header (Wikipedia "IPv4 header checksum"): checksum
        // field b861 at bytes 10..12.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(finish(data(&h)), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert_eq!(data(&h), 0xffff);
    }

    #[test]
    fn incremental_equals_full_recompute() {
        let mut buf = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x05, 0xb4];
        let before = finish(data(&buf));
        // Change the last word (an MSS 1460 -> 1400).
        let c = update16(before, 0x05b4, 0x0578);
        buf[8] = 0x05;
        buf[9] = 0x78;
        assert_eq!(c, finish(data(&buf)));
        // 32-bit variant.
        let before = finish(data(&buf));
        let c = update32(before, 0x1234_5678, 0xdead_beef);
        buf[..4].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(c, finish(data(&buf)));
    }

    #[test]
    fn pseudo_headers() {
        let v4 = pseudo_header_v4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 6, 20);
        assert_eq!(v4, combine(&[0x0a00, 0x0001, 0x0a00, 0x0002, 6, 20]));
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let v6 = pseudo_header_v6(a, b, 58, 0x0001_0008);
        assert_eq!(v6, combine(&[data(&a.octets()), data(&b.octets()), 1, 8, 58]));
    }
}
