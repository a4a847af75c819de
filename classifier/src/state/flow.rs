//! The flow table: one-direction TCP flows (client → VIP) that passed their
//! SYN checks (DESIGN.md, "Flow tracking"). A non-SYN segment passes only for
//! a known flow or a verified source, so ACK and RST floods die on a miss.
//!
//! Contract: fixed capacity, no allocation after [`FlowTable::with_capacity`];
//! a flow idle for `idle` ns or more is absent (expired entries are taken
//! first when room is needed); otherwise CLOCK eviction (see
//! [`super::table`]). Flows end on FIN/RST through [`FlowTable::remove`].

use core::net::IpAddr;

use super::table::{slot_size, Placed, Table};
use crate::time::Nanos;

/// A flow as the client sends it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// What [`FlowTable::insert`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Insert {
    /// A new entry (in a free slot or in place of an expired one).
    New,
    /// The flow was live already; its idle timer restarted.
    Refreshed,
    /// New entry, and a live entry was pushed out to make room.
    Evicted,
}

/// [`FlowKey`] packed for the table: the two addresses as 64-bit words, both
/// ports in one word, and one byte of family flags (bit 0: source is IPv6,
/// bit 1: destination is IPv6), so the key is exact in 40 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FlowId {
    src: [u64; 2],
    dst: [u64; 2],
    ports: u32,
    families: u8,
}

impl FlowId {
    /// The flow of a parsed TCP segment (both addresses of its family).
    #[inline]
    pub fn of(p: &crate::parse::Parsed, t: &crate::parse::TcpInfo) -> Self {
        FlowId {
            src: [p.src.hi, p.src.lo],
            dst: [p.dst.hi, p.dst.lo],
            ports: (u32::from(t.sport) << 16) | u32::from(t.dport),
            families: if p.is_v6() { 3 } else { 0 },
        }
    }

    #[inline]
    fn new(k: &FlowKey) -> Self {
        let (src, s6) = words(k.src);
        let (dst, d6) = words(k.dst);
        FlowId {
            src,
            dst,
            ports: (u32::from(k.sport) << 16) | u32::from(k.dport),
            families: u8::from(s6) | (u8::from(d6) << 1),
        }
    }
}

impl core::hash::Hash for FlowId {
    /// IPv4 flows hash three words; the destination's high words and the
    /// flags only matter for IPv6, and equality checks them anyway.
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(self.src[1]);
        h.write_u64(self.dst[1] ^ (u64::from(self.ports) << 32));
        if self.families != 0 {
            h.write_u64(self.src[0]);
            h.write_u64(self.dst[0]);
        }
    }
}

#[inline]
fn words(ip: IpAddr) -> ([u64; 2], bool) {
    match ip {
        IpAddr::V4(a) => ([0, u64::from(u32::from(a))], false),
        IpAddr::V6(a) => {
            let b = u128::from(a);
            ([(b >> 64) as u64, b as u64], true)
        }
    }
}

// A flow slot (key, last-seen time, CLOCK mark) stays under one cache line.
const _: () = assert!(core::mem::size_of::<FlowId>() <= 40);
const _: () = assert!(slot_size::<FlowId, Nanos>() <= 56);

/// Live TCP flows, keyed by their four-tuple, with their last-seen time.
#[derive(Debug)]
pub struct FlowTable {
    table: Table<FlowId, Nanos>,
}

/// Is a flow last seen at `last` still live at `now`? A clock that went
/// backwards (`now < last`) keeps it live.
#[inline]
fn live(last: Nanos, now: Nanos, idle: Nanos) -> bool {
    now.saturating_sub(last) < idle
}

impl FlowTable {
    /// A table for `cap` flows (at least 1), all memory reserved now.
    pub fn with_capacity(cap: usize) -> Self {
        FlowTable {
            table: Table::with_capacity(cap),
        }
    }

    /// Is there a live flow (last seen within `idle` ns)? Refreshes its
    /// last-seen time. An expired flow is absent (and its slot is freed).
    #[inline]
    pub fn touch(&mut self, key: &FlowKey, now: Nanos, idle: Nanos) -> bool {
        self.touch_id(&FlowId::new(key), now, idle)
    }

