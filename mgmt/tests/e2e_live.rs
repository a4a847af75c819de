//! End to end, live: `moat run` on AF_PACKET between real Linux peers, with
//! real attack tools.
//!
//! `tests/e2e/topology.sh` builds three network namespaces: `inet` (the
//! client 10.10.0.2, a second client 10.10.0.4 and the attacker 10.10.0.3 on
//! one link to Moat's `out0`), `moat` (`out0` and `in0`, no kernel address)
//! and `origin` (Open vSwitch's userspace GRE endpoint behind `in0`, the VIPs
//! 203.0.113.10 and .11 with a real HTTP server and a UDP server, answering
//! the clients straight back over a direct-server-return link). Moat runs
//! there with `examples/e2e-netns.toml`. One test, the scenarios in order
//! (setting the topology up is the expensive part):
//!
//! - (a) `curl` fetches the page through `challenge-ack` (client 10.10.0.2)
//!   and through `cookie-reset` (client 10.10.0.4, which retries once reset);
//! - (b) during a bounded `hping3 --rand-source -S` flood a new client
//!   (10.10.0.5, challenged under attack) still fetches the page and no
//!   flood SYN reaches the origin;
//! - (c) bounded ACK, RST, UDP-from-port-53 and fragment floods from the
//!   attacker never reach the origin, and Moat counts them dropped with the
//!   expected reasons;
//! - (d) datagrams starting with "GAME" reach the UDP server, others do not;
//! - (f) path MTU: a 1500-byte datagram with DF is dropped as `too_big` and
//!   the client's kernel learns the tunnel's MTU from Moat's ICMP error;
//! - (e) ARP: the client holds `out0`'s MAC for Moat's address, Moat holds
//!   br-phy's MAC for the origin's tunnel endpoint;
//! - (g) IPv6: the client 2001:db8:10::2 resolves its next hop, Moat's
//!   2001:db8:10::1, by neighbour discovery (answered by Moat with `out0`'s
//!   MAC) and `curl -6` fetches the page from the VIP 2001:db8::10 through
//!   `challenge-ack`, GRE over IPv4 carrying the IPv6 packets to the origin;
//! - (h) ICMP: a bounded `hping3 --icmp --rand-source` echo flood (50,000
//!   requests at 20 kpps) delivers at most the default ICMP rate of the
//!   service to the origin while `ping -c 5` from the verified client in the
//!   middle of it is answered; one source pinging at 1 kpps delivers at most
//!   its own rate; `ping -6` is answered through Moat.
//!
//! Moat runs with three workers (`workers = 3` in both examples).
//!
//! "Reached the origin" is read from two OpenFlow rules on the origin's
//! br-int, which count the decapsulated packets from the clients (cookie 0x1)
//! and from every other source (cookie 0x2). (d) sends game datagrams from the
//! attacker's address too, so the second counter is seen to move.
//!
//! Needs root, `ip netns`, Open vSwitch, hping3, curl, ping (iputils-ping),
//! ethtool and python3.
//! Without them the test prints why and passes, unless `MOAT_E2E=1` (CI),
//! where it fails. Everything it creates (namespaces, private OVS daemons,
//! servers, Moat) is removed by drop guards, on failure too. Every command
//! runs under `timeout`; every flood is bounded by a packet count, an interval
//! and a time limit, and aims only at addresses inside these namespaces.

mod common;

use std::collections::HashMap;

use common::netns::{describe, output, Moat, Topology};
use common::{can_run, cmd, missing_prerequisite, root};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Tools the test runs, looked up on `PATH`.
const TOOLS: [&str; 15] = [
    "ip",
    "sysctl",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "hping3",
    "curl",
    "ping",
    "ethtool",
    "python3",
    "timeout",
    "setsid",
];
const CLIENT: &str = "10.10.0.2";
const CLIENT2: &str = "10.10.0.4";
/// Seen first during the SYN flood: its fetch must pass the challenge under attack.
const CLIENT3: &str = "10.10.0.5";
const ATTACKER: &str = "10.10.0.3";
const MOAT_OUTSIDE: &str = "10.10.0.1";
/// The IPv6 client, Moat's `ip6` on `out0` (its next hop) and the VIP of
/// service "web6" (challenge-ack).
const CLIENT6: &str = "2001:db8:10::2";
const MOAT_OUTSIDE6: &str = "2001:db8:10::1";
const VIP6: &str = "2001:db8::10";
/// Service "web" (challenge-ack, GAME payload rule on udp/7777).
const VIP: &str = "203.0.113.10";
/// Service "web-reset" (cookie-reset).
const VIP_RESET: &str = "203.0.113.11";
const ORIGIN_TUNNEL: &str = "192.168.77.2";
/// br-phy's MAC in topology.sh.
const BR_PHY_MAC: &str = "02:00:00:00:77:02";
const UDP_PORT: &str = "7777";
/// `workers` in both examples.
const WORKERS: usize = 3;

/// What the live scenarios read from the topology beyond the shared
/// harness: the origin's counters and logs, and the clients' tools.
trait LiveTopology {
    fn origin_packets(&self) -> (u64, u64);
    fn settled_origin_packets(&self) -> (u64, u64);
    fn udp_received(&self) -> Vec<(String, Vec<u8>)>;
    fn origin_icmp_unreachables_sent(&self) -> u64;
    fn kernel_reassembly_report(&self) -> String;
    fn http_log(&self) -> String;
    fn served_page(&self) -> String;
    fn curl(&self, src: &str, url: &str, extra: &[&str]) -> Output;
    fn neighbour(&self, family: &str, addr: &str, mac: &str) -> (String, bool);
    fn hping3(&self, label: &str, secs: u64, args: &[&str]) -> (u64, String);
}

