//! A seeded, deterministic traffic generator: legitimate clients and attack
//! traffic toward one protected service, as Ethernet frames with timestamps,
//! for `moat gen`, tests and demos.
//!
//! Contract:
//! - Same [`GenConfig`] (seed included) gives byte-identical output: one
//!   `ChaCha8Rng` drives every choice, in a fixed order, and nothing reads a
//!   clock or iterates a hash map.
//! - Exactly [`GenConfig::count`] packets come out, timestamps non-decreasing
//!   (see [`sched`] for why), each labelled with the [`Profile`] that made it.
//! - Frames are built with `etherparse`, an implementation independent of
//!   Moat's own wire code, so that the classifier is tested against packets
//!   it did not build itself. Every frame parses with `etherparse` except
//!   those of [`Profile::Malformed`], which are broken on purpose.
//! - Moat's own packets (SYN-ACK challenges, RSTs) and the origin's answers
//!   are never generated: the capture is what arrives on Moat's outside port.
//!
//! One file per concern: [`wire`] (frame building), [`sched`] (time order),
//! [`mix`] (profile ratios), [`legit`], [`flood`], [`reflection`], [`frag`],
//! [`malformed`].

pub mod bench;
mod flood;
mod frag;
mod legit;
pub mod live;
mod malformed;
mod mix;
mod reflection;
mod sched;
mod wire;

use core::net::{Ipv4Addr, Ipv6Addr};

use classifier::cookie::CookieSecrets;
use classifier::policy::SynAuth;
use classifier::time::{Nanos, SECOND};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use mix::{default_mix, parse_mix};

/// What a generated packet is, and which code made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// TCP clients of the web service and UDP game clients.
    Legit,
    SynFlood,
    AckFlood,
    RstFlood,
    UdpFlood,
    DnsReflection,
    NtpReflection,
    MemcachedReflection,
    /// IPv4 and IPv6 fragments.
    Frag,
    /// Broken headers and impossible field combinations.
    Malformed,
}

impl Profile {
    /// Every profile, in declaration order (the order of [`Profile::index`]).
    pub const ALL: [Profile; 10] = [
        Profile::Legit,
        Profile::SynFlood,
        Profile::AckFlood,
        Profile::RstFlood,
        Profile::UdpFlood,
        Profile::DnsReflection,
        Profile::NtpReflection,
        Profile::MemcachedReflection,
        Profile::Frag,
        Profile::Malformed,
    ];

    /// The profile's name on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::Legit => "legit",
            Profile::SynFlood => "syn-flood",
            Profile::AckFlood => "ack-flood",
            Profile::RstFlood => "rst-flood",
            Profile::UdpFlood => "udp-flood",
            Profile::DnsReflection => "dns-reflection",
            Profile::NtpReflection => "ntp-reflection",
            Profile::MemcachedReflection => "memcached-reflection",
            Profile::Frag => "frag",
            Profile::Malformed => "malformed",
        }
    }

    /// The profile named `name` (as [`Profile::name`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether Moat should drop this traffic (everything but [`Profile::Legit`]).
    pub fn is_attack(&self) -> bool {
        *self != Profile::Legit
    }

    /// Position in [`Profile::ALL`].
    pub fn index(&self) -> usize {
        *self as usize
    }
}

impl core::fmt::Display for Profile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// 2026-01-01T00:00:00Z in Unix nanoseconds, the default capture start.
pub const DEFAULT_START: Nanos = 1_767_225_600 * SECOND;

/// Longest `game_magic` honoured: longer prefixes are cut to this, so that a
/// game datagram still fits one 1500-byte packet.
pub const MAX_MAGIC: usize = 1024;

/// What to generate. [`Default`] gives the values documented on each field.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Profiles and their shares of the packets (not of the flows); a single
    /// profile is `vec![(p, 1)]`. An empty or all-zero mix means
    /// [`default_mix`].
    pub mix: Vec<(Profile, u32)>,
    /// Packets produced in total.
    pub count: u64,
    pub seed: u64,
    /// The protected service's addresses (default 203.0.113.10, 2001:db8::10).
    pub vip: Ipv4Addr,
    pub vip6: Ipv6Addr,
    /// Share of the flows/packets of IPv6-capable profiles (legit, SYN, ACK,
    /// RST and UDP floods) sent over IPv6, 0..=1 (default 0.1).
    pub ipv6_share: f64,
    /// The web service's TCP port (default 80).
    pub tcp_port: u16,
    /// The game service's UDP port (default 7777).
    pub udp_port: u16,
    /// Prefix of every legitimate game datagram (default `b"GAME"`).
    pub game_magic: Vec<u8>,
    /// Time of the first event, Unix ns (default [`DEFAULT_START`]).
    pub start: Nanos,
    /// New events (a flow, a flood packet, a reflected burst) per second
    /// (default 100 000); 0 is taken as 1.
    pub pps: u64,
    /// Ethernet source (the upstream router) and destination (Moat).
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The cluster's cookie secrets. With them, legitimate clients answer
    /// Moat's SYN authentication as a real stack would; without them they
    /// retransmit their SYN unanswered (see [`legit`]).
    pub secrets: Option<CookieSecrets>,
    /// The SYN authentication mode the service runs (`Off`: flows go straight).
    pub syn_auth: SynAuth,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            mix: default_mix(),
            count: 100_000,
            seed: 1,
            vip: Ipv4Addr::new(203, 0, 113, 10),
            vip6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
            ipv6_share: 0.1,
            tcp_port: 80,
            udp_port: 7777,
            game_magic: b"GAME".to_vec(),
            start: DEFAULT_START,
            pps: 100_000,
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            secrets: None,
            syn_auth: SynAuth::ChallengeAck,
        }
    }
}

