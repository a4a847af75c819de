//! `moat check --config FILE`: validates a config file and builds its policy
//! without starting anything, so that a bad file is caught before a deploy.
//!
//! Contract: on success prints one line, `FILE: ok (...)`, and returns
//! `Ok`; on failure returns the [`ConfigError`] (`file:line:col: key:
//! reason`), which the binary prints and maps to exit code 2.

use std::path::PathBuf;

use crate::config::{Config, ConfigError};

/// Arguments of `moat check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}

/// Loads and validates the file, builds its policy, prints the summary.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    println!("{}", check(args)?);
    Ok(())
}

/// The summary line of a sound config, or why it is not.
pub fn check(args: &CheckArgs) -> Result<String, ConfigError> {
    let cfg = Config::load(&args.config)?;
    let policy = cfg.policy()?;
    let fingerprints = cfg.fingerprints.deny_tcp.len() + cfg.fingerprints.deny_udp.len();
    Ok(format!(
        "{}: ok ({} services, {} origins, {} ACL rules, {} fingerprint rules, backend {}, {} workers, {})",
        args.config.display(),
        policy.services.len(),
        policy.origins.len(),
        policy.acl.rules().count(),
        fingerprints,
        cfg.dataplane.backend.as_str(),
        cfg.dataplane.workers,
        cfg.secret_source(),
    ))
}
