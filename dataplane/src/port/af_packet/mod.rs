//! The AF_PACKET backend (Linux): each worker gets, on each port, its own
//! packet socket with a TPACKET_V3 receive ring mapped into the process, and
//! frames are processed in place inside that ring (zero copy).
//!
//! Per worker and port, one `SOCK_RAW` socket bound to the interface for
//! every protocol:
//! - **RX**: [`ring::Ring`]. `PACKET_RESERVE` = [`HEADROOM`] gives every
//!   frame at least that much headroom inside its ring slot (GRE prepends in
//!   place); blocks retire after `retire_ms` so an idle link still delivers
//!   promptly. Polling reads memory only: no syscall when nothing arrived.
//!   Promiscuous (`PACKET_MR_PROMISC`), and `PACKET_IGNORE_OUTGOING` (plus
//!   the fanout flag of the same name) so that we never receive what we send.
//! - **Zero copy**: a received frame ([`AfPacketFrame::Ring`]) points into
//!   its ring block. The block goes back to the kernel once every frame taken
//!   from it has come back through `tx_burst` or `free`, in any order, on
//!   either port's queues of this worker (GRE re-injection sends frames
//!   received outside on the inside port). See `ring.rs` for the rules that
//!   make this sound. A worker that holds frames stalls its own ring, not
//!   memory: when every block is held the kernel drops (and counts, see
//!   [`AfPacketQueues::kernel_stats`]) what arrives.
//! - **TX**: one `sendmmsg` per burst, one iovec per frame,
//!   `PACKET_QDISC_BYPASS` on (so local taps such as tcpdump on the node do
//!   not see our output). Frames the kernel did not take stay in the burst.
//!   `alloc` hands out heap frames from a small per-worker [`Pool`].
//! - **Checksums**: `TP_STATUS_CSUMNOTREADY` is [`Csum::Partial`],
//!   `TP_STATUS_CSUM_VALID` is [`Csum::Valid`].
//! - **802.1Q**: the kernel strips a VLAN tag into metadata before packet
//!   sockets see the frame; it is written back in front of the EtherType
//!   (in the headroom), so the worker sees the frame as it was on the wire.
//! - **Several workers**: `PACKET_FANOUT_CBPF` with the program of
//!   [`fanout`]: hash(source address) % workers, so one source always lands
//!   on one worker. Workers join in order (worker `i` is member `i`); the
//!   group id comes from the kernel (`PACKET_FANOUT_FLAG_UNIQUEID`), so
//!   several backends in one process or on one host never collide. Until the
//!   whole group has joined, each socket has a drop-all filter, so no packet
//!   reaches a worker other than its source's. `PACKET_FANOUT_FLAG_DEFRAG` is
//!   off: fragments reach the classifier as fragments.
//!
//! [`single::open_single`] opens one interface on its own, for a sender
//! (`moat gen --iface`) rather than a node.
//!
//! Errors from [`open`] name the interface and the step, e.g.
//! `out0: PACKET_RX_RING: Operation not permitted (os error 1)`.

pub mod fanout;
pub mod filter;
mod ring;
pub mod single;
mod sys;

use super::{Burst, Csum, Frame, HeapFrame, Pool, PortId, Queues, HEADROOM};
use ring::{Ring, RingFrame, RxPacket};
use std::io;
use sys::{Socket, TxScratch};

/// Heap frames per worker for the frames it originates (ARP requests).
pub const POOL_FRAMES: usize = 64;

/// Smallest ring block: holds the largest frame (`MAX_FRAME`, 9216 bytes)
/// with its headers and headroom.
pub const MIN_BLOCK_SIZE: usize = 16 * 1024;

/// Most sockets in a fanout group (`PACKET_FANOUT_MAX` in the kernel).
pub const MAX_WORKERS: usize = 256;

/// What [`open`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Interface toward the Internet.
    pub outside: String,
    /// Interface toward the origins.
    pub inside: String,
    /// Workers; each gets one socket (and ring) per port.
    pub workers: usize,
    /// Bytes per ring block: a multiple of the page size, at least
    /// [`MIN_BLOCK_SIZE`].
    pub block_size: usize,
    /// Blocks per ring (at least 2). Memory: `block_size * block_count`
    /// per socket, two sockets per worker.
    pub block_count: usize,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full; 0 lets the kernel choose (8 ms and more).
    pub retire_ms: u32,
}

impl Default for AfPacketConfig {
    /// 256 KiB x 16 = 4 MiB per socket: about 2,700 full-size frames or
    /// 30,000 small ones in flight per worker and port; 1 ms retirement.
    fn default() -> Self {
        AfPacketConfig {
            outside: String::new(),
            inside: String::new(),
            workers: 1,
            block_size: 256 * 1024,
            block_count: 16,
            retire_ms: 1,
        }
    }
}

