//! The TPACKET_V3 receive ring, mapped into the process, and [`RingFrame`],
//! a received frame processed in place inside it (zero copy).
//!
//! The ring is `blocks` blocks of `block_size` bytes. The kernel fills one
//! block at a time with variable-size packets and hands it over by setting
//! its `block_status` to `TP_STATUS_USER` (when full, or `retire_ms` after
//! its first packet); from then on it never writes that block until we set
//! the status back to `TP_STATUS_KERNEL`. Soundness rests on three rules:
//!
//! 1. A block goes back to the kernel only when every frame taken from it
//!    has come back ([`Ring::put`]) and all its packets have been taken:
//!    `held[block]` counts the frames out, whatever order they return in.
//!    The reader, coming round the ring again, never reopens a block with
//!    frames out (its `TP_STATUS_USER` is still the last lap's): that would
//!    hand out the same packets twice, two frames over the same bytes.
//! 2. Each frame owns a disjoint byte range of its block: from the end of
//!    its own packet header (`TPACKET3_HDRLEN`) to the next packet's header,
//!    or to the end of the block for the block's last packet. Headers we
//!    have not read yet are never inside a frame.
//! 3. The mapping is never unmapped while a frame is out: if the ring is
//!    dropped with frames outstanding (a caller that leaked some), the
//!    mapping is leaked instead of becoming dangling.
//!
//! A frame carries its ring's id; `put` refuses frames of another ring, so
//! handing a frame to the wrong worker cannot release a block early.
#![allow(unsafe_code)]

use super::sys::Socket;
use crate::port::{Csum, Frame};
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bytes of `tpacket3_hdr` (padded to 16) plus `sockaddr_ll` before the
/// free space of each packet slot: frames start after this.
const HDRLEN: usize = libc::TPACKET3_HDRLEN;

/// Where `block_status`, `num_pkts` and `offset_to_first_pkt` sit in a
/// `tpacket_block_desc` (`version`, `offset_to_priv`, then `bh1`).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
const BLOCK_DESC_LEN: usize = std::mem::size_of::<libc::tpacket_block_desc>();

static NEXT_RING_ID: AtomicU64 = AtomicU64::new(1);

/// One mapped TPACKET_V3 receive ring.
#[derive(Debug)]
pub struct Ring {
    map: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    blocks: u32,
    /// The block being read, or the next one to wait for.
    cur: u32,
    /// Packets of `cur` not taken yet; 0 when `cur` is not open.
    left: u32,
    /// Offset in the mapping of the next packet header of `cur`.
    next: usize,
    /// Frames out per block.
    held: Box<[u32]>,
    id: u64,
    /// Blocks whose packet chain did not parse (never expected from a
    /// correct kernel; the rest of such a block is skipped).
    malformed: u64,
}

// SAFETY: the ring exclusively owns its mapping (no other Rust value points
// into it except the frames it handed out, which own disjoint ranges), and
// it is only used through `&mut self`; moving it to another thread moves
// that ownership. The kernel's concurrent writes are confined to blocks in
// TP_STATUS_KERNEL, which we only touch through the atomic status word.
unsafe impl Send for Ring {}

/// A packet taken from the ring with the fields of its `tpacket3_hdr`.
#[derive(Debug)]
pub struct RxPacket {
    pub frame: RingFrame,
    pub status: u32,
    /// Length on the wire (the frame holds `tp_snaplen` bytes of it).
    pub wire_len: u32,
    pub vlan_tci: u16,
    pub vlan_tpid: u16,
}

