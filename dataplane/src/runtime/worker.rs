//! One worker's poll loop (DPDK l3fwd `main_loop`, Gatekeeper `gk_proc`):
//! receive a burst on the outside port, run each frame through the
//! pipeline in place, sort the results into the two ports' TX bursts,
//! handle the inside port's ARP, send, and between bursts pick up policy
//! changes and next-hop MACs, answer the management plane's mailbox,
//! publish counters and back off when idle.
//!
//! Nothing in the loop allocates, locks or makes a per-packet syscall:
//! bursts are fixed arrays, the policy is read through an `arc_swap` cache
//! (a generation check per burst), counters are plain integers published
//! with relaxed stores once per millisecond (per-service figures every
//! 16), and expired table entries are
//! swept a few slots per millisecond.

use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use classifier::build::GreParams;
use classifier::parse::{self, L3};
use classifier::policy::Policy;
use classifier::state::StateConfig;
use classifier::time::{Nanos, MILLISECOND};
use classifier::verdict::DropReason;

use super::neighbors::Neighbors;
use super::sample::{L7Fp, Sample, Sampler};
use super::stats::{LoopCounters, SharedStats};
use crate::pipeline::{Outcome, Pipeline, PreparedBurst};
use crate::port::{send_all, Burst, Frame, PortId, Queues};

/// Table slots swept per millisecond (amortised expiry between bursts).
const SWEEP_BUDGET: usize = 64;

/// Idle back-off: after `spins` empty polls in a row, sleep `sleep` per
/// empty poll (zero: pure busy polling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    pub spins: u32,
    pub sleep: Duration,
}

impl Default for Idle {
    fn default() -> Self {
        Idle {
            spins: 256,
            sleep: Duration::from_micros(50),
        }
    }
}

/// Everything a worker needs, handed over when it starts.
#[derive(Debug)]
pub struct WorkerSetup {
    pub index: usize,
    pub workers: u32,
    pub burst: usize,
    pub idle: Idle,
    pub core: Option<core_affinity::CoreId>,
    pub sizes: StateConfig,
    /// ICMP too-big errors per second for the whole node.
    pub icmp_pps: u64,
    /// Encapsulation toward each origin of the policy; `dst_mac` is filled
    /// from `neighbors` at run time.
    pub gre: Vec<GreParams>,
    /// Index in `neighbors` of each origin's next hop.
    pub next_hop: Vec<usize>,
    /// The node's inside address and MAC (ARP requests).
    pub inside_ip: Ipv4Addr,
    pub inside_mac: [u8; 6],
    /// Sample one outside packet in this many for the management plane
    /// (0: off; see [`super::sample`]).
    pub sample_every: u32,
    /// Whether bursts go through the two stages (parse, hash and prefetch
    /// the whole burst, then classify) or frame by frame.
    pub two_stage: TwoStage,
}

/// The two-stage burst (DESIGN.md; DPDK l3fwd, Gatekeeper) pays where the
/// per-core tables miss the cache: measured with `moat bench` on a 2-vCPU
/// EPYC VM (32 MiB L3), 4,194,304-entry tables ran the ACK flood 13–45 %
/// and the SYN flood 55–84 % faster with it. Where the tables fit in the
/// last-level cache (65,536 entries, one or two workers) its extra work
/// (about 100 instructions per packet: the hashes, prefetches and the
/// summary kept per frame) bought nothing. `Auto` turns it on when the
/// workers' tables together exceed the last-level cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TwoStage {
    #[default]
    Auto,
    On,
    Off,
}

impl TwoStage {
    /// Whether workers with `table_bytes` of tables each, `workers` of them,
    /// use the two stages on a machine whose last-level cache holds
    /// `llc_bytes` (`None`: unknown, taken as too small).
    pub fn enabled(self, table_bytes: usize, workers: u32, llc_bytes: Option<usize>) -> bool {
        match self {
            TwoStage::On => true,
            TwoStage::Off => false,
            TwoStage::Auto => llc_bytes.is_none_or(|llc| table_bytes.saturating_mul(workers.max(1) as usize) > llc),
        }
    }
}

/// The size of the largest cache of CPU 0 (Linux sysfs:
/// `/sys/devices/system/cpu/cpu0/cache/index*/size`, e.g. `32768K`);
/// `None` where it cannot be read.
pub fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|e| {
        let size = std::fs::read_to_string(e.ok()?.path().join("size")).ok()?;
        parse_cache_size(size.trim())
    })
    .max()
}

