//! The generator's own rate on one core: `send_paced` (the loop of `moat
//! gen --iface`) into the memory backend's counting sink, at full speed,
//! so that only the generator and the copy into a port buffer are
//! measured, not a NIC or the kernel.
//!
//! ```sh
//! cargo run --release -p benches --example gen_rate -- [PACKETS] [RUNS] [PROFILE...]
//! ```
//!
//! Defaults: 2,000,000 packets, 3 runs, the profiles syn-flood, udp-flood,
//! legit and mix. Each run is a fresh generator (seed 1, the default
//! configuration); the figure kept is the median run. Prints Mpps, ns per
//! packet and the mean frame size per profile.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dataplane::gen::live::{send_paced, Limit, LiveStats, Pacer, DEFAULT_BURST};
use dataplane::gen::{default_mix, parse_mix, GenConfig, Generator};
use dataplane::port::memory::{MemoryQueues, Source, Templates};
use dataplane::port::PortId;

fn sink() -> MemoryQueues {
    let none = Templates {
        frames: Vec::new().into(),
        next: 0,
        spoof: None,
    };
    MemoryQueues::new(Source::Templates(none), 2 * DEFAULT_BURST, 0, 0)
}

/// One run: (seconds, packets, bytes).
fn run(profile: &str, packets: u64) -> (f64, u64, u64) {
    let mix = if profile == "mix" {
        default_mix()
    } else {
        parse_mix(profile).unwrap_or_else(|e| panic!("{e}"))
    };
    let mut g = Generator::new(GenConfig {
        mix,
        count: packets,
        pps: 1_000_000,
        ..GenConfig::default()
    });
    let mut q = sink();
    let (stop, stats) = (AtomicBool::new(false), LiveStats::default());
    let t = Instant::now();
    send_paced(
        &mut q,
        PortId::Outside,
        &mut g,
        &mut Pacer::new(None),
        Limit::NONE,
        &stop,
        &stats,
    )
    .expect("a memory sink never refuses");
    let secs = t.elapsed().as_secs_f64();
    let s = stats.totals();
    assert_eq!(s.sent, packets);
    (secs, s.sent, s.bytes)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let packets: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let mut profiles: Vec<String> = args.collect();
    if profiles.is_empty() {
        profiles = ["syn-flood", "udp-flood", "legit", "mix"].map(String::from).to_vec();
    }
    println!("{packets} packets per run, {runs} runs, median run shown");
    for p in &profiles {
        let mut all: Vec<(f64, u64, u64)> = (0..runs).map(|_| run(p, packets)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (secs, n, bytes) = all[all.len() / 2];
        let each: Vec<String> = all.iter().map(|r| format!("{:.3}", r.1 as f64 / r.0 / 1e6)).collect();
        println!(
            "{p:<22} {:>7.3} Mpps  {:>7.1} ns/packet  {:>6.0} bytes/frame  (runs: {} Mpps)",
            n as f64 / secs / 1e6,
            secs * 1e9 / n as f64,
            bytes as f64 / n as f64,
            each.join(", ")
        );
    }
}
