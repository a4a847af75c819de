//! Frames for the builders' unit tests, assembled field by field from the
//! RFC layouts (no builder of this crate is used to make them).

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::checksum;

/// MACs of the received frames: to Moat from the client's router.
pub(super) const MOAT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub(super) const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// 802.1Q tag, VID 42.
pub(super) const VLAN42: [u8; 4] = [0x81, 0x00, 0x00, 0x2a];

pub(super) const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub(super) const VIP4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub(super) const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(super) const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn l2(tags: &[u8], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MOAT_MAC);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(tags);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// Ethernet (with `tags`) / IPv4 CLIENT4 -> VIP4 (TTL 57, id 0x1234, the
/// given options, flags and offset word, protocol) / `l4`, IP checksum
/// filled in.
pub(super) fn v4(tags: &[u8], opts: &[u8], flags_off: u16, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = l2(tags, 0x0800);
    let ihl = 20 + opts.len();
    let total = (ihl + l4.len()) as u16;
    let start = f.len();
    f.push(0x40 | (ihl / 4) as u8);
    f.push(0);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34]);
    f.extend_from_slice(&flags_off.to_be_bytes());
    f.extend_from_slice(&[57, proto, 0, 0]);
    f.extend_from_slice(&CLIENT4.octets());
    f.extend_from_slice(&VIP4.octets());
    f.extend_from_slice(opts);
    let c = checksum::finish(checksum::data(&f[start..]));
    f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(l4);
    f
}

/// Ethernet (with `tags`) / IPv6 CLIENT6 -> VIP6 (hop limit 57, next header
/// `nh`) / `ext` (extension headers) / `l4`.
pub(super) fn v6(tags: &[u8], nh: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
    let mut f = l2(tags, 0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[nh, 57]);
    f.extend_from_slice(&CLIENT6.octets());
    f.extend_from_slice(&VIP6.octets());
    f.extend_from_slice(ext);
    f.extend_from_slice(l4);
    f
}

/// A UDP header 40000 -> 53 (checksum 0) and `payload`.
pub(super) fn udp(payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0x9c, 0x40, 0x00, 0x35];
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A 20-byte TCP header 50000 -> 80, ACK|PSH (checksum 0) and `payload`.
pub(super) fn tcp(payload: &[u8]) -> Vec<u8> {
    let mut t = vec![
        0xc3, 0x50, 0x00, 0x50, // ports
        0, 0, 0, 1, 0, 0, 0, 2, // seq, ack
        0x50, 0x18, 0xfa, 0xf0, // doff 5, ACK|PSH, window
        0, 0, 0, 0, // checksum, urgent
    ];
    t.extend_from_slice(payload);
    t
}

/// An ICMP (or ICMPv6) header of `ty`/`code` with a zero rest and `payload`.
pub(super) fn icmp(ty: u8, code: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(payload);
    m
}

/// `n` bytes counting up from 0 (mod 256).
pub(super) fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}
