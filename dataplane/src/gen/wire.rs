//! Frame building for the generator, with `etherparse` header types so that
//! the bytes come from an implementation independent of Moat's own wire code.
//!
//! All builders are infallible: lengths are bounded by the callers (frames of
//! at most a few kilobytes), and `etherparse`'s length errors, which cannot
//! happen under those bounds, fall back to a zero checksum rather than panic.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header,
    TcpHeader, TcpOptions, UdpHeader,
};

/// TCP flag bits (RFC 9293 §3.1): the classifier's, the product's one
/// definition.
pub use classifier::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN, URG};

/// Ethernet addresses of every generated frame.
#[derive(Debug, Clone, Copy)]
pub struct Macs {
    pub src: [u8; 6],
    pub dst: [u8; 6],
}

/// The network layer of one packet.
#[derive(Debug, Clone, Copy)]
pub enum Net {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        df: bool,
        id: u16,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hops: u8,
        flow: u32,
    },
}

impl Net {
    pub fn src(&self) -> IpAddr {
        match self {
            Net::V4 { src, .. } => IpAddr::V4(*src),
            Net::V6 { src, .. } => IpAddr::V6(*src),
        }
    }

    pub fn dst(&self) -> IpAddr {
        match self {
            Net::V4 { dst, .. } => IpAddr::V4(*dst),
            Net::V6 { dst, .. } => IpAddr::V6(*dst),
        }
    }

    /// The same packet with another IPv4 identification (IPv6 has none).
    pub fn with_id(self, new_id: u16) -> Net {
        match self {
            Net::V4 { src, dst, ttl, df, .. } => Net::V4 {
                src,
                dst,
                ttl,
                df,
                id: new_id,
            },
            v6 => v6,
        }
    }
}

fn ethernet(macs: &Macs, ether_type: EtherType) -> [u8; 14] {
    Ethernet2Header {
        source: macs.src,
        destination: macs.dst,
        ether_type,
    }
    .to_bytes()
}

/// An IPv4 header with a valid checksum. `fragment` is (offset in 8-byte
/// units, more fragments).
pub fn ipv4_header(
    net: (Ipv4Addr, Ipv4Addr, u8, bool, u16),
    proto: IpNumber,
    payload_len: usize,
    fragment: (u16, bool),
) -> Ipv4Header {
    let (src, dst, ttl, df, id) = net;
    let mut h = Ipv4Header {
        total_len: u16::try_from(Ipv4Header::MIN_LEN + payload_len).unwrap_or(u16::MAX),
        identification: id,
        dont_fragment: df,
        more_fragments: fragment.1,
        fragment_offset: IpFragOffset::try_new(fragment.0 & 0x1fff).unwrap_or_default(),
        time_to_live: ttl,
        protocol: proto,
        source: src.octets(),
        destination: dst.octets(),
        ..Ipv4Header::default()
    };
    h.header_checksum = h.calc_header_checksum();
    h
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, flow: u32, next: IpNumber, payload_len: usize) -> Ipv6Header {
    Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::try_new(flow & 0xf_ffff).unwrap_or_default(),
        payload_length: u16::try_from(payload_len).unwrap_or(u16::MAX),
        next_header: next,
        hop_limit: hops,
        source: src.octets(),
        destination: dst.octets(),
    }
}

/// Appends the Ethernet and IP headers of `net` for `l4_len` transport
/// bytes of `proto`.
fn ip_headers(out: &mut Vec<u8>, macs: &Macs, net: &Net, proto: IpNumber, l4_len: usize) {
    match *net {
        Net::V4 { src, dst, ttl, df, id } => {
            out.extend_from_slice(&ethernet(macs, EtherType::IPV4));
            out.extend_from_slice(&ipv4_header((src, dst, ttl, df, id), proto, l4_len, (0, false)).to_bytes());
        }
        Net::V6 { src, dst, hops, flow } => {
            out.extend_from_slice(&ethernet(macs, EtherType::IPV6));
            out.extend_from_slice(&ipv6_header(src, dst, hops, flow, proto, l4_len).to_bytes());
        }
    }
}

