//! The node's readiness: whether it scrubs and delivers right now. What
//! `GET /api/v1/health` answers (200 or 503), and what BGP announcements
//! (issue "scrubbing cluster") and the systemd watchdog follow.
//!
//! The node is healthy when every check passes:
//! - `worker/N`: worker N made progress (its poll counter advanced) within
//!   the last [`STALL`]. Workers publish their poll counters every
//!   millisecond while their loop runs, busy or idle, so a worker that is
//!   stuck, ended or panicked stops advancing them;
//! - `port/outside`, `port/inside`: the port's link is up (AF_PACKET: the
//!   interface is administratively up and its operstate is `up` or
//!   `unknown`; DPDK: the device's link status; memory and pcap backends
//!   have no link: a port is up once opened);
//! - `next_hop/ORIGIN`: the MAC of the origin's next hop is known (learned
//!   by ARP, or the configured static one is in use), so its traffic is
//!   not dropped as `no_next_hop`;
//! - `state_dir`: a new file can be created (`O_CREAT|O_EXCL`, an
//!   unpredictable name, never following a symlink), written and removed
//!   in the state directory (created 0700 first if it does not exist yet);
//!   tried at most once per [`DISK_EVERY`].
//!
//! Non-fatal checks ([`Health::add_degraded_check`], e.g. `cluster/bus`)
//! never make the node unhealthy: when one fails the node is *degraded*
//! (it scrubs on its own state; `GET /api/v1/health` stays 200 and lists
//! it under `degraded`).
//!
//! Worker progress is judged by samples: [`Health::check`] takes one, and
//! the owner should call [`Health::sample`] several times a second (the API
//! server does, every 250 ms), so that a worker that stalled right after a
//! sample is seen within [`STALL`] plus the sampling period.
//!
//! Everything here reads published atomics and sysfs; nothing touches a
//! worker, and a failed check never stops one.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use classifier::time::Nanos;
use dataplane::port::{DeviceStatsReader, PortId};
use dataplane::runtime::{wall_clock, NeighborState, Neighbors, Runtime};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{Backend, Config};

/// A worker whose poll counter has not moved for this long is failing.
pub const STALL: Duration = Duration::from_secs(1);
/// The state directory is tried at most once per this.
pub const DISK_EVERY: Duration = Duration::from_secs(1);

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Check {
    /// `worker/N`, `port/outside`, `port/inside`, `next_hop/ORIGIN` or
    /// `state_dir`.
    pub name: String,
    pub ok: bool,
    /// What was seen, for a human (the API leaves it out for callers
    /// without the token).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Every check, in a fixed order (workers, ports, next hops, state dir),
/// and the non-fatal checks that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthReport {
    pub checks: Vec<Check>,
    pub degraded: Vec<Check>,
}

/// A non-fatal check (see the module doc).
pub type SoftCheck = Box<dyn Fn() -> Check + Send + Sync>;

