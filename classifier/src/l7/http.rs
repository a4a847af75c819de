//! The HTTP/1.x request line and `Host` header of a client flow's first data
//! segment (RFC 9112 §3 and §3.2), for `l7_rules` on method, path and host.
//!
//! ```text
//! request-line = method SP request-target SP HTTP-version CRLF
//! header-field = field-name ":" OWS field-value OWS       (one per line)
//!                (an empty line ends the header section)
//! ```
//!
//! [`parse_request`] reads a segment that may be cut anywhere and answers
//! [`HttpParse::Incomplete`] (a prefix of a request line: more bytes of the
//! same flow may complete it), [`HttpParse::NotHttp`] (these bytes cannot
//! start an HTTP/1.x request) or [`HttpParse::Request`] as soon as the
//! request line is whole. The header section may still be cut then:
//! [`Request::headers`] says whether it ended, was cut (a `Host` line may
//! follow in a later segment) or broke the format.
//!
//! Leniency, as RFC 9112 allows a server: one empty line before the request
//! line is skipped (§2.2), a bare LF ends a line like CRLF (§2.2), and the
//! request-target may hold bytes above 0x7F (obs-text), but never a control
//! byte. Strictness, as it requires: a second `Host` or a folded header line
//! (obs-fold) makes the header section [`Headers::Malformed`] (§3.2: a server
//! answers 400).
//!
//! Nothing allocates; every slice borrows from the segment. A parse is
//! O(segment length): line ends are found with `memchr` (SIMD), and only
//! the method, the target and the header names are looked at byte by byte.

/// Longest method token accepted: the registered methods are at most 17
/// bytes (`VERSION-CONTROL`); an attacker's longer token is not HTTP.
pub const MAX_METHOD_LEN: usize = 24;

/// The request method (RFC 9110 §9), keeping unknown tokens as
/// [`Method::Unknown`] (the token itself is [`Request::method_token`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Unknown,
}

/// The methods [`Method`] names, with their tokens (case-sensitive, RFC 9110
/// §9.1).
const METHODS: [(&[u8], Method); 9] = [
    (b"GET", Method::Get),
    (b"HEAD", Method::Head),
    (b"POST", Method::Post),
    (b"PUT", Method::Put),
    (b"DELETE", Method::Delete),
    (b"CONNECT", Method::Connect),
    (b"OPTIONS", Method::Options),
    (b"TRACE", Method::Trace),
    (b"PATCH", Method::Patch),
];

impl Method {
    /// The method a token names (case-sensitive), or `Unknown`.
    pub fn from_token(token: &[u8]) -> Method {
        METHODS
            .iter()
            .find(|(t, _)| *t == token)
            .map_or(Method::Unknown, |(_, m)| *m)
    }

    /// The method of a config string (`"GET"`), or `None` for a token that
    /// [`Method`] does not name.
    pub fn from_name(name: &str) -> Option<Method> {
        match Method::from_token(name.as_bytes()) {
            Method::Unknown => None,
            m => Some(m),
        }
    }

    /// The token, `"?"` for `Unknown`.
    pub fn as_str(self) -> &'static str {
        METHODS
            .iter()
            .find(|(_, m)| *m == self)
            .and_then(|(t, _)| core::str::from_utf8(t).ok())
            .unwrap_or("?")
    }
}

/// `HTTP-version = "HTTP/" DIGIT "." DIGIT` (RFC 9112 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    Http10,
    Http11,
    /// Another major.minor (`PRI * HTTP/2.0`, the HTTP/2 connection preface,
    /// parses as method `Unknown` with version `Other(2, 0)`).
    Other(u8, u8),
}

/// How far the header section went in the bytes given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Headers {
    /// The empty line that ends the header section was seen: a missing
    /// `Host` is missing.
    Complete,
    /// The bytes end inside the header section: a `Host` line may follow.
    Partial,
    /// A header line breaks RFC 9112 (no colon, a bad name, obs-fold, a
    /// second `Host`); `host` holds what was read before it.
    Malformed,
}

/// A parsed request line and what was found of the headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    /// The method token as sent (`b"GET"`, or an unknown token).
    pub method_token: &'a [u8],
    /// The request-target as sent: a path and query (`/login?x=1`), an
    /// absolute URI, an authority (`CONNECT`) or `*`.
    pub target: &'a [u8],
    pub version: Version,
    /// The `Host` value, OWS trimmed and the port stripped (`example.com`
    /// from `example.com:8080`, `[2001:db8::1]` from `[2001:db8::1]:80`);
    /// `None` when no complete `Host` line was seen.
    pub host: Option<&'a [u8]>,
    /// The `Host` value, OWS trimmed, port kept.
    pub host_header: Option<&'a [u8]>,
    pub headers: Headers,
}

