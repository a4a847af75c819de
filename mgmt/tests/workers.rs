//! `moat run` with four workers (issue 10: "a node must run with as many
//! workers as it has cores"; a DPDK-only mbufs check refused more than two
//! on every backend):
//!
//! - on the memory backend, each worker generating its own traffic, every
//!   worker receives and passes packets within `--duration 2`;
//! - on AF_PACKET, between two network namespaces the test builds (Moat's
//!   `out0`/`in0` and a peer holding the other ends), a bounded
//!   `hping3 --udp --rand-source` run is spread by PACKET_FANOUT over the
//!   four workers, every one of them passes some of it, and what they pass
//!   arrives GRE-encapsulated on the peer's end of `in0`.
//!
//! The AF_PACKET test needs root, `ip netns`, hping3 and ethtool; without
//! them it says why and passes, unless `MOAT_E2E=1`, where it fails.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{can_run, cmd, missing_prerequisite, root};
use serde_json::Value;

const WORKERS: usize = 4;

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `workers` array of a `--stats` file: (rx, passed) per worker.
fn per_worker(stats: &Value) -> Vec<(u64, u64)> {
    stats["workers"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    (
                        w["rx_packets"].as_u64().unwrap_or(0),
                        w["passed_packets"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read_stats(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

#[test]
fn run_with_four_workers_on_the_memory_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, stats) = (dir.path().join("mem.toml"), dir.path().join("stats.json"));
    let text = fs::read_to_string(root().join("examples/offline.toml"))
        .unwrap()
        .replace("backend = \"pcap\"", "backend = \"memory\"")
        .replace("workers = 1", &format!("workers = {WORKERS}"))
        .replace("cookie_secret_file = \"cluster.secret\"", "");
    assert!(text.contains(&format!("workers = {WORKERS}")) && text.contains("backend = \"memory\""));
    fs::write(
        &cfg,
        format!("{text}\n[dataplane.memory]\npps = 20000\n\n[mgmt]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", describe("moat check", &check));
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["run", "--duration", "2", "--config"])
        .arg(&cfg)
        .arg("--stats")
        .arg(&stats)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", describe("moat run", &out));
    assert!(
        err.contains(&format!("running {WORKERS} worker(s) on the memory backend")),
        "{err}"
    );
    let st = read_stats(&stats);
    let w = per_worker(&st);
    assert_eq!(w.len(), WORKERS, "{st}");
    assert!(
        w.iter().all(|&(rx, passed)| rx > 0 && passed > 0),
        "a worker received or passed nothing: (rx, passed) per worker {w:?}"
    );
    eprintln!("memory backend, {WORKERS} workers, 2 s: (rx, passed) per worker {w:?}");
}

/// Two namespaces and two veth pairs; dropping it deletes them (and with
/// them the veths).
struct Netns {
    moat: String,
    peer: String,
}

impl Netns {
    fn up() -> Netns {
        let prefix = format!("moat-w4-{}-", std::process::id());
        let n = Netns {
            moat: format!("{prefix}m"),
            peer: format!("{prefix}p"),
        };
        // Created before anything else: a failure below is cleaned up too.
        for ns in [&n.moat, &n.peer] {
            n.run(&["ip", "netns", "add", ns]);
            n.run(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        }
        let (m, p) = (n.moat.as_str(), n.peer.as_str());
        n.run(&[
            "ip", "link", "add", "out0", "netns", m, "type", "veth", "peer", "name", "pout", "netns", p,
        ]);
        n.run(&[
            "ip", "link", "add", "in0", "netns", m, "type", "veth", "peer", "name", "pin", "netns", p,
        ]);
        // Moat's namespace sends nothing of its own on its ports (no IPv6:
        // no router solicitations or MLD reports).
        n.run(&[
            "ip",
            "netns",
            "exec",
            m,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        for (ns, ifc) in [(m, "out0"), (m, "in0"), (p, "pout"), (p, "pin")] {
            // AF_PACKET reads frames as they are on the wire: no offloads.
            n.run(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", ifc, "rx", "off", "tx", "off", "tso", "off", "gso", "off",
            ]);
            n.run(&["ip", "netns", "exec", ns, "ip", "link", "set", ifc, "up"]);
        }
        // The peer: a sender on pout behind Moat's outside address (answered
        // by Moat's ARP), the tunnel endpoint on pin (its kernel answers
        // Moat's ARP; it has no GRE and drops what arrives, which
        // `ip -s link` still counts).
        n.run(&[
            "ip",
            "netns",
            "exec",
            p,
            "ip",
            "addr",
            "add",
            "10.30.0.2/24",
            "dev",
            "pout",
        ]);
        n.run(&[
            "ip",
            "netns",
            "exec",
            p,
            "ip",
            "route",
            "add",
            "203.0.113.50/32",
            "via",
            "10.30.0.1",
        ]);
        n.run(&[
            "ip",
            "netns",
            "exec",
            p,
            "ip",
            "addr",
            "add",
            "192.168.78.2/24",
            "dev",
            "pin",
        ]);
        n
    }

    /// Runs `args` (killed after 20 s); it must succeed.
    fn run(&self, args: &[&str]) -> Output {
        let out = Self::exec(args);
        assert!(out.status.success(), "{}", describe(&args.join(" "), &out));
        out
    }

    fn exec(args: &[&str]) -> Output {
        cmd("timeout")
            .arg("20")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Packets received on the peer's end of `in0` (GRE from Moat, ARP).
    fn tunnel_rx(&self) -> u64 {
        let out = self.run(&[
            "ip",
            "netns",
            "exec",
            &self.peer,
            "cat",
            "/sys/class/net/pin/statistics/rx_packets",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.moat, &self.peer] {
            let _ = cmd("ip").args(["netns", "del", ns]).status();
        }
    }
}

const AF_PACKET_CONFIG: &str = r#"
[node]
name = "moat-workers"
state_dir = "state"

[dataplane]
backend = "af_packet"
workers = 4

[[ports]]
name = "outside"
role = "outside"
iface = "out0"
ip = "10.30.0.1/24"

[[ports]]
name = "inside"
role = "inside"
iface = "in0"
ip = "192.168.78.1/24"

[[origins]]
name = "game"
tunnel_src = "192.168.78.1"
tunnel_dst = "192.168.78.2"

[[services]]
name = "game"
vip = "203.0.113.50"
origin = "game"
allow = ["udp/7777"]

[mgmt]
listen = "127.0.0.1:0"
"#;

#[test]
fn run_with_four_workers_on_af_packet() {
    if !can_run(
        "four-worker AF_PACKET test",
        missing_prerequisite(&["ip", "hping3", "ethtool", "timeout"], "iproute2 hping3 ethtool"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg: PathBuf = dir.path().join("af_packet.toml");
    let stats = dir.path().join("stats.json");
    fs::write(&cfg, AF_PACKET_CONFIG).unwrap();
    let ns = Netns::up();
    // Long enough for start-up, the ARP exchange and the bounded flood;
    // `--duration` stops it by itself (and `timeout` if it hangs).
    let mut moat = cmd("timeout")
        .args([
            "-k",
            "5",
            "60",
            "ip",
            "netns",
            "exec",
            &ns.moat,
            env!("CARGO_BIN_EXE_moat"),
            "run",
        ])
        .args(["--duration", "12", "--config"])
        .arg(&cfg)
        .arg("--stats")
        .arg(&stats)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stats.exists() {
        if let Ok(Some(_)) = moat.try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "moat run wrote no stats in 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rx0 = ns.tunnel_rx();
    // 4,000 UDP datagrams from random sources at (at most) 4 kpps.
    // hping3 exits 1 when nothing answers (the point here); its closing
    // statistics say it ran to the end.
    let flood = Netns::exec(&[
        "ip",
        "netns",
        "exec",
        &ns.peer,
        "hping3",
        "--udp",
        "--rand-source",
        "-p",
        "7777",
        "-k",
        "-s",
        "40000",
        "-d",
        "32",
        "-c",
        "4000",
        "-i",
        "u250",
        "203.0.113.50",
    ]);
    let flood = describe("hping3", &flood);
    assert!(flood.contains("4000 packets transmitted"), "{flood}");
    let out = moat.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{flood}", describe("moat run", &out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("running 4 worker(s) on the af_packet backend"), "{err}");
    let st = read_stats(&stats);
    let w = per_worker(&st);
    let passed: u64 = w.iter().map(|&(_, p)| p).sum();
    let delivered = ns.tunnel_rx() - rx0;
    assert_eq!(w.len(), WORKERS, "{st}");
    assert!(
        w.iter().all(|&(rx, p)| rx > 0 && p > 0),
        "the fanout left a worker idle: (rx, passed) per worker {w:?}; drops {}\n{flood}",
        st["drops_by_reason"]
    );
    // Every datagram but those from bogus random sources (multicast, 0/8,
    // 127/8: under 10 %) passes, and arrives at the tunnel endpoint.
    assert!(
        passed >= 3000 && delivered >= passed,
        "passed {passed}, {delivered} frames at the tunnel endpoint; drops {}\n{flood}",
        st["drops_by_reason"]
    );
    eprintln!("af_packet, {WORKERS} workers: (rx, passed) per worker {w:?}, {delivered} frames at the tunnel endpoint");
}
