//! Passive fingerprints of packets, their text form, and the rules written
//! against them.
//!
//! # TCP SYN fingerprint
//!
//! Modelled on p0f v3's signature layout (minus its payload class), written
//! as eight colon-separated fields:
//!
//! ```text
//! ver:ittl:olen:mss:wsize,scale:olayout:quirks
//! 4:64:0:1460:29200,7:mss,sok,ts,nop,ws:df,id+
//! ```
//!
//! | field   | meaning |
//! |---------|---------|
//! | ver     | IP version, `4` or `6` |
//! | ittl    | initial TTL guessed from the observed TTL: the smallest of 32, 64, 128, 255 not below it |
//! | olen    | length of IPv4 options in bytes (0 for IPv6) |
//! | mss     | MSS option value, `-` when absent |
//! | wsize   | TCP window; in rules also `mss*N` (window = N × MSS) |
//! | scale   | window scale option value, `-` when absent |
//! | olayout | TCP options in order: `mss`, `nop`, `ws`, `sok` (SACK permitted), `sack`, `ts`, `eol+N` (end of list then N padding bytes), `?K` (unknown kind K); empty when no options |
//! | quirks  | comma list, may be empty: `df` (don't fragment), `id+` (DF set and IP ID non-zero), `id-` (DF clear and IP ID zero), `ecn` (ECN bits set in IP or ECE/CWR in TCP), `seq-` (sequence number zero), `ack+` (ACK number non-zero without the ACK flag), `uptr+` (urgent pointer non-zero without URG), `urgf+` (URG flag), `pushf+` (PSH flag), `ts1-` (own timestamp zero), `ts2+` (peer timestamp non-zero in a SYN), `opt+` (non-zero bytes after EOL), `exws` (window scale above 14), `bad` (malformed options) |
//!
//! A rule has the same form; any field may be `*` (matches anything).
//! Computed fingerprints always print exact values, so any fingerprint shown
//! in a report can be pasted as a rule that matches exactly it.
//!
//! # UDP and other fingerprints
//!
//! Five fields: `proto:ver:len:sport:phash`, e.g. `udp:4:46:53:3f2a91c0`.
//! `proto` is `udp`, `icmp`, `icmp6` or a protocol number; `len` the L4
//! payload length; `sport` the source port (the ICMP type for ICMP, 0 for
//! other protocols); `phash` the FNV-1a 32-bit hash of the first
//! [`PAYLOAD_PREFIX`] payload bytes, in hex. Rules may use `*` per field.

mod compute;
pub use compute::{fingerprint, tcp_fingerprint, udp_fingerprint, Fingerprint};

use core::fmt;
use core::str::FromStr;

use hashbrown::HashSet;

/// Number of payload bytes hashed into a [`UdpFingerprint`].
pub const PAYLOAD_PREFIX: usize = 16;
/// Most TCP options recorded in a layout (a SYN carries at most 40 bytes of
/// options; more than 16 are only seen in attacks and end in `bad`).
pub const MAX_OPTS: usize = 16;

/// A TCP option kind as recorded in a layout.
pub mod opt {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SOK: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TS: u8 = 8;
}

/// Quirk bits of a TCP fingerprint (see the module table for their names).
pub mod quirk {
    pub const DF: u16 = 1 << 0;
    pub const ID_PLUS: u16 = 1 << 1;
    pub const ID_MINUS: u16 = 1 << 2;
    pub const ECN: u16 = 1 << 3;
    pub const SEQ_ZERO: u16 = 1 << 4;
    pub const ACK_PLUS: u16 = 1 << 5;
    pub const UPTR_PLUS: u16 = 1 << 6;
    pub const URGF: u16 = 1 << 7;
    pub const PUSHF: u16 = 1 << 8;
    pub const TS1_ZERO: u16 = 1 << 9;
    pub const TS2_PLUS: u16 = 1 << 10;
    pub const OPT_PLUS: u16 = 1 << 11;
    pub const EXWS: u16 = 1 << 12;
    pub const BAD: u16 = 1 << 13;
    /// Names in bit order.
    pub const NAMES: [(u16, &str); 14] = [
        (DF, "df"),
        (ID_PLUS, "id+"),
        (ID_MINUS, "id-"),
        (ECN, "ecn"),
        (SEQ_ZERO, "seq-"),
        (ACK_PLUS, "ack+"),
        (UPTR_PLUS, "uptr+"),
        (URGF, "urgf+"),
        (PUSHF, "pushf+"),
        (TS1_ZERO, "ts1-"),
        (TS2_PLUS, "ts2+"),
        (OPT_PLUS, "opt+"),
        (EXWS, "exws"),
        (BAD, "bad"),
    ];
}

