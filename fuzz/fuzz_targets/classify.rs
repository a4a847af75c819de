//! Fuzz target: `classifier::classify` over a sequence of frames, state carried
//! across them (see src/classify.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::classify::classify_frames(data));
