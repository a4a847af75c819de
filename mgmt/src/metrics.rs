//! The node's counters as the management plane reads them: summed over the
//! workers at read time (each worker publishes plain relaxed counters, see
//! `dataplane::runtime::stats`), current rates over the last second
//! ([`Counters::tick`], called once a second by the management loop), and
//! the Prometheus text exposition (format 0.0.4) of `/metrics`.
//!
//! The exposition is written by hand rather than through a metrics
//! registry: every value already lives in the workers' counters and is only
//! summed here, so a registry would be a second copy to keep in step. Label
//! values are service names (validated to `[A-Za-z0-9._-]`), drop reasons
//! and port names, and are escaped anyway. No label carries an address:
//! top talkers belong to the REST API, not to time series.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use classifier::DropReason;
use dataplane::port::PortId;
use dataplane::runtime::stats::SharedStats;
use dataplane::runtime::{Runtime, Snapshot};

/// Rates over the last interval (about a second).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Rates {
    /// Length of the interval, seconds (0 before the first full second).
    pub interval_secs: f64,
    pub rx_pps: f64,
    pub rx_bps: f64,
    pub passed_pps: f64,
    pub passed_bps: f64,
    pub dropped_pps: f64,
    pub replies_pps: f64,
}

#[derive(Debug)]
struct Meter {
    at: Instant,
    last: Snapshot,
    rates: Rates,
}

/// Read side of the workers' counters.
#[derive(Debug)]
pub struct Counters {
    stats: Vec<SharedStats>,
    started: Instant,
    meter: Mutex<Meter>,
    /// Failed management-side writes (the `--stats` file): counted and
    /// retried, never a reason to stop the node.
    mgmt_errors: AtomicU64,
}

impl Counters {
    /// The counters of `rt`'s workers.
    pub fn of(rt: &Runtime) -> Arc<Counters> {
        Arc::new(Counters::new(rt.stats.clone()))
    }

    pub fn new(stats: Vec<SharedStats>) -> Counters {
        Counters {
            stats,
            started: Instant::now(),
            meter: Mutex::new(Meter {
                at: Instant::now(),
                last: Snapshot::zero(0),
                rates: Rates::default(),
            }),
            mgmt_errors: AtomicU64::new(0),
        }
    }

    /// Counts one failed management-side write.
    pub fn count_mgmt_error(&self) -> u64 {
        self.mgmt_errors.fetch_add(1, Relaxed) + 1
    }

    /// Failed management-side writes since start-up.
    pub fn mgmt_errors(&self) -> u64 {
        self.mgmt_errors.load(Relaxed)
    }

    pub fn workers(&self) -> usize {
        self.stats.len()
    }

    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The sum over workers, and each worker's own, with `services`
    /// per-service counters.
    pub fn snapshot(&self, services: usize) -> (Snapshot, Vec<Snapshot>) {
        let per: Vec<Snapshot> = self.stats.iter().map(|s| s.snapshot(services)).collect();
        let mut total = Snapshot::zero(services);
        for p in &per {
            total.add(p);
        }
        (total, per)
    }

    /// Once a second (management loop): the rates since the previous call.
    pub fn tick(&self) {
        // Every per-service slot, so that the passed total is exact
        // whatever the service list is now (1024 relaxed loads a second).
        let (now, _) = self.snapshot(dataplane::runtime::MAX_SERVICES);
        let mut m = self.meter.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let secs = m.at.elapsed().as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let p = &m.last;
        let rates = Rates {
            interval_secs: secs,
            rx_pps: rate(now.rx_packets, p.rx_packets),
            rx_bps: 8.0 * rate(now.rx_bytes, p.rx_bytes),
            passed_pps: rate(now.passed_total(), p.passed_total()),
            passed_bps: 8.0 * rate(now.passed_bytes, p.passed_bytes),
            dropped_pps: rate(now.dropped_total(), p.dropped_total()),
            replies_pps: rate(now.replies, p.replies),
        };
        m.rates = rates;
        m.last = now;
        m.at = Instant::now();
    }

    /// The rates of the last full interval.
    pub fn rates(&self) -> Rates {
        self.meter.lock().map_or_else(|e| e.into_inner().rates, |m| m.rates)
    }
}