impl LiveTopology for Topology {
    /// Packets that reached the origin, (from the clients, from any other
    /// source), summed over br-int's counting rules. OVS pushes datapath
    /// statistics to the rules about every 500 ms: callers wait for traffic
    /// to settle first ([`Topology::settled_origin_packets`]).
    fn origin_packets(&self) -> (u64, u64) {
        let out = output(
            cmd("timeout")
                .args(["10", "ovs-ofctl", "dump-flows", "br-int"])
                .env("OVS_RUNDIR", &self.state),
        );
        assert!(
            out.status.success(),
            "{}",
            describe("ovs-ofctl dump-flows br-int", &out)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let (mut clients, mut others) = (0, 0);
        for line in text.lines() {
            let n = line
                .split(&[' ', ','][..])
                .find_map(|f| f.strip_prefix("n_packets="))
                .and_then(|n| n.parse::<u64>().ok());
            match (line.contains("cookie=0x1,"), line.contains("cookie=0x2,"), n) {
                (true, _, Some(n)) => clients += n,
                (_, true, Some(n)) => others += n,
                _ => {}
            }
        }
        (clients, others)
    }

    /// [`Topology::origin_packets`] once OVS has pushed its statistics: the
    /// same value twice, 700 ms apart, after a first wait of 1 s.
    fn settled_origin_packets(&self) -> (u64, u64) {
        std::thread::sleep(Duration::from_millis(1000));
        let mut last = self.origin_packets();
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(700));
            let now = self.origin_packets();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }

    /// The UDP server's log: (source, payload) per datagram, in order.
    fn udp_received(&self) -> Vec<(String, Vec<u8>)> {
        let log = fs::read_to_string(self.state.join("udp-server.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert_eq!(f.len(), 3, "bad UDP server log line {line:?}");
                (f[0].to_string(), hex::decode(f[2]).expect("hex payload"))
            })
            .collect()
    }

