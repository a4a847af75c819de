//! The stateless HTTP challenge (`syn_auth = "http-redirect"`, DESIGN.md
//! "CC"): Moat completes the handshake itself with a SYN cookie (as
//! `cookie-reset` does), answers the client's first request with a `307`
//! to the same URL carrying a token, and closes. A request that carries a
//! valid token verifies its source, is answered with a `307` to the URL
//! without the token, and closed; from then on the source's SYNs go to the
//! origin. Browsers, `curl -L` and `requests` follow; bots that do not
//! follow redirects never reach the origin.
//!
//! ```text
//! client                          Moat                          origin
//!  SYN ──────────────────────────► SYN-ACK seq=cookie           (1 RTT)
//!  ACK ──────────────────────────► (dropped: http_handshake)
//!  GET /p?q ─────────────────────► 307 Location: /p?q&moat_token=T, FIN
//!                                                              (1 RTT)
//!  SYN, ACK, GET /p?q&moat_token=T ► 307 Location: /p?q, FIN   (2 RTT)
//!                                   (source verified, on the bus)
//!  SYN ──────────────────────────────────────────────────────► (as usual)
//! ```
//!
//! First contact costs four round trips more than a direct fetch (two
//! connections of two round trips each, both answered by Moat); a verified
//! source then pays nothing until its verification expires.
//!
//! The `Location` is relative (the request's origin-form target, RFC 9110
//! §10.2.2 allows a relative reference), so the `Host` is never echoed.
//! Every response is [`RESPONSE_LEN`] (536) bytes, padded with a body of
//! spaces: it fits any client's MSS, and the client's later segments are
//! recognised statelessly. Only origin-form targets (starting with `/`) of
//! printable ASCII whose response fits are answered (a path and query of
//! up to 398 bytes, without the token): anything else (`*`, absolute or authority form, a
//! request line cut by the segment, non-HTTP bytes) gets a RST.
//!
//! The token is 64 bits, sent as 16 lowercase hex digits in the query
//! parameter [`TOKEN_PARAM`]:
//!
//! ```text
//!  63                                  8   7    3   2  1   0
//! +-------------------------------------+--------+---+------+
//! |   MAC (56 bits of SipHash-2-4)      |   0    |gen| slot |
//! +-------------------------------------+--------+---+------+
//! ```
//!
//! The MAC is keyed by the cookie secret of generation `gen` (the cluster's
//! shared secret: every node accepts every node's tokens) over a domain tag,
//! the source address and the 64 s time slot ([`crate::cookie::SLOT_SECS`]);
//! a token is accepted in its slot and the next (64 to 128 s), and a check
//! is one SipHash. It is bound to the source address only, not the port
//! (the follow-up request comes from a new connection).
//!
//! Limits: HTTPS cannot work (the request is inside TLS: a TLS ClientHello
//! gets a RST); a client that does not follow redirects never passes; a
//! POST's body on first contact is lost (the `307` asks the client to
//! repeat the request with its body, which `curl -L` and `requests` do,
//! but the first body is read by nobody).

use core::hash::Hasher;
use core::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::build;
use crate::cookie::{self, CookieSecrets, Key};
use crate::l7::http::{parse_request, HttpParse};
use crate::parse::{Parsed, TcpInfo};
use crate::time::Nanos;
use crate::wire::tcp::flags;

/// The query parameter that carries the token.
pub const TOKEN_PARAM: &[u8] = b"moat_token";
/// Hex digits of a token.
pub const TOKEN_HEX: usize = 16;
/// Length of every HTTP response Moat writes (status line, headers, body
/// of spaces): the smallest MSS a cookie encodes (536, RFC 9293's default),
/// so it fits every client's segment. Being fixed, the client's
/// acknowledgement of the response and its FIN (`cookie + 1 + 536 + 1`)
/// are recognised with one more cookie check ([`CLOSE_ACK_OFFSET`]).
pub const RESPONSE_LEN: usize = 536;
/// What the client's segments after the response acknowledge, past the
/// cookie: the SYN, the response, the FIN.
pub const CLOSE_ACK_OFFSET: u32 = 1 + RESPONSE_LEN as u32 + 1;

