//! The instructions of one verified-source probe that misses (what every
//! unverified SYN and every no-flow segment of a flood pays to learn that
//! its source is not verified), with the table at a given fill, counted by
//! callgrind:
//!
//! ```sh
//! cargo build --release -p benches --example verified_probe
//! b=target/release/examples/verified_probe
//! valgrind --tool=callgrind $b probe 32768 100000   # then 200000: the difference / 100000
//! valgrind --tool=callgrind $b hash 32768 100000    # the same loop without the probe
//! ```
//!
//! Both modes fill a 65,536-entry table with `FILL` random sources first,
//! then draw `N` other random sources and hash each (the source hash, which
//! stage one computes once for the verified sources and the per-source
//! buckets). `probe` also looks each one up. The difference of the two
//! modes' per-packet counts is the probe alone. README, "Benchmarks"
//! (the second round of issue 12) has the figures.

use core::hint::black_box;
use core::net::{IpAddr, Ipv4Addr};

use classifier::state::table::AddrKey;
use classifier::state::VerifiedTable;

fn main() {
    let mut args = std::env::args().skip(1);
    let probe = match args.next().as_deref() {
        Some("probe") => true,
        Some("hash") => false,
        other => panic!("mode {other:?}: probe or hash"),
    };
    let fill: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(32_768);
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut t = VerifiedTable::with_capacity(65_536);
    // xorshift32; the filled sources are odd, the probed ones even, so
    // every probe misses.
    let mut x: u32 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..fill {
        t.verify(IpAddr::V4(Ipv4Addr::from(next() | 1)), 0, u64::MAX / 2);
    }
    let mut hits = 0u32;
    for _ in 0..n {
        let key = AddrKey::new(IpAddr::V4(Ipv4Addr::from(next() & !1)));
        let hash = black_box(t.hash(&key));
        if probe && t.is_verified_hashed(hash, key, 1) {
            hits += 1;
        }
    }
    println!("{} sources stored, {n} probed, {hits} verified", t.len());
}
