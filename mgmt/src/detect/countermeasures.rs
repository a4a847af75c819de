//! What the detector asks for when a service comes under attack, and one way
//! of carrying it out.
//!
//! [`Countermeasures`] is the detector's only way to act: `escalate` when an
//! attack starts (and again when its proposed signatures change), `relax`
//! when it ends. [`SnapshotCountermeasures`] carries them out on the
//! workers' policy snapshot directly (a new snapshot, swapped atomically,
//! picked up at the next burst); a control plane that owns live policy
//! changes implements the trait itself so that its own changes and these
//! never overwrite each other.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use classifier::fingerprint::{TcpRule, UdpRule};
use classifier::policy::{Policy, SynAuth};
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

/// Countermeasures that do nothing (detection and reports only).
#[derive(Debug, Default)]
pub struct NoCountermeasures;

impl Countermeasures for NoCountermeasures {
    fn escalate(&mut self, _: &str, _: &Escalation) {}
    fn relax(&mut self, _: &str) {}
}

/// What one service's escalation changed, to undo it.
#[derive(Debug, Clone)]
struct Applied {
    /// The mode before the escalation, when it changed it.
    syn_auth_before: Option<SynAuth>,
    deny_tcp: Vec<TcpRule>,
    deny_udp: Vec<UdpRule>,
}

/// Countermeasures applied to the workers' policy snapshot: each call builds
/// a new snapshot from the current one and swaps it in.
#[derive(Debug)]
pub struct SnapshotCountermeasures {
    policy: Arc<ArcSwap<Policy>>,
    applied: HashMap<String, Applied>,
}

impl SnapshotCountermeasures {
    pub fn new(policy: Arc<ArcSwap<Policy>>) -> Self {
        SnapshotCountermeasures {
            policy,
            applied: HashMap::new(),
        }
    }

    /// Applies `e` to `p`; what it changed.
    fn apply(p: &mut Policy, service: &str, e: &Escalation) -> Applied {
        let mut a = Applied {
            syn_auth_before: None,
            deny_tcp: Vec::new(),
            deny_udp: Vec::new(),
        };
        if let (Some(m), Some(s)) = (e.syn_auth, p.services.iter_mut().find(|s| s.name == service)) {
            if s.syn_auth != m {
                a.syn_auth_before = Some(s.syn_auth);
                s.syn_auth = m;
            }
        }
        // Only rules not already there (a static rule stays when relaxed).
        for r in &e.deny_tcp {
            if !p.tcp_deny.contains(r) {
                p.tcp_deny.push(*r);
                a.deny_tcp.push(*r);
            }
        }
        for r in &e.deny_udp {
            if !p.udp_deny.contains(r) {
                p.udp_deny.push(*r);
                a.deny_udp.push(*r);
            }
        }
        a
    }

    fn undo(p: &mut Policy, service: &str, a: &Applied) {
        if let (Some(m), Some(s)) = (a.syn_auth_before, p.services.iter_mut().find(|s| s.name == service)) {
            s.syn_auth = m;
        }
        p.tcp_deny.retain(|r| !a.deny_tcp.contains(r));
        p.udp_deny.retain(|r| !a.deny_udp.contains(r));
    }
}

impl Countermeasures for SnapshotCountermeasures {
    fn escalate(&mut self, service: &str, e: &Escalation) {
        let before = self.applied.remove(service);
        let mut applied = None;
        // Read-copy-update: a snapshot swapped in meanwhile by another
        // writer (key rotation) is not overwritten; the closure reruns on it.
        self.policy.rcu(|cur| {
            let mut p = Policy::clone(cur);
            if let Some(a) = &before {
                Self::undo(&mut p, service, a);
            }
            applied = Some(Self::apply(&mut p, service, e));
            p
        });
        if let Some(a) = applied {
            self.applied.insert(service.to_string(), a);
        }
    }

    fn relax(&mut self, service: &str) {
        let Some(a) = self.applied.remove(service) else { return };
        self.policy.rcu(|cur| {
            let mut p = Policy::clone(cur);
            Self::undo(&mut p, service, &a);
            p
        });
    }
}

#[cfg(test)]
mod tests {
    use core::net::IpAddr;

    use classifier::cookie::CookieSecrets;
    use classifier::policy::{Origin, Service};

    use super::*;

    fn policy() -> Policy {
        let mut p = Policy::new(CookieSecrets::new([1; 16]));
        let o = p.add_origin(Origin {
            name: "o".into(),
            tunnel_src: [192, 168, 0, 1].into(),
            tunnel_dst: [192, 168, 0, 2].into(),
            key: None,
            mtu: 1476,
        });
        let mut s = Service::new("web", IpAddr::from([203, 0, 113, 10]), o);
        s.syn_auth = SynAuth::Off;
        p.add_service(s).expect("service");
        let static_rule: TcpRule = "4:64:0:-:512,-::".parse().expect("rule");
        p.tcp_deny.push(static_rule);
        p
    }

    #[test]
    fn escalate_then_relax_restores_the_snapshot() {
        let sw = Arc::new(ArcSwap::from_pointee(policy()));
        let mut c = SnapshotCountermeasures::new(Arc::clone(&sw));
        let static_rule = sw.load().tcp_deny[0];
        let other: TcpRule = "4:64:0:1460:mss*20,7:mss,sok,ts,nop,ws:df".parse().expect("rule");
        let udp: UdpRule = "udp:4:468:53:*".parse().expect("rule");
        let e = Escalation {
            syn_auth: Some(SynAuth::ChallengeAck),
            deny_tcp: vec![static_rule, other],
            deny_udp: vec![udp],
        };
        c.escalate("web", &e);
        let p = sw.load();
        assert_eq!(p.services[0].syn_auth, SynAuth::ChallengeAck);
        assert_eq!(p.tcp_deny, vec![static_rule, other]);
        assert_eq!(p.udp_deny, vec![udp]);
        // A second escalation replaces the first.
        c.escalate(
            "web",
            &Escalation {
                syn_auth: Some(SynAuth::CookieReset),
                ..Escalation::default()
            },
        );
        let p = sw.load();
        assert_eq!(p.services[0].syn_auth, SynAuth::CookieReset);
        assert_eq!(p.tcp_deny, vec![static_rule]);
        assert!(p.udp_deny.is_empty());
        c.relax("web");
        let p = sw.load();
        assert_eq!(p.services[0].syn_auth, SynAuth::Off, "mode restored");
        assert_eq!(p.tcp_deny, vec![static_rule], "the static rule stays");
        // Relaxing twice, or an unknown service, changes nothing.
        c.relax("web");
        c.escalate("nope", &e);
        assert_eq!(sw.load().services[0].syn_auth, SynAuth::Off);
    }
}
