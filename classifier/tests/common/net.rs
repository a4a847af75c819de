//! End-to-end helpers for `classify` tests.
//!
//! Frames are built with etherparse 0.16 ([`Pkt`]), so that a bug shared by
//! our parser and our builders cannot hide itself; ARP, which etherparse 0.16
//! does not build, is written by hand from RFC 826 ([`arp_request`]).
//! Replies are parsed back with etherparse ([`TcpSeen::from_reply`]), which
//! also recomputes the IP and TCP checksums.
//!
//! Time is simulated: [`T0`] is the first nanosecond of a SYN cookie slot, so
//! tests can name slot boundaries exactly.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier::classify::classify_frame;
use classifier::cookie::{CookieSecrets, Key};
use classifier::policy::{Origin, OwnAddr, Service, SynAuth};
use classifier::state::{FlowKey, StateConfig};
use classifier::time::{Nanos, SECOND};
use classifier::verdict::Decision;
use classifier::{classify, Policy, Verdict, WorkerState};
use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Extensions, Ipv6FragmentHeader,
    Ipv6Header, LinkHeader, NetHeaders, PacketBuilder, PacketHeaders, SingleVlanHeader, TcpHeader, TcpOptionElement,
    TransportHeader, VlanHeader, VlanId,
};

/// 2023-11-14T22:13:20Z: 1_700_000_000 = 26_562_500 × 64, the start of a
/// cookie slot (`cookie::SLOT_SECS` = 64).
pub const T0: Nanos = 1_700_000_000 * SECOND;
/// One millisecond.
pub const MS: Nanos = SECOND / 1000;

/// The reply buffer size `classify` documents as always enough.
pub const REPLY_BUF: usize = 128;

pub const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const MOAT_MAC: [u8; 6] = [0x02, 0x6d, 0x6f, 0x61, 0x74, 0x01];

/// The cluster's cookie key.
pub const KEY: Key = [0x42; 16];

/// TCP flag bits (RFC 793 §3.1, RFC 3168).
pub mod fl {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// The IPv4 VIP of the `web` service and the IPv6 VIP of `web6`.
pub fn vip4() -> IpAddr {
    ip("203.0.113.10")
}
pub fn vip6() -> IpAddr {
    ip("2001:db8:10::10")
}
/// The node's own address on the outside port (answered to ARP).
pub fn moat4() -> IpAddr {
    ip("203.0.113.2")
}
/// The node's own IPv6 address on the outside port (answered to neighbour
/// solicitations, as is the link-local address of [`MOAT_MAC`]).
pub fn moat6() -> Ipv6Addr {
    "2001:db8:10::1".parse().expect("test address")
}
/// Client addresses (documentation ranges, RFC 5737 / RFC 3849).
pub fn client4() -> IpAddr {
    ip("198.51.100.7")
}
pub fn client6() -> IpAddr {
    ip("2001:db8:c::7")
}

/// The one origin: a GRE tunnel with a 1476-byte MTU (1500 - 24 of GRE/IPv4).
pub fn origin() -> Origin {
    Origin {
        name: "origin".into(),
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: None,
        mtu: 1476,
    }
}

/// A web service on `vip`: TCP 80 and 443, nothing else, no limits.
pub fn web(name: &str, vip: IpAddr, mode: SynAuth) -> Service {
    let mut s = Service::new(name, vip, 0);
    s.tcp_ports.insert(80);
    s.tcp_ports.insert(443);
    s.syn_auth = mode;
    s
}

/// A policy with secret `key`, the one origin, the node's own address, and
/// `services` (their origin must be 0).
pub fn policy_with(key: Key, services: Vec<Service>) -> Policy {
    let mut p = Policy::new(CookieSecrets::new(key));
    p.add_origin(origin());
    for own in [moat4(), moat6().into(), classifier::build::link_local(MOAT_MAC).into()] {
        p.own_addrs.push(OwnAddr { ip: own, mac: MOAT_MAC });
    }
    for s in services {
        p.add_service(s).expect("service");
    }
    p
}

/// `web` (IPv4, service 0) and `web6` (IPv6, service 1) in `mode`.
pub fn web_policy(mode: SynAuth) -> Policy {
    policy_with(KEY, vec![web("web", vip4(), mode), web("web6", vip6(), mode)])
}

/// One worker's view of the world: its state, the policy it reads, and the
/// reply buffer it writes into.
pub struct Node {
    pub st: WorkerState,
    pub pol: Policy,
    pub reply: [u8; REPLY_BUF],
    pub last_len: usize,
}

impl Node {
    /// A node with small tables (1024 entries) and one worker.
    pub fn new(pol: Policy) -> Self {
        let cfg = StateConfig {
            flows: 1024,
            verified: 1024,
            sources: 1024,
            reassembly: Default::default(),
            bans: 64,
        };
        Self::with_config(pol, cfg, 1)
    }

