//! UDP game authentication (`[[services.udp_auth]]`, DESIGN.md): per UDP
//! port, a source must prove its address before its datagrams reach the
//! origin. Verified sources share the verified table (and the cluster bus)
//! with SYN authentication.
//!
//! - [`Profile::A2s`]: a Source-engine query ([`crate::l7::a2s`]) from an
//!   unverified source without a valid challenge is answered by Moat with
//!   its own `S2C_CHALLENGE` (under the service's challenge bucket, so a
//!   spoofed flood draws at most `challenge_pps` replies); a query with the
//!   right challenge verifies the source and passes. Only queries of at
//!   least [`crate::l7::a2s::CHALLENGE_LEN`] bytes are answered (the
//!   deprecated 5-byte `GETCHALLENGE` is dropped): the reply datagram is
//!   never larger than the query, an amplification factor of at most 1
//!   (9 bytes of payload for 9 to 29).
//! - [`Profile::FirstPacket`]: the client's init packet (a payload match,
//!   offset/value/mask like payload rules) must come twice from the same
//!   source address and port, the second time `min` to `max` after the
//!   first. The first is dropped and remembered in a [`FirstPacketTable`]
//!   of fixed size; nothing else from an unverified source passes.
//!
//! Anything else from an unverified source on such a port is dropped
//! (`udp_unverified`).

use core::net::IpAddr;

use crate::build;
use crate::cookie::CookieSecrets;
use crate::l7::a2s::{self, A2sParse, QueryKind};
use crate::parse::Parsed;
use crate::policy::PayloadRule;
use crate::time::{Nanos, MILLISECOND};

/// The authentication of one UDP port of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpAuth {
    pub port: u16,
    pub profile: Profile,
}

/// How a source proves its address on a [`UdpAuth`] port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Source-engine queries and Moat's own challenge.
    A2s,
    /// The init packet, retransmitted within a window.
    FirstPacket(FirstPacket),
}

/// The init packet of [`Profile::FirstPacket`] and its retransmission window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPacket {
    /// What the init packet's payload matches (its `port` is unused).
    pub rule: PayloadRule,
    /// Shortest time between the first packet and its retransmission.
    pub min: Nanos,
    /// Longest.
    pub max: Nanos,
}

impl Profile {
    pub const fn name(&self) -> &'static str {
        match self {
            Profile::A2s => "a2s",
            Profile::FirstPacket(_) => "first-packet",
        }
    }
}

/// What an A2S datagram from an unverified source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum A2sCheck {
    /// A query with Moat's challenge for this source and port: verify the
    /// source, pass the query.
    Valid,
    /// A query without it, long enough to answer: send the challenge.
    Challenge,
    /// Anything else (not a query; `GETCHALLENGE`, shorter than the reply).
    Other,
}

/// Reads an A2S datagram's `payload` from `src:sport`. The challenge is
/// [`a2s::challenge`] under the cluster's cookie secret (the current one, or
/// the previous one for a challenge sent just before a rotation).
pub fn a2s_check(secrets: &CookieSecrets, src: IpAddr, sport: u16, now: Nanos, payload: &[u8]) -> A2sCheck {
    let A2sParse::Query(q) = a2s::parse_query(payload) else {
        return A2sCheck::Other;
    };
    if q.kind == QueryKind::GetChallenge || payload.len() < a2s::CHALLENGE_LEN {
        return A2sCheck::Other;
    }
    let valid = |c| {
        a2s::verify(&secrets.current, src, sport, now, c)
            || (secrets.previous != secrets.current && a2s::verify(&secrets.previous, src, sport, now, c))
    };
    if q.challenge.is_some_and(valid) {
        A2sCheck::Valid
    } else {
        A2sCheck::Challenge
    }
}

/// Writes the `S2C_CHALLENGE` answering the A2S query `req` (parsed `p`,
/// from `sport`) into `out`: a UDP reply, 9 bytes of payload. Its length,
/// `None` when `p` is not UDP or `out` is too small.
pub fn write_a2s_challenge(
    secrets: &CookieSecrets,
    now: Nanos,
    req: &[u8],
    p: &Parsed,
    sport: u16,
    out: &mut [u8],
) -> Option<usize> {
    let c = a2s::challenge(&secrets.current, p.src_ip(), sport, now);
    build::udp_reply(req, p, out, |buf| a2s::write_challenge(c, buf))
}

/// What [`FirstPacketTable::seen`] makes of an init packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The retransmission, inside the window: verify the source.
    InWindow,
    /// The first (or the first after the window closed, or after another
    /// source took the slot): remembered.
    First,
    /// Again before `min`: the first time is kept.
    TooEarly,
}

