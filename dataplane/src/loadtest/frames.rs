//! The client's frames, written in place into a transmit buffer: Ethernet,
//! IPv4 (DF, TTL 64, as Linux sends TCP) and TCP with the options Linux
//! puts on each kind of segment. Checksums are complete (the frames leave
//! through a packet socket, past any offload). Nothing here allocates.
//!
//! Options, as Linux 6.x writes them (`tcp_options_write`):
//! - SYN: `mss,sackOK,TS,nop,wscale 7` (20 bytes), window 64240;
//! - later segments of a connection whose SYN-ACK carried timestamps:
//!   `nop,nop,TS` (12 bytes); none otherwise (RFC 7323 §3.2: timestamps
//!   only when both sides sent them in the handshake);
//! - RST: none (Linux's `tcp_v4_send_reset` sends a bare header).

use core::net::{IpAddr, Ipv4Addr};

use classifier::wire::tcp::flags;
use classifier::wire::{self, EtherType, IpProtocol};

/// Ethernet + IPv4 + TCP headers without options.
const HEADERS: usize = 14 + 20 + 20;

/// MSS the SYN announces: an Ethernet MTU of 1500 less 40 bytes of headers.
pub const SYN_MSS: u16 = 1460;
/// Window scale the SYN announces (Linux's for a 6 MiB receive buffer).
pub const WSCALE: u8 = 7;
/// Window of a Linux SYN (RFC 7323 §2.2: not scaled).
pub const SYN_WINDOW: u16 = 64240;
/// Receive window after the handshake, in bytes; scaled down by
/// [`WSCALE`] when both sides agreed to scaling.
pub const RCV_WINDOW: u32 = 64256;

/// The addresses and ports of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
}

/// The TCP options of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Options {
    None,
    /// A SYN's, with its timestamp value.
    Syn {
        tsval: u32,
    },
    /// Timestamps (value, echo reply).
    Ts {
        tsval: u32,
        tsecr: u32,
    },
}

impl Options {
    fn len(self) -> usize {
        match self {
            Options::None => 0,
            Options::Syn { .. } => 20,
            Options::Ts { .. } => 12,
        }
    }

    fn write(self, out: &mut [u8]) {
        match self {
            Options::None => {}
            Options::Syn { tsval } => {
                let [m0, m1] = SYN_MSS.to_be_bytes();
                let t = tsval.to_be_bytes();
                out[..20].copy_from_slice(&[
                    2, 4, m0, m1, 4, 2, 8, 10, t[0], t[1], t[2], t[3], 0, 0, 0, 0, 1, 3, 3, WSCALE,
                ]);
            }
            Options::Ts { tsval, tsecr } => {
                out[..4].copy_from_slice(&[1, 1, 8, 10]);
                out[4..8].copy_from_slice(&tsval.to_be_bytes());
                out[8..12].copy_from_slice(&tsecr.to_be_bytes());
            }
        }
    }
}

/// One segment to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub seq: u32,
    pub ack: u32,
    /// [`flags`] bits; ACK unset makes the acknowledgement field zero.
    pub flags: u8,
    pub window: u16,
    pub options: Options,
    pub ip_id: u16,
    pub payload: &'a [u8],
}

/// Length of the frame [`write`] makes for `seg`.
pub fn frame_len(seg: &Segment) -> usize {
    HEADERS + seg.options.len() + seg.payload.len()
}

