//! Capture file reading and writing: round trips, pcapng written by the
//! `pcap-file` crate's own writer, hand-built classic headers of each
//! flavour, and one test per error with its message.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataplane::pcap::{Frame, PcapError, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

const T0: u64 = 1_767_225_600_000_000_000;

fn frames() -> Vec<Frame> {
    (0..5u8)
        .map(|i| Frame {
            ts: T0 + u64::from(i) * 1_234_567,
            data: vec![i; 60 + usize::from(i) * 100],
        })
        .collect()
}

fn write_classic(path: &Path, frames: &[Frame]) {
    let mut w = PcapWriter::create(path).unwrap();
    for f in frames {
        w.write(f.ts, &f.data).unwrap();
    }
    assert_eq!(w.finish().unwrap(), frames.len() as u64);
}

fn read_all(path: &Path) -> Result<Vec<Frame>, PcapError> {
    let mut r = PcapReader::open(path)?;
    let mut out = Vec::new();
    while let Some(f) = r.next_frame()? {
        out.push(f);
    }
    Ok(out)
}

fn tmp(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn classic_round_trip_keeps_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "rt.pcap");
    write_classic(&p, &frames());
    let r = PcapReader::open(&p).unwrap();
    assert_eq!(r.link_type(), 1);
    assert_eq!(read_all(&p).unwrap(), frames());
    // Nanosecond magic, little-endian, as documented.
    assert_eq!(&std::fs::read(&p).unwrap()[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
}

/// A classic pcap file built by hand: `magic` as written, byte order `big`.
fn classic_bytes(magic: u32, big: bool, link: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut b = Vec::new();
    b.extend_from_slice(&w32(magic));
    b.extend_from_slice(&w16(2));
    b.extend_from_slice(&w16(4));
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&w32(65535));
    b.extend_from_slice(&w32(link));
    for (sec, frac, data) in records {
        b.extend_from_slice(&w32(*sec));
        b.extend_from_slice(&w32(*frac));
        b.extend_from_slice(&w32(data.len() as u32));
        b.extend_from_slice(&w32(data.len() as u32));
        b.extend_from_slice(data);
    }
    b
}

#[test]
fn classic_microsecond_and_nanosecond_both_byte_orders() {
    let dir = tempfile::tempdir().unwrap();
    let data = [0xabu8; 42];
    for big in [false, true] {
        let p = tmp(&dir, "us.pcap");
        std::fs::write(
            &p,
            classic_bytes(0xA1B2_C3D4, big, 1, &[(1_767_225_600, 250_000, &data)]),
        )
        .unwrap();
        let got = read_all(&p).unwrap();
        assert_eq!(
            got,
            vec![Frame {
                ts: T0 + 250_000_000,
                data: data.to_vec()
            }],
            "µs, big={big}"
        );
        let p = tmp(&dir, "ns.pcap");
        std::fs::write(
            &p,
            classic_bytes(0xA1B2_3C4D, big, 1, &[(1_767_225_600, 250_000, &data)]),
        )
        .unwrap();
        assert_eq!(read_all(&p).unwrap()[0].ts, T0 + 250_000, "ns, big={big}");
    }
}

fn write_pcapng(path: &Path, tsresol: Option<u8>, link: DataLink, frames: &[Frame]) {
    let mut w = PcapNgWriter::new(File::create(path).unwrap()).unwrap();
    let options = tsresol.map(InterfaceDescriptionOption::IfTsResol).into_iter().collect();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: link,
        snaplen: 0,
        options,
    })
    .unwrap();
    for f in frames {
        // pcap-file stores `timestamp` as raw interface units (its nanos).
        let units = match tsresol {
            Some(9) => f.ts,
            _ => f.ts / 1000,
        };
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(units),
            original_len: f.data.len() as u32,
            data: Cow::Borrowed(&f.data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
}

#[test]
fn pcapng_enhanced_packets_with_and_without_tsresol() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "ns.pcapng");
    write_pcapng(&p, Some(9), DataLink::ETHERNET, &frames());
    assert_eq!(PcapReader::open(&p).unwrap().link_type(), 1);
    assert_eq!(read_all(&p).unwrap(), frames());

    // Default resolution is microseconds: nanoseconds below it are lost.
    let p = tmp(&dir, "us.pcapng");
    write_pcapng(&p, None, DataLink::ETHERNET, &frames());
    let got = read_all(&p).unwrap();
    let want: Vec<Frame> = frames()
        .into_iter()
        .map(|f| Frame {
            ts: f.ts / 1000 * 1000,
            ..f
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn pcapng_simple_packet_blocks_trimmed_and_timed() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "spb.pcapng");
    let mut w = PcapNgWriter::new(File::create(&p).unwrap()).unwrap();
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![],
    };
    w.write_pcapng_block(idb).unwrap();
    let data = [7u8; 61]; // not a multiple of 4: the block is padded
    w.write_pcapng_block(SimplePacketBlock {
        original_len: 61,
        data: Cow::Borrowed(&data),
    })
    .unwrap();
    drop(w);
    let got = read_all(&p).unwrap();
    assert_eq!(
        got,
        vec![Frame {
            ts: 0,
            data: data.to_vec()
        }]
    );
}

fn err(path: &Path) -> String {
    read_all(path).unwrap_err().to_string()
}

