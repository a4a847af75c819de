//! `moat gen --iface`: the generator's frames sent on a live port, Pktgen
//! style: N sender threads (optionally pinned), each with its own socket
//! or DPDK queue, its own generator and its own token bucket
//! (`dataplane::gen::live`), a line on standard error every second (the
//! last second's packet and bit rates, errors, the total) and a summary on
//! standard output at the end. SIGINT or SIGTERM stops the senders (the
//! summary still comes).
//!
//! Threads split the work: thread `k` of N sends `count / N` packets (the
//! first `count % N` one more) at `pps / N` (the first `pps % N` one
//! more), from seed `seed + k`. With one thread the frames are exactly
//! those `moat gen --out` writes for the same arguments (the generator's
//! event rate is `--pps`, capped at 1,000,000 as for a capture; `max`
//! counts as 1,000,000).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dataplane::gen::live::{send_paced, Limit, LiveStats, LiveTotals, Pacer, DEFAULT_BURST};
use dataplane::gen::{GenConfig, Generator};
use dataplane::port::af_packet::single::{open_single, SingleConfig};
use dataplane::port::{PortId, Queues};

use super::gen::{config, GenArgs, Rate, DEFAULT_COUNT};

/// What one sender thread does.
#[derive(Debug, Clone)]
struct Thread {
    core: Option<core_affinity::CoreId>,
    cfg: GenConfig,
    pps: Option<u64>,
    limit: Limit,
}

/// The sender threads `args` ask for (errors name the flag).
fn plan(args: &GenArgs) -> anyhow::Result<Vec<Thread>> {
    let base = config(args)?;
    let cores = cores(args)?;
    let n = cores.len() as u64;
    let pps = match args.pps {
        Rate::Max => None,
        Rate::Pps(p) if p < n => bail!("--pps {p} is less than one packet a second per thread ({n} threads)"),
        Rate::Pps(p) => Some(p),
    };
    let count = match (args.count, args.duration) {
        (Some(c), _) => Some(c),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_COUNT),
    };
    let duration = args.duration.map(Duration::from_secs_f64);
    let share = |total: u64, k: u64| total / n + u64::from(k < total % n);
    Ok(cores
        .into_iter()
        .zip(0..n)
        .map(|(core, k)| {
            let packets = count.map(|c| share(c, k));
            let pps = pps.map(|p| share(p, k));
            let mut cfg = base.clone();
            cfg.seed = base.seed.wrapping_add(k);
            cfg.count = packets.unwrap_or(u64::MAX);
            cfg.pps = pps.map_or(cfg.pps, |p| p.min(super::gen::MAX_PPS));
            Thread {
                core,
                cfg,
                pps,
                limit: Limit { packets, duration },
            }
        })
        .collect())
}

/// One entry per sender thread: the CPU it is pinned to, if any.
fn cores(args: &GenArgs) -> anyhow::Result<Vec<Option<core_affinity::CoreId>>> {
    let all = core_affinity::get_core_ids().unwrap_or_default();
    let names = || all.iter().map(|c| c.id.to_string()).collect::<Vec<_>>().join(",");
    if let Some(list) = &args.cores {
        let mut out = Vec::with_capacity(list.len());
        for &id in list {
            let Some(core) = all.iter().find(|c| c.id == id) else {
                bail!("--cores {id}: no such CPU here (this process may use CPUs {})", names());
            };
            if out.contains(&Some(*core)) {
                bail!("--cores {id}: named twice");
            }
            out.push(Some(*core));
        }
        if out.is_empty() {
            bail!("--cores: name at least one CPU");
        }
        return Ok(out);
    }
    match args.threads {
        None => Ok(vec![None]),
        Some(n) if n as usize > all.len() => bail!(
            "--threads {n}: only {} CPUs here to pin them to ({})",
            all.len(),
            names()
        ),
        Some(n) => Ok(all.into_iter().take(n as usize).map(Some).collect()),
    }
}

