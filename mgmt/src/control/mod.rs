//! Live changes: [`Control`] owns the node's effective configuration (the
//! config file plus the persisted runtime changes, [`changes`]), and turns
//! every change into a new policy snapshot for the workers.
//!
//! Contract:
//! - One writer at a time (a mutex, management side only); readers of the
//!   policy (the workers) never wait: the snapshot is swapped through the
//!   runtime's `ArcSwap` and picked up at the next burst.
//! - A change is validated exactly as the config file is
//!   ([`Config::revalidated`], then [`Config::policy`], the start-up code
//!   path), persisted atomically, and only then published. A refused change
//!   changes nothing; a change that cannot be stored is not applied.
//! - Publishing keeps what only the running snapshot knows: the cookie
//!   secrets (rotated by [`crate::node::Node::rotate_if_due`]), the node's own
//!   addresses with the ports' real MACs, and the dynamic signatures. Both
//!   writers go through `ArcSwap::rcu`, so neither undoes the other.
//! - Escalations ([`Escalation`]) are temporary countermeasures set by
//!   detection: merged over the configured policy when the snapshot is
//!   built, never persisted, never shown as configuration.
//! - A reload of the config file ([`Control::reload`], SIGHUP) is one more
//!   change: its live parts ([`reload`]) go through the same validation,
//!   storage and publication as a REST change.
//! - The stored overlay stays as small as the changes it holds: a service
//!   created and then deleted at run time leaves nothing behind
//!   ([`Changes::compact`]).
//! - The cluster bus shares the overlay ([`shared`]): every REST change is
//!   told to the [`Sharer`] once applied; changes from other nodes come in
//!   through [`Control::apply_shared`], the same validation, storage and
//!   publication, and are not told back.

pub mod changes;
pub mod reload;
pub mod shared;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use classifier::fingerprint::{TcpRule, UdpRule};
use classifier::policy::{Policy, SynAuth};
use dataplane::pipeline::ServiceCounters;
use serde::Serialize;

pub use changes::{Changes, Rules};
pub use shared::{SharedKey, SharedValue, Sharer};

use crate::config::{Config, ConfigError, OriginConfig, ServiceConfig};
use crate::metrics::Counters;

/// File of the runtime changes, under `[node] state_dir`.
pub const CHANGES_FILE: &str = "changes.json";

/// Temporary countermeasures for one service, merged over its configured
/// policy while set (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Escalation {
    /// SYN authentication mode in force instead of the configured one.
    pub syn_auth: Option<SynAuth>,
    /// Fingerprint deny rules added to the node's (the classifier's
    /// fingerprint rules are node-wide, so these apply to every service).
    pub deny_tcp: Vec<TcpRule>,
    pub deny_udp: Vec<UdpRule>,
    /// The auto-blacklist turned on (with the defaults of
    /// [`crate::config::BlacklistConfig`]) where the service has none.
    pub blacklist: bool,
}

