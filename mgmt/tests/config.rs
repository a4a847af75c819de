//! The config file end to end: both shipped examples load and build the
//! expected policy, and each kind of bad input is refused naming the exact
//! key (and line) with its reason.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use classifier::acl::AclAction;
use classifier::cookie::CookieSecrets;
use classifier::policy::{FragPolicy, SynAuth};
use classifier::time::SECOND;
use mgmt::cmd::check::{check, CheckArgs};
use mgmt::config::{Backend, Config, ConfigError, SecretSource};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A small sound config; each bad case below edits one thing in it.
const BASE: &str = r#"
[node]
name = "t"

[dataplane]
workers = 2
burst = 32

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
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80", "udp/7777", "icmp"]

[[services.payload_rules]]
port = "udp/7777"
value = "47414d45"
mask = "ffffffff"

[acl]
allow = ["192.0.2.0/24"]
deny = ["198.51.100.0/24", "2001:db8:bad::/48"]

[fingerprints]
deny_tcp = ["4:64:0:-:512,-::"]
"#;

const SECOND_SERVICE: &str = r#"
[[services]]
name = "api"
vip = "203.0.113.20"
origin = "web"
allow = ["tcp/443"]
"#;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(s, "t.toml", Path::new("/nonexistent-dir"))
}

/// BASE with `from` replaced by `to` (which must occur, or the test would
/// check nothing).
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE lacks {from:?}");
    BASE.replacen(from, to, 1)
}

/// Asserts that `s` is refused at `key` with a reason containing `reason`.
#[track_caller]
fn refused(s: &str, key: &str, reason: &str) -> ConfigError {
    let e = parse(s).expect_err("config should be refused");
    assert_eq!(e.key, key, "{e}");
    assert!(e.reason.contains(reason), "reason {:?} lacks {reason:?}", e.reason);
    assert!(e.file.starts_with("t.toml"), "{e}");
    e
}

/// Line (1-based) of the first line of `s` containing `needle`.
fn line_of(s: &str, needle: &str) -> usize {
    s.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn base_is_sound() {
    let cfg = parse(BASE).unwrap();
    assert_eq!(cfg.services.len(), 1);
    assert_eq!(cfg.dataplane.backend, Backend::AfPacket);
    parse(&format!("{BASE}{SECOND_SERVICE}")).unwrap();
}

#[test]
fn example_moat_builds_the_documented_policy() {
    let cfg = Config::load(&examples().join("moat.toml")).unwrap();
    assert_eq!(cfg.node.name, "moat-1");
    assert_eq!(cfg.outside_port().iface, "out0");
    assert_eq!(cfg.inside_port().ip.addr(), ip("192.168.77.1"));
    assert_eq!(cfg.secret_source(), SecretSource::Random);
    assert_eq!(cfg.dataplane.dpdk.eal_args, ["--no-huge", "-m", "512", "--no-pci"]);
    let sizes = cfg.state_config();
    assert_eq!((sizes.flows, sizes.verified, sizes.sources), (65536, 65536, 65536));

    let p = cfg.policy().unwrap();
    let id = p.service_for(ip("203.0.113.10")).expect("web VIP indexed");
    assert_eq!(p.service_for(ip("203.0.113.11")), None);
    let web = &p.services[usize::from(id)];
    assert_eq!(web.name, "web");
    assert!(web.tcp_ports.contains(80) && !web.tcp_ports.contains(81) && !web.tcp_ports.contains(7777));
    assert!(web.udp_ports.contains(7777) && !web.udp_ports.contains(80));
    assert!(web.icmp);
    assert_eq!(web.syn_auth, SynAuth::ChallengeAck);
    assert_eq!(p.origins[usize::from(web.origin)].name, "web");
    assert_eq!(p.origins[0].key, Some(42));
    assert_eq!(p.origins[0].mtu, 1476);

    let rules = web.payload_rules_for(7777);
    assert_eq!(rules.len(), 1);
    let r = rules[0];
    assert_eq!((r.port, r.offset, r.len), (7777, 0, 4));
    assert_eq!(&r.value[..4], b"GAME");
    assert_eq!(&r.mask[..4], &[0xff; 4]);
    assert!(r.matches(b"GAME\x01\x02") && !r.matches(b"GAMF") && !r.matches(b"GAM"));

    assert_eq!(p.acl.lookup(ip("192.0.2.77")), Some(AclAction::Allow));
    assert_eq!(p.acl.lookup(ip("198.51.100.9")), Some(AclAction::Deny));
    assert_eq!(p.acl.lookup(ip("2001:db8:bad::1")), Some(AclAction::Deny));
    assert_eq!(p.acl.lookup(ip("8.8.8.8")), None);
    assert_eq!(p.tcp_deny.len(), 1);
    assert_eq!(p.tcp_deny[0].to_string(), "4:64:0:-:512,-::");
    assert_eq!(p.udp_deny[0].to_string(), "udp:*:*:19:*");

    assert_eq!(p.own_mac(ip("10.10.0.1")), Some([2, 0, 0, 0, 0, 1]));
    // The inside port has no MAC in the file: the index-derived default.
    assert_eq!(p.own_mac(ip("192.168.77.1")), Some([2, 0, 0, 0, 0, 2]));
    assert_eq!(p.sanity.min_ttl, 2);
    assert_eq!(p.sanity.fragments, FragPolicy::Drop);
    assert!(p.sanity.verify_ip_checksum);
    assert_eq!(p.timeouts.verified_ttl, 300 * SECOND);
    assert_eq!(p.timeouts.flow_idle, 120 * SECOND);
    assert_eq!(p.global_pps, 0);
    // No secret file: the random key is drawn once per process.
    assert_eq!(cfg.policy().unwrap().secrets, p.secrets);
}

#[test]
fn example_offline_uses_the_cluster_secret_and_cookie_reset() {
    let path = examples().join("offline.toml");
    let cfg = Config::load(&path).unwrap();
    assert_eq!(cfg.dataplane.backend, Backend::Pcap);
    let secret_path = examples().join("cluster.secret");
    assert_eq!(cfg.secret_source(), SecretSource::File(secret_path.clone()));
    let p = cfg.policy().unwrap();
    let material = std::fs::read_to_string(&secret_path).unwrap();
    assert_eq!(material.trim().len(), 32, "demo secret is 32 hex chars");
    assert_eq!(p.secrets.current, CookieSecrets::derive_key(material.trim().as_bytes()));

    assert_eq!(p.services.len(), 3);
    assert!(p.service_for(ip("2001:db8::10")).is_some());
    let api = &p.services[usize::from(p.service_for(ip("203.0.113.20")).unwrap())];
    assert_eq!(api.syn_auth, SynAuth::CookieReset);
    assert!(api.tcp_ports.contains(443) && api.tcp_ports.contains(8000) && api.tcp_ports.contains(8080));
    assert!(!api.tcp_ports.contains(8081) && !api.icmp && api.udp_ports.is_empty());
    assert_eq!(api.limits.src_syn_pps, 50);
    assert_eq!(api.limits.challenge_pps, 100_000);
    assert_eq!(p.origins[usize::from(api.origin)].name, "api");
    let web = &p.services[usize::from(p.service_for(ip("203.0.113.10")).unwrap())];
    // The rule has no mask in the file: all ff.
    assert_eq!(&web.payload_rules[0].mask[..4], &[0xff; 4]);

    let gre = cfg.origin_gre("api").unwrap();
    assert_eq!(gre.src.to_string(), "192.168.77.1");
    assert_eq!(gre.dst.to_string(), "192.168.77.3");
    assert_eq!(gre.next_hop, gre.dst, "on-link origin");
    assert_eq!(gre.next_hop_mac, Some([2, 0, 0, 0, 0x77, 3]));
    assert_eq!(gre.src_mac, [2, 0, 0, 0, 0, 2]);
    assert_eq!((gre.key, gre.mtu), (None, 1476));
    assert_eq!(cfg.origin_gre("web").unwrap().key, Some(42));
    assert!(cfg.origin_gre("db").is_none());
    assert_eq!(cfg.state_dir(), examples().join("state"));
}

#[test]
fn moat_check_passes_on_both_examples() {
    for name in ["moat.toml", "offline.toml", "dpdk-two-port.toml"] {
        let args = CheckArgs {
            config: examples().join(name),
        };
        if name.starts_with("dpdk") && !cfg!(feature = "dpdk") {
            // `run` would refuse it on this binary: so does `check`.
            let e = check(&args).unwrap_err();
            assert_eq!(e.key, "dataplane.backend", "{e}");
            continue;
        }
        let text = check(&args).unwrap();
        let line = text.lines().next().unwrap();
        assert!(line.ends_with(")") && line.contains(": ok ("), "{line}");
        assert!(text.contains("\n  worker memory: "), "{text}");
        assert!(text.contains("\n  API overlay"), "{text}");
        mgmt::cmd::check::run(&args).unwrap();
    }
    let text = check(&CheckArgs {
        config: examples().join("offline.toml"),
    })
    .unwrap();
    let line = text.lines().next().unwrap();
    assert!(
        line.contains("3 services, 2 origins, 2 ACL rules, 2 fingerprint rules, backend pcap"),
        "{line}"
    );
}

#[test]
fn moat_check_returns_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, edit("workers = 2", "workers = 0")).unwrap();
    let err = mgmt::cmd::check::run(&CheckArgs { config: path.clone() }).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains(": dataplane.workers: 0 is out of range 1..=256"), "{msg}");
    let missing = check(&CheckArgs {
        config: dir.path().join("nope.toml"),
    })
    .unwrap_err();
    assert_eq!(missing.reason, "no such file");
}

