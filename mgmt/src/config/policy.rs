//! Building the classifier's [`Policy`] snapshot from a validated config:
//! origins, services (VIP index, port bitsets, payload rules, limits), ACL,
//! fingerprint deny rules, the node's own addresses, sanity settings,
//! timeouts, the global cap and the SYN cookie secret.
//!
//! Contract: building reads no clock and no file other than the cookie
//! secret file; the same config and the same secret file give the same
//! policy. Without a secret file the key is random, drawn once per process
//! (not once per build), so rebuilding the policy on a runtime change does
//! not invalidate the cookies already in flight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use classifier::acl::AclAction;
use classifier::cookie::{CookieSecrets, Key};
use classifier::policy::{Limits, Origin, PayloadRule, PolicyError, Sanity, Service, Timeouts};
use classifier::time::SECOND;
use classifier::Policy;

use super::values::Proto;
use super::{Config, ConfigError, ServiceConfig};

/// Least secret material accepted in a cookie secret file: 16 bytes, the
/// size of the SipHash key derived from it.
const MIN_SECRET_LEN: usize = 16;

/// Where the SYN cookie key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Derived from this file (shared by the nodes of a cluster).
    File(PathBuf),
    /// Random, drawn once per process: cookies are valid on this node only.
    Random,
}

impl core::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "secret from {}", p.display()),
            SecretSource::Random => f.write_str("random secret (this node only)"),
        }
    }
}

/// The cookie secrets a cluster's secret file gives: the key every node and
/// `moat gen --secret-file` derive from it (one function for both, so that
/// they can never disagree).
pub fn secrets_from_file(path: &Path) -> Result<CookieSecrets, String> {
    read_secret(path).map(|m| CookieSecrets::new(CookieSecrets::derive_key(&m)))
}

/// The secret material of `path`, without surrounding whitespace: a file
/// written by `echo` and one written by `printf` give the same key on every
/// node.
pub(super) fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = super::files::read_small_file(path, "secret file")?;
    let material = bytes.trim_ascii();
    if material.len() < MIN_SECRET_LEN {
        return Err(format!(
            "secret file {}: {} bytes of secret, need at least {MIN_SECRET_LEN}",
            path.display(),
            material.len()
        ));
    }
    Ok(material.to_vec())
}

/// Random secret material, drawn once per process.
fn random_material() -> Vec<u8> {
    static RANDOM: OnceLock<[u8; 32]> = OnceLock::new();
    RANDOM.get_or_init(rand::random).to_vec()
}

impl Config {
    /// The material SYN cookie keys are derived from: the cluster's secret
    /// file, or random bytes drawn once per process.
    pub fn cookie_material(&self) -> Result<Vec<u8>, ConfigError> {
        match self.secret_source() {
            SecretSource::File(p) => read_secret(&p).map_err(|r| {
                let mut e = ConfigError::at("node.cookie_secret_file", r);
                e.file.clone_from(&self.label);
                e
            }),
            SecretSource::Random => Ok(random_material()),
        }
    }
}

/// The cookie secrets in force at `now` with rotation every `rotate_secs`
/// (0: never): epoch `e = now / rotate_secs` uses the key derived from the
/// material and `e`, the previous epoch's key stays valid, and the
/// generation is `e`, so that every node sharing the material agrees on
/// keys and on the generation bit inside the cookies.
pub fn secrets_at(material: &[u8], rotate_secs: u32, now: classifier::time::Nanos) -> CookieSecrets {
    if rotate_secs == 0 {
        return CookieSecrets::new(CookieSecrets::derive_key(material));
    }
    let epoch = now / (u64::from(rotate_secs) * SECOND);
    let key = |e: u64| {
        let mut m = material.to_vec();
        m.extend_from_slice(b"/moat-cookie-epoch/");
        m.extend_from_slice(&e.to_be_bytes());
        CookieSecrets::derive_key(&m)
    };
    CookieSecrets {
        current: key(epoch),
        previous: key(epoch.saturating_sub(1)),
        generation: epoch,
    }
}

fn cookie_key(cfg: &Config) -> Result<Key, ConfigError> {
    static RANDOM: OnceLock<Key> = OnceLock::new();
    match cfg.secret_source() {
        SecretSource::File(p) => read_secret(&p)
            .map(|m| CookieSecrets::derive_key(&m))
            .map_err(|r| ConfigError::at("node.cookie_secret_file", r)),
        SecretSource::Random => Ok(*RANDOM.get_or_init(rand::random)),
    }
}

