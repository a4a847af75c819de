//! Helpers shared by the tests that run real tools (as root, for the
//! end-to-end ones): the repository root, commands found on `PATH` (only:
//! a tool missing from PATH is missing, even when /usr/sbin has it), and
//! the skip-or-fail rule (skip with a message where the test cannot run,
//! fail instead under `MOAT_E2E=1`).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod netns;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `tool` is an executable file in a folder of `PATH`. (OVS, ip and
/// hping3 live in /usr/sbin: root's PATH has it; a PATH without it has
/// none of them.)
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .any(|d| std::fs::metadata(d.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// A command found on `PATH` (the programs it runs too).
pub fn cmd(program: &str) -> Command {
    Command::new(program)
}

/// The first of `tools` missing from `PATH`, as a reason to skip
/// (`packages` says what to install).
pub fn missing_tools(tools: &[&str], packages: &str) -> Option<String> {
    let t = tools.iter().find(|t| !on_path(t))?;
    Some(format!("`{t}` not found on PATH (apt-get install {packages})"))
}

/// [`can_run`] for a test that runs `tools` (no root needed).
pub fn require_tools(test: &str, tools: &[&str], packages: &str) -> bool {
    can_run(test, missing_tools(tools, packages))
}

/// Why a namespace test cannot run here, if it cannot: not root, one of
/// `tools` missing (`packages` says what to install), or `ip netns` broken.
pub fn missing_prerequisite(tools: &[&str], packages: &str) -> Option<String> {
    // Effective uid: the second field of `Uid:` (real, effective, saved, fs).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    if let Some(why) = missing_tools(tools, packages) {
        return Some(why);
    }
    let netns = cmd("ip").args(["netns", "list"]).output();
    if !netns.is_ok_and(|o| o.status.success()) {
        return Some("`ip netns` does not work here".into());
    }
    None
}

/// True when the test may run; otherwise prints why it skips, or panics
/// when `MOAT_E2E=1` says it must not skip.
pub fn can_run(test: &str, why_not: Option<String>) -> bool {
    let Some(why) = why_not else { return true };
    assert!(
        std::env::var("MOAT_E2E").as_deref() != Ok("1"),
        "MOAT_E2E=1 but the {test} cannot run: {why}"
    );
    eprintln!("skipping the {test}: {why} (set MOAT_E2E=1 to make this a failure)");
    false
}

/// A node on the memory backend with an attack phase (`phase`: seconds of
/// clean traffic, then seconds of SYN/UDP/reflection flood) that detection
/// declares and escalates (challenge-ack; signatures activated or only
/// proposed), the API on a free port; written to `dir/moat.toml`.
pub fn attack_config(
    dir: &Path,
    name: &str,
    phase: (u32, u32),
    activate_signatures: bool,
    end_after_secs: u32,
) -> PathBuf {
    let state = dir.join("state");
    let text = format!(
        r#"
[node]
name = "{name}"
state_dir = {state:?}

[dataplane]
backend = "memory"
workers = 1

[dataplane.memory]
mix = "legit"
pps = 4000
attack_after_secs = {after}
attack_secs = {secs}
attack_mix = "syn-flood=60,udp-flood=20,dns-reflection=20"

[[ports]]
name = "outside"
role = "outside"
iface = "outside"
ip = "10.10.0.1/24"
mac = "02:00:00:00:00:01"

[[ports]]
name = "inside"
role = "inside"
iface = "inside"
ip = "192.168.77.1/24"
mac = "02:00:00:00:00:02"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"
mac = "02:00:00:00:77:02"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80", "udp/7777"]
syn_auth = "off"

[services.detection]
threshold_syn_pps = 1200

[services.on_attack]
syn_auth = "challenge-ack"
activate_signatures = {activate_signatures}

[detection]
start_after_secs = 2
end_after_secs = {end_after_secs}
report_every_secs = 1

[mgmt]
listen = "127.0.0.1:0"
sample_every = 16
"#,
        state = state.to_str().unwrap(),
        after = phase.0,
        secs = phase.1,
    );
    let p = dir.join("moat.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The Python with Selenium that drives the browser: $MOAT_UI_PYTHON, else
/// the CI's venv.
pub fn python() -> Result<PathBuf, String> {
    let p = match std::env::var_os("MOAT_UI_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from("/opt/moat-ci/ui/bin/python3"),
    };
    if !p.exists() {
        return Err(format!(
            "no Python for Selenium at {} (python3 -m venv /opt/moat-ci/ui && /opt/moat-ci/ui/bin/pip install \
             selenium==4.51.0, or set MOAT_UI_PYTHON)",
            p.display()
        ));
    }
    let ok = Command::new(&p).args(["-c", "import selenium"]).output();
    if !ok.is_ok_and(|o| o.status.success()) {
        return Err(format!(
            "{} cannot import selenium (pip install selenium==4.51.0)",
            p.display()
        ));
    }
    Ok(p)
}