impl AfPacketConfig {
    fn validate(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, format!("af_packet: {msg}")));
        let page = sys::page_size();
        if self.outside.is_empty() || self.inside.is_empty() {
            return bad("outside and inside interfaces must be named".into());
        }
        if self.outside == self.inside {
            return bad(format!("outside and inside are the same interface ({})", self.outside));
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return bad(format!("workers {} is not in 1..={MAX_WORKERS}", self.workers));
        }
        if self.block_size < MIN_BLOCK_SIZE || self.block_size & (page - 1) != 0 || self.block_size > u32::MAX as usize
        {
            return bad(format!(
                "block_size {} is not a multiple of the page size ({page}) of at least {MIN_BLOCK_SIZE}",
                self.block_size
            ));
        }
        let ring_len = self.block_count.checked_mul(self.block_size);
        if self.block_count < 2 || !matches!(ring_len, Some(n) if n <= u32::MAX as usize) {
            return bad(format!(
                "block_count {} is not at least 2 with a ring under 4 GiB",
                self.block_count
            ));
        }
        Ok(())
    }
}

/// A frame of this backend: in place in a receive ring, or a heap frame
/// from the worker's pool.
#[derive(Debug)]
pub enum AfPacketFrame {
    Ring(RingFrame),
    Heap(HeapFrame),
}

macro_rules! each {
    ($self:expr, $f:ident => $e:expr) => {
        match $self {
            AfPacketFrame::Ring($f) => $e,
            AfPacketFrame::Heap($f) => $e,
        }
    };
}

impl Frame for AfPacketFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        each!(self, f => f.data())
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        each!(self, f => f.data_mut())
    }
    #[inline]
    fn headroom(&self) -> usize {
        each!(self, f => f.headroom())
    }
    #[inline]
    fn capacity(&self) -> usize {
        each!(self, f => f.capacity())
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        each!(self, f => f.prepend(n))
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        each!(self, f => f.adj(n))
    }
    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        each!(self, f => f.set_len(len))
    }
    fn csum(&self) -> Csum {
        each!(self, f => f.csum())
    }
    fn set_csum(&mut self, c: Csum) {
        each!(self, f => f.set_csum(c))
    }

    /// A ring frame has little tailroom (its slot ends at the next packet),
    /// so a reply longer than the frame's capacity also uses the headroom.
    fn replace(&mut self, bytes: &[u8]) -> bool {
        let short = bytes.len().saturating_sub(self.capacity());
        if short > self.headroom() {
            return false;
        }
        // Prepending `short` grows the capacity by as much, so both succeed.
        if !(self.prepend(short) && self.set_len(bytes.len())) {
            return false;
        }
        self.data_mut().copy_from_slice(bytes);
        true
    }
}

/// Counters of one worker's queue on one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    /// Received longer than a ring block holds (cut by the kernel): freed,
    /// not handed out.
    pub rx_truncated: u64,
    /// Ring blocks whose packet chain did not parse (a kernel/ABI mismatch;
    /// the rest of such a block is skipped).
    pub rx_malformed: u64,
    pub tx_packets: u64,
    /// `sendmmsg` calls that failed with something other than a full
    /// queue (the frames stayed in the burst).
    pub tx_errors: u64,
    /// Frames given back that belonged to another worker's rings (a caller
    /// bug): leaked, so that their ring blocks stay held (never unsound).
    pub foreign_frames: u64,
}

#[derive(Debug)]
struct Port {
    name: String,
    sock: Socket,
    ring: Ring,
    mac: [u8; 6],
    tx: TxScratch,
    stats: PortStats,
}

/// One worker's queues on the outside and inside interfaces.
#[derive(Debug)]
pub struct AfPacketQueues {
    worker: usize,
    ports: [Port; 2],
    pool: Pool,
}

/// Opens the backend: one [`AfPacketQueues`] per worker, in worker order.
/// Needs CAP_NET_RAW. Open it in the network namespace of the interfaces
/// (the sockets stay there whatever thread later uses them).
pub fn open(cfg: &AfPacketConfig) -> io::Result<Vec<AfPacketQueues>> {
    cfg.validate()?;
    let outside = open_port(&cfg.outside, cfg)?;
    let inside = open_port(&cfg.inside, cfg)?;
    Ok(outside
        .into_iter()
        .zip(inside)
        .enumerate()
        .map(|(worker, (o, i))| AfPacketQueues {
            worker,
            ports: [o, i],
            pool: Pool::new(POOL_FRAMES),
        })
        .collect())
}

