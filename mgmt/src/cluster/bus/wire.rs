//! The verified-source message on the bus (subject `NAME.verified`): one
//! batch of sources a node verified, binary, bounded, checked whole before
//! anything in it is used.
//!
//! ```text
//!  0      2      3      4                    12
//! +------+------+------+--------------------+----------------------+
//! | "MV" | ver  | n    | sender (u64, BE)   | n entries            |
//! +------+------+------+--------------------+----------------------+
//! entry:  family (4 or 6) | TTL in ms (u32, BE) | address (4 or 16)
//! ```
//!
//! Contract: [`decode`] never panics and refuses, naming why, anything but
//! an exact message: another magic or version, no entry or more than
//! [`MAX_ENTRIES`], a truncated entry or trailing bytes, an unknown family,
//! a TTL of 0 or over [`MAX_TTL_MS`], an unspecified or multicast address.
//! A message is at most 12 + 255 × 21 = 5,367 bytes.
//!
//! The catch-up request (subject `NAME.verified.sync`), which a node
//! publishes each time it (re)joins the bus so that the others send it the
//! sources they know, is exactly 12 bytes:
//!
//! ```text
//! "MH" | version 1 | 0 (reserved) | sender (u64, BE)
//! ```
//!
//! [`decode_hello`] refuses anything else (another magic or version, a
//! reserved byte not 0, another length).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::runtime::mailbox::VerifiedEntry;

const MAGIC: [u8; 2] = *b"MV";
const VERSION: u8 = 1;
const HEADER: usize = 12;
const HELLO_MAGIC: [u8; 2] = *b"MH";
/// The catch-up request's length.
pub const HELLO_LEN: usize = 12;

/// Most entries in one message (the count is one byte).
pub const MAX_ENTRIES: usize = 255;
/// Longest TTL accepted: a week (Moat's default is 300 s).
pub const MAX_TTL_MS: u32 = 7 * 86_400 * 1000;

const NS_PER_MS: u64 = 1_000_000;

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The publishing node's random id (a node skips its own messages).
    pub sender: u64,
    pub entries: Vec<VerifiedEntry>,
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than the header")]
    Short,
    #[error("not a verified-source message (magic)")]
    Magic,
    #[error("version {0} (this node reads {VERSION})")]
    Version(u8),
    #[error("no entries")]
    Empty,
    #[error("entry {0} truncated")]
    Truncated(usize),
    #[error("entry {0}: unknown address family {1}")]
    Family(usize, u8),
    #[error("entry {0}: TTL {1} ms out of range 1..={MAX_TTL_MS}")]
    Ttl(usize, u32),
    #[error("entry {0}: unspecified or multicast address")]
    Address(usize),
    #[error("{0} bytes after the last entry")]
    Trailing(usize),
    #[error("reserved byte {0} (0 expected)")]
    Reserved(u8),
}

/// The wire TTL of `ttl` ns: whole milliseconds, clamped to the accepted
/// range.
fn ttl_ms(ttl: u64) -> u32 {
    u32::try_from(ttl / NS_PER_MS).unwrap_or(u32::MAX).clamp(1, MAX_TTL_MS)
}

/// Appends the message of `entries` (at most [`MAX_ENTRIES`]; the rest is
/// left out) from `sender` to `out`; returns how many entries it holds.
pub fn encode(sender: u64, entries: &[VerifiedEntry], out: &mut Vec<u8>) -> usize {
    let n = entries.len().min(MAX_ENTRIES);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(u8::try_from(n).unwrap_or(u8::MAX));
    out.extend_from_slice(&sender.to_be_bytes());
    for e in &entries[..n] {
        let ttl = ttl_ms(e.ttl).to_be_bytes();
        match e.ip {
            IpAddr::V4(a) => {
                out.push(4);
                out.extend_from_slice(&ttl);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.push(6);
                out.extend_from_slice(&ttl);
                out.extend_from_slice(&a.octets());
            }
        }
    }
    n
}

