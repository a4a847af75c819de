//! The API's JSON documents, with their OpenAPI schemas. Services and rules
//! have the shape of the config file's tables (`[[services]]`, `[acl]`,
//! `[fingerprints]`): values are written the same way (`"tcp/80"`,
//! `"192.0.2.0/24"`, hex payloads). A body is read into these types first
//! (types, unknown fields), then into the config's types (each string's
//! syntax, named by path), then validated as a config file is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::{from_value, Problem};
use crate::config::{BlacklistConfig, OnAttackConfig, OriginConfig, ServiceConfig, Thresholds, UdpAuthConfig};
use crate::control::Rules as RulesConfig;
use crate::metrics::Rates;

/// Largest integer the config's TOML export writes (TOML integers are i64).
pub const MAX_INT: u64 = i64::MAX as u64;

/// SYN authentication mode (DESIGN.md, countermeasures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SynAuthMode {
    #[default]
    ChallengeAck,
    CookieReset,
    Off,
    /// HTTP only: Moat answers the first request with a 307 carrying a
    /// token (`classifier::l7::redirect`).
    HttpRedirect,
}

/// A nested document as a JSON object only: serde's derived structs also
/// take an array of their fields in order (`[1, 2]`), which the schema does
/// not allow and an operator never means.
fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        // The map's own deserializer: paths into it stay tracked
        // (`limits.src_pps`).
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

/// Rate limits; 0 = unlimited. Absent keys take the config file's
/// defaults (0 but for the ICMP rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Packets per second per source address.
    #[schema(maximum = 4294967295_u64)]
    pub src_pps: u32,
    /// SYNs per second per source address.
    #[schema(maximum = 4294967295_u64)]
    pub src_syn_pps: u32,
    /// New connections (SYNs passed) per second per source address.
    #[schema(maximum = 4294967295_u64)]
    pub src_new_conns_ps: u32,
    /// Concurrent connections per source address (a SYN beyond it is
    /// dropped).
    #[schema(maximum = 4294967295_u64)]
    pub src_conns: u32,
    /// Concurrent connections to the whole service on this node.
    #[schema(maximum = 9223372036854775807_u64)]
    pub dst_conns: u64,
    /// New connections per second to the whole service on this node.
    #[schema(maximum = 9223372036854775807_u64)]
    pub dst_new_conns_ps: u64,
    /// Seconds a connection may send nothing after its handshake before it
    /// is reset both ways (at most 86400).
    #[schema(maximum = 86400)]
    pub empty_conn_secs: u32,
    /// ICMP and ICMPv6 messages per second per source address.
    #[schema(maximum = 4294967295_u64, default = 20)]
    pub src_icmp_pps: u32,
    /// Packets per second to the whole service on this node.
    #[schema(maximum = 9223372036854775807_u64)]
    pub service_pps: u64,
    /// SYN challenges per second the service sends.
    #[schema(maximum = 9223372036854775807_u64)]
    pub challenge_pps: u64,
    /// ICMP and ICMPv6 messages per second to the whole service on this node.
    #[schema(maximum = 9223372036854775807_u64, default = 200)]
    pub icmp_pps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        let l = crate::config::LimitsConfig::default();
        Limits {
            src_pps: l.src_pps,
            src_syn_pps: l.src_syn_pps,
            src_new_conns_ps: l.src_new_conns_ps,
            src_conns: l.src_conns,
            dst_conns: l.dst_conns,
            dst_new_conns_ps: l.dst_new_conns_ps,
            empty_conn_secs: l.empty_conn_secs,
            src_icmp_pps: l.src_icmp_pps,
            service_pps: l.service_pps,
            challenge_pps: l.challenge_pps,
            icmp_pps: l.icmp_pps,
        }
    }
}

