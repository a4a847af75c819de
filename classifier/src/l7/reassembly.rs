//! Bounded in-order reassembly of the first client bytes of TCP flows, for
//! the first-segment parsers when a ClientHello or a request header spans
//! segments (Chrome's post-quantum hello is ~1.8 KB; Moat's own MSS clamp
//! makes a split likely).
//!
//! # Model
//!
//! A flow's bytes are addressed by their offset from the first data byte:
//! `seq - (ISN + 1)` ([`rel_offset`]), so a segment's place is exact whatever
//! order segments arrive in. Each slot keeps the first `bytes_per_flow`
//! bytes of one flow and the ranges of them received (at most [`MAX_RANGES`]
//! disjoint ranges, merged as they touch). [`Reassembly::insert`] answers
//! with the contiguous prefix from offset 0 whenever it grows; the caller
//! parses it, and [`Reassembly::remove`]s the flow once it has a verdict
//! (or on FIN/RST).
//!
//! - Out of order: held while it fits the ranges; the prefix grows when the
//!   gap fills.
//! - Retransmission / overlap: bytes already held must be equal; a segment
//!   that rewrites held bytes with other bytes (an evasion trick: the origin
//!   and Moat could see different streams) ends reassembly for the flow.
//! - Beyond the bound: bytes at offsets `>= bytes_per_flow` are dropped
//!   (a segment entirely beyond is [`Insert::Outside`]); a prefix of
//!   `bytes_per_flow` bytes that still does not parse is the caller's
//!   give-up.
//! - Giving up ([`GiveUp`]): too many gaps, conflicting overlap, too many
//!   segments (a drip of tiny segments would make the caller re-parse the
//!   prefix each time: [`ReassemblyConfig::max_segments`] bounds that work).
//!   The slot is freed and the reason counted in [`ReassemblyStats`].
//!
//! # Memory and eviction
//!
//! All memory is allocated by [`Reassembly::new`]: `slots x bytes_per_flow`
//! bytes of data, a slot array, and an open-addressing index of at least
//! twice as many cells as slots (linear probing, backward-shift deletion, so
//! no tombstones and no rehash). Nothing allocates afterwards, whatever the
//! input ([`Reassembly::memory_bytes`] is constant).
//!
//! Slots form a list in order of last use (LRU). A flow idle for `idle` ns
//! or more is expired: a later segment starts it afresh. A new flow takes a
//! free slot; when there is none, the least recently used slot: expired if
//! its owner is (counted as `expired`), else evicted (counted as `evicted`).
//! LRU keeps the flows whose segments are still arriving, which is what a
//! split hello looks like (its segments come within a round trip); a flow
//! that stalls is the first to go. An attacker holding slots must keep
//! sending, and each of its flows is bounded by `max_segments` and
//! `bytes_per_flow`.
//!
//! The table is keyed by any `K: Copy + Eq + Hash` (the flow key of the
//! caller), hashed with a per-table random key (ahash), so that nobody can
//! aim colliding keys at one probe sequence.

use core::hash::Hash;

use crate::time::{Nanos, SECOND};

/// Most disjoint received ranges a flow may have (so at most 7 gaps): a
/// hello in up to 8 segments arriving in any order, or in fewer segments with
/// retransmissions of lost ones, fits.
pub const MAX_RANGES: usize = 8;
/// Largest `bytes_per_flow`: offsets are `u16`.
pub const MAX_BYTES_PER_FLOW: usize = u16::MAX as usize;
/// Largest number of slots.
pub const MAX_SLOTS: usize = 1 << 24;

const NIL: u32 = u32::MAX;

/// Table sizes and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Flows held at once.
    pub slots: usize,
    /// First bytes kept per flow.
    pub bytes_per_flow: usize,
    /// A flow idle this long is expired.
    pub idle: Nanos,
    /// Segments accepted per flow before giving up.
    pub max_segments: u16,
}

impl Default for ReassemblyConfig {
    /// 2048 flows x 4096 bytes: 8 MiB of data per worker, plus the slots
    /// (104 bytes each with `state::FlowKey` as the key) and the index (4
    /// bytes per cell, 4096 cells): 8,617,984 bytes in all
    /// ([`Reassembly::memory_bytes`]). 4096 bytes hold
    /// any real ClientHello (< 2 KiB) and request header prefix; a flow
    /// waits at most 3 s for its next segment (one initial RTO of 1 s, and
    /// room for its retransmission); 32 segments are 8 times what a hello
    /// cut at the 536-byte minimum MSS needs.
    fn default() -> Self {
        ReassemblyConfig {
            slots: 2048,
            bytes_per_flow: 4096,
            idle: 3 * SECOND,
            max_segments: 32,
        }
    }
}

