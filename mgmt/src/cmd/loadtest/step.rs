//! `moat loadtest run`: opens the ports, finds the next hop, runs the
//! client cores, the flood senders and the curl clients side by side,
//! prints a live line every second and the result.
//!
//! Threads: one per client core (`dataplane::loadtest::run` on its own
//! AF_PACKET sockets: `--iface` for sending and Moat's challenges,
//! `--rx-iface` for the origin's answers, each with a socket filter for
//! its share of `--src`), one per flood sender (its own send-only socket
//! on `--iface`), one per curl address, and this one reporting. The flood
//! starts with the clients and stops once the last client connection has
//! ended, so that every connection meets it.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use classifier::time::{Nanos, MILLISECOND, SECOND};
use dataplane::gen::live::{send_paced, Limit, LiveStats, Pacer};
use dataplane::gen::{parse_mix, GenConfig, Generator, Profile};
use dataplane::loadtest::{self, arp, http, CoreConfig, Layout, Live, Timing, Totals};
use dataplane::port::af_packet::{self, filter, single, AfPacketConfig, AfPacketQueues};
use dataplane::port::{Burst, PortId, Queues};

use super::curl::{self, CurlLive};
use super::report::{FloodReport, RunReport};
use super::RunArgs;

/// How long the next hop's ARP answer may take.
const ARP_TIMEOUT: Duration = Duration::from_secs(3);
/// The generator's event rate is bounded (it queues about a second of
/// events); the pacer sets the real rate.
const GEN_MAX_PPS: u64 = 1_000_000;

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let r = execute(a)?;
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&r.json())? + "\n";
        if path.as_os_str() == "-" {
            // The JSON alone on standard output; the summary goes aside.
            eprint!("{}", r.summary());
            return crate::cmd::output::print_stdout(&text);
        }
        std::fs::write(path, text).with_context(|| format!("--json {}", path.display()))?;
    }
    crate::cmd::output::print_stdout(&r.summary())
}

/// Checks what can be checked before opening anything.
fn validate(a: &RunArgs) -> anyhow::Result<Option<Vec<(Profile, u32)>>> {
    if a.iface == a.rx_iface {
        bail!(
            "--iface and --rx-iface are both {}: the answers must come back on another interface",
            a.iface
        );
    }
    if a.gateway.is_none() && a.dst_mac.is_none() {
        bail!("give --gateway (Moat's outside address, resolved by ARP) or --dst-mac");
    }
    for core in 0..a.cores {
        Layout::new(a.src.first, a.src.count, a.clients, a.cores, core)
            .map_err(anyhow::Error::msg)
            .context("--src/--clients/--cores")?;
    }
    if !a.curl.is_empty() && !curl::available() {
        bail!("--curl: `curl` is not on PATH");
    }
    let flood = match &a.flood {
        None => None,
        Some(m) => Some(parse_mix(m).map_err(anyhow::Error::msg).context("--flood")?),
    };
    Ok(flood)
}

