//! ARP for Ethernet and IPv4 (RFC 826), the only combination Moat answers.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   hardware type (1)           |   protocol type (0x0800)      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | hw len (6)    | proto len (4) |   operation (1 req, 2 reply)  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   sender hardware address (6) ... | sender protocol addr (4)  |
//! |   target hardware address (6) ... | target protocol addr (4)  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `check_len` also refuses any hardware/protocol type or address length
//! other than Ethernet (1, 6) / IPv4 (0x0800, 4): the fixed field offsets
//! below are only right for that combination.

use core::net::Ipv4Addr;

use super::{be16, put16, Error, Result};

mod field {
    use core::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4 (an EtherType).
pub const PTYPE_IPV4: u16 = 0x0800;

super::enum_with_unknown! {
    /// ARP operation (RFC 826; <https://www.iana.org/assignments/arp-parameters>).
    pub enum Operation(u16) {
        /// Who has the target protocol address?
        Request = 1,
        /// The sender has the sender protocol address.
        Reply = 2,
    }
}

view! {
    /// A view of an Ethernet/IPv4 ARP packet.
    Packet, "Wraps a buffer, checking its length and that it is Ethernet/IPv4 ARP."
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks that the buffer holds 28 bytes of Ethernet/IPv4 ARP.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN
            || be16(b, field::HTYPE) != HTYPE_ETHERNET
            || be16(b, field::PTYPE) != PTYPE_IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error);
        }
        Ok(())
    }

    /// Hardware type (1 = Ethernet once checked).
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (0x0800 once checked).
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE)
    }

    /// Hardware address length (6 once checked).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length (4 once checked).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> Operation {
        Operation::from(be16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware (MAC) address.
    pub fn source_hardware_addr(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        a
    }

    /// Sender protocol (IPv4) address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SPA];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Target hardware (MAC) address.
    pub fn target_hardware_addr(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        a
    }

    /// Target protocol (IPv4) address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::TPA];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 fields (types and lengths).
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, field::HTYPE, HTYPE_ETHERNET);
        put16(b, field::PTYPE, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, op: Operation) {
        put16(self.buffer.as_mut(), field::OPER, op.into());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUEST: [u8; 28] = [
        0x00, 0x01, // htype Ethernet
        0x08, 0x00, // ptype IPv4
        0x06, 0x04, // hlen, plen
        0x00, 0x01, // request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // sha
        0xc0, 0x00, 0x02, 0x01, // spa 192.0.2.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha
        0xc0, 0x00, 0x02, 0x0a, // tpa 192.0.2.10
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), Operation::Request);
        assert_eq!(p.source_hardware_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(p.source_protocol_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.target_hardware_addr(), [0; 6]);
        assert_eq!(p.target_protocol_addr(), Ipv4Addr::new(192, 0, 2, 10));
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_ethernet_ipv4();
        p.set_operation(Operation::Request);
        p.set_source_hardware_addr([2, 0, 0, 0, 0, 2]);
        p.set_source_protocol_addr(Ipv4Addr::new(192, 0, 2, 1));
        p.set_target_hardware_addr([0; 6]);
        p.set_target_protocol_addr(Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(b, REQUEST);
    }

    #[test]
    fn refuses_other_types_and_short() {
        assert_eq!(Packet::new_checked(&REQUEST[..27]), Err(Error));
        for (at, v) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut b = REQUEST;
            b[at] = v;
            assert_eq!(Packet::new_checked(&b[..]), Err(Error), "byte {at}");
        }
    }
}
