//! A node's life, for `moat run` and `moat demo`: start, supervise, stop.
//!
//! [`Running::start`] brings a node up in this order, each step refusing
//! before anything of the next one exists:
//! 1. signal handlers (SIGINT/SIGTERM stop or drain, SIGHUP reloads: a
//!    HUP never kills the node, even during start-up);
//! 2. the state folder: created `0700` if missing, refused when someone
//!    else owns it or may write into it, then locked (one node per folder;
//!    a second one exits naming the first's PID); temporary files of
//!    writes killed earlier are removed ([`crate::persist`]);
//! 3. the runtime changes over the config file ([`Control::load`]);
//! 4. the API token;
//! 5. with `[bgp]`, the liveness interface ([`crate::cluster::liveness`]);
//! 6. the backend and its workers; 7. the cluster bus (when `[cluster]
//!    nats` is set: the configuration bucket is read and applied before the
//!    API answers, for at most `start_wait_ms`); 8. the REST API;
//! 9. detection; 10. the BGP announcer ([`crate::cluster::bgp`]); then
//!    systemd hears `READY=1`.
//!
//! [`Running::supervise`] is the management loop (this thread, never a
//! worker's core): cookie key rotation, the `--stats` file, the rates,
//! the systemd watchdog (fed only while every worker polls), SIGHUP
//! reloads, drains. Nothing it does can stop the workers: a failed write is
//! counted (`mgmt_errors`), logged (at most once a minute) and tried
//! again the next second; a bad file on SIGHUP is logged and changes
//! nothing.
//!
//! Draining (with `[bgp]` only): SIGTERM, SIGINT or `POST /api/v1/drain`
//! (`moat drain`) withdraws the announcement at once, keeps scrubbing
//! `[bgp] drain_secs` (the router moves the traffic away meanwhile), then
//! ends supervision; a second SIGTERM or SIGINT ends it at once. Without
//! `[bgp]`, SIGTERM and SIGINT end it at once.
//!
//! [`Running::stop`] (and dropping a [`Running`], on any path) withdraws
//! the announcement and closes the liveness interface first, then stops the
//! API (no change arrives during shutdown), then the bus, then detection (which
//! closes the attacks under way and writes their reports while the
//! counters still move), then the workers.

pub mod backend;
pub mod notify;
pub mod signals;
pub mod stats;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dataplane::runtime::wall_clock;

pub use backend::{memory_source, start as start_node};
pub use signals::Signals;
pub use stats::{write_stats, ErrorLog};

use crate::api::{self, auth};
use crate::blacklist::{Blacklist, BlacklistThread};
use crate::cluster::bgp::Bgp;
use crate::config::{Config, SecretSource};
use crate::control::Control;
use crate::detect::countermeasures::ControlCountermeasures;
use crate::detect::engine::{Engine, EngineHandle, SharedView};
use crate::health::{Health, Links};
use crate::metrics::Counters;
use crate::node::Node;
use crate::persist::{self, StateDir, StateLock};
use crate::report::store::ReportStore;
use notify::{Notifier, Progress};

/// What to run besides the workers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve the REST API on this address.
    pub api: Option<SocketAddr>,
    /// Run attack detection (`[detection] enabled`).
    pub detection: bool,
    /// The config file SIGHUP reloads (`None`: SIGHUP is ignored).
    pub config_file: Option<PathBuf>,
}

impl Options {
    /// What `moat run` runs for `cfg` read from `file`.
    pub fn of_config(cfg: &Config, file: &Path) -> Options {
        Options {
            api: cfg.mgmt.enabled.then_some(cfg.mgmt.listen),
            detection: cfg.detection.enabled,
            config_file: Some(file.to_path_buf()),
        }
    }
}

/// A started node and its management plane. Dropping it stops everything.
#[derive(Debug)]
pub struct Running {
    pub node: Node,
    pub control: Arc<Control>,
    pub counters: Arc<Counters>,
    /// The readiness checks (`GET /api/v1/health`; BGP announcements
    /// will follow them).
    pub health: Arc<Health>,
    /// The API's address and where its token came from.
    pub api: Option<(SocketAddr, auth::TokenSource)>,
    /// The node's cluster parts as the API sees them (announcer, bus).
    pub cluster: api::ClusterApi,
    /// The auto-blacklist ([`crate::blacklist`]).
    pub blacklist: Arc<Blacklist>,
    blacklist_thread: Option<BlacklistThread>,
    bus: Option<crate::cluster::bus::Bus>,
    server: Option<api::Server>,
    engine: Option<EngineHandle>,
    bgp: Option<Bgp>,
    notifier: Notifier,
    signals: Signals,
    config_file: Option<PathBuf>,
    stats_errors: ErrorLog,
    stopped: bool,
    _lock: StateLock,
}

