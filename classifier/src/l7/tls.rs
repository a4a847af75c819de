//! The TLS ClientHello of a client flow's first bytes (RFC 8446 §4.1.2, and
//! RFC 5246 §7.4.1.2 for TLS 1.0–1.2, whose hellos have the same layout):
//! versions, cipher suites, extensions in order, SNI (RFC 6066 §3), ALPN
//! (RFC 7301 §3.1), signature algorithms (RFC 8446 §4.2.3) and supported
//! versions (RFC 8446 §4.2.1), as input to [`super::ja4`] and to `l7_rules`.
//!
//! ```text
//! record:    type(22) | version(3,x) | length(2) | fragment ...  (RFC 8446 §5.1)
//! handshake: msg_type(1) | length(3) | body ...                  (§4)
//! body:      legacy_version(2) | random(32) | session_id<0..32>
//!            | cipher_suites<2..2^16-2> | compression<1..2^8-1>
//!            | extensions<0..2^16-1>  (each: type(2) | length(2) | data)
//! ```
//!
//! A ClientHello may span several records (fragmentation, §5.1) as well as
//! several TCP segments. [`parse_client_hello`] takes the flow's bytes from
//! the first record on: when the hello lies in one record (the usual case,
//! up to 16 KiB), every field borrows from those bytes; when it spans
//! records, the fragments are copied into the caller's `scratch` (one
//! per-worker buffer) and the fields borrow from it. Nothing allocates.
//!
//! Outcomes: [`TlsParse::Incomplete`] (a prefix of a handshake record
//! stream; `need` is a lower bound of the total length), [`TlsParse::NotTls`]
//! (the first bytes are not a TLS handshake record), [`TlsParse::Malformed`]
//! (a handshake record stream that is not a well-formed ClientHello, with
//! the reason) and [`TlsParse::Hello`].
//!
//! Every length field is checked against its container before use, and the
//! extensions must fill their block exactly; SNI, ALPN, signature algorithms
//! and supported versions must be well formed inside (a server would refuse
//! them too); other extensions are kept opaque. Of an extension sent twice
//! (which RFC 8446 §4.2 forbids), the first is interpreted and both are
//! listed. GREASE values (RFC 8701) are kept as sent; [`is_grease`] names them.

/// Record content type `handshake` (RFC 8446 §5.1).
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type `client_hello` (RFC 8446 §4).
pub const CLIENT_HELLO: u8 = 1;
/// Record header length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record fragment: 2^14 bytes of plaintext (RFC 8446 §5.1).
pub const MAX_RECORD_LEN: usize = 1 << 14;
/// Largest ClientHello accepted when it spans records (the scratch buffer a
/// caller should give): one full record's worth. Real hellos are below 2 KiB
/// (Chrome with a post-quantum key share is about 1.8 KiB).
pub const MAX_HELLO_LEN: usize = MAX_RECORD_LEN;

/// Extension types this module interprets (IANA TLS ExtensionType Values).
pub mod ext {
    pub const SERVER_NAME: u16 = 0x0000;
    pub const SIGNATURE_ALGORITHMS: u16 = 0x000d;
    pub const ALPN: u16 = 0x0010;
    pub const PADDING: u16 = 0x0015;
    pub const SUPPORTED_VERSIONS: u16 = 0x002b;
}

/// Whether `v` is a GREASE value (RFC 8701 §2): `0x?A?A` with both bytes
/// equal (`0x0a0a`, `0x1a1a`, … `0xfafa`), in cipher suites, extension types,
/// supported versions, signature algorithms, groups.
#[inline]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Why bytes that start as a TLS handshake record are not a ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsError {
    /// A record with length 0 (RFC 8446 §5.1 forbids empty handshake
    /// fragments).
    EmptyRecord,
    /// A record longer than 2^14 bytes.
    RecordTooLong,
    /// A record of another content type or version inside the hello.
    Interleaved,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// The hello spans records and is longer than the scratch buffer.
    TooLong,
    /// A length inside the hello runs past its container.
    Truncated,
    /// Bytes left over after the extensions.
    Trailing,
    /// A session id longer than 32 bytes.
    SessionId,
    /// Cipher suites of odd or zero length.
    CipherSuites,
    /// No compression method.
    Compression,
    /// A malformed extension this module interprets (its type).
    Extension(u16),
}

