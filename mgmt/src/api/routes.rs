//! The handlers: one function per operation, each with its OpenAPI
//! description.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use classifier::DropReason;
use dataplane::port::PortId;
use dataplane::runtime::mailbox::Command;

use super::problem::{Body, Problem};
use super::serve::ConnStats;
use super::types::{Health, Origin, PortStats, RatesDoc, Rules, Service, ServiceStats, Stats, Verified, WorkerStats};
use super::Shared;
use crate::control::etag;
use crate::metrics::{exposition, Exposition, NodeInfo};

/// How long a request about verified sources waits for the workers.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// `v` as JSON with its ETag.
fn tagged<T: serde::Serialize>(status: StatusCode, tag: &str, v: &T) -> Response {
    let mut r = (status, Json(v)).into_response();
    if let Ok(h) = HeaderValue::from_str(tag) {
        r.headers_mut().insert(header::ETAG, h);
    }
    r
}

fn if_match(h: &HeaderMap) -> Result<Option<&str>, Problem> {
    match h.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Problem::field("If-Match", "not an ETag list")),
    }
}

#[utoipa::path(get, path = "/api/v1/health", tag = "node", security(()),
    responses((status = 200, description = "Ready: every worker made progress within the last second, every port is up, \
every origin's next hop is resolved and the state dir is writable. `status` is `degraded` when a non-fatal check \
(the cluster bus) fails: the node scrubs on its own state.", body = Health),
        (status = 503, description = "Not ready: `checks` names the failing ones.", body = Health)),
    params(("Authorization" = Option<String>, Header, description = "With the bearer token, each check's `detail` is filled in")))]