/// A refused [`ReassemblyConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `slots` is 0 or above [`MAX_SLOTS`].
    Slots,
    /// `bytes_per_flow` is 0 or above [`MAX_BYTES_PER_FLOW`].
    BytesPerFlow,
    /// `max_segments` is 0.
    MaxSegments,
}

/// Why a flow's reassembly was abandoned (its slot is freed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUp {
    /// A segment would leave more than [`MAX_RANGES`] disjoint ranges.
    TooManyGaps,
    /// A segment carries other bytes than those held for the same offsets.
    Conflict,
    /// More than `max_segments` segments.
    TooManySegments,
}

/// What [`Reassembly::insert`] did with a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert<'t> {
    /// The contiguous prefix from offset 0 grew: here it is, whole (at most
    /// `bytes_per_flow` bytes).
    Prefix(&'t [u8]),
    /// New bytes were held, after a gap: the prefix did not change.
    Held,
    /// Nothing new: every byte was already held (a retransmission), or the
    /// payload was empty.
    Duplicate,
    /// The segment lies wholly outside `[0, bytes_per_flow)` (or starts
    /// before offset 0): ignored.
    Outside,
    /// Reassembly of this flow ended; its slot is free.
    GaveUp(GiveUp),
}

/// Counters of one table (one worker), for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Slots taken by new flows.
    pub started: u64,
    /// Live flows pushed out by a new one (table full).
    pub evicted: u64,
    /// Flows found idle past `idle` (reused or restarted).
    pub expired: u64,
    pub gave_up_gaps: u64,
    pub gave_up_conflict: u64,
    pub gave_up_segments: u64,
    /// Segments outside the window.
    pub outside: u64,
}

/// Offset of a segment's first byte from the flow's first data byte, given
/// the client's ISN (from its SYN): `seq - (isn + 1)` modulo 2^32. Values
/// of 2^31 and above are segments before the start (or wild): `insert`
/// treats them as outside.
#[inline]
pub fn rel_offset(seq: u32, isn: u32) -> u32 {
    seq.wrapping_sub(isn.wrapping_add(1))
}

#[derive(Clone, Copy, Debug)]
struct Slot<K> {
    /// `None` while the slot is free.
    key: Option<K>,
    hash: u64,
    last: Nanos,
    /// Disjoint, sorted, non-adjacent `[start, end)` ranges; `nranges` used.
    ranges: [(u16, u16); MAX_RANGES],
    nranges: u8,
    segments: u16,
    /// LRU list (least recently used at `head`), or the free list (`next`).
    prev: u32,
    next: u32,
}

impl<K: Copy> Slot<K> {
    fn prefix_len(&self) -> usize {
        match self.ranges[0] {
            (0, end) if self.nranges > 0 => usize::from(end),
            _ => 0,
        }
    }
}

/// The reassembly table (module docs).
pub struct Reassembly<K> {
    cfg: ReassemblyConfig,
    slots: Box<[Slot<K>]>,
    /// `slots.len() * bytes_per_flow` bytes, slot `i` at `i * bytes_per_flow`.
    data: Box<[u8]>,
    /// Open addressing: slot numbers, `NIL` for an empty cell.
    index: Box<[u32]>,
    mask: usize,
    hasher: ahash::RandomState,
    head: u32,
    tail: u32,
    free: u32,
    len: usize,
    stats: ReassemblyStats,
}