/// What [`parse_client_hello`] made of a flow's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsParse<'a> {
    /// A prefix of a handshake record stream; at least `need` bytes in all
    /// are needed before anything more can be said.
    Incomplete {
        need: usize,
    },
    /// Not a TLS handshake record.
    NotTls,
    Malformed(TlsError),
    Hello(ClientHello<'a>),
}

/// A list of 16-bit values on the wire (big-endian pairs), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct U16List<'a>(&'a [u8]);

impl<'a> U16List<'a> {
    /// `None` for an odd length.
    fn new(b: &'a [u8]) -> Option<Self> {
        b.len().is_multiple_of(2).then_some(U16List(b))
    }

    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// One extension: its type and data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    pub typ: u16,
    pub data: &'a [u8],
}

/// The extensions block, validated: iterating yields every extension in
/// wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Extensions<'a>(&'a [u8]);

impl<'a> Extensions<'a> {
    pub fn iter(&self) -> ExtensionIter<'a> {
        ExtensionIter(self.0)
    }

    /// Whether an extension of type `typ` was sent.
    pub fn contains(&self, typ: u16) -> bool {
        self.iter().any(|e| e.typ == typ)
    }

    /// The types in wire order.
    pub fn types(&self) -> impl Iterator<Item = u16> + 'a {
        self.iter().map(|e| e.typ)
    }

    /// The wire bytes of the block (without its length).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Iterator over a validated extensions block; stops at the first extension
/// that does not fit (none, after validation).
#[derive(Clone, Debug)]
pub struct ExtensionIter<'a>(&'a [u8]);

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        let (typ, data, rest) = split_extension(self.0)?;
        self.0 = rest;
        Some(Extension { typ, data })
    }
}

/// `type(2) | length(2) | data` at the front of `b`, and what follows.
fn split_extension(b: &[u8]) -> Option<(u16, &[u8], &[u8])> {
    let (typ, rest) = read_u16(b)?;
    let (data, rest) = read_vec16(rest)?;
    Some((typ, data, rest))
}

/// The ALPN `ProtocolNameList` (RFC 7301 §3.1), validated: iterating yields
/// each protocol name in order (`b"h2"`, `b"http/1.1"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AlpnList<'a>(&'a [u8]);

impl<'a> AlpnList<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut b = self.0;
        core::iter::from_fn(move || {
            let (name, rest) = read_vec8(b)?;
            b = rest;
            Some(name)
        })
    }

    /// The first protocol (what JA4 looks at).
    pub fn first(&self) -> Option<&'a [u8]> {
        self.iter().next()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A parsed ClientHello. Every slice borrows from the parsed bytes (or the
/// scratch buffer when the hello spanned records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The handshake's `legacy_version` (0x0303 in TLS 1.3 hellos).
    pub legacy_version: u16,
    /// The version of the first record (usually 0x0301 or 0x0303); 0 when the
    /// hello was parsed from a bare handshake message.
    pub record_version: u16,
    pub random: &'a [u8],
    pub session_id: &'a [u8],
    pub cipher_suites: U16List<'a>,
    pub compression_methods: &'a [u8],
    pub extensions: Extensions<'a>,
    /// The first `host_name` of the `server_name` extension.
    pub sni: Option<&'a [u8]>,
    pub alpn: Option<AlpnList<'a>>,
    pub signature_algorithms: Option<U16List<'a>>,
    pub supported_versions: Option<U16List<'a>>,
}

impl ClientHello<'_> {
    /// The highest version offered: the highest non-GREASE entry of
    /// `supported_versions` when it has one, else `legacy_version` (JA4's
    /// rule; RFC 8446 §4.2.1 makes a server do the same).
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .and_then(|l| l.iter().filter(|&v| !is_grease(v)).max())
            .unwrap_or(self.legacy_version)
    }
}

fn read_u8(b: &[u8]) -> Option<(u8, &[u8])> {
    let (&v, rest) = b.split_first()?;
    Some((v, rest))
}

fn read_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let v = b.get(..2)?;
    Some((u16::from_be_bytes([v[0], v[1]]), &b[2..]))
}