/// Logs once at start-up each secret file that others may read.
fn warn_readable(cfg: &Config) {
    let mut files = Vec::new();
    if let SecretSource::File(p) = cfg.secret_source() {
        files.push(("node.cookie_secret_file", p));
    }
    if let Some(p) = cfg.token_file() {
        files.push(("mgmt.token_file", p));
    }
    for (key, p) in files {
        if let Some(mode) = persist::readable_by_others(&p) {
            tracing::warn!(
                "{key} {} has mode {mode:04o}: other local users can read it (chmod 600 {})",
                p.display(),
                p.display()
            );
        }
    }
}

/// Checks, creates and locks `cfg`'s state folder, and clears the
/// temporary files of killed writes from it and its reports folder.
fn take_state_dir(cfg: &Config) -> anyhow::Result<StateLock> {
    let dir = StateDir::open(&cfg.state_dir())?;
    let lock = dir.lock()?;
    let reports = ReportStore::of_config(cfg).dir().to_path_buf();
    for d in [dir.path.as_path(), reports.as_path()] {
        match persist::remove_stale_temps(d) {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} stale temporary file(s) from {}", d.display()),
            Err(e) => tracing::warn!("{}: stale temporary files: {e}", d.display()),
        }
    }
    Ok(lock)
}

impl Running {
    /// Starts the node of `file` (see the module doc for the order).
    pub fn start(file: Config, opts: Options) -> anyhow::Result<Running> {
        let signals = Signals::install()?;
        let lock = take_state_dir(&file)?;
        warn_readable(&file);
        let startup = Control::load(file)?;
        let n = startup.changes().services.len() + usize::from(startup.changes().rules.is_some());
        if n > 0 {
            tracing::info!(
                "applied {n} runtime change(s) from {} over the config file",
                startup.changes_path().display()
            );
        }
        let cfg = startup.config().clone();
        let token = match opts.api {
            Some(listen) => Some(auth::load(&cfg, listen, std::env::var(auth::TOKEN_ENV).ok())?),
            None => None,
        };
        let bgp = match &cfg.bgp {
            Some(b) => Some(Bgp::of_config(&cfg, b)?),
            None => None,
        };
        let mut node = backend::start(&cfg)?;
        tracing::info!(
            "running {} worker(s) on the {} backend (outside {}, inside {})",
            cfg.dataplane.workers,
            cfg.dataplane.backend.as_str(),
            cfg.outside.iface,
            cfg.inside.iface
        );
        let counters = Counters::of(&node.rt);
        let control = Arc::new(Control::new(
            startup,
            Arc::clone(&node.rt.policy),
            Arc::clone(&counters),
        ));
        node.control = Some(Arc::clone(&control));
        let links = Links::of(&cfg, node.device_stats());
        let health = Arc::new(Health::new(&cfg, &node.rt, links));
        let blacklist = Arc::new(Blacklist::new(
            Arc::clone(&node.rt.mail),
            Arc::clone(&node.rt.policy),
            Some(&cfg.state_dir()),
            cfg.dataplane.ban_table_size as usize,
            cfg.dataplane.violation_table_size as usize,
        ));
        tracing::debug!(
            "blacklist: {} violation counters and {} bans reserved ({} bytes)",
            cfg.dataplane.violation_table_size,
            cfg.dataplane.ban_table_size,
            blacklist.memory_bytes()
        );
        match blacklist.load(crate::blacklist::now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!("blacklist: {n} ban(s) from the state folder"),
            Err(e) => tracing::warn!("blacklist: {e:#}; starting without the stored bans"),
        }
        let detect = opts.detection.then(|| api::DetectApi {
            view: SharedView::default(),
            reports: ReportStore::of_config(&cfg),
        });
        // From here on, dropping `running` stops whatever was started.
        let mut running = Running {
            node,
            control,
            counters,
            health,
            api: None,
            cluster: api::ClusterApi {
                bgp: bgp.as_ref().map(|b| Arc::clone(b.shared())),
                bus: None,
            },
            blacklist_thread: Some(blacklist.spawn().context("starting the blacklist thread")?),
            blacklist,
            bus: None,
            server: None,
            engine: None,
            bgp,
            notifier: Notifier::from_env(),
            signals,
            config_file: opts.config_file,
            stats_errors: ErrorLog::default(),
            stopped: false,
            _lock: lock,
        };
        if cfg.cluster.enabled() {
            let bus = crate::cluster::bus::Bus::start(
                &cfg,
                Arc::clone(&running.control),
                Arc::clone(&running.node.rt.mail),
                Some(Arc::clone(&running.blacklist)),
            )?;
            let state = Arc::clone(&bus.state);
            running.health.add_degraded_check(Box::new(move || state.health()));
            running.cluster.bus = Some(Arc::clone(&bus.state));
            running.bus = Some(bus);
        }
        if let (Some(listen), Some((t, src))) = (opts.api, token) {
            let server = api::Server::start(
                listen,
                api::ApiState {
                    control: Arc::clone(&running.control),
                    counters: Arc::clone(&running.counters),
                    mail: Arc::clone(&running.node.rt.mail),
                    node: cfg.node.name.clone(),
                    token: t,
                    detect: detect.clone(),
                    health: Arc::clone(&running.health),
                    cluster: running.cluster.clone(),
                    blacklist: Some(Arc::clone(&running.blacklist)),
                },
            )?;
            tracing::info!("API listening on http://{}/api/v1/ ({src})", server.addr);
            tracing::info!(
                "dashboard at http://{}/ui/ (give it the token: /ui/#token=TOKEN, or its login form)",
                server.addr
            );
            running.api = Some((server.addr, src));
            running.server = Some(server);
        }
        if let Some(d) = detect {
            let cm = ControlCountermeasures(Arc::clone(&running.control));
            let engine = Engine::new(
                &cfg,
                running.node.rt.stats.clone(),
                running.node.rt.take_samples(),
                Box::new(cm),
            )
            .with_view(d.view)
            .with_control(Arc::clone(&running.control));
            running.engine = Some(engine.spawn().context("starting the detection thread")?);
        }
        if let Some(b) = &mut running.bgp {
            b.start(Arc::clone(&running.health))?;
        }
        running.notifier.ready(&format!(
            "scrubbing: {} worker(s) on the {} backend",
            cfg.dataplane.workers,
            cfg.dataplane.backend.as_str()
        ));
        Ok(running)
    }

