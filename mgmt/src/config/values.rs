//! Typed values of the config file that are written as strings: port specs
//! (`tcp/8000-8080`), MAC addresses, interface addresses (`10.0.0.1/24`),
//! ACL prefixes, hex byte strings, fingerprint rules.
//!
//! Contract: each type parses with `FromStr` and deserializes through it
//! (`#[serde(try_from = "String")]`), so a bad value is refused while the
//! file is read, with an error that quotes the value and says what is wrong;
//! the caller's span-to-key mapping adds the key path and line. Each type
//! prints back in the form it parses (`Display`), which is also how it
//! serializes, so a config written back reads the same.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Implements `TryFrom<String>` (through `FromStr`) and `From<T> for String`
/// (through `Display`), which serde's `try_from`/`into` attributes need.
macro_rules! string_conversions {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    };
}

/// The protocol of an allowed-port entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// One entry of `allow`, `allow_src_ports` or a payload rule's `port`:
/// `tcp/80`, `udp/8000-8080` (inclusive range) or `icmp` (no port; ICMP and
/// ICMPv6 by the policy's type allowlist). For ICMP `lo == hi == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortSpec {
    pub proto: Proto,
    pub lo: u16,
    pub hi: u16,
}

impl PortSpec {
    /// A single port (not a range, not ICMP)?
    pub fn single(&self) -> Option<u16> {
        (self.proto != Proto::Icmp && self.lo == self.hi).then_some(self.lo)
    }

    /// Does this entry cover `port` of `proto`?
    pub fn covers(&self, proto: Proto, port: u16) -> bool {
        self.proto == proto && (proto == Proto::Icmp || (self.lo..=self.hi).contains(&port))
    }
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let why = |why: &str| format!("\"{s}\": {why}");
        let bad = |w: &str| Err(why(w));
        let (proto, ports) = match s.split_once('/') {
            Some((p, rest)) => (p, Some(rest)),
            None => (s, None),
        };
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            other => return bad(&format!("unknown protocol `{other}` (expected tcp, udp or icmp)")),
        };
        let Some(ports) = ports else {
            if proto == Proto::Icmp {
                return Ok(PortSpec { proto, lo: 0, hi: 0 });
            }
            return bad("missing port (e.g. tcp/80 or udp/8000-8080)");
        };
        if proto == Proto::Icmp {
            return bad("icmp takes no port");
        }
        let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
        let lo = parse_port(lo).map_err(|e| why(&e))?;
        let hi = parse_port(hi).map_err(|e| why(&e))?;
        if lo > hi {
            return bad(&format!("range is backwards ({lo} > {hi})"));
        }
        Ok(PortSpec { proto, lo, hi })
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    // Parse wide first so that 70000 is reported as out of range rather
    // than as "not a number".
    let n: u64 = s.parse().map_err(|_| format!("`{s}` is not a port number"))?;
    match u16::try_from(n) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err("port out of range 1..=65535".to_string()),
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Proto::Icmp => f.write_str("icmp"),
            Proto::Tcp | Proto::Udp => {
                let p = if self.proto == Proto::Tcp { "tcp" } else { "udp" };
                if self.lo == self.hi {
                    write!(f, "{p}/{}", self.lo)
                } else {
                    write!(f, "{p}/{}-{}", self.lo, self.hi)
                }
            }
        }
    }
}
string_conversions!(PortSpec);

/// An Ethernet address, `02:00:00:00:00:01`. Only unicast, non-zero
/// addresses are accepted: every MAC in the config is a source or a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut mac {
            let part = parts.next().filter(|p| p.len() == 2);
            *b = part
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("\"{s}\": not a MAC address (six hex octets separated by colons)"))?;
        }
        if parts.next().is_some() {
            return Err(format!(
                "\"{s}\": not a MAC address (six hex octets separated by colons)"
            ));
        }
        if mac[0] & 1 != 0 {
            return Err(format!("\"{s}\": multicast MAC address"));
        }
        if mac == [0; 6] {
            return Err(format!("\"{s}\": all-zero MAC address"));
        }
        Ok(Mac(mac))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}
