//! The blacklist's REST resources against a running `moat run` (memory
//! backend): ban by hand, list, search, read, lift, bad input as
//! problem+json naming the field, 404 for a source not banned, the bans
//! surviving a restart, and the figures in `/metrics`.

mod api_common;
mod common;

use api_common::{call, get, metrics, started, Node, TOKEN};
use serde_json::{json, Value};

fn post(node: &Node, body: &Value) -> api_common::Reply {
    call(
        node,
        "POST",
        "/api/v1/blacklist",
        Some(TOKEN),
        &[],
        Some(&body.to_string()),
    )
}

#[test]
fn ban_list_search_get_lift_and_bad_input() {
    let (_dir, cfg, node) = started();
    let r = post(
        &node,
        &json!({"address": "198.51.100.7", "duration_secs": 300, "service": "web"}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let b = r.json();
    assert_eq!(b["source"], "198.51.100.7");
    assert_eq!(
        (b["service"].as_str(), b["kind"].as_str()),
        (Some("web"), Some("manual"))
    );
    let (at, ends) = (b["banned_at"].as_u64().unwrap(), b["expires_at"].as_u64().unwrap());
    assert_eq!(ends - at, 300_000);
    assert_eq!(
        post(&node, &json!({"address": "2001:db8::7", "duration_secs": 60})).status,
        201
    );

    let l = get(&node, "/api/v1/blacklist").json();
    assert_eq!(l["total"], 2, "{l}");
    // Soonest end first.
    assert_eq!(l["bans"][0]["source"], "2001:db8::7");
    let l = get(&node, "/api/v1/blacklist?q=198.51.").json();
    assert_eq!(
        (l["total"].as_u64(), l["bans"][0]["source"].as_str()),
        (Some(1), Some("198.51.100.7"))
    );
    assert_eq!(
        get(&node, "/api/v1/blacklist?q=db8").json()["bans"][0]["source"],
        "2001:db8::7"
    );
    assert_eq!(get(&node, "/api/v1/blacklist?service=web").json()["total"], 1);
    assert_eq!(get(&node, "/api/v1/blacklist?service=api").json()["total"], 0);
    let l = get(&node, "/api/v1/blacklist?limit=1").json();
    assert_eq!((l["total"].as_u64(), l["bans"].as_array().unwrap().len()), (Some(2), 1));
    let g = get(&node, "/api/v1/blacklist/198.51.100.7");
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.json(), b);

    // Bad input: the field named.
    get(&node, "/api/v1/blacklist/not-an-ip").problem(400, "address");
    get(&node, "/api/v1/blacklist?limit=0").problem(400, "limit");
    get(&node, "/api/v1/blacklist?limit=x").problem(400, "limit");
    post(&node, &json!({"address": "nope", "duration_secs": 5})).problem(400, "address");
    post(&node, &json!({"address": "192.0.2.1", "duration_secs": 0})).problem(400, "duration_secs");
    post(&node, &json!({"address": "192.0.2.1", "duration_secs": 2_592_001})).problem(400, "duration_secs");
    post(
        &node,
        &json!({"address": "192.0.2.1", "duration_secs": 5, "service": "nope"}),
    )
    .problem(400, "service");
    assert_eq!(post(&node, &json!({"address": "192.0.2.1"})).status, 400);
    call(&node, "DELETE", "/api/v1/blacklist/x", Some(TOKEN), &[], None).problem(400, "address");
    // Unknown: 404.
    get(&node, "/api/v1/blacklist/192.0.2.99").problem(404, "");
    call(&node, "DELETE", "/api/v1/blacklist/192.0.2.99", Some(TOKEN), &[], None).problem(404, "");
    // Without the token: 401.
    assert_eq!(call(&node, "GET", "/api/v1/blacklist", None, &[], None).status, 401);

    let d = call(&node, "DELETE", "/api/v1/blacklist/2001:db8::7", Some(TOKEN), &[], None);
    assert_eq!(d.status, 204, "{d:?}");
    get(&node, "/api/v1/blacklist/2001:db8::7").problem(404, "");

    let m = metrics(&node);
    assert_eq!(m.get("moat_blacklist_bans_active"), Some(&1.0), "{m:?}");
    assert_eq!(m.get("moat_blacklist_bans_manual_total"), Some(&2.0));
    assert_eq!(m.get("moat_blacklist_bans_lifted_total"), Some(&1.0));
    assert!(
        m.contains_key("moat_dropped_packets_total{reason=\"blacklisted\"}"),
        "{m:?}"
    );
    assert!(
        m.contains_key("moat_blacklist_violations_total{kind=\"src_pps\"}"),
        "{m:?}"
    );
    let doc = get(&node, "/api/v1/openapi.json").json();
    assert!(doc["paths"]["/api/v1/blacklist"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/blacklist/{address}"]["delete"].is_object());

    // The ban left survives a restart (the state folder's blacklist.json).
    std::thread::sleep(std::time::Duration::from_millis(1300));
    node.stop();
    let node = Node::start(&cfg);
    let g = get(&node, "/api/v1/blacklist/198.51.100.7");
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.json()["expires_at"], b["expires_at"]);
    assert_eq!(get(&node, "/api/v1/blacklist").json()["total"], 1);
    node.stop();
}
