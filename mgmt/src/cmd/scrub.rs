//! `moat scrub`: the appliance's pipeline run offline over a capture. Clean
//! packets are written GRE-encapsulated exactly as they would leave the
//! inside port, replies (challenges, resets, ARP) as they would leave the
//! outside port, and a JSON report sums it up. The clock is the capture's
//! timestamps.

use std::path::{Path, PathBuf};

use anyhow::Context;
use classifier::fingerprint::fingerprint;
use classifier::parse::{Parsed, L4};
use classifier::policy::SynAuth;
use classifier::synauth::flags;
use dataplane::pcap::{create_output, open_input, STDIO};
use dataplane::pipeline::{Action, Pipeline};

use super::output::{same_file, stdout_usable};
use crate::config::Config;
use crate::scrub_report::{Collector, Fp, Report};

#[derive(clap::Args, Debug)]
pub struct ScrubArgs {
    /// Config file (services, origins, rules, cookie secret).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Capture to scrub (pcap or pcapng, Ethernet; `-`: standard input).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Clean packets, GRE-encapsulated toward their origin (`-`: standard
    /// output).
    #[arg(long)]
    pub out: PathBuf,
    /// Replies Moat sends back out the outside port (challenges, resets, ARP).
    #[arg(long)]
    pub replies: Option<PathBuf>,
    /// JSON report.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

/// The fingerprint a suspect packet is reported under: the SYN fingerprint
/// for TCP SYNs, the datagram fingerprint for UDP/ICMP/other.
fn suspect_fp(frame: &[u8], p: &Parsed) -> Option<Fp> {
    match p.l4 {
        L4::Tcp(t) if !flags::is_pure_syn(t.flags) => None,
        _ => fingerprint(frame, p),
    }
}

/// The offline pipeline: one worker's [`Pipeline`] plus the report's
/// collector. `moat scrub` feeds it a capture, `moat demo` the generator.
#[derive(Debug)]
pub struct Scrubber {
    policy: classifier::Policy,
    pipe: Pipeline,
    col: Collector,
    secret: String,
}

impl Scrubber {
    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let policy = cfg.policy()?;
        Self::with_policy(cfg, policy, cfg.secret_source().to_string())
    }

    /// With a policy built by the caller (e.g. with its own cookie secret).
    pub fn with_policy(cfg: &Config, policy: classifier::Policy, secret: String) -> anyhow::Result<Self> {
        let pipe = Pipeline::new(&policy, cfg.gre_params_static(&policy)?, &cfg.classifier_state(), 1);
        Ok(Scrubber {
            policy,
            pipe,
            col: Collector::default(),
            secret,
        })
    }

    /// Runs one frame received at `ts` through the pipeline.
    pub fn feed(&mut self, ts: u64, data: &mut [u8]) -> Action<'_> {
        self.col.time(ts);
        let mut parsed = None;
        let action = self.pipe.process(&self.policy, ts, data, &mut parsed);
        let Some(p) = &parsed else { return action };
        match &action {
            Action::Forward { service, .. } => {
                let syn_auth = self.policy.services.get(usize::from(*service)).map(|s| s.syn_auth);
                self.col
                    .passed(suspect_fp(data, p), syn_auth.is_some_and(|m| m != SynAuth::Off));
            }
            // Challenged SYNs are suspect; ARP replies and cookie-reset RSTs
            // (answers to verified clients) are not.
            Action::Reply(_) => {
                if let Some(fp) = suspect_fp(data, p) {
                    self.col.suspect(p.src_ip(), Some(fp));
                }
            }
            // A connection reset both ways: its source broke a rule.
            Action::ForwardAndReply { .. } => self.col.suspect(p.src_ip(), suspect_fp(data, p)),
            Action::Drop(r) if *r != classifier::DropReason::ChallengeAnswered => {
                self.col.suspect(p.src_ip(), suspect_fp(data, p));
            }
            Action::Drop(_) => {}
        }
        action
    }

    pub fn counters(&self) -> &dataplane::pipeline::Counters {
        self.pipe.counters()
    }

    pub fn report(&self, input: &str) -> Report {
        let names: Vec<String> = self.policy.services.iter().map(|s| s.name.clone()).collect();
        Report::build(input, self.pipe.counters(), &self.col, &names, &self.secret)
    }
}

/// Scrubs `input` with `cfg`, writing the outputs; returns the report.
pub fn scrub(cfg: &Config, input: &Path, out: &Path, replies: Option<&Path>) -> anyhow::Result<Report> {
    let mut scrubber = Scrubber::new(cfg)?;
    let mut reader = open_input(input)?;
    let mut clean = create_output(out)?;
    let mut replies = replies.map(create_output).transpose()?;
    while let Some(mut f) = reader.next_frame()? {
        match scrubber.feed(f.ts, &mut f.data) {
            Action::Forward { frame, .. } => clean.write(f.ts, frame)?,
            Action::Reply(frame) => {
                if let Some(w) = replies.as_mut() {
                    w.write(f.ts, frame)?;
                }
            }
            Action::ForwardAndReply { frame, reply, .. } => {
                clean.write(f.ts, frame)?;
                if let Some(w) = replies.as_mut() {
                    w.write(f.ts, reply)?;
                }
            }
            Action::Drop(_) => {}
        }
    }
    clean.finish()?;
    if let Some(w) = replies {
        w.finish()?;
    }
    let name = if input.as_os_str() == STDIO {
        "<stdin>".to_string()
    } else {
        input.display().to_string()
    };
    Ok(scrubber.report(&name))
}

/// Refuses outputs that would overwrite the input capture (each output is
/// truncated when it is created, before the input is read) or one
/// another. Devices (`/dev/null`) may be named more than once.
fn distinct_files(args: &ScrubArgs) -> anyhow::Result<()> {
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    for (flag, p) in [
        ("--out", Some(args.out.as_path())),
        ("--replies", args.replies.as_deref()),
        ("--report", args.report.as_deref()),
    ] {
        match p {
            Some(p) if p.as_os_str() == STDIO => stdout_usable(flag)?,
            Some(p) => outputs.push((flag, p)),
            None => {}
        }
    }
    let regular = |p: &Path| std::fs::metadata(p).map_or(true, |m| m.is_file());
    let same = |a: &Path, b: &Path| regular(a) && (a == b || same_file(a, b));
    for (flag, p) in &outputs {
        if args.input.as_os_str() != STDIO && same(p, &args.input) {
            anyhow::bail!(
                "{flag} {} is the input capture (--in {}): writing it would destroy it before it is read",
                p.display(),
                args.input.display()
            );
        }
    }
    for (i, (fa, a)) in outputs.iter().enumerate() {
        if let Some((fb, _)) = outputs[i + 1..].iter().find(|(_, b)| same(a, b)) {
            anyhow::bail!("{fa} and {fb} name the same file ({}): give each its own", a.display());
        }
    }
    Ok(())
}

pub fn run(args: &ScrubArgs) -> anyhow::Result<()> {
    distinct_files(args)?;
    let cfg = Config::load(&args.config)?;
    let report = scrub(&cfg, &args.input, &args.out, args.replies.as_deref())?;
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("{}: cannot write report", path.display()))?;
    }
    if !args.quiet {
        let stdout_is_capture =
            args.out.as_os_str() == STDIO || args.replies.as_deref().is_some_and(|r| r.as_os_str() == STDIO);
        if stdout_is_capture {
            eprint!("{}", report.summary());
        } else {
            super::output::print_stdout(&report.summary())?;
        }
    }
    Ok(())
}
