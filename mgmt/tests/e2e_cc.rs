//! End to end, live: connection limits and first-segment rules (issue 15)
//! with `moat run` on AF_PACKET between real Linux peers, in the topology
//! of `e2e_live.rs` (`tests/e2e/topology.sh`: clients in `inet`, Moat in
//! `moat`, the origin's servers behind OVS GRE, replies straight back):
//!
//! - (a) `src_conns = 4`: a Python client at 10.10.0.2 opens 9 connections
//!   and holds them; 4 complete their handshake, the others time out (their
//!   SYNs are dropped as `conn_limit_source`); meanwhile `curl` from the
//!   second source 10.10.0.4 fetches the page; once the client closes, its
//!   own fetch works again (FIN frees the count);
//! - (b) an `l7_rules` deny rule (`path_prefix = "/login"`): the client's
//!   `GET /login` is answered by a reset, and the origin's `ss -tn` holds
//!   no connection from that client port (Moat's RST reached it through
//!   GRE); `GET /` on another connection fetches the page;
//! - (c) a TCP payload rule on tcp/7000 (a Python echo server at the
//!   origin): a first segment starting with "MOAT" is echoed, one starting
//!   with anything else is reset on both sides;
//! - (d) `empty_conn_secs = 2` on the second VIP: a connection that sends
//!   nothing is reset 2 to 4 s after its handshake, on both sides, and Moat
//!   counts it (`empty_conn` in its drop counters).
//!
//! Needs root, `ip netns`, Open vSwitch, curl, ss and python3; skips without
//! them unless `MOAT_E2E=1`. Everything it creates is removed by drop
//! guards. Run under `flock /tmp/moat-netns.lock`.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::netns::{describe, Killed, Moat, Topology};
use common::{can_run, missing_prerequisite};
use serde_json::Value;

const TOOLS: [&str; 12] = [
    "ip",
    "sysctl",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
    "curl",
    "ss",
    "python3",
    "timeout",
];
const CLIENT: &str = "10.10.0.2";
const CLIENT2: &str = "10.10.0.4";
/// Service "cc": limits, rules.
const VIP: &str = "203.0.113.10";
/// Service "quiet": `empty_conn_secs`.
const VIP_EMPTY: &str = "203.0.113.11";
const ORIGIN_TUNNEL: &str = "192.168.77.2";
const ECHO_PORT: &str = "7000";
const SRC_CONNS: usize = 4;

/// Moat's config: the ports and origin of `examples/e2e-netns.toml`, two
/// services without SYN authentication.
const CONFIG: &str = r#"
[node]
name = "moat-e2e-cc"
state_dir = "state"

[dataplane]
backend = "af_packet"
workers = 2

[[ports]]
name = "outside"
role = "outside"
iface = "out0"
ip = "10.10.0.1/24"

[[ports]]
name = "inside"
role = "inside"
iface = "in0"
ip = "192.168.77.1/24"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"
mtu = 1476

[[services]]
name = "cc"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80", "tcp/7000"]
syn_auth = "off"

[services.limits]
src_conns = 4

[[services.l7_rules]]
path_prefix = "/login"
action = "deny"

[[services.payload_rules]]
port = "tcp/7000"
value = "4d4f4154"

[[services]]
name = "quiet"
vip = "203.0.113.11"
origin = "web"
allow = ["tcp/80"]
syn_auth = "off"

[services.limits]
empty_conn_secs = 2
"#;

/// The client side of each scenario, run in `inet` (one JSON line out).
const CLIENT_PY: &str = r#"
import json, socket, sys, time
mode, src, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def conn(timeout=3.0):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((host, port))
    return s

if mode == "hold":
    n, hold = int(sys.argv[5]), float(sys.argv[6])
    socks, failed = [], 0
    for _ in range(n):
        try:
            socks.append(conn(2.0))
        except OSError:
            failed += 1
    print(json.dumps({"connected": len(socks), "failed": failed}), flush=True)
    time.sleep(hold)
    for s in socks:
        s.close()
    print(json.dumps({"closed": len(socks)}), flush=True)
else:
    data, wait = bytes.fromhex(sys.argv[5]), float(sys.argv[6])
    s = conn()
    sport = s.getsockname()[1]
    t = time.monotonic()
    if data:
        s.sendall(data)
    s.settimeout(wait)
    try:
        got = s.recv(65536)
        out = "data:" + got.hex() if got else "eof"
    except ConnectionResetError:
        out = "reset"
    except socket.timeout:
        out = "timeout"
    print(json.dumps({"result": out, "sport": sport, "elapsed": time.monotonic() - t}), flush=True)
