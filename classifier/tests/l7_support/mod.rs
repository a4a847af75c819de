//! ClientHellos for the l7 tests and benches: two captured from real stacks
//! (hex files beside this one, made by `tests/l7/ja4_capture.py`), and a
//! Chrome-shaped one built here.
#![allow(dead_code)]

/// curl 7.88.1 (OpenSSL 3.0) to `https://moat.example:PORT/`: 517 bytes.
pub const CURL_SNI_HEX: &str = include_str!("curl-7.88-sni.hex");
/// Its JA4 by PyPI ja4plus 1.4.0 (the interop test recomputes it live).
pub const CURL_SNI_JA4: &str = "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6";
/// Python 3.11's `ssl` (OpenSSL 3.0) with a 253-byte SNI and 40 ALPN
/// values: 2135 bytes, one record, more than one segment.
pub const OPENSSL_PADDED_HEX: &str = include_str!("openssl-3.0-padded-2135.hex");
/// Its JA4 by PyPI ja4plus 1.4.0.
pub const OPENSSL_PADDED_JA4: &str = "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4";

pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn u16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// `len(2) | data`.
fn vec16(data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u16).to_be_bytes().to_vec();
    v.extend(data);
    v
}

/// `len(1) | data`.
fn vec8(data: &[u8]) -> Vec<u8> {
    let mut v = vec![data.len() as u8];
    v.extend(data);
    v
}

/// Filler bytes that look random enough (keys, randoms, the ECH payload).
fn filler(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(151).wrapping_add(seed)).collect()
}

/// The sorted lists and signature algorithms tls.browserleaks.com shows as
/// `ja4_r` for Chrome 143 (Android), whose JA4 it gives as
/// `t13d1516h2_8daaf6152771_d8a2da3f94cd`.
pub const CHROME_JA4: &str = "t13d1516h2_8daaf6152771_d8a2da3f94cd";

/// A ClientHello shaped like Chrome 143's (wire order of its `ja4_ro`, GREASE
/// in ciphers, extensions, groups, versions and key shares, an
/// X25519MLKEM768 key share of 1216 bytes, an ECH extension): ~1.8 KB in one
/// record, which a 1460-byte MSS splits in two segments, a 536-byte one in
/// four.
pub fn chrome_like_hello(sni: &str) -> Vec<u8> {
    let grease = [0x0a0a, 0x3a3a, 0x6a6a, 0xdada];
    let ciphers = [
        grease[0], 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
        0x009d, 0x002f, 0x0035,
    ];
    let host = sni.as_bytes();
    let mut sni_entry = vec![0u8];
    sni_entry.extend(vec16(host));
    let alpn: Vec<u8> = [&b"h2"[..], b"http/1.1"].iter().flat_map(|p| vec8(p)).collect();
    let mut key_share = Vec::new();
    key_share.extend(u16s(&[grease[1]]));
    key_share.extend(vec16(&[0]));
    key_share.extend(u16s(&[0x11ec]));
    key_share.extend(vec16(&filler(1216, 1)));
    key_share.extend(u16s(&[0x001d]));
    key_share.extend(vec16(&filler(32, 2)));
    let mut ech = vec![0u8, 0x00, 0x01, 0x00, 0x01, 0x2a];
    ech.extend(vec16(&filler(32, 3)));
    ech.extend(vec16(&filler(208, 4)));
    let sigs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
    let exts: Vec<(u16, Vec<u8>)> = vec![
        (grease[2], vec![]),
        (0x002d, vec8(&[1])),
        (0x0033, vec16(&key_share)),
        (0x0010, vec16(&alpn)),
        (0xfe0d, ech),
        (0x0017, vec![]),
        (0x44cd, vec16(&vec8(b"h2"))),
        (0x0000, vec16(&sni_entry)),
        (0x000b, vec8(&[0])),
        (0x000a, vec16(&u16s(&[grease[3], 0x11ec, 0x001d, 0x0017, 0x0018]))),
        (0x002b, vec8(&u16s(&[grease[1], 0x0304, 0x0303]))),
        (0xff01, vec![0]),
        (0x0023, vec![]),
        (0x0012, vec![]),
        (0x0005, vec![1, 0, 0, 0, 0]),
        (0x000d, vec16(&u16s(&sigs))),
        (0x001b, vec8(&[0x00, 0x02])),
        (grease[0] ^ 0x1010, vec![0]),
    ];
    hello(0x0303, &filler(32, 5), &filler(32, 6), &ciphers, &exts)
}

/// A one-record ClientHello of these fields (record version 0x0301).
pub fn hello(version: u16, random: &[u8], session_id: &[u8], ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend(random);
    body.extend(vec8(session_id));
    body.extend(vec16(&u16s(ciphers)));
    body.extend(vec8(&[0]));
    let block: Vec<u8> = exts
        .iter()
        .flat_map(|(t, d)| {
            let mut e = t.to_be_bytes().to_vec();
            e.extend(vec16(d));
            e
        })
        .collect();
    body.extend(vec16(&block));
    let mut msg = vec![1, 0];
    msg.extend((body.len() as u16).to_be_bytes());
    msg.extend(body);
    let mut rec = vec![22, 3, 1];
    rec.extend(vec16(&msg));
    rec
}

/// A browser-like HTTP request of about 500 bytes.
pub const BROWSER_REQUEST: &[u8] = b"GET /account/login?next=%2Fhome HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
\r\n";