/// The options of a SYN in order. `eol_pad` is the number of bytes after an
/// EOL option (only meaningful when the last kind is EOL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OptLayout {
    pub kinds: [u8; MAX_OPTS],
    pub len: u8,
    pub eol_pad: u8,
}

impl OptLayout {
    /// Appends a kind; returns false when the layout is full.
    pub fn push(&mut self, kind: u8) -> bool {
        if usize::from(self.len) >= MAX_OPTS {
            return false;
        }
        self.kinds[usize::from(self.len)] = kind;
        self.len += 1;
        true
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.kinds[..usize::from(self.len)]
    }
}

/// A TCP SYN fingerprint (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFingerprint {
    pub ver: u8,
    pub ittl: u8,
    pub olen: u8,
    pub mss: Option<u16>,
    pub window: u16,
    pub wscale: Option<u8>,
    pub layout: OptLayout,
    pub quirks: u16,
}

/// Initial TTL guessed from an observed one.
pub fn initial_ttl(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

/// A UDP/ICMP/other fingerprint (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpFingerprint {
    pub proto: u8,
    pub ver: u8,
    pub len: u16,
    pub sport: u16,
    pub phash: u32,
}

/// FNV-1a 32 over the first [`PAYLOAD_PREFIX`] bytes of `payload`: fixed and
/// unkeyed so that a fingerprint means the same on every node and across
/// restarts (this is an identifier, not a MAC).
pub fn payload_hash(payload: &[u8]) -> u32 {
    let n = payload.len().min(PAYLOAD_PREFIX);
    let mut h: u32 = 0x811c_9dc5;
    for b in &payload[..n] {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Error from parsing a fingerprint or rule text: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FpParseError {
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for FpParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for FpParseError {}

fn err<T>(field: &'static str, reason: impl Into<String>) -> Result<T, FpParseError> {
    Err(FpParseError {
        field,
        reason: reason.into(),
    })
}

fn num<T: FromStr>(field: &'static str, s: &str) -> Result<T, FpParseError> {
    s.parse()
        .or_else(|_| err(field, format!("`{s}` is not a valid number")))
}

/// `*` → `None`, else `Some(parsed)`.
fn wild<T>(s: &str, f: impl FnOnce(&str) -> Result<T, FpParseError>) -> Result<Option<T>, FpParseError> {
    if s == "*" {
        Ok(None)
    } else {
        f(s).map(Some)
    }
}

fn opt_num<T: FromStr>(field: &'static str, s: &str) -> Result<Option<T>, FpParseError> {
    if s == "-" {
        Ok(None)
    } else {
        num(field, s).map(Some)
    }
}

fn parse_layout(s: &str) -> Result<OptLayout, FpParseError> {
    let mut l = OptLayout::default();
    if s.is_empty() {
        return Ok(l);
    }
    for item in s.split(',') {
        let kind = match item {
            "mss" => opt::MSS,
            "nop" => opt::NOP,
            "ws" => opt::WS,
            "sok" => opt::SOK,
            "sack" => opt::SACK,
            "ts" => opt::TS,
            _ if item.starts_with("eol+") => {
                l.eol_pad = num("olayout", &item[4..])?;
                opt::EOL
            }
            _ if item.starts_with('?') => num("olayout", &item[1..])?,
            _ => return err("olayout", format!("unknown option `{item}`")),
        };
        if !l.push(kind) {
            return err("olayout", format!("more than {MAX_OPTS} options"));
        }
    }
    Ok(l)
}

fn fmt_layout(l: &OptLayout, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, k) in l.as_slice().iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        match *k {
            opt::MSS => f.write_str("mss")?,
            opt::NOP => f.write_str("nop")?,
            opt::WS => f.write_str("ws")?,
            opt::SOK => f.write_str("sok")?,
            opt::SACK => f.write_str("sack")?,
            opt::TS => f.write_str("ts")?,
            opt::EOL => write!(f, "eol+{}", l.eol_pad)?,
            other => write!(f, "?{other}")?,
        }
    }
    Ok(())
}

fn parse_quirks(s: &str) -> Result<u16, FpParseError> {
    let mut q = 0;
    if s.is_empty() {
        return Ok(q);
    }
    for item in s.split(',') {
        match quirk::NAMES.iter().find(|(_, n)| *n == item) {
            Some((bit, _)) => q |= bit,
            None => return err("quirks", format!("unknown quirk `{item}`")),
        }
    }
    Ok(q)
}

fn fmt_quirks(q: u16, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut first = true;
    for (bit, name) in quirk::NAMES {
        if q & bit != 0 {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
    }
    Ok(())
}

fn fmt_opt<T: fmt::Display>(v: Option<T>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Some(v) => write!(f, "{v}"),
        None => f.write_str("-"),
    }
}

impl fmt::Display for TcpFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:", self.ver, self.ittl, self.olen)?;
        fmt_opt(self.mss, f)?;
        write!(f, ":{},", self.window)?;
        fmt_opt(self.wscale, f)?;
        f.write_str(":")?;
        fmt_layout(&self.layout, f)?;
        f.write_str(":")?;
        fmt_quirks(self.quirks, f)
    }
}