string_conversions!(Mac);

/// The locally administered unicast MAC of port `index` when none is
/// configured and the backend has no interface to read one from:
/// `02:00:00:00:00:01` for port 0, `..:02` for port 1 (the `02` first octet
/// sets the locally administered bit, IEEE 802 §8.2.2).
pub fn mac_default(index: u8) -> [u8; 6] {
    let n = u16::from(index) + 1;
    let [hi, lo] = n.to_be_bytes();
    [0x02, 0, 0, 0, hi, lo]
}

/// The node's address on a port with the prefix of the attached network,
/// `10.10.0.1/24` (host bits kept: they are the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfaceAddr(pub IpNet);

impl IfaceAddr {
    /// The node's address.
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }
    /// Is `ip` on the attached network?
    pub fn on_link(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl FromStr for IfaceAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if !s.contains('/') {
            return Err(format!(
                "\"{s}\": missing /prefix (write address/prefix, e.g. 10.10.0.1/24)"
            ));
        }
        s.parse::<IpNet>()
            .map(IfaceAddr)
            .map_err(|_| format!("\"{s}\": not an address/prefix (e.g. 10.10.0.1/24)"))
    }
}

impl fmt::Display for IfaceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
string_conversions!(IfaceAddr);

/// An ACL prefix, `192.0.2.0/24` or `2001:db8:bad::/48`; a bare address is
/// a host prefix (/32, /128). Host bits must be clear: `192.0.2.7/24` is
/// refused rather than silently widened, since it usually hides a typo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr(pub IpNet);

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let net = if s.contains('/') {
            s.parse::<IpNet>().ok()
        } else {
            s.parse::<IpAddr>().ok().map(IpNet::from)
        };
        let net = net.ok_or_else(|| format!("\"{s}\": not an address or prefix (e.g. 192.0.2.0/24)"))?;
        if net.trunc() != net {
            return Err(format!("\"{s}\": host bits set (did you mean {}?)", net.trunc()));
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
string_conversions!(Cidr);

/// Bytes written as hex, `47414d45` (an optional `0x` prefix is allowed).
/// Length limits depend on the use and are checked by validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HexBytes(pub Vec<u8>);

impl FromStr for HexBytes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        hex::decode(digits).map(HexBytes).map_err(|e| match e {
            hex::FromHexError::OddLength => format!("\"{s}\": not hex (odd number of digits)"),
            _ => format!("\"{s}\": not hex"),
        })
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}
string_conversions!(HexBytes);

/// A TCP SYN fingerprint deny rule in [`classifier::fingerprint`]'s text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TcpRuleText(pub classifier::fingerprint::TcpRule);

/// A UDP/other fingerprint deny rule in [`classifier::fingerprint`]'s text
/// form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UdpRuleText(pub classifier::fingerprint::UdpRule);

macro_rules! rule_text {
    ($t:ident) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                // The parser's error names its own field (`ittl`, `olayout`, ...).
                s.parse().map($t).map_err(|e| format!("\"{s}\": {e}"))
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        string_conversions!($t);
    };
}
rule_text!(TcpRuleText);
rule_text!(UdpRuleText);

