//! Source-engine server queries (Valve Developer Community, "Server
//! queries"), for `udp_auth` profile `a2s`: Moat answers a query from an
//! unverified source with its own `S2C_CHALLENGE`, and a query that carries
//! the right challenge verifies the source. A spoofed flood of queries (the
//! A2S reflection attack) then gets 9-byte challenges sent to the spoofed
//! addresses, never the server's large `A2S_INFO`/`A2S_RULES` answers.
//!
//! ```text
//! FF FF FF FF 54 "Source Engine Query" 00 [challenge(4)]  A2S_INFO (25 or 29 bytes)
//! FF FF FF FF 55 challenge(4)                             A2S_PLAYER (9 bytes)
//! FF FF FF FF 56 challenge(4)                             A2S_RULES (9 bytes)
//! FF FF FF FF 57                                          A2S_SERVERQUERY_GETCHALLENGE
//!                                                         (deprecated; 5 bytes)
//! FF FF FF FF 41 challenge(4)                             S2C_CHALLENGE (the reply)
//! ```
//!
//! The challenge is 4 opaque bytes to the client, which echoes them
//! (`FF FF FF FF` in a PLAYER/RULES query asks for one; python-a2s sends 0,
//! and leaves the challenge off an INFO query whose challenge would be 0).
//! Moat reads them as a little-endian `u32` (the wiki's `long`) and makes
//! them stateless: [`challenge`] is SipHash-2-4 under a 128-bit key
//! ([`crate::cookie::Key`], e.g. the cluster's cookie secret, so every node
//! of a cluster accepts every node's challenges) over a domain tag, the
//! source address and port and the time slot, truncated to 32 bits, never 0
//! nor `FFFF FFFF`. [`verify`] accepts the current and the previous slot:
//! a challenge lives [`SLOT_SECS`] to 2 x [`SLOT_SECS`] seconds, and a check
//! costs at most two SipHash computations, so a flood of forged challenges
//! is cheap to refuse. A guess succeeds with probability 2^-31 per try and
//! verifies only the (spoofed) address it was sent from.

use core::hash::Hasher;
use core::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::cookie::Key;
use crate::time::{Nanos, SECOND};

/// The 4-byte header of a single-packet message (`long` -1).
pub const HEADER: [u8; 4] = [0xff; 4];
/// `A2S_INFO`'s payload after its type byte.
pub const INFO_PAYLOAD: &[u8; 20] = b"Source Engine Query\0";
/// Length of an `S2C_CHALLENGE` message.
pub const CHALLENGE_LEN: usize = 9;
/// Length of a challenge time slot, in seconds (a power of two).
pub const SLOT_SECS: u64 = 32;

/// Message type bytes.
pub mod kind {
    pub const INFO: u8 = 0x54;
    pub const PLAYER: u8 = 0x55;
    pub const RULES: u8 = 0x56;
    pub const GET_CHALLENGE: u8 = 0x57;
    pub const S2C_CHALLENGE: u8 = 0x41;
}

/// The query a packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryKind {
    Info,
    Player,
    Rules,
    /// `A2S_SERVERQUERY_GETCHALLENGE` (deprecated, never carries one).
    GetChallenge,
}

/// A parsed query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    pub kind: QueryKind,
    /// The challenge sent, as a little-endian `u32`; `None` for an INFO
    /// query without one and for GETCHALLENGE.
    pub challenge: Option<u32>,
}

/// What [`parse_query`] made of a UDP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum A2sParse {
    /// Not a single-packet message with a query type.
    NotA2s,
    /// A query type with the wrong length or payload.
    Malformed,
    Query(Query),
}

fn le32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Parses a query (layout in the module docs). Lengths are exact: a padded
/// or truncated query is [`A2sParse::Malformed`].
pub fn parse_query(p: &[u8]) -> A2sParse {
    let Some((&typ, rest)) = p.strip_prefix(&HEADER).and_then(<[u8]>::split_first) else {
        return A2sParse::NotA2s;
    };
    let q = |kind, challenge| A2sParse::Query(Query { kind, challenge });
    match typ {
        kind::INFO => match rest.strip_prefix(INFO_PAYLOAD) {
            Some([]) => q(QueryKind::Info, None),
            Some(c) => le32(c).map_or(A2sParse::Malformed, |c| q(QueryKind::Info, Some(c))),
            None => A2sParse::Malformed,
        },
        kind::PLAYER | kind::RULES => {
            let k = if typ == kind::PLAYER {
                QueryKind::Player
            } else {
                QueryKind::Rules
            };
            le32(rest).map_or(A2sParse::Malformed, |c| q(k, Some(c)))
        }
        kind::GET_CHALLENGE if rest.is_empty() => q(QueryKind::GetChallenge, None),
        kind::GET_CHALLENGE => A2sParse::Malformed,
        _ => A2sParse::NotA2s,
    }
}

/// Writes `S2C_CHALLENGE` with `challenge` into `out`; its length
/// ([`CHALLENGE_LEN`]), or `None` when `out` is shorter.
pub fn write_challenge(challenge: u32, out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..CHALLENGE_LEN)?;
    out[..4].copy_from_slice(&HEADER);
    out[4] = kind::S2C_CHALLENGE;
    out[5..].copy_from_slice(&challenge.to_le_bytes());
    Some(CHALLENGE_LEN)
}

/// Time slot of `now`.
#[inline]
pub fn slot(now: Nanos) -> u64 {
    now / (SLOT_SECS * SECOND)
}

