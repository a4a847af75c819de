//! Detection's resources: attacks (the stored reports, newest first, with
//! the ones under way marked) and signatures (proposed by attacks under way,
//! and the escalations in force). Read from the detection thread's
//! published view and the report files; nothing here touches a worker.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use super::Shared;
use crate::detect::engine::{ActiveAttack, ProposedSignatures, SharedView};
use crate::report::store::{ReportStore, ReportSummary};
use crate::report::AttackReport;

/// What the API reads of detection.
#[derive(Debug, Clone)]
pub struct DetectApi {
    pub view: SharedView,
    pub reports: ReportStore,
}

/// The attacks of the node.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attacks {
    /// Attacks under way.
    pub active: Vec<ActiveAttack>,
    /// Stored reports (ongoing and ended), within the retention limits.
    pub reports: Vec<ReportSummary>,
}

/// An escalation in force on a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveSignatures {
    pub service: String,
    /// SYN authentication mode forced on the service, if any.
    pub syn_auth: Option<String>,
    /// Fingerprint deny rules in force (node-wide) because of its attack.
    pub deny_tcp: Vec<String>,
    pub deny_udp: Vec<String>,
}

/// Signatures proposed by attacks under way, and the escalations in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Signatures {
    pub proposed: Vec<ProposedSignatures>,
    pub active: Vec<ActiveSignatures>,
    /// The node's own fingerprint deny rules (`/api/v1/rules`'s
    /// `fingerprints`), in force on every service: where an operator's
    /// activated signature goes (the dashboard's Activate button puts a
    /// proposed rule there; Remove takes it out).
    pub rules: super::types::Fingerprints,
}

fn detection(st: &Shared) -> Result<&DetectApi, Problem> {
    st.detect
        .as_ref()
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "detection is off ([detection] enabled = false)"))
}

fn internal(e: anyhow::Error) -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

#[utoipa::path(get, path = "/api/v1/attacks", tag = "attacks",
    responses((status = 200, description = "Attacks under way and the stored reports.", body = Attacks),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Detection is off.", body = Problem, content_type = "application/problem+json")))]
pub async fn list_attacks(State(st): State<Shared>) -> Result<Json<Attacks>, Problem> {
    let d = detection(&st)?;
    let active = d.view.lock().map(|v| v.active.clone()).unwrap_or_default();
    let mut reports = d.reports.list().map_err(internal)?;
    reports.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.attack_uuid.cmp(&b.attack_uuid)));
    Ok(Json(Attacks { active, reports }))
}

#[utoipa::path(get, path = "/api/v1/attacks/{attack_uuid}", tag = "attacks",
    params(("attack_uuid" = String, Path, description = "The attack's uuid")),
    responses((status = 200, description = "The attack's report.", body = AttackReport),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such attack (or detection is off).", body = Problem, content_type = "application/problem+json")))]
pub async fn get_attack(State(st): State<Shared>, Path(id): Path<String>) -> Result<Json<AttackReport>, Problem> {
    let d = detection(&st)?;
    d.reports
        .get(&id)
        .map_err(internal)?
        .map(Json)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no attack \"{id}\"")))
}

#[utoipa::path(get, path = "/api/v1/signatures", tag = "attacks",
    responses((status = 200, description = "Signatures proposed by attacks under way, and escalations in force.", body = Signatures),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn signatures(State(st): State<Shared>) -> Json<Signatures> {
    let proposed = st
        .detect
        .as_ref()
        .and_then(|d| d.view.lock().ok().map(|v| v.proposed.clone()))
        .unwrap_or_default();
    let active = st
        .control
        .escalations()
        .into_iter()
        .map(|(service, e)| ActiveSignatures {
            service,
            syn_auth: e.syn_auth.map(|m| m.as_str().to_string()),
            deny_tcp: e.deny_tcp.iter().map(ToString::to_string).collect(),
            deny_udp: e.deny_udp.iter().map(ToString::to_string).collect(),
        })
        .collect();
    let rules = super::types::Rules::of(&st.control.rules()).fingerprints;
    Json(Signatures {
        proposed,
        active,
        rules,
    })
}

/// Detection's families of `/metrics`: attacks under way, samples, reports
/// and webhooks (all zero when detection is off).
pub fn metrics(st: &Shared, t: &dataplane::runtime::Snapshot, e: &mut crate::metrics::Exposition) {
    let (active, c) = st
        .detect
        .as_ref()
        .and_then(|d| d.view.lock().ok().map(|v| (v.active.len(), v.counters)))
        .unwrap_or_default();
    e.gauge("moat_attacks_active", "Attacks under way (detection).", active as u64);
    e.counter(
        "moat_attacks_total",
        "Attacks declared since start-up.",
        c.attacks_started,
    );
    e.counter(
        "moat_samples_total",
        "Packet summaries the workers sampled for detection and reports.",
        t.samples,
    );
    e.counters(
        "moat_samples_dropped_total",
        "Samples dropped: a worker's queue was full, or the detector's buffer for the second.",
        "stage",
        [("worker", t.samples_dropped), ("detector", c.samples_dropped)],
    );
    e.counters(
        "moat_attack_reports_total",
        "Attack report writes under the state dir, by result.",
        "result",
        [("written", c.reports_written), ("error", c.report_errors)],
    );
    e.counters(
        "moat_webhook_alerts_total",
        "Webhook alerts by outcome: delivered, given up after the last retry, dropped on a full queue.",
        "result",
        [
            ("sent", c.alerts_sent),
            ("given_up", c.alerts_given_up),
            ("dropped", c.alerts_dropped),
        ],
    );
    e.counter(
        "moat_webhook_failed_attempts_total",
        "Webhook delivery attempts that failed (each retry counts).",
        c.alert_failed_attempts,
    );
}
