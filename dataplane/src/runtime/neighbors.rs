//! Next-hop resolution by ARP (RFC 826) for the inside port: the MAC of each
//! origin's tunnel endpoint (or of the inside gateway), learned from ARP
//! replies and requests, refreshed, with a static MAC from the config as the
//! fallback when nothing answers.
//!
//! Shared by the workers without locks: each entry is a few atomics. Any
//! worker that sees an ARP packet from a tracked address stores what it
//! learned; worker 0 asks (its ARP requests leave with its inside burst);
//! every worker reads the current MAC at burst boundaries.

use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use classifier::time::{Nanos, SECOND};

/// Ask again this long after the last answer (a live entry is confirmed
/// before it goes stale).
pub const REFRESH: Nanos = 30 * SECOND;
/// While unanswered, ask once per this.
pub const RETRY: Nanos = SECOND;
/// An entry not confirmed for this long is stale (its MAC is still used
/// while asking, as Linux does).
pub const STALE: Nanos = 60 * SECOND;
/// Unanswered requests before the static MAC (if any) is used.
pub const TRIES_BEFORE_STATIC: u64 = 3;

const VALID: u64 = 1 << 48;

/// Resolution state of one next hop, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborState {
    /// Answered within [`STALE`].
    Reachable,
    /// Learned once, not confirmed lately; still used.
    Stale,
    /// Never answered; the configured static MAC is used.
    Static,
    /// Never answered and no static MAC: packets for it are dropped
    /// (`no_next_hop`).
    Incomplete,
}

impl NeighborState {
    pub const fn as_str(self) -> &'static str {
        match self {
            NeighborState::Reachable => "reachable",
            NeighborState::Stale => "stale",
            NeighborState::Static => "static",
            NeighborState::Incomplete => "incomplete",
        }
    }
}

/// One next hop.
#[derive(Debug)]
pub struct Neighbor {
    pub ip: Ipv4Addr,
    pub static_mac: Option<[u8; 6]>,
    /// Learned MAC | `VALID`, or 0.
    mac: AtomicU64,
    /// When it last answered (or spoke ARP to us).
    seen: AtomicU64,
    /// When we last asked, and how many times since the last answer.
    asked: AtomicU64,
    tries: AtomicU64,
}

fn pack(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b) | VALID
}

