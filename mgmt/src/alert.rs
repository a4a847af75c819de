//! Alerts: JSON POSTs to the configured webhooks on attack start, attack
//! end and threshold crossings (`[[mgmt.webhooks]]`).
//!
//! Contract: [`Alerter::send`] never blocks and never fails. Each webhook
//! has its own thread and bounded queue; a full queue drops the alert and
//! counts it, so a dead or slow endpoint delays nothing but its own
//! alerts. Each alert is tried `1 + retries` times with exponential
//! back-off (`base`, `2·base`, `4·base`, ... capped at [`MAX_BACKOFF`]);
//! each attempt is bounded by the webhook's timeout. A 2xx answer is a
//! delivery; anything else (no connection, timeout, other status) is
//! retried.
//!
//! The client is `ureq`: a blocking client is what a thread of its own
//! needs, with no async runtime to carry (reqwest needs tokio even for its
//! blocking API). `https://` webhooks go through rustls with the webpki
//! root certificates. Redirects are never followed: a webhook answering
//! 3xx has not taken the alert (the attempt failed and is retried), and a
//! redirect cannot send the alert on to another host, an internal one
//! say.
//!
//! The URL is validated with the config (`config::detect::webhook_url`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{AlertEvent, WebhookConfig};

/// Alerts waiting per webhook before new ones are dropped.
pub const QUEUE: usize = 256;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counters of all webhooks together.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alerts delivered (2xx).
    pub sent: AtomicU64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: AtomicU64,
    /// Alerts given up after their last attempt.
    pub given_up: AtomicU64,
    /// Alerts dropped because a webhook's queue was full.
    pub dropped: AtomicU64,
    /// Alerts queued or being delivered.
    pending: AtomicU64,
}

struct Hook {
    events: Vec<AlertEvent>,
    tx: SyncSender<Arc<str>>,
}

