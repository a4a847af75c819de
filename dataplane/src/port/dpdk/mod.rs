//! The DPDK backend: poll-mode drivers, zero-copy mbufs, one RX and one TX
//! queue per worker on each port, sources spread over workers by RSS on the
//! L3 source address (or the software fallback of [`steer`]).
//!
//! Start-up, staged (l3fwd's order): EAL (once per process, from
//! `dataplane.dpdk.eal_args`) → ports found by device name → one mempool
//! per NUMA socket of the ports → each port configured with `workers` RX
//! and TX queues, started, promiscuous, link awaited (bounded) → one
//! [`DpdkQueues`] per worker. Worker `i` owns queue `i` of both ports.
//!
//! Spreading (DESIGN.md: everything about one source lives on one core):
//! - **Hardware RSS** when the outside port's driver offers
//!   `RTE_ETH_RSS_L3_SRC_ONLY` with IPv4 and IPv6 hashing: every IP flow
//!   type it offers is hashed on the source address alone.
//! - **Software fallback** otherwise (virtual devices, NICs without
//!   L3-source-only hashing): each worker hashes the source of each frame
//!   it receives and hands other workers' frames to them through bounded
//!   single-producer rings; see [`steer`]. Costs one hash per frame and, for
//!   `(W-1)/W` of them, a ring hop; a full ring drops and counts.
//! - One worker: neither.
//!
//! Frames ([`DpdkFrame`]) are mbufs processed in place; GRE prepends into
//! the mbuf headroom (`RTE_PKTMBUF_HEADROOM`, 128 bytes, at least
//! [`HEADROOM`](crate::port::HEADROOM)). Data room is 2048 bytes: a
//! received frame that does not fit one mbuf (multi-segment) is freed and
//! counted. `tx_burst` hands frames to `rte_eth_tx_burst`; what the queue
//! did not take stays in the burst (the worker retries once, then frees and
//! counts). Nothing allocates, locks or makes a syscall per packet.
//!
//! Threads: a worker registers itself with EAL (`rte_thread_register`) on
//! its first `rx_burst` or `alloc`, after the runtime pinned it, so that it
//! gets an lcore id and with it a mempool cache.
//!
//! Shutdown: the ports are stopped and closed when the last [`DpdkQueues`]
//! and the [`DpdkStats`] reader are gone (that flushes `net_pcap` output
//! files). Mempools and EAL live until the process ends.
#![allow(unsafe_code)]

mod eal;
mod ethdev;
pub mod mbuf;
pub mod steer;

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use dpdk_sys as ffi;

pub use super::dpdk_options::DpdkOptions;
pub use ethdev::PortInfo;
pub use mbuf::DpdkFrame;

use super::{Burst, DeviceStats, DeviceStatsReader, Frame, PortId, Queues, MAX_BURST};
use ethdev::Mempool;

/// A start-up error, naming the port or EAL step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dpdk: {0}")]
pub struct DpdkError(pub String);

/// How the outside port's frames are spread over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// One worker, or the inside port (control traffic only): queue `i`'s
    /// frames stay on worker `i`.
    Single,
    /// The NIC hashes the L3 source (`rss_hf` as configured).
    Rss { rss_hf: u64 },
    /// The software fallback of [`steer`]; `rss_hf` the driver's ordinary
    /// RSS types in use before it (0: none, every frame on queue 0).
    Software { rss_hf: u64 },
}

impl Spread {
    pub const fn as_str(self) -> &'static str {
        match self {
            Spread::Single => "single",
            Spread::Rss { .. } => "rss",
            Spread::Software { .. } => "software",
        }
    }
}

/// Backend counters of one worker, published with relaxed stores (one
/// writer, no read-modify-write) and summed by [`DpdkStats`].
#[derive(Debug, Default)]
struct QueueCounters {
    rx_multiseg: [AtomicU64; 2],
    steered: AtomicU64,
    steer_dropped: AtomicU64,
}