#[test]
fn config_round_trips_through_toml() {
    let cfg = Config::load(&examples().join("offline.toml")).unwrap();
    let text = cfg.to_toml_string();
    let again = Config::from_toml_str(&text, "again.toml", &examples()).unwrap();
    assert_eq!(again, Config::from_toml_str(&text, "again.toml", &examples()).unwrap());
    assert_eq!(again.services, cfg.services);
    assert_eq!(again.origins, cfg.origins);
    assert_eq!(again.acl, cfg.acl);
    assert_eq!(again.fingerprints, cfg.fingerprints);
    assert_eq!(again.dataplane, cfg.dataplane);
    assert_eq!((&again.outside, &again.inside), (&cfg.outside, &cfg.inside));
}

#[test]
fn gre_via_the_inside_gateway() {
    let s = edit(
        "ip = \"192.168.77.1/24\"",
        "ip = \"192.168.77.1/24\"\ngateway = \"192.168.77.254\"\ngateway_mac = \"02:00:00:00:00:99\"",
    )
    .replacen("tunnel_dst = \"192.168.77.2\"", "tunnel_dst = \"172.16.0.9\"", 1);
    let gre = parse(&s).unwrap().origin_gre("web").unwrap();
    assert_eq!(gre.next_hop.to_string(), "192.168.77.254");
    assert_eq!(gre.next_hop_mac, Some([2, 0, 0, 0, 0, 0x99]));
}

// ---- refusals: each names the exact key ----

#[test]
fn port_out_of_range() {
    let s = edit("\"udp/7777\", \"icmp\"", "\"udp/7777\", \"tcp/70000\"");
    let e = refused(&s, "services[0].allow[2]", "\"tcp/70000\": port out of range 1..=65535");
    let line = line_of(&s, "tcp/70000");
    let col = s.lines().nth(line - 1).unwrap().find("\"tcp/70000").unwrap() + 1;
    assert_eq!(e.file, format!("t.toml:{line}:{col}"));
}

#[test]
fn icmp_with_a_port() {
    refused(
        &edit("\"icmp\"]", "\"icmp/8\"]"),
        "services[0].allow[2]",
        "icmp takes no port",
    );
}

