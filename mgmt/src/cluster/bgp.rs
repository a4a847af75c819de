//! The announcer: a management thread (`moat-bgp`, never a worker's core)
//! that makes BIRD's protocol follow [`super::announce::Announcer`].
//!
//! Every [`TICK`] it runs the node's health checks ([`Health::check`],
//! what `GET /api/v1/health` answers), feeds them to the state machine,
//! and, when the wanted state changed or every [`VERIFY`] anyway, asks
//! BIRD (`show protocols P`) and corrects it (`enable P` / `disable P`):
//! someone may have restarted BIRD, or enabled the protocol by hand.
//!
//! BIRD unreachable or refusing: the error is counted, logged at once and
//! then at most once a minute, and tried again after a back-off (doubling
//! from [`RETRY_MIN`] to [`RETRY_MAX`]); scrubbing goes on. On stop the
//! protocol is disabled (one try) and the liveness interface closed.
//!
//! [`BgpShared`] is what the API and `/metrics` read, and where `POST
//! /api/v1/drain` leaves its request for the management loop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use utoipa::ToSchema;

use super::announce::{Announcer, State};
use super::bird::{BirdError, Session};
use super::liveness::Liveness;
use crate::config::{BgpConfig, Config};
use crate::health::{Health, HealthReport};
use crate::lifecycle::stats::ERROR_LOG_EVERY;
use crate::metrics::Exposition;

/// How often health is checked.
pub const TICK: Duration = Duration::from_millis(100);
/// How often BIRD's protocol state is verified when nothing changed.
pub const VERIFY: Duration = Duration::from_secs(2);
/// First wait after a failed exchange with BIRD.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between two tries.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// Longest wait for BIRD on one read or write.
pub const BIRD_TIMEOUT: Duration = Duration::from_secs(1);

/// The announcement as the API and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BgpStatus {
    /// `announced` (BIRD's protocol enabled), `withdrawn` (disabled:
    /// starting, in hold-down or unhealthy), `draining` (withdrawn for
    /// good, the node stops after `drain_secs`) or `disabled` (no `[bgp]`
    /// section: the node announces nothing).
    pub state: String,
    /// When the state last changed, Unix time in seconds.
    pub since_unix_secs: f64,
    /// Why it is in this state.
    pub reason: String,
    /// The last exchange with BIRD's control socket worked.
    pub bird_reachable: bool,
    /// BIRD's protocol was last seen in the state `state` wants (enabled
    /// when announced, disabled otherwise).
    pub bird_synced: bool,
    /// Failed exchanges with BIRD since start-up (unreachable, refused).
    pub bird_errors: u64,
    /// The last failure, if the last exchange failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bird_last_error: Option<String>,
    /// State changes since start-up.
    pub state_changes: u64,
    /// Times BIRD's protocol was found in the other state than Moat had
    /// set it to (BIRD restarted, or changed by hand) and corrected.
    pub corrections: u64,
    /// Withdrawn and healthy: seconds until the announcement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announce_in_secs: Option<f64>,
    /// Draining: seconds until the node stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_ends_in_secs: Option<f64>,
    /// `[bgp] protocol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `[bgp] liveness_iface`, when held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_iface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_down_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_secs: Option<u32>,
}

impl BgpStatus {
    /// A node without `[bgp]`.
    pub fn disabled() -> BgpStatus {
        BgpStatus {
            state: "disabled".into(),
            since_unix_secs: unix_secs(SystemTime::now()),
            reason: "no [bgp] section in the config: the node announces nothing".into(),
            bird_reachable: false,
            bird_synced: false,
            bird_errors: 0,
            bird_last_error: None,
            state_changes: 0,
            corrections: 0,
            announce_in_secs: None,
            drain_ends_in_secs: None,
            protocol: None,
            liveness_iface: None,
            hold_down_secs: None,
            drain_secs: None,
        }
    }

