//! The DPDK backend's options, and the mbuf arithmetic that config
//! validation shares with it (plain data: built with or without the `dpdk`
//! feature).

use std::time::Duration;

use super::MAX_BURST;

/// What `port::dpdk::open` opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkOptions {
    /// EAL arguments (`--vdev`, `-l`, `--no-huge`, ...), program name
    /// excluded.
    pub eal_args: Vec<String>,
    /// Device name of the outside port (`net_pcap0`, `0000:03:00.0`).
    pub outside: String,
    /// Device name of the inside port.
    pub inside: String,
    pub workers: usize,
    /// Mbufs per mempool (one pool per NUMA socket of the ports).
    pub mbufs: u32,
    /// Per-lcore mempool cache (at most 512, DPDK's limit).
    pub mbuf_cache: u32,
    /// Descriptors per RX / TX queue (the driver may round them).
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Frames per software-steering ring (one per ordered worker pair).
    pub steer_ring: usize,
    /// How long to wait for each port's link before going on.
    pub link_wait: Duration,
}

impl Default for DpdkOptions {
    fn default() -> Self {
        DpdkOptions {
            eal_args: Vec::new(),
            outside: String::new(),
            inside: String::new(),
            workers: 1,
            mbufs: 16383,
            mbuf_cache: 256,
            rx_desc: 1024,
            tx_desc: 1024,
            steer_ring: 1024,
            link_wait: Duration::from_secs(5),
        }
    }
}

impl DpdkOptions {
    /// Mbufs the configuration can hold at once: every RX and TX
    /// descriptor of both ports, each worker's cache and bursts, and the
    /// steering rings.
    pub fn mbufs_needed(&self) -> u64 {
        let w = self.workers as u64;
        let desc = 2 * w * (u64::from(self.rx_desc) + u64::from(self.tx_desc));
        let per_worker = u64::from(self.mbuf_cache) * 3 / 2 + 3 * MAX_BURST as u64;
        let rings = w * w.saturating_sub(1) * self.steer_ring as u64;
        desc + w * per_worker + rings
    }

    /// Checks what `open` cannot leave to DPDK; the error says why.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(m);
        if self.outside.is_empty() || self.inside.is_empty() || self.outside == self.inside {
            return bad(format!(
                "the outside ({:?}) and inside ({:?}) ports must be two named devices",
                self.outside, self.inside
            ));
        }
        if self.workers == 0 || self.workers > u16::MAX as usize {
            return bad(format!("workers {} is out of range", self.workers));
        }
        if self.mbuf_cache > 512 {
            return bad(format!("mbuf_cache {} is over DPDK's 512", self.mbuf_cache));
        }
        if u64::from(self.mbufs) < self.mbufs_needed() {
            return bad(format!(
                "mbufs {} is fewer than the {} this configuration can hold at once \
                 (2 ports x {} workers x ({} RX + {} TX descriptors), caches, bursts, steering rings)",
                self.mbufs,
                self.mbufs_needed(),
                self.workers,
                self.rx_desc,
                self.tx_desc
            ));
        }
        Ok(())
    }
}
