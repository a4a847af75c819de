//! `moat gen`: writes a pcap of generated legitimate and attack traffic
//! (see `dataplane::gen`) and prints how many packets each profile made,
//! or sends the same frames on a live port (`--iface`, see [`super::gen_live`]).
//!
//! The same arguments always write the same bytes. With `--secret-file`
//! (the cluster's cookie secret, as in `[node] cookie_secret_file`), the
//! legitimate clients answer Moat's SYN authentication correctly, so a
//! scrub of the capture with the same secret passes them.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use classifier::policy::SynAuth;
use classifier::time::SECOND;
use dataplane::gen::{parse_mix, GenConfig, Generator, Profile};
use dataplane::pcap::{create_output, STDIO};

/// Largest `--pps` of a capture, and the generator's event rate on a live
/// port: the generator queues every packet of an event when the event
/// starts (a web session's packets span about a second), so the packets
/// it holds grow with the rate: about a second's worth of legitimate
/// sessions. Above one event per nanosecond it never stopped growing. The
/// same bound as the memory backend's `pps`
/// ([`crate::config::MAX_MEMORY_PPS`]).
pub const MAX_PPS: u64 = crate::config::MAX_MEMORY_PPS;

/// Largest `--pps` on a live port: 10^9 frames a second, beyond what one
/// host sends.
pub const MAX_LIVE_PPS: u64 = 1_000_000_000;

/// Packets written or sent when neither `--count` nor `--duration` says.
pub const DEFAULT_COUNT: u64 = 100_000;

/// `--pps`: a rate, or as fast as the port takes frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// `max` or `0`.
    Max,
    Pps(u64),
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Max => f.write_str("max"),
            Rate::Pps(p) => write!(f, "{p}"),
        }
    }
}

/// Parses `--pps`: `max` or `0`, or 1 to [`MAX_LIVE_PPS`] (a capture
/// takes at most [`MAX_PPS`]; [`config`] says so).
pub fn rate(s: &str) -> Result<Rate, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.parse::<u64>() {
        Ok(0) => Ok(Rate::Max),
        Ok(p) if p <= MAX_LIVE_PPS => Ok(Rate::Pps(p)),
        _ => Err(format!(
            "\"{s}\": packets per second from 1 to {MAX_LIVE_PPS}, or max (0) for as fast as the port takes \
             them (a capture: 1 to {MAX_PPS})"
        )),
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// A profile name (legit, syn-flood, ack-flood, rst-flood, udp-flood,
    /// dns-reflection, ntp-reflection, memcached-reflection, frag, malformed)
    /// or `mix` for the default mix of all.
    #[arg(long, default_value = "mix")]
    pub profile: String,
    /// Packet shares, e.g. "legit=60,syn-flood=20,udp-flood=20" (with `--profile mix`).
    #[arg(long)]
    pub mix: Option<String>,
    /// Packets to write or send (default 100000; with --iface and --duration: no limit).
    #[arg(long)]
    pub count: Option<u64>,
    /// Random seed: the same seed and arguments write the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The protected service's IPv4 address (the traffic's destination).
    #[arg(long, default_value = "203.0.113.10")]
    pub vip: Ipv4Addr,
    /// The protected service's IPv6 address.
    #[arg(long, default_value = "2001:db8::10")]
    pub vip6: Ipv6Addr,
    /// Share of IPv6 flows/packets, 0 to 1.
    #[arg(long, default_value_t = 0.1)]
    pub ipv6_share: f64,
    /// The service's TCP port (web clients, SYN and ACK floods).
    #[arg(long, default_value_t = 80)]
    pub tcp_port: u16,
    /// The service's UDP port (game clients, UDP floods).
    #[arg(long, default_value_t = 7777)]
    pub udp_port: u16,
    /// New flows/packets per second: the spacing of events in a capture, 1 to 1000000 (the
    /// generator keeps about a second of traffic in memory); with --iface the send rate,
    /// 1 to 1000000000, or max (or 0) for as fast as the port takes them.
    #[arg(long, default_value = "100000", value_parser = rate)]
    pub pps: Rate,
    /// Capture start, Unix seconds (default 2026-01-01T00:00:00Z).
    #[arg(long)]
    pub start: Option<u64>,
    /// The cluster's cookie secret file; its whole contents are the key material.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// The service's SYN authentication mode: challenge-ack, cookie-reset or off.
    #[arg(long, default_value = "challenge-ack")]
    pub syn_auth: String,
    /// The pcap to write (`-`: standard output). Either this or --iface.
    #[arg(long, required_unless_present = "iface", conflicts_with = "iface")]
    pub out: Option<PathBuf>,
    /// Send on this network interface (AF_PACKET, needs CAP_NET_RAW) instead of writing a
    /// pcap; with --eal, the DPDK device name (e.g. net_pcap0, 0000:03:00.0).
    #[arg(long)]
    pub iface: Option<String>,
    /// Send through DPDK with these EAL arguments, split on white space
    /// (e.g. "--no-huge -m 512 --no-pci --vdev net_null0"); needs a build with --features dpdk.
    #[arg(long, requires = "iface", allow_hyphen_values = true)]
    pub eal: Option<String>,
    /// Stop sending after this many seconds (with --iface).
    #[arg(long, requires = "iface", value_parser = crate::cli::seconds)]
    pub duration: Option<f64>,
    /// Sender threads, pinned to the first N CPUs (with --iface; default 1, not pinned).
    #[arg(long, requires = "iface", conflicts_with = "cores",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::cli::MAX_WORKERS)))]
    pub threads: Option<u32>,
    /// One sender thread pinned to each of these CPUs, e.g. 0,1 (with --iface).
    #[arg(long, requires = "iface", value_delimiter = ',')]
    pub cores: Option<Vec<usize>>,
    /// Frames per send call (with --iface), 1 to 512 (default 64).
    #[arg(long, requires = "iface",
          value_parser = clap::value_parser!(u32).range(1..=dataplane::port::MAX_BURST as i64))]
    pub burst: Option<u32>,
}

