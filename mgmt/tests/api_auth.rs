//! `syn_auth = "http-redirect"` and `udp_auth` through the REST API of a
//! running `moat run` (memory backend): a service created with them reads
//! back the same, a bad entry is a problem naming its field, the OpenAPI
//! document names them.

mod api_common;
mod common;

use api_common::{call, get, started, TOKEN};
use serde_json::json;

#[test]
fn services_with_http_redirect_and_udp_auth() {
    let (_dir, _cfg, node) = started();
    let body = json!({
        "name": "shield", "vip": "203.0.113.60", "origin": "web",
        "allow": ["tcp/80", "udp/27015", "udp/7777"],
        "syn_auth": "http-redirect",
        "udp_auth": [
            {"port": "udp/27015", "profile": "a2s"},
            {"port": "udp/7777", "profile": "first-packet", "value": "dead0001", "mask": "ffff00ff",
             "min_ms": 200, "max_ms": 3000}
        ],
        "on_attack": {"syn_auth": "http-redirect"}
    });
    let c = call(
        &node,
        "POST",
        "/api/v1/services",
        Some(TOKEN),
        &[],
        Some(&body.to_string()),
    );
    assert_eq!(c.status, 201, "{c:?}");
    let g = get(&node, "/api/v1/services/shield").json();
    assert_eq!(g["syn_auth"], "http-redirect");
    assert_eq!(g["on_attack"]["syn_auth"], "http-redirect");
    assert_eq!(g["udp_auth"], body["udp_auth"]);

    // Refused, naming the field.
    for (udp_auth, field, reason) in [
        (
            json!([{"port": "udp/27015", "profile": "quake"}]),
            "udp_auth[0].profile",
            "unknown profile",
        ),
        (
            json!([{"port": "udp/9999", "profile": "a2s"}]),
            "udp_auth[0].port",
            "does not allow",
        ),
        (
            json!([{"port": "udp/7777", "profile": "first-packet", "value": "00", "min_ms": 9, "max_ms": 5}]),
            "udp_auth[0].min_ms",
            "above max_ms",
        ),
    ] {
        let mut b = body.clone();
        b["name"] = json!("shield2");
        b["vip"] = json!("203.0.113.61");
        b["udp_auth"] = udp_auth;
        let r = call(
            &node,
            "POST",
            "/api/v1/services",
            Some(TOKEN),
            &[],
            Some(&b.to_string()),
        );
        let p = r.problem(400, field);
        assert!(p["reason"].as_str().unwrap_or("").contains(reason), "{p}");
    }
    let doc = get(&node, "/api/v1/openapi.json").json();
    let modes = &doc["components"]["schemas"]["SynAuthMode"]["enum"];
    assert!(modes.as_array().unwrap().contains(&json!("http-redirect")), "{modes}");
    assert!(doc["components"]["schemas"]["UdpAuthConfig"].is_object());
}
