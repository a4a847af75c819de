//! Malformed packets, one defect each, on otherwise valid IPv4 TCP SYNs or
//! UDP datagrams from random sources to the VIP. Each [`Defect`] is what a
//! sanity check must catch; the tests below show that an independent parser
//! (`etherparse`) fails on the structural ones, and find the field-level ones
//! (checksum, flags, land, TTL) in otherwise parseable packets.

use core::net::Ipv4Addr;

use classifier::time::Nanos;
use rand::Rng;

use super::sched::Sched;
use super::wire::{self, Net, Seg, FIN, IP_AT, PSH, SYN, URG};
use super::{Ctx, Profile};

/// The ways a generated packet is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// Fewer than 14 bytes: not even an Ethernet header.
    TruncatedEthernet,
    /// EtherType IPv4 followed by fewer than 20 bytes.
    TruncatedIpv4,
    /// IHL below 5 (a header shorter than its fixed part).
    ShortIhl,
    /// Total length beyond the frame's end.
    TotalLenBeyondFrame,
    BadIpv4Checksum,
    /// TCP data offset below 5.
    TcpShortDoff,
    TcpNullFlags,
    TcpSynFin,
    /// FIN, PSH and URG ("Christmas tree").
    TcpXmas,
    /// UDP length field different from the datagram's length.
    UdpLenMismatch,
    /// Source = destination = VIP, source port = destination port.
    Land,
    ZeroTtl,
}

impl Defect {
    pub const ALL: [Defect; 12] = [
        Defect::TruncatedEthernet,
        Defect::TruncatedIpv4,
        Defect::ShortIhl,
        Defect::TotalLenBeyondFrame,
        Defect::BadIpv4Checksum,
        Defect::TcpShortDoff,
        Defect::TcpNullFlags,
        Defect::TcpSynFin,
        Defect::TcpXmas,
        Defect::UdpLenMismatch,
        Defect::Land,
        Defect::ZeroTtl,
    ];
}

/// Offset of the transport header in the base frames (IPv4 without options).
const L4_AT: usize = IP_AT + 20;

fn source(ctx: &mut Ctx, ttl: u8) -> Net {
    Net::V4 {
        src: Ipv4Addr::from(ctx.rng.gen::<u32>()),
        dst: ctx.cfg.vip,
        ttl,
        df: false,
        id: ctx.rng.gen(),
    }
}

fn tcp_with_flags(ctx: &mut Ctx, f: &mut Vec<u8>, net: &Net, sport: u16, flags: u8) {
    let rng = &mut ctx.rng;
    let seg = Seg {
        sport,
        dport: ctx.cfg.tcp_port,
        seq: rng.gen(),
        ack: 0,
        flags,
        window: rng.gen(),
        options: &[],
    };
    wire::tcp(f, &ctx.macs(), net, &seg, &[]);
}

fn udp(ctx: &mut Ctx, f: &mut Vec<u8>, net: &Net) {
    let len = ctx.rng.gen_range(8..=512);
    ctx.payload.clear();
    ctx.payload.extend((0..len).map(|_| ctx.rng.gen::<u8>()));
    let sport = ctx.rng.gen();
    wire::udp(f, &ctx.macs(), net, sport, ctx.cfg.udp_port, &ctx.payload);
}

/// Writes a packet with `defect` over `f`.
pub(crate) fn build(ctx: &mut Ctx, defect: Defect, f: &mut Vec<u8>) {
    f.clear();
    let ttl = 64 - ctx.rng.gen_range(4..=24);
    let net = source(ctx, ttl);
    let sport = ctx.rng.gen();
    let syn = |ctx: &mut Ctx, f: &mut Vec<u8>| tcp_with_flags(ctx, f, &net, sport, SYN);
    match defect {
        Defect::TruncatedEthernet => {
            syn(ctx, f);
            f.truncate(ctx.rng.gen_range(1..IP_AT));
        }
        Defect::TruncatedIpv4 => {
            syn(ctx, f);
            f.truncate(IP_AT + ctx.rng.gen_range(1..20));
        }
        Defect::ShortIhl => {
            syn(ctx, f);
            f[IP_AT] = 0x40 | ctx.rng.gen_range(0..5u8);
        }
        Defect::TotalLenBeyondFrame => {
            syn(ctx, f);
            let claimed = (f.len() - IP_AT + ctx.rng.gen_range(1..=1000)) as u16;
            f[IP_AT + 2..IP_AT + 4].copy_from_slice(&claimed.to_be_bytes());
            wire::refresh_ipv4_checksum(f);
        }
        Defect::BadIpv4Checksum => {
            syn(ctx, f);
            f[IP_AT + 10] ^= ctx.rng.gen_range(1..=255u8);
        }
        Defect::TcpShortDoff => {
            syn(ctx, f);
            f[L4_AT + 12] = ctx.rng.gen_range(0..5u8) << 4;
        }
        Defect::TcpNullFlags => tcp_with_flags(ctx, f, &net, sport, 0),
        Defect::TcpSynFin => tcp_with_flags(ctx, f, &net, sport, SYN | FIN),
        Defect::TcpXmas => tcp_with_flags(ctx, f, &net, sport, FIN | PSH | URG),
        Defect::UdpLenMismatch => {
            udp(ctx, f, &net);
            let real = f.len() - L4_AT;
            // Half claim more than the datagram holds, half less (but still
            // at least the 8-byte header, so only the mismatch is wrong).
            let claimed = if ctx.rng.gen_bool(0.5) {
                real + ctx.rng.gen_range(1..=100)
            } else {
                ctx.rng.gen_range(8..real)
            };
            f[L4_AT + 4..L4_AT + 6].copy_from_slice(&(claimed as u16).to_be_bytes());
        }
        Defect::Land => {
            let vip = ctx.cfg.vip;
            let land = Net::V4 {
                src: vip,
                dst: vip,
                ttl,
                df: false,
                id: ctx.rng.gen(),
            };
            let port = ctx.cfg.tcp_port;
            tcp_with_flags(ctx, f, &land, port, SYN);
        }
        Defect::ZeroTtl => {
            if ctx.rng.gen_bool(0.5) {
                syn(ctx, f);
            } else {
                udp(ctx, f, &net);
            }
            f[IP_AT + 8] = 0;
            wire::refresh_ipv4_checksum(f);
        }
    }
}

