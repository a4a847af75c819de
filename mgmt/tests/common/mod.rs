//! Helpers shared by the tests that run real tools (as root, for the
//! end-to-end ones): the repository root, commands found on `PATH` (only:
//! a tool missing from PATH is missing, even when /usr/sbin has it), and
//! the skip-or-fail rule (skip with a message where the test cannot run,
//! fail instead under `MOAT_E2E=1`).
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

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