    /// Its `/metrics` families.
    pub fn metrics(&self, e: &mut Exposition) {
        e.gauge(
            "moat_bgp_announced",
            "1 while the node announces its VIPs (BIRD's protocol enabled by Moat and seen so), else 0.",
            u64::from(self.state == "announced" && self.bird_synced),
        );
        e.gauges(
            "moat_bgp_state",
            "The announcement's state (1 for the current one).",
            "state",
            ["announced", "withdrawn", "draining", "disabled"].map(|s| (s, u64::from(self.state == s))),
        );
        e.counter(
            "moat_bgp_state_changes_total",
            "Announcement state changes since start-up.",
            self.state_changes,
        );
        e.gauge(
            "moat_bgp_bird_reachable",
            "1 when the last exchange with BIRD's control socket worked.",
            u64::from(self.bird_reachable),
        );
        e.counter(
            "moat_bgp_bird_errors_total",
            "Failed exchanges with BIRD's control socket (unreachable or refused), each retried after a back-off.",
            self.bird_errors,
        );
        e.counter(
            "moat_bgp_corrections_total",
            "Times BIRD's protocol was found in the other state than Moat set it to, and corrected.",
            self.corrections,
        );
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What the API and the management loop share with the announcer.
#[derive(Debug)]
pub struct BgpShared {
    status: Mutex<BgpStatus>,
    drain_requested: AtomicBool,
    drain_secs: u32,
}

impl BgpShared {
    /// The announcement now.
    pub fn status(&self) -> BgpStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `POST /api/v1/drain`: asks the management loop to drain.
    pub fn request_drain(&self) {
        self.drain_requested.store(true, Relaxed);
    }

    /// Whether a drain was requested through the API.
    pub fn drain_requested(&self) -> bool {
        self.drain_requested.load(Relaxed)
    }

    /// `[bgp] drain_secs`.
    pub fn drain_secs(&self) -> u32 {
        self.drain_secs
    }

    fn publish(&self, s: BgpStatus) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }
}

enum Cmd {
    Drain { why: String, ends: Instant },
    Stop,
}

/// A node's announcements: the liveness interface, the shared status and,
/// once started, the announcer thread. Dropping it stops the thread,
/// disables the protocol and closes the interface.
#[derive(Debug)]
pub struct Bgp {
    cfg: BgpConfig,
    socket: PathBuf,
    shared: Arc<BgpShared>,
    liveness: Option<Liveness>,
    tx: Option<Sender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    drain_ends: Option<Instant>,
}

impl Bgp {
    /// `[bgp]` of `cfg`, its socket path resolved against the config
    /// file's folder (see [`Bgp::prepare`]).
    pub fn of_config(cfg: &Config, bgp: &BgpConfig) -> anyhow::Result<Bgp> {
        Bgp::prepare(bgp, cfg.resolve(&bgp.bird_socket))
    }

    /// `bgp` with its control socket at `socket`: opens the liveness
    /// interface now (so that a missing capability fails start-up before
    /// the workers exist). Nothing talks to BIRD before [`Bgp::start`].
    pub fn prepare(bgp: &BgpConfig, socket: PathBuf) -> anyhow::Result<Bgp> {
        let liveness = bgp.liveness_iface.as_deref().map(Liveness::open).transpose()?;
        if let Some(l) = &liveness {
            tracing::info!(
                "holding liveness interface {} (BIRD's routes via it go when Moat does)",
                l.name()
            );
        }
        let mut status = BgpStatus::disabled();
        status.state = State::Withdrawn.as_str().into();
        status.reason = "starting".into();
        status.protocol = Some(bgp.protocol.clone());
        status.liveness_iface = bgp.liveness_iface.clone();
        status.hold_down_secs = Some(bgp.hold_down_secs);
        status.drain_secs = Some(bgp.drain_secs);
        Ok(Bgp {
            cfg: bgp.clone(),
            socket,
            shared: Arc::new(BgpShared {
                status: Mutex::new(status),
                drain_requested: AtomicBool::new(false),
                drain_secs: bgp.drain_secs,
            }),
            liveness,
            tx: None,
            thread: None,
            drain_ends: None,
        })
    }

