//! Fuzz target: the HTTP request line and Host parser (see src/l7.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::l7::http(data));