/// Builds the policy of `cfg`.
pub(super) fn build(cfg: &Config) -> Result<Policy, ConfigError> {
    let mut p = Policy::new(CookieSecrets::new(cookie_key(cfg)?));
    let mut origin_ids = HashMap::new();
    for o in &cfg.origins {
        let id = p.add_origin(Origin {
            name: o.name.clone(),
            tunnel_src: o.tunnel_src,
            tunnel_dst: o.tunnel_dst,
            key: o.key,
            mtu: o.mtu,
        });
        origin_ids.insert(o.name.as_str(), id);
    }
    for (i, s) in cfg.services.iter().enumerate() {
        let origin = *origin_ids.get(s.origin.as_str()).ok_or_else(|| {
            ConfigError::at(
                format!("services[{i}].origin"),
                format!("unknown origin \"{}\"", s.origin),
            )
        })?;
        let service = service(i, s, origin)?;
        p.add_service(service).map_err(|e| match e {
            PolicyError::DuplicateVip(ip) => {
                ConfigError::at(format!("services[{i}].vip"), format!("duplicate VIP {ip}"))
            }
            other => ConfigError::at(format!("services[{i}]"), other.to_string()),
        })?;
    }
    for net in &cfg.acl.allow {
        p.acl.insert(net.0, AclAction::Allow);
    }
    for net in &cfg.acl.deny {
        p.acl.insert(net.0, AclAction::Deny);
    }
    p.tcp_deny = cfg.fingerprints.deny_tcp.iter().map(|r| r.0).collect();
    p.udp_deny = cfg.fingerprints.deny_udp.iter().map(|r| r.0).collect();
    // The ports' addresses (ARP) and IPv6 addresses (neighbour discovery)
    // with their MACs. Without a configured MAC this is the index-derived
    // default; a backend that reads the interface's MAC at start-up
    // rebuilds them with it (`node::plan`): the link-local address must
    // come from the real MAC.
    p.own_addrs = [&cfg.outside, &cfg.inside]
        .into_iter()
        .flat_map(|port| port.own_addrs(port.mac_or_default()))
        .collect();
    let d = &cfg.dataplane;
    p.sanity = Sanity {
        min_ttl: d.min_ttl,
        fragments: d.fragments,
        verify_ip_checksum: d.verify_ip_checksum,
    };
    p.timeouts = Timeouts {
        verified_ttl: u64::from(d.verified_ttl_secs) * SECOND,
        flow_idle: u64::from(d.flow_idle_secs) * SECOND,
    };
    p.global_pps = d.global_pps;
    Ok(p)
}

