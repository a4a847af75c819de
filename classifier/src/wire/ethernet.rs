//! Ethernet II frames with up to two VLAN tags: IEEE 802.1Q (TPID 0x8100)
//! and 802.1ad QinQ (S-tag TPID 0x88a8 outside a 0x8100 C-tag).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  destination MAC (6 bytes)                    |
//! +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//! |                     source MAC (6 bytes)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | TPID 0x88a8 / 0x8100 (opt.)   | PCP |D|   VLAN ID (12 bits)   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | TPID 0x8100 (opt., inner)     | PCP |D|   VLAN ID (12 bits)   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       EtherType               |   payload ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Tags are recognised as in IEEE 802.1Q-2018: the outer tag may be an S-tag
//! (0x88a8) or a C-tag (0x8100); a second tag is recognised only as a C-tag
//! (0x8100). At most [`MAX_VLANS`] tags are walked: a third TPID is reported
//! as the frame's EtherType, which the classifier treats as non-IP.
//! The frame check sequence is not part of the buffer (NICs strip it).

use super::{be16, put16, Error, EtherType, Result};

/// Most VLAN tags walked (QinQ).
pub const MAX_VLANS: usize = 2;

/// Byte ranges of the untagged header.
pub(crate) mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    /// EtherType, or the TPID of the first tag.
    pub const ETHERTYPE: usize = 12;
    /// Length of the header without tags.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag (TPID + TCI).
    pub const TAG_LEN: usize = 4;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of one VLAN tag.
pub const TAG_LEN: usize = field::TAG_LEN;

view! {
    /// A view of an Ethernet II frame (<https://standards.ieee.org/ieee/802.1Q/6844/>).
    Frame, "Wraps a buffer, checking that it holds the whole header and tags."
}

/// Number of VLAN tags at the start of `b` (after the MACs), and whether the
/// buffer holds them all plus the final EtherType.
#[inline]
fn count_tags(b: &[u8]) -> Result<usize> {
    if b.len() < field::HEADER_LEN {
        return Err(Error);
    }
    let mut n = 0;
    let mut at = field::ETHERTYPE;
    while n < MAX_VLANS {
        let tpid = be16(b, at);
        let is_tag = tpid == 0x8100 || (n == 0 && tpid == 0x88a8);
        if !is_tag {
            break;
        }
        n += 1;
        at += field::TAG_LEN;
        if b.len() < at + 2 {
            return Err(Error);
        }
    }
    Ok(n)
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks that the buffer holds the header, every recognised tag and the
    /// final EtherType.
    pub fn check_len(&self) -> Result<()> {
        count_tags(self.buffer.as_ref()).map(|_| ())
    }

    /// Destination MAC address.
    pub fn dst_addr(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        a
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        a
    }

    /// Number of VLAN tags (0, 1 or 2).
    pub fn vlan_count(&self) -> usize {
        count_tags(self.buffer.as_ref()).unwrap_or(0)
    }

    /// The TPID of tag `i` (0 = outermost), `None` if there is no such tag.
    pub fn vlan_tpid(&self, i: usize) -> Option<u16> {
        (i < self.vlan_count()).then(|| be16(self.buffer.as_ref(), field::ETHERTYPE + i * field::TAG_LEN))
    }

    /// The tag control information (PCP, DEI, VID) of tag `i`.
    pub fn vlan_tci(&self, i: usize) -> Option<u16> {
        (i < self.vlan_count()).then(|| be16(self.buffer.as_ref(), field::ETHERTYPE + 2 + i * field::TAG_LEN))
    }

    /// The 12-bit VLAN identifier of tag `i`.
    pub fn vlan_id(&self, i: usize) -> Option<u16> {
        self.vlan_tci(i).map(|t| t & 0x0fff)
    }

    /// The 3-bit priority code point of tag `i`.
    pub fn vlan_pcp(&self, i: usize) -> Option<u8> {
        self.vlan_tci(i).map(|t| (t >> 13) as u8)
    }

    /// Length of the header including tags: where the payload starts.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.vlan_count() * field::TAG_LEN
    }

    /// The EtherType after the tags.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), self.header_len() - 2))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The payload after the header and tags.
    pub fn payload(&self) -> &'a [u8] {
        let b = self.buffer.as_ref();
        let start = field::HEADER_LEN + count_tags(b).unwrap_or(0) * field::TAG_LEN;
        b.get(start..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a);
    }

    /// Sets the EtherType after the tags (setting it to a TPID changes the
    /// tag count: call `check_len` again).
    pub fn set_ethertype(&mut self, t: EtherType) {
        let at = self.header_len() - 2;
        put16(self.buffer.as_mut(), at, t.into());
    }

    /// Mutable payload after the header and tags.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static UNTAGGED: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    static QINQ: [u8; 24] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst: broadcast
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x88, 0xa8, 0xa0, 0x64, // S-tag: PCP 5, VID 100
        0x81, 0x00, 0x00, 0xc8, // C-tag: PCP 0, VID 200
        0x86, 0xdd, // IPv6
        0x60, 0x00, // payload
    ];

    #[test]
    fn test_deconstruct_untagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.vlan_count(), 0);
        assert_eq!(f.vlan_id(0), None);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_deconstruct_qinq() {
        let f = Frame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(f.vlan_count(), 2);
        assert_eq!(f.vlan_tpid(0), Some(0x88a8));
        assert_eq!(f.vlan_id(0), Some(100));
        assert_eq!(f.vlan_pcp(0), Some(5));
        assert_eq!(f.vlan_id(1), Some(200));
        assert_eq!(f.vlan_id(2), None);
        assert_eq!(f.ethertype(), EtherType::Ipv6);
        assert_eq!(f.header_len(), 22);
        assert_eq!(f.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn single_dot1q_and_third_tag_is_ethertype() {
        let mut b = [0u8; 26];
        b[12..14].copy_from_slice(&[0x81, 0x00]);
        b[14..16].copy_from_slice(&[0x00, 0x0a]);
        b[16..18].copy_from_slice(&[0x81, 0x00]);
        b[18..20].copy_from_slice(&[0x00, 0x0b]);
        b[20..22].copy_from_slice(&[0x81, 0x00]);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan_count(), 2);
        assert_eq!(f.ethertype(), EtherType::Vlan);
        // An S-tag is only recognised outermost.
        b[16..18].copy_from_slice(&[0x88, 0xa8]);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan_count(), 1);
        assert_eq!(f.vlan_id(0), Some(10));
        assert_eq!(f.ethertype(), EtherType::QinQ);
    }

    #[test]
    fn truncated() {
        assert_eq!(Frame::new_checked(&UNTAGGED[..13]), Err(Error));
        assert!(Frame::new_checked(&UNTAGGED[..14]).is_ok());
        // QinQ needs 22 bytes for both tags and the EtherType.
        for n in 0..22 {
            assert_eq!(Frame::new_checked(&QINQ[..n]), Err(Error), "len {n}");
        }
        assert!(Frame::new_checked(&QINQ[..22]).unwrap().payload().is_empty());
    }

    #[test]
    fn test_construct() {
        let mut b = UNTAGGED;
        let mut f = Frame::new_unchecked(&mut b[..]);
        f.set_dst_addr([1, 2, 3, 4, 5, 6]);
        f.set_src_addr([7, 8, 9, 10, 11, 12]);
        f.set_ethertype(EtherType::Arp);
        f.payload_mut()[0] = 0;
        assert_eq!(&b[..14], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 6]);
        assert_eq!(b[14], 0);
    }
}
