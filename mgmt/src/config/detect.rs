//! The config of detection, attack reports and alerts: `[detection]` (the
//! defaults), `[services.detection]` (per-service thresholds),
//! `[services.on_attack]` (escalation), `[[mgmt.webhooks]]`, and their
//! validation. Threshold names are FastNetMon's where they fit
//! (`threshold_pps`, `threshold_mbps`, `threshold_flows`).

use classifier::policy::SynAuth;
use serde::{Deserialize, Serialize};

use super::ConfigError;

type Res = Result<(), ConfigError>;

/// Per-second thresholds of one service; 0 = not checked. In
/// `[detection]` they are every service's defaults; in
/// `[services.detection]` an absent key takes the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Packets per second addressed to the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_pps: Option<u64>,
    /// Megabits per second addressed to the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_mbps: Option<u64>,
    /// New flows (passed SYNs) per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_flows: Option<u64>,
    /// TCP SYNs per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_syn_pps: Option<u64>,
    /// UDP packets per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_udp_pps: Option<u64>,
    /// ICMP packets per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_icmp_pps: Option<u64>,
    /// Dropped packets per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_drop_pps: Option<u64>,
}

impl Thresholds {
    /// `self` where set, else `d`.
    pub fn or(&self, d: &Thresholds) -> Thresholds {
        Thresholds {
            threshold_pps: self.threshold_pps.or(d.threshold_pps),
            threshold_mbps: self.threshold_mbps.or(d.threshold_mbps),
            threshold_flows: self.threshold_flows.or(d.threshold_flows),
            threshold_syn_pps: self.threshold_syn_pps.or(d.threshold_syn_pps),
            threshold_udp_pps: self.threshold_udp_pps.or(d.threshold_udp_pps),
            threshold_icmp_pps: self.threshold_icmp_pps.or(d.threshold_icmp_pps),
            threshold_drop_pps: self.threshold_drop_pps.or(d.threshold_drop_pps),
        }
    }

    fn validate(&self, key: &str) -> Res {
        let bound = [
            ("threshold_pps", self.threshold_pps, 1u64 << 40),
            ("threshold_mbps", self.threshold_mbps, 10_000_000),
            ("threshold_flows", self.threshold_flows, 1 << 40),
            ("threshold_syn_pps", self.threshold_syn_pps, 1 << 40),
            ("threshold_udp_pps", self.threshold_udp_pps, 1 << 40),
            ("threshold_icmp_pps", self.threshold_icmp_pps, 1 << 40),
            ("threshold_drop_pps", self.threshold_drop_pps, 1 << 40),
        ];
        for (name, v, hi) in bound {
            if let Some(v) = v.filter(|v| *v > hi) {
                return Err(ConfigError::at(
                    format!("{key}.{name}"),
                    format!("{v} is out of range 0..={hi}"),
                ));
            }
        }
        Ok(())
    }
}

/// `[detection]`: the defaults of every service, the learned baseline, the
/// hysteresis and the reports' retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Off: no figures are judged, no attack is ever declared.
    pub enabled: bool,
    /// Every service's thresholds unless it sets its own (0 = not checked;
    /// see [`Thresholds`]).
    pub threshold_pps: u64,
    pub threshold_mbps: u64,
    pub threshold_flows: u64,
    pub threshold_syn_pps: u64,
    pub threshold_udp_pps: u64,
    pub threshold_icmp_pps: u64,
    pub threshold_drop_pps: u64,
    /// Learned baseline: a figure above `baseline_multiplier` times its
    /// average over quiet seconds (and above `baseline_floor_pps`) is
    /// abnormal. 0 = no baseline, fixed thresholds only.
    pub baseline_multiplier: u32,
    /// Averaging window of the baseline in seconds (an exponentially
    /// weighted mean with weight 1/window per quiet second).
    pub baseline_window_secs: u32,
    /// Packets per second below which the baseline never fires.
    pub baseline_floor_pps: u64,
    /// Quiet seconds learned before the baseline may fire.
    pub baseline_warmup_secs: u32,
    /// An attack starts after this many abnormal seconds in a row...
    pub start_after_secs: u32,
    /// ...and ends after this many normal seconds in a row.
    pub end_after_secs: u32,
    /// The report of an attack under way is rewritten this often.
    pub report_every_secs: u32,
    /// Attack reports kept under `state_dir/attacks`: the oldest beyond
    /// this number, or older than `max_report_age_days` days, are deleted.
    pub max_reports: u32,
    pub max_report_age_days: u32,
    /// Entries of each top list in a report (sources, ports, fingerprints).
    pub top_k: u32,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            enabled: true,
            threshold_pps: 0,
            threshold_mbps: 0,
            threshold_flows: 0,
            threshold_syn_pps: 0,
            threshold_udp_pps: 0,
            threshold_icmp_pps: 0,
            threshold_drop_pps: 0,
            baseline_multiplier: 5,
            baseline_window_secs: 60,
            baseline_floor_pps: 10_000,
            baseline_warmup_secs: 10,
            start_after_secs: 3,
            end_after_secs: 10,
            report_every_secs: 10,
            max_reports: 1000,
            max_report_age_days: 90,
            top_k: 10,
        }
    }
}

