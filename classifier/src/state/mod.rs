//! Per-core state (DESIGN.md, "Threading and memory model"): everything one
//! worker remembers between packets — flows, verified sources, per-source,
//! per-service and global token buckets.
//!
//! Contract: a [`WorkerState`] is owned by one worker (no locks, no
//! atomics). Every table has a fixed capacity set at [`WorkerState::new`]
//! and an eviction policy; nothing allocates afterwards on the packet path,
//! whatever the input, so a flood of random spoofed sources leaves memory
//! flat ([`WorkerState::memory_bytes`] never changes).
//! [`WorkerState::apply_policy`] is the one control-side call that may
//! allocate (when the number of services grows).
//!
//! Node-wide limits (per service, global) are split evenly among the
//! workers: RSS spreads sources, not services, over cores, so each worker
//! sees about `1 / workers` of a service's legitimate traffic.

/// The size accessors every per-core table forwards to its inner
/// [`table::Table`] (`self.table`): `len`, `capacity`, `is_empty` and
/// `memory_bytes` (heap bytes reserved, constant after construction).
macro_rules! table_sizes {
    () => {
        #[inline]
        pub fn len(&self) -> usize {
            self.table.len()
        }

        #[inline]
        pub fn capacity(&self) -> usize {
            self.table.capacity()
        }

        #[inline]
        pub fn is_empty(&self) -> bool {
            self.table.is_empty()
        }

        /// Heap bytes reserved (constant after construction).
        pub fn memory_bytes(&self) -> usize {
            self.table.memory_bytes()
        }
    };
}

pub mod ban;
pub mod bucket;
pub mod flow;
pub mod table;
pub mod verified;

pub use ban::BanTable;
pub use bucket::{SourceLimit, SourceTable, TokenBucket};
pub use flow::{FlowId, FlowKey, FlowTable, Insert};
pub use verified::VerifiedTable;

use crate::policy::Policy;

/// Table sizes of one worker (config `[dataplane]` table sizes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateConfig {
    pub flows: usize,
    pub verified: usize,
    pub sources: usize,
    /// First-segment reassembly (`[dataplane]` `reassembly_slots`,
    /// `reassembly_bytes`): allocated only while a service inspects.
    pub reassembly: crate::l7::reassembly::ReassemblyConfig,
    /// Banned sources (`[dataplane] ban_table_size`).
    pub bans: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            flows: 65536,
            verified: 65536,
            sources: 65536,
            reassembly: Default::default(),
            bans: 4096,
        }
    }
}

/// Buckets of one service on one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceBuckets {
    /// `Limits::service_pps` / workers.
    pub pps: TokenBucket,
    /// `Limits::challenge_pps` / workers: SYN-ACKs sent, so that a spoofed
    /// flood cannot turn Moat into a reflector.
    pub challenges: TokenBucket,
    /// `Limits::icmp_pps` / workers: ICMP and ICMPv6 messages passed.
    pub icmp: TokenBucket,
    /// `Limits::dst_new_conns_ps` / workers: flows admitted.
    pub new_conns: TokenBucket,
    /// `Limits::dst_conns` / workers (0: unlimited).
    pub max_conns: u64,
    /// Flows of this service on this worker counted toward `max_conns`.
    pub conns: u64,
    /// `Limits::empty_conn_secs` in flow ticks (0: off).
    pub empty: u32,
}

impl ServiceBuckets {
    fn new(limits: &crate::policy::Limits, workers: u32) -> Self {
        ServiceBuckets {
            pps: one_second(per_worker(limits.service_pps, workers)),
            challenges: one_second(per_worker(limits.challenge_pps, workers)),
            icmp: one_second(per_worker(limits.icmp_pps, workers)),
            new_conns: one_second(per_worker(limits.dst_new_conns_ps, workers)),
            max_conns: per_worker(limits.dst_conns, workers),
            conns: 0,
            empty: empty_span(limits),
        }
    }

    fn set(&mut self, limits: &crate::policy::Limits, workers: u32) {
        let pps = per_worker(limits.service_pps, workers);
        let challenges = per_worker(limits.challenge_pps, workers);
        let icmp = per_worker(limits.icmp_pps, workers);
        self.pps.set_rate(pps, pps);
        self.challenges.set_rate(challenges, challenges);
        self.icmp.set_rate(icmp, icmp);
        let new_conns = per_worker(limits.dst_new_conns_ps, workers);
        self.new_conns.set_rate(new_conns, new_conns);
        self.max_conns = per_worker(limits.dst_conns, workers);
        self.empty = empty_span(limits);
    }
}

