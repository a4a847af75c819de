//! The report of an offline scrub: packets in, passes per service, replies,
//! drops per reason, top sources and top fingerprints of dropped or
//! challenged packets, and the signature rules the heavy-hitter sketch
//! proposes. Its keys are those of `--stats`, the REST API and attack
//! reports (`rx_packets`, `passed_by_service`, `drops_by_reason`,
//! `duration_secs`, top lists of [`TopSource`] and [`TopFingerprint`]).
//! Memory is bounded whatever the capture: sources and fingerprints go
//! through count-min + top-k sketches, never an unbounded map.

use std::collections::BTreeMap;
use std::net::IpAddr;

use classifier::sketch::HeavyHitters;
use classifier::DropReason;
use dataplane::pipeline::Counters;
use serde::Serialize;

use crate::report::{attack_only, TopFingerprint, TopSource};

/// Size of the top lists.
const TOP: usize = 20;
/// Count-min width and depth: 2^16 x 4 counters (1 MiB), error about
/// total / 2^16 per estimate.
const CM_WIDTH: usize = 1 << 16;
const CM_DEPTH: usize = 4;

/// A fingerprint of a suspect packet.
pub use classifier::fingerprint::Fingerprint as Fp;

/// Collects what the report needs while packets are scrubbed.
#[derive(Debug)]
pub struct Collector {
    sources: HeavyHitters<IpAddr>,
    /// Fingerprints of dropped or challenged packets.
    fingerprints: HeavyHitters<Fp>,
    /// Fingerprints of passed packets from verified sources (see
    /// [`Collector::passed`]).
    vouched: HeavyHitters<Fp>,
    pub first_ts: Option<u64>,
    pub last_ts: u64,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            sources: HeavyHitters::new(TOP * 4, CM_WIDTH, CM_DEPTH),
            fingerprints: HeavyHitters::new(TOP * 4, CM_WIDTH, CM_DEPTH),
            vouched: HeavyHitters::new(TOP * 4, CM_WIDTH, CM_DEPTH),
            first_ts: None,
            last_ts: 0,
        }
    }
}

impl Collector {
    pub fn time(&mut self, ts: u64) {
        self.first_ts.get_or_insert(ts);
        self.last_ts = self.last_ts.max(ts);
    }

    /// Records a dropped or challenged packet.
    pub fn suspect(&mut self, src: IpAddr, fp: Option<Fp>) {
        self.sources.add(src, 1);
        if let Some(fp) = fp {
            self.fingerprints.add(fp, 1);
        }
    }

    /// Records a passed packet's fingerprint. `syn_auth`: its service
    /// authenticates SYNs, so a SYN that passed came from a verified
    /// source (without it every SYN passes, an attack's too); a datagram
    /// that passed every rule vouches for its fingerprint either way.
    pub fn passed(&mut self, fp: Option<Fp>, syn_auth: bool) {
        match fp {
            Some(Fp::Tcp(_)) if !syn_auth => {}
            Some(fp) => self.vouched.add(fp, 1),
            None => {}
        }
    }

    /// Heavy fingerprints of suspect packets (≥ `min_share` of them and
    /// ≥ `min_count`) that legitimate clients do not send
    /// ([`attack_only`]: challenged SYNs whose clients answered are theirs).
    fn proposed(&self, min_count: u64, min_share: f64) -> Vec<(Fp, u64)> {
        self.fingerprints
            .propose(min_count, min_share)
            .into_iter()
            .filter(|(fp, n)| attack_only(*n, u64::from(self.vouched.sketch().estimate(fp))))
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub input: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// From the first capture timestamp to the last.
    pub duration_secs: f64,
    pub passed_packets: u64,
    /// By service name.
    pub passed_by_service: BTreeMap<String, u64>,
    pub replies: u64,
    pub mss_clamped: u64,
    pub dropped_packets: u64,
    /// Every reason, zero or not, so reports compare field by field.
    pub drops_by_reason: BTreeMap<String, u64>,
    /// Sources of dropped or challenged packets, heaviest first (count-min
    /// estimates: upper bounds).
    pub top_sources: Vec<TopSource>,
    pub top_fingerprints: Vec<TopFingerprint>,
    /// Fingerprints heavy enough to become signature rules (≥ 1 % of suspect
    /// packets and ≥ 100 packets) and sent by no legitimate client (see
    /// [`crate::report::attack_only`]).
    pub proposed_signatures: Vec<TopFingerprint>,
    pub cookie_secret: String,
}

fn fp_count((fp, packets): (Fp, u64)) -> TopFingerprint {
    let (kind, fingerprint) = match fp {
        Fp::Tcp(f) => ("tcp", f.to_string()),
        Fp::Udp(f) => ("udp", f.to_string()),
    };
    TopFingerprint {
        kind: kind.into(),
        fingerprint,
        packets,
    }
}

impl Report {
    pub fn build(input: &str, c: &Counters, col: &Collector, services: &[String], secret: &str) -> Report {
        Report {
            input: input.to_string(),
            rx_packets: c.rx_packets,
            rx_bytes: c.rx_bytes,
            duration_secs: col.first_ts.map_or(0.0, |f| (col.last_ts - f) as f64 / 1e9),
            passed_packets: c.passed.iter().sum(),
            passed_by_service: services.iter().cloned().zip(c.passed.iter().copied()).collect(),
            replies: c.replies,
            mss_clamped: c.mss_clamped,
            dropped_packets: c.dropped_total(),
            drops_by_reason: DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), c.dropped[*r as usize]))
                .collect(),
            top_sources: col
                .sources
                .top()
                .into_iter()
                .take(TOP)
                .map(|(ip, packets)| TopSource {
                    ip: ip.to_string(),
                    packets,
                })
                .collect(),
            top_fingerprints: col.fingerprints.top().into_iter().take(TOP).map(fp_count).collect(),
            proposed_signatures: col.proposed(100, 0.01).into_iter().map(fp_count).collect(),
            cookie_secret: secret.to_string(),
        }
    }

    /// A short human summary for the terminal.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} packets in {:.3} s: {} passed, {} replies, {} dropped",
            self.input, self.rx_packets, self.duration_secs, self.passed_packets, self.replies, self.dropped_packets
        );
        for (name, n) in &self.passed_by_service {
            let _ = writeln!(s, "  pass  {:<24} {}", name, n);
        }
        for (k, v) in &self.drops_by_reason {
            if *v > 0 {
                let _ = writeln!(s, "  drop  {:<24} {}", k, v);
            }
        }
        s
    }
}
