//! The `pcap` target: `dataplane::pcap::PcapReader` over arbitrary bytes
//! (through `PcapReader::from_reader`), reading every frame until the end or
//! the first error.
//!
//! Checked (the contract in `dataplane/src/pcap.rs`): no panic, whatever
//! the bytes; no frame longer than `MAX_RECORD`; and no corrupt length makes
//! the reader allocate much: every allocation made while reading counts
//! against [`crate::alloc_limit`], and one past [`BUDGET`] aborts the run
//! (libFuzzer reports it as a crash). Reading ends, since every record or
//! block consumes input; errors name the input.

use std::io::Cursor;

use dataplane::pcap::{PcapReader, MAX_RECORD};

/// Bytes the reader may have allocated at once: its 64 KiB input buffer,
/// one frame of at most `MAX_RECORD` (16 MiB) and a block being decoded,
/// with room to spare.
pub const BUDGET: usize = 3 * MAX_RECORD as usize;

const NAME: &str = "fuzz.pcap";

/// The target body.
pub fn read_capture(data: &[u8]) {
    crate::alloc_limit::within(BUDGET, || {
        let mut r = match PcapReader::from_reader(NAME, Cursor::new(data.to_vec())) {
            Ok(r) => r,
            Err(e) => return assert!(e.to_string().starts_with(NAME), "{e}"),
        };
        loop {
            match r.next_frame() {
                Ok(Some(f)) => assert!(f.data.len() <= MAX_RECORD as usize),
                Ok(None) => break,
                Err(e) => {
                    assert!(e.to_string().starts_with(NAME), "{e}");
                    break;
                }
            }
        }
    });
}
