//! The `moat` command line: the subcommands and their dispatch, the value
//! parsers shared by several flags, shell completions and the man page.
//!
//! Contract: every flag has a help text (a test walks the whole command
//! tree); every subcommand that reads a config takes it as `-c/--config
//! FILE`; a value that parses but could never work (a duration that is not
//! a finite positive number of seconds, 0 workers) is refused by the
//! parser, naming the flag, before anything runs.

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::cmd::output::write_stdout;

/// Longest duration a flag takes: 10^7 s (about 115 days); longer runs are
/// runs without `--duration`.
pub const MAX_SECS: f64 = 1e7;

/// Workers a node runs: one per core, at most 256.
pub const MAX_WORKERS: u32 = 256;

const AFTER_HELP: &str = "\
Port specs (config `allow`, `allow_src_ports`, `payload_rules.port`): `tcp/80`, `udp/7777`, \
a range `tcp/8000-8099` (both ends included), or `icmp`.
Exit status: 0 on success, 2 on any error (the message names the file, key or flag and the reason).";

#[derive(Parser, Debug)]
#[command(name = "moat", version, about = "DDoS scrubbing appliance", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as text (stderr, or the journal under systemd) or as JSON objects on stderr.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub log_format: crate::logging::LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the appliance: the configured backend's ports, pinned workers, until SIGINT/SIGTERM.
    Run(cmd::run::RunArgs),
    /// Scrub a capture offline: clean pcap (GRE-encapsulated), replies pcap, JSON report.
    Scrub(cmd::scrub::ScrubArgs),
    /// Generate legitimate and attack traffic (seeded, deterministic) to a pcap, or send it on a live port at a set rate.
    Gen(cmd::gen::GenArgs),
    /// Load-test a node live: generated clients that answer Moat's challenges, beside a flood; sweeps and plots.
    Loadtest(cmd::loadtest::LoadtestArgs),
    /// Measure Mpps per worker on the memory backend (SYN flood, ACK flood, clean GRE path) for 1..N workers.
    Bench(cmd::bench::BenchArgs),
    /// Validate a config file and run `run`'s start-up gates without starting anything.
    Check(cmd::check::CheckArgs),
    /// The appliance on the memory backend with a built-in attack mix, live figures every second.
    Demo(cmd::demo::DemoArgs),
    /// Drain the running node of a config: withdraw its BGP announcement, keep scrubbing `[bgp] drain_secs`, stop.
    Drain(cmd::drain::DrainArgs),
    /// Write an attack report or a `moat scrub` report as one self-contained HTML page (`--html FILE`).
    Report(cmd::report::ReportArgs),
    /// Print a shell completion script (e.g. `moat completions bash > /etc/bash_completion.d/moat`).
    Completions(CompletionsArgs),
    /// Print the man page (roff; e.g. `moat man > /usr/share/man/man1/moat.1`).
    Man,
}

/// Arguments of `moat completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Runs the subcommand `cli` names.
pub fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Scrub(a) => cmd::scrub::run(a),
        Command::Gen(a) => cmd::gen::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Loadtest(a) => cmd::loadtest::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Drain(a) => cmd::drain::run(a),
        Command::Completions(a) => completions(a.shell),
        Command::Man => man(),
    }
}

/// The completion script for `shell`, to standard output.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "moat", &mut script);
    write_stdout(&script)
}

/// The man page (roff), to standard output.
fn man() -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    write_stdout(&page)
}

/// `--duration`, `--seconds`: a finite number of seconds, above 0, at most
/// [`MAX_SECS`].
pub fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > MAX_SECS {
        return Err(format!(
            "{s}: seconds must be a finite number above 0 and at most {MAX_SECS:e}"
        ));
    }
    Ok(v)
}

/// An error as the binary prints it: the message, then each cause that
/// does not repeat what is already said (a cause is often folded into
/// its context's message, e.g. `path: Is a directory`).
pub fn error_message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_finite_positive_and_bounded() {
        assert_eq!(seconds("2.5"), Ok(2.5));
        assert_eq!(seconds("1e7"), Ok(1e7));
        for bad in [
            "nan", "NaN", "inf", "-inf", "infinity", "1e30", "1e300", "0", "-1", "", "x",
        ] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert!(seconds("1e30").unwrap_err().contains("at most 1e7"));
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::other("Is a directory (os error 21)");
        let e = anyhow::Error::new(io).context("/tmp: Is a directory (os error 21)");
        assert_eq!(error_message(&e), "/tmp: Is a directory (os error 21)");
        let e = anyhow::anyhow!("root cause").context("reading x");
        assert_eq!(error_message(&e), "reading x: root cause");
    }
}
