//! `moat demo`: the whole appliance on the memory backend, with no NIC, no
//! root and no files: pinned poll-mode workers receive the built-in
//! generator's attack mix (every profile, IPv4 and IPv6, with legitimate
//! clients that answer SYN challenges as real stacks do), and a line of live
//! figures is printed every second until SIGINT/SIGTERM or `--duration`:
//! packets in, GRE out, replies, drops by reason, Mpps per worker.

use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::lifecycle::{Options, Running};
use crate::node;

/// The demo node: one web service with challenge-ack and a UDP game port
/// guarded by a payload rule.
pub const DEMO_CONFIG: &str = r#"
[node]
name = "demo"

[dataplane]
backend = "memory"

[[ports]]
name = "outside"
role = "outside"
iface = "mem0"
ip = "10.10.0.1/24"
mac = "02:00:00:00:00:01"

[[ports]]
name = "inside"
role = "inside"
iface = "mem1"
ip = "192.168.77.1/24"
mac = "02:00:00:00:01:01"

[[origins]]
name = "web"
tunnel_src = "192.168.77.1"
tunnel_dst = "192.168.77.2"
mac = "02:00:00:00:01:02"
mtu = 1476

[[services]]
name = "web"
vip = "203.0.113.10"
origin = "web"
allow = ["tcp/80", "udp/7777", "icmp"]
syn_auth = "challenge-ack"

[[services.payload_rules]]
port = "udp/7777"
offset = 0
value = "47414d45"

[[services]]
name = "web6"
vip = "2001:db8::10"
origin = "web"
allow = ["tcp/80", "udp/7777", "icmp"]
syn_auth = "challenge-ack"

[[services.payload_rules]]
port = "udp/7777"
offset = 0
value = "47414d45"
"#;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Workers, one per core: 1 to 256.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::cli::MAX_WORKERS)))]
    pub workers: u32,
    /// Packets per second per worker, at most 1000000 (0: as fast as the generator goes).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=crate::config::MAX_MEMORY_PPS))]
    pub pps: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_parser = crate::cli::seconds)]
    pub duration: Option<f64>,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Traffic mix, as `moat gen --profile` takes it.
    #[arg(long, default_value = "mix")]
    pub mix: String,
    /// Serve the REST API and /metrics on this address (loopback: a token
    /// is generated under a temporary state folder unless MOAT_API_TOKEN
    /// is set).
    #[arg(long)]
    pub api: Option<std::net::SocketAddr>,
}

/// The demo node's config with the command line's settings, validated
/// again as a file would be (so that a bad setting is named as the flag's
/// key, `dataplane.workers: ...`, rather than found later).
pub fn demo_config(args: &DemoArgs) -> anyhow::Result<Config> {
    let mut cfg = Config::from_toml_str(DEMO_CONFIG, "demo config", std::path::Path::new("."))?;
    cfg.dataplane.workers = args.workers;
    let m = &mut cfg.dataplane.memory;
    m.pps = args.pps;
    m.seed = args.seed;
    m.mix.clone_from(&args.mix);
    dataplane::gen::parse_mix(&m.mix).map_err(anyhow::Error::msg)?;
    Ok(cfg.revalidated()?)
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let mut cfg = demo_config(args)?;
    // Runtime changes and the generated token of a demo are the demo's
    // own: a new private folder (0700, an unpredictable name), removed at
    // the end.
    let state = tempfile::Builder::new()
        .prefix("moat-demo-")
        .tempdir()
        .context("the demo's state folder")?;
    cfg.node.state_dir = state.path().to_path_buf();
    let opts = Options {
        api: args.api,
        detection: false,
        config_file: None,
    };
    let mut running = Running::start(cfg.clone(), opts)?;
    if let Some((addr, src)) = &running.api {
        println!("moat demo: API on http://{addr}/api/v1/ ({src})");
    }
    println!(
        "moat demo: {} worker(s) on the memory backend, mix \"{}\", {}; Ctrl-C stops",
        cfg.dataplane.workers,
        args.mix,
        if args.pps == 0 {
            "flat out".to_string()
        } else {
            format!("{} pps per worker", args.pps)
        }
    );
    let mut prev = running.node.snapshot();
    let mut t = 0u64;
    running.supervise(args.duration.map(Duration::from_secs_f64), None, |n, secs| {
        t += 1;
        let now = n.snapshot();
        println!("{t:>4}s {}", node::rate_line(&now, &prev, secs));
        prev = now;
    });
    let res = running.stop();
    print!("{}", node::summary(&running.node));
    drop(running);
    drop(state);
    res
}
