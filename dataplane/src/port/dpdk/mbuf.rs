//! [`DpdkFrame`]: a received or allocated mbuf, processed in place (zero
//! copy). Single-segment mbufs only: the backend drops multi-segment frames
//! before a worker sees them, and never chains.
//!
//! Ownership: a `DpdkFrame` owns its mbuf exclusively (the driver handed it
//! over in `rte_eth_rx_burst`, or `rte_pktmbuf_alloc` made it). It goes
//! back exactly once: to the driver through [`DpdkFrame::into_raw`] for
//! `rte_eth_tx_burst`, or to its pool when dropped (`rte_pktmbuf_free`).
#![allow(unsafe_code)]

use core::ptr::NonNull;
use std::sync::OnceLock;

use classifier::time::Nanos;
use dpdk_sys as ffi;

use crate::port::{Csum, Frame};

/// The RX timestamp dynamic field: its offset in the mbuf, the `ol_flags`
/// bit that says a frame has one, and nanoseconds per unit.
#[derive(Debug, Clone, Copy)]
pub struct RxTimestamp {
    pub offset: usize,
    pub flag: u64,
    pub unit_ns: u64,
}

/// Set once, after EAL init, before any port starts.
pub static RX_TIMESTAMP: OnceLock<RxTimestamp> = OnceLock::new();

/// An owned, single-segment mbuf.
pub struct DpdkFrame(NonNull<ffi::rte_mbuf>);

// SAFETY: a DpdkFrame is the only handle to its mbuf (see the module docs),
// so moving it to another thread moves exclusive access with it; the
// mempool operations behind `Drop` (`rte_pktmbuf_free`) are thread-safe for
// the multi-producer/multi-consumer pools `rte_pktmbuf_pool_create` makes,
// registered EAL thread or not.
unsafe impl Send for DpdkFrame {}

impl core::fmt::Debug for DpdkFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DpdkFrame")
            .field("mbuf", &self.0)
            .field("len", &self.data().len())
            .field("headroom", &self.headroom())
            .finish()
    }
}

impl DpdkFrame {
    /// Takes ownership of `m`.
    ///
    /// # Safety
    /// `m` is a valid single-segment mbuf that nothing else uses or frees
    /// from now on.
    #[inline]
    pub unsafe fn from_raw(m: NonNull<ffi::rte_mbuf>) -> Self {
        DpdkFrame(m)
    }

    /// The mbuf, still owned by this frame.
    #[inline]
    pub fn as_ptr(&self) -> *mut ffi::rte_mbuf {
        self.0.as_ptr()
    }

    /// Gives up ownership (to `rte_eth_tx_burst`, which frees the mbuf
    /// once sent).
    #[inline]
    pub fn into_raw(self) -> *mut ffi::rte_mbuf {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    #[inline]
    fn m(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf (type invariant); shared access for
        // the lifetime of `&self`.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn m_mut(&mut self) -> &mut ffi::rte_mbuf {
        // SAFETY: as `m`, exclusive through `&mut self`.
        unsafe { self.0.as_mut() }
    }

    /// Start of the data: `rte_pktmbuf_mtod`.
    #[inline]
    fn start(&self) -> *mut u8 {
        let m = self.m();
        // SAFETY: `data_off <= buf_len`, so the result stays inside (or one
        // past) the mbuf's buffer of `buf_len` bytes at `buf_addr`.
        unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) }
    }
}

impl Drop for DpdkFrame {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and never use it again; see the `Send`
        // impl for why any thread may free it.
        unsafe { ffi::rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl Frame for DpdkFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        // SAFETY: a single-segment mbuf's data is `data_len` initialised
        // bytes at `buf_addr + data_off`, inside its buffer, owned by us.
        unsafe { core::slice::from_raw_parts(self.start(), usize::from(self.m().data_len)) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.m().data_len);
        // SAFETY: as `data`, exclusively borrowed through `&mut self`.
        unsafe { core::slice::from_raw_parts_mut(self.start(), len) }
    }

    #[inline]
    fn headroom(&self) -> usize {
        usize::from(self.m().data_off)
    }

    #[inline]
    fn capacity(&self) -> usize {
        let m = self.m();
        usize::from(m.buf_len).saturating_sub(usize::from(m.data_off))
    }

    fn prepend(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else { return false };
        // SAFETY: a valid mbuf we own; `rte_pktmbuf_prepend` checks the
        // headroom and changes nothing (returns NULL) when it is short.
        !unsafe { ffi::rte_pktmbuf_prepend(self.0.as_ptr(), n) }.is_null()
    }

    fn adj(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else { return false };
        // SAFETY: as `prepend`; `rte_pktmbuf_adj` returns NULL and changes
        // nothing when `n` exceeds the data.
        !unsafe { ffi::rte_pktmbuf_adj(self.0.as_ptr(), n) }.is_null()
    }

    fn set_len(&mut self, len: usize) -> bool {
        if len > self.capacity() {
            return false;
        }
        // Fits: capacity() <= buf_len <= u16::MAX.
        let len16 = len as u16;
        let m = self.m_mut();
        m.data_len = len16;
        m.pkt_len = u32::from(len16);
        true
    }

    #[inline]
    fn csum(&self) -> Csum {
        if self.m().ol_flags & ffi::RTE_MBUF_F_RX_L4_CKSUM_MASK == ffi::RTE_MBUF_F_RX_L4_CKSUM_GOOD {
            Csum::Valid
        } else {
            Csum::Unknown
        }
    }

    /// The driver's IP checksum flag: only GOOD counts (BAD, NONE and
    /// UNKNOWN leave the check to the classifier).
    #[inline]
    fn ip_csum_good(&self) -> bool {
        self.m().ol_flags & ffi::RTE_MBUF_F_RX_IP_CKSUM_MASK == ffi::RTE_MBUF_F_RX_IP_CKSUM_GOOD
    }

    /// Set to `Valid` by the worker after it completed a checksum: nothing
    /// to record for TX (no checksum offload is requested).
    fn set_csum(&mut self, c: Csum) {
        if c == Csum::Valid {
            let m = self.m_mut();
            m.ol_flags = (m.ol_flags & !ffi::RTE_MBUF_F_RX_L4_CKSUM_MASK) | ffi::RTE_MBUF_F_RX_L4_CKSUM_GOOD;
        }
    }

    /// The driver's RX timestamp (`net_pcap`: the capture's), when the
    /// frame has one.
    #[inline]
    fn timestamp(&self) -> Option<Nanos> {
        let ts = RX_TIMESTAMP.get()?;
        if self.m().ol_flags & ts.flag == 0 {
            return None;
        }
        // SAFETY: the dynamic field registered at `offset` is an aligned
        // u64 inside the mbuf structure (rte_mbuf_dyn guarantees it), and
        // the flag says the driver wrote it.
        let raw = unsafe { self.0.as_ptr().cast::<u8>().add(ts.offset).cast::<u64>().read() };
        Some(raw.saturating_mul(ts.unit_ns))
    }
}