/// Decodes one message (see the module contract).
pub fn decode(b: &[u8]) -> Result<Batch, DecodeError> {
    let head = b.get(..HEADER).ok_or(DecodeError::Short)?;
    if head[..2] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if head[2] != VERSION {
        return Err(DecodeError::Version(head[2]));
    }
    let n = usize::from(head[3]);
    if n == 0 {
        return Err(DecodeError::Empty);
    }
    let mut sender = [0u8; 8];
    sender.copy_from_slice(&head[4..HEADER]);
    let mut entries = Vec::with_capacity(n);
    let mut rest = &b[HEADER..];
    for i in 0..n {
        let (e, tail) = entry(i, rest)?;
        entries.push(e);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(DecodeError::Trailing(rest.len()));
    }
    Ok(Batch {
        sender: u64::from_be_bytes(sender),
        entries,
    })
}

/// The catch-up request of `sender`.
pub fn encode_hello(sender: u64) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    b[..2].copy_from_slice(&HELLO_MAGIC);
    b[2] = VERSION;
    b[4..].copy_from_slice(&sender.to_be_bytes());
    b
}

/// The sender of a catch-up request (see the module contract).
pub fn decode_hello(b: &[u8]) -> Result<u64, DecodeError> {
    let head = b.get(..HELLO_LEN).ok_or(DecodeError::Short)?;
    if head[..2] != HELLO_MAGIC {
        return Err(DecodeError::Magic);
    }
    if head[2] != VERSION {
        return Err(DecodeError::Version(head[2]));
    }
    if head[3] != 0 {
        return Err(DecodeError::Reserved(head[3]));
    }
    if b.len() > HELLO_LEN {
        return Err(DecodeError::Trailing(b.len() - HELLO_LEN));
    }
    let mut sender = [0u8; 8];
    sender.copy_from_slice(&head[4..]);
    Ok(u64::from_be_bytes(sender))
}

