//! A software prefetch: asks the CPU to bring a cache line toward L1 ahead
//! of its use, without waiting for it and without faulting on any address
//! (DPDK `rte_prefetch0`). The two-stage burst of the pipeline prefetches
//! each frame's table index lines while it parses the rest of the burst.
//!
//! On x86-64 this is `PREFETCHT0`; elsewhere it does nothing (the code is
//! correct without it, only slower to reach memory).
#![allow(unsafe_code)]

/// Prefetches the cache line holding `p` into every cache level. `p` may
/// be any address, even dangling: the instruction never faults.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs the `sse` target feature, part of the
    // x86-64 baseline (every x86-64 CPU has it, and rustc enables it for
    // every x86-64 target). PREFETCHT0 is a hint: it reads nothing into a
    // register, writes nothing, and never faults, whatever the address
    // (Intel SDM vol. 2B, "PREFETCHh"), so no pointer validity is needed.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
