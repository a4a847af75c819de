//! Connection limits and first-segment inspection through `classify`
//! (issue 15): `src_conns`, `dst_conns` and `dst_new_conns_ps` with exact
//! counts whatever ends a flow (FIN, RST, idle, eviction), `l7_rules` deny
//! and TCP payload rules resetting both ways (the RSTs read back with
//! etherparse), split first segments, the unjudgeable bound, and the sweep
//! that ends empty connections.

mod common;

use core::net::{IpAddr, Ipv4Addr};

use classifier::conn;
use classifier::l7::reassembly::ReassemblyConfig;
use classifier::l7::rules::{L7Action, L7Rule};
use classifier::parse;
use classifier::policy::{Limits, PayloadRule, Service, SynAuth};
use classifier::state::{StateConfig, Violation, ViolationKind};
use classifier::time::{Nanos, MILLISECOND as MS, SECOND};
use classifier::verdict::{DropReason, Verdict};
use classifier::wire::tcp::flags as fl;
use common::net::*;
use proptest::prelude::*;

const T0: Nanos = 1_000 * SECOND;
const ISN: u32 = 0x1000_0000;
const SRV_ISN: u32 = 0x7000_0000;

fn vip() -> IpAddr {
    ip("203.0.113.30")
}

fn src(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n)) // 198.51.100.n
}

/// TCP 80 and 7000 on `vip()`, SYN authentication off, `limits`.
fn svc(limits: Limits) -> Service {
    let mut s = Service::new("game", vip(), 0);
    s.tcp_ports.insert(80);
    s.tcp_ports.insert(7000);
    s.syn_auth = SynAuth::Off;
    s.limits = limits;
    s
}

fn node(s: Service) -> Node {
    Node::new(policy_with(KEY, vec![s]))
}

fn small(flows: usize, bytes: usize) -> StateConfig {
    StateConfig {
        flows,
        verified: 64,
        sources: 64,
        bans: 16,
        reassembly: ReassemblyConfig {
            slots: 16,
            bytes_per_flow: bytes,
            ..Default::default()
        },
    }
}

fn syn(s: IpAddr, sport: u16, dport: u16) -> Pkt {
    Pkt::syn(s, sport, vip(), dport, ISN)
}

/// A segment of the flow of `syn` with `flags`, at client offset `off`.
fn seg(syn: &Pkt, flags: u8, off: u32, data: &[u8]) -> Pkt {
    let k = syn.flow_key();
    Pkt::tcp(k.src, k.sport, k.dst, k.dport, flags)
        .seq(ISN.wrapping_add(1).wrapping_add(off))
        .ack(SRV_ISN + 1)
        .payload(data)
}

fn pass(v: Verdict) -> bool {
    matches!(v, Verdict::Pass(_))
}

/// Opens a flow (SYN then the handshake's ACK); whether the SYN passed.
fn open(n: &mut Node, now: Nanos, s: IpAddr, sport: u16, dport: u16) -> Verdict {
    let p = syn(s, sport, dport);
    let v = n.run(now, &p.build());
    if pass(v) {
        assert!(pass(n.run(now, &seg(&p, fl::ACK, 0, b"").build())));
    }
    v
}

#[test]
fn src_conns_holds_a_source_and_frees_on_fin_and_rst() {
    let mut n = node(svc(Limits {
        src_conns: 2,
        ..Limits::default()
    }));
    let a = src(1);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    assert!(pass(open(&mut n, T0, a, 40001, 80)));
    assert_eq!(
        open(&mut n, T0, a, 40002, 80),
        Verdict::Drop(DropReason::ConnLimitSource)
    );
    // A retransmitted SYN of an admitted flow is not a new connection.
    assert!(pass(n.run(T0, &syn(a, 40000, 80).build())));
    // Another source is not affected.
    assert!(pass(open(&mut n, T0, src(2), 40000, 80)));
    // With SYN authentication off, a SYN proves nothing: no violation.
    assert_eq!(n.st.violation, None);
    // The client's FIN frees a place, and so does its RST.
    assert!(pass(
        n.run(T0 + MS, &seg(&syn(a, 40000, 80), fl::FIN | fl::ACK, 0, b"").build())
    ));
    assert!(pass(open(&mut n, T0 + MS, a, 40002, 80)));
    assert!(pass(
        n.run(T0 + MS, &seg(&syn(a, 40001, 80), fl::RST | fl::ACK, 0, b"").build())
    ));
    assert!(pass(open(&mut n, T0 + MS, a, 40003, 80)));
    assert_eq!(
        open(&mut n, T0 + MS, a, 40004, 80),
        Verdict::Drop(DropReason::ConnLimitSource)
    );
    assert_eq!(n.st.conns.get(conn_key(a), 0), 2);
}

