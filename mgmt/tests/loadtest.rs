//! `moat loadtest` live, on the netns topology of the live end-to-end test
//! (`tests/e2e/topology.sh`, Moat with `examples/e2e-netns.toml`).
//!
//! - `live_clients_answer_each_syn_auth_mode_and_count_what_moat_drops`:
//!   generated clients (source addresses the inet namespace's kernel does
//!   not own; the origin answers them by direct server return over `dsr0`)
//!   fetch the page through each SYN authentication mode: `challenge-ack`
//!   (service "web", 203.0.113.10: each client answers the challenge with
//!   the RST Moat verifies, then its SYN passes), `cookie-reset` ("web-reset",
//!   .11: the client ACKs the cookie, Moat resets, the client reconnects),
//!   `off` ("web-open", .12, added by this test). Every connection
//!   completes, the origin's HTTP server logs the clients' GETs, Moat counts
//!   the answered challenges. Clients from a range the config's ACL denies
//!   all fail by timeout, and Moat counts their packets as `acl_deny`.
//!   curl from the namespace's own address runs beside the first run.
//! - `short_sweep_writes_a_sane_csv_and_plot`: `benches/loadtest-sweep.sh
//!   --short --plot` (its own topology and Moat), then the CSV's columns and
//!   values: success rates within 0..1, times to first byte above 0, Moat's
//!   share of the flood at most what was offered, each flood seen in the
//!   drop reason or the replies it should cause, curl beside.
//!
//! Needs root, `ip netns`, Open vSwitch, curl, ethtool and python3; skips
//! with the reason without them, fails instead under `MOAT_E2E=1`. Run it
//! under `flock /tmp/moat-netns.lock` (other tests build namespaces too).
//! Namespaces are prefixed with the process id; drop guards remove them
//! and stop Moat, on failure too; every flood is bounded by its step's time.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use common::netns::{describe, Moat, Topology};
use common::{can_run, cmd, missing_prerequisite, root};
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
    "ethtool",
    "python3",
    "timeout",
];
/// One topology at a time (the tests' timings assume the machine is not
/// also running another).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PACKAGES: &str = "openvswitch-switch curl ethtool iproute2 procps python3";

/// The services this test adds to the example: one without SYN
/// authentication, and an ACL denying a client range.
const EXTRA_CONFIG: &str = r#"
[[services]]
name = "web-open"
vip = "203.0.113.12"
origin = "web"
allow = ["tcp/80"]
syn_auth = "off"

[acl]
deny = ["10.10.0.200/29"]
"#;

fn drops(s: &Value, reason: &str) -> u64 {
    s["drops_by_reason"][reason].as_u64().unwrap_or(0)
}

/// `moat loadtest run` in the inet namespace; its JSON result.
fn loadtest(topo: &Topology, dir: &Path, label: &str, args: &[&str]) -> Value {
    let json = dir.join(format!("{label}.json"));
    let out = topo
        .exec_cmd(&topo.inet, 60, &[env!("CARGO_BIN_EXE_moat")])
        .args([
            "loadtest",
            "run",
            "--iface",
            "inet0",
            "--rx-iface",
            "dsr0",
            "--gateway",
            "10.10.0.1",
        ])
        .args(["--think-ms", "100", "--quiet", "--json"])
        .arg(&json)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{label}: {}", describe("moat loadtest run", &out));
    eprintln!("{label}: {}", String::from_utf8_lossy(&out.stdout).trim());
    serde_json::from_slice(&fs::read(&json).unwrap()).unwrap()
}

