//! ICMPv6 (RFC 4443 §2.1): type, code, checksum over an IPv6 pseudo-header
//! and the 4-byte rest of the header.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Rest of header                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The buffer must end where the IPv6 payload ends.

use core::net::Ipv6Addr;
use core::ops::{Deref, DerefMut};

use super::{checksum, icmp, Result};

/// Length of the ICMPv6 header (every message has at least these 8 bytes).
pub const HEADER_LEN: usize = icmp::HEADER_LEN;

/// Common message types (<https://www.iana.org/assignments/icmpv6-parameters>).
pub mod types {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// A view of an ICMPv6 message (<https://www.rfc-editor.org/rfc/rfc4443#section-2.1>).
///
/// The header has the layout of ICMP for IPv4, so the field accessors are
/// [`icmp::Packet`]'s (through `Deref`); only the checksum differs: it
/// covers an IPv6 pseudo-header, so `verify_checksum` and `fill_checksum`
/// take the addresses (and shadow ICMPv4's, which would be wrong here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>>(icmp::Packet<T>);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet(icmp::Packet::new_unchecked(buffer))
    }

    /// Wraps a buffer, checking that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        icmp::Packet::new_checked(buffer).map(Packet)
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }

    fn pseudo(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let len = u32::try_from(self.0.as_bytes().len()).unwrap_or(u32::MAX);
        checksum::pseudo_header_v6(src, dst, 58, len)
    }

    /// Whether the checksum (with the IPv6 pseudo-header) is right.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::combine(&[self.pseudo(src, dst), checksum::data(self.0.as_bytes())]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes and writes the checksum.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.0.set_checksum(0);
        let c = checksum::finish(checksum::combine(&[
            self.pseudo(src, dst),
            checksum::data(self.0.as_bytes()),
        ]));
        self.0.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> Deref for Packet<T> {
    type Target = icmp::Packet<T>;

    fn deref(&self) -> &icmp::Packet<T> {
        &self.0
    }
}

impl<T: AsRef<[u8]>> DerefMut for Packet<T> {
    fn deref_mut(&mut self) -> &mut icmp::Packet<T> {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    static ECHO: [u8; 10] = [
        0x80, 0x00, // echo request, code 0
        0x00, 0x00, // checksum (filled in the test)
        0x00, 0x07, 0x00, 0x02, // id 7, seq 2
        0x68, 0x69, // "hi"
    ];

    #[test]
    fn test_deconstruct_and_checksum() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut m = ECHO;
        let mut p = Packet::new_unchecked(&mut m[..]);
        p.set_msg_type(types::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_rest_of_header(0x0007_0002);
        p.payload_mut().copy_from_slice(b"hi");
        p.fill_checksum(a, b);
        let p = Packet::new_checked(&m[..]).unwrap();
        assert_eq!(p.msg_type(), 128);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.rest_of_header(), 0x0007_0002);
        assert_eq!(p.payload(), b"hi");
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(a, b));
        assert!(!p.verify_checksum(b, b));
    }

    #[test]
    fn truncated() {
        assert_eq!(Packet::new_checked(&ECHO[..7]), Err(Error));
    }
}