impl HealthReport {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The checks that failed.
    pub fn failing(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

/// Where the ports' link state comes from.
#[derive(Debug)]
pub enum Links {
    /// Backends without a link (memory, pcap): a port is up once opened,
    /// which it was when the node started.
    Opened,
    /// AF_PACKET: the interfaces (outside, inside), read from
    /// `/sys/class/net/IFACE/{flags,operstate}`.
    Interfaces([String; 2]),
    /// DPDK: the device's link status (`rte_eth_link_get_nowait`).
    Device(Arc<dyn DeviceStatsReader>),
}

impl Links {
    /// The source for `cfg`'s backend; `device` is the DPDK backend's
    /// reader (`Node::device_stats`), ignored by the other backends. A DPDK node without one is judged as [`Links::Opened`].
    pub fn of(cfg: &Config, device: Option<Arc<dyn DeviceStatsReader>>) -> Links {
        match (cfg.dataplane.backend, device) {
            (Backend::AfPacket, _) => Links::Interfaces([cfg.outside.iface.clone(), cfg.inside.iface.clone()]),
            (Backend::Dpdk, Some(d)) => Links::Device(d),
            _ => Links::Opened,
        }
    }

    fn check(&self, port: PortId) -> (bool, String) {
        match self {
            Links::Opened => (true, "opened (the backend has no link state)".into()),
            Links::Interfaces(ifaces) => iface_up(&ifaces[port.index()]),
            Links::Device(d) => match d.link_up(port) {
                Some(true) => (true, "link up".into()),
                Some(false) => (false, "link down".into()),
                None => (true, "link state unknown (the device does not say)".into()),
            },
        }
    }
}

/// Whether interface `name` is up: `IFF_UP` set and operstate `up` (or
/// `unknown`, which drivers without carrier reporting show).
fn iface_up(name: &str) -> (bool, String) {
    let dir = PathBuf::from("/sys/class/net").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map(|s| s.trim().to_string());
    let flags = match read("flags") {
        Ok(s) => u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0),
        Err(e) => return (false, format!("{name}: {e}")),
    };
    let oper = read("operstate").unwrap_or_else(|_| "unknown".into());
    let up = flags & 1 == 1 && (oper == "up" || oper == "unknown");
    let admin = if flags & 1 == 1 { "up" } else { "down" };
    (up, format!("{name}: admin {admin}, operstate {oper}"))
}

/// Reads each worker's poll counter (busy + idle polls).
pub type PollSource = Box<dyn Fn() -> Vec<u64> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
struct Progress {
    polls: u64,
    changed: Instant,
}

/// The inputs of the checks (see [`Health::new`] for a running node).
pub struct Parts {
    pub polls: PollSource,
    pub neighbors: Arc<Neighbors>,
    /// Each origin's name and next-hop address.
    pub hops: Vec<(String, Ipv4Addr)>,
    pub links: Links,
    pub state_dir: PathBuf,
}

/// The node's health checks (see the module doc).
pub struct Health {
    parts: Parts,
    progress: Mutex<Vec<Progress>>,
    /// The state directory's last try: when, and its outcome.
    disk: Mutex<Option<(Instant, Result<(), String>)>>,
    soft: Mutex<Vec<SoftCheck>>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("hops", &self.hops)
            .field("links", &self.links)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// The checks of a running node: `rt`'s workers and next hops,
    /// `cfg`'s origins and state directory, and `links` (see
    /// [`Links::of`]).
    pub fn new(cfg: &Config, rt: &Runtime, links: Links) -> Health {
        let stats = rt.stats.clone();
        let hops = cfg
            .origins
            .iter()
            .filter_map(|o| Some((o.name.clone(), cfg.origin_gre(&o.name)?.next_hop)))
            .collect();
        Health::from_parts(Parts {
            polls: Box::new(move || {
                stats
                    .iter()
                    .map(|s| {
                        let s = s.snapshot(0);
                        s.busy_polls.wrapping_add(s.idle_polls)
                    })
                    .collect()
            }),
            neighbors: Arc::clone(&rt.neighbors),
            hops,
            links,
            state_dir: cfg.state_dir(),
        })
    }

    pub fn from_parts(parts: Parts) -> Health {
        let now = Instant::now();
        let progress = (parts.polls)()
            .into_iter()
            .map(|polls| Progress { polls, changed: now })
            .collect();
        Health {
            parts,
            progress: Mutex::new(progress),
            disk: Mutex::new(None),
            soft: Mutex::new(Vec::new()),
        }
    }

    /// Adds a non-fatal check, run with the others.
    pub fn add_degraded_check(&self, c: SoftCheck) {
        self.soft.lock().unwrap_or_else(PoisonError::into_inner).push(c);
    }

    /// Records the workers' poll counters now (see the module doc).
    /// The DPDK device's counters reader, when the node has one
    /// (`/metrics` shows its NIC counters).
    pub fn device(&self) -> Option<&Arc<dyn DeviceStatsReader>> {
        match &self.parts.links {
            Links::Device(d) => Some(d),
            _ => None,
        }
    }

    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    fn sample_at(&self, now: Instant) {
        let polls = (self.parts.polls)();
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        p.resize(polls.len(), Progress { polls: 0, changed: now });
        for (p, n) in p.iter_mut().zip(polls) {
            if p.polls != n {
                *p = Progress { polls: n, changed: now };
            }
        }
    }

