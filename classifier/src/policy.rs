//! The policy snapshot: everything a worker needs to decide, built once by the
//! control side (config, REST) and shared read-only by all workers; a change
//! builds a new snapshot that workers pick up at a burst boundary.
//!
//! Building is where the cost goes (port bitsets, VIP index, ACL tables) so
//! that every lookup on the packet path is O(1) or a short LPM walk.

use core::net::IpAddr;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use crate::acl::Acl;
use crate::cookie::CookieSecrets;
use crate::fingerprint::{Signatures, TcpRule, UdpRule};
use crate::time::{Nanos, SECOND};

/// Index of a service in [`Policy::services`].
pub type ServiceId = u16;
/// Index of an origin in [`Policy::origins`].
pub type OriginId = u16;

/// A set of 16-bit ports as a 65536-bit bitset: one load and one test per
/// lookup.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet(Box<[u64; 1024]>);

impl Default for PortSet {
    fn default() -> Self {
        PortSet(Box::new([0; 1024]))
    }
}

impl core::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl PortSet {
    pub fn from_ports(ports: impl IntoIterator<Item = u16>) -> Self {
        let mut s = PortSet::default();
        for p in ports {
            s.insert(p);
        }
        s
    }
    pub fn insert(&mut self, port: u16) {
        self.0[usize::from(port >> 6)] |= 1 << (port & 63);
    }
    pub fn insert_range(&mut self, lo: u16, hi: u16) {
        for p in lo..=hi {
            self.insert(p);
        }
    }
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|p| self.contains(*p))
    }
}

/// The well-known reflection/amplification source ports (DESIGN.md, UDP):
/// the one list of the product. The classifier drops UDP from these ports
/// (unless a service allows them) and detection names a flood from them a
/// reflection attack ([`is_reflection_port`]).
pub const REFLECTION_PORTS: &[(u16, &str)] = &[
    (17, "qotd"),
    (19, "chargen"),
    (53, "dns"),
    (69, "tftp"),
    (111, "portmap"),
    (123, "ntp"),
    (137, "netbios"),
    (161, "snmp"),
    (389, "cldap"),
    (427, "slp"),
    (1900, "ssdp"),
    (3283, "ard"),
    (3702, "ws-discovery"),
    (5353, "mdns"),
    (5683, "coap"),
    (10001, "ubiquiti"),
    (11211, "memcached"),
    (37810, "dvr"),
];

/// Whether `port` is one of [`REFLECTION_PORTS`].
pub fn is_reflection_port(port: u16) -> bool {
    REFLECTION_PORTS.iter().any(|(p, _)| *p == port)
}

/// SYN authentication mode of a service (DESIGN.md, countermeasures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynAuth {
    /// SYN-ACK with a cookie as acknowledgement number; the client's RST
    /// proves the source.
    #[default]
    ChallengeAck,
    /// SYN-ACK with a cookie as sequence number; the client's ACK proves the
    /// source and is answered with a RST; the client reconnects.
    CookieReset,
    /// No SYN authentication: every SYN that passes the other checks creates
    /// a flow.
    Off,
    /// HTTP services: SYN-ACK with a cookie as sequence number (as
    /// `CookieReset`); the client's first request is answered by Moat with
    /// a `307` to the same URL carrying a stateless token, and a request
    /// carrying a valid token verifies the source ([`crate::l7::redirect`]).
    HttpRedirect,
}

impl SynAuth {
    pub const fn as_str(self) -> &'static str {
        match self {
            SynAuth::ChallengeAck => "challenge-ack",
            SynAuth::CookieReset => "cookie-reset",
            SynAuth::Off => "off",
            SynAuth::HttpRedirect => "http-redirect",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "challenge-ack" => Some(SynAuth::ChallengeAck),
            "cookie-reset" => Some(SynAuth::CookieReset),
            "off" => Some(SynAuth::Off),
            "http-redirect" => Some(SynAuth::HttpRedirect),
            _ => None,
        }
    }
}

