//! End to end: an independent GRE implementation at the origin accepts what
//! `moat scrub` writes and delivers it to a real server.
//!
//! `tests/e2e/ovs-origin.sh` builds two network namespaces joined by a veth
//! pair: Moat's side (only a veth end to inject from) and the origin, whose
//! GRE endpoint is Open vSwitch's userspace datapath (the CI kernel has no GRE
//! module) with the VIPs on its internal port and a UDP server on port 7777.
//! The test writes legitimate traffic with `moat gen`, cleans it with
//! `moat scrub --config examples/e2e-origin.toml`, replays the clean capture
//! out of Moat's veth with `tcpreplay`, and checks that
//! - every game datagram ("GAME…", IPv4 and IPv6) in the clean capture reached
//!   the server, from the client's address, byte for byte;
//! - OVS's GRE port received every frame replayed (tunnel pop with key 42);
//! - the origin's kernel answered none of them with ICMP unreachable (the GRE
//!   frames are OVS's, not the kernel's).
//!
//! Needs root, `ip netns`, Open vSwitch, tcpreplay and python3. Without them
//! the test prints why and passes, unless `MOAT_E2E=1` (CI), where it fails.
//! Everything it creates (namespaces, private OVS daemons, the server) is
//! removed by a drop guard, on failure too. Only addresses inside those
//! namespaces are targets, and the replay is bounded by the capture's few
//! hundred frames and a timeout.

mod common;

use std::collections::HashMap;

use common::{can_run, cmd, missing_prerequisite, root};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dataplane::pcap::PcapReader;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// Tools the test runs, looked up on `PATH`.
const TOOLS: [&str; 10] = [
    "ip",
    "sysctl",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "tcpreplay",
    "python3",
];
/// The GRE key of origin "web" in examples/e2e-origin.toml.
const GRE_KEY: u32 = 42;
/// br-phy's MAC: origin "web"'s `mac` in examples/e2e-origin.toml.
const BR_PHY_MAC: &str = "02:00:00:00:77:02";
const UDP_PORT: u16 = 7777;
/// Replay rate: OVS reads the veth through an AF_PACKET socket whose buffer
/// holds a few hundred frames; `--topspeed` (300 kpps here) overflowed it,
/// 50 kpps did not. 2 kpps leaves a wide margin on a loaded CI machine and
/// still replays the ~800 frames in under half a second.
const REPLAY_PPS: &str = "2000";

/// Runs `c` and returns its output; panics with stdout and stderr if it fails.
fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The namespaces and the origin's daemons; dropping it tears them down
/// (`ovs-origin.sh down` is idempotent, so this is safe after a partial `up`).
struct Topology {
    script: PathBuf,
    state: PathBuf,
    moat_ns: String,
    origin_ns: String,
}

impl Topology {
    fn up(state: &Path) -> Topology {
        let pid = std::process::id();
        let t = Topology {
            script: root().join("tests/e2e/ovs-origin.sh"),
            state: state.to_path_buf(),
            moat_ns: format!("moat-e2e-{pid}-mo"),
            origin_ns: format!("moat-e2e-{pid}-or"),
        };
        // The guard exists before anything is created: a failing `up` is
        // cleaned up too.
        run(t.script_cmd("up").args([BR_PHY_MAC, &GRE_KEY.to_string()]));
        t
    }

    fn script_cmd(&self, verb: &str) -> Command {
        let mut c = cmd("bash");
        c.arg(&self.script)
            .arg(verb)
            .arg(&self.state)
            .args([&self.moat_ns, &self.origin_ns]);
        c
    }

