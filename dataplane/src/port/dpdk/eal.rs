//! The DPDK Environment Abstraction Layer: initialised once per process
//! (`rte_eal_init` cannot run twice), errors as text with `rte_strerror`,
//! and the registration of worker threads as EAL (non-EAL-lcore) threads so
//! that they use per-lcore mempool caches.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::sync::Mutex;

use dpdk_sys as ffi;

use super::mbuf::{RxTimestamp, RX_TIMESTAMP};
use super::DpdkError;

/// The arguments EAL was initialised with, and how that went.
type Outcome = (Vec<String>, Result<(), String>);
static EAL: Mutex<Option<Outcome>> = Mutex::new(None);

/// DPDK's text for error number `errnum` (positive).
pub fn strerror(errnum: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string, valid until the next call on this thread;
    // copied at once.
    unsafe { CStr::from_ptr(ffi::rte_strerror(errnum)) }
        .to_string_lossy()
        .into_owned()
}

/// The calling thread's `rte_errno`.
pub fn errno() -> i32 {
    // SAFETY: reads this thread's rte_errno through the shim; no
    // preconditions.
    unsafe { ffi::moat_rte_errno() }
}

/// An error for `what` from a DPDK call that returned `rc` (a negative
/// errno, or -1 with `rte_errno` set).
pub fn fail(what: impl std::fmt::Display, rc: i32) -> DpdkError {
    let e = if rc == -1 { errno() } else { -rc };
    DpdkError(format!("{what}: {} (error {e})", strerror(e)))
}

/// Initialises EAL with `args` (program name excluded) unless it already
/// is; a second call with other arguments is refused, since EAL keeps the
/// first ones for the life of the process.
///
/// EAL pins the calling thread to its main lcore; the thread's previous
/// CPU set is restored afterwards so that threads started later (and
/// `core_affinity`'s view of the machine) are not confined to one core.
pub fn init(args: &[String]) -> Result<(), DpdkError> {
    let mut g = EAL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((prev, res)) = g.as_ref() {
        if prev != args {
            return Err(DpdkError(format!(
                "EAL is already initialised in this process with {prev:?}; it cannot be initialised again with {args:?}"
            )));
        }
        return res.clone().map_err(DpdkError);
    }
    let res = init_once(args).map_err(|e| e.0);
    *g = Some((args.to_vec(), res.clone()));
    res.map_err(DpdkError)
}

fn init_once(args: &[String]) -> Result<(), DpdkError> {
    let mut owned = Vec::with_capacity(args.len() + 1);
    for a in std::iter::once("moat").chain(args.iter().map(String::as_str)) {
        owned.push(CString::new(a).map_err(|_| DpdkError(format!("EAL argument {a:?} contains a NUL byte")))?);
    }
    // EAL may keep pointers into argv (device arguments) for the life of
    // the process, so the strings are leaked on purpose (once per process).
    let mut argv: Vec<*mut libc::c_char> = owned.into_iter().map(|c| c.into_raw()).collect();
    let argc = argv.len() as libc::c_int;
    let cpus = affinity();
    // SAFETY: argv holds argc valid NUL-terminated strings that live
    // forever; rte_eal_init is called at most once per process (the EAL
    // mutex above serialises callers and records the outcome).
    let rc = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
    if let Some(set) = cpus {
        restore_affinity(&set);
    }
    if rc < 0 {
        return Err(fail(format_args!("rte_eal_init {args:?}"), rc));
    }
    register_rx_timestamp()
}

/// Registers the RX timestamp dynamic field, so that `net_pcap` stamps the
/// frames it reads with their capture time (Unix microseconds, the pcap
/// record's `ts_sec` and `ts_usec`).
fn register_rx_timestamp() -> Result<(), DpdkError> {
    let mut offset: libc::c_int = -1;
    let mut flag: u64 = 0;
    // SAFETY: both out-pointers are valid for writes; EAL is initialised.
    let rc = unsafe { ffi::rte_mbuf_dyn_rx_timestamp_register(&mut offset, &mut flag) };
    if rc < 0 || offset < 0 {
        return Err(fail("rte_mbuf_dyn_rx_timestamp_register", rc.min(-1)));
    }
    let _ = RX_TIMESTAMP.set(RxTimestamp {
        offset: offset as usize,
        flag,
        unit_ns: 1000,
    });
    Ok(())
}

fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; all zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for writes of its own size; pid 0 is this
    // thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (rc == 0).then_some(set)
}

fn restore_affinity(set: &libc::cpu_set_t) {
    // SAFETY: `set` is a valid CPU set of the size passed; pid 0 is this
    // thread. A failure leaves EAL's pinning, which is only slower.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
}

/// Registers the calling thread with EAL (it gets an lcore id, hence a
/// mempool cache), if it has no lcore id yet. Returns the error text when
/// EAL refused (the thread then works without a cache: correct, slower).
pub fn register_thread() -> Result<(), String> {
    // SAFETY: both read thread-local state only.
    let (id, any) = unsafe { (ffi::rte_lcore_id(), ffi::moat_lcore_id_any()) };
    if id != any {
        return Ok(());
    }
    // SAFETY: EAL is initialised (a backend exists only after `init`); the
    // call registers the calling thread only.
    let rc = unsafe { ffi::rte_thread_register() };
    if rc < 0 {
        return Err(format!("rte_thread_register: {}", strerror(errno())));
    }
    Ok(())
}

/// Undoes [`register_thread`] for the calling thread (its lcore id goes
/// back to EAL's free list).
pub fn unregister_thread() {
    // SAFETY: unregisters the calling thread only; a thread that is not
    // registered is left alone by DPDK.
    unsafe { ffi::rte_thread_unregister() }
}
