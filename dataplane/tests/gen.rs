//! The traffic generator, checked from outside with `etherparse` and
//! `classifier::cookie`: determinism, counts, time order, that every packet
//! parses (and every malformed one is broken), profile contents, SYN
//! authentication answers, IPv6 share and mix ratios.

use std::collections::BTreeMap;
use std::net::IpAddr;

use classifier::cookie::{self, CookieSecrets, Tuple};
use classifier::policy::SynAuth;
use classifier::time::SECOND;
use dataplane::gen::{parse_mix, GenConfig, GenPacket, Generator, Profile};
use dataplane::pcap::{PcapReader, PcapWriter};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

fn run(cfg: GenConfig) -> Vec<GenPacket> {
    Generator::new(cfg).collect()
}

fn cfg(mix: &str, count: u64) -> GenConfig {
    GenConfig {
        mix: parse_mix(mix).unwrap(),
        count,
        ..GenConfig::default()
    }
}

/// What a test needs of a parsed packet.
#[derive(Debug)]
struct View {
    src: IpAddr,
    dst: IpAddr,
    v6: bool,
    fragment: bool,
    ttl: u8,
    tcp: Option<etherparse::TcpHeader>,
    udp: Option<(etherparse::UdpHeader, Vec<u8>)>,
}

fn view(frame: &[u8]) -> View {
    let p = SlicedPacket::from_ethernet(frame).unwrap_or_else(|e| panic!("{e:?}: {frame:02x?}"));
    let (src, dst, v6, fragment, ttl) = match p.net.as_ref().expect("an IP packet") {
        NetSlice::Ipv4(ip) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
            (
                IpAddr::from(h.source),
                IpAddr::from(h.destination),
                false,
                ip.is_payload_fragmented(),
                h.time_to_live,
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header().to_header();
            (
                IpAddr::from(h.source),
                IpAddr::from(h.destination),
                true,
                ip.is_payload_fragmented(),
                h.hop_limit,
            )
        }
    };
    let (tcp, udp) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (Some(t.to_header()), None),
        Some(TransportSlice::Udp(u)) => (None, Some((u.to_header(), u.payload().to_vec()))),
        _ => (None, None),
    };
    View {
        src,
        dst,
        v6,
        fragment,
        ttl,
        tcp,
        udp,
    }
}

/// Whether `frame` has at least one of the malformations the generator makes.
fn is_malformed(frame: &[u8], vip: [u8; 4]) -> bool {
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return true;
    };
    let Some(NetSlice::Ipv4(ip)) = &p.net else { return false };
    let h = ip.header().to_header();
    if h.header_checksum != h.calc_header_checksum() || h.time_to_live == 0 {
        return true;
    }
    if h.source == vip && h.destination == vip {
        return true;
    }
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let t = t.to_header();
            let none = !(t.fin || t.syn || t.rst || t.psh || t.ack || t.urg);
            none || (t.syn && t.fin) || (t.fin && t.psh && t.urg)
        }
        Some(TransportSlice::Udp(u)) => usize::from(u.to_header().length) != ip.payload().payload.len(),
        _ => false,
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(cfg("mix", 3000));
    let b = run(cfg("mix", 3000));
    assert_eq!(a, b);
    let c = run(GenConfig {
        seed: 2,
        ..cfg("mix", 3000)
    });
    assert_ne!(a, c);

    // And through the pcap writer, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let path = dir.path().join(format!("{i}.pcap"));
            let mut w = PcapWriter::create(&path).unwrap();
            for p in Generator::new(cfg("mix", 2000)) {
                w.write(p.ts, &p.frame).unwrap();
            }
            assert_eq!(w.finish().unwrap(), 2000);
            std::fs::read(&path).unwrap()
        })
        .collect();
    assert_eq!(files[0], files[1]);
    let mut r = PcapReader::open(&dir.path().join("0.pcap")).unwrap();
    let first = r.next_frame().unwrap().unwrap();
    assert_eq!((first.ts, first.data), (a[0].ts, a[0].frame.clone()));
}

