//! `moat gen --iface` sends exactly what `moat gen --out` writes.
//!
//! - AF_PACKET: a network namespace made by the test with one veth pair
//!   (IPv6 off, offloads off, so the kernel sends nothing of its own and
//!   touches no checksum); `moat gen --iface` sends on one end while an
//!   independent capturer (`tcpdump`, else Wireshark's `dumpcap`) records
//!   the other end, filtered on the generator's source MAC. The captured
//!   frames equal, in order and byte for byte, the frames of the pcap that
//!   `moat gen --out` writes for the same arguments, except the frames
//!   shorter than an Ethernet header (the `malformed` profile's truncated
//!   Ethernet), which the kernel refuses to send: the sender counts each as
//!   an error. With two threads, each thread's frames are those of the
//!   capture for its seed (`seed + k`) and half the count, in order.
//! - DPDK (`--features dpdk`): the same through a `net_pcap` virtual
//!   device whose TX writes a pcap (EAL `--no-huge --no-pci`, a file
//!   prefix per run); and a short `net_null` run at full speed that prints
//!   its live lines.
//!
//! Root only, with `ip`, `sysctl`, `ethtool` and a capturer on PATH;
//! otherwise each test says why and skips (fails under `MOAT_E2E=1`). Run
//! the namespace test under `flock /tmp/moat-netns.lock`. The namespace is
//! deleted and the capturer killed on the way out (Drop guards); every
//! wait is bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The generator's Ethernet source (`GenConfig::src_mac`): the capture
/// filter, so that nothing the kernel sends itself is compared.
const GEN_MAC: &str = "02:00:00:00:00:01";

fn moat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moat"))
}

/// Runs `c` to the end or kills it after `limit`.
fn run_bounded(mut c: Command, limit: Duration) -> Output {
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{c:?} still running after {limit:?}: killed");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The frames of a pcap, in order.
fn frames(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = pcap_file::pcap::PcapReader::new(file).expect("a pcap");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.expect("a record").data.into_owned());
    }
    out
}

/// `moat gen --out` for `args`: the reference frames.
fn reference(dir: &Path, name: &str, args: &[&str]) -> Vec<Vec<u8>> {
    let path = dir.join(name);
    let out = run_bounded(
        {
            let mut c = moat();
            c.arg("gen").args(args).arg("--out").arg(&path);
            c
        },
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "moat gen --out: {}", text(&out.stderr));
    frames(&path)
}

/// (sent, errors) from `moat gen --iface`'s summary line.
fn summary(stdout: &str) -> (u64, u64) {
    let line = stdout.lines().find(|l| l.starts_with("sent ")).expect("a summary line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let sent = words[1].parse().unwrap();
    let errors = words[words.len() - 2].parse().unwrap();
    (sent, errors)
}

/// Compares frame lists, naming the first difference.
fn assert_same(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: frame {i} differs:\n got  {:02x?}\n want {:02x?}",
            &got[i][..got[i].len().min(64)],
            &want[i][..want[i].len().min(64)]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: frame counts");
}

// ------------------------------------------------------- AF_PACKET / veth

/// The capture tool found on PATH.
fn capturer() -> Option<&'static str> {
    ["tcpdump", "dumpcap"].into_iter().find(|t| common::on_path(t))
}

fn ready(test: &str) -> bool {
    let why = common::missing_prerequisite(&["ip", "sysctl", "ethtool"], "iproute2 procps ethtool").or_else(|| {
        capturer()
            .is_none()
            .then(|| "neither tcpdump nor dumpcap on PATH (apt-get install tcpdump)".to_string())
    });
    common::can_run(test, why)
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
}

/// A namespace with the veth pair `a` (moat sends) and `b` (captured).
/// Deleted on drop.
struct Veth {
    ns: String,
    a: String,
    b: String,
}

