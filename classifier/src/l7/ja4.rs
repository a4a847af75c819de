//! JA4, the TLS client fingerprint of FoxIO (`technical_details/JA4.md` in
//! github.com/FoxIO-LLC/ja4; JA4 itself is BSD-3-Clause, the other JA4+
//! methods are under another licence and are not implemented here).
//!
//! ```text
//! t13d1516h2_8daaf6152771_e5627efa2ab1
//! │││ │ │ │  │            └ c: sha256("0005,000a,…_0403,0804,…")[..12]
//! │││ │ │ │  └ b: sha256("002f,0035,009c,…")[..12]
//! │││ │ │ └ ALPN: first and last character of the first ALPN value
//! │││ │ └ number of extensions (GREASE not counted, SNI and ALPN counted), ≤ 99
//! │││ └ number of cipher suites (GREASE not counted), ≤ 99
//! ││└ d: an SNI extension was sent, i: none
//! │└ version: highest non-GREASE supported_versions, else legacy_version
//! └ t: TLS over TCP, q: QUIC, d: DTLS
//! ```
//!
//! - Versions: 0x0304 `13`, 0x0303 `12`, 0x0302 `11`, 0x0301 `10`, 0x0300
//!   `s3`, 0x0002 `s2`, 0xfeff `d1`, 0xfefd `d2`, 0xfefc `d3`, others `00`.
//!   A `supported_versions` with GREASE only falls back to `legacy_version`.
//! - ALPN: `00` without the extension or with an empty first value; when the
//!   first and last bytes are both ASCII alphanumeric, those two characters
//!   (one byte counts as both); otherwise the first and last characters of
//!   the value's lower-case hex (`0x30 0xab` → `3b`).
//! - b: the non-GREASE cipher suites sorted, each as 4 lower-case hex
//!   digits, comma-separated, SHA-256, first 12 hex digits; `000000000000`
//!   when there are none.
//! - c: the non-GREASE extension types without SNI (0x0000) and ALPN
//!   (0x0010), sorted, comma-separated; then, if the hello has signature
//!   algorithms, `_` and those (GREASE removed) in wire order; hashed as b;
//!   `000000000000` when the sorted extension list is empty.
//!
//! The fingerprint is built on the stack: the cipher and extension lists are
//! copied into fixed arrays of [`MAX_VALUES`] entries for sorting, and
//! SHA-256 is fed value by value. A hello with more values than that (no
//! real client comes near: scanners that offer every cipher send ~370) gets
//! [`Ja4Error::TooManyValues`] rather than a wrong fingerprint.

use core::fmt;

use sha2::{Digest, Sha256};

use super::tls::{ext, is_grease, ClientHello};

/// Length of a JA4 string: 10 + 1 + 12 + 1 + 12.
pub const JA4_LEN: usize = 36;
/// Most cipher suites, and most extensions, a fingerprint is computed for.
pub const MAX_VALUES: usize = 512;

/// The transport the hello came over (the first character).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TLS over TCP: `t`.
    Tcp,
    /// QUIC: `q`.
    Quic,
    /// DTLS: `d`.
    Dtls,
}

/// A JA4 fingerprint, ASCII, fixed size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ja4([u8; JA4_LEN]);

impl Ja4 {
    pub fn as_bytes(&self) -> &[u8; JA4_LEN] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into a Ja4 (hex digits, digits, `_`,
        // ASCII alphanumerics), and `parse` checks the same.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// Reads a fingerprint as written in config (`t13d1516h2_8daaf6152771_…`):
    /// 36 ASCII bytes, `_` at 10 and 23, lower-case hex in the hashes.
    pub fn parse(s: &str) -> Option<Ja4> {
        let b: [u8; JA4_LEN] = s.as_bytes().try_into().ok()?;
        let hex = |r: core::ops::Range<usize>| b[r].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        let ok = b[..10].iter().all(u8::is_ascii_alphanumeric)
            && b[10] == b'_'
            && b[23] == b'_'
            && hex(11..23)
            && hex(24..36);
        ok.then_some(Ja4(b))
    }
}

impl fmt::Display for Ja4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ja4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ja4({})", self.as_str())
    }
}

/// Why no fingerprint was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ja4Error {
    /// More than [`MAX_VALUES`] non-GREASE cipher suites or extensions.
    TooManyValues,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The two lower-case hex digits of each byte.
const HEX2: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