/// Prefixes an error with the interface and the step that failed.
fn step<T>(name: &str, what: &str, r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| io::Error::new(e.kind(), format!("{name}: {what}: {e}")))
}

/// The fanout mode every member sets: classic BPF, outgoing packets ignored
/// by the group's hook (the group replaces the sockets' own hooks, so their
/// `PACKET_IGNORE_OUTGOING` alone would not do).
const FANOUT_MODE: u32 = libc::PACKET_FANOUT_CBPF | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;

/// One socket per worker on interface `name`, fanout group joined in
/// worker order.
fn open_port(name: &str, cfg: &AfPacketConfig) -> io::Result<Vec<Port>> {
    let ifindex = step(name, "if_nametoindex", sys::if_index(name))?;
    let fanout = cfg.workers > 1;
    let mut group = None;
    let mut ports = Vec::with_capacity(cfg.workers);
    for _ in 0..cfg.workers {
        let sock = step(name, "socket", Socket::new())?;
        let v3 = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        step(name, "PACKET_VERSION", sock.set_packet_int(libc::PACKET_VERSION, v3))?;
        step(
            name,
            "PACKET_RESERVE",
            sock.set_packet_int(libc::PACKET_RESERVE, HEADROOM as libc::c_int),
        )?;
        let blocks = cfg.block_count as u32;
        step(
            name,
            "PACKET_RX_RING",
            Ring::request(&sock, cfg.block_size, blocks, cfg.retire_ms),
        )?;
        let ring = step(name, "mmap", Ring::map(&sock, cfg.block_size, blocks))?;
        if fanout {
            step(name, "SO_ATTACH_FILTER", sock.attach_filter(&fanout::drop_all()))?;
        }
        step(name, "bind", sock.bind(ifindex))?;
        step(name, "PACKET_ADD_MEMBERSHIP", sock.add_promisc(ifindex))?;
        step(
            name,
            "PACKET_IGNORE_OUTGOING",
            sock.set_packet_int(libc::PACKET_IGNORE_OUTGOING, 1),
        )?;
        step(
            name,
            "PACKET_QDISC_BYPASS",
            sock.set_packet_int(libc::PACKET_QDISC_BYPASS, 1),
        )?;
        let mac = step(name, "getsockname", sock.hw_addr())?;
        if fanout {
            group = Some(step(name, "PACKET_FANOUT", join_fanout(&sock, group, cfg.workers))?);
        }
        ports.push(Port {
            name: name.to_owned(),
            sock,
            ring,
            mac,
            tx: TxScratch::default(),
            stats: PortStats::default(),
        });
    }
    if fanout {
        for p in &ports {
            step(name, "SO_DETACH_FILTER", p.sock.detach_filter())?;
        }
    }
    Ok(ports)
}

/// Joins the port's fanout group: the first socket creates it with a
/// kernel-chosen id and sets the program, the others join by that id.
fn join_fanout(sock: &Socket, group: Option<u16>, workers: usize) -> io::Result<u16> {
    match group {
        None => {
            let mode = FANOUT_MODE | libc::PACKET_FANOUT_FLAG_UNIQUEID;
            sock.set_packet_int(libc::PACKET_FANOUT, (mode << 16) as libc::c_int)?;
            let id = sock.get_packet_int(libc::PACKET_FANOUT)? as u16;
            sock.set_fanout_program(&fanout::program(workers))?;
            Ok(id)
        }
        Some(id) => {
            sock.set_packet_int(libc::PACKET_FANOUT, (u32::from(id) | FANOUT_MODE << 16) as libc::c_int)?;
            Ok(id)
        }
    }
}

/// Sends `frames` from the front on `sock` and counts them: the frames
/// sent, or one error when the kernel refused the batch (the frames stay in
/// `frames` for the caller). Returns how many were sent.
fn transmit(tx: &mut TxScratch, sock: &Socket, stats: &mut PortStats, frames: &[AfPacketFrame]) -> usize {
    let sent = tx.send(sock, frames).unwrap_or_else(|_| {
        stats.tx_errors += 1;
        0
    });
    stats.tx_packets += sent as u64;
    sent
}

