//! Management → worker requests about state only a worker holds (its
//! verified-source table), after Gatekeeper's `gatekeeper_mailbox.h`: one
//! bounded queue of commands and one bounded queue of answers per worker.
//!
//! Contract:
//! - The worker drains at most [`DRAIN_PER_TICK`] commands per millisecond
//!   tick, between bursts, never per packet; both queues are bounded
//!   `sync_channel`s (a preallocated ring: no allocation on send or
//!   receive), and the worker only ever uses `try_recv`/`try_send`, so it
//!   never blocks. An answer that does not fit is dropped; the asker then
//!   times out for that worker.
//! - The management side ([`Mailboxes::ask`]) asks every worker, waits a
//!   bounded time for each answer and reports `None` for a worker that did
//!   not answer in time (stopped, or its queue full). Commands carry an id,
//!   so a late answer to an earlier request is never taken for the current
//!   one.
//! - Two one-way rings per worker carry verified sources for the cluster
//!   bus (`rtrb` SPSC rings, preallocated, wait-free): the *outbox*, where
//!   the worker puts each source it verified itself
//!   ([`WorkerMail::share_verified`]: a full ring is a counted drop, never
//!   a wait), and the *inbox*, where the management plane puts the sources
//!   other nodes verified; the worker inserts at most [`INBOX_PER_TICK`] of
//!   them per tick into its table, and those are never put in the outbox
//!   (a source learnt from the bus is not shared again).
//! - Two more one-way rings per worker serve the auto-blacklist: the
//!   *violation ring*, where the worker puts each limit a proven source
//!   broke ([`WorkerMail::share_violation`]: the same source, service and
//!   kind again within one tick is coalesced, a full ring is a counted
//!   drop), and the *ban ring*, where the management plane puts bans and
//!   unbans ([`BanOp`]); the worker applies at most [`BANS_PER_TICK`] of
//!   them per tick to its ban table ([`WorkerMail::drain_bans`]).

use core::net::IpAddr;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use classifier::state::{BanTable, VerifiedTable, Violation};
use classifier::time::Nanos;

/// Commands a worker takes per tick (per millisecond).
pub const DRAIN_PER_TICK: usize = 8;

/// Slots of each queue.
const DEPTH: usize = 16;

/// Sources a worker inserts from its inbox per tick: 256 per millisecond is
/// 256,000 per second per worker, well above what the bus carries (see
/// docs/cluster.md), and a few microseconds of table inserts per tick.
pub const INBOX_PER_TICK: usize = 256;

/// Slots of each verified-source ring: 4,096 entries of 32 bytes (128 KiB
/// per ring), a second of a fast challenge-answer rate between two
/// management drains (every 20 ms).
pub const VERIFIED_RING: usize = 4096;

/// Slots of each violation ring: 1,024 entries of 24 bytes, 20 ms of
/// violations at 51,000 per second per worker (one per source, service
/// and kind per millisecond at most, see [`WorkerMail::share_violation`]).
pub const VIOLATION_RING: usize = 1024;

/// Slots of each ban ring.
pub const BAN_RING: usize = 1024;

/// Ban ring entries a worker applies per tick.
pub const BANS_PER_TICK: usize = 256;

/// A change to the workers' ban tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanOp {
    /// Ban this source for this long from when the worker applies it.
    Ban { ip: IpAddr, ttl: Nanos },
    /// Lift this source's ban.
    Unban(IpAddr),
    /// Lift every ban.
    Flush,
}

/// A verified source crossing between a worker and the cluster bus: the
/// address and for how long it stays verified from when it is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedEntry {
    pub ip: IpAddr,
    pub ttl: Nanos,
}

/// A request about a worker's own tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Is this source verified now?
    IsVerified(IpAddr),
    /// Verify this source for this long (an operator's request); answers
    /// `true`. Not put in the outbox: the management plane that asked
    /// shares it itself if it wants to.
    Verify(IpAddr, Nanos),
    /// Forget this source; answers whether it was stored.
    Forget(IpAddr),
    /// Forget every verified source; answers `true`.
    FlushVerified,
}

