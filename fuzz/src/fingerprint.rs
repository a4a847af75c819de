//! The `fingerprint` and `fp_rules` targets: the fingerprints computed from
//! packets, and the text forms of fingerprints and rules (the contract in
//! `classifier/src/fingerprint/mod.rs`).
//!
//! `fingerprint` checks that `tcp_fingerprint`/`udp_fingerprint` never panic
//! on a parsed frame, that every fingerprint computed prints as text that
//! parses back to the same value ("any fingerprint shown in a report can be
//! pasted as a rule that matches exactly it"), and that the exact rule of a
//! fingerprint matches it and round-trips too.
//!
//! `fp_rules` feeds arbitrary UTF-8 to the four `FromStr` impls (no panic,
//! whatever the text) and checks that whatever parses prints as text that
//! parses back equal, and prints the same again (a normal form).

use core::fmt::{Debug, Display};
use core::str::FromStr;

use classifier::fingerprint::{tcp_fingerprint, udp_fingerprint, TcpFingerprint, TcpRule, UdpFingerprint, UdpRule};
use classifier::parse::parse;

/// `v` prints as text that parses back to `v`, and that text is stable.
fn round_trips<T>(v: &T)
where
    T: Display + FromStr + PartialEq + Debug,
    T::Err: Debug,
{
    let text = v.to_string();
    let back: T = match text.parse() {
        Ok(b) => b,
        Err(e) => panic!("{v:?} prints as {text:?}, which does not parse: {e:?}"),
    };
    assert_eq!(&back, v, "{text:?} parses to another value");
    assert_eq!(back.to_string(), text);
}

/// The `fingerprint` target body.
pub fn fingerprint_frame(frame: &[u8]) {
    let Ok(p) = parse(frame) else { return };
    if let Some(fp) = tcp_fingerprint(frame, &p) {
        round_trips(&fp);
        let rule = TcpRule::exact(&fp);
        assert!(rule.matches(&fp), "the exact rule of {fp} does not match it");
        round_trips(&rule);
        assert_eq!(
            rule.to_string(),
            fp.to_string(),
            "an exact rule prints as its fingerprint"
        );
    }
    if let Some(fp) = udp_fingerprint(frame, &p) {
        round_trips(&fp);
        let rule = UdpRule::exact(&fp);
        assert!(rule.matches(&fp), "the exact rule of {fp} does not match it");
        round_trips(&rule);
        assert_eq!(
            rule.to_string(),
            fp.to_string(),
            "an exact rule prints as its fingerprint"
        );
    }
}

/// The `fp_rules` target body.
pub fn fp_rules_text(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else { return };
    if let Ok(r) = s.parse::<TcpRule>() {
        round_trips(&r);
    }
    if let Ok(r) = s.parse::<UdpRule>() {
        round_trips(&r);
    }
    if let Ok(fp) = s.parse::<TcpFingerprint>() {
        round_trips(&fp);
        assert!(TcpRule::exact(&fp).matches(&fp));
    }
    if let Ok(fp) = s.parse::<UdpFingerprint>() {
        round_trips(&fp);
        assert!(UdpRule::exact(&fp).matches(&fp));
    }
}