/// Rate limits of a service. Zero means unlimited. Per-source limits apply to
/// each source address separately; `service_pps`, `challenge_pps` and
/// `icmp_pps` to the whole service on one node (workers split them evenly:
/// each worker allows `rate / workers`, at least 1).
///
/// Every limit but the ICMP ones is off by default. The ICMP limits are on
/// ([`Limits::DEFAULT_ICMP_PPS`], [`Limits::DEFAULT_SRC_ICMP_PPS`]): a
/// service that allows ICMP needs a few echo requests and errors per second,
/// never thousands, and an echo flood from random sources otherwise reaches
/// the origin whole (no other check can tell a spoofed ping from a real one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub src_pps: u32,
    pub src_syn_pps: u32,
    /// New connections (SYNs that passed) per second per source.
    pub src_new_conns_ps: u32,
    /// Concurrent connections per source: a flow counts from its first
    /// passed segment (its SYN) until the client's FIN or RST, its idle
    /// timeout or its eviction; a SYN beyond it is dropped.
    pub src_conns: u32,
    /// Concurrent connections to the whole service on one node (workers
    /// split it like `service_pps`).
    pub dst_conns: u64,
    /// New connections per second to the whole service on one node
    /// (workers split it like `service_pps`).
    pub dst_new_conns_ps: u64,
    /// An established connection whose client sends no data this many
    /// seconds after its handshake is reset both ways (a violation).
    pub empty_conn_secs: u32,
    /// ICMP and ICMPv6 messages per second per source address (neighbour
    /// discovery never reaches a service, so it is never counted).
    pub src_icmp_pps: u32,
    pub service_pps: u64,
    /// Challenges (SYN-ACKs) sent per second for this service, so that a
    /// spoofed flood cannot turn Moat into a reflector.
    pub challenge_pps: u64,
    /// ICMP and ICMPv6 messages per second to the whole service on one node
    /// (every allowed type: echo requests and replies, errors). Sources
    /// that proved their address (verified by SYN authentication, or
    /// ACL-allowed) still pass when it is spent, so that a spoofed flood
    /// cannot starve them; their own per-source limit still applies.
    pub icmp_pps: u64,
}

impl Limits {
    /// Default of [`Limits::icmp_pps`]: 200 messages/s per service and node,
    /// "a few hundred per second" (issue 10). Enough for every monitoring
    /// probe and traceroute a service draws (a ping a second from a hundred
    /// probes is half of it), and the echo answers an origin can be made to
    /// send stay under 200 × 1500 B = 2.4 Mbit/s per node.
    pub const DEFAULT_ICMP_PPS: u64 = 200;
    /// Default of [`Limits::src_icmp_pps`]: 20 messages/s per source, twenty
    /// times `ping`'s default of one a second (a person pinging, a
    /// monitoring probe, a traceroute's three probes per hop stay far below
    /// it); one source takes a tenth of the service's default at most.
    pub const DEFAULT_SRC_ICMP_PPS: u32 = 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            src_pps: 0,
            src_syn_pps: 0,
            src_new_conns_ps: 0,
            src_conns: 0,
            dst_conns: 0,
            dst_new_conns_ps: 0,
            empty_conn_secs: 0,
            src_icmp_pps: Self::DEFAULT_SRC_ICMP_PPS,
            service_pps: 0,
            challenge_pps: 0,
            icmp_pps: Self::DEFAULT_ICMP_PPS,
        }
    }
}

/// A UDP payload rule: the datagram passes when
/// `payload[offset..offset+len] & mask == value & mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadRule {
    pub port: u16,
    pub offset: u16,
    pub len: u8,
    pub value: [u8; PayloadRule::MAX_LEN],
    pub mask: [u8; PayloadRule::MAX_LEN],
}

impl PayloadRule {
    pub const MAX_LEN: usize = 32;

    /// Builds a rule; `value` and `mask` must have the same length, at most
    /// [`Self::MAX_LEN`] bytes (checked by config validation; longer input is
    /// refused here with `None`).
    pub fn new(port: u16, offset: u16, value: &[u8], mask: &[u8]) -> Option<Self> {
        if value.len() != mask.len() || value.len() > Self::MAX_LEN || value.is_empty() {
            return None;
        }
        let mut r = PayloadRule {
            port,
            offset,
            len: value.len() as u8,
            value: [0; 32],
            mask: [0; 32],
        };
        r.value[..value.len()].copy_from_slice(value);
        r.mask[..mask.len()].copy_from_slice(mask);
        Some(r)
    }

    /// Does `payload` match? A payload too short never matches.
    #[inline]
    pub fn matches(&self, payload: &[u8]) -> bool {
        let off = usize::from(self.offset);
        let len = usize::from(self.len);
        let Some(bytes) = payload.get(off..off + len) else {
            return false;
        };
        bytes
            .iter()
            .zip(&self.value[..len])
            .zip(&self.mask[..len])
            .all(|((b, v), m)| (b & m) == (v & m))
    }
}

