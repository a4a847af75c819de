//! End to end, live: `syn_auth = "http-redirect"` and `[[services.udp_auth]]`
//! with real clients through `moat run` on AF_PACKET, in the live test's
//! topology (`tests/e2e/topology.sh`, see `mgmt/tests/e2e_live.rs`): the
//! clients and the attacker in `inet`, Moat in `moat`, the origin's real
//! HTTP server (all VIPs, port 80) and this test's game servers
//! (`tests/auth/game-server.py` on 203.0.113.11: an A2S server on udp/27015
//! that asks for its own challenge like real Source servers, a sink on
//! udp/7778) in `origin`. Scenarios, in order:
//!
//! - (a) `curl -L` (10.10.0.2) and Python `requests` (10.10.0.4) fetch the
//!   page of 203.0.113.12 (http-redirect): Moat answers their first
//!   request with a 307 carrying a token, their second with a 307 without
//!   it, and their third connection reaches the origin, which never sees a
//!   token;
//! - (b) a bot (10.10.0.3, Python opening connections and sending GETs
//!   without following redirects, 30 connections) gets 307s only and its
//!   address never appears in the origin's request log;
//! - (c) PyPI `python-a2s` (10.10.0.5) gets the A2S server's info through
//!   Moat's challenge and the server's own; a spoofed A2S_INFO flood
//!   (`hping3 --rand-source`, bounded) delivers nothing to the server, and
//!   Moat's challenges stay under `challenge_pps`;
//! - (d) first-packet: a Python client (10.10.0.6) that retransmits its init
//!   packet 500 ms later gets its next datagram through; a spoofed flood of
//!   the same packet from random sources delivers nothing.
//!
//! Needs root, `ip netns`, Open vSwitch, hping3, curl, ethtool, python3 with
//! `requests` (Debian python3-requests) and a Python with PyPI python-a2s
//! (`$MOAT_A2S_PYTHON`, else `/opt/moat-ci/a2s/bin/python3`). Without them
//! the test prints why and passes, unless `MOAT_E2E=1`, where it fails.
//! Run under `flock /tmp/moat-netns.lock` beside other namespace tests.
//! Everything it creates is removed by drop guards, on failure too; every
//! command runs under `timeout`, every flood is bounded by count, interval
//! and time and aims only at the namespaces' addresses.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::netns::{describe, output, print_tails, Moat, Topology};
use common::{can_run, cmd, missing_prerequisite, root};
use serde_json::Value;

const TOOLS: [&str; 12] = [
    "ip",
    "sysctl",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "hping3",
    "curl",
    "ethtool",
    "python3",
    "timeout",
    "setsid",
];
const CURL_CLIENT: &str = "10.10.0.2";
const BOT: &str = "10.10.0.3";
const REQUESTS_CLIENT: &str = "10.10.0.4";
const A2S_CLIENT: &str = "10.10.0.5";
/// Added to inet0 by this test.
const FP_CLIENT: &str = "10.10.0.6";
const WEB_VIP: &str = "203.0.113.12";
const GAME_VIP: &str = "203.0.113.11";
const A2S_PORT: &str = "27015";
const FP_PORT: &str = "7778";
const FP_INIT: &str = "dead0001636f6e6e656374";
const CHALLENGE_PPS: u64 = 200;
const ORIGIN_TUNNEL: &str = "192.168.77.2";

const CONFIG: &str = r#"
[node]
name = "moat-e2e-auth"
state_dir = "state"

[dataplane]
backend = "af_packet"
workers = 2
burst = 32

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
name = "web-redirect"
vip = "203.0.113.12"
origin = "web"
allow = ["tcp/80"]
syn_auth = "http-redirect"

[[services]]
name = "game"
vip = "203.0.113.11"
origin = "web"
allow = ["udp/27015", "udp/7778"]
syn_auth = "off"

[services.limits]
challenge_pps = 200

[[services.udp_auth]]
port = "udp/27015"
profile = "a2s"

[[services.udp_auth]]
port = "udp/7778"
profile = "first-packet"
value = "dead0001"
min_ms = 200
max_ms = 3000

