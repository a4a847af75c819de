//! `[cluster]`: the cluster bus (NATS, see [`crate::cluster::bus`]): which
//! servers, the cluster's name (subject prefix and key-value bucket), what
//! is shared, credentials, and its checks.
//!
//! A node without `nats` servers is a lone node: nothing else here is used.
//! Fixed until a restart (a SIGHUP that changes it names `cluster`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Largest `verified_rate` (sources published per second).
pub const MAX_VERIFIED_RATE: u32 = 1_000_000;

/// Largest `start_wait_ms`: a minute.
pub const MAX_START_WAIT_MS: u32 = 60_000;

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// NATS server URLs (`nats://host:port`, `tls://host:port`); empty: a
    /// lone node.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nats: Vec<String>,
    /// Subject prefix and key-value bucket name, the same on every node of
    /// a cluster: 1 to 32 letters, digits, `_` or `-`.
    pub name: String,
    /// Publish the sources this node verifies, insert the others'.
    pub share_verified: bool,
    /// Keep the REST API's configuration overlay in the bus's bucket.
    pub share_config: bool,
    /// A file holding the NATS server's token (`authorization { token }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// A NATS credentials file (JWT and NKey seed, `nsc` style).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds_file: Option<PathBuf>,
    /// A PEM file of CA certificates: the servers must speak TLS and
    /// present a certificate it signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// At most this many verified sources published per second; the rest
    /// are counted as dropped (`moat_cluster_verified_dropped_total`).
    pub verified_rate: u32,
    /// How long start-up waits for the bus (connect and read the bucket)
    /// before the API opens; past it the node starts alone and joins when
    /// the bus answers.
    pub start_wait_ms: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats: Vec::new(),
            name: "moat".into(),
            share_verified: true,
            share_config: true,
            token_file: None,
            creds_file: None,
            tls_ca_file: None,
            verified_rate: 20_000,
            start_wait_ms: 3_000,
        }
    }
}

impl ClusterConfig {
    /// Whether the node joins a bus.
    pub fn enabled(&self) -> bool {
        !self.nats.is_empty()
    }
}

/// Checks `[cluster]`; relative paths are resolved against `base`.
pub(super) fn validate(c: &ClusterConfig, base: &std::path::Path) -> Result<(), ConfigError> {
    let ok =
        (1..=32).contains(&c.name.len()) && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "_-".contains(ch));
    if !ok {
        return Err(ConfigError::at(
            "cluster.name",
            format!(
                "\"{}\": 1 to 32 letters, digits, `_` or `-` (a NATS subject token and bucket name)",
                c.name
            ),
        ));
    }
    for (i, u) in c.nats.iter().enumerate() {
        server_url(u).map_err(|r| ConfigError::at(format!("cluster.nats[{i}]"), r))?;
    }
    if c.token_file.is_some() && c.creds_file.is_some() {
        return Err(ConfigError::at(
            "cluster.creds_file",
            "give token_file or creds_file, not both",
        ));
    }
    for (key, p) in [
        ("cluster.token_file", &c.token_file),
        ("cluster.creds_file", &c.creds_file),
        ("cluster.tls_ca_file", &c.tls_ca_file),
    ] {
        if let Some(p) = p {
            let bytes = super::read_small_file(&base.join(p), "file").map_err(|r| ConfigError::at(key, r))?;
            if String::from_utf8_lossy(&bytes).trim().is_empty() {
                return Err(ConfigError::at(key, format!("{}: empty file", p.display())));
            }
        }
    }
    if !(1..=MAX_VERIFIED_RATE).contains(&c.verified_rate) {
        return Err(ConfigError::at(
            "cluster.verified_rate",
            format!("{} is out of range 1..={MAX_VERIFIED_RATE}", c.verified_rate),
        ));
    }
    if c.start_wait_ms > MAX_START_WAIT_MS {
        return Err(ConfigError::at(
            "cluster.start_wait_ms",
            format!("{} is out of range 0..={MAX_START_WAIT_MS}", c.start_wait_ms),
        ));
    }
    Ok(())
}

/// A NATS server URL: `nats://` or `tls://`, a host, an optional port.
fn server_url(u: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("\"{u}\": {e}"))?;
    if !matches!(url.scheme(), "nats" | "tls") {
        return Err(format!("\"{u}\": the scheme must be nats:// or tls://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{u}\": no host"));
    }
    if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
        return Err(format!("\"{u}\": a server URL has no path or query"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: &ClusterConfig) -> Result<(), String> {
        validate(c, std::path::Path::new(".")).map_err(|e| format!("{}: {}", e.key, e.reason))
    }

    #[test]
    fn defaults_are_a_lone_node_and_valid() {
        let c = ClusterConfig::default();
        assert!(!c.enabled());
        check(&c).unwrap();
        let c = ClusterConfig {
            nats: vec!["nats://127.0.0.1:4222".into(), "tls://nats.example:4443".into()],
            name: "scrub-eu".into(),
            ..ClusterConfig::default()
        };
        assert!(c.enabled());
        check(&c).unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |f: fn(&mut ClusterConfig), want: &str| {
            let mut c = ClusterConfig::default();
            f(&mut c);
            let e = check(&c).unwrap_err();
            assert!(e.contains(want), "{e} lacks {want}");
        };
        bad(|c| c.name = "scrub.eu".into(), "cluster.name: \"scrub.eu\"");
        bad(|c| c.name = String::new(), "cluster.name");
        bad(
            |c| c.nats = vec!["http://x:1".into()],
            "cluster.nats[0]: \"http://x:1\": the scheme",
        );
        bad(|c| c.nats = vec!["nats://".into()], "cluster.nats[0]");
        bad(|c| c.nats = vec!["nats://h:4222/x".into()], "no path");
        bad(|c| c.nats = vec!["not a url".into()], "cluster.nats[0]");
        bad(|c| c.verified_rate = 0, "cluster.verified_rate: 0 is out of range");
        bad(|c| c.start_wait_ms = 60_001, "cluster.start_wait_ms");
        bad(
            |c| c.token_file = Some("/nonexistent/moat-token".into()),
            "cluster.token_file",
        );
        bad(
            |c| {
                c.token_file = Some("a".into());
                c.creds_file = Some("b".into());
            },
            "not both",
        );
    }
}