impl Escalation {
    pub fn is_empty(&self) -> bool {
        self.syn_auth.is_none() && self.deny_tcp.is_empty() && self.deny_udp.is_empty() && !self.blacklist
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Bad value: the field (as the request names it) and the reason.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("no {what} named \"{name}\"")]
    NotFound { what: &'static str, name: String },
    #[error("a {what} named \"{name}\" exists already")]
    Exists { what: &'static str, name: String },
    /// `If-Match` named another version; the current one is given.
    #[error("the resource changed (current ETag {current})")]
    Stale { current: String },
    /// The change could not be stored; nothing was changed.
    #[error("cannot store the change: {0}")]
    Storage(String),
}

/// What [`Control::load`] found before the workers start.
#[derive(Debug)]
pub struct Startup {
    file: Config,
    changes: Changes,
    effective: Config,
    path: PathBuf,
}

impl Startup {
    /// The config the node starts with: the file plus the changes.
    pub fn config(&self) -> &Config {
        &self.effective
    }

    /// The runtime changes applied over the file.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Where the runtime changes are stored.
    pub fn changes_path(&self) -> &std::path::Path {
        &self.path
    }
}

/// What a reload of the config file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Whether anything live changed (a new policy was published).
    pub changed: bool,
    /// Keys whose new values need a restart and were not applied.
    pub restart_needed: Vec<String>,
}

/// A validated change, not yet stored or published.
#[derive(Debug)]
struct Prepared {
    changes: Changes,
    effective: Config,
    escalations: BTreeMap<String, Escalation>,
    policy: Policy,
}

#[derive(Debug)]
struct Inner {
    file: Config,
    changes: Changes,
    effective: Config,
    escalations: BTreeMap<String, Escalation>,
    book: PassedBook,
    /// Per-service traffic (packets, bytes, drops), carried by name across
    /// service changes like `book`.
    traffic: [PassedBook; 3],
}

/// The node's live configuration (see the module doc).
#[derive(Debug)]
pub struct Control {
    inner: Mutex<Inner>,
    policy: Arc<ArcSwap<Policy>>,
    counters: Arc<Counters>,
    generation: AtomicU64,
    path: PathBuf,
    /// The cluster bus, once it joined (see [`Control::set_sharer`]).
    sharer: std::sync::OnceLock<Arc<dyn Sharer>>,
}

/// A strong ETag of `v`'s JSON form: it changes whenever the resource does.
pub fn etag<T: Serialize>(v: &T) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(v).unwrap_or_default().hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// `If-Match` against the current ETag: absent or `*` always matches.
fn check(if_match: Option<&str>, current: &str) -> Result<(), ControlError> {
    match if_match {
        None => Ok(()),
        Some(m) if m.split(',').map(str::trim).any(|t| t == "*" || t == current) => Ok(()),
        Some(_) => Err(ControlError::Stale {
            current: current.to_string(),
        }),
    }
}

/// A config error as the request names the field: `services[3].allow[0]`
/// becomes `allow[0]` for a service request (`strip`: `services[3]`).
fn invalid(e: ConfigError, strip: Option<&str>) -> ControlError {
    let field = match strip {
        Some(p) if e.key == p => String::new(),
        Some(p) => e.key.strip_prefix(&format!("{p}.")).unwrap_or(&e.key).to_string(),
        None => match e.key.as_str() {
            "dataplane.global_pps" => "global_pps".to_string(),
            k => k.to_string(),
        },
    };
    ControlError::Invalid {
        field,
        reason: e.reason,
    }
}

impl Control {
    /// Reads the runtime changes of `file`'s state dir and applies them.
    /// Errors: an unreadable changes file, or changes that no longer fit
    /// the file (named, with the key and reason).
    /// A state folder someone else controls is refused before anything is
    /// read from it ([`crate::persist::StateDir`]).
    pub fn load(file: Config) -> anyhow::Result<Startup> {
        crate::persist::StateDir::check_existing(&file.state_dir())?;
        let path = file.state_dir().join(CHANGES_FILE);
        let mut changes = Changes::load(&path)?;
        changes.compact(&file);
        let effective = changes.apply(&file).and_then(|c| c.policy().map(|_| c)).map_err(|e| {
            anyhow::anyhow!(
                "{}: runtime changes over the config: {}: {}",
                path.display(),
                e.key,
                e.reason
            )
        })?;
        Ok(Startup {
            file,
            changes,
            effective,
            path,
        })
    }

