//! Stateless SYN cookies: a keyed SipHash-2-4 MAC over the connection's
//! addresses, ports and a coarse time slot, packed with a 3-bit MSS index into
//! the 32 bits of a TCP sequence or acknowledgement number.
//!
//! Layout of a cookie (most significant bit first):
//!
//! ```text
//!  31                             6   5   4   3 2     0
//! +--------------------------------+---+-----+-------+
//! |    MAC (26 bits of SipHash)    |gen|slot |  MSS  |
//! |                                |& 1|& 3  | index |
//! +--------------------------------+---+-----+-------+
//! ```
//!
//! A slot lasts [`SLOT_SECS`] = 64 s, a power of two so that the slot is a
//! shift of the Unix time, identical on every node of an ECMP cluster that
//! shares the secret. A cookie is accepted in the slot it was made and the one
//! after (64 to 128 s of validity): long enough for a client stack's answer
//! and its SYN retransmissions, short enough that a captured cookie is soon
//! useless. The two low slot bits name the slot and the `gen` bit names the
//! secret (current or previous), so verification computes exactly one MAC,
//! never a search over slots or secrets: a flood of forged answers costs one
//! SipHash each.
//!
//! Cost/security trade-off: an attacker who does not know the secret must
//! guess 26 bits per (src, dst, ports) within two minutes: at one million
//! guesses per second that is one success per ~67 s per tuple, which verifies
//! a single source address (a spoofer then learns nothing it can reuse), and
//! secrets rotate so a leaked cookie dies with them. Comparison is on
//! integers by XOR, constant time in the value compared.

use core::hash::Hasher;
use core::net::IpAddr;

use crate::time::{Nanos, SECOND};

/// Length of a time slot, in seconds. Power of two: see the module docs.
pub const SLOT_SECS: u64 = 64;
const SLOT_SHIFT_NS: u64 = SLOT_SECS * SECOND;

/// MSS values encodable in a cookie (Linux `msstab`-like, IPv4 and IPv6
/// common values). The index of the largest entry not above the client's MSS
/// is stored.
pub const MSS_TABLE: [u16; 8] = [536, 1220, 1300, 1360, 1400, 1440, 1452, 1460];

/// A 128-bit SipHash key.
pub type Key = [u8; 16];

/// The current and previous cookie secrets. Cookies are made with `current`
/// and accepted with either, so a rotation never invalidates a cookie in
/// flight. `generation` counts rotations; its parity is carried in each
/// cookie, so nodes of a cluster must rotate in step (derive each
/// generation's key from the shared secret and a common epoch).
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecrets {
    pub current: Key,
    pub previous: Key,
    pub generation: u64,
}

impl core::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CookieSecrets { .. }")
    }
}

impl CookieSecrets {
    /// Secrets with the same key as current and previous (no rotation yet).
    pub fn new(key: Key) -> Self {
        CookieSecrets {
            current: key,
            previous: key,
            generation: 0,
        }
    }

    /// Rotates: `current` becomes `previous`, `next` becomes `current`.
    pub fn rotate(&mut self, next: Key) {
        self.previous = self.current;
        self.current = next;
        self.generation = self.generation.wrapping_add(1);
    }

    /// The key of the generation whose parity is `gen_bit`.
    #[inline]
    fn key_for(&self, gen_bit: u32) -> &Key {
        if u64::from(gen_bit) == self.generation & 1 {
            &self.current
        } else {
            &self.previous
        }
    }

    /// Derives a key from arbitrary secret material (e.g. the contents of the
    /// cluster's `cookie_secret_file`) with a fixed-key SipHash-128, so that
    /// every node deriving from the same file gets the same key.
    pub fn derive_key(material: &[u8]) -> Key {
        use siphasher::sip128::Hasher128;
        let mut h = siphasher::sip128::SipHasher24::new_with_keys(0x6d6f_6174_636f_6f6b, 0x6965_7365_6372_6574);
        h.write(material);
        h.finish128().as_bytes()
    }
}

