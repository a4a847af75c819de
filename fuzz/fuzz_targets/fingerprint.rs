//! Fuzz target: TCP/UDP fingerprints of a parsed frame and their text round
//! trip (see src/fingerprint.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::fingerprint::fingerprint_frame(data));