/// The first-packet memory of one worker: a direct-mapped table of
/// [`FirstPacketTable::SLOTS`] 8-byte entries (128 KiB), each a 32-bit tag
/// of the (source, source port, destination port) hash and the 32-bit
/// millisecond time of its first packet. It never grows: a random-source
/// flood overwrites entries (a real client whose entry is overwritten
/// between its two packets starts over on its next retransmission), and
/// costs one hash and one store per packet.
#[derive(Debug)]
pub struct FirstPacketTable {
    slots: Box<[u64]>,
    hasher: ahash::RandomState,
}

impl Default for FirstPacketTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FirstPacketTable {
    /// Entries (a power of two).
    pub const SLOTS: usize = 1 << 14;

    /// Allocates the table (start-up only), with random hash keys so that
    /// a flood cannot aim at one client's entry.
    pub fn new() -> Self {
        FirstPacketTable {
            slots: vec![0; Self::SLOTS].into_boxed_slice(),
            hasher: ahash::RandomState::new(),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<u64>()
    }

    /// Records the init packet of `p` (UDP `sport` → `dport`) at `now`.
    #[inline]
    pub fn seen(&mut self, p: &Parsed, sport: u16, dport: u16, now: Nanos, fp: &FirstPacket) -> Seen {
        let h = self.hasher.hash_one((p.src.v6_bits(), p.is_v6(), sport, dport));
        let idx = (h as usize) & (Self::SLOTS - 1);
        // Tag 0 marks an empty entry.
        let tag = ((h >> 32) as u32).max(1);
        let now_ms = (now / MILLISECOND) as u32;
        let e = self.slots[idx];
        let fresh = (u64::from(tag) << 32) | u64::from(now_ms);
        if (e >> 32) as u32 != tag {
            self.slots[idx] = fresh;
            return Seen::First;
        }
        let elapsed = u64::from(now_ms.wrapping_sub(e as u32)) * MILLISECOND;
        if elapsed < fp.min {
            Seen::TooEarly
        } else if elapsed <= fp.max {
            self.slots[idx] = 0;
            Seen::InWindow
        } else {
            self.slots[idx] = fresh;
            Seen::First
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Addr;

    fn parsed(src: u32) -> Parsed {
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([192, 0, 2, 1], [198, 51, 100, 10], 64)
            .udp(5000, 7777)
            .write(&mut frame, &[1, 2, 3])
            .expect("frame");
        let mut p = crate::parse::parse(&frame).expect("frame");
        p.src = Addr::v4(src);
        p
    }

    fn fp() -> FirstPacket {
        FirstPacket {
            rule: PayloadRule::new(0, 0, &[1], &[0xff]).expect("rule"),
            min: 200 * MILLISECOND,
            max: 2000 * MILLISECOND,
        }
    }

    #[test]
    fn window() {
        let mut t = FirstPacketTable::new();
        let (p, f, t0) = (parsed(0xc633_6407), fp(), 1_000_000 * MILLISECOND);
        assert_eq!(t.seen(&p, 5000, 7777, t0, &f), Seen::First);
        assert_eq!(t.seen(&p, 5000, 7777, t0 + 199 * MILLISECOND, &f), Seen::TooEarly);
        // The first time is kept after a too early one.
        assert_eq!(t.seen(&p, 5000, 7777, t0 + 200 * MILLISECOND, &f), Seen::InWindow);
        // Consumed: the next one starts over.
        assert_eq!(t.seen(&p, 5000, 7777, t0 + 300 * MILLISECOND, &f), Seen::First);
        // Too late: starts over from the late one.
        assert_eq!(t.seen(&p, 5000, 7777, t0 + 2301 * MILLISECOND, &f), Seen::First);
        assert_eq!(t.seen(&p, 5000, 7777, t0 + 4301 * MILLISECOND, &f), Seen::InWindow);
        // Bound to the address and both ports.
        assert_eq!(t.seen(&p, 5000, 7777, t0, &f), Seen::First);
        assert_eq!(t.seen(&p, 5001, 7777, t0 + 500 * MILLISECOND, &f), Seen::First);
        assert_eq!(t.seen(&p, 5000, 7778, t0 + 500 * MILLISECOND, &f), Seen::First);
        assert_eq!(
            t.seen(&parsed(0xc633_6408), 5000, 7777, t0 + 500 * MILLISECOND, &f),
            Seen::First
        );
        assert_eq!(t.seen(&p, 5000, 7777, t0 + 500 * MILLISECOND, &f), Seen::InWindow);
    }

    #[test]
    fn memory_is_fixed_under_a_random_source_flood() {
        let mut t = FirstPacketTable::new();
        let before = t.memory_bytes();
        assert_eq!(before, 128 * 1024);
        let f = fp();
        for i in 0..200_000u32 {
            t.seen(&parsed(0x0a00_0000 | i), 1024, 7777, u64::from(i) * MILLISECOND, &f);
        }
        assert_eq!(t.memory_bytes(), before);
    }
}
