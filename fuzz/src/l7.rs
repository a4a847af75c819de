//! The first-segment (`classifier::l7`) targets: `http`, `tls` (ClientHello
//! and JA4), `reassembly` (operation sequences on the table) and `a2s`.
//! Beyond "no panic" (the contract in `classifier/src/l7/mod.rs`), each
//! checks what its parser promises:
//!
//! - `http`: a request's slices lie inside the input, `host` is a prefix of
//!   `host_header`; a prefix of an input that parses as a request is never
//!   `NotHttp`, and once it holds the request line it parses to the same
//!   method, target and version.
//! - `tls`: `Incomplete { need }` asks for more than was given; a prefix of
//!   a hello is `Incomplete`, or the same hello once it holds all of it; a hello's JA4 (TCP and QUIC) prints as a
//!   string that `Ja4::parse` reads back; the input cut in two and given to
//!   a reassembly table last part first reassembles to the same bytes.
//! - `reassembly`: records of `key | flags | offset(2) | len | dt` against
//!   a 4-slot table of 600-byte flows; payloads are each key's own stream of
//!   bytes unless a record asks for corruption, so every prefix returned
//!   equals that stream until a corruption is sent for the key; the table
//!   stays within its capacity and its memory never changes.
//! - `a2s`: a query re-serialises to exactly the input; a challenge made
//!   (from input-derived key, address, port and time) verifies, is never 0
//!   nor `FFFF FFFF`, and its `S2C_CHALLENGE` carries it and is no query.

use core::hint::black_box;
use core::net::{IpAddr, Ipv6Addr};

use classifier::l7::a2s::{self, A2sParse, QueryKind};
use classifier::l7::http::{parse_request, starts_request, HttpParse};
use classifier::l7::ja4::{ja4, Ja4, Transport};
use classifier::l7::reassembly::{Insert, Reassembly, ReassemblyConfig};
use classifier::l7::tls::{parse_client_hello, ClientHello, TlsParse, MAX_HELLO_LEN};

/// Whether `inner` lies inside `outer` (a subslice of it).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

/// Up to 8 cut points spread over `0..len`.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    (0..8).map(move |i| len * i / 8).filter(move |&c| c < len)
}

pub fn http(data: &[u8]) {
    black_box(starts_request(data));
    let HttpParse::Request(r) = parse_request(data) else {
        return;
    };
    assert!(!r.method_token.is_empty() && !r.target.is_empty());
    assert!(within(data, r.method_token) && within(data, r.target));
    if let (Some(h), Some(full)) = (r.host, r.host_header) {
        assert!(within(data, full) && full.starts_with(h));
    }
    assert_eq!(r.host.is_some(), r.host_header.is_some());
    black_box(r.path());
    for c in cuts(data.len()) {
        match parse_request(&data[..c]) {
            HttpParse::NotHttp => panic!("a prefix ({c} bytes) of a request is not HTTP"),
            HttpParse::Incomplete => {}
            HttpParse::Request(p) => {
                assert_eq!(
                    (p.method_token, p.target, p.version),
                    (r.method_token, r.target, r.version)
                );
            }
        }
    }
}

fn touch_hello(h: &ClientHello<'_>) {
    black_box((
        h.legacy_version,
        h.record_version,
        h.random,
        h.session_id,
        h.compression_methods,
    ));
    black_box((
        h.cipher_suites.iter().count(),
        h.extensions.iter().count(),
        h.max_version(),
    ));
    black_box((
        h.sni,
        h.alpn.map(|a| a.iter().count()),
        h.signature_algorithms,
        h.supported_versions,
    ));
    for t in [Transport::Tcp, Transport::Quic] {
        if let Ok(j) = ja4(h, t) {
            assert_eq!(Ja4::parse(j.as_str()), Some(j), "{j}");
        }
    }
}