const STATUS: &[u8] = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: ";
const CONTENT_LENGTH: &[u8] = b"\r\nConnection: close\r\nCache-Control: no-store\r\nContent-Length: ";

/// The MAC of a token for `src` in `slot` under `key`.
fn mac(key: &Key, src: IpAddr, slot: u64, gen: u64) -> u64 {
    let addr = match src {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mut b = [0u8; 29];
    b[..4].copy_from_slice(b"http");
    b[4..20].copy_from_slice(&addr);
    b[20..28].copy_from_slice(&slot.to_be_bytes());
    b[28] = gen as u8;
    let mut h = SipHasher24::new_with_key(key);
    h.write(&b);
    h.finish() >> 8
}

/// The token for `src` at `now` (layout in the module docs).
pub fn token(secrets: &CookieSecrets, src: IpAddr, now: Nanos) -> u64 {
    let s = cookie::slot(now);
    let gen = secrets.generation & 1;
    (mac(&secrets.current, src, s, gen) << 8) | (gen << 2) | (s & 3)
}

/// Whether `tok` is a token of `src` made in the current or the previous
/// slot, under the secret it names. One SipHash; XOR comparison.
pub fn verify_token(secrets: &CookieSecrets, src: IpAddr, now: Nanos, tok: u64) -> bool {
    if tok & 0xf8 != 0 {
        return false;
    }
    let now_slot = cookie::slot(now);
    let age = now_slot.wrapping_sub(tok & 3) & 3;
    if age > 1 || now_slot < age {
        return false;
    }
    let gen = (tok >> 2) & 1;
    let key = if gen == secrets.generation & 1 {
        &secrets.current
    } else {
        &secrets.previous
    };
    (mac(key, src, now_slot - age, gen) ^ (tok >> 8)) == 0
}

/// The value of the first `moat_token` parameter of `target`'s query, as
/// a token (`None` when absent or not 16 hex digits).
pub fn find_token(target: &[u8]) -> Option<u64> {
    let q = query(target)?;
    q.split(|&b| b == b'&').find_map(|param| {
        let v = param.strip_prefix(TOKEN_PARAM)?.strip_prefix(b"=")?;
        if v.len() != TOKEN_HEX {
            return None;
        }
        v.iter()
            .try_fold(0u64, |acc, &c| Some(acc << 4 | u64::from(hex_val(c)?)))
    })
}

fn query(target: &[u8]) -> Option<&[u8]> {
    let i = target.iter().position(|&b| b == b'?')?;
    Some(&target[i + 1..])
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_token_param(param: &[u8]) -> bool {
    param == TOKEN_PARAM
        || param
            .strip_prefix(TOKEN_PARAM)
            .is_some_and(|r| r.first() == Some(&b'='))
}

/// A cursor writing into a fixed buffer; `None` once it overflows.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) -> Option<()> {
        let end = self.len.checked_add(b.len())?;
        self.buf.get_mut(self.len..end)?.copy_from_slice(b);
        self.len = end;
        Some(())
    }
}

/// `target` with every `moat_token` parameter removed and, with `tok`, a
/// fresh one appended; the query's other parameters keep their order, and
/// a query left empty loses its `?`.
fn write_location(out: &mut Out<'_>, target: &[u8], tok: Option<u64>) -> Option<()> {
    let (path, q) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    out.put(path)?;
    let mut sep = b'?';
    for param in q.into_iter().flat_map(|q| q.split(|&b| b == b'&')) {
        if param.is_empty() || is_token_param(param) {
            continue;
        }
        out.put(&[sep])?;
        out.put(param)?;
        sep = b'&';
    }
    if let Some(t) = tok {
        out.put(&[sep])?;
        out.put(TOKEN_PARAM)?;
        out.put(b"=")?;
        let mut hex = [0u8; TOKEN_HEX];
        for (i, h) in hex.iter_mut().enumerate() {
            *h = b"0123456789abcdef"[((t >> (60 - 4 * i)) & 0xf) as usize];
        }
        out.put(&hex)?;
    }
    Some(())
}