    /// Samples the workers now and tells whether every one made progress
    /// within [`STALL`] (the systemd watchdog's condition; no I/O).
    pub fn workers_progressing(&self) -> bool {
        self.workers_progressing_at(Instant::now())
    }

    fn workers_progressing_at(&self, now: Instant) -> bool {
        self.sample_at(now);
        self.workers(now).iter().all(|c| c.ok)
    }

    /// Runs every check now.
    pub fn check(&self) -> HealthReport {
        self.check_at(Instant::now(), wall_clock())
    }

    /// Runs every check as of `now` (monotonic, for worker progress and
    /// the state dir's pacing) and `wall` (the workers' clock, for next
    /// hops).
    pub fn check_at(&self, now: Instant, wall: Nanos) -> HealthReport {
        self.sample_at(now);
        let mut checks = self.workers(now);
        for p in PortId::ALL {
            let (ok, detail) = self.parts.links.check(p);
            checks.push(Check {
                name: format!("port/{}", p.as_str()),
                ok,
                detail,
            });
        }
        checks.extend(self.hops(wall));
        checks.push(self.state_dir(now));
        let soft = self.soft.lock().unwrap_or_else(PoisonError::into_inner);
        let degraded = soft.iter().map(|c| c()).filter(|c| !c.ok).collect();
        HealthReport { checks, degraded }
    }

    fn workers(&self, now: Instant) -> Vec<Check> {
        let p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        p.iter()
            .enumerate()
            .map(|(i, p)| {
                let quiet = now.saturating_duration_since(p.changed);
                let ok = quiet <= STALL;
                let detail = if ok {
                    format!("{} polls, progressing", p.polls)
                } else {
                    format!("no progress for {:.1} s ({} polls)", quiet.as_secs_f64(), p.polls)
                };
                Check {
                    name: format!("worker/{i}"),
                    ok,
                    detail,
                }
            })
            .collect()
    }

    fn hops(&self, wall: Nanos) -> Vec<Check> {
        let n = &self.parts.neighbors;
        self.parts
            .hops
            .iter()
            .map(|(origin, ip)| {
                let state = n.index_of(*ip).map(|i| n.lookup(i, wall).1);
                let ok = matches!(state, Some(s) if s != NeighborState::Incomplete);
                let detail = match state {
                    Some(s) => format!("{ip} {}", s.as_str()),
                    None => format!("{ip} not tracked"),
                };
                Check {
                    name: format!("next_hop/{origin}"),
                    ok,
                    detail,
                }
            })
            .collect()
    }