/// The worker's end of its mailbox.
#[derive(Debug)]
pub struct WorkerMail {
    commands: Receiver<(u64, Command)>,
    answers: SyncSender<(u64, bool)>,
    outbox: rtrb::Producer<VerifiedEntry>,
    inbox: rtrb::Consumer<VerifiedEntry>,
    /// Sources not shared because the outbox was full (this worker's,
    /// published once per tick to `out_dropped_pub`).
    out_dropped: u64,
    out_dropped_pub: Arc<AtomicU64>,
    violations: rtrb::Producer<Violation>,
    bans: rtrb::Consumer<BanOp>,
    /// The violation pushed last this tick (coalescing).
    last_violation: Option<Violation>,
    /// Violations not handed over because the ring was full, and live bans
    /// the ban table evicted (published once per tick).
    violations_dropped: u64,
    blacklist_pub: Arc<BlacklistPub>,
}

/// A worker's blacklist figures as the management plane reads them.
#[derive(Debug, Default)]
struct BlacklistPub {
    violations_dropped: AtomicU64,
    bans_evicted: AtomicU64,
    bans_held: AtomicU64,
}

impl WorkerMail {
    /// A proven source broke a limit: offered to the management plane.
    /// Never waits: the same violation as the last one this tick is
    /// coalesced (a source over its rate breaks it with every packet), a
    /// full ring is a counted drop.
    #[inline]
    pub fn share_violation(&mut self, v: Violation) {
        if self.last_violation == Some(v) {
            return;
        }
        self.last_violation = Some(v);
        if self.violations.push(v).is_err() {
            self.violations_dropped += 1;
        }
    }

    /// Between bursts: applies up to [`BANS_PER_TICK`] waiting ban changes
    /// to `bans` at `now`, sweeps a few ended bans, publishes the figures,
    /// and starts a new coalescing tick.
    pub fn drain_bans(&mut self, bans: &mut BanTable, now: Nanos) {
        self.last_violation = None;
        for _ in 0..BANS_PER_TICK {
            let Ok(op) = self.bans.pop() else { break };
            match op {
                BanOp::Ban { ip, ttl } => bans.ban(ip, now, ttl),
                BanOp::Unban(ip) => {
                    bans.unban(ip);
                }
                BanOp::Flush => bans.flush(),
            }
        }
        bans.sweep(now, 64);
        let p = &self.blacklist_pub;
        p.violations_dropped.store(self.violations_dropped, Relaxed);
        p.bans_evicted.store(bans.evicted(), Relaxed);
        p.bans_held.store(bans.len() as u64, Relaxed);
    }

    /// The worker verified `ip` itself (a challenge answered) for `ttl`:
    /// offered to the cluster bus. Never waits: a full outbox is a counted
    /// drop.
    #[inline]
    pub fn share_verified(&mut self, ip: IpAddr, ttl: Nanos) {
        if self.outbox.push(VerifiedEntry { ip, ttl }).is_err() {
            self.out_dropped += 1;
        }
    }

    /// Between bursts: runs up to [`DRAIN_PER_TICK`] waiting commands on
    /// `verified` at `now`, inserts up to [`INBOX_PER_TICK`] sources other
    /// nodes verified, and publishes the outbox's drop count.
    pub fn drain(&mut self, verified: &mut VerifiedTable, now: Nanos) {
        for _ in 0..INBOX_PER_TICK {
            let Ok(e) = self.inbox.pop() else { break };
            verified.verify(e.ip, now, e.ttl);
        }
        self.out_dropped_pub.store(self.out_dropped, Relaxed);
        self.run_commands(verified, now);
    }

    fn run_commands(&self, verified: &mut VerifiedTable, now: Nanos) {
        for _ in 0..DRAIN_PER_TICK {
            let (id, cmd) = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            let answer = match cmd {
                Command::IsVerified(ip) => verified.is_verified(ip, now),
                Command::Verify(ip, ttl) => {
                    verified.verify(ip, now, ttl);
                    true
                }
                Command::Forget(ip) => verified.remove(ip),
                Command::FlushVerified => {
                    verified.flush();
                    true
                }
            };
            // Full: the asker has given up on older answers; it times out.
            let _ = self.answers.try_send((id, answer));
        }
    }
}

/// The management end of one worker's mailbox.
#[derive(Debug)]
struct MgmtMail {
    commands: SyncSender<(u64, Command)>,
    answers: Receiver<(u64, bool)>,
}

/// The management end of one worker's verified-source rings.
#[derive(Debug)]
struct MgmtRings {
    outbox: rtrb::Consumer<VerifiedEntry>,
    inbox: rtrb::Producer<VerifiedEntry>,
    out_dropped: Arc<AtomicU64>,
    violations: rtrb::Consumer<Violation>,
    bans: rtrb::Producer<BanOp>,
    blacklist: Arc<BlacklistPub>,
}

