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

use core::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use classifier::state::VerifiedTable;
use classifier::time::Nanos;

/// Commands a worker takes per tick (per millisecond).
pub const DRAIN_PER_TICK: usize = 8;

/// Slots of each queue.
const DEPTH: usize = 16;

/// A request about a worker's own tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Is this source verified now?
    IsVerified(IpAddr),
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
}

impl WorkerMail {
    /// Between bursts: runs up to [`DRAIN_PER_TICK`] waiting commands on
    /// `verified` at `now`.
    pub fn drain(&self, verified: &mut VerifiedTable, now: Nanos) {
        for _ in 0..DRAIN_PER_TICK {
            let (id, cmd) = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            let answer = match cmd {
                Command::IsVerified(ip) => verified.is_verified(ip, now),
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

/// A connected pair of mailbox ends.
pub fn pair() -> (MgmtEnd, WorkerMail) {
    let (ctx, crx) = sync_channel(DEPTH);
    let (atx, arx) = sync_channel(DEPTH);
    (
        MgmtEnd(MgmtMail {
            commands: ctx,
            answers: arx,
        }),
        WorkerMail {
            commands: crx,
            answers: atx,
        },
    )
}

/// The management end of one worker's mailbox, before it joins
/// [`Mailboxes`].
#[derive(Debug)]
pub struct MgmtEnd(MgmtMail);

/// The management ends of every worker's mailbox. Requests are serialised
/// (one at a time, management side only).
#[derive(Debug, Default)]
pub struct Mailboxes {
    inner: Mutex<(u64, Vec<MgmtMail>)>,
}

impl Mailboxes {
    pub fn new(ends: Vec<MgmtEnd>) -> Self {
        Mailboxes {
            inner: Mutex::new((0, ends.into_iter().map(|e| e.0).collect())),
        }
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
    fn commands_are_answered_by_the_worker_end() {
        let (m, w) = pair();
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
        let (m, w) = pair();
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