#[test]
fn unknown_origin() {
    refused(
        &edit("origin = \"web\"", "origin = \"db\""),
        "services[0].origin",
        "unknown origin \"db\"",
    );
}

#[test]
fn duplicate_vip() {
    let s = format!("{BASE}{}", SECOND_SERVICE.replace("203.0.113.20", "203.0.113.10"));
    let e = refused(&s, "services[1].vip", "duplicate VIP 203.0.113.10 (also services[0])");
    assert_eq!(e.to_string().split(": ").nth(1), Some("services[1].vip"));
}

#[test]
fn duplicate_service_name() {
    let s = format!("{BASE}{}", SECOND_SERVICE.replace("\"api\"", "\"web\""));
    refused(
        &s,
        "services[1].name",
        "duplicate service name \"web\" (also services[0])",
    );
}

#[test]
fn vip_is_a_port_address() {
    refused(
        &edit("vip = \"203.0.113.10\"", "vip = \"10.10.0.1\""),
        "services[0].vip",
        "is the address of port \"outside\"",
    );
}

#[test]
fn value_and_mask_lengths_differ() {
    refused(
        &edit("mask = \"ffffffff\"", "mask = \"ffff\""),
        "services[0].payload_rules[0].mask",
        "value and mask lengths differ (4 vs 2 bytes)",
    );
}

#[test]
fn payload_rule_on_a_port_the_service_does_not_allow() {
    refused(
        &edit("port = \"udp/7777\"", "port = \"udp/9999\""),
        "services[0].payload_rules[0].port",
        "payload rule on udp/9999 which the service does not allow",
    );
}

#[test]
fn payload_rule_on_a_range() {
    refused(
        &edit("port = \"udp/7777\"", "port = \"udp/7000-7010\""),
        "services[0].payload_rules[0].port",
        "one UDP or TCP port",
    );
}

#[test]
fn value_too_long() {
    let long = "ab".repeat(33);
    refused(
        &edit(
            "value = \"47414d45\"\nmask = \"ffffffff\"",
            &format!("value = \"{long}\""),
        ),
        "services[0].payload_rules[0].value",
        "value longer than 32 bytes",
    );
}

#[test]
fn value_not_hex() {
    refused(
        &edit("value = \"47414d45\"", "value = \"4741zz45\""),
        "services[0].payload_rules[0].value",
        "not hex",
    );
}

#[test]
fn tunnel_src_not_the_inside_address() {
    refused(
        &edit("tunnel_src = \"192.168.77.1\"", "tunnel_src = \"192.168.77.9\""),
        "origins[0].tunnel_src",
        "tunnel_src 192.168.77.9 is not the address of the inside port",
    );
}

#[test]
fn tunnel_dst_unreachable() {
    refused(
        &edit("tunnel_dst = \"192.168.77.2\"", "tunnel_dst = \"172.16.0.9\""),
        "origins[0].tunnel_dst",
        "not on the inside port's network 192.168.77.0/24 and the inside port has no gateway",
    );
}

#[test]
fn origin_mtu_out_of_range() {
    refused(
        &edit(
            "tunnel_dst = \"192.168.77.2\"",
            "tunnel_dst = \"192.168.77.2\"\nmtu = 100",
        ),
        "origins[0].mtu",
        "100 is out of range 576..=9000",
    );
}

#[test]
fn secret_file_missing() {
    refused(
        &edit("name = \"t\"", "name = \"t\"\ncookie_secret_file = \"x.secret\""),
        "node.cookie_secret_file",
        "x.secret: no such file",
    );
}

#[test]
fn secret_file_too_short_and_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s"), "short\n").unwrap();
    let s = edit("name = \"t\"", "name = \"t\"\ncookie_secret_file = \"s\"");
    let e = Config::from_toml_str(&s, "t.toml", dir.path()).unwrap_err();
    assert_eq!(e.key, "node.cookie_secret_file");
    assert!(e.reason.contains("5 bytes of secret, need at least 16"), "{e}");
    std::fs::write(dir.path().join("s"), "0123456789abcdef0123456789abcdef\n").unwrap();
    let cfg = Config::from_toml_str(&s, "t.toml", dir.path()).unwrap();
    assert_eq!(cfg.secret_source(), SecretSource::File(dir.path().join("s")));
    // Removed after validation: policy() reports it.
    std::fs::remove_file(dir.path().join("s")).unwrap();
    let e = cfg.policy().unwrap_err();
    assert_eq!((e.file.as_str(), e.key.as_str()), ("t.toml", "node.cookie_secret_file"));
}

#[test]
fn port_ip_without_prefix() {
    refused(
        &edit("ip = \"10.10.0.1/24\"", "ip = \"10.10.0.1\""),
        "ports[0].ip",
        "missing /prefix",
    );
}

#[test]
fn inside_port_must_be_ipv4() {
    let s = edit("ip = \"192.168.77.1/24\"", "ip = \"2001:db8::1/64\"");
    refused(&s, "ports[1].ip", "needs an IPv4 address");
}

#[test]
fn gateway_off_network() {
    refused(
        &edit("gateway = \"10.10.0.254\"", "gateway = \"10.20.0.254\""),
        "ports[0].gateway",
        "gateway 10.20.0.254 is not on the port's network 10.10.0.0/24",
    );
}

#[test]
fn gateway_mac_without_gateway() {
    refused(
        &edit("gateway = \"10.10.0.254\"", "gateway_mac = \"02:00:00:00:00:fe\""),
        "ports[0].gateway_mac",
        "gateway_mac without gateway",
    );
}

#[test]
fn multicast_mac() {
    refused(
        &edit("iface = \"out0\"", "iface = \"out0\"\nmac = \"01:00:5e:00:00:01\""),
        "ports[0].mac",
        "multicast MAC address",
    );
}

#[test]
fn two_outside_ports() {
    refused(
        &edit("role = \"inside\"", "role = \"outside\""),
        "ports[1].role",
        "a second outside port (also ports[0])",
    );
}

