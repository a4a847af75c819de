//! The `moat` binary as a user runs it: `gen` piped into `scrub` through
//! files, the report read back, and bad input refused with exit code 2 and a
//! message naming the file and what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The REST API of a `moat run` in a test listens on a free port (tests
/// run in parallel).
const MGMT_ANY_PORT: &str = "[mgmt]\nlisten = \"127.0.0.1:0\"\n";

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .output()
        .expect("moat runs")
}

fn examples(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .display()
        .to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn generate(dir: &Path, count: &str) -> PathBuf {
    let mix = dir.join("mix.pcap");
    let secret = examples("cluster.secret");
    let out = moat(&[
        "gen",
        "--profile",
        "mix",
        "--count",
        count,
        "--seed",
        "3",
        "--secret-file",
        &secret,
        "--out",
        s(&mix),
    ]);
    assert!(
        out.status.success(),
        "gen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    mix
}

#[test]
fn gen_then_scrub_writes_clean_replies_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let mix = generate(dir.path(), "20000");
    let (clean, replies, report) = (
        dir.path().join("clean.pcap"),
        dir.path().join("r.pcap"),
        dir.path().join("report.json"),
    );
    let cfg = examples("offline.toml");
    let out = moat(&[
        "scrub",
        "--config",
        &cfg,
        "--in",
        s(&mix),
        "--out",
        s(&clean),
        "--replies",
        s(&replies),
        "--report",
        s(&report),
    ]);
    assert!(
        out.status.success(),
        "scrub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("20000 packets"), "{stdout}");

    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["rx_packets"], 20000);
    let passed = r["passed_packets"].as_u64().unwrap();
    let dropped = r["dropped_packets"].as_u64().unwrap();
    let replied = r["replies"].as_u64().unwrap();
    assert_eq!(passed + dropped + replied, 20000);
    assert!(passed > 0 && dropped > 0 && replied > 0);
    let reasons = r["drops_by_reason"].as_object().unwrap();
    assert_eq!(reasons.len(), classifier::DropReason::COUNT, "every reason is listed");
    assert_eq!(reasons.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), dropped);
    // `gen --secret-file` and the config's `cookie_secret_file` derive the
    // same key from the same file: the generated clients' answers verify.
    assert!(reasons["challenge_answered"].as_u64().unwrap() > 0, "{reasons:?}");
    assert!(r["top_sources"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(r["top_fingerprints"][0]["fingerprint"].is_string());
    // The outputs are pcaps the reader takes back, with as many frames as
    // the report says.
    let count = |p: &Path| {
        let mut rd = dataplane::pcap::PcapReader::open(p).unwrap();
        let mut n = 0u64;
        while rd.next_frame().unwrap().is_some() {
            n += 1;
        }
        n
    };
    assert_eq!(count(&clean), passed);
    assert_eq!(count(&replies), replied);
}

/// `moat gen --out - | moat scrub --in - --out -`: a real pipe at each end.
#[test]
fn gen_piped_through_scrub() {
    use std::process::Stdio;
    let secret = examples("cluster.secret");
    let mut gen = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args([
            "gen",
            "--profile",
            "mix",
            "--count",
            "5000",
            "--secret-file",
            &secret,
            "--out",
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("gen runs");
    let scrub = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args([
            "scrub",
            "--config",
            &examples("offline.toml"),
            "--in",
            "-",
            "--out",
            "-",
        ])
        .stdin(Stdio::from(gen.stdout.take().unwrap()))
        .output()
        .expect("scrub runs");
    assert!(gen.wait().unwrap().success());
    assert!(scrub.status.success(), "{}", String::from_utf8_lossy(&scrub.stderr));
    // The summary went to stderr; stdout is a pcap of GRE frames.
    assert!(String::from_utf8_lossy(&scrub.stderr).contains("<stdin>: 5000 packets"));
    let mut rd = dataplane::pcap::PcapReader::from_reader("clean", std::io::Cursor::new(scrub.stdout)).unwrap();
    let mut n = 0;
    while let Some(f) = rd.next_frame().unwrap() {
        assert_eq!(u16::from_be_bytes([f.data[12], f.data[13]]), 0x0800);
        assert_eq!(f.data[14 + 9], 47, "outer protocol is GRE");
        n += 1;
    }
    assert!(n > 500, "{n} clean packets");
}

#[test]
fn scrub_refuses_bad_captures_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = examples("offline.toml");
    let out_path = dir.path().join("o.pcap");
    let run = |input: &Path| moat(&["scrub", "--config", &cfg, "--in", s(input), "--out", s(&out_path)]);

    let missing = dir.path().join("missing.pcap");
    let o = run(&missing);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing.pcap") && err.contains("no such file"), "{err}");

    let mix = generate(dir.path(), "300");
    let bytes = std::fs::read(&mix).unwrap();
    let truncated = dir.path().join("truncated.pcap");
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let o = run(&truncated);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("truncated.pcap") && err.contains("truncated"), "{err}");

    let corrupt = dir.path().join("corrupt.pcap");
    std::fs::write(&corrupt, b"this is not a capture file at all").unwrap();
    let o = run(&corrupt);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("corrupt.pcap") && err.contains("not a pcap"), "{err}");
}

#[test]
fn check_and_bad_config() {
    let o = moat(&["check", "--config", &examples("moat.toml")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(": ok ("));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(examples("moat.toml"))
        .unwrap()
        .replace("\"tcp/80\"", "\"tcp/80000\"");
    std::fs::write(&bad, text).unwrap();
    let o = moat(&["check", "--config", s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:") && err.contains("services[0].allow[0]") && err.contains("80000"),
        "{err}"
    );
}

#[test]
fn demo_runs_live_and_prints_figures_every_second() {
    let o = moat(&["demo", "--duration", "2.5", "--pps", "20000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    // Two per-second lines, then the final counters: legitimate traffic
    // re-injected, challenges sent, attack traffic dropped by reason.
    assert!(out.contains("   1s in ") && out.contains("   2s in "), "{out}");
    assert!(out.contains("Mpps/worker ["), "{out}");
    for needle in [
        "passed web:",
        "dropped reflection_port:",
        "dropped tcp_no_flow:",
        "port inside: rx 0 tx ",
    ] {
        assert!(out.contains(needle), "{needle} missing in\n{out}");
    }
    // Challenges leave by the outside port.
    let replies: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("port outside: rx "))
        .and_then(|r| r.split(" tx ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(replies > 0, "{out}");
}

#[test]
fn bench_measures_each_path_and_every_packet_takes_it() {
    let o = moat(&[
        "bench",
        "--seconds",
        "0.3",
        "--templates",
        "256",
        "--table-size",
        "4096",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    for w in ["syn-flood", "ack-flood", "clean"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(w))
            .unwrap_or_else(|| panic!("{w} missing:\n{out}"));
        assert!(line.contains("100.0%"), "{line}");
    }
    assert!(out.contains("peak RSS:"), "{out}");
}

/// `--inspect` (an l7 rule that matches nothing) and `--two-stage`: every
/// packet still takes the clean path, whichever way the burst goes.
#[test]
fn bench_with_inspection_and_each_burst_mode_passes_every_clean_packet() {
    for mode in ["on", "off"] {
        let o = moat(&[
            "bench",
            "--workload",
            "clean",
            "--seconds",
            "0.3",
            "--templates",
            "256",
            "--table-size",
            "4096",
            "--inspect",
            "--two-stage",
            mode,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        let line = out
            .lines()
            .find(|l| l.starts_with("clean"))
            .unwrap_or_else(|| panic!("clean missing:\n{out}"));
        assert!(line.contains("100.0%"), "{line}");
    }
    let o = moat(&["bench", "--two-stage", "sometimes"]);
    assert_eq!(o.status.code(), Some(2), "a bad mode is refused");
}

/// The live runtime on the pcap backend and the offline scrubber are the
/// same pipeline: for one capture they must write the same frames, in the
/// same order, with the same timestamps (the golden test the DPDK backend is
/// held to as well).
#[test]
fn run_on_pcap_backend_matches_scrub_packet_for_packet() {
    let dir = tempfile::tempdir().unwrap();
    let mix = generate(dir.path(), "30000");
    let (clean, replies) = (dir.path().join("clean.pcap"), dir.path().join("r.pcap"));
    let o = moat(&[
        "scrub",
        "--config",
        &examples("offline.toml"),
        "--in",
        s(&mix),
        "--out",
        s(&clean),
        "--replies",
        s(&replies),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(examples("offline.toml")).unwrap();
    let cfg = dir.path().join("run.toml");
    let secret = examples("cluster.secret");
    let text = text.replace(
        "cookie_secret_file = \"cluster.secret\"",
        &format!("cookie_secret_file = {secret:?}"),
    );
    let (run_clean, run_replies, stats) = (
        dir.path().join("run-clean.pcap"),
        dir.path().join("run-r.pcap"),
        dir.path().join("stats.json"),
    );
    std::fs::write(
        &cfg,
        format!(
            "{text}\n[dataplane.pcap]\nrx = {:?}\noutside_tx = {:?}\ninside_tx = {:?}\n{MGMT_ANY_PORT}",
            mix, run_replies, run_clean
        )
        .replace("[dataplane]\nbackend = \"pcap\"", "[dataplane]\nbackend = \"pcap\""),
    )
    .unwrap();
    let o = moat(&["run", "--config", s(&cfg), "--stats", s(&stats)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let frames = |p: &Path| {
        let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(p).unwrap()).unwrap();
        let mut v = Vec::new();
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            v.push((pkt.timestamp, pkt.data.into_owned()));
        }
        v
    };
    let (a, b) = (frames(&clean), frames(&run_clean));
    assert!(a.len() > 1000, "{} clean frames", a.len());
    assert_eq!(a.len(), b.len(), "clean frame counts");
    assert!(a == b, "clean frames differ");
    let (a, b) = (frames(&replies), frames(&run_replies));
    assert!(a.len() > 100, "{} replies", a.len());
    assert!(a == b, "replies differ ({} vs {})", a.len(), b.len());
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(st["rx_packets"], 30000, "{st}");
}

/// `moat run` on the memory backend until SIGTERM: the workers stop
/// cleanly, the final counters are printed and written, exit status 0.
#[test]
fn run_stops_cleanly_on_sigterm_with_final_counters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mem.toml");
    let stats = dir.path().join("stats.json");
    let text = std::fs::read_to_string(examples("offline.toml"))
        .unwrap()
        .replace("backend = \"pcap\"", "backend = \"memory\"")
        .replace("workers = 1", "workers = 2")
        .replace("cookie_secret_file = \"cluster.secret\"", "");
    std::fs::write(
        &cfg,
        format!("{text}\n[dataplane.memory]\npps = 20000\n{MGMT_ANY_PORT}"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["run", "--config", s(&cfg), "--stats", s(&stats)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Running once the stats file appears (written every second).
    let t = std::time::Instant::now();
    while !stats.exists() && t.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if !stats.exists() {
        let _ = child.kill();
        let o = child.wait_with_output().unwrap();
        panic!("no stats file after 20 s: {}", String::from_utf8_lossy(&o.stderr));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}\n{out}");
    assert!(err.contains("running 2 worker(s) on the memory backend"), "{err}");
    assert!(
        out.contains("received ") && out.contains("port inside: rx 0 tx "),
        "{out}"
    );
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let rx = st["rx_packets"].as_u64().unwrap();
    assert!(rx > 0, "{st}");
    assert!(
        out.contains(&format!("received {rx} packets")),
        "final file and printout agree: {rx}\n{out}"
    );
    assert_eq!(st["workers"].as_array().unwrap().len(), 2);
    assert!(st["passed_by_service"]["web"].as_u64().unwrap() > 0, "{st}");
}

#[test]
fn bench_exports_frames_and_dpdk_configs_for_the_testpmd_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let o = moat(&["bench", "--export-dpdk", s(dir.path()), "--templates", "100"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for w in ["syn-flood", "ack-flood", "clean"] {
        let pcap = dir.path().join(format!("{w}.pcap"));
        let n = count_frames(&pcap);
        // Clean traffic comes in whole flows of 16 segments.
        let want = if w == "clean" { 112 } else { 100 };
        assert_eq!(n, want, "{w}");
        let toml = dir.path().join(format!("{w}.toml"));
        let text = std::fs::read_to_string(&toml).unwrap();
        assert!(text.contains("backend = \"dpdk\""), "{text}");
        assert!(
            text.contains(&format!("rx_pcap={},infinite_rx=1", pcap.display())),
            "{text}"
        );
        // Valid; `check` also passes where the binary has the DPDK backend.
        mgmt::config::Config::load(&toml).unwrap_or_else(|e| panic!("{w}: {e}"));
        let c = moat(&["check", "--config", s(&toml)]);
        if cfg!(feature = "dpdk") {
            assert!(c.status.success(), "{w}: {}", String::from_utf8_lossy(&c.stderr));
        } else {
            refused_with(&c, &["dataplane.backend", "not built into this binary"]);
        }
    }
    assert_eq!(count_frames(&dir.path().join("empty.pcap")), 0);
}

fn count_frames(p: &Path) -> usize {
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(p).unwrap()).unwrap();
    let mut n = 0;
    while let Some(pkt) = r.next_packet() {
        pkt.unwrap();
        n += 1;
    }
    n
}

/// Without the `dpdk` feature, `moat run` refuses a DPDK config naming the
/// feature to build with (and so does `moat check`:
/// `check_refuses_dpdk_without_the_feature`).
#[cfg(not(feature = "dpdk"))]
#[test]
fn run_dpdk_without_the_feature_names_it() {
    let cfg = examples("dpdk-two-port.toml");
    let o = moat(&["run", "--config", &cfg, "--duration", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not built into this binary") && err.contains("--features dpdk"),
        "{err}"
    );
}

/// `offline.toml` on `backend`, with `workers`, its state under `dir`,
/// the API on a free loopback port, plus `extra` at the end.
fn node_config(dir: &Path, backend: &str, workers: u32, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(examples("offline.toml"))
        .unwrap()
        .replace("backend = \"pcap\"", &format!("backend = \"{backend}\""))
        .replace("workers = 1", &format!("workers = {workers}"))
        .replace("cookie_secret_file = \"cluster.secret\"", "")
        .replace("state_dir = \"state\"", &format!("state_dir = {:?}", dir.join("state")));
    let cfg = dir.join(format!("{backend}-{workers}.toml"));
    std::fs::write(&cfg, format!("{text}\n{MGMT_ANY_PORT}{extra}")).unwrap();
    cfg
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that `o` failed with exit code 2, without a panic, with a
/// message containing every one of `needles`.
#[track_caller]
fn refused_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing in: {err}");
    }
}

/// Issue 10, item 1: more than two workers were refused on every backend
/// (a DPDK-only mbuf check), and the demo blamed a missing changes.json.
#[test]
fn more_than_two_workers_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    for backend in ["memory", "af_packet"] {
        for workers in [3, 4, 16, 256] {
            let cfg = node_config(dir.path(), backend, workers, "");
            let o = moat(&["check", "-c", s(&cfg)]);
            assert!(o.status.success(), "{backend} x {workers}: {}", stderr(&o));
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.contains(&format!("{workers} workers")), "{out}");
            assert!(out.contains(&format!("x {workers} worker(s) = ")), "{out}");
        }
    }
    let cfg = node_config(dir.path(), "memory", 4, "\n[dataplane.memory]\npps = 5000\n");
    let o = moat(&["run", "-c", s(&cfg), "--duration", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("running 4 worker(s) on the memory backend"),
        "{}",
        stderr(&o)
    );
    let o = moat(&["demo", "--workers", "3", "--duration", "1", "--pps", "5000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("moat demo: 3 worker(s) on the memory backend"), "{out}");
}

/// Issue 10, items 6 and 10: values that panicked (rc 101), ran with
/// something else than asked, or printed NaN are refused naming the flag.
#[test]
fn bad_flag_values_are_refused_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["demo", "--duration", "nan"], "--duration"),
        (&["demo", "--duration", "inf"], "--duration"),
        (&["demo", "--duration", "1e30"], "--duration"),
        (&["demo", "--duration", "0"], "--duration"),
        (&["run", "-c", "x.toml", "--duration", "1e30"], "--duration"),
        (&["bench", "--seconds", "1e300"], "--seconds"),
        (&["bench", "--seconds", "nan"], "--seconds"),
        (&["demo", "--workers", "0"], "--workers"),
        (&["demo", "--workers", "257"], "--workers"),
        (&["demo", "--pps", "1000000000"], "--pps"),
        (&["bench", "--worker-counts", "0"], "--worker-counts"),
        (&["bench", "--worker-counts", "1,0,2"], "--worker-counts"),
        (&["bench", "--templates", "100000000000"], "--templates"),
        (&["bench", "--table-size", "67108864"], "--table-size"),
        (&["gen", "--out", "x.pcap", "--pps", "1000000000000000000"], "--pps"),
    ];
    for (args, flag) in cases {
        let o = moat(args);
        refused_with(&o, &[flag]);
    }
}

/// Issue 10, item 8: `check` passed configs that `run` refused. Each case
/// is refused by both, naming the key.
#[test]
fn check_refuses_what_run_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("token-dir")).unwrap();
    std::fs::write(d.join("empty.token"), b"\n").unwrap();
    std::fs::write(d.join("state-file"), b"not a folder").unwrap();
    let api = |listen: &str, token: &str| format!("\n[mgmt]\nlisten = \"{listen}\"\n{token}");
    let cases = [
        (api("0.0.0.0:0", ""), "mgmt.listen", "not a loopback address"),
        (
            api("127.0.0.1:0", &format!("token_file = {:?}\n", d.join("missing.token"))),
            "mgmt.token_file",
            "no such file",
        ),
        (
            api("127.0.0.1:0", &format!("token_file = {:?}\n", d.join("empty.token"))),
            "mgmt.token_file",
            "has 0 characters",
        ),
        (
            api("127.0.0.1:0", &format!("token_file = {:?}\n", d.join("token-dir"))),
            "mgmt.token_file",
            "not a regular file (a directory)",
        ),
        (
            api("127.0.0.1:0", "token_file = \"/dev/zero\"\n"),
            "mgmt.token_file",
            "not a regular file",
        ),
    ];
    for (i, (extra, key, why)) in cases.iter().enumerate() {
        let text = std::fs::read_to_string(node_config(d, "memory", 1, ""))
            .unwrap()
            .replace(MGMT_ANY_PORT, extra);
        let cfg = d.join(format!("case{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        for cmd in ["check", "run"] {
            let o = Command::new(env!("CARGO_BIN_EXE_moat"))
                .args([cmd, "-c", s(&cfg), "--duration", "1"][..if cmd == "check" { 3 } else { 5 }].iter())
                .env_remove("MOAT_API_TOKEN")
                .output()
                .unwrap();
            refused_with(&o, &[&format!("case{i}.toml: {key}: "), why]);
        }
    }
    let text = std::fs::read_to_string(node_config(d, "memory", 1, ""))
        .unwrap()
        .replace(
            &format!("{:?}", d.join("state")),
            &format!("{:?}", d.join("state-file")),
        );
    let cfg = d.join("state-file.toml");
    std::fs::write(&cfg, text).unwrap();
    refused_with(
        &moat(&["check", "-c", s(&cfg)]),
        &["node.state_dir: ", "is not a folder"],
    );
    refused_with(
        &moat(&["run", "-c", s(&cfg), "--duration", "1"]),
        &["node.state_dir: ", "is not a folder"],
    );
    // A FIFO as the cookie secret: refused at once, not a hang.
    let fifo = d.join("secret.fifo");
    if Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        let cfg = node_config(d, "memory", 1, "");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("[node]\n", &format!("[node]\ncookie_secret_file = {fifo:?}\n"));
        std::fs::write(&cfg, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_moat"))
            .args(["check", "-c", s(&cfg)])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() && t.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            panic!("moat check hangs on a FIFO secret file");
        }
        refused_with(
            &child.wait_with_output().unwrap(),
            &["node.cookie_secret_file", "a FIFO"],
        );
    }
}

/// Without the `dpdk` feature `check` refuses a DPDK config, as `run` does.
#[cfg(not(feature = "dpdk"))]
#[test]
fn check_refuses_dpdk_without_the_feature() {
    let o = moat(&["check", "-c", &examples("dpdk-two-port.toml")]);
    refused_with(
        &o,
        &["dataplane.backend", "not built into this binary", "--features dpdk"],
    );
}

/// Issue 10, item 6: the tables' memory is printed, and refused over what
/// the machine has.
#[test]
fn check_prints_worker_memory_and_refuses_too_much() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = node_config(dir.path(), "memory", 2, "");
    let o = moat(&["check", "-c", s(&cfg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("worker memory: ") && out.contains("flows ") && out.contains(" x 2 worker(s) = "),
        "{out}"
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[dataplane]\n",
        "[dataplane]\nflow_table_size = 16777216\nverified_table_size = 16777216\nsource_table_size = 16777216\n",
    );
    let big = dir.path().join("big.toml");
    std::fs::write(&big, text.replace("workers = 2", "workers = 256")).unwrap();
    refused_with(
        &moat(&["check", "-c", s(&big)]),
        &["dataplane: worker memory: ", "x 256 worker(s)", "available"],
    );
}

/// Issue 10, item 8: `check` shows the API overlay `run` will apply,
/// reading it only.
#[test]
fn check_shows_the_api_overlay_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = node_config(dir.path(), "memory", 1, "");
    let state = dir.path().join("state");
    let o = moat(&["check", "-c", s(&cfg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("API overlay: none ("));
    assert!(!state.exists(), "check created the state folder");
    std::fs::create_dir(&state).unwrap();
    let changes = serde_json::json!({
        "format": 1,
        "services": [
            {"name": "extra", "service": {
                "name": "extra", "vip": "203.0.113.99", "origin": "web", "allow": ["tcp/8000-8099"]
            }},
            {"name": "api", "service": null}
        ],
        "rules": {"acl": {"allow": [], "deny": ["198.51.100.0/24"]},
                  "fingerprints": {"deny_tcp": [], "deny_udp": []}, "global_pps": 0}
    });
    std::fs::write(state.join("changes.json"), changes.to_string()).unwrap();
    let o = moat(&["check", "-c", s(&cfg)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("1 service added (extra), 1 service removed (api), rules replaced"),
        "{out}"
    );
    assert!(out.contains(": ok (3 services"), "the overlay is counted: {out}");
    let names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["changes.json"], "check wrote into the state folder");
    // Changes that no longer fit the file are refused by check as by run.
    let bad = changes.to_string().replace("\"origin\":\"web\"", "\"origin\":\"gone\"");
    std::fs::write(state.join("changes.json"), bad).unwrap();
    for cmd in [
        &["check", "-c", s(&cfg)][..],
        &["run", "-c", s(&cfg), "--duration", "1"],
    ] {
        refused_with(&moat(cmd), &["changes.json", "unknown origin \"gone\""]);
    }
}

/// Issue 10, item 10: `scrub --in X --out X` destroyed the input; an
/// output of /dev/null failed; I/O errors were printed twice.
#[test]
fn scrub_protects_its_input_and_writes_to_devices() {
    let dir = tempfile::tempdir().unwrap();
    let mix = generate(dir.path(), "300");
    let before = std::fs::read(&mix).unwrap();
    let cfg = examples("offline.toml");
    let link = dir.path().join("link.pcap");
    std::os::unix::fs::symlink(&mix, &link).unwrap();
    for (flag, target) in [
        ("--out", &mix),
        ("--out", &link),
        ("--replies", &mix),
        ("--report", &link),
    ] {
        let mut args = vec!["scrub", "-c", &cfg, "--in", s(&mix)];
        if flag != "--out" {
            args.extend(["--out", "/dev/null"]);
        }
        args.extend([flag, s(target)]);
        refused_with(&moat(&args), &[flag, "is the input capture"]);
        assert_eq!(std::fs::read(&mix).unwrap(), before, "{flag} {}", target.display());
    }
    let clean = dir.path().join("clean.pcap");
    let o = moat(&[
        "scrub",
        "-c",
        &cfg,
        "--in",
        s(&mix),
        "--out",
        s(&clean),
        "--replies",
        s(&clean),
    ]);
    refused_with(&o, &["--out and --replies name the same file"]);
    let o = moat(&[
        "scrub",
        "-c",
        &cfg,
        "--in",
        s(&mix),
        "--out",
        "/dev/null",
        "--replies",
        "/dev/null",
        "--report",
        "/dev/null",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("300 packets"));
    let o = moat(&["scrub", "-c", &cfg, "--in", s(&mix), "--out", s(dir.path())]);
    refused_with(&o, &["Is a directory"]);
    assert_eq!(stderr(&o).matches("Is a directory").count(), 1, "{}", stderr(&o));
}

/// Issue 10, item 10: `gen --out - >&-` claimed success; a closed pipe
/// must fail too.
#[test]
fn gen_to_a_closed_or_broken_stdout_fails() {
    let o = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" gen --out - --count 10 >&-",
            env!("CARGO_BIN_EXE_moat"),
        ])
        .output()
        .unwrap();
    refused_with(&o, &["--out -", "standard output is closed"]);
    let mut gen = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["gen", "--out", "-", "--count", "100000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 24];
    std::io::Read::read_exact(gen.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(gen.stdout.take());
    refused_with(&gen.wait_with_output().unwrap(), &["<stdout>", "Broken pipe"]);
}

/// Every flag has a help text; every subcommand that reads a config takes
/// it as `-c/--config`.
#[test]
fn every_flag_has_help_and_config_is_dash_c() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id != "help" && id != "version" && a.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("{path} {} (about)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let cli = mgmt::cli::Cli::command();
    cli.clone().debug_assert();
    let mut missing = Vec::new();
    walk(&cli, "moat", &mut missing);
    assert!(missing.is_empty(), "without help: {missing:?}");
    for name in ["run", "scrub", "check"] {
        let sub = cli.find_subcommand(name).unwrap();
        let c = sub.get_arguments().find(|a| a.get_id() == "config").unwrap();
        assert_eq!((c.get_short(), c.get_long()), (Some('c'), Some("config")), "{name}");
    }
    let o = moat(&["--help"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("tcp/8000-8099"),
        "port ranges documented"
    );
}

#[test]
fn completions_and_man_page() {
    let o = moat(&["completions", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("_moat()") && out.contains("--worker-counts"), "{out}");
    let o = moat(&["completions", "zsh"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("#compdef moat"));
    let o = moat(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(".TH moat") && out.contains("scrub"), "{out}");
    refused_with(&moat(&["completions", "cmd.exe"]), &["cmd.exe"]);
}
