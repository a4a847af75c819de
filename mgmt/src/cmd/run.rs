//! `moat run --config FILE`: the appliance. Opens the configured backend's
//! ports, starts one pinned worker per configured core, and supervises them
//! from this (management) thread: cookie key rotation, a JSON counters file
//! rewritten every second, an optional live line per second. SIGINT or
//! SIGTERM stop the workers cleanly: each finishes its burst, sends what it
//! holds and closes its outputs; then the final counters are printed.
//!
//! The management plane starts with the workers: the runtime changes stored
//! under `[node] state_dir` are applied over the file before the workers
//! start ([`Control::load`]), and the REST API serves on its own thread
//! (`[mgmt]`, see [`crate::api`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use classifier::cookie::CookieSecrets;
use dataplane::gen::{GenConfig, Generator};
use dataplane::port::memory::{MemoryQueues, Source};
use dataplane::port::pcap::{PcapPaths, PcapQueues};
use dataplane::runtime::wall_clock;

use crate::api::{self, auth};
use crate::config::{Backend, Config};
use crate::control::{Control, Startup};
use crate::detect::countermeasures::ControlCountermeasures;
use crate::detect::engine::{Engine, SharedView};
use crate::metrics::Counters;
use crate::node::{self, Node};
use crate::report::store::ReportStore;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Config file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Write the counters as JSON to this file every second and at exit.
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_parser = crate::cli::seconds)]
    pub duration: Option<f64>,
    /// Print a line of live figures every second.
    #[arg(long)]
    pub live: bool,
}

/// SIGINT and SIGTERM set the returned flag (the second one of either
/// kills the process the default way, for a stuck shutdown).
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_default(sig, Arc::clone(&flag)).context("signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&flag)).context("signal handler")?;
    }
    Ok(flag)
}

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
        eprintln!(
            "moat: dpdk port {} = {} (port {}, {}, socket {}), spreading: {}",
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

/// Supervises `node` until `stop`, `duration`, or the workers ending on
/// their own; then stops them. `every_second` is called once per second.
pub fn supervise(
    node: &mut Node,
    stop: &AtomicBool,
    duration: Option<Duration>,
    stats: Option<&Path>,
    mut every_second: impl FnMut(&Node, f64),
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut last = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if stop.load(Relaxed) || node.rt.finished() || duration.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
        if last.elapsed() >= Duration::from_secs(1) {
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            node.rotate_if_due(wall_clock());
            if let Some(p) = stats {
                node.write_stats(p)?;
            }
            every_second(node, secs);
        }
    }
    let res = node.rt.stop().map_err(anyhow::Error::msg);
    if let Some(p) = stats {
        node.write_stats(p)?;
    }
    res
}

/// The management plane of a started node: live control, counters and,
/// when enabled, the REST API.
#[derive(Debug)]
pub struct Mgmt {
    pub control: Arc<Control>,
    pub counters: Arc<Counters>,
    pub server: Option<api::Server>,
}

impl Mgmt {
    /// Takes over `node` (started from `startup.config()`); serves the API
    /// on `api` (address, token) when given.
    pub fn start(
        startup: Startup,
        node: &Node,
        api: Option<(std::net::SocketAddr, auth::Token)>,
        detect: Option<api::DetectApi>,
    ) -> anyhow::Result<Mgmt> {
        let name = startup.config().node.name.clone();
        let counters = Counters::of(&node.rt);
        let control = Arc::new(Control::new(
            startup,
            Arc::clone(&node.rt.policy),
            Arc::clone(&counters),
        ));
        let server = match api {
            Some((listen, token)) => Some(api::Server::start(
                listen,
                api::ApiState {
                    control: Arc::clone(&control),
                    counters: Arc::clone(&counters),
                    mail: Arc::clone(&node.rt.mail),
                    node: name,
                    token,
                    detect,
                },
            )?),
            None => None,
        };
        Ok(Mgmt {
            control,
            counters,
            server,
        })
    }

    /// Stops the API (the workers are the caller's).
    pub fn stop(&mut self) {
        if let Some(s) = &mut self.server {
            s.stop();
        }
    }
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let file = Config::load(&args.config)?;
    file.startup_gates(std::env::var(auth::TOKEN_ENV).ok().as_deref())?;
    let startup = Control::load(file)?;
    let cfg = startup.config().clone();
    let token = if cfg.mgmt.enabled {
        let env = std::env::var(auth::TOKEN_ENV).ok();
        Some(auth::load(&cfg, cfg.mgmt.listen, env)?)
    } else {
        None
    };
    let stop = stop_on_signals()?;
    let mut node = start(&cfg)?;
    eprintln!(
        "moat: running {} worker(s) on the {} backend (outside {}, inside {})",
        cfg.dataplane.workers,
        cfg.dataplane.backend.as_str(),
        cfg.outside.iface,
        cfg.inside.iface
    );
    let detect = cfg.detection.enabled.then(|| api::DetectApi {
        view: SharedView::default(),
        reports: ReportStore::of_config(&cfg),
    });
    let api = token.as_ref().map(|(t, _)| (cfg.mgmt.listen, t.clone()));
    let mut mgmt = match Mgmt::start(startup, &node, api, detect.clone()) {
        Ok(m) => m,
        Err(e) => {
            let _ = node.rt.stop();
            return Err(e);
        }
    };
    node.control = Some(Arc::clone(&mgmt.control));
    if let (Some(s), Some((_, src))) = (&mgmt.server, &token) {
        eprintln!("moat: API listening on http://{}/api/v1/ ({src})", s.addr);
    }
    let mut engine = match detect {
        Some(d) => {
            let cm = ControlCountermeasures(Arc::clone(&mgmt.control));
            let engine = Engine::new(&cfg, node.rt.stats.clone(), node.rt.take_samples(), Box::new(cm))
                .with_view(d.view)
                .with_control(Arc::clone(&mgmt.control));
            match engine.spawn() {
                Ok(h) => Some(h),
                Err(e) => {
                    mgmt.stop();
                    let _ = node.rt.stop();
                    return Err(anyhow::Error::new(e).context("starting the detection thread"));
                }
            }
        }
        None => None,
    };
    let mut prev = node.snapshot();
    let live = args.live;
    let counters = Arc::clone(&mgmt.counters);
    let res = supervise(
        &mut node,
        &stop,
        args.duration.map(Duration::from_secs_f64),
        args.stats.as_deref(),
        |n, secs| {
            counters.tick();
            let now = n.snapshot();
            if live {
                println!("{}", node::rate_line(&now, &prev, secs));
            }
            prev = now;
        },
    );
    mgmt.stop();
    if let Some(e) = engine.as_mut() {
        e.stop();
    }
    print!("{}", node::summary(&node));
    res
}
