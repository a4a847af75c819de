//! `syn_auth = "http-redirect"` and `[[services.udp_auth]]` in the config
//! file: the policy they build, each bad entry refused at its key with its
//! reason, and what `moat check` says about them.

use std::path::Path;

use classifier::policy::{PayloadRule, SynAuth};
use classifier::time::MILLISECOND;
use classifier::udpauth::{FirstPacket, Profile, UdpAuth};
use mgmt::cmd::check::{check, CheckArgs};
use mgmt::config::{Config, ConfigError};

const BASE: &str = r#"
[node]
name = "t"

[[ports]]
name = "outside"
role = "outside"
iface = "out0"
ip = "10.10.0.1/24"
gateway = "10.10.0.254"

[[ports]]
name = "inside"
role = "inside"
iface = "in0"
ip = "192.168.77.1/24"

[[origins]]
name = "o"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "o"
allow = ["tcp/80"]
syn_auth = "http-redirect"

[[services]]
name = "game"
vip = "203.0.113.20"
origin = "o"
allow = ["udp/27015", "udp/7777", "udp/9000-9010"]
syn_auth = "off"

[[services.udp_auth]]
port = "udp/27015"
profile = "a2s"

[[services.udp_auth]]
port = "udp/7777"
profile = "first-packet"
offset = 2
value = "dead0001"
mask = "ffff00ff"
min_ms = 200
max_ms = 3000
"#;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(s, "t.toml", Path::new("/nonexistent-dir"))
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE lacks {from:?}");
    BASE.replacen(from, to, 1)
}

#[track_caller]
fn refused(s: &str, key: &str, reason: &str) {
    let e = parse(s).expect_err("config should be refused");
    assert_eq!(e.key, key, "{e}");
    assert!(e.reason.contains(reason), "reason {:?} lacks {reason:?}", e.reason);
}

#[test]
fn builds_the_policy() {
    let cfg = parse(BASE).unwrap();
    let p = cfg.policy().unwrap();
    assert_eq!(p.services[0].syn_auth, SynAuth::HttpRedirect);
    assert_eq!(
        p.services[1].udp_auth,
        vec![
            UdpAuth {
                port: 7777,
                profile: Profile::FirstPacket(FirstPacket {
                    rule: PayloadRule::new(7777, 2, &[0xde, 0xad, 0, 1], &[0xff, 0xff, 0, 0xff]).unwrap(),
                    min: 200 * MILLISECOND,
                    max: 3000 * MILLISECOND,
                }),
            },
            UdpAuth {
                port: 27015,
                profile: Profile::A2s
            },
        ]
    );
    // Round trip through TOML.
    let again = parse(&cfg.to_toml_string()).unwrap();
    assert_eq!(again.services, cfg.services);
}

#[test]
fn bad_entries_are_refused_at_their_key() {
    refused(
        &edit("profile = \"a2s\"", "profile = \"quake\""),
        "services[1].udp_auth[0].profile",
        "unknown profile \"quake\"",
    );
    refused(
        &edit("port = \"udp/27015\"", "port = \"udp/27016\""),
        "services[1].udp_auth[0].port",
        "does not allow",
    );
    refused(
        &edit("port = \"udp/27015\"", "port = \"udp/9000-9001\""),
        "services[1].udp_auth[0].port",
        "one UDP port",
    );
    refused(
        &edit("port = \"udp/27015\"", "port = \"tcp/27015\""),
        "services[1].udp_auth[0].port",
        "one UDP port",
    );
    refused(
        &edit("port = \"udp/7777\"", "port = \"udp/27015\""),
        "services[1].udp_auth[1].port",
        "already has udp_auth",
    );
    refused(
        &edit("profile = \"a2s\"", "profile = \"a2s\"\nmin_ms = 5"),
        "services[1].udp_auth[0].min_ms",
        "only for profile \"first-packet\"",
    );
    refused(
        &edit("min_ms = 200", "min_ms = 4000"),
        "services[1].udp_auth[1].min_ms",
        "above max_ms",
    );
    refused(&edit("max_ms = 3000", ""), "services[1].udp_auth[1].max_ms", "missing");
    refused(
        &edit("max_ms = 3000", "max_ms = 0"),
        "services[1].udp_auth[1].max_ms",
        "expected 1 to 60000",
    );
    refused(
        &edit("mask = \"ffff00ff\"", "mask = \"ff\""),
        "services[1].udp_auth[1].mask",
        "lengths differ",
    );
    refused(
        &edit("value = \"dead0001\"", ""),
        "services[1].udp_auth[1].value",
        "missing",
    );
    refused(
        &edit("value = \"dead0001\"", &format!("value = \"{}\"", "00".repeat(33))),
        "services[1].udp_auth[1].value",
        "1 to 32 bytes",
    );
    refused(
        &edit("offset = 2", "offset = 65504"),
        "services[1].udp_auth[1].offset",
        "past the largest UDP payload",
    );
    let e = parse(&edit("value = \"dead0001\"", "value = \"zz\"")).unwrap_err();
    assert!(e.key.starts_with("services[1].udp_auth[1].value"), "{e}");
    refused(
        &edit("syn_auth = \"http-redirect\"", "syn_auth = \"http-redirec\""),
        "services[0].syn_auth",
        "`http-redirect`",
    );
}

#[test]
fn http_redirect_is_an_on_attack_escalation() {
    let cfg = parse(&edit(
        "syn_auth = \"http-redirect\"",
        "syn_auth = \"challenge-ack\"\n[services.on_attack]\nsyn_auth = \"http-redirect\"",
    ))
    .unwrap();
    assert_eq!(cfg.services[0].on_attack.syn_auth_mode(), Some(SynAuth::HttpRedirect));
    refused(
        &edit(
            "syn_auth = \"http-redirect\"",
            "[services.on_attack]\nsyn_auth = \"off\"",
        ),
        "services[0].on_attack.syn_auth",
        "`http-redirect`",
    );
}

#[test]
fn moat_check_notes_https_and_udp_auth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    let text = edit("allow = [\"tcp/80\"]", "allow = [\"tcp/80\", \"tcp/443\"]").replace(
        "name = \"t\"",
        &format!("name = \"t\"\nstate_dir = \"{}\"", dir.path().display()),
    );
    std::fs::write(&path, text).unwrap();
    let out = check(&CheckArgs { config: path }).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.contains("service web: warning: http-redirect also applies to tcp/443"),
        "{out}"
    );
    assert!(
        out.contains("service game: udp_auth udp/27015 a2s, udp/7777 first-packet"),
        "{out}"
    );
}
