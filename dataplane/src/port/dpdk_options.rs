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

    /// The pool size `mbufs = 0` stands for: [`DpdkOptions::mbufs_needed`]
    /// rounded up to a power of two minus one (DPDK's best pool size), at
    /// least the default 16383.
    pub fn auto_mbufs(&self) -> u64 {
        const MIN: u64 = 16383;
        (self.mbufs_needed() + 1).next_power_of_two().saturating_sub(1).max(MIN)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_pool_grows_with_the_workers() {
        let with = |workers| DpdkOptions {
            workers,
            ..DpdkOptions::default()
        };
        // One or two workers fit the historical default.
        assert_eq!(with(1).auto_mbufs(), 16383);
        assert_eq!(with(2).auto_mbufs(), 16383);
        for w in [3, 4, 16, 64] {
            let o = with(w);
            let auto = o.auto_mbufs();
            assert!(auto >= o.mbufs_needed(), "{w} workers: {auto}");
            assert!((auto + 1).is_power_of_two(), "{auto}");
            let sized = DpdkOptions {
                outside: "a".into(),
                inside: "b".into(),
                mbufs: u32::try_from(auto).unwrap(),
                ..o
            };
            assert_eq!(sized.validate(), Ok(()));
        }
        // 3 workers: 2 x 3 x 2048 descriptors, 3 x (384 + 3 x 512) in
        // caches and bursts, 3 x 2 x 1024 in steering rings.
        assert_eq!(with(3).mbufs_needed(), 12288 + 5760 + 6144);
        assert_eq!(with(3).auto_mbufs(), 32767);
    }
}