/// The window field of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WinPat {
    Any,
    Exact(u16),
    /// Window equals N × MSS (never matches a SYN without MSS).
    MssMul(u16),
}

/// A rule against TCP SYN fingerprints: each `None` field is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRule {
    pub ver: Option<u8>,
    pub ittl: Option<u8>,
    pub olen: Option<u8>,
    pub mss: Option<Option<u16>>,
    pub window: WinPat,
    pub wscale: Option<Option<u8>>,
    pub layout: Option<OptLayout>,
    pub quirks: Option<u16>,
}

impl TcpRule {
    /// The rule matching exactly `fp`.
    pub fn exact(fp: &TcpFingerprint) -> Self {
        TcpRule {
            ver: Some(fp.ver),
            ittl: Some(fp.ittl),
            olen: Some(fp.olen),
            mss: Some(fp.mss),
            window: WinPat::Exact(fp.window),
            wscale: Some(fp.wscale),
            layout: Some(fp.layout),
            quirks: Some(fp.quirks),
        }
    }

    #[inline]
    pub fn matches(&self, fp: &TcpFingerprint) -> bool {
        fn eq<T: PartialEq>(p: &Option<T>, v: &T) -> bool {
            p.as_ref().is_none_or(|p| p == v)
        }
        let win = match self.window {
            WinPat::Any => true,
            WinPat::Exact(w) => fp.window == w,
            WinPat::MssMul(n) => fp
                .mss
                .is_some_and(|m| u32::from(m) * u32::from(n) == u32::from(fp.window)),
        };
        win && eq(&self.ver, &fp.ver)
            && eq(&self.ittl, &fp.ittl)
            && eq(&self.olen, &fp.olen)
            && eq(&self.mss, &fp.mss)
            && eq(&self.wscale, &fp.wscale)
            && eq(&self.layout, &fp.layout)
            && eq(&self.quirks, &fp.quirks)
    }
}

