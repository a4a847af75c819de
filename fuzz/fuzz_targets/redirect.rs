//! Fuzz target: http-redirect's answer to a first segment (see src/auth.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::auth::redirect(data));
