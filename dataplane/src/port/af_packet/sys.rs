//! The AF_PACKET socket calls: one owned file descriptor and thin, typed
//! wrappers around `setsockopt`, `bind`, `getsockname` and `sendmmsg`.
//! Everything here runs at start-up except [`TxScratch::send`], the one
//! syscall per transmitted burst.
#![allow(unsafe_code)]

use crate::port::Frame;
use crate::port::MAX_BURST;
use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `ETH_P_ALL` in network byte order, as `sll_protocol` wants it.
const ALL_PROTOCOLS: u16 = (libc::ETH_P_ALL as u16).to_be();

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i)
}

/// The size of a memory page (ring blocks are whole pages).
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant; no pointers involved.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

/// An AF_PACKET, SOCK_RAW socket.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Socket {
    /// A packet socket with protocol 0: it receives nothing until
    /// [`Socket::bind`] names the interface and the protocol, so nothing
    /// from other interfaces slips in while the ring is set up.
    pub fn new() -> io::Result<Socket> {
        // SAFETY: plain syscall with integer arguments.
        let fd = check(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `fd` was just returned by socket(2) and is owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd })
    }

    /// `setsockopt` with a plain-data value `T` (an integer or a C struct).
    fn set<T: Copy>(&self, level: libc::c_int, opt: libc::c_int, val: &T) -> io::Result<()> {
        // SAFETY: `val` points to `size_of::<T>()` initialised bytes that
        // live across the call; the kernel only reads them.
        check(unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                level,
                opt,
                (val as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    pub fn set_packet_int(&self, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
        self.set(libc::SOL_PACKET, opt, &val)
    }

    pub fn get_packet_int(&self, opt: libc::c_int) -> io::Result<u32> {
        let mut val: u32 = 0;
        let mut len = size_of::<u32>() as libc::socklen_t;
        // SAFETY: `val` and `len` are valid for writes of the sizes given.
        check(unsafe {
            libc::getsockopt(
                self.as_raw_fd(),
                libc::SOL_PACKET,
                opt,
                (&mut val as *mut u32).cast(),
                &mut len,
            )
        })?;
        Ok(val)
    }

    /// Requests the TPACKET_V3 receive ring (`PACKET_RX_RING`).
    pub fn set_rx_ring(&self, req: &libc::tpacket_req3) -> io::Result<()> {
        self.set(libc::SOL_PACKET, libc::PACKET_RX_RING, req)
    }

    /// Binds to interface `ifindex` for every protocol: from here on the
    /// socket receives that interface's frames.
    pub fn bind(&self, ifindex: u32) -> io::Result<()> {
        self.bind_protocol(ifindex, ALL_PROTOCOLS)
    }

    /// Binds to interface `ifindex` for sending only: with protocol 0 the
    /// socket receives nothing (the kernel queues no copy of the
    /// interface's traffic to it).
    pub fn bind_send_only(&self, ifindex: u32) -> io::Result<()> {
        self.bind_protocol(ifindex, 0)
    }

    fn bind_protocol(&self, ifindex: u32, protocol: u16) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length says so.
        check(unsafe {
            libc::bind(
                self.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    /// Puts the interface in promiscuous mode for as long as the socket
    /// lives (the kernel counts every socket's membership).
    pub fn add_promisc(&self, ifindex: u32) -> io::Result<()> {
        let mr = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        self.set(libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr)
    }

    fn fprog(prog: &[libc::sock_filter]) -> libc::sock_fprog {
        libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut(),
        }
    }

    /// Attaches a classic-BPF socket filter (`SO_ATTACH_FILTER`); the
    /// kernel copies the program.
    pub fn attach_filter(&self, prog: &[libc::sock_filter]) -> io::Result<()> {
        self.set(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &Self::fprog(prog))
    }

    pub fn detach_filter(&self) -> io::Result<()> {
        self.set(libc::SOL_SOCKET, libc::SO_DETACH_FILTER, &0 as &libc::c_int)
    }

    /// Sets the fanout group's classic-BPF program (`PACKET_FANOUT_DATA`);
    /// the kernel copies it.
    pub fn set_fanout_program(&self, prog: &[libc::sock_filter]) -> io::Result<()> {
        self.set(libc::SOL_PACKET, libc::PACKET_FANOUT_DATA, &Self::fprog(prog))
    }

    /// The bound interface's hardware address (`getsockname` on a bound
    /// packet socket reports the device's address).
    pub fn hw_addr(&self) -> io::Result<[u8; 6]> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll` is writable for `len` bytes; the kernel writes at most that.
        check(unsafe { libc::getsockname(self.as_raw_fd(), (&mut sll as *mut libc::sockaddr_ll).cast(), &mut len) })?;
        if sll.sll_halen != 6 {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "not an Ethernet interface"));
        }
        let mut mac = [0; 6];
        mac.copy_from_slice(&sll.sll_addr[..6]);
        Ok(mac)
    }

    /// The kernel's counters since the last call (`PACKET_STATISTICS`
    /// resets them): packets received and packets dropped for want of ring
    /// space.
    pub fn take_stats(&self) -> io::Result<(u32, u32)> {
        // SAFETY: tpacket_stats_v3 is plain data; all-zero is a valid value.
        let mut st: libc::tpacket_stats_v3 = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` is writable for `len` bytes; the kernel writes at most that.
        check(unsafe {
            libc::getsockopt(
                self.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        })?;
        Ok((st.tp_packets, st.tp_drops))
    }
}

/// The `sendmmsg` arrays of one socket, allocated once: one message with
/// one iovec per frame. The pointers in them are written at the start of
/// each [`TxScratch::send`] and mean nothing after it returns.
pub struct TxScratch {
    msgs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
}

impl std::fmt::Debug for TxScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxScratch").field("capacity", &self.msgs.len()).finish()
    }
}

// SAFETY: the raw pointers inside are only dereferenced (by the kernel)
// during `send`, which rewrites them from its arguments first; between calls
// they are dead values, so moving the scratch to another thread is sound.
unsafe impl Send for TxScratch {}

impl Default for TxScratch {
    fn default() -> Self {
        // SAFETY: mmsghdr and iovec are plain data (integers and raw
        // pointers); all-zero is a valid value of each.
        let (m, v): (libc::mmsghdr, libc::iovec) = unsafe { (zeroed(), zeroed()) };
        TxScratch {
            msgs: vec![m; MAX_BURST].into_boxed_slice(),
            iovs: vec![v; MAX_BURST].into_boxed_slice(),
        }
    }
}

impl TxScratch {
    /// Sends `frames` (at most [`MAX_BURST`]) from the front, one syscall,
    /// without blocking. Returns how many the kernel took; `Ok(0)` when the
    /// device queue was full (EAGAIN, ENOBUFS) or a signal interrupted.
    pub fn send<F: Frame>(&mut self, sock: &Socket, frames: &[F]) -> io::Result<usize> {
        let n = frames.len().min(MAX_BURST);
        if n == 0 {
            return Ok(0);
        }
        for (i, f) in frames[..n].iter().enumerate() {
            let d = f.data();
            self.iovs[i] = libc::iovec {
                iov_base: d.as_ptr().cast_mut().cast(),
                iov_len: d.len(),
            };
            let h = &mut self.msgs[i].msg_hdr;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: messages 0..n each name one iovec of `self.iovs`, which
        // points at the bytes of a frame borrowed for this call; the kernel
        // reads (copies) them before sendmmsg returns and writes only the
        // `msg_len` fields. `msg_name` and `msg_control` are null (zeroed at
        // creation, never set): the bound interface is the destination.
        let rc = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => Ok(0),
            _ => Err(e),
        }
    }
}
