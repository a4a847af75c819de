//! Fuzz target: `dataplane::pcap::PcapReader` over arbitrary bytes, allocation
//! bounded (see src/pcap.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moat_fuzz::pcap::read_capture(data));
