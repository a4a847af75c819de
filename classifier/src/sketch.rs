//! Heavy hitters: a count-min sketch with conservative update, and a top-k of
//! the heaviest keys on top of it (DESIGN.md, "Fingerprints": during an
//! attack, heavy-hitter fingerprints among attack packets become temporary
//! drop rules).
//!
//! Contract: fixed memory after `new`; `add` allocates nothing and never
//! panics; `top`/`propose` are control-side (they allocate their answer).
//!
//! Error bound (Cormode & Muthukrishnan 2005): with `width` w and `depth` d,
//! an estimate never undercounts, and overcounts by more than `e / w` of the
//! total weight with probability at most `e^-d`. Conservative update (raise
//! each row only to `min + w`, Estan & Varghese 2002) keeps that bound and is
//! much tighter on skewed streams.
//!
//! Rows are indexed by double hashing of one 64-bit hash, `h1 + i * h2`
//! (Kirsch & Mitzenmacher 2006: the same asymptotic error as d independent
//! hashes, one hash computation per key). The hasher has fixed seeds, so a
//! given build gives the same answers on every run.

use core::hash::Hash;

/// Fixed seeds (digits of pi): deterministic results.
const SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// Most rows of a sketch: `e^-16` failure probability is beyond need.
pub const MAX_DEPTH: usize = 16;

/// Count-min sketch, `depth` rows x `width` (power of two) u32 counters,
/// conservative update, fixed seeds (`ahash::RandomState::with_seeds`) so
/// results are deterministic. Counters saturate at `u32::MAX`.
#[derive(Clone)]
pub struct CountMin {
    counters: Vec<u32>,
    mask: usize,
    depth: usize,
    hasher: ahash::RandomState,
}