    pub fn shared(&self) -> &Arc<BgpShared> {
        &self.shared
    }

    /// Starts the announcer thread, following `health`.
    pub fn start(&mut self, health: Arc<Health>) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        let mut a = Runner {
            cfg: self.cfg.clone(),
            socket: self.socket.clone(),
            health,
            machine: Announcer::new(now, Duration::from_secs(self.cfg.hold_down_secs.into())),
            shared: Arc::clone(&self.shared),
            applied: None,
            next_try: now,
            next_verify: now,
            backoff: RETRY_MIN,
            reachable: false,
            errors: 0,
            corrections: 0,
            last_error: None,
            log: Throttle::default(),
            drain_ends: None,
        };
        let thread = std::thread::Builder::new()
            .name("moat-bgp".into())
            .spawn(move || a.run(&rx))
            .context("starting the BGP announcer thread")?;
        self.tx = Some(tx);
        self.thread = Some(thread);
        tracing::info!(
            "BGP: BIRD protocol {} at {} follows health (hold-down {} s)",
            self.cfg.protocol,
            self.socket.display(),
            self.cfg.hold_down_secs
        );
        Ok(())
    }

    /// Withdraws for good and returns when the node should stop (the
    /// first call's `now + drain_secs`; later calls return the same).
    pub fn drain(&mut self, why: &str) -> Instant {
        if let Some(t) = self.drain_ends {
            return t;
        }
        let ends = Instant::now() + Duration::from_secs(self.cfg.drain_secs.into());
        self.drain_ends = Some(ends);
        tracing::info!(
            "draining ({why}): withdrawing the announcement, scrubbing {} s more, then stopping",
            self.cfg.drain_secs
        );
        if let Some(tx) = &self.tx {
            let _ = tx.send(Cmd::Drain {
                why: why.to_string(),
                ends,
            });
        }
        ends
    }

    /// When the drain ends, once [`Bgp::drain`] was called.
    pub fn drain_ends(&self) -> Option<Instant> {
        self.drain_ends
    }

    /// Stops the thread (which disables the protocol) and closes the
    /// liveness interface. A second call does nothing.
    pub fn stop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Cmd::Stop);
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the BGP announcer thread panicked");
            }
        }
        self.liveness = None;
    }
}

impl Drop for Bgp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// At most one log line a minute about a repeated failure.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    since: u64,
    failing: bool,
}

/// The thread's state.
struct Runner {
    cfg: BgpConfig,
    socket: PathBuf,
    health: Arc<Health>,
    machine: Announcer,
    shared: Arc<BgpShared>,
    /// What BIRD's protocol was last seen as or set to (`None`: unknown).
    applied: Option<bool>,
    next_try: Instant,
    next_verify: Instant,
    backoff: Duration,
    reachable: bool,
    errors: u64,
    corrections: u64,
    last_error: Option<String>,
    log: Throttle,
    drain_ends: Option<Instant>,
}

/// The failing checks of `r`, for a reason line.
fn failing(r: &HealthReport) -> Result<(), String> {
    if r.ok() {
        return Ok(());
    }
    let parts: Vec<String> = r
        .failing()
        .map(|c| {
            if c.detail.is_empty() {
                c.name.clone()
            } else {
                format!("{} ({})", c.name, c.detail)
            }
        })
        .collect();
    Err(parts.join(", "))
}