pub(crate) fn event(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let defect = Defect::ALL[ctx.rng.gen_range(0..Defect::ALL.len())];
    let mut f = q.buf();
    build(ctx, defect, &mut f);
    q.push(at, Profile::Malformed, f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::err::{packet::SliceError, Layer};
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn frames(defect: Defect) -> Vec<Vec<u8>> {
        let mut ctx = super::super::test_ctx(7);
        (0..50)
            .map(|_| {
                let mut f = Vec::new();
                build(&mut ctx, defect, &mut f);
                f
            })
            .collect()
    }

    fn len_error_at(f: &[u8], layer: Layer) -> bool {
        matches!(SlicedPacket::from_ethernet(f), Err(SliceError::Len(e)) if e.layer == layer)
    }

    /// The parsed IPv4 header and TCP flags (FIN, SYN, RST, PSH, ACK, URG) of a frame that parses.
    fn parsed(
        f: &[u8],
    ) -> (
        etherparse::Ipv4Header,
        Option<etherparse::TcpHeader>,
        Option<etherparse::UdpHeader>,
    ) {
        let p = SlicedPacket::from_ethernet(f).expect("parses");
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not ipv4")
        };
        let (tcp, udp) = match &p.transport {
            Some(TransportSlice::Tcp(t)) => (Some(t.to_header()), None),
            Some(TransportSlice::Udp(u)) => (None, Some(u.to_header())),
            _ => (None, None),
        };
        (ip.header().to_header(), tcp, udp)
    }

    #[test]
    fn structural_defects_fail_etherparse_where_intended() {
        assert!(frames(Defect::TruncatedEthernet)
            .iter()
            .all(|f| len_error_at(f, Layer::Ethernet2Header)));
        assert!(frames(Defect::TruncatedIpv4)
            .iter()
            .all(|f| len_error_at(f, Layer::Ipv4Header)));
        assert!(frames(Defect::TotalLenBeyondFrame)
            .iter()
            .all(|f| len_error_at(f, Layer::Ipv4Packet)));
        for f in frames(Defect::ShortIhl) {
            let e = SlicedPacket::from_ethernet(&f).unwrap_err();
            assert!(
                matches!(
                    e,
                    SliceError::Ip(etherparse::err::ip::HeaderError::Ipv4HeaderLengthSmallerThanHeader { .. })
                        | SliceError::Ipv4(etherparse::err::ipv4::HeaderError::HeaderLengthSmallerThanHeader { .. })
                ),
                "{e:?}"
            );
        }
        for f in frames(Defect::TcpShortDoff) {
            let e = SlicedPacket::from_ethernet(&f).unwrap_err();
            assert!(
                matches!(
                    e,
                    SliceError::Tcp(etherparse::err::tcp::HeaderError::DataOffsetTooSmall { .. })
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn field_defects_parse_but_carry_the_defect() {
        for f in frames(Defect::BadIpv4Checksum) {
            let (ip, ..) = parsed(&f);
            assert_ne!(ip.header_checksum, ip.calc_header_checksum());
        }
        let flags = |t: &etherparse::TcpHeader| (t.fin, t.syn, t.rst, t.psh, t.ack, t.urg);
        for f in frames(Defect::TcpNullFlags) {
            assert_eq!(
                flags(&parsed(&f).1.unwrap()),
                (false, false, false, false, false, false)
            );
        }
        for f in frames(Defect::TcpSynFin) {
            assert_eq!(flags(&parsed(&f).1.unwrap()), (true, true, false, false, false, false));
        }
        for f in frames(Defect::TcpXmas) {
            assert_eq!(flags(&parsed(&f).1.unwrap()), (true, false, false, true, false, true));
        }
        for f in frames(Defect::Land) {
            let (ip, tcp, _) = parsed(&f);
            let tcp = tcp.unwrap();
            assert_eq!((ip.source, ip.destination), ([203, 0, 113, 10], [203, 0, 113, 10]));
            assert_eq!((tcp.source_port, tcp.destination_port), (80, 80));
        }
        for f in frames(Defect::ZeroTtl) {
            let (ip, ..) = parsed(&f);
            assert_eq!(ip.time_to_live, 0);
            assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "only the TTL is wrong");
        }
        for f in frames(Defect::UdpLenMismatch) {
            let claimed = usize::from(u16::from_be_bytes([f[L4_AT + 4], f[L4_AT + 5]]));
            assert_ne!(claimed, f.len() - L4_AT);
            if claimed > f.len() - L4_AT {
                assert!(
                    len_error_at(&f, Layer::UdpPayload),
                    "a UDP length past the packet fails to parse"
                );
            }
        }
    }
}