/// The MAC over one slot: SipHash-2-4 of `"a2s\0" | src (16 bytes, IPv4 as
/// v4-mapped) | sport (2) | slot (8)`, low 32 bits. The tag keeps these MACs
/// apart from the SYN cookies made with the same key.
fn mac(key: &Key, src: IpAddr, sport: u16, slot: u64) -> u32 {
    let addr = match src {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mut b = [0u8; 30];
    b[..4].copy_from_slice(b"a2s\0");
    b[4..20].copy_from_slice(&addr);
    b[20..22].copy_from_slice(&sport.to_be_bytes());
    b[22..30].copy_from_slice(&slot.to_be_bytes());
    let mut h = SipHasher24::new_with_key(key);
    h.write(&b);
    match h.finish() as u32 {
        // 0 and -1 mean "no challenge" to clients (module docs).
        0 | u32::MAX => 1,
        v => v,
    }
}

/// The challenge for `src:sport` at `now`.
pub fn challenge(key: &Key, src: IpAddr, sport: u16, now: Nanos) -> u32 {
    mac(key, src, sport, slot(now))
}

/// Whether `c` is the challenge of `src:sport` in the current or the
/// previous slot. Comparison by XOR, constant time in the value.
pub fn verify(key: &Key, src: IpAddr, sport: u16, now: Nanos, c: u32) -> bool {
    let s = slot(now);
    (mac(key, src, sport, s) ^ c) == 0 || (s > 0 && (mac(key, src, sport, s - 1) ^ c) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    const T0: Nanos = 1_700_000_000 * SECOND;
    const KEY: Key = [3; 16];

    fn packet(parts: &[&[u8]]) -> Vec<u8> {
        let mut v = HEADER.to_vec();
        parts.iter().for_each(|p| v.extend(*p));
        v
    }

    #[test]
    fn queries() {
        let info = packet(&[&[0x54], INFO_PAYLOAD]);
        assert_eq!(info.len(), 25);
        assert_eq!(
            parse_query(&info),
            A2sParse::Query(Query {
                kind: QueryKind::Info,
                challenge: None
            })
        );
        let info_c = packet(&[&[0x54], INFO_PAYLOAD, &[0x78, 0x56, 0x34, 0x12]]);
        assert_eq!(
            parse_query(&info_c),
            A2sParse::Query(Query {
                kind: QueryKind::Info,
                challenge: Some(0x1234_5678)
            })
        );
        let player = packet(&[&[0x55], &[0xff; 4]]);
        assert_eq!(
            parse_query(&player),
            A2sParse::Query(Query {
                kind: QueryKind::Player,
                challenge: Some(u32::MAX)
            })
        );
        let rules = packet(&[&[0x56], &[1, 0, 0, 0]]);
        assert_eq!(
            parse_query(&rules),
            A2sParse::Query(Query {
                kind: QueryKind::Rules,
                challenge: Some(1)
            })
        );
        assert_eq!(
            parse_query(&packet(&[&[0x57]])),
            A2sParse::Query(Query {
                kind: QueryKind::GetChallenge,
                challenge: None
            })
        );
    }

    #[test]
    fn refused() {
        for p in [
            &b""[..],
            b"\xff\xff\xff",
            b"\xff\xff\xff\xff",
            b"\xfe\xff\xff\xff\x54",
            b"\xff\xff\xff\xff\x49",
        ] {
            assert_eq!(parse_query(p), A2sParse::NotA2s, "{p:02x?}");
        }
        for p in [
            packet(&[&[0x54], b"Source Engine Query"]),
            packet(&[&[0x54], INFO_PAYLOAD, &[1, 2, 3]]),
            packet(&[&[0x54], INFO_PAYLOAD, &[1, 2, 3, 4, 5]]),
            packet(&[&[0x54], b"source engine query\0"]),
            packet(&[&[0x55], &[1, 2, 3]]),
            packet(&[&[0x56], &[1, 2, 3, 4, 5]]),
            packet(&[&[0x57], &[0]]),
        ] {
            assert_eq!(parse_query(&p), A2sParse::Malformed, "{p:02x?}");
        }
    }

    #[test]
    fn challenge_reply() {
        let mut out = [0u8; 16];
        assert_eq!(write_challenge(0x1234_5678, &mut out), Some(9));
        assert_eq!(out[..9], [0xff, 0xff, 0xff, 0xff, 0x41, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(write_challenge(1, &mut [0u8; 8]), None);
    }

    #[test]
    fn challenges_verify_for_two_slots() {
        let start = slot(T0) * SLOT_SECS * SECOND;
        let c = challenge(&KEY, SRC, 27005, start);
        assert!(c != 0 && c != u32::MAX);
        assert!(verify(&KEY, SRC, 27005, start, c));
        assert!(verify(&KEY, SRC, 27005, start + 2 * SLOT_SECS * SECOND - 1, c));
        assert!(!verify(&KEY, SRC, 27005, start + 2 * SLOT_SECS * SECOND, c));
        assert!(!verify(&KEY, SRC, 27005, start - 1, c), "not before its slot");
        // Bound to the address, the port and the key.
        assert!(!verify(
            &KEY,
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8)),
            27005,
            start,
            c
        ));
        assert!(!verify(&KEY, SRC, 27006, start, c));
        assert!(!verify(&[4; 16], SRC, 27005, start, c));
        for bit in 0..32 {
            assert!(!verify(&KEY, SRC, 27005, start, c ^ (1 << bit)));
        }
        // IPv6, and an IPv4 source differs from its v4-mapped form only in
        // name: both are the same address on the wire.
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert!(verify(&KEY, v6, 1, T0, challenge(&KEY, v6, 1, T0)));
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        assert_eq!(challenge(&KEY, mapped, 27005, T0), challenge(&KEY, SRC, 27005, T0));
        // Time zero has no previous slot.
        assert!(verify(&KEY, SRC, 1, 0, challenge(&KEY, SRC, 1, 0)));
    }
}
