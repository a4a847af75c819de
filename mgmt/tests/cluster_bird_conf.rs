//! The example BIRD 2 configs of docs/cluster/ (a scrubbing node's and the
//! upstream router's) pass BIRD's own syntax check, `bird -p -c FILE`,
//! and hold what docs/cluster.md says they hold.

mod common;

fn check(name: &str) -> String {
    let path = common::root().join("docs/cluster").join(name);
    let out = common::cmd("bird")
        .arg("-p")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run bird -p");
    assert!(
        out.status.success(),
        "bird -p -c {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&path).expect("read the config")
}

#[test]
fn the_node_config_parses_and_starts_moats_protocol_disabled() {
    if !common::require_tools("BIRD config check", &["bird"], "bird2") {
        return;
    }
    let text = check("bird-node.conf");
    for needle in [
        "protocol static moat_vips",
        "disabled yes;",
        "check link yes;",
        "via \"moat0\"",
        "bgp_next_hop = 198.51.100.11;",
        "import none;",
    ] {
        assert!(text.contains(needle), "bird-node.conf lacks {needle:?}");
    }
}

#[test]
fn the_router_config_parses_and_merges_paths() {
    if !common::require_tools("BIRD config check", &["bird"], "bird2") {
        return;
    }
    let text = check("bird-router.conf");
    assert!(text.contains("merge paths on"), "ECMP needs merge paths");
    assert!(text.contains("export none;"), "the router sends the nodes nothing");
}