fn version_code(v: u16) -> [u8; 2] {
    match v {
        0x0304 => *b"13",
        0x0303 => *b"12",
        0x0302 => *b"11",
        0x0301 => *b"10",
        0x0300 => *b"s3",
        0x0002 => *b"s2",
        0xfeff => *b"d1",
        0xfefd => *b"d2",
        0xfefc => *b"d3",
        _ => *b"00",
    }
}

/// Two decimal digits of `min(n, 99)`.
fn count2(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// The ALPN characters of the first ALPN value (module docs).
pub fn alpn_chars(first: Option<&[u8]>) -> [u8; 2] {
    let Some((&a, &z)) = first.and_then(|v| Some((v.first()?, v.last()?))) else {
        return *b"00";
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        [a, z]
    } else {
        [HEX[usize::from(a >> 4)], HEX[usize::from(z & 0xf)]]
    }
}

/// A comma-separated list of 4-digit lower-case hex values, fed to SHA-256
/// through a stack buffer (one `update` per ~60 values, not per value).
struct HexList {
    h: Sha256,
    buf: [u8; 320],
    n: usize,
    first: bool,
}

impl HexList {
    fn new() -> Self {
        HexList {
            h: Sha256::new(),
            buf: [0; 320],
            n: 0,
            first: true,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.n + bytes.len() > self.buf.len() {
            self.h.update(&self.buf[..self.n]);
            self.n = 0;
        }
        self.buf[self.n..self.n + bytes.len()].copy_from_slice(bytes);
        self.n += bytes.len();
    }

    fn push(&mut self, v: u16) {
        let [hi, lo] = v.to_be_bytes();
        let (h, l) = (HEX2[usize::from(hi)], HEX2[usize::from(lo)]);
        let d = [b',', h[0], h[1], l[0], l[1]];
        self.write(if self.first { &d[1..] } else { &d });
        self.first = false;
    }

    /// `_`, then a new list.
    fn separator(&mut self) {
        self.write(b"_");
        self.first = true;
    }

    /// The first 12 hex digits of the digest.
    fn hash12(mut self) -> [u8; 12] {
        self.h.update(&self.buf[..self.n]);
        let d = self.h.finalize();
        let mut out = [0u8; 12];
        for (i, b) in d.iter().take(6).enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }
}

/// Copies the values `it` yields into `buf`; the count, or an error past
/// [`MAX_VALUES`].
fn collect(it: impl Iterator<Item = u16>, buf: &mut [u16; MAX_VALUES]) -> Result<usize, Ja4Error> {
    let mut n = 0;
    for v in it {
        *buf.get_mut(n).ok_or(Ja4Error::TooManyValues)? = v;
        n += 1;
    }
    Ok(n)
}

/// Computes the JA4 fingerprint of `hello` sent over `transport`.
pub fn ja4(hello: &ClientHello<'_>, transport: Transport) -> Result<Ja4, Ja4Error> {
    let mut ciphers = [0u16; MAX_VALUES];
    let nc = collect(hello.cipher_suites.iter().filter(|&v| !is_grease(v)), &mut ciphers)?;
    let mut exts = [0u16; MAX_VALUES];
    let ne = collect(hello.extensions.types().filter(|&v| !is_grease(v)), &mut exts)?;

    let mut out = [0u8; JA4_LEN];
    out[0] = match transport {
        Transport::Tcp => b't',
        Transport::Quic => b'q',
        Transport::Dtls => b'd',
    };
    out[1..3].copy_from_slice(&version_code(hello.max_version()));
    out[3] = if hello.extensions.contains(ext::SERVER_NAME) {
        b'd'
    } else {
        b'i'
    };
    out[4..6].copy_from_slice(&count2(nc));
    out[6..8].copy_from_slice(&count2(ne));
    out[8..10].copy_from_slice(&alpn_chars(hello.alpn.and_then(|l| l.first())));
    out[10] = b'_';
    out[23] = b'_';

    let ciphers = &mut ciphers[..nc];
    ciphers.sort_unstable();
    out[11..23].copy_from_slice(&if ciphers.is_empty() {
        *b"000000000000"
    } else {
        let mut h = HexList::new();
        ciphers.iter().for_each(|&c| h.push(c));
        h.hash12()
    });

    let exts = &mut exts[..ne];
    exts.sort_unstable();
    let mut listed = exts
        .iter()
        .copied()
        .filter(|&e| e != ext::SERVER_NAME && e != ext::ALPN)
        .peekable();
    out[24..36].copy_from_slice(&if listed.peek().is_none() {
        *b"000000000000"
    } else {
        let mut h = HexList::new();
        listed.for_each(|e| h.push(e));
        let sigs = hello.signature_algorithms.unwrap_or_default();
        for (i, s) in sigs.iter().filter(|&s| !is_grease(s)).enumerate() {
            if i == 0 {
                h.separator();
            }
            h.push(s);
        }
        h.hash12()
    });
    Ok(Ja4(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::tls::{parse_client_hello, TlsParse, MAX_HELLO_LEN};

    /// Builds a TLS record holding a ClientHello with these values.
    fn build(versions: Option<&[u16]>, ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend([0u8; 32]);
        body.push(0);
        body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
        ciphers.iter().for_each(|c| body.extend(c.to_be_bytes()));
        body.extend([1, 0]);
        let mut block = Vec::new();
        let mut all = exts.to_vec();
        if let Some(v) = versions {
            let mut d = vec![(v.len() * 2) as u8];
            v.iter().for_each(|x| d.extend(x.to_be_bytes()));
            all.push((ext::SUPPORTED_VERSIONS, d));
        }
        for (t, d) in &all {
            block.extend(t.to_be_bytes());
            block.extend((d.len() as u16).to_be_bytes());
            block.extend(d);
        }
        body.extend((block.len() as u16).to_be_bytes());
        body.extend(block);
        let mut rec = vec![22, 3, 1];
        rec.extend(((body.len() + 4) as u16).to_be_bytes());
        rec.extend([1, 0]);
        rec.extend((body.len() as u16).to_be_bytes());
        rec.extend(body);
        rec
    }

    fn alpn(names: &[&[u8]]) -> (u16, Vec<u8>) {
        let mut list = Vec::new();
        names.iter().for_each(|n| {
            list.push(n.len() as u8);
            list.extend(*n);
        });
        let mut d = (list.len() as u16).to_be_bytes().to_vec();
        d.extend(list);
        (ext::ALPN, d)
    }

    fn sigs(v: &[u16]) -> (u16, Vec<u8>) {
        let mut d = ((v.len() * 2) as u16).to_be_bytes().to_vec();
        v.iter().for_each(|x| d.extend(x.to_be_bytes()));
        (ext::SIGNATURE_ALGORITHMS, d)
    }

    fn sni(host: &[u8]) -> (u16, Vec<u8>) {
        let mut d = ((host.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend((host.len() as u16).to_be_bytes());
        d.extend(host);
        (ext::SERVER_NAME, d)
    }

    fn fp(rec: &[u8]) -> String {
        let mut s = vec![0u8; MAX_HELLO_LEN];
        match parse_client_hello(rec, &mut s) {
            TlsParse::Hello(h) => ja4(&h, Transport::Tcp).unwrap().to_string(),
            other => panic!("{other:?}"),
        }
    }

    /// The worked example of FoxIO's JA4.md: 15 ciphers, 16 extensions (in
    /// the spec's order), SNI, ALPN h2, 8 signature algorithms, TLS 1.3;
    /// plus GREASE values everywhere, which must change nothing.
    #[test]
    fn foxio_worked_example() {
        let ciphers = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
            0x002f, 0x0035,
        ];
        let sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
        let order = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01,
            0x000b, 0x000a, 0x0015,
        ];
        let mut exts: Vec<(u16, Vec<u8>)> = order
            .iter()
            .filter(|&&t| t != ext::SUPPORTED_VERSIONS)
            .map(|&t| match t {
                0x0000 => sni(b"example.com"),
                0x0010 => alpn(&[b"h2", b"http/1.1"]),
                0x000d => sigs(&sig),
                t => (t, vec![]),
            })
            .collect();
        let plain = build(Some(&[0x0304, 0x0303]), &ciphers, &exts);
        // supported_versions was appended last; JA4 sorts, so order is moot.
        assert_eq!(fp(&plain), "t13d1516h2_8daaf6152771_e5627efa2ab1");

        let mut greased_ciphers = vec![0x4a4a];
        greased_ciphers.extend(ciphers);
        exts.insert(0, (0x2a2a, vec![]));
        exts.push((0xfafa, vec![0]));
        let i = exts.iter().position(|e| e.0 == ext::SIGNATURE_ALGORITHMS).unwrap();
        exts[i] = sigs(&[0x0403, 0x0a0a, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]);
        let greased = build(Some(&[0x7a7a, 0x0304, 0x0303]), &greased_ciphers, &exts);
        assert_eq!(fp(&greased), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    }

    /// The spec's example without signature algorithms:
    /// `0005,…,ff01` = 6d807ffa2a79.
    #[test]
    fn no_signature_algorithms() {
        let types = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x0005, 0x0023, 0x0012, 0xff01, 0x000b, 0x000a,
            0x0015, 0x000d, 0x002b,
        ];
        let exts: Vec<_> = types
            .iter()
            .filter(|&&t| t != 0x000d && t != 0x002b)
            .map(|&t| match t {
                0x0000 => sni(b"x"),
                0x0010 => alpn(&[b"h2"]),
                t => (t, vec![]),
            })
            .chain([(0x000d_u16, vec![0, 0])])
            .collect();
        // An empty signature_algorithms list: the extension counts, no `_`.
        let rec = build(Some(&[0x0303]), &[0x1301], &exts);
        let got = fp(&rec);
        assert_eq!(&got[..10], "t12d0116h2");
        assert_eq!(&got[24..], "6d807ffa2a79");
    }

    #[test]
    fn edge_cases() {
        // No ciphers after GREASE, no extensions: both hashes zero, no SNI,
        // no ALPN, legacy version.
        let rec = build(None, &[0x0a0a], &[]);
        assert_eq!(fp(&rec), "t12i000000_000000000000_000000000000");
        // Only SNI and ALPN: the sorted list is empty, so c is zero.
        let rec = build(None, &[0x1301], &[sni(b"a"), alpn(&[b"h2"])]);
        assert_eq!(&fp(&rec)[..10], "t12d0102h2");
        assert_eq!(&fp(&rec)[24..], "000000000000");
        // supported_versions with GREASE only: the legacy version.
        let rec = build(Some(&[0x3a3a]), &[0x1301], &[]);
        assert_eq!(&fp(&rec)[..4], "t12i");
        // Unknown versions.
        let rec = build(Some(&[0x0305]), &[0x1301], &[]);
        assert_eq!(&fp(&rec)[..3], "t00");
        // Counts cap at 99.
        let many: Vec<u16> = (1..=150).collect();
        let exts: Vec<_> = (0x100..0x100 + 120).map(|t| (t, vec![])).collect();
        let rec = build(None, &many, &exts);
        assert_eq!(&fp(&rec)[..10], "t12i999900");
    }

    #[test]
    fn too_many_values() {
        let many: Vec<u16> = (1..=(MAX_VALUES as u16 + 1)).collect();
        let rec = build(None, &many, &[]);
        let mut s = vec![0u8; MAX_HELLO_LEN];
        let TlsParse::Hello(h) = parse_client_hello(&rec, &mut s) else {
            panic!()
        };
        assert_eq!(ja4(&h, Transport::Tcp), Err(Ja4Error::TooManyValues));
        let rec = build(None, &many[..MAX_VALUES], &[]);
        assert_eq!(&fp(&rec)[..10], "t12i990000");
    }

    #[test]
    fn alpn_characters() {
        // The spec's examples, and the plain ones.
        for (v, want) in [
            (&b"h2"[..], "h2"),
            (b"http/1.1", "h1"),
            (b"a", "aa"),
            (b"", "00"),
            (&[0xab], "ab"),
            (&[0xab, 0xcd], "ad"),
            (&[0x30, 0xab], "3b"),
            (&[0x30, 0x31, 0xab, 0xcd], "3d"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
        ] {
            assert_eq!(alpn_chars(Some(v)), want.as_bytes(), "{v:02x?}");
        }
        assert_eq!(alpn_chars(None), *b"00");
    }

    #[test]
    fn transports_and_text() {
        let rec = build(Some(&[0x0304]), &[0x1301], &[alpn(&[b"h3"])]);
        let mut s = vec![0u8; MAX_HELLO_LEN];
        let TlsParse::Hello(h) = parse_client_hello(&rec, &mut s) else {
            panic!()
        };
        let q = ja4(&h, Transport::Quic).unwrap();
        assert!(q.as_str().starts_with("q13i0102h3_"));
        assert!(ja4(&h, Transport::Dtls).unwrap().as_str().starts_with('d'));
        assert_eq!(Ja4::parse(q.as_str()), Some(q));
        assert_eq!(
            Ja4::parse("t13d1516h2_8daaf6152771_e5627efa2ab1")
                .unwrap()
                .to_string()
                .len(),
            JA4_LEN
        );
        for bad in [
            "",
            "t13d1516h2_8daaf6152771_e5627efa2ab",
            "t13d1516h2-8daaf6152771_e5627efa2ab1",
            "t13d1516h2_8DAAF6152771_e5627efa2ab1",
        ] {
            assert_eq!(Ja4::parse(bad), None, "{bad}");
        }
    }
}
