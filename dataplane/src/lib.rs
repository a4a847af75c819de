//! Moat's data plane: packet I/O and the per-packet pipeline around
//! [`classifier::classify`].
// `unsafe` is allowed only in the socket, FFI and prefetch modules, each of
// which opts in with `#![allow(unsafe_code)]` and documents every block.
#![deny(unsafe_code)]

pub mod gen;
pub mod loadtest;
pub mod pcap;
pub mod pipeline;
pub mod port;
pub mod prefetch;
pub mod runtime;
