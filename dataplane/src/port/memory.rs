//! The in-memory backend: RX from the built-in generator or from a set of
//! template frames replayed in a loop, TX into counting sinks. No NIC, no
//! root; `moat demo` and `moat bench` run on it.
//!
//! - Generator RX is what `demo` uses: the full attack mix with legitimate
//!   clients that answer challenges. Frames carry the generator's
//!   timestamps, which the worker takes as its clock, so that cookies made
//!   and checked agree. Building each frame allocates, so this source is for
//!   demos, not for measuring.
//! - Template RX is what `bench` uses: frames made once at start-up, copied
//!   into pool frames (one short `memcpy` each, as a NIC's DMA would), with
//!   an optional rewrite of the IPv4 source address per packet (a random
//!   spoofed source, checksums fixed incrementally) so that a flood comes
//!   from millions of sources while nothing is allocated.
//! - The inside port receives nothing; every TX is counted and the frame
//!   goes straight back to the pool.
//! - An optional packet rate paces RX against the wall clock.

use std::sync::Arc;
use std::time::Instant;

use classifier::wire::checksum;

use super::{Burst, Frame, HeapFrame, Pool, PortId, Queues};
use crate::gen::Generator;

/// Where a memory port's received frames come from.
#[derive(Debug)]
pub enum Source {
    /// The built-in generator (frames carry its timestamps).
    Generator(Box<Generator>),
    /// Template frames replayed in a loop.
    Templates(Templates),
}

/// Frames replayed in a loop, from `next`.
#[derive(Debug, Clone)]
pub struct Templates {
    pub frames: Arc<[Vec<u8>]>,
    pub next: usize,
    /// Seed of the per-packet spoofed IPv4 source; `None`: sources as in the
    /// templates.
    pub spoof: Option<u64>,
}

/// Per-port TX totals of a memory worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sink {
    pub packets: u64,
    pub bytes: u64,
}

/// One worker's memory queues.
#[derive(Debug)]
pub struct MemoryQueues {
    pool: Pool,
    source: Source,
    /// xorshift64 state for spoofed sources.
    rng: u64,
    /// Packets per second to deliver, 0 = flat out.
    pps: u64,
    started: Instant,
    delivered: u64,
    /// Stop after this many frames (`u64::MAX`: never).
    limit: u64,
    sinks: [Sink; 2],
}

impl MemoryQueues {
    /// `pool` frames are allocated now; give at least twice the burst size.
    pub fn new(source: Source, pool: usize, pps: u64, limit: u64) -> Self {
        let seed = match &source {
            Source::Templates(Templates { spoof: Some(s), .. }) => *s | 1,
            _ => 0x9e37_79b9_7f4a_7c15,
        };
        MemoryQueues {
            pool: Pool::new(pool),
            source,
            rng: seed,
            pps,
            started: Instant::now(),
            delivered: 0,
            limit,
            sinks: [Sink::default(); 2],
        }
    }

    /// What was sent on `port`.
    pub fn sink(&self, port: PortId) -> Sink {
        self.sinks[port.index()]
    }

    /// How many frames RX may deliver now under the pacing rate and limit.
    fn allowance(&self, want: usize) -> usize {
        let mut left = self.limit.saturating_sub(self.delivered);
        if self.pps != 0 {
            let elapsed = self.started.elapsed().as_nanos();
            let due = u64::try_from(elapsed * u128::from(self.pps) / 1_000_000_000).unwrap_or(u64::MAX);
            left = left.min(due.saturating_sub(self.delivered));
        }
        usize::try_from(left).unwrap_or(usize::MAX).min(want)
    }

    #[inline]
    fn next_random(&mut self) -> u32 {
        // xorshift64 (Marsaglia 2003): enough to scatter sources over the
        // tables; not a security property.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 16) as u32
    }
}

/// A public-looking unicast IPv4 source from 32 random bits: first octet in
/// 1..=223 and neither 10 nor 127, so that it is never refused as a bogus
/// source.
#[inline]
fn unicast(r: u32) -> [u8; 4] {
    let mut b = r.to_be_bytes();
    b[0] = 1 + b[0] % 223;
    if b[0] == 10 || b[0] == 127 {
        b[0] += 1;
    }
    b
}

