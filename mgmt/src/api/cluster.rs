//! The node's place in the cluster: `GET /api/v1/cluster` (its BGP
//! announcement and its cluster bus) and
//! `POST /api/v1/drain` (withdraw, keep scrubbing `[bgp] drain_secs`,
//! stop: what `moat drain` calls). Read from the announcer's published
//! status; nothing here touches a worker or BIRD.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use super::Shared;
use crate::cluster::bgp::{BgpShared, BgpStatus};
use crate::cluster::bus::{BusState, BusStatus};
use crate::metrics::Exposition;

/// What the API reads of the cluster side.
#[derive(Debug, Clone, Default)]
pub struct ClusterApi {
    /// The announcer's status (`None`: no `[bgp]` section).
    pub bgp: Option<Arc<BgpShared>>,
    /// The bus (`None`: a lone node, `[cluster] nats` empty).
    pub bus: Option<Arc<BusState>>,
}

impl ClusterApi {
    /// The announcement now (`disabled` without `[bgp]`).
    pub fn bgp_status(&self) -> BgpStatus {
        self.bgp.as_ref().map_or_else(BgpStatus::disabled, |b| b.status())
    }

    /// The cluster's metric families: `moat_bgp_*` always, the bus's on a
    /// node with one.
    pub fn metrics(&self, e: &mut Exposition) {
        self.bgp_status().metrics(e);
        if let Some(b) = &self.bus {
            b.metrics(e);
        }
    }
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    pub node: String,
    /// The node's BGP announcement through BIRD.
    pub bgp: BgpStatus,
    /// The cluster bus; `null` on a lone node.
    pub bus: Option<BusStatus>,
}

/// `POST /api/v1/drain`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Drain {
    pub node: String,
    /// Always `draining`.
    pub state: String,
    /// The node stops this many seconds after the drain began
    /// (`[bgp] drain_secs`).
    pub drain_secs: u32,
}

#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, description = "The node's BGP announcement: state (announced, withdrawn, draining or \
disabled), since when, why, whether BIRD answers, error counts; the cluster bus: connection, sources shared \
out and in, configuration revision (`null` on a lone node).", body = Cluster),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn cluster(State(st): State<Shared>) -> Json<Cluster> {
    Json(Cluster {
        node: st.node.clone(),
        bgp: st.cluster.bgp_status(),
        bus: st.cluster.bus.as_ref().map(|b| b.status()),
    })
}

#[utoipa::path(post, path = "/api/v1/drain", tag = "cluster",
    responses((status = 202, description = "Draining: the announcement is withdrawn now, the node keeps scrubbing \
`drain_secs`, then stops (exit status 0). Asking again changes nothing.", body = Drain),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No `[bgp]` section: nothing to withdraw (stop the node with SIGTERM).",
            body = Problem, content_type = "application/problem+json")))]
pub async fn drain(State(st): State<Shared>) -> Response {
    let Some(b) = &st.cluster.bgp else {
        return Problem::new(
            StatusCode::CONFLICT,
            "no [bgp] section: this node announces nothing to withdraw (stop it with SIGTERM)",
        )
        .into_response();
    };
    b.request_drain();
    let doc = Drain {
        node: st.node.clone(),
        state: "draining".into(),
        drain_secs: b.drain_secs(),
    };
    (StatusCode::ACCEPTED, Json(doc)).into_response()
}
