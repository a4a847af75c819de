//! Attack reports: for each attack, its service, start, end, duration,
//! types, severity, peak rates, a per-second timeline, the top sources,
//! fingerprints and destination ports of its sampled packets (scaled by the
//! sampling rate), drops per reason and the countermeasures taken. The
//! detector fills a [`ReportBuilder`] while the attack lasts; [`store`]
//! keeps the reports as JSON files under `state_dir/attacks/`.
//!
//! Memory is bounded whatever the attack: the top lists come from
//! heavy-hitter sketches of fixed size (`classifier::sketch`), never a map
//! of addresses, and the timeline from [`timeline::Timeline`].

pub mod figures;
pub mod store;
pub mod timeline;

use core::net::IpAddr;
use std::collections::BTreeMap;

use classifier::sketch::HeavyHitters;
use classifier::synauth::flags;
use classifier::verdict::DropReason;
use dataplane::runtime::{HostPath, Sample, SampleFp, SampleVerdict};
use serde::{Deserialize, Serialize};

use crate::control::Escalation;
pub use figures::Figures;
use timeline::{Point, Timeline, MAX_POINTS};

/// Sketch size of each top list: 4096 x 4 counters (64 KiB); overcount
/// above e/4096 ≈ 0.07 % of the samples with probability e^-4 at most
/// (double hashing adds a full collision with a given heavy key with
/// probability 1/4096² per key).
const SKETCH_WIDTH: usize = 4096;
const SKETCH_DEPTH: usize = 4;

/// A source address and its estimated packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopSource {
    pub ip: String,
    pub packets: u64,
}

/// A destination port and its estimated packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopPort {
    /// `tcp`, `udp` or the protocol number.
    pub proto: String,
    pub port: u16,
    pub packets: u64,
}

/// An application-layer fingerprint (a TLS JA4, or an HTTP Host + path)
/// and its estimated packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopL7 {
    pub value: String,
    pub packets: u64,
}

/// A fingerprint (the classifier's text form) and its estimated packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopFingerprint {
    /// `tcp` (p0f-style SYN fingerprint) or `udp` (UDP and other protocols).
    pub kind: String,
    pub fingerprint: String,
    pub packets: u64,
}

/// A countermeasure as a report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Action {
    /// Unix seconds.
    pub at: u64,
    /// `escalate` or `relax`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_auth: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub deny_tcp: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub deny_udp: Vec<String>,
    /// The auto-blacklist was turned on.
    #[serde(skip_serializing_if = "core::ops::Not::not", default)]
    pub blacklist: bool,
}

impl Action {
    pub fn escalate(at: u64, e: &Escalation) -> Action {
        Action {
            at,
            action: "escalate".into(),
            syn_auth: e.syn_auth.map(|m| m.as_str().to_string()),
            deny_tcp: e.deny_tcp.iter().map(ToString::to_string).collect(),
            deny_udp: e.deny_udp.iter().map(ToString::to_string).collect(),
            blacklist: e.blacklist,
        }
    }

    pub fn relax(at: u64) -> Action {
        Action {
            at,
            action: "relax".into(),
            syn_auth: None,
            deny_tcp: Vec::new(),
            deny_udp: Vec::new(),
            blacklist: false,
        }
    }
}

