//! A running node: the config turned into worker setups (policy with the
//! ports' real MACs, GRE tunnels, next hops, pinned cores), the workers
//! started on a backend's queues, and the management thread's duties while
//! they run: cookie key rotation, counters as JSON and as a per-second line.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use arc_swap::ArcSwap;
use classifier::build::GreParams;
use classifier::policy::Policy;
use classifier::time::Nanos;
use dataplane::port::{DeviceStatsReader, PortId, Queues};
use dataplane::runtime::{self, wall_clock, Idle, Neighbors, Runtime, Snapshot, WorkerSetup};
use serde_json::{json, Value};

use crate::config::{secrets_at, Config};

/// What the workers are started with.
#[derive(Debug)]
pub struct Plan {
    pub policy: Policy,
    pub setups: Vec<WorkerSetup>,
    pub neighbors: Neighbors,
    pub services: Vec<String>,
    material: Vec<u8>,
    rotate_secs: u32,
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Plans the node of `cfg`. `macs`: the ports' MACs as the backend read
/// them (the config's `mac` wins, then these, then the default); `resolve`:
/// whether next hops are resolved by ARP (live backends) or only taken from
/// static MACs; `rotate`: whether cookie keys rotate (live backends).
pub fn plan(cfg: &Config, macs: [Option<[u8; 6]>; 2], resolve: bool, rotate: bool) -> anyhow::Result<Plan> {
    let mut policy = cfg.policy()?;
    let material = cfg.cookie_material()?;
    let rotate_secs = if rotate { cfg.node.cookie_rotate_secs } else { 0 };
    policy.secrets = secrets_at(&material, rotate_secs, wall_clock());
    let mac_of =
        |p: &crate::config::PortConfig, i: usize| p.mac.map(|m| m.0).or(macs[i]).unwrap_or_else(|| p.mac_or_default());
    let out_mac = mac_of(&cfg.outside, 0);
    let in_mac = mac_of(&cfg.inside, 1);
    // ARP and neighbour discovery answer with the MACs the ports really
    // have, and the link-local addresses are derived from them.
    policy.own_addrs = cfg.outside.own_addrs(out_mac);
    policy.own_addrs.extend(cfg.inside.own_addrs(in_mac));
    let mut hops = Vec::new();
    let mut gre = Vec::new();
    for o in &policy.origins {
        let t = cfg.origin_gre(&o.name).with_context(|| format!("origin {}", o.name))?;
        hops.push((t.next_hop, t.next_hop_mac));
        gre.push(GreParams {
            src_mac: in_mac,
            dst_mac: [0; 6],
            tunnel_src: t.src,
            tunnel_dst: t.dst,
            key: t.key,
            ttl: 64,
        });
    }
    let neighbors = Neighbors::new(&hops, resolve);
    let next_hop: Vec<usize> = hops
        .iter()
        .map(|(ip, _)| neighbors.index_of(*ip).unwrap_or(0))
        .collect();
    let d = &cfg.dataplane;
    let workers = d.workers as usize;
    let cores = runtime::pick_cores(workers, &d.cores);
    let inside_ip = match cfg.inside.ip.addr() {
        core::net::IpAddr::V4(a) => a,
        core::net::IpAddr::V6(_) => anyhow::bail!("the inside port must be IPv4 (validated)"),
    };
    let setups = (0..workers)
        .map(|i| WorkerSetup {
            index: i,
            workers: d.workers,
            burst: d.burst as usize,
            idle: Idle {
                spins: d.idle_spins,
                sleep: std::time::Duration::from_micros(d.idle_sleep_us.into()),
            },
            core: cores[i],
            sizes: cfg.classifier_state(),
            icmp_pps: d.icmp_too_big_pps,
            gre: gre.clone(),
            next_hop: next_hop.clone(),
            inside_ip,
            inside_mac: in_mac,
            sample_every: cfg.mgmt.sample_every,
            two_stage: d.two_stage.into(),
        })
        .collect();
    let services = policy.services.iter().map(|s| s.name.clone()).collect();
    Ok(Plan {
        policy,
        setups,
        neighbors,
        services,
        material,
        rotate_secs,
    })
}

/// The node while its workers run.
#[derive(Debug)]
pub struct Node {
    pub rt: Runtime,
    pub services: Vec<String>,
    pub started: Instant,
    /// Live control once the management plane runs: the service list may
    /// then change at run time.
    pub control: Option<Arc<crate::control::Control>>,
    material: Vec<u8>,
    rotate_secs: u32,
    generation: u64,
    /// The ports' device counters, for backends that have them (DPDK).
    device_stats: Option<Arc<dyn DeviceStatsReader>>,
}

impl Node {
    /// Starts the workers of `plan`, worker `i` on `queues[i]`.
    pub fn start<Q: Queues + 'static>(plan: Plan, queues: Vec<Q>) -> anyhow::Result<Node> {
        anyhow::ensure!(queues.len() == plan.setups.len(), "one queue set per worker");
        let generation = plan.policy.secrets.generation;
        let policy = Arc::new(ArcSwap::from_pointee(plan.policy));
        let workers = plan.setups.into_iter().zip(queues).collect();
        let rt = Runtime::start(policy, Arc::new(plan.neighbors), workers).context("starting workers")?;
        Ok(Node {
            rt,
            services: plan.services,
            started: Instant::now(),
            control: None,
            material: plan.material,
            rotate_secs: plan.rotate_secs,
            generation,
            device_stats: None,
        })
    }