    pub fn with_config(pol: Policy, cfg: StateConfig, workers: u32) -> Self {
        Node {
            st: WorkerState::new(&cfg, &pol, workers),
            pol,
            reply: [0; REPLY_BUF],
            last_len: 0,
        }
    }

    /// Classifies `frame` at `now`; a reply is kept for [`Node::reply`].
    pub fn run(&mut self, now: Nanos, frame: &[u8]) -> Verdict {
        self.reply = [0; REPLY_BUF];
        let v = classify(&mut self.st, &self.pol, now, frame, &mut self.reply);
        self.last_len = match v {
            Verdict::Reply { len } | Verdict::ResetBoth { len, .. } => len,
            _ => 0,
        };
        v
    }

    /// [`Node::run`] with the whole decision (service, SYN, MTU).
    pub fn decide(&mut self, now: Nanos, frame: &[u8]) -> Decision {
        self.reply = [0; REPLY_BUF];
        let d = classify_frame(&mut self.st, &self.pol, now, frame, &mut self.reply);
        self.last_len = match d.verdict {
            Verdict::Reply { len } => len,
            _ => 0,
        };
        d
    }

    /// The reply written by the last [`Node::run`].
    pub fn reply(&self) -> &[u8] {
        &self.reply[..self.last_len]
    }

    pub fn has_flow(&mut self, key: &FlowKey, now: Nanos) -> bool {
        let idle = self.pol.timeouts.flow_idle;
        self.st.flows.touch(key, now, idle)
    }

    pub fn verified(&mut self, src: IpAddr, now: Nanos) -> bool {
        self.st.verified.is_verified(src, now)
    }
}

/// The transport part of a [`Pkt`].
#[derive(Clone, Debug)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: Vec<TcpOptionElement>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMPv4 or ICMPv6 (by the IP version) with raw type and code.
    Icmp {
        ty: u8,
        code: u8,
    },
    /// Another IP protocol, with the payload as its bytes.
    Other(u8),
}

/// IP fragmentation of a [`Pkt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frag {
    None,
    /// Offset 0, more fragments.
    First,
    /// Offset 1480 bytes (185 units of 8), no more fragments.
    Later,
}

/// A frame to build with etherparse.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// IPv4 only: identification and don't-fragment.
    pub ident: u16,
    pub df: bool,
    pub frag: Frag,
    pub l4: L4,
    pub payload: Vec<u8>,
}

/// The options of a Linux 6.x SYN: `mss,sok,ts,nop,ws` (MSS 1460, wscale 7).
pub fn linux_syn_options(mss: u16, tsval: u32) -> Vec<TcpOptionElement> {
    vec![
        TcpOptionElement::MaximumSegmentSize(mss),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp(tsval, 0),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(7),
    ]
}

