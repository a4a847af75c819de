//! Attack detection: every second, per service, the traffic figures (pps,
//! bps, SYN/s, new flows/s, by protocol, drops) from the deltas of the
//! workers' per-service counters, judged against fixed thresholds
//! (`[detection]`, `[services.detection]`) and a learned baseline; attack
//! start and end with hysteresis; escalation while an attack lasts; a
//! report per attack.
//!
//! Contract: [`Detector`] is pure logic — no clock, no I/O: the caller
//! gives it the time, the counters and the samples of each second, and a
//! [`Countermeasures`] to act through, and gets [`Event`]s back (reports to
//! write, alerts to send; see [`engine`] for the caller `moat run` uses).
//!
//! - A second is abnormal when a figure is above its threshold, or, once
//!   the baseline has learned `baseline_warmup_secs` quiet seconds, when a
//!   packet rate is above `baseline_multiplier` times its baseline and
//!   above `baseline_floor_pps`.
//! - An attack starts after `start_after_secs` abnormal seconds in a row
//!   (its start is the first of them) and ends after `end_after_secs`
//!   normal seconds in a row (its end is the last abnormal second).
//! - The baseline (an exponentially weighted mean, weight
//!   `1 / baseline_window_secs`) learns only from normal seconds outside
//!   attacks, so that an attack never teaches it that attacks are normal.
//! - Types and proposed signatures come from the attack's own packets, never
//!   from legitimate clients': a challenged SYN that a verified client
//!   answered is not evidence (see [`crate::report::attack_only`]).
//! - When the node stops, [`Detector::interrupt`] closes the attacks under
//!   way (`interrupted`): their reports are final and `attack_end` is sent.

pub mod countermeasures;
pub mod engine;
pub mod figures;
pub mod types;

use classifier::fingerprint::{TcpRule, UdpRule};
use classifier::policy::SynAuth;
use dataplane::pipeline::ServiceCounters;
use dataplane::runtime::{Sample, SampleFp};
use serde_json::{json, Value};

use crate::config::{DetectionConfig, OnAttackConfig, Thresholds};
use crate::report::{AttackReport, ReportBuilder};
pub use countermeasures::{Countermeasures, Escalation};
use figures::{Figures, Metric};
use types::Kind;

/// A proposed signature needs this share of the attack's unpassed samples...
const SIGNATURE_SHARE: f64 = 0.1;
/// ...and at least this many samples.
const SIGNATURE_MIN_SAMPLES: u64 = 8;

/// What the caller must do after a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An attack started: write its report, send `attack_start`.
    AttackStart(AttackReport, Figures),
    /// An attack goes on: rewrite its report.
    AttackUpdate(AttackReport),
    /// An attack ended (`ended`), or the node stopped during it
    /// (`interrupted`): write its final report, send `attack_end`.
    AttackEnd(AttackReport),
    /// A figure went above its fixed threshold (attack or not).
    Threshold {
        service: String,
        metric: Metric,
        value: f64,
        threshold: u64,
        at: u64,
    },
}

impl Event {
    /// The alert's JSON body (FastNetMon's field names where they fit).
    pub fn alert_body(&self, node: &str) -> Value {
        let attack = |r: &AttackReport| {
            json!({
                "node": node,
                "attack_uuid": r.attack_uuid,
                "service": r.service,
                "state": r.state,
                "attack_severity": r.attack_severity,
                "types": r.types,
                "triggers": r.triggers,
                "start": r.start,
                "end": r.end,
                "duration_secs": r.duration_secs,
                "peak_pps": r.peak_pps,
                "peak_bps": r.peak_bps,
                "total_packets": r.total_packets,
            })
        };
        match self {
            Event::AttackStart(r, f) => {
                let mut v = attack(r);
                v["figures"] = json!(f);
                v
            }
            Event::AttackUpdate(r) | Event::AttackEnd(r) => attack(r),
            Event::Threshold {
                service,
                metric,
                value,
                threshold,
                at,
            } => json!({
                "node": node,
                "service": service,
                "metric": metric.as_str(),
                "value": value,
                "threshold": threshold,
                "at": at,
            }),
        }
    }
}

/// Exponentially weighted mean of each baseline metric over quiet seconds.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    mean: [f64; Metric::BASELINE.len()],
    seconds: u64,
}