    /// Takes over a started node's policy handle and counters.
    pub fn new(s: Startup, policy: Arc<ArcSwap<Policy>>, counters: Arc<Counters>) -> Control {
        let names: Vec<String> = s.effective.services.iter().map(|x| x.name.clone()).collect();
        Control {
            inner: Mutex::new(Inner {
                file: s.file,
                changes: s.changes,
                effective: s.effective,
                escalations: BTreeMap::new(),
                traffic: [0, 1, 2].map(|_| PassedBook::new(names.clone())),
                book: PassedBook::new(names),
            }),
            policy,
            counters,
            generation: AtomicU64::new(0),
            path: s.path,
            sharer: std::sync::OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock left `Inner` as it was before the
        // change (changes are applied to copies first): keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long a source stays verified (the running policy's TTL, ns).
    pub fn verified_ttl(&self) -> u64 {
        self.policy.load().timeouts.verified_ttl
    }

    /// Policy snapshots published since start-up.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// The effective configuration (file plus runtime changes, without
    /// escalations).
    pub fn config(&self) -> Config {
        self.lock().effective.clone()
    }

    pub fn services(&self) -> Vec<ServiceConfig> {
        self.lock().effective.services.clone()
    }

    pub fn service(&self, name: &str) -> Option<ServiceConfig> {
        self.lock().effective.services.iter().find(|s| s.name == name).cloned()
    }

    pub fn origins(&self) -> Vec<OriginConfig> {
        self.lock().effective.origins.clone()
    }

    pub fn rules(&self) -> Rules {
        Rules::of(&self.lock().effective)
    }

    /// Creates a service; refused when the name exists.
    pub fn create_service(&self, s: ServiceConfig) -> Result<ServiceConfig, ControlError> {
        let mut g = self.lock();
        if g.effective.services.iter().any(|x| x.name == s.name) {
            return Err(ControlError::Exists {
                what: "service",
                name: s.name,
            });
        }
        let mut changes = g.changes.clone();
        changes.set_service(&s.name, Some(s.clone()));
        let p = self.prepare(&g, changes, Some(&s.name))?;
        self.commit(&mut g, p)?;
        drop(g);
        self.tell(SharedKey::Service(s.name.clone()), false);
        Ok(s)
    }

    /// Replaces service `name` (the body's name must be `name`). The
    /// request is judged on its content first: an invalid body is refused
    /// as such whatever its `If-Match`.
    pub fn update_service(
        &self,
        name: &str,
        s: ServiceConfig,
        if_match: Option<&str>,
    ) -> Result<ServiceConfig, ControlError> {
        let mut g = self.lock();
        let current = etag(find(&g, name)?);
        if s.name != name {
            return Err(ControlError::Invalid {
                field: "name".into(),
                reason: format!(
                    "\"{}\" differs from the name in the path (\"{name}\"); renaming is delete and create",
                    s.name
                ),
            });
        }
        let mut changes = g.changes.clone();
        changes.set_service(name, Some(s.clone()));
        let p = self.prepare(&g, changes, Some(name))?;
        check(if_match, &current)?;
        self.commit(&mut g, p)?;
        drop(g);
        self.tell(SharedKey::Service(name.to_string()), if_match.is_some());
        Ok(s)
    }

    /// Deletes service `name` (and its escalation).
    pub fn delete_service(&self, name: &str, if_match: Option<&str>) -> Result<(), ControlError> {
        let mut g = self.lock();
        let current = etag(find(&g, name)?);
        let mut changes = g.changes.clone();
        changes.set_service(name, None);
        let p = self.prepare(&g, changes, None)?;
        check(if_match, &current)?;
        self.commit(&mut g, p)?;
        drop(g);
        self.tell(SharedKey::Service(name.to_string()), if_match.is_some());
        Ok(())
    }

    /// Replaces the rule set.
    pub fn put_rules(&self, r: Rules, if_match: Option<&str>) -> Result<Rules, ControlError> {
        let mut g = self.lock();
        if i64::try_from(r.global_pps).is_err() {
            return Err(ControlError::Invalid {
                field: "global_pps".into(),
                reason: format!("{} is out of range 0..={}", r.global_pps, i64::MAX),
            });
        }
        let current = etag(&Rules::of(&g.effective));
        let mut changes = g.changes.clone();
        changes.rules = Some(r.clone());
        let p = self.prepare(&g, changes, None)?;
        check(if_match, &current)?;
        self.commit(&mut g, p)?;
        drop(g);
        self.tell(SharedKey::Rules, if_match.is_some());
        Ok(r)
    }

    /// Joins the cluster bus: every later REST change is told to `s`.
    /// Only the first call counts.
    pub fn set_sharer(&self, s: Arc<dyn Sharer>) {
        let _ = self.sharer.set(s);
    }

    fn tell(&self, key: SharedKey, if_match: bool) {
        if let Some(s) = self.sharer.get() {
            s.changed(key, if_match);
        }
    }

    /// The overlay's keys (what a node joining the bus offers).
    pub fn shared_keys(&self) -> Vec<SharedKey> {
        let g = self.lock();
        let services = g.changes.services.iter().map(|c| SharedKey::Service(c.name.clone()));
        g.changes
            .rules
            .iter()
            .map(|_| SharedKey::Rules)
            .chain(services)
            .collect()
    }

    /// The overlay's value of `key`: the rule set (`None`: the file's), or
    /// the service as changed (a deletion when the overlay has no entry
    /// left for it: created and deleted at run time).
    pub fn shared_value(&self, key: &SharedKey) -> SharedValue {
        let g = self.lock();
        match key {
            SharedKey::Rules => SharedValue::Rules(g.changes.rules.clone()),
            SharedKey::Service(n) => SharedValue::Service(Box::new(
                g.changes
                    .services
                    .iter()
                    .find(|c| &c.name == n)
                    .cloned()
                    .unwrap_or_else(|| changes::ServiceChange {
                        name: n.clone(),
                        service: None,
                    }),
            )),
        }
    }

    /// A change from another node (the bus): `Some` sets `key` to the
    /// value, `None` removes the overlay's entry (back to the file's).
    /// Validated, stored and published like a REST change, and not told
    /// to the sharer. Returns whether anything changed.
    pub fn apply_shared(&self, key: &SharedKey, v: Option<SharedValue>) -> Result<bool, ControlError> {
        let mut g = self.lock();
        let mut changes = g.changes.clone();
        let service = match (key, v) {
            (SharedKey::Rules, Some(SharedValue::Rules(r))) => {
                changes.rules = r;
                None
            }
            (SharedKey::Rules, None) => {
                changes.rules = None;
                None
            }
            (SharedKey::Service(n), Some(SharedValue::Service(c))) if &c.name == n => {
                changes.set_service(n, c.service);
                Some(n.as_str())
            }
            (SharedKey::Service(n), None) => {
                changes.services.retain(|c| &c.name != n);
                None
            }
            (_, Some(_)) => {
                return Err(ControlError::Invalid {
                    field: String::new(),
                    reason: "the value does not belong to the key".into(),
                })
            }
        };
        let p = self.prepare(&g, changes, service)?;
        if p.changes == g.changes {
            return Ok(false);
        }
        self.commit(&mut g, p)?;
        Ok(true)
    }

    /// Sets (`Some`) or clears (`None`) the temporary countermeasures of
    /// `service` and publishes a new snapshot. Not persisted: a restart
    /// starts without escalations (detection sets them again if the attack
    /// goes on).
    pub fn set_escalation(&self, service: &str, e: Option<Escalation>) -> Result<(), ControlError> {
        let mut g = self.lock();
        // Clearing always works (the service may have been deleted since).
        if e.is_some() && !g.effective.services.iter().any(|s| s.name == service) {
            return Err(ControlError::NotFound {
                what: "service",
                name: service.to_string(),
            });
        }
        let mut esc = g.escalations.clone();
        match e {
            Some(e) => esc.insert(service.to_string(), e),
            None => esc.remove(service),
        };
        let policy = build(&g.effective, &esc).map_err(|e| invalid(e, None))?;
        g.escalations = esc;
        self.publish(policy);
        Ok(())
    }

    /// The escalations in force, by service.
    pub fn escalations(&self) -> BTreeMap<String, Escalation> {
        self.lock().escalations.clone()
    }

    /// Reloads the config file (SIGHUP): `file` as newly read and
    /// validated. Its live parts are applied exactly as a REST change is
    /// (validated with the runtime changes over them, stored, published);
    /// the parts that need a restart keep their running values and are
    /// named in the result. Errors: the runtime changes no longer fit the
    /// new file; nothing is changed then.
    pub fn reload(&self, file: Config) -> Result<Reloaded, ControlError> {
        let mut g = self.lock();
        let (file, restart_needed) = reload::live_part(&g.file, &file);
        if file == g.file {
            return Ok(Reloaded {
                changed: false,
                restart_needed,
            });
        }
        let p = self.prepare_over(&g, &file, g.changes.clone(), None)?;
        self.commit(&mut g, p)?;
        g.file = file;
        Ok(Reloaded {
            changed: true,
            restart_needed,
        })
    }

    /// Validates `changes` over the file (nothing is changed yet).
    /// `service`: the name of the service being written, for error fields.
    fn prepare(&self, g: &Inner, changes: Changes, service: Option<&str>) -> Result<Prepared, ControlError> {
        self.prepare_over(g, &g.file, changes, service)
    }

    /// [`Control::prepare`] over `file` rather than the running file.
    fn prepare_over(
        &self,
        g: &Inner,
        file: &Config,
        mut changes: Changes,
        service: Option<&str>,
    ) -> Result<Prepared, ControlError> {
        changes.compact(file);
        let strip = service.and_then(|n| {
            let cfg_services = changes_order(file, &changes);
            cfg_services
                .iter()
                .position(|x| x == n)
                .map(|i| format!("services[{i}]"))
        });
        let effective = changes.apply(file).map_err(|e| invalid(e, strip.as_deref()))?;
        let mut escalations = g.escalations.clone();
        escalations.retain(|name, _| effective.services.iter().any(|s| &s.name == name));
        let policy = build(&effective, &escalations).map_err(|e| invalid(e, strip.as_deref()))?;
        Ok(Prepared {
            changes,
            effective,
            escalations,
            policy,
        })
    }

    /// Stores prepared changes, then publishes them.
    fn commit(&self, g: &mut Inner, p: Prepared) -> Result<(), ControlError> {
        p.changes
            .save(&self.path)
            .map_err(|e| ControlError::Storage(format!("{}: {e}", self.path.display())))?;
        let names: Vec<String> = p.effective.services.iter().map(|s| s.name.clone()).collect();
        if names != g.book.names {
            let (t, _) = self.counters.snapshot(g.book.names.len());
            for (i, b) in g.traffic.iter_mut().enumerate() {
                b.rebase(&traffic_column(&t.services, i), names.clone());
            }
            g.book.rebase(&t.passed, names);
        }
        g.changes = p.changes;
        g.effective = p.effective;
        g.escalations = p.escalations;
        self.publish(p.policy);
        Ok(())
    }

    /// Stores `p` as the workers' snapshot, keeping the running one's
    /// secrets, own addresses and signatures.
    fn publish(&self, p: Policy) {
        self.policy.rcu(|cur| {
            let mut n = p.clone();
            n.secrets = cur.secrets.clone();
            n.own_addrs = cur.own_addrs.clone();
            n.signatures = cur.signatures.clone();
            n
        });
        self.generation.fetch_add(1, Relaxed);
    }

    /// Names of the services in policy order (the workers' per-service
    /// counter indices).
    pub fn service_names(&self) -> Vec<String> {
        self.lock().book.names.clone()
    }

    /// Packets passed per service since start-up, by name, from the
    /// per-index counters `passed` (read with [`Control::service_names`]'s
    /// length): counts survive services being added and removed.
    pub fn passed_by_service(&self, passed: &[u64]) -> Vec<(String, u64)> {
        self.lock().book.totals(passed)
    }

    /// Traffic addressed to each service since start-up, by name, from
    /// the per-index counters `services` (read with
    /// [`Control::service_names`]'s length): packets, bytes and drops,
    /// carried across service changes as [`Control::passed_by_service`].
    pub fn traffic_by_service(&self, services: &[ServiceCounters]) -> Vec<ServiceTraffic> {
        let g = self.lock();
        let [p, b, d] = [0, 1, 2].map(|i| g.traffic[i].totals(&traffic_column(services, i)));
        p.into_iter()
            .zip(b)
            .zip(d)
            .map(|(((name, packets), (_, bytes)), (_, dropped))| ServiceTraffic {
                name,
                packets,
                bytes,
                dropped,
            })
            .collect()
    }
}

/// One service's traffic since start-up (see
/// [`Control::traffic_by_service`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTraffic {
    pub name: String,
    /// Packets addressed to the service, whatever became of them.
    pub packets: u64,
    /// Their bytes as received (whole frames).
    pub bytes: u64,
    /// Those dropped, every reason.
    pub dropped: u64,
}

/// Column `i` of the traffic books: 0 packets, 1 bytes, 2 drops.
fn traffic_column(services: &[ServiceCounters], i: usize) -> Vec<u64> {
    services
        .iter()
        .map(|c| match i {
            0 => c.packets,
            1 => c.bytes,
            _ => c.dropped,
        })
        .collect()
}

/// Service `name` of the effective config.
fn find<'a>(g: &'a Inner, name: &str) -> Result<&'a ServiceConfig, ControlError> {
    g.effective
        .services
        .iter()
        .find(|x| x.name == name)
        .ok_or_else(|| ControlError::NotFound {
            what: "service",
            name: name.to_string(),
        })
}