fn take(b: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (b.len() >= n).then(|| b.split_at(n))
}

/// `opaque x<0..2^8-1>`: one length byte, then that many bytes.
fn read_vec8(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, rest) = read_u8(b)?;
    take(rest, usize::from(n))
}

/// `opaque x<0..2^16-1>`: two length bytes, then that many bytes.
fn read_vec16(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, rest) = read_u16(b)?;
    take(rest, usize::from(n))
}

/// Why gathering a hello stopped short: the outcomes of [`TlsParse`] that
/// carry no hello (small, unlike `TlsParse`).
#[derive(Clone, Copy)]
enum Stop {
    Incomplete(usize),
    NotTls,
    Malformed(TlsError),
}

impl From<Stop> for TlsParse<'_> {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Incomplete(need) => TlsParse::Incomplete { need },
            Stop::NotTls => TlsParse::NotTls,
            Stop::Malformed(e) => TlsParse::Malformed(e),
        }
    }
}

/// Checks the record header at `data[pos..]`: `Ok(Some(len))` for a
/// handshake record, `Ok(None)` when the header is cut, `Err` for a bad one.
/// `first` decides whether a bad type or version means "not TLS at all".
fn record_header(data: &[u8], pos: usize, first: bool) -> Result<Option<usize>, Stop> {
    let h = data.get(pos..).unwrap_or(&[]);
    let bad = if first {
        Stop::NotTls
    } else {
        Stop::Malformed(TlsError::Interleaved)
    };
    // Content type 22, version major 3, minor 0 (SSL 3.0) to 4.
    if h.first().is_some_and(|&t| t != CONTENT_HANDSHAKE)
        || h.get(1).is_some_and(|&v| v != 3)
        || h.get(2).is_some_and(|&v| v > 4)
    {
        return Err(bad);
    }
    let Some(len) = h.get(3..5) else { return Ok(None) };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if len == 0 {
        return Err(Stop::Malformed(TlsError::EmptyRecord));
    }
    if len > MAX_RECORD_LEN {
        return Err(Stop::Malformed(TlsError::RecordTooLong));
    }
    Ok(Some(len))
}

/// Parses a ClientHello from a flow's first bytes (module docs). `scratch`
/// is used only when the hello spans records; [`MAX_HELLO_LEN`] bytes take
/// any hello this module accepts. Never panics.
pub fn parse_client_hello<'a>(data: &'a [u8], scratch: &'a mut [u8]) -> TlsParse<'a> {
    let rec_len = match record_header(data, 0, true) {
        Ok(Some(len)) => len,
        Ok(None) => {
            return TlsParse::Incomplete {
                need: RECORD_HEADER_LEN,
            }
        }
        Err(e) => return e.into(),
    };
    let record_version = u16::from_be_bytes([data[1], data[2]]);
    let body = &data[RECORD_HEADER_LEN..];
    // The usual case: the whole handshake message inside the first record.
    if rec_len >= 4 {
        if let Some(h) = body.get(..4) {
            if h[0] != CLIENT_HELLO {
                return TlsParse::Malformed(TlsError::NotClientHello);
            }
            let msg_len = 4 + (usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]));
            if msg_len <= rec_len {
                let Some(msg) = body.get(..msg_len) else {
                    return TlsParse::Incomplete {
                        need: RECORD_HEADER_LEN + msg_len,
                    };
                };
                return finish(parse_handshake(msg), record_version);
            }
        }
    }
    match gather(data, rec_len, scratch) {
        Ok(msg) => finish(parse_handshake(msg), record_version),
        Err(e) => e.into(),
    }
}

