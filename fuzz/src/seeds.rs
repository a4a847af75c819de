//! Seed inputs that need the project's own code to make: record sequences
//! for `classify` built from `moat gen`'s traffic profiles
//! (`dataplane::gen`, the generator behind `moat gen`), and captures for
//! `pcap` written by `dataplane::pcap::PcapWriter`. `examples/seeds.rs`
//! writes them to disk; `gen_corpus.py` runs it after writing the
//! hand-made seeds.

use classifier::policy::SynAuth;
use dataplane::gen::{GenConfig, Generator, Profile};
use dataplane::pcap::PcapWriter;

use crate::classify::{secrets, START, TCP_PORT, UDP_PORT, VIP4, VIP6};
use crate::records::{push_record, MAX_RECORDS};

/// One seed: a file name and its bytes.
pub type Seed = (String, Vec<u8>);

/// Generator settings matching the fuzzing policy: its VIPs, ports and
/// cookie secret (so that legitimate clients answer challenges correctly),
/// one millisecond between events so that a seed spans a few token-bucket
/// refills.
fn gen_config(mix: Vec<(Profile, u32)>, v6: bool, seed: u64) -> GenConfig {
    GenConfig {
        mix,
        count: MAX_RECORDS as u64,
        seed,
        vip: VIP4,
        vip6: VIP6,
        // The IPv4 service runs challenge-ack, the IPv6 one cookie-reset
        // (crate::classify::policy); each seed speaks to one of them.
        ipv6_share: if v6 { 1.0 } else { 0.0 },
        tcp_port: TCP_PORT,
        udp_port: UDP_PORT,
        start: START,
        pps: 1_000,
        secrets: Some(secrets()),
        syn_auth: if v6 {
            SynAuth::CookieReset
        } else {
            SynAuth::ChallengeAck
        },
        ..GenConfig::default()
    }
}

/// Encodes generated packets as one `classify` input.
fn to_records(packets: impl Iterator<Item = dataplane::gen::GenPacket>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last = START;
    for p in packets {
        push_record(&mut out, p.ts.saturating_sub(last), &p.frame);
        last = p.ts;
    }
    out
}

/// `classify` seeds: every profile alone, over IPv4 and over IPv6, and the
/// default mix.
pub fn classify_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (i, profile) in Profile::ALL.into_iter().enumerate() {
        for v6 in [false, true] {
            let cfg = gen_config(vec![(profile, 1)], v6, i as u64 + 1);
            let name = format!("gen-{}-{}", profile.name(), if v6 { "v6" } else { "v4" });
            seeds.push((name, to_records(Generator::new(cfg))));
        }
    }
    let mix = GenConfig {
        ipv6_share: 0.2,
        ..gen_config(Vec::new(), false, 99)
    };
    seeds.push(("gen-mix".into(), to_records(Generator::new(mix))));
    seeds
}

/// The `pcap` seed that needs Rust: a default mix of 16 frames written to
/// `path` by `PcapWriter` (classic pcap, nanosecond magic). `gen_corpus.py`
/// writes pcapng and the other classic variants by hand.
pub fn write_pcap_seed(path: &std::path::Path) -> Result<(), dataplane::pcap::PcapError> {
    let mut w = PcapWriter::create(path)?;
    for p in Generator::new(gen_config(Vec::new(), false, 7)).take(16) {
        w.write(p.ts, &p.frame)?;
    }
    w.finish().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::run;

    #[test]
    fn legitimate_seeds_are_challenged_then_pass() {
        let seeds = classify_seeds();
        assert_eq!(seeds.len(), 2 * Profile::ALL.len() + 1);
        for name in ["gen-legit-v4", "gen-legit-v6"] {
            let (_, bytes) = seeds.iter().find(|(n, _)| n == name).expect(name);
            let t = run(bytes);
            assert!(t.replies > 0 && t.passed > 0, "{name}: {t:?}");
        }
        let (_, flood) = seeds.iter().find(|(n, _)| n == "gen-ack-flood-v4").expect("ack flood");
        let t = run(flood);
        assert_eq!((t.passed, t.dropped), (0, MAX_RECORDS as u32), "{t:?}");
    }

    #[test]
    fn pcap_seed_reads_back() {
        let dir = std::env::temp_dir().join(format!("moat-fuzz-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("w.pcap");
        write_pcap_seed(&path).expect("write");
        let mut r = dataplane::pcap::PcapReader::open(&path).expect("open");
        let mut n = 0;
        while r.next_frame().expect("frame").is_some() {
            n += 1;
        }
        assert_eq!(n, 16);
        crate::pcap::read_capture(&std::fs::read(&path).expect("read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
