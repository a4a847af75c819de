//! Per-worker counters as the rest of the node sees them: each worker keeps
//! plain counters and publishes them here with relaxed stores (no
//! read-modify-write) every millisecond (the per-service figures every
//! [`SERVICE_PUBLISH_TICKS`] milliseconds) and when it stops; readers (the
//! management plane) sum the workers at scrape time. Each worker's block is
//! cache-padded so that one worker's stores never invalidate another's line.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use classifier::verdict::DropReason;
use crossbeam_utils::CachePadded;

use crate::pipeline::{Counters, ServiceCounters};
use crate::port::PortId;

/// Services whose passed packets are counted separately; the policy has at
/// most this many (checked at start-up).
pub const MAX_SERVICES: usize = 1024;

/// The per-service figures (up to 9 x [`MAX_SERVICES`] counters) are
/// published every this many milliseconds: detection reads them once a
/// second, and with a thousand services publishing them every millisecond
/// would be ten million stores a second per worker.
pub const SERVICE_PUBLISH_TICKS: u64 = 16;

/// Counters of one port as seen by one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Frames the port did not take after one retry, freed.
    pub tx_dropped: u64,
}

/// The worker-side plain counters that are not the pipeline's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopCounters {
    pub ports: [PortCounters; 2],
    /// Polls that returned at least one frame / none.
    pub busy_polls: u64,
    pub idle_polls: u64,
    /// ARP requests sent for next hops.
    pub arp_requests: u64,
    /// Packet samples taken / not taken because the queue to mgmt was full.
    pub samples: u64,
    pub samples_dropped: u64,
}

#[derive(Debug)]
struct PortAtomics {
    rx_packets: AtomicU64,
    tx_packets: AtomicU64,
    tx_dropped: AtomicU64,
}

/// One worker's published counters.
#[derive(Debug)]
pub struct WorkerStats {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    passed_bytes: AtomicU64,
    replies: AtomicU64,
    mss_clamped: AtomicU64,
    icmp_too_big: AtomicU64,
    csum_completed: AtomicU64,
    busy_polls: AtomicU64,
    idle_polls: AtomicU64,
    arp_requests: AtomicU64,
    samples: AtomicU64,
    samples_dropped: AtomicU64,
    ports: [PortAtomics; 2],
    dropped: [AtomicU64; DropReason::COUNT],
    passed: Box<[AtomicU64]>,
    /// [`ServiceCounters::to_array`] per service index.
    services: Box<[[AtomicU64; 9]]>,
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

impl Default for WorkerStats {
    fn default() -> Self {
        let port = || PortAtomics {
            rx_packets: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            tx_dropped: AtomicU64::new(0),
        };
        WorkerStats {
            rx_packets: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            passed_bytes: AtomicU64::new(0),
            replies: AtomicU64::new(0),
            mss_clamped: AtomicU64::new(0),
            icmp_too_big: AtomicU64::new(0),
            csum_completed: AtomicU64::new(0),
            busy_polls: AtomicU64::new(0),
            idle_polls: AtomicU64::new(0),
            arp_requests: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            samples_dropped: AtomicU64::new(0),
            ports: [port(), port()],
            dropped: zeros(),
            passed: (0..MAX_SERVICES).map(|_| AtomicU64::new(0)).collect(),
            services: (0..MAX_SERVICES).map(|_| zeros()).collect(),
        }
    }
}

/// Shared handle to one worker's counters.
pub type SharedStats = std::sync::Arc<CachePadded<WorkerStats>>;

impl WorkerStats {
    /// Worker side: publishes the current values; the per-service figures
    /// (nine counters per service) only when `services` is set.
    pub fn publish(&self, c: &Counters, l: &LoopCounters, services: bool) {
        self.rx_packets.store(c.rx_packets, Relaxed);
        self.rx_bytes.store(c.rx_bytes, Relaxed);
        self.passed_bytes.store(c.passed_bytes, Relaxed);
        self.replies.store(c.replies, Relaxed);
        self.mss_clamped.store(c.mss_clamped, Relaxed);
        self.icmp_too_big.store(c.icmp_too_big, Relaxed);
        self.csum_completed.store(c.csum_completed, Relaxed);
        self.busy_polls.store(l.busy_polls, Relaxed);
        self.idle_polls.store(l.idle_polls, Relaxed);
        self.arp_requests.store(l.arp_requests, Relaxed);
        self.samples.store(l.samples, Relaxed);
        self.samples_dropped.store(l.samples_dropped, Relaxed);
        for (a, p) in self.ports.iter().zip(&l.ports) {
            a.rx_packets.store(p.rx_packets, Relaxed);
            a.tx_packets.store(p.tx_packets, Relaxed);
            a.tx_dropped.store(p.tx_dropped, Relaxed);
        }
        for (a, v) in self.dropped.iter().zip(&c.dropped) {
            a.store(*v, Relaxed);
        }
        for (a, v) in self.passed.iter().zip(&c.passed) {
            a.store(*v, Relaxed);
        }
        if !services {
            return;
        }
        for (a, v) in self.services.iter().zip(&c.services) {
            for (a, v) in a.iter().zip(v.to_array()) {
                a.store(v, Relaxed);
            }
        }
    }

