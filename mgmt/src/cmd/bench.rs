//! `moat bench`: the appliance on the memory backend, flat out, one code
//! path at a time, for 1..N workers: each worker replays template frames
//! (copied into its pool frames as a NIC would DMA them, spoofed floods with
//! a new random source per packet) through the full worker loop — burst RX,
//! parse, classify, in-place reply or GRE encapsulation, TX into a counting
//! sink. Prints Mpps per worker and ns per packet, with the machine, and the
//! peak RSS before and after (memory must stay flat however many sources a
//! flood uses).

use std::time::{Duration, Instant};

use dataplane::gen::bench::{templates, Workload};
use dataplane::port::memory::{MemoryQueues, Source, Templates};

use classifier::policy::SynAuth;

use crate::config::Config;
use crate::node::{self, Node};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Largest number of workers (1 to 256); every count from 1 to this is
    /// measured (or only the counts given with --worker-counts).
    #[arg(long, default_value_t = 1, value_parser = workers())]
    pub workers: u32,
    /// Explicit worker counts, each 1 to 256, e.g. `1,2,4,8,14`.
    #[arg(long, value_delimiter = ',', value_parser = workers())]
    pub worker_counts: Vec<u32>,
    /// Seconds measured per run (after a half-second warm-up).
    #[arg(long, default_value_t = 3.0, value_parser = crate::cli::seconds)]
    pub seconds: f64,
    /// `all`, or one of `syn-flood`, `ack-flood`, `clean`.
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// Packets per burst, 1 to 512.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=512))]
    pub burst: u32,
    /// Template frames replayed per worker, 16 to 1048576.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    pub templates: u64,
    /// Instead of a time: each worker handles exactly this many packets
    /// (no warm-up), for instruction counts under callgrind, which are
    /// repeatable where wall-clock figures are not (`benches/callgrind.sh`).
    #[arg(long)]
    pub packets: Option<u64>,
    /// Entries per worker in each of the flow, verified-source and source
    /// tables (the config's default), 1024 to 2^24.
    #[arg(long, default_value_t = 65536,
          value_parser = clap::value_parser!(u32).range(1024..=crate::config::MAX_TABLE_SIZE as i64))]
    pub table_size: u32,
    /// Measure nothing: write each workload's frames (`--templates` of
    /// them) and a config for the DPDK backend on `net_pcap` virtual
    /// devices into this folder, for `benches/dpdk-vs-testpmd.sh`.
    #[arg(long)]
    pub export_dpdk: Option<std::path::PathBuf>,
    /// Workers sample one packet in this many, as `[mgmt] sample_every`
    /// (0: off, at most 2^24); the main thread drains the queues as the
    /// detection thread would.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(0..=1 << 24))]
    pub sample_every: u32,
    /// First-segment inspection on: the service gets an `l7_rules` deny
    /// rule no workload matches (`path_prefix = "/moat-bench-never"`), so
    /// every flow's first bytes are judged and every later data segment is
    /// checked for a keep-alive request: what turning inspection on costs.
    #[arg(long)]
    pub inspect: bool,
    /// The two-stage burst, as `[dataplane] two_stage`: auto, on or off.
    #[arg(long, value_enum, default_value_t = crate::config::TwoStage::Auto)]
    pub two_stage: crate::config::TwoStage,
}

/// The parser of worker counts: 1 to 256.
fn workers() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(crate::cli::MAX_WORKERS))
}

/// Peak resident set size of this process, KiB (`VmHWM`), if readable.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub workload: Workload,
    pub workers: u32,
    pub packets: u64,
    pub secs: f64,
    /// Share of the packets that took the workload's intended path.
    pub on_path: f64,
    /// Peak RSS (KiB) when measuring started (after the warm-up, tables
    /// already touched by millions of sources) and when it ended.
    pub rss: Option<(u64, u64)>,
}

impl Measurement {
    pub fn mpps_per_worker(&self) -> f64 {
        self.packets as f64 / self.secs / 1e6 / f64::from(self.workers)
    }
}