fn unpack(v: u64) -> Option<[u8; 6]> {
    if v & VALID == 0 {
        return None;
    }
    let b = (v & (VALID - 1)).to_be_bytes();
    Some([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The tracked next hops.
#[derive(Debug)]
pub struct Neighbors {
    entries: Box<[Neighbor]>,
    /// Whether requests are sent at all (backends without a live inside
    /// port use static MACs only).
    pub resolve: bool,
}

impl Neighbors {
    /// One entry per distinct address in `hops` (address, static MAC).
    pub fn new(hops: &[(Ipv4Addr, Option<[u8; 6]>)], resolve: bool) -> Self {
        let mut entries: Vec<Neighbor> = Vec::new();
        for (ip, mac) in hops {
            if entries.iter().any(|e| e.ip == *ip) {
                continue;
            }
            entries.push(Neighbor {
                ip: *ip,
                static_mac: *mac,
                mac: AtomicU64::new(0),
                seen: AtomicU64::new(0),
                asked: AtomicU64::new(0),
                tries: AtomicU64::new(0),
            });
        }
        Neighbors {
            entries: entries.into_boxed_slice(),
            resolve,
        }
    }

    /// Index of the entry for `ip`.
    pub fn index_of(&self, ip: Ipv4Addr) -> Option<usize> {
        self.entries.iter().position(|e| e.ip == ip)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Neighbor> {
        self.entries.get(i)
    }

    /// Records that `ip` is at `mac` (an ARP reply, or a request from it);
    /// false when `ip` is not tracked (nothing is learned from strangers).
    pub fn learn(&self, ip: Ipv4Addr, mac: [u8; 6], now: Nanos) -> bool {
        let Some(e) = self.entries.iter().find(|e| e.ip == ip) else {
            return false;
        };
        if mac == [0; 6] || mac[0] & 1 == 1 {
            return false;
        }
        e.mac.store(pack(mac), Relaxed);
        e.seen.store(now, Relaxed);
        e.tries.store(0, Relaxed);
        true
    }

    /// The MAC to use for entry `i` now, and its state.
    pub fn lookup(&self, i: usize, now: Nanos) -> (Option<[u8; 6]>, NeighborState) {
        let Some(e) = self.entries.get(i) else {
            return (None, NeighborState::Incomplete);
        };
        if let Some(m) = unpack(e.mac.load(Relaxed)) {
            let fresh = now.saturating_sub(e.seen.load(Relaxed)) < STALE;
            return (
                Some(m),
                if fresh {
                    NeighborState::Reachable
                } else {
                    NeighborState::Stale
                },
            );
        }
        let tried = e.tries.load(Relaxed) >= TRIES_BEFORE_STATIC || !self.resolve;
        match e.static_mac {
            Some(m) if tried => (Some(m), NeighborState::Static),
            _ => (None, NeighborState::Incomplete),
        }
    }

    /// Worker 0: calls `ask(ip)` for every entry that needs a request now
    /// (never answered, or due for refresh), at most once per [`RETRY`]
    /// each.
    pub fn due(&self, now: Nanos, mut ask: impl FnMut(Ipv4Addr) -> bool) {
        if !self.resolve {
            return;
        }
        for e in self.entries.iter() {
            let known = e.mac.load(Relaxed) & VALID != 0;
            let seen = e.seen.load(Relaxed);
            if known && now.saturating_sub(seen) < REFRESH {
                continue;
            }
            let asked = e.asked.load(Relaxed);
            if asked != 0 && now.saturating_sub(asked) < RETRY {
                continue;
            }
            if ask(e.ip) {
                e.asked.store(now.max(1), Relaxed);
                e.tries.store(e.tries.load(Relaxed) + 1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
    const MAC: [u8; 6] = [2, 0, 0, 0, 0x77, 2];
    const T0: Nanos = 1000 * SECOND;

    fn asks(n: &Neighbors, now: Nanos) -> Vec<Ipv4Addr> {
        let mut v = Vec::new();
        n.due(now, |ip| {
            v.push(ip);
            true
        });
        v
    }

    #[test]
    fn incomplete_then_learned_then_refreshed_then_stale() {
        let n = Neighbors::new(&[(IP, None), (IP, None)], true);
        assert_eq!(n.len(), 1);
        assert_eq!(n.lookup(0, T0), (None, NeighborState::Incomplete));
        assert_eq!(asks(&n, T0), vec![IP]);
        assert!(asks(&n, T0 + RETRY / 2).is_empty(), "retry paced");
        assert_eq!(asks(&n, T0 + RETRY), vec![IP]);
        assert!(
            !n.learn(Ipv4Addr::new(192, 168, 77, 9), MAC, T0),
            "strangers are not learned"
        );
        assert!(!n.learn(IP, [0xff; 6], T0), "broadcast MACs are not learned");
        assert!(n.learn(IP, MAC, T0 + 2 * SECOND));
        assert_eq!(n.lookup(0, T0 + 3 * SECOND), (Some(MAC), NeighborState::Reachable));
        assert!(asks(&n, T0 + 10 * SECOND).is_empty());
        assert_eq!(asks(&n, T0 + 2 * SECOND + REFRESH), vec![IP], "refresh");
        assert_eq!(n.lookup(0, T0 + 2 * SECOND + STALE), (Some(MAC), NeighborState::Stale));
    }

    #[test]
    fn static_mac_after_unanswered_tries() {
        let n = Neighbors::new(&[(IP, Some(MAC))], true);
        for i in 0..TRIES_BEFORE_STATIC {
            assert_eq!(n.lookup(0, T0), (None, NeighborState::Incomplete));
            assert_eq!(asks(&n, T0 + i * RETRY), vec![IP]);
        }
        assert_eq!(n.lookup(0, T0), (Some(MAC), NeighborState::Static));
        let off = Neighbors::new(&[(IP, Some(MAC))], false);
        assert_eq!(off.lookup(0, T0), (Some(MAC), NeighborState::Static));
        assert!(asks(&off, T0).is_empty());
    }
}
