//! Memory stays flat under a random spoofed-source flood (DESIGN.md,
//! "Threading and memory model"): after warm-up, 10 million packets from
//! random IPv4 and IPv6 sources go through every per-core table operation,
//! and a counting global allocator proves that nothing allocates,
//! reallocates or frees, that no table exceeds its capacity and that
//! `memory_bytes` does not move.
//!
//! Only allocations made by the thread that runs the flood are counted (a
//! thread-local gate), so the test harness's own threads cannot disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use classifier::cookie::CookieSecrets;
use classifier::policy::{Origin, Service};
use classifier::state::{FlowKey, Insert, SourceLimit, StateConfig};
use classifier::time::{Nanos, SECOND};
use classifier::{Policy, WorkerState};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised and without a destructor: reading it never
    // allocates, so the allocator may consult it.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count(counter: &AtomicU64) {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are this allocator's; the counting
// touches only atomics and a const thread-local, never the heap.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: same contract as the caller's (non-zero-sized layout).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: same contract as the caller's (non-zero-sized layout).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(&FREES);
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(&REALLOCS);
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller
        // guarantees `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, reallocations, frees) counted so far on gated threads.
fn counts() -> (u64, u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        REALLOCS.load(Ordering::Relaxed),
        FREES.load(Ordering::Relaxed),
    )
}

/// splitmix64: a fast, allocation-free source of spoofed addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random source, IPv6 one time in eight.
    fn source(&mut self) -> IpAddr {
        let r = self.next();
        if r & 7 == 0 {
            IpAddr::V6(Ipv6Addr::from((u128::from(self.next()) << 64) | u128::from(r)))
        } else {
            IpAddr::V4(Ipv4Addr::from((r >> 32) as u32))
        }
    }
}

fn policy() -> Policy {
    let mut p = Policy::new(CookieSecrets::new([1; 16]));
    let origin = p.add_origin(Origin {
        name: "origin".into(),
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: None,
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)), origin);
    s.limits.src_pps = 100;
    s.limits.src_syn_pps = 10;
    s.limits.src_new_conns_ps = 5;
    s.limits.service_pps = 1_000_000;
    s.limits.challenge_pps = 100_000;
    s.limits.icmp_pps = 200;
    s.limits.src_icmp_pps = 20;
    p.add_service(s).expect("service");
    p.global_pps = 10_000_000;
    p
}

/// What one packet does to the state: every table operation the classifier
/// uses. Returns a value so the work cannot be optimised away.
fn packet(st: &mut WorkerState, rng: &mut Rng, now: Nanos, vip: IpAddr) -> u32 {
    const IDLE: Nanos = 120 * SECOND;
    const TTL: Nanos = 300 * SECOND;
    let src = rng.source();
    let key = FlowKey {
        src,
        dst: vip,
        sport: rng.next() as u16,
        dport: 443,
    };
    let mut passed = 0;
    passed += u32::from(st.global.take(now));
    if let Some(svc) = st.services.first_mut() {
        passed += u32::from(svc.pps.take(now)) + u32::from(svc.challenges.take(now));
        if svc.icmp.ready(now) {
            passed += u32::from(svc.icmp.take(now));
        }
    }
    for (which, rate) in [
        (SourceLimit::Pps, 100),
        (SourceLimit::Syn, 10),
        (SourceLimit::NewConn, 5),
        (SourceLimit::Icmp, 20),
    ] {
        passed += u32::from(st.sources.allow(src, 0, now, which, rate));
    }
    passed += u32::from(st.verified.is_verified(src, now));
    passed += u32::from(st.flows.touch(&key, now, IDLE));
    // A quarter of the sources "answer the challenge".
    if key.sport & 3 == 0 {
        st.verified.verify(src, now, TTL);
    }
    passed += u32::from(st.flows.insert(key, now, IDLE) != Insert::Refreshed);
    if key.sport & 15 == 1 {
        passed += u32::from(st.flows.remove(&key));
    }
    passed
}

#[test]
fn a_random_source_flood_allocates_nothing() {
    let cfg = StateConfig::default();
    assert_eq!((cfg.flows, cfg.verified, cfg.sources), (65536, 65536, 65536));
    let policy = policy();
    let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80));
    let mut st = WorkerState::new(&cfg, &policy, 4);
    let bytes = st.memory_bytes();
    let mut rng = Rng(0x5eed);
    let mut now: Nanos = 1_700_000_000 * SECOND;

    // The gate counts: prove the allocator sees this thread's allocations.
    COUNTING.with(|c| c.set(true));
    let before = counts();
    let probe = std::hint::black_box(vec![1u8; 64]);
    drop(probe);
    let after = counts();
    COUNTING.with(|c| c.set(false));
    assert_eq!((after.0 - before.0, after.2 - before.2), (1, 1), "the counter counts");

    // Warm-up: fill every table past capacity (several laps of the CLOCK).
    for _ in 0..400_000 {
        now += 100;
        packet(&mut st, &mut rng, now, vip);
    }
    let warm = (st.flows.len(), st.verified.len(), st.sources.len());

    const PACKETS: u64 = 10_000_000;
    let mut passed = 0u64;
    COUNTING.with(|c| c.set(true));
    let start = Instant::now();
    let before = counts();
    for _ in 0..PACKETS {
        // 10 Mpps of simulated time: one second of flood.
        now += 100;
        passed += u64::from(packet(&mut st, &mut rng, now, vip));
    }
    let after = counts();
    let elapsed = start.elapsed();
    COUNTING.with(|c| c.set(false));

    let (allocs, reallocs, frees) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    println!(
        "state_memory: {PACKETS} packets in {:.2} s ({:.0} ns/packet, ~10 table ops each), {passed} passes",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / PACKETS as f64,
    );
    println!("state_memory: allocations {allocs}, reallocations {reallocs}, frees {frees} after warm-up");
    println!(
        "state_memory: len after warm-up flows/verified/sources = {warm:?}, after flood = {:?}",
        (st.flows.len(), st.verified.len(), st.sources.len())
    );
    println!("state_memory: memory_bytes {bytes} before, {} after", st.memory_bytes());

    assert_eq!((allocs, reallocs, frees), (0, 0, 0));
    assert!(st.flows.len() <= st.flows.capacity());
    assert!(st.verified.len() <= st.verified.capacity());
    assert!(st.sources.len() <= st.sources.capacity());
    assert_eq!(st.flows.capacity(), 65536);
    assert_eq!(st.sources.len(), 65536, "the flood keeps the source table full");
    assert_eq!(st.memory_bytes(), bytes);
}