impl<K> core::fmt::Debug for Reassembly<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reassembly")
            .field("cfg", &self.cfg)
            .field("len", &self.len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// How a segment's range relates to what a slot holds.
enum Merge {
    Grew,
    Held,
    Duplicate,
    Gave(GiveUp),
}

impl<K: Copy + Eq + Hash> Reassembly<K> {
    /// Allocates every byte the table will ever use.
    pub fn new(cfg: ReassemblyConfig) -> Result<Self, ConfigError> {
        if cfg.slots == 0 || cfg.slots > MAX_SLOTS {
            return Err(ConfigError::Slots);
        }
        if cfg.bytes_per_flow == 0 || cfg.bytes_per_flow > MAX_BYTES_PER_FLOW {
            return Err(ConfigError::BytesPerFlow);
        }
        if cfg.max_segments == 0 {
            return Err(ConfigError::MaxSegments);
        }
        let cells = (2 * cfg.slots).next_power_of_two();
        let slots: Box<[Slot<K>]> = (0..cfg.slots)
            .map(|i| Slot {
                key: None,
                hash: 0,
                last: 0,
                ranges: [(0, 0); MAX_RANGES],
                nranges: 0,
                segments: 0,
                prev: NIL,
                next: if i + 1 < cfg.slots { (i + 1) as u32 } else { NIL },
            })
            .collect();
        Ok(Reassembly {
            cfg,
            slots,
            data: vec![0u8; cfg.slots * cfg.bytes_per_flow].into_boxed_slice(),
            index: vec![NIL; cells].into_boxed_slice(),
            mask: cells - 1,
            hasher: ahash::RandomState::new(),
            head: NIL,
            tail: NIL,
            free: 0,
            len: 0,
            stats: ReassemblyStats::default(),
        })
    }

    pub fn config(&self) -> &ReassemblyConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Flows held (expired ones included until their slot is reused).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Heap bytes reserved: data, slots and index (constant after `new`).
    pub fn memory_bytes(&self) -> usize {
        self.data.len() + core::mem::size_of_val(&*self.slots) + core::mem::size_of_val(&*self.index)
    }

    /// Whether `key` is being reassembled (and not expired at `now`).
    pub fn contains(&self, key: &K, now: Nanos) -> bool {
        self.find(key, self.hasher.hash_one(key))
            .is_some_and(|(_, s)| now.saturating_sub(self.slots[s as usize].last) < self.cfg.idle)
    }

    /// The contiguous prefix held for `key` (empty when there is none),
    /// whether or not the flow has expired.
    pub fn prefix(&self, key: &K) -> &[u8] {
        match self.find(key, self.hasher.hash_one(key)) {
            Some((_, s)) => self.bytes(s, self.slots[s as usize].prefix_len()),
            None => &[],
        }
    }

    /// Ends reassembly of `key` (a verdict was reached, or FIN/RST). Returns
    /// whether it was held.
    pub fn remove(&mut self, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        match self.find(key, hash) {
            Some((cell, s)) => {
                self.release(cell, s);
                true
            }
            None => false,
        }
    }

    /// Adds a segment of `key`'s flow: `offset` from [`rel_offset`],
    /// `payload` its data. See [`Insert`]. O(`payload.len()`), no allocation.
    pub fn insert(&mut self, key: K, now: Nanos, offset: u32, payload: &[u8]) -> Insert<'_> {
        let bound = self.cfg.bytes_per_flow;
        if payload.is_empty() {
            return Insert::Duplicate;
        }
        if offset >= 1 << 31 || offset as usize >= bound {
            self.stats.outside += 1;
            return Insert::Outside;
        }
        let start = offset as usize;
        let end = (start + payload.len()).min(bound);
        let payload = &payload[..end - start];

        let hash = self.hasher.hash_one(key);
        let s = match self.find(&key, hash) {
            Some((cell, s)) if now.saturating_sub(self.slots[s as usize].last) >= self.cfg.idle => {
                self.stats.expired += 1;
                self.release(cell, s);
                self.take_slot(key, hash, now)
            }
            Some((_, s)) => s,
            None => self.take_slot(key, hash, now),
        };
        let slot = &mut self.slots[s as usize];
        slot.segments = slot.segments.saturating_add(1);
        let outcome = if slot.segments > self.cfg.max_segments {
            Merge::Gave(GiveUp::TooManySegments)
        } else {
            let base = s as usize * bound;
            merge(slot, &mut self.data[base..base + bound], start, payload)
        };
        match outcome {
            Merge::Gave(why) => {
                match why {
                    GiveUp::TooManyGaps => self.stats.gave_up_gaps += 1,
                    GiveUp::Conflict => self.stats.gave_up_conflict += 1,
                    GiveUp::TooManySegments => self.stats.gave_up_segments += 1,
                }
                if let Some((cell, _)) = self.find(&key, hash) {
                    self.release(cell, s);
                }
                Insert::GaveUp(why)
            }
            m => {
                self.slots[s as usize].last = now;
                self.touch(s);
                match m {
                    Merge::Grew => Insert::Prefix(self.bytes(s, self.slots[s as usize].prefix_len())),
                    Merge::Held => Insert::Held,
                    _ => Insert::Duplicate,
                }
            }
        }
    }

    fn bytes(&self, s: u32, n: usize) -> &[u8] {
        let base = s as usize * self.cfg.bytes_per_flow;
        &self.data[base..base + n]
    }

    /// The index cell and slot of `key`.
    fn find(&self, key: &K, hash: u64) -> Option<(usize, u32)> {
        let mut cell = hash as usize & self.mask;
        loop {
            let s = self.index[cell];
            if s == NIL {
                return None;
            }
            let slot = &self.slots[s as usize];
            if slot.hash == hash && slot.key.as_ref() == Some(key) {
                return Some((cell, s));
            }
            cell = (cell + 1) & self.mask;
        }
    }

    /// A slot for a new flow: a free one, else the LRU one (module docs).
    fn take_slot(&mut self, key: K, hash: u64, now: Nanos) -> u32 {
        let s = if self.free != NIL {
            let s = self.free;
            self.free = self.slots[s as usize].next;
            s
        } else {
            let s = self.head;
            let old = self.slots[s as usize];
            if now.saturating_sub(old.last) >= self.cfg.idle {
                self.stats.expired += 1;
            } else {
                self.stats.evicted += 1;
            }
            if let Some((cell, _)) = old.key.and_then(|k| self.find(&k, old.hash)) {
                self.release(cell, s);
            }
            let s = self.free;
            self.free = self.slots[s as usize].next;
            s
        };
        let slot = &mut self.slots[s as usize];
        *slot = Slot {
            key: Some(key),
            hash,
            last: now,
            ranges: [(0, 0); MAX_RANGES],
            nranges: 0,
            segments: 0,
            prev: NIL,
            next: NIL,
        };
        self.link_tail(s);
        let mut cell = hash as usize & self.mask;
        while self.index[cell] != NIL {
            cell = (cell + 1) & self.mask;
        }
        self.index[cell] = s;
        self.len += 1;
        self.stats.started += 1;
        s
    }

    /// Frees slot `s`, whose key sits in index cell `cell`.
    fn release(&mut self, cell: usize, s: u32) {
        self.unlink(s);
        let slot = &mut self.slots[s as usize];
        slot.key = None;
        slot.next = self.free;
        self.free = s;
        self.len -= 1;
        // Backward-shift deletion: move later cells of the probe run into
        // the hole when their home cell is not between the hole and them.
        let mut hole = cell;
        let mut j = cell;
        self.index[hole] = NIL;
        loop {
            j = (j + 1) & self.mask;
            let t = self.index[j];
            if t == NIL {
                return;
            }
            let home = self.slots[t as usize].hash as usize & self.mask;
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.index[hole] = t;
                self.index[j] = NIL;
                hole = j;
            }
        }
    }

    fn link_tail(&mut self, s: u32) {
        self.slots[s as usize].prev = self.tail;
        self.slots[s as usize].next = NIL;
        if self.tail != NIL {
            self.slots[self.tail as usize].next = s;
        } else {
            self.head = s;
        }
        self.tail = s;
    }

    fn unlink(&mut self, s: u32) {
        let (prev, next) = (self.slots[s as usize].prev, self.slots[s as usize].next);
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    /// Moves `s` to the most recently used end.
    fn touch(&mut self, s: u32) {
        if self.tail != s {
            self.unlink(s);
            self.link_tail(s);
        }
    }
}

