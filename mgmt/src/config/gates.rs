//! The start-up gates: what `moat run` refuses about a valid config on
//! this machine and this binary, before it opens a port. `moat check` runs
//! the same gates ([`Config::startup_gates`]), so that it refuses exactly
//! what `run` would.
//!
//! Contract: the gates read (the token file, `/proc/meminfo`, the state
//! folder's metadata) and never write: no folder or file is created, no
//! lock is taken. They refuse, naming the key and the reason:
//! - a backend this binary was not built with (`dpdk` without the cargo
//!   feature, `af_packet` off Linux);
//! - an API that cannot get a token: a token file that is missing, not a
//!   regular file, too large or not a valid token; `$MOAT_API_TOKEN` that is
//!   not a valid token; a non-loopback `mgmt.listen` with neither;
//! - a `node.state_dir` that is not a folder (or cannot become one);
//! - per-worker state (tables, AF_PACKET rings) that, times the workers,
//!   is more than the machine's available memory ([`TableMemory`]).
//!
//! Validation ([`Config::load`]) stays machine-independent apart from the
//! cookie secret file and the cores; everything that depends on where
//! and how the node starts is here.

use std::path::{Path, PathBuf};

use classifier::state::{BanTable, FlowTable, SourceTable, VerifiedTable};

use super::{files, Backend, Config, ConfigError};

/// Fewest characters of an API token.
pub const API_TOKEN_MIN_LEN: usize = 16;

/// What the gates found on a config that passes them (printed by `check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gates {
    pub memory: TableMemory,
    /// Where the API token will come from, when the API is enabled.
    pub token: Option<String>,
}

/// The API overlay (`<state_dir>/changes.json`) a node would apply at
/// start-up, as `moat check` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overlay {
    pub path: PathBuf,
    /// Whether the file exists.
    pub present: bool,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// The rule set (ACL, fingerprints, global cap) differs from the file's.
    pub rules_replaced: bool,
}

impl Overlay {
    /// The overlay of `effective` (the file plus the changes) over `file`.
    pub fn between(path: PathBuf, present: bool, file: &Config, effective: &Config) -> Overlay {
        let find = |c: &Config, n: &str| c.services.iter().find(|s| s.name == n).cloned();
        let mut o = Overlay {
            path,
            present,
            ..Overlay::default()
        };
        for s in &effective.services {
            match find(file, &s.name) {
                None => o.added.push(s.name.clone()),
                Some(f) if f != *s => o.changed.push(s.name.clone()),
                Some(_) => {}
            }
        }
        o.removed = file
            .services
            .iter()
            .filter(|s| find(effective, &s.name).is_none())
            .map(|s| s.name.clone())
            .collect();
        o.rules_replaced = file.acl != effective.acl
            || file.fingerprints != effective.fingerprints
            || file.dataplane.global_pps != effective.dataplane.global_pps;
        o
    }
}

impl core::fmt::Display for Overlay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !self.present {
            return write!(f, "API overlay: none ({} does not exist)", self.path.display());
        }
        let list = |v: &[String]| v.join(", ");
        let mut parts = Vec::new();
        for (what, v) in [
            ("added", &self.added),
            ("changed", &self.changed),
            ("removed", &self.removed),
        ] {
            if !v.is_empty() {
                let noun = if v.len() == 1 { "service" } else { "services" };
                parts.push(format!("{} {noun} {what} ({})", v.len(), list(v)));
            }
        }
        if self.rules_replaced {
            parts.push("rules replaced".into());
        }
        if parts.is_empty() {
            parts.push("no difference from the file".into());
        }
        write!(f, "API overlay from {}: {}", self.path.display(), parts.join(", "))
    }
}

/// Memory the workers' fixed-size state takes, reserved at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMemory {
    pub workers: u64,
    /// Bytes per worker of each table (entries, their index and free list).
    pub flows: u64,
    pub verified: u64,
    pub sources: u64,
    pub bans: u64,
    /// Bytes per worker of AF_PACKET RX rings (one per port); 0 on other
    /// backends.
    pub rings: u64,
    /// `MemAvailable` of `/proc/meminfo`, bytes, where readable.
    pub available: Option<u64>,
}

impl TableMemory {
    /// The state `cfg`'s workers reserve.
    pub fn of(cfg: &Config) -> TableMemory {
        let t = cfg.state_config();
        let d = &cfg.dataplane;
        let rings = match d.backend {
            Backend::AfPacket => 2 * u64::from(d.af_packet.block_size) * u64::from(d.af_packet.block_count),
            _ => 0,
        };
        TableMemory {
            workers: d.workers.into(),
            flows: scaled(t.flows, |n| FlowTable::with_capacity(n).memory_bytes()),
            verified: scaled(t.verified, |n| VerifiedTable::with_capacity(n).memory_bytes()),
            sources: scaled(t.sources, |n| SourceTable::with_capacity(n).memory_bytes()),
            bans: scaled(t.bans, |n| BanTable::with_capacity(n).memory_bytes()),
            rings,
            available: mem_available(),
        }
    }

