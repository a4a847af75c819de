//! The outcome of [`crate::classify`] for one packet, and the one enum of
//! reasons for which Moat drops a packet. Every drop has exactly one reason;
//! callers count them per worker (`[u64; DropReason::COUNT]`) and export them
//! as metrics under the names given by [`DropReason::as_str`].

/// What the caller must do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Clean: re-inject toward the service's origin through GRE.
    Pass(Pass),
    /// A reply (challenge SYN-ACK, RST, ARP reply, neighbour advertisement)
    /// of `len` bytes was written into the caller's reply buffer; send it out
    /// the port the packet came in on and free the packet.
    Reply { len: usize },
    /// Answer the packet (a TCP segment) in place: rewrite the frame into
    /// the TCP reply that these fields describe
    /// ([`crate::build::tcp_answer`]: MACs, addresses and ports swapped,
    /// the headers written from templates, the checksums summed from the
    /// fields) and send it out the port it came in on. A SYN flood's
    /// challenges are answered this way, without building each aside and
    /// copying it over the frame (DESIGN.md: replies are written in place).
    /// Only [`crate::classify::classify_hashed`], the dataplane's entry,
    /// returns it; the other entries build the answer into the reply buffer
    /// and return [`Verdict::Reply`].
    Answer(TcpAnswer),
    /// Drop the packet and count the reason.
    Drop(DropReason),
    /// End the connection on both sides (issue 15): the packet (a client
    /// TCP segment) is dropped and counted as `reason`; a RST toward the
    /// client of `len` bytes was written into the reply buffer (send it out
    /// the port the packet came in on), and the packet itself is to be
    /// rewritten into the client's own RST toward the origin
    /// ([`crate::conn::reset_in_place`]) and encapsulated toward `origin`
    /// like a passed packet of `service`.
    ResetBoth {
        len: usize,
        reason: DropReason,
        service: crate::policy::ServiceId,
        origin: crate::policy::OriginId,
    },
}

/// The TCP header of a reply to a segment ([`Verdict::Answer`]); the rest
/// (addresses, ports, L2 header) comes from the segment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpAnswer {
    pub seq: u32,
    pub ack: u32,
    /// [`crate::wire::tcp::flags`] bits.
    pub flags: u8,
    pub window: u16,
    /// An MSS option (the only option an answer carries).
    pub mss: Option<u16>,
}

/// Details the caller needs to re-inject a passed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Index of the service in [`crate::Policy::services`].
    pub service: crate::policy::ServiceId,
    /// Index of the service's origin in [`crate::Policy::origins`]: the
    /// tunnel to encapsulate toward.
    pub origin: crate::policy::OriginId,
    /// The packet is a TCP SYN: clamp its MSS to the origin's MTU.
    pub syn: bool,
}

/// Everything the dataplane needs to carry out one packet's fate
/// (DESIGN.md: the verdict is the whole contract), so that it never looks
/// the policy up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The service the packet was addressed to, whatever its verdict;
    /// `None` when it never reached the service lookup (ARP, neighbour
    /// discovery, sanity checks, ACL deny, no service).
    pub service: Option<crate::policy::ServiceId>,
    /// The packet is a TCP connection request
    /// ([`crate::wire::tcp::flags::is_pure_syn`]).
    pub syn: bool,
    /// The tunnel MTU of the service's origin (0 without a service): what
    /// an ICMP error reports for a `too_big` drop.
    pub mtu: u16,
}

