//! Live legitimate clients for load tests (`moat loadtest`): many TCP
//! clients per core on raw Ethernet frames, through the same port code as
//! the dataplane ([`crate::port::Queues`], AF_PACKET), that answer Moat's
//! SYN authentication as real stacks do, fetch a page from the origin over
//! HTTP/1.1, read its answer coming back by direct server return on another
//! interface, and count what happened: connections tried, completed, failed
//! by reason, and the time to first byte.
//!
//! Contract:
//! - Fixed capacity: the client table, the frames and the histogram are
//!   allocated at start-up; nothing is allocated per packet or per
//!   connection, and every connection is bounded by its timeout.
//! - A client's source address is one of a range the sending host's kernel
//!   does not own (so that it neither answers nor resets what comes back
//!   for it); each core owns a share of the range ([`layout`]) and a socket
//!   filter that takes only its own clients' answers
//!   ([`crate::port::af_packet::filter`]).
//! - The TCP behaviour is [`conn`]'s: what Linux does, as far as Moat and
//!   the origin can tell (IPv4 only).
//!
//! One file per concern: [`frames`] (the client's frames), [`http`] (the
//! request and the response parser), [`conn`] (one connection's state
//! machine, sans I/O), [`layout`] (addresses and ports), [`stats`]
//! (counters, histogram), [`engine`] (the poll loop), [`arp`] (resolving
//! the next hop).

pub mod arp;
pub mod conn;
pub mod engine;
pub mod frames;
pub mod http;
pub mod layout;
pub mod stats;

pub use conn::Timing;
pub use engine::{run, CoreConfig, CoreReport};
pub use layout::Layout;
pub use stats::{ClientStats, Counters, Failure, Live, Totals};

#[cfg(test)]
mod tests;