/// The demo node (`demo::DEMO_CONFIG`) reduced to what a workload measures:
/// its first service (web, 203.0.113.10) with SYN authentication on for the
/// floods and off for clean traffic, per-source limits on as on a real node
/// (every new spoofed source takes a slot in the source table, evicting the
/// oldest: what keeps memory flat under a random-source flood), a GRE key,
/// pure busy polling and no key rotation.
fn config(w: Workload, workers: u32, args: &BenchArgs) -> anyhow::Result<Config> {
    let mut cfg = Config::from_toml_str(super::demo::DEMO_CONFIG, "bench config", std::path::Path::new("."))?;
    cfg.node.cookie_rotate_secs = 0;
    cfg.services.truncate(1);
    let svc = &mut cfg.services[0];
    svc.syn_auth = if w == Workload::Clean {
        SynAuth::Off
    } else {
        SynAuth::ChallengeAck
    };
    svc.limits.src_pps = 1_000_000;
    svc.limits.src_syn_pps = 100_000;
    if args.inspect {
        svc.l7_rules.push(crate::config::l7::L7RuleConfig {
            path_prefix: Some("/moat-bench-never".into()),
            ..Default::default()
        });
    }
    cfg.origins[0].key = Some(42);
    let d = &mut cfg.dataplane;
    d.idle_sleep_us = 0;
    d.workers = workers;
    d.burst = args.burst;
    d.flow_table_size = args.table_size;
    d.verified_table_size = args.table_size;
    d.source_table_size = args.table_size;
    cfg.mgmt.sample_every = args.sample_every;
    d.two_stage = args.two_stage;
    let cfg = cfg.revalidated()?;
    cfg.memory_gate()?;
    Ok(cfg)
}

/// Packets that took the path workload `w` measures, in `s`.
fn on_path(w: Workload, s: &dataplane::runtime::Snapshot) -> u64 {
    match w {
        Workload::SynFlood => s.replies,
        Workload::AckFlood => s.dropped_total(),
        Workload::Clean => s.passed_total(),
    }
}

