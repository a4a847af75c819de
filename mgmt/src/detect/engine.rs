//! The detector at work in `moat run`: a management thread (never a worker
//! core's) that drains the workers' sample queues every 50 ms, and every
//! second reads the per-service counters, runs the [`Detector`], writes
//! attack reports and hands alerts to the webhooks' threads.
//!
//! Samples wait for the next second in a buffer of at most
//! [`MAX_SAMPLES_PER_SEC`]; beyond it they are dropped and counted, as a
//! full worker queue would.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use dataplane::pipeline::ServiceCounters;
use dataplane::runtime::stats::SharedStats;
use dataplane::runtime::{sample, wall_clock, Sample};

use super::{Countermeasures, Detector, Event};
use crate::alert::Alerter;
use crate::config::{AlertEvent, Config};
use crate::report::store::ReportStore;

/// Samples kept per second for the detector (the rest are counted).
pub const MAX_SAMPLES_PER_SEC: usize = 1 << 16;
const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Figures of the engine, for the stats file and metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub samples: AtomicU64,
    /// Samples drained but not kept (over [`MAX_SAMPLES_PER_SEC`]).
    pub samples_dropped: AtomicU64,
    pub attacks_started: AtomicU64,
    pub attacks_active: AtomicU64,
    pub reports_written: AtomicU64,
    pub report_errors: AtomicU64,
}

/// An attack under way, as the REST API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ActiveAttack {
    pub service: String,
    pub attack_uuid: String,
}

/// The signatures an attack under way proposes (exact fingerprint deny
/// rules of its heavy hitters; active when the service's `on_attack` has
/// `activate_signatures`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ProposedSignatures {
    pub service: String,
    pub attack_uuid: String,
    pub rules: Vec<String>,
}

/// What the management plane reads of the detector, refreshed every second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectView {
    pub active: Vec<ActiveAttack>,
    pub proposed: Vec<ProposedSignatures>,
    /// Each service's rates over the last second.
    pub figures: std::collections::BTreeMap<String, super::figures::Figures>,
    pub counters: DetectCounters,
}

/// The detection thread's and the webhooks' counters, as of the last second
/// (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectCounters {
    /// Samples drained but not kept (over [`MAX_SAMPLES_PER_SEC`]).
    pub samples_dropped: u64,
    pub attacks_started: u64,
    pub reports_written: u64,
    pub report_errors: u64,
    pub alerts_sent: u64,
    pub alert_failed_attempts: u64,
    pub alerts_given_up: u64,
    pub alerts_dropped: u64,
}

/// The view shared with the REST API (a management-side lock, never taken
/// by a worker).
pub type SharedView = Arc<std::sync::Mutex<DetectView>>;

/// First back-off between a webhook's attempts.
const ALERT_BACKOFF: Duration = Duration::from_millis(500);

/// What the engine reads and acts on.
pub struct Engine {
    detector: Detector,
    store: ReportStore,
    alerter: Alerter,
    /// The webhooks `alerter` sends to (replaced when a reload changes them).
    webhooks: Vec<crate::config::WebhookConfig>,
    queues: Vec<rtrb::Consumer<Sample>>,
    cm: Box<dyn Countermeasures + Send>,
    workers: Vec<SharedStats>,
    services: usize,
    node: String,
    buf: Vec<Sample>,
    pub stats: Arc<EngineStats>,
    view: SharedView,
    /// Where the services come from when they change at run time.
    control: Option<Arc<crate::control::Control>>,
    generation: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("detector", &self.detector)
            .field("store", &self.store)
            .field("queues", &self.queues.len())
            .finish()
    }
}

/// A running engine thread.
#[derive(Debug)]
pub struct EngineHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<EngineStats>,
}

impl Engine {
    /// The engine of `cfg` over the workers' counters `workers`, their
    /// sample queues `queues`, acting through `cm`.
    pub fn new(
        cfg: &Config,
        workers: Vec<SharedStats>,
        queues: Vec<rtrb::Consumer<Sample>>,
        cm: Box<dyn Countermeasures + Send>,
    ) -> Engine {
        let d = &cfg.detection;
        Engine {
            detector: Detector::new(d.clone(), cfg.mgmt.sample_every, Detector::policies(cfg)),
            store: ReportStore::of_config(cfg),
            alerter: Alerter::start(&cfg.mgmt.webhooks, ALERT_BACKOFF),
            webhooks: cfg.mgmt.webhooks.clone(),
            queues,
            cm,
            workers,
            services: cfg.services.len(),
            node: cfg.node.name.clone(),
            buf: Vec::new(),
            stats: Arc::new(EngineStats::default()),
            view: SharedView::default(),
            control: None,
            generation: 0,
        }
    }

    /// Publishes what it detects into `view` every second.
    pub fn with_view(mut self, view: SharedView) -> Engine {
        self.view = view;
        self
    }

    /// Follows the services of `control` (created, replaced and deleted
    /// through the REST API).
    pub fn with_control(mut self, control: Arc<crate::control::Control>) -> Engine {
        self.generation = control.generation();
        self.control = Some(control);
        self
    }

    /// Takes a new service list from the control plane when it published
    /// a change since the last second.
    fn follow_control(&mut self) {
        let Some(c) = &self.control else { return };
        let g = c.generation();
        if g == self.generation {
            return;
        }
        self.generation = g;
        let cfg = c.config();
        self.detector.set_services(Detector::policies(&cfg));
        self.services = cfg.services.len();
        if cfg.mgmt.webhooks != self.webhooks {
            // A reload (SIGHUP) changed the webhooks: new senders, the same
            // counters; alerts still queued for the old ones are given up.
            let stats = self.alerter.shared_stats();
            self.alerter = Alerter::start_counting(&cfg.mgmt.webhooks, ALERT_BACKOFF, stats);
            self.webhooks = cfg.mgmt.webhooks;
            tracing::info!("webhooks replaced: {} configured", self.webhooks.len());
        }
    }