fn fmt_wild<T>(
    v: &Option<T>,
    f: &mut fmt::Formatter<'_>,
    g: impl FnOnce(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    match v {
        None => f.write_str("*"),
        Some(v) => g(v, f),
    }
}

impl fmt::Display for TcpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_wild(&self.ver, f, |v, f| write!(f, "{v}"))?;
        f.write_str(":")?;
        fmt_wild(&self.ittl, f, |v, f| write!(f, "{v}"))?;
        f.write_str(":")?;
        fmt_wild(&self.olen, f, |v, f| write!(f, "{v}"))?;
        f.write_str(":")?;
        fmt_wild(&self.mss, f, |v, f| fmt_opt(*v, f))?;
        f.write_str(":")?;
        match self.window {
            WinPat::Any => f.write_str("*")?,
            WinPat::Exact(w) => write!(f, "{w}")?,
            WinPat::MssMul(n) => write!(f, "mss*{n}")?,
        }
        f.write_str(",")?;
        fmt_wild(&self.wscale, f, |v, f| fmt_opt(*v, f))?;
        f.write_str(":")?;
        fmt_wild(&self.layout, f, fmt_layout)?;
        f.write_str(":")?;
        fmt_wild(&self.quirks, f, |q, f| fmt_quirks(*q, f))
    }
}

impl FromStr for TcpRule {
    type Err = FpParseError;

    fn from_str(s: &str) -> Result<Self, FpParseError> {
        let fields: Vec<&str> = s.trim().split(':').collect();
        if fields.len() != 7 {
            return err(
                "fingerprint",
                format!(
                    "expected 7 colon-separated fields (ver:ittl:olen:mss:wsize,scale:olayout:quirks), found {}",
                    fields.len()
                ),
            );
        }
        let ver = wild(fields[0], |s| match s {
            "4" => Ok(4),
            "6" => Ok(6),
            _ => err("ver", format!("`{s}` is not 4, 6 or *")),
        })?;
        let ittl = wild(fields[1], |s| num("ittl", s))?;
        let olen = wild(fields[2], |s| num("olen", s))?;
        let mss = wild(fields[3], |s| opt_num("mss", s))?;
        let Some((w, sc)) = fields[4].split_once(',') else {
            return err("wsize,scale", format!("`{}` has no comma", fields[4]));
        };
        let window = if w == "*" {
            WinPat::Any
        } else if let Some(n) = w.strip_prefix("mss*") {
            WinPat::MssMul(num("wsize", n)?)
        } else {
            WinPat::Exact(num("wsize", w)?)
        };
        let wscale = wild(sc, |s| opt_num("scale", s))?;
        let layout = wild(fields[5], parse_layout)?;
        let quirks = wild(fields[6], parse_quirks)?;
        Ok(TcpRule {
            ver,
            ittl,
            olen,
            mss,
            window,
            wscale,
            layout,
            quirks,
        })
    }
}

impl FromStr for TcpFingerprint {
    type Err = FpParseError;

    /// Parses an exact fingerprint (no wildcards, no `mss*N`).
    fn from_str(s: &str) -> Result<Self, FpParseError> {
        let r: TcpRule = s.parse()?;
        let (
            Some(ver),
            Some(ittl),
            Some(olen),
            Some(mss),
            WinPat::Exact(window),
            Some(wscale),
            Some(layout),
            Some(quirks),
        ) = (r.ver, r.ittl, r.olen, r.mss, r.window, r.wscale, r.layout, r.quirks)
        else {
            return err("fingerprint", "an exact fingerprint has no `*` and no `mss*N`");
        };
        Ok(TcpFingerprint {
            ver,
            ittl,
            olen,
            mss,
            window,
            wscale,
            layout,
            quirks,
        })
    }
}

fn proto_name(p: u8) -> Option<&'static str> {
    match p {
        17 => Some("udp"),
        1 => Some("icmp"),
        58 => Some("icmp6"),
        _ => None,
    }
}

fn parse_proto(s: &str) -> Result<u8, FpParseError> {
    match s {
        "udp" => Ok(17),
        "icmp" => Ok(1),
        "icmp6" => Ok(58),
        _ => num("proto", s),
    }
}