#[test]
fn missing_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "capture.pcap");
    let e = err(&p);
    assert_eq!(e, format!("{}: no such file", p.display()));
    std::fs::write(&p, b"").unwrap();
    assert!(
        err(&p).ends_with("capture.pcap: empty file (no pcap or pcapng header)"),
        "{}",
        err(&p)
    );
    std::fs::write(&p, [0xd4, 0xc3]).unwrap();
    assert!(err(&p).ends_with("truncated file header (2 of 4 bytes)"), "{}", err(&p));
    std::fs::write(&p, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap();
    assert!(
        err(&p).ends_with("truncated file header (6 of 24 bytes)"),
        "{}",
        err(&p)
    );
}

#[test]
fn not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "x.pcap");
    std::fs::write(&p, [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        err(&p),
        format!("{}: not a pcap or pcapng file (magic 0x12345678)", p.display())
    );
}

#[test]
fn truncated_last_record_is_an_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "x.pcap");
    write_classic(&p, &frames());
    let full = std::fs::read(&p).unwrap();
    // Records: 24-byte header, then 16 + 60 + 100*i bytes each.
    let offset_of_5th: usize = 24 + (0..4).map(|i| 16 + 60 + 100 * i).sum::<usize>();
    for cut in [1, 100, full.len() - offset_of_5th - 10] {
        std::fs::write(&p, &full[..full.len() - cut]).unwrap();
        let mut r = PcapReader::open(&p).unwrap();
        for _ in 0..4 {
            assert!(r.next_frame().unwrap().is_some());
        }
        let e = r.next_frame().unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: truncated packet record 5 at byte offset {offset_of_5th}",
                p.display()
            )
        );
    }
}

#[test]
fn corrupt_record_length_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "x.pcap");
    let mut b = classic_bytes(0xA1B2_C3D4, false, 1, &[(1, 0, &[1, 2, 3])]);
    b[24 + 8..24 + 12].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    let e = err(&p);
    assert!(
        e.contains("x.pcap: corrupt packet record 1 at byte offset 24: captured length 4294967280"),
        "{e}"
    );
    let mut b = classic_bytes(0xA1B2_C3D4, false, 1, &[(1, 1_000_000, &[1, 2, 3])]);
    std::fs::write(&p, &b).unwrap();
    assert!(
        err(&p).contains("sub-second timestamp field 1000000 is out of range"),
        "{}",
        err(&p)
    );
    b.truncate(24);
    std::fs::write(&p, &b).unwrap();
    assert_eq!(read_all(&p).unwrap(), vec![], "a header alone is an empty capture");
}

#[test]
fn corrupt_and_truncated_pcapng_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "x.pcapng");
    write_pcapng(&p, Some(9), DataLink::ETHERNET, &frames());
    let full = std::fs::read(&p).unwrap();
    let shb_len = u32::from_le_bytes(full[4..8].try_into().unwrap()) as usize;
    let idb_len = u32::from_le_bytes(full[shb_len + 4..shb_len + 8].try_into().unwrap()) as usize;
    let epb_at = shb_len + idb_len;

    let mut b = full.clone();
    b[epb_at + 4..epb_at + 8].copy_from_slice(&13u32.to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    let e = err(&p);
    assert_eq!(
        e,
        format!(
            "{}: corrupt block 3 at byte offset {epb_at}: block length 13 is not a multiple of 4 in 12..=16777216",
            p.display()
        )
    );

    // Trailer length disagreeing with the header's.
    let epb_len = u32::from_le_bytes(full[epb_at + 4..epb_at + 8].try_into().unwrap()) as usize;
    let mut b = full.clone();
    b[epb_at + epb_len - 4] ^= 0x40;
    std::fs::write(&p, &b).unwrap();
    assert!(
        err(&p).contains(&format!("corrupt block 3 at byte offset {epb_at}: ")),
        "{}",
        err(&p)
    );

    std::fs::write(&p, &full[..full.len() - 3]).unwrap();
    let last_at = epb_at + 4 * epb_len + (0..4).map(|i| 100 * i).sum::<usize>();
    let mut r = PcapReader::open(&p).unwrap();
    let mut n = 0;
    let e = loop {
        match r.next_frame() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("truncation not reported"),
            Err(e) => break e.to_string(),
        }
    };
    assert_eq!(n, 4);
    assert_eq!(
        e,
        format!("{}: truncated block 7 at byte offset {last_at}", p.display())
    );
}

#[test]
fn wrong_link_type() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "x.pcap");
    std::fs::write(&p, classic_bytes(0xA1B2_C3D4, false, 113, &[])).unwrap();
    assert_eq!(
        err(&p),
        format!("{}: link type 113 (Linux SLL) is not Ethernet", p.display())
    );
    let p = tmp(&dir, "x.pcapng");
    write_pcapng(&p, Some(9), DataLink::from(101), &frames());
    assert_eq!(
        err(&p),
        format!("{}: link type 101 (raw IP) is not Ethernet", p.display())
    );
}

#[test]
fn writer_refuses_what_classic_pcap_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let p = tmp(&dir, "out.pcap");
    let mut w = PcapWriter::create(&p).unwrap();
    w.write(T0, &[0; 60]).unwrap();
    let e = w.write(u64::MAX, &[0; 60]).unwrap_err().to_string();
    assert!(e.contains("out.pcap: cannot write frame 2: timestamp"), "{e}");
    let e = w.write(T0, &vec![0; 70_000]).unwrap_err().to_string();
    assert!(e.contains("70000 bytes exceed the snapshot length 65535"), "{e}");
    assert_eq!(w.finish().unwrap(), 1);
    let e = PcapWriter::create(&dir.path().join("no/such/dir.pcap"))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("no/such/dir.pcap: no such file"), "{e}");
}