    /// A command run inside namespace `ns`.
    fn in_ns(&self, ns: &str, program: &str) -> Command {
        let mut c = cmd("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// An OVS client command talking to the private daemons.
    fn ovs(&self, program: &str) -> Command {
        let mut c = cmd(program);
        c.env("OVS_RUNDIR", &self.state);
        c
    }

    /// Packets OVS received on br-int's GRE port (`rx pkts=N` of
    /// `ovs-ofctl dump-ports br-int gre0`), i.e. decapsulated frames.
    fn gre_rx_packets(&self) -> u64 {
        let out = run(self.ovs("ovs-ofctl").args(["dump-ports", "br-int", "gre0"]));
        let text = String::from_utf8_lossy(&out.stdout);
        let n = text.split("rx pkts=").nth(1).and_then(|r| r.split(',').next());
        n.and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no rx pkts in dump-ports output:\n{text}"))
    }

    /// `Icmp: OutDestUnreachs` of the origin's kernel (/proc/net/snmp is
    /// per network namespace).
    fn origin_icmp_unreachables_sent(&self) -> u64 {
        let out = run(self.in_ns(&self.origin_ns, "cat").arg("/proc/net/snmp"));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut icmp = text.lines().filter(|l| l.starts_with("Icmp: "));
        let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
        let col = names.split_whitespace().position(|n| n == "OutDestUnreachs").unwrap();
        values.split_whitespace().nth(col).unwrap().parse().unwrap()
    }

    /// The server's log: (source, payload) → times received.
    fn received(&self) -> HashMap<(IpAddr, Vec<u8>), usize> {
        let log = std::fs::read_to_string(self.state.join("udp-server.log")).unwrap_or_default();
        let mut got = HashMap::new();
        for line in log.lines() {
            let mut f = line.split(' ');
            let (Some(src), Some(_port), Some(hex)) = (f.next(), f.next(), f.next()) else {
                panic!("bad server log line {line:?}")
            };
            let src: IpAddr = src.parse().unwrap_or_else(|_| panic!("bad source in {line:?}"));
            *got.entry((src, hex::decode(hex).unwrap())).or_default() += 1;
        }
        got
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            common::netns::print_tails(&self.state, &["ovs-vswitchd.log", "udp-server.out"], 20);
        }
        match self.script_cmd("down").output() {
            Ok(o) if o.status.success() => {}
            r => eprintln!("ovs-origin.sh down failed: {r:?}"),
        }
    }
}

/// What `moat scrub` wrote: the number of frames and the game datagrams
/// inside them, (inner source, payload) → count. Each frame is checked to be
/// IPv4 GRE to the origin with key 42 (RFC 2890 §2.1) on the way.
fn clean_capture(path: &Path) -> (u64, HashMap<(IpAddr, Vec<u8>), usize>) {
    let mut r = PcapReader::open(path).unwrap();
    let (mut frames, mut games) = (0, HashMap::new());
    while let Some(f) = r.next_frame().unwrap() {
        frames += 1;
        let outer = SlicedPacket::from_ethernet(&f.data).expect("outer frame parses");
        let Some(NetSlice::Ipv4(ip)) = outer.net else {
            panic!("outer is not IPv4")
        };
        assert_eq!(ip.header().protocol(), etherparse::IpNumber::GRE);
        assert_eq!(ip.header().destination_addr().to_string(), "192.168.77.2");
        let gre = ip.payload().payload;
        // K bit set, key in the 4 bytes after the 4-byte base header.
        assert!(gre.len() >= 8 && gre[0] & 0x20 != 0, "GRE header without key");
        assert_eq!(u32::from_be_bytes([gre[4], gre[5], gre[6], gre[7]]), GRE_KEY);
        let inner = SlicedPacket::from_ip(&gre[8..]).expect("inner packet parses");
        let src = match &inner.net {
            Some(NetSlice::Ipv4(i)) => IpAddr::V4(i.header().source_addr()),
            Some(NetSlice::Ipv6(i)) => IpAddr::V6(i.header().source_addr()),
            _ => panic!("inner is not IP"),
        };
        if let Some(TransportSlice::Udp(u)) = inner.transport {
            if u.destination_port() == UDP_PORT && u.payload().starts_with(b"GAME") {
                *games.entry((src, u.payload().to_vec())).or_default() += 1;
            }
        }
    }
    (frames, games)
}

fn moat(args: &[&str]) {
    run(Command::new(env!("CARGO_BIN_EXE_moat")).args(args));
}

#[test]
fn ovs_userspace_gre_origin_accepts_scrub_output_and_delivers_game_datagrams() {
    if !can_run(
        "end-to-end GRE test",
        missing_prerequisite(&TOOLS, "openvswitch-switch tcpreplay iproute2 procps python3"),
    ) {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (input, clean) = (dir.path().join("in.pcap"), dir.path().join("clean.pcap"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let secret = s(&root().join("examples/cluster.secret"));
    let config = s(&root().join("examples/e2e-origin.toml"));
    moat(&[
        "gen",
        "--profile",
        "legit",
        "--count",
        "3000",
        "--secret-file",
        &secret,
        "--out",
        &s(&input),
    ]);
    moat(&[
        "scrub",
        "--config",
        &config,
        "--in",
        &s(&input),
        "--out",
        &s(&clean),
        "--quiet",
    ]);
    let (frames, expected) = clean_capture(&clean);
    let games: usize = expected.values().sum();
    assert!(
        games > 100 && expected.keys().any(|(a, _)| a.is_ipv6()),
        "too few game datagrams to show anything: {games}"
    );

    let t0 = Instant::now();
    let topo = Topology::up(&dir.path().join("ovs"));
    let set_up = t0.elapsed();
    let replay = run(topo
        .in_ns(&topo.moat_ns, "timeout")
        .args(["60", "tcpreplay", "-i", "veth-mo", "--pps", REPLAY_PPS])
        .arg(&clean));
    let report = String::from_utf8_lossy(&replay.stdout);
    let sent = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Successful packets:"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(sent, Some(frames), "tcpreplay did not send every frame:\n{report}");

    // The server logs asynchronously: wait until it has them all (or 10 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = topo.received();
    while got.values().sum::<usize>() < games && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        got = topo.received();
    }
    let missing: Vec<_> = expected.iter().filter(|(k, n)| got.get(*k) != Some(*n)).collect();
    assert!(
        missing.is_empty() && got.len() == expected.len(),
        "{} of {games} game datagrams not delivered as sent (got {}), e.g. {:?}",
        missing.len(),
        got.values().sum::<usize>(),
        missing.first()
    );
    // Tunnel port counters follow the datapath's flow statistics, which OVS's
    // revalidator threads push about every 500 ms: poll them too.
    let mut popped = topo.gre_rx_packets();
    while popped < frames && Instant::now() < deadline + Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
        popped = topo.gre_rx_packets();
    }
    assert_eq!(popped, frames, "OVS's GRE port did not pop every frame");
    assert_eq!(
        topo.origin_icmp_unreachables_sent(),
        0,
        "the origin's kernel answered GRE frames"
    );
    eprintln!(
        "e2e GRE: {frames} frames replayed, {games} game datagrams delivered ({} IPv6); \
         namespaces and OVS up in {:.1} s, whole test {:.1} s",
        expected.keys().filter(|(a, _)| a.is_ipv6()).count(),
        set_up.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
