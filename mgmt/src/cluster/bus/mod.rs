//! The cluster bus: NATS (`nats-server`, client `async-nats`) on a small
//! tokio runtime of its own thread (`moat-bus`), never on a worker's core.
//! See docs/cluster.md, "The cluster bus (NATS)".
//!
//! - Verified sources ([`verified`]): every [`FLUSH`] the workers'
//!   outboxes are taken, thinned and rate-bounded ([`batch`]) and published
//!   on `NAME.verified` in binary batches ([`wire`]); batches from the other
//!   nodes go into every worker's inbox. A node skips its own messages (a
//!   random id per process), and sources learnt from the bus never reach an
//!   outbox, so nothing is published twice.
//! - Catch-up ([`mirror`]): the bus remembers every source it published or
//!   took in, with its expiry (bounded). Each time a node (re)joins it asks
//!   on `NAME.verified.sync` ([`wire::encode_hello`]); every other node
//!   sends its still-valid sources again, with the TTL they have left, on
//!   `NAME.verified`, at most [`CATCHUP_RATE`] per second.
//! - Configuration ([`sync`]): the REST API's overlay lives in the
//!   JetStream key-value bucket `NAME`, one key per object
//!   ([`crate::control::shared`]). A local change is applied at once (and
//!   cached in `changes.json`), then written to the bucket — with
//!   compare-and-set on the revision last seen when the request carried
//!   `If-Match`, else last writer wins per key. Every node watches the
//!   bucket and applies what others write through [`Control::apply_shared`].
//! - Joining (start-up or after a reconnect): first the keys changed here
//!   while the bus was away are written (the node's own recent changes win
//!   for those keys), then the bucket is read and applied (the bucket wins
//!   for every other key), then this node's overlay keys that the bucket
//!   lacks are offered (create-only), then the watch begins. Start-up waits
//!   up to `start_wait_ms` for this before the API opens.
//! - Bus down: nothing waits for it. Sources verified meanwhile are counted
//!   as dropped (`bus_down`) but remembered for the catch-up, changes are kept as pending keys (also in
//!   [`PENDING_FILE`], so a restart keeps them) and written when it
//!   returns. Health shows `cluster/bus` as degraded (the node still
//!   answers 200).

mod bans;
pub mod batch;
mod mirror;
mod pending;
mod status;
mod sync;
mod verified;
pub mod wire;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{ClusterConfig, Config};
use crate::control::{Control, SharedKey, Sharer};
use anyhow::Context;
use dataplane::runtime::mailbox::{Mailboxes, VerifiedEntry};

pub use status::{BusStatus, CatchupCounts, ConfigCounts, VerifiedDropped};

/// How often the workers' outboxes are taken and published.
pub const FLUSH: Duration = Duration::from_millis(20);

/// File of the pending keys, under `[node] state_dir`: a node restarted
/// before the bus returned still writes them when it joins.
pub const PENDING_FILE: &str = "cluster-pending.json";

/// Sources sent again per second at most when another node joins (in
/// messages of [`batch::BATCH`]), apart from `verified_rate`.
pub const CATCHUP_RATE: u64 = 50_000;

/// Sources verified by hand (`PUT /api/v1/verified/{address}`) waiting for
/// the next flush, at most.
const MANUAL_MAX: usize = 4096;

/// Why verified sources were not shared (or not taken in).
#[derive(Debug, Default)]
pub struct Dropped {
    /// Over `verified_rate`.
    pub rate: AtomicU64,
    /// The bus was down when they were to be published.
    pub bus_down: AtomicU64,
    /// A worker's inbox was full (counted per source, not per worker).
    pub inbox_full: AtomicU64,
    /// Sources verified by hand while [`MANUAL_MAX`] already waited.
    pub manual_full: AtomicU64,
}

/// The bus's figures, shared with the API, metrics and health.
#[derive(Debug, Default)]
pub struct BusStats {
    pub connected: AtomicBool,
    /// The bucket was read since the last (re)connection.
    pub synced: AtomicBool,
    pub connects: AtomicU64,
    pub verified_out: AtomicU64,
    pub verified_in: AtomicU64,
    /// Sources published again within half their TTL: left out.
    pub verified_repeats: AtomicU64,
    pub dropped: Dropped,
    /// Messages on the verified subjects that did not decode.
    pub bad_messages: AtomicU64,
    /// Catch-up requests this node sent (one per connection).
    pub catchup_requests_out: AtomicU64,
    /// Catch-up requests from other nodes.
    pub catchup_requests_in: AtomicU64,
    /// Sources sent again (for other nodes' requests, and on joining).
    pub catchup_sent: AtomicU64,
    /// Sources not remembered for catch-up: the mirror was full.
    pub mirror_full: AtomicU64,
    /// The highest bucket revision this node has seen.
    pub config_revision: AtomicU64,
    pub config_applied: AtomicU64,
    pub config_refused: AtomicU64,
    pub config_conflicts: AtomicU64,
    pub config_pushed: AtomicU64,
    /// Bans and lifts sent, taken in, and not sent (the bus was down).
    pub bans_out: AtomicU64,
    pub bans_in: AtomicU64,
    pub bans_dropped: AtomicU64,
}

