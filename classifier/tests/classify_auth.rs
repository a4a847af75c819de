//! `http-redirect` SYN authentication and UDP game authentication end to
//! end through `classify`: packets built by etherparse, Moat's replies
//! parsed back by etherparse with their checksums checked.
//!
//! - `http-redirect`: SYN → SYN-ACK (cookie) → ACK (consumed) → GET →
//!   `307` adding a token, with FIN → the client's FIN (consumed) → a new
//!   connection's GET with the token → `307` without it, source verified →
//!   the next SYN passes. A bot that does not follow, a stolen token, a
//!   non-HTTP first segment, IPv6 and 802.1Q.
//! - `udp_auth` a2s: query → `S2C_CHALLENGE` (never larger than the query,
//!   under the challenge rate) → query with it → verified, passes.
//! - `udp_auth` first-packet: the init packet twice inside the window.

mod common;

use classifier::classify;
use classifier::classify::REPLY_ROOM;
use classifier::cookie::{self, CookieSecrets, Tuple};
use classifier::l7::{a2s, redirect};
use classifier::policy::{PayloadRule, Policy, Service, SynAuth};
use classifier::time::{Nanos, SECOND};
use classifier::udpauth::{FirstPacket, Profile, UdpAuth};
use classifier::verdict::{DropReason, Pass, Verdict};
use common::net::*;
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};

const SPORT: u16 = 40312;
const ISN: u32 = 0x1234_5678;

fn pass(service: u16, syn: bool) -> Verdict {
    Verdict::Pass(Pass {
        service,
        origin: 0,
        syn,
    })
}

/// `classify` into a reply buffer of `REPLY_ROOM` bytes.
fn run(node: &mut Node, now: Nanos, frame: &[u8], out: &mut [u8; REPLY_ROOM]) -> Verdict {
    *out = [0; REPLY_ROOM];
    classify(&mut node.st, &node.pol, now, frame, out)
}

fn reply(v: Verdict, out: &[u8]) -> &[u8] {
    let Verdict::Reply { len } = v else {
        panic!("expected a reply, got {v:?}")
    };
    &out[..len]
}

fn seg(tmpl: &Pkt, sport: u16, flags: u8, seq: u32, ack: u32, data: &[u8]) -> Pkt {
    let mut p = Pkt::tcp(tmpl.src, sport, tmpl.dst, 80, flags)
        .seq(seq)
        .ack(ack)
        .payload(data);
    p.vlan = tmpl.vlan;
    p
}

/// Opens a connection from `sport` and sends `request` as its first data:
/// returns the answer and the cookie.
fn request(node: &mut Node, now: Nanos, tmpl: &Pkt, sport: u16, req: &str) -> (Verdict, Vec<u8>, u32) {
    let mut out = [0u8; REPLY_ROOM];
    let mut syn = Pkt::syn(tmpl.src, sport, tmpl.dst, 80, ISN);
    syn.vlan = tmpl.vlan;
    let sa = TcpSeen::from_reply(reply(run(node, now, &syn.build(), &mut out), &out));
    sa.assert_answers(&syn);
    assert_eq!(sa.flags, fl::SYN | fl::ACK);
    assert_eq!(sa.ack, ISN + 1);
    let c = sa.seq;
    let k = syn.flow_key();
    let t = Tuple {
        src: k.src,
        dst: k.dst,
        sport: k.sport,
        dport: k.dport,
    };
    assert!(
        cookie::check(&CookieSecrets::new(KEY), &t, now, c).is_some(),
        "the SYN-ACK carries a cookie"
    );
    // The handshake's ACK is consumed, answered by nothing.
    let ack = seg(tmpl, sport, fl::ACK, ISN + 1, c + 1, b"");
    assert_eq!(
        run(node, now, &ack.build(), &mut out),
        Verdict::Drop(DropReason::HttpHandshake)
    );
    let get = seg(tmpl, sport, fl::ACK | fl::PSH, ISN + 1, c + 1, req.as_bytes());
    let v = run(node, now, &get.build(), &mut out);
    let bytes = match v {
        Verdict::Reply { len } => out[..len].to_vec(),
        _ => Vec::new(),
    };
    (v, bytes, c)
}

