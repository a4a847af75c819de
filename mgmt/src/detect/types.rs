//! Attack types inferred from the attack's sampled packets that the
//! attack itself sends: dropped, or challenged SYNs net of those that
//! verified clients answered (see [`kind_of`] and
//! [`crate::report::ReportBuilder::answered_syns`]), by protocol, TCP
//! flags, source port and drop reason; from the metrics that fired and the
//! protocol mix of the figures when no such sample exists (an attack that
//! passes, e.g. a flood of valid requests).

use classifier::policy::is_reflection_port;
use classifier::synauth::flags;
use classifier::verdict::DropReason;
use dataplane::runtime::{Sample, SampleFp, SampleVerdict};

use super::figures::{Figures, Metric};
use crate::report::is_answer;

/// Share of the classified samples a kind needs to be named.
const MIN_SHARE: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SynFlood,
    AckFlood,
    RstFlood,
    UdpFlood,
    Reflection,
    IcmpFlood,
    Fragments,
    Malformed,
    /// A CC attack: a flood of real connections and requests from sources
    /// that proved their address (bots that complete handshakes), as
    /// opposed to the spoofed floods above.
    CcFlood,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::SynFlood,
        Kind::AckFlood,
        Kind::RstFlood,
        Kind::UdpFlood,
        Kind::Reflection,
        Kind::IcmpFlood,
        Kind::Fragments,
        Kind::Malformed,
        Kind::CcFlood,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::SynFlood => "syn_flood",
            Kind::AckFlood => "ack_flood",
            Kind::RstFlood => "rst_flood",
            Kind::UdpFlood => "udp_flood",
            Kind::Reflection => "reflection",
            Kind::IcmpFlood => "icmp_flood",
            Kind::Fragments => "fragments",
            Kind::Malformed => "malformed",
            Kind::CcFlood => "cc_flood",
        }
    }
}

/// The kind of attack packet `s` looks like; `None` for a passed packet or
/// one that says nothing (e.g. another protocol).
///
/// A verified client's answers ([`is_answer`]) say nothing of an attack.
/// A challenged SYN does count here; the caller nets out those that
/// verified clients answered.
pub fn kind_of(s: &Sample) -> Option<Kind> {
    if is_answer(s) {
        return None;
    }
    let reason = match s.verdict {
        // A banned source proved its address: a CC attack's ([`is_cc`]).
        SampleVerdict::Pass | SampleVerdict::Drop(DropReason::Blacklisted) => return None,
        SampleVerdict::Reply => None,
        SampleVerdict::Drop(r) => Some(r),
    };
    if s.fragment || reason == Some(DropReason::Fragment) {
        return Some(Kind::Fragments);
    }
    if let Some(
        DropReason::TruncatedL2
        | DropReason::BadIpHeader
        | DropReason::BadIpChecksum
        | DropReason::BadL4Header
        | DropReason::BadTcpFlags
        | DropReason::Land,
    ) = reason
    {
        return Some(Kind::Malformed);
    }
    match s.proto {
        6 if flags::is_pure_syn(s.tcp_flags) => Some(Kind::SynFlood),
        6 if s.tcp_flags & flags::RST != 0 => Some(Kind::RstFlood),
        6 if s.tcp_flags & flags::ACK != 0 => Some(Kind::AckFlood),
        17 => {
            let sport = match s.fp {
                SampleFp::Udp(u) => Some(u.sport),
                _ => None,
            };
            if reason == Some(DropReason::ReflectionPort) || sport.is_some_and(is_reflection_port) {
                Some(Kind::Reflection)
            } else {
                Some(Kind::UdpFlood)
            }
        }
        1 | 58 => Some(Kind::IcmpFlood),
        _ => None,
    }
}

/// Whether `s` is a packet of a CC attack: a source that proved its
/// address breaking limits. With SYN authentication in force (`syn_auth`),
/// a source's new connections over its limit, and its TCP segments over
/// its packet rate (non-SYN segments only get that far from proven
/// sources), are such; a `blacklisted` drop is a source banned for
/// breaking limits, whatever the mode. Passed connections alone are not
/// (a flash crowd of real clients looks the same): a crowd of new
/// connections is named by the `flows` threshold instead ([`infer`]).
pub fn is_cc(s: &Sample, syn_auth: bool) -> bool {
    let syn = s.proto == 6 && flags::is_pure_syn(s.tcp_flags);
    match s.verdict {
        SampleVerdict::Drop(DropReason::Blacklisted) => true,
        SampleVerdict::Drop(DropReason::RateLimitNewFlow) => syn_auth,
        SampleVerdict::Drop(DropReason::RateLimitSource) => syn_auth && s.proto == 6 && !syn,
        _ => false,
    }
}

