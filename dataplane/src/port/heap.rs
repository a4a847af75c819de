//! Heap packet buffers and their per-worker pool, for the backends that copy
//! frames in (memory, pcap) and for offline scrubbing.
//!
//! Every buffer is allocated when the pool is made; afterwards frames move
//! between the pool and the worker's bursts by value (a pointer and two
//! integers), so a running worker never allocates.

use super::{Csum, Frame, HEADROOM};
use crate::pipeline::MAX_FRAME;
use classifier::time::Nanos;

/// Bytes in one heap buffer: headroom plus the largest frame.
pub const BUF_SIZE: usize = HEADROOM + MAX_FRAME;

/// A frame in a heap buffer of [`BUF_SIZE`] bytes.
#[derive(Debug)]
pub struct HeapFrame {
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    csum: Csum,
    ts: Option<Nanos>,
}

impl Default for HeapFrame {
    fn default() -> Self {
        Self::new()
    }
}

impl HeapFrame {
    /// An empty frame with [`HEADROOM`] in front (allocates: start-up only).
    pub fn new() -> Self {
        HeapFrame {
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            csum: Csum::Unknown,
            ts: None,
        }
    }

    /// Resets to empty with the standard headroom.
    pub fn reset(&mut self) {
        self.start = HEADROOM;
        self.len = 0;
        self.csum = Csum::Unknown;
        self.ts = None;
    }

    /// Resets and copies `bytes` in; false (and empty) when longer than
    /// [`MAX_FRAME`].
    pub fn fill(&mut self, bytes: &[u8]) -> bool {
        self.reset();
        self.replace(bytes)
    }

    pub fn set_timestamp(&mut self, ts: Option<Nanos>) {
        self.ts = ts;
    }
}

impl Frame for HeapFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.start
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.buf.len() - self.start
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        if len > self.capacity() {
            return false;
        }
        self.len = len;
        true
    }

    fn csum(&self) -> Csum {
        self.csum
    }

    fn set_csum(&mut self, c: Csum) {
        self.csum = c;
    }

    fn timestamp(&self) -> Option<Nanos> {
        self.ts
    }
}

/// A worker's fixed set of heap frames.
#[derive(Debug)]
pub struct Pool {
    free: Vec<HeapFrame>,
    size: usize,
}

impl Pool {
    /// `size` frames, all allocated now.
    pub fn new(size: usize) -> Self {
        Pool {
            free: (0..size).map(|_| HeapFrame::new()).collect(),
            size,
        }
    }

    /// A frame, reset to empty; `None` when all are in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<HeapFrame> {
        let mut f = self.free.pop()?;
        f.reset();
        Some(f)
    }

    /// Gives a frame back. The pool never grows past its size: a frame that
    /// did not come from it is dropped (deallocated) instead.
    #[inline]
    pub fn free(&mut self, f: HeapFrame) {
        if self.free.len() < self.size {
            self.free.push(f);
        }
    }

    /// Frames not in use.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_adj_set_len_respect_bounds() {
        let mut f = HeapFrame::new();
        assert!(f.fill(&[1, 2, 3, 4]));
        assert_eq!(f.headroom(), HEADROOM);
        assert!(f.adj(2));
        assert_eq!(f.data(), &[3, 4]);
        assert!(f.prepend(HEADROOM + 2));
        assert_eq!(f.headroom(), 0);
        assert!(!f.prepend(1));
        assert!(!f.adj(f.data().len() + 1));
        assert!(!f.set_len(BUF_SIZE + 1));
        assert!(f.set_len(BUF_SIZE));
        assert!(!f.fill(&vec![0; MAX_FRAME + 1]));
        assert!(f.fill(&vec![7; MAX_FRAME]));
    }

    #[test]
    fn pool_recycles_and_never_grows() {
        let mut p = Pool::new(2);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert!(p.alloc().is_none());
        p.free(a);
        p.free(b);
        p.free(HeapFrame::new());
        assert_eq!(p.available(), 2);
    }
}
