//! Packet I/O: one worker's receive and transmit queues on every port of the
//! node, over packet buffers with headroom (DESIGN.md, "Threading and memory
//! model"; smoltcp `phy::Device` for the shape).
//!
//! Contract:
//! - A backend hands each worker one [`Queues`] value. It owns that worker's
//!   RX and TX queue on both ports (outside and inside) and the buffers they
//!   use; nothing in it is shared with another worker, so nothing locks.
//! - Frames are owned values ([`Frame`]). Every frame that `rx_burst` or
//!   `alloc` hands out goes back exactly once, through `tx_burst` (sent) or
//!   `free` (dropped); a backend may recycle the memory only then. Frames of
//!   one port may be sent on another (GRE re-injection sends frames received
//!   outside on the inside port).
//! - Nothing here allocates, locks or logs per packet. Bursts are
//!   fixed-capacity arrays ([`Burst`]), reused by the worker.
//! - Frames carry headroom ([`HEADROOM`] at least, from the backend) so that
//!   GRE encapsulation prepends its headers in place, without a copy.

#[cfg(target_os = "linux")]
pub mod af_packet;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod dpdk_options;
pub mod heap;
pub mod memory;
pub mod pcap;

use arrayvec::ArrayVec;
use classifier::time::Nanos;

pub use heap::{HeapFrame, Pool};

/// Largest burst a worker asks for (config `dataplane.burst` is 1..=this).
pub const MAX_BURST: usize = 512;

/// Least headroom every backend leaves before a received frame: the GRE
/// overhead with a key (14 + 20 + 8 = 42 bytes) fits with room to spare,
/// even after the 14-byte inner Ethernet header is stripped.
pub const HEADROOM: usize = 64;

/// A burst of frames: a fixed array on the worker's stack, never a heap
/// `Vec` per burst.
pub type Burst<F> = ArrayVec<F, MAX_BURST>;

/// The node's ports, by role. A worker has one queue on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortId {
    /// Toward the Internet: client and attack traffic in, challenges out.
    Outside = 0,
    /// Toward the origins: GRE out, ARP in and out.
    Inside = 1,
}

impl PortId {
    pub const ALL: [PortId; 2] = [PortId::Outside, PortId::Inside];

    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            PortId::Outside => "outside",
            PortId::Inside => "inside",
        }
    }
}

/// What the backend knows about a received frame's L4 checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Csum {
    /// Nothing known: the checksum is whatever the sender wrote.
    #[default]
    Unknown,
    /// Verified by the NIC/kernel.
    Valid,
    /// Not filled in yet (a local sender with checksum offload: the field
    /// holds the pseudo-header sum). Must be completed before the frame
    /// leaves for another host.
    Partial,
}

/// A packet buffer: `data()` is the frame, with headroom in front of it and
/// tailroom behind it inside one fixed area.
pub trait Frame {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Bytes free in front of the frame.
    fn headroom(&self) -> usize;
    /// Most bytes the frame can hold from its current start.
    fn capacity(&self) -> usize;
    /// Grows the frame at the front by `n` bytes (contents unspecified);
    /// false, and nothing changed, when the headroom is shorter.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front; false, and nothing changed, when
    /// the frame is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Sets the length (grows into tailroom, contents unspecified); false,
    /// and nothing changed, beyond [`Frame::capacity`].
    fn set_len(&mut self, len: usize) -> bool;
    /// The L4 checksum status the backend reported.
    fn csum(&self) -> Csum {
        Csum::Unknown
    }
    /// Marks the L4 checksum as complete (after the worker filled it in).
    fn set_csum(&mut self, _c: Csum) {}
    /// True when the NIC verified the IPv4 header checksum of the frame as
    /// received (DPDK `RTE_MBUF_F_RX_IP_CKSUM_GOOD`): the classifier then
    /// skips summing it again. False (check it) unless the backend knows.
    fn ip_csum_good(&self) -> bool {
        false
    }
    /// The capture timestamp, for backends that replay a capture.
    fn timestamp(&self) -> Option<Nanos> {
        None
    }

