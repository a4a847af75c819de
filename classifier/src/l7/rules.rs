//! `[[services.l7_rules]]`: the pure matcher of first-segment rules.
//!
//! A rule names some of `method`, `path_prefix`, `host` (HTTP/1.x), `sni`
//! and `ja4` (TLS ClientHello); it matches a flow whose first bytes carry
//! every key it names ([`L7Rule::matches`]). HTTP keys never match a TLS
//! flow and TLS keys never match an HTTP one, so a rule mixing both matches
//! nothing (config validation refuses it). The first matching rule of the
//! service's list decides ([`first_match`]).
//!
//! Pure: no allocation when matching, no panic on any input (fuzzed with
//! the first-segment path in `fuzz/fuzz_targets/l7_rules.rs`).

use super::http::{self, Method, Request};
use super::ja4::Ja4;
use super::tls::ClientHello;

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L7Action {
    /// Drop the segment and reset the connection both ways.
    Deny,
    /// Let requests through at `per_source_rps` per source; beyond it,
    /// as [`L7Action::Deny`].
    Limit { per_source_rps: u32 },
}

/// One rule: every key that is `Some` must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L7Rule {
    pub method: Option<Method>,
    /// Prefix of the request's path (bytes as sent, case-sensitive).
    pub path_prefix: Option<Box<[u8]>>,
    /// The `Host` header, without port ([`http::host_eq`]).
    pub host: Option<Box<[u8]>>,
    /// The ClientHello's server name ([`http::host_eq`]).
    pub sni: Option<Box<[u8]>>,
    pub ja4: Option<Ja4>,
    pub action: L7Action,
}

/// What a flow's first bytes said, for the matcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facts<'a> {
    /// An HTTP/1.x request line (and `Host` where it was seen).
    Http {
        method: Method,
        path: Option<&'a [u8]>,
        host: Option<&'a [u8]>,
    },
    /// A TLS ClientHello.
    Tls { sni: Option<&'a [u8]>, ja4: Option<Ja4> },
    /// Neither (or bytes that broke their format): only a rule without
    /// keys could match, and validation refuses those.
    Other,
}

impl<'a> Facts<'a> {
    /// The facts of a parsed request.
    pub fn of_request(r: &Request<'a>) -> Self {
        Facts::Http {
            method: r.method,
            path: r.path(),
            host: r.host,
        }
    }

    /// The facts of a parsed ClientHello (its JA4 computed here, `None`
    /// when the hello has no fingerprint).
    pub fn of_hello(h: &ClientHello<'a>) -> Self {
        Facts::Tls {
            sni: h.sni,
            ja4: super::ja4::ja4(h, super::ja4::Transport::Tcp).ok(),
        }
    }
}

impl L7Rule {
    /// A rule that matches everything, with `action`; set its keys.
    pub fn new(action: L7Action) -> Self {
        L7Rule {
            method: None,
            path_prefix: None,
            host: None,
            sni: None,
            ja4: None,
            action,
        }
    }

    /// Whether the rule names an HTTP key.
    pub fn has_http_keys(&self) -> bool {
        self.method.is_some() || self.path_prefix.is_some() || self.host.is_some()
    }

    /// Whether the rule names a TLS key.
    pub fn has_tls_keys(&self) -> bool {
        self.sni.is_some() || self.ja4.is_some()
    }

    /// Does every key the rule names match `f`?
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        match *f {
            Facts::Http { method, path, host } => {
                !self.has_tls_keys()
                    && self.method.is_none_or(|m| m == method)
                    && self
                        .path_prefix
                        .as_deref()
                        .is_none_or(|p| path.is_some_and(|path| path.starts_with(p)))
                    && self
                        .host
                        .as_deref()
                        .is_none_or(|h| host.is_some_and(|host| http::host_eq(host, h)))
            }
            Facts::Tls { sni, ja4 } => {
                !self.has_http_keys()
                    && self
                        .sni
                        .as_deref()
                        .is_none_or(|s| sni.is_some_and(|sni| http::host_eq(sni, s)))
                    && self.ja4.is_none_or(|j| ja4 == Some(j))
            }
            Facts::Other => !self.has_http_keys() && !self.has_tls_keys(),
        }
    }

    /// Whether matching needs the request's `Host` (so that a request
    /// whose headers are cut before it waits for more bytes).
    pub fn needs_host(&self) -> bool {
        self.host.is_some()
    }
}