/// A TCP segment's fields; `options` are raw option bytes (at most 40, padded
/// with zeros, i.e. end-of-option-list, to a multiple of 4).
#[derive(Debug, Clone, Copy)]
pub struct Seg<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: &'a [u8],
}

/// The TCP header of `seg` with a valid checksum for `net` and `payload`.
fn tcp_header(net: &Net, seg: &Seg, payload: &[u8]) -> TcpHeader {
    let mut h = TcpHeader::new(seg.sport, seg.dport, seg.seq, seg.window);
    h.acknowledgment_number = seg.ack;
    h.fin = seg.flags & FIN != 0;
    h.syn = seg.flags & SYN != 0;
    h.rst = seg.flags & RST != 0;
    h.psh = seg.flags & PSH != 0;
    h.ack = seg.flags & ACK != 0;
    h.urg = seg.flags & URG != 0;
    h.options = TcpOptions::try_from_slice(seg.options).unwrap_or_default();
    h.checksum = match *net {
        Net::V4 { src, dst, .. } => h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload),
        Net::V6 { src, dst, .. } => h.calc_checksum_ipv6_raw(src.octets(), dst.octets(), payload),
    }
    .unwrap_or(0);
    h
}

/// Appends the TCP header and payload, with a valid checksum for `net`.
pub fn tcp_bytes(out: &mut Vec<u8>, net: &Net, seg: &Seg, payload: &[u8]) {
    out.reserve(60 + payload.len());
    out.extend_from_slice(&tcp_header(net, seg, payload).to_bytes());
    out.extend_from_slice(payload);
}

/// Appends a whole TCP frame.
pub fn tcp(out: &mut Vec<u8>, macs: &Macs, net: &Net, seg: &Seg, payload: &[u8]) {
    let h = tcp_header(net, seg, payload);
    let l4_len = h.header_len() + payload.len();
    out.reserve(14 + 40 + l4_len);
    ip_headers(out, macs, net, IpNumber::TCP, l4_len);
    out.extend_from_slice(&h.to_bytes());
    out.extend_from_slice(payload);
}

/// The UDP header for `payload` with a valid checksum for `net`.
fn udp_header(net: &Net, sport: u16, dport: u16, payload: &[u8]) -> UdpHeader {
    let mut h = UdpHeader {
        source_port: sport,
        destination_port: dport,
        length: 0,
        checksum: 0,
    };
    h.length = u16::try_from(UdpHeader::LEN + payload.len()).unwrap_or(u16::MAX);
    h.checksum = match *net {
        Net::V4 { src, dst, .. } => h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload),
        Net::V6 { src, dst, .. } => h.calc_checksum_ipv6_raw(src.octets(), dst.octets(), payload),
    }
    .unwrap_or(0);
    h
}

/// Appends the UDP header and payload, with a valid checksum for `net`.
pub fn udp_bytes(out: &mut Vec<u8>, net: &Net, sport: u16, dport: u16, payload: &[u8]) {
    out.extend_from_slice(&udp_header(net, sport, dport, payload).to_bytes());
    out.extend_from_slice(payload);
}

/// Appends a whole UDP frame.
pub fn udp(out: &mut Vec<u8>, macs: &Macs, net: &Net, sport: u16, dport: u16, payload: &[u8]) {
    out.reserve(14 + 40 + UdpHeader::LEN + payload.len());
    ip_headers(out, macs, net, IpNumber::UDP, UdpHeader::LEN + payload.len());
    udp_bytes(out, net, sport, dport, payload);
}

/// Appends one IPv4 fragment: `chunk` at `offset` 8-byte units of the datagram.
pub fn ipv4_fragment(
    out: &mut Vec<u8>,
    macs: &Macs,
    net: (Ipv4Addr, Ipv4Addr, u8, u16),
    proto: IpNumber,
    offset: u16,
    more: bool,
    chunk: &[u8],
) {
    let (src, dst, ttl, id) = net;
    out.reserve(34 + chunk.len());
    out.extend_from_slice(&ethernet(macs, EtherType::IPV4));
    out.extend_from_slice(&ipv4_header((src, dst, ttl, false, id), proto, chunk.len(), (offset, more)).to_bytes());
    out.extend_from_slice(chunk);
}