    /// Replaces the frame's contents with `bytes` (a reply built elsewhere);
    /// false, and nothing changed, when it does not fit.
    fn replace(&mut self, bytes: &[u8]) -> bool {
        if !self.set_len(bytes.len()) {
            return false;
        }
        self.data_mut().copy_from_slice(bytes);
        true
    }
}

/// One worker's queues on every port of a backend (see the module contract).
pub trait Queues: Send {
    type Frame: Frame + Send;

    /// Receives up to `max` frames (and at most `out.remaining_capacity()`)
    /// from `port`, appended to `out`; returns how many. Never blocks.
    fn rx_burst(&mut self, port: PortId, out: &mut Burst<Self::Frame>, max: usize) -> usize;

    /// Sends the frames of `frames` on `port`, from the front. The sent ones
    /// are removed; those the port could not take stay in `frames` for the
    /// caller to retry or free. Returns how many were sent.
    fn tx_burst(&mut self, port: PortId, frames: &mut Burst<Self::Frame>) -> usize;

    /// Gives back a frame that is not sent.
    fn free(&mut self, f: Self::Frame);

    /// A fresh, empty frame (for frames the worker originates, such as ARP
    /// requests); `None` when the pool is empty.
    fn alloc(&mut self) -> Option<Self::Frame>;

    /// Transmit calls on `port` that failed with an error (not a full
    /// queue) since the queues were opened: after such a failure the first
    /// frame left in the burst is the one the port refused. Backends whose
    /// transmit cannot fail that way count none.
    fn tx_errors(&self, _port: PortId) -> u64 {
        0
    }

    /// Outside bursts: flush buffered output (files), amortised upkeep.
    fn flush(&mut self) {}

    /// At stop, after the last burst: flush and close outputs (capture
    /// files). An error names the file or port.
    fn close(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// True when the port will never receive again (a capture file read to
    /// its end); live ports never are.
    fn rx_done(&self, _port: PortId) -> bool {
        false
    }

    /// The port's MAC address, when the backend knows it (read from the
    /// interface).
    fn mac(&self, _port: PortId) -> Option<[u8; 6]> {
        None
    }
}

/// A port's device counters, as the driver keeps them (DPDK
/// `rte_eth_stats`), plus what the backend itself dropped before the
/// worker saw it; summed over the port's queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames the device received.
    pub ipackets: u64,
    /// Frames the device dropped because its RX queues were full.
    pub imissed: u64,
    /// Erroneous frames received.
    pub ierrors: u64,
    /// RX mbuf allocation failures (the pool ran dry).
    pub rx_nombuf: u64,
    /// Frames the device sent.
    pub opackets: u64,
    /// Frames the device failed to send.
    pub oerrors: u64,
    /// Received frames spread over several buffers: freed and counted
    /// (the pipeline works on single-buffer frames).
    pub rx_multiseg: u64,
    /// Frames handed to another worker by the software RSS fallback.
    pub steered: u64,
    /// Frames the software RSS fallback dropped because the other worker's
    /// ring was full.
    pub steer_dropped: u64,
}

/// Reads the ports' device counters from the management thread (while the
/// workers run). Backends without device counters have none.
pub trait DeviceStatsReader: Send + Sync + std::fmt::Debug {
    /// The counters of `port`; an error names the port.
    fn device_stats(&self, port: PortId) -> Result<DeviceStats, String>;

    /// Whether `port`'s link is up now; `None` when the device does not
    /// say (the management plane's health check).
    fn link_up(&self, _port: PortId) -> Option<bool> {
        None
    }
}

/// Sends everything in `frames` on `port`: one retry for what the queue
/// did not take, then the rest is freed. Returns (sent, dropped).
pub fn send_all<Q: Queues>(q: &mut Q, port: PortId, frames: &mut Burst<Q::Frame>) -> (u64, u64) {
    if frames.is_empty() {
        return (0, 0);
    }
    let mut sent = q.tx_burst(port, frames) as u64;
    if !frames.is_empty() {
        sent += q.tx_burst(port, frames) as u64;
    }
    let dropped = frames.len() as u64;
    for f in frames.drain(..) {
        q.free(f);
    }
    (sent, dropped)
}
