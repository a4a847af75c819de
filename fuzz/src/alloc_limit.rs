//! A global allocator that counts the bytes outstanding, so that a target can
//! bound what the code under test allocates (`pcap`: no corrupt length may
//! make the reader allocate gigabytes). libFuzzer's own `-malloc_limit_mb`
//! needs a sanitizer's malloc hooks, which `--sanitizer none` builds lack;
//! and a huge zeroed `Vec` never touches its pages, so `-rss_limit_mb`
//! would not see it either.
//!
//! Past the limit an allocation fails, and Rust aborts with "memory
//! allocation of N bytes failed": libFuzzer reports the abort as a crash and
//! saves the input.

use std::alloc::System;

use cap::Cap;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Runs `f` with at most `budget` more bytes allocatable than are allocated
/// now, then lifts the limit again.
pub fn within<R>(budget: usize, f: impl FnOnce() -> R) -> R {
    // Cannot fail: the new limit is at least what is allocated.
    let _ = ALLOC.set_limit(ALLOC.allocated().saturating_add(budget));
    let r = f();
    let _ = ALLOC.set_limit(usize::MAX);
    r
}

/// Bytes allocated through the global allocator and not yet freed.
pub fn allocated() -> usize {
    ALLOC.allocated()
}