/// Rewrites the IPv4 source of an untagged Ethernet/IPv4 frame and fixes the
/// IPv4 and TCP/UDP checksums incrementally (RFC 1624). Other frames are
/// left alone.
fn spoof_ipv4_source(frame: &mut [u8], src: [u8; 4]) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let old = [frame[26], frame[27], frame[28], frame[29]];
    frame[26..30].copy_from_slice(&src);
    let fix = |sum: u16| checksum::update32(sum, u32::from_be_bytes(old), u32::from_be_bytes(src));
    let ip_sum = u16::from_be_bytes([frame[24], frame[25]]);
    frame[24..26].copy_from_slice(&fix(ip_sum).to_be_bytes());
    // The TCP and UDP checksums cover the source in their pseudo-header;
    // first fragments only (later ones carry no L4 header).
    let l4 = 14 + ihl;
    let off = match frame[23] {
        6 => 16,
        17 => 6,
        _ => return,
    };
    let frag_offset = u16::from_be_bytes([frame[20], frame[21]]) & 0x1fff;
    if frag_offset != 0 || frame.len() < l4 + off + 2 {
        return;
    }
    let l4_sum = u16::from_be_bytes([frame[l4 + off], frame[l4 + off + 1]]);
    if frame[23] == 17 && l4_sum == 0 {
        return; // UDP without a checksum
    }
    frame[l4 + off..l4 + off + 2].copy_from_slice(&fix(l4_sum).to_be_bytes());
}

impl Queues for MemoryQueues {
    type Frame = HeapFrame;

    fn rx_burst(&mut self, port: PortId, out: &mut Burst<HeapFrame>, max: usize) -> usize {
        if port == PortId::Inside {
            return 0;
        }
        let n = self.allowance(out.remaining_capacity().min(max));
        let mut got = 0;
        while got < n {
            let Some(mut f) = self.pool.alloc() else { break };
            let ok = match &mut self.source {
                Source::Generator(g) => match g.next() {
                    Some(p) => {
                        f.set_timestamp(Some(p.ts));
                        f.fill(&p.frame) || f.fill(&p.frame[..0])
                    }
                    None => false,
                },
                Source::Templates(t) if !t.frames.is_empty() => {
                    let i = t.next;
                    t.next = if i + 1 == t.frames.len() { 0 } else { i + 1 };
                    let spoof = t.spoof.is_some();
                    let filled = f.fill(&t.frames[i]);
                    if spoof {
                        let src = unicast(self.next_random());
                        spoof_ipv4_source(f.data_mut(), src);
                    }
                    filled
                }
                Source::Templates(_) => false,
            };
            if !ok {
                self.pool.free(f);
                self.limit = self.delivered; // the source ran dry
                break;
            }
            out.push(f);
            got += 1;
        }
        self.delivered += got as u64;
        got
    }

    fn tx_burst(&mut self, port: PortId, frames: &mut Burst<HeapFrame>) -> usize {
        let n = frames.len();
        let sink = &mut self.sinks[port.index()];
        for f in frames.drain(..) {
            sink.packets += 1;
            sink.bytes += f.data().len() as u64;
            self.pool.free(f);
        }
        n
    }

    fn free(&mut self, f: HeapFrame) {
        self.pool.free(f);
    }

    fn alloc(&mut self) -> Option<HeapFrame> {
        self.pool.alloc()
    }

    fn rx_done(&self, port: PortId) -> bool {
        port == PortId::Inside || self.delivered >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classifier::parse::parse;

    fn syn_template() -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 7], [203, 0, 113, 10], 64)
            .tcp(40000, 80, 1, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        v
    }

    #[test]
    fn templates_loop_and_spoofed_sources_keep_checksums_valid() {
        let t = Templates {
            frames: vec![syn_template()].into(),
            next: 0,
            spoof: Some(7),
        };
        let mut q = MemoryQueues::new(Source::Templates(t), 64, 0, 100);
        let mut b = Burst::new();
        let mut sources = std::collections::HashSet::new();
        let mut total = 0;
        while !q.rx_done(PortId::Outside) {
            total += q.rx_burst(PortId::Outside, &mut b, 32);
            for f in b.drain(..) {
                let s = etherparse::SlicedPacket::from_ethernet(f.data()).unwrap();
                let Some(etherparse::NetSlice::Ipv4(ip)) = s.net else {
                    panic!()
                };
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                let Some(etherparse::TransportSlice::Tcp(tcp)) = s.transport else {
                    panic!()
                };
                let sum = tcp.to_header().calc_checksum_ipv4(&h, tcp.payload()).unwrap();
                assert_eq!(tcp.checksum(), sum);
                assert!(parse(f.data()).is_ok());
                sources.insert(h.source);
                q.free(f);
            }
        }
        assert_eq!(total, 100);
        assert!(sources.len() > 95, "{} sources", sources.len());
        assert_eq!(q.pool.available(), 64);
    }

    #[test]
    fn pacing_limits_delivery_to_the_rate() {
        let t = Templates {
            frames: vec![syn_template()].into(),
            next: 0,
            spoof: None,
        };
        let mut q = MemoryQueues::new(Source::Templates(t), 64, 1000, u64::MAX);
        let mut b = Burst::new();
        // Right after start almost nothing is due at 1000 pps.
        let n = q.rx_burst(PortId::Outside, &mut b, 32);
        assert!(n <= 2, "{n}");
        q.tx_burst(PortId::Inside, &mut b);
        assert_eq!(q.sink(PortId::Inside).packets, n as u64);
    }
}
