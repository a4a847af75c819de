//! `moat run` as a service manager runs it: management failures that must
//! not stop scrubbing (a `--stats` file that cannot be written), one
//! instance per state folder, systemd's notify protocol (READY, WATCHDOG,
//! STOPPING), and SIGHUP reloading the config file.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const TOKEN: &str = "lifecycle-test-token-0123456789";

/// A memory-backend node with its state under `dir` and, when `api`, the
/// REST API on a free loopback port.
fn config_text(dir: &Path, workers: u32, api: bool, extra_service: bool) -> String {
    let mut t = format!(
        r#"
[node]
name = "lc"
state_dir = {state:?}

[dataplane]
backend = "memory"
workers = {workers}

[dataplane.memory]
pps = 2000

[[ports]]
name = "outside"
role = "outside"
iface = "mem0"
ip = "10.10.0.1/24"
mac = "02:00:00:00:00:01"

[[ports]]
name = "inside"
role = "inside"
iface = "mem1"
ip = "192.168.77.1/24"
mac = "02:00:00:00:01:01"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"
mac = "02:00:00:00:01:02"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80"]
syn_auth = "challenge-ack"

[mgmt]
enabled = {api}
listen = "127.0.0.1:0"
"#,
        state = dir.join("state").to_str().unwrap(),
    );
    if extra_service {
        t += r#"
[[services]]
name = "game"
vip = "203.0.113.20"
origin = "web"
allow = ["udp/27015"]
syn_auth = "off"

[acl]
deny = ["198.51.100.0/24"]
"#;
    }
    t
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("moat.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn moat() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
    c.env("MOAT_API_TOKEN", TOKEN).env_remove("NOTIFY_SOCKET");
    c
}

/// A running `moat run` whose stderr lines arrive on a channel.
struct Node {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    fn spawn(mut c: Command) -> Node {
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, lines) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Node {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (20 s at most) for a stderr line containing `what`.
    fn wait_for(&mut self, what: &str) -> String {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(l.clone());
                if l.contains(what) {
                    return l;
                }
            }
        }
        panic!("no line with {what:?} in 20 s: {:#?}", self.seen);
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM; the exit must be a success.
    fn stop(self) {
        self.signal("TERM");
        self.exits_cleanly();
    }

    /// Waits for the exit, which must be a success.
    fn exits_cleanly(mut self) {
        let st = self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        assert!(st.success(), "moat run exited with {st}: {:#?}", self.seen);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Regression (issue 10, item 3): the first failed `--stats` write used to
/// end `moat run`. It is counted, logged and retried; the node runs its
/// whole duration and exits 0.
#[test]
fn a_stats_file_that_cannot_be_written_does_not_stop_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config_text(dir.path(), 1, false, false));
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let stats = blocker.join("stats.json");
    let t = Instant::now();
    let o = moat()
        .args(["run", "--duration", "3", "--config"])
        .arg(&cfg)
        .arg("--stats")
        .arg(&stats)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(t.elapsed() >= Duration::from_secs(3), "ran its whole duration");
    assert!(err.contains("ERROR") && err.contains("stats.json"), "{err}");
    // Rate-limited: one line for the first failure, not one a second.
    assert_eq!(err.matches("scrubbing goes on").count(), 1, "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("received"));
}

/// A stats file that fails and then works again: the error count is in
/// the file.
#[test]
fn stats_write_errors_are_counted_in_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config_text(dir.path(), 1, false, false));
    let out = dir.path().join("out");
    std::fs::write(&out, b"").unwrap();
    let stats = out.join("stats.json");
    let mut node = Node::spawn({
        let mut c = moat();
        c.args(["run", "--config"]).arg(&cfg).arg("--stats").arg(&stats);
        c
    });
    node.wait_for("scrubbing goes on");
    // Make the folder writable: the next second's write succeeds.
    std::fs::remove_file(&out).unwrap();
    let t = Instant::now();
    while !stats.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "no stats file");
        assert!(node.alive());
        std::thread::sleep(Duration::from_millis(100));
    }
    node.wait_for("writes work again");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(v["mgmt_errors"].as_u64().unwrap() >= 1, "{v}");
    node.stop();
}

/// Regression (issue 10, item 5): a second `moat run` on the same state
/// folder used to run beside the first. It exits naming the first's PID;
/// `moat check` does not take the lock.
#[test]
fn a_second_node_on_the_same_state_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config_text(dir.path(), 1, true, false));
    let mut first = Node::spawn({
        let mut c = moat();
        c.args(["run", "--config"]).arg(&cfg);
        c
    });
    first.wait_for("API listening on");
    let lock = std::fs::read_to_string(dir.path().join("state/moat.lock")).unwrap();
    assert_eq!(lock.trim(), first.child.id().to_string());

    let o = moat().args(["run", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!("in use by another moat (pid {})", first.child.id())),
        "{err}"
    );
    let check = moat().args(["check", "--config"]).arg(&cfg).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(first.alive());
    first.stop();
    // Released with the process: the next one starts.
    let o = moat()
        .args(["run", "--duration", "0.5", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The notify protocol as systemd's `Type=notify` with `WatchdogSec=`
/// speaks it: READY=1 once the node runs, WATCHDOG=1 while the workers
/// poll, STOPPING=1 on SIGTERM.
#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config_text(dir.path(), 2, false, false));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // WATCHDOG_PID must be the service's own PID: `exec` keeps the shell's.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_moat"))
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "4000000");
    let node = Node::spawn(c);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut recv = |until: &str, got: &mut Vec<String>| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            let n = sock.recv(&mut buf).expect("a notification within 20 s");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            got.push(msg.clone());
            if msg.lines().any(|l| l == until) {
                return;
            }
        }
        panic!("no {until}: {got:?}");
    };
    recv("READY=1", &mut got);
    assert!(got[0].contains("STATUS=scrubbing: 2 worker(s)"), "{got:?}");
    recv("WATCHDOG=1", &mut got);
    recv("WATCHDOG=1", &mut got);
    node.signal("TERM");
    recv("STOPPING=1", &mut got);
    node.exits_cleanly();
}

