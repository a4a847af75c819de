//! `[[services.udp_auth]]`: UDP game authentication per port
//! (`classifier::udpauth`), and the notes `moat check` prints about a
//! service's authentication modes.
//!
//! ```toml
//! [[services.udp_auth]]
//! port = "udp/27015"          # one UDP port the service allows
//! profile = "a2s"             # Source-engine queries, Moat's challenge
//!
//! [[services.udp_auth]]
//! port = "udp/7777"
//! profile = "first-packet"    # the init packet, twice within the window
//! offset = 0                  # like payload rules: value, mask (hex)
//! value = "dead0001"
//! mask = "ffff00ff"           # absent: all ff
//! min_ms = 200                # the retransmission comes this late at least
//! max_ms = 3000               # and this late at most
//! ```

use classifier::policy::{PayloadRule, SynAuth};
use classifier::time::MILLISECOND;
use classifier::udpauth::{FirstPacket, Profile, UdpAuth};
use serde::{Deserialize, Serialize};

use super::values::{HexBytes, PortSpec, Proto};
use super::{ConfigError, ServiceConfig};

/// The profiles, by name.
pub const PROFILES: [&str; 2] = ["a2s", "first-packet"];
/// Longest `max_ms`: a minute (clients retransmit within seconds).
pub const MAX_WINDOW_MS: u32 = 60_000;
/// Largest UDP payload in an IPv4 datagram (the offset's bound, as for
/// payload rules).
const MAX_UDP_PAYLOAD: usize = 65507;

/// One `[[services.udp_auth]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UdpAuthConfig {
    /// `udp/N`: one port the service allows.
    #[schema(value_type = String, example = "udp/27015")]
    pub port: PortSpec,
    /// `a2s` or `first-packet`.
    pub profile: String,
    /// first-packet: where the init packet's match starts in the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u16>,
    /// first-packet: the bytes to match (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "dead0001")]
    pub value: Option<HexBytes>,
    /// first-packet: the bits of `value` compared (hex, as long as it);
    /// absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub mask: Option<HexBytes>,
    /// first-packet: the retransmission comes at least this late (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ms: Option<u32>,
    /// first-packet: and at most this late (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u32>,
}

type Res<T = ()> = Result<T, ConfigError>;

/// Checks the `udp_auth` entries of service `i`.
pub(super) fn validate(i: usize, s: &ServiceConfig) -> Res {
    for (j, a) in s.udp_auth.iter().enumerate() {
        entry(i, j, s, a)?;
        if let Some(k) = s.udp_auth[..j].iter().position(|b| b.port.lo == a.port.lo) {
            return Err(ConfigError::at(
                format!("services[{i}].udp_auth[{j}].port"),
                format!("udp/{} already has udp_auth (services[{i}].udp_auth[{k}])", a.port.lo),
            ));
        }
    }
    Ok(())
}

fn entry(i: usize, j: usize, s: &ServiceConfig, a: &UdpAuthConfig) -> Res {
    let key = |k: &str| format!("services[{i}].udp_auth[{j}].{k}");
    let port = match (a.port.proto, a.port.single()) {
        (Proto::Udp, Some(p)) => p,
        _ => {
            return Err(ConfigError::at(
                key("port"),
                format!("\"{}\": udp_auth is for one UDP port (udp/N)", a.port),
            ))
        }
    };
    if !s.allow.iter().any(|p| p.covers(Proto::Udp, port)) {
        return Err(ConfigError::at(
            key("port"),
            format!("udp_auth on udp/{port} which the service does not allow"),
        ));
    }
    match a.profile.as_str() {
        "a2s" => {
            let extra = [
                ("offset", a.offset.is_some()),
                ("value", a.value.is_some()),
                ("mask", a.mask.is_some()),
                ("min_ms", a.min_ms.is_some()),
                ("max_ms", a.max_ms.is_some()),
            ];
            match extra.iter().find(|(_, set)| *set) {
                Some((k, _)) => Err(ConfigError::at(key(k), "only for profile \"first-packet\"")),
                None => Ok(()),
            }
        }
        "first-packet" => first_packet(a, &key),
        other => Err(ConfigError::at(
            key("profile"),
            format!("unknown profile \"{other}\", expected \"a2s\" or \"first-packet\""),
        )),
    }
}