/// One attack's report, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttackReport {
    pub attack_uuid: String,
    pub service: String,
    /// `ongoing`, `ended`, or `interrupted` (the node stopped during it:
    /// `end` is the stop).
    pub state: String,
    /// Unix seconds.
    pub start: u64,
    pub end: Option<u64>,
    pub duration_secs: u64,
    /// Inferred types, most packets first (`syn_flood`, `ack_flood`,
    /// `rst_flood`, `udp_flood`, `reflection`, `icmp_flood`, `fragments`,
    /// `malformed`, `volumetric`).
    pub types: Vec<String>,
    /// `low`, `middle` or `high` (FastNetMon's words): the peak over the
    /// limit that fired, below 2x, below 10x, else.
    pub attack_severity: String,
    /// What fired at the start (`pps 52000 > threshold 10000`, ...).
    pub triggers: Vec<String>,
    pub peak_pps: f64,
    pub peak_bps: f64,
    /// Packets and bytes addressed to the service during the attack.
    pub total_packets: u64,
    pub total_bytes: u64,
    pub timeline: Timeline,
    pub top_sources: Vec<TopSource>,
    pub top_fingerprints: Vec<TopFingerprint>,
    pub top_dst_ports: Vec<TopPort>,
    /// TLS client fingerprints (JA4) of the attack's flows, where
    /// first-segment inspection saw their ClientHello.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_ja4: Vec<TopL7>,
    /// HTTP Host + path of the attack's requests, where inspection saw them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_host_paths: Vec<TopL7>,
    /// Dropped packets per reason among the attack's sampled packets,
    /// scaled by the sampling rate (estimates).
    pub drops_by_reason: BTreeMap<String, u64>,
    pub countermeasures: Vec<Action>,
    /// One packet in this many was sampled; the top lists and drops are
    /// scaled by it.
    pub sample_every: u32,
    pub samples: u64,
}

/// A verified client's answer to Moat rather than a packet of its own: the
/// RST that answers a `challenge-ack` SYN-ACK (`challenge_answered`), or a
/// packet Moat replied to that is not a SYN (the ACK of `cookie-reset`,
/// ARP, neighbour discovery, the request `http-redirect` answers). Such
/// packets are neither attack evidence nor signature material.
pub fn is_answer(s: &Sample) -> bool {
    match s.verdict {
        SampleVerdict::Drop(DropReason::ChallengeAnswered) => true,
        SampleVerdict::Reply => s.proto != 6 || !flags::is_pure_syn(s.tcp_flags),
        _ => false,
    }
}

/// The running state of one attack's report.
#[derive(Debug)]
pub struct ReportBuilder {
    pub report: AttackReport,
    sources: HeavyHitters<IpAddr>,
    ports: HeavyHitters<(u8, u16)>,
    /// Fingerprints of unpassed samples (challenged or dropped).
    fps: HeavyHitters<SampleFp>,
    /// Fingerprints of passed samples from verified sources (see
    /// [`ReportBuilder::sample`]): what legitimate clients send.
    vouched: HeavyHitters<SampleFp>,
    /// TLS JA4 and HTTP Host + path of the samples' flows, where the
    /// worker knew them (first-segment inspection).
    ja4: HeavyHitters<[u8; 36]>,
    host_paths: HeavyHitters<HostPath>,
    drops: [u64; DropReason::COUNT],
    top_k: usize,
}

/// The most verified passes a deny signature may cost, as a share of its
/// fingerprint's unpassed packets (see [`attack_only`]).
pub const MAX_VOUCHED_SHARE: f64 = 0.01;

/// Whether a fingerprint seen on `unpassed` packets (challenged or dropped)
/// and on `vouched` packets that passed from verified sources is the
/// attack's alone, and so may become a deny signature.
///
/// A challenged SYN says nothing by itself: every new legitimate client is
/// challenged once. What tells an attack from clients is what follows: a
/// real stack answers the challenge and its next SYN passes, so an
/// ordinary Linux, Windows or macOS fingerprint has about as many verified
/// passes as challenges, while spoofed SYNs are never answered and their
/// fingerprint never passes. A rule denying a fingerprint drops its
/// verified clients too, so it is proposed only when they are fewer than
/// [`MAX_VOUCHED_SHARE`] of its unpassed packets (sampling and the
/// count-min's overestimates of `vouched` only make this stricter).
pub fn attack_only(unpassed: u64, vouched: u64) -> bool {
    (vouched as f64) < unpassed as f64 * MAX_VOUCHED_SHARE
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => n.to_string(),
    }
}

