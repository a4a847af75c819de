//! UDP datagrams (RFC 768).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Length             |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `check_len` refuses a length field below 8 or beyond the buffer; the
//! payload is bounded by the length field. A zero checksum means "none" over
//! IPv4 (RFC 768) and is invalid over IPv6 (RFC 8200 §8.1).

use core::net::IpAddr;

use super::{be16, checksum, put16, Error, Result};

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

view! {
    /// A view of a UDP datagram (<https://www.rfc-editor.org/rfc/rfc768>).
    Packet, "Wraps a buffer, checking the header and length field."
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks: buffer >= 8 and 8 <= length field <= buffer.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > b.len() {
            return Err(Error);
        }
        Ok(())
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the datagram has no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the checksum is right (or absent over IPv4).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let len = self.len();
        let d = checksum::data(&self.buffer.as_ref()[..usize::from(len)]);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                self.checksum() == 0 || checksum::combine(&[checksum::pseudo_header_v4(s, t, 17, len), d]) == 0xffff
            }
            (IpAddr::V6(s), IpAddr::V6(t)) => {
                self.checksum() != 0
                    && checksum::combine(&[checksum::pseudo_header_v6(s, t, 17, u32::from(len)), d]) == 0xffff
            }
            _ => false,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Computes and writes the checksum (0 is sent as 0xffff, RFC 768).
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let len = self.len();
        let d = checksum::data(&self.buffer.as_ref()[..usize::from(len)]);
        let p = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(t)) => checksum::pseudo_header_v4(s, t, 17, len),
            (IpAddr::V6(s), IpAddr::V6(t)) => checksum::pseudo_header_v6(s, t, 17, u32::from(len)),
            _ => return,
        };
        let c = checksum::finish(checksum::combine(&[p, d]));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Mutable payload, bounded by the length field.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    static DATAGRAM: [u8; 14] = [
        0x00, 0x35, // sport 53
        0xc3, 0x50, // dport 50000
        0x00, 0x0c, // length 12
        0x00, 0x00, // checksum (none)
        0xaa, 0xbb, 0xcc, 0xdd, // payload
        0x00, 0x00, // trailing bytes not covered by the length
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 53);
        assert_eq!(p.dst_port(), 50000);
        assert_eq!(p.len(), 12);
        assert!(!p.is_empty());
        assert_eq!(p.checksum(), 0);
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        let (s, d): (IpAddr, IpAddr) = (Ipv4Addr::new(1, 1, 1, 1).into(), Ipv4Addr::new(2, 2, 2, 2).into());
        assert!(p.verify_checksum(s, d), "zero checksum means none over IPv4");
        let v6: IpAddr = "::1".parse().unwrap();
        assert!(!p.verify_checksum(v6, v6), "zero checksum is invalid over IPv6");
    }

    #[test]
    fn test_construct_and_checksum() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(53);
        p.set_dst_port(50000);
        p.set_len(12);
        p.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        p.fill_checksum(v6, v6);
        assert_eq!(&b[..6], &DATAGRAM[..6]);
        assert!(Packet::new_checked(&b[..]).unwrap().verify_checksum(v6, v6));
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(Packet::new_checked(&DATAGRAM[..7]), Err(Error));
        assert_eq!(Packet::new_checked(&DATAGRAM[..11]), Err(Error));
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error));
        b[5] = 8;
        assert!(Packet::new_checked(&b[..]).unwrap().is_empty());
    }
}