impl Decision {
    /// A verdict reached before the service lookup.
    #[inline]
    pub const fn early(verdict: Verdict) -> Self {
        Decision {
            verdict,
            service: None,
            syn: false,
            mtu: 0,
        }
    }
}

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// Why a packet was dropped. One variant per check of the packet path
        /// (DESIGN.md), in path order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order (`ALL[r as usize] == r`).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons: the size of a per-worker counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name, used in metrics labels and reports.
            pub const fn as_str(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// Parses a name produced by [`DropReason::as_str`].
            pub fn from_name(name: &str) -> Option<DropReason> {
                match name { $($name => Some(DropReason::$variant),)* _ => None }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than its Ethernet/VLAN header.
    TruncatedL2 = "truncated_l2",
    /// EtherType that is neither IPv4, IPv6 nor ARP.
    NonIp = "non_ip",
    /// ARP that is not a request for one of the node's own addresses.
    ArpIgnored = "arp_ignored",
    /// IPv4/IPv6 header truncated or inconsistent (version, IHL, lengths).
    BadIpHeader = "bad_ip_header",
    /// IPv4 header checksum wrong.
    BadIpChecksum = "bad_ip_checksum",
    /// Source equals destination address (land attack).
    Land = "land",
    /// Source address that can never be a client (multicast, broadcast,
    /// loopback, unspecified).
    BadSource = "bad_source",
    /// TTL / hop limit below the policy minimum.
    LowTtl = "low_ttl",
    /// Source address in the ACL deny list.
    AclDeny = "acl_deny",
    /// Destination is not a protected VIP (or the node itself).
    NoService = "no_service",
    /// Protocol or destination port not allowed by the service.
    PortNotAllowed = "port_not_allowed",
    /// IP fragment, dropped by the fragment policy.
    Fragment = "fragment",
    /// TCP/UDP/ICMP header truncated or inconsistent.
    BadL4Header = "bad_l4_header",
    /// Invalid TCP flag combination (null, SYN+FIN, SYN+RST, Xmas, ...).
    BadTcpFlags = "bad_tcp_flags",
    /// TCP SYN whose fingerprint matches a static deny rule.
    FingerprintDeny = "fingerprint_deny",
    /// Packet matching an active dynamic signature rule.
    SignatureDeny = "signature_deny",
    /// RST (challenge-ack) or ACK (cookie-reset) whose cookie is wrong or
    /// expired.
    BadCookie = "bad_cookie",
    /// A correct challenge answer: it verified its source and is consumed
    /// (counted, not forwarded).
    ChallengeAnswered = "challenge_answered",
    /// Non-SYN TCP packet with no flow and no verified source (ACK/RST/FIN
    /// floods).
    TcpNoFlow = "tcp_no_flow",
    /// UDP from a reflection/amplification source port (DNS, NTP, SSDP, ...).
    ReflectionPort = "reflection_port",
    /// UDP payload not matching any payload rule of the service port.
    PayloadMismatch = "payload_mismatch",
    /// ICMP type not in the allowlist.
    IcmpType = "icmp_type",
    /// Per-source packet rate exceeded.
    RateLimitSource = "rate_limit_source",
    /// Per-source SYN rate exceeded.
    RateLimitSyn = "rate_limit_syn",
    /// Per-source new-flow rate exceeded.
    RateLimitNewFlow = "rate_limit_new_flow",
    /// Per-service packet rate exceeded.
    RateLimitService = "rate_limit_service",
    /// Per-service challenge (SYN-ACK) rate exceeded.
    RateLimitChallenge = "rate_limit_challenge",
    /// Global emergency cap exceeded.
    RateLimitGlobal = "rate_limit_global",
    /// Packet larger than the origin's tunnel MTU (passed SYNs are also
    /// MSS-clamped so that the flow's later segments fit).
    TooBig = "too_big",
    /// IP traffic received on the inside port (only ARP and IPv6 neighbour
    /// discovery are expected there).
    WrongPort = "wrong_port",
    /// The next hop toward the origin is not resolved (no ARP answer yet and
    /// no static MAC).
    NoNextHop = "no_next_hop",
    /// IPv6 neighbour discovery that is not a valid Neighbor Solicitation
    /// for one of the node's own addresses (RFC 4861 §7.1.1): router
    /// solicitations and advertisements, neighbour advertisements,
    /// redirects, solicitations for other targets. Last rather than beside
    /// `ArpIgnored`, so that the numbers of the other reasons stay as they
    /// were.
    NdIgnored = "nd_ignored",
    /// ICMP or ICMPv6 message over its service's ICMP rate
    /// (`Limits::icmp_pps`), from a source that has not proved its address
    /// (echo floods from random sources). After `NdIgnored` for the same
    /// reason as it.
    RateLimitIcmp = "rate_limit_icmp",
    /// ICMP or ICMPv6 message over its source's ICMP rate
    /// (`Limits::src_icmp_pps`).
    RateLimitIcmpSource = "rate_limit_icmp_source",
    /// `http-redirect`: a segment of a connection Moat completed with a SYN
    /// cookie that carries no request (the client's handshake ACK, a FIN
    /// or ACK without data): consumed, nothing sent.
    HttpHandshake = "http_handshake",
    /// A datagram from an unverified source on a `udp_auth` port that is
    /// not its authentication (a2s: not a query, or a query shorter than
    /// the challenge reply; first-packet: not the init packet).
    UdpUnverified = "udp_unverified",
    /// `udp_auth` first-packet: the init packet of an unverified source,
    /// remembered (its first, one too early, or one after the window).
    UdpFirstPacket = "udp_first_packet",
    /// SYN of a source that has `Limits::src_conns` connections open to
    /// the service.
    ConnLimitSource = "conn_limit_source",
    /// SYN to a service that has `Limits::dst_conns` connections open (this
    /// worker's share).
    ConnLimitService = "conn_limit_service",
    /// SYN over the service's `Limits::dst_new_conns_ps` (this worker's
    /// share).
    NewConnLimitService = "new_conn_limit_service",
    /// An established connection that sent no data for
    /// `Limits::empty_conn_secs`: reset both ways by the flow sweep (counted
    /// once per connection; no packet of it is at hand).
    EmptyConn = "empty_conn",
    /// A first segment (or a later request) matching an `l7_rules` deny
    /// rule: dropped, the connection reset both ways.
    L7Deny = "l7_deny",
    /// A request over an `l7_rules` limit rule's `per_source_rps`: dropped,
    /// the connection reset both ways.
    L7Limit = "l7_limit",
    /// A TCP flow whose first data bytes match none of its port's payload
    /// rules: dropped, the connection reset both ways.
    TcpPayloadMismatch = "tcp_payload_mismatch",
    /// Source banned by the auto-blacklist (`[services.blacklist]`: it
    /// broke limits too often) or by hand (`POST /api/v1/blacklist`);
    /// checked right after the ACL, which wins.
    Blacklisted = "blacklisted",
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(DropReason::from_name(r.as_str()), Some(*r));
        }
        assert_eq!(DropReason::from_name("nope"), None);
        // New reasons go last: the numbers of the others never move.
        assert_eq!(DropReason::NdIgnored as usize, 31);
        assert_eq!(DropReason::RateLimitIcmpSource as usize, 33);
        assert_eq!(DropReason::ALL.last(), Some(&DropReason::Blacklisted));
    }
}