/// The four-tuple a cookie is bound to, as seen on the client's SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// Time slot of `now`.
#[inline]
pub fn slot(now: Nanos) -> u64 {
    now / SLOT_SHIFT_NS
}

/// Index into [`MSS_TABLE`] of the largest MSS not above `mss`
/// (0 when `mss` is below every entry).
#[inline]
pub fn mss_index(mss: u16) -> u8 {
    // The table is sorted: count the entries not above `mss`.
    MSS_TABLE.partition_point(|m| *m <= mss).saturating_sub(1) as u8
}

/// The MAC: SipHash-2-4 over the tuple and `slot << 4 | gen << 3 | mss_idx`,
/// hashed in one shot from a stack buffer (16 bytes for IPv4, 40 for IPv6),
/// top 26 bits. The slot counts 64 s periods since 1970 and fits 28 bits
/// until the year 2500, so the tail fits its 32-bit field. The generation
/// bit is under the MAC so that it cannot be flipped to pick the other key.
#[inline]
fn mac(key: &Key, t: &Tuple, slot: u64, gen: u32, mss_idx: u8) -> u32 {
    let tail = ((slot as u32) << 4) | (gen << 3) | u32::from(mss_idx);
    let ports = (u32::from(t.sport) << 16) | u32::from(t.dport);
    // SipHash reads its message as little-endian 64-bit words; the message
    // is the fields in network order, so each word is two byte-swapped
    // fields. Same bytes, same MAC as hashing the buffer.
    let pair = |a: u32, b: u32| u64::from(a.swap_bytes()) | (u64::from(b.swap_bytes()) << 32);
    let sum = match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sip24(key, &[pair(u32::from(s), u32::from(d)), pair(ports, tail)], 16),
        (s, d) => {
            let (s, d) = (v6_bits(s), v6_bits(d));
            let be = |v: u128| [(v >> 64) as u64, v as u64].map(u64::swap_bytes);
            let [s0, s1] = be(s);
            let [d0, d1] = be(d);
            sip24(key, &[s0, s1, d0, d1, pair(ports, tail)], 40)
        }
    };
    (sum >> 38) as u32 // top 26 bits
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of a message of `len` bytes
/// given as its little-endian 64-bit words, `len` a multiple of 8: the
/// cookie's 16 (IPv4) or 40 (IPv6) bytes as two or five words, without
/// the byte buffering of a general hasher (a test checks it against
/// `siphasher`). Public for the four-lane comparison in
/// `benches/benches/siphash_lanes.rs`.
#[inline(always)]
pub fn sip24<const N: usize>(key: &Key, words: &[u64; N], len: u64) -> u64 {
    let (k0, k1) = (
        u64::from_le_bytes([key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]]),
        u64::from_le_bytes([key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15]]),
    );
    let mut v0 = k0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = k1 ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = k0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k1 ^ 0x7465_6462_7974_6573;
    macro_rules! round {
        () => {
            v0 = v0.wrapping_add(v1);
            v1 = v1.rotate_left(13) ^ v0;
            v0 = v0.rotate_left(32);
            v2 = v2.wrapping_add(v3);
            v3 = v3.rotate_left(16) ^ v2;
            v0 = v0.wrapping_add(v3);
            v3 = v3.rotate_left(21) ^ v0;
            v2 = v2.wrapping_add(v1);
            v1 = v1.rotate_left(17) ^ v2;
            v2 = v2.rotate_left(32);
        };
    }
    macro_rules! compress {
        ($m:expr) => {
            let m = $m;
            v3 ^= m;
            round!();
            round!();
            v0 ^= m;
        };
    }
    for &m in words {
        compress!(m);
    }
    compress!(len << 56);
    v2 ^= 0xff;
    round!();
    round!();
    round!();
    round!();
    v0 ^ v1 ^ v2 ^ v3
}