impl ReportBuilder {
    pub fn new(attack_uuid: String, service: &str, start: u64, sample_every: u32, top_k: usize) -> Self {
        // Keep more keys than reported, so that the reported ones are
        // the true heaviest even when ranks close to the cut trade places.
        let kept = (top_k * 2).max(16);
        ReportBuilder {
            report: AttackReport {
                attack_uuid,
                service: service.to_string(),
                state: "ongoing".into(),
                start,
                end: None,
                duration_secs: 0,
                types: Vec::new(),
                attack_severity: "low".into(),
                triggers: Vec::new(),
                peak_pps: 0.0,
                peak_bps: 0.0,
                total_packets: 0,
                total_bytes: 0,
                timeline: Timeline::new(MAX_POINTS),
                top_sources: Vec::new(),
                top_fingerprints: Vec::new(),
                top_dst_ports: Vec::new(),
                top_ja4: Vec::new(),
                top_host_paths: Vec::new(),
                drops_by_reason: BTreeMap::new(),
                countermeasures: Vec::new(),
                sample_every,
                samples: 0,
            },
            sources: HeavyHitters::new(kept, SKETCH_WIDTH, SKETCH_DEPTH),
            ports: HeavyHitters::new(kept, SKETCH_WIDTH, SKETCH_DEPTH),
            fps: HeavyHitters::new(kept, SKETCH_WIDTH, SKETCH_DEPTH),
            vouched: HeavyHitters::new(kept, SKETCH_WIDTH, SKETCH_DEPTH),
            ja4: HeavyHitters::new(kept, SKETCH_WIDTH, SKETCH_DEPTH),
            host_paths: HeavyHitters::new(kept, SKETCH_WIDTH, SKETCH_DEPTH),
            drops: [0; DropReason::COUNT],
            top_k,
        }
    }

    /// The figures of second `t` of the attack.
    pub fn second(&mut self, t: u64, f: &Figures) {
        let r = &mut self.report;
        r.timeline.push(t, *f);
        r.peak_pps = r.peak_pps.max(f.pps);
        r.peak_bps = r.peak_bps.max(f.bps);
        r.total_packets += f.pps.round() as u64;
        r.total_bytes += (f.bps / 8.0).round() as u64;
        r.duration_secs = t.saturating_sub(r.start) + 1;
    }

    /// One sampled packet of the attacked service. `syn_auth`: SYN
    /// authentication was in force for it, so a SYN that passed came from a
    /// verified source (without it every SYN passes, the attack's too). A
    /// datagram that passed passed every rule of the service: it vouches
    /// for its fingerprint either way.
    pub fn sample(&mut self, s: &Sample, syn_auth: bool) {
        self.report.samples += 1;
        self.sources.add(s.src, 1);
        if s.dst_port != 0 {
            self.ports.add((s.proto, s.dst_port), 1);
        }
        match (s.verdict, s.fp) {
            (_, SampleFp::None) => {}
            _ if is_answer(s) => {}
            (SampleVerdict::Pass, SampleFp::Tcp(_)) if !syn_auth => {}
            (SampleVerdict::Pass, fp) => self.vouched.add(fp, 1),
            (_, fp) => self.fps.add(fp, 1),
        }
        if let SampleVerdict::Drop(r) = s.verdict {
            self.drops[r as usize] += 1;
        }
        // A CC attack's requests pass or not; either way they are its
        // fingerprints (a verified client's answer to a challenge has no
        // flow, so none).
        if let Some(j) = s.l7.ja4 {
            self.ja4.add(j, 1);
        }
        if let Some(h) = s.l7.host_path {
            self.host_paths.add(h, 1);
        }
    }

    /// Heavy-hitter fingerprints among the attack's unpassed samples (at
    /// least `min_share` of them and `min_count` samples) that are the
    /// attack's alone ([`attack_only`]).
    pub fn proposed(&self, min_count: u64, min_share: f64) -> Vec<SampleFp> {
        self.fps
            .propose(min_count, min_share)
            .into_iter()
            .filter(|(k, n)| attack_only(*n, u64::from(self.vouched.sketch().estimate(k))))
            .map(|(k, _)| k)
            .take(self.top_k)
            .collect()
    }