fn finish(r: Result<ClientHello<'_>, TlsError>, record_version: u16) -> TlsParse<'_> {
    match r {
        Ok(h) => TlsParse::Hello(ClientHello { record_version, ..h }),
        Err(e) => TlsParse::Malformed(e),
    }
}

/// Copies the handshake message's fragments, record after record, into
/// `scratch`; returns the whole message once every byte is there.
fn gather<'s>(data: &[u8], first_len: usize, scratch: &'s mut [u8]) -> Result<&'s [u8], Stop> {
    let mut got = 0usize;
    // Bytes of the message wanted: its 4-byte header until that is read.
    let mut want = 4usize;
    let mut header_read = false;
    let mut pos = 0usize;
    let mut rec_len = first_len;
    loop {
        let body_start = pos + RECORD_HEADER_LEN;
        let body_end = body_start + rec_len;
        let mut i = body_start;
        let avail_end = body_end.min(data.len());
        while i < avail_end {
            let n = (avail_end - i).min(want - got);
            let dst = scratch
                .get_mut(got..got + n)
                .ok_or(Stop::Malformed(TlsError::TooLong))?;
            dst.copy_from_slice(&data[i..i + n]);
            got += n;
            i += n;
            if !header_read && got == 4 {
                if scratch[0] != CLIENT_HELLO {
                    return Err(Stop::Malformed(TlsError::NotClientHello));
                }
                header_read = true;
                want = 4 + (usize::from(scratch[1]) << 16 | usize::from(scratch[2]) << 8 | usize::from(scratch[3]));
                if want > scratch.len() {
                    return Err(Stop::Malformed(TlsError::TooLong));
                }
            }
            if header_read && got == want {
                return Ok(&scratch[..want]);
            }
        }
        if avail_end < body_end {
            return Err(Stop::Incomplete(body_end.min(i + (want - got))));
        }
        pos = body_end;
        rec_len = match record_header(data, pos, false) {
            Ok(Some(len)) => len,
            Ok(None) => return Err(Stop::Incomplete(pos + RECORD_HEADER_LEN)),
            Err(e) => return Err(e),
        };
    }
}

/// Parses one handshake message (`msg_type | length(3) | body`) holding a
/// ClientHello, e.g. from a QUIC CRYPTO frame. The message must be exactly
/// `msg`. `record_version` of the result is 0.
pub fn parse_handshake(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let h = msg.get(..4).ok_or(TlsError::Truncated)?;
    if h[0] != CLIENT_HELLO {
        return Err(TlsError::NotClientHello);
    }
    let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
    let body = &msg[4..];
    match body.len().cmp(&len) {
        core::cmp::Ordering::Less => Err(TlsError::Truncated),
        core::cmp::Ordering::Greater => Err(TlsError::Trailing),
        core::cmp::Ordering::Equal => parse_body(body),
    }
}

/// The ClientHello body (module docs' layout).
fn parse_body(b: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    use TlsError::*;
    let (legacy_version, b) = read_u16(b).ok_or(Truncated)?;
    let (random, b) = take(b, 32).ok_or(Truncated)?;
    let (session_id, b) = read_vec8(b).ok_or(Truncated)?;
    if session_id.len() > 32 {
        return Err(SessionId);
    }
    let (ciphers, b) = read_vec16(b).ok_or(Truncated)?;
    let cipher_suites = U16List::new(ciphers).filter(|l| !l.is_empty()).ok_or(CipherSuites)?;
    let (compression_methods, b) = read_vec8(b).ok_or(Truncated)?;
    if compression_methods.is_empty() {
        return Err(Compression);
    }
    let mut hello = ClientHello {
        legacy_version,
        record_version: 0,
        random,
        session_id,
        cipher_suites,
        compression_methods,
        extensions: Extensions::default(),
        sni: None,
        alpn: None,
        signature_algorithms: None,
        supported_versions: None,
    };
    // TLS 1.0–1.2 hellos may end here (RFC 5246 §7.4.1.2).
    if b.is_empty() {
        return Ok(hello);
    }
    let (block, b) = read_vec16(b).ok_or(Truncated)?;
    if !b.is_empty() {
        return Err(Trailing);
    }
    let mut rest = block;
    while !rest.is_empty() {
        let (typ, data, r) = split_extension(rest).ok_or(Truncated)?;
        rest = r;
        interpret(&mut hello, typ, data)?;
    }
    hello.extensions = Extensions(block);
    Ok(hello)
}