impl Baseline {
    fn learn(&mut self, f: &Figures, window: u32) {
        let w = 1.0 / f64::from(window.max(1));
        for (m, metric) in self.mean.iter_mut().zip(Metric::BASELINE) {
            let x = metric.of(f);
            *m = if self.seconds == 0 { x } else { *m + (x - *m) * w };
        }
        self.seconds += 1;
    }

    /// The learned mean of `m` (a baseline metric).
    pub fn mean(&self, m: Metric) -> Option<f64> {
        Metric::BASELINE.iter().position(|x| *x == m).map(|i| self.mean[i])
    }

    pub fn seconds(&self) -> u64 {
        self.seconds
    }
}

/// One service's detection state.
#[derive(Debug)]
struct Svc {
    name: String,
    /// SYN authentication configured: a SYN that passes was verified.
    syn_auth: bool,
    thresholds: Thresholds,
    on_attack: OnAttackConfig,
    baseline: Baseline,
    prev: ServiceCounters,
    /// The last second's figures.
    last: Figures,
    abnormal_run: u32,
    normal_run: u32,
    /// Fixed thresholds currently exceeded (upward crossings alert once).
    over: [bool; Metric::ALL.len()],
    /// The attack under way or being confirmed (abnormal seconds not yet
    /// `start_after_secs` long).
    attack: Option<Attack>,
}

#[derive(Debug)]
struct Attack {
    confirmed: bool,
    builder: ReportBuilder,
    kinds: [u64; Kind::COUNT],
    last_abnormal: u64,
    /// The peak of value / limit over what fired.
    peak_ratio: f64,
    /// The escalation in force, if any.
    escalated: Option<Escalation>,
    last_report: u64,
    /// The mean figures of its abnormal seconds (the protocol mix its types
    /// are inferred from), and how many.
    mean: Figures,
    abnormal_secs: u64,
    /// Metrics that fired at some second.
    fired: Vec<Metric>,
    /// SYN authentication was in force during an abnormal second: its new
    /// flows came from verified sources.
    proven_flows: bool,
}

impl Attack {
    /// SYN authentication is in force: configured, or by this attack's
    /// escalation.
    fn syn_auth(&self, configured: bool) -> bool {
        configured
            || self
                .escalated
                .as_ref()
                .and_then(|e| e.syn_auth)
                .is_some_and(|m| m != SynAuth::Off)
    }

    fn second(&mut self, now: u64, f: &Figures, abnormal: bool) {
        self.builder.second(now, f);
        if abnormal {
            self.mean = self.mean.merge(f, self.abnormal_secs as f64);
            self.abnormal_secs += 1;
        }
    }

    fn new(service: &str, now: u64, sample_every: u32, top_k: usize) -> Attack {
        Attack {
            confirmed: false,
            builder: ReportBuilder::new(uuid::Uuid::new_v4().to_string(), service, now, sample_every, top_k),
            kinds: [0; Kind::COUNT],
            last_abnormal: now,
            peak_ratio: 0.0,
            escalated: None,
            last_report: now,
            mean: Figures::default(),
            abnormal_secs: 0,
            fired: Vec::new(),
            proven_flows: false,
        }
    }
}

impl Svc {
    fn new(p: ServicePolicy) -> Svc {
        Svc {
            name: p.name,
            syn_auth: p.syn_auth,
            thresholds: p.thresholds,
            on_attack: p.on_attack,
            baseline: Baseline::default(),
            prev: ServiceCounters::default(),
            last: Figures::default(),
            abnormal_run: 0,
            normal_run: 0,
            over: [false; Metric::ALL.len()],
            attack: None,
        }
    }
}

/// Per-second judgement of every service (see the module contract).
#[derive(Debug)]
pub struct Detector {
    cfg: DetectionConfig,
    sample_every: u32,
    services: Vec<Svc>,
    started: bool,
}

/// A service as the detector sees it: its name, thresholds (resolved over
/// `[detection]`'s) and escalation policy.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    pub name: String,
    /// SYN authentication configured (not `off`).
    pub syn_auth: bool,
    pub thresholds: Thresholds,
    pub on_attack: OnAttackConfig,
}

/// Why a second is abnormal.
#[derive(Debug, Clone, PartialEq)]
struct Trigger {
    metric: Metric,
    value: f64,
    limit: f64,
    baseline: bool,
}

impl Trigger {
    fn text(&self) -> String {
        if self.baseline {
            format!(
                "{} {:.0} > baseline limit {:.0}",
                self.metric.as_str(),
                self.value,
                self.limit
            )
        } else {
            format!(
                "{} {:.0} > threshold {:.0}",
                self.metric.as_str(),
                self.value,
                self.limit
            )
        }
    }
}