/// The plain counters a worker keeps before publishing them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Local {
    rx_multiseg: [u64; 2],
    steered: u64,
    steer_dropped: u64,
}

/// Owns the started ports: stops and closes them when dropped (after the
/// last queue set and the stats reader).
#[derive(Debug)]
struct Ports {
    /// The devices: outside and inside, or one device for both
    /// ([`open_single`]).
    info: Vec<PortInfo>,
    /// Index into `info` of each [`PortId`].
    slot: [usize; 2],
    counters: Vec<Arc<CachePadded<QueueCounters>>>,
}

impl Ports {
    fn of(&self, port: PortId) -> &PortInfo {
        &self.info[self.slot[port.index()]]
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        for p in &self.info {
            ethdev::close(&p.name, p.id);
        }
    }
}

/// Reads the ports' device counters (management thread).
#[derive(Debug, Clone)]
pub struct DpdkStats(Arc<Ports>);

impl DpdkStats {
    pub fn info(&self, port: PortId) -> &PortInfo {
        self.0.of(port)
    }
}

impl DeviceStatsReader for DpdkStats {
    fn device_stats(&self, port: PortId) -> Result<DeviceStats, String> {
        let p = self.0.of(port);
        let s = ethdev::stats(&p.name, p.id)?;
        let mut d = DeviceStats {
            ipackets: s.ipackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            rx_nombuf: s.rx_nombuf,
            opackets: s.opackets,
            oerrors: s.oerrors,
            ..DeviceStats::default()
        };
        for c in &self.0.counters {
            d.rx_multiseg += c.rx_multiseg[port.index()].load(Relaxed);
            if port == PortId::Outside {
                d.steered += c.steered.load(Relaxed);
                d.steer_dropped += c.steer_dropped.load(Relaxed);
            }
        }
        Ok(d)
    }

    fn link_up(&self, port: PortId) -> Option<bool> {
        ethdev::link_up(self.0.of(port).id)
    }
}

/// The opened backend: one queue set per worker, in worker order, and the
/// counters reader.
#[derive(Debug)]
pub struct Dpdk {
    pub queues: Vec<DpdkQueues>,
    pub stats: DpdkStats,
}

/// Opens the backend (see the module docs for the steps). Errors name the
/// step and the port.
pub fn open(o: &DpdkOptions) -> Result<Dpdk, DpdkError> {
    o.validate().map_err(DpdkError)?;
    eal::init(&o.eal_args)?;
    let names = [o.outside.as_str(), o.inside.as_str()];
    let mut found = Vec::with_capacity(2);
    for name in names {
        let id = ethdev::port_by_name(name)?;
        let (di, socket) = ethdev::info(name, id)?;
        found.push((name, id, di, socket));
    }
    let mut pools: Vec<(i32, Mempool)> = Vec::new();
    for &(_, _, _, socket) in &found {
        if !pools.iter().any(|(s, _)| *s == socket) {
            let name = format!("moat_mbufs_s{socket}");
            pools.push((socket, ethdev::mempool(&name, o.mbufs, o.mbuf_cache, socket)?));
        }
    }
    let pool_of = |socket: i32| pools.iter().find(|(s, _)| *s == socket).map(|(_, p)| *p);
    let sizes = ethdev::QueueSizes {
        queues: o.workers as u16,
        rx_desc: o.rx_desc,
        tx_desc: o.tx_desc,
        link_wait: o.link_wait,
    };
    let mut info = Vec::with_capacity(2);
    for (i, (name, id, di, socket)) in found.iter().enumerate() {
        let pool = pool_of(*socket).ok_or_else(|| DpdkError(format!("no mempool for socket {socket}")))?;
        match ethdev::setup(name, *id, di, *socket, pool, sizes, i == 0) {
            Ok(p) => info.push(p),
            Err(e) => {
                for p in &info {
                    ethdev::close(&p.name, p.id);
                }
                return Err(e);
            }
        }
    }
    let alloc_pool = pool_of(info[0].socket).ok_or_else(|| DpdkError("no mempool".into()))?;
    let software = matches!(info[0].spread, Spread::Software { .. });
    let meshes = if software {
        steer::mesh(o.workers, o.steer_ring).into_iter().map(Some).collect()
    } else {
        (0..o.workers).map(|_| None).collect::<Vec<_>>()
    };
    Ok(assemble(info, [0, 1], alloc_pool, meshes))
}