impl Pkt {
    /// A TCP segment from `src:sport` to `dst:dport` with `flags`, as Linux
    /// sends it (TTL 64, DF, non-zero IP id, window 64240, no options).
    pub fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8) -> Self {
        Pkt {
            src_mac: CLIENT_MAC,
            dst_mac: MOAT_MAC,
            vlan: None,
            src,
            dst,
            ttl: 64,
            ident: 0x1c46,
            df: true,
            frag: Frag::None,
            l4: L4::Tcp {
                sport,
                dport,
                seq: 0,
                ack: 0,
                flags,
                window: 64240,
                options: Vec::new(),
            },
            payload: Vec::new(),
        }
    }

    /// A Linux SYN: ISN `isn`, the Linux option layout with MSS 1460 (1440
    /// over IPv6).
    pub fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, isn: u32) -> Self {
        let mss = if src.is_ipv6() { 1440 } else { 1460 };
        Pkt::tcp(src, sport, dst, dport, fl::SYN)
            .seq(isn)
            .options(linux_syn_options(mss, 0x2b3c_4d5e))
    }

    pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Self {
        let mut p = Pkt::tcp(src, 0, dst, 0, 0);
        p.l4 = L4::Udp { sport, dport };
        p.payload = payload.to_vec();
        p
    }

    pub fn icmp(src: IpAddr, dst: IpAddr, ty: u8, code: u8) -> Self {
        let mut p = Pkt::tcp(src, 0, dst, 0, 0);
        p.l4 = L4::Icmp { ty, code };
        p.payload = b"ping-payload".to_vec();
        p
    }

    pub fn other(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Self {
        let mut p = Pkt::tcp(src, 0, dst, 0, 0);
        p.l4 = L4::Other(proto);
        p.payload = payload.to_vec();
        p
    }

    fn tcp_mut(&mut self) -> (&mut u32, &mut u32, &mut Vec<TcpOptionElement>) {
        match &mut self.l4 {
            L4::Tcp { seq, ack, options, .. } => (seq, ack, options),
            _ => panic!("not a TCP packet"),
        }
    }

    pub fn seq(mut self, n: u32) -> Self {
        *self.tcp_mut().0 = n;
        self
    }
    pub fn ack(mut self, n: u32) -> Self {
        *self.tcp_mut().1 = n;
        self
    }
    pub fn options(mut self, o: Vec<TcpOptionElement>) -> Self {
        *self.tcp_mut().2 = o;
        self
    }
    pub fn window(mut self, w: u16) -> Self {
        if let L4::Tcp { window, .. } = &mut self.l4 {
            *window = w;
        }
        self
    }
    pub fn payload(mut self, b: &[u8]) -> Self {
        self.payload = b.to_vec();
        self
    }
    pub fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id);
        self
    }
    pub fn ttl(mut self, t: u8) -> Self {
        self.ttl = t;
        self
    }
    pub fn frag(mut self, f: Frag) -> Self {
        self.frag = f;
        self
    }

    /// The 4-tuple of a TCP packet as the flow table keys it.
    pub fn flow_key(&self) -> FlowKey {
        match self.l4 {
            L4::Tcp { sport, dport, .. } => FlowKey {
                src: self.src,
                dst: self.dst,
                sport,
                dport,
            },
            _ => panic!("not a TCP packet"),
        }
    }

    fn ip_headers(&self) -> IpHeaders {
        let (off, more) = match self.frag {
            Frag::None => (0, false),
            Frag::First => (0, true),
            Frag::Later => (185, false),
        };
        let off = IpFragOffset::try_new(off).expect("offset");
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = Ipv4Header::new(0, self.ttl, IpNumber::TCP, s.octets(), d.octets()).expect("ipv4");
                h.identification = self.ident;
                h.dont_fragment = self.df && self.frag == Frag::None;
                h.more_fragments = more;
                h.fragment_offset = off;
                IpHeaders::Ipv4(h, Default::default())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let h = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Default::default(),
                    payload_length: 0,
                    next_header: IpNumber::TCP,
                    hop_limit: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                };
                let mut ext = Ipv6Extensions::default();
                if self.frag != Frag::None {
                    ext.fragment = Some(Ipv6FragmentHeader::new(IpNumber::TCP, off, more, 0x1234_5678));
                }
                IpHeaders::Ipv6(h, ext)
            }
            _ => panic!("mixed address families"),
        }
    }

    /// The frame, built by etherparse (lengths and checksums filled in).
    pub fn build(&self) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let b = match self.vlan {
            None => eth.ip(self.ip_headers()),
            Some(id) => eth
                .single_vlan(VlanId::try_new(id).expect("vlan id"))
                .ip(self.ip_headers()),
        };
        let mut out = Vec::new();
        let v6 = self.src.is_ipv6();
        match &self.l4 {
            L4::Tcp {
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
                options,
            } => {
                let mut h = TcpHeader::new(*sport, *dport, *seq, *window);
                h.fin = flags & fl::FIN != 0;
                h.syn = flags & fl::SYN != 0;
                h.rst = flags & fl::RST != 0;
                h.psh = flags & fl::PSH != 0;
                h.ack = flags & fl::ACK != 0;
                h.urg = flags & fl::URG != 0;
                h.ece = flags & fl::ECE != 0;
                h.cwr = flags & fl::CWR != 0;
                h.acknowledgment_number = *ack;
                h.set_options(options).expect("tcp options");
                b.tcp_header(h).write(&mut out, &self.payload).expect("write")
            }
            L4::Udp { sport, dport } => b.udp(*sport, *dport).write(&mut out, &self.payload).expect("write"),
            L4::Icmp { ty, code } if v6 => b
                .icmpv6_raw(*ty, *code, [0, 1, 0, 1])
                .write(&mut out, &self.payload)
                .expect("write"),
            L4::Icmp { ty, code } => b
                .icmpv4_raw(*ty, *code, [0, 1, 0, 1])
                .write(&mut out, &self.payload)
                .expect("write"),
            L4::Other(proto) => b.write(&mut out, IpNumber(*proto), &self.payload).expect("write"),
        }
        out
    }
}

