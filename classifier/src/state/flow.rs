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

    /// The client's address and whether the flow is IPv6.
    #[inline]
    pub fn src(&self) -> (crate::parse::Addr, bool) {
        (
            crate::parse::Addr {
                hi: self.src[0],
                lo: self.src[1],
            },
            self.families & 1 != 0,
        )
    }

    /// The service's address (the VIP).
    #[inline]
    pub fn dst(&self) -> crate::parse::Addr {
        crate::parse::Addr {
            hi: self.dst[0],
            lo: self.dst[1],
        }
    }

    /// The client's port and the service's.
    #[inline]
    pub fn ports(&self) -> (u16, u16) {
        ((self.ports >> 16) as u16, self.ports as u16)
    }

    /// The client as a per-source table key.
    #[inline]
    pub fn src_key(&self) -> super::table::AddrKey {
        let (a, v6) = self.src();
        super::table::AddrKey::of(a, v6)
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

/// What the table remembers of a flow (DESIGN.md, "Flow tracking"): 20
/// bytes, so that a slot (40-byte key, value, CLOCK mark) fits one cache
/// line. Times are [`Ticks`] (2^20 ns, about 1.05 ms) in 32 bits: they wrap
/// after 52 days, and every comparison is a wrapping difference, exact for
/// spans under 26 days (idle timeouts and `empty_conn_secs` are far less).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Flow {
    /// Last passed segment.
    last: u32,
    /// When the handshake completed (the first ACK after the SYN); 0: not
    /// yet (a flow that completes it at tick 0 is stamped 1).
    est: u32,
    /// The client's next sequence number: ISN + 1 from the SYN, then the
    /// end of the latest passed segment. A RST toward the origin carries it.
    pub seq: u32,
    /// The client's latest acknowledgement: the origin's next sequence
    /// number as the client saw it. A RST toward the client carries it.
    pub ack: u32,
    /// The service the flow belongs to (its limits, its counts).
    pub service: u16,
    /// [`Flow::COUNTED_SRC`], [`Flow::COUNTED_DST`], [`Flow::DATA`],
    /// [`Flow::JUDGED`].
    pub bits: u8,
}

/// Flow times: nanoseconds >> 20.
pub type Ticks = u32;

/// A [`Nanos`] time as [`Ticks`] (truncated to 32 bits: wraps).
#[inline]
pub const fn ticks(t: Nanos) -> Ticks {
    (t >> 20) as u32
}

/// A span in [`Ticks`], rounded up, at least 1 (a timeout never becomes
/// "always").
#[inline]
pub const fn span_ticks(t: Nanos) -> u32 {
    let n = t.div_ceil(1 << 20);
    if n == 0 {
        1
    } else if n > i32::MAX as u64 {
        i32::MAX as u32
    } else {
        n as u32
    }
}

/// Has `span` (in ticks, from [`span_ticks`]) passed from `from` to `now`?
/// A clock that went backwards (`now` before `from`) has not.
#[inline]
pub const fn passed(from: Ticks, now: Ticks, span: u32) -> bool {
    let d = now.wrapping_sub(from) as i32;
    d >= 0 && d as u32 >= span
}

impl Flow {
    /// Counted in its source's concurrent connections (`src_conns`).
    pub const COUNTED_SRC: u8 = 1;
    /// Counted in its service's concurrent connections (`dst_conns`).
    pub const COUNTED_DST: u8 = 2;
    /// The client sent data.
    pub const DATA: u8 = 4;
    /// First-segment inspection is over for this flow (judged, or nothing
    /// to judge).
    pub const JUDGED: u8 = 8;

    /// A flow admitted at `now` by the SYN with sequence number `isn`.
    pub fn new(now: Nanos, isn: u32, service: u16, bits: u8) -> Self {
        Flow {
            last: ticks(now),
            est: 0,
            seq: isn.wrapping_add(1),
            ack: 0,
            service,
            bits,
        }
    }

    /// Whether the handshake has completed.
    #[inline]
    pub fn established(&self) -> bool {
        self.est != 0
    }

    /// Records the handshake's completion at `now` (once).
    #[inline]
    pub fn establish(&mut self, now: Nanos) {
        if self.est == 0 {
            self.est = ticks(now).max(1);
        }
    }

    /// An established flow whose client has sent no data for `span` ticks
    /// since its handshake (the "empty connection" of `empty_conn_secs`).
    #[inline]
    pub fn empty_for(&self, now: Nanos, span: u32) -> bool {
        self.est != 0 && self.bits & Flow::DATA == 0 && passed(self.est, ticks(now), span)
    }

    /// Live unless more than `idle` ticks passed since `last`: both times
    /// are truncated to ticks, so a flow is never expired early, and at
    /// most two ticks (about 2 ms) late.
    #[inline]
    fn live(&self, now: Nanos, idle: u32) -> bool {
        !passed(self.last, ticks(now), idle.saturating_add(1))
    }
}

// A flow slot (key, value, CLOCK mark) stays within one cache line.
const _: () = assert!(core::mem::size_of::<FlowId>() <= 40);
const _: () = assert!(core::mem::size_of::<Flow>() <= 20);
const _: () = assert!(slot_size::<FlowId, Flow>() <= 64);

/// A flow that left the table, and why (its counts must be settled).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Gone {
    pub id: FlowId,
    pub flow: Flow,
}