impl Detector {
    /// `services` in the policy's service order (index = service id).
    pub fn new(cfg: DetectionConfig, sample_every: u32, services: Vec<ServicePolicy>) -> Self {
        let services = services.into_iter().map(Svc::new).collect();
        Detector {
            cfg,
            sample_every,
            services,
            started: false,
        }
    }

    /// Follows a change of the services (the REST API's): a service keeps
    /// its baseline and attack by name, a new one starts fresh, a removed one
    /// is forgotten (its attack with it: the control plane dropped its
    /// escalation with the service). When the order changed, the counters'
    /// indices moved, so the next tick only re-reads them.
    pub fn set_services(&mut self, services: Vec<ServicePolicy>) {
        let moved =
            services.len() != self.services.len() || services.iter().zip(&self.services).any(|(p, s)| p.name != s.name);
        let mut old = std::mem::take(&mut self.services);
        self.services = services
            .into_iter()
            .map(|p| match old.iter().position(|s| s.name == p.name) {
                Some(i) => {
                    let mut s = old.swap_remove(i);
                    s.thresholds = p.thresholds;
                    s.on_attack = p.on_attack;
                    s.syn_auth = p.syn_auth;
                    s
                }
                None => Svc::new(p),
            })
            .collect();
        if moved {
            self.started = false;
        }
    }

    /// The signatures each attack under way proposes now (exact fingerprint
    /// deny rules of its heavy hitters among unpassed samples): (service,
    /// attack uuid, rules).
    pub fn proposed(&self) -> Vec<(String, String, Vec<String>)> {
        self.services
            .iter()
            .filter_map(|s| {
                let a = s.attack.as_ref().filter(|a| a.confirmed)?;
                let rules = a
                    .builder
                    .proposed(SIGNATURE_MIN_SAMPLES, SIGNATURE_SHARE)
                    .into_iter()
                    .filter_map(|fp| match fp {
                        SampleFp::Tcp(t) => Some(TcpRule::exact(&t).to_string()),
                        SampleFp::Udp(u) => Some(UdpRule::exact(&u).to_string()),
                        SampleFp::None => None,
                    })
                    .collect();
                Some((s.name.clone(), a.builder.report.attack_uuid.clone(), rules))
            })
            .collect()
    }

    /// Each service's figures over the last second judged.
    pub fn figures(&self) -> Vec<(String, Figures)> {
        self.services.iter().map(|s| (s.name.clone(), s.last)).collect()
    }

    /// The services' policies of a config, in its service order.
    pub fn policies(cfg: &crate::config::Config) -> Vec<ServicePolicy> {
        let d = cfg.detection.thresholds();
        cfg.services
            .iter()
            .map(|s| ServicePolicy {
                name: s.name.clone(),
                syn_auth: s.syn_auth != SynAuth::Off,
                thresholds: s.detection.or(&d),
                on_attack: s.on_attack.clone(),
            })
            .collect()
    }

    /// The baseline learned for service `i`.
    pub fn baseline(&self, i: usize) -> Option<&Baseline> {
        self.services.get(i).map(|s| &s.baseline)
    }

    /// Attacks under way (confirmed): (service, attack uuid).
    pub fn active(&self) -> Vec<(String, String)> {
        self.services
            .iter()
            .filter_map(|s| {
                let a = s.attack.as_ref().filter(|a| a.confirmed)?;
                Some((s.name.clone(), a.builder.report.attack_uuid.clone()))
            })
            .collect()
    }

    /// The reports of the attacks under way as they stand.
    pub fn ongoing(&mut self) -> Vec<AttackReport> {
        self.services
            .iter_mut()
            .filter_map(|s| s.attack.as_mut().filter(|a| a.confirmed))
            .map(|a| a.builder.snapshot())
            .collect()
    }

    /// The node stops at `now` (Unix seconds): every attack under way ends
    /// `interrupted` at `now` (its escalation relaxed), and is forgotten,
    /// as are attacks not yet confirmed. One [`Event::AttackEnd`] each.
    pub fn interrupt(&mut self, now: u64, cm: &mut dyn Countermeasures) -> Vec<Event> {
        let mut ev = Vec::new();
        for s in &mut self.services {
            // Whatever follows (another run of the detector) starts afresh.
            (s.abnormal_run, s.normal_run) = (0, 0);
            let Some(mut a) = s.attack.take().filter(|a| a.confirmed) else {
                continue;
            };
            if a.escalated.take().is_some() {
                cm.relax(&s.name);
                a.builder
                    .report
                    .countermeasures
                    .push(countermeasures::Action::relax(now));
            }
            a.builder.finish(now.max(a.builder.report.start));
            a.builder.report.state = "interrupted".into();
            update(&mut a);
            ev.push(Event::AttackEnd(a.builder.snapshot()));
        }
        ev
    }