pub fn run(args: &GenArgs, iface: &str) -> anyhow::Result<()> {
    let threads = plan(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("signal handler")?;
    }
    let burst = args.burst.map_or(DEFAULT_BURST, |b| b as usize);
    let report = match &args.eal {
        Some(eal) => dpdk(eal, iface, threads, burst, &stop)?,
        None => {
            let cfg = SingleConfig {
                rx: None,
                // The burst in hand plus one being refilled.
                pool: 2 * burst,
            };
            let queues = (0..threads.len())
                .map(|_| open_single(iface, &cfg))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| open_error(iface, e))?;
            drive(queues, threads, burst, &stop)
        }
    };
    report.finish(iface)
}

/// `--iface` errors with the interface and, for a permission error, what
/// is missing.
fn open_error(iface: &str, e: std::io::Error) -> anyhow::Error {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        " (sending on an interface needs root or CAP_NET_RAW)"
    } else {
        ""
    };
    anyhow::anyhow!("--iface {iface}: {e}{hint}")
}

#[cfg(feature = "dpdk")]
fn dpdk(eal: &str, device: &str, threads: Vec<Thread>, burst: usize, stop: &AtomicBool) -> anyhow::Result<Report> {
    let eal: Vec<String> = eal.split_whitespace().map(str::to_owned).collect();
    let d = dataplane::port::dpdk::open_single(&eal, device, threads.len())
        .map_err(|e| anyhow::anyhow!("--iface {device} (DPDK): {e}"))?;
    let report = drive(d.queues, threads, burst, stop);
    // The port closes (and net_pcap flushes its file) with the last
    // reference, the counters reader.
    drop(d.stats);
    Ok(report)
}

#[cfg(not(feature = "dpdk"))]
fn dpdk(_: &str, _: &str, _: Vec<Thread>, _: usize, _: &AtomicBool) -> anyhow::Result<Report> {
    bail!("--eal: this moat was built without DPDK (cargo build --features dpdk)")
}

/// What the senders did.
#[derive(Debug)]
struct Report {
    totals: LiveTotals,
    elapsed: Duration,
    errors: Vec<String>,
}

impl Report {
    fn finish(self, iface: &str) -> anyhow::Result<()> {
        let t = self.totals;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        super::output::print_stdout(&format!(
            "sent {} packets ({} bytes) on {iface} in {secs:.3} s: {:.0} pps, {:.1} Mbit/s; {} errors\n",
            t.sent,
            t.bytes,
            t.sent as f64 / secs,
            t.bytes as f64 * 8.0 / secs / 1e6,
            t.errors
        ))?;
        if !self.errors.is_empty() {
            bail!("--iface {iface}: {}", self.errors.join("; "));
        }
        Ok(())
    }
}

/// Runs one sender thread per queue set and reports every second until
/// they all end.
fn drive<Q: Queues>(queues: Vec<Q>, threads: Vec<Thread>, burst: usize, stop: &AtomicBool) -> Report {
    let stats: Vec<LiveStats> = threads.iter().map(|_| LiveStats::default()).collect();
    let start = Instant::now();
    let errors = std::thread::scope(|s| {
        let handles: Vec<_> = queues
            .into_iter()
            .zip(threads)
            .zip(&stats)
            .map(|((mut q, t), st)| {
                s.spawn(move || {
                    if let Some(core) = t.core {
                        core_affinity::set_for_current(core);
                    }
                    let mut g = Generator::new(t.cfg);
                    let mut pacer = Pacer::new(t.pps).with_burst(burst);
                    send_paced(&mut q, PortId::Outside, &mut g, &mut pacer, t.limit, stop, st)
                })
            })
            .collect();
        live_lines(&stats, start, || handles.iter().all(|h| h.is_finished()));
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(r) => r.err(),
                Err(_) => Some("a sender thread panicked".to_string()),
            })
            .collect::<Vec<_>>()
    });
    Report {
        totals: sum(&stats),
        elapsed: start.elapsed(),
        errors,
    }
}

fn sum(stats: &[LiveStats]) -> LiveTotals {
    stats
        .iter()
        .map(LiveStats::totals)
        .fold(LiveTotals::default(), |a, b| a + b)
}

