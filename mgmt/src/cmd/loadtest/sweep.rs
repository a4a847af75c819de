//! `moat loadtest sweep`: `moat loadtest run` once per step (a baseline
//! without flood, then each flood type at each rate), Moat's counters read
//! from its API around each step, one CSV row per step.
//!
//! Each step runs as its own process (`ip netns exec NS moat loadtest run
//! ...` with `--inet-ns`), so that the clients and the flood live in the
//! clients' network namespace while the sweep reads Moat's API in Moat's
//! (`ip netns exec NS curl ...` with `--moat-ns`; a plain HTTP request
//! without it). The CSV's first line is a comment (`# ...`) naming the
//! machine and the date; then the header ([`COLUMNS`] and one
//! `drop_<reason>` column per drop reason); then the rows.
//!
//! How the columns are measured (per second of the step, its flood time):
//! - `flood_offered_pps`: what the flood sender put on the interface;
//! - `wire_pps`, `wire_dropped_pps`: what the interface carried and dropped
//!   (its kernel counters; a veth drops what its peer's backlog cannot take);
//! - `moat_rx_pps`: what Moat received on its outside port;
//! - `flood_rx_pps`: that, less the frames the generated clients sent and
//!   the TCP segments curl's kernel sent: Moat's share of the flood;
//! - `drop_*`: Moat's drop counters by reason over the step (counts);
//! - `legit_*`: the generated clients; `curl_*`: the real Linux clients.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use classifier::DropReason;
use serde_json::Value;

use super::RunArgs;

/// The flood types a sweep names, besides generator profiles: an attack mix.
pub const MIX: &str = "syn-flood=1,ack-flood=1,dns-reflection=1";

/// The columns before the drop reasons, then those after them.
pub const COLUMNS: [&str; 14] = [
    "step",
    "flood",
    "target_pps",
    "secs",
    "flood_sent",
    "flood_errors",
    "flood_offered_pps",
    "wire_pps",
    "wire_dropped_pps",
    "moat_rx_pps",
    "flood_rx_pps",
    "moat_passed_pps",
    "moat_replies_pps",
    "moat_dropped_pps",
];
pub const LEGIT_COLUMNS: [&str; 16] = [
    "legit_tried",
    "legit_completed",
    "legit_failed_timeout",
    "legit_failed_reset",
    "legit_failed_bad_answer",
    "legit_success",
    "legit_ttfb_p50_ms",
    "legit_ttfb_p99_ms",
    "legit_syn_retransmits",
    "legit_challenge_rsts",
    "curl_tried",
    "curl_completed",
    "curl_failed",
    "curl_success",
    "curl_ttfb_p50_ms",
    "curl_ttfb_p99_ms",
];

/// Arguments of `moat loadtest sweep`.
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// Flood types: generator profiles (syn-flood, ack-flood, dns-reflection, udp-flood, ...) or `mix` (syn-flood=1,ack-flood=1,dns-reflection=1).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "syn-flood,ack-flood,dns-reflection,mix"
    )]
    pub floods: Vec<String>,
    /// Flood rates in packets per second; 0 is the baseline, run once before the floods.
    #[arg(long, value_delimiter = ',', default_value = "0,1000,5000,20000")]
    pub rates: Vec<u64>,
    /// Seconds each step starts client connections (its `run --duration`).
    #[arg(long, default_value_t = 5.0, value_parser = crate::cli::seconds)]
    pub step_secs: f64,
    /// Run each step in this network namespace (`ip netns exec`).
    #[arg(long)]
    pub inet_ns: Option<String>,
    /// Moat's API is reached from this network namespace (`ip netns exec NS curl`).
    #[arg(long)]
    pub moat_ns: Option<String>,
    /// Moat's API base URL.
    #[arg(long, default_value = "http://127.0.0.1:9180")]
    pub api: String,
    /// The API's bearer token (the node's state_dir/api.token, or mgmt.token_file).
    #[arg(long)]
    pub token_file: PathBuf,
    /// Forget Moat's verified sources before each step (DELETE /api/v1/verified), so that every step's clients are challenged again.
    #[arg(long)]
    pub flush_verified: bool,
    /// Seconds to wait after a step before reading Moat's counters.
    #[arg(long, default_value_t = 0.5, value_parser = crate::cli::seconds)]
    pub settle_secs: f64,
    /// The CSV to write.
    #[arg(long)]
    pub csv: PathBuf,
    /// The CSV's first line (a `#` comment) and the plot's title; default: the machine and the date.
    #[arg(long)]
    pub title: Option<String>,
    /// `moat loadtest run` flags for every step, after `--` (not --duration, --flood, --flood-pps, --json).
    #[arg(last = true, required = true)]
    pub run: Vec<String>,
}

