//! The cluster, live: two Moat nodes on AF_PACKET behind an upstream router
//! that spreads the VIP prefix over them by ECMP, learnt over eBGP from each
//! node's BIRD; a three-server NATS cluster with JetStream as the cluster bus;
//! Open vSwitch's userspace GRE endpoint at the origin, answering the clients
//! straight back (direct server return); real clients.
//!
//! `tests/cluster/topology.sh` builds it (see the drawing there): namespaces
//! `inet` (clients 10.10.0.2 to .29), `rtr` (the router: BIRD with `merge
//! paths on`, kernel multipath with the L4 hash, the third nats-server), `n1`
//! and `n2` (Moat's out0/in0 without kernel address, mgmt0 with the BGP
//! session and the NATS routes, BIRD, a nats-server) and `origin`. Moat runs
//! in each node namespace with `tests/cluster/node.toml` filled in, `[bgp]`
//! on the node's BIRD (hold-down 2 s, drain 5 s) and `[cluster]` on its local
//! nats-server. The clients are `tests/cluster/slow-client.py` (concurrent
//! slow HTTP transfers of a 1.5 MB file, every byte compared, resets
//! reported) and `tests/cluster/game-client.py` (UDP "GAME" datagrams). One
//! test, the cases in order, each printing its measured figures:
//!
//! 1. both nodes announce: the router's route to 203.0.113.0/24 has two next
//!    hops, and fetches from many sources pass through both nodes;
//! 2. `kill -9` of node 1 in the middle of 30 slow transfers: the router
//!    withdraws it (kill→withdraw time, the route polled every 10 ms), every
//!    transfer completes with the right bytes, none is reset, new connections
//!    succeed; node 1 is started again afterwards;
//! 3. node 1, restarted, has case 2's sources verified (sent by node 2 when
//!    it joined the bus: catch-up time); `moat drain` on node 2 in the
//!    middle of slow transfers, half of them from case 2's sources (verified
//!    before node 1 restarted), half from new ones: the route is withdrawn
//!    first (drain→withdraw time), node 2 says `draining` and still runs,
//!    the transfers finish through node 1, node 2 exits 0; it is started
//!    again afterwards;
//! 4. an ACL deny added through node 1's API is in force on node 2 within a
//!    second (node 2 shows it and drops the source's datagrams as
//!    `acl_deny`); deleting it likewise;
//! 5. with every nats-server stopped both nodes keep scrubbing; a change made
//!    on node 1 during the outage reaches node 2 once NATS is back
//!    (convergence time after the restart);
//! 6. node 2 restarted: it reads the configuration bucket (the change of 5
//!    is in force on it) and announces again only after its hold-down
//!    (start→announce delay).
//!
//! Needs root, `ip netns`, BIRD 2 (`bird`, `birdc`), `nats-server`, Open
//! vSwitch, curl, ethtool and python3. Without them the test prints why and
//! passes, unless `MOAT_E2E=1`, where it fails. Everything it creates is
//! removed by drop guards (`topology.sh down` is idempotent), on failure too.
//! Every command runs under `timeout`, every wait is bounded, every client
//! is bounded by count and time and aims only at addresses in these
//! namespaces. Run it under `flock /tmp/moat-netns.lock` beside other
//! namespace tests.

mod common;

use common::netns::{describe, output, print_tails, topology_down};
use common::{can_run, cmd, missing_prerequisite, root};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOOLS: [&str; 16] = [
    "ip",
    "sysctl",
    "ethtool",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "bird",
    "birdc",
    "nats-server",
    "curl",
    "python3",
    "timeout",
    "setsid",
];
const VIP: &str = "203.0.113.10";
const VIP_NET: &str = "203.0.113.0/24";
const UDP_PORT: &str = "7777";
/// Moat's outside addresses, the next hops the router learns.
const NEXT_HOPS: [&str; 2] = ["10.10.1.1", "10.10.2.1"];
const INSIDE: [&str; 2] = ["192.168.77.1", "192.168.77.3"];
/// `[bgp] hold_down_secs` and `drain_secs` of the nodes.
const HOLD_DOWN_SECS: u64 = 2;
const DRAIN_SECS: u64 = 5;
/// The slow transfers' sources of case 2 (connection i uses the i-th
/// modulo 10).
const TRANSFER_SOURCES: [&str; 10] = [
    "10.10.0.10",
    "10.10.0.11",
    "10.10.0.12",
    "10.10.0.13",
    "10.10.0.14",
    "10.10.0.15",
    "10.10.0.16",
    "10.10.0.17",
    "10.10.0.18",
    "10.10.0.19",
];
/// Those of case 3: half case 2's sources, which node 2 verified before
/// node 1 restarted (node 1 learns them from node 2's catch-up when it
/// joins the bus; without it, a flow of such a source that node 2 carried
/// alone would stall on node 1, `tcp_no_flow`, once drained there), half
/// sources neither node has verified yet.
const DRAIN_SOURCES: [&str; 8] = [
    "10.10.0.10",
    "10.10.0.20",
    "10.10.0.11",
    "10.10.0.21",
    "10.10.0.12",
    "10.10.0.22",
    "10.10.0.13",
    "10.10.0.23",
];
/// Sources of short fetches and of game traffic.
const FETCH_SOURCES: [&str; 6] = [
    "10.10.0.2",
    "10.10.0.3",
    "10.10.0.4",
    "10.10.0.5",
    "10.10.0.6",
    "10.10.0.7",
];
/// Denied by the ACL of case 4.
const DENIED: &str = "10.10.0.29";
/// Denied by the ACL change made during the bus outage (case 5), still in
/// force for case 6.
const DENIED_OUTAGE: &str = "10.10.0.28";
/// Slow transfers: size of big.bin (topology.sh), reading rate (bytes/s).
const BIG_SIZE: u64 = 1_500_000;
/// Both nodes' API token (`[mgmt] token_file`).
const TOKEN: &str = "moat-cluster-test-token-5f0c2a";
const RATE: u64 = 75_000;

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The namespaces and daemons of `tests/cluster/topology.sh`; dropping it
/// tears them down.
struct Topology {
    script: PathBuf,
    state: PathBuf,
    prefix: String,
    inet: String,
    rtr: String,
    nodes: [String; 2],
}

