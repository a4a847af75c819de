//! `moat`: the scrubbing appliance's one binary (DESIGN.md, Interfaces).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mgmt::cmd;

#[derive(Parser, Debug)]
#[command(name = "moat", version, about = "DDoS scrubbing appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (stderr, or the journal under systemd) or as JSON objects on stderr.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: mgmt::logging::LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the appliance: the configured backend's ports, pinned workers, until SIGINT/SIGTERM.
    Run(cmd::run::RunArgs),
    /// Scrub a capture offline: clean pcap (GRE-encapsulated), replies pcap, JSON report.
    Scrub(cmd::scrub::ScrubArgs),
    /// Generate legitimate and attack traffic to a pcap (seeded, deterministic).
    Gen(cmd::gen::GenArgs),
    /// Measure Mpps per worker on the memory backend (SYN flood, ACK flood, clean GRE path) for 1..N workers.
    Bench(cmd::bench::BenchArgs),
    /// Validate a config file.
    Check(cmd::check::CheckArgs),
    /// The appliance on the memory backend with a built-in attack mix, live figures every second.
    Demo(cmd::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mgmt::logging::init(cli.log_format);
    let res = match &cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Scrub(a) => cmd::scrub::run(a),
        Command::Gen(a) => cmd::gen::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Demo(a) => cmd::demo::run(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moat: {e:#}");
            ExitCode::from(2)
        }
    }
}