/// `32768K`, `1M`, `512` (bytes) as sysfs writes cache sizes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (num, unit) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(unit)
}

/// What a worker shares with the rest of the node.
#[derive(Debug)]
pub struct Shared {
    /// Requests from the management plane, drained once per tick, and the
    /// verified-source rings of the cluster bus.
    pub mail: super::mailbox::WorkerMail,
    pub policy: Arc<ArcSwap<Policy>>,
    pub stop: Arc<AtomicBool>,
    pub stats: SharedStats,
    pub neighbors: Arc<Neighbors>,
}

/// The wall clock in classifier time (Unix ns; a vDSO read, no syscall).
#[inline]
pub fn wall_clock() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// How a worker ended.
#[derive(Debug)]
pub struct WorkerExit {
    pub index: usize,
    /// The backend's error at close (a capture file that could not be
    /// written), if any.
    pub close_error: Option<String>,
}

/// Learns the sender of an ARP packet on the inside port if it is a
/// tracked next hop (RFC 826 "merge" rule, restricted to our next hops).
fn learn_arp(frame: &[u8], neighbors: &Neighbors, now: Nanos) {
    if let Some(a) = classifier::build::arp_sender(frame).filter(|a| a.learnable()) {
        let _ = neighbors.learn(a.sender_ip, a.sender_mac, now);
    }
}

