//! The poll-mode runtime against a scripted backend: next hops resolved by
//! ARP (request sent, reply learned, forwarding starts), ARP and IPv6
//! neighbour solicitations answered on the inside port, IP on the inside
//! port refused, a policy swap seen by the very
//! next bursts, a clean stop with final counters, and the management
//! plane's mailbox (a source verified by a real challenge, looked up,
//! forgotten, flushed).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use classifier::build::GreParams;
use classifier::cookie::CookieSecrets;
use classifier::policy::{Origin, OwnAddr, Policy, Service, SynAuth};
use classifier::state::StateConfig;
use classifier::verdict::DropReason;
use dataplane::port::{Burst, Frame, HeapFrame, Pool, PortId, Queues};
use dataplane::runtime::{Idle, Neighbors, Runtime, WorkerSetup};

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const ORIGIN_MAC: [u8; 6] = [2, 0, 0, 0, 0x77, 2];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const IN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const ORIGIN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The inside port's IPv6 address, and the origin's link-local one.
const IN_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 1);
const ORIGIN_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

/// What the test feeds in and what the worker sent.
#[derive(Default)]
struct Wire {
    rx: [VecDeque<Vec<u8>>; 2],
    tx: Vec<(PortId, Vec<u8>)>,
}

type Shared = Arc<Mutex<Wire>>;

/// A backend whose ports are queues the test fills and reads (a lock per
/// burst is fine in a test backend).
struct Scripted {
    wire: Shared,
    pool: Pool,
}

impl Queues for Scripted {
    type Frame = HeapFrame;

    fn rx_burst(&mut self, port: PortId, out: &mut Burst<HeapFrame>, max: usize) -> usize {
        let mut w = self.wire.lock().unwrap();
        let mut n = 0;
        while n < max && !out.is_full() {
            let Some(bytes) = w.rx[port.index()].pop_front() else {
                break;
            };
            let mut f = self.pool.alloc().expect("pool");
            assert!(f.fill(&bytes));
            out.push(f);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, port: PortId, frames: &mut Burst<HeapFrame>) -> usize {
        let n = frames.len();
        let mut w = self.wire.lock().unwrap();
        for f in frames.drain(..) {
            w.tx.push((port, f.data().to_vec()));
            self.pool.free(f);
        }
        n
    }

    fn free(&mut self, f: HeapFrame) {
        self.pool.free(f);
    }

    fn alloc(&mut self) -> Option<HeapFrame> {
        self.pool.alloc()
    }
}

fn policy(udp_port: u16) -> Policy {
    let mut p = Policy::new(CookieSecrets::new([7; 16]));
    let o = p.add_origin(Origin {
        name: "web".into(),
        tunnel_src: IN_IP,
        tunnel_dst: ORIGIN_IP,
        key: Some(42),
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(VIP), o);
    s.udp_ports.insert(udp_port);
    s.syn_auth = SynAuth::ChallengeAck;
    p.add_service(s).unwrap();
    p.own_addrs = vec![
        OwnAddr {
            ip: IpAddr::V4(Ipv4Addr::new(10, 10, 0, 1)),
            mac: OUT_MAC,
        },
        OwnAddr {
            ip: IpAddr::V4(IN_IP),
            mac: IN_MAC,
        },
        OwnAddr {
            ip: IpAddr::V6(IN_IP6),
            mac: IN_MAC,
        },
    ];
    p
}

fn start(wire: &Shared, pol: Policy) -> Runtime {
    start_sampling(wire, pol, 0)
}

fn start_sampling(wire: &Shared, pol: Policy, sample_every: u32) -> Runtime {
    let setup = WorkerSetup {
        index: 0,
        workers: 1,
        burst: 32,
        idle: Idle {
            spins: 16,
            sleep: Duration::from_micros(100),
        },
        core: None,
        sizes: StateConfig {
            flows: 1024,
            verified: 1024,
            sources: 1024,
            reassembly: Default::default(),
            bans: 64,
        },
        icmp_pps: 100,
        gre: vec![GreParams {
            src_mac: IN_MAC,
            dst_mac: [0; 6],
            tunnel_src: IN_IP,
            tunnel_dst: ORIGIN_IP,
            key: Some(42),
            ttl: 64,
        }],
        next_hop: vec![0],
        inside_ip: IN_IP,
        inside_mac: IN_MAC,
        sample_every,
        two_stage: dataplane::runtime::TwoStage::Auto,
    };
    let q = Scripted {
        wire: Arc::clone(wire),
        pool: Pool::new(256),
    };
    let neighbors = Arc::new(Neighbors::new(&[(ORIGIN_IP, None)], true));
    Runtime::start(Arc::new(ArcSwap::from_pointee(pol)), neighbors, vec![(setup, q)]).unwrap()
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4([198, 51, 100, 7], VIP.octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, b"GAME hello").unwrap();
    v
}

/// A neighbour solicitation from the origin for `target` (RFC 4861 §4.3:
/// hop limit 255, to the solicited-node address, source link-layer option).
fn solicit(target: Ipv6Addr) -> Vec<u8> {
    let dst = classifier::build::solicited_node(target).octets();
    let b = etherparse::PacketBuilder::ethernet2(ORIGIN_MAC, [0x33, 0x33, dst[12], dst[13], dst[14], dst[15]])
        .ipv6(ORIGIN_LL.octets(), dst, 255)
        .icmpv6_raw(135, 0, [0; 4]);
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&ORIGIN_MAC);
    let mut f = Vec::new();
    b.write(&mut f, &body).unwrap();
    f
}

fn arp(op: u16, smac: [u8; 6], sip: Ipv4Addr, tip: Ipv4Addr, dst: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op as u8]);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&sip.octets());
    f.extend_from_slice(&if op == 2 { IN_MAC } else { [0; 6] });
    f.extend_from_slice(&tip.octets());
    f.resize(60, 0);
    f
}

