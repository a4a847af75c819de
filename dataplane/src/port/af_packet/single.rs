//! One interface on its own, for a traffic generator rather than a node:
//! [`open_single`] gives one [`SingleQueues`] (one socket) per call, so a
//! sender with N threads calls it N times.
//!
//! - **TX**: as the node's backend: one `sendmmsg` per burst,
//!   `PACKET_QDISC_BYPASS` on, [`Queues::tx_errors`] counting the calls
//!   that failed (the first frame left in the burst is the refused one).
//!   `alloc` hands out heap frames from the socket's own [`Pool`].
//! - **RX** only when asked ([`SingleConfig::rx`]): a TPACKET_V3 ring as
//!   the node's, promiscuous, not receiving what it sends. Without it the
//!   socket is bound with protocol 0 and the kernel queues nothing to it,
//!   so a sender pays nothing for the traffic coming back. Several sockets
//!   with RX on one interface each receive every frame (no fanout group).
//! - Both [`PortId`]s name the one interface.

use std::io;

use super::ring::Ring;
use super::sys::{self, Socket, TxScratch};
use super::{step, AfPacketFrame, PortStats, MIN_BLOCK_SIZE};
use crate::port::{Burst, Pool, PortId, Queues, HEADROOM};

/// A receive ring's shape (see [`super::AfPacketConfig`] for the meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRing {
    pub block_size: usize,
    pub block_count: usize,
    pub retire_ms: u32,
}

impl Default for RxRing {
    /// 256 KiB x 8 = 2 MiB, 1 ms retirement.
    fn default() -> Self {
        RxRing {
            block_size: 256 * 1024,
            block_count: 8,
            retire_ms: 1,
        }
    }
}

/// What [`open_single`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleConfig {
    /// Receive too, into a ring of this shape; `None`: send only.
    pub rx: Option<RxRing>,
    /// Heap frames for [`Queues::alloc`]: at least two bursts' worth for a
    /// sender that keeps unsent frames while it refills.
    pub pool: usize,
}

impl Default for SingleConfig {
    fn default() -> Self {
        SingleConfig { rx: None, pool: 256 }
    }
}

/// One socket on one interface (see the module docs).
#[derive(Debug)]
pub struct SingleQueues {
    name: String,
    sock: Socket,
    ring: Option<Ring>,
    mac: [u8; 6],
    tx: TxScratch,
    stats: PortStats,
    pool: Pool,
}

/// Opens interface `iface` for sending (and receiving, with
/// [`SingleConfig::rx`]). Needs CAP_NET_RAW; opens in the calling thread's
/// network namespace. Errors name the interface and the step, e.g.
/// `veth9: if_nametoindex: No such device (os error 19)`.
pub fn open_single(iface: &str, cfg: &SingleConfig) -> io::Result<SingleQueues> {
    let name = iface;
    if cfg.pool == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: a pool of 0 frames cannot send"),
        ));
    }
    let ifindex = step(name, "if_nametoindex", sys::if_index(name))?;
    let sock = step(name, "socket", Socket::new())?;
    let ring = match cfg.rx {
        Some(rx) => Some(rx_ring(name, &sock, rx)?),
        None => None,
    };
    if ring.is_some() {
        step(name, "bind", sock.bind(ifindex))?;
        step(name, "PACKET_ADD_MEMBERSHIP", sock.add_promisc(ifindex))?;
        step(
            name,
            "PACKET_IGNORE_OUTGOING",
            sock.set_packet_int(libc::PACKET_IGNORE_OUTGOING, 1),
        )?;
    } else {
        step(name, "bind", sock.bind_send_only(ifindex))?;
    }
    step(
        name,
        "PACKET_QDISC_BYPASS",
        sock.set_packet_int(libc::PACKET_QDISC_BYPASS, 1),
    )?;
    let mac = step(name, "getsockname", sock.hw_addr())?;
    Ok(SingleQueues {
        name: name.to_owned(),
        sock,
        ring,
        mac,
        tx: TxScratch::default(),
        stats: PortStats::default(),
        pool: Pool::new(cfg.pool),
    })
}

fn rx_ring(name: &str, sock: &Socket, rx: RxRing) -> io::Result<Ring> {
    let page = sys::page_size();
    let ring_len = rx.block_count.checked_mul(rx.block_size);
    if rx.block_size < MIN_BLOCK_SIZE
        || rx.block_size & (page - 1) != 0
        || rx.block_count < 2
        || !matches!(ring_len, Some(n) if n <= u32::MAX as usize)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{name}: ring of {} blocks of {} bytes: blocks must be a multiple of the page size ({page}) of at \
                 least {MIN_BLOCK_SIZE}, at least 2 of them, under 4 GiB in all",
                rx.block_count, rx.block_size
            ),
        ));
    }
    let v3 = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    step(name, "PACKET_VERSION", sock.set_packet_int(libc::PACKET_VERSION, v3))?;
    step(
        name,
        "PACKET_RESERVE",
        sock.set_packet_int(libc::PACKET_RESERVE, HEADROOM as libc::c_int),
    )?;
    let blocks = rx.block_count as u32;
    step(
        name,
        "PACKET_RX_RING",
        Ring::request(sock, rx.block_size, blocks, rx.retire_ms),
    )?;
    step(name, "mmap", Ring::map(sock, rx.block_size, blocks))
}

impl SingleQueues {
    /// The interface.
    pub fn interface(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> PortStats {
        PortStats {
            rx_malformed: self.ring.as_ref().map_or(0, Ring::malformed),
            ..self.stats
        }
    }

    fn give_back(&mut self, f: AfPacketFrame) {
        match f {
            AfPacketFrame::Heap(h) => self.pool.free(h),
            AfPacketFrame::Ring(r) => {
                let back = self.ring.as_mut().map(|ring| ring.put(r));
                if !matches!(back, Some(Ok(()))) {
                    // Not ours: leaked (see `AfPacketQueues::give_back`).
                    self.stats.foreign_frames += 1;
                }
            }
        }
    }
}

impl Queues for SingleQueues {
    type Frame = AfPacketFrame;

    fn rx_burst(&mut self, _port: PortId, out: &mut Burst<AfPacketFrame>, max: usize) -> usize {
        match &mut self.ring {
            Some(ring) => super::receive(ring, &mut self.stats, out, max),
            None => 0,
        }
    }

    fn tx_burst(&mut self, _port: PortId, frames: &mut Burst<AfPacketFrame>) -> usize {
        let sent = super::transmit(&mut self.tx, &self.sock, &mut self.stats, frames);
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

    fn tx_errors(&self, _port: PortId) -> u64 {
        self.stats.tx_errors
    }

    fn mac(&self, _port: PortId) -> Option<[u8; 6]> {
        Some(self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interface_is_named() {
        let e = open_single("moat-no-such-if0", &SingleConfig::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("moat-no-such-if0: "), "{msg}");
        let e = open_single("lo", &SingleConfig { rx: None, pool: 0 }).unwrap_err();
        assert!(e.to_string().contains("pool of 0"), "{e}");
    }
}