pub async fn health(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let h = Arc::clone(&st.health);
    let mut report = match blocking(move || h.check()).await {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    // Open to anyone (load balancers, BGP speakers): the details (paths,
    // interfaces, next-hop addresses) only with the token.
    if !st.token.admits(&headers) {
        for c in report.checks.iter_mut().chain(&mut report.degraded) {
            c.detail.clear();
        }
    }
    let status = if report.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status_word = match (report.ok(), report.degraded.is_empty()) {
        (false, _) => "failing",
        (true, false) => "degraded",
        (true, true) => "ok",
    };
    let doc = Health {
        status: status_word.into(),
        node: st.node.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: st.counters.uptime_secs(),
        checks: report.checks,
        degraded: report.degraded,
    };
    (status, Json(doc)).into_response()
}

#[utoipa::path(get, path = "/api/v1/stats", tag = "node",
    responses((status = 200, description = "Counters since start-up and rates over the last second.", body = Stats),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn stats(State(st): State<Shared>) -> Json<Stats> {
    let names = st.control.service_names();
    let (t, per) = st.counters.snapshot(names.len());
    let passed = st.control.passed_by_service(&t.passed);
    let figures = st
        .detect
        .as_ref()
        .and_then(|d| d.view.lock().ok().map(|v| v.figures.clone()))
        .unwrap_or_default();
    let port = |p: PortId| {
        let c = t.port(p);
        (
            p.as_str().to_string(),
            PortStats {
                rx_packets: c.rx_packets,
                tx_packets: c.tx_packets,
                tx_dropped: c.tx_dropped,
            },
        )
    };
    Json(Stats {
        uptime_secs: st.counters.uptime_secs(),
        workers: per.len(),
        policy_generation: st.control.generation(),
        rx_packets: t.rx_packets,
        rx_bytes: t.rx_bytes,
        passed_packets: t.passed_total(),
        passed_bytes: t.passed_bytes,
        dropped_packets: t.dropped_total(),
        replies: t.replies,
        icmp_too_big: t.icmp_too_big,
        mss_clamped: t.mss_clamped,
        rates: RatesDoc::from(st.counters.rates()),
        drops_by_reason: DropReason::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), t.dropped[*r as usize]))
            .collect(),
        ports: PortId::ALL.into_iter().map(port).collect(),
        services: passed
            .into_iter()
            .map(|(n, p)| {
                let rates = figures.get(&n).copied();
                (
                    n,
                    ServiceStats {
                        passed_packets: p,
                        rates,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        per_worker: per
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerStats {
                worker: i,
                rx_packets: w.rx_packets,
                passed_packets: w.passed_total(),
                dropped_packets: w.dropped_total(),
                replies: w.replies,
                busy_polls: w.busy_polls,
                idle_polls: w.idle_polls,
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, description = "Every service, in policy order.", body = [Service]),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn list_services(State(st): State<Shared>) -> Json<Vec<Service>> {
    Json(st.control.services().iter().map(Service::of).collect())
}

#[utoipa::path(get, path = "/api/v1/services/{name}", tag = "services",
    params(("name" = String, Path, description = "Service name")),
    responses((status = 200, description = "The service.", body = Service,
            headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service.", body = Problem, content_type = "application/problem+json")))]
pub async fn get_service(State(st): State<Shared>, Path(name): Path<String>) -> Result<Response, Problem> {
    let s = st
        .control
        .service(&name)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no service named \"{name}\"")))?;
    Ok(tagged(StatusCode::OK, &etag(&s), &Service::of(&s)))
}

#[utoipa::path(post, path = "/api/v1/services", tag = "services", request_body = Service,
    responses((status = 201, description = "Created; in force from the workers' next burst.", body = Service,
            headers(("ETag" = String, description = "Version, for If-Match"), ("Location" = String, description = "The new service"))),
        (status = 400, description = "Invalid: the field and the reason.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A service of that name exists.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large.", body = Problem, content_type = "application/problem+json")))]
pub async fn create_service(State(st): State<Shared>, Body(s): Body<Service>) -> Result<Response, Problem> {
    let cfg = s.to_config()?;
    let c = Arc::clone(&st.control);
    let s = blocking(move || c.create_service(cfg)).await??;
    let mut r = tagged(StatusCode::CREATED, &etag(&s), &Service::of(&s));
    if let Ok(h) = HeaderValue::from_str(&format!("/api/v1/services/{}", s.name)) {
        r.headers_mut().insert(header::LOCATION, h);
    }
    Ok(r)
}

#[utoipa::path(put, path = "/api/v1/services/{name}", tag = "services", request_body = Service,
    params(("name" = String, Path, description = "Service name"),
        ("If-Match" = Option<String>, Header, description = "Replace only if the service still has this ETag")),
    responses((status = 200, description = "Replaced; in force from the workers' next burst.", body = Service,
            headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 400, description = "Invalid: the field and the reason.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The service changed since that ETag.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large.", body = Problem, content_type = "application/problem+json")))]
pub async fn update_service(
    State(st): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Body(s): Body<Service>,
) -> Result<Response, Problem> {
    let m = if_match(&headers)?.map(str::to_string);
    let cfg = s.to_config()?;
    let c = Arc::clone(&st.control);
    let s = blocking(move || c.update_service(&name, cfg, m.as_deref())).await??;
    Ok(tagged(StatusCode::OK, &etag(&s), &Service::of(&s)))
}

#[utoipa::path(delete, path = "/api/v1/services/{name}", tag = "services",
    params(("name" = String, Path, description = "Service name"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the service still has this ETag")),
    responses((status = 204, description = "Deleted; its traffic is dropped (no service) from the workers' next burst."),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The service changed since that ETag.", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_service(
    State(st): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let m = if_match(&headers)?.map(str::to_string);
    let c = Arc::clone(&st.control);
    blocking(move || c.delete_service(&name, m.as_deref())).await??;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules",
    responses((status = 200, description = "ACL, fingerprint deny rules, global cap.", body = Rules,
            headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn get_rules(State(st): State<Shared>) -> Response {
    let r = st.control.rules();
    tagged(StatusCode::OK, &etag(&r), &Rules::of(&r))
}

#[utoipa::path(put, path = "/api/v1/rules", tag = "rules", request_body = Rules,
    params(("If-Match" = Option<String>, Header, description = "Replace only if the rules still have this ETag")),
    responses((status = 200, description = "Replaced; in force from the workers' next burst.", body = Rules,
            headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 400, description = "Invalid: the field and the reason.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The rules changed since that ETag.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large.", body = Problem, content_type = "application/problem+json")))]
pub async fn put_rules(
    State(st): State<Shared>,
    headers: HeaderMap,
    Body(r): Body<Rules>,
) -> Result<Response, Problem> {
    let m = if_match(&headers)?.map(str::to_string);
    let cfg = r.to_config()?;
    let c = Arc::clone(&st.control);
    let r = blocking(move || c.put_rules(cfg, m.as_deref())).await??;
    Ok(tagged(StatusCode::OK, &etag(&r), &Rules::of(&r)))
}

#[utoipa::path(get, path = "/api/v1/origins", tag = "origins",
    responses((status = 200, description = "The GRE origins (fixed at start-up).", body = [Origin]),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn list_origins(State(st): State<Shared>) -> Json<Vec<Origin>> {
    Json(st.control.origins().iter().map(Origin::of).collect())
}

#[utoipa::path(get, path = "/api/v1/origins/{name}", tag = "origins",
    params(("name" = String, Path, description = "Origin name")),
    responses((status = 200, description = "The origin.", body = Origin),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such origin.", body = Problem, content_type = "application/problem+json")))]
pub async fn get_origin(State(st): State<Shared>, Path(name): Path<String>) -> Result<Json<Origin>, Problem> {
    st.control
        .origins()
        .iter()
        .find(|o| o.name == name)
        .map(|o| Json(Origin::of(o)))
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no origin named \"{name}\"")))
}

fn address(s: &str) -> Result<IpAddr, Problem> {
    s.parse()
        .map_err(|_| Problem::field("address", format!("\"{s}\": not an IPv4 or IPv6 address")))
}

/// Runs a blocking management call off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("management task failed: {e}"),
        )
    })
}

