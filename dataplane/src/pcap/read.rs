//! Reading classic pcap and pcapng (see the contract in the module above).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use classifier::time::{Nanos, SECOND};
use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, TsResolution};

use super::{link_type_name, Frame, PcapError, LINKTYPE_ETHERNET, MAX_RECORD, PCAPNG_BOM, PCAPNG_SHB};

/// A pcapng interface as far as reading frames needs it.
#[derive(Debug, Clone, Copy)]
struct Iface {
    /// `if_tsresol` (RFC draft-ietf-opsawg-pcapng §4.2): high bit clear means
    /// 10^-n seconds per unit, set means 2^-n; 6 (microseconds) by default.
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp of the interface.
    tsoffset: u64,
    /// Snapshot length; 0 means none (needed to trim Simple Packet Blocks).
    snaplen: u32,
}

enum Format {
    Classic {
        big: bool,
        nanos: bool,
        snaplen: u32,
    },
    Ng {
        parser: Box<PcapNgParser>,
        big: bool,
        ifaces: Vec<Iface>,
        last_ts: Nanos,
    },
}

/// Reads frames from a classic pcap or pcapng file, one at a time.
pub struct PcapReader {
    path: String,
    /// Boxed so that one reader type serves files ([`PcapReader::open`]) and
    /// any other byte source ([`PcapReader::from_reader`]); `Send` so that a
    /// reader can still move to another thread, as it could over a `File`.
    input: BufReader<Box<dyn Read + Send>>,
    /// Byte offset of the next record or block.
    offset: u64,
    /// Ordinal (from 1) of the next record or block.
    index: u64,
    link: u32,
    format: Format,
}

