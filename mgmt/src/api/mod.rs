//! The management REST API (`/api/v1/...`) and Prometheus `/metrics`, on a
//! small tokio runtime (two threads, never pinned, so never on a worker's
//! core) started on its own OS thread by `moat run`.
//!
//! Contract:
//! - Every route but `GET /api/v1/health` needs `Authorization: Bearer
//!   <token>` ([`auth`]); without it, or with another token: 401 with
//!   `WWW-Authenticate: Bearer`.
//! - Bodies over [`BODY_LIMIT`] bytes: 413. Every refused request: an RFC
//!   7807 problem document ([`problem`]) naming the field and the reason.
//! - Handlers never touch a worker: they read published counters, change
//!   the configuration through [`Control`] (a new policy snapshot), and ask
//!   workers about their tables through bounded mailboxes.
//! - The OpenAPI document (`/api/v1/openapi.json`) is generated from the
//!   handlers and types ([`doc`]).
//! - `GET /ui/...`: the dashboard's static pages ([`ui`]), public (no
//!   data in them); the pages call the API with the token.
//! - `GET /api/v1/health` answers 200 or 503 from [`Health`]'s checks
//!   (each check's detail only with the token).
//! - Connections are limited, and so are the times to send a request head,
//!   to stay idle and to be answered ([`serve`]): no local process can
//!   exhaust the node's descriptors or memory through the API.
//!
//! [`ApiState`] is what handlers share; a new resource (detection's
//! attacks, say) is a field here, a handler in its own file, and one line
//! in [`router`] and in [`doc::ApiDoc`].

mod attacks;
pub mod auth;
mod blacklist;
pub mod cluster;
pub mod doc;
pub mod problem;
mod routes;
pub mod serve;
pub mod types;
pub mod ui;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dataplane::runtime::mailbox::Mailboxes;

use crate::control::Control;
use crate::health::Health;
use crate::metrics::Counters;
use problem::Problem;

pub use attacks::DetectApi;
pub use cluster::ClusterApi;

/// Largest request body, bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub control: Arc<Control>,
    pub counters: Arc<Counters>,
    pub mail: Arc<Mailboxes>,
    pub node: String,
    pub token: auth::Token,
    /// Detection's view and reports (`None`: detection is off).
    pub detect: Option<DetectApi>,
    /// The node's readiness checks (`GET /api/v1/health`).
    pub health: Arc<Health>,
    /// The cluster side: BGP announcement, drain requests.
    pub cluster: ClusterApi,
    /// The auto-blacklist (`None`: not running, its routes answer 404).
    pub blacklist: Option<Arc<crate::blacklist::Blacklist>>,
}

type Shared = Arc<ApiState>;

async fn require_token(State(st): State<Shared>, req: Request, next: Next) -> Response {
    // The health check, and the dashboard's static assets (public: they
    // carry no data; every figure they show is fetched with the token).
    let get = req.method() == Method::GET;
    let open = (get && req.uri().path() == "/api/v1/health")
        || ((get || req.method() == Method::HEAD) && ui::is_public(req.uri().path()));
    if open || st.token.admits(req.headers()) {
        return next.run(req).await;
    }
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <token>)",
    )
    .into_response()
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such resource")
}

/// All routes over `st`.
pub fn router(st: Shared) -> Router {
    Router::new()
        .route("/api/v1/health", get(routes::health))
        .route("/api/v1/openapi.json", get(doc::openapi_json))
        .route("/api/v1/stats", get(routes::stats))
        .route(
            "/api/v1/services",
            get(routes::list_services).post(routes::create_service),
        )
        .route(
            "/api/v1/services/{name}",
            get(routes::get_service)
                .put(routes::update_service)
                .delete(routes::delete_service),
        )
        .route("/api/v1/rules", get(routes::get_rules).put(routes::put_rules))
        .route("/api/v1/origins", get(routes::list_origins))
        .route("/api/v1/origins/{name}", get(routes::get_origin))
        .route("/api/v1/verified", axum::routing::delete(routes::flush_verified))
        .route(
            "/api/v1/verified/{address}",
            get(routes::get_verified)
                .put(routes::verify_source)
                .delete(routes::forget_verified),
        )
        .route("/api/v1/blacklist", get(blacklist::list).post(blacklist::post))
        .route(
            "/api/v1/blacklist/{address}",
            get(blacklist::get).delete(blacklist::delete),
        )
        .route("/api/v1/config", get(routes::get_config))
        .route("/api/v1/attacks", get(attacks::list_attacks))
        .route("/api/v1/attacks/{attack_uuid}", get(attacks::get_attack))
        .route("/api/v1/signatures", get(attacks::signatures))
        .route("/api/v1/cluster", get(cluster::cluster))
        .route("/api/v1/drain", axum::routing::post(cluster::drain))
        .route("/metrics", get(routes::metrics))
        .route("/ui", get(ui::root))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this resource")
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&st), require_token))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(st)
}

/// How often the server samples the workers' progress for the health
/// checks (see [`crate::health`]).
const HEALTH_SAMPLE: Duration = Duration::from_millis(250);

/// The API server while it runs.
#[derive(Debug)]
pub struct Server {
    /// The address it listens on (the real port when 0 was configured).
    pub addr: SocketAddr,
    /// The accept loop's counters.
    pub conns: Arc<serve::ConnStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `listen` now (so that a taken port fails start-up) and serves
    /// `st` on a new thread under the default [`serve::Limits`].
    pub fn start(listen: SocketAddr, st: ApiState) -> anyhow::Result<Server> {
        Server::start_with(listen, st, serve::Limits::default())
    }

    /// [`Server::start`] under `limits`.
    pub fn start_with(listen: SocketAddr, st: ApiState, limits: serve::Limits) -> anyhow::Result<Server> {
        let l = TcpListener::bind(listen).with_context(|| format!("mgmt.listen {listen}"))?;
        l.set_nonblocking(true).context("API socket")?;
        let addr = l.local_addr().context("API socket")?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("moat-api")
            .enable_io()
            .enable_time()
            .build()
            .context("API runtime")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let conns = Arc::new(serve::ConnStats::default());
        let health = Arc::clone(&st.health);
        let app = router(Arc::new(st)).layer(axum::Extension(Arc::clone(&conns)));
        let stats = Arc::clone(&conns);
        let thread = std::thread::Builder::new()
            .name("moat-api-main".into())
            .spawn(move || {
                rt.block_on(async move {
                    let l = match tokio::net::TcpListener::from_std(l) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("API: {e}");
                            return;
                        }
                    };
                    let sampler = tokio::spawn(async move {
                        let mut t = tokio::time::interval(HEALTH_SAMPLE);
                        loop {
                            t.tick().await;
                            health.sample();
                        }
                    });
                    serve::serve(l, app, limits, stats, async {
                        let _ = rx.await;
                    })
                    .await;
                    sampler.abort();
                });
                // Requests in flight get a moment; idle keep-alive
                // connections do not hold the node's exit.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .context("API thread")?;
        Ok(Server {
            addr,
            conns,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops serving and waits for the thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