/// A Prometheus text exposition being written: one `# HELP`/`# TYPE` pair
/// per family, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Escapes a label value (text format 0.0.4: backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(self.out, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.out, " {v}");
    }

    /// A counter family without labels (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], v);
    }

    /// A gauge family without labels.
    pub fn gauge(&mut self, name: &str, help: &str, v: impl std::fmt::Display) {
        self.family(name, "gauge", help);
        self.sample(name, &[], v);
    }

    /// A counter family with one label.
    pub fn counters<'a>(&mut self, name: &str, help: &str, label: &str, vs: impl IntoIterator<Item = (&'a str, u64)>) {
        self.family(name, "counter", help);
        for (l, v) in vs {
            self.sample(name, &[(label, l)], v);
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// What `/metrics` shows beyond the counters.
#[derive(Debug, Clone)]
pub struct NodeInfo<'a> {
    pub node: &'a str,
    pub policy_generation: u64,
    /// Per-service passed packets by name (see `Control::passed_by_service`).
    pub passed: &'a [(String, u64)],
}

/// The exposition of `/metrics` for the totals `t` and per-worker `per`.
pub fn exposition(c: &Counters, t: &Snapshot, per: &[Snapshot], info: &NodeInfo<'_>) -> Exposition {
    let mut e = Exposition::default();
    e.family("moat_info", "gauge", "Node name and software version (always 1).");
    e.sample(
        "moat_info",
        &[("node", info.node), ("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    e.gauge(
        "moat_uptime_seconds",
        "Seconds since the workers started.",
        format!("{:.3}", c.uptime_secs()),
    );
    e.gauge("moat_workers", "Worker threads (one per core).", per.len());
    e.counter(
        "moat_mgmt_errors_total",
        "Failed management-side writes (the --stats file), retried every second; scrubbing goes on.",
        c.mgmt_errors(),
    );
    e.gauge(
        "moat_policy_generation",
        "Policy snapshots published by the management plane since start-up.",
        info.policy_generation,
    );
    let ports =
        |f: fn(&dataplane::runtime::stats::PortCounters) -> u64| PortId::ALL.map(|p| (p.as_str(), f(t.port(p))));
    e.counters(
        "moat_rx_packets_total",
        "Frames received, by port.",
        "port",
        ports(|p| p.rx_packets),
    );
    e.counters(
        "moat_tx_packets_total",
        "Frames sent, by port.",
        "port",
        ports(|p| p.tx_packets),
    );
    e.counters(
        "moat_tx_dropped_packets_total",
        "Frames the port did not take (TX ring full after a retry), by port.",
        "port",
        ports(|p| p.tx_dropped),
    );
    e.counter(
        "moat_rx_bytes_total",
        "Bytes received on the outside port (whole frames).",
        t.rx_bytes,
    );
    e.counters(
        "moat_dropped_packets_total",
        "Packets dropped, by reason.",
        "reason",
        DropReason::ALL.iter().map(|r| (r.as_str(), t.dropped[*r as usize])),
    );
    e.counters(
        "moat_passed_packets_total",
        "Packets passed to the origin (GRE), by service.",
        "service",
        info.passed.iter().map(|(s, n)| (s.as_str(), *n)),
    );
    e.counter(
        "moat_passed_bytes_total",
        "Bytes sent toward the origins, GRE encapsulation included.",
        t.passed_bytes,
    );
    e.counter(
        "moat_replies_total",
        "Replies sent back out the outside port (SYN challenges, resets, ARP, neighbour advertisements, ICMP).",
        t.replies,
    );
    e.counter("moat_icmp_too_big_total", "ICMP too-big errors sent.", t.icmp_too_big);
    e.counter(
        "moat_mss_clamped_total",
        "SYNs whose MSS option was clamped.",
        t.mss_clamped,
    );
    e.counter(
        "moat_arp_requests_total",
        "ARP requests sent for next hops.",
        t.arp_requests,
    );
    let workers: Vec<String> = (0..per.len()).map(|i| i.to_string()).collect();
    let by_worker = |f: fn(&Snapshot) -> u64| workers.iter().map(String::as_str).zip(per.iter().map(f));
    e.counters(
        "moat_worker_rx_packets_total",
        "Frames received, by worker.",
        "worker",
        by_worker(|s| s.rx_packets),
    );
    e.counters(
        "moat_worker_busy_polls_total",
        "Polls that returned frames, by worker.",
        "worker",
        by_worker(|s| s.busy_polls),
    );
    e.counters(
        "moat_worker_idle_polls_total",
        "Polls that returned no frame, by worker.",
        "worker",
        by_worker(|s| s.idle_polls),
    );
    // Detection's families (`moat_attacks_active`, ...) are appended by the
    // caller on the returned exposition.
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_escaped_labels() {
        let mut e = Exposition::default();
        e.counters("x_total", "An x.", "service", [("a\"b\\c\nd", 3)]);
        e.gauge("y", "A y.", 1.5);
        assert_eq!(
            e.finish(),
            "# HELP x_total An x.\n# TYPE x_total counter\nx_total{service=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP y A y.\n# TYPE y gauge\ny 1.5\n"
        );
    }

    #[test]
    fn exposition_of_idle_counters_lists_every_reason_and_port() {
        let c = Counters::new(Vec::new());
        let (t, per) = c.snapshot(1);
        let passed = vec![("web".to_string(), 7)];
        let info = NodeInfo {
            node: "n1",
            policy_generation: 2,
            passed: &passed,
        };
        let text = exposition(&c, &t, &per, &info).finish();
        assert!(
            text.contains("moat_passed_packets_total{service=\"web\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("moat_rx_packets_total{port=\"outside\"} 0\n"));
        assert!(text.contains("moat_policy_generation 2\n"));
        assert!(text.contains("moat_workers 0\n"));
        for r in DropReason::ALL {
            assert!(text.contains(&format!("moat_dropped_packets_total{{reason=\"{}\"}} 0\n", r.as_str())));
        }
    }
}