/// Runs the worker until `stop` is set or every port is done; samples go
/// to `samples` (see [`WorkerSetup::sample_every`]). Never inlined: one
/// call per worker, and profiles find the loop by this name
/// (`valgrind --toggle-collect='dataplane::runtime::worker::run*'`).
#[inline(never)]
pub fn run<Q: Queues>(s: WorkerSetup, mut sh: Shared, mut q: Q, samples: Option<rtrb::Producer<Sample>>) -> WorkerExit {
    if let Some(core) = s.core {
        core_affinity::set_for_current(core);
    }
    let mut cache = arc_swap::Cache::new(Arc::clone(&sh.policy));
    let mut policy: Arc<Policy> = Arc::clone(cache.load());
    let mut pipe = Pipeline::new(&policy, s.gre.clone(), &s.sizes, s.workers);
    pipe.set_icmp_rate(s.icmp_pps, s.workers);
    let burst = s.burst.clamp(1, crate::port::MAX_BURST);
    let mut rx: Burst<Q::Frame> = Burst::new();
    let mut tx_out: Burst<Q::Frame> = Burst::new();
    let mut tx_in: Burst<Q::Frame> = Burst::new();
    let mut lc = LoopCounters::default();
    let mut sampler = Sampler::new(s.sample_every, samples);
    let mut empty = 0u32;
    let mut last_tick: Nanos = 0;
    let mut ticks: u64 = 0;
    let mut parsed = None;
    let mut prepared = PreparedBurst::new();
    let two_stage = s
        .two_stage
        .enabled(pipe.state().memory_bytes(), s.workers, last_level_cache_bytes());
    // The time of the last frame that carried one (capture backends).
    let mut clock: Option<Nanos> = None;

    while !sh.stop.load(Relaxed) {
        let wall = wall_clock();
        if !Arc::ptr_eq(cache.load(), &policy) {
            policy = Arc::clone(cache.load());
            pipe.apply_policy(&policy, s.gre.clone(), s.workers);
        }
        if wall.saturating_sub(last_tick) >= MILLISECOND {
            last_tick = wall;
            tick(&s, &sh.neighbors, &mut q, &mut pipe, &mut tx_in, &mut lc, wall);
            // The classifier's clock: capture backends stamp their frames,
            // and table entries carry those times, not the wall clock's.
            pipe.sweep(&policy, clock.unwrap_or(wall), SWEEP_BUDGET);
            if pipe.state().ended.is_some() {
                reset_ended(&mut q, &mut pipe, &policy, &mut tx_in, &mut tx_out, &mut lc);
            }
            // An empty connection the sweep ended is a violation of its
            // source (it completed a handshake): offered to the blacklist.
            if let Some(v) = pipe.state_mut().violation.take() {
                sh.mail.share_violation(v);
            }
            sh.mail.drain(&mut pipe.state_mut().verified, clock.unwrap_or(wall));
            sh.mail.drain_bans(&mut pipe.state_mut().bans, clock.unwrap_or(wall));
            ticks += 1;
            let services = ticks == super::stats::SERVICE_PUBLISH_TICKS;
            if services {
                ticks = 0;
            }
            sh.stats.publish(pipe.counters(), &lc, services);
        }

        // Outside: the protected traffic.
        let n_out = q.rx_burst(PortId::Outside, &mut rx, burst);
        lc.ports[0].rx_packets += n_out as u64;
        // Two stages: parse, hash and prefetch the whole burst, then
        // classify and carry out frame by frame with the lines in cache.
        // Else nothing is prepared and each frame goes through whole.
        if two_stage {
            pipe.prepare(&rx, &mut prepared);
        } else {
            prepared.clear();
        }
        for (i, mut f) in rx.drain(..).enumerate() {
            let now = match f.timestamp() {
                Some(t) => {
                    clock = Some(t);
                    t
                }
                None => wall,
            };
            let taken = sampler.take(f.data(), &mut lc);
            // Stage one prepared every frame of the burst (both hold at
            // most MAX_BURST).
            let out = match prepared.get(i) {
                Some(pre) => pipe.process_prepared(&policy, now, &mut f, pre),
                None => pipe.process_frame(&policy, now, &mut f, &mut parsed),
            };
            // A challenge answered: offered to the cluster bus (a ring
            // push, or a counted drop).
            if let Some((ip, ttl)) = pipe.state_mut().just_verified.take() {
                sh.mail.share_verified(ip, ttl);
            }
            // A limit broken by a proven source: to the blacklist (a ring
            // push, or a counted drop).
            if let Some(v) = pipe.state_mut().violation.take() {
                sh.mail.share_violation(v);
            }
            // What the flow's first bytes said, judged on this packet: on
            // its sample, for detection's JA4 and Host + path heavy hitters.
            let seen = pipe.state_mut().l7_seen.take();
            if let Some(mut t) = taken {
                if let Some(seen) = seen {
                    t = t.with_l7(L7Fp {
                        ja4: seen.ja4.map(|j| *j.as_bytes()),
                        host_path: seen.host_path,
                    });
                }
                let p = match prepared.get(i) {
                    Some(Ok((p, _))) => Some(p),
                    Some(Err(_)) => None,
                    None => parsed.as_ref(),
                };
                sampler.push(t, now, p, p.and(pipe.last_service()), out, &mut lc);
            }
            match out {
                Outcome::Forward { .. } => push_or_free(&mut q, &mut tx_in, f, &mut lc.ports[1]),
                Outcome::Reply => push_or_free(&mut q, &mut tx_out, f, &mut lc.ports[0]),
                Outcome::ForwardAndReply { .. } => {
                    push_or_free(&mut q, &mut tx_in, f, &mut lc.ports[1]);
                    send_copy(&mut q, &mut tx_out, pipe.pending_reply(), &mut lc.ports[0]);
                }
                Outcome::Drop(_) => q.free(f),
            }
        }

        // Inside: ARP and IPv6 neighbour discovery only (requests for our
        // addresses are answered by the classifier; ARP replies teach us
        // next hops).
        let n_in = q.rx_burst(PortId::Inside, &mut rx, burst);
        lc.ports[1].rx_packets += n_in as u64;
        for mut f in rx.drain(..) {
            let now = f.timestamp().unwrap_or(wall);
            let control = parse::parse(f.data()).is_ok_and(|p| p.l3 == L3::Arp || classifier::classify::is_nd(&p));
            if !control {
                pipe.count_drop(f.data().len(), DropReason::WrongPort);
                q.free(f);
                continue;
            }
            learn_arp(f.data(), &sh.neighbors, now);
            match pipe.process_frame(&policy, now, &mut f, &mut parsed) {
                Outcome::Reply => push_or_free(&mut q, &mut tx_in, f, &mut lc.ports[1]),
                _ => q.free(f),
            }
        }

        flush_port(&mut q, PortId::Inside, &mut tx_in, &mut lc);
        flush_port(&mut q, PortId::Outside, &mut tx_out, &mut lc);

        if n_out + n_in > 0 {
            lc.busy_polls += 1;
            empty = 0;
            continue;
        }
        lc.idle_polls += 1;
        if q.rx_done(PortId::Outside) && q.rx_done(PortId::Inside) {
            break;
        }
        empty = empty.saturating_add(1);
        if empty > s.idle.spins && !s.idle.sleep.is_zero() {
            q.flush();
            std::thread::sleep(s.idle.sleep);
        } else {
            core::hint::spin_loop();
        }
    }
    flush_port(&mut q, PortId::Inside, &mut tx_in, &mut lc);
    flush_port(&mut q, PortId::Outside, &mut tx_out, &mut lc);
    let close_error = q.close().err();
    sh.stats.publish(pipe.counters(), &lc, true);
    WorkerExit {
        index: s.index,
        close_error,
    }
}

