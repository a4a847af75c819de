//! Moat's data plane: packet I/O and the per-packet pipeline around
//! [`classifier::classify`].
#![forbid(unsafe_code)]

pub mod gen;
pub mod pcap;
pub mod pipeline;
