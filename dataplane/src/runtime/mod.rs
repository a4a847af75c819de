//! The poll-mode runtime: N workers, each on its own (pinned) thread with
//! its own queues and state, sharing only the policy snapshot (swapped
//! atomically, picked up at burst boundaries), the next-hop table and their
//! published counters. `start` launches them, `stop` ends them cleanly:
//! every worker finishes its burst, sends what it holds, closes its outputs
//! (capture files flushed) and publishes its final counters.

pub mod mailbox;
pub mod neighbors;
pub mod sample;
pub mod stats;
pub mod worker;

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use classifier::policy::Policy;
use crossbeam_utils::CachePadded;

pub use neighbors::{NeighborState, Neighbors};
pub use sample::{HostPath, L7Fp, Sample, SampleFp, SampleVerdict};
pub use stats::{Snapshot, WorkerStats, MAX_SERVICES};
pub use worker::{last_level_cache_bytes, wall_clock, Idle, TwoStage, WorkerExit, WorkerSetup};

use crate::port::Queues;

/// Which cores the workers run on: worker `i` on `cores[i]` when given,
/// else on core `i + 1` when the machine has a core per worker plus one for
/// the management plane, else on core `i % cores` (several workers may then
/// share a core; pinning is skipped when the cores cannot be listed).
pub fn pick_cores(workers: usize, wanted: &[usize]) -> Vec<Option<core_affinity::CoreId>> {
    let all = core_affinity::get_core_ids().unwrap_or_default();
    if all.is_empty() {
        return vec![None; workers];
    }
    (0..workers)
        .map(|i| {
            let id = match wanted.get(i) {
                Some(&c) => c,
                None if all.len() > workers => i + 1,
                None => i % all.len(),
            };
            all.iter().find(|c| c.id == id).copied()
        })
        .collect()
}

/// Running workers.
#[derive(Debug)]
pub struct Runtime {
    pub stop: Arc<AtomicBool>,
    pub policy: Arc<ArcSwap<Policy>>,
    pub neighbors: Arc<Neighbors>,
    pub stats: Vec<stats::SharedStats>,
    /// Requests to the workers about their own tables (management side).
    pub mail: Arc<mailbox::Mailboxes>,
    /// The consumer side of each sampling worker's queue (see
    /// [`Runtime::take_samples`]).
    samples: Vec<rtrb::Consumer<Sample>>,
    handles: Vec<JoinHandle<WorkerExit>>,
}

impl Runtime {
    /// Starts one worker per `(setup, queues)` pair. The setups share the
    /// runtime's stop flag, policy and neighbors.
    pub fn start<Q: Queues + 'static>(
        policy: Arc<ArcSwap<Policy>>,
        neighbors: Arc<Neighbors>,
        workers: Vec<(WorkerSetup, Q)>,
    ) -> std::io::Result<Runtime> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut rt = Runtime {
            stop: Arc::clone(&stop),
            policy: Arc::clone(&policy),
            neighbors: Arc::clone(&neighbors),
            stats: Vec::new(),
            mail: Arc::default(),
            samples: Vec::new(),
            handles: Vec::new(),
        };
        let mut ends = Vec::new();
        for (s, q) in workers {
            let st: stats::SharedStats = Arc::new(CachePadded::new(WorkerStats::default()));
            let (mgmt_end, mail) = mailbox::pair();
            let sh = worker::Shared {
                mail,
                policy: Arc::clone(&policy),
                stop: Arc::clone(&stop),
                stats: Arc::clone(&st),
                neighbors: Arc::clone(&neighbors),
            };
            let name = format!("moat-w{}", s.index);
            let (tx, rx) = match s.sample_every {
                0 => (None, None),
                _ => {
                    let (tx, rx) = sample::queue();
                    (Some(tx), Some(rx))
                }
            };
            let h = std::thread::Builder::new()
                .name(name)
                .spawn(move || worker::run(s, sh, q, tx));
            match h {
                Ok(h) => {
                    ends.push(mgmt_end);
                    rt.samples.extend(rx);
                    rt.stats.push(st);
                    rt.handles.push(h);
                }
                Err(e) => {
                    let _ = rt.stop();
                    return Err(e);
                }
            }
        }
        rt.mail = Arc::new(mailbox::Mailboxes::new(ends));
        Ok(rt)
    }

    /// Hands over the consumers of the workers' sample queues (one per
    /// worker that samples; empty on a second call): the management plane
    /// drains them.
    pub fn take_samples(&mut self) -> Vec<rtrb::Consumer<Sample>> {
        core::mem::take(&mut self.samples)
    }

    /// The sum over workers, and each worker's own, for `services` services.
    pub fn snapshot(&self, services: usize) -> (Snapshot, Vec<Snapshot>) {
        let per: Vec<Snapshot> = self.stats.iter().map(|s| s.snapshot(services)).collect();
        let mut total = Snapshot::zero(services);
        for p in &per {
            total.add(p);
        }
        (total, per)
    }

    /// True when every worker has ended by itself (its input ran out).
    pub fn finished(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
    }

    /// Stops the workers and waits for them. Errors: a worker that panicked
    /// or whose outputs could not be closed.
    /// The counters stay readable afterwards; a second call does nothing.
    pub fn stop(&mut self) -> Result<(), String> {
        self.stop.store(true, Relaxed);
        self.join()
    }

    fn join(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        for (i, h) in self.handles.drain(..).enumerate() {
            match h.join() {
                Ok(WorkerExit {
                    close_error: Some(e), ..
                }) => errors.push(format!("worker {i}: {e}")),
                Ok(_) => {}
                Err(_) => errors.push(format!("worker {i} panicked")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