/// The first rule of `rules` that matches `f`.
pub fn first_match<'r>(rules: &'r [L7Rule], f: &Facts<'_>) -> Option<&'r L7Rule> {
    rules.iter().find(|r| r.matches(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::http::{parse_request, HttpParse};

    fn req(bytes: &[u8]) -> Facts<'_> {
        match parse_request(bytes) {
            HttpParse::Request(r) => Facts::of_request(&r),
            other => panic!("not a request: {other:?}"),
        }
    }

    fn rule(f: impl FnOnce(&mut L7Rule)) -> L7Rule {
        let mut r = L7Rule::new(L7Action::Deny);
        f(&mut r);
        r
    }

    #[test]
    fn every_given_key_must_match() {
        let login = req(b"POST /login?next=/ HTTP/1.1\r\nHost: WWW.example.com:8080\r\n\r\n");
        let r = rule(|r| {
            r.method = Some(Method::Post);
            r.path_prefix = Some(b"/login".as_slice().into());
            r.host = Some(b"www.example.com".as_slice().into());
        });
        assert!(r.matches(&login));
        let get = req(b"GET /login HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
        assert!(!r.matches(&get), "method differs");
        let other_path = req(b"POST /logout HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
        assert!(!r.matches(&other_path));
        let no_host = req(b"POST /login HTTP/1.0\r\n\r\n");
        assert!(!r.matches(&no_host), "a host key needs a Host");
        let path_only = rule(|r| r.path_prefix = Some(b"/login".as_slice().into()));
        assert!(path_only.matches(&get) && path_only.matches(&no_host));
        assert!(!path_only.matches(&Facts::Other));
    }

    #[test]
    fn http_and_tls_keys_never_cross() {
        let ja4 = Ja4::parse("t13d1516h2_8daaf6152771_02713d6af862").expect("ja4");
        let tls = Facts::Tls {
            sni: Some(b"game.example.com"),
            ja4: Some(ja4),
        };
        let by_sni = rule(|r| r.sni = Some(b"Game.Example.com.".as_slice().into()));
        let by_ja4 = rule(|r| r.ja4 = Some(ja4));
        let by_host = rule(|r| r.host = Some(b"game.example.com".as_slice().into()));
        assert!(by_sni.matches(&tls) && by_ja4.matches(&tls));
        assert!(!by_host.matches(&tls));
        let http = req(b"GET / HTTP/1.1\r\nHost: game.example.com\r\n\r\n");
        assert!(!by_sni.matches(&http) && by_host.matches(&http));
        let other = Ja4::parse("t12d1516h2_8daaf6152771_02713d6af862").expect("ja4");
        assert!(!by_ja4.matches(&Facts::Tls {
            sni: None,
            ja4: Some(other)
        }));
        assert!(!by_ja4.matches(&Facts::Tls { sni: None, ja4: None }));
        let mixed = rule(|r| {
            r.sni = Some(b"a".as_slice().into());
            r.host = Some(b"a".as_slice().into());
        });
        assert!(!mixed.matches(&tls) && !mixed.matches(&http));
    }

    #[test]
    fn first_matching_rule_decides() {
        let rules = [
            rule(|r| r.path_prefix = Some(b"/api".as_slice().into())),
            L7Rule {
                action: L7Action::Limit { per_source_rps: 5 },
                ..rule(|r| r.method = Some(Method::Get))
            },
        ];
        let api = req(b"GET /api/x HTTP/1.1\r\n\r\n");
        let page = req(b"GET /index HTTP/1.1\r\n\r\n");
        let post = req(b"POST /index HTTP/1.1\r\n\r\n");
        assert_eq!(first_match(&rules, &api).map(|r| r.action), Some(L7Action::Deny));
        assert_eq!(
            first_match(&rules, &page).map(|r| r.action),
            Some(L7Action::Limit { per_source_rps: 5 })
        );
        assert_eq!(first_match(&rules, &post), None);
    }
}
