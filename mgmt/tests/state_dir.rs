//! The state folder as another local user would attack it (issue 10,
//! item 4): a folder pre-created by someone else, with links planted where
//! the node writes and a planted `changes.json` (allow everything), is
//! refused before anything is read from it or written into it. Also: the
//! demo's folder is private and unpredictable, and temporary files of
//! killed writes are removed at start.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn moat() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
    c.env_remove("MOAT_API_TOKEN").env_remove("NOTIFY_SOCKET");
    c
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

fn config(dir: &Path, state: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[node]
name = "sd"
state_dir = {state:?}

[dataplane]
backend = "memory"
workers = 1

[dataplane.memory]
pps = 1000

[[ports]]
name = "outside"
role = "outside"
iface = "mem0"
ip = "10.10.0.1/24"

[[ports]]
name = "inside"
role = "inside"
iface = "mem1"
ip = "192.168.77.1/24"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"
mac = "02:00:00:00:01:02"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80"]

[mgmt]
listen = "127.0.0.1:0"
"#,
        state = state.to_str().unwrap()
    );
    let p = dir.join("moat.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The attack as it was reproduced: user 65534 made the folder (mode
/// 0755, theirs), planted `api.token` and temporary names as links to a
/// file of theirs, and a `changes.json` that opens every port to the
/// world. The node refuses the folder, names it and its owner, applies
/// nothing and writes nothing through the links.
#[test]
fn a_state_folder_planted_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipping: making files owned by another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let loot = dir.path().join("loot");
    std::fs::write(&loot, b"").unwrap();
    std::os::unix::fs::chown(&loot, Some(65534), Some(65534)).unwrap();
    symlink(&loot, state.join("api.token")).unwrap();
    for pid in 1..50 {
        symlink(&loot, state.join(format!(".api.token.{pid}.tmp"))).unwrap();
        symlink(&loot, state.join(format!(".changes.json.{pid}.tmp"))).unwrap();
    }
    let planted = r#"{"format": 1, "services": [{"name": "open", "service": {"name": "open",
        "vip": "203.0.113.99", "origin": "web", "allow": ["tcp/1-65535", "udp/1-65535"],
        "syn_auth": "off"}}], "rules": {"acl": {"allow": ["0.0.0.0/0"], "deny": []},
        "fingerprints": {"deny_tcp": [], "deny_udp": []}, "global_pps": 0}}"#;
    std::fs::write(state.join("changes.json"), planted).unwrap();
    for e in std::fs::read_dir(&state).unwrap() {
        std::os::unix::fs::lchown(e.unwrap().path(), Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let cfg = config(dir.path(), &state);

    let o = moat()
        .args(["run", "--duration", "2", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the planted folder was used: {err}");
    assert!(
        err.contains(state.to_str().unwrap()) && err.contains("owned by uid 65534"),
        "{err}"
    );
    assert_eq!(std::fs::read(&loot).unwrap(), b"", "nothing written through a link");
    let m = std::fs::symlink_metadata(state.join("api.token")).unwrap();
    assert!(
        m.file_type().is_symlink() && m.uid() == 65534,
        "the planted link is untouched"
    );
    assert!(!state.join("moat.lock").exists(), "nothing created in their folder");

    // `check` reads the runtime changes too: the planted overlay is refused
    // there as well, never shown as what `run` would apply.
    let o = moat().args(["check", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success() || !out.contains("open"),
        "check showed the planted overlay: {out} {err}"
    );

    // The same folder, group-writable but ours: refused with its mode.
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o775)).unwrap();
    let o = moat()
        .args(["run", "--duration", "2", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("mode 0775"), "{err}");
    assert_eq!(std::fs::read(&loot).unwrap(), b"");
}

/// A missing state folder is created 0700; the generated token is 0600;
/// temporary files of killed writes are gone after start, and the links
/// with our prefix are neither followed nor removed.
#[test]
fn a_new_state_folder_is_private_and_stale_temporaries_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("deep/state");
    let cfg = config(dir.path(), &state);
    let o = moat()
        .args(["run", "--duration", "0.5", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("api.token")), 0o600);

    std::fs::write(state.join(".moat-tmp-AbC123"), b"half a write").unwrap();
    std::fs::write(state.join(".changes.json.4242.tmp"), b"half a write").unwrap();
    let o = moat()
        .args(["run", "--duration", "0.5", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("removed 2 stale temporary file(s)"), "{err}");
    assert!(!state.join(".moat-tmp-AbC123").exists());
    assert!(!state.join(".changes.json.4242.tmp").exists());
}

/// `moat demo --api` keeps its token under a new private folder with an
/// unpredictable name (not `moat-demo-<pid>`), removed at the end.
#[test]
fn the_demo_state_folder_is_private_and_unpredictable() {
    let tmp = tempfile::tempdir().unwrap();
    let o = moat()
        .args(["demo", "--duration", "1", "--pps", "1000", "--api", "127.0.0.1:0"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = out
        .split("generated token in ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("{out}"));
    let folder = Path::new(token).parent().unwrap();
    assert_eq!(folder.parent().unwrap(), tmp.path());
    let name = folder.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("moat-demo-"), "{name}");
    let suffix = &name["moat-demo-".len()..];
    assert!(suffix.parse::<u32>().is_err(), "a PID is predictable: {name}");
    assert!(!folder.exists(), "removed at the end");
}