/// A connected pair of mailbox ends.
pub fn pair() -> (MgmtEnd, WorkerMail) {
    let (ctx, crx) = sync_channel(DEPTH);
    let (atx, arx) = sync_channel(DEPTH);
    let (out_tx, out_rx) = rtrb::RingBuffer::new(VERIFIED_RING);
    let (in_tx, in_rx) = rtrb::RingBuffer::new(VERIFIED_RING);
    let dropped = Arc::new(AtomicU64::new(0));
    let (v_tx, v_rx) = rtrb::RingBuffer::new(VIOLATION_RING);
    let (b_tx, b_rx) = rtrb::RingBuffer::new(BAN_RING);
    let blacklist = Arc::new(BlacklistPub::default());
    (
        MgmtEnd(
            MgmtMail {
                commands: ctx,
                answers: arx,
            },
            MgmtRings {
                outbox: out_rx,
                inbox: in_tx,
                out_dropped: Arc::clone(&dropped),
                violations: v_rx,
                bans: b_tx,
                blacklist: Arc::clone(&blacklist),
            },
        ),
        WorkerMail {
            commands: crx,
            answers: atx,
            outbox: out_tx,
            inbox: in_rx,
            out_dropped: 0,
            out_dropped_pub: dropped,
            violations: v_tx,
            bans: b_rx,
            last_violation: None,
            violations_dropped: 0,
            blacklist_pub: blacklist,
        },
    )
}

/// The management end of one worker's mailbox, before it joins
/// [`Mailboxes`].
#[derive(Debug)]
pub struct MgmtEnd(MgmtMail, MgmtRings);

/// The management ends of every worker's mailbox. Requests are serialised
/// (one at a time, management side only); so are the uses of the
/// verified-source rings (the cluster bus's thread, the API's).
#[derive(Debug, Default)]
pub struct Mailboxes {
    inner: Mutex<(u64, Vec<MgmtMail>)>,
    rings: Mutex<Vec<MgmtRings>>,
}

impl Mailboxes {
    pub fn new(ends: Vec<MgmtEnd>) -> Self {
        let (mail, rings): (Vec<MgmtMail>, Vec<MgmtRings>) = ends.into_iter().map(|e| (e.0, e.1)).unzip();
        Mailboxes {
            inner: Mutex::new((0, mail)),
            rings: Mutex::new(rings),
        }
    }

    /// Takes up to `max` sources the workers verified themselves (their
    /// outboxes, in turn) and hands each to `f`; returns how many.
    pub fn take_verified(&self, max: usize, mut f: impl FnMut(VerifiedEntry)) -> usize {
        let Ok(mut rings) = self.rings.lock() else { return 0 };
        let mut n = 0;
        for r in rings.iter_mut() {
            while n < max {
                let Ok(e) = r.outbox.pop() else { break };
                f(e);
                n += 1;
            }
        }
        n
    }

    /// Offers a source another node verified to every worker's inbox;
    /// returns how many workers could not take it (inbox full).
    pub fn insert_verified(&self, e: VerifiedEntry) -> usize {
        let Ok(mut rings) = self.rings.lock() else { return 0 };
        rings.iter_mut().map(|r| usize::from(r.inbox.push(e).is_err())).sum()
    }

    /// Sources the workers could not put in their outboxes (full), since
    /// start-up.
    pub fn verified_out_dropped(&self) -> u64 {
        self.rings
            .lock()
            .map_or(0, |r| r.iter().map(|r| r.out_dropped.load(Relaxed)).sum())
    }

    /// Takes up to `max` violations the workers noted (in turn) and hands
    /// each to `f`; returns how many.
    pub fn take_violations(&self, max: usize, mut f: impl FnMut(Violation)) -> usize {
        let Ok(mut rings) = self.rings.lock() else { return 0 };
        let mut n = 0;
        for r in rings.iter_mut() {
            while n < max {
                let Ok(v) = r.violations.pop() else { break };
                f(v);
                n += 1;
            }
        }
        n
    }

    /// Offers a ban change to every worker's ban ring; returns how many
    /// workers could not take it (ring full).
    pub fn push_ban(&self, op: BanOp) -> usize {
        let Ok(mut rings) = self.rings.lock() else { return 0 };
        rings.iter_mut().map(|r| usize::from(r.bans.push(op).is_err())).sum()
    }