/// `empty_conn_secs` in flow ticks, 0 when off.
fn empty_span(limits: &crate::policy::Limits) -> u32 {
    match limits.empty_conn_secs {
        0 => 0,
        s => flow::span_ticks(u64::from(s) * crate::time::SECOND),
    }
}

/// One worker's share of a node-wide rate: `rate / workers`, at least 1
/// (a limit never rounds down to "unlimited"); 0 stays 0 (unlimited).
fn per_worker(rate: u64, workers: u32) -> u64 {
    if rate == 0 {
        0
    } else {
        (rate / u64::from(workers.max(1))).max(1)
    }
}

/// A bucket of `rate` tokens/s with one second's worth of burst.
fn one_second(rate: u64) -> TokenBucket {
    TokenBucket::new(rate, rate)
}

/// Slots of the per-source connection counts: the flow table's capacity
/// while a service sets `src_conns`, else 1.
fn conn_slots(cfg: &StateConfig, policy: &Policy) -> usize {
    if policy.services.iter().any(|s| s.limits.src_conns != 0) {
        cfg.flows
    } else {
        1
    }
}

/// The inspection state when a service inspects first segments.
fn inspect_for(cfg: &StateConfig, policy: &Policy) -> Option<Inspect> {
    let needed = policy
        .services
        .iter()
        .any(|s| !s.l7_rules.is_empty() || !s.tcp_payload_rules.is_empty());
    if !needed {
        return None;
    }
    // A refused config (validated by mgmt) falls back to the defaults.
    let reasm = crate::l7::reassembly::Reassembly::new(cfg.reassembly)
        .or_else(|_| crate::l7::reassembly::Reassembly::new(Default::default()))
        .ok()?;
    Some(Inspect {
        reasm,
        scratch: vec![0; crate::l7::inspect::SCRATCH_LEN].into_boxed_slice(),
        judged: 0,
        unjudgeable: 0,
    })
}

/// Everything one worker owns.
#[derive(Debug)]
pub struct WorkerState {
    /// The table sizes it was built with (tables allocated later, when a
    /// policy needs them, take theirs from here).
    pub cfg: StateConfig,
    pub flows: FlowTable,
    pub verified: VerifiedTable,
    pub sources: SourceTable,
    /// Banned sources (the auto-blacklist), dropped right after the ACL.
    pub bans: BanTable,
    /// One per policy service, indexed by `ServiceId`.
    pub services: Vec<ServiceBuckets>,
    /// Global emergency cap (rate 0 = unlimited).
    pub global: TokenBucket,
    /// The source the last classified packet verified (a challenge
    /// answered) with its TTL, until the caller takes it: the dataplane
    /// hands it to the cluster bus. Sources verified any other way (a
    /// peer's, an operator's) never land here, so they are not shared again.
    pub just_verified: Option<(core::net::IpAddr, crate::time::Nanos)>,
    /// The limit the last classified packet found its source breaking,
    /// until the caller takes it: the dataplane hands it to the
    /// management side, which counts a source's violations and bans the
    /// sources that break limits too often (`[services.blacklist]`). Only
    /// sources that proved their address (a completed handshake, a
    /// verified source) are ever noted, so that nobody can get another's
    /// address banned by spoofing it.
    pub violation: Option<Violation>,
    /// What the first bytes (or a later request) of the last classified
    /// packet's flow said, when it was judged on that packet, until the
    /// caller takes it: the dataplane attaches it to the packet's sample
    /// (detection's JA4 and Host + path heavy hitters).
    pub l7_seen: Option<crate::l7::inspect::Seen>,
    /// The init packets seen of `udp_auth` first-packet ports (fixed size).
    pub first_packets: crate::udpauth::FirstPacketTable,
    /// Concurrent connections per source (`src_conns`): as many slots as
    /// the flow table while a service sets the limit, one otherwise.
    pub conns: crate::conn::ConnCounts,
    /// First-segment inspection: the reassembly of flows whose first bytes
    /// span segments, and the scratch of a split ClientHello. `None` while
    /// no service inspects (no memory spent).
    pub inspect: Option<Inspect>,
    /// The L2 header of a client frame of a service with `empty_conn_secs`
    /// (taken from each SYN admitted there): what the RSTs of an empty
    /// connection go out with, since no packet of the flow is at hand.
    pub l2: [u8; crate::conn::MAX_L2],
    pub l2_len: u8,
    /// An empty connection the last sweep ended, until the caller sends
    /// its RSTs ([`WorkerState::sweep_flows`]).
    pub ended: Option<flow::Gone>,
}

