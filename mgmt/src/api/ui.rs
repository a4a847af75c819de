//! The dashboard: static pages under `/ui/` embedded in the binary.
//!
//! The assets are public: they are the same bytes in every `moat` binary
//! and carry no data of the node. Every figure the pages show comes from
//! `/api/v1/...` with the bearer token, under the usual 401 rules.
//!
//! Every answer carries a strict Content-Security-Policy (nothing but this
//! origin; no inline script or style), `nosniff` and no framing. HTML is
//! `no-store`; the other assets may be cached for an hour (they change only
//! with the binary).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::problem::Problem;

/// The policy on every `/ui/` answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Path under `/ui/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/index.html"),
    ),
    (
        "attack.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/attack.html"),
    ),
    (
        "api.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/api.html"),
    ),
    (
        "moat.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/moat.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/common.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/dashboard.js"),
    ),
    (
        "report.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/report.js"),
    ),
    (
        "attack.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/attack.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/api.js"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/vendor/uPlot.min.css"),
    ),
];

/// Is `path` one of the public `/ui` paths (no token needed)?
pub fn is_public(path: &str) -> bool {
    path == "/ui"
        || path
            .strip_prefix("/ui/")
            .is_some_and(|p| p.is_empty() || find(p).is_some())
}

/// The bytes of asset `p` (a path under `/ui/`), for `moat report --html`.
pub fn asset_bytes(p: &str) -> Option<&'static [u8]> {
    find(p).map(|(_, _, b)| *b)
}

fn find(p: &str) -> Option<&'static (&'static str, &'static str, &'static [u8])> {
    ASSETS.iter().find(|(name, _, _)| *name == p)
}

fn secured(mut r: Response, html: bool) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if html { "no-store" } else { "public, max-age=3600" }),
    );
    r
}

/// `GET /ui`: to `/ui/` (relative links resolve under it).
pub async fn root() -> Response {
    secured(Redirect::permanent("/ui/").into_response(), true)
}

/// `GET /ui/`: the dashboard.
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /ui/{*path}`.
pub async fn asset(Path(p): Path<String>) -> Response {
    serve(&p)
}

fn serve(p: &str) -> Response {
    match find(p) {
        Some((name, ctype, bytes)) => {
            let r = ([(header::CONTENT_TYPE, *ctype)], *bytes).into_response();
            secured(r, name.ends_with(".html"))
        }
        None => secured(
            Problem::new(StatusCode::NOT_FOUND, "no such resource").into_response(),
            true,
        ),
    }
}