/// `run` flags the sweep sets itself.
const OWN_FLAGS: [&str; 4] = ["--duration", "--flood", "--flood-pps", "--json"];

#[derive(clap::Parser, Debug)]
struct RunOnly {
    #[command(flatten)]
    run: RunArgs,
}

pub fn run(a: &SweepArgs) -> anyhow::Result<()> {
    let run_args = validate(a)?;
    let token = std::fs::read_to_string(&a.token_file)
        .with_context(|| format!("--token-file {}", a.token_file.display()))?
        .trim()
        .to_string();
    let api = Api {
        ns: a.moat_ns.clone(),
        base: a.api.trim_end_matches('/').to_string(),
        token,
    };
    api.get("/api/v1/stats").context("Moat's API before the sweep")?;
    let title = a.title.clone().unwrap_or_else(default_title);
    let mut csv = format!("# {}\n{}\n", title.replace('\n', " "), header());
    let dir = tempfile::tempdir()?;
    let mut steps: Vec<(String, u64)> = Vec::new();
    if a.rates.contains(&0) {
        steps.push(("none".into(), 0));
    }
    for f in &a.floods {
        for &r in a.rates.iter().filter(|r| **r > 0) {
            steps.push((f.clone(), r));
        }
    }
    for (i, (flood, rate)) in steps.iter().enumerate() {
        eprintln!("step {}/{}: flood {flood} at {rate} pps", i + 1, steps.len());
        let row = step(a, &api, &run_args, dir.path(), (i, flood, *rate))?;
        csv.push_str(&row);
        csv.push('\n');
        // Written after every step: a long sweep stopped half-way keeps its rows.
        std::fs::write(&a.csv, &csv).with_context(|| format!("--csv {}", a.csv.display()))?;
    }
    eprintln!("wrote {} step(s) to {}", steps.len(), a.csv.display());
    Ok(())
}

/// The run flags, checked by `run`'s own parser.
fn validate(a: &SweepArgs) -> anyhow::Result<RunArgs> {
    if let Some(f) = a.run.iter().find(|f| {
        OWN_FLAGS
            .iter()
            .any(|o| f.as_str() == *o || f.starts_with(&format!("{o}=")))
    }) {
        bail!("{f} after `--`: the sweep sets it for each step");
    }
    let parsed = RunOnly::try_parse_from(std::iter::once("run".to_string()).chain(a.run.iter().cloned()))
        .map_err(|e| anyhow::anyhow!("the `moat loadtest run` flags after `--`: {e}"))?;
    for f in &a.floods {
        dataplane::gen::parse_mix(flood_mix(f))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--floods {f}"))?;
    }
    if a.rates.is_empty() {
        bail!("--rates: no rate");
    }
    Ok(parsed.run)
}

fn flood_mix(name: &str) -> &str {
    if name == "mix" {
        MIX
    } else {
        name
    }
}