    /// The stop and reload requests this node answers.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Supervises the node until a stop signal (or the end of a drain),
    /// `duration`, or the workers ending on their own (see the module
    /// doc). `stats`: the counters file rewritten every second; `every_second` is called once per second
    /// with the seconds since the previous call. Does not stop the node:
    /// [`Running::stop`] (or drop) does.
    pub fn supervise(
        &mut self,
        duration: Option<Duration>,
        stats: Option<&Path>,
        mut every_second: impl FnMut(&Node, f64),
    ) {
        let t0 = Instant::now();
        let mut last = Instant::now();
        let mut progress = Progress::default();
        let mut seconds = 0u64;
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if self.stop_now() || self.node.rt.finished() || duration.is_some_and(|d| t0.elapsed() >= d) {
                break;
            }
            if self.server.is_none() {
                // The API samples the workers' progress itself; without
                // it, health is sampled here.
                self.health.sample();
            }
            if self.signals.hup.swap(false, Relaxed) {
                self.reload();
            }
            if last.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let secs = last.elapsed().as_secs_f64();
            last = Instant::now();
            self.node.rotate_if_due(wall_clock());
            self.counters.tick();
            self.feed_watchdog(&mut progress);
            seconds += 1;
            if seconds >= STATUS_EVERY_SECS {
                seconds = 0;
                self.notifier.status(&status_line(&self.counters.rates()));
            }
            if let Some(p) = stats {
                self.write_stats(p);
            }
            every_second(&self.node, secs);
        }
    }

    /// Whether supervision should end now: a stop signal without `[bgp]`,
    /// a second one during a drain, or the drain's end. Starts the drain
    /// at a first signal or an API request (see the module doc).
    fn stop_now(&mut self) -> bool {
        let signal = self.signals.stop.load(Relaxed);
        let Some(b) = &mut self.bgp else {
            return signal;
        };
        if let Some(ends) = b.drain_ends() {
            return signal || ends <= Instant::now();
        }
        let why = if signal {
            "SIGTERM or SIGINT"
        } else if b.shared().drain_requested() {
            "POST /api/v1/drain"
        } else {
            return false;
        };
        let ends = b.drain(why);
        // A second signal now stops at once (without the flag cleared, the
        // handler would kill the process).
        self.signals.stop.store(false, Relaxed);
        self.notifier.status(&format!(
            "draining ({why}): withdrawn, stopping in {:.0} s",
            ends.saturating_duration_since(Instant::now()).as_secs_f64()
        ));
        ends <= Instant::now()
    }

    /// Writes the `--stats` file now; a failure is counted and logged
    /// ([`ErrorLog`]), never returned.
    pub fn write_stats(&mut self, path: &Path) {
        let res = write_stats(&self.node, &self.counters, path);
        self.stats_errors.note(path, res, &self.counters);
    }

    /// `WATCHDOG=1` when every worker polled during the last second.
    fn feed_watchdog(&self, progress: &mut Progress) {
        let (_, per) = self.node.rt.snapshot(0);
        let polls: Vec<u64> = per.iter().map(|w| w.busy_polls.wrapping_add(w.idle_polls)).collect();
        let prev = progress.last().to_vec();
        if progress.check(polls.clone()) {
            self.notifier.keepalive();
        } else if self.notifier.watchdog().is_some() && !prev.is_empty() {
            let stalled = Progress::stalled(&prev, &polls);
            tracing::warn!("worker(s) {stalled:?} made no progress in the last second: watchdog not fed");
        }
    }

    /// SIGHUP: reads the config file again and applies what may change
    /// live (see [`crate::control::reload`]). Never fails: a file that
    /// cannot be read or is refused is logged and changes nothing.
    pub fn reload(&mut self) {
        let Some(path) = self.config_file.clone() else {
            tracing::info!("SIGHUP: no config file to reload (ignored)");
            return;
        };
        let file = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("SIGHUP: {e}; the running configuration is unchanged");
                return;
            }
        };
        match self.control.reload(file) {
            Ok(r) => {
                for key in &r.restart_needed {
                    tracing::warn!(
                        "SIGHUP: {key} changed in {}: needs a restart, not applied",
                        path.display()
                    );
                }
                if r.changed {
                    tracing::info!(
                        "SIGHUP: applied {} (services, rules, limits, detection thresholds, webhooks)",
                        path.display()
                    );
                    self.notifier.status("scrubbing (configuration reloaded)");
                } else {
                    tracing::info!("SIGHUP: {}: nothing to change live", path.display());
                }
            }
            Err(e) => tracing::error!(
                "SIGHUP: {}: {e}; the running configuration is unchanged",
                path.display()
            ),
        }
    }

    /// Stops the API, then detection (which closes the attacks under way
    /// and writes their reports), then the workers. A second call does
    /// nothing. Errors: a worker that panicked or could not close its
    /// outputs.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        self.notifier.stopping();
        if let Some(b) = &mut self.bgp {
            b.stop();
        }
        if let Some(s) = &mut self.server {
            s.stop();
        }
        if let Some(b) = &mut self.bus {
            b.stop();
        }
        if let Some(b) = &mut self.blacklist_thread {
            b.stop();
        }
        if let Some(e) = &mut self.engine {
            e.stop();
        }
        self.node.rt.stop().map_err(anyhow::Error::msg)
    }
}

/// How often systemd's status line (`systemctl status moat`) is updated.
const STATUS_EVERY_SECS: u64 = 10;

/// The status line: the last second's rates.
fn status_line(r: &crate::metrics::Rates) -> String {
    format!(
        "scrubbing: in {:.0} pps, passed {:.0} pps, dropped {:.0} pps, replies {:.0} pps",
        r.rx_pps, r.passed_pps, r.dropped_pps, r.replies_pps
    )
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!("stopping the node: {e:#}");
        }
    }
}
