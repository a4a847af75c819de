//! Fuzz target: `classifier::parse::parse` on whole frames, then the
//! fingerprints and builders on its result (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::parse_frame(data));
