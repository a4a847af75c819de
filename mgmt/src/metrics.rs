//! The node's counters as the management plane reads them: summed over the
//! workers at read time (each worker publishes plain relaxed counters, see
//! `dataplane::runtime::stats`), current rates over the last second
//! ([`Counters::tick`], called once a second by the management loop), and
//! the Prometheus text exposition (format 0.0.4) of `/metrics`.
//!
//! The exposition is encoded by `prometheus-client` (text format 0.0.4:
//! names, `# HELP`/`# TYPE`, label escaping, number formatting) from the
//! values read at scrape time: every value already lives in the workers'
//! counters and is only summed here, so the families are built per scrape
//! ([`Exposition`]) and handed to the crate as one collector, rather than
//! kept in step in a registry of live metrics. Label values are service
//! names (validated to `[A-Za-z0-9._-]`), drop reasons and port names. No
//! label carries an address: top talkers belong to the REST API, not to
//! time series.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use classifier::DropReason;
use dataplane::port::{DeviceStats, PortId};
use dataplane::runtime::stats::SharedStats;
use dataplane::runtime::{Runtime, Snapshot};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::control::ServiceTraffic;

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

/// One sample's value.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

#[derive(Debug)]
struct Family {
    /// Without the `_total` of counters (the encoder adds it).
    name: String,
    help: String,
    kind: MetricType,
    samples: Vec<(Vec<(String, String)>, Value)>,
}

/// The families of one scrape, in order; [`Exposition::finish`] encodes
/// them (Prometheus text format 0.0.4).
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// The families as one `prometheus-client` collector.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        for f in &self.0 {
            let mut m = encoder.encode_descriptor(&f.name, &f.help, None, f.kind)?;
            for (labels, v) in &f.samples {
                let e = m.encode_family(labels)?;
                match (f.kind, *v) {
                    (MetricType::Counter, Value::Int(v)) => ConstCounter::new(v).encode(e)?,
                    (MetricType::Counter, Value::Float(v)) => ConstCounter::new(v).encode(e)?,
                    (_, Value::Int(v)) => ConstGauge::new(v).encode(e)?,
                    (_, Value::Float(v)) => ConstGauge::new(v).encode(e)?,
                }
            }
        }
        Ok(())
    }
}

impl Exposition {
    fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Family {
        let name = match kind {
            MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        self.families.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            samples: Vec::new(),
        });
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    /// A counter family without labels (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.family(name, MetricType::Counter, help)
            .samples
            .push((Vec::new(), Value::Int(v)));
    }

    /// A counter family without labels, fractional (seconds).
    pub fn counter_f64(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, MetricType::Counter, help)
            .samples
            .push((Vec::new(), Value::Float(v)));
    }

    /// A gauge family without labels.
    pub fn gauge(&mut self, name: &str, help: &str, v: u64) {
        self.family(name, MetricType::Gauge, help)
            .samples
            .push((Vec::new(), Value::Int(v)));
    }

    /// A gauge family without labels, fractional.
    pub fn gauge_f64(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, MetricType::Gauge, help)
            .samples
            .push((Vec::new(), Value::Float(v)));
    }

    /// A gauge family with one sample of several labels.
    pub fn gauge_labelled(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: u64) {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.family(name, MetricType::Gauge, help)
            .samples
            .push((labels, Value::Int(v)));
    }

    /// A gauge family with one label.
    pub fn gauges<'a>(&mut self, name: &str, help: &str, label: &str, vs: impl IntoIterator<Item = (&'a str, u64)>) {
        let f = self.family(name, MetricType::Gauge, help);
        for (l, v) in vs {
            f.samples
                .push((vec![(label.to_string(), l.to_string())], Value::Int(v)));
        }
    }

    /// A counter family with one label.
    pub fn counters<'a>(&mut self, name: &str, help: &str, label: &str, vs: impl IntoIterator<Item = (&'a str, u64)>) {
        let f = self.family(name, MetricType::Counter, help);
        for (l, v) in vs {
            f.samples
                .push((vec![(label.to_string(), l.to_string())], Value::Int(v)));
        }
    }

    /// The text exposition.
    pub fn finish(self) -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(Families(self.families)));
        let mut out = String::new();
        // Writing into a String fails only if a collector fails, and ours
        // does not.
        let _ = prometheus_text::encode(&mut out, &r);
        out
    }
}

