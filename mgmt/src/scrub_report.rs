//! The report of an offline scrub: drop counts per reason, passes per
//! service, top sources and top fingerprints of dropped or challenged
//! packets, and the signature rules the heavy-hitter sketch proposes.
//! Memory is bounded whatever the capture: sources and fingerprints go
//! through count-min + top-k sketches, never an unbounded map.

use std::net::IpAddr;

use classifier::fingerprint::{TcpFingerprint, UdpFingerprint};
use classifier::sketch::HeavyHitters;
use classifier::DropReason;
use dataplane::pipeline::Counters;
use serde::Serialize;

/// Size of the top lists.
const TOP: usize = 20;
/// Count-min width and depth: 2^16 x 4 counters (1 MiB), error about
/// total / 2^16 per estimate.
const CM_WIDTH: usize = 1 << 16;
const CM_DEPTH: usize = 4;

/// A fingerprint of a suspect packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fp {
    Tcp(TcpFingerprint),
    Udp(UdpFingerprint),
}

/// Collects what the report needs while packets are scrubbed.
#[derive(Debug)]
pub struct Collector {
    sources: HeavyHitters<IpAddr>,
    fingerprints: HeavyHitters<Fp>,
    pub first_ts: Option<u64>,
    pub last_ts: u64,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            sources: HeavyHitters::new(TOP * 4, CM_WIDTH, CM_DEPTH),
            fingerprints: HeavyHitters::new(TOP * 4, CM_WIDTH, CM_DEPTH),
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
}

#[derive(Debug, Serialize)]
pub struct Count<T: Serialize> {
    pub key: T,
    pub packets: u64,
}

#[derive(Debug, Serialize)]
pub struct FpCount {
    pub kind: &'static str,
    pub fingerprint: String,
    pub packets: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub input: String,
    pub packets: u64,
    pub bytes: u64,
    pub duration_s: f64,
    pub passed: u64,
    pub passed_per_service: Vec<Count<String>>,
    pub replies: u64,
    pub mss_clamped: u64,
    pub dropped: u64,
    /// Every reason, zero or not, so reports compare field by field.
    pub drops_per_reason: serde_json::Map<String, serde_json::Value>,
    /// Sources of dropped or challenged packets, heaviest first (count-min
    /// estimates: upper bounds).
    pub top_sources: Vec<Count<String>>,
    pub top_fingerprints: Vec<FpCount>,
    /// Fingerprints heavy enough to become signature rules (≥ 1 % of suspect
    /// packets and ≥ 100 packets).
    pub proposed_signatures: Vec<FpCount>,
    pub cookie_secret: String,
}

fn fp_count((fp, n): (Fp, u64)) -> FpCount {
    match fp {
        Fp::Tcp(f) => FpCount {
            kind: "tcp",
            fingerprint: f.to_string(),
            packets: n,
        },
        Fp::Udp(f) => FpCount {
            kind: "udp",
            fingerprint: f.to_string(),
            packets: n,
        },
    }
}

impl Report {
    pub fn build(input: &str, c: &Counters, col: &Collector, services: &[String], secret: &str) -> Report {
        let mut drops = serde_json::Map::new();
        for r in DropReason::ALL {
            drops.insert(r.as_str().to_string(), c.dropped[*r as usize].into());
        }
        Report {
            input: input.to_string(),
            packets: c.rx_packets,
            bytes: c.rx_bytes,
            duration_s: col.first_ts.map_or(0.0, |f| (col.last_ts - f) as f64 / 1e9),
            passed: c.passed.iter().sum(),
            passed_per_service: services
                .iter()
                .zip(&c.passed)
                .map(|(s, n)| Count {
                    key: s.clone(),
                    packets: *n,
                })
                .collect(),
            replies: c.replies,
            mss_clamped: c.mss_clamped,
            dropped: c.dropped_total(),
            drops_per_reason: drops,
            top_sources: col
                .sources
                .top()
                .into_iter()
                .take(TOP)
                .map(|(k, n)| Count {
                    key: k.to_string(),
                    packets: n,
                })
                .collect(),
            top_fingerprints: col.fingerprints.top().into_iter().take(TOP).map(fp_count).collect(),
            proposed_signatures: col.fingerprints.propose(100, 0.01).into_iter().map(fp_count).collect(),
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
            self.input, self.packets, self.duration_s, self.passed, self.replies, self.dropped
        );
        for c in &self.passed_per_service {
            let _ = writeln!(s, "  pass  {:<24} {}", c.key, c.packets);
        }
        for (k, v) in &self.drops_per_reason {
            if v.as_u64().unwrap_or(0) > 0 {
                let _ = writeln!(s, "  drop  {:<24} {}", k, v);
            }
        }
        s
    }
}
