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
//!   as dropped (`bus_down`), changes are kept as pending keys (also in
//!   [`PENDING_FILE`], so a restart keeps them) and written when it
//!   returns. Health shows `cluster/bus` as degraded (the node still
//!   answers 200).

pub mod batch;
mod sync;
mod verified;
pub mod wire;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use dataplane::runtime::mailbox::{Mailboxes, VerifiedEntry};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{ClusterConfig, Config};
use crate::control::{Control, SharedKey, Sharer};
use crate::metrics::Exposition;

/// How often the workers' outboxes are taken and published.
pub const FLUSH: Duration = Duration::from_millis(20);

/// File of the pending keys, under `[node] state_dir`: a node restarted
/// before the bus returned still writes them when it joins.
pub const PENDING_FILE: &str = "cluster-pending.json";

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
    /// Messages on the verified subject that did not decode.
    pub bad_messages: AtomicU64,
    /// The highest bucket revision this node has seen.
    pub config_revision: AtomicU64,
    pub config_applied: AtomicU64,
    pub config_refused: AtomicU64,
    pub config_conflicts: AtomicU64,
    pub config_pushed: AtomicU64,
}

/// The last change number, and each pending key's (conditional, number).
type Dirty = (u64, BTreeMap<SharedKey, (bool, u64)>);

/// What the bus task, the API and [`Control`] share.
#[derive(Debug)]
pub struct BusState {
    pub cfg: ClusterConfig,
    /// This process's id on the bus (its own messages are skipped).
    pub id: u64,
    pub stats: BusStats,
    mail: Arc<Mailboxes>,
    control: Arc<Control>,
    /// Overlay keys changed here and not yet in the bucket, with whether
    /// the change was conditional (`If-Match`) and the change's number (a
    /// key written is cleared only if no newer change came meanwhile).
    dirty: Mutex<Dirty>,
    /// Woken when `dirty` gains a key.
    wake: tokio::sync::Notify,
    manual: Mutex<Vec<VerifiedEntry>>,
    /// Where the pending keys are kept (`None`: in memory only).
    pending_file: Option<std::path::PathBuf>,
    last_error: Mutex<Option<(Instant, String)>>,
    /// Mailboxes' own drop count (outboxes full), read for the figures.
    started: Instant,
}

impl Sharer for BusState {
    fn changed(&self, key: SharedKey, if_match: bool) {
        self.mark_dirty(key, if_match, true);
        self.wake.notify_one();
    }
}

impl BusState {
    fn new(cfg: ClusterConfig, control: Arc<Control>, mail: Arc<Mailboxes>) -> BusState {
        BusState {
            id: rand::random(),
            stats: BusStats::default(),
            mail,
            control,
            dirty: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            manual: Mutex::default(),
            pending_file: None,
            last_error: Mutex::default(),
            started: Instant::now(),
            cfg,
        }
    }