/// Adds `[start, start + payload.len())` to the slot's ranges and bytes
/// (`buf` is the slot's data, `start + payload.len() <= buf.len()`).
fn merge<K: Copy>(slot: &mut Slot<K>, buf: &mut [u8], start: usize, payload: &[u8]) -> Merge {
    let end = start + payload.len();
    let n = usize::from(slot.nranges);
    // Held bytes inside the new range must be the same bytes.
    let mut covered = 0;
    for &(a, b) in &slot.ranges[..n] {
        let (lo, hi) = (start.max(usize::from(a)), end.min(usize::from(b)));
        if lo < hi {
            if buf[lo..hi] != payload[lo - start..hi - start] {
                return Merge::Gave(GiveUp::Conflict);
            }
            covered += hi - lo;
        }
    }
    if covered == payload.len() {
        return Merge::Duplicate;
    }
    // Ranges after the merge: those wholly before, the union of the ones
    // touching [start, end), those wholly after.
    let mut out = [(0u16, 0u16); MAX_RANGES + 1];
    let mut k = 0;
    let (mut lo, mut hi) = (start, end);
    let mut placed = false;
    for &(a, b) in &slot.ranges[..n] {
        let (a, b) = (usize::from(a), usize::from(b));
        if b < lo {
            out[k] = (a as u16, b as u16);
            k += 1;
        } else if a > hi {
            if !placed {
                out[k] = (lo as u16, hi as u16);
                k += 1;
                placed = true;
            }
            out[k] = (a as u16, b as u16);
            k += 1;
        } else {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    if !placed {
        out[k] = (lo as u16, hi as u16);
        k += 1;
    }
    if k > MAX_RANGES {
        return Merge::Gave(GiveUp::TooManyGaps);
    }
    let before = slot.prefix_len();
    buf[start..end].copy_from_slice(payload);
    slot.ranges[..k].copy_from_slice(&out[..k]);
    slot.nranges = k as u8;
    if slot.prefix_len() > before {
        Merge::Grew
    } else {
        Merge::Held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Nanos = 1_000 * SECOND;

    fn table(slots: usize, bytes: usize) -> Reassembly<u32> {
        Reassembly::new(ReassemblyConfig {
            slots,
            bytes_per_flow: bytes,
            ..Default::default()
        })
        .unwrap()
    }

    fn stream(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn in_order_and_out_of_order() {
        let s = stream(1800);
        let mut t = table(4, 4096);
        assert_eq!(t.insert(1, T, 0, &s[..700]), Insert::Prefix(&s[..700]));
        assert_eq!(t.insert(1, T, 1400, &s[1400..]), Insert::Held);
        assert_eq!(t.insert(1, T, 700, &s[700..1400]), Insert::Prefix(&s[..]));
        // Every byte again: a retransmission.
        assert_eq!(t.insert(1, T, 0, &s), Insert::Duplicate);
        assert_eq!(t.prefix(&1), &s[..]);
        assert!(t.remove(&1));
        assert!(!t.remove(&1));
        assert!(t.is_empty());
    }

    #[test]
    fn overlapping_retransmissions_and_conflicts() {
        let s = stream(1000);
        let mut t = table(4, 4096);
        assert_eq!(t.insert(7, T, 100, &s[100..600]), Insert::Held);
        // Overlaps the held range on both sides, same bytes: fills 0..100.
        assert_eq!(t.insert(7, T, 0, &s[..800]), Insert::Prefix(&s[..800]));
        let mut bad = s[700..900].to_vec();
        bad[50] ^= 1; // offset 750, already held
        assert_eq!(t.insert(7, T, 700, &bad), Insert::GaveUp(GiveUp::Conflict));
        assert!(!t.contains(&7, T));
        assert_eq!(t.stats().gave_up_conflict, 1);
        // A differing byte beyond what is held is no conflict.
        assert_eq!(t.insert(8, T, 0, &s[..10]), Insert::Prefix(&s[..10]));
        assert_eq!(
            t.insert(8, T, 5, &[s[5], s[6], s[7], s[8], s[9], 0xee]),
            Insert::Prefix(&[&s[..10], &[0xee][..]].concat())
        );
    }

    #[test]
    fn gaps_are_bounded() {
        let s = stream(200);
        let mut t = table(2, 4096);
        for i in 0..MAX_RANGES {
            let off = 10 + 20 * i;
            assert_eq!(t.insert(1, T, off as u32, &s[off..off + 5]), Insert::Held, "range {i}");
        }
        let off = 10 + 20 * MAX_RANGES;
        assert_eq!(
            t.insert(1, T, off as u32, &s[off..off + 5]),
            Insert::GaveUp(GiveUp::TooManyGaps)
        );
        assert_eq!(t.stats().gave_up_gaps, 1);
        // Bridging ranges merges them.
        for off in [10usize, 30, 50, 70] {
            t.insert(2, T, off as u32, &s[off..off + 5]);
        }
        assert_eq!(t.insert(2, T, 12, &s[12..60]), Insert::Held);
        assert_eq!(t.insert(2, T, 0, &s[..10]), Insert::Prefix(&s[..60]));
        assert_eq!(t.insert(2, T, 60, &s[60..75]), Insert::Prefix(&s[..75]));
    }

    #[test]
    fn window_bound() {
        let s = stream(300);
        let mut t = table(2, 256);
        assert_eq!(t.insert(1, T, 256, &s[256..]), Insert::Outside);
        assert_eq!(t.insert(1, T, u32::MAX - 10, &s), Insert::Outside);
        assert!(t.is_empty(), "outside segments take no slot");
        // A segment crossing the bound keeps what fits.
        assert_eq!(t.insert(1, T, 200, &s[200..]), Insert::Held);
        assert_eq!(t.insert(1, T, 0, &s[..200]), Insert::Prefix(&s[..256]));
        assert_eq!(t.insert(1, T, 0, &[]), Insert::Duplicate);
        assert_eq!(t.stats().outside, 2);
    }

    #[test]
    fn segment_limit() {
        let mut t = Reassembly::new(ReassemblyConfig {
            slots: 2,
            bytes_per_flow: 4096,
            idle: SECOND,
            max_segments: 3,
        })
        .unwrap();
        let s = stream(10);
        for i in 0..3 {
            assert!(matches!(
                t.insert(5u64, T, i, &s[i as usize..i as usize + 1]),
                Insert::Prefix(_)
            ));
        }
        assert_eq!(t.insert(5, T, 3, &s[3..4]), Insert::GaveUp(GiveUp::TooManySegments));
        assert_eq!(t.stats().gave_up_segments, 1);
    }

    #[test]
    fn lru_eviction_and_expiry() {
        let s = stream(10);
        let mut t = table(3, 64);
        for k in 1..=3u32 {
            t.insert(k, T + u64::from(k), 0, &s[..1]);
        }
        // 1 is used again, so 2 is the least recently used.
        t.insert(1, T + 10, 1, &s[1..2]);
        t.insert(4, T + 11, 0, &s[..1]);
        assert_eq!(t.stats().evicted, 1);
        assert!(!t.contains(&2, T + 11) && t.contains(&1, T + 11) && t.contains(&3, T + 11));
        // Everything idle past 3 s: the next flow takes an expired slot.
        let later = T + 11 + 3 * SECOND;
        assert!(!t.contains(&1, later));
        t.insert(5, later, 0, &s[..1]);
        assert_eq!((t.stats().evicted, t.stats().expired), (1, 1));
        // An expired flow's next segment starts it afresh.
        assert_eq!(t.insert(1, later, 2, &s[2..3]), Insert::Held);
        assert_eq!(t.stats().expired, 2);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn index_survives_churn() {
        // Many keys through a small table: every live key stays findable
        // (backward-shift deletion keeps probe runs intact).
        let s = stream(4);
        let mut t = table(8, 16);
        let mut live: Vec<u32> = Vec::new();
        for k in 0..5000u32 {
            t.insert(k, T, 0, &s[..1]);
            live.push(k);
            if live.len() > 8 {
                live.remove(0);
            }
            if k % 3 == 0 {
                let gone = live.remove(live.len() / 2);
                assert!(t.remove(&gone));
            }
            for l in &live {
                assert!(t.contains(l, T), "key {l} lost at {k}");
            }
            assert_eq!(t.len(), live.len());
        }
    }

    #[test]
    fn config_and_memory() {
        let bad = |c: ReassemblyConfig| Reassembly::<u32>::new(c).unwrap_err();
        let d = ReassemblyConfig::default();
        assert_eq!(bad(ReassemblyConfig { slots: 0, ..d }), ConfigError::Slots);
        assert_eq!(
            bad(ReassemblyConfig {
                bytes_per_flow: 65536,
                ..d
            }),
            ConfigError::BytesPerFlow
        );
        assert_eq!(bad(ReassemblyConfig { max_segments: 0, ..d }), ConfigError::MaxSegments);
        let mut t = Reassembly::<u64>::new(d).unwrap();
        let m = t.memory_bytes();
        assert!(m >= d.slots * d.bytes_per_flow);
        for k in 0..10_000u64 {
            t.insert(k, T + k, (k % 5000) as u32, &[1, 2, 3]);
        }
        assert_eq!(t.memory_bytes(), m);
        assert_eq!(t.len(), d.slots);
        assert_eq!(rel_offset(1001, 1000), 0);
        assert_eq!(rel_offset(5, u32::MAX), 5);
    }
}