fn services(base: &str) -> Vec<String> {
    let v: serde_json::Value = ureq::get(&format!("{base}/api/v1/services"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let list = v.as_array().or_else(|| v["services"].as_array()).unwrap().clone();
    list.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

fn deny_rules(base: &str) -> usize {
    let v: serde_json::Value = ureq::get(&format!("{base}/api/v1/rules"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    v["acl"]["deny"].as_array().map_or(0, Vec::len)
}

/// SIGHUP reloads the file: services and rules change live, through the
/// same path as the API; a change of workers is refused with a logged
/// reason; a broken file changes nothing; the node never dies.
#[test]
fn sighup_reloads_what_can_change_live_and_never_kills_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config_text(dir.path(), 1, true, false));
    let mut node = Node::spawn({
        let mut c = moat();
        c.args(["run", "--config"]).arg(&cfg);
        c
    });
    let l = node.wait_for("API listening on http://");
    let addr = l.split("http://").nth(1).unwrap().split('/').next().unwrap();
    let base = format!("http://{addr}");
    assert_eq!(services(&base), ["web"]);
    assert_eq!(deny_rules(&base), 0);

    write_config(dir.path(), &config_text(dir.path(), 1, true, true));
    node.signal("HUP");
    node.wait_for("SIGHUP: applied");
    assert_eq!(services(&base), ["web", "game"]);
    assert_eq!(deny_rules(&base), 1);

    write_config(dir.path(), &config_text(dir.path(), 2, true, true));
    node.signal("HUP");
    let l = node.wait_for("SIGHUP: dataplane.workers changed");
    assert!(l.contains("needs a restart"), "{l}");
    assert!(node.alive());

    write_config(dir.path(), "[node\nname = ");
    node.signal("HUP");
    node.wait_for("the running configuration is unchanged");
    assert!(node.alive());
    assert_eq!(services(&base), ["web", "game"]);
    node.stop();
}

/// `dist/moat.service` is the unit this file tests the protocol of
/// (`Type=notify`, a watchdog, no full root), and `systemd-analyze verify`
/// accepts it with the binary built here (skipped where systemd-analyze is
/// missing).
#[test]
fn the_systemd_unit_is_valid_and_uses_notify_and_the_watchdog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let unit = std::fs::read_to_string(root.join("dist/moat.service")).unwrap();
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    for l in [
        "Type=notify",
        "NotifyAccess=main",
        "User=moat",
        "StateDirectory=moat",
        "NoNewPrivileges=yes",
    ] {
        assert!(has(l), "{l} missing");
    }
    assert!(unit.lines().any(|l| l.starts_with("WatchdogSec=")));
    assert!(unit.contains("AmbientCapabilities=CAP_NET_RAW"));
    assert!(!unit.contains("CAP_SYS_ADMIN\n") && !unit.lines().any(|l| l.trim() == "User=root"));
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(analyze) = analyze else {
        eprintln!("skipping systemd-analyze verify: not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("moat.service");
    std::fs::write(&p, unit.replace("/usr/local/bin/moat", env!("CARGO_BIN_EXE_moat"))).unwrap();
    let o = Command::new(analyze).arg("verify").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("moat.service:"), "{err}");
}

/// The guard: dropping a started node (here without calling `stop`, as an
/// early return or a panic would) stops the API and the workers and
/// releases the state folder's lock.
#[test]
fn dropping_a_running_node_stops_everything_and_releases_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(dir.path(), &config_text(dir.path(), 2, true, false));
    let cfg = mgmt::config::Config::load(&cfg_path).unwrap();
    let opts = mgmt::lifecycle::Options {
        api: Some("127.0.0.1:0".parse().unwrap()),
        detection: true,
        config_file: None,
    };
    let running = mgmt::lifecycle::Running::start(cfg.clone(), opts.clone()).unwrap();
    let (addr, _) = running.api.clone().unwrap();
    assert!(std::net::TcpStream::connect(addr).is_ok(), "the API serves");
    let workers = running.node.rt.stats.clone();
    // A second node on the same folder is refused while this one lives.
    let e = mgmt::lifecycle::Running::start(cfg.clone(), opts.clone()).unwrap_err();
    assert!(e.to_string().contains("in use by another moat"), "{e:#}");
    drop(running);
    assert!(std::net::TcpStream::connect(addr).is_err(), "the API stopped");
    let polls = |w: &[dataplane::runtime::stats::SharedStats]| -> Vec<u64> {
        w.iter()
            .map(|s| {
                let s = s.snapshot(0);
                s.busy_polls + s.idle_polls
            })
            .collect()
    };
    let before = polls(&workers);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(polls(&workers), before, "the workers stopped");
    let again = mgmt::lifecycle::Running::start(cfg, opts).unwrap();
    drop(again);
}
