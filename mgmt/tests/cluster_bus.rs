//! The cluster bus against a real `nats-server -js` (started here on a free
//! loopback port with its own store folder, killed on drop), with two real
//! `moat run` nodes (memory backend, API on loopback):
//! - a source verified on A is verified on B (seen through B's API);
//! - a rules change, a service created and deleted through A's API are in
//!   force on B; the convergence times are printed;
//! - nats-server stopped: both nodes keep running, health stays 200 and
//!   says `degraded`, metrics say disconnected; a change made on A during
//!   the outage (A restarted meanwhile) reaches B once nats-server is back
//!   (same store folder), and of two conditional changes of one service
//!   made on A and B meanwhile, one wins on both (the other is a conflict);
//! - a node started after a change has it before its API answers;
//! - a node started after sources were verified on another learns them
//!   (the catch-up on joining), and so do sources verified during a bus
//!   outage once it returns; the times are printed.
//!
//! Skips when `nats-server` is not installed (Debian `nats-server`), fails
//! instead under `MOAT_E2E=1`.

mod api_common;
mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_common::{call, get, metrics, Node, TOKEN};
use serde_json::{json, Value};

/// `nats-server` on PATH, or in /usr/sbin or /sbin (where Debian puts it).
fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

fn can_run(test: &str) -> Option<PathBuf> {
    let bin = nats_server();
    let why = bin
        .is_none()
        .then(|| "`nats-server` not found (apt-get install nats-server)".to_string());
    common::can_run(test, why).then_some(bin?)
}