fn conn_key(a: IpAddr) -> classifier::state::table::AddrKey {
    classifier::state::table::AddrKey::new(a)
}

#[test]
fn src_conns_frees_on_idle_expiry_and_notes_proven_sources() {
    let mut s = svc(Limits {
        src_conns: 1,
        ..Limits::default()
    });
    s.syn_auth = SynAuth::ChallengeAck;
    let mut n = node(s);
    let a = src(1);
    n.st.verified.verify(a, T0, 3600 * SECOND);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    assert_eq!(
        open(&mut n, T0, a, 40001, 80),
        Verdict::Drop(DropReason::ConnLimitSource)
    );
    // A verified source proved its address: its violation is noted.
    assert_eq!(
        n.st.violation.take(),
        Some(Violation {
            src: a,
            service: 0,
            kind: ViolationKind::SrcConns
        })
    );
    // Idle past the flow timeout: the sweep settles the count.
    let later = T0 + n.pol.timeouts.flow_idle + 10 * MS;
    n.st.sweep_flows(later, n.pol.timeouts.flow_idle, 64);
    assert_eq!(n.st.flows.len(), 0);
    assert_eq!(n.st.conns.get(conn_key(a), 0), 0);
    assert!(pass(open(&mut n, later, a, 40001, 80)));
    // An expired flow met by a packet (not the sweep) settles too.
    let much_later = later + n.pol.timeouts.flow_idle + 10 * MS;
    assert!(pass(open(&mut n, much_later, a, 40001, 80)));
    assert_eq!(n.st.conns.get(conn_key(a), 0), 1);
}

#[test]
fn dst_conns_and_dst_new_conns_ps_cap_the_service() {
    let mut n = node(svc(Limits {
        dst_conns: 3,
        ..Limits::default()
    }));
    for i in 0..3 {
        assert!(pass(open(&mut n, T0, src(i), 40000, 80)));
    }
    assert_eq!(
        open(&mut n, T0, src(9), 40000, 80),
        Verdict::Drop(DropReason::ConnLimitService)
    );
    assert!(pass(
        n.run(T0, &seg(&syn(src(0), 40000, 80), fl::FIN | fl::ACK, 0, b"").build())
    ));
    assert!(pass(open(&mut n, T0, src(9), 40000, 80)));
    assert_eq!(n.st.services[0].conns, 3);

    let mut n = node(svc(Limits {
        dst_new_conns_ps: 2,
        ..Limits::default()
    }));
    assert!(pass(open(&mut n, T0, src(1), 40000, 80)));
    assert!(pass(open(&mut n, T0, src(2), 40000, 80)));
    assert_eq!(
        open(&mut n, T0, src(3), 40000, 80),
        Verdict::Drop(DropReason::NewConnLimitService)
    );
    // Half a second later one token is back (2/s).
    assert!(pass(open(&mut n, T0 + SECOND / 2, src(3), 40000, 80)));
}

