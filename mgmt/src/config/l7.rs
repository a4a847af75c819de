//! `[[services.l7_rules]]` (first-segment rules, issue 15) and the
//! connection limits' config checks: parsing, validation and the
//! classifier's rule form.
//!
//! ```toml
//! [[services.l7_rules]]
//! method = "GET"                 # HTTP: every key given must match
//! path_prefix = "/login"
//! host = "www.example.com"
//! # sni = "game.example.com"     # TLS (not with HTTP keys)
//! # ja4 = "t13d1516h2_8daaf6152771_02713d6af862"
//! action = "deny"
//! ```

use classifier::l7::http::Method;
use classifier::l7::ja4::Ja4;
use classifier::l7::rules::{L7Action, L7Rule};
use serde::{Deserialize, Serialize};

use super::values::Proto;
use super::{ConfigError, ServiceConfig};

/// What a rule does (`action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L7ActionConfig {
    #[default]
    Deny,
    Limit,
}

/// `[[services.l7_rules]]`: every key given must match the flow's first
/// bytes (HTTP request line and `Host`, or TLS ClientHello).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L7RuleConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(default)]
    pub action: L7ActionConfig,
    /// Requests per second per source (`action = "limit"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source_rps: Option<u32>,
}

/// Longest `path_prefix`, `host` or `sni`: what a first segment can hold.
pub const MAX_KEY_LEN: usize = 1024;

type Res<T = ()> = Result<T, ConfigError>;

/// Checks the rules of service `i`, and that its TCP payload rules and
/// connection limits are usable.
pub(super) fn validate(i: usize, s: &ServiceConfig) -> Res {
    for (j, r) in s.l7_rules.iter().enumerate() {
        to_rule(r).map_err(|(k, why)| ConfigError::at(format!("services[{i}].l7_rules[{j}].{k}"), why))?;
    }
    let tcp = s.allow.iter().any(|a| a.proto == Proto::Tcp);
    if !s.l7_rules.is_empty() && !tcp {
        return Err(ConfigError::at(
            format!("services[{i}].l7_rules"),
            "first-segment rules need a TCP port in allow",
        ));
    }
    let l = &s.limits;
    if l.empty_conn_secs > 86_400 {
        return Err(ConfigError::at(
            format!("services[{i}].limits.empty_conn_secs"),
            format!("{} is more than a day (86400 s)", l.empty_conn_secs),
        ));
    }
    Ok(())
}

