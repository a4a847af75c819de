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

/// Bytes of an HTTP Host + path a sample carries (the rest is cut; the
/// hash covers the whole).
pub const HOST_PATH_LEN: usize = 48;

/// The HTTP request of a flow as a sample carries it: `host` + `path`
/// (`www.example.com/login`), its first [`HOST_PATH_LEN`] bytes and a hash
/// of the whole (so that two long paths sharing a prefix stay apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostPath {
    pub hash: u64,
    /// Bytes of `text` in use.
    pub len: u8,
    /// The whole was longer than `text`.
    pub cut: bool,
    pub text: [u8; HOST_PATH_LEN],
}

impl HostPath {
    /// `host` and `path` joined (the path as sent, query included); a
    /// request without a Host header has an empty `host`.
    pub fn new(host: &[u8], path: &[u8]) -> Self {
        // FNV-1a (64 bits) over host, a 0 byte, path: a key for counting,
        // not a defence (an attacker choosing colliding paths only merges
        // two of its own lines in a report).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in host.iter().chain(&[0]).chain(path) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut text = [0; HOST_PATH_LEN];
        let n = host.len().min(HOST_PATH_LEN);
        text[..n].copy_from_slice(&host[..n]);
        let m = path.len().min(HOST_PATH_LEN - n);
        text[n..n + m].copy_from_slice(&path[..m]);
        HostPath {
            hash: h,
            // At most HOST_PATH_LEN (48).
            len: (n + m) as u8,
            cut: host.len() + path.len() > HOST_PATH_LEN,
            text,
        }
    }

    /// The text kept (lossy UTF-8; `…` where it was cut).
    pub fn text(&self) -> String {
        let t = &self.text[..usize::from(self.len).min(HOST_PATH_LEN)];
        let mut s = String::from_utf8_lossy(t).into_owned();
        if self.cut {
            s.push('…');
        }
        s
    }
}