/// The webhooks' senders (see the module contract).
pub struct Alerter {
    hooks: Vec<Hook>,
    stats: Arc<AlertStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("webhooks", &self.hooks.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Alerter {
    /// Starts one thread per webhook; `base` is the first back-off.
    pub fn start(hooks: &[WebhookConfig], base: Duration) -> Alerter {
        Self::start_counting(hooks, base, Arc::new(AlertStats::default()))
    }

    /// [`Alerter::start`] counting into `stats`: a new set of webhooks (a
    /// SIGHUP reload) keeps the counters of the one it replaces, so the
    /// metrics never go backwards.
    pub fn start_counting(hooks: &[WebhookConfig], base: Duration, stats: Arc<AlertStats>) -> Alerter {
        let stop = Arc::new(AtomicBool::new(false));
        let mut a = Alerter {
            hooks: Vec::new(),
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for (i, h) in hooks.iter().enumerate() {
            let (tx, rx) = sync_channel(QUEUE);
            let w = Worker {
                url: h.url.clone(),
                agent: agent(Duration::from_millis(h.timeout_ms.into())),
                retries: h.retries,
                base,
                stats: Arc::clone(&stats),
                stop: Arc::clone(&stop),
            };
            let t = std::thread::Builder::new()
                .name(format!("moat-webhook{i}"))
                .spawn(move || w.run(rx));
            match t {
                Ok(t) => {
                    a.threads.push(t);
                    a.hooks.push(Hook {
                        events: h.events.clone(),
                        tx,
                    });
                }
                Err(e) => tracing::error!("webhook {}: cannot start its thread: {e}", h.url),
            }
        }
        a
    }

    pub fn stats(&self) -> &AlertStats {
        &self.stats
    }

    /// The counters, to hand to the alerter that replaces this one.
    pub fn shared_stats(&self) -> Arc<AlertStats> {
        Arc::clone(&self.stats)
    }

    /// Queues `body` (with `"event"` set) for every webhook that wants
    /// `event`; never blocks.
    pub fn send(&self, event: AlertEvent, mut body: Value) {
        if let Value::Object(m) = &mut body {
            m.insert("event".into(), Value::from(event.as_str()));
        }
        let text: Arc<str> = Arc::from(body.to_string());
        for h in self.hooks.iter().filter(|h| h.events.contains(&event)) {
            self.stats.pending.fetch_add(1, Relaxed);
            match h.tx.try_send(Arc::clone(&text)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.stats.pending.fetch_sub(1, Relaxed);
                    self.stats.dropped.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Waits until every queued alert is delivered or given up, at most
    /// `limit`; returns whether the queues emptied.
    pub fn flush(&self, limit: Duration) -> bool {
        let t0 = Instant::now();
        while self.stats.pending.load(Relaxed) > 0 {
            if t0.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for Alerter {
    /// Stops the threads: back-off waits end at once, an attempt under way
    /// ends within its timeout. Does not wait for them.
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        self.hooks.clear();
        self.threads.clear();
    }
}

/// The HTTP client of one webhook: each attempt bounded by `timeout`, no
/// redirect followed.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).redirects(0).build()
}

struct Worker {
    url: String,
    agent: ureq::Agent,
    retries: u32,
    base: Duration,
    stats: Arc<AlertStats>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(self, rx: Receiver<Arc<str>>) {
        while let Ok(body) = rx.recv() {
            self.deliver(&body);
            self.stats.pending.fetch_sub(1, Relaxed);
        }
    }

    fn deliver(&self, body: &str) {
        for attempt in 0..=self.retries {
            if self.stop.load(Relaxed) {
                break;
            }
            let res = self
                .agent
                .post(&self.url)
                .set("content-type", "application/json")
                .send_string(body);
            let why = match res {
                Ok(r) if (200..300).contains(&r.status()) => {
                    self.stats.sent.fetch_add(1, Relaxed);
                    return;
                }
                Ok(r) => format!("answered {} {}", r.status(), r.status_text()),
                Err(ureq::Error::Status(code, _)) => format!("answered {code}"),
                Err(e) => e.to_string(),
            };
            self.stats.failed_attempts.fetch_add(1, Relaxed);
            if attempt == self.retries {
                tracing::warn!(
                    "webhook {}: alert given up after {} attempt(s): {why}",
                    self.url,
                    attempt + 1
                );
                break;
            }
            self.sleep(backoff(self.base, attempt));
        }
        self.stats.given_up.fetch_add(1, Relaxed);
    }

    /// Sleeps `d` in short steps, ending early when the alerter stops.
    fn sleep(&self, d: Duration) {
        let t0 = Instant::now();
        while !self.stop.load(Relaxed) && t0.elapsed() < d {
            std::thread::sleep((d - t0.elapsed()).min(Duration::from_millis(20)));
        }
    }
}

/// The wait after failed attempt number `attempt` (0-based).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.min(16)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A local HTTP listener answering `statuses` in turn (then 200) and
    /// recording each request's body and arrival time.
    fn listener(statuses: Vec<u16>) -> (String, Receiver<(Instant, String)>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", l.local_addr().expect("addr"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let _ = tx.send((Instant::now(), String::from_utf8_lossy(&body).into_owned()));
                let code = statuses.next().unwrap_or(200);
                let _ = write!(s, "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        (url, rx)
    }

    fn hook(url: &str, retries: u32) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            events: AlertEvent::ALL.to_vec(),
            timeout_ms: 500,
            retries,
        }
    }

    #[test]
    fn urls() {
        use crate::config::detect::webhook_url;
        assert!(webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(webhook_url("http://alerts.example").is_ok());
        assert!(webhook_url("https://alerts.example/hook").is_ok());
        assert!(webhook_url("https://[::1]:8443/x").is_ok());
        assert!(webhook_url("http://[::1]:9/x").is_ok());
        assert!(webhook_url("http://[::1]/x").is_ok());
        assert!(webhook_url("http://[::1/x").is_err());
        assert!(webhook_url("ftp://x/").unwrap_err().contains("scheme ftp"));
        assert!(webhook_url("http://").unwrap_err().contains("empty host"));
        assert!(webhook_url("http://u:p@x/").unwrap_err().contains("credentials"));
        assert!(webhook_url("http://x:0/").unwrap_err().contains("bad port"));
        assert!(webhook_url("http://x:99999/").is_err());
    }

    /// A webhook answering 302 toward another (internal) listener: the
    /// redirect is not followed, the attempt counts as failed.
    #[test]
    fn redirects_are_not_followed() {
        let (inner, inner_rx) = listener(vec![]);
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", l.local_addr().expect("addr"));
        let hits = Arc::new(AtomicU64::new(0));
        let h = Arc::clone(&hits);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                h.fetch_add(1, Relaxed);
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let _ = write!(
                    s,
                    "HTTP/1.1 302 Found\r\nlocation: {inner}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        let a = Alerter::start(&[hook(&url, 1)], Duration::from_millis(10));
        a.send(AlertEvent::AttackStart, serde_json::json!({"secret": "s"}));
        assert!(a.flush(Duration::from_secs(10)));
        assert_eq!(hits.load(Relaxed), 2, "both attempts reached the webhook");
        assert_eq!(a.stats().given_up.load(Relaxed), 1, "a 302 is not a delivery");
        assert_eq!(a.stats().sent.load(Relaxed), 0);
        assert!(
            inner_rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the redirect target was not hit"
        );
    }

    /// An `https://` webhook is tried with TLS: the listener's first bytes
    /// are a TLS handshake record (a ClientHello).
    #[test]
    fn https_webhooks_speak_tls() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}/hook", l.local_addr().expect("addr"));
        assert!(crate::config::detect::webhook_url(&url).is_ok());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Some(Ok(mut s)) = l.incoming().next() {
                let mut head = [0u8; 3];
                let _ = s.read_exact(&mut head);
                let _ = tx.send(head);
            }
        });
        let a = Alerter::start(&[hook(&url, 0)], Duration::from_millis(10));
        a.send(AlertEvent::AttackEnd, serde_json::json!({}));
        let head = rx.recv_timeout(Duration::from_secs(5)).expect("a connection");
        // Content type 22 (handshake), TLS major version 3 (RFC 8446 §5.1).
        assert_eq!(head[..2], [0x16, 0x03], "{head:?}");
        assert!(a.flush(Duration::from_secs(5)));
        assert_eq!(a.stats().given_up.load(Relaxed), 1, "no certificate, no delivery");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 0), b);
        assert_eq!(backoff(b, 3), Duration::from_millis(800));
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
    }

    #[test]
    fn retries_with_backoff_until_delivered() {
        let (url, rx) = listener(vec![500, 503]);
        let a = Alerter::start(&[hook(&url, 4)], Duration::from_millis(50));
        let t0 = Instant::now();
        a.send(
            AlertEvent::AttackStart,
            serde_json::json!({"attack_uuid": "u-1", "service": "web"}),
        );
        assert!(a.flush(Duration::from_secs(10)), "delivered in time");
        let got: Vec<(Instant, String)> = rx.try_iter().collect();
        assert_eq!(got.len(), 3, "two failures then a success");
        for (_, b) in &got {
            let v: Value = serde_json::from_str(b).expect("json body");
            assert_eq!(v["attack_uuid"], "u-1");
            assert_eq!(v["event"], "attack_start");
        }
        // Back-off: 50 ms after the first failure, 100 ms after the second.
        assert!(got[1].0 - got[0].0 >= Duration::from_millis(45));
        assert!(got[2].0 - got[1].0 >= Duration::from_millis(95));
        assert!(got[2].0 - t0 < Duration::from_secs(5));
        let s = a.stats();
        assert_eq!(s.sent.load(Relaxed), 1);
        assert_eq!(s.failed_attempts.load(Relaxed), 2);
        assert_eq!(s.given_up.load(Relaxed), 0);
    }

    #[test]
    fn gives_up_after_the_last_retry() {
        let (url, rx) = listener(vec![500; 10]);
        let a = Alerter::start(&[hook(&url, 2)], Duration::from_millis(10));
        a.send(AlertEvent::AttackEnd, serde_json::json!({}));
        assert!(a.flush(Duration::from_secs(10)));
        assert_eq!(rx.try_iter().count(), 3);
        assert_eq!(a.stats().given_up.load(Relaxed), 1);
        assert_eq!(a.stats().sent.load(Relaxed), 0);
    }

    #[test]
    fn dead_endpoint_never_blocks_and_full_queue_counts() {
        // A listener that accepts connections and never answers: every
        // attempt waits for its whole timeout.
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", l.local_addr().expect("addr"));
        let (live, rx) = listener(vec![]);
        let mut dead = hook(&url, 5);
        dead.timeout_ms = 2000;
        let a = Alerter::start(&[dead, hook(&live, 0)], Duration::from_secs(1));
        let t0 = Instant::now();
        let n = QUEUE + 50;
        for i in 0..n {
            a.send(AlertEvent::Threshold, serde_json::json!({ "i": i }));
        }
        assert!(t0.elapsed() < Duration::from_millis(500), "send never waits");
        // The dead hook holds one alert in flight and QUEUE queued: the rest
        // are dropped and counted; the live hook is not held up by it.
        let dropped = a.stats().dropped.load(Relaxed);
        assert!(dropped >= 49, "dropped {dropped}");
        let mut got = 0;
        while got < 100 {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(_) => got += 1,
                Err(e) => panic!("live webhook starved after {got}: {e}"),
            }
        }
        drop(a);
        drop(l);
    }

    #[test]
    fn events_filter_per_webhook() {
        let (url, rx) = listener(vec![]);
        let mut h = hook(&url, 0);
        h.events = vec![AlertEvent::AttackEnd];
        let a = Alerter::start(&[h], Duration::from_millis(10));
        a.send(AlertEvent::AttackStart, serde_json::json!({"n": 1}));
        a.send(AlertEvent::AttackEnd, serde_json::json!({"n": 2}));
        assert!(a.flush(Duration::from_secs(5)));
        let got: Vec<String> = rx.try_iter().map(|x| x.1).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("\"n\":2"));
    }
}
