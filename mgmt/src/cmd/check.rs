//! `moat check --config FILE`: validates a config file, builds its policy
//! and runs `moat run`'s start-up gates ([`Config::startup_gates`]: the
//! backend built in, the API token, the state folder, the workers' memory)
//! and its overlay of API changes (`<state_dir>/changes.json`, read only)
//! without starting anything, so that a bad file is caught before a
//! deploy: `check` refuses exactly what `run` would.
//!
//! Contract: on success prints a first line `FILE: ok (...)`, then the
//! workers' memory, where the API token comes from and the API overlay
//! `run` will apply, and returns `Ok`; on failure returns the
//! [`ConfigError`] (`file:line:col: key: reason`), which the binary prints
//! and maps to exit code 2. Nothing is written, created or locked.

use std::path::PathBuf;

use crate::config::{Config, ConfigError, Overlay};
use crate::control::{Changes, CHANGES_FILE};

/// Arguments of `moat check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

/// Loads and validates the file, builds its policy, prints the summary.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let text = check(args)?;
    super::output::print_stdout(&format!("{text}\n"))
}

/// The summary of a sound config (first line `FILE: ok (...)`), or why it
/// is not.
pub fn check(args: &CheckArgs) -> Result<String, ConfigError> {
    let cfg = Config::load(&args.config)?;
    let policy = cfg.policy()?;
    let env = std::env::var(crate::api::auth::TOKEN_ENV).ok();
    let gates = cfg.startup_gates(env.as_deref())?;
    let overlay = overlay(&cfg)?;
    let fingerprints = cfg.fingerprints.deny_tcp.len() + cfg.fingerprints.deny_udp.len();
    let mut out = format!(
        "{}: ok ({} services, {} origins, {} ACL rules, {} fingerprint rules, backend {}, {} workers, {})",
        args.config.display(),
        policy.services.len(),
        policy.origins.len(),
        policy.acl.rules().count(),
        fingerprints,
        cfg.dataplane.backend.as_str(),
        cfg.dataplane.workers,
        cfg.secret_source(),
    );
    out.push_str(&format!("\n  {}", gates.memory));
    if cfg.dataplane.backend == crate::config::Backend::Dpdk {
        let o = cfg.dataplane.dpdk_options(String::new(), String::new());
        out.push_str(&format!(
            "\n  DPDK: {} mbufs per pool ({} needed at once)",
            o.mbufs,
            o.mbufs_needed()
        ));
    }
    match &gates.token {
        Some(t) => out.push_str(&format!("\n  API on {} ({t})", cfg.mgmt.listen)),
        None => out.push_str("\n  API: off (mgmt.enabled = false)"),
    }
    out.push_str(&format!("\n  {overlay}"));
    for note in cfg.services.iter().flat_map(crate::config::udpauth::notes) {
        out.push_str(&format!("\n  {note}"));
    }
    if let Some(b) = &cfg.bgp {
        out.push_str(&format!("\n  {}", bgp_line(&cfg, b)));
    }
    Ok(out)
}

/// What `run` will do with `[bgp]`; BIRD's socket and the liveness
/// interface are only looked at (`run` retries an absent socket, and only
/// creating the interface tells whether it can be created).
fn bgp_line(cfg: &Config, b: &crate::config::BgpConfig) -> String {
    let sock = cfg.resolve(&b.bird_socket);
    let seen = if sock.exists() {
        "present"
    } else {
        "absent now: run retries until BIRD is up"
    };
    let live = match &b.liveness_iface {
        Some(i) => format!("liveness interface {i} (created by run: needs CAP_NET_ADMIN)"),
        None => "no liveness interface (a killed node stays announced)".into(),
    };
    format!(
        "BGP: BIRD protocol {} at {} ({seen}), hold-down {} s, drain {} s, {live}",
        b.protocol,
        sock.display(),
        b.hold_down_secs,
        b.drain_secs
    )
}

/// The API changes `run` would apply over `cfg` (as `Control::load` does,
/// reading only: no folder is created, no lock taken), checked the same
/// way: changes that no longer fit the file are refused.
fn overlay(cfg: &Config) -> Result<Overlay, ConfigError> {
    let path = cfg.state_dir().join(CHANGES_FILE);
    let at_state = |reason: String| {
        let mut e = ConfigError::at("node.state_dir", reason);
        e.file = cfg.label().to_string();
        e
    };
    let present = path.exists();
    let changes = Changes::load(&path).map_err(|e| at_state(format!("{e:#}")))?;
    let effective = changes.apply(cfg).and_then(|c| c.policy().map(|_| c)).map_err(|e| {
        at_state(format!(
            "{}: runtime changes over the config: {}: {}",
            path.display(),
            e.key,
            e.reason
        ))
    })?;
    Ok(Overlay::between(path, present, cfg, &effective))
}
