//! The node in its cluster (DESIGN.md, "Scale-out"; docs/cluster.md):
//! - its BGP announcements through BIRD 2 ([`bgp`]: the announcer thread,
//!   over [`bird`], the control-socket client, [`announce`], the pure state
//!   machine, and [`liveness`], the TAP interface BIRD's routes hang on);
//! - the NATS bus that shares verified sources and the configuration
//!   overlay ([`bus`]).
//!
//! The API reads both through `api::ClusterApi` (`GET /api/v1/cluster`).

pub mod announce;
pub mod bgp;
pub mod bird;
pub mod bus;
pub mod liveness;
