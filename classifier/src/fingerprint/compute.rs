//! Computing fingerprints from a parsed frame (the text forms and their
//! meaning are documented in the parent module).
//!
//! Both functions read only what [`crate::parse::parse`] already bounded, so
//! they never panic on a (frame, parse(frame)) pair, and they return `None`
//! rather than panic if handed a summary of another frame.

use super::{initial_ttl, opt, payload_hash, quirk, OptLayout, TcpFingerprint, UdpFingerprint};
use crate::parse::{Parsed, L3, L4};
use crate::wire::tcp::flags;
use crate::wire::TcpOption;

/// A packet's fingerprint: the TCP one for a TCP segment, the datagram one
/// for every other IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fingerprint {
    Tcp(TcpFingerprint),
    Udp(UdpFingerprint),
}

/// The one packet → fingerprint function of the product (sampling,
/// detection, the offline report): [`tcp_fingerprint`] for TCP,
/// [`udp_fingerprint`] for the rest. `None` for ARP and for a TCP segment
/// whose header is cut short.
pub fn fingerprint(frame: &[u8], p: &Parsed) -> Option<Fingerprint> {
    match p.l4 {
        L4::Tcp(_) => tcp_fingerprint(frame, p).map(Fingerprint::Tcp),
        _ => udp_fingerprint(frame, p).map(Fingerprint::Udp),
    }
}

/// The p0f-style fingerprint of a TCP segment (meant for SYNs, computed for
/// any TCP segment). `None` unless the frame is TCP with its header present.
pub fn tcp_fingerprint(frame: &[u8], p: &Parsed) -> Option<TcpFingerprint> {
    let L4::Tcp(t) = p.l4 else { return None };
    let l4 = usize::from(p.l4_offset);
    let opts = frame.get(l4 + crate::wire::tcp::HEADER_LEN..l4 + usize::from(t.header_len))?;
    let ver = match p.l3 {
        L3::Ipv4 => 4,
        L3::Ipv6 => 6,
        L3::Arp => return None,
    };
    let mut fp = TcpFingerprint {
        ver,
        ittl: initial_ttl(p.ttl),
        olen: p.ip_options_len(),
        mss: None,
        window: t.window,
        wscale: None,
        layout: OptLayout::default(),
        quirks: ip_quirks(p) | tcp_quirks(t.flags, t.seq, t.ack, t.urgent),
    };
    walk_options(opts, t.flags, &mut fp);
    Some(fp)
}

/// Quirks of the IP header: DF and the IP ID rules (IPv4 only), ECN.
fn ip_quirks(p: &Parsed) -> u16 {
    let mut q = 0;
    if p.l3 == L3::Ipv4 {
        if p.df {
            q |= quirk::DF;
            if p.ip_id != 0 {
                q |= quirk::ID_PLUS;
            }
        } else if p.ip_id == 0 {
            q |= quirk::ID_MINUS;
        }
    }
    if p.ecn != 0 {
        q |= quirk::ECN;
    }
    q
}

/// Quirks of the fixed TCP header.
fn tcp_quirks(f: u8, seq: u32, ack: u32, urgent: u16) -> u16 {
    let mut q = 0;
    if f & (flags::ECE | flags::CWR) != 0 {
        q |= quirk::ECN;
    }
    if seq == 0 {
        q |= quirk::SEQ_ZERO;
    }
    if ack != 0 && f & flags::ACK == 0 {
        q |= quirk::ACK_PLUS;
    }
    if f & flags::URG != 0 {
        q |= quirk::URGF;
    } else if urgent != 0 {
        q |= quirk::UPTR_PLUS;
    }
    if f & flags::PSH != 0 {
        q |= quirk::PUSHF;
    }
    q
}

/// Records the option layout, MSS, window scale and option quirks.
fn walk_options(opts: &[u8], tcp_flags: u8, fp: &mut TcpFingerprint) {
    let mut rest = opts;
    while !rest.is_empty() {
        let Ok((next, o)) = TcpOption::parse(rest) else {
            fp.quirks |= quirk::BAD;
            return;
        };
        let kind = match o {
            TcpOption::EndOfList => {
                // EOL swallows the rest of the area: count it as padding and
                // flag any non-zero byte in it (data hidden in the padding).
                let pad = &rest[1..];
                if pad.iter().any(|b| *b != 0) {
                    fp.quirks |= quirk::OPT_PLUS;
                }
                // The pad count belongs to the EOL entry of the layout: set
                // it only if that entry fits, or the text form (which prints
                // it as `eol+N`) could not carry it and a rule pasted from a
                // report would not match the fingerprint it shows.
                if fp.layout.push(opt::EOL) {
                    fp.layout.eol_pad = pad.len() as u8; // at most 39
                } else {
                    fp.quirks |= quirk::BAD;
                }
                return;
            }
            TcpOption::NoOperation => opt::NOP,
            TcpOption::MaxSegmentSize(m) => {
                fp.mss = Some(m);
                opt::MSS
            }
            TcpOption::WindowScale(s) => {
                fp.wscale = Some(s);
                if s > 14 {
                    // RFC 7323 §2.3: shifts above 14 are invalid.
                    fp.quirks |= quirk::EXWS;
                }
                opt::WS
            }
            TcpOption::SackPermitted => opt::SOK,
            TcpOption::SackRange(_) => opt::SACK,
            TcpOption::Timestamps { tsval, tsecr } => {
                if tsval == 0 {
                    fp.quirks |= quirk::TS1_ZERO;
                }
                // A SYN has no peer timestamp to echo (RFC 7323 §3.2); a
                // SYN-ACK does.
                if tsecr != 0 && flags::is_pure_syn(tcp_flags) {
                    fp.quirks |= quirk::TS2_PLUS;
                }
                opt::TS
            }
            TcpOption::Unknown { kind, .. } => {
                // A known kind with the wrong length is malformed.
                if matches!(kind, opt::MSS | opt::WS | opt::SOK | opt::SACK | opt::TS) {
                    fp.quirks |= quirk::BAD;
                }
                kind
            }
        };
        if !fp.layout.push(kind) {
            fp.quirks |= quirk::BAD;
            return;
        }
        rest = next;
    }
}