/// Reads the extensions this module interprets (the first of each type).
fn interpret<'a>(h: &mut ClientHello<'a>, typ: u16, data: &'a [u8]) -> Result<(), TlsError> {
    let bad = TlsError::Extension(typ);
    match typ {
        ext::SERVER_NAME if h.sni.is_none() => h.sni = parse_sni(data).ok_or(bad)?,
        ext::ALPN if h.alpn.is_none() => h.alpn = Some(parse_alpn(data).ok_or(bad)?),
        ext::SIGNATURE_ALGORITHMS if h.signature_algorithms.is_none() => {
            let (list, rest) = read_vec16(data).ok_or(bad)?;
            h.signature_algorithms = Some(U16List::new(list).filter(|_| rest.is_empty()).ok_or(bad)?);
        }
        ext::SUPPORTED_VERSIONS if h.supported_versions.is_none() => {
            let (list, rest) = read_vec8(data).ok_or(bad)?;
            h.supported_versions = Some(U16List::new(list).filter(|_| rest.is_empty()).ok_or(bad)?);
        }
        _ => {}
    }
    Ok(())
}

/// `ServerNameList` (RFC 6066 §3): `Some(first host_name)` (`None` inside
/// when the list names no host), `None` when malformed.
fn parse_sni(data: &[u8]) -> Option<Option<&[u8]>> {
    let (mut list, rest) = read_vec16(data)?;
    if !rest.is_empty() {
        return None;
    }
    let mut host = None;
    while !list.is_empty() {
        let (name_type, r) = read_u8(list)?;
        let (name, r) = read_vec16(r)?;
        list = r;
        if name_type == 0 && host.is_none() {
            host = Some(name);
        }
    }
    Some(host)
}

