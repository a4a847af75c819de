//! `moat`: the scrubbing appliance's one binary (DESIGN.md, Interfaces).
//! The command line itself is [`mgmt::cli`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use mgmt::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mgmt::logging::init(cli.log_format);
    match cli::dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moat: {}", cli::error_message(&e));
            ExitCode::from(2)
        }
    }
}
