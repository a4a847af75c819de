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
    /// Banned sources (`[dataplane] ban_table_size`).
    pub bans: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            flows: 65536,
            verified: 65536,
            sources: 65536,
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
}

impl ServiceBuckets {
    fn new(limits: &crate::policy::Limits, workers: u32) -> Self {
        ServiceBuckets {
            pps: one_second(per_worker(limits.service_pps, workers)),
            challenges: one_second(per_worker(limits.challenge_pps, workers)),
            icmp: one_second(per_worker(limits.icmp_pps, workers)),
        }
    }

    fn set(&mut self, limits: &crate::policy::Limits, workers: u32) {
        let pps = per_worker(limits.service_pps, workers);
        let challenges = per_worker(limits.challenge_pps, workers);
        let icmp = per_worker(limits.icmp_pps, workers);
        self.pps.set_rate(pps, pps);
        self.challenges.set_rate(challenges, challenges);
        self.icmp.set_rate(icmp, icmp);
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

/// Everything one worker owns.
#[derive(Debug)]
pub struct WorkerState {
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
        }
    }

    /// Control side: re-reads service limits and the global cap after a
    /// policy swap (resizes `services`; allocation allowed here, never per
    /// packet). Buckets of services that remain keep their levels.
    pub fn apply_policy(&mut self, policy: &Policy, workers: u32) {
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
            + self.verified.memory_bytes()
            + self.sources.memory_bytes()
            + self.bans.memory_bytes()
            + self.services.capacity() * core::mem::size_of::<ServiceBuckets>()
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
