//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (Optional)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (optional)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (Optional)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `check_len` refuses version != 0, and (RFC 2784 §2.3) bits 1, 4 and 5
//! set: those are the RFC 1701 routing/strict-route/recursion bits, which a
//! receiver not implementing RFC 1701 must discard. Bits 6-12 are ignored as
//! RFC 2784 says. The checksum, when present, covers the GRE header and
//! payload (the buffer must end where the IP payload ends).

use super::{be16, be32, checksum, put16, put32, Error, EtherType, Result};

mod field {
    pub const FLAGS: usize = 0;
    pub const PROTOCOL: usize = 2;
}

/// Length of the GRE header without optional fields.
pub const HEADER_LEN: usize = 4;

/// Bits of the first 16-bit word.
mod bits {
    pub const C: u16 = 0x8000;
    /// RFC 1701 routing present: must be zero (RFC 2784 §2.3).
    pub const R: u16 = 0x4000;
    pub const K: u16 = 0x2000;
    pub const S: u16 = 0x1000;
    /// RFC 1701 strict source route and recursion control: must be zero.
    pub const S_RECUR: u16 = 0x0c00;
    pub const VERSION: u16 = 0x0007;
}

view! {
    /// A view of a GRE packet (<https://www.rfc-editor.org/rfc/rfc2784>,
    /// <https://www.rfc-editor.org/rfc/rfc2890>).
    Packet, "Wraps a buffer, checking the flags, version and header length."
}

/// Header length implied by the flag word.
const fn header_len_of(flags: u16) -> usize {
    HEADER_LEN
        + if flags & bits::C != 0 { 4 } else { 0 }
        + if flags & bits::K != 0 { 4 } else { 0 }
        + if flags & bits::S != 0 { 4 } else { 0 }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks: buffer >= 4, version 0, RFC 1701 bits clear, buffer holds
    /// the optional fields the flags announce.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error);
        }
        let f = self.flag_word();
        if f & (bits::VERSION | bits::R | bits::S_RECUR) != 0 || header_len_of(f) > b.len() {
            return Err(Error);
        }
        Ok(())
    }

    fn flag_word(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS)
    }

    /// C bit: checksum present.
    pub fn checksum_present(&self) -> bool {
        self.flag_word() & bits::C != 0
    }

    /// K bit: key present (RFC 2890).
    pub fn key_present(&self) -> bool {
        self.flag_word() & bits::K != 0
    }

    /// S bit: sequence number present (RFC 2890).
    pub fn seq_present(&self) -> bool {
        self.flag_word() & bits::S != 0
    }

    /// Version (0 once checked).
    pub fn version(&self) -> u8 {
        (self.flag_word() & bits::VERSION) as u8
    }

    /// Protocol type of the payload (an EtherType).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), field::PROTOCOL))
    }

    /// Header length including the optional fields.
    pub fn header_len(&self) -> usize {
        header_len_of(self.flag_word())
    }

    /// Checksum field, when the C bit is set.
    pub fn checksum(&self) -> Option<u16> {
        self.checksum_present().then(|| be16(self.buffer.as_ref(), HEADER_LEN))
    }

    fn key_at(&self) -> usize {
        HEADER_LEN + if self.checksum_present() { 4 } else { 0 }
    }

    /// Key, when the K bit is set.
    pub fn key(&self) -> Option<u32> {
        self.key_present().then(|| be32(self.buffer.as_ref(), self.key_at()))
    }

    /// Sequence number, when the S bit is set.
    pub fn seq_number(&self) -> Option<u32> {
        let at = self.key_at() + if self.key_present() { 4 } else { 0 };
        self.seq_present().then(|| be32(self.buffer.as_ref(), at))
    }

    /// Whether the checksum is right; true when there is none.
    pub fn verify_checksum(&self) -> bool {
        !self.checksum_present() || checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The encapsulated packet.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the flag word (version 0) for the given optional fields and
    /// the protocol type. Changes the header length.
    pub fn set_header(&mut self, checksum: bool, key: bool, seq: bool, proto: EtherType) {
        let f =
            (if checksum { bits::C } else { 0 }) | (if key { bits::K } else { 0 }) | (if seq { bits::S } else { 0 });
        let b = self.buffer.as_mut();
        put16(b, field::FLAGS, f);
        put16(b, field::PROTOCOL, proto.into());
    }

    /// Sets the key (the K bit must be set).
    pub fn set_key(&mut self, key: u32) {
        let at = self.key_at();
        put32(self.buffer.as_mut(), at, key);
    }

    /// Sets the sequence number (the S bit must be set).
    pub fn set_seq_number(&mut self, seq: u32) {
        let at = self.key_at() + if self.key_present() { 4 } else { 0 };
        put32(self.buffer.as_mut(), at, seq);
    }

    /// Computes and writes the checksum and zeroes Reserved1 (C bit must be
    /// set; RFC 2784 §2.5).
    pub fn fill_checksum(&mut self) {
        let b = self.buffer.as_mut();
        b[HEADER_LEN..HEADER_LEN + 4].fill(0);
        let c = checksum::finish(checksum::data(b));
        put16(b, HEADER_LEN, c);
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEYED: [u8; 14] = [
        0x30, 0x00, // K and S bits, version 0
        0x08, 0x00, // IPv4
        0x00, 0x00, 0x00, 0x2a, // key 42
        0x00, 0x00, 0x00, 0x07, // sequence 7
        0x45, 0x00, // payload
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&KEYED[..]).unwrap();
        assert!(!p.checksum_present() && p.key_present() && p.seq_present());
        assert_eq!(p.version(), 0);
        assert_eq!(p.protocol_type(), EtherType::Ipv4);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.checksum(), None);
        assert_eq!(p.key(), Some(42));
        assert_eq!(p.seq_number(), Some(7));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn test_construct_with_checksum() {
        let mut b = [0u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_header(true, true, false, EtherType::Ipv6);
        p.set_key(0xdead_beef);
        p.payload_mut().copy_from_slice(&[0x60, 0, 0, 0]);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.protocol_type(), EtherType::Ipv6);
        assert_eq!(p.key(), Some(0xdead_beef));
        assert_eq!(p.seq_number(), None);
        assert!(p.checksum().is_some());
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0x60, 0, 0, 0]);
    }

    #[test]
    fn refused() {
        assert_eq!(Packet::new_checked(&KEYED[..3]), Err(Error));
        assert_eq!(Packet::new_checked(&KEYED[..11]), Err(Error));
        for (word, why) in [
            (0x3001u16, "version 1"),
            (0x4000, "routing bit"),
            (0x0800, "strict route"),
        ] {
            let mut b = KEYED;
            b[..2].copy_from_slice(&word.to_be_bytes());
            assert_eq!(Packet::new_checked(&b[..]), Err(Error), "{why}");
        }
        // Bits 6-12 are ignored.
        let mut b = KEYED;
        b[1] = 0xf8;
        assert!(Packet::new_checked(&b[..]).is_ok());
    }
}
