//! Fuzz target: first-segment judging and the `l7_rules` matcher (see
//! src/l7.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::l7::l7_rules(data));
