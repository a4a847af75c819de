//! Fuzz target: classify with http-redirect and udp_auth (see src/auth.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::auth::auth_classify(data));