/// Types named by `kinds` (attack samples per [`Kind`]) with at least
/// [`MIN_SHARE`] of the attack's `samples` (all of them, passed included,
/// so that the few unanswered challenges of legitimate clients never name
/// a type), most first; then those named by the metrics that fired
/// (`syn_pps`, `udp_pps`, `icmp_pps`; `flows`, new connections, names a
/// CC attack when `proven_flows`: SYN authentication was in force, so
/// every new flow came from a verified source) or by the figures `f` (the mean of
/// the attack's abnormal seconds): a protocol or SYNs at half the packets
/// or more. (A flood that passes, e.g. SYNs to a service without SYN
/// authentication, leaves no unpassed sample.) `volumetric` when nothing
/// else is named.
pub fn infer(
    kinds: &[u64; Kind::COUNT],
    samples: u64,
    fired: &[Metric],
    f: &Figures,
    proven_flows: bool,
) -> Vec<&'static str> {
    let total: u64 = samples.max(kinds.iter().sum());
    let mut by_samples: Vec<(Kind, u64)> = Kind::ALL
        .iter()
        .map(|k| (*k, kinds[*k as usize]))
        .filter(|(_, n)| total > 0 && *n as f64 >= MIN_SHARE * total as f64)
        .collect();
    by_samples.sort_by_key(|(_, n)| core::cmp::Reverse(*n));
    let mut v: Vec<&'static str> = by_samples.into_iter().map(|(k, _)| k.as_str()).collect();
    let pps = f.pps.max(1.0);
    for (share, m, k) in [
        (f.syn_pps / pps, Metric::SynPps, Kind::SynFlood),
        (f.udp_pps / pps, Metric::UdpPps, Kind::UdpFlood),
        (f.icmp_pps / pps, Metric::IcmpPps, Kind::IcmpFlood),
    ] {
        let named = v.contains(&k.as_str()) || (k == Kind::UdpFlood && v.contains(&Kind::Reflection.as_str()));
        if (share >= 0.5 || fired.contains(&m)) && !named {
            v.push(k.as_str());
        }
    }
    let cc = Kind::CcFlood.as_str();
    if proven_flows && fired.contains(&Metric::Flows) && !v.contains(&cc) {
        v.push(cc);
    }
    if v.is_empty() {
        v.push("volumetric");
    }
    v
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use classifier::fingerprint::UdpFingerprint;

    use super::*;

    fn s(proto: u8, tcp_flags: u8, verdict: SampleVerdict) -> Sample {
        Sample {
            ts: 0,
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            dst_port: 80,
            proto,
            tcp_flags,
            len: 60,
            service: Some(0),
            verdict,
            fp: SampleFp::None,
            fragment: false,
            l7: dataplane::runtime::L7Fp::default(),
        }
    }

    fn drop(r: DropReason) -> SampleVerdict {
        SampleVerdict::Drop(r)
    }

    #[test]
    fn cc_packets_are_those_of_proven_sources() {
        assert!(!is_cc(&s(6, flags::SYN, SampleVerdict::Pass), true), "a client");
        let banned = s(6, flags::ACK, drop(DropReason::Blacklisted));
        assert!(is_cc(&banned, false));
        assert_eq!(kind_of(&banned), None, "not an ACK flood");
        let over = s(6, flags::SYN, drop(DropReason::RateLimitNewFlow));
        assert!(is_cc(&over, true));
        assert!(!is_cc(&over, false), "without SYN authentication it may be spoofed");
        assert!(is_cc(&s(6, flags::ACK, drop(DropReason::RateLimitSource)), true));
        assert!(
            !is_cc(&s(17, 0, drop(DropReason::RateLimitSource)), true),
            "UDP proves nothing"
        );
        assert!(!is_cc(&s(6, flags::ACK, drop(DropReason::TcpNoFlow)), true));
        assert!(!is_cc(&s(6, flags::SYN, SampleVerdict::Reply), true), "a challenge");
        // Named by samples (a share of them), or by the new-flow metric
        // when every new flow was verified.
        let mut k = [0; Kind::COUNT];
        k[Kind::CcFlood as usize] = 300;
        assert_eq!(infer(&k, 1000, &[], &Figures::default(), false), ["cc_flood"]);
        let none = [0; Kind::COUNT];
        assert_eq!(
            infer(&none, 1000, &[Metric::Flows], &Figures::default(), true),
            ["cc_flood"]
        );
        assert_eq!(
            infer(&none, 1000, &[Metric::Flows], &Figures::default(), false),
            ["volumetric"],
            "unverified new flows name no CC attack"
        );
    }

    #[test]
    fn kinds_from_flags_ports_and_reasons() {
        assert_eq!(kind_of(&s(6, flags::SYN, SampleVerdict::Reply)), Some(Kind::SynFlood));
        assert_eq!(
            kind_of(&s(6, flags::ACK, drop(DropReason::TcpNoFlow))),
            Some(Kind::AckFlood)
        );
        assert_eq!(
            kind_of(&s(6, flags::RST, drop(DropReason::BadCookie))),
            Some(Kind::RstFlood)
        );
        assert_eq!(kind_of(&s(6, 0, drop(DropReason::BadTcpFlags))), Some(Kind::Malformed));
        assert_eq!(
            kind_of(&s(17, 0, drop(DropReason::PortNotAllowed))),
            Some(Kind::UdpFlood)
        );
        assert_eq!(
            kind_of(&s(17, 0, drop(DropReason::ReflectionPort))),
            Some(Kind::Reflection)
        );
        let mut ntp = s(17, 0, drop(DropReason::PayloadMismatch));
        ntp.fp = SampleFp::Udp(UdpFingerprint {
            proto: 17,
            ver: 4,
            len: 468,
            sport: 123,
            phash: 7,
        });
        assert_eq!(kind_of(&ntp), Some(Kind::Reflection), "by source port");
        assert_eq!(kind_of(&s(1, 0, drop(DropReason::IcmpType))), Some(Kind::IcmpFlood));
        let mut frag = s(17, 0, drop(DropReason::Fragment));
        frag.fragment = true;
        assert_eq!(kind_of(&frag), Some(Kind::Fragments));
        assert_eq!(kind_of(&s(6, flags::SYN, SampleVerdict::Pass)), None, "passed");
        // A verified client's answers: the RST to a challenge-ack SYN-ACK,
        // the ACK that cookie-reset answers with a RST.
        assert_eq!(kind_of(&s(6, flags::RST, drop(DropReason::ChallengeAnswered))), None);
        assert_eq!(kind_of(&s(6, flags::ACK, SampleVerdict::Reply)), None);
        assert_eq!(kind_of(&s(17, 0, SampleVerdict::Reply)), None);
        assert_eq!(kind_of(&s(47, 0, drop(DropReason::PortNotAllowed))), None);
    }

    #[test]
    fn infer_names_kinds_above_a_tenth() {
        let mut k = [0u64; Kind::COUNT];
        k[Kind::SynFlood as usize] = 700;
        k[Kind::Reflection as usize] = 250;
        k[Kind::IcmpFlood as usize] = 99;
        assert_eq!(
            infer(&k, 0, &[], &Figures::default(), false),
            ["syn_flood", "reflection"]
        );
        // The share is of every sample of the attack, passed ones included.
        assert_eq!(infer(&k, 3000, &[], &Figures::default(), false), ["syn_flood"]);
        // Passed SYNs leave no unpassed sample: the figures name them.
        let mut k = [0u64; Kind::COUNT];
        k[Kind::Reflection as usize] = 300;
        let f = Figures {
            pps: 1000.0,
            syn_pps: 600.0,
            udp_pps: 400.0,
            ..Figures::default()
        };
        assert_eq!(infer(&k, 0, &[], &f, false), ["reflection", "syn_flood"]);
        // What fired names its type, whatever its share.
        let f = Figures {
            pps: 1000.0,
            syn_pps: 300.0,
            ..Figures::default()
        };
        assert_eq!(infer(&k, 0, &[Metric::SynPps], &f, false), ["reflection", "syn_flood"]);
        // No sample: from the protocol mix.
        let f = Figures {
            pps: 1000.0,
            syn_pps: 900.0,
            tcp_pps: 1000.0,
            ..Figures::default()
        };
        assert_eq!(infer(&[0; Kind::COUNT], 0, &[], &f, false), ["syn_flood"]);
        let f = Figures {
            pps: 1000.0,
            tcp_pps: 1000.0,
            ..Figures::default()
        };
        assert_eq!(infer(&[0; Kind::COUNT], 0, &[], &f, false), ["volumetric"]);
    }
}