impl<'a> Request<'a> {
    /// The path of an origin-form target (`/a/b` from `/a/b?q=1`); for an
    /// absolute-form target, the path after its authority (`/x` from
    /// `http://h/x`, `/` when it has none). `None` for `*` and the authority
    /// form.
    pub fn path(&self) -> Option<&'a [u8]> {
        let t = self.target;
        let path = if t.first() == Some(&b'/') {
            t
        } else {
            let scheme_end = t.windows(3).position(|w| w == b"://")?;
            let after = t.get(scheme_end + 3..)?;
            match after.iter().position(|&b| b == b'/') {
                Some(i) => after.get(i..)?,
                None => return Some(b"/"),
            }
        };
        let end = path.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(path.len());
        path.get(..end)
    }
}

/// What [`parse_request`] made of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpParse<'a> {
    /// A prefix of a request line (possibly empty): more bytes may make it one.
    Incomplete,
    /// These bytes cannot start an HTTP/1.x request.
    NotHttp,
    Request(Request<'a>),
}

/// `tchar` (RFC 9110 §5.6.2), the bytes of a method token and a field
/// name, as a table: one load per byte on the hot path.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'..=b'`' | b'|' | b'~');
        i += 1;
    }
    t
};

#[inline]
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Bytes of a request-target: visible ASCII and obs-text, no controls, no SP.
#[inline]
fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Skips one empty line (CRLF or LF) before the request line (RFC 9112 §2.2).
/// `None` when the bytes are a lone CR, which may still become CRLF.
fn skip_empty_line(seg: &[u8]) -> Option<&[u8]> {
    match seg {
        [b'\r'] => None,
        [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => Some(rest),
        _ => Some(seg),
    }
}

/// Parses the request line and looks for `Host` in a client's first bytes
/// (module docs). Never panics; O(`seg.len()`).
pub fn parse_request(seg: &[u8]) -> HttpParse<'_> {
    let Some(s) = skip_empty_line(seg) else {
        return HttpParse::Incomplete;
    };
    // method SP
    let Some(sp) = s.iter().take(MAX_METHOD_LEN + 1).position(|&b| !is_tchar(b)) else {
        return if s.len() <= MAX_METHOD_LEN {
            HttpParse::Incomplete
        } else {
            HttpParse::NotHttp
        };
    };
    if sp == 0 || s[sp] != b' ' {
        return HttpParse::NotHttp;
    }
    let (method_token, rest) = (&s[..sp], &s[sp + 1..]);
    // request-target SP
    let Some(tend) = rest.iter().position(|&b| !is_target_byte(b)) else {
        return HttpParse::Incomplete;
    };
    if tend == 0 || rest[tend] != b' ' {
        return HttpParse::NotHttp;
    }
    let (target, rest) = (&rest[..tend], &rest[tend + 1..]);
    // HTTP-version CRLF
    let (version, rest) = match parse_version_line(rest) {
        Line::Done(v, rest) => (v, rest),
        Line::Incomplete => return HttpParse::Incomplete,
        Line::Bad => return HttpParse::NotHttp,
    };
    let (host_header, headers) = find_host(rest);
    HttpParse::Request(Request {
        method: Method::from_token(method_token),
        method_token,
        target,
        version,
        host: host_header.map(strip_port),
        host_header,
        headers,
    })
}

enum Line<'a> {
    Done(Version, &'a [u8]),
    Incomplete,
    Bad,
}

/// `"HTTP/" DIGIT "." DIGIT` then CRLF or LF.
fn parse_version_line(s: &[u8]) -> Line<'_> {
    const PREFIX: &[u8] = b"HTTP/";
    // Shape of the eight version bytes: literal or a digit (`0` marks one).
    const SHAPE: &[u8] = b"HTTP/0.0";
    for (i, &b) in s.iter().take(SHAPE.len()).enumerate() {
        let ok = if SHAPE[i] == b'0' {
            b.is_ascii_digit()
        } else {
            b == SHAPE[i]
        };
        if !ok {
            return Line::Bad;
        }
    }
    if s.len() < SHAPE.len() {
        return Line::Incomplete;
    }
    let (major, minor) = (s[PREFIX.len()] - b'0', s[PREFIX.len() + 2] - b'0');
    let rest = &s[SHAPE.len()..];
    let rest = match rest {
        [] | [b'\r'] => return Line::Incomplete,
        [b'\r', b'\n', r @ ..] | [b'\n', r @ ..] => r,
        _ => return Line::Bad,
    };
    let v = match (major, minor) {
        (1, 0) => Version::Http10,
        (1, 1) => Version::Http11,
        (a, b) => Version::Other(a, b),
    };
    Line::Done(v, rest)
}