/// Writes the frame of `seg` between `ep` into `out`; its length, `None`
/// when `out` is too short.
pub fn write(ep: &Endpoints, seg: &Segment, out: &mut [u8]) -> Option<usize> {
    let len = frame_len(seg);
    let out = out.get_mut(..len)?;
    let (l2, l3) = out.split_at_mut(14);
    let mut eth = wire::EthernetFrame::new_unchecked(l2);
    eth.set_dst_addr(ep.dst_mac);
    eth.set_src_addr(ep.src_mac);
    eth.set_ethertype(EtherType::Ipv4);

    let mut ip = wire::Ipv4Packet::new_unchecked(&mut l3[..]);
    ip.set_version_and_header_len(20);
    ip.set_dscp_ecn(0, 0);
    ip.set_total_len((len - 14) as u16);
    ip.set_ident(seg.ip_id);
    ip.set_frag(true, false, 0);
    ip.set_ttl(64);
    ip.set_protocol(IpProtocol::Tcp);
    ip.set_src_addr(ep.src);
    ip.set_dst_addr(ep.dst);
    ip.fill_checksum();

    let opts = seg.options.len();
    let mut tcp = wire::TcpPacket::new_unchecked(&mut l3[20..]);
    tcp.set_src_port(ep.sport);
    tcp.set_dst_port(ep.dport);
    tcp.set_seq_number(seg.seq);
    tcp.set_ack_number(if seg.flags & flags::ACK != 0 { seg.ack } else { 0 });
    tcp.set_header_len((20 + opts) as u8);
    tcp.set_flags(seg.flags);
    tcp.set_window_len(seg.window);
    tcp.set_urgent_at(0);
    seg.options.write(tcp.options_mut());
    tcp.payload_mut().copy_from_slice(seg.payload);
    tcp.fill_checksum(IpAddr::V4(ep.src), IpAddr::V4(ep.dst));
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TcpOptionElement, TransportSlice};

    const EP: Endpoints = Endpoints {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src: Ipv4Addr::new(10, 10, 0, 100),
        dst: Ipv4Addr::new(203, 0, 113, 10),
        sport: 40000,
        dport: 80,
    };

    /// Parsed by etherparse, an implementation independent of ours.
    fn check(frame: &[u8]) -> (etherparse::TcpHeader, Vec<u8>) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert!(h.dont_fragment);
        assert_eq!(
            (h.time_to_live, h.source, h.destination),
            (64, [10, 10, 0, 100], [203, 0, 113, 10])
        );
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("not TCP")
        };
        let th = t.to_header();
        assert_eq!(th.checksum, th.calc_checksum_ipv4(&h, t.payload()).unwrap());
        (th, t.payload().to_vec())
    }

    #[test]
    fn a_syn_like_linux() {
        let seg = Segment {
            seq: 7,
            ack: 99,
            flags: flags::SYN,
            window: SYN_WINDOW,
            options: Options::Syn { tsval: 1234 },
            ip_id: 5,
            payload: &[],
        };
        let mut buf = [0u8; 128];
        let n = write(&EP, &seg, &mut buf).unwrap();
        assert_eq!(n, 74);
        let (t, _) = check(&buf[..n]);
        assert!(t.syn && !t.ack);
        assert_eq!(
            (t.sequence_number, t.acknowledgment_number, t.window_size),
            (7, 0, 64240)
        );
        let opts: Vec<_> = t.options_iterator().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            vec![
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(1234, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ]
        );
    }

    #[test]
    fn data_with_timestamps_and_a_bare_rst() {
        let seg = Segment {
            seq: 1,
            ack: 2,
            flags: flags::PSH | flags::ACK,
            window: 502,
            options: Options::Ts { tsval: 10, tsecr: 20 },
            ip_id: 6,
            payload: b"GET / HTTP/1.1\r\n\r\n",
        };
        let mut buf = [0u8; 128];
        let n = write(&EP, &seg, &mut buf).unwrap();
        let (t, payload) = check(&buf[..n]);
        assert!(t.psh && t.ack);
        assert_eq!(payload, b"GET / HTTP/1.1\r\n\r\n");
        let opts: Vec<_> = t.options_iterator().map(|o| o.unwrap()).collect();
        assert_eq!(opts.last(), Some(&TcpOptionElement::Timestamp(10, 20)));
        let rst = Segment {
            flags: flags::RST,
            options: Options::None,
            payload: &[],
            ..seg
        };
        let n = write(&EP, &rst, &mut buf).unwrap();
        assert_eq!(n, 54);
        let (t, _) = check(&buf[..n]);
        assert!(t.rst && !t.ack);
        assert_eq!((t.sequence_number, t.acknowledgment_number), (1, 0));
        assert!(write(&EP, &seg, &mut [0u8; 60]).is_none());
    }
}