/// The classifier's form of a rule, or the key and reason it is refused.
pub fn to_rule(r: &L7RuleConfig) -> Result<L7Rule, (&'static str, String)> {
    let action = match (r.action, r.per_source_rps) {
        (L7ActionConfig::Deny, None) => L7Action::Deny,
        (L7ActionConfig::Deny, Some(_)) => {
            return Err(("per_source_rps", "per_source_rps is for action = \"limit\"".into()));
        }
        (L7ActionConfig::Limit, Some(n)) if n > 0 => L7Action::Limit { per_source_rps: n },
        (L7ActionConfig::Limit, _) => {
            return Err((
                "per_source_rps",
                "action = \"limit\" needs per_source_rps (1 or more)".into(),
            ));
        }
    };
    let mut rule = L7Rule::new(action);
    if let Some(m) = &r.method {
        rule.method = Some(Method::from_name(m).ok_or_else(|| {
            (
                "method",
                format!("\"{m}\": not an HTTP method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)"),
            )
        })?);
    }
    let text = |k: &'static str, v: &Option<String>| -> Result<Option<Box<[u8]>>, (&'static str, String)> {
        match v {
            None => Ok(None),
            Some(s) if s.is_empty() => Err((k, "empty".into())),
            Some(s) if s.len() > MAX_KEY_LEN => Err((k, format!("longer than {MAX_KEY_LEN} bytes"))),
            Some(s) if s.bytes().any(|b| b <= b' ' || b == 0x7f) => {
                Err((k, format!("\"{s}\": spaces and control characters never appear here")))
            }
            Some(s) => Ok(Some(s.as_bytes().into())),
        }
    };
    rule.path_prefix = text("path_prefix", &r.path_prefix)?;
    if rule.path_prefix.as_deref().is_some_and(|p| p.first() != Some(&b'/')) {
        return Err(("path_prefix", "a path prefix starts with /".into()));
    }
    rule.host = text("host", &r.host)?;
    rule.sni = text("sni", &r.sni)?;
    if let Some(j) = &r.ja4 {
        rule.ja4 = Some(Ja4::parse(j).ok_or_else(|| {
            (
                "ja4",
                format!("\"{j}\": not a JA4 fingerprint (e.g. t13d1516h2_8daaf6152771_02713d6af862)"),
            )
        })?);
    }
    if rule.has_http_keys() && rule.has_tls_keys() {
        return Err((
            "sni",
            "a rule names HTTP keys (method, path_prefix, host) or TLS keys (sni, ja4), not both".into(),
        ));
    }
    if !rule.has_http_keys() && !rule.has_tls_keys() {
        return Err((
            "action",
            "a rule needs at least one of method, path_prefix, host, sni, ja4".into(),
        ));
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The demo config with `extra` inserted after the first service's
    /// `syn_auth` line (its tables then belong to that service).
    fn demo_with(extra: &str) -> Result<Config, ConfigError> {
        let text = crate::cmd::demo::DEMO_CONFIG.replacen(
            "syn_auth = \"challenge-ack\"\n",
            &format!("syn_auth = \"challenge-ack\"\n{extra}\n"),
            1,
        );
        Config::from_toml_str(&text, "demo", std::path::Path::new("."))
    }

    #[test]
    fn the_old_limit_name_is_read_as_the_new_one() {
        let cfg = demo_with("[services.limits]\nsrc_new_flows_ps = 7").expect("config");
        let l = &cfg.services[0].limits;
        assert_eq!((l.src_new_conns_ps, l.src_new_flows_ps), (7, None));
        assert_eq!(cfg.policy().expect("policy").services[0].limits.src_new_conns_ps, 7);
        // Written back, only the new name appears.
        let text = toml::to_string(&cfg.services[0].limits).expect("toml");
        assert!(
            text.contains("src_new_conns_ps = 7") && !text.contains("flows"),
            "{text}"
        );
        let e = demo_with("[services.limits]\nsrc_new_flows_ps = 7\nsrc_new_conns_ps = 8").expect_err("refused");
        assert_eq!(e.key, "services[0].limits.src_new_conns_ps");
    }

    #[test]
    fn limits_rules_and_tcp_payload_rules_reach_the_policy() {
        let cfg = demo_with(
            "[services.limits]\nsrc_conns = 4\ndst_conns = 1000\ndst_new_conns_ps = 50\nempty_conn_secs = 3\n\
             [[services.l7_rules]]\npath_prefix = \"/login\"\n\
             [[services.l7_rules]]\nmethod = \"GET\"\naction = \"limit\"\nper_source_rps = 5\n\
             [[services.payload_rules]]\nport = \"tcp/80\"\nvalue = \"474554\"",
        )
        .expect("config");
        let pol = cfg.policy().expect("policy");
        let s = &pol.services[0];
        let l = &s.limits;
        assert_eq!(
            (l.src_conns, l.dst_conns, l.dst_new_conns_ps, l.empty_conn_secs),
            (4, 1000, 50, 3)
        );
        assert_eq!(s.l7_rules.len(), 2);
        assert_eq!(s.l7_rules[1].action, L7Action::Limit { per_source_rps: 5 });
        assert_eq!((s.tcp_payload_rules.len(), s.tcp_payload_rules[0].port), (1, 80));
        assert!(s.payload_rules.iter().all(|r| r.port == 7777));
        // Refusals name the key.
        let e = demo_with("[[services.l7_rules]]\nmethod = \"FETCH\"").expect_err("refused");
        assert_eq!(e.key, "services[0].l7_rules[0].method");
        let e = demo_with("[[services.payload_rules]]\nport = \"tcp/81\"\nvalue = \"00\"").expect_err("refused");
        assert!(e.reason.contains("tcp/81"), "{}", e.reason);
        let e = demo_with("[services.limits]\nempty_conn_secs = 100000").expect_err("refused");
        assert_eq!(e.key, "services[0].limits.empty_conn_secs");
    }

    #[test]
    fn rules_parse_and_refuse_clearly() {
        let ok = L7RuleConfig {
            method: Some("POST".into()),
            path_prefix: Some("/login".into()),
            ..Default::default()
        };
        let r = to_rule(&ok).expect("rule");
        assert_eq!(r.method, Some(Method::Post));
        assert_eq!(r.action, L7Action::Deny);
        let bad = |c: L7RuleConfig| to_rule(&c).expect_err("refused").0;
        assert_eq!(
            bad(L7RuleConfig {
                method: Some("FETCH".into()),
                ..Default::default()
            }),
            "method"
        );
        assert_eq!(bad(L7RuleConfig::default()), "action");
        assert_eq!(
            bad(L7RuleConfig {
                host: Some("a".into()),
                sni: Some("a".into()),
                ..Default::default()
            }),
            "sni"
        );
        assert_eq!(
            bad(L7RuleConfig {
                path_prefix: Some("login".into()),
                ..Default::default()
            }),
            "path_prefix"
        );
        assert_eq!(
            bad(L7RuleConfig {
                ja4: Some("nope".into()),
                ..Default::default()
            }),
            "ja4"
        );
        assert_eq!(
            bad(L7RuleConfig {
                host: Some("a".into()),
                action: L7ActionConfig::Limit,
                ..Default::default()
            }),
            "per_source_rps"
        );
        let limit = to_rule(&L7RuleConfig {
            host: Some("a".into()),
            action: L7ActionConfig::Limit,
            per_source_rps: Some(5),
            ..Default::default()
        })
        .expect("rule");
        assert_eq!(limit.action, L7Action::Limit { per_source_rps: 5 });
    }
}