/// Writes the `307` for `target` (an origin-form request-target) into
/// `out`: exactly [`RESPONSE_LEN`] bytes, the `Location` being `target`
/// without any token, with `tok` added when given, and a body of spaces
/// making up the length. `None` when it does not fit.
pub fn write_response(target: &[u8], tok: Option<u64>, out: &mut [u8]) -> Option<usize> {
    let buf = out.get_mut(..RESPONSE_LEN)?;
    let mut o = Out { buf, len: 0 };
    o.put(STATUS)?;
    write_location(&mut o, target, tok)?;
    o.put(CONTENT_LENGTH)?;
    // Headers so far, the digits of the body's length, the empty line,
    // the body: RESPONSE_LEN in all.
    let rest = RESPONSE_LEN.checked_sub(o.len + 4)?;
    let digits = (1..=3).find(|&d| rest >= d && (rest - d) < 10usize.pow(d as u32))?;
    let body = rest - digits;
    let mut num = [0u8; 3];
    for (i, n) in num[..digits].iter_mut().enumerate() {
        *n = b'0' + ((body / 10usize.pow((digits - 1 - i) as u32)) % 10) as u8;
    }
    o.put(&num[..digits])?;
    o.put(b"\r\n\r\n")?;
    let start = o.len;
    o.buf.get_mut(start..)?.fill(b' ');
    Some(RESPONSE_LEN)
}

/// What Moat does with a client's first data segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The request carried a valid token: verify the source; the payload
    /// written is the `307` to the URL without it.
    Verified(usize),
    /// No valid token: the payload written is the `307` adding one.
    Redirect(usize),
    /// Not a request Moat answers (not HTTP, not origin form, cut, too
    /// long): reset the connection.
    Refuse,
}

/// Whether Moat echoes `target`: origin form, printable ASCII only (the
/// parser already refused control bytes; bytes above 0x7E would need
/// percent-encoding in a `Location`).
fn echoable(target: &[u8]) -> bool {
    target.first() == Some(&b'/') && target.iter().all(|&b| (0x21..0x7f).contains(&b))
}

/// Answers the first data segment `payload` of a cookie-authenticated
/// connection from `src`: writes the response into `out` and says what it
/// is.
pub fn answer(secrets: &CookieSecrets, src: IpAddr, now: Nanos, payload: &[u8], out: &mut [u8]) -> Answer {
    let HttpParse::Request(req) = parse_request(payload) else {
        return Answer::Refuse;
    };
    if !echoable(req.target) {
        return Answer::Refuse;
    }
    if find_token(req.target).is_some_and(|t| verify_token(secrets, src, now, t)) {
        return write_response(req.target, None, out).map_or(Answer::Refuse, Answer::Verified);
    }
    let tok = token(secrets, src, now);
    write_response(req.target, Some(tok), out).map_or(Answer::Refuse, Answer::Redirect)
}

/// Window advertised in the response segment.
const WINDOW: u16 = 65535;

