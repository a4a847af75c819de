//! Zero-copy views of the wire formats Moat reads and writes, in the style of
//! smoltcp's `wire` module.
//!
//! Each header type is a view `Packet<T: AsRef<[u8]>>` (or `Frame<T>`) over a
//! caller's buffer: getters named after the header fields, `set_*` setters
//! when `T: AsMut<[u8]>`, and `payload()` borrowing from the buffer. Nothing
//! here copies or allocates.
//!
//! # Contract
//!
//! `new_unchecked` wraps a buffer without looking at it; its accessors may
//! panic on a short buffer. `new_checked` (= `new_unchecked` + `check_len`)
//! validates every length the accessors use (header length fields, option
//! areas, length fields bounding the payload), and **once `new_checked`
//! succeeds, no accessor of that view panics**, whatever the bytes are.
//! Setters keep that promise as long as they do not change a length field;
//! after changing one, call `check_len` again. The fuzz targets in `fuzz/`
//! call every accessor of every view on arbitrary input to check this.
//!
//! Errors are the zero-sized, `Copy` [`Error`]: most attack packets are
//! malformed, so an error must cost nothing to make (STYLE.md).
//!
//! Protocol numbers ([`EtherType`], [`IpProtocol`]) keep values they do not
//! know as `Unknown(_)`, so that a view never loses information.

use core::fmt;

/// Declares a zero-copy view `$name<T: AsRef<[u8]>>` over a buffer with the
/// constructors every view shares (smoltcp's pattern): `new_unchecked`,
/// `new_checked` (which calls the view's own `check_len`) and `into_inner`.
/// The field accessors stay written out in each module.
macro_rules! view {
    ($(#[$m:meta])* $name:ident, $checked_doc:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a buffer without checking it.
            pub const fn new_unchecked(buffer: T) -> $name<T> {
                $name { buffer }
            }

            #[doc = $checked_doc]
            pub fn new_checked(buffer: T) -> Result<$name<T>> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                Ok(p)
            }

            /// Returns the underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod gre;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use arp::{Operation as ArpOperation, Packet as ArpPacket};
pub use ethernet::{Frame as EthernetFrame, MAX_VLANS};
pub use gre::Packet as GrePacket;
pub use icmp::Packet as IcmpPacket;
pub use icmpv6::Packet as Icmpv6Packet;
pub use ipv4::Packet as Ipv4Packet;
pub use ipv6::{ExtInfo as Ipv6ExtInfo, FragInfo as Ipv6FragInfo, Packet as Ipv6Packet};
pub use tcp::{Packet as TcpPacket, TcpOption};
pub use udp::Packet as UdpPacket;

/// A buffer too short for the header, or a header field inconsistent with
/// the buffer or with the protocol (bad version, length field out of range).
///
/// Zero-sized and `Copy` on purpose: the caller already knows which view
/// failed, and a per-packet error must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("truncated or malformed packet")
    }
}

impl std::error::Error for Error {}

/// Result of the wire views.
pub type Result<T> = core::result::Result<T, Error>;

/// Defines a protocol-number enum whose unknown values are kept in
/// `Unknown(_)` (smoltcp `enum_with_unknown!`), with lossless `From`
/// conversions both ways.
macro_rules! enum_with_unknown {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty) {
            $($(#[$variant_attr:meta])* $variant:ident = $value:expr),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$variant_attr])* $variant,)+
            /// A value this enum has no name for.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $($value => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => $value,)+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

enum_with_unknown! {
    /// The EtherType field of Ethernet II and 802.1Q tags
    /// (<https://www.iana.org/assignments/ieee-802-numbers>).
    pub enum EtherType(u16) {
        /// IPv4, RFC 894.
        Ipv4 = 0x0800,
        /// ARP, RFC 826.
        Arp = 0x0806,
        /// IEEE 802.1Q customer VLAN tag (C-tag).
        Vlan = 0x8100,
        /// IPv6, RFC 2464.
        Ipv6 = 0x86DD,
        /// IEEE 802.1ad service VLAN tag (S-tag, QinQ outer tag).
        QinQ = 0x88A8,
    }
}

enum_with_unknown! {
    /// The IPv4 protocol / IPv6 next-header field
    /// (<https://www.iana.org/assignments/protocol-numbers>).
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options, RFC 8200 §4.3.
        HopByHop = 0,
        /// ICMP, RFC 792.
        Icmp = 1,
        /// TCP, RFC 9293.
        Tcp = 6,
        /// UDP, RFC 768.
        Udp = 17,
        /// IPv6 routing header, RFC 8200 §4.4.
        Ipv6Route = 43,
        /// IPv6 fragment header, RFC 8200 §4.5.
        Ipv6Frag = 44,
        /// GRE, RFC 2784.
        Gre = 47,
        /// IPsec ESP, RFC 4303.
        Esp = 50,
        /// IPsec AH, RFC 4302.
        Ah = 51,
        /// ICMPv6, RFC 4443.
        Icmpv6 = 58,
        /// IPv6 "no next header", RFC 8200 §4.7.
        Ipv6NoNxt = 59,
        /// IPv6 destination options, RFC 8200 §4.6.
        Ipv6Opts = 60,
    }
}

/// Reads a big-endian `u16` at `at`. Callers have checked the bounds.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`. Callers have checked the bounds.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a big-endian `u16` at `at`. Callers have checked the bounds.
#[inline(always)]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian `u32` at `at`. Callers have checked the bounds.
#[inline(always)]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        assert_eq!(u16::from(EtherType::Unknown(0x1234)), 0x1234);
        assert_eq!(u16::from(EtherType::QinQ), 0x88a8);
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert_eq!(u8::from(IpProtocol::Icmpv6), 58);
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
    }
}