/// A payload rule: a UDP datagram to `port` passes when
/// `payload[offset..][..len] & mask == value & mask`; on a TCP port, a
/// flow's first data bytes are tested (offset from its first payload byte)
/// and a flow that matches none of its port's rules is reset both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadRule {
    /// `udp/PORT` or `tcp/PORT`.
    #[schema(example = "udp/7777")]
    pub port: String,
    #[serde(default)]
    #[schema(maximum = 65535)]
    pub offset: u16,
    /// Hex bytes.
    #[schema(example = "47414d45")]
    pub value: String,
    /// Hex bytes, as long as `value`; absent: all `ff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
}

/// What a first-segment rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum L7Action {
    /// Drop the segment and reset the connection both ways.
    #[default]
    Deny,
    /// At most `per_source_rps` matching requests per second per source;
    /// beyond it, as deny.
    Limit,
}

/// A first-segment rule: every key given must match the flow's first bytes
/// (HTTP: `method`, `path_prefix`, `host`; TLS ClientHello: `sni`, `ja4`;
/// not both kinds in one rule, at least one key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct L7Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "POST")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "/login")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(default)]
    pub action: L7Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub per_source_rps: Option<u32>,
}

/// A protected service (a VIP), as `[[services]]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", example = "web")]
    pub name: String,
    /// The public address (IPv4 or IPv6).
    #[schema(example = "203.0.113.10")]
    pub vip: String,
    /// Name of an origin.
    #[schema(example = "web")]
    pub origin: String,
    /// Allowed protocols and ports: `tcp/80`, `udp/8000-8080`, `icmp`.
    #[schema(example = json!(["tcp/80", "tcp/443"]))]
    pub allow: Vec<String>,
    #[serde(default)]
    pub syn_auth: SynAuthMode,
    /// UDP reflection source ports this service accepts (`udp/53`).
    #[serde(default)]
    pub allow_src_ports: Vec<String>,
    #[serde(default, deserialize_with = "object")]
    pub limits: Limits,
    #[serde(default)]
    pub payload_rules: Vec<PayloadRule>,
    /// UDP game authentication per port (`a2s`, `first-packet`), as
    /// `[[services.udp_auth]]`.
    #[serde(default)]
    pub udp_auth: Vec<UdpAuthConfig>,
    /// First-segment rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l7_rules: Vec<L7Rule>,
    /// Attack detection thresholds of this service (absent: `[detection]`'s).
    #[serde(default, deserialize_with = "object")]
    pub detection: Thresholds,
    /// Escalation while the service is under attack.
    #[serde(default, deserialize_with = "object")]
    pub on_attack: OnAttackConfig,
    /// The auto-blacklist (absent or null: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist: Option<BlacklistConfig>,
}

/// The ACL: longest prefix wins; a prefix may not be in both lists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Acl {
    /// Prefixes always allowed (`192.0.2.0/24`, `2001:db8::/32`, or an address).
    pub allow: Vec<String>,
    /// Prefixes always dropped.
    pub deny: Vec<String>,
}

/// Static fingerprint deny rules (the classifier's text form).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Fingerprints {
    /// TCP SYN rules, p0f style: `4:64:0:-:512,-::`.
    pub deny_tcp: Vec<String>,
    /// UDP/other rules: `udp:*:*:19:*`.
    pub deny_udp: Vec<String>,
}

/// The node's rule set, replaced as a whole. Per-service limits and payload
/// rules are part of each service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    #[serde(deserialize_with = "object")]
    pub acl: Acl,
    #[serde(deserialize_with = "object")]
    pub fingerprints: Fingerprints,
    /// Emergency cap on all traffic into the node, packets per second; 0 = none.
    #[schema(maximum = 9223372036854775807_u64)]
    pub global_pps: u64,
}