impl core::fmt::Debug for CountMin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CountMin")
            .field("width", &(self.mask + 1))
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl CountMin {
    /// `width` is rounded up to a power of two (at least 2, at most 2^24);
    /// `depth` is clamped to `1..=MAX_DEPTH`.
    pub fn new(width: usize, depth: usize) -> Self {
        let width = width.clamp(2, 1 << 24).next_power_of_two();
        let depth = depth.clamp(1, MAX_DEPTH);
        CountMin {
            counters: vec![0; width * depth],
            mask: width - 1,
            depth,
            hasher: ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3]),
        }
    }

    pub fn width(&self) -> usize {
        self.mask + 1
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Counter positions of `k`, one per row.
    #[inline]
    fn cells<K: Hash + ?Sized>(&self, k: &K) -> impl Iterator<Item = usize> {
        let h = self.hasher.hash_one(k);
        let h1 = h as usize;
        // Odd, so that successive rows never fall on the same column cycle.
        let h2 = ((h >> 32) as usize) | 1;
        let (mask, width) = (self.mask, self.mask + 1);
        (0..self.depth).map(move |row| row * width + (h1.wrapping_add(row.wrapping_mul(h2)) & mask))
    }

    /// Adds `w` to `k`, returns its new estimate.
    #[inline]
    pub fn add<K: Hash + ?Sized>(&mut self, k: &K, w: u32) -> u32 {
        let mut cells = [0usize; MAX_DEPTH];
        let mut min = u32::MAX;
        for (slot, c) in cells.iter_mut().zip(self.cells(k)) {
            *slot = c;
            min = min.min(self.counters.get(c).copied().unwrap_or(0));
        }
        let new = min.saturating_add(w);
        for &c in &cells[..self.depth] {
            if let Some(v) = self.counters.get_mut(c) {
                *v = (*v).max(new);
            }
        }
        new
    }

    /// Estimate of `k`'s total weight: never below the truth.
    #[inline]
    pub fn estimate<K: Hash + ?Sized>(&self, k: &K) -> u32 {
        self.cells(k)
            .map(|c| self.counters.get(c).copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    }

    /// Zeroes every counter (keeps the memory).
    pub fn clear(&mut self) {
        self.counters.fill(0);
    }

    /// Heap bytes reserved.
    pub fn memory_bytes(&self) -> usize {
        self.counters.capacity() * core::mem::size_of::<u32>()
    }
}

/// Count-min plus a top-k of the heaviest keys (capacity k, replace the
/// lightest when a key's estimate beats it).
///
/// The top-k is a plain array scanned linearly: k is small (tens), and the
/// common case under attack — a key lighter than the lightest kept — is
/// decided by one comparison with the cached minimum. (A kept key's estimate
/// grows by at least 1 on each add, so once the array is full a key whose
/// new estimate does not beat the minimum cannot be in it.)
#[derive(Clone, Debug)]
pub struct HeavyHitters<K: Copy + Eq + Hash> {
    sketch: CountMin,
    top: Vec<(K, u32)>,
    k: usize,
    /// Smallest count in `top` once it is full, 0 before.
    floor: u32,
    total: u64,
}

impl<K: Copy + Eq + Hash> HeavyHitters<K> {
    /// Keeps the `k` heaviest keys (at least 1) over a `width` x `depth`
    /// sketch.
    pub fn new(k: usize, width: usize, depth: usize) -> Self {
        let k = k.max(1);
        HeavyHitters {
            sketch: CountMin::new(width, depth),
            top: Vec::with_capacity(k),
            k,
            floor: 0,
            total: 0,
        }
    }

    /// Counts `weight` for `key`.
    pub fn add(&mut self, key: K, weight: u32) {
        if weight == 0 {
            return;
        }
        self.total = self.total.saturating_add(u64::from(weight));
        let est = self.sketch.add(&key, weight);
        let full = self.top.len() == self.k;
        if full && est <= self.floor {
            return;
        }
        if let Some(e) = self.top.iter_mut().find(|(k, _)| *k == key) {
            e.1 = est;
        } else if !full {
            // Within the capacity reserved in `new`: no allocation.
            self.top.push((key, est));
        } else if let Some(lightest) = self.top.iter_mut().min_by_key(|(_, c)| *c) {
            *lightest = (key, est);
        }
        if self.top.len() == self.k {
            self.floor = self.top.iter().map(|&(_, c)| c).min().unwrap_or(0);
        }
    }

    /// Total weight added since the last `clear`.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept keys with their current estimates, heaviest first (ties in
    /// no particular order). Control side: allocates.
    pub fn top(&self) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = self
            .top
            .iter()
            .map(|(k, _)| (*k, u64::from(self.sketch.estimate(k))))
            .collect();
        v.sort_by_key(|&(_, c)| core::cmp::Reverse(c));
        v
    }

    /// Keys whose estimate is >= min_count and >= min_share of the total:
    /// candidate signature rules. Heaviest first.
    pub fn propose(&self, min_count: u64, min_share: f64) -> Vec<(K, u64)> {
        // The share test in floating point is exact enough: totals are far
        // below 2^53 in one detection window.
        let total = self.total as f64;
        let mut v = self.top();
        v.retain(|&(_, c)| c >= min_count && c as f64 >= min_share * total);
        v
    }

    /// Forgets everything (keeps the memory).
    pub fn clear(&mut self) {
        self.sketch.clear();
        self.top.clear();
        self.floor = 0;
        self.total = 0;
    }

    /// The underlying sketch.
    pub fn sketch(&self) -> &CountMin {
        &self.sketch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A Zipf(s = 1.1) stream over `n` keys: key `i` (0-based) has weight
    /// proportional to 1 / (i + 1)^1.1. Returns the stream and the truth.
    fn zipf(n: usize, len: usize, seed: u64) -> (Vec<u32>, Vec<u64>) {
        let weights: Vec<f64> = (0..n).map(|i| 1.0 / ((i + 1) as f64).powf(1.1)).collect();
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for w in &weights {
            acc += w;
            cdf.push(acc);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut truth = vec![0u64; n];
        let stream = (0..len)
            .map(|_| {
                let x = rng.gen::<f64>() * acc;
                let i = cdf.partition_point(|&c| c < x).min(n - 1);
                truth[i] += 1;
                i as u32
            })
            .collect();
        (stream, truth)
    }

    #[test]
    fn count_min_never_undercounts_and_stays_within_its_bound() {
        let (stream, truth) = zipf(50_000, 500_000, 1);
        let mut cm = CountMin::new(2048, 4);
        for k in &stream {
            cm.add(k, 1);
        }
        // e / w of the total: 2.718 / 2048 * 500k = ~664. The bound may fail
        // for a fraction e^-4 (1.8 %) of keys; count the failures.
        let bound = (std::f64::consts::E / 2048.0 * 500_000.0) as u64;
        let mut over = 0;
        for (k, &t) in truth.iter().enumerate() {
            let e = u64::from(cm.estimate(&(k as u32)));
            assert!(e >= t, "key {k}: {e} < {t}");
            over += usize::from(e - t > bound);
        }
        assert!(over * 100 < truth.len() * 2, "{over} keys beyond the bound");
        // Heavy keys are near exact with conservative update.
        for (k, &t) in truth.iter().enumerate().take(10) {
            let e = u64::from(cm.estimate(&(k as u32)));
            assert!(e - t <= t / 100 + 50, "key {k}: {e} vs {t}");
        }
    }

    #[test]
    fn count_min_basics() {
        let mut cm = CountMin::new(1000, 3);
        assert_eq!((cm.width(), cm.depth()), (1024, 3));
        assert_eq!(cm.add("a", 5), 5);
        assert_eq!(cm.add("a", 2), 7);
        assert_eq!(cm.estimate("a"), 7);
        assert_eq!(cm.add("b", u32::MAX), u32::MAX);
        assert_eq!(cm.add("b", 1), u32::MAX, "saturates");
        let same = CountMin::new(1000, 3);
        let mut again = same.clone();
        again.add("a", 5);
        again.add("a", 2);
        assert_eq!(again.estimate("a"), 7, "fixed seeds");
        cm.clear();
        assert_eq!(cm.estimate("a"), 0);
        let tiny = CountMin::new(0, 0);
        assert_eq!((tiny.width(), tiny.depth()), (2, 1));
        assert_eq!(CountMin::new(64, 100).depth(), MAX_DEPTH);
    }

    #[test]
    fn heavy_hitters_find_the_true_top_keys() {
        let (stream, truth) = zipf(100_000, 1_000_000, 2);
        let mut hh = HeavyHitters::new(20, 4096, 4);
        for &k in &stream {
            hh.add(k, 1);
        }
        assert_eq!(hh.total(), 1_000_000);
        let top = hh.top();
        assert_eq!(top.len(), 20);
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1), "heaviest first");
        // The ten heaviest keys (by truth) are all found, with estimates
        // within 1 % of the truth.
        let found: Vec<u32> = top.iter().map(|&(k, _)| k).collect();
        for (k, &t) in truth.iter().enumerate().take(10) {
            assert!(found.contains(&(k as u32)), "key {k} ({t}) missing: {found:?}");
            let est = top
                .iter()
                .find(|&&(key, _)| key == k as u32)
                .map(|&(_, c)| c)
                .unwrap_or(0);
            assert!(est >= t && est - t <= t / 100 + 50, "key {k}: {est} vs {t}");
        }
    }

    #[test]
    fn propose_applies_count_and_share() {
        let mut hh = HeavyHitters::new(8, 1024, 4);
        for _ in 0..600 {
            hh.add('a', 1);
        }
        hh.add('b', 300);
        hh.add('c', 100);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            hh.add(rng.gen_range('d'..'z'), 0);
        }
        assert_eq!(hh.total(), 1000);
        assert_eq!(hh.propose(200, 0.25), vec![('a', 600), ('b', 300)]);
        assert_eq!(hh.propose(200, 0.5), vec![('a', 600)]);
        assert_eq!(hh.propose(700, 0.0), vec![]);
        hh.clear();
        assert_eq!(hh.total(), 0);
        assert!(hh.top().is_empty());
    }

    #[test]
    fn a_heavy_latecomer_displaces_the_lightest() {
        let mut hh = HeavyHitters::new(2, 1024, 4);
        hh.add(1u32, 10);
        hh.add(2u32, 5);
        hh.add(3u32, 1);
        assert_eq!(hh.top(), vec![(1, 10), (2, 5)]);
        hh.add(3u32, 10);
        assert_eq!(hh.top(), vec![(3, 11), (1, 10)]);
    }
}