    pub fn per_worker(&self) -> u64 {
        self.flows + self.verified + self.sources + self.bans + self.rings
    }

    pub fn total(&self) -> u64 {
        self.per_worker().saturating_mul(self.workers)
    }
}

impl core::fmt::Display for TableMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "worker memory: {} per worker (flows {}, verified {}, sources {}, bans {}",
            mib(self.per_worker()),
            mib(self.flows),
            mib(self.verified),
            mib(self.sources),
            mib(self.bans)
        )?;
        if self.rings > 0 {
            write!(f, ", AF_PACKET rings {}", mib(self.rings))?;
        }
        write!(f, ") x {} worker(s) = {}", self.workers, mib(self.total()))?;
        match self.available {
            Some(a) => write!(f, " of {} available", mib(a)),
            None => write!(f, " (available memory unknown)"),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Bytes of a table of `cap` entries, from one of [`SAMPLE`] entries built
/// here: every part of a table (slots, free list, index) grows linearly
/// with its capacity (the index by powers of two: exact for power-of-two
/// sizes, within a few bytes per entry for others), and building the
/// table at full size is what the check must not do.
fn scaled(cap: usize, bytes_at: impl Fn(usize) -> usize) -> u64 {
    const SAMPLE: usize = 1024;
    let per = bytes_at(SAMPLE) as f64 / SAMPLE as f64;
    (per * cap as f64).ceil() as u64
}

/// `MemAvailable` of `/proc/meminfo`, bytes.
fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The API token in `text` (surrounding whitespace ignored), or why it is
/// refused: at least [`API_TOKEN_MIN_LEN`] printable ASCII characters
/// without spaces (it travels in a header).
pub fn api_token(text: &str) -> Result<&str, String> {
    let t = text.trim();
    if t.len() < API_TOKEN_MIN_LEN {
        return Err(format!(
            "the API token has {} characters, need at least {API_TOKEN_MIN_LEN}",
            t.len()
        ));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the API token must be printable ASCII without spaces (it travels in a header)".into());
    }
    Ok(t)
}

/// The text of a token file, at most [`files::SMALL_FILE_MAX`] bytes of a
/// regular file; errors read `mgmt.token_file <path>: <reason>`.
pub fn read_token_file(path: &Path) -> Result<String, String> {
    let bytes = files::read_small_file(path, "mgmt.token_file")?;
    String::from_utf8(bytes).map_err(|_| format!("mgmt.token_file {}: not UTF-8 text", path.display()))
}

impl Config {
    /// The start-up gates (module doc); `env_token`: the value of
    /// `$MOAT_API_TOKEN`, if set. `moat run` calls this before it starts
    /// anything, `moat check` to refuse exactly what `run` would.
    pub fn startup_gates(&self, env_token: Option<&str>) -> Result<Gates, ConfigError> {
        self.gates(env_token).map_err(|mut e| {
            e.file.clone_from(&self.label);
            e
        })
    }

    fn gates(&self, env_token: Option<&str>) -> Result<Gates, ConfigError> {
        backend_built(self.dataplane.backend)?;
        let token = self.token_gate(env_token)?;
        state_dir_gate(&self.state_dir())?;
        let memory = self.memory_gate()?;
        Ok(Gates { memory, token })
    }

    /// The workers' state ([`TableMemory`]), refused when it is more than
    /// the machine's available memory.
    pub fn memory_gate(&self) -> Result<TableMemory, ConfigError> {
        let memory = TableMemory::of(self);
        match memory.available.filter(|a| memory.total() > *a) {
            Some(avail) => Err(ConfigError::at(
                "dataplane",
                format!(
                    "{memory}: the workers' state needs more than the {} this machine has available; \
                     lower workers, flow_table_size, verified_table_size or source_table_size",
                    mib(avail)
                ),
            )),
            None => Ok(memory),
        }
    }

    /// Where the API token comes from (`auth::load`'s order), checked
    /// without generating anything.
    fn token_gate(&self, env_token: Option<&str>) -> Result<Option<String>, ConfigError> {
        if !self.mgmt.enabled {
            return Ok(None);
        }
        if let Some(p) = self.token_file() {
            let key = "mgmt.token_file";
            let at = |r: String| ConfigError::at(key, r.strip_prefix(&format!("{key} ")).unwrap_or(&r).to_string());
            let text = read_token_file(&p).map_err(at)?;
            api_token(&text).map_err(|r| ConfigError::at(key, format!("{}: {r}", p.display())))?;
            return Ok(Some(format!("token from {}", p.display())));
        }
        if let Some(t) = env_token {
            api_token(t).map_err(|r| ConfigError::at("", format!("$MOAT_API_TOKEN: {r}")))?;
            return Ok(Some("token from $MOAT_API_TOKEN".into()));
        }
        let listen = self.mgmt.listen;
        if !listen.ip().is_loopback() {
            return Err(ConfigError::at(
                "mgmt.listen",
                format!(
                    "{listen} is not a loopback address: set mgmt.token_file or $MOAT_API_TOKEN \
                     (the API refuses to be reachable from the network without a configured token), \
                     or mgmt.enabled = false"
                ),
            ));
        }
        Ok(Some(format!(
            "token generated into {}",
            self.state_dir().join("api.token").display()
        )))
    }
}

/// Refuses a backend this binary cannot open.
fn backend_built(b: Backend) -> Result<(), ConfigError> {
    let missing = match b {
        Backend::Dpdk if !cfg!(feature = "dpdk") => Some(
            "\"dpdk\" is not built into this binary: build it with `cargo build --release --features dpdk` \
             (needs libdpdk-dev and libclang-dev)",
        ),
        Backend::AfPacket if !cfg!(target_os = "linux") => Some("\"af_packet\" needs Linux"),
        _ => None,
    };
    missing.map_or(Ok(()), |r| Err(ConfigError::at("dataplane.backend", r)))
}

/// The state folder must be a folder, or be creatable: its nearest
/// existing ancestor a folder.
fn state_dir_gate(dir: &Path) -> Result<(), ConfigError> {
    let refuse = |r: String| Err(ConfigError::at("node.state_dir", r));
    let mut p = dir;
    loop {
        match std::fs::metadata(p) {
            // The folder exists: the same ownership and mode checks as
            // `run` (another user's folder, or one others may write into,
            // is refused by both).
            Ok(m) if m.is_dir() && p == dir => {
                return crate::persist::StateDir::check_existing(dir)
                    .map(|_| ())
                    .or_else(|e| refuse(e.to_string()))
            }
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if p == dir => return refuse(format!("{} exists and is not a folder", dir.display())),
            Ok(_) => {
                return refuse(format!(
                    "{} cannot be created: {} is not a folder",
                    dir.display(),
                    p.display()
                ))
            }
            // Missing, or under a file (ENOTDIR): look at the parent.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                match p.parent() {
                    Some(up) if !up.as_os_str().is_empty() => p = up,
                    // A relative path's first component: created in the
                    // working folder.
                    _ => return Ok(()),
                }
            }
            Err(e) => return refuse(format!("{}: {}", p.display(), super::io_reason(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_need_sixteen_printable_characters() {
        assert_eq!(api_token("  0123456789abcdef\n"), Ok("0123456789abcdef"));
        assert!(api_token("short")
            .unwrap_err()
            .contains("has 5 characters, need at least 16"));
        assert!(api_token("").unwrap_err().contains("has 0 characters"));
        assert!(api_token("0123456789 abcdef").unwrap_err().contains("printable ASCII"));
    }

    #[test]
    fn table_bytes_scale_with_capacity() {
        let exact = FlowTable::with_capacity(65536).memory_bytes() as u64;
        let est = scaled(65536, |n| FlowTable::with_capacity(n).memory_bytes());
        // The index's fixed part is scaled too: a few hundred bytes over.
        assert!(est >= exact && est - exact < 4096, "{est} vs {exact}");
        let per_entry = scaled(1 << 24, |n| SourceTable::with_capacity(n).memory_bytes()) >> 24;
        assert!((40..=200).contains(&per_entry), "{per_entry} bytes per source entry");
    }

    #[test]
    fn state_dir_must_be_or_become_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(state_dir_gate(dir.path()).is_ok());
        assert!(state_dir_gate(&dir.path().join("a/b/c")).is_ok());
        assert!(state_dir_gate(Path::new("relative-state")).is_ok());
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = state_dir_gate(&file).unwrap_err();
        assert_eq!(e.key, "node.state_dir");
        assert!(e.reason.ends_with("exists and is not a folder"), "{e}");
        let e = state_dir_gate(&file.join("sub")).unwrap_err();
        assert!(
            e.reason.contains("cannot be created") && e.reason.contains("is not a folder"),
            "{e}"
        );
    }
}