/// Live TCP flows, keyed by their four-tuple.
#[derive(Debug)]
pub struct FlowTable {
    table: Table<FlowId, Flow>,
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
        // An expired flow it removes is not handed back: callers that keep
        // counts over flows use `get_hashed`.
        self.get_hashed(hash, id, now, idle).is_ok()
    }

    /// The live flow of `id`, its last-seen time refreshed, for the caller
    /// to update; `Err` with the expired flow removed to make way (its
    /// counts to settle), or `Err(None)` where there was none.
    #[inline]
    pub fn get_hashed(&mut self, hash: u64, id: &FlowId, now: Nanos, idle: Nanos) -> Result<&mut Flow, Option<Gone>> {
        let Ok(hit) = self.table.probe_hashed(hash, id) else {
            return Err(None);
        };
        let idle = span_ticks(idle);
        // One slot access: the reference bit set on an expired entry does
        // not matter, the entry is removed right after.
        let expired = match self.table.get_mut(hit) {
            Some(f) if f.live(now, idle) => None,
            Some(f) => Some(*f),
            None => return Err(None),
        };
        if let Some(flow) = expired {
            self.table.remove(hit);
            return Err(Some(Gone { id: *id, flow }));
        }
        match self.table.get_mut(hit) {
            Some(f) => {
                let t = ticks(now);
                // A clock that went backwards does not move `last` back.
                if t.wrapping_sub(f.last) as i32 > 0 {
                    f.last = t;
                }
                Ok(f)
            }
            None => Err(None),
        }
    }

    /// Records a flow (its SYN passed), or refreshes it if it is live.
    pub fn insert(&mut self, key: FlowKey, now: Nanos, idle: Nanos) -> Insert {
        self.insert_id(FlowId::new(&key), now, idle)
    }

    /// [`FlowTable::insert`] by the packed key, with a default [`Flow`].
    pub fn insert_id(&mut self, id: FlowId, now: Nanos, idle: Nanos) -> Insert {
        self.insert_flow(id, Flow::new(now, 0, 0, 0), now, idle).0
    }

    /// Records `flow` under `id`, or refreshes the live flow of `id`
    /// (whose value is kept); returns what it did and the flow that left
    /// the table to make room, expired or evicted (its counts to settle).
    pub fn insert_flow(&mut self, id: FlowId, flow: Flow, now: Nanos, idle: Nanos) -> (Insert, Option<Gone>) {
        let idle = span_ticks(idle);
        match self.table.probe(&id) {
            Ok(hit) => {
                let old = self.table.get(hit).copied();
                match old {
                    Some(mut f) if f.live(now, idle) => {
                        let t = ticks(now);
                        if t.wrapping_sub(f.last) as i32 > 0 {
                            f.last = t;
                        }
                        if let Some(v) = self.table.get_mut(hit) {
                            *v = f;
                        }
                        (Insert::Refreshed, None)
                    }
                    _ => {
                        if let Some(v) = self.table.renew(hit) {
                            *v = flow;
                        }
                        (Insert::New, old.map(|flow| Gone { id, flow }))
                    }
                }
            }
            Err(miss) => {
                let (placed, old) = self.table.insert_take(miss, id, flow, |f| !f.live(now, idle));
                let gone = old.map(|(id, flow)| Gone { id, flow });
                match placed {
                    Placed::Free | Placed::Expired => (Insert::New, gone),
                    Placed::Evicted => (Insert::Evicted, gone),
                }
            }
        }
    }

    /// Forgets a flow (FIN or RST seen). Returns whether it was stored.
    pub fn remove(&mut self, key: &FlowKey) -> bool {
        self.remove_id(&FlowId::new(key))
    }

    /// [`FlowTable::remove`] by the packed key (the packet path).
    pub fn remove_id(&mut self, id: &FlowId) -> bool {
        self.take_id(id).is_some()
    }

    /// Removes the flow of `id` and returns it (its counts to settle).
    pub fn take_id(&mut self, id: &FlowId) -> Option<Flow> {
        let hit = self.table.probe(id).ok()?;
        let f = self.table.get(hit).copied();
        self.table.remove(hit);
        f
    }

    /// Frees flows idle for `idle` ns or more among the next `budget` slots
    /// (between bursts); returns how many.
    pub fn sweep(&mut self, now: Nanos, idle: Nanos, budget: usize) -> usize {
        let idle = span_ticks(idle);
        self.table.sweep(budget, |f| !f.live(now, idle))
    }

    /// [`FlowTable::sweep`] where `dead` also says which live flows end
    /// (empty connections); each freed flow goes to `gone`.
    pub fn sweep_each(
        &mut self,
        now: Nanos,
        idle: Nanos,
        budget: usize,
        mut dead: impl FnMut(&Flow) -> bool,
        mut gone: impl FnMut(Gone),
    ) -> usize {
        let idle = span_ticks(idle);
        self.table.sweep_take(
            budget,
            |_, f| !f.live(now, idle) || dead(f),
            |id, flow| gone(Gone { id, flow }),
        )
    }

    /// Every stored flow (expired ones included), in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&FlowId, &Flow)> + '_ {
        self.table.iter()
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
    use crate::time::{MILLISECOND as MS, SECOND};

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
        // ... until `idle` after the last touch, and gone within two
        // ticks (~2 ms) after that.
        let mut k = key(1);
        k.sport += 1;
        t.insert(k, 18 * SECOND, IDLE);
        assert!(t.touch(&k, 28 * SECOND - 1, IDLE));
        assert!(!t.touch(&key(1), 28 * SECOND + 3 * MS, IDLE));
        assert_eq!(t.len(), 1);
        // An expired flow inserted again is new, not refreshed.
        t.insert(key(2), 0, IDLE);
        assert_eq!(t.insert(key(2), IDLE + 3 * MS, IDLE), Insert::New);
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
        // Just after 13 s, flows 0..=3 have been idle 10 s or more.
        assert_eq!(t.sweep(13 * SECOND + 3 * MS, IDLE, 8), 4);
        assert_eq!(t.len(), 4);
        t.clear();
        assert!(t.is_empty());
    }
}
