//! Moat's GRE output dissected by an independent implementation: Wireshark's
//! `tshark` reads the clean capture of `moat scrub` and every frame is checked
//! field by field — outer Ethernet and IPv4 (addresses, protocol 47, DF, TTL,
//! header checksum), GRE (key, protocol type), and the inner packet (a VIP of
//! the origin's services as destination, IP/TCP/UDP checksums valid).
//!
//! Needs `tshark` (Debian's package): skipped with a message when missing,
//! failed instead when `MOAT_E2E=1` (CI installs it).

mod common;

use std::path::Path;
use std::process::Command;

fn examples(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .display()
        .to_string()
}

fn tshark_available() -> bool {
    common::require_tools("tshark dissection of the GRE output", &["tshark"], "tshark")
}

fn moat(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .output()
        .expect("moat runs");
    assert!(
        o.status.success(),
        "moat {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FIELDS: &[&str] = &[
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.flags.df",
    "ip.ttl",
    "ip.checksum.status",
    "gre.key",
    "gre.proto",
    "ipv6.dst",
    "tcp.checksum.status",
    "udp.checksum.status",
];

#[test]
fn tshark_dissects_moat_gre_output_field_by_field() {
    if !tshark_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (input, clean, report) = (
        dir.path().join("in.pcap"),
        dir.path().join("clean.pcap"),
        dir.path().join("r.json"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let secret = examples("cluster.secret");
    moat(&[
        "gen",
        "--profile",
        "mix",
        "--count",
        "6000",
        "--pps",
        "2000",
        "--seed",
        "9",
        "--secret-file",
        &secret,
        "--out",
        &s(&input),
    ]);
    moat(&[
        "scrub",
        "--config",
        &examples("offline.toml"),
        "--in",
        &s(&input),
        "--out",
        &s(&clean),
        "--report",
        &s(&report),
    ]);
    let passed = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&report).unwrap()).unwrap()
        ["passed_packets"]
        .as_u64()
        .unwrap();
    assert!(passed > 500, "only {passed} packets passed");

    let mut args = vec![
        "-r".to_string(),
        s(&clean),
        "-o".into(),
        "ip.check_checksum:TRUE".into(),
        "-o".into(),
        "tcp.check_checksum:TRUE".into(),
        "-o".into(),
        "udp.check_checksum:TRUE".into(),
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "separator=|".into(),
        "-E".into(),
        "occurrence=a".into(),
        "-E".into(),
        "aggregator=,".into(),
    ];
    for f in FIELDS {
        args.push("-e".into());
        args.push((*f).into());
    }
    let out = Command::new("tshark").args(&args).output().expect("tshark runs");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut frames, mut v4, mut v6, mut tcp, mut udp) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for line in text.lines() {
        frames += 1;
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), FIELDS.len(), "{line}");
        let list = |i: usize| f[i].split(',').filter(|x| !x.is_empty()).collect::<Vec<_>>();
        // Outer Ethernet: inside port -> origin "web" (examples/offline.toml).
        assert_eq!((f[0], f[1]), ("02:00:00:00:00:02", "02:00:00:00:77:02"), "{line}");
        // Outer IPv4: tunnel_src -> tunnel_dst, GRE, DF, TTL 64.
        assert_eq!(list(2)[0], "192.168.77.1", "{line}");
        assert_eq!(list(3)[0], "192.168.77.2", "{line}");
        assert_eq!(list(4)[0], "47", "{line}");
        assert_eq!(list(5)[0], "1", "outer DF: {line}");
        assert_eq!(list(6)[0], "64", "{line}");
        // Every IPv4 header checksum (outer and inner) good (status 1).
        assert!(list(7).iter().all(|c| *c == "1"), "IP checksum: {line}");
        // GRE: key 42, protocol of the inner packet.
        assert_eq!(f[8], "0x0000002a", "{line}");
        match f[9] {
            "0x0800" => {
                v4 += 1;
                assert_eq!(list(3).get(1), Some(&"203.0.113.10"), "inner IPv4 destination: {line}");
            }
            "0x86dd" => {
                v6 += 1;
                assert_eq!(f[10], "2001:db8::10", "inner IPv6 destination: {line}");
            }
            other => panic!("GRE protocol {other}: {line}"),
        }
        if !f[11].is_empty() {
            tcp += 1;
            assert_eq!(f[11], "1", "TCP checksum: {line}");
        }
        if !f[12].is_empty() {
            udp += 1;
            assert_eq!(f[12], "1", "UDP checksum: {line}");
        }
    }
    assert_eq!(frames, passed, "tshark saw as many frames as the report passed");
    assert!(
        v4 > 0 && v6 > 0 && tcp > 0 && udp > 0,
        "v4 {v4} v6 {v6} tcp {tcp} udp {udp}"
    );
}
