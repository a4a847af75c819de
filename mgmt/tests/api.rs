//! The REST API over real HTTP against a running `moat run` (memory
//! backend, the built-in generator's traffic): auth, bad input, conflicts,
//! the services and rules lifecycle, persistence across a restart, a change
//! that alters the verdict of the next bursts, `/metrics` (parsed here and
//! linted by `promtool check metrics`).

mod api_common;
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use api_common::{call, game, get, metrics, passed, started, Node, TOKEN};
use serde_json::json;

#[test]
fn health_is_open_and_everything_else_needs_the_token() {
    let (_dir, _cfg, node) = started();
    let h = call(&node, "GET", "/api/v1/health", None, &[], None);
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["node"], "moat-offline");
    let checks: Vec<(String, bool)> = h.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["ok"].as_bool().unwrap()))
        .collect();
    let names: Vec<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "worker/0",
            "worker/1",
            "port/outside",
            "port/inside",
            "next_hop/web",
            "next_hop/api",
            "state_dir"
        ],
        "{h:?}"
    );
    assert!(checks.iter().all(|(_, ok)| *ok), "{h:?}");
    for path in [
        "/api/v1/stats",
        "/api/v1/services",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/nothing",
    ] {
        for token in [None, Some("test-token-0123456789abcdeF"), Some("")] {
            let r = call(&node, "GET", path, token, &[], None);
            r.problem(401, "");
            assert!(r.header("www-authenticate").starts_with("Bearer"), "{r:?}");
        }
    }
    let r = call(&node, "DELETE", "/api/v1/services/web", None, &[], None);
    assert_eq!(r.status, 401);
    assert_eq!(
        get(&node, "/api/v1/services/web").status,
        200,
        "the DELETE without token did nothing"
    );
    let doc = get(&node, "/api/v1/openapi.json").json();
    let required = &doc["components"]["schemas"]["Check"]["required"];
    assert_eq!(
        required,
        &json!(["name", "ok"]),
        "a check's detail is left out without the token"
    );
    for p in [
        "/api/v1/health",
        "/api/v1/stats",
        "/api/v1/services",
        "/api/v1/services/{name}",
        "/api/v1/rules",
        "/api/v1/origins",
        "/api/v1/origins/{name}",
        "/api/v1/verified",
        "/api/v1/verified/{address}",
        "/api/v1/config",
        "/metrics",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
    }
    node.stop();
}

