//! The detector driven second by second with synthetic counters: hysteresis,
//! baseline, threshold crossings, type inference, escalation and relax.

use core::net::{IpAddr, Ipv4Addr};

use classifier::fingerprint::TcpFingerprint;
use classifier::policy::SynAuth;
use classifier::synauth::flags;
use classifier::verdict::DropReason;
use dataplane::pipeline::ServiceCounters;
use dataplane::runtime::{Sample, SampleFp, SampleVerdict};

use super::*;

/// Records every call.
#[derive(Debug, Default)]
struct Recording {
    calls: Vec<(String, Option<Escalation>)>,
}

impl Countermeasures for Recording {
    fn escalate(&mut self, service: &str, e: &Escalation) {
        self.calls.push((service.into(), Some(e.clone())));
    }
    fn relax(&mut self, service: &str) {
        self.calls.push((service.into(), None));
    }
}

fn cfg() -> DetectionConfig {
    DetectionConfig {
        baseline_multiplier: 0,
        start_after_secs: 3,
        end_after_secs: 4,
        report_every_secs: 2,
        ..DetectionConfig::default()
    }
}

fn svc(name: &str, pps: u64, on_attack: OnAttackConfig) -> ServicePolicy {
    ServicePolicy {
        name: name.into(),
        syn_auth: false,
        thresholds: Thresholds {
            threshold_pps: Some(pps),
            ..Thresholds::default()
        },
        on_attack,
    }
}

/// Feeds one service's counters second by second (rates in pps, SYN share).
struct Feed {
    d: Detector,
    t: u64,
    c: ServiceCounters,
    cm: Recording,
}

impl Feed {
    fn new(d: Detector) -> Self {
        let mut f = Feed {
            d,
            t: 1_000,
            c: ServiceCounters::default(),
            cm: Recording::default(),
        };
        let c = [f.c];
        assert!(f.d.tick(f.t, 1.0, &c, &[], &mut f.cm).is_empty());
        f
    }

    fn second(&mut self, pps: u64, syn_share: f64, samples: &[Sample]) -> Vec<Event> {
        self.t += 1;
        let syns = (pps as f64 * syn_share) as u64;
        self.c.packets += pps;
        self.c.bytes += pps * 60;
        self.c.tcp += pps;
        self.c.syns += syns;
        self.c.dropped += syns;
        let c = [self.c];
        self.d.tick(self.t, 1.0, &c, samples, &mut self.cm)
    }

    fn quiet(&mut self, n: usize, pps: u64) -> Vec<Event> {
        (0..n).flat_map(|_| self.second(pps, 0.0, &[])).collect()
    }
}

fn starts(ev: &[Event]) -> Vec<&AttackReport> {
    ev.iter()
        .filter_map(|e| match e {
            Event::AttackStart(r, _) => Some(r),
            _ => None,
        })
        .collect()
}