fn service(i: usize, s: &ServiceConfig, origin: u16) -> Result<Service, ConfigError> {
    let mut svc = Service::new(&s.name, s.vip, origin);
    for spec in &s.allow {
        match spec.proto {
            Proto::Tcp => svc.tcp_ports.insert_range(spec.lo, spec.hi),
            Proto::Udp => svc.udp_ports.insert_range(spec.lo, spec.hi),
            Proto::Icmp => svc.icmp = true,
        }
    }
    for spec in s.allow_src_ports.iter().filter(|p| p.proto == Proto::Udp) {
        svc.allow_src_ports.insert_range(spec.lo, spec.hi);
    }
    svc.syn_auth = s.syn_auth;
    svc.limits = Limits::from(&s.limits);
    svc.blacklist = s.blacklist.as_ref().map(super::BlacklistConfig::rule);
    for (j, r) in s.payload_rules.iter().enumerate() {
        let all_ones;
        let mask = match &r.mask {
            Some(m) => m.0.as_slice(),
            None => {
                all_ones = vec![0xff; r.value.0.len()];
                all_ones.as_slice()
            }
        };
        // Validation checked the port, lengths and offset; `None` here means
        // the config was edited after validation.
        let rule = PayloadRule::new(r.port.lo, r.offset, &r.value.0, mask).ok_or_else(|| {
            ConfigError::at(
                format!("services[{i}].payload_rules[{j}]"),
                format!(
                    "value and mask must be 1 to {} bytes of equal length",
                    PayloadRule::MAX_LEN
                ),
            )
        })?;
        if r.port.proto == Proto::Tcp {
            svc.tcp_payload_rules.push(rule);
        } else {
            svc.payload_rules.push(rule);
        }
    }
    for (j, r) in s.l7_rules.iter().enumerate() {
        let rule = super::l7::to_rule(r)
            .map_err(|(k, why)| ConfigError::at(format!("services[{i}].l7_rules[{j}].{k}"), why))?;
        svc.l7_rules.push(rule);
    }
    for (j, a) in s.udp_auth.iter().enumerate() {
        let auth = a
            .build()
            .ok_or_else(|| ConfigError::at(format!("services[{i}].udp_auth[{j}]"), "not validated"))?;
        svc.udp_auth.push(auth);
    }
    Ok(svc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small config; `limits` is the body of the service's
    /// `[services.limits]` table (`None`: no table).
    fn config(limits: Option<&str>) -> Result<Config, ConfigError> {
        let limits = limits.map(|l| format!("[services.limits]\n{l}\n")).unwrap_or_default();
        let text = format!(
            r#"
[node]
name = "t"

[[ports]]
name = "outside"
role = "outside"
iface = "out0"
ip = "10.10.0.1/24"

[[ports]]
name = "inside"
role = "inside"
iface = "in0"
ip = "192.168.77.1/24"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80", "icmp"]
{limits}"#
        );
        Config::from_toml_str(&text, "t.toml", Path::new(""))
    }

    #[test]
    fn icmp_limits_default_on_and_follow_the_config() {
        let p = config(None).unwrap().policy().unwrap();
        let l = p.services[0].limits;
        assert_eq!((l.icmp_pps, l.src_icmp_pps), (200, 20));
        assert_eq!((l.src_pps, l.service_pps), (0, 0), "the others stay off");
        // An empty table is the same as none.
        assert_eq!(config(Some("")).unwrap().policy().unwrap().services[0].limits, l);
        let p = config(Some("icmp_pps = 50\nsrc_icmp_pps = 0\nsrc_pps = 7"))
            .unwrap()
            .policy()
            .unwrap();
        let l = p.services[0].limits;
        assert_eq!((l.icmp_pps, l.src_icmp_pps, l.src_pps), (50, 0, 7));
        // Each key round-trips through the config's own serialisation (the
        // API's documents and the persisted overlay are written from it).
        let c = config(Some("icmp_pps = 0")).unwrap();
        let back: super::super::LimitsConfig =
            toml::from_str(&toml::to_string(&c.services[0].limits).unwrap()).unwrap();
        assert_eq!(back, c.services[0].limits);
        assert_eq!((back.icmp_pps, back.src_icmp_pps), (0, 20));
    }

    /// A service POSTed to the API without `limits`, or with only some
    /// keys, gets the config file's defaults: the ICMP rates stay on.
    #[test]
    fn api_limits_take_the_same_defaults() {
        use crate::api::types::Limits as ApiLimits;
        let from_empty: ApiLimits = serde_json::from_str("{}").unwrap();
        let some: ApiLimits = serde_json::from_str(r#"{"src_pps": 5}"#).unwrap();
        assert_eq!(
            serde_json::to_value(from_empty).unwrap(),
            serde_json::to_value(super::super::LimitsConfig::default()).unwrap()
        );
        assert_eq!((from_empty.icmp_pps, from_empty.src_icmp_pps), (200, 20));
        assert_eq!((some.src_pps, some.icmp_pps, some.src_icmp_pps), (5, 200, 20));
    }

    #[test]
    fn icmp_limit_keys_are_checked() {
        let e = config(Some("icmp_ps = 5")).unwrap_err();
        assert_eq!(e.key, "services[0].limits.icmp_ps", "{e}");
        assert!(e.reason.contains("unknown field"), "{e}");
        let e = config(Some("src_icmp_pps = -1")).unwrap_err();
        assert_eq!(e.key, "services[0].limits.src_icmp_pps", "{e}");
        let e = config(Some("src_icmp_pps = 4294967296")).unwrap_err();
        assert_eq!(e.key, "services[0].limits.src_icmp_pps", "{e}");
        let e = config(Some("icmp_pps = \"lots\"")).unwrap_err();
        assert_eq!(e.key, "services[0].limits.icmp_pps", "{e}");
    }
}