/// Takes up to `max` frames from `ring` into `out` (see the module docs:
/// truncated frames freed and counted, VLAN tags written back).
fn receive(ring: &mut Ring, stats: &mut PortStats, out: &mut Burst<AfPacketFrame>, max: usize) -> usize {
    let mut n = 0;
    while !out.is_full() && n < max {
        let Some(RxPacket {
            frame: mut f,
            status,
            wire_len,
            vlan_tci,
            vlan_tpid,
        }) = ring.take()
        else {
            break;
        };
        if f.data().len() < wire_len as usize {
            stats.rx_truncated += 1;
            let _ = ring.put(f);
            continue;
        }
        f.set_csum(csum_of(status));
        if status & libc::TP_STATUS_VLAN_VALID != 0 {
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                vlan_tpid
            } else {
                0x8100
            };
            insert_vlan(&mut f, tpid, vlan_tci);
        }
        out.push(AfPacketFrame::Ring(f));
        n += 1;
    }
    stats.rx_packets += n as u64;
    n
}

fn csum_of(status: u32) -> Csum {
    if status & libc::TP_STATUS_CSUMNOTREADY != 0 {
        Csum::Partial
    } else if status & libc::TP_STATUS_CSUM_VALID != 0 {
        Csum::Valid
    } else {
        Csum::Unknown
    }
}

/// Writes the 802.1Q tag the kernel took out of the frame back after the
/// MAC addresses, into 4 bytes of headroom (a frame too short for that, not
/// Ethernet, stays as it is).
fn insert_vlan(f: &mut RingFrame, tpid: u16, tci: u16) {
    if f.data().len() < 12 || !f.prepend(4) {
        return;
    }
    let d = f.data_mut();
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&tpid.to_be_bytes());
    d[14..16].copy_from_slice(&tci.to_be_bytes());
}

impl AfPacketQueues {
    /// This worker's index (its member index in the fanout groups).
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The interface of `port`.
    pub fn interface(&self, port: PortId) -> &str {
        &self.ports[port.index()].name
    }

    pub fn stats(&self, port: PortId) -> PortStats {
        let p = &self.ports[port.index()];
        PortStats {
            rx_malformed: p.ring.malformed(),
            ..p.stats
        }
    }

    /// The kernel's counters for this socket since the last call: (packets
    /// received, packets dropped because the ring was full). One syscall:
    /// call it outside bursts.
    pub fn kernel_stats(&self, port: PortId) -> io::Result<(u32, u32)> {
        let p = &self.ports[port.index()];
        step(&p.name, "PACKET_STATISTICS", p.sock.take_stats())
    }

    /// Replaces `port`'s socket filter by `prog` (classic BPF, see
    /// [`filter`]): what it drops never reaches the ring. One syscall, at
    /// start-up (a fanout member's filter is the fanout's business: do not
    /// use this on a backend opened with several workers).
    pub fn set_rx_filter(&self, port: PortId, prog: &[libc::sock_filter]) -> io::Result<()> {
        let p = &self.ports[port.index()];
        step(&p.name, "SO_ATTACH_FILTER", p.sock.attach_filter(prog))
    }

    /// Frames taken from `port`'s ring and not given back yet.
    pub fn frames_out(&self, port: PortId) -> u64 {
        self.ports[port.index()].ring.outstanding()
    }

    fn give_back(&mut self, f: AfPacketFrame) {
        match f {
            AfPacketFrame::Heap(h) => self.pool.free(h),
            AfPacketFrame::Ring(r) => {
                let r = match self.ports[0].ring.put(r) {
                    Ok(()) => return,
                    Err(r) => r,
                };
                if self.ports[1].ring.put(r).is_err() {
                    // Not ours: dropping the RingFrame leaks its slot, which
                    // keeps its block out of the kernel's hands (sound).
                    self.ports[0].stats.foreign_frames += 1;
                }
            }
        }
    }
}

impl Queues for AfPacketQueues {
    type Frame = AfPacketFrame;

    fn rx_burst(&mut self, port: PortId, out: &mut Burst<AfPacketFrame>, max: usize) -> usize {
        let p = &mut self.ports[port.index()];
        receive(&mut p.ring, &mut p.stats, out, max)
    }

    fn tx_burst(&mut self, port: PortId, frames: &mut Burst<AfPacketFrame>) -> usize {
        let p = &mut self.ports[port.index()];
        let sent = transmit(&mut p.tx, &p.sock, &mut p.stats, frames);
        for f in frames.drain(..sent) {
            self.give_back(f);
        }
        sent
    }

    fn free(&mut self, f: AfPacketFrame) {
        self.give_back(f);
    }

    fn alloc(&mut self) -> Option<AfPacketFrame> {
        self.pool.alloc().map(AfPacketFrame::Heap)
    }

    fn tx_errors(&self, port: PortId) -> u64 {
        self.ports[port.index()].stats.tx_errors
    }

    fn mac(&self, port: PortId) -> Option<[u8; 6]> {
        Some(self.ports[port.index()].mac)
    }
}
