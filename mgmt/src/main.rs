//! `moat`: the scrubbing appliance's one binary.
#![forbid(unsafe_code)]

fn main() {}