fn n(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// Every connection completed, each client at least once.
fn all_completed(label: &str, r: &Value, clients: u64) {
    let g = &r["generated"];
    let failed: u64 = ["timeout", "reset", "bad_answer"]
        .iter()
        .map(|k| n(g, &["failed", k]))
        .sum();
    assert!(
        n(g, &["tried"]) >= clients && n(g, &["completed"]) == n(g, &["tried"]) && failed == 0,
        "{label}: not every connection completed: {g:#}"
    );
    let per = r["per_client"].as_array().unwrap();
    assert_eq!(per.len() as u64, clients, "{label}");
    assert!(
        per.iter().all(|c| n(c, &["completed"]) >= 1),
        "{label}: a client completed nothing: {per:?}"
    );
    let p50 = g["ttfb_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 4000.0, "{label}: TTFB p50 {p50} ms");
}

#[test]
fn live_clients_answer_each_syn_auth_mode_and_count_what_moat_drops() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("load test (live clients)", missing_prerequisite(&TOOLS, PACKAGES)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("e2e-netns.toml");
    let example = fs::read_to_string(root().join("examples/e2e-netns.toml")).unwrap();
    fs::write(&config, example + EXTRA_CONFIG).unwrap();
    let topo = Topology::up("lt", &dir.path().join("topo"));
    let moat = Moat::start(&topo.moat, &config, dir.path(), " worker(s) on the ", &[]);

    // challenge-ack: every client is challenged once, answers with the RST
    // Moat verifies, and its SYN passes on the retry; curl beside it.
    let s0 = moat.fresh_stats();
    let r = loadtest(
        &topo,
        dir.path(),
        "challenge-ack",
        &[
            "--src",
            "10.10.0.100-10.10.0.109",
            "--vip",
            "203.0.113.10",
            "--clients",
            "10",
            "--duration",
            "2",
            "--curl",
            "10.10.0.2",
        ],
    );
    all_completed("challenge-ack", &r, 10);
    let tcp = &r["generated"]["tcp"];
    assert!(
        n(tcp, &["challenge_rsts"]) >= 10 && n(tcp, &["reconnects"]) == 0,
        "{tcp:#}"
    );
    let s1 = moat.fresh_stats();
    let answered = drops(&s1, "challenge_answered") - drops(&s0, "challenge_answered");
    assert!(
        answered >= 10,
        "Moat verified {answered} sources, want the 10 clients (and curl)"
    );
    let curl = &r["curl"];
    assert!(
        n(curl, &["tried"]) >= 1 && n(curl, &["completed"]) == n(curl, &["tried"]),
        "curl beside the clients: {curl:#}"
    );

    // cookie-reset: the client ACKs the cookie, Moat resets, the client
    // connects again and passes.
    let r = loadtest(
        &topo,
        dir.path(),
        "cookie-reset",
        &[
            "--src",
            "10.10.0.120-10.10.0.129",
            "--vip",
            "203.0.113.11",
            "--clients",
            "10",
            "--duration",
            "2",
        ],
    );
    all_completed("cookie-reset", &r, 10);
    let tcp = &r["generated"]["tcp"];
    assert!(
        n(tcp, &["reconnects"]) >= 10 && n(tcp, &["resets_received"]) >= 10 && n(tcp, &["challenge_rsts"]) == 0,
        "cookie-reset: {tcp:#}"
    );
    let s2 = moat.fresh_stats();
    assert!(
        drops(&s2, "bad_cookie") == drops(&s0, "bad_cookie"),
        "an answer Moat refused"
    );

    // off: straight through, no challenge.
    let r = loadtest(
        &topo,
        dir.path(),
        "off",
        &[
            "--src",
            "10.10.0.140-10.10.0.149",
            "--vip",
            "203.0.113.12",
            "--clients",
            "10",
            "--duration",
            "2",
        ],
    );
    all_completed("off", &r, 10);
    let tcp = &r["generated"]["tcp"];
    assert!(
        n(tcp, &["challenge_rsts"]) == 0 && n(tcp, &["reconnects"]) == 0,
        "off: {tcp:#}"
    );

    let http = fs::read_to_string(topo.state.join("http-server.log")).unwrap_or_default();
    for c in [
        "10.10.0.100",
        "10.10.0.109",
        "10.10.0.120",
        "10.10.0.140",
        "10.10.0.149",
    ] {
        assert!(
            http.lines()
                .any(|l| l.starts_with(&format!("{c} ")) && l.ends_with("GET /")),
            "the origin logged no GET / from {c}"
        );
    }

    // Denied by the ACL: nothing comes back, every connection times out,
    // and Moat counts the clients' SYNs as acl_deny.
    let s3 = moat.fresh_stats();
    let r = loadtest(
        &topo,
        dir.path(),
        "denied",
        &[
            "--src",
            "10.10.0.200-10.10.0.207",
            "--vip",
            "203.0.113.10",
            "--clients",
            "8",
            "--duration",
            "1",
            "--timeout",
            "2",
        ],
    );
    let g = &r["generated"];
    assert!(
        n(g, &["tried"]) >= 8 && n(g, &["completed"]) == 0 && n(g, &["failed", "timeout"]) == n(g, &["tried"]),
        "denied clients: {g:#}"
    );
    let s4 = moat.fresh_stats();
    let denied = drops(&s4, "acl_deny") - drops(&s3, "acl_deny");
    let syns = n(g, &["tcp", "tx_frames"]);
    assert!(
        denied >= syns && syns >= 8,
        "Moat counted {denied} acl_deny drops for the {syns} SYNs of the denied clients"
    );
}

/// The columns a row is checked on, by name.
struct Row<'a> {
    names: &'a [String],
    cols: Vec<&'a str>,
}

impl Row<'_> {
    fn s(&self, name: &str) -> &str {
        let i = self
            .names
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        self.cols[i]
    }

    fn f(&self, name: &str) -> f64 {
        let v = self.s(name);
        v.parse().unwrap_or_else(|_| panic!("{name}: {v:?} is not a number"))
    }
}

