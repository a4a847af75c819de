//! Properties of the first-segment parsers and the reassembly table
//! (classifier/src/l7): a ClientHello split into segments anywhere, in any
//! order, with retransmissions and overlaps, and in any number of TLS
//! records, gives the JA4 of the whole hello; garbage and mutated hellos
//! never panic; an HTTP request cut anywhere is never taken for non-HTTP;
//! random operation sequences keep the table's memory and bounds.

mod l7_support;

use classifier::l7::a2s;
use classifier::l7::http::{parse_request, HttpParse, Method};
use classifier::l7::ja4::{ja4, Transport};
use classifier::l7::reassembly::{Insert, Reassembly, ReassemblyConfig};
use classifier::l7::tls::{parse_client_hello, TlsParse, MAX_HELLO_LEN};
use l7_support::*;
use proptest::prelude::*;

fn ja4_of(bytes: &[u8]) -> String {
    let mut scratch = vec![0u8; MAX_HELLO_LEN];
    match parse_client_hello(bytes, &mut scratch) {
        TlsParse::Hello(h) => ja4(&h, Transport::Tcp).unwrap().to_string(),
        other => panic!("{other:?}"),
    }
}

/// Feeds segments (offset, bytes) for one flow; the JA4 of the prefix once
/// it parses as a hello (then the flow is removed, as a worker would).
fn reassembled(t: &mut Reassembly<u32>, scratch: &mut [u8], segments: &[(usize, &[u8])]) -> Option<String> {
    let mut out = None;
    for (off, seg) in segments {
        match t.insert(1, 1, *off as u32, seg) {
            Insert::Prefix(p) => {
                if let TlsParse::Hello(h) = parse_client_hello(p, scratch) {
                    out = Some(ja4(&h, Transport::Tcp).unwrap().to_string());
                    break;
                }
            }
            Insert::GaveUp(why) => panic!("gave up: {why:?}"),
            _ => {}
        }
    }
    t.remove(&1);
    out
}

fn table() -> Reassembly<u32> {
    Reassembly::new(ReassemblyConfig {
        slots: 4,
        ..Default::default()
    })
    .unwrap()
}

/// The handshake message of a one-record hello, re-cut into records whose
/// fragment lengths are `sizes` (cycled).
fn refragment(rec: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut msg = &rec[5..];
    let mut i = 0;
    while !msg.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, msg.len());
        out.extend([22, 3, 3]);
        out.extend((n as u16).to_be_bytes());
        out.extend(&msg[..n]);
        msg = &msg[n..];
        i += 1;
    }
    out
}

#[test]
fn chrome_like_hello_has_chromes_published_ja4() {
    let h = chrome_like_hello("www.example.com");
    assert!((1700..=1900).contains(&h.len()), "{} bytes", h.len());
    assert_eq!(ja4_of(&h), CHROME_JA4);
}

#[test]
fn captured_hellos_have_ja4plus_values() {
    assert_eq!(ja4_of(&unhex(CURL_SNI_HEX)), CURL_SNI_JA4);
    let padded = unhex(OPENSSL_PADDED_HEX);
    assert_eq!(padded.len(), 2135);
    assert_eq!(ja4_of(&padded), OPENSSL_PADDED_JA4);
    // The same hello in 100-byte records, then in 1-byte records.
    assert_eq!(ja4_of(&refragment(&padded, &[100])), OPENSSL_PADDED_JA4);
    assert_eq!(ja4_of(&refragment(&padded, &[1])), OPENSSL_PADDED_JA4);
}

#[test]
fn two_segments_at_every_offset_in_both_orders() {
    let mut t = table();
    let mut s = vec![0u8; MAX_HELLO_LEN];
    for h in [chrome_like_hello("www.example.com"), unhex(OPENSSL_PADDED_HEX)] {
        let want = ja4_of(&h);
        for k in 1..h.len() {
            let (a, b) = h.split_at(k);
            assert_eq!(
                reassembled(&mut t, &mut s, &[(0, a), (k, b)]).as_ref(),
                Some(&want),
                "cut {k}"
            );
            assert_eq!(
                reassembled(&mut t, &mut s, &[(k, b), (0, a)]).as_ref(),
                Some(&want),
                "cut {k}, reversed"
            );
        }
    }
}

