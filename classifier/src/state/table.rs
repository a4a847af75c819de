//! The fixed-capacity table under every per-core table (flows, verified
//! sources, per-source buckets): a slot array with CLOCK (second chance)
//! eviction and an index of slot numbers.
//!
//! Contract:
//! - All memory is reserved by [`Table::with_capacity`]; no operation
//!   allocates afterwards, whatever the keys (a flood of random spoofed
//!   sources recycles slots, it never grows anything).
//! - `len() <= capacity()` always; inserting into a full table evicts.
//! - Every operation is O(1) amortised, and one insert visits at most
//!   [`MAX_SCAN`] + [`LOOKAHEAD`] slots, so no packet pays for a full sweep.
//! - Nothing panics: slot numbers come only from the index, which only holds
//!   numbers below `slots.len()`, and every access goes through `get`.
//!
//! The index is open addressing with linear probing over `u64` entries
//! (32 bits of the key's hash, then the slot number), at most half full:
//! it has a power of two of at least `2 * cap` entries, so a probe ends at
//! an empty entry within a few neighbours, eight to a cache line. A removal
//! shifts the entries after it back (Knuth's algorithm R), so there are no
//! tombstones and nothing ever needs a rehash. The first line a key's probe
//! reads is known from its hash alone ([`Table::index_line`]): the worker
//! computes the hashes of a whole burst first and prefetches those lines
//! (DESIGN.md, the two-stage burst), then probes with the hashes it has
//! ([`Table::probe_hashed`]).
//!
//! Eviction (CLOCK): each slot has a reference bit, set by a *hit* (a lookup
//! that used the entry), not by the insert. The hand clears set bits as it
//! passes and evicts the first slot whose bit is clear. A new entry thus
//! survives only if it is used again before the hand comes round: a flood of
//! one-packet spoofed sources recycles its own slots while entries in real
//! use get their second chance. Expired entries are taken first wherever the
//! hand meets them, referenced or not, and the hand looks a few slots past an
//! eviction candidate for an expired one before evicting a live entry.

use core::hash::{Hash, Hasher};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Largest capacity of one table: slot numbers are `u32` in the index, and
/// the index (twice the capacity, rounded up to a power of two) must have
/// positions that fit the 32 hash bits an entry keeps.
pub const MAX_CAPACITY: usize = 1 << 30;

/// Most slots the hand visits for one eviction before it evicts the slot it
/// stands on, referenced or not. CLOCK is O(1) amortised (each bit cleared
/// was set by one hit), but a single insert into a table whose entries are
/// all referenced would otherwise sweep all of it: 65536 slots is ~100 µs
/// stolen from one burst. Past this bound the oldest-by-position entry goes.
pub const MAX_SCAN: usize = 128;

/// Slots looked at past an eviction candidate for an expired entry, which is
/// taken instead. Short, so that they are adjacent cache lines.
pub const LOOKAHEAD: usize = 4;

/// Where a slot stands in the CLOCK.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mark {
    /// On the free list.
    Free,
    /// Holds an entry not used since the hand last passed (or since insert).
    Live,
    /// Holds an entry used since the hand last passed: a second chance.
    Referenced,
}

#[derive(Clone, Copy, Debug)]
struct Slot<K, V> {
    key: K,
    val: V,
    mark: Mark,
}

/// An empty index entry: no slot has the number `u32::MAX`.
const EMPTY: u64 = u64::MAX;

/// The 32 hash bits an index entry keeps (the high half: ahash mixes its
/// output, and the low bits of the position come from these).
#[inline]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// Size of one slot of a `Table<K, V>`, for compile-time size asserts on the
/// hot tables (STYLE.md: sizes of hot structs are pinned).
pub const fn slot_size<K, V>() -> usize {
    core::mem::size_of::<Slot<K, V>>()
}

/// A successful probe: the key's slot and its position in the index. Valid
/// until the next call that changes the table.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pos: u32,
    slot: u32,
}

/// A failed probe: the key's hash, to insert it without hashing again.
#[derive(Clone, Copy, Debug)]
pub struct Miss {
    hash: u64,
}

/// Where [`Table::insert`] put the new entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placed {
    /// In a free slot.
    Free,
    /// In the slot of an expired entry.
    Expired,
    /// In the slot of a live entry, pushed out to make room.
    Evicted,
}

