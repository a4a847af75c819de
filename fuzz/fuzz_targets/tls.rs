//! Fuzz target: the ClientHello parser and JA4 (see src/l7.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::l7::tls(data));
