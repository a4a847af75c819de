//! The auto-blacklist in `classify`: a banned source is dropped as
//! `blacklisted` right after the ACL (an ACL `allow` wins) until its ban
//! ends; `src_pps` broken by a source that proved its address (verified,
//! or with a flow admitted through SYN authentication) is noted as a
//! violation, and never for a source that proved nothing.

mod common;

use classifier::acl::AclAction;
use classifier::policy::SynAuth;
use classifier::state::{Violation, ViolationKind};
use classifier::time::SECOND;
use classifier::verdict::{DropReason, Verdict};
use common::net::*;

fn ack_from(src: core::net::IpAddr) -> Vec<u8> {
    Pkt::tcp(src, 40000, vip4(), 80, fl::ACK)
        .payload(b"GET / HTTP/1.1\r\n")
        .build()
}

#[test]
fn a_banned_source_is_dropped_until_its_ban_ends_and_an_acl_allow_wins() {
    let mut n = Node::new(web_policy(SynAuth::ChallengeAck));
    let (a, b) = (client4(), ip("198.51.100.9"));
    n.st.verified.verify(a, T0, 600 * SECOND);
    n.st.verified.verify(b, T0, 600 * SECOND);
    assert!(matches!(n.run(T0, &ack_from(a)), Verdict::Pass(_)));
    n.st.bans.ban(a, T0, 10 * SECOND);
    assert_eq!(n.run(T0, &ack_from(a)), Verdict::Drop(DropReason::Blacklisted));
    // Everything the source sends, before any service check: a SYN, a
    // datagram to a port no service allows.
    let syn = Pkt::syn(a, 40001, vip4(), 80, 1).build();
    assert_eq!(n.run(T0 + SECOND, &syn), Verdict::Drop(DropReason::Blacklisted));
    let udp = Pkt::udp(a, 40001, vip4(), 9, b"x").build();
    assert_eq!(n.run(T0 + SECOND, &udp), Verdict::Drop(DropReason::Blacklisted));
    assert!(
        matches!(n.run(T0, &ack_from(b)), Verdict::Pass(_)),
        "another source passes"
    );
    assert!(
        matches!(n.run(T0 + 10 * SECOND, &ack_from(a)), Verdict::Pass(_)),
        "the ban ended"
    );
    assert!(n.st.bans.is_empty(), "freed on lookup");
    // ACL allow wins; ACL deny comes first.
    n.st.bans.ban(a, T0, 100 * SECOND);
    n.st.bans.ban(b, T0, 100 * SECOND);
    n.pol.acl.insert(format!("{a}/32").parse().unwrap(), AclAction::Allow);
    n.pol.acl.insert(format!("{b}/32").parse().unwrap(), AclAction::Deny);
    assert!(matches!(n.run(T0 + 11 * SECOND, &ack_from(a)), Verdict::Pass(_)));
    assert_eq!(
        n.run(T0 + 11 * SECOND, &ack_from(b)),
        Verdict::Drop(DropReason::AclDeny)
    );
}

#[test]
fn src_pps_broken_by_a_proven_source_is_a_violation() {
    let mut pol = web_policy(SynAuth::ChallengeAck);
    pol.services[0].limits.src_pps = 2;
    let mut n = Node::new(pol);
    let a = client4();
    n.st.verified.verify(a, T0, 600 * SECOND);
    let f = ack_from(a);
    for _ in 0..2 {
        assert!(matches!(n.run(T0, &f), Verdict::Pass(_)));
        assert_eq!(n.st.violation, None);
    }
    assert_eq!(n.run(T0, &f), Verdict::Drop(DropReason::RateLimitSource));
    assert_eq!(
        n.st.violation.take(),
        Some(Violation {
            src: a,
            service: 0,
            kind: ViolationKind::SrcPps
        })
    );
    // A flow admitted after SYN authentication proves the source too (here
    // with its verification gone meanwhile).
    let syn = Pkt::syn(a, 40002, vip4(), 80, 7).build();
    assert!(matches!(n.run(T0 + 2 * SECOND, &syn), Verdict::Pass(_)));
    n.st.verified.remove(a);
    let seg = Pkt::tcp(a, 40002, vip4(), 80, fl::ACK).seq(8).build();
    let mut noted = false;
    for _ in 0..4 {
        if n.run(T0 + 2 * SECOND, &seg) == Verdict::Drop(DropReason::RateLimitSource) {
            noted |= n.st.violation.take().is_some();
        }
    }
    assert!(noted, "the flow's segments over src_pps are a violation");
}

#[test]
fn a_source_that_proved_nothing_is_never_noted() {
    // SYN authentication off: a flow's SYN may have been spoofed.
    let mut pol = web_policy(SynAuth::Off);
    pol.services[0].limits.src_pps = 1;
    let mut n = Node::new(pol);
    let a = client4();
    assert!(matches!(
        n.run(T0, &Pkt::syn(a, 40000, vip4(), 80, 1).build()),
        Verdict::Pass(_)
    ));
    let seg = Pkt::tcp(a, 40000, vip4(), 80, fl::ACK).seq(2).build();
    let mut limited = 0;
    for _ in 0..10 {
        if n.run(T0, &seg) == Verdict::Drop(DropReason::RateLimitSource) {
            limited += 1;
        }
        assert_eq!(n.st.violation, None);
    }
    assert!(limited >= 9, "{limited}");
}