/// Opens one device (`device`, found by name after EAL starts with
/// `eal_args`) with `queues` RX and TX queues, for a sender (`moat gen`):
/// both [`PortId`]s name it, nothing is spread (each queue set keeps what
/// its RX queue gets). The mempool is sized as [`DpdkOptions::auto_mbufs`]
/// for that many workers.
pub fn open_single(eal_args: &[String], device: &str, queues: usize) -> Result<Dpdk, DpdkError> {
    let o = DpdkOptions {
        eal_args: eal_args.to_vec(),
        workers: queues,
        ..DpdkOptions::default()
    };
    if queues == 0 || queues > usize::from(u16::MAX) {
        return Err(DpdkError(format!("{queues} queues is out of range")));
    }
    eal::init(&o.eal_args)?;
    let id = ethdev::port_by_name(device)?;
    let (di, socket) = ethdev::info(device, id)?;
    let mbufs = u32::try_from(o.auto_mbufs()).unwrap_or(u32::MAX);
    let pool = ethdev::mempool(&format!("moat_mbufs_s{socket}"), mbufs, o.mbuf_cache, socket)?;
    let sizes = ethdev::QueueSizes {
        queues: queues as u16,
        rx_desc: o.rx_desc,
        tx_desc: o.tx_desc,
        link_wait: o.link_wait,
    };
    let info = ethdev::setup(device, id, &di, socket, pool, sizes, false)?;
    Ok(assemble(vec![info], [0, 0], pool, (0..queues).map(|_| None).collect()))
}

/// The queue sets over started ports `info` (`slot`: which one each
/// [`PortId`] is), one per entry of `meshes`.
fn assemble(info: Vec<PortInfo>, slot: [usize; 2], alloc_pool: Mempool, mut meshes: Vec<Option<steer::Mesh>>) -> Dpdk {
    let workers = meshes.len();
    let counters: Vec<_> = (0..workers)
        .map(|_| Arc::new(CachePadded::new(QueueCounters::default())))
        .collect();
    let ids = slot.map(|i| info[i].id);
    let macs = slot.map(|i| info[i].mac);
    let ports = Arc::new(Ports { info, slot, counters });
    let queues = (0..workers)
        .map(|w| DpdkQueues {
            worker: w,
            workers,
            ids,
            macs,
            queue: w as u16,
            pool: alloc_pool,
            mesh: meshes[w].take(),
            scratch: Scratch([core::ptr::null_mut(); MAX_BURST]),
            pending: Pending {
                mbufs: [core::ptr::null_mut(); MAX_BURST],
                len: 0,
            },
            registered: None,
            local: Local::default(),
            shared: Arc::clone(&ports.counters[w]),
            _ports: Arc::clone(&ports),
        })
        .collect();
    Dpdk {
        queues,
        stats: DpdkStats(ports),
    }
}

/// Mbuf pointers for one `rte_eth_rx_burst`/`rte_eth_tx_burst` call; they
/// carry no ownership between calls.
struct Scratch([*mut ffi::rte_mbuf; MAX_BURST]);

// SAFETY: the array only holds pointers during one call on the owning
// thread; between calls its contents are stale and never dereferenced.
unsafe impl Send for Scratch {}

/// Freed mbufs not yet given back to their pool: the first `len` are
/// owned by the worker's queues, freed together by
/// [`DpdkQueues::release_pending`].
struct Pending {
    mbufs: [*mut ffi::rte_mbuf; MAX_BURST],
    len: usize,
}