"#;

/// A TCP echo server at the origin: `python3 - ADDR PORT`.
const ECHO_PY: &str = r#"
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(64)
print("ready", flush=True)
def echo(c):
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"#;

/// What this test asks of the topology beyond the shared harness.
trait CcTopology {
    fn curl(&self, src: &str, url: &str) -> Output;
    fn client(&self, script: &Path, args: &[&str]) -> Value;
    fn origin_sockets(&self, client: &str, sport: u64) -> String;
    fn origin_forgets(&self, client: &str, sport: u64, secs: u64) -> Result<(), String>;
    fn served_page(&self) -> String;
}

impl CcTopology for Topology {
    fn curl(&self, src: &str, url: &str) -> Output {
        self.exec(
            &self.inet,
            30,
            &["curl", "-sS", "--max-time", "8", "--interface", src, url],
        )
    }

    /// The client script in `inet`; its last JSON line.
    fn client(&self, script: &Path, args: &[&str]) -> Value {
        let mut all = vec!["python3", script.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = self.exec(&self.inet, 30, &all);
        assert!(out.status.success(), "{}", describe("client", &out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let last = text.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("client output {text:?}: {e}"))
    }

    /// The origin's TCP sockets toward `client:sport` (`ss -tn`).
    fn origin_sockets(&self, client: &str, sport: u64) -> String {
        let dst = format!("dst {client}:{sport}");
        let out = self.exec(&self.origin, 10, &["ss", "-Htn", "state", "all", &dst]);
        assert!(out.status.success(), "{}", describe("ss", &out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits up to `secs` for the origin to hold no socket toward
    /// `client:sport`; what it still holds otherwise.
    fn origin_forgets(&self, client: &str, sport: u64, secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = self.origin_sockets(client, sport);
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(left);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn served_page(&self) -> String {
        fs::read_to_string(self.state.join("www/index.html")).expect("served page")
    }
}

fn drops(s: &Value) -> HashMap<String, u64> {
    s["drops_by_reason"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default()
}

fn grew(a: &Value, b: &Value, reason: &str) -> u64 {
    drops(b)
        .get(reason)
        .copied()
        .unwrap_or(0)
        .saturating_sub(drops(a).get(reason).copied().unwrap_or(0))
}

fn origin_resolved(s: &Value) -> bool {
    s["neighbors"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|e| e["ip"] == ORIGIN_TUNNEL && e["state"] == "reachable"))
}

#[test]
fn live_connection_limits_and_first_segment_rules() {
    if !can_run(
        "live connection-limit test",
        missing_prerequisite(&TOOLS, "openvswitch-switch curl iproute2 procps python3"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("moat.toml");
    fs::write(&config, CONFIG).unwrap();
    let client_py = dir.path().join("cc-client.py");
    fs::write(&client_py, CLIENT_PY).unwrap();
    let echo_py = dir.path().join("echo.py");
    fs::write(&echo_py, ECHO_PY).unwrap();
    let topo = Topology::up("cc", &dir.path().join("topo"));
    // The echo server at the origin, on the VIP.
    let mut echo = Killed(
        topo.exec_cmd(
            &topo.origin,
            600,
            &["python3", echo_py.to_str().unwrap(), VIP, ECHO_PORT],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("echo server"),
    );
    let mut ready = String::new();
    let _ = BufReader::new(echo.0.stdout.take().expect("stdout")).read_line(&mut ready);
    assert_eq!(ready.trim(), "ready", "echo server did not start");
    let moat = Moat::start(&topo.moat, &config, dir.path(), " worker(s) on the ", &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin_resolved(&moat.stats()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let page = topo.served_page();
    let url = format!("http://{VIP}/");

    // (a) src_conns: hold 9 connections from CLIENT; 4 complete.
    let s0 = moat.fresh_stats();
    let mut hold = topo
        .exec_cmd(
            &topo.inet,
            60,
            &[
                "python3",
                client_py.to_str().unwrap(),
                "hold",
                CLIENT,
                VIP,
                "80",
                &(SRC_CONNS + 5).to_string(),
                "4",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hold client");
    let mut lines = BufReader::new(hold.stdout.take().expect("stdout")).lines();
    let first: Value = serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    assert_eq!(
        (first["connected"].as_u64(), first["failed"].as_u64()),
        (Some(SRC_CONNS as u64), Some(5)),
        "(a) src_conns = {SRC_CONNS}: {first}\n{}",
        moat.logs()
    );
    // Meanwhile another source is not held back.
    let out = topo.curl(CLIENT2, &url);
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(a) the second source could not fetch while the first is at its limit\n{}",
        describe("curl", &out)
    );
    let closed: Value = serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    assert_eq!(closed["closed"].as_u64(), Some(SRC_CONNS as u64));
    let _ = hold.wait();
    // Its FINs freed the count: the first source fetches again.
    let out = topo.curl(CLIENT, &url);
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(a) after closing, the first source could not fetch\n{}",
        describe("curl", &out)
    );
    let s1 = moat.fresh_stats();
    assert!(
        grew(&s0, &s1, "conn_limit_source") >= 5,
        "(a) no conn_limit_source drops: {:?}",
        drops(&s1)
    );

    // (b) deny /login: reset on both sides; another path works.
    let login = hex::encode(b"GET /login HTTP/1.1\r\nHost: www\r\n\r\n");
    let r = topo.client(&client_py, &["request", CLIENT, VIP, "80", &login, "5"]);
    assert_eq!(r["result"], "reset", "(b) GET /login was not reset: {r}");
    let sport = r["sport"].as_u64().expect("sport");
    if let Err(left) = topo.origin_forgets(CLIENT, sport, 3) {
        panic!("(b) the origin still holds the denied connection: {left}");
    }
    let out = topo.curl(CLIENT, &url);
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(b) GET / did not fetch the page\n{}",
        describe("curl", &out)
    );
    let s2 = moat.fresh_stats();
    assert!(grew(&s1, &s2, "l7_deny") >= 1, "(b) no l7_deny drop: {:?}", drops(&s2));

    // (c) TCP payload rule: "MOAT..." is echoed, anything else reset.
    let good = hex::encode(b"MOAT hello");
    let r = topo.client(&client_py, &["request", CLIENT, VIP, ECHO_PORT, &good, "5"]);
    assert_eq!(
        r["result"],
        format!("data:{good}"),
        "(c) the matching first segment was not echoed: {r}"
    );
    let junk = hex::encode(b"JUNK hello");
    let r = topo.client(&client_py, &["request", CLIENT, VIP, ECHO_PORT, &junk, "5"]);
    assert_eq!(
        r["result"], "reset",
        "(c) the non-matching first segment was not reset: {r}"
    );
    let sport = r["sport"].as_u64().expect("sport");
    if let Err(left) = topo.origin_forgets(CLIENT, sport, 3) {
        panic!("(c) the origin still holds the mismatched connection: {left}");
    }
    let s3 = moat.fresh_stats();
    assert!(
        grew(&s2, &s3, "tcp_payload_mismatch") >= 1,
        "(c) no tcp_payload_mismatch drop: {:?}",
        drops(&s3)
    );

    // (d) empty_conn_secs = 2: a silent connection is reset after 2-4 s.
    let r = topo.client(&client_py, &["request", CLIENT2, VIP_EMPTY, "80", "", "8"]);
    let elapsed = r["elapsed"].as_f64().unwrap_or(0.0);
    assert_eq!(r["result"], "reset", "(d) the silent connection was not reset: {r}");
    assert!(
        (1.9..4.5).contains(&elapsed),
        "(d) reset after {elapsed:.2} s, not 2 to 4 s"
    );
    let sport = r["sport"].as_u64().expect("sport");
    if let Err(left) = topo.origin_forgets(CLIENT2, sport, 3) {
        panic!("(d) the origin still holds the empty connection: {left}");
    }
    let s4 = moat.fresh_stats();
    assert!(
        grew(&s3, &s4, "empty_conn") >= 1,
        "(d) no empty_conn count: {:?}",
        drops(&s4)
    );
    // A connection that talks is not touched.
    let out = topo.curl(CLIENT2, &format!("http://{VIP_EMPTY}/"));
    assert!(
        out.status.success(),
        "(d) GET / on the quiet VIP failed\n{}",
        describe("curl", &out)
    );
    drop(moat);
}
