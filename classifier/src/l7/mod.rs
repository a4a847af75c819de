//! First-segment (layer 7) inspection of client flows (DESIGN.md, "CC"),
//! and the Source-engine query codec of UDP game authentication.
//!
//! Moat sees only the client-to-server direction and does not terminate TCP,
//! but the first data bytes of a connection say a lot: the HTTP/1.x request
//! line and `Host`, or the TLS ClientHello (SNI, ALPN, the JA4 fingerprint).
//!
//! - [`http`]: the request line and `Host` of a first segment, and whether a
//!   later segment starts a new request (keep-alive counting).
//! - [`tls`]: a ClientHello in one or more TLS records.
//! - [`ja4`]: the JA4 TLS client fingerprint of a parsed ClientHello.
//! - [`reassembly`]: a fixed-memory, in-order reassembly of a flow's first
//!   client bytes, for hellos and requests split over segments.
//! - [`redirect`]: the `307` and token of `syn_auth = "http-redirect"`.
//! - [`a2s`]: Source-engine `A2S_*` queries, `S2C_CHALLENGE` replies and the
//!   stateless challenge value.
//!
//! # Contract (every module)
//!
//! Pure functions over byte slices for a worker's hot path: no allocation, no
//! I/O, no clock (callers pass `now`), and **no panic on any input** (each
//! parser has a cargo-fuzz target in `fuzz/`). Results are fixed-size: slices
//! borrowed from the input, small `Copy` enums, or fixed arrays (a JA4 is a
//! `[u8; 36]`). A parser tells a cut input (`Incomplete`: more bytes of the
//! same flow may complete it) from input that is not its protocol
//! (`NotHttp`, `NotTls`) and from input that claims to be but breaks the
//! format (`Malformed`, with a `Copy` reason).

pub mod a2s;
pub mod http;
pub mod inspect;
pub mod ja4;
pub mod reassembly;
pub mod redirect;
pub mod rules;
pub mod tls;