/// The `307` in `frame`, checked against the request it answers: its
/// `Location`.
fn redirect_location(frame: &[u8], tmpl: &Pkt, sport: u16, cookie: u32, req_len: usize) -> String {
    let r = TcpSeen::from_reply(frame);
    r.assert_answers(&seg(tmpl, sport, fl::ACK, 0, 0, b""));
    assert_eq!(r.flags, fl::FIN | fl::PSH | fl::ACK);
    assert_eq!(r.seq, cookie + 1, "continues Moat's side of the handshake");
    assert_eq!(r.ack, ISN + 1 + req_len as u32, "acknowledges the request");
    assert_eq!(r.payload_len, redirect::RESPONSE_LEN);
    let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse");
    let text = String::from_utf8(h.payload.slice().to_vec()).expect("ASCII");
    assert!(text.starts_with("HTTP/1.1 307 Temporary Redirect\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"));
    text.split("\r\n")
        .find_map(|l| l.strip_prefix("Location: "))
        .expect("Location")
        .to_string()
}

fn http_redirect_end_to_end(tmpl: Pkt, service: u16) {
    let mut node = Node::new(web_policy(SynAuth::HttpRedirect));
    let mut out = [0u8; REPLY_ROOM];
    let now = T0 + 10 * SECOND;
    let src = tmpl.src;

    // First connection: the request gets a 307 adding a token.
    let req = "GET /page?lang=en HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/7.88\r\n\r\n";
    let (v, frame, c) = request(&mut node, now, &tmpl, SPORT, req);
    assert!(matches!(v, Verdict::Reply { .. }), "{v:?}");
    let loc = redirect_location(&frame, &tmpl, SPORT, c, req.len());
    let tok = loc.strip_prefix("/page?lang=en&moat_token=").expect("token appended");
    assert_eq!(tok.len(), 16);
    assert!(!node.verified(src, now), "a redirect verifies nothing");
    // The client's ACK and FIN after the response: consumed quietly.
    let after = c + redirect::CLOSE_ACK_OFFSET;
    let fin = seg(&tmpl, SPORT, fl::FIN | fl::ACK, ISN + 1 + req.len() as u32, after, b"");
    assert_eq!(
        run(&mut node, now, &fin.build(), &mut out),
        Verdict::Drop(DropReason::HttpHandshake)
    );
    let wrong = seg(
        &tmpl,
        SPORT,
        fl::FIN | fl::ACK,
        ISN + 1 + req.len() as u32,
        after + 1,
        b"",
    );
    assert_eq!(
        run(&mut node, now, &wrong.build(), &mut out),
        Verdict::Drop(DropReason::BadCookie)
    );
    // A retransmitted request (the response was lost) is answered again.
    let get = seg(&tmpl, SPORT, fl::ACK | fl::PSH, ISN + 1, c + 1, req.as_bytes());
    assert!(matches!(
        run(&mut node, now, &get.build(), &mut out),
        Verdict::Reply { .. }
    ));

    // A request with a wrong cookie: nothing.
    let forged = seg(
        &tmpl,
        SPORT + 9,
        fl::ACK | fl::PSH,
        ISN + 1,
        0xdead_beef,
        req.as_bytes(),
    );
    assert_eq!(
        run(&mut node, now, &forged.build(), &mut out),
        Verdict::Drop(DropReason::BadCookie)
    );

    // The client follows: a new connection with the token.
    let req2 = format!("GET {loc} HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    let later = now + 3 * SECOND;
    let (v, frame, c2) = request(&mut node, later, &tmpl, SPORT + 1, &req2);
    assert!(matches!(v, Verdict::Reply { .. }), "{v:?}");
    assert_eq!(
        redirect_location(&frame, &tmpl, SPORT + 1, c2, req2.len()),
        "/page?lang=en"
    );
    assert!(node.verified(src, later));
    assert_eq!(node.st.just_verified.take(), Some((src, 300 * SECOND)));

    // Its next connection goes to the origin.
    let mut syn = Pkt::syn(src, SPORT + 2, tmpl.dst, 80, ISN);
    syn.vlan = tmpl.vlan;
    assert_eq!(run(&mut node, later, &syn.build(), &mut out), pass(service, true));
}

#[test]
fn http_redirect_ipv4() {
    http_redirect_end_to_end(Pkt::tcp(client4(), 0, vip4(), 80, 0), 0);
}

#[test]
fn http_redirect_ipv6_and_vlan() {
    http_redirect_end_to_end(Pkt::tcp(client6(), 0, vip6(), 80, 0), 1);
    http_redirect_end_to_end(Pkt::tcp(client4(), 0, vip4(), 80, 0).vlan(42), 0);
}

#[test]
fn http_redirect_holds_bots_and_stolen_tokens() {
    let mut node = Node::new(web_policy(SynAuth::HttpRedirect));
    let tmpl = Pkt::tcp(client4(), 0, vip4(), 80, 0);
    let now = T0;
    // A bot that never follows: every request gets a redirect, none passes.
    for i in 0..50u16 {
        let (v, _, _) = request(
            &mut node,
            now + u64::from(i) * SECOND,
            &tmpl,
            1000 + i,
            "GET / HTTP/1.1\r\n\r\n",
        );
        assert!(matches!(v, Verdict::Reply { .. }));
    }
    assert!(!node.verified(tmpl.src, now + 50 * SECOND));
    // Another source's token verifies nothing.
    let tok = redirect::token(&CookieSecrets::new(KEY), client4(), now);
    let thief = Pkt::tcp(ip("203.0.113.9"), 0, vip4(), 80, 0);
    let stolen = format!("GET /?moat_token={tok:016x} HTTP/1.1\r\n\r\n");
    let (v, frame, c) = request(&mut node, now, &thief, 2000, &stolen);
    assert!(matches!(v, Verdict::Reply { .. }));
    let loc = redirect_location(&frame, &thief, 2000, c, stolen.len());
    assert!(
        loc.starts_with("/?moat_token=") && !loc.ends_with(&format!("{tok:016x}")),
        "{loc}"
    );
    assert!(!node.verified(thief.src, now));
    // An expired token: a fresh redirect.
    let late = now + 3 * cookie::SLOT_SECS * SECOND;
    let req = format!("GET /?moat_token={tok:016x} HTTP/1.1\r\n\r\n");
    let (v, _, _) = request(&mut node, late, &tmpl, 3000, &req);
    assert!(matches!(v, Verdict::Reply { .. }));
    assert!(!node.verified(tmpl.src, late));
}

#[test]
fn http_redirect_resets_what_it_does_not_answer() {
    let mut node = Node::new(web_policy(SynAuth::HttpRedirect));
    let tmpl = Pkt::tcp(client4(), 0, vip4(), 80, 0);
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(600));
    for req in [
        "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "GET /abc",
        long.as_str(),
    ] {
        let (v, frame, c) = request(&mut node, T0, &tmpl, SPORT, req);
        assert!(matches!(v, Verdict::Reply { .. }), "{req:?}: {v:?}");
        let r = TcpSeen::from_reply(&frame);
        assert_eq!(r.flags, fl::RST, "{req:?}");
        assert_eq!(r.seq, c + 1, "<SEQ=SEG.ACK><CTL=RST>");
        assert_eq!(r.payload_len, 0);
    }
    // A reply buffer too small for the 307 falls back to a RST too.
    let mut syn = Pkt::syn(tmpl.src, SPORT, tmpl.dst, 80, ISN);
    syn.vlan = None;
    let mut small = [0u8; 128];
    let Verdict::Reply { len } = classify(&mut node.st, &node.pol, T0, &syn.build(), &mut small) else {
        panic!()
    };
    let c = TcpSeen::from_reply(&small[..len]).seq;
    let get = seg(&tmpl, SPORT, fl::ACK, ISN + 1, c + 1, b"GET / HTTP/1.1\r\n\r\n");
    let Verdict::Reply { len } = classify(&mut node.st, &node.pol, T0, &get.build(), &mut small) else {
        panic!()
    };
    assert_eq!(TcpSeen::from_reply(&small[..len]).flags, fl::RST);
}