    /// The workers' blacklist figures: violations dropped (ring full) and
    /// live bans evicted (ban table full), summed; bans held by the fullest
    /// worker's table.
    pub fn blacklist_figures(&self) -> (u64, u64, u64) {
        self.rings.lock().map_or((0, 0, 0), |r| {
            r.iter().fold((0, 0, 0), |(d, e, h), r| {
                let b = &r.blacklist;
                (
                    d + b.violations_dropped.load(Relaxed),
                    e + b.bans_evicted.load(Relaxed),
                    h.max(b.bans_held.load(Relaxed)),
                )
            })
        })
    }

    /// Workers with a mailbox.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |g| g.1.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `cmd` to every worker and waits up to `timeout` in all for the
    /// answers: one entry per worker, `None` where none came in time.
    /// Blocks the calling (management) thread.
    pub fn ask(&self, cmd: Command, timeout: Duration) -> Vec<Option<bool>> {
        let Ok(mut g) = self.inner.lock() else {
            return Vec::new();
        };
        g.0 += 1;
        let id = g.0;
        let sent: Vec<bool> = g.1.iter().map(|m| m.commands.try_send((id, cmd)).is_ok()).collect();
        let deadline = Instant::now() + timeout;
        g.1.iter()
            .zip(sent)
            .map(|(m, sent)| if sent { wait(m, id, deadline) } else { None })
            .collect()
    }
}

