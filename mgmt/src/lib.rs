//! The `moat` binary's code as a library, so that the binary and the
//! integration tests share it: [`config`] (the config file, its validation
//! and the policy built from it) and [`cmd`] (one module per subcommand);
//! [`detect`], [`report`] and [`alert`] are the management plane's attack
//! detection, attack reports and webhooks.
#![forbid(unsafe_code)]

pub mod alert;
pub mod cmd;
pub mod config;
pub mod detect;
pub mod node;
pub mod report;
pub mod scrub_report;