    /// Adds the ports' device counters to [`Node::stats_json`].
    pub fn with_device_stats(mut self, r: Box<dyn DeviceStatsReader>) -> Self {
        self.device_stats = Some(Arc::from(r));
        self
    }

    /// The ports' device reader, for backends that have one (DPDK): the
    /// health checks read the link state through it.
    pub fn device_stats(&self) -> Option<Arc<dyn DeviceStatsReader>> {
        self.device_stats.clone()
    }

    /// Management tick: a new policy snapshot with the next cookie keys when
    /// the rotation epoch changed. Returns true if it rotated.
    pub fn rotate_if_due(&mut self, now: Nanos) -> bool {
        if self.rotate_secs == 0 {
            return false;
        }
        let secrets = secrets_at(&self.material, self.rotate_secs, now);
        if secrets.generation == self.generation {
            return false;
        }
        self.generation = secrets.generation;
        // Read-copy-update: a snapshot published meanwhile by the REST API
        // (`control::Control`) or by detection's countermeasures is kept,
        // only its secrets change.
        self.rt.policy.rcu(|cur| {
            let mut p = Policy::clone(cur);
            p.secrets = secrets.clone();
            p
        });
        true
    }

    pub fn snapshot(&self) -> (Snapshot, Vec<Snapshot>) {
        let n = self
            .control
            .as_ref()
            .map_or(self.services.len(), |c| c.service_names().len());
        self.rt.snapshot(n)
    }

    /// Packets passed per service name, from a [`Node::snapshot`] total.
    pub fn passed(&self, t: &Snapshot) -> Vec<(String, u64)> {
        match &self.control {
            Some(c) => c.passed_by_service(&t.passed),
            None => self.services.iter().cloned().zip(t.passed.iter().copied()).collect(),
        }
    }

    /// Counters, ports, next hops and workers as JSON (the `--stats` file).
    pub fn stats_json(&self) -> Value {
        let (t, per) = self.snapshot();
        let now = wall_clock();
        let port = |p: PortId| {
            let c = t.port(p);
            let mut v = json!({"rx_packets": c.rx_packets, "tx_packets": c.tx_packets, "tx_dropped": c.tx_dropped});
            if let Some(r) = &self.device_stats {
                v["device"] = match r.device_stats(p) {
                    Ok(d) => json!({
                        "ipackets": d.ipackets, "imissed": d.imissed, "ierrors": d.ierrors,
                        "rx_nombuf": d.rx_nombuf, "opackets": d.opackets, "oerrors": d.oerrors,
                        "rx_multiseg": d.rx_multiseg, "steered": d.steered, "steer_dropped": d.steer_dropped,
                    }),
                    Err(e) => json!({"error": e}),
                };
            }
            v
        };
        let n = &self.rt.neighbors;
        let neighbors: Vec<Value> = (0..n.len())
            .filter_map(|i| {
                let e = n.get(i)?;
                let (mac, state) = n.lookup(i, now);
                Some(json!({"ip": e.ip.to_string(), "mac": mac.map(mac_str), "state": state.as_str()}))
            })
            .collect();
        json!({
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "rx_packets": t.rx_packets,
            "rx_bytes": t.rx_bytes,
            "replies": t.replies,
            "icmp_too_big": t.icmp_too_big,
            "mss_clamped": t.mss_clamped,
            "csum_completed": t.csum_completed,
            "arp_requests": t.arp_requests,
            "passed_packets": t.passed_total(),
            "passed_by_service": self.passed(&t).into_iter().map(|(s, n)| (s, json!(n))).collect::<serde_json::Map<_, _>>(),
            "passed_bytes": t.passed_bytes,
            "services": self.services.iter().zip(&t.services).map(|(s, c)| (s.clone(), service_json(c))).collect::<serde_json::Map<_, _>>(),
            "samples": t.samples,
            "samples_dropped": t.samples_dropped,
            "dropped_packets": t.dropped_total(),
            // Every reason, zeros included, as the API and `scrub` reports.
            "drops_by_reason": classifier::DropReason::ALL.iter().map(|r| (r.as_str().to_string(), json!(t.dropped[*r as usize]))).collect::<serde_json::Map<_, _>>(),
            "ports": {"outside": port(PortId::Outside), "inside": port(PortId::Inside)},
            "neighbors": neighbors,
            "workers": per.iter().map(|w| json!({"rx_packets": w.rx_packets, "passed_packets": w.passed_total(), "busy_polls": w.busy_polls, "idle_polls": w.idle_polls})).collect::<Vec<_>>(),
        })
    }

