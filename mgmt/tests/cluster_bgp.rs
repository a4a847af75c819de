//! BGP announcements through real BIRD 2 daemons, in network namespaces
//! (`tests/cluster/bgp-topology.sh`): an upstream router's BIRD
//! (docs/cluster/bird-router.conf) and a node's BIRD
//! (docs/cluster/bird-node.conf) beside `moat run` on AF_PACKET, its ports
//! on veths with no kernel address. The router's kernel table is polled
//! every 10 ms (`ip -j route`, bounded) and each time is printed:
//! (a) the VIP prefix reaches the router, via Moat's outside address, only
//!     after the hold-down; the API and /metrics say `announced`;
//! (d) Moat's outside port down → withdrawn; up → announced again after
//!     the hold-down;
//! (c) `moat drain` → withdrawn at once while Moat keeps running for
//!     `drain_secs`, then it exits 0;
//! (e) SIGTERM → the same drain; a second SIGTERM stops it at once (exit 0);
//! (b) `kill -9` of Moat → BIRD withdraws by itself (the liveness TAP
//!     goes with the process): the time from the kill to the withdrawal
//!     at the router.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{can_run, cmd, missing_prerequisite, root};

const TOOLS: [&str; 5] = ["ip", "bird", "birdc", "curl", "timeout"];
const VIP_NET: &str = "203.0.113.0/24";
/// Moat's outside address: the next hop the node's BIRD announces.
const MOAT_OUTSIDE: &str = "198.51.100.11";
const HOLD_DOWN: u64 = 3;
const DRAIN: u64 = 4;
/// The bound on every wait for the router's table.
const ROUTE_WAIT: Duration = Duration::from_secs(20);

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The namespaces and both BIRDs; dropping it tears them down.
struct Topology {
    script: PathBuf,
    state: PathBuf,
    prefix: String,
    router: String,
    node: String,
}

impl Topology {
    fn up(state: &Path) -> Topology {
        let prefix = format!("mb{}-", std::process::id());
        let t = Topology {
            script: root().join("tests/cluster/bgp-topology.sh"),
            state: state.to_path_buf(),
            router: format!("{prefix}r"),
            node: format!("{prefix}n"),
            prefix,
        };
        let out = t.script_cmd("up").output().expect("run bgp-topology.sh");
        assert!(out.status.success(), "{}", describe("bgp-topology.sh up", &out));
        t
    }