    /// One second (`now`, Unix seconds): `counters` are the per-service
    /// totals (index = service id) read `secs` after the previous ones;
    /// `samples` those drained since. The first call only sets the origin
    /// of the deltas.
    pub fn tick(
        &mut self,
        now: u64,
        secs: f64,
        counters: &[ServiceCounters],
        samples: &[Sample],
        cm: &mut dyn Countermeasures,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.started {
            for (s, c) in self.services.iter_mut().zip(counters) {
                s.prev = *c;
            }
            self.started = true;
            return events;
        }
        if !self.cfg.enabled {
            return events;
        }
        let figures: Vec<Figures> = (0..self.services.len())
            .map(|i| {
                let c = counters.get(i).copied().unwrap_or_default();
                let f = Figures::between(&c, &self.services[i].prev, secs);
                self.services[i].prev = c;
                self.services[i].last = f;
                f
            })
            .collect();
        // An abnormal second opens an attack (to be confirmed) before the
        // samples are counted, so that its own samples count.
        for (i, f) in figures.iter().enumerate() {
            if self.services[i].attack.is_none() && !self.judge(&self.services[i], f).is_empty() {
                let a = Attack::new(&self.services[i].name, now, self.sample_every, self.cfg.top_k as usize);
                self.services[i].attack = Some(a);
            }
        }
        for s in samples {
            let Some(svc) = s.service.and_then(|i| self.services.get_mut(usize::from(i))) else {
                continue;
            };
            if let Some(a) = svc.attack.as_mut() {
                let syn_auth = a.syn_auth(svc.syn_auth);
                a.builder.sample(s, syn_auth);
                if let Some(k) = types::kind_of(s) {
                    a.kinds[k as usize] += 1;
                }
                if types::is_cc(s, syn_auth) {
                    a.kinds[Kind::CcFlood as usize] += 1;
                }
            }
        }
        for (i, f) in figures.iter().enumerate() {
            self.second(i, now, f, cm, &mut events);
        }
        events
    }

    /// What fires for service `s` with figures `f`.
    fn judge(&self, s: &Svc, f: &Figures) -> Vec<Trigger> {
        let mut t: Vec<Trigger> = Metric::ALL
            .iter()
            .filter_map(|m| {
                let limit = m.limit(&s.thresholds)? as f64;
                let value = m.of(f);
                (value > limit).then_some(Trigger {
                    metric: *m,
                    value,
                    limit,
                    baseline: false,
                })
            })
            .collect();
        let c = &self.cfg;
        if c.baseline_multiplier > 0 && s.baseline.seconds >= u64::from(c.baseline_warmup_secs) {
            for m in Metric::BASELINE {
                let mean = s.baseline.mean(m).unwrap_or(0.0);
                let limit = (mean * f64::from(c.baseline_multiplier)).max(c.baseline_floor_pps as f64);
                let value = m.of(f);
                if value > limit && !t.iter().any(|x| x.metric == m) {
                    t.push(Trigger {
                        metric: m,
                        value,
                        limit,
                        baseline: true,
                    });
                }
            }
        }
        t
    }