/// The `Content-Type` of [`Exposition::finish`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What `/metrics` shows beyond the counters.
#[derive(Debug, Clone)]
pub struct NodeInfo<'a> {
    pub node: &'a str,
    pub policy_generation: u64,
    /// Per-service passed packets by name (see `Control::passed_by_service`).
    pub passed: &'a [(String, u64)],
    /// Per-service traffic by name (see `Control::traffic_by_service`).
    pub traffic: &'a [ServiceTraffic],
    /// The NIC's own counters by port (DPDK nodes; empty elsewhere).
    pub device: &'a [(PortId, DeviceStats)],
}

/// The exposition of `/metrics` for the totals `t` and per-worker `per`.
pub fn exposition(c: &Counters, t: &Snapshot, per: &[Snapshot], info: &NodeInfo<'_>) -> Exposition {
    let mut e = Exposition::default();
    e.gauge_labelled(
        "moat_info",
        "Node name and software version (always 1).",
        &[("node", info.node), ("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    e.gauge_f64(
        "moat_uptime_seconds",
        "Seconds since the workers started.",
        (c.uptime_secs() * 1e3).round() / 1e3,
    );
    e.gauge("moat_workers", "Worker threads (one per core).", per.len() as u64);
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
    e.counters(
        "moat_service_packets_total",
        "Packets addressed to each service (passed, answered or dropped), by service.",
        "service",
        info.traffic.iter().map(|s| (s.name.as_str(), s.packets)),
    );
    e.counters(
        "moat_service_bytes_total",
        "Bytes addressed to each service (whole frames as received), by service.",
        "service",
        info.traffic.iter().map(|s| (s.name.as_str(), s.bytes)),
    );
    e.counters(
        "moat_service_dropped_packets_total",
        "Packets addressed to each service that were dropped (every reason), by service.",
        "service",
        info.traffic.iter().map(|s| (s.name.as_str(), s.dropped)),
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
    if !info.device.is_empty() {
        let nic = |f: fn(&DeviceStats) -> u64| info.device.iter().map(move |(p, d)| (p.as_str(), f(d)));
        e.counters(
            "moat_port_imissed_total",
            "Frames the NIC dropped because its RX queues were full (workers too slow), by port.",
            "port",
            nic(|d| d.imissed),
        );
        e.counters(
            "moat_port_ierrors_total",
            "Erroneous frames the NIC received, by port.",
            "port",
            nic(|d| d.ierrors),
        );
        e.counters(
            "moat_port_rx_nombuf_total",
            "RX buffer allocation failures (the mbuf pool ran dry), by port.",
            "port",
            nic(|d| d.rx_nombuf),
        );
    }
    process_metrics(&mut e);
    // Detection's families (`moat_attacks_active`, ...) are appended by the
    // caller on the returned exposition.
    e
}

/// The process's own figures, read from `/proc/self` (Linux), named as
/// the Prometheus client libraries name them. A file that cannot be read
/// leaves its families out.
pub fn process_metrics(e: &mut Exposition) {
    let p = ProcSelf::read();
    if let Some(cpu) = p.cpu_seconds {
        e.counter_f64(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            cpu,
        );
    }
    if let Some(rss) = p.resident_bytes {
        e.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss);
    }
    if let Some(vm) = p.virtual_bytes {
        e.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", vm);
    }
    if let Some(n) = p.open_fds {
        e.gauge("process_open_fds", "Number of open file descriptors.", n);
    }
    if let Some(n) = p.max_fds {
        e.gauge("process_max_fds", "Maximum number of open file descriptors.", n);
    }
    if let Some(t) = p.start_time_seconds {
        e.gauge_f64(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            t,
        );
    }
}

/// Clock ticks per second of `/proc`'s times (`sysconf(_SC_CLK_TCK)`):
/// the kernel reports them in USER_HZ, 100 on every architecture Moat
/// builds for (x86_64, aarch64); only Alpha and IA-64 differ.
const USER_HZ: f64 = 100.0;

/// What [`process_metrics`] shows, from `/proc/self/{stat,status,fd,limits}`
/// and `/proc/stat`'s boot time.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcSelf {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcSelf {
    /// The figures of this process now.
    pub fn read() -> ProcSelf {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let ticks = USER_HZ;
        let mut p = read("/proc/self/stat")
            .map(|s| ProcSelf::parse_stat(&s, ticks, read("/proc/stat").as_deref().and_then(boot_time)))
            .unwrap_or_default();
        if let Some(s) = read("/proc/self/status") {
            p.resident_bytes = status_kib(&s, "VmRSS:").map(|k| k * 1024);
            p.virtual_bytes = status_kib(&s, "VmSize:").map(|k| k * 1024);
        }
        p.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        p.max_fds = read("/proc/self/limits").as_deref().and_then(max_open_files);
        p
    }

    /// `/proc/self/stat`: utime and stime (fields 14 and 15) in clock
    /// ticks, starttime (field 22) in ticks after `boot` (epoch seconds).
    fn parse_stat(stat: &str, ticks: f64, boot: Option<u64>) -> ProcSelf {
        // The command name (field 2) is in parentheses and may hold
        // spaces: the fields counted from after its last ')'. Field 3 is
        // the first after it.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu = match (field(14), field(15)) {
            (Some(u), Some(s)) => Some((u + s) as f64 / ticks),
            _ => None,
        };
        let start = match (field(22), boot) {
            (Some(st), Some(b)) => Some(b as f64 + st as f64 / ticks),
            _ => None,
        };
        ProcSelf {
            cpu_seconds: cpu,
            start_time_seconds: start,
            ..ProcSelf::default()
        }
    }
}