    /// Unpassed SYN samples explained by verified clients: for each
    /// fingerprint that passed from verified sources, the smaller of its
    /// verified passes and its unpassed samples (each legitimate client's
    /// challenged SYN is followed by one that passes). The heaviest
    /// fingerprints are kept, and legitimate clients share a few (one per
    /// operating system), so this is bounded memory.
    pub fn answered_syns(&self) -> u64 {
        self.vouched
            .top()
            .into_iter()
            .filter(|(k, _)| matches!(k, SampleFp::Tcp(_)))
            .map(|(k, n)| n.min(u64::from(self.fps.sketch().estimate(&k))))
            .sum()
    }

    /// Updates the top lists and drops from the sketches.
    pub fn refresh(&mut self) {
        let scale = u64::from(self.report.sample_every.max(1));
        let k = self.top_k;
        let r = &mut self.report;
        r.top_sources = self
            .sources
            .top()
            .into_iter()
            .take(k)
            .map(|(ip, n)| TopSource {
                ip: ip.to_string(),
                packets: n * scale,
            })
            .collect();
        r.top_dst_ports = self
            .ports
            .top()
            .into_iter()
            .take(k)
            .map(|((proto, port), n)| TopPort {
                proto: proto_name(proto),
                port,
                packets: n * scale,
            })
            .collect();
        r.top_fingerprints = self
            .fps
            .top()
            .into_iter()
            .take(k)
            .filter_map(|(fp, n)| {
                let (kind, text) = match fp {
                    SampleFp::Tcp(t) => ("tcp", t.to_string()),
                    SampleFp::Udp(u) => ("udp", u.to_string()),
                    SampleFp::None => return None,
                };
                Some(TopFingerprint {
                    kind: kind.into(),
                    fingerprint: text,
                    packets: n * scale,
                })
            })
            .collect();
        r.top_ja4 = self
            .ja4
            .top()
            .into_iter()
            .take(k)
            .map(|(j, n)| TopL7 {
                value: String::from_utf8_lossy(&j).into_owned(),
                packets: n * scale,
            })
            .collect();
        r.top_host_paths = self
            .host_paths
            .top()
            .into_iter()
            .take(k)
            .map(|(h, n)| TopL7 {
                value: h.text(),
                packets: n * scale,
            })
            .collect();
        r.drops_by_reason = DropReason::ALL
            .iter()
            .filter(|d| self.drops[**d as usize] > 0)
            .map(|d| (d.as_str().to_string(), self.drops[*d as usize] * scale))
            .collect();
    }

    /// The report as it stands (top lists refreshed, the timeline's
    /// partial point included).
    pub fn snapshot(&mut self) -> AttackReport {
        self.refresh();
        let mut r = self.report.clone();
        r.timeline.points = self.report.timeline.all();
        r
    }

    /// The attack ended at `end` (Unix seconds, its last abnormal second).
    pub fn finish(&mut self, end: u64) {
        self.report.state = "ended".into();
        self.report.end = Some(end);
        self.report.duration_secs = end.saturating_sub(self.report.start) + 1;
    }