[mgmt]
enabled = false
"#;

/// What this test asks of the topology beyond the shared harness.
trait AuthTopology {
    fn http_log(&self) -> String;
    fn game_log(&self) -> String;
    fn hping3(&self, label: &str, args: &[&str]) -> u64;
}

impl AuthTopology for Topology {
    fn http_log(&self) -> String {
        fs::read_to_string(self.state.join("http-server.log")).unwrap_or_default()
    }

    fn game_log(&self) -> String {
        fs::read_to_string(self.state.join("game-server.log")).unwrap_or_default()
    }

    /// A bounded hping3 run from `inet` (`args` hold `-c`): packets sent.
    fn hping3(&self, label: &str, args: &[&str]) -> u64 {
        assert!(args.contains(&"-c") && !args.contains(&"--flood"), "{label}: unbounded");
        let mut all = vec!["hping3"];
        all.extend_from_slice(args);
        let out = self.exec(&self.inet, 60, &all);
        let text = describe("hping3", &out);
        text.lines()
            .find_map(|l| {
                l.split(" packets transmitted")
                    .next()
                    .filter(|_| l.contains(" packets transmitted"))
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{label}: no hping3 statistics\n{text}"))
    }
}

/// The topology with the game server this test starts in it: on drop,
/// the servers' logs when the test failed, and the game server (its pid
/// file) stopped before the namespaces go.
struct WithGameServer(Topology);

impl std::ops::Deref for WithGameServer {
    type Target = Topology;
    fn deref(&self) -> &Topology {
        &self.0
    }
}

impl Drop for WithGameServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tails(
                &self.state,
                &["http-server.log", "game-server.out", "game-server.log"],
                15,
            );
        }
        if let Ok(pid) = fs::read_to_string(self.state.join("game-server.pid")) {
            let _ = cmd("kill").arg(pid.trim()).status();
        }
    }
}