/// A fixed-capacity map from `K` to `V` with CLOCK eviction (module docs).
pub struct Table<K, V> {
    /// Filled by `push` up to `cap` (the `Vec` never reallocates: its
    /// capacity is `cap`), then recycled in place.
    slots: Vec<Slot<K, V>>,
    /// `hash32 << 32 | slot` per entry, [`EMPTY`] where none (module docs).
    index: Box<[u64]>,
    /// `index.len() - 1`.
    mask: usize,
    /// Slots freed by `remove`/`sweep`; at most `cap` of them.
    free: Vec<u32>,
    hand: usize,
    sweep_at: usize,
    len: usize,
    cap: usize,
    /// Random keys (ahash runtime RNG), so that nobody can aim a flood of
    /// colliding keys at one probe sequence.
    hasher: ahash::RandomState,
}

impl<K, V> core::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .field("capacity", &self.cap)
            .finish_non_exhaustive()
    }
}

impl<K: Copy + Eq + Hash, V: Copy> Table<K, V> {
    /// A table for `cap` entries, clamped to `1..=MAX_CAPACITY`, with all of
    /// its memory reserved now.
    pub fn with_capacity(cap: usize) -> Self {
        Self::with_hasher(cap, ahash::RandomState::new())
    }

    /// [`Table::with_capacity`] with the given hash keys (tables whose keys
    /// hash alike share them, so that one hash probes both).
    pub fn with_hasher(cap: usize, hasher: ahash::RandomState) -> Self {
        let cap = cap.clamp(1, MAX_CAPACITY);
        // At most half full: see the module docs.
        let size = (2 * cap).next_power_of_two();
        Table {
            slots: Vec::with_capacity(cap),
            index: vec![EMPTY; size].into_boxed_slice(),
            mask: size - 1,
            free: Vec::with_capacity(cap),
            hand: 0,
            sweep_at: 0,
            len: 0,
            cap,
            hasher,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes reserved on the heap by this table (constant after
    /// construction).
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Slot<K, V>>()
            + self.free.capacity() * core::mem::size_of::<u32>()
            + self.index.len() * core::mem::size_of::<u64>()
    }

    /// The hash of `key` (random per table), for [`Table::probe_hashed`]
    /// and [`Table::index_line`].
    #[inline]
    pub fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The index position where the probe of a key with this hash starts.
    #[inline]
    fn home(&self, hash32: u32) -> usize {
        hash32 as usize & self.mask
    }

    /// The address of the first index entry the probe of a key with this
    /// hash reads: what a worker prefetches a burst ahead. Only an address,
    /// never dereferenced here.
    #[inline]
    pub fn index_line(&self, hash: u64) -> *const u8 {
        let at = self.home(tag(hash));
        self.index.as_ptr().wrapping_add(at).cast()
    }

    /// Looks `key` up.
    #[inline]
    pub fn probe(&self, key: &K) -> Result<Hit, Miss> {
        self.probe_hashed(self.hash(key), key)
    }

    /// Looks `key` up with its hash ([`Table::hash`]) computed earlier.
    #[inline]
    pub fn probe_hashed(&self, hash: u64, key: &K) -> Result<Hit, Miss> {
        let t = tag(hash);
        let mut at = self.home(t);
        // Ends at an empty entry: the index is at most half full, so one
        // comes within a few steps (and `get` ends it at worst).
        while let Some(&e) = self.index.get(at) {
            if e == EMPTY {
                break;
            }
            if (e >> 32) as u32 == t {
                let slot = e as u32;
                if self.slots.get(slot as usize).is_some_and(|s| s.key == *key) {
                    return Ok(Hit { pos: at as u32, slot });
                }
            }
            at = (at + 1) & self.mask;
        }
        Err(Miss { hash })
    }

    /// The value of a hit, without counting it as a use.
    #[inline]
    pub fn get(&self, hit: Hit) -> Option<&V> {
        self.slots.get(hit.slot as usize).map(|s| &s.val)
    }

    /// The value of a hit, counting it as a use (sets the reference bit).
    #[inline]
    pub fn get_mut(&mut self, hit: Hit) -> Option<&mut V> {
        let s = self.slots.get_mut(hit.slot as usize)?;
        s.mark = Mark::Referenced;
        Some(&mut s.val)
    }

    /// The value of a hit, for overwriting it with a new entry of the same
    /// key: the slot loses its second chance like any new entry.
    #[inline]
    pub fn renew(&mut self, hit: Hit) -> Option<&mut V> {
        let s = self.slots.get_mut(hit.slot as usize)?;
        s.mark = Mark::Live;
        Some(&mut s.val)
    }

    /// Removes the entry of a hit.
    pub fn remove(&mut self, hit: Hit) {
        if self
            .index
            .get(hit.pos as usize)
            .is_some_and(|&e| e as u32 == hit.slot && e != EMPTY)
        {
            self.unlink(hit.pos as usize);
            self.release(hit.slot);
        }
    }

    /// Empties index position `at` and shifts the entries after it back
    /// where their probes still find them (Knuth, TAOCP vol. 3, 6.4,
    /// algorithm R): no tombstones.
    fn unlink(&mut self, mut at: usize) {
        let mut next = at;
        loop {
            next = (next + 1) & self.mask;
            // The run after `at` ends at an empty entry (at most half full).
            let e = self.index.get(next).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                break;
            }
            let home = self.home((e >> 32) as u32);
            // The entry at `next` may move to `at` unless its home lies
            // cyclically in (at, next].
            let stays = if at <= next {
                at < home && home <= next
            } else {
                at < home || home <= next
            };
            if !stays {
                if let Some(x) = self.index.get_mut(at) {
                    *x = e;
                }
                at = next;
            }
        }
        if let Some(x) = self.index.get_mut(at) {
            *x = EMPTY;
        }
    }

    /// Adds `slot` to the index under `hash`.
    fn link(&mut self, hash: u64, slot: u32) {
        let t = tag(hash);
        let mut at = self.home(t);
        // At most half full: an empty entry comes within a few steps.
        while let Some(x) = self.index.get_mut(at) {
            if *x == EMPTY {
                *x = (u64::from(t) << 32) | u64::from(slot);
                return;
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Marks a slot free once its index entry is gone.
    fn release(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.mark = Mark::Free;
            // Cannot exceed `cap` (reserved): only occupied slots are freed.
            self.free.push(slot);
            self.len -= 1;
        }
    }

    /// Inserts `key`, which a probe just missed (`miss` is that probe's
    /// answer). When the table is full, evicts by CLOCK; `dead` says which
    /// entries have expired and may be taken first.
    #[inline]
    pub fn insert(&mut self, miss: Miss, key: K, val: V, mut dead: impl FnMut(&V) -> bool) -> Placed {
        let new = Slot {
            key,
            val,
            mark: Mark::Live,
        };
        // The entry is written once, into its slot: no copy of the one it
        // replaces (a spoofed flood inserts on every packet).
        let (slot, placed) = match self.make_room(&mut dead) {
            Some((at, placed)) => {
                if let Some(s) = self.slots.get_mut(at) {
                    *s = new;
                }
                (at as u32, placed)
            }
            None => {
                // Never reallocates: the capacity was reserved for `cap` slots.
                self.slots.push(new);
                ((self.slots.len() - 1) as u32, Placed::Free)
            }
        };
        self.link(miss.hash, slot);
        self.len += 1;
        placed
    }

    /// [`Table::insert`], also returning the entry that left to make room
    /// (expired or evicted), so that a caller keeping counts over the
    /// entries can settle them.
    pub fn insert_take(
        &mut self,
        miss: Miss,
        key: K,
        val: V,
        mut dead: impl FnMut(&V) -> bool,
    ) -> (Placed, Option<(K, V)>) {
        let new = Slot {
            key,
            val,
            mark: Mark::Live,
        };
        let (slot, placed, old) = match self.make_room(&mut dead) {
            Some((at, placed)) => {
                let old = self.slots.get_mut(at).map(|s| {
                    let old = (s.key, s.val);
                    *s = new;
                    old
                });
                let old = if placed == Placed::Free { None } else { old };
                (at as u32, placed, old)
            }
            None => {
                // Never reallocates: the capacity was reserved for `cap` slots.
                self.slots.push(new);
                ((self.slots.len() - 1) as u32, Placed::Free, None)
            }
        };
        self.link(miss.hash, slot);
        self.len += 1;
        (placed, old)
    }

    /// The slot a new entry goes into: a free one, or (the table full) the
    /// victim of the CLOCK, unindexed; `None` when the slot array still
    /// has reserved room to push into.
    #[inline]
    fn make_room(&mut self, dead: &mut impl FnMut(&V) -> bool) -> Option<(usize, Placed)> {
        if let Some(slot) = self.free.pop() {
            return Some((slot as usize, Placed::Free));
        }
        if self.slots.len() < self.cap {
            return None;
        }
        let (victim, live) = self.victim(dead);
        self.unindex(victim);
        self.len -= 1;
        Some((victim, if live { Placed::Evicted } else { Placed::Expired }))
    }

    /// Drops the index entry of an occupied slot.
    fn unindex(&mut self, slot: usize) {
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        let t = tag(self.hash(&s.key));
        let mut at = self.home(t);
        while let Some(&e) = self.index.get(at) {
            if e == EMPTY {
                return;
            }
            if e as u32 as usize == slot {
                self.unlink(at);
                return;
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Moves the hand to the slot to evict; `true` when it holds a live
    /// entry. Called only when the table is full (no free slot).
    fn victim(&mut self, dead: &mut impl FnMut(&V) -> bool) -> (usize, bool) {
        let n = self.slots.len();
        for _ in 0..MAX_SCAN {
            let at = self.hand;
            self.hand = if at + 1 == n { 0 } else { at + 1 };
            let Some(s) = self.slots.get_mut(at) else {
                continue;
            };
            if dead(&s.val) {
                return (at, false);
            }
            match s.mark {
                Mark::Referenced => s.mark = Mark::Live,
                Mark::Live | Mark::Free => return self.prefer_expired(at, dead),
            }
        }
        // Every slot seen was referenced: evict where the hand stands (its
        // bit was cleared one lap ago at most, or just now).
        let at = self.hand;
        self.hand = if at + 1 == n { 0 } else { at + 1 };
        (at, true)
    }

    /// `at` is an unreferenced live entry; takes an expired entry among the
    /// next [`LOOKAHEAD`] slots instead, if there is one (the hand then
    /// stays on `at`, which remains the next candidate).
    fn prefer_expired(&mut self, at: usize, dead: &mut impl FnMut(&V) -> bool) -> (usize, bool) {
        let n = self.slots.len();
        for step in 1..=LOOKAHEAD.min(n - 1) {
            // No division per insert: `step < n`, so one subtraction wraps.
            let mut j = at + step;
            if j >= n {
                j -= n;
            }
            if self.slots.get(j).is_some_and(|s| dead(&s.val)) {
                self.hand = at;
                return (j, false);
            }
        }
        (at, true)
    }

    /// Frees expired entries among the next `budget` slots (a cursor of its
    /// own goes round the table), so that inserts find free slots instead
    /// of evicting. Meant for the quiet time between bursts. Returns how
    /// many entries it freed.
    pub fn sweep(&mut self, budget: usize, mut dead: impl FnMut(&V) -> bool) -> usize {
        self.sweep_take(budget, |_, v| dead(v), |_, _| {})
    }

    /// [`Table::sweep`] with the key in the predicate, handing each freed
    /// entry to `gone`.
    pub fn sweep_take(
        &mut self,
        budget: usize,
        mut dead: impl FnMut(&K, &V) -> bool,
        mut gone: impl FnMut(K, V),
    ) -> usize {
        let n = self.slots.len();
        let mut freed = 0;
        for _ in 0..budget.min(n) {
            let at = if self.sweep_at >= n { 0 } else { self.sweep_at };
            self.sweep_at = at + 1;
            let expired = self
                .slots
                .get(at)
                .filter(|s| s.mark != Mark::Free && dead(&s.key, &s.val))
                .map(|s| (s.key, s.val));
            if let Some((k, v)) = expired {
                self.unindex(at);
                self.release(at as u32);
                gone(k, v);
                freed += 1;
            }
        }
        freed
    }

    /// Forgets every entry, keeping all reserved memory.
    pub fn clear(&mut self) {
        self.index.fill(EMPTY);
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
        self.sweep_at = 0;
        self.len = 0;
    }

    /// Every stored entry (expired ones included), in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.mark != Mark::Free)
            .map(|s| (&s.key, &s.val))
    }
}

/// An IP address as a compact, exact key: IPv4 in `lo` with `hi == 0`, IPv6
/// as two words; the family flag keeps `1.2.3.4` and `::1.2.3.4` apart.
/// 24 bytes with 8-byte alignment, where `IpAddr` + a `u128` form would
/// take 32 and align to 16.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AddrKey {
    hi: u64,
    lo: u64,
    /// Distinguishes entries of one address (the per-source buckets are per
    /// service); 0 where unused. Fits in the padding after `v6`.
    tag: u16,
    v6: bool,
}

const _: () = assert!(core::mem::size_of::<AddrKey>() <= 24);

impl AddrKey {
    #[inline]
    pub fn new(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => AddrKey {
                hi: 0,
                lo: u64::from(u32::from(a)),
                tag: 0,
                v6: false,
            },
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                AddrKey {
                    hi: (bits >> 64) as u64,
                    lo: bits as u64,
                    tag: 0,
                    v6: true,
                }
            }
        }
    }

    /// The key of an address of the family `v6` says (the packet path).
    #[inline]
    pub const fn of(a: crate::parse::Addr, v6: bool) -> Self {
        AddrKey {
            hi: a.hi,
            lo: a.lo,
            tag: 0,
            v6,
        }
    }

    /// The same key tagged with `tag`.
    #[inline]
    pub const fn with_tag(self, tag: u16) -> Self {
        AddrKey { tag, ..self }
    }

    /// The key of `ip` tagged with `tag` (e.g. a service index).
    #[inline]
    pub fn tagged(ip: IpAddr, tag: u16) -> Self {
        AddrKey {
            tag,
            ..AddrKey::new(ip)
        }
    }

    pub fn ip(self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from((u128::from(self.hi) << 64) | u128::from(self.lo)))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.lo as u32))
        }
    }
}

