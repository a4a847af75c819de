//! `moat run` on the DPDK backend over virtual devices (EAL with
//! `--no-huge --no-pci --no-shconf` and a file prefix of its own per run;
//! every run is its own process, since EAL initialises once per process):
//!
//! - a `net_null` smoke run: traffic flows, counters and device counters
//!   move, SIGTERM stops it cleanly;
//! - the golden test through `net_pcap`: a `moat gen` mix in, the clean
//!   (GRE) and reply outputs equal `moat scrub`'s for the same input, frame
//!   for frame and in order. `net_pcap` stamps each received frame with its
//!   capture time (microseconds; `moat gen` writes whole microseconds), and
//!   the worker uses it as its clock, as the pcap backend does; the output
//!   files' own timestamps are `net_pcap`'s send times, so they are not
//!   compared.
//!
//! Root only (EAL); skips with a message otherwise, fails instead under
//! `MOAT_E2E=1`. Built with the `dpdk` feature only.
#![cfg(feature = "dpdk")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn examples(name: &str) -> PathBuf {
    common::root().join("examples").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .output()
        .expect("moat runs")
}

/// Why EAL cannot run here, if it cannot.
fn missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    (euid != Some("0")).then(|| "not root (DPDK's EAL needs root here)".to_string())
}

/// `examples/offline.toml` on the DPDK backend: outside and inside ports
/// `net_{kind}0` and `net_{kind}1`, EAL arguments for virtual devices
/// `vdevs`, the cluster secret by absolute path.
fn config(dir: &Path, kind: &str, vdevs: &[String], extra: &str) -> PathBuf {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("moat-test-{kind}-{}-{run}", std::process::id());
    let mut eal: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0",
        "--file-prefix",
        &prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for v in vdevs {
        eal.push("--vdev".into());
        eal.push(v.clone());
    }
    let text = std::fs::read_to_string(examples("offline.toml"))
        .unwrap()
        .replace("backend = \"pcap\"", "backend = \"dpdk\"")
        .replace("iface = \"outside\"", &format!("iface = \"net_{kind}0\""))
        .replace("iface = \"inside\"", &format!("iface = \"net_{kind}1\""))
        .replace(
            "cookie_secret_file = \"cluster.secret\"",
            &format!("cookie_secret_file = {:?}", examples("cluster.secret")),
        );
    assert!(text.contains("backend = \"dpdk\"") && text.contains(&format!("net_{kind}1")));
    let path = dir.join(format!("{kind}.toml"));
    std::fs::write(
        &path,
        // The API on a free port: the tests of this file run in parallel.
        format!(
            "{text}\n[mgmt]\nlisten = \"127.0.0.1:0\"\n\n[dataplane.dpdk]\neal_args = {eal:?}\nmbufs = 8191\nlink_wait_ms = 500\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Starts `moat run` and waits until its stats file satisfies `ready`
/// (or `limit` passes), then sends SIGTERM and returns its output.
fn run_until(cfg: &Path, stats: &Path, limit: Duration, ready: impl Fn(&serde_json::Value) -> bool) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["run", "--config", s(cfg), "--stats", s(stats)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        let Ok(text) = std::fs::read_to_string(stats) else {
            continue;
        };
        if serde_json::from_str(&text).is_ok_and(|v| ready(&v)) {
            break;
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    child.wait_with_output().unwrap()
}

/// `net_null` ports: `moat run` for about two seconds, packets counted by
/// the workers and by the devices, a clean stop on SIGTERM.
#[test]
fn net_null_smoke_run() {
    if !common::can_run("DPDK net_null smoke test", missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "null", &["net_null0".into(), "net_null1".into()], "");
    let stats = dir.path().join("stats.json");
    let t0 = Instant::now();
    let o = run_until(&cfg, &stats, Duration::from_secs(30), |v| {
        v["uptime_secs"].as_f64().is_some_and(|u| u >= 2.0)
    });
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{err}\n{out}");
    assert!(t0.elapsed() < Duration::from_secs(30), "{err}");
    assert!(err.contains("running 1 worker(s) on the dpdk backend"), "{err}");
    assert!(
        err.contains("dpdk port outside = net_null0") && err.contains("net_null"),
        "{err}"
    );
    let st = read_json(&stats);
    let rx = st["rx_packets"].as_u64().unwrap();
    let secs = st["uptime_secs"].as_f64().unwrap();
    assert!(rx > 0, "{st}");
    let dev = &st["ports"]["outside"]["device"];
    assert!(
        dev["ipackets"].as_u64().unwrap() >= st["ports"]["outside"]["rx_packets"].as_u64().unwrap(),
        "{st}"
    );
    assert_eq!(dev["rx_multiseg"], 0, "{st}");
    // net_null frames are 64 zero bytes: not IP, dropped and counted.
    assert!(st["drops_by_reason"]["non_ip"].as_u64().unwrap() > 0, "{st}");
    assert!(
        out.contains(&format!("received {rx} packets")),
        "final file and printout agree\n{out}"
    );
    eprintln!(
        "net_null smoke: {rx} frames in {secs:.1} s = {:.2} Mpps over both ports (one worker, shared CI-size VM)",
        rx as f64 / secs / 1e6
    );
}

/// The golden test: `moat run` on `net_pcap` ports writes the same clean
/// and reply frames as `moat scrub` on the same capture.
#[test]
fn net_pcap_run_matches_scrub_frame_for_frame() {
    if !common::can_run("DPDK net_pcap golden test", missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mix = d.join("mix.pcap");
    let secret = examples("cluster.secret");
    let o = moat(&[
        "gen",
        "--profile",
        "mix",
        "--count",
        "30000",
        "--seed",
        "3",
        "--secret-file",
        s(&secret),
        "--out",
        s(&mix),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (clean, replies) = (d.join("clean.pcap"), d.join("r.pcap"));
    let o = moat(&[
        "scrub",
        "--config",
        s(&examples("offline.toml")),
        "--in",
        s(&mix),
        "--out",
        s(&clean),
        "--replies",
        s(&replies),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The inside port only transmits: its RX is a capture with no frames.
    let empty = d.join("empty.pcap");
    {
        let f = std::fs::File::create(&empty).unwrap();
        pcap_file::pcap::PcapWriter::new(f).unwrap();
    }
    let (run_clean, run_replies, stats) = (d.join("run-clean.pcap"), d.join("run-r.pcap"), d.join("stats.json"));
    let vdevs = [
        format!("net_pcap0,rx_pcap={},tx_pcap={}", s(&mix), s(&run_replies)),
        format!("net_pcap1,rx_pcap={},tx_pcap={}", s(&empty), s(&run_clean)),
    ];
    let cfg = config(d, "pcap", &vdevs, "");
    // Live ports never end: stop once every frame was received and the
    // counters settled (the file is rewritten every second).
    let o = run_until(&cfg, &stats, Duration::from_secs(60), |v| v["rx_packets"] == 30000);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let st = read_json(&stats);
    assert_eq!(st["rx_packets"], 30000, "{st}");
    assert_eq!(st["ports"]["outside"]["device"]["ipackets"], 30000, "{st}");

    let frames = |p: &Path| {
        let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(p).unwrap()).unwrap();
        let mut v = Vec::new();
        while let Some(pkt) = r.next_packet() {
            v.push(pkt.unwrap().data.into_owned());
        }
        v
    };
    let (a, b) = (frames(&clean), frames(&run_clean));
    assert!(a.len() > 1000, "{} clean frames", a.len());
    assert_eq!(a.len(), b.len(), "clean frame counts");
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(first.is_none(), "clean frames differ first at {first:?}");
    let (a, b) = (frames(&replies), frames(&run_replies));
    assert!(a.len() > 100, "{} replies", a.len());
    assert_eq!(a.len(), b.len(), "reply counts");
    assert!(a == b, "replies differ");
}

/// A port name that is no DPDK device is refused at start, naming it.
#[test]
fn unknown_device_is_refused_by_name() {
    if !common::can_run("DPDK unknown-device test", missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "null", &["net_null0".into()], "");
    let o = moat(&["run", "--config", s(&cfg), "--duration", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("port net_null1: no DPDK device of that name"), "{err}");
}