/// A protected service: a VIP and what may reach it.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub vip: IpAddr,
    pub origin: OriginId,
    pub tcp_ports: PortSet,
    pub udp_ports: PortSet,
    pub icmp: bool,
    pub syn_auth: SynAuth,
    pub limits: Limits,
    /// UDP source ports this service accepts even though they are
    /// reflection ports (e.g. a DNS resolver service expects answers from 53).
    pub allow_src_ports: PortSet,
    pub payload_rules: Vec<PayloadRule>,
    /// UDP game authentication, one entry per port at most, sorted by port
    /// ([`crate::udpauth`]).
    pub udp_auth: Vec<crate::udpauth::UdpAuth>,
    /// Payload rules of TCP ports, judged on each flow's first data bytes
    /// (`offset` from the first payload byte of the flow): a flow that
    /// matches none of its port's rules is reset both ways. Sorted by port.
    pub tcp_payload_rules: Vec<PayloadRule>,
    /// First-segment rules (`[[services.l7_rules]]`), in config order.
    pub l7_rules: Vec<crate::l7::rules::L7Rule>,
    /// The auto-blacklist (`[services.blacklist]`), `None`: off. Carried in
    /// the snapshot for the management plane, which counts violations and
    /// bans; `classify` itself only reads the workers' ban tables.
    pub blacklist: Option<BanRule>,
}

/// When a source that keeps breaking a service's limits is banned: at
/// `violations` violations within `window`, for `ban`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanRule {
    pub violations: u32,
    pub window: Nanos,
    pub ban: Nanos,
}

impl Service {
    /// A service with nothing allowed yet; fill its fields, then add it with
    /// [`Policy::add_service`].
    pub fn new(name: &str, vip: IpAddr, origin: OriginId) -> Self {
        Service {
            name: name.to_string(),
            vip,
            origin,
            tcp_ports: PortSet::default(),
            udp_ports: PortSet::default(),
            icmp: false,
            syn_auth: SynAuth::default(),
            limits: Limits::default(),
            allow_src_ports: PortSet::default(),
            payload_rules: Vec::new(),
            udp_auth: Vec::new(),
            tcp_payload_rules: Vec::new(),
            l7_rules: Vec::new(),
            blacklist: None,
        }
    }

    /// The UDP authentication of `port`, if it has one.
    #[inline]
    pub fn udp_auth_for(&self, port: u16) -> Option<&crate::udpauth::UdpAuth> {
        if self.udp_auth.is_empty() {
            return None;
        }
        self.udp_auth.iter().find(|a| a.port == port)
    }

    /// Payload rules of TCP `port` (sorted by port like the UDP ones).
    #[inline]
    pub fn tcp_payload_rules_for(&self, port: u16) -> &[PayloadRule] {
        let start = self.tcp_payload_rules.partition_point(|r| r.port < port);
        let end = self.tcp_payload_rules[start..].partition_point(|r| r.port == port) + start;
        &self.tcp_payload_rules[start..end]
    }

    /// Whether flows to TCP `port` have their first data bytes inspected
    /// (`l7_rules`, or payload rules on that port).
    #[inline]
    pub fn inspects(&self, port: u16) -> bool {
        !self.l7_rules.is_empty() || !self.tcp_payload_rules_for(port).is_empty()
    }

    /// Whether the service tracks anything per flow beyond its liveness
    /// (counts, empty connections, inspection): the SYN path sets the
    /// flow's bits only then.
    #[inline]
    pub fn conn_limits(&self) -> bool {
        let l = &self.limits;
        l.src_conns != 0 || l.dst_conns != 0
    }

    /// Payload rules of UDP `port` (rules are kept sorted by port).
    #[inline]
    pub fn payload_rules_for(&self, port: u16) -> &[PayloadRule] {
        let start = self.payload_rules.partition_point(|r| r.port < port);
        let end = self.payload_rules[start..].partition_point(|r| r.port == port) + start;
        &self.payload_rules[start..end]
    }
}

/// A GRE tunnel toward a hidden origin (RFC 2784, key RFC 2890).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub name: String,
    pub tunnel_src: core::net::Ipv4Addr,
    pub tunnel_dst: core::net::Ipv4Addr,
    pub key: Option<u32>,
    /// MTU of the tunnel: the largest inner IP packet that fits.
    pub mtu: u16,
}

