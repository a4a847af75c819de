//! The auto-blacklist's resources (`/api/v1/blacklist`): list and search
//! the bans in force, read one, lift one (on every worker, and on every
//! node where a cluster bus runs), ban by hand for a duration. See
//! [`crate::blacklist`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::{Body, Problem};
use super::Shared;
use crate::blacklist::{now_ms, Ban, BanError, Blacklist};

/// Bans listed when the request gives no `limit`, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// The bans in force (a page of them).
#[derive(Debug, Serialize, ToSchema)]
pub struct Bans {
    /// Bans matching the filters, before `limit`.
    pub total: usize,
    /// The first `limit` of them, soonest end first.
    pub bans: Vec<Ban>,
}

/// A ban by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBan {
    /// The source to ban (IPv4 or IPv6).
    #[schema(example = "198.51.100.7")]
    pub address: String,
    /// How long, seconds (1 to 30 days).
    #[schema(minimum = 1, maximum = 2_592_000, example = 300)]
    pub duration_secs: u64,
    /// A service, for the record (the ban drops the source on every
    /// service).
    #[serde(default)]
    pub service: Option<String>,
}

fn blacklist(st: &Shared) -> Result<&Blacklist, Problem> {
    st.blacklist
        .as_deref()
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "the blacklist is not running on this node"))
}

fn address(s: &str) -> Result<IpAddr, Problem> {
    s.parse()
        .map_err(|_| Problem::field("address", format!("\"{s}\": not an IPv4 or IPv6 address")))
}

#[utoipa::path(get, path = "/api/v1/blacklist", tag = "blacklist",
    params(("service" = Option<String>, Query, description = "Only the bans of this service"),
        ("q" = Option<String>, Query, description = "Only addresses whose text contains this (a prefix such as `198.51.` or any part)"),
        ("limit" = Option<u32>, Query, description = "At most this many bans (1 to 10000, default 100)")),
    responses((status = 200, description = "The bans in force, soonest end first.", body = Bans),
        (status = 400, description = "Bad `limit`.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn list(State(st): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Result<Json<Bans>, Problem> {
    let bl = blacklist(&st)?;
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| Problem::field("limit", format!("\"{l}\": expected 1 to {MAX_LIMIT}")))?,
    };
    let mut bans = bl.list(
        q.get("service").map(String::as_str),
        q.get("q").map(String::as_str),
        now_ms(),
    );
    let total = bans.len();
    bans.truncate(limit);
    Ok(Json(Bans { total, bans }))
}

#[utoipa::path(get, path = "/api/v1/blacklist/{address}", tag = "blacklist",
    params(("address" = String, Path, description = "Source address (IPv4 or IPv6)")),
    responses((status = 200, description = "Its ban.", body = Ban),
        (status = 400, description = "Not an address.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not banned.", body = Problem, content_type = "application/problem+json")))]
pub async fn get(State(st): State<Shared>, Path(a): Path<String>) -> Result<Json<Ban>, Problem> {
    let ip = address(&a)?;
    blacklist(&st)?
        .get(ip, now_ms())
        .map(Json)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("{ip} is not banned")))
}

#[utoipa::path(delete, path = "/api/v1/blacklist/{address}", tag = "blacklist",
    params(("address" = String, Path, description = "Source address (IPv4 or IPv6)")),
    responses((status = 204, description = "Lifted on every worker (within a few milliseconds) and, with a cluster bus, on every node."),
        (status = 400, description = "Not an address.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not banned (the workers are told to lift it anyway).", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(State(st): State<Shared>, Path(a): Path<String>) -> Result<StatusCode, Problem> {
    let ip = address(&a)?;
    match blacklist(&st)?.unban(ip) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Problem::new(StatusCode::NOT_FOUND, format!("{ip} is not banned"))),
    }
}

#[utoipa::path(post, path = "/api/v1/blacklist", tag = "blacklist", request_body = NewBan,
    responses((status = 201, description = "Banned on every worker (within a few milliseconds) and, with a cluster bus, on every node.", body = Ban),
        (status = 400, description = "Invalid: the field and the reason.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large.", body = Problem, content_type = "application/problem+json")))]
pub async fn post(State(st): State<Shared>, Body(b): Body<NewBan>) -> Result<(StatusCode, Json<Ban>), Problem> {
    let ip = address(&b.address)?;
    let ban = blacklist(&st)?
        .ban(ip, b.service.as_deref(), b.duration_secs, now_ms())
        .map_err(|e| match &e {
            BanError::Duration(_) => Problem::field("duration_secs", e.to_string()),
            BanError::NoService(_) => Problem::field("service", e.to_string()),
        })?;
    Ok((StatusCode::CREATED, Json(ban)))
}

/// The blacklist's families in `/metrics`.
pub fn metrics(st: &Shared, e: &mut crate::metrics::Exposition) {
    let Some(bl) = st.blacklist.as_deref() else { return };
    let s = &bl.stats;
    let kinds = classifier::state::ViolationKind::ALL;
    e.counters(
        "moat_blacklist_violations_total",
        "Limits broken by sources that proved their address, as the workers handed them over, by kind.",
        "kind",
        kinds
            .iter()
            .zip(&s.violations)
            .map(|(k, c)| (k.as_str(), c.load(Relaxed))),
    );
    let (dropped, evicted, held) = bl.worker_figures();
    let c = |name: &str, help: &str, v: &AtomicU64, e: &mut crate::metrics::Exposition| {
        e.counter(name, help, v.load(Relaxed));
    };
    c(
        "moat_blacklist_violations_ignored_total",
        "Violations of services without a blacklist.",
        &s.ignored,
        e,
    );
    e.counter(
        "moat_blacklist_violations_dropped_total",
        "Violations a worker could not hand over (its ring was full).",
        dropped,
    );
    e.gauge("moat_blacklist_bans_active", "Bans in force.", bl.active() as u64);
    e.gauge(
        "moat_blacklist_worker_bans",
        "Bans held by the fullest worker's ban table.",
        held,
    );
    e.gauge(
        "moat_blacklist_counters",
        "Sources whose violations are being counted.",
        bl.counters() as u64,
    );
    c(
        "moat_blacklist_bans_total",
        "Bans made on this node (by count or by hand).",
        &s.bans_total,
        e,
    );
    c(
        "moat_blacklist_bans_manual_total",
        "Bans made through the API.",
        &s.bans_manual,
        e,
    );
    c(
        "moat_blacklist_bans_peer_total",
        "Bans learnt from other nodes of the cluster.",
        &s.bans_peer,
        e,
    );
    c(
        "moat_blacklist_bans_expired_total",
        "Bans that ran out.",
        &s.bans_expired,
        e,
    );
    c(
        "moat_blacklist_bans_lifted_total",
        "Bans lifted through the API or by a peer.",
        &s.bans_lifted,
        e,
    );
    c(
        "moat_blacklist_bans_evicted_total",
        "Bans dropped to make room (ban_table_size reached).",
        &s.bans_evicted,
        e,
    );
    e.counter(
        "moat_blacklist_worker_bans_evicted_total",
        "Live bans a worker's full ban table pushed out.",
        evicted,
    );
    c(
        "moat_blacklist_counters_evicted_total",
        "Violation counters dropped to make room (violation_table_size reached).",
        &s.counters_evicted,
        e,
    );
    c(
        "moat_blacklist_push_retries_total",
        "Ban changes a worker's full ring could not take at once (sent again).",
        &s.push_retries,
        e,
    );
}