/// A line on standard error each second until `done`.
fn live_lines(stats: &[LiveStats], start: Instant, done: impl Fn() -> bool) {
    let mut last = (start, LiveTotals::default());
    let mut next = start + Duration::from_secs(1);
    while !done() {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        let t = sum(stats);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-9);
        eprintln!(
            "gen: {:>7.1} s  {:>12.0} pps  {:>10.1} Mbit/s  errors {}  sent {}",
            now.duration_since(start).as_secs_f64(),
            (t.sent - last.1.sent) as f64 / dt,
            (t.bytes - last.1.bytes) as f64 * 8.0 / dt / 1e6,
            t.errors,
            t.sent
        );
        last = (now, t);
        next += Duration::from_secs(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        gen: GenArgs,
    }

    fn args(extra: &[&str]) -> GenArgs {
        let mut v = vec!["moat", "--iface", "lo"];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).unwrap().gen
    }

    fn err(extra: &[&str]) -> String {
        format!("{:#}", plan(&args(extra)).unwrap_err())
    }

    #[test]
    fn threads_split_the_count_the_rate_and_the_seeds() {
        let n = core_affinity::get_core_ids().map_or(0, |c| c.len());
        let one = plan(&args(&["--count", "1001", "--pps", "300", "--seed", "5"])).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0].limit, one[0].pps, one[0].cfg.seed),
            (Limit::packets(1001), Some(300), 5)
        );
        // The generator's events as in a capture with the same --pps.
        assert_eq!((one[0].cfg.pps, one[0].cfg.count), (300, 1001));
        assert!(one[0].core.is_none());
        if n >= 2 {
            let two = plan(&args(&["--count", "1001", "--pps", "301", "--threads", "2"])).unwrap();
            let got: Vec<_> = two.iter().map(|t| (t.limit.packets, t.pps, t.cfg.seed)).collect();
            assert_eq!(got, [(Some(501), Some(151), 1), (Some(500), Some(150), 2)]);
            assert!(two.iter().all(|t| t.core.is_some()));
        }
        let max = plan(&args(&["--pps", "max", "--duration", "2"])).unwrap();
        assert_eq!(max[0].pps, None);
        assert_eq!(max[0].limit, Limit::duration(Duration::from_secs(2)));
        assert_eq!((max[0].cfg.count, max[0].cfg.pps), (u64::MAX, 1_000_000));
        let both = plan(&args(&["--count", "10", "--duration", "2"])).unwrap();
        assert_eq!(both[0].limit.packets, Some(10));
        assert_eq!(plan(&args(&[])).unwrap()[0].limit, Limit::packets(DEFAULT_COUNT));
        let fast = plan(&args(&["--pps", "5000000"])).unwrap();
        assert_eq!((fast[0].pps, fast[0].cfg.pps), (Some(5_000_000), 1_000_000));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(err(&["--cores", "4096"]).contains("--cores 4096: no such CPU"));
        let first = core_affinity::get_core_ids().unwrap()[0].id.to_string();
        let twice = format!("{first},{first}");
        assert!(err(&["--cores", &twice]).contains("named twice"));
        assert!(err(&["--threads", "256"]).contains("--threads 256: only"));
        let parse = |a: &[&str]| {
            let mut v = vec!["moat"];
            v.extend_from_slice(a);
            Cli::try_parse_from(v).map(|_| ()).unwrap_err().to_string()
        };
        assert!(parse(&["--iface", "lo", "--pps", "1000000001"]).contains("1 to 1000000000"));
        assert!(parse(&["--out", "x", "--iface", "lo"]).contains("cannot be used with"));
        assert!(parse(&["--iface", "lo", "--threads", "2", "--cores", "0"]).contains("cannot be used with"));
        assert!(parse(&["--iface", "lo", "--burst", "513"]).contains("513"));
        assert!(parse(&[]).contains("--out"));
    }

    #[test]
    fn a_missing_interface_is_named() {
        let e = run(&args(&["--count", "1"]), "moat-nosuch0").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("--iface moat-nosuch0: moat-nosuch0: "), "{msg}");
    }
}
