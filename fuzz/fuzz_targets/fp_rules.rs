//! Fuzz target: the fingerprint and rule text parsers on arbitrary UTF-8 (see
//! src/fingerprint.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::fingerprint::fp_rules_text(data));
