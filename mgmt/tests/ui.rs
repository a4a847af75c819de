//! The dashboard under `/ui/`: its headers and 401 rules (no browser), and
//! the pages in headless Chromium driven by Selenium
//! (`tests/ui/dashboard.py`) against `moat run` with an attack phase.

mod api_common;
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use api_common::{call, get, started, Node, TOKEN};

const PAGES: [&str; 3] = ["index.html", "attack.html", "api.html"];

/// Every asset: path under /ui/, content type.
const ASSETS: [(&str, &str); 12] = [
    ("", "text/html; charset=utf-8"),
    ("index.html", "text/html; charset=utf-8"),
    ("attack.html", "text/html; charset=utf-8"),
    ("api.html", "text/html; charset=utf-8"),
    ("moat.css", "text/css; charset=utf-8"),
    ("common.js", "text/javascript; charset=utf-8"),
    ("dashboard.js", "text/javascript; charset=utf-8"),
    ("report.js", "text/javascript; charset=utf-8"),
    ("attack.js", "text/javascript; charset=utf-8"),
    ("api.js", "text/javascript; charset=utf-8"),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
];

/// The assets are public (they carry no data), with their content type, a
/// strict CSP, nosniff, no framing; HTML is never cached. The bytes are
/// the files under mgmt/ui.
#[test]
fn assets_are_public_with_types_csp_and_cache_rules() {
    let (_dir, _cfg, node) = started();
    for (path, ctype) in ASSETS {
        let r = call(&node, "GET", &format!("/ui/{path}"), None, &[], None);
        assert_eq!(r.status, 200, "/ui/{path}: {r:?}");
        assert_eq!(r.header("content-type"), ctype, "/ui/{path}");
        let csp = r.header("content-security-policy");
        for d in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(d), "/ui/{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains("http"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert_eq!(r.header("x-frame-options"), "DENY");
        let cache = r.header("cache-control");
        if ctype.starts_with("text/html") {
            assert_eq!(cache, "no-store", "/ui/{path}");
        } else {
            assert!(cache.starts_with("public, max-age="), "/ui/{path}: {cache}");
        }
        let file = if path.is_empty() { "index.html" } else { path };
        let want = std::fs::read_to_string(common::root().join("mgmt/ui").join(file)).unwrap();
        assert_eq!(r.body, want, "/ui/{path}");
    }
    // HEAD too; `/ui` redirects to `/ui/`.
    assert_eq!(call(&node, "HEAD", "/ui/moat.css", None, &[], None).status, 200);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = agent.get(&format!("{}/ui", node.base)).call().unwrap();
    assert_eq!((r.status(), r.header("location")), (308, Some("/ui/")));
    node.stop();
}

