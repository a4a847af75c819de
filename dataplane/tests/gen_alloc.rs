//! The generator allocates nothing per packet once warm, when its buffers
//! come back ([`Generator::recycle`], as the live sender does): a counting
//! global allocator counts the allocations made by this thread while the
//! generator yields packets. Spoofed floods draw a new source per packet
//! from the same recycled buffers.
//!
//! Warm means: the generator's queue has reached the largest size it will
//! have (a flood's is a handful of packets; legitimate sessions queue about
//! a second of traffic, so those run at 100 events per second here) and
//! every buffer in circulation has been recycled once (grown to the
//! largest frame). The generator is seeded, so the counts are exact, not
//! statistical.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dataplane::gen::{GenConfig, Generator, Profile};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a const-initialised thread-local Cell (no allocation, no
// re-entry into the allocator).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Allocations (and reallocations) while `n` packets are taken and their
/// buffers given back, after `warm` packets taken the same way.
fn allocations(mix: Vec<(Profile, u32)>, warm: u64, n: u64) -> u64 {
    let mut g = Generator::new(GenConfig {
        mix,
        count: u64::MAX,
        pps: 100,
        ipv6_share: 0.3,
        ..GenConfig::default()
    });
    let mut take = |k: u64| {
        let mut bytes = 0u64;
        for _ in 0..k {
            let p = g.next().expect("an endless generator");
            bytes += p.frame.len() as u64;
            g.recycle(p.frame);
        }
        bytes
    };
    take(warm);
    let before = allocs();
    let bytes = take(n);
    let made = allocs() - before;
    assert!(bytes > n * 40, "{bytes} bytes in {n} packets");
    made
}

#[test]
fn a_warm_generator_allocates_nothing_per_packet() {
    // Legitimate sessions span seconds (SYN retransmissions at +1 s and
    // +3 s): their queue needs a long warm-up. (Debug builds draw random
    // payload bytes slowly, so the others are kept short.)
    for p in Profile::ALL {
        let (warm, n) = if p == Profile::Legit {
            (30_000, 8_000)
        } else {
            (1_000, 2_000)
        };
        let made = allocations(vec![(p, 1)], warm, n);
        assert_eq!(made, 0, "{p}: {made} allocations in {n} packets");
    }
    let made = allocations(dataplane::gen::default_mix(), 40_000, 4_000);
    assert_eq!(made, 0, "default mix: {made} allocations in 4000 packets");
}

#[test]
fn without_recycling_each_packet_allocates() {
    // The pcap path keeps every frame it is given: the counter sees it.
    let mut g = Generator::new(GenConfig {
        mix: vec![(Profile::SynFlood, 1)],
        count: 1000,
        ..GenConfig::default()
    });
    let before = allocs();
    let frames: Vec<Vec<u8>> = g.by_ref().map(|p| p.frame).collect();
    assert!(allocs() - before >= 1000, "{}", allocs() - before);
    assert_eq!(frames.len(), 1000);
}
