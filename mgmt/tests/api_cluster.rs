//! `GET /api/v1/cluster`, `POST /api/v1/drain` and `moat drain` against a
//! `moat run` on the memory backend: without `[bgp]` the announcement is
//! `disabled`, a drain is refused (409) and SIGTERM stops at once; with
//! `[bgp]` on a BIRD socket that does not exist, BIRD's errors are counted
//! while the node scrubs, and `moat drain` drains it: `draining`, then
//! exit 0 once `drain_secs` are over.

mod api_common;
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use api_common::{call, config, get, metrics, Node, TOKEN};

fn with_bgp(dir: &Path) -> std::path::PathBuf {
    let cfg = config(dir);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let sock = dir.join("no-bird.ctl");
    let bgp = format!(
        "\n[bgp]\nbird_socket = {:?}\nprotocol = \"moat_vips\"\nhold_down_secs = 0\ndrain_secs = 2\n",
        sock.to_str().unwrap()
    );
    std::fs::write(&cfg, format!("{text}{bgp}")).unwrap();
    cfg
}

#[test]
fn without_bgp_the_announcement_is_disabled_and_drain_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&config(dir.path()));
    let r = get(&node, "/api/v1/cluster");
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["node"], "moat-offline");
    assert_eq!(v["bgp"]["state"], "disabled", "{v}");
    assert!(v["bgp"]["reason"].as_str().unwrap().contains("no [bgp]"), "{v}");
    let p = call(&node, "POST", "/api/v1/drain", Some(TOKEN), &[], None).problem(409, "");
    assert!(p["detail"].as_str().unwrap().contains("[bgp]"), "{p}");
    for (method, path) in [("GET", "/api/v1/cluster"), ("POST", "/api/v1/drain")] {
        call(&node, method, path, None, &[], None).problem(401, "");
    }
    let doc = get(&node, "/api/v1/openapi.json").json();
    assert!(
        doc["paths"]["/api/v1/cluster"]["get"].is_object(),
        "GET /api/v1/cluster documented"
    );
    assert!(
        doc["paths"]["/api/v1/drain"]["post"]["responses"]["409"].is_object(),
        "the 409 documented"
    );
    let required = &doc["components"]["schemas"]["BgpStatus"]["required"];
    assert!(
        required
            .as_array()
            .unwrap()
            .iter()
            .all(|k| v["bgp"].get(k.as_str().unwrap()).is_some()),
        "{required} vs {v}"
    );
    let m = metrics(&node);
    assert_eq!(m["moat_bgp_state{state=\"disabled\"}"], 1.0, "{m:?}");
    assert_eq!(m["moat_bgp_announced"], 0.0);
    // SIGTERM stops at once (exit 0), as before [bgp] existed.
    let t = Instant::now();
    node.stop();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn bird_errors_are_counted_and_moat_drain_stops_the_node_after_drain_secs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_bgp(dir.path());
    let node = Node::start(&cfg);
    // hold_down 0 and healthy: announced, though BIRD never answers.
    let t0 = Instant::now();
    let v = loop {
        let v = get(&node, "/api/v1/cluster").json();
        if v["bgp"]["state"] == "announced" && v["bgp"]["bird_errors"].as_u64().unwrap() >= 2 {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(v["bgp"]["bird_reachable"], false, "{v}");
    assert_eq!(v["bgp"]["bird_synced"], false, "{v}");
    assert!(
        v["bgp"]["bird_last_error"].as_str().unwrap().contains("no-bird.ctl"),
        "{v}"
    );
    let m = metrics(&node);
    assert!(m["moat_bgp_bird_errors_total"] >= 2.0, "{m:?}");
    assert_eq!(m["moat_bgp_announced"], 0.0, "BIRD never confirmed it");
    assert!(api_common::passed(&m) > 0.0, "the node scrubs whatever BIRD does");

    let addr = node.base.trim_start_matches("http://").to_string();
    let drain = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["drain", "--config"])
        .arg(&cfg)
        .args(["--api", &addr, "--wait"])
        .env("MOAT_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("moat-offline: draining: announcement withdrawn, the node stops in 2 s"),
        "{text}"
    );
    assert!(text.contains("moat-offline: stopped"), "{text}");
    let took = drain.elapsed();
    assert!(took >= Duration::from_secs(2), "stopped before drain_secs: {took:?}");
    let st = node.wait_exit();
    assert!(st.success(), "{st}");
}

#[test]
fn moat_drain_refuses_a_config_without_bgp() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["drain", "--config"])
        .arg(config(dir.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no [bgp] section"), "{err}");
}

/// Without CAP_NET_ADMIN the liveness TAP cannot be made: `moat run`
/// refuses to start, naming the key and the capability. As root the
/// capability is dropped from the bounding set (`setpriv`) first.
#[test]
fn liveness_iface_without_cap_net_admin_fails_at_start() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false);
    if root && !common::require_tools("liveness capability test", &["setpriv"], "util-linux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_bgp(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    // A name no interface has: nothing is created, the ioctl is refused.
    let name = format!("mnc{}", std::process::id() % 1_000_000);
    std::fs::write(
        &cfg,
        text.replace("[bgp]\n", &format!("[bgp]\nliveness_iface = \"{name}\"\n")),
    )
    .unwrap();
    let mut c = if root {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set", "-net_admin", "--inh-caps", "-net_admin"])
            .arg(env!("CARGO_BIN_EXE_moat"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_moat"))
    };
    let out = c
        .args(["run", "--config"])
        .arg(&cfg)
        .env("MOAT_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("bgp.liveness_iface {name}: cannot create the TAP interface"))
            && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(!Path::new("/sys/class/net").join(&name).exists());
}

#[test]
fn moat_check_describes_bgp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_bgp(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["check", "--config"])
        .arg(&cfg)
        .env("MOAT_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let sock = dir.path().join("no-bird.ctl");
    let line = format!(
        "BGP: BIRD protocol moat_vips at {} (absent now: run retries until BIRD is up), hold-down 0 s, drain 2 s, no liveness interface",
        sock.display()
    );
    assert!(text.contains(&line), "{text}");
}
