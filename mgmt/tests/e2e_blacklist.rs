//! End to end, live: the auto-blacklist between real Linux peers, in the
//! topology of `mgmt/tests/e2e_live.rs` (`tests/e2e/topology.sh`), with
//! `examples/e2e-netns.toml` plus `src_pps = 20` and
//! `[services.blacklist] violations = 3, window_secs = 10, ban_secs = 6` on
//! service "web" (challenge-ack).
//!
//! 1. The client 10.10.0.2 fetches the page (and so proves its address).
//! 2. It then sends TCP segments to the service at 200/s (a bounded
//!    hping3 run from its own address), ten times its `src_pps`: Moat notes
//!    the violations of a verified source and bans it. The API lists the
//!    ban (`src_pps`), the client's `curl` fails, Moat counts
//!    `blacklisted` drops.
//! 3. `DELETE /api/v1/blacklist/10.10.0.2` lifts it: the client fetches
//!    the page again.
//! 4. Banned again the same way (another client, 10.10.0.4, still fetches
//!    the page meanwhile), the client is released by itself after
//!    `ban_secs`.
//!
//! Needs root, `ip netns`, Open vSwitch, hping3, curl and python3; skips
//! without them unless `MOAT_E2E=1`. Run under
//! `flock /tmp/moat-netns.lock`. Namespaces, daemons and Moat are removed
//! by drop guards, on failure too; every command runs under `timeout`, the
//! floods are bounded by count and time and aim only at these namespaces.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::netns::{describe, Moat, Topology};
use common::{can_run, missing_prerequisite, root};
use serde_json::Value;

const TOOLS: [&str; 12] = [
    "ip",
    "sysctl",
    "ovsdb-tool",
    "ovsdb-server",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "hping3",
    "curl",
    "python3",
    "timeout",
    "setsid",
];
const CLIENT: &str = "10.10.0.2";
const CLIENT2: &str = "10.10.0.4";
const VIP: &str = "203.0.113.10";
const TOKEN: &str = "e2e-blacklist-token-0123456789abcdef";
const API: &str = "http://127.0.0.1:9180";
const BAN_SECS: u64 = 6;

/// What this test asks of the topology beyond the shared harness.
trait BlacklistTopology {
    fn fetch(&self, src: &str, secs: u64) -> Output;
    fn api(&self, method: &str, path: &str) -> (u16, Value);
    fn over_rate(&self, src: &str) -> String;
    fn served_page(&self) -> String;
}

impl BlacklistTopology for Topology {
    /// `curl` of the page from `src` (at most `secs` seconds).
    fn fetch(&self, src: &str, secs: u64) -> Output {
        let t = secs.to_string();
        self.exec(
            &self.inet,
            secs + 5,
            &[
                "curl",
                "-sS",
                "--max-time",
                &t,
                "--interface",
                src,
                &format!("http://{VIP}/"),
            ],
        )
    }

