//! `moat run --config FILE`: the appliance. The node's life (state folder,
//! workers, REST API, detection, supervision, SIGHUP, stop) is
//! [`crate::lifecycle`]'s; this command adds the `--stats` file, the live
//! line and the final counters.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::lifecycle::{Options, Running};
use crate::node;

pub use crate::lifecycle::{memory_source, start_node as start};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Config file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
    /// Write the counters as JSON to this file every second and at exit.
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_parser = crate::cli::seconds)]
    pub duration: Option<f64>,
    /// Print a line of live figures every second.
    #[arg(long)]
    pub live: bool,
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    // The gates `moat check` runs too: nothing past them is refused for a
    // reason `check` would not have named.
    cfg.startup_gates(std::env::var(crate::api::auth::TOKEN_ENV).ok().as_deref())?;
    let opts = Options::of_config(&cfg, &args.config);
    let mut running = Running::start(cfg, opts)?;
    let mut prev = running.node.snapshot();
    let live = args.live;
    running.supervise(
        args.duration.map(Duration::from_secs_f64),
        args.stats.as_deref(),
        |n, secs| {
            let now = n.snapshot();
            if live {
                println!("{}", node::rate_line(&now, &prev, secs));
            }
            prev = now;
        },
    );
    let res = running.stop();
    if let Some(p) = &args.stats {
        running.write_stats(p);
    }
    print!("{}", node::summary(&running.node));
    res
}
