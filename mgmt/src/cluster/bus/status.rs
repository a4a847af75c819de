//! What the bus shows: `GET /api/v1/cluster`'s `bus` object, the
//! `cluster/bus` health check and the `moat_cluster_*` metric families.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::PoisonError;

use serde::Serialize;
use utoipa::ToSchema;

use super::BusState;
use crate::metrics::Exposition;

impl BusState {
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
            catchup: CatchupCounts {
                requests_out: s.catchup_requests_out.load(Relaxed),
                requests_in: s.catchup_requests_in.load(Relaxed),
                sent: s.catchup_sent.load(Relaxed),
                mirror: self.mirror().len() as u64,
                mirror_full: s.mirror_full.load(Relaxed),
            },
            bans_out: s.bans_out.load(Relaxed),
            bans_in: s.bans_in.load(Relaxed),
            bans_dropped: s.bans_dropped.load(Relaxed),
            config_revision: s.config_revision.load(Relaxed),
            config: ConfigCounts {
                applied: s.config_applied.load(Relaxed),
                refused: s.config_refused.load(Relaxed),
                conflicts: s.config_conflicts.load(Relaxed),
                pushed: s.config_pushed.load(Relaxed),
                pending: self.pending.len() as u64,
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
        e.counters(
            "moat_cluster_bans_total",
            "Blacklist bans and lifts: sent by this node (out), from other nodes (in), not sent (dropped: bus down).",
            "direction",
            [("out", st.bans_out), ("in", st.bans_in), ("dropped", st.bans_dropped)],
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
        e.counters(
            "moat_cluster_catchup_requests_total",
            "Catch-up requests (a node joining asks for the verified sources known): sent by this node (out), \
from other nodes (in).",
            "direction",
            [("out", st.catchup.requests_out), ("in", st.catchup.requests_in)],
        );
        e.counter(
            "moat_cluster_catchup_sent_total",
            "Verified sources this node sent again for catch-up (asked by a joining node, or on joining).",
            st.catchup.sent,
        );
        e.gauge(
            "moat_cluster_verified_known",
            "Verified sources this node remembers for catch-up (published or taken in, not expired).",
            st.catchup.mirror,
        );
        e.counter(
            "moat_cluster_verified_known_full_total",
            "Verified sources not remembered for catch-up because the mirror was full.",
            st.catchup.mirror_full,
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
    /// Catch-up of joining nodes.
    pub catchup: CatchupCounts,
    /// Bans and lifts of the blacklist sent, taken in, and not sent (the
    /// bus was down).
    pub bans_out: u64,
    pub bans_in: u64,
    pub bans_dropped: u64,
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

/// The catch-up of joining nodes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatchupCounts {
    /// Requests this node sent (one per connection).
    pub requests_out: u64,
    /// Requests from other nodes.
    pub requests_in: u64,
    /// Sources sent again (for other nodes' requests, and on joining).
    pub sent: u64,
    /// Sources remembered now (published or taken in; some may have
    /// expired since the last prune).
    pub mirror: u64,
    /// Sources not remembered: the mirror was full.
    pub mirror_full: u64,
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