/// A GRE tunnel toward an origin (read-only: see the README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Origin {
    pub name: String,
    pub tunnel_src: String,
    pub tunnel_dst: String,
    /// GRE key (RFC 2890).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u32>,
    pub mtu: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// `GET /api/v1/health`: the node's readiness (see `crate::health`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (every check passed, status 200), `degraded` (every check
    /// passed but a non-fatal one failed, status 200) or `failing` (503).
    pub status: String,
    pub node: String,
    pub version: String,
    pub uptime_secs: f64,
    /// Every check: `worker/N`, `port/outside`, `port/inside`,
    /// `next_hop/ORIGIN`, `state_dir`.
    pub checks: Vec<crate::health::Check>,
    /// The non-fatal checks that failed (`cluster/bus`): the node scrubs
    /// on its own state meanwhile.
    pub degraded: Vec<crate::health::Check>,
}

/// Whether a source address is verified (passed SYN authentication).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verified {
    pub address: String,
    pub verified: bool,
    /// Workers whose table holds it (traffic of one source goes to one worker).
    pub workers: Vec<usize>,
    /// Workers that did not answer in time (stopped).
    pub unanswered: Vec<usize>,
}

/// Counters of one port.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

/// Counters of one worker.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerStats {
    pub worker: usize,
    pub rx_packets: u64,
    pub passed_packets: u64,
    pub dropped_packets: u64,
    pub replies: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
}

/// Counters of one service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceStats {
    pub passed_packets: u64,
    /// Packets addressed to the service per second over the last second,
    /// with bits, SYNs, new flows, per protocol and drops (detection's
    /// figures; null when detection is off or has not judged a second yet).
    pub rates: Option<crate::detect::figures::Figures>,
}

/// `GET /api/v1/stats`: counters since start-up, and rates over the last second.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub uptime_secs: f64,
    pub workers: usize,
    pub policy_generation: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub passed_packets: u64,
    pub passed_bytes: u64,
    pub dropped_packets: u64,
    pub replies: u64,
    pub icmp_too_big: u64,
    pub mss_clamped: u64,
    pub rates: RatesDoc,
    /// Drops by reason (every reason, zeros included).
    pub drops_by_reason: BTreeMap<String, u64>,
    /// By port name (`outside`, `inside`).
    pub ports: BTreeMap<String, PortStats>,
    /// By service name.
    pub services: BTreeMap<String, ServiceStats>,
    pub per_worker: Vec<WorkerStats>,
}

/// Rates over the last interval (about one second).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct RatesDoc {
    pub interval_secs: f64,
    pub rx_pps: f64,
    /// Bits per second received.
    pub rx_bps: f64,
    pub passed_pps: f64,
    pub passed_bps: f64,
    pub dropped_pps: f64,
    pub replies_pps: f64,
}