    /// `Icmp: OutDestUnreachs` of the origin's kernel (/proc/net/snmp is per
    /// network namespace): it would answer GRE frames that OVS did not take
    /// with "protocol unreachable".
    fn origin_icmp_unreachables_sent(&self) -> u64 {
        let out = self.exec_ok(&self.origin, 10, &["cat", "/proc/net/snmp"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut icmp = text.lines().filter(|l| l.starts_with("Icmp: "));
        let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
        let col = names.split_whitespace().position(|n| n == "OutDestUnreachs").unwrap();
        values.split_whitespace().nth(col).unwrap().parse().unwrap()
    }

    /// What the kernels on the attacker's path counted: inet's neighbour
    /// entry for Moat, the veth's receive counters and the IP reassembly
    /// counters of Moat's namespace (AF_PACKET fanout defragmentation counts
    /// there).
    fn kernel_reassembly_report(&self) -> String {
        let text = |ns: &str, args: &[&str]| {
            let out = self.exec(ns, 10, args);
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let snmp = text(&self.moat, &["cat", "/proc/net/snmp"]);
        let ip: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Ip: ")).collect();
        format!(
            "inet neighbours: {}\nmoat out0: {}\nmoat {}",
            text(&self.inet, &["ip", "-4", "neigh", "show", "dev", "inet0"]),
            text(&self.moat, &["ip", "-s", "link", "show", "out0"]),
            ip.join("\n")
        )
    }

    fn http_log(&self) -> String {
        fs::read_to_string(self.state.join("http-server.log")).unwrap_or_default()
    }

    fn served_page(&self) -> String {
        fs::read_to_string(self.state.join("www/index.html")).expect("served page")
    }

    /// `curl` from the `inet` namespace, bound to `src`.
    fn curl(&self, src: &str, url: &str, extra: &[&str]) -> Output {
        let mut args = vec!["curl", "-sS", "--max-time", "10", "--interface", src];
        args.extend_from_slice(extra);
        args.push(url);
        self.exec(&self.inet, 40, &args)
    }

    /// `inet`'s neighbour entry for `addr` (`family` is `-4` or `-6`), and
    /// whether it holds `mac` in a usable state.
    fn neighbour(&self, family: &str, addr: &str, mac: &str) -> (String, bool) {
        let out = self.exec_ok(&self.inet, 10, &["ip", family, "neigh", "show", addr, "dev", "inet0"]);
        let neigh = String::from_utf8_lossy(&out.stdout).to_string();
        let usable = ["REACHABLE", "STALE", "DELAY", "PROBE"]
            .iter()
            .any(|s| neigh.contains(s));
        let ok = neigh.contains(&format!("lladdr {mac} ")) && usable;
        (neigh, ok)
    }

    /// A bounded hping3 run from `inet` (`args` must hold `-c`); returns the
    /// packets it says it sent and its output.
    fn hping3(&self, label: &str, secs: u64, args: &[&str]) -> (u64, String) {
        assert!(
            args.contains(&"-c") && !args.contains(&"--flood"),
            "{label}: unbounded flood"
        );
        let mut all = vec!["hping3"];
        all.extend_from_slice(args);
        let out = self.exec(&self.inet, secs, &all);
        hping3_result(label, &out)
    }
}

/// Packets sent according to hping3's closing statistics ("N packets
/// transmitted"). hping3 exits 1 when it got no reply, which is the point of
/// most floods here, so its status is not checked; its statistics must be
/// there (they are missing when `timeout` killed it).
fn hping3_result(label: &str, out: &Output) -> (u64, String) {
    let text = describe("hping3", out);
    let sent = text
        .lines()
        .find_map(|l| {
            l.split(" packets transmitted")
                .next()
                .filter(|_| l.contains(" packets transmitted"))
        })
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{label}: no hping3 statistics (killed by timeout?)\n{text}"));
    (sent, text)
}

/// A counter of a stats snapshot by JSON path (0 when absent).
fn n(s: &Value, path: &[&str]) -> u64 {
    path.iter().fold(s, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// Drop counters by reason that grew from `a` to `b`.
fn drops_delta(a: &Value, b: &Value) -> HashMap<String, u64> {
    let mut d = HashMap::new();
    if let Some(m) = b["drops_by_reason"].as_object() {
        for (k, v) in m {
            let grew = v.as_u64().unwrap_or(0).saturating_sub(n(a, &["drops_by_reason", k]));
            if grew > 0 {
                d.insert(k.clone(), grew);
            }
        }
    }
    d
}

/// The backend Moat runs on in a live test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// `examples/e2e-netns.toml`: AF_PACKET sockets on out0 and in0.
    AfPacket,
    /// `examples/e2e-netns-dpdk.toml`: DPDK `net_af_packet` devices on
    /// out0 and in0 (built with `--features dpdk`).
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    Dpdk,
}

impl Backend {
    /// Short, for namespace names (at most 15 characters with the rest).
    fn tag(self) -> &'static str {
        match self {
            Backend::AfPacket => "a",
            Backend::Dpdk => "d",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Backend::AfPacket => "e2e-netns.toml",
            Backend::Dpdk => "e2e-netns-dpdk.toml",
        }
    }

    /// The example as shipped, copied into `dir` so that its relative
    /// state_dir lands in the temporary folder, not in the source tree;
    /// DPDK's file prefix made unique to this run.
    fn config(self, dir: &Path) -> PathBuf {
        let config = dir.join(self.example());
        let text = fs::read_to_string(root().join("examples").join(self.example())).unwrap();
        let prefix = format!("\"moat-e2e-dpdk-{}\"", std::process::id());
        let text = text.replace("\"moat-e2e-dpdk\"", &prefix);
        assert!(self == Backend::AfPacket || text.contains(&prefix));
        fs::write(&config, text).unwrap();
        config
    }
}

#[test]
fn live_moat_between_linux_peers_passes_clients_and_drops_floods() {
    live_scenarios(Backend::AfPacket);
}

/// The same scenarios with Moat on DPDK (`net_af_packet` on the veths).
#[cfg(feature = "dpdk")]
#[test]
fn live_moat_on_dpdk_between_linux_peers_passes_clients_and_drops_floods() {
    live_scenarios(Backend::Dpdk);
}

/// One live topology at a time: the scenarios' timings and flood counts
/// assume the machine is not also running another one.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Scenarios (a) to (h) of the module docs against Moat on `backend`.
fn live_scenarios(backend: Backend) {
    // A failed run poisons the lock; the next one may still run.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run(
        &format!("live end-to-end test ({backend:?})"),
        missing_prerequisite(
            &TOOLS,
            "openvswitch-switch hping3 curl iputils-ping ethtool iproute2 procps python3",
        ),
    ) {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = backend.config(dir.path());
    let topo = Topology::up(&format!("live-{}", backend.tag()), &dir.path().join("topo")).print_on_failure(&[
        "ovs-vswitchd.log",
        "http-server.out",
        "udp-server.out",
        "http-server.log",
    ]);
    let set_up = started.elapsed();
    let mut moat = Moat::start(&topo.moat, &config, dir.path(), " worker(s) on the ", &[]);

    // Moat resolves the origin by ARP at start-up; the scenarios need it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin_resolved(&moat.stats()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let page = topo.served_page();

    // (a) challenge-ack: the first SYN is answered with a SYN-ACK whose ACK
    // number is a cookie, Linux answers with a RST, Moat verifies the client,
    // the retransmitted SYN passes.
    let s0 = moat.fresh_stats();
    let t = Instant::now();
    let out = topo.curl(CLIENT, &format!("http://{VIP}/"), &[]);
    let challenge_ms = t.elapsed().as_millis();
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(a) challenge-ack: curl http://{VIP}/ from {CLIENT} did not fetch the page\n{}\n{}",
        describe("curl", &out),
        moat.logs()
    );
    let s1 = moat.fresh_stats();
    let d = drops_delta(&s0, &s1);
    assert!(
        d.get("challenge_answered").copied().unwrap_or(0) >= 1
            && n(&s1, &["replies"]) > n(&s0, &["replies"])
            && n(&s1, &["passed_by_service", "web"]) > n(&s0, &["passed_by_service", "web"]),
        "(a) challenge-ack: the fetch did not go through a challenge (drops {d:?}, replies {} -> {}, passed web {} -> {})",
        n(&s0, &["replies"]),
        n(&s1, &["replies"]),
        n(&s0, &["passed_by_service", "web"]),
        n(&s1, &["passed_by_service", "web"])
    );

    // (a) cookie-reset: SYN-ACK with a cookie, the client's ACK is checked
    // and answered with a RST, the client retries and passes.
    let t = Instant::now();
    let out = topo.curl(
        CLIENT2,
        &format!("http://{VIP_RESET}/"),
        &["--retry", "3", "--retry-all-errors", "--retry-delay", "1"],
    );
    let reset_ms = t.elapsed().as_millis();
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(a) cookie-reset: curl --retry http://{VIP_RESET}/ from {CLIENT2} did not fetch the page\n{}\n{}",
        describe("curl", &out),
        moat.logs()
    );
    // The first connection is reset by design: the fetch took at least the
    // retry delay.
    assert!(
        reset_ms >= 1000,
        "(a) cookie-reset: the fetch took {reset_ms} ms, so the first connection was not reset and retried\n{}",
        describe("curl", &out)
    );
    let s2 = moat.fresh_stats();
    assert!(
        n(&s2, &["passed_by_service", "web-reset"]) > n(&s1, &["passed_by_service", "web-reset"])
            && n(&s2, &["replies"]) >= n(&s1, &["replies"]) + 2,
        "(a) cookie-reset: no SYN-ACK + RST, or nothing passed for web-reset (replies {} -> {}, passed {} -> {})\n{}",
        n(&s1, &["replies"]),
        n(&s2, &["replies"]),
        n(&s1, &["passed_by_service", "web-reset"]),
        n(&s2, &["passed_by_service", "web-reset"]),
        describe("curl", &out)
    );
    let http = topo.http_log();
    for c in [CLIENT, CLIENT2] {
        assert!(
            http.lines()
                .any(|l| l.starts_with(&format!("{c} ")) && l.ends_with("GET /")),
            "(a) the origin's HTTP server logged no GET / from {c}:\n{http}"
        );
    }
    eprintln!(
        "(a) challenge-ack fetch {challenge_ms} ms, cookie-reset fetch with retry {reset_ms} ms; replies {} -> {}",
        n(&s0, &["replies"]),
        n(&s2, &["replies"])
    );

    // (b) a spoofed SYN flood, bounded (count, interval, time), with a fetch
    // in the middle of it.
    const SYN_FLOOD: u64 = 20_000;
    let (_, others0) = topo.settled_origin_packets();
    let sb0 = moat.fresh_stats();
    let flood = topo
        .exec_cmd(
            &topo.inet,
            60,
            &[
                "hping3",
                "--rand-source",
                "-S",
                "-p",
                "80",
                "-c",
                &SYN_FLOOD.to_string(),
                "-i",
                "u50",
                VIP,
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hping3 starts");
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let out = topo.curl(CLIENT3, &format!("http://{VIP}/"), &[]);
    let during_ms = t.elapsed().as_millis();
    let flood = flood.wait_with_output().expect("hping3 runs");
    let (sent, flood_text) = hping3_result("(b) SYN flood", &flood);
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(b) SYN flood: the fetch during the flood failed\n{}\n{flood_text}",
        describe("curl", &out)
    );
    let (_, others1) = topo.settled_origin_packets();
    let sb1 = moat.fresh_stats();
    // The new client was challenged in the middle of the flood and answered
    // (flood sources never answer: each answered challenge is the client's).
    let answered =
        n(&sb1, &["drops_by_reason", "challenge_answered"]) - n(&sb0, &["drops_by_reason", "challenge_answered"]);
    assert!(
        answered >= 1,
        "(b) SYN flood: {CLIENT3} was not challenged during the flood"
    );
    assert!(
        topo.http_log()
            .lines()
            .any(|l| l.starts_with(&format!("{CLIENT3} ")) && l.ends_with("GET /")),
        "(b) SYN flood: the origin logged no GET / from {CLIENT3}"
    );
    let challenges = n(&sb1, &["replies"]) - n(&sb0, &["replies"]);
    let rx = n(&sb1, &["rx_packets"]) - n(&sb0, &["rx_packets"]);
    assert_eq!(
        others1, others0,
        "(b) SYN flood: {} packets from non-client sources reached the origin ({sent} flood SYNs sent, Moat rx {rx}, replies {challenges})",
        others1 - others0
    );
    // Every flood SYN is challenged, or dropped when its random source is
    // bogus (0/8, 127/8, multicast...: a few percent); none passes Moat (the
    // fetch's few segments do).
    let dropped: u64 = drops_delta(&sb0, &sb1).values().sum();
    let passed = n(&sb1, &["passed_by_service", "web"]) - n(&sb0, &["passed_by_service", "web"]);
    assert!(
        sent >= SYN_FLOOD * 9 / 10
            && rx >= sent * 9 / 10
            && challenges + dropped >= sent * 9 / 10
            && challenges >= sent / 2
            && passed < 50,
        "(b) SYN flood: Moat did not see and challenge the flood: sent {sent}, Moat rx {rx}, \
         replies {challenges}, dropped {dropped}, passed {passed}\n{flood_text}"
    );
    // Three workers (PACKET_FANOUT hashing the source; on DPDK
    // net_af_packet's queues, then the software RSS fallback on the
    // source): random sources spread over all of them.
    let per_worker: Vec<u64> = sb1["workers"]
        .as_array()
        .map(|w| w.iter().map(|w| w["rx_packets"].as_u64().unwrap_or(0)).collect())
        .unwrap_or_default();
    assert_eq!(per_worker.len(), WORKERS, "(b) three workers in the stats: {sb1}");
    assert!(
        per_worker.iter().all(|&n| n > sent / (2 * WORKERS as u64)),
        "(b) SYN flood: the fanout left a worker idle: {per_worker:?}"
    );
    eprintln!(
        "(b) SYN flood: {sent} spoofed SYNs sent, Moat rx {rx}, {challenges} challenges, {passed} passed \
         (the fetch), 0 reached the origin; fetch during the flood {during_ms} ms; drops {:?}; rx per worker {per_worker:?}",
        drops_delta(&sb0, &sb1)
    );

    // (c) floods from the attacker's address: each never reaches the origin
    // and is dropped for its reason. The last field is frames per packet
    // sent: hping3 -f cuts 308 bytes of UDP into 16-byte fragments, 20 frames.
    let floods: [(&str, &str, Vec<&str>, u64); 4] = [
        (
            "ACK flood",
            "tcp_no_flow",
            vec!["-A", "-p", "80", "-c", "5000", "-i", "u100"],
            1,
        ),
        (
            "RST flood",
            "bad_cookie",
            vec!["-R", "-p", "80", "-c", "5000", "-i", "u100"],
            1,
        ),
        (
            "UDP flood from port 53",
            "reflection_port",
            vec![
                "-2", "-s", "53", "-k", "-p", UDP_PORT, "-d", "200", "-c", "5000", "-i", "u100",
            ],
            1,
        ),
        match backend {
            Backend::AfPacket => (
                "fragment flood",
                "fragment",
                vec!["-2", "-f", "-d", "300", "-p", UDP_PORT, "-c", "300", "-i", "u1000"],
                20,
            ),
            // DPDK 22.11's net_af_packet joins its sockets to a fanout group
            // with PACKET_FANOUT_FLAG_DEFRAG (not configurable): the kernel
            // reassembles the fragments before Moat sees them, so each
            // datagram arrives whole and fails the GAME payload rule.
            Backend::Dpdk => (
                "fragment flood (reassembled by net_af_packet's fanout)",
                "payload_mismatch",
                vec!["-2", "-f", "-d", "300", "-p", UDP_PORT, "-c", "300", "-i", "u1000"],
                1,
            ),
        },
    ];
    for (label, reason, args, frames_per_packet) in floods {
        let label = format!("(c) {label}");
        let before = topo.settled_origin_packets();
        let sc0 = moat.fresh_stats();
        let mut all = vec!["-a", ATTACKER];
        all.extend(args);
        all.push(VIP);
        let (mut sent, mut text) = topo.hping3(&label, 60, &all);
        let mut after = topo.settled_origin_packets();
        let mut sc1 = moat.fresh_stats();
        // DPDK's net_af_packet reassembles in the kernel (see above). Once in
        // CI, under two tests' pollers on two cores, not one of the 300
        // datagrams came out of that reassembly. Moat cannot see what the
        // kernel never hands over: the kernel's counters are printed and the
        // flood is offered again (twice at most); what Moat then receives
        // must still all be dropped for its reason.
        for retry in 1..=2 {
            if backend != Backend::Dpdk || reason != "payload_mismatch" {
                break;
            }
            if drops_delta(&sc0, &sc1).get(reason).copied().unwrap_or(0) > 0 {
                break;
            }
            eprintln!(
                "{label}: nothing came out of the kernel's reassembly; offered again ({retry}/2)\n{}",
                topo.kernel_reassembly_report()
            );
            let (s, t) = topo.hping3(&label, 60, &all);
            sent = s;
            text = t;
            after = topo.settled_origin_packets();
            let sc = moat.fresh_stats();
            // Only this try's datagrams count toward `sent`.
            let d = drops_delta(&sc1, &sc);
            if d.get(reason).copied().unwrap_or(0) > 0 {
                sc1 = sc;
                break;
            }
            sc1 = sc;
        }
        let d = drops_delta(&sc0, &sc1);
        assert_eq!(
            after,
            before,
            "{label}: packets reached the origin (clients, others) {before:?} -> {after:?}; sent {sent}, drops {d:?}\n{text}"
        );
        let got = d.get(reason).copied().unwrap_or(0);
        assert!(
            got >= sent * frames_per_packet * 9 / 10,
            "{label}: {sent} sent but only {got} dropped as {reason} (drops {d:?}, passed {:?} -> {:?})\n{text}",
            sc0["passed_by_service"],
            sc1["passed_by_service"]
        );
        eprintln!("{label}: {sent} packets sent, dropped {d:?}, none reached the origin");
    }
    assert!(
        topo.udp_received().is_empty(),
        "(c) the UDP server received flood datagrams: {:?}",
        topo.udp_received().first()
    );

    // (d) the game service: "GAME..." passes, anything else is dropped, from
    // the client and from the attacker's address alike.
    let (clients0, others0) = topo.settled_origin_packets();
    let sd0 = moat.fresh_stats();
    let mut expected = Vec::new();
    for src in [CLIENT, ATTACKER] {
        let payloads: Vec<String> = (0..10)
            .flat_map(|i| [format!("GAME {src} {i}"), format!("JUNK {src} {i}")])
            .collect();
        let mut args = vec![
            "python3",
            "-c",
            "import socket, sys, time\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind((sys.argv[1], 0))\n\
             for p in sys.argv[4:]:\n    s.sendto(p.encode(), (sys.argv[2], int(sys.argv[3])))\n    time.sleep(0.005)",
            src,
            VIP,
            UDP_PORT,
        ];
        args.extend(payloads.iter().map(String::as_str));
        topo.exec_ok(&topo.inet, 20, &args);
        expected.extend(
            payloads
                .into_iter()
                .filter(|p| p.starts_with("GAME"))
                .map(|p| (src.to_string(), p.into_bytes())),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while topo.udp_received().len() < expected.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let got = topo.udp_received();
    let sd1 = moat.fresh_stats();
    assert_eq!(
        got,
        expected,
        "(d) game service: the UDP server did not receive exactly the GAME datagrams (drops {:?})",
        drops_delta(&sd0, &sd1)
    );
    let mismatched = drops_delta(&sd0, &sd1).get("payload_mismatch").copied().unwrap_or(0);
    assert_eq!(
        mismatched, 20,
        "(d) game service: JUNK datagrams not dropped as payload_mismatch"
    );
    let (clients1, others1) = topo.settled_origin_packets();
    assert_eq!(
        (clients1 - clients0, others1 - others0),
        (10, 10),
        "(d) game service: the origin's per-source counters (clients, others) did not count the GAME datagrams"
    );
    eprintln!("(d) game service: 20 GAME datagrams delivered, 20 JUNK dropped as payload_mismatch");

    // (f) path MTU: a 1500-byte game datagram with DF does not fit the
    // 1476-byte tunnel. Moat drops it as `too_big` and answers with ICMP
    // "fragmentation needed" from the VIP, which the client's kernel takes:
    // it records a path MTU of 1476 toward the VIP (RFC 1191). Linux takes
    // a UDP "fragmentation needed" only while the sending socket exists
    // (`__udp4_lib_err` finds no socket otherwise and drops the error), so
    // the client keeps its socket until its kernel reports the new path MTU
    // (`IP_MTU`), at most 3 s: a sender that exited at once lost the race
    // to the reply once in CI, on the DPDK backend.
    let sf0 = moat.fresh_stats();
    let (clients0, others0) = topo.settled_origin_packets();
    topo.exec_ok(
        &topo.inet,
        20,
        &[
            "python3",
            "-c",
            "import socket, sys, time\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO\n\
             s.bind((sys.argv[1], 0))\n\
             s.connect((sys.argv[2], int(sys.argv[3])))\n\
             s.send(b'GAME' + b'x' * 1468)\n\
             end = time.time() + 3\n\
             while time.time() < end and s.getsockopt(socket.IPPROTO_IP, 14) >= 1500:  # IP_MTU\n\
             \x20   time.sleep(0.01)",
            CLIENT,
            VIP,
            UDP_PORT,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut route = String::new();
    while Instant::now() < deadline {
        let out = topo.exec_ok(&topo.inet, 10, &["ip", "-4", "route", "get", VIP, "from", CLIENT]);
        route = String::from_utf8_lossy(&out.stdout).to_string();
        if route.contains("mtu 1476") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sf1 = moat.fresh_stats();
    assert!(
        route.contains("mtu 1476"),
        "(f) path MTU: the client did not learn 1476 toward the VIP: {route:?}; Moat icmp_too_big {} -> {}, drops {:?}",
        n(&sf0, &["icmp_too_big"]),
        n(&sf1, &["icmp_too_big"]),
        drops_delta(&sf0, &sf1)
    );
    assert_eq!(
        n(&sf1, &["icmp_too_big"]) - n(&sf0, &["icmp_too_big"]),
        1,
        "(f) one ICMP error sent"
    );
    assert_eq!(
        drops_delta(&sf0, &sf1).get("too_big").copied(),
        Some(1),
        "(f) dropped as too_big"
    );
    assert_eq!(
        topo.settled_origin_packets(),
        (clients0, others0),
        "(f) the oversized datagram reached the origin"
    );
    eprintln!(
        "(f) path MTU: too_big, ICMP fragmentation needed sent, client learned {}",
        route.trim()
    );

    // (e) ARP both ways.
    let mac = topo.exec_ok(&topo.moat, 10, &["cat", "/sys/class/net/out0/address"]);
    let out0_mac = String::from_utf8_lossy(&mac.stdout).trim().to_string();
    let (neigh, ok) = topo.neighbour("-4", MOAT_OUTSIDE, &out0_mac);
    assert!(
        ok,
        "(e) ARP: inet's neighbour entry for {MOAT_OUTSIDE} is not out0's MAC {out0_mac}: {neigh:?}"
    );
    let se = moat.fresh_stats();
    assert!(
        origin_resolved(&se),
        "(e) ARP: Moat did not resolve the origin {ORIGIN_TUNNEL} to br-phy's MAC {BR_PHY_MAC}: {}",
        se["neighbors"]
    );
    eprintln!("(e) ARP: inet has {neigh:?}; Moat has {}", se["neighbors"]);

    // (g) IPv6: neighbour discovery answered by Moat, then the fetch
    // through challenge-ack (the first SYN is challenged, the client's RST
    // verifies it, the retransmitted SYN passes).
    let (clients0, others0) = topo.settled_origin_packets();
    let sg0 = moat.fresh_stats();
    let t = Instant::now();
    let out = topo.curl(CLIENT6, &format!("http://[{VIP6}]/"), &["-6", "-g"]);
    let v6_ms = t.elapsed().as_millis();
    let sg1 = moat.fresh_stats();
    let dg = drops_delta(&sg0, &sg1);
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(g) IPv6: curl -6 http://[{VIP6}]/ from {CLIENT6} did not fetch the page (drops {dg:?}, replies {} -> {})\n{}\n{}",
        n(&sg0, &["replies"]),
        n(&sg1, &["replies"]),
        describe("curl", &out),
        moat.logs()
    );
    let (neigh, ok) = topo.neighbour("-6", MOAT_OUTSIDE6, &out0_mac);
    assert!(
        ok,
        "(g) ND: inet's neighbour entry for {MOAT_OUTSIDE6} is not out0's MAC {out0_mac}: {neigh:?} (drops {dg:?})"
    );
    assert!(
        dg.get("challenge_answered").copied().unwrap_or(0) >= 1
            && n(&sg1, &["passed_by_service", "web6"]) > n(&sg0, &["passed_by_service", "web6"])
            && n(&sg1, &["replies"]) > n(&sg0, &["replies"]),
        "(g) IPv6: the fetch did not go through a challenge (drops {dg:?}, replies {} -> {}, passed web6 {} -> {})",
        n(&sg0, &["replies"]),
        n(&sg1, &["replies"]),
        n(&sg0, &["passed_by_service", "web6"]),
        n(&sg1, &["passed_by_service", "web6"])
    );
    assert!(
        topo.http_log()
            .lines()
            .any(|l| l.starts_with(&format!("{CLIENT6} ")) && l.ends_with("GET /")),
        "(g) IPv6: the origin's HTTP server logged no GET / from {CLIENT6}:\n{}",
        topo.http_log()
    );
    let (clients1, others1) = topo.settled_origin_packets();
    assert!(
        clients1 > clients0 && others1 == others0,
        "(g) IPv6: the origin's per-source counters (clients, others) went {:?} -> {:?}",
        (clients0, others0),
        (clients1, others1)
    );
    eprintln!(
        "(g) IPv6: inet has {}; fetch through challenge-ack {v6_ms} ms; replies {} -> {}, passed web6 {} -> {}, drops {dg:?}",
        neigh.trim(),
        n(&sg0, &["replies"]),
        n(&sg1, &["replies"]),
        n(&sg0, &["passed_by_service", "web6"]),
        n(&sg1, &["passed_by_service", "web6"])
    );

    assert_eq!(
        topo.origin_icmp_unreachables_sent(),
        0,
        "the origin's kernel sent ICMP unreachables (GRE frames it took instead of OVS?)"
    );

    // Checked before (h), whose flood makes the origin's kernel answer
    // echo requests from random addresses: one run in 2026-12 counted one
    // unreachable sent by the origin during (h), cause not established
    // (its own answers to random sources are the suspect, not GRE), so
    // during (h) the counter is printed, not asserted.
    icmp_scenarios(&topo, &moat);
    println!(
        "(h) the origin's kernel has sent {} ICMP unreachable(s) in all",
        topo.origin_icmp_unreachables_sent()
    );

    let (clean, final_counters) = moat.stop();
    assert!(clean, "moat run did not stop cleanly on SIGTERM\n{}", moat.logs());
    assert!(
        !final_counters.trim().is_empty(),
        "moat run printed no final counters on SIGTERM"
    );
    eprintln!(
        "e2e live ({backend:?}): topology up in {:.1} s, whole test {:.1} s",
        set_up.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// `ping` from `src` (`-4`/`-6` by its family) inside `inet`: `count`
/// echo requests 200 ms apart, each waited for up to 2 s; returns how many
/// were answered and the output.
fn ping_cmd(topo: &Topology, src: &str, dst: &str, count: u32) -> Command {
    let family = if src.contains(':') { "-6" } else { "-4" };
    let count = count.to_string();
    topo.exec_cmd(
        &topo.inet,
        30,
        &[
            "ping", family, "-n", "-c", &count, "-i", "0.2", "-W", "2", "-I", src, dst,
        ],
    )
}

/// Echo replies received according to ping's summary ("5 packets
/// transmitted, 5 received").
fn ping_received(label: &str, out: &Output) -> (u64, String) {
    let text = describe("ping", out);
    let received = text
        .lines()
        .find(|l| l.contains(" packets transmitted, "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|f| f.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{label}: no ping summary\n{text}"));
    (received, text)
}

/// (h) ICMP, after (g) (the clients are verified by then: (a) verified
/// CLIENT by its challenge answer less than the verified TTL, 300 s, ago):
///
/// - an echo flood from random sources (issue 10's reproduction: 50,000
///   requests at 20 kpps) delivers at most the service's ICMP rate to the
///   origin (the default `icmp_pps`, 200/s for the node: 66/s on each of
///   the three workers, each bucket holding a second's worth), while
///   `ping -c 5` from the verified client in the middle of it is answered
///   every time (a verified source passes an exhausted service bucket);
/// - one source pinging at 1 kpps delivers at most `src_icmp_pps` (20/s);
/// - ICMPv6 echo: `ping -6` from the IPv6 client is answered.
fn icmp_scenarios(topo: &Topology, moat: &Moat) {
    use classifier::policy::Limits;
    const FLOOD: u64 = 50_000;
    let per_worker = Limits::DEFAULT_ICMP_PPS / WORKERS as u64;
    let node_rate = per_worker * WORKERS as u64;

    let (clients0, others0) = topo.settled_origin_packets();
    let sh0 = moat.fresh_stats();
    let started = Instant::now();
    let mut flood = topo
        .exec_cmd(
            &topo.inet,
            60,
            &[
                "hping3",
                "--icmp",
                "--rand-source",
                "-c",
                &FLOOD.to_string(),
                "-i",
                "u50",
                VIP,
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hping3 starts");
    std::thread::sleep(Duration::from_millis(300));
    // The verified client and, for comparison, the attacker's address
    // (never verified: its pings compete with the flood for the service's
    // tokens) ping at once, in the middle of the flood.
    let stranger = ping_cmd(topo, ATTACKER, VIP, 5)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping starts");
    let verified = ping_cmd(topo, CLIENT, VIP, 5)
        .stdin(Stdio::null())
        .output()
        .expect("ping runs");
    let flood_running = matches!(flood.try_wait(), Ok(None));
    let stranger = stranger.wait_with_output().expect("ping runs");
    let flood = flood.wait_with_output().expect("hping3 runs");
    let flood_secs = started.elapsed().as_secs_f64();
    let (sent, flood_text) = hping3_result("(h) ICMP echo flood", &flood);
    let (answered, ping_text) = ping_received("(h) ping during the flood", &verified);
    let (stranger_answered, _) = ping_received("(h) unverified ping during the flood", &stranger);
    let (clients1, others1) = topo.settled_origin_packets();
    let sh1 = moat.fresh_stats();
    let d = drops_delta(&sh0, &sh1);
    let rx = n(&sh1, &["rx_packets"]) - n(&sh0, &["rx_packets"]);
    let passed = n(&sh1, &["passed_by_service", "web"]) - n(&sh0, &["passed_by_service", "web"]);
    let (delivered, to_clients) = (others1 - others0, clients1 - clients0);
    let capped = d.get("rate_limit_icmp").copied().unwrap_or(0);
    assert!(
        flood_running,
        "(h) the flood ended before the pings did: nothing was tested during it\n{flood_text}"
    );
    assert_eq!(
        answered, 5,
        "(h) the verified client's pings were not all answered during the flood (drops {d:?})\n{ping_text}"
    );
    assert!(
        to_clients >= 5,
        "(h) the origin counted {to_clients} packets from the clients, not the 5 pings"
    );
    // At most one second's burst per worker plus the rate for as long as
    // the flood lasted (measured from before hping3 started to after it
    // ended: longer than the flood), and 50 ms for the last frames still in
    // Moat's rings when hping3 exits.
    let most = (node_rate as f64 * (1.05 + flood_secs)) as u64;
    assert!(
        sent >= FLOOD * 9 / 10 && rx >= sent * 9 / 10,
        "(h) Moat did not see the flood: sent {sent}, rx {rx}\n{flood_text}"
    );
    assert!(
        delivered <= most,
        "(h) {delivered} flood packets reached the origin in {flood_secs:.2} s, more than the ICMP rate \
         allows ({node_rate}/s + a second's burst = {most}); drops {d:?}"
    );
    // The rate is reached (the flood is far above it on every worker), and
    // the rest is dropped for it: a limit, not a blanket ICMP drop.
    assert!(
        delivered as f64 >= node_rate as f64 * flood_secs / 2.0 && passed >= delivered,
        "(h) only {delivered} flood packets reached the origin in {flood_secs:.2} s (Moat passed {passed})"
    );
    assert!(
        capped >= sent * 8 / 10,
        "(h) {sent} sent but only {capped} dropped as rate_limit_icmp (drops {d:?})"
    );
    eprintln!(
        "(h) ICMP echo flood: {sent} requests from random sources in {flood_secs:.2} s ({:.0} pps sent), Moat rx {rx}, \
         {delivered} reached the origin ({:.0}/s; bound {most}), {capped} dropped as rate_limit_icmp, drops {d:?}; \
         verified client's ping during the flood: {answered}/5 answered (an unverified address's: {stranger_answered}/5)",
        sent as f64 / flood_secs,
        delivered as f64 / flood_secs
    );

    // One source over its own rate (the service's buckets are full again
    // after the settling waits above).
    const FAST: u64 = 1000;
    let (_, others0) = topo.settled_origin_packets();
    let si0 = moat.fresh_stats();
    let started = Instant::now();
    let (sent, text) = topo.hping3(
        "(h) one fast pinger",
        30,
        &["--icmp", "-a", ATTACKER, "-c", &FAST.to_string(), "-i", "u1000", VIP],
    );
    let secs = started.elapsed().as_secs_f64();
    let (_, others1) = topo.settled_origin_packets();
    let si1 = moat.fresh_stats();
    let d = drops_delta(&si0, &si1);
    let src_rate = u64::from(Limits::DEFAULT_SRC_ICMP_PPS);
    let most = (src_rate as f64 * (1.0 + secs)) as u64;
    let delivered = others1 - others0;
    let capped = d.get("rate_limit_icmp_source").copied().unwrap_or(0);
    assert!(
        delivered <= most && delivered >= src_rate,
        "(h) one source at {:.0} pps delivered {delivered} echo requests in {secs:.2} s (its rate: {src_rate}/s, \
         at most {most}); drops {d:?}\n{text}",
        sent as f64 / secs
    );
    assert!(
        sent >= FAST * 9 / 10 && capped + delivered >= sent * 9 / 10,
        "(h) one fast pinger: {sent} sent, {delivered} delivered, {capped} dropped as rate_limit_icmp_source (drops {d:?})"
    );
    eprintln!(
        "(h) one source: {sent} echo requests in {secs:.2} s, {delivered} reached the origin ({:.1}/s; bound {most}), \
         {capped} dropped as rate_limit_icmp_source",
        delivered as f64 / secs
    );

    // ICMPv6 echo through Moat to the IPv6 VIP (the next hop already
    // resolved by neighbour discovery in (g)).
    let sv0 = moat.fresh_stats();
    let out = ping_cmd(topo, CLIENT6, VIP6, 3)
        .stdin(Stdio::null())
        .output()
        .expect("ping -6 runs");
    let (answered, text) = ping_received("(h) ping -6", &out);
    let sv1 = moat.fresh_stats();
    let passed6 = n(&sv1, &["passed_by_service", "web6"]) - n(&sv0, &["passed_by_service", "web6"]);
    assert!(
        answered == 3 && passed6 >= 3,
        "(h) ICMPv6: {answered}/3 echo requests to {VIP6} answered, Moat passed {passed6} (drops {:?})\n{text}",
        drops_delta(&sv0, &sv1)
    );
    eprintln!("(h) ICMPv6 echo: 3/3 answered through Moat");
}

/// Whether Moat's stats show the origin's tunnel endpoint at br-phy's MAC.
fn origin_resolved(s: &Value) -> bool {
    s["neighbors"].as_array().is_some_and(|ns| {
        ns.iter().any(|e| {
            e["ip"] == ORIGIN_TUNNEL
                && e["mac"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(BR_PHY_MAC))
                && matches!(e["state"].as_str(), Some("reachable" | "stale"))
        })
    })
}