impl Origin {
    /// Largest TCP MSS that fits the tunnel for an inner IPv4 (20 + 20 bytes
    /// of headers) or IPv6 (40 + 20) packet.
    pub fn mss_for(&self, ipv6: bool) -> u16 {
        self.mtu.saturating_sub(if ipv6 { 60 } else { 40 })
    }
}

/// What to do with IP fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FragPolicy {
    /// Drop every fragment (the default: no service of a scrubbing centre
    /// needs them, and they hide L4 headers from every check).
    #[default]
    Drop,
    /// Pass first fragments through all checks and non-first fragments of a
    /// service VIP unchecked.
    Allow,
}

/// Header sanity settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sanity {
    pub min_ttl: u8,
    pub fragments: FragPolicy,
    pub verify_ip_checksum: bool,
}

impl Default for Sanity {
    fn default() -> Self {
        Sanity {
            min_ttl: 2,
            fragments: FragPolicy::Drop,
            verify_ip_checksum: true,
        }
    }
}

/// One of the node's own addresses, answered to ARP / neighbour solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnAddr {
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

/// Timeouts of per-core state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a source stays verified after passing SYN authentication.
    pub verified_ttl: Nanos,
    /// Idle time after which a flow is forgotten.
    pub flow_idle: Nanos,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            verified_ttl: 300 * SECOND,
            flow_idle: 120 * SECOND,
        }
    }
}

/// The snapshot.
#[derive(Debug, Clone)]
pub struct Policy {
    pub services: Vec<Service>,
    pub origins: Vec<Origin>,
    // VIPs keyed by plain integers: hashing a u32 is a few instructions,
    // hashing an `IpAddr` (discriminant, length prefix, bytes) several times
    // that, on every packet. FxHash (one multiply) and not a keyed hasher:
    // the keys are the operator's VIPs, and a packet only looks up, so it
    // cannot build a collision chain; `ahash` cost 13 to 22 instructions
    // more per packet (README, "Benchmarks").
    vip4: HashMap<u32, ServiceId, FxBuildHasher>,
    vip6: HashMap<u128, ServiceId, FxBuildHasher>,
    pub acl: Acl,
    pub reflection_ports: PortSet,
    /// ICMP (v4) types accepted for services that allow ICMP.
    pub icmp_types: PortSet,
    /// ICMPv6 types accepted for services that allow ICMP.
    pub icmpv6_types: PortSet,
    pub tcp_deny: Vec<TcpRule>,
    pub udp_deny: Vec<UdpRule>,
    pub signatures: Signatures,
    pub own_addrs: Vec<OwnAddr>,
    pub sanity: Sanity,
    pub timeouts: Timeouts,
    /// Emergency cap on all traffic into one node, packets per second
    /// (0 = none). Workers split it evenly.
    pub global_pps: u64,
    pub secrets: CookieSecrets,
}

/// Errors when building a policy (control side, allocation allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    DuplicateVip(IpAddr),
    UnknownOrigin(OriginId),
    TooManyServices,
}