    /// Moves the queued samples into the second's buffer.
    pub fn drain(&mut self) {
        for q in &mut self.queues {
            let buf = &mut self.buf;
            let stats = &self.stats;
            sample::drain(q, |s| {
                if buf.len() < MAX_SAMPLES_PER_SEC {
                    buf.push(s);
                    stats.samples.fetch_add(1, Relaxed);
                } else {
                    stats.samples_dropped.fetch_add(1, Relaxed);
                }
            });
        }
    }

    fn counters(&self) -> Vec<ServiceCounters> {
        let mut total = vec![ServiceCounters::default(); self.services];
        for w in &self.workers {
            for (t, c) in total.iter_mut().zip(w.snapshot(self.services).services) {
                t.add(&c);
            }
        }
        total
    }

    /// One second, `secs` after the previous.
    pub fn tick(&mut self, secs: f64) {
        self.drain();
        self.follow_control();
        let now = wall_clock() / 1_000_000_000;
        let counters = self.counters();
        let events = self.detector.tick(now, secs, &counters, &self.buf, self.cm.as_mut());
        self.buf.clear();
        for e in &events {
            self.handle(e);
        }
        let active: Vec<ActiveAttack> = self
            .detector
            .active()
            .into_iter()
            .map(|(service, attack_uuid)| ActiveAttack { service, attack_uuid })
            .collect();
        self.stats.attacks_active.store(active.len() as u64, Relaxed);
        let proposed = self
            .detector
            .proposed()
            .into_iter()
            .map(|(service, attack_uuid, rules)| ProposedSignatures {
                service,
                attack_uuid,
                rules,
            })
            .collect();
        if let Ok(mut v) = self.view.lock() {
            *v = DetectView {
                active,
                proposed,
                figures: self.detector.figures().into_iter().collect(),
                counters: self.detect_counters(),
            };
        }
    }

    fn detect_counters(&self) -> DetectCounters {
        let (e, a) = (&self.stats, self.alerter.stats());
        DetectCounters {
            samples_dropped: e.samples_dropped.load(Relaxed),
            attacks_started: e.attacks_started.load(Relaxed),
            reports_written: e.reports_written.load(Relaxed),
            report_errors: e.report_errors.load(Relaxed),
            alerts_sent: a.sent.load(Relaxed),
            alert_failed_attempts: a.failed_attempts.load(Relaxed),
            alerts_given_up: a.given_up.load(Relaxed),
            alerts_dropped: a.dropped.load(Relaxed),
        }
    }

    fn write(&self, r: &crate::report::AttackReport) {
        match self.store.write(r) {
            Ok(()) => {
                self.stats.reports_written.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.stats.report_errors.fetch_add(1, Relaxed);
                tracing::error!("attack report {}: {e:#}", r.attack_uuid);
            }
        }
    }

    fn handle(&self, e: &Event) {
        match e {
            Event::AttackStart(r, _) => {
                self.stats.attacks_started.fetch_add(1, Relaxed);
                tracing::warn!(
                    "attack {} on {} started: {} ({})",
                    r.attack_uuid,
                    r.service,
                    r.types.join(", "),
                    r.triggers.join("; ")
                );
                self.write(r);
                self.alerter.send(AlertEvent::AttackStart, e.alert_body(&self.node));
            }
            Event::AttackUpdate(r) => self.write(r),
            Event::AttackEnd(r) => {
                tracing::warn!(
                    "attack {} on {} {} after {} s, peak {:.0} pps",
                    r.attack_uuid,
                    r.service,
                    if r.state == "interrupted" {
                        "interrupted (the node stops)"
                    } else {
                        "ended"
                    },
                    r.duration_secs,
                    r.peak_pps
                );
                self.write(r);
                if let Err(e) = self.store.prune(SystemTime::now()) {
                    tracing::error!("attack reports: {e:#}");
                }
                self.alerter.send(AlertEvent::AttackEnd, e.alert_body(&self.node));
            }
            Event::Threshold { .. } => self.alerter.send(AlertEvent::Threshold, e.alert_body(&self.node)),
        }
    }

    /// The node stops: the attacks under way end `interrupted` (final
    /// report written, `attack_end` sent), then queued alerts get up to two
    /// seconds to go out.
    pub fn shutdown(&mut self) {
        let now = wall_clock() / 1_000_000_000;
        for e in self.detector.interrupt(now, self.cm.as_mut()) {
            self.handle(&e);
        }
        self.stats.attacks_active.store(0, Relaxed);
        self.alerter.flush(Duration::from_secs(2));
    }

    /// Runs on its own thread until [`EngineHandle::stop`], then
    /// [`Engine::shutdown`].
    pub fn spawn(mut self) -> std::io::Result<EngineHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::clone(&self.stats);
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("moat-detect".into()).spawn(move || {
            let mut last = Instant::now();
            while !flag.load(Relaxed) {
                std::thread::sleep(DRAIN_EVERY);
                self.drain();
                if last.elapsed() >= Duration::from_secs(1) {
                    let secs = last.elapsed().as_secs_f64();
                    last = Instant::now();
                    self.tick(secs);
                }
            }
            self.shutdown();
        })?;
        Ok(EngineHandle {
            stop,
            thread: Some(thread),
            stats,
        })
    }
}

impl EngineHandle {
    /// Stops the engine thread and waits for it: attacks under way are
    /// closed as `interrupted` (see [`Engine::shutdown`]); at most about two
    /// seconds for the last alerts.
    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
