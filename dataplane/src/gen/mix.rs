//! Profile mixes: parsing `legit=50,syn-flood=30`, the default mix, and the
//! choice of each event's profile.
//!
//! Ratios are shares of the packets written, not of events: a legitimate
//! flow sends a dozen packets where a flood event sends one. Each event
//! therefore goes to the profile furthest below its share of the packets
//! emitted so far (deficit round robin over packets). Emitted, not queued:
//! a flow's later packets lie up to seconds ahead (SYN retransmissions,
//! think times), beyond the end of a short capture, and counting them when
//! queued would leave the capture short of legitimate packets. The feedback
//! keeps each profile's share of any long enough prefix of the output close
//! to its ratio (within the packets of the flows still in progress).

use super::Profile;

/// The mix used for `--profile mix`: mostly legitimate traffic under a
/// combined attack of every kind.
pub fn default_mix() -> Vec<(Profile, u32)> {
    vec![
        (Profile::Legit, 60),
        (Profile::SynFlood, 10),
        (Profile::AckFlood, 5),
        (Profile::RstFlood, 3),
        (Profile::UdpFlood, 7),
        (Profile::DnsReflection, 4),
        (Profile::NtpReflection, 3),
        (Profile::MemcachedReflection, 3),
        (Profile::Frag, 3),
        (Profile::Malformed, 2),
    ]
}

/// Parses `name=weight,name=weight,...`; a bare `name` weighs 1, and `mix`
/// alone is [`default_mix`]. Names are [`Profile::name`]s, each at most once;
/// weights are integers and at least one must be positive.
pub fn parse_mix(s: &str) -> Result<Vec<(Profile, u32)>, String> {
    let s = s.trim();
    if s == "mix" {
        return Ok(default_mix());
    }
    let mut mix: Vec<(Profile, u32)> = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!("empty item in mix {s:?}"));
        }
        let (name, weight) = match item.split_once('=') {
            Some((n, w)) => {
                let w = w
                    .trim()
                    .parse::<u32>()
                    .map_err(|e| format!("weight of {:?}: {e}", n.trim()))?;
                (n.trim(), w)
            }
            None => (item, 1),
        };
        let profile = Profile::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
            format!("unknown profile {name:?} (known: {}, or mix)", known.join(", "))
        })?;
        if mix.iter().any(|(p, _)| *p == profile) {
            return Err(format!("profile {name} given twice"));
        }
        mix.push((profile, weight));
    }
    if mix.iter().all(|(_, w)| *w == 0) {
        return Err(format!("mix {s:?} has no positive weight"));
    }
    Ok(mix)
}

/// The profile of the next event: the one whose packet count is furthest
/// below `weight / total` of all packets emitted (ties: first in `mix`).
/// `mix` must hold a positive weight.
pub(crate) fn pick(mix: &[(Profile, u32)], emitted: &[u64; Profile::ALL.len()]) -> Profile {
    let total_w: u128 = mix.iter().map(|(_, w)| u128::from(*w)).sum();
    let total_n: u128 = mix.iter().map(|(p, _)| u128::from(emitted[p.index()])).sum();
    // deficit_p = w_p/W * N - n_p, compared as w_p*N - n_p*W to stay in integers.
    let deficit = |(p, w): &(Profile, u32)| {
        i128::try_from(u128::from(*w) * total_n).unwrap_or(i128::MAX)
            - i128::try_from(u128::from(emitted[p.index()]) * total_w).unwrap_or(i128::MAX)
    };
    let mut best = mix.first().map_or(Profile::Legit, |m| m.0);
    let mut best_d = i128::MIN;
    for m in mix.iter().filter(|m| m.1 > 0) {
        let d = deficit(m);
        if d > best_d {
            best = m.0;
            best_d = d;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ratios_and_single_names() {
        assert_eq!(
            parse_mix("legit=50, syn-flood=30,udp-flood=20").unwrap(),
            vec![(Profile::Legit, 50), (Profile::SynFlood, 30), (Profile::UdpFlood, 20)]
        );
        assert_eq!(parse_mix("frag").unwrap(), vec![(Profile::Frag, 1)]);
        assert_eq!(parse_mix("mix").unwrap(), default_mix());
        assert_eq!(default_mix().len(), Profile::ALL.len());
    }

    #[test]
    fn refuses_bad_mixes() {
        assert!(parse_mix("legit=50,bogus=1")
            .unwrap_err()
            .contains("unknown profile \"bogus\""));
        assert!(parse_mix("legit=x").unwrap_err().contains("weight of \"legit\""));
        assert!(parse_mix("legit=1,legit=2").unwrap_err().contains("twice"));
        assert!(parse_mix("legit=0").unwrap_err().contains("no positive weight"));
        assert!(parse_mix("legit=1,,frag=1").unwrap_err().contains("empty item"));
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn pick_follows_packet_shares() {
        let mix = vec![(Profile::Legit, 3), (Profile::SynFlood, 1), (Profile::Frag, 0)];
        let mut n = [0u64; Profile::ALL.len()];
        for _ in 0..400 {
            let p = pick(&mix, &n);
            // Legit events queue 4 packets each, floods 1.
            n[p.index()] += if p == Profile::Legit { 4 } else { 1 };
        }
        let (l, s) = (n[Profile::Legit.index()] as f64, n[Profile::SynFlood.index()] as f64);
        assert!((l / (l + s) - 0.75).abs() < 0.02, "legit share {}", l / (l + s));
        assert_eq!(n[Profile::Frag.index()], 0);
    }
}