#[test]
fn no_inside_port() {
    let start = BASE.find("[[ports]]\nname = \"inside\"").unwrap();
    let end = BASE.find("[[origins]]").unwrap();
    let s = format!("{}{}", &BASE[..start], &BASE[end..]);
    refused(&s, "ports", "no port with role = \"inside\"");
}

#[test]
fn workers_out_of_range() {
    let s = edit("workers = 2", "workers = 1000");
    let e = refused(&s, "dataplane.workers", "1000 is out of range 1..=256");
    assert!(
        e.file
            .starts_with(&format!("t.toml:{}:", line_of(&s, "workers = 1000"))),
        "{e}"
    );
}

#[test]
fn example_dpdk_two_port_is_a_dpdk_node_on_pci_ports() {
    let cfg = Config::load(&examples().join("dpdk-two-port.toml")).unwrap();
    assert_eq!(cfg.dataplane.backend, Backend::Dpdk);
    assert_eq!(cfg.outside.iface, "0000:03:00.0");
    assert_eq!(cfg.inside.iface, "0000:03:00.1");
    let d = &cfg.dataplane.dpdk;
    assert!(d.eal_args.iter().any(|a| a == "0000:03:00.0"), "{:?}", d.eal_args);
    let o = cfg
        .dataplane
        .dpdk_options(cfg.outside.iface.clone(), cfg.inside.iface.clone());
    assert_eq!((o.workers, o.mbufs, o.rx_desc), (2, 16383, 1024));
    assert_eq!(o.link_wait, std::time::Duration::from_secs(5));
    assert!(o.validate().is_ok(), "{:?}", o.validate());
}

#[test]
fn dpdk_options_are_range_checked() {
    let dpdk = |kv: &str| edit("burst = 32", &format!("burst = 32\n\n[dataplane.dpdk]\n{kv}"));
    parse(&dpdk("eal_args = [\"--no-huge\"]\nmbufs = 16383")).unwrap();
    refused(
        &dpdk("mbuf_cache = 600"),
        "dataplane.dpdk.mbuf_cache",
        "600 is out of range 0..=512",
    );
    refused(
        &dpdk("rx_desc = 10"),
        "dataplane.dpdk.rx_desc",
        "10 is out of range 64..=16384",
    );
    refused(
        &dpdk("tx_desc = 20000"),
        "dataplane.dpdk.tx_desc",
        "20000 is out of range 64..=16384",
    );
    refused(
        &dpdk("link_wait_ms = 70000"),
        "dataplane.dpdk.link_wait_ms",
        "out of range 0..=60000",
    );
    refused(
        &dpdk("steer_ring = 1"),
        "dataplane.dpdk.steer_ring",
        "1 is out of range",
    );
    // Two workers hold 2 x 2 x (1024 + 1024) descriptors and more at once
    // (checked for the DPDK backend only).
    let on_dpdk = |kv: &str| dpdk(kv).replacen("[dataplane]\n", "[dataplane]\nbackend = \"dpdk\"\n", 1);
    let e = refused(
        &on_dpdk("mbufs = 4095"),
        "dataplane.dpdk.mbufs",
        "4095 is fewer than needed",
    );
    assert!(e.reason.contains("2 worker(s) can hold 14080 mbufs"), "{e}");
    assert!(e.reason.contains("leave it out (0)"), "{e}");
    parse(&dpdk("mbufs = 4095")).expect("not the DPDK backend: its mbufs do not matter");
    refused(&dpdk("eal_args = \"--no-huge\""), "dataplane.dpdk.eal_args", "");
}

#[test]
fn burst_zero_and_small_tables() {
    refused(
        &edit("burst = 32", "burst = 0"),
        "dataplane.burst",
        "0 is out of range 1..=512",
    );
    refused(
        &edit("burst = 32", "burst = 32\nflow_table_size = 10"),
        "dataplane.flow_table_size",
        "10 is out of range 1024..=16777216",
    );
}

#[test]
fn acl_host_bits() {
    refused(
        &edit("\"2001:db8:bad::/48\"", "\"2001:db8:bad::1/48\""),
        "acl.deny[1]",
        "host bits set (did you mean 2001:db8:bad::/48?)",
    );
}

#[test]
fn acl_prefix_in_both_lists() {
    refused(
        &edit("\"198.51.100.0/24\",", "\"192.0.2.0/24\","),
        "acl.deny[0]",
        "192.0.2.0/24 is also in acl.allow[0]",
    );
}

#[test]
fn bad_tcp_fingerprint_names_its_field() {
    refused(
        &edit("\"4:64:0:-:512,-::\"", "\"4:sixty:0:-:512,-::\""),
        "fingerprints.deny_tcp[0]",
        "field `ittl`",
    );
}

#[test]
fn bad_udp_fingerprint_names_its_field() {
    refused(
        &edit("deny_tcp", "deny_udp = [\"udp:*:*:19:*\", \"udp:*:*:*:xyz\"]\ndeny_tcp"),
        "fingerprints.deny_udp[1]",
        "field `phash`",
    );
}

#[test]
fn unknown_key_is_named() {
    let s = edit("burst = 32", "burst = 32\nwrokers = 4");
    let e = refused(&s, "dataplane.wrokers", "unknown field `wrokers`");
    assert!(
        e.file.starts_with(&format!("t.toml:{}:", line_of(&s, "wrokers"))),
        "{e}"
    );
}

#[test]
fn unknown_table_is_named() {
    refused(&format!("{BASE}\n[extra]\nx = 1\n"), "extra", "unknown field `extra`");
}

#[test]
fn unknown_key_in_nested_table() {
    let s = edit("mask = \"ffffffff\"", "mask = \"ffffffff\"\nmatch = \"x\"");
    refused(&s, "services[0].payload_rules[0].match", "unknown field `match`");
}