impl DetectionConfig {
    /// The default thresholds as a [`Thresholds`].
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            threshold_pps: Some(self.threshold_pps),
            threshold_mbps: Some(self.threshold_mbps),
            threshold_flows: Some(self.threshold_flows),
            threshold_syn_pps: Some(self.threshold_syn_pps),
            threshold_udp_pps: Some(self.threshold_udp_pps),
            threshold_icmp_pps: Some(self.threshold_icmp_pps),
            threshold_drop_pps: Some(self.threshold_drop_pps),
        }
    }
}

/// `[services.on_attack]`: what the service turns on while under attack
/// (relaxed when the attack ends).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OnAttackConfig {
    /// SYN authentication mode during the attack (`challenge-ack`,
    /// `cookie-reset`, `http-redirect`); absent: unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_auth: Option<String>,
    /// Deny the heavy-hitter fingerprints of the attack's sampled packets.
    pub activate_signatures: bool,
    /// Turn the auto-blacklist on (with the service's `[services.blacklist]`
    /// values, or the defaults: 5 violations in 60 s ban for 300 s).
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub blacklist: bool,
}

/// `[services.blacklist]`: a source that breaks the service's limits
/// `violations` times within `window_secs` is dropped for `ban_secs`
/// (only sources that proved their address are ever counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BlacklistConfig {
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub violations: u32,
    #[schema(minimum = 1, maximum = 86_400)]
    pub window_secs: u32,
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub ban_secs: u32,
}

impl Default for BlacklistConfig {
    fn default() -> Self {
        BlacklistConfig {
            violations: 5,
            window_secs: 60,
            ban_secs: 300,
        }
    }
}

impl BlacklistConfig {
    /// Largest `ban_secs`: 30 days.
    pub const MAX_BAN_SECS: u32 = 2_592_000;

    /// Checks the values (`key`: `services[i].blacklist`).
    pub fn validate(&self, key: &str) -> Res {
        range(format!("{key}.violations"), self.violations.into(), 1, 1_000_000)?;
        range(format!("{key}.window_secs"), self.window_secs.into(), 1, 86_400)?;
        range(
            format!("{key}.ban_secs"),
            self.ban_secs.into(),
            1,
            Self::MAX_BAN_SECS.into(),
        )
    }

    /// The classifier's form.
    pub fn rule(&self) -> classifier::policy::BanRule {
        let s = classifier::time::SECOND;
        classifier::policy::BanRule {
            violations: self.violations,
            window: u64::from(self.window_secs) * s,
            ban: u64::from(self.ban_secs) * s,
        }
    }
}

impl OnAttackConfig {
    /// The escalated SYN authentication mode (validated).
    pub fn syn_auth_mode(&self) -> Option<SynAuth> {
        self.syn_auth.as_deref().and_then(SynAuth::from_name)
    }
}

/// What a webhook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    AttackStart,
    AttackEnd,
    /// A figure crossed a threshold (upward), attack or not.
    Threshold,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 3] = [AlertEvent::AttackStart, AlertEvent::AttackEnd, AlertEvent::Threshold];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertEvent::AttackStart => "attack_start",
            AlertEvent::AttackEnd => "attack_end",
            AlertEvent::Threshold => "threshold",
        }
    }
}