fn v6_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Makes the cookie for `t` at `now` with MSS index `mss_idx` (0..=7).
#[inline]
pub fn make(secrets: &CookieSecrets, t: &Tuple, now: Nanos, mss_idx: u8) -> u32 {
    let s = slot(now);
    let mss_idx = mss_idx & 7;
    let gen = (secrets.generation & 1) as u32;
    (mac(&secrets.current, t, s, gen, mss_idx) << 6) | (gen << 5) | (((s & 3) as u32) << 3) | u32::from(mss_idx)
}

/// Checks `cookie` for `t` at `now`. Returns the MSS index it carries when the
/// MAC matches under either secret and its slot is the current or the
/// previous one.
#[inline]
pub fn check(secrets: &CookieSecrets, t: &Tuple, now: Nanos, cookie: u32) -> Option<u8> {
    let now_slot = slot(now);
    let low = u64::from((cookie >> 3) & 3);
    // The most recent slot <= now_slot whose two low bits are `low`.
    let age = (now_slot.wrapping_sub(low)) & 3;
    if age > 1 {
        return None;
    }
    let s = now_slot.wrapping_sub(age);
    let mss_idx = (cookie & 7) as u8;
    let want = cookie >> 6;
    let gen = (cookie >> 5) & 1;
    if (mac(secrets.key_for(gen), t, s, gen, mss_idx) ^ want) == 0 {
        Some(mss_idx)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn tuple() -> Tuple {
        Tuple {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            sport: 40000,
            dport: 80,
        }
    }

    const T0: Nanos = 1_700_000_000 * SECOND;

    #[test]
    fn round_trip_carries_mss_index() {
        let s = CookieSecrets::new([7; 16]);
        for idx in 0..8 {
            let c = make(&s, &tuple(), T0, idx);
            assert_eq!(check(&s, &tuple(), T0, c), Some(idx));
        }
    }

    #[test]
    fn valid_for_current_and_next_slot_only() {
        let s = CookieSecrets::new([7; 16]);
        let start = slot(T0) * SLOT_SHIFT_NS; // first ns of the slot
        let c = make(&s, &tuple(), start, 3);
        assert_eq!(check(&s, &tuple(), start + SLOT_SHIFT_NS - 1, c), Some(3));
        assert_eq!(check(&s, &tuple(), start + 2 * SLOT_SHIFT_NS - 1, c), Some(3));
        assert_eq!(check(&s, &tuple(), start + 2 * SLOT_SHIFT_NS, c), None);
        assert_eq!(check(&s, &tuple(), start + 4 * SLOT_SHIFT_NS, c), None);
        // A cookie from the future (clock skew beyond one slot) is refused.
        assert_eq!(check(&s, &tuple(), start - SLOT_SHIFT_NS, c), None);
    }

    #[test]
    fn bound_to_tuple_and_secret() {
        let s = CookieSecrets::new([7; 16]);
        let c = make(&s, &tuple(), T0, 1);
        let mut t = tuple();
        t.sport += 1;
        assert_eq!(check(&s, &t, T0, c), None);
        let mut t = tuple();
        t.src = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8));
        assert_eq!(check(&s, &t, T0, c), None);
        assert_eq!(check(&CookieSecrets::new([8; 16]), &tuple(), T0, c), None);
        // Flipping any MAC or generation bit breaks it.
        for bit in 5..32 {
            assert_eq!(check(&s, &tuple(), T0, c ^ (1 << bit)), None, "bit {bit}");
        }
    }

    #[test]
    fn survives_one_rotation_not_two() {
        let mut s = CookieSecrets::new([1; 16]);
        let c = make(&s, &tuple(), T0, 2);
        s.rotate([2; 16]);
        assert_eq!(check(&s, &tuple(), T0, c), Some(2));
        s.rotate([3; 16]);
        assert_eq!(check(&s, &tuple(), T0, c), None);
    }

    #[test]
    fn generation_bit_selects_the_secret() {
        let mut s = CookieSecrets::new([1; 16]);
        s.rotate([2; 16]);
        let c = make(&s, &tuple(), T0, 4);
        assert_eq!(c >> 5 & 1, 1, "generation 1 is odd");
        assert_eq!(check(&s, &tuple(), T0, c), Some(4));
        // The same MAC claimed under the other generation is refused.
        assert_eq!(check(&s, &tuple(), T0, c ^ (1 << 5)), None);
    }

    #[test]
    fn ipv6_tuples() {
        let s = CookieSecrets::new([9; 16]);
        let t = Tuple {
            src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            dst: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
            sport: 1,
            dport: 443,
        };
        let c = make(&s, &t, T0, 7);
        assert_eq!(check(&s, &t, T0, c), Some(7));
    }

    #[test]
    fn mss_index_picks_largest_not_above() {
        assert_eq!(mss_index(1460), 7);
        assert_eq!(mss_index(9000), 7);
        assert_eq!(mss_index(1440), 5);
        assert_eq!(mss_index(1439), 4);
        assert_eq!(mss_index(100), 0);
        assert_eq!(MSS_TABLE[mss_index(1380) as usize], 1360);
    }

    proptest::proptest! {
        /// The word-wise SipHash is SipHash-2-4 (`siphasher` is the
        /// reference) on the 16- and 40-byte messages of the MAC.
        #[test]
        fn sip24_matches_siphasher(key in proptest::array::uniform16(0u8..), msg in proptest::collection::vec(0u8.., 40)) {
            for n in [16usize, 40] {
                let words: Vec<u64> = msg[..n]
                    .chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                let want = siphasher::sip::SipHasher24::new_with_key(&key).hash(&msg[..n]);
                let got = match *words.as_slice() {
                    [a, b] => sip24(&key, &[a, b], 16),
                    [a, b, c, d, e] => sip24(&key, &[a, b, c, d, e], 40),
                    _ => unreachable!("16 or 40 bytes"),
                };
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    /// Cookies are what the byte-buffer MAC made (cluster nodes of the
    /// previous version check this version's cookies and back).
    #[test]
    fn mac_is_siphash_of_the_fields_in_network_order() {
        let key = [7u8; 16];
        let t = tuple();
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&[198, 51, 100, 7]);
        b[4..8].copy_from_slice(&[203, 0, 113, 10]);
        b[8..12].copy_from_slice(&((40000u32 << 16) | 80).to_be_bytes());
        b[12..16].copy_from_slice(&((1234u32 << 4) | (1 << 3) | 5).to_be_bytes());
        let want = (siphasher::sip::SipHasher24::new_with_key(&key).hash(&b) >> 38) as u32;
        assert_eq!(mac(&key, &t, 1234, 1, 5), want);
        let t6 = Tuple {
            src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            sport: 1,
            dport: 443,
        };
        let mut b = [0u8; 40];
        b[0..16].copy_from_slice(&v6_bits(t6.src).to_be_bytes());
        b[16..32].copy_from_slice(&v6_bits(t6.dst).to_be_bytes());
        b[32..36].copy_from_slice(&((1u32 << 16) | 443).to_be_bytes());
        b[36..40].copy_from_slice(&(9u32 << 4).to_be_bytes());
        let want = (siphasher::sip::SipHasher24::new_with_key(&key).hash(&b) >> 38) as u32;
        assert_eq!(mac(&key, &t6, 9, 0, 0), want);
    }

    #[test]
    fn derive_key_is_deterministic() {
        assert_eq!(CookieSecrets::derive_key(b"abc"), CookieSecrets::derive_key(b"abc"));
        assert_ne!(CookieSecrets::derive_key(b"abc"), CookieSecrets::derive_key(b"abd"));
    }
}
