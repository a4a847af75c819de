//! Moat's JA4 against an independent implementation, PyPI `ja4plus`, on
//! ClientHellos made by real TLS stacks (Python's `ssl`/OpenSSL with and
//! without ALPN, TLS 1.2 only, a ~2 KB hello with a long SNI and 40 ALPN
//! values; curl to an address and to a name) and captured on loopback by
//! `tests/l7/ja4_capture.py`, which also computes ja4plus's JA4 of each from
//! TCP segments of the case's size. Moat must give the same JA4 from the
//! whole hello, and from the same segments through its reassembly table in
//! order and in reverse.
//!
//! Needs a Python with ja4plus (and the scapy it brings) and curl: the
//! Python is `$MOAT_JA4_PYTHON`, else `/opt/moat-ci/ja4/bin/python3`
//! (`python3 -m venv /opt/moat-ci/ja4 && /opt/moat-ci/ja4/bin/pip install
//! ja4plus==1.4.0`). Without them the test prints why and passes, unless
//! `MOAT_E2E=1`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use classifier::l7::ja4::{ja4, Transport};
use classifier::l7::reassembly::{Insert, Reassembly, ReassemblyConfig};
use classifier::l7::tls::{parse_client_hello, TlsParse, MAX_HELLO_LEN};

fn skip(why: &str) {
    assert!(
        std::env::var("MOAT_E2E").as_deref() != Ok("1"),
        "MOAT_E2E=1 but the JA4 interop test cannot run: {why}"
    );
    eprintln!("skipping the JA4 interop test: {why} (set MOAT_E2E=1 to make this a failure)");
}

fn python() -> Result<PathBuf, String> {
    let p = std::env::var_os("MOAT_JA4_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/moat-ci/ja4/bin/python3"));
    if !p.exists() {
        return Err(format!(
            "no Python with ja4plus at {} (python3 -m venv /opt/moat-ci/ja4 && /opt/moat-ci/ja4/bin/pip install \
             ja4plus==1.4.0, or set MOAT_JA4_PYTHON)",
            p.display()
        ));
    }
    let ok = Command::new(&p).args(["-c", "import ja4plus, scapy"]).output();
    if !ok.is_ok_and(|o| o.status.success()) {
        return Err(format!(
            "{} cannot import ja4plus (pip install ja4plus==1.4.0)",
            p.display()
        ));
    }
    Ok(p)
}

/// A temporary directory, removed on drop (also when an assertion fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!("moat-ja4-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn moat_ja4(bytes: &[u8]) -> String {
    let mut scratch = vec![0u8; MAX_HELLO_LEN];
    match parse_client_hello(bytes, &mut scratch) {
        TlsParse::Hello(h) => ja4(&h, Transport::Tcp).unwrap().to_string(),
        other => panic!("Moat does not parse the hello: {other:?}"),
    }
}

/// Feeds `segments` (offset, bytes) to a reassembly table; the JA4 of the
/// prefix once it parses as a whole hello.
fn reassembled_ja4(segments: &[(usize, &[u8])]) -> String {
    let mut t: Reassembly<u32> = Reassembly::new(ReassemblyConfig::default()).unwrap();
    let mut scratch = vec![0u8; MAX_HELLO_LEN];
    for (off, seg) in segments {
        if let Insert::Prefix(p) = t.insert(7, 1, *off as u32, seg) {
            if let TlsParse::Hello(h) = parse_client_hello(p, &mut scratch) {
                return ja4(&h, Transport::Tcp).unwrap().to_string();
            }
        }
    }
    panic!("the reassembled segments never made a hello");
}

#[test]
fn ja4_equals_ja4plus_on_real_client_hellos() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => return skip(&why),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/l7/ja4_capture.py");
    let dir = TempDir::new();
    let out = Command::new(&py).arg(&script).arg(&dir.0).output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}");
    match out.status.code() {
        Some(0) => {}
        Some(2) => return skip(&format!("ja4_capture.py lacks a tool: {log}")),
        _ => panic!("ja4_capture.py failed: {log}"),
    }
    let tsv = std::fs::read_to_string(dir.0.join("cases.tsv")).unwrap();
    let mut checked = 0;
    let mut spanning = 0;
    for line in tsv.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, file, segment, theirs] = f[..] else {
            panic!("bad line {line:?}")
        };
        let bytes = std::fs::read(file).unwrap();
        let size = match segment.parse::<usize>().unwrap() {
            0 => bytes.len(),
            n => n,
        };
        let segments: Vec<(usize, &[u8])> = bytes.chunks(size).enumerate().map(|(i, c)| (i * size, c)).collect();
        let whole = moat_ja4(&bytes);
        let in_order = reassembled_ja4(&segments);
        let reversed: Vec<_> = segments.iter().rev().copied().collect();
        let out_of_order = reassembled_ja4(&reversed);
        eprintln!(
            "{name:28} {:4} bytes in {} segments: moat {whole}, ja4plus {theirs}",
            bytes.len(),
            segments.len()
        );
        assert_eq!(whole, theirs, "{name}: Moat's JA4 differs from ja4plus's");
        assert_eq!(in_order, theirs, "{name}: reassembled in order");
        assert_eq!(out_of_order, theirs, "{name}: reassembled in reverse");
        checked += 1;
        if bytes.len() > 1460 && segments.len() > 1 {
            spanning += 1;
        }
    }
    assert_eq!(checked, 7, "every case of ja4_capture.py");
    assert!(spanning >= 1, "a hello larger than one 1460-byte segment, split");
}