async fn ask(st: &Shared, cmd: Command) -> Result<Vec<Option<bool>>, Problem> {
    let mail = Arc::clone(&st.mail);
    blocking(move || mail.ask(cmd, ASK_TIMEOUT)).await
}

fn workers_where(answers: &[Option<bool>], want: Option<bool>) -> Vec<usize> {
    answers
        .iter()
        .enumerate()
        .filter(|(_, a)| **a == want)
        .map(|(i, _)| i)
        .collect()
}

#[utoipa::path(get, path = "/api/v1/verified/{address}", tag = "verified",
    params(("address" = String, Path, description = "Source address (IPv4 or IPv6)")),
    responses((status = 200, description = "Whether a worker holds it as verified.", body = Verified),
        (status = 400, description = "Not an address.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn get_verified(State(st): State<Shared>, Path(a): Path<String>) -> Result<Json<Verified>, Problem> {
    let ip = address(&a)?;
    let answers = ask(&st, Command::IsVerified(ip)).await?;
    let workers = workers_where(&answers, Some(true));
    Ok(Json(Verified {
        address: ip.to_string(),
        verified: !workers.is_empty(),
        workers,
        unanswered: workers_where(&answers, None),
    }))
}

#[utoipa::path(put, path = "/api/v1/verified/{address}", tag = "verified",
    params(("address" = String, Path, description = "Source address (IPv4 or IPv6)")),
    responses((status = 200, description = "Verified on every worker for the policy's TTL (as if it had answered a challenge), \
and published on the cluster bus like any verification.", body = Verified),
        (status = 400, description = "Not an address.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A worker did not answer.", body = Problem, content_type = "application/problem+json")))]
