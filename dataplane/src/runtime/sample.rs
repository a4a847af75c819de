//! Packet sampling (DESIGN.md, "Threading and memory model"): a worker
//! summarises one packet in `every` of the outside port's into a fixed-size
//! [`Sample`] and pushes it into its own bounded single-producer
//! single-consumer queue (`rtrb`, wait-free on both sides); the management
//! plane drains the queues for detection and attack reports.
//!
//! Contract: the worker side never blocks, allocates or calls a random
//! number generator per packet. The choice is a countdown (deterministic:
//! packets `every`, `2·every`, ... of each worker), and a full queue drops
//! the sample and counts it (`samples_dropped`). Only a sampled packet costs
//! more than the countdown: a second parse and its fingerprint, computed on
//! the frame as received (before the pipeline rewrites it in place), and
//! not even that when the queue is full.

use core::net::{IpAddr, Ipv4Addr};

use classifier::fingerprint::{Fingerprint, TcpFingerprint, UdpFingerprint};
use classifier::parse::{self, Parsed, L4};
use classifier::policy::ServiceId;
use classifier::time::Nanos;
use classifier::verdict::DropReason;

use super::stats::LoopCounters;
use crate::pipeline::Outcome;

/// Capacity of each worker's sample queue: at one sample per 64 packets and
/// a drain every 100 ms, room for 2.6 Mpps per worker.
pub const SAMPLE_QUEUE: usize = 4096;

/// The fingerprint of a sampled packet as the classifier computes it: p0f
/// style for TCP SYNs, length/port/payload-hash for UDP and other protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFp {
    None,
    Tcp(TcpFingerprint),
    Udp(UdpFingerprint),
}

pub use classifier::l7::{HostPath, HOST_PATH_LEN};

/// What first-segment inspection learnt of the flow a sampled packet
/// belongs to (`[[services.l7_rules]]`): filled by the worker when its
/// flow table holds it, else empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct L7Fp {
    /// The TLS client's JA4 fingerprint
    /// (`t13d1516h2_8daaf6152771_02713d6af862`: 36 ASCII bytes).
    pub ja4: Option<[u8; 36]>,
    /// The HTTP request's Host + path.
    pub host_path: Option<HostPath>,
}

/// What became of a sampled packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleVerdict {
    Pass,
    Reply,
    Drop(DropReason),
}

impl From<Outcome> for SampleVerdict {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Forward { .. } => SampleVerdict::Pass,
            Outcome::Reply | Outcome::ForwardAndReply { .. } => SampleVerdict::Reply,
            Outcome::Drop(r) => SampleVerdict::Drop(r),
        }
    }
}

/// One sampled packet, summarised (fixed size, `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The worker's clock when the packet was processed.
    pub ts: Nanos,
    /// Source address (unspecified when the packet did not parse).
    pub src: IpAddr,
    /// TCP/UDP destination port, 0 for other protocols.
    pub dst_port: u16,
    /// IP protocol number (after IPv6 extension headers), 0 when none.
    pub proto: u8,
    /// TCP flags, 0 for other protocols.
    pub tcp_flags: u8,
    /// Frame length as received.
    pub len: u16,
    /// The service the packet was addressed to, if it reached the lookup.
    pub service: Option<ServiceId>,
    pub verdict: SampleVerdict,
    pub fp: SampleFp,
    /// An IP fragment (first or later).
    pub fragment: bool,
    /// The flow's application-layer fingerprints, where known.
    pub l7: L7Fp,
}

/// The worker side: the countdown and the producer.
#[derive(Debug)]
pub struct Sampler {
    every: u32,
    left: u32,
    tx: Option<rtrb::Producer<Sample>>,
}

/// What a sampled packet looked like before the pipeline rewrote it.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    fp: SampleFp,
    len: u16,
    l7: L7Fp,
}

impl Taken {
    /// The sample with the flow's application-layer fingerprints (the
    /// worker adds them between [`Sampler::take`] and [`Sampler::push`]
    /// when the packet's flow has them).
    #[inline]
    pub fn with_l7(self, l7: L7Fp) -> Taken {
        Taken { l7, ..self }
    }
}

impl Sampler {
    /// Samples one packet in `every` into `tx`; `every == 0` or no queue:
    /// never.
    pub fn new(every: u32, tx: Option<rtrb::Producer<Sample>>) -> Self {
        let tx = tx.filter(|_| every > 0);
        let every = if tx.is_some() { every } else { u32::MAX };
        Sampler { every, left: every, tx }
    }

    /// Per packet: whether this one is sampled; if so, its fingerprint and
    /// length, read from `frame` before it is processed. A full queue
    /// drops the sample here (counted), before any work is spent on it.
    #[inline]
    pub fn take(&mut self, frame: &[u8], lc: &mut LoopCounters) -> Option<Taken> {
        self.left -= 1;
        if self.left != 0 {
            return None;
        }
        self.left = self.every;
        if self.tx.as_ref()?.is_full() {
            lc.samples_dropped += 1;
            return None;
        }
        Some(Taken {
            fp: fingerprint(frame),
            len: u16::try_from(frame.len()).unwrap_or(u16::MAX),
            l7: L7Fp::default(),
        })
    }

