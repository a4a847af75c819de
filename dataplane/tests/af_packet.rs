//! The AF_PACKET backend against real peers: veth pairs in a network
//! namespace made by each test, the backend on one end, and on the other a
//! plain AF_PACKET socket (or the kernel's own UDP) as an independent peer.
//!
//! Root only, with `ip`, `sysctl` and `ethtool` on PATH. Without them or
//! `ip netns`, each test prints why and skips; with `MOAT_E2E=1` it fails
//! instead. Every namespace is deleted on the way
//! out (a guard's Drop), traffic stays inside it, and every wait is bounded.
#![cfg(target_os = "linux")]

mod common;

use dataplane::port::af_packet::{fanout, open, AfPacketConfig, AfPacketFrame, AfPacketQueues};
use dataplane::port::{Burst, Csum, Frame, PortId, Queues, HEADROOM, MAX_BURST};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(3);
/// EtherType of the test frames (IEEE local experimental).
const TEST_ETHERTYPE: u16 = 0x88b5;
/// A unicast MAC that is nobody's: frames to it reach the backend only
/// because it is promiscuous, and no kernel stack answers them.
const NOBODY: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

// ---------------------------------------------------------------- set-up

/// The tools every test here runs: `ip` (namespaces, veths), `sysctl`
/// (inside the namespace) and `ethtool` (veth offloads off).
const TOOLS: [&str; 3] = ["ip", "sysctl", "ethtool"];

