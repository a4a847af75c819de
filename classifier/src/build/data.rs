//! Replies that carry data: a TCP segment with a payload (the `307` of
//! `http-redirect`, [`crate::l7::redirect`]) and a UDP datagram (the
//! `S2C_CHALLENGE` of `udp_auth` profile `a2s`, [`crate::udpauth`]).
//!
//! Both write the headers first, then let the caller write the payload in
//! place after them (no second buffer, no copy), then complete the lengths
//! and checksums over the whole packet. The payload writer returns its
//! length, or `None` when it does not fit (then so does the builder).

use super::{swap_macs, tcp_reply, ETH_MIN_FRAME, REPLY_TTL};
use crate::parse::{Parsed, L3, L4};
use crate::wire::{self, checksum};

const TCP: u8 = 6;
const UDP: u8 = 17;

/// [`tcp_reply`] carrying the bytes `write` puts after the TCP header
/// (no options). `None` when `p` is not TCP, `out` is too small, or `write`
/// fails.
#[allow(clippy::too_many_arguments)] // the fields of a TCP header and the payload writer
pub fn tcp_data_reply(
    req: &[u8],
    p: &Parsed,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    out: &mut [u8],
    write: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> Option<usize> {
    tcp_reply(req, p, seq, ack, flags, window, None, out)?;
    let (l2, ip_len) = (usize::from(p.l3_offset), ip_header_len(p)?);
    let l4 = l2 + ip_len;
    let data = l4 + wire::tcp::HEADER_LEN;
    let n = write(out.get_mut(data..)?)?;
    finish(p, out, l2, ip_len, wire::tcp::HEADER_LEN + n, TCP, 16)
}

/// A UDP reply to the datagram `req` (parsed `p`): MACs, addresses and ports
/// swapped, TTL / hop limit 64, IPv4 id 0 + DF, carrying the bytes `write`
/// puts after the UDP header; checksums correct (UDP's too, as IPv6
/// requires). `None` when `p` is not UDP, `out` is too small, or `write`
/// fails.
pub fn udp_reply(
    req: &[u8],
    p: &Parsed,
    out: &mut [u8],
    write: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> Option<usize> {
    let L4::Udp { sport, dport } = p.l4 else {
        return None;
    };
    let (l2, ip_len) = (usize::from(p.l3_offset), ip_header_len(p)?);
    if l2 < wire::ethernet::HEADER_LEN {
        return None;
    }
    swap_macs(req.get(..l2)?, out.get_mut(..l2)?);
    let l4 = l2 + ip_len;
    let udp = out.get_mut(l4..l4 + 8)?;
    udp[0..2].copy_from_slice(&dport.to_be_bytes());
    udp[2..4].copy_from_slice(&sport.to_be_bytes());
    udp[4..8].fill(0);
    let n = write(out.get_mut(l4 + 8..)?)?;
    write_ip_header(p, out, l2, UDP)?;
    finish(p, out, l2, ip_len, 8 + n, UDP, 6)
}

fn ip_header_len(p: &Parsed) -> Option<usize> {
    match p.l3 {
        L3::Ipv4 => Some(wire::ipv4::HEADER_LEN),
        L3::Ipv6 => Some(wire::ipv6::HEADER_LEN),
        L3::Arp => None,
    }
}

/// An IP header from the packet's destination to its source, lengths and
/// checksum left for [`finish`].
fn write_ip_header(p: &Parsed, out: &mut [u8], l2: usize, proto: u8) -> Option<()> {
    let (src, dst) = (p.dst, p.src);
    match p.l3 {
        L3::Ipv4 => {
            let ip = out.get_mut(l2..l2 + 20)?;
            ip[..12].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, REPLY_TTL, proto, 0, 0]);
            ip[12..16].copy_from_slice(&src.v4_bits().to_be_bytes());
            ip[16..20].copy_from_slice(&dst.v4_bits().to_be_bytes());
        }
        L3::Ipv6 => {
            let ip = out.get_mut(l2..l2 + 40)?;
            ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, proto, REPLY_TTL]);
            ip[8..24].copy_from_slice(&src.v6_bits().to_be_bytes());
            ip[24..40].copy_from_slice(&dst.v6_bits().to_be_bytes());
        }
        L3::Arp => return None,
    }
    Some(())
}

/// Writes the lengths of an `l4_len`-byte L4 segment into the IP header
/// (and UDP's own), the IPv4 header checksum, the L4 checksum (field at
/// `csum_at` in the segment), and pads the frame to the Ethernet minimum.
fn finish(
    p: &Parsed,
    out: &mut [u8],
    l2: usize,
    ip_len: usize,
    l4_len: usize,
    proto: u8,
    csum_at: usize,
) -> Option<usize> {
    let l4 = l2 + ip_len;
    let end = l4 + l4_len;
    let l4_len16 = u16::try_from(l4_len).ok()?;
    let (src, dst) = (p.dst_ip(), p.src_ip());
    let pseudo = match (p.l3, src, dst) {
        (L3::Ipv4, core::net::IpAddr::V4(s), core::net::IpAddr::V4(d)) => {
            let total = u16::try_from(ip_len + l4_len).ok()?;
            let ip = out.get_mut(l2..l4)?;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[10..12].fill(0);
            let sum = !checksum::data(ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            checksum::pseudo_header_v4(s, d, proto, l4_len16)
        }
        (L3::Ipv6, core::net::IpAddr::V6(s), core::net::IpAddr::V6(d)) => {
            out.get_mut(l2 + 4..l2 + 6)?.copy_from_slice(&l4_len16.to_be_bytes());
            checksum::pseudo_header_v6(s, d, proto, u32::from(l4_len16))
        }
        _ => return None,
    };
    let seg = out.get_mut(l4..end)?;
    if proto == UDP {
        seg[4..6].copy_from_slice(&l4_len16.to_be_bytes());
    }
    seg[csum_at..csum_at + 2].fill(0);
    let mut c = !checksum::combine(&[pseudo, checksum::data(seg)]);
    if proto == UDP && c == 0 {
        // RFC 768: a computed 0 is sent as all ones (0 means "none").
        c = 0xffff;
    }
    seg[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let padded = end.max(ETH_MIN_FRAME);
    out.get_mut(end..padded)?.fill(0);
    Some(padded)
}
