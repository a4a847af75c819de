//! The skip-or-fail rule of the tests that need root, network namespaces or
//! optional tools (the same as mgmt's tests/common): a test that cannot run
//! here prints why and passes, unless `MOAT_E2E=1` (CI), where it fails.
//! Tools are looked up on `PATH` only, as the commands that run them do.
#![allow(dead_code)] // each test binary uses its own subset

use std::process::Command;

/// Effective uid 0 (the second field of `Uid:`: real, effective, saved, fs).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    euid == Some("0")
}

/// `tool` is an executable file in a folder of `PATH`.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .any(|d| std::fs::metadata(d.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The first of `tools` missing from `PATH`, as a reason to skip
/// (`packages` says what to install).
pub fn missing_tools(tools: &[&str], packages: &str) -> Option<String> {
    let t = tools.iter().find(|t| !on_path(t))?;
    Some(format!("`{t}` not found on PATH (apt-get install {packages})"))
}

/// Why a namespace test cannot run here, if it cannot: not root, one of
/// `tools` missing, or `ip netns` broken.
pub fn missing_netns(tools: &[&str], packages: &str) -> Option<String> {
    if !is_root() {
        return Some("not root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    if let Some(why) = missing_tools(tools, packages) {
        return Some(why);
    }
    let netns = Command::new("ip").args(["netns", "list"]).output();
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
        "MOAT_E2E=1 but {test} cannot run: {why}"
    );
    eprintln!("SKIPPED {test}: {why} (set MOAT_E2E=1 to make this a failure)");
    false
}

/// [`can_run`] for a test that runs `tools` (no root needed).
pub fn require_tools(test: &str, tools: &[&str], packages: &str) -> bool {
    can_run(test, missing_tools(tools, packages))
}

/// [`can_run`] for a test that builds network namespaces with `tools`.
pub fn require_netns(test: &str, tools: &[&str], packages: &str) -> bool {
    can_run(test, missing_netns(tools, packages))
}