/// Runs the step; the report of everything that ran.
pub fn execute(a: &RunArgs) -> anyhow::Result<RunReport> {
    let flood_mix = validate(a)?;
    let mut queues = open_cores(a)?;
    let src_mac = queues[0]
        .mac(PortId::Outside)
        .with_context(|| format!("{}: no MAC address", a.iface))?;
    let dst_mac = match (a.dst_mac, a.gateway) {
        (Some(m), _) => m,
        (None, Some(gw)) => arp::resolve(&mut queues[0], src_mac, a.src.first, gw, ARP_TIMEOUT)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--gateway {gw} on {}", a.iface))?,
        (None, None) => unreachable!("validated"),
    };
    for (core, q) in queues.iter_mut().enumerate() {
        let prog = filter::ipv4_dst_share(a.src.first, a.src.count, a.cores, core as u32);
        for port in PortId::ALL {
            q.set_rx_filter(port, &prog)?;
        }
        drain(q);
    }
    let configs: Vec<CoreConfig> = (0..a.cores)
        .map(|core| core_config(a, core, src_mac, dst_mac))
        .collect::<anyhow::Result<_>>()?;
    let segs0 = kernel_tcp_out_segs();
    let lives: Vec<Live> = (0..a.cores).map(|_| Live::default()).collect();
    let stop = AtomicBool::new(false);
    let flood_stop = AtomicBool::new(false);
    let flood_stats = LiveStats::default();
    let curl_live = CurlLive::default();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(a.duration);
    let url = if a.port == 80 {
        format!("http://{}{}", a.vip, a.path)
    } else {
        format!("http://{}:{}{}", a.vip, a.port, a.path)
    };
    let think = Duration::from_millis(a.think_ms);

    let (cores, floods, curls, flood_secs) = std::thread::scope(|sc| {
        let floods: Vec<_> = flood_mix
            .iter()
            .flat_map(|mix| (0..a.flood_cores).map(move |i| (mix, i)))
            .map(|(mix, i)| {
                let (fs, st) = (&flood_stop, &flood_stats);
                sc.spawn(move || flood(a, mix.clone(), i, (src_mac, dst_mac), fs, st))
            })
            .collect();
        let cores: Vec<_> = queues
            .into_iter()
            .zip(&configs)
            .zip(&lives)
            .map(|((mut q, cfg), live)| {
                let stop = &stop;
                sc.spawn(move || loadtest::run(&mut q, cfg, stop, live))
            })
            .collect();
        let curls: Vec<_> = a
            .curl
            .iter()
            .map(|&src| {
                let (url, live) = (&url, &curl_live);
                sc.spawn(move || curl::fetch_loop(src, url, until, think, a.timeout, live))
            })
            .collect();
        let mut tick = 1;
        while !cores.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if started.elapsed() >= Duration::from_secs(tick) {
                if !a.quiet {
                    eprintln!("{}", live_line(tick, &lives, &flood_stats, &curl_live));
                }
                tick += 1;
            }
        }
        let cores: Vec<_> = cores.into_iter().map(|h| h.join()).collect();
        flood_stop.store(true, Relaxed);
        let flood_secs = started.elapsed().as_secs_f64();
        let floods: Vec<_> = floods.into_iter().map(|h| h.join()).collect();
        let curls: Vec<_> = curls.into_iter().map(|h| h.join()).collect();
        (cores, floods, curls, flood_secs)
    });
    let elapsed = started.elapsed().as_secs_f64();
    for f in floods {
        f.map_err(|_| anyhow::anyhow!("a flood sender panicked"))?
            .map_err(anyhow::Error::msg)
            .context("flood")?;
    }
    let mut generated = Totals::default();
    let mut per_client = Vec::new();
    for c in cores {
        let c = c.map_err(|_| anyhow::anyhow!("a client core panicked"))?;
        generated.add(&c.totals);
        per_client.extend(c.clients);
    }
    let curl = if a.curl.is_empty() {
        None
    } else {
        let mut t = Totals::default();
        for c in curls {
            t.add(&c.map_err(|_| anyhow::anyhow!("a curl client panicked"))?);
        }
        Some(t)
    };
    let flood = a.flood.as_ref().map(|profile| {
        let t = flood_stats.totals();
        FloodReport {
            profile: profile.clone(),
            target_pps: a.flood_pps,
            sent: t.sent,
            bytes: t.bytes,
            errors: t.errors,
            secs: flood_secs,
        }
    });
    Ok(RunReport {
        clients: a.clients,
        cores: a.cores,
        src: a.src.to_string(),
        vip: a.vip,
        port: a.port,
        duration_secs: a.duration,
        elapsed_secs: elapsed,
        generated,
        per_client,
        flood,
        curl,
        kernel_tcp_out_segs: segs0.zip(kernel_tcp_out_segs()).map(|(a, b)| b.saturating_sub(a)),
    })
}

/// One AF_PACKET backend (one socket per interface) per core.
fn open_cores(a: &RunArgs) -> anyhow::Result<Vec<AfPacketQueues>> {
    (0..a.cores)
        .map(|_| {
            let cfg = AfPacketConfig {
                outside: a.iface.clone(),
                inside: a.rx_iface.clone(),
                workers: 1,
                block_size: 256 * 1024,
                block_count: 8,
                retire_ms: 1,
            };
            let mut q = af_packet::open(&cfg).context("opening the client ports (needs CAP_NET_RAW)")?;
            q.pop().context("no queues")
        })
        .collect()
}

/// Whatever the rings caught before their filters were set.
fn drain(q: &mut AfPacketQueues) {
    let mut rx: Burst<_> = Burst::new();
    for port in PortId::ALL {
        while q.rx_burst(port, &mut rx, 64) > 0 {
            for f in rx.drain(..) {
                q.free(f);
            }
        }
    }
}

fn nanos(secs: f64) -> Nanos {
    (secs * SECOND as f64) as Nanos
}

fn core_config(a: &RunArgs, core: u32, src_mac: [u8; 6], dst_mac: [u8; 6]) -> anyhow::Result<CoreConfig> {
    let layout = Layout::new(a.src.first, a.src.count, a.clients, a.cores, core).map_err(anyhow::Error::msg)?;
    let host = if a.port == 80 {
        a.vip.to_string()
    } else {
        format!("{}:{}", a.vip, a.port)
    };
    Ok(CoreConfig {
        layout,
        src_mac,
        dst_mac,
        dst: a.vip,
        dport: a.port,
        request: http::request(&host, &a.path),
        timing: Timing {
            syn_rto: a.syn_rto_ms * MILLISECOND,
            challenge_retry: a.challenge_retry_ms * MILLISECOND,
            timeout: nanos(a.timeout),
            reconnects: a.reconnects,
            reconnect_delay: a.reconnect_ms * MILLISECOND,
            think: a.think_ms * MILLISECOND,
            ..Timing::default()
        },
        duration: nanos(a.duration),
        ramp: nanos(a.ramp),
        seed: a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(u64::from(core)),
    })
}