#[test]
fn exact_count_and_time_order_for_every_profile() {
    for p in Profile::ALL {
        for count in [0, 1, 7, 1500] {
            let pkts = run(cfg(p.name(), count));
            assert_eq!(pkts.len() as u64, count, "{p}");
            assert!(pkts.iter().all(|x| x.profile == p), "{p}: labels");
            assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts), "{p}: time order");
            if let Some(first) = pkts.first() {
                assert_eq!(first.ts, dataplane::gen::DEFAULT_START);
            }
        }
    }
    let g = Generator::new(cfg("mix", 5));
    assert_eq!(g.size_hint(), (5, Some(5)));
}

#[test]
fn every_packet_parses_except_malformed_ones() {
    let c = GenConfig {
        ipv6_share: 0.3,
        ..cfg("mix", 20_000)
    };
    let vip = c.vip.octets();
    let mut malformed = 0;
    for p in run(c) {
        if p.profile == Profile::Malformed {
            assert!(is_malformed(&p.frame, vip), "intact malformed packet {:02x?}", p.frame);
            malformed += 1;
        } else {
            let v = view(&p.frame);
            assert!(
                !is_malformed(&p.frame, vip) || v.fragment,
                "{}: {:02x?}",
                p.profile,
                p.frame
            );
            assert!(p.frame.len() <= 1514, "{}: {} bytes", p.profile, p.frame.len());
        }
    }
    assert!(malformed > 100);
}

#[test]
fn profiles_carry_what_their_names_say() {
    let c = GenConfig {
        ipv6_share: 0.2,
        ..cfg("mix", 30_000)
    };
    let (vip, vip6) = (IpAddr::V4(c.vip), IpAddr::V6(c.vip6));
    for p in run(c).into_iter().filter(|p| p.profile != Profile::Malformed) {
        let v = view(&p.frame);
        assert!(v.dst == vip || v.dst == vip6, "{}: to {}", p.profile, v.dst);
        match p.profile {
            Profile::Legit => match (&v.tcp, &v.udp) {
                (Some(t), None) => assert_eq!(t.destination_port, 80),
                (None, Some((u, payload))) => {
                    assert_eq!(u.destination_port, 7777);
                    assert!(u.source_port >= 32768);
                    assert!(payload.starts_with(b"GAME"));
                }
                _ => panic!("legit neither TCP nor UDP"),
            },
            Profile::SynFlood => {
                let t = v.tcp.expect("tcp");
                assert!(t.syn && !t.ack && t.destination_port == 80);
                let opts = t.options.as_slice();
                // hping3: no options, window 512; Mirai: mss first.
                assert!((opts.is_empty() && t.window_size == 512) || opts.starts_with(&[2, 4, 5, 0xb4]));
            }
            Profile::AckFlood => assert!(v.tcp.expect("tcp").ack),
            Profile::RstFlood => assert!(v.tcp.expect("tcp").rst),
            Profile::UdpFlood => assert!(!v.udp.expect("udp").1.starts_with(b"GAME")),
            Profile::DnsReflection => {
                let (u, payload) = v.udp.expect("udp");
                assert_eq!(u.source_port, 53);
                assert!((480..=1472).contains(&payload.len()), "{}", payload.len());
                assert_eq!(payload[2] & 0x80, 0x80, "a response");
            }
            Profile::NtpReflection => {
                let (u, payload) = v.udp.expect("udp");
                assert_eq!((u.source_port, payload.len()), (123, 440));
                assert_eq!((payload[0] & 0x87, payload[3]), (0x87, 42), "mode 7 response, monlist");
            }
            Profile::MemcachedReflection => {
                let (u, payload) = v.udp.expect("udp");
                assert_eq!(u.source_port, 11211);
                assert!(payload.len() <= 1400);
                if payload[2..4] == [0, 0] {
                    assert!(payload[8..].starts_with(b"VALUE "));
                }
            }
            Profile::Frag => assert!(v.fragment),
            Profile::Malformed => {}
        }
        assert!(v.ttl > 0 || p.profile == Profile::Malformed);
    }
}

/// A flow's packets: (timestamp, TCP header, the rest), in time order.
type FlowPackets = Vec<(u64, etherparse::TcpHeader, View)>;