// SAFETY: the first `len` pointers are mbufs owned by this value alone
// (moved in by `DpdkQueues::free`), like a `DpdkFrame` each, which is `Send`
// (pools are thread-safe); the rest are stale and never dereferenced.
unsafe impl Send for Pending {}

/// One worker's RX and TX queue on both ports.
pub struct DpdkQueues {
    worker: usize,
    workers: usize,
    ids: [u16; 2],
    macs: [[u8; 6]; 2],
    queue: u16,
    pool: Mempool,
    mesh: Option<steer::Mesh>,
    scratch: Scratch,
    pending: Pending,
    /// The thread that registered with EAL, once it has (`Err`: EAL
    /// refused; the worker runs without a mempool cache).
    registered: Option<Result<std::thread::ThreadId, String>>,
    local: Local,
    shared: Arc<CachePadded<QueueCounters>>,
    _ports: Arc<Ports>,
}

impl core::fmt::Debug for DpdkQueues {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DpdkQueues")
            .field("worker", &self.worker)
            .field("ports", &self.ids)
            .field("queue", &self.queue)
            .field("software_steering", &self.mesh.is_some())
            .finish()
    }
}

impl DpdkQueues {
    pub fn worker(&self) -> usize {
        self.worker
    }

    #[inline]
    fn ensure_registered(&mut self) {
        if self.registered.is_some() {
            return;
        }
        let r = eal::register_thread().map(|()| std::thread::current().id());
        if let Err(e) = &r {
            eprintln!(
                "moat: dpdk worker {}: {e}; running without a mempool cache",
                self.worker
            );
        }
        self.registered = Some(r);
    }

    /// Gives the pending freed mbufs back to their pool in one call.
    #[inline]
    fn release_pending(&mut self) {
        let n = self.pending.len;
        if n == 0 {
            return;
        }
        self.pending.len = 0;
        // SAFETY: the first n pending slots hold valid mbufs that we own
        // (see `Pending`) and no longer track after this call (len is 0).
        unsafe { ffi::rte_pktmbuf_free_bulk(self.pending.mbufs.as_mut_ptr(), n as u32) }
    }

    fn publish(&self) {
        let (c, l) = (&self.shared, &self.local);
        for i in 0..2 {
            c.rx_multiseg[i].store(l.rx_multiseg[i], Relaxed);
        }
        c.steered.store(l.steered, Relaxed);
        c.steer_dropped.store(l.steer_dropped, Relaxed);
    }

    /// Receives up to `n` mbufs from the device into the scratch array;
    /// returns how many.
    #[inline]
    fn rx_device(&mut self, port: PortId, n: usize) -> usize {
        // SAFETY: the scratch array has room for MAX_BURST >= n pointers;
        // queue `self.queue` of the started port is this worker's alone.
        usize::from(unsafe {
            ffi::rte_eth_rx_burst(
                self.ids[port.index()],
                self.queue,
                self.scratch.0.as_mut_ptr(),
                n as u16,
            )
        })
    }

    /// Takes ownership of scratch slot `i` (filled by the last
    /// `rx_device`); `None` (and freed, counted) for a multi-segment mbuf.
    #[inline]
    fn take(&mut self, port: PortId, i: usize) -> Option<DpdkFrame> {
        let m = NonNull::new(self.scratch.0[i])?;
        // SAFETY: rte_eth_rx_burst handed this mbuf to us and nothing else
        // holds it; single-segment is checked right below before any use as
        // a frame (a multi-segment one is only freed, which frees its chain).
        let f = unsafe { DpdkFrame::from_raw(m) };
        // SAFETY: a valid mbuf we own.
        if unsafe { m.as_ref() }.nb_segs != 1 {
            self.local.rx_multiseg[port.index()] += 1;
            drop(f);
            return None;
        }
        Some(f)
    }