/// `btime` of `/proc/stat`: the boot time, epoch seconds.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`
/// (`unlimited` is left out).
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_escaped_labels() {
        let mut e = Exposition::default();
        e.counters("x_total", "An x.", "service", [("a\"b\\c\nd", 3)]);
        e.gauge_f64("y", "A y.", 1.5);
        e.gauge("z", "A z.", 7);
        assert_eq!(
            e.finish(),
            "# HELP x_total An x.\n# TYPE x_total counter\nx_total{service=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP y A y.\n# TYPE y gauge\ny 1.5\n\
             # HELP z A z.\n# TYPE z gauge\nz 7\n"
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
            traffic: &[ServiceTraffic {
                name: "web".into(),
                packets: 9,
                bytes: 900,
                dropped: 2,
            }],
            device: &[],
        };
        let text = exposition(&c, &t, &per, &info).finish();
        assert!(
            text.contains("moat_passed_packets_total{service=\"web\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("moat_rx_packets_total{port=\"outside\"} 0\n"));
        assert!(
            text.contains("moat_service_packets_total{service=\"web\"} 9\n"),
            "{text}"
        );
        assert!(text.contains("moat_service_bytes_total{service=\"web\"} 900\n"));
        assert!(text.contains("moat_service_dropped_packets_total{service=\"web\"} 2\n"));
        assert!(
            !text.contains("moat_port_imissed_total"),
            "no NIC counters without a device"
        );
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("moat_policy_generation 2\n"));
        assert!(text.contains("moat_workers 0\n"));
        for r in DropReason::ALL {
            assert!(text.contains(&format!("moat_dropped_packets_total{{reason=\"{}\"}} 0\n", r.as_str())));
        }
    }

    #[test]
    fn proc_self_stat_fields_and_limits_parse() {
        // A command name with spaces and a ')' in it.
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000 12345 678 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let p = ProcSelf::parse_stat(stat, 100.0, Some(1_700_000_000));
        assert_eq!(p.cpu_seconds, Some(4.0));
        assert_eq!(p.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(status_kib("Name:\tmoat\nVmRSS:\t  2048 kB\n", "VmRSS:"), Some(2048));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        let live = ProcSelf::read();
        assert!(live.resident_bytes.unwrap() > 0, "{live:?}");
        assert!(live.open_fds.unwrap() >= 3, "{live:?}");
        assert!(live.start_time_seconds.unwrap() > 1_600_000_000.0, "{live:?}");
    }
}