/// One flood sender: the generator's `mix` toward the VIP, at its share of
/// `--flood-pps`, until `stop`.
fn flood(
    a: &RunArgs,
    mix: Vec<(Profile, u32)>,
    i: u32,
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    stop: &AtomicBool,
    stats: &LiveStats,
) -> Result<(), String> {
    let mut q = single::open_single(&a.iface, &single::SingleConfig::default()).map_err(|e| e.to_string())?;
    let pps = (a.flood_pps > 0).then(|| (a.flood_pps / u64::from(a.flood_cores)).max(1));
    let mut gen = Generator::new(GenConfig {
        mix,
        count: u64::MAX,
        seed: a.seed.wrapping_add(u64::from(i) + 1),
        vip: a.vip,
        ipv6_share: 0.0,
        tcp_port: a.port,
        pps: pps.unwrap_or(GEN_MAX_PPS).min(GEN_MAX_PPS),
        src_mac,
        dst_mac,
        ..GenConfig::default()
    });
    let mut pacer = Pacer::new(pps);
    send_paced(&mut q, PortId::Outside, &mut gen, &mut pacer, Limit::NONE, stop, stats)
}

/// `Tcp: OutSegs` of this network namespace's /proc/net/snmp.
fn kernel_tcp_out_segs() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp: "));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let col = names.split_whitespace().position(|n| n == "OutSegs")?;
    values.split_whitespace().nth(col)?.parse().ok()
}

fn live_line(tick: u64, lives: &[Live], flood: &LiveStats, curl: &CurlLive) -> String {
    let mut sum = [0u64; 5];
    for l in lives {
        for (s, v) in sum.iter_mut().zip(l.read()) {
            *s += v;
        }
    }
    let f = flood.totals();
    format!(
        "[{tick:>4} s] clients: tried {} completed {} failed {} | tx {} rx {} frames | flood: {} sent, {} errors | curl: {}/{}",
        sum[0],
        sum[1],
        sum[2],
        sum[3],
        sum[4],
        f.sent,
        f.errors,
        curl.completed.load(Relaxed),
        curl.tried.load(Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(extra: &[&str]) -> RunArgs {
        let mut v = vec![
            "moat",
            "--iface",
            "a0",
            "--rx-iface",
            "b0",
            "--src",
            "10.10.0.100-10.10.0.199",
            "--vip",
            "203.0.113.10",
            "--gateway",
            "10.10.0.1",
        ];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).unwrap().run
    }

    #[test]
    fn bad_combinations_are_refused_before_anything_opens() {
        let e = |a: RunArgs| format!("{:#}", validate(&a).unwrap_err());
        let mut same = args(&[]);
        same.rx_iface = "a0".into();
        assert!(e(same).contains("another interface"));
        let mut no_hop = args(&[]);
        no_hop.gateway = None;
        assert!(e(no_hop).contains("--gateway"));
        let mut one_addr = args(&["--cores", "2"]);
        one_addr.src = super::super::addr_range("10.0.0.1").unwrap();
        assert!(e(one_addr).contains("at least one per core"));
        assert!(e(args(&["--flood", "tsunami"])).contains("unknown profile"));
        assert_eq!(
            validate(&args(&["--flood", "syn-flood=1,ack-flood=1"])).unwrap(),
            Some(vec![(Profile::SynFlood, 1), (Profile::AckFlood, 1)])
        );
        assert!(Cli::try_parse_from(["moat", "--iface", "a", "--rx-iface", "b"]).is_err());
    }

    #[test]
    fn the_core_config_follows_the_flags() {
        let a = args(&[
            "--port",
            "8080",
            "--path",
            "/x",
            "--syn-rto-ms",
            "3000",
            "--timeout",
            "7",
            "--think-ms",
            "0",
        ]);
        let c = core_config(&a, 0, [2; 6], [4; 6]).unwrap();
        assert_eq!(
            (c.dport, c.timing.syn_rto, c.timing.timeout, c.timing.think),
            (8080, 3 * SECOND, 7 * SECOND, 0)
        );
        let req = String::from_utf8(c.request).unwrap();
        assert!(
            req.starts_with("GET /x HTTP/1.1\r\nHost: 203.0.113.10:8080\r\n"),
            "{req}"
        );
        assert_eq!(c.layout.clients(), 100);
    }

    #[test]
    fn kernel_counters_are_read() {
        assert!(
            kernel_tcp_out_segs().is_some(),
            "/proc/net/snmp has Tcp: OutSegs on Linux"
        );
    }
}