/// The fingerprint of a UDP, ICMP/ICMPv6 or other IP packet: `sport` is the
/// UDP source port, the ICMP type, or 0 (other protocols, and non-first
/// fragments, which carry no L4 header). `None` for TCP (with its header)
/// and ARP.
pub fn udp_fingerprint(frame: &[u8], p: &Parsed) -> Option<UdpFingerprint> {
    let ver = match p.l3 {
        L3::Ipv4 => 4,
        L3::Ipv6 => 6,
        L3::Arp => return None,
    };
    let sport = match p.l4 {
        L4::Tcp(_) => return None,
        L4::Udp { sport, .. } => sport,
        L4::Icmp { ty, .. } | L4::Icmpv6 { ty, .. } => u16::from(ty),
        L4::None => 0,
    };
    Some(UdpFingerprint {
        proto: p.proto,
        ver,
        len: p.payload_len,
        sport,
        phash: payload_hash(p.payload(frame)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::fixtures::{LINUX_SYN, QINQ_ARP, VLAN_V6_UDP};
    use crate::parse::parse;

    /// An Ethernet/IPv4/TCP SYN with the given IP and TCP fields and options
    /// (padded by the caller to a multiple of 4).
    fn syn(ttl: u8, df: bool, id: u16, seq: u32, window: u16, opts: &[u8]) -> Vec<u8> {
        let tcp_len = 20 + opts.len();
        let mut f = vec![0u8; 34 + tcp_len];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (20 + tcp_len) as u16;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[18..20].copy_from_slice(&id.to_be_bytes());
        f[20] = if df { 0x40 } else { 0 };
        f[22] = ttl;
        f[23] = 6;
        f[26..34].copy_from_slice(&[192, 0, 2, 1, 198, 51, 100, 10]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[38..42].copy_from_slice(&seq.to_be_bytes());
        f[46] = ((tcp_len / 4) as u8) << 4;
        f[47] = 0x02;
        f[48..50].copy_from_slice(&window.to_be_bytes());
        f[54..].copy_from_slice(opts);
        f
    }

    fn fp(frame: &[u8]) -> String {
        tcp_fingerprint(frame, &parse(frame).unwrap()).unwrap().to_string()
    }

    #[test]
    fn linux_syn() {
        assert_eq!(fp(&LINUX_SYN), "4:64:0:1460:64240,7:mss,sok,ts,nop,ws:df,id+");
    }

    #[test]
    fn windows_10_syn() {
        // mss 1460, nop, ws 8, nop, nop, sackOK; observed TTL 117 (11 hops).
        let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2];
        let f = syn(117, true, 0x5a3b, 0x1234_5678, 64240, &opts);
        assert_eq!(fp(&f), "4:128:0:1460:64240,8:mss,nop,ws,nop,nop,sok:df,id+");
    }

    #[test]
    fn hping3_default_syn() {
        // hping3 -S: no options, window 512, no DF, random IP ID.
        let f = syn(64, false, 0x9c21, 0x3b2a_1908, 512, &[]);
        let s = fp(&f);
        assert_eq!(s, "4:64:0:-:512,-::");
        // And its text parses back to the same fingerprint.
        let parsed: super::super::TcpFingerprint = s.parse().unwrap();
        assert_eq!(parsed, tcp_fingerprint(&f, &parse(&f).unwrap()).unwrap());
    }

    #[test]
    fn header_quirks() {
        let mut f = syn(255, false, 0, 0, 1024, &[]);
        f[15] = 0x01; // ECT(1)
        f[42..46].copy_from_slice(&5u32.to_be_bytes()); // ack without ACK
        f[47] = 0x02 | 0x08 | 0x80; // SYN PSH CWR
        f[52..54].copy_from_slice(&1u16.to_be_bytes()); // urgent without URG
        assert_eq!(fp(&f), "4:255:0:-:1024,-::id-,ecn,seq-,ack+,uptr+,pushf+");
        f[47] = 0x22; // SYN URG
        assert_eq!(fp(&f), "4:255:0:-:1024,-::id-,ecn,seq-,ack+,urgf+");
    }

    #[test]
    fn option_quirks() {
        // ts with zero own and non-zero peer stamp, ws 15, eol then non-zero.
        let opts = [8, 10, 0, 0, 0, 0, 0, 0, 0, 9, 3, 3, 15, 0, 0, 7];
        let f = syn(64, true, 0, 1, 100, &opts);
        assert_eq!(fp(&f), "4:64:0:-:100,15:ts,ws,eol+2:df,ts1-,ts2+,opt+,exws");
        // MSS with a wrong length, then an option running past the end.
        let opts = [2, 3, 1, 30, 9, 0, 0, 0];
        let f = syn(64, true, 0, 1, 100, &opts);
        assert_eq!(fp(&f), "4:64:0:-:100,-:mss:df,bad");
        // Unknown kind 30 with a valid length.
        let opts = [30, 4, 1, 2];
        assert_eq!(fp(&syn(64, true, 0, 1, 100, &opts)), "4:64:0:-:100,-:?30:df");
        // 40 NOPs overflow the layout.
        let f = syn(64, true, 0, 1, 100, &[1; 40]);
        let t = tcp_fingerprint(&f, &parse(&f).unwrap()).unwrap();
        assert_eq!(t.layout.len as usize, super::super::MAX_OPTS);
        assert_ne!(t.quirks & quirk::BAD, 0);
    }

    /// Found by the `fingerprint` fuzz target: 16 NOPs fill the layout, then
    /// an EOL with 3 bytes of padding. The pad count used to be kept
    /// without its EOL entry, so the printed fingerprint parsed back to
    /// another value and its own exact rule did not match it.
    #[test]
    fn eol_after_a_full_layout() {
        #[rustfmt::skip]
        const FRAME: [u8; 79] = [
            // Ethernet
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x42, 0x08, 0x00,
            // IPv4: total 60, DF, TTL 64, TCP, 192.0.2.1 -> 198.51.100.10
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x32, 0x36,
            0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a,
            // TCP: 50000 -> 80, ack field non-zero, data offset 10, SYN, window 64240
            0xc3, 0x50, 0x00, 0x50, 0x6f, 0x5e, 0x4d, 0x3c, 0x00, 0x00, 0x26, 0x00,
            0xa0, 0x02, 0xfa, 0xf0, 0x9f, 0x01, 0x01, 0x01,
            // options: 16 NOPs, then EOL and 3 bytes of padding (one non-zero)
            0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
            0x00, 0x02, 0xa0, 0x03,
            // Ethernet padding
            0xfe, 0x9b, 0x64, 0x64, 0x64,
        ];
        let t = tcp_fingerprint(&FRAME, &parse(&FRAME).unwrap()).unwrap();
        assert_eq!(t.layout.eol_pad, 0);
        assert_ne!(t.quirks & quirk::BAD, 0);
        let back: super::super::TcpFingerprint = t.to_string().parse().unwrap();
        assert_eq!(back, t);
        assert!(super::super::TcpRule::exact(&back).matches(&t));
    }

    #[test]
    fn udp_and_others() {
        let p = parse(&VLAN_V6_UDP).unwrap();
        assert_eq!(tcp_fingerprint(&VLAN_V6_UDP, &p), None);
        let u = udp_fingerprint(&VLAN_V6_UDP, &p).unwrap();
        assert_eq!((u.proto, u.ver, u.len, u.sport), (17, 6, 4, 53));
        assert_eq!(u.phash, payload_hash(&[0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(u.to_string(), format!("udp:6:4:53:{:08x}", u.phash));
        // TCP and ARP have none.
        assert_eq!(udp_fingerprint(&LINUX_SYN, &parse(&LINUX_SYN).unwrap()), None);
        assert_eq!(udp_fingerprint(&QINQ_ARP, &parse(&QINQ_ARP).unwrap()), None);
        assert_eq!(tcp_fingerprint(&QINQ_ARP, &parse(&QINQ_ARP).unwrap()), None);
        // ICMP: sport is the type; other protocols: 0.
        let mut f = syn(64, false, 1, 1, 1, &[]);
        f[23] = 1;
        f[34] = 8;
        let u = udp_fingerprint(&f, &parse(&f).unwrap()).unwrap();
        assert_eq!((u.proto, u.sport, u.len), (1, 8, 12));
        f[23] = 47;
        let u = udp_fingerprint(&f, &parse(&f).unwrap()).unwrap();
        assert_eq!((u.proto, u.sport, u.len), (47, 0, 20));
        assert_eq!(u.to_string(), format!("47:4:20:0:{:08x}", u.phash));
    }
}
