//! What the detector asks for when a service comes under attack, and how
//! `moat run` carries it out.
//!
//! [`Countermeasures`] is the detector's only way to act: `escalate` when an
//! attack starts (and again when its proposed signatures change), `relax`
//! when it ends. [`ControlCountermeasures`] hands them to the control plane,
//! which merges them over the service's configured policy beside the REST
//! API's changes and publishes a new snapshot (picked up at the next burst),
//! so that neither overwrites the other.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The countermeasures of one service under attack: the control plane's
/// own type, so that detection and live changes merge in one place.
pub use crate::control::Escalation;

/// A countermeasure as a report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Action {
    /// Unix seconds.
    pub at: u64,
    /// `escalate` or `relax`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_auth: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub deny_tcp: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub deny_udp: Vec<String>,
}

impl Action {
    pub fn escalate(at: u64, e: &Escalation) -> Action {
        Action {
            at,
            action: "escalate".into(),
            syn_auth: e.syn_auth.map(|m| m.as_str().to_string()),
            deny_tcp: e.deny_tcp.iter().map(ToString::to_string).collect(),
            deny_udp: e.deny_udp.iter().map(ToString::to_string).collect(),
        }
    }

    pub fn relax(at: u64) -> Action {
        Action {
            at,
            action: "relax".into(),
            syn_auth: None,
            deny_tcp: Vec::new(),
            deny_udp: Vec::new(),
        }
    }
}

/// Carries out escalations (see the module docs).
pub trait Countermeasures {
    /// `service` is under attack: apply `e` (replacing any earlier
    /// escalation of the same service).
    fn escalate(&mut self, service: &str, e: &Escalation);
    /// `service`'s attack ended: undo its escalation.
    fn relax(&mut self, service: &str);
}

/// Carries escalations out through the control plane (`moat run`): it merges
/// them over the service's configured policy, beside the REST API's changes,
/// without persisting them, and publishes the snapshot.
#[derive(Debug)]
pub struct ControlCountermeasures(pub Arc<crate::control::Control>);

impl Countermeasures for ControlCountermeasures {
    fn escalate(&mut self, service: &str, e: &Escalation) {
        if let Err(err) = self.0.set_escalation(service, Some(e.clone())) {
            eprintln!("moat: escalating {service}: {err}");
        }
    }

    fn relax(&mut self, service: &str) {
        if let Err(err) = self.0.set_escalation(service, None) {
            eprintln!("moat: relaxing {service}: {err}");
        }
    }
}