#[test]
fn type_error_names_key_and_line() {
    let s = edit("workers = 2", "workers = \"two\"");
    let e = refused(&s, "dataplane.workers", "invalid type: string \"two\", expected u32");
    assert_eq!(e.file, format!("t.toml:{}:11", line_of(&s, "workers")));
}

#[test]
fn missing_field_names_the_table() {
    refused(
        &edit("vip = \"203.0.113.10\"\n", ""),
        "services[0]",
        "missing field `vip`",
    );
}

#[test]
fn bad_syn_auth_and_fragments() {
    refused(
        &edit("origin = \"web\"", "origin = \"web\"\nsyn_auth = \"magic\""),
        "services[0].syn_auth",
        "unknown syn_auth `magic`",
    );
    refused(
        &edit("burst = 32", "burst = 32\nfragments = \"maybe\""),
        "dataplane.fragments",
        "unknown fragment policy `maybe`",
    );
    refused(
        &edit("burst = 32", "burst = 32\nbackend = \"netmap\""),
        "dataplane.backend",
        "unknown variant `netmap`",
    );
}

#[test]
fn bad_names() {
    refused(
        &edit("name = \"t\"", "name = \"my node\""),
        "node.name",
        "names are 1 to 63",
    );
    let s = format!("{BASE}{}", SECOND_SERVICE.replace("\"api\"", "\"\""));
    refused(&s, "services[1].name", "names are 1 to 63");
}

#[test]
fn empty_allow_and_tcp_source_ports() {
    refused(
        &edit("allow = [\"tcp/80\", \"udp/7777\", \"icmp\"]", "allow = []"),
        "services[0].allow",
        "empty",
    );
    refused(
        &edit(
            "origin = \"web\"",
            "origin = \"web\"\nallow_src_ports = [\"udp/53\", \"tcp/53\"]",
        ),
        "services[0].allow_src_ports[1]",
        "UDP",
    );
}

#[test]
fn bad_listen_address() {
    refused(
        &format!("{BASE}\n[mgmt]\nlisten = \"localhost\"\n"),
        "mgmt.listen",
        "socket address",
    );
}

#[test]
fn negative_limit() {
    let s = format!("{BASE}{SECOND_SERVICE}[services.limits]\nsrc_pps = -1\n");
    refused(&s, "services[1].limits.src_pps", "expected u32");
}

#[test]
fn syntax_error_names_key_and_line() {
    let s = edit("burst = 32", "burst = 32 32");
    let e = refused(&s, "dataplane.burst", "");
    assert!(
        e.file.starts_with(&format!("t.toml:{}:", line_of(&s, "burst = 32 32"))),
        "{e}"
    );
    // Inside the second [[services]] element's payload rules.
    let s = format!("{BASE}{SECOND_SERVICE}[[services.payload_rules]]\nport = \"udp/1\nvalue = \"00\"\n");
    let e = parse(&s).unwrap_err();
    assert_eq!(e.key, "services[1].payload_rules[0].port", "{e}");
}

#[test]
fn config_file_missing() {
    let e = Config::load(Path::new("/nonexistent-dir/moat.toml")).unwrap_err();
    assert_eq!(e.to_string(), "/nonexistent-dir/moat.toml: no such file");
}

#[test]
fn multi_line_toml_messages_become_one_line() {
    let e = parse("[node\nname = \"x\"\n").unwrap_err();
    assert_eq!(e.file, "t.toml:1:6");
    assert!(
        !e.reason.contains('\n') && e.reason.contains("invalid table header"),
        "{e}"
    );
}

/// BASE with an IPv6 address on the outside port.
fn with_ip6(ip6: &str) -> String {
    edit(
        "ip = \"10.10.0.1/24\"",
        &format!("ip = \"10.10.0.1/24\"\nip6 = \"{ip6}\""),
    )
}

#[test]
fn ip6_and_link_local_are_own_addresses() {
    let cfg = parse(&with_ip6("2001:db8:10::1/64")).unwrap();
    assert_eq!(cfg.outside.ip6.unwrap().to_string(), "2001:db8:10::1/64");
    let p = cfg.policy().unwrap();
    let mac = [2, 0, 0, 0, 0, 1];
    assert_eq!(p.own_mac(ip("10.10.0.1")), Some(mac));
    assert_eq!(p.own_mac(ip("2001:db8:10::1")), Some(mac));
    // Modified EUI-64 of 02:00:00:00:00:01 (RFC 4291 Appendix A): the
    // universal/local bit flipped, ff:fe in the middle.
    assert_eq!(p.own_mac(ip("fe80::ff:fe00:1")), Some(mac));
    // The inside port has no IPv6: no link-local address answered there.
    assert_eq!(p.own_mac(ip("fe80::ff:fe00:2")), None);
    assert_eq!(p.own_addrs.len(), 4);
    // Without ip6 no port speaks IPv6.
    assert!(parse(BASE)
        .unwrap()
        .policy()
        .unwrap()
        .own_addrs
        .iter()
        .all(|a| a.ip.is_ipv4()));
    // Written back and read again.
    let again = Config::from_toml_str(&cfg.to_toml_string(), "again.toml", Path::new("/")).unwrap();
    assert_eq!(again.outside, cfg.outside);
}

#[test]
fn link_local_comes_from_the_real_mac() {
    let cfg = parse(&with_ip6("2001:db8:10::1/64")).unwrap();
    let real = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let plan = mgmt::node::plan(&cfg, [Some(real), None], false, false).unwrap();
    let p = &plan.policy;
    assert_eq!(p.own_mac(ip("fe80::5054:ff:fe12:3456")), Some(real));
    assert_eq!(p.own_mac(ip("2001:db8:10::1")), Some(real));
    assert_eq!(p.own_mac(ip("fe80::ff:fe00:1")), None, "not the default MAC's");
}