#[test]
fn short_sweep_writes_a_sane_csv_and_plot() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run("load test (short sweep)", missing_prerequisite(&TOOLS, PACKAGES)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = cmd("timeout")
        .args(["-k", "10", "300", "bash"])
        .arg(root().join("benches/loadtest-sweep.sh"))
        .args(["--short", "--plot", "--out"])
        .arg(dir.path())
        .env("MOAT", env!("CARGO_BIN_EXE_moat"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe("loadtest-sweep.sh --short", &out));
    eprintln!("short sweep in {:.0} s", started.elapsed().as_secs_f64());
    let csv = fs::read_to_string(dir.path().join("loadtest-sweep.csv")).unwrap();
    eprintln!("{csv}");
    let mut lines = csv.lines();
    let title = lines.next().unwrap();
    assert!(
        title.starts_with("# moat loadtest sweep, ") && title.contains("UTC"),
        "{title}"
    );
    let header = lines.next().unwrap();
    assert_eq!(header, mgmt::cmd::loadtest::csv_header());
    let names: Vec<String> = header.split(',').map(String::from).collect();
    let rows: Vec<Row> = lines
        .map(|l| Row {
            names: &names,
            cols: l.split(',').collect(),
        })
        .collect();
    // A baseline, then 4 floods x 2 rates.
    assert_eq!(rows.len(), 9, "{csv}");
    assert_eq!(rows[0].s("flood"), "none");
    let mut floods_seen = std::collections::BTreeSet::new();
    for r in &rows {
        assert_eq!(r.cols.len(), names.len(), "{:?}", r.cols);
        let flood = r.s("flood");
        floods_seen.insert(flood.to_string());
        let success = r.f("legit_success");
        assert!((0.0..=1.0).contains(&success), "{flood}: success {success}");
        assert!(r.f("legit_tried") > 0.0, "{flood}: no client connection");
        let (p50, p99) = (r.f("legit_ttfb_p50_ms"), r.f("legit_ttfb_p99_ms"));
        assert!(p50 > 0.0 && p99 >= p50, "{flood}: TTFB p50 {p50} p99 {p99}");
        let curl = r.f("curl_success");
        assert!(
            (0.0..=1.0).contains(&curl) && r.f("curl_tried") > 0.0,
            "{flood}: curl {curl}"
        );
        // Moat's share of the flood is what it received less the legitimate
        // frames: at most what was offered, give or take the namespace
        // kernel's own few packets (ARP, neighbour discovery).
        let (offered, received) = (r.f("flood_offered_pps"), r.f("flood_rx_pps"));
        assert!(
            received <= offered * 1.02 + 20.0,
            "{flood}: received {received} pps of {offered} offered"
        );
        assert!(r.f("moat_rx_pps") >= received, "{flood}");
        let target = r.f("target_pps");
        match flood {
            "none" => assert!(
                target == 0.0 && offered == 0.0 && received < 20.0,
                "baseline: {received} pps"
            ),
            _ => assert!(offered > 0.0 && r.f("flood_sent") > 0.0, "{flood}: nothing sent"),
        }
        let drop = |reason: &str| r.f(&format!("drop_{reason}"));
        match flood {
            "syn-flood" => assert!(
                r.f("moat_replies_pps") > rows[0].f("moat_replies_pps"),
                "{flood}: no more challenges than without a flood"
            ),
            "ack-flood" => assert!(drop("tcp_no_flow") > 0.0, "{flood}: no tcp_no_flow drops"),
            "dns-reflection" => assert!(drop("reflection_port") > 0.0, "{flood}: no reflection_port drops"),
            "mix" => assert!(drop("tcp_no_flow") > 0.0 && drop("reflection_port") > 0.0, "{flood}"),
            _ => {}
        }
    }
    assert_eq!(
        floods_seen.into_iter().collect::<Vec<_>>(),
        ["ack-flood", "dns-reflection", "mix", "none", "syn-flood"]
    );
    let svg = fs::read_to_string(dir.path().join("loadtest-sweep.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("syn-flood (generated clients"),
        "the plot"
    );
}
