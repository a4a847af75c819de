//! The `moat` subcommands, one module each: its `clap` arguments and its
//! `run` function. `main.rs` parses the command line and dispatches here.

pub mod bench;
pub mod check;
pub mod demo;
pub mod drain;
pub mod gen;
pub mod gen_live;
pub mod loadtest;
pub mod output;
pub mod report;
pub mod run;
pub mod scrub;
