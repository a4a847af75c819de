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
//! configuration, events at 1,000,000 a second as `--pps max` spaces them);
//! the figure kept is the median run. Prints, per profile, the wall-clock
//! rate (Mpps) and the thread's on-CPU time per packet (from
//! `/proc/thread-self/schedstat`, which leaves out the time other
//! processes had the core: on a shared machine the steadier figure), and
//! the mean frame size.

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

/// Nanoseconds this thread has spent on a CPU (the first field of
/// `/proc/thread-self/schedstat`); `None` where the kernel does not say.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// One run: (wall seconds, on-CPU seconds, packets, bytes).
fn run(profile: &str, packets: u64) -> (f64, Option<f64>, u64, u64) {
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
    let cpu0 = on_cpu_ns();
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
    let cpu = on_cpu_ns().zip(cpu0).map(|(b, a)| (b - a) as f64 / 1e9);
    let s = stats.totals();
    assert_eq!(s.sent, packets);
    (secs, cpu, s.sent, s.bytes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
        let all: Vec<_> = (0..runs).map(|_| run(p, packets)).collect();
        let n = packets as f64;
        let mpps: Vec<f64> = all.iter().map(|r| n / r.0 / 1e6).collect();
        let cpu_ns: Vec<f64> = all.iter().filter_map(|r| r.1).map(|c| c * 1e9 / n).collect();
        let bytes = all[0].3 as f64 / n;
        let each: Vec<String> = mpps.iter().map(|m| format!("{m:.3}")).collect();
        let cpu = if cpu_ns.len() == all.len() {
            format!("{:>7.1} ns/packet on CPU", median(cpu_ns))
        } else {
            "on-CPU time unknown".to_string()
        };
        println!(
            "{p:<22} {:>7.3} Mpps wall  {cpu}  {bytes:>6.0} bytes/frame  (runs: {} Mpps)",
            median(mpps),
            each.join(", ")
        );
    }
}