    /// An API request inside Moat's namespace: (status, body).
    fn api(&self, method: &str, path: &str) -> (u16, Value) {
        let auth = format!("Authorization: Bearer {TOKEN}");
        let url = format!("{API}{path}");
        let out = self.exec(
            &self.moat,
            15,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-X",
                method,
                "-H",
                &auth,
                "-w",
                "\n%{http_code}",
                &url,
            ],
        );
        assert!(out.status.success(), "{}", describe("API curl", &out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status = code.trim().parse().unwrap_or(0);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// `src` sends 200 TCP ACKs to the service at 200/s (hping3, bounded).
    fn over_rate(&self, src: &str) -> String {
        let out = self.exec(
            &self.inet,
            20,
            &[
                "hping3", "-A", "-a", src, "-s", "40000", "-p", "80", "-c", "200", "-i", "u5000", VIP,
            ],
        );
        describe("hping3", &out)
    }

    fn served_page(&self) -> String {
        fs::read_to_string(self.state.join("www/index.html")).expect("served page")
    }
}

/// `blacklisted` drops in the last stats snapshot.
fn blacklisted(moat: &Moat) -> u64 {
    moat.stats()["drops_by_reason"]["blacklisted"].as_u64().unwrap_or(0)
}

/// The shipped example with the blacklist on service "web".
fn config(dir: &Path) -> PathBuf {
    let text = fs::read_to_string(root().join("examples/e2e-netns.toml")).unwrap();
    let web = "allow = [\"tcp/80\", \"udp/7777\", \"icmp\"]\nsyn_auth = \"challenge-ack\"\n";
    assert!(text.contains(web), "examples/e2e-netns.toml changed");
    let text = text.replacen(
        web,
        &format!(
            "{web}\n[services.limits]\nsrc_pps = 20\n\n[services.blacklist]\nviolations = 3\nwindow_secs = 10\nban_secs = {BAN_SECS}\n"
        ),
        1,
    );
    let p = dir.join("e2e-blacklist.toml");
    fs::write(&p, text).unwrap();
    p
}

/// Waits (bounded) until `src` is listed as banned; returns its ban.
fn wait_banned(topo: &Topology, src: &str, hping: &str, moat: &Moat) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, ban) = topo.api("GET", &format!("/api/v1/blacklist/{src}"));
        if status == 200 {
            return ban;
        }
        assert!(
            Instant::now() < deadline,
            "{src} not banned after breaking src_pps (last answer {status} {ban})\n{hping}\n{}",
            moat.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_source_that_keeps_breaking_src_pps_is_banned_lifted_and_released() {
    if !can_run(
        "blacklist end-to-end test",
        missing_prerequisite(&TOOLS, "openvswitch-switch hping3 curl iproute2 procps python3"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let topo = Topology::up("bl", &dir.path().join("topo"));
    let moat = Moat::start(
        &topo.moat,
        &config,
        dir.path(),
        "API listening",
        &[("MOAT_API_TOKEN", TOKEN)],
    );
    let page = topo.served_page();
    let fetched = |src: &str, secs: u64| {
        let out = topo.fetch(src, secs);
        (out.status.success() && out.stdout == page.as_bytes(), out)
    };
    // ARP toward the origin and the client's challenge: a few tries.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fetched(CLIENT, 5).0 {
        assert!(
            Instant::now() < deadline,
            "1: {CLIENT} never fetched the page\n{}",
            moat.logs()
        );
    }
    assert!(fetched(CLIENT2, 10).0, "1: {CLIENT2} did not fetch the page");

    // 2. Over its rate: banned.
    let hping = topo.over_rate(CLIENT);
    let ban = wait_banned(&topo, CLIENT, &hping, &moat);
    assert_eq!(ban["kind"], "src_pps", "{ban}");
    assert_eq!(ban["service"], "web", "{ban}");
    let (_, list) = topo.api("GET", "/api/v1/blacklist?q=10.10.0.");
    assert_eq!(list["total"], 1, "{list}");
    let before = blacklisted(&moat);
    let (ok, out) = fetched(CLIENT, 2);
    assert!(
        !ok,
        "2: the banned client still fetched the page\n{}",
        describe("curl", &out)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while blacklisted(&moat) <= before {
        assert!(
            Instant::now() < deadline,
            "2: no blacklisted drops counted\n{}",
            moat.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 3. Lifted through the API.
    let (status, _) = topo.api("DELETE", &format!("/api/v1/blacklist/{CLIENT}"));
    assert_eq!(status, 204);
    assert_eq!(topo.api("GET", &format!("/api/v1/blacklist/{CLIENT}")).0, 404);
    let (ok, out) = fetched(CLIENT, 10);
    assert!(
        ok,
        "3: the lifted client could not fetch the page\n{}",
        describe("curl", &out)
    );

    // 4. Banned again, released by itself after ban_secs.
    let hping = topo.over_rate(CLIENT);
    let ban = wait_banned(&topo, CLIENT, &hping, &moat);
    let banned = Instant::now();
    let (ok, _) = fetched(CLIENT, 1);
    assert!(!ok, "4: the banned client still fetched the page");
    let (ok, out) = fetched(CLIENT2, 3);
    assert!(ok, "4: another client was affected\n{}", describe("curl", &out));
    let length = ban["expires_at"].as_u64().unwrap() - ban["banned_at"].as_u64().unwrap();
    assert_eq!(length, BAN_SECS * 1000, "{ban}");
    std::thread::sleep(Duration::from_secs(BAN_SECS).saturating_sub(banned.elapsed()) + Duration::from_millis(300));
    let (ok, out) = fetched(CLIENT, 10);
    assert!(ok, "4: not released after ban_secs\n{}", describe("curl", &out));
    let (status, _) = topo.api("GET", &format!("/api/v1/blacklist/{CLIENT}"));
    assert_eq!(status, 404, "4: still listed after ban_secs");
    drop(moat);
}
