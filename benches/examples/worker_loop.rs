//! The worker loop of `moat bench --workload W --packets N` without the
//! management plane: one worker on the memory backend replaying the same
//! template frames (spoofed sources for the floods), with the bench node's
//! policy (one web service on 203.0.113.10, `challenge-ack` for the floods
//! and off for clean traffic, per-source limits on, a GRE key), until it has
//! received N packets. It builds from `classifier` and `dataplane` alone, so
//! that the callgrind guard (`benches/callgrind-guard.sh`) needs no release
//! build of `mgmt`:
//!
//! ```sh
//! cargo build --release -p benches --example worker_loop
//! valgrind --tool=callgrind target/release/examples/worker_loop ack-flood 100000
//! ```
//!
//! Prints the counters so that a run can be checked (every packet on the
//! workload's path).

use core::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use classifier::build::GreParams;
use classifier::policy::SynAuth;
use classifier::state::StateConfig;
use dataplane::gen::bench::{templates, Workload};
use dataplane::port::memory::{MemoryQueues, Source, Templates};
use dataplane::runtime::{Idle, Neighbors, Runtime, WorkerSetup};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const NEXT_HOP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "ack-flood".into());
    let packets: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let w = Workload::from_name(&name).unwrap_or_else(|| panic!("unknown workload {name}"));

    let mut pol = benches::policy_one(if w == Workload::Clean {
        SynAuth::Off
    } else {
        SynAuth::ChallengeAck
    });
    let limits = &mut pol.services[0].limits;
    limits.src_pps = 1_000_000;
    limits.src_syn_pps = 100_000;
    let policy = Arc::new(ArcSwap::from_pointee(pol));

    let frames: Arc<[Vec<u8>]> = templates(w, 4096, VIP, ([0x02, 0, 0, 0, 0, 0xfe], [0x02, 0, 0, 0, 0, 1]), 7).into();
    let t = Templates {
        frames,
        next: 0,
        spoof: w.spoofed().then_some(0x5eed),
    };
    let q = MemoryQueues::new(Source::Templates(t), 256, 0, packets);
    let mac = [0x02, 0, 0, 0, 0x01, 0x02];
    let setup = WorkerSetup {
        index: 0,
        workers: 1,
        burst: 32,
        idle: Idle {
            spins: 256,
            sleep: Duration::ZERO,
        },
        core: None,
        sizes: StateConfig::default(),
        icmp_pps: 100,
        gre: vec![GreParams {
            src_mac: [0x02, 0, 0, 0, 0x01, 0x01],
            dst_mac: mac,
            tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
            tunnel_dst: NEXT_HOP,
            key: Some(42),
            ttl: 64,
        }],
        next_hop: vec![0],
        inside_ip: Ipv4Addr::new(192, 168, 77, 1),
        inside_mac: [0x02, 0, 0, 0, 0x01, 0x01],
        sample_every: 64,
        two_stage: dataplane::runtime::TwoStage::On,
    };
    let neighbors = Arc::new(Neighbors::new(&[(NEXT_HOP, Some(mac))], false));
    let mut rt = Runtime::start(policy, neighbors, vec![(setup, q)]).expect("worker starts");
    let mut samples = rt.take_samples();
    while !rt.finished() {
        std::thread::sleep(Duration::from_millis(1));
        for s in &mut samples {
            dataplane::runtime::sample::drain(s, drop);
        }
    }
    rt.stop().expect("worker stops");
    let (s, _) = rt.snapshot(1);
    println!(
        "{name}: {} packets: {} passed, {} replies, {} dropped",
        s.rx_packets,
        s.passed_total(),
        s.replies,
        s.dropped_total()
    );
}