/// Walks the complete header lines: the `Host` value (OWS trimmed) and how
/// the section ended.
fn find_host(mut s: &[u8]) -> (Option<&[u8]>, Headers) {
    let mut host = None;
    loop {
        let Some(lf) = memchr::memchr(b'\n', s) else {
            return (host, Headers::Partial);
        };
        let line = &s[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        s = &s[lf + 1..];
        if line.is_empty() {
            return (host, Headers::Complete);
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return (host, Headers::Malformed);
        };
        let name = &line[..colon];
        // An empty name, a name with SP or a control (RFC 9112 §5.1: no
        // whitespace before the colon), or a folded line (leading SP/HTAB).
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return (host, Headers::Malformed);
        }
        if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return (host, Headers::Malformed);
            }
            host = Some(trim_ows(&line[colon + 1..]));
        }
    }
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    v.get(start..end).unwrap_or(&[])
}

/// `uri-host [ ":" port ]` → `uri-host` (RFC 9110 §7.2). An IP literal keeps
/// its brackets; a value whose last colon is not followed by digits only
/// (an unbracketed IPv6 address, garbage) is returned whole.
pub fn strip_port(v: &[u8]) -> &[u8] {
    if v.first() == Some(&b'[') {
        return match v.iter().position(|&b| b == b']') {
            Some(i) if v[i + 1..].is_empty() || is_port(&v[i + 1..]) => &v[..=i],
            _ => v,
        };
    }
    match v.iter().rposition(|&b| b == b':') {
        Some(i) if !v[..i].contains(&b':') && is_port(&v[i..]) => &v[..i],
        _ => v,
    }
}

/// `":" *DIGIT`.
fn is_port(s: &[u8]) -> bool {
    s.first() == Some(&b':') && s[1..].iter().all(u8::is_ascii_digit)
}

/// Whether a segment starts a new request: one of [`Method`]'s nine tokens,
/// SP, and the first byte of a request-target (`/`, `*`, or a letter for the
/// absolute and authority forms). For counting requests on a keep-alive
/// connection: a segment in the middle of a body rarely starts like this,
/// and a false count costs one token of a rate limit, never a drop of a
/// segment that did start a request. O(1): looks at most 9 bytes.
pub fn starts_request(seg: &[u8]) -> bool {
    METHODS.iter().any(|(t, _)| {
        seg.starts_with(t)
            && seg.get(t.len()) == Some(&b' ')
            && seg
                .get(t.len() + 1)
                .is_some_and(|&b| b == b'/' || b == b'*' || b.is_ascii_alphabetic())
    })
}