#[inline]
fn push_or_free<Q: Queues>(q: &mut Q, b: &mut Burst<Q::Frame>, f: Q::Frame, pc: &mut super::stats::PortCounters) {
    if let Err(e) = b.try_push(f) {
        pc.tx_dropped += 1;
        q.free(e.element());
    }
}

/// Sends a copy of `bytes` in a fresh frame (the RST toward the client of
/// a connection reset both ways), or counts it dropped.
fn send_copy<Q: Queues>(q: &mut Q, b: &mut Burst<Q::Frame>, bytes: &[u8], pc: &mut super::stats::PortCounters) {
    let Some(mut f) = q.alloc() else {
        pc.tx_dropped += 1;
        return;
    };
    if f.replace(bytes) {
        push_or_free(q, b, f, pc);
    } else {
        pc.tx_dropped += 1;
        q.free(f);
    }
}

/// The empty connection the last sweep ended: its RSTs toward the origin
/// (through GRE) and toward the client, in two fresh frames.
fn reset_ended<Q: Queues>(
    q: &mut Q,
    pipe: &mut Pipeline,
    policy: &Policy,
    tx_in: &mut Burst<Q::Frame>,
    tx_out: &mut Burst<Q::Frame>,
    lc: &mut LoopCounters,
) {
    let Some(mut to_origin) = q.alloc() else {
        pipe.reset_ended(policy, None::<&mut Q::Frame>);
        lc.ports[1].tx_dropped += 1;
        return;
    };
    if pipe.reset_ended(policy, Some(&mut to_origin)) {
        push_or_free(q, tx_in, to_origin, &mut lc.ports[1]);
        send_copy(q, tx_out, pipe.pending_reply(), &mut lc.ports[0]);
    } else {
        q.free(to_origin);
    }
}

fn flush_port<Q: Queues>(q: &mut Q, port: PortId, b: &mut Burst<Q::Frame>, lc: &mut LoopCounters) {
    let (sent, dropped) = send_all(q, port, b);
    let pc = &mut lc.ports[port.index()];
    pc.tx_packets += sent;
    pc.tx_dropped += dropped;
}

/// Once per millisecond: next-hop MACs into the pipeline; worker 0 also
/// sends the ARP requests that are due.
fn tick<Q: Queues>(
    s: &WorkerSetup,
    neighbors: &Neighbors,
    q: &mut Q,
    pipe: &mut Pipeline,
    tx_in: &mut Burst<Q::Frame>,
    lc: &mut LoopCounters,
    now: Nanos,
) {
    for (origin, &n) in s.next_hop.iter().enumerate() {
        pipe.set_next_hop(origin, neighbors.lookup(n, now).0);
    }
    if s.index != 0 {
        return;
    }
    neighbors.due(now, |ip| {
        let Some(mut f) = q.alloc() else { return false };
        let mut buf = [0u8; 64];
        let Some(len) = classifier::build::arp_request(s.inside_mac, s.inside_ip, ip, &mut buf) else {
            q.free(f);
            return false;
        };
        if !f.replace(&buf[..len]) || tx_in.is_full() {
            q.free(f);
            return false;
        }
        tx_in.push(f);
        lc.arp_requests += 1;
        true
    });
}

#[cfg(test)]
mod two_stage_tests {
    use super::*;

    #[test]
    fn cache_sizes_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size(""), None);
        assert_eq!(parse_cache_size("K"), None);
        assert_eq!(parse_cache_size("12X"), None);
    }

    #[test]
    fn auto_turns_on_past_the_last_level_cache() {
        let llc = Some(32 << 20);
        assert!(!TwoStage::Auto.enabled(12 << 20, 2, llc), "24 MiB fit");
        assert!(TwoStage::Auto.enabled(12 << 20, 3, llc), "36 MiB do not");
        assert!(TwoStage::Auto.enabled(1, 1, None), "unknown cache");
        assert!(TwoStage::On.enabled(1, 1, llc));
        assert!(!TwoStage::Off.enabled(usize::MAX, 64, llc));
        assert!(TwoStage::Auto.enabled(usize::MAX, u32::MAX, llc), "no overflow");
    }
}