#[derive(Clone, Debug)]
enum Op {
    Open(u8, u16),
    Fin(u8, u16),
    Rst(u8, u16),
    Wait(u16),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4u8, 0..12u16).prop_map(|(s, p)| Op::Open(s, p)),
        1 => (0..4u8, 0..12u16).prop_map(|(s, p)| Op::Fin(s, p)),
        1 => (0..4u8, 0..12u16).prop_map(|(s, p)| Op::Rst(s, p)),
        1 => (0..3000u16).prop_map(Op::Wait),
        1 => Just(Op::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever ends flows (FIN, RST, idle expiry met by a packet or the
    /// sweep, eviction from a table of 8), each source's count equals its
    /// live flows in the table, and the service's count its counted flows.
    #[test]
    fn counts_stay_exact(ops in proptest::collection::vec(op(), 1..200)) {
        let mut s = svc(Limits { src_conns: 5, dst_conns: 1000, ..Limits::default() });
        s.syn_auth = SynAuth::Off;
        let mut pol = policy_with(KEY, vec![s]);
        pol.timeouts.flow_idle = 2 * SECOND;
        let mut n = Node::with_config(pol, small(8, 512), 1);
        let mut now = T0;
        for o in ops {
            match o {
                Op::Open(s, p) => { open(&mut n, now, src(u32::from(s)), 40000 + p, 80); }
                Op::Fin(s, p) => { n.run(now, &seg(&syn(src(u32::from(s)), 40000 + p, 80), fl::FIN | fl::ACK, 0, b"").build()); }
                Op::Rst(s, p) => { n.run(now, &seg(&syn(src(u32::from(s)), 40000 + p, 80), fl::RST, 0, b"").build()); }
                Op::Wait(ms) => now += u64::from(ms) * MS,
                Op::Sweep => { n.st.sweep_flows(now, n.pol.timeouts.flow_idle, 8); }
            }
            for s in 0..4 {
                let a = src(s);
                let flows = n.st.flows.iter().filter(|(id, _)| conn::flow_src_ip(id) == a).count() as u32;
                prop_assert_eq!(n.st.conns.get(conn_key(a), 0), flows, "source {}", a);
                prop_assert!(flows <= 5);
            }
            prop_assert_eq!(n.st.services[0].conns, n.st.flows.len() as u64);
        }
    }
}

fn deny_login() -> Service {
    let mut s = svc(Limits::default());
    let mut r = L7Rule::new(L7Action::Deny);
    r.path_prefix = Some(b"/login".as_slice().into());
    s.l7_rules = vec![r];
    s
}

/// The segment `p` rewritten in place into the client's RST toward the
/// origin, read back with etherparse.
fn origin_rst(p: &Pkt) -> TcpSeen {
    let mut frame = p.build();
    let parsed = parse::parse(&frame).expect("parses");
    let q = conn::reset_in_place(&mut frame, &parsed).expect("rewritten");
    let end = usize::from(q.l3_offset) + usize::from(q.l3_len);
    TcpSeen::from_reply(&frame[..end])
}

#[test]
fn l7_deny_resets_both_ways() {
    let mut n = node(deny_login());
    let a = src(1);
    let s = syn(a, 40000, 80);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    let req = seg(&s, fl::ACK | fl::PSH, 0, b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n");
    let v = n.run(T0 + MS, &req.build());
    let Verdict::ResetBoth { reason, service, .. } = v else {
        panic!("{v:?}")
    };
    assert_eq!((reason, service), (DropReason::L7Deny, 0));
    // Toward the client: a RST at the sequence number it acknowledged.
    let to_client = TcpSeen::from_reply(n.reply());
    to_client.assert_answers(&req);
    assert_eq!((to_client.flags, to_client.seq), (fl::RST, SRV_ISN + 1));
    // Toward the origin: the client's own segment as a RST, no payload.
    let to_origin = origin_rst(&req);
    assert_eq!((to_origin.src, to_origin.dst), (a, vip()));
    assert_eq!(to_origin.flags, fl::RST | fl::ACK);
    assert_eq!((to_origin.seq, to_origin.payload_len), (ISN + 1, 0));
    // The flow is gone, the violation noted.
    assert_eq!(n.st.flows.len(), 0);
    assert_eq!(n.st.violation.map(|v| v.kind), Some(ViolationKind::L7Deny));
    assert_eq!(
        n.run(T0 + 2 * MS, &seg(&s, fl::ACK, 40, b"").build()),
        Verdict::Drop(DropReason::TcpNoFlow)
    );

    // Another path passes, and so does the rest of its flow.
    let b = syn(a, 40001, 80);
    assert!(pass(open(&mut n, T0, a, 40001, 80)));
    let ok = seg(&b, fl::ACK | fl::PSH, 0, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(pass(n.run(T0 + MS, &ok.build())));
    assert!(pass(n.run(T0 + MS, &seg(&b, fl::ACK, 37, b"login form body").build())));
    let ins = n.st.inspect.as_ref().expect("inspection state");
    assert_eq!((ins.judged, ins.unjudgeable), (2, 0));
}

#[test]
fn split_and_reordered_first_segments_are_reassembled() {
    let mut n = node(deny_login());
    let a = src(1);
    let s = syn(a, 40000, 80);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    let req = b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n";
    // The second half first, then the first: the prefix is whole only then.
    assert!(pass(n.run(T0 + MS, &seg(&s, fl::ACK, 7, &req[7..]).build())));
    assert!(matches!(
        n.run(T0 + 2 * MS, &seg(&s, fl::ACK, 0, &req[..7]).build()),
        Verdict::ResetBoth {
            reason: DropReason::L7Deny,
            ..
        }
    ));
    // IPv6 and a request line cut mid-path.
    let mut n = Node::new(policy_with(
        KEY,
        vec![deny_login(), {
            let mut s6 = deny_login();
            s6.vip = client6_vip();
            s6
        }],
    ));
    let c6 = client6();
    let s6 = Pkt::syn(c6, 40000, client6_vip(), 80, ISN);
    assert!(pass(n.run(T0, &s6.build())));
    assert!(pass(n.run(T0, &seg(&s6, fl::ACK, 0, b"").build())));
    assert!(pass(n.run(T0 + MS, &seg(&s6, fl::ACK, 0, &req[..8]).build())));
    let last = seg(&s6, fl::ACK, 8, &req[8..]);
    assert!(matches!(n.run(T0 + 2 * MS, &last.build()), Verdict::ResetBoth { .. }));
    let to_client = TcpSeen::from_reply(n.reply());
    to_client.assert_answers(&last);
    let to_origin = origin_rst(&last);
    assert_eq!((to_origin.seq, to_origin.payload_len), (ISN + 1 + 8, 0));
}

fn client6_vip() -> IpAddr {
    ip("2001:db8:30::1")
}

#[test]
fn first_bytes_beyond_the_bound_are_unjudgeable_and_pass() {
    let mut n = Node::with_config(policy_with(KEY, vec![deny_login()]), small(64, 512), 1);
    let a = src(1);
    let s = syn(a, 40000, 80);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    // A request line longer than the 512 bytes kept: never judgeable.
    let mut line = b"GET /".to_vec();
    line.resize(700, b'a');
    assert!(pass(n.run(T0 + MS, &seg(&s, fl::ACK, 0, &line[..400]).build())));
    assert!(pass(n.run(T0 + MS, &seg(&s, fl::ACK, 400, &line[400..]).build())));
    let ins = n.st.inspect.as_ref().expect("inspection state");
    assert_eq!((ins.judged, ins.unjudgeable), (1, 1));
    assert_eq!(ins.reasm.len(), 0, "the slot is freed once judged");
}

#[test]
fn tcp_payload_rules_judge_the_first_bytes() {
    let mut s = svc(Limits::default());
    s.tcp_payload_rules = vec![PayloadRule::new(7000, 0, b"MOAT", b"\xff\xff\xff\xff").expect("rule")];
    let mut n = node(s);
    let a = src(1);
    let good = syn(a, 40000, 7000);
    assert!(pass(open(&mut n, T0, a, 40000, 7000)));
    // Two bytes first: pending, passed; then the rule's bytes match.
    assert!(pass(n.run(T0 + MS, &seg(&good, fl::ACK, 0, b"MO").build())));
    assert!(pass(n.run(T0 + MS, &seg(&good, fl::ACK, 2, b"AT hello").build())));
    assert!(pass(n.run(T0 + MS, &seg(&good, fl::ACK, 10, b"anything").build())));
    let bad = syn(a, 40001, 7000);
    assert!(pass(open(&mut n, T0, a, 40001, 7000)));
    let junk = seg(&bad, fl::ACK, 0, b"JUNK!");
    assert!(matches!(
        n.run(T0 + MS, &junk.build()),
        Verdict::ResetBoth {
            reason: DropReason::TcpPayloadMismatch,
            ..
        }
    ));
    assert_eq!(n.st.violation.map(|v| v.kind), Some(ViolationKind::PayloadMismatch));
    // Port 80 has no rule: not inspected.
    assert!(pass(open(&mut n, T0, a, 40002, 80)));
    assert!(pass(
        n.run(T0 + MS, &seg(&syn(a, 40002, 80), fl::ACK, 0, b"JUNK!").build())
    ));
}

#[test]
fn sweep_ends_empty_connections_once() {
    let mut n = node(svc(Limits {
        empty_conn_secs: 2,
        src_conns: 10,
        ..Limits::default()
    }));
    let a = src(1);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    assert!(pass(open(&mut n, T0, a, 40001, 80)));
    // The second one talks.
    assert!(pass(
        n.run(T0 + MS, &seg(&syn(a, 40001, 80), fl::ACK, 0, b"hi").build())
    ));
    // A SYN without its handshake's ACK is not established: never empty.
    assert!(pass(n.run(T0, &syn(a, 40002, 80).build())));
    let idle = n.pol.timeouts.flow_idle;
    n.st.sweep_flows(T0 + SECOND, idle, 64);
    assert!(n.st.ended.is_none());
    n.st.sweep_flows(T0 + 2 * SECOND + 10 * MS, idle, 64);
    let g = n.st.ended.take().expect("the empty connection ended");
    assert_eq!(g.id.ports(), (40000, 80));
    assert_eq!((g.flow.seq, g.flow.ack), (ISN + 1, SRV_ISN + 1));
    assert_eq!(n.st.violation.map(|v| v.kind), Some(ViolationKind::EmptyConn));
    assert_eq!(n.st.flows.len(), 2);
    assert_eq!(n.st.conns.get(conn_key(a), 0), 2);
    n.st.sweep_flows(T0 + 3 * SECOND, idle, 64);
    assert!(n.st.ended.is_none(), "only the empty one");

    // Its RSTs, built from the client's L2 header kept at the SYN.
    let l2 = &n.st.l2[..usize::from(n.st.l2_len)];
    let mut out = [0u8; 128];
    let len = conn::client_segment(l2, &g.id, g.flow.seq, g.flow.ack, fl::RST | fl::ACK, &mut out).expect("built");
    let to_origin = TcpSeen::from_reply(&out[..len]);
    assert_eq!((to_origin.src, to_origin.dst), (a, vip()));
    assert_eq!((to_origin.sport, to_origin.dport), (40000, 80));
    assert_eq!((to_origin.seq, to_origin.flags), (ISN + 1, fl::RST | fl::ACK));
    let p = parse::parse(&out[..len]).expect("parses");
    let mut reply = [0u8; 128];
    let n2 = classifier::build::tcp_reply(&out[..len], &p, g.flow.ack, 0, fl::RST, 0, None, &mut reply).expect("rst");
    let to_client = TcpSeen::from_reply(&reply[..n2]);
    assert_eq!((to_client.src, to_client.dst), (vip(), a));
    assert_eq!((to_client.seq, to_client.flags), (SRV_ISN + 1, fl::RST));
    assert_eq!((to_client.src_mac, to_client.dst_mac), (MOAT_MAC, CLIENT_MAC));
}

#[test]
fn limit_rules_count_every_request_of_a_keep_alive_connection() {
    let mut s = deny_login();
    let mut r = L7Rule::new(L7Action::Limit { per_source_rps: 3 });
    r.path_prefix = Some(b"/api".as_slice().into());
    s.l7_rules.push(r);
    let mut n = node(s);
    let a = src(1);
    let c = syn(a, 40000, 80);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    let req = b"GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n";
    let step = req.len() as u32;
    // Three requests a second pass: the first segment, then two more on
    // the same connection (a body segment in between is not a request).
    for i in 0..3 {
        let v = n.run(T0 + MS, &seg(&c, fl::ACK | fl::PSH, i * step, req).build());
        assert!(pass(v), "request {i}: {v:?}");
    }
    assert!(pass(n.run(T0 + MS, &seg(&c, fl::ACK, 3 * step, b"body bytes").build())));
    let v = n.run(T0 + MS, &seg(&c, fl::ACK | fl::PSH, 3 * step + 10, req).build());
    assert!(
        matches!(
            v,
            Verdict::ResetBoth {
                reason: DropReason::L7Limit,
                ..
            }
        ),
        "{v:?}"
    );
    assert_eq!(n.st.violation.map(|v| v.kind), Some(ViolationKind::L7Limit));
    assert_eq!(n.st.flows.len(), 0);
    // Another source has its own rate; a later /login on a keep-alive
    // connection is denied like a first one.
    let b = syn(src(2), 40000, 80);
    assert!(pass(open(&mut n, T0, src(2), 40000, 80)));
    assert!(pass(n.run(T0 + MS, &seg(&b, fl::ACK, 0, req).build())));
    let v = n.run(
        T0 + MS,
        &seg(&b, fl::ACK, step, b"POST /login HTTP/1.1\r\n\r\n").build(),
    );
    assert!(
        matches!(
            v,
            Verdict::ResetBoth {
                reason: DropReason::L7Deny,
                ..
            }
        ),
        "{v:?}"
    );
    // A second later the first source's bucket has refilled.
    assert!(pass(open(&mut n, T0 + SECOND, a, 40001, 80)));
    assert!(pass(
        n.run(T0 + SECOND + MS, &seg(&syn(a, 40001, 80), fl::ACK, 0, req).build())
    ));
}

#[path = "l7_support/mod.rs"]
mod l7_support;

/// What a flow's first bytes said is handed to the caller on the packet
/// that had them judged (for its sample: detection's JA4 and Host + path
/// heavy hitters), once, and never on a packet that judged nothing.
#[test]
fn judged_first_bytes_are_handed_over_for_samples() {
    let mut n = node(deny_login());
    let a = src(1);
    let s = syn(a, 40000, 80);
    assert!(pass(open(&mut n, T0, a, 40000, 80)));
    assert_eq!(n.st.l7_seen, None, "the handshake judged nothing");
    let ok = seg(
        &s,
        fl::ACK | fl::PSH,
        0,
        b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
    );
    assert!(pass(n.run(T0 + MS, &ok.build())));
    let seen = n.st.l7_seen.take().expect("the request was judged");
    let hp = seen.host_path.expect("Host and path");
    assert_eq!(hp.text(), "www.example.com/index.html");
    assert_eq!(hp, classifier::l7::HostPath::new(b"www.example.com", b"/index.html"));
    assert_eq!(seen.ja4, None);
    // A data segment that starts no request says nothing new.
    assert!(pass(n.run(T0 + 2 * MS, &seg(&s, fl::ACK, 52, b"body bytes").build())));
    assert_eq!(n.st.l7_seen, None);
    // A denied request is handed over too (the attack's paths are the
    // heavy hitters worth seeing).
    let b = syn(a, 40001, 80);
    assert!(pass(open(&mut n, T0, a, 40001, 80)));
    let deny = seg(&b, fl::ACK | fl::PSH, 0, b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(n.run(T0 + 3 * MS, &deny.build()), Verdict::ResetBoth { .. }));
    let hp =
        n.st.l7_seen
            .take()
            .and_then(|s| s.host_path)
            .expect("the denied request");
    assert_eq!(hp.text(), "x/login");

    // A TLS ClientHello: its JA4, as ja4plus computes it (l7_support).
    let c = syn(a, 40002, 80);
    assert!(pass(open(&mut n, T0, a, 40002, 80)));
    let hello = l7_support::unhex(l7_support::CURL_SNI_HEX);
    assert!(pass(n.run(T0 + 4 * MS, &seg(&c, fl::ACK | fl::PSH, 0, &hello).build())));
    let seen = n.st.l7_seen.take().expect("the hello was judged");
    assert_eq!(
        seen.ja4.map(|j| j.as_str().to_string()).as_deref(),
        Some(l7_support::CURL_SNI_JA4)
    );
    assert_eq!(seen.host_path, None);
}
