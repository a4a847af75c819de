//! ns/packet of the classifier's pieces and of `classify` on each traffic
//! profile. Each benchmark runs a burst-sized batch per iteration and reports
//! throughput in elements (packets), so criterion prints packets/s; ns/packet
//! is its inverse.

use std::hint::black_box;

use benches::{frames, policy, secrets};
use classifier::classify::classify;
use classifier::cookie::{self, Tuple};
use classifier::fingerprint::tcp_fingerprint;
use classifier::parse::parse;
use classifier::state::{StateConfig, WorkerState};
use classifier::synauth::flags;
use classifier::verdict::Verdict;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::gen::Profile;

const BATCH: usize = 1024;

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for profile in [Profile::SynFlood, Profile::UdpFlood, Profile::Legit] {
        let fr = frames(profile, BATCH as u64, 1);
        g.throughput(Throughput::Elements(fr.len() as u64));
        g.bench_function(profile.name(), |b| {
            b.iter(|| {
                for (_, f) in &fr {
                    let _ = black_box(parse(black_box(f)));
                }
            })
        });
    }
    g.finish();
}

fn bench_cookie(c: &mut Criterion) {
    let s = secrets();
    let t = Tuple {
        src: "198.51.100.7".parse().unwrap(),
        dst: "203.0.113.10".parse().unwrap(),
        sport: 40000,
        dport: 80,
    };
    let now = 1_767_225_600_000_000_000;
    let mut g = c.benchmark_group("cookie");
    g.throughput(Throughput::Elements(1));
    g.bench_function("make", |b| {
        b.iter(|| cookie::make(black_box(&s), black_box(&t), now, 7))
    });
    let ck = cookie::make(&s, &t, now, 7);
    g.bench_function("check_valid", |b| {
        b.iter(|| cookie::check(black_box(&s), black_box(&t), now, black_box(ck)))
    });
    g.bench_function("check_invalid", |b| {
        b.iter(|| cookie::check(black_box(&s), black_box(&t), now, black_box(ck ^ 0x100)))
    });
    g.finish();
}

fn bench_fingerprint(c: &mut Criterion) {
    let fr: Vec<_> = frames(Profile::SynFlood, BATCH as u64, 2)
        .into_iter()
        .filter_map(|(_, f)| parse(&f).ok().map(|p| (p, f)))
        .collect();
    let mut g = c.benchmark_group("fingerprint");
    g.throughput(Throughput::Elements(fr.len() as u64));
    g.bench_function("tcp_syn", |b| {
        b.iter(|| {
            for (p, f) in &fr {
                black_box(tcp_fingerprint(f, p));
            }
        })
    });
    g.finish();
}

fn bench_classify_profiles(c: &mut Criterion) {
    let pol = policy();
    let mut g = c.benchmark_group("classify");
    for profile in Profile::ALL.iter().copied().filter(|p| p.is_attack()) {
        let fr = frames(profile, BATCH as u64, 3);
        let now = fr.last().map_or(0, |f| f.0);
        g.throughput(Throughput::Elements(fr.len() as u64));
        // One worker state for the whole run, as a worker has: attack
        // packets leave no state behind (challenges and drops insert nothing),
        // so every iteration sees the same tables.
        let mut st = WorkerState::new(&StateConfig::default(), &pol, 1);
        let mut reply = [0u8; 128];
        g.bench_function(profile.name(), |b| {
            b.iter(|| {
                for (_, f) in &fr {
                    black_box(classify(&mut st, &pol, now, f, &mut reply));
                }
            })
        });
    }
    g.finish();
}

/// Legitimate traffic on established flows: the state is warmed with the
/// generator's legitimate clients (challenge answers included), then only the
/// segments that pass on an existing flow (ACK/PSH data, no SYN/FIN/RST) are
/// measured, over and over on the same warm state.
fn bench_classify_established(c: &mut Criterion) {
    let pol = policy();
    let all = frames(Profile::Legit, 20_000, 4);
    let mut st = WorkerState::new(&StateConfig::default(), &pol, 1);
    let mut reply = [0u8; 128];
    let mut established = Vec::new();
    for (ts, f) in &all {
        let Ok(p) = parse(f) else { continue };
        let tcp_flags = match p.l4 {
            classifier::parse::L4::Tcp(t) => t.flags,
            _ => continue,
        };
        if tcp_flags & flags::FIN != 0 {
            continue; // keep the flows open for the measurement
        }
        let v = classify(&mut st, &pol, *ts, f, &mut reply);
        if matches!(v, Verdict::Pass(_)) && tcp_flags & flags::SYN == 0 {
            established.push(f.clone());
        }
    }
    assert!(
        established.len() > 1000,
        "only {} established segments",
        established.len()
    );
    established.truncate(BATCH * 4);
    let now = all.last().map_or(0, |f| f.0);
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(established.len() as u64));
    g.bench_function("legit-established", |b| {
        b.iter(|| {
            for f in &established {
                let v = classify(&mut st, &pol, now, f, &mut reply);
                debug_assert!(matches!(v, Verdict::Pass(_)));
                black_box(v);
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_parse,
    bench_cookie,
    bench_fingerprint,
    bench_classify_profiles,
    bench_classify_established
);
criterion_main!(benches);