impl From<Rates> for RatesDoc {
    fn from(r: Rates) -> Self {
        RatesDoc {
            interval_secs: r.interval_secs,
            rx_pps: r.rx_pps,
            rx_bps: r.rx_bps,
            passed_pps: r.passed_pps,
            passed_bps: r.passed_bps,
            dropped_pps: r.dropped_pps,
            replies_pps: r.replies_pps,
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    // These types are plain data (strings, numbers, lists, maps with string
    // keys), which serde_json always represents.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn fits(field: &str, v: u64) -> Result<(), Problem> {
    if v > MAX_INT {
        return Err(Problem::field(field, format!("{v} is out of range 0..={MAX_INT}")));
    }
    Ok(())
}

impl Service {
    /// The config's service, each string parsed (errors name the field).
    pub fn to_config(&self) -> Result<ServiceConfig, Problem> {
        fits("limits.service_pps", self.limits.service_pps)?;
        fits("limits.challenge_pps", self.limits.challenge_pps)?;
        fits("limits.icmp_pps", self.limits.icmp_pps)?;
        fits("limits.dst_conns", self.limits.dst_conns)?;
        fits("limits.dst_new_conns_ps", self.limits.dst_new_conns_ps)?;
        from_value(to_value(self))
    }

    pub fn of(s: &ServiceConfig) -> Service {
        // The config's service serializes to this shape (a test checks it).
        serde_json::from_value(to_value(s)).unwrap_or_else(|_| Service {
            name: s.name.clone(),
            vip: s.vip.to_string(),
            origin: s.origin.clone(),
            allow: s.allow.iter().map(ToString::to_string).collect(),
            syn_auth: SynAuthMode::default(),
            allow_src_ports: Vec::new(),
            limits: Limits::default(),
            payload_rules: Vec::new(),
            udp_auth: Vec::new(),
            l7_rules: Vec::new(),
            detection: s.detection,
            on_attack: s.on_attack.clone(),
            blacklist: s.blacklist,
        })
    }
}

impl Rules {
    pub fn to_config(&self) -> Result<RulesConfig, Problem> {
        fits("global_pps", self.global_pps)?;
        from_value(to_value(self))
    }

    pub fn of(r: &RulesConfig) -> Rules {
        serde_json::from_value(to_value(r)).unwrap_or_default()
    }
}

impl Origin {
    pub fn of(o: &OriginConfig) -> Origin {
        Origin {
            name: o.name.clone(),
            tunnel_src: o.tunnel_src.to_string(),
            tunnel_dst: o.tunnel_dst.to_string(),
            key: o.key,
            mtu: o.mtu,
            mac: o.mac.map(|m| m.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The API's documents and the config's types have the same JSON shape,
    /// both ways, for every service and rule of the demo and example configs.
    #[test]
    fn documents_and_config_types_round_trip() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/moat.toml");
        let mut cfgs =
            vec![Config::from_toml_str(crate::cmd::demo::DEMO_CONFIG, "demo", std::path::Path::new(".")).unwrap()];
        cfgs.push(Config::load(&root).unwrap());
        for cfg in cfgs {
            for s in &cfg.services {
                let doc: Service = serde_json::from_value(to_value(s)).unwrap();
                assert_eq!(&doc.to_config().unwrap(), s);
                assert_eq!(Service::of(s), doc);
            }
            let r = RulesConfig::of(&cfg);
            let doc: Rules = serde_json::from_value(to_value(&r)).unwrap();
            assert_eq!(doc.to_config().unwrap(), r);
        }
    }

    #[test]
    fn string_syntax_errors_name_the_path() {
        let mut s = Service::of(
            &Config::from_toml_str(crate::cmd::demo::DEMO_CONFIG, "demo", std::path::Path::new("."))
                .unwrap()
                .services[0],
        );
        s.allow[1] = "udp/70000".into();
        let p = s.to_config().unwrap_err();
        assert_eq!(p.field.as_deref(), Some("allow[1]"));
        assert_eq!(p.reason.as_deref(), Some("\"udp/70000\": port out of range 1..=65535"));
        s.allow[1] = "udp/7777".into();
        s.limits.service_pps = u64::MAX;
        assert_eq!(s.to_config().unwrap_err().field.as_deref(), Some("limits.service_pps"));
        let r = Rules {
            acl: Acl {
                allow: Vec::new(),
                deny: vec!["192.0.2.7/24".into()],
            },
            ..Rules::default()
        };
        let p = r.to_config().unwrap_err();
        assert_eq!(p.field.as_deref(), Some("acl.deny[0]"));
        assert!(p.reason.unwrap().contains("did you mean 192.0.2.0/24"));
    }
}

#[cfg(test)]
mod object_tests {
    use super::*;

    /// Nested documents given as arrays are refused, naming the field.
    #[test]
    fn nested_documents_must_be_objects() {
        let base = serde_json::json!({"name": "s", "vip": "203.0.113.9", "origin": "web", "allow": ["tcp/80"]});
        for field in ["limits", "detection", "on_attack"] {
            let mut v = base.clone();
            v[field] = serde_json::json!([null, null]);
            let e = from_value::<Service>(v).unwrap_err();
            assert!(format!("{e:?}").contains(field), "{field}: {e:?}");
            let mut ok = base.clone();
            ok[field] = serde_json::json!({});
            from_value::<Service>(ok).unwrap();
        }
        let e = from_value::<Rules>(serde_json::json!({"acl": [[], []]})).unwrap_err();
        assert!(format!("{e:?}").contains("acl"), "{e:?}");
    }
}