#[test]
fn bad_input_is_a_problem_naming_the_field() {
    let (_dir, _cfg, node) = started();
    let post = |body: &str| call(&node, "POST", "/api/v1/services", Some(TOKEN), &[], Some(body));
    let mut s = game("g", "203.0.113.50");
    s["allow"] = json!(["udp/27015", "udp/70000"]);
    let p = post(&s.to_string()).problem(400, "allow[1]");
    assert!(p["reason"].as_str().unwrap().contains("port out of range"), "{p}");
    let mut s = game("g", "203.0.113.50");
    s["colour"] = json!("red");
    post(&s.to_string()).problem(400, "colour");
    let mut s = game("g", "203.0.113.50");
    s["allow"] = json!("udp/27015");
    post(&s.to_string()).problem(400, "allow");
    let mut s = game("g", "203.0.113.50");
    s["syn_auth"] = json!("sometimes");
    post(&s.to_string()).problem(400, "syn_auth");
    let mut s = game("g", "not-an-address");
    s["vip"] = json!("not-an-address");
    post(&s.to_string()).problem(400, "vip");
    let mut s = game("g", "203.0.113.50");
    s["origin"] = json!("nowhere");
    post(&s.to_string()).problem(400, "origin");
    post(&game("g", "203.0.113.10").to_string()).problem(400, "vip");
    post(&game("bad name!", "203.0.113.50").to_string()).problem(400, "name");
    let mut s = game("g", "203.0.113.50");
    s["limits"] = json!({"src_pps": -1});
    post(&s.to_string()).problem(400, "limits.src_pps");
    post("{\"name\": ").problem(400, "");
    post("").problem(400, "");
    // The service's fields in order, as an array: serde's derive takes it.
    let p = post(r#"["g", "203.0.113.50", "web", ["udp/27015"]]"#).problem(400, "");
    assert!(p["reason"].as_str().unwrap().contains("not an array"), "{p}");
    post(" [] ").problem(400, "");
    get(&node, "/api/v1/services/g").problem(404, "");
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    post(&big).problem(413, "");
    let put = |body: &str| call(&node, "PUT", "/api/v1/rules", Some(TOKEN), &[], Some(body));
    put(r#"{"acl": {"deny": ["192.0.2.7/24"]}}"#).problem(400, "acl.deny[0]");
    put(r#"{"acl": {"allow": ["192.0.2.0/24"], "deny": ["192.0.2.0/24"]}}"#).problem(400, "acl.deny[0]");
    put(r#"{"fingerprints": {"deny_tcp": ["4:x:0:-:512,-::"]}}"#).problem(400, "fingerprints.deny_tcp[0]");
    put(r#"{"global_pps": 18446744073709551615}"#).problem(400, "global_pps");
    put("[]").problem(400, "");
    get(&node, "/api/v1/services/nope").problem(404, "");
    get(&node, "/api/v1/origins/nope").problem(404, "");
    get(&node, "/api/v1/verified/not-an-ip").problem(400, "address");
    call(&node, "DELETE", "/api/v1/services/nope", Some(TOKEN), &[], None).problem(404, "");
    // Nothing was changed by any of it.
    let m = get(&node, "/metrics").body;
    assert!(m.contains("\nmoat_policy_generation 0\n"), "{m}");
    node.stop();
}

#[test]
fn services_lifecycle_with_etags_and_conflicts() {
    let (_dir, _cfg, node) = started();
    let c = call(
        &node,
        "POST",
        "/api/v1/services",
        Some(TOKEN),
        &[],
        Some(&game("game", "203.0.113.50").to_string()),
    );
    assert_eq!(c.status, 201, "{c:?}");
    assert_eq!(c.header("location"), "/api/v1/services/game");
    let tag1 = c.header("etag").to_string();
    assert!(tag1.starts_with('"') && tag1.len() > 2, "{c:?}");
    assert_eq!(c.json()["allow"], json!(["udp/27015"]));
    let dup = call(
        &node,
        "POST",
        "/api/v1/services",
        Some(TOKEN),
        &[],
        Some(&game("game", "203.0.113.51").to_string()),
    );
    dup.problem(409, "");

    let g = get(&node, "/api/v1/services/game");
    assert_eq!((g.status, g.header("etag")), (200, tag1.as_str()));
    let list = get(&node, "/api/v1/services").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "web6", "api", "game"]);

    let mut s = game("game", "203.0.113.50");
    s["allow"] = json!(["udp/27015", "udp/27016"]);
    s["limits"] = json!({"src_pps": 100});
    s["payload_rules"] = json!([{"port": "udp/27015", "value": "ffffffff"}]);
    let u = call(
        &node,
        "PUT",
        "/api/v1/services/game",
        Some(TOKEN),
        &[("If-Match", &tag1)],
        Some(&s.to_string()),
    );
    assert_eq!(u.status, 200, "{u:?}");
    let tag2 = u.header("etag").to_string();
    assert_ne!(tag1, tag2);
    assert_eq!(u.json()["limits"]["src_pps"], 100);
    // Another writer still holding the first version.
    let stale = call(
        &node,
        "PUT",
        "/api/v1/services/game",
        Some(TOKEN),
        &[("If-Match", &tag1)],
        Some(&s.to_string()),
    );
    stale.problem(412, "");
    call(
        &node,
        "DELETE",
        "/api/v1/services/game",
        Some(TOKEN),
        &[("If-Match", &tag1)],
        None,
    )
    .problem(412, "");
    let renamed = call(
        &node,
        "PUT",
        "/api/v1/services/game",
        Some(TOKEN),
        &[],
        Some(&game("other", "203.0.113.50").to_string()),
    );
    renamed.problem(400, "name");

    let r = get(&node, "/api/v1/rules");
    let rtag = r.header("etag").to_string();
    let mut rules = r.json();
    rules["acl"]["deny"].as_array_mut().unwrap().push(json!("192.0.2.0/24"));
    let pr = call(
        &node,
        "PUT",
        "/api/v1/rules",
        Some(TOKEN),
        &[("If-Match", &rtag)],
        Some(&rules.to_string()),
    );
    assert_eq!(pr.status, 200, "{pr:?}");
    call(
        &node,
        "PUT",
        "/api/v1/rules",
        Some(TOKEN),
        &[("If-Match", &rtag)],
        Some(&rules.to_string()),
    )
    .problem(412, "");

    let d = call(
        &node,
        "DELETE",
        "/api/v1/services/game",
        Some(TOKEN),
        &[("If-Match", &tag2)],
        None,
    );
    assert_eq!(d.status, 204, "{d:?}");
    assert!(d.body.is_empty());
    get(&node, "/api/v1/services/game").problem(404, "");
    let o = get(&node, "/api/v1/origins").json();
    assert_eq!(o[0]["name"], "web");
    assert_eq!(get(&node, "/api/v1/origins/api").json()["tunnel_dst"], "192.168.77.3");
    let m = get(&node, "/metrics").body;
    assert!(m.contains("\nmoat_policy_generation 4\n"), "{m}");
    node.stop();
}

#[test]
fn changes_survive_a_restart() {
    let (_dir, cfg, node) = started();
    let c = call(
        &node,
        "POST",
        "/api/v1/services",
        Some(TOKEN),
        &[],
        Some(&game("game", "203.0.113.50").to_string()),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let d = call(&node, "DELETE", "/api/v1/services/web6", Some(TOKEN), &[], None);
    assert_eq!(d.status, 204, "{d:?}");
    let r = call(
        &node,
        "PUT",
        "/api/v1/rules",
        Some(TOKEN),
        &[],
        Some(r#"{"acl": {"deny": ["192.0.2.0/24"]}, "global_pps": 5000000}"#),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let tag = c.header("etag").to_string();
    node.stop();

    let node = Node::start(&cfg);
    let g = get(&node, "/api/v1/services/game");
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.header("etag"), tag, "same content, same ETag");
    get(&node, "/api/v1/services/web6").problem(404, "");
    let rules = get(&node, "/api/v1/rules").json();
    assert_eq!(rules["acl"]["deny"], json!(["192.0.2.0/24"]));
    assert_eq!(rules["global_pps"], 5000000);
    let conf = get(&node, "/api/v1/config");
    assert_eq!(conf.header("content-type"), "application/toml");
    assert!(
        conf.body.contains("name = \"game\"") && !conf.body.contains("name = \"web6\""),
        "{}",
        conf.body
    );
    assert!(conf.body.contains("global_pps = 5000000"), "{}", conf.body);
    node.stop();
}

#[test]
fn a_rest_change_alters_the_verdict_of_the_next_bursts() {
    let (_dir, _cfg, node) = started();
    let acl = "moat_dropped_packets_total{reason=\"acl_deny\"}";
    // Traffic flows and passes.
    let t = Instant::now();
    while passed(&metrics(&node)) < 500.0 {
        assert!(t.elapsed() < Duration::from_secs(10), "no traffic passes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = call(
        &node,
        "PUT",
        "/api/v1/rules",
        Some(TOKEN),
        &[],
        Some(r#"{"acl": {"deny": ["0.0.0.0/0", "::/0"]}}"#),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let changed = Instant::now();
    // Workers take the snapshot at their next burst and publish counters
    // every millisecond: 100 ms later nothing passes any more.
    std::thread::sleep(Duration::from_millis(100));
    let a = metrics(&node);
    assert!(
        changed.elapsed() < Duration::from_secs(1),
        "the checks took over a second"
    );
    // Then the ACL drops what the generator sends: 1000 drops, however
    // slowly a loaded machine lets the generator run (10 s at most).
    let mut b = metrics(&node);
    while b[acl] - a[acl] <= 1000.0 && changed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        b = metrics(&node);
    }
    assert_eq!(passed(&b), passed(&a), "packets still pass after the deny-all ACL");
    assert!(
        b[acl] - a[acl] > 1000.0,
        "the ACL drops the traffic: {} -> {}",
        a[acl],
        b[acl]
    );
    assert_eq!(b["moat_policy_generation"], 1.0);

    // And back: deleting the ACL lets traffic pass again.
    let r = call(&node, "PUT", "/api/v1/rules", Some(TOKEN), &[], Some("{}"));
    assert_eq!(r.status, 200, "{r:?}");
    std::thread::sleep(Duration::from_millis(200));
    let c = metrics(&node);
    std::thread::sleep(Duration::from_millis(500));
    let d = metrics(&node);
    assert!(passed(&d) > passed(&c), "traffic passes again");
    assert_eq!(d[acl], c[acl], "nothing is denied by the ACL any more");
    node.stop();
}

#[test]
fn stats_and_verified_sources() {
    let (_dir, _cfg, node) = started();
    std::thread::sleep(Duration::from_millis(1500));
    let s = get(&node, "/api/v1/stats").json();
    assert_eq!(s["workers"], 2);
    assert!(s["rx_packets"].as_u64().unwrap() > 0, "{s}");
    assert!(s["rates"]["rx_pps"].as_f64().unwrap() > 500.0, "{s}");
    assert_eq!(s["per_worker"].as_array().unwrap().len(), 2);
    assert!(s["ports"]["outside"]["rx_packets"].as_u64().unwrap() > 0);
    assert!(s["drops_by_reason"]["acl_deny"].is_u64());
    let services: Vec<&String> = s["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, ["api", "web", "web6"]);
    let sum: u64 = s["services"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["passed_packets"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, s["passed_packets"].as_u64().unwrap());

    let v = get(&node, "/api/v1/verified/192.0.2.200");
    assert_eq!(v.status, 200, "{v:?}");
    assert_eq!(
        v.json(),
        json!({"address": "192.0.2.200", "verified": false, "workers": [], "unanswered": []})
    );
    let v = get(&node, "/api/v1/verified/2001:db8::99").json();
    assert_eq!(v["address"], "2001:db8::99");
    assert_eq!(
        call(&node, "DELETE", "/api/v1/verified/192.0.2.200", Some(TOKEN), &[], None).status,
        204
    );
    assert_eq!(
        call(&node, "DELETE", "/api/v1/verified", Some(TOKEN), &[], None).status,
        204
    );
    node.stop();
}

/// Every sample belongs to a family declared with HELP and TYPE; counters
/// end in `_total`; no label names an address; then `promtool check metrics`.
#[test]
fn metrics_exposition_is_well_formed() {
    let (_dir, _cfg, node) = started();
    std::thread::sleep(Duration::from_millis(1200));
    let r = get(&node, "/metrics");
    assert!(
        r.header("content-type").starts_with("text/plain; version=0.0.4"),
        "{r:?}"
    );
    let text = r.body;
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.last().is_some_and(|h| h == name), "TYPE without HELP: {line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{name} twice"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(types.contains_key(name), "sample before its TYPE: {line}");
            let value = line.rsplit_once(' ').unwrap().1;
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(!line.contains("src=") && !line.contains("addr"), "{line}");
        }
    }
    for family in [
        "moat_rx_packets_total",
        "moat_tx_packets_total",
        "moat_rx_bytes_total",
        "moat_dropped_packets_total",
        "moat_passed_packets_total",
        "moat_passed_bytes_total",
        "moat_replies_total",
        "moat_worker_rx_packets_total",
        "moat_workers",
        "moat_uptime_seconds",
        "moat_policy_generation",
        "moat_api_connections",
        "moat_api_connections_total",
        "moat_api_accept_errors_total",
        "moat_service_packets_total",
        "moat_service_bytes_total",
        "moat_service_dropped_packets_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(types.contains_key(family), "{family} missing");
    }
    let m = metrics(&node);
    assert_eq!(m["moat_workers"], 2.0);
    // This scrape's own, and maybe the previous one's, closing.
    assert!((1.0..=2.0).contains(&m["moat_api_connections"]), "{m:?}");
    assert!(m["moat_api_connections_total{result=\"accepted\"}"] >= 2.0);
    assert!(m["moat_rx_packets_total{port=\"outside\"}"] > 0.0);
    let per_worker = m["moat_worker_rx_packets_total{worker=\"0\"}"] + m["moat_worker_rx_packets_total{worker=\"1\"}"];
    assert!(per_worker > 0.0);
    // Per-service traffic: this node's services receive the game's
    // traffic; bytes are at least 60 a packet (minimum Ethernet frame,
    // FCS aside), drops no more than packets.
    let sum = |prefix: &str| -> f64 { m.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum() };
    let svc_packets = sum("moat_service_packets_total{");
    let svc_bytes = sum("moat_service_bytes_total{");
    let svc_dropped = sum("moat_service_dropped_packets_total{");
    assert!(svc_packets > 0.0, "{m:?}");
    assert!(
        svc_bytes >= 42.0 * svc_packets,
        "{svc_bytes} bytes for {svc_packets} packets"
    );
    assert!(svc_dropped <= svc_packets);
    let passed = sum("moat_passed_packets_total{");
    assert!(
        passed <= svc_packets,
        "passed {passed} of {svc_packets} addressed to services"
    );
    // The process's own figures.
    assert!(m["process_resident_memory_bytes"] > 1e6, "{m:?}");
    assert!(m["process_cpu_seconds_total"] > 0.0);
    assert!(m["process_open_fds"] >= 3.0);
    assert!(m["process_max_fds"] >= m["process_open_fds"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = m["process_start_time_seconds"];
    assert!(start <= now + 1.0 && start > now - 3600.0, "start {start}, now {now}");
    // No NIC counters on the memory backend.
    assert!(!m.keys().any(|k| k.starts_with("moat_port_imissed_total")));
    node.stop();

    if !common::require_tools("promtool lint of /metrics", &["promtool"], "prometheus") {
        return;
    }
    let mut p = common::cmd("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut p.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