fn wait(m: &MgmtMail, id: u64, deadline: Instant) -> Option<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match m.answers.recv_timeout(left) {
            Ok((got, answer)) if got == id => return Some(answer),
            // An answer to an earlier request that timed out.
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classifier::time::SECOND;

    #[test]
    fn verified_rings_carry_sources_both_ways_and_count_a_full_outbox() {
        let (m, mut w) = pair();
        let boxes = Mailboxes::new(vec![m]);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "2001:db8::b".parse().unwrap();
        // Outbox: the worker's own verifications, up to the ring's size;
        // the rest dropped and counted once the worker publishes (a tick).
        for _ in 0..VERIFIED_RING + 3 {
            w.share_verified(a, 5 * SECOND);
        }
        let mut table = VerifiedTable::with_capacity(16);
        assert_eq!(boxes.verified_out_dropped(), 0);
        w.drain(&mut table, SECOND);
        assert_eq!(boxes.verified_out_dropped(), 3);
        let mut got = Vec::new();
        assert_eq!(boxes.take_verified(10, |e| got.push(e)), 10);
        assert_eq!(got[0], VerifiedEntry { ip: a, ttl: 5 * SECOND });
        assert_eq!(boxes.take_verified(usize::MAX, |_| {}), VERIFIED_RING - 10);
        // Inbox: a peer's source lands in the table at the worker's clock,
        // at most INBOX_PER_TICK per tick.
        for i in 0..INBOX_PER_TICK + 1 {
            let ip = if i == 0 { b } else { IpAddr::V4((i as u32).into()) };
            assert_eq!(boxes.insert_verified(VerifiedEntry { ip, ttl: 2 * SECOND }), 0);
        }
        let mut table = VerifiedTable::with_capacity(1024);
        w.drain(&mut table, 10 * SECOND);
        assert!(table.is_verified(b, 11 * SECOND));
        assert!(!table.is_verified(b, 12 * SECOND), "the TTL runs from the insert");
        assert_eq!(table.len(), INBOX_PER_TICK - 1);
        w.drain(&mut table, 10 * SECOND);
        assert_eq!(table.len(), INBOX_PER_TICK);
        // Nothing learnt from the inbox went to the outbox.
        assert_eq!(boxes.take_verified(usize::MAX, |_| {}), 0);
    }

    #[test]
    fn violations_are_coalesced_per_tick_and_counted_when_the_ring_is_full_and_bans_applied() {
        use classifier::state::{BanTable, Violation, ViolationKind};
        let (m, mut w) = pair();
        let boxes = Mailboxes::new(vec![m]);
        let v = |i: u32| Violation {
            src: IpAddr::V4(i.into()),
            service: 0,
            kind: ViolationKind::SrcPps,
        };
        // The same violation again within a tick: once.
        w.share_violation(v(1));
        w.share_violation(v(1));
        for i in 2..VIOLATION_RING as u32 + 5 {
            w.share_violation(v(i));
        }
        let mut bans = BanTable::with_capacity(4);
        w.drain_bans(&mut bans, 0);
        assert_eq!(boxes.blacklist_figures().0, 4, "the ring held VIOLATION_RING");
        let mut got = Vec::new();
        assert_eq!(boxes.take_violations(usize::MAX, |x| got.push(x)), VIOLATION_RING);
        assert_eq!(got[0], v(1));
        assert_eq!(got[1], v(2));
        // Each tick hands the same violation over once.
        w.share_violation(v(1));
        w.share_violation(v(1));
        assert_eq!(boxes.take_violations(usize::MAX, |_| {}), 1);
        w.share_violation(v(1));
        assert_eq!(boxes.take_violations(usize::MAX, |_| {}), 0, "same tick");
        w.drain_bans(&mut bans, 0);
        w.share_violation(v(1));
        assert_eq!(boxes.take_violations(usize::MAX, |_| {}), 1, "a new tick");
        // Bans in, applied at the worker's clock; unban and flush.
        let a = IpAddr::V4(7.into());
        assert_eq!(boxes.push_ban(BanOp::Ban { ip: a, ttl: SECOND }), 0);
        w.drain_bans(&mut bans, 10 * SECOND);
        assert!(bans.is_banned(a, 10 * SECOND));
        assert!(!bans.is_banned(a, 11 * SECOND));
        boxes.push_ban(BanOp::Ban { ip: a, ttl: SECOND });
        boxes.push_ban(BanOp::Unban(a));
        w.drain_bans(&mut bans, 20 * SECOND);
        assert!(bans.is_empty());
        boxes.push_ban(BanOp::Ban { ip: a, ttl: SECOND });
        boxes.push_ban(BanOp::Flush);
        w.drain_bans(&mut bans, 20 * SECOND);
        assert!(bans.is_empty());
        // A full ban ring: counted by the caller, never a wait.
        let full = (0..BAN_RING + 3).map(|_| boxes.push_ban(BanOp::Flush)).sum::<usize>();
        assert_eq!(full, 3);
        assert_eq!(boxes.blacklist_figures().2, 0);
    }

    #[test]
    fn an_operator_verify_command_inserts() {
        let (m, mut w) = pair();
        let boxes = Mailboxes::new(vec![m]);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let mut table = VerifiedTable::with_capacity(16);
        let asker = std::thread::spawn(move || {
            let r = boxes.ask(Command::Verify(ip, 3 * SECOND), Duration::from_secs(2));
            (r, boxes)
        });
        let t0 = Instant::now();
        while !table.is_verified(ip, SECOND) {
            assert!(t0.elapsed() < Duration::from_secs(5));
            w.drain(&mut table, SECOND);
            std::thread::sleep(Duration::from_millis(1));
        }
        let (r, boxes) = asker.join().unwrap();
        assert_eq!(r, vec![Some(true)]);
        assert!(!table.is_verified(ip, 4 * SECOND));
        assert_eq!(boxes.take_verified(usize::MAX, |_| {}), 0);
    }

    #[test]
    fn commands_are_answered_by_the_worker_end() {
        let (m, mut w) = pair();
        let boxes = Mailboxes::new(vec![m]);
        let mut table = VerifiedTable::with_capacity(16);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        table.verify(ip, 0, 10 * SECOND);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = std::sync::Arc::clone(&done);
        let worker = std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.drain(&mut table, SECOND);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let t = Duration::from_secs(2);
        assert_eq!(boxes.ask(Command::IsVerified(ip), t), vec![Some(true)]);
        assert_eq!(boxes.ask(Command::Forget(ip), t), vec![Some(true)]);
        assert_eq!(boxes.ask(Command::IsVerified(ip), t), vec![Some(false)]);
        assert_eq!(boxes.ask(Command::Forget(ip), t), vec![Some(false)]);
        assert_eq!(boxes.ask(Command::FlushVerified, t), vec![Some(true)]);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        worker.join().unwrap();
    }

    #[test]
    fn a_worker_that_does_not_answer_times_out_and_late_answers_are_skipped() {
        let (m, mut w) = pair();
        let boxes = Mailboxes::new(vec![m]);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(
            boxes.ask(Command::IsVerified(ip), Duration::from_millis(50)),
            vec![None]
        );
        assert!(t0.elapsed() >= Duration::from_millis(50));
        let mut table = VerifiedTable::with_capacity(16);
        table.verify(ip, 0, 10 * SECOND);
        // The worker now answers the first (stale) request and then the second.
        let asker = std::thread::spawn(move || boxes.ask(Command::IsVerified(ip), Duration::from_secs(2)));
        std::thread::sleep(Duration::from_millis(20));
        w.drain(&mut table, SECOND);
        w.drain(&mut table, SECOND);
        assert_eq!(asker.join().unwrap(), vec![Some(true)]);
    }
}