impl Hash for AddrKey {
    /// One word for IPv4, two for IPv6: ahash costs one multiply per word.
    /// `1.2.3.4` and `::1.2.3.4` hash alike, and so do the tags of one
    /// address; equality tells them apart. Without the tag, one hash serves
    /// the verified sources and the per-source buckets, which share a
    /// hasher ([`Table::with_hasher`]): stage one of a burst hashes a
    /// source once for both.
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.lo);
        if self.v6 {
            h.write_u64(self.hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &u32) -> bool {
        false
    }

    fn put(t: &mut Table<u32, u32>, k: u32) -> Placed {
        let miss = t.probe(&k).expect_err("absent");
        t.insert(miss, k, k, never)
    }

    #[test]
    fn hits_misses_and_values() {
        let mut t = Table::<u32, u32>::with_capacity(4);
        assert_eq!(put(&mut t, 7), Placed::Free);
        let hit = t.probe(&7).expect("present");
        assert_eq!(t.get(hit), Some(&7));
        *t.get_mut(hit).expect("slot") = 70;
        assert_eq!(t.get(t.probe(&7).expect("present")), Some(&70));
        assert!(t.probe(&8).is_err());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn clock_gives_referenced_entries_a_second_chance() {
        let mut t = Table::<u32, u32>::with_capacity(4);
        for k in 0..4 {
            put(&mut t, k);
        }
        // Use 0 and 2: the hand clears their bits and evicts 1, then 3.
        for k in [0, 2] {
            let hit = t.probe(&k).expect("present");
            t.get_mut(hit);
        }
        assert_eq!(put(&mut t, 10), Placed::Evicted);
        assert!(t.probe(&1).is_err());
        assert_eq!(put(&mut t, 11), Placed::Evicted);
        assert!(t.probe(&3).is_err());
        // 0 and 2 lost their bits on the first lap: next in line is 0.
        assert_eq!(put(&mut t, 12), Placed::Evicted);
        assert!(t.probe(&0).is_err());
        for k in [2, 10, 11, 12] {
            assert!(t.probe(&k).is_ok(), "{k} kept");
        }
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn expired_entries_are_taken_before_live_ones() {
        let mut t = Table::<u32, u32>::with_capacity(4);
        for k in 0..4 {
            put(&mut t, k);
        }
        // Values >= 100 count as expired. Entry 2 is expired; 0 is the
        // first candidate but the lookahead finds 2.
        let hit = t.probe(&2).expect("present");
        *t.get_mut(hit).expect("slot") = 100;
        let miss = t.probe(&9).expect_err("absent");
        assert_eq!(t.insert(miss, 9, 9, |v| *v >= 100), Placed::Expired);
        assert!(t.probe(&2).is_err());
        assert!(t.probe(&0).is_ok());
    }

    #[test]
    fn remove_frees_a_slot_that_is_reused() {
        let mut t = Table::<u32, u32>::with_capacity(2);
        put(&mut t, 1);
        put(&mut t, 2);
        let hit = t.probe(&1).expect("present");
        t.remove(hit);
        assert_eq!(t.len(), 1);
        assert!(t.probe(&1).is_err());
        assert_eq!(put(&mut t, 3), Placed::Free);
        assert_eq!(t.len(), 2);
        assert!(t.probe(&2).is_ok() && t.probe(&3).is_ok());
    }

    #[test]
    fn sweep_frees_expired_and_clear_empties() {
        let mut t = Table::<u32, u32>::with_capacity(8);
        for k in 0..8 {
            put(&mut t, k);
        }
        assert_eq!(t.sweep(100, |v| *v % 2 == 0), 4);
        assert_eq!(t.len(), 4);
        assert!(t.probe(&2).is_err() && t.probe(&3).is_ok());
        assert_eq!(t.iter().count(), 4);
        let bytes = t.memory_bytes();
        t.clear();
        assert!(t.is_empty() && t.probe(&3).is_err());
        assert_eq!(t.memory_bytes(), bytes);
    }

    #[test]
    fn scan_is_bounded_when_everything_is_referenced() {
        let cap = 4 * MAX_SCAN;
        let mut t = Table::<u32, u32>::with_capacity(cap);
        for k in 0..cap as u32 {
            put(&mut t, k);
            let hit = t.probe(&k).expect("present");
            t.get_mut(hit);
        }
        // All referenced: the bounded hand evicts slot MAX_SCAN (key 128).
        assert_eq!(put(&mut t, 1_000_000), Placed::Evicted);
        assert!(t.probe(&(MAX_SCAN as u32)).is_err());
        assert!(t.probe(&0).is_ok());
        assert_eq!(t.len(), cap);
    }

    #[test]
    fn capacity_is_clamped_and_never_exceeded() {
        let mut t = Table::<u32, u32>::with_capacity(0);
        assert_eq!(t.capacity(), 1);
        for k in 0..100 {
            put(&mut t, k);
            assert_eq!(t.len(), 1);
        }
        assert!(t.probe(&99).is_ok());
    }

    proptest::proptest! {
        /// The index agrees with a map through inserts, removals, evictions
        /// and sweeps of colliding keys (a small table: long probe runs that
        /// wrap around its end).
        #[test]
        fn index_agrees_with_a_model(ops in proptest::collection::vec((0u8..3, 0u32..40), 1..400)) {
            let mut t = Table::<u32, u32>::with_capacity(16);
            let mut model = std::collections::HashMap::new();
            for (op, k) in ops {
                match (op, t.probe(&k)) {
                    (0, Err(miss)) => {
                        t.insert(miss, k, k, never);
                        model.insert(k, k);
                        // An eviction made room: forget what the table forgot.
                        model.retain(|key, _| t.probe(key).is_ok());
                    }
                    (1, Ok(hit)) => {
                        t.remove(hit);
                        model.remove(&k);
                    }
                    (2, _) => {
                        t.sweep(3, |v| v % 7 == 0);
                        model.retain(|key, _| t.probe(key).is_ok());
                    }
                    _ => {}
                }
                proptest::prop_assert_eq!(t.len(), model.len());
                proptest::prop_assert!(t.len() <= 16);
                for key in model.keys() {
                    let hit = t.probe(key);
                    proptest::prop_assert!(hit.is_ok(), "{} lost", key);
                    proptest::prop_assert_eq!(hit.ok().and_then(|h| t.get(h)), Some(key));
                }
                proptest::prop_assert_eq!(t.index.iter().filter(|&&e| e != EMPTY).count(), t.len());
            }
        }
    }

    #[test]
    fn addr_keys_are_exact() {
        let v4: IpAddr = "1.2.3.4".parse().expect("v4");
        let compat: IpAddr = "::1.2.3.4".parse().expect("v6");
        let v6: IpAddr = "2001:db8::1".parse().expect("v6");
        assert_ne!(AddrKey::new(v4), AddrKey::new(compat));
        for ip in [v4, compat, v6] {
            assert_eq!(AddrKey::new(ip).ip(), ip);
        }
    }
}