impl Ring {
    /// Requests the ring on `sock` (`PACKET_RX_RING`); TPACKET_V3 and
    /// `PACKET_RESERVE` must be set already.
    pub fn request(sock: &Socket, block_size: usize, blocks: u32, retire_ms: u32) -> io::Result<()> {
        sock.set_rx_ring(&libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks,
            // V3 packets are variable-size; the kernel only checks that
            // frames tile blocks, so one "frame" per block.
            tp_frame_size: block_size as u32,
            tp_frame_nr: blocks,
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        })
    }

    /// Maps the ring that [`Ring::request`] set up with the same geometry.
    pub fn map(sock: &Socket, block_size: usize, blocks: u32) -> io::Result<Ring> {
        let map_len = block_size * blocks as usize;
        // SAFETY: a fresh shared mapping of the socket's ring, at an address
        // the kernel picks; nothing else in the process aliases it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                sock.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Ring {
            map,
            map_len,
            block_size,
            blocks,
            cur: 0,
            left: 0,
            next: 0,
            held: vec![0; blocks as usize].into_boxed_slice(),
            id: NEXT_RING_ID.fetch_add(1, Ordering::Relaxed),
            malformed: 0,
        })
    }

    fn status_word(&self, block: u32) -> &AtomicU32 {
        let off = block as usize * self.block_size + BLOCK_STATUS;
        // SAFETY: `off + 4 <= map_len` (block < blocks, a block is at least
        // a page); blocks start page-aligned, so the word is 4-aligned. The
        // kernel and we only access it atomically (it uses smp barriers and
        // WRITE_ONCE-style stores), so an AtomicU32 view is the right type.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(off).cast()) }
    }

    /// Reads a u32 at `off` of the mapping.
    fn read_u32(&self, off: usize) -> u32 {
        debug_assert!(off + 4 <= self.map_len);
        // SAFETY: callers pass offsets inside a block we own (status
        // TP_STATUS_USER, observed with Acquire), so the kernel is not
        // writing it; read_unaligned needs no alignment.
        unsafe { self.map.as_ptr().add(off).cast::<u32>().read_unaligned() }
    }

    /// The next received packet, or `None` when the ring holds no more.
    /// Memory reads only: no syscall.
    pub fn take(&mut self) -> Option<RxPacket> {
        loop {
            if self.left == 0 && !self.open_block() {
                return None;
            }
            if let Some(p) = self.next_packet() {
                return Some(p);
            }
        }
    }

    /// Opens block `cur` if the kernel has handed it over.
    fn open_block(&mut self) -> bool {
        // Still held from the last lap: its USER status is that lap's, and
        // the kernel, which fills blocks in the same order, waits on it too.
        if self.held[self.cur as usize] > 0 {
            return false;
        }
        if self.status_word(self.cur).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return false;
        }
        let base = self.cur as usize * self.block_size;
        let num = self.read_u32(base + BLOCK_NUM_PKTS);
        let first = self.read_u32(base + BLOCK_FIRST_PKT) as usize;
        self.left = num;
        self.next = base + first;
        if num == 0 || first < BLOCK_DESC_LEN || first + HDRLEN > self.block_size {
            self.malformed += u64::from(num != 0);
            self.finish_block();
        }
        true
    }

    /// Takes the packet at `next` of the open block; `None` (and the rest of
    /// the block skipped) when its header does not fit the block.
    fn next_packet(&mut self) -> Option<RxPacket> {
        let block_end = (self.cur as usize + 1) * self.block_size;
        let off = self.next;
        // SAFETY: `off + HDRLEN <= block_end` (checked when the block was
        // opened or when `next` was advanced); the block is ours (rule 1) and
        // the header is plain integers, read as a copy.
        let h = unsafe { self.map.as_ptr().add(off).cast::<libc::tpacket3_hdr>().read_unaligned() };
        let last = self.left == 1;
        let area_end = if last {
            block_end
        } else {
            off + h.tp_next_offset as usize
        };
        let (mac, snap) = (h.tp_mac as usize, h.tp_snaplen as usize);
        // Every header but the last is followed by another that must fit.
        let bad_chain = !last && ((h.tp_next_offset as usize) < HDRLEN || area_end + HDRLEN > block_end);
        if bad_chain || mac < HDRLEN || off + mac + snap > area_end {
            self.malformed += 1;
            self.finish_block();
            return None;
        }
        let block = self.cur;
        self.held[block as usize] += 1;
        self.left -= 1;
        self.next = area_end;
        if self.left == 0 {
            self.finish_block();
        }
        let area_len = area_end - off - HDRLEN;
        // SAFETY: `off + HDRLEN < map_len`, so the pointer is in the mapping
        // and not null.
        let area = unsafe { NonNull::new_unchecked(self.map.as_ptr().add(off + HDRLEN)) };
        let frame = RingFrame {
            area,
            cap: area_len as u32,
            start: (mac - HDRLEN) as u32,
            len: snap as u32,
            block,
            ring: self.id,
            csum: Csum::Unknown,
        };
        Some(RxPacket {
            frame,
            status: h.tp_status,
            wire_len: h.tp_len,
            vlan_tci: h.hv1.tp_vlan_tci as u16,
            vlan_tpid: h.hv1.tp_vlan_tpid,
        })
    }

    /// Closes block `cur` (all its packets taken or skipped) and moves on;
    /// the block goes back to the kernel now if no frame of it is out.
    fn finish_block(&mut self) {
        let b = self.cur;
        self.left = 0;
        self.cur = (b + 1) % self.blocks;
        if self.held[b as usize] == 0 {
            self.release(b);
        }
    }

    fn release(&self, block: u32) {
        // Release: our in-place writes to the block happen before the
        // kernel may reuse it.
        self.status_word(block).store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    /// Gives a frame back; its block returns to the kernel once it holds no
    /// frame and all its packets were taken. `Err` gives back a frame that
    /// is not from this ring.
    pub fn put(&mut self, f: RingFrame) -> Result<(), RingFrame> {
        if f.ring != self.id {
            return Err(f);
        }
        let b = f.block;
        let held = &mut self.held[b as usize];
        if *held == 0 {
            // Impossible (frames are not Clone); keeping the block is safe.
            debug_assert!(false, "frame of an idle block");
            return Ok(());
        }
        *held -= 1;
        if *held == 0 && !(self.left > 0 && self.cur == b) {
            self.release(b);
        }
        Ok(())
    }

    /// Frames out, over all blocks.
    pub fn outstanding(&self) -> u64 {
        self.held.iter().map(|&n| u64::from(n)).sum()
    }

    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.outstanding() > 0 {
            // Rule 3: frames still point into the mapping; leak it.
            return;
        }
        // SAFETY: the mapping is ours, of `map_len` bytes, and no frame
        // points into it any more.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// A received frame, in place in its ring block, with the headroom in front
/// of it inside the packet's slot (`PACKET_RESERVE` bytes plus what the
/// kernel leaves for alignment).
pub struct RingFrame {
    /// The frame's slot: `cap` bytes owned by this frame alone (rule 2).
    area: NonNull<u8>,
    cap: u32,
    /// The frame is `area[start..start + len]`; `start + len <= cap`.
    start: u32,
    len: u32,
    block: u32,
    ring: u64,
    csum: Csum,
}

// SAFETY: the frame owns its byte range exclusively (rule 2), the range
// stays mapped and untouched by the kernel while the frame lives (rules 1
// and 3), and it is accessed only through `&self`/`&mut self`; so moving it
// to another thread is like moving a Box<[u8]>.
unsafe impl Send for RingFrame {}

impl std::fmt::Debug for RingFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingFrame")
            .field("ring", &self.ring)
            .field("block", &self.block)
            .field("start", &self.start)
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Frame for RingFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        // SAFETY: `start + len <= cap` and the `cap` bytes at `area` are this
        // frame's alone, mapped and not written by the kernel while it
        // lives (module rules 1-3).
        unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(self.start as usize), self.len as usize) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(self.start as usize), self.len as usize) }
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.start as usize
    }

    #[inline]
    fn capacity(&self) -> usize {
        (self.cap - self.start) as usize
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start as usize {
            return false;
        }
        self.start -= n as u32;
        self.len += n as u32;
        true
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.start += n as u32;
        self.len -= n as u32;
        true
    }

    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        if len > self.capacity() {
            return false;
        }
        self.len = len as u32;
        true
    }

    fn csum(&self) -> Csum {
        self.csum
    }

    fn set_csum(&mut self, c: Csum) {
        self.csum = c;
    }
}