/// True when the environment can run these tests (root, `ip netns`, the
/// tools on PATH); otherwise prints why (or panics under MOAT_E2E=1).
fn ready(test: &str) -> bool {
    common::require_netns(&format!("af_packet::{test}"), &TOOLS, "iproute2 procps ethtool")
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with two veth pairs: `us[p]` (the backend's end of
/// port `p`) and `peer[p]`. Deleted on drop.
struct Topo {
    ns: String,
    us: [String; 2],
    peer: [String; 2],
}

impl Topo {
    fn new(tag: &str, offloads: bool) -> Topo {
        let pid = std::process::id();
        let ns = format!("moat-afp-{pid}-{tag}");
        sh(&["ip", "netns", "add", &ns]);
        let t = Topo {
            us: [format!("o{tag}{pid}a"), format!("i{tag}{pid}a")],
            peer: [format!("o{tag}{pid}b"), format!("i{tag}{pid}b")],
            ns,
        };
        let ns = t.ns.as_str();
        // No IPv6 autoconfiguration chatter (router solicitations, MLD).
        sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        for p in 0..2 {
            sh(&[
                "ip", "-n", ns, "link", "add", "name", &t.us[p], "type", "veth", "peer", "name", &t.peer[p],
            ]);
        }
        for dev in t.us.iter().chain(&t.peer) {
            if !offloads {
                let off = ["rx", "off", "tx", "off", "tso", "off", "gso", "off", "gro", "off"];
                sh(&[&["ip", "netns", "exec", ns, "ethtool", "-K", dev][..], &off].concat());
            }
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        t
    }

    fn mac(&self, dev: &str) -> [u8; 6] {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-br", "link", "show", "dev", dev])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let field = text.split_whitespace().nth(2).expect("mac in `ip -br link`");
        let mut mac = [0; 6];
        for (m, h) in mac.iter_mut().zip(field.split(':')) {
            *m = u8::from_str_radix(h, 16).unwrap();
        }
        mac
    }

    fn config(&self, workers: usize) -> AfPacketConfig {
        AfPacketConfig {
            outside: self.us[0].clone(),
            inside: self.us[1].clone(),
            workers,
            ..Default::default()
        }
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// The calling thread inside a namespace until dropped (sockets made
/// meanwhile stay in it).
struct InNetns {
    home: File,
}

impl InNetns {
    fn enter(ns: &str) -> InNetns {
        let home = File::open("/proc/thread-self/ns/net").unwrap();
        let target = File::open(format!("/var/run/netns/{ns}")).unwrap();
        // SAFETY: setns with a valid namespace fd; it changes only the
        // calling thread's network namespace.
        let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
        InNetns { home }
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // SAFETY: as in `enter`, back to the thread's original namespace.
        unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// The independent peer: a plain AF_PACKET socket on one interface, that
/// ignores its own output.
struct Peer {
    fd: OwnedFd,
}

impl Peer {
    fn open(dev: &str) -> Peer {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain syscall with integer arguments.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(dev).unwrap();
        // SAFETY: a NUL-terminated name alive across the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(ifindex > 0, "{dev}: no such interface");
        // SAFETY: sockaddr_ll is plain data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: `sll` is a valid sockaddr_ll of `len` bytes.
        let rc = unsafe { libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), len) };
        assert_eq!(rc, 0, "bind {dev}: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        // SAFETY: an int option, pointer and size of `one`.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&one as *const i32).cast(),
                4,
            )
        };
        assert_eq!(rc, 0);
        Peer { fd }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is valid for reads of its length during the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "send: {}", std::io::Error::last_os_error());
    }

    /// The next test frame received (others are skipped), within [`WAIT`].
    fn recv(&self) -> Option<Vec<u8>> {
        let end = Instant::now() + WAIT;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < end {
            // SAFETY: `buf` is writable for its length; non-blocking call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            let f = &buf[..n as usize];
            if is_test_frame(f) {
                return Some(f.to_vec());
            }
        }
        None
    }
}

// ---------------------------------------------------------------- frames

fn is_test_frame(f: &[u8]) -> bool {
    f.windows(4).any(|w| w == b"MOAT")
}

/// A frame of `len` bytes (>= 24) to [`NOBODY`] with the test EtherType,
/// `MOAT`, `seq`, then a pattern.
fn test_frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = [
        &NOBODY[..],
        &PEER,
        &TEST_ETHERTYPE.to_be_bytes(),
        b"MOAT",
        &seq.to_be_bytes(),
    ]
    .concat();
    f.extend((f.len()..len).map(|i| (i as u32 ^ seq) as u8));
    f
}

fn udp_frame(src: IpAddr, seq: u32) -> Vec<u8> {
    let payload = [&b"MOAT"[..], &seq.to_be_bytes()].concat();
    let udp = [
        &[0x30, 0x39, 0, 9][..],
        &(8 + payload.len() as u16).to_be_bytes(),
        &[0, 0],
        &payload,
    ]
    .concat();
    let (ty, l3): (u16, Vec<u8>) = match src {
        IpAddr::V4(s) => {
            let tot = (20 + udp.len() as u16).to_be_bytes();
            let ip = [
                &[0x45, 0, tot[0], tot[1], 0, 0, 0x40, 0, 64, 17, 0, 0][..],
                &s.octets(),
                &[10, 9, 1, 1],
            ];
            (0x0800, ip.concat())
        }
        IpAddr::V6(s) => {
            let plen = (udp.len() as u16).to_be_bytes();
            let dst = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets();
            (
                0x86dd,
                [&[0x60, 0, 0, 0, plen[0], plen[1], 17, 64][..], &s.octets(), &dst].concat(),
            )
        }
    };
    [&NOBODY[..], &PEER, &ty.to_be_bytes(), &l3, &udp].concat()
}

fn arp_frame(seq: u32) -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&PEER);
    arp.extend_from_slice(&[10, 9, 0, 200, 0, 0, 0, 0, 0, 0, 10, 9, 0, 1]);
    [&[0xff; 6][..], &PEER, &[0x08, 0x06], &arp, b"MOAT", &seq.to_be_bytes()].concat()
}

/// Test frames received on `port` until `want` arrived or [`WAIT`] passed;
/// anything else received is freed.
fn collect(q: &mut AfPacketQueues, port: PortId, want: usize) -> Vec<AfPacketFrame> {
    let mut got = Vec::new();
    let end = Instant::now() + WAIT;
    let mut burst = Burst::new();
    while got.len() < want && Instant::now() < end {
        if q.rx_burst(port, &mut burst, MAX_BURST) == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        for f in burst.drain(..) {
            if is_test_frame(f.data()) {
                got.push(f);
            } else {
                q.free(f);
            }
        }
    }
    got
}

fn free_all(q: &mut AfPacketQueues, frames: Vec<AfPacketFrame>) {
    for f in frames {
        q.free(f);
    }
}

fn send_burst(q: &mut AfPacketQueues, port: PortId, frames: Vec<AfPacketFrame>) {
    let n = frames.len();
    let mut b: Burst<AfPacketFrame> = frames.into_iter().collect();
    assert_eq!(q.tx_burst(port, &mut b), n, "tx_burst left {} frames", b.len());
}

fn heap_frame(q: &mut AfPacketQueues, bytes: &[u8]) -> AfPacketFrame {
    let mut f = q.alloc().expect("pool frame");
    assert!(f.replace(bytes));
    f
}