/// TCP packets of the legitimate profile by (src, sport).
fn legit_tcp_flows(pkts: &[GenPacket]) -> BTreeMap<(IpAddr, u16), FlowPackets> {
    let mut flows: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for p in pkts.iter().filter(|p| p.profile == Profile::Legit) {
        let v = view(&p.frame);
        if let Some(t) = v.tcp.clone() {
            flows.entry((v.src, t.source_port)).or_default().push((p.ts, t, v));
        }
    }
    flows
}

fn mss_of(t: &etherparse::TcpHeader) -> u16 {
    let o = t.options.as_slice();
    assert_eq!(o[0], 2, "MSS first");
    u16::from_be_bytes([o[2], o[3]])
}

fn secrets() -> CookieSecrets {
    CookieSecrets::new(CookieSecrets::derive_key(b"cluster secret"))
}

#[test]
fn challenge_ack_answers_carry_the_cookie() {
    let c = GenConfig {
        secrets: Some(secrets()),
        syn_auth: SynAuth::ChallengeAck,
        ipv6_share: 0.3,
        pps: 1000,
        ..cfg("legit", 20_000)
    };
    let pkts = run(c);
    let mut checked = 0;
    for ((src, sport), pkts) in legit_tcp_flows(&pkts) {
        let (syn_ts, syn, v) = &pkts[0];
        assert!(syn.syn, "a flow starts with its SYN");
        let Some(rst_at) = pkts.iter().position(|(_, t, _)| t.rst) else {
            continue;
        };
        let (rst_ts, rst, _) = &pkts[rst_at];
        assert!(!rst.ack, "RST without ACK (RFC 793 p. 36)");
        let tuple = Tuple {
            src,
            dst: v.dst,
            sport,
            dport: syn.destination_port,
        };
        let idx = cookie::mss_index(mss_of(syn));
        assert_eq!(
            cookie::check(&secrets(), &tuple, *syn_ts, rst.sequence_number),
            Some(idx)
        );
        assert_eq!(
            cookie::check(&secrets(), &tuple, *rst_ts, rst.sequence_number),
            Some(idx)
        );
        assert!((1_000_000..=50_000_000).contains(&(rst_ts - syn_ts)), "one RTT");
        if pkts.len() < rst_at + 3 {
            continue; // the capture ends before the retransmission
        }
        // Then the same SYN, 1 s after the first.
        let (re_ts, re, _) = &pkts[rst_at + 1];
        assert!(re.syn && re.sequence_number == syn.sequence_number);
        assert_eq!(*re_ts, syn_ts + SECOND);
        assert_eq!(mss_of(re), mss_of(syn));
        assert!(pkts[rst_at + 2].1.ack && pkts.last().unwrap().1.ack);
        checked += 1;
    }
    assert!(checked > 200, "{checked} challenged flows");
}

#[test]
fn cookie_reset_answers_and_reconnects() {
    let c = GenConfig {
        secrets: Some(secrets()),
        syn_auth: SynAuth::CookieReset,
        pps: 1000,
        ..cfg("legit", 20_000)
    };
    let pkts = run(c);
    let flows = legit_tcp_flows(&pkts);
    let end = pkts.last().unwrap().ts;
    let mut checked = 0;
    for ((src, sport), f) in &flows {
        let (syn_ts, syn, v) = &f[0];
        // A cookie-reset answer: the flow is exactly SYN and one bare ACK.
        if f.len() != 2 || !f[1].1.ack || f[1].1.psh {
            continue;
        }
        let (ack_ts, ack, _) = &f[1];
        if ack_ts + 300_000_000 > end {
            continue; // the capture ends before the reconnection (or the flow's data)
        }
        assert_eq!(ack.sequence_number, syn.sequence_number.wrapping_add(1));
        let tuple = Tuple {
            src: *src,
            dst: v.dst,
            sport: *sport,
            dport: 80,
        };
        let cookie_val = ack.acknowledgment_number.wrapping_sub(1);
        let idx = cookie::mss_index(mss_of(syn));
        assert_eq!(cookie::check(&secrets(), &tuple, *syn_ts, cookie_val), Some(idx));
        // The reconnection: same source, another port and ISN, 200 to 220 ms
        // later, a whole flow (other flows of the client may come between).
        let again = flows.iter().find(|((s, p), g)| {
            s == src && p != sport && (200_000_000..=220_000_000).contains(&(g[0].0 - ack_ts.min(&g[0].0)))
        });
        let (_, g) = again.expect("a reconnection");
        assert!(g[0].1.syn && g.len() >= 5 && g[0].1.sequence_number != syn.sequence_number);
        checked += 1;
    }
    assert!(checked > 200, "{checked} cookie-reset answers");
}