/// Per-worker state of first-segment inspection.
#[derive(Debug)]
pub struct Inspect {
    pub reasm: crate::l7::reassembly::Reassembly<FlowId>,
    pub scratch: Box<[u8]>,
    /// Flows judged on their first bytes.
    pub judged: u64,
    /// Flows whose first bytes never became judgeable within the bound
    /// (passed).
    pub unjudgeable: u64,
}

/// A limit broken by a source that proved its address (see
/// [`WorkerState::violation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub src: core::net::IpAddr,
    pub service: crate::policy::ServiceId,
    pub kind: ViolationKind,
}

/// Which limit a [`Violation`] broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// More concurrent connections than `src_conns`.
    SrcConns,
    /// More new connections per second than `src_new_conns_ps`.
    SrcNewConns,
    /// A connection that sent no data for `empty_conn_secs` after its
    /// handshake.
    EmptyConn,
    /// A first segment (or a later request) that matched an `l7_rules`
    /// deny rule.
    L7Deny,
    /// Requests over an `l7_rules` limit rule's `per_source_rps`.
    L7Limit,
    /// A TCP flow whose first data segment matched none of its port's
    /// payload rules.
    PayloadMismatch,
    /// More packets per second than `src_pps` from a source with a live
    /// flow (or a verified one).
    SrcPps,
}