// ---------------------------------------------------------------- tests

#[test]
fn rx_frames_arrive_byte_exact_in_the_ring() {
    if !ready("rx_frames_arrive_byte_exact_in_the_ring") {
        return;
    }
    let topo = Topo::new("r", false);
    let _ns = InNetns::enter(&topo.ns);
    let mut qs = open(&topo.config(1)).expect("open");
    let q = &mut qs[0];
    assert_eq!(q.mac(PortId::Outside), Some(topo.mac(&topo.us[0])));
    assert_eq!(q.mac(PortId::Inside), Some(topo.mac(&topo.us[1])));
    let peer = Peer::open(&topo.peer[0]);

    let mut sent: Vec<Vec<u8>> = [24, 60, 61, 64, 100, 128, 500, 1000, 1514]
        .iter()
        .zip(0..)
        .map(|(&l, s)| test_frame(s, l))
        .collect();
    // An 802.1Q-tagged frame: the kernel moves the tag to metadata; the
    // backend writes it back.
    let mut tagged = test_frame(99, 80);
    tagged.splice(12..12, [0x81, 0x00, 0x20, 0x05]);
    sent.push(tagged);
    for f in &sent {
        peer.send(f);
    }
    let got = collect(q, PortId::Outside, sent.len());
    assert_eq!(got.len(), sent.len());
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(g.data(), &s[..]);
        assert!(g.headroom() >= HEADROOM, "headroom {}", g.headroom());
        assert!(matches!(g, AfPacketFrame::Ring(_)), "not in the ring");
        assert_eq!(g.csum(), Csum::Unknown);
    }
    assert_eq!(q.frames_out(PortId::Outside), sent.len() as u64);
    free_all(q, got);
    assert_eq!(q.frames_out(PortId::Outside), 0);
    assert!(!q.rx_done(PortId::Outside));
    assert_eq!(
        q.stats(PortId::Outside).rx_truncated + q.stats(PortId::Outside).rx_malformed,
        0
    );
}

#[test]
fn tx_frames_arrive_byte_exact_and_are_not_received_back() {
    if !ready("tx_frames_arrive_byte_exact_and_are_not_received_back") {
        return;
    }
    let topo = Topo::new("t", false);
    let _ns = InNetns::enter(&topo.ns);
    let mut qs = open(&topo.config(1)).expect("open");
    let q = &mut qs[0];
    for port in PortId::ALL {
        let peer = Peer::open(&topo.peer[port.index()]);
        let sent: Vec<Vec<u8>> = (0..40).map(|s| test_frame(s, 60 + 37 * s as usize)).collect();
        let frames = sent.iter().map(|b| heap_frame(q, b)).collect();
        send_burst(q, port, frames);
        for s in &sent {
            assert_eq!(peer.recv().as_deref(), Some(&s[..]), "{port:?}");
        }
    }
    // Our own output never comes back to our rings, nor does the kernel's.
    kernel_sends_out_of(&topo, &topo.us[0], &Peer::open(&topo.peer[0]), 1);
    std::thread::sleep(Duration::from_millis(50));
    for port in PortId::ALL {
        let echoed = collect_for(q, port, Duration::from_millis(100));
        assert_eq!(echoed, 0, "{port:?} received our own output");
        assert_eq!(q.stats(port).tx_packets, 40);
    }
    // Every heap frame came back to the pool.
    let all: Vec<_> = (0..dataplane::port::af_packet::POOL_FRAMES)
        .map(|_| q.alloc().expect("pool refilled"))
        .collect();
    free_all(q, all);
}

/// Makes the namespace's kernel send a UDP datagram out of `us` (our
/// interface) to `peer`, and checks that the peer got it: outgoing traffic
/// that is not ours, which the backend must not receive either.
fn kernel_sends_out_of(topo: &Topo, us: &str, peer: &Peer, net: u8) {
    let (ours, theirs) = (format!("10.98.{net}.1"), format!("10.98.{net}.2"));
    sh(&["ip", "-n", &topo.ns, "addr", "add", &format!("{ours}/24"), "dev", us]);
    let mac = PEER.map(|b| format!("{b:02x}")).join(":");
    sh(&[
        "ip",
        "-n",
        &topo.ns,
        "neigh",
        "add",
        &theirs,
        "lladdr",
        &mac,
        "dev",
        us,
        "nud",
        "permanent",
    ]);
    let sock = UdpSocket::bind(format!("{ours}:0")).unwrap();
    sock.send_to(b"MOAT from the kernel", format!("{theirs}:9")).unwrap();
    let got = peer.recv().expect("the kernel's datagram at the peer");
    assert!(got.ends_with(b"MOAT from the kernel"));
}