/// Runs `w` on `workers` workers for `secs` seconds.
pub fn measure(w: Workload, workers: u32, args: &BenchArgs) -> anyhow::Result<Measurement> {
    let cfg = config(w, workers, args)?;
    let plan = node::plan(&cfg, [None, None], false, false)?;
    let macs = ([0x02, 0, 0, 0, 0, 0xfe], cfg.outside.mac_or_default());
    let frames: std::sync::Arc<[Vec<u8>]> = templates(
        w,
        args.templates as usize,
        core::net::Ipv4Addr::new(203, 0, 113, 10),
        macs,
        7,
    )
    .into();
    let queues = (0..workers as usize)
        .map(|i| {
            let t = Templates {
                frames: frames.clone(),
                next: (i * 997) % frames.len(),
                spoof: w.spoofed().then_some(0x5eed + i as u64),
            };
            let limit = args.packets.unwrap_or(u64::MAX);
            MemoryQueues::new(Source::Templates(t), (args.burst as usize * 6).max(256), 0, limit)
        })
        .collect();
    let mut node = Node::start(plan, queues)?;
    let mut samples = node.rt.take_samples();
    let mut drain = || {
        for q in &mut samples {
            dataplane::runtime::sample::drain(q, drop);
        }
    };
    if args.packets.is_some() {
        // A fixed count: every worker stops by itself once its source ran dry.
        let t = Instant::now();
        while !node.rt.finished() {
            std::thread::sleep(Duration::from_millis(1));
            drain();
        }
        let secs = t.elapsed().as_secs_f64();
        node.rt.stop().map_err(anyhow::Error::msg)?;
        let (b, _) = node.snapshot();
        return Ok(Measurement {
            workload: w,
            workers,
            packets: b.rx_packets,
            secs,
            on_path: on_path(w, &b) as f64 / b.rx_packets.max(1) as f64,
            rss: None,
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = peak_rss_kib();
    let (a, _) = node.snapshot();
    let t = Instant::now();
    let secs = Duration::from_secs_f64(args.seconds.max(0.1));
    while t.elapsed() < secs {
        std::thread::sleep((secs - t.elapsed()).min(Duration::from_millis(20)));
        drain();
    }
    let (b, _) = node.snapshot();
    let rss = rss0.zip(peak_rss_kib());
    let secs = t.elapsed().as_secs_f64();
    node.rt.stop().map_err(anyhow::Error::msg)?;
    let packets = b.rx_packets - a.rx_packets;
    let on = on_path(w, &b) - on_path(w, &a);
    Ok(Measurement {
        workload: w,
        workers,
        packets,
        secs,
        on_path: on as f64 / packets.max(1) as f64,
        rss,
    })
}

/// Writes `<workload>.pcap` (the template frames, as `measure` replays
/// them, spoofed floods with the generator's random sources), `<workload>.toml`
/// (the same node as `measure`'s, on the DPDK backend: the outside port is a
/// `net_pcap` device replaying that capture forever, both ports transmit
/// into /dev/null) and `empty.pcap` (the inside port's input) into `dir`.
pub fn export_dpdk(workloads: &[Workload], args: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let dir = dir.canonicalize().with_context(|| dir.display().to_string())?;
    let empty = dir.join("empty.pcap");
    dataplane::pcap::create_output(&empty)?.finish()?;
    for &w in workloads {
        let mut cfg = config(w, 1, args)?;
        let macs = ([0x02, 0, 0, 0, 0, 0xfe], cfg.outside.mac_or_default());
        let frames = templates(
            w,
            args.templates as usize,
            core::net::Ipv4Addr::new(203, 0, 113, 10),
            macs,
            7,
        );
        let pcap = dir.join(format!("{}.pcap", w.name()));
        let mut out = dataplane::pcap::create_output(&pcap)?;
        for (i, f) in frames.iter().enumerate() {
            out.write(i as u64 * 1_000, f)?;
        }
        out.finish()?;
        cfg.dataplane.backend = crate::config::Backend::Dpdk;
        cfg.mgmt.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.outside.iface = "net_pcap0".into();
        cfg.inside.iface = "net_pcap1".into();
        cfg.dataplane.dpdk.eal_args = vec![
            "--no-huge".into(),
            "-m".into(),
            "512".into(),
            "--no-pci".into(),
            "--no-shconf".into(),
            "--file-prefix".into(),
            format!("moat-bench-{}", w.name()),
            "--vdev".into(),
            format!("net_pcap0,rx_pcap={},infinite_rx=1,tx_pcap=/dev/null", pcap.display()),
            "--vdev".into(),
            format!("net_pcap1,rx_pcap={},tx_pcap=/dev/null", empty.display()),
        ];
        // net_pcap's infinite RX keeps the whole capture in mbufs of the
        // port's pool, beside what the queues hold.
        cfg.dataplane.dpdk.mbufs = u32::try_from(frames.len() * 2 + 16383).unwrap_or(u32::MAX);
        let toml = dir.join(format!("{}.toml", w.name()));
        std::fs::write(&toml, cfg.to_toml_string()).with_context(|| toml.display().to_string())?;
        println!("{}: {} frames, {}", w.name(), frames.len(), toml.display());
    }
    Ok(())
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let workloads: Vec<Workload> = if args.workload == "all" {
        Workload::ALL.to_vec()
    } else {
        vec![Workload::from_name(&args.workload).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown workload \"{}\" (all, syn-flood, ack-flood, clean)",
                args.workload
            )
        })?]
    };
    if let Some(dir) = &args.export_dpdk {
        return export_dpdk(&workloads, args, dir);
    }
    let counts: Vec<u32> = if args.worker_counts.is_empty() {
        (1..=args.workers.max(1)).collect()
    } else {
        args.worker_counts.clone()
    };
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    println!(
        "moat bench: memory backend, burst {}, {} s per run, {} cores of {}",
        args.burst,
        args.seconds,
        cores,
        cpu_model()
    );
    let rss0 = peak_rss_kib();
    println!(
        "{:<10} {:>7} {:>11} {:>12} {:>10} {:>9} {:>10}  peak RSS MiB (start -> end)",
        "workload", "workers", "Mpps total", "Mpps/worker", "ns/packet", "on path", "sources"
    );
    for w in workloads {
        for &n in &counts {
            let m = measure(w, n, args)?;
            let per = m.mpps_per_worker();
            let rss = m.rss.map_or("-".into(), |(a, b)| {
                format!("{:.1} -> {:.1}", a as f64 / 1024.0, b as f64 / 1024.0)
            });
            println!(
                "{:<10} {:>7} {:>11.3} {:>12.3} {:>10.1} {:>8.1}% {:>10}  {rss}",
                w.name(),
                n,
                per * f64::from(n),
                per,
                1e3 / per.max(1e-9),
                100.0 * m.on_path,
                if w.spoofed() {
                    format!("{:.1}M", m.packets as f64 / 1e6)
                } else {
                    "-".into()
                }
            );
        }
    }
    if let (Some(a), Some(b)) = (rss0, peak_rss_kib()) {
        println!(
            "peak RSS: {:.1} MiB before the first run, {:.1} MiB after the last",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
    Ok(())
}