fn n(s: &Value, path: &[&str]) -> u64 {
    path.iter().fold(s, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

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

fn origin_resolved(s: &Value) -> bool {
    s["neighbors"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|e| e["ip"] == ORIGIN_TUNNEL && e["mac"].is_string()))
}

/// The Python with python-a2s, if there is one.
fn a2s_python() -> Result<PathBuf, String> {
    let p = std::env::var_os("MOAT_A2S_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/moat-ci/a2s/bin/python3"));
    let ok = cmd(p.to_str().unwrap_or("python3"))
        .args(["-c", "import a2s"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Ok(p)
    } else {
        Err(format!(
            "no python-a2s at {} (python3 -m venv /opt/moat-ci/a2s && /opt/moat-ci/a2s/bin/pip install python-a2s==1.4.1, or set MOAT_A2S_PYTHON)",
            p.display()
        ))
    }
}

fn python_has_requests() -> bool {
    cmd("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Lines of a log whose second field (the client address) is `addr`.
fn lines_from<'a>(log: &'a str, field: usize, addr: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.split(' ').nth(field) == Some(addr)).collect()
}

#[test]
fn http_redirect_and_udp_auth_with_real_clients() {
    let why = missing_prerequisite(&TOOLS, "openvswitch-switch hping3 curl ethtool iproute2 procps python3")
        .or_else(|| {
            (!python_has_requests()).then(|| "python3 lacks requests (apt-get install python3-requests)".into())
        })
        .or_else(|| a2s_python().err());
    if !can_run("live http-redirect / udp_auth test", why) {
        return;
    }
    let py_a2s = a2s_python().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("moat.toml");
    fs::write(&config, CONFIG).unwrap();
    let topo = WithGameServer(Topology::up("auth", &dir.path().join("topo")));
    let here = root().join("tests/auth");
    topo.exec_ok(
        &topo.inet,
        10,
        &["ip", "addr", "add", &format!("{FP_CLIENT}/24"), "dev", "inet0"],
    );
    // The game servers, in the background (setsid: out of the test's
    // process group; the pid file names the Python process).
    let st = &topo.state;
    let server = format!(
        "setsid ip netns exec {} python3 {} {GAME_VIP} {A2S_PORT} {FP_PORT} {} {} </dev/null >{} 2>&1 &",
        topo.origin,
        here.join("game-server.py").display(),
        st.join("game-server.log").display(),
        st.join("game-server.pid").display(),
        st.join("game-server.out").display()
    );
    let out = output(cmd("bash").args(["-c", &server]));
    assert!(out.status.success(), "{}", describe("game-server.py", &out));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(st.join("game-server.out"))
        .unwrap_or_default()
        .starts_with("ready")
    {
        assert!(
            Instant::now() < deadline,
            "game-server.py did not start: {}",
            topo.game_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let moat = Moat::start(&topo.moat, &config, dir.path(), " worker(s) on the ", &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin_resolved(&moat.stats()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let page = fs::read_to_string(st.join("www/index.html")).expect("served page");
    let url = format!("http://{WEB_VIP}/");

    // (a) curl -L and requests follow both redirects and fetch the page.
    let s0 = moat.fresh_stats();
    let t = Instant::now();
    let out = topo.exec(
        &topo.inet,
        40,
        &[
            "curl",
            "-sS",
            "-L",
            "--max-time",
            "10",
            "--interface",
            CURL_CLIENT,
            &url,
        ],
    );
    let curl_ms = t.elapsed().as_millis();
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(a) curl -L {url} from {CURL_CLIENT}\n{}",
        describe("curl", &out)
    );
    let t = Instant::now();
    let py = here.join("http-clients.py");
    let out = topo.exec(
        &topo.inet,
        40,
        &["python3", py.to_str().unwrap(), "requests", REQUESTS_CLIENT, &url],
    );
    let requests_ms = t.elapsed().as_millis();
    assert!(
        out.status.success() && out.stdout == page.as_bytes(),
        "(a) requests {url} from {REQUESTS_CLIENT}\n{}",
        describe("requests", &out)
    );
    let s1 = moat.fresh_stats();
    let http = topo.http_log();
    for c in [CURL_CLIENT, REQUESTS_CLIENT] {
        let mine = lines_from(&http, 0, c);
        assert!(
            mine.iter().any(|l| l.ends_with(" GET /")) && !mine.iter().any(|l| l.contains("moat_token")),
            "(a) the origin saw no clean GET / from {c}:\n{http}"
        );
    }
    // Two 307s per client, and their handshake ACKs consumed.
    let d = drops_delta(&s0, &s1);
    assert!(
        n(&s1, &["replies"]) >= n(&s0, &["replies"]) + 8
            && d.get("http_handshake").copied().unwrap_or(0) >= 4
            && n(&s1, &["passed_by_service", "web-redirect"]) > n(&s0, &["passed_by_service", "web-redirect"]),
        "(a) the fetches did not go through the redirects: replies {} -> {}, drops {d:?}",
        n(&s0, &["replies"]),
        n(&s1, &["replies"])
    );
    eprintln!("(a) curl -L {curl_ms} ms, requests {requests_ms} ms; drops {d:?}");

    // (b) the bot: 307s only, nothing at the origin.
    let out = topo.exec(
        &topo.inet,
        60,
        &["python3", py.to_str().unwrap(), "bot", BOT, &url, "30"],
    );
    assert!(out.status.success(), "{}", describe("bot", &out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "307 30",
        "(b) {}",
        describe("bot", &out)
    );
    let http = topo.http_log();
    assert!(
        lines_from(&http, 0, BOT).is_empty(),
        "(b) the bot reached the origin:\n{http}"
    );

    // (c) python-a2s through Moat's challenge and the server's.
    let out = topo.exec(
        &topo.inet,
        30,
        &[
            py_a2s.to_str().unwrap(),
            here.join("a2s-query.py").to_str().unwrap(),
            A2S_CLIENT,
            GAME_VIP,
            A2S_PORT,
        ],
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "moat-e2e",
        "(c) python-a2s: {}",
        describe("a2s-query.py", &out)
    );
    let game = topo.game_log();
    let mine = lines_from(&game, 1, A2S_CLIENT);
    assert!(
        mine.iter().any(|l| l.ends_with(" challenge")) && mine.iter().any(|l| l.ends_with(" info")),
        "(c) the A2S server did not run its own challenge with the client:\n{game}"
    );
    // A spoofed A2S_INFO flood: 3,000 queries from random sources.
    let info = dir.path().join("a2s-info.bin");
    fs::write(&info, b"\xff\xff\xff\xffTSource Engine Query\x00").unwrap();
    let sc0 = moat.fresh_stats();
    let before = topo.game_log().lines().count();
    let t = Instant::now();
    let sent = topo.hping3(
        "(c) A2S flood",
        &[
            "--udp",
            "--rand-source",
            "-p",
            A2S_PORT,
            "-s",
            "27005",
            "-E",
            info.to_str().unwrap(),
            "-d",
            "25",
            "-c",
            "3000",
            "-i",
            "u300",
            GAME_VIP,
        ],
    );
    let flood_secs = t.elapsed().as_secs_f64();
    let sc1 = moat.fresh_stats();
    let game = topo.game_log();
    let new: Vec<&str> = game.lines().skip(before).collect();
    assert!(new.is_empty(), "(c) the spoofed A2S flood reached the server: {new:?}");
    let challenges = n(&sc1, &["replies"]) - n(&sc0, &["replies"]);
    let d = drops_delta(&sc0, &sc1);
    // The bucket holds a second's worth and refills at challenge_pps.
    let cap = CHALLENGE_PPS * (flood_secs.ceil() as u64 + 2);
    assert!(
        sent >= 2900 && challenges > 0 && challenges <= cap,
        "(c) {sent} queries sent in {flood_secs:.1} s drew {challenges} challenges (at most {cap}); drops {d:?}"
    );
    eprintln!("(c) A2S flood: {sent} queries in {flood_secs:.1} s, {challenges} challenges, drops {d:?}");

    // (d) first-packet: the retransmitting client passes.
    let out = topo.exec(
        &topo.inet,
        20,
        &[
            "python3",
            here.join("first-packet.py").to_str().unwrap(),
            FP_CLIENT,
            GAME_VIP,
            FP_PORT,
            FP_INIT,
            "500",
        ],
    );
    assert!(out.status.success(), "{}", describe("first-packet.py", &out));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !topo.game_log().contains(&format!("{FP_PORT} {FP_CLIENT} ")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let game = topo.game_log();
    let mine = lines_from(&game, 1, FP_CLIENT);
    assert!(
        mine.iter().any(|l| l.ends_with(&format!(" {FP_INIT}"))) && mine.iter().any(|l| l.ends_with(" 706c6179")),
        "(d) the first-packet client's retransmission and play datagram did not reach the server:\n{game}"
    );
    // The same packet flooded from random sources: nothing.
    let init = dir.path().join("init.bin");
    fs::write(&init, hex::decode(FP_INIT).unwrap()).unwrap();
    let sd0 = moat.fresh_stats();
    let before = game.lines().count();
    let sent = topo.hping3(
        "(d) first-packet flood",
        &[
            "--udp",
            "--rand-source",
            "-p",
            FP_PORT,
            "-E",
            init.to_str().unwrap(),
            "-d",
            "11",
            "-c",
            "3000",
            "-i",
            "u300",
            GAME_VIP,
        ],
    );
    let sd1 = moat.fresh_stats();
    let game = topo.game_log();
    let new: Vec<&str> = game.lines().skip(before).collect();
    assert!(
        new.is_empty(),
        "(d) the spoofed init packets reached the server: {new:?}"
    );
    let d = drops_delta(&sd0, &sd1);
    assert!(
        sent >= 2900 && d.get("udp_first_packet").copied().unwrap_or(0) >= sent * 9 / 10,
        "(d) {sent} sent, drops {d:?}"
    );
    eprintln!("(d) first-packet flood: {sent} sent, drops {d:?}");
}