fn first_packet(a: &UdpAuthConfig, key: &dyn Fn(&str) -> String) -> Res {
    let Some(value) = &a.value else {
        return Err(ConfigError::at(
            key("value"),
            "missing: first-packet matches the init packet's bytes",
        ));
    };
    let len = value.0.len();
    if len == 0 || len > PayloadRule::MAX_LEN {
        return Err(ConfigError::at(
            key("value"),
            format!("1 to {} bytes, not {len}", PayloadRule::MAX_LEN),
        ));
    }
    if let Some(m) = &a.mask {
        if m.0.len() != len {
            return Err(ConfigError::at(
                key("mask"),
                format!("value and mask lengths differ ({len} vs {} bytes)", m.0.len()),
            ));
        }
    }
    let offset = a.offset.unwrap_or(0);
    if usize::from(offset) + len > MAX_UDP_PAYLOAD {
        return Err(ConfigError::at(
            key("offset"),
            format!("offset {offset} + {len} bytes reaches past the largest UDP payload ({MAX_UDP_PAYLOAD} bytes)"),
        ));
    }
    let Some(max) = a.max_ms else {
        return Err(ConfigError::at(
            key("max_ms"),
            "missing: how late the retransmission may come",
        ));
    };
    if max == 0 || max > MAX_WINDOW_MS {
        return Err(ConfigError::at(
            key("max_ms"),
            format!("{max}: expected 1 to {MAX_WINDOW_MS}"),
        ));
    }
    let min = a.min_ms.unwrap_or(0);
    if min > max {
        return Err(ConfigError::at(key("min_ms"), format!("{min} is above max_ms ({max})")));
    }
    Ok(())
}

impl UdpAuthConfig {
    /// The classifier's form (validated config: `None` only when it was
    /// edited after validation).
    pub fn build(&self) -> Option<UdpAuth> {
        let profile = match self.profile.as_str() {
            "a2s" => Profile::A2s,
            "first-packet" => {
                let value = &self.value.as_ref()?.0;
                let ones;
                let mask = match &self.mask {
                    Some(m) => m.0.as_slice(),
                    None => {
                        ones = vec![0xff; value.len()];
                        ones.as_slice()
                    }
                };
                Profile::FirstPacket(FirstPacket {
                    rule: PayloadRule::new(self.port.lo, self.offset.unwrap_or(0), value, mask)?,
                    min: u64::from(self.min_ms.unwrap_or(0)) * MILLISECOND,
                    max: u64::from(self.max_ms?) * MILLISECOND,
                })
            }
            _ => return None,
        };
        Some(UdpAuth {
            port: self.port.lo,
            profile,
        })
    }
}

/// What `moat check` says about service `s`'s authentication: where
/// `http-redirect` cannot work (TCP 443: HTTPS, the request is inside TLS;
/// such clients get a RST), and the `udp_auth` ports.
pub fn notes(s: &ServiceConfig) -> Vec<String> {
    let mut out = Vec::new();
    let redirect = s.syn_auth == SynAuth::HttpRedirect || s.on_attack.syn_auth_mode() == Some(SynAuth::HttpRedirect);
    if redirect && s.allow.iter().any(|p| p.covers(Proto::Tcp, 443)) {
        out.push(format!(
            "service {}: warning: http-redirect also applies to tcp/443, where HTTPS clients cannot follow it (they get a RST until their source is verified over HTTP)",
            s.name
        ));
    }
    if !s.udp_auth.is_empty() {
        let ports: Vec<String> = s.udp_auth.iter().map(|a| format!("{} {}", a.port, a.profile)).collect();
        out.push(format!("service {}: udp_auth {}", s.name, ports.join(", ")));
    }
    out
}
