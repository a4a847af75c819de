//! Fuzz target: every builder of `classifier::build` on a parsed frame, each
//! output parsed back (see src/builders.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::builders::build_frame(data));