pub fn header() -> String {
    let drops = DropReason::ALL.iter().map(|r| format!("drop_{}", r.as_str()));
    COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(drops)
        .chain(LEGIT_COLUMNS.iter().map(|c| c.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Moat's REST API, from its namespace or directly.
struct Api {
    ns: Option<String>,
    base: String,
    token: String,
}

impl Api {
    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let text = self.call("GET", path)?;
        serde_json::from_str(&text).with_context(|| format!("GET {path}: not JSON: {text:.200}"))
    }

    fn call(&self, method: &str, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Authorization: Bearer {}", self.token);
        let Some(ns) = &self.ns else {
            let r = ureq::request(method, &url)
                .set("Authorization", &format!("Bearer {}", self.token))
                .timeout(Duration::from_secs(5))
                .call()
                .with_context(|| format!("{method} {url}"))?;
            return Ok(r.into_string()?);
        };
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "curl",
                "-sS",
                "--fail",
                "--max-time",
                "5",
                "-X",
                method,
                "-H",
            ])
            .arg(&auth)
            .arg(&url)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("ip netns exec {ns} curl {url}"))?;
        if !out.status.success() {
            bail!(
                "{method} {url} in {ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Reads a counter of the clients' interface (`tx_packets`, `tx_dropped`),
/// in the clients' namespace.
fn iface_counter(ns: Option<&str>, iface: &str, name: &str) -> anyhow::Result<u64> {
    let path = format!("/sys/class/net/{iface}/statistics/{name}");
    let text = match ns {
        None => std::fs::read_to_string(&path).with_context(|| path.clone())?,
        Some(ns) => {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "cat", &path])
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                bail!("{path} in {ns}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    text.trim().parse().with_context(|| format!("{path}: {text:?}"))
}

/// One step: the run's process, Moat's counters around it, the CSV row.
fn step(
    a: &SweepArgs,
    api: &Api,
    r: &RunArgs,
    dir: &Path,
    (i, flood, rate): (usize, &str, u64),
) -> anyhow::Result<String> {
    if a.flush_verified {
        api.call("DELETE", "/api/v1/verified")
            .context("flushing Moat's verified sources")?;
    }
    let ns = a.inet_ns.as_deref();
    let json = dir.join(format!("step{i}.json"));
    let before = api.get("/api/v1/stats")?;
    let wire0 = (
        iface_counter(ns, &r.iface, "tx_packets")?,
        iface_counter(ns, &r.iface, "tx_dropped")?,
    );
    let exe = std::env::current_exe().context("the moat binary's path")?;
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    c.args(["loadtest", "run"]).args(&a.run);
    c.args(["--duration", &a.step_secs.to_string(), "--quiet", "--json"])
        .arg(&json);
    if rate > 0 {
        c.args(["--flood", flood_mix(flood), "--flood-pps", &rate.to_string()]);
    }
    let status = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("starting `moat loadtest run`")?;
    if !status.success() {
        bail!("step {i} ({flood} at {rate} pps): `moat loadtest run` failed: {status}");
    }
    std::thread::sleep(Duration::from_secs_f64(a.settle_secs));
    let after = api.get("/api/v1/stats")?;
    let wire1 = (
        iface_counter(ns, &r.iface, "tx_packets")?,
        iface_counter(ns, &r.iface, "tx_dropped")?,
    );
    let result: Value = serde_json::from_slice(&std::fs::read(&json)?).context("the step's JSON")?;
    let wire = (wire1.0.saturating_sub(wire0.0), wire1.1.saturating_sub(wire0.1));
    Ok(row((i, flood, rate), &result, &before, &after, wire))
}

fn num(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

fn float(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().fold(v, |v, k| &v[*k]).as_f64()
}

/// An optional figure: empty when unknown.
fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or(String::new(), |v| format!("{v:.digits$}"))
}

/// The CSV row of one step from the run's JSON and Moat's stats before and
/// after.
pub fn row((i, flood, rate): (usize, &str, u64), r: &Value, before: &Value, after: &Value, wire: (u64, u64)) -> String {
    let delta = |path: &[&str]| num(after, path).saturating_sub(num(before, path));
    let secs = float(r, &["flood", "secs"])
        .or(float(r, &["elapsed_secs"]))
        .unwrap_or(0.0);
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let sent = num(r, &["flood", "sent"]);
    let moat_rx = delta(&["ports", "outside", "rx_packets"]);
    let legit_frames = num(r, &["generated", "tcp", "tx_frames"]) + num(r, &["kernel_tcp_out_segs"]);
    let mut s = String::new();
    let _ = write!(
        s,
        "{i},{flood},{rate},{secs:.2},{sent},{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0}",
        num(r, &["flood", "errors"]),
        per_sec(sent),
        per_sec(wire.0),
        per_sec(wire.1),
        per_sec(moat_rx),
        per_sec(moat_rx.saturating_sub(legit_frames)),
        per_sec(delta(&["passed_packets"])),
        per_sec(delta(&["replies"])),
        per_sec(delta(&["dropped_packets"])),
    );
    for reason in DropReason::ALL {
        let _ = write!(s, ",{}", delta(&["drops_by_reason", reason.as_str()]));
    }
    let g = &r["generated"];
    let _ = write!(
        s,
        ",{},{},{},{},{},{},{},{},{},{}",
        num(g, &["tried"]),
        num(g, &["completed"]),
        num(g, &["failed", "timeout"]),
        num(g, &["failed", "reset"]),
        num(g, &["failed", "bad_answer"]),
        opt(float(g, &["success_rate"]), 4),
        opt(float(g, &["ttfb_ms", "p50"]), 3),
        opt(float(g, &["ttfb_ms", "p99"]), 3),
        num(g, &["tcp", "syn_retransmits"]),
        num(g, &["tcp", "challenge_rsts"]),
    );
    let c = &r["curl"];
    let failed: u64 = ["timeout", "reset", "bad_answer"]
        .iter()
        .map(|k| num(c, &["failed", k]))
        .sum();
    let _ = write!(
        s,
        ",{},{},{failed},{},{},{}",
        num(c, &["tried"]),
        num(c, &["completed"]),
        opt(float(c, &["success_rate"]), 4),
        opt(float(c, &["ttfb_ms", "p50"]), 3),
        opt(float(c, &["ttfb_ms", "p99"]), 3),
    );
    s
}

/// "moat loadtest sweep, HOST (CPU, N cores, load average L), YYYY-MM-DD
/// HH:MM UTC": the load average at the start says how much else the machine
/// was running.
fn default_title() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "unknown".into());
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!(
        "moat loadtest sweep, {} ({cpu}, {cores} cores, load average {load}), {}",
        host.trim(),
        utc(secs)
    )
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds (the civil-from-days algorithm of
/// H. Hinnant, proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_are_civil() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400 + 3600 + 120), "2000-02-29 01:02 UTC");
    }

    #[test]
    fn a_row_has_every_column_and_the_deltas() {
        let before = json!({"ports": {"outside": {"rx_packets": 100}}, "passed_packets": 10, "replies": 1,
            "dropped_packets": 5, "drops_by_reason": {"tcp_no_flow": 5}});
        let after = json!({"ports": {"outside": {"rx_packets": 2100}}, "passed_packets": 510, "replies": 1,
            "dropped_packets": 1505, "drops_by_reason": {"tcp_no_flow": 1505}});
        let r = json!({"elapsed_secs": 3.0, "kernel_tcp_out_segs": 20,
            "flood": {"sent": 1600, "errors": 0, "secs": 2.0},
            "generated": {"tried": 10, "completed": 9, "failed": {"timeout": 1, "reset": 0, "bad_answer": 0},
                "success_rate": 0.9, "ttfb_ms": {"p50": 1.5, "p99": 1001.0},
                "tcp": {"tx_frames": 480, "syn_retransmits": 3, "challenge_rsts": 2}},
            "curl": null});
        let line = row((1, "ack-flood", 800), &r, &before, &after, (2200, 0));
        let cols: Vec<&str> = line.split(',').collect();
        let names: Vec<String> = header().split(',').map(String::from).collect();
        assert_eq!(cols.len(), names.len(), "{line}");
        let get = |n: &str| cols[names.iter().position(|c| c == n).unwrap()];
        assert_eq!(get("flood"), "ack-flood");
        assert_eq!(get("flood_offered_pps"), "800");
        assert_eq!(get("moat_rx_pps"), "1000");
        // 2000 received less 480 client frames and 20 curl segments, over 2 s.
        assert_eq!(get("flood_rx_pps"), "750");
        assert_eq!(get("drop_tcp_no_flow"), "1500");
        assert_eq!(get("legit_success"), "0.9000");
        assert_eq!(get("legit_ttfb_p99_ms"), "1001.000");
        assert_eq!(get("curl_tried"), "0");
        assert_eq!(get("curl_ttfb_p50_ms"), "");
    }

    #[test]
    fn run_flags_are_checked_and_the_sweeps_own_refused() {
        let args = |run: &[&str]| SweepArgs {
            floods: vec!["syn-flood".into(), "mix".into()],
            rates: vec![0, 100],
            step_secs: 1.0,
            inet_ns: None,
            moat_ns: None,
            api: "http://127.0.0.1:1".into(),
            token_file: "/nonexistent".into(),
            flush_verified: false,
            settle_secs: 0.5,
            csv: "/dev/null".into(),
            title: None,
            run: run.iter().map(|s| s.to_string()).collect(),
        };
        let ok = [
            "--iface",
            "a",
            "--rx-iface",
            "b",
            "--src",
            "10.0.0.1-10.0.0.9",
            "--vip",
            "10.1.1.1",
            "--gateway",
            "10.0.0.254",
        ];
        assert_eq!(validate(&args(&ok)).unwrap().iface, "a");
        let mut own = ok.to_vec();
        own.extend(["--duration", "3"]);
        assert!(validate(&args(&own))
            .unwrap_err()
            .to_string()
            .contains("the sweep sets it"));
        assert!(validate(&args(&["--iface", "a"])).is_err());
        let mut bad = args(&ok);
        bad.floods = vec!["tsunami".into()];
        assert!(format!("{:#}", validate(&bad).unwrap_err()).contains("--floods tsunami"));
        let title = default_title();
        assert!(title.contains("UTC") && title.contains("load average "), "{title}");
    }
}