    /// Points of the timeline so far.
    pub fn points(&self) -> Vec<Point> {
        self.report.timeline.all()
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;

    fn sample(src: [u8; 4], port: u16, verdict: SampleVerdict) -> Sample {
        Sample {
            ts: 0,
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst_port: port,
            proto: 17,
            tcp_flags: 0,
            len: 100,
            service: Some(0),
            verdict,
            fp: SampleFp::None,
            fragment: false,
            l7: dataplane::runtime::L7Fp::default(),
        }
    }

    /// 140,000 distinct sources (a spoofed flood) among a few heavy ones:
    /// the top list is bounded at top_k and finds the heavy ones; counts
    /// are scaled by the sampling rate.
    /// Synthetic samples as the workers will fill them once first-segment
    /// inspection is on (`Taken::with_l7`): the heaviest JA4 and Host +
    /// path come out first, scaled by the sampling rate.
    #[test]
    fn l7_fingerprints_are_heavy_hitters_of_the_report() {
        use dataplane::runtime::L7Fp;
        let bot_ja4 = *b"t13d1516h2_8daaf6152771_02713d6af862";
        let human_ja4 = *b"t13d1715h2_5b57614c22b0_3d5424432f57";
        let login = HostPath::new(b"www.example.com", b"/login");
        let long = HostPath::new(b"www.example.com", &[b'a'; 100]);
        let mut b = ReportBuilder::new("u".into(), "web", 0, 10, 5);
        let with = |ja4, hp| Sample {
            proto: 6,
            l7: L7Fp {
                ja4: Some(ja4),
                host_path: Some(hp),
            },
            ..sample([198, 51, 100, 1], 443, SampleVerdict::Pass)
        };
        for _ in 0..90 {
            b.sample(&with(bot_ja4, login), true);
        }
        for _ in 0..10 {
            b.sample(&with(human_ja4, long), true);
        }
        b.sample(&sample([198, 51, 100, 2], 443, SampleVerdict::Pass), true);
        let r = b.snapshot();
        let ja4: Vec<(&str, u64)> = r.top_ja4.iter().map(|t| (t.value.as_str(), t.packets)).collect();
        assert_eq!(
            ja4,
            [
                ("t13d1516h2_8daaf6152771_02713d6af862", 900),
                ("t13d1715h2_5b57614c22b0_3d5424432f57", 100)
            ]
        );
        assert_eq!(r.top_host_paths[0].value, "www.example.com/login");
        assert_eq!(r.top_host_paths[0].packets, 900);
        assert_eq!(r.top_host_paths[1].value, format!("www.example.com{}…", "a".repeat(33)));
        // In the stored JSON only when present.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["top_ja4"][0]["value"], "t13d1516h2_8daaf6152771_02713d6af862");
        let plain = ReportBuilder::new("v".into(), "web", 0, 1, 5).snapshot();
        assert!(serde_json::to_value(&plain).unwrap().get("top_ja4").is_none());
        assert_ne!(
            HostPath::new(b"a", b"/x").hash,
            HostPath::new(b"a/", b"x").hash,
            "host and path are kept apart"
        );
    }

    #[test]
    fn top_k_bounded_and_scaled() {
        let mut b = ReportBuilder::new("u".into(), "web", 100, 64, 5);
        let heavy = [[198, 51, 100, 1], [198, 51, 100, 2], [198, 51, 100, 3]];
        for i in 0..200_000u32 {
            let src = if i % 10 < 3 {
                heavy[(i % 10) as usize]
            } else {
                i.to_be_bytes()
            };
            b.sample(&sample(src, 53, SampleVerdict::Drop(DropReason::ReflectionPort)), true);
        }
        b.refresh();
        let r = &b.report;
        assert_eq!(r.top_sources.len(), 5);
        for (t, h) in r.top_sources.iter().zip(heavy) {
            assert!(heavy.iter().any(|x| Ipv4Addr::from(*x).to_string() == t.ip), "{t:?}");
            assert!(t.packets >= 20_000 * 64, "{t:?} {h:?}");
        }
        assert_eq!(r.top_dst_ports.len(), 1);
        assert_eq!(r.top_dst_ports[0].proto, "udp");
        assert_eq!(r.top_dst_ports[0].packets, 200_000 * 64);
        assert_eq!(r.drops_by_reason["reflection_port"], 200_000 * 64);
        assert_eq!(r.samples, 200_000);
    }

    #[test]
    fn seconds_make_peaks_totals_and_duration() {
        let mut b = ReportBuilder::new("u".into(), "web", 100, 1, 5);
        for (t, pps) in [(100, 5000.0), (101, 9000.0), (102, 7000.0)] {
            b.second(
                t,
                &Figures {
                    pps,
                    bps: pps * 800.0,
                    ..Figures::default()
                },
            );
        }
        assert_eq!(b.report.peak_pps, 9000.0);
        assert_eq!(b.report.peak_bps, 9000.0 * 800.0);
        assert_eq!(b.report.total_packets, 21_000);
        assert_eq!(b.report.duration_secs, 3);
        b.finish(102);
        let r = b.snapshot();
        assert_eq!((r.state.as_str(), r.end), ("ended", Some(102)));
        assert_eq!(r.timeline.points.len(), 3);
    }
}
