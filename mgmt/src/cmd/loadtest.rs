//! `moat loadtest`: legitimate goodput under a flood, measured live.
//!
//! - `run`: many generated TCP clients (`dataplane::loadtest`) fetch a page
//!   through Moat for `--duration` seconds, answering its SYN
//!   authentication as real stacks do, optionally beside a flood
//!   (`dataplane::gen::live`, the generator's profiles at `--flood-pps`) and
//!   real Linux clients (`curl`), and report what they got: connections
//!   tried, completed, failed by reason, time to first byte.
//! - `sweep`: `run` once per step of flood type and rate, with Moat's own
//!   counters (`/api/v1/stats`) read around each step, into one CSV row per
//!   step.
//! - `plot`: the sweep's CSV as an SVG picture.
//!
//! See docs/loadtest.md, "Live legitimate clients" and "The flood sweep".

mod curl;
mod plot;
mod report;
mod step;
mod sweep;

use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use plot::PlotArgs;
pub use sweep::SweepArgs;

/// The header line of `sweep`'s CSV.
pub fn csv_header() -> String {
    sweep::header()
}

/// Arguments of `moat loadtest`.
#[derive(clap::Args, Debug)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    pub command: LoadtestCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LoadtestCommand {
    /// Generated clients (and optionally a flood and curl clients) against a service for a while; prints what they got.
    Run(RunArgs),
    /// `run` at each flood type and rate, with Moat's counters around each step: one CSV row per step.
    Sweep(SweepArgs),
    /// Draws a sweep's CSV: legitimate success and time to first byte against the flood rate (SVG).
    Plot(PlotArgs),
}

pub fn run(args: &LoadtestArgs) -> anyhow::Result<()> {
    match &args.command {
        LoadtestCommand::Run(a) => step::run(a),
        LoadtestCommand::Sweep(a) => sweep::run(a),
        LoadtestCommand::Plot(a) => plot::run(a),
    }
}

/// Most cores for clients or flood senders.
pub const MAX_CORES: u32 = 64;

/// Arguments of `moat loadtest run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Interface toward Moat's outside port: the clients (and the flood) send here, Moat's challenges come back here.
    #[arg(long)]
    pub iface: String,
    /// Interface where the origin's answers arrive (direct server return); not the same as --iface.
    #[arg(long)]
    pub rx_iface: String,
    /// The clients' source addresses, FIRST-LAST (e.g. 10.10.0.100-10.10.0.199): addresses the host's kernel does not own.
    #[arg(long, value_parser = addr_range)]
    pub src: AddrRange,
    /// The service's address (VIP).
    #[arg(long)]
    pub vip: Ipv4Addr,
    /// The service's TCP port.
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    /// The path every client GETs.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Moat's outside address: its MAC (the next hop) is resolved by ARP. Give this or --dst-mac.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// The next hop's MAC (aa:bb:cc:dd:ee:ff) instead of resolving --gateway.
    #[arg(long, value_parser = mac)]
    pub dst_mac: Option<[u8; 6]>,
    /// Generated clients in all (spread over --cores); each keeps one connection at a time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub clients: u32,
    /// Threads running the clients, each with its own sockets and a share of --src.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_CORES as i64))]
    pub cores: u32,
    /// Seconds during which clients start new connections (those in flight then finish).
    #[arg(long, default_value_t = 10.0, value_parser = crate::cli::seconds)]
    pub duration: f64,
    /// Milliseconds a client waits between the end of one connection and the next.
    #[arg(long, default_value_t = 500)]
    pub think_ms: u64,
    /// Seconds over which the clients' first connections are spread.
    #[arg(long, default_value_t = 1.0, value_parser = seconds_or_zero)]
    pub ramp: f64,
    /// Seconds a connection may take, from its first SYN to the end of the response (all attempts).
    #[arg(long, default_value_t = 5.0, value_parser = crate::cli::seconds)]
    pub timeout: f64,
    /// The SYN's first retransmission timeout in milliseconds (Linux: 1000), doubling after each.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub syn_rto_ms: u64,
    /// Milliseconds after a challenge-ack before the SYN goes again, when it was not retransmitted yet (Linux 5.10+: two jiffies, 8 ms at HZ=250); 0: at its RTO, as older kernels do.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub challenge_retry_ms: u64,
    /// New connections after a reset before the first response byte (cookie-reset's reset included).
    #[arg(long, default_value_t = 3)]
    pub reconnects: u32,
    /// Milliseconds before such a new connection.
    #[arg(long, default_value_t = 0)]
    pub reconnect_ms: u64,
    /// Seed of the clients' ISNs and IP IDs, and of the flood.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A flood beside the clients: a generator profile or mix (e.g. syn-flood, or syn-flood=1,ack-flood=1), sent on --iface.
    #[arg(long)]
    pub flood: Option<String>,
    /// The flood's rate in packets per second (0: as fast as the interface takes them).
    #[arg(long, default_value_t = 0)]
    pub flood_pps: u64,
    /// Threads sending the flood, each at --flood-pps / N.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_CORES as i64))]
    pub flood_cores: u32,
    /// Also fetch the page with `curl` (the host's own TCP stack) from this local address, one fetch at a time; repeatable.
    #[arg(long)]
    pub curl: Vec<Ipv4Addr>,
    /// Write the result as JSON to this file (`-`: standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No live line every second on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// An address range FIRST-LAST: the first address and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    pub first: Ipv4Addr,
    pub count: u32,
}

impl std::fmt::Display for AddrRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = Ipv4Addr::from(u32::from(self.first) + self.count - 1);
        write!(f, "{}-{last}", self.first)
    }
}

/// `FIRST-LAST` or a single address.
pub fn addr_range(s: &str) -> Result<AddrRange, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let parse = |x: &str| {
        x.trim()
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("{x:?} is not an IPv4 address"))
    };
    let (first, last) = (parse(a)?, parse(b)?);
    if u32::from(last) < u32::from(first) {
        return Err(format!("{s}: the last address is before the first"));
    }
    Ok(AddrRange {
        first,
        count: u32::from(last) - u32::from(first) + 1,
    })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

/// Seconds, 0 allowed.
fn seconds_or_zero(s: &str) -> Result<f64, String> {
    if s.trim() == "0" {
        return Ok(0.0);
    }
    crate::cli::seconds(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_macs() {
        let r = addr_range("10.10.0.100-10.10.0.199").unwrap();
        assert_eq!((r.first, r.count), (Ipv4Addr::new(10, 10, 0, 100), 100));
        assert_eq!(r.to_string(), "10.10.0.100-10.10.0.199");
        assert_eq!(addr_range("10.0.0.1").unwrap().count, 1);
        assert!(addr_range("10.0.0.2-10.0.0.1")
            .unwrap_err()
            .contains("before the first"));
        assert!(addr_range("10.0.0.1-x").is_err());
        assert_eq!(mac("02:00:00:00:77:0a").unwrap(), [2, 0, 0, 0, 0x77, 10]);
        assert!(mac("02:00:00:00:77").is_err());
        assert!(mac("02:00:00:00:77:zz").is_err());
        assert_eq!(seconds_or_zero("0"), Ok(0.0));
        assert!(seconds_or_zero("-1").is_err());
    }
}