/// Host names compare ASCII case-insensitively (RFC 9110 §4.2.3); a trailing
/// dot (the root label) is ignored on either side.
pub fn host_eq(a: &[u8], b: &[u8]) -> bool {
    let a = a.strip_suffix(b".").unwrap_or(a);
    let b = b.strip_suffix(b".").unwrap_or(b);
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &[u8]) -> Request<'_> {
        match parse_request(s) {
            HttpParse::Request(r) => r,
            other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn curl_request() {
        let s = b"GET /login?next=%2F HTTP/1.1\r\nHost: www.example.com:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
        let r = req(s);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.method_token, b"GET");
        assert_eq!(r.target, b"/login?next=%2F");
        assert_eq!(r.path(), Some(&b"/login"[..]));
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.host, Some(&b"www.example.com"[..]));
        assert_eq!(r.host_header, Some(&b"www.example.com:8080"[..]));
        assert_eq!(r.headers, Headers::Complete);
    }

    #[test]
    fn every_cut_of_a_request_is_incomplete_until_the_request_line_ends() {
        let s = b"POST /api HTTP/1.0\r\nhOsT:  \t a.example \t\r\nContent-Length: 2\r\n\r\nhi";
        let line_end = s.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        for cut in 0..=s.len() {
            let got = parse_request(&s[..cut]);
            if cut < line_end {
                assert_eq!(got, HttpParse::Incomplete, "cut {cut}");
                continue;
            }
            let HttpParse::Request(r) = got else {
                panic!("cut {cut}: {got:?}")
            };
            assert_eq!(
                (r.method, r.target, r.version),
                (Method::Post, &b"/api"[..], Version::Http10)
            );
            let host_line_end = line_end + b"hOsT:  \t a.example \t\r\n".len();
            if cut < host_line_end {
                assert_eq!((r.host, r.headers), (None, Headers::Partial), "cut {cut}");
            } else {
                assert_eq!(r.host, Some(&b"a.example"[..]), "cut {cut}");
                let complete = cut >= s.len() - 2;
                assert_eq!(r.headers == Headers::Complete, complete, "cut {cut}");
            }
        }
    }

    #[test]
    fn not_http() {
        for s in [
            &b"\x16\x03\x01\x02\x00\x01"[..],
            b" GET / HTTP/1.1\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET / HTTP/1.1 \r\n",
            b"GET / http/1.1\r\n",
            b"GET / HTTP/1.x\r\n",
            b"GET / HTTP/1.1\rX",
            b"GET /\x01 HTTP/1.1\r\n",
            b"GET /\r\n",
            b"G(T / HTTP/1.1\r\n",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\n",
        ] {
            assert_eq!(parse_request(s), HttpParse::NotHttp, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn incomplete_prefixes() {
        for s in [
            &b""[..],
            b"\r",
            b"\r\n",
            b"GE",
            b"GET",
            b"GET ",
            b"GET /x",
            b"GET /x HTTP/1",
            b"GET / HTTP/1.1\r",
        ] {
            assert_eq!(
                parse_request(s),
                HttpParse::Incomplete,
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
        // A method token may be at most MAX_METHOD_LEN bytes.
        assert_eq!(parse_request(&[b'A'; MAX_METHOD_LEN]), HttpParse::Incomplete);
        assert_eq!(parse_request(&[b'A'; MAX_METHOD_LEN + 1]), HttpParse::NotHttp);
    }

    #[test]
    fn lenient_forms() {
        // One empty line first, bare LFs, an unknown method, obs-text.
        let r = req(b"\r\nPURGE /caf\xc3\xa9 HTTP/1.1\nHost: x\n\n");
        assert_eq!((r.method, r.method_token), (Method::Unknown, &b"PURGE"[..]));
        assert_eq!(r.target, "/café".as_bytes());
        assert_eq!((r.host, r.headers), (Some(&b"x"[..]), Headers::Complete));
        // The HTTP/2 preface.
        let r = req(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(
            (r.version, r.path(), r.headers),
            (Version::Other(2, 0), None, Headers::Complete)
        );
        // No Host in a complete HTTP/1.0 request.
        let r = req(b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n");
        assert_eq!((r.host, r.headers), (None, Headers::Complete));
    }

    #[test]
    fn malformed_headers() {
        for (s, host) in [
            (&b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..], Some(&b"a"[..])),
            (b"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\nHost: a\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\n: empty\r\n\r\n", None),
        ] {
            let r = req(s);
            assert_eq!(
                (r.host, r.headers),
                (host, Headers::Malformed),
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn ports_are_stripped() {
        for (v, want) in [
            (&b"example.com"[..], &b"example.com"[..]),
            (b"example.com:443", b"example.com"),
            (b"example.com:", b"example.com"),
            (b"[2001:db8::1]:8080", b"[2001:db8::1]"),
            (b"[2001:db8::1]", b"[2001:db8::1]"),
            (b"2001:db8::1", b"2001:db8::1"),
            (b"a.example:80x", b"a.example:80x"),
            (b"[::1]x", b"[::1]x"),
            (b"[::1", b"[::1"),
            (b"", b""),
        ] {
            assert_eq!(strip_port(v), want, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn paths_of_each_target_form() {
        let path = |t: &[u8]| {
            let mut s = b"GET ".to_vec();
            s.extend_from_slice(t);
            s.extend_from_slice(b" HTTP/1.1\r\n");
            req(&s).path().map(<[u8]>::to_vec)
        };
        assert_eq!(path(b"/a/b?c#d"), Some(b"/a/b".to_vec()));
        assert_eq!(path(b"http://h.example:8/x/y?z"), Some(b"/x/y".to_vec()));
        assert_eq!(path(b"http://h.example"), Some(b"/".to_vec()));
        assert_eq!(path(b"h.example:443"), None);
        assert_eq!(path(b"*"), None);
    }

    #[test]
    fn request_starts() {
        for s in [
            &b"GET / HTTP/1.1"[..],
            b"POST /x",
            b"OPTIONS *",
            b"CONNECT h:443",
            b"GET http://h/",
        ] {
            assert!(starts_request(s), "{:?}", String::from_utf8_lossy(s));
        }
        for s in [
            &b""[..],
            b"GET",
            b"GET ",
            b"GET  /",
            b"get / HTTP/1.1",
            b"{\"a\":1}",
            b"GETX / ",
            b"PURGE /",
        ] {
            assert!(!starts_request(s), "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn tchar_table() {
        let want = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_tchar(b), want(b), "{b:#04x}");
        }
    }

    #[test]
    fn methods_and_hosts() {
        assert_eq!(Method::from_name("PATCH"), Some(Method::Patch));
        assert_eq!(Method::from_name("get"), None);
        assert_eq!(Method::Delete.as_str(), "DELETE");
        assert_eq!(Method::Unknown.as_str(), "?");
        assert!(host_eq(b"WWW.Example.COM.", b"www.example.com"));
        assert!(!host_eq(b"www.example.com", b"example.com"));
    }
}