/// Entry `i` at the start of `b`, and what follows it.
fn entry(i: usize, b: &[u8]) -> Result<(VerifiedEntry, &[u8]), DecodeError> {
    let (&family, b) = b.split_first().ok_or(DecodeError::Truncated(i))?;
    let len = match family {
        4 => 4,
        6 => 16,
        f => return Err(DecodeError::Family(i, f)),
    };
    let body = b.get(..4 + len).ok_or(DecodeError::Truncated(i))?;
    let mut t = [0u8; 4];
    t.copy_from_slice(&body[..4]);
    let ttl = u32::from_be_bytes(t);
    if !(1..=MAX_TTL_MS).contains(&ttl) {
        return Err(DecodeError::Ttl(i, ttl));
    }
    let ip = if len == 4 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&body[4..]);
        IpAddr::V4(Ipv4Addr::from(a))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&body[4..]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(DecodeError::Address(i));
    }
    let e = VerifiedEntry {
        ip,
        ttl: u64::from(ttl) * NS_PER_MS,
    };
    Ok((e, &b[4 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ip: &str, ms: u64) -> VerifiedEntry {
        VerifiedEntry {
            ip: ip.parse().unwrap(),
            ttl: ms * NS_PER_MS,
        }
    }

    #[test]
    fn round_trip_with_a_fixture() {
        let entries = [e("198.51.100.7", 300_000), e("2001:db8::1", 1)];
        let mut b = Vec::new();
        assert_eq!(encode(0x0102_0304_0506_0708, &entries, &mut b), 2);
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &b"MV"[..], &[1, 2], &[1, 2, 3, 4, 5, 6, 7, 8],
            // IPv4, 300,000 ms = 0x000493e0, 198.51.100.7
            &[4, 0x00, 0x04, 0x93, 0xe0, 198, 51, 100, 7],
            // IPv6, 1 ms, 2001:db8::1
            &[6, 0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ]
        .concat();
        assert_eq!(b, want);
        let d = decode(&b).unwrap();
        assert_eq!(d.sender, 0x0102_0304_0506_0708);
        assert_eq!(d.entries, entries);
    }

    #[test]
    fn ttls_are_clamped_and_batches_capped() {
        let mut b = Vec::new();
        let many: Vec<_> = (0..300u32)
            .map(|i| VerifiedEntry {
                ip: IpAddr::V4((0x0a00_0000 + i).into()),
                ttl: 0,
            })
            .collect();
        assert_eq!(encode(1, &many, &mut b), MAX_ENTRIES);
        let d = decode(&b).unwrap();
        assert_eq!(d.entries.len(), MAX_ENTRIES);
        assert!(d.entries.iter().all(|x| x.ttl == NS_PER_MS), "0 is sent as 1 ms");
        b.clear();
        encode(1, &[e("192.0.2.1", u64::MAX / NS_PER_MS)], &mut b);
        assert_eq!(decode(&b).unwrap().entries[0].ttl, u64::from(MAX_TTL_MS) * NS_PER_MS);
    }

    #[test]
    fn garbage_is_refused_by_reason() {
        let mut good = Vec::new();
        encode(9, &[e("192.0.2.1", 1000)], &mut good);
        let with = |f: fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            decode(&b)
        };
        assert_eq!(decode(&good[..11]), Err(DecodeError::Short));
        assert_eq!(with(|b| b[0] = b'X'), Err(DecodeError::Magic));
        assert_eq!(with(|b| b[2] = 2), Err(DecodeError::Version(2)));
        assert_eq!(with(|b| b[3] = 0), Err(DecodeError::Empty));
        assert_eq!(with(|b| b[3] = 2), Err(DecodeError::Truncated(1)));
        assert_eq!(with(|b| b.truncate(b.len() - 1)), Err(DecodeError::Truncated(0)));
        assert_eq!(with(|b| b.push(0)), Err(DecodeError::Trailing(1)));
        assert_eq!(with(|b| b[12] = 5), Err(DecodeError::Family(0, 5)));
        assert_eq!(
            with(|b| b[13..17].copy_from_slice(&[0; 4])),
            Err(DecodeError::Ttl(0, 0))
        );
        assert_eq!(
            with(|b| b[13..17].copy_from_slice(&[0xff; 4])),
            Err(DecodeError::Ttl(0, u32::MAX))
        );
        assert_eq!(
            with(|b| b[17..21].copy_from_slice(&[0; 4])),
            Err(DecodeError::Address(0))
        );
        assert_eq!(with(|b| b[17] = 224), Err(DecodeError::Address(0)));
    }

    #[test]
    fn the_catch_up_request_round_trips_and_garbage_is_refused() {
        let h = encode_hello(0x0102_0304_0506_0708);
        assert_eq!(h, *b"MH\x01\x00\x01\x02\x03\x04\x05\x06\x07\x08");
        assert_eq!(decode_hello(&h), Ok(0x0102_0304_0506_0708));
        let with = |f: fn(&mut Vec<u8>)| {
            let mut b = h.to_vec();
            f(&mut b);
            decode_hello(&b)
        };
        assert_eq!(decode_hello(&h[..11]), Err(DecodeError::Short));
        assert_eq!(with(|b| b[1] = b'V'), Err(DecodeError::Magic));
        assert_eq!(with(|b| b[2] = 2), Err(DecodeError::Version(2)));
        assert_eq!(with(|b| b[3] = 1), Err(DecodeError::Reserved(1)));
        assert_eq!(with(|b| b.push(0)), Err(DecodeError::Trailing(1)));
        // A verified-source batch is not a request, nor the reverse.
        let mut batch = Vec::new();
        encode(1, &[e("192.0.2.1", 5)], &mut batch);
        assert_eq!(decode_hello(&batch), Err(DecodeError::Magic));
        assert_eq!(decode(&h), Err(DecodeError::Magic));
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..10_000 {
            let b: Vec<u8> = (0..rng.gen_range(0..20)).map(|_| rng.gen()).collect();
            if let Ok(s) = decode_hello(&b) {
                assert_eq!(encode_hello(s)[..], b[..]);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A fixed-seed sweep of random and mutated messages (a cheap fuzz).
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut good = Vec::new();
        encode(3, &[e("192.0.2.1", 5), e("2001:db8::2", 6)], &mut good);
        for _ in 0..20_000 {
            let mut b = if rng.gen_bool(0.5) {
                good.clone()
            } else {
                (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
            };
            if !b.is_empty() {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            if let Ok(d) = decode(&b) {
                let mut again = Vec::new();
                encode(d.sender, &d.entries, &mut again);
                assert_eq!(decode(&again).unwrap(), d);
            }
        }
    }
}