impl Topology {
    fn up(state: &Path) -> Topology {
        let prefix = format!("mcl{}-", std::process::id());
        let t = Topology {
            script: root().join("tests/cluster/topology.sh"),
            state: state.to_path_buf(),
            inet: format!("{prefix}inet"),
            rtr: format!("{prefix}rtr"),
            nodes: [format!("{prefix}n1"), format!("{prefix}n2")],
            prefix,
        };
        t.script("up", 180);
        t
    }

    fn script(&self, verb: &str, secs: u64) {
        let out = output(
            cmd("timeout")
                .args(["-k", "5", &secs.to_string(), "bash"])
                .arg(&self.script)
                .arg(verb)
                .args([self.state.as_os_str(), self.prefix.as_ref()])
                .env("MOAT_CLUSTER_BIG_SIZE", BIG_SIZE.to_string()),
        );
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("topology.sh {verb}"), &out)
        );
    }

    fn exec_cmd(&self, ns: &str, secs: u64, args: &[&str]) -> Command {
        let mut c = cmd("timeout");
        c.args(["-k", "2", &secs.to_string(), "ip", "netns", "exec", ns])
            .args(args);
        c
    }

    fn exec(&self, ns: &str, secs: u64, args: &[&str]) -> Output {
        output(&mut self.exec_cmd(ns, secs, args))
    }

    /// The gateways of the router's route to the VIP prefix (none when it
    /// has no route).
    fn next_hops(&self) -> Vec<String> {
        let out = self.exec(&self.rtr, 5, &["ip", "-j", "route", "show", VIP_NET]);
        assert!(out.status.success(), "{}", describe("ip route show", &out));
        let routes: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let mut hops = Vec::new();
        for r in routes.as_array().into_iter().flatten() {
            match r["nexthops"].as_array() {
                Some(nh) => hops.extend(nh.iter().filter_map(|h| h["gateway"].as_str().map(String::from))),
                None => hops.extend(r["gateway"].as_str().map(String::from)),
            }
        }
        hops.sort();
        hops
    }

    /// Polls the router's route every 10 ms until its next hops are `want`
    /// (sorted); the time it took, or `None` after `within`.
    fn wait_next_hops(&self, want: &[&str], within: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if self.next_hops() == want {
                return Some(start.elapsed());
            }
            if start.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `birdc show protocols` on the router, for failure messages.
    fn bird_state(&self) -> String {
        let mut s = String::new();
        for (ns, d) in [(&self.rtr, "rtr"), (&self.nodes[0], "n1"), (&self.nodes[1], "n2")] {
            let sock = self.state.join(d).join("bird.ctl");
            let out = self.exec(ns, 5, &["birdc", "-s", sock.to_str().unwrap(), "show", "protocols"]);
            s += &format!(
                "--- birdc show protocols ({d})\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        s
    }

    /// Datagrams of game-client tag `tag` the origin's UDP server got, by
    /// source address.
    fn udp_received(&self, tag: &str) -> BTreeMap<String, u64> {
        let want = hex::encode(format!("GAME{tag}:"));
        let log = fs::read_to_string(self.state.join("udp-server.log")).unwrap_or_default();
        let mut by = BTreeMap::new();
        for line in log.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 3 && f[2].starts_with(&want) {
                *by.entry(f[0].to_string()).or_insert(0) += 1;
            }
        }
        by
    }

    /// The datagrams of game-client tag `tag` the origin got: (source,
    /// source port, send time in Unix ms).
    fn datagrams(&self, tag: &str) -> Vec<(String, u16, u64)> {
        let prefix = format!("GAME{tag}:");
        let log = fs::read_to_string(self.state.join("udp-server.log")).unwrap_or_default();
        let mut v = Vec::new();
        for line in log.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let Some(payload) = f.get(2).and_then(|h| hex::decode(h).ok()) else {
                continue;
            };
            let payload = String::from_utf8_lossy(&payload).to_string();
            let Some(rest) = payload.strip_prefix(&prefix) else {
                continue;
            };
            let ts = rest.split(':').nth(1).and_then(|t| t.parse().ok());
            if let (Some(port), Some(ts)) = (f[1].parse().ok(), ts) {
                v.push((f[0].to_string(), port, ts));
            }
        }
        v
    }

    /// The node (0 or 1) the router sends a UDP flow from `src`:`sport` to
    /// (its multipath hash, asked with `ip route get`).
    fn node_of_flow(&self, src: &str, sport: u16) -> usize {
        let out = self.exec(
            &self.rtr,
            5,
            &[
                "ip",
                "-j",
                "route",
                "get",
                VIP,
                "from",
                src,
                "iif",
                "ri0",
                "ipproto",
                "udp",
                "sport",
                &sport.to_string(),
                "dport",
                UDP_PORT,
            ],
        );
        assert!(out.status.success(), "{}", describe("ip route get", &out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let gw = v[0]["gateway"].as_str().unwrap_or_default();
        NEXT_HOPS.iter().position(|h| *h == gw).unwrap_or_else(|| {
            panic!(
                "ip route get: no node's next hop: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The datagrams of tag `tag` that reached the origin, per node: how
    /// many were sent before `at` (Unix ms), and the send time of the last.
    fn probe_across(&self, tag: &str, at: u64) -> ([u64; 2], [Option<u64>; 2]) {
        let mut via = BTreeMap::new();
        let (mut before, mut last) = ([0; 2], [None; 2]);
        for (src, port, ts) in self.datagrams(tag) {
            let node = *via
                .entry((src.clone(), port))
                .or_insert_with(|| self.node_of_flow(&src, port));
            if ts < at {
                before[node] += 1;
            }
            last[node] = last[node].max(Some(ts));
        }
        (before, last)
    }

    /// Per node, the send time of the first datagram of tag `tag` sent at or
    /// after `at` (Unix ms) that reached the origin.
    fn first_after(&self, tag: &str, at: u64) -> [Option<u64>; 2] {
        let mut via = BTreeMap::new();
        let mut first: [Option<u64>; 2] = [None; 2];
        for (src, port, ts) in self.datagrams(tag) {
            let node = *via
                .entry((src.clone(), port))
                .or_insert_with(|| self.node_of_flow(&src, port));
            if ts >= at {
                first[node] = Some(first[node].map_or(ts, |f| f.min(ts)));
            }
        }
        first
    }

    /// Starts the game client (bounded: `rate` × `secs` datagrams).
    fn spawn_game(&self, tag: &str, flows: u32, rate: u32, secs: u32, sources: &[&str]) -> Child {
        let script = root().join("tests/cluster/game-client.py");
        let (flows, rate, secs_s) = (flows.to_string(), rate.to_string(), secs.to_string());
        let mut c = self.exec_cmd(
            &self.inet,
            u64::from(secs) + 15,
            &[
                "python3",
                script.to_str().unwrap(),
                VIP,
                UDP_PORT,
                tag,
                &flows,
                &rate,
                &secs_s,
            ],
        );
        c.args(sources)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().expect("game-client.py starts")
    }

    /// `curl` of the small page from `src`: whether it fetched the page.
    fn fetch(&self, src: &str) -> Result<(), String> {
        let out = self.exec(
            &self.inet,
            20,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "--interface",
                src,
                &format!("http://{VIP}/"),
            ],
        );
        let page = fs::read(self.state.join("www/index.html")).expect("served page");
        if out.status.success() && out.stdout == page {
            Ok(())
        } else {
            Err(describe(&format!("curl from {src}"), &out))
        }
    }

    /// Runs the game client to its end; the datagrams it sent.
    fn game(&self, tag: &str, flows: u32, rate: u32, secs: u32, sources: &[&str]) -> u64 {
        finish_game(self.spawn_game(tag, flows, rate, secs, sources))
    }
}

/// Waits for a game client; the datagrams it sent. Its own `timeout` bounds it.
fn finish_game(child: Child) -> u64 {
    let out = child.wait_with_output().expect("game-client.py runs");
    assert!(out.status.success(), "{}", describe("game-client.py", &out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("game-client.py prints JSON");
    v["sent"].as_u64().expect("sent")
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.bird_state());
            let logs = [
                "rtr/bird.log",
                "n1/nats.log",
                "n2/nats.log",
                "rtr/nats.log",
                "http-server.out",
            ];
            print_tails(&self.state, &logs, 10);
        }
        topology_down(&self.script, &self.state, &self.prefix);
    }
}

/// One Moat node (`moat run` in its namespace); dropping it stops it.
struct Node {
    /// 1 or 2.
    id: usize,
    ns: String,
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    /// When the current process was spawned.
    started: Instant,
}

impl Node {
    /// Writes the node's config (tests/cluster/node.toml filled in, with
    /// `[bgp]` and `[cluster]`) into `dir`.
    fn new(id: usize, ns: &str, dir: &Path, topo_state: &Path) -> Node {
        fs::create_dir_all(dir).unwrap();
        let template = fs::read_to_string(root().join("tests/cluster/node.toml")).unwrap();
        // The shared cookie secret, and the API token, readable by root only
        // (Moat warns about a secret others can read).
        let secret = dir.parent().unwrap().join("cluster.secret");
        if !secret.exists() {
            fs::copy(root().join("examples/cluster.secret"), &secret).unwrap();
            fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let token = dir.join("api.token");
        fs::write(&token, format!("{TOKEN}\n")).unwrap();
        fs::set_permissions(&token, fs::Permissions::from_mode(0o600)).unwrap();
        let bird_socket = topo_state.join(format!("n{id}")).join("bird.ctl");
        let text = template
            .replace("@NAME@", &format!("moat-n{id}"))
            .replace("@STATE@", dir.join("state").to_str().unwrap())
            .replace("@SECRET@", secret.to_str().unwrap())
            .replace("@OUTSIDE@", NEXT_HOPS[id - 1])
            .replace("@INSIDE@", INSIDE[id - 1])
            .replace("@TOKEN@", token.to_str().unwrap())
            + &format!(
                r#"
[bgp]
bird_socket = "{sock}"
protocol = "moat_vips"
liveness_iface = "moat0"
hold_down_secs = {HOLD_DOWN_SECS}
drain_secs = {DRAIN_SECS}

[cluster]
nats = ["nats://127.0.0.1:4222"]
name = "moat-test"
share_verified = true
share_config = true
"#,
                sock = bird_socket.display()
            );
        assert!(!text.contains('@'), "unfilled field in the node config:\n{text}");
        let config = dir.join("moat.toml");
        fs::write(&config, text).unwrap();
        Node {
            id,
            ns: ns.to_string(),
            dir: dir.to_path_buf(),
            config,
            child: None,
            started: Instant::now(),
        }
    }

    fn stats_path(&self) -> PathBuf {
        self.dir.join("stats.json")
    }

    /// Starts `moat run` and waits for its "worker(s) on the" line and first
    /// stats snapshot.
    fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let _ = fs::remove_file(self.stats_path());
        let (out, err) = (self.dir.join("moat.out"), self.dir.join("moat.err"));
        // Each start's logs after the last ones (a restart keeps them).
        let append = |p: &Path| fs::OpenOptions::new().create(true).append(true).open(p).unwrap();
        let (o, e) = (append(&out), append(&err));
        let err_len = fs::metadata(&err).map(|m| m.len()).unwrap_or(0) as usize;
        self.started = Instant::now();
        let child = cmd("ip")
            .args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_moat"), "run", "--config"])
            .arg(&self.config)
            .arg("--stats")
            .arg(self.stats_path())
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .spawn()
            .expect("moat run starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(&err).unwrap_or_default();
            if text.get(err_len..).unwrap_or("").contains(" worker(s) on the ") && self.stats_path().exists() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "node {}: moat run exited at start-up: {status}\n{}",
                    self.id,
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {}: moat run did not report running in 30 s\n{}",
                self.id,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        let tail = |p: PathBuf| {
            let t = fs::read_to_string(p).unwrap_or_default();
            let v: Vec<&str> = t.lines().rev().take(30).collect();
            v.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        format!(
            "--- node {} moat stdout (tail)\n{}\n--- node {} moat stderr (tail)\n{}",
            self.id,
            tail(self.dir.join("moat.out")),
            self.id,
            tail(self.dir.join("moat.err"))
        )
    }

    /// SIGKILL (`kill -9`): nothing of Moat runs after this, not even its
    /// exit path. Returns the instant of the kill.
    fn kill9(&mut self) -> Instant {
        let mut child = self.child.take().expect("node running");
        let t = Instant::now();
        child.kill().expect("kill -9");
        let _ = child.wait();
        t
    }

    /// Waits up to `within` for the process to exit on its own.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                self.child = None;
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after 15 s.
    fn stop(&mut self) -> Option<ExitStatus> {
        let pid = self.child.as_ref()?.id().to_string();
        let _ = cmd("kill").args(["-TERM", &pid]).status();
        match self.wait_exit(Duration::from_secs(15)) {
            Some(s) => Some(s),
            None => {
                self.kill9();
                None
            }
        }
    }

    /// The last stats snapshot.
    fn stats(&self) -> Value {
        for _ in 0..40 {
            if let Some(v) = fs::read(self.stats_path())
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node {}: no readable stats\n{}", self.id, self.logs())
    }

    /// A snapshot written at least a second after this call.
    fn fresh_stats(&self) -> Value {
        let first = self.stats()["uptime_secs"].as_f64().unwrap_or(0.0);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.stats();
            if s["uptime_secs"].as_f64().unwrap_or(0.0) >= first + 1.05 {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: stats not rewritten for 10 s",
                self.id
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An API request inside the node's namespace: (status, ETag, body).
    fn api(&self, method: &str, path: &str, body: Option<&Value>, if_match: Option<&str>) -> (u16, String, String) {
        let url = format!("http://127.0.0.1:9180{path}");
        let mut args = vec![
            "curl".to_string(),
            "-sS".into(),
            "-i".into(),
            "--max-time".into(),
            "5".into(),
            "-X".into(),
            method.into(),
        ];
        if let Some(b) = body {
            args.extend(["-H".into(), "Content-Type: application/json".into()]);
            args.extend(["--data-binary".into(), b.to_string()]);
        }
        args.extend(["-H".into(), format!("Authorization: Bearer {TOKEN}")]);
        if let Some(m) = if_match {
            args.extend(["-H".into(), format!("If-Match: {m}")]);
        }
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = output(
            cmd("timeout")
                .args(["-k", "2", "10", "ip", "netns", "exec", &self.ns])
                .args(&args),
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let etag = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("etag").then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        (status, etag, body.to_string())
    }

    fn api_json(&self, path: &str) -> Value {
        let (status, _, body) = self.api("GET", path, None, None);
        assert_eq!(status, 200, "node {}: GET {path}: {body}", self.id);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("node {}: GET {path}: {e}: {body}", self.id))
    }

    /// The ACL deny list in force on the node.
    fn denied(&self) -> Vec<String> {
        let (status, _, body) = self.api("GET", "/api/v1/rules", None, None);
        if status != 200 {
            return Vec::new();
        }
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["acl"]["deny"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(String::from))
            .collect()
    }

    /// Replaces the ACL deny list through the API (read, modify, write with
    /// If-Match); the status of the PUT.
    fn set_denied(&self, f: impl Fn(&mut Vec<Value>)) -> (u16, String) {
        let (status, etag, body) = self.api("GET", "/api/v1/rules", None, None);
        assert_eq!(status, 200, "node {}: GET /api/v1/rules: {body}", self.id);
        let mut rules: Value = serde_json::from_str(&body).unwrap();
        let mut deny = rules["acl"]["deny"].as_array().cloned().unwrap_or_default();
        f(&mut deny);
        rules["acl"]["deny"] = Value::Array(deny);
        let (status, _, body) = self.api("PUT", "/api/v1/rules", Some(&rules), Some(&etag));
        (status, body)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// A counter of a stats snapshot by JSON path (0 when absent).
fn n(s: &Value, path: &[&str]) -> u64 {
    path.iter().fold(s, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// `tests/cluster/slow-client.py` running in `inet`; its events arrive on a
/// channel. Dropping it stops the client (SIGTERM to `timeout`, which passes
/// it on).
struct Transfers {
    child: Child,
    events: Receiver<Value>,
    connected: usize,
    done: Vec<Value>,
    summary: Option<Value>,
}

impl Transfers {
    fn start(topo: &Topology, count: usize, sources: &[&str]) -> Transfers {
        let script = root().join("tests/cluster/slow-client.py");
        let expect = topo.state.join("www/big.bin");
        let mut args = vec![
            "python3".to_string(),
            script.to_str().unwrap().to_string(),
            VIP.into(),
            "/big.bin".into(),
            expect.to_str().unwrap().to_string(),
            count.to_string(),
            RATE.to_string(),
            // A stall of 20 s counts as failed.
            "20".into(),
        ];
        args.extend(sources.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = topo
            .exec_cmd(&topo.inet, 120, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("slow-client.py starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("slow-client.py: {line}"),
                }
            }
        });
        Transfers {
            child,
            events: rx,
            connected: 0,
            done: Vec::new(),
            summary: None,
        }
    }

    /// Takes events until `until` says stop or `deadline` passes.
    fn pump(&mut self, deadline: Instant, until: impl Fn(&Transfers) -> bool) {
        while !until(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.events.recv_timeout(left) {
                Ok(v) => match v["event"].as_str() {
                    Some("connected") => self.connected += 1,
                    Some("done") => self.done.push(v),
                    Some("summary") => self.summary = Some(v),
                    _ => {}
                },
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Waits until `n` connections are up (bounded), panicking with what it
    /// has otherwise.
    fn wait_connected(&mut self, n: usize, within: Duration) {
        self.pump(Instant::now() + within, |t| t.connected + t.done.len() >= n);
        assert!(
            self.connected >= n,
            "only {} of {n} slow transfers connected in {within:?}; ended: {:?}",
            self.connected,
            self.done
        );
    }

    /// Waits for the summary (bounded); (summary, per-transfer results).
    fn finish(mut self, within: Duration) -> (Value, Vec<Value>) {
        self.pump(Instant::now() + within, |t| t.summary.is_some());
        let summary = self.summary.take().unwrap_or_else(|| {
            panic!(
                "the slow transfers did not end in {within:?} ({} done: {:?})",
                self.done.len(),
                self.done
            )
        });
        let _ = self.child.wait();
        (summary, std::mem::take(&mut self.done))
    }
}

impl Drop for Transfers {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = cmd("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
        }
    }
}

/// The drop counters (by reason) that grew from `a` to `b`, for messages.
fn drops_grown(a: &Value, b: &Value) -> String {
    let mut grown = BTreeMap::new();
    for (k, v) in b["drops_by_reason"].as_object().into_iter().flatten() {
        let d = v.as_u64().unwrap_or(0).saturating_sub(n(a, &["drops_by_reason", k]));
        if d > 0 {
            grown.insert(k.clone(), d);
        }
    }
    format!("{grown:?}")
}

/// Every transfer complete with the right bytes, none reset: the figures,
/// or a panic naming the failed ones.
fn assert_all_complete(case: &str, summary: &Value, done: &[Value], drops: &str) -> String {
    let total = summary["total"].as_u64().unwrap_or(0);
    let complete = summary["complete"].as_u64().unwrap_or(0);
    let resets = summary["resets"].as_u64().unwrap_or(0);
    let failed: Vec<&Value> = done.iter().filter(|d| d["result"] != "complete").collect();
    assert!(
        total > 0 && complete == total && resets == 0,
        "({case}) {complete}/{total} transfers complete, {resets} reset; the surviving node's drops meanwhile: \
         {drops}; failed: {failed:#?}"
    );
    let secs: Vec<f64> = done.iter().filter_map(|d| d["secs"].as_f64()).collect();
    let longest = secs.iter().copied().fold(0.0, f64::max);
    format!("{complete}/{total} transfers complete with the exact {BIG_SIZE} bytes, 0 resets, longest {longest:.1} s")
}

#[test]
fn cluster_of_two_nodes_announces_fails_over_drains_and_shares_config() {
    if !can_run(
        "cluster test",
        missing_prerequisite(
            &TOOLS,
            "bird2 nats-server openvswitch-switch curl ethtool iproute2 procps python3",
        ),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let topo = Topology::up(&dir.path().join("topo"));
    let mut nodes = [
        Node::new(1, &topo.nodes[0], &dir.path().join("n1"), &topo.state),
        Node::new(2, &topo.nodes[1], &dir.path().join("n2"), &topo.state),
    ];
    for node in nodes.iter_mut() {
        node.start();
    }
    eprintln!("topology and both nodes up in {}", ms(t0.elapsed()));

    // 1. Both nodes announce; flows spread over them.
    let both = NEXT_HOPS;
    let announced = topo.wait_next_hops(&both, Duration::from_secs(30));
    assert!(
        announced.is_some(),
        "(1) the router has no route with both next hops: {:?}\n{}",
        topo.next_hops(),
        topo.bird_state()
    );
    for node in &nodes {
        let c = node.api_json("/api/v1/cluster");
        assert_eq!(
            c["bgp"]["state"], "announced",
            "(1) node {} does not say it announces: {c}",
            node.id
        );
        eprintln!("(1) node {} GET /api/v1/cluster: {c}", node.id);
    }
    let s0 = [nodes[0].fresh_stats(), nodes[1].fresh_stats()];
    for src in FETCH_SOURCES {
        for _ in 0..3 {
            if let Err(e) = topo.fetch(src) {
                panic!("(1) fetch through the cluster failed: {e}");
            }
        }
    }
    let sent = topo.game("c1", 24, 400, 2, &FETCH_SOURCES);
    let got: u64 = topo.udp_received("c1").values().sum();
    let s1 = [nodes[0].fresh_stats(), nodes[1].fresh_stats()];
    let passed: Vec<u64> = (0..2)
        .map(|i| n(&s1[i], &["passed_by_service", "web"]) - n(&s0[i], &["passed_by_service", "web"]))
        .collect();
    assert!(
        passed[0] > 0 && passed[1] > 0,
        "(1) flows did not spread: passed for web on node 1 {}, node 2 {}",
        passed[0],
        passed[1]
    );
    eprintln!(
        "(1) route with next hops {both:?} {} after the nodes started; {} fetches + {sent} game datagrams \
         ({got} reached the origin): passed on node 1 {}, node 2 {}",
        ms(announced.unwrap()),
        FETCH_SOURCES.len() * 3,
        passed[0],
        passed[1]
    );

    // 2. kill -9 of node 1 in the middle of slow transfers.
    const TRANSFERS: usize = 30;
    let mut transfers = Transfers::start(&topo, TRANSFERS, &TRANSFER_SOURCES);
    transfers.wait_connected(TRANSFERS, Duration::from_secs(30));
    // 12 s of game traffic across the kill (bounded: 200/s × 12 s).
    let game = topo.spawn_game("c2", 16, 200, 12, &FETCH_SOURCES);
    // Let the transfers run through both nodes for a while.
    let k0 = nodes[0].fresh_stats();
    std::thread::sleep(Duration::from_secs(3));
    let k1 = nodes[0].fresh_stats();
    let node1_passed = n(&k1, &["passed_by_service", "web"]) - n(&k0, &["passed_by_service", "web"]);
    assert!(node1_passed > 0, "(2) node 1 carried nothing before the kill");
    let killed = nodes[0].kill9();
    let withdrawn = topo.wait_next_hops(&[NEXT_HOPS[1]], Duration::from_secs(15));
    let withdraw_after_kill = killed.elapsed();
    let withdrawn = withdrawn.unwrap_or_else(|| {
        panic!(
            "(2) the router still routes through node 1 {withdraw_after_kill:?} after kill -9: {:?}\n{}",
            topo.next_hops(),
            topo.bird_state()
        )
    });
    eprintln!(
        "(2) kill -9 of node 1 -> route withdrawn in {} (polled every 10 ms)",
        ms(withdrawn)
    );
    let n2_before = nodes[1].stats();
    let mut new_ok = 0;
    for src in &FETCH_SOURCES[..4] {
        topo.fetch(src)
            .unwrap_or_else(|e| panic!("(2) a new connection after the kill failed: {e}"));
        new_ok += 1;
    }
    let (summary, done) = transfers.finish(Duration::from_secs(90));
    let n2_after = nodes[1].stats();
    let figures = assert_all_complete("2", &summary, &done, &drops_grown(&n2_before, &n2_after));
    let game = game.wait_with_output().expect("game-client.py runs");
    assert!(game.status.success(), "{}", describe("game-client.py", &game));
    let game_sent = serde_json::from_slice::<Value>(&game.stdout).unwrap()["sent"]
        .as_u64()
        .unwrap();
    let game_got: u64 = topo.udp_received("c2").values().sum();
    // What was sent to node 1 between the kill and the withdrawal is lost;
    // the rest arrives.
    assert!(
        game_got * 100 >= game_sent * 90,
        "(2) only {game_got} of {game_sent} game datagrams sent across the kill reached the origin"
    );
    eprintln!(
        "(2) {figures}; {new_ok}/4 new connections after the kill succeeded; game datagrams across the kill: \
         {game_got}/{game_sent} reached the origin"
    );

    // Node 1 back for the drain.
    let restarted = Instant::now();
    nodes[0].start();
    let back = topo.wait_next_hops(&both, Duration::from_secs(30));
    assert!(
        back.is_some(),
        "node 1 restarted: not announced again\n{}",
        topo.bird_state()
    );
    // Case 2's sources, verified before node 1 restarted: verified on it,
    // sent by node 2 when node 1 joined the bus.
    let (t0, checked) = (Instant::now(), restarted.elapsed());
    let mut missing: Vec<&str> = TRANSFER_SOURCES.to_vec();
    let mut passes = 0;
    while !missing.is_empty() && t0.elapsed() < Duration::from_secs(3) {
        passes += 1;
        missing.retain(|ip| nodes[0].api_json(&format!("/api/v1/verified/{ip}"))["verified"] != true);
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = nodes[0].api_json("/api/v1/cluster");
    assert!(
        missing.is_empty(),
        "(3) case 2's sources {missing:?} not verified on the restarted node 1: {c}"
    );
    eprintln!(
        "(3) case 2's {} sources verified on the restarted node 1: checked {} after it was started (once \
         announced again), all there after {passes} pass(es) of the API ({}, a curl each); catch-up: {} \
         sources sent by node 2",
        TRANSFER_SOURCES.len(),
        ms(checked),
        ms(t0.elapsed()),
        nodes[1].api_json("/api/v1/cluster")["bus"]["catchup"]["sent"]
    );

    // 3. moat drain on node 2 in the middle of slow transfers.
    const DRAINED: usize = 20;
    let mut transfers = Transfers::start(&topo, DRAINED, &DRAIN_SOURCES);
    transfers.wait_connected(DRAINED, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    // Game traffic across the drain: withdrawn first, node 2 scrubbing on
    // meanwhile, so nothing is lost (bounded: 200/s × 10 s).
    let game = topo.spawn_game("c3", 16, 200, 10, &FETCH_SOURCES);
    std::thread::sleep(Duration::from_secs(1));
    let n1_before = nodes[0].stats();
    let drain_start = Instant::now();
    let drain = topo
        .exec_cmd(
            &nodes[1].ns,
            DRAIN_SECS + 30,
            &[
                env!("CARGO_BIN_EXE_moat"),
                "drain",
                "--config",
                nodes[1].config.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("moat drain starts");
    let withdrawn = topo.wait_next_hops(&[NEXT_HOPS[0]], Duration::from_secs(15));
    let withdrawn = withdrawn.unwrap_or_else(|| {
        panic!(
            "(3) moat drain: the router still routes through node 2: {:?}\n{}",
            topo.next_hops(),
            topo.bird_state()
        )
    });
    let c = nodes[1].api_json("/api/v1/cluster");
    assert_eq!(
        c["bgp"]["state"], "draining",
        "(3) node 2 withdrawn but not draining: {c}"
    );
    // Withdrawn first: node 2 still runs (and scrubs) once the router has
    // moved its flows.
    assert!(
        nodes[1]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None))),
        "(3) node 2 exited before the router withdrew it\n{}",
        nodes[1].logs()
    );
    let exit = nodes[1].wait_exit(Duration::from_secs(DRAIN_SECS + 20));
    let exited_after = drain_start.elapsed();
    let drain = drain.wait_with_output().expect("moat drain runs");
    assert!(drain.status.success(), "(3) {}", describe("moat drain", &drain));
    assert!(
        exit.is_some_and(|s| s.success()),
        "(3) node 2 did not exit 0 after the drain: {exit:?}\n{}",
        nodes[1].logs()
    );
    let (summary, done) = transfers.finish(Duration::from_secs(90));
    let figures = assert_all_complete("3", &summary, &done, &drops_grown(&n1_before, &nodes[0].stats()));
    let game_sent = finish_game(game);
    std::thread::sleep(Duration::from_millis(300));
    let game_got: u64 = topo.udp_received("c3").values().sum();
    assert!(
        game_got * 100 >= game_sent * 99,
        "(3) only {game_got} of {game_sent} game datagrams sent across the drain reached the origin"
    );
    eprintln!(
        "(3) moat drain on node 2 -> route withdrawn in {}, node 2 exited 0 after {}; {figures}; game datagrams \
         across the drain: {game_got}/{game_sent} reached the origin",
        ms(withdrawn),
        ms(exited_after)
    );
    nodes[1].start();
    assert!(
        topo.wait_next_hops(&both, Duration::from_secs(30)).is_some(),
        "node 2 restarted after the drain: not announced again\n{}",
        topo.bird_state()
    );

    // 4. An ACL added on node 1 is enforced by node 2 within a second: game
    // traffic from the source runs across the change, each datagram carries
    // its send time, and the router says which node each flow goes through.
    let deny = format!("{DENIED}/32");
    let d0 = nodes[1].fresh_stats();
    let probe = topo.spawn_game("c4d", 16, 400, 5, &[DENIED]);
    std::thread::sleep(Duration::from_millis(1500));
    let put_ms = unix_ms();
    let put = Instant::now();
    let (status, body) = nodes[0].set_denied(|d| d.push(json!(deny)));
    assert_eq!(status, 200, "(4) PUT /api/v1/rules on node 1: {body}");
    let seen = wait_for(Duration::from_secs(5), || nodes[1].denied().iter().any(|d| d == &deny));
    let shown = put.elapsed();
    assert!(
        seen,
        "(4) node 2 does not show the deny of {deny} 5 s after node 1 took it"
    );
    let sent = finish_game(probe);
    let (before, last) = topo.probe_across("c4d", put_ms);
    let d1 = nodes[1].fresh_stats();
    let acl_drops = n(&d1, &["drops_by_reason", "acl_deny"]) - n(&d0, &["drops_by_reason", "acl_deny"]);
    assert!(
        before[1] > 0,
        "(4) no datagram of the probe went through node 2 before the change: the probe shows nothing ({before:?})"
    );
    let enforced = last[1].map(|t| t.saturating_sub(put_ms)).unwrap_or(0);
    assert!(
        enforced <= 1000 && acl_drops > 0,
        "(4) node 2 still passed {DENIED} {enforced} ms after the deny was put on node 1 (at most 1 s); \
         node 2 dropped {acl_drops} as acl_deny"
    );
    let probe = topo.spawn_game("c4a", 16, 400, 5, &[DENIED]);
    std::thread::sleep(Duration::from_millis(1500));
    let del_ms = unix_ms();
    let del = Instant::now();
    let (status, body) = nodes[0].set_denied(|d| d.retain(|v| v.as_str() != Some(deny.as_str())));
    assert_eq!(status, 200, "(4) PUT /api/v1/rules on node 1 (delete): {body}");
    let gone = wait_for(Duration::from_secs(5), || !nodes[1].denied().iter().any(|d| d == &deny));
    let unshown = del.elapsed();
    assert!(
        gone,
        "(4) node 2 still shows the deny of {deny} 5 s after node 1 deleted it"
    );
    let sent_after = finish_game(probe);
    // Sent well before the deletion (100 ms: a datagram in flight while
    // node 1 applies its own change may pass): none got through.
    let (before_del, _) = topo.probe_across("c4a", del_ms - 100);
    let first = topo.first_after("c4a", del_ms);
    assert_eq!(
        before_del,
        [0, 0],
        "(4) datagrams from the denied {DENIED} reached the origin before the deny was deleted"
    );
    let lifted = first[1].map(|t| t.saturating_sub(del_ms));
    assert!(
        lifted.is_some_and(|l| l <= 1000),
        "(4) node 2 passed nothing from {DENIED} within 1 s of the deny's deletion on node 1 (first after {lifted:?} ms)"
    );
    eprintln!(
        "(4) ACL deny put on node 1: node 2 showed it after {}, its last datagram from {DENIED} passed was sent \
         {enforced} ms after the PUT began ({acl_drops} of {sent} dropped there as acl_deny); deleted: node 2 showed \
         it after {}, passed the source again {} ms after ({sent_after} sent)",
        ms(shown),
        ms(unshown),
        lifted.unwrap_or(0)
    );

    // 5. The bus stopped: both nodes keep scrubbing; a change made during
    // the outage converges once it is back.
    topo.script("nats-stop", 60);
    std::thread::sleep(Duration::from_secs(2));
    let o0 = [nodes[0].fresh_stats(), nodes[1].fresh_stats()];
    for src in FETCH_SOURCES {
        topo.fetch(src)
            .unwrap_or_else(|e| panic!("(5) a fetch with the bus down failed: {e}"));
    }
    let sent = topo.game("c5", 24, 400, 2, &FETCH_SOURCES);
    let got: u64 = topo.udp_received("c5").values().sum();
    let o1 = [nodes[0].fresh_stats(), nodes[1].fresh_stats()];
    let passed: Vec<u64> = (0..2)
        .map(|i| n(&o1[i], &["passed_by_service", "web"]) - n(&o0[i], &["passed_by_service", "web"]))
        .collect();
    assert!(
        passed[0] > 0 && passed[1] > 0,
        "(5) with the bus down a node stopped scrubbing: passed on node 1 {}, node 2 {}",
        passed[0],
        passed[1]
    );
    assert_eq!(
        topo.next_hops(),
        both,
        "(5) with the bus down a node withdrew its announcement\n{}",
        topo.bird_state()
    );
    let deny = format!("{DENIED_OUTAGE}/32");
    let (status, body) = nodes[0].set_denied(|d| d.push(json!(deny)));
    assert_eq!(status, 200, "(5) PUT /api/v1/rules on node 1 with the bus down: {body}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !nodes[1].denied().iter().any(|d| d == &deny),
        "(5) node 2 got node 1's change with the bus down?"
    );
    let restart = Instant::now();
    topo.script("nats-start", 120);
    let nats_up = restart.elapsed();
    let seen = wait_for(Duration::from_secs(30), || nodes[1].denied().iter().any(|d| d == &deny));
    let converged = restart.elapsed();
    assert!(
        seen,
        "(5) node 1's change made during the outage did not reach node 2 within 30 s of the bus's return\n{}",
        nodes[1].logs()
    );
    eprintln!(
        "(5) bus down: {} fetches and {got}/{sent} game datagrams through the nodes (passed on node 1 {}, node 2 {}); \
         the change made during the outage in force on node 2 {} after nats-server was restarted (the servers \
         took {} to elect a JetStream leader)",
        FETCH_SOURCES.len(),
        passed[0],
        passed[1],
        ms(converged),
        ms(nats_up)
    );

    // 6. Node 2 restarted: config from the bucket, announced after hold-down.
    // It stops cleanly (SIGTERM drains: withdraw, drain_secs, exit) and comes
    // back without its own copy of the API's changes, so that what it
    // enforces can only come from the bucket.
    nodes[1].stop();
    let _ = fs::remove_file(nodes[1].dir.join("state/changes.json"));
    assert!(
        topo.wait_next_hops(&[NEXT_HOPS[0]], Duration::from_secs(15)).is_some(),
        "(6) node 2 stopped: still announced\n{}",
        topo.bird_state()
    );
    nodes[1].start();
    let running = nodes[1].started.elapsed();
    let back = topo.wait_next_hops(&both, Duration::from_secs(30));
    let announce = nodes[1].started.elapsed();
    assert!(
        back.is_some(),
        "(6) node 2 restarted: not announced again\n{}",
        topo.bird_state()
    );
    assert!(
        announce >= Duration::from_secs(HOLD_DOWN_SECS),
        "(6) node 2 announced {} after it started, before its hold-down of {HOLD_DOWN_SECS} s",
        ms(announce)
    );
    assert!(
        nodes[1].denied().iter().any(|d| d == &deny),
        "(6) node 2 restarted without the bucket's ACL change ({deny}): {:?}",
        nodes[1].denied()
    );
    let sent = topo.game("c6", 8, 400, 1, &[DENIED_OUTAGE]);
    let got: u64 = topo.udp_received("c6").values().sum();
    assert_eq!(
        got, 0,
        "(6) {got}/{sent} datagrams from {DENIED_OUTAGE} reached the origin"
    );
    for src in FETCH_SOURCES {
        topo.fetch(src)
            .unwrap_or_else(|e| panic!("(6) a fetch after node 2's return failed: {e}"));
    }
    let status = nodes[1].api_json("/api/v1/cluster");
    eprintln!(
        "(6) node 2 restarted: the test saw it running (log line and first stats) {} after the spawn, the router \
         had its route again {} after the spawn (hold-down {HOLD_DOWN_SECS} s; node 2 says \"{}\"); the bucket's deny \
         of {DENIED_OUTAGE} in force on it (0/{sent} datagrams reached the origin)",
        ms(running),
        ms(announce),
        status["bgp"]["reason"].as_str().unwrap_or("?")
    );
    eprintln!("cluster test: all six cases in {}", ms(t0.elapsed()));
}

/// Polls `f` every 10 ms until it holds (true) or `within` passes (false).
fn wait_for(within: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