impl ViolationKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ViolationKind] = &[
        ViolationKind::SrcConns,
        ViolationKind::SrcNewConns,
        ViolationKind::EmptyConn,
        ViolationKind::L7Deny,
        ViolationKind::L7Limit,
        ViolationKind::PayloadMismatch,
        ViolationKind::SrcPps,
    ];

    /// Stable snake_case name (API, metrics, logs).
    pub const fn as_str(self) -> &'static str {
        match self {
            ViolationKind::SrcConns => "src_conns",
            ViolationKind::SrcNewConns => "src_new_conns",
            ViolationKind::EmptyConn => "empty_conn",
            ViolationKind::L7Deny => "l7_deny",
            ViolationKind::L7Limit => "l7_limit",
            ViolationKind::PayloadMismatch => "payload_mismatch",
            ViolationKind::SrcPps => "src_pps",
        }
    }

    /// Parses a name produced by [`ViolationKind::as_str`].
    pub fn from_name(name: &str) -> Option<ViolationKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl WorkerState {
    /// All tables at their configured capacities, buckets from `policy`.
    /// `workers`: number of workers sharing the node-wide limits (each gets
    /// rate / workers, at least 1).
    pub fn new(cfg: &StateConfig, policy: &Policy, workers: u32) -> Self {
        // One set of hash keys for both tables keyed by source address: a
        // source is hashed once for both (stage one of a burst).
        let by_source = ahash::RandomState::new();
        WorkerState {
            flows: FlowTable::with_capacity(cfg.flows),
            verified: VerifiedTable::with_hasher(cfg.verified, by_source.clone()),
            sources: SourceTable::with_hasher(cfg.sources, by_source.clone()),
            bans: BanTable::with_hasher(cfg.bans, by_source),
            services: policy
                .services
                .iter()
                .map(|s| ServiceBuckets::new(&s.limits, workers))
                .collect(),
            global: one_second(per_worker(policy.global_pps, workers)),
            just_verified: None,
            violation: None,
            l7_seen: None,
            first_packets: crate::udpauth::FirstPacketTable::new(),
            conns: crate::conn::ConnCounts::with_capacity(conn_slots(cfg, policy)),
            inspect: inspect_for(cfg, policy),
            l2: [0; crate::conn::MAX_L2],
            l2_len: 0,
            ended: None,
            cfg: *cfg,
        }
    }

    /// A flow left the table (FIN/RST, idle, eviction, a reset of Moat's
    /// own): its counts are settled and its reassembly freed. Every path
    /// that removes a flow calls this.
    #[inline]
    pub fn flow_gone(&mut self, g: &flow::Gone) {
        let f = &g.flow;
        if f.bits & flow::Flow::COUNTED_SRC != 0 {
            self.conns.sub(g.id.src_key(), f.service);
        }
        if f.bits & flow::Flow::COUNTED_DST != 0 {
            if let Some(b) = self.services.get_mut(usize::from(f.service)) {
                b.conns = b.conns.saturating_sub(1);
            }
        }
        if f.bits & flow::Flow::JUDGED == 0 {
            if let Some(i) = self.inspect.as_mut() {
                i.reasm.remove(&g.id);
            }
        }
    }

    /// Notes a limit broken by the source of a flow (which completed its
    /// handshake, so its address is proven).
    #[inline]
    pub fn note_violation(&mut self, id: &FlowId, service: crate::policy::ServiceId, kind: ViolationKind) {
        self.violation = Some(Violation {
            src: crate::conn::flow_src_ip(id),
            service,
            kind,
        });
    }

    /// Between bursts: frees flows idle past `idle` among the next
    /// `budget` slots, settling their counts, and ends at most one empty
    /// connection (a service's `empty_conn_secs`), which it leaves in
    /// [`WorkerState::ended`] for the caller to reset both ways (and notes
    /// as a violation). Returns the flows freed.
    pub fn sweep_flows(&mut self, now: crate::time::Nanos, idle: crate::time::Nanos, budget: usize) -> usize {
        // In chunks of at most 64 slots (the flows freed are settled after
        // each), at most one lap of the table.
        let mut left = budget.min(self.flows.capacity());
        let mut freed = 0;
        while left > 0 {
            let chunk = left.min(64);
            freed += self.sweep_chunk(now, idle, chunk);
            left -= chunk;
        }
        freed
    }

    fn sweep_chunk(&mut self, now: crate::time::Nanos, idle: crate::time::Nanos, budget: usize) -> usize {
        let mut gone = arrayvec::ArrayVec::<flow::Gone, 64>::new();
        let services = &self.services;
        let mut ended = self.ended.is_some();
        let mut empty = None;
        let n = self.flows.sweep_each(
            now,
            idle,
            budget,
            |f| {
                if ended {
                    return false;
                }
                let span = services.get(usize::from(f.service)).map_or(0, |b| b.empty);
                let e = span != 0 && f.empty_for(now, span);
                ended |= e;
                e
            },
            |g| {
                if empty.is_none() && g.flow.established() && g.flow.bits & flow::Flow::DATA == 0 {
                    let span = services.get(usize::from(g.flow.service)).map_or(0, |b| b.empty);
                    if span != 0 && g.flow.empty_for(now, span) {
                        empty = Some(g);
                    }
                }
                let _ = gone.try_push(g);
            },
        );
        for g in &gone {
            self.flow_gone(g);
        }
        if let Some(g) = empty {
            self.note_violation(&g.id, g.flow.service, ViolationKind::EmptyConn);
            self.ended = Some(g);
        }
        n
    }

    /// Control side: re-reads service limits and the global cap after a
    /// policy swap (resizes `services`; allocation allowed here, never per
    /// packet). Buckets of services that remain keep their levels.
    pub fn apply_policy(&mut self, policy: &Policy, workers: u32) {
        // Tables that only some policies need are allocated when one does
        // (control side), and kept after.
        if self.conns.capacity() < conn_slots(&self.cfg, policy) {
            self.conns = crate::conn::ConnCounts::with_capacity(conn_slots(&self.cfg, policy));
        }
        if self.inspect.is_none() {
            self.inspect = inspect_for(&self.cfg, policy);
        }
        self.services.truncate(policy.services.len());
        for (b, s) in self.services.iter_mut().zip(&policy.services) {
            b.set(&s.limits, workers);
        }
        let have = self.services.len();
        self.services.extend(
            policy.services[have..]
                .iter()
                .map(|s| ServiceBuckets::new(&s.limits, workers)),
        );
        let global = per_worker(policy.global_pps, workers);
        self.global.set_rate(global, global);
    }

    /// Bytes reserved by all tables (constant after `new`, and after each
    /// `apply_policy` that does not add services).
    pub fn memory_bytes(&self) -> usize {
        self.flows.memory_bytes()
            + self.conns.memory_bytes()
            + self
                .inspect
                .as_ref()
                .map_or(0, |i| i.reasm.memory_bytes() + i.scratch.len())
            + self.verified.memory_bytes()
            + self.sources.memory_bytes()
            + self.bans.memory_bytes()
            + self.services.capacity() * core::mem::size_of::<ServiceBuckets>()
            + self.first_packets.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie::CookieSecrets;
    use crate::policy::{Origin, Service};
    use crate::time::SECOND;

    fn policy(pps: &[u64], global: u64) -> Policy {
        let mut p = Policy::new(CookieSecrets::new([7; 16]));
        let origin = p.add_origin(Origin {
            name: "o".into(),
            tunnel_src: "10.0.0.1".parse().expect("ip"),
            tunnel_dst: "10.0.0.2".parse().expect("ip"),
            key: None,
            mtu: 1476,
        });
        for (i, &rate) in pps.iter().enumerate() {
            let mut s = Service::new("s", core::net::IpAddr::V4([192, 0, 2, i as u8].into()), origin);
            s.limits.service_pps = rate;
            s.limits.challenge_pps = rate / 2;
            s.limits.icmp_pps = rate / 4;
            p.add_service(s).expect("service");
        }
        p.global_pps = global;
        p
    }

    #[test]
    fn limits_are_split_among_workers() {
        let cfg = StateConfig {
            flows: 16,
            verified: 16,
            sources: 16,
            reassembly: Default::default(),
            bans: 16,
        };
        let st = WorkerState::new(&cfg, &policy(&[1000, 3, 0], 10_000), 4);
        assert_eq!(st.services.len(), 3);
        assert_eq!(st.services[0].pps.rate(), 250);
        assert_eq!(st.services[0].challenges.rate(), 125);
        assert_eq!(st.services[0].icmp.rate(), 62);
        // 3 / 4 rounds to 0; a limit never becomes unlimited.
        assert_eq!(st.services[1].pps.rate(), 1);
        assert_eq!(st.services[2].pps.rate(), 0);
        assert_eq!(st.global.rate(), 2500);
        assert_eq!(st.flows.capacity(), 16);
        // Zero workers is taken as one.
        let st = WorkerState::new(&cfg, &policy(&[1000], 0), 0);
        assert_eq!(st.services[0].pps.rate(), 1000);
        assert_eq!(st.global.rate(), 0);
    }

    #[test]
    fn apply_policy_resizes_and_keeps_levels() {
        let cfg = StateConfig {
            flows: 8,
            verified: 8,
            sources: 8,
            reassembly: Default::default(),
            bans: 8,
        };
        let mut st = WorkerState::new(&cfg, &policy(&[2], 0), 1);
        assert!(st.services[0].pps.take(SECOND));
        assert!(st.services[0].pps.take(SECOND));
        assert!(!st.services[0].pps.take(SECOND));
        st.apply_policy(&policy(&[2, 100, 50], 40), 2);
        assert_eq!(st.services.len(), 3);
        assert_eq!(st.services[0].pps.rate(), 1);
        assert!(!st.services[0].pps.take(SECOND), "level kept across the swap");
        assert_eq!(st.services[2].pps.rate(), 25);
        assert_eq!(st.services[2].icmp.rate(), 6);
        assert_eq!(st.global.rate(), 20);
        assert!(st.global.take(SECOND));
        st.apply_policy(&policy(&[10], 0), 1);
        assert_eq!(st.services.len(), 1);
        assert_eq!(st.services[0].pps.rate(), 10);
        assert_eq!(st.global.rate(), 0);
    }

    #[test]
    fn memory_is_reserved_up_front() {
        let st = WorkerState::new(&StateConfig::default(), &policy(&[1], 0), 1);
        let bytes = st.memory_bytes();
        // Three tables of 65536 slots (40 to 96 bytes) plus their indexes.
        assert!(bytes > 65536 * (56 + 40 + 80), "{bytes}");
        assert!(bytes < 32 << 20, "{bytes}");
    }
}
