//! What a local process can do to a running `moat run` through its API
//! (issue 10, item 3), and the health check's failures: idle and half-sent
//! connections are bounded and closed, the node and its API outlive
//! exhausted file descriptors, and `GET /api/v1/health` answers 503 naming
//! an unwritable state dir. (An unresolved next hop and a stopped worker
//! cannot be made on the memory backend, which refuses next hops without a
//! static MAC: `health`'s unit tests cover them.)

mod api_common;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use api_common::{call, config, get, metrics, Node, Reply};

/// The server's connection limit (`api::serve::MAX_CONNECTIONS`).
const LIMIT: usize = mgmt::api::serve::MAX_CONNECTIONS;

fn addr(node: &Node) -> String {
    node.base.trim_start_matches("http://").to_string()
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// `n` connections, each sending the start of a request head and no more.
fn half_sent(node: &Node, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr(node)).unwrap();
            let _ = s.write_all(b"GET /api/v1/stats HTTP/1.1\r\nhost: x\r\n");
            s
        })
        .collect()
}

/// Whether the server closed `s` (EOF or reset) within `wait`, reading and
/// discarding any answer; the answer's first line when there was one.
fn closed(s: &mut TcpStream, wait: Duration) -> (bool, String) {
    let _ = s.set_read_timeout(Some(wait));
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (false, String::new())
            }
            Err(_) => break,
        }
    }
    let first = String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_string();
    (true, first)
}

/// Over the limit of half-sent requests: the excess is answered 503 at
/// once, the server holds no more than the limit of sockets, and every
/// half-sent request is closed after the header timeout (5 s).
#[test]
fn half_sent_requests_are_bounded_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&config(dir.path()));
    let before = open_files(node.pid());
    let t0 = Instant::now();
    let mut socks = half_sent(&node, LIMIT + 60);
    std::thread::sleep(Duration::from_millis(500));
    let held = open_files(node.pid()).saturating_sub(before);
    assert!(held <= LIMIT + 2, "{held} sockets held for {} connections", LIMIT + 60);
    let mut refused = 0;
    for s in socks.iter_mut().rev().take(60) {
        let (gone, first) = closed(s, Duration::from_millis(100));
        if gone && first.starts_with("HTTP/1.1 503") {
            refused += 1;
        }
    }
    assert!(refused >= 50, "only {refused} of the 60 over the limit were refused");
    for s in &mut socks {
        let (gone, _) = closed(s, Duration::from_secs(8));
        assert!(gone, "a half-sent request still open after {:?}", t0.elapsed());
    }
    assert!(t0.elapsed() < Duration::from_secs(9), "{:?}", t0.elapsed());
    let m = metrics(&node);
    assert!(
        m["moat_api_connections"] <= 2.0,
        "only the scrape's own (and a previous one closing): {m:?}"
    );
    assert!(m["moat_api_connections_total{result=\"refused\"}"] >= 50.0);
    assert!(node.running());
    node.stop();
}

/// With few file descriptors, idle connections exhaust them: the accept
/// loop backs off and retries, the idle connections are closed after the
/// header timeout, and the API answers again while the attacker still
/// holds its sockets. The node never exits.
#[test]
fn the_api_recovers_from_exhausted_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start_with_files(&config(dir.path()), 128);
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(addr(&node)).unwrap()).collect();
    let t0 = Instant::now();
    let answered = loop {
        assert!(node.running(), "moat run exited");
        let r = try_get(&node, "/api/v1/health");
        if let Some(r) = r {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the API did not recover while idle sockets are held"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(answered.status == 200 || answered.status == 503, "{answered:?}");
    let m = metrics(&node);
    assert!(
        m["moat_api_accept_errors_total"] > 0.0,
        "the descriptors were exhausted (else the test proves nothing)"
    );
    drop(idle);
    assert!(node.running());
    node.stop();
}

/// One GET with a short timeout; `None` when it was not answered.
fn try_get(node: &Node, path: &str) -> Option<Reply> {
    let r = ureq::get(&format!("{}{path}", node.base))
        .timeout(Duration::from_secs(2))
        .call();
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(_) => return None,
    };
    let status = resp.status();
    let body = resp.into_string().ok()?;
    Some(Reply {
        status,
        headers: Default::default(),
        body,
    })
}

fn failing(r: &Reply) -> Vec<String> {
    let v = r.json();
    assert_eq!(v["status"], if r.status == 200 { "ok" } else { "failing" }, "{r:?}");
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn health_fails_when_the_state_dir_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&config(dir.path()));
    let r = get(&node, "/api/v1/health");
    assert_eq!(r.status, 200, "{r:?}");
    // Root writes through permission bits: the state dir is replaced by a
    // file instead.
    let state = dir.path().join("state");
    std::fs::rename(&state, dir.path().join("state.away")).unwrap();
    std::fs::write(&state, "not a folder").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let r = call(&node, "GET", "/api/v1/health", None, &[], None);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(failing(&r), ["state_dir"], "{r:?}");
    assert!(!r.body.contains("detail"), "no details without the token: {r:?}");
    let r = get(&node, "/api/v1/health");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("cannot create a file"), "details with the token: {r:?}");
    std::fs::remove_file(&state).unwrap();
    std::fs::rename(dir.path().join("state.away"), &state).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&node, "/api/v1/health").status, 200);
    node.stop();
}
