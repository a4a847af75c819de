//! The `moat` binary's code as a library, so that the binary and the
//! integration tests share it: [`config`] (the config file, its validation
//! and the policy built from it) and [`cmd`] (one module per subcommand).
#![forbid(unsafe_code)]

pub mod cmd;
pub mod config;
pub mod node;
pub mod scrub_report;