/// Waits (at most 5 s) until `cond` holds on the wire.
fn wait_for(wire: &Shared, what: &str, cond: impl Fn(&Wire) -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if cond(&wire.lock().unwrap()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

fn push(wire: &Shared, port: PortId, f: Vec<u8>) {
    wire.lock().unwrap().rx[port.index()].push_back(f);
}

fn is_arp_request_for(f: &[u8], target: Ipv4Addr) -> bool {
    f.len() >= 42 && f[..6] == [0xff; 6] && f[12..14] == [8, 6] && f[21] == 1 && f[38..42] == target.octets()
}

#[test]
fn next_hop_resolved_by_arp_then_forwarding_starts() {
    let wire: Shared = Arc::default();
    let mut rt = start(&wire, policy(7777));

    // Unresolved: the worker asks, and clean packets are dropped as
    // `no_next_hop` rather than sent to a wrong MAC.
    wait_for(&wire, "an ARP request", |w| {
        w.tx.iter()
            .any(|(p, f)| *p == PortId::Inside && is_arp_request_for(f, ORIGIN_IP))
    });
    {
        let w = wire.lock().unwrap();
        let (_, req) = w.tx.iter().find(|(_, f)| is_arp_request_for(f, ORIGIN_IP)).unwrap();
        assert_eq!(&req[6..12], &IN_MAC, "sent from the inside MAC");
        assert_eq!(&req[28..32], &IN_IP.octets(), "sender protocol address");
    }
    push(&wire, PortId::Outside, udp(5000, 7777));
    wait_for(&wire, "the no_next_hop drop", |_| {
        rt.snapshot(1).0.dropped[DropReason::NoNextHop as usize] == 1
    });

    // The origin answers; the next datagram leaves GRE-encapsulated to its MAC.
    push(&wire, PortId::Inside, arp(2, ORIGIN_MAC, ORIGIN_IP, IN_IP, IN_MAC));
    wait_for(&wire, "the neighbour to be learned", |_| {
        rt.neighbors.lookup(0, dataplane::runtime::wall_clock()).0 == Some(ORIGIN_MAC)
    });
    std::thread::sleep(Duration::from_millis(10));
    push(&wire, PortId::Outside, udp(5001, 7777));
    wait_for(&wire, "a GRE frame", |w| {
        w.tx.iter()
            .any(|(p, f)| *p == PortId::Inside && f[12..14] == [8, 0] && f[23] == 47)
    });
    let gre = wire
        .lock()
        .unwrap()
        .tx
        .iter()
        .find(|(p, f)| *p == PortId::Inside && f[12..14] == [8, 0])
        .unwrap()
        .1
        .clone();
    assert_eq!(&gre[..6], &ORIGIN_MAC);
    assert_eq!(&gre[6..12], &IN_MAC);
    assert_eq!(&gre[30..34], &ORIGIN_IP.octets());
    // GRE with key 42, then the client's datagram, untouched.
    assert_eq!(&gre[34..42], &[0x20, 0, 0x08, 0, 0, 0, 0, 42]);
    assert_eq!(&gre[42..], &udp(5001, 7777)[14..]);

    // The origin asks for our tunnel address: answered on the inside port.
    push(&wire, PortId::Inside, arp(1, ORIGIN_MAC, ORIGIN_IP, IN_IP, [0xff; 6]));
    wait_for(&wire, "our ARP reply", |w| {
        w.tx.iter()
            .any(|(p, f)| *p == PortId::Inside && f[12..14] == [8, 6] && f[21] == 2 && f[..6] == ORIGIN_MAC)
    });
    // And for our IPv6 address: a neighbour advertisement back to the origin.
    push(&wire, PortId::Inside, solicit(IN_IP6));
    wait_for(&wire, "our neighbour advertisement", |w| {
        w.tx.iter().any(|(p, f)| {
            *p == PortId::Inside
                && f[12..14] == [0x86, 0xdd]
                && f[54] == 136
                && f[..6] == ORIGIN_MAC
                && f[22..38] == IN_IP6.octets()
        })
    });
    // IP traffic on the inside port is refused and counted.
    let mut stray = udp(5002, 7777);
    stray[..6].copy_from_slice(&IN_MAC);
    push(&wire, PortId::Inside, stray);
    wait_for(&wire, "the wrong_port drop", |_| {
        rt.snapshot(1).0.dropped[DropReason::WrongPort as usize] == 1
    });
    rt.stop().unwrap();
    let (t, per) = rt.snapshot(1);
    assert_eq!(per.len(), 1);
    assert_eq!(t.passed, vec![1]);
    assert!(t.arp_requests >= 1);
    assert_eq!(t.port(PortId::Inside).rx_packets, 4);
}

#[test]
fn policy_swap_changes_the_verdict_of_the_next_bursts_and_stop_is_clean() {
    let wire: Shared = Arc::default();
    let mut rt = start(&wire, policy(7777));
    push(&wire, PortId::Inside, arp(2, ORIGIN_MAC, ORIGIN_IP, IN_IP, IN_MAC));
    wait_for(&wire, "the neighbour", |_| {
        rt.neighbors.lookup(0, dataplane::runtime::wall_clock()).0.is_some()
    });
    std::thread::sleep(Duration::from_millis(10));
    push(&wire, PortId::Outside, udp(6000, 7777));
    wait_for(&wire, "a pass", |_| rt.snapshot(1).0.passed == vec![1]);

    // The operator moves the game to port 7778: 7777 is refused from the
    // next burst on, 7778 passes. No restart, nothing lost.
    rt.policy.store(Arc::new(policy(7778)));
    std::thread::sleep(Duration::from_millis(5));
    for i in 0..50 {
        push(&wire, PortId::Outside, udp(6001 + i, 7777));
        push(&wire, PortId::Outside, udp(6101 + i, 7778));
    }
    wait_for(&wire, "100 more packets", |_| rt.snapshot(1).0.rx_packets == 101 + 1);
    let (t, _) = rt.snapshot(1);
    assert_eq!(t.dropped[DropReason::PortNotAllowed as usize], 50, "{t:?}");
    assert_eq!(t.passed, vec![51]);

    // Stop: the worker ends, and what it counted is all there.
    push(&wire, PortId::Outside, udp(6200, 7778));
    rt.stop().unwrap();
    let (t, _) = rt.snapshot(1);
    assert_eq!(t.rx_packets, t.passed_total() + t.dropped_total() + t.replies);
}

/// A TCP segment from `src` to the VIP's port 80 with `flags` applied by `f`.
fn tcp(
    src: Ipv4Addr,
    seq: u32,
    f: impl FnOnce(
        etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader>,
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(src.octets(), VIP.octets(), 64)
        .tcp(40000, 80, seq, 64240);
    let b = f(b)
        .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
        .unwrap();
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

/// The acknowledgement number of the first SYN-ACK sent out the outside port.
fn challenge_ack(w: &Wire) -> Option<u32> {
    w.tx.iter().filter(|(p, _)| *p == PortId::Outside).find_map(|(_, f)| {
        let s = etherparse::SlicedPacket::from_ethernet(f).ok()?;
        match s.transport? {
            etherparse::TransportSlice::Tcp(t) if t.syn() && t.ack() => Some(t.acknowledgment_number()),
            _ => None,
        }
    })
}

#[test]
fn the_management_plane_asks_a_worker_about_its_verified_sources() {
    use dataplane::runtime::mailbox::Command;
    let wire: Shared = Arc::default();
    let mut p = policy(7777);
    p.services[0].tcp_ports.insert(80);
    let mut rt = start(&wire, p);
    let client = Ipv4Addr::new(198, 51, 100, 9);
    let ip = IpAddr::V4(client);
    let t = Duration::from_secs(2);
    assert_eq!(rt.mail.ask(Command::IsVerified(ip), t), vec![Some(false)]);

    // challenge-ack: the SYN draws a SYN-ACK whose acknowledgement number is
    // the cookie; the client's RST carrying it as sequence number verifies it.
    push(&wire, PortId::Outside, tcp(client, 1000, |b| b.syn()));
    wait_for(&wire, "the challenge", |w| challenge_ack(w).is_some());
    let cookie = challenge_ack(&wire.lock().unwrap()).unwrap();
    push(&wire, PortId::Outside, tcp(client, cookie, |b| b.rst()));
    let t0 = Instant::now();
    while rt.mail.ask(Command::IsVerified(ip), t) != vec![Some(true)] {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the source never became verified"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(rt.mail.ask(Command::Forget(ip), t), vec![Some(true)]);
    assert_eq!(rt.mail.ask(Command::IsVerified(ip), t), vec![Some(false)]);
    assert_eq!(rt.mail.ask(Command::FlushVerified, t), vec![Some(true)]);

    // A stopped worker answers nothing: the asker is told so, in bounded time.
    rt.stop().unwrap();
    let t0 = Instant::now();
    assert_eq!(
        rt.mail.ask(Command::IsVerified(ip), Duration::from_millis(50)),
        vec![None]
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_verified_answer_lands_in_the_outbox_and_an_inbox_entry_in_the_table() {
    use dataplane::runtime::mailbox::{Command, VerifiedEntry};
    let wire: Shared = Arc::default();
    let mut p = policy(7777);
    p.services[0].tcp_ports.insert(80);
    let ttl = p.timeouts.verified_ttl;
    let mut rt = start(&wire, p);
    let t = Duration::from_secs(2);
    let mut taken = Vec::new();
    assert_eq!(rt.mail.take_verified(16, |e| taken.push(e)), 0);

    // A real challenge answered (challenge-ack): the worker offers the
    // source to the bus, with the policy's TTL.
    let client = Ipv4Addr::new(198, 51, 100, 10);
    push(&wire, PortId::Outside, tcp(client, 1000, |b| b.syn()));
    wait_for(&wire, "the challenge", |w| challenge_ack(w).is_some());
    let cookie = challenge_ack(&wire.lock().unwrap()).unwrap();
    push(&wire, PortId::Outside, tcp(client, cookie, |b| b.rst()));
    let t0 = Instant::now();
    while taken.is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(5), "nothing reached the outbox");
        rt.mail.take_verified(16, |e| taken.push(e));
        std::thread::sleep(Duration::from_millis(2));
    }
    let ip = IpAddr::V4(client);
    assert_eq!(taken, vec![VerifiedEntry { ip, ttl }]);

    // A source another node verified: into the inbox, then the worker's
    // table, and not offered back to the bus.
    let peer = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77));
    assert_eq!(rt.mail.ask(Command::IsVerified(peer), t), vec![Some(false)]);
    assert_eq!(rt.mail.insert_verified(VerifiedEntry { ip: peer, ttl }), 0);
    let t0 = Instant::now();
    while rt.mail.ask(Command::IsVerified(peer), t) != vec![Some(true)] {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the inbox entry never reached the table"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Its ACK of an unknown flow now passes (one-direction flow check).
    let before = rt.snapshot(1).0;
    push(
        &wire,
        PortId::Outside,
        tcp(Ipv4Addr::new(203, 0, 113, 77), 5, |b| b.ack(9)),
    );
    wait_for(&wire, "the ACK counted", |_| {
        rt.snapshot(1).0.rx_packets > before.rx_packets
    });
    let after = rt.snapshot(1).0;
    let no_flow = DropReason::TcpNoFlow as usize;
    assert_eq!(
        after.dropped[no_flow], before.dropped[no_flow],
        "the ACK was not refused"
    );
    assert_eq!(rt.mail.take_verified(16, |e| taken.push(e)), 0, "not shared again");
    assert_eq!(rt.mail.verified_out_dropped(), 0);
    rt.stop().unwrap();
}

/// Sampling through the runtime: one outside packet in `sample_every` is
/// summarised into the worker's queue, which mgmt takes and drains; the
/// per-service counters count every packet addressed to the service.
#[test]
fn samples_and_per_service_counters() {
    let wire: Shared = Arc::default();
    let mut rt = start_sampling(&wire, policy(7777), 2);
    let mut queues = rt.take_samples();
    assert_eq!(queues.len(), 1);
    assert!(rt.take_samples().is_empty(), "taken once");
    for i in 0..10 {
        // Half to an allowed port, half to one that is not.
        push(
            &wire,
            PortId::Outside,
            udp(40000 + i, if i % 2 == 0 { 7777 } else { 9999 }),
        );
    }
    let t = Instant::now();
    while rt.snapshot(1).0.services[0].packets < 10 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.stop().unwrap();
    let (total, _) = rt.snapshot(1);
    let web = total.services[0];
    assert_eq!((web.packets, web.udp, web.tcp), (10, 10, 0));
    assert!(web.dropped >= 5, "{web:?}");
    assert_eq!((total.samples, total.samples_dropped), (5, 0));
    let mut got = Vec::new();
    dataplane::runtime::sample::drain(&mut queues[0], |s| got.push(s));
    assert_eq!(got.len(), 5);
    for s in &got {
        assert_eq!(s.service, Some(0));
        assert_eq!(s.proto, 17);
        assert_eq!(s.src, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
        // Packets 2, 4, ... of the run: the odd ones of the loop (port 9999).
        assert_eq!(s.dst_port, 9999);
        assert_eq!(
            s.verdict,
            dataplane::runtime::SampleVerdict::Drop(DropReason::PortNotAllowed)
        );
        assert!(matches!(s.fp, dataplane::runtime::SampleFp::Udp(u) if u.sport >= 40000));
    }
}

/// First-segment inspection through the runtime: the sample of the packet
/// that had a flow's first bytes judged carries what they said (the HTTP
/// Host + path), for detection's heavy hitters; other samples carry
/// nothing.
#[test]
fn a_sample_carries_what_the_first_bytes_said() {
    let mut pol = Policy::new(CookieSecrets::new([7; 16]));
    let o = pol.add_origin(Origin {
        name: "web".into(),
        tunnel_src: IN_IP,
        tunnel_dst: ORIGIN_IP,
        key: Some(42),
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(VIP), o);
    s.tcp_ports.insert(80);
    s.syn_auth = SynAuth::Off;
    let mut rule = classifier::l7::rules::L7Rule::new(classifier::l7::rules::L7Action::Deny);
    rule.path_prefix = Some(b"/never".as_slice().into());
    s.l7_rules.push(rule);
    pol.add_service(s).unwrap();
    let wire: Shared = Arc::default();
    let mut rt = start_sampling(&wire, pol, 1);
    let mut queues = rt.take_samples();
    let client = Ipv4Addr::new(198, 51, 100, 9);
    push(&wire, PortId::Outside, tcp(client, 1000, |b| b.syn()));
    let mut req = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(client.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 1001, 64240)
        .ack(1)
        .psh();
    let body = b"GET /home HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
    let mut frame = Vec::new();
    req = req.options(&[]).unwrap();
    req.write(&mut frame, body).unwrap();
    push(&wire, PortId::Outside, frame);
    let t = Instant::now();
    while rt.snapshot(1).0.services[0].packets < 2 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.stop().unwrap();
    let mut got = Vec::new();
    dataplane::runtime::sample::drain(&mut queues[0], |s| got.push(s));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].l7, dataplane::runtime::L7Fp::default(), "the SYN judged nothing");
    let hp = got[1].l7.host_path.expect("the request's Host + path");
    assert_eq!(hp.text(), "www.example.com/home");
    assert_eq!(got[1].l7.ja4, None);
    // Judged and passed by the classifier (the origin's next hop is not
    // resolved in this test, so the pipeline counts it as no_next_hop).
    assert_eq!(
        got[1].verdict,
        dataplane::runtime::SampleVerdict::Drop(DropReason::NoNextHop)
    );
}
