//! ns per packet of the challenge paths of `http-redirect` and `udp_auth`
//! through `classify`, and of the 307's writer alone:
//!
//! - `redirect/answer`: `l7::redirect::answer` on a curl-like GET, without
//!   and with a valid token (parse, token, the 536-byte response);
//! - `redirect/classify_get`: the client's first data segment through
//!   `classify` (cookie check, answer, the reply frame with checksums);
//! - `udp_auth/a2s_challenge`: an A2S_INFO from an unverified source
//!   answered with Moat's challenge;
//! - `udp_auth/first_packet`: a first-packet init packet from a new source
//!   each time (remembered, dropped): the random-source flood's cost.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use benches::secrets;
use classifier::classify::{classify, REPLY_ROOM};
use classifier::l7::redirect;
use classifier::policy::{Origin, PayloadRule, Policy, Service, SynAuth};
use classifier::state::{StateConfig, WorkerState};
use classifier::time::{MILLISECOND, SECOND};
use classifier::udpauth::{FirstPacket, Profile, UdpAuth};
use classifier::verdict::Verdict;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;

const NOW: u64 = 1_767_225_600 * SECOND;
const VIP: [u8; 4] = [203, 0, 113, 10];
const CLIENT: [u8; 4] = [198, 51, 100, 7];
const GET: &[u8] =
    b"GET /index.html?lang=en HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

fn policy() -> Policy {
    let mut p = Policy::new(secrets());
    let origin = p.add_origin(Origin {
        name: "web".into(),
        tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
        tunnel_dst: Ipv4Addr::new(192, 168, 77, 2),
        key: None,
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(VIP.into()), origin);
    s.tcp_ports.insert(80);
    s.udp_ports.insert(27015);
    s.udp_ports.insert(7777);
    s.syn_auth = SynAuth::HttpRedirect;
    s.udp_auth = vec![
        UdpAuth {
            port: 27015,
            profile: Profile::A2s,
        },
        UdpAuth {
            port: 7777,
            profile: Profile::FirstPacket(FirstPacket {
                rule: PayloadRule::new(7777, 0, b"\xde\xad", b"\xff\xff").expect("rule"),
                min: 200 * MILLISECOND,
                max: 3000 * MILLISECOND,
            }),
        },
    ];
    p.add_service(s).expect("service");
    p
}

fn state(p: &Policy) -> WorkerState {
    WorkerState::new(&StateConfig::default(), p, 1)
}

fn tcp(src: [u8; 4], seq: u32, ack: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, VIP, 64);
    let b = if syn {
        b.tcp(40000, 80, seq, 64240).syn()
    } else {
        b.tcp(40000, 80, seq, 64240).ack(ack).psh()
    };
    let mut f = Vec::new();
    b.write(&mut f, payload).expect("frame");
    f
}

fn udp(src: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, VIP, 64)
        .udp(27005, dport)
        .write(&mut f, payload)
        .expect("frame");
    f
}

fn bench_answer(c: &mut Criterion) {
    let s = secrets();
    let src = IpAddr::V4(CLIENT.into());
    let tok = redirect::token(&s, src, NOW);
    let with = format!("GET /index.html?lang=en&moat_token={tok:016x} HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    let mut out = [0u8; redirect::RESPONSE_LEN];
    let mut g = c.benchmark_group("redirect");
    g.throughput(Throughput::Elements(1));
    g.bench_function("answer_no_token", |b| {
        b.iter(|| redirect::answer(&s, src, NOW, black_box(GET), &mut out))
    });
    g.bench_function("answer_valid_token", |b| {
        b.iter(|| redirect::answer(&s, src, NOW, black_box(with.as_bytes()), &mut out))
    });
    let p = policy();
    let mut st = state(&p);
    let mut reply = [0u8; REPLY_ROOM];
    let Verdict::Reply { len } = classify(&mut st, &p, NOW, &tcp(CLIENT, 7, 0, true, b""), &mut reply) else {
        panic!("a SYN-ACK")
    };
    assert!(len >= 60);
    let cookie = u32::from_be_bytes(reply[38..42].try_into().expect("seq"));
    let get = tcp(CLIENT, 8, cookie.wrapping_add(1), false, GET);
    assert!(matches!(classify(&mut st, &p, NOW, &get, &mut reply), Verdict::Reply { len } if len > 536));
    g.bench_function("classify_get", |b| {
        b.iter(|| classify(&mut st, &p, NOW, black_box(&get), &mut reply))
    });
    g.finish();
}

fn bench_udp_auth(c: &mut Criterion) {
    let p = policy();
    let mut st = state(&p);
    let mut reply = [0u8; REPLY_ROOM];
    let mut g = c.benchmark_group("udp_auth");
    g.throughput(Throughput::Elements(1));
    let q = udp(CLIENT, 27015, b"\xff\xff\xff\xffTSource Engine Query\0");
    assert!(matches!(
        classify(&mut st, &p, NOW, &q, &mut reply),
        Verdict::Reply { .. }
    ));
    g.bench_function("a2s_challenge", |b| {
        b.iter(|| classify(&mut st, &p, NOW, black_box(&q), &mut reply))
    });
    // A new source per packet: 4096 frames, cycled.
    let frames: Vec<Vec<u8>> = (0..4096u32)
        .map(|i| udp((0x0a00_0000 + i).to_be_bytes(), 7777, b"\xde\xad hello"))
        .collect();
    let mut i = 0;
    let mut now = NOW;
    g.bench_function("first_packet", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            now += 1000;
            classify(&mut st, &p, now, black_box(&frames[i]), &mut reply)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_answer, bench_udp_auth);
criterion_main!(benches);
