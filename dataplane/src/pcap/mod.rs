//! Capture files: a reader for classic pcap and pcapng, a writer for classic
//! pcap, used by `moat scrub` (capture in, clean capture out) and `moat gen`.
//!
//! Contract:
//! - [`PcapReader`] reads classic pcap (microsecond and nanosecond magic, both
//!   byte orders) and pcapng (Enhanced and Simple Packet Blocks, the obsolete
//!   Packet Block, `if_tsresol` and `if_tsoffset`, several sections). Frames
//!   come back with Unix-nanosecond timestamps. It reads a file
//!   ([`PcapReader::open`]) or any `Read` ([`PcapReader::from_reader`]).
//! - Only Ethernet (link type 1) is accepted, because the scrubbing pipeline
//!   parses from L2: any other link type is an error, at open for classic
//!   pcap and for the first pcapng interface, at its description block for
//!   later pcapng interfaces.
//! - Every error names the file and says what is wrong and where (record
//!   number, counted from 1, and byte offset). A truncated last record is an
//!   error, never silently dropped: a scrub report must account for every
//!   packet of its input.
//! - Corrupt lengths never cause a large allocation: a record or block above
//!   [`MAX_RECORD`] bytes is refused before anything is allocated.
//! - [`PcapWriter`] writes classic pcap, little-endian, nanosecond magic,
//!   Ethernet, snapshot length 65535.
//!
//! Framing is read here (so that offsets are exact); block bodies of pcapng
//! are decoded by the `pcap-file` crate.

mod read;
mod write;

use std::io;
use std::path::Path;

use classifier::time::Nanos;

pub use read::PcapReader;
pub use write::PcapWriter;

/// Link type of Ethernet (`LINKTYPE_ETHERNET`, tcpdump.org link-layer header types).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Largest record (classic pcap) or block (pcapng) accepted: 16 MiB, far above
/// any real frame (jumbo frames and 256 KiB snap lengths included), low enough
/// that a corrupt length field cannot make the reader allocate gigabytes.
pub const MAX_RECORD: u32 = 16 << 20;

/// Snapshot length written by [`PcapWriter`]: the largest IPv4 datagram plus
/// its Ethernet header fits (65535), as tcpdump's historical default.
pub const WRITE_SNAPLEN: u32 = 65535;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, Unix nanoseconds.
    pub ts: Nanos,
    /// The captured bytes, from the Ethernet header on.
    pub data: Vec<u8>,
}

/// Why a capture could not be read or written. Each message starts with the
/// file's path.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{path}: no such file")]
    NotFound { path: String },
    /// The I/O error is part of the message, not a `source()` as well:
    /// a chain printer would show it twice.
    #[error("{path}: {error}")]
    Io { path: String, error: io::Error },
    #[error("{path}: empty file (no pcap or pcapng header)")]
    Empty { path: String },
    #[error("{path}: not a pcap or pcapng file (magic 0x{magic:08x})")]
    BadMagic { path: String, magic: u32 },
    #[error("{path}: truncated file header ({got} of {want} bytes)")]
    TruncatedHeader { path: String, got: usize, want: usize },
    #[error("{path}: truncated packet record {index} at byte offset {offset}")]
    TruncatedRecord { path: String, index: u64, offset: u64 },
    #[error("{path}: corrupt packet record {index} at byte offset {offset}: {what}")]
    CorruptRecord {
        path: String,
        index: u64,
        offset: u64,
        what: String,
    },
    #[error("{path}: truncated block {index} at byte offset {offset}")]
    TruncatedBlock { path: String, index: u64, offset: u64 },
    #[error("{path}: corrupt block {index} at byte offset {offset}: {what}")]
    CorruptBlock {
        path: String,
        index: u64,
        offset: u64,
        what: String,
    },
    #[error("{path}: link type {link} ({name}) is not Ethernet")]
    LinkType {
        path: String,
        link: u32,
        name: &'static str,
    },
    #[error("{path}: cannot write frame {index}: {what}")]
    Unwritable { path: String, index: u64, what: String },
}

/// Name of a link type, for error messages (tcpdump.org registry).
pub fn link_type_name(link: u32) -> &'static str {
    match link {
        0 => "BSD loopback",
        1 => "Ethernet",
        6 => "IEEE 802.5 Token Ring",
        9 => "PPP",
        12 | 101 => "raw IP",
        105 => "IEEE 802.11",
        108 => "OpenBSD loopback",
        113 => "Linux SLL",
        127 => "IEEE 802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux SLL2",
        _ => "unknown",
    }
}

/// `-` names standard input or output, so that commands can be piped
/// (`moat gen --out - | moat scrub --in - ...`).
pub const STDIO: &str = "-";

/// Opens `path` for reading, or standard input for `-`.
pub fn open_input(path: &Path) -> Result<PcapReader, PcapError> {
    if path.as_os_str() == STDIO {
        PcapReader::from_reader("<stdin>", io::stdin())
    } else {
        PcapReader::open(path)
    }
}

/// Creates `path` for writing, or writes to standard output for `-`.
pub fn create_output(path: &Path) -> Result<PcapWriter, PcapError> {
    if path.as_os_str() == STDIO {
        PcapWriter::to_writer("<stdout>", io::stdout())
    } else {
        PcapWriter::create(path)
    }
}