/// `ProtocolNameList` (RFC 7301 §3.1), every entry fitting exactly.
fn parse_alpn(data: &[u8]) -> Option<AlpnList<'_>> {
    let (list, rest) = read_vec16(data)?;
    if !rest.is_empty() {
        return None;
    }
    let mut b = list;
    while !b.is_empty() {
        b = read_vec8(b)?.1;
    }
    Some(AlpnList(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal TLS 1.2 hello: no session id, two ciphers, null compression,
    /// SNI `a.b`, ALPN `h2`, two signature algorithms.
    fn small_hello() -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend([7u8; 32]);
        body.extend([0x00, 0x00, 0x04, 0xc0, 0x2f, 0x00, 0xff, 0x01, 0x00]);
        let exts: Vec<u8> = [
            &[0x00, 0x00, 0x00, 0x08, 0x00, 0x06, 0x00, 0x00, 0x03, b'a', b'.', b'b'][..],
            &[0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2'],
            &[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04],
        ]
        .concat();
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        wrap(&body)
    }

    fn wrap(body: &[u8]) -> Vec<u8> {
        let mut msg = vec![CLIENT_HELLO, 0, (body.len() >> 8) as u8, body.len() as u8];
        msg.extend(body);
        let mut rec = vec![CONTENT_HANDSHAKE, 3, 1, (msg.len() >> 8) as u8, msg.len() as u8];
        rec.extend(msg);
        rec
    }

    /// Splits the handshake message of a one-record hello into records of at
    /// most `n` bytes each.
    fn refragment(rec: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in rec[5..].chunks(n) {
            out.extend([CONTENT_HANDSHAKE, 3, 3, (chunk.len() >> 8) as u8, chunk.len() as u8]);
            out.extend(chunk);
        }
        out
    }

    fn hello(data: &[u8]) -> ClientHello<'_> {
        // A leaked scratch keeps the test helper's lifetimes simple.
        let scratch = Box::leak(vec![0u8; MAX_HELLO_LEN].into_boxed_slice());
        match parse_client_hello(data, scratch) {
            TlsParse::Hello(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_of_a_small_hello() {
        let rec = small_hello();
        let h = hello(&rec);
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.record_version, 0x0301);
        assert_eq!(h.random, &[7u8; 32]);
        assert!(h.session_id.is_empty());
        assert_eq!(h.cipher_suites.iter().collect::<Vec<_>>(), [0xc02f, 0x00ff]);
        assert_eq!(h.compression_methods, &[0]);
        assert_eq!(h.extensions.types().collect::<Vec<_>>(), [0x0000, 0x0010, 0x000d]);
        assert_eq!(h.sni, Some(&b"a.b"[..]));
        assert_eq!(h.alpn.unwrap().iter().collect::<Vec<_>>(), [b"h2"]);
        assert_eq!(
            h.signature_algorithms.unwrap().iter().collect::<Vec<_>>(),
            [0x0403, 0x0804]
        );
        assert_eq!(h.supported_versions, None);
        assert_eq!(h.max_version(), 0x0303);
    }

    #[test]
    fn every_cut_is_incomplete_with_a_growing_need() {
        for rec in [
            small_hello(),
            refragment(&small_hello(), 7),
            refragment(&small_hello(), 1),
        ] {
            let mut scratch = vec![0u8; MAX_HELLO_LEN];
            let mut last_need = 0;
            for cut in 0..rec.len() {
                match parse_client_hello(&rec[..cut], &mut scratch) {
                    TlsParse::Incomplete { need } => {
                        assert!(need > cut && need <= rec.len(), "cut {cut} need {need}");
                        assert!(need >= last_need);
                        last_need = need;
                    }
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
            // The same hello, whatever its records (their version aside).
            let plain = small_hello();
            assert_eq!(
                ClientHello {
                    record_version: 0,
                    ..hello(&rec)
                },
                ClientHello {
                    record_version: 0,
                    ..hello(&plain)
                }
            );
        }
    }

    #[test]
    fn not_tls() {
        let mut s = [0u8; 64];
        for first in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"\x17\x03\x03\x00\x10",
            b"\x16\x02\x00",
            b"\x16\x03\x05",
            b"\x80\x2e\x01",
        ] {
            assert_eq!(parse_client_hello(first, &mut s), TlsParse::NotTls, "{first:02x?}");
        }
        for prefix in [&b""[..], b"\x16", b"\x16\x03", b"\x16\x03\x01", b"\x16\x03\x01\x02"] {
            assert_eq!(parse_client_hello(prefix, &mut s), TlsParse::Incomplete { need: 5 });
        }
    }

    #[test]
    fn malformed() {
        let mut s = vec![0u8; MAX_HELLO_LEN];
        let m = |d: &[u8], s: &mut [u8]| match parse_client_hello(d, s) {
            TlsParse::Malformed(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(m(b"\x16\x03\x01\x00\x00", &mut s), TlsError::EmptyRecord);
        assert_eq!(m(b"\x16\x03\x01\x40\x01", &mut s), TlsError::RecordTooLong);
        assert_eq!(
            m(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", &mut s),
            TlsError::NotClientHello
        );
        // A hello spanning records, interrupted by an alert record.
        let frag = refragment(&small_hello(), 20);
        let mut bad = frag[..25].to_vec();
        bad.extend(b"\x15\x03\x03\x00\x02\x02\x28");
        assert_eq!(m(&bad, &mut s), TlsError::Interleaved);
        // Spanning records, and larger than the scratch.
        assert_eq!(m(&frag, &mut [0u8; 16]), TlsError::TooLong);
        // A body cut short inside its own length.
        let mut short = small_hello();
        short.truncate(short.len() - 1);
        let body_len = short.len() - 9;
        short[3..5].copy_from_slice(&((body_len + 4) as u16).to_be_bytes());
        short[6..9].copy_from_slice(&[0, (body_len >> 8) as u8, body_len as u8]);
        assert_eq!(m(&short, &mut s), TlsError::Truncated);
        // A bad ALPN list (entry longer than the list).
        let mut alpn = small_hello();
        let i = alpn.windows(3).position(|w| w == [0x02, b'h', b'2']).unwrap();
        alpn[i] = 3;
        assert_eq!(m(&alpn, &mut s), TlsError::Extension(ext::ALPN));
    }

    #[test]
    fn grease_values() {
        let grease: Vec<u16> = (0..=0xffffu16).filter(|&v| is_grease(v)).collect();
        assert_eq!(grease, (0..16).map(|i| 0x0a0a + i * 0x1010).collect::<Vec<_>>());
    }

    #[test]
    fn hello_without_extensions() {
        let mut body = vec![0x03, 0x01];
        body.extend([0u8; 32]);
        body.extend([32]);
        body.extend([9u8; 32]);
        body.extend([0x00, 0x02, 0x00, 0x2f, 0x01, 0x00]);
        let rec = wrap(&body);
        let h = hello(&rec);
        assert_eq!(
            (h.max_version(), h.session_id.len(), h.extensions.iter().count()),
            (0x0301, 32, 0)
        );
    }
}