/// The generator configuration `args` ask for.
pub fn config(args: &GenArgs) -> anyhow::Result<GenConfig> {
    let mix = match (&args.mix, args.profile.as_str()) {
        (Some(m), "mix") => parse_mix(m).map_err(anyhow::Error::msg).context("--mix")?,
        (Some(_), p) => bail!("--mix needs --profile mix (got --profile {p})"),
        (None, p) => parse_mix(p).map_err(anyhow::Error::msg).context("--profile")?,
    };
    if !(0.0..=1.0).contains(&args.ipv6_share) {
        bail!("--ipv6-share {} is not between 0 and 1", args.ipv6_share);
    }
    let pps = match (args.pps, &args.iface) {
        (Rate::Pps(p), None) if !(1..=MAX_PPS).contains(&p) => bail!("--pps {p} is not between 1 and {MAX_PPS}"),
        (Rate::Max, None) => {
            bail!("--pps max (or 0) is only for a live port (--iface); a capture needs 1 to {MAX_PPS}")
        }
        (Rate::Pps(p), _) => p.min(MAX_PPS),
        // As fast as possible: events as close together as the generator takes.
        (Rate::Max, Some(_)) => MAX_PPS,
    };
    let syn_auth = SynAuth::from_name(&args.syn_auth).with_context(|| {
        format!(
            "--syn-auth {:?}: expected challenge-ack, cookie-reset or off",
            args.syn_auth
        )
    })?;
    let secrets = match &args.secret_file {
        // The same derivation as the config's `cookie_secret_file`.
        Some(path) => Some(
            crate::config::secrets_from_file(path)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--secret-file {}", path.display()))?,
        ),
        None => None,
    };
    let defaults = GenConfig::default();
    let start = match args.start {
        Some(s) => s
            .checked_mul(SECOND)
            .filter(|_| s <= u64::from(u32::MAX))
            .with_context(|| format!("--start {s}: after 2106, beyond what a classic pcap timestamp holds"))?,
        None => defaults.start,
    };
    Ok(GenConfig {
        mix,
        count: args.count.unwrap_or(DEFAULT_COUNT),
        seed: args.seed,
        vip: args.vip,
        vip6: args.vip6,
        ipv6_share: args.ipv6_share,
        tcp_port: args.tcp_port,
        udp_port: args.udp_port,
        start,
        pps,
        secrets,
        syn_auth,
        ..defaults
    })
}

/// The first flag given that only a live port takes.
fn live_only(args: &GenArgs) -> Option<&'static str> {
    [
        ("--eal", args.eal.is_some()),
        ("--duration", args.duration.is_some()),
        ("--threads", args.threads.is_some()),
        ("--cores", args.cores.is_some()),
        ("--burst", args.burst.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, given)| given.then_some(flag))
}

