//! ns per packet of the clean TCP path through `classify` with first-segment
//! inspection on (the service has `l7_rules`) and off (the same service
//! without them), so that the cost of turning it on is known (issue 15):
//!
//! - `conn/connection_{off,on}`: one whole short connection per iteration,
//!   four packets (SYN, the handshake's ACK, a 78-byte `GET` request, FIN);
//!   with inspection on, the request is parsed and matched (it passes).
//! - `conn/data_{off,on}`: a data segment of an established, judged flow
//!   (a later request on a keep-alive connection: with `l7_rules` it is
//!   matched again).
//!
//! Throughput is in packets, so criterion prints packets/s; ns/packet is
//! its inverse.

use std::hint::black_box;
use std::net::Ipv4Addr;

use benches::secrets;
use classifier::classify::classify;
use classifier::l7::rules::{L7Action, L7Rule};
use classifier::policy::{Origin, Policy, PortSet, Service, SynAuth};
use classifier::state::{StateConfig, WorkerState};
use classifier::verdict::Verdict;
use classifier::wire::{checksum, tcp::flags};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const ISN: u32 = 1000;
const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench/1.0\r\n\r\n";

fn policy(inspect: bool) -> Policy {
    let mut p = Policy::new(secrets());
    p.add_origin(Origin {
        name: "o".into(),
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: None,
        mtu: 1476,
    });
    let mut s = Service::new("web", VIP.into(), 0);
    s.tcp_ports = PortSet::from_ports([80]);
    s.syn_auth = SynAuth::Off;
    if inspect {
        let mut deny = L7Rule::new(L7Action::Deny);
        deny.path_prefix = Some(b"/login".as_slice().into());
        let mut host = L7Rule::new(L7Action::Deny);
        host.host = Some(b"bad.example".as_slice().into());
        s.l7_rules = vec![deny, host];
    }
    p.add_service(s).expect("service");
    p
}

/// An Ethernet/IPv4/TCP frame from the client's `sport` to port 80.
fn segment(sport: u16, seq: u32, tcp_flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = (40 + payload.len()) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&CLIENT.octets());
    ip[16..20].copy_from_slice(&VIP.octets());
    let c = checksum::finish(checksum::data(ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&5000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = tcp_flags;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn bench_conn(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn");
    let sizes = StateConfig::default();
    // 4096 connections, each four packets, replayed: each iteration opens
    // and closes one.
    let conns: Vec<[Vec<u8>; 4]> = (0..4096u16)
        .map(|i| {
            let sport = 10_000 + i;
            [
                segment(sport, ISN, flags::SYN, b""),
                segment(sport, ISN + 1, flags::ACK, b""),
                segment(sport, ISN + 1, flags::ACK | flags::PSH, REQUEST),
                segment(sport, ISN + 1 + REQUEST.len() as u32, flags::FIN | flags::ACK, b""),
            ]
        })
        .collect();
    for inspect in [false, true] {
        let pol = policy(inspect);
        let mut st = WorkerState::new(&sizes, &pol, 1);
        let mut reply = [0u8; 256];
        let mut i = 0;
        let now = 1_000_000_000;
        g.throughput(Throughput::Elements(4));
        let name = if inspect { "connection_on" } else { "connection_off" };
        g.bench_function(name, |b| {
            b.iter(|| {
                for f in &conns[i % conns.len()] {
                    let v = classify(&mut st, &pol, now, black_box(f), &mut reply);
                    assert!(matches!(v, Verdict::Pass(_)), "{v:?}");
                }
                i += 1;
            })
        });
        // An established, judged flow's data segment (a keep-alive request).
        let mut st = WorkerState::new(&sizes, &pol, 1);
        let open = &conns[0];
        for f in &open[..3] {
            classify(&mut st, &pol, now, f, &mut reply);
        }
        let data = segment(10_000, ISN + 1 + REQUEST.len() as u32, flags::ACK | flags::PSH, REQUEST);
        g.throughput(Throughput::Elements(1));
        let name = if inspect { "data_on" } else { "data_off" };
        g.bench_function(name, |b| {
            b.iter(|| {
                let v = classify(&mut st, &pol, now, black_box(&data), &mut reply);
                assert!(matches!(v, Verdict::Pass(_)), "{v:?}");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_conn);
criterion_main!(benches);