    fn state_dir(&self, now: Instant) -> Check {
        let mut d = self.disk.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = matches!(&*d, Some((at, _)) if now.saturating_duration_since(*at) < DISK_EVERY);
        if !fresh {
            *d = Some((now, try_write(&self.parts.state_dir)));
        }
        let dir = self.parts.state_dir.display();
        match d.as_ref().map(|(_, r)| r) {
            Some(Ok(())) => Check {
                name: "state_dir".into(),
                ok: true,
                detail: format!("{dir} writable"),
            },
            Some(Err(e)) => Check {
                name: "state_dir".into(),
                ok: false,
                detail: format!("{dir}: {e}"),
            },
            None => Check {
                name: "state_dir".into(),
                ok: false,
                detail: format!("{dir}: not tried"),
            },
        }
    }
}

/// Creates (exclusively, so never through a planted symlink), writes and
/// removes a file of an unpredictable name in `dir`. A `dir` that does not
/// exist yet is created (0700), as the first write of a change would.
fn try_write(dir: &std::path::Path) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::DirBuilderExt as _;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create it: {e}"))?;
    }
    let p = dir.join(format!(".health-{:016x}", rand::random::<u64>()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .map_err(|e| format!("cannot create a file: {e}"))?;
    let written = f.write_all(b"ok\n").map_err(|e| format!("cannot write a file: {e}"));
    drop(f);
    let removed = std::fs::remove_file(&p).map_err(|e| format!("cannot remove {}: {e}", p.display()));
    written.and(removed)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use classifier::time::SECOND;

    use super::*;

    const HOP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
    const MAC: [u8; 6] = [2, 0, 0, 0, 0x77, 2];

    /// Two workers whose counters the test moves, one origin `web` whose
    /// next hop has no static MAC, and `dir` as the state dir.
    fn health(dir: PathBuf) -> (Health, Arc<[AtomicU64; 2]>, Arc<Neighbors>) {
        let polls = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let p = Arc::clone(&polls);
        let neighbors = Arc::new(Neighbors::new(&[(HOP, None)], true));
        let h = Health::from_parts(Parts {
            polls: Box::new(move || p.iter().map(|a| a.load(Relaxed)).collect()),
            neighbors: Arc::clone(&neighbors),
            hops: vec![("web".into(), HOP)],
            links: Links::Opened,
            state_dir: dir,
        });
        (h, polls, neighbors)
    }

    fn failing(r: &HealthReport) -> Vec<&str> {
        r.failing().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn healthy_when_every_check_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (h, polls, n) = health(dir.path().into());
        n.learn(HOP, MAC, 5 * SECOND);
        let t0 = Instant::now();
        polls[0].store(10, Relaxed);
        polls[1].store(20, Relaxed);
        let r = h.check_at(t0 + Duration::from_millis(500), 6 * SECOND);
        assert!(r.ok(), "{r:?}");
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "worker/0",
                "worker/1",
                "port/outside",
                "port/inside",
                "next_hop/web",
                "state_dir"
            ]
        );
        assert!(r.checks[4].detail.contains("reachable"), "{r:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("read_dir").count(),
            0,
            "the probe file is removed"
        );
    }

    #[test]
    fn a_stopped_worker_fails_after_a_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (h, polls, n) = health(dir.path().into());
        n.learn(HOP, MAC, SECOND);
        let t0 = Instant::now();
        for i in 1..=8u64 {
            // Worker 0 keeps polling; worker 1 stopped at the start.
            polls[0].store(i * 100, Relaxed);
            h.sample_at(t0 + Duration::from_millis(250 * i));
        }
        let r = h.check_at(t0 + Duration::from_millis(2100), 2 * SECOND);
        assert_eq!(failing(&r), ["worker/1"], "{r:?}");
        assert!(!h.workers_progressing_at(t0 + Duration::from_millis(2150)));
        assert!(r.checks[1].detail.contains("no progress"), "{r:?}");
        // It resumes: healthy again.
        polls[0].store(1000, Relaxed);
        polls[1].store(1, Relaxed);
        assert!(h.workers_progressing_at(t0 + Duration::from_millis(2200)));
        assert!(h.check_at(t0 + Duration::from_millis(2200), 2 * SECOND).ok());
    }

    #[test]
    fn an_unresolved_next_hop_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (h, _, _) = health(dir.path().into());
        let r = h.check_at(Instant::now(), SECOND);
        assert_eq!(failing(&r), ["next_hop/web"], "{r:?}");
        assert!(r.checks[4].detail.contains("incomplete"), "{r:?}");
    }

    #[test]
    fn an_unwritable_state_dir_fails_and_is_tried_once_a_second() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("mkdir");
        let (h, polls, n) = health(state.clone());
        n.learn(HOP, MAC, SECOND);
        let t0 = Instant::now();
        assert!(h.check_at(t0, 2 * SECOND).ok());
        // Gone, a file in its place (root writes through permissions).
        std::fs::remove_dir(&state).expect("rmdir");
        std::fs::write(&state, "not a dir").expect("file");
        let moved = |i: u64| {
            polls[0].store(i, Relaxed);
            polls[1].store(i, Relaxed);
        };
        moved(1);
        let r = h.check_at(t0 + Duration::from_millis(300), 2 * SECOND);
        assert!(r.ok(), "not tried again within a second: {r:?}");
        moved(2);
        let r = h.check_at(t0 + Duration::from_millis(1100), 2 * SECOND);
        assert_eq!(failing(&r), ["state_dir"], "{r:?}");
        assert!(r.checks[5].detail.contains("cannot create"), "{r:?}");
    }

    #[test]
    fn interface_state_from_sysfs() {
        let (up, detail) = iface_up("lo");
        assert!(up, "{detail}");
        let (up, detail) = iface_up("moat-no-such-if");
        assert!(!up);
        assert!(detail.contains("moat-no-such-if"), "{detail}");
    }
}
