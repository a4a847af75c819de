//! SYN authentication end to end through `classify`, the client played as a
//! Linux TCP stack would: packets built by etherparse, Moat's replies parsed
//! back by etherparse with their checksums checked.
//!
//! - `challenge-ack`: SYN → SYN-ACK whose ACK number is the cookie → the
//!   client's RST `<SEQ=SEG.ACK><CTL=RST>` (RFC 793 §3.4, SYN-SENT) verifies
//!   the source → the retransmitted SYN, its ACK, data and FIN pass. IPv4,
//!   IPv6 and 802.1Q.
//! - `cookie-reset`: SYN → SYN-ACK whose sequence number is the cookie and
//!   whose MSS comes from the cookie's MSS table → the client's ACK
//!   (cookie + 1) verifies the source and is answered with a RST → the
//!   client's next connection passes.
//! - Cookies across secret rotation and across nodes sharing the secret
//!   (ECMP), and `off`.

mod common;

use classifier::cookie::{self, CookieSecrets, Tuple, MSS_TABLE, SLOT_SECS};
use classifier::policy::SynAuth;
use classifier::time::SECOND;
use classifier::verdict::{DropReason, Pass, Verdict};
use common::net::*;

const SPORT: u16 = 40312;
const ISN: u32 = 0x9e3f_1a22;

fn pass(service: u16, syn: bool) -> Verdict {
    Verdict::Pass(Pass {
        service,
        origin: 0,
        syn,
    })
}

fn tuple_of(p: &Pkt) -> Tuple {
    let k = p.flow_key();
    Tuple {
        src: k.src,
        dst: k.dst,
        sport: k.sport,
        dport: k.dport,
    }
}

/// Sends `syn` at `now`, checks the challenge SYN-ACK, returns it.
fn challenge_ack_syn(node: &mut Node, now: u64, syn: &Pkt) -> TcpSeen {
    let v = node.run(now, &syn.build());
    let Verdict::Reply { len } = v else {
        panic!("expected a challenge, got {v:?}")
    };
    assert!((60..=REPLY_BUF).contains(&len), "{len}");
    let r = TcpSeen::from_reply(node.reply());
    r.assert_answers(syn);
    assert_eq!(r.flags, fl::SYN | fl::ACK);
    assert_eq!(r.ttl, 64);
    assert_eq!(r.payload_len, 0);
    r
}