impl fmt::Display for UdpFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match proto_name(self.proto) {
            Some(n) => f.write_str(n)?,
            None => write!(f, "{}", self.proto)?,
        }
        write!(f, ":{}:{}:{}:{:08x}", self.ver, self.len, self.sport, self.phash)
    }
}

/// A rule against UDP/other fingerprints; `None` fields are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRule {
    pub proto: Option<u8>,
    pub ver: Option<u8>,
    pub len: Option<u16>,
    pub sport: Option<u16>,
    pub phash: Option<u32>,
}

impl UdpRule {
    pub fn exact(fp: &UdpFingerprint) -> Self {
        UdpRule {
            proto: Some(fp.proto),
            ver: Some(fp.ver),
            len: Some(fp.len),
            sport: Some(fp.sport),
            phash: Some(fp.phash),
        }
    }

    #[inline]
    pub fn matches(&self, fp: &UdpFingerprint) -> bool {
        self.proto.is_none_or(|v| v == fp.proto)
            && self.ver.is_none_or(|v| v == fp.ver)
            && self.len.is_none_or(|v| v == fp.len)
            && self.sport.is_none_or(|v| v == fp.sport)
            && self.phash.is_none_or(|v| v == fp.phash)
    }
}

impl fmt::Display for UdpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_wild(&self.proto, f, |p, f| match proto_name(*p) {
            Some(n) => f.write_str(n),
            None => write!(f, "{p}"),
        })?;
        f.write_str(":")?;
        fmt_wild(&self.ver, f, |v, f| write!(f, "{v}"))?;
        f.write_str(":")?;
        fmt_wild(&self.len, f, |v, f| write!(f, "{v}"))?;
        f.write_str(":")?;
        fmt_wild(&self.sport, f, |v, f| write!(f, "{v}"))?;
        f.write_str(":")?;
        fmt_wild(&self.phash, f, |v, f| write!(f, "{v:08x}"))
    }
}

impl FromStr for UdpRule {
    type Err = FpParseError;

    fn from_str(s: &str) -> Result<Self, FpParseError> {
        let fields: Vec<&str> = s.trim().split(':').collect();
        if fields.len() != 5 {
            return err(
                "fingerprint",
                format!(
                    "expected 5 colon-separated fields (proto:ver:len:sport:phash), found {}",
                    fields.len()
                ),
            );
        }
        Ok(UdpRule {
            proto: wild(fields[0], parse_proto)?,
            ver: wild(fields[1], |s| num("ver", s))?,
            len: wild(fields[2], |s| num("len", s))?,
            sport: wild(fields[3], |s| num("sport", s))?,
            phash: wild(fields[4], |s| {
                u32::from_str_radix(s, 16).or_else(|_| err("phash", format!("`{s}` is not 8 hex digits")))
            })?,
        })
    }
}

impl FromStr for UdpFingerprint {
    type Err = FpParseError;

    fn from_str(s: &str) -> Result<Self, FpParseError> {
        let r: UdpRule = s.parse()?;
        let (Some(proto), Some(ver), Some(len), Some(sport), Some(phash)) = (r.proto, r.ver, r.len, r.sport, r.phash)
        else {
            return err("fingerprint", "an exact fingerprint has no `*`");
        };
        Ok(UdpFingerprint {
            proto,
            ver,
            len,
            sport,
            phash,
        })
    }
}

/// Dynamic signature rules (exact fingerprints), activated during an attack
/// from heavy hitters and expired by the control side.
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    pub tcp: HashSet<TcpFingerprint, ahash::RandomState>,
    pub udp: HashSet<UdpFingerprint, ahash::RandomState>,
}

impl Signatures {
    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = "4:64:0:1460:64240,7:mss,sok,ts,nop,ws:df,id+";

