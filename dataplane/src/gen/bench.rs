//! Template frames for `moat bench`: what the memory backend replays in a
//! loop to measure one code path at a time.

use core::net::Ipv4Addr;

use super::wire::{self, Macs, Net, Seg, ACK, PSH, SYN};
use super::{GenConfig, Generator, Profile};

/// A code path to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Spoofed SYN flood: every packet answered with a challenge.
    SynFlood,
    /// Spoofed ACK flood: every packet dropped (no flow, unverified).
    AckFlood,
    /// Legitimate established TCP (a SYN then 15 data segments per flow,
    /// SYN authentication off): every packet re-injected through GRE.
    Clean,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::SynFlood, Workload::AckFlood, Workload::Clean];

    pub const fn name(self) -> &'static str {
        match self {
            Workload::SynFlood => "syn-flood",
            Workload::AckFlood => "ack-flood",
            Workload::Clean => "clean",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == s)
    }

    /// Whether the memory backend should give every packet a new random
    /// IPv4 source (the floods come from millions of spoofed sources).
    pub const fn spoofed(self) -> bool {
        !matches!(self, Workload::Clean)
    }
}

/// Segments per flow in [`Workload::Clean`], the SYN included.
pub const CLEAN_SEGMENTS: usize = 16;

/// `n` template frames (IPv4, untagged) toward `vip` port 80, with Ethernet
/// addresses `macs`.
pub fn templates(w: Workload, n: usize, vip: Ipv4Addr, macs: ([u8; 6], [u8; 6]), seed: u64) -> Vec<Vec<u8>> {
    let profile = match w {
        Workload::SynFlood => Profile::SynFlood,
        Workload::AckFlood => Profile::AckFlood,
        Workload::Clean => {
            return established(
                n,
                vip,
                Macs {
                    src: macs.0,
                    dst: macs.1,
                },
            )
        }
    };
    Generator::new(GenConfig {
        mix: vec![(profile, 1)],
        count: n as u64,
        seed,
        vip,
        ipv6_share: 0.0,
        src_mac: macs.0,
        dst_mac: macs.1,
        ..GenConfig::default()
    })
    .map(|p| p.frame)
    .collect()
}

/// Linux's SYN options: MSS 1460, SACK permitted, timestamps, NOP, window
/// scale 7.
const LINUX_SYN_OPTIONS: [u8; 20] = [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

fn established(n: usize, vip: Ipv4Addr, macs: Macs) -> Vec<Vec<u8>> {
    let flows = n.div_ceil(CLEAN_SEGMENTS).max(1);
    let payload = [0x42u8; 64];
    let mut out = Vec::with_capacity(flows * CLEAN_SEGMENTS);
    for f in 0..flows {
        // Clients in 100.64.0.0/10 (shared address space: public-looking to
        // the classifier, never a real Internet host).
        let src = Ipv4Addr::from(0x6440_0000u32 + f as u32 + 1);
        let net = Net::V4 {
            src,
            dst: vip,
            ttl: 64,
            df: true,
            id: 0,
        };
        let sport = 32768 + (f % 28000) as u16;
        let isn = 1_000_000u32.wrapping_mul(f as u32 + 1);
        let syn = Seg {
            sport,
            dport: 80,
            seq: isn,
            ack: 0,
            flags: SYN,
            window: 64240,
            options: &LINUX_SYN_OPTIONS,
        };
        let mut f = Vec::new();
        wire::tcp(&mut f, &macs, &net, &syn, &[]);
        out.push(f);
        for k in 0..CLEAN_SEGMENTS - 1 {
            let seg = Seg {
                seq: isn.wrapping_add(1 + (k * payload.len()) as u32),
                ack: 7,
                flags: ACK | PSH,
                window: 502,
                options: &[],
                ..syn
            };
            let mut f = Vec::new();
            wire::tcp(&mut f, &macs, &net.with_id(k as u16 + 1), &seg, &payload);
            out.push(f);
        }
    }
    out
}
