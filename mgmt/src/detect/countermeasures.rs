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

/// The countermeasures of one service under attack: the control plane's
/// own type, so that detection and live changes merge in one place.
pub use crate::control::Escalation;
/// A countermeasure as a report lists it (the reports' type).
pub use crate::report::Action;

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
            tracing::error!("escalating {service}: {err}");
        }
    }

    fn relax(&mut self, service: &str) {
        if let Err(err) = self.0.set_escalation(service, None) {
            tracing::error!("relaxing {service}: {err}");
        }
    }
}