/// serde for [`FragPolicy`]: `"drop"` | `"allow"`.
pub(super) mod frag_policy {
    use classifier::policy::FragPolicy;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &FragPolicy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match v {
            FragPolicy::Drop => "drop",
            FragPolicy::Allow => "allow",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FragPolicy, D::Error> {
        match String::deserialize(d)?.as_str() {
            "drop" => Ok(FragPolicy::Drop),
            "allow" => Ok(FragPolicy::Allow),
            other => Err(serde::de::Error::custom(format!(
                "unknown fragment policy `{other}`, expected `drop` or `allow`"
            ))),
        }
    }
}

/// serde for [`SynAuth`] by its names (`challenge-ack`, ...).
pub(super) mod syn_auth {
    use classifier::policy::SynAuth;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &SynAuth, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SynAuth, D::Error> {
        let s = String::deserialize(d)?;
        SynAuth::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown syn_auth `{s}`, expected `challenge-ack`, `cookie-reset`, `http-redirect` or `off`"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_and_print_back() {
        for s in ["tcp/80", "udp/8000-8080", "icmp", "tcp/65535"] {
            assert_eq!(s.parse::<PortSpec>().unwrap().to_string(), s);
        }
        let r: PortSpec = "udp/8000-8080".parse().unwrap();
        assert!(r.covers(Proto::Udp, 8080) && !r.covers(Proto::Tcp, 8000) && !r.covers(Proto::Udp, 7999));
        assert_eq!(r.single(), None);
        assert_eq!("udp/7777".parse::<PortSpec>().unwrap().single(), Some(7777));
    }

    #[test]
    fn bad_port_specs_say_why() {
        let e = |s: &str| s.parse::<PortSpec>().unwrap_err();
        assert_eq!(e("tcp/70000"), "\"tcp/70000\": port out of range 1..=65535");
        assert_eq!(e("tcp/0"), "\"tcp/0\": port out of range 1..=65535");
        assert!(e("tcp/90-80").contains("backwards (90 > 80)"));
        assert!(e("sctp/1").contains("unknown protocol `sctp`"));
        assert!(e("tcp").contains("missing port"));
        assert!(e("icmp/8").contains("icmp takes no port"));
        assert!(e("tcp/x").contains("`x` is not a port number"));
    }

    #[test]
    fn macs() {
        assert_eq!("02:00:00:00:00:fe".parse::<Mac>().unwrap().0, [2, 0, 0, 0, 0, 0xfe]);
        assert_eq!(
            "02:00:00:00:00:FE".parse::<Mac>().unwrap().to_string(),
            "02:00:00:00:00:fe"
        );
        assert!("01:00:5e:00:00:01".parse::<Mac>().unwrap_err().contains("multicast"));
        assert!("00:00:00:00:00:00".parse::<Mac>().unwrap_err().contains("all-zero"));
        for bad in [
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "2:0:0:0:0:1",
            "zz:00:00:00:00:01",
        ] {
            assert!(bad.parse::<Mac>().unwrap_err().contains("not a MAC"), "{bad}");
        }
    }

    #[test]
    fn addresses_and_prefixes() {
        let a: IfaceAddr = "10.10.0.1/24".parse().unwrap();
        assert_eq!(a.addr().to_string(), "10.10.0.1");
        assert!(a.on_link("10.10.0.254".parse().unwrap()) && !a.on_link("10.10.1.1".parse().unwrap()));
        assert!("10.10.0.1"
            .parse::<IfaceAddr>()
            .unwrap_err()
            .contains("missing /prefix"));
        assert!("10.10.0.1/33".parse::<IfaceAddr>().is_err());
        assert_eq!("192.0.2.9".parse::<Cidr>().unwrap().to_string(), "192.0.2.9/32");
        assert_eq!("2001:db8::/32".parse::<Cidr>().unwrap().to_string(), "2001:db8::/32");
        assert!("192.0.2.7/24"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("did you mean 192.0.2.0/24"));
    }

    #[test]
    fn hex_and_rules() {
        assert_eq!("47414d45".parse::<HexBytes>().unwrap().0, b"GAME");
        assert_eq!("0xff".parse::<HexBytes>().unwrap().0, [0xff]);
        assert_eq!("4741zz".parse::<HexBytes>().unwrap_err(), "\"4741zz\": not hex");
        assert!("474".parse::<HexBytes>().unwrap_err().contains("odd"));
        assert!("4:64:0:-:512,-::".parse::<TcpRuleText>().is_ok());
        assert!("4:x:0:-:512,-::"
            .parse::<TcpRuleText>()
            .unwrap_err()
            .contains("field `ittl`"));
        assert!("udp:*:*:19:*".parse::<UdpRuleText>().is_ok());
    }
}
