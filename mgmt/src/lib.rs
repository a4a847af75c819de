//! The `moat` binary's code as a library, so that the binary and the
//! integration tests share it: [`config`] (the config file, its validation
//! and the policy built from it), [`cli`] (the command line) and [`cmd`]
//! (one module per subcommand); the node's life ([`lifecycle`]: start,
//! supervise, drain, stop; [`logging`]); [`cluster`] (BGP announcements
//! through BIRD);
//! the management plane of a running node: [`control`] (live changes),
//! [`api`] (REST and `/metrics`), [`metrics`], [`persist`]; [`detect`],
//! [`report`] and [`alert`] (attack detection, attack reports, webhooks);
//! [`cluster`] (the NATS bus: verified sources and configuration shared).
#![forbid(unsafe_code)]

pub mod alert;
pub mod api;
pub mod blacklist;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod control;
pub mod detect;
pub mod health;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod persist;
pub mod report;
pub mod scrub_report;
