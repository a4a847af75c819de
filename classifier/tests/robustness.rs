//! No-panic properties on arbitrary bytes: `parse`, every view's
//! `new_checked` and accessors, and everything downstream of `parse`
//! (fingerprints, builders). Mutated valid packets are covered in
//! `etherparse_cross.rs`, where valid packets are built.

mod common;

use classifier::build::{self, GreParams};
use classifier::parse::parse;
use core::net::Ipv4Addr;
use proptest::prelude::*;

/// A frame whose EtherType and first IP bytes are plausible, so that random
/// bytes reach the deeper parsers more often than pure noise would.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8]),
        prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00, 0x01]),
        prop::sample::select(vec![6u8, 17, 1, 58, 0, 43, 44, 51, 60, 47]),
        proptest::collection::vec(any::<u8>(), 0..160),
    )
        .prop_map(|(et, b0, proto, mut rest)| {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&et.to_be_bytes());
            if rest.len() > 9 {
                rest[0] = b0;
                rest[6] = proto; // IPv6 next header
                rest[9] = proto; // IPv4 protocol
                                 // A total/payload length that fits the buffer more often.
                let n = (rest.len() as u16).saturating_sub(if b0 >> 4 == 6 { 40 } else { 0 });
                rest[2..4].copy_from_slice(&n.to_be_bytes());
                rest[4..6].copy_from_slice(&n.to_be_bytes());
            }
            f.extend_from_slice(&rest);
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn views_never_panic(b in proptest::collection::vec(any::<u8>(), 0..128)) {
        common::exercise_views(&b);
    }

    #[test]
    fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        common::exercise_parse(&b);
    }

    #[test]
    fn parse_never_panics_on_plausible_frames(f in plausible_frame()) {
        common::exercise_parse(&f);
        if f.len() > 14 {
            common::exercise_views(&f[14..]);
        }
    }

    #[test]
    fn gre_in_place_bounds(len in 0usize..80, start in 0usize..80, buf_len in 0usize..160, key: bool) {
        let g = GreParams {
            src_mac: [2; 6],
            dst_mac: [4; 6],
            tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
            tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
            key: key.then_some(9),
            ttl: 64,
        };
        let mut buf = vec![0x45u8; buf_len];
        let r = build::gre_encap_in_place(&mut buf, start, len, &g);
        let fits = start >= build::gre_overhead(key) && start + len <= buf_len && len >= 2;
        prop_assert_eq!(r.is_some(), fits);
        if let Some(s) = r {
            prop_assert_eq!(parse(&buf[s..start + len]).map(|p| p.proto).unwrap_or(47), 47);
        }
    }
}