#[test]
fn ip6_refusals() {
    refused(&with_ip6("10.10.1.1/24"), "ports[0].ip6", "ip6 takes an IPv6 address");
    refused(&with_ip6("ff02::1/64"), "ports[0].ip6", "not a unicast address");
    refused(&with_ip6("2001:db8:10::1"), "ports[0].ip6", "missing /prefix");
    let both = with_ip6("2001:db8:10::1/64").replacen(
        "ip = \"192.168.77.1/24\"",
        "ip = \"192.168.77.1/24\"\nip6 = \"2001:db8:10::1/64\"",
        1,
    );
    refused(&both, "ports[1].ip6", "same address as ports[0].ip6");
    let vip = with_ip6("2001:db8:10::1/64").replacen("vip = \"203.0.113.10\"", "vip = \"2001:db8:10::1\"", 1);
    refused(&vip, "services[0].vip", "is the address of port \"outside\"");
    // The inside port may have one too.
    let inside = edit(
        "ip = \"192.168.77.1/24\"",
        "ip = \"192.168.77.1/24\"\nip6 = \"2001:db8:77::1/64\"",
    );
    let p = parse(&inside).unwrap().policy().unwrap();
    assert_eq!(p.own_mac(ip("2001:db8:77::1")), Some([2, 0, 0, 0, 0, 2]));
    assert_eq!(p.own_mac(ip("fe80::ff:fe00:2")), Some([2, 0, 0, 0, 0, 2]));
}

#[test]
fn detection_alerts_and_sampling_defaults_and_example() {
    let cfg = parse(BASE).unwrap();
    let d = &cfg.detection;
    assert!(d.enabled);
    assert_eq!((d.start_after_secs, d.end_after_secs), (3, 10));
    assert_eq!((d.max_reports, d.max_report_age_days), (1000, 90));
    assert_eq!(cfg.mgmt.sample_every, 64);
    assert!(cfg.mgmt.webhooks.is_empty());
    let cfg = Config::load(&examples().join("moat.toml")).unwrap();
    let web = &cfg.services[0];
    let t = web.detection.or(&cfg.detection.thresholds());
    assert_eq!(t.threshold_syn_pps, Some(20000));
    assert_eq!(t.threshold_pps, Some(0), "the default");
    assert_eq!(web.on_attack.syn_auth_mode(), Some(SynAuth::ChallengeAck));
    assert!(web.on_attack.activate_signatures);
    let h = &cfg.mgmt.webhooks[0];
    assert_eq!(h.url, "http://127.0.0.1:9000/moat");
    assert_eq!(h.events.len(), 3);
    assert_eq!((h.timeout_ms, h.retries), (2000, 4));
}

#[test]
fn bad_detection_alerts_and_sampling() {
    let hook = |body: &str| format!("{BASE}\n[[mgmt.webhooks]]\n{body}\n");
    refused(
        &hook("url = \"https://u:p@alerts.example/x\""),
        "mgmt.webhooks[0].url",
        "credentials",
    );
    refused(&hook("url = \"ftp://x/\""), "mgmt.webhooks[0].url", "http://");
    refused(
        &hook("url = \"http://x/\"\nevents = []"),
        "mgmt.webhooks[0].events",
        "empty",
    );
    refused(
        &hook("url = \"http://x/\"\nevents = [\"attack_begin\"]"),
        "mgmt.webhooks[0].events[0]",
        "attack_start",
    );
    refused(
        &hook("url = \"http://x/\"\ntimeout_ms = 0"),
        "mgmt.webhooks[0].timeout_ms",
        "out of range",
    );
    refused(
        &format!("{BASE}\n[detection]\nstart_after_secs = 0\n"),
        "detection.start_after_secs",
        "out of range 1..=3600",
    );
    refused(
        &format!("{BASE}\n[detection]\nthreshold_mbps = 99999999\n"),
        "detection.threshold_mbps",
        "out of range",
    );
    refused(
        &format!("{BASE}\n[detection]\nthreshold_ppps = 1\n"),
        "detection.threshold_ppps",
        "unknown field",
    );
    refused(
        &format!("{BASE}{SECOND_SERVICE}[services.on_attack]\nsyn_auth = \"off\"\n"),
        "services[1].on_attack.syn_auth",
        "challenge-ack",
    );
    refused(
        &format!("{BASE}{SECOND_SERVICE}[services.detection]\nthreshold_flows = 2199023255553\n"),
        "services[1].detection.threshold_flows",
        "out of range",
    );
    refused(
        &edit(
            "burst = 32",
            "burst = 32\nbackend = \"memory\"\n[dataplane.memory]\nattack_after_secs = 5\nattack_mix = \"nope\"",
        ),
        "dataplane.memory.attack_mix",
        "unknown profile",
    );
}

/// Issue 10, item 1: the DPDK mbuf check ran whatever the backend, so
/// every node with more than two workers was refused.
#[test]
fn any_worker_count_on_every_backend() {
    for backend in ["af_packet", "memory", "dpdk"] {
        for workers in [1, 2, 3, 4, 16, 64, 256] {
            let mut s = edit("workers = 2", &format!("backend = \"{backend}\"\nworkers = {workers}"));
            if backend == "dpdk" && workers == 256 {
                // 256 x 255 steering rings of 1024 frames would need more
                // than a pool holds: the error says what to lower.
                refused(&s, "dataplane.dpdk.mbufs", "lower steer_ring");
                s.push_str("\n[dataplane.dpdk]\nsteer_ring = 64\n");
            }
            let cfg = parse(&s).unwrap_or_else(|e| panic!("{backend}, {workers} workers: {e}"));
            assert_eq!(cfg.dataplane.workers, workers);
            if backend == "dpdk" {
                // The default pool (mbufs = 0) is sized for the workers.
                let o = cfg.dataplane.dpdk_options("a".into(), "b".into());
                assert!(u64::from(o.mbufs) >= o.mbufs_needed(), "{workers}: {}", o.mbufs);
                assert_eq!(o.validate(), Ok(()));
            }
        }
    }
    // An explicit pool too small for the workers: the error says what to do.
    let s = format!(
        "{}\n[dataplane.dpdk]\nmbufs = 16383\n",
        edit("workers = 2", "backend = \"dpdk\"\nworkers = 3")
    );
    let e = refused(&s, "dataplane.dpdk.mbufs", "16383 is fewer than needed: 3 worker(s)");
    assert!(e.reason.contains("leave it out (0) to size the pool"), "{e}");
    refused(
        &edit("workers = 2", "workers = 257"),
        "dataplane.workers",
        "257 is out of range 1..=256",
    );
}