/// `[[mgmt.webhooks]]`: an HTTP endpoint that receives alerts as JSON POSTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host[:port]/path` or `https://...` (rustls, the webpki
    /// root certificates).
    pub url: String,
    #[serde(default = "all_events")]
    pub events: Vec<AlertEvent>,
    /// Per attempt (connect, send, answer).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
    /// Attempts after the first, with exponential back-off.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn all_events() -> Vec<AlertEvent> {
    AlertEvent::ALL.to_vec()
}

fn default_timeout_ms() -> u32 {
    2000
}

fn default_retries() -> u32 {
    4
}

fn range(key: String, v: u64, lo: u64, hi: u64) -> Res {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::at(key, format!("{v} is out of range {lo}..={hi}")))
    }
}

/// Checks `[detection]`.
pub(super) fn detection(d: &DetectionConfig) -> Res {
    d.thresholds().validate("detection")?;
    let k = |n: &str| format!("detection.{n}");
    range(k("baseline_multiplier"), d.baseline_multiplier.into(), 0, 1000)?;
    range(k("baseline_window_secs"), d.baseline_window_secs.into(), 1, 86_400)?;
    range(k("baseline_warmup_secs"), d.baseline_warmup_secs.into(), 0, 86_400)?;
    range(k("start_after_secs"), d.start_after_secs.into(), 1, 3600)?;
    range(k("end_after_secs"), d.end_after_secs.into(), 1, 86_400)?;
    range(k("report_every_secs"), d.report_every_secs.into(), 1, 3600)?;
    range(k("max_reports"), d.max_reports.into(), 1, 1_000_000)?;
    range(k("max_report_age_days"), d.max_report_age_days.into(), 1, 36_500)?;
    range(k("top_k"), d.top_k.into(), 1, 1000)
}

/// Checks one service's `detection` and `on_attack` (`key`: `services[i]`).
pub(super) fn service(key: &str, t: &Thresholds, on: &OnAttackConfig) -> Res {
    t.validate(&format!("{key}.detection"))?;
    if let Some(m) = &on.syn_auth {
        match SynAuth::from_name(m) {
            Some(SynAuth::ChallengeAck | SynAuth::CookieReset | SynAuth::HttpRedirect) => {}
            _ => {
                return Err(ConfigError::at(
                    format!("{key}.on_attack.syn_auth"),
                    format!("\"{m}\": expected `challenge-ack`, `cookie-reset` or `http-redirect`"),
                ))
            }
        }
    }
    Ok(())
}

/// Checks a webhook URL, `http(s)://host[:port][/path]`, with the parser
/// ureq itself uses; the reason when it is not one. (Here rather than in
/// `alert`, which imports the config's types: the dependency goes one way.)
pub fn webhook_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("\"{url}\": {e} (expected http(s)://host[:port][/path])"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "\"{url}\": scheme {}: expected http://host[:port][/path] or https://...",
            u.scheme()
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("\"{url}\": credentials in the URL are not supported"));
    }
    if u.port() == Some(0) {
        return Err(format!("\"{url}\": bad port 0"));
    }
    Ok(())
}

/// Checks `[mgmt]`'s sampling and webhooks.
pub(super) fn mgmt(sample_every: u32, hooks: &[WebhookConfig]) -> Res {
    range("mgmt.sample_every".into(), sample_every.into(), 0, 1 << 24)?;
    for (i, h) in hooks.iter().enumerate() {
        let key = format!("mgmt.webhooks[{i}]");
        webhook_url(&h.url).map_err(|r| ConfigError::at(format!("{key}.url"), r))?;
        if h.events.is_empty() {
            return Err(ConfigError::at(
                format!("{key}.events"),
                "empty: give at least one of attack_start, attack_end, threshold",
            ));
        }
        range(format!("{key}.timeout_ms"), h.timeout_ms.into(), 10, 60_000)?;
        range(format!("{key}.retries"), h.retries.into(), 0, 20)?;
    }
    Ok(())
}
