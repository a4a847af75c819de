//! The cluster side of a node (DESIGN.md, "Scale-out"): its BGP
//! announcements through BIRD 2 ([`bgp`]: the announcer thread, over
//! [`bird`], the control-socket client, [`announce`], the pure state
//! machine, and [`liveness`], the TAP interface BIRD's routes hang on).

pub mod announce;
pub mod bgp;
pub mod bird;
pub mod liveness;
