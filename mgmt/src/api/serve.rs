//! The API's accept loop: what keeps a local process from stopping the
//! node through its API (issue 10, item 3).
//!
//! `axum::serve` has no connection limit and no header-read timeout, so
//! idle or half-sent connections pile up until the process runs out of
//! file descriptors and memory. Here:
//!
//! - at most [`Limits::max_connections`] connections are served at once;
//!   one more is answered `503` with `Connection: close` at once (a
//!   non-blocking write of a fixed response) and closed, so it costs a
//!   file descriptor for microseconds, never a task or a buffer;
//! - a request's head must arrive within [`Limits::header_timeout`] of the
//!   connection being ready for it (a new connection, or a keep-alive one
//!   after its last response): hyper's `header_read_timeout`, which also
//!   closes idle keep-alive connections; slowloris clients are closed
//!   after that time however slowly they trickle;
//! - a connection on which no byte moves either way for
//!   [`Limits::idle_timeout`] is closed (a client that stops reading its
//!   response, or sends a body byte by byte);
//! - a request is answered within [`Limits::request_timeout`] (body read
//!   included) or gets a `503` problem;
//! - each connection's read buffer is at most [`READ_BUFFER`] bytes, so the
//!   memory of the open connections is bounded by the limit times that
//!   (plus the body limit of the requests being handled);
//! - an accept error other than a per-connection one (`EMFILE`, `ENFILE`,
//!   `ENOBUFS`, `ENOMEM`) is logged (once per back-off period) and retried
//!   after a back-off that doubles from 10 ms to 1 s: the server never ends
//!   because the process ran out of descriptors.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::problem::Problem;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Time for a request head, from the moment the connection waits for one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection with no byte moving either way for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to answer a request, its body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffer per connection, bytes (also the largest request head).
/// hyper's minimum is 8 KiB.
pub const READ_BUFFER: usize = 16 * 1024;

/// What the accept loop enforces (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// The accept loop's counters (`/metrics`: `moat_api_*`).
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections answered 503 because [`Limits::max_connections`] were
    /// open.
    pub refused: AtomicU64,
    /// Connections closed because no byte moved for
    /// [`Limits::idle_timeout`].
    pub idle_closed: AtomicU64,
    /// `accept` failures (descriptors exhausted, ...), each retried.
    pub accept_errors: AtomicU64,
}

/// The answer to a connection over the limit: written with one
/// non-blocking write, then the socket is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
connection: close\r\ncontent-length: 98\r\n\r\n\
{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"too many connections\"}\n";

/// The first back-off after a failed `accept`, and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Errors that concern one connection only (it was reset before we took
/// it): accept the next one at once.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` on `listener` under `limits` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    stop: impl std::future::Future<Output = ()>,
) {
    let app = app.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        time_limit(limits.request_timeout, req, next)
    }));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = BACKOFF_MIN;
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut stop => return,
        };
        let sock = match accepted {
            Ok((sock, _)) => {
                backoff = BACKOFF_MIN;
                sock
            }
            Err(e) if per_connection(&e) => continue,
            Err(e) => {
                stats.accept_errors.fetch_add(1, Relaxed);
                if backoff == BACKOFF_MIN || backoff == BACKOFF_MAX {
                    tracing::warn!("API: accept failed ({e}); retrying in {backoff:?}");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut stop => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            stats.refused.fetch_add(1, Relaxed);
            // Best effort: a socket whose buffer is full gets only the
            // close.
            let _ = sock.try_write(BUSY);
            continue;
        };
        let _ = sock.set_nodelay(true);
        stats.accepted.fetch_add(1, Relaxed);
        stats.open.fetch_add(1, Relaxed);
        let app = app.clone();
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            connection(sock, app, limits, &stats).await;
            stats.open.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
}

/// A request not answered within `limit` (its body read included) gets a
/// 503 problem.
async fn time_limit(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not answered within {limit:?}"),
        )
        .into_response(),
    }
}