/// The service names of `file` with `changes` applied, in config order.
fn changes_order(file: &Config, changes: &Changes) -> Vec<String> {
    let mut names: Vec<String> = file.services.iter().map(|s| s.name.clone()).collect();
    for c in &changes.services {
        let at = names.iter().position(|n| n == &c.name);
        match (at, &c.service) {
            (None, Some(_)) => names.push(c.name.clone()),
            (Some(i), None) => {
                names.remove(i);
            }
            _ => {}
        }
    }
    names
}

/// The policy of `cfg` (the start-up code path) with `esc` merged over it.
fn build(cfg: &Config, esc: &BTreeMap<String, Escalation>) -> Result<Policy, ConfigError> {
    let mut p = cfg.policy()?;
    for (name, e) in esc {
        if let Some(s) = p.services.iter_mut().find(|s| &s.name == name) {
            if let Some(mode) = e.syn_auth {
                s.syn_auth = mode;
            }
            if e.blacklist && s.blacklist.is_none() {
                s.blacklist = Some(crate::config::BlacklistConfig::default().rule());
            }
        }
        for r in &e.deny_tcp {
            if !p.tcp_deny.contains(r) {
                p.tcp_deny.push(*r);
            }
        }
        for r in &e.deny_udp {
            if !p.udp_deny.contains(r) {
                p.udp_deny.push(*r);
            }
        }
    }
    Ok(p)
}

