//! Fuzz target: operation sequences on the first-bytes reassembly table (see src/l7.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::l7::reassembly(data));