/// An ARP request (RFC 826, Ethernet/IPv4, op 1) from `CLIENT_MAC`/`sender`
/// asking for `target`, with `op` in place of 1 when testing other
/// operations. The L2 header comes from etherparse, the body is written
/// field by field.
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr, op: u16, vlan: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    let arp = EtherType(0x0806);
    match vlan {
        None => Ethernet2Header {
            source: CLIENT_MAC,
            destination: [0xff; 6],
            ether_type: arp,
        }
        .write(&mut out)
        .expect("eth"),
        Some(id) => {
            Ethernet2Header {
                source: CLIENT_MAC,
                destination: [0xff; 6],
                ether_type: EtherType::VLAN_TAGGED_FRAME,
            }
            .write(&mut out)
            .expect("eth");
            SingleVlanHeader {
                pcp: Default::default(),
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(id).expect("vlan id"),
                ether_type: arp,
            }
            .write(&mut out)
            .expect("vlan");
        }
    }
    out.extend_from_slice(&1u16.to_be_bytes()); // htype: Ethernet
    out.extend_from_slice(&0x0800u16.to_be_bytes()); // ptype: IPv4
    out.extend_from_slice(&[6, 4]); // hlen, plen
    out.extend_from_slice(&op.to_be_bytes());
    out.extend_from_slice(&CLIENT_MAC); // sha
    out.extend_from_slice(&sender.octets()); // spa
    out.extend_from_slice(&[0; 6]); // tha: unknown in a request
    out.extend_from_slice(&target.octets()); // tpa
    out.resize(out.len().max(60), 0); // Ethernet minimum, as a NIC pads
    out
}

/// An ICMPv6 neighbour discovery message (RFC 4861 §4) of type `ty`
/// (133..=137) from `CLIENT_MAC`/`src` to `dst` with hop limit `hops`:
/// a zero reserved/flags word, `target`, then `opts`. Built by etherparse
/// (which knows ND types only as raw ICMPv6, and fills in the checksum);
/// the Ethernet destination is the group address of a multicast `dst`
/// (RFC 2464 §7), else [`MOAT_MAC`].
pub fn nd_message(
    ty: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hops: u8,
    target: Ipv6Addr,
    opts: &[u8],
    vlan: Option<u16>,
) -> Vec<u8> {
    let dst_mac = if dst.is_multicast() {
        let o = dst.octets();
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        MOAT_MAC
    };
    let eth = PacketBuilder::ethernet2(CLIENT_MAC, dst_mac);
    let b = match vlan {
        None => eth.ipv6(src.octets(), dst.octets(), hops),
        Some(id) => eth
            .single_vlan(VlanId::try_new(id).expect("vlan id"))
            .ipv6(src.octets(), dst.octets(), hops),
    };
    let mut body = target.octets().to_vec();
    body.extend_from_slice(opts);
    let mut out = Vec::new();
    b.icmpv6_raw(ty, 0, [0; 4]).write(&mut out, &body).expect("write");
    out
}