// ---- udp_auth ----

const GAME_PORT: u16 = 27015;

fn game_policy(profile: Profile, challenge_pps: u64) -> Policy {
    let mut s = Service::new("game", vip4(), 0);
    s.udp_ports.insert(GAME_PORT);
    s.udp_ports.insert(GAME_PORT + 1);
    s.syn_auth = SynAuth::Off;
    s.limits.challenge_pps = challenge_pps;
    s.udp_auth = vec![UdpAuth {
        port: GAME_PORT,
        profile,
    }];
    let mut s6 = s.clone();
    s6.name = "game6".into();
    s6.vip = vip6();
    policy_with(KEY, vec![s, s6])
}

fn info(challenge: Option<u32>) -> Vec<u8> {
    let mut q = vec![0xff, 0xff, 0xff, 0xff, 0x54];
    q.extend_from_slice(a2s::INFO_PAYLOAD);
    if let Some(c) = challenge {
        q.extend_from_slice(&c.to_le_bytes());
    }
    q
}

/// The UDP reply in `frame`, checksums checked by etherparse: its payload.
fn udp_reply(frame: &[u8], to: &Pkt) -> Vec<u8> {
    let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse");
    let Some(TransportHeader::Udp(u)) = &h.transport else {
        panic!("not UDP")
    };
    let payload = h.payload.slice();
    let sum = match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
            assert_eq!(ip.source, <[u8; 4]>::try_from(&to_bytes(to.dst)[..]).unwrap());
            u.calc_checksum_ipv4(ip, payload).expect("sum")
        }
        Some(NetHeaders::Ipv6(ip, _)) => {
            assert_eq!(ip.destination.to_vec(), to_bytes(to.src));
            u.calc_checksum_ipv6(ip, payload).expect("sum")
        }
        None => panic!("no IP"),
    };
    assert_eq!(sum, u.checksum, "UDP checksum");
    let L4::Udp { sport, dport } = &to.l4 else {
        panic!("not UDP")
    };
    assert_eq!((u.source_port, u.destination_port), (*dport, *sport));
    assert_eq!(usize::from(u.length), 8 + payload.len());
    payload.to_vec()
}

