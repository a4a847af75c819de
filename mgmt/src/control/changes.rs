//! The runtime changes: what the REST API changed over the config file,
//! kept as an overlay (services created, replaced or deleted by name; the
//! rule set replaced as a whole), persisted as JSON under `[node]
//! state_dir` and applied over the file at start-up.
//!
//! An overlay rather than a copy of the whole config: an operator's later
//! edit of the file still takes effect for everything the API did not
//! touch. When the file and the overlay no longer fit together (the file
//! dropped an origin a runtime service uses), start-up is refused with the
//! state file named, rather than silently dropping a change.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{AclConfig, Config, ConfigError, FingerprintConfig, ServiceConfig};

/// Version of the file format.
const FORMAT: u32 = 1;

/// The rule set as one resource: ACL, fingerprint deny rules, global cap.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub acl: AclConfig,
    pub fingerprints: FingerprintConfig,
    /// `[dataplane] global_pps`: emergency cap on all traffic, 0 = none.
    pub global_pps: u64,
}

impl Rules {
    pub fn of(cfg: &Config) -> Rules {
        Rules {
            acl: cfg.acl.clone(),
            fingerprints: cfg.fingerprints.clone(),
            global_pps: cfg.dataplane.global_pps,
        }
    }

    fn apply(&self, cfg: &mut Config) {
        cfg.acl = self.acl.clone();
        cfg.fingerprints = self.fingerprints.clone();
        cfg.dataplane.global_pps = self.global_pps;
    }
}

/// One service's runtime change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceChange {
    pub name: String,
    /// The service as it now is; `None`: deleted.
    pub service: Option<ServiceConfig>,
}

/// Every runtime change (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    pub format: u32,
    /// In the order of each name's first change.
    #[serde(default)]
    pub services: Vec<ServiceChange>,
    #[serde(default)]
    pub rules: Option<Rules>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            format: FORMAT,
            services: Vec::new(),
            rules: None,
        }
    }
}

impl Changes {
    /// Reads the changes at `path` (none when there is no file).
    pub fn load(path: &Path) -> anyhow::Result<Changes> {
        let Some(bytes) =
            crate::persist::read_optional(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        else {
            return Ok(Changes::default());
        };
        let c: Changes = serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(
            c.format == FORMAT,
            "{}: format {} (this version reads {FORMAT})",
            path.display(),
            c.format
        );
        Ok(c)
    }

    /// Writes the changes to `path` atomically (owner-only: they are the
    /// node's policy).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::persist::write_atomic(path, &text, 0o600)
    }

    /// Records that service `name` is now `service` (`None`: deleted).
    pub fn set_service(&mut self, name: &str, service: Option<ServiceConfig>) {
        match self.services.iter_mut().find(|c| c.name == name) {
            Some(c) => c.service = service,
            None => self.services.push(ServiceChange {
                name: name.to_string(),
                service,
            }),
        }
    }

    /// Drops what `file` makes needless: the deletion of a service the file
    /// does not have (created and deleted at run time, or since removed
    /// from the file). Everything else stays: a deleted file service needs
    /// its tombstone, and a created or replaced one its content. The
    /// overlay then holds at most one entry per service of the file or of
    /// the running set, however many changes were made.
    pub fn compact(&mut self, file: &Config) {
        self.services
            .retain(|c| c.service.is_some() || file.services.iter().any(|s| s.name == c.name));
    }

    /// `file` with the changes applied, validated as a file would be.
    pub fn apply(&self, file: &Config) -> Result<Config, ConfigError> {
        let mut cfg = file.clone();
        for c in &self.services {
            let at = cfg.services.iter().position(|s| s.name == c.name);
            match (at, &c.service) {
                (Some(i), Some(s)) => cfg.services[i] = s.clone(),
                (None, Some(s)) => cfg.services.push(s.clone()),
                (Some(i), None) => {
                    cfg.services.remove(i);
                }
                (None, None) => {}
            }
        }
        if let Some(r) = &self.rules {
            r.apply(&mut cfg);
        }
        cfg.revalidated()
    }
}