    fn script_cmd(&self, what: &str) -> Command {
        let mut c = cmd("timeout");
        c.args(["-k", "5", "60", "bash"])
            .arg(&self.script)
            .arg(what)
            .arg(&self.state)
            .arg(&self.prefix)
            .stdin(Stdio::null());
        c
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Output {
        cmd("timeout")
            .args(["-k", "2", "20", "ip", "netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    fn birdc(&self, who: &str, args: &[&str]) -> String {
        let sock = self.state.join(format!("bird-{who}.ctl"));
        let out = cmd("timeout")
            .args(["5", "birdc", "-s"])
            .arg(&sock)
            .args(args)
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn node_socket(&self) -> PathBuf {
        self.state.join("bird-node.ctl")
    }

    /// The router's next hops for the VIP prefix (empty: no route).
    fn vip_hops(&self) -> Vec<String> {
        let out = self.exec(&self.router, &["ip", "-j", "-4", "route", "show", VIP_NET]);
        assert!(out.status.success(), "{}", describe("ip route", &out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let routes = v.as_array().cloned().unwrap_or_default();
        let mut hops = Vec::new();
        for r in &routes {
            if let Some(g) = r["gateway"].as_str() {
                hops.push(g.to_string());
            }
            for h in r["nexthops"].as_array().into_iter().flatten() {
                hops.extend(h["gateway"].as_str().map(String::from));
            }
        }
        hops
    }

    /// Polls the router's table every 10 ms until the VIP route is
    /// `present` (or not), at most [`ROUTE_WAIT`]; the time it took.
    fn wait_route(&self, present: bool, what: &str) -> Duration {
        let t0 = Instant::now();
        loop {
            let hops = self.vip_hops();
            if hops.is_empty() != present {
                if present {
                    assert_eq!(hops, [MOAT_OUTSIDE], "{what}: the next hop is Moat's outside address");
                }
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < ROUTE_WAIT,
                "{what}: the VIP route still {} after {ROUTE_WAIT:?}\n{}",
                if present { "absent" } else { "present" },
                self.birdc("router", &["show", "route", "all"])
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most 20 s) for the eBGP session, so that the times below
    /// measure Moat and BIRD, not BIRD's connect delay.
    fn wait_session(&self) {
        let t0 = Instant::now();
        loop {
            let s = self.birdc("router", &["show", "protocols", "node1"]);
            if s.contains("Established") {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "no BGP session in 20 s:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- router: {}", self.birdc("router", &["show", "route", "all"]));
            eprintln!(
                "--- node: {}",
                self.birdc("node", &["show", "protocols", "all", "moat_vips"])
            );
        }
        match self.script_cmd("down").output() {
            Ok(o) if o.status.success() => {}
            r => eprintln!("bgp-topology.sh down failed: {r:?}"),
        }
    }
}

/// `moat run` in the node's namespace; dropping it kills it.
struct Moat {
    child: Child,
    err: PathBuf,
}

impl Moat {
    fn start(topo: &Topology, config: &Path, dir: &Path, run: &str) -> Moat {
        let err = dir.join(format!("moat-{run}.err"));
        let child = cmd("ip")
            .args([
                "netns",
                "exec",
                &topo.node,
                env!("CARGO_BIN_EXE_moat"),
                "run",
                "--config",
            ])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join(format!("moat-{run}.out"))).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("moat run starts");
        let mut m = Moat { child, err };
        let t0 = Instant::now();
        while !m.logs().contains("BGP: BIRD protocol moat_vips") {
            if let Ok(Some(s)) = m.child.try_wait() {
                panic!("moat run exited at start-up: {s}\n{}", m.logs());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "moat did not start\n{}",
                m.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn logs(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, sig: &str) {
        // `ip netns exec` execs the program: the child is Moat itself.
        let pid = self.child.id().to_string();
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_eq!(comm.trim(), "moat", "the child is moat");
        let st = cmd("kill").args([sig, &pid]).status().expect("kill");
        assert!(st.success());
    }

    /// Waits (at most `limit`) for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                t0.elapsed() < limit,
                "moat still running after {limit:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Moat {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- moat stderr\n{}", self.logs());
        }
    }
}

/// The node's config: AF_PACKET on out0/in0, the origin's next hop static
/// (no origin namespace needed), `[bgp]` on the node BIRD's socket.
fn config(dir: &Path, socket: &Path) -> PathBuf {
    let text = format!(
        r#"
[node]
name = "bgp-node1"
state_dir = "state"

[dataplane]
backend = "af_packet"
workers = 1

[[ports]]
name = "outside"
role = "outside"
iface = "out0"
ip = "{MOAT_OUTSIDE}/24"

[[ports]]
name = "inside"
role = "inside"
iface = "in0"
ip = "192.168.77.1/24"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"
mac = "02:00:00:00:77:02"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80"]

[mgmt]
listen = "127.0.0.1:9180"

[bgp]
bird_socket = "{}"
protocol = "moat_vips"
liveness_iface = "moat0"
hold_down_secs = {HOLD_DOWN}
drain_secs = {DRAIN}
"#,
        socket.display()
    );
    let p = dir.join("moat.toml");
    fs::write(&p, text).expect("write config");
    p
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// The status of `GET /api/v1/health` on the node (no token needed).
fn health_code(topo: &Topology) -> String {
    let out = topo.exec(
        &topo.node,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "2",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9180/api/v1/health",
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GET `path` on the node's API, with its generated token.
fn api(topo: &Topology, dir: &Path, path: &str) -> String {
    let token = fs::read_to_string(dir.join("state/api.token")).expect("generated token");
    let auth = format!("Authorization: Bearer {}", token.trim());
    let url = format!("http://127.0.0.1:9180{path}");
    let out = topo.exec(&topo.node, &["curl", "-sS", "-m", "5", "-H", &auth, &url]);
    assert!(out.status.success(), "{}", describe(&url, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bird_announces_while_moat_is_healthy_and_withdraws_on_drain_failure_and_death() {
    if !can_run(
        "BGP netns test",
        missing_prerequisite(&TOOLS, "bird2 iproute2 curl coreutils"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = Topology::up(&dir.path().join("topo"));
    topo.wait_session();
    let cfg = config(dir.path(), &topo.node_socket());
    assert!(topo.vip_hops().is_empty(), "nothing announced before Moat runs");

    // (a) Announced only after the hold-down: polled every 50 ms, the
    // health check first answers 200 at `healthy`, the route is absent
    // until then and for the hold-down after it.
    let t0 = Instant::now();
    let mut moat = Moat::start(&topo, &cfg, dir.path(), "a");
    let mut healthy = None;
    while topo.vip_hops().is_empty() {
        if healthy.is_none() && health_code(&topo) == "200" {
            healthy = Some(t0.elapsed());
        }
        assert!(
            t0.elapsed() < ROUTE_WAIT,
            "(a) no announcement in {ROUTE_WAIT:?}\n{}",
            moat.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let appeared = t0.elapsed();
    assert_eq!(
        topo.vip_hops(),
        [MOAT_OUTSIDE],
        "(a) the next hop is Moat's outside address"
    );
    let healthy = healthy.expect("(a) announced before health answered 200");
    println!(
        "(a) `moat run` started; healthy (GET /api/v1/health 200) at {}, VIP route at the router at {} \
         ({} after health; hold-down {HOLD_DOWN} s)",
        ms(healthy),
        ms(appeared),
        ms(appeared - healthy)
    );
    for l in moat.logs().lines().filter(|l| l.contains("BGP")) {
        println!("    moat: {l}");
    }
    // The announcer saw health at most one 100 ms tick before this poll did.
    assert!(
        appeared - healthy >= Duration::from_millis(HOLD_DOWN * 1000 - 150),
        "announced before the hold-down"
    );
    let cluster = api(&topo, dir.path(), "/api/v1/cluster");
    let v: serde_json::Value = serde_json::from_str(&cluster).expect("cluster JSON");
    assert_eq!(v["bgp"]["state"], "announced", "{cluster}");
    assert_eq!(v["bgp"]["bird_reachable"], true, "{cluster}");
    assert_eq!(v["bgp"]["liveness_iface"], "moat0", "{cluster}");
    let metrics = api(&topo, dir.path(), "/metrics");
    assert!(metrics.contains("moat_bgp_announced 1"), "{metrics}");

    // (d) The outside port goes down: health fails, withdrawn; back up:
    // announced again after the hold-down.
    let down = Instant::now();
    let out = topo.exec(&topo.node, &["ip", "link", "set", "out0", "down"]);
    assert!(out.status.success(), "{}", describe("link down", &out));
    let gone = topo.wait_route(false, "(d) outside port down");
    println!("(d) out0 down: withdrawn at the router {} later", ms(gone));
    assert!(moat.alive());
    assert!(api(&topo, dir.path(), "/api/v1/cluster").contains("port/outside"));
    let up = Instant::now();
    let out = topo.exec(&topo.node, &["ip", "link", "set", "out0", "up"]);
    assert!(out.status.success(), "{}", describe("link up", &out));
    let back = topo.wait_route(true, "(d) outside port up");
    println!(
        "(d) out0 up: announced again {} later (hold-down {HOLD_DOWN} s; down for {})",
        ms(back),
        ms(up - down)
    );
    assert!(back >= Duration::from_secs(HOLD_DOWN));

    // (c) `moat drain`: withdrawn first, scrubbing goes on for drain_secs,
    // then exit 0.
    let drain = Instant::now();
    let out = topo.exec(
        &topo.node,
        &[
            env!("CARGO_BIN_EXE_moat"),
            "drain",
            "--config",
            cfg.to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.status.success(), "{}", describe("moat drain", &out));
    let gone = topo.wait_route(false, "(c) drain");
    assert!(moat.alive(), "withdrawn before Moat stops");
    println!(
        "(c) moat drain: withdrawn at the router {} later, Moat still running",
        ms(gone)
    );
    let v: serde_json::Value = serde_json::from_str(&api(&topo, dir.path(), "/api/v1/cluster")).expect("JSON");
    assert_eq!(v["bgp"]["state"], "draining", "{v}");
    std::thread::sleep(Duration::from_secs(DRAIN).saturating_sub(drain.elapsed() + Duration::from_millis(500)));
    assert!(moat.alive(), "Moat stopped before drain_secs");
    let st = moat.wait_exit(Duration::from_secs(DRAIN + 10));
    let ran = drain.elapsed();
    println!(
        "(c) Moat exited {} after `moat drain` ({st}; drain_secs {DRAIN})",
        ms(ran)
    );
    assert!(st.success(), "{st}\n{}", moat.logs());
    assert!(ran >= Duration::from_secs(DRAIN));
    drop(moat);

    // (e) SIGTERM drains too; a second SIGTERM stops at once.
    let mut moat = Moat::start(&topo, &cfg, dir.path(), "e");
    topo.wait_route(true, "(e) announced");
    let term = Instant::now();
    moat.signal("-TERM");
    let gone = topo.wait_route(false, "(e) SIGTERM");
    assert!(moat.alive(), "a SIGTERM with [bgp] drains, it does not stop at once");
    println!(
        "(e) SIGTERM: withdrawn at the router {} later, Moat still running",
        ms(gone)
    );
    moat.signal("-TERM");
    let st = moat.wait_exit(Duration::from_secs(10));
    let ran = term.elapsed();
    println!("(e) second SIGTERM: Moat exited {} after the first ({st})", ms(ran));
    assert!(st.success(), "{st}\n{}", moat.logs());
    assert!(
        ran < Duration::from_secs(DRAIN),
        "the second SIGTERM did not cut the drain short"
    );
    drop(moat);

    // (b) kill -9: BIRD withdraws by itself when the liveness TAP goes.
    let mut moat = Moat::start(&topo, &cfg, dir.path(), "b");
    topo.wait_route(true, "(b) announced");
    let kill = Instant::now();
    moat.signal("-KILL");
    topo.wait_route(false, "(b) kill -9");
    let gone = kill.elapsed();
    println!("(b) kill -9: withdrawn at the router {} after the kill", ms(gone));
    let st = moat.wait_exit(Duration::from_secs(5));
    assert!(!st.success());
    let ifaces = topo.exec(&topo.node, &["ip", "-br", "link"]);
    assert!(
        !String::from_utf8_lossy(&ifaces.stdout).contains("moat0"),
        "the TAP went with Moat"
    );
}
