//! The DPDK backend's frames on real mbufs, through `net_pcap` virtual
//! devices (EAL with `--no-huge --no-pci`): capture timestamps, in-place
//! edits (prepend, adj, set_len), alloc, TX into a capture file, and the
//! device counters. EAL initialises once per process, so this file is one
//! test (its own binary).
//!
//! Skips with a message where EAL cannot start (not root); fails instead
//! under `MOAT_E2E=1`.
#![cfg(feature = "dpdk")]

mod common;

use std::path::Path;
use std::time::Duration;

use dataplane::port::dpdk::{self, DpdkOptions};
use dataplane::port::{Burst, DeviceStatsReader, Frame, PortId, Queues};

/// A nanosecond-resolution pcap (`0xa1b23c4d`) with `frames`.
fn write_pcap(path: &Path, frames: &[(u32, u32, Vec<u8>)]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (sec, nsec, data) in frames {
        for v in [*sec, *nsec, data.len() as u32, data.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
    }
    std::fs::write(path, b).unwrap();
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![n; len];
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental
    f
}

#[test]
fn mbuf_frames_on_net_pcap() {
    let not_root = (!common::is_root()).then(|| "not root (DPDK's EAL needs root here)".to_string());
    if !common::can_run("dpdk_frames", not_root) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rx, tx, empty, tx_in) = (
        dir.path().join("rx.pcap"),
        dir.path().join("tx.pcap"),
        dir.path().join("empty.pcap"),
        dir.path().join("tx-in.pcap"),
    );
    // Microsecond-exact and sub-microsecond capture times.
    let input = vec![
        (1_767_225_600, 110_000, frame(1, 60)),
        (1_767_225_601, 999_999_999, frame(2, 1514)),
        (1_767_225_602, 1_234, frame(3, 64)),
    ];
    write_pcap(&rx, &input);
    write_pcap(&empty, &[]);
    let prefix = format!("moat-frames-{}", std::process::id());
    let vdev = |i: u8, rx: &Path, tx: &Path| format!("net_pcap{i},rx_pcap={},tx_pcap={}", rx.display(), tx.display());
    let eal_args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0",
        "--file-prefix",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        prefix,
        "--vdev".into(),
        vdev(0, &rx, &tx),
        "--vdev".into(),
        vdev(1, &empty, &tx_in),
    ])
    .collect();
    let opts = DpdkOptions {
        eal_args,
        outside: "net_pcap0".into(),
        inside: "net_pcap1".into(),
        workers: 1,
        mbufs: 8191,
        link_wait: Duration::from_millis(500),
        ..DpdkOptions::default()
    };
    let mut d = dpdk::open(&opts).expect("dpdk backend on net_pcap");
    // EAL is once per process: the same arguments again are accepted, other
    // ones refused with a clear error.
    let again = dpdk::open(&DpdkOptions {
        eal_args: vec!["--no-pci".into()],
        ..opts.clone()
    });
    assert!(
        again.as_ref().is_err_and(|e| e.0.contains("already initialised")),
        "{again:?}"
    );
    assert_eq!(d.stats.info(PortId::Outside).driver, "net_pcap");
    let mut q = d.queues.pop().unwrap();
    assert!(q.mac(PortId::Outside).is_some());

    let mut got: Burst<_> = Burst::new();
    for _ in 0..100 {
        q.rx_burst(PortId::Outside, &mut got, 32);
        if got.len() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(got.len(), 3, "all three frames received");
    for (f, (sec, nsec, data)) in got.iter().zip(&input) {
        assert_eq!(f.data(), &data[..]);
        assert!(f.headroom() >= dataplane::port::HEADROOM);
        assert!(f.capacity() >= 2048, "{}", f.capacity());
        // net_pcap stamps frames with the capture time in microseconds.
        let want = u64::from(*sec) * 1_000_000_000 + u64::from(*nsec) / 1000 * 1000;
        assert_eq!(f.timestamp(), Some(want), "frame {}", data[0]);
    }

    // In-place edits: GRE-style prepend, strip, grow into the tailroom.
    let f = &mut got[0];
    let (room, cap) = (f.headroom(), f.capacity());
    assert!(f.prepend(42));
    assert_eq!((f.headroom(), f.data().len()), (room - 42, 60 + 42));
    assert_eq!(&f.data()[42..], &input[0].2[..]);
    f.data_mut()[..42].fill(0xee);
    assert!(!f.prepend(room), "more than the headroom left");
    assert!(f.adj(42));
    assert_eq!(f.data(), &input[0].2[..]);
    assert!(!f.adj(61), "more than the frame");
    assert!(f.set_len(100) && f.data().len() == 100);
    assert!(!f.set_len(cap + 1), "beyond the capacity");
    assert!(f.set_len(60));

    // A frame the worker originates.
    let mut a = q.alloc().expect("mbuf from the pool");
    assert!(a.data().is_empty() && a.replace(&frame(9, 42)));
    got.push(a);

    // TX: everything taken, written to the outside port's capture.
    assert_eq!(q.tx_burst(PortId::Outside, &mut got), 4);
    assert!(got.is_empty());
    let st = d.stats.device_stats(PortId::Outside).unwrap();
    assert_eq!((st.ipackets, st.opackets, st.rx_multiseg), (3, 4, 0), "{st:?}");
    // The inside port received nothing (its capture is empty).
    assert!(q.rx_burst(PortId::Inside, &mut got, 32) == 0 && got.is_empty());
    // Deferred bulk free (`rte_pktmbuf_free_bulk` once MAX_BURST frames are
    // pending, and before the next receive or allocation): every mbuf goes
    // back to the pool, none twice; the pool then hands out as many again.
    let mut held = Vec::new();
    while let Some(m) = q.alloc() {
        held.push(m);
    }
    let total = held.len();
    assert!(total > 2 * dataplane::port::MAX_BURST, "{total} mbufs");
    for m in held.drain(..) {
        q.free(m);
    }
    while let Some(m) = q.alloc() {
        held.push(m);
    }
    assert_eq!(held.len(), total, "the pool got every mbuf back");
    // Frames still pending when the queues go are freed with them.
    for m in held.drain(..) {
        q.free(m);
    }

    // The ports close (and net_pcap finishes its files) when the last
    // queue set and the stats reader are gone.
    drop(q);
    drop(d);
    let out = std::fs::read(&tx).unwrap();
    let want: Vec<&[u8]> = vec![&input[0].2, &input[1].2, &input[2].2];
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= out.len() {
        let len = u32::from_le_bytes(out[off + 8..off + 12].try_into().unwrap()) as usize;
        frames.push(&out[off + 16..off + 16 + len]);
        off += 16 + len;
    }
    assert_eq!(frames.len(), 4);
    assert_eq!(&frames[..3], &want[..]);
    assert_eq!(frames[3], &frame(9, 42)[..]);
}