pub async fn verify_source(State(st): State<Shared>, Path(a): Path<String>) -> Result<Json<Verified>, Problem> {
    let ip = address(&a)?;
    let ttl = st.control.verified_ttl();
    let answers = ask(&st, Command::Verify(ip, ttl)).await?;
    all_answered(&answers)?;
    if let Some(b) = &st.cluster.bus {
        b.share_verified(ip, ttl);
    }
    Ok(Json(Verified {
        address: ip.to_string(),
        verified: true,
        workers: workers_where(&answers, Some(true)),
        unanswered: Vec::new(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/verified/{address}", tag = "verified",
    params(("address" = String, Path, description = "Source address (IPv4 or IPv6)")),
    responses((status = 204, description = "Forgotten: its next SYN is challenged again."),
        (status = 400, description = "Not an address.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A worker did not answer.", body = Problem, content_type = "application/problem+json")))]
pub async fn forget_verified(State(st): State<Shared>, Path(a): Path<String>) -> Result<StatusCode, Problem> {
    let ip = address(&a)?;
    let answers = ask(&st, Command::Forget(ip)).await?;
    all_answered(&answers)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/verified", tag = "verified",
    responses((status = 204, description = "Every verified source forgotten on every worker."),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A worker did not answer.", body = Problem, content_type = "application/problem+json")))]
pub async fn flush_verified(State(st): State<Shared>) -> Result<StatusCode, Problem> {
    let answers = ask(&st, Command::FlushVerified).await?;
    all_answered(&answers)?;
    Ok(StatusCode::NO_CONTENT)
}

fn all_answered(answers: &[Option<bool>]) -> Result<(), Problem> {
    let missing = workers_where(answers, None);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("workers {missing:?} did not answer (stopped?)"),
        ))
    }
}

#[utoipa::path(get, path = "/api/v1/config", tag = "node",
    responses((status = 200, description = "The effective config (file plus runtime changes) as a TOML config file.",
            body = String, content_type = "application/toml"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn get_config(State(st): State<Shared>) -> Response {
    let text = st.control.config().to_toml_string();
    ([(header::CONTENT_TYPE, "application/toml")], text).into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Prometheus text exposition 0.0.4.",
            body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "No or wrong token.", body = Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(st): State<Shared>, conns: Option<Extension<Arc<ConnStats>>>) -> Response {
    let names = st.control.service_names();
    let (t, per) = st.counters.snapshot(names.len());
    let passed = st.control.passed_by_service(&t.passed);
    let traffic = st.control.traffic_by_service(&t.services);
    // A port whose counters cannot be read now is left out of this scrape.
    let device: Vec<_> = st.health.device().map_or_else(Vec::new, |d| {
        PortId::ALL
            .into_iter()
            .filter_map(|p| d.device_stats(p).ok().map(|s| (p, s)))
            .collect()
    });
    let info = NodeInfo {
        node: &st.node,
        policy_generation: st.control.generation(),
        passed: &passed,
        traffic: &traffic,
        device: &device,
    };
    let mut e = exposition(&st.counters, &t, &per, &info);
    super::attacks::metrics(&st, &t, &mut e);
    super::blacklist::metrics(&st, &mut e);
    st.cluster.metrics(&mut e, st.counters.uptime_secs());
    if let Some(Extension(c)) = conns {
        api_metrics(&c, &mut e);
    }
    let text = e.finish();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// The API server's own families: connections open, accepted, refused
/// over the limit, closed idle, and failed accepts.
fn api_metrics(c: &ConnStats, e: &mut Exposition) {
    e.gauge(
        "moat_api_connections",
        "API connections open now.",
        c.open.load(Relaxed),
    );
    e.counters(
        "moat_api_connections_total",
        "API connections by outcome: served, refused (503) over the connection limit, closed after the idle timeout.",
        "result",
        [
            ("accepted", c.accepted.load(Relaxed)),
            ("refused", c.refused.load(Relaxed)),
            ("idle_closed", c.idle_closed.load(Relaxed)),
        ],
    );
    e.counter(
        "moat_api_accept_errors_total",
        "Failed accepts on the API socket (descriptors exhausted, ...), each retried after a back-off.",
        c.accept_errors.load(Relaxed),
    );
}