    /// Pushes the summary of a packet taken by [`Sampler::take`]; a full
    /// queue drops it and counts it.
    pub fn push(
        &mut self,
        t: Taken,
        ts: Nanos,
        parsed: Option<&Parsed>,
        service: Option<ServiceId>,
        out: Outcome,
        lc: &mut LoopCounters,
    ) {
        let Some(tx) = self.tx.as_mut() else { return };
        let s = summarise(t, ts, parsed, service, out);
        match tx.push(s) {
            Ok(()) => lc.samples += 1,
            Err(_) => lc.samples_dropped += 1,
        }
    }
}

fn fingerprint(frame: &[u8]) -> SampleFp {
    match parse::parse(frame)
        .ok()
        .and_then(|p| classifier::fingerprint::fingerprint(frame, &p))
    {
        Some(Fingerprint::Tcp(fp)) => SampleFp::Tcp(fp),
        Some(Fingerprint::Udp(fp)) => SampleFp::Udp(fp),
        None => SampleFp::None,
    }
}

fn summarise(t: Taken, ts: Nanos, parsed: Option<&Parsed>, service: Option<ServiceId>, out: Outcome) -> Sample {
    let mut s = Sample {
        ts,
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst_port: 0,
        proto: 0,
        tcp_flags: 0,
        len: t.len,
        service: None,
        verdict: out.into(),
        fp: t.fp,
        fragment: false,
        l7: t.l7,
    };
    let Some(p) = parsed else { return s };
    s.src = p.src_ip();
    s.proto = p.proto;
    s.service = service;
    s.fragment = p.frag != parse::Frag::None;
    match p.l4 {
        L4::Tcp(tcp) => {
            s.dst_port = tcp.dport;
            s.tcp_flags = tcp.flags;
        }
        L4::Udp { dport, .. } => s.dst_port = dport,
        _ => {}
    }
    s
}

/// A new sample queue: the worker's producer and mgmt's consumer.
pub fn queue() -> (rtrb::Producer<Sample>, rtrb::Consumer<Sample>) {
    rtrb::RingBuffer::new(SAMPLE_QUEUE)
}

/// Mgmt side: moves every queued sample of `rx` to `f`; returns how many.
pub fn drain(rx: &mut rtrb::Consumer<Sample>, mut f: impl FnMut(Sample)) -> usize {
    let mut n = 0;
    while let Ok(s) = rx.pop() {
        f(s);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame() -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 7], [203, 0, 113, 10], 64)
            .udp(53, 7777);
        let mut v = Vec::new();
        b.write(&mut v, &[1, 2, 3, 4]).expect("build");
        v
    }

    fn lc() -> LoopCounters {
        LoopCounters::default()
    }

    #[test]
    fn one_in_every_deterministic() {
        let (tx, mut rx) = queue();
        let mut s = Sampler::new(4, Some(tx));
        let f = udp_frame();
        let p = parse::parse(&f).expect("parse");
        let mut c = lc();
        let mut taken = Vec::new();
        for i in 1..=12u64 {
            if let Some(t) = s.take(&f, &mut c) {
                taken.push(i);
                s.push(
                    t,
                    i,
                    Some(&p),
                    Some(3),
                    Outcome::Drop(DropReason::ReflectionPort),
                    &mut c,
                );
            }
        }
        assert_eq!(taken, [4, 8, 12]);
        assert_eq!((c.samples, c.samples_dropped), (3, 0));
        let mut got = Vec::new();
        assert_eq!(drain(&mut rx, |x| got.push(x)), 3);
        let x = got[0];
        assert_eq!(x.ts, 4);
        assert_eq!(x.src, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!((x.dst_port, x.proto, x.service), (7777, 17, Some(3)));
        assert_eq!(x.len as usize, f.len());
        assert_eq!(x.verdict, SampleVerdict::Drop(DropReason::ReflectionPort));
        match x.fp {
            SampleFp::Udp(fp) => assert_eq!((fp.sport, fp.proto), (53, 17)),
            other => panic!("expected a UDP fingerprint, got {other:?}"),
        }
    }

    #[test]
    fn off_never_samples() {
        let (tx, _rx) = queue();
        let mut s = Sampler::new(0, Some(tx));
        let mut none = Sampler::new(1, None);
        let f = udp_frame();
        let mut c = lc();
        for _ in 0..10_000 {
            assert!(s.take(&f, &mut c).is_none());
            assert!(none.take(&f, &mut c).is_none());
        }
        assert_eq!((c.samples, c.samples_dropped), (0, 0));
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (tx, mut rx) = queue();
        let mut s = Sampler::new(1, Some(tx));
        let f = udp_frame();
        let mut c = lc();
        let extra = 100;
        for i in 0..SAMPLE_QUEUE as u64 {
            let t = s.take(&f, &mut c).expect("every packet");
            s.push(t, i, None, None, Outcome::Drop(DropReason::BadIpHeader), &mut c);
        }
        for _ in 0..extra {
            assert!(s.take(&f, &mut c).is_none(), "full: not taken");
        }
        assert_eq!(c.samples, SAMPLE_QUEUE as u64);
        assert_eq!(c.samples_dropped, extra as u64);
        let mut first = None;
        assert_eq!(
            drain(&mut rx, |x| {
                first.get_or_insert(x);
            }),
            SAMPLE_QUEUE
        );
        // A packet that did not parse keeps its length and verdict only.
        let x = first.expect("one");
        assert_eq!((x.ts, x.service, x.dst_port), (0, None, 0));
        assert_eq!(x.src, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // Drained: room again.
        let t = s.take(&f, &mut c).expect("every packet");
        s.push(t, 1, None, None, Outcome::Reply, &mut c);
        assert_eq!(c.samples, SAMPLE_QUEUE as u64 + 1);
    }
}
