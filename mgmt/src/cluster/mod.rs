//! The node in its cluster (DESIGN.md, "Scale-out"): the NATS bus that
//! shares verified sources and the configuration overlay ([`bus`]).
//! [`Cluster`] is what the API and metrics see of it; `GET
//! /api/v1/cluster` answers [`ClusterStatus`].

pub mod bus;

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::Exposition;

/// The cluster parts a running node has (shared with the API).
#[derive(Debug, Default, Clone)]
pub struct Cluster {
    /// The bus (`None`: a lone node, `[cluster] nats` empty).
    pub bus: Option<Arc<bus::BusState>>,
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterStatus {
    /// The cluster bus; `null` on a lone node.
    pub bus: Option<bus::BusStatus>,
}

impl Cluster {
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus {
            bus: self.bus.as_ref().map(|b| b.status()),
        }
    }

    /// The cluster's metric families (none on a lone node).
    pub fn metrics(&self, e: &mut Exposition) {
        if let Some(b) = &self.bus {
            b.metrics(e);
        }
    }
}

#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, description = "The node in its cluster: the bus's connection, shared sources and configuration revision.",
            body = ClusterStatus),
        (status = 401, description = "No or wrong token.", body = crate::api::problem::Problem, content_type = "application/problem+json")))]
pub async fn get_cluster(State(st): State<Arc<crate::api::ApiState>>) -> Json<ClusterStatus> {
    Json(st.cluster.status())
}
