//! Time order of the generated packets.
//!
//! Events (a flow, a flood packet, a reflected burst) queue all their packets
//! at once, at their future times, in a min-heap keyed by (timestamp,
//! insertion number): the insertion number breaks ties deterministically, in
//! the order the packets were generated. The generator starts every event
//! whose start time is not after the earliest queued packet before popping
//! it, and events only queue packets at or after their start, so popped
//! timestamps never decrease.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use classifier::time::Nanos;

use super::{GenPacket, Profile};

#[derive(Debug)]
struct Pending {
    seq: u64,
    packet: GenPacket,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.packet.ts, self.seq).cmp(&(other.packet.ts, other.seq))
    }
}

/// The queue of packets generated but not yet emitted.
#[derive(Debug, Default)]
pub(crate) struct Sched {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// Packets popped so far per profile (index [`Profile::index`]), for the
    /// mix's share keeping.
    emitted: [u64; Profile::ALL.len()],
    /// Frame buffers given back by a live sender, reused by the builders.
    spare: Vec<Vec<u8>>,
}

/// Spare buffers kept at least (more while more packets are queued: a
/// live sender gives back one buffer per packet it sends).
const SPARE: usize = 1024;

/// Capacity of a recycled buffer: the largest generated frame (1514 bytes,
/// a full-size IPv4 fragment) fits, so a reused buffer never grows.
pub const FRAME_CAP: usize = 1536;

impl Sched {
    /// An empty buffer to build a frame in: a recycled one when there is
    /// one, else a new, empty one (the builders reserve what they need).
    pub fn buf(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps `frame`'s buffer for [`Sched::buf`], emptied and grown to
    /// [`FRAME_CAP`] (once in its life), while fewer than [`SPARE`] or
    /// the packets queued are kept.
    pub fn recycle(&mut self, mut frame: Vec<u8>) {
        if self.spare.len() >= SPARE.max(self.heap.len()) {
            return;
        }
        frame.clear();
        frame.reserve(FRAME_CAP);
        self.spare.push(frame);
    }

    /// Queues `frame`, sent at `ts` by `profile`.
    pub fn push(&mut self, ts: Nanos, profile: Profile, frame: Vec<u8>) {
        let packet = GenPacket { ts, frame, profile };
        self.heap.push(Reverse(Pending { seq: self.seq, packet }));
        self.seq += 1;
    }

    pub fn peek_ts(&self) -> Option<Nanos> {
        self.heap.peek().map(|p| p.0.packet.ts)
    }

    pub fn pop(&mut self) -> Option<GenPacket> {
        let p = self.heap.pop()?.0.packet;
        self.emitted[p.profile.index()] += 1;
        Some(p)
    }

    pub fn emitted(&self) -> &[u64; Profile::ALL.len()] {
        &self.emitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = Sched::default();
        q.push(20, Profile::Legit, vec![1]);
        q.push(10, Profile::SynFlood, vec![2]);
        q.push(20, Profile::Frag, vec![3]);
        q.push(10, Profile::Legit, vec![4]);
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|p| p.frame[0]).collect();
        assert_eq!(order, [2, 4, 1, 3]);
        assert_eq!(q.emitted()[Profile::Legit.index()], 2);
    }
}
