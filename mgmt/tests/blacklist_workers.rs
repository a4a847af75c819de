//! The auto-blacklist end to end inside one process: two real workers on
//! scripted ports and the management side's `moat-blacklist` thread. A
//! verified source that keeps breaking `src_pps` on worker 0 is counted,
//! banned on both workers (`blacklisted` drops on each, another source
//! unaffected), and released by itself after `ban_secs` (1 s here). All
//! waits are bounded.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use classifier::build::GreParams;
use classifier::cookie::CookieSecrets;
use classifier::policy::{BanRule, Origin, Policy, Service, SynAuth};
use classifier::state::StateConfig;
use classifier::time::SECOND;
use classifier::verdict::DropReason;
use dataplane::port::{Burst, HeapFrame, Pool, PortId, Queues};
use dataplane::runtime::mailbox::Command;
use dataplane::runtime::{Idle, Neighbors, Runtime, WorkerSetup};
use mgmt::blacklist::{now_ms, Blacklist};

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const ORIGIN_MAC: [u8; 6] = [2, 0, 0, 0, 0x77, 2];
const IN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const ORIGIN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);

type Wire = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// One worker's ports: the outside port reads what the test queues, both
/// ports' transmissions are discarded.
struct Scripted {
    rx: Wire,
    pool: Pool,
}

impl Queues for Scripted {
    type Frame = HeapFrame;

    fn rx_burst(&mut self, port: PortId, out: &mut Burst<HeapFrame>, max: usize) -> usize {
        if port != PortId::Outside {
            return 0;
        }
        let mut w = self.rx.lock().unwrap();
        let mut n = 0;
        while n < max && !out.is_full() {
            let Some(bytes) = w.pop_front() else { break };
            let mut f = self.pool.alloc().expect("pool");
            assert!(f.fill(&bytes));
            out.push(f);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, _: PortId, frames: &mut Burst<HeapFrame>) -> usize {
        let n = frames.len();
        for f in frames.drain(..) {
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

fn policy() -> Policy {
    let mut p = Policy::new(CookieSecrets::new([7; 16]));
    let o = p.add_origin(Origin {
        name: "web".into(),
        tunnel_src: IN_IP,
        tunnel_dst: ORIGIN_IP,
        key: None,
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(VIP), o);
    s.tcp_ports.insert(80);
    s.syn_auth = SynAuth::ChallengeAck;
    s.limits.src_pps = 5;
    s.blacklist = Some(BanRule {
        violations: 3,
        window: 10 * SECOND,
        ban: SECOND,
    });
    p.add_service(s).unwrap();
    p
}

fn setup(index: usize) -> WorkerSetup {
    WorkerSetup {
        index,
        workers: 2,
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
            bans: 64,
            reassembly: Default::default(),
        },
        icmp_pps: 0,
        gre: vec![GreParams {
            src_mac: IN_MAC,
            dst_mac: [0; 6],
            tunnel_src: IN_IP,
            tunnel_dst: ORIGIN_IP,
            key: None,
            ttl: 64,
        }],
        next_hop: vec![0],
        inside_ip: IN_IP,
        inside_mac: IN_MAC,
        sample_every: 0,
        two_stage: dataplane::runtime::TwoStage::Auto,
    }
}

/// A TCP ACK from `src` to the service (no flow: it passes as the segment
/// of a verified source).
fn ack(src: Ipv4Addr) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], OUT_MAC)
        .ipv4(src.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 1000, 64240)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, b"x").unwrap();
    v
}

fn blacklisted(rt: &Runtime) -> Vec<u64> {
    rt.snapshot(1)
        .1
        .iter()
        .map(|s| s.dropped[DropReason::Blacklisted as usize])
        .collect()
}

fn wait(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn violations_ban_on_every_worker_then_the_ban_ends() {
    let wires: Vec<Wire> = (0..2).map(|_| Wire::default()).collect();
    let pol = Arc::new(ArcSwap::from_pointee(policy()));
    let neighbors = Arc::new(Neighbors::new(&[(ORIGIN_IP, Some(ORIGIN_MAC))], false));
    let workers = wires
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                setup(i),
                Scripted {
                    rx: Arc::clone(w),
                    pool: Pool::new(256),
                },
            )
        })
        .collect();
    let mut rt = Runtime::start(Arc::clone(&pol), neighbors, workers).unwrap();
    let bl = Arc::new(Blacklist::new(Arc::clone(&rt.mail), Arc::clone(&pol), None, 64, 64));
    let mut thread = bl.spawn().unwrap();
    // Both sources proved their address (verified on every worker).
    for ip in [A, B] {
        let r = rt
            .mail
            .ask(Command::Verify(IpAddr::V4(ip), 60 * SECOND), Duration::from_secs(5));
        assert_eq!(r, vec![Some(true), Some(true)]);
    }
    // A floods worker 0 past src_pps = 5 until the blacklist bans it.
    let t0 = Instant::now();
    wait("the ban", Duration::from_secs(5), || {
        wires[0].lock().unwrap().extend((0..20).map(|_| ack(A)));
        std::thread::sleep(Duration::from_millis(3));
        bl.get(IpAddr::V4(A), now_ms()).is_some()
    });
    let ban = bl.get(IpAddr::V4(A), now_ms()).unwrap();
    assert_eq!(
        (ban.kind.as_str(), ban.service.as_str(), ban.violations),
        ("src_pps", "web", 3)
    );
    eprintln!("banned after {:?}", t0.elapsed());
    // A is now dropped as `blacklisted` on both workers, B passes on worker 1.
    let before = blacklisted(&rt);
    let passed_b = rt.snapshot(1).1[1].passed[0];
    wait("blacklisted drops on both workers", Duration::from_secs(2), || {
        for w in &wires {
            w.lock().unwrap().push_back(ack(A));
        }
        wires[1].lock().unwrap().push_back(ack(B));
        std::thread::sleep(Duration::from_millis(5));
        let now = blacklisted(&rt);
        now[0] > before[0] && now[1] > before[1]
    });
    wait("B passing", Duration::from_secs(2), || {
        rt.snapshot(1).1[1].passed[0] > passed_b
    });
    assert!(t0.elapsed() < Duration::from_secs(1), "checked within the ban");
    // Released by itself after ban_secs (1 s): no more `blacklisted` drops.
    std::thread::sleep(Duration::from_millis(1100));
    wait("the management side's expiry", Duration::from_secs(2), || {
        bl.active() == 0
    });
    let after = blacklisted(&rt);
    for w in &wires {
        w.lock().unwrap().push_back(ack(A));
    }
    wait("the queues drained", Duration::from_secs(2), || {
        wires.iter().all(|w| w.lock().unwrap().is_empty())
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(blacklisted(&rt), after, "the ban ended on every worker");
    assert_eq!(bl.stats.bans_expired.load(std::sync::atomic::Ordering::Relaxed), 1);
    thread.stop();
    rt.stop().unwrap();
}