/// How many test frames arrive on `port` within `d` (freed at once).
fn collect_for(q: &mut AfPacketQueues, port: PortId, d: Duration) -> usize {
    let end = Instant::now() + d;
    let mut n = 0;
    let mut burst = Burst::new();
    while Instant::now() < end {
        q.rx_burst(port, &mut burst, MAX_BURST);
        for f in burst.drain(..) {
            n += usize::from(is_test_frame(f.data()));
            q.free(f);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    n
}

#[test]
fn ring_frame_grown_in_its_headroom_goes_out_the_other_port_intact() {
    if !ready("ring_frame_grown_in_its_headroom_goes_out_the_other_port_intact") {
        return;
    }
    let topo = Topo::new("g", false);
    let _ns = InNetns::enter(&topo.ns);
    let mut qs = open(&topo.config(1)).expect("open");
    let q = &mut qs[0];
    let (outside, inside) = (Peer::open(&topo.peer[0]), Peer::open(&topo.peer[1]));
    let sent: Vec<Vec<u8>> = (0..32).map(|s| test_frame(s, 60 + 45 * s as usize)).collect();
    for f in &sent {
        outside.send(f);
    }
    let mut got = collect(q, PortId::Outside, sent.len());
    assert_eq!(got.len(), sent.len());
    // GRE-like: 42 bytes of outer headers prepended in place.
    let outer: Vec<u8> = (0..42).map(|i| 0xa0 ^ i as u8).collect();
    for f in &mut got {
        assert!(f.prepend(outer.len()));
        f.data_mut()[..outer.len()].copy_from_slice(&outer);
    }
    send_burst(q, PortId::Inside, got);
    for s in &sent {
        let want = [&outer[..], s].concat();
        assert_eq!(inside.recv().as_deref(), Some(&want[..]));
    }
    assert_eq!(q.frames_out(PortId::Outside), 0, "sent frames released their blocks");

    // A reply longer than the frame's tailroom still fits, using headroom,
    // and goes back out the port it came in on.
    // Frames sent back-to-back share a block; all but the block's last
    // have their slot end at the next packet.
    for s in 0..8 {
        outside.send(&test_frame(100 + s, 60));
    }
    let mut got = collect(q, PortId::Outside, 8);
    let reply = test_frame(8, 60 + 40);
    let i = got
        .iter()
        .position(|f| f.capacity() < reply.len())
        .expect("a frame with little tailroom");
    let mut f = got.swap_remove(i);
    free_all(q, got);
    assert!(f.replace(&reply));
    assert_eq!(f.data(), &reply[..]);
    let peer_out = Peer::open(&topo.peer[0]);
    send_burst(q, PortId::Outside, vec![f]);
    assert_eq!(peer_out.recv().as_deref(), Some(&reply[..]));
}

#[test]
fn ring_blocks_go_back_to_the_kernel_whatever_the_return_order() {
    if !ready("ring_blocks_go_back_to_the_kernel_whatever_the_return_order") {
        return;
    }
    let topo = Topo::new("b", false);
    let _ns = InNetns::enter(&topo.ns);
    // 6 x 16 KiB: the 300 frames of 1000 bytes below pass through it
    // about 3.5 times over.
    let cfg = AfPacketConfig {
        block_size: 16 * 1024,
        block_count: 6,
        ..topo.config(1)
    };
    let mut qs = open(&cfg).expect("open");
    let q = &mut qs[0];
    let (outside, inside) = (Peer::open(&topo.peer[0]), Peer::open(&topo.peer[1]));
    let mut held: Vec<AfPacketFrame> = Vec::new();
    let mut seq = 0u32;
    let mut forwarded = Vec::new();
    for _batch in 0..25 {
        let frames: Vec<Vec<u8>> = (0..12).map(|i| test_frame(seq + i, 1000)).collect();
        seq += 12;
        for f in &frames {
            outside.send(f);
        }
        let got = collect(q, PortId::Outside, frames.len());
        assert_eq!(got.len(), frames.len(), "ring stalled at frame {seq}");
        for (g, f) in got.iter().zip(&frames) {
            assert_eq!(g.data(), &f[..]);
        }
        // Give back the previous batch last-first, every third frame by
        // sending it on the other port, while this batch is still held.
        let mut out = Burst::new();
        for (i, f) in std::mem::replace(&mut held, got).into_iter().rev().enumerate() {
            if i % 3 == 0 {
                forwarded.push(f.data().to_vec());
                out.push(f);
            } else {
                q.free(f);
            }
        }
        let n = out.len();
        assert_eq!(q.tx_burst(PortId::Inside, &mut out), n);
        for f in forwarded.drain(..) {
            assert_eq!(inside.recv().as_deref(), Some(&f[..]));
        }
    }
    free_all(q, held);
    assert_eq!(q.frames_out(PortId::Outside), 0);
    let (_, drops) = q.kernel_stats(PortId::Outside).unwrap();
    assert_eq!(drops, 0);
}

#[test]
fn fanout_keeps_each_source_on_its_worker() {
    if !ready("fanout_keeps_each_source_on_its_worker") {
        return;
    }
    let topo = Topo::new("f", false);
    let _ns = InNetns::enter(&topo.ns);
    let mut qs = open(&topo.config(2)).expect("open");
    assert_eq!(qs.len(), 2);
    let peer = Peer::open(&topo.peer[0]);
    let v4 = (1..=64u8).map(|i| IpAddr::V4(Ipv4Addr::new(10, 9, i / 8, i)));
    let v6 = (1..=16u16).map(|i| IpAddr::V6(Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, i * 977, i)));
    let sources: Vec<IpAddr> = v4.chain(v6).collect();
    let mut seq = 0;
    for _round in 0..3 {
        for &s in &sources {
            peer.send(&udp_frame(s, seq));
            seq += 1;
        }
        peer.send(&arp_frame(seq));
        seq += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = seq as usize;
    let mut seen: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
    let end = Instant::now() + WAIT;
    while seen.iter().map(Vec::len).sum::<usize>() < total && Instant::now() < end {
        for (w, q) in qs.iter_mut().enumerate() {
            let frames = collect_for_frames(q, PortId::Outside);
            seen[w].extend(frames);
        }
    }
    let mut placed = std::collections::HashMap::new();
    for (w, frames) in seen.iter().enumerate() {
        for f in frames {
            let src = match u16::from_be_bytes([f[12], f[13]]) {
                0x0800 => IpAddr::V4(Ipv4Addr::new(f[26], f[27], f[28], f[29])),
                0x86dd => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap())),
                _ => {
                    assert_eq!(w, 0, "non-IP frames go to worker 0");
                    continue;
                }
            };
            assert_eq!(w, fanout::worker_for(src, 2), "{src} on the wrong worker");
            assert_eq!(*placed.entry(src).or_insert(w), w, "{src} on both workers");
        }
    }
    assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), total, "frames lost");
    assert_eq!(placed.len(), sources.len());
    for w in 0..2 {
        assert!(
            placed.values().filter(|&&x| x == w).count() > 8,
            "worker {w} got too few sources"
        );
    }

    // Neither member of the group receives what either sends, nor what the
    // kernel sends.
    kernel_sends_out_of(&topo, &topo.us[0], &peer, 2);
    for q in qs.iter_mut() {
        let frames = (0..4).map(|s| heap_frame(q, &test_frame(1000 + s, 80))).collect();
        send_burst(q, PortId::Outside, frames);
    }
    for _ in 0..8 {
        assert!(peer.recv().is_some_and(|f| f.starts_with(&NOBODY)));
    }
    for q in qs.iter_mut() {
        assert_eq!(
            collect_for(q, PortId::Outside, Duration::from_millis(100)),
            0,
            "own output received"
        );
    }
}

