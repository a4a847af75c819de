//! Fuzz target: the A2S query codec and challenge (see src/l7.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::l7::a2s(data));