/// Outside the assets, the API's rules hold: unknown /ui/ paths, other
/// methods and every data call need the token (401 with
/// WWW-Authenticate); with it, the data calls answer.
#[test]
fn data_and_unknown_paths_need_the_token() {
    let (_dir, _cfg, node) = started();
    for p in [
        "/ui/nope.js",
        "/ui/../api/v1/stats",
        "/ui/vendor/",
        "/ui/index.html.bak",
    ] {
        let r = call(&node, "GET", p, None, &[], None);
        assert_eq!(r.status, 401, "{p}: {r:?}");
    }
    assert_eq!(call(&node, "GET", "/ui/nope.js", Some(TOKEN), &[], None).status, 404);
    assert_eq!(call(&node, "POST", "/ui/index.html", None, &[], Some("{}")).status, 401);
    let data = [
        "/api/v1/stats",
        "/api/v1/attacks",
        "/api/v1/signatures",
        "/api/v1/services",
        "/api/v1/rules",
        "/api/v1/config",
        "/api/v1/origins",
        "/api/v1/openapi.json",
        "/metrics",
    ];
    for p in data {
        let r = call(&node, "GET", p, None, &[], None);
        assert_eq!(r.status, 401, "{p}");
        assert!(r.header("www-authenticate").starts_with("Bearer"), "{p}");
        let r = call(&node, "GET", p, Some("wrong-token-0123456789abc"), &[], None);
        assert_eq!(r.status, 401, "{p}");
        assert!(get(&node, p).status == 200 || p == "/api/v1/attacks", "{p}");
    }
    // The health check stays open, without its details.
    let h = call(&node, "GET", "/api/v1/health", None, &[], None).json();
    assert!(
        h["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("detail").is_none_or(|d| d == "")),
        "{h}"
    );
    // /api/v1/signatures shows the node's own fingerprint rules (where the
    // dashboard's Activate button puts a proposed signature).
    let s = get(&node, "/api/v1/signatures").json();
    let rules = get(&node, "/api/v1/rules").json();
    assert_eq!(s["rules"], rules["fingerprints"], "{s}");
    assert!(!s["rules"]["deny_tcp"].as_array().unwrap().is_empty(), "{s}");
    node.stop();
}

/// The pages load nothing from elsewhere and run nothing inline: no inline
/// script or style, no event handler attributes, no absolute URLs.
#[test]
fn pages_have_no_inline_code_or_external_origin() {
    for p in PAGES {
        let html = std::fs::read_to_string(common::root().join("mgmt/ui").join(p)).unwrap();
        for bad in [
            "style=",
            " onclick",
            " onload",
            " onsubmit",
            "<style",
            "http://",
            "https://",
            "javascript:",
        ] {
            assert!(!html.contains(bad), "{p} contains {bad}");
        }
        for (i, s) in html.match_indices("<script").map(|(i, _)| (i, &html[i..])) {
            let tag = &s[..s.find('>').unwrap()];
            assert!(tag.contains(" src="), "{p}@{i}: inline script {tag}");
            assert!(
                s[tag.len() + 1..].starts_with("</script>"),
                "{p}@{i}: script with a body"
            );
        }
    }
    for js in [
        "common.js",
        "dashboard.js",
        "report.js",
        "attack.js",
        "api.js",
        "offline.js",
    ] {
        let t = std::fs::read_to_string(common::root().join("mgmt/ui").join(js)).unwrap();
        for bad in ["innerHTML", "eval(", "new Function", "http://", "https://"] {
            assert!(!t.contains(bad), "{js} contains {bad}");
        }
    }
}

/// The dashboard in headless Chromium: login form without a token, live
/// graphs with points, the attack shown within seconds of its start, its
/// report page (timeline, top sources), a proposed signature activated and
/// removed from the page (seen in /api/v1/signatures), the API page.
/// Screenshots into $MOAT_UI_ARTIFACTS (default: a temporary folder, kept).
#[test]
fn dashboard_in_chromium() {
    let why = common::missing_tools(&["chromium", "chromedriver"], "chromium chromium-driver")
        .or_else(|| common::python().err());
    if !common::can_run("dashboard browser test", why) {
        return;
    }
    let py = common::python().unwrap();
    let artifacts = match std::env::var_os("MOAT_UI_ARTIFACTS") {
        Some(d) => PathBuf::from(d),
        None => tempfile::Builder::new().prefix("moat-ui-").tempdir().unwrap().keep(),
    };
    std::fs::create_dir_all(&artifacts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&common::attack_config(dir.path(), "moat-ui", (8, 40), false, 3));
    let t0 = Instant::now();
    let out = Command::new(py)
        .arg(common::root().join("tests/ui/dashboard.py"))
        .args([&node.base, TOKEN])
        .arg(&artifacts)
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{so}{se}screenshots in {}", artifacts.display());
    assert!(
        out.status.success(),
        "dashboard.py failed after {:?}:\n{so}\n{se}",
        t0.elapsed()
    );
    for f in ["login.png", "dashboard.png", "attack.png", "api.png"] {
        let len = std::fs::metadata(artifacts.join(f)).map_or(0, |m| m.len());
        assert!(len > 10_000, "{f}: {len} bytes");
    }
    assert!(t0.elapsed() < Duration::from_secs(120));
    node.stop();
}

/// The Grafana dashboard (docs/grafana/moat.json): every panel has queries;
/// every metric its expressions name is a family of `/metrics`, every label
/// they group or match on is one of that family's; and the expressions
/// are PromQL (`promtool check rules` on them as recording rules, the
/// dashboard's variables replaced).
#[test]
fn grafana_dashboard_names_only_metrics_of_the_node() {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::root().join("docs/grafana/moat.json")).unwrap()).unwrap();
    let (_dir, _cfg, node) = started();
    let metrics = get(&node, "/metrics").body;
    node.stop();
    let mut exprs = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for p in doc["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id: {p}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 15, "{exprs:?}");
    let names = |e: &str| -> Vec<String> {
        let mut out = Vec::new();
        for prefix in ["moat_", "process_"] {
            let mut rest = e;
            while let Some(i) = rest.find(prefix) {
                let n: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + n.len()..];
                out.push(n);
            }
        }
        out
    };
    // The NIC's own counters exist on DPDK nodes only (this node is on the
    // memory backend): they must be families the source declares.
    const DPDK_ONLY: [&str; 3] = [
        "moat_port_imissed_total",
        "moat_port_ierrors_total",
        "moat_port_rx_nombuf_total",
    ];
    let source = std::fs::read_to_string(common::root().join("mgmt/src/metrics.rs")).unwrap();
    for e in &exprs {
        let fams = names(e);
        assert!(!fams.is_empty(), "{e}");
        for f in &fams {
            if DPDK_ONLY.contains(&f.as_str()) {
                assert!(
                    source.contains(&format!("\"{f}\"")),
                    "{f} is not declared in metrics.rs"
                );
                assert!(!metrics.contains(&format!("\n# TYPE {f} ")), "{f} on a memory node");
                continue;
            }
            assert!(
                metrics.contains(&format!("\n# TYPE {f} ")),
                "{f} (in {e}) is not in /metrics"
            );
        }
        if fams.iter().all(|f| DPDK_ONLY.contains(&f.as_str())) {
            continue;
        }
        // Labels grouped by (`by (a, b)`) or matched (`a="v"`), but the
        // scrape's own `instance`.
        let mut labels: Vec<String> = Vec::new();
        if let Some(i) = e.find("by (") {
            let inner = &e[i + 4..i + 4 + e[i + 4..].find(')').unwrap()];
            labels.extend(inner.split(',').map(|l| l.trim().to_string()));
        }
        for (i, _) in e.match_indices("=\"") {
            let name: String = e[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            labels.push(name.chars().rev().collect());
        }
        for l in labels.iter().filter(|l| l.as_str() != "instance") {
            let has = metrics.lines().any(|line| {
                fams.iter().any(|f| line.starts_with(&format!("{f}{{"))) && line.contains(&format!("{l}=\""))
            });
            assert!(has, "label {l} (in {e}) is on none of {fams:?} in /metrics");
        }
    }
    assert!(metrics.contains("moat_rx_packets_total{port=\"outside\"}"));
    if !common::require_tools("promtool check of the Grafana expressions", &["promtool"], "prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let e = e.replace("$instance", ".*").replace("$__range", "1h");
            format!(
                "      - record: moat:grafana_{i}\n        expr: {}\n",
                serde_json::to_string(&e).unwrap()
            )
        })
        .collect();
    let f = dir.path().join("rules.yml");
    std::fs::write(&f, format!("groups:\n  - name: grafana\n    rules:\n{rules}")).unwrap();
    let out = common::cmd("promtool")
        .args(["check", "rules"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
