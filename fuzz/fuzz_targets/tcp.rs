//! Fuzz target: the `tcp` view's `new_checked` and every accessor (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::tcp(data));