impl std::fmt::Debug for PcapReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.format {
            Format::Classic { .. } => "pcap",
            Format::Ng { .. } => "pcapng",
        };
        f.debug_struct("PcapReader")
            .field("path", &self.path)
            .field("format", &kind)
            .field("offset", &self.offset)
            .field("link", &self.link)
            .finish()
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    if big {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Converts a pcapng timestamp in interface units to nanoseconds.
fn ng_units_to_nanos(units: u64, iface: &Iface) -> Option<Nanos> {
    let exp = u32::from(iface.tsresol & 0x7f);
    let ns = if iface.tsresol & 0x80 == 0 {
        if exp <= 9 {
            units.checked_mul(10u64.pow(9 - exp))?
        } else {
            // Finer than 1 ns: divide; beyond 10^-28 every value rounds to 0.
            10u64.checked_pow(exp - 9).map_or(0, |d| units / d)
        }
    } else {
        // units * 10^9 / 2^exp, exact in 128 bits (units < 2^64, 10^9 < 2^30).
        u64::try_from((u128::from(units) * u128::from(SECOND)) >> exp).ok()?
    };
    ns.checked_add(iface.tsoffset.checked_mul(SECOND)?)
}

impl PcapReader {
    /// Opens `path` and reads its header (and, for pcapng, the blocks up to
    /// the first interface description).
    pub fn open(path: &Path) -> Result<Self, PcapError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => PcapError::NotFound { path: name.clone() },
            _ => PcapError::Io {
                path: name.clone(),
                error: e,
            },
        })?;
        Self::from_reader(&name, file)
    }

    /// Reads a capture from any byte source (a socket, a pipe, bytes in
    /// memory), with the same checks as [`PcapReader::open`]; `name` stands
    /// for the path in error messages. The header is read here, so this
    /// blocks until the source yields it or ends.
    pub fn from_reader(name: &str, r: impl Read + Send + 'static) -> Result<Self, PcapError> {
        let name = name.to_string();
        let mut input = BufReader::with_capacity(1 << 16, Box::new(r) as Box<dyn Read + Send>);
        let mut head = [0u8; 24];
        let got = read_full(&mut input, &mut head[..4]).map_err(|e| PcapError::Io {
            path: name.clone(),
            error: e,
        })?;
        if got == 0 {
            return Err(PcapError::Empty { path: name });
        }
        if got < 4 {
            return Err(PcapError::TruncatedHeader {
                path: name,
                got,
                want: 4,
            });
        }
        let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let mut reader = PcapReader {
            path: name,
            input,
            offset: 0,
            index: 1,
            link: LINKTYPE_ETHERNET,
            format: Format::Classic {
                big: false,
                nanos: false,
                snaplen: 0,
            },
        };
        match magic {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => reader.open_classic(head)?,
            PCAPNG_SHB => reader.open_ng(head)?,
            _ => {
                return Err(PcapError::BadMagic {
                    path: reader.path,
                    magic,
                })
            }
        }
        Ok(reader)
    }

    /// Link type of the capture (of its first interface for pcapng).
    pub fn link_type(&self) -> u32 {
        self.link
    }

    /// The next frame, `None` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, PcapError> {
        if matches!(self.format, Format::Classic { .. }) {
            self.next_classic()
        } else {
            self.next_ng_block(false)
        }
    }

    fn io(&self, e: io::Error) -> PcapError {
        PcapError::Io {
            path: self.path.clone(),
            error: e,
        }
    }

    fn check_link(&self, link: u32) -> Result<(), PcapError> {
        if link == LINKTYPE_ETHERNET {
            Ok(())
        } else {
            Err(PcapError::LinkType {
                path: self.path.clone(),
                link,
                name: link_type_name(link),
            })
        }
    }

    fn open_classic(&mut self, mut head: [u8; 24]) -> Result<(), PcapError> {
        let got = 4 + read_full(&mut self.input, &mut head[4..]).map_err(|e| self.io(e))?;
        if got < head.len() {
            return Err(PcapError::TruncatedHeader {
                path: self.path.clone(),
                got,
                want: head.len(),
            });
        }
        let (_, header) = PcapHeader::from_slice(&head).map_err(|e| PcapError::CorruptBlock {
            path: self.path.clone(),
            index: 0,
            offset: 0,
            what: e.to_string(),
        })?;
        self.offset = head.len() as u64;
        self.link = u32::from(header.datalink);
        self.format = Format::Classic {
            big: header.endianness == Endianness::Big,
            nanos: header.ts_resolution == TsResolution::NanoSecond,
            snaplen: header.snaplen,
        };
        self.check_link(self.link)
    }

    fn next_classic(&mut self) -> Result<Option<Frame>, PcapError> {
        let Format::Classic { big, nanos, snaplen } = self.format else {
            return Ok(None);
        };
        let (index, offset) = (self.index, self.offset);
        let truncated = || PcapError::TruncatedRecord {
            path: self.path.clone(),
            index,
            offset,
        };
        let mut rec = [0u8; 16];
        let got = read_full(&mut self.input, &mut rec).map_err(|e| self.io(e))?;
        if got == 0 {
            return Ok(None);
        }
        if got < rec.len() {
            return Err(truncated());
        }
        let (sec, frac, incl) = (u32_at(&rec, 0, big), u32_at(&rec, 4, big), u32_at(&rec, 8, big));
        let corrupt = |what: String| PcapError::CorruptRecord {
            path: self.path.clone(),
            index,
            offset,
            what,
        };
        // The snapshot length is not trusted to bound the record (it is a
        // header field like any other, up to 4 GiB): MAX_RECORD is. Writers
        // that under-report it are common, so a record above a small one is
        // accepted up to MAX_RECORD.
        if incl > MAX_RECORD {
            return Err(corrupt(format!(
                "captured length {incl} exceeds the snapshot length {snaplen} and the {MAX_RECORD}-byte limit"
            )));
        }
        let frac_ns = if nanos { u64::from(frac) } else { u64::from(frac) * 1000 };
        if frac_ns >= SECOND {
            return Err(corrupt(format!("sub-second timestamp field {frac} is out of range")));
        }
        let mut data = vec![0u8; incl as usize];
        if read_full(&mut self.input, &mut data).map_err(|e| self.io(e))? < data.len() {
            return Err(truncated());
        }
        self.index += 1;
        self.offset += 16 + u64::from(incl);
        Ok(Some(Frame {
            ts: u64::from(sec) * SECOND + frac_ns,
            data,
        }))
    }

    /// Reads one whole pcapng block (framing checked, body not decoded).
    /// `first` is the already-read first 4 bytes of the file, for the header.
    fn read_block(&mut self, big: bool, first: Option<[u8; 4]>) -> Result<Option<Vec<u8>>, PcapError> {
        let (index, offset) = (self.index, self.offset);
        let mut head = [0u8; 12];
        let mut got = 0;
        if let Some(f) = first {
            head[..4].copy_from_slice(&f);
            got = 4;
        }
        got += read_full(&mut self.input, &mut head[got..8]).map_err(|e| self.io(e))?;
        if got == 0 {
            return Ok(None);
        }
        let truncated = || PcapError::TruncatedBlock {
            path: self.path.clone(),
            index,
            offset,
        };
        if got < 8 {
            return Err(truncated());
        }
        let mut big = big;
        if u32_at(&head, 0, big) == PCAPNG_SHB {
            // A section header says its own byte order in its byte-order magic.
            if read_full(&mut self.input, &mut head[8..12]).map_err(|e| self.io(e))? < 4 {
                return Err(truncated());
            }
            big = u32_at(&head, 8, true) == PCAPNG_BOM;
            got = 12;
        }
        let len = u32_at(&head, 4, big);
        let corrupt = |what: String| PcapError::CorruptBlock {
            path: self.path.clone(),
            index,
            offset,
            what,
        };
        if len & 3 != 0 || !(12..=MAX_RECORD).contains(&len) {
            return Err(corrupt(format!(
                "block length {len} is not a multiple of 4 in 12..={MAX_RECORD}"
            )));
        }
        let mut block = vec![0u8; len as usize];
        block[..got].copy_from_slice(&head[..got]);
        if read_full(&mut self.input, &mut block[got..]).map_err(|e| self.io(e))? < block.len() - got {
            return Err(truncated());
        }
        self.index += 1;
        self.offset += u64::from(len);
        Ok(Some(block))
    }

    fn open_ng(&mut self, head: [u8; 24]) -> Result<(), PcapError> {
        let first = [head[0], head[1], head[2], head[3]];
        let corrupt = |r: &Self, what: String| PcapError::CorruptBlock {
            path: r.path.clone(),
            index: 1,
            offset: 0,
            what,
        };
        let Some(block) = self.read_block(false, Some(first))? else {
            return Err(PcapError::Empty {
                path: self.path.clone(),
            });
        };
        let (_, parser) = PcapNgParser::new(&block).map_err(|e| corrupt(self, e.to_string()))?;
        let big = parser.section().endianness == Endianness::Big;
        self.format = Format::Ng {
            parser: Box::new(parser),
            big,
            ifaces: Vec::new(),
            last_ts: 0,
        };
        // Read up to the first interface description, so that `link_type`
        // is known at open. A section without interfaces holds no packets; a
        // packet before any interface is refused by `next_ng_block`.
        self.next_ng_block(true).map(|_| ())
    }

    /// Reads blocks until one carries a frame (`None` at end of file), or,
    /// with `until_iface`, until the first interface description (`None`).
    fn next_ng_block(&mut self, until_iface: bool) -> Result<Option<Frame>, PcapError> {
        loop {
            let Format::Ng { big, .. } = self.format else {
                return Ok(None);
            };
            let (index, offset) = (self.index, self.offset);
            let Some(raw) = self.read_block(big, None)? else {
                return Ok(None);
            };
            let path = self.path.clone();
            let corrupt = |what: String| PcapError::CorruptBlock {
                path: path.clone(),
                index,
                offset,
                what,
            };
            let Format::Ng {
                parser,
                big,
                ifaces,
                last_ts,
            } = &mut self.format
            else {
                return Ok(None);
            };
            let (_, block) = parser.next_block(&raw).map_err(|e| corrupt(e.to_string()))?;
            let (iface_id, units, data, orig_len): (u32, Option<u64>, Cow<[u8]>, u32) = match block {
                Block::SectionHeader(shb) => {
                    *big = shb.endianness == Endianness::Big;
                    ifaces.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    let link = u32::from(idb.linktype);
                    if link != LINKTYPE_ETHERNET {
                        return Err(PcapError::LinkType {
                            path,
                            link,
                            name: link_type_name(link),
                        });
                    }
                    let mut iface = Iface {
                        tsresol: 6,
                        tsoffset: 0,
                        snaplen: idb.snaplen,
                    };
                    for opt in &idb.options {
                        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption as O;
                        match opt {
                            O::IfTsResol(r) => iface.tsresol = *r,
                            O::IfTsOffset(o) => iface.tsoffset = *o,
                            _ => {}
                        }
                    }
                    ifaces.push(iface);
                    if until_iface {
                        return Ok(None);
                    }
                    continue;
                }
                Block::EnhancedPacket(epb) => {
                    let units = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    (epb.interface_id, Some(units), epb.data, epb.original_len)
                }
                Block::Packet(pb) => (u32::from(pb.interface_id), Some(pb.timestamp), pb.data, pb.original_len),
                Block::SimplePacket(spb) => (0, None, spb.data, spb.original_len),
                _ => continue,
            };
            let Some(iface) = ifaces.get(iface_id as usize) else {
                return Err(corrupt(format!("packet for undeclared interface {iface_id}")));
            };
            let ts = match units {
                Some(u) => ng_units_to_nanos(u, iface).ok_or_else(|| corrupt("timestamp out of range".into()))?,
                // A Simple Packet Block has no timestamp: keep the previous one.
                None => *last_ts,
            };
            *last_ts = ts;
            let mut data = data.into_owned();
            if units.is_none() {
                // The SPB body is padded to 32 bits; the frame is
                // min(original length, snaplen) long (pcapng §4.4).
                let cap = if iface.snaplen == 0 {
                    orig_len
                } else {
                    orig_len.min(iface.snaplen)
                };
                data.truncate(cap as usize);
            }
            return Ok(Some(Frame { ts, data }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_conversions() {
        let us = Iface {
            tsresol: 6,
            tsoffset: 0,
            snaplen: 0,
        };
        assert_eq!(ng_units_to_nanos(1_500_000, &us), Some(1_500_000_000));
        let ns = Iface { tsresol: 9, ..us };
        assert_eq!(ng_units_to_nanos(7, &ns), Some(7));
        let ps = Iface { tsresol: 12, ..us };
        assert_eq!(ng_units_to_nanos(7_000, &ps), Some(7));
        // 2^-10 s per unit: 1024 units are one second.
        let bin = Iface {
            tsresol: 0x80 | 10,
            ..us
        };
        assert_eq!(ng_units_to_nanos(1024, &bin), Some(SECOND));
        let off = Iface { tsoffset: 3, ..us };
        assert_eq!(ng_units_to_nanos(1, &off), Some(3 * SECOND + 1000));
        assert_eq!(ng_units_to_nanos(u64::MAX, &us), None);
        let huge = Iface { tsresol: 127, ..us };
        assert_eq!(ng_units_to_nanos(u64::MAX, &huge), Some(0));
    }

    /// A classic pcap header (little-endian, microseconds) with `snaplen`.
    fn classic_header(snaplen: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [0xA1B2_C3D4u32, 0x0004_0002, 0, 0, snaplen, LINKTYPE_ETHERNET] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// One record header: seconds, microseconds, captured and original length.
    fn record(sec: u32, usec: u32, incl: u32) -> Vec<u8> {
        [sec, usec, incl, incl].iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn reads_from_any_reader() {
        let mut b = classic_header(65535);
        b.extend(record(2, 500, 3));
        b.extend_from_slice(&[0xaa, 0xbb, 0xcc]);
        let mut r = PcapReader::from_reader("mem", io::Cursor::new(b)).unwrap();
        assert_eq!(r.link_type(), LINKTYPE_ETHERNET);
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(f.ts, 2 * SECOND + 500_000);
        assert_eq!(f.data, [0xaa, 0xbb, 0xcc]);
        assert!(r.next_frame().unwrap().is_none());
        let e = PcapReader::from_reader("mem", io::Cursor::new(Vec::new())).unwrap_err();
        assert_eq!(e.to_string(), "mem: empty file (no pcap or pcapng header)");
    }

    /// Found by the `pcap` fuzz target: a snapshot length of 822 MB let a
    /// record claim 673 MB, and the reader allocated it before finding the
    /// file truncated (the old bound was the larger of `MAX_RECORD` and the
    /// snapshot length).
    #[test]
    fn huge_snaplen_does_not_raise_the_record_limit() {
        #[rustfmt::skip]
        const HEAD: [u8; 40] = [
            // big-endian nanosecond magic, version 2.4, zone 0, sigfigs 0
            0xa1, 0xb2, 0x3c, 0x4d, 0x00, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,
            // snaplen 0x31000000 (822 MB), link type 1
            0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            // record 1: ts 0x02000000 s + 0x20000 ns, incl 0x281c4600 (673 MB), orig
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x28, 0x1c, 0x46, 0x00, 0x00, 0x40, 0x06, 0x72,
        ];
        let mut r = PcapReader::from_reader("huge", io::Cursor::new(HEAD.to_vec())).unwrap();
        let e = r.next_frame().unwrap_err();
        assert!(
            matches!(
                e,
                PcapError::CorruptRecord {
                    index: 1,
                    offset: 24,
                    ..
                }
            ),
            "{e}"
        );
        // Up to MAX_RECORD, a record above the snapshot length is still read.
        let mut b = classic_header(64);
        b.extend(record(0, 0, 100));
        b.extend([7u8; 100]);
        let mut r = PcapReader::from_reader("small snaplen", io::Cursor::new(b)).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().data.len(), 100);
    }

    #[test]
    fn link_names() {
        assert_eq!(link_type_name(113), "Linux SLL");
        assert_eq!(link_type_name(1), "Ethernet");
        assert_eq!(link_type_name(4242), "unknown");
    }
}