    fn second(&mut self, i: usize, now: u64, f: &Figures, cm: &mut dyn Countermeasures, ev: &mut Vec<Event>) {
        let triggers = self.judge(&self.services[i], f);
        let (start_after, end_after, every) = (
            self.cfg.start_after_secs,
            self.cfg.end_after_secs,
            u64::from(self.cfg.report_every_secs.max(1)),
        );
        let window = self.cfg.baseline_window_secs;
        let (sample_every, top_k) = (self.sample_every, self.cfg.top_k as usize);
        let s = &mut self.services[i];
        // Threshold crossings (upward), each once until it falls back.
        for m in Metric::ALL {
            let Some(limit) = m.limit(&s.thresholds) else { continue };
            let over = m.of(f) > limit as f64;
            if over && !s.over[m.index()] {
                ev.push(Event::Threshold {
                    service: s.name.clone(),
                    metric: m,
                    value: m.of(f),
                    threshold: limit,
                    at: now,
                });
            }
            s.over[m.index()] = over;
        }
        if triggers.is_empty() {
            s.abnormal_run = 0;
            s.normal_run = s.normal_run.saturating_add(1);
        } else {
            s.normal_run = 0;
            s.abnormal_run = s.abnormal_run.saturating_add(1);
        }
        let abnormal = !triggers.is_empty();
        if abnormal && s.attack.is_none() {
            s.attack = Some(Attack::new(&s.name, now, sample_every, top_k));
        }
        let Some(a) = s.attack.as_mut() else {
            s.baseline.learn(f, window);
            return;
        };
        if abnormal {
            a.last_abnormal = now;
            let ratio = triggers.iter().map(|t| t.value / t.limit.max(1.0)).fold(0.0, f64::max);
            a.peak_ratio = a.peak_ratio.max(ratio);
            for t in &triggers {
                if !a.fired.contains(&t.metric) {
                    a.fired.push(t.metric);
                }
            }
            a.proven_flows |= a.syn_auth(s.syn_auth);
        }
        if !a.confirmed {
            if !abnormal {
                // A blip shorter than start_after_secs: forgotten, and the
                // seconds it lasted were not learned.
                s.attack = None;
                s.baseline.learn(f, window);
                return;
            }
            a.second(now, f, abnormal);
            if s.abnormal_run >= start_after {
                a.confirmed = true;
                a.builder.report.triggers = triggers.iter().map(Trigger::text).collect();
                update(a);
                escalate(&s.name, &s.on_attack, a, now, cm);
                a.last_report = now;
                ev.push(Event::AttackStart(a.builder.snapshot(), *f));
            }
            return;
        }
        if s.normal_run >= end_after {
            let end = a.last_abnormal;
            if a.escalated.take().is_some() {
                cm.relax(&s.name);
                a.builder
                    .report
                    .countermeasures
                    .push(countermeasures::Action::relax(now));
            }
            a.builder.finish(end);
            update(a);
            ev.push(Event::AttackEnd(a.builder.snapshot()));
            s.attack = None;
            return;
        }
        a.second(now, f, abnormal);
        update(a);
        if now.saturating_sub(a.last_report) >= every {
            a.last_report = now;
            // New signatures only while the attack is seen, not in the
            // quiet seconds before its end.
            if abnormal {
                escalate(&s.name, &s.on_attack, a, now, cm);
            }
            ev.push(Event::AttackUpdate(a.builder.snapshot()));
        }
    }
}

/// Types and severity from what the attack has seen so far.
fn update(a: &mut Attack) {
    let mut kinds = a.kinds;
    let syn = &mut kinds[Kind::SynFlood as usize];
    *syn = syn.saturating_sub(a.builder.answered_syns());
    a.builder.report.types = types::infer(&kinds, a.builder.report.samples, &a.fired, &a.mean, a.proven_flows)
        .into_iter()
        .map(String::from)
        .collect();
    a.builder.report.attack_severity = match a.peak_ratio {
        r if r < 2.0 => "low",
        r if r < 10.0 => "middle",
        _ => "high",
    }
    .into();
}

/// Applies the service's escalation policy when it calls for something new
/// (at the start, and when the proposed signatures change).
fn escalate(service: &str, on: &OnAttackConfig, a: &mut Attack, now: u64, cm: &mut dyn Countermeasures) {
    let mut e = Escalation {
        syn_auth: on.syn_auth_mode(),
        blacklist: on.blacklist,
        ..Escalation::default()
    };
    if on.activate_signatures {
        for fp in a.builder.proposed(SIGNATURE_MIN_SAMPLES, SIGNATURE_SHARE) {
            match fp {
                SampleFp::Tcp(t) => e.deny_tcp.push(TcpRule::exact(&t)),
                SampleFp::Udp(u) => e.deny_udp.push(UdpRule::exact(&u)),
                SampleFp::None => {}
            }
        }
    }
    // A set, not a ranking: the same rules in another order are no change.
    e.deny_tcp.sort_by_cached_key(ToString::to_string);
    e.deny_udp.sort_by_cached_key(ToString::to_string);
    if e.is_empty() || a.escalated.as_ref() == Some(&e) {
        return;
    }
    cm.escalate(service, &e);
    a.builder
        .report
        .countermeasures
        .push(countermeasures::Action::escalate(now, &e));
    a.escalated = Some(e);
}

#[cfg(test)]
mod tests;
