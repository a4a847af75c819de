//! Moat's classifier: the whole per-packet decision logic of the appliance as
//! pure code over byte slices. No I/O, no threads, no clock (callers pass
//! `now`), and no allocation on the per-packet path.
//!
//! Layout, in packet-path order:
//! - [`wire`]: zero-copy views of the wire formats, checksums.
//! - [`parse`]: one pass over L2/L3/L4 into a small [`parse::Parsed`] summary.
//! - [`build`]: builders for the frames Moat emits (SYN-ACK, RST, ARP reply
//!   and request, ICMP packet too big, GRE encapsulation), MSS clamping and
//!   completing offloaded checksums.
//! - [`acl`]: longest-prefix-match CIDR tables.
//! - [`cookie`], [`synauth`]: SYN cookies and the two SYN authentication modes.
//! - [`state`]: per-core tables of fixed capacity (flows, verified sources,
//!   token buckets).
//! - [`fingerprint`], [`sketch`]: SYN/UDP fingerprints, heavy hitters.
//! - [`policy`], [`verdict`], [`classify`]: the snapshot, the verdict and the
//!   function that ties them together.
#![forbid(unsafe_code)]

pub mod acl;
pub mod build;
pub mod classify;
pub mod conn;
pub mod cookie;
pub mod fingerprint;
pub mod l7;
pub mod parse;
pub mod policy;
pub mod sketch;
pub mod state;
pub mod synauth;
pub mod time;
pub mod udpauth;
pub mod verdict;
pub mod wire;

pub use classify::classify;
pub use parse::Parsed;
pub use policy::Policy;
pub use state::WorkerState;
pub use verdict::{DropReason, Verdict};