    /// [`FlowTable::touch`] by the packed key (the packet path).
    #[inline]
    pub fn touch_id(&mut self, id: &FlowId, now: Nanos, idle: Nanos) -> bool {
        self.touch_hashed(self.hash(id), id, now, idle)
    }

    /// The hash a probe for `id` starts from (stage one of a burst).
    #[inline]
    pub fn hash(&self, id: &FlowId) -> u64 {
        self.table.hash(id)
    }

    /// The index line a probe with `hash` reads first (to prefetch).
    #[inline]
    pub fn index_line(&self, hash: u64) -> *const u8 {
        self.table.index_line(hash)
    }

    /// [`FlowTable::touch_id`] with the key's [`FlowTable::hash`].
    #[inline]
    pub fn touch_hashed(&mut self, hash: u64, id: &FlowId, now: Nanos, idle: Nanos) -> bool {
        let Ok(hit) = self.table.probe_hashed(hash, id) else {
            return false;
        };
        // One slot access: the reference bit set on an expired entry does
        // not matter, the entry is removed right after.
        let found = match self.table.get_mut(hit) {
            Some(last) if live(*last, now, idle) => {
                *last = now.max(*last);
                true
            }
            _ => false,
        };
        if !found {
            self.table.remove(hit);
        }
        found
    }

    /// Records a flow (its SYN passed), or refreshes it if it is live.
    pub fn insert(&mut self, key: FlowKey, now: Nanos, idle: Nanos) -> Insert {
        self.insert_id(FlowId::new(&key), now, idle)
    }

    /// [`FlowTable::insert`] by the packed key (the packet path).
    pub fn insert_id(&mut self, id: FlowId, now: Nanos, idle: Nanos) -> Insert {
        match self.table.probe(&id) {
            Ok(hit) => {
                let was_live = self.table.get(hit).is_some_and(|&last| live(last, now, idle));
                if was_live {
                    if let Some(last) = self.table.get_mut(hit) {
                        *last = now.max(*last);
                    }
                    Insert::Refreshed
                } else {
                    if let Some(last) = self.table.renew(hit) {
                        *last = now;
                    }
                    Insert::New
                }
            }
            Err(miss) => match self.table.insert(miss, id, now, |&last| !live(last, now, idle)) {
                Placed::Free | Placed::Expired => Insert::New,
                Placed::Evicted => Insert::Evicted,
            },
        }
    }

    /// Forgets a flow (FIN or RST seen). Returns whether it was stored.
    pub fn remove(&mut self, key: &FlowKey) -> bool {
        self.remove_id(&FlowId::new(key))
    }

    /// [`FlowTable::remove`] by the packed key (the packet path).
    pub fn remove_id(&mut self, id: &FlowId) -> bool {
        match self.table.probe(id) {
            Ok(hit) => {
                self.table.remove(hit);
                true
            }
            Err(_) => false,
        }
    }

    /// Frees flows idle for `idle` ns or more among the next `budget` slots
    /// (between bursts); returns how many.
    pub fn sweep(&mut self, now: Nanos, idle: Nanos, budget: usize) -> usize {
        self.table.sweep(budget, |&last| !live(last, now, idle))
    }

    /// Forgets every flow.
    pub fn clear(&mut self) {
        self.table.clear();
    }

    table_sizes!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SECOND;

    const IDLE: Nanos = 10 * SECOND;

    fn key(n: u32) -> FlowKey {
        FlowKey {
            src: IpAddr::V4(n.into()),
            dst: "192.0.2.1".parse().expect("ip"),
            sport: 40000,
            dport: 443,
        }
    }