/// The whole challenge-ack exchange for one client packet template.
fn challenge_ack_end_to_end(syn: Pkt, service: u16) {
    let mut node = Node::new(web_policy(SynAuth::ChallengeAck));
    let now = T0 + 5 * SECOND;
    let r = challenge_ack_syn(&mut node, now, &syn);
    // The ACK number is the cookie of the SYN's tuple, carrying the index of
    // its MSS (1460 → 7, 1440 → 5) ...
    let mss_idx = cookie::mss_index(if syn.src.is_ipv6() { 1440 } else { 1460 });
    let secrets = CookieSecrets::new(KEY);
    assert_eq!(cookie::check(&secrets, &tuple_of(&syn), now, r.ack), Some(mss_idx));
    assert_eq!(r.ack, cookie::make(&secrets, &tuple_of(&syn), now, mss_idx));
    // ... and it is not the client's ISN + 1, or a real stack would accept
    // the SYN-ACK instead of resetting. Our own sequence number does not
    // reveal the cookie.
    assert_ne!(r.ack, ISN.wrapping_add(1));
    assert_ne!(r.seq, r.ack);
    assert!(!node.verified(syn.src, now), "a challenge verifies nothing");
    assert_eq!(node.st.just_verified, None, "nothing to share yet");
    assert_eq!(node.st.flows.len(), 0, "a challenge creates no flow");

    // Linux in SYN-SENT, unacceptable ACK: <SEQ=SEG.ACK><CTL=RST>, no ACK
    // flag, window 0.
    let mut rst = syn.clone().seq(r.ack).options(vec![]).window(0);
    if let L4::Tcp { flags, .. } = &mut rst.l4 {
        *flags = fl::RST;
    }
    let t1 = now + 200 * MS;
    assert_eq!(node.run(t1, &rst.build()), Verdict::Drop(DropReason::ChallengeAnswered));
    assert!(node.verified(syn.src, t1));
    // Noted for the cluster bus with the policy's TTL (the default, 300 s).
    assert_eq!(node.st.just_verified.take(), Some((syn.src, 300 * SECOND)));

    // The SYN retransmission (1 s later on Linux) passes and makes a flow.
    let t2 = now + SECOND;
    assert_eq!(node.run(t2, &syn.build()), pass(service, true));
    assert!(node.has_flow(&syn.flow_key(), t2));

    // The handshake's ACK, data, then FIN: all pass.
    let (sport, dport) = (syn.flow_key().sport, syn.flow_key().dport);
    let seg = |flags: u8| {
        let mut p = Pkt::tcp(syn.src, sport, syn.dst, dport, flags)
            .seq(ISN.wrapping_add(1))
            .ack(0x1234_5679);
        p.vlan = syn.vlan;
        p
    };
    assert_eq!(node.run(t2 + MS, &seg(fl::ACK).build()), pass(service, false));
    let data = seg(fl::PSH | fl::ACK).payload(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    assert_eq!(node.run(t2 + 2 * MS, &data.build()), pass(service, false));
    assert_eq!(node.st.flows.len(), 1);
    assert_eq!(
        node.run(t2 + 3 * MS, &seg(fl::FIN | fl::ACK).build()),
        pass(service, false)
    );
    // FIN ends the flow; the source stays verified.
    assert_eq!(node.st.flows.len(), 0);
    assert!(!node.has_flow(&syn.flow_key(), t2 + 4 * MS));
    assert!(node.verified(syn.src, t2 + 4 * MS));
}

#[test]
fn challenge_ack_ipv4() {
    challenge_ack_end_to_end(Pkt::syn(client4(), SPORT, vip4(), 443, ISN), 0);
}

#[test]
fn challenge_ack_ipv6() {
    challenge_ack_end_to_end(Pkt::syn(client6(), SPORT, vip6(), 443, ISN), 1);
}

#[test]
fn challenge_ack_vlan_reply_keeps_the_tag() {
    challenge_ack_end_to_end(Pkt::syn(client4(), SPORT, vip4(), 80, ISN).vlan(42), 0);
    challenge_ack_end_to_end(Pkt::syn(client6(), SPORT, vip6(), 80, ISN).vlan(4094), 1);
}

/// A SYN at `T0`, its cookie, and a node that sent it.
fn challenged() -> (Node, Pkt, u32) {
    let mut node = Node::new(web_policy(SynAuth::ChallengeAck));
    let syn = Pkt::syn(client4(), SPORT, vip4(), 443, ISN);
    let r = challenge_ack_syn(&mut node, T0, &syn);
    (node, syn, r.ack)
}

fn rst(src: core::net::IpAddr, sport: u16, seq: u32) -> Pkt {
    Pkt::tcp(src, sport, vip4(), 443, fl::RST).seq(seq).window(0)
}

#[test]
fn challenge_ack_rst_with_wrong_seq_is_bad_cookie() {
    let (mut node, _, c) = challenged();
    for wrong in [c.wrapping_add(1), c ^ 0x8000_0000, c ^ 0x20, 0, ISN.wrapping_add(1)] {
        assert_eq!(
            node.run(T0 + MS, &rst(client4(), SPORT, wrong).build()),
            Verdict::Drop(DropReason::BadCookie),
            "{wrong:#x}"
        );
    }
    assert!(!node.verified(client4(), T0 + MS));
    // The right one still works afterwards: failures leave no state.
    assert_eq!(
        node.run(T0 + 2 * MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
}

#[test]
fn challenge_ack_cookie_is_bound_to_the_tuple() {
    let (mut node, _, c) = challenged();
    let other_src = rst(ip("198.51.100.8"), SPORT, c);
    let other_port = rst(client4(), SPORT + 1, c);
    let mut other_dport = rst(client4(), SPORT, c);
    if let L4::Tcp { dport, .. } = &mut other_dport.l4 {
        *dport = 80;
    }
    for p in [other_src, other_port, other_dport] {
        assert_eq!(
            node.run(T0 + MS, &p.build()),
            Verdict::Drop(DropReason::BadCookie),
            "{p:?}"
        );
    }
    assert!(!node.verified(client4(), T0 + MS));
    assert!(!node.verified(ip("198.51.100.8"), T0 + MS));
}

#[test]
fn challenge_ack_cookie_lives_two_slots() {
    let slot = SLOT_SECS * SECOND;
    // Last nanosecond of the next slot: accepted.
    let (mut node, _, c) = challenged();
    assert_eq!(
        node.run(T0 + 2 * slot - 1, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
    // 128 s after a SYN at the start of a slot: refused, and later too.
    let (mut node, _, c) = challenged();
    for late in [2 * slot, 3 * slot, 4 * slot + SECOND, 1000 * slot] {
        assert_eq!(
            node.run(T0 + late, &rst(client4(), SPORT, c).build()),
            Verdict::Drop(DropReason::BadCookie),
            "{late}"
        );
    }
    // A RST from before the SYN (clock skew of a slot) is refused too.
    assert_eq!(
        node.run(T0 - slot, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::BadCookie)
    );
}

#[test]
fn challenge_ack_verified_source_keeps_passing_without_challenge() {
    let (mut node, syn, c) = challenged();
    assert_eq!(
        node.run(T0 + MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
    // New connections from the verified source are not challenged again,
    // until the verification expires (300 s by default).
    let ttl = node.pol.timeouts.verified_ttl;
    for (i, port) in (41000..41005).enumerate() {
        let now = T0 + 2 * MS + i as u64 * SECOND;
        let syn2 = Pkt::syn(client4(), port, vip4(), 443, ISN);
        assert_eq!(node.run(now, &syn2.build()), pass(0, true));
    }
    // Verified at T0+1 ms until T0+1 ms+ttl (exclusive).
    let last = Pkt::syn(client4(), 50000, vip4(), 443, ISN);
    assert_eq!(node.run(T0 + MS + ttl - 1, &last.build()), pass(0, true));
    let after = Pkt::syn(client4(), 50001, vip4(), 443, ISN);
    assert!(matches!(node.run(T0 + MS + ttl, &after.build()), Verdict::Reply { .. }));
    assert!(!node.verified(syn.src, T0 + MS + ttl));
}

#[test]
fn verified_source_rst_without_flow_passes() {
    // DESIGN.md: non-SYN segments pass for a known flow or a verified
    // source. A verified client's RST for a flow the table no longer holds
    // (evicted, idle, or begun before a restart) must reach the origin, or
    // the origin keeps a dead connection.
    let (mut node, _, c) = challenged();
    assert_eq!(
        node.run(T0 + MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
    let abort = Pkt::tcp(client4(), 41234, vip4(), 443, fl::RST | fl::ACK)
        .seq(77)
        .ack(88);
    assert_eq!(node.run(T0 + 2 * MS, &abort.build()), pass(0, false));
    let bare = rst(client4(), 41235, 99);
    assert_eq!(node.run(T0 + 3 * MS, &bare.build()), pass(0, false));
    // An unverified source's stray RST is still a bad cookie.
    let stray = rst(ip("198.51.100.99"), 41235, 99);
    assert_eq!(
        node.run(T0 + 4 * MS, &stray.build()),
        Verdict::Drop(DropReason::BadCookie)
    );
}

fn ack_pkt(syn: &Pkt, seq: u32, ack: u32) -> Pkt {
    let k = syn.flow_key();
    let mut p = Pkt::tcp(k.src, k.sport, k.dst, k.dport, fl::ACK).seq(seq).ack(ack);
    p.vlan = syn.vlan;
    p
}

fn cookie_reset_end_to_end(syn: Pkt, mss_sent: Option<u16>, service: u16) {
    let mut node = Node::new(web_policy(SynAuth::CookieReset));
    let syn = match mss_sent {
        Some(m) => syn.options(linux_syn_options(m, 7)),
        None => syn.options(vec![]),
    };
    let now = T0 + 30 * SECOND;
    let Verdict::Reply { len } = node.run(now, &syn.build()) else {
        panic!("expected a challenge")
    };
    assert!(len <= REPLY_BUF);
    let r = TcpSeen::from_reply(node.reply());
    r.assert_answers(&syn);
    assert_eq!(r.flags, fl::SYN | fl::ACK);
    assert_eq!(r.ack, ISN.wrapping_add(1), "acknowledges the client's SYN");
    // The sequence number is the cookie; the MSS option is the table entry
    // the cookie's index names (the largest not above the client's MSS).
    let idx = cookie::mss_index(mss_sent.unwrap_or(536));
    let secrets = CookieSecrets::new(KEY);
    assert_eq!(cookie::check(&secrets, &tuple_of(&syn), now, r.seq), Some(idx));
    assert_eq!(r.seq & 7, u32::from(idx));
    assert_eq!(r.mss, Some(MSS_TABLE[usize::from(idx)]));
    assert_eq!(r.options, 1, "MSS is the only option");

    // A wrong ACK: bad cookie, nothing verified, no reply.
    let wrong = ack_pkt(&syn, ISN.wrapping_add(1), r.seq);
    assert_eq!(node.run(now + MS, &wrong.build()), Verdict::Drop(DropReason::BadCookie));
    let wrong = ack_pkt(&syn, ISN.wrapping_add(1), r.seq.wrapping_add(2));
    assert_eq!(node.run(now + MS, &wrong.build()), Verdict::Drop(DropReason::BadCookie));
    assert!(!node.verified(syn.src, now + MS));
    assert_eq!(node.st.just_verified, None);

    // The client's ACK (ack = cookie + 1) is answered with a RST whose
    // sequence number is that ACK number (RFC 793 §3.4).
    let ack = ack_pkt(&syn, ISN.wrapping_add(1), r.seq.wrapping_add(1));
    let Verdict::Reply { .. } = node.run(now + 2 * MS, &ack.build()) else {
        panic!("expected a RST")
    };
    let rst = TcpSeen::from_reply(node.reply());
    rst.assert_answers(&ack);
    assert_eq!(rst.flags, fl::RST);
    assert_eq!(rst.seq, r.seq.wrapping_add(1));
    assert!(node.verified(syn.src, now + 2 * MS));
    assert_eq!(node.st.just_verified.take(), Some((syn.src, 300 * SECOND)));
    assert_eq!(node.st.flows.len(), 0);

    // The application reconnects from a new port: passes.
    let k = syn.flow_key();
    let mut again = Pkt::syn(k.src, k.sport + 1, k.dst, k.dport, ISN ^ 0xffff);
    again.vlan = syn.vlan;
    assert_eq!(node.run(now + 3 * MS, &again.build()), pass(service, true));
}

#[test]
fn cookie_reset_ipv4() {
    cookie_reset_end_to_end(Pkt::syn(client4(), SPORT, vip4(), 443, ISN), Some(1460), 0);
    cookie_reset_end_to_end(Pkt::syn(client4(), SPORT, vip4(), 443, ISN), Some(1380), 0);
    cookie_reset_end_to_end(Pkt::syn(client4(), SPORT, vip4(), 443, ISN), None, 0);
}

#[test]
fn cookie_reset_ipv6_and_vlan() {
    cookie_reset_end_to_end(Pkt::syn(client6(), SPORT, vip6(), 80, ISN), Some(1440), 1);
    cookie_reset_end_to_end(Pkt::syn(client4(), SPORT, vip4(), 80, ISN).vlan(7), Some(1460), 0);
}

#[test]
fn cookies_survive_one_secret_rotation() {
    let (mut node, syn, c) = challenged();
    node.pol.secrets.rotate([0x43; 16]);
    // A SYN after the rotation gets a cookie under the new key only.
    let syn2 = Pkt::syn(client4(), SPORT + 1, vip4(), 443, ISN);
    let c2 = challenge_ack_syn(&mut node, T0 + MS, &syn2).ack;
    let new_only = CookieSecrets::new([0x43; 16]);
    assert!(cookie::check(&new_only, &tuple_of(&syn2), T0 + MS, c2).is_some());
    assert!(cookie::check(&CookieSecrets::new(KEY), &tuple_of(&syn2), T0 + MS, c2).is_none());
    // The cookie made before the rotation is still accepted (previous key).
    assert_eq!(
        node.run(T0 + 2 * MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
    // Two rotations: the first cookie is dead.
    let (mut node, _, c) = challenged();
    node.pol.secrets.rotate([0x43; 16]);
    node.pol.secrets.rotate([0x44; 16]);
    assert_eq!(
        node.run(T0 + MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::BadCookie)
    );
    assert!(!node.verified(syn.src, T0 + MS));
}

#[test]
fn another_node_with_the_same_secret_accepts_the_answer() {
    // ECMP: the SYN lands on node A, the client's RST on node B.
    let (_a, syn, c) = challenged();
    let mut b = Node::new(web_policy(SynAuth::ChallengeAck));
    assert_eq!(
        b.run(T0 + 300 * MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
    assert_eq!(b.run(T0 + SECOND, &syn.build()), pass(0, true));
    // A node with another secret refuses it.
    let mut other = Node::new(policy_with([0x99; 16], vec![web("web", vip4(), SynAuth::ChallengeAck)]));
    assert_eq!(
        other.run(T0 + 300 * MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::BadCookie)
    );

    // cookie-reset: the ACK completes on another node.
    let mut a = Node::new(web_policy(SynAuth::CookieReset));
    let mut b = Node::new(web_policy(SynAuth::CookieReset));
    let Verdict::Reply { .. } = a.run(T0, &syn.build()) else {
        panic!("challenge")
    };
    let r = TcpSeen::from_reply(a.reply());
    let ack = ack_pkt(&syn, ISN.wrapping_add(1), r.seq.wrapping_add(1));
    assert!(matches!(b.run(T0 + MS, &ack.build()), Verdict::Reply { .. }));
    assert_eq!(TcpSeen::from_reply(b.reply()).flags, fl::RST);
    assert!(b.verified(client4(), T0 + MS));
}

#[test]
fn syn_auth_off_passes_syn_and_creates_a_flow() {
    let mut node = Node::new(web_policy(SynAuth::Off));
    let syn = Pkt::syn(client4(), SPORT, vip4(), 443, ISN);
    assert_eq!(node.run(T0, &syn.build()), pass(0, true));
    assert!(node.has_flow(&syn.flow_key(), T0));
    assert!(!node.verified(client4(), T0), "off verifies nobody");
    let ack = ack_pkt(&syn, ISN.wrapping_add(1), 5);
    assert_eq!(node.run(T0 + MS, &ack.build()), pass(0, false));
    // An ACK of another 4-tuple has no flow.
    let mut stray = ack_pkt(&syn, ISN.wrapping_add(1), 5);
    if let L4::Tcp { sport, .. } = &mut stray.l4 {
        *sport += 1;
    }
    assert_eq!(node.run(T0 + MS, &stray.build()), Verdict::Drop(DropReason::TcpNoFlow));
    // Off answers no RST either: a RST without a flow is just no flow.
    let r = rst(client4(), SPORT + 1, 1);
    assert_eq!(node.run(T0 + MS, &r.build()), Verdict::Drop(DropReason::TcpNoFlow));
    // IPv6 too.
    let syn6 = Pkt::syn(client6(), SPORT, vip6(), 80, ISN);
    assert_eq!(node.run(T0, &syn6.build()), pass(1, true));
    assert_eq!(node.st.flows.len(), 2);
}

#[test]
fn flows_end_on_rst_and_expire_when_idle() {
    let mut node = Node::new(web_policy(SynAuth::Off));
    let syn = Pkt::syn(client4(), SPORT, vip4(), 443, ISN);
    assert_eq!(node.run(T0, &syn.build()), pass(0, true));
    let k = syn.flow_key();
    let abort = Pkt::tcp(k.src, k.sport, k.dst, k.dport, fl::RST | fl::ACK).seq(ISN.wrapping_add(1));
    assert_eq!(node.run(T0 + MS, &abort.build()), pass(0, false));
    assert_eq!(node.st.flows.len(), 0);
    assert_eq!(
        node.run(T0 + 2 * MS, &ack_pkt(&syn, 1, 1).build()),
        Verdict::Drop(DropReason::TcpNoFlow)
    );
    // Idle timeout (120 s by default): the last packet at T0+1 s keeps it
    // until just before T0+121 s.
    let idle = node.pol.timeouts.flow_idle;
    assert_eq!(node.run(T0 + SECOND, &syn.build()), pass(0, true));
    assert_eq!(
        node.run(T0 + SECOND + idle - 1, &ack_pkt(&syn, 1, 1).build()),
        pass(0, false)
    );
    let t = T0 + 2 * SECOND + 2 * idle;
    assert_eq!(
        node.run(t, &ack_pkt(&syn, 1, 1).build()),
        Verdict::Drop(DropReason::TcpNoFlow)
    );
}

#[test]
fn verified_sources_outlive_a_spoofed_flood_that_cycles_the_source_buckets() {
    // Verified sources and per-source buckets are two tables (README,
    // "one probe for both"): a spoofed SYN flood inserts a bucket entry for
    // every packet and evicts live ones, but cannot get into the verified
    // table, so a client that answered its challenge keeps passing however
    // long the flood runs. One table for both would let the flood evict it.
    let mut pol = web_policy(SynAuth::ChallengeAck);
    pol.services[0].limits.src_pps = 1000;
    pol.services[0].limits.src_syn_pps = 100;
    let mut node = Node::new(pol);
    let syn = Pkt::syn(client4(), SPORT, vip4(), 443, ISN);
    let c = challenge_ack_syn(&mut node, T0, &syn).ack;
    assert_eq!(
        node.run(T0 + MS, &rst(client4(), SPORT, c).build()),
        Verdict::Drop(DropReason::ChallengeAnswered)
    );
    let cap = node.st.sources.capacity() as u32;
    let mut x = 0x9e37_79b9_u32;
    for i in 0..20 * cap {
        // xorshift32: 20 laps of the source table with distinct spoofed
        // sources in 198.18.0.0/15 (benchmarking space, never bogus).
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let spoofed = core::net::IpAddr::V4((0xc612_0000 | (x & 0x1_ffff)).into());
        let now = T0 + 2 * MS + u64::from(i) * 1000;
        let flood = Pkt::syn(spoofed, 1024 + (i % 60000) as u16, vip4(), 443, x).build();
        match node.run(now, &flood) {
            Verdict::Reply { .. } | Verdict::Drop(DropReason::RateLimitChallenge | DropReason::RateLimitSyn) => {}
            v => panic!("spoofed SYN {i}: {v:?}"),
        }
    }
    assert_eq!(node.st.sources.len() as u32, cap, "the flood filled the source buckets");
    let now = T0 + 2 * MS + u64::from(20 * cap) * 1000;
    assert!(node.verified(client4(), now), "the flood evicted the verified client");
    let syn2 = Pkt::syn(client4(), SPORT + 1, vip4(), 443, ISN);
    assert_eq!(node.run(now, &syn2.build()), pass(0, true));
    let ack = Pkt::tcp(client4(), SPORT + 2, vip4(), 443, fl::ACK).seq(5).ack(6);
    assert_eq!(node.run(now + 1, &ack.build()), pass(0, false));
}