/// Issue 10, item 10: a cores list with a core twice, or fewer cores than
/// workers, was accepted.
#[test]
fn cores_are_one_per_worker() {
    refused(
        &edit("workers = 2", "workers = 2\ncores = [0, 0]"),
        "dataplane.cores[1]",
        "core 0 is listed twice (also dataplane.cores[0])",
    );
    refused(
        &edit("workers = 2", "workers = 2\ncores = [0]"),
        "dataplane.cores",
        "1 core(s) for 2 workers",
    );
    parse(&edit("workers = 2", "workers = 1\ncores = [0]")).unwrap();
}

/// Issue 10, item 6: values that passed validation and then aborted or grew
/// memory without bound at start.
#[test]
fn every_size_and_rate_is_bounded() {
    let cases = [
        (
            "flow_table_size = 67108864",
            "dataplane.flow_table_size",
            "out of range 1024..=16777216",
        ),
        (
            "source_table_size = 33554432",
            "dataplane.source_table_size",
            "out of range",
        ),
        (
            "global_pps = 100000000000",
            "dataplane.global_pps",
            "out of range 0..=10000000000",
        ),
        (
            "icmp_too_big_pps = 10000000",
            "dataplane.icmp_too_big_pps",
            "out of range",
        ),
        ("idle_spins = 4000000000", "dataplane.idle_spins", "out of range"),
    ];
    for (kv, key, why) in cases {
        refused(&edit("burst = 32", &format!("burst = 32\n{kv}")), key, why);
    }
    let section = |sec: &str, kv: &str| format!("{BASE}\n[dataplane.{sec}]\n{kv}\n");
    refused(
        &section("memory", "pps = 1000000000"),
        "dataplane.memory.pps",
        "1000000000 is out of range 0..=1000000",
    );
    refused(
        &section("memory", "attack_after_secs = 4000000000"),
        "dataplane.memory.attack_after_secs",
        "out of range",
    );
    refused(
        &section("af_packet", "block_size = 67108864\nblock_count = 4096"),
        "dataplane.af_packet.block_count",
        "a ring is at most 4 GiB",
    );
    refused(
        &edit("name = \"t\"", "name = \"t\"\ncookie_rotate_secs = 4000000000"),
        "node.cookie_rotate_secs",
        "out of range",
    );
    parse(&section("memory", "pps = 1000000")).unwrap();
}

/// Issue 10, item 6: a secret file that is a device was read without end
/// (`/dev/zero`) and a FIFO blocked `moat check` for ever.
#[test]
fn secret_files_must_be_small_regular_files() {
    for dev in ["/dev/zero", "/dev/urandom"] {
        let e = refused(
            &edit("name = \"t\"", &format!("name = \"t\"\ncookie_secret_file = \"{dev}\"")),
            "node.cookie_secret_file",
            "not a regular file (a character device)",
        );
        assert!(e.reason.contains(dev), "{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.secret");
    std::fs::write(&big, vec![b'k'; 64 * 1024 + 1]).unwrap();
    refused(
        &edit("name = \"t\"", &format!("name = \"t\"\ncookie_secret_file = {big:?}")),
        "node.cookie_secret_file",
        "larger than 64 KiB",
    );
    let fifo = dir.path().join("secret.fifo");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        refused(
            &edit("name = \"t\"", &format!("name = \"t\"\ncookie_secret_file = {fifo:?}")),
            "node.cookie_secret_file",
            "not a regular file (a FIFO)",
        );
    } else {
        eprintln!("skipped the FIFO case: no mkfifo");
    }
    // The config file itself is read with a cap too.
    let e = Config::load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(e.reason, "larger than 16384 KiB");
}

/// `Config::startup_gates`: what `run` refuses about a valid config on this
/// machine (see also `mgmt/tests/cli.rs`, `check_refuses_what_run_refuses`).
#[test]
fn startup_gates_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let load = |extra: &str| {
        let text = format!("{BASE}\n{extra}").replace(
            "name = \"t\"",
            &format!("name = \"t\"\nstate_dir = {:?}", dir.path().join("state")),
        );
        Config::from_toml_str(&text, "t.toml", dir.path()).unwrap()
    };
    let gates = load("").startup_gates(None).unwrap();
    assert!(gates.memory.total() > 0 && gates.memory.workers == 2);
    assert!(!dir.path().join("state").exists(), "the gates create nothing");
    let e = load("[mgmt]\nlisten = \"0.0.0.0:9180\"\n")
        .startup_gates(None)
        .unwrap_err();
    assert_eq!(e.key, "mgmt.listen", "{e}");
    assert!(e.file.starts_with("t.toml"), "{e}");
    load("[mgmt]\nlisten = \"0.0.0.0:9180\"\n")
        .startup_gates(Some("0123456789abcdef"))
        .unwrap();
    let e = load("[mgmt]\nlisten = \"0.0.0.0:9180\"\n")
        .startup_gates(Some("short"))
        .unwrap_err();
    assert!(
        e.reason.contains("$MOAT_API_TOKEN: the API token has 5 characters"),
        "{e}"
    );
    let e = load("[mgmt]\nenabled = true\ntoken_file = \"/dev/zero\"\n")
        .startup_gates(None)
        .unwrap_err();
    assert_eq!(e.key, "mgmt.token_file");
    assert!(e.reason.contains("/dev/zero: not a regular file"), "{e}");
    load("[mgmt]\nenabled = false\ntoken_file = \"/dev/zero\"\n")
        .startup_gates(None)
        .unwrap();
    let mut huge = load("");
    huge.dataplane.workers = 256;
    huge.dataplane.flow_table_size = 1 << 24;
    huge.dataplane.verified_table_size = 1 << 24;
    huge.dataplane.source_table_size = 1 << 24;
    let e = huge.startup_gates(None).unwrap_err();
    assert_eq!(e.key, "dataplane", "{e}");
    assert!(
        e.reason.contains("x 256 worker(s)") && e.reason.contains("available"),
        "{e}"
    );
}

