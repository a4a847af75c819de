//! Time as the classifier sees it: nanoseconds since the Unix epoch, passed in
//! by the caller (the wall clock live, capture timestamps offline). Wall time,
//! not a monotonic clock, because SYN cookies must mean the same thing on
//! every node of a cluster.

/// Nanoseconds since the Unix epoch.
pub type Nanos = u64;

/// One second in [`Nanos`].
pub const SECOND: Nanos = 1_000_000_000;
/// One millisecond in [`Nanos`].
pub const MILLISECOND: Nanos = 1_000_000;