#[test]
fn three_segments_at_every_pair_of_offsets() {
    let h = chrome_like_hello("www.example.com");
    let want = ja4_of(&h);
    let mut t = table();
    let mut s = vec![0u8; MAX_HELLO_LEN];
    let n = h.len();
    for i in 1..n - 1 {
        for j in i + 1..n {
            let segs = [(0, &h[..i]), (i, &h[i..j]), (j, &h[j..])];
            assert_eq!(reassembled(&mut t, &mut s, &segs).as_ref(), Some(&want), "cuts {i} {j}");
        }
        // The last segment first, then the middle, then the first: two
        // gaps held before the prefix grows (every 7th first cut).
        if i % 7 == 0 {
            for j in i + 1..n {
                let segs = [(j, &h[j..]), (i, &h[i..j]), (0, &h[..i])];
                assert_eq!(
                    reassembled(&mut t, &mut s, &segs).as_ref(),
                    Some(&want),
                    "cuts {i} {j} reversed"
                );
            }
        }
    }
}

/// A hello (which of three), its record fragmentation, cut points, an
/// arrival order, and retransmissions of random ranges.
/// Which hello, record sizes, cut points, order keys, retransmissions.
type SplitCase = (usize, Vec<usize>, Vec<usize>, Vec<usize>, Vec<(usize, usize)>);