/// Writes Moat's answer to the first data segment `t` of a connection whose
/// handshake it completed (`t.ack` = cookie + 1, checked by the caller):
/// the `307` with FIN (`seq = cookie + 1`, `ack = t.seq + payload`), or a
/// RST (`<SEQ=SEG.ACK><CTL=RST>`, RFC 9293 §3.10.7.1) for a request Moat
/// does not answer. Returns the frame length and whether the request's
/// token verified its source; `None` only when `out` cannot hold a RST.
pub fn reply(
    secrets: &CookieSecrets,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    t: &TcpInfo,
    out: &mut [u8],
) -> Option<(usize, bool)> {
    let payload = p.payload(frame);
    let fin = u32::from(t.flags & flags::FIN != 0);
    let ack = t.seq.wrapping_add(payload.len() as u32).wrapping_add(fin);
    let mut said = Answer::Refuse;
    let resp_flags = flags::FIN | flags::PSH | flags::ACK;
    let len = build::tcp_data_reply(frame, p, t.ack, ack, resp_flags, WINDOW, out, |buf| {
        said = answer(secrets, p.src_ip(), now, payload, buf);
        match said {
            Answer::Verified(n) | Answer::Redirect(n) => Some(n),
            Answer::Refuse => None,
        }
    });
    let verified = matches!(said, Answer::Verified(_));
    match len {
        Some(len) => Some((len, verified)),
        None => build::tcp_reply(frame, p, t.ack, 0, flags::RST, 0, None, out).map(|l| (l, verified)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SECOND;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    const T0: Nanos = 1_700_000_000 * SECOND;

    fn secrets() -> CookieSecrets {
        CookieSecrets::new([7; 16])
    }

    fn location(resp: &[u8]) -> &str {
        let s = core::str::from_utf8(resp).unwrap();
        let l = s.split("\r\n").find_map(|l| l.strip_prefix("Location: ")).unwrap();
        l
    }

    /// The headers say `Connection: close` and a `Content-Length` equal to
    /// what follows the empty line.
    fn check_framing(resp: &[u8]) {
        let s = core::str::from_utf8(resp).unwrap();
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("\r\nConnection: close"));
        let cl: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(cl, body.len());
        assert!(body.bytes().all(|b| b == b' '));
    }

    fn hex(t: u64) -> String {
        format!("{t:016x}")
    }

    #[test]
    fn tokens_round_trip_expire_and_bind_the_source() {
        let s = secrets();
        let start = cookie::slot(T0) * cookie::SLOT_SECS * SECOND;
        let t = token(&s, SRC, start);
        assert!(verify_token(&s, SRC, start, t));
        assert!(verify_token(&s, SRC, start + 2 * cookie::SLOT_SECS * SECOND - 1, t));
        assert!(
            !verify_token(&s, SRC, start + 2 * cookie::SLOT_SECS * SECOND, t),
            "expired"
        );
        assert!(!verify_token(&s, SRC, start - 1, t), "not before its slot");
        assert!(!verify_token(&s, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8)), start, t));
        assert!(!verify_token(&CookieSecrets::new([8; 16]), SRC, start, t));
        for bit in 0..64 {
            assert!(!verify_token(&s, SRC, start, t ^ (1 << bit)), "bit {bit}");
        }
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert!(verify_token(&s, v6, T0, token(&s, v6, T0)));
        // A rotation keeps the tokens of the previous secret valid.
        let mut r = s.clone();
        r.rotate([9; 16]);
        assert!(verify_token(&r, SRC, start, t));
        let t2 = token(&r, SRC, start);
        assert!(verify_token(&r, SRC, start, t2));
        assert!(!verify_token(&s, SRC, start, t2));
    }

    #[test]
    fn redirect_adds_the_token_and_keeps_the_query() {
        let s = secrets();
        let mut out = [0u8; 600];
        let tok = hex(token(&s, SRC, T0));
        for (req, want) in [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", format!("/?moat_token={tok}")),
            (
                "GET /a/b?x=1&y=2 HTTP/1.1\r\n\r\n",
                format!("/a/b?x=1&y=2&moat_token={tok}"),
            ),
            (
                "GET /a?moat_token=0000000000000000&x=1 HTTP/1.1\r\n\r\n",
                format!("/a?x=1&moat_token={tok}"),
            ),
            ("GET /a? HTTP/1.1\r\n\r\n", format!("/a?moat_token={tok}")),
            ("POST /form HTTP/1.0\r\n", format!("/form?moat_token={tok}")),
        ] {
            let a = answer(&s, SRC, T0, req.as_bytes(), &mut out);
            let Answer::Redirect(n) = a else { panic!("{req}: {a:?}") };
            assert_eq!(n, RESPONSE_LEN);
            let resp = &out[..n];
            assert!(resp.starts_with(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "));
            assert_eq!(location(resp), want, "{req}");
            check_framing(resp);
        }
    }

    #[test]
    fn a_valid_token_verifies_and_is_stripped() {
        let s = secrets();
        let mut out = [0u8; 600];
        let tok = hex(token(&s, SRC, T0));
        let req = format!("GET /a?x=1&moat_token={tok}&y=2 HTTP/1.1\r\nHost: h\r\n\r\n");
        let Answer::Verified(n) = answer(&s, SRC, T0 + 70 * SECOND, req.as_bytes(), &mut out) else {
            panic!()
        };
        assert_eq!(location(&out[..n]), "/a?x=1&y=2");
        let req = format!("GET /?moat_token={tok} HTTP/1.1\r\n\r\n");
        let Answer::Verified(n) = answer(&s, SRC, T0, req.as_bytes(), &mut out) else {
            panic!()
        };
        assert_eq!(location(&out[..n]), "/");
        // Another source, an expired or a bad token: a fresh redirect.
        let other = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
        assert!(matches!(
            answer(&s, other, T0, req.as_bytes(), &mut out),
            Answer::Redirect(_)
        ));
        let late = T0 + 200 * SECOND;
        let Answer::Redirect(n) = answer(&s, SRC, late, req.as_bytes(), &mut out) else {
            panic!()
        };
        assert_eq!(
            location(&out[..n]),
            format!("/?moat_token={}", hex(token(&s, SRC, late)))
        );
        assert!(matches!(
            answer(&s, SRC, T0, b"GET /?moat_token=zz HTTP/1.1\r\n\r\n", &mut out),
            Answer::Redirect(_)
        ));
    }

    #[test]
    fn long_urls_odd_targets_and_non_http_are_refused() {
        let s = secrets();
        let mut out = [0u8; 2048];
        // Status, headers, `?moat_token=` and the token take 138 bytes with
        // `Content-Length: 0`: a 398-byte target fills 536 exactly, a
        // 399-byte one does not fit.
        let fits = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(397));
        let Answer::Redirect(n) = answer(&s, SRC, T0, fits.as_bytes(), &mut out) else {
            panic!()
        };
        assert_eq!(n, RESPONSE_LEN);
        check_framing(&out[..n]);
        assert!(out[..n].ends_with(b"Content-Length: 0\r\n\r\n"));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(398));
        assert_eq!(answer(&s, SRC, T0, long.as_bytes(), &mut out), Answer::Refuse);
        for req in [
            &b"GET http://h/ HTTP/1.1\r\n\r\n"[..],
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET /abc",
            b"\x16\x03\x01\x02\x00\x01",
            b"",
        ] {
            assert_eq!(answer(&s, SRC, T0, req, &mut out), Answer::Refuse, "{req:?}");
        }
        // A buffer too small.
        assert_eq!(
            answer(&s, SRC, T0, b"GET / HTTP/1.1\r\n\r\n", &mut out[..535]),
            Answer::Refuse
        );
    }

    #[test]
    fn find_token_reads_only_the_parameter() {
        assert_eq!(find_token(b"/?moat_token=00000000000000ff"), Some(0xff));
        assert_eq!(find_token(b"/?a=1&moat_token=00000000000000FF"), Some(0xff));
        assert_eq!(find_token(b"/?xmoat_token=00000000000000ff"), None);
        assert_eq!(find_token(b"/moat_token=00000000000000ff"), None);
        assert_eq!(find_token(b"/?moat_token=00000000000000f"), None);
    }
}
