//! The targets of `http-redirect` and `udp_auth`:
//!
//! - `redirect`: [`classifier::l7::redirect::answer`] on any first segment,
//!   from a source and at a time taken from the input. A response is
//!   exactly `RESPONSE_LEN` bytes of printable ASCII, a `307` whose
//!   `Content-Length` matches its body and whose `Location` is an
//!   origin-form target with no control byte; a redirect's `Location`
//!   carries a token that verifies for that source and time, and no
//!   other `moat_token`; a `Verified` answer comes only from a request
//!   whose token verifies, and its `Location` has no token.
//! - `auth_classify`: `classify` over a sequence of frames (the
//!   [`crate::records`] format) with a policy of http-redirect services
//!   (IPv4 and IPv6) with `udp_auth` a2s and first-packet ports. A reply
//!   is 60 to `REPLY_ROOM` bytes and parses; a TCP reply that carries data
//!   is the 536-byte `307`; a UDP reply (an A2S challenge) is no longer
//!   than the datagram it answers; the state's memory never grows.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use classifier::classify::{classify, REPLY_ROOM};
use classifier::l7::redirect::{self, Answer, RESPONSE_LEN};
use classifier::parse::{parse, L4};
use classifier::policy::{Origin, PayloadRule, Policy, PortSet, Service, SynAuth};
use classifier::state::{StateConfig, WorkerState};
use classifier::time::MILLISECOND;
use classifier::udpauth::{FirstPacket, Profile, UdpAuth};
use classifier::verdict::Verdict;

use crate::classify::{secrets, START, VIP4, VIP6};
use crate::records::records;

/// The UDP ports of the auth policy.
pub const A2S_PORT: u16 = 27015;
pub const FIRST_PACKET_PORT: u16 = 7777;

pub fn redirect(data: &[u8]) {
    if data.len() < 9 {
        return;
    }
    let (head, payload) = data.split_at(9);
    let src = if head[0] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(head[1], head[2], head[3], head[4]))
    } else {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            u16::from(head[1]),
            u16::from(head[2]),
        ))
    };
    let now = START + u64::from(u32::from_be_bytes([head[5], head[6], head[7], head[8]])) * MILLISECOND;
    let s = secrets();
    let mut out = [0u8; 2 * RESPONSE_LEN];
    let answer = redirect::answer(&s, src, now, payload, &mut out);
    let (n, verified) = match answer {
        Answer::Refuse => return,
        Answer::Redirect(n) => (n, false),
        Answer::Verified(n) => (n, true),
    };
    assert_eq!(n, RESPONSE_LEN);
    let text = core::str::from_utf8(&out[..n]).expect("ASCII");
    assert!(text
        .bytes()
        .all(|b| b == b'\r' || b == b'\n' || (0x20..0x7f).contains(&b)));
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 307 Temporary Redirect"));
    let mut location = None;
    let mut length = None;
    for l in lines {
        let (k, v) = l.split_once(": ").expect("a header line");
        match k {
            "Location" => location = Some(v),
            "Content-Length" => length = Some(v.parse::<usize>().expect("a length")),
            "Connection" => assert_eq!(v, "close"),
            "Cache-Control" => assert_eq!(v, "no-store"),
            other => panic!("header {other}"),
        }
    }
    assert_eq!(length, Some(body.len()));
    let location = location.expect("Location");
    assert!(location.starts_with('/') && location.bytes().all(|b| (0x21..0x7f).contains(&b)));
    let token = redirect::find_token(location.as_bytes());
    // Parameters of the query (after the first `?`; the path may hold `&`).
    let query = location.split_once('?').map_or("", |(_, q)| q);
    let tokens = query
        .split('&')
        .filter(|p| *p == "moat_token" || p.starts_with("moat_token="))
        .count();
    let sent = redirect::find_token(payload_target(payload));
    if verified {
        assert!(sent.is_some_and(|t| redirect::verify_token(&s, src, now, t)));
        assert_eq!(tokens, 0, "{location}");
    } else {
        assert_eq!(tokens, 1, "{location}");
        assert!(token.is_some_and(|t| redirect::verify_token(&s, src, now, t)));
    }
}