fn split_case() -> impl Strategy<Value = SplitCase> {
    (
        0..3usize,
        // Records of 50 bytes and more: the ~45 record headers of a 2 KB
        // hello still fit the 4096 bytes a flow keeps (1-byte records are
        // parsed whole in `captured_hellos_have_ja4plus_values`).
        prop::collection::vec(50..3000usize, 0..4),
        // At most 7 segments (at most 4 disjoint ones held before the
        // prefix grows) and 4 retransmissions (each at most one range
        // more): within MAX_RANGES = 8, so the table never gives up.
        prop::collection::vec(1..2200usize, 0..7),
        prop::collection::vec(any::<usize>(), 8),
        prop::collection::vec((any::<usize>(), 1..800usize), 0..5),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any segmentation, order, record fragmentation and retransmission of
    /// real and Chrome-shaped hellos reassembles to the JA4 of the whole.
    #[test]
    fn segmented_hellos_reassemble_to_the_same_ja4((which, records, cuts, order, dups) in split_case()) {
        let base = match which {
            0 => chrome_like_hello("game.example.com"),
            1 => unhex(OPENSSL_PADDED_HEX),
            _ => unhex(CURL_SNI_HEX),
        };
        let h = if records.is_empty() { base.clone() } else { refragment(&base, &records) };
        let want = ja4_of(&base);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % h.len()).filter(|&c| c > 0).collect();
        points.push(0);
        points.push(h.len());
        points.sort_unstable();
        points.dedup();
        let mut segs: Vec<(usize, &[u8])> = points.windows(2).map(|w| (w[0], &h[w[0]..w[1]])).collect();
        // A permutation of the segments: sort by the random keys.
        let mut keyed: Vec<(usize, (usize, &[u8]))> = segs.drain(..).enumerate().map(|(i, s)| (order[i % 8], s)).collect();
        keyed.sort_by_key(|k| k.0);
        let mut segs: Vec<(usize, &[u8])> = keyed.into_iter().map(|k| k.1).collect();
        // Retransmissions of arbitrary ranges (same bytes), anywhere.
        for (at, (start, len)) in dups.iter().enumerate() {
            let start = start % h.len();
            let end = (start + len).min(h.len());
            let pos = at % (segs.len() + 1);
            segs.insert(pos, (start, &h[start..end]));
        }
        let mut t = table();
        let mut s = vec![0u8; MAX_HELLO_LEN];
        prop_assert_eq!(reassembled(&mut t, &mut s, &segs), Some(want));
    }

    /// Arbitrary bytes: no parser panics, and a hello's JA4 is computed.
    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        let _ = parse_request(&data);
        let _ = a2s::parse_query(&data);
        let mut s = vec![0u8; MAX_HELLO_LEN];
        if let TlsParse::Hello(h) = parse_client_hello(&data, &mut s) {
            let _ = ja4(&h, Transport::Tcp);
        }
        // And behind a TLS handshake record header of the right length.
        let mut rec = vec![22, 3, 1];
        rec.extend((data.len() as u16).to_be_bytes());
        rec.extend(&data);
        if let TlsParse::Hello(h) = parse_client_hello(&rec, &mut s) {
            let _ = ja4(&h, Transport::Quic);
        }
    }

    /// Real hellos with bytes changed and cut: any outcome but a panic, and
    /// the `need` of an incomplete one lies beyond what was given.
    #[test]
    fn mutated_hellos_never_panic(
        which in 0..3usize,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        records in prop::collection::vec(1..600usize, 0..3),
    ) {
        let base = match which {
            0 => chrome_like_hello("x.example"),
            1 => unhex(OPENSSL_PADDED_HEX),
            _ => unhex(CURL_SNI_HEX),
        };
        let mut h = if records.is_empty() { base } else { refragment(&base, &records) };
        for (at, v) in &flips {
            let i = at % h.len();
            h[i] = *v;
        }
        h.truncate(cut % (h.len() + 1));
        let mut s = vec![0u8; MAX_HELLO_LEN];
        match parse_client_hello(&h, &mut s) {
            TlsParse::Incomplete { need } => prop_assert!(need > h.len()),
            TlsParse::Hello(hello) => { let _ = ja4(&hello, Transport::Tcp); }
            TlsParse::NotTls | TlsParse::Malformed(_) => {}
        }
    }

    /// A request cut anywhere: never "not HTTP"; once the request line is
    /// whole, the same method, target and version, and a Host only once its
    /// line is whole.
    #[test]
    fn cut_requests_stay_http(cut in 0..=BROWSER_REQUEST.len()) {
        let got = parse_request(&BROWSER_REQUEST[..cut]);
        let line = BROWSER_REQUEST.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        let host_end = line + b"Host: www.example.com\r\n".len();
        match got {
            HttpParse::Incomplete => prop_assert!(cut < line),
            HttpParse::NotHttp => prop_assert!(false, "NotHttp at cut {}", cut),
            HttpParse::Request(r) => {
                prop_assert!(cut >= line);
                prop_assert_eq!(r.method, Method::Get);
                prop_assert_eq!(r.path(), Some(&b"/account/login"[..]));
                prop_assert_eq!(r.host.is_some(), cut >= host_end);
            }
        }
    }

    /// Random operations on a small table: no panic, bounded size and
    /// prefixes, constant memory, and a prefix always equal to the bytes
    /// given for those offsets (one stream per key, so no conflicts).
    #[test]
    fn reassembly_operations(ops in prop::collection::vec(
        (0..6u32, any::<u16>(), 0..300usize, 0..4u8, any::<bool>()), 1..200)
    ) {
        let cfg = ReassemblyConfig { slots: 3, bytes_per_flow: 512, idle: 1000, max_segments: 16 };
        let mut t: Reassembly<u32> = Reassembly::new(cfg).unwrap();
        let mem = t.memory_bytes();
        let stream = |key: u32, i: usize| (i as u32).wrapping_mul(31).wrapping_add(key * 7) as u8;
        let mut now = 0u64;
        for (key, off, len, dt, remove) in ops {
            now += u64::from(dt) * 300;
            if remove {
                t.remove(&key);
                continue;
            }
            let off = usize::from(off) % 700;
            let payload: Vec<u8> = (off..off + len).map(|i| stream(key, i)).collect();
            if let Insert::Prefix(p) = t.insert(key, now, off as u32, &payload) {
                prop_assert!(p.len() <= 512);
                let want: Vec<u8> = (0..p.len()).map(|i| stream(key, i)).collect();
                prop_assert_eq!(p, &want[..]);
            }
            prop_assert!(t.len() <= t.capacity());
            prop_assert_eq!(t.memory_bytes(), mem);
        }
    }
}
