//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the types' `ToSchema` derives: a route missing here is a
//! route schemathesis never tests, so every route of `router` is listed.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::Problem;
use super::routes;
use super::types;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Moat management API", description = "Live control of a Moat scrubbing node (see the README, section API)."),
    paths(
        routes::health, routes::stats,
        routes::list_services, routes::get_service, routes::create_service, routes::update_service, routes::delete_service,
        routes::get_rules, routes::put_rules,
        routes::list_origins, routes::get_origin,
        routes::get_verified, routes::verify_source, routes::forget_verified, routes::flush_verified,
        super::blacklist::list, super::blacklist::get, super::blacklist::delete, super::blacklist::post,
        routes::get_config, routes::metrics,
        super::attacks::list_attacks, super::attacks::get_attack, super::attacks::signatures,
        super::cluster::cluster, super::cluster::drain,
    ),
    components(schemas(
        Problem, types::Service, types::Limits, types::PayloadRule, types::L7Rule, types::L7Action, types::SynAuthMode, crate::config::UdpAuthConfig, types::Rules, types::Acl,
        types::Fingerprints, types::Origin, types::Health, crate::health::Check, types::Verified, types::Stats, types::RatesDoc,
        types::PortStats, types::WorkerStats, types::ServiceStats,
        super::attacks::Attacks, super::attacks::Signatures, super::attacks::ActiveSignatures,
        crate::detect::engine::ActiveAttack, crate::detect::engine::ProposedSignatures,
        crate::report::AttackReport, crate::report::store::ReportSummary, crate::report::TopSource,
        crate::report::TopPort, crate::report::TopFingerprint, crate::report::TopL7, crate::report::timeline::Timeline,
        crate::report::timeline::Point, crate::detect::figures::Figures, crate::detect::countermeasures::Action,
        crate::config::Thresholds, crate::config::OnAttackConfig, crate::config::BlacklistConfig,
        super::cluster::Cluster, super::cluster::Drain, crate::cluster::bgp::BgpStatus,
        crate::cluster::bus::BusStatus, crate::cluster::bus::VerifiedDropped, crate::cluster::bus::ConfigCounts,
        crate::cluster::bus::CatchupCounts,
        super::blacklist::Bans, super::blacklist::NewBan, crate::blacklist::Ban,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