impl Veth {
    fn new(tag: &str) -> Veth {
        let pid = std::process::id();
        let v = Veth {
            ns: format!("moat-gen-{pid}-{tag}"),
            a: format!("g{tag}{pid}a"),
            b: format!("g{tag}{pid}b"),
        };
        sh(&["ip", "netns", "add", &v.ns]);
        let ns = v.ns.as_str();
        for key in ["default", "all"] {
            let setting = format!("net.ipv6.conf.{key}.disable_ipv6=1");
            sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", &setting]);
        }
        sh(&[
            "ip", "-n", ns, "link", "add", "name", &v.a, "type", "veth", "peer", "name", &v.b,
        ]);
        for dev in [&v.a, &v.b] {
            let off = ["rx", "off", "tx", "off", "tso", "off", "gso", "off", "gro", "off"];
            sh(&[&["ip", "netns", "exec", ns, "ethtool", "-K", dev][..], &off].concat());
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        v
    }

    /// `moat gen --iface a ARGS` inside the namespace.
    fn send(&self, args: &[&str]) -> Output {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns,
            env!("CARGO_BIN_EXE_moat"),
            "gen",
            "--iface",
            &self.a,
        ])
        .args(args);
        run_bounded(c, Duration::from_secs(120))
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A capturer on `b`, writing a pcap; killed on drop.
struct Capture {
    child: Option<Child>,
    path: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    fn start(v: &Veth, path: &Path) -> Capture {
        let tool = capturer().expect("checked by ready()");
        let file = path.to_str().unwrap();
        let filter = format!("ether src {GEN_MAC}");
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &v.ns, tool, "-i", &v.b, "-w", file, "-s", "0"]);
        match tool {
            // Each frame handed over at once (no ring block waiting for
            // its timeout when the capture stops), written at once; a
            // 32 MiB kernel buffer.
            "tcpdump" => c.args(["--immediate-mode", "-U", "-n", "-B", "32768", &filter]),
            // Classic pcap, not pcapng; 32 MiB buffer.
            _ => c.args(["-P", "-B", "32", "-f", &filter]),
        };
        let mut child = c
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("capturer");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let cap = Capture {
            child: Some(child),
            path: path.to_owned(),
            stderr: rx,
        };
        // Both tools say so on stderr once the socket is open.
        let t = Instant::now();
        loop {
            let left = Duration::from_secs(10).saturating_sub(t.elapsed());
            match cap.stderr.recv_timeout(left) {
                Ok(l) if l.contains("listening on") || l.contains("Capturing on") => break,
                Ok(_) => {}
                Err(_) => panic!("{tool} did not start capturing within 10 s"),
            }
        }
        cap
    }

    /// Stops the capture (after the last frames have had time to arrive:
    /// a capturer's ring block is handed over within a second even when
    /// not full) and returns its frames; fails if the capturer dropped any.
    fn stop(mut self) -> Vec<Vec<u8>> {
        std::thread::sleep(Duration::from_millis(1500));
        // The child stays in `self` until it has exited, so that a failure
        // here still kills it on drop (it holds the caller's flock too).
        let child = self.child.as_mut().unwrap();
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let t = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the capturer did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = None;
        let said: Vec<String> = self.stderr.try_iter().collect();
        for l in &said {
            // tcpdump: "N packets dropped by kernel"; dumpcap: "Packets
            // received/dropped on interface 'b': N/M (...)".
            let tcpdump = l.contains("dropped by kernel") && !l.starts_with("0 ");
            let dumpcap = l.contains("received/dropped")
                && l.split(": ").nth(1).and_then(|n| n.split(['/', ' ']).nth(1)) != Some("0");
            assert!(!tcpdump && !dumpcap, "the capturer lost frames: {said:?}");
        }
        frames(&self.path)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn secret() -> String {
    common::root()
        .join("examples/cluster.secret")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn frames_on_a_veth_are_the_pcap_frames() {
    if !ready("gen_live::frames_on_a_veth_are_the_pcap_frames") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v = Veth::new("m");
    let secret = secret();
    // Every profile (IPv6, fragments, broken headers), legitimate clients
    // answering cookie-reset with the cluster's secret; a rate a debug
    // build keeps.
    let args = [
        "--profile",
        "mix",
        "--count",
        "3000",
        "--seed",
        "42",
        "--pps",
        "3000",
        "--ipv6-share",
        "0.3",
        "--syn-auth",
        "cookie-reset",
        "--secret-file",
        &secret,
    ];
    let cap = Capture::start(&v, &dir.path().join("cap.pcap"));
    let t = Instant::now();
    let out = v.send(&args);
    let took = t.elapsed();
    assert!(out.status.success(), "moat gen --iface: {}", text(&out.stderr));
    let got = cap.stop();
    let all = reference(dir.path(), "ref.pcap", &args);
    assert_eq!(all.len(), 3000);
    let want: Vec<Vec<u8>> = all.iter().filter(|f| f.len() >= 14).cloned().collect();
    let short = (all.len() - want.len()) as u64;
    assert!(short > 0, "the mix has truncated Ethernet frames");
    assert_same(&got, &want, "veth capture vs moat gen --out");
    let stdout = text(&out.stdout);
    assert_eq!(summary(&stdout), (want.len() as u64, short), "{stdout}");
    // The pacer never runs ahead of --pps: 3000 frames at 3000 pps take a
    // second at least (one token is there at the start).
    assert!(took >= Duration::from_millis(990), "{took:?}");
}

#[test]
fn a_flood_at_full_speed_and_two_threads() {
    if !ready("gen_live::a_flood_at_full_speed_and_two_threads") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v = Veth::new("f");
    // `--pps max`: the generator spaces its events as a capture at
    // 1,000,000 pps does.
    let flood = ["--profile", "syn-flood", "--count", "20000", "--seed", "7"];
    let cap = Capture::start(&v, &dir.path().join("flood.pcap"));
    let out = v.send(&[&flood[..], &["--pps", "max"]].concat());
    assert!(out.status.success(), "moat gen --iface: {}", text(&out.stderr));
    let got = cap.stop();
    let want = reference(
        dir.path(),
        "flood-ref.pcap",
        &[&flood[..], &["--pps", "1000000"]].concat(),
    );
    assert_same(&got, &want, "SYN flood at --pps max vs the capture at 1000000");
    assert_eq!(summary(&text(&out.stdout)), (20000, 0));

    if core_affinity::get_core_ids().map_or(0, |c| c.len()) < 2 {
        eprintln!("one CPU: the two-thread part is skipped");
        return;
    }
    // Two pinned threads: seeds 5 and 6, 1000 frames each, interleaved.
    let cap = Capture::start(&v, &dir.path().join("two.pcap"));
    let base = ["--profile", "udp-flood", "--pps", "4000"];
    let out = v.send(&[&base[..], &["--count", "2000", "--seed", "5", "--threads", "2"]].concat());
    assert!(
        out.status.success(),
        "moat gen --iface --threads 2: {}",
        text(&out.stderr)
    );
    let got = cap.stop();
    let t0 = reference(
        dir.path(),
        "t0.pcap",
        &[&base[..], &["--count", "1000", "--seed", "5"]].concat(),
    );
    let t1 = reference(
        dir.path(),
        "t1.pcap",
        &[&base[..], &["--count", "1000", "--seed", "6"]].concat(),
    );
    let set0: std::collections::HashSet<&Vec<u8>> = t0.iter().collect();
    let (from0, from1): (Vec<Vec<u8>>, Vec<Vec<u8>>) = got.into_iter().partition(|f| set0.contains(f));
    assert_same(&from0, &t0, "thread 0 (seed 5)");
    assert_same(&from1, &t1, "thread 1 (seed 6)");
    let stdout = text(&out.stdout);
    assert_eq!(summary(&stdout), (2000, 0), "{stdout}");
}

#[test]
fn bad_ports_and_cores_are_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--iface", "moat-nosuch0", "--count", "1"],
            "--iface moat-nosuch0: moat-nosuch0: if_nametoindex",
        ),
        (&["--iface", "lo", "--cores", "4095"], "--cores 4095: no such CPU"),
        (&["--iface", "lo", "--pps", "2000000000"], "1 to 1000000000"),
        (
            &["--out", "x.pcap", "--pps", "max"],
            "--pps max (or 0) is only for a live port",
        ),
        (&["--out", "x.pcap", "--duration", "1"], "--duration is for a live port"),
        (&["--out", "x.pcap", "--threads", "1"], "--threads is for a live port"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in cases {
        let mut c = moat();
        c.current_dir(dir.path()).arg("gen").args(*args);
        let out = run_bounded(c, Duration::from_secs(30));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!dir.path().join("x.pcap").exists(), "nothing written");
    // Without CAP_NET_RAW (as nobody), the error says what is missing.
    if !common::on_path("setpriv") || common::missing_prerequisite(&[], "").is_some() {
        eprintln!("no setpriv or not root: the permission case is skipped");
        return;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(env!("CARGO_BIN_EXE_moat"))
        .args(["gen", "--iface", "lo", "--count", "1"]);
    let out = run_bounded(c, Duration::from_secs(30));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--iface lo: lo: socket: Operation not permitted") && err.contains("CAP_NET_RAW"),
        "{err}"
    );
}

// ------------------------------------------------------------------ DPDK

#[cfg(feature = "dpdk")]
mod dpdk {
    use super::*;

    fn ready(test: &str) -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let root = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0");
        common::can_run(
            test,
            (!root).then(|| "not root (DPDK's EAL needs root here)".to_string()),
        )
    }

    /// EAL arguments for virtual devices, a file prefix of its own.
    fn eal(tag: &str, vdev: &str) -> String {
        format!(
            "--no-huge -m 512 --no-pci --no-shconf --no-telemetry -l 0 --file-prefix moat-gen-{}-{tag} --vdev {vdev}",
            std::process::id()
        )
    }

    #[test]
    fn frames_through_net_pcap_are_the_pcap_frames() {
        if !ready("gen_live::dpdk::frames_through_net_pcap_are_the_pcap_frames") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let args = ["--profile", "mix", "--count", "2000", "--seed", "11", "--pps", "5000"];
        let want = reference(dir.path(), "ref.pcap", &args);
        // net_pcap needs something to read: an empty capture.
        let empty = reference(dir.path(), "empty.pcap", &["--count", "0"]);
        assert!(empty.is_empty());
        let tx = dir.path().join("tx.pcap");
        let vdev = format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            dir.path().join("empty.pcap").display(),
            tx.display()
        );
        let out = run_bounded(
            {
                let mut c = moat();
                c.args(["gen", "--iface", "net_pcap0", "--eal", &eal("pcap", &vdev)])
                    .args(args);
                c
            },
            Duration::from_secs(120),
        );
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "moat gen --eal: {}{stdout}", text(&out.stderr));
        assert_same(&frames(&tx), &want, "net_pcap TX vs moat gen --out");
        assert_eq!(summary(&stdout), (2000, 0), "{stdout}");
    }

    #[test]
    fn full_speed_on_net_null_prints_live_lines() {
        if !ready("gen_live::dpdk::full_speed_on_net_null_prints_live_lines") {
            return;
        }
        let out = run_bounded(
            {
                let mut c = moat();
                c.args(["gen", "--iface", "net_null0", "--eal", &eal("null", "net_null0")])
                    .args(["--profile", "udp-flood", "--pps", "max", "--duration", "2.5"]);
                c
            },
            Duration::from_secs(60),
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stderr}{stdout}");
        let lines = stderr.lines().filter(|l| l.starts_with("gen: ")).count();
        assert!(lines >= 2, "live lines: {stderr}");
        let (sent, errors) = summary(&stdout);
        assert!(sent > 1000 && errors == 0, "{stdout}");
    }
}