    /// Reader side: the values last published, for `services` services.
    pub fn snapshot(&self, services: usize) -> Snapshot {
        let ports = core::array::from_fn(|i| PortCounters {
            rx_packets: self.ports[i].rx_packets.load(Relaxed),
            tx_packets: self.ports[i].tx_packets.load(Relaxed),
            tx_dropped: self.ports[i].tx_dropped.load(Relaxed),
        });
        Snapshot {
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            passed_bytes: self.passed_bytes.load(Relaxed),
            replies: self.replies.load(Relaxed),
            mss_clamped: self.mss_clamped.load(Relaxed),
            icmp_too_big: self.icmp_too_big.load(Relaxed),
            csum_completed: self.csum_completed.load(Relaxed),
            busy_polls: self.busy_polls.load(Relaxed),
            idle_polls: self.idle_polls.load(Relaxed),
            arp_requests: self.arp_requests.load(Relaxed),
            samples: self.samples.load(Relaxed),
            samples_dropped: self.samples_dropped.load(Relaxed),
            ports,
            dropped: core::array::from_fn(|i| self.dropped[i].load(Relaxed)),
            passed: self.passed.iter().take(services).map(|a| a.load(Relaxed)).collect(),
            services: self
                .services
                .iter()
                .take(services)
                .map(|a| ServiceCounters::from_array(core::array::from_fn(|i| a[i].load(Relaxed))))
                .collect(),
        }
    }
}

/// Counters at one moment: one worker's, or the sum over workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub passed_bytes: u64,
    pub replies: u64,
    pub mss_clamped: u64,
    pub icmp_too_big: u64,
    pub csum_completed: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub arp_requests: u64,
    pub samples: u64,
    pub samples_dropped: u64,
    pub ports: [PortCounters; 2],
    pub dropped: [u64; DropReason::COUNT],
    /// Per service index.
    pub passed: Vec<u64>,
    /// Traffic addressed to each service, per service index.
    pub services: Vec<ServiceCounters>,
}

impl Snapshot {
    pub fn zero(services: usize) -> Self {
        Snapshot {
            rx_packets: 0,
            rx_bytes: 0,
            passed_bytes: 0,
            replies: 0,
            mss_clamped: 0,
            icmp_too_big: 0,
            csum_completed: 0,
            busy_polls: 0,
            idle_polls: 0,
            arp_requests: 0,
            samples: 0,
            samples_dropped: 0,
            ports: [PortCounters::default(); 2],
            dropped: [0; DropReason::COUNT],
            passed: vec![0; services],
            services: vec![ServiceCounters::default(); services],
        }
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Snapshot) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.passed_bytes += o.passed_bytes;
        self.replies += o.replies;
        self.mss_clamped += o.mss_clamped;
        self.icmp_too_big += o.icmp_too_big;
        self.csum_completed += o.csum_completed;
        self.busy_polls += o.busy_polls;
        self.idle_polls += o.idle_polls;
        self.arp_requests += o.arp_requests;
        self.samples += o.samples;
        self.samples_dropped += o.samples_dropped;
        for (a, b) in self.ports.iter_mut().zip(&o.ports) {
            a.rx_packets += b.rx_packets;
            a.tx_packets += b.tx_packets;
            a.tx_dropped += b.tx_dropped;
        }
        for (a, b) in self.dropped.iter_mut().zip(&o.dropped) {
            *a += b;
        }
        if self.passed.len() < o.passed.len() {
            self.passed.resize(o.passed.len(), 0);
        }
        for (a, b) in self.passed.iter_mut().zip(&o.passed) {
            *a += b;
        }
        if self.services.len() < o.services.len() {
            self.services.resize(o.services.len(), ServiceCounters::default());
        }
        for (a, b) in self.services.iter_mut().zip(&o.services) {
            a.add(b);
        }
    }

    pub fn port(&self, p: PortId) -> &PortCounters {
        &self.ports[p.index()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub fn passed_total(&self) -> u64 {
        self.passed.iter().sum()
    }

    /// Drops by reason, nonzero only, largest first.
    pub fn drops_by_reason(&self) -> Vec<(DropReason, u64)> {
        let mut v: Vec<_> = DropReason::ALL
            .iter()
            .map(|r| (*r, self.dropped[*r as usize]))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by_key(|e| core::cmp::Reverse(e.1));
        v
    }
}