/// A `nats-server -js` on a loopback port, storing under `store`.
struct Nats {
    bin: PathBuf,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl Nats {
    fn start(bin: &Path, dir: &Path) -> Nats {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut n = Nats {
            bin: bin.to_path_buf(),
            port,
            store: dir.join("nats-store"),
            child: None,
        };
        n.restart();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, on the same port and store) and waits until it
    /// accepts connections.
    fn restart(&mut self) {
        let log = self.store.with_extension("log");
        let child = Command::new(&self.bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .arg("-l")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server");
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "nats-server did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A node's config in `dir` joined to the bus `url` as cluster `name`.
fn node_config(dir: &Path, url: &str, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = api_common::config(dir);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text += &format!("\n[cluster]\nnats = [\"{url}\"]\nname = \"{name}\"\nstart_wait_ms = 5000\n");
    std::fs::write(&p, text).unwrap();
    p
}

/// Polls `cond` every 5 ms for up to `limit`; returns how long it took.
fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    loop {
        if cond() {
            return t.elapsed();
        }
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn verified(node: &Node, ip: &str) -> bool {
    get(node, &format!("/api/v1/verified/{ip}")).json()["verified"] == true
}

fn cluster(node: &Node) -> Value {
    let r = get(node, "/api/v1/cluster");
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["bus"].clone()
}

fn send(node: &Node, method: &str, path: &str, body: &Value) -> u16 {
    call(node, method, path, Some(TOKEN), &[], Some(&body.to_string())).status
}

fn game(name: &str, vip: &str) -> Value {
    api_common::game(name, vip)
}

#[test]
fn sources_and_configuration_are_shared_and_survive_a_bus_outage() {
    let Some(bin) = can_run("cluster bus test") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(&bin, dir.path());
    let a_cfg = node_config(&dir.path().join("a"), &nats.url(), "moat-test");
    let a = Node::start(&a_cfg);
    let b = Node::start(&node_config(&dir.path().join("b"), &nats.url(), "moat-test"));
    for n in [&a, &b] {
        until("connected and synced", Duration::from_secs(5), || {
            let c = cluster(n);
            c["connected"] == true && c["synced"] == true
        });
    }

    // (a) A source verified on A: verified on B.
    let ip = "198.51.100.77";
    assert!(!verified(&b, ip));
    let t0 = Instant::now();
    assert_eq!(
        call(&a, "PUT", &format!("/api/v1/verified/{ip}"), Some(TOKEN), &[], None).status,
        200
    );
    let took = until("the source verified on B", Duration::from_secs(1), || verified(&b, ip));
    println!(
        "verified source A -> B: {:.1} ms (from the PUT on A)",
        t0.elapsed().as_secs_f64() * 1e3
    );
    assert!(took < Duration::from_secs(1));
    // The memory backend's legitimate clients answer real challenges on
    // both nodes: those verifications cross the bus too.
    until("worker verifications shared", Duration::from_secs(3), || {
        let (ca, cb) = (cluster(&a), cluster(&b));
        ca["verified_out"].as_u64().unwrap() >= 10 && cb["verified_in"].as_u64().unwrap() >= 10
    });
    let ca = cluster(&a);
    assert_eq!(ca["verified_dropped"]["outbox_full"], 0, "{ca}");
    assert_eq!(ca["verified_dropped"]["bad_message"], 0, "{ca}");

    // (b) The rules, then a service created and deleted, through A's API.
    let mut rules = get(&a, "/api/v1/rules").json();
    rules["acl"]["deny"] = json!(["192.0.2.0/24"]);
    let t0 = Instant::now();
    assert_eq!(send(&a, "PUT", "/api/v1/rules", &rules), 200);
    until("the rules on B", Duration::from_secs(1), || {
        get(&b, "/api/v1/rules").json()["acl"]["deny"] == json!(["192.0.2.0/24"])
    });
    println!("rules change A -> B: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    // In force on B: the workers' policy generation moved with it.
    assert!(metrics(&b)["moat_policy_generation"] >= 1.0);

    let t0 = Instant::now();
    assert_eq!(
        send(&a, "POST", "/api/v1/services", &game("shared", "203.0.113.40")),
        201
    );
    until("the service on B", Duration::from_secs(1), || {
        get(&b, "/api/v1/services/shared").status == 200
    });
    println!("service created A -> B: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    let t0 = Instant::now();
    assert_eq!(
        call(&a, "DELETE", "/api/v1/services/shared", Some(TOKEN), &[], None).status,
        204
    );
    until("the deletion on B", Duration::from_secs(1), || {
        get(&b, "/api/v1/services/shared").status == 404
    });
    println!("service deleted A -> B: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    // A service both nodes will change during the outage.
    assert_eq!(send(&a, "POST", "/api/v1/services", &game("both", "203.0.113.60")), 201);
    until("the service on B", Duration::from_secs(1), || {
        get(&b, "/api/v1/services/both").status == 200
    });
    let rev = cluster(&b)["config_revision"].as_u64().unwrap();
    assert!(rev >= 3, "{rev}");
    assert_eq!(cluster(&a)["config_revision"], rev);
    let m = metrics(&b);
    assert_eq!(m["moat_cluster_bus_connected"], 1.0);
    assert_eq!(m["moat_cluster_config_revision"], rev as f64);

    // (c) The bus goes away: both nodes scrub on, degraded.
    nats.stop();
    for n in [&a, &b] {
        until("degraded", Duration::from_secs(10), || {
            let h = call(n, "GET", "/api/v1/health", Some(TOKEN), &[], None);
            assert_eq!(h.status, 200, "{h:?}");
            let h = h.json();
            h["status"] == "degraded" && h["degraded"][0]["name"] == "cluster/bus"
        });
        assert_eq!(metrics(n)["moat_cluster_bus_connected"], 0.0);
    }
    // A change on A meanwhile: applied there at once.
    assert_eq!(
        send(&a, "POST", "/api/v1/services", &game("outage", "203.0.113.41")),
        201
    );
    assert_eq!(get(&a, "/api/v1/services/outage").status, 200);
    assert_eq!(get(&b, "/api/v1/services/outage").status, 404);
    // Both change "both", each conditionally on the same ETag (the same
    // content, so the same ETag on both nodes).
    for (n, vip) in [(&a, "203.0.113.61"), (&b, "203.0.113.62")] {
        let etag = get(n, "/api/v1/services/both").header("etag").to_string();
        let r = call(
            n,
            "PUT",
            "/api/v1/services/both",
            Some(TOKEN),
            &[("If-Match", &etag)],
            Some(&game("both", vip).to_string()),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(cluster(&a)["config"]["pending"], 2);
    // A restarts before the bus returns: it starts alone (after
    // start_wait_ms) with the change and still holds it as pending.
    a.stop();
    let a = Node::start(&a_cfg);
    assert_eq!(get(&a, "/api/v1/services/outage").status, 200);
    assert_eq!(cluster(&a)["config"]["pending"], 2);
    // The bus is back: the change reaches B.
    let t0 = Instant::now();
    nats.restart();
    until("the outage change on B", Duration::from_secs(20), || {
        get(&b, "/api/v1/services/outage").status == 200
    });
    println!(
        "change made during the outage on B {:.0} ms after nats-server restarted",
        t0.elapsed().as_secs_f64() * 1e3
    );
    for n in [&a, &b] {
        until("healthy again", Duration::from_secs(10), || {
            get(n, "/api/v1/health").json()["status"] == "ok"
        });
    }
    assert_eq!(cluster(&a)["config"]["pending"], 0);
    // The two conditional changes of "both": the first written wins, the
    // other is refused by the compare-and-set and gives way; both nodes
    // end with the same service.
    let vip = |n: &Node| get(n, "/api/v1/services/both").json()["vip"].clone();
    until("one value of \"both\" on both nodes", Duration::from_secs(5), || {
        vip(&a) == vip(&b)
    });
    let conflicts =
        cluster(&a)["config"]["conflicts"].as_u64().unwrap() + cluster(&b)["config"]["conflicts"].as_u64().unwrap();
    assert_eq!(conflicts, 1);
    println!(
        "conditional changes of one service on both nodes during the outage: {} won",
        vip(&a)
    );
    // Still sharing sources after the reconnection.
    let ip = "198.51.100.78";
    assert_eq!(
        call(&b, "PUT", &format!("/api/v1/verified/{ip}"), Some(TOKEN), &[], None).status,
        200
    );
    until("B's source on A", Duration::from_secs(1), || verified(&a, ip));
    a.stop();
    b.stop();
}

#[test]
fn a_node_started_after_a_change_reads_the_bucket_before_its_api_answers() {
    let Some(bin) = can_run("cluster bus start-up test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&bin, dir.path());
    let a = Node::start(&node_config(&dir.path().join("a"), &nats.url(), "moat-late"));
    until("A synced", Duration::from_secs(5), || cluster(&a)["synced"] == true);
    assert_eq!(
        send(&a, "POST", "/api/v1/services", &game("early", "203.0.113.50")),
        201
    );
    let mut rules = get(&a, "/api/v1/rules").json();
    rules["acl"]["deny"] = json!(["198.18.0.0/15"]);
    assert_eq!(send(&a, "PUT", "/api/v1/rules", &rules), 200);
    until("both written", Duration::from_secs(2), || {
        cluster(&a)["config"]["pushed"] == 2
    });

    // B starts with nothing of its own: its very first answers have both.
    let b = Node::start(&node_config(&dir.path().join("b"), &nats.url(), "moat-late"));
    assert_eq!(get(&b, "/api/v1/services/early").status, 200);
    assert_eq!(get(&b, "/api/v1/rules").json()["acl"]["deny"], json!(["198.18.0.0/15"]));
    let c = cluster(&b);
    assert_eq!(c["synced"], true);
    assert_eq!(c["config"]["applied"], 2);
    a.stop();
    b.stop();
}

#[test]
fn a_node_that_joins_learns_the_sources_verified_before() {
    let Some(bin) = can_run("cluster bus catch-up test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(&bin, dir.path());
    let a = Node::start(&node_config(&dir.path().join("a"), &nats.url(), "moat-catchup"));
    until("A connected", Duration::from_secs(5), || {
        cluster(&a)["connected"] == true
    });
    // Verified on A while B does not run: published to nobody.
    let early = ["198.51.100.90", "2001:db8::90"];
    for ip in early {
        assert_eq!(
            call(&a, "PUT", &format!("/api/v1/verified/{ip}"), Some(TOKEN), &[], None).status,
            200
        );
    }
    until("A published them", Duration::from_secs(2), || {
        cluster(&a)["verified_out"].as_u64().unwrap() >= 2
    });

    // B starts with a fresh state directory and learns them from A.
    let spawned = Instant::now();
    let b = Node::start(&node_config(&dir.path().join("b"), &nats.url(), "moat-catchup"));
    let answering = Instant::now();
    until("the earlier sources on B", Duration::from_secs(2), || {
        early.iter().all(|ip| verified(&b, ip))
    });
    println!(
        "sources verified on A before B started: verified on B {:.0} ms after B's API answered \
({:.0} ms after B was spawned)",
        answering.elapsed().as_secs_f64() * 1e3,
        spawned.elapsed().as_secs_f64() * 1e3
    );
    let (ca, cb) = (cluster(&a), cluster(&b));
    assert!(cb["catchup"]["requests_out"].as_u64().unwrap() >= 1, "{cb}");
    assert!(ca["catchup"]["requests_in"].as_u64().unwrap() >= 1, "{ca}");
    assert!(ca["catchup"]["sent"].as_u64().unwrap() >= 2, "{ca}");
    assert!(ca["catchup"]["mirror"].as_u64().unwrap() >= 2, "{ca}");
    assert_eq!(ca["catchup"]["mirror_full"], 0, "{ca}");
    assert_eq!(cb["verified_dropped"]["bad_message"], 0, "{cb}");
    let m = metrics(&a);
    assert!(m["moat_cluster_catchup_sent_total"] >= 2.0);

    // A source verified on A while the bus is down reaches B when it
    // returns (both nodes reconnect and ask; A sends what it knows).
    nats.stop();
    until("B disconnected", Duration::from_secs(10), || {
        cluster(&b)["connected"] == false
    });
    let outage = "198.51.100.91";
    assert_eq!(
        call(&a, "PUT", &format!("/api/v1/verified/{outage}"), Some(TOKEN), &[], None).status,
        200
    );
    until("counted as bus_down on A", Duration::from_secs(2), || {
        cluster(&a)["verified_dropped"]["bus_down"].as_u64().unwrap() >= 1
    });
    assert!(!verified(&b, outage));
    let t0 = Instant::now();
    nats.restart();
    until("the outage source on B", Duration::from_secs(20), || {
        verified(&b, outage)
    });
    println!(
        "source verified on A during a bus outage: verified on B {:.0} ms after nats-server restarted",
        t0.elapsed().as_secs_f64() * 1e3
    );
    assert!(cluster(&b)["catchup"]["requests_out"].as_u64().unwrap() >= 2);
    a.stop();
    b.stop();
}

/// The blacklist on the bus: a ban made on A (through its API) applies on
/// B with the time it has left, marked as a peer's; lifted on A, it is
/// lifted on B.
#[test]
fn bans_are_shared_with_their_time_left_and_lifts_follow() {
    let Some(bin) = can_run("cluster bus blacklist test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&bin, dir.path());
    let a = Node::start(&node_config(&dir.path().join("a"), &nats.url(), "moat-bans"));
    let b = Node::start(&node_config(&dir.path().join("b"), &nats.url(), "moat-bans"));
    for n in [&a, &b] {
        until("connected", Duration::from_secs(5), || cluster(n)["connected"] == true);
    }
    let ban = json!({"address": "198.51.100.77", "duration_secs": 120});
    assert_eq!(send(&a, "POST", "/api/v1/blacklist", &ban), 201);
    let took = until("the ban on B", Duration::from_secs(5), || {
        get(&b, "/api/v1/blacklist/198.51.100.77").status == 200
    });
    eprintln!("a ban reached the other node in {took:?}");
    let on_a = get(&a, "/api/v1/blacklist/198.51.100.77").json();
    let on_b = get(&b, "/api/v1/blacklist/198.51.100.77").json();
    assert_eq!(on_b["peer"], true, "{on_b}");
    assert_eq!(on_b["kind"], "manual");
    let skew = on_b["expires_at"].as_i64().unwrap() - on_a["expires_at"].as_i64().unwrap();
    assert!((0..2000).contains(&skew), "time left kept: {on_a} {on_b}");
    assert_eq!(
        call(&a, "DELETE", "/api/v1/blacklist/198.51.100.77", Some(TOKEN), &[], None).status,
        204
    );
    until("the lift on B", Duration::from_secs(5), || {
        get(&b, "/api/v1/blacklist/198.51.100.77").status == 404
    });
    // B's peer ban was not sent back: A has none.
    assert_eq!(get(&a, "/api/v1/blacklist/198.51.100.77").status, 404);
    assert_eq!(cluster(&a)["bans_out"], 2);
    assert_eq!(cluster(&b)["bans_in"], 2);
    assert_eq!(cluster(&b)["bans_out"], 0);
    a.stop();
    b.stop();
}