    /// Keeps the pending keys in `path`, starting with those it holds.
    /// A file that cannot be read is logged and ignored.
    fn with_pending_file(mut self, path: std::path::PathBuf) -> BusState {
        match crate::persist::read_optional(&path) {
            Ok(Some(b)) => match serde_json::from_slice::<Vec<(String, bool)>>(&b) {
                Ok(keys) => {
                    let mut g = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
                    for (k, cas) in keys {
                        if let Some(key) = SharedKey::from_kv(&k) {
                            g.0 += 1;
                            let n = g.0;
                            g.1.insert(key, (cas, n));
                        }
                    }
                }
                Err(e) => tracing::warn!("{}: {e}; ignored", path.display()),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("{}: {e}; ignored", path.display()),
        }
        self.pending_file = Some(path);
        self
    }

    /// Writes the pending keys (called with them locked, after a change).
    fn save_pending(&self, d: &Dirty) {
        let Some(path) = &self.pending_file else { return };
        let keys: Vec<(String, bool)> = d.1.iter().map(|(k, &(cas, _))| (k.to_kv(), cas)).collect();
        let text = serde_json::to_vec(&keys).unwrap_or_default();
        if let Err(e) = crate::persist::write_atomic(path, &text, 0o600) {
            self.note_error(format!("{}: {e}", path.display()));
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

    /// Marks `key` as to be written; `replace`: over a pending change of
    /// it (else a pending change keeps its flag).
    fn mark_dirty(&self, key: SharedKey, cas: bool, replace: bool) {
        let mut g = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 += 1;
        let n = g.0;
        match g.1.entry(key) {
            std::collections::btree_map::Entry::Occupied(mut o) if replace => {
                o.insert((cas, n));
            }
            std::collections::btree_map::Entry::Occupied(_) => {}
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert((cas, n));
            }
        }
        self.save_pending(&g);
    }

    fn is_dirty(&self, key: &SharedKey) -> bool {
        self.dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .contains_key(key)
    }

    /// The keys to write now: key, conditional, change number.
    fn dirty_keys(&self) -> Vec<(SharedKey, bool, u64)> {
        let g = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.iter().map(|(k, &(cas, n))| (k.clone(), cas, n)).collect()
    }

    /// `key` was written as of change `n`: clean unless changed since.
    fn clean(&self, key: &SharedKey, n: u64) {
        let mut g = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        if g.1.get(key).is_some_and(|&(_, m)| m == n) {
            g.1.remove(key);
            self.save_pending(&g);
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

    fn take_manual(&self) -> Vec<VerifiedEntry> {
        core::mem::take(&mut *self.manual.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The bus as `GET /api/v1/cluster` shows it.
    pub fn status(&self) -> BusStatus {
        let s = &self.stats;
        let d = &s.dropped;
        BusStatus {
            servers: self.cfg.nats.clone(),
            name: self.cfg.name.clone(),
            share_verified: self.cfg.share_verified,
            share_config: self.cfg.share_config,
            connected: s.connected.load(Relaxed),
            synced: s.synced.load(Relaxed),
            connects: s.connects.load(Relaxed),
            verified_out: s.verified_out.load(Relaxed),
            verified_in: s.verified_in.load(Relaxed),
            verified_repeats: s.verified_repeats.load(Relaxed),
            verified_dropped: VerifiedDropped {
                outbox_full: self.mail.verified_out_dropped(),
                rate: d.rate.load(Relaxed),
                bus_down: d.bus_down.load(Relaxed),
                inbox_full: d.inbox_full.load(Relaxed),
                manual_full: d.manual_full.load(Relaxed),
                bad_message: s.bad_messages.load(Relaxed),
            },
            config_revision: s.config_revision.load(Relaxed),
            config: ConfigCounts {
                applied: s.config_applied.load(Relaxed),
                refused: s.config_refused.load(Relaxed),
                conflicts: s.config_conflicts.load(Relaxed),
                pushed: s.config_pushed.load(Relaxed),
                pending: self.dirty.lock().unwrap_or_else(PoisonError::into_inner).1.len() as u64,
            },
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|(_, e)| e.clone()),
        }
    }

    /// The `cluster/bus` health check: degraded (never failing) while the
    /// bus is away or the bucket not read yet.
    pub fn health(&self) -> crate::health::Check {
        let st = self.status();
        let ok = st.connected && (st.synced || !self.cfg.share_config);
        let detail = match (st.connected, ok) {
            (true, true) => format!("connected to {}, bucket revision {}", self.cfg.name, st.config_revision),
            (true, false) => "connected, reading the configuration bucket".to_string(),
            (false, _) => format!(
                "disconnected ({}): scrubbing alone, {} change(s) pending{}",
                self.cfg.nats.join(", "),
                st.config.pending,
                st.last_error.map(|e| format!("; last error: {e}")).unwrap_or_default()
            ),
        };
        crate::health::Check {
            name: "cluster/bus".into(),
            ok,
            detail,
        }
    }

    /// The bus's metric families.
    pub fn metrics(&self, e: &mut Exposition) {
        let st = self.status();
        let d = &st.verified_dropped;
        e.gauge(
            "moat_cluster_bus_connected",
            "1 while the node is connected to the NATS cluster bus.",
            u64::from(st.connected),
        );
        e.counter(
            "moat_cluster_bus_connects_total",
            "Connections (first and reconnections) to the cluster bus.",
            st.connects,
        );
        e.counter(
            "moat_cluster_verified_out_total",
            "Verified sources this node published on the bus.",
            st.verified_out,
        );
        e.counter(
            "moat_cluster_verified_in_total",
            "Verified sources from other nodes put in the workers' inboxes.",
            st.verified_in,
        );
        e.counters(
            "moat_cluster_verified_dropped_total",
            "Verified sources not shared or not taken in, by reason.",
            "reason",
            [
                ("outbox_full", d.outbox_full),
                ("rate", d.rate),
                ("bus_down", d.bus_down),
                ("inbox_full", d.inbox_full),
                ("manual_full", d.manual_full),
                ("bad_message", d.bad_message),
            ],
        );
        e.gauge(
            "moat_cluster_config_revision",
            "The highest revision of the configuration bucket this node has seen.",
            st.config_revision,
        );
        e.counters(
            "moat_cluster_config_changes_total",
            "Configuration changes through the bus: applied (from other nodes), refused (invalid here), \
conflicts (a conditional write lost), pushed (written by this node).",
            "result",
            [
                ("applied", st.config.applied),
                ("refused", st.config.refused),
                ("conflict", st.config.conflicts),
                ("pushed", st.config.pushed),
            ],
        );
        e.gauge(
            "moat_cluster_config_pending",
            "Configuration keys changed here and not yet written to the bucket.",
            st.config.pending,
        );
    }
}

/// `GET /api/v1/cluster`'s `bus`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BusStatus {
    /// The NATS servers (`[cluster] nats`).
    pub servers: Vec<String>,
    /// Subject prefix and bucket name (`[cluster] name`).
    pub name: String,
    pub share_verified: bool,
    pub share_config: bool,
    /// Connected to a server now.
    pub connected: bool,
    /// The configuration bucket was read since the last connection.
    pub synced: bool,
    /// Connections so far (1 + reconnections).
    pub connects: u64,
    /// Verified sources published.
    pub verified_out: u64,
    /// Verified sources from other nodes taken in.
    pub verified_in: u64,
    /// Sources left out as already published within half their TTL.
    pub verified_repeats: u64,
    pub verified_dropped: VerifiedDropped,
    /// The highest configuration bucket revision seen.
    pub config_revision: u64,
    pub config: ConfigCounts,
    /// The last error met (connection, bucket), if any.
    pub last_error: Option<String>,
}

/// Verified sources not shared or not taken in, by reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifiedDropped {
    pub outbox_full: u64,
    pub rate: u64,
    pub bus_down: u64,
    pub inbox_full: u64,
    pub manual_full: u64,
    pub bad_message: u64,
}

/// Configuration changes through the bus.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigCounts {
    /// Changes from other nodes applied here.
    pub applied: u64,
    /// Changes from other nodes refused here (invalid over this node's file).
    pub refused: u64,
    /// Conditional writes of this node that lost to a newer bucket value.
    pub conflicts: u64,
    /// Writes of this node to the bucket.
    pub pushed: u64,
    /// Keys changed here and not yet in the bucket.
    pub pending: u64,
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
    pub fn start(cfg: &Config, control: Arc<Control>, mail: Arc<Mailboxes>) -> anyhow::Result<Bus> {
        let opts = verified::connect_options(cfg)?;
        let state = BusState::new(cfg.cluster.clone(), Arc::clone(&control), mail)
            .with_pending_file(cfg.state_dir().join(PENDING_FILE));
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