pub fn tls(data: &[u8]) {
    let mut scratch = vec![0u8; MAX_HELLO_LEN];
    let full = parse_client_hello(data, &mut scratch);
    match full {
        TlsParse::Incomplete { need } => assert!(need > data.len(), "need {need} of {}", data.len()),
        TlsParse::Hello(h) => touch_hello(&h),
        TlsParse::NotTls | TlsParse::Malformed(_) => return,
    }
    let mut s2 = vec![0u8; MAX_HELLO_LEN];
    for c in cuts(data.len()) {
        match (parse_client_hello(&data[..c], &mut s2), full) {
            (TlsParse::Incomplete { need }, _) => assert!(need > c),
            // Bytes after a hello are not looked at: a prefix holding the
            // whole hello is the same hello.
            (TlsParse::Hello(p), TlsParse::Hello(h)) => assert_eq!(p, h),
            (p, TlsParse::Hello(_)) => panic!("a prefix ({c} bytes) of a hello is {p:?}"),
            _ => {}
        }
    }
    // The bytes cut in two, the last part first, through a table.
    if data.len() >= 2 && data.len() <= 4096 {
        let mut t: Reassembly<u8> = Reassembly::new(ReassemblyConfig {
            slots: 1,
            ..Default::default()
        })
        .unwrap();
        let k = usize::from(data[data.len() / 2]) % (data.len() - 1) + 1;
        assert_eq!(t.insert(0, 1, k as u32, &data[k..]), Insert::Held);
        assert_eq!(t.insert(0, 1, 0, &data[..k]), Insert::Prefix(data));
    }
}

/// The byte at `offset` of `key`'s stream.
fn stream(key: u8, offset: usize) -> u8 {
    (offset as u32)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(u32::from(key))
        .to_be_bytes()[1]
}

pub fn reassembly(data: &[u8]) {
    let cfg = ReassemblyConfig {
        slots: 4,
        bytes_per_flow: 600,
        idle: 1_000,
        max_segments: 12,
    };
    let mut t: Reassembly<u8> = Reassembly::new(cfg).unwrap();
    let mem = t.memory_bytes();
    let mut corrupted = [false; 8];
    let mut now = 0u64;
    for rec in data.chunks_exact(6) {
        let key = rec[0] % 8;
        let flags = rec[1];
        // Offsets up to 0xffff (most beyond the flow), or wild ones.
        let mut off = u32::from(u16::from_be_bytes([rec[2], rec[3]])) % 800;
        if flags & 0x40 != 0 {
            off = off.wrapping_sub(1000);
        }
        let len = usize::from(rec[4]) * 3;
        now += u64::from(rec[5]) * 20;
        if flags & 0x80 != 0 {
            t.remove(&key);
            corrupted[usize::from(key)] = false;
            continue;
        }
        let corrupt = flags & 0x01 != 0 && flags & 0x02 != 0;
        let mut payload: Vec<u8> = (0..len).map(|i| stream(key, off as usize + i)).collect();
        if corrupt && !payload.is_empty() {
            payload[0] ^= 0x5a;
            corrupted[usize::from(key)] = true;
        }
        match t.insert(key, now, off, &payload) {
            Insert::Prefix(p) => {
                assert!(!p.is_empty() && p.len() <= cfg.bytes_per_flow);
                if !corrupted[usize::from(key)] {
                    assert!(p.iter().enumerate().all(|(i, &b)| b == stream(key, i)), "key {key}");
                }
            }
            Insert::GaveUp(_) => corrupted[usize::from(key)] = false,
            Insert::Held | Insert::Duplicate | Insert::Outside => {}
        }
        assert!(t.len() <= t.capacity());
        assert_eq!(t.memory_bytes(), mem);
        black_box((t.contains(&key, now), t.prefix(&key).len()));
    }
    black_box(t.stats());
}