/// Serves one connection until it ends, its header timeout fires (inside
/// hyper) or it stays idle for `limits.idle_timeout`.
async fn connection(sock: TcpStream, app: Router, limits: Limits, stats: &ConnStats) {
    let last = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let io = Watched {
        inner: sock,
        t0,
        last: Arc::clone(&last),
    };
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(READ_BUFFER)
        .keep_alive(true);
    let conn = b.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    tokio::pin!(conn);
    loop {
        let quiet_since = t0 + Duration::from_millis(last.load(Relaxed));
        tokio::select! {
            _ = &mut conn => return,
            () = tokio::time::sleep_until(quiet_since + limits.idle_timeout) => {
                let now_last = t0 + Duration::from_millis(last.load(Relaxed));
                if now_last + limits.idle_timeout <= Instant::now() {
                    stats.idle_closed.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
    }
}

/// A socket that records when a byte last moved (milliseconds since `t0`).
struct Watched {
    inner: TcpStream,
    t0: Instant,
    last: Arc<AtomicU64>,
}

impl Watched {
    fn moved(&self) {
        let ms = u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::SocketAddr;

    use axum::routing::get;

    use super::*;

    const LIMITS: Limits = Limits {
        max_connections: 4,
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        request_timeout: Duration::from_millis(500),
    };

    /// A server under [`LIMITS`] on its own runtime; stops when the
    /// returned sender is dropped.
    struct Running {
        addr: SocketAddr,
        stats: Arc<ConnStats>,
        _stop: tokio::sync::oneshot::Sender<()>,
        _rt: tokio::runtime::Runtime,
    }

    fn running() -> Running {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let l = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = l.local_addr().expect("addr");
        let app = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/big", get(|| async { vec![b'x'; 16 << 20] }));
        let stats = Arc::new(ConnStats::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(serve(l, app, LIMITS, Arc::clone(&stats), async {
            let _ = rx.await;
        }));
        Running {
            addr,
            stats,
            _stop: tx,
            _rt: rt,
        }
    }

    fn connect(addr: SocketAddr) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s
    }

    /// Everything the server sends until it closes (or 5 s pass).
    fn read_all(s: &mut std::net::TcpStream) -> String {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get_ok(addr: SocketAddr) -> String {
        let mut s = connect(addr);
        s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .expect("write");
        read_all(&mut s)
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let t0 = std::time::Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn over_the_limit_is_refused_at_once_then_served_again() {
        let r = running();
        let held: Vec<_> = (0..LIMITS.max_connections).map(|_| connect(r.addr)).collect();
        wait_for("the held connections", || r.stats.open.load(Relaxed) == 4);
        let t0 = std::time::Instant::now();
        let mut extra = connect(r.addr);
        let answer = read_all(&mut extra);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(t0.elapsed() < Duration::from_millis(250), "refused at once");
        assert_eq!(r.stats.refused.load(Relaxed), 1);
        drop(held);
        wait_for("the slots freed", || r.stats.open.load(Relaxed) == 0);
        assert!(get_ok(r.addr).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
        let r = running();
        let t0 = std::time::Instant::now();
        let mut idle = connect(r.addr);
        let mut half = connect(r.addr);
        half.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n").expect("write");
        // Slowloris: one more header byte every 100 ms keeps bytes moving,
        // but the head is never complete.
        let mut trickle = connect(r.addr);
        trickle.write_all(b"GET /ok HTTP/1.1\r\n").expect("write");
        let writer = std::thread::spawn(move || {
            for _ in 0..30 {
                if trickle.write_all(b"x").is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        assert_eq!(read_all(&mut idle), "", "closed without an answer");
        assert_eq!(read_all(&mut half), "");
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(waited < Duration::from_millis(1500), "{waited:?}");
        assert!(writer.join().expect("writer"), "the trickling client was cut off");
        wait_for("every connection closed", || r.stats.open.load(Relaxed) == 0);
    }

    #[test]
    fn keep_alive_connections_are_closed_when_idle() {
        let r = running();
        let mut s = connect(r.addr);
        s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n").expect("write");
        let t0 = std::time::Instant::now();
        let text = read_all(&mut s);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(t0.elapsed() < Duration::from_millis(1500), "{:?}", t0.elapsed());
    }

    #[test]
    fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
        let r = running();
        let mut s = connect(r.addr);
        s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n").expect("write");
        // Never read: the socket buffers fill, no byte moves.
        wait_for("the idle close", || r.stats.idle_closed.load(Relaxed) == 1);
        wait_for("the slot freed", || r.stats.open.load(Relaxed) == 0);
    }

    #[test]
    fn a_slow_handler_gets_a_503_problem() {
        let r = running();
        let mut s = connect(r.addr);
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .expect("write");
        let t0 = std::time::Instant::now();
        let text = read_all(&mut s);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("not answered within"), "{text}");
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn many_connections_hold_at_most_the_limit() {
        let r = running();
        let mut socks: Vec<_> = (0..50).map(|_| connect(r.addr)).collect();
        for s in socks.iter_mut().step_by(2) {
            let _ = s.write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n");
        }
        wait_for("every connection accepted or refused", || {
            r.stats.accepted.load(Relaxed) + r.stats.refused.load(Relaxed) == 50
        });
        assert!(r.stats.open.load(Relaxed) <= 4);
        assert!(r.stats.refused.load(Relaxed) >= 46);
        drop(socks);
        wait_for("every connection closed", || r.stats.open.load(Relaxed) == 0);
        assert!(get_ok(r.addr).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn busy_answer_is_one_whole_response() {
        let text = std::str::from_utf8(BUSY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["status"], 503);
    }

    #[test]
    fn per_connection_errors_are_not_backed_off() {
        assert!(per_connection(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(!per_connection(&io::Error::from_raw_os_error(24)), "EMFILE backs off");
    }
}
