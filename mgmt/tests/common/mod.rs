//! Helpers shared by the end-to-end tests that run real tools as root: the
//! repository root, commands found on `PATH` plus the sbin folders, and the
//! skip-or-fail rule (skip with a message where the test cannot run, fail
//! instead under `MOAT_E2E=1`).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `PATH` with /usr/sbin and /sbin appended (where OVS, ip and hping3 live).
pub fn search_path() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/sbin:/sbin")
}

pub fn on_path(tool: &str) -> bool {
    std::env::split_paths(&search_path()).any(|d| d.join(tool).is_file())
}

/// A command that finds its program (and the programs it runs) on
/// [`search_path`].
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", search_path());
    c
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
    if let Some(t) = tools.iter().find(|t| !on_path(t)) {
        return Some(format!("`{t}` not found (apt-get install {packages})"));
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
