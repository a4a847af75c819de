//! Writing classic pcap: little-endian, nanosecond timestamps, Ethernet.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use classifier::time::{Nanos, SECOND};
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::{PcapError, WRITE_SNAPLEN};

/// Writes a classic pcap file (nanosecond timestamps, Ethernet).
pub struct PcapWriter {
    path: String,
    inner: pcap_file::pcap::PcapWriter<BufWriter<Box<dyn Write + Send>>>,
    /// The file, to sync it on `finish` (none for a pipe or a device).
    file: Option<File>,
    packets: u64,
}

impl std::fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapWriter")
            .field("path", &self.path)
            .field("packets", &self.packets)
            .finish()
    }
}

impl PcapWriter {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &Path) -> Result<Self, PcapError> {
        let name = path.display().to_string();
        let io_err = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => PcapError::NotFound { path: name.clone() },
            _ => PcapError::Io {
                path: name.clone(),
                error: e,
            },
        };
        let file = File::create(path).map_err(io_err)?;
        // Only a regular file is synced: `fsync` of a device or a FIFO
        // (`--out /dev/null`) fails with EINVAL.
        let regular = file.metadata().map_err(io_err)?.is_file();
        let sync = if regular {
            Some(file.try_clone().map_err(io_err)?)
        } else {
            None
        };
        let mut w = Self::to_writer(&name, file)?;
        w.file = sync;
        Ok(w)
    }

    /// Writes the capture to any writer (e.g. standard output for a pipe);
    /// `name` names it in errors.
    pub fn to_writer(name: &str, w: impl Write + Send + 'static) -> Result<Self, PcapError> {
        let header = PcapHeader {
            snaplen: WRITE_SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let out = BufWriter::with_capacity(1 << 16, Box::new(w) as Box<dyn Write + Send>);
        let inner = pcap_file::pcap::PcapWriter::with_header(out, header).map_err(|e| PcapError::Unwritable {
            path: name.to_string(),
            index: 0,
            what: e.to_string(),
        })?;
        Ok(PcapWriter {
            path: name.to_string(),
            inner,
            file: None,
            packets: 0,
        })
    }

    /// Appends one frame captured at `ts` (Unix nanoseconds).
    pub fn write(&mut self, ts: Nanos, data: &[u8]) -> Result<(), PcapError> {
        let index = self.packets + 1;
        let refuse = |what: String| PcapError::Unwritable {
            path: self.path.clone(),
            index,
            what,
        };
        if ts / SECOND > u64::from(u32::MAX) {
            return Err(refuse(format!(
                "timestamp {ts} ns is past 2106, beyond classic pcap's 32-bit seconds"
            )));
        }
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if len > WRITE_SNAPLEN {
            return Err(refuse(format!(
                "{len} bytes exceed the snapshot length {WRITE_SNAPLEN}"
            )));
        }
        let packet = PcapPacket::new(Duration::from_nanos(ts), len, data);
        self.inner.write_packet(&packet).map_err(|e| match e {
            pcap_file::PcapError::IoError(error) => PcapError::Io {
                path: self.path.clone(),
                error,
            },
            other => refuse(other.to_string()),
        })?;
        self.packets += 1;
        Ok(())
    }

    /// Flushes (and for a file, syncs) the output and returns the number of
    /// frames written.
    pub fn finish(self) -> Result<u64, PcapError> {
        let PcapWriter {
            path,
            inner,
            file,
            packets,
        } = self;
        let mut out = inner.into_writer();
        out.flush().map_err(|e| PcapError::Io {
            path: path.clone(),
            error: e,
        })?;
        if let Some(f) = file {
            f.sync_data().map_err(|e| PcapError::Io { path, error: e })?;
        }
        Ok(packets)
    }
}