/// Appends one IPv6 fragment (RFC 8200 §4.5): fixed header, Fragment
/// header, `chunk`.
pub fn ipv6_fragment(
    out: &mut Vec<u8>,
    macs: &Macs,
    net: (Ipv6Addr, Ipv6Addr, u8, u32),
    proto: IpNumber,
    offset: u16,
    more: bool,
    chunk: &[u8],
) {
    let (src, dst, hops, id) = net;
    let fh = Ipv6FragmentHeader::new(
        proto,
        IpFragOffset::try_new(offset & 0x1fff).unwrap_or_default(),
        more,
        id,
    );
    let ip = ipv6_header(src, dst, hops, 0, IpNumber::IPV6_FRAGMENTATION_HEADER, 8 + chunk.len());
    out.reserve(62 + chunk.len());
    out.extend_from_slice(&ethernet(macs, EtherType::IPV6));
    out.extend_from_slice(&ip.to_bytes());
    out.extend_from_slice(&fh.to_bytes());
    out.extend_from_slice(chunk);
}

/// Offset of the IPv4 header in an untagged Ethernet frame.
pub const IP_AT: usize = 14;

/// Recomputes the IPv4 header checksum of `frame` in place (after a
/// deliberate edit of another header field). A frame too short is left alone.
pub fn refresh_ipv4_checksum(frame: &mut [u8]) {
    let Some(ihl) = frame.get(IP_AT).map(|b| usize::from(b & 0x0f) * 4) else {
        return;
    };
    let Some(hdr) = frame.get_mut(IP_AT..IP_AT + ihl.max(20)) else {
        return;
    };
    hdr[10] = 0;
    hdr[11] = 0;
    // RFC 1071: one's complement of the one's complement sum of 16-bit words.
    let mut sum: u32 = hdr
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const MACS: Macs = Macs {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
    };

    #[test]
    fn tcp_frame_parses_with_valid_checksums() {
        let net = Net::V4 {
            src: Ipv4Addr::new(198, 51, 100, 1),
            dst: Ipv4Addr::new(203, 0, 113, 10),
            ttl: 57,
            df: true,
            id: 7,
        };
        let seg = Seg {
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 0,
            flags: SYN,
            window: 64240,
            options: &[2, 4, 5, 0xb4],
        };
        let mut f = Vec::new();
        tcp(&mut f, &MACS, &net, &seg, b"");
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not ipv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert!(h.dont_fragment);
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("not tcp")
        };
        assert!(t.syn() && !t.ack());
        let th = t.to_header();
        assert_eq!(th.checksum, th.calc_checksum_ipv4(&h, &[]).unwrap());
        let mut g = f.clone();
        g[IP_AT + 10] ^= 0xff;
        refresh_ipv4_checksum(&mut g);
        assert_eq!(f, g);
    }

    #[test]
    fn v6_udp_and_fragments_parse() {
        let (s, d) = ("2001:db8::1".parse().unwrap(), "2001:db8::10".parse().unwrap());
        let net = Net::V6 {
            src: s,
            dst: d,
            hops: 60,
            flow: 5,
        };
        let mut f = Vec::new();
        udp(&mut f, &MACS, &net, 5000, 7777, b"GAME1234");
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Udp(u)) = &p.transport else {
            panic!("not udp")
        };
        assert_eq!(u.payload(), b"GAME1234");
        let mut frag = Vec::new();
        ipv6_fragment(&mut frag, &MACS, (s, d, 60, 99), IpNumber::UDP, 185, false, &[0; 64]);
        let p = SlicedPacket::from_ethernet(&frag).unwrap();
        assert!(p.transport.is_none(), "a non-first fragment has no transport header");
    }
}