impl Runner {
    fn run(&mut self, rx: &Receiver<Cmd>) {
        loop {
            match rx.recv_timeout(TICK) {
                Ok(Cmd::Drain { why, ends }) => {
                    self.drain_ends = Some(ends);
                    self.machine.drain(Instant::now(), &why);
                    self.log_change();
                }
                Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick(Instant::now());
        }
        self.withdraw_at_stop();
    }

    fn tick(&mut self, now: Instant) {
        let health = failing(&self.health.check());
        if self.machine.observe(now, health) {
            self.log_change();
        }
        let want = self.machine.wants_enabled();
        let due = self.applied != Some(want) || now >= self.next_verify;
        if due && now >= self.next_try {
            self.reconcile(now, want);
        }
        self.publish(now);
    }

    fn log_change(&self) {
        tracing::info!(
            "BGP: {} ({}): {}",
            self.machine.state().as_str(),
            self.cfg.protocol,
            self.machine.reason()
        );
    }

    /// Makes BIRD's protocol `want` (enabled or not); a failure is counted
    /// and tried again after the back-off.
    fn reconcile(&mut self, now: Instant, want: bool) {
        match self.exchange(want) {
            Ok(was) => {
                if was != want && self.applied == Some(want) {
                    self.corrections += 1;
                    tracing::warn!(
                        "BGP: BIRD's protocol {} was {}, Moat had it {}: corrected (BIRD restarted?)",
                        self.cfg.protocol,
                        on_off(was),
                        on_off(want)
                    );
                }
                if self.log.failing {
                    tracing::info!("BGP: BIRD at {} answers again", self.socket.display());
                }
                self.applied = Some(want);
                self.reachable = true;
                self.last_error = None;
                self.backoff = RETRY_MIN;
                self.log = Throttle::default();
                self.next_verify = now + VERIFY;
            }
            Err(e) => {
                self.errors += 1;
                self.reachable = !e.unreachable();
                self.applied = None;
                self.next_try = now + self.backoff;
                self.backoff = (self.backoff * 2).min(RETRY_MAX);
                self.note_error(now, &e);
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// One connection: the protocol's state, changed if it is not `want`.
    /// Returns what it was.
    fn exchange(&self, want: bool) -> Result<bool, BirdError> {
        let mut s = Session::connect(&self.socket, BIRD_TIMEOUT)?;
        let was = s.protocol_state(&self.cfg.protocol)?.enabled();
        if was != want {
            s.set_enabled(&self.cfg.protocol, want)?;
        }
        Ok(was)
    }

    fn note_error(&mut self, now: Instant, e: &BirdError) {
        self.log.failing = true;
        self.log.since += 1;
        if self
            .log
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= ERROR_LOG_EVERY)
        {
            tracing::error!(
                "BGP: {e} ({} failure(s) since the last line, {} in all; scrubbing goes on, \
                 trying again with a back-off up to {} s)",
                self.log.since,
                self.errors,
                RETRY_MAX.as_secs()
            );
            self.log.last = Some(now);
            self.log.since = 0;
        }
    }

    fn publish(&self, now: Instant) {
        let m = &self.machine;
        let ago = now.saturating_duration_since(m.since());
        let since = SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH);
        let mut s = self.shared.status();
        s.state = m.state().as_str().into();
        s.since_unix_secs = unix_secs(since);
        s.reason = m.reason().to_string();
        s.bird_reachable = self.reachable;
        s.bird_synced = self.applied == Some(m.wants_enabled());
        s.bird_errors = self.errors;
        s.bird_last_error.clone_from(&self.last_error);
        s.state_changes = m.changes();
        s.corrections = self.corrections;
        s.announce_in_secs = m.announce_in(now).map(|d| d.as_secs_f64());
        s.drain_ends_in_secs = self.drain_ends.map(|t| t.saturating_duration_since(now).as_secs_f64());
        self.shared.publish(s);
    }

    /// On stop: BIRD's protocol disabled (one try), so that a node that
    /// stops withdraws even when BIRD watches no liveness interface.
    fn withdraw_at_stop(&mut self) {
        match self.exchange(false) {
            Ok(true) => tracing::info!("BGP: withdrawn at stop (disabled {})", self.cfg.protocol),
            Ok(false) => {}
            Err(e) => tracing::warn!("BGP: could not disable {} at stop: {e}", self.cfg.protocol),
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "enabled"
    } else {
        "disabled"
    }
}