/// Per-service passed counts across service changes. The workers count by
/// service index; when the service list changes, the counts so far are
/// carried under each name and the indices start again from a base. Counts
/// in the few microseconds between the rebase and a worker's pick-up of the
/// new snapshot go to the new holder of the index.
#[derive(Debug)]
struct PassedBook {
    names: Vec<String>,
    base: Vec<u64>,
    carried: BTreeMap<String, u64>,
}

impl PassedBook {
    fn new(names: Vec<String>) -> Self {
        PassedBook {
            base: vec![0; names.len()],
            names,
            carried: BTreeMap::new(),
        }
    }

    fn since_base(cur: u64, base: u64) -> u64 {
        // A worker's counter below the base was reset (its index was
        // truncated and grown again): it counts from zero.
        if cur >= base {
            cur - base
        } else {
            cur
        }
    }

    fn totals(&self, cur: &[u64]) -> Vec<(String, u64)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let now = Self::since_base(cur.get(i).copied().unwrap_or(0), self.base.get(i).copied().unwrap_or(0));
                (n.clone(), self.carried.get(n).copied().unwrap_or(0) + now)
            })
            .collect()
    }

    fn rebase(&mut self, cur: &[u64], names: Vec<String>) {
        for (n, v) in self.totals(cur) {
            self.carried.insert(n, v);
        }
        self.carried.retain(|n, _| names.contains(n));
        self.base = (0..names.len()).map(|i| cur.get(i).copied().unwrap_or(0)).collect();
        self.names = names;
    }
}

#[cfg(test)]
mod tests;