/// The request-target of a request line (the bytes between the first two
/// spaces), for checking what `answer` read.
fn payload_target(p: &[u8]) -> &[u8] {
    let p = p.strip_prefix(b"\r\n").or_else(|| p.strip_prefix(b"\n")).unwrap_or(p);
    let mut parts = p.splitn(3, |&b| b == b' ');
    parts.next();
    parts.next().unwrap_or(&[])
}

fn service(name: &str, vip: IpAddr) -> Service {
    let mut s = Service::new(name, vip, 0);
    s.tcp_ports = PortSet::from_ports([80]);
    s.udp_ports = PortSet::from_ports([A2S_PORT, FIRST_PACKET_PORT]);
    s.syn_auth = SynAuth::HttpRedirect;
    s.limits.challenge_pps = 8;
    s.udp_auth = vec![
        UdpAuth {
            port: A2S_PORT,
            profile: Profile::A2s,
        },
        UdpAuth {
            port: FIRST_PACKET_PORT,
            profile: Profile::FirstPacket(FirstPacket {
                rule: PayloadRule::new(FIRST_PACKET_PORT, 0, b"\xde\xad", b"\xff\xff").expect("rule"),
                min: 100 * MILLISECOND,
                max: 1000 * MILLISECOND,
            }),
        },
    ];
    s
}

/// The auth policy (see the module docs), with the classify target's
/// secret and VIPs.
pub fn policy() -> Policy {
    let mut p = Policy::new(secrets());
    p.add_origin(Origin {
        name: "origin".into(),
        tunnel_src: Ipv4Addr::new(10, 0, 0, 1),
        tunnel_dst: Ipv4Addr::new(10, 0, 0, 2),
        key: None,
        mtu: 1476,
    });
    p.add_service(service("web4", IpAddr::V4(VIP4))).expect("v4");
    p.add_service(service("web6", IpAddr::V6(VIP6))).expect("v6");
    p
}

pub fn auth_classify(data: &[u8]) {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    let pol = POLICY.get_or_init(policy);
    let sizes = StateConfig {
        flows: 8,
        verified: 8,
        sources: 8,
        bans: 16,
        reassembly: Default::default(),
    };
    let mut st = WorkerState::new(&sizes, pol, 2);
    let memory = st.memory_bytes();
    let mut now = START;
    let mut reply = [0u8; REPLY_ROOM];
    let mut buf = Vec::new();
    for (dt, frame) in records(data) {
        now = now.saturating_add(dt);
        buf.clear();
        buf.extend_from_slice(frame);
        crate::classify::fix_ipv4_checksum(&mut buf);
        if let Verdict::Reply { len } = classify(&mut st, pol, now, &buf, &mut reply) {
            check_reply(&buf, &reply[..len]);
        }
    }
    assert_eq!(st.memory_bytes(), memory, "per-core state grew");
}

fn check_reply(req: &[u8], r: &[u8]) {
    assert!(r.len() >= 60 && r.len() <= REPLY_ROOM, "reply of {} bytes", r.len());
    let p = parse(r).expect("a reply parses");
    let payload = p.payload(r);
    match p.l4 {
        L4::Tcp(_) if !payload.is_empty() => {
            assert_eq!(payload.len(), RESPONSE_LEN);
            assert!(payload.starts_with(b"HTTP/1.1 307 "));
        }
        L4::Udp { .. } => {
            assert_eq!(payload.len(), 9, "an S2C_CHALLENGE");
            assert!(
                r.len() <= req.len().max(60),
                "amplification: {} for {}",
                r.len(),
                req.len()
            );
        }
        _ => {}
    }
}
