//! What a reload of the config file (SIGHUP) may change in a running node.
//!
//! Live: the services (with their limits, `detection` thresholds and
//! `on_attack`), the rule set (ACL, fingerprint rules,
//! `dataplane.global_pps`) and detection's node-wide thresholds
//! (`detection.threshold_*`). They are what the REST API changes too, and
//! a reload goes through the same code path ([`super::Control::reload`]:
//! validate, store, publish); the detection thread follows the control
//! plane's services and thresholds at its next second.
//!
//! Fixed until a restart: `[node]`, the rest of `[dataplane]` (backend,
//! workers, cores, table sizes, DPDK and AF_PACKET settings), the ports,
//! the origins (their GRE tunnels and next hops are planned into the
//! workers at start), `[mgmt]` (listen address, token, sampling, and the
//! webhooks: the detection thread starts its webhook senders once), and
//! `[detection]` but its thresholds (the detection thread reads its
//! baseline and timing settings once, and `enabled` says whether it runs),
//! `[bgp]` (the announcer and its liveness interface start once) and
//! `[cluster]` (the bus connects once).
//! A reload that changes any of them applies the live parts and names the
//! others, which keep their running values.

use serde::Serialize;
use serde_json::Value;

use crate::config::{Config, DetectionConfig};

/// `new` with every restart-only part taken from `running`, and the keys
/// (`dataplane.workers`) whose new values were set aside.
pub fn live_part(running: &Config, new: &Config) -> (Config, Vec<String>) {
    let mut merged = new.clone();
    merged.node = running.node.clone();
    merged.dataplane = running.dataplane.clone();
    merged.dataplane.global_pps = new.dataplane.global_pps;
    merged.outside = running.outside.clone();
    merged.inside = running.inside.clone();
    merged.origins = running.origins.clone();
    merged.mgmt = running.mgmt.clone();
    merged.mgmt.webhooks = new.mgmt.webhooks.clone();
    merged.cluster = running.cluster.clone();
    merged.detection = with_thresholds(&running.detection, &new.detection);
    merged.bgp = running.bgp.clone();

    let mut refused = Vec::new();
    diff("node", &running.node, &new.node, &mut refused);
    diff(
        "dataplane",
        &running.dataplane,
        &merged_dataplane(running, new),
        &mut refused,
    );
    diff("ports.outside", &running.outside, &new.outside, &mut refused);
    diff("ports.inside", &running.inside, &new.inside, &mut refused);
    diff("origins", &running.origins, &new.origins, &mut refused);
    let mut mgmt = new.mgmt.clone();
    mgmt.webhooks = running.mgmt.webhooks.clone();
    diff("mgmt", &running.mgmt, &mgmt, &mut refused);
    let fixed = with_thresholds(&new.detection, &running.detection);
    diff("detection", &running.detection, &fixed, &mut refused);
    diff("bgp", &running.bgp, &new.bgp, &mut refused);
    diff("cluster", &running.cluster, &new.cluster, &mut refused);
    (merged, refused)
}

/// `base` with the node-wide thresholds of `from`.
fn with_thresholds(base: &DetectionConfig, from: &DetectionConfig) -> DetectionConfig {
    DetectionConfig {
        threshold_pps: from.threshold_pps,
        threshold_mbps: from.threshold_mbps,
        threshold_flows: from.threshold_flows,
        threshold_syn_pps: from.threshold_syn_pps,
        threshold_udp_pps: from.threshold_udp_pps,
        threshold_icmp_pps: from.threshold_icmp_pps,
        threshold_drop_pps: from.threshold_drop_pps,
        ..base.clone()
    }
}

/// `new`'s `[dataplane]` with the live key reset to the running value.
fn merged_dataplane(running: &Config, new: &Config) -> crate::config::DataplaneConfig {
    let mut d = new.dataplane.clone();
    d.global_pps = running.dataplane.global_pps;
    d
}

/// Appends to `out` the keys under `prefix` where `a` and `b` differ.
fn diff<T: Serialize>(prefix: &str, a: &T, b: &T, out: &mut Vec<String>) {
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        out.push(prefix.to_string());
        return;
    };
    diff_values(prefix, &a, &b, out);
}

fn diff_values(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let null = Value::Null;
                diff_values(
                    &format!("{prefix}.{k}"),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Config {
        Config::from_toml_str(crate::cmd::demo::DEMO_CONFIG, "demo", std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn live_parts_are_taken_and_the_others_named() {
        let running = demo();
        let mut new = demo();
        new.dataplane.workers = 3;
        new.dataplane.global_pps = 1000;
        new.mgmt.listen = "127.0.0.1:1".parse().unwrap();
        new.services.pop();
        new.detection.threshold_pps = 77;
        new.detection.start_after_secs = 9;
        let hook: crate::config::WebhookConfig =
            serde_json::from_value(serde_json::json!({"url": "http://127.0.0.1:9/hook"})).unwrap();
        new.mgmt.webhooks.push(hook);
        let (merged, refused) = live_part(&running, &new);
        assert_eq!(
            refused,
            ["dataplane.workers", "mgmt.listen", "detection.start_after_secs"]
        );
        assert_eq!(merged.detection.start_after_secs, running.detection.start_after_secs);
        assert_eq!(merged.dataplane.workers, running.dataplane.workers);
        assert_eq!(merged.dataplane.global_pps, 1000);
        assert_eq!(merged.mgmt.listen, running.mgmt.listen);
        assert_eq!(merged.services.len(), 1);
        assert_eq!(merged.detection.threshold_pps, 77);
        // Webhooks are live: the detection thread replaces its senders.
        assert_eq!(merged.mgmt.webhooks, new.mgmt.webhooks);

        let (same, refused) = live_part(&running, &running);
        assert!(refused.is_empty());
        assert_eq!(same, running);
    }
}
