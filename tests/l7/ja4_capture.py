#!/usr/bin/env python3
"""ClientHellos from real TLS stacks, and their JA4 by an independent
implementation, for classifier/tests/ja4_interop.rs.

A TCP listener on 127.0.0.1 accepts one connection per case, keeps the bytes
the client sends until its first TLS record is whole (or 5 s pass), and
closes (the client then fails its handshake, which is expected). The clients
are Python's `ssl` (OpenSSL) with and without ALPN, with TLS 1.2 only, with
a long SNI and many ALPN values (a ~2 KB hello), and curl to an address and
to a name. For each hello the JA4 of PyPI `ja4plus` is computed the way it
reads traffic: the hello is cut into TCP segments of the case's size, each
wrapped in a scapy Ethernet/IPv4/TCP packet and given to
`JA4Fingerprinter.process_packet` (its own segment reassembly joins them).

Usage: ja4_capture.py OUTDIR
Writes OUTDIR/<case>.bin (the raw bytes) and OUTDIR/cases.tsv, one line per
case: name, file, segment size (0: the hello in one segment), ja4plus's JA4,
tab-separated. Exits 2 when a needed tool (curl,
ja4plus, scapy) is missing, 1 on any other failure.
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

try:
    from ja4plus import JA4Fingerprinter
    from scapy.all import IP, TCP, Ether, Raw
except ImportError as e:  # pragma: no cover - the Rust test reports it
    print(f"missing Python module: {e}", file=sys.stderr)
    sys.exit(2)

TIMEOUT = 5.0


def record_complete(buf: bytes) -> bool:
    return len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big")


def accept_hello(listener: socket.socket) -> bytes:
    conn, _ = listener.accept()
    conn.settimeout(TIMEOUT)
    buf = b""
    try:
        while not record_complete(buf):
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        pass
    finally:
        conn.close()
    return buf


def python_client(port: int, hostname, alpn=None, tls12=False):
    def run():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            try:
                with ctx.wrap_socket(s, server_hostname=hostname):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the listener closes after the hello

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t.join


def curl_client(port: int, name=None):
    curl = shutil.which("curl")
    if curl is None:
        print("curl not found on PATH", file=sys.stderr)
        sys.exit(2)
    url_host = name or "127.0.0.1"
    args = [curl, "-sk", "--max-time", str(int(TIMEOUT)), "-o", "/dev/null"]
    if name:
        args += ["--resolve", f"{name}:{port}:127.0.0.1"]
    p = subprocess.Popen(args + [f"https://{url_host}:{port}/"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return lambda: p.wait(timeout=2 * TIMEOUT)


# A 253-byte name of 63-byte labels, and 40 ALPN values of 40 bytes: the
# hello is ~2 KB, more than one 1460-byte segment.
LONG_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
MANY_ALPN = ["h2", "http/1.1"] + [f"moat-test-protocol-{i:02d}-" + "x" * 18 for i in range(38)]

CASES = [
    # (name, start client(port) -> join, segment size for ja4plus and Moat)
    ("python-openssl-alpn", lambda p: python_client(p, "www.example.com", ["h2", "http/1.1"]), 0),
    ("python-openssl-noalpn-ip", lambda p: python_client(p, None), 0),
    ("python-openssl-tls12", lambda p: python_client(p, "tls12.example", ["http/1.1"], tls12=True), 0),
    ("python-openssl-padded-split", lambda p: python_client(p, LONG_NAME, MANY_ALPN), 700),
    ("curl-ip", lambda p: curl_client(p), 0),
    ("curl-sni", lambda p: curl_client(p, "moat.example"), 0),
    ("curl-sni-split", lambda p: curl_client(p, "split.example"), 100),
]


def ja4plus_of(hello: bytes, segment: int, sport: int) -> str:
    fp = JA4Fingerprinter()
    size = segment or len(hello)
    result = None
    for off in range(0, len(hello), size):
        pkt = (Ether() / IP(src="127.0.0.1", dst="127.0.0.1")
               / TCP(sport=sport, dport=443, flags="PA", seq=1000 + off, ack=1)
               / Raw(hello[off:off + size]))
        r = fp.process_packet(pkt)
        result = r or result
    if result is None:
        raise RuntimeError("ja4plus found no ClientHello")
    return result


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    results = []
    for i, (name, start, segment) in enumerate(CASES):
        join = start(port)
        hello = accept_hello(listener)
        join()
        if not record_complete(hello):
            print(f"{name}: no complete TLS record ({len(hello)} bytes)", file=sys.stderr)
            return 1
        path = os.path.join(out, f"{name}.bin")
        with open(path, "wb") as f:
            f.write(hello)
        ja4 = ja4plus_of(hello, segment, 40000 + i)
        results.append(f"{name}\t{path}\t{segment}\t{ja4}\n")
        print(f"{name}: {len(hello)} bytes, segment {segment or len(hello)}, ja4plus {ja4}")
    listener.close()
    with open(os.path.join(out, "cases.tsv"), "w") as f:
        f.writelines(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
