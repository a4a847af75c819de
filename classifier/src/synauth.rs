//! SYN authentication (DESIGN.md, countermeasures) as pure functions: check a
//! packet, write the reply into the caller's buffer. Stateless: everything a
//! later answer is checked against is in the cookie, so it works with one-way
//! traffic and on any node of a cluster sharing the secret.
//!
//! - `challenge-ack`: a SYN from an unverified source is answered with a
//!   SYN-ACK whose acknowledgement number is the cookie. A real TCP stack in
//!   SYN-SENT finds that ACK unacceptable and answers
//!   `<SEQ=SEG.ACK><CTL=RST>` (RFC 793 §3.4, "Reset Generation", and §3.9
//!   SYN-SENT), so the RST's sequence number carries the cookie back. The
//!   client's SYN retransmission (1 s later on Linux) then passes.
//! - `cookie-reset`: the SYN-ACK carries the cookie as its sequence number;
//!   the client's ACK acknowledges cookie + 1, which verifies the source and is
//!   answered with a RST (RFC 793: a RST to a segment with ACK takes its
//!   sequence number from SEG.ACK); the client application reconnects.

use crate::build;
use crate::cookie::{self, CookieSecrets, Tuple};
use crate::parse::{Parsed, TcpInfo};
use crate::policy::SynAuth;
use crate::time::Nanos;
use crate::verdict::TcpAnswer;

/// TCP flag bits (re-exported from the wire format for callers of this
/// module).
pub use crate::wire::tcp::flags;

/// MSS assumed when a SYN carries none (RFC 9293 §3.7.1: 536 for IPv4).
pub const DEFAULT_MSS: u16 = 536;

/// Window advertised in challenge SYN-ACKs.
const CHALLENGE_WINDOW: u16 = 65535;

#[inline]
fn tuple(p: &Parsed, t: &TcpInfo) -> Tuple {
    Tuple {
        src: p.src_ip(),
        dst: p.dst_ip(),
        sport: t.sport,
        dport: t.dport,
    }
}

/// The MSS option of a SYN, without a full option walk in the common case
/// (every mainstream stack puts MSS first).
#[inline]
pub fn syn_mss(frame: &[u8], p: &Parsed, t: &TcpInfo) -> Option<u16> {
    let start = usize::from(p.l4_offset) + 20;
    let end = usize::from(p.l4_offset) + usize::from(t.header_len);
    let opts = frame.get(start..end)?;
    if let [2, 4, hi, lo, ..] = *opts {
        return Some(u16::from_be_bytes([hi, lo]));
    }
    let mut rest = opts;
    while let Ok((next, opt)) = crate::wire::TcpOption::parse(rest) {
        match opt {
            crate::wire::TcpOption::MaxSegmentSize(m) => return Some(m),
            crate::wire::TcpOption::EndOfList => return None,
            _ => rest = next,
        }
        if rest.is_empty() {
            break;
        }
    }
    None
}

/// The cookie Moat puts in its challenge to the SYN `t` at `now`: bound to the
/// SYN's tuple, and carrying the index of the SYN's MSS.
#[inline]
pub fn syn_cookie(secrets: &CookieSecrets, frame: &[u8], p: &Parsed, t: &TcpInfo, now: Nanos) -> u32 {
    let mss = syn_mss(frame, p, t).unwrap_or(DEFAULT_MSS);
    cookie::make(secrets, &tuple(p, t), now, cookie::mss_index(mss))
}

/// The challenge SYN-ACK for the SYN `t` (`mode` must not be
/// [`SynAuth::Off`]): its TCP fields, for [`build::tcp_answer`] to write
/// over the SYN itself. The cookie is computed here, once per SYN.
#[inline]
pub fn challenge_answer(
    mode: SynAuth,
    secrets: &CookieSecrets,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    t: &TcpInfo,
) -> Option<TcpAnswer> {
    let c = syn_cookie(secrets, frame, p, t, now);
    let flags = flags::SYN | flags::ACK;
    match mode {
        // Our own sequence number is irrelevant (the client resets), but must
        // not leak the cookie: use its bitwise complement rotated.
        SynAuth::ChallengeAck => Some(TcpAnswer {
            seq: (!c).rotate_left(13),
            ack: c,
            flags,
            window: CHALLENGE_WINDOW,
            mss: None,
        }),
        // http-redirect completes the handshake the same way
        // (l7::redirect).
        SynAuth::CookieReset | SynAuth::HttpRedirect => Some(TcpAnswer {
            seq: c,
            ack: t.seq.wrapping_add(1),
            flags,
            window: CHALLENGE_WINDOW,
            mss: Some(cookie::MSS_TABLE[(c & 7) as usize]),
        }),
        SynAuth::Off => None,
    }
}

/// Writes the challenge SYN-ACK for the SYN `t` into `out` (`mode` must not be
/// [`SynAuth::Off`]): [`challenge_answer`] built aside. Returns its length,
/// `None` if `out` is too small.
#[inline]
pub fn challenge(
    mode: SynAuth,
    secrets: &CookieSecrets,
    now: Nanos,
    frame: &[u8],
    p: &Parsed,
    t: &TcpInfo,
    out: &mut [u8],
) -> Option<usize> {
    let a = challenge_answer(mode, secrets, now, frame, p, t)?;
    build::tcp_reply(frame, p, a.seq, a.ack, a.flags, a.window, a.mss, out)
}

/// Is this RST the answer of a real stack to our `challenge-ack` SYN-ACK?
#[inline]
pub fn check_rst(secrets: &CookieSecrets, now: Nanos, p: &Parsed, t: &TcpInfo) -> bool {
    cookie::check(secrets, &tuple(p, t), now, t.seq).is_some()
}

/// Is this ACK the completion of a `cookie-reset` handshake (ACK = cookie + 1)?
#[inline]
pub fn check_ack(secrets: &CookieSecrets, now: Nanos, p: &Parsed, t: &TcpInfo) -> bool {
    cookie::check(secrets, &tuple(p, t), now, t.ack.wrapping_sub(1)).is_some()
}

/// The RST that answers a verified `cookie-reset` ACK
/// (`<SEQ=SEG.ACK><CTL=RST>`, RFC 793 §3.4), to be written over the ACK.
#[inline]
pub fn reset_after_ack_answer(t: &TcpInfo) -> TcpAnswer {
    TcpAnswer {
        seq: t.ack,
        ack: 0,
        flags: flags::RST,
        window: 0,
        mss: None,
    }
}

/// [`reset_after_ack_answer`] built into `out`.
#[inline]
pub fn reset_after_ack(frame: &[u8], p: &Parsed, t: &TcpInfo, out: &mut [u8]) -> Option<usize> {
    let a = reset_after_ack_answer(t);
    build::tcp_reply(frame, p, a.seq, a.ack, a.flags, a.window, a.mss, out)
}
