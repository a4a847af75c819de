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

use super::{be16, be32, checksum, put16, put32, Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
}

/// Length of the ICMPv6 header (every message has at least these 8 bytes).
pub const HEADER_LEN: usize = 8;

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

view! {
    /// A view of an ICMPv6 message (<https://www.rfc-editor.org/rfc/rfc4443#section-2.1>).
    Packet, "Wraps a buffer, checking that it holds the 8-byte header."
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks: buffer >= 8.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error);
        }
        Ok(())
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The 4 bytes after the checksum (echo id/sequence, MTU, pointer).
    pub fn rest_of_header(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST)
    }

    fn pseudo(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let len = u32::try_from(self.buffer.as_ref().len()).unwrap_or(u32::MAX);
        checksum::pseudo_header_v6(src, dst, 58, len)
    }

    /// Whether the checksum (with the IPv6 pseudo-header) is right.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::combine(&[self.pseudo(src, dst), checksum::data(self.buffer.as_ref())]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The data after the 8-byte header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the rest of the header.
    pub fn set_rest_of_header(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::REST, v);
    }

    /// Computes and writes the checksum.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::finish(checksum::combine(&[
            self.pseudo(src, dst),
            checksum::data(self.buffer.as_ref()),
        ]));
        self.set_checksum(c);
    }

    /// Mutable data after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