    #[test]
    fn insert_then_touch_hits_and_misses() {
        let mut t = FlowTable::with_capacity(16);
        assert_eq!(t.insert(key(1), SECOND, IDLE), Insert::New);
        assert!(t.touch(&key(1), 2 * SECOND, IDLE));
        assert!(!t.touch(&key(2), 2 * SECOND, IDLE));
        let mut other_port = key(1);
        other_port.sport = 40001;
        assert!(!t.touch(&other_port, 2 * SECOND, IDLE));
        assert_eq!(t.insert(key(1), 3 * SECOND, IDLE), Insert::Refreshed);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn touch_refreshes_and_idle_flows_expire() {
        let mut t = FlowTable::with_capacity(16);
        t.insert(key(1), 0, IDLE);
        // Touched at 9 s, so still live at 18 s (9 s idle) ...
        assert!(t.touch(&key(1), 9 * SECOND, IDLE));
        assert!(t.touch(&key(1), 18 * SECOND, IDLE));
        // ... and gone exactly `idle` after the last touch.
        assert!(!t.touch(&key(1), 28 * SECOND, IDLE));
        assert!(t.is_empty());
        // An expired flow inserted again is new, not refreshed.
        t.insert(key(2), 0, IDLE);
        assert_eq!(t.insert(key(2), IDLE, IDLE), Insert::New);
    }

    #[test]
    fn remove_on_fin() {
        let mut t = FlowTable::with_capacity(4);
        t.insert(key(1), 0, IDLE);
        assert!(t.remove(&key(1)));
        assert!(!t.remove(&key(1)));
        assert!(!t.touch(&key(1), 1, IDLE));
    }

    #[test]
    fn full_table_prefers_expired_then_evicts_unused_flows() {
        let mut t = FlowTable::with_capacity(4);
        for n in 0..4 {
            assert_eq!(t.insert(key(n), 0, IDLE), Insert::New);
        }
        // Flow 3 keeps being used; the others idle out by 10 s.
        assert!(t.touch(&key(3), 5 * SECOND, IDLE));
        assert_eq!(t.insert(key(10), 11 * SECOND, IDLE), Insert::New);
        assert!(t.touch(&key(3), 12 * SECOND, IDLE));
        // Now every other entry is expired or new: 1 and 2 are taken
        // without evicting a live flow.
        assert_eq!(t.insert(key(11), 12 * SECOND, IDLE), Insert::New);
        assert_eq!(t.insert(key(12), 12 * SECOND, IDLE), Insert::New);
        // Full of live flows: the next insert evicts one that was not used
        // since it arrived, never the referenced flow 3.
        assert_eq!(t.insert(key(13), 12 * SECOND, IDLE), Insert::Evicted);
        assert!(t.touch(&key(3), 13 * SECOND, IDLE));
        assert_eq!(t.len(), 4);
        assert_eq!(t.capacity(), 4);
    }

    #[test]
    fn families_and_ports_are_part_of_the_key() {
        let mut t = FlowTable::with_capacity(8);
        let v6 = FlowKey {
            src: "2001:db8::1".parse().expect("ip"),
            dst: "2001:db8::2".parse().expect("ip"),
            sport: 1,
            dport: 2,
        };
        let mut swapped = v6;
        swapped.sport = 2;
        swapped.dport = 1;
        t.insert(v6, 0, IDLE);
        assert!(t.touch(&v6, 1, IDLE));
        assert!(!t.touch(&swapped, 1, IDLE));
        let compat = FlowKey {
            src: "::1.2.3.4".parse().expect("ip"),
            dst: "::192.0.2.1".parse().expect("ip"),
            sport: 40000,
            dport: 443,
        };
        t.insert(key(0x0102_0304), 0, IDLE);
        assert!(!t.touch(&compat, 1, IDLE));
    }

    #[test]
    fn sweep_and_clear() {
        let mut t = FlowTable::with_capacity(8);
        for n in 0..8 {
            t.insert(key(n), u64::from(n) * SECOND, IDLE);
        }
        // At 13 s, flows 0..=3 have been idle 10 s or more.
        assert_eq!(t.sweep(13 * SECOND, IDLE, 8), 4);
        assert_eq!(t.len(), 4);
        t.clear();
        assert!(t.is_empty());
    }
}