fn ends(ev: &[Event]) -> Vec<&AttackReport> {
    ev.iter()
        .filter_map(|e| match e {
            Event::AttackEnd(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn syn_sample(i: u32, fp: TcpFingerprint) -> Sample {
    Sample {
        ts: 0,
        src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        dst_port: 80,
        proto: 6,
        tcp_flags: flags::SYN,
        len: 60,
        service: Some(0),
        verdict: SampleVerdict::Reply,
        fp: SampleFp::Tcp(fp),
        fragment: false,
        l7: dataplane::runtime::L7Fp::default(),
    }
}

fn hping_fp() -> TcpFingerprint {
    "4:64:0:-:512,-::".parse().expect("fp")
}

#[test]
fn hysteresis_start_after_k_end_after_m() {
    let mut f = Feed::new(Detector::new(
        cfg(),
        1,
        vec![svc("web", 10_000, OnAttackConfig::default())],
    ));
    assert!(f.quiet(5, 1000).is_empty());
    // Two abnormal seconds then a normal one: a blip, no attack.
    assert!(starts(&f.second(50_000, 0.9, &[])).is_empty());
    assert!(starts(&f.second(50_000, 0.9, &[])).is_empty());
    assert!(starts(&f.quiet(1, 1000)).is_empty());
    assert!(f.d.active().is_empty());
    // Three in a row: started, its start the first of them.
    let first = f.t + 1;
    f.second(50_000, 0.9, &[]);
    f.second(60_000, 0.9, &[]);
    let ev = f.second(55_000, 0.9, &[]);
    let s = starts(&ev);
    assert_eq!(s.len(), 1, "{ev:?}");
    let r = s[0];
    assert_eq!(r.start, first);
    assert_eq!(r.service, "web");
    assert_eq!(r.state, "ongoing");
    assert_eq!(r.peak_pps, 60_000.0);
    assert_eq!(r.types, ["syn_flood"], "from the protocol mix without samples");
    assert_eq!(r.attack_severity, "middle", "6x the threshold");
    assert!(
        r.triggers[0].starts_with("pps 55000 > threshold 10000"),
        "{:?}",
        r.triggers
    );
    let uuid = r.attack_uuid.clone();
    assert_eq!(f.d.active(), vec![("web".to_string(), uuid.clone())]);
    let ongoing = f.d.ongoing();
    assert_eq!(ongoing.len(), 1);
    assert_eq!(
        (ongoing[0].attack_uuid.as_str(), ongoing[0].state.as_str()),
        (uuid.as_str(), "ongoing")
    );
    // Normal seconds fewer than end_after (4), then abnormal again: the
    // same attack goes on.
    assert!(ends(&f.quiet(3, 1000)).is_empty());
    let last = f.t + 1;
    f.second(200_000, 0.9, &[]);
    assert!(ends(&f.quiet(3, 1000)).is_empty());
    let ev = f.quiet(1, 1000);
    let e = ends(&ev);
    assert_eq!(e.len(), 1, "ended after 4 normal seconds");
    assert_eq!(e[0].attack_uuid, uuid);
    assert_eq!(e[0].end, Some(last), "its end is the last abnormal second");
    assert_eq!(e[0].duration_secs, last - first + 1);
    assert_eq!(e[0].state, "ended");
    assert_eq!(e[0].attack_severity, "high", "20x at its peak");
    assert!(f.d.active().is_empty());
    assert!(f.d.ongoing().is_empty());
    // No countermeasure was configured: none taken.
    assert!(f.cm.calls.is_empty());
    assert!(e[0].countermeasures.is_empty());
}

#[test]
fn updates_every_report_interval() {
    let mut f = Feed::new(Detector::new(
        cfg(),
        1,
        vec![svc("web", 10_000, OnAttackConfig::default())],
    ));
    let mut ev = Vec::new();
    for _ in 0..9 {
        ev.extend(f.second(50_000, 0.0, &[]));
    }
    let updates = ev.iter().filter(|e| matches!(e, Event::AttackUpdate(_))).count();
    // Started at second 3; updates at 5, 7, 9.
    assert_eq!((starts(&ev).len(), updates), (1, 3));
    let Some(Event::AttackUpdate(r)) = ev.last() else {
        panic!("last event {:?}", ev.last())
    };
    assert_eq!(r.timeline.points.len(), 9);
    assert_eq!(r.types, ["volumetric"]);
}

#[test]
fn baseline_learns_quiet_seconds_and_fires_on_a_multiple() {
    let c = DetectionConfig {
        baseline_multiplier: 4,
        baseline_window_secs: 10,
        baseline_floor_pps: 100,
        baseline_warmup_secs: 20,
        ..cfg()
    };
    let mut f = Feed::new(Detector::new(c, 1, vec![svc("web", 0, OnAttackConfig::default())]));
    // Not warmed up (19 quiet seconds): even 100x is taken for normal,
    // and learned.
    f.quiet(19, 1000);
    let ev: Vec<Event> = (0..3).flat_map(|_| f.second(100_000, 0.0, &[])).collect();
    assert!(starts(&ev).is_empty());
    assert!(f.d.baseline(0).expect("service 0").mean(Metric::Pps).expect("pps") > 10_000.0);
    // Settled back to 1000 pps.
    f.quiet(150, 1000);
    let mean = |f: &Feed| f.d.baseline(0).expect("service 0").mean(Metric::Pps).expect("pps");
    assert!((mean(&f) - 1000.0).abs() < 5.0, "{}", mean(&f));
    // Warmed up: a two-second blip at 100x is abnormal (no attack: too
    // short) and not learned.
    f.second(100_000, 0.0, &[]);
    f.second(100_000, 0.0, &[]);
    assert!((mean(&f) - 1000.0).abs() < 5.0, "{}", mean(&f));
    // 3.5x the baseline is normal (and learned: the mean rises to 1250)...
    assert!(starts(&f.second(3500, 0.0, &[])).is_empty());
    assert!((mean(&f) - 1250.0).abs() < 5.0, "{}", mean(&f));
    // ...above 4x it is an attack.
    let ev: Vec<Event> = (0..3).flat_map(|_| f.second(6000, 0.0, &[])).collect();
    let s = starts(&ev);
    assert_eq!(s.len(), 1);
    assert!(s[0].triggers[0].contains("baseline"), "{:?}", s[0].triggers);
    // The attack's seconds are not learned either.
    let before = f.d.baseline(0).expect("service 0").mean(Metric::Pps);
    f.second(9000, 0.0, &[]);
    assert_eq!(f.d.baseline(0).expect("service 0").mean(Metric::Pps), before);
}

#[test]
fn threshold_crossings_alert_once_per_crossing() {
    let mut f = Feed::new(Detector::new(
        cfg(),
        1,
        vec![svc("web", 10_000, OnAttackConfig::default())],
    ));
    let crossings = |ev: &[Event]| {
        ev.iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Threshold {
                        metric: Metric::Pps,
                        ..
                    }
                )
            })
            .count()
    };
    let ev = f.second(20_000, 0.0, &[]);
    assert_eq!(crossings(&ev), 1);
    match &ev[0] {
        Event::Threshold {
            service,
            value,
            threshold,
            ..
        } => assert_eq!((service.as_str(), *value, *threshold), ("web", 20_000.0, 10_000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(crossings(&f.second(30_000, 0.0, &[])), 0, "still above");
    f.quiet(1, 100);
    assert_eq!(crossings(&f.second(20_000, 0.0, &[])), 1, "crossed again");
}

#[test]
fn escalation_with_proposed_signatures_then_relax() {
    let on = OnAttackConfig {
        syn_auth: Some("challenge-ack".into()),
        activate_signatures: true,
        blacklist: false,
    };
    let mut f = Feed::new(Detector::new(
        cfg(),
        64,
        vec![svc("web", 10_000, on), svc("quiet", 10_000, OnAttackConfig::default())],
    ));
    f.quiet(3, 1000);
    let fp = hping_fp();
    let legit: TcpFingerprint = "4:64:0:1460:65535,7:mss,sok,ts,nop,ws:df".parse().expect("fp");
    // 90 % of the attack's samples carry one fingerprint, 2 % another
    // (below the 10 % share of a proposal); passed samples never count.
    let mut samples: Vec<Sample> = (0..90).map(|i| syn_sample(i, fp)).collect();
    samples.extend((0..2).map(|i| syn_sample(1000 + i, legit)));
    samples.extend((0..50).map(|i| Sample {
        verdict: SampleVerdict::Pass,
        ..syn_sample(2000 + i, legit)
    }));
    samples.extend((0..8).map(|i| Sample {
        proto: 6,
        tcp_flags: flags::ACK,
        verdict: SampleVerdict::Drop(DropReason::TcpNoFlow),
        fp: SampleFp::None,
        ..syn_sample(3000 + i, fp)
    }));
    let mut ev = Vec::new();
    for _ in 0..3 {
        ev.extend(f.second(50_000, 0.9, &samples));
    }
    let r = starts(&ev)[0].clone();
    assert_eq!(r.types, ["syn_flood"], "ACKs are 8 % of the classified samples");
    assert_eq!(f.cm.calls.len(), 1, "{:?}", f.cm.calls);
    let (service, e) = &f.cm.calls[0];
    assert_eq!(service, "web");
    let e = e.as_ref().expect("an escalation");
    assert_eq!(e.syn_auth, Some(SynAuth::ChallengeAck));
    assert_eq!(e.deny_tcp, vec![TcpRule::exact(&fp)], "only the heavy hitter");
    assert!(e.deny_udp.is_empty());
    assert_eq!(r.countermeasures.len(), 1);
    assert_eq!(r.countermeasures[0].action, "escalate");
    assert_eq!(r.countermeasures[0].syn_auth.as_deref(), Some("challenge-ack"));
    // Top lists scaled by the sampling rate.
    assert_eq!(r.top_fingerprints[0].fingerprint, fp.to_string());
    assert_eq!(r.top_fingerprints[0].packets, 3 * 90 * 64);
    assert_eq!(r.top_dst_ports[0].port, 80);
    assert_eq!(r.drops_by_reason["tcp_no_flow"], 3 * 8 * 64);
    assert_eq!(r.top_sources.len(), 10);
    // The same proposals on later updates: no second call.
    for _ in 0..4 {
        f.second(50_000, 0.9, &samples);
    }
    assert_eq!(f.cm.calls.len(), 1);
    // The end relaxes, once, and the report lists it.
    let ev = f.quiet(4, 1000);
    let e = ends(&ev);
    assert_eq!(e.len(), 1);
    assert_eq!(f.cm.calls.last(), Some(&("web".to_string(), None)));
    assert_eq!(f.cm.calls.len(), 2);
    let acts: Vec<&str> = e[0].countermeasures.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(acts, ["escalate", "relax"]);
}

#[test]
fn disabled_never_declares() {
    let c = DetectionConfig {
        enabled: false,
        ..cfg()
    };
    let mut f = Feed::new(Detector::new(c, 1, vec![svc("web", 10, OnAttackConfig::default())]));
    let ev: Vec<Event> = (0..10).flat_map(|_| f.second(1_000_000, 1.0, &[])).collect();
    assert!(ev.is_empty());
}

/// Services created and deleted at run time: a kept service keeps its
/// attack by name, the first tick after a reorder only re-reads the
/// counters (their indices moved), a new service starts quiet.
#[test]
fn services_follow_runtime_changes_by_name() {
    let mut d = Detector::new(
        cfg(),
        1,
        vec![
            svc("a", 1_000, OnAttackConfig::default()),
            svc("b", 1_000, OnAttackConfig::default()),
        ],
    );
    let mut cm = Recording::default();
    let mut c = [ServiceCounters::default(); 2];
    assert!(d.tick(1_000, 1.0, &c, &[], &mut cm).is_empty());
    let mut started = None;
    for t in 1_001..1_010 {
        c[1].packets += 5_000;
        for e in d.tick(t, 1.0, &c, &[], &mut cm) {
            if let Event::AttackStart(r, _) = e {
                started = Some(r.attack_uuid);
            }
        }
    }
    let uuid = started.expect("b's attack started");
    assert_eq!(d.active(), vec![("b".to_string(), uuid.clone())]);

    // "a" deleted, "c" created: b moves to index 0 with another counter.
    d.set_services(vec![
        svc("b", 1_000, OnAttackConfig::default()),
        svc("c", 1_000, OnAttackConfig::default()),
    ]);
    let moved = [
        ServiceCounters {
            packets: 9_000_000,
            ..ServiceCounters::default()
        },
        ServiceCounters::default(),
    ];
    // The first tick re-reads: no delta from the old index's counter.
    assert!(d.tick(1_010, 1.0, &moved, &[], &mut cm).is_empty());
    assert_eq!(d.active(), vec![("b".to_string(), uuid)]);
    // Then b is quiet (no new packets) and its attack ends by hysteresis;
    // c never saw anything.
    let mut ended = false;
    for t in 1_011..1_020 {
        for e in d.tick(t, 1.0, &moved, &[], &mut cm) {
            if let Event::AttackEnd(r) = e {
                assert_eq!(r.service, "b");
                ended = true;
            }
        }
    }
    assert!(ended);
    assert!(d.active().is_empty());
}

/// The node stops during an attack: the attack ends `interrupted` at the
/// stop time with its final report (escalation relaxed); an attack not yet
/// confirmed is forgotten without an event.
#[test]
fn interrupt_closes_attacks_under_way() {
    let on = OnAttackConfig {
        syn_auth: Some("challenge-ack".into()),
        activate_signatures: false,
        blacklist: false,
    };
    let mut f = Feed::new(Detector::new(cfg(), 1, vec![svc("web", 10_000, on)]));
    f.quiet(2, 1000);
    let first = f.t + 1;
    let ev: Vec<Event> = (0..4).flat_map(|_| f.second(50_000, 0.0, &[])).collect();
    let uuid = starts(&ev)[0].attack_uuid.clone();
    let stop = f.t + 1;
    let ev = f.d.interrupt(stop, &mut f.cm);
    let e = ends(&ev);
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0].attack_uuid, uuid);
    assert_eq!(e[0].state, "interrupted");
    assert_eq!(e[0].end, Some(stop));
    assert_eq!(e[0].duration_secs, stop - first + 1);
    assert_eq!(e[0].types, ["volumetric"]);
    let acts: Vec<&str> = e[0].countermeasures.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(acts, ["escalate", "relax"]);
    assert_eq!(f.cm.calls.last(), Some(&("web".to_string(), None)));
    assert_eq!(ev[0].alert_body("n")["state"], "interrupted");
    assert!(f.d.active().is_empty());
    assert!(f.d.interrupt(stop + 1, &mut f.cm).is_empty(), "closed once");
    // Two abnormal seconds (start_after_secs is 3): not an attack yet.
    f.second(50_000, 0.0, &[]);
    f.second(50_000, 0.0, &[]);
    assert!(f.d.interrupt(f.t + 1, &mut f.cm).is_empty());
}

/// Legitimate clients under SYN authentication: each challenged SYN (its
/// fingerprint an ordinary OS's) is followed by the client's RST answer and
/// a SYN that passes. Neither their fingerprint nor a SYN flood comes out
/// of it; a spoofed flood beside them (never answered) is both.
#[test]
fn answered_challenges_are_not_attack_evidence() {
    let on = OnAttackConfig {
        syn_auth: None,
        activate_signatures: true,
        blacklist: false,
    };
    let mut d = Detector::new(
        cfg(),
        1,
        vec![ServicePolicy {
            syn_auth: true,
            ..svc("web", 10_000, on)
        }],
    );
    let linux: TcpFingerprint = "4:64:0:1460:64240,7:mss,sok,ts,nop,ws:df,id+".parse().expect("fp");
    let legit = |i: u32| {
        let syn = syn_sample(i, linux);
        [
            syn,
            Sample {
                tcp_flags: flags::RST,
                verdict: SampleVerdict::Drop(DropReason::ChallengeAnswered),
                fp: SampleFp::Tcp("4:64:0:-:0,-::df,id+".parse().expect("fp")),
                ..syn
            },
            Sample {
                verdict: SampleVerdict::Pass,
                ..syn
            },
        ]
    };
    let mut cm = Recording::default();
    let mut c = [ServiceCounters::default()];
    d.tick(1_000, 1.0, &c, &[], &mut cm);
    let mut run = |d: &mut Detector, cm: &mut Recording, t: u64, samples: &[Sample]| {
        c[0].packets += 50_000;
        c[0].tcp += 50_000;
        d.tick(t, 1.0, &c, samples, cm)
    };
    let crowd: Vec<Sample> = (0..300).flat_map(legit).collect();
    for t in 1_001..1_006 {
        run(&mut d, &mut cm, t, &crowd);
    }
    let r = d.ongoing();
    assert_eq!(r[0].types, ["volumetric"], "{r:?}");
    assert!(d.proposed()[0].2.is_empty());
    assert!(cm.calls.is_empty(), "nothing to escalate: {:?}", cm.calls);
    // A spoofed flood with its own fingerprint starts beside them.
    let mut mixed = crowd.clone();
    mixed.extend((0..2000).map(|i| syn_sample(10_000 + i, hping_fp())));
    for t in 1_006..1_009 {
        run(&mut d, &mut cm, t, &mixed);
    }
    assert_eq!(d.ongoing()[0].types, ["syn_flood"]);
    assert_eq!(d.proposed()[0].2, [TcpRule::exact(&hping_fp()).to_string()]);
}

/// A CC attack: new connections over `threshold_flows` under SYN
/// authentication (every one from a verified source) is `cc_flood`; the
/// same figures without SYN authentication say nothing of who opened them.
#[test]
fn new_verified_connections_over_the_flows_threshold_are_a_cc_attack() {
    for (syn_auth, want) in [(true, "cc_flood"), (false, "volumetric")] {
        let mut d = Detector::new(
            cfg(),
            1,
            vec![ServicePolicy {
                syn_auth,
                thresholds: Thresholds {
                    threshold_flows: Some(100),
                    ..Thresholds::default()
                },
                ..svc("web", 0, OnAttackConfig::default())
            }],
        );
        let mut cm = Recording::default();
        let mut c = [ServiceCounters::default()];
        d.tick(1_000, 1.0, &c, &[], &mut cm);
        for t in 1_001..1_006 {
            // 1,000 connections a second of ten packets each.
            c[0].packets += 10_000;
            c[0].tcp += 10_000;
            c[0].syns += 1_000;
            c[0].new_flows += 1_000;
            d.tick(t, 1.0, &c, &[], &mut cm);
        }
        let r = d.ongoing();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].types, [want], "syn_auth {syn_auth}: {r:?}");
    }
}
