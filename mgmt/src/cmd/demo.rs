//! `moat demo`: the whole decision pipeline on the built-in generator, with
//! no NIC, no root and no files: an attack mix (every profile, IPv4 and IPv6)
//! with legitimate clients that answer SYN challenges as real stacks do, run
//! through one worker's pipeline, then the report.

use std::collections::BTreeMap;

use classifier::cookie::CookieSecrets;
use classifier::policy::SynAuth;
use dataplane::gen::{GenConfig, Generator};
use dataplane::pipeline::Action;

use super::scrub::Scrubber;
use crate::config::Config;

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
    /// Packets to generate.
    #[arg(long, default_value_t = 200_000)]
    pub count: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the full JSON report instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let cfg = Config::from_toml_str(DEMO_CONFIG, "demo config", std::path::Path::new("."))?;
    let secrets = CookieSecrets::new(rand::random());
    let mut policy = cfg.policy()?;
    policy.secrets = secrets.clone();
    let mut scrubber = Scrubber::with_policy(&cfg, policy, "random per demo run, shared with the generator".into())?;
    let gen = Generator::new(GenConfig {
        mix: dataplane::gen::parse_mix("mix").map_err(anyhow::Error::msg)?,
        count: args.count,
        seed: args.seed,
        secrets: Some(secrets),
        syn_auth: SynAuth::ChallengeAck,
        ..GenConfig::default()
    });
    let started = std::time::Instant::now();
    let (mut attack, mut attack_passed) = (0u64, 0u64);
    // What happened to legitimate packets: passed, challenged, or dropped
    // (by reason; answers to challenges are consumed by design).
    let mut legit: BTreeMap<&'static str, u64> = BTreeMap::new();
    for mut pkt in gen {
        let outcome = match scrubber.feed(pkt.ts, &mut pkt.frame) {
            Action::Forward { .. } => "passed",
            Action::Reply(_) => "challenged",
            Action::Drop(r) => r.as_str(),
        };
        if pkt.profile.is_attack() {
            attack += 1;
            attack_passed += u64::from(outcome == "passed");
        } else {
            *legit.entry(outcome).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();
    let report = scrubber.report("built-in generator (mix)");
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", report.summary());
    println!(
        "attack packets: {attack}, passed {attack_passed} ({:.4} %)",
        100.0 * attack_passed as f64 / attack.max(1) as f64
    );
    println!("legitimate packets: {} — {legit:?}", legit.values().sum::<u64>());
    println!("top sources of suspect traffic:");
    for s in report.top_sources.iter().take(5) {
        println!("  {:<40} {}", s.key, s.packets);
    }
    println!("top fingerprints of suspect traffic:");
    for f in report.top_fingerprints.iter().take(5) {
        println!("  {} {:<50} {}", f.kind, f.fingerprint, f.packets);
    }
    println!(
        "{} packets in {:.2} s of wall time on one core (including generation)",
        report.packets,
        elapsed.as_secs_f64()
    );
    Ok(())
}