/// One generated frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenPacket {
    /// Unix nanoseconds.
    pub ts: Nanos,
    /// Ethernet frame, from the destination MAC on.
    pub frame: Vec<u8>,
    pub profile: Profile,
}

/// Initial capacity of the scratch buffers: the largest payload built at
/// once (a memcached answer: up to 10,000 value bytes and its header).
const SCRATCH: usize = 16 * 1024;

/// Client and reflector address pools; fixed at start from the seed.
const CLIENTS4: usize = 16_384;
const CLIENTS6: usize = 4_096;
const REFLECTORS: usize = 300;

/// Everything a profile needs to build its packets: the configuration, the
/// one random stream, address pools and the modelled state of Moat (which
/// clients it has verified).
#[derive(Debug)]
pub(crate) struct Ctx {
    pub cfg: GenConfig,
    pub rng: ChaCha8Rng,
    pub clients4: Vec<Ipv4Addr>,
    pub clients6: Vec<Ipv6Addr>,
    /// Per client (v4 pool then v6 pool): when Moat verified it, `u64::MAX`
    /// for never. Moat's verified-source TTL (minutes) is assumed to outlast
    /// the capture.
    pub verified: Vec<Nanos>,
    /// Reflectors for DNS, NTP and memcached, in that order.
    pub reflectors: [Vec<Ipv4Addr>; 3],
    /// Scratch buffers reused for payloads and transport segments, so that
    /// building a packet allocates nothing once they have grown.
    pub payload: Vec<u8>,
    pub l4: Vec<u8>,
}

impl Ctx {
    /// True with probability `ipv6_share`.
    pub fn pick_v6(&mut self) -> bool {
        let share = self.cfg.ipv6_share;
        // NaN and out-of-range shares are clamped rather than panicking in gen_bool.
        let share = if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) };
        self.rng.gen_bool(share)
    }

    pub fn macs(&self) -> wire::Macs {
        wire::Macs {
            src: self.cfg.src_mac,
            dst: self.cfg.dst_mac,
        }
    }
}

/// A public-looking unicast IPv4 address: first octet 1..=223, not 10 or 127.
fn unicast4(rng: &mut ChaCha8Rng) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(rng.gen::<u32>());
        let o = a.octets()[0];
        if (1..=223).contains(&o) && o != 10 && o != 127 {
            return a;
        }
    }
}

/// A global unicast IPv6 address (2000::/3).
fn unicast6(rng: &mut ChaCha8Rng) -> Ipv6Addr {
    let bits = rng.gen::<u128>() & !(7u128 << 125);
    Ipv6Addr::from(bits | (1u128 << 125))
}

/// Largest event rate the generator takes: one event per nanosecond, its
/// clock's resolution. (Front ends bound it far lower: the generator's
/// queue holds about a second of traffic.)
pub const MAX_PPS: u64 = SECOND;

/// A context for unit tests of the profile modules.
#[cfg(test)]
pub(crate) fn test_ctx(seed: u64) -> Ctx {
    Generator::new(GenConfig {
        seed,
        ..GenConfig::default()
    })
    .ctx
}

/// The generator: an iterator of exactly `count` [`GenPacket`]s.
#[derive(Debug)]
pub struct Generator {
    ctx: Ctx,
    sched: sched::Sched,
    mix: Vec<(Profile, u32)>,
    attack: Option<AttackPhase>,
    events: u64,
    emitted: u64,
}

/// A stretch of the output in which events follow another mix (an attack
/// starting and ending on a clean background; see
/// [`Generator::set_attack_phase`]).
#[derive(Debug, Clone)]
struct AttackPhase {
    mix: Vec<(Profile, u32)>,
    /// Packets emitted before the phase starts, and when it ends.
    from: u64,
    until: u64,
}

