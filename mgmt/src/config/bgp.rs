//! `[bgp]`: the node's announcements through BIRD 2 (DESIGN.md,
//! "Scale-out"; the code is [`crate::cluster`]). Moat does not speak BGP:
//! it enables the operator's BIRD protocol `protocol` through BIRD's
//! control socket while the node is healthy and disables it when not.
//!
//! Contract of [`check`]: `bird_socket` is a non-empty path; `protocol` is
//! a BIRD symbol (letters, digits, `_`, not starting with a digit, so it
//! travels in a control-socket command line as it is); `liveness_iface` is
//! a Linux interface name (1 to 15 bytes, no `/`, `:` or space);
//! `hold_down_secs` and `drain_secs` are within a day.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Longest `hold_down_secs` or `drain_secs`: a day.
pub const MAX_BGP_SECS: u32 = 86_400;

/// Longest BIRD symbol BIRD accepts (`SYM_MAX_LEN` in BIRD 2's `conf.h`).
const MAX_SYMBOL: usize = 64;

/// Longest Linux interface name (`IFNAMSIZ` - 1).
const MAX_IFNAME: usize = 15;

/// `[bgp]` as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    /// BIRD 2's control socket (`bird -s`; Debian: `/run/bird/bird.ctl`).
    #[serde(default = "default_socket")]
    pub bird_socket: PathBuf,
    /// The BIRD protocol (a static protocol holding the VIP prefixes)
    /// enabled while the node is healthy.
    pub protocol: String,
    /// A TAP interface held open while Moat runs: BIRD's static routes
    /// point via it with `check link`, so they go when the process dies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_iface: Option<String>,
    /// Healthy this long, without a break, before (re)announcing.
    #[serde(default = "default_hold_down")]
    pub hold_down_secs: u32,
    /// On SIGTERM or `moat drain`: withdraw, keep scrubbing this long, stop.
    #[serde(default = "default_drain")]
    pub drain_secs: u32,
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/bird/bird.ctl")
}

fn default_hold_down() -> u32 {
    5
}

fn default_drain() -> u32 {
    10
}

/// Checks `b` (see the module contract).
pub(super) fn check(b: &BgpConfig) -> Result<(), ConfigError> {
    if b.bird_socket.as_os_str().is_empty() {
        return Err(ConfigError::at("bgp.bird_socket", "empty path"));
    }
    symbol(&b.protocol).map_err(|r| ConfigError::at("bgp.protocol", r))?;
    if let Some(i) = &b.liveness_iface {
        iface(i).map_err(|r| ConfigError::at("bgp.liveness_iface", r))?;
    }
    for (key, v) in [
        ("bgp.hold_down_secs", b.hold_down_secs),
        ("bgp.drain_secs", b.drain_secs),
    ] {
        if v > MAX_BGP_SECS {
            return Err(ConfigError::at(key, format!("{v} is out of range 0..={MAX_BGP_SECS}")));
        }
    }
    Ok(())
}

/// A BIRD symbol: what `enable NAME` takes unquoted.
fn symbol(s: &str) -> Result<(), String> {
    let ok = (1..=MAX_SYMBOL).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\": a BIRD protocol name is 1 to {MAX_SYMBOL} letters, digits or `_`, not starting with a digit"
        ))
    }
}

/// A name the kernel takes for a new interface (`dev_valid_name`).
fn iface(s: &str) -> Result<(), String> {
    let ok = (1..=MAX_IFNAME).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\": an interface name is 1 to {MAX_IFNAME} printable characters without `/`, `:` or spaces"
        ))
    }
}