pub fn a2s(data: &[u8]) {
    match a2s::parse_query(data) {
        A2sParse::Query(q) => {
            let mut out = a2s::HEADER.to_vec();
            match q.kind {
                QueryKind::Info => {
                    out.push(a2s::kind::INFO);
                    out.extend(a2s::INFO_PAYLOAD);
                }
                QueryKind::Player => out.push(a2s::kind::PLAYER),
                QueryKind::Rules => out.push(a2s::kind::RULES),
                QueryKind::GetChallenge => out.push(a2s::kind::GET_CHALLENGE),
            }
            if let Some(c) = q.challenge {
                out.extend(c.to_le_bytes());
            }
            assert_eq!(out, data);
        }
        A2sParse::NotA2s | A2sParse::Malformed => {}
    }
    // The input as key material, address, port and time.
    let mut key = [0u8; 16];
    let n = data.len().min(16);
    key[..n].copy_from_slice(&data[..n]);
    let word = |i: usize| {
        data.get(i..i + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let src = IpAddr::V6(Ipv6Addr::from((u128::from(word(0)) << 64) | u128::from(word(8))));
    let port = word(16) as u16;
    let now = word(24);
    let c = a2s::challenge(&key, src, port, now);
    assert!(c != 0 && c != u32::MAX);
    assert!(a2s::verify(&key, src, port, now, c));
    let mut reply = [0u8; a2s::CHALLENGE_LEN];
    assert_eq!(a2s::write_challenge(c, &mut reply), Some(a2s::CHALLENGE_LEN));
    assert_eq!(
        a2s::parse_query(&reply),
        A2sParse::NotA2s,
        "a challenge reply is not a query"
    );
    assert_eq!(u32::from_le_bytes([reply[5], reply[6], reply[7], reply[8]]), c);
}

/// `l7_rules`: [`classifier::l7::inspect::judge`] over the first bytes and
/// every cut of them, against fixed HTTP and TLS rules and a TCP payload
/// rule. Checks: `full` input is never `Pending`; judging is a function of
/// the bytes (the same input twice, the same answer); a verdict reached on
/// a prefix by a deny/limit rule agrees with the matcher on the parsed
/// facts (every key of the matching rule holds on them).
pub fn l7_rules(data: &[u8]) {
    use classifier::l7::inspect::{judge, Judged, SCRATCH_LEN};
    use classifier::l7::rules::{first_match, Facts, L7Action, L7Rule};
    use classifier::policy::PayloadRule;

    let rule = |f: &dyn Fn(&mut L7Rule), action| {
        let mut r = L7Rule::new(action);
        f(&mut r);
        r
    };
    let rules = [
        rule(&|r| r.path_prefix = Some(b"/login".as_slice().into()), L7Action::Deny),
        rule(
            &|r| {
                r.method = Some(classifier::l7::http::Method::Get);
                r.host = Some(b"www.example.com".as_slice().into());
            },
            L7Action::Limit { per_source_rps: 5 },
        ),
        rule(&|r| r.sni = Some(b"www.example.com".as_slice().into()), L7Action::Deny),
    ];
    let payload = [PayloadRule::new(7000, 1, b"\x17\x03", b"\xff\xf0").expect("rule")];
    let mut scratch = vec![0u8; SCRATCH_LEN];
    for payload_rules in [&payload[..], &[]] {
        let whole = judge(data, payload_rules, &rules, true, &mut scratch);
        assert_ne!(whole, Judged::Pending, "full input judged pending");
        assert_eq!(whole, judge(data, payload_rules, &rules, true, &mut scratch));
        for cut in cuts(data.len()) {
            black_box(judge(&data[..cut], payload_rules, &rules, false, &mut scratch));
        }
    }
    // The matcher on the facts of the whole input.
    let facts = match parse_request(data) {
        HttpParse::Request(r) => Some(Facts::of_request(&r)),
        _ => match parse_client_hello(data, &mut scratch) {
            TlsParse::Hello(h) => Some(Facts::of_hello(&h)),
            _ => None,
        },
    };
    if let Some(f) = facts {
        if let Some(r) = first_match(&rules, &f) {
            assert!(r.matches(&f));
            match f {
                Facts::Http { method, path, host } => {
                    assert!(r.method.is_none_or(|m| m == method));
                    assert!(r
                        .path_prefix
                        .as_deref()
                        .is_none_or(|p| path.is_some_and(|x| x.starts_with(p))));
                    assert!(r.host.is_none() || host.is_some());
                    assert!(!r.has_tls_keys());
                }
                Facts::Tls { sni, .. } => {
                    assert!(r.sni.is_none() || sni.is_some());
                    assert!(!r.has_http_keys());
                }
                Facts::Other => unreachable!("no rule without keys"),
            }
        }
    }
}