impl Generator {
    pub fn new(mut cfg: GenConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        cfg.game_magic.truncate(MAX_MAGIC);
        // Above one event per nanosecond, events would share start times
        // and `next` would start events without end (each new one due no
        // later than the packets already queued): clamp to that.
        cfg.pps = cfg.pps.clamp(1, MAX_PPS);
        let mut mix: Vec<(Profile, u32)> = cfg.mix.iter().copied().filter(|(_, w)| *w > 0).collect();
        if mix.is_empty() {
            mix = default_mix();
        }
        let vip = cfg.vip;
        let clients4 = (0..CLIENTS4)
            .map(|_| loop {
                let a = unicast4(&mut rng);
                if a != vip {
                    break a;
                }
            })
            .collect();
        let clients6 = (0..CLIENTS6).map(|_| unicast6(&mut rng)).collect();
        let reflectors = [0, 1, 2].map(|_| (0..REFLECTORS).map(|_| unicast4(&mut rng)).collect());
        let ctx = Ctx {
            cfg,
            rng,
            clients4,
            clients6,
            verified: vec![u64::MAX; CLIENTS4 + CLIENTS6],
            reflectors,
            payload: Vec::with_capacity(SCRATCH),
            l4: Vec::with_capacity(SCRATCH),
        };
        Generator {
            ctx,
            sched: sched::Sched::default(),
            mix,
            attack: None,
            events: 0,
            emitted: 0,
        }
    }

    /// Events started once `from` packets have been emitted, until
    /// `from + len` (`len` 0: to the end), follow `mix` instead of the
    /// configured mix; packets of flows already under way keep coming.
    /// Counted in packets, not in generator time: a paced consumer (the
    /// memory backend delivers `pps` packets per second) sees the phase
    /// at `from / pps` seconds whatever the mix's packets per event. An
    /// empty or all-zero `mix` removes the phase.
    pub fn set_attack_phase(&mut self, mix: &[(Profile, u32)], from: u64, len: u64) {
        let mix: Vec<(Profile, u32)> = mix.iter().copied().filter(|(_, w)| *w > 0).collect();
        let until = if len == 0 { u64::MAX } else { from.saturating_add(len) };
        self.attack = (!mix.is_empty()).then_some(AttackPhase { mix, from, until });
    }

    /// Start time of event number `n`: `start + n / pps` seconds, computed
    /// from `n` rather than accumulated, so that no rounding drift builds up.
    fn event_ts(&self, n: u64) -> Nanos {
        let offset = u128::from(n) * u128::from(SECOND) / u128::from(self.ctx.cfg.pps);
        self.ctx
            .cfg
            .start
            .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// Gives a frame's buffer back after use (a live sender copied it
    /// out): later frames are built in it instead of a new allocation.
    pub fn recycle(&mut self, frame: Vec<u8>) {
        self.sched.recycle(frame);
    }

    fn start_event(&mut self) {
        let at = self.event_ts(self.events);
        self.events += 1;
        let mix = match &self.attack {
            Some(a) if (a.from..a.until).contains(&self.emitted) => &a.mix,
            _ => &self.mix,
        };
        let profile = mix::pick(mix, self.sched.emitted());
        let (ctx, q) = (&mut self.ctx, &mut self.sched);
        match profile {
            Profile::Legit => legit::event(ctx, q, at),
            Profile::SynFlood => flood::syn(ctx, q, at),
            Profile::AckFlood => flood::ack(ctx, q, at),
            Profile::RstFlood => flood::rst(ctx, q, at),
            Profile::UdpFlood => flood::udp(ctx, q, at),
            Profile::DnsReflection => reflection::dns(ctx, q, at),
            Profile::NtpReflection => reflection::ntp(ctx, q, at),
            Profile::MemcachedReflection => reflection::memcached(ctx, q, at),
            Profile::Frag => frag::event(ctx, q, at),
            Profile::Malformed => malformed::event(ctx, q, at),
        }
    }
}

impl Iterator for Generator {
    type Item = GenPacket;

    fn next(&mut self) -> Option<GenPacket> {
        if self.emitted >= self.ctx.cfg.count {
            return None;
        }
        // Start every event due no later than the earliest pending packet;
        // each event queues at least one packet at or after its start. A
        // saturated clock (a start near the end of time) stops starting
        // events once something is queued, so the loop always ends.
        loop {
            let due = self.event_ts(self.events);
            match self.sched.peek_ts() {
                Some(t) if due > t || due == Nanos::MAX => break,
                _ => self.start_event(),
            }
        }
        let p = self.sched.pop()?;
        self.emitted += 1;
        Some(p)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.ctx.cfg.count - self.emitted).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    /// At rates above one event per nanosecond the generator used to start
    /// events for ever before its first packet (growing until abort).
    #[test]
    fn absurd_rates_end() {
        for pps in [SECOND, SECOND + 1, u64::MAX] {
            let g = Generator::new(GenConfig {
                pps,
                count: 50,
                ..GenConfig::default()
            });
            assert_eq!(g.count(), 50, "pps {pps}");
        }
    }
}