/// A Neighbor Solicitation from `src` (with its source link-layer address
/// option, `CLIENT_MAC`) for `target`, to `target`'s solicited-node
/// multicast address, hop limit 255: what Linux sends to resolve a
/// neighbour.
pub fn neighbor_solicit(src: Ipv6Addr, target: Ipv6Addr, vlan: Option<u16>) -> Vec<u8> {
    let mut slla = vec![1, 1];
    slla.extend_from_slice(&CLIENT_MAC);
    let dst = classifier::build::solicited_node(target);
    nd_message(135, src, dst, 255, target, &slla, vlan)
}

/// A TCP reply as etherparse reads it, after checking that its IPv4 header
/// checksum and TCP checksum are correct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSeen {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub options: usize,
    pub payload_len: usize,
}

impl TcpSeen {
    /// Parses `frame` with etherparse; panics (fails the test) unless it is
    /// Ethernet/[802.1Q]/IP/TCP with correct checksums.
    pub fn from_reply(frame: &[u8]) -> Self {
        let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads the reply");
        let Some(LinkHeader::Ethernet2(eth)) = &h.link else {
            panic!("no Ethernet header")
        };
        let vlan = match &h.vlan {
            None => None,
            Some(VlanHeader::Single(v)) => Some(v.vlan_id.value()),
            Some(VlanHeader::Double(_)) => panic!("double tag"),
        };
        let Some(TransportHeader::Tcp(t)) = &h.transport else {
            panic!("not TCP")
        };
        let payload = h.payload.slice();
        let (src, dst, ttl, sum) = match &h.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                assert_eq!(ip.calc_header_checksum(), ip.header_checksum, "IPv4 header checksum");
                let sum = t.calc_checksum_ipv4(ip, payload).expect("checksum");
                (
                    IpAddr::V4(ip.source.into()),
                    IpAddr::V4(ip.destination.into()),
                    ip.time_to_live,
                    sum,
                )
            }
            Some(NetHeaders::Ipv6(ip, _)) => {
                let sum = t.calc_checksum_ipv6(ip, payload).expect("checksum");
                (
                    IpAddr::V6(Ipv6Addr::from(ip.source)),
                    IpAddr::V6(Ipv6Addr::from(ip.destination)),
                    ip.hop_limit,
                    sum,
                )
            }
            None => panic!("no IP header"),
        };
        assert_eq!(sum, t.checksum, "TCP checksum");
        let mut flags = 0;
        for (on, bit) in [
            (t.fin, fl::FIN),
            (t.syn, fl::SYN),
            (t.rst, fl::RST),
            (t.psh, fl::PSH),
            (t.ack, fl::ACK),
            (t.urg, fl::URG),
            (t.ece, fl::ECE),
            (t.cwr, fl::CWR),
        ] {
            if on {
                flags |= bit;
            }
        }
        let mut mss = None;
        let mut options = 0;
        for o in t.options_iterator() {
            options += 1;
            if let Ok(TcpOptionElement::MaximumSegmentSize(m)) = o {
                mss = Some(m);
            }
        }
        TcpSeen {
            src_mac: eth.source,
            dst_mac: eth.destination,
            vlan,
            src,
            dst,
            ttl,
            sport: t.source_port,
            dport: t.destination_port,
            seq: t.sequence_number,
            ack: t.acknowledgment_number,
            flags,
            window: t.window_size,
            mss,
            options,
            payload_len: payload.len(),
        }
    }

    /// Asserts that this reply answers `p`: MACs, addresses and ports
    /// swapped, the VLAN tag kept.
    pub fn assert_answers(&self, p: &Pkt) {
        let L4::Tcp { sport, dport, .. } = p.l4 else {
            panic!("not TCP")
        };
        assert_eq!((self.src_mac, self.dst_mac), (p.dst_mac, p.src_mac), "MACs swapped");
        assert_eq!(self.vlan, p.vlan, "VLAN tag kept");
        assert_eq!((self.src, self.dst), (p.dst, p.src), "addresses swapped");
        assert_eq!((self.sport, self.dport), (dport, sport), "ports swapped");
    }
}
