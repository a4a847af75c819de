//! ns per call of first-segment inspection (classifier/src/l7) on realistic
//! inputs, so that the cost of turning it on is known: the request line and
//! Host of a ~600-byte browser request, a Chrome-shaped ~1.8 KB ClientHello
//! (parse alone and parse + JA4) and curl's 517-byte one, the two inserts
//! that reassemble a hello split at a 1460-byte MSS, and the A2S challenge.
//! Each iteration is one call (criterion prints time per call).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use classifier::l7::a2s;
use classifier::l7::http::{parse_request, starts_request};
use classifier::l7::ja4::{ja4, Transport};
use classifier::l7::reassembly::{Insert, Reassembly, ReassemblyConfig};
use classifier::l7::tls::{parse_client_hello, TlsParse, MAX_HELLO_LEN};
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../../classifier/tests/l7_support/mod.rs"]
mod l7_support;

use l7_support::{chrome_like_hello, unhex, BROWSER_REQUEST, CURL_SNI_HEX};

fn bench_http(c: &mut Criterion) {
    let mut g = c.benchmark_group("l7_http");
    g.bench_function("parse_request_browser", |b| {
        b.iter(|| black_box(parse_request(black_box(BROWSER_REQUEST))))
    });
    g.bench_function("starts_request", |b| {
        b.iter(|| black_box(starts_request(black_box(BROWSER_REQUEST))))
    });
    let junk = [0x5au8; 600];
    g.bench_function("parse_request_not_http", |b| {
        b.iter(|| black_box(parse_request(black_box(&junk))))
    });
    g.finish();
}

fn bench_tls(c: &mut Criterion) {
    let chrome = chrome_like_hello("www.example.com");
    let curl = unhex(CURL_SNI_HEX);
    let mut scratch = vec![0u8; MAX_HELLO_LEN];
    let mut g = c.benchmark_group("l7_tls");
    g.bench_function("parse_chrome_1.8k", |b| {
        b.iter(|| matches!(parse_client_hello(black_box(&chrome), &mut scratch), TlsParse::Hello(_)))
    });
    for (name, hello) in [("parse_ja4_chrome_1.8k", &chrome), ("parse_ja4_curl_517", &curl)] {
        g.bench_function(name, |b| {
            b.iter(|| match parse_client_hello(black_box(hello), &mut scratch) {
                TlsParse::Hello(h) => ja4(&h, Transport::Tcp).ok(),
                _ => None,
            })
        });
    }
    let half = &chrome[..chrome.len() / 2];
    g.bench_function("parse_incomplete_half", |b| {
        b.iter(|| {
            matches!(
                parse_client_hello(black_box(half), &mut scratch),
                TlsParse::Incomplete { .. }
            )
        })
    });
    g.finish();
}

fn bench_reassembly(c: &mut Criterion) {
    let chrome = chrome_like_hello("www.example.com");
    let (a, b2) = chrome.split_at(1460);
    let mut t: Reassembly<u32> = Reassembly::new(ReassemblyConfig::default()).unwrap();
    let mut key = 0u32;
    let mut g = c.benchmark_group("l7_reassembly");
    // Two segments of a new flow (the slot taken, 1.8 KB copied, the prefix
    // returned twice), then the flow removed: the whole table work of a
    // split hello. Keys rotate over 4x the slots, so the index sees churn.
    g.bench_function("split_hello_2_inserts_and_remove", |bch| {
        bch.iter(|| {
            key = (key + 1) % 8192;
            let first = matches!(t.insert(key, 1, 0, black_box(a)), Insert::Prefix(_));
            let second = matches!(t.insert(key, 2, a.len() as u32, black_box(b2)), Insert::Prefix(_));
            t.remove(&key);
            first && second
        })
    });
    g.finish();
}

fn bench_a2s(c: &mut Criterion) {
    let key = [7u8; 16];
    let src = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let now = 1_767_225_600_000_000_000;
    let ch = a2s::challenge(&key, src, 27005, now);
    let mut q = b"\xff\xff\xff\xffTSource Engine Query\0".to_vec();
    q.extend(ch.to_le_bytes());
    let mut g = c.benchmark_group("l7_a2s");
    g.bench_function("parse_query_info", |b| {
        b.iter(|| black_box(a2s::parse_query(black_box(&q))))
    });
    g.bench_function("challenge", |b| {
        b.iter(|| a2s::challenge(&key, black_box(src), 27005, now))
    });
    g.bench_function("verify_valid", |b| {
        b.iter(|| a2s::verify(&key, black_box(src), 27005, now, black_box(ch)))
    });
    g.bench_function("verify_forged", |b| {
        b.iter(|| a2s::verify(&key, black_box(src), 27005, now, black_box(ch ^ 1)))
    });
    g.finish();
}

criterion_group!(benches, bench_http, bench_tls, bench_reassembly, bench_a2s);
criterion_main!(benches);
