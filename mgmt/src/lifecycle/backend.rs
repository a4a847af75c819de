//! Opening a node's backend: the configured ports (memory generator,
//! capture files, AF_PACKET sockets or DPDK devices), planned into worker
//! setups and started as pinned workers ([`start`]).

use anyhow::Context;
use classifier::cookie::CookieSecrets;
use dataplane::gen::{GenConfig, Generator};
use dataplane::port::memory::{MemoryQueues, Source};
use dataplane::port::pcap::{PcapPaths, PcapQueues};
use dataplane::runtime::wall_clock;

use crate::config::{Backend, Config};
use crate::node::{self, Node};

/// The generator a memory worker receives from: the configured mix toward
/// the config's first IPv4 and IPv6 VIPs, timestamps from now, legitimate
/// clients answering challenges with the node's cookie secrets.
pub fn memory_source(cfg: &Config, worker: usize, secrets: &CookieSecrets) -> anyhow::Result<Source> {
    let m = &cfg.dataplane.memory;
    let mut g = GenConfig {
        mix: dataplane::gen::parse_mix(&m.mix).map_err(anyhow::Error::msg)?,
        count: if m.count == 0 { u64::MAX } else { m.count },
        seed: m.seed.wrapping_add(worker as u64),
        secrets: Some(secrets.clone()),
        start: wall_clock(),
        pps: if m.pps == 0 { 1_000_000 } else { m.pps },
        ..GenConfig::default()
    };
    if let Some(s) = cfg.services.iter().find(|s| s.vip.is_ipv4()) {
        if let core::net::IpAddr::V4(v) = s.vip {
            g.vip = v;
        }
        g.syn_auth = s.syn_auth;
    }
    if let Some(core::net::IpAddr::V6(v)) = cfg.services.iter().map(|s| s.vip).find(|v| v.is_ipv6()) {
        g.vip6 = v;
    } else {
        g.ipv6_share = 0.0;
    }
    g.dst_mac = cfg.outside.mac_or_default();
    let mut gen = Generator::new(g);
    if m.attack_after_secs > 0 {
        let mix = dataplane::gen::parse_mix(&m.attack_mix).map_err(anyhow::Error::msg)?;
        // The backend delivers `pps` packets a second: the phase in packets.
        let pps = if m.pps == 0 { 1_000_000 } else { m.pps };
        gen.set_attack_phase(
            &mix,
            u64::from(m.attack_after_secs) * pps,
            u64::from(m.attack_secs) * pps,
        );
    }
    Ok(Source::Generator(Box::new(gen)))
}

/// Pool frames per worker: every burst array full at once, twice over.
fn pool_size(cfg: &Config) -> usize {
    (cfg.dataplane.burst as usize * 3 * 2).max(256)
}

/// Opens the backend of `cfg` and starts its workers.
pub fn start(cfg: &Config) -> anyhow::Result<Node> {
    let workers = cfg.dataplane.workers as usize;
    match cfg.dataplane.backend {
        Backend::Memory => {
            let plan = node::plan(cfg, [None, None], false, true)?;
            cfg.gre_params_static(&plan.policy)?;
            let m = &cfg.dataplane.memory;
            let queues = (0..workers)
                .map(|i| {
                    let src = memory_source(cfg, i, &plan.policy.secrets)?;
                    let limit = if m.count == 0 { u64::MAX } else { m.count };
                    Ok(MemoryQueues::new(src, pool_size(cfg), m.pps, limit))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Node::start(plan, queues)
        }
        Backend::Pcap => {
            let plan = node::plan(cfg, [None, None], false, false)?;
            cfg.gre_params_static(&plan.policy)?;
            let p = &cfg.dataplane.pcap;
            let paths = PcapPaths {
                rx: p.rx.as_deref().map(|x| cfg.resolve(x)),
                tx: [
                    p.outside_tx.as_deref().map(|x| cfg.resolve(x)),
                    p.inside_tx.as_deref().map(|x| cfg.resolve(x)),
                ],
            };
            let q = PcapQueues::open(&paths, pool_size(cfg))?;
            Node::start(plan, vec![q])
        }
        Backend::AfPacket => start_af_packet(cfg),
        Backend::Dpdk => start_dpdk(cfg),
    }
}

/// The DPDK backend: EAL from `dataplane.dpdk.eal_args`, the ports by
/// device name, planned with the MACs the devices report.
#[cfg(feature = "dpdk")]
fn start_dpdk(cfg: &Config) -> anyhow::Result<Node> {
    use dataplane::port::dpdk;
    use dataplane::port::PortId;
    let opts = cfg
        .dataplane
        .dpdk_options(cfg.outside.iface.clone(), cfg.inside.iface.clone());
    let d = dpdk::open(&opts)?;
    for p in PortId::ALL {
        let i = d.stats.info(p);
        tracing::info!(
            "dpdk port {} = {} (port {}, {}, socket {}), spreading: {}",
            p.as_str(),
            i.name,
            i.id,
            i.driver,
            i.socket,
            i.spread.as_str()
        );
    }
    let macs = [
        Some(d.stats.info(PortId::Outside).mac),
        Some(d.stats.info(PortId::Inside).mac),
    ];
    // A `net_pcap` outside port replays a capture: its frames carry the
    // capture's clock (the RX timestamp field), so, as on the pcap backend,
    // next hops come from static MACs only and cookie keys do not rotate
    // with the wall clock (the golden test holds it to `moat scrub`).
    let live = d.stats.info(PortId::Outside).driver != "net_pcap";
    let plan = node::plan(cfg, macs, live, live)?;
    Ok(Node::start(plan, d.queues)?.with_device_stats(Box::new(d.stats)))
}

#[cfg(not(feature = "dpdk"))]
fn start_dpdk(_cfg: &Config) -> anyhow::Result<Node> {
    anyhow::bail!(
        "backend \"dpdk\" is not built into this binary: build it with `cargo build --release --features dpdk` \
         (needs libdpdk-dev and libclang-dev)"
    )
}

#[cfg(target_os = "linux")]
fn start_af_packet(cfg: &Config) -> anyhow::Result<Node> {
    use dataplane::port::af_packet::{self, AfPacketConfig};
    use dataplane::port::{PortId, Queues};
    let a = &cfg.dataplane.af_packet;
    let queues = af_packet::open(&AfPacketConfig {
        outside: cfg.outside.iface.clone(),
        inside: cfg.inside.iface.clone(),
        workers: cfg.dataplane.workers as usize,
        block_size: a.block_size as usize,
        block_count: a.block_count as usize,
        retire_ms: a.retire_ms,
    })
    .context("af_packet backend")?;
    let macs = match queues.first() {
        Some(q) => [q.mac(PortId::Outside), q.mac(PortId::Inside)],
        None => [None, None],
    };
    let plan = node::plan(cfg, macs, true, true)?;
    Node::start(plan, queues)
}

#[cfg(not(target_os = "linux"))]
fn start_af_packet(_cfg: &Config) -> anyhow::Result<Node> {
    anyhow::bail!("backend \"af_packet\" needs Linux")
}