    /// Frames other workers steered to this one.
    fn drain_incoming(&mut self, out: &mut Burst<DpdkFrame>, max: usize) -> usize {
        let Some(mesh) = &mut self.mesh else { return 0 };
        let mut got = 0;
        for c in mesh.from.iter_mut().flatten() {
            while got < max && !out.is_full() {
                let Ok(f) = c.pop() else { break };
                out.push(f);
                got += 1;
            }
        }
        got
    }
}

impl Drop for DpdkQueues {
    fn drop(&mut self) {
        self.release_pending();
        self.publish();
        if matches!(self.registered, Some(Ok(t)) if t == std::thread::current().id()) {
            eal::unregister_thread();
        }
    }
}

impl Queues for DpdkQueues {
    type Frame = DpdkFrame;

    fn rx_burst(&mut self, port: PortId, out: &mut Burst<DpdkFrame>, max: usize) -> usize {
        self.ensure_registered();
        // The last burst's dropped frames back to the pool before the
        // driver refills its ring from it.
        self.release_pending();
        let max = max.min(out.remaining_capacity()).min(MAX_BURST);
        let before = self.local;
        let steering = port == PortId::Outside && self.mesh.is_some();
        let mut got = if steering { self.drain_incoming(out, max) } else { 0 };
        let n = self.rx_device(port, max - got);
        for i in 0..n {
            let Some(f) = self.take(port, i) else { continue };
            let to = if steering {
                steer::owner(f.data(), self.workers).filter(|&w| w != self.worker)
            } else {
                None
            };
            match (to, &mut self.mesh) {
                (Some(w), Some(mesh)) => match mesh.to[w].as_mut().map(|p| p.push(f)) {
                    Some(Ok(())) => self.local.steered += 1,
                    // Full (or, at shutdown, abandoned) ring: the frame is
                    // dropped, which frees it.
                    _ => self.local.steer_dropped += 1,
                },
                _ => {
                    out.push(f);
                    got += 1;
                }
            }
        }
        if self.local != before {
            self.publish();
        }
        got
    }

    fn tx_burst(&mut self, port: PortId, frames: &mut Burst<DpdkFrame>) -> usize {
        let n = frames.len();
        if n == 0 {
            return 0;
        }
        for (slot, f) in self.scratch.0.iter_mut().zip(frames.iter()) {
            // Borrowed for the call; ownership moves only for sent ones.
            *slot = f.as_ptr();
        }
        // SAFETY: the first n scratch slots are valid mbufs owned by
        // `frames`; queue `self.queue` of the started port is this
        // worker's alone. The driver takes ownership of the first `sent`.
        let sent = usize::from(unsafe {
            ffi::rte_eth_tx_burst(
                self.ids[port.index()],
                self.queue,
                self.scratch.0.as_mut_ptr(),
                n as u16,
            )
        });
        for f in frames.drain(..sent) {
            // The driver owns (and will free) it now.
            let _ = f.into_raw();
        }
        sent
    }

    /// Deferred: the mbuf joins the pending array, which goes back to its
    /// pool in one `rte_pktmbuf_free_bulk` call when it is full and before
    /// the next receive (a flood's dropped frames cost one call per burst,
    /// not one `rte_pktmbuf_free` each).
    #[inline]
    fn free(&mut self, f: DpdkFrame) {
        if self.pending.len == MAX_BURST {
            self.release_pending();
        }
        self.pending.mbufs[self.pending.len] = f.into_raw();
        self.pending.len += 1;
    }

    fn alloc(&mut self) -> Option<DpdkFrame> {
        self.ensure_registered();
        self.release_pending();
        // SAFETY: a valid mempool that lives forever.
        let m = NonNull::new(unsafe { ffi::rte_pktmbuf_alloc(self.pool.0.as_ptr()) })?;
        // SAFETY: a fresh, single-segment, empty mbuf nobody else holds.
        Some(unsafe { DpdkFrame::from_raw(m) })
    }

    fn flush(&mut self) {
        self.release_pending();
        self.publish();
    }

    fn mac(&self, port: PortId) -> Option<[u8; 6]> {
        Some(self.macs[port.index()])
    }
}