#[test]
fn without_secrets_syns_are_retransmitted_unanswered() {
    let pkts = run(GenConfig {
        secrets: None,
        ..cfg("legit", 5_000)
    });
    let mut web = 0;
    for (_, f) in legit_tcp_flows(&pkts) {
        let ts: Vec<u64> = f.iter().map(|x| x.0 - f[0].0).collect();
        assert!(f
            .iter()
            .all(|x| x.1.syn && x.1.sequence_number == f[0].1.sequence_number));
        assert!(
            ts.len() <= 3 && ts.iter().zip([0, SECOND, 3 * SECOND]).all(|(a, b)| *a == b),
            "{ts:?}"
        );
        web += 1;
    }
    assert!(web > 100);
    // With the service's SYN authentication off, flows go straight through.
    let pkts = run(GenConfig {
        syn_auth: SynAuth::Off,
        ..cfg("legit", 5_000)
    });
    assert!(legit_tcp_flows(&pkts).values().any(|f| f.len() >= 5 && f[1].1.ack));
}

#[test]
fn ipv6_share_is_respected_roughly() {
    for share in [0.0, 0.3, 1.0] {
        let c = GenConfig {
            ipv6_share: share,
            ..cfg("legit=1,syn-flood=1,ack-flood=1,udp-flood=1", 20_000)
        };
        let pkts = run(c);
        let v6 = pkts.iter().filter(|p| view(&p.frame).v6).count() as f64 / pkts.len() as f64;
        assert!((v6 - share).abs() < 0.05, "share {share}: got {v6}");
    }
}

#[test]
fn mix_ratios_are_packet_shares() {
    let pkts = run(cfg("legit=50,syn-flood=30,udp-flood=20", 20_000));
    let n = |p: Profile| pkts.iter().filter(|x| x.profile == p).count() as f64 / 20_000.0;
    assert!((n(Profile::Legit) - 0.5).abs() < 0.02, "{}", n(Profile::Legit));
    assert!((n(Profile::SynFlood) - 0.3).abs() < 0.02);
    assert!((n(Profile::UdpFlood) - 0.2).abs() < 0.02);
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = GenConfig::default();
    assert_eq!(c.vip.to_string(), "203.0.113.10");
    assert_eq!(c.vip6.to_string(), "2001:db8::10");
    assert_eq!(
        (c.tcp_port, c.udp_port, c.pps, c.count, c.seed),
        (80, 7777, 100_000, 100_000, 1)
    );
    assert_eq!(c.game_magic, b"GAME");
    assert_eq!(c.start, 1_767_225_600 * SECOND);
    for p in Profile::ALL {
        assert_eq!(Profile::from_name(p.name()), Some(p));
        assert_eq!(p.is_attack(), p != Profile::Legit);
    }
}

#[test]
fn attack_phase_switches_the_mix_and_back() {
    // Clean for 20,000 packets, a SYN flood for the next 5,000, clean again.
    let mut g = Generator::new(cfg("legit", 40_000));
    g.set_attack_phase(&parse_mix("syn-flood").unwrap(), 20_000, 5_000);
    let pkts: Vec<GenPacket> = g.collect();
    let floods: Vec<usize> = pkts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.profile == Profile::SynFlood)
        .map(|(i, _)| i)
        .collect();
    // Every event of the phase is a flood packet; the legitimate flows
    // under way keep sending theirs (retransmissions, requests) among them.
    assert!(floods.len() > 2_000, "{}", floods.len());
    assert!((20_000..20_100).contains(&floods[0]), "{}", floods[0]);
    let last = *floods.last().unwrap();
    assert!((24_900..25_100).contains(&last), "{last}");
    assert!(pkts[..20_000].iter().all(|p| p.profile == Profile::Legit));
    assert!(
        pkts[last + 1..].iter().all(|p| p.profile == Profile::Legit),
        "clean after the phase"
    );
    assert!(pkts.len() - last > 10_000);
}