/// What the bus task, the API and [`Control`] share.
#[derive(Debug)]
pub struct BusState {
    pub cfg: ClusterConfig,
    /// This process's id on the bus (its own messages are skipped).
    pub id: u64,
    pub stats: BusStats,
    mail: Arc<Mailboxes>,
    control: Arc<Control>,
    /// Overlay keys changed here and not yet in the bucket.
    pending: pending::Pending,
    /// Woken when `pending` gains a key.
    wake: tokio::sync::Notify,
    manual: Mutex<Vec<VerifiedEntry>>,
    /// The sources known verified, for other nodes' catch-up.
    mirror: Mutex<mirror::Mirror>,
    last_error: Mutex<Option<(Instant, String)>>,
    /// The batcher's clock starts here.
    started: Instant,
    /// The auto-blacklist, whose bans are shared with `share_verified`.
    blacklist: Option<Arc<crate::blacklist::Blacklist>>,
}

impl Sharer for BusState {
    fn changed(&self, key: SharedKey, if_match: bool) {
        if let Some(e) = self.pending.changed(key, if_match) {
            self.note_error(e);
        }
        self.wake.notify_one();
    }
}

impl BusState {
    /// `pending`: [`pending::Pending::with_file`] for a node (the
    /// default keeps them in memory only).
    fn new(cfg: ClusterConfig, control: Arc<Control>, mail: Arc<Mailboxes>, pending: pending::Pending) -> BusState {
        BusState {
            id: rand::random(),
            stats: BusStats::default(),
            mail,
            control,
            pending,
            wake: tokio::sync::Notify::new(),
            manual: Mutex::default(),
            mirror: Mutex::default(),
            last_error: Mutex::default(),
            started: Instant::now(),
            blacklist: None,
            cfg,
        }
    }

    fn subject(&self) -> String {
        format!("{}.verified", self.cfg.name)
    }

    fn note_error(&self, e: String) {
        let mut g = self.last_error.lock().unwrap_or_else(PoisonError::into_inner);
        // Log a repeated error at most once a minute.
        let repeat = matches!(&*g, Some((at, old)) if *old == e && at.elapsed() < Duration::from_secs(60));
        if !repeat {
            tracing::warn!("cluster bus: {e}");
            *g = Some((Instant::now(), e));
        }
    }

    /// Shares a source verified on this node by other means than a
    /// worker's challenge (an operator's `PUT /api/v1/verified/...`).
    pub fn share_verified(&self, ip: IpAddr, ttl: u64) {
        if !self.cfg.share_verified {
            return;
        }
        let mut g = self.manual.lock().unwrap_or_else(PoisonError::into_inner);
        if g.len() >= MANUAL_MAX {
            self.stats.dropped.manual_full.fetch_add(1, Relaxed);
        } else {
            g.push(VerifiedEntry { ip, ttl });
        }
    }

    /// Remembers `entries`, verified at `now`, for catch-up.
    fn remember(&self, entries: &[VerifiedEntry], now: u64) {
        let mut m = self.mirror();
        let full = entries.iter().filter(|&&e| !m.insert(e, now)).count();
        if full > 0 {
            self.stats.mirror_full.fetch_add(full as u64, Relaxed);
        }
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, mirror::Mirror> {
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_manual(&self) -> Vec<VerifiedEntry> {
        core::mem::take(&mut *self.manual.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The running bus (its thread); stopping or dropping it leaves the bus.
#[derive(Debug)]
pub struct Bus {
    pub state: Arc<BusState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Bus {
    /// Joins the bus of `cfg` (`[cluster]` with servers) and waits up to
    /// `start_wait_ms` for the configuration bucket to be read and applied;
    /// past that the node goes on alone and joins in the background.
    /// Errors: a credentials file that cannot be read, or no thread.
    /// `blacklist`: its bans are shared too (with `share_verified`).
    pub fn start(
        cfg: &Config,
        control: Arc<Control>,
        mail: Arc<Mailboxes>,
        blacklist: Option<Arc<crate::blacklist::Blacklist>>,
    ) -> anyhow::Result<Bus> {
        let opts = verified::connect_options(cfg)?;
        let pending = pending::Pending::with_file(cfg.state_dir().join(PENDING_FILE));
        let mut state = BusState::new(cfg.cluster.clone(), Arc::clone(&control), mail, pending);
        if state.cfg.share_verified {
            if let Some(b) = &blacklist {
                b.share_with_cluster();
            }
            state.blacklist = blacklist;
        }
        let state = Arc::new(state);
        if state.cfg.share_config {
            control.set_sharer(Arc::clone(&state) as Arc<dyn Sharer>);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("moat-bus")
            .build()
            .context("cluster bus runtime")?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let st = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("moat-bus".into())
            .spawn(move || {
                rt.block_on(verified::run(st, opts, stop_rx, ready_tx));
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .context("cluster bus thread")?;
        let wait = Duration::from_millis(state.cfg.start_wait_ms.into());
        match ready_rx.recv_timeout(wait) {
            Ok(()) => tracing::info!(
                "cluster bus: joined {} ({}), bucket revision {}",
                state.cfg.name,
                state.cfg.nats.join(", "),
                state.stats.config_revision.load(Relaxed)
            ),
            Err(_) => tracing::warn!(
                "cluster bus: {} not reached within {} ms: scrubbing alone until it answers",
                state.cfg.nats.join(", "),
                state.cfg.start_wait_ms
            ),
        }
        Ok(Bus {
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Leaves the bus and waits for its thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Nanoseconds since `state` started (the batcher's monotonic clock).
fn mono(state: &BusState) -> u64 {
    u64::try_from(state.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