const BGP: &str = r#"
[bgp]
bird_socket = "/run/bird/bird.ctl"
protocol = "moat_vips"
liveness_iface = "moat0"
hold_down_secs = 5
drain_secs = 10
"#;

#[test]
fn bgp_section_loads_with_defaults() {
    assert_eq!(parse(BASE).unwrap().bgp, None, "no [bgp]: nothing announced");
    let b = parse(&format!("{BASE}{BGP}")).unwrap().bgp.expect("[bgp]");
    assert_eq!(b.protocol, "moat_vips");
    assert_eq!(b.liveness_iface.as_deref(), Some("moat0"));
    assert_eq!((b.hold_down_secs, b.drain_secs), (5, 10));
    let b = parse(&format!("{BASE}\n[bgp]\nprotocol = \"vips\"\n"))
        .unwrap()
        .bgp
        .expect("[bgp]");
    assert_eq!(b.bird_socket, PathBuf::from("/run/bird/bird.ctl"));
    assert_eq!(b.liveness_iface, None);
    assert_eq!((b.hold_down_secs, b.drain_secs), (5, 10));
    // Written back and read again: the same.
    let cfg = parse(&format!("{BASE}{BGP}")).unwrap();
    assert_eq!(parse(&cfg.to_toml_string()).unwrap().bgp, cfg.bgp);
}

#[test]
fn bgp_refusals_name_the_key() {
    let with = |from: &str, to: &str| format!("{BASE}{}", BGP.replacen(from, to, 1));
    for bad in [
        "\"\"",
        "\"1vips\"",
        "\"moat-vips\"",
        "\"moat_vips; disable all\"",
        "\"a\\nb\"",
    ] {
        refused(
            &with("\"moat_vips\"", bad),
            "bgp.protocol",
            "a BIRD protocol name is 1 to 64 letters, digits or `_`",
        );
    }
    for bad in ["\"\"", "\"moat/0\"", "\"moat 0\"", "\"a-very-long-name0\"", "\"..\""] {
        refused(
            &with("\"moat0\"", bad),
            "bgp.liveness_iface",
            "an interface name is 1 to 15",
        );
    }
    refused(
        &with("hold_down_secs = 5", "hold_down_secs = 86401"),
        "bgp.hold_down_secs",
        "out of range 0..=86400",
    );
    refused(
        &with("drain_secs = 10", "drain_secs = 100000"),
        "bgp.drain_secs",
        "out of range",
    );
    refused(&with("\"/run/bird/bird.ctl\"", "\"\""), "bgp.bird_socket", "empty path");
    let e = parse(&format!("{BASE}\n[bgp]\nbird_socket = \"/x\"\n")).unwrap_err();
    assert!(e.to_string().contains("protocol"), "{e}");
    let e = parse(&with("drain_secs = 10", "drain_secs = 10\nholddown = 3")).unwrap_err();
    assert!(e.to_string().contains("holddown"), "unknown keys are refused: {e}");
}

/// BASE with a `[services.blacklist]` table of `body` on service "web".
fn with_blacklist(body: &str) -> String {
    edit(
        "allow = [\"tcp/80\", \"udp/7777\", \"icmp\"]\n",
        &format!("allow = [\"tcp/80\", \"udp/7777\", \"icmp\"]\n[services.blacklist]\n{body}\n"),
    )
}

#[test]
fn blacklist_defaults_reach_the_policy_and_bad_values_are_refused() {
    use classifier::time::SECOND;
    let c = parse(&with_blacklist("")).unwrap();
    let rule = c.policy().unwrap().services[0].blacklist.expect("on");
    assert_eq!((rule.violations, rule.window, rule.ban), (5, 60 * SECOND, 300 * SECOND));
    let c = parse(&with_blacklist("violations = 2\nwindow_secs = 10\nban_secs = 1")).unwrap();
    let rule = c.policy().unwrap().services[0].blacklist.unwrap();
    assert_eq!((rule.violations, rule.window, rule.ban), (2, 10 * SECOND, SECOND));
    assert_eq!(
        parse(BASE).unwrap().policy().unwrap().services[0].blacklist,
        None,
        "absent: off"
    );
    let k = "services[0].blacklist";
    refused(
        &with_blacklist("violations = 0"),
        &format!("{k}.violations"),
        "0 is out of range 1..=1000000",
    );
    refused(
        &with_blacklist("window_secs = 0"),
        &format!("{k}.window_secs"),
        "out of range 1..=86400",
    );
    refused(
        &with_blacklist("ban_secs = 0"),
        &format!("{k}.ban_secs"),
        "out of range 1..=2592000",
    );
    refused(
        &with_blacklist("ban_secs = 2592001"),
        &format!("{k}.ban_secs"),
        "2592001 is out of range",
    );
    refused(
        &with_blacklist("violations = 4000000000"),
        &format!("{k}.violations"),
        "out of range",
    );
    let e = parse(&with_blacklist("violatons = 3")).expect_err("unknown key");
    assert!(e.to_string().contains("violatons"), "{e}");
    let e = parse(&with_blacklist("ban_secs = -1")).expect_err("negative");
    assert!(e.to_string().contains("ban_secs"), "{e}");
    // The tables' sizes.
    refused(
        &edit("burst = 32", "burst = 32\nban_table_size = 4"),
        "dataplane.ban_table_size",
        "out of range 16..=",
    );
    refused(
        &edit("burst = 32", "burst = 32\nviolation_table_size = 0"),
        "dataplane.violation_table_size",
        "out of range 16..=",
    );
}