    /// Writes [`Node::stats_json`] to `path` atomically (temporary file,
    /// then rename), so that a reader never sees half a file.
    pub fn write_stats(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&self.stats_json())?;
        std::fs::write(&tmp, text).with_context(|| format!("{}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))?;
        Ok(())
    }
}

/// Traffic addressed to one service, as `stats_json` shows it.
fn service_json(c: &dataplane::pipeline::ServiceCounters) -> Value {
    json!({
        "packets": c.packets,
        "bytes": c.bytes,
        "syns": c.syns,
        "new_flows": c.new_flows,
        "tcp": c.tcp,
        "udp": c.udp,
        "icmp": c.icmp,
        "other": c.other,
        "dropped_packets": c.dropped,
    })
}

/// One line of live figures over the interval since `prev` (taken `secs`
/// seconds ago): packets in and out per second, drops by reason, Mpps per
/// worker.
pub fn rate_line(now: &(Snapshot, Vec<Snapshot>), prev: &(Snapshot, Vec<Snapshot>), secs: f64) -> String {
    let (t, per) = now;
    let (p, pper) = prev;
    let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs.max(1e-9);
    let mut drops: Vec<(&str, f64)> = classifier::DropReason::ALL
        .iter()
        .map(|r| (r.as_str(), rate(t.dropped[*r as usize], p.dropped[*r as usize])))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    drops.sort_by(|a, b| b.1.total_cmp(&a.1));
    let drops: Vec<String> = drops.iter().take(5).map(|(r, v)| format!("{r} {}", kpps(*v))).collect();
    let workers: Vec<String> = per
        .iter()
        .zip(pper)
        .map(|(a, b)| format!("{:.3}", rate(a.rx_packets, b.rx_packets) / 1e6))
        .collect();
    format!(
        "in {} | gre out {} | replies {} | dropped {} [{}] | Mpps/worker [{}]",
        kpps(rate(t.rx_packets, p.rx_packets)),
        kpps(rate(t.passed_total(), p.passed_total())),
        kpps(rate(t.replies, p.replies)),
        kpps(rate(t.dropped_total(), p.dropped_total())),
        drops.join(", "),
        workers.join(" ")
    )
}

fn kpps(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} Mpps", v / 1e6)
    } else {
        format!("{:.1} kpps", v / 1e3)
    }
}

/// Final counters as text, for the end of `run` and `demo`.
pub fn summary(node: &Node) -> String {
    let (t, _) = node.snapshot();
    let mut s = format!(
        "received {} packets ({} bytes) in {:.1} s\npassed {} (GRE {} bytes), replies {} (ICMP too-big {}), dropped {}\n",
        t.rx_packets,
        t.rx_bytes,
        node.started.elapsed().as_secs_f64(),
        t.passed_total(),
        t.passed_bytes,
        t.replies,
        t.icmp_too_big,
        t.dropped_total()
    );
    for (name, n) in node.passed(&t) {
        s += &format!("  passed {name}: {n}\n");
    }
    for (r, n) in t.drops_by_reason() {
        s += &format!("  dropped {}: {n}\n", r.as_str());
    }
    for p in PortId::ALL {
        let c = t.port(p);
        s += &format!(
            "  port {}: rx {} tx {} tx_dropped {}\n",
            p.as_str(),
            c.rx_packets,
            c.tx_packets,
            c.tx_dropped
        );
    }
    s
}