fn to_bytes(a: std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn a2s_end_to_end(src: std::net::IpAddr, vip: std::net::IpAddr, service: u16) {
    let mut node = Node::new(game_policy(Profile::A2s, 0));
    let mut out = [0u8; REPLY_ROOM];
    let now = T0;
    let q = Pkt::udp(src, 27005, vip, GAME_PORT, &info(None));
    let v = run(&mut node, now, &q.build(), &mut out);
    let frame = reply(v, &out).to_vec();
    assert!(frame.len() <= q.build().len(), "amplification factor <= 1");
    let ch = udp_reply(&frame, &q);
    assert_eq!(ch.len(), a2s::CHALLENGE_LEN);
    assert_eq!(ch[..5], [0xff, 0xff, 0xff, 0xff, 0x41]);
    let c = u32::from_le_bytes(ch[5..9].try_into().unwrap());
    assert!(!node.verified(src, now));
    // Non-queries and GETCHALLENGE (shorter than the reply): dropped.
    for junk in [&b"\xff\xff\xff\xff\x57"[..], b"hello", b"\xff\xff\xff\xffTSource"] {
        let p = Pkt::udp(src, 27005, vip, GAME_PORT, junk);
        assert_eq!(
            run(&mut node, now, &p.build(), &mut out),
            Verdict::Drop(DropReason::UdpUnverified)
        );
    }
    // The challenge from another port or address: a new challenge.
    let other = Pkt::udp(src, 27006, vip, GAME_PORT, &info(Some(c)));
    assert!(matches!(
        run(&mut node, now, &other.build(), &mut out),
        Verdict::Reply { .. }
    ));
    // The query with Moat's challenge: verified, passes to the server.
    let ok = Pkt::udp(src, 27005, vip, GAME_PORT, &info(Some(c)));
    assert_eq!(
        run(&mut node, now + SECOND, &ok.build(), &mut out),
        pass(service, false)
    );
    assert!(node.verified(src, now + SECOND));
    assert_eq!(node.st.just_verified.take().map(|(a, _)| a), Some(src));
    // From then on everything of the source passes (the server's own
    // challenge round, other queries).
    let srv = Pkt::udp(src, 27005, vip, GAME_PORT, &info(Some(0x0bad_cafe)));
    assert_eq!(
        run(&mut node, now + SECOND, &srv.build(), &mut out),
        pass(service, false)
    );
    let any = Pkt::udp(src, 27005, vip, GAME_PORT, b"game traffic");
    assert_eq!(
        run(&mut node, now + SECOND, &any.build(), &mut out),
        pass(service, false)
    );
    // A port without udp_auth is unaffected.
    let plain = Pkt::udp(ip("203.0.113.77"), 1, vip4(), GAME_PORT + 1, b"x");
    assert_eq!(run(&mut node, now, &plain.build(), &mut out), pass(0, false));
}

#[test]
fn a2s_ipv4() {
    a2s_end_to_end(client4(), vip4(), 0);
}

#[test]
fn a2s_ipv6() {
    a2s_end_to_end(client6(), vip6(), 1);
}

#[test]
fn a2s_challenges_are_rate_limited_and_expire() {
    let mut node = Node::new(game_policy(Profile::A2s, 3));
    let mut out = [0u8; REPLY_ROOM];
    let mut replies = 0;
    for i in 0..100u32 {
        let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let q = Pkt::udp(src, 27005, vip4(), GAME_PORT, &info(None));
        match run(&mut node, T0, &q.build(), &mut out) {
            Verdict::Reply { .. } => replies += 1,
            v => assert_eq!(v, Verdict::Drop(DropReason::RateLimitChallenge)),
        }
    }
    assert_eq!(replies, 3, "a spoofed flood draws challenge_pps replies a second");
    // A challenge is good for two 32 s slots at most.
    let mut node = Node::new(game_policy(Profile::A2s, 0));
    let c = a2s::challenge(&KEY, client4(), 27005, T0);
    let late = Pkt::udp(client4(), 27005, vip4(), GAME_PORT, &info(Some(c)));
    let v = run(&mut node, T0 + 2 * a2s::SLOT_SECS * SECOND, &late.build(), &mut out);
    assert!(matches!(v, Verdict::Reply { .. }), "{v:?}");
    assert!(!node.verified(client4(), T0 + 65 * SECOND));
}

#[test]
fn first_packet_window() {
    let fp = FirstPacket {
        rule: PayloadRule::new(0, 0, b"\xde\xad\x00\x01", b"\xff\xff\x00\xff").unwrap(),
        min: 300 * MS,
        max: 2000 * MS,
    };
    let mut node = Node::new(game_policy(Profile::FirstPacket(fp), 0));
    let mut out = [0u8; REPLY_ROOM];
    let hello = |src, sport| Pkt::udp(src, sport, vip4(), GAME_PORT, b"\xde\xad\x77\x01 connect").build();
    let (a, t0) = (client4(), T0);
    // Not the init packet: dropped, remembers nothing.
    let junk = Pkt::udp(a, 5000, vip4(), GAME_PORT, b"\xde\xae\x00\x01").build();
    assert_eq!(
        run(&mut node, t0, &junk, &mut out),
        Verdict::Drop(DropReason::UdpUnverified)
    );
    // First, too early, in the window.
    assert_eq!(
        run(&mut node, t0, &hello(a, 5000), &mut out),
        Verdict::Drop(DropReason::UdpFirstPacket)
    );
    assert_eq!(
        run(&mut node, t0 + 100 * MS, &hello(a, 5000), &mut out),
        Verdict::Drop(DropReason::UdpFirstPacket)
    );
    assert!(!node.verified(a, t0 + 100 * MS));
    assert_eq!(run(&mut node, t0 + 400 * MS, &hello(a, 5000), &mut out), pass(0, false));
    assert!(node.verified(a, t0 + 400 * MS));
    assert_eq!(run(&mut node, t0 + 500 * MS, &junk, &mut out), pass(0, false));
    // Too late: starts over.
    let b = ip("198.18.0.2");
    assert_eq!(
        run(&mut node, t0, &hello(b, 5000), &mut out),
        Verdict::Drop(DropReason::UdpFirstPacket)
    );
    assert_eq!(
        run(&mut node, t0 + 2500 * MS, &hello(b, 5000), &mut out),
        Verdict::Drop(DropReason::UdpFirstPacket)
    );
    assert_eq!(
        run(&mut node, t0 + 3000 * MS, &hello(b, 5000), &mut out),
        pass(0, false)
    );
    // A spoofed flood of the init packet from random sources: each source
    // sends it once, none is verified.
    for i in 0..10_000u32 {
        let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
        assert_eq!(
            run(&mut node, t0 + u64::from(i) * MS, &hello(src, 1024), &mut out),
            Verdict::Drop(DropReason::UdpFirstPacket)
        );
    }
    assert_eq!(node.st.verified.len(), 2);
}