    #[test]
    fn exact_fingerprint_round_trips() {
        let fp: TcpFingerprint = LINUX.parse().unwrap();
        assert_eq!(fp.to_string(), LINUX);
        assert_eq!(fp.mss, Some(1460));
        assert_eq!(fp.layout.as_slice(), &[opt::MSS, opt::SOK, opt::TS, opt::NOP, opt::WS]);
        assert_eq!(fp.quirks, quirk::DF | quirk::ID_PLUS);
        assert!(TcpRule::exact(&fp).matches(&fp));
        let no_opts: TcpFingerprint = "4:64:0:-:512,-::".parse().unwrap();
        assert_eq!(no_opts.to_string(), "4:64:0:-:512,-::");
        assert_eq!(no_opts.layout.len, 0);
    }

    #[test]
    fn wildcards_and_mss_multiples() {
        let fp: TcpFingerprint = "4:64:0:1460:29200,7:mss,sok,ts,nop,ws:df,id+".parse().unwrap();
        let r: TcpRule = "4:64:*:*:mss*20,*:mss,sok,ts,nop,ws:*".parse().unwrap();
        assert!(r.matches(&fp));
        let r: TcpRule = "*:*:*:*:mss*10,*:*:*".parse().unwrap();
        assert!(!r.matches(&fp));
        let r: TcpRule = "*:255:*:*:*,*:*:*".parse().unwrap();
        assert!(!r.matches(&fp));
        assert_eq!(r.to_string(), "*:255:*:*:*,*:*:*");
    }

    #[test]
    fn bad_text_names_the_field() {
        assert_eq!("4:64:0".parse::<TcpRule>().unwrap_err().field, "fingerprint");
        assert_eq!("5:64:0:1460:1,1:mss:".parse::<TcpRule>().unwrap_err().field, "ver");
        assert_eq!("4:x:0:1460:1,1:mss:".parse::<TcpRule>().unwrap_err().field, "ittl");
        assert_eq!(
            "4:64:0:1460:1,1:mss,zz:".parse::<TcpRule>().unwrap_err().field,
            "olayout"
        );
        assert_eq!(
            "4:64:0:1460:1,1:mss:weird".parse::<TcpRule>().unwrap_err().field,
            "quirks"
        );
        assert_eq!(
            "4:64:0:1460:11:mss:".parse::<TcpRule>().unwrap_err().field,
            "wsize,scale"
        );
        assert_eq!(
            "4:64:0:*:1,1:mss:".parse::<TcpFingerprint>().unwrap_err().field,
            "fingerprint"
        );
        assert_eq!("udp:4:1:2:zz".parse::<UdpRule>().unwrap_err().field, "phash");
    }

    #[test]
    fn udp_round_trip_and_match() {
        let fp = UdpFingerprint {
            proto: 17,
            ver: 4,
            len: 468,
            sport: 123,
            phash: payload_hash(b"\x17\x00\x03\x2a"),
        };
        let s = fp.to_string();
        assert!(s.starts_with("udp:4:468:123:"));
        assert_eq!(s.parse::<UdpFingerprint>().unwrap(), fp);
        let r: UdpRule = "udp:*:*:123:*".parse().unwrap();
        assert!(r.matches(&fp));
        assert!(!"udp:*:*:53:*".parse::<UdpRule>().unwrap().matches(&fp));
        assert_eq!("47:6:0:0:00000000".parse::<UdpFingerprint>().unwrap().proto, 47);
    }

    #[test]
    fn payload_hash_is_fnv1a_of_prefix() {
        // FNV-1a 32 test vector: "a" -> 0xe40c292c.
        assert_eq!(payload_hash(b"a"), 0xe40c_292c);
        assert_eq!(payload_hash(&[7; 40]), payload_hash(&[7; PAYLOAD_PREFIX]));
    }

    #[test]
    fn initial_ttl_buckets() {
        assert_eq!(initial_ttl(57), 64);
        assert_eq!(initial_ttl(64), 64);
        assert_eq!(initial_ttl(113), 128);
        assert_eq!(initial_ttl(250), 255);
        assert_eq!(initial_ttl(30), 32);
    }
}