/// Writes the capture to `path` and returns the packets written per profile.
pub fn generate(args: &GenArgs, path: &Path) -> anyhow::Result<[u64; Profile::ALL.len()]> {
    let cfg = config(args)?;
    if path.as_os_str() == STDIO {
        super::output::stdout_usable("--out")?;
    }
    let mut out = create_output(path)?;
    let mut counts = [0u64; Profile::ALL.len()];
    for p in Generator::new(cfg) {
        out.write(p.ts, &p.frame)?;
        counts[p.profile.index()] += 1;
    }
    out.finish()?;
    Ok(counts)
}

pub fn run(args: &GenArgs) -> anyhow::Result<()> {
    let path = match (&args.out, &args.iface) {
        (Some(path), None) => path,
        (None, Some(iface)) => return super::gen_live::run(args, iface),
        _ => bail!("give either --out FILE (a capture) or --iface IF (a live port)"),
    };
    if let Some(flag) = live_only(args) {
        bail!("{flag} is for a live port (--iface), not a capture (--out)");
    }
    let counts = generate(args, path)?;
    let total: u64 = counts.iter().sum();
    // With the capture on standard output, the summary goes to standard error.
    let mut summary = format!("wrote {total} packets to {}\n", path.display());
    for p in Profile::ALL {
        let n = counts[p.index()];
        if n > 0 {
            summary.push_str(&format!("  {:<22} {n:>10}\n", p.name()));
        }
    }
    if path.as_os_str() == STDIO {
        eprint!("{summary}");
        Ok(())
    } else {
        super::output::print_stdout(&summary)
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
        let mut v = vec!["moat", "--out", "/dev/null"];
        v.extend_from_slice(extra);
        Cli::try_parse_from(v).unwrap().gen
    }

    #[test]
    fn defaults_match_the_generator() {
        let c = config(&args(&[])).unwrap();
        let d = GenConfig::default();
        assert_eq!(c.count, DEFAULT_COUNT);
        assert_eq!(
            (c.count, c.seed, c.vip, c.vip6, c.pps, c.start),
            (d.count, d.seed, d.vip, d.vip6, d.pps, d.start)
        );
        assert_eq!(c.mix, d.mix);
        assert!(c.secrets.is_none());
        assert_eq!(c.syn_auth, SynAuth::ChallengeAck);
    }

    #[test]
    fn profile_mix_and_errors() {
        assert_eq!(
            config(&args(&["--profile", "syn-flood"])).unwrap().mix,
            vec![(Profile::SynFlood, 1)]
        );
        let m = config(&args(&["--mix", "legit=3,frag=1"])).unwrap().mix;
        assert_eq!(m, vec![(Profile::Legit, 3), (Profile::Frag, 1)]);
        let e = |a: &[&str]| format!("{:#}", config(&args(a)).unwrap_err());
        assert!(e(&["--profile", "bogus"]).contains("unknown profile"));
        assert!(e(&["--profile", "legit", "--mix", "frag=1"]).contains("--mix needs --profile mix"));
        assert!(e(&["--ipv6-share", "1.5"]).contains("not between 0 and 1"));
        assert!(e(&["--pps", "0"]).contains("--pps max (or 0) is only for a live port"));
        assert!(e(&["--pps", "max"]).contains("only for a live port"));
        assert!(e(&["--pps", "1000001"]).contains("--pps 1000001 is not between 1 and 1000000"));
        assert!(Cli::try_parse_from(["moat", "--out", "x", "--pps", "1000000000000000000"]).is_err());
        assert!(Cli::try_parse_from(["moat", "--out", "x", "--pps", "-1"]).is_err());
        assert!(Cli::try_parse_from(["moat", "--out", "x", "--pps", "fast"]).is_err());
        assert!(e(&["--syn-auth", "maybe"]).contains("expected challenge-ack"));
        assert!(e(&["--secret-file", "/nonexistent/secret"]).contains("--secret-file /nonexistent/secret"));
        assert!(e(&["--start", "99999999999"]).contains("after 2106"));
        assert_eq!(config(&args(&["--start", "1"])).unwrap().start, SECOND);
    }

    #[test]
    fn writes_the_capture_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"a cluster secret, 16 bytes or more").unwrap();
        let out = |name: &str| {
            let path = dir.path().join(name);
            let a = args(&[
                "--count",
                "500",
                "--secret-file",
                secret.to_str().unwrap(),
                "--syn-auth",
                "cookie-reset",
            ]);
            let counts = generate(&a, &path).unwrap();
            assert_eq!(counts.iter().sum::<u64>(), 500);
            std::fs::read(path).unwrap()
        };
        assert_eq!(out("a.pcap"), out("b.pcap"));
    }
}
