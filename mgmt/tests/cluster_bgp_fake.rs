//! The BGP announcer against a fake BIRD: a Unix socket in the test that
//! speaks BIRD 2's control protocol (greeting, `show protocols`, `enable`,
//! `disable`, with BIRD 2.0.12's reply lines) and logs every command with
//! its time. Shows: the first `enable` only after the hold-down; `disable`
//! when health fails and `enable` again a hold-down after it recovers; a
//! socket that is absent at start counted as errors and retried until it
//! appears; a protocol switched off behind Moat's back corrected; drain
//! and stop disabling it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::runtime::Neighbors;
use mgmt::cluster::bgp::{Bgp, BgpStatus};
use mgmt::config::BgpConfig;
use mgmt::health::{Health, Links, Parts};

const PROTO: &str = "moat_vips";

/// The fake BIRD: its protocol's state and the commands it was sent.
#[derive(Default)]
struct Fake {
    enabled: AtomicBool,
    log: Mutex<Vec<(Instant, String)>>,
}

impl Fake {
    fn reply(&self, cmd: &str) -> String {
        self.log.lock().unwrap().push((Instant::now(), cmd.to_string()));
        let on = self.enabled.load(Relaxed);
        match cmd.split_once(' ') {
            Some(("show", rest)) if rest == format!("protocols {PROTO}") => format!(
                "2002-Name       Proto      Table      State  Since         Info\n\
                 1002-{PROTO}  Static     master4    {}   17:19:25.611  \n0000 \n",
                if on { "up  " } else { "down" }
            ),
            Some(("enable", p)) if p == PROTO => {
                let was = self.enabled.swap(true, Relaxed);
                format!(
                    "{}-{PROTO}: {}\n0000 \n",
                    if was { "0010" } else { "0011" },
                    if was { "already enabled" } else { "enabled" }
                )
            }
            Some(("disable", p)) if p == PROTO => {
                let was = self.enabled.swap(false, Relaxed);
                format!(
                    "{}-{PROTO}: {}\n0000 \n",
                    if was { "0009" } else { "0008" },
                    if was { "disabled" } else { "already disabled" }
                )
            }
            _ => "9001 syntax error, unexpected CF_SYM_UNDEFINED\n".into(),
        }
    }

    /// Serves `path` until the test ends (one thread per connection).
    fn serve(self: &Arc<Self>, path: &Path) {
        let l = UnixListener::bind(path).expect("bind the fake BIRD socket");
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let me = Arc::clone(&me);
                std::thread::spawn(move || me.session(c));
            }
        });
    }

    fn session(&self, mut c: UnixStream) {
        if c.write_all(b"0001 BIRD 2.0.12 ready.\n").is_err() {
            return;
        }
        let mut r = BufReader::new(c.try_clone().expect("clone"));
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            let reply = self.reply(line.trim_end());
            if c.write_all(reply.as_bytes()).is_err() {
                return;
            }
            line.clear();
        }
    }

    /// Times of the `enable`/`disable` commands, in order.
    fn changes(&self) -> Vec<(Instant, String)> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|(_, c)| !c.starts_with("show")).cloned().collect()
    }
}

/// A node's health the test steers: one worker whose poll counter a
/// thread advances while `healthy` is set (a stalled worker fails after a
/// second, `health::STALL`).
struct Node {
    healthy: Arc<AtomicBool>,
    health: Arc<Health>,
    _dir: tempfile::TempDir,
}

fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let polls = Arc::new(AtomicU64::new(0));
    let healthy = Arc::new(AtomicBool::new(true));
    let (p, h) = (Arc::clone(&polls), Arc::clone(&healthy));
    std::thread::spawn(move || loop {
        if h.load(Relaxed) {
            p.fetch_add(1, Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    });
    let health = Health::from_parts(Parts {
        polls: Box::new(move || vec![polls.load(Relaxed)]),
        neighbors: Arc::new(Neighbors::new(&[], true)),
        hops: Vec::new(),
        links: Links::Opened,
        state_dir: dir.path().join("state"),
    });
    Node {
        healthy,
        health: Arc::new(health),
        _dir: dir,
    }
}

fn bgp(socket: PathBuf, hold_down_secs: u32) -> Bgp {
    let cfg = BgpConfig {
        bird_socket: socket.clone(),
        protocol: PROTO.into(),
        liveness_iface: None,
        hold_down_secs,
        drain_secs: 3,
    };
    Bgp::prepare(&cfg, socket).expect("prepare")
}

/// Waits up to `limit` for `f` to hold of the status.
#[track_caller]
fn wait_for(b: &Bgp, limit: Duration, what: &str, f: impl Fn(&BgpStatus) -> bool) -> BgpStatus {
    let t0 = Instant::now();
    loop {
        let s = b.shared().status();
        if f(&s) {
            return s;
        }
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn enable_after_hold_down_disable_on_failure_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("bird.ctl");
    let fake = Arc::new(Fake::default());
    fake.serve(&sock);
    let n = node();
    let mut b = bgp(sock, 1);
    let t0 = Instant::now();
    b.start(Arc::clone(&n.health)).expect("start");

    // Withdrawn (and BIRD told so) during the hold-down.
    let s = wait_for(&b, Duration::from_secs(1), "synced withdrawn", |s| s.bird_synced);
    assert_eq!(s.state, "withdrawn");
    assert!(s.announce_in_secs.is_some(), "{s:?}");
    let s = wait_for(&b, Duration::from_secs(3), "announced", |s| {
        s.state == "announced" && s.bird_synced
    });
    assert!(s.reason.contains("healthy for"), "{s:?}");
    let ch = fake.changes();
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].1, format!("enable {PROTO}"));
    let after = ch[0].0 - t0;
    println!(
        "first enable {:.0} ms after start (hold-down 1 s)",
        after.as_secs_f64() * 1e3
    );
    assert!(
        after >= Duration::from_secs(1),
        "enabled before the hold-down: {after:?}"
    );

    // The worker stalls: health fails after a second, BIRD is told.
    n.healthy.store(false, Relaxed);
    let failed = Instant::now();
    let s = wait_for(&b, Duration::from_secs(3), "withdrawn", |s| {
        s.state == "withdrawn" && s.bird_synced
    });
    assert!(s.reason.contains("worker/0"), "{s:?}");
    assert!(!fake.enabled.load(Relaxed));
    let ch = fake.changes();
    assert_eq!(ch.last().unwrap().1, format!("disable {PROTO}"), "{ch:?}");
    println!(
        "disabled {:.0} ms after the worker stalled",
        (ch[1].0 - failed).as_secs_f64() * 1e3
    );

    // Healthy again: enabled a hold-down later, not before.
    n.healthy.store(true, Relaxed);
    let back = Instant::now();
    wait_for(&b, Duration::from_secs(3), "announced again", |s| {
        s.state == "announced" && s.bird_synced
    });
    let ch = fake.changes();
    assert_eq!(ch.len(), 3, "{ch:?}");
    assert!(
        ch[2].0 - back >= Duration::from_secs(1),
        "re-announced within the hold-down"
    );
    assert_eq!(b.shared().status().state_changes, 3);

    // Switched off behind Moat's back (BIRD restarted with `disabled yes`):
    // found by the periodic check and corrected.
    fake.enabled.store(false, Relaxed);
    let s = wait_for(&b, Duration::from_secs(4), "corrected", |s| s.corrections == 1);
    assert!(fake.enabled.load(Relaxed), "{s:?}");

    // Drain: disabled at once, for good.
    b.drain("test");
    let s = wait_for(&b, Duration::from_secs(1), "draining", |s| {
        s.state == "draining" && s.bird_synced
    });
    assert!(!fake.enabled.load(Relaxed));
    assert!(s.drain_ends_in_secs.is_some_and(|d| d <= 3.0), "{s:?}");
    b.stop();
    assert_eq!(b.shared().status().bird_errors, 0);
}

#[test]
fn an_absent_socket_is_retried_until_bird_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("bird.ctl");
    let n = node();
    let mut b = bgp(sock.clone(), 0);
    b.start(Arc::clone(&n.health)).expect("start");
    let s = wait_for(&b, Duration::from_secs(3), "errors counted", |s| s.bird_errors >= 2);
    assert!(!s.bird_reachable && !s.bird_synced, "{s:?}");
    assert!(
        s.bird_last_error.as_deref().is_some_and(|e| e.contains("bird.ctl")),
        "{s:?}"
    );
    assert_eq!(s.state, "announced", "health decides the wanted state, BIRD or not");

    // BIRD comes up: enabled within the back-off (at most 5 s).
    let fake = Arc::new(Fake::default());
    fake.serve(&sock);
    let up = Instant::now();
    let s = wait_for(&b, Duration::from_secs(7), "synced", |s| s.bird_synced);
    assert!(s.bird_reachable && s.bird_last_error.is_none(), "{s:?}");
    assert!(fake.enabled.load(Relaxed));
    println!(
        "enabled {:.0} ms after the socket appeared ({} errors before)",
        up.elapsed().as_secs_f64() * 1e3,
        s.bird_errors
    );

    // Stop disables it.
    b.stop();
    assert!(!fake.enabled.load(Relaxed));
}

#[test]
fn an_unknown_protocol_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("bird.ctl");
    let fake = Arc::new(Fake::default());
    fake.serve(&sock);
    let n = node();
    let cfg = BgpConfig {
        bird_socket: sock.clone(),
        protocol: "no_such_proto".into(),
        liveness_iface: None,
        hold_down_secs: 0,
        drain_secs: 0,
    };
    let mut b = Bgp::prepare(&cfg, sock).expect("prepare");
    b.start(Arc::clone(&n.health)).expect("start");
    let s = wait_for(&b, Duration::from_secs(3), "refused", |s| s.bird_errors >= 1);
    let e = s.bird_last_error.unwrap_or_default();
    assert!(
        e.contains("refused `show protocols no_such_proto`") && e.contains("9001"),
        "{e}"
    );
    assert!(s.bird_reachable, "BIRD answered, it refused");
    b.stop();
}
