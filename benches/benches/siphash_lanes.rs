//! Issue 12's four-lane SipHash question, measured: can the SYN cookies of
//! a burst be MACed together, four at a time, for less than one at a time?
//!
//! Both sides compute SipHash-2-4 over the IPv4 cookie message (two 64-bit
//! words, 16 bytes: what `classifier::cookie` hashes for an IPv4 SYN).
//! `scalar` is the cookie's own word-wise SipHash (`cookie::sip24`), four
//! times; `lanes` keeps each of SipHash's four state words as four lanes
//! (`[u64; 4]`), which LLVM turns into SIMD: two SSE2 registers per state
//! word on the baseline x86-64 target Moat builds for, one AVX2 register
//! with `RUSTFLAGS="-C target-cpu=native"` on a CPU that has it. Before
//! timing, `main` checks that both give the same MACs as `siphasher` on random
//! messages. Run:
//!
//!   cargo bench -p benches --bench siphash_lanes
//!   RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native \
//!     cargo bench -p benches --bench siphash_lanes
use std::hash::Hasher;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const C: [u64; 4] = [
    0x736f_6d65_7073_6575,
    0x646f_7261_6e64_6f6d,
    0x6c79_6765_6e65_7261,
    0x7465_6462_7974_6573,
];

/// SipHash-2-4 of the 16-byte message `m0 ‖ m1` (little-endian words):
/// the cookie's own function, `classifier::cookie::sip24`.
#[inline(always)]
fn scalar(k0: u64, k1: u64, m0: u64, m1: u64) -> u64 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&k0.to_le_bytes());
    key[8..].copy_from_slice(&k1.to_le_bytes());
    classifier::cookie::sip24(&key, &[m0, m1], 16)
}

type L = [u64; 4];

#[inline(always)]
fn add(a: L, b: L) -> L {
    [0, 1, 2, 3].map(|i| a[i].wrapping_add(b[i]))
}
#[inline(always)]
fn xor(a: L, b: L) -> L {
    [0, 1, 2, 3].map(|i| a[i] ^ b[i])
}
#[inline(always)]
fn rotl(a: L, n: u32) -> L {
    a.map(|x| x.rotate_left(n))
}

/// Four SipHash-2-4 MACs at once, lane `i` over `m0[i] ‖ m1[i]`.
#[inline(always)]
fn lanes(k0: u64, k1: u64, m0: L, m1: L) -> L {
    let (mut v0, mut v1, mut v2, mut v3) = ([k0 ^ C[0]; 4], [k1 ^ C[1]; 4], [k0 ^ C[2]; 4], [k1 ^ C[3]; 4]);
    macro_rules! round {
        () => {
            v0 = add(v0, v1);
            v1 = xor(rotl(v1, 13), v0);
            v0 = rotl(v0, 32);
            v2 = add(v2, v3);
            v3 = xor(rotl(v3, 16), v2);
            v0 = add(v0, v3);
            v3 = xor(rotl(v3, 21), v0);
            v2 = add(v2, v1);
            v1 = xor(rotl(v1, 17), v2);
            v2 = rotl(v2, 32);
        };
    }
    for m in [m0, m1, [16 << 56; 4]] {
        v3 = xor(v3, m);
        round!();
        round!();
        v0 = xor(v0, m);
    }
    v2 = xor(v2, [0xff; 4]);
    round!();
    round!();
    round!();
    round!();
    xor(xor(v0, v1), xor(v2, v3))
}

/// A burst's worth of messages (deterministic xorshift).
fn messages(n: usize) -> Vec<(u64, u64)> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n).map(|_| (next(), next())).collect()
}

fn check(k0: u64, k1: u64, msgs: &[(u64, u64)]) {
    for c in msgs.chunks_exact(4) {
        let m0 = [c[0].0, c[1].0, c[2].0, c[3].0];
        let m1 = [c[0].1, c[1].1, c[2].1, c[3].1];
        let got = lanes(k0, k1, m0, m1);
        for (i, &(a, b)) in c.iter().enumerate() {
            let mut h = siphasher::sip::SipHasher24::new_with_keys(k0, k1);
            h.write(&a.to_le_bytes());
            h.write(&b.to_le_bytes());
            let want = h.finish();
            assert_eq!(scalar(k0, k1, a, b), want, "scalar SipHash-2-4");
            assert_eq!(got[i], want, "lane {i}");
        }
    }
}

fn bench(c: &mut Criterion) {
    let (k0, k1) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
    let msgs = messages(32);
    check(k0, k1, &msgs);
    let mut g = c.benchmark_group("siphash_lanes");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("scalar", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for &(m0, m1) in black_box(&msgs) {
                acc ^= scalar(k0, k1, m0, m1);
            }
            acc
        })
    });
    g.bench_function("lanes", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for ch in black_box(&msgs).chunks_exact(4) {
                let m0 = [ch[0].0, ch[1].0, ch[2].0, ch[3].0];
                let m1 = [ch[0].1, ch[1].1, ch[2].1, ch[3].1];
                let r = lanes(k0, k1, m0, m1);
                acc ^= r[0] ^ r[1] ^ r[2] ^ r[3];
            }
            acc
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