impl core::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PolicyError::DuplicateVip(ip) => write!(f, "VIP {ip} is used by two services"),
            PolicyError::UnknownOrigin(o) => write!(f, "origin index {o} does not exist"),
            PolicyError::TooManyServices => write!(f, "more than 65535 services"),
        }
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// An empty policy (no services: everything is dropped as `no_service`)
    /// with the default reflection ports and ICMP types.
    pub fn new(secrets: CookieSecrets) -> Self {
        Policy {
            services: Vec::new(),
            origins: Vec::new(),
            vip4: HashMap::default(),
            vip6: HashMap::default(),
            acl: Acl::default(),
            reflection_ports: PortSet::from_ports(REFLECTION_PORTS.iter().map(|(p, _)| *p)),
            // Echo reply, destination unreachable (PMTUD), echo request, time
            // exceeded.
            icmp_types: PortSet::from_ports([0, 3, 8, 11]),
            // Destination unreachable, packet too big, time exceeded, echo
            // request, echo reply.
            icmpv6_types: PortSet::from_ports([1, 2, 3, 128, 129]),
            tcp_deny: Vec::new(),
            udp_deny: Vec::new(),
            signatures: Signatures::default(),
            own_addrs: Vec::new(),
            sanity: Sanity::default(),
            timeouts: Timeouts::default(),
            global_pps: 0,
            secrets,
        }
    }

    /// Adds an origin, returning its id.
    pub fn add_origin(&mut self, origin: Origin) -> OriginId {
        self.origins.push(origin);
        (self.origins.len() - 1) as OriginId
    }

    /// Adds a service, returning its id.
    pub fn add_service(&mut self, mut service: Service) -> Result<ServiceId, PolicyError> {
        if self.service_for(service.vip).is_some() {
            return Err(PolicyError::DuplicateVip(service.vip));
        }
        if usize::from(service.origin) >= self.origins.len() {
            return Err(PolicyError::UnknownOrigin(service.origin));
        }
        let id = ServiceId::try_from(self.services.len()).map_err(|_| PolicyError::TooManyServices)?;
        service.payload_rules.sort_by_key(|r| r.port);
        service.udp_auth.sort_by_key(|a| a.port);
        service.tcp_payload_rules.sort_by_key(|r| r.port);
        match service.vip {
            IpAddr::V4(a) => self.vip4.insert(u32::from(a), id),
            IpAddr::V6(a) => self.vip6.insert(u128::from(a), id),
        };
        self.services.push(service);
        Ok(id)
    }

    /// The service whose VIP is `dst`.
    #[inline]
    pub fn service_for(&self, dst: IpAddr) -> Option<ServiceId> {
        match dst {
            IpAddr::V4(a) => self.vip4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.vip6.get(&u128::from(a)).copied(),
        }
    }

    /// [`Policy::service_for`] by integer address (the packet path).
    #[inline]
    pub fn service_for_addr(&self, dst: crate::parse::Addr, v6: bool) -> Option<ServiceId> {
        if v6 {
            self.vip6.get(&dst.v6_bits()).copied()
        } else {
            self.vip4.get(&dst.v4_bits()).copied()
        }
    }

    /// The MAC of the node's address `ip`, if it is one.
    #[inline]
    pub fn own_mac(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.own_addrs.iter().find(|a| a.ip == ip).map(|a| a.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflection_ports_are_one_sorted_list_detection_and_the_classifier_share() {
        let ports: Vec<u16> = REFLECTION_PORTS.iter().map(|(p, _)| *p).collect();
        assert!(
            ports.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates: {ports:?}"
        );
        // The ports detection named before the lists were merged (QOTD and
        // CoAP were missing from the classifier's).
        for p in [53, 123, 1900, 11211, 389, 19, 161, 17, 111, 137, 3702, 5683] {
            assert!(is_reflection_port(p), "{p}");
        }
        assert!(!is_reflection_port(80) && !is_reflection_port(27015));
        let set = PortSet::from_ports(ports.iter().copied());
        assert_eq!(set.iter().collect::<Vec<_>>(), ports);
    }

    #[test]
    fn many_vips_of_one_prefix_each_find_their_service() {
        // Consecutive VIPs differ in their low bits only, the case a
        // multiplicative hash must spread (FxHash's finish rotates its high
        // bits down): each is found, by address and by `IpAddr`, and the
        // addresses beside them are not.
        let mut pol = Policy::new(CookieSecrets::new([7; 16]));
        pol.add_origin(Origin {
            name: "o".into(),
            tunnel_src: [192, 168, 77, 1].into(),
            tunnel_dst: [192, 168, 77, 2].into(),
            key: None,
            mtu: 1476,
        });
        let v4 = |i: u32| IpAddr::from(core::net::Ipv4Addr::from(0xcb00_7100 + i));
        let v6 = |i: u32| IpAddr::from(core::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(i)));
        for i in 0..2000 {
            assert_eq!(pol.add_service(Service::new("v4", v4(i), 0)), Ok(2 * i as ServiceId));
            assert_eq!(
                pol.add_service(Service::new("v6", v6(i), 0)),
                Ok(2 * i as ServiceId + 1)
            );
        }
        assert_eq!(
            pol.add_service(Service::new("again", v4(5), 0)),
            Err(PolicyError::DuplicateVip(v4(5)))
        );
        for i in 0..4000 {
            for (ip, id) in [(v4(i), 2 * i), (v6(i), 2 * i + 1)] {
                let want = (i < 2000).then_some(id as ServiceId);
                assert_eq!(pol.service_for(ip), want, "{ip}");
                let (addr, is_v6) = crate::parse::Addr::from_ip(ip);
                assert_eq!(pol.service_for_addr(addr, is_v6), want, "{ip}");
            }
        }
    }
}
