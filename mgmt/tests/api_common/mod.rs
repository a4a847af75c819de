//! What the API tests share: a `moat run` on the memory backend with its
//! API on a free loopback port, and an HTTP client for it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A `moat run` with its API on a free loopback port.
pub struct Node {
    child: Option<Child>,
    pub base: String,
    pub stderr: std::sync::mpsc::Receiver<String>,
}

pub fn config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(common::root().join("examples/offline.toml"))
        .unwrap()
        .replace("backend = \"pcap\"", "backend = \"memory\"")
        .replace("workers = 1", "workers = 2")
        .replace("cookie_secret_file = \"cluster.secret\"", "");
    let state = dir.join("state");
    let text = text.replace(
        "state_dir = \"state\"",
        &format!("state_dir = {:?}", state.to_str().unwrap()),
    );
    let p = dir.join("moat.toml");
    std::fs::write(
        &p,
        format!("{text}\n[dataplane.memory]\npps = 5000\n\n[mgmt]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    p
}

impl Node {
    pub fn start(cfg: &Path) -> Node {
        let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
        c.args(["run", "--config"]).arg(cfg);
        Node::spawn(c)
    }

    /// `moat run` under a limit of `n` open files (the shell's `ulimit`).
    pub fn start_with_files(cfg: &Path, n: u32) -> Node {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("ulimit -n {n} && exec \"$0\" run --config \"$1\""))
            .arg(env!("CARGO_BIN_EXE_moat"))
            .arg(cfg);
        Node::spawn(c)
    }

    /// The process id of `moat run`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether `moat run` still runs.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn spawn(mut c: Command) -> Node {
        let mut child = c
            .env("MOAT_API_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let t = Instant::now();
        let mut seen = String::new();
        while t.elapsed() < Duration::from_secs(20) {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split('/').next().unwrap().to_string();
                        return Node {
                            child: Some(child),
                            base: format!("http://{addr}"),
                            stderr: rx,
                        };
                    }
                    seen += &line;
                    seen.push('\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moat run did not start its API:\n{seen}");
    }

    /// Waits for `moat run` to exit by itself (bounded by the caller's
    /// reason to expect it); its exit status.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }

    /// SIGTERM, then the exit status must be success.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = child.wait().unwrap();
        let rest: Vec<String> = self.stderr.try_iter().collect();
        assert!(status.success(), "moat run exited with {status}: {rest:?}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
    /// A problem document with this status naming this field.
    pub fn problem(&self, status: u16, field: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), "application/problem+json", "{self:?}");
        let p = self.json();
        assert_eq!(p["status"], status, "{p}");
        assert_eq!(p["type"], "about:blank");
        if !field.is_empty() {
            assert_eq!(p["field"], field, "{p}");
            assert!(!p["reason"].as_str().unwrap().is_empty(), "{p}");
        }
        p
    }
}

pub fn call(
    node: &Node,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut r = ureq::request(method, &format!("{}{path}", node.base)).timeout(Duration::from_secs(10));
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in headers {
        r = r.set(k, v);
    }
    let res = match body {
        Some(b) => r.set("Content-Type", "application/json").send_string(b),
        None => r.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    let body = resp.into_string().unwrap();
    Reply { status, headers, body }
}

pub fn get(node: &Node, path: &str) -> Reply {
    call(node, "GET", path, Some(TOKEN), &[], None)
}

pub fn started() -> (tempfile::TempDir, PathBuf, Node) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let node = Node::start(&cfg);
    (dir, cfg, node)
}

pub fn game(name: &str, vip: &str) -> Value {
    json!({"name": name, "vip": vip, "origin": "web", "allow": ["udp/27015"], "syn_auth": "off"})
}

/// Sums of `/metrics` samples by family and label set.
pub fn metrics(node: &Node) -> BTreeMap<String, f64> {
    let text = get(node, "/metrics").body;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

pub fn passed(m: &BTreeMap<String, f64>) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with("moat_passed_packets_total{"))
        .map(|(_, v)| v)
        .sum()
}