/// The test frames received in one burst, copied out (the frames freed).
fn collect_for_frames(q: &mut AfPacketQueues, port: PortId) -> Vec<Vec<u8>> {
    let mut burst = Burst::new();
    if q.rx_burst(port, &mut burst, MAX_BURST) == 0 {
        std::thread::sleep(Duration::from_micros(100));
    }
    let mut out = Vec::new();
    for f in burst.drain(..) {
        if is_test_frame(f.data()) {
            out.push(f.data().to_vec());
        }
        q.free(f);
    }
    out
}

#[test]
fn udp_from_a_kernel_with_tx_checksum_offload_is_partial() {
    if !ready("udp_from_a_kernel_with_tx_checksum_offload_is_partial") {
        return;
    }
    // Offloads left on (veth's default).
    let topo = Topo::new("c", true);
    let _ns = InNetns::enter(&topo.ns);
    let mut qs = open(&topo.config(1)).expect("open");
    let q = &mut qs[0];
    let (us, peer) = (&topo.us[0], &topo.peer[0]);
    let mac = topo.mac(us).map(|b| format!("{b:02x}")).join(":");
    sh(&["ip", "-n", &topo.ns, "addr", "add", "10.99.0.2/24", "dev", peer]);
    sh(&[
        "ip",
        "-n",
        &topo.ns,
        "neigh",
        "add",
        "10.99.0.1",
        "lladdr",
        &mac,
        "dev",
        peer,
        "nud",
        "permanent",
    ]);
    let sock = UdpSocket::bind("10.99.0.2:0").unwrap();

    sock.send_to(b"MOAT offload on", "10.99.0.1:9").unwrap();
    let got = collect(q, PortId::Outside, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(u16::from_be_bytes([got[0].data()[12], got[0].data()[13]]), 0x0800);
    assert_eq!(got[0].csum(), Csum::Partial);
    free_all(q, got);

    // With the peer computing checksums itself, the kernel has nothing
    // unfinished to report: veth marks such packets as verified when the
    // receiving end has rx checksumming on.
    sh(&["ip", "netns", "exec", &topo.ns, "ethtool", "-K", peer, "tx", "off"]);
    sock.send_to(b"MOAT offload off", "10.99.0.1:9").unwrap();
    let got = collect(q, PortId::Outside, 1);
    assert_eq!(got.len(), 1);
    assert_ne!(got[0].csum(), Csum::Partial);
    eprintln!("veth, peer tx checksum offload off: {:?}", got[0].csum());
    free_all(q, got);
}

#[test]
fn a_held_block_is_never_overwritten_the_kernel_drops_instead() {
    if !ready("a_held_block_is_never_overwritten_the_kernel_drops_instead") {
        return;
    }
    let topo = Topo::new("h", false);
    let _ns = InNetns::enter(&topo.ns);
    let cfg = AfPacketConfig {
        block_size: 16 * 1024,
        block_count: 3,
        ..topo.config(1)
    };
    let mut qs = open(&cfg).expect("open");
    let q = &mut qs[0];
    let outside = Peer::open(&topo.peer[0]);
    let batch = |k: u32| -> Vec<Vec<u8>> { (0..12).map(|i| test_frame(k * 12 + i, 1000)).collect() };
    let first = batch(0);
    for f in &first {
        outside.send(f);
    }
    let held = collect(q, PortId::Outside, first.len());
    assert_eq!(held.len(), first.len());
    // Far more than the other two blocks hold, while the first is held.
    let mut arrived = 0;
    for k in 1..10 {
        for f in &batch(k) {
            outside.send(f);
        }
        arrived += collect_for(q, PortId::Outside, Duration::from_millis(30));
    }
    for (h, f) in held.iter().zip(&first) {
        assert_eq!(h.data(), &f[..], "a held frame was overwritten");
    }
    let (_, drops) = q.kernel_stats(PortId::Outside).unwrap();
    assert!(drops > 0 && arrived < 9 * 12, "arrived {arrived}, dropped {drops}");
    free_all(q, held);
    // Released, the ring delivers again. Stragglers of the flood still in
    // flight are drained (and counted) first. The kernel may still drop a
    // frame of the next batch while it thaws the frozen queue (seen once in
    // CI: 11 of 12), so up to three batches are offered until one arrives
    // whole; what matters is that delivery resumes and nothing is handed
    // out twice.
    let drained = collect_for(q, PortId::Outside, Duration::from_millis(50));
    let mut again = 0;
    let mut whole = false;
    for k in 20..23 {
        for f in &batch(k) {
            outside.send(f);
        }
        let got = collect(q, PortId::Outside, 12);
        again += got.len();
        whole = got.len() == 12;
        free_all(q, got);
        if whole {
            break;
        }
    }
    assert!(
        whole,
        "no batch of 12 arrived whole after the block was released ({again} frames)"
    );
    // Frames are never handed out twice: every frame counted once.
    assert_eq!(
        q.stats(PortId::Outside).rx_packets,
        (12 + arrived + drained + again) as u64
    );
}
