//! Judging a flow's first client bytes against its service's rules
//! (`[[services.l7_rules]]` and TCP `[[services.payload_rules]]`): pure,
//! given the contiguous prefix the flow has sent so far
//! ([`super::reassembly`] builds it when it spans segments).
//!
//! [`judge`] says [`Judged::Pending`] while more bytes could change the
//! answer (a request line or `Host` cut by the segment end, a ClientHello
//! not whole yet, a payload rule's bytes not there yet); the caller lets
//! those segments through (the origin needs them to progress) until the
//! prefix is whole or the reassembly bound is reached (`full`), where a
//! still pending flow is [`Judged::Unjudgeable`] (passed, and counted).

use super::http::{self, HttpParse};
use super::rules::{first_match, Facts, L7Action, L7Rule};
use super::tls::{self, TlsParse};
use crate::policy::PayloadRule;

/// Scratch bytes [`judge`] needs for a ClientHello that spans TLS records.
pub const SCRATCH_LEN: usize = tls::MAX_HELLO_LEN;

/// What a flow's first bytes said, kept for detection's heavy hitters
/// (the JA4 and Host + path of sampled packets' flows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub ja4: Option<super::ja4::Ja4>,
    pub host_path: Option<super::HostPath>,
}

impl Seen {
    /// The record of what `facts` say (nothing for [`Facts::Other`]).
    pub fn of(facts: &Facts<'_>) -> Self {
        match *facts {
            Facts::Http { path, host, .. } => Seen {
                ja4: None,
                host_path: Some(super::HostPath::new(host.unwrap_or(b""), path.unwrap_or(b""))),
            },
            Facts::Tls { ja4, .. } => Seen { ja4, host_path: None },
            Facts::Other => Seen::default(),
        }
    }

    /// Whether it holds anything.
    pub fn is_empty(&self) -> bool {
        self.ja4.is_none() && self.host_path.is_none()
    }
}

/// The verdict on a flow's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// More bytes may change the answer: let this segment pass.
    Pending,
    /// Nothing matched a deny (or every payload rule check passed).
    Pass,
    /// The bytes never became judgeable within the bound: pass, counted.
    Unjudgeable,
    /// A deny rule matched.
    Deny,
    /// A limit rule matched: the request counts against the source's rate.
    Limit { per_source_rps: u32 },
    /// The flow's port has payload rules and none matched.
    PayloadMismatch,
}

/// Judges `prefix`, a flow's first client bytes (from offset 0): first its
/// port's payload rules (`payload`, any one matching passes), then the
/// service's `l7` rules. `full`: no more bytes will be added (the bound is
/// reached). `scratch` must hold [`SCRATCH_LEN`] bytes for a split hello
/// (a smaller one only makes such hellos unjudgeable). Never panics.
pub fn judge(prefix: &[u8], payload: &[PayloadRule], l7: &[L7Rule], full: bool, scratch: &mut [u8]) -> Judged {
    judge_seen(prefix, payload, l7, full, scratch, &mut Seen::default())
}

/// [`judge`], noting in `seen` what the bytes said (HTTP Host + path, TLS
/// JA4) once the `l7` rules were matched against them.
pub fn judge_seen(
    prefix: &[u8],
    payload: &[PayloadRule],
    l7: &[L7Rule],
    full: bool,
    scratch: &mut [u8],
    seen: &mut Seen,
) -> Judged {
    if !payload.is_empty() && !payload.iter().any(|r| r.matches(prefix)) {
        let need = payload
            .iter()
            .map(|r| usize::from(r.offset) + usize::from(r.len))
            .max()
            .unwrap_or(0);
        // Some rule may still match once its bytes arrive.
        if prefix.len() < need && !full {
            return Judged::Pending;
        }
        return Judged::PayloadMismatch;
    }
    if l7.is_empty() {
        return Judged::Pass;
    }
    let facts = match http::parse_request(prefix) {
        HttpParse::Request(r) => {
            let cut = r.headers == http::Headers::Partial && r.host.is_none();
            if cut && l7.iter().any(L7Rule::needs_host) {
                if !full {
                    return Judged::Pending;
                }
                return Judged::Unjudgeable;
            }
            Facts::of_request(&r)
        }
        HttpParse::Incomplete => return if full { Judged::Unjudgeable } else { Judged::Pending },
        HttpParse::NotHttp => match tls::parse_client_hello(prefix, scratch) {
            TlsParse::Hello(h) => Facts::of_hello(&h),
            TlsParse::Incomplete { .. } => return if full { Judged::Unjudgeable } else { Judged::Pending },
            TlsParse::NotTls | TlsParse::Malformed(_) => Facts::Other,
        },
    };
    *seen = Seen::of(&facts);
    match first_match(l7, &facts).map(|r| r.action) {
        None => Judged::Pass,
        Some(L7Action::Deny) => Judged::Deny,
        Some(L7Action::Limit { per_source_rps }) => Judged::Limit { per_source_rps },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::http::Method;

    fn deny_login() -> Vec<L7Rule> {
        let mut r = L7Rule::new(L7Action::Deny);
        r.path_prefix = Some(b"/login".as_slice().into());
        vec![r]
    }

    #[test]
    fn http_request_is_judged_once_its_line_is_whole() {
        let rules = deny_login();
        let mut scratch = vec![0; SCRATCH_LEN];
        let req = b"GET /login HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(judge(&req[..7], &[], &rules, false, &mut scratch), Judged::Pending);
        assert_eq!(judge(&req[..7], &[], &rules, true, &mut scratch), Judged::Unjudgeable);
        assert_eq!(judge(req, &[], &rules, false, &mut scratch), Judged::Deny);
        assert_eq!(
            judge(b"GET /index HTTP/1.1\r\n\r\n", &[], &rules, false, &mut scratch),
            Judged::Pass
        );
        // Not HTTP, not TLS: judged, nothing matches.
        assert_eq!(judge(b"\x00\x01junk", &[], &rules, false, &mut scratch), Judged::Pass);
    }

    #[test]
    fn host_rules_wait_for_the_host_line() {
        let mut r = L7Rule::new(L7Action::Limit { per_source_rps: 3 });
        r.method = Some(Method::Get);
        r.host = Some(b"example.com".as_slice().into());
        let rules = vec![r];
        let mut scratch = vec![0; SCRATCH_LEN];
        let req = b"GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: example.com\r\n\r\n";
        assert_eq!(judge(&req[..20], &[], &rules, false, &mut scratch), Judged::Pending);
        assert_eq!(
            judge(req, &[], &rules, false, &mut scratch),
            Judged::Limit { per_source_rps: 3 }
        );
    }

    #[test]
    fn payload_rules_wait_for_their_bytes() {
        let rule = PayloadRule::new(7000, 2, b"\xbe\xef", b"\xff\xff").expect("rule");
        let mut scratch = [0u8; 0];
        assert_eq!(judge(b"\x00", &[rule], &[], false, &mut scratch), Judged::Pending);
        assert_eq!(
            judge(b"\x00", &[rule], &[], true, &mut scratch),
            Judged::PayloadMismatch
        );
        assert_eq!(
            judge(b"\x00\x00\xbe\xef", &[rule], &[], false, &mut scratch),
            Judged::Pass
        );
        assert_eq!(
            judge(b"\x00\x00\xbe\xee", &[rule], &[], false, &mut scratch),
            Judged::PayloadMismatch
        );
    }
}
